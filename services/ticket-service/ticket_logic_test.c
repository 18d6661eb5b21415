/*
 * Units for the pure rules of ticket_core: SLA arithmetic, transitions,
 * authorization, limits, FAQ matching, percentiles and the config
 * section. No store, no clock: every time is an argument.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ticket.h"
#include "util/util.h"

#define MIN  (60 * 1000LL)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define T0   1800000000000LL

#define OPEN     OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
#define PENDING  OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING
#define RESOLVED OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_RESOLVED
#define CLOSED   OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED

static ticket_policy pol;

static tk_ticket
new_ticket(int tier, int priority)
{
	tk_ticket t = OPSDESK__V1__TICKET__INIT;

	t.id = 1;
	t.owner_id = 100;
	t.tier = tier;
	t.priority = priority;
	t.status = OPEN;
	t.created_ms = T0;
	ticket_sla_apply(&pol, &t);
	return t;
}

static int
setup(void **state)
{
	(void) state;
	ticket_policy_defaults(&pol);
	return 0;
}

static void
test_sla_targets_by_tier_and_priority(void **state)
{
	const ticket_sla_target *u, *f, *dflt;

	(void) state;
	/* Ultra: 1 h first response (30 min when urgent). */
	u = ticket_sla_target_for(&pol, OPSDESK__V1__TIER__TIER_ULTRA,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL);
	assert_int_equal(u->first_response_ms, HOUR);
	u = ticket_sla_target_for(&pol, OPSDESK__V1__TIER__TIER_ULTRA,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_URGENT);
	assert_int_equal(u->first_response_ms, 30 * MIN);
	/* Higher tiers and priorities never get a slower target. */
	for (int tier = 1; tier < TICKET_N_TIERS - 1; tier++) {
		for (int pr = 1; pr < TICKET_N_PRIORITIES; pr++) {
			const ticket_sla_target *a
			    = ticket_sla_target_for(&pol, tier, pr);
			const ticket_sla_target *b
			    = ticket_sla_target_for(&pol, tier + 1, pr);
			assert_true(
			    b->first_response_ms <= a->first_response_ms);
			assert_true(b->resolution_ms <= a->resolution_ms);
			if (pr > 1) {
				const ticket_sla_target *lo
				    = ticket_sla_target_for(
				        &pol, tier, pr - 1);
				assert_true(a->first_response_ms
				    <= lo->first_response_ms);
			}
		}
	}
	/* Unspecified tier and priority: free, normal. */
	f = ticket_sla_target_for(&pol, OPSDESK__V1__TIER__TIER_FREE,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL);
	dflt = ticket_sla_target_for(&pol, 0, 0);
	assert_ptr_equal(f, dflt);
	assert_ptr_equal(f, ticket_sla_target_for(&pol, 99, 99));
}

static void
test_sla_due_times_and_breach_once(void **state)
{
	tk_ticket t = new_ticket(OPSDESK__V1__TIER__TIER_ULTRA,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_HIGH);

	(void) state;
	assert_int_equal(t.first_response_due_ms, T0 + HOUR);
	assert_int_equal(t.resolution_due_ms, T0 + 12 * HOUR);
	assert_int_equal(ticket_sla_running(&t),
	    TICKET_CLOCK_FIRST_RESPONSE | TICKET_CLOCK_RESOLUTION);
	assert_int_equal(ticket_sla_queue_due(&t), T0 + HOUR);
	/* One ms early: nothing due. At the due time: first response. */
	assert_int_equal(ticket_sla_due(&t, T0 + HOUR - 1), 0);
	assert_int_equal(
	    ticket_sla_due(&t, T0 + HOUR), TICKET_CLOCK_FIRST_RESPONSE);
	assert_int_equal(ticket_sla_mark(&t, ticket_sla_due(&t, T0 + HOUR)),
	    TICKET_CLOCK_FIRST_RESPONSE);
	/* Once per clock: the same scan again flags nothing. */
	assert_int_equal(ticket_sla_due(&t, T0 + HOUR), 0);
	assert_int_equal(ticket_sla_mark(&t, TICKET_CLOCK_FIRST_RESPONSE), 0);
	assert_int_equal(ticket_sla_running(&t), TICKET_CLOCK_RESOLUTION);
	assert_int_equal(
	    ticket_sla_due(&t, T0 + 12 * HOUR), TICKET_CLOCK_RESOLUTION);
	assert_int_equal(ticket_sla_mark(&t, TICKET_CLOCK_RESOLUTION),
	    TICKET_CLOCK_RESOLUTION);
	assert_int_equal(ticket_sla_running(&t), 0);
	assert_string_equal(
	    ticket_clock_name(TICKET_CLOCK_FIRST_RESPONSE), "first_response");
	assert_string_equal(
	    ticket_clock_name(TICKET_CLOCK_RESOLUTION), "resolution");
}

