/*
 * Units of incident_core's pure logic: SLA clocks and breaches, lifecycle
 * transitions, the timers an incident implies, the automation's dedup and
 * maintenance decisions, checklist periods across month and year ends,
 * report bounds and MTTA/MTTR arithmetic, postmortem rendering, config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "incident_core.h"

#define T0   1795000000000LL /* 2026-11-18T09:46:40Z */
#define MIN  INC_MIN_MS
#define HOUR INC_HOUR_MS

static inc_config cfg;
static Opsdesk__V1__Actor alice
    = { PROTOBUF_C_MESSAGE_INIT(&opsdesk__v1__actor__descriptor), 42, true,
	      "alice", 0 };

static int
setup(void **state)
{
	(void) state;
	return inc_config_defaults(&cfg);
}

static int
teardown(void **state)
{
	(void) state;
	inc_config_free(&cfg);
	return 0;
}

static inc_incident *
new_incident(int sev, int64_t created)
{
	inc_incident *inc = inc_alloc();

	assert_non_null(inc);
	inc->id = 7;
	inc->severity = sev;
	inc->status = ST_INVESTIGATING;
	inc->created_ms = created;
	assert_int_equal(inc_set_str(&inc->title, "db down"), 0);
	inc_sla_start(&cfg, inc);
	assert_int_equal(inc_timeline_add(inc, created, NULL, ST_INVESTIGATING,
	                     "opened", true),
	    0);
	return inc;
}

static void
test_sla_dues(void **state)
{
	static const int64_t resp[]
	    = { 0, 15 * MIN, HOUR, 4 * HOUR, 24 * HOUR };
	static const int64_t resol[] = { 0, 4 * HOUR, 8 * HOUR, 24 * HOUR, 0 };
	(void) state;
	for (int s = SEV_CRITICAL; s <= SEV_LOW; s++) {
		inc_incident *inc = new_incident(s, T0);
		assert_int_equal(inc->response_due_ms, T0 + resp[s]);
		assert_int_equal(
		    inc->resolution_due_ms, resol[s] ? T0 + resol[s] : 0);
		inc_free(inc);
	}
}

static void
test_sla_breaches(void **state)
{
	inc_incident *inc = new_incident(SEV_CRITICAL, T0);

	(void) state;
	assert_int_equal(inc_sla_new_breaches(inc, T0 + 15 * MIN - 1), 0);
	assert_int_equal(
	    inc_sla_new_breaches(inc, T0 + 15 * MIN), INC_BREACH_RESPONSE);
	assert_false(inc_response_met(inc, T0 + 15 * MIN));
	assert_true(inc_response_met(inc, T0 + 15 * MIN - 1));
	inc->response_breached = true;
	assert_int_equal(
	    inc_sla_new_breaches(inc, T0 + 4 * HOUR), INC_BREACH_RESOLUTION);
	inc_free(inc);

	/* Acknowledged in time: the response clock never breaches. */
	inc = new_incident(SEV_HIGH, T0);
	assert_int_equal(inc_apply_ack(inc, T0 + 59 * MIN, &alice), 0);
	assert_int_equal(inc_sla_new_breaches(inc, T0 + 2 * HOUR), 0);
	assert_true(inc_response_met(inc, T0 + 9 * HOUR));
	assert_int_equal(
	    inc_sla_new_breaches(inc, T0 + 8 * HOUR), INC_BREACH_RESOLUTION);
	inc_free(inc);

	/* Low has no resolution clock. */
	inc = new_incident(SEV_LOW, T0);
	assert_int_equal(
	    inc_sla_new_breaches(inc, T0 + 1000 * HOUR), INC_BREACH_RESPONSE);
	assert_true(inc_resolution_met(inc, T0 + 1000 * HOUR));
	inc_free(inc);
}

