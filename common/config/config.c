/*
 * config — the suite config file and the environment. See config.h.
 */
#include "config.h"
#include "config_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "log/log.h"
#include "util/util.h"

static bool
log_level_valid(const char *s)
{
	return log_level_parse(s) >= 0;
}

const char *
config_env(const char *name, const char *def)
{
	const char *v = getenv(name);
	return (v != NULL && *v != '\0') ? v : def;
}

extern char **environ;

void
config_env_clear(void)
{
	char name[256];
	bool again = true;
	while (again) {
		again = false;
		for (char **e = environ; *e != NULL; e++) {
			const char *eq = strchr(*e, '=');
			size_t n
			    = eq != NULL ? (size_t) (eq - *e) : strlen(*e);
			if (strncmp(*e, "OPSDESK_", 8) == 0
			    && n < sizeof(name)) {
				memcpy(name, *e, n);
				name[n] = '\0';
				unsetenv(name);
				again = true; /* environ changed: start over */
				break;
			}
		}
	}
}

int
config_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return OD_EINVAL;
}

/* "targets[2]" + "interval" -> "targets[2].interval" */
static void
key_path(char *out, size_t size, const char *path, const char *key)
{
	if (path == NULL || *path == '\0') {
		snprintf(out, size, "%s", key);
	} else {
		snprintf(out, size, "%s.%s", path, key);
	}
}

/* The member key of obj, or NULL when obj is NULL or the member is
 * missing or null: every getter then falls back to its default. */
static const cJSON *
member(const cJSON *obj, const char *key)
{
	const cJSON *v
	    = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
	return cJSON_IsNull(v) ? NULL : v;
}

const char *
config_type_name(const cJSON *v)
{
	if (cJSON_IsString(v)) {
		return "a string";
	} else if (cJSON_IsNumber(v)) {
		return "a number";
	} else if (cJSON_IsBool(v)) {
		return "a boolean";
	} else if (cJSON_IsArray(v)) {
		return "an array";
	} else if (cJSON_IsObject(v)) {
		return "an object";
	} else if (cJSON_IsNull(v)) {
		return "null";
	}
	return "an unknown value";
}

int
config_get_string(const cJSON *obj, const char *path, const char *key,
    const char *def, const char **out, char *err, size_t errlen)
{
	const cJSON *v = member(obj, key);
	char kp[256];
	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		key_path(kp, sizeof(kp), path, key);
		return config_fail(err, errlen,
		    "%s: expected a string, got %s", kp, config_type_name(v));
	}
	*out = v->valuestring;
	return 0;
}

int
config_get_int(const cJSON *obj, const char *path, const char *key,
    int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
    size_t errlen)
{
	const cJSON *v = member(obj, key);
	char kp[256];
	if (v == NULL) {
		*out = def;
		return 0;
	}
	key_path(kp, sizeof(kp), path, key);
	double d;
	if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
	} else if (cJSON_IsString(v) && v->valuestring != NULL) {
		/* Big ids are often quoted to survive JavaScript. */
		char *end;
		errno = 0;
		long long ll = strtoll(v->valuestring, &end, 10);
		if (errno != 0 || end == v->valuestring || *end != '\0') {
			return config_fail(err, errlen,
			    "%s: expected an integer, got \"%s\"", kp,
			    v->valuestring);
		}
		d = (double) ll;
		if (ll < min || ll > max) {
			goto range;
		}
		*out = ll;
		return 0;
	} else {
		return config_fail(err, errlen,
		    "%s: expected an integer, got %s", kp,
		    config_type_name(v));
	}
	if (d != floor(d)) {
		return config_fail(
		    err, errlen, "%s: expected an integer, got %g", kp, d);
	}
	if (d < (double) min || d > (double) max) {
		goto range;
	}
	*out = (int64_t) d;
	return 0;
range:
	return config_fail(err, errlen,
	    "%s: expected an integer from %" PRId64 " to %" PRId64 ", got %g",
	    kp, min, max, d);
}

int
config_get_double(const cJSON *obj, const char *path, const char *key,
    double def, double min, double max, double *out, char *err, size_t errlen)
{
	const cJSON *v = member(obj, key);
	char kp[256];
	if (v == NULL) {
		*out = def;
		return 0;
	}
	key_path(kp, sizeof(kp), path, key);
	if (!cJSON_IsNumber(v)) {
		return config_fail(err, errlen,
		    "%s: expected a number, got %s", kp, config_type_name(v));
	}
	if (v->valuedouble < min || v->valuedouble > max) {
		return config_fail(err, errlen,
		    "%s: expected a number from %g to %g, got %g", kp, min,
		    max, v->valuedouble);
	}
	*out = v->valuedouble;
	return 0;
}

