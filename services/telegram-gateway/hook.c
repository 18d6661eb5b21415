/*
 * hook — the webhook listener (see hook.h). One thread polls the
 * listening socket, a wake-up pipe and every connection; each connection
 * has one deadline: the head's, then the body's, then the reply's write.
 */
#define _GNU_SOURCE
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "util/util.h"

#define HOOK_MAX_HEAD 8192

enum conn_state { C_HEAD, C_BODY, C_WRITE };

typedef struct conn {
	int fd;
	enum conn_state state;
	int64_t deadline;
	char *buf; /* received bytes */
	size_t len, cap;
	size_t head_len;  /* bytes of the head, "\r\n\r\n" included */
	size_t body_len;  /* Content-Length */
	bool close_after; /* after the reply is written */
	char out[512];    /* the reply (bodies are short and static) */
	size_t out_len, out_off;
} conn;

struct hook {
	int lfd;
	int wake[2];
	int port;
	hook_limits lim;
	hook_fn fn;
	void *arg;
	pthread_t th;
	_Atomic int stop; /* set by gw_listener_stop, read by the thread */
	conn **conns;
	int n_conns;
	struct pollfd *pfd;
	metric *m_timeouts, *m_refused, *m_conns;
};

static int
open_listener(const char *addr, int *port)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints, *res = NULL;
	int fd = -1, one = 1;

	if (strncmp(addr, "http://", 7) == 0) {
		addr += 7;
	}
	if (colon == NULL || (size_t) (colon - addr) >= sizeof(host)) {
		return -1;
	}
	memcpy(host, addr, (size_t) (colon - addr));
	host[colon - addr] = '\0';
	char *h = host;
	if (h[0] == '[') { /* [::1]:8443 */
		h++;
		h[strcspn(h, "]")] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res) != 0) {
		return -1;
	}
	fd = socket(res->ai_family,
	    res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0
	    || listen(fd, 128) != 0) {
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *) &ss, &sl) != 0) {
		close(fd);
		return -1;
	}
	*port = ss.ss_family == AF_INET6
	    ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
	    : ntohs(((struct sockaddr_in *) &ss)->sin_port);
	return fd;
}

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

static size_t
format_reply(char *out, size_t size, int status, const char *ctype,
    const char *text, bool close_after)
{
	int n = snprintf(out, size,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "%s%s\r\n%s",
	    status, reason(status),
	    ctype ? ctype : "text/plain; charset=utf-8", strlen(text),
	    status == 503 ? "Retry-After: 1\r\n" : "",
	    close_after ? "Connection: close\r\n" : "", text);
	return n < 0 ? 0 : (size_t) n >= size ? size - 1 : (size_t) n;
}

static void
conn_reply(hook *h, conn *c, int status, const char *ctype, const char *text,
    bool close_after, int64_t now)
{
	c->close_after = c->close_after || close_after;
	c->out_len = format_reply(
	    c->out, sizeof(c->out), status, ctype, text, c->close_after);
	c->out_off = 0;
	c->state = C_WRITE;
	c->deadline = now + h->lim.body_ms;
}

/* A header's value, trimmed, copied into out; false when absent. */
static bool
header(const char *head, size_t len, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', len), *end = head + len;
	while (p != NULL && p + 1 < end) {
		const char *line = p + 1;
		const char *eol = memchr(line, '\n', (size_t) (end - line));
		if (eol == NULL) {
			break;
		}
		if ((size_t) (eol - line) > nl && line[nl] == ':'
		    && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t')) {
				v++;
			}
			while (ve > v
			    && (ve[-1] == '\r' || ve[-1] == ' '
			        || ve[-1] == '\t')) {
				ve--;
			}
			size_t n = (size_t) (ve - v);
			if (n >= size) {
				n = size - 1;
			}
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
		p = eol;
	}
	return false;
}

/* Parse a complete head; answers errors itself. */
static void
parse_head(hook *h, conn *c, int64_t now)
{
	char val[64];
	const char *line_end = memchr(c->buf, '\r', c->head_len);
	char *sp1, *sp2;

	if (line_end == NULL) {
		conn_reply(h, c, 400, NULL, "bad request\n", true, now);
		return;
	}
	sp1 = memchr(c->buf, ' ', (size_t) (line_end - c->buf));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t) (line_end - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL
	    || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		conn_reply(h, c, 400, NULL, "bad request\n", true, now);
		return;
	}
	if (sp2[8] == '0') {
		c->close_after = true; /* HTTP/1.0: one request */
	}
	if (header(c->buf, c->head_len, "Connection", val, sizeof(val))
	    && strcasecmp(val, "close") == 0) {
		c->close_after = true;
	}
	if (header(
	        c->buf, c->head_len, "Transfer-Encoding", val, sizeof(val))) {
		conn_reply(
		    h, c, 411, NULL, "Content-Length required\n", true, now);
		return;
	}
	c->body_len = 0;
	if (header(c->buf, c->head_len, "Content-Length", val, sizeof(val))) {
		char *e = NULL;
		errno = 0;
		unsigned long long n = strtoull(val, &e, 10);
		if (errno != 0 || e == val || *e != '\0') {
			conn_reply(h, c, 400, NULL, "bad Content-Length\n",
			    true, now);
			return;
		}
		if (n > h->lim.max_body) {
			conn_reply(
			    h, c, 413, NULL, "body too large\n", true, now);
			return;
		}
		c->body_len = (size_t) n;
	}
	c->state = C_BODY;
	c->deadline = now + h->lim.body_ms;
}