static void
test_lifecycle(void **state)
{
	inc_incident *inc = new_incident(SEV_CRITICAL, T0);

	(void) state;
	assert_int_equal(inc_apply_ack(inc, T0 + MIN, &alice), 0);
	assert_true(inc->acknowledged);
	assert_int_equal(inc->acknowledged_by, 42);
	assert_string_equal(inc->acknowledged_by_name, "alice");
	assert_int_equal(inc->next_alert_ms, 0);
	assert_int_equal(inc_apply_ack(inc, T0 + 2 * MIN, &alice), OD_ESTATE);

	assert_int_equal(inc_apply_update(inc, T0 + 3 * MIN, &alice,
	                     ST_RESOLVED, "x", false),
	    OD_EINVAL);
	assert_int_equal(
	    inc_apply_update(inc, T0 + 3 * MIN, &alice, ST_NONE, "", false),
	    OD_EINVAL);
	assert_int_equal(inc_apply_update(inc, T0 + 3 * MIN, &alice,
	                     ST_IDENTIFIED, "bad index", true),
	    0);
	assert_int_equal(inc->status, ST_IDENTIFIED);
	assert_true(inc->taken_over);
	assert_int_equal(inc->n_timeline, 3);
	assert_false(inc->timeline[2]->public_);
	assert_string_equal(inc->timeline[2]->author_name, "alice");

	assert_int_equal(inc_apply_resolve(inc, T0 + HOUR, &alice, NULL), 0);
	assert_int_equal(inc->status, ST_RESOLVED);
	assert_int_equal(inc->resolved_ms, T0 + HOUR);
	assert_int_equal(
	    inc_apply_resolve(inc, T0 + HOUR, &alice, NULL), OD_ESTATE);
	assert_int_equal(inc_apply_update(inc, T0 + 2 * HOUR, &alice, ST_NONE,
	                     "late note", false),
	    OD_ESTATE);
	/* Resolved: no timers left. */
	inc_timer t[INC_MAX_TIMERS];
	assert_int_equal(inc_timers_of_incident(inc, t), 0);
	inc_free(inc);

	/* Resolving an unacknowledged one stops the response clock. */
	inc = new_incident(SEV_MEDIUM, T0);
	assert_int_equal(inc_apply_resolve(inc, T0 + MIN, NULL, ""), 0);
	assert_true(inc->acknowledged);
	assert_int_equal(inc->acknowledged_ms, T0 + MIN);
	assert_string_equal(inc->acknowledged_by_name, "system");
	inc_free(inc);
}

static void
test_recovery_and_relapse(void **state)
{
	inc_incident *inc = new_incident(SEV_HIGH, T0);
	inc_timer t[INC_MAX_TIMERS];
	size_t n;

	(void) state;
	inc->automatic = true;
	assert_int_equal(
	    inc_apply_recovery(inc, T0 + MIN, 10 * MIN, "db is up."), 0);
	assert_int_equal(inc->status, ST_MONITORING);
	assert_int_equal(inc->monitoring_ms, T0 + MIN);
	assert_int_equal(inc->auto_resolve_ms, T0 + 11 * MIN);
	n = inc_timers_of_incident(inc, t);
	assert_int_equal(n, 3); /* response, resolution, auto-resolve */
	assert_int_equal(t[2].kind, TMR_AUTORESOLVE);
	assert_int_equal(t[2].due_ms, T0 + 11 * MIN);

	/* Fails again: back to investigating, escalated, no auto-resolve. */
	assert_int_equal(
	    inc_apply_relapse(inc, T0 + 2 * MIN, SEV_CRITICAL, "down"), 0);
	assert_int_equal(inc->status, ST_INVESTIGATING);
	assert_int_equal(inc->severity, SEV_CRITICAL);
	assert_int_equal(inc->auto_resolve_ms, 0);
	assert_int_equal(inc->monitoring_ms, 0);

	/* A person took over: recovery is only a note. */
	assert_int_equal(inc_apply_update(inc, T0 + 3 * MIN, &alice,
	                     ST_IDENTIFIED, "on it", false),
	    0);
	size_t entries = inc->n_timeline;
	assert_int_equal(
	    inc_apply_recovery(inc, T0 + 4 * MIN, 10 * MIN, "db is up."), 0);
	assert_int_equal(inc->status, ST_IDENTIFIED);
	assert_int_equal(inc->auto_resolve_ms, 0);
	assert_int_equal(inc->n_timeline, entries + 1);
	inc_free(inc);
}

