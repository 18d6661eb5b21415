/*
 * lifecycle.c — an incident from open to resolved. The apply functions
 * are pure (they change the struct, and only on success); the functions
 * with an inc_tx load, apply, store, re-index and publish in one job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"
#include "store/store.h"

#define TITLE_MAX 200
#define TEXT_MAX  4000

inc_incident *
inc_alloc(void)
{
	inc_incident *inc = malloc(sizeof(*inc));

	if (inc != NULL) {
		opsdesk__v1__incident__init(inc);
	}
	return inc;
}

inc_incident *
inc_dup(const inc_incident *inc)
{
	size_t len = opsdesk__v1__incident__get_packed_size(inc);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	inc_incident *copy = NULL;

	if (buf != NULL) {
		opsdesk__v1__incident__pack(inc, buf);
		copy = opsdesk__v1__incident__unpack(NULL, len, buf);
		free(buf);
	}
	return copy;
}

void
inc_free(inc_incident *inc)
{
	if (inc != NULL) {
		protobuf_c_message_free_unpacked(&inc->base, NULL);
	}
}

/* Grow a repeated message field by one slot. */
static int
grow(void ***arr, size_t n)
{
	void **p = realloc(*arr, (n + 1) * sizeof(*p));

	if (p == NULL) {
		return OD_ENOMEM;
	}
	*arr = p;
	return 0;
}

int
inc_timeline_add(inc_incident *inc, int64_t at, const inc_actor *who,
    int status, const char *text, bool public_entry)
{
	inc_entry *e = malloc(sizeof(*e));

	if (e == NULL || grow((void ***) &inc->timeline, inc->n_timeline)) {
		free(e);
		return OD_ENOMEM;
	}
	opsdesk__v1__timeline_entry__init(e);
	e->at_ms = at;
	e->author_id = who != NULL ? who->user_id : 0;
	e->status = status;
	e->public_ = public_entry;
	if (inc_set_str(&e->author_name,
	        who != NULL && who->name[0] != '\0' ? who->name
	            : who != NULL                   ? "admin"
	                                            : "system")
	        != 0
	    || inc_set_str(&e->text, text) != 0) {
		protobuf_c_message_free_unpacked(&e->base, NULL);
		return OD_ENOMEM;
	}
	inc->timeline[inc->n_timeline++] = e;
	inc->updated_ms = at;
	return 0;
}

void
inc_strip_internal(inc_incident *inc)
{
	size_t kept = 0;

	for (size_t i = 0; i < inc->n_timeline; i++) {
		inc_entry *e = inc->timeline[i];
		if (!e->public_) {
			protobuf_c_message_free_unpacked(&e->base, NULL);
			continue;
		}
		inc_set_str(&e->author_name, "");
		e->author_id = 0;
		inc->timeline[kept++] = e;
	}
	inc->n_timeline = kept;
	inc_set_str(&inc->acknowledged_by_name, "");
	inc->acknowledged_by = 0;
	inc->created_by = 0;
}

int
inc_add_component(
    inc_incident *inc, const char *id, const char *name, int state)
{
	Opsdesk__V1__AffectedComponent *c = malloc(sizeof(*c));

	if (c == NULL
	    || grow((void ***) &inc->components, inc->n_components)) {
		free(c);
		return OD_ENOMEM;
	}
	opsdesk__v1__affected_component__init(c);
	c->state = state;
	if (inc_set_str(&c->component_id, id) != 0
	    || inc_set_str(&c->name, name != NULL && name[0] ? name : id)
	        != 0) {
		protobuf_c_message_free_unpacked(&c->base, NULL);
		return OD_ENOMEM;
	}
	inc->components[inc->n_components++] = c;
	return 0;
}

int
inc_apply_ack(inc_incident *inc, int64_t now, const inc_actor *who)
{
	char text[160];
	const char *name = who != NULL && who->name[0] ? who->name : "admin";
	int rv;

	if (inc->status == ST_RESOLVED || inc->acknowledged) {
		return OD_ESTATE;
	}
	snprintf(text, sizeof(text), "Acknowledged by %s", name);
	if ((rv = inc_timeline_add(inc, now, who, inc->status, text, false))
	        != 0
	    || (rv = inc_set_str(&inc->acknowledged_by_name, name)) != 0) {
		return rv;
	}
	inc->acknowledged = true;
	inc->acknowledged_by = who != NULL ? who->user_id : 0;
	inc->acknowledged_ms = now;
	inc->next_alert_ms = 0;
	return 0;
}

