/*
 * rpc client: one req0 socket dialled without blocking (a service that is
 * not up is retried in the background), a context per call with its own
 * time-outs, and a pipe count so that a call to a service that is down
 * fails at once instead of waiting for its time-out. Contexts, with their
 * aio and semaphore, are kept for the next call: opening and freeing them
 * per call cost locks, allocations and a getrandom(2) each time.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "rpc_impl.h"
#include "util/util.h"

#define RPC_RECONN_MIN_MS 50
#define RPC_RECONN_MAX_MS 2000
/*
 * A client waits for its first connection until this long after it was
 * opened (and at most a call's time-out), so that open-then-call works;
 * after that, no connection fails a call at once.
 */
#define RPC_FIRST_CONNECT_MS 250

/*
 * One call's exchange. The send's completion starts the receive from
 * NNG's callback, so the caller sleeps once per call instead of once for
 * the send and once for the reply: on a small VM each wake-up is a large
 * part of a round trip.
 */
typedef struct call_xchg call_xchg;
struct call_xchg {
	nng_ctx ctx;
	nng_aio *aio;
	sem_t done;
	bool receiving;
	int rv;
	nng_msg *reply;
	call_xchg *next; /* rpc_client.idle */
};

struct rpc_client {
	nng_socket sock;
	nng_dialer dialer;
	char *url;
	int timeout_ms;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int pipes;
	bool ever_connected;
	int64_t opened_ms; /* od_mono_ms() at open */
	auth *auth;        /* the process's: requests are sealed; or NULL */
	call_xchg *idle;   /* exchanges kept for the next call, under mtx */
};

static void
client_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	rpc_client *c = arg;
	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->pipes++;
		c->ever_connected = true;
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		c->pipes--;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
}

int
rpc_client_open(rpc_client **out, const char *url, int timeout_ms)
{
	if (out == NULL || url == NULL || timeout_ms < 0) {
		return OD_EINVAL;
	}
	int rv;
	auth *a;
	if ((rv = auth_process(&a)) != 0
	    || (rv = auth_url_check(url, "dial")) != 0) {
		return rv;
	}
	rpc_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return OD_ENOMEM;
	}
	c->auth = a;
	pthread_mutex_init(&c->mtx, NULL);
	od_cond_init(&c->cv); /* time-outs on the monotonic clock */
	c->timeout_ms = timeout_ms ? timeout_ms : RPC_DEFAULT_TIMEOUT_MS;
	c->opened_ms = od_mono_ms();
	if ((c->url = strdup(url)) == NULL) {
		rv = NNG_ENOMEM;
		goto out;
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		goto out;
	}
	if ((rv = nng_pipe_notify(
	         c->sock, NNG_PIPE_EV_ADD_POST, client_pipe_cb, c))
	        != 0
	    || (rv = nng_pipe_notify(
	            c->sock, NNG_PIPE_EV_REM_POST, client_pipe_cb, c))
	        != 0
	    || (rv = nng_dialer_create(&c->dialer, c->sock, url)) != 0
	    || (rv = auth_dialer_tls(c->dialer, url)) != 0
	    || (rv = nng_dialer_set_size(
	            c->dialer, NNG_OPT_RECVMAXSZ, RPC_DEFAULT_MAX_MSG))
	        != 0
	    || (rv = nng_dialer_set_ms(
	            c->dialer, NNG_OPT_RECONNMINT, RPC_RECONN_MIN_MS))
	        != 0
	    || (rv = nng_dialer_set_ms(
	            c->dialer, NNG_OPT_RECONNMAXT, RPC_RECONN_MAX_MS))
	        != 0
	    || (rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(c->sock);
		goto out;
	}
out:
	if (rv != 0) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mtx);
		free(c->url);
		free(c);
		return od_nng_err(rv);
	}
	*out = c;
	return 0;
}

static void xchg_free(call_xchg *x);

void
rpc_client_close(rpc_client *c)
{
	if (c == NULL) {
		return;
	}
	/* The dialer first, so no reconnection races the socket's close.
	 * Closing runs the remove callbacks; they finish before it
	 * returns. */
	nng_dialer_close(c->dialer);
	if (!od_nng_close(c->sock)) {
		od_nng_abandon(c); /* its pipe callback may still run */
		return;
	}
	while (c->idle != NULL) {
		call_xchg *x = c->idle;
		c->idle = x->next;
		xchg_free(x);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c->url);
	free(c);
}

