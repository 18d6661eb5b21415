/*
 * config_impl — what config.c and config_schema.c share.
 */
#ifndef OPSDESK_CONFIG_IMPL_H
#define OPSDESK_CONFIG_IMPL_H

#include "config.h"

/* The registered schema of a top-level section, or NULL. */
const config_field *config_schema_find(const char *name);
/* The name in names nearest to key, if close enough to be a typo. */
const char *config_nearest(
    const char *key, const char *const *names, size_t n);
/* "path.key: unknown key, did you mean …" into err; OD_EINVAL. */
int config_unknown_key(const char *path, const char *key,
    const char *const *names, size_t n, char *err, size_t errlen);
/* Duplicate keys and sizes anywhere under v. */
int config_check_tree(
    const cJSON *v, const char *path, char *err, size_t errlen);
/* Offset of the first byte that is not strict UTF-8, or len. */
size_t config_utf8_check(const char *s, size_t len);

/* "a string", "a number", … for error messages. */
const char *config_type_name(const cJSON *v);
/* Format the message into err (when given); returns OD_EINVAL. */
int config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* OPSDESK_CONFIG_IMPL_H */
