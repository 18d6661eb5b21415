/* Unit tests: the quorum rule over locations (ties, stale locations,
 * thresholds) on an injected clock. */
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
};

#define NOW   1000000
#define STALE 10000

static quorum_vote
vote(const char *loc, int state, uint32_t lat, int64_t age)
{
	quorum_vote v
	    = { loc, state, lat, NOW - age, state == DOWN ? "HTTP 503" : "" };
	return v;
}

static quorum_decision
decide(const quorum_vote *v, size_t n, unsigned q, int partial)
{
	quorum_rule r = { q, partial, STALE };
	quorum_decision d;
	prober_quorum_decide(v, n, &r, NOW, &d);
	return d;
}

static void
test_majority(void **state)
{
	quorum_vote v[3] = { vote("eu-west", DOWN, 10, 0),
		vote("us-east", UP, 20, 0), vote("ap-south", UP, 30, 0) };
	quorum_decision d;

	(void) state;
	/* One of three down: below the majority of 2, shown as the
	 * target's partial state with the location named. */
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, UP);
	assert_true(d.partial);
	assert_int_equal(d.needed, 2);
	assert_int_equal(d.down, 1);
	assert_int_equal(d.reporting, 3);
	assert_string_equal(
	    d.reason, "down from eu-west only (1 of 3, quorum 2): HTTP 503");
	assert_int_equal(d.latency_ms, 20); /* the median */
	d = decide(v, 3, 0, DEGRADED);
	assert_int_equal(d.state, DEGRADED);

	/* Two of three: down, whatever the partial state. */
	v[1].state = DOWN;
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, DOWN);
	assert_false(d.partial);
	assert_string_equal(d.reason,
	    "down from eu-west, us-east (2 of 3): "
	    "HTTP 503");

	/* All up. */
	v[0].state = v[1].state = UP;
	d = decide(v, 3, 0, DEGRADED);
	assert_int_equal(d.state, UP);
	assert_false(d.partial);
	assert_string_equal(d.reason, "up from 3 locations");
}

static void
test_ties(void **state)
{
	quorum_vote v[4] = { vote("a", DOWN, 1, 0), vote("b", DOWN, 1, 0),
		vote("c", UP, 1, 0), vote("d", UP, 1, 0) };
	quorum_decision d;

	(void) state;
	/* 2 of 4 is no majority (3 needed): a tie is not down. */
	d = decide(v, 4, 0, UP);
	assert_int_equal(d.needed, 3);
	assert_int_equal(d.state, UP);
	assert_true(d.partial);
	/* Two locations, one each way: a tie again. */
	d = decide(v + 1, 2, 0, DEGRADED);
	assert_int_equal(d.needed, 2);
	assert_int_equal(d.state, DEGRADED);
	/* But a quorum of 2 decides the 4-location tie as down. */
	d = decide(v, 4, 2, UP);
	assert_int_equal(d.state, DOWN);
}

static void
test_stale_locations(void **state)
{
	quorum_vote v[3]
	    = { vote("eu-west", DOWN, 10, 0), vote("us-east", UP, 20, 0),
		      vote("ap-south", UP, 30, STALE + 1) };
	quorum_decision d;

	(void) state;
	/* ap-south timed out: not counted, not down; 1 of 2 reporting is
	 * no majority of 2. */
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.reporting, 2);
	assert_int_equal(d.n_stale, 1);
	assert_int_equal(d.stale_idx[0], 2);
	assert_int_equal(d.state, UP);
	assert_string_equal(d.reason,
	    "down from eu-west only (1 of 2, quorum 2): HTTP 503; ap-south "
	    "not reporting");
	/* Exactly at the time-out it still counts. */
	v[2].at_ms = NOW - STALE;
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.reporting, 3);
	assert_int_equal(d.n_stale, 0);

	/* A stale down location is never counted as down. */
	v[0].at_ms = NOW - STALE - 1;
	d = decide(v, 3, 0, DEGRADED);
	assert_int_equal(d.state, UP);
	assert_int_equal(d.down, 0);
	assert_string_equal(
	    d.reason, "up from 2 locations; eu-west not reporting");

	/* Nobody reporting: unknown, and the caller keeps its state. */
	for (int i = 0; i < 3; i++) {
		v[i].at_ms = NOW - 2 * STALE;
	}
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, UNKNOWN);
	assert_int_equal(d.reporting, 0);
	assert_string_equal(d.reason,
	    "no location reporting; eu-west, us-east, ap-south not "
	    "reporting");
	d = decide(v, 0, 0, UP);
	assert_int_equal(d.state, UNKNOWN);
}

