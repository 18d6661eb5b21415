/*
 * Units of incident_core on a real store, with the injectable clock (no
 * sleeping through SLAs): the automation's dedup and recovery, maintenance
 * suppression, SLA breach and re-alert timers, the alert log's replay,
 * maintenance windows' steps and checklist periods.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "incident_core.h"
#include "store/store.h"

#define T0         1795000000000LL
#define MIN        INC_MIN_MS
#define HOUR       INC_HOUR_MS
#define MAX_EVENTS 64

static int64_t now_ms;
static inc_service svc;
static char dir[64];
static char topics[MAX_EVENTS][64];
static int n_topics;
static Opsdesk__V1__Actor alice
    = { PROTOBUF_C_MESSAGE_INIT(&opsdesk__v1__actor__descriptor), 42, true,
	      "alice", 0 };

static int64_t
fake_clock(void *arg)
{
	(void) arg;
	return now_ms;
}

static void
record(void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	(void) arg;
	(void) env;
	if (n_topics < MAX_EVENTS) {
		snprintf(topics[n_topics++], sizeof(topics[0]), "%s", topic);
	}
}

static int
count_topic(const char *topic)
{
	int n = 0;

	for (int i = 0; i < n_topics; i++) {
		n += strcmp(topics[i], topic) == 0;
	}
	return n;
}

static int
setup(void **state)
{
	store_options so = { 0 };

	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/inc_store_test.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	memset(&svc, 0, sizeof(svc));
	if (inc_config_defaults(&svc.cfg) != 0) {
		return -1;
	}
	svc.cfg.lists[CK_DAILY].items = calloc(1, sizeof(inc_check_item));
	svc.cfg.lists[CK_DAILY].items[0].id = strdup("backups");
	svc.cfg.lists[CK_DAILY].items[0].text = strdup("check backups");
	svc.cfg.lists[CK_DAILY].n_items = 1;
	so.path = dir;
	so.dbs = inc_db_names;
	if (store_open(&svc.st, &so) != 0) {
		return -1;
	}
	svc.hook = record;
	n_topics = 0;
	now_ms = T0;
	od_clock_set(fake_clock, NULL);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void) state;
	store_close(svc.st);
	inc_config_free(&svc.cfg);
	od_clock_set(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

typedef struct job {
	int (*fn)(inc_tx *tx, void *arg);
	void *arg;
} job;

static int
job_run(store_txn *txn, void *arg)
{
	job *j = arg;
	inc_tx tx = { &svc, txn, store_txn_now_ms(txn), NULL };

	return j->fn(&tx, j->arg);
}

static int
in_job(int (*fn)(inc_tx *tx, void *arg), void *arg)
{
	job j = { fn, arg };

	return store_write(svc.st, job_run, &j);
}

static int
health_fn(inc_tx *tx, void *arg)
{
	return inc_auto_apply(tx, arg);
}

static void
health(const char *id, int state, int criticality)
{
	Opsdesk__V1__HealthChanged hc = OPSDESK__V1__HEALTH_CHANGED__INIT;

	hc.target_id = (char *) id;
	hc.name = (char *) id;
	hc.new_state = state;
	hc.criticality = criticality;
	hc.public_ = true;
	hc.reason = "Failed to connect to 10.1.2.3 port 5432";
	assert_int_equal(in_job(health_fn, &hc), 0);
}

static inc_incident *
get(uint64_t id)
{
	MDB_txn *txn;
	inc_incident *inc = NULL;

	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(inc_load(txn, &svc, id, &inc), 0);
	store_read_end(txn);
	return inc;
}

static uint64_t
counter(const char *name)
{
	MDB_txn *txn;
	uint64_t v = 0;

	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(store_counter(txn, svc.st, name, &v), 0);
	store_read_end(txn);
	return v;
}

static void
tick(int64_t at)
{
	now_ms = at;
	assert_int_equal(inc_timers_run(&svc, NULL), 0);
}

static int
pm_edit_fn(inc_tx *tx, void *arg)
{
	inc_postmortem *pm = NULL;
	int rv = inc_pm_edit(tx, arg, &pm);

	inc_pm_free(pm);
	return rv;
}

static void
test_auto_open_dedup_recover(void **state)
{
	inc_incident *inc;

	(void) state;
	health("db", CS_UP, SEV_CRITICAL);
	assert_int_equal(counter("incident"), 0);
	health("db", CS_DOWN, SEV_CRITICAL);
	assert_int_equal(counter("incident"), 1);
	assert_int_equal(count_topic("incident.opened"), 1);
	assert_int_equal(count_topic("alert.incident"), 1);
	inc = get(1);
	assert_int_equal(inc->severity, SEV_CRITICAL);
	assert_true(inc->automatic);
	assert_string_equal(inc->dedup_key, "component:db");
	assert_string_equal(inc->components[0]->component_id, "db");
	/* The public entry is the template; the probe's error (address,
	 * port) is only in the internal one. */
	assert_int_equal(inc->n_timeline, 2);
	assert_true(inc->timeline[0]->public_);
	assert_string_equal(
	    inc->timeline[0]->text, "We are investigating an outage of db.");
	assert_false(inc->timeline[1]->public_);
	assert_non_null(strstr(inc->timeline[1]->text, "10.1.2.3 port 5432"));
	inc_free(inc);

	/* The same state again, and a replay: nothing new. */
	health("db", CS_DOWN, SEV_CRITICAL);
	health("db", CS_DEGRADED, SEV_CRITICAL);
	assert_int_equal(counter("incident"), 1);
	assert_int_equal(count_topic("incident.opened"), 1);

	/* Recovery: monitoring, then resolved after the stable period. */
	now_ms = T0 + MIN;
	health("db", CS_UP, SEV_CRITICAL);
	inc = get(1);
	assert_int_equal(inc->status, ST_MONITORING);
	assert_int_equal(inc->auto_resolve_ms, T0 + 11 * MIN);
	inc_free(inc);
	tick(T0 + 11 * MIN - 1);
	inc = get(1);
	assert_int_equal(inc->status, ST_MONITORING);
	inc_free(inc);
	tick(T0 + 11 * MIN);
	inc = get(1);
	assert_int_equal(inc->status, ST_RESOLVED);
	assert_int_equal(inc->resolved_ms, T0 + 11 * MIN);
	for (size_t i = 0; i < inc->n_timeline; i++) {
		assert_true(!inc->timeline[i]->public_
		    || strstr(inc->timeline[i]->text, "10.1.2.3") == NULL);
	}
	assert_string_equal(inc->timeline[inc->n_timeline - 1]->text,
	    "This incident has been resolved. db is operating normally.");
	inc_free(inc);
	assert_int_equal(count_topic("incident.resolved"), 1);

	/* A postmortem was written with the resolve. */
	MDB_txn *txn;
	inc_postmortem *pm = NULL;
	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(inc_pm_load(txn, &svc, 1, &pm), 0);
	store_read_end(txn);
	assert_int_equal(pm->time_to_resolve_ms, 11 * MIN);
	assert_int_equal(pm->impact_end_ms, T0 + MIN); /* the recovery */
	inc_pm_free(pm);

	/* Admins fill it in: root cause, action items, done, removed. */
	Opsdesk__V1__EditPostmortemRequest e
	    = OPSDESK__V1__EDIT_POSTMORTEM_REQUEST__INIT;
	Opsdesk__V1__ActionItem ai = OPSDESK__V1__ACTION_ITEM__INIT;
	e.incident_id = 1;
	e.root_cause = "disk full";
	e.add_action = &ai;
	ai.text = "alert on disk";
	ai.owner = "bob";
	assert_int_equal(in_job(pm_edit_fn, &e), 0);
	e.root_cause = "";
	ai.text = "grow the disk";
	assert_int_equal(in_job(pm_edit_fn, &e), 0);
	e.add_action = NULL;
	e.done_action = 3; /* there are two */
	assert_int_equal(in_job(pm_edit_fn, &e), OD_EINVAL);
	e.done_action = 2;
	e.remove_action = 1;
	assert_int_equal(in_job(pm_edit_fn, &e), 0);
	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(inc_pm_load(txn, &svc, 1, &pm), 0);
	store_read_end(txn);
	assert_string_equal(pm->root_cause, "disk full");
	assert_int_equal(pm->n_actions, 1);
	assert_string_equal(pm->actions[0]->text, "grow the disk");
	assert_true(pm->actions[0]->done);
	inc_pm_free(pm);
	e.done_action = e.remove_action = 0;
	assert_int_equal(in_job(pm_edit_fn, &e), OD_EINVAL); /* nothing */

	/* Down again after resolve: a new incident. */
	health("db", CS_DOWN, SEV_CRITICAL);
	assert_int_equal(counter("incident"), 2);
}

