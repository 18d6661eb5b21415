/*
 * util — errors, clocks, ids, byte order, strings. See util.h.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

const char *
od_strerror(int err)
{
	static const char *const msgs[] = {
		[OD_OK] = "success",
		[OD_ENOMEM] = "out of memory",
		[OD_EINVAL] = "invalid argument",
		[OD_ENOTFOUND] = "not found",
		[OD_EEXIST] = "already exists",
		[OD_ETIMEDOUT] = "timed out",
		[OD_EUNAVAIL] = "service unavailable",
		[OD_EIO] = "I/O error",
		[OD_ECLOSED] = "closed",
		[OD_ETOOBIG] = "too large",
		[OD_EMALFORMED] = "malformed input",
		[OD_EPERM] = "permission denied",
		[OD_ESTATE] = "not allowed in the current state",
		[OD_ELIMIT] = "limit reached",
		[OD_EMAPFULL] = "store map full",
		[OD_ERPC] = "error reply",
		[OD_EINTERNAL] = "internal error",
		[OD_ENOSPC] = "the disk is full",
	};
	if (err < 0 || (size_t) err >= sizeof(msgs) / sizeof(msgs[0])
	    || msgs[err] == NULL) {
		return "unknown error";
	}
	return msgs[err];
}

/* ---- clocks ---- */

static int64_t (*fake_clock)(void *) = NULL;
static void *fake_clock_arg = NULL;

int64_t
od_now_ms(void)
{
	int64_t (*fn)(void *) = __atomic_load_n(&fake_clock, __ATOMIC_ACQUIRE);
	if (fn != NULL) {
		return fn(fake_clock_arg);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
od_clock_set(int64_t (*fn)(void *arg), void *arg)
{
	fake_clock_arg = arg;
	__atomic_store_n(&fake_clock, fn, __ATOMIC_RELEASE);
}

int64_t
od_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
od_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	if (pthread_condattr_init(&ca) != 0) {
		return OD_ENOMEM;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : OD_ENOMEM;
}

bool
od_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t timeout_ms)
{
	struct timespec ts;

	if (timeout_ms <= 0) {
		return true;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t) (timeout_ms / 1000);
	ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT;
}

uint64_t
od_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

/* ---- ids ---- */

void
od_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t buf[64];
	size_t done = 0;
	while (done < nbytes) {
		size_t n = nbytes - done;
		if (n > sizeof(buf)) {
			n = sizeof(buf);
		}
		ssize_t got = getrandom(buf, n, 0);
		if (got <= 0) {
			/* getrandom only fails on ancient kernels; fall back
			 * to something unique enough for ids. */
			uint64_t x = od_mono_ns() ^ ((uint64_t) getpid() << 32)
			    ^ (uint64_t) (uintptr_t) out;
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[i] = (uint8_t) x;
			}
			got = (ssize_t) n;
		}
		for (ssize_t i = 0; i < got; i++) {
			out[2 * (done + (size_t) i)] = hex[buf[i] >> 4];
			out[2 * (done + (size_t) i) + 1] = hex[buf[i] & 15];
		}
		done += (size_t) got;
	}
	out[2 * nbytes] = '\0';
}

/* ---- byte order ---- */

void
od_put_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t) v;
		v >>= 8;
	}
}

uint64_t
od_get_be64(const uint8_t in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | in[i];
	}
	return v;
}

void
od_put_be32(uint8_t out[4], uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		out[i] = (uint8_t) v;
		v >>= 8;
	}
}

uint32_t
od_get_be32(const uint8_t in[4])
{
	return ((uint32_t) in[0] << 24) | ((uint32_t) in[1] << 16)
	    | ((uint32_t) in[2] << 8) | in[3];
}

size_t
od_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);
	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

/* ---- time text ---- */

void
od_format_iso8601(int64_t ms, char *out, size_t size)
{
	time_t t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
od_format_iso8601_ms(int64_t ms, char *out, size_t size)
{
	time_t t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int) (ms - (int64_t) t * 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03dZ", base, frac);
}

int
od_parse_iso8601(const char *s, int64_t *out_ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	if (s == NULL) {
		return OD_EINVAL;
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) {
		return OD_EINVAL;
	}
	const char *p = s + n;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		int m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5) {
			return OD_EINVAL;
		}
		p += 1 + m;
		if (*p == ':') {
			int k = 0;
			if (sscanf(p + 1, "%2d%n", &sec, &k) != 1 || k != 2) {
				return OD_EINVAL;
			}
			p += 1 + k;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23
	    || mi > 59 || sec > 60 || y < 1970 || y > 9999) {
		return OD_EINVAL;
	}
	struct tm tm = { 0 };
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: reject it. */
	struct tm back;
	gmtime_r(&t, &back);
	if (back.tm_mday != d || back.tm_mon != mo - 1) {
		return OD_EINVAL;
	}
	*out_ms = (int64_t) t * 1000;
	return 0;
}

