/*
 * Units for ultra.c's pure parts: where an ultra ticket's staff
 * notifications go, its mark, its place in /queue, and the live section
 * of /status_page (public data only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"

#define ULTRA OPSDESK__V1__TIER__TIER_ULTRA
#define FREE  OPSDESK__V1__TIER__TIER_FREE
#define OPEN  OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN

static void
test_route(void **state)
{
	int64_t admins[2] = { -100, 7 }, out[4];

	(void) state;
	/* An ultra ticket: the admins, then the ultra chat. */
	assert_int_equal(gw_ultra_route(admins, 1, -200, ULTRA, out, 4), 2);
	assert_true(out[0] == -100 && out[1] == -200);
	/* Not ultra, or no ultra chat: the admins only. */
	assert_int_equal(gw_ultra_route(admins, 1, -200, FREE, out, 4), 1);
	assert_int_equal(gw_ultra_route(admins, 1, 0, ULTRA, out, 4), 1);
	assert_true(out[0] == -100);
	/* Each admin's own chat when there is no admin chat. */
	assert_int_equal(gw_ultra_route(admins, 2, -200, ULTRA, out, 4), 3);
	assert_true(out[2] == -200);
	/* The ultra chat being the admin chat: once. */
	assert_int_equal(gw_ultra_route(admins, 1, -100, ULTRA, out, 4), 1);
	/* Never past max. */
	assert_int_equal(gw_ultra_route(admins, 2, -200, ULTRA, out, 2), 2);
}

static void
test_mark_and_order(void **state)
{
	Opsdesk__V1__Ticket t[4], *v[4];
	int64_t now = 1800000000000LL;
	sbuf b = SBUF_INIT;

	(void) state;
	for (int i = 0; i < 4; i++) {
		opsdesk__v1__ticket__init(&t[i]);
		t[i].id = (uint64_t) i + 1;
		t[i].tier = FREE;
		t[i].status = OPEN;
		t[i].first_response_due_ms = now + 3600000;
		v[i] = &t[i];
	}
	t[1].tier = ULTRA; /* clock running */
	t[2].tier = ULTRA;
	t[2].first_response_ms = now - 1000; /* answered: no clock */
	t[3].tier = ULTRA;
	t[3].first_response_due_ms = now + 45 * 60000;

	assert_false(gw_ultra_first(&t[0]));
	assert_true(gw_ultra_first(&t[1]));
	assert_false(gw_ultra_first(&t[2]));
	gw_ultra_order(v, 4);
	/* 2 and 4 first, in their order; then 1 and 3. */
	assert_int_equal(v[0]->id, 2);
	assert_int_equal(v[1]->id, 4);
	assert_int_equal(v[2]->id, 1);
	assert_int_equal(v[3]->id, 3);

	gw_ultra_mark(&b, &t[0], now);
	assert_int_equal(b.len, 0);
	gw_ultra_mark(&b, &t[3], now);
	assert_non_null(strstr(sbuf_str(&b), "ULTRA"));
	assert_non_null(strstr(sbuf_str(&b), "due in 45"));
	sbuf_free(&b);
	t[3].first_response_due_ms = now - 10 * 60000;
	gw_ultra_mark(&b, &t[3], now);
	assert_non_null(strstr(sbuf_str(&b), "overdue by 10"));
	sbuf_free(&b);
	/* Answered: still marked, without a clock. */
	gw_ultra_mark(&b, &t[2], now);
	assert_non_null(strstr(sbuf_str(&b), "ULTRA"));
	assert_null(strstr(sbuf_str(&b), "first response"));
	sbuf_free(&b);
}

static void
test_live_render(void **state)
{
	Opsdesk__V1__StatusSummary s = OPSDESK__V1__STATUS_SUMMARY__INIT;
	Opsdesk__V1__PublicComponent c[2], *cv[2] = { &c[0], &c[1] };
	sbuf b = SBUF_INIT;

	(void) state;
	for (int i = 0; i < 2; i++) {
		opsdesk__v1__public_component__init(&c[i]);
		c[i].status = "operational";
		c[i].uptime_30d = -1;
		c[i].uptime_90d = -1;
	}
	c[0].name = "API <v2>";
	c[0].has_latency = true;
	c[0].latency_ms = 42;
	c[0].p95_24h_ms = 80;
	c[0].uptime_30d = 99.95;
	c[0].slo_target = 99.9;
	c[0].slo_attainment = 99.97;
	c[1].name = "Website";
	s.components = cv;
	s.n_components = 2;
	gw_ultra_live_render(&b, &s, 1800000000000LL);
	assert_non_null(strstr(sbuf_str(&b), "Live monitoring"));
	assert_non_null(strstr(sbuf_str(&b), "API &lt;v2&gt;: now <b>42 ms"));
	assert_non_null(strstr(sbuf_str(&b), "p95 24 h 80 ms"));
	assert_non_null(strstr(sbuf_str(&b), "99.950%"));
	assert_non_null(strstr(sbuf_str(&b), "Website: now —"));
	/* the public objective's attainment, only where there is one */
	assert_non_null(
	    strstr(sbuf_str(&b), "objective 99.970% (target 99.9%)"));
	assert_int_equal(
	    strstr(strstr(sbuf_str(&b), "Website"), "objective") == NULL, 1);
	sbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_mark_and_order),
		cmocka_unit_test(test_live_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
