/*
 * Unit tests of the prober core over a real store, with an injected
 * clock: results fed as the scheduler would, flushed, then uptime,
 * percentiles, daily rows, retention, transitions, maintenance and a
 * restart read back.
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
	UP = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP,
	DOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN,
	MAINT = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE,
};

#define DAY  86400000LL
#define HOUR 3600000LL
/* 2026-11-20T00:00:00Z */
#define T0 1795132800000LL

static const char cfg_json[]
    = "{\"targets\":["
      "{\"id\":\"api\",\"name\":\"Stripe API\",\"kind\":\"tcp\","
      "\"host\":\"127.0.0.1\",\"port\":1,\"failure_threshold\":1,"
      "\"success_threshold\":1,\"group\":\"payments\"},"
      "{\"id\":\"db\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":2}"
      "]}";

static int
setup(void **state)
{
	return fixture_setup(state, "prober_test", cfg_json, T0 + 10 * HOUR);
}

static void
feed(fixture *f, size_t index, int observed, uint32_t latency)
{
	probe_result r;
	memset(&r, 0, sizeof(r));
	r.observed = observed;
	r.latency_ms = latency;
	r.at_ms = fake_now;
	r.cert_days_left = -1;
	if (observed == DOWN) {
		snprintf(r.error, sizeof(r.error), "connect refused");
	}
	prober_feed(f->p, index, &r);
}

static int
count_row(void *arg, int64_t t, const MDB_val *v)
{
	(void) t;
	(void) v;
	(*(size_t *) arg)++;
	return 0;
}

/* Rows of id in db: results and transitions counted, aggregates summed
 * (their checks). */
static size_t
count_rows(fixture *f, unsigned db, const char *id)
{
	MDB_txn *txn;
	size_t n = 0;
	agg a;
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	if (db == PDB_TRANSITIONS || db == PDB_RESULTS) {
		assert_int_equal(prober_history_walk(txn, store_db(f->st, db),
		                     id, 0, INT64_MAX, count_row, &n),
		    0);
	} else {
		assert_int_equal(prober_history_sum(txn, store_db(f->st, db),
		                     id, 0, INT64_MAX, &a),
		    0);
		n = a.checks;
	}
	store_read_end(txn);
	return n;
}

/* Ten hours, one probe a minute: every 20th down, latency i % 200. */
static void
test_uptime_and_percentiles(void **state)
{
	fixture *f = *state;
	MDB_txn *txn;
	agg a;
	int64_t start = fake_now;

	for (int i = 0; i < 600; i++) {
		fake_now = start + (int64_t) i * 60000;
		feed(f, 1, i % 20 == 19 ? DOWN : UP, (uint32_t) (i % 200) + 1);
		assert_int_equal(prober_flush(f->p, true), 0);
	}
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	/* 30 of 600 failed: 95% over 24 h and over 7, 30, 90 days. */
	double u = prober_uptime_window(txn, f->st, "db", fake_now, DAY, &a);
	assert_int_equal(a.checks, 600);
	assert_int_equal(a.failures, 30);
	assert_true(u > 94.999 && u < 95.001);
	static const int64_t days[] = { 7, 30, 90 };
	for (size_t k = 0; k < 3; k++) {
		u = prober_uptime_window(
		    txn, f->st, "db", fake_now, days[k] * DAY, NULL);
		assert_true(u > 94.999 && u < 95.001);
	}
	/* Latencies 1..200, three times: p50 ~ 100 within its bucket
	 * (75,100], p95 within (150,200]. */
	uint32_t p50 = prober_agg_percentile(&a, 0.5),
	         p95 = prober_agg_percentile(&a, 0.95);
	assert_true(p50 > 75 && p50 <= 100);
	assert_true(p95 > 150 && p95 <= 200);
	/* A window a day later sees nothing in its last 24 h... */
	assert_true(prober_uptime_window(
	                txn, f->st, "db", fake_now + 2 * DAY, DAY, NULL)
	    < 0);
	/* ...while the day row still counts for 30 days. */
	assert_true(prober_uptime_window(
	                txn, f->st, "db", fake_now + 2 * DAY, 30 * DAY, NULL)
	    > 94.9);
	/* Minute, hour and day rows hold the same checks. */
	assert_int_equal(prober_history_sum(txn, store_db(f->st, PDB_MINUTE),
	                     "db", 0, INT64_MAX, &a),
	    0);
	assert_int_equal(a.checks, 600);
	assert_int_equal(prober_history_sum(txn, store_db(f->st, PDB_HOUR),
	                     "db", start, start + HOUR, &a),
	    0);
	assert_int_equal(a.checks, 60);
	store_read_end(txn);
	assert_int_equal(count_rows(f, PDB_RESULTS, "db"), 600);

	/* Now: raw results older than 6 h go (minutes 239..599 stay), the
	 * rest stays. */
	assert_int_equal(prober_retain(f->p, true), 0);
	assert_int_equal(count_rows(f, PDB_RESULTS, "db"), 361);
	assert_int_equal(count_rows(f, PDB_MINUTE, "db"), 600);

	/* Three days later: raw results (6 h) and minutes (48 h) expire,
	 * hours and days stay. */
	fake_now += 3 * DAY;
	assert_int_equal(prober_retain(f->p, true), 0);
	assert_int_equal(count_rows(f, PDB_MINUTE, "db"), 0);
	assert_int_equal(count_rows(f, PDB_RESULTS, "db"), 0);
	assert_int_equal(count_rows(f, PDB_HOUR, "db"), 600);
	assert_int_equal(count_rows(f, PDB_DAY, "db"), 600);
	/* 91 days: hours go too. */
	fake_now += 88 * DAY;
	assert_int_equal(prober_retain(f->p, true), 0);
	assert_int_equal(count_rows(f, PDB_HOUR, "db"), 0);
	assert_int_equal(count_rows(f, PDB_DAY, "db"), 600);
}