static void
test_escalation_alerts_and_tightens_sla(void **state)
{
	inc_incident *inc;

	(void) state;
	/* A high component degraded: a medium incident, no alert. */
	health("api", CS_DEGRADED, SEV_HIGH);
	inc = get(1);
	assert_int_equal(inc->severity, SEV_MEDIUM);
	assert_int_equal(inc->response_due_ms, T0 + 4 * HOUR);
	inc_free(inc);
	assert_int_equal(count_topic("alert.incident"), 0);
	/* Then down: the same incident, now high, alerted, 1 h clock. */
	now_ms = T0 + 10 * MIN;
	health("api", CS_DOWN, SEV_HIGH);
	assert_int_equal(counter("incident"), 1);
	inc = get(1);
	assert_int_equal(inc->severity, SEV_HIGH);
	assert_int_equal(inc->response_due_ms, T0 + HOUR);
	assert_int_equal(inc->resolution_due_ms, T0 + 8 * HOUR);
	assert_int_equal(inc->next_alert_ms, T0 + 25 * MIN);
	inc_free(inc);
	assert_int_equal(count_topic("alert.incident"), 1);
	tick(T0 + HOUR);
	assert_int_equal(count_topic("alert.response_sla"), 1);
}

static int
mnt_fn(inc_tx *tx, void *arg)
{
	char err[128];

	return inc_mnt_create(tx, arg, &alice, NULL, err, sizeof(err));
}