static void
test_sla_first_response_stops_clock(void **state)
{
	tk_ticket t = new_ticket(OPSDESK__V1__TIER__TIER_PRO,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_URGENT);
	tk_ticket late = t;

	(void) state;
	ticket_sla_first_response(&t, T0 + MIN);
	assert_int_equal(t.first_response_ms, T0 + MIN);
	assert_false(t.first_response_breached);
	assert_int_equal(ticket_sla_running(&t), TICKET_CLOCK_RESOLUTION);
	/* The queue is then ordered by the resolution due. */
	assert_int_equal(ticket_sla_queue_due(&t), t.resolution_due_ms);
	/* A second reply does not move the first response. */
	ticket_sla_first_response(&t, T0 + 2 * MIN);
	assert_int_equal(t.first_response_ms, T0 + MIN);
	/* Late, before the timer saw it: still a breach for the stats. */
	ticket_sla_first_response(&late, late.first_response_due_ms + 1);
	assert_true(late.first_response_breached);
}

static void
test_sla_pending_pauses_both_clocks(void **state)
{
	tk_ticket t = new_ticket(OPSDESK__V1__TIER__TIER_ULTRA,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL);
	int64_t fr = t.first_response_due_ms;
	int64_t res = t.resolution_due_ms;

	(void) state;
	ticket_status_apply(&pol, &t, PENDING, T0 + 10 * MIN);
	assert_int_equal(t.status, PENDING);
	assert_int_equal(t.pending_since_ms, T0 + 10 * MIN);
	/* Paused: nothing runs, nothing is due, even long after. */
	assert_int_equal(ticket_sla_running(&t), 0);
	assert_int_equal(ticket_sla_due(&t, T0 + 30 * DAY), 0);
	/* Back to open after 3 h: both due times moved out by 3 h. */
	ticket_status_apply(&pol, &t, OPEN, T0 + 10 * MIN + 3 * HOUR);
	assert_int_equal(t.pending_since_ms, 0);
	assert_int_equal(t.paused_ms, 3 * HOUR);
	assert_int_equal(t.first_response_due_ms, fr + 3 * HOUR);
	assert_int_equal(t.resolution_due_ms, res + 3 * HOUR);
	assert_int_equal(ticket_sla_due(&t, fr + 3 * HOUR - 1), 0);
	/* A second pause adds up. */
	ticket_status_apply(&pol, &t, PENDING, T0 + 4 * HOUR);
	ticket_status_apply(&pol, &t, OPEN, T0 + 5 * HOUR);
	assert_int_equal(t.paused_ms, 4 * HOUR);
	assert_int_equal(t.first_response_due_ms, fr + 4 * HOUR);
}

static void
test_sla_priority_change_recomputes(void **state)
{
	tk_ticket t = new_ticket(OPSDESK__V1__TIER__TIER_FREE,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_LOW);

	(void) state;
	t.paused_ms = HOUR;
	t.priority = OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_URGENT;
	ticket_sla_apply(&pol, &t);
	assert_int_equal(t.first_response_due_ms, T0 + 8 * HOUR + HOUR);
	assert_int_equal(t.resolution_due_ms, T0 + 2 * DAY + HOUR);
}

