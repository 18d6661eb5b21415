/*
 * render_json — the Statuspage v2 public API (reference/statuspage-v2.md):
 * every field present with its type, null where Statuspage has null.
 */
#include <stdio.h>
#include <string.h>

#include "status.h"

/* Time as Statuspage writes it, or JSON null for "never". */
static cJSON *
add_time(cJSON *o, const char *name, int64_t ms)
{
	if (ms <= 0) {
		return cJSON_AddNullToObject(o, name);
	}
	char buf[32];
	od_format_iso8601_ms(ms, buf, sizeof(buf));
	return cJSON_AddStringToObject(o, name, buf);
}

static cJSON *
add_str_or_null(cJSON *o, const char *name, const char *s)
{
	if (s == NULL || s[0] == '\0') {
		return cJSON_AddNullToObject(o, name);
	}
	return cJSON_AddStringToObject(o, name, s);
}

static cJSON *
page_json(const status_view *v)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", v->conf->page_id);
	cJSON_AddStringToObject(o, "name", v->conf->title);
	cJSON_AddStringToObject(o, "url", v->conf->url);
	cJSON_AddStringToObject(o, "time_zone", v->conf->time_zone);
	add_time(o, "updated_at", v->updated_ms);
	return o;
}

static cJSON *
status_json(const status_view *v)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(
	    o, "indicator", status_indicator_name(v->indicator));
	cJSON_AddStringToObject(o, "description", v->description);
	return o;
}

/* One window of the response-time extension: slice length, first
 * slice's start, p50 and p95 per slice (null: no checks). */
static void
add_series(cJSON *o, const char *name, Opsdesk__V1__LatencyPoint *const *pts,
    size_t n)
{
	if (n == 0) {
		cJSON_AddNullToObject(o, name);
		return;
	}
	cJSON *w = cJSON_AddObjectToObject(o, name);
	cJSON *p50 = cJSON_CreateArray(), *p95 = cJSON_CreateArray();
	int64_t slice = n > 1 ? pts[1]->start_ms - pts[0]->start_ms : 0;
	cJSON_AddNumberToObject(w, "slice_seconds", (double) (slice / 1000));
	add_time(w, "start", pts[0]->start_ms);
	for (size_t i = 0; i < n; i++) {
		cJSON_AddItemToArray(p50,
		    pts[i]->checks ? cJSON_CreateNumber(pts[i]->p50_ms)
		                   : cJSON_CreateNull());
		cJSON_AddItemToArray(p95,
		    pts[i]->checks ? cJSON_CreateNumber(pts[i]->p95_ms)
		                   : cJSON_CreateNull());
	}
	cJSON_AddItemToObject(w, "p50_ms", p50);
	cJSON_AddItemToObject(w, "p95_ms", p95);
}

/* opsdesk's extension (Statuspage clients ignore unknown fields): the
 * last response time and the charts' series in milliseconds. */
static void
add_response_time(cJSON *o, const status_view_comp *c)
{
	const Opsdesk__V1__StatusComponentRecord *r = c->rec;
	if (r->latency_at_ms == 0 && r->n_latency_24h == 0
	    && r->n_latency_7d == 0 && r->n_latency_30d == 0) {
		cJSON_AddNullToObject(o, "opsdesk_response_time");
		return;
	}
	cJSON *rt = cJSON_AddObjectToObject(o, "opsdesk_response_time");
	if (r->latency_at_ms > 0 && !c->not_responding) {
		cJSON_AddNumberToObject(rt, "current_ms", r->latency_ms);
	} else {
		cJSON_AddNullToObject(rt, "current_ms");
	}
	add_series(rt, "24h", r->latency_24h, r->n_latency_24h);
	add_series(rt, "7d", r->latency_7d, r->n_latency_7d);
	add_series(rt, "30d", r->latency_30d, r->n_latency_30d);
}