static void
test_maintenance_suppresses(void **state)
{
	Opsdesk__V1__CreateMaintenanceRequest r
	    = OPSDESK__V1__CREATE_MAINTENANCE_REQUEST__INIT;
	char *comps[] = { "api" };

	(void) state;
	r.title = "upgrade";
	r.components = comps;
	r.n_components = 1;
	r.start_ms = T0;
	r.end_ms = T0 + HOUR;
	assert_int_equal(in_job(mnt_fn, &r), 0);
	assert_int_equal(count_topic("maintenance.scheduled"), 1);
	assert_int_equal(count_topic("maintenance.started"), 1);
	health("api", CS_DOWN, SEV_HIGH);
	health("web", CS_DOWN, SEV_HIGH);
	assert_int_equal(counter("incident"), 1); /* web only */
	inc_incident *inc = get(1);
	assert_string_equal(inc->dedup_key, "component:web");
	inc_free(inc);
	tick(T0 + HOUR);
	assert_int_equal(count_topic("maintenance.completed"), 1);
	/* Still down when the window is over: now it gets its incident. */
	assert_int_equal(counter("incident"), 2);
	inc = get(2);
	assert_string_equal(inc->dedup_key, "component:api");
	inc_free(inc);
}

static void
test_maintenance_reminder(void **state)
{
	Opsdesk__V1__CreateMaintenanceRequest r
	    = OPSDESK__V1__CREATE_MAINTENANCE_REQUEST__INIT;
	char *comps[] = { "db" };
	char err[128] = "";

	(void) state;
	r.title = "";
	r.components = comps;
	r.n_components = 1;
	r.start_ms = T0 + 3 * HOUR;
	r.end_ms = T0 + 4 * HOUR;
	/* Bad input changes nothing. */
	assert_int_equal(in_job(mnt_fn, &r), OD_EINVAL);
	(void) err;
	r.title = "db upgrade";
	assert_int_equal(in_job(mnt_fn, &r), 0);
	assert_int_equal(counter("maintenance"), 1);
	tick(T0 + 2 * HOUR - 1);
	assert_int_equal(count_topic("maintenance.reminder"), 0);
	tick(T0 + 2 * HOUR);
	assert_int_equal(count_topic("maintenance.reminder"), 1);
	tick(T0 + 3 * HOUR);
	assert_int_equal(count_topic("maintenance.started"), 1);
	tick(T0 + 5 * HOUR);
	assert_int_equal(count_topic("maintenance.completed"), 1);
	assert_int_equal(count_topic("maintenance.reminder"), 1);
}

