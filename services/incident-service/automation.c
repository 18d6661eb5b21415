/*
 * automation.c — health.changed to incidents. One open incident per
 * component (dedup key "component:<id>"): down opens one with the
 * component's criticality, degraded one a step lower; recovery moves it to
 * monitoring and the timer resolves it after the stable period, unless a
 * person took it over. Components in a maintenance window open nothing.
 *
 * The last state seen per component is stored, so a repeated event, a
 * replay or a resync with the prober's snapshot changes nothing twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "incident_core.h"
#include "log/log.h"
#include "rpc/rpc.h"
#include "store/store.h"

#define DEDUP_PREFIX "component:"

enum inc_auto_action
inc_auto_decide(const inc_incident *open, int prev_state, int new_state,
    bool in_maintenance)
{
	bool bad = new_state == CS_DOWN || new_state == CS_DEGRADED;

	if (open != NULL && open->status == ST_RESOLVED) {
		open = NULL;
	}
	if (bad) {
		if (in_maintenance) {
			return AUTO_NONE;
		}
		if (open == NULL) {
			return AUTO_OPEN;
		}
		if (prev_state == new_state) {
			return AUTO_NONE;
		}
		/* Down to degraded is better, not a relapse. */
		return prev_state == CS_DOWN ? AUTO_NOTE : AUTO_RELAPSE;
	}
	if (new_state == CS_UP && open != NULL && prev_state != CS_UP) {
		return AUTO_RECOVER;
	}
	return AUTO_NONE;
}

static int
load_component(MDB_txn *txn, inc_service *svc, const char *id, int *state)
{
	Opsdesk__V1__HealthChanged *last = NULL;
	int rv = store_get_pb(txn, inc_dbi(svc, INC_DB_COMPONENTS), id,
	    strlen(id), &opsdesk__v1__health_changed__descriptor,
	    (ProtobufCMessage **) &last);

	if (rv == 0) {
		*state = last->new_state;
		protobuf_c_message_free_unpacked(&last->base, NULL);
	}
	return rv;
}

static int
load_open(inc_tx *tx, const char *dedup, inc_incident **out)
{
	MDB_val v;
	int rv = store_get(inc_tx_mdb(tx), inc_dbi(tx->svc, INC_DB_OPEN),
	    dedup, strlen(dedup), &v);

	if (rv != 0) {
		return rv;
	}
	if (v.mv_size != 8) {
		return OD_EMALFORMED;
	}
	return inc_load(
	    inc_tx_mdb(tx), tx->svc, store_key_get_u64(v.mv_data), out);
}

static void
set_component_state(inc_incident *inc, const char *id, int state)
{
	for (size_t i = 0; i < inc->n_components; i++) {
		if (strcmp(inc->components[i]->component_id, id) == 0) {
			inc->components[i]->state = state;
		}
	}
}

static int
open_for(inc_tx *tx, const Opsdesk__V1__HealthChanged *hc, const char *name,
    const char *dedup)
{
	char title[256], text[1200], raw[512];
	const char *ids[1] = { hc->target_id };
	const char *names[1] = { name };
	int states[1] = { hc->new_state };
	inc_open_args a = { 0 };

	snprintf(title, sizeof(title), "%s is %s", name,
	    inc_state_name(hc->new_state));
	/* The public text says what the public sees; the probe's error
	 * (addresses, ports, library wording) stays internal. */
	inc_public_text(&tx->svc->cfg,
	    hc->new_state == CS_DOWN ? INC_TMPL_DOWN : INC_TMPL_DEGRADED, name,
	    text, sizeof(text));
	snprintf(raw, sizeof(raw), "%s is %s%s%s. Opened automatically.", name,
	    inc_state_name(hc->new_state), hc->reason[0] ? ": " : "",
	    hc->reason);
	a.severity = inc_severity_for(hc->criticality, hc->new_state);
	a.title = title;
	a.text = text;
	a.internal_text = raw;
	a.internal = !hc->public_;
	a.automatic = true;
	a.dedup_key = dedup;
	a.component_ids = ids;
	a.component_names = names;
	a.component_states = states;
	a.n_components = 1;
	return inc_open(tx, &a, NULL);
}

/* Worse than it was opened as: the tighter SLA of the new severity from
 * the original start, and the alert a new incident of it would get. */
static int
escalated(inc_tx *tx, inc_incident *inc, int was)
{
	inc_sla_rebase(&tx->svc->cfg, inc);
	return inc_alert_reclassified(tx, inc, was);
}

