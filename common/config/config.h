/*
 * config — the suite config file (JSON, $OPSDESK_CONFIG or ./opsdesk.json)
 * merged with the environment of spec/interfaces.md. The common keys are
 * parsed here; each service reads its own section with the typed getters
 * below, whose errors name the bad key by its full path and say what was
 * expected ("targets[2].interval: expected a duration like \"30s\"").
 */
#ifndef OPSDESK_CONFIG_H
#define OPSDESK_CONFIG_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_ADMINS 64

typedef struct config {
	cJSON *root;             /* the whole file; an empty object if none */
	char path[1024];         /* the file read, "" if none */
	char service[64];        /* executable name */
	char instance[128];      /* OPSDESK_INSTANCE or host:pid */
	char data_dir[1024];     /* $OPSDESK_DATA_DIR or ./var/data */
	char store_dir[1100];    /* data_dir/service */
	char log_level[16];
	char bus_publish[256];   /* OPSDESK_BUS_PUBLISH */
	char bus_subscribe[256]; /* OPSDESK_BUS_SUBSCRIBE */
	char ticket_url[256];
	char incident_url[256];
	char prober_url[256];
	char status_url[256];
	char http_addr[256];     /* this process's listener, host:port */
	int64_t admins[CONFIG_MAX_ADMINS];
	int n_admins;
	int64_t admin_chat;      /* 0 if unset */
} config;

/*
 * Load the config for `service` (e.g. "ticket-service"); default_http is
 * that service's default HTTP listener ("127.0.0.1:9410"), NULL for none.
 * On success *out is set (free with config_free). On failure returns
 * OD_EINVAL with a message in err naming the file, key and expectation.
 */
int config_load(config **out, const char *service, const char *default_http,
    char *err, size_t errlen);
/* Parse from a string instead of a file (tests). The environment applies. */
int config_load_string(config **out, const char *service,
    const char *default_http, const char *json, char *err, size_t errlen);
void config_free(config *c); /* NULL-safe */

/* A top-level member of the file, or NULL. Borrowed from c. */
const cJSON *config_section(const config *c, const char *name);
bool config_is_admin(const config *c, int64_t user_id);
/* The req/rep url of "ticket", "incident", "prober" or "status"; NULL if
 * the name is unknown. */
const char *config_service_url(const config *c, const char *name);

/*
 * Typed getters for a member `key` of object `obj` (obj may be NULL:
 * then the default applies). `path` is obj's own path for messages ("" for
 * the root, "targets[2]"). A missing key gives the default; a present key
 * of the wrong type or out of range gives OD_EINVAL and a message in err.
 * Strings are borrowed from the cJSON tree.
 */
int config_get_string(const cJSON *obj, const char *path, const char *key,
    const char *def, const char **out, char *err, size_t errlen);
int config_get_int(const cJSON *obj, const char *path, const char *key,
    int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
    size_t errlen);
int config_get_double(const cJSON *obj, const char *path, const char *key,
    double def, double min, double max, double *out, char *err,
    size_t errlen);
int config_get_bool(const cJSON *obj, const char *path, const char *key,
    bool def, bool *out, char *err, size_t errlen);
/* A duration: a number of seconds or a string like "30s", "5m", "2h". */
int config_get_duration_ms(const cJSON *obj, const char *path,
    const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
    char *err, size_t errlen);
/* One of `choices` (NULL-terminated); *out is its index. */
int config_get_enum(const cJSON *obj, const char *path, const char *key,
    const char *const *choices, int def, int *out, char *err, size_t errlen);
/* An array member (or NULL when missing); err if present and not an
 * array. */
int config_get_array(const cJSON *obj, const char *path, const char *key,
    const cJSON **out, char *err, size_t errlen);
/* An object member (or NULL when missing); err if not an object. */
int config_get_object(const cJSON *obj, const char *path, const char *key,
    const cJSON **out, char *err, size_t errlen);

/* The value of environment variable name, or def when unset or empty. */
const char *config_env(const char *name, const char *def);

#endif /* OPSDESK_CONFIG_H */
