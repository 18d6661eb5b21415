/*
 * relay — forward every frame from the raw SUB side to the raw PUB side,
 * counting as it goes. One frame at a time, on NNG's callbacks: the
 * receive's completion checks the frame and starts its send, the send's
 * completion starts the next receive. PUB's send never blocks (it drops
 * for slow subscribers), so this keeps up and frames stay in arrival
 * order; no thread of ours sleeps and wakes twice per frame, as the
 * blocking recv/send loop did.
 */
#include "relay.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "log/log.h"
#include "util/util.h"

#define RELAY_DEFAULT_MAX_MSG (1024 * 1024)
#define RELAY_MAX_TOPIC       128
/* Deep queues absorb bursts (NNG's defaults are 16 per pipe / 128). */
#define RELAY_QUEUE 1024

/* The domains of spec/interfaces.md; anything else counts as "other" so
 * that a stray publisher cannot grow the label set without bound. */
static const char *const relay_domains[]
    = { "health", "incident", "maintenance", "alert", "ops", "ticket",
	      "status", "gateway", "other", "malformed" };
#define RELAY_N_DOMAINS (sizeof(relay_domains) / sizeof(relay_domains[0]))
#define RELAY_OTHER     (RELAY_N_DOMAINS - 2)
#define RELAY_MALFORMED (RELAY_N_DOMAINS - 1)

struct relay {
	nng_socket sub; /* publishers dial in here */
	nng_socket pub; /* subscribers dial in here */
	bool sub_open;
	bool pub_open;
	nng_aio *recv_aio;
	nng_aio *send_aio;
	metric *messages[RELAY_N_DOMAINS];
	metric *bytes[RELAY_N_DOMAINS];
	metric *send_errors;
	metric *publishers_g;
	metric *subscribers_g;
	metric *conn_pub;
	metric *conn_sub;
	atomic_uint_fast64_t n_messages;
	atomic_uint_fast64_t n_bytes;
	atomic_uint_fast64_t n_malformed;
	atomic_uint_fast64_t n_send_errors;
	atomic_int n_publishers;
	atomic_int n_subscribers;
	/* Publisher checks (auth on): refused frames, and the (identity,
	 * topic) pairs already logged, so each is logged once. */
	auth *auth;
	metric *refused;
	atomic_uint_fast64_t n_refused;
	char **logged;
	size_t n_logged;
};

#define RELAY_MAX_LOGGED 1024

/* Log a refusal once per key ("identity topic"). From the receive
 * callback: one runs at a time. */
static void
relay__log_refusal(relay *r, const char *key, const char *why)
{
	for (size_t i = 0; i < r->n_logged; i++) {
		if (strcmp(r->logged[i], key) == 0) {
			return;
		}
	}
	if (r->n_logged < RELAY_MAX_LOGGED) {
		char **nl = realloc(
		    r->logged, (r->n_logged + 1) * sizeof(*r->logged));
		if (nl != NULL) {
			r->logged = nl;
			if ((nl[r->n_logged] = strdup(key)) != NULL) {
				r->n_logged++;
			}
		}
	}
	log_warn("relay: dropping frames (%s): %s (logged once)", key, why);
}

/*
 * With auth on, a frame goes on only when its header verifies and its
 * topic is one its publisher's identity owns.
 */
static bool
relay__admit(relay *r, const uint8_t *frame, size_t len)
{
	if (r->auth == NULL) {
		return true;
	}
	const uint8_t *nul
	    = memchr(frame, 0, len < RELAY_MAX_TOPIC ? len : RELAY_MAX_TOPIC);
	char topic[RELAY_MAX_TOPIC + 1];
	char id[AUTH_MAX_IDENTITY + 1];
	char err[160];
	char key[RELAY_MAX_TOPIC + AUTH_MAX_IDENTITY + 16];
	size_t off;
	if (nul == NULL) {
		relay__log_refusal(r, "malformed", "no topic");
		return false;
	}
	size_t tlen = (size_t) (nul - frame);
	memcpy(topic, frame, tlen);
	topic[tlen] = 0;
	if (auth_verify(
	        r->auth, frame, len, tlen + 1, id, &off, err, sizeof(err))
	    != 0) {
		auth_header h;
		if (auth_header_parse(frame + tlen + 1, len - tlen - 1, &h)
		    == 0) {
			snprintf(key, sizeof(key), "%.*s %s",
			    (int) h.identity_len, h.identity, topic);
		} else {
			snprintf(
			    key, sizeof(key), "unauthenticated %s", topic);
		}
		relay__log_refusal(r, key, err);
		return false;
	}
	if (!auth_topic_allowed(id, topic)) {
		snprintf(key, sizeof(key), "%s %s", id, topic);
		relay__log_refusal(r, key, "the topic is not the identity's");
		return false;
	}
	return true;
}

