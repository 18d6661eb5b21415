/*
 * bus unit tests: framing, and publisher -> relay -> subscriber over real
 * tcp sockets on 127.0.0.1 with ports the kernel picks. The relay is a
 * raw sub0/pub0 pair joined by nng_device, as bus-relay does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "log/log.h"
#include "util/util.h"

/* Upper bound for something asynchronous to happen; never a measure. */
#define WAIT_MS 5000

/* ---- a relay for the tests ---- */

typedef struct relay {
	nng_socket in, out;
	pthread_t thread;
	int in_port, out_port;
	char in_url[64], out_url[64];
} relay;

static void *
relay_main(void *arg)
{
	relay *r = arg;
	nng_device(r->in, r->out); /* returns when a socket closes */
	return NULL;
}

static int
listen_port(nng_socket s, int port)
{
	char url[64];
	nng_listener l;
	int bound = 0;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	assert_int_equal(nng_listener_create(&l, s, url), 0);
	assert_int_equal(nng_listener_start(l, 0), 0);
	assert_int_equal(
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &bound), 0);
	return bound;
}

/* Ports 0: any; else the same ports again (a relay restart). */
static void
relay_start(relay *r, int in_port, int out_port)
{
	assert_int_equal(nng_sub0_open_raw(&r->in), 0);
	assert_int_equal(nng_pub0_open_raw(&r->out), 0);
	/* As bus-relay does: a raw socket's default queue drops bursts. */
	assert_int_equal(nng_socket_set_int(r->in, NNG_OPT_RECVBUF, 1024), 0);
	assert_int_equal(nng_socket_set_int(r->out, NNG_OPT_SENDBUF, 1024), 0);
	r->in_port = listen_port(r->in, in_port);
	r->out_port = listen_port(r->out, out_port);
	snprintf(
	    r->in_url, sizeof(r->in_url), "tcp://127.0.0.1:%d", r->in_port);
	snprintf(
	    r->out_url, sizeof(r->out_url), "tcp://127.0.0.1:%d", r->out_port);
	assert_int_equal(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

static void
relay_stop(relay *r)
{
	nng_close(r->in);
	nng_close(r->out);
	pthread_join(r->thread, NULL);
}

/* ---- what a subscriber saw ---- */

#define MAX_SEEN 64

typedef struct seen {
	pthread_mutex_t mtx;
	int n_events;
	char topics[MAX_SEEN][BUS_MAX_TOPIC];
	uint64_t seqs[MAX_SEEN];
	char sources[MAX_SEEN][32];
	char corr[MAX_SEEN][40];
	char texts[MAX_SEEN][32];
	int n_resyncs;
	char resyncs[MAX_SEEN][16];
	char last_topic[BUS_MAX_TOPIC]; /* kept past MAX_SEEN too */
} seen;

static void
on_event(void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	seen *s = arg;
	pthread_mutex_lock(&s->mtx);
	od_strlcpy(s->last_topic, topic, sizeof(s->last_topic));
	if (s->n_events < MAX_SEEN) {
		int i = s->n_events++;
		od_strlcpy(s->topics[i], topic, sizeof(s->topics[i]));
		s->seqs[i] = env->seq;
		od_strlcpy(s->sources[i], env->source, sizeof(s->sources[i]));
		od_strlcpy(
		    s->corr[i], env->correlation_id, sizeof(s->corr[i]));
		if (env->payload_case
		    == OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY) {
			od_strlcpy(s->texts[i], env->gateway->text,
			    sizeof(s->texts[i]));
		}
	}
	pthread_mutex_unlock(&s->mtx);
}

static void
on_resync(void *arg, const char *reason)
{
	seen *s = arg;
	pthread_mutex_lock(&s->mtx);
	if (s->n_resyncs < MAX_SEEN) {
		od_strlcpy(s->resyncs[s->n_resyncs++], reason, 16);
	}
	pthread_mutex_unlock(&s->mtx);
}

static int
seen_events(seen *s)
{
	pthread_mutex_lock(&s->mtx);
	int n = s->n_events;
	pthread_mutex_unlock(&s->mtx);
	return n;
}

static int
seen_resyncs(seen *s)
{
	pthread_mutex_lock(&s->mtx);
	int n = s->n_resyncs;
	pthread_mutex_unlock(&s->mtx);
	return n;
}

static void
wait_events(seen *s, int n)
{
	int64_t end = od_mono_ms() + WAIT_MS;
	while (seen_events(s) < n && od_mono_ms() < end) {
		usleep(2000);
	}
	assert_int_equal(seen_events(s), n);
}

static void
wait_resyncs(seen *s, int n)
{
	int64_t end = od_mono_ms() + WAIT_MS;
	while (seen_resyncs(s) < n && od_mono_ms() < end) {
		usleep(2000);
	}
	assert_int_equal(seen_resyncs(s), n);
}

typedef struct fixture {
	relay r;
	seen seen;
	bus_subscriber *sub;
	bus_publisher *pub;
	metrics *m;
} fixture;

static bool
sub_ready(fixture *f)
{
	return bus_subscriber_connected(f->sub) && seen_resyncs(&f->seen) > 0;
}

static bool
seen_last(seen *s, const char *topic)
{
	pthread_mutex_lock(&s->mtx);
	bool r = strcmp(s->last_topic, topic) == 0;
	pthread_mutex_unlock(&s->mtx);
	return r;
}

/*
 * Wait until the probes sent so far have landed: one sender's frames
 * keep their order through the relay, so once a marker sent after them
 * arrives, so have they. send(arg, marker) sends one; it is sent again
 * every 50 ms, as pub/sub may drop one in a burst.
 */
static void
drain(
    seen *s, void (*send)(void *, const char *), void *arg, const char *marker)
{
	int64_t end = od_mono_ms() + WAIT_MS;
	pthread_mutex_lock(&s->mtx);
	s->last_topic[0] = '\0';
	pthread_mutex_unlock(&s->mtx);
	while (!seen_last(s, marker) && od_mono_ms() < end) {
		int64_t again = od_mono_ms() + 50;
		send(arg, marker);
		while (!seen_last(s, marker) && od_mono_ms() < again) {
			usleep(1000);
		}
	}
	assert_true(seen_last(s, marker));
}

/*
 * Pub/sub joins are asynchronous: publish probes on a topic the test
 * subscribes to until one arrives, then forget them.
 */
static void send_published(void *arg, const char *topic);

static void
wait_flowing(fixture *f, const char *probe_topic)
{
	int64_t end = od_mono_ms() + WAIT_MS;
	while (!(sub_ready(f) && bus_publisher_connected(f->pub))
	    && od_mono_ms() < end) {
		usleep(2000);
	}
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	while (seen_events(&f->seen) == 0 && od_mono_ms() < end) {
		assert_int_equal(
		    bus_publish(f->pub, probe_topic, &env, NULL), 0);
		usleep(10000);
	}
	assert_true(seen_events(&f->seen) > 0);
	char marker[BUS_MAX_TOPIC];
	snprintf(marker, sizeof(marker), "%s.end", probe_topic);
	drain(&f->seen, send_published, f, marker);
	pthread_mutex_lock(&f->seen.mtx);
	f->seen.n_events = 0;
	pthread_mutex_unlock(&f->seen.mtx);
}

static void
open_sub(fixture *f, const char *const *prefixes, const char *ignore)
{
	bus_subscriber_options o = { 0 };
	o.url = f->r.out_url;
	o.prefixes = prefixes;
	o.on_event = on_event;
	o.on_resync = on_resync;
	o.arg = &f->seen;
	o.metrics = f->m;
	o.ignore_source = ignore;
	assert_int_equal(bus_subscriber_open(&f->sub, &o), 0);
}

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	pthread_mutex_init(&f->seen.mtx, NULL);
	assert_int_equal(metrics_new(&f->m), 0);
	relay_start(&f->r, 0, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	bus_subscriber_close(f->sub);
	bus_publisher_close(f->pub);
	relay_stop(&f->r);
	metrics_free(f->m);
	pthread_mutex_destroy(&f->seen.mtx);
	free(f);
	return 0;
}

/* ---- framing ---- */

static void
test_frame_roundtrip(void **state)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__GatewayEvent ge = OPSDESK__V1__GATEWAY_EVENT__INIT;
	ge.text = "hello";
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY;
	env.gateway = &ge;
	env.seq = 7;
	uint8_t *frame = NULL;
	size_t len = 0;
	assert_int_equal(
	    bus_frame_build("gateway.started", &env, &frame, &len), 0);
	const char *topic;
	size_t tlen, blen;
	const uint8_t *body;
	assert_int_equal(
	    bus_frame_split(frame, len, &topic, &tlen, &body, &blen), 0);
	assert_int_equal(tlen, strlen("gateway.started"));
	assert_memory_equal(topic, "gateway.started", tlen);
	Opsdesk__V1__Envelope *back
	    = opsdesk__v1__envelope__unpack(NULL, blen, body);
	assert_non_null(back);
	assert_int_equal(back->seq, 7);
	assert_string_equal(back->gateway->text, "hello");
	opsdesk__v1__envelope__free_unpacked(back, NULL);
	free(frame);
}

static void
test_frame_rejects(void **state)
{
	const char *topic;
	size_t tlen, blen;
	const uint8_t *body;
	char big[BUS_MAX_TOPIC + 10];
	memset(big, 'a', sizeof(big));
	big[BUS_MAX_TOPIC] = 0; /* NUL just past the limit */
	struct {
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "no-nul-here", 11 },
		{ "", 0 },
		{ "\0body", 5 },         /* empty topic */
		{ "tab\there\0x", 10 },  /* not printable */
		{ "caf\xc3\xa9\0x", 7 }, /* not ASCII */
		{ big, sizeof(big) },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bus_frame_split(bad[i].bytes, bad[i].len,
		                     &topic, &tlen, &body, &blen),
		    OD_EMALFORMED);
	}
	/* The longest topic that fits, with an empty body, is fine. */
	big[BUS_MAX_TOPIC - 1] = 0;
	assert_int_equal(
	    bus_frame_split(big, BUS_MAX_TOPIC, &topic, &tlen, &body, &blen),
	    0);
	assert_int_equal(tlen, BUS_MAX_TOPIC - 1);
	assert_int_equal(blen, 0);

	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	uint8_t *frame;
	size_t len;
	assert_int_equal(bus_frame_build("", &env, &frame, &len), OD_EINVAL);
	assert_int_equal(
	    bus_frame_build("a\nb", &env, &frame, &len), OD_EINVAL);
}

