/* Units for router.c, callbacks.c, updates.c parsing, conversation
 * encoding and the outbox's throttle and record format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway.h"

static void
test_parse_command(void **state)
{
	char name[40];
	const char *args;
	assert_true(gw_router_parse(
	    "/health", "opsdesk_bot", name, sizeof(name), &args));
	assert_string_equal(name, "health");
	assert_string_equal(args, "");
	assert_true(gw_router_parse("/Ticket@OpsDesk_Bot   T-12 ",
	    "opsdesk_bot", name, sizeof(name), &args));
	assert_string_equal(name, "ticket");
	assert_string_equal(args, "T-12 ");
	/* Addressed to another bot in a group: not ours. */
	assert_false(gw_router_parse(
	    "/health@other_bot", "opsdesk_bot", name, sizeof(name), &args));
	assert_false(gw_router_parse(
	    "hello", "opsdesk_bot", name, sizeof(name), &args));
	assert_false(gw_router_parse("/", NULL, name, sizeof(name), &args));
	assert_false(
	    gw_router_parse("/he-lp", NULL, name, sizeof(name), &args));
	/* Without a configured name any suffix is accepted. */
	assert_true(gw_router_parse("/help@x", "", name, sizeof(name), &args));
}

static void
test_subs_remove(void **state)
{
	sbuf b = SBUF_INIT;
	/* From everything: all the others stay. */
	assert_true(gw_subs_remove("", ",db,", ",api,db,web,", &b));
	assert_string_equal(sbuf_str(&b), ",api,web,");
	sbuf_reset(&b);
	/* From a list: only the named one goes; unknown ids change nothing.
	 */
	assert_true(gw_subs_remove(",api,db,", ",db,zz,", ",api,db,web,", &b));
	assert_string_equal(sbuf_str(&b), ",api,");
	sbuf_reset(&b);
	/* A prefix of an id is another id. */
	assert_true(gw_subs_remove(",api,api2,", ",api,", ",api,api2,", &b));
	assert_string_equal(sbuf_str(&b), ",api2,");
	sbuf_reset(&b);
	/* The last one: nothing left. */
	assert_false(gw_subs_remove(",db,", ",db,", ",api,db,", &b));
	sbuf_reset(&b);
	assert_false(gw_subs_remove("", ",api,db,", ",api,db,", &b));
	sbuf_free(&b);
}

static void
batch_event(status_batch *b, int64_t now, const char *id, const char *from,
    const char *to)
{
	Opsdesk__V1__StatusChanged s = OPSDESK__V1__STATUS_CHANGED__INIT;
	Opsdesk__V1__ComponentChange c = OPSDESK__V1__COMPONENT_CHANGE__INIT;
	Opsdesk__V1__ComponentChange *cs[1] = { &c };
	s.indicator = (char *) "major";
	s.description = (char *) "Partial outage";
	if (id != NULL) {
		c.component_id = (char *) id;
		c.name = (char *) id;
		c.old_status = (char *) from;
		c.new_status = (char *) to;
		s.n_changes = 1;
		s.changes = cs;
	}
	gw_status_batch_add(b, &s, now, 3000);
}

