/* Units of the delivery engine on explicit times: lanes in strict
 * priority, round-robin across chats, the Telegram limits, retry
 * backoff, blocked chats, the retry classification and the per-user
 * command budget. The queue is a real store in a temporary directory. */
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

#define T0 1700000000000LL

static int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	return fake_now;
}

typedef struct fixture {
	char dir[64];
	store *st;
	ob_sched *s;
} fixture;

static int
setup_with(void **state, int global, int chat, int group, int inflight)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sched_test_XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	store_options so = { .path = f->dir, .dbs = gw_db_names };
	assert_int_equal(store_open(&f->st, &so), 0);
	throttle_limits lim = { global, chat, group };
	assert_int_equal(gw_ob_sched_new(&f->s, &lim, inflight), 0);
	fake_now = T0;
	od_clock_set(fake_clock, NULL);
	*state = f;
	return 0;
}

static int
setup_unlimited(void **state)
{
	return setup_with(state, 0, 0, 0, 64);
}

static int
setup_telegram(void **state)
{
	return setup_with(state, 30, 1, 20, 64);
}

static int
setup_with_group(void **state)
{
	return setup_with(state, 30, 0, 20, 64);
}

static int
teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	gw_ob_sched_free(f->s);
	store_close(f->st);
	od_clock_set(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

typedef struct put_job {
	int lane;
	int64_t chat;
	const char *text;
	int count;
} put_job;

static int
put_fn(store_txn *t, void *arg)
{
	put_job *j = arg;
	for (int i = 0; i < j->count; i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"text\":\"%s\"}", j->text);
		gw_out o = { "sendMessage", j->chat, body, "", GW_LANE_AUTO };
		int rv = gw_outbox_put(t, &o, j->lane);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

static void
put(fixture *f, int lane, int64_t chat, const char *text, int count)
{
	put_job j = { lane, chat, text, count };
	assert_int_equal(store_write(f->st, put_fn, &j), 0);
}

/* Pick at most max at the fake time; *wake is returned through wake. */
static int
pick(fixture *f, ob_msg *out, int max, int64_t *wake)
{
	int64_t w;
	int n = gw_ob_sched_pick(f->s, f->st, fake_now, out, max, &w);
	if (wake != NULL) {
		*wake = w;
	}
	return n;
}

/* Commit the picked messages with one verdict, freeing their bodies. */
static void
finish(fixture *f, ob_msg *m, int n, botapi_verdict v)
{
	ob_outcome o[128];
	assert_true(n <= 128);
	memset(o, 0, sizeof(o));
	for (int i = 0; i < n; i++) {
		o[i].msg = m[i];
		o[i].msg.body = NULL;
		o[i].verdict = v;
		free(m[i].body);
		m[i].body = NULL;
	}
	assert_int_equal(gw_ob_sched_commit(f->s, f->st, o, n, NULL), 0);
}

static uint64_t
depth(fixture *f)
{
	MDB_txn *txn = NULL;
	MDB_stat st;
	assert_int_equal(store_read_begin(f->st, &txn), 0);
	assert_int_equal(mdb_stat(txn, store_db(f->st, GW_DB_OUTBOX), &st), 0);
	store_read_end(txn);
	return st.ms_entries;
}

/* A reply and an alert queued behind a deep broadcast go first. */
static void
test_lanes_in_priority(void **state)
{
	fixture *f = *state;
	ob_msg m[8];
	for (int c = 0; c < 200; c++) {
		put(f, GW_LANE_BROADCAST, 1000 + c, "status", 1);
	}
	put(f, GW_LANE_TICKET, 77, "ticket", 1);
	put(f, GW_LANE_ALERT, -500, "alert", 1);
	put(f, GW_LANE_REPLY, 42, "reply", 1);
	fake_now += 10;
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 42);
	assert_int_equal(m[0].lane, GW_LANE_REPLY);
	finish(f, m, 1, BOTAPI_OK);
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, -500);
	assert_int_equal(m[0].lane, GW_LANE_ALERT);
	finish(f, m, 1, BOTAPI_OK);
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 77);
	finish(f, m, 1, BOTAPI_OK);
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 1000);
	assert_int_equal(m[0].lane, GW_LANE_BROADCAST);
	finish(f, m, 1, BOTAPI_OK);
	assert_int_equal(depth(f), 199);
}

