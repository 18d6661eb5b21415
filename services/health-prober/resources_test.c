/* Unit tests: /proc parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "prober.h"
#include "util/util.h"

static void
test_stat(void **state)
{
	cpu_sample a, b;
	(void) state;
	assert_int_equal(
	    prober_resources_parse_stat(
	        "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n", &a),
	    0);
	assert_int_equal(a.total, 1000);
	assert_int_equal(a.busy, 200);
	assert_int_equal(prober_resources_parse_stat(
	                     "cpu  250 0 150 1400 200 0 0 0 0 0\n", &b),
	    0);
	/* 200 more busy of 1000 more total */
	assert_true(prober_resources_cpu_percent(&a, &b) > 19.99
	    && prober_resources_cpu_percent(&a, &b) < 20.01);
	assert_true(prober_resources_cpu_percent(&b, &a) == 0);
	assert_int_equal(
	    prober_resources_parse_stat("intr 1 2", &a), OD_EMALFORMED);
}

static void
test_meminfo_loadavg(void **state)
{
	uint64_t t, av;
	double l1, l5, l15;
	(void) state;
	assert_int_equal(prober_resources_parse_meminfo(
	                     "MemTotal:       16000 kB\nMemFree:  10 kB\n"
	                     "MemAvailable:    8000 kB\n",
	                     &t, &av),
	    0);
	assert_int_equal(t, 16000 * 1024ULL);
	assert_int_equal(av, 8000 * 1024ULL);
	assert_int_equal(
	    prober_resources_parse_meminfo("MemTotal: 1 kB\n", &t, &av),
	    OD_EMALFORMED);
	assert_int_equal(prober_resources_parse_loadavg(
	                     "0.50 1.25 2.00 1/100 42\n", &l1, &l5, &l15),
	    0);
	assert_true(l1 == 0.5 && l5 == 1.25 && l15 == 2.0);
	assert_int_equal(prober_resources_parse_loadavg("x", &l1, &l5, &l15),
	    OD_EMALFORMED);
}

static void
test_read_live(void **state)
{
	Opsdesk__V1__HostResources r = OPSDESK__V1__HOST_RESOURCES__INIT;
	cpu_sample prev = { 0, 0 };
	(void) state;
	assert_int_equal(prober_resources_read(&r, "/", &prev), 0);
	assert_true(r.mem_total_bytes > 0);
	assert_true(r.mem_available_bytes <= r.mem_total_bytes);
	assert_true(r.disk_total_bytes > 0);
	assert_true(prev.total > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_meminfo_loadavg),
		cmocka_unit_test(test_read_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