static int
open_fn(inc_tx *tx, void *arg)
{
	return inc_open(tx, arg, NULL);
}

static int
ack_fn(inc_tx *tx, void *arg)
{
	return inc_ack(tx, *(uint64_t *) arg, &alice, NULL);
}

static void
test_sla_timers_and_alert_log(void **state)
{
	inc_open_args a = { 0 };
	Opsdesk__V1__AlertList *l = NULL;
	MDB_txn *txn;
	uint64_t id = 1;
	inc_incident *inc;

	(void) state;
	a.severity = SEV_CRITICAL;
	a.title = "payments failing";
	a.actor = &alice;
	assert_int_equal(in_job(open_fn, &a), 0);
	assert_int_equal(count_topic("alert.incident"), 1);
	/* Re-alert every 5 min until acknowledged. */
	tick(T0 + 5 * MIN - 1);
	assert_int_equal(count_topic("alert.unacknowledged"), 0);
	tick(T0 + 5 * MIN);
	assert_int_equal(count_topic("alert.unacknowledged"), 1);
	tick(T0 + 10 * MIN);
	assert_int_equal(count_topic("alert.unacknowledged"), 2);
	/* Response SLA (15 min) breached. */
	tick(T0 + 15 * MIN);
	assert_int_equal(count_topic("alert.response_sla"), 1);
	inc = get(1);
	assert_true(inc->response_breached);
	inc_free(inc);
	assert_int_equal(in_job(ack_fn, &id), 0);
	assert_int_equal(in_job(ack_fn, &id), OD_ESTATE);
	int realerts = count_topic("alert.unacknowledged");
	tick(T0 + 3 * HOUR);
	assert_int_equal(count_topic("alert.unacknowledged"), realerts);
	assert_int_equal(count_topic("alert.response_sla"), 1);
	tick(T0 + 4 * HOUR);
	assert_int_equal(count_topic("alert.resolution_sla"), 1);

	/* The log replays from any seq. */
	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(inc_alerts_list(txn, &svc, 0, 0, &l), 0);
	assert_int_equal(l->last_seq, 6);
	assert_int_equal(l->n_alerts, 6);
	assert_int_equal(l->alerts[0]->seq, 1);
	assert_string_equal(l->alerts[0]->kind, "incident");
	assert_int_equal(l->alerts[0]->incident->id, 1);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	assert_int_equal(inc_alerts_list(txn, &svc, 4, 0, &l), 0);
	assert_int_equal(l->n_alerts, 2);
	assert_int_equal(l->alerts[0]->seq, 5);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	assert_int_equal(inc_alerts_list(txn, &svc, 0, 2, &l), 0);
	assert_int_equal(l->n_alerts, 2);
	assert_int_equal(l->alerts[0]->seq, 5);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	store_read_end(txn);
}

typedef struct tick_args {
	const char *list, *item;
	bool done;
} tick_args;

static int
tick_fn(inc_tx *tx, void *arg)
{
	tick_args *t = arg;
	char err[128];

	return inc_tick(
	    tx, t->list, t->item, t->done, &alice, NULL, err, sizeof(err));
}

