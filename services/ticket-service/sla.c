/*
 * sla.c — the two SLA clocks of a ticket. Due times are always derived
 * from the creation time, the target of (tier at creation, priority) and
 * the total time spent pending, so a priority change or a pause can never
 * leave a due time that disagrees with the policy.
 */
#include "ticket.h"

const ticket_sla_target *
ticket_sla_target_for(const ticket_policy *p, int tier, int priority)
{
	if (tier <= 0 || tier >= TICKET_N_TIERS) {
		tier = OPSDESK__V1__TIER__TIER_FREE;
	}
	if (priority <= 0 || priority >= TICKET_N_PRIORITIES) {
		priority
		    = OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL;
	}
	return &p->sla[tier][priority];
}

void
ticket_sla_apply(const ticket_policy *p, tk_ticket *t)
{
	const ticket_sla_target *tg
	    = ticket_sla_target_for(p, t->tier, t->priority);

	t->first_response_due_ms
	    = t->created_ms + tg->first_response_ms + t->paused_ms;
	t->resolution_due_ms
	    = t->created_ms + tg->resolution_ms + t->paused_ms;
}

void
ticket_sla_pause(tk_ticket *t, int64_t now)
{
	if (t->pending_since_ms == 0) {
		t->pending_since_ms = now;
	}
}

void
ticket_sla_resume(const ticket_policy *p, tk_ticket *t, int64_t now)
{
	if (t->pending_since_ms != 0 && now > t->pending_since_ms) {
		t->paused_ms += now - t->pending_since_ms;
	}
	t->pending_since_ms = 0;
	ticket_sla_apply(p, t);
}

unsigned
ticket_sla_running(const tk_ticket *t)
{
	unsigned clocks = 0;

	if (t->status != OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN) {
		return 0;
	}
	if (t->first_response_ms == 0 && !t->first_response_breached) {
		clocks |= TICKET_CLOCK_FIRST_RESPONSE;
	}
	if (!t->resolution_breached) {
		clocks |= TICKET_CLOCK_RESOLUTION;
	}
	return clocks;
}

unsigned
ticket_sla_due(const tk_ticket *t, int64_t now)
{
	unsigned running = ticket_sla_running(t);
	unsigned due = 0;

	if ((running & TICKET_CLOCK_FIRST_RESPONSE)
	    && t->first_response_due_ms <= now) {
		due |= TICKET_CLOCK_FIRST_RESPONSE;
	}
	if ((running & TICKET_CLOCK_RESOLUTION)
	    && t->resolution_due_ms <= now) {
		due |= TICKET_CLOCK_RESOLUTION;
	}
	return due;
}

unsigned
ticket_sla_mark(tk_ticket *t, unsigned clocks)
{
	unsigned fresh = 0;

	if ((clocks & TICKET_CLOCK_FIRST_RESPONSE)
	    && !t->first_response_breached) {
		t->first_response_breached = true;
		fresh |= TICKET_CLOCK_FIRST_RESPONSE;
	}
	if ((clocks & TICKET_CLOCK_RESOLUTION) && !t->resolution_breached) {
		t->resolution_breached = true;
		fresh |= TICKET_CLOCK_RESOLUTION;
	}
	return fresh;
}

void
ticket_sla_first_response(tk_ticket *t, int64_t now)
{
	if (t->first_response_ms != 0) {
		return;
	}
	t->first_response_ms = now;
	/* A late answer is a breach even when the timer has not seen it yet:
	 * stats must not count it as met. */
	if (now > t->first_response_due_ms) {
		t->first_response_breached = true;
	}
}

int64_t
ticket_sla_queue_due(const tk_ticket *t)
{
	if (t->first_response_ms == 0
	    && t->first_response_due_ms < t->resolution_due_ms) {
		return t->first_response_due_ms;
	}
	return t->resolution_due_ms;
}

const char *
ticket_clock_name(unsigned clock)
{
	return clock == TICKET_CLOCK_FIRST_RESPONSE ? "first_response"
	                                            : "resolution";
}
