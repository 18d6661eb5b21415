/*
 * targets — the `targets` and `prober` sections of the suite config,
 * validated up front so a bad target stops the start with a message that
 * names it, instead of failing quietly at its first probe.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prober.h"
#include "util/util.h"

const char *const probe_kind_names[]
    = { "http", "tcp", "service", "metric", NULL };

static const char *const severity_names[]
    = { "critical", "high", "medium", "low", NULL };
static const char *const json_op_names[]
    = { "exists", "eq", "ne", "gt", "ge", "lt", "le", "contains", NULL };
static const char *const method_names[] = { "GET", "HEAD", "POST", NULL };
static const char *const format_names[] = { "json", "prometheus", NULL };

#define TARGET_MAX_ID 64

uint64_t
target_hash(const char *id)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *) id; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

int
shard_parse(const char *s, unsigned *index, unsigned *count)
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
target_in_shard(uint64_t hash, unsigned index, unsigned count)
{
	/* The high bits mix better than FNV's low ones. */
	return count <= 1 || ((hash >> 17) % count) == index;
}

target *
target_find(const target_set *ts, const char *id)
{
	for (size_t i = 0; ts != NULL && i < ts->n; i++) {
		if (strcmp(ts->v[i].id, id) == 0) {
			return &ts->v[i];
		}
	}
	return NULL;
}

static void
target_free(target *t)
{
	free(t->id);
	free(t->name);
	free(t->group);
	free(t->url);
	free(t->body_contains);
	free(t->body_not_contains);
	free(t->json.path);
	free(t->json.str);
	free(t->host);
	free(t->service_url);
	for (size_t i = 0; i < t->n_metrics; i++) {
		free(t->metrics[i].name);
		free(t->metrics[i].path);
		free(t->metrics[i].metric);
		free(t->metrics[i].labels);
		free(t->metrics[i].unit);
	}
	free(t->metrics);
	memset(t, 0, sizeof(*t));
}

void
target_set_free(target_set *ts)
{
	if (ts == NULL) {
		return;
	}
	for (size_t i = 0; i < ts->n; i++) {
		target_free(&ts->v[i]);
	}
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
}

/* A copy of s, or NULL for NULL; *oom set when the copy failed. */
static char *
dup_opt(const char *s, bool *oom)
{
	char *d;
	if (s == NULL) {
		return NULL;
	}
	if ((d = strdup(s)) == NULL) {
		*oom = true;
	}
	return d;
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

/* expect_status: [200, "2xx", "200-299"] into lo/hi ranges. */
static int
parse_status(
    const cJSON *o, const char *path, target *t, char *err, size_t errlen)
{
	const cJSON *arr = NULL, *it;
	int rv;

	if ((rv = config_get_array(
	         o, path, "expect_status", &arr, err, errlen))
	    != 0) {
		return rv;
	}
	if (arr == NULL) {
		t->status_lo[0] = 200;
		t->status_hi[0] = 399;
		t->n_status = 1;
		return 0;
	}
	cJSON_ArrayForEach(it, arr)
	{
		int lo, hi;
		char extra;
		if (t->n_status == TARGET_MAX_STATUS) {
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
		t->status_lo[t->n_status] = (uint16_t) lo;
		t->status_hi[t->n_status] = (uint16_t) hi;
		t->n_status++;
	}
	if (t->n_status == 0) {
		return fail(
		    err, errlen, path, "expect_status", "must not be empty");
	}
	return 0;
}

static int
parse_json_cond(
    const cJSON *o, const char *path, target *t, char *err, size_t errlen)
{
	const cJSON *j = NULL, *v;
	const char *p = NULL;
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
	t->has_json = true;
	t->json.op = (json_op) op;
	t->json.path = dup_opt(p, &oom);
	if (cJSON_IsNumber(v)) {
		char num[64];
		t->json.is_num = true;
		t->json.num = v->valuedouble;
		snprintf(num, sizeof(num), "%.17g", v->valuedouble);
		t->json.str = dup_opt(num, &oom);
	} else if (cJSON_IsString(v) && v->valuestring != NULL) {
		t->json.str = dup_opt(v->valuestring, &oom);
	} else if (cJSON_IsBool(v)) {
		t->json.str
		    = dup_opt(cJSON_IsTrue(v) ? "true" : "false", &oom);
	} else if (v != NULL) {
		return fail(err, errlen, sub, "value",
		    "expected a number, string or boolean");
	}
	if (op >= JSON_OP_GT && op <= JSON_OP_LE && !t->json.is_num) {
		return fail(err, errlen, sub, "value",
		    "a number is required for gt/ge/lt/le");
	}
	return oom ? OD_ENOMEM : 0;
}

static int
parse_url(const cJSON *o, const char *path, target *t, bool *oom, char *err,
    size_t errlen)
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
	t->url = dup_opt(url, oom);
	return 0;
}

static int
parse_http(
    const cJSON *o, const char *path, target *t, char *err, size_t errlen)
{
	const char *bc = NULL, *bnc = NULL;
	int64_t warn;
	int m, rv;
	bool oom = false;

	if ((rv = parse_url(o, path, t, &oom, err, errlen)) != 0
	    || (rv = config_get_enum(
	            o, path, "method", method_names, 0, &m, err, errlen))
	        != 0
	    || (rv = parse_status(o, path, t, err, errlen)) != 0
	    || (rv = config_get_string(
	            o, path, "body_contains", NULL, &bc, err, errlen))
	        != 0
	    || (rv = config_get_string(
	            o, path, "body_not_contains", NULL, &bnc, err, errlen))
	        != 0
	    || (rv = parse_json_cond(o, path, t, err, errlen)) != 0
	    || (rv = config_get_duration_ms(o, path, "degraded_latency", 0, 0,
	            3600000, &t->degraded_ms, err, errlen))
	        != 0
	    || (rv = config_get_int(o, path, "cert_expiry_warn_days", 14, 0,
	            3650, &warn, err, errlen))
	        != 0
	    || (rv = config_get_bool(
	            o, path, "tls_verify", true, &t->tls_verify, err, errlen))
	        != 0) {
		return rv;
	}
	t->method = method_names[m];
	t->body_contains = dup_opt(bc, &oom);
	t->body_not_contains = dup_opt(bnc, &oom);
	t->cert_warn_days = (int) warn;
	return oom ? OD_ENOMEM : 0;
}

static int
parse_tcp(
    const cJSON *o, const char *path, target *t, char *err, size_t errlen)
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
	t->host = dup_opt(host, &oom);
	t->port = (int) port;
	return oom ? OD_ENOMEM : 0;
}