static void
test_unknown_abstains(void **state)
{
	quorum_vote v[3] = { vote("a", DOWN, 1, 0), vote("b", UNKNOWN, 0, 0),
		vote("c", UNKNOWN, 0, 0) };
	quorum_decision d;

	(void) state;
	/* A location that has decided nothing yet is neither reporting
	 * nor stale. With a per-target quorum of 2, one is not enough. */
	d = decide(v, 3, 2, UP);
	assert_int_equal(d.reporting, 1);
	assert_int_equal(d.n_stale, 0);
	assert_int_equal(d.state, UP);
	/* The majority of one is one: the caller guards against deciding
	 * alone after a restart with its warm-up. */
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, DOWN);
}

static void
test_thresholds(void **state)
{
	quorum_vote v[5] = { vote("a", DOWN, 1, 0), vote("b", DOWN, 1, 0),
		vote("c", DOWN, 1, 0), vote("d", UP, 1, 0),
		vote("e", UP, 1, 0) };
	quorum_decision d;

	(void) state;
	d = decide(v, 5, 0, UP); /* majority of 5: 3 */
	assert_int_equal(d.state, DOWN);
	d = decide(v, 5, 4, UP); /* quorum 4: not yet */
	assert_int_equal(d.state, UP);
	assert_true(d.partial);
	assert_int_equal(d.needed, 4);
	/* A quorum above the reporting count can never be met. */
	d = decide(v, 2, 3, DEGRADED);
	assert_int_equal(d.state, DEGRADED);
	/* quorum 1: any location down is down. */
	d = decide(v + 2, 3, 1, UP);
	assert_int_equal(d.state, DOWN);
}

static void
test_degraded(void **state)
{
	quorum_vote v[3] = { vote("a", DEGRADED, 900, 0),
		vote("b", DEGRADED, 800, 0), vote("c", UP, 100, 0) };
	quorum_decision d;

	(void) state;
	/* Slow at the quorum: degraded. */
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, DEGRADED);
	assert_false(d.partial);
	assert_string_equal(d.reason, "degraded from a, b (2 of 3)");
	assert_int_equal(d.latency_ms, 800);
	/* Slow in one location only: up. */
	v[1].state = UP;
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, UP);
	/* One down and one slow make the quorum of bad: degraded even
	 * when a partial failure alone would be up. */
	v[1].state = DOWN;
	d = decide(v, 3, 0, UP);
	assert_int_equal(d.state, DEGRADED);
	assert_true(d.partial);
}

static void
test_many_locations(void **state)
{
	quorum_vote v[QUORUM_MAX_LOCATIONS + 4];
	quorum_decision d;

	(void) state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		v[i] = vote("x", i < QUORUM_MAX_LOCATIONS ? UP : DOWN, 1, 0);
	}
	/* Beyond the limit votes are ignored, not read out of bounds. */
	d = decide(v, sizeof(v) / sizeof(v[0]), 1, UP);
	assert_int_equal(d.reporting, QUORUM_MAX_LOCATIONS);
	assert_int_equal(d.state, UP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_majority),
		cmocka_unit_test(test_ties),
		cmocka_unit_test(test_stale_locations),
		cmocka_unit_test(test_unknown_abstains),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_degraded),
		cmocka_unit_test(test_many_locations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
