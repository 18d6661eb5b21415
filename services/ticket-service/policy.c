/*
 * policy.c — the "tickets" config section: SLA targets per tier and
 * priority, abuse limits and the reopen window, over documented defaults.
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "ticket.h"
#include "util/util.h"

#define MIN_MS  (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

static const char *const tier_names[TICKET_N_TIERS] = {
	"unspecified",
	"free",
	"pro",
	"elite",
	"ultra",
};

static const char *const priority_names[TICKET_N_PRIORITIES] = {
	"unspecified",
	"low",
	"normal",
	"high",
	"urgent",
};

static const char *const status_names[] = {
	"unspecified",
	"open",
	"pending",
	"resolved",
	"closed",
};

/*
 * The default SLA table (README.md). Rows are tiers free..ultra, columns
 * priorities low..urgent; each pair is first response, resolution. Ultra
 * gets priority support: 1 h first response at every priority but urgent,
 * which is 30 min.
 */
static const ticket_sla_target default_sla[4][4] = {
	/* free */
	{ { 48 * HOUR_MS, 14 * DAY_MS }, { 24 * HOUR_MS, 7 * DAY_MS },
	    { 12 * HOUR_MS, 3 * DAY_MS }, { 8 * HOUR_MS, 2 * DAY_MS } },
	/* pro */
	{ { 24 * HOUR_MS, 7 * DAY_MS }, { 12 * HOUR_MS, 3 * DAY_MS },
	    { 4 * HOUR_MS, 2 * DAY_MS }, { 2 * HOUR_MS, 1 * DAY_MS } },
	/* elite */
	{ { 12 * HOUR_MS, 3 * DAY_MS }, { 4 * HOUR_MS, 2 * DAY_MS },
	    { 2 * HOUR_MS, 1 * DAY_MS }, { 1 * HOUR_MS, 12 * HOUR_MS } },
	/* ultra */
	{ { 1 * HOUR_MS, 2 * DAY_MS }, { 1 * HOUR_MS, 1 * DAY_MS },
	    { 1 * HOUR_MS, 12 * HOUR_MS }, { 30 * MIN_MS, 8 * HOUR_MS } },
};

void
ticket_policy_defaults(ticket_policy *p)
{
	memset(p, 0, sizeof(*p));
	for (int t = 1; t < TICKET_N_TIERS; t++) {
		for (int pr = 1; pr < TICKET_N_PRIORITIES; pr++) {
			p->sla[t][pr] = default_sla[t - 1][pr - 1];
		}
	}
	p->open_per_user = 3;
	p->creations_per_hour = 5;
	p->reopen_ms = 7 * DAY_MS;
	p->breach_interval_ms = 1000;
	p->objectives.first_response_pct = 95;
	p->objectives.csat_min = 4.0;
	p->objectives.window_days = 30;
}

static int
name_index(const char *const *names, int n, const char *s)
{
	if (s == NULL) {
		return -1;
	}
	for (int i = 1; i < n; i++) {
		if (strcmp(names[i], s) == 0) {
			return i;
		}
	}
	return -1;
}

int
ticket_tier_parse(const char *s)
{
	return name_index(tier_names, TICKET_N_TIERS, s);
}

int
ticket_priority_parse(const char *s)
{
	return name_index(priority_names, TICKET_N_PRIORITIES, s);
}

const char *
ticket_tier_name(int tier)
{
	return tier > 0 && tier < TICKET_N_TIERS ? tier_names[tier] : "free";
}

const char *
ticket_priority_name(int priority)
{
	return priority > 0 && priority < TICKET_N_PRIORITIES
	    ? priority_names[priority]
	    : "normal";
}

const char *
ticket_status_name(int status)
{
	return status > 0 && status <= 4 ? status_names[status] : "unknown";
}

/* A key that is not in `allowed` (NULL-terminated) is a typo, and a typo
 * in an SLA must not silently fall back to a default. */
static int
check_keys(const cJSON *obj, const char *path, const char *const *allowed,
    char *err, size_t errlen)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, obj)
	{
		const char *const *a = allowed;
		while (*a != NULL && strcmp(*a, item->string) != 0) {
			a++;
		}
		if (*a == NULL) {
			snprintf(err, errlen, "%s.%s: unknown key", path,
			    item->string);
			return OD_EINVAL;
		}
	}
	return 0;
}

static const char *const target_keys[]
    = { "first_response", "resolution", NULL };
static const char *const tickets_keys[] = { "sla", "limits", "reopen_days",
	"breach_check", "ultra_chat", "objectives", NULL };