static void
test_timer_keys(void **state)
{
	inc_timer a = { T0 + 5, TMR_REALERT, 99 }, b;
	uint8_t k1[INC_TIMER_KEY_LEN], k2[INC_TIMER_KEY_LEN];

	(void) state;
	inc_timer_key(&a, k1);
	inc_timer_parse(k1, &b);
	assert_int_equal(b.due_ms, a.due_ms);
	assert_int_equal(b.kind, a.kind);
	assert_int_equal(b.id, a.id);
	/* Keys sort by due time first. */
	b.due_ms = T0 + 6;
	b.id = 1;
	inc_timer_key(&b, k2);
	assert_true(memcmp(k1, k2, sizeof(k1)) < 0);
}

static void
test_severity_for(void **state)
{
	(void) state;
	assert_int_equal(
	    inc_severity_for(SEV_CRITICAL, CS_DOWN), SEV_CRITICAL);
	assert_int_equal(
	    inc_severity_for(SEV_CRITICAL, CS_DEGRADED), SEV_HIGH);
	assert_int_equal(inc_severity_for(SEV_LOW, CS_DEGRADED), SEV_LOW);
	assert_int_equal(inc_severity_for(SEV_NONE, CS_DOWN), SEV_MEDIUM);
	assert_int_equal(inc_severity_for(SEV_NONE, CS_DEGRADED), SEV_LOW);
}

static void
test_auto_decide(void **state)
{
	inc_incident *open = new_incident(SEV_HIGH, T0);

	(void) state;
	/* Nothing open: down and degraded open one; up does nothing. */
	assert_int_equal(
	    inc_auto_decide(NULL, CS_UP, CS_DOWN, false), AUTO_OPEN);
	assert_int_equal(
	    inc_auto_decide(NULL, CS_UP, CS_DEGRADED, false), AUTO_OPEN);
	assert_int_equal(
	    inc_auto_decide(NULL, CS_DOWN, CS_UP, false), AUTO_NONE);
	/* Dedup: one open incident per component. */
	assert_int_equal(
	    inc_auto_decide(open, CS_DOWN, CS_DOWN, false), AUTO_NONE);
	assert_int_equal(
	    inc_auto_decide(open, CS_DEGRADED, CS_DOWN, false), AUTO_RELAPSE);
	assert_int_equal(
	    inc_auto_decide(open, CS_DOWN, CS_DEGRADED, false), AUTO_NOTE);
	assert_int_equal(
	    inc_auto_decide(open, CS_DOWN, CS_UP, false), AUTO_RECOVER);
	assert_int_equal(
	    inc_auto_decide(open, CS_UP, CS_UP, false), AUTO_NONE);
	/* Maintenance suppresses. */
	assert_int_equal(
	    inc_auto_decide(NULL, CS_UP, CS_DOWN, true), AUTO_NONE);
	assert_int_equal(
	    inc_auto_decide(NULL, CS_UP, CS_MAINTENANCE, false), AUTO_NONE);
	/* A resolved incident does not count as open. */
	open->status = ST_RESOLVED;
	assert_int_equal(
	    inc_auto_decide(open, CS_DOWN, CS_DOWN, false), AUTO_OPEN);
	inc_free(open);
}

static void
test_window_steps(void **state)
{
	inc_window w = OPSDESK__V1__MAINTENANCE_WINDOW__INIT;
	char *comps[] = { "db", "api" };
	inc_timer t[INC_MAX_TIMERS];

	(void) state;
	w.id = 3;
	w.components = comps;
	w.n_components = 2;
	w.start_ms = T0 + 2 * HOUR;
	w.end_ms = T0 + 3 * HOUR;
	w.remind_ms = T0 + HOUR;
	w.status = MS_SCHEDULED;
	assert_int_equal(inc_timers_of_window(&w, t), 2);
	assert_null(inc_window_step(&w, T0));
	assert_string_equal(inc_window_step(&w, T0 + HOUR), "reminder");
	assert_null(inc_window_step(&w, T0 + HOUR + 1));
	assert_int_equal(inc_timers_of_window(&w, t), 1);
	assert_false(inc_window_covers(&w, "db", T0 + HOUR));
	assert_true(inc_window_covers(&w, "db", T0 + 2 * HOUR));
	assert_false(inc_window_covers(&w, "web", T0 + 2 * HOUR));
	assert_string_equal(inc_window_step(&w, T0 + 2 * HOUR), "started");
	assert_int_equal(w.status, MS_IN_PROGRESS);
	assert_string_equal(inc_window_step(&w, T0 + 3 * HOUR), "completed");
	assert_null(inc_window_step(&w, T0 + 4 * HOUR));
	assert_false(inc_window_covers(&w, "db", T0 + 2 * HOUR));
	assert_int_equal(inc_timers_of_window(&w, t), 0);

	/* Started late (service down): the reminder is skipped. */
	w.status = MS_SCHEDULED;
	w.reminded = false;
	assert_string_equal(inc_window_step(&w, T0 + 2 * HOUR + 5), "started");
}

