/*
 * targets — the `targets` and `prober` sections of the suite config,
 * validated up front so a bad target stops the start (or a reload) with a
 * message that names it, instead of failing quietly at its first probe.
 *
 * A target set owns one arena: every string and array of its targets is
 * carved from a few 64 KB chunks and freed at once. At 10,000 targets,
 * five mallocs per target would cost more in headers and rounding than
 * the strings themselves.
 */
#include <ctype.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prober.h"
#include "slo.h"
#include "util/util.h"

const char *const probe_kind_names[]
    = { "http", "tcp", "service", "metric", NULL };

static const char *const severity_names[]
    = { "critical", "high", "medium", "low", NULL };
static const char *const json_op_names[]
    = { "exists", "eq", "ne", "gt", "ge", "lt", "le", "contains", NULL };
static const char *const method_names[] = { "GET", "HEAD", "POST", NULL };
static const char *const format_names[] = { "json", "prometheus", NULL };

#define TARGET_MAX_ID      64
#define TARGET_MAX_HEADERS 32
#define SECRET_MAX         4096
#define ARENA_CHUNK        (64 * 1024)

/* ---- the arena ---- */

struct target_arena_chunk {
	target_arena_chunk *next;
	size_t size;
	size_t used;
	alignas(max_align_t) char data[];
};

/* A point to roll the arena back to: a target of another shard is
 * parsed, then its bytes are given back. */
typedef struct arena_mark {
	target_arena_chunk *chunk;
	size_t used;
} arena_mark;

/* n bytes aligned to align (a power of two): 1 for strings, which are
 * most of the bytes, so they pack without padding. */
static void *
arena_alloc_aligned(target_set *ts, size_t n, size_t align)
{
	target_arena_chunk *c = ts->arena;
	size_t at;

	n = n == 0 ? 1 : n;
	at = c == NULL ? 0 : (c->used + align - 1) & ~(align - 1);
	if (c == NULL || at + n > c->size) {
		size_t size = n > ARENA_CHUNK - sizeof(*c)
		    ? n
		    : ARENA_CHUNK - sizeof(*c);
		if ((c = malloc(sizeof(*c) + size)) == NULL) {
			return NULL;
		}
		c->next = ts->arena;
		c->size = size;
		c->used = 0;
		ts->arena = c;
		at = 0;
	}
	c->used = at + n;
	return c->data + at;
}

/* n bytes aligned for any object (arrays, structs). */
static void *
arena_alloc(target_set *ts, size_t n)
{
	return arena_alloc_aligned(ts, n, alignof(max_align_t));
}

static void *
arena_calloc(target_set *ts, size_t n)
{
	void *p = arena_alloc(ts, n);
	if (p != NULL) {
		memset(p, 0, n);
	}
	return p;
}

static arena_mark
arena_get_mark(const target_set *ts)
{
	arena_mark m = { ts->arena, ts->arena ? ts->arena->used : 0 };
	return m;
}

static void
arena_reset(target_set *ts, arena_mark m)
{
	while (ts->arena != NULL && ts->arena != m.chunk) {
		target_arena_chunk *next = ts->arena->next;
		free(ts->arena);
		ts->arena = next;
	}
	if (ts->arena != NULL) {
		ts->arena->used = m.used;
	}
}

static void
arena_free(target_set *ts)
{
	arena_mark none = { NULL, 0 };
	arena_reset(ts, none);
}

/* A copy of s in the arena, or NULL for NULL; *oom set when it failed. */
static char *
dup_opt(target_set *ts, const char *s, bool *oom)
{
	size_t n;
	char *d;
	if (s == NULL) {
		return NULL;
	}
	n = strlen(s) + 1;
	if ((d = arena_alloc_aligned(ts, n, 1)) == NULL) {
		*oom = true;
		return NULL;
	}
	memcpy(d, s, n);
	return d;
}

static const status_range default_status = { 200, 399 };

uint64_t
prober_target_hash(const char *id)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *) id; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

int
prober_shard_parse(const char *s, unsigned *index, unsigned *count)
{
	char *end;
	unsigned long i, n;

	if (s == NULL || !isdigit((unsigned char) s[0])) {
		return OD_EINVAL;
	}
	i = strtoul(s, &end, 10);
	if (*end != '/' || !isdigit((unsigned char) end[1])) {
		return OD_EINVAL;
	}
	n = strtoul(end + 1, &end, 10);
	if (*end != '\0' || n == 0 || n > 1024 || i >= n) {
		return OD_EINVAL;
	}
	*index = (unsigned) i;
	*count = (unsigned) n;
	return 0;
}

bool
prober_target_in_shard(uint64_t hash, unsigned index, unsigned count)
{
	/* The high bits mix better than FNV's low ones. */
	return count <= 1 || ((hash >> 17) % count) == index;
}

target *
prober_target_find(const target_set *ts, const char *id)
{
	for (size_t i = 0; ts != NULL && i < ts->n; i++) {
		if (strcmp(ts->v[i].id, id) == 0) {
			return &ts->v[i];
		}
	}
	return NULL;
}

static bool
str_eq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
json_eq(const json_cond *a, const json_cond *b)
{
	if (a == NULL || b == NULL) {
		return a == b;
	}
	return a->op == b->op && a->is_num == b->is_num
	    && (!a->is_num || a->num == b->num) && str_eq(a->path, b->path)
	    && str_eq(a->str, b->str);
}