int
inc_apply_update(inc_incident *inc, int64_t now, const inc_actor *who,
    int status, const char *text, bool internal)
{
	char deflt[64];
	int rv;

	if (inc->status == ST_RESOLVED) {
		return OD_ESTATE;
	}
	if (status != ST_NONE && status != ST_INVESTIGATING
	    && status != ST_IDENTIFIED && status != ST_MONITORING) {
		return OD_EINVAL;
	}
	if (text == NULL) {
		text = "";
	}
	if (strlen(text) > TEXT_MAX
	    || (status == ST_NONE && text[0] == '\0')) {
		return OD_EINVAL;
	}
	if (text[0] == '\0') {
		snprintf(deflt, sizeof(deflt), "Status: %s",
		    inc_status_name(status));
		text = deflt;
	}
	if ((rv = inc_timeline_add(inc, now, who,
	         status != ST_NONE ? status : (int) inc->status, text,
	         !internal))
	    != 0) {
		return rv;
	}
	if (status != ST_NONE && status != (int) inc->status) {
		inc->status = status;
		if (status == ST_MONITORING) {
			inc->monitoring_ms = now;
		}
	}
	/* A person is on it now: the automation only adds notes. */
	inc->taken_over = true;
	inc->auto_resolve_ms = 0;
	return 0;
}

int
inc_apply_severity(inc_incident *inc, int64_t now, const inc_actor *who,
    int sev, const char *reason, bool public_entry)
{
	char text[TEXT_MAX + 128];
	int rv;

	if (reason == NULL) {
		reason = "";
	}
	if (!inc_severity_valid(sev) || strlen(reason) > TEXT_MAX) {
		return OD_EINVAL;
	}
	if (inc->status == ST_RESOLVED || sev == (int) inc->severity) {
		return OD_ESTATE;
	}
	snprintf(text, sizeof(text), "Severity %s -> %s%s%s",
	    inc_severity_name(inc->severity), inc_severity_name(sev),
	    reason[0] ? ": " : ".", reason);
	if ((rv = inc_timeline_add(
	         inc, now, who, inc->status, text, public_entry))
	    != 0) {
		return rv;
	}
	inc->severity = sev;
	return 0;
}

int
inc_apply_resolve(
    inc_incident *inc, int64_t now, const inc_actor *who, const char *text)
{
	int rv;

	if (inc->status == ST_RESOLVED) {
		return OD_ESTATE;
	}
	if (text != NULL && strlen(text) > TEXT_MAX) {
		return OD_EINVAL;
	}
	if (text == NULL || text[0] == '\0') {
		text = who != NULL ? "Resolved."
		                   : "Recovered and stable; resolved "
		                     "automatically.";
	}
	if ((rv = inc_timeline_add(inc, now, who, ST_RESOLVED, text, true))
	    != 0) {
		return rv;
	}
	/* Resolving answers it too: the response clock stops here. */
	if (!inc->acknowledged) {
		const char *name = who != NULL && who->name[0] ? who->name
		    : who != NULL                              ? "admin"
		                                               : "system";
		if ((rv = inc_set_str(&inc->acknowledged_by_name, name))
		    != 0) {
			return rv;
		}
		inc->acknowledged = true;
		inc->acknowledged_by = who != NULL ? who->user_id : 0;
		inc->acknowledged_ms = now;
	}
	inc->status = ST_RESOLVED;
	inc->resolved_ms = now;
	inc->next_alert_ms = 0;
	inc->auto_resolve_ms = 0;
	return 0;
}

int
inc_apply_recovery(
    inc_incident *inc, int64_t now, int64_t stable_period_ms, const char *text)
{
	int rv;

	if (inc->status == ST_RESOLVED) {
		return OD_ESTATE;
	}
	if (inc->taken_over) {
		return inc_timeline_add(
		    inc, now, NULL, inc->status, text, false);
	}
	if ((rv = inc_timeline_add(inc, now, NULL, ST_MONITORING, text, true))
	    != 0) {
		return rv;
	}
	if (inc->status != ST_MONITORING) {
		inc->status = ST_MONITORING;
		inc->monitoring_ms = now;
	}
	inc->auto_resolve_ms = now + stable_period_ms;
	return 0;
}

