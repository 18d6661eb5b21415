/*
 * postmortem.c — generated when an incident is resolved, from the
 * incident alone (so it is written in the same txn as the resolve). The
 * health events and tickets of the impact window come from the peers:
 * a write job must not wait on the network, so they are frozen into the
 * record by a second write after the commit (freeze.c), and until then
 * asked live on each read. Root cause and action items are edited by
 * admins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"
#include "rpc/rpc.h"
#include "store/store.h"

#define ACTIONS_MAX 50
#define TEXT_MAX    4000
#define EVENTS_MAX  50

void
inc_pm_free(inc_postmortem *pm)
{
	if (pm != NULL) {
		protobuf_c_message_free_unpacked(&pm->base, NULL);
	}
}

inc_postmortem *
inc_pm_generate(const inc_config *c, const inc_incident *inc, int64_t now)
{
	inc_postmortem *pm = malloc(sizeof(*pm));
	inc_incident *copy = inc_dup(inc);
	int64_t end = inc->resolved_ms > 0 ? inc->resolved_ms : now;
	/* Users were affected until the recovery, not through the stable
	 * period after it. */
	int64_t impact_end = inc->monitoring_ms > 0 && inc->monitoring_ms < end
	    ? inc->monitoring_ms
	    : end;
	char dur[32], summary[1024], comps[512] = "";
	int rv = 0;

	(void) c;
	if (pm == NULL || copy == NULL) {
		free(pm);
		inc_free(copy);
		return NULL;
	}
	opsdesk__v1__postmortem__init(pm);
	pm->incident_id = inc->id;
	pm->severity = inc->severity;
	pm->impact_start_ms = inc->created_ms;
	pm->impact_end_ms = impact_end;
	pm->time_to_ack_ms
	    = inc->acknowledged ? inc->acknowledged_ms - inc->created_ms : -1;
	pm->time_to_resolve_ms = end - inc->created_ms;
	pm->response_sla_ms = inc->response_due_ms > 0
	    ? inc->response_due_ms - inc->created_ms
	    : 0;
	pm->resolution_sla_ms = inc->resolution_due_ms > 0
	    ? inc->resolution_due_ms - inc->created_ms
	    : 0;
	pm->response_met = inc_response_met(inc, now);
	pm->resolution_met = inc_resolution_met(inc, now);
	pm->tickets_opened = -1;
	pm->generated_ms = now;
	/* The copy's arrays move into the postmortem. */
	pm->components = copy->components;
	pm->n_components = copy->n_components;
	copy->components = NULL;
	copy->n_components = 0;
	pm->timeline = copy->timeline;
	pm->n_timeline = copy->n_timeline;
	copy->timeline = NULL;
	copy->n_timeline = 0;
	inc_free(copy);

	for (size_t i = 0; i < pm->n_components; i++) {
		size_t used = strlen(comps);
		snprintf(comps + used, sizeof(comps) - used, "%s%s (%s)",
		    i > 0 ? ", " : "", pm->components[i]->name,
		    inc_state_name(pm->components[i]->state));
	}
	/* The impact, as the Markdown's window says; time to resolve (with
	 * the stable period) is its own line. */
	od_format_duration(
	    pm->impact_end_ms - pm->impact_start_ms, dur, sizeof(dur));
	snprintf(summary, sizeof(summary),
	    "%s incident INC-%llu \"%s\"%s%s lasted %s and was %s.",
	    inc_severity_name(inc->severity), (unsigned long long) inc->id,
	    inc->title, comps[0] ? " affecting " : "", comps, dur,
	    inc->automatic ? "detected automatically"
	                   : "reported by an admin");
	if (summary[0] >= 'a' && summary[0] <= 'z') {
		summary[0] = (char) (summary[0] - 'a' + 'A');
	}
	if (inc_set_str(&pm->summary, summary) != 0
	    || inc_set_str(&pm->title, inc->title) != 0) {
		rv = OD_ENOMEM;
	}
	if (rv != 0) {
		inc_pm_free(pm);
		return NULL;
	}
	return pm;
}