static int
change_open(inc_tx *tx, inc_incident *inc, enum inc_auto_action act,
    const Opsdesk__V1__HealthChanged *hc, const char *name)
{
	inc_timer old[INC_MAX_TIMERS];
	size_t n_old = inc_timers_of_incident(inc, old);
	const char *what;
	char text[512], pub[1200];
	int rv;

	snprintf(text, sizeof(text), "%s is %s%s%s.", name,
	    inc_state_name(hc->new_state), hc->reason[0] ? ": " : "",
	    hc->reason);
	inc_public_text(&tx->svc->cfg,
	    act == AUTO_RECOVER            ? INC_TMPL_MONITORING
	        : hc->new_state == CS_DOWN ? INC_TMPL_DOWN
	                                   : INC_TMPL_DEGRADED,
	    name, pub, sizeof(pub));
	/* The probe's words go to the internal timeline first; the public
	 * entry after it is the template's. */
	if (act == AUTO_RELAPSE || act == AUTO_RECOVER) {
		rv = inc_timeline_add(
		    inc, tx->now, NULL, inc->status, text, false);
		if (rv != 0) {
			return rv;
		}
	}
	switch (act) {
	case AUTO_RELAPSE: {
		int was = inc->severity;
		rv = inc_apply_relapse(inc, tx->now,
		    inc_severity_for(hc->criticality, hc->new_state), pub);
		set_component_state(inc, hc->target_id, hc->new_state);
		what = "relapse";
		if (rv == 0 && (int) inc->severity < was) {
			rv = escalated(tx, inc, was);
		}
		break;
	}
	case AUTO_RECOVER:
		what = inc->taken_over ? "note" : "monitoring";
		rv = inc_apply_recovery(
		    inc, tx->now, tx->svc->cfg.stable_period_ms, pub);
		break;
	default:
		rv = inc_timeline_add(
		    inc, tx->now, NULL, inc->status, text, false);
		what = "note";
		break;
	}
	if (rv != 0 || (rv = inc_save(tx, inc, old, n_old)) != 0) {
		return rv;
	}
	return inc_emit_incident(tx, "incident.updated", what, inc);
}

int
inc_auto_apply(inc_tx *tx, const Opsdesk__V1__HealthChanged *hc)
{
	const char *id = hc->target_id;
	const char *name = hc->name[0] ? hc->name : id;
	inc_incident *open = NULL;
	enum inc_auto_action act;
	char dedup[200];
	int prev = hc->old_state, rv;
	bool maint;

	if (id[0] == '\0' || strlen(id) > 128) {
		return 0; /* nothing to key it on: ignored */
	}
	rv = load_component(inc_tx_mdb(tx), tx->svc, id, &prev);
	if (rv != 0 && rv != OD_ENOTFOUND) {
		return rv;
	}
	if (rv == 0 && prev == (int) hc->new_state) {
		return 0; /* seen already (replay, resync) */
	}
	if ((rv = store_put_pb(tx->txn, inc_dbi(tx->svc, INC_DB_COMPONENTS),
	         id, strlen(id), &hc->base))
	    != 0) {
		return rv;
	}
	snprintf(dedup, sizeof(dedup), DEDUP_PREFIX "%s", id);
	rv = load_open(tx, dedup, &open);
	if (rv != 0 && rv != OD_ENOTFOUND) {
		return rv;
	}
	maint = hc->new_state == CS_MAINTENANCE
	    || inc_mnt_active_for(inc_tx_mdb(tx), tx->svc, id, tx->now);
	act = inc_auto_decide(open, prev, hc->new_state, maint);
	switch (act) {
	case AUTO_NONE:
		rv = 0;
		break;
	case AUTO_OPEN:
		rv = open_for(tx, hc, name, dedup);
		break;
	default:
		rv = change_open(tx, open, act, hc, name);
		break;
	}
	inc_free(open);
	return rv;
}

