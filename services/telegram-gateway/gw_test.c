/* Store-backed units of the gateway core: conversation expiry with the
 * injectable clock, the inbox's deduplication and an update's effects
 * committed at once. Console mode: no Bot API, no backends needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway.h"

static int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	return fake_now;
}

typedef struct fixture {
	char dir[64];
	config *cfg;
	metrics *m;
	store *st;
	gw *g;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char err[256];
	snprintf(f->dir, sizeof(f->dir), "/tmp/gw_test_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(
	    config_load_string(&f->cfg, "telegram-gateway", NULL,
	        "{\"admins\":[1],\"gateway\":{\"conversation_ttl\":"
	        "\"10m\"}}",
	        err, sizeof(err)),
	    0);
	assert_int_equal(metrics_new(&f->m), 0);
	store_options so = { .path = f->dir, .dbs = gw_db_names };
	assert_int_equal(store_open(&f->st, &so), 0);
	gw_options o = { .cfg = f->cfg,
		.metrics = f->m,
		.store = f->st,
		.mode = GW_MODE_CONSOLE };
	assert_int_equal(gw_new(&f->g, &o), 0);
	fake_now = 1700000000000LL;
	od_clock_set(fake_clock, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	od_clock_set(NULL, NULL);
	gw_free(f->g);
	store_close(f->st);
	metrics_free(f->m);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
test_conversation_expires(void **state)
{
	fixture *f = *state;
	gw_ctx ctx;
	conv_state s;
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = f->g;
	ctx.chat_id = 5;
	ctx.user_id = 5;
	gw_conv_set(&ctx, "ticket_text", "high");
	assert_int_equal(gw_enqueue(f->g, &ctx), 0);
	gw_ctx_free(&ctx);
	assert_int_equal(gw_conv_get(f->g, 5, 5, &s), 0);
	assert_string_equal(s.step, "ticket_text");
	assert_string_equal(s.data, "high");
	/* Another user in the same chat has no step. */
	assert_int_equal(gw_conv_get(f->g, 5, 6, &s), OD_ENOTFOUND);
	fake_now += 10 * 60 * 1000 - 1;
	assert_int_equal(gw_conv_get(f->g, 5, 5, &s), 0);
	fake_now += 2;
	assert_int_equal(gw_conv_get(f->g, 5, 5, &s), OD_ENOTFOUND);
}

/* Notifications queued without waiting (more than GW_ENQUEUE_AHEAD at
 * once, so the bound is met): the ctx is emptied at once, and every
 * message is in the outbox once gw_enqueue_wait returns. */
static void
test_enqueue_async(void **state)
{
	fixture *f = *state;
	int n = GW_ENQUEUE_AHEAD * 2 + 5;
	for (int i = 0; i < n; i++) {
		gw_ctx ctx;
		memset(&ctx, 0, sizeof(ctx));
		ctx.g = f->g;
		gw_ctx_send(&ctx, 100 + i, "notice", NULL, NULL);
		assert_int_equal(ctx.n_outs, 1);
		assert_int_equal(gw_enqueue_async(f->g, &ctx), 0);
		assert_int_equal(ctx.n_outs, 0);
		assert_null(ctx.outs);
		gw_ctx_free(&ctx);
	}
	gw_enqueue_wait(f->g);
	assert_int_equal(gw_outbox_depth(f->g), (uint64_t) n);
}

/* Until gw_start has replayed the inbox, intake is paused: a webhook
 * update accepted before would be dispatched live and again by the
 * replay (seen under TSan: a redelivered /help answered twice). */
static void
test_intake_waits_for_replay(void **state)
{
	fixture *f = *state;
	assert_true(gw_backlogged(f->g));
}

static gw_update
make_update(int64_t id, const char *text)
{
	gw_update u;
	memset(&u, 0, sizeof(u));
	u.update_id = id;
	u.kind = GW_UPD_MESSAGE;
	u.chat_id = 9;
	u.user_id = 9;
	strcpy(u.chat_type, "private");
	strcpy(u.user_name, "Ann");
	u.text = strdup(text);
	return u;
}

static void
test_update_once(void **state)
{
	fixture *f = *state;
	gw_update u = make_update(77, "/help");
	metric *dup = metrics_counter(
	    f->m, "opsdesk_gateway_updates_duplicate_total", "", NULL);

	/* Handled: its reply is queued and the update marked processed, in
	 * one commit. */
	assert_int_equal(gw_outbox_depth(f->g), 0);
	assert_int_equal(gw_handle(f->g, &u), 0);
	assert_int_equal(gw_outbox_depth(f->g), 1);
	/* A redelivery is recognised and not handed to a worker. */
	assert_int_equal(gw_accept(f->g, &u, 1, 78), 0);
	assert_int_equal((int) metric_value(dup), 1);
	assert_int_equal(gw_outbox_depth(f->g), 1);
	gw_update_clear(&u);

	/* A fresh update is accepted once; the second copy is a duplicate. */
	gw_update v = make_update(78, "/help");
	assert_int_equal(gw_accept(f->g, &v, 1, 79), 0);
	assert_int_equal((int) metric_value(dup), 1);
	assert_int_equal(gw_accept(f->g, &v, 1, 79), 0);
	assert_int_equal((int) metric_value(dup), 2);
	gw_update_clear(&v);
}

static void
test_unknown_text_and_usage(void **state)
{
	fixture *f = *state;
	gw_update u = make_update(90, "/ticket nonsense");
	assert_int_equal(gw_handle(f->g, &u), 0);
	gw_update_clear(&u);
	u = make_update(91, "hello there");
	assert_int_equal(gw_handle(f->g, &u), 0);
	gw_update_clear(&u);
	assert_int_equal(gw_outbox_depth(f->g), 2);
}

/* The gateway section's schema: a typo names its path and the nearest
 * key; a known key with a bad value is left to gw_settings_load. */
static void
test_settings_schema(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{\"gateway\":{\"throtle\":{}}}",
		    "gateway.throtle: unknown key, did you mean "
		    "\"throttle\"?" },
		{ "{\"gateway\":{\"throttle\":{\"chat_per_secnd\":1}}}",
		    "gateway.throttle.chat_per_secnd: unknown key, did you "
		    "mean \"chat_per_second\"?" },
		{ "{\"gateway\":{\"workers\":true}}",
		    "gateway.workers: expected an integer, got a boolean" },
		{ "{\"gateway\":{\"workers\":0}}",
		    "gateway.workers: expected an integer from 1 to 64" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config *c = NULL;
		gw_settings s;
		char err[256] = "";
		if (config_load_string(&c, "telegram-gateway", NULL,
		        cases[i].json, err, sizeof(err))
		    == 0) {
			assert_int_equal(
			    gw_settings_load(c, &s, err, sizeof(err)),
			    OD_EINVAL);
			assert_int_equal(
			    config_check_all(c, err, sizeof(err)), OD_EINVAL);
			config_free(c);
		}
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
			fail_msg("case %zu: \"%s\" is not %s", i, err,
			    cases[i].want);
		}
	}
}

int
main(void)
{
	/* What is asserted must not depend on the shell running the tests. */
	config_env_clear();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_schema),
		cmocka_unit_test_setup_teardown(
		    test_conversation_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_update_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_intake_waits_for_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_enqueue_async, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unknown_text_and_usage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