/* Transitions are stored; state and aggregates survive a restart. */
static void
test_transitions_and_restart(void **state)
{
	fixture *f = *state;
	const target_rt *rt;

	feed(f, 0, UP, 5);
	fake_now += 1000;
	feed(f, 0, DOWN, 5); /* thresholds 1: down at once */
	fake_now += 1000;
	feed(f, 0, DOWN, 5);
	rt = &f->p->rt[0];
	assert_int_equal(rt->st.state, DOWN);
	/* Maintenance of the group "payments" covers target api. */
	Opsdesk__V1__MaintenanceWindow w
	    = OPSDESK__V1__MAINTENANCE_WINDOW__INIT;
	char *comps[] = { "Payments" };
	w.id = 7;
	w.title = "card processor upgrade";
	w.components = comps;
	w.n_components = 1;
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS;
	Opsdesk__V1__MaintenanceWindow *wl[] = { &w };
	fake_now += 1000;
	prober_maintenance_resync(f->p, wl, 1);
	assert_int_equal(rt->st.state, MAINT);
	assert_int_equal(f->p->rt[1].st.state, 0); /* db: not covered */
	assert_int_equal(prober_flush(f->p, true), 0);
	/* unknown->up, up->down, down->maintenance */
	assert_int_equal(count_rows(f, PDB_TRANSITIONS, "api"), 3);

	close_all(f);
	open_all(f);
	rt = &f->p->rt[0];
	/* Maintenance comes back from the incident snapshot, not the store:
	 * the damped health is restored. */
	assert_int_equal(rt->st.state, DOWN);
	assert_int_equal(count_rows(f, PDB_HOUR, "api"), 3);
	assert_int_equal(count_rows(f, PDB_RESULTS, "api"), 3);
	fake_now += 1000;
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED;
	prober_maintenance_event(f->p, &w);
	assert_int_equal(rt->st.state, DOWN);
	feed(f, 0, UP, 5);
	assert_int_equal(rt->st.state, UP);
	assert_int_equal(prober_flush(f->p, true), 0);
	assert_int_equal(count_rows(f, PDB_TRANSITIONS, "api"), 4);
	/* The stored aggregates continue after the restart. */
	assert_int_equal(count_rows(f, PDB_HOUR, "api"), 4);
	MDB_txn *txn;
	agg a;
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	assert_int_equal(prober_history_sum(txn, store_db(f->st, PDB_DAY),
	                     "api", 0, INT64_MAX, &a),
	    0);
	store_read_end(txn);
	assert_int_equal(a.failures, 2);
	assert_int_equal(a.worst, DOWN);
}