static bool
req_eq(const http_request_opts *a, const http_request_opts *b)
{
	if (a == NULL || b == NULL) {
		return a == b;
	}
	if (a->n_headers != b->n_headers
	    || !str_eq(a->basic_user, b->basic_user)
	    || !str_eq(a->basic_password, b->basic_password)
	    || !str_eq(a->bearer_token, b->bearer_token)) {
		return false;
	}
	for (size_t i = 0; i < a->n_headers; i++) {
		if (strcmp(a->headers[i], b->headers[i]) != 0) {
			return false;
		}
	}
	return true;
}

bool
prober_target_equal(const target *a, const target *b)
{
	if (!str_eq(a->id, b->id) || !str_eq(a->name, b->name)
	    || !str_eq(a->group, b->group) || a->kind != b->kind
	    || a->interval_ms != b->interval_ms
	    || a->timeout_ms != b->timeout_ms
	    || a->failure_threshold != b->failure_threshold
	    || a->success_threshold != b->success_threshold
	    || a->criticality != b->criticality || a->public != b->public
	    || a->tls_verify != b->tls_verify || a->n_status != b->n_status
	    || a->cert_warn_days != b->cert_warn_days
	    || !str_eq(a->url, b->url) || !str_eq(a->method, b->method)
	    || !str_eq(a->body_contains, b->body_contains)
	    || !str_eq(a->body_not_contains, b->body_not_contains)
	    || !json_eq(a->json, b->json) || a->degraded_ms != b->degraded_ms
	    || !req_eq(a->req, b->req) || !str_eq(a->host, b->host)
	    || a->port != b->port || !str_eq(a->service_url, b->service_url)
	    || a->prometheus != b->prometheus || a->n_metrics != b->n_metrics
	    || a->quorum != b->quorum || a->regional != b->regional
	    || a->partial_down != b->partial_down) {
		return false;
	}
	if (a->n_status > 0
	    && memcmp(a->status, b->status, a->n_status * sizeof(*a->status))
	        != 0) {
		return false;
	}
	for (uint32_t i = 0; i < a->n_metrics; i++) {
		const metric_spec *x = &a->metrics[i], *y = &b->metrics[i];
		if (!str_eq(x->name, y->name) || !str_eq(x->path, y->path)
		    || !str_eq(x->metric, y->metric)
		    || !str_eq(x->labels, y->labels)
		    || !str_eq(x->unit, y->unit)) {
			return false;
		}
	}
	return true;
}

/* Header names whose values are credentials (case-insensitive parts). */
static bool
header_is_secret(const char *name, size_t len)
{
	static const char *const exact[]
	    = { "authorization", "proxy-authorization", "cookie", NULL };
	static const char *const parts[]
	    = { "token", "key", "secret", "auth", "pass", "session", NULL };
	char low[129];

	if (len >= sizeof(low)) {
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		low[i] = (char) tolower((unsigned char) name[i]);
	}
	low[len] = '\0';
	for (int i = 0; exact[i] != NULL; i++) {
		if (strcmp(low, exact[i]) == 0) {
			return true;
		}
	}
	for (int i = 0; parts[i] != NULL; i++) {
		if (strstr(low, parts[i]) != NULL) {
			return true;
		}
	}
	return false;
}

const char *
prober_target_redact_header(const char *line, char *out, size_t size)
{
	size_t len = strcspn(line, ":;");

	if (header_is_secret(line, len)) {
		snprintf(out, size, "%.*s: <redacted>", (int) len, line);
	} else {
		snprintf(out, size, "%s", line);
	}
	return out;
}

void
prober_target_set_free(target_set *ts)
{
	if (ts == NULL) {
		return;
	}
	free(ts->v);
	arena_free(ts);
	memset(ts, 0, sizeof(*ts));
}

static bool
id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > TARGET_MAX_ID) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!(isalnum((unsigned char) c) || c == '_' || c == '-'
		        || c == '.')) {
			return false;
		}
	}
	return true;
}

static int
fail(char *err, size_t errlen, const char *path, const char *key,
    const char *what)
{
	snprintf(err, errlen, "%s.%s: %s", path, key, what);
	return OD_EINVAL;
}

/* expect_status: [200, "2xx", "200-299"] into ranges (the default
 * 200-399 is shared, not copied). */
static int
parse_status(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	const cJSON *arr = NULL, *it;
	status_range r[TARGET_MAX_STATUS];
	status_range *copy;
	int n = 0, rv;

	if ((rv = config_get_array(
	         o, path, "expect_status", &arr, err, errlen))
	    != 0) {
		return rv;
	}
	if (arr == NULL) {
		t->status = &default_status;
		t->n_status = 1;
		return 0;
	}
	cJSON_ArrayForEach(it, arr)
	{
		int lo, hi;
		char extra;
		if (n == TARGET_MAX_STATUS) {
			return fail(err, errlen, path, "expect_status",
			    "at most 16 entries");
		}
		if (cJSON_IsNumber(it)) {
			lo = hi = it->valueint;
		} else if (cJSON_IsString(it) && it->valuestring != NULL
		    && strlen(it->valuestring) == 3
		    && isdigit((unsigned char) it->valuestring[0])
		    && strcmp(it->valuestring + 1, "xx") == 0) {
			lo = (it->valuestring[0] - '0') * 100;
			hi = lo + 99;
		} else if (cJSON_IsString(it) && it->valuestring != NULL
		    && sscanf(it->valuestring, "%d-%d%c", &lo, &hi, &extra)
		        == 2) {
			/* a range */
		} else {
			return fail(err, errlen, path, "expect_status",
			    "expected status codes like 200, \"2xx\" or "
			    "\"200-299\"");
		}
		if (lo < 100 || hi > 599 || lo > hi) {
			return fail(err, errlen, path, "expect_status",
			    "status codes must be within 100-599");
		}
		r[n].lo = (uint16_t) lo;
		r[n].hi = (uint16_t) hi;
		n++;
	}
	if (n == 0) {
		return fail(
		    err, errlen, path, "expect_status", "must not be empty");
	}
	if ((copy = arena_alloc(ts, (size_t) n * sizeof(*copy))) == NULL) {
		return OD_ENOMEM;
	}
	memcpy(copy, r, (size_t) n * sizeof(*copy));
	t->status = copy;
	t->n_status = (uint16_t) n;
	return 0;
}

