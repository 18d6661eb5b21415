/*
 * log — JSON lines on stderr: {"ts":…,"level":…,"service":…,"instance":…,
 * "msg":…, fields…}. Registered secrets (the bot token) are replaced by
 * "[REDACTED]" in the message and every field before the line is written,
 * so no caller can leak one by accident. Thread-safe; one write(2) a line.
 */
#ifndef OPSDESK_LOG_H
#define OPSDESK_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Set the service and instance names stamped on every line. Borrowed
 * strings are copied. Safe to call again. */
void log_init(const char *service, const char *instance, int level);
/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int log_level_parse(const char *s);
void log_set_level(int level);
int log_get_level(void);
/* Redact every occurrence of secret (copied; up to 8 secrets; ignored if
 * shorter than 4 bytes). */
void log_add_secret(const char *secret);
/* Replace registered secrets in s, in place when it fits. Returns s. Used
 * by anything that shows outside text (error replies, metrics labels). */
char *log_redact(char *s, size_t size);
/* Send lines to fd instead of stderr (tests). */
void log_set_fd(int fd);

/*
 * Write one line. The message is printf-formatted. Extra fields follow as
 * a NULL-terminated list of key, value string pairs in log_kv().
 */
void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vwrite(int level, const char *fmt, va_list ap);
void log_kv(int level, const char *msg, ...); /* key, value, ..., NULL */

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif /* OPSDESK_LOG_H */