static config *
load_cfg(const char *json)
{
	config *c = NULL;
	char err[256];
	assert_int_equal(config_load_string(&c, "health-prober", NULL, json,
	                     err, sizeof(err)),
	    0);
	return c;
}

static size_t
index_of(const prober *p, const char *id)
{
	const target *t = prober_target_find(&p->ts, id);
	assert_non_null(t);
	return (size_t) (t - p->ts.v);
}

/* A reload keeps what is still configured, resets what changed, drops
 * what is gone, and gives a returning target its stored state; a bad
 * config changes nothing. */
static void
test_reload(void **state)
{
	fixture *f = *state;
	char err[256];
	config *c;
	int64_t api_since;

	feed(f, 0, UP, 5);
	fake_now += 1000;
	feed(f, 0, DOWN, 5); /* api: thresholds 1, down at once */
	feed(f, 1, UP, 5);   /* db: up */
	fake_now += 1000;
	feed(f, 1, DOWN, 5); /* one of db's three failures */
	api_since = f->p->rt[0].st.since_ms;
	assert_int_equal(f->p->rt[1].st.worse_streak, 1);
	assert_int_equal(prober_flush(f->p, true), 0);

	/* api unchanged, db's port changed, web new. */
	c = load_cfg("{\"targets\":["
	             "{\"id\":\"web\",\"kind\":\"tcp\",\"host\":\"h\","
	             "\"port\":3},"
	             "{\"id\":\"db\",\"kind\":\"tcp\",\"host\":"
	             "\"127.0.0.1\",\"port\":9},"
	             "{\"id\":\"api\",\"name\":\"Stripe API\",\"kind\":"
	             "\"tcp\",\"host\":\"127.0.0.1\",\"port\":1,"
	             "\"failure_threshold\":1,\"success_threshold\":1,"
	             "\"group\":\"payments\"}]}");
	fake_now += 1000;
	assert_int_equal(prober_reload(f->p, c, NULL, err, sizeof(err)), 0);
	config_free(c);
	assert_int_equal(f->p->ts.n, 3);
	const target_rt *api = &f->p->rt[index_of(f->p, "api")];
	const target_rt *db = &f->p->rt[index_of(f->p, "db")];
	const target_rt *web = &f->p->rt[index_of(f->p, "web")];
	assert_int_equal(api->st.state, DOWN);
	assert_int_equal(api->st.since_ms, api_since);
	assert_string_equal(api->st.reason, "connect refused");
	assert_int_equal(db->st.state, UP); /* kept, streak restarted */
	assert_int_equal(db->st.worse_streak, 0);
	assert_int_equal(web->st.state, 0);

	/* A bad config: an error naming the key, nothing changed. */
	c = load_cfg("{\"targets\":[{\"id\":\"api\",\"kind\":\"tcp\","
	             "\"host\":\"h\",\"port\":0}]}");
	assert_int_equal(
	    prober_reload(f->p, c, NULL, err, sizeof(err)), OD_EINVAL);
	config_free(c);
	assert_non_null(strstr(err, "targets[0].port"));
	assert_int_equal(f->p->ts.n, 3);
	assert_ptr_equal(&f->p->rt[index_of(f->p, "api")], api);

	/* api removed, then configured again: its stored state is back. */
	c = load_cfg("{\"targets\":[{\"id\":\"web\",\"kind\":\"tcp\","
	             "\"host\":\"h\",\"port\":3}]}");
	assert_int_equal(prober_reload(f->p, c, NULL, err, sizeof(err)), 0);
	config_free(c);
	assert_int_equal(f->p->ts.n, 1);
	assert_null(prober_target_find(&f->p->ts, "api"));
	assert_int_equal(
	    prober_reload(f->p, f->cfg, NULL, err, sizeof(err)), 0);
	api = &f->p->rt[index_of(f->p, "api")];
	assert_int_equal(api->st.state, DOWN);
	assert_int_equal(api->st.since_ms, api_since);
}

