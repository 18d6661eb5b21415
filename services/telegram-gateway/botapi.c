/*
 * botapi — the Bot API client: POST {base}/bot<token>/<method> with a JSON
 * body over libcurl, the reply parsed with cJSON. Easy handles are pooled
 * so keep-alive connections are reused across threads (a handle is used
 * by one thread at a time). The URL holds the token, so curl's error
 * texts are redacted and CURLOPT_VERBOSE is never set.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log/log.h"

#define POOL_MAX 16

struct botapi {
	char *base; /* "{api}/bot<token>/" */
	metrics *m;
	pthread_mutex_t mtx;
	CURL *pool[POOL_MAX];
	int n_pool;
	_Atomic int aborted; /* set at shutdown: in-flight calls end */
};

/* Only a long poll is cut short at shutdown: a send in flight finishes,
 * or it would be sent again after the restart. */
static int
on_progress(
    void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	botapi *a = arg;
	return a->aborted ? 1 : 0;
}

static int
on_progress_never(
    void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return 0;
}

void
gw_botapi_abort(botapi *a)
{
	if (a != NULL) {
		a->aborted = 1;
	}
}

int
gw_botapi_new(botapi **out, const char *base, const char *token, metrics *m)
{
	botapi *a;
	sbuf b = SBUF_INIT;

	if (base == NULL || token == NULL || *token == '\0') {
		return OD_EINVAL;
	}
	log_add_secret(token);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return OD_ENOMEM;
	}
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/') {
		bl--;
	}
	sbuf_append_len(&b, base, bl);
	sbuf_printf(&b, "/bot%s/", token);
	if (sbuf_failed(&b)) {
		sbuf_free(&b);
		free(a);
		return OD_ENOMEM;
	}
	a->base = sbuf_take(&b, NULL);
	a->m = m;
	pthread_mutex_init(&a->mtx, NULL);
	*out = a;
	return 0;
}

void
gw_botapi_free(botapi *a)
{
	if (a == NULL) {
		return;
	}
	for (int i = 0; i < a->n_pool; i++) {
		curl_easy_cleanup(a->pool[i]);
	}
	pthread_mutex_destroy(&a->mtx);
	free(a->base);
	free(a);
}

static CURL *
pool_get(botapi *a)
{
	CURL *h = NULL;
	pthread_mutex_lock(&a->mtx);
	if (a->n_pool > 0) {
		h = a->pool[--a->n_pool];
	}
	pthread_mutex_unlock(&a->mtx);
	return h ? h : curl_easy_init();
}

static void
pool_put(botapi *a, CURL *h)
{
	pthread_mutex_lock(&a->mtx);
	if (a->n_pool < POOL_MAX) {
		a->pool[a->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&a->mtx);
	if (h != NULL) {
		curl_easy_cleanup(h);
	}
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	sbuf *b = arg;
	sbuf_append_len(b, data, size * nmemb);
	return sbuf_failed(b) ? 0 : size * nmemb;
}

static void
count(botapi *a, const char *method, const char *result)
{
	char labels[128];
	snprintf(labels, sizeof(labels), "method=\"%s\",result=\"%s\"", method,
	    result);
	metric_inc(metrics_counter(a->m, "opsdesk_gateway_botapi_calls_total",
	    "Bot API calls by method and result", labels));
}

/* One call: its easy handle, reply buffer and headers. */
struct botapi_xfer {
	botapi *a;
	CURL *h;
	char method[32];
	sbuf reply;
	struct curl_slist *hdrs;
	curl_mime *mime;
	char errbuf[CURL_ERROR_SIZE];
	void *user;
};

int
gw_botapi_xfer_new(botapi *a, const char *method, const char *body,
    int timeout_ms, void *user, botapi_xfer **out)
{
	char url[512 + 64];
	botapi_xfer *x = calloc(1, sizeof(*x));
	if (x == NULL) {
		return OD_ENOMEM;
	}
	if ((x->h = pool_get(a)) == NULL) {
		free(x);
		return OD_ENOMEM;
	}
	x->a = a;
	x->user = user;
	sbuf_init(&x->reply);
	od_strlcpy(x->method, method, sizeof(x->method));
	snprintf(url, sizeof(url), "%s%s", a->base, method);
	curl_easy_reset(x->h);
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(method, "sendDocument") == 0
	    && (x->mime = gw_botapi_document_mime(x->h, body)) != NULL) {
		/* an upload (botapi_doc.c): multipart, not JSON */
		curl_easy_setopt(x->h, CURLOPT_MIMEPOST, x->mime);
	} else {
		x->hdrs = curl_slist_append(
		    x->hdrs, "Content-Type: application/json");
		curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
		curl_easy_setopt(
		    x->h, CURLOPT_COPYPOSTFIELDS, body ? body : "{}");
	}
	curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < 5000 ? (long) timeout_ms : 5000L);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, &x->reply);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION,
	    strcmp(method, "getUpdates") == 0 ? on_progress
	                                      : on_progress_never);
	curl_easy_setopt(x->h, CURLOPT_XFERINFODATA, a);
	*out = x;
	return 0;
}

CURL *
gw_botapi_xfer_easy(botapi_xfer *x)
{
	return x->h;
}

void *
gw_botapi_xfer_user(botapi_xfer *x)
{
	return x->user;
}