static void
dispatch(hook *h, conn *c, int64_t now)
{
	char method[16], path[256], secret[260];
	/* parse_head checked the request line. */
	const char *sp1 = memchr(c->buf, ' ', c->head_len);
	const char *sp2
	    = memchr(sp1 + 1, ' ', c->head_len - (size_t) (sp1 + 1 - c->buf));
	size_t ml = (size_t) (sp1 - c->buf), pl = (size_t) (sp2 - sp1 - 1);
	hook_req r;
	const char *ctype = NULL, *text = "";

	if (ml >= sizeof(method) || pl >= sizeof(path)) {
		conn_reply(h, c, 404, NULL, "not found\n", true, now);
		return;
	}
	memcpy(method, c->buf, ml);
	method[ml] = '\0';
	memcpy(path, sp1 + 1, pl);
	path[pl] = '\0';
	path[strcspn(path, "?")] = '\0';
	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = path;
	r.secret
	    = header(c->buf, c->head_len, "X-Telegram-Bot-Api-Secret-Token",
	          secret, sizeof(secret))
	    ? secret
	    : NULL;
	/* NUL-terminate the body in place (the buffer keeps a spare byte);
	 * the byte after it, if any, is saved for a pipelined request. */
	char *body = c->buf + c->head_len;
	char saved = body[c->body_len];
	body[c->body_len] = '\0';
	r.body = body;
	r.body_len = c->body_len;
	int status = h->fn(h->arg, &r, &ctype, &text);
	body[c->body_len] = saved;
	conn_reply(h, c, status, ctype, text, false, now);
}

/* Move a connection on with what it has received. */
static void
advance(hook *h, conn *c, int64_t now)
{
	if (c->state == C_HEAD) {
		const char *end = c->len >= 4
		    ? memmem(c->buf, c->len, "\r\n\r\n", 4)
		    : NULL;
		if (end == NULL) {
			if (c->len > HOOK_MAX_HEAD) {
				conn_reply(h, c, 431, NULL, "head too large\n",
				    true, now);
			}
			return;
		}
		c->head_len = (size_t) (end - c->buf) + 4;
		parse_head(h, c, now);
	}
	if (c->state == C_BODY && c->len - c->head_len >= c->body_len) {
		dispatch(h, c, now);
	}
}

static void
conn_close(hook *h, conn *c)
{
	close(c->fd);
	free(c->buf);
	free(c);
	metric_gauge_add(h->m_conns, -1);
}

/* Read what is there; false when the connection is over. */
static bool
conn_read(hook *h, conn *c, int64_t now)
{
	size_t limit = HOOK_MAX_HEAD + h->lim.max_body + 2;
	for (;;) {
		if (c->cap - c->len < 2) {
			size_t ncap = c->cap ? c->cap * 2 : 1024;
			if (ncap > limit) {
				ncap = limit;
			}
			if (ncap <= c->cap) {
				return false; /* cannot happen within limits */
			}
			char *nb = realloc(c->buf, ncap);
			if (nb == NULL) {
				return false;
			}
			c->buf = nb;
			c->cap = ncap;
		}
		/* One spare byte for the body's NUL. */
		ssize_t n = recv(
		    c->fd, c->buf + c->len, c->cap - c->len - 1, MSG_DONTWAIT);
		if (n == 0) {
			return false;
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		c->len += (size_t) n;
		advance(h, c, now);
		if (c->state == C_WRITE) {
			return true;
		}
	}
}

/* Write the reply; false when the connection is over. */
static bool
conn_write(hook *h, conn *c, int64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		c->out_off += (size_t) n;
	}
	if (c->close_after) {
		/* Read what the client already sent, so that closing does not
		 * reset the connection before it has read the reply. */
		char scratch[4096];
		shutdown(c->fd, SHUT_WR);
		for (int i = 0; i < 16; i++) {
			if (recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT)
			    <= 0) {
				break;
			}
		}
		return false;
	}
	/* Keep-alive: drop the request, keep what follows it. */
	size_t used = c->head_len + c->body_len;
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	c->head_len = c->body_len = 0;
	c->state = C_HEAD;
	c->deadline = now + h->lim.header_ms;
	advance(h, c, now);
	if (c->state == C_WRITE) {
		return conn_write(h, c, now);
	}
	return true;
}