static int64_t
utc(const char *iso)
{
	int64_t ms;

	assert_int_equal(od_parse_iso8601(iso, &ms), 0);
	return ms;
}

static void
check_key(int period, const char *at, const char *want)
{
	char key[32];

	assert_int_equal(inc_period_key(period, utc(at), key, sizeof(key)), 0);
	assert_string_equal(key, want);
}

static void
test_period_keys(void **state)
{
	(void) state;
	check_key(CK_DAILY, "2026-11-30T23:59:59Z", "2026-11-30");
	check_key(CK_DAILY, "2026-12-01T00:00:00Z", "2026-12-01");
	check_key(CK_MONTHLY, "2026-12-31T23:59:59Z", "2026-12");
	check_key(CK_MONTHLY, "2027-01-01T00:00:00Z", "2027-01");
	check_key(CK_DAILY, "2028-02-29T12:00:00Z", "2028-02-29");
	/* ISO weeks start on Monday; a week belongs to its Thursday's
	 * year. */
	check_key(CK_WEEKLY, "2026-11-27T10:00:00Z", "2026-W48");
	check_key(CK_WEEKLY, "2026-11-29T23:59:59Z", "2026-W48"); /* Sun */
	check_key(CK_WEEKLY, "2026-11-30T00:00:00Z", "2026-W49"); /* Mon */
	check_key(CK_WEEKLY, "2026-12-31T12:00:00Z", "2026-W53");
	check_key(CK_WEEKLY, "2027-01-03T12:00:00Z", "2026-W53");
	check_key(CK_WEEKLY, "2027-01-04T00:00:00Z", "2027-W01");
	check_key(CK_WEEKLY, "2024-12-30T00:00:00Z", "2025-W01");
	check_key(CK_WEEKLY, "1970-01-01T00:00:00Z", "1970-W01");
	char key[32];
	assert_int_equal(inc_period_key(0, T0, key, sizeof(key)), OD_EINVAL);
}

static void
test_report_bounds(void **state)
{
	int64_t f, t;

	(void) state;
	assert_int_equal(inc_report_bounds(RP_DAY, 0, T0, &f, &t), 0);
	assert_int_equal(t, T0);
	assert_int_equal(f, T0 - 24 * HOUR);
	assert_int_equal(
	    inc_report_bounds(RP_DAY, utc("2026-11-27T13:05Z"), T0, &f, &t),
	    0);
	assert_int_equal(f, utc("2026-11-27T00:00Z"));
	assert_int_equal(t, utc("2026-11-28T00:00Z"));
	assert_int_equal(
	    inc_report_bounds(RP_WEEK, utc("2026-11-29T23:00Z"), T0, &f, &t),
	    0);
	assert_int_equal(f, utc("2026-11-23T00:00Z"));
	assert_int_equal(t, utc("2026-11-30T00:00Z"));
	assert_int_equal(
	    inc_report_bounds(RP_MONTH, utc("2028-02-10T05:00Z"), T0, &f, &t),
	    0);
	assert_int_equal(f, utc("2028-02-01T00:00Z"));
	assert_int_equal(t, utc("2028-03-01T00:00Z"));
	assert_int_equal(
	    inc_report_bounds(RP_MONTH, utc("2026-12-31T23:00Z"), T0, &f, &t),
	    0);
	assert_int_equal(t, utc("2027-01-01T00:00Z"));
	assert_int_equal(inc_report_bounds(9, 0, T0, &f, &t), OD_EINVAL);
}

