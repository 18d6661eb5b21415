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
 *
 * A duration of 0 means "none" (no SLA clock, no re-alert).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
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
out:
	if (rv != 0) {
		if (rv == OD_ENOMEM) {
			snprintf(err, errlen, "out of memory");
		}
		inc_config_free(c);
	}
	return rv;
}