static int
parse_json_cond(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	const cJSON *j = NULL, *v;
	const char *p = NULL;
	json_cond *jc;
	char sub[96];
	int op, rv;
	bool oom = false;

	if ((rv = config_get_object(o, path, "json", &j, err, errlen)) != 0
	    || j == NULL) {
		return rv;
	}
	snprintf(sub, sizeof(sub), "%s.json", path);
	if ((rv = config_get_string(j, sub, "path", NULL, &p, err, errlen))
	    != 0) {
		return rv;
	}
	if (p == NULL) {
		return fail(err, errlen, sub, "path", "required");
	}
	if ((rv = config_get_enum(
	         j, sub, "op", json_op_names, JSON_OP_EQ, &op, err, errlen))
	    != 0) {
		return rv;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "value");
	if (op != JSON_OP_EXISTS && v == NULL) {
		return fail(err, errlen, sub, "value",
		    "required unless op is \"exists\"");
	}
	if ((jc = arena_calloc(ts, sizeof(*jc))) == NULL) {
		return OD_ENOMEM;
	}
	jc->op = (json_op) op;
	jc->path = dup_opt(ts, p, &oom);
	if (cJSON_IsNumber(v)) {
		char num[64];
		jc->is_num = true;
		jc->num = v->valuedouble;
		snprintf(num, sizeof(num), "%.17g", v->valuedouble);
		jc->str = dup_opt(ts, num, &oom);
	} else if (cJSON_IsString(v) && v->valuestring != NULL) {
		jc->str = dup_opt(ts, v->valuestring, &oom);
	} else if (cJSON_IsBool(v)) {
		jc->str
		    = dup_opt(ts, cJSON_IsTrue(v) ? "true" : "false", &oom);
	} else if (v != NULL) {
		return fail(err, errlen, sub, "value",
		    "expected a number, string or boolean");
	}
	if (op >= JSON_OP_GT && op <= JSON_OP_LE && !jc->is_num) {
		return fail(err, errlen, sub, "value",
		    "a number is required for gt/ge/lt/le");
	}
	t->json = jc;
	return oom ? OD_ENOMEM : 0;
}

static int
parse_url(target_set *ts, const cJSON *o, const char *path, target *t,
    bool *oom, char *err, size_t errlen)
{
	const char *url = NULL;
	int rv;

	if ((rv = config_get_string(o, path, "url", NULL, &url, err, errlen))
	    != 0) {
		return rv;
	}
	if (url == NULL) {
		return fail(err, errlen, path, "url", "required");
	}
	if (strncmp(url, "http://", 7) != 0
	    && strncmp(url, "https://", 8) != 0) {
		return fail(err, errlen, path, "url",
		    "expected an http:// or https:// URL");
	}
	t->url = dup_opt(ts, url, oom);
	return 0;
}

/* An HTTP header name: RFC 9110 token characters. */
static bool
header_name_valid(const char *s)
{
	if (*s == '\0' || strlen(s) > 128) {
		return false;
	}
	for (; *s; s++) {
		if (!isalnum((unsigned char) *s)
		    && strchr("!#$%&'*+-.^_`|~", *s) == NULL) {
			return false;
		}
	}
	return true;
}

/* A header value or credential: printable, no CR/LF that would start a
 * header of its own. */
static bool
header_value_valid(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char) *s < 0x20 && *s != '\t') {
			return false;
		}
		if (*s == 0x7f) {
			return false;
		}
	}
	return true;
}

/* The token in file path: its bytes without trailing white space. The
 * error names the file, never its content. */
static int
read_secret_file(target_set *ts, const char *path, const char *fpath,
    char **out, char *err, size_t errlen)
{
	char buf[SECRET_MAX + 2];
	size_t n;
	bool oom = false;
	FILE *f = fopen(fpath, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s.bearer_token_file: cannot read %s",
		    path, fpath);
		return OD_EINVAL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n > SECRET_MAX) {
		return fail(err, errlen, path, "bearer_token_file",
		    "the token is longer than 4096 bytes");
	}
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char) buf[n - 1])) {
		buf[--n] = '\0';
	}
	if (n == 0 || strlen(buf) != n || !header_value_valid(buf)) {
		return fail(err, errlen, path, "bearer_token_file",
		    "expected one line holding the token");
	}
	*out = dup_opt(ts, buf, &oom);
	memset(buf, 0, sizeof(buf));
	return oom ? OD_ENOMEM : 0;
}

