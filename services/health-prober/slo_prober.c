/*
 * slo_prober — the objectives in the running prober: their counters are
 * set up with the targets (start, reload), fed by every result, and
 * evaluated in rounds that publish `slo.burn` when an alert episode starts
 * or gets worse and `slo.resolved` when it ends; the `slo` method and the
 * opsdesk_slo_* metrics show them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "prober_impl.h"
#include "util/util.h"

#define S_MAINT OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE

int
prober__slo_build(prober *p, const target *t, MDB_txn *txn, slo_rt **out)
{
	slo_rt *s = NULL;
	int rv;

	*out = NULL;
	/* A located prober's results are one location's view: the decider
	 * counts the objectives on the decided state (prober.c,
	 * record_round), so three locations do not count a round three
	 * times nor raise three alerts. */
	if (t->slo == NULL || p->ts.settings.location[0] != '\0') {
		return 0;
	}
	if ((rv = prober_slo_rt_new(t->slo, &s)) != 0) {
		return rv;
	}
	if (p->store != NULL && txn != NULL
	    && (rv = prober_slo_rt_seed(
	            s, t->slo, txn, p->store, t->id, od_now_ms()))
	        != 0) {
		log_warn("prober: objectives of %s start empty: %s", t->id,
		    od_strerror(rv));
	}
	*out = s;
	return 0;
}

bool
prober__slo_in_maintenance(const target_rt *rt)
{
	return rt->st.state == S_MAINT;
}

/* Fill m (strings borrowed from t, the burn rates in b/bp) from st. */
typedef struct slo_msg {
	Opsdesk__V1__SloStatus s;
	Opsdesk__V1__SloBurnRate b[SLO_BURN_WINDOWS];
	Opsdesk__V1__SloBurnRate *bp[SLO_BURN_WINDOWS];
	char desc[128];
} slo_msg;

static void
fill_msg(slo_msg *m, const target *t, const target_rt *rt, int k,
    const slo_obj_status *st)
{
	const slo_spec *spec = t->slo;
	opsdesk__v1__slo_status__init(&m->s);
	m->s.target_id = t->id;
	m->s.name = t->name;
	m->s.group = t->group;
	m->s.objective = (char *) slo_kind_names[spec->obj[k].kind];
	m->s.description = (char *) prober_slo_describe(
	    t, &spec->obj[k], m->desc, sizeof(m->desc));
	m->s.target = spec->obj[k].target;
	m->s.window_ms = spec->window_ms;
	m->s.attainment = st->attainment;
	m->s.budget_remaining = st->budget_left;
	m->s.budget_minutes = st->budget_min;
	for (int w = 0; w < SLO_BURN_WINDOWS; w++) {
		opsdesk__v1__slo_burn_rate__init(&m->b[w]);
		m->b[w].window_ms = st->burn_ms[w];
		m->b[w].rate = st->burn[w];
		m->bp[w] = &m->b[w];
	}
	m->s.burn = m->bp;
	m->s.n_burn = SLO_BURN_WINDOWS;
	m->s.alert = (char *) slo_alert_names[st->alert];
	m->s.public_ = spec->public;
	m->s.events = st->total;
	m->s.bad_events = st->bad;
	m->s.state = rt->st.state;
}

/* ---- rounds ---- */

typedef struct slo_fired {
	size_t index;
	int k;
	int event;
	int severity; /* enum slo_alert */
	int state;
	slo_obj_status st;
} slo_fired;

