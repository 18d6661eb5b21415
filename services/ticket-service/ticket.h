/*
 * ticket_core — the business rules of ticket-service: tickets and their
 * threads, SLA clocks, lifecycle, limits, FAQ, tiers, stats, and the
 * incident-aware part of support. ticket_service_start wires it to the
 * runtime; the units and the bench link this library.
 *
 * Layout of the store (every index is updated in the same txn as the
 * ticket, so no request scans the whole store):
 *   tickets        be64 id                    -> Ticket (without messages)
 *   messages       be64 id | be32 seq         -> TicketMessage
 *   user_tickets   be64 owner | u8 set | be64 id -> ""
 *                  set TICKET_USER_ALL: every ticket of the owner's;
 *                  set TICKET_USER_OPEN: the open or pending ones
 *   queue          be64 due | be64 id         -> ""   (open or pending;
 *                  its entry count is the open count: mdb_stat)
 *   sla_due        be64 due | be64 id | u8 clock -> "" (the running clock
 *                  due first; the other is indexed when it stops)
 *   created_at     be64 created | be64 id     -> ""
 *   resolved_at    be64 resolved | be64 id    -> ""
 *   rated_at       be64 rated | be64 id       -> u8 rating
 *   incident_links be64 incident | be64 id    -> "" (until notified)
 *   customers      be64 user                  -> CustomerTier
 *   faq            be32 id                    -> FaqEntry
 *   audit          be64 ticket | be64 seq     -> AuditEntry
 *   breached       be64 id (open or pending with a breached clock) -> ""
 *   support_days   be64 day (ms / 86400000) -> 4 x be64: first responses
 *                  met, missed, rating sum, ratings (ticket_support_day)
 *   by_user, by_status, open_ids, user_open: schema 1's, empty
 *
 * What a create writes is what a group commit costs: indexes ordered by
 * id or time take one tail leaf for a whole batch, an index led by the
 * owner a leaf per create. So the owner-led index is one DB whose two
 * keys per ticket are neighbours (schema 2; schema 1 had by_user and
 * user_open, a leaf each, plus open_ids and by_status, see
 * ticket_store_migrate and TDB_RETIRED_BY_USER).
 */
#ifndef OPSDESK_TICKET_H
#define OPSDESK_TICKET_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "metrics/metrics.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "ticket.pb-c.h"

typedef Opsdesk__V1__Ticket tk_ticket;
typedef Opsdesk__V1__TicketMessage tk_message;
typedef Opsdesk__V1__Actor tk_actor;
typedef Opsdesk__V1__Incident tk_incident;

#define TICKET_SERVICE      "ticket-service"
#define TICKET_DEFAULT_URL  "tcp://127.0.0.1:7410"
#define TICKET_DEFAULT_HTTP "127.0.0.1:9410"

#define TICKET_N_TIERS      5 /* indexed by the Tier enum value */
#define TICKET_N_PRIORITIES 5 /* indexed by the TicketPriority value */

#define TICKET_MAX_SUBJECT  200  /* bytes */
#define TICKET_MAX_TEXT     4096 /* bytes, one Telegram message */
#define TICKET_MAX_COMMENT  1024
#define TICKET_MAX_NAME     128
#define TICKET_MAX_MESSAGES 1000 /* per ticket */
#define TICKET_GET_MESSAGES 50   /* newest messages returned by get */
#define TICKET_SNAPSHOT_MAX 2000 /* open tickets in one snapshot */
#define TICKET_MAX_FAQ      200
#define TICKET_MAX_TAGS     16

/* SLA clocks, as bits. */
#define TICKET_CLOCK_FIRST_RESPONSE 1u
#define TICKET_CLOCK_RESOLUTION     2u

typedef struct ticket_sla_target {
	int64_t first_response_ms;
	int64_t resolution_ms;
} ticket_sla_target;

/*
 * The support objectives (config "tickets.objectives"): the share of
 * tickets whose first response came within their tier's SLA, and the
 * average rating, over the last window_days calendar days (UTC, today
 * included).
 */
