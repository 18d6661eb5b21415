/*
 * status_core — status-publisher's logic: the public read model built from
 * health.*, incident.* and maintenance.* facts, the Statuspage mapping, and
 * the renderers (HTML page, Statuspage v2 JSON, RSS/Atom, SVG badges) that
 * turn one consistent view of the model into pre-rendered responses.
 *
 * Only public facts ever enter a view: private targets, non-public
 * incidents, internal timeline entries and author names are dropped when a
 * fact is applied, so no renderer can leak them by accident.
 */
#ifndef OPSDESK_STATUS_H
#define OPSDESK_STATUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "envelope.pb-c.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "status.pb-c.h"
#include "store/store.h"
#include "util/util.h"

#define STATUS_DAYS        90 /* daily bars on the page */
#define STATUS_DAY_MS      86400000LL
#define STATUS_RECENT_DAYS 14 /* "past incidents" on the page */
#define STATUS_KEEP_INCIDENTS                                                 \
	50 /* resolved incidents kept (incidents.json)                        \
	    */
#define STATUS_KEEP_MAINTENANCE 50

/* ---- mapping: prober and incident vocabularies -> Statuspage's ---- */

typedef enum status_comp {
	STATUS_OPERATIONAL = 0,
	STATUS_DEGRADED = 1,    /* degraded_performance */
	STATUS_PARTIAL = 2,     /* partial_outage */
	STATUS_MAJOR = 3,       /* major_outage */
	STATUS_MAINTENANCE = 4, /* under_maintenance */
} status_comp;

typedef enum status_indicator {
	STATUS_IND_NONE = 0,
	STATUS_IND_MINOR = 1,
	STATUS_IND_MAJOR = 2,
	STATUS_IND_CRITICAL = 3,
} status_indicator;

/* "operational", "degraded_performance", ... (static). */
const char *status_comp_name(status_comp c);
/*
 * A prober state as a Statuspage component status. A down component is a
 * major outage unless others of its group are still working
 * (group_has_working): then the group as a whole is only partially out, and
 * so is this component's share of it. Unknown is shown as operational (no
 * known problem) — the page never invents an outage.
 */
status_comp status_map_state(
    Opsdesk__V1__ComponentState st, bool group_has_working);
/* "none", "minor", "major", "critical" (static). */
const char *status_indicator_name(status_indicator ind);
/*
 * The page's indicator and description from the public components'
 * statuses and the worst impact of the unresolved public incidents
 * (STATUS_IND_NONE when none). *desc is static.
 */
void status_overall(const status_comp *comps, size_t n,
    status_indicator incident_impact, status_indicator *ind,
    const char **desc);
/* An incident's impact from its severity. */
status_indicator status_impact_of(Opsdesk__V1__Severity sev);
/* "investigating", ..., "resolved" (static); unspecified -> investigating. */
const char *status_incident_status_name(Opsdesk__V1__IncidentStatus s);
/*
 * A maintenance window's Statuspage status at now_ms: "scheduled",
 * "in_progress" or "completed"; NULL for a cancelled window (never shown).
 * A scheduled window whose time has come is in progress even before
 * incident-service says so, so the page does not lag behind the clock.
 */
const char *status_maintenance_status(
    const Opsdesk__V1__MaintenanceWindow *w, int64_t now_ms);

/* ---- config: the status_page section ---- */

typedef struct status_comp_conf {
	char *id;
	char *name;        /* NULL: the prober's name */
	char *group;       /* NULL: the prober's group */
	char *description; /* NULL: none */
} status_comp_conf;

typedef struct status_conf {
	char *title; /* page name */
	char *url;   /* public URL, without a trailing slash */
	char *time_zone;
	char *page_id;
	status_comp_conf *comps; /* page order */
	size_t n_comps;
	bool show_unlisted; /* public targets not listed: shown after */
	int64_t resync_interval_ms;
	int64_t history_interval_ms;
	/* The chat bot's username (gateway.bot_username, without '@'), for
	 * the page's Subscribe link; NULL: no chat link. Set by the
	 * service from the gateway section. */
	char *bot_username;
	/* status_page.templates (NULL: the default), the public wording
	 * incident-service gives automatic incidents, by status_tmpl. */
	char *templates[4];
} status_conf;

