/*
 * http — NNG's HTTP server with the three standard routes. See http.h.
 */
#include "http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "log/log.h"
#include "util/util.h"

#define HTTP_MAX_ROUTES 48

/* Ports in nng_sockaddr are in network byte order. */
static int
ntohs_port(uint16_t p)
{
	const uint8_t *b = (const uint8_t *) &p;
	return (b[0] << 8) | b[1];
}
#define HTTP_MAX_BODY (1024 * 1024)

typedef struct route {
	/* Set last when the route is added and read first by dispatch, on
	 * an NNG thread: atomic, so that what was set before (the route,
	 * the server's fields) is visible there, to the compiler and to
	 * ThreadSanitizer (NNG orders it through epoll, which neither sees).
	 */
	struct http_server *_Atomic server;
	http_handler_fn fn;
	void *arg;
	nng_http_handler *h;
} route;

/*
 * A borrowed body is written by dispatch itself on the request's connection
 * (NNG's handlers may send their response and finish with no output), so
 * that it learns when NNG is done with the bytes and can release them:
 * NNG's own path would need a copy, since it frees the response whenever
 * it likes. The writes' contexts are pooled (an aio each).
 */
typedef struct send_ctx {
	struct send_ctx *next, *all_next;
	struct http_server *server;
	nng_aio *aio;     /* our write */
	nng_aio *srv_aio; /* the server's, finished when the write is */
	nng_http_res *res;
	void (*release)(void *arg);
	void *release_arg;
} send_ctx;