int
od_parse_duration_ms(const char *s, int64_t *out_ms)
{
	if (s == NULL || *s == '\0') {
		return OD_EINVAL;
	}
	int64_t total = 0;
	const char *p = s;
	bool any = false;
	while (*p != '\0') {
		if (!isdigit((unsigned char) *p)) {
			return OD_EINVAL;
		}
		int64_t v = 0;
		while (isdigit((unsigned char) *p)) {
			v = v * 10 + (*p - '0');
			if (v > 1000000000LL) {
				return OD_EINVAL;
			}
			p++;
		}
		int64_t unit;
		if (strncmp(p, "ms", 2) == 0) {
			unit = 1;
			p += 2;
		} else {
			switch (*p) {
			case 's':
				unit = 1000;
				p++;
				break;
			case 'm':
				unit = 60000;
				p++;
				break;
			case 'h':
				unit = 3600000;
				p++;
				break;
			case 'd':
				unit = 86400000;
				p++;
				break;
			case 'w':
				unit = 7 * 86400000LL;
				p++;
				break;
			case '\0':
				/* a bare number is seconds, alone only */
				if (any) {
					return OD_EINVAL;
				}
				unit = 1000;
				break;
			default:
				return OD_EINVAL;
			}
		}
		total += v * unit;
		any = true;
	}
	*out_ms = total;
	return 0;
}

void
od_format_duration(int64_t ms, char *out, size_t size)
{
	if (ms < 0) {
		ms = -ms;
	}
	int64_t s = ms / 1000;
	if (s < 60) {
		snprintf(out, size, "%llds", (long long) s);
	} else if (s < 3600) {
		snprintf(out, size, "%lldm", (long long) (s / 60));
	} else if (s < 86400) {
		int64_t m = (s % 3600) / 60;
		if (m) {
			snprintf(out, size, "%lldh %lldm",
			    (long long) (s / 3600), (long long) m);
		} else {
			snprintf(out, size, "%lldh", (long long) (s / 3600));
		}
	} else {
		int64_t h = (s % 86400) / 3600;
		if (h) {
			snprintf(out, size, "%lldd %lldh",
			    (long long) (s / 86400), (long long) h);
		} else {
			snprintf(out, size, "%lldd", (long long) (s / 86400));
		}
	}
}

void
od_format_age(int64_t ms, int64_t now_ms, char *out, size_t size)
{
	int64_t d = now_ms - ms;
	if (d < 0) {
		char dur[32];
		od_format_duration(-d, dur, sizeof(dur));
		snprintf(out, size, "in %s", dur);
		return;
	}
	int64_t s = d / 1000;
	if (s < 10) {
		snprintf(out, size, "just now");
	} else if (s < 60) {
		snprintf(out, size, "%lld s ago", (long long) s);
	} else if (s < 3600) {
		snprintf(out, size, "%lld min ago", (long long) (s / 60));
	} else if (s < 86400) {
		snprintf(out, size, "%lld h ago", (long long) (s / 3600));
	} else {
		snprintf(out, size, "%lld d ago", (long long) (s / 86400));
	}
}

/* ---- sbuf ---- */

void
sbuf_init(sbuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void
sbuf_free(sbuf *b)
{
	if (b == NULL) {
		return;
	}
	free(b->data);
	sbuf_init(b);
}

void
sbuf_reset(sbuf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data != NULL) {
		b->data[0] = '\0';
	}
}

static bool
sbuf_reserve(sbuf *b, size_t extra)
{
	if (b->failed) {
		return false;
	}
	if (b->len + extra + 1 <= b->cap) {
		return true;
	}
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		cap *= 2;
	}
	char *n = realloc(b->data, cap);
	if (n == NULL) {
		b->failed = true;
		return false;
	}
	b->data = n;
	b->cap = cap;
	return true;
}

