/* Unit tests: JSON field paths and conditions, Prometheus extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "prober.h"
#include "util/util.h"

static const char body[]
    = "{\"status\":\"ok\",\"db\":{\"lag\":3,\"up\":true},"
      "\"items\":[{\"v\":1},{\"v\":\"2.5\"}],\"s\":\"abc\"}";

static void
test_json_path(void **state)
{
	cJSON *root = cJSON_Parse(body);
	double v;
	(void) state;
	assert_non_null(root);
	assert_ptr_equal(prober_extract_json_path(root, ""), root);
	assert_string_equal(
	    prober_extract_json_path(root, "status")->valuestring, "ok");
	assert_int_equal(prober_extract_json_number(
	                     prober_extract_json_path(root, "db.lag"), &v),
	    0);
	assert_true(v == 3);
	assert_int_equal(prober_extract_json_number(
	                     prober_extract_json_path(root, "db.up"), &v),
	    0);
	assert_true(v == 1);
	assert_int_equal(prober_extract_json_number(
	                     prober_extract_json_path(root, "items[1].v"), &v),
	    0);
	assert_true(v == 2.5);
	assert_null(prober_extract_json_path(root, "items[2].v"));
	assert_null(prober_extract_json_path(root, "items[x]"));
	assert_null(prober_extract_json_path(root, "status.deeper"));
	assert_null(prober_extract_json_path(root, "db[0]"));
	assert_int_equal(prober_extract_json_number(
	                     prober_extract_json_path(root, "s"), &v),
	    OD_EINVAL);
	cJSON_Delete(root);
}

static void
test_json_cond(void **state)
{
	char why[128];
	json_cond c = { .path = "db.lag",
		.op = JSON_OP_LT,
		.is_num = true,
		.num = 5,
		.str = "5" };
	(void) state;
	assert_true(prober_extract_json_cond(
	    body, strlen(body), &c, why, sizeof(why)));
	c.num = 2;
	assert_false(prober_extract_json_cond(
	    body, strlen(body), &c, why, sizeof(why)));
	assert_non_null(strstr(why, "db.lag is 3"));
	json_cond eq = { .path = "status", .op = JSON_OP_EQ, .str = "ok" };
	assert_true(prober_extract_json_cond(
	    body, strlen(body), &eq, why, sizeof(why)));
	eq.op = JSON_OP_NE;
	assert_false(prober_extract_json_cond(
	    body, strlen(body), &eq, why, sizeof(why)));
	json_cond b = { .path = "db.up", .op = JSON_OP_EQ, .str = "true" };
	assert_true(prober_extract_json_cond(
	    body, strlen(body), &b, why, sizeof(why)));
	json_cond ex = { .path = "missing", .op = JSON_OP_EXISTS };
	assert_false(prober_extract_json_cond(
	    body, strlen(body), &ex, why, sizeof(why)));
	assert_non_null(strstr(why, "missing"));
	json_cond has = { .path = "s", .op = JSON_OP_CONTAINS, .str = "bc" };
	assert_true(prober_extract_json_cond(
	    body, strlen(body), &has, why, sizeof(why)));
	/* Not JSON, and a body cut short (len bounds the parse). */
	assert_false(
	    prober_extract_json_cond("<html>", 6, &ex, why, sizeof(why)));
	assert_string_equal(why, "body is not JSON");
	assert_false(
	    prober_extract_json_cond(body, 10, &eq, why, sizeof(why)));
}

static const char prom[]
    = "# HELP http_requests_total Requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{code=\"200\",method=\"get\"} 1027\n"
      "http_requests_total{code=\"500\",method=\"get\"} 3 1700000000000\n"
      "http_requests_total_created 1.7e9\n"
      "active_signals 42\n"
      "weird{path=\"a}b\",code=\"x\"} 7\n"
      "ai_win_rate 0.625";

static void
test_prometheus(void **state)
{
	double v;
	size_t n = strlen(prom);
	(void) state;
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "active_signals", "", &v), 0);
	assert_true(v == 42);
	/* the last line has no newline */
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "ai_win_rate", NULL, &v), 0);
	assert_true(v == 0.625);
	assert_int_equal(prober_extract_prometheus(prom, n,
	                     "http_requests_total", "code=\"500\"", &v),
	    0);
	assert_true(v == 3);
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "http_requests_total",
	        "method=\"get\",code=\"200\"", &v),
	    0);
	assert_true(v == 1027);
	/* the first sample when no label is asked for */
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "http_requests_total", "", &v),
	    0);
	assert_true(v == 1027);
	assert_int_equal(prober_extract_prometheus(prom, n,
	                     "http_requests_total", "code=\"404\"", &v),
	    OD_ENOTFOUND);
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "weird", "code=\"x\"", &v), 0);
	assert_true(v == 7);
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "http_requests", "", &v),
	    OD_ENOTFOUND);
	assert_int_equal(
	    prober_extract_prometheus(prom, n, "active_signals", "bogus", &v),
	    OD_EMALFORMED);
	/* A length that cuts a line: nothing past len is read. */
	assert_int_equal(prober_extract_prometheus("active_signals 4211", 16,
	                     "active_signals", "", &v),
	    0);
	assert_true(v == 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_path),
		cmocka_unit_test(test_json_cond),
		cmocka_unit_test(test_prometheus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