static int
parse_service(const config *c, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
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
	    && strncmp(url, "inproc://", 9) != 0) {
		return fail(err, errlen, path, "url",
		    "expected an NNG url like tcp://127.0.0.1:7410");
	}
	t->service_url = dup_opt(url, &oom);
	return oom ? OD_ENOMEM : 0;
}

static int
parse_metric(
    const cJSON *o, const char *path, target *t, char *err, size_t errlen)
{
	const cJSON *arr = NULL, *it;
	char sub[96];
	int fmt, rv;
	size_t i = 0, n;
	bool oom = false;

	if ((rv = parse_url(o, path, t, &oom, err, errlen)) != 0
	    || (rv = config_get_enum(
	            o, path, "format", format_names, 0, &fmt, err, errlen))
	        != 0
	    || (rv = parse_status(o, path, t, err, errlen)) != 0
	    || (rv = config_get_array(o, path, "values", &arr, err, errlen))
	        != 0) {
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
	if ((t->metrics = calloc(n, sizeof(*t->metrics))) == NULL) {
		return OD_ENOMEM;
	}
	t->n_metrics = n;
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
		ms->name = dup_opt(name, &oom);
		ms->path = dup_opt(p, &oom);
		ms->metric = dup_opt(m, &oom);
		ms->labels = dup_opt(l, &oom);
		ms->unit = dup_opt(u, &oom);
	}
	return oom ? OD_ENOMEM : 0;
}

static int
parse_target(const config *c, const cJSON *o, const char *path, target *t,
    char *err, size_t errlen)
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
	if ((rv = config_get_string(o, path, "name", id, &name, err, errlen))
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
	t->kind = (probe_kind) kind;
	t->failure_threshold = (uint32_t) ft;
	t->success_threshold = (uint32_t) st;
	t->criticality = crit + 1; /* SEVERITY_CRITICAL is 1 */
	t->id = dup_opt(id, &oom);
	t->name = dup_opt(name, &oom);
	t->group = dup_opt(group, &oom);
	t->hash = target_hash(id);
	if (oom) {
		return OD_ENOMEM;
	}
	switch (t->kind) {
	case PROBE_HTTP:
		return parse_http(o, path, t, err, errlen);
	case PROBE_TCP:
		return parse_tcp(o, path, t, err, errlen);
	case PROBE_SERVICE:
		return parse_service(c, o, path, t, err, errlen);
	case PROBE_METRIC:
		return parse_metric(o, path, t, err, errlen);
	}
	return OD_EINVAL;
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
	    || (rv = config_get_duration_ms(p, "prober", "flush_interval",
	            1000, 100, 600000, &s->flush_ms, err, errlen))
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
	return 0;
}

int
targets_load(const config *c, const char *shard, target_set *out, char *err,
    size_t errlen)
{
	target_set ts;
	const cJSON *arr = NULL, *it;
	char path[48];
	size_t i = 0, n;
	int rv;

	memset(&ts, 0, sizeof(ts));
	ts.settings.shard_count = 1;
	if (shard != NULL && shard[0] != '\0'
	    && shard_parse(
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
		snprintf(path, sizeof(path), "targets[%zu]", i++);
		ts.n++; /* counted first so target_set_free frees it */
		if ((rv = parse_target(c, it, path, t, err, errlen)) != 0) {
			goto out;
		}
		for (size_t j = 0; j + 1 < ts.n; j++) {
			if (strcmp(ts.v[j].id, t->id) == 0) {
				snprintf(err, errlen,
				    "%s.id: \"%s\" is already used by "
				    "targets[%zu]",
				    path, t->id, j);
				rv = OD_EINVAL;
				goto out;
			}
		}
		if (!target_in_shard(t->hash, ts.settings.shard_index,
		        ts.settings.shard_count)) {
			target_free(t);
			ts.n--;
		}
	}
	*out = ts;
	return 0;
out:
	target_set_free(&ts);
	return rv;
}
