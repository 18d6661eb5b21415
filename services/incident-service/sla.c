/*
 * sla.c — severities, their SLA clocks and breaches. Response means
 * acknowledged; resolution means resolved.
 */
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"

static const char *const severity_names[SEV_COUNT]
    = { "", "critical", "high", "medium", "low" };
static const char *const status_names[]
    = { "", "investigating", "identified", "monitoring", "resolved" };
static const char *const state_names[]
    = { "unknown", "up", "degraded", "down", "maintenance" };

const char *
inc_severity_name(int sev)
{
	return inc_severity_valid(sev) ? severity_names[sev] : "";
}

const char *
inc_status_name(int status)
{
	if (status < ST_NONE || status > ST_RESOLVED) {
		return "";
	}
	return status_names[status];
}

const char *
inc_state_name(int state)
{
	if (state < CS_UNKNOWN || state > CS_MAINTENANCE) {
		return "unknown";
	}
	return state_names[state];
}

bool
inc_severity_valid(int sev)
{
	return sev >= SEV_CRITICAL && sev <= SEV_LOW;
}

int
inc_severity_for(int criticality, int state)
{
	int sev = inc_severity_valid(criticality) ? criticality : SEV_MEDIUM;

	/* Degraded is "still serving, badly": one step less urgent. */
	if (state == CS_DEGRADED && sev < SEV_LOW) {
		sev++;
	}
	return sev;
}

int
inc_set_str(char **field, const char *value)
{
	char *copy = strdup(value != NULL ? value : "");

	if (copy == NULL) {
		return OD_ENOMEM;
	}
	if (*field != NULL && *field != protobuf_c_empty_string) {
		free(*field);
	}
	*field = copy;
	return 0;
}

void
inc_sla_start(const inc_config *c, inc_incident *inc)
{
	int sev = inc_severity_valid(inc->severity) ? inc->severity : SEV_LOW;
	int64_t resp = c->response_ms[sev];
	int64_t resol = c->resolution_ms[sev];

	inc->response_due_ms = resp > 0 ? inc->created_ms + resp : 0;
	inc->resolution_due_ms = resol > 0 ? inc->created_ms + resol : 0;
	inc->response_breached = false;
	inc->resolution_breached = false;
}

void
inc_sla_rebase(const inc_config *c, inc_incident *inc)
{
	bool rb = inc->response_breached, sb = inc->resolution_breached;

	inc_sla_start(c, inc);
	/* A breach already alerted stays a breach. */
	inc->response_breached = rb;
	inc->resolution_breached = sb;
}

int
inc_sla_new_breaches(const inc_incident *inc, int64_t now)
{
	int mask = 0;

	if (!inc->response_breached && inc->response_due_ms > 0
	    && !inc->acknowledged && now >= inc->response_due_ms) {
		mask |= INC_BREACH_RESPONSE;
	}
	if (!inc->resolution_breached && inc->resolution_due_ms > 0
	    && inc->status != ST_RESOLVED && now >= inc->resolution_due_ms) {
		mask |= INC_BREACH_RESOLUTION;
	}
	return mask;
}

static bool
clock_met(int64_t due, bool done, int64_t done_ms, int64_t now)
{
	if (due <= 0) {
		return true;
	}
	return done ? done_ms <= due : now < due;
}

bool
inc_response_met(const inc_incident *inc, int64_t now)
{
	return clock_met(inc->response_due_ms, inc->acknowledged,
	    inc->acknowledged_ms, now);
}

bool
inc_resolution_met(const inc_incident *inc, int64_t now)
{
	return clock_met(inc->resolution_due_ms, inc->status == ST_RESOLVED,
	    inc->resolved_ms, now);
}
