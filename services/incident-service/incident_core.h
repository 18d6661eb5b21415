/*
 * incident_core — the logic of incident-service, split by concern:
 *
 *   sla.c          severities, SLA clocks and breaches
 *   lifecycle.c    incidents: open, acknowledge, update, resolve, storage
 *   timers.c       the due-time index and what fires from it
 *   automation.c   health.changed -> incidents, resync from health-prober
 *   alerts.c       the alert log and alert.* events
 *   maintenance.c  maintenance windows
 *   checklists.c   daily/weekly/monthly ops checklists
 *   postmortem.c   postmortems and their Markdown
 *   freeze.c       postmortems' peer sections stored after the resolve
 *   report.c       day/week/month reports
 *   config.c       the incidents/checklists/maintenance config sections
 *   handlers.c     the rpc method table
 *   service.c      wiring: store, rpc server, subscriber, timers
 *
 * Pure functions (names without a txn) work on protobuf structs in memory
 * and are what the units test; store functions take an inc_tx, run inside
 * a store write job and publish their events after its commit.
 *
 * Memory: every protobuf message this module builds or loads is fully
 * heap-allocated with malloc, so protobuf_c_message_free_unpacked(m, NULL)
 * frees it whatever its origin (a loaded record that was edited or a new
 * one). String fields are replaced with inc_set_str().
 */
#ifndef OPSDESK_INCIDENT_CORE_H
#define OPSDESK_INCIDENT_CORE_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "envelope.pb-c.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "rpc/rpc.h"
#include "ticket.pb-c.h"
#include "util/util.h"

struct store;
struct store_txn;
struct bus_publisher;
struct bus_subscriber;
struct rpc_client;
struct rpc_server;
struct runtime;

typedef Opsdesk__V1__Incident inc_incident;
typedef Opsdesk__V1__TimelineEntry inc_entry;
typedef Opsdesk__V1__MaintenanceWindow inc_window;
typedef Opsdesk__V1__Postmortem inc_postmortem;
typedef Opsdesk__V1__Report inc_report;
typedef Opsdesk__V1__Actor inc_actor;

/* Short names for the enums used everywhere. */
#define SEV_NONE     OPSDESK__V1__SEVERITY__SEVERITY_UNSPECIFIED
#define SEV_CRITICAL OPSDESK__V1__SEVERITY__SEVERITY_CRITICAL
#define SEV_HIGH     OPSDESK__V1__SEVERITY__SEVERITY_HIGH
#define SEV_MEDIUM   OPSDESK__V1__SEVERITY__SEVERITY_MEDIUM
#define SEV_LOW      OPSDESK__V1__SEVERITY__SEVERITY_LOW
#define SEV_COUNT    5

#define ST_NONE OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_UNSPECIFIED
#define ST_INVESTIGATING                                                      \
	OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING
#define ST_IDENTIFIED OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_IDENTIFIED
#define ST_MONITORING OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING
#define ST_RESOLVED   OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED

#define CS_UNKNOWN  OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN
#define CS_UP       OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
#define CS_DEGRADED OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED
#define CS_DOWN     OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN
#define CS_MAINTENANCE                                                        \
	OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE

#define MS_SCHEDULED                                                          \
	OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_SCHEDULED
#define MS_IN_PROGRESS                                                        \
	OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS
#define MS_COMPLETED                                                          \
	OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED
#define MS_CANCELLED                                                          \
	OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_CANCELLED

#define CK_DAILY   OPSDESK__V1__CHECKLIST_PERIOD__CHECKLIST_PERIOD_DAILY
#define CK_WEEKLY  OPSDESK__V1__CHECKLIST_PERIOD__CHECKLIST_PERIOD_WEEKLY
#define CK_MONTHLY OPSDESK__V1__CHECKLIST_PERIOD__CHECKLIST_PERIOD_MONTHLY

#define RP_DAY   OPSDESK__V1__REPORT_PERIOD__REPORT_PERIOD_DAY
#define RP_WEEK  OPSDESK__V1__REPORT_PERIOD__REPORT_PERIOD_WEEK
#define RP_MONTH OPSDESK__V1__REPORT_PERIOD__REPORT_PERIOD_MONTH

