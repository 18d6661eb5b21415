/*
 * Unit tests of the objectives: config validation, rolling counters,
 * budget arithmetic and burn-rate episodes on an injected clock, and the
 * prober's objectives seeded from stored aggregates after a restart.
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

#include "prober_impl.h"
#include "util/util.h"

#define MIN  60000LL
#define HOUR 3600000LL
#define DAY  86400000LL
/* 2026-11-20T00:00:00Z */
#define T0 1795132800000LL

enum {
	UP = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP,
	DOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN,
};

static int
load(const char *json, target_set *ts, char *err, size_t errlen)
{
	config *c = NULL;
	int rv;
	if ((rv = config_load_string(
	         &c, "health-prober", NULL, json, err, errlen))
	    != 0) {
		return rv;
	}
	rv = prober_targets_load(c, NULL, ts, err, errlen);
	config_free(c);
	return rv;
}

/* A target of kind/extra with "slo": slo; expects an error holding want
 * (NULL: success). */
static void
check(const char *extra, const char *slo, const char *want)
{
	char json[1024], err[512] = "";
	target_set ts;
	int rv;
	snprintf(json, sizeof(json),
	    "{\"targets\":[{\"id\":\"api\",%s,\"slo\":%s}]}", extra, slo);
	rv = load(json, &ts, err, sizeof(err));
	if (want == NULL) {
		if (rv != 0) {
			fail_msg("%s: %s", slo, err);
		}
		prober_target_set_free(&ts);
		return;
	}
	assert_int_equal(rv, OD_EINVAL);
	if (strstr(err, want) == NULL) {
		fail_msg("%s: got \"%s\", wanted \"%s\"", slo, err, want);
	}
}

#define HTTP "\"kind\":\"http\",\"url\":\"http://x/\",\"public\":true"
#define METRIC                                                                \
	"\"kind\":\"metric\",\"url\":\"http://x/m\",\"values\":[{\"name\":"   \
	"\"err_pct\",\"path\":\"errors.pct\"}]"

static void
test_validation(void **state)
{
	target_set ts;
	char err[512];
	(void) state;

	check(HTTP,
	    "{\"availability\":99.95,\"latency\":{\"p95\":\"100ms\"},"
	    "\"window\":\"7d\",\"public\":true}",
	    NULL);
	check(METRIC, "{\"error_ratio\":{\"metric\":\"err_pct\",\"max\":1}}",
	    NULL);
	check(HTTP, "{\"availabilty\":99.9}", "did you mean");
	check(HTTP, "{}", "targets[0].slo: expected at least one");
	check(HTTP, "{\"availability\":100}", "targets[0].slo.availability");
	check(HTTP, "{\"availability\":\"high\"}", "availability");
	check(HTTP, "{\"latency\":{\"p95\":\"100ms\",\"p99\":\"1s\"}}",
	    "targets[0].slo.latency: expected one quantile");
	check(HTTP, "{\"latency\":{\"p42\":\"100ms\"}}", "p42");
	check(HTTP, "{\"latency\":{\"p95\":\"2m\"}}", "p95");
	check(HTTP, "{\"availability\":99,\"window\":\"90s\"}",
	    "targets[0].slo.window: expected whole minutes");
	check(HTTP, "{\"availability\":99,\"window\":\"13h30m\"}",
	    "whole hours above");
	check(HTTP, "{\"availability\":99,\"window\":\"91d\"}", "window");
	check(HTTP, "{\"error_ratio\":{\"metric\":\"x\",\"max\":1}}",
	    "only a metric target");
	check(METRIC, "{\"error_ratio\":{\"metric\":\"nope\",\"max\":1}}",
	    "targets[0].slo.error_ratio.metric");
	check(METRIC,
	    "{\"error_ratio\":{\"metric\":\"err_pct\",\"max\":1},"
	    "\"public\":true}",
	    "targets[0].slo.public: the target itself is not public");

	/* What a valid one becomes. */
	assert_int_equal(
	    load("{\"targets\":[{\"id\":\"a\"," HTTP ",\"slo\":{"
	         "\"availability\":99.9,\"latency\":{\"p99\":\"250ms\"},"
	         "\"window\":\"1h\"}},{\"id\":\"b\"," HTTP "}]}",
	        &ts, err, sizeof(err)),
	    0);
	assert_non_null(ts.v[0].slo);
	assert_null(ts.v[1].slo);
	assert_int_equal(ts.v[0].slo->window_ms, HOUR);
	assert_int_equal(ts.v[0].slo->n_obj, 2);
	assert_int_equal(ts.v[0].slo->obj[0].kind, SLO_AVAILABILITY);
	assert_true(ts.v[0].slo->obj[0].target == 99.9);
	assert_int_equal(ts.v[0].slo->obj[1].kind, SLO_LATENCY);
	assert_true(ts.v[0].slo->obj[1].target == 99.0);
	assert_int_equal(ts.v[0].slo->obj[1].latency_ms, 250);
	assert_false(ts.v[0].slo->public);
	assert_true(prober_slo_spec_equal(ts.v[0].slo, ts.v[0].slo));
	assert_false(prober_slo_spec_equal(ts.v[0].slo, NULL));
	prober_target_set_free(&ts);
}