int
config_get_bool(const cJSON *obj, const char *path, const char *key, bool def,
    bool *out, char *err, size_t errlen)
{
	const cJSON *v = member(obj, key);
	char kp[256];
	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsBool(v)) {
		key_path(kp, sizeof(kp), path, key);
		return config_fail(err, errlen,
		    "%s: expected true or false, got %s", kp,
		    config_type_name(v));
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

int
config_get_duration_ms(const cJSON *obj, const char *path, const char *key,
    int64_t def, int64_t min, int64_t max, int64_t *out, char *err,
    size_t errlen)
{
	const cJSON *v = member(obj, key);
	char kp[256];
	if (v == NULL) {
		*out = def;
		return 0;
	}
	key_path(kp, sizeof(kp), path, key);
	int64_t ms;
	if (cJSON_IsNumber(v)) {
		if (v->valuedouble < 0 || v->valuedouble > 1e12) {
			goto bad;
		}
		ms = (int64_t) (v->valuedouble * 1000.0);
	} else if (cJSON_IsString(v) && v->valuestring != NULL) {
		if (od_parse_duration_ms(v->valuestring, &ms) != 0) {
			goto bad;
		}
	} else {
		goto bad;
	}
	if (ms < min || ms > max) {
		char a[32], b[32];
		od_format_duration(min, a, sizeof(a));
		od_format_duration(max, b, sizeof(b));
		return config_fail(err, errlen,
		    "%s: expected a duration from %s to %s", kp, a, b);
	}
	*out = ms;
	return 0;
bad:
	return config_fail(err, errlen,
	    "%s: expected a duration like \"30s\", \"5m\", \"2h\" or a number "
	    "of seconds",
	    kp);
}

int
config_get_enum(const cJSON *obj, const char *path, const char *key,
    const char *const *choices, int def, int *out, char *err, size_t errlen)
{
	const char *s;
	int rv = config_get_string(obj, path, key, NULL, &s, err, errlen);
	if (rv != 0) {
		return rv;
	}
	if (s == NULL) {
		*out = def;
		return 0;
	}
	for (int i = 0; choices[i] != NULL; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	char kp[256];
	sbuf b = SBUF_INIT;
	for (int i = 0; choices[i] != NULL; i++) {
		sbuf_printf(&b, "%s\"%s\"", i ? ", " : "", choices[i]);
	}
	key_path(kp, sizeof(kp), path, key);
	config_fail(err, errlen, "%s: expected one of %s, got \"%s\"", kp,
	    sbuf_str(&b), s);
	sbuf_free(&b);
	return OD_EINVAL;
}

static int
get_typed(const cJSON *obj, const char *path, const char *key, bool array,
    const cJSON **out, char *err, size_t errlen)
{
	const cJSON *v = member(obj, key);
	if (v == NULL) {
		*out = NULL;
		return 0;
	}
	if (array ? !cJSON_IsArray(v) : !cJSON_IsObject(v)) {
		char kp[256];
		key_path(kp, sizeof(kp), path, key);
		return config_fail(err, errlen, "%s: expected %s, got %s", kp,
		    array ? "an array" : "an object", config_type_name(v));
	}
	*out = v;
	return 0;
}

int
config_get_array(const cJSON *obj, const char *path, const char *key,
    const cJSON **out, char *err, size_t errlen)
{
	return get_typed(obj, path, key, true, out, err, errlen);
}

int
config_get_object(const cJSON *obj, const char *path, const char *key,
    const cJSON **out, char *err, size_t errlen)
{
	return get_typed(obj, path, key, false, out, err, errlen);
}

/* Parse "123,456" into the admin list, appending. */
static int
parse_admin_list(config *c, const char *s, char *err, size_t errlen)
{
	const char *p = s;
	while (*p) {
		while (*p == ',' || *p == ' ') {
			p++;
		}
		if (*p == '\0') {
			break;
		}
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (errno != 0 || end == p
		    || (*end != ',' && *end != ' ' && *end != '\0')) {
			return config_fail(err, errlen,
			    "OPSDESK_ADMINS: expected comma-separated "
			    "Telegram "
			    "user ids, got \"%s\"",
			    s);
		}
		if (c->n_admins < CONFIG_MAX_ADMINS
		    && !config_is_admin(c, v)) {
			c->admins[c->n_admins++] = v;
		}
		p = end;
	}
	return 0;
}

/*
 * Every top-level section of the file, whichever executable reads it: a
 * key not here is a typo in every executable. Add one row per new
 * section, and register its schema beside the code that reads it.
 */
static const char *const config_sections[] = {
	"admins",      /* config */
	"admin_chat",  /* config */
	"tickets",     /* ticket-service */
	"faq",         /* ticket-service */
	"incidents",   /* incident-service */
	"checklists",  /* incident-service */
	"maintenance", /* incident-service */
	"targets",     /* health-prober */
	"prober",      /* health-prober */
	"status_page", /* status-publisher */
	"gateway",     /* telegram-gateway */
};
#define N_SECTIONS (sizeof(config_sections) / sizeof(config_sections[0]))

static const config_field admins_elem = { .type = CONFIG_INT };
static const config_field admins_field = { .key = "admins",
	.type = CONFIG_ARRAY,
	.max = CONFIG_MAX_ADMINS,
	.elem = &admins_elem };
static const config_field admin_chat_field
    = { .key = "admin_chat", .type = CONFIG_INT };
CONFIG_SCHEMA(admins, admins_field, NULL)
CONFIG_SCHEMA(admin_chat, admin_chat_field, NULL)

/* Every top-level key known, each section this executable has a schema
 * for checked against it, then the whole tree: duplicate keys and the
 * sizes of what no schema bounds. */
static int
validate(const cJSON *root, char *err, size_t errlen)
{
	const cJSON *sec;
	int rv;

	cJSON_ArrayForEach(sec, root)
	{
		const config_field *f = config_schema_find(sec->string);
		size_t i = 0;
		while (i < N_SECTIONS
		    && strcmp(config_sections[i], sec->string) != 0) {
			i++;
		}
		if (i == N_SECTIONS && f == NULL) {
			return config_unknown_key("", sec->string,
			    config_sections, N_SECTIONS, err, errlen);
		}
		if (f != NULL
		    && (rv = config_check(sec, sec->string, f, err, errlen))
		        != 0) {
			return rv;
		}
	}
	return config_check_tree(root, "", err, errlen);
}

static int
load_common(config *c, const char *service, const char *default_http,
    char *err, size_t errlen)
{
	const cJSON *root = c->root;
	int rv;
	if (!cJSON_IsObject(root)) {
		return config_fail(err, errlen,
		    "%s: the config must be a JSON object",
		    c->path[0] ? c->path : "config");
	}
	if ((rv = validate(root, err, errlen)) != 0) {
		return rv;
	}
	od_strlcpy(c->service, service, sizeof(c->service));

	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	char def_instance[128];
	snprintf(
	    def_instance, sizeof(def_instance), "%s:%d", host, (int) getpid());
	od_strlcpy(c->instance, config_env("OPSDESK_INSTANCE", def_instance),
	    sizeof(c->instance));
	od_strlcpy(c->data_dir, config_env("OPSDESK_DATA_DIR", "./var/data"),
	    sizeof(c->data_dir));
	snprintf(
	    c->store_dir, sizeof(c->store_dir), "%s/%s", c->data_dir, service);
	od_strlcpy(c->log_level, config_env("OPSDESK_LOG_LEVEL", "info"),
	    sizeof(c->log_level));
	if (log_level_valid(c->log_level) == false) {
		return config_fail(err, errlen,
		    "OPSDESK_LOG_LEVEL: expected debug, info, warn or error, "
		    "got \"%s\"",
		    c->log_level);
	}
	static const struct {
		const char *env;
		const char *def;
		size_t off;
	} urls[] = {
		{ "OPSDESK_BUS_PUBLISH", "tcp://127.0.0.1:7400",
		    offsetof(config, bus_publish) },
		{ "OPSDESK_BUS_SUBSCRIBE", "tcp://127.0.0.1:7401",
		    offsetof(config, bus_subscribe) },
		{ "OPSDESK_TICKET_URL", "tcp://127.0.0.1:7410",
		    offsetof(config, ticket_url) },
		{ "OPSDESK_INCIDENT_URL", "tcp://127.0.0.1:7420",
		    offsetof(config, incident_url) },
		{ "OPSDESK_PROBER_URL", "tcp://127.0.0.1:7430",
		    offsetof(config, prober_url) },
		{ "OPSDESK_STATUS_URL", "tcp://127.0.0.1:7440",
		    offsetof(config, status_url) },
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		od_strlcpy((char *) c + urls[i].off,
		    config_env(urls[i].env, urls[i].def), 256);
	}
	od_strlcpy(c->http_addr,
	    config_env("OPSDESK_HTTP_ADDR", default_http ? default_http : ""),
	    sizeof(c->http_addr));

	const cJSON *admins;
	rv = config_get_array(root, "", "admins", &admins, err, errlen);
	if (rv != 0) {
		return rv;
	}
	int i = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, admins)
	{
		char kp[64];
		snprintf(kp, sizeof(kp), "admins[%d]", i++);
		int64_t id;
		if (cJSON_IsNumber(a)) {
			if (a->valuedouble != floor(a->valuedouble)) {
				return config_fail(err, errlen,
				    "%s: expected an integer user id", kp);
			}
			id = (int64_t) a->valuedouble;
		} else if (cJSON_IsString(a) && a->valuestring != NULL) {
			/* Quoted ids keep all 64 bits (JSON numbers are
			 * doubles in many tools). */
			char *end;
			errno = 0;
			id = strtoll(a->valuestring, &end, 10);
			if (errno != 0 || *end != '\0'
			    || end == a->valuestring) {
				return config_fail(err, errlen,
				    "%s: expected a Telegram user id (a "
				    "number), got \"%s\"",
				    kp, a->valuestring);
			}
		} else {
			return config_fail(err, errlen,
			    "%s: expected a Telegram user id (a number), got "
			    "%s",
			    kp, config_type_name(a));
		}
		if (id <= 0) {
			return config_fail(err, errlen,
			    "%s: expected a positive integer user id", kp);
		}
		if (c->n_admins < CONFIG_MAX_ADMINS
		    && !config_is_admin(c, id)) {
			c->admins[c->n_admins++] = id;
		}
	}
	const char *env_admins = config_env("OPSDESK_ADMINS", NULL);
	if (env_admins != NULL
	    && (rv = parse_admin_list(c, env_admins, err, errlen)) != 0) {
		return rv;
	}
	rv = config_get_int(root, "", "admin_chat", 0, INT64_MIN, INT64_MAX,
	    &c->admin_chat, err, errlen);
	if (rv != 0) {
		return rv;
	}
	const char *env_chat = config_env("OPSDESK_ADMIN_CHAT", NULL);
	if (env_chat != NULL) {
		char *end;
		errno = 0;
		long long v = strtoll(env_chat, &end, 10);
		if (errno != 0 || *end != '\0' || end == env_chat) {
			return config_fail(err, errlen,
			    "OPSDESK_ADMIN_CHAT: expected a chat id, got "
			    "\"%s\"",
			    env_chat);
		}
		c->admin_chat = v;
	}
	return 0;
}

static int
finish(config *c, const char *service, const char *default_http, char *err,
    size_t errlen, config **out)
{
	int rv = load_common(c, service, default_http, err, errlen);
	if (rv != 0) {
		config_free(c);
		return rv;
	}
	*out = c;
	return 0;
}

int
config_load_string(config **out, const char *service, const char *default_http,
    const char *json, char *err, size_t errlen)
{
	config *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return OD_ENOMEM;
	}
	const char *end = NULL;
	size_t len = strlen(json);
	size_t bad = config_utf8_check(json, len);
	if (len > CONFIG_FILE_MAX) {
		config_free(c);
		return config_fail(err, errlen,
		    "config: %zu bytes, more than the %u allowed", len,
		    CONFIG_FILE_MAX);
	}
	if (bad < len) {
		config_free(c);
		return config_fail(
		    err, errlen, "config: invalid UTF-8 at byte %zu", bad);
	}
	c->root = cJSON_ParseWithOpts(json, &end, true);
	if (c->root == NULL) {
		size_t off = end ? (size_t) (end - json) : 0;
		config_free(c);
		return config_fail(
		    err, errlen, "config: invalid JSON near byte %zu", off);
	}
	return finish(c, service, default_http, err, errlen, out);
}