/*
 * Read the status_page section (section may be NULL: defaults). Errors name
 * the key ("status_page.components[1].id: expected a string"). On success
 * *out is filled; free it with status_conf_fini.
 */
int status_conf_parse(
    const cJSON *section, status_conf *out, char *err, size_t errlen);
void status_conf_fini(status_conf *c); /* NULL-safe */

/* ---- public wording of automatic incidents ---- */

typedef enum status_tmpl {
	STATUS_TMPL_DOWN = 0,
	STATUS_TMPL_DEGRADED = 1,
	STATUS_TMPL_MONITORING = 2,
	STATUS_TMPL_RESOLVED = 3,
} status_tmpl;

/*
 * The template's text for component name, "{component}" replaced; the
 * same defaults and substitution as incident-service's (inc_public_text),
 * which writes these texts. out is always terminated.
 */
void status_template_text(const status_conf *c, status_tmpl which,
    const char *name, char *out, size_t size);
/*
 * An automatic incident's public entry that the system wrote in the
 * probe's words ("Web application is down: Failed to connect to
 * 10.0.0.5 port 8443 ... Opened automatically.": incidents opened before
 * the templates existed) gets the template's text for its status in out
 * (true). false: the entry is public as it is — a person's update, a
 * template's text, or not an automatic incident.
 */
bool status_public_rewording(const status_conf *c,
    const Opsdesk__V1__Incident *inc, const Opsdesk__V1__TimelineEntry *e,
    char *out, size_t size);

/* ---- the view: one consistent, public-only picture of the model ---- */

typedef struct status_view_comp {
	const Opsdesk__V1__StatusComponentRecord *rec; /* borrowed */
	const char *name;        /* config override or rec->name */
	const char *group;       /* "" when none */
	const char *description; /* NULL when none */
	status_comp status;
	unsigned position; /* 1-based */
	double uptime_30d; /* percent; < 0: no data */
	double uptime_90d;
	/* The prober has not settled on a state yet (shown "No data", and
	 * today's unsettled checks do not paint a red bar). */
	bool no_data;
	/* The prober finds it down: it has no response time now, so no
	 * chart and no "last check" latency (the last one is from before the
	 * outage and would read as if it still answered). */
	bool not_responding;
	int group_index; /* into view.groups, -1: none */
} status_view_comp;

typedef struct status_view_group {
	const char *name;
	char id[40];         /* "group-<n>" */
	status_comp status;  /* worst of its components */
	size_t first, count; /* its components: comps[first..first+count) */
	int64_t created_ms, updated_ms;
	unsigned position;
} status_view_group;

typedef struct status_view {
	const status_conf *conf;
	int64_t now_ms;
	int64_t updated_ms; /* last change of anything shown */
	status_indicator indicator;
	const char *description;
	status_view_comp *comps; /* public components, page order (by group) */
	size_t n_comps;
	status_view_group *groups;
	size_t n_groups;
	/* Public incidents, newest first: unresolved, then all kept. */
	const Opsdesk__V1__Incident **unresolved;
	size_t n_unresolved;
	/* Of those, in monitoring: a fix is in and being watched; they do
	 * not raise the indicator (the components tell the state). */
	size_t n_monitoring;
	const Opsdesk__V1__Incident **incidents;
	size_t n_incidents;
	/* Maintenance windows by start: active, upcoming, all kept. */
	const Opsdesk__V1__MaintenanceWindow **mnt_active;
	size_t n_mnt_active;
	const Opsdesk__V1__MaintenanceWindow **mnt_upcoming;
	size_t n_mnt_upcoming;
	const Opsdesk__V1__MaintenanceWindow **mnt_all;
	size_t n_mnt_all;
} status_view;

/* The view component with this id, or NULL. */
const status_view_comp *status_view_find(const status_view *v, const char *id);
/* A component's status as text, for an id that may be private or unknown
 * (then NULL): renderers only name public components. */
const char *status_view_comp_name(const status_view *v, const char *id);