static void
test_burn_windows(void **state)
{
	int64_t w[SLO_BURN_WINDOWS];
	char buf[16];
	(void) state;
	/* The workbook's windows for 30 days... */
	prober_slo_burn_windows(30 * DAY, w);
	assert_int_equal(w[SLO_FAST_LONG], HOUR);
	assert_int_equal(w[SLO_FAST_SHORT], 5 * MIN);
	assert_int_equal(w[SLO_SLOW_LONG], 6 * HOUR);
	assert_int_equal(w[SLO_SLOW_SHORT], 30 * MIN);
	/* ...scaled, and never under a minute (the counters' slot). */
	prober_slo_burn_windows(HOUR, w);
	for (int i = 0; i < SLO_BURN_WINDOWS; i++) {
		assert_int_equal(w[i], MIN);
	}
	prober_slo_burn_windows(DAY, w);
	assert_int_equal(w[SLO_FAST_LONG], 2 * MIN);
	assert_int_equal(w[SLO_SLOW_LONG], 12 * MIN);
	assert_string_equal(
	    prober_slo_duration_name(30 * DAY, buf, 16), "30d");
	assert_string_equal(prober_slo_duration_name(6 * HOUR, buf, 16), "6h");
	assert_string_equal(prober_slo_duration_name(5 * MIN, buf, 16), "5m");
}

static void
test_ring(void **state)
{
	slo_ring r;
	uint32_t lens[2] = { 1, 3 };
	(void) state;
	assert_int_equal(prober_slo_ring_init(&r, MIN, 3, lens, 2), OD_EINVAL);
	assert_int_equal(prober_slo_ring_init(&r, MIN, 4, lens, 2), 0);
	prober_slo_ring_add(&r, T0 + 10, 5, 1);
	assert_int_equal(r.win_total[0], 5);
	assert_int_equal(r.win_total[1], 5);
	prober_slo_ring_add(&r, T0 + MIN, 3, 3);
	/* The 1-slot window left the first minute behind; 3 slots hold it. */
	assert_int_equal(r.win_total[0], 3);
	assert_int_equal(r.win_bad[0], 3);
	assert_int_equal(r.win_total[1], 8);
	assert_int_equal(r.win_bad[1], 4);
	/* A late event goes to its slot, in the windows that still hold it. */
	prober_slo_ring_add(&r, T0 + 30000, 2, 0);
	assert_int_equal(r.win_total[0], 3);
	assert_int_equal(r.win_total[1], 10);
	/* Two minutes on: the first minute leaves the 3-slot window. */
	prober_slo_ring_advance(&r, T0 + 3 * MIN);
	assert_int_equal(r.win_total[1], 3);
	assert_int_equal(r.win_bad[1], 3);
	/* A clock that goes back changes nothing; too old is dropped. */
	prober_slo_ring_advance(&r, T0);
	assert_int_equal(r.win_total[1], 3);
	prober_slo_ring_add(&r, T0, 7, 7);
	assert_int_equal(r.win_total[1], 3);
	/* A gap longer than the ring empties it (roll-over). */
	prober_slo_ring_advance(&r, T0 + 60 * MIN);
	assert_int_equal(r.win_total[0], 0);
	assert_int_equal(r.win_total[1], 0);
	for (uint32_t i = 0; i < r.n; i++) {
		assert_int_equal(r.b[i].total, 0);
	}
	prober_slo_ring_fini(&r);
	prober_slo_ring_fini(NULL);
}