/* ---- publish and subscribe ---- */

static void
publish_text(
    bus_publisher *p, const char *topic, const char *text, const char *corr)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__GatewayEvent ge = OPSDESK__V1__GATEWAY_EVENT__INIT;
	ge.text = (char *) text;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY;
	env.gateway = &ge;
	env.seq = 999; /* ignored: the bus numbers events */
	assert_int_equal(bus_publish(p, topic, &env, corr), 0);
}

static void
test_prefix_and_seq(void **state)
{
	fixture *f = *state;
	static const char *const prefixes[] = { "incident.", "probe.", NULL };
	open_sub(f, prefixes, NULL);
	assert_int_equal(
	    bus_publisher_open(&f->pub, f->r.in_url, "unit-test", "i1", f->m),
	    0);
	wait_flowing(f, "probe.x");
	uint64_t base = bus_publisher_seq(f->pub);

	publish_text(f->pub, "ticket.created", "t1", NULL);
	publish_text(f->pub, "incident.opened", "i1", "req-1");
	publish_text(f->pub, "incidentless", "x", NULL);
	publish_text(f->pub, "incident.resolved", "i2", NULL);
	wait_events(&f->seen, 2);
	usleep(50000); /* nothing else may come */
	assert_int_equal(seen_events(&f->seen), 2);
	assert_string_equal(f->seen.topics[0], "incident.opened");
	assert_string_equal(f->seen.texts[0], "i1");
	assert_string_equal(f->seen.corr[0], "req-1");
	assert_string_equal(f->seen.sources[0], "unit-test");
	assert_string_equal(f->seen.topics[1], "incident.resolved");
	/* Numbered in send order, filtered ones included. */
	assert_int_equal(f->seen.seqs[0], base + 2);
	assert_int_equal(f->seen.seqs[1], base + 4);
	assert_int_equal(bus_publisher_seq(f->pub), base + 4);
	/* Filtered events are no gap: a filtering subscriber checks the
	 * numbers per topic. */
	assert_string_equal(f->seen.resyncs[0], "start");
	assert_int_equal(seen_resyncs(&f->seen), 1);
	assert_int_equal(metric_value(metrics_counter(
	                     f->m, "opsdesk_bus_published_total", "", NULL)),
	    base + 4);
}

