/*
 * probe_http — one curl transfer per probe (HTTP, metric, and the TCP
 * connect of probe_tcp.c), run by the scheduler's multi handle. Every
 * probe opens a fresh connection, as blackbox_exporter does, so latency
 * and the certificate are those a new client sees.
 */
#define _GNU_SOURCE /* timegm, strptime */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prober.h"
#include "util/util.h"

#define BODY_MAX (1024 * 1024)

#define S_UP       OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
#define S_DEGRADED OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED
#define S_DOWN     OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN

struct probe_job {
	const target *t;
	size_t index;
	CURL *easy;
	bool keep_body; /* a check reads the body */
	char *body;
	size_t len;
	size_t cap;
	struct curl_slist *headers; /* the target's headers, for this job */
	char err[CURL_ERROR_SIZE];
};

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	probe_job *j = arg;
	size_t len = size * n;
	size_t take = len;

	if (!j->keep_body || j->len >= BODY_MAX) {
		return len; /* read and drop */
	}
	if (take > BODY_MAX - j->len) {
		take = BODY_MAX - j->len;
	}
	if (j->len + take + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 4096;
		char *b;
		while (cap < j->len + take + 1) {
			cap *= 2;
		}
		if ((b = realloc(j->body, cap)) == NULL) {
			return 0; /* aborts the transfer: reported as an error
			           */
		}
		j->body = b;
		j->cap = cap;
	}
	memcpy(j->body + j->len, data, take);
	j->len += take;
	j->body[j->len] = '\0';
	return len;
}

/*
 * Headers and credentials. The slist is built per job from the target's
 * lines (curl keeps only the pointer). Credentials go through curl's own
 * options, not a hand-made header, so that curl sends them only to the
 * configured host: a redirect elsewhere does not carry them
 * (CURLOPT_UNRESTRICTED_AUTH stays off), and curl never follows
 * redirects here anyway.
 */
static CURLcode
setup_request_opts(probe_job *j, CURL *e, const http_request_opts *req)
{
	CURLcode rc = CURLE_OK;

	for (size_t i = 0; i < req->n_headers; i++) {
		struct curl_slist *l
		    = curl_slist_append(j->headers, req->headers[i]);
		if (l == NULL) {
			return CURLE_OUT_OF_MEMORY;
		}
		j->headers = l;
	}
	if (j->headers != NULL) {
		rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
	}
	if (req->basic_user != NULL) {
		rc |= curl_easy_setopt(
		    e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		rc |= curl_easy_setopt(e, CURLOPT_USERNAME, req->basic_user);
		rc |= curl_easy_setopt(
		    e, CURLOPT_PASSWORD, req->basic_password);
	}
	if (req->bearer_token != NULL) {
		rc |= curl_easy_setopt(
		    e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER);
		rc |= curl_easy_setopt(
		    e, CURLOPT_XOAUTH2_BEARER, req->bearer_token);
	}
	return rc;
}

/* Curl's header and progress output stays off; errors go to err. */
static int
setup_http(probe_job *j, CURL *e)
{
	const target *t = j->t;
	CURLcode rc = CURLE_OK;

	j->keep_body = t->body_contains != NULL || t->body_not_contains != NULL
	    || t->json != NULL || t->kind == PROBE_METRIC;
	rc |= curl_easy_setopt(e, CURLOPT_URL, t->url);
	if (strcmp(t->method, "HEAD") == 0) {
		rc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(t->method, "POST") == 0) {
		rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	}
	rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	rc |= curl_easy_setopt(
	    e, CURLOPT_USERAGENT, "opsdesk-health-prober/" OPSDESK_VERSION);
	rc |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (t->req != NULL) {
		rc |= setup_request_opts(j, e, t->req);
	}
	if (strncmp(t->url, "https://", 8) == 0) {
		rc |= curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
		if (!t->tls_verify) {
			rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
			rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
		}
	}
	return rc == CURLE_OK ? 0 : OD_EINVAL;
}

int
probe_job_start(const target *t, size_t index, probe_job **out, void **easy)
{
	probe_job *j;
	CURL *e;
	CURLcode rc = CURLE_OK;
	int rv;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		return OD_ENOMEM;
	}
	if ((e = curl_easy_init()) == NULL) {
		free(j);
		return OD_ENOMEM;
	}
	j->t = t;
	j->index = index;
	j->easy = e;
	rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->err);
	rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) t->timeout_ms);
	rc |= curl_easy_setopt(
	    e, CURLOPT_CONNECTTIMEOUT_MS, (long) t->timeout_ms);
	rc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (rc != CURLE_OK) {
		rv = OD_EINVAL;
		goto out;
	}
	rv = t->kind == PROBE_TCP ? probe_tcp_setup(e, t) : setup_http(j, e);
	if (rv == 0) {
		*out = j;
		*easy = e;
		return 0;
	}
out:
	curl_easy_cleanup(e);
	curl_slist_free_all(j->headers);
	free(j);
	return rv;
}

probe_job *
probe_job_of(void *easy)
{
	char *p = NULL;
	curl_easy_getinfo((CURL *) easy, CURLINFO_PRIVATE, &p);
	return (probe_job *) p;
}

size_t
probe_job_index(const probe_job *j)
{
	return j->index;
}

int
probe_parse_cert_time(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	while (*s == ' ') {
		s++;
	}
	end = strptime(s, "%b %d %H:%M:%S %Y", &tm);
	if (end == NULL) {
		return OD_EINVAL;
	}
	*out = (int64_t) timegm(&tm);
	return 0;
}