static void
lanes(fixture *f, uint64_t *d, int64_t *age)
{
	assert_int_equal(gw_outbox_lanes(f->st, fake_now, d, age), 0);
}

/* Each lane's depth and oldest age, kept as messages come and go. */
static void
test_lane_gauges(void **state)
{
	fixture *f = *state;
	ob_msg m[8];
	uint64_t d[GW_LANES];
	int64_t age[GW_LANES];
	int b = GW_LANE_BROADCAST - GW_LANE_REPLY;

	lanes(f, d, age);
	for (int li = 0; li < GW_LANES; li++) {
		assert_int_equal(d[li], 0);
		assert_int_equal(age[li], 0);
	}
	put(f, GW_LANE_BROADCAST, 1000, "s", 2);
	fake_now += 1000;
	put(f, GW_LANE_BROADCAST, 1001, "s", 1);
	put(f, GW_LANE_REPLY, 42, "r", 1);
	fake_now += 4000;
	lanes(f, d, age);
	assert_int_equal(d[0], 1);
	assert_int_equal(age[0], 4000);
	assert_int_equal(d[1], 0);
	assert_int_equal(d[2], 0);
	assert_int_equal(age[2], 0);
	assert_int_equal(d[b], 3);
	assert_int_equal(age[b], 5000);

	/* The reply goes: its lane is empty again. */
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 42);
	finish(f, m, 1, BOTAPI_OK);
	lanes(f, d, age);
	assert_int_equal(d[0], 0);
	assert_int_equal(age[0], 0);

	/* A retry keeps the message; a sent one leaves, and the lane's
	 * oldest is then the next oldest. */
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 1000);
	finish(f, m, 1, BOTAPI_RETRY);
	lanes(f, d, age);
	assert_int_equal(d[b], 3);
	assert_int_equal(age[b], 5000);
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 1001);
	finish(f, m, 1, BOTAPI_BLOCKED);
	fake_now += 60000;
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 1000);
	finish(f, m, 1, BOTAPI_OK);
	lanes(f, d, age);
	assert_int_equal(d[b], 1);
	assert_int_equal(age[b], 65000);
	assert_int_equal(pick(f, m, 1, NULL), 1);
	finish(f, m, 1, BOTAPI_OK);
	lanes(f, d, age);
	assert_int_equal(d[b], 0);
	assert_int_equal(age[b], 0);
	assert_int_equal(depth(f), 0);
}

/* Chats take turns inside a lane; each chat's messages stay in order. */
static void
test_round_robin(void **state)
{
	fixture *f = *state;
	ob_msg m[8];
	char want[][8] = { "a0", "b", "c", "a1", "a2" };
	put(f, GW_LANE_REPLY, 1, "a0", 1);
	put(f, GW_LANE_REPLY, 1, "a1", 1);
	put(f, GW_LANE_REPLY, 1, "a2", 1);
	fake_now += 1;
	put(f, GW_LANE_REPLY, 2, "b", 1);
	put(f, GW_LANE_REPLY, 3, "c", 1);
	for (int i = 0; i < 5; i++) {
		char text[64];
		fake_now += 10;
		assert_int_equal(pick(f, m, 1, NULL), 1);
		snprintf(text, sizeof(text), "{\"text\":\"%s\"}", want[i]);
		assert_string_equal(m[0].body, text);
		finish(f, m, 1, BOTAPI_OK);
	}
	assert_int_equal(pick(f, m, 1, NULL), 0);
	assert_int_equal(depth(f), 0);
}

