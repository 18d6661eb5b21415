/*
 * handlers.c — the IncidentRequest methods: decode the member, call the
 * core, map its od_err to an Error reply with a message the admin can act
 * on. Writes run in the store's group commit (rpc), so the reply means
 * durable and a repeated request id gets the first reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"
#include "rpc/rpc.h"
#include "store/store.h"

#define LIST_DEFAULT 20
#define LIST_MAX     100
#define RECENT_MS    (14 * INC_DAY_MS)

typedef Opsdesk__V1__IncidentRequest inc_req;
typedef Opsdesk__V1__IncidentReply inc_rep;

/* Messages for the od_err codes a method can meet; NULL: a default. */
typedef struct why {
	const char *invalid;
	const char *notfound;
	const char *state;
} why;

/* The method's words for the code rv (the default when it has none),
 * then the one mapping, rpc_call_fail. */
static int
answer_why(rpc_call *c, int rv, const why *w)
{
	const char *text = rv == OD_EINVAL ? w->invalid
	    : rv == OD_ENOTFOUND           ? w->notfound
	    : rv == OD_ESTATE              ? w->state
	                                   : NULL;

	return text != NULL ? rpc_call_fail(c, rv, "%s", text)
	                    : rpc_call_fail(c, rv, NULL);
}

/*
 * answer_why() for a method on one record: "<kind>-<id> does not exist" for
 * OD_ENOTFOUND and "<kind>-<id> is <state>" for OD_ESTATE (state NULL: the
 * default), so each handler names what it could not find or change.
 */
static int
fail_on(rpc_call *c, int rv, const char *kind, uint64_t id,
    const char *invalid, const char *state)
{
	char nf[64], st[96];
	why w = { invalid, nf, state != NULL ? st : NULL };

	snprintf(nf, sizeof(nf), "%s-%llu does not exist", kind,
	    (unsigned long long) id);
	if (state != NULL) {
		snprintf(st, sizeof(st), "%s-%llu is %s", kind,
		    (unsigned long long) id, state);
	}
	return answer_why(c, rv, &w);
}

static inc_tx
tx_of(rpc_call *c)
{
	inc_tx tx = { rpc_call_arg(c), rpc_call_txn(c), rpc_call_now_ms(c),
		rpc_call_request_id(c) };

	return tx;
}

static const inc_actor *
actor_of(rpc_call *c)
{
	return rpc_call_actor(c);
}

static bool
is_admin(rpc_call *c)
{
	const inc_actor *a = actor_of(c);

	return a != NULL && a->is_admin;
}

static int
reply_incident(rpc_call *c, ProtobufCMessage *reply, inc_incident *inc)
{
	return rpc_call_result(c, "incident", rpc_call_keep(c, &inc->base));
}

static int
h_create(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__CreateIncidentRequest *r = rpc_call_params(c);
	inc_tx tx = tx_of(c);
	inc_incident *inc = NULL;
	inc_open_args a = { 0 };
	why w = { "give a severity (critical, high, medium or low), a title "
		  "of 1 to 200 bytes and at most 64 non-empty components",
		NULL, NULL };
	int rv;

	a.severity = r->severity;
	a.title = r->title;
	a.text = r->text;
	a.internal = r->internal;
	a.component_ids = (const char *const *) r->components;
	a.n_components = r->n_components;
	a.actor = actor_of(c);
	if ((rv = inc_open(&tx, &a, &inc)) != 0) {
		return answer_why(c, rv, &w);
	}
	return reply_incident(c, reply, inc);
}

static int
h_get(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	uint64_t id
	    = ((const Opsdesk__V1__IncidentId *) rpc_call_params(c))->id;
	inc_incident *inc = NULL;
	int rv;

	if ((rv = inc_load(rpc_call_mdb(c), rpc_call_arg(c), id, &inc)) != 0) {
		return fail_on(c, rv, "INC", id, NULL, NULL);
	}
	return reply_incident(c, reply, inc);
}

/* The reply to a change of incident id: the incident, or an Error that
 * names it (state: what FAILED_PRECONDITION means for this change). */