static void
md_duration_row(
    sbuf *b, const char *what, int64_t actual, int64_t sla, bool met)
{
	char a[32] = "—", s[32] = "none";

	if (actual >= 0) {
		od_format_duration(actual, a, sizeof(a));
	}
	if (sla > 0) {
		od_format_duration(sla, s, sizeof(s));
	}
	sbuf_printf(b, "| %s | %s | %s | %s |\n", what, a, s,
	    sla <= 0  ? "—"
	        : met ? "yes"
	              : "**no**");
}

/* A section the peer has not given for keeps yet was asked at this read:
 * say so, since it may change (or be gone) on the next one. */
static void
md_not_frozen(sbuf *b, const inc_postmortem *pm, bool frozen, const char *peer)
{
	if (frozen) {
		return;
	}
	sbuf_printf(b,
	    pm->freeze_gave_up
	        ? "_not frozen: %s did not answer after the resolve; asked "
	          "at this read_\n\n"
	        : "_not frozen yet: asked %s at this read_\n\n",
	    peer);
}

int
inc_pm_markdown(const inc_postmortem *pm, sbuf *b)
{
	char t1[32], t2[32], dur[32];

	od_format_iso8601(pm->impact_start_ms, t1, sizeof(t1));
	od_format_iso8601(pm->impact_end_ms, t2, sizeof(t2));
	od_format_duration(
	    pm->impact_end_ms - pm->impact_start_ms, dur, sizeof(dur));
	sbuf_printf(b, "# Postmortem: INC-%llu %s\n\n",
	    (unsigned long long) pm->incident_id, pm->title);
	sbuf_printf(
	    b, "- **Severity:** %s\n", inc_severity_name(pm->severity));
	sbuf_printf(b, "- **Impact window:** %s to %s (%s)\n", t1, t2, dur);
	sbuf_append(b, "- **Affected components:** ");
	for (size_t i = 0; i < pm->n_components; i++) {
		sbuf_printf(b, "%s%s (%s)", i > 0 ? ", " : "",
		    pm->components[i]->name,
		    inc_state_name(pm->components[i]->state));
	}
	sbuf_append(b, pm->n_components == 0 ? "none recorded\n" : "\n");
	sbuf_printf(b, "\n## Summary\n\n%s\n", pm->summary);

	sbuf_append(b,
	    "\n## Response against the SLA\n\n"
	    "| clock | actual | SLA | met |\n"
	    "| --- | --- | --- | --- |\n");
	md_duration_row(b, "time to acknowledge", pm->time_to_ack_ms,
	    pm->response_sla_ms, pm->response_met);
	md_duration_row(b, "time to resolve", pm->time_to_resolve_ms,
	    pm->resolution_sla_ms, pm->resolution_met);

	sbuf_append(b, "\n## Timeline\n\n");
	for (size_t i = 0; i < pm->n_timeline; i++) {
		const inc_entry *e = pm->timeline[i];
		od_format_iso8601(e->at_ms, t1, sizeof(t1));
		sbuf_printf(b, "- %s [%s] %s%s: %s\n", t1,
		    inc_status_name(e->status), e->author_name,
		    e->public_ ? "" : " (internal)", e->text);
	}

	sbuf_append(b, "\n## Health events in the window\n\n");
	md_not_frozen(b, pm, pm->health_frozen, "health-prober");
	if (!pm->health_available) {
		sbuf_append(b, "_health-prober did not answer_\n");
	} else if (pm->n_health_events == 0) {
		sbuf_append(b, "none\n");
	}
	for (size_t i = 0; i < pm->n_health_events; i++) {
		sbuf_printf(b, "- %s\n", pm->health_events[i]);
	}

	sbuf_append(b, "\n## Tickets opened in the window\n\n");
	md_not_frozen(b, pm, pm->tickets_frozen, "ticket-service");
	if (pm->tickets_opened < 0) {
		sbuf_append(b, "_ticket-service did not answer_\n");
	} else {
		sbuf_printf(b, "%d\n", pm->tickets_opened);
	}

	sbuf_printf(b, "\n## Root cause\n\n%s\n",
	    pm->root_cause[0] ? pm->root_cause : "_to be filled in_");
	sbuf_append(b, "\n## Action items\n\n");
	if (pm->n_actions == 0) {
		sbuf_append(b, "_none yet_\n");
	}
	for (size_t i = 0; i < pm->n_actions; i++) {
		const Opsdesk__V1__ActionItem *a = pm->actions[i];
		sbuf_printf(b, "- [%c] %s", a->done ? 'x' : ' ', a->text);
		if (a->owner[0] != '\0') {
			sbuf_printf(b, " — owner: %s", a->owner);
		}
		if (a->due_ms > 0) {
			od_format_iso8601(a->due_ms, t1, sizeof(t1));
			sbuf_printf(b, ", due %.10s", t1);
		}
		sbuf_appendc(b, '\n');
	}
	return sbuf_failed(b) ? OD_ENOMEM : 0;
}

