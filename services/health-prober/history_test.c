/* Unit tests: aggregates, roll-ups, uptime and percentile arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "prober.h"
#include "util/util.h"

enum {
	UP = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP,
	DEGRADED = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED,
	DOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN,
	MAINT = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE,
};

static probe_result
res(int observed, uint32_t latency)
{
	probe_result r;
	memset(&r, 0, sizeof(r));
	r.observed = observed;
	r.latency_ms = latency;
	return r;
}

static void
test_uptime(void **state)
{
	agg a;
	(void) state;
	memset(&a, 0, sizeof(a));
	assert_true(prober_agg_uptime(&a) < 0);
	for (int i = 0; i < 97; i++) {
		probe_result r = res(UP, 10);
		prober_agg_add(&a, &r, UP);
	}
	for (int i = 0; i < 3; i++) {
		probe_result r = res(DOWN, 5000);
		prober_agg_add(&a, &r, DOWN);
	}
	assert_int_equal(a.checks, 100);
	assert_int_equal(a.failures, 3);
	assert_int_equal(a.worst, DOWN);
	assert_true(
	    prober_agg_uptime(&a) > 96.999 && prober_agg_uptime(&a) < 97.001);
	/* Degraded is available; maintenance is not counted at all. */
	probe_result d = res(DEGRADED, 900);
	prober_agg_add(&a, &d, DEGRADED);
	probe_result m = res(DOWN, 1);
	prober_agg_add(&a, &m, MAINT);
	assert_int_equal(a.checks, 102);
	assert_int_equal(a.failures, 3);
	assert_int_equal(a.maint, 1);
	assert_int_equal(a.degraded, 1);
	assert_true(
	    prober_agg_uptime(&a) > 97.02 && prober_agg_uptime(&a) < 97.03);
}

static void
test_percentiles(void **state)
{
	agg a;
	(void) state;
	memset(&a, 0, sizeof(a));
	assert_int_equal(prober_agg_percentile(&a, 0.5), 0);
	/* 100 results: 1..100 ms */
	for (uint32_t i = 1; i <= 100; i++) {
		probe_result r = res(UP, i);
		prober_agg_add(&a, &r, UP);
	}
	/* p50: rank 50 in bucket (25,50] holding 25 results from 26:
	 * 25 + 25 * (50 - 25) / 25 = 50 */
	assert_int_equal(prober_agg_percentile(&a, 0.5), 50);
	/* p95: rank 95 in (75,100] with 25 results, 75 before: 75 + 25*20/25
	 */
	assert_int_equal(prober_agg_percentile(&a, 0.95), 95);
	assert_int_equal(prober_agg_percentile(&a, 0.99), 99);
	assert_int_equal(prober_agg_percentile(&a, 1.5), 100);
	/* The open last bucket answers its floor. */
	memset(&a, 0, sizeof(a));
	probe_result slow = res(DOWN, 60000);
	prober_agg_add(&a, &slow, DOWN);
	assert_int_equal(prober_agg_percentile(&a, 0.99), 30000);
}

/* Sixty minute aggregates merged are the hour aggregate fed directly. */
static void
test_rollup(void **state)
{
	agg minutes[60], hour, merged;
	uint8_t enc[AGG_ENC_MAX];
	size_t len = 0;
	(void) state;
	memset(minutes, 0, sizeof(minutes));
	memset(&hour, 0, sizeof(hour));
	memset(&merged, 0, sizeof(merged));
	for (int i = 0; i < 600; i++) {
		int obs = i % 17 == 0 ? DOWN : (i % 5 == 0 ? DEGRADED : UP);
		probe_result r = res(obs, (uint32_t) (i * 37 % 2000));
		prober_agg_add(&minutes[i / 10], &r, obs);
		prober_agg_add(&hour, &r, obs);
	}
	for (int i = 0; i < 60; i++) {
		agg back;
		memset(&back, 0, sizeof(back)); /* padding, for memcmp */
		len = prober_agg_encode(&minutes[i], enc);
		assert_true(len > 8 && len < 64);
		assert_int_equal(prober_agg_decode(enc, len, &back), 0);
		assert_memory_equal(&back, &minutes[i], sizeof(back));
		prober_agg_merge(&merged, &back);
	}
	assert_memory_equal(&merged, &hour, sizeof(hour));
	assert_int_equal(prober_agg_percentile(&merged, 0.95),
	    prober_agg_percentile(&hour, 0.95));
	/* Cut short, one byte too many, or another version: refused. */
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(
		    prober_agg_decode(enc, cut, &merged), OD_EMALFORMED);
	}
	assert_int_equal(
	    prober_agg_decode(enc, len + 1, &merged), OD_EMALFORMED);
	enc[0] ^= 1;
	assert_int_equal(prober_agg_decode(enc, len, &merged), OD_EMALFORMED);
	/* The largest counters round-trip. */
	agg big;
	memset(&big, 0xff, sizeof(big));
	big.latency_sum_ms = UINT64_MAX;
	len = prober_agg_encode(&big, enc);
	assert_true(len <= AGG_ENC_MAX);
	memset(&merged, 0, sizeof(merged));
	assert_int_equal(prober_agg_decode(enc, len, &merged), 0);
	assert_true(merged.checks == UINT32_MAX && merged.worst == UINT32_MAX
	    && merged.latency_sum_ms == UINT64_MAX);
	assert_memory_equal(merged.hist, big.hist, sizeof(big.hist));
}

static void
test_floor(void **state)
{
	int64_t t = 1795784705123LL; /* 2026-11-27T13:05:05.123Z */
	(void) state;
	assert_int_equal(prober_agg_floor(t, AGG_MINUTE), 1795784700000LL);
	assert_int_equal(prober_agg_floor(t, AGG_HOUR), 1795784400000LL);
	assert_int_equal(prober_agg_floor(t, AGG_DAY), 1795737600000LL);
	assert_int_equal(prober_agg_period_ms(AGG_DAY), 86400000LL);
	uint8_t key[512];
	assert_int_equal(prober_history_key(key, "web", 5), 3 + 1 + 8);
	assert_int_equal(key[3], 0);
	assert_int_equal(key[11], 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uptime),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_rollup),
		cmocka_unit_test(test_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
