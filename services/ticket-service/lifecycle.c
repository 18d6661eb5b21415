/*
 * lifecycle.c — which changes are allowed from which state and for whom.
 * Pure functions over a Ticket, so the units can walk every transition.
 *
 *   open     -> pending, resolved, closed    (staff)
 *   pending  -> open, resolved, closed       (staff; a user message: open)
 *   resolved -> open, closed                 (staff; a user message within
 *                                             reopen_days: open)
 *   closed   -> nothing (terminal; a new ticket is the way back)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ticket.h"
#include "util/util.h"

#define ST_OPEN     OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
#define ST_PENDING  OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING
#define ST_RESOLVED OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_RESOLVED
#define ST_CLOSED   OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED

int
ticket_authorize(const tk_ticket *t, const tk_actor *actor, ticket_access what)
{
	bool owner = actor != NULL && actor->user_id != 0
	    && actor->user_id == t->owner_id;
	bool admin = actor != NULL && actor->is_admin;

	if (!owner && !admin) {
		return OD_ENOTFOUND;
	}
	switch (what) {
	case TICKET_READ:
		return 0;
	case TICKET_OWNER_ACT:
		return owner ? 0 : OD_EPERM;
	case TICKET_STAFF_ACT:
		return admin ? 0 : OD_EPERM;
	}
	return OD_EPERM;
}

/* allowed[from][to] for a staff status change. */
static const bool status_allowed[5][5] = {
	[ST_OPEN]
	= { [ST_PENDING] = true, [ST_RESOLVED] = true, [ST_CLOSED] = true },
	[ST_PENDING]
	= { [ST_OPEN] = true, [ST_RESOLVED] = true, [ST_CLOSED] = true },
	[ST_RESOLVED] = { [ST_OPEN] = true, [ST_CLOSED] = true },
};

int
ticket_status_change_check(const tk_ticket *t, int to, const char **why)
{
	if (to < ST_OPEN || to > ST_CLOSED) {
		*why = "status must be open, pending, resolved or closed";
		return OD_EINVAL;
	}
	if (t->status < ST_OPEN || t->status > ST_CLOSED) {
		*why = "the ticket has no valid status";
		return OD_ESTATE;
	}
	if ((int) t->status == to) {
		*why = "the ticket already has that status";
		return OD_ESTATE;
	}
	if (!status_allowed[t->status][to]) {
		*why = t->status == ST_CLOSED
		    ? "the ticket is closed; open a new one"
		    : "a resolved ticket can only be reopened or closed";
		return OD_ESTATE;
	}
	return 0;
}

void
ticket_status_apply(const ticket_policy *p, tk_ticket *t, int to, int64_t now)
{
	int from = t->status;

	if (from == ST_PENDING) {
		ticket_sla_resume(p, t, now);
	}
	if (from == ST_RESOLVED && to == ST_OPEN) {
		/* Time spent resolved does not count against the clocks. */
		if (t->resolved_ms != 0 && now > t->resolved_ms) {
			t->paused_ms += now - t->resolved_ms;
		}
		t->resolved_ms = 0;
		ticket_sla_apply(p, t);
	}
	switch (to) {
	case ST_PENDING:
		ticket_sla_pause(t, now);
		break;
	case ST_RESOLVED:
		t->resolved_ms = now;
		if (now > t->resolution_due_ms) {
			t->resolution_breached = true;
		}
		break;
	case ST_CLOSED:
		t->closed_ms = now;
		/* Closing an unresolved ticket (/close) ends it too: it counts
		 * as resolved now for the resolution clock and the stats. */
		if (from != ST_RESOLVED) {
			t->resolved_ms = now;
			if (now > t->resolution_due_ms) {
				t->resolution_breached = true;
			}
		}
		break;
	default:
		break;
	}
	t->status = to;
	t->updated_ms = now;
}

int
ticket_user_message_check(const ticket_policy *p, const tk_ticket *t,
    int64_t now, bool *reopens, const char **why)
{
	*reopens = false;
	switch (t->status) {
	case ST_OPEN:
	case ST_PENDING:
		return 0;
	case ST_RESOLVED:
		if (now - t->resolved_ms > p->reopen_ms) {
			*why = "the ticket was resolved too long ago to "
			       "reopen; "
			       "please open a new ticket";
			return OD_ESTATE;
		}
		*reopens = true;
		return 0;
	default:
		*why = "the ticket is closed; please open a new ticket";
		return OD_ESTATE;
	}
}

int
ticket_staff_change_check(const tk_ticket *t, const char **why)
{
	if (t->status == ST_CLOSED) {
		*why = "the ticket is closed";
		return OD_ESTATE;
	}
	return 0;
}

int
ticket_rate_check(const tk_ticket *t, uint32_t rating, const char **why)
{
	if (rating < 1 || rating > 5) {
		*why = "rating must be 1 to 5";
		return OD_EINVAL;
	}
	if (t->status != ST_RESOLVED && t->status != ST_CLOSED) {
		*why = "a ticket can be rated once it is resolved";
		return OD_ESTATE;
	}
	if (t->rating != 0) {
		*why = "the ticket is already rated";
		return OD_ESTATE;
	}
	return 0;
}

int
ticket_limits_check(const ticket_policy *p, uint32_t open, uint32_t recent,
    int64_t oldest_ms, int64_t now, char *msg, size_t msglen)
{
	if (p->open_per_user > 0 && open >= p->open_per_user) {
		snprintf(msg, msglen,
		    "limit reached: you already have %u open tickets (at most "
		    "%lld); add a message to one of them with /ticket <id>, "
		    "or wait until one is resolved",
		    open, (long long) p->open_per_user);
		return OD_ELIMIT;
	}
	if (p->creations_per_hour > 0 && recent >= p->creations_per_hour) {
		int64_t wait = oldest_ms + 3600 * 1000LL - now;
		long long minutes = wait <= 0 ? 1 : (wait + 59999) / 60000;
		snprintf(msg, msglen,
		    "limit reached: you opened %u tickets in the last hour "
		    "(at "
		    "most %lld); please try again in %lld min, or add to an "
		    "open ticket",
		    recent, (long long) p->creations_per_hour, minutes);
		return OD_ELIMIT;
	}
	return 0;
}

char *
ticket_subject_from_text(const char *text)
{
	size_t n = 0;
	char *s;

	if (text == NULL) {
		text = "";
	}
	while (
	    *text == ' ' || *text == '\n' || *text == '\t' || *text == '\r') {
		text++;
	}
	while (text[n] != '\0' && text[n] != '\n' && text[n] != '\r') {
		n++;
	}
	if (n > TICKET_MAX_SUBJECT - 1) {
		n = TICKET_MAX_SUBJECT - 1;
		/* Back off continuation bytes so a code point is never cut. */
		while (n > 0 && ((unsigned char) text[n] & 0xC0) == 0x80) {
			n--;
		}
	}
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t')) {
		n--;
	}
	if ((s = malloc(n + 1)) == NULL) {
		return NULL;
	}
	memcpy(s, text, n);
	s[n] = '\0';
	return s;
}
