/*
 * mapping — the prober's and incident-service's vocabularies in
 * Statuspage's words (shared/reference/statuspage-v2.md).
 */
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