/* A crafted publisher: frames sent with NNG directly, any seq. */
typedef struct crafted {
	nng_socket sock;
} crafted;

static void
crafted_open(crafted *c, fixture *f)
{
	assert_int_equal(nng_pub0_open(&c->sock), 0);
	assert_int_equal(nng_dial(c->sock, f->r.in_url, NULL, 0), 0);
}

static void
crafted_send_topic(crafted *c, const char *topic, const char *source,
    const char *instance, uint64_t seq, uint64_t topic_seq)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	env.source = (char *) source;
	env.instance = (char *) instance;
	env.seq = seq;
	env.topic_seq = topic_seq;
	uint8_t *frame;
	size_t len;
	assert_int_equal(bus_frame_build(topic, &env, &frame, &len), 0);
	assert_int_equal(nng_send(c->sock, frame, len, 0), 0);
	free(frame);
}

static void
crafted_send(
    crafted *c, const char *source, const char *instance, uint64_t seq)
{
	crafted_send_topic(c, "ops.crafted", source, instance, seq, seq);
}

/* drain's senders: through the fixture's publisher, or a crafted pipe
 * (as source "crafted", instance "drain", seq 1). */
static void
send_published(void *arg, const char *topic)
{
	fixture *f = arg;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	assert_int_equal(bus_publish(f->pub, topic, &env, NULL), 0);
}

