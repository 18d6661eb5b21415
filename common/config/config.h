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
	cJSON *root;          /* the whole file; an empty object if none */
	char path[1024];      /* the file read, "" if none */
	char service[64];     /* executable name */
	char instance[128];   /* OPSDESK_INSTANCE or host:pid */
	char data_dir[1024];  /* $OPSDESK_DATA_DIR or ./var/data */
	char store_dir[1100]; /* data_dir/service */
	char log_level[16];
	char bus_publish[256];   /* OPSDESK_BUS_PUBLISH */
	char bus_subscribe[256]; /* OPSDESK_BUS_SUBSCRIBE */
	char ticket_url[256];
	char incident_url[256];
	char prober_url[256];
	char status_url[256];
	char http_addr[256]; /* this process's listener, host:port */
	int64_t admins[CONFIG_MAX_ADMINS];
	int n_admins;
	int64_t admin_chat; /* 0 if unset */
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
    double def, double min, double max, double *out, char *err, size_t errlen);
int config_get_bool(const cJSON *obj, const char *path, const char *key,
    bool def, bool *out, char *err, size_t errlen);
/* A duration: a number of seconds or a string like "30s", "5m", "2h". */
int config_get_duration_ms(const cJSON *obj, const char *path, const char *key,
    int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
    size_t errlen);
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

/*
 * Schemas. Every top-level section of the file is validated against a
 * declarative table before any service reads it: an unknown key is an
 * error naming its path and the nearest known key ("gateway.throtle:
 * unknown key, did you mean \"throttle\"?"), a value of the wrong JSON
 * type is an error, strings and arrays are bounded. The typed getters
 * above still check ranges and meanings when the owner reads the section.
 *
 * A table is an array of config_field ending with a row whose key is
 * NULL. An owner declares its section beside the code that reads it and
 * registers it with CONFIG_SCHEMA:
 *
 *	static const config_field limits_fields[] = {
 *		{ .key = "open_per_user", .type = CONFIG_INT },
 *		{ .key = "creations_per_hour", .type = CONFIG_INT },
 *		{ .key = NULL },
 *	};
 *	static const config_field tickets_fields[] = {
 *		{ .key = "limits", .type = CONFIG_OBJECT, .members =
 *limits_fields }, { .key = "reopen_days", .type = CONFIG_INT }, { .key = NULL
 *},
 *	};
 *	static const config_field tickets_section = { "tickets",
 *		CONFIG_OBJECT, .members = tickets_fields };
 *	CONFIG_SCHEMA(tickets, tickets_section, check_fn_or_NULL);
 *
 * A new key is one row. A new top-level section is also one row in
 * config_sections (config.c), which every executable knows so that a
 * section read by another service is not an unknown key here.
 */
typedef enum config_type {
	CONFIG_ANY = 0, /* any JSON value (sizes still bounded) */
	CONFIG_STRING,
	CONFIG_INT, /* a number, or an integer in a string */
	CONFIG_NUMBER,
	CONFIG_BOOL,
	CONFIG_DURATION,         /* a number of seconds or "30s" */
	CONFIG_SCALAR,           /* a string, number or boolean */
	CONFIG_OBJECT,           /* members: its keys */
	CONFIG_STRING_OR_OBJECT, /* a string, or an object of members */
	CONFIG_ARRAY,            /* elem: each element */
	CONFIG_MAP,              /* an object with free keys; elem: values */
} config_type;

typedef struct config_field config_field;
struct config_field {
	const char *key; /* NULL ends a table */
	config_type type;
	size_t max;                  /* STRING: bytes, ARRAY/MAP: entries;
	                              * 0: the defaults below */
	const config_field *members; /* OBJECT, STRING_OR_OBJECT */
	const config_field *elem;    /* ARRAY, MAP (its key is unused) */
};

#define CONFIG_STRING_MAX     4096        /* bytes of a string by default */
#define CONFIG_ARRAY_MAX      1024        /* entries of an array or map */
#define CONFIG_ANY_STRING_MAX 65536       /* any string in the file */
#define CONFIG_FILE_MAX       (32u << 20) /* bytes of the file */

/* Validate v (at path, "" for the root) against f. 0 or OD_EINVAL with
 * the message in err. */
int config_check(const cJSON *v, const char *path, const config_field *f,
    char *err, size_t errlen);

/*
 * Register the schema of a top-level section (f->key is its name) and,
 * optionally, check: the owner's own parse of the loaded config, run by
 * config_check_all (--check-config) so that range and meaning errors are
 * found without starting. Called from constructors (CONFIG_SCHEMA).
 */
void config_register(const config_field *f,
    int (*check)(const config *c, char *err, size_t errlen));
#define CONFIG_SCHEMA(name, field, check)                                     \
	__attribute__((constructor)) static void config_schema_##name(void)   \
	{                                                                     \
		config_register(&(field), (check));                           \
	}

/* Run every registered section's check on c (--check-config). */
int config_check_all(const config *c, char *err, size_t errlen);

/* Load from the file `path` (NULL: $OPSDESK_CONFIG or ./opsdesk.json). */
int config_load_file(config **out, const char *path, const char *service,
    const char *default_http, char *err, size_t errlen);

/* The value of environment variable name, or def when unset or empty. */
const char *config_env(const char *name, const char *def);
/* Unset every OPSDESK_* variable: unit tests call it first, so that what
 * they assert does not depend on the shell that runs them. */
void config_env_clear(void);

#endif /* OPSDESK_CONFIG_H */
