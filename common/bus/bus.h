/*
 * bus — pub/sub of protobuf envelopes through bus-relay.
 *
 * Wire format: the topic bytes, one 0x00, then a serialized
 * opsdesk.v1.Envelope. NNG's subscriptions match a byte prefix of the
 * message, so subscribers filter on topic prefixes ("incident.").
 *
 * Pub/sub is best effort: NNG drops messages when a queue is full. Every
 * publisher numbers its events 1, 2, 3 … per (source, instance) (`seq`)
 * and per (source, instance, topic) (`topic_seq`); the subscriber tracks
 * the last number per publisher — per topic when it filters on prefixes,
 * since `seq` also counts what it filters out — and calls on_resync when
 * it sees a gap, a publisher it has not heard from starting past 1 (more
 * than 5 s after a start or reconnect), a restarted publisher (a number
 * not above the last), or a reconnection to the relay. A gap across a
 * reconnection is covered by that reconnection's resync. A consumer that
 * needs every change resyncs from the owner's snapshot over req/rep then.
 */
#ifndef OPSDESK_BUS_H
#define OPSDESK_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.pb-c.h"
#include "metrics/metrics.h"
#include "store/store.h"

#define BUS_SCHEMA_VERSION 1
#define BUS_MAX_TOPIC      128
#define BUS_MAX_MSG        (1024 * 1024)

typedef struct bus_publisher bus_publisher;

/*
 * Dial url (the relay's publisher side) without blocking: a relay that is
 * not up yet is retried in the background. source is the executable name;
 * instance the OPSDESK_INSTANCE. m (borrowed, may be NULL) counts events.
 */
int bus_publisher_open(bus_publisher **out, const char *url,
    const char *source, const char *instance, metrics *m);
void bus_publisher_close(bus_publisher *p); /* NULL-safe */
/* True once a pipe to the relay is up (readiness). */
bool bus_publisher_connected(bus_publisher *p);

/*
 * Publish env (borrowed) under topic. Only the payload of env is used:
 * the bus fills schema_version, event_id, source, instance, seq,
 * topic_seq, ts_ms, topic and correlation_id (may be NULL). Thread-safe;
 * events are numbered in the order they are sent. Never blocks on a slow
 * relay.
 */
int bus_publish(bus_publisher *p, const char *topic,
    const Opsdesk__V1__Envelope *env, const char *correlation_id);
/*
 * Pack env's payload now and publish it after txn's job commits (see
 * store_txn_on_commit), so an event never announces what was not stored.
 */
int bus_publish_on_commit(bus_publisher *p, store_txn *txn, const char *topic,
    const Opsdesk__V1__Envelope *env, const char *correlation_id);
/* The last sequence number used. */
uint64_t bus_publisher_seq(bus_publisher *p);

/* ---- subscribing ---- */

typedef struct bus_subscriber bus_subscriber;

/* An event; topic and env are borrowed for the call. */
typedef void (*bus_event_fn)(
    void *arg, const char *topic, const Opsdesk__V1__Envelope *env);
/* Something may have been missed: "start", "reconnect", "gap",
 * "restart". */
typedef void (*bus_resync_fn)(void *arg, const char *reason);

typedef struct bus_resync bus_resync;

typedef struct bus_subscriber_options {
	const char *url;             /* the relay's subscriber side */
	const char *const *prefixes; /* NULL-terminated; NULL: everything */
	bus_event_fn on_event;
	bus_resync_fn on_resync; /* may be NULL */
	void *arg;
	metrics *metrics; /* may be NULL */
	/* Ignore our own events (by source name), e.g. a service that both
	 * publishes and subscribes to a domain. NULL: keep all. */
	const char *ignore_source;
	/* Borrowed, may be NULL: every resync reason (after on_resync)
	 * marks all of this worker's sources stale. It must outlive the
	 * subscriber. */
	bus_resync *resync;
} bus_subscriber_options;

/*
 * Dial and start the subscriber's thread; callbacks run on it, one at a
 * time, in arrival order. Undecodable messages are logged, counted
 * (opsdesk_bus_decode_errors_total) and skipped. on_resync("start") is
 * called once the first connection is up.
 */
int bus_subscriber_open(
    bus_subscriber **out, const bus_subscriber_options *opt);
void bus_subscriber_close(bus_subscriber *s); /* NULL-safe, joins */
bool bus_subscriber_connected(bus_subscriber *s);

/* ---- resync: catching up from the owners' snapshots ---- */

/*
 * Fetch one source's state from its owner (a snapshot over req/rep
 * through an rpc_client) and apply it. 0 when applied; any other value
 * means "not now" (the peer is down, a time-out, a store error): the
 * worker tries again after a backoff, for as long as it takes. Runs on
 * the worker's thread, one fetch at a time.
 */
typedef int (*bus_resync_fetch_fn)(void *arg);

typedef struct bus_resync_source {
	const char *name; /* logs and the metric's label (copied) */
	bus_resync_fetch_fn fetch;
	void *arg; /* borrowed; must outlive the worker */
	/* > 0: mark the source stale every period_ms as well, since events
	 * are best effort and a silently lost one would otherwise stay lost
	 * until the next gap. */
	int64_t period_ms;
} bus_resync_source;

typedef struct bus_resync_options {
	const bus_resync_source *sources; /* copied */
	size_t n_sources;
	int64_t backoff_min_ms; /* first retry after a failure; 0: 1 s */
	int64_t backoff_max_ms; /* doubling up to this; 0: 30 s */
	metrics *metrics;       /* may be NULL: opsdesk_resyncs_total */
} bus_resync_options;

/*
 * One resync mechanism for every subscriber: a source is marked stale
 * (every source is stale when the worker starts; a bus subscriber with
 * .resync set marks them on "start", a gap, a restart or a reconnect;
 * the service may mark one itself, e.g. after an event it could not
 * apply), and the worker's thread fetches each stale source, retrying
 * with a doubling backoff until a fetch succeeds. A source marked again
 * while its fetch runs is fetched once more afterwards, so a gap that
 * opens during a fetch is never lost. Results are counted in
 * opsdesk_resyncs_total{source, result="ok"|"failed"}.
 */
int bus_resync_start(bus_resync **out, const bus_resync_options *opt);
/* Mark source i stale (i < 0: every source) and wake the worker at once
 * (a backoff in progress is cut short). reason is logged. Thread-safe;
 * never blocks on a fetch. */
void bus_resync_mark(bus_resync *r, int i, const char *reason);
/* Successful fetches of source i so far (tests poll it). */
uint64_t bus_resync_done(bus_resync *r, int i);
/* True while source i is stale (marked and not yet fetched). */
bool bus_resync_stale(bus_resync *r, int i);
/* Stop the worker (waits for a fetch in progress) and free r. NULL-safe.
 * Stop the subscribers that mark it first. */
void bus_resync_stop(bus_resync *r);

/* ---- framing, shared with opsctl and the fuzzers ---- */

/*
 * Split a frame into topic and body. 0, or OD_EMALFORMED when there is no
 * 0x00 within BUS_MAX_TOPIC bytes or the topic is not printable ASCII.
 */
int bus_frame_split(const void *frame, size_t len, const char **topic,
    size_t *topic_len, const uint8_t **body, size_t *body_len);
/* Build a frame: topic, 0x00, packed envelope. Caller frees *out with
 * free(). */
int bus_frame_build(const char *topic, const Opsdesk__V1__Envelope *env,
    uint8_t **out, size_t *out_len);

#endif /* OPSDESK_BUS_H */