static void
send_crafted(void *arg, const char *topic)
{
	crafted_send_topic(arg, topic, "crafted", "drain", 1, 1);
}

static void
test_gap_and_restart(void **state)
{
	fixture *f = *state;
	crafted c;
	open_sub(f, NULL, NULL);
	assert_int_equal(
	    bus_publisher_open(&f->pub, f->r.in_url, "unit-test", "i1", f->m),
	    0);
	wait_flowing(f, "probe.x");
	int r0 = seen_resyncs(&f->seen); /* "start", maybe more */
	crafted_open(&c, f);
	/* Wait for the crafted pipe: probe with seq 1 until seen. */
	int64_t end = od_mono_ms() + WAIT_MS;
	while (seen_events(&f->seen) == 0 && od_mono_ms() < end) {
		crafted_send(&c, "crafted", "c1", 1);
		usleep(10000);
	}
	drain(&f->seen, send_crafted, &c, "ops.crafted.end");
	pthread_mutex_lock(&f->seen.mtx);
	f->seen.n_events = 0;
	int r1 = f->seen.n_resyncs;
	pthread_mutex_unlock(&f->seen.mtx);
	/* Probes repeat seq 1: each repeat looks like a restart. */
	crafted_send(&c, "crafted", "c1", 1);
	wait_events(&f->seen, 1);
	int r2 = seen_resyncs(&f->seen);
	assert_true(r2 == r1 || r2 == r1 + 1);
	crafted_send(&c, "crafted", "c1", 2);
	crafted_send(&c, "crafted", "c1", 3);
	wait_events(&f->seen, 3);
	assert_int_equal(seen_resyncs(&f->seen), r2); /* in order */
	crafted_send(&c, "crafted", "c1", 5);         /* 4 went missing */
	wait_events(&f->seen, 4);
	assert_int_equal(seen_resyncs(&f->seen), r2 + 1);
	assert_string_equal(f->seen.resyncs[r2], "gap");
	crafted_send(&c, "crafted", "c1", 1); /* the publisher restarted */
	wait_events(&f->seen, 5);
	assert_int_equal(seen_resyncs(&f->seen), r2 + 2);
	assert_string_equal(f->seen.resyncs[r2 + 1], "restart");
	/* Another instance of the same source has its own numbers. */
	crafted_send(&c, "crafted", "c2", 1);
	crafted_send(&c, "crafted", "c1", 2);
	wait_events(&f->seen, 7);
	assert_int_equal(seen_resyncs(&f->seen), r2 + 2);
	assert_true(r0 >= 1);
	assert_string_equal(f->seen.resyncs[0], "start");
	nng_close(c.sock);
}

