/*
 * http — a thin layer over NNG's HTTP server: every listener serves
 * /healthz, /readyz and /metrics, and a service adds its own routes
 * (status page, webhook). Handlers run on NNG's threads and must not
 * block: they render from memory or hand work off.
 */
#ifndef OPSDESK_HTTP_H
#define OPSDESK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/metrics.h"

typedef struct http_server http_server;

typedef struct http_request {
	const char *method; /* "GET" */
	const char *uri;    /* path and query as received */
	char path[1024];    /* decoded path without the query */
	const char *query;  /* after '?', or "" */
	const void *body;
	size_t body_len;
	void *nng_req; /* nng_http_req *, for header lookups */
} http_request;

#define HTTP_MAX_HEADERS 8

typedef struct http_response {
	int status;               /* default 200 */
	const char *content_type; /* default "text/plain; charset=utf-8" */
	/* Body: owned (freed with free() after sending), static, or
	 * borrowed (body_release set: see http_response_borrow_body). */
	char *body;
	size_t body_len;
	bool body_static; /* true: body is not freed */
	void (*body_release)(void *arg);
	void *body_release_arg;
	const char *header_names[HTTP_MAX_HEADERS];
	char *header_values[HTTP_MAX_HEADERS]; /* owned copies */
	int n_headers;
} http_response;

/* 0 = handled (response filled); any other value is answered 500. */
typedef int (*http_handler_fn)(
    void *arg, const http_request *req, http_response *res);
/* The /readyz check: true when ready; fill why (size >= 128) if not. */
typedef bool (*http_ready_fn)(void *arg, char *why, size_t size);

/*
 * Create a server on addr ("127.0.0.1:9410" or "http://…") with the three
 * standard routes; add routes, then http_server_start. m (borrowed) is
 * rendered at /metrics; ready may be NULL (always ready).
 */
int http_server_new(http_server **out, const char *addr, metrics *m,
    http_ready_fn ready, void *ready_arg);
/* Serve `path` (exact) or everything under it when prefix is true, for
 * `method` ("GET"; NULL for any). Only before start. */
int http_server_route(http_server *s, const char *method, const char *path,
    bool prefix, http_handler_fn fn, void *arg);
int http_server_start(http_server *s);
/* The port actually bound (when addr asked for port 0). */
int http_server_port(http_server *s);
void http_server_free(http_server *s); /* stops; NULL-safe */

/* A request header, or NULL. Borrowed from the request. */
const char *http_request_header(const http_request *req, const char *name);
/* Add a response header (value copied). */
int http_response_header(
    http_response *res, const char *name, const char *value);
/* Set an owned body (takes ownership of body; freed with free()). */
void http_response_set_body(http_response *res, int status,
    const char *content_type, char *body, size_t len);
/*
 * Send len bytes at body without copying them: they must stay unchanged
 * until release(release_arg), which is called exactly once, when the
 * bytes have been written to the connection or will not be (write
 * failed, connection or server closed, handler failed). Call it last in
 * the handler. For large pre-rendered pages.
 */
void http_response_borrow_body(http_response *res, int status,
    const char *content_type, const void *body, size_t len,
    void (*release)(void *arg), void *release_arg);
/* Set a copy of text as the body. */
int http_response_text(http_response *res, int status,
    const char *content_type, const char *text);

#endif /* OPSDESK_HTTP_H */
