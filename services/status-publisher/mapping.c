/*
 * mapping — the prober's and incident-service's vocabularies in
 * Statuspage's words (shared/reference/statuspage-v2.md).
 */
#include <stdio.h>
#include <string.h>

#include "config/public_text.h"
#include "status.h"

static const char *const comp_names[] = {
	[STATUS_OPERATIONAL] = "operational",
	[STATUS_DEGRADED] = "degraded_performance",
	[STATUS_PARTIAL] = "partial_outage",
	[STATUS_MAJOR] = "major_outage",
	[STATUS_MAINTENANCE] = "under_maintenance",
};

const char *
status_comp_name(status_comp c)
{
	if ((unsigned) c >= sizeof(comp_names) / sizeof(comp_names[0])) {
		return comp_names[STATUS_OPERATIONAL];
	}
	return comp_names[c];
}

status_comp
status_map_state(Opsdesk__V1__ComponentState st, bool group_has_working)
{
	switch (st) {
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED:
		return STATUS_DEGRADED;
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN:
		return group_has_working ? STATUS_PARTIAL : STATUS_MAJOR;
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE:
		return STATUS_MAINTENANCE;
	default:
		return STATUS_OPERATIONAL;
	}
}

static const char *const indicator_names[]
    = { "none", "minor", "major", "critical" };

const char *
status_indicator_name(status_indicator ind)
{
	if ((unsigned) ind > STATUS_IND_CRITICAL) {
		return indicator_names[0];
	}
	return indicator_names[ind];
}

/* What an incident alone says when it outweighs the components. */
static const char *const incident_desc[] = {
	"All Systems Operational",
	"Minor Service Outage",
	"Partial System Outage",
	"Major System Outage",
};

void
status_overall(const status_comp *comps, size_t n,
    status_indicator incident_impact, status_indicator *ind, const char **desc)
{
	size_t count[STATUS_MAINTENANCE + 1] = { 0 };
	for (size_t i = 0; i < n; i++) {
		if ((unsigned) comps[i] <= STATUS_MAINTENANCE) {
			count[comps[i]]++;
		}
	}
	/* Components under maintenance are neither working nor broken:
	 * "all" below means all the others. */
	size_t active = n - count[STATUS_MAINTENANCE];
	status_indicator ci = STATUS_IND_NONE;
	const char *cd = "All Systems Operational";

	if (count[STATUS_MAJOR] > 0) {
		if (count[STATUS_MAJOR] == active) {
			ci = STATUS_IND_CRITICAL;
			cd = "Major System Outage";
		} else {
			ci = STATUS_IND_MAJOR;
			cd = "Partial System Outage";
		}
	} else if (count[STATUS_PARTIAL] > 0) {
		ci = STATUS_IND_MAJOR;
		cd = "Partial System Outage";
	} else if (count[STATUS_DEGRADED] > 0) {
		ci = STATUS_IND_MINOR;
		cd = count[STATUS_DEGRADED] == active
		    ? "Degraded System Service"
		    : "Partially Degraded Service";
	} else if (count[STATUS_MAINTENANCE] > 0) {
		cd = "Service Under Maintenance";
	}
	if ((unsigned) incident_impact <= STATUS_IND_CRITICAL
	    && incident_impact > ci) {
		ci = incident_impact;
		cd = incident_desc[incident_impact];
	}
	*ind = ci;
	*desc = cd;
}

status_indicator
status_impact_of(Opsdesk__V1__Severity sev)
{
	switch (sev) {
	case OPSDESK__V1__SEVERITY__SEVERITY_CRITICAL:
		return STATUS_IND_CRITICAL;
	case OPSDESK__V1__SEVERITY__SEVERITY_HIGH:
		return STATUS_IND_MAJOR;
	case OPSDESK__V1__SEVERITY__SEVERITY_MEDIUM:
		return STATUS_IND_MINOR;
	default:
		return STATUS_IND_NONE;
	}
}

const char *
status_incident_status_name(Opsdesk__V1__IncidentStatus s)
{
	switch (s) {
	case OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_IDENTIFIED:
		return "identified";
	case OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING:
		return "monitoring";
	case OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED:
		return "resolved";
	default:
		return "investigating";
	}
}

const char *
status_maintenance_status(
    const Opsdesk__V1__MaintenanceWindow *w, int64_t now_ms)
{
	switch (w->status) {
	case OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_CANCELLED:
		return NULL;
	case OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED:
		return "completed";
	case OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS:
		return "in_progress";
	default:
		if (now_ms >= w->end_ms && w->end_ms > 0) {
			return "completed";
		}
		if (now_ms >= w->start_ms) {
			return "in_progress";
		}
		return "scheduled";
	}
}

/* ---- public wording of automatic incidents ---- */

void
status_template_text(const status_conf *c, status_tmpl which, const char *name,
    char *out, size_t size)
{
	public_text(c != NULL ? c->templates[which] : NULL,
	    (enum public_tmpl) which, name, out, size);
}

/* Does text start with "<name> is "? Then *rest is what follows. */
static bool
in_probe_words(const char *text, const char *name, const char **rest)
{
	size_t nl = strlen(name);
	if (nl == 0 || strncmp(text, name, nl) != 0
	    || strncmp(text + nl, " is ", 4) != 0) {
		return false;
	}
	*rest = text + nl + 4;
	return true;
}

bool
status_public_rewording(const status_conf *c, const Opsdesk__V1__Incident *inc,
    const Opsdesk__V1__TimelineEntry *e, char *out, size_t size)
{
	char tmpl[1200];
	const char *name = NULL, *rest = NULL;

	/* Only what the system wrote into an automatic incident: a
	 * person's public update is theirs to word. */
	if (!inc->automatic || e->author_id != 0 || e->text == NULL) {
		return false;
	}
	/* The system's own words were "<component> is <state>[: <probe's
	 * error>]." — anything else it wrote ("Recovered and stable;
	 * resolved automatically.") never carried the probe's error. */
	for (size_t i = 0; i < inc->n_components && name == NULL; i++) {
		const char *n = inc->components[i]->name;
		if (n != NULL && in_probe_words(e->text, n, &rest)) {
			name = n;
		}
	}
	if (name == NULL) {
		return false;
	}
	/* A template may start the same way ("{component} is down."):
	 * its text is already public. */
	for (int t = STATUS_TMPL_DOWN; t <= STATUS_TMPL_RESOLVED; t++) {
		status_template_text(
		    c, (status_tmpl) t, name, tmpl, sizeof(tmpl));
		if (strcmp(tmpl, e->text) == 0) {
			return false;
		}
	}
	status_tmpl which;
	switch (e->status) {
	case OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED:
		which = STATUS_TMPL_RESOLVED;
		break;
	case OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING:
		which = STATUS_TMPL_MONITORING;
		break;
	default:
		which = strncmp(rest, "down", 4) == 0 ? STATUS_TMPL_DOWN
		    : strncmp(rest, "up", 2) == 0     ? STATUS_TMPL_MONITORING
		                                      : STATUS_TMPL_DEGRADED;
		break;
	}
	status_template_text(c, which, name, out, size);
	return true;
}