int
prober_slo_round(prober *p, int64_t now)
{
	slo_fired *fired = NULL;
	size_t n_fired = 0, cap = 0;

	pthread_rwlock_rdlock(&p->cfg_lock);
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->ts.n; i++) {
		target_rt *rt = &p->rt[i];
		const target *t = &p->ts.v[i];
		if (rt->slo == NULL || t->slo == NULL) {
			continue;
		}
		for (int k = 0; k < rt->slo->n; k++) {
			slo_obj_status st;
			int before = rt->slo->o[k].alert;
			int ev = prober_slo_eval(rt->slo, t->slo, k, now,
			    prober__slo_in_maintenance(rt), &st);
			if (ev == SLO_EVENT_NONE) {
				continue;
			}
			if (n_fired == cap) {
				size_t nc = cap ? 2 * cap : 16;
				slo_fired *nf
				    = realloc(fired, nc * sizeof(*nf));
				if (nf == NULL) {
					continue;
				}
				fired = nf;
				cap = nc;
			}
			fired[n_fired].index = i;
			fired[n_fired].k = k;
			fired[n_fired].event = ev;
			fired[n_fired].severity
			    = ev == SLO_EVENT_FIRING ? st.alert : before;
			fired[n_fired].state = rt->st.state;
			fired[n_fired].st = st;
			n_fired++;
		}
	}
	pthread_mutex_unlock(&p->mu);

	for (size_t f = 0; f < n_fired; f++) {
		const slo_fired *x = &fired[f];
		const target *t = &p->ts.v[x->index];
		const char *topic = x->event == SLO_EVENT_FIRING
		    ? "slo.burn"
		    : "slo.resolved";
		Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
		Opsdesk__V1__SloEvent ev = OPSDESK__V1__SLO_EVENT__INIT;
		target_rt rt_now;
		slo_msg m;
		memset(&rt_now, 0, sizeof(rt_now));
		rt_now.st.state = x->state;
		fill_msg(&m, t, &rt_now, x->k, &x->st);
		ev.objective = &m.s;
		ev.severity = (char *) slo_alert_names[x->severity];
		ev.at_ms = now;
		ev.criticality = t->criticality;
		log_kv(x->event == SLO_EVENT_FIRING ? LOG_WARN : LOG_INFO,
		    x->event == SLO_EVENT_FIRING ? "error budget burning"
		                                 : "error budget burn stopped",
		    "target", t->id, "objective", m.s.objective, "severity",
		    ev.severity, NULL);
		if (p->pub != NULL) {
			env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_SLO;
			env.slo = &ev;
			(void) bus_publish(p->pub, topic, &env, NULL);
		}
	}
	pthread_rwlock_unlock(&p->cfg_lock);
	free(fired);
	return (int) n_fired;
}

/* ---- the slo method ---- */

static bool
wanted(const Opsdesk__V1__SloRequest *q, const char *id)
{
	if (q == NULL || q->n_target_ids == 0) {
		return true;
	}
	for (size_t i = 0; i < q->n_target_ids; i++) {
		if (strcmp(q->target_ids[i], id) == 0) {
			return true;
		}
	}
	return false;
}