static bool
has_state(fixture *f, const char *id)
{
	MDB_txn *txn;
	MDB_val v;
	int rv;
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	rv = store_get(txn, store_db(f->st, PDB_STATE), id, strlen(id), &v);
	store_read_end(txn);
	return rv == 0;
}

/* Ten hours of api (index 0) and db (index 1), one probe a minute. */
static void
feed_both(fixture *f)
{
	int64_t start = fake_now;
	for (int i = 0; i < 600; i++) {
		fake_now = start + (int64_t) i * 60000;
		feed(f, 0, UP, 5);
		feed(f, 1, UP, 5);
		assert_int_equal(prober_flush(f->p, true), 0);
	}
}

/* The rows of a target removed from the config expire as a configured
 * target's would, at most retain_removed_max of them a run; its state
 * goes with its last row. */
static void
test_retain_removed(void **state)
{
	fixture *f = *state;
	char err[256];
	config *c;
	int64_t end;

	feed_both(f);
	assert_int_equal(count_rows(f, PDB_RESULTS, "db"), 600);
	assert_int_equal(count_rows(f, PDB_TRANSITIONS, "db"), 1);
	c = load_cfg("{\"targets\":[{\"id\":\"api\",\"kind\":\"tcp\","
	             "\"host\":\"127.0.0.1\",\"port\":1}]}");
	assert_int_equal(prober_reload(f->p, c, NULL, err, sizeof(err)), 0);
	config_free(c);
	assert_null(prober_target_find(&f->p->ts, "db"));

	/* Now db's raw results older than 6 h go, as api's do; nothing
	 * else of db has expired. */
	assert_int_equal(prober_retain(f->p, true), 0);
	assert_int_equal(count_rows(f, PDB_RESULTS, "db"), 361);
	assert_int_equal(count_rows(f, PDB_RESULTS, "api"), 361);
	assert_int_equal(count_rows(f, PDB_MINUTE, "db"), 600);
	assert_true(has_state(f, "db"));

	/* Three days on, db's other raw results and its minutes (48 h)
	 * expire, 961 rows, 100 a run; its hours and days stay, as api's
	 * do. */
	f->p->retain_removed_max = 100;
	fake_now += 3 * DAY;
	assert_int_equal(prober_retain(f->p, true), 0);
	assert_int_equal(
	    count_rows(f, PDB_RESULTS, "db") + count_rows(f, PDB_MINUTE, "db"),
	    861);
	/* api is configured: its expired rows all go in the one run. */
	assert_int_equal(count_rows(f, PDB_RESULTS, "api"), 0);
	assert_int_equal(count_rows(f, PDB_MINUTE, "api"), 0);
	for (int run = 0; run < 8; run++) {
		assert_int_equal(prober_retain(f->p, true), 0);
	}
	assert_int_equal(
	    count_rows(f, PDB_RESULTS, "db") + count_rows(f, PDB_MINUTE, "db"),
	    61);
	assert_int_equal(prober_retain(f->p, true), 0);
	assert_int_equal(count_rows(f, PDB_RESULTS, "db"), 0);
	assert_int_equal(count_rows(f, PDB_MINUTE, "db"), 0);
	assert_int_equal(count_rows(f, PDB_HOUR, "db"), 600);
	assert_int_equal(count_rows(f, PDB_DAY, "db"), 600);
	assert_int_equal(count_rows(f, PDB_TRANSITIONS, "db"), 1);
	assert_true(has_state(f, "db"));

	/* 400 days after the last result everything of db is gone, state
	 * included; api, still probed, keeps its new rows and its state. */
	end = T0 + 10 * HOUR + 600 * 60000LL;
	fake_now = end + 401 * DAY;
	feed(f, 0, UP, 5);
	assert_int_equal(prober_flush(f->p, true), 0);
	f->p->retain_removed_max = PROBER_RETAIN_REMOVED_MAX;
	assert_int_equal(prober_retain(f->p, true), 0);
	for (unsigned db = PDB_TRANSITIONS; db <= PDB_DAY; db++) {
		assert_int_equal(count_rows(f, db, "db"), 0);
	}
	assert_false(has_state(f, "db"));
	assert_int_equal(count_rows(f, PDB_RESULTS, "api"), 1);
	assert_int_equal(count_rows(f, PDB_MINUTE, "api"), 1);
	assert_int_equal(count_rows(f, PDB_HOUR, "api"), 1);
	assert_int_equal(count_rows(f, PDB_DAY, "api"), 1);
	assert_int_equal(count_rows(f, PDB_TRANSITIONS, "api"), 1);
	assert_true(has_state(f, "api"));
}