static void
test_transitions(void **state)
{
	/* expected[from][to]: 0 allowed, else the error. */
	static const int expected[5][5] = {
		[OPEN] = { OD_EINVAL, OD_ESTATE, 0, 0, 0 },
		[PENDING] = { OD_EINVAL, 0, OD_ESTATE, 0, 0 },
		[RESOLVED] = { OD_EINVAL, 0, OD_ESTATE, OD_ESTATE, 0 },
		[CLOSED]
		= { OD_EINVAL, OD_ESTATE, OD_ESTATE, OD_ESTATE, OD_ESTATE },
	};
	const char *why;

	(void) state;
	for (int from = OPEN; from <= CLOSED; from++) {
		for (int to = 0; to <= CLOSED; to++) {
			tk_ticket t = new_ticket(1, 2);
			t.status = from;
			why = NULL;
			assert_int_equal(
			    ticket_status_change_check(&t, to, &why),
			    expected[from][to]);
			if (expected[from][to] != 0) {
				assert_non_null(why);
			}
		}
	}
	{
		tk_ticket t = new_ticket(1, 2);
		assert_int_equal(
		    ticket_status_change_check(&t, 7, &why), OD_EINVAL);
	}
}

static void
test_resolve_close_and_reopen(void **state)
{
	tk_ticket t = new_ticket(OPSDESK__V1__TIER__TIER_PRO,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL);
	const char *why = NULL;
	bool reopens;
	int64_t res_due = t.resolution_due_ms;

	(void) state;
	ticket_status_apply(&pol, &t, RESOLVED, T0 + HOUR);
	assert_int_equal(t.resolved_ms, T0 + HOUR);
	assert_false(t.resolution_breached);
	assert_int_equal(ticket_sla_running(&t), 0);
	/* A user message within 7 days reopens; the resolved time did not
	 * count against the clock. */
	assert_int_equal(ticket_user_message_check(
	                     &pol, &t, T0 + HOUR + DAY, &reopens, &why),
	    0);
	assert_true(reopens);
	ticket_status_apply(&pol, &t, OPEN, T0 + HOUR + DAY);
	assert_int_equal(t.status, OPEN);
	assert_int_equal(t.resolved_ms, 0);
	assert_int_equal(t.resolution_due_ms, res_due + DAY);
	/* After 7 days it does not. */
	ticket_status_apply(&pol, &t, RESOLVED, T0 + 2 * DAY);
	assert_int_equal(ticket_user_message_check(&pol, &t,
	                     T0 + 2 * DAY + 7 * DAY + 1, &reopens, &why),
	    OD_ESTATE);
	assert_non_null(why);
	/* Exactly 7 days still does. */
	assert_int_equal(ticket_user_message_check(
	                     &pol, &t, T0 + 2 * DAY + 7 * DAY, &reopens, &why),
	    0);
	/* Open and pending: a message never reopens, never fails. */
	t.status = PENDING;
	assert_int_equal(
	    ticket_user_message_check(&pol, &t, T0, &reopens, &why), 0);
	assert_false(reopens);
	/* Closed: terminal. */
	ticket_status_apply(&pol, &t, CLOSED, T0 + 3 * DAY);
	assert_int_equal(t.closed_ms, T0 + 3 * DAY);
	assert_int_equal(
	    ticket_user_message_check(&pol, &t, T0 + 3 * DAY, &reopens, &why),
	    OD_ESTATE);
	assert_int_equal(ticket_staff_change_check(&t, &why), OD_ESTATE);
	/* Closing an open ticket resolves it at the same time. */
	{
		tk_ticket o = new_ticket(1, 2);
		ticket_status_apply(&pol, &o, CLOSED, T0 + HOUR);
		assert_int_equal(o.resolved_ms, T0 + HOUR);
		assert_int_equal(o.closed_ms, T0 + HOUR);
		assert_false(o.resolution_breached);
	}
	/* Resolving late is a resolution breach. */
	{
		tk_ticket l = new_ticket(1, 2);
		ticket_status_apply(
		    &pol, &l, RESOLVED, l.resolution_due_ms + 1);
		assert_true(l.resolution_breached);
	}
}