#define INC_MIN_MS  (60 * 1000LL)
#define INC_HOUR_MS (60 * INC_MIN_MS)
#define INC_DAY_MS  (24 * INC_HOUR_MS)

/* ---- config (config.c) ---- */

typedef struct inc_check_item {
	char *id;   /* owned */
	char *text; /* owned */
} inc_check_item;

typedef struct inc_check_list {
	inc_check_item *items; /* owned */
	size_t n_items;
} inc_check_list;

typedef struct inc_config {
	/* Indexed by Severity (1..4); 0 means no SLA for that clock. */
	int64_t response_ms[SEV_COUNT];
	int64_t resolution_ms[SEV_COUNT];
	int64_t realert_ms[SEV_COUNT];
	char *runbook[SEV_COUNT]; /* owned */
	int64_t stable_period_ms;
	int64_t reminder_before_ms;
	int64_t tick_ms;         /* timer resolution */
	int64_t peer_timeout_ms; /* calls to prober and ticket-service */
	uint32_t alert_keep;     /* alert log entries kept for replay */
	/* Freezing a postmortem's peer sections after the resolve: retry
	 * every freeze_retry_ms while a peer does not answer, for
	 * freeze_for_ms after the resolve. */
	int64_t freeze_retry_ms;
	int64_t freeze_for_ms;
	/* Health events in a postmortem: the impact window widened by this
	 * much on each side (the damping delay before detection). */
	int64_t pm_margin_ms;
	inc_check_list lists[4]; /* indexed by ChecklistPeriod (1..3) */
	/* Public wording of automatic incidents (status_page.templates),
	 * indexed by inc_tmpl; "{component}" is the component's name. */
	char *tmpl[4]; /* owned */
} inc_config;

/* The states an automatic incident's public text is written for. */
enum inc_tmpl {
	INC_TMPL_DOWN,
	INC_TMPL_DEGRADED,
	INC_TMPL_MONITORING,
	INC_TMPL_RESOLVED,
};
/* The public text of template which for component name, truncated to
 * size. The probe's own error never goes in: it is an internal entry. */
void inc_public_text(const inc_config *c, enum inc_tmpl which,
    const char *name, char *out, size_t size);

/* The brief's defaults (SLAs, 10 min stable period, 60 min reminder…). */
int inc_config_defaults(inc_config *c);
/*
 * Read the sections `incidents`, `checklists` and `maintenance` of the
 * config file's root (borrowed, may be NULL) over the defaults. On error
 * returns OD_EINVAL with the bad key's path in err; c is then freed.
 */
int inc_config_parse(
    inc_config *c, const cJSON *root, char *err, size_t errlen);
void inc_config_free(inc_config *c); /* NULL-safe, leaves c zeroed */

/* ---- names and small helpers (sla.c) ---- */

const char *inc_severity_name(int sev);  /* "critical" … "" */
const char *inc_status_name(int status); /* "investigating" … */
const char *inc_state_name(int state);   /* "up", "down" … */
bool inc_severity_valid(int sev);
/* Severity of an automatic incident: down keeps the component's
 * criticality (medium when unset), degraded one step lower. */
int inc_severity_for(int criticality, int state);
/* Replace a string field (frees the old unless it is the empty default).
 * OD_ENOMEM leaves the field as it was. */
int inc_set_str(char **field, const char *value);

/* ---- SLA (sla.c) ---- */

/* Start the SLA clocks of a new incident created at inc->created_ms. */
void inc_sla_start(const inc_config *c, inc_incident *inc);

/* The clocks again from created_ms for a changed severity; breaches
 * already flagged stay flagged. */
void inc_sla_rebase(const inc_config *c, inc_incident *inc);

#define INC_BREACH_RESPONSE   0x1
#define INC_BREACH_RESOLUTION 0x2
/* Which breaches happened by now that are not flagged yet (a mask). */
int inc_sla_new_breaches(const inc_incident *inc, int64_t now);
/* Met means done within its SLA (or no SLA); an open clock past due is
 * not met; an open clock not yet due counts as met. */
bool inc_response_met(const inc_incident *inc, int64_t now);
bool inc_resolution_met(const inc_incident *inc, int64_t now);

/* ---- lifecycle, pure (lifecycle.c) ---- */