static int
answer_change(rpc_call *c, ProtobufCMessage *reply, uint64_t id, int rv,
    inc_incident *inc, const char *invalid, const char *state)
{
	if (rv != 0) {
		return fail_on(c, rv, "INC", id, invalid, state);
	}
	return reply_incident(c, reply, inc);
}

static int
h_ack(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	uint64_t id
	    = ((const Opsdesk__V1__IncidentId *) rpc_call_params(c))->id;
	inc_tx tx = tx_of(c);
	inc_incident *inc = NULL;
	int rv = inc_ack(&tx, id, actor_of(c), &inc);

	return answer_change(
	    c, reply, id, rv, inc, NULL, "already acknowledged or resolved");
}

static int
h_update(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__UpdateIncidentRequest *u = rpc_call_params(c);
	inc_tx tx = tx_of(c);
	inc_incident *inc = NULL;
	int rv = inc_update(
	    &tx, u->id, actor_of(c), u->status, u->text, u->internal, &inc);

	return answer_change(c, reply, u->id, rv, inc,
	    "the status must be investigating, identified or monitoring "
	    "(resolve with resolve), and a note needs text (at most 4000 "
	    "bytes)",
	    "already resolved");
}

static int
h_resolve(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__ResolveIncidentRequest *r = rpc_call_params(c);
	inc_tx tx = tx_of(c);
	inc_incident *inc = NULL;
	int rv = inc_resolve(&tx, r->id, actor_of(c), r->text, &inc);

	return answer_change(c, reply, r->id, rv, inc,
	    "the text is at most 4000 bytes", "already resolved");
}

static int
h_set_severity(
    rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__SetSeverityRequest *r = rpc_call_params(c);
	inc_tx tx = tx_of(c);
	inc_incident *inc = NULL;
	int rv = inc_set_severity(
	    &tx, r->id, actor_of(c), r->severity, r->reason, r->public_, &inc);

	return answer_change(c, reply, r->id, rv, inc,
	    "the severity is critical, high, medium or low, and the reason "
	    "at most 4000 bytes",
	    "resolved or already of that severity");
}