static void
test_status_batch(void **state)
{
	status_batch *b = calloc(1, sizeof(*b));
	assert_false(gw_status_batch_due(b, 0));
	/* Two changes of one outage, 1 s apart: one notice, due 3 s after
	 * the first; later events do not push it back. */
	batch_event(b, 1000, "api", "operational", "partial_outage");
	batch_event(b, 2000, "api", "partial_outage", "major_outage");
	batch_event(b, 3900, "db", "operational", "degraded_performance");
	assert_false(gw_status_batch_due(b, 3999));
	assert_true(gw_status_batch_due(b, 4000));
	assert_int_equal(gw_status_batch_settle(b), 2);
	assert_string_equal(b->ch[0].id, "api");
	assert_string_equal(b->ch[0].old_status, "operational");
	assert_string_equal(b->ch[0].new_status, "major_outage");
	assert_string_equal(b->ch[1].new_status, "degraded_performance");
	assert_false(b->overall);
	/* Down and back within the window: nothing to tell. */
	memset(b, 0, sizeof(*b));
	batch_event(b, 0, "api", "operational", "major_outage");
	batch_event(b, 500, "api", "major_outage", "operational");
	assert_true(gw_status_batch_due(b, 3000));
	assert_int_equal(gw_status_batch_settle(b), 0);
	/* An overall change without components is kept as such. */
	memset(b, 0, sizeof(*b));
	batch_event(b, 0, NULL, NULL, NULL);
	assert_true(b->overall);
	assert_string_equal(b->description, "Partial outage");
	/* Bounded: components beyond the array are dropped, not written. */
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < STATUS_BATCH_MAX + 5; i++) {
		char id[16];
		snprintf(id, sizeof(id), "c%d", i);
		batch_event(b, i, id, "operational", "major_outage");
	}
	assert_int_equal(b->n, STATUS_BATCH_MAX);
	free(b);
}

static void
test_public_words(void **state)
{
	assert_string_equal(
	    gw_render_public_name("partial_outage"), "Partial outage");
	assert_string_equal(
	    gw_render_public_name("under_maintenance"), "Under maintenance");
	assert_string_equal(gw_render_public_symbol("under_maintenance"), "🔧");
	assert_true(gw_render_public_rank("major_outage")
	    > gw_render_public_rank("partial_outage"));
	assert_int_equal(gw_render_public_rank("operational"), 0);
}

static void
test_table(void **state)
{
	size_t n;
	const gw_command *c = gw_router_commands(&n);
	static const char *const admin[] = { "health", "monitor", "ops",
		"incident", "maintenance", "queue", "reply", "note", "close",
		"resolve", "pending", "assign", "priority", "tier", "report",
		"help_admin", "tick", NULL };
	static const char *const all[] = { "start", "help", "help_operations",
		"status_page", "status", "subscribe", "unsubscribe", "support",
		"tickets", "ticket", "faq", "cancel", NULL };
	for (int i = 0; admin[i]; i++) {
		assert_non_null(gw_router_find(admin[i]));
		assert_true(gw_router_find(admin[i])->admin);
	}
	for (int i = 0; all[i]; i++) {
		assert_non_null(gw_router_find(all[i]));
		assert_false(gw_router_find(all[i])->admin);
	}
	for (size_t i = 0; i < n; i++) {
		assert_non_null(c[i].fn);
		assert_true(strlen(c[i].about) <= 256);
	}
}