/* headers, basic_auth, bearer_token / bearer_token_file. */
static int
parse_request_opts(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	const cJSON *hdrs = NULL, *basic = NULL, *h;
	const char *tok = NULL, *tok_file = NULL, *user = NULL, *pass = NULL;
	http_request_opts *req;
	char sub[96];
	size_t n = 0;
	int rv;
	bool oom = false, has_authz = false;

	if ((rv = config_get_object(o, path, "headers", &hdrs, err, errlen))
	        != 0
	    || (rv = config_get_object(
	            o, path, "basic_auth", &basic, err, errlen))
	        != 0
	    || (rv = config_get_string(
	            o, path, "bearer_token", NULL, &tok, err, errlen))
	        != 0
	    || (rv = config_get_string(o, path, "bearer_token_file", NULL,
	            &tok_file, err, errlen))
	        != 0) {
		return rv;
	}
	if (hdrs == NULL && basic == NULL && tok == NULL && tok_file == NULL) {
		return 0;
	}
	snprintf(sub, sizeof(sub), "%s.headers", path);
	cJSON_ArrayForEach(h, hdrs)
	{
		if (!header_name_valid(h->string)) {
			snprintf(err, errlen,
			    "%s: \"%.60s\" is not a valid header name", sub,
			    h->string);
			return OD_EINVAL;
		}
		if (!cJSON_IsString(h) || h->valuestring == NULL
		    || !header_value_valid(h->valuestring)) {
			/* The value may be a secret: not repeated here. */
			return fail(err, errlen, sub, h->string,
			    "expected a string without control characters");
		}
		if (strcasecmp(h->string, "Authorization") == 0) {
			has_authz = true;
		}
		if (++n > TARGET_MAX_HEADERS) {
			return fail(err, errlen, path, "headers",
			    "at most 32 headers");
		}
	}
	if ((basic != NULL) + (tok != NULL) + (tok_file != NULL) + has_authz
	    > 1) {
		return fail(err, errlen, path,
		    basic != NULL ? "basic_auth" : "bearer_token",
		    "use one of basic_auth, bearer_token, bearer_token_file "
		    "and an Authorization header");
	}
	if ((req = arena_calloc(ts, sizeof(*req))) == NULL
	    || (n > 0
	        && (req->headers = arena_calloc(ts, n * sizeof(char *)))
	            == NULL)) {
		return OD_ENOMEM;
	}
	cJSON_ArrayForEach(h, hdrs)
	{
		size_t ln = strlen(h->string), lv = strlen(h->valuestring);
		char *line = arena_alloc_aligned(ts, ln + 2 + lv + 1, 1);
		if (line == NULL) {
			return OD_ENOMEM;
		}
		/* "Name:" alone would make curl drop the header: an empty
		 * value is sent as "Name;", curl's spelling for it. */
		if (lv == 0) {
			snprintf(line, ln + 2 + lv + 1, "%s;", h->string);
		} else {
			snprintf(line, ln + 2 + lv + 1, "%s: %s", h->string,
			    h->valuestring);
		}
		req->headers[req->n_headers++] = line;
	}
	if (basic != NULL) {
		snprintf(sub, sizeof(sub), "%s.basic_auth", path);
		if ((rv = config_get_string(
		         basic, sub, "username", NULL, &user, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            basic, sub, "password", "", &pass, err, errlen))
		        != 0) {
			return rv;
		}
		if (user == NULL || user[0] == '\0'
		    || strchr(user, ':') != NULL
		    || !header_value_valid(user)) {
			return fail(err, errlen, sub, "username",
			    "required, without ':' or control characters");
		}
		if (!header_value_valid(pass)) {
			return fail(err, errlen, sub, "password",
			    "must not hold control characters");
		}
		req->basic_user = dup_opt(ts, user, &oom);
		req->basic_password = dup_opt(ts, pass, &oom);
	}
	if (tok != NULL) {
		if (tok[0] == '\0' || strlen(tok) > SECRET_MAX
		    || !header_value_valid(tok)) {
			return fail(err, errlen, path, "bearer_token",
			    "expected a non-empty token without control "
			    "characters");
		}
		req->bearer_token = dup_opt(ts, tok, &oom);
	}
	if (tok_file != NULL
	    && (rv = read_secret_file(
	            ts, path, tok_file, &req->bearer_token, err, errlen))
	        != 0) {
		return rv;
	}
	t->req = req;
	return oom ? OD_ENOMEM : 0;
}

static int
parse_http(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	const char *bc = NULL, *bnc = NULL;
	int64_t warn;
	int m, rv;
	bool oom = false;

	if ((rv = parse_url(ts, o, path, t, &oom, err, errlen)) != 0
	    || (rv = config_get_enum(
	            o, path, "method", method_names, 0, &m, err, errlen))
	        != 0
	    || (rv = parse_status(ts, o, path, t, err, errlen)) != 0
	    || (rv = config_get_string(
	            o, path, "body_contains", NULL, &bc, err, errlen))
	        != 0
	    || (rv = config_get_string(
	            o, path, "body_not_contains", NULL, &bnc, err, errlen))
	        != 0
	    || (rv = parse_json_cond(ts, o, path, t, err, errlen)) != 0
	    || (rv = config_get_duration_ms(o, path, "degraded_latency", 0, 0,
	            3600000, &t->degraded_ms, err, errlen))
	        != 0
	    || (rv = config_get_int(o, path, "cert_expiry_warn_days", 14, 0,
	            3650, &warn, err, errlen))
	        != 0
	    || (rv = config_get_bool(
	            o, path, "tls_verify", true, &t->tls_verify, err, errlen))
	        != 0
	    || (rv = parse_request_opts(ts, o, path, t, err, errlen)) != 0) {
		return rv;
	}
	t->method = method_names[m];
	t->body_contains = dup_opt(ts, bc, &oom);
	t->body_not_contains = dup_opt(ts, bnc, &oom);
	t->cert_warn_days = (int) warn;
	return oom ? OD_ENOMEM : 0;
}

static int
parse_tcp(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	const char *host = NULL;
	int64_t port;
	int rv;
	bool oom = false;

	if ((rv = config_get_string(o, path, "host", NULL, &host, err, errlen))
	        != 0
	    || (rv = config_get_int(
	            o, path, "port", 0, 0, 65535, &port, err, errlen))
	        != 0) {
		return rv;
	}
	if (host == NULL || host[0] == '\0') {
		return fail(err, errlen, path, "host", "required");
	}
	if (port == 0) {
		return fail(err, errlen, path, "port", "required (1-65535)");
	}
	t->host = dup_opt(ts, host, &oom);
	t->port = (int) port;
	return oom ? OD_ENOMEM : 0;
}

