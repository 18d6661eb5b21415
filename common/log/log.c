/*
 * log — JSON lines with secret redaction. See log.h.
 */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

#define LOG_MAX_SECRETS 8

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static char log_service[64] = "opsdesk";
static char log_instance[128] = "";
static int log_level = LOG_INFO;
static int log_fd = 2;
static char *log_secrets[LOG_MAX_SECRETS];
static int log_n_secrets;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void
report_error(const char *msg)
{
	log_error("%s", msg);
}

void
log_init(const char *service, const char *instance, int level)
{
	pthread_mutex_lock(&log_mtx);
	od_strlcpy(
	    log_service, service ? service : "opsdesk", sizeof(log_service));
	od_strlcpy(
	    log_instance, instance ? instance : "", sizeof(log_instance));
	if (level >= LOG_DEBUG && level <= LOG_ERROR) {
		log_level = level;
	}
	pthread_mutex_unlock(&log_mtx);
	od_set_report(report_error); /* util's reports, as log lines */
}

int
log_level_parse(const char *s)
{
	if (s == NULL) {
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			return i;
		}
	}
	if (strcmp(s, "warning") == 0) {
		return LOG_WARN;
	}
	return -1;
}

void
log_set_level(int level)
{
	if (level >= LOG_DEBUG && level <= LOG_ERROR) {
		__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
	}
}

int
log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_set_fd(int fd)
{
	pthread_mutex_lock(&log_mtx);
	log_fd = fd;
	pthread_mutex_unlock(&log_mtx);
}

void
log_add_secret(const char *secret)
{
	if (secret == NULL || strlen(secret) < 4) {
		return;
	}
	pthread_mutex_lock(&log_mtx);
	for (int i = 0; i < log_n_secrets; i++) {
		if (strcmp(log_secrets[i], secret) == 0) {
			pthread_mutex_unlock(&log_mtx);
			return;
		}
	}
	if (log_n_secrets < LOG_MAX_SECRETS) {
		char *c = strdup(secret);
		if (c != NULL) {
			log_secrets[log_n_secrets++] = c;
		}
	}
	pthread_mutex_unlock(&log_mtx);
}

/* Redact into a fresh sbuf; the caller holds log_mtx. */
static void
redact_locked(sbuf *out, const char *s)
{
	const char *p = s;
	while (*p) {
		int hit = -1;
		size_t hit_len = 0;
		for (int i = 0; i < log_n_secrets; i++) {
			size_t l = strlen(log_secrets[i]);
			if (strncmp(p, log_secrets[i], l) == 0
			    && l > hit_len) {
				hit = i;
				hit_len = l;
			}
		}
		if (hit >= 0) {
			sbuf_append(out, "[REDACTED]");
			p += hit_len;
		} else {
			sbuf_appendc(out, *p++);
		}
	}
}

char *
log_redact(char *s, size_t size)
{
	if (s == NULL) {
		return s;
	}
	sbuf b = SBUF_INIT;
	pthread_mutex_lock(&log_mtx);
	if (log_n_secrets == 0) {
		pthread_mutex_unlock(&log_mtx);
		return s;
	}
	redact_locked(&b, s);
	pthread_mutex_unlock(&log_mtx);
	if (!sbuf_failed(&b) && size > 0) {
		od_strlcpy(s, sbuf_str(&b), size);
	}
	sbuf_free(&b);
	return s;
}

/* Append s as a redacted, sanitized JSON string; caller holds log_mtx. */
static void
append_field_locked(sbuf *line, const char *s)
{
	sbuf r = SBUF_INIT;
	char *clean = od_utf8_sanitize(s, strlen(s));
	redact_locked(&r, clean ? clean : "");
	free(clean);
	sbuf_append_json_str(line, sbuf_str(&r));
	sbuf_free(&r);
}

static void
emit(int level, const char *msg, va_list *kv)
{
	if (level < log_get_level() || level < LOG_DEBUG
	    || level > LOG_ERROR) {
		return;
	}
	char ts[40];
	od_format_iso8601_ms(od_now_ms(), ts, sizeof(ts));
	sbuf line = SBUF_INIT;
	pthread_mutex_lock(&log_mtx);
	sbuf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":", ts,
	    level_names[level]);
	sbuf_append_json_str(&line, log_service);
	sbuf_append(&line, ",\"instance\":");
	sbuf_append_json_str(&line, log_instance);
	sbuf_append(&line, ",\"msg\":");
	append_field_locked(&line, msg);
	if (kv != NULL) {
		const char *k;
		while ((k = va_arg(*kv, const char *)) != NULL) {
			const char *v = va_arg(*kv, const char *);
			sbuf_appendc(&line, ',');
			append_field_locked(&line, k);
			sbuf_appendc(&line, ':');
			append_field_locked(&line, v ? v : "");
		}
	}
	sbuf_append(&line, "}\n");
	if (!sbuf_failed(&line)) {
		/* One write per line keeps lines whole between threads and
		 * processes sharing the file. */
		ssize_t n = write(log_fd, line.data, line.len);
		(void) n;
	}
	pthread_mutex_unlock(&log_mtx);
	sbuf_free(&line);
}

void
log_vwrite(int level, const char *fmt, va_list ap)
{
	if (level < log_get_level()) {
		return;
	}
	sbuf msg = SBUF_INIT;
	sbuf_vprintf(&msg, fmt, ap);
	emit(level, sbuf_str(&msg), NULL);
	sbuf_free(&msg);
}

void
log_write(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

void
log_kv(int level, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	emit(level, msg, &ap);
	va_end(ap);
}