static void
test_mtta_mttr(void **state)
{
	inc_report_acc acc;
	inc_report r = OPSDESK__V1__REPORT__INIT;
	inc_incident *a = new_incident(SEV_CRITICAL, T0);
	inc_incident *b = new_incident(SEV_HIGH, T0);
	inc_incident *c = new_incident(SEV_LOW, T0);

	(void) state;
	memset(&acc, 0, sizeof(acc));
	/* a: ack 5 min, resolved 1 h: within SLA. */
	inc_apply_ack(a, T0 + 5 * MIN, &alice);
	inc_apply_resolve(a, T0 + HOUR, &alice, NULL);
	/* b: ack 2 h (breach of 1 h), resolved 3 h. */
	inc_apply_ack(b, T0 + 2 * HOUR, &alice);
	inc_apply_resolve(b, T0 + 3 * HOUR, &alice, NULL);
	/* c: open, unacknowledged, not yet due. */
	inc_report_add(&acc, a, T0 + 4 * HOUR);
	inc_report_add(&acc, b, T0 + 4 * HOUR);
	inc_report_add(&acc, c, T0 + 4 * HOUR);
	assert_int_equal(inc_report_finish(&acc, &r), 0);
	assert_int_equal(r.incidents_total, 3);
	assert_int_equal(r.mtta_ms, (5 * MIN + 2 * HOUR) / 2);
	assert_int_equal(r.mttr_ms, (HOUR + 3 * HOUR) / 2);
	assert_true(r.sla_percent > 66.6 && r.sla_percent < 66.7);
	assert_int_equal(r.n_incidents, 4);
	assert_int_equal(r.incidents[0]->severity, SEV_CRITICAL);
	assert_int_equal(r.incidents[0]->count, 1);
	assert_int_equal(r.incidents[2]->count, 0);

	sbuf b2 = SBUF_INIT;
	r.period = RP_DAY;
	assert_int_equal(inc_report_text(&r, &b2), 0);
	assert_non_null(strstr(sbuf_str(&b2), "MTTA: 1h 2m, MTTR: 2h"));
	assert_non_null(strstr(sbuf_str(&b2), "within SLA: 66.7%"));
	assert_non_null(strstr(sbuf_str(&b2), "Uptime: unavailable"));
	assert_non_null(strstr(sbuf_str(&b2), "Tickets: unavailable"));
	sbuf_free(&b2);

	/* The support objectives of ticket-service's stats: met or missed,
	 * and no data said as such. */
	Opsdesk__V1__ReportSupportObjective o[3],
	    *ov[3] = { &o[0], &o[1], &o[2] };
	for (int i = 0; i < 3; i++) {
		opsdesk__v1__report_support_objective__init(&o[i]);
		o[i].window_days = 30;
	}
	o[0].name = "support_first_response";
	o[0].target = 95;
	o[0].actual = 97.5;
	o[0].total = 40;
	o[0].met = true;
	o[1].name = "support_csat";
	o[1].target = 4;
	o[1].actual = 3.5;
	o[1].total = 2;
	o[2].name = "support_csat";
	o[2].target = 4.5;
	o[2].actual = -1;
	r.support_objectives = ov;
	r.n_support_objectives = 3;
	inc_report_support_text(&r, &b2);
	assert_non_null(strstr(sbuf_str(&b2), "Support objectives (30 d):"));
	assert_non_null(strstr(sbuf_str(&b2),
	    "first response within SLA: 97.5% (target 95%, 40 tickets) — "
	    "met"));
	assert_non_null(strstr(
	    sbuf_str(&b2), "CSAT: 3.50 (target 4, 2 ratings) — MISSED"));
	assert_non_null(strstr(sbuf_str(&b2), "CSAT: no data (target 4.5)"));
	r.support_objectives = NULL;
	r.n_support_objectives = 0;
	sbuf_free(&b2);
	for (size_t i = 0; i < r.n_incidents; i++) {
		protobuf_c_message_free_unpacked(&r.incidents[i]->base, NULL);
	}
	free(r.incidents);

	/* No incidents: no data, not zero. */
	inc_report r0 = OPSDESK__V1__REPORT__INIT;
	memset(&acc, 0, sizeof(acc));
	assert_int_equal(inc_report_finish(&acc, &r0), 0);
	assert_int_equal(r0.mtta_ms, -1);
	assert_int_equal(r0.mttr_ms, -1);
	assert_true(r0.sla_percent < 0);
	for (size_t i = 0; i < r0.n_incidents; i++) {
		protobuf_c_message_free_unpacked(&r0.incidents[i]->base, NULL);
	}
	free(r0.incidents);
	inc_free(a);
	inc_free(b);
	inc_free(c);
}

