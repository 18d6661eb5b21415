/* Unit tests: judging HTTP responses, certificate dates, scheduling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "prober.h"
#include "util/util.h"

enum {
	UP = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP,
	DEGRADED = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED,
	DOWN = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN,
};

static const status_range ok_2xx = { 200, 299 };

static target
http_target(void)
{
	target t;
	memset(&t, 0, sizeof(t));
	t.kind = PROBE_HTTP;
	t.timeout_ms = 5000;
	t.status = &ok_2xx;
	t.n_status = 1;
	t.cert_warn_days = 14;
	return t;
}

static probe_result
judge(const target *t, int code, long status, const char *body,
    uint32_t latency, int cert_days)
{
	probe_result r;
	memset(&r, 0, sizeof(r));
	r.latency_ms = latency;
	r.cert_days_left = cert_days;
	r.cert_not_after_s = cert_days >= 0 ? 1 : 0;
	probe_http_judge(
	    t, code, "", status, body, body ? strlen(body) : 0, &r);
	return r;
}

static void
test_judge(void **state)
{
	target t = http_target();
	probe_result r;
	(void) state;
	r = judge(&t, CURLE_OK, 200, "fine", 10, -1);
	assert_int_equal(r.observed, UP);
	assert_string_equal(r.error, "");
	r = judge(&t, CURLE_OK, 503, "", 10, -1);
	assert_int_equal(r.observed, DOWN);
	assert_string_equal(r.error, "HTTP 503");
	assert_int_equal(r.status_code, 503);
	r = judge(&t, CURLE_OPERATION_TIMEDOUT, 0, NULL, 5000, -1);
	assert_int_equal(r.observed, DOWN);
	assert_string_equal(r.error, "timeout after 5000 ms");
	r = judge(&t, CURLE_COULDNT_CONNECT, 0, NULL, 1, -1);
	assert_int_equal(r.observed, DOWN);
	assert_true(strlen(r.error) > 0);

	t.body_contains = "\"ok\"";
	r = judge(&t, CURLE_OK, 200, "{\"status\":\"fail\"}", 10, -1);
	assert_int_equal(r.observed, DOWN);
	assert_non_null(strstr(r.error, "does not contain"));
	t.body_contains = NULL;
	t.body_not_contains = "error";
	r = judge(&t, CURLE_OK, 200, "an error page", 10, -1);
	assert_int_equal(r.observed, DOWN);
	t.body_not_contains = NULL;

	json_cond jc = { .path = "db.lag",
		.op = JSON_OP_LT,
		.is_num = true,
		.num = 5,
		.str = "5" };
	t.json = &jc;
	r = judge(&t, CURLE_OK, 200, "{\"db\":{\"lag\":9}}", 10, -1);
	assert_int_equal(r.observed, DOWN);
	assert_non_null(strstr(r.error, "db.lag"));
	r = judge(&t, CURLE_OK, 200, "{\"db\":{\"lag\":1}}", 10, -1);
	assert_int_equal(r.observed, UP);
	t.json = NULL;

	/* Slow or an expiring certificate: degraded, not down. */
	t.degraded_ms = 500;
	r = judge(&t, CURLE_OK, 200, "", 800, -1);
	assert_int_equal(r.observed, DEGRADED);
	assert_string_equal(r.error, "latency 800 ms above 500 ms");
	r = judge(&t, CURLE_OK, 200, "", 100, 3);
	assert_int_equal(r.observed, DEGRADED);
	assert_string_equal(r.error, "certificate expires in 3 days");
	r = judge(&t, CURLE_OK, 200, "", 100, 30);
	assert_int_equal(r.observed, UP);
}

static void
test_cert_time(void **state)
{
	int64_t t;
	(void) state;
	assert_int_equal(
	    probe_parse_cert_time("Jan  2 03:04:05 2027 GMT", &t), 0);
	assert_int_equal(t, 1798859045);
	assert_int_equal(
	    probe_parse_cert_time("Nov 27 13:05:05 2026 GMT", &t), 0);
	assert_int_equal(t, 1795784705);
	assert_int_equal(probe_parse_cert_time("garbage", &t), OD_EINVAL);
}

static void
test_schedule(void **state)
{
	int64_t now = 1000000;
	(void) state;
	/* Spread: within one interval, and 1000 targets fill it evenly
	 * enough that no 10% of the interval holds more than 20%. */
	int bins[10] = { 0 };
	for (int i = 0; i < 1000; i++) {
		char id[16];
		snprintf(id, sizeof(id), "t%d", i);
		int64_t d = prober_sched_first_due(
		    prober_target_hash(id), 5000, now);
		assert_true(d >= now && d < now + 5000);
		bins[(d - now) / 500]++;
	}
	for (int i = 0; i < 10; i++) {
		assert_true(bins[i] > 50 && bins[i] < 200);
	}
	/* No drift: the next due is the last due plus the interval, even
	 * when the probe started late... */
	assert_int_equal(prober_sched_next_due(10000, 5000, 10400), 15000);
	/* ...and whole intervals missed are skipped, keeping the phase. */
	assert_int_equal(prober_sched_next_due(10000, 5000, 27000), 30000);
	assert_int_equal(prober_sched_next_due(10000, 5000, 15000), 20000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_cert_time),
		cmocka_unit_test(test_schedule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