static uint32_t
daily_done(int64_t at)
{
	Opsdesk__V1__Checklists *c = NULL;
	MDB_txn *txn;
	uint32_t done;

	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(inc_checklists(txn, &svc, at, &c), 0);
	store_read_end(txn);
	assert_int_equal(c->n_lists, 1);
	assert_int_equal(c->lists[0]->total, 1);
	done = c->lists[0]->done;
	if (done) {
		assert_string_equal(
		    c->lists[0]->items[0]->done_by_name, "alice");
		assert_int_equal(c->lists[0]->items[0]->done_ms, now_ms);
	}
	protobuf_c_message_free_unpacked(&c->base, NULL);
	return done;
}

static void
test_checklists(void **state)
{
	tick_args t = { "daily", "backups", true };
	tick_args bad = { "daily", "nope", true };
	int64_t day = T0 - T0 % INC_DAY_MS;

	(void) state;
	now_ms = day + 23 * HOUR;
	assert_int_equal(in_job(tick_fn, &bad), OD_EINVAL);
	assert_int_equal(daily_done(now_ms), 0);
	assert_int_equal(in_job(tick_fn, &t), 0);
	assert_int_equal(daily_done(now_ms), 1);
	assert_int_equal(count_topic("ops.checklist"), 1);
	/* The next day starts empty; the old one keeps its record. */
	assert_int_equal(daily_done(day + INC_DAY_MS), 0);
	assert_int_equal(daily_done(day), 1);
	t.done = false;
	assert_int_equal(in_job(tick_fn, &t), 0);
	assert_int_equal(daily_done(now_ms), 0);
	assert_int_equal(count_topic("ops.checklist"), 2);
}

/* A stand-in for the peers: what each answers, and what was asked. */
static struct {
	bool prober_up, tickets_up;
	int health_asks, tickets_asks;
} peers;

static void
fake_fetch(inc_service *s, const inc_postmortem *pm, bool want_health,
    bool want_tickets, inc_pm_peers *out)
{
	(void) s;
	(void) pm;
	memset(out, 0, sizeof(*out));
	out->tickets_opened = -1;
	peers.health_asks += want_health;
	peers.tickets_asks += want_tickets;
	if (want_health && peers.prober_up) {
		out->health = true;
		out->events = calloc(1, sizeof(char *));
		out->events[0] = strdup("db: up -> down (HTTP 503)");
		out->n_events = 1;
	}
	if (want_tickets && peers.tickets_up) {
		out->tickets = true;
		out->tickets_opened = 3;
	}
}

static int
resolve_fn(inc_tx *tx, void *arg)
{
	return inc_resolve(tx, *(uint64_t *) arg, &alice, "fixed", NULL);
}

/* Open an incident on "db" at now_ms and resolve it an hour later. */
static uint64_t
open_and_resolve(void)
{
	static const char *const comps[] = { "db" };
	inc_open_args a = { 0 };
	uint64_t id;

	a.severity = SEV_HIGH;
	a.title = "db down";
	a.component_ids = comps;
	a.n_components = 1;
	a.actor = &alice;
	assert_int_equal(in_job(open_fn, &a), 0);
	id = counter("incident");
	now_ms += HOUR;
	assert_int_equal(in_job(resolve_fn, &id), 0);
	return id;
}

static inc_postmortem *
get_pm(uint64_t id)
{
	MDB_txn *txn;
	inc_postmortem *pm = NULL;

	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(inc_pm_load(txn, &svc, id, &pm), 0);
	store_read_end(txn);
	return pm;
}

static size_t
unfrozen(void)
{
	MDB_txn *txn;
	MDB_stat st;

	assert_int_equal(store_read_begin(svc.st, &txn), 0);
	assert_int_equal(
	    mdb_stat(txn, inc_dbi(&svc, INC_DB_PM_UNFROZEN), &st), 0);
	store_read_end(txn);
	return st.ms_entries;
}