int
inc_pm_load(MDB_txn *txn, inc_service *svc, uint64_t id, inc_postmortem **out)
{
	return inc_get_by_id(txn, svc, INC_DB_POSTMORTEMS, id,
	    &opsdesk__v1__postmortem__descriptor, (ProtobufCMessage **) out);
}

int
inc_pm_save(inc_tx *tx, const inc_postmortem *pm)
{
	return inc_put_by_id(
	    tx, INC_DB_POSTMORTEMS, pm->incident_id, &pm->base);
}

static int
add_action(inc_postmortem *pm, const Opsdesk__V1__ActionItem *src)
{
	Opsdesk__V1__ActionItem *a = malloc(sizeof(*a));
	Opsdesk__V1__ActionItem **p;

	if (a == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__action_item__init(a);
	if ((p = realloc(pm->actions, (pm->n_actions + 1) * sizeof(*p)))
	    == NULL) {
		free(a);
		return OD_ENOMEM;
	}
	pm->actions = p;
	pm->actions[pm->n_actions++] = a;
	a->due_ms = src->due_ms;
	a->done = src->done;
	if (inc_set_str(&a->text, src->text) != 0
	    || inc_set_str(&a->owner, src->owner) != 0) {
		return OD_ENOMEM;
	}
	return 0;
}

int
inc_pm_edit(inc_tx *tx, const Opsdesk__V1__EditPostmortemRequest *r,
    inc_postmortem **out)
{
	bool has_action = r->add_action != NULL && r->add_action->text[0];
	inc_postmortem *pm = NULL;
	inc_incident *inc = NULL;
	int rv;

	if (r->root_cause[0] == '\0' && !has_action && r->done_action == 0
	    && r->remove_action == 0) {
		return OD_EINVAL;
	}
	if (strlen(r->root_cause) > TEXT_MAX
	    || (has_action
	        && (strlen(r->add_action->text) > TEXT_MAX
	            || strlen(r->add_action->owner) > 200))) {
		return OD_EINVAL;
	}
	if ((rv = inc_pm_load(inc_tx_mdb(tx), tx->svc, r->incident_id, &pm))
	    == OD_ENOTFOUND) {
		/* Not resolved yet, or no such incident at all. */
		rv = inc_load(inc_tx_mdb(tx), tx->svc, r->incident_id, &inc);
		inc_free(inc);
		return rv == 0 ? OD_ESTATE : rv;
	}
	if (rv != 0) {
		return rv;
	}
	if (has_action && pm->n_actions >= ACTIONS_MAX) {
		rv = OD_ELIMIT;
		goto out;
	}
	/* Indexes refer to the list as the admin saw it: check both before
	 * changing anything. */
	if (r->done_action > pm->n_actions
	    || r->remove_action > pm->n_actions) {
		rv = OD_EINVAL;
		goto out;
	}
	if (r->done_action > 0) {
		pm->actions[r->done_action - 1]->done = true;
	}
	if (r->remove_action > 0) {
		size_t i = r->remove_action - 1;
		protobuf_c_message_free_unpacked(&pm->actions[i]->base, NULL);
		memmove(&pm->actions[i], &pm->actions[i + 1],
		    (pm->n_actions - i - 1) * sizeof(pm->actions[0]));
		pm->n_actions--;
	}
	if ((r->root_cause[0]
	        && (rv = inc_set_str(&pm->root_cause, r->root_cause)) != 0)
	    || (has_action && (rv = add_action(pm, r->add_action)) != 0)
	    || (rv = inc_pm_save(tx, pm)) != 0) {
		goto out;
	}
	if (out != NULL) {
		*out = pm;
		pm = NULL;
	}
out:
	inc_pm_free(pm);
	return rv;
}

/* "2026-11-27T10:00:00Z Database: up -> down (HTTP 503)" */
static char *
event_line(const Opsdesk__V1__HealthChanged *hc)
{
	char at[32], line[512];

	od_format_iso8601(hc->at_ms, at, sizeof(at));
	snprintf(line, sizeof(line), "%s %s: %s -> %s%s%s%s", at,
	    hc->name[0] ? hc->name : hc->target_id,
	    inc_state_name(hc->old_state), inc_state_name(hc->new_state),
	    hc->reason[0] ? " (" : "", hc->reason, hc->reason[0] ? ")" : "");
	return strdup(line);
}

void
inc_pm_peers_free(inc_pm_peers *p)
{
	if (p == NULL) {
		return;
	}
	for (size_t i = 0; i < p->n_events; i++) {
		free(p->events[i]);
	}
	free(p->events);
	memset(p, 0, sizeof(*p));
}

void
inc_pm_window(const inc_postmortem *pm, int64_t margin_ms, int64_t *from_ms,
    int64_t *to_ms)
{
	*from_ms = pm->impact_start_ms - margin_ms;
	*to_ms = pm->impact_end_ms + margin_ms;
}

/* The prober's transitions in the window as event lines; false on OOM
 * (then nothing). */
bool
inc_pm_take_events(inc_pm_peers *out, const Opsdesk__V1__TransitionList *tr,
    int64_t from_ms, int64_t to_ms)
{
	size_t n
	    = tr->n_transitions < EVENTS_MAX ? tr->n_transitions : EVENTS_MAX;

	if (n > 0 && (out->events = calloc(n, sizeof(char *))) == NULL) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const Opsdesk__V1__HealthChanged *hc = tr->transitions[i];
		if (hc->at_ms < from_ms || hc->at_ms > to_ms) {
			continue; /* another outage, or start-up */
		}
		if ((out->events[out->n_events] = event_line(hc)) == NULL) {
			inc_pm_peers_free(out);
			return false;
		}
		out->n_events++;
	}
	return true;
}