static int
add_ptr(void ***arr, size_t *n, size_t cap, void *p)
{
	if (*arr == NULL && (*arr = calloc(cap, sizeof(void *))) == NULL) {
		return OD_ENOMEM;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static int
h_list(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__ListIncidentsRequest *r = rpc_call_params(c);
	Opsdesk__V1__IncidentList *l = malloc(sizeof(*l));
	uint32_t limit = 0;
	const char *cursor = NULL;
	store_scan sc;
	MDB_val k, v;
	int rv = 0;

	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__incident_list__init(l);
	rpc_call_keep(c, &l->base);
	if (r->page != NULL) {
		limit = r->page->limit;
		cursor = r->page->cursor;
	}
	limit = od_page_limit(limit, LIST_DEFAULT, LIST_MAX);
	rv = store_scan_open(&sc, rpc_call_mdb(c),
	    inc_dbi(rpc_call_arg(c), INC_DB_INCIDENTS), NULL, 0, cursor);
	if (rv == OD_EINVAL) {
		return rpc_call_fail(c, rv, "bad cursor");
	}
	if (rv != 0) {
		return rv;
	}
	/* Newest first, from the cursor's id. */
	store_scan_reverse(&sc);
	while (store_scan_next(&sc, &k, &v) == 0) {
		inc_incident *inc;
		if (l->n_incidents == limit) {
			char next[STORE_PAGE_CURSOR_MAX];
			store_scan_page_cursor(&sc, next, sizeof(next));
			rv = inc_set_str(&l->next_cursor, next);
			break;
		}
		inc = opsdesk__v1__incident__unpack(
		    NULL, v.mv_size, v.mv_data);
		if (inc == NULL) {
			continue;
		}
		if (inc->status == ST_RESOLVED && !r->include_resolved) {
			inc_free(inc);
			continue;
		}
		if ((rv = add_ptr((void ***) &l->incidents, &l->n_incidents,
		         limit, inc))
		    != 0) {
			inc_free(inc);
			break;
		}
	}
	store_scan_close(&sc);
	return rv != 0 ? rv : rpc_call_result(c, "incidents", l);
}

/* The stored postmortem with the peers' sections filled in. */
static int
load_pm(rpc_call *c, uint64_t id, inc_postmortem **out)
{
	inc_incident *inc = NULL;
	int rv;

	rv = inc_pm_load(rpc_call_mdb(c), rpc_call_arg(c), id, out);
	if (rv == OD_ENOTFOUND) {
		rv = inc_load(rpc_call_mdb(c), rpc_call_arg(c), id, &inc);
		inc_free(inc);
		rv = rv == 0 ? OD_ESTATE : rv;
	}
	if (rv != 0) {
		return fail_on(c, rv, "INC", id, NULL, "not resolved yet");
	}
	rpc_call_keep(c, &(*out)->base);
	inc_pm_fill_external(rpc_call_arg(c), *out);
	return 0;
}

static int
h_postmortem(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	inc_postmortem *pm;
	int rv;

	if ((rv = load_pm(c,
	         ((const Opsdesk__V1__IncidentId *) rpc_call_params(c))->id,
	         &pm))
	    != 0) {
		return rv;
	}
	return rpc_call_result(c, "postmortem", pm);
}

static int
h_pm_markdown(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	inc_postmortem *pm;
	sbuf b = SBUF_INIT;
	int rv;

	if ((rv = load_pm(c,
	         ((const Opsdesk__V1__IncidentId *) rpc_call_params(c))->id,
	         &pm))
	    != 0) {
		return rv;
	}
	if ((rv = inc_pm_markdown(pm, &b)) == 0) {
		rv = inc_set_str(&pm->markdown, sbuf_str(&b));
	}
	sbuf_free(&b);
	return rv != 0 ? rv : rpc_call_result(c, "postmortem", pm);
}

static int
h_pm_edit(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__EditPostmortemRequest *r = rpc_call_params(c);
	inc_tx tx = tx_of(c);
	inc_postmortem *pm = NULL;
	int rv;

	if ((rv = inc_pm_edit(&tx, r, &pm)) != 0) {
		return fail_on(c, rv, "INC", r->incident_id,
		    "give a root cause, an action item with text (at most "
		    "4000 bytes; owner at most 200), or the number of an "
		    "existing action item to mark done or remove",
		    "not resolved yet");
	}
	return rpc_call_result(c, "postmortem", rpc_call_keep(c, &pm->base));
}

static int
h_mnt_create(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	inc_tx tx = tx_of(c);
	inc_window *w = NULL;
	char err[160] = "";
	why wh = { err, NULL, NULL };
	int rv;

	if ((rv = inc_mnt_create(
	         &tx, rpc_call_params(c), actor_of(c), &w, err, sizeof(err)))
	    != 0) {
		return answer_why(c, rv, &wh);
	}
	return rpc_call_result(c, "maintenance", rpc_call_keep(c, &w->base));
}

static int
h_mnt_cancel(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	uint64_t id
	    = ((const Opsdesk__V1__MaintenanceId *) rpc_call_params(c))->id;
	inc_tx tx = tx_of(c);
	inc_window *w = NULL;
	int rv;

	if ((rv = inc_mnt_cancel(&tx, id, &w)) != 0) {
		return fail_on(c, rv, "MNT", id, NULL, "already over");
	}
	return rpc_call_result(c, "maintenance", rpc_call_keep(c, &w->base));
}

/* Windows are public; who scheduled them is not. */
static void
strip_windows(rpc_call *c, inc_window **w, size_t n)
{
	for (size_t i = 0; !is_admin(c) && i < n; i++) {
		w[i]->created_by = 0;
	}
}

static int
h_mnt_list(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	Opsdesk__V1__MaintenanceList *l = NULL;
	int rv;

	if ((rv = inc_mnt_list(rpc_call_mdb(c), rpc_call_arg(c),
	         ((const Opsdesk__V1__ListMaintenanceRequest *)
	                 rpc_call_params(c))
	             ->include_done,
	         &l))
	    != 0) {
		return rv;
	}
	strip_windows(c, l->windows, l->n_windows);
	return rpc_call_result(
	    c, "maintenance_list", rpc_call_keep(c, &l->base));
}

static int
h_checklists(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	int64_t at
	    = ((const Opsdesk__V1__ChecklistsRequest *) rpc_call_params(c))
	          ->at_ms;
	Opsdesk__V1__Checklists *l = NULL;
	int rv;

	if ((rv = inc_checklists(rpc_call_mdb(c), rpc_call_arg(c),
	         at != 0 ? at : rpc_call_now_ms(c), &l))
	    != 0) {
		return rv;
	}
	return rpc_call_result(c, "checklists", rpc_call_keep(c, &l->base));
}

static int
h_tick(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__TickRequest *r = rpc_call_params(c);
	inc_tx tx = tx_of(c);
	Opsdesk__V1__Checklists *l = NULL;
	char err[160] = "";
	why w = { err, NULL, NULL };
	int rv;

	if ((rv = inc_tick(&tx, r->list_id, r->item_id, r->done, actor_of(c),
	         &l, err, sizeof(err)))
	    != 0) {
		return answer_why(c, rv, &w);
	}
	return rpc_call_result(c, "checklists", rpc_call_keep(c, &l->base));
}

static int
h_report(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__ReportRequest *r = rpc_call_params(c);
	int period = r->period == 0 ? RP_DAY : (int) r->period;
	inc_report *rep = NULL;
	why w = { "the period is day, week or month", NULL, NULL };
	int rv;

	if ((rv = inc_report_build(rpc_call_arg(c), period, r->at_ms, &rep))
	    != 0) {
		return answer_why(c, rv, &w);
	}
	return rpc_call_result(c, "report", rpc_call_keep(c, &rep->base));
}

static int
h_alerts(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	const Opsdesk__V1__AlertsRequest *r = rpc_call_params(c);
	Opsdesk__V1__AlertList *l = NULL;
	int rv;

	if ((rv = inc_alerts_list(
	         rpc_call_mdb(c), rpc_call_arg(c), r->since_seq, r->limit, &l))
	    != 0) {
		return rv;
	}
	rpc_call_keep(c, &l->base);
	/* A non-admin sees alerts of public incidents only, stripped. */
	size_t kept = 0;
	for (size_t i = 0; i < l->n_alerts; i++) {
		Opsdesk__V1__AlertEvent *a = l->alerts[i];
		if (!is_admin(c) && a->incident != NULL
		    && !a->incident->public_) {
			protobuf_c_message_free_unpacked(&a->base, NULL);
			continue;
		}
		if (!is_admin(c) && a->incident != NULL) {
			inc_strip_internal(a->incident);
		}
		l->alerts[kept++] = a;
	}
	l->n_alerts = kept;
	return rpc_call_result(c, "alerts", l);
}

static int
h_runbook(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	int sev = ((const Opsdesk__V1__RunbookRequest *) rpc_call_params(c))
	              ->severity;
	const inc_config *cfg = &((inc_service *) rpc_call_arg(c))->cfg;
	Opsdesk__V1__Runbook *rb = rpc_call_alloc(c, sizeof(*rb));

	if (rb == NULL) {
		return OD_ENOMEM;
	}
	if (!inc_severity_valid(sev)) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "the severity is critical, high, medium or low");
	}
	opsdesk__v1__runbook__init(rb);
	rb->severity = sev;
	rb->text = cfg->runbook[sev];
	rb->response_sla_ms = cfg->response_ms[sev];
	rb->resolution_sla_ms = cfg->resolution_ms[sev];
	return rpc_call_result(c, "runbook", rb);
}

