/* Unit tests: the state machine, thresholds and maintenance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "prober.h"
#include "util/util.h"

enum {
	UNKNOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN,
	UP = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP,
	DEGRADED = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED,
	DOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN,
	MAINT = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE,
};

static int64_t now = 1000;

/* Feed one observation; returns the new shown state if it changed, else
 * -1. */
static int
feed(target_state *s, const target *t, int observed)
{
	probe_result r;
	state_change chg;
	memset(&r, 0, sizeof(r));
	r.observed = observed;
	r.at_ms = (now += 1000);
	r.latency_ms = 12;
	r.cert_days_left = -1;
	if (observed == DOWN) {
		od_strlcpy(r.error, "HTTP 503", sizeof(r.error));
	}
	if (!prober_state_feed(s, t, &r, &chg)) {
		return -1;
	}
	assert_int_equal(chg.new_state, s->state);
	assert_int_equal(chg.at_ms, now);
	assert_int_equal(s->since_ms, now);
	return chg.new_state;
}

static void
test_thresholds(void **state)
{
	target t = { .failure_threshold = 3, .success_threshold = 2 };
	target_state s;
	(void) state;
	prober_state_init(&s);
	assert_int_equal(s.state, UNKNOWN);
	/* A first success decides at once. */
	assert_int_equal(feed(&s, &t, UP), UP);
	/* Two failures and a success: no change, streak reset. */
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(s.consecutive_failures, 2);
	assert_int_equal(feed(&s, &t, UP), -1);
	assert_int_equal(s.consecutive_failures, 0);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), DOWN);
	assert_string_equal(s.reason, "HTTP 503");
	assert_int_equal(feed(&s, &t, DOWN), -1);
	/* One success is not recovery. */
	assert_int_equal(feed(&s, &t, UP), -1);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, UP), -1);
	assert_int_equal(feed(&s, &t, UP), UP);
	assert_int_equal(s.consecutive_successes, 2);
	prober_state_fini(&s);
}

static void
test_down_from_unknown_needs_threshold(void **state)
{
	target t = { .failure_threshold = 3, .success_threshold = 2 };
	target_state s;
	(void) state;
	prober_state_init(&s);
	/* A component still starting: failures below the threshold leave it
	 * unknown, and its first success shows it up at once. */
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(s.state, UNKNOWN);
	assert_int_equal(feed(&s, &t, UP), UP);
	/* One that never comes up is down after the threshold. */
	prober_state_fini(&s);
	prober_state_init(&s);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), DOWN);
	/* A first degraded result shows at once too. */
	prober_state_fini(&s);
	prober_state_init(&s);
	assert_int_equal(feed(&s, &t, DEGRADED), DEGRADED);
	prober_state_fini(&s);
}

static void
test_degraded(void **state)
{
	target t = { .failure_threshold = 2, .success_threshold = 1 };
	target_state s;
	(void) state;
	prober_state_init(&s);
	assert_int_equal(feed(&s, &t, UP), UP);
	assert_int_equal(feed(&s, &t, DEGRADED), -1);
	assert_int_equal(feed(&s, &t, DEGRADED), DEGRADED);
	/* down is worse than degraded: it needs its own streak */
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(feed(&s, &t, DOWN), DOWN);
	/* a degraded result is better than down: success threshold 1 */
	assert_int_equal(feed(&s, &t, DEGRADED), DEGRADED);
	assert_int_equal(feed(&s, &t, UP), UP);
	/* Threshold 1 both ways follows every result. */
	target t1 = { .failure_threshold = 1, .success_threshold = 1 };
	assert_int_equal(feed(&s, &t1, DOWN), DOWN);
	assert_int_equal(feed(&s, &t1, UP), UP);
	prober_state_fini(&s);
}

static void
test_maintenance(void **state)
{
	target t = { .failure_threshold = 1, .success_threshold = 1 };
	target_state s;
	state_change chg;
	(void) state;
	prober_state_init(&s);
	assert_int_equal(feed(&s, &t, UP), UP);
	assert_true(prober_state_set_maintenance(
	    &s, true, "MNT-4 db upgrade", 5000, &chg));
	assert_int_equal(chg.old_state, UP);
	assert_int_equal(chg.new_state, MAINT);
	assert_non_null(strstr(chg.reason, "MNT-4"));
	assert_false(
	    prober_state_set_maintenance(&s, true, "again", 5001, &chg));
	/* Health moves underneath, the shown state does not. */
	assert_int_equal(feed(&s, &t, DOWN), -1);
	assert_int_equal(s.state, MAINT);
	assert_int_equal(s.health, DOWN);
	assert_true(prober_state_set_maintenance(&s, false, NULL, 9000, &chg));
	assert_int_equal(chg.old_state, MAINT);
	assert_int_equal(chg.new_state, DOWN);
	assert_int_equal(s.since_ms, 9000);
	assert_string_equal(s.reason, "maintenance ended");
	prober_state_fini(&s);
}

static void
test_names_and_ranks(void **state)
{
	(void) state;
	assert_string_equal(prober_state_name(UP), "up");
	assert_string_equal(prober_state_name(MAINT), "maintenance");
	assert_string_equal(prober_state_name(77), "unknown");
	assert_true(prober_state_rank(DOWN) > prober_state_rank(DEGRADED));
	assert_true(prober_state_rank(DEGRADED) > prober_state_rank(UP));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_down_from_unknown_needs_threshold),
		cmocka_unit_test(test_degraded),
		cmocka_unit_test(test_maintenance),
		cmocka_unit_test(test_names_and_ranks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
