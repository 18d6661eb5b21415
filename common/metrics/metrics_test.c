#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static void
test_counter_gauge_render(void **state)
{
	metrics *m;
	assert_int_equal(metrics_new(&m), 0);
	metric *c = metrics_counter(
	    m, "opsdesk_things_total", "Things.", "kind=\"a\"");
	metric *c2 = metrics_counter(
	    m, "opsdesk_things_total", "ignored", "kind=\"a\"");
	assert_ptr_equal(c, c2);
	metric_inc(c);
	metric_add(c, 4);
	metric *g = metrics_gauge(m, "opsdesk_depth", "Queue depth.", NULL);
	metric_set(g, 2.5);
	metric_gauge_add(g, 1);
	assert_true(metric_value(g) == 3.5);
	/* same name, another type: refused */
	assert_null(metrics_gauge(m, "opsdesk_things_total", "x", NULL));
	metric_inc(NULL); /* NULL-safe */
	sbuf b = SBUF_INIT;
	assert_int_equal(metrics_render(m, &b), 0);
	const char *s = sbuf_str(&b);
	assert_non_null(strstr(s,
	    "# HELP opsdesk_things_total Things.\n"
	    "# TYPE opsdesk_things_total counter\n"
	    "opsdesk_things_total{kind=\"a\"} 5\n"));
	assert_non_null(strstr(s, "opsdesk_depth 3.5\n"));
	sbuf_free(&b);
	metrics_free(m);
}

static void
test_histogram(void **state)
{
	metrics *m;
	assert_int_equal(metrics_new(&m), 0);
	const double bounds[] = { 0.1, 1 };
	metric *h = metrics_histogram(
	    m, "opsdesk_lat_seconds", "Latency.", "method=\"x\"", bounds, 2);
	metric_observe(h, 0.05);
	metric_observe(h, 0.5);
	metric_observe(h, 5);
	assert_int_equal(metric_count(h), 3);
	sbuf b = SBUF_INIT;
	metrics_render(m, &b);
	const char *s = sbuf_str(&b);
	assert_non_null(strstr(
	    s, "opsdesk_lat_seconds_bucket{method=\"x\",le=\"0.1\"} 1\n"));
	assert_non_null(strstr(
	    s, "opsdesk_lat_seconds_bucket{method=\"x\",le=\"1\"} 2\n"));
	assert_non_null(strstr(
	    s, "opsdesk_lat_seconds_bucket{method=\"x\",le=\"+Inf\"} 3\n"));
	assert_non_null(
	    strstr(s, "opsdesk_lat_seconds_sum{method=\"x\"} 5.55"));
	assert_non_null(
	    strstr(s, "opsdesk_lat_seconds_count{method=\"x\"} 3\n"));
	sbuf_free(&b);
	metrics_free(m);
}

static void *
hammer(void *arg)
{
	metric *c = arg;
	for (int i = 0; i < 100000; i++) {
		metric_inc(c);
	}
	return NULL;
}

static void
test_concurrent_counts(void **state)
{
	metrics *m;
	assert_int_equal(metrics_new(&m), 0);
	metric *c = metrics_counter(m, "opsdesk_hits_total", "Hits.", NULL);
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		pthread_create(&t[i], NULL, hammer, c);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
	}
	assert_true(metric_value(c) == 400000);
	metrics_free(m);
}

static void
collect(void *arg, metrics *m)
{
	(*(int *) arg)++;
	metric_set(
	    metrics_gauge(m, "opsdesk_collected", "By collector.", NULL), 42);
}

static void
test_collector_and_escape(void **state)
{
	metrics *m;
	int calls = 0;
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_add_collector(m, collect, &calls), 0);
	sbuf b = SBUF_INIT;
	metrics_render(m, &b);
	assert_int_equal(calls, 1);
	assert_non_null(strstr(sbuf_str(&b), "opsdesk_collected 42\n"));
	sbuf_free(&b);
	metrics_free(m);
	char out[64];
	assert_string_equal(
	    metrics_label_escape("a\"b\\c\nd", out, sizeof(out)),
	    "a\\\"b\\\\c\\nd");
}

static void
text_source(void *arg, sbuf *b)
{
	sbuf_printf(b, "opsdesk_text_source %d\n", ++*(int *) arg);
}

/* A text source's lines follow the registry's, once per render. */
static void
test_text_source(void **state)
{
	(void) state;
	metrics *m;
	int calls = 0;
	assert_int_equal(metrics_new(&m), 0);
	metric_set(metrics_gauge(m, "opsdesk_g", "g", NULL), 1);
	assert_int_equal(metrics_add_text(m, text_source, &calls), 0);
	sbuf b = SBUF_INIT;
	assert_int_equal(metrics_render(m, &b), 0);
	const char *g = strstr(sbuf_str(&b), "opsdesk_g 1\n");
	const char *t = strstr(sbuf_str(&b), "opsdesk_text_source 1\n");
	assert_non_null(g);
	assert_non_null(t);
	assert_true(t > g);
	sbuf_free(&b);
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_gauge_render),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_concurrent_counts),
		cmocka_unit_test(test_collector_and_escape),
		cmocka_unit_test(test_text_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
