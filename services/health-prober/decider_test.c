/*
 * Unit tests of the decider (role decider) over a real store with an
 * injected clock: location views in, one decided transition out (with
 * the locations that saw it), the warm-up after a start, locations that
 * stop reporting, regional targets, and a restart that changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bus/bus.h"
#include "metrics/metrics.h"
#include "prober_fixture.h"

enum {
	UNKNOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN,
	UP = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP,
	DEGRADED = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED,
	DOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN,
};

#define T0      1795132800000LL
#define TIMEOUT 10000

static const char cfg_json[]
    = "{\"prober\":{\"role\":\"decider\",\"location_timeout\":\"10s\"},"
      "\"targets\":["
      "{\"id\":\"api\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\","
      "\"port\":1},"
      "{\"id\":\"web\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\","
      "\"port\":2,\"regional\":true},"
      "{\"id\":\"shop\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\","
      "\"port\":3,\"regional\":true,\"quorum\":3,"
      "\"slo\":{\"availability\":99,\"window\":\"1h\"}},"
      "{\"id\":\"db\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\","
      "\"port\":4,\"slo\":{\"availability\":99,\"window\":\"1h\"}}"
      "]}";

static int
setup(void **state)
{
	return fixture_setup(state, "decider_test", cfg_json, T0);
}

static void
observe(fixture *f, const char *id, const char *loc, int state)
{
	Opsdesk__V1__HealthObserved o = OPSDESK__V1__HEALTH_OBSERVED__INIT;
	o.location = (char *) loc;
	o.target_id = (char *) id;
	o.state = (Opsdesk__V1__ComponentState) state;
	o.latency_ms = 42;
	o.reason = (char *) (state == DOWN ? "connect refused" : "");
	o.at_ms = fake_now;
	prober_observe(f->p, &o);
}

static int
state_of(fixture *f, const char *id)
{
	const target_set *ts = prober_targets(f->p);
	for (size_t i = 0; i < ts->n; i++) {
		if (strcmp(ts->v[i].id, id) == 0) {
			return f->p->rt[i].st.state;
		}
	}
	fail();
	return -1;
}

static const char *
reason_of(fixture *f, const char *id)
{
	const target_set *ts = prober_targets(f->p);
	for (size_t i = 0; i < ts->n; i++) {
		if (strcmp(ts->v[i].id, id) == 0) {
			return f->p->rt[i].st.reason ? f->p->rt[i].st.reason
			                             : "";
		}
	}
	fail();
	return NULL;
}

typedef struct changes {
	size_t n;
	Opsdesk__V1__HealthChanged *last;
} changes;

static int
collect(void *arg, int64_t t, const MDB_val *v)
{
	changes *c = arg;
	(void) t;
	c->n++;
	if (c->last != NULL) {
		opsdesk__v1__health_changed__free_unpacked(c->last, NULL);
	}
	c->last = opsdesk__v1__health_changed__unpack(
	    NULL, v->mv_size, v->mv_data);
	assert_non_null(c->last);
	return 0;
}

static int
barrier_job(store_txn *txn, void *arg)
{
	(void) txn;
	(void) arg;
	return 0;
}

/* Wait for the store jobs queued so far (a flush with nothing pending
 * submits nothing). */
static void
store_barrier(fixture *f)
{
	assert_int_equal(prober_flush(f->p, true), 0);
	assert_int_equal(store_write(f->st, barrier_job, NULL), 0);
}

/* The stored transitions of id (waits for the queued store jobs). */
static changes
transitions(fixture *f, const char *id)
{
	changes c = { 0, NULL };
	MDB_txn *txn;
	store_barrier(f);
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	assert_int_equal(
	    prober_history_walk(txn, store_db(f->st, PDB_TRANSITIONS), id, 0,
	        INT64_MAX, collect, &c),
	    0);
	store_read_end(txn);
	return c;
}

static int
count_row(void *arg, int64_t t, const MDB_val *v)
{
	(void) t;
	(void) v;
	(*(size_t *) arg)++;
	return 0;
}

static void
changes_free(changes *c)
{
	if (c->last != NULL) {
		opsdesk__v1__health_changed__free_unpacked(c->last, NULL);
	}
}