static const char *const objectives_keys[]
    = { "first_response", "csat", "window", NULL };
static const char *const limits_keys[]
    = { "open_per_user", "creations_per_hour", NULL };

/* tickets.sla.<tier>.<priority>: {first_response, resolution}. */
static int
load_sla(ticket_policy *p, const cJSON *sla, char *err, size_t errlen)
{
	const cJSON *tier_obj;
	char path[128];
	int rv;

	cJSON_ArrayForEach(tier_obj, sla)
	{
		int tier = ticket_tier_parse(tier_obj->string);
		const cJSON *pr_obj;
		if (tier < 0) {
			snprintf(err, errlen,
			    "tickets.sla.%s: unknown tier (expected free, "
			    "pro, elite or ultra)",
			    tier_obj->string);
			return OD_EINVAL;
		}
		if (!cJSON_IsObject(tier_obj)) {
			snprintf(err, errlen,
			    "tickets.sla.%s: expected an object of "
			    "priorities",
			    tier_obj->string);
			return OD_EINVAL;
		}
		cJSON_ArrayForEach(pr_obj, tier_obj)
		{
			int pr = ticket_priority_parse(pr_obj->string);
			ticket_sla_target *tg;
			if (pr < 0) {
				snprintf(err, errlen,
				    "tickets.sla.%s.%s: unknown priority "
				    "(expected low, normal, high or urgent)",
				    tier_obj->string, pr_obj->string);
				return OD_EINVAL;
			}
			if (!cJSON_IsObject(pr_obj)) {
				snprintf(err, errlen,
				    "tickets.sla.%s.%s: expected an object "
				    "with first_response and resolution",
				    tier_obj->string, pr_obj->string);
				return OD_EINVAL;
			}
			snprintf(path, sizeof(path), "tickets.sla.%s.%s",
			    tier_obj->string, pr_obj->string);
			if ((rv = check_keys(
			         pr_obj, path, target_keys, err, errlen))
			    != 0) {
				return rv;
			}
			tg = &p->sla[tier][pr];
			rv = config_get_duration_ms(pr_obj, path,
			    "first_response", tg->first_response_ms, 60000,
			    365 * DAY_MS, &tg->first_response_ms, err, errlen);
			if (rv != 0) {
				return rv;
			}
			rv = config_get_duration_ms(pr_obj, path, "resolution",
			    tg->resolution_ms, 60000, 365 * DAY_MS,
			    &tg->resolution_ms, err, errlen);
			if (rv != 0) {
				return rv;
			}
		}
	}
	return 0;
}