/* A filtering subscriber detects a gap in one topic's numbers. */
static void
test_topic_gap(void **state)
{
	fixture *f = *state;
	static const char *const prefixes[] = { "ops.", NULL };
	crafted c;
	open_sub(f, prefixes, NULL);
	crafted_open(&c, f);
	int64_t end = od_mono_ms() + WAIT_MS;
	while (seen_events(&f->seen) == 0 && od_mono_ms() < end) {
		crafted_send_topic(&c, "ops.probe", "cr", "t", 1, 1);
		usleep(10000);
	}
	drain(&f->seen, send_crafted, &c, "ops.probe.end");
	pthread_mutex_lock(&f->seen.mtx);
	f->seen.n_events = 0;
	int r = f->seen.n_resyncs;
	pthread_mutex_unlock(&f->seen.mtx);
	/* seq jumps (other topics), topic_seq does not: no resync */
	crafted_send_topic(&c, "ops.a", "cr", "t", 10, 1);
	crafted_send_topic(&c, "ops.a", "cr", "t", 12, 2);
	crafted_send_topic(&c, "ops.b", "cr", "t", 13, 1);
	crafted_send_topic(&c, "ops.a", "cr", "t", 20, 3);
	wait_events(&f->seen, 4);
	assert_int_equal(seen_resyncs(&f->seen), r);
	crafted_send_topic(&c, "ops.a", "cr", "t", 21, 5); /* 4 is lost */
	wait_events(&f->seen, 5);
	assert_int_equal(seen_resyncs(&f->seen), r + 1);
	assert_string_equal(f->seen.resyncs[r], "gap");
	nng_close(c.sock);
}

static void
test_garbage_skipped(void **state)
{
	fixture *f = *state;
	crafted c;
	open_sub(f, NULL, NULL);
	crafted_open(&c, f);
	int64_t end = od_mono_ms() + WAIT_MS;
	while (seen_events(&f->seen) == 0 && od_mono_ms() < end) {
		crafted_send(&c, "crafted", "g", 1);
		usleep(10000);
	}
	drain(&f->seen, send_crafted, &c, "ops.crafted.end");
	pthread_mutex_lock(&f->seen.mtx);
	f->seen.n_events = 0;
	pthread_mutex_unlock(&f->seen.mtx);
	metric *errs = metrics_counter(
	    f->m, "opsdesk_bus_decode_errors_total", "", NULL);
	double before = metric_value(errs);
	static const char no_nul[] = "garbage without a topic end";
	static const char bad_body[] = "ops.x\0\xff\xff\xff\xff";
	assert_int_equal(
	    nng_send(c.sock, (void *) no_nul, sizeof(no_nul) - 1, 0), 0);
	assert_int_equal(
	    nng_send(c.sock, (void *) bad_body, sizeof(bad_body) - 1, 0), 0);
	crafted_send(&c, "crafted", "g2", 1); /* still delivered after */
	wait_events(&f->seen, 1);
	assert_string_equal(f->seen.sources[0], "crafted");
	assert_int_equal(metric_value(errs), before + 2);
	nng_close(c.sock);
}

static void
test_ignore_source(void **state)
{
	fixture *f = *state;
	open_sub(f, NULL, "unit-test");
	crafted c;
	crafted_open(&c, f);
	assert_int_equal(
	    bus_publisher_open(&f->pub, f->r.in_url, "unit-test", "i1", f->m),
	    0);
	int64_t end = od_mono_ms() + WAIT_MS;
	while (seen_events(&f->seen) == 0 && od_mono_ms() < end) {
		crafted_send(&c, "crafted", "g", 1);
		usleep(10000);
	}
	while (!bus_publisher_connected(f->pub) && od_mono_ms() < end) {
		usleep(2000);
	}
	drain(&f->seen, send_crafted, &c, "ops.crafted.end");
	pthread_mutex_lock(&f->seen.mtx);
	f->seen.n_events = 0;
	pthread_mutex_unlock(&f->seen.mtx);
	publish_text(f->pub, "ops.mine", "mine", NULL);
	crafted_send(&c, "crafted", "g3", 1); /* a marker after ours */
	wait_events(&f->seen, 1);
	usleep(30000); /* an absence: ours (another pipe) must not come */
	assert_int_equal(seen_events(&f->seen), 1);
	assert_string_equal(f->seen.sources[0], "crafted");
	nng_close(c.sock);
}

static void
test_resync_on_reconnect(void **state)
{
	fixture *f = *state;
	open_sub(f, NULL, NULL);
	assert_int_equal(
	    bus_publisher_open(&f->pub, f->r.in_url, "unit-test", "i1", f->m),
	    0);
	wait_flowing(f, "probe.x");
	int before = seen_resyncs(&f->seen);
	int in = f->r.in_port, out = f->r.out_port;
	relay_stop(&f->r);
	int64_t end = od_mono_ms() + WAIT_MS;
	while (bus_subscriber_connected(f->sub) && od_mono_ms() < end) {
		usleep(2000);
	}
	assert_false(bus_subscriber_connected(f->sub));
	relay_start(&f->r, in, out); /* the relay comes back */
	wait_resyncs(&f->seen, before + 1);
	assert_string_equal(f->seen.resyncs[before], "reconnect");
	/* and events flow again */
	wait_flowing(f, "probe.y");
}