static void
accept_all(hook *h, int64_t now)
{
	for (;;) {
		int fd = accept4(
		    h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR) {
				continue;
			}
			return; /* EAGAIN, or out of fds: try on the next turn
			         */
		}
		if (h->n_conns >= h->lim.max_conns) {
			/* Over the cap: say so at once (Telegram retries a
			 * 503 later) and close. */
			char out[256];
			size_t n = format_reply(out, sizeof(out), 503, NULL,
			    "too many connections\n", true);
			(void) !send(fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			metric_inc(h->m_refused);
			continue;
		}
		conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->state = C_HEAD;
		c->deadline = now + h->lim.header_ms;
		h->conns[h->n_conns++] = c;
		metric_gauge_add(h->m_conns, 1);
	}
}

static void *
hook_main(void *arg)
{
	hook *h = arg;
	while (!h->stop) {
		int64_t now = od_mono_ms(), wait = 1000;
		int np = 0;
		h->pfd[np++]
		    = (struct pollfd) { .fd = h->wake[0], .events = POLLIN };
		h->pfd[np++]
		    = (struct pollfd) { .fd = h->lfd, .events = POLLIN };
		for (int i = 0; i < h->n_conns; i++) {
			conn *c = h->conns[i];
			h->pfd[np++] = (struct pollfd) { .fd = c->fd,
				.events
				= c->state == C_WRITE ? POLLOUT : POLLIN };
			if (c->deadline - now < wait) {
				wait = c->deadline - now;
			}
		}
		if (wait < 0) {
			wait = 0;
		}
		int rv = poll(h->pfd, (nfds_t) np, (int) wait);
		if (rv < 0 && errno != EINTR) {
			log_error("webhook: poll: %s", strerror(errno));
			break;
		}
		now = od_mono_ms();
		if (h->stop) {
			break;
		}
		/* Connections first: the array may grow on accept. */
		int kept = 0, n = h->n_conns;
		for (int i = 0; i < n; i++) {
			conn *c = h->conns[i];
			short re = rv > 0 ? h->pfd[i + 2].revents : 0;
			bool alive = true;
			if (re & (POLLIN | POLLOUT | POLLERR | POLLHUP)) {
				alive = c->state == C_WRITE
				    ? conn_write(h, c, now)
				    : conn_read(h, c, now);
				if (alive && c->state == C_WRITE && re != 0) {
					alive = conn_write(h, c, now);
				}
			}
			if (alive && now >= c->deadline) {
				metric_inc(h->m_timeouts);
				alive = false;
			}
			if (alive) {
				h->conns[kept++] = c;
			} else {
				conn_close(h, c);
			}
		}
		h->n_conns = kept;
		if (rv > 0 && (h->pfd[1].revents & POLLIN)) {
			accept_all(h, now);
		}
		if (rv > 0 && (h->pfd[0].revents & POLLIN)) {
			char b[64];
			(void) !read(h->wake[0], b, sizeof(b));
		}
	}
	return NULL;
}

int
gw_listener_start(hook **out, const char *addr, const hook_limits *lim,
    hook_fn fn, void *arg, metrics *m)
{
	hook *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		return OD_ENOMEM;
	}
	h->lim = *lim;
	h->fn = fn;
	h->arg = arg;
	h->wake[0] = h->wake[1] = -1;
	h->conns = calloc((size_t) lim->max_conns, sizeof(*h->conns));
	h->pfd = calloc((size_t) lim->max_conns + 2, sizeof(*h->pfd));
	if (h->conns == NULL || h->pfd == NULL) {
		goto fail;
	}
	if ((h->lfd = open_listener(addr, &h->port)) < 0) {
		log_error(
		    "webhook: cannot listen on %s: %s", addr, strerror(errno));
		goto fail;
	}
	if (pipe2(h->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		goto fail;
	}
	if (m != NULL) {
		h->m_timeouts = metrics_counter(m,
		    "opsdesk_gateway_webhook_timeouts_total",
		    "Webhook connections cut off by the head or body time-out",
		    NULL);
		h->m_refused = metrics_counter(m,
		    "opsdesk_gateway_webhook_refused_total",
		    "Webhook connections refused over the connection cap",
		    NULL);
		h->m_conns
		    = metrics_gauge(m, "opsdesk_gateway_webhook_connections",
		        "Open webhook connections", NULL);
	}
	if (pthread_create(&h->th, NULL, hook_main, h) != 0) {
		goto fail;
	}
	log_info("webhook: listening on port %d", h->port);
	*out = h;
	return 0;
fail:
	if (h->lfd > 0) {
		close(h->lfd);
	}
	if (h->wake[0] >= 0) {
		close(h->wake[0]);
		close(h->wake[1]);
	}
	free(h->conns);
	free(h->pfd);
	free(h);
	return OD_EIO;
}

int
gw_listener_port(const hook *h)
{
	return h->port;
}

void
gw_listener_stop(hook *h)
{
	if (h == NULL) {
		return;
	}
	h->stop = 1;
	(void) !write(h->wake[1], "x", 1);
	pthread_join(h->th, NULL);
	for (int i = 0; i < h->n_conns; i++) {
		conn_close(h, h->conns[i]);
	}
	close(h->lfd);
	close(h->wake[0]);
	close(h->wake[1]);
	free(h->conns);
	free(h->pfd);
	free(h);
}