static void
test_quorum_decides_once(void **state)
{
	fixture *f = *state;
	changes c;

	/* Warm-up: a view alone right after the start decides nothing
	 * (it would be a majority of one). */
	observe(f, "api", "eu-west", DOWN);
	assert_int_equal(state_of(f, "api"), UNKNOWN);
	fake_now += TIMEOUT;
	observe(f, "api", "us-east", UP);
	observe(f, "api", "ap-south", UP);
	/* eu-west's view is exactly TIMEOUT old: still counted. One of
	 * three down: up, and the reason names it. */
	assert_int_equal(state_of(f, "api"), UP);
	assert_string_equal(reason_of(f, "api"),
	    "down from eu-west only (1 of 3, quorum 2): connect refused");
	c = transitions(f, "api");
	assert_int_equal(c.n, 1);
	changes_free(&c);

	/* Two of three: down, one transition naming both. */
	fake_now += 1000;
	observe(f, "api", "eu-west", DOWN);
	observe(f, "api", "us-east", DOWN);
	assert_int_equal(state_of(f, "api"), DOWN);
	observe(f, "api", "us-east", DOWN);
	observe(f, "api", "eu-west", DOWN);
	c = transitions(f, "api");
	assert_int_equal(c.n, 2);
	assert_int_equal(c.last->old_state, UP);
	assert_int_equal(c.last->new_state, DOWN);
	assert_int_equal(c.last->n_down_locations, 2);
	assert_string_equal(c.last->down_locations[0], "eu-west");
	assert_string_equal(c.last->down_locations[1], "us-east");
	assert_int_equal(c.last->n_not_reporting, 0);
	changes_free(&c);

	/* ap-south stops reporting: excluded, not down; still 2 of 2. */
	fake_now += TIMEOUT;
	observe(f, "api", "eu-west", DOWN);
	observe(f, "api", "us-east", DOWN);
	prober_decide_all(f->p);
	assert_int_equal(state_of(f, "api"), DOWN);
	assert_string_equal(reason_of(f, "api"),
	    "down from eu-west, us-east (2 of 2): connect refused; ap-south "
	    "not reporting");
	c = transitions(f, "api");
	assert_int_equal(c.n, 2);
	changes_free(&c);

	/* Views of unknown targets and bad location names are ignored. */
	observe(f, "nope", "eu-west", DOWN);
	observe(f, "api", "bad location", UP);
	observe(f, "api", "bad location", UP);
	assert_int_equal(state_of(f, "api"), DOWN);
}

static void
test_stale_locations_and_restart(void **state)
{
	fixture *f = *state;
	changes c;

	/* Every location reports during the warm-up, as live ones do. */
	observe(f, "api", "eu-west", DOWN);
	observe(f, "api", "us-east", UP);
	observe(f, "api", "ap-south", UP);
	assert_int_equal(state_of(f, "api"), UNKNOWN);
	fake_now += TIMEOUT;
	prober_decide_all(f->p);
	assert_int_equal(state_of(f, "api"), UP);

	/* ap-south goes quiet while the others report every 2 s: eu-west
	 * alone is still no majority of the two that report, so nothing
	 * changes, before or after ap-south times out. */
	for (int i = 0; i < 8; i++) {
		fake_now += 2000;
		observe(f, "api", "eu-west", DOWN);
		observe(f, "api", "us-east", UP);
		prober_decide_all(f->p);
		assert_int_equal(state_of(f, "api"), UP);
	}
	assert_non_null(strstr(reason_of(f, "api"), "ap-south not reporting"));
	c = transitions(f, "api");
	assert_int_equal(c.n, 1);
	changes_free(&c);

	/* The decider restarts: the decided state comes back from the
	 * store, and the first view after the start (eu-west, down: a
	 * majority of one) changes nothing during the warm-up. */
	close_all(f);
	fake_now += 1000;
	open_all(f);
	assert_int_equal(state_of(f, "api"), UP);
	observe(f, "api", "eu-west", DOWN);
	prober_decide_all(f->p);
	assert_int_equal(state_of(f, "api"), UP);
	fake_now += TIMEOUT - 1;
	observe(f, "api", "eu-west", DOWN);
	observe(f, "api", "us-east", UP);
	observe(f, "api", "ap-south", UP);
	fake_now += 1;
	prober_decide_all(f->p);
	assert_int_equal(state_of(f, "api"), UP);
	c = transitions(f, "api");
	assert_int_equal(c.n, 1); /* no duplicate */
	changes_free(&c);
}