/* A new, empty incident (free with protobuf_c_message_free_unpacked). */
inc_incident *inc_alloc(void);
/* A deep copy (pack + unpack); NULL on OOM. */
inc_incident *inc_dup(const inc_incident *inc);
void inc_free(inc_incident *inc); /* NULL-safe */

int inc_timeline_add(inc_incident *inc, int64_t at, const inc_actor *who,
    int status, const char *text, bool public_entry);
/* Only the timeline entries the public may see, without author names
 * (status page, non-admin readers). In place. */
void inc_strip_internal(inc_incident *inc);
int inc_add_component(
    inc_incident *inc, const char *id, const char *name, int state);

/* Transitions; they change inc only on success. */
int inc_apply_ack(inc_incident *inc, int64_t now, const inc_actor *who);
/* status ST_NONE keeps the status (a note); ST_RESOLVED is refused
 * (resolve is its own method, with a postmortem). */
int inc_apply_update(inc_incident *inc, int64_t now, const inc_actor *who,
    int status, const char *text, bool internal);
int inc_apply_resolve(
    inc_incident *inc, int64_t now, const inc_actor *who, const char *text);
/* Re-classify: a timeline entry "Severity <old> -> <new>[: reason]" and
 * the new severity. OD_EINVAL: not a severity or a reason over 4000
 * bytes; OD_ESTATE: resolved, or already of that severity. The SLA and
 * alerting follow in inc_set_severity. */
int inc_apply_severity(inc_incident *inc, int64_t now, const inc_actor *who,
    int sev, const char *reason, bool public_entry);
/* Recovery of an automatic incident's component: monitoring and the
 * auto-resolve time, unless a person took it over (then a note only). */
int inc_apply_recovery(inc_incident *inc, int64_t now,
    int64_t stable_period_ms, const char *text);
/* The component failed again (or got worse): back to investigating from
 * monitoring, severity raised if `sev` is higher. */
int inc_apply_relapse(
    inc_incident *inc, int64_t now, int sev, const char *text);

/* ---- the due-time index (timers.c) ---- */

enum inc_timer_kind {
	TMR_RESPONSE = 1,
	TMR_RESOLUTION = 2,
	TMR_REALERT = 3,
	TMR_AUTORESOLVE = 4,
	TMR_MNT_REMIND = 5,
	TMR_MNT_START = 6,
	TMR_MNT_END = 7,
};

typedef struct inc_timer {
	int64_t due_ms;
	uint8_t kind;
	uint64_t id;
} inc_timer;

#define INC_TIMER_KEY_LEN 17
#define INC_MAX_TIMERS    4

/* The timers an incident or window implies right now (pure). */
size_t inc_timers_of_incident(
    const inc_incident *inc, inc_timer out[INC_MAX_TIMERS]);
size_t inc_timers_of_window(
    const inc_window *w, inc_timer out[INC_MAX_TIMERS]);
void inc_timer_key(const inc_timer *t, uint8_t key[INC_TIMER_KEY_LEN]);
void inc_timer_parse(const uint8_t key[INC_TIMER_KEY_LEN], inc_timer *t);

/* ---- the service and its write context (service.c) ---- */

enum inc_db {
	INC_DB_INCIDENTS = 0, /* be64 id -> Incident */
	INC_DB_OPEN,          /* dedup key -> be64 id, open automatic ones */
	INC_DB_DUE,           /* timer key -> "" */
	INC_DB_MAINT,         /* be64 id -> MaintenanceWindow */
	INC_DB_MAINT_ACTIVE,  /* be64 id -> "" (scheduled or in progress) */
	INC_DB_CHECKS,        /* list\0period\0item -> ChecklistItem */
	INC_DB_ALERTS,        /* be64 seq -> AlertEvent */
	INC_DB_POSTMORTEMS,   /* be64 incident id -> Postmortem */
	INC_DB_COMPONENTS,    /* component id -> HealthChanged (last seen) */
	INC_DB_ACTIVE,        /* be64 id -> "" for every unresolved one */
	INC_DB_PM_UNFROZEN,   /* be64 id -> inc_pm_freeze_state (packed) */
	INC_DB_COUNT
};

/* NULL-terminated, in enum inc_db order, for store_options.dbs. */
extern const char *const inc_db_names[];

typedef void (*inc_event_hook)(
    void *arg, const char *topic, const Opsdesk__V1__Envelope *env);