/* One chat's message at a time: the next waits for the outcome. */
static void
test_one_in_flight_per_chat(void **state)
{
	fixture *f = *state;
	ob_msg m[8];
	put(f, GW_LANE_REPLY, 1, "x", 3);
	put(f, GW_LANE_TICKET, 1, "y", 1);
	put(f, GW_LANE_REPLY, 2, "z", 1);
	fake_now += 5;
	assert_int_equal(pick(f, m, 8, NULL), 2);
	assert_int_equal(m[0].chat_id, 1);
	assert_int_equal(m[1].chat_id, 2);
	assert_int_equal(pick(f, m + 2, 8, NULL), 0);
	finish(f, m, 2, BOTAPI_OK);
	assert_int_equal(pick(f, m, 8, NULL), 1);
	finish(f, m, 1, BOTAPI_OK);
}

/* 1/s per chat, 30/s overall, evenly spaced. */
static void
test_limits(void **state)
{
	fixture *f = *state;
	ob_msg m[64];
	int64_t wake, start, chat1[2] = { 0, 0 };
	int first_second = 0, n1 = 0;
	put(f, GW_LANE_REPLY, 1, "a", 2);
	for (int c = 0; c < 40; c++) {
		put(f, GW_LANE_BROADCAST, 100 + c, "b", 1);
	}
	start = fake_now + 1;
	for (fake_now = start; fake_now < start + 3000; fake_now++) {
		int n = pick(f, m, 64, &wake);
		assert_true(n <= 1);
		assert_true(wake > fake_now || n > 0);
		for (int i = 0; i < n; i++) {
			if (m[i].chat_id == 1 && n1 < 2) {
				chat1[n1++] = fake_now;
			}
			if (fake_now < start + 1000) {
				first_second++;
			}
		}
		finish(f, m, n, BOTAPI_OK);
	}
	assert_int_equal(first_second, 30);
	assert_int_equal(n1, 2);
	assert_int_equal(chat1[0], start);
	assert_true(chat1[1] - chat1[0] >= 1000);
	assert_int_equal(depth(f), 0);
}

/* 20 messages a minute to a group. */
static void
test_group_limit(void **state)
{
	fixture *f = *state;
	ob_msg m[4];
	int64_t wake;
	int sent = 0;
	put(f, GW_LANE_ALERT, -100, "g", 25);
	for (int i = 0; i < 40; i++) {
		fake_now += 1000;
		int n = pick(f, m, 4, &wake);
		sent += n;
		finish(f, m, n, BOTAPI_OK);
	}
	assert_int_equal(sent, 20);
	fake_now = T0 + 60000 + 1001;
	assert_int_equal(pick(f, m, 4, &wake), 1);
	finish(f, m, 1, BOTAPI_OK);
}

/* Transient failures back off exponentially (+ up to 25 % jitter) and
 * keep the message; 429 waits retry_after; 403 drops the chat's queue. */
static void
test_retry_and_block(void **state)
{
	fixture *f = *state;
	ob_msg m[4];
	ob_outcome o;
	put(f, GW_LANE_REPLY, 5, "r", 1);
	put(f, GW_LANE_REPLY, 6, "s", 3);
	fake_now += 1;
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 5);
	finish(f, m, 1, BOTAPI_RETRY);
	int64_t t1 = fake_now;
	/* chat 6 meanwhile */
	assert_int_equal(pick(f, m, 1, NULL), 1);
	assert_int_equal(m[0].chat_id, 6);
	finish(f, m, 1, BOTAPI_BLOCKED);
	fake_now = t1 + 999;
	assert_int_equal(pick(f, m, 4, NULL), 0);
	fake_now = t1 + 1251;
	assert_int_equal(pick(f, m, 4, NULL), 1);
	assert_int_equal(m[0].chat_id, 5);
	finish(f, m, 1, BOTAPI_RETRY);
	int64_t t2 = fake_now;
	fake_now = t2 + 1999;
	assert_int_equal(pick(f, m, 4, NULL), 0);
	fake_now = t2 + 2501;
	assert_int_equal(pick(f, m, 4, NULL), 1);
	memset(&o, 0, sizeof(o));
	o.msg = m[0];
	o.msg.body = NULL;
	free(m[0].body);
	o.verdict = BOTAPI_RETRY_AFTER;
	o.retry_after_ms = 7000;
	assert_int_equal(gw_ob_sched_commit(f->s, f->st, &o, 1, NULL), 0);
	fake_now += 6999;
	assert_int_equal(pick(f, m, 4, NULL), 0);
	fake_now += 2;
	assert_int_equal(pick(f, m, 4, NULL), 1);
	finish(f, m, 1, BOTAPI_OK);
	/* The blocked chat's other two messages went with it. */
	assert_int_equal(depth(f), 0);
	assert_int_equal(pick(f, m, 4, NULL), 0);
}