static void
test_regional(void **state)
{
	fixture *f = *state;
	changes c;

	observe(f, "web", "eu-west", DOWN);
	observe(f, "web", "us-east", UP);
	observe(f, "web", "ap-south", UP);
	fake_now += TIMEOUT;
	prober_decide_all(f->p);
	/* A regional target is degraded when one location fails. */
	assert_int_equal(state_of(f, "web"), DEGRADED);
	c = transitions(f, "web");
	assert_int_equal(c.n, 1);
	assert_int_equal(c.last->n_down_locations, 1);
	assert_string_equal(c.last->down_locations[0], "eu-west");
	changes_free(&c);
	observe(f, "web", "eu-west", UP);
	assert_int_equal(state_of(f, "web"), UP);
}

/* ---- the decider with a bus: what it publishes ---- */

typedef struct busfix {
	nng_socket sub;
	metrics *m;
	bus_publisher *pub;
} busfix;

static int bus_seq;

/* Reopen f's prober (same store) publishing to a SUB socket of b. */
static void
open_with_bus(fixture *f, busfix *b)
{
	char url[64], err[256];
	store_options so
	    = { .path = f->dir, .dbs = prober_db_names, .nosync = true };

	snprintf(url, sizeof(url), "inproc://decider-%d-%d", (int) getpid(),
	    ++bus_seq);
	assert_int_equal(nng_sub0_open(&b->sub), 0);
	assert_int_equal(
	    nng_socket_set(b->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	assert_int_equal(
	    nng_socket_set_ms(b->sub, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_listen(b->sub, url, NULL, 0), 0);
	assert_int_equal(metrics_new(&b->m), 0);
	assert_int_equal(
	    bus_publisher_open(&b->pub, url, "health-prober", "test", b->m),
	    0);
	for (int i = 0; i < 500 && !bus_publisher_connected(b->pub); i++) {
		usleep(10000); /* polls a condition, 5 s at most */
	}
	assert_true(bus_publisher_connected(b->pub));
	assert_int_equal(store_open(&f->st, &so), 0);
	assert_int_equal(prober_new(&f->p, f->cfg, NULL, err, sizeof(err)), 0);
	assert_int_equal(
	    prober_attach(f->p, f->st, b->pub, NULL, "test", "/"), 0);
}

static void
close_bus(busfix *b)
{
	bus_publisher_close(b->pub);
	od_nng_close(b->sub);
	metrics_free(b->m);
}

/* Everything on the bus up to a mark published now: each envelope (and
 * its topic) to visit, which may take parts of it. */
typedef void (*bus_visit)(
    const char *t, size_t tl, Opsdesk__V1__Envelope *env, void *arg);

static void
bus_until_mark(busfix *b, bus_visit visit, void *arg)
{
	Opsdesk__V1__Envelope mark = OPSDESK__V1__ENVELOPE__INIT;

	assert_int_equal(bus_publish(b->pub, "test.mark", &mark, NULL), 0);
	for (;;) {
		nng_msg *msg;
		const char *t;
		const uint8_t *body;
		size_t tl, bl;
		Opsdesk__V1__Envelope *env;
		assert_int_equal(nng_recvmsg(b->sub, &msg, 0), 0);
		assert_int_equal(bus_frame_split(nng_msg_body(msg),
		                     nng_msg_len(msg), &t, &tl, &body, &bl),
		    0);
		if (tl == 9 && memcmp(t, "test.mark", 9) == 0) {
			nng_msg_free(msg);
			return;
		}
		env = opsdesk__v1__envelope__unpack(NULL, bl, body);
		assert_non_null(env);
		visit(t, tl, env, arg);
		opsdesk__v1__envelope__free_unpacked(env, NULL);
		nng_msg_free(msg);
	}
}

typedef struct drained {
	const char *topic, *id;
	int n, *results;
	Opsdesk__V1__HealthAffected **last;
} drained;

static void
drain_visit(const char *t, size_t tl, Opsdesk__V1__Envelope *env, void *arg)
{
	drained *d = arg;
	if (tl == strlen(d->topic) && memcmp(t, d->topic, tl) == 0) {
		d->n++;
	}
	if (d->results != NULL && tl == 13
	    && memcmp(t, "health.result", 13) == 0) {
		(*d->results)++;
	}
	if (d->last != NULL
	    && env->payload_case
	        == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_AFFECTED
	    && strcmp(env->health_affected->target_id, d->id) == 0) {
		if (*d->last != NULL) {
			opsdesk__v1__health_affected__free_unpacked(
			    *d->last, NULL);
		}
		*d->last = env->health_affected;
		env->health_affected = NULL;
		env->payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD__NOT_SET;
	}
}

/* drain, also counting the health.result events into *results. */
static int
drain2(fixture *f, busfix *b, const char *topic, const char *id,
    Opsdesk__V1__HealthAffected **last, int *results)
{
	drained d = { topic, id, 0, results, last };
	store_barrier(f);
	bus_until_mark(b, drain_visit, &d);
	return d.n;
}

/*
 * The events published so far: after every queued store job has
 * committed (and so published), a marker from the same publisher closes
 * the list, so "nothing else" is known without waiting for a time-out.
 * Counts the topic's events and keeps the last HealthAffected (*last,
 * freed by the caller) of target id.
 */
static int
drain(fixture *f, busfix *b, const char *topic, const char *id,
    Opsdesk__V1__HealthAffected **last)
{
	return drain2(f, b, topic, id, last, NULL);
}

static void
views(fixture *f, const char *id, int eu, int us, int ap)
{
	observe(f, id, "eu-west", eu);
	observe(f, id, "us-east", us);
	observe(f, id, "ap-south", ap);
}

/*
 * A regional target (quorum 3) failing in more locations while still
 * degraded: one health.affected per change of the set, none when it
 * stays, none after a restart of the decider, and the status page's set
 * in current and in the stored state.
 */
static void
test_affected_changes(void **state)
{
	fixture *f = *state;
	busfix b;
	Opsdesk__V1__HealthAffected *ha = NULL;
	changes c;

	close_all(f);
	open_with_bus(f, &b);
	views(f, "shop", UP, UP, UP);
	fake_now += TIMEOUT;
	views(f, "shop", DOWN, UP, UP);
	assert_int_equal(state_of(f, "shop"), DEGRADED);
	assert_int_equal(drain(f, &b, "health.changed", "shop", NULL), 1);
	c = transitions(f, "shop");
	assert_int_equal(c.last->n_affected_locations, 1);
	assert_string_equal(c.last->affected_locations[0], "eu-west");
	changes_free(&c);

	/* us-east too: 2 of 3 is below the quorum of 3, still degraded;
	 * the set changes, once, sorted. */
	fake_now += 1000;
	views(f, "shop", DOWN, DOWN, UP);
	views(f, "shop", DOWN, DOWN, UP);
	prober_decide_all(f->p);
	assert_int_equal(state_of(f, "shop"), DEGRADED);
	assert_int_equal(drain(f, &b, "health.affected", "shop", &ha), 1);
	assert_non_null(ha);
	assert_int_equal(ha->state, DEGRADED);
	assert_int_equal(ha->n_affected_locations, 2);
	assert_string_equal(ha->affected_locations[0], "eu-west");
	assert_string_equal(ha->affected_locations[1], "us-east");
	assert_int_equal(ha->n_down_locations, 2);
	assert_int_equal(ha->since_ms, T0 + TIMEOUT);
	assert_true(ha->public_ == false);
	opsdesk__v1__health_affected__free_unpacked(ha, NULL);
	ha = NULL;
	c = transitions(f, "shop");
	assert_int_equal(c.n, 1); /* not a transition */
	changes_free(&c);
	/* The same set in another order (us-east reports first): no
	 * event. */
	fake_now += 1000;
	observe(f, "shop", "us-east", DOWN);
	observe(f, "shop", "eu-west", DOWN);
	assert_int_equal(drain(f, &b, "health.affected", "shop", NULL), 0);

	/* The decider restarts: the set comes back from the store, the
	 * same views after the warm-up publish nothing. */
	close_all(f);
	close_bus(&b);
	fake_now += 1000;
	open_with_bus(f, &b);
	views(f, "shop", DOWN, DOWN, UP);
	fake_now += TIMEOUT;
	views(f, "shop", DOWN, DOWN, UP);
	prober_decide_all(f->p);
	assert_int_equal(state_of(f, "shop"), DEGRADED);
	assert_int_equal(drain(f, &b, "health.affected", "shop", NULL), 0);
	assert_int_equal(drain(f, &b, "health.changed", "shop", NULL), 0);

	/* us-east recovers: back to eu-west alone, one event. */
	fake_now += 1000;
	views(f, "shop", DOWN, UP, UP);
	views(f, "shop", DOWN, UP, UP);
	assert_int_equal(drain(f, &b, "health.affected", "shop", &ha), 1);
	assert_int_equal(ha->n_affected_locations, 1);
	assert_string_equal(ha->affected_locations[0], "eu-west");
	opsdesk__v1__health_affected__free_unpacked(ha, NULL);
	ha = NULL;

	/* A target that is not regional never has affected locations. One
	 * health.result per decided round: the warm-up's views left
	 * us-east and ap-south in a round, so each eu-west view ends one
	 * from then on. */
	views(f, "api", UP, UP, UP);
	assert_int_equal(drain(f, &b, "health.result", "api", NULL), 0);
	fake_now += TIMEOUT;
	views(f, "api", DOWN, UP, UP);
	views(f, "api", DOWN, DOWN, UP);
	views(f, "api", DOWN, UP, UP);
	int results = 0;
	assert_int_equal(
	    drain2(f, &b, "health.affected", "api", NULL, &results), 0);
	assert_int_equal(results, 3);
	close_all(f);
	close_bus(&b);
	open_all(f);
}

/* The objectives count each decided round once, and a failure the
 * quorum overrules spends nothing, also for a regional target. */
static void
test_slo_counts_decided_rounds(void **state)
{
	fixture *f = *state;
	slo_obj_status st;
	size_t db = 3, shop = 2;

	assert_string_equal(prober_targets(f->p)->v[db].id, "db");
	assert_string_equal(prober_targets(f->p)->v[shop].id, "shop");
	views(f, "db", UP, UP, UP);
	views(f, "shop", UP, UP, UP);
	fake_now += TIMEOUT;
	/* Ten rounds: eu-west alone sees both down. */
	for (int i = 0; i < 10; i++) {
		views(f, "db", DOWN, UP, UP);
		views(f, "shop", DOWN, UP, UP);
		fake_now += 1000;
	}
	assert_int_equal(state_of(f, "db"), UP);
	assert_int_equal(state_of(f, "shop"), DEGRADED);
	prober_slo_peek(f->p->rt[db].slo, prober_targets(f->p)->v[db].slo, 0,
	    fake_now, &st);
	/* Ten decided rounds (the views of the warm-up decide nothing),
	 * not thirty location results, and none bad. */
	assert_int_equal(st.total, 10);
	assert_int_equal(st.bad, 0);
	prober_slo_peek(f->p->rt[shop].slo, prober_targets(f->p)->v[shop].slo,
	    0, fake_now, &st);
	/* Regional: degraded as decided ("partial outage" on the status
	 * page), not down: no budget spent either (see the README). */
	assert_int_equal(st.total, 10);
	assert_int_equal(st.bad, 0);

	/* Two of three down: down as decided, a bad round each. A round
	 * ends with the view that completes it: the first here ends with
	 * eu-west's (the warm-up left us-east and ap-south in it), before
	 * us-east's view made the target down. */
	for (int i = 0; i < 6; i++) {
		views(f, "db", DOWN, DOWN, UP);
		fake_now += 1000;
	}
	assert_int_equal(state_of(f, "db"), DOWN);
	prober_slo_peek(f->p->rt[db].slo, prober_targets(f->p)->v[db].slo, 0,
	    fake_now, &st);
	assert_int_equal(st.total, 16);
	assert_int_equal(st.bad, 5);
	/* ap-south stops: after the round under way (it ends with
	 * eu-west's view) the rounds wait for ap-south until it times out
	 * (10 s), then go on without it: 1 + 5 rounds in 15 s. */
	for (int i = 0; i < 15; i++) {
		observe(f, "db", "eu-west", UP);
		observe(f, "db", "us-east", UP);
		fake_now += 1000;
	}
	prober_slo_peek(f->p->rt[db].slo, prober_targets(f->p)->v[db].slo, 0,
	    fake_now, &st);
	assert_int_equal(st.total, 22);
	assert_int_equal(st.bad, 5);
	/* The history has one result per round, with every view. */
	{
		MDB_txn *txn;
		size_t n = 0;
		store_barrier(f);
		assert_int_equal(store_read_begin(f->st, &txn), 0);
		assert_int_equal(
		    prober_history_walk(txn, store_db(f->st, PDB_RESULTS),
		        "db", 0, INT64_MAX, count_row, &n),
		    0);
		store_read_end(txn);
		assert_int_equal(n, 22);
	}
}

typedef struct sent {
	char *out;
	size_t len, o;
} sent;

static void
sent_visit(const char *t, size_t tl, Opsdesk__V1__Envelope *env, void *arg)
{
	sent *s = arg;
	(void) t;
	(void) tl;
	if (env->payload_case
	    == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_OBSERVED) {
		assert_string_equal(env->health_observed->location, "eu-west");
		s->o += (size_t) snprintf(
		    s->out + s->o, s->len - s->o, "%sS", s->o ? "," : "");
	} else if (env->payload_case
	    == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_OBSERVED_BATCH) {
		s->o += (size_t) snprintf(s->out + s->o, s->len - s->o,
		    "%sB%zu", s->o ? "," : "",
		    env->health_observed_batch->n_views);
	} else {
		/* a located prober publishes nothing else here (no
		 * health.result: the decider does, per round) */
		fail_msg("unexpected payload %d", env->payload_case);
	}
}

/* What a located prober sent since the last call: "S" for a view on
 * its own, "B<n>" for a batch of n, comma-separated, in order. */
static void
sent_views(busfix *b, char *out, size_t len)
{
	sent s = { out, len, 0 };
	out[0] = '\0';
	bus_until_mark(b, sent_visit, &s);
}

static void
feed(fixture *f, int observed)
{
	probe_result r;
	memset(&r, 0, sizeof(r));
	r.observed = observed;
	r.latency_ms = 5;
	r.at_ms = fake_now;
	r.cert_days_left = -1;
	if (observed == DOWN) {
		od_strlcpy(r.error, "connect refused", sizeof(r.error));
	}
	prober_feed(f->p, 0, &r);
	fake_now += 1000;
}

/* A located prober: a view whose state changed goes out at once and on
 * its own, after the views queued before it; the others wait for the
 * flush and go in one batch. */
static void
test_located_views(void **state)
{
	fixture *f = *state;
	busfix b;
	char got[128];

	close_all(f);
	open_with_bus(f, &b);
	assert_string_equal(
	    prober_targets(f->p)->settings.location, "eu-west");
	/* Its objectives are the decider's: a location keeps none. */
	assert_non_null(prober_targets(f->p)->v[0].slo);
	assert_null(f->p->rt[0].slo);
	feed(f, UP); /* unknown -> up: at once */
	sent_views(&b, got, sizeof(got));
	assert_string_equal(got, "S");
	feed(f, UP);
	feed(f, UP);
	feed(f, UP);
	sent_views(&b, got, sizeof(got));
	assert_string_equal(got, "");
	assert_int_equal(prober_flush(f->p, false), 0);
	sent_views(&b, got, sizeof(got));
	assert_string_equal(got, "B3");
	assert_int_equal(prober_flush(f->p, false), 0);
	sent_views(&b, got, sizeof(got));
	assert_string_equal(got, "");
	/* failure_threshold 2: the first failure leaves the state up. */
	feed(f, UP);
	feed(f, DOWN);
	feed(f, DOWN);
	sent_views(&b, got, sizeof(got));
	assert_string_equal(got, "B2,S");
	close_all(f);
	close_bus(&b);
	open_all(f);
}

static int
setup_located(void **state)
{
	return fixture_setup(state, "located_test",
	    "{\"prober\":{\"location\":\"eu-west\"},\"targets\":["
	    "{\"id\":\"api\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\","
	    "\"port\":1,\"failure_threshold\":2,"
	    "\"slo\":{\"availability\":99}}]}",
	    T0);
}

static void
test_not_a_decider(void **state)
{
	fixture *f = *state;
	config *cfg;
	prober *p;
	char err[256];
	Opsdesk__V1__HealthObserved o = OPSDESK__V1__HEALTH_OBSERVED__INIT;

	(void) f;
	assert_int_equal(config_load_string(&cfg, "health-prober", NULL,
	                     "{\"targets\":[{\"id\":\"api\",\"kind\":\"tcp\","
	                     "\"host\":\"h\",\"port\":1}]}",
	                     err, sizeof(err)),
	    0);
	assert_int_equal(prober_new(&p, cfg, NULL, err, sizeof(err)), 0);
	assert_false(prober_targets(p)->settings.decider);
	assert_string_equal(prober_targets(p)->settings.location, "");
	o.location = "eu-west";
	o.target_id = "api";
	o.state = (Opsdesk__V1__ComponentState) DOWN;
	fake_now += 3600000;
	prober_observe(p, &o);
	prober_decide_all(p);
	assert_int_equal(p->rt[0].st.state, UNKNOWN);
	assert_int_equal(p->rt[0].n_locs, 0);
	prober_free(p);
	config_free(cfg);

	/* A location from the environment; a decider may not have one. */
	setenv("OPSDESK_PROBER_LOCATION", "eu-west", 1);
	assert_int_equal(
	    config_load_string(&cfg, "health-prober", NULL,
	        "{\"prober\":{\"location\":\"x\"}}", err, sizeof(err)),
	    0);
	assert_int_equal(prober_new(&p, cfg, NULL, err, sizeof(err)), 0);
	assert_string_equal(prober_targets(p)->settings.location, "eu-west");
	prober_free(p);
	setenv("OPSDESK_PROBER_ROLE", "decider", 1);
	assert_int_equal(
	    prober_new(&p, cfg, NULL, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "decider has no location"));
	setenv("OPSDESK_PROBER_LOCATION", "eu west", 1);
	unsetenv("OPSDESK_PROBER_ROLE");
	assert_int_equal(
	    prober_new(&p, cfg, NULL, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_PROBER_LOCATION"));
	unsetenv("OPSDESK_PROBER_LOCATION");
	config_free(cfg);
}

static void
test_target_keys(void **state)
{
	static const struct {
		const char *json;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{ "\"quorum\":2", NULL },
		{ "\"quorum\":17", "targets[0].quorum" },
		{ "\"regional\":1", "targets[0].regional" },
		{ "\"partial_down\":\"down\"", "targets[0].partial_down" },
		{ "\"partial_down\":\"degraded\"", NULL },
	};
	config *cfg;
	target_set ts;
	char json[512], err[256];

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(json, sizeof(json),
		    "{\"targets\":[{\"id\":\"a\",\"kind\":\"tcp\","
		    "\"host\":\"h\",\"port\":1,%s}]}",
		    cases[i].json);
		if (config_load_string(
		        &cfg, "health-prober", NULL, json, err, sizeof(err))
		    != 0) {
			/* the schema refused it: only expected errors */
			assert_non_null(cases[i].err);
			assert_non_null(strstr(err, cases[i].err));
			continue;
		}
		if (cases[i].err == NULL) {
			assert_int_equal(prober_targets_load(
			                     cfg, NULL, &ts, err, sizeof(err)),
			    0);
			prober_target_set_free(&ts);
		} else {
			assert_int_equal(prober_targets_load(
			                     cfg, NULL, &ts, err, sizeof(err)),
			    OD_EINVAL);
			assert_non_null(strstr(err, cases[i].err));
		}
		config_free(cfg);
	}
	/* Defaults: majority, not regional, a partial failure stays up;
	 * a regional target's partial failure is degraded. */
	assert_int_equal(config_load_string(&cfg, "health-prober", NULL,
	                     "{\"targets\":[{\"id\":\"a\",\"kind\":"
	                     "\"tcp\",\"host\":\"h\",\"port\":1},"
	                     "{\"id\":\"b\",\"kind\":\"tcp\",\"host\":"
	                     "\"h\",\"port\":1,\"regional\":true,"
	                     "\"quorum\":3}]}",
	                     err, sizeof(err)),
	    0);
	assert_int_equal(
	    prober_targets_load(cfg, NULL, &ts, err, sizeof(err)), 0);
	assert_int_equal(ts.v[0].quorum, 0);
	assert_false(ts.v[0].regional);
	assert_int_equal(ts.v[0].partial_down, UP);
	assert_int_equal(ts.v[1].quorum, 3);
	assert_true(ts.v[1].regional);
	assert_int_equal(ts.v[1].partial_down, DEGRADED);
	assert_false(prober_target_equal(&ts.v[0], &ts.v[1]));
	prober_target_set_free(&ts);
	config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_quorum_decides_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stale_locations_and_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_regional, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_affected_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_slo_counts_decided_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_located_views, setup_located, teardown),
		cmocka_unit_test_setup_teardown(
		    test_not_a_decider, setup, teardown),
		cmocka_unit_test(test_target_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