bool
rpc_client_connected(rpc_client *c)
{
	if (c == NULL) {
		return false;
	}
	pthread_mutex_lock(&c->mtx);
	bool up = c->pipes > 0;
	pthread_mutex_unlock(&c->mtx);
	return up;
}

const char *
rpc_client_url(rpc_client *c)
{
	return c != NULL ? c->url : "";
}

/* True when a connection is up, after the first-connection grace. */
static bool
wait_connected(rpc_client *c, int timeout_ms)
{
	int64_t deadline = c->opened_ms + RPC_FIRST_CONNECT_MS;
	if (deadline > od_mono_ms() + timeout_ms) {
		deadline = od_mono_ms() + timeout_ms;
	}
	pthread_mutex_lock(&c->mtx);
	while (c->pipes == 0 && !c->ever_connected) {
		int64_t left = deadline - od_mono_ms();
		if (left <= 0) {
			break;
		}
		(void) od_cond_wait_ms(&c->cv, &c->mtx, left);
	}
	bool up = c->pipes > 0;
	pthread_mutex_unlock(&c->mtx);
	return up;
}

static void
call_xchg_cb(void *arg)
{
	call_xchg *x = arg;
	int rv = nng_aio_result(x->aio);

	if (rv == 0 && !x->receiving) {
		x->receiving = true;
		nng_ctx_recv(x->ctx, x->aio);
		return;
	}
	if (rv != 0 && !x->receiving) {
		nng_msg_free(nng_aio_get_msg(x->aio)); /* not sent: ours */
	}
	x->rv = rv;
	x->reply = rv == 0 ? nng_aio_get_msg(x->aio) : NULL;
	sem_post(&x->done);
}

static void
xchg_free(call_xchg *x)
{
	if (x->aio != NULL) {
		nng_aio_free(x->aio); /* waits for a callback still running */
	}
	nng_ctx_close(x->ctx);
	sem_destroy(&x->done);
	free(x);
}

/* An idle exchange, or a new one. A req0 context that timed out may be
 * used again: its next send abandons the old request, and a late reply
 * to it no longer matches. */
static int
xchg_take(rpc_client *c, call_xchg **out)
{
	pthread_mutex_lock(&c->mtx);
	call_xchg *x = c->idle;
	if (x != NULL) {
		c->idle = x->next;
	}
	pthread_mutex_unlock(&c->mtx);
	if (x == NULL) {
		int rv;
		if ((x = calloc(1, sizeof(*x))) == NULL) {
			return NNG_ENOMEM;
		}
		if (sem_init(&x->done, 0, 0) != 0) {
			free(x);
			return NNG_ENOMEM;
		}
		if ((rv = nng_ctx_open(&x->ctx, c->sock)) != 0) {
			sem_destroy(&x->done);
			free(x);
			return rv;
		}
		if ((rv = nng_aio_alloc(&x->aio, call_xchg_cb, x)) != 0) {
			xchg_free(x);
			return rv;
		}
	}
	x->receiving = false;
	x->rv = 0;
	x->reply = NULL;
	*out = x;
	return 0;
}

static void
xchg_give(rpc_client *c, call_xchg *x)
{
	pthread_mutex_lock(&c->mtx);
	x->next = c->idle;
	c->idle = x;
	pthread_mutex_unlock(&c->mtx);
}