static slo_spec
spec_of(int64_t window, double avail)
{
	slo_spec s;
	memset(&s, 0, sizeof(s));
	s.window_ms = window;
	s.n_obj = 1;
	s.obj[0].kind = SLO_AVAILABILITY;
	s.obj[0].target = avail;
	return s;
}

static bool
near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}

static void
test_no_data_and_budget(void **state)
{
	slo_spec spec = spec_of(30 * DAY, 99.9);
	slo_obj_status st;
	slo_rt *s;
	(void) state;
	assert_int_equal(prober_slo_rt_new(&spec, &s), 0);
	/* 30 days: 5-minute slots for the burn windows (the longest is
	 * 6 h), 3-hour slots for the window. */
	assert_int_equal(s->o[0].fine.slice_ms, 5 * MIN);
	assert_int_equal(s->o[0].fine.n, 73);
	assert_int_equal(s->o[0].coarse.slice_ms, 3 * HOUR);
	assert_int_equal(s->o[0].coarse.n, 241);
	/* No data: nothing attained, nothing spent, no burn, no alert. */
	assert_int_equal(
	    prober_slo_eval(s, &spec, 0, T0, false, &st), SLO_EVENT_NONE);
	assert_true(st.attainment < 0);
	assert_true(near(st.budget_left, 1.0));
	assert_true(near(st.budget_min, 43.2)); /* 0.1 % of 30 days */
	for (int w = 0; w < SLO_BURN_WINDOWS; w++) {
		assert_true(near(st.burn[w], 0));
	}
	/* Partial data, 2000 checks over a day with one failure: half the
	 * budget's ratio spent. */
	for (int i = 0; i < 2000; i++) {
		prober_slo_record(
		    s, &spec, T0 + i * 43200LL, false, i == 1000, 20);
	}
	prober_slo_peek(s, &spec, 0, T0 + DAY, &st);
	assert_int_equal(st.total, 2000);
	assert_int_equal(st.bad, 1);
	assert_true(near(st.attainment, 99.95));
	assert_true(near(st.budget_left, 0.5));
	/* One failure is a burn of 0.5 over a day, nowhere near an alert. */
	assert_int_equal(st.condition, SLO_ALERT_NONE);
	/* Maintenance spends nothing. */
	for (int i = 0; i < 100; i++) {
		prober_slo_record(s, &spec, T0 + DAY + i, true, true, 20);
	}
	prober_slo_peek(s, &spec, 0, T0 + DAY + MIN, &st);
	assert_int_equal(st.total, 2000);
	assert_int_equal(st.bad, 1);
	/* Three more failures: 2 budgets' worth of errors, overspent. */
	for (int i = 0; i < 3; i++) {
		prober_slo_record(s, &spec, T0 + DAY + MIN, false, true, 20);
	}
	prober_slo_peek(s, &spec, 0, T0 + DAY + MIN, &st);
	assert_true(st.budget_left < 0);
	/* 31 days on, the window rolled past all of it. */
	prober_slo_peek(s, &spec, 0, T0 + 32 * DAY, &st);
	assert_true(st.attainment < 0);
	assert_int_equal(st.total, 0);
	prober_slo_rt_free(s);
}

/* n results every step ms from *t, down or not; eval after each. Returns
 * the events seen: firings count 1, resolutions 100. */
static int
run(slo_rt *s, const slo_spec *spec, int64_t *t, int n, int64_t step,
    bool down, bool maint, int *alert)
{
	int events = 0;
	for (int i = 0; i < n; i++) {
		slo_obj_status st;
		int ev;
		prober_slo_record(s, spec, *t, maint, down, 20);
		ev = prober_slo_eval(s, spec, 0, *t, maint, &st);
		events += ev == SLO_EVENT_FIRING ? 1
		    : ev == SLO_EVENT_RESOLVED   ? 100
		                                 : 0;
		*alert = st.alert;
		*t += step;
	}
	return events;
}