int
inc_auto_reevaluate(inc_tx *tx, const char *component)
{
	Opsdesk__V1__HealthChanged *last = NULL;
	inc_incident *open = NULL;
	char dedup[200];
	int rv;

	rv = store_get_pb(inc_tx_mdb(tx), inc_dbi(tx->svc, INC_DB_COMPONENTS),
	    component, strlen(component),
	    &opsdesk__v1__health_changed__descriptor,
	    (ProtobufCMessage **) &last);
	if (rv != 0) {
		return rv == OD_ENOTFOUND ? 0 : rv;
	}
	snprintf(dedup, sizeof(dedup), DEDUP_PREFIX "%s", component);
	if ((last->new_state == CS_DOWN || last->new_state == CS_DEGRADED)
	    && (rv = load_open(tx, dedup, &open)) == OD_ENOTFOUND
	    && !inc_mnt_active_for(
	        inc_tx_mdb(tx), tx->svc, component, tx->now)) {
		rv = open_for(
		    tx, last, last->name[0] ? last->name : component, dedup);
	} else if (rv == OD_ENOTFOUND) {
		rv = 0;
	}
	inc_free(open);
	protobuf_c_message_free_unpacked(&last->base, NULL);
	return rv;
}

typedef struct apply_batch {
	inc_service *svc;
	const Opsdesk__V1__HealthChanged *const *events;
	size_t n;
} apply_batch;

static int
apply_batch_job(store_txn *txn, void *arg)
{
	apply_batch *b = arg;
	inc_tx tx = { b->svc, txn, store_txn_now_ms(txn), NULL };
	int rv;

	for (size_t i = 0; i < b->n; i++) {
		if ((rv = inc_auto_apply(&tx, b->events[i])) != 0) {
			return rv;
		}
	}
	return 0;
}

void
inc_auto_on_event(
    void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	inc_service *svc = arg;
	const Opsdesk__V1__HealthChanged *hc = env->health_changed;
	apply_batch b = { svc, &hc, 1 };
	int rv;

	if (env->payload_case != OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_CHANGED
	    || strcmp(topic, "health.changed") != 0) {
		return;
	}
	if ((rv = store_write(svc->st, apply_batch_job, &b)) != 0) {
		/* The stored state did not move: the resync repairs it. */
		log_warn("health.changed for %s not applied: %s",
		    hc->target_id, od_strerror(rv));
		bus_resync_mark(svc->resync, 0, "health.changed not applied");
	}
}

int
inc_auto_resync(void *arg)
{
	inc_service *svc = arg;
	Opsdesk__V1__ProberRequest req = OPSDESK__V1__PROBER_REQUEST__INIT;
	Opsdesk__V1__HealthSnapshotRequest snap
	    = OPSDESK__V1__HEALTH_SNAPSHOT_REQUEST__INIT;
	Opsdesk__V1__ProberReply *rep = NULL;
	Opsdesk__V1__HealthChanged *events = NULL;
	const Opsdesk__V1__HealthChanged **ptrs = NULL;
	const Opsdesk__V1__HealthCurrent *cur;
	apply_batch b = { svc, NULL, 0 };
	int rv;

	req.method_case = OPSDESK__V1__PROBER_REQUEST__METHOD_SNAPSHOT;
	req.snapshot = &snap;
	if ((rv = inc_peer_call(svc, svc->prober, &req.base,
	         &opsdesk__v1__prober_reply__descriptor,
	         (ProtobufCMessage **) &rep))
	    != 0) {
		return rv;
	}
	if (rep->result_case != OPSDESK__V1__PROBER_REPLY__RESULT_SNAPSHOT) {
		rv = OD_EMALFORMED;
		goto out;
	}
	cur = rep->snapshot;
	events = calloc(cur->n_targets + 1, sizeof(*events));
	ptrs = calloc(cur->n_targets + 1, sizeof(*ptrs));
	if (events == NULL || ptrs == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	/* Each current state as if it were a change: what was seen already
	 * is skipped by inc_auto_apply. */
	for (size_t i = 0; i < cur->n_targets; i++) {
		const Opsdesk__V1__TargetStatus *t = cur->targets[i];
		Opsdesk__V1__HealthChanged *hc = &events[i];
		opsdesk__v1__health_changed__init(hc);
		hc->target_id = t->id;
		hc->name = t->name;
		hc->group = t->group;
		hc->old_state = CS_UNKNOWN;
		hc->new_state = t->state;
		hc->reason = t->reason;
		hc->latency_ms = t->latency_ms;
		hc->criticality = t->criticality;
		hc->public_ = t->public_;
		hc->at_ms = t->since_ms;
		ptrs[i] = hc;
	}
	b.events = ptrs;
	b.n = cur->n_targets;
	if ((rv = store_write(svc->st, apply_batch_job, &b)) == 0) {
		log_info("resynced %zu components from health-prober",
		    cur->n_targets);
	}
out:
	free(events);
	free(ptrs);
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return rv;
}
