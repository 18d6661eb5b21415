/*
 * hook — the webhook's own HTTP listener: one thread, poll(), a bounded
 * number of connections, and time limits on the request head and body.
 *
 * NNG 1.5's HTTP server (the shared listener of /metrics) has no read
 * time-out and no connection cap: a client trickling a byte every few
 * seconds keeps a connection (and an fd) forever. Telegram's webhook is
 * the one route open to the internet, so it gets this small listener:
 * HTTP/1.1 with Content-Length bodies (what Telegram sends), keep-alive,
 * no chunked bodies, no TLS (a reverse proxy terminates it).
 */
#ifndef OPSDESK_GATEWAY_HOOK_H
#define OPSDESK_GATEWAY_HOOK_H

#include <stddef.h>

#include "metrics/metrics.h"

typedef struct hook hook;

typedef struct hook_limits {
	int max_conns;   /* open connections; more are answered 503 */
	int header_ms;   /* from connect (or the last reply) to a full head */
	int body_ms;     /* from the head to the whole body; also writes */
	size_t max_body; /* larger bodies are answered 413 */
} hook_limits;

typedef struct hook_req {
	const char *method;
	const char *path;   /* the target without its query */
	const char *secret; /* X-Telegram-Bot-Api-Secret-Token, or NULL */
	const char *body;   /* borrowed; NUL-terminated copy */
	size_t body_len;
} hook_req;

/*
 * Handle one request on the listener's thread; return the HTTP status
 * and point *text at a static reply body (and *ctype at its type, or
 * leave it NULL for text/plain).
 */
typedef int (*hook_fn)(
    void *arg, const hook_req *req, const char **ctype, const char **text);

/*
 * Listen on addr ("127.0.0.1:8443", "0.0.0.0:0", "[::]:8443") and start
 * the thread. m (borrowed, may be NULL) gets the listener's counters.
 * *out is set only on success; free with gw_listener_stop.
 */
int gw_listener_start(hook **out, const char *addr, const hook_limits *lim,
    hook_fn fn, void *arg, metrics *m);
/* The port bound (useful when addr asked for port 0). */
int gw_listener_port(const hook *h);
/* Stop the thread, close every connection, free h. NULL-safe. */
void gw_listener_stop(hook *h);

#endif /* OPSDESK_GATEWAY_HOOK_H */