static void
test_postmortem(void **state)
{
	inc_incident *inc
	    = new_incident(SEV_CRITICAL, utc("2026-11-27T10:00Z"));
	inc_postmortem *pm;
	sbuf b = SBUF_INIT;
	const char *md;

	(void) state;
	inc->automatic = true;
	assert_int_equal(inc_add_component(inc, "db", "Database", CS_DOWN), 0);
	inc_apply_ack(inc, utc("2026-11-27T10:05Z"), &alice);
	inc_apply_update(inc, utc("2026-11-27T10:20Z"), &alice, ST_NONE,
	    "failover started", true);
	inc_apply_resolve(inc, utc("2026-11-27T15:00Z"), &alice, "fixed");
	pm = inc_pm_generate(&cfg, inc, utc("2026-11-27T15:00Z"));
	assert_non_null(pm);
	assert_int_equal(pm->time_to_ack_ms, 5 * MIN);
	assert_int_equal(pm->time_to_resolve_ms, 5 * HOUR);
	assert_int_equal(pm->response_sla_ms, 15 * MIN);
	assert_true(pm->response_met);
	assert_false(pm->resolution_met); /* 5 h > 4 h */
	assert_int_equal(pm->n_timeline, 4);
	assert_int_equal(pm->tickets_opened, -1);
	assert_int_equal(inc_pm_markdown(pm, &b), 0);
	md = sbuf_str(&b);
	assert_non_null(strstr(md, "# Postmortem: INC-7 db down"));
	assert_non_null(strstr(md, "**Severity:** critical"));
	assert_non_null(
	    strstr(md, "2026-11-27T10:00:00Z to 2026-11-27T15:00:00Z (5h)"));
	assert_non_null(strstr(md, "Database (down)"));
	assert_non_null(
	    strstr(md, "| time to acknowledge | 5m | 15m | yes |"));
	assert_non_null(strstr(md, "| time to resolve | 5h | 4h | **no** |"));
	assert_non_null(strstr(md, "alice (internal): failover started"));
	assert_non_null(strstr(md, "_ticket-service did not answer_"));
	assert_non_null(strstr(md, "_to be filled in_"));
	assert_non_null(strstr(pm->summary, "Critical incident INC-7"));
	sbuf_free(&b);
	inc_pm_free(pm);
	inc_free(inc);
}

/* Health events strictly within the impact window plus the margin, and a
 * summary that agrees with the window's duration. */