int
inc_apply_relapse(inc_incident *inc, int64_t now, int sev, const char *text)
{
	bool back = inc->status == ST_MONITORING && !inc->taken_over;
	int rv;

	if (inc->status == ST_RESOLVED) {
		return OD_ESTATE;
	}
	if ((rv = inc_timeline_add(inc, now, NULL,
	         back ? ST_INVESTIGATING : inc->status, text, true))
	    != 0) {
		return rv;
	}
	if (back) {
		inc->status = ST_INVESTIGATING;
		inc->auto_resolve_ms = 0;
		inc->monitoring_ms = 0; /* the impact goes on */
	}
	if (inc_severity_valid(sev) && sev < (int) inc->severity) {
		inc->severity = sev;
	}
	return 0;
}

/* ---- with the store ---- */

int
inc_load(MDB_txn *txn, inc_service *svc, uint64_t id, inc_incident **out)
{
	return inc_get_by_id(txn, svc, INC_DB_INCIDENTS, id,
	    &opsdesk__v1__incident__descriptor, (ProtobufCMessage **) out);
}

int
inc_save(
    inc_tx *tx, const inc_incident *inc, const inc_timer *old, size_t n_old)
{
	inc_timer cur[INC_MAX_TIMERS];
	size_t n_cur = inc_timers_of_incident(inc, cur);
	MDB_dbi open_db = inc_dbi(tx->svc, INC_DB_OPEN);
	uint8_t key[8];
	int rv;

	if ((rv = inc_put_timed(tx, INC_DB_INCIDENTS, INC_DB_ACTIVE, inc->id,
	         &inc->base, inc->status != ST_RESOLVED, old, n_old, cur,
	         n_cur))
	    != 0) {
		return rv;
	}
	store_key_u64(key, inc->id);
	if (inc->dedup_key[0] == '\0') {
		return 0;
	}
	if (inc->status != ST_RESOLVED) {
		return store_put(tx->txn, open_db, inc->dedup_key,
		    strlen(inc->dedup_key), key, sizeof(key));
	}
	rv = store_del(
	    tx->txn, open_db, inc->dedup_key, strlen(inc->dedup_key), NULL, 0);
	return rv == OD_ENOTFOUND ? 0 : rv;
}

static int
copy_out(const inc_incident *inc, inc_incident **out)
{
	if (out == NULL) {
		return 0;
	}
	if ((*out = inc_dup(inc)) == NULL) {
		return OD_ENOMEM;
	}
	return 0;
}

int
inc_open(inc_tx *tx, const inc_open_args *a, inc_incident **out)
{
	inc_incident *inc = NULL;
	uint64_t id;
	int rv;

	if (!inc_severity_valid(a->severity) || a->title == NULL
	    || a->title[0] == '\0' || strlen(a->title) > TITLE_MAX
	    || (a->text != NULL && strlen(a->text) > TEXT_MAX)
	    || a->n_components > 64) {
		return OD_EINVAL;
	}
	if ((inc = inc_alloc()) == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = store_next_id(tx->txn, "incident", &id)) != 0) {
		goto out;
	}
	inc->id = id;
	inc->severity = a->severity;
	inc->status = ST_INVESTIGATING;
	inc->automatic = a->automatic;
	inc->public_ = !a->internal;
	inc->created_ms = tx->now;
	inc->updated_ms = tx->now;
	inc->created_by = a->actor != NULL ? a->actor->user_id : 0;
	inc_sla_start(&tx->svc->cfg, inc);
	if ((rv = inc_set_str(&inc->title, a->title)) != 0
	    || (rv = inc_set_str(
	            &inc->dedup_key, a->dedup_key != NULL ? a->dedup_key : ""))
	        != 0) {
		goto out;
	}
	for (size_t i = 0; i < a->n_components; i++) {
		if (a->component_ids[i] == NULL
		    || a->component_ids[i][0] == '\0') {
			rv = OD_EINVAL;
			goto out;
		}
		if ((rv = inc_add_component(inc, a->component_ids[i],
		         a->component_names ? a->component_names[i] : NULL,
		         a->component_states ? a->component_states[i]
		                             : CS_DOWN))
		    != 0) {
			goto out;
		}
	}
	if ((rv = inc_timeline_add(inc, tx->now, a->actor, ST_INVESTIGATING,
	         a->text != NULL && a->text[0] ? a->text : a->title,
	         !a->internal))
	        != 0
	    || (a->internal_text != NULL
	        && (rv = inc_timeline_add(inc, tx->now, a->actor,
	                ST_INVESTIGATING, a->internal_text, false))
	            != 0)
	    || (rv = inc_alert_opened(tx, inc)) != 0
	    || (rv = inc_save(tx, inc, NULL, 0)) != 0
	    || (rv = inc_emit_incident(tx, "incident.opened", "opened", inc))
	        != 0
	    || (rv = copy_out(inc, out)) != 0) {
		goto out;
	}