void
sbuf_append_len(sbuf *b, const char *s, size_t n)
{
	if (!sbuf_reserve(b, n)) {
		return;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
sbuf_append(sbuf *b, const char *s)
{
	if (s != NULL) {
		sbuf_append_len(b, s, strlen(s));
	}
}

void
sbuf_appendc(sbuf *b, char c)
{
	sbuf_append_len(b, &c, 1);
}

void
sbuf_vprintf(sbuf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	char small[256];
	int n = vsnprintf(small, sizeof(small), fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t) n < sizeof(small)) {
		sbuf_append_len(b, small, (size_t) n);
		return;
	}
	if (!sbuf_reserve(b, (size_t) n)) {
		return;
	}
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	b->len += (size_t) n;
}

void
sbuf_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(b, fmt, ap);
	va_end(ap);
}

bool
sbuf_failed(const sbuf *b)
{
	return b->failed;
}

char *
sbuf_take(sbuf *b, size_t *len)
{
	if (b->failed) {
		sbuf_free(b);
		return NULL;
	}
	if (b->data == NULL && !sbuf_reserve(b, 0)) {
		return NULL;
	}
	if (b->data != NULL && b->len == 0) {
		b->data[0] = '\0';
	}
	char *d = b->data;
	if (len != NULL) {
		*len = b->len;
	}
	sbuf_init(b);
	return d;
}

const char *
sbuf_str(const sbuf *b)
{
	return b->data != NULL && !b->failed ? b->data : "";
}

/* Append s replacing each byte that has an entity; quotes only when
 * `quotes` (attribute values) — Telegram's HTML knows just & < >. */
static void
append_escaped(sbuf *b, const char *s, bool quotes)
{
	if (s == NULL) {
		return;
	}
	const char *run = s;
	for (const char *p = s; *p; p++) {
		const char *rep;
		switch (*p) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = quotes ? "&quot;" : NULL;
			break;
		case '\'':
			rep = quotes ? "&#39;" : NULL;
			break;
		default:
			rep = NULL;
		}
		if (rep == NULL) {
			continue;
		}
		sbuf_append_len(b, run, (size_t) (p - run));
		sbuf_append(b, rep);
		run = p + 1;
	}
	sbuf_append(b, run);
}

void
sbuf_append_html(sbuf *b, const char *s)
{
	append_escaped(b, s, true);
}

void
sbuf_append_tg_html(sbuf *b, const char *s)
{
	append_escaped(b, s, false);
}

void
sbuf_append_json_str(sbuf *b, const char *s)
{
	sbuf_appendc(b, '"');
	for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p;
	     p++) {
		switch (*p) {
		case '"':
			sbuf_append(b, "\\\"");
			break;
		case '\\':
			sbuf_append(b, "\\\\");
			break;
		case '\n':
			sbuf_append(b, "\\n");
			break;
		case '\r':
			sbuf_append(b, "\\r");
			break;
		case '\t':
			sbuf_append(b, "\\t");
			break;
		default:
			if (*p < 0x20) {
				sbuf_printf(b, "\\u%04x", *p);
			} else {
				sbuf_appendc(b, (char) *p);
			}
		}
	}
	sbuf_appendc(b, '"');
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t
utf8_seq_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80) {
		return 1;
	}
	size_t len;
	uint32_t cp;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
	    || (len == 4 && cp < 0x10000) || cp > 0x10ffff
	    || (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return len;
}

char *
od_utf8_sanitize(const char *s, size_t len)
{
	sbuf b = SBUF_INIT;
	const unsigned char *p = (const unsigned char *) s;
	size_t i = 0;
	sbuf_append(&b, "");
	while (i < len) {
		size_t n = p[i] == 0 ? 0 : utf8_seq_len(p + i, len - i);
		if (n == 0) {
			sbuf_append(&b, "\xef\xbf\xbd"); /* U+FFFD */
			i++;
		} else {
			sbuf_append_len(&b, (const char *) p + i, n);
			i += n;
		}
	}
	return sbuf_take(&b, NULL);
}

size_t
od_utf8_len(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t n = strlen(s), i = 0, count = 0;
	while (i < n) {
		size_t l = utf8_seq_len(p + i, n - i);
		i += l ? l : 1;
		count++;
	}
	return count;
}

bool
od_contains_ci(const char *hay, const char *needle)
{
	if (hay == NULL || needle == NULL) {
		return false;
	}
	size_t nl = strlen(needle);
	if (nl == 0) {
		return true;
	}
	for (const char *h = hay; *h; h++) {
		if (strncasecmp(h, needle, nl) == 0) {
			return true;
		}
	}
	return false;
}

uint32_t
od_page_limit(uint32_t asked, uint32_t dflt, uint32_t max)
{
	return asked == 0 ? dflt : (asked > max ? max : asked);
}
