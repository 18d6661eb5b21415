/*
 * summary — the view as a StatusSummary message, for /status_page in chat.
 * Rendering to chat text is the gateway's; this only selects and copies
 * public facts.
 */
#include <string.h>

#include "status.h"

typedef struct arena {
	void *(*alloc)(void *arg, size_t size);
	void *arg;
	bool failed;
} arena;

static void *
a_alloc(arena *a, size_t size)
{
	void *p = a->alloc(a->arg, size ? size : 1);
	if (p == NULL) {
		a->failed = true;
	}
	return p;
}

static char *
a_strdup(arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = a_alloc(a, n);
	if (p == NULL) {
		return (char *) "";
	}
	memcpy(p, s, n);
	return p;
}

static Opsdesk__V1__PublicIncident *
public_incident(
    const status_view *v, const Opsdesk__V1__Incident *in, arena *a)
{
	Opsdesk__V1__PublicIncident *pi = a_alloc(a, sizeof(*pi));
	if (pi == NULL) {
		return NULL;
	}
	opsdesk__v1__public_incident__init(pi);
	pi->id = in->id;
	pi->name = a_strdup(a, in->title);
	pi->status = a_strdup(a, status_incident_status_name(in->status));
	pi->impact = a_strdup(
	    a, status_indicator_name(status_impact_of(in->severity)));
	pi->latest_update = in->n_timeline > 0
	    ? a_strdup(a, in->timeline[in->n_timeline - 1]->text)
	    : (char *) "";
	pi->created_ms = in->created_ms;
	pi->updated_ms = in->updated_ms;
	pi->resolved_ms = in->resolved_ms;
	pi->components = a_alloc(a, (in->n_components + 1) * sizeof(char *));
	if (pi->components == NULL) {
		return pi;
	}
	for (size_t i = 0; i < in->n_components; i++) {
		const char *name = status_view_comp_name(
		    v, in->components[i]->component_id);
		if (name != NULL) {
			pi->components[pi->n_components++] = a_strdup(a, name);
		}
	}
	return pi;
}

static Opsdesk__V1__MaintenanceWindow *
public_window(
    const status_view *v, const Opsdesk__V1__MaintenanceWindow *w, arena *a)
{
	Opsdesk__V1__MaintenanceWindow *o = a_alloc(a, sizeof(*o));
	if (o == NULL) {
		return NULL;
	}
	opsdesk__v1__maintenance_window__init(o);
	o->id = w->id;
	o->title = a_strdup(a, w->title);
	o->description = a_strdup(a, w->description);
	o->start_ms = w->start_ms;
	o->end_ms = w->end_ms;
	o->status
	    = strcmp(status_maintenance_status(w, v->now_ms), "in_progress")
	        == 0
	    ? OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS
	    : OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_SCHEDULED;
	o->created_ms = w->created_ms;
	o->updated_ms = w->updated_ms;
	o->components = a_alloc(a, (w->n_components + 1) * sizeof(char *));
	if (o->components == NULL) {
		return o;
	}
	/* Only public component names leave the service. */
	for (size_t i = 0; i < w->n_components; i++) {
		const char *name = status_view_comp_name(v, w->components[i]);
		if (name != NULL) {
			o->components[o->n_components++] = a_strdup(a, name);
		}
	}
	return o;
}

int
status_summary_fill(const status_view *v, Opsdesk__V1__StatusSummary *sum,
    void *(*alloc)(void *arg, size_t size), void *arg)
{
	arena a = { alloc, arg, false };
	sum->indicator = a_strdup(&a, status_indicator_name(v->indicator));
	sum->description = a_strdup(&a, v->description);
	sum->page_url = a_strdup(&a, v->conf->url);
	sum->page_name = a_strdup(&a, v->conf->title);
	sum->updated_ms = v->updated_ms;

	sum->components = a_alloc(&a, (v->n_comps + 1) * sizeof(void *));
	for (size_t i = 0; sum->components != NULL && i < v->n_comps; i++) {
		const status_view_comp *c = &v->comps[i];
		Opsdesk__V1__PublicComponent *pc = a_alloc(&a, sizeof(*pc));
		if (pc == NULL) {
			break;
		}
		opsdesk__v1__public_component__init(pc);
		pc->id = a_strdup(&a, c->rec->id);
		pc->name = a_strdup(&a, c->name);
		pc->group = a_strdup(&a, c->group);
		pc->status = a_strdup(&a, status_comp_name(c->status));
		pc->uptime_30d = c->uptime_30d;
		pc->uptime_90d = c->uptime_90d;
		pc->updated_ms = c->rec->updated_ms;
		pc->description
		    = a_strdup(&a, c->description ? c->description : "");
		pc->position = c->position;
		pc->has_latency
		    = c->rec->latency_at_ms > 0 && !c->not_responding;
		pc->latency_ms = c->rec->latency_ms;
		pc->slo_target = c->rec->slo_target;
		pc->slo_attainment = c->rec->slo_attainment;
		uint32_t peak = 0;
		(void) status_latency_summary(
		    (const Opsdesk__V1__LatencyPoint *const *)
		        c->rec->latency_24h,
		    c->rec->n_latency_24h, &pc->p50_24h_ms, &pc->p95_24h_ms,
		    &peak);
		sum->components[sum->n_components++] = pc;
	}
	sum->incidents = a_alloc(&a, (v->n_unresolved + 1) * sizeof(void *));
	for (size_t i = 0; sum->incidents != NULL && i < v->n_unresolved;
	     i++) {
		Opsdesk__V1__PublicIncident *pi
		    = public_incident(v, v->unresolved[i], &a);
		if (pi == NULL) {
			break;
		}
		sum->incidents[sum->n_incidents++] = pi;
	}
	size_t nm = v->n_mnt_active + v->n_mnt_upcoming;
	sum->maintenance = a_alloc(&a, (nm + 1) * sizeof(void *));
	for (size_t i = 0; sum->maintenance != NULL && i < nm; i++) {
		const Opsdesk__V1__MaintenanceWindow *w = i < v->n_mnt_active
		    ? v->mnt_active[i]
		    : v->mnt_upcoming[i - v->n_mnt_active];
		Opsdesk__V1__MaintenanceWindow *o = public_window(v, w, &a);
		if (o == NULL) {
			break;
		}
		sum->maintenance[sum->n_maintenance++] = o;
	}
	return a.failed ? OD_ENOMEM : 0;
}