static cJSON *
comp_json(const status_view *v, const status_view_comp *c)
{
	cJSON *o = cJSON_CreateObject();
	char day[32];
	cJSON_AddStringToObject(o, "id", c->rec->id);
	cJSON_AddStringToObject(o, "name", c->name);
	cJSON_AddStringToObject(o, "status", status_comp_name(c->status));
	add_time(o, "created_at", c->rec->created_ms);
	add_time(o, "updated_at", c->rec->updated_ms);
	cJSON_AddNumberToObject(o, "position", c->position);
	add_str_or_null(o, "description", c->description);
	cJSON_AddBoolToObject(o, "showcase", true);
	if (c->rec->created_ms > 0) {
		od_format_iso8601(c->rec->created_ms, day, sizeof(day));
		day[10] = '\0';
		cJSON_AddStringToObject(o, "start_date", day);
	} else {
		cJSON_AddNullToObject(o, "start_date");
	}
	add_str_or_null(o, "group_id",
	    c->group_index >= 0 ? v->groups[c->group_index].id : NULL);
	cJSON_AddStringToObject(o, "page_id", v->conf->page_id);
	cJSON_AddBoolToObject(o, "group", false);
	cJSON_AddBoolToObject(o, "only_show_if_degraded", false);
	add_response_time(o, c);
	return o;
}

static cJSON *
group_json(const status_view *v, const status_view_group *g)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", g->id);
	cJSON_AddStringToObject(o, "name", g->name);
	cJSON_AddStringToObject(o, "status", status_comp_name(g->status));
	add_time(o, "created_at", g->created_ms);
	add_time(o, "updated_at", g->updated_ms);
	cJSON_AddNumberToObject(o, "position", g->position);
	cJSON_AddNullToObject(o, "description");
	cJSON_AddBoolToObject(o, "showcase", false);
	cJSON_AddNullToObject(o, "start_date");
	cJSON_AddNullToObject(o, "group_id");
	cJSON_AddStringToObject(o, "page_id", v->conf->page_id);
	cJSON_AddBoolToObject(o, "group", true);
	cJSON_AddBoolToObject(o, "only_show_if_degraded", false);
	cJSON *ids = cJSON_AddArrayToObject(o, "components");
	for (size_t k = g->first; k < g->first + g->count; k++) {
		cJSON_AddItemToArray(
		    ids, cJSON_CreateString(v->comps[k].rec->id));
	}
	return o;
}

/* Every component in page order, each group just before its members. */
static cJSON *
components_json(const status_view *v)
{
	cJSON *a = cJSON_CreateArray();
	int last_group = -1;
	for (size_t i = 0; i < v->n_comps; i++) {
		const status_view_comp *c = &v->comps[i];
		if (c->group_index >= 0 && c->group_index != last_group) {
			last_group = c->group_index;
			cJSON_AddItemToArray(
			    a, group_json(v, &v->groups[c->group_index]));
		}
		cJSON_AddItemToArray(a, comp_json(v, c));
	}
	return a;
}

/* The public components named by ids, as full component objects. */
static cJSON *
named_components_json(const status_view *v, char **ids, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		const status_view_comp *c = status_view_find(v, ids[i]);
		if (c != NULL) {
			cJSON_AddItemToArray(a, comp_json(v, c));
		}
	}
	return a;
}

static void
add_shortlink(cJSON *o, const status_view *v, const char *id)
{
	char link[1200];
	snprintf(link, sizeof(link), "%s/#%s", v->conf->url, id);
	cJSON_AddStringToObject(o, "shortlink", link);
}

static cJSON *
update_json(const char *id, const char *status, const char *body,
    const char *incident_id, int64_t at_ms, cJSON *affected)
{
	cJSON *u = cJSON_CreateObject();
	cJSON_AddStringToObject(u, "id", id);
	cJSON_AddStringToObject(u, "status", status);
	cJSON_AddStringToObject(u, "body", body);
	cJSON_AddStringToObject(u, "incident_id", incident_id);
	add_time(u, "created_at", at_ms);
	add_time(u, "updated_at", at_ms);
	add_time(u, "display_at", at_ms);
	cJSON_AddItemToObject(u, "affected_components", affected);
	return u;
}