typedef struct ticket_objectives {
	double first_response_pct; /* target, percent: 95 */
	double csat_min;           /* target average rating: 4.0 */
	int64_t window_days;       /* 30 */
} ticket_objectives;

/* Everything configurable about tickets (config section "tickets"). */
typedef struct ticket_policy {
	ticket_sla_target sla[TICKET_N_TIERS][TICKET_N_PRIORITIES];
	int64_t open_per_user;      /* 0: no limit */
	int64_t creations_per_hour; /* 0: no limit */
	int64_t reopen_ms;          /* a user message reopens within this */
	int64_t breach_interval_ms; /* how often the breach timer looks */
	/* Ultra tickets' dedicated support chat (read by the gateway; 0:
	 * the admin chat with an ULTRA mark). */
	int64_t ultra_chat;
	ticket_objectives objectives;
} ticket_policy;

/* ---- policy.c ---- */

/* The documented defaults (README.md): 3 open, 5 an hour, 7 days, and the
 * SLA table with ultra at 1 h first response. */
void ticket_policy_defaults(ticket_policy *p);
/*
 * Overlay config section `tickets` (borrowed, may be NULL) on p. On error
 * returns OD_EINVAL with err naming the key ("tickets.sla.pro.high.
 * first_response: ...") and p unchanged.
 */
int ticket_policy_load(
    ticket_policy *p, const cJSON *tickets, char *err, size_t errlen);
/* Tier and priority names as used in config and messages ("ultra",
 * "urgent"); -1 when unknown. */
int ticket_tier_parse(const char *s);
int ticket_priority_parse(const char *s);
const char *ticket_tier_name(int tier);
const char *ticket_priority_name(int priority);
const char *ticket_status_name(int status);

/* ---- sla.c: pure arithmetic on a Ticket ---- */

/* The target of tier x priority; unspecified tier is free, unspecified
 * priority normal. Borrowed from p. */
const ticket_sla_target *ticket_sla_target_for(
    const ticket_policy *p, int tier, int priority);
/* Recompute both due times: created + target + time spent pending. */
void ticket_sla_apply(const ticket_policy *p, tk_ticket *t);
/* Enter pending at now: both clocks stop. */
void ticket_sla_pause(tk_ticket *t, int64_t now);
/* Leave pending at now: the pause is added to both due times. */
void ticket_sla_resume(const ticket_policy *p, tk_ticket *t, int64_t now);
/* Clocks that are running: the ticket is open and the clock is neither met
 * nor breached. */
unsigned ticket_sla_running(const tk_ticket *t);
/* Running clocks whose due time is at or before now. */
unsigned ticket_sla_due(const tk_ticket *t, int64_t now);
/* Flag clocks breached; returns the ones that were not flagged before. */
unsigned ticket_sla_mark(tk_ticket *t, unsigned clocks);
/* Stop the first-response clock at now (a staff reply); flags it breached
 * if late. */
void ticket_sla_first_response(tk_ticket *t, int64_t now);
/* The due time that orders the queue: the first-response due while there
 * was no staff response, else the resolution due. */
int64_t ticket_sla_queue_due(const tk_ticket *t);
/* "first_response" or "resolution". */
const char *ticket_clock_name(unsigned clock);

/* ---- lifecycle.c: who may do what, from where ---- */

typedef enum ticket_access {
	TICKET_READ,      /* get */
	TICKET_OWNER_ACT, /* user message, rate: the owner only */
	TICKET_STAFF_ACT, /* reply, note, assign, priority, status: admins */
} ticket_access;

/*
 * May actor do `what` to t? 0, OD_ENOTFOUND for a non-owner non-admin (so
 * nothing tells them the ticket exists), or OD_EPERM for an admin asking
 * for an owner-only act or a non-admin asking for a staff act on their
 * own ticket.
 */
int ticket_authorize(
    const tk_ticket *t, const tk_actor *actor, ticket_access what);
/*
 * May an admin set the status from t's to `to` at now? 0 or OD_ESTATE with
 * a reason in why (borrowed static text). OD_EINVAL for a status that
 * cannot be set.
 */