static void
test_fast_burn_episode(void **state)
{
	slo_spec spec = spec_of(HOUR, 99.9);
	int64_t t = T0;
	int alert;
	slo_rt *s;
	(void) state;
	assert_int_equal(prober_slo_rt_new(&spec, &s), 0);
	/* Ten minutes up: nothing. */
	assert_int_equal(
	    run(s, &spec, &t, 60, 10000, false, false, &alert), 0);
	assert_int_equal(alert, SLO_ALERT_NONE);
	/* Down: the first failed check burns the 1 h objective's 1-minute
	 * windows over 14.4x (1 in 7 checks is 143x): a page at once, and
	 * only one for the whole outage. */
	assert_int_equal(run(s, &spec, &t, 1, 10000, true, false, &alert), 1);
	assert_int_equal(alert, SLO_ALERT_PAGE);
	assert_int_equal(run(s, &spec, &t, 30, 10000, true, false, &alert), 0);
	assert_int_equal(alert, SLO_ALERT_PAGE);
	/* Recovered: resolved once the failures leave the short windows
	 * (the minute and the one before it), then quiet. */
	assert_int_equal(
	    run(s, &spec, &t, 13, 10000, false, false, &alert), 100);
	assert_int_equal(alert, SLO_ALERT_NONE);
	assert_int_equal(
	    run(s, &spec, &t, 30, 10000, false, false, &alert), 0);
	prober_slo_rt_free(s);
}

static void
test_slow_burn_and_maintenance(void **state)
{
	slo_spec spec = spec_of(30 * DAY, 99.9);
	slo_obj_status st;
	int64_t t = T0;
	int alert, ev;
	slo_rt *s;
	(void) state;
	assert_int_equal(prober_slo_rt_new(&spec, &s), 0);
	/* 1 % errors for 6 hours: a burn of 10, between the warning's 6x
	 * and the page's 14.4x. One check a second. */
	for (int i = 0; i < 6 * 3600; i++) {
		prober_slo_record(s, &spec, t, false, i % 100 == 0, 20);
		t += 1000;
	}
	ev = prober_slo_eval(s, &spec, 0, t, false, &st);
	assert_int_equal(ev, SLO_EVENT_FIRING);
	assert_int_equal(st.alert, SLO_ALERT_WARN);
	assert_int_equal(st.condition, SLO_ALERT_WARN);
	assert_true(
	    st.burn[SLO_SLOW_LONG] > 9.9 && st.burn[SLO_SLOW_LONG] < 10.1);
	assert_int_equal(st.burn_ms[SLO_SLOW_LONG], 6 * HOUR);
	/* Still burning: no second alert. */
	assert_int_equal(
	    prober_slo_eval(s, &spec, 0, t, false, &st), SLO_EVENT_NONE);
	prober_slo_rt_free(s);

	/* The same outage during maintenance: not counted, no alert. */
	spec = spec_of(HOUR, 99.9);
	t = T0;
	assert_int_equal(prober_slo_rt_new(&spec, &s), 0);
	assert_int_equal(
	    run(s, &spec, &t, 60, 10000, false, false, &alert), 0);
	assert_int_equal(run(s, &spec, &t, 30, 10000, true, true, &alert), 0);
	prober_slo_peek(s, &spec, 0, t, &st);
	assert_true(near(st.attainment, 100.0));
	/* A burn that started before the window is suppressed while the
	 * component is in maintenance, and alerts once it is over. */
	prober_slo_record(s, &spec, t, false, true, 20);
	assert_int_equal(
	    prober_slo_eval(s, &spec, 0, t, true, &st), SLO_EVENT_NONE);
	assert_int_equal(st.condition, SLO_ALERT_PAGE);
	assert_int_equal(
	    prober_slo_eval(s, &spec, 0, t, false, &st), SLO_EVENT_FIRING);
	prober_slo_rt_free(s);
}