static cJSON *
incident_json(const status_view *v, const Opsdesk__V1__Incident *in)
{
	cJSON *o = cJSON_CreateObject();
	char id[32];
	snprintf(id, sizeof(id), "INC-%llu", (unsigned long long) in->id);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", in->title);
	cJSON_AddStringToObject(
	    o, "status", status_incident_status_name(in->status));
	add_time(o, "created_at", in->created_ms);
	add_time(o, "updated_at", in->updated_ms);
	add_time(o, "monitoring_at", in->monitoring_ms);
	add_time(o, "resolved_at", in->resolved_ms);
	cJSON_AddStringToObject(o, "impact",
	    status_indicator_name(status_impact_of(in->severity)));
	add_shortlink(o, v, id);
	add_time(o, "started_at", in->created_ms);
	cJSON_AddStringToObject(o, "page_id", v->conf->page_id);

	/* Updates newest first, as Statuspage lists them; the first update
	 * names the public components the incident touched. */
	cJSON *ups = cJSON_AddArrayToObject(o, "incident_updates");
	for (size_t k = in->n_timeline; k-- > 0;) {
		const Opsdesk__V1__TimelineEntry *e = in->timeline[k];
		char uid[64];
		snprintf(uid, sizeof(uid), "%s-%zu", id, k + 1);
		cJSON *aff = cJSON_CreateArray();
		for (size_t c = 0; k == 0 && c < in->n_components; c++) {
			const Opsdesk__V1__AffectedComponent *ac
			    = in->components[c];
			const char *name
			    = status_view_comp_name(v, ac->component_id);
			if (name == NULL) {
				continue;
			}
			cJSON *a = cJSON_CreateObject();
			cJSON_AddStringToObject(a, "code", ac->component_id);
			cJSON_AddStringToObject(a, "name", name);
			cJSON_AddStringToObject(a, "old_status",
			    status_comp_name(STATUS_OPERATIONAL));
			cJSON_AddStringToObject(a, "new_status",
			    status_comp_name(
			        status_map_state(ac->state, false)));
			cJSON_AddItemToArray(aff, a);
		}
		const char *st = e->status != 0
		    ? status_incident_status_name(e->status)
		    : status_incident_status_name(in->status);
		cJSON_AddItemToArray(
		    ups, update_json(uid, st, e->text, id, e->at_ms, aff));
	}
	cJSON *comps = cJSON_AddArrayToObject(o, "components");
	for (size_t c = 0; c < in->n_components; c++) {
		const status_view_comp *vc
		    = status_view_find(v, in->components[c]->component_id);
		if (vc != NULL) {
			cJSON_AddItemToArray(comps, comp_json(v, vc));
		}
	}
	return o;
}

static cJSON *
maintenance_json(const status_view *v, const Opsdesk__V1__MaintenanceWindow *w)
{
	cJSON *o = cJSON_CreateObject();
	char id[32];
	const char *st = status_maintenance_status(w, v->now_ms);
	bool done = st != NULL && strcmp(st, "completed") == 0;
	snprintf(id, sizeof(id), "MNT-%llu", (unsigned long long) w->id);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "name", w->title);
	cJSON_AddStringToObject(o, "status", st ? st : "completed");
	add_time(o, "created_at", w->created_ms);
	add_time(o, "updated_at", w->updated_ms);
	cJSON_AddNullToObject(o, "monitoring_at");
	add_time(o, "resolved_at", done ? w->end_ms : 0);
	cJSON_AddStringToObject(o, "impact", "maintenance");
	add_shortlink(o, v, id);
	add_time(o, "started_at", w->start_ms);
	cJSON_AddStringToObject(o, "page_id", v->conf->page_id);
	cJSON *ups = cJSON_AddArrayToObject(o, "incident_updates");
	char uid[64];
	snprintf(uid, sizeof(uid), "%s-1", id);
	cJSON *aff = cJSON_CreateArray();
	for (size_t c = 0; c < w->n_components; c++) {
		const char *name = status_view_comp_name(v, w->components[c]);
		if (name == NULL) {
			continue;
		}
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "code", w->components[c]);
		cJSON_AddStringToObject(a, "name", name);
		cJSON_AddStringToObject(a, "old_status", "operational");
		cJSON_AddStringToObject(a, "new_status", "under_maintenance");
		cJSON_AddItemToArray(aff, a);
	}
	cJSON_AddItemToArray(ups,
	    update_json(uid, st ? st : "completed",
	        w->description[0] ? w->description : w->title, id,
	        w->created_ms ? w->created_ms : w->start_ms, aff));
	cJSON_AddItemToObject(o, "components",
	    named_components_json(v, w->components, w->n_components));
	add_time(o, "scheduled_for", w->start_ms);
	add_time(o, "scheduled_until", w->end_ms);
	return o;
}