static size_t
relay__domain_index(const void *frame, size_t len)
{
	const char *p = frame;
	size_t i, dot = 0;

	for (i = 0; i < len && i < RELAY_MAX_TOPIC; i++) {
		unsigned char c = (unsigned char) p[i];
		if (c == '\0') {
			break;
		}
		if (c < 0x20 || c > 0x7e) {
			return RELAY_MALFORMED;
		}
		if (c == '.' && dot == 0) {
			dot = i;
		}
	}
	if (i == 0 || i >= len || i >= RELAY_MAX_TOPIC) {
		return RELAY_MALFORMED;
	}
	if (dot == 0) {
		dot = i;
	}
	for (size_t d = 0; d < RELAY_OTHER; d++) {
		if (strlen(relay_domains[d]) == dot
		    && memcmp(relay_domains[d], p, dot) == 0) {
			return d;
		}
	}
	return RELAY_OTHER;
}

const char *
relay_frame_domain(const void *frame, size_t len)
{
	return relay_domains[relay__domain_index(frame, len)];
}

static void
relay__pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg, bool publisher)
{
	relay *r = arg;
	atomic_int *n = publisher ? &r->n_publishers : &r->n_subscribers;
	metric *g = publisher ? r->publishers_g : r->subscribers_g;
	int now;

	(void) p;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		now = atomic_fetch_add(n, 1) + 1;
		metric_inc(publisher ? r->conn_pub : r->conn_sub);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		now = atomic_fetch_sub(n, 1) - 1;
	} else {
		return;
	}
	metric_set(g, now);
	log_debug("%s %s (now %d)", publisher ? "publisher" : "subscriber",
	    ev == NNG_PIPE_EV_ADD_POST ? "connected" : "disconnected", now);
}

static void
relay__publisher_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	relay__pipe_event(p, ev, arg, true);
}

static void
relay__subscriber_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	relay__pipe_event(p, ev, arg, false);
}

static void
relay__recv_cb(void *arg)
{
	relay *r = arg;
	int rv = nng_aio_result(r->recv_aio);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return; /* relay_stop */
	}
	if (rv != 0) {
		log_warn("relay receive: %s", nng_strerror(rv));
		nng_recv_aio(r->sub, r->recv_aio);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(r->recv_aio);
	size_t len = nng_msg_len(msg);
	size_t d = relay__domain_index(nng_msg_body(msg), len);
	atomic_fetch_add(&r->n_messages, 1);
	atomic_fetch_add(&r->n_bytes, len);
	if (d == RELAY_MALFORMED) {
		atomic_fetch_add(&r->n_malformed, 1);
	}
	if (!relay__admit(r, nng_msg_body(msg), len)) {
		atomic_fetch_add(&r->n_refused, 1);
		metric_inc(r->refused);
		nng_msg_free(msg);
		nng_recv_aio(r->sub, r->recv_aio);
		return;
	}
	metric_inc(r->messages[d]);
	metric_add(r->bytes[d], len);
	nng_aio_set_msg(r->send_aio, msg);
	nng_send_aio(r->pub, r->send_aio);
}

static void
relay__send_cb(void *arg)
{
	relay *r = arg;
	int rv = nng_aio_result(r->send_aio);

	if (rv != 0) {
		/* On failure the frame is still ours. */
		nng_msg_free(nng_aio_get_msg(r->send_aio));
		atomic_fetch_add(&r->n_send_errors, 1);
		metric_inc(r->send_errors);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			return; /* relay_stop */
		}
	}
	nng_recv_aio(r->sub, r->recv_aio);
}

static void
relay__register_metrics(relay *r, metrics *m)
{
	for (size_t d = 0; d < RELAY_N_DOMAINS; d++) {
		char labels[64];
		snprintf(
		    labels, sizeof(labels), "domain=\"%s\"", relay_domains[d]);
		r->messages[d]
		    = metrics_counter(m, "opsdesk_relay_messages_total",
		        "Bus frames forwarded, by topic domain.", labels);
		r->bytes[d] = metrics_counter(m, "opsdesk_relay_bytes_total",
		    "Bytes of bus frames forwarded, by topic domain.", labels);
	}
	r->refused = metrics_counter(m, "opsdesk_relay_refused_total",
	    "Frames dropped: no valid authentication, or a topic the "
	    "publisher's identity does not own.",
	    NULL);
	r->send_errors = metrics_counter(m, "opsdesk_relay_send_errors_total",
	    "Frames the subscriber side refused to send.", NULL);
	r->publishers_g = metrics_gauge(
	    m, "opsdesk_relay_publishers", "Publisher connections now.", NULL);
	r->subscribers_g = metrics_gauge(m, "opsdesk_relay_subscribers",
	    "Subscriber connections now.", NULL);
	r->conn_pub = metrics_counter(m, "opsdesk_relay_connections_total",
	    "Connections accepted since start, by side.", "side=\"publish\"");
	r->conn_sub = metrics_counter(m, "opsdesk_relay_connections_total",
	    "Connections accepted since start, by side.",
	    "side=\"subscribe\"");
}