/* What the peers said about a postmortem's window (postmortem.c). */
typedef struct inc_pm_peers {
	bool health;   /* health-prober answered: events are the window's */
	char **events; /* owned, n_events strings */
	size_t n_events;
	bool tickets; /* ticket-service answered */
	int32_t tickets_opened;
} inc_pm_peers;

struct inc_service;
/* Ask the peers the parts of pm (borrowed) that want_* name; never
 * fails, a peer that did not answer leaves its flag false. */
typedef void (*inc_pm_fetch_fn)(struct inc_service *svc,
    const inc_postmortem *pm, bool want_health, bool want_tickets,
    inc_pm_peers *out);

typedef struct inc_service {
	inc_config cfg;
	struct store *st;           /* borrowed */
	struct bus_publisher *pub;  /* borrowed, may be NULL */
	struct rpc_client *prober;  /* owned, may be NULL */
	struct rpc_client *tickets; /* owned, may be NULL */
	struct bus_subscriber *sub; /* owned */
	struct rpc_server *rpc;     /* owned */
	struct bus_resync *resync;  /* owned: health states from the prober */
	/* Tests: sees every event as it is queued (inside the txn). */
	inc_event_hook hook;
	void *hook_arg;
	/* How postmortems ask the peers: inc_pm_fetch (NULL) or a test's
	 * stand-in. */
	inc_pm_fetch_fn pm_fetch;
	/* The freezer thread (service.c): woken after a resolve commits,
	 * else every tick; absent (NULL) in unit tests, which run
	 * inc_pm_freeze_run themselves. */
	struct inc_freezer *freezer;
} inc_service;

/* What a mutation needs: the job's txn, its clock, who caused it. */
typedef struct inc_tx {
	inc_service *svc;
	struct store_txn *txn;
	int64_t now;
	const char *corr; /* correlation id (request id) or NULL */
} inc_tx;

/*
 * Start the service on rt (borrowed; rt owns what it shuts down): config
 * sections, store, publisher, rpc server, health subscriber, timers, HTTP.
 * Everything is released by rt's shutdown.
 */
int inc_service_start(struct runtime *rt);
/* The rpc method table (handlers.c). */
extern const rpc_method inc_methods[];
extern const size_t inc_n_methods;

MDB_txn *inc_tx_mdb(inc_tx *tx);
MDB_dbi inc_dbi(inc_service *svc, enum inc_db db);
/* The record under big-endian id in db, decoded as desc; *out freed with
 * protobuf_c_message_free_unpacked. OD_ENOTFOUND when missing. */