int
gw_botapi_xfer_finish(botapi_xfer *x, int cc_in, botapi_result *res)
{
	botapi *a = x->a;
	CURLcode cc = (CURLcode) cc_in;
	const char *method = x->method;
	int rv = 0;
	cJSON *j = NULL;

	memset(res, 0, sizeof(*res));
	if (cc != CURLE_OK) {
		snprintf(res->description, sizeof(res->description), "%s",
		    x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
		log_redact(res->description, sizeof(res->description));
		res->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
		count(a, method, res->timed_out ? "timeout" : "network");
		rv = OD_EUNAVAIL;
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	res->http_status = (int) status;
	res->error_code = (int) status;
	j = cJSON_ParseWithLength(sbuf_str(&x->reply), x->reply.len);
	if (j == NULL
	    || !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
		/* A proxy's page, a cut reply: not Telegram's word. */
		snprintf(res->description, sizeof(res->description),
		    "HTTP %ld with a body that is not a Bot API reply",
		    status);
		count(a, method, status >= 500 ? "5xx" : "bad_reply");
		goto out;
	}
	res->telegram = true;
	res->ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"));
	const cJSON *ec = cJSON_GetObjectItemCaseSensitive(j, "error_code");
	if (cJSON_IsNumber(ec)) {
		res->error_code = (int) ec->valuedouble;
	}
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "description");
	if (cJSON_IsString(d) && d->valuestring != NULL) {
		snprintf(res->description, sizeof(res->description), "%s",
		    d->valuestring);
		log_redact(res->description, sizeof(res->description));
	}
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "parameters");
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(p, "retry_after");
	if (cJSON_IsNumber(ra)) {
		res->retry_after = (int) ra->valuedouble;
	}
	if (res->ok) {
		res->result
		    = cJSON_DetachItemFromObjectCaseSensitive(j, "result");
		res->error_code = 0;
		count(a, method, "ok");
	} else if (res->error_code == 429) {
		if (res->retry_after <= 0) {
			res->retry_after = 1;
		}
		count(a, method, "429");
		metric_inc(
		    metrics_counter(a->m, "opsdesk_gateway_botapi_429_total",
		        "Bot API 429 Too Many Requests replies", NULL));
	} else {
		char r[16];
		snprintf(r, sizeof(r), "%d", res->error_code);
		count(a, method, res->error_code >= 500 ? "5xx" : r);
	}
out:
	cJSON_Delete(j);
	gw_botapi_xfer_free(x, rv != 0);
	return rv;
}

void
gw_botapi_xfer_free(botapi_xfer *x, bool broken)
{
	if (x == NULL) {
		return;
	}
	sbuf_free(&x->reply);
	curl_slist_free_all(x->hdrs);
	curl_mime_free(x->mime);
	/* A handle after a network error may hold a broken connection. */
	if (!broken) {
		pool_put(x->a, x->h);
	} else {
		curl_easy_cleanup(x->h);
	}
	free(x);
}

int
gw_botapi_call(botapi *a, const char *method, const char *body, int timeout_ms,
    botapi_result *res)
{
	botapi_xfer *x = NULL;
	int rv = gw_botapi_xfer_new(a, method, body, timeout_ms, NULL, &x);
	if (rv != 0) {
		memset(res, 0, sizeof(*res));
		return rv;
	}
	CURLcode cc = curl_easy_perform(x->h);
	return gw_botapi_xfer_finish(x, (int) cc, res);
}

void
gw_botapi_result_clear(botapi_result *r)
{
	if (r != NULL) {
		cJSON_Delete(r->result);
		r->result = NULL;
	}
}

bool
gw_botapi_is_not_modified(const botapi_result *r)
{
	return !r->ok && r->error_code == 400
	    && strstr(r->description, "message is not modified") != NULL;
}

bool
gw_botapi_is_blocked(const botapi_result *r)
{
	return r->telegram && !r->ok && r->error_code == 403;
}

botapi_verdict
gw_botapi_classify(int rv, const botapi_result *r, const char **reason)
{
	const char *why = "other";
	botapi_verdict v = BOTAPI_RETRY;

	if (rv != 0) {
		why = r->timed_out ? "timeout" : "network";
	} else if (r->ok || gw_botapi_is_not_modified(r)) {
		why = "ok";
		v = BOTAPI_OK;
	} else if (!r->telegram) {
		/* Only Telegram's own JSON can refuse a message for good: a
		 * proxy page or a cut body says nothing about it. */
		why = r->http_status >= 500 ? "5xx" : "bad_reply";
	} else if (r->error_code == 429) {
		why = "429";
		v = BOTAPI_RETRY_AFTER;
	} else if (r->error_code == 403) {
		/* blocked, kicked, deactivated, cannot initiate */
		why = "blocked";
		v = BOTAPI_BLOCKED;
	} else if (r->error_code == 400) {
		/* chat not found, message to edit not found, can't parse
		 * entities, ...: the same request fails the same way. */
		why = "refused";
		v = BOTAPI_REFUSED;
	} else if (r->error_code == 401) {
		why = "401";
	} else if (r->error_code == 404) {
		why = "404";
	} else if (r->error_code >= 500) {
		why = "5xx";
	}
	if (reason != NULL) {
		*reason = why;
	}
	return v;
}