int
prober__h_slo(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	const Opsdesk__V1__ProberRequest *rq
	    = (const Opsdesk__V1__ProberRequest *) req;
	const Opsdesk__V1__SloRequest *q = rq->slo;
	prober *p = rpc_call_arg(c);
	bool admin = rpc_call_actor(c)->is_admin;
	int64_t now = rpc_call_now_ms(c);
	Opsdesk__V1__SloList *l = rpc_call_alloc(c, sizeof(*l));
	size_t n = 0;

	if (l == NULL) {
		return rpc_call_fail(c, OD_ENOMEM, "out of memory");
	}
	opsdesk__v1__slo_list__init(l);
	for (size_t i = 0; i < p->ts.n; i++) {
		n += p->ts.v[i].slo != NULL ? p->ts.v[i].slo->n_obj : 0;
	}
	l->objectives = rpc_call_alloc(c, (n + 1) * sizeof(*l->objectives));
	if (l->objectives == NULL) {
		return rpc_call_fail(c, OD_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->ts.n; i++) {
		const target *t = &p->ts.v[i];
		target_rt *rt = &p->rt[i];
		/* Others see what the status page shows, nothing else. */
		if (t->slo == NULL || rt->slo == NULL || !wanted(q, t->id)
		    || !(admin || (t->public && t->slo->public))) {
			continue;
		}
		for (int k = 0; k < rt->slo->n; k++) {
			slo_obj_status st;
			slo_msg *m = rpc_call_alloc(c, sizeof(*m));
			if (m == NULL) {
				break;
			}
			prober_slo_peek(rt->slo, t->slo, k, now, &st);
			fill_msg(m, t, rt, k, &st);
			l->objectives[l->n_objectives++] = &m->s;
		}
	}
	pthread_mutex_unlock(&p->mu);
	l->at_ms = now;
	r->slo = l;
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_SLO;
	return 0;
}

/* ---- metrics ---- */

void
prober__slo_render(void *arg, sbuf *b)
{
	static const char *const fam[][2] = {
		{ "opsdesk_slo_objective_ratio",
		    "The objective: the ratio of good events it asks for." },
		{ "opsdesk_slo_attainment_ratio",
		    "Good events over the objective's window (no data: "
		    "absent)." },
		{ "opsdesk_slo_error_budget_remaining_ratio",
		    "Error budget left over the window (below 0: "
		    "overspent)." },
		{ "opsdesk_slo_burn_rate",
		    "Error rate over a burn window divided by the error "
		    "budget (1: spends it exactly over the objective's "
		    "window)." },
	};
	prober *p = arg;
	int64_t now = od_now_ms();

	pthread_mutex_lock(&p->mu);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", fam[f][0],
		    fam[f][1], fam[f][0]);
		for (size_t i = 0; i < p->ts.n; i++) {
			const target *t = &p->ts.v[i];
			slo_rt *s = p->rt[i].slo;
			for (int k = 0; s != NULL && k < s->n; k++) {
				const char *obj
				    = slo_kind_names[t->slo->obj[k].kind];
				slo_obj_status st;
				char wn[24];
				prober_slo_peek(s, t->slo, k, now, &st);
				switch (f) {
				case 0:
					sbuf_printf(b,
					    "%s{target=\"%s\",objective="
					    "\"%s\"} %.17g\n",
					    fam[f][0], t->id, obj,
					    t->slo->obj[k].target / 100.0);
					break;
				case 1:
					if (st.attainment < 0) {
						break;
					}
					sbuf_printf(b,
					    "%s{target=\"%s\",objective="
					    "\"%s\"} %.17g\n",
					    fam[f][0], t->id, obj,
					    st.attainment / 100.0);
					break;
				case 2:
					sbuf_printf(b,
					    "%s{target=\"%s\",objective="
					    "\"%s\"} %.17g\n",
					    fam[f][0], t->id, obj,
					    st.budget_left);
					break;
				default:
					for (int w = 0; w < SLO_BURN_WINDOWS;
					     w++) {
						/* Short objectives share
						 * windows: one series each. */
						bool seen = false;
						for (int v = 0; v < w; v++) {
							seen = seen
							    || st.burn_ms[v]
							        == st.burn_ms
							               [w];
						}
						if (seen) {
							continue;
						}
						sbuf_printf(b,
						    "%s{target=\"%s\","
						    "objective=\"%s\","
						    "window=\"%s\"} %.17g\n",
						    fam[f][0], t->id, obj,
						    prober_slo_duration_name(
						        st.burn_ms[w], wn,
						        sizeof(wn)),
						    st.burn[w]);
					}
					break;
				}
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
}

/* ---- reports ---- */

int
prober__slo_period(
    rpc_call *c, const target *t, const agg *a, Opsdesk__V1__TargetUptime *tu)
{
	const slo_spec *spec = t->slo;
	if (spec == NULL) {
		return 0;
	}
	tu->objectives = rpc_call_alloc(c, spec->n_obj * sizeof(void *));
	if (tu->objectives == NULL) {
		return OD_ENOMEM;
	}
	for (int k = 0; k < spec->n_obj; k++) {
		const slo_objective *o = &spec->obj[k];
		Opsdesk__V1__SloPeriod *sp = rpc_call_alloc(c, sizeof(*sp));
		char *desc = rpc_call_alloc(c, 128);
		uint32_t total, bad;
		if (sp == NULL || desc == NULL) {
			return OD_ENOMEM;
		}
		if (o->kind == SLO_ERROR_RATIO) {
			continue; /* not in the aggregates */
		}
		opsdesk__v1__slo_period__init(sp);
		prober_slo_agg_counts(o, a, &total, &bad);
		sp->objective = (char *) slo_kind_names[o->kind];
		sp->description
		    = (char *) prober_slo_describe(t, o, desc, 128);
		sp->target = o->target;
		sp->attainment = total == 0
		    ? -1
		    : 100.0 * (1.0 - (double) bad / (double) total);
		sp->met = total > 0 && sp->attainment >= o->target;
		tu->objectives[tu->n_objectives++] = sp;
	}
	return 0;
}

void
prober__slo_public(
    prober *p, size_t i, int64_t now, Opsdesk__V1__TargetHistory *h)
{
	const target *t = &p->ts.v[i];
	pthread_mutex_lock(&p->mu);
	for (int k = 0; t->public && t->slo != NULL && t->slo->public
	     && p->rt[i].slo != NULL && k < p->rt[i].slo->n;
	     k++) {
		slo_obj_status st;
		if (t->slo->obj[k].kind != SLO_AVAILABILITY) {
			continue;
		}
		prober_slo_peek(p->rt[i].slo, t->slo, k, now, &st);
		h->slo_target = t->slo->obj[k].target;
		h->slo_attainment = st.attainment;
		h->slo_window_ms = t->slo->window_ms;
		break;
	}
	pthread_mutex_unlock(&p->mu);
}