int inc_get_by_id(MDB_txn *txn, inc_service *svc, enum inc_db db, uint64_t id,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
/* Store m (borrowed) under big-endian id in db. */
int inc_put_by_id(
    inc_tx *tx, enum inc_db db, uint64_t id, const ProtobufCMessage *m);
/*
 * What saving a record with timers means (incidents, windows): store m
 * (borrowed) under id in db, move its timers from old to cur in the due
 * index, and keep id in the set set_db exactly while `live`.
 */
int inc_put_timed(inc_tx *tx, enum inc_db db, enum inc_db set_db, uint64_t id,
    const ProtobufCMessage *m, bool live, const inc_timer *old, size_t n_old,
    const inc_timer *cur, size_t n_cur);
/*
 * One call to a peer service (prober, ticket-service) as this service
 * (an admin actor), with the configured time-out. 0 only when a reply
 * without an Error arrived; *out freed with
 * protobuf_c_message_free_unpacked. c may be NULL (OD_EUNAVAIL).
 */
int inc_peer_call(inc_service *svc, struct rpc_client *c,
    ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **out);
/* One of several peer calls run together by inc_peer_calls. */
typedef struct inc_peer_req {
	struct rpc_client *client; /* may be NULL: OD_EUNAVAIL */
	ProtobufCMessage *req;     /* borrowed; its actor is set */
	const ProtobufCMessageDescriptor *reply_desc;
	ProtobufCMessage *reply; /* out: caller frees; NULL on error */
	int rv;                  /* out */
} inc_peer_req;
/* Run the calls concurrently, so a report or postmortem waits for at
 * most one peer time-out however many peers are down. */
void inc_peer_calls(inc_service *svc, inc_peer_req *reqs, size_t n);
/* What a report and a postmortem both ask at once: health-prober preq
 * (borrowed, its method set) and ticket-service's stats over [from_ms,
 * to_ms). *prep, *trep: the replies as they came (may carry another
 * result), NULL when that peer did not answer; caller frees both. */
void inc_peer_prober_and_stats(inc_service *svc,
    Opsdesk__V1__ProberRequest *preq, int64_t from_ms, int64_t to_ms,
    Opsdesk__V1__ProberReply **prep, Opsdesk__V1__TicketReply **trep);
/* Publish after commit (and show the test hook). env borrowed. */
int inc_emit(inc_tx *tx, const char *topic, Opsdesk__V1__Envelope *env);
int inc_emit_incident(inc_tx *tx, const char *topic, const char *change,
    const inc_incident *inc);

/* ---- lifecycle with the store (lifecycle.c) ---- */

/* *out: caller frees with inc_free. OD_ENOTFOUND when missing. */
int inc_load(MDB_txn *txn, inc_service *svc, uint64_t id, inc_incident **out);
/* Store inc and bring the due index and the dedup index in line;
 * old_timers are those of the record before this change. */
int inc_save(
    inc_tx *tx, const inc_incident *inc, const inc_timer *old, size_t n_old);

typedef struct inc_open_args {
	int severity;
	const char *title;
	const char *text; /* first timeline entry; may be NULL */
	/* An internal entry right after it (the probe's error); may be NULL */
	const char *internal_text;
	bool internal;
	bool automatic;
	const char *dedup_key; /* automatic ones: "component:<id>" */
	const char *const *component_ids;
	const char *const *component_names; /* may be NULL */
	const int *component_states;        /* may be NULL: down */
	size_t n_components;
	const inc_actor *actor; /* NULL: the system */
} inc_open_args;

/* Open an incident: SLA clocks, alert, incident.opened. *out (may be
 * NULL) is a copy the caller frees. */
int inc_open(inc_tx *tx, const inc_open_args *a, inc_incident **out);
int inc_ack(inc_tx *tx, uint64_t id, const inc_actor *who, inc_incident **out);
int inc_update(inc_tx *tx, uint64_t id, const inc_actor *who, int status,
    const char *text, bool internal, inc_incident **out);
/* An admin re-classifies id: inc_apply_severity, the SLA clocks again
 * from created_ms with the new targets (inc_sla_rebase), the new
 * severity's alerting (inc_alert_reclassified), incident.updated with
 * change "severity". */
int inc_set_severity(inc_tx *tx, uint64_t id, const inc_actor *who, int sev,
    const char *reason, bool public_entry, inc_incident **out);
/* who NULL: the system (auto-resolve). Generates the postmortem. */
int inc_resolve(inc_tx *tx, uint64_t id, const inc_actor *who,
    const char *text, inc_incident **out);
/* Whatever is due for incident id by tx->now: SLA breaches (flag, note,
 * alert), re-alerts, the auto-resolve after a stable recovery. */
int inc_due(inc_tx *tx, uint64_t id);

/* ---- timers with the store (timers.c) ---- */

int inc_timers_reindex(inc_tx *tx, const inc_timer *old, size_t n_old,
    const inc_timer *cur, size_t n_cur);
/* Fire every timer due by now (runs store jobs; any thread but the
 * writer). Returns how many fired in *fired (may be NULL). */
int inc_timers_run(inc_service *svc, int *fired);

/* ---- alerts (alerts.c) ---- */

/* Append to the alert log and publish alert.<kind>. */
int inc_alert(
    inc_tx *tx, const char *kind, const inc_incident *inc, const char *text);
/* Alerts after since_seq (0 and limit 0: the last 100). *out freed with
 * protobuf_c_message_free_unpacked. */
int inc_alerts_list(MDB_txn *txn, inc_service *svc, uint64_t since_seq,
    uint32_t limit, Opsdesk__V1__AlertList **out);
/* An open incident's alerting: the first alert of a critical/high one and
 * its re-alert time. */
int inc_alert_opened(inc_tx *tx, inc_incident *inc);
/* After a severity change from `was`: an unacknowledged incident raised
 * to critical or high is alerted now ("escalated"), re-alerts follow the
 * new severity's interval, and medium or low ones stop re-alerting. */
int inc_alert_reclassified(inc_tx *tx, inc_incident *inc, int was);

/* ---- automation (automation.c) ---- */

enum inc_auto_action {
	AUTO_NONE = 0,
	AUTO_OPEN,    /* open a new automatic incident */
	AUTO_RELAPSE, /* worse again: back to investigating / escalate */
	AUTO_RECOVER, /* up: monitoring then auto-resolve */
	AUTO_NOTE,    /* a timeline note only */
};

/* What to do with a state change (pure). open is the component's open
 * incident or NULL. */
enum inc_auto_action inc_auto_decide(const inc_incident *open, int prev_state,
    int new_state, bool in_maintenance);
/* Apply one HealthChanged (borrowed) in a write job. */
int inc_auto_apply(inc_tx *tx, const Opsdesk__V1__HealthChanged *hc);
/* A maintenance window over: a component still down or degraded (its
 * last state) gets the incident the window held back. */
int inc_auto_reevaluate(inc_tx *tx, const char *component);
/* Bus callbacks (arg: inc_service). */
void inc_auto_on_event(
    void *arg, const char *topic, const Opsdesk__V1__Envelope *env);
/* Ask health-prober for the current states and apply them (the fetch of
 * svc->resync; arg: inc_service). 0, or OD_EUNAVAIL/OD_ETIMEDOUT/a store
 * error: the resync worker tries again. */
int inc_auto_resync(void *svc);

/* ---- maintenance (maintenance.c) ---- */

bool inc_window_covers(
    const inc_window *w, const char *component, int64_t now);
/* Advance a window to where it should be at now; returns the event to
 * send ("reminder", "started", "completed") or NULL when nothing is due.
 * Call again until NULL. */
const char *inc_window_step(inc_window *w, int64_t now);
int inc_mnt_create(inc_tx *tx, const Opsdesk__V1__CreateMaintenanceRequest *r,
    const inc_actor *who, inc_window **out, char *err, size_t errlen);
int inc_mnt_cancel(inc_tx *tx, uint64_t id, inc_window **out);
/* Run the due steps of window id (timer). */
int inc_mnt_advance(inc_tx *tx, uint64_t id);
int inc_mnt_list(MDB_txn *txn, inc_service *svc, bool include_done,
    Opsdesk__V1__MaintenanceList **out);
/* True when an in-progress window covers the component now. */
bool inc_mnt_active_for(
    MDB_txn *txn, inc_service *svc, const char *component, int64_t now);
void inc_window_free(inc_window *w); /* NULL-safe */

/* ---- checklists (checklists.c) ---- */

/* "2026-11-27", "2026-W48" (ISO week, Monday first), "2026-11". */
int inc_period_key(int period, int64_t at_ms, char *out, size_t size);
int inc_checklists(MDB_txn *txn, inc_service *svc, int64_t at_ms,
    Opsdesk__V1__Checklists **out);
int inc_tick(inc_tx *tx, const char *list_id, const char *item_id, bool done,
    const inc_actor *who, Opsdesk__V1__Checklists **out, char *err,
    size_t errlen);

/* ---- postmortem (postmortem.c) ---- */

/* Build from a resolved incident (borrowed); NULL on OOM. */
inc_postmortem *inc_pm_generate(
    const inc_config *c, const inc_incident *inc, int64_t now);
int inc_pm_markdown(const inc_postmortem *pm, sbuf *out);
int inc_pm_load(
    MDB_txn *txn, inc_service *svc, uint64_t id, inc_postmortem **out);
int inc_pm_save(inc_tx *tx, const inc_postmortem *pm);
int inc_pm_edit(inc_tx *tx, const Opsdesk__V1__EditPostmortemRequest *r,
    inc_postmortem **out);
/* Fill the health events and tickets opened in the impact window: the
 * frozen parts are as stored and ask nobody; the others are asked live
 * (a peer that does not answer leaves health_available false / -1). */
void inc_pm_fill_external(inc_service *svc, inc_postmortem *pm);
void inc_pm_free(inc_postmortem *pm);

/* The real peers behind inc_pm_fetch_fn: transitions of the window's
 * components from health-prober, stats from ticket-service, together. */
void inc_pm_fetch(inc_service *svc, const inc_postmortem *pm, bool want_health,
    bool want_tickets, inc_pm_peers *out);
void inc_pm_peers_free(inc_pm_peers *p); /* NULL-safe, leaves p zeroed */
/* The window of a postmortem's health events: [from, to] inclusive, the
 * impact window widened by margin on each side. */
void inc_pm_window(const inc_postmortem *pm, int64_t margin_ms,
    int64_t *from_ms, int64_t *to_ms);
/* The transitions of tr (borrowed) inside [from, to] as event lines into
 * out->events; false on OOM. */
bool inc_pm_take_events(inc_pm_peers *out,
    const Opsdesk__V1__TransitionList *tr, int64_t from_ms, int64_t to_ms);
/* Copy the parts p (borrowed) answered into pm's parts that are not
 * frozen; freeze: mark them frozen too. Frozen parts are never changed.
 * OD_ENOMEM leaves pm's health part as it was. */
int inc_pm_take_peers(inc_postmortem *pm, const inc_pm_peers *p, bool freeze);

/*
 * Freezing. A resolve stores its postmortem with the peers' sections
 * empty (a write job must not wait on the network) and enters the
 * incident in INC_DB_PM_UNFROZEN in the same txn, so a restart finds
 * it without a scan. inc_pm_freeze_run, outside any write job, asks the
 * peers for the entries that are due and stores what came back in a
 * second write; an entry leaves the index when both parts are frozen or
 * after freeze_for_ms (freeze_gave_up). Idempotent: a part once frozen
 * is never asked or overwritten again.
 */
typedef struct inc_pm_freeze_state {
	int64_t next_ms;    /* next round of asking */
	int64_t give_up_ms; /* no round after this */
	uint32_t attempts;  /* rounds so far */
} inc_pm_freeze_state;

#define INC_PM_FREEZE_STATE_LEN 20
void inc_pm_freeze_pack(
    const inc_pm_freeze_state *s, uint8_t out[INC_PM_FREEZE_STATE_LEN]);
int inc_pm_freeze_unpack(const void *data, size_t len, inc_pm_freeze_state *s);
/* In the resolve's job: enter pm's incident for freezing now, and wake
 * the freezer after the commit. */
int inc_pm_freeze_enter(inc_tx *tx, const inc_postmortem *pm);
/* One round over the entries due by od_now_ms() (any thread but the
 * writer and the completion thread). *frozen (may be NULL): postmortems
 * fully frozen in this round. */
int inc_pm_freeze_run(inc_service *svc, int *frozen);
/* The freezer thread. Stop joins it (before the store closes); a wake
 * after that (a hook of a late commit) does nothing. Free releases it
 * once no commit can come (after the store closed). Both NULL-safe. */
int inc_freezer_start(inc_service *svc);
void inc_freezer_wake(inc_service *svc);
void inc_freezer_stop(inc_service *svc);
void inc_freezer_free(inc_service *svc);

/* ---- reports (report.c) ---- */

/* [from, to) of a report: at_ms 0 -> the period ending now (last 24 h,
 * 7 d, 30 d); else the calendar day, ISO week or month holding at_ms. */
int inc_report_bounds(
    int period, int64_t at_ms, int64_t now, int64_t *from, int64_t *to);

typedef struct inc_report_acc {
	uint32_t by_sev[SEV_COUNT];
	uint32_t total;
	int64_t ack_sum, resolve_sum;
	uint32_t ack_n, resolve_n;
	uint32_t sla_n, sla_met;
} inc_report_acc;

/* Count an incident created in the window. */
void inc_report_add(inc_report_acc *acc, const inc_incident *inc, int64_t now);
/* MTTA, MTTR (-1: no data) and SLA % (-1: no data) into r. */
int inc_report_finish(const inc_report_acc *acc, inc_report *r);
int inc_report_text(const inc_report *r, sbuf *out);
/* The support objectives' lines ("Support objectives (30 d):", each met
 * or MISSED); nothing when the report has none. */
void inc_report_support_text(const inc_report *r, sbuf *out);
/* The whole report with the peers' sections; *out freed with
 * protobuf_c_message_free_unpacked. */
int inc_report_build(
    inc_service *svc, int period, int64_t at_ms, inc_report **out);

#endif /* OPSDESK_INCIDENT_CORE_H */
