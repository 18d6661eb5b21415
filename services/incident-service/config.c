/*
 * config.c — the incident-service sections of the suite config:
 *
 *   "incidents": {"sla": {"critical": {"response": "15m",
 *                                      "resolution": "4h"}, …},
 *                 "runbooks": {"critical": "…", …},
 *                 "realert": {"critical": "5m", "high": "15m"},
 *                 "stable_period": "10m", "tick": "5s",
 *                 "peer_timeout": "2s", "alert_log_keep": 1000,
 *                 "freeze_retry": "1m", "freeze_for": "1h",
 *                 "postmortem_margin": "1m"}
 *   "checklists": {"daily": [{"id": "backups", "text": "…"} | "text"],
 *                  "weekly": […], "monthly": […]}
 *   "maintenance": {"reminder_before": "60m"}
 *   "status_page": {"templates": {"down": "…", "degraded": "…",
 *                                 "monitoring": "…", "resolved": "…"}}
 *     (only the templates: the public wording of automatic incidents)
 *
 * A duration of 0 means "none" (no SLA clock, no re-alert).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/public_text.h"
#include "incident_core.h"

#define DUR_MAX (366 * INC_DAY_MS)

static const char *const default_runbooks[SEV_COUNT] = {
	"",
	"Critical: acknowledge within 15 min. Page the on-call engineer, "
	"open a war room, post a public status update within 15 min and "
	"every 30 min after. Roll back recent changes first; escalate to "
	"the engineering lead after 30 min without progress.",
	"High: acknowledge within 1 h. Assign an owner, post a status "
	"update, look for a workaround; update the timeline every hour.",
	"Medium: acknowledge within 4 h. Track it in the next working "
	"block; update the timeline when the cause is identified.",
	"Low: acknowledge within 24 h. Schedule the fix; no public update "
	"needed unless users ask.",
};

void
inc_public_text(const inc_config *c, enum inc_tmpl which, const char *name,
    char *out, size_t size)
{
	public_text(c->tmpl[which], (enum public_tmpl) which, name, out, size);
}

static int
parse_templates(inc_config *c, const cJSON *root, char *err, size_t errlen)
{
	const cJSON *sec = NULL;
	int rv = config_get_object(root, "", "status_page", &sec, err, errlen);
	return rv != 0 ? rv
	               : public_templates_parse(sec, c->tmpl, err, errlen);
}

int
inc_config_defaults(inc_config *c)
{
	static const int64_t resp[SEV_COUNT] = { 0, 15 * INC_MIN_MS,
		INC_HOUR_MS, 4 * INC_HOUR_MS, 24 * INC_HOUR_MS };
	static const int64_t resol[SEV_COUNT]
	    = { 0, 4 * INC_HOUR_MS, 8 * INC_HOUR_MS, 24 * INC_HOUR_MS, 0 };
	static const int64_t realert[SEV_COUNT]
	    = { 0, 5 * INC_MIN_MS, 15 * INC_MIN_MS, 0, 0 };

	memset(c, 0, sizeof(*c));
	for (int s = SEV_CRITICAL; s <= SEV_LOW; s++) {
		c->response_ms[s] = resp[s];
		c->resolution_ms[s] = resol[s];
		c->realert_ms[s] = realert[s];
		if ((c->runbook[s] = strdup(default_runbooks[s])) == NULL) {
			inc_config_free(c);
			return OD_ENOMEM;
		}
	}
	c->stable_period_ms = 10 * INC_MIN_MS;
	c->reminder_before_ms = 60 * INC_MIN_MS;
	c->tick_ms = 5000;
	c->peer_timeout_ms = 2000;
	c->freeze_retry_ms = INC_MIN_MS;
	c->freeze_for_ms = INC_HOUR_MS;
	c->pm_margin_ms = INC_MIN_MS;
	c->alert_keep = 1000;
	return 0;
}

void
inc_config_free(inc_config *c)
{
	if (c == NULL) {
		return;
	}
	for (int s = 0; s < SEV_COUNT; s++) {
		free(c->runbook[s]);
	}
	for (size_t p = 0; p < 4; p++) {
		for (size_t i = 0; i < c->lists[p].n_items; i++) {
			free(c->lists[p].items[i].id);
			free(c->lists[p].items[i].text);
		}
		free(c->lists[p].items);
	}
	for (int i = 0; i < 4; i++) {
		free(c->tmpl[i]);
	}
	memset(c, 0, sizeof(*c));
}

/* Per-severity durations: sla.<sev>.response, realert.<sev>, … */
static int
parse_per_severity(const cJSON *sec, const char *key, const char *sub,
    int64_t *vals, char *err, size_t errlen)
{
	const cJSON *obj = NULL;
	char path[96];
	int rv;

	if ((rv = config_get_object(sec, "incidents", key, &obj, err, errlen))
	        != 0
	    || obj == NULL) {
		return rv;
	}
	for (int s = SEV_CRITICAL; s <= SEV_LOW; s++) {
		const cJSON *holder = obj;
		const char *name = inc_severity_name(s);
		const char *leaf = name;

		snprintf(path, sizeof(path), "incidents.%s", key);
		if (sub != NULL) {
			if ((rv = config_get_object(
			         obj, path, name, &holder, err, errlen))
			    != 0) {
				return rv;
			}
			snprintf(
			    path, sizeof(path), "incidents.%s.%s", key, name);
			leaf = sub;
		}
		if ((rv = config_get_duration_ms(holder, path, leaf, vals[s],
		         0, DUR_MAX, &vals[s], err, errlen))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

static int
parse_incidents(inc_config *c, const cJSON *sec, char *err, size_t errlen)
{
	const cJSON *runbooks = NULL;
	int64_t keep;
	int rv;

	if ((rv = parse_per_severity(
	         sec, "sla", "response", c->response_ms, err, errlen))
	        != 0
	    || (rv = parse_per_severity(
	            sec, "sla", "resolution", c->resolution_ms, err, errlen))
	        != 0
	    || (rv = parse_per_severity(
	            sec, "realert", NULL, c->realert_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "incidents", "stable_period",
	            c->stable_period_ms, 0, DUR_MAX, &c->stable_period_ms, err,
	            errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "incidents", "tick",
	            c->tick_ms, 100, INC_HOUR_MS, &c->tick_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "incidents", "peer_timeout",
	            c->peer_timeout_ms, 100, 2000, &c->peer_timeout_ms, err,
	            errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "incidents", "freeze_retry",
	            c->freeze_retry_ms, 100, INC_HOUR_MS, &c->freeze_retry_ms,
	            err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "incidents", "freeze_for",
	            c->freeze_for_ms, 0, 30 * INC_DAY_MS, &c->freeze_for_ms,
	            err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "incidents",
	            "postmortem_margin", c->pm_margin_ms, 0, INC_HOUR_MS,
	            &c->pm_margin_ms, err, errlen))
	        != 0
	    || (rv = config_get_int(sec, "incidents", "alert_log_keep",
	            c->alert_keep, 100, 1000000, &keep, err, errlen))
	        != 0
	    || (rv = config_get_object(
	            sec, "incidents", "runbooks", &runbooks, err, errlen))
	        != 0) {
		return rv;
	}
	c->alert_keep = (uint32_t) keep;
	for (int s = SEV_CRITICAL; s <= SEV_LOW && runbooks != NULL; s++) {
		const char *text;
		if ((rv = config_get_string(runbooks, "incidents.runbooks",
		         inc_severity_name(s), c->runbook[s], &text, err,
		         errlen))
		    != 0) {
			return rv;
		}
		if (text != c->runbook[s]) {
			char *copy = strdup(text);
			if (copy == NULL) {
				return OD_ENOMEM;
			}
			free(c->runbook[s]);
			c->runbook[s] = copy;
		}
	}
	return 0;
}

/* One list: strings get ids "1", "2", … by position. */
static int
parse_list(inc_check_list *l, const cJSON *arr, const char *name, char *err,
    size_t errlen)
{
	int n = cJSON_GetArraySize(arr);
	char path[64], idbuf[16];
	int i = 0;
	const cJSON *it;

	if (n == 0) {
		return 0;
	}
	if ((l->items = calloc((size_t) n, sizeof(*l->items))) == NULL) {
		return OD_ENOMEM;
	}
	cJSON_ArrayForEach(it, arr)
	{
		const char *id = NULL, *text = NULL;
		int rv;

		snprintf(path, sizeof(path), "checklists.%s[%d]", name, i);
		snprintf(idbuf, sizeof(idbuf), "%d", i + 1);
		if (cJSON_IsString(it) && it->valuestring != NULL) {
			id = idbuf;
			text = it->valuestring;
		} else if (cJSON_IsObject(it)) {
			if ((rv = config_get_string(
			         it, path, "id", idbuf, &id, err, errlen))
			        != 0
			    || (rv = config_get_string(
			            it, path, "text", "", &text, err, errlen))
			        != 0) {
				return rv;
			}
		}
		if (id == NULL || text == NULL || text[0] == '\0'
		    || id[0] == '\0' || strlen(id) > 64) {
			snprintf(err, errlen,
			    "%s: expected a string or {\"id\", \"text\"} with "
			    "a non-empty text and an id of at most 64 bytes",
			    path);
			return OD_EINVAL;
		}
		for (size_t j = 0; j < l->n_items; j++) {
			if (strcmp(l->items[j].id, id) == 0) {
				snprintf(err, errlen,
				    "%s.id: \"%s\" is used twice", path, id);
				return OD_EINVAL;
			}
		}
		l->items[l->n_items].id = strdup(id);
		l->items[l->n_items].text = strdup(text);
		l->n_items++;
		if (l->items[l->n_items - 1].id == NULL
		    || l->items[l->n_items - 1].text == NULL) {
			return OD_ENOMEM;
		}
		i++;
	}
	return 0;
}

static int
parse_checklists(inc_config *c, const cJSON *sec, char *err, size_t errlen)
{
	static const char *const names[4]
	    = { NULL, "daily", "weekly", "monthly" };

	for (int p = CK_DAILY; p <= CK_MONTHLY; p++) {
		const cJSON *arr = NULL;
		int rv;
		if ((rv = config_get_array(
		         sec, "checklists", names[p], &arr, err, errlen))
		    != 0) {
			return rv;
		}
		if (arr != NULL
		    && (rv = parse_list(
		            &c->lists[p], arr, names[p], err, errlen))
		        != 0) {
			return rv;
		}
	}
	return 0;
}

int
inc_config_parse(inc_config *c, const cJSON *root, char *err, size_t errlen)
{
	const cJSON *sec = NULL;
	int rv;

	if ((rv = config_get_object(root, "", "incidents", &sec, err, errlen))
	        != 0
	    || (rv = parse_incidents(c, sec, err, errlen)) != 0) {
		goto out;
	}
	if ((rv = config_get_object(root, "", "checklists", &sec, err, errlen))
	        != 0
	    || (rv = parse_checklists(c, sec, err, errlen)) != 0) {
		goto out;
	}
	if ((rv = config_get_object(
	         root, "", "maintenance", &sec, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "maintenance",
	            "reminder_before", c->reminder_before_ms, 0,
	            30 * INC_DAY_MS, &c->reminder_before_ms, err, errlen))
	        != 0) {
		goto out;
	}
	rv = parse_templates(c, root, err, errlen);
out:
	if (rv != 0) {
		if (rv == OD_ENOMEM) {
			snprintf(err, errlen, "out of memory");
		}
		inc_config_free(c);
	}
	return rv;
}

/* ---- the schemas of incidents, checklists, maintenance ---- */

static const config_field sla_sev_fields[] = {
	{ .key = "response", .type = CONFIG_DURATION },
	{ .key = "resolution", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field sla_fields[] = {
	{ .key = "critical",
	    .type = CONFIG_OBJECT,
	    .members = sla_sev_fields },
	{ .key = "high", .type = CONFIG_OBJECT, .members = sla_sev_fields },
	{ .key = "medium", .type = CONFIG_OBJECT, .members = sla_sev_fields },
	{ .key = "low", .type = CONFIG_OBJECT, .members = sla_sev_fields },
	{ .key = NULL },
};
static const config_field realert_fields[] = {
	{ .key = "critical", .type = CONFIG_DURATION },
	{ .key = "high", .type = CONFIG_DURATION },
	{ .key = "medium", .type = CONFIG_DURATION },
	{ .key = "low", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field runbook_fields[] = {
	{ .key = "critical", .type = CONFIG_STRING, .max = 16384 },
	{ .key = "high", .type = CONFIG_STRING, .max = 16384 },
	{ .key = "medium", .type = CONFIG_STRING, .max = 16384 },
	{ .key = "low", .type = CONFIG_STRING, .max = 16384 },
	{ .key = NULL },
};
static const config_field incidents_fields[] = {
	{ .key = "sla", .type = CONFIG_OBJECT, .members = sla_fields },
	{ .key = "realert", .type = CONFIG_OBJECT, .members = realert_fields },
	{ .key = "runbooks",
	    .type = CONFIG_OBJECT,
	    .members = runbook_fields },
	{ .key = "stable_period", .type = CONFIG_DURATION },
	{ .key = "tick", .type = CONFIG_DURATION },
	{ .key = "peer_timeout", .type = CONFIG_DURATION },
	{ .key = "alert_log_keep", .type = CONFIG_INT },
	{ .key = "freeze_retry", .type = CONFIG_DURATION },
	{ .key = "freeze_for", .type = CONFIG_DURATION },
	{ .key = "postmortem_margin", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field incidents_section = {
	.key = "incidents", .type = CONFIG_OBJECT, .members = incidents_fields
};

static const config_field check_item_fields[] = {
	{ .key = "id", .type = CONFIG_STRING, .max = 64 },
	{ .key = "text", .type = CONFIG_STRING, .max = 1024 },
	{ .key = NULL },
};
static const config_field check_item = { .type = CONFIG_STRING_OR_OBJECT,
	.max = 1024,
	.members = check_item_fields };
static const config_field checklists_fields[] = {
	{ .key = "daily",
	    .type = CONFIG_ARRAY,
	    .max = 200,
	    .elem = &check_item },
	{ .key = "weekly",
	    .type = CONFIG_ARRAY,
	    .max = 200,
	    .elem = &check_item },
	{ .key = "monthly",
	    .type = CONFIG_ARRAY,
	    .max = 200,
	    .elem = &check_item },
	{ .key = NULL },
};
static const config_field checklists_section = { .key = "checklists",
	.type = CONFIG_OBJECT,
	.members = checklists_fields };

static const config_field maintenance_fields[] = {
	{ .key = "reminder_before", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field maintenance_section = { .key = "maintenance",
	.type = CONFIG_OBJECT,
	.members = maintenance_fields };

/* All three are parsed together: one check. */
static int
incident_sections_check(const config *c, char *err, size_t errlen)
{
	inc_config ic;
	int rv;

	if ((rv = inc_config_defaults(&ic)) != 0
	    || (rv = inc_config_parse(&ic, c->root, err, errlen)) != 0) {
		return rv;
	}
	inc_config_free(&ic);
	return 0;
}
CONFIG_SCHEMA(incidents, incidents_section, incident_sections_check)
CONFIG_SCHEMA(checklists, checklists_section, NULL)
CONFIG_SCHEMA(maintenance, maintenance_section, NULL)