static int
parse_service(target_set *ts, const config *c, const cJSON *o,
    const char *path, target *t, char *err, size_t errlen)
{
	const char *svc = NULL, *url = NULL;
	int rv;
	bool oom = false;

	if ((rv = config_get_string(
	         o, path, "service", NULL, &svc, err, errlen))
	        != 0
	    || (rv = config_get_string(
	            o, path, "url", NULL, &url, err, errlen))
	        != 0) {
		return rv;
	}
	if (url == NULL && svc != NULL) {
		url = config_service_url(c, svc);
		if (url == NULL) {
			return fail(err, errlen, path, "service",
			    "expected ticket, incident, prober or status");
		}
	}
	if (url == NULL) {
		return fail(err, errlen, path, "service",
		    "a service name or a url (tcp://host:port) is required");
	}
	if (strncmp(url, "tcp://", 6) != 0 && strncmp(url, "ipc://", 6) != 0
	    && strncmp(url, "tls+tcp://", 10) != 0
	    && strncmp(url, "inproc://", 9) != 0) {
		return fail(err, errlen, path, "url",
		    "expected an NNG url like tcp://127.0.0.1:7410");
	}
	t->service_url = dup_opt(ts, url, &oom);
	return oom ? OD_ENOMEM : 0;
}

static int
parse_metric(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	const cJSON *arr = NULL, *it;
	char sub[96];
	int fmt, rv;
	size_t i = 0, n;
	bool oom = false;

	if ((rv = parse_url(ts, o, path, t, &oom, err, errlen)) != 0
	    || (rv = config_get_enum(
	            o, path, "format", format_names, 0, &fmt, err, errlen))
	        != 0
	    || (rv = parse_status(ts, o, path, t, err, errlen)) != 0
	    || (rv = config_get_array(o, path, "values", &arr, err, errlen))
	        != 0
	    || (rv = parse_request_opts(ts, o, path, t, err, errlen)) != 0) {
		return rv;
	}
	t->prometheus = fmt == 1;
	t->method = "GET";
	t->tls_verify = true;
	n = arr == NULL ? 0 : (size_t) cJSON_GetArraySize(arr);
	if (n == 0) {
		return fail(err, errlen, path, "values",
		    "at least one {name, path|metric} is required");
	}
	if (n > 256) {
		return fail(err, errlen, path, "values", "at most 256 values");
	}
	if ((t->metrics = arena_calloc(ts, n * sizeof(*t->metrics))) == NULL) {
		return OD_ENOMEM;
	}
	t->n_metrics = (uint32_t) n;
	cJSON_ArrayForEach(it, arr)
	{
		metric_spec *ms = &t->metrics[i];
		const char *name = NULL, *p = NULL, *m = NULL, *l = NULL,
		           *u = NULL;
		snprintf(sub, sizeof(sub), "%s.values[%zu]", path, i++);
		if (!cJSON_IsObject(it)) {
			snprintf(err, errlen, "%s: expected an object", sub);
			return OD_EINVAL;
		}
		if ((rv = config_get_string(
		         it, sub, "name", NULL, &name, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            it, sub, "path", NULL, &p, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            it, sub, "metric", NULL, &m, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            it, sub, "labels", "", &l, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            it, sub, "unit", "", &u, err, errlen))
		        != 0) {
			return rv;
		}
		if (name == NULL || !id_valid(name)) {
			return fail(err, errlen, sub, "name",
			    "required: letters, digits, _ - . (at most 64)");
		}
		if (t->prometheus && m == NULL) {
			return fail(err, errlen, sub, "metric",
			    "required for format \"prometheus\"");
		}
		if (!t->prometheus && p == NULL) {
			return fail(err, errlen, sub, "path",
			    "required for format \"json\"");
		}
		ms->name = dup_opt(ts, name, &oom);
		ms->path = dup_opt(ts, p, &oom);
		ms->metric = dup_opt(ts, m, &oom);
		ms->labels = dup_opt(ts, l, &oom);
		ms->unit = dup_opt(ts, u, &oom);
	}
	return oom ? OD_ENOMEM : 0;
}

static const char *const partial_names[] = { "up", "degraded", NULL };

/* quorum, regional, partial_down: how the decider folds locations. */
static int
parse_quorum(
    const cJSON *o, const char *path, target *t, char *err, size_t errlen)
{
	int64_t q;
	int partial, rv;

	if ((rv = config_get_int(o, path, "quorum", 0, 0, 16, &q, err, errlen))
	        != 0
	    || (rv = config_get_bool(
	            o, path, "regional", false, &t->regional, err, errlen))
	        != 0
	    /* A regional target's users in a failing location are hit:
	     * degraded; any other stays up below the quorum (a broken
	     * route from one location is no outage). */
	    || (rv = config_get_enum(o, path, "partial_down", partial_names,
	            t->regional ? 1 : 0, &partial, err, errlen))
	        != 0) {
		return rv;
	}
	t->quorum = (uint8_t) q;
	t->partial_down = (uint8_t) (partial == 1
	        ? OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED
	        : OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP);
	return 0;
}