static void
test_postmortem_window(void **state)
{
	inc_incident *inc
	    = new_incident(SEV_CRITICAL, utc("2026-11-27T10:00Z"));
	inc_postmortem *pm;
	int64_t from, to, t0 = utc("2026-11-27T10:00Z");
	Opsdesk__V1__HealthChanged ev[5];
	Opsdesk__V1__HealthChanged *evp[5];
	Opsdesk__V1__TransitionList tl = OPSDESK__V1__TRANSITION_LIST__INIT;
	inc_pm_peers peers;
	/* start-up, an earlier outage, down, up, a later flap */
	const int64_t at[5] = { t0 - HOUR, t0 - 10 * MIN, t0 - 20000,
		t0 + 7000, t0 + 5 * MIN };

	(void) state;
	inc->monitoring_ms = t0 + 7000; /* recovered after 7 s */
	inc_apply_resolve(inc, t0 + 10000, &alice, "stable");
	pm = inc_pm_generate(&cfg, inc, t0 + 10000);
	assert_non_null(pm);
	assert_int_equal(pm->impact_end_ms - pm->impact_start_ms, 7000);
	assert_int_equal(pm->time_to_resolve_ms, 10000);
	assert_non_null(strstr(pm->summary, "lasted 7s"));
	inc_pm_window(pm, 30000, &from, &to);
	assert_int_equal(from, t0 - 30000);
	assert_int_equal(to, t0 + 37000);
	for (int i = 0; i < 5; i++) {
		opsdesk__v1__health_changed__init(&ev[i]);
		ev[i].target_id = (char *) "db";
		ev[i].at_ms = at[i];
		evp[i] = &ev[i];
	}
	tl.n_transitions = 5;
	tl.transitions = evp;
	memset(&peers, 0, sizeof(peers));
	assert_true(inc_pm_take_events(&peers, &tl, from, to));
	assert_int_equal(peers.n_events, 2); /* down and up only */
	assert_non_null(strstr(peers.events[0], "09:59:40"));
	inc_pm_peers_free(&peers);
	/* No margin: only what happened inside the impact window. */
	inc_pm_window(pm, 0, &from, &to);
	assert_true(inc_pm_take_events(&peers, &tl, from, to));
	assert_int_equal(peers.n_events, 1);
	inc_pm_peers_free(&peers);
	inc_pm_free(pm);
	inc_free(inc);
}