static void
test_pm_frozen_after_resolve(void **state)
{
	inc_postmortem *pm;
	int frozen = -1;
	uint64_t id;

	(void) state;
	svc.pm_fetch = fake_fetch;
	memset(&peers, 0, sizeof(peers));
	peers.prober_up = peers.tickets_up = true;
	id = open_and_resolve();
	/* The resolve's txn stored the postmortem and its index entry,
	 * and asked nobody. */
	assert_int_equal(unfrozen(), 1);
	assert_int_equal(peers.health_asks + peers.tickets_asks, 0);
	pm = get_pm(id);
	assert_false(pm->health_frozen);
	assert_false(pm->tickets_frozen);
	inc_pm_free(pm);

	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(frozen, 1);
	assert_int_equal(unfrozen(), 0);
	pm = get_pm(id);
	assert_true(pm->health_frozen);
	assert_true(pm->tickets_frozen);
	assert_true(pm->health_available);
	assert_int_equal(pm->n_health_events, 1);
	assert_string_equal(pm->health_events[0], "db: up -> down (HTTP 503)");
	assert_int_equal(pm->tickets_opened, 3);
	assert_int_equal(pm->frozen_ms, now_ms);
	assert_int_equal(pm->freeze_attempts, 1);

	/* Weeks later, with both peers gone: a read asks nobody and shows
	 * what was frozen. */
	now_ms += 30 * 24 * HOUR;
	peers.prober_up = peers.tickets_up = false;
	peers.health_asks = peers.tickets_asks = 0;
	inc_pm_fill_external(&svc, pm);
	assert_int_equal(peers.health_asks + peers.tickets_asks, 0);
	assert_true(pm->health_available);
	assert_int_equal(pm->n_health_events, 1);
	assert_int_equal(pm->tickets_opened, 3);
	inc_pm_free(pm);
	/* Another round finds nothing to do. */
	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(frozen, 0);
	assert_int_equal(peers.health_asks + peers.tickets_asks, 0);
}

static void
test_pm_freeze_retries_and_gives_up(void **state)
{
	inc_postmortem *pm;
	int frozen = -1;
	uint64_t a, b;

	(void) state;
	svc.cfg.freeze_retry_ms = MIN;
	svc.cfg.freeze_for_ms = HOUR;
	svc.pm_fetch = fake_fetch;
	memset(&peers, 0, sizeof(peers));
	peers.tickets_up = true;
	a = open_and_resolve();

	/* The prober is down: the ticket count is frozen, the health
	 * events wait for the next round and reads ask only the prober. */
	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(frozen, 0);
	assert_int_equal(unfrozen(), 1);
	pm = get_pm(a);
	assert_false(pm->health_frozen);
	assert_true(pm->tickets_frozen);
	assert_int_equal(pm->tickets_opened, 3);
	peers.health_asks = peers.tickets_asks = 0;
	inc_pm_fill_external(&svc, pm);
	assert_int_equal(peers.health_asks, 1);
	assert_int_equal(peers.tickets_asks, 0);
	assert_false(pm->health_available);
	assert_int_equal(pm->tickets_opened, 3);
	inc_pm_free(pm);

	/* Not due again before the retry interval. */
	peers.health_asks = 0;
	now_ms += MIN - 1;
	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(peers.health_asks, 0);
	/* Back: frozen at the next round. */
	peers.prober_up = true;
	now_ms += 1;
	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(frozen, 1);
	assert_int_equal(peers.tickets_asks, 0);
	assert_int_equal(unfrozen(), 0);
	pm = get_pm(a);
	assert_true(pm->health_frozen);
	assert_int_equal(pm->freeze_attempts, 2);
	assert_int_equal(pm->n_health_events, 1);
	inc_pm_free(pm);

	/* Both down for longer than freeze_for: given up, out of the
	 * index, and reads go on asking live. */
	peers.prober_up = peers.tickets_up = false;
	b = open_and_resolve();
	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(unfrozen(), 1);
	now_ms += HOUR;
	assert_int_equal(inc_pm_freeze_run(&svc, &frozen), 0);
	assert_int_equal(unfrozen(), 0);
	pm = get_pm(b);
	assert_true(pm->freeze_gave_up);
	assert_false(pm->health_frozen);
	assert_false(pm->tickets_frozen);
	assert_int_equal(pm->freeze_attempts, 2);
	inc_pm_free(pm);
}

typedef struct sev_args {
	uint64_t id;
	int sev;
	const char *reason;
} sev_args;

