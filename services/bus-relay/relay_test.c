/*
 * relay unit tests: topic domains for the metrics labels, and forwarding
 * over inproc with the counters and connection gauges it keeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>

#include "metrics/metrics.h"
#include "relay.h"

static void
test_domains(void **state)
{
	(void) state;
	char big[300];
	memset(big, 'a', sizeof(big));
	assert_string_equal(
	    relay_frame_domain("health.changed\0xy", 17), "health");
	assert_string_equal(relay_frame_domain("ticket\0", 7), "ticket");
	assert_string_equal(
	    relay_frame_domain("maintenance.started\0", 20), "maintenance");
	assert_string_equal(relay_frame_domain("healthz.x\0", 10), "other");
	assert_string_equal(relay_frame_domain("heal\0", 5), "other");
	assert_string_equal(relay_frame_domain("no-zero", 7), "malformed");
	assert_string_equal(relay_frame_domain("\0abc", 4), "malformed");
	assert_string_equal(relay_frame_domain("a b\0", 4), "other");
	assert_string_equal(relay_frame_domain("a\tb\0", 4), "malformed");
	assert_string_equal(relay_frame_domain("a\xff\0", 3), "malformed");
	assert_string_equal(relay_frame_domain("", 0), "malformed");
	assert_string_equal(relay_frame_domain(big, sizeof(big)), "malformed");
	big[127] = '\0';
	assert_string_equal(relay_frame_domain(big, sizeof(big)), "other");
	big[127] = 'a';
	big[128] = '\0';
	assert_string_equal(relay_frame_domain(big, sizeof(big)), "malformed");
}

static double
counter(metrics *m, const char *name, const char *labels)
{
	return metric_value(metrics_counter(m, name, "", labels));
}

/* Wait (bounded) for a condition the relay's threads bring about. */
#define WAIT_FOR(cond)                                                        \
	do {                                                                  \
		int tries_ = 0;                                               \
		while (!(cond) && tries_++ < 5000) {                          \
			nng_msleep(1);                                        \
		}                                                             \
		assert_true(cond);                                            \
	} while (0)

static void
test_forwarding(void **state)
{
	(void) state;
	metrics *m;
	relay *r;
	relay_stats st;
	nng_socket pub, sub;
	nng_msg *msg;
	static const char health[] = "health.changed\0payload";
	static const char ticket[] = "ticket.created\0xyz";
	static const char garbage[] = "\xff\xfe garbage";

	assert_int_equal(metrics_new(&m), 0);
	relay_options opt = { .publish_url = "inproc://relay-test-pub",
		.subscribe_url = "inproc://relay-test-sub",
		.metrics = m };
	assert_int_equal(relay_start(&r, &opt), 0);
	/* a second relay on the same urls must fail cleanly */
	relay *r2 = NULL;
	assert_int_not_equal(relay_start(&r2, &opt), 0);
	assert_null(r2);

	assert_int_equal(nng_sub0_open(&sub), 0);
	assert_int_equal(
	    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "health.", 7), 0);
	assert_int_equal(nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 50), 0);
	assert_int_equal(nng_dial(sub, opt.subscribe_url, NULL, 0), 0);
	assert_int_equal(nng_pub0_open(&pub), 0);
	assert_int_equal(nng_dial(pub, opt.publish_url, NULL, 0), 0);
	relay_get_stats(r, &st);
	WAIT_FOR((relay_get_stats(r, &st),
	    st.publishers == 1 && st.subscribers == 1));
	assert_int_equal(metric_value(metrics_gauge(
	                     m, "opsdesk_relay_subscribers", "", NULL)),
	    1);

	/* Until the publisher's own pipe is up its frames are dropped:
	 * probe until one arrives end to end. */
	int got = -1;
	for (int i = 0; i < 100 && got != 0; i++) {
		assert_int_equal(
		    nng_send(pub, (void *) health, sizeof(health) - 1, 0), 0);
		got = nng_recvmsg(sub, &msg, 0);
	}
	assert_int_equal(got, 0);
	assert_int_equal(nng_msg_len(msg), sizeof(health) - 1);
	assert_memory_equal(nng_msg_body(msg), health, sizeof(health) - 1);
	nng_msg_free(msg);
	/* drain probes still in flight */
	while (nng_recvmsg(sub, &msg, 0) == 0) {
		nng_msg_free(msg);
	}
	relay_get_stats(r, &st);
	uint64_t base = st.messages;
	double h0
	    = counter(m, "opsdesk_relay_messages_total", "domain=\"health\"");
	assert_int_equal((uint64_t) h0, base);

	/* a ticket frame (filtered by the subscriber), garbage (forwarded
	 * and counted as malformed), then health: order is kept */
	assert_int_equal(
	    nng_send(pub, (void *) ticket, sizeof(ticket) - 1, 0), 0);
	assert_int_equal(
	    nng_send(pub, (void *) garbage, sizeof(garbage) - 1, 0), 0);
	assert_int_equal(
	    nng_send(pub, (void *) health, sizeof(health) - 1, 0), 0);
	assert_int_equal(nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_recvmsg(sub, &msg, 0), 0);
	assert_memory_equal(nng_msg_body(msg), health, sizeof(health) - 1);
	nng_msg_free(msg);
	relay_get_stats(r, &st);
	assert_int_equal(st.messages, base + 3);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.send_errors, 0);
	assert_int_equal(
	    counter(m, "opsdesk_relay_messages_total", "domain=\"ticket\""),
	    1);
	assert_int_equal(
	    counter(m, "opsdesk_relay_messages_total", "domain=\"malformed\""),
	    1);
	assert_int_equal(
	    counter(m, "opsdesk_relay_messages_total", "domain=\"health\""),
	    h0 + 1);
	assert_int_equal(
	    counter(m, "opsdesk_relay_bytes_total", "domain=\"ticket\""),
	    sizeof(ticket) - 1);

	/* the gauges follow disconnections */
	nng_close(sub);
	WAIT_FOR((relay_get_stats(r, &st), st.subscribers == 0));
	nng_close(pub);
	WAIT_FOR((relay_get_stats(r, &st), st.publishers == 0));
	assert_int_equal(
	    counter(m, "opsdesk_relay_connections_total", "side=\"publish\""),
	    1);
	relay_stop(r);
	relay_stop(NULL);
	metrics_free(m);
}

static void
test_bad_options(void **state)
{
	(void) state;
	relay *r = NULL;
	relay_options opt = { .publish_url = "nonsense://x",
		.subscribe_url = "inproc://relay-bad" };
	assert_int_not_equal(relay_start(&r, &opt), 0);
	assert_null(r);
	opt.publish_url = NULL;
	assert_int_equal(relay_start(&r, &opt), 2 /* OD_EINVAL */);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_forwarding),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