static int
line_of(const char *text, size_t off)
{
	int line = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		line += text[i] == '\n';
	}
	return line;
}

/*
 * finish, and tell auth the suite's admin list: every service checks an
 * actor's is_admin against it (only the process's own config, not the
 * strings tests load).
 */
static int
finish_process(config *c, const char *service, const char *default_http,
    char *err, size_t errlen, config **out)
{
	int rv = finish(c, service, default_http, err, errlen, out);
	if (rv == 0) {
		auth_set_admins((*out)->admins, (*out)->n_admins);
	}
	return rv;
}

int
config_load(config **out, const char *service, const char *default_http,
    char *err, size_t errlen)
{
	return config_load_file(out, NULL, service, default_http, err, errlen);
}

int
config_load_file(config **out, const char *file, const char *service,
    const char *default_http, char *err, size_t errlen)
{
	const char *path
	    = file != NULL ? file : config_env("OPSDESK_CONFIG", NULL);
	bool explicit = file == NULL && path != NULL;
	if (path == NULL && access("./opsdesk.json", R_OK) == 0) {
		path = "./opsdesk.json";
	}
	config *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return OD_ENOMEM;
	}
	if (path == NULL) {
		c->root = cJSON_CreateObject();
		if (c->root == NULL) {
			free(c);
			return OD_ENOMEM;
		}
		return finish_process(
		    c, service, default_http, err, errlen, out);
	}
	od_strlcpy(c->path, path, sizeof(c->path));
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		int e = errno;
		config_free(c);
		return config_fail(err, errlen,
		    "%s: cannot read the config%s: %s", path,
		    explicit ? " named by OPSDESK_CONFIG" : "", strerror(e));
	}
	sbuf b = SBUF_INIT;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0
	    && b.len <= CONFIG_FILE_MAX) {
		sbuf_append_len(&b, chunk, n);
	}
	fclose(f);
	if (sbuf_failed(&b)) {
		sbuf_free(&b);
		config_free(c);
		return OD_ENOMEM;
	}
	if (b.len > CONFIG_FILE_MAX) {
		sbuf_free(&b);
		config_free(c);
		return config_fail(err, errlen,
		    "%s: larger than the %u bytes a config may have", path,
		    CONFIG_FILE_MAX);
	}
	const char *end = NULL;
	const char *text = sbuf_str(&b);
	size_t bad = config_utf8_check(text, b.len);
	if (bad < b.len || strlen(text) != b.len) {
		if (bad > strlen(text)) {
			bad = strlen(text); /* a NUL byte */
		}
		int line = line_of(text, bad);
		sbuf_free(&b);
		config_free(c);
		return config_fail(err, errlen,
		    "%s:%d: invalid UTF-8 (byte %zu of the file)", path, line,
		    bad);
	}
	c->root = cJSON_ParseWithOpts(text, &end, true);
	if (c->root == NULL) {
		/* Point at the line of the syntax error. */
		size_t off = end ? (size_t) (end - text) : 0;
		int line = line_of(text, off);
		sbuf_free(&b);
		config_free(c);
		return config_fail(
		    err, errlen, "%s:%d: invalid JSON", path, line);
	}
	sbuf_free(&b);
	int rv = load_common(c, service, default_http, err, errlen);
	if (rv != 0) {
		/* Prefix the file name so the operator knows where to look. */
		if (err != NULL && errlen > 0
		    && strncmp(err, path, strlen(path))) {
			char tmp[512];
			snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
			od_strlcpy(err, tmp, errlen);
		}
		config_free(c);
		return rv;
	}
	auth_set_admins(c->admins, c->n_admins);
	*out = c;
	return 0;
}

void
config_free(config *c)
{
	if (c == NULL) {
		return;
	}
	cJSON_Delete(c->root);
	free(c);
}

const cJSON *
config_section(const config *c, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(c->root, name);
}

bool
config_is_admin(const config *c, int64_t user_id)
{
	for (int i = 0; i < c->n_admins; i++) {
		if (c->admins[i] == user_id) {
			return true;
		}
	}
	return false;
}

const char *
config_service_url(const config *c, const char *name)
{
	if (strcmp(name, "ticket") == 0
	    || strcmp(name, "ticket-service") == 0) {
		return c->ticket_url;
	}
	if (strcmp(name, "incident") == 0
	    || strcmp(name, "incident-service") == 0) {
		return c->incident_url;
	}
	if (strcmp(name, "prober") == 0
	    || strcmp(name, "health-prober") == 0) {
		return c->prober_url;
	}
	if (strcmp(name, "status") == 0
	    || strcmp(name, "status-publisher") == 0) {
		return c->status_url;
	}
	return NULL;
}