static void
test_authorization(void **state)
{
	tk_ticket t = new_ticket(1, 2);
	tk_actor owner = OPSDESK__V1__ACTOR__INIT;
	tk_actor other = OPSDESK__V1__ACTOR__INIT;
	tk_actor admin = OPSDESK__V1__ACTOR__INIT;
	tk_actor nobody = OPSDESK__V1__ACTOR__INIT;

	(void) state;
	owner.user_id = 100;
	other.user_id = 200;
	admin.user_id = 300;
	admin.is_admin = true;
	/* A stranger learns nothing, whatever the act. */
	assert_int_equal(
	    ticket_authorize(&t, &other, TICKET_READ), OD_ENOTFOUND);
	assert_int_equal(
	    ticket_authorize(&t, &other, TICKET_OWNER_ACT), OD_ENOTFOUND);
	assert_int_equal(
	    ticket_authorize(&t, &other, TICKET_STAFF_ACT), OD_ENOTFOUND);
	/* An empty actor (user 0) is nobody's owner, even of user 0's. */
	assert_int_equal(
	    ticket_authorize(&t, &nobody, TICKET_READ), OD_ENOTFOUND);
	assert_int_equal(
	    ticket_authorize(&t, NULL, TICKET_READ), OD_ENOTFOUND);
	/* The owner reads and acts as the owner, not as staff. */
	assert_int_equal(ticket_authorize(&t, &owner, TICKET_READ), 0);
	assert_int_equal(ticket_authorize(&t, &owner, TICKET_OWNER_ACT), 0);
	assert_int_equal(
	    ticket_authorize(&t, &owner, TICKET_STAFF_ACT), OD_EPERM);
	/* An admin reads and works it, but does not rate it. */
	assert_int_equal(ticket_authorize(&t, &admin, TICKET_READ), 0);
	assert_int_equal(ticket_authorize(&t, &admin, TICKET_STAFF_ACT), 0);
	assert_int_equal(
	    ticket_authorize(&t, &admin, TICKET_OWNER_ACT), OD_EPERM);
}

static void
test_rating_rules(void **state)
{
	tk_ticket t = new_ticket(1, 2);
	const char *why;

	(void) state;
	assert_int_equal(ticket_rate_check(&t, 5, &why), OD_ESTATE);
	t.status = RESOLVED;
	assert_int_equal(ticket_rate_check(&t, 0, &why), OD_EINVAL);
	assert_int_equal(ticket_rate_check(&t, 6, &why), OD_EINVAL);
	assert_int_equal(ticket_rate_check(&t, 1, &why), 0);
	t.status = CLOSED;
	assert_int_equal(ticket_rate_check(&t, 5, &why), 0);
	t.rating = 4;
	assert_int_equal(ticket_rate_check(&t, 5, &why), OD_ESTATE);
}

static void
test_limits(void **state)
{
	char msg[256];

	(void) state;
	assert_int_equal(
	    ticket_limits_check(&pol, 2, 4, T0, T0, msg, sizeof(msg)), 0);
	assert_int_equal(
	    ticket_limits_check(&pol, 3, 0, 0, T0, msg, sizeof(msg)),
	    OD_ELIMIT);
	assert_non_null(strstr(msg, "3 open tickets"));
	assert_non_null(strstr(msg, "/ticket"));
	/* The oldest creation in the hour was 40 min ago: 20 min to wait. */
	assert_int_equal(ticket_limits_check(
	                     &pol, 0, 5, T0 - 40 * MIN, T0, msg, sizeof(msg)),
	    OD_ELIMIT);
	assert_non_null(strstr(msg, "in the last hour"));
	assert_non_null(strstr(msg, "20 min"));
	/* 0 disables a limit. */
	pol.open_per_user = 0;
	pol.creations_per_hour = 0;
	assert_int_equal(
	    ticket_limits_check(&pol, 1000, 1000, T0, T0, msg, sizeof(msg)),
	    0);
}