static int
relay__listen(nng_socket s, const char *url, size_t max_msg)
{
	nng_listener l;
	int rv;

	if ((rv = nng_listener_create(&l, s, url)) != 0) {
		log_error("listen %s: %s", url, nng_strerror(rv));
		return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? OD_EINVAL
		                                                 : OD_EIO;
	}
	if ((rv = auth_listener_setup(l, url)) != 0) {
		nng_listener_close(l);
		return rv;
	}
	/* An oversized frame closes that publisher's connection rather
	 * than being buffered. */
	nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, max_msg);
	if ((rv = nng_listener_start(l, 0)) != 0) {
		log_error("listen %s: %s", url, nng_strerror(rv));
		nng_listener_close(l);
		return OD_EIO;
	}
	return 0;
}

int
relay_start(relay **out, const relay_options *opt)
{
	relay *r;
	size_t max_msg;
	int rv;

	if (out == NULL || opt == NULL || opt->publish_url == NULL
	    || opt->subscribe_url == NULL) {
		return OD_EINVAL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = auth_process(&r->auth)) != 0) {
		free(r);
		return rv;
	}
	max_msg = opt->max_msg ? opt->max_msg : RELAY_DEFAULT_MAX_MSG;
	if (opt->metrics != NULL) {
		relay__register_metrics(r, opt->metrics);
	}
	if ((rv = nng_sub0_open_raw(&r->sub)) == 0) {
		r->sub_open = true;
		if ((rv = nng_pub0_open_raw(&r->pub)) == 0) {
			r->pub_open = true;
		}
	}
	if (rv != 0) {
		log_error("relay sockets: %s", nng_strerror(rv));
		rv = OD_ENOMEM;
		goto fail;
	}
	nng_socket_set_int(r->sub, NNG_OPT_RECVBUF, RELAY_QUEUE);
	nng_socket_set_int(r->pub, NNG_OPT_SENDBUF, RELAY_QUEUE);
	nng_socket_set_size(r->sub, NNG_OPT_RECVMAXSZ, max_msg);
	nng_pipe_notify(
	    r->sub, NNG_PIPE_EV_ADD_POST, relay__publisher_event, r);
	nng_pipe_notify(
	    r->sub, NNG_PIPE_EV_REM_POST, relay__publisher_event, r);
	nng_pipe_notify(
	    r->pub, NNG_PIPE_EV_ADD_POST, relay__subscriber_event, r);
	nng_pipe_notify(
	    r->pub, NNG_PIPE_EV_REM_POST, relay__subscriber_event, r);
	if ((rv = relay__listen(r->pub, opt->subscribe_url, max_msg)) != 0
	    || (rv = relay__listen(r->sub, opt->publish_url, max_msg)) != 0) {
		goto fail;
	}
	if (nng_aio_alloc(&r->recv_aio, relay__recv_cb, r) != 0
	    || nng_aio_alloc(&r->send_aio, relay__send_cb, r) != 0) {
		rv = OD_ENOMEM;
		goto fail;
	}
	nng_recv_aio(r->sub, r->recv_aio);
	log_info("relaying %s -> %s", opt->publish_url, opt->subscribe_url);
	*out = r;
	return 0;
fail:
	relay_stop(r);
	return rv;
}

void
relay_stop(relay *r)
{
	if (r == NULL) {
		return;
	}
	/* Closing the sockets ends the chain of callbacks (NNG_ECLOSED);
	 * stopping the aios waits for a callback still running. */
	bool closed = (!r->sub_open || od_nng_close(r->sub))
	    && (!r->pub_open || od_nng_close(r->pub));
	if (!closed) {
		od_nng_abandon(r); /* its callbacks may still run */
		return;
	}
	nng_aio_stop(r->recv_aio); /* NULL is fine */
	nng_aio_stop(r->send_aio);
	nng_aio_free(r->recv_aio);
	nng_aio_free(r->send_aio);
	for (size_t i = 0; i < r->n_logged; i++) {
		free(r->logged[i]);
	}
	free(r->logged);
	free(r);
}

void
relay_get_stats(relay *r, relay_stats *out)
{
	out->messages = atomic_load(&r->n_messages);
	out->bytes = atomic_load(&r->n_bytes);
	out->malformed = atomic_load(&r->n_malformed);
	out->send_errors = atomic_load(&r->n_send_errors);
	out->refused = atomic_load(&r->n_refused);
	out->publishers = atomic_load(&r->n_publishers);
	out->subscribers = atomic_load(&r->n_subscribers);
}