static void
test_latency_and_errors(void **state)
{
	slo_spec spec;
	slo_obj_status st;
	slo_rt *s;
	agg a;
	uint32_t total, bad;
	(void) state;
	memset(&spec, 0, sizeof(spec));
	spec.window_ms = DAY;
	spec.n_obj = 2;
	spec.obj[0].kind = SLO_LATENCY;
	spec.obj[0].target = 95;
	spec.obj[0].latency_ms = 100;
	spec.obj[1].kind = SLO_ERROR_RATIO;
	spec.obj[1].target = 99;
	spec.obj[1].metric = 0;
	assert_int_equal(prober_slo_rt_new(&spec, &s), 0);
	/* 90 fast answers, 10 slow ones, 5 failures (availability's). */
	for (int i = 0; i < 105; i++) {
		prober_slo_record(s, &spec, T0 + i * 1000, false, i >= 100,
		    i < 90 ? 40 : 400);
	}
	prober_slo_peek(s, &spec, 0, T0 + 2 * MIN, &st);
	assert_int_equal(st.total, 100);
	assert_int_equal(st.bad, 10);
	assert_true(near(st.attainment, 90.0));
	assert_true(near(st.budget_left, -1.0)); /* twice the 5 % spent */
	/* Error ratio samples: 0.5 % and 1.5 % average 1 %: all of a 1 %
	 * budget. */
	prober_slo_record_metric(s, &spec, 0, 0.5, T0, false);
	prober_slo_record_metric(s, &spec, 0, 1.5, T0 + 1000, false);
	prober_slo_record_metric(s, &spec, 1, 90, T0 + 1000, false);
	prober_slo_peek(s, &spec, 1, T0 + 2 * MIN, &st);
	assert_true(near(st.attainment, 99.0));
	assert_true(near(st.budget_left, 0.0));
	prober_slo_rt_free(s);

	/* The same from a stored aggregate: answers only, the histogram's
	 * slow ones less the failures. */
	memset(&a, 0, sizeof(a));
	for (int i = 0; i < 105; i++) {
		probe_result r;
		memset(&r, 0, sizeof(r));
		r.observed = i >= 100 ? DOWN : UP;
		r.latency_ms = i < 90 ? 40 : 400;
		prober_agg_add(&a, &r, r.observed);
	}
	prober_slo_agg_counts(&spec.obj[0], &a, &total, &bad);
	assert_int_equal(total, 100);
	assert_int_equal(bad, 10);
	spec.obj[0].kind = SLO_AVAILABILITY;
	prober_slo_agg_counts(&spec.obj[0], &a, &total, &bad);
	assert_int_equal(total, 105);
	assert_int_equal(bad, 5);
}

/* ---- in the prober, over a store ---- */

static _Atomic int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	(void) arg;
	return fake_now;
}

static void
test_prober_round_and_restart(void **state)
{
	static const char json[]
	    = "{\"targets\":[{\"id\":\"api\",\"kind\":\"tcp\",\"host\":"
	      "\"127.0.0.1\",\"port\":1,\"slo\":{\"availability\":99.9,"
	      "\"window\":\"30d\"}},{\"id\":\"db\",\"kind\":\"tcp\","
	      "\"host\":\"127.0.0.1\",\"port\":2}]}";
	char dir[64] = "/tmp/slo_test.XXXXXX", err[256], cmd[128];
	store_options so = { .dbs = prober_db_names, .nosync = true };
	config *cfg = NULL;
	store *st = NULL;
	prober *p = NULL;
	slo_obj_status s;
	(void) state;

	assert_non_null(mkdtemp(dir));
	so.path = dir;
	fake_now = T0;
	od_clock_set(fake_clock, NULL);
	assert_int_equal(config_load_string(&cfg, "health-prober", NULL, json,
	                     err, sizeof(err)),
	    0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(store_open(&st, &so), 0);
		assert_int_equal(
		    prober_new(&p, cfg, NULL, err, sizeof(err)), 0);
		assert_int_equal(
		    prober_attach(p, st, NULL, NULL, "test", "/"), 0);
		assert_non_null(p->rt[0].slo);
		assert_null(p->rt[1].slo);
		if (round == 0) {
			/* Three hours: 1 failure in 1000 checks. */
			for (int i = 0; i < 1000; i++) {
				probe_result r;
				memset(&r, 0, sizeof(r));
				r.observed = i == 500 ? DOWN : UP;
				r.latency_ms = 10;
				r.at_ms = fake_now;
				prober_feed(p, 0, &r);
				fake_now += 10800;
			}
			assert_int_equal(prober_slo_round(p, fake_now), 0);
			assert_int_equal(prober_flush(p, true), 0);
		}
		/* The second time, after a restart, the counts come from the
		 * stored aggregates. */
		prober_slo_peek(p->rt[0].slo, p->ts.v[0].slo, 0, fake_now, &s);
		assert_int_equal(s.total, 1000);
		assert_int_equal(s.bad, 1);
		assert_true(near(s.budget_left, 0.0));
		prober_stop(p);
		store_close(st);
		prober_free(p);
	}
	config_free(cfg);
	od_clock_set(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_burn_windows),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_no_data_and_budget),
		cmocka_unit_test(test_fast_burn_episode),
		cmocka_unit_test(test_slow_burn_and_maintenance),
		cmocka_unit_test(test_latency_and_errors),
		cmocka_unit_test(test_prober_round_and_restart),
	};
	config_env_clear();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