/* A store belongs to one shard: the rows of a target of another shard
 * (the store was used unsharded before) expire like a removed target's. */
static void
test_retain_other_shard(void **state)
{
	fixture *f = *state;
	char err[256], shard[8];
	unsigned i
	    = prober_target_in_shard(prober_target_hash("db"), 0, 2) ? 1 : 0;

	feed_both(f);
	snprintf(shard, sizeof(shard), "%u/2", i);
	assert_int_equal(
	    prober_reload(f->p, f->cfg, shard, err, sizeof(err)), 0);
	assert_null(prober_target_find(&f->p->ts, "db"));
	fake_now += 401 * DAY;
	assert_int_equal(prober_retain(f->p, true), 0);
	for (unsigned db = PDB_TRANSITIONS; db <= PDB_DAY; db++) {
		assert_int_equal(count_rows(f, db, "db"), 0);
	}
	assert_false(has_state(f, "db"));
}

/* Rows at t = 1..10 of ids a, ab and b, and a key that is no history
 * key, in the results DB. (On the writer thread: no assert here.) */
static int
put_rows_fn(store_txn *txn, void *arg)
{
	static const char *const ids[] = { "a", "ab", "b" };
	MDB_dbi db = store_db(store_txn_store(txn), PDB_RESULTS);
	uint8_t key[512];
	int rv;
	(void) arg;
	for (size_t i = 0; i < 3; i++) {
		for (int64_t t = 1; t <= 10; t++) {
			if ((rv = store_put(txn, db, key,
			         prober_history_key(key, ids[i], t), "x", 1))
			    != 0) {
				return rv;
			}
		}
	}
	return store_put(txn, db, "a\x01junk", 6, "x", 1);
}

typedef struct unlisted_call {
	size_t max;
	size_t deleted;
} unlisted_call;

/* Delete rows before t = 6 of every id but ab. */
static int
retain_unlisted_fn(store_txn *txn, void *arg)
{
	static const char *const keep[] = { "ab" };
	unlisted_call *c = arg;
	return prober_history_retain_unlisted(txn,
	    store_db(store_txn_store(txn), PDB_RESULTS), keep, 1, 6, c->max,
	    &c->deleted);
}

/* The jump from one id's rows to the next does not confuse an id with
 * one it prefixes (a, ab), leaves keys that are not history keys alone,
 * and stops at the bound. */
static void
test_retain_unlisted(void **state)
{
	fixture *f = *state;
	unlisted_call c = { 3, 0 };
	MDB_txn *txn;
	MDB_val v;

	assert_int_equal(store_write(f->st, put_rows_fn, NULL), 0);
	assert_int_equal(store_write(f->st, retain_unlisted_fn, &c), 0);
	assert_int_equal(c.deleted, 3);
	assert_int_equal(count_rows(f, PDB_RESULTS, "a"), 7);
	assert_int_equal(count_rows(f, PDB_RESULTS, "b"), 10);
	c.max = 100;
	assert_int_equal(store_write(f->st, retain_unlisted_fn, &c), 0);
	assert_int_equal(c.deleted, 7); /* a: 2 more, b: 5 */
	assert_int_equal(count_rows(f, PDB_RESULTS, "a"), 5);
	assert_int_equal(count_rows(f, PDB_RESULTS, "ab"), 10);
	assert_int_equal(count_rows(f, PDB_RESULTS, "b"), 5);
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	assert_int_equal(
	    store_get(txn, store_db(f->st, PDB_RESULTS), "a\x01junk", 6, &v),
	    0);
	store_read_end(txn);
}

int
main(void)
{
	/* What is asserted must not depend on the shell running the tests. */
	config_env_clear();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_uptime_and_percentiles, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_transitions_and_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retain_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retain_other_shard, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retain_unlisted, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