int
rpc_client_call_raw(rpc_client *c, const void *req, size_t len, void **out,
    size_t *out_len, int timeout_ms)
{
	if (c == NULL || (req == NULL && len > 0) || out == NULL
	    || out_len == NULL || timeout_ms < 0) {
		return OD_EINVAL;
	}
	if (len > RPC_DEFAULT_MAX_MSG) {
		return OD_ETOOBIG; /* the server would drop the connection */
	}
	if (timeout_ms == 0) {
		timeout_ms = c->timeout_ms;
	}
	if (!wait_connected(c, timeout_ms)) {
		return OD_EUNAVAIL;
	}
	call_xchg *x;
	nng_msg *msg = NULL;
	int rv;

	/* One aio for the send and the receive, each with the time-out
	 * (NNG 1.5 has no nng_ctx_sendmsg). */
	if ((rv = xchg_take(c, &x)) != 0) {
		return od_nng_err(rv);
	}
	if ((rv = nng_msg_alloc(&msg, 0)) != 0) {
		goto out;
	}
	if (c->auth != NULL) {
		uint8_t hdr[AUTH_MAX_HEADER];
		size_t hlen;
		if (auth_header_make(c->auth, NULL, 0, req, len, hdr, &hlen)
		    != 0) {
			rv = NNG_EINTERNAL;
			goto out;
		}
		if ((rv = nng_msg_append(msg, hdr, hlen)) != 0) {
			goto out;
		}
	}
	if ((rv = nng_msg_append(msg, req, len)) != 0) {
		goto out;
	}
	nng_aio_set_timeout(x->aio, timeout_ms);
	nng_aio_set_msg(x->aio, msg);
	msg = NULL; /* the callback frees it when the send fails */
	nng_ctx_send(x->ctx, x->aio);
	while (sem_wait(&x->done) != 0) {
		/* EINTR: the exchange goes on. */
	}
	if ((rv = x->rv) != 0) {
		goto out;
	}
	msg = x->reply;
	size_t n = nng_msg_len(msg);
	void *buf = malloc(n ? n : 1);
	if (buf == NULL) {
		rv = NNG_ENOMEM;
		goto out;
	}
	memcpy(buf, nng_msg_body(msg), n);
	*out = buf;
	*out_len = n;
out:
	if (msg != NULL) {
		nng_msg_free(msg);
	}
	/* The callback posted last: NNG may still be returning from it,
	 * which a next call on this aio waits for. */
	xchg_give(c, x);
	return od_nng_err(rv);
}

/* Append `field = value` (a length-delimited string) to packed bytes:
 * protobuf keeps the last value, and an empty proto3 string was not
 * packed at all, so this sets it without touching the caller's
 * message. */
static size_t
append_string_field(uint8_t *p, uint32_t field, const char *value)
{
	size_t n = 0, len = strlen(value);
	uint64_t v = ((uint64_t) field << 3) | 2;
	do {
		p[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	v = len;
	do {
		p[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	memcpy(p + n, value, len);
	return n + len;
}

/*
 * 32 hex digits: the wall clock in ns, then 64 random bits. Unique like
 * a random id, and time-ordered, so the server's idempotency entries of
 * one commit land next to each other (see idem_key in rpc_server.c).
 */
static void
fresh_request_id(char out[33])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns
	    = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
	for (int i = 15; i >= 0; i--) {
		out[i] = "0123456789abcdef"[ns & 0xf];
		ns >>= 4;
	}
	od_random_hex(out + 16, 8);
}

int
rpc_client_call(rpc_client *c, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **out,
    int timeout_ms)
{
	if (c == NULL || req == NULL || reply_desc == NULL || out == NULL) {
		return OD_EINVAL;
	}
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field_by_name(
	        req->descriptor, "request_id");
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING) {
		return OD_EINVAL;
	}
	const char *rid = *(char **) ((const char *) req + f->offset);
	char fresh[33];
	bool fill = rid == NULL || rid[0] == 0;
	if (fill) {
		fresh_request_id(fresh);
	}
	size_t len = protobuf_c_message_get_packed_size(req);
	/* Room for the request_id: tag and length varints and 32 bytes. */
	uint8_t *buf = malloc(len + (fill ? 64 : 1));
	void *rbuf = NULL;
	size_t rlen = 0;
	if (buf == NULL) {
		return OD_ENOMEM;
	}
	protobuf_c_message_pack(req, buf);
	if (fill) {
		len += append_string_field(buf + len, f->id, fresh);
	}
	int rv = rpc_client_call_raw(c, buf, len, &rbuf, &rlen, timeout_ms);
	free(buf);
	if (rv != 0) {
		return rv;
	}
	ProtobufCMessage *m
	    = protobuf_c_message_unpack(reply_desc, NULL, rlen, rbuf);
	free(rbuf);
	if (m == NULL) {
		return OD_EMALFORMED;
	}
	*out = m;
	return 0;
}