/* The leaf certificate's expiry from curl's certinfo, or 0. */
static int64_t
cert_not_after(CURL *e)
{
	struct curl_certinfo *ci = NULL;
	int64_t t;

	if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK
	    || ci == NULL || ci->num_of_certs < 1) {
		return 0;
	}
	for (struct curl_slist *l = ci->certinfo[0]; l != NULL; l = l->next) {
		if (strncmp(l->data, "Expire date:", 12) == 0
		    && probe_parse_cert_time(l->data + 12, &t) == 0) {
			return t;
		}
	}
	return 0;
}

static bool
status_expected(const target *t, long status)
{
	for (int i = 0; i < t->n_status; i++) {
		if (status >= t->status[i].lo && status <= t->status[i].hi) {
			return true;
		}
	}
	return false;
}

/* memmem on a body that may hold NULs. */
static bool
body_has(const char *body, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0) {
		return true;
	}
	for (size_t i = 0; body != NULL && i + n <= len; i++) {
		if (body[i] == needle[0] && memcmp(body + i, needle, n) == 0) {
			return true;
		}
	}
	return false;
}

void
probe_http_judge(const target *t, int curl_code, const char *curl_err,
    long status, const char *body, size_t body_len, probe_result *r)
{
	char why[128];

	r->status_code = (int) status;
	r->observed = S_DOWN;
	if (curl_code == CURLE_OPERATION_TIMEDOUT) {
		snprintf(r->error, sizeof(r->error), "timeout after %lld ms",
		    (long long) t->timeout_ms);
		return;
	}
	if (curl_code != CURLE_OK) {
		snprintf(r->error, sizeof(r->error), "%s",
		    curl_err != NULL && curl_err[0] != '\0'
		        ? curl_err
		        : curl_easy_strerror((CURLcode) curl_code));
		return;
	}
	if (!status_expected(t, status)) {
		snprintf(r->error, sizeof(r->error), "HTTP %ld", status);
		return;
	}
	if (t->body_contains != NULL
	    && !body_has(body, body_len, t->body_contains)) {
		snprintf(r->error, sizeof(r->error),
		    "body does not contain \"%.60s\"", t->body_contains);
		return;
	}
	if (t->body_not_contains != NULL
	    && body_has(body, body_len, t->body_not_contains)) {
		snprintf(r->error, sizeof(r->error), "body contains \"%.60s\"",
		    t->body_not_contains);
		return;
	}
	if (t->json != NULL
	    && !prober_extract_json_cond(body != NULL ? body : "", body_len,
	        t->json, why, sizeof(why))) {
		snprintf(r->error, sizeof(r->error), "%s", why);
		return;
	}
	r->observed = S_UP;
	r->error[0] = '\0';
	if (r->cert_not_after_s > 0 && r->cert_days_left < t->cert_warn_days) {
		r->observed = S_DEGRADED;
		snprintf(r->error, sizeof(r->error),
		    "certificate expires in %d days", r->cert_days_left);
	}
	if (t->degraded_ms > 0 && (int64_t) r->latency_ms > t->degraded_ms) {
		r->observed = S_DEGRADED;
		snprintf(r->error, sizeof(r->error),
		    "latency %u ms above %lld ms", (unsigned) r->latency_ms,
		    (long long) t->degraded_ms);
	}
}

/* Extract the values of a metric target; a missing value is a failure
 * of the probe, so a broken exporter shows. */
static void
judge_metric(probe_job *j, probe_result *r, probe_metric_fn fn, void *arg)
{
	const target *t = j->t;
	cJSON *root = NULL;

	if (!t->prometheus) {
		root = cJSON_ParseWithLengthOpts(
		    j->body ? j->body : "", j->len, NULL, false);
		if (root == NULL) {
			r->observed = S_DOWN;
			snprintf(
			    r->error, sizeof(r->error), "body is not JSON");
			return;
		}
	}
	for (size_t i = 0; i < t->n_metrics; i++) {
		const metric_spec *m = &t->metrics[i];
		double v;
		int rv = t->prometheus
		    ? prober_extract_prometheus(j->body ? j->body : "", j->len,
		        m->metric, m->labels, &v)
		    : prober_extract_json_number(
		        prober_extract_json_path(root, m->path), &v);
		if (rv != 0) {
			r->observed = S_DOWN;
			snprintf(r->error, sizeof(r->error),
			    "value %.40s not found", m->name);
			continue;
		}
		if (fn != NULL) {
			fn(arg, j->index, i, v, r->at_ms);
		}
	}
	cJSON_Delete(root);
}

void
probe_job_finish(probe_job *j, int curl_code, probe_result *r,
    probe_metric_fn fn, void *arg)
{
	curl_off_t us = 0;
	long status = 0;

	memset(r, 0, sizeof(*r));
	r->at_ms = od_now_ms();
	r->cert_days_left = -1;
	if (j->t->kind == PROBE_TCP) {
		probe_tcp_judge(j->easy, curl_code, j->err, r);
		goto out;
	}
	curl_easy_getinfo(j->easy, CURLINFO_TOTAL_TIME_T, &us);
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	r->latency_ms = (uint32_t) (us / 1000);
	if ((r->cert_not_after_s = cert_not_after(j->easy)) > 0) {
		int64_t left = r->cert_not_after_s - r->at_ms / 1000;
		r->cert_days_left
		    = (int) (left < 0 ? -((-left + 86399) / 86400)
		                      : left / 86400);
	}
	probe_http_judge(j->t, curl_code, j->err, status, j->body, j->len, r);
	if (j->t->kind == PROBE_METRIC && r->observed != S_DOWN) {
		judge_metric(j, r, fn, arg);
	}
out:
	curl_easy_cleanup(j->easy);
	curl_slist_free_all(j->headers);
	free(j->body);
	free(j);
}