int ticket_status_change_check(const tk_ticket *t, int to, const char **why);
/* Apply a status change already checked: timestamps and SLA clocks. */
void ticket_status_apply(
    const ticket_policy *p, tk_ticket *t, int to, int64_t now);
/*
 * A user message on t at now: 0 (open or pending: back to open; resolved
 * within reopen: reopened) or OD_ESTATE with why. Sets *reopens when the
 * message reopens a resolved ticket.
 */
int ticket_user_message_check(const ticket_policy *p, const tk_ticket *t,
    int64_t now, bool *reopens, const char **why);
/* A staff act (reply, assign, priority) is refused on closed tickets. */
int ticket_staff_change_check(const tk_ticket *t, const char **why);
/* Rating: resolved or closed and not rated yet. */
int ticket_rate_check(const tk_ticket *t, uint32_t rating, const char **why);
/*
 * The abuse limits for a user with `open` open tickets who created
 * `recent` tickets since now - 1 h, the oldest of which at oldest_ms.
 * 0, or OD_ELIMIT with a message in msg saying which limit and what to do.
 */
int ticket_limits_check(const ticket_policy *p, uint32_t open, uint32_t recent,
    int64_t oldest_ms, int64_t now, char *msg, size_t msglen);
/* A subject from the first line of text, at most TICKET_MAX_SUBJECT
 * bytes cut at a UTF-8 boundary. Caller frees with free(). */
char *ticket_subject_from_text(const char *text);

/* ---- faq.c ---- */

/*
 * How well an entry matches a query: every word of the query (case
 * insensitive, at least 2 characters) found in the question, tags or
 * answer scores 3, 2 and 1. 0: no word matched.
 */
int ticket_faq_score(const Opsdesk__V1__FaqEntry *e, const char *query);

/* ---- stats.c ---- */

/* The p-th percentile (0..100, nearest rank) of n values (sorted in
 * place); -1 when n is 0. */
int64_t ticket_percentile(int64_t *v, size_t n, double p);

/*
 * The support aggregates, one per calendar day (UTC) in DB support_days,
 * kept by ticket__save in the same txn as the ticket: a first-response
 * clock counts on the day it concluded (met: the first staff reply came
 * by the due time; missed: it was flagged breached, by the timer or by a
 * late reply), a rating on the day it was given. A ticket closed without
 * any staff reply and never breached does not count.
 */
typedef struct ticket_support_day {
	uint64_t fr_met;
	uint64_t fr_missed;
	uint64_t csat_sum;
	uint64_t csat_count;
} ticket_support_day;

#define TICKET_DAY_MS          (24 * 3600 * 1000LL)
#define TICKET_SUPPORT_DAY_LEN 32 /* the stored value: 4 x be64 */

/*
 * What saving t (old: its state before, NULL for a new ticket) at now adds
 * to the day aggregates: up to two (day number, delta) pairs into day[]
 * and delta[]; returns how many.
 */
size_t ticket_support_changes(const tk_ticket *old, const tk_ticket *t,
    int64_t now, int64_t day[2], ticket_support_day delta[2]);
void ticket_support_day_encode(
    const ticket_support_day *d, uint8_t out[TICKET_SUPPORT_DAY_LEN]);
/* 0, or OD_EMALFORMED for a value of another length. */
int ticket_support_day_decode(
    const void *v, size_t len, ticket_support_day *out);
void ticket_support_day_add(
    ticket_support_day *to, const ticket_support_day *d);

/* One support objective evaluated over its window. */
typedef struct ticket_objective_result {
	const char *name;        /* "support_first_response", "support_csat" */
	double target;           /* percent, or the rating */
	double actual;           /* the same unit; -1: no data */
	uint64_t good;           /* met first responses; sum of ratings */
	uint64_t total;          /* concluded first responses; ratings */
	double attainment_ratio; /* met/total; average/5 (1 with no data) */
	double target_ratio;     /* target/100; target/5 */
	/* first response: 1 - missed / allowed misses (negative once
	 * overspent; 1 with no data); csat: unused, 1 */
	double budget_remaining_ratio;
	bool met; /* attainment_ratio >= target_ratio; true with no data */
} ticket_objective_result;

