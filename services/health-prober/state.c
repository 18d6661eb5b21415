/*
 * state — one target's state machine. A single bad or good result does
 * not move a component: the failure and success thresholds are flap
 * damping, so an admin is not paged for one lost packet and an incident
 * is not resolved by one lucky probe. Maintenance overrides what is
 * shown without stopping the damped health underneath, so the state at
 * the end of a window is already right.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prober.h"
#include "util/util.h"

#define S_UNKNOWN  OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN
#define S_UP       OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
#define S_DEGRADED OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED
#define S_DOWN     OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN
#define S_MAINT    OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE

int
prober_state_rank(int state)
{
	switch (state) {
	case S_UP:
		return 0;
	case S_MAINT:
		return 1;
	case S_DEGRADED:
		return 2;
	case S_DOWN:
		return 3;
	default:
		return 1; /* unknown: neither good nor bad */
	}
}

const char *
prober_state_name(int state)
{
	switch (state) {
	case S_UP:
		return "up";
	case S_DEGRADED:
		return "degraded";
	case S_DOWN:
		return "down";
	case S_MAINT:
		return "maintenance";
	default:
		return "unknown";
	}
}

void
prober_state_init(target_state *s)
{
	memset(s, 0, sizeof(*s));
	s->state = S_UNKNOWN;
	s->health = S_UNKNOWN;
	s->cert_days_left = -1;
}

void
prober_state_fini(target_state *s)
{
	if (s != NULL) {
		free(s->reason);
		s->reason = NULL;
	}
}

int
prober_state_set_reason(target_state *s, const char *why)
{
	char *r = NULL;
	if (why != NULL && (r = strdup(why)) == NULL) {
		return OD_ENOMEM;
	}
	free(s->reason);
	s->reason = r;
	return 0;
}

static bool
shown_changed(target_state *s, int old, int64_t at_ms, uint32_t latency,
    const char *reason, state_change *chg)
{
	s->state = s->maintenance ? S_MAINT : s->health;
	if (s->state == old) {
		return false;
	}
	s->since_ms = at_ms;
	(void) prober_state_set_reason(s, reason);
	chg->old_state = old;
	chg->new_state = s->state;
	chg->latency_ms = latency;
	chg->at_ms = at_ms;
	od_strlcpy(chg->reason, reason, sizeof(chg->reason));
	return true;
}

bool
prober_state_feed(
    target_state *s, const target *t, const probe_result *r, state_change *chg)
{
	int old = s->state;
	int rank = prober_state_rank(r->observed);
	int next = s->health;
	char reason[sizeof(chg->reason)];

	s->last_check_ms = r->at_ms;
	s->latency_ms = r->latency_ms;
	s->status_code = r->status_code;
	s->cert_days_left = r->cert_days_left;
	if (r->observed == S_DOWN) {
		s->consecutive_failures++;
		s->consecutive_successes = 0;
	} else {
		s->consecutive_successes++;
		s->consecutive_failures = 0;
	}

	if (s->health == S_UNKNOWN) {
		/* A first success shows at once, but down needs the failure
		 * threshold even from unknown: a whole suite starting
		 * together must not open incidents for components that are
		 * still coming up. */
		if (r->observed != S_DOWN) {
			next = r->observed;
			s->worse_streak = s->better_streak = 0;
		} else if (++s->worse_streak >= t->failure_threshold) {
			next = r->observed;
		}
	} else if (rank > prober_state_rank(s->health)) {
		s->better_streak = 0;
		s->worse_streak++;
		if (s->worse_streak >= t->failure_threshold) {
			next = r->observed;
		}
	} else if (rank < prober_state_rank(s->health)) {
		s->worse_streak = 0;
		s->better_streak++;
		if (s->better_streak >= t->success_threshold) {
			next = r->observed;
		}
	} else {
		s->worse_streak = s->better_streak = 0;
	}
	if (next == s->health) {
		return false;
	}
	s->health = next;
	s->worse_streak = s->better_streak = 0;
	if (r->error[0] != '\0') {
		snprintf(reason, sizeof(reason), "%s", r->error);
	} else {
		snprintf(reason, sizeof(reason), "OK in %u ms",
		    (unsigned) r->latency_ms);
	}
	return shown_changed(s, old, r->at_ms, r->latency_ms, reason, chg);
}

bool
prober_state_decide(target_state *s, int health, uint32_t latency_ms,
    const char *why, int64_t at_ms, state_change *chg)
{
	int old = s->state;

	s->latency_ms = latency_ms;
	if (health == s->health) {
		return false;
	}
	s->health = health;
	s->worse_streak = s->better_streak = 0;
	return shown_changed(
	    s, old, at_ms, latency_ms, why != NULL ? why : "", chg);
}

bool
prober_state_set_maintenance(target_state *s, bool on, const char *why,
    int64_t now_ms, state_change *chg)
{
	int old = s->state;
	char reason[sizeof(chg->reason)];

	if (s->maintenance == on) {
		return false;
	}
	s->maintenance = on;
	if (on) {
		snprintf(reason, sizeof(reason), "maintenance: %.150s",
		    why != NULL ? why : "");
	} else {
		snprintf(reason, sizeof(reason), "maintenance ended");
	}
	return shown_changed(s, old, now_ms, s->latency_ms, reason, chg);
}