struct http_server {
	nng_http_server *srv;
	nng_url *url;
	metrics *m;
	http_ready_fn ready;
	void *ready_arg;
	route routes[HTTP_MAX_ROUTES];
	int n_routes;
	bool started;
	metric *requests;
	pthread_mutex_t pool_mu;
	send_ctx *pool_free; /* idle contexts */
	send_ctx *pool_all;  /* every context, to free them */
};

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Percent-decode the path part of uri into out; split off the query. */
static void
split_uri(const char *uri, char *out, size_t size, const char **query)
{
	size_t o = 0;
	const char *p = uri;
	while (*p && *p != '?' && o + 1 < size) {
		if (*p == '%' && hex_val(p[1]) >= 0 && hex_val(p[2]) >= 0) {
			char c = (char) (hex_val(p[1]) * 16 + hex_val(p[2]));
			/* A decoded NUL would cut the path: keep it encoded.
			 */
			if (c == '\0') {
				out[o++] = '%';
				p++;
				continue;
			}
			out[o++] = c;
			p += 3;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	while (*p && *p != '?') {
		p++;
	}
	*query = *p == '?' ? p + 1 : "";
}

static void
body_free(http_response *res)
{
	if (res->body_release != NULL) {
		res->body_release(res->body_release_arg);
		res->body_release = NULL;
	} else if (!res->body_static) {
		free(res->body);
	}
	res->body = NULL;
	res->body_len = 0;
	res->body_static = false;
}

static void
response_free(http_response *res)
{
	body_free(res);
	for (int i = 0; i < res->n_headers; i++) {
		free(res->header_values[i]);
	}
}

static void
sent(void *arg)
{
	send_ctx *c = arg;
	http_server *s = c->server;
	nng_aio *srv_aio = c->srv_aio;
	int rv = nng_aio_result(c->aio);

	c->release(c->release_arg);
	nng_http_res_free(c->res);
	c->res = NULL;
	c->srv_aio = NULL;
	pthread_mutex_lock(&s->pool_mu);
	c->next = s->pool_free;
	s->pool_free = c;
	pthread_mutex_unlock(&s->pool_mu);
	/* Last: the server waits for this aio before it lets a connection
	 * (and the server) go, so nothing of ours is touched after. An
	 * error closes the connection. */
	nng_aio_set_output(srv_aio, 0, NULL);
	nng_aio_finish(srv_aio, rv);
}

static send_ctx *
send_ctx_get(http_server *s)
{
	pthread_mutex_lock(&s->pool_mu);
	send_ctx *c = s->pool_free;
	if (c != NULL) {
		s->pool_free = c->next;
		pthread_mutex_unlock(&s->pool_mu);
		return c;
	}
	pthread_mutex_unlock(&s->pool_mu);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return NULL;
	}
	if (nng_aio_alloc(&c->aio, sent, c) != 0) {
		free(c);
		return NULL;
	}
	c->server = s;
	pthread_mutex_lock(&s->pool_mu);
	c->all_next = s->pool_all;
	s->pool_all = c;
	pthread_mutex_unlock(&s->pool_mu);
	return c;
}

/* Will the server close the connection after this answer (HTTP/1.0,
 * "Connection: close")? Then the answer says so, as NNG's would. */
static bool
closes(nng_http_req *req)
{
	const char *v = nng_http_req_get_version(req);
	const char *c = nng_http_req_get_header(req, "Connection");
	if (v == NULL || strcmp(v, "HTTP/1.1") != 0) {
		return true;
	}
	for (; c != NULL && *c != '\0'; c++) {
		if (strncasecmp(c, "close", 5) == 0) {
			return true;
		}
	}
	return false;
}

/* Write out with res's borrowed body on the request's connection; on
 * success the context owns out and the body until sent() runs. */
static int
send_borrowed(http_server *s, nng_aio *aio, nng_http_req *req,
    nng_http_res *out, http_response *res)
{
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	send_ctx *c;
	if (conn == NULL || (c = send_ctx_get(s)) == NULL) {
		return OD_ENOMEM;
	}
	if (nng_http_res_set_data(out, res->body, res->body_len) != 0
	    || (closes(req)
	        && nng_http_res_set_header(out, "Connection", "close") != 0)) {
		pthread_mutex_lock(&s->pool_mu);
		c->next = s->pool_free;
		s->pool_free = c;
		pthread_mutex_unlock(&s->pool_mu);
		return OD_ENOMEM;
	}
	c->srv_aio = aio;
	c->res = out;
	c->release = res->body_release;
	c->release_arg = res->body_release_arg;
	res->body_release = NULL; /* the context's now */
	res->body = NULL;
	response_free(res);
	nng_http_conn_write_res(conn, out, c->aio);
	return 0;
}

static void
dispatch(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	route *r = nng_http_handler_get_data(h);
	http_server *srv = r->server; /* first: see route */
	http_request hr;
	memset(&hr, 0, sizeof(hr));
	hr.method = nng_http_req_get_method(req);
	hr.uri = nng_http_req_get_uri(req);
	split_uri(hr.uri, hr.path, sizeof(hr.path), &hr.query);
	void *body = NULL;
	size_t body_len = 0;
	nng_http_req_get_data(req, &body, &body_len);
	hr.body = body;
	hr.body_len = body_len;
	hr.nng_req = req;

	http_response res;
	memset(&res, 0, sizeof(res));
	res.status = 200;
	int rv = r->fn(r->arg, &hr, &res);
	if (rv != 0) {
		response_free(&res);
		memset(&res, 0, sizeof(res));
		res.status = 500;
		res.body = "internal error\n";
		res.body_len = strlen(res.body);
		res.body_static = true;
	}
	metric_inc(srv->requests);

	nng_http_res *out = NULL;
	if (nng_http_res_alloc(&out) != 0) {
		response_free(&res);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(out, (uint16_t) res.status);
	nng_http_res_set_header(out, "Content-Type",
	    res.content_type ? res.content_type : "text/plain; charset=utf-8");
	for (int i = 0; i < res.n_headers; i++) {
		nng_http_res_set_header(
		    out, res.header_names[i], res.header_values[i]);
	}
	bool head = strcmp(hr.method, "HEAD") == 0;
	if (res.body_release != NULL && res.body_len > 0 && !head) {
		if (send_borrowed(srv, aio, req, out, &res) == 0) {
			return;
		}
		/* No context to write with: NNG sends a copy. */
	}
	if (res.body != NULL && res.body_len > 0) {
		if (head && res.body_release != NULL) {
			/* The length, without the bytes (NNG sends no data
			 * for a HEAD but keeps the Content-Length). */
			nng_http_res_set_data(out, NULL, res.body_len);
		} else if (!head) {
			nng_http_res_copy_data(out, res.body, res.body_len);
		}
	}
	response_free(&res);
	nng_aio_set_output(aio, 0, out);
	nng_aio_finish(aio, 0);
}

static int
healthz(void *arg, const http_request *req, http_response *res)
{
	return http_response_text(res, 200, NULL, "ok\n");
}

static int
readyz(void *arg, const http_request *req, http_response *res)
{
	http_server *s = arg;
	char why[256] = "";
	if (s->ready != NULL && !s->ready(s->ready_arg, why, sizeof(why))) {
		char text[300];
		snprintf(text, sizeof(text), "not ready: %s\n", why);
		return http_response_text(res, 503, NULL, text);
	}
	return http_response_text(res, 200, NULL, "ready\n");
}

static int
metrics_route(void *arg, const http_request *req, http_response *res)
{
	http_server *s = arg;
	sbuf b = SBUF_INIT;
	if (s->m != NULL && metrics_render(s->m, &b) != 0) {
		sbuf_free(&b);
		return OD_ENOMEM;
	}
	size_t len;
	char *text = sbuf_take(&b, &len);
	if (text == NULL) {
		return OD_ENOMEM;
	}
	http_response_set_body(
	    res, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	return 0;
}

int
http_server_new(http_server **out, const char *addr, metrics *m,
    http_ready_fn ready, void *ready_arg)
{
	char url[300];
	if (addr == NULL || *addr == '\0') {
		return OD_EINVAL;
	}
	if (strncmp(addr, "http://", 7) == 0) {
		od_strlcpy(url, addr, sizeof(url));
	} else {
		snprintf(url, sizeof(url), "http://%s", addr);
	}
	http_server *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return OD_ENOMEM;
	}
	if (pthread_mutex_init(&s->pool_mu, NULL) != 0) {
		free(s);
		return OD_ENOMEM;
	}
	s->m = m;
	s->ready = ready;
	s->ready_arg = ready_arg;
	int rv;
	if ((rv = nng_url_parse(&s->url, url)) != 0) {
		log_error(
		    "http: bad listen address %s: %s", addr, nng_strerror(rv));
		pthread_mutex_destroy(&s->pool_mu);
		free(s);
		return OD_EINVAL;
	}
	if ((rv = nng_http_server_hold(&s->srv, s->url)) != 0) {
		log_error("http: %s: %s", addr, nng_strerror(rv));
		nng_url_free(s->url);
		pthread_mutex_destroy(&s->pool_mu);
		free(s);
		return OD_EIO;
	}
	s->requests = metrics_counter(
	    m, "opsdesk_http_requests_total", "HTTP requests served.", NULL);
	if ((rv = http_server_route(s, "GET", "/healthz", false, healthz, s))
	    || (rv = http_server_route(s, "GET", "/readyz", false, readyz, s))
	    || (rv = http_server_route(
	            s, "GET", "/metrics", false, metrics_route, s))) {
		http_server_free(s);
		return rv;
	}
	*out = s;
	return 0;
}

int
http_server_route(http_server *s, const char *method, const char *path,
    bool prefix, http_handler_fn fn, void *arg)
{
	if (s->started || s->n_routes >= HTTP_MAX_ROUTES) {
		return OD_ESTATE;
	}
	route *r = &s->routes[s->n_routes];
	r->fn = fn;
	r->arg = arg;
	r->server = s; /* last: publishes the route (see struct route) */
	int rv;
	if ((rv = nng_http_handler_alloc(&r->h, path, dispatch)) != 0) {
		return OD_ENOMEM;
	}
	if ((rv = nng_http_handler_set_method(r->h, method)) != 0
	    || (rv = nng_http_handler_collect_body(r->h, true, HTTP_MAX_BODY))
	        != 0
	    || (prefix && (rv = nng_http_handler_set_tree(r->h)) != 0)
	    || (rv = nng_http_handler_set_data(r->h, r, NULL)) != 0
	    || (rv = nng_http_server_add_handler(s->srv, r->h)) != 0) {
		log_error(
		    "http: cannot add route %s: %s", path, nng_strerror(rv));
		nng_http_handler_free(r->h);
		r->h = NULL;
		return OD_EINVAL;
	}
	s->n_routes++;
	return 0;
}

int
http_server_start(http_server *s)
{
	int rv = nng_http_server_start(s->srv);
	if (rv != 0) {
		log_error("http: cannot listen on %s:%s: %s",
		    s->url->u_hostname, s->url->u_port, nng_strerror(rv));
		return OD_EIO;
	}
	s->started = true;
	return 0;
}

int
http_server_port(http_server *s)
{
	nng_sockaddr sa;
	if (nng_http_server_get_addr(s->srv, &sa) != 0) {
		return -1;
	}
	if (sa.s_family == NNG_AF_INET) {
		return ntohs_port(sa.s_in.sa_port);
	}
	if (sa.s_family == NNG_AF_INET6) {
		return ntohs_port(sa.s_in6.sa_port);
	}
	return -1;
}

void
http_server_free(http_server *s)
{
	if (s == NULL) {
		return;
	}
	if (s->started) {
		nng_http_server_stop(s->srv);
	}
	/* Releasing the server frees the handlers added to it. */
	nng_http_server_release(s->srv);
	/* Stopped, the server has waited for every connection, and so for
	 * every write of ours (see sent). */
	for (send_ctx *c = s->pool_all, *next; c != NULL; c = next) {
		next = c->all_next;
		nng_aio_free(c->aio);
		free(c);
	}
	pthread_mutex_destroy(&s->pool_mu);
	nng_url_free(s->url);
	free(s);
}

const char *
http_request_header(const http_request *req, const char *name)
{
	return nng_http_req_get_header(req->nng_req, name);
}

int
http_response_header(http_response *res, const char *name, const char *value)
{
	if (res->n_headers >= HTTP_MAX_HEADERS) {
		return OD_ELIMIT;
	}
	char *v = strdup(value);
	if (v == NULL) {
		return OD_ENOMEM;
	}
	res->header_names[res->n_headers] = name;
	res->header_values[res->n_headers] = v;
	res->n_headers++;
	return 0;
}

void
http_response_set_body(http_response *res, int status,
    const char *content_type, char *body, size_t len)
{
	body_free(res);
	res->status = status;
	res->content_type = content_type;
	res->body = body;
	res->body_len = len;
	res->body_static = false;
}

int
http_response_text(
    http_response *res, int status, const char *content_type, const char *text)
{
	char *c = strdup(text);
	if (c == NULL) {
		return OD_ENOMEM;
	}
	http_response_set_body(res, status, content_type, c, strlen(c));
	return 0;
}

void
http_response_borrow_body(http_response *res, int status,
    const char *content_type, const void *body, size_t len,
    void (*release)(void *arg), void *release_arg)
{
	body_free(res);
	res->status = status;
	res->content_type = content_type;
	res->body = (char *) body;
	res->body_len = len;
	res->body_static = true;
	res->body_release = release;
	res->body_release_arg = release_arg;
}