static void
test_config(void **state)
{
	static const char good[]
	    = "{\"incidents\": {\"sla\": {\"critical\": {\"response\": "
	      "\"10m\"},"
	      " \"low\": {\"resolution\": \"7d\"}},"
	      " \"runbooks\": {\"high\": \"call bob\"},"
	      " \"realert\": {\"critical\": \"1m\", \"high\": 0},"
	      " \"stable_period\": \"2s\"},"
	      " \"checklists\": {\"daily\": [\"check backups\","
	      " {\"id\": \"certs\", \"text\": \"check certificates\"}],"
	      " \"monthly\": [\"rotate keys\"]},"
	      " \"maintenance\": {\"reminder_before\": \"30m\"}}";
	static const char *const bad[] = {
		"{\"incidents\": {\"stable_period\": \"soon\"}}",
		"{\"incidents\": {\"sla\": {\"high\": {\"response\": true}}}}",
		"{\"checklists\": {\"daily\": [1]}}",
		/* one literal per entry: clang warns on a split one */
		"{\"checklists\": {\"weekly\": [\"a\", {\"id\": \"1\", "
		"\"text\": \"dup\"}]}}",
		"{\"incidents\": {\"stable_perod\": \"1m\"}}",
		"{\"incidents\": {\"sla\": {\"critcal\": {}}}}",
		"{\"maintenance\": {\"reminder\": \"1m\"}}",
		"{\"checklists\": {\"daily\": [{\"id\": \"a\", \"txt\": "
		"\"b\"}]}}",
	};
	static const char *const where[]
	    = { "incidents.stable_period", "incidents.sla.high.response",
		      "checklists.daily[0]", "checklists.weekly[1]",
		      "incidents.stable_perod: unknown key, did you mean "
		      "\"stable_period\"?",
		      "incidents.sla.critcal: unknown key, did you mean "
		      "\"critical\"?",
		      "maintenance.reminder: unknown key, did you mean "
		      "\"reminder_before\"?",
		      "checklists.daily[0].txt: unknown key, did you mean "
		      "\"text\"?" };
	char err[256];
	config *c = NULL;
	inc_config ic;

	(void) state;
	assert_int_equal(config_load_string(&c, "incident-service", NULL, good,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(inc_config_defaults(&ic), 0);
	assert_int_equal(inc_config_parse(&ic, c->root, err, sizeof(err)), 0);
	assert_int_equal(ic.response_ms[SEV_CRITICAL], 10 * MIN);
	assert_int_equal(ic.resolution_ms[SEV_CRITICAL], 4 * HOUR);
	assert_int_equal(ic.resolution_ms[SEV_LOW], 7 * 24 * HOUR);
	assert_string_equal(ic.runbook[SEV_HIGH], "call bob");
	assert_int_equal(ic.realert_ms[SEV_CRITICAL], MIN);
	assert_int_equal(ic.realert_ms[SEV_HIGH], 0);
	assert_int_equal(ic.stable_period_ms, 2000);
	assert_int_equal(ic.reminder_before_ms, 30 * MIN);
	assert_int_equal(ic.lists[CK_DAILY].n_items, 2);
	assert_string_equal(ic.lists[CK_DAILY].items[0].id, "1");
	assert_string_equal(ic.lists[CK_DAILY].items[1].id, "certs");
	assert_int_equal(ic.lists[CK_WEEKLY].n_items, 0);
	assert_int_equal(ic.lists[CK_MONTHLY].n_items, 1);
	inc_config_free(&ic);
	config_free(c);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The schema (unknown keys, JSON types) is checked as the
		 * file loads; ranges and meanings by inc_config_parse. */
		c = NULL;
		if (config_load_string(
		        &c, "incident-service", NULL, bad[i], err, sizeof(err))
		    != 0) {
			assert_null(c);
			if (strstr(err, where[i]) == NULL) {
				fail_msg("case %zu: \"%s\" lacks %s", i, err,
				    where[i]);
			}
			continue;
		}
		assert_int_equal(inc_config_defaults(&ic), 0);
		err[0] = '\0';
		assert_int_equal(
		    inc_config_parse(&ic, c->root, err, sizeof(err)),
		    OD_EINVAL);
		assert_non_null(strstr(err, where[i]));
		config_free(c);
	}
}

/* Automatic incidents' public wording: defaults, config override,
 * placeholder expansion, truncation, bad values named by key. */
static void
test_public_templates(void **state)
{
	static const char *good
	    = "{\"status_page\": {\"templates\": {\"down\": "
	      "\"{component} is unavailable; {component} team is on it.\"}}}";
	char err[256], out[64];
	config *c = NULL;
	inc_config ic;

	(void) state;
	assert_int_equal(inc_config_defaults(&ic), 0);
	inc_public_text(
	    &ic, INC_TMPL_DEGRADED, "Web application", out, sizeof(out));
	assert_string_equal(out,
	    "We are investigating degraded performance of Web application.");
	inc_public_text(&ic, INC_TMPL_DOWN, "API", out, sizeof(out));
	assert_string_equal(out, "We are investigating an outage of API.");
	inc_public_text(&ic, INC_TMPL_DOWN, "API", out, 8);
	assert_string_equal(out, "We are ");
	inc_config_free(&ic);

	assert_int_equal(config_load_string(&c, "incident-service", NULL, good,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(inc_config_defaults(&ic), 0);
	assert_int_equal(inc_config_parse(&ic, c->root, err, sizeof(err)), 0);
	inc_public_text(&ic, INC_TMPL_DOWN, "DB", out, sizeof(out));
	assert_string_equal(out, "DB is unavailable; DB team is on it.");
	inc_public_text(&ic, INC_TMPL_RESOLVED, "DB", out, sizeof(out));
	assert_string_equal(
	    out, "This incident has been resolved. DB is operating normally.");
	inc_config_free(&ic);
	config_free(c);

	assert_int_equal(config_load_string(&c, "incident-service", NULL,
	                     "{\"status_page\": {\"templates\": "
	                     "{\"monitoring\": 3}}}",
	                     err, sizeof(err)),
	    0);
	assert_int_equal(inc_config_defaults(&ic), 0);
	assert_int_equal(
	    inc_config_parse(&ic, c->root, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "status_page.templates.monitoring"));
	config_free(c);
}

int
main(void)
{
	/* What is asserted must not depend on the shell running the tests. */
	config_env_clear();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sla_dues),
		cmocka_unit_test(test_sla_breaches),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_recovery_and_relapse),
		cmocka_unit_test(test_timer_keys),
		cmocka_unit_test(test_severity_for),
		cmocka_unit_test(test_auto_decide),
		cmocka_unit_test(test_public_templates),
		cmocka_unit_test(test_window_steps),
		cmocka_unit_test(test_period_keys),
		cmocka_unit_test(test_report_bounds),
		cmocka_unit_test(test_mtta_mttr),
		cmocka_unit_test(test_postmortem),
		cmocka_unit_test(test_postmortem_window),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