/* tickets.objectives: {first_response (percent), csat, window (days)}. */
static int
load_objectives(
    ticket_objectives *o, const cJSON *obj, char *err, size_t errlen)
{
	static const char *const path = "tickets.objectives";
	int64_t window_ms = o->window_days * DAY_MS;
	int rv;

	if ((rv = check_keys(obj, path, objectives_keys, err, errlen)) != 0
	    || (rv = config_get_double(obj, path, "first_response",
	            o->first_response_pct, 1, 100, &o->first_response_pct, err,
	            errlen))
	        != 0
	    || (rv = config_get_double(obj, path, "csat", o->csat_min, 1, 5,
	            &o->csat_min, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(obj, path, "window", window_ms,
	            DAY_MS, 366 * DAY_MS, &window_ms, err, errlen))
	        != 0) {
		return rv;
	}
	if (window_ms % DAY_MS != 0) {
		snprintf(err, errlen,
		    "%s.window: expected whole days (\"30d\"): the "
		    "objectives are counted per calendar day",
		    path);
		return OD_EINVAL;
	}
	o->window_days = window_ms / DAY_MS;
	return 0;
}

int
ticket_policy_load(
    ticket_policy *p, const cJSON *tickets, char *err, size_t errlen)
{
	ticket_policy np = *p;
	const cJSON *sla = NULL;
	const cJSON *limits = NULL;
	const cJSON *objectives = NULL;
	int64_t days;
	int rv;

	if (tickets == NULL) {
		return 0;
	}
	if (!cJSON_IsObject(tickets)) {
		snprintf(err, errlen, "tickets: expected an object");
		return OD_EINVAL;
	}
	if ((rv = check_keys(tickets, "tickets", tickets_keys, err, errlen))
	    != 0) {
		return rv;
	}
	if ((rv = config_get_object(
	         tickets, "tickets", "sla", &sla, err, errlen))
	        != 0
	    || (sla != NULL && (rv = load_sla(&np, sla, err, errlen)) != 0)) {
		return rv;
	}
	if ((rv = config_get_object(
	         tickets, "tickets", "limits", &limits, err, errlen))
	        != 0
	    || (rv = config_get_int(limits, "tickets.limits", "open_per_user",
	            np.open_per_user, 0, 1000000, &np.open_per_user, err,
	            errlen))
	        != 0
	    || (rv = config_get_int(limits, "tickets.limits",
	            "creations_per_hour", np.creations_per_hour, 0, 1000000,
	            &np.creations_per_hour, err, errlen))
	        != 0) {
		return rv;
	}
	if (limits != NULL
	    && (rv = check_keys(
	            limits, "tickets.limits", limits_keys, err, errlen))
	        != 0) {
		return rv;
	}
	days = np.reopen_ms / DAY_MS;
	if ((rv = config_get_int(tickets, "tickets", "reopen_days", days, 0,
	         3650, &days, err, errlen))
	    != 0) {
		return rv;
	}
	np.reopen_ms = days * DAY_MS;
	if ((rv = config_get_duration_ms(tickets, "tickets", "breach_check",
	         np.breach_interval_ms, 100, HOUR_MS, &np.breach_interval_ms,
	         err, errlen))
	    != 0) {
		return rv;
	}
	/* A chat id: groups are negative, 0 leaves it unset. */
	if ((rv = config_get_int(tickets, "tickets", "ultra_chat",
	         np.ultra_chat, INT64_MIN, INT64_MAX, &np.ultra_chat, err,
	         errlen))
	    != 0) {
		return rv;
	}
	if ((rv = config_get_object(
	         tickets, "tickets", "objectives", &objectives, err, errlen))
	        != 0
	    || (objectives != NULL
	        && (rv = load_objectives(
	                &np.objectives, objectives, err, errlen))
	            != 0)) {
		return rv;
	}
	*p = np;
	return 0;
}

/* ---- the schema of the "tickets" section (common/config) ---- */

static const config_field sla_target_fields[] = {
	{ .key = "first_response", .type = CONFIG_DURATION },
	{ .key = "resolution", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field sla_tier_fields[] = {
	{ .key = "low", .type = CONFIG_OBJECT, .members = sla_target_fields },
	{ .key = "normal",
	    .type = CONFIG_OBJECT,
	    .members = sla_target_fields },
	{ .key = "high", .type = CONFIG_OBJECT, .members = sla_target_fields },
	{ .key = "urgent",
	    .type = CONFIG_OBJECT,
	    .members = sla_target_fields },
	{ .key = NULL },
};
static const config_field sla_fields[] = {
	{ .key = "free", .type = CONFIG_OBJECT, .members = sla_tier_fields },
	{ .key = "pro", .type = CONFIG_OBJECT, .members = sla_tier_fields },
	{ .key = "elite", .type = CONFIG_OBJECT, .members = sla_tier_fields },
	{ .key = "ultra", .type = CONFIG_OBJECT, .members = sla_tier_fields },
	{ .key = NULL },
};
static const config_field limits_fields[] = {
	{ .key = "open_per_user", .type = CONFIG_INT },
	{ .key = "creations_per_hour", .type = CONFIG_INT },
	{ .key = NULL },
};
static const config_field objectives_fields[] = {
	{ .key = "first_response", .type = CONFIG_NUMBER },
	{ .key = "csat", .type = CONFIG_NUMBER },
	{ .key = "window", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field tickets_fields[] = {
	{ .key = "sla", .type = CONFIG_OBJECT, .members = sla_fields },
	{ .key = "limits", .type = CONFIG_OBJECT, .members = limits_fields },
	{ .key = "reopen_days", .type = CONFIG_INT },
	{ .key = "breach_check", .type = CONFIG_DURATION },
	{ .key = "ultra_chat", .type = CONFIG_INT },
	{ .key = "objectives",
	    .type = CONFIG_OBJECT,
	    .members = objectives_fields },
	{ .key = NULL },
};
static const config_field tickets_section
    = { .key = "tickets", .type = CONFIG_OBJECT, .members = tickets_fields };

static int
tickets_check(const config *c, char *err, size_t errlen)
{
	ticket_policy p;

	ticket_policy_defaults(&p);
	return ticket_policy_load(
	    &p, config_section(c, "tickets"), err, errlen);
}
CONFIG_SCHEMA(tickets, tickets_section, tickets_check)