/* The objectives of a target (slo.c), in the arena; most have none. */
static int
parse_slo(target_set *ts, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
{
	slo_spec spec;
	slo_spec *copy;
	bool has = false;
	int rv = prober_slo_parse(o, path, t, &spec, &has, err, errlen);
	if (rv != 0 || !has) {
		return rv;
	}
	if ((copy = arena_alloc_aligned(ts, sizeof(*copy), sizeof(double)))
	    == NULL) {
		return OD_ENOMEM;
	}
	*copy = spec;
	t->slo = copy;
	return 0;
}

static int
parse_target(target_set *ts, const config *c, const cJSON *o, const char *path,
    target *t, char *err, size_t errlen)
{
	const char *id = NULL, *name = NULL, *group = NULL;
	int64_t ft, st;
	int kind, crit, rv;
	bool oom = false;

	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "%s: expected an object", path);
		return OD_EINVAL;
	}
	if ((rv = config_get_string(o, path, "id", NULL, &id, err, errlen))
	    != 0) {
		return rv;
	}
	if (id == NULL || !id_valid(id)) {
		return fail(err, errlen, path, "id",
		    "required: letters, digits, _ - . (at most 64)");
	}
	if (cJSON_GetObjectItemCaseSensitive(o, "kind") == NULL) {
		return fail(err, errlen, path, "kind",
		    "required: http, tcp, service or metric");
	}
	if ((rv = config_get_string(o, path, "name", NULL, &name, err, errlen))
	        != 0
	    || (rv = config_get_string(
	            o, path, "group", "", &group, err, errlen))
	        != 0
	    || (rv = config_get_enum(
	            o, path, "kind", probe_kind_names, 0, &kind, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(o, path, "interval", 30000, 1000,
	            86400000, &t->interval_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(o, path, "timeout", 10000, 100,
	            600000, &t->timeout_ms, err, errlen))
	        != 0
	    || (rv = config_get_int(
	            o, path, "failure_threshold", 3, 1, 100, &ft, err, errlen))
	        != 0
	    || (rv = config_get_int(
	            o, path, "success_threshold", 2, 1, 100, &st, err, errlen))
	        != 0
	    || (rv = config_get_enum(o, path, "criticality", severity_names, 2,
	            &crit, err, errlen))
	        != 0
	    || (rv = config_get_bool(
	            o, path, "public", false, &t->public, err, errlen))
	        != 0) {
		return rv;
	}
	if (t->timeout_ms > t->interval_ms) {
		return fail(err, errlen, path, "timeout",
		    "must not exceed the interval");
	}
	if ((rv = parse_quorum(o, path, t, err, errlen)) != 0) {
		return rv;
	}
	t->kind = (probe_kind) kind;
	t->failure_threshold = (uint32_t) ft;
	t->success_threshold = (uint32_t) st;
	t->criticality = crit + 1; /* SEVERITY_CRITICAL is 1 */
	t->id = dup_opt(ts, id, &oom);
	/* Most targets have no name of their own, or no group: share the
	 * id's bytes and a static "" rather than copy them. */
	t->name = name == NULL || strcmp(name, id) == 0
	    ? t->id
	    : dup_opt(ts, name, &oom);
	t->group = group[0] == '\0' ? (char *) "" : dup_opt(ts, group, &oom);
	t->hash = prober_target_hash(id);
	if (oom) {
		return OD_ENOMEM;
	}
	switch (t->kind) {
	case PROBE_HTTP:
		rv = parse_http(ts, o, path, t, err, errlen);
		break;
	case PROBE_TCP:
		rv = parse_tcp(ts, o, path, t, err, errlen);
		break;
	case PROBE_SERVICE:
		rv = parse_service(ts, c, o, path, t, err, errlen);
		break;
	case PROBE_METRIC:
		rv = parse_metric(ts, o, path, t, err, errlen);
		break;
	default:
		return OD_EINVAL;
	}
	return rv != 0 ? rv : parse_slo(ts, o, path, t, err, errlen);
}

bool
prober_location_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PROBER_LOCATION_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
		        || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'
		        || ch == '.')) {
			return false;
		}
	}
	return true;
}

static const char *const role_names[] = { "prober", "decider", NULL };

/* location, role and location_timeout; the environment (one instance)
 * wins over the shared config file. */