static void
test_subject_from_text(void **state)
{
	char long_text[600];
	char *s;

	(void) state;
	s = ticket_subject_from_text("  Login fails  \nsince this morning");
	assert_string_equal(s, "Login fails");
	free(s);
	/* 2-byte characters: a cut never splits one. */
	for (size_t i = 0; i + 2 < sizeof(long_text); i += 2) {
		long_text[i] = (char) 0xD0;
		long_text[i + 1] = (char) 0xB9;
		long_text[i + 2] = '\0';
	}
	s = ticket_subject_from_text(long_text);
	assert_true(strlen(s) < TICKET_MAX_SUBJECT);
	assert_int_equal(strlen(s) % 2, 0);
	free(s);
	s = ticket_subject_from_text(NULL);
	assert_string_equal(s, "");
	free(s);
}

static void
test_faq_score(void **state)
{
	char *tags[] = { "billing", "payment" };
	Opsdesk__V1__FaqEntry e = OPSDESK__V1__FAQ_ENTRY__INIT;

	(void) state;
	e.question = "How do I reset my password?";
	e.answer = "Use the Forgot link on the login page.";
	e.tags = tags;
	e.n_tags = 2;
	assert_int_equal(ticket_faq_score(&e, "PASSWORD"), 3);
	assert_int_equal(ticket_faq_score(&e, "payment"), 2);
	assert_int_equal(ticket_faq_score(&e, "login"), 1);
	assert_int_equal(ticket_faq_score(&e, "reset password, login!"), 7);
	/* One-letter words and punctuation do not match everything. */
	assert_int_equal(ticket_faq_score(&e, "a ? !"), 0);
	assert_int_equal(ticket_faq_score(&e, "refund"), 0);
	assert_int_equal(ticket_faq_score(&e, ""), 0);
	assert_int_equal(ticket_faq_score(&e, NULL), 0);
}

static void
test_percentile(void **state)
{
	int64_t v[] = { 50, 10, 40, 20, 30, 60, 70, 80, 90, 100 };
	int64_t one[] = { 7 };

	(void) state;
	assert_int_equal(ticket_percentile(v, 10, 50), 50);
	assert_int_equal(ticket_percentile(v, 10, 90), 90);
	assert_int_equal(ticket_percentile(v, 10, 100), 100);
	assert_int_equal(ticket_percentile(one, 1, 50), 7);
	assert_int_equal(ticket_percentile(one, 1, 90), 7);
	assert_int_equal(ticket_percentile(NULL, 0, 50), -1);
}