static cJSON *
incidents_json(
    const status_view *v, const Opsdesk__V1__Incident *const *l, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON_AddItemToArray(a, incident_json(v, l[i]));
	}
	return a;
}

static cJSON *
maintenances_json(const status_view *v,
    const Opsdesk__V1__MaintenanceWindow *const *l, size_t n, cJSON *a)
{
	if (a == NULL) {
		a = cJSON_CreateArray();
	}
	for (size_t i = 0; i < n; i++) {
		cJSON_AddItemToArray(a, maintenance_json(v, l[i]));
	}
	return a;
}

int
status_render_json(const status_view *v, status_json_kind kind, sbuf *b)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *m;
	int rv = OD_ENOMEM;
	if (root == NULL) {
		return rv;
	}
	cJSON_AddItemToObject(root, "page", page_json(v));
	switch (kind) {
	case STATUS_JSON_SUMMARY:
		cJSON_AddItemToObject(root, "status", status_json(v));
		cJSON_AddItemToObject(root, "components", components_json(v));
		cJSON_AddItemToObject(root, "incidents",
		    incidents_json(v, v->unresolved, v->n_unresolved));
		m = maintenances_json(v, v->mnt_active, v->n_mnt_active, NULL);
		maintenances_json(v, v->mnt_upcoming, v->n_mnt_upcoming, m);
		cJSON_AddItemToObject(root, "scheduled_maintenances", m);
		break;
	case STATUS_JSON_STATUS:
		cJSON_AddItemToObject(root, "status", status_json(v));
		break;
	case STATUS_JSON_COMPONENTS:
		cJSON_AddItemToObject(root, "components", components_json(v));
		break;
	case STATUS_JSON_INCIDENTS:
		cJSON_AddItemToObject(root, "incidents",
		    incidents_json(v, v->incidents, v->n_incidents));
		break;
	case STATUS_JSON_UNRESOLVED:
		cJSON_AddItemToObject(root, "incidents",
		    incidents_json(v, v->unresolved, v->n_unresolved));
		break;
	case STATUS_JSON_MAINTENANCES:
		cJSON_AddItemToObject(root, "scheduled_maintenances",
		    maintenances_json(v, v->mnt_all, v->n_mnt_all, NULL));
		break;
	case STATUS_JSON_MNT_UPCOMING:
		cJSON_AddItemToObject(root, "scheduled_maintenances",
		    maintenances_json(
		        v, v->mnt_upcoming, v->n_mnt_upcoming, NULL));
		break;
	case STATUS_JSON_MNT_ACTIVE:
		cJSON_AddItemToObject(root, "scheduled_maintenances",
		    maintenances_json(
		        v, v->mnt_active, v->n_mnt_active, NULL));
		break;
	}
	/* cJSON drops items it could not allocate; printing is where an
	 * out-of-memory anywhere in the tree shows up as NULL. */
	char *text = cJSON_PrintUnformatted(root);
	if (text != NULL) {
		sbuf_append(b, text);
		cJSON_free(text);
		rv = sbuf_failed(b) ? OD_ENOMEM : 0;
	}
	cJSON_Delete(root);
	return rv;
}