static void
test_cb_codec(void **state)
{
	char out[GW_CBDATA_MAX + 1];
	cb_data d;
	assert_int_equal(gw_cb_encode(out, sizeof(out), "ia", "42", NULL), 0);
	assert_string_equal(out, "1:ia:42");
	assert_int_equal(gw_cb_decode(out, &d), 0);
	assert_string_equal(d.action, "ia");
	assert_string_equal(d.arg1, "42");
	assert_int_equal(d.nargs, 1);
	assert_int_equal(gw_cb_encode(out, sizeof(out), "tr", "7", "5"), 0);
	assert_int_equal(gw_cb_decode(out, &d), 0);
	assert_string_equal(d.arg2, "5");
	/* Hostile or stale data never decodes into an action. */
	assert_int_equal(gw_cb_decode("0:ia:42", &d), OD_ESTATE);
	assert_int_equal(gw_cb_decode("1:ia:4 2", &d), OD_EINVAL);
	assert_int_equal(gw_cb_decode("1:ia:/health", &d), OD_EINVAL);
	assert_int_equal(gw_cb_decode("1:ia:1:2:3", &d), OD_EINVAL);
	assert_int_equal(gw_cb_decode("1", &d), OD_EINVAL);
	assert_int_equal(gw_cb_decode("1::", &d), OD_EINVAL);
	assert_int_equal(gw_cb_encode(out, sizeof(out), "ck",
	                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	                     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
	    OD_ETOOBIG);
	assert_int_equal(
	    gw_cb_encode(out, sizeof(out), "ck", "a b", NULL), OD_EINVAL);
}

static void
test_ids_and_words(void **state)
{
	uint64_t id;
	const char *p = "  T-12   hello world ";
	char w[16];
	assert_int_equal(gw_parse_id("T-12", "T", &id), 0);
	assert_int_equal(id, 12);
	assert_int_equal(gw_parse_id("12", "T", &id), 0);
	assert_int_equal(gw_parse_id("inc-3", "INC", &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(gw_parse_id("T-", "T", &id), OD_EINVAL);
	assert_int_equal(gw_parse_id("x12", "T", &id), OD_EINVAL);
	assert_int_equal(gw_parse_id("0", "T", &id), OD_EINVAL);
	assert_int_equal(
	    gw_parse_id("99999999999999999999999", "T", &id), OD_EINVAL);
	assert_true(gw_word(&p, w, sizeof(w)));
	assert_string_equal(w, "T-12");
	assert_string_equal(p, "hello world ");
}

static void
test_update_parse(void **state)
{
	const char *json
	    = "{\"update_id\":4503599627370495,\"message\":{\"message_id\":5,"
	      "\"from\":{\"id\":4503599627370001,\"first_name\":\"Ann\","
	      "\"last_name\":\"Lee\"},\"chat\":{\"id\":-1001234567890,"
	      "\"type\":\"supergroup\"},\"date\":1700000000000,\"text\":\"/"
	      "help\","
	      "\"extra\":{\"odd\":true},\"reply_to_message\":{\"message_id\":"
	      "3,"
	      "\"text\":\"T-9 new\"}}}";
	cJSON *j = cJSON_Parse(json);
	gw_update u, u2;
	assert_int_equal(gw_update_parse(j, &u), 0);
	cJSON_Delete(j);
	assert_int_equal(u.update_id, 4503599627370495LL);
	assert_int_equal(u.kind, GW_UPD_MESSAGE);
	assert_int_equal(u.chat_id, -1001234567890LL);
	assert_int_equal(u.user_id, 4503599627370001LL);
	assert_string_equal(u.user_name, "Ann Lee");
	assert_string_equal(u.text, "/help");
	assert_int_equal(u.reply_to_id, 3);
	/* The inbox form parses back to the same update. */
	char *s = gw_update_to_json(&u);
	j = cJSON_Parse(s);
	assert_int_equal(gw_update_parse(j, &u2), 0);
	assert_int_equal(u2.update_id, u.update_id);
	assert_int_equal(u2.chat_id, u.chat_id);
	assert_string_equal(u2.text, u.text);
	assert_string_equal(u2.reply_to_text, "T-9 new");
	cJSON_Delete(j);
	free(s);
	gw_update_clear(&u);
	gw_update_clear(&u2);

	j = cJSON_Parse("{\"update_id\":7,\"callback_query\":{\"id\":\"cb1\","
	                "\"from\":{\"id\":9},\"data\":\"1:ia:3\",\"message\":"
	                "{\"message_id\":11,\"from\":{\"id\":1},\"chat\":"
	                "{\"id\":9,\"type\":\"private\"}}}}");
	assert_int_equal(gw_update_parse(j, &u), 0);
	assert_int_equal(u.kind, GW_UPD_CALLBACK);
	assert_int_equal(u.user_id, 9); /* the presser, not the bot */
	assert_int_equal(u.message_id, 11);
	assert_string_equal(u.callback_id, "cb1");
	assert_string_equal(u.text, "1:ia:3");
	gw_update_clear(&u);
	cJSON_Delete(j);

	j = cJSON_Parse("{\"message\":{}}");
	assert_int_equal(gw_update_parse(j, &u), OD_EMALFORMED);
	cJSON_Delete(j);
}

static void
test_conv_codec(void **state)
{
	conv_state s = { "ticket_text", "high", 1234 }, d;
	char buf[160];
	size_t n = gw_conv_encode(&s, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(gw_conv_decode(buf, n, &d), 0);
	assert_string_equal(d.step, "ticket_text");
	assert_string_equal(d.data, "high");
	assert_int_equal(d.expires_ms, 1234);
	assert_int_equal(gw_conv_decode("garbage", 7, &d), OD_EMALFORMED);
}

static void
test_throttle(void **state)
{
	throttle *t;
	throttle_limits lim = { 30, 1, 20 };
	assert_int_equal(gw_throttle_new(&t, &lim), 0);
	/* Per chat: 1/s. */
	assert_int_equal(gw_throttle_wait_ms(t, 5, 1000), 0);
	gw_throttle_sent(t, 5, 1000);
	assert_int_equal(gw_throttle_wait_ms(t, 5, 1400), 600);
	assert_int_equal(gw_throttle_wait_ms(t, 5, 2000), 0);
	assert_int_equal(gw_throttle_wait_ms(t, 6, 1400), 0);
	gw_throttle_free(t);
	/* Global: 30 in any second, evenly spaced (33 ms apart). */
	throttle_limits gl = { 30, 0, 0 };
	assert_int_equal(gw_throttle_new(&t, &gl), 0);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(
		    gw_throttle_wait_ms(t, 100 + i, 10000 + 33 * i), 0);
		gw_throttle_sent(t, 100 + i, 10000 + 33 * i);
	}
	assert_int_equal(gw_throttle_wait_ms(t, 999, 10990), 10); /* 31st */
	assert_int_equal(gw_throttle_wait_ms(t, 999, 11000), 0);
	gw_throttle_sent(t, 999, 11000);
	assert_int_equal(
	    gw_throttle_wait_ms(t, 1000, 11010), 23); /* spacing */
	gw_throttle_free(t);

	/* Groups: 20 a minute even with the per-chat limit off. */
	throttle_limits g = { 0, 0, 20 };
	assert_int_equal(gw_throttle_new(&t, &g), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(gw_throttle_wait_ms(t, -77, 1000 + i), 0);
		gw_throttle_sent(t, -77, 1000 + i);
	}
	assert_int_equal(gw_throttle_wait_ms(t, -77, 2000), 59000);
	assert_int_equal(gw_throttle_wait_ms(t, -77, 61000), 0);
	assert_int_equal(gw_throttle_wait_ms(t, 77, 2000), 0);
	gw_throttle_free(t);

	/* Off: never waits. */
	throttle_limits off = { 0, 0, 0 };
	assert_int_equal(gw_throttle_new(&t, &off), 0);
	for (int i = 0; i < 1000; i++) {
		gw_throttle_sent(t, 1, 5);
	}
	assert_int_equal(gw_throttle_wait_ms(t, 1, 5), 0);
	gw_throttle_free(t);
}

static void
test_outbox_record(void **state)
{
	gw_out o = { "sendMessage", -100, "{\"text\":\"x\"}", "t12",
		GW_LANE_REPLY };
	size_t len;
	int64_t chat;
	const char *m, *tag, *body;
	uint8_t *v = gw_outbox_encode(&o, &len);
	assert_non_null(v);
	assert_int_equal(gw_outbox_decode(v, len, &chat, &m, &tag, &body), 0);
	assert_int_equal(chat, -100);
	assert_string_equal(m, "sendMessage");
	assert_string_equal(tag, "t12");
	assert_string_equal(body, "{\"text\":\"x\"}");
	assert_int_equal(
	    gw_outbox_decode(v, 9, &chat, &m, &tag, &body), OD_EMALFORMED);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_command),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_cb_codec),
		cmocka_unit_test(test_ids_and_words),
		cmocka_unit_test(test_subs_remove),
		cmocka_unit_test(test_status_batch),
		cmocka_unit_test(test_public_words),
		cmocka_unit_test(test_update_parse),
		cmocka_unit_test(test_conv_codec),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_outbox_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