/* Only Telegram's own refusals are final. */
static void
test_classify(void **state)
{
	botapi_result r;
	const char *why;
	memset(&r, 0, sizeof(r));
	assert_int_equal(
	    gw_botapi_classify(OD_EUNAVAIL, &r, &why), BOTAPI_RETRY);
	assert_string_equal(why, "network");
	r.timed_out = true;
	assert_int_equal(
	    gw_botapi_classify(OD_EUNAVAIL, &r, &why), BOTAPI_RETRY);
	assert_string_equal(why, "timeout");
	memset(&r, 0, sizeof(r));
	r.http_status = 200; /* a proxy's page */
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_RETRY);
	assert_string_equal(why, "bad_reply");
	r.http_status = r.error_code = 403; /* not Telegram's JSON */
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_RETRY);
	r.telegram = true;
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_BLOCKED);
	r.http_status = r.error_code = 401;
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_RETRY);
	assert_string_equal(why, "401");
	r.http_status = r.error_code = 404;
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_RETRY);
	r.http_status = r.error_code = 502;
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_RETRY);
	assert_string_equal(why, "5xx");
	r.http_status = r.error_code = 429;
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_RETRY_AFTER);
	r.http_status = r.error_code = 400;
	snprintf(r.description, sizeof(r.description),
	    "Bad Request: chat not found");
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_REFUSED);
	snprintf(r.description, sizeof(r.description),
	    "Bad Request: message is not modified");
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_OK);
	r.ok = true;
	r.error_code = 0;
	assert_int_equal(gw_botapi_classify(0, &r, &why), BOTAPI_OK);
}

/* A burst, then one "slow down", then silence until it refills. */
static void
test_command_budget(void **state)
{
	budget *b;
	assert_int_equal(gw_budget_new(&b, 20, 5), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(gw_budget_take(b, 900, T0), BUDGET_OK);
	}
	assert_int_equal(gw_budget_take(b, 900, T0), BUDGET_WARN);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(
		    gw_budget_take(b, 900, T0 + i), BUDGET_IGNORE);
	}
	assert_int_equal(gw_budget_take(b, 901, T0 + 100), BUDGET_OK);
	/* 20 a minute: one more every 3 s. */
	assert_int_equal(gw_budget_take(b, 900, T0 + 3100), BUDGET_OK);
	assert_int_equal(gw_budget_take(b, 900, T0 + 3200), BUDGET_WARN);
	/* Many users: bounded table, newcomers still served. */
	for (int64_t u = 1; u < 50000; u++) {
		assert_int_equal(
		    gw_budget_take(b, 10000 + u, T0 + 4000), BUDGET_OK);
	}
	gw_budget_free(b);
	assert_int_equal(gw_budget_new(&b, 0, 5), 0); /* off */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(gw_budget_take(b, 900, T0), BUDGET_OK);
	}
	gw_budget_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_lanes_in_priority, setup_unlimited, teardown),
		cmocka_unit_test_setup_teardown(
		    test_round_robin, setup_unlimited, teardown),
		cmocka_unit_test_setup_teardown(
		    test_lane_gauges, setup_unlimited, teardown),
		cmocka_unit_test_setup_teardown(
		    test_one_in_flight_per_chat, setup_unlimited, teardown),
		cmocka_unit_test_setup_teardown(
		    test_limits, setup_telegram, teardown),
		cmocka_unit_test_setup_teardown(
		    test_group_limit, setup_with_group, teardown),
		cmocka_unit_test_setup_teardown(
		    test_retry_and_block, setup_unlimited, teardown),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_command_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