/* Append inc (takes ownership on success) to the malloc'd array *v. */
static int
append_incident(inc_incident ***v, size_t *n, inc_incident *inc)
{
	inc_incident **p = realloc(*v, (*n + 1) * sizeof(*p));

	if (p == NULL) {
		return OD_ENOMEM;
	}
	*v = p;
	p[(*n)++] = inc;
	return 0;
}

static int
h_snapshot(rpc_call *c, const ProtobufCMessage *rq, ProtobufCMessage *reply)
{
	Opsdesk__V1__IncidentSnapshot *s = malloc(sizeof(*s));
	Opsdesk__V1__MaintenanceList *ml = NULL;
	int64_t now = rpc_call_now_ms(c);
	bool admin = is_admin(c);
	store_scan sc;
	MDB_val k, v;
	int rc, rv = 0;

	(void) rq;
	if (s == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__incident_snapshot__init(s);
	rpc_call_keep(c, &s->base);
	s->at_ms = now;
	if ((rv = store_counter(rpc_call_mdb(c),
	         ((inc_service *) rpc_call_arg(c))->st, "alert",
	         &s->alert_seq))
	        != 0
	    || (rv = inc_mnt_list(
	            rpc_call_mdb(c), rpc_call_arg(c), false, &ml))
	        != 0) {
		return rv;
	}
	strip_windows(c, ml->windows, ml->n_windows);
	s->maintenance = ml->windows;
	s->n_maintenance = ml->n_windows;
	ml->windows = NULL;
	ml->n_windows = 0;
	protobuf_c_message_free_unpacked(&ml->base, NULL);
	if ((rv = store_scan_open(&sc, rpc_call_mdb(c),
	         inc_dbi(rpc_call_arg(c), INC_DB_INCIDENTS), NULL, 0, NULL))
	    != 0) {
		return rv;
	}
	/* Newest first; stop at incidents older than the recent window
	 * that are resolved (open ones are few and always included). */
	store_scan_reverse(&sc);
	for (rc = store_scan_next(&sc, &k, &v); rc == 0 && rv == 0;
	     rc = store_scan_next(&sc, &k, &v)) {
		inc_incident *inc = opsdesk__v1__incident__unpack(
		    NULL, v.mv_size, v.mv_data);
		bool open, recent;
		if (inc == NULL) {
			continue;
		}
		open = inc->status != ST_RESOLVED;
		recent = !open && inc->resolved_ms >= now - RECENT_MS;
		if ((!open && !recent) || (!admin && !inc->public_)) {
			inc_free(inc);
			continue;
		}
		if (!admin) {
			inc_strip_internal(inc);
		}
		rv = open ? append_incident(&s->active, &s->n_active, inc)
		          : append_incident(&s->recent, &s->n_recent, inc);
		if (rv != 0) {
			inc_free(inc);
		}
	}
	store_scan_close(&sc);
	return rv != 0 ? rv : rpc_call_result(c, "snapshot", s);
}

/*
 * Admin-only unless the result is public anyway: maintenance windows are
 * on the status page; the snapshot and the alert log are read by
 * status-publisher and the gateway, and strip internal notes, names and
 * non-public incidents for non-admin actors.
 */
const rpc_method inc_methods[] = {
	{ "create", RPC_WRITE, true, h_create },
	{ "get", RPC_READ, true, h_get },
	{ "list", RPC_READ, true, h_list },
	{ "ack", RPC_WRITE, true, h_ack },
	{ "update", RPC_WRITE, true, h_update },
	{ "resolve", RPC_WRITE, true, h_resolve },
	{ "postmortem", RPC_READ, true, h_postmortem },
	{ "postmortem_edit", RPC_WRITE, true, h_pm_edit },
	{ "postmortem_markdown", RPC_READ, true, h_pm_markdown },
	{ "maintenance_create", RPC_WRITE, true, h_mnt_create },
	{ "maintenance_cancel", RPC_WRITE, true, h_mnt_cancel },
	{ "maintenance_list", RPC_READ, false, h_mnt_list },
	{ "checklists", RPC_READ, true, h_checklists },
	{ "tick", RPC_WRITE, true, h_tick },
	{ "report", RPC_READ, true, h_report },
	{ "alerts", RPC_READ, false, h_alerts },
	{ "runbook", RPC_READ, true, h_runbook },
	{ "snapshot", RPC_READ, false, h_snapshot },
	{ "set_severity", RPC_WRITE, true, h_set_severity },
};

const size_t inc_n_methods = sizeof(inc_methods) / sizeof(inc_methods[0]);