static void
test_open_errors(void **state)
{
	bus_publisher *p = NULL;
	bus_subscriber *s = NULL;
	bus_subscriber_options o = { 0 };
	assert_int_equal(
	    bus_publisher_open(&p, NULL, "x", "i", NULL), OD_EINVAL);
	assert_int_equal(
	    bus_publisher_open(&p, "nosuch://x", "x", "i", NULL), OD_EINVAL);
	assert_int_equal(bus_subscriber_open(&s, &o), OD_EINVAL);
	o.url = "tcp://127.0.0.1:1";
	assert_int_equal(bus_subscriber_open(&s, &o), OD_EINVAL); /* no cb */
	/* A relay that is not up is no start-up error. */
	o.on_event = on_event;
	seen sn = { 0 };
	pthread_mutex_init(&sn.mtx, NULL);
	o.arg = &sn;
	assert_int_equal(bus_subscriber_open(&s, &o), 0);
	assert_false(bus_subscriber_connected(s));
	bus_subscriber_close(s);
	assert_int_equal(
	    bus_publisher_open(&p, "tcp://127.0.0.1:1", "x", "i", NULL), 0);
	assert_false(bus_publisher_connected(p));
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	assert_int_equal(bus_publish(p, "ops.x", &env, NULL), 0);
	assert_int_equal(bus_publish(p, "bad topic\n", &env, NULL), OD_EINVAL);
	assert_int_equal(bus_publisher_seq(p), 1);
	bus_publisher_close(p);
	bus_publisher_close(NULL);
	bus_subscriber_close(NULL);
	pthread_mutex_destroy(&sn.mtx);
}

/* ---- publish after commit ---- */

typedef struct commit_job {
	bus_publisher *p;
	const char *text;
	int rv;
} commit_job;

static int
commit_job_fn(store_txn *txn, void *arg)
{
	commit_job *j = arg;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__GatewayEvent ge = OPSDESK__V1__GATEWAY_EVENT__INIT;
	ge.text = (char *) j->text;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY;
	env.gateway = &ge;
	assert_int_equal(
	    bus_publish_on_commit(j->p, txn, "ops.committed", &env, "req-c"),
	    0);
	return j->rv;
}

static void
test_publish_on_commit(void **state)
{
	fixture *f = *state;
	char dir[] = "/tmp/bus_test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	static const char *const dbs[] = { "data", NULL };
	store_options so = { 0 };
	so.path = dir;
	so.dbs = dbs;
	so.nosync = true;
	store *st = NULL;
	assert_int_equal(store_open(&st, &so), 0);

	open_sub(f, NULL, NULL);
	assert_int_equal(
	    bus_publisher_open(&f->pub, f->r.in_url, "unit-test", "i1", f->m),
	    0);
	wait_flowing(f, "probe.x");
	uint64_t base = bus_publisher_seq(f->pub);

	commit_job bad = { f->pub, "discarded", OD_EINVAL };
	assert_int_equal(store_write(st, commit_job_fn, &bad), OD_EINVAL);
	assert_int_equal(bus_publisher_seq(f->pub), base); /* nothing sent */
	commit_job good = { f->pub, "kept", 0 };
	assert_int_equal(store_write(st, commit_job_fn, &good), 0);
	wait_events(&f->seen, 1);
	assert_string_equal(f->seen.topics[0], "ops.committed");
	assert_string_equal(f->seen.texts[0], "kept"); /* payload merged */
	assert_string_equal(f->seen.corr[0], "req-c");
	assert_string_equal(f->seen.sources[0], "unit-test");
	assert_int_equal(f->seen.seqs[0], base + 1);
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	log_init("bus_test", "t", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_roundtrip),
		cmocka_unit_test(test_frame_rejects),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(
		    test_prefix_and_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_gap_and_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_topic_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_garbage_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_ignore_source, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_resync_on_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_publish_on_commit, setup, teardown),
	};
	/* TEST_FILTER=test_name runs one test (a glob), for debugging. */
	if (getenv("TEST_FILTER") != NULL) {
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	}
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	/* Let NNG reap what closed sockets left, so the leak checker sees
	 * a clean exit. */
	nng_fini();
	return failed;
}