#define TICKET_N_OBJECTIVES 2
void ticket_objectives_eval(const ticket_objectives *o,
    const ticket_support_day *sum,
    ticket_objective_result out[TICKET_N_OBJECTIVES]);

/* ---- the service ---- */

typedef struct ticket_incidents ticket_incidents;

typedef struct ticket_service {
	ticket_policy policy;
	store *store;
	bus_publisher *publisher; /* may be NULL */
	metrics *metrics;         /* may be NULL */
	metric *m_creates;
	metric *m_breaches;
	metric *m_open;
	metric *m_notifies;
	/* The support objectives, by ticket_objectives_eval's order. */
	metric *m_slo_attainment[TICKET_N_OBJECTIVES];
	metric *m_slo_target[TICKET_N_OBJECTIVES];
	metric *m_slo_budget[TICKET_N_OBJECTIVES];
	metric *m_slo_met[TICKET_N_OBJECTIVES];
	metric *m_slo_events[TICKET_N_OBJECTIVES];
	ticket_incidents *incidents;
	rpc_client *incident_client; /* may be NULL */
	const cJSON *faq_seed;       /* config "faq"; borrowed */
	bus_resync *resync;          /* the incident snapshot; may be NULL */
} ticket_service;

/* The DB handles, in store_options.dbs order. */
enum ticket_db {
	TDB_TICKETS,
	TDB_MESSAGES,
	TDB_USER_TICKETS,
	TDB_QUEUE,
	TDB_SLA_DUE,
	TDB_CREATED_AT,
	TDB_RESOLVED_AT,
	TDB_RATED_AT,
	TDB_INCIDENT_LINKS,
	TDB_CUSTOMERS,
	TDB_FAQ,
	TDB_AUDIT,
	TDB_BREACHED,
	TDB_SUPPORT_DAYS, /* be64 day number -> ticket_support_day (schema 4)
	                   */
	/*
	 * Schema 1's indexes, always empty since schema 2. They stay listed
	 * only because the store opens no more DBs than it lists
	 * (mdb_env_set_maxdbs), so the migration could not open them
	 * otherwise. Nothing writes them: they cost no page in a commit.
	 */
	TDB_RETIRED_BY_USER,
	TDB_RETIRED_BY_STATUS,
	TDB_RETIRED_OPEN_IDS,
	TDB_RETIRED_USER_OPEN,
	TDB_COUNT
};

/* NULL-terminated DB names for store_options.dbs. */
extern const char *const ticket_db_names[];
#define TICKET_SCHEMA_VERSION 4
/*
 * store_options.migrate for the ticket store (arg unused): brings a
 * store of an older schema to `to` inside the opening txn. 1 -> 2 copies
 * by_user and user_open into user_tickets and empties them, open_ids and
 * by_status (the TDB_RETIRED_ DBs); 2 -> 3 keeps one sla_due key per
 * ticket; 3 -> 4 fills support_days from the tickets (once). OD_ESTATE for a
 * version it does not know.
 */
int ticket_store_migrate(
    store_txn *txn, unsigned from, unsigned to, void *arg);

/* The sets of user_tickets (key: be64 owner | u8 set | be64 id). */
#define TICKET_USER_ALL  0
#define TICKET_USER_OPEN 1
#define TICKET_USER_KEY  17

/*
 * Set up svc around an open store (borrowed) and publisher (borrowed, may
 * be NULL): metrics, the incident cache, and the FAQ seeded from faq_seed
 * (borrowed, may be NULL) when the FAQ has never been written. Free with
 * ticket_service_fini.
 */
int ticket_service_init(ticket_service *svc, const ticket_policy *policy,
    store *st, bus_publisher *pub, metrics *m, const cJSON *faq_seed);
void ticket_service_fini(ticket_service *svc); /* NULL-safe */
/*
 * Start ticket-service on rt: its config sections (errors printed and
 * OD_EINVAL), the store, the rpc server, the incident.* subscription
 * with the incident resync, the breach timer and HTTP. Everything
 * started stops at runtime shutdown.
 */