static int
severity_fn(inc_tx *tx, void *arg)
{
	sev_args *a = arg;

	return inc_set_severity(
	    tx, a->id, &alice, a->sev, a->reason, false, NULL);
}

static void
test_set_severity(void **state)
{
	inc_open_args a = { 0 };
	sev_args up = { 1, SEV_CRITICAL, "payments down" };
	sev_args same = { 1, SEV_CRITICAL, "" };
	sev_args bad = { 1, 9, "" };
	sev_args down = { 1, SEV_LOW, NULL };
	sev_args missing = { 99, SEV_HIGH, "" };
	const inc_entry *e;
	inc_incident *inc;
	uint64_t id = 1;
	size_t n;

	(void) state;
	a.severity = SEV_MEDIUM;
	a.title = "checkout slow";
	a.actor = &alice;
	assert_int_equal(in_job(open_fn, &a), 0);
	assert_int_equal(count_topic("alert.incident"), 0);

	/* Raised to critical 10 min in: the 15 min response clock counts
	 * from the start, and an unacknowledged one is alerted at once. */
	now_ms = T0 + 10 * MIN;
	assert_int_equal(in_job(severity_fn, &up), 0);
	inc = get(1);
	assert_int_equal(inc->severity, SEV_CRITICAL);
	assert_int_equal(inc->response_due_ms, T0 + 15 * MIN);
	assert_int_equal(inc->resolution_due_ms, T0 + 4 * HOUR);
	assert_int_equal(inc->next_alert_ms, T0 + 15 * MIN);
	n = inc->n_timeline;
	e = inc->timeline[n - 1];
	assert_string_equal(
	    e->text, "Severity medium -> critical: payments down");
	assert_string_equal(e->author_name, "alice");
	assert_int_equal(e->author_id, 42);
	assert_int_equal(e->at_ms, T0 + 10 * MIN);
	assert_false(e->public_);
	inc_free(inc);
	assert_int_equal(count_topic("alert.incident"), 1);
	assert_int_equal(count_topic("incident.updated"), 1);

	/* Refused, and nothing changes. */
	assert_int_equal(in_job(severity_fn, &same), OD_ESTATE);
	assert_int_equal(in_job(severity_fn, &bad), OD_EINVAL);
	assert_int_equal(in_job(severity_fn, &missing), OD_ENOTFOUND);
	inc = get(1);
	assert_int_equal(inc->n_timeline, n);
	inc_free(inc);
	assert_int_equal(count_topic("incident.updated"), 1);

	/* The new response clock breaches on its own time. */
	tick(T0 + 15 * MIN);
	assert_int_equal(count_topic("alert.response_sla"), 1);

	/* Lowered to low: its clocks (24 h response, no resolution SLA),
	 * the breach already alerted stays, and no more re-alerts. */
	now_ms = T0 + 20 * MIN;
	assert_int_equal(in_job(severity_fn, &down), 0);
	inc = get(1);
	assert_int_equal(inc->severity, SEV_LOW);
	assert_int_equal(inc->response_due_ms, T0 + 24 * HOUR);
	assert_int_equal(inc->resolution_due_ms, 0);
	assert_true(inc->response_breached);
	assert_int_equal(inc->next_alert_ms, 0);
	assert_string_equal(inc->timeline[inc->n_timeline - 1]->text,
	    "Severity critical -> low.");
	inc_free(inc);
	tick(T0 + 2 * HOUR);
	assert_int_equal(count_topic("alert.unacknowledged"), 1);
	assert_int_equal(count_topic("alert.incident"), 1);

	/* A resolved incident keeps the severity it was resolved with. */
	assert_int_equal(in_job(resolve_fn, &id), 0);
	assert_int_equal(in_job(severity_fn, &up), OD_ESTATE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_auto_open_dedup_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_escalation_alerts_and_tightens_sla, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_maintenance_suppresses, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_maintenance_reminder, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sla_timers_and_alert_log, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_checklists, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pm_frozen_after_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pm_freeze_retries_and_gives_up, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_set_severity, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
