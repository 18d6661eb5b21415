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
      "\"port\":2,\"regional\":true}"
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

/* The stored transitions of id (waits for the queued store jobs). */
static changes
transitions(fixture *f, const char *id)
{
	changes c = { 0, NULL };
	MDB_txn *txn;
	assert_int_equal(prober_flush(f->p, true), 0);
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	assert_int_equal(
	    prober_history_walk(txn, store_db(f->st, PDB_TRANSITIONS), id, 0,
	        INT64_MAX, collect, &c),
	    0);
	store_read_end(txn);
	return c;
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
		    test_not_a_decider, setup, teardown),
		cmocka_unit_test(test_target_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