struct runtime;
int ticket_service_start(struct runtime *rt);
/* Check config section "faq" (borrowed, may be NULL): an array of
 * {question, answer, tags}. 0 or OD_EINVAL with err naming the entry. */
int ticket_faq_seed_check(const cJSON *faq, char *err, size_t errlen);

/* The method table for rpc_server_options (rpc arg: the ticket_service). */
extern const rpc_method ticket_methods[];
extern const size_t ticket_n_methods;

/*
 * The breach timer: find running clocks due by now through the sla_due
 * index (only the expired prefix is read), flag them in one write and
 * publish ticket.sla_breached once per clock. Also refreshes the open
 * tickets gauge. Returns how many clocks it flagged, or an od_err < 0.
 */
int ticket_breach_scan(ticket_service *svc);
void ticket_breach_timer(void *svc); /* runtime_every adapter */
/* Set the support objectives' gauges from the day aggregates as of now
 * (the breach timer calls it with its read txn). */
void ticket_objectives_metrics(ticket_service *svc, MDB_txn *txn, int64_t now);

/* ---- incidents.c ---- */

int ticket_incidents_new(ticket_incidents **out);
void ticket_incidents_free(ticket_incidents *ti); /* NULL-safe */
/* The most severe active public incident (newest first on a tie), copied
 * into a message the caller frees with protobuf_c_message_free_unpacked;
 * NULL when none. */
tk_incident *ticket_incidents_current(ticket_incidents *ti);
/* bus_subscriber callbacks (arg: the ticket_service). */
void ticket_on_incident_event(
    void *svc, const char *topic, const Opsdesk__V1__Envelope *env);
/* The bus_resync fetch: replace the active set with incident-service's
 * snapshot. 0, or an error (the worker tries again). */
int ticket_incidents_fetch(void *svc);
/*
 * Replace the active set with `active` (borrowed) as a snapshot says, and
 * notify the owners of tickets linked to incidents that are no longer
 * active. Used by resync and the units.
 */
int ticket_incidents_sync(
    ticket_service *svc, Opsdesk__V1__Incident **active, size_t n);
/* An incident resolved: drop it and notify its tickets' owners (one
 * ticket.notify each, once). */
int ticket_incident_resolved(ticket_service *svc, const tk_incident *inc);

/* ---- db.c (shared inside the core) ---- */

/* Load ticket id; caller frees with protobuf_c_message_free_unpacked. */
int ticket__load(
    MDB_txn *txn, const ticket_service *svc, uint64_t id, tk_ticket **out);
/* Store t and bring every index from old's state (NULL: new ticket) to
 * t's. */
int ticket__save(store_txn *txn, const ticket_service *svc,
    const tk_ticket *old, const tk_ticket *t);
/* Append an audit entry. */
int ticket__audit(store_txn *txn, const ticket_service *svc,
    uint64_t ticket_id, const tk_actor *actor, const char *action,
    const char *detail, const char *request_id);
/* Publish a TicketEvent or TicketNotify after txn commits (no-op without
 * a publisher). */
int ticket__publish_ticket(store_txn *txn, const ticket_service *svc,
    const char *topic, const char *change, const tk_ticket *t,
    const tk_message *m, const char *clock, const tk_incident *inc,
    const char *correlation_id);
int ticket__publish_notify(store_txn *txn, const ticket_service *svc,
    const Opsdesk__V1__TicketNotify *n);
/* Replace a string field of an unpacked message (frees the old one). */
int ticket__set_str(char **field, const char *v);
/* Count the entries of a DB. */
size_t ticket__db_entries(MDB_txn *txn, MDB_dbi db);
/* Open and pending tickets: the queue holds exactly those. */
size_t ticket__open_count(MDB_txn *txn, const ticket_service *svc);
/* The support aggregates summed over the objectives' window ending on
 * now's day (window_days gets, whatever the history). */
int ticket__support_window(MDB_txn *txn, const ticket_service *svc,
    int64_t now, ticket_support_day *sum);
/* A user_tickets key. */
void ticket__user_key(
    uint8_t k[TICKET_USER_KEY], int64_t owner, unsigned set, uint64_t id);

#endif /* OPSDESK_TICKET_H */