/* ---- the read model ---- */

typedef struct status_model status_model;

/* A component whose public status changed, for status.changed. */
typedef struct status_change {
	char *id, *name;
	const char *old_status, *new_status; /* static */
} status_change;

typedef struct status_changes {
	status_indicator old_indicator, indicator;
	const char *description; /* static */
	status_change *items;
	size_t n;
	bool any; /* indicator or a component changed */
} status_changes;
void status_changes_fini(status_changes *c); /* NULL-safe */

/*
 * Create the model over conf (borrowed, must outlive it) and st (borrowed;
 * NULL keeps the model in memory only, for tests), loading what st holds.
 */
int status_model_open(status_model **out, const status_conf *conf, store *st);
void status_model_close(status_model *m); /* NULL-safe; flushes nothing */
/* The named DBs the model needs (for store_options.dbs). */
extern const char *const status_model_dbs[];

/*
 * Apply facts. Each returns 0 (also when the fact changes nothing, or is
 * private and ignored), OD_EINVAL for a fact without an id, or a store
 * error; the change is durable when it returns. Facts are borrowed.
 */
int status_model_health_changed(
    status_model *m, const Opsdesk__V1__HealthChanged *hc);
int status_model_health_result(
    status_model *m, const Opsdesk__V1__HealthResult *hr);
/* health.affected: a regional target's affected locations changed, its
 * state did not ("Partial outage: affects users in …"). */
int status_model_health_affected(
    status_model *m, const Opsdesk__V1__HealthAffected *ha);
int status_model_incident(status_model *m, const Opsdesk__V1__Incident *inc);
int status_model_maintenance(
    status_model *m, const Opsdesk__V1__MaintenanceWindow *w);
/* Dispatch an event on its payload; other payloads are ignored. */
int status_model_event(status_model *m, const Opsdesk__V1__Envelope *env);

/*
 * Resync from owners' snapshots: the snapshot replaces what the model knows
 * of that source, except for facts the model heard of after the snapshot
 * was taken (newer timestamps win), so a racing event is not undone.
 */
int status_model_resync_health(
    status_model *m, const Opsdesk__V1__HealthCurrent *cur);
int status_model_resync_incidents(
    status_model *m, const Opsdesk__V1__IncidentSnapshot *snap);
/* Daily bars and uptime of one target from the prober's history. */
int status_model_history(status_model *m, const Opsdesk__V1__TargetHistory *h);
/* Ids of the public components (for history requests); caller frees each
 * and the array with free(). */
int status_model_public_ids(status_model *m, char ***ids, size_t *n);

/*
 * Lock the model, build the view at now_ms, call fn(view, arg), unlock.
 * The view and everything it points to are valid only inside fn.
 */
int status_model_with_view(status_model *m, int64_t now_ms,
    int (*fn)(const status_view *v, void *arg), void *arg);
/*
 * What changed publicly since the last call (the first call after open
 * compares with what was stored), and remember the new state durably.
 * Caller finis *out.
 */
int status_model_take_changes(
    status_model *m, int64_t now_ms, status_changes *out);
/* A counter bumped by every change that alters a view (cheap dirty check). */
uint64_t status_model_version(status_model *m);

/* ---- renderers: a view in, bytes appended to b (sbuf errors sticky) ---- */

typedef enum status_json_kind {
	STATUS_JSON_SUMMARY,
	STATUS_JSON_STATUS,
	STATUS_JSON_COMPONENTS,
	STATUS_JSON_INCIDENTS,
	STATUS_JSON_UNRESOLVED,
	STATUS_JSON_MAINTENANCES,
	STATUS_JSON_MNT_UPCOMING,
	STATUS_JSON_MNT_ACTIVE,
} status_json_kind;

/* Statuspage v2 JSON. 0 or OD_ENOMEM. */
int status_render_json(const status_view *v, status_json_kind kind, sbuf *b);
/* The HTML page. */
int status_render_html(const status_view *v, sbuf *b);
/* RSS 2.0 and Atom 1.0 feeds of incidents. */
int status_render_rss(const status_view *v, sbuf *b);
int status_render_atom(const status_view *v, sbuf *b);
/* A flat badge: label | message in color ("#4c1" ...). */
void status_render_badge(
    const char *label, const char *message, const char *color, sbuf *b);