static int
parse_location(const cJSON *p, prober_settings *s, char *err, size_t errlen)
{
	const char *loc = NULL, *env;
	int role, rv;

	if ((rv = config_get_string(
	         p, "prober", "location", "", &loc, err, errlen))
	        != 0
	    || (rv = config_get_enum(
	            p, "prober", "role", role_names, 0, &role, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(p, "prober", "location_timeout", 0,
	            0, 3600000, &s->location_timeout_ms, err, errlen))
	        != 0) {
		return rv;
	}
	if ((env = getenv("OPSDESK_PROBER_LOCATION")) != NULL) {
		loc = env;
	}
	if (loc[0] != '\0' && !prober_location_valid(loc)) {
		snprintf(err, errlen,
		    "%s: expected letters, digits, _ - . (at most %d), got "
		    "\"%.64s\"",
		    env != NULL ? "OPSDESK_PROBER_LOCATION"
		                : "prober.location",
		    PROBER_LOCATION_MAX, loc);
		return OD_EINVAL;
	}
	od_strlcpy(s->location, loc, sizeof(s->location));
	if ((env = getenv("OPSDESK_PROBER_ROLE")) != NULL && env[0] != '\0') {
		if (strcmp(env, "decider") == 0) {
			role = 1;
		} else if (strcmp(env, "prober") == 0) {
			role = 0;
		} else {
			snprintf(err, errlen,
			    "OPSDESK_PROBER_ROLE: expected prober or decider, "
			    "got \"%.32s\"",
			    env);
			return OD_EINVAL;
		}
	}
	s->decider = role == 1;
	if (s->decider && s->location[0] != '\0') {
		snprintf(err, errlen,
		    "a decider has no location (OPSDESK_PROBER_LOCATION or "
		    "prober.location is set with the role decider)");
		return OD_EINVAL;
	}
	return 0;
}

static int
parse_settings(const config *c, prober_settings *s, char *err, size_t errlen)
{
	const cJSON *p = config_section(c, "prober");
	int64_t conc, raw_max;
	int rv;

	if (p != NULL && !cJSON_IsObject(p)) {
		snprintf(err, errlen, "prober: expected an object");
		return OD_EINVAL;
	}
	if ((rv = config_get_int(
	         p, "prober", "concurrency", 64, 1, 4096, &conc, err, errlen))
	        != 0
	    /* Short by default: LMDB keeps as many page buffers as its
	     * largest txn dirtied and its file holds about two txns' worth
	     * of freed pages, so the results of 250 ms rather than 1 s in
	     * one txn is megabytes less resident at 10,000 targets. */
	    || (rv = config_get_duration_ms(p, "prober", "flush_interval", 250,
	            100, 600000, &s->flush_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(p, "prober", "raw_retention",
	            6 * 3600000LL, 60000, 30 * 86400000LL,
	            &s->raw_retention_ms, err, errlen))
	        != 0
	    || (rv = config_get_int(p, "prober", "raw_max", 1000, 10, 100000,
	            &raw_max, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(p, "prober", "minute_retention",
	            48 * 3600000LL, 3600000, 90 * 86400000LL,
	            &s->minute_retention_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(p, "prober", "hour_retention",
	            90 * 86400000LL, 86400000, 3650 * 86400000LL,
	            &s->hour_retention_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(p, "prober", "day_retention",
	            400 * 86400000LL, 86400000, 3650 * 86400000LL,
	            &s->day_retention_ms, err, errlen))
	        != 0
	    || (rv = config_get_bool(p, "prober", "publish_results", true,
	            &s->publish_results, err, errlen))
	        != 0) {
		return rv;
	}
	s->concurrency = (unsigned) conc;
	s->raw_max = (unsigned) raw_max;
	return parse_location(p, s, err, errlen);
}

int
prober_targets_load(const config *c, const char *shard, target_set *out,
    char *err, size_t errlen)
{
	target_set ts;
	const cJSON *arr = NULL, *it;
	char path[48];
	size_t i = 0, n;
	int rv;

	memset(&ts, 0, sizeof(ts));
	ts.settings.shard_count = 1;
	if (shard != NULL && shard[0] != '\0'
	    && prober_shard_parse(
	           shard, &ts.settings.shard_index, &ts.settings.shard_count)
	        != 0) {
		snprintf(err, errlen,
		    "OPSDESK_PROBER_SHARD: expected \"i/N\" with 0 <= i < N, "
		    "got \"%s\"",
		    shard);
		return OD_EINVAL;
	}
	if ((rv = parse_settings(c, &ts.settings, err, errlen)) != 0) {
		return rv;
	}
	if ((rv = config_get_array(c->root, "", "targets", &arr, err, errlen))
	    != 0) {
		return rv;
	}
	n = arr == NULL ? 0 : (size_t) cJSON_GetArraySize(arr);
	if (n > 0 && (ts.v = calloc(n, sizeof(*ts.v))) == NULL) {
		return OD_ENOMEM;
	}
	cJSON_ArrayForEach(it, arr)
	{
		target *t = &ts.v[ts.n];
		arena_mark mark = arena_get_mark(&ts);
		snprintf(path, sizeof(path), "targets[%zu]", i++);
		if ((rv = parse_target(&ts, c, it, path, t, err, errlen))
		    != 0) {
			goto out;
		}
		for (size_t j = 0; j < ts.n; j++) {
			if (strcmp(ts.v[j].id, t->id) == 0) {
				snprintf(err, errlen,
				    "%s.id: \"%s\" is already used by "
				    "targets[%zu]",
				    path, t->id, j);
				rv = OD_EINVAL;
				goto out;
			}
		}
		if (prober_target_in_shard(t->hash, ts.settings.shard_index,
		        ts.settings.shard_count)) {
			ts.n++;
		} else {
			/* Another shard's: give its bytes back. */
			arena_reset(&ts, mark);
			memset(t, 0, sizeof(*t));
		}
	}
	if (ts.n < n && ts.n > 0) {
		/* A shard keeps 1/N of the targets: shrink to them. */
		target *v = realloc(ts.v, ts.n * sizeof(*v));
		ts.v = v != NULL ? v : ts.v;
	}
	*out = ts;
	return 0;
out:
	prober_target_set_free(&ts);
	return rv;
}

/* ---- the schemas of targets and prober (common/config) ---- */

static const config_field status_elem = { .type = CONFIG_SCALAR, .max = 16 };
static const config_field json_fields[] = {
	{ .key = "path", .type = CONFIG_STRING, .max = 512 },
	{ .key = "op", .type = CONFIG_STRING, .max = 16 },
	{ .key = "value", .type = CONFIG_SCALAR, .max = 1024 },
	{ .key = NULL },
};
static const config_field header_value
    = { .type = CONFIG_STRING, .max = 8192 };
static const config_field basic_auth_fields[] = {
	{ .key = "username", .type = CONFIG_STRING, .max = 256 },
	{ .key = "password", .type = CONFIG_STRING, .max = 1024 },
	{ .key = NULL },
};
static const config_field value_fields[] = {
	{ .key = "name", .type = CONFIG_STRING, .max = 128 },
	{ .key = "path", .type = CONFIG_STRING, .max = 512 },
	{ .key = "metric", .type = CONFIG_STRING, .max = 256 },
	{ .key = "labels", .type = CONFIG_STRING, .max = 1024 },
	{ .key = "unit", .type = CONFIG_STRING, .max = 32 },
	{ .key = NULL },
};
static const config_field value_elem
    = { .type = CONFIG_OBJECT, .members = value_fields };
static const config_field slo_latency_fields[] = {
	{ .key = "p50", .type = CONFIG_DURATION },
	{ .key = "p75", .type = CONFIG_DURATION },
	{ .key = "p90", .type = CONFIG_DURATION },
	{ .key = "p95", .type = CONFIG_DURATION },
	{ .key = "p99", .type = CONFIG_DURATION },
	{ .key = "p99.9", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field slo_error_fields[] = {
	{ .key = "metric", .type = CONFIG_STRING, .max = 128 },
	{ .key = "max", .type = CONFIG_NUMBER },
	{ .key = NULL },
};
static const config_field slo_fields[] = {
	{ .key = "availability", .type = CONFIG_NUMBER },
	{ .key = "latency",
	    .type = CONFIG_OBJECT,
	    .members = slo_latency_fields },
	{ .key = "error_ratio",
	    .type = CONFIG_OBJECT,
	    .members = slo_error_fields },
	{ .key = "window", .type = CONFIG_DURATION },
	{ .key = "public", .type = CONFIG_BOOL },
	{ .key = NULL },
};
/* Every kind's keys: a key of another kind is ignored, a typo is not. */
static const config_field target_fields[] = {
	{ .key = "id", .type = CONFIG_STRING, .max = 128 },
	{ .key = "name", .type = CONFIG_STRING, .max = 256 },
	{ .key = "group", .type = CONFIG_STRING, .max = 256 },
	{ .key = "kind", .type = CONFIG_STRING, .max = 16 },
	{ .key = "interval", .type = CONFIG_DURATION },
	{ .key = "timeout", .type = CONFIG_DURATION },
	{ .key = "failure_threshold", .type = CONFIG_INT },
	{ .key = "success_threshold", .type = CONFIG_INT },
	{ .key = "criticality", .type = CONFIG_STRING, .max = 16 },
	{ .key = "public", .type = CONFIG_BOOL },
	/* http, metric */
	{ .key = "url", .type = CONFIG_STRING, .max = 2048 },
	{ .key = "method", .type = CONFIG_STRING, .max = 16 },
	{ .key = "expect_status",
	    .type = CONFIG_ARRAY,
	    .max = 64,
	    .elem = &status_elem },
	{ .key = "body_contains", .type = CONFIG_STRING, .max = 1024 },
	{ .key = "body_not_contains", .type = CONFIG_STRING, .max = 1024 },
	{ .key = "json", .type = CONFIG_OBJECT, .members = json_fields },
	{ .key = "degraded_latency", .type = CONFIG_DURATION },
	{ .key = "cert_expiry_warn_days", .type = CONFIG_INT },
	{ .key = "tls_verify", .type = CONFIG_BOOL },
	{ .key = "headers",
	    .type = CONFIG_MAP,
	    .max = 64,
	    .elem = &header_value },
	{ .key = "basic_auth",
	    .type = CONFIG_OBJECT,
	    .members = basic_auth_fields },
	{ .key = "bearer_token", .type = CONFIG_STRING, .max = 8192 },
	{ .key = "bearer_token_file", .type = CONFIG_STRING, .max = 1024 },
	{ .key = "format", .type = CONFIG_STRING, .max = 16 },
	{ .key = "values",
	    .type = CONFIG_ARRAY,
	    .max = 256,
	    .elem = &value_elem },
	/* tcp */
	{ .key = "host", .type = CONFIG_STRING, .max = 255 },
	{ .key = "port", .type = CONFIG_INT },
	/* service */
	{ .key = "service", .type = CONFIG_STRING, .max = 64 },
	/* several locations (the decider) */
	{ .key = "quorum", .type = CONFIG_INT },
	{ .key = "regional", .type = CONFIG_BOOL },
	{ .key = "partial_down", .type = CONFIG_STRING, .max = 16 },
	/* all: objectives (slo.c) */
	{ .key = "slo", .type = CONFIG_OBJECT, .members = slo_fields },
	{ .key = NULL },
};
static const config_field target_elem
    = { .type = CONFIG_OBJECT, .members = target_fields };
static const config_field targets_section = { .key = "targets",
	.type = CONFIG_ARRAY,
	.max = 100000,
	.elem = &target_elem };

static const config_field prober_fields[] = {
	{ .key = "concurrency", .type = CONFIG_INT },
	{ .key = "flush_interval", .type = CONFIG_DURATION },
	{ .key = "raw_retention", .type = CONFIG_DURATION },
	{ .key = "raw_max", .type = CONFIG_INT },
	{ .key = "minute_retention", .type = CONFIG_DURATION },
	{ .key = "hour_retention", .type = CONFIG_DURATION },
	{ .key = "day_retention", .type = CONFIG_DURATION },
	{ .key = "publish_results", .type = CONFIG_BOOL },
	{ .key = "location", .type = CONFIG_STRING, .max = 64 },
	{ .key = "role", .type = CONFIG_STRING, .max = 16 },
	{ .key = "location_timeout", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field prober_section
    = { .key = "prober", .type = CONFIG_OBJECT, .members = prober_fields };

/* targets and prober are parsed together: one check. */
static int
prober_sections_check(const config *c, char *err, size_t errlen)
{
	target_set ts;
	int rv = prober_targets_load(
	    c, getenv("OPSDESK_PROBER_SHARD"), &ts, err, errlen);
	if (rv == 0) {
		prober_target_set_free(&ts);
	}
	return rv;
}
CONFIG_SCHEMA(targets, targets_section, prober_sections_check)
CONFIG_SCHEMA(prober, prober_section, NULL)