void
inc_pm_fetch(inc_service *svc, const inc_postmortem *pm, bool want_health,
    bool want_tickets, inc_pm_peers *out)
{
	Opsdesk__V1__ProberRequest preq = OPSDESK__V1__PROBER_REQUEST__INIT;
	Opsdesk__V1__TransitionsRequest tr
	    = OPSDESK__V1__TRANSITIONS_REQUEST__INIT;
	Opsdesk__V1__TicketRequest treq = OPSDESK__V1__TICKET_REQUEST__INIT;
	Opsdesk__V1__StatsRequest st = OPSDESK__V1__STATS_REQUEST__INIT;
	inc_peer_req calls[2];
	size_t n = 0;
	char *ids[64];

	memset(out, 0, sizeof(*out));
	out->tickets_opened = -1;
	/* Transitions of the affected components in the impact window,
	 * widened by the margin (the damping delay before detection). */
	int64_t from, to;
	inc_pm_window(pm, svc->cfg.pm_margin_ms, &from, &to);
	tr.from_ms = from;
	tr.to_ms = to + 1;
	tr.limit = EVENTS_MAX;
	for (size_t i = 0; i < pm->n_components && i < 64; i++) {
		ids[tr.n_target_ids++] = pm->components[i]->component_id;
	}
	tr.target_ids = ids;
	preq.method_case = OPSDESK__V1__PROBER_REQUEST__METHOD_TRANSITIONS;
	preq.transitions = &tr;
	st.from_ms = pm->impact_start_ms;
	st.to_ms = pm->impact_end_ms + 1;
	treq.method_case = OPSDESK__V1__TICKET_REQUEST__METHOD_STATS;
	treq.stats = &st;
	if (want_health) {
		calls[n++] = (inc_peer_req) { svc->prober, &preq.base,
			&opsdesk__v1__prober_reply__descriptor, NULL, 0 };
	}
	if (want_tickets) {
		calls[n++] = (inc_peer_req) { svc->tickets, &treq.base,
			&opsdesk__v1__ticket_reply__descriptor, NULL, 0 };
	}
	/* Together: a read waits for at most one peer time-out. */
	inc_peer_calls(svc, calls, n);
	for (size_t i = 0; i < n; i++) {
		ProtobufCMessage *m = calls[i].reply;
		if (m == NULL) {
			continue;
		}
		if (m->descriptor == &opsdesk__v1__prober_reply__descriptor) {
			const Opsdesk__V1__ProberReply *r = (const void *) m;
			out->health = r->result_case
			        == OPSDESK__V1__PROBER_REPLY__RESULT_TRANSITIONS
			    && inc_pm_take_events(
			        out, r->transitions, from, to);
		} else {
			const Opsdesk__V1__TicketReply *r = (const void *) m;
			if (r->result_case
			    == OPSDESK__V1__TICKET_REPLY__RESULT_STATS) {
				out->tickets = true;
				out->tickets_opened
				    = (int32_t) r->stats->created;
			}
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

int
inc_pm_take_peers(inc_postmortem *pm, const inc_pm_peers *p, bool freeze)
{
	if (!pm->health_frozen && p->health) {
		char **ev = NULL;
		size_t n = 0;
		/* Copies: a write job that runs twice takes them twice. */
		if (p->n_events > 0
		    && (ev = calloc(p->n_events, sizeof(*ev))) == NULL) {
			return OD_ENOMEM;
		}
		for (; n < p->n_events; n++) {
			if ((ev[n] = strdup(p->events[n])) == NULL) {
				break;
			}
		}
		if (n < p->n_events) {
			while (n > 0) {
				free(ev[--n]);
			}
			free(ev);
			return OD_ENOMEM;
		}
		for (size_t i = 0; i < pm->n_health_events; i++) {
			free(pm->health_events[i]);
		}
		free(pm->health_events);
		pm->health_events = ev;
		pm->n_health_events = n;
		pm->health_available = true;
		pm->health_frozen = freeze;
	}
	if (!pm->tickets_frozen && p->tickets) {
		pm->tickets_opened = p->tickets_opened;
		pm->tickets_frozen = freeze;
	}
	return 0;
}

void
inc_pm_fill_external(inc_service *svc, inc_postmortem *pm)
{
	bool want_health = !pm->health_frozen;
	bool want_tickets = !pm->tickets_frozen;
	inc_pm_peers p;

	/* Frozen parts are the record: asking again could only give what
	 * retention left of them, so a frozen postmortem asks nobody. */
	if (!want_health && !want_tickets) {
		return;
	}
	(svc->pm_fetch != NULL ? svc->pm_fetch : inc_pm_fetch)(
	    svc, pm, want_health, want_tickets, &p);
	if (want_health && !p.health) {
		pm->health_available = false;
	}
	if (want_tickets && !p.tickets) {
		pm->tickets_opened = -1;
	}
	if (inc_pm_take_peers(pm, &p, false) != 0 && want_health) {
		/* Out of memory for the lines: shown as not answered. */
		pm->health_available = false;
	}
	inc_pm_peers_free(&p);
}