out:
	inc_free(inc);
	return rv;
}

/* Load, apply, save, publish: the shape every person's change has. */
typedef struct change {
	uint64_t id;
	const inc_actor *who;
	int status;
	const char *text;
	bool internal;
	int severity;
} change;

typedef int (*apply_fn)(inc_tx *tx, inc_incident *inc, const change *c);

static int
apply_ack(inc_tx *tx, inc_incident *inc, const change *c)
{
	return inc_apply_ack(inc, tx->now, c->who);
}

static int
apply_update(inc_tx *tx, inc_incident *inc, const change *c)
{
	return inc_apply_update(
	    inc, tx->now, c->who, c->status, c->text, c->internal);
}

static int
apply_resolve(inc_tx *tx, inc_incident *inc, const change *c)
{
	inc_postmortem *pm = NULL;
	int rv;

	if ((rv = inc_apply_resolve(inc, tx->now, c->who, c->text)) != 0) {
		return rv;
	}
	if ((pm = inc_pm_generate(&tx->svc->cfg, inc, tx->now)) == NULL) {
		return OD_ENOMEM;
	}
	/* The peers' sections are frozen by a second write after this
	 * commit (freeze.c): this job must not wait on the network. */
	if ((rv = inc_pm_save(tx, pm)) == 0) {
		rv = inc_pm_freeze_enter(tx, pm);
	}
	inc_pm_free(pm);
	return rv;
}

/* The new severity's rules from the incident's start: its SLA targets
 * (elapsed time kept, breaches already alerted stay) and its alerting. */
static int
apply_severity(inc_tx *tx, inc_incident *inc, const change *c)
{
	int was = inc->severity;
	int rv = inc_apply_severity(
	    inc, tx->now, c->who, c->severity, c->text, !c->internal);

	if (rv != 0) {
		return rv;
	}
	inc_sla_rebase(&tx->svc->cfg, inc);
	return inc_alert_reclassified(tx, inc, was);
}

static int
change_incident(inc_tx *tx, const change *c, apply_fn fn, const char *topic,
    const char *what, inc_incident **out)
{
	inc_timer old[INC_MAX_TIMERS];
	size_t n_old;
	inc_incident *inc = NULL;
	int rv;

	if ((rv = inc_load(inc_tx_mdb(tx), tx->svc, c->id, &inc)) != 0) {
		return rv;
	}
	n_old = inc_timers_of_incident(inc, old);
	if ((rv = fn(tx, inc, c)) != 0
	    || (rv = inc_save(tx, inc, old, n_old)) != 0
	    || (rv = inc_emit_incident(tx, topic, what, inc)) != 0
	    || (rv = copy_out(inc, out)) != 0) {
		goto out;
	}
out:
	inc_free(inc);
	return rv;
}

int
inc_ack(inc_tx *tx, uint64_t id, const inc_actor *who, inc_incident **out)
{
	change c = { .id = id, .who = who };

	return change_incident(
	    tx, &c, apply_ack, "incident.updated", "acknowledged", out);
}