/* The badge of a component's state and of its 30-day uptime. */
void status_render_badge_state(const status_view_comp *c, sbuf *b);
void status_render_badge_uptime(const status_view_comp *c, sbuf *b);
/* The page's overall badge: "status | All Systems Operational". */
void status_render_badge_overall(const status_view *v, sbuf *b);
/*
 * A response-time chart: inline SVG of p95 and p50 over pts (oldest
 * first; a point without checks is a gap), labelled for screen readers.
 * false (nothing appended) when no point has data.
 */
bool status_render_chart(const Opsdesk__V1__LatencyPoint *const *pts, size_t n,
    const char *label, sbuf *b);
/* The latest slice's p50/p95 and the highest value over pts; false (out
 * parameters untouched) when no point has data. */
bool status_latency_summary(const Opsdesk__V1__LatencyPoint *const *pts,
    size_t n, uint32_t *p50, uint32_t *p95, uint32_t *peak);
/* Uptime as the page shows it: "99.95%" or "no data" (out >= 16). */
void status_format_uptime(double pct, char *out, size_t size);

/* ---- pre-rendered responses ---- */

typedef struct status_page {
	char *path;
	const char *content_type;  /* static */
	const char *cache_control; /* static */
	char *body;
	size_t len;
	char etag[24]; /* "\"<16 hex>\"" */
} status_page;

typedef struct status_pages status_pages;

/* Render every route from v. The set is immutable once built and
 * reference counted: status_pages_free drops the builder's reference. */
int status_pages_build(const status_view *v, status_pages **out);
void status_pages_free(status_pages *p); /* NULL-safe; drops a reference */
/* status_pages_free for a release callback (arg: the status_pages). */
void status_pages_release(void *p);
/* The response for path, or NULL. Borrowed from p. */
const status_page *status_pages_find(const status_pages *p, const char *path);
/* "Fri, 27 Nov 2026 13:05:00 GMT" of the model's last change. */
const char *status_pages_last_modified(const status_pages *p);
int64_t status_pages_modified_ms(const status_pages *p);
size_t status_pages_count(const status_pages *p);

/*
 * The holder of the current set: swapped atomically by the renderer, read
 * by HTTP handlers, which hold a reference on the set while they send its
 * bytes, so a swap never frees bytes in flight.
 */
typedef struct status_site {
	pthread_mutex_t mu;
	status_pages *pages; /* owned */
} status_site;

int status_site_init(status_site *s);
void status_site_fini(status_site *s);
/* Replace the set (takes ownership of p) and drop the old one. */
void status_site_swap(status_site *s, status_pages *p);

/*
 * Answer a GET of path from the site, honouring If-None-Match and
 * If-Modified-Since (either may be NULL): fills status, headers and, for a
 * 200, the page's body, valid until the caller drops the reference in
 * hold with status_pages_free. *status is 200, 304 or 404.
 */
typedef struct status_answer {
	int status;
	const char *content_type;
	const char *body;   /* borrowed from hold */
	status_pages *hold; /* a reference (200 only), else NULL */
	size_t len;
	char etag[24];
	char last_modified[40];
	const char *cache_control;
} status_answer;
int status_site_answer(status_site *s, const char *path,
    const char *if_none_match, const char *if_modified_since,
    status_answer *out);

/* RFC 7231 date of ms (out >= 30); and parse one back (0 or OD_EINVAL). */
void status_http_date(int64_t ms, char *out, size_t size);
int status_http_date_parse(const char *s, int64_t *out_ms);

/* ---- the chat summary (StatusRequest.summary) ---- */

/*
 * Fill sum from v. Every string and nested message is allocated with
 * alloc(arg, size) (zeroed memory the caller's arena frees), so sum
 * outlives the view.
 */
int status_summary_fill(const status_view *v, Opsdesk__V1__StatusSummary *sum,
    void *(*alloc)(void *arg, size_t size), void *arg);

#endif /* OPSDESK_STATUS_H */