static void
test_policy_from_config(void **state)
{
	const char *good
	    = "{\"sla\":{\"ultra\":{\"urgent\":{\"first_response\":\"15m\","
	      "\"resolution\":\"4h\"}}},\"limits\":{\"open_per_user\":10,"
	      "\"creations_per_hour\":0},\"reopen_days\":3}";
	const char *bad[] = {
		"{\"sla\":{\"gold\":{}}}",
		"{\"sla\":{\"pro\":{\"asap\":{}}}}",
		"{\"sla\":{\"pro\":{\"high\":{\"first_response\":\"soon\"}}}}",
		"{\"limits\":{\"open_per_user\":-1}}",
		"{\"reopen_days\":\"x\"}",
		"{\"reopen_dayz\":3}",
		"{\"limits\":{\"open_per_usr\":3}}",
		"{\"sla\":{\"pro\":{\"high\":{\"first_respons\":\"1h\"}}}}",
		"[]",
		"{\"ultra_chat\":\"chat\"}",
		"{\"ultra_chat\":1.5}",
		"{\"objectives\":{\"first_response\":0}}",
		"{\"objectives\":{\"first_response\":101}}",
		"{\"objectives\":{\"csat\":5.5}}",
		"{\"objectives\":{\"csat\":\"good\"}}",
		"{\"objectives\":{\"window\":\"36h\"}}",
		"{\"objectives\":{\"window\":\"2h\"}}",
		"{\"objectives\":{\"windows\":\"7d\"}}",
		"{\"objectives\":[]}",
	};
	ticket_policy p, before;
	char err[256];
	cJSON *j;

	(void) state;
	ticket_policy_defaults(&p);
	j = cJSON_Parse(good);
	assert_int_equal(ticket_policy_load(&p, j, err, sizeof(err)), 0);
	cJSON_Delete(j);
	assert_int_equal(p.sla[4][4].first_response_ms, 15 * MIN);
	assert_int_equal(p.sla[4][4].resolution_ms, 4 * HOUR);
	/* Untouched entries keep their defaults. */
	assert_int_equal(p.sla[4][2].first_response_ms, HOUR);
	assert_int_equal(p.open_per_user, 10);
	assert_int_equal(p.creations_per_hour, 0);
	assert_int_equal(p.reopen_ms, 3 * DAY);
	/* The defaults from the brief: 95 % in time, CSAT 4.0, 30 days. */
	assert_true(p.objectives.first_response_pct == 95);
	assert_true(p.objectives.csat_min == 4.0);
	assert_int_equal(p.objectives.window_days, 30);
	assert_int_equal(p.ultra_chat, 0);
	j = cJSON_Parse("{\"ultra_chat\":-1001234567890,\"objectives\":"
	                "{\"first_response\":99.5,\"csat\":4.5,"
	                "\"window\":\"7d\"}}");
	assert_int_equal(ticket_policy_load(&p, j, err, sizeof(err)), 0);
	cJSON_Delete(j);
	assert_int_equal(p.ultra_chat, -1001234567890LL);
	assert_true(p.objectives.first_response_pct == 99.5);
	assert_true(p.objectives.csat_min == 4.5);
	assert_int_equal(p.objectives.window_days, 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		before = p;
		err[0] = '\0';
		j = cJSON_Parse(bad[i]);
		assert_int_equal(
		    ticket_policy_load(&p, j, err, sizeof(err)), OD_EINVAL);
		cJSON_Delete(j);
		assert_non_null(strstr(err, "tickets"));
		/* A bad section changes nothing. */
		assert_memory_equal(&p, &before, sizeof(p));
	}
	assert_int_equal(ticket_policy_load(&p, NULL, err, sizeof(err)), 0);
	assert_int_equal(ticket_tier_parse("ultra"), 4);
	assert_int_equal(ticket_tier_parse("gold"), -1);
	assert_int_equal(ticket_priority_parse("urgent"), 4);
	assert_string_equal(ticket_status_name(PENDING), "pending");
}

/* What saving a ticket adds to the day aggregates: each first-response
 * clock once (met on its reply's day, missed on the day it was flagged),
 * each rating once. */