int
inc_update(inc_tx *tx, uint64_t id, const inc_actor *who, int status,
    const char *text, bool internal, inc_incident **out)
{
	change c = { .id = id,
		.who = who,
		.status = status,
		.text = text,
		.internal = internal };

	return change_incident(tx, &c, apply_update, "incident.updated",
	    status != ST_NONE ? "status" : "note", out);
}

int
inc_resolve(inc_tx *tx, uint64_t id, const inc_actor *who, const char *text,
    inc_incident **out)
{
	change c = { .id = id, .who = who, .text = text };

	return change_incident(
	    tx, &c, apply_resolve, "incident.resolved", "resolved", out);
}

/* The time-driven part of an incident: SLA breaches, re-alerts and the
 * auto-resolve after a stable recovery. Safe to call at any time: only
 * what is due by tx->now happens. */
int
inc_set_severity(inc_tx *tx, uint64_t id, const inc_actor *who, int sev,
    const char *reason, bool public_entry, inc_incident **out)
{
	change c = { .id = id,
		.who = who,
		.text = reason,
		.internal = !public_entry,
		.severity = sev };

	return change_incident(
	    tx, &c, apply_severity, "incident.updated", "severity", out);
}

int
inc_due(inc_tx *tx, uint64_t id)
{
	inc_timer old[INC_MAX_TIMERS];
	size_t n_old;
	inc_incident *inc = NULL;
	const char *topic = NULL, *what = NULL;
	int64_t realert;
	int breaches, rv;

	if ((rv = inc_load(inc_tx_mdb(tx), tx->svc, id, &inc)) != 0) {
		/* A timer of a record that is gone: nothing to do. */
		return rv == OD_ENOTFOUND ? 0 : rv;
	}
	n_old = inc_timers_of_incident(inc, old);
	if (inc->status == ST_RESOLVED) {
		goto save;
	}
	breaches = inc_sla_new_breaches(inc, tx->now);
	if (breaches & INC_BREACH_RESPONSE) {
		inc->response_breached = true;
		if ((rv = inc_timeline_add(inc, tx->now, NULL, inc->status,
		         "Response SLA breached: not acknowledged in time.",
		         false))
		        != 0
		    || (rv = inc_alert(tx, "response_sla", inc,
		            "Response SLA breached: not acknowledged in "
		            "time"))
		        != 0) {
			goto out;
		}
		topic = "incident.updated", what = "breach";
	}
	if (breaches & INC_BREACH_RESOLUTION) {
		inc->resolution_breached = true;
		if ((rv = inc_timeline_add(inc, tx->now, NULL, inc->status,
		         "Resolution SLA breached: not resolved in time.",
		         false))
		        != 0
		    || (rv = inc_alert(tx, "resolution_sla", inc,
		            "Resolution SLA breached: not resolved in time"))
		        != 0) {
			goto out;
		}
		topic = "incident.updated", what = "breach";
	}
	if (!inc->acknowledged && inc->next_alert_ms > 0
	    && tx->now >= inc->next_alert_ms) {
		realert
		    = tx->svc->cfg
		          .realert_ms[inc->severity < SEV_COUNT ? inc->severity
		                                                : 0];
		inc->next_alert_ms = realert > 0 ? tx->now + realert : 0;
		if ((rv = inc_alert(
		         tx, "unacknowledged", inc, "Still not acknowledged"))
		    != 0) {
			goto out;
		}
		inc->alert_count++;
	}
	if (inc->status == ST_MONITORING && !inc->taken_over
	    && inc->auto_resolve_ms > 0 && tx->now >= inc->auto_resolve_ms) {
		char text[1200];
		change c = { .id = id };
		if (inc->automatic) {
			inc_public_text(&tx->svc->cfg, INC_TMPL_RESOLVED,
			    inc->n_components > 0 ? inc->components[0]->name
			                          : inc->title,
			    text, sizeof(text));
			c.text = text;
		}
		if ((rv = apply_resolve(tx, inc, &c)) != 0) {
			goto out;
		}
		topic = "incident.resolved", what = "resolved";
	}
save:
	if ((rv = inc_save(tx, inc, old, n_old)) != 0) {
		goto out;
	}
	if (topic != NULL) {
		rv = inc_emit_incident(tx, topic, what, inc);
	}
out:
	inc_free(inc);
	return rv;
}
