/*
 * util — small things every module needs: error codes, time with an
 * injectable clock, ids, big-endian keys, a growable string buffer and
 * escaping for HTML, XML and JSON.
 */
#ifndef OPSDESK_UTIL_H
#define OPSDESK_UTIL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: functions return 0 on success or one of these. */
enum od_err {
	OD_OK = 0,
	OD_ENOMEM = 1,      /* out of memory */
	OD_EINVAL = 2,      /* invalid argument */
	OD_ENOTFOUND = 3,   /* no such thing */
	OD_EEXIST = 4,      /* already exists */
	OD_ETIMEDOUT = 5,   /* time-out */
	OD_EUNAVAIL = 6,    /* the peer (service) is not reachable */
	OD_EIO = 7,         /* I/O or storage error */
	OD_ECLOSED = 8,     /* object is closed or shutting down */
	OD_ETOOBIG = 9,     /* message or value over its limit */
	OD_EMALFORMED = 10, /* bytes that do not decode */
	OD_EPERM = 11,      /* not allowed for this actor */
	OD_ESTATE = 12,     /* not allowed in the current state */
	OD_ELIMIT = 13,     /* a rate or quota limit */
	OD_EMAPFULL = 14,   /* LMDB map full: the store grows and retries */
	OD_ERPC = 15,       /* an Error reply (details in the reply) */
	OD_EINTERNAL = 16,
	OD_ENOSPC = 17, /* the store's disk is full (ENOSPC, EDQUOT) */
};

/* A static English description of an od_err code. */
const char *od_strerror(int err);
/* Map an NNG error code (NNG_E*) to an od_err; unknown ones are OD_EIO. */
int od_nng_err(int nng_rv);
/*
 * Close an NNG socket, waiting at most a few seconds: false when NNG did
 * not finish (NNG 1.5 can hang there; later calls then return false at
 * once). On false the caller must not free what NNG callbacks may still
 * touch: hand it to od_nng_abandon, which keeps it reachable so a leak
 * checker at exit does not flag it.
 */
bool od_nng_close(nng_socket sock);
/*
 * How util reports what it cannot return to a caller (an NNG close that
 * hangs): fn(message), set by log_init to log at error level, so util
 * does not depend on log (log depends on util). NULL, the default: a
 * line on stderr.
 */
void od_set_report(void (*fn)(const char *msg));
void od_nng_abandon(void *p);

/*
 * Wall-clock time in ms since the epoch. Tests inject a fake clock with
 * od_clock_set(); every module reads time through od_now_ms() so no test
 * has to sleep through an SLA. Pass NULL to restore the real clock.
 */
int64_t od_now_ms(void);
void od_clock_set(int64_t (*fn)(void *arg), void *arg);
/* Monotonic ms, for time-outs and latencies (never faked). */
int64_t od_mono_ms(void);
/* Monotonic ns, for latency histograms. */
uint64_t od_mono_ns(void);

/*
 * Condition variables with time-outs on the monotonic clock, so a wall
 * clock step (NTP, a test's od_clock_set has no effect here) neither
 * wakes a waiter early nor keeps it asleep. od_cond_init makes such a
 * condition (0 or OD_ENOMEM); od_cond_wait_ms waits on one at most
 * timeout_ms (<= 0: returns at once) with mu held, and returns true when
 * the time ran out, false when signalled (or woken spuriously: callers
 * re-check their predicate in a loop, as with pthread_cond_wait).
 */
int od_cond_init(pthread_cond_t *cv);
bool od_cond_wait_ms(
    pthread_cond_t *cv, pthread_mutex_t *mu, int64_t timeout_ms);

/* Fill out with 2*nbytes lowercase hex digits of randomness and a NUL. */
void od_random_hex(char *out, size_t nbytes);

/* Big-endian integers: keys compare as bytes in LMDB. */
void od_put_be64(uint8_t out[8], uint64_t v);
uint64_t od_get_be64(const uint8_t in[8]);
void od_put_be32(uint8_t out[4], uint32_t v);
uint32_t od_get_be32(const uint8_t in[4]);

/* Copy at most size-1 bytes and always terminate. Returns strlen(src). */
size_t od_strlcpy(char *dst, const char *src, size_t size);

/* Format a time in ms as ISO 8601 UTC ("2026-11-27T13:05:00Z"); out >= 21. */
void od_format_iso8601(int64_t ms, char *out, size_t size);
/* Format with milliseconds ("2026-11-27T13:05:00.123Z"); out >= 25. */
void od_format_iso8601_ms(int64_t ms, char *out, size_t size);
/* Parse "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC) into ms. 0 or OD_EINVAL. */
int od_parse_iso8601(const char *s, int64_t *out_ms);
/* Parse a duration: "90" (seconds), "90s", "15m", "2h", "1d", "1h30m". */
int od_parse_duration_ms(const char *s, int64_t *out_ms);
/* "5 min ago"-style age text of now_ms - ms (out >= 32). */
void od_format_age(int64_t ms, int64_t now_ms, char *out, size_t size);
/* "1h 30m"-style duration text (out >= 32). */
void od_format_duration(int64_t ms, char *out, size_t size);

/*
 * sbuf — a growable, always NUL-terminated string buffer. Allocation
 * failure is sticky: sbuf_failed() tells, and appends become no-ops, so a
 * renderer checks once at the end.
 */
typedef struct sbuf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
} sbuf;

#define SBUF_INIT                                                             \
	{                                                                     \
		NULL, 0, 0, false                                             \
	}

void sbuf_init(sbuf *b);
void sbuf_free(sbuf *b);  /* frees the data; NULL-safe */
void sbuf_reset(sbuf *b); /* len 0, keeps the memory */
void sbuf_append(sbuf *b, const char *s);
void sbuf_append_len(sbuf *b, const char *s, size_t n);
void sbuf_appendc(sbuf *b, char c);
void sbuf_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sbuf_vprintf(sbuf *b, const char *fmt, va_list ap);
bool sbuf_failed(const sbuf *b);
/* Hands the data to the caller (caller frees with free()); b is empty. */
char *sbuf_take(sbuf *b, size_t *len);
/* The text so far, never NULL. Borrowed. */
const char *sbuf_str(const sbuf *b);

/* Append s escaped for HTML/XML text and attribute values (& < > " '). */
void sbuf_append_html(sbuf *b, const char *s);
/* Append s escaped for Telegram's HTML mode (only & < >). */
void sbuf_append_tg_html(sbuf *b, const char *s);
/* Append s as a JSON string literal, quotes included. */
void sbuf_append_json_str(sbuf *b, const char *s);

/*
 * Copy s replacing invalid UTF-8 sequences with U+FFFD, so outside text can
 * be stored and re-sent safely. Caller frees with free(); NULL on OOM.
 */
char *od_utf8_sanitize(const char *s, size_t len);
/* Number of UTF-8 code points (invalid bytes count one each). */
size_t od_utf8_len(const char *s);

/* Case-insensitive substring search (ASCII). */
bool od_contains_ci(const char *hay, const char *needle);

/* How many items a page holds when a caller asked for `asked`: 0 (not
 * given) means dflt, more than max means max. */
uint32_t od_page_limit(uint32_t asked, uint32_t dflt, uint32_t max);

#endif /* OPSDESK_UTIL_H */