static void
test_support_changes(void **state)
{
	tk_ticket old = new_ticket(4, 2), t;
	ticket_support_day d[2];
	int64_t day[2];

	(void) state;
	ticket_sla_apply(&pol, &old);
	t = old;
	/* A create, a note, a pending: nothing concludes. */
	assert_int_equal(ticket_support_changes(NULL, &t, T0, day, d), 0);
	assert_int_equal(ticket_support_changes(&old, &t, T0, day, d), 0);
	/* The staff reply within the hour: met, on the reply's day. */
	ticket_sla_first_response(&t, T0 + 30 * MIN);
	assert_int_equal(
	    ticket_support_changes(&old, &t, T0 + 3 * DAY, day, d), 1);
	assert_int_equal(day[0], (T0 + 30 * MIN) / DAY);
	assert_int_equal(d[0].fr_met, 1);
	assert_int_equal(d[0].fr_missed, 0);
	/* Saved again (a second reply): not counted twice. */
	old = t;
	assert_int_equal(ticket_support_changes(&old, &t, T0, day, d), 0);

	/* Breached by the timer: missed on the day it was flagged; the late
	 * reply after it adds nothing. */
	old = new_ticket(4, 2);
	ticket_sla_apply(&pol, &old);
	t = old;
	ticket_sla_mark(&t, TICKET_CLOCK_FIRST_RESPONSE);
	assert_int_equal(
	    ticket_support_changes(&old, &t, T0 + 2 * DAY, day, d), 1);
	assert_int_equal(day[0], (T0 + 2 * DAY) / DAY);
	assert_int_equal(d[0].fr_missed, 1);
	old = t;
	ticket_sla_first_response(&t, T0 + 3 * DAY);
	assert_int_equal(ticket_support_changes(&old, &t, T0, day, d), 0);

	/* A late reply the timer had not seen yet: missed. */
	old = new_ticket(4, 2);
	ticket_sla_apply(&pol, &old);
	t = old;
	ticket_sla_first_response(&t, T0 + 2 * HOUR);
	assert_int_equal(
	    ticket_support_changes(&old, &t, T0 + 2 * HOUR, day, d), 1);
	assert_int_equal(d[0].fr_missed, 1);
	assert_int_equal(d[0].fr_met, 0);

	/* A rating counts once, on its day. */
	old = t;
	t.rating = 4;
	t.rated_ms = T0 + 5 * DAY;
	assert_int_equal(ticket_support_changes(&old, &t, T0, day, d), 1);
	assert_int_equal(day[0], (T0 + 5 * DAY) / DAY);
	assert_int_equal(d[0].csat_sum, 4);
	assert_int_equal(d[0].csat_count, 1);
	old = t;
	assert_int_equal(ticket_support_changes(&old, &t, T0, day, d), 0);

	/* The stored form round-trips; another length is refused. */
	ticket_support_day a = { 1, 2, 300, 4 }, b;
	uint8_t v[TICKET_SUPPORT_DAY_LEN];
	ticket_support_day_encode(&a, v);
	assert_int_equal(ticket_support_day_decode(v, sizeof(v), &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(
	    ticket_support_day_decode(v, sizeof(v) - 1, &b), OD_EMALFORMED);
}

/* The objectives' arithmetic: attainment, budget, met, no data. */
static void
test_objectives_eval(void **state)
{
	ticket_objectives o = { 95, 4.0, 30 };
	ticket_objective_result r[TICKET_N_OBJECTIVES];
	ticket_support_day s = { 0 };

	(void) state;
	/* No data: met, attainment 1, the whole budget left. */
	ticket_objectives_eval(&o, &s, r);
	assert_string_equal(r[0].name, "support_first_response");
	assert_string_equal(r[1].name, "support_csat");
	assert_true(r[0].met && r[1].met);
	assert_true(r[0].actual == -1 && r[1].actual == -1);
	assert_true(r[0].attainment_ratio == 1);
	assert_true(r[0].budget_remaining_ratio == 1);
	assert_int_equal(r[0].total, 0);

	/* 19 of 20 in time is exactly 95 %: met, the budget (1 miss of 20
	 * at 95 %) spent. */
	s.fr_met = 19;
	s.fr_missed = 1;
	ticket_objectives_eval(&o, &s, r);
	assert_true(r[0].met);
	assert_true(r[0].attainment_ratio == 0.95);
	assert_true(r[0].actual > 94.999 && r[0].actual < 95.001);
	assert_true(r[0].budget_remaining_ratio > -1e-9
	    && r[0].budget_remaining_ratio < 1e-9);
	assert_int_equal(r[0].good, 19);
	assert_int_equal(r[0].total, 20);
	assert_true(r[0].target_ratio == 0.95);

	/* 38 of 40: half of the budget (2 allowed misses) left. */
	s.fr_met = 38;
	s.fr_missed = 2;
	ticket_objectives_eval(&o, &s, r);
	assert_true(r[0].met);
	s.fr_met = 39;
	s.fr_missed = 1;
	ticket_objectives_eval(&o, &s, r);
	assert_true(r[0].budget_remaining_ratio > 0.499
	    && r[0].budget_remaining_ratio < 0.501);

	/* 18 of 20: missed, the budget overspent (2 misses of 1 allowed). */
	s.fr_met = 18;
	s.fr_missed = 2;
	ticket_objectives_eval(&o, &s, r);
	assert_false(r[0].met);
	assert_true(r[0].budget_remaining_ratio < -0.999
	    && r[0].budget_remaining_ratio > -1.001);

	/* CSAT: 4 ratings summing 15 average 3.75 < 4.0: missed; 16: met. */
	s.csat_sum = 15;
	s.csat_count = 4;
	ticket_objectives_eval(&o, &s, r);
	assert_false(r[1].met);
	assert_true(r[1].actual == 3.75);
	assert_true(r[1].attainment_ratio == 0.75);
	assert_true(r[1].target_ratio == 0.8);
	s.csat_sum = 16;
	ticket_objectives_eval(&o, &s, r);
	assert_true(r[1].met);
	assert_true(r[1].actual == 4.0);

	/* A 100 % target has no budget: any miss overspends it. */
	o.first_response_pct = 100;
	s.fr_met = 10;
	s.fr_missed = 0;
	ticket_objectives_eval(&o, &s, r);
	assert_true(r[0].met && r[0].budget_remaining_ratio == 1);
	s.fr_missed = 1;
	ticket_objectives_eval(&o, &s, r);
	assert_false(r[0].met);
	assert_true(r[0].budget_remaining_ratio < 0);
}

static void
test_faq_seed_check(void **state)
{
	char err[256];
	cJSON *j;

	(void) state;
	j = cJSON_Parse("[{\"question\":\"q\",\"answer\":\"a\","
	                "\"tags\":[\"t\"]}]");
	assert_int_equal(ticket_faq_seed_check(j, err, sizeof(err)), 0);
	cJSON_Delete(j);
	j = cJSON_Parse("[{\"question\":\"q\"}]");
	assert_int_equal(
	    ticket_faq_seed_check(j, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "faq[0]"));
	cJSON_Delete(j);
	j = cJSON_Parse("{}");
	assert_int_equal(
	    ticket_faq_seed_check(j, err, sizeof(err)), OD_EINVAL);
	cJSON_Delete(j);
	assert_int_equal(ticket_faq_seed_check(NULL, err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(
		    test_sla_targets_by_tier_and_priority, setup),
		cmocka_unit_test_setup(
		    test_sla_due_times_and_breach_once, setup),
		cmocka_unit_test_setup(
		    test_sla_first_response_stops_clock, setup),
		cmocka_unit_test_setup(
		    test_sla_pending_pauses_both_clocks, setup),
		cmocka_unit_test_setup(
		    test_sla_priority_change_recomputes, setup),
		cmocka_unit_test_setup(test_transitions, setup),
		cmocka_unit_test_setup(test_resolve_close_and_reopen, setup),
		cmocka_unit_test_setup(test_authorization, setup),
		cmocka_unit_test_setup(test_rating_rules, setup),
		cmocka_unit_test_setup(test_limits, setup),
		cmocka_unit_test_setup(test_subject_from_text, setup),
		cmocka_unit_test_setup(test_faq_score, setup),
		cmocka_unit_test_setup(test_percentile, setup),
		cmocka_unit_test_setup(test_policy_from_config, setup),
		cmocka_unit_test_setup(test_faq_seed_check, setup),
		cmocka_unit_test_setup(test_support_changes, setup),
		cmocka_unit_test_setup(test_objectives_eval, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
