/*
 * handlers — the ProberRequest methods. All are reads: the live state is
 * copied under the prober's lock, history comes from the store's read
 * txn. Who may see what:
 *   current, history   everyone, but private targets only for admins
 *                      (the gateway's /health is admin; the public
 *                      status needs the public ones);
 *   resources, metrics admins (/monitor);
 *   snapshot, uptime, transitions   the other services (status-publisher
 *                      resync, incident reports and postmortems), which
 *                      decide themselves what to show.
 */
#include <stdlib.h>
#include <string.h>

#include "prober_impl.h"
#include "util/util.h"

#define S_UNKNOWN  OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN
#define S_UP       OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
#define S_DEGRADED OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED
#define S_DOWN     OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN
#define S_MAINT    OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL

static prober *
P(rpc_call *c)
{
	return rpc_call_arg(c);
}

double
prober_uptime_window(MDB_txn *txn, store *st, const char *id, int64_t now,
    int64_t window_ms, agg *out)
{
	agg a;
	int lv = window_ms <= 7 * DAY_MS ? AGG_HOUR : AGG_DAY;
	int64_t period = prober_agg_period_ms(lv);
	/* The window's periods, the current (partial) one included. */
	int64_t from
	    = prober_agg_floor(now, lv) - (window_ms / period - 1) * period;
	unsigned db = lv == AGG_HOUR ? PDB_HOUR : PDB_DAY;

	if (prober_history_sum(txn, store_db(st, db), id, from, INT64_MAX, &a)
	    != 0) {
		memset(&a, 0, sizeof(a));
	}
	if (out != NULL) {
		*out = a;
	}
	return prober_agg_uptime(&a);
}

/* The decider: every location's latest view of target i, and those
 * reporting it down; p->mu held. */
static int
copy_locations(rpc_call *c, prober *p, size_t i, Opsdesk__V1__TargetStatus *s)
{
	const target_rt *rt = &p->rt[i];

	s->regional = p->ts.v[i].regional;
	/* Users of a regional target in the failing locations are hit
	 * while it is not down as a whole: the set last published (with a
	 * transition or health.affected), so a resync agrees with the
	 * events. */
	if (rt->affected != NULL) {
		char *buf = rpc_call_strdup(c, rt->affected);
		s->affected_locations = rpc_call_alloc(
		    c, QUORUM_MAX_LOCATIONS * sizeof(*s->affected_locations));
		if (buf == NULL || s->affected_locations == NULL) {
			return OD_ENOMEM;
		}
		s->n_affected_locations
		    = prober__affected_split(buf, s->affected_locations);
	}
	if (rt->n_locs == 0) {
		return 0;
	}
	s->locations = rpc_call_alloc(c, rt->n_locs * sizeof(*s->locations));
	s->down_locations
	    = rpc_call_alloc(c, rt->n_locs * sizeof(*s->down_locations));
	if (s->locations == NULL || s->down_locations == NULL) {
		return OD_ENOMEM;
	}
	for (uint8_t k = 0; k < rt->n_locs; k++) {
		const loc_view *lv = &rt->locs[k];
		Opsdesk__V1__LocationStatus *l = rpc_call_alloc(c, sizeof(*l));
		if (l == NULL) {
			return OD_ENOMEM;
		}
		opsdesk__v1__location_status__init(l);
		l->location = rpc_call_strdup(c, lv->name);
		l->state = lv->state;
		l->latency_ms = lv->latency_ms;
		l->last_report_ms = lv->at_ms;
		l->reporting = lv->reporting;
		l->reason = rpc_call_strdup(c, lv->reason);
		if (l->location == NULL || l->reason == NULL) {
			return OD_ENOMEM;
		}
		s->locations[s->n_locations++] = l;
		if (l->reporting && lv->state == S_DOWN) {
			s->down_locations[s->n_down_locations++] = l->location;
		}
	}
	return 0;
}

/* Copy the status of target i into call memory; p->mu held. */
static Opsdesk__V1__TargetStatus *
copy_status(rpc_call *c, prober *p, size_t i)
{
	Opsdesk__V1__TargetStatus *s = rpc_call_alloc(c, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	opsdesk__v1__target_status__init(s);
	prober__status(&p->ts.v[i], &p->rt[i], s);
	/* The reason lives in the live state: copy it. */
	s->reason = rpc_call_strdup(c, s->reason);
	if (p->ts.settings.decider && copy_locations(c, p, i, s) != 0) {
		return NULL;
	}
	return s;
}

static void
assess(Opsdesk__V1__HealthCurrent *h, rpc_call *c)
{
	size_t n[5] = { 0 }, crit_down = 0;
	for (size_t i = 0; i < h->n_targets; i++) {
		int st = h->targets[i]->state;
		n[st >= 0 && st <= 4 ? st : 0]++;
		if (st == S_DOWN
		    && h->targets[i]->criticality
		        == OPSDESK__V1__SEVERITY__SEVERITY_CRITICAL) {
			crit_down++;
		}
	}
	if (n[S_DOWN] > 0) {
		h->overall = S_DOWN;
		h->assessment = rpc_call_printf(c, "%s: %zu of %zu down%s",
		    crit_down > 0 ? "Major outage" : "Partial outage",
		    n[S_DOWN], h->n_targets,
		    crit_down > 0 ? ", critical components affected" : "");
	} else if (n[S_DEGRADED] > 0) {
		h->overall = S_DEGRADED;
		h->assessment = rpc_call_printf(c,
		    "Degraded performance: %zu of %zu degraded", n[S_DEGRADED],
		    h->n_targets);
	} else if (h->n_targets == 0 || n[S_UNKNOWN] == h->n_targets) {
		h->overall = S_UNKNOWN;
		h->assessment = rpc_call_strdup(c,
		    h->n_targets == 0 ? "No targets configured"
		                      : "Waiting for the first probes");
	} else if (n[S_MAINT] > 0) {
		h->overall = S_MAINT;
		h->assessment = rpc_call_printf(c,
		    "All systems operational; %zu under maintenance",
		    n[S_MAINT]);
	} else {
		h->overall = S_UP;
		h->assessment = rpc_call_strdup(c,
		    n[S_UNKNOWN] > 0 ? "All probed systems operational"
		                     : "All systems operational");
	}
}

static int
fill_current(rpc_call *c, Opsdesk__V1__HealthCurrent *h, bool all)
{
	prober *p = P(c);
	bool admin = all || rpc_call_actor(c)->is_admin;
	int64_t now = rpc_call_now_ms(c);

	opsdesk__v1__health_current__init(h);
	h->targets = rpc_call_alloc(
	    c, (p->ts.n + 1) * sizeof(Opsdesk__V1__TargetStatus *));
	if (h->targets == NULL) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
	}
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->ts.n; i++) {
		if (admin || p->ts.v[i].public) {
			h->targets[h->n_targets++] = copy_status(c, p, i);
		}
	}
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < h->n_targets; i++) {
		if (h->targets[i] == NULL) {
			return rpc_call_error(c,
			    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
			    "out of memory");
		}
		h->targets[i]->uptime_24h
		    = prober_uptime_window(rpc_call_mdb(c), p->store,
		        h->targets[i]->id, now, DAY_MS, NULL);
	}
	assess(h, c);
	h->shard = p->shard;
	h->location = p->ts.settings.location;
	h->role = p->ts.settings.decider ? (char *) "decider" : (char *) "";
	h->at_ms = now;
	return 0;
}

static int
h_current(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	(void) req;
	r->current = rpc_call_alloc(c, sizeof(*r->current));
	if (r->current == NULL) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
	}
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_CURRENT;
	return fill_current(c, r->current, false);
}

static int
h_snapshot(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	(void) req;
	r->snapshot = rpc_call_alloc(c, sizeof(*r->snapshot));
	if (r->snapshot == NULL) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
	}
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_SNAPSHOT;
	return fill_current(c, r->snapshot, true);
}

/* ---- history ---- */

typedef struct collect {
	rpc_call *c;
	void **items;
	size_t n;
	size_t cap;
	const ProtobufCMessageDescriptor *desc;
} collect;

/* Unpack each row into call memory (kept with the call). */
static int
collect_row(void *arg, int64_t t, const MDB_val *v)
{
	collect *k = arg;
	ProtobufCMessage *m;
	(void) t;
	if (k->n == k->cap) {
		return 1;
	}
	m = protobuf_c_message_unpack(k->desc, NULL, v->mv_size, v->mv_data);
	if (m != NULL) {
		k->items[k->n++] = rpc_call_keep(k->c, m);
	}
	return 0;
}

static int
collect_init(
    collect *k, rpc_call *c, const ProtobufCMessageDescriptor *d, size_t cap)
{
	k->c = c;
	k->n = 0;
	k->cap = cap;
	k->desc = d;
	k->items = rpc_call_alloc(c, (cap + 1) * sizeof(void *));
	return k->items == NULL ? OD_ENOMEM : 0;
}

/* The index of a target the actor may see, or -1. */
static long
find_visible(rpc_call *c, const char *id)
{
	prober *p = P(c);
	for (size_t i = 0; i < p->ts.n; i++) {
		if (strcmp(p->ts.v[i].id, id) == 0) {
			return p->ts.v[i].public || rpc_call_actor(c)->is_admin
			    ? (long) i
			    : -1;
		}
	}
	return -1;
}

/* n slices of period ms ending with the one holding now, from the
 * aggregates of level (the finest that covers the window), merged so each
 * slice's percentiles are exact to the histogram. */
static int
latency_series(rpc_call *c, MDB_txn *txn, prober *p, const char *id,
    int64_t now, int level, int64_t period, size_t n,
    Opsdesk__V1__LatencyPoint ***out, size_t *n_out)
{
	static const int dbs[AGG_LEVELS] = { PDB_MINUTE, PDB_HOUR, PDB_DAY };
	int64_t from
	    = prober_agg_floor(now, level) - ((int64_t) n - 1) * period;
	agg *a = rpc_call_alloc(c, n * sizeof(*a));
	Opsdesk__V1__LatencyPoint **pts = rpc_call_alloc(c, n * sizeof(*pts));

	if (a == NULL || pts == NULL) {
		return OD_ENOMEM;
	}
	/* Slices line up with the level's own periods (period is a
	 * multiple of it), so a row never straddles two. */
	from -= from % period;
	from = from + (int64_t) n * period <= prober_agg_floor(now, level)
	    ? from + period
	    : from;
	(void) prober_history_series(
	    txn, store_db(p->store, dbs[level]), id, from, period, n, a);
	for (size_t i = 0; i < n; i++) {
		Opsdesk__V1__LatencyPoint *pt = rpc_call_alloc(c, sizeof(*pt));
		if (pt == NULL) {
			return OD_ENOMEM;
		}
		opsdesk__v1__latency_point__init(pt);
		pt->start_ms = from + (int64_t) i * period;
		pt->checks = a[i].checks;
		if (a[i].checks > 0) {
			pt->p50_ms = prober_agg_percentile(&a[i], 0.50);
			pt->p95_ms = prober_agg_percentile(&a[i], 0.95);
		}
		pts[i] = pt;
	}
	*out = pts;
	*n_out = n;
	return 0;
}

static int
h_history(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	const Opsdesk__V1__HistoryRequest *q
	    = ((const Opsdesk__V1__ProberRequest *) req)->history;
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	prober *p = P(c);
	MDB_txn *txn = rpc_call_mdb(c);
	int64_t now = rpc_call_now_ms(c), day0;
	Opsdesk__V1__TargetHistory *h;
	agg day24, days[90];
	collect k;
	long i;
	uint32_t recent;
	int rv;

	if (q == NULL || q->target_id[0] == '\0') {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "target_id is required");
	}
	if ((i = find_visible(c, q->target_id)) < 0) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no target \"%.64s\"", q->target_id);
	}
	recent = q->recent == 0 ? 20 : (q->recent > 500 ? 500 : q->recent);
	if ((h = rpc_call_alloc(c, sizeof(*h))) == NULL) {
		goto oom;
	}
	opsdesk__v1__target_history__init(h);
	pthread_mutex_lock(&p->mu);
	h->target = copy_status(c, p, (size_t) i);
	pthread_mutex_unlock(&p->mu);
	if (h->target == NULL) {
		goto oom;
	}
	const char *id = h->target->id;
	h->uptime_24h
	    = prober_uptime_window(txn, p->store, id, now, DAY_MS, &day24);
	h->uptime_7d
	    = prober_uptime_window(txn, p->store, id, now, 7 * DAY_MS, NULL);
	h->uptime_30d
	    = prober_uptime_window(txn, p->store, id, now, 30 * DAY_MS, NULL);
	h->uptime_90d
	    = prober_uptime_window(txn, p->store, id, now, 90 * DAY_MS, NULL);
	h->target->uptime_24h = h->uptime_24h;
	h->p50_ms = prober_agg_percentile(&day24, 0.50);
	h->p95_ms = prober_agg_percentile(&day24, 0.95);
	h->p99_ms = prober_agg_percentile(&day24, 0.99);
	prober__slo_public(p, (size_t) i, now, h);

	day0 = prober_agg_floor(now, AGG_DAY) - 89 * DAY_MS;
	(void) prober_history_series(
	    txn, store_db(p->store, PDB_DAY), id, day0, DAY_MS, 90, days);
	h->daily = rpc_call_alloc(c, 90 * sizeof(*h->daily));
	if (h->daily == NULL) {
		goto oom;
	}
	for (int d = 0; d < 90; d++) {
		Opsdesk__V1__DailyBar *b = rpc_call_alloc(c, sizeof(*b));
		if (b == NULL) {
			goto oom;
		}
		opsdesk__v1__daily_bar__init(b);
		b->day_ms = day0 + d * DAY_MS;
		b->uptime = prober_agg_uptime(&days[d]);
		b->checks = days[d].checks;
		b->failures = days[d].failures;
		b->worst = days[d].checks ? (int) days[d].worst : S_UNKNOWN;
		h->daily[h->n_daily++] = b;
	}
	if (collect_init(
	        &k, c, &opsdesk__v1__health_result__descriptor, recent)
	    != 0) {
		goto oom;
	}
	(void) prober_history_walk_back(
	    txn, store_db(p->store, PDB_RESULTS), id, recent, collect_row, &k);
	h->recent = (Opsdesk__V1__HealthResult **) k.items;
	h->n_recent = k.n;
	if (collect_init(&k, c, &opsdesk__v1__health_changed__descriptor, 20)
	    != 0) {
		goto oom;
	}
	(void) prober_history_walk_back(
	    txn, store_db(p->store, PDB_TRANSITIONS), id, 20, collect_row, &k);
	h->transitions = (Opsdesk__V1__HealthChanged **) k.items;
	h->n_transitions = k.n;
	if (q->latency
	    && ((rv = latency_series(c, txn, p, id, now, AGG_MINUTE,
	             15 * 60000, 96, &h->latency_24h, &h->n_latency_24h))
	            != 0
	        || (rv = latency_series(c, txn, p, id, now, AGG_HOUR,
	                3 * 3600000, 56, &h->latency_7d, &h->n_latency_7d))
	            != 0
	        || (rv = latency_series(c, txn, p, id, now, AGG_DAY, DAY_MS,
	                30, &h->latency_30d, &h->n_latency_30d))
	            != 0)) {
		goto oom;
	}
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_HISTORY;
	r->history = h;
	return 0;
oom:
	return rpc_call_error(
	    c, OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
}

static int
h_resources(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	prober *p = P(c);
	(void) req;
	r->resources = rpc_call_alloc(c, sizeof(*r->resources));
	if (r->resources == NULL) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
	}
	opsdesk__v1__host_resources__init(r->resources);
	pthread_mutex_lock(&p->mu);
	(void) prober_resources_read(r->resources, p->disk_path, &p->cpu);
	pthread_mutex_unlock(&p->mu);
	r->resources->disk_path = p->disk_path;
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_RESOURCES;
	return 0;
}

static int
h_metrics(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	prober *p = P(c);
	Opsdesk__V1__BusinessMetrics *bm;
	(void) req;
	if ((bm = rpc_call_alloc(c, sizeof(*bm))) == NULL) {
		goto oom;
	}
	opsdesk__v1__business_metrics__init(bm);
	bm->metrics = rpc_call_alloc(c, (p->n_bm + 1) * sizeof(*bm->metrics));
	if (bm->metrics == NULL) {
		goto oom;
	}
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->ts.n; i++) {
		const target *t = &p->ts.v[i];
		for (size_t k = 0; k < t->n_metrics; k++) {
			const business_value *v = &p->bm[p->bm_base[i] + k];
			Opsdesk__V1__BusinessMetric *m;
			if (!v->set
			    || (m = rpc_call_alloc(c, sizeof(*m))) == NULL) {
				continue;
			}
			opsdesk__v1__business_metric__init(m);
			m->name = t->metrics[k].name;
			m->value = v->value;
			m->target_id = t->id;
			m->at_ms = v->at_ms;
			m->unit = t->metrics[k].unit;
			bm->metrics[bm->n_metrics++] = m;
		}
	}
	pthread_mutex_unlock(&p->mu);
	r->metrics = bm;
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_METRICS;
	return 0;
oom:
	return rpc_call_error(
	    c, OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
}

/* ---- uptime and transitions over a window ---- */

/* Targets named in ids (all when none); -1 entries for unknown ids. */
static int
select_targets(
    rpc_call *c, char **ids, size_t n_ids, long **out, size_t *n_out)
{
	prober *p = P(c);
	size_t n = n_ids ? n_ids : p->ts.n;
	long *v = rpc_call_alloc(c, (n + 1) * sizeof(long));
	if (v == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = (long) i;
		if (n_ids > 0) {
			target *t = prober_target_find(&p->ts, ids[i]);
			if (t == NULL) {
				return rpc_call_error(c,
				    OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND,
				    "no target \"%.64s\"", ids[i]);
			}
			v[i] = (long) (t - p->ts.v);
		}
	}
	*out = v;
	*n_out = n;
	return 0;
}

typedef struct down_walk {
	int64_t from;
	int64_t to;
	int state;     /* the state at the cursor */
	int64_t since; /* since when */
	int64_t down_ms;
	uint32_t transitions;
} down_walk;

static void
down_until(down_walk *w, int64_t t)
{
	int64_t a = w->since > w->from ? w->since : w->from;
	int64_t b = t < w->to ? t : w->to;
	if (w->state == S_DOWN && b > a) {
		w->down_ms += b - a;
	}
}

static int
down_row(void *arg, int64_t t, const MDB_val *v)
{
	down_walk *w = arg;
	Opsdesk__V1__HealthChanged *hc = opsdesk__v1__health_changed__unpack(
	    NULL, v->mv_size, v->mv_data);
	if (hc == NULL) {
		return 0;
	}
	down_until(w, t);
	w->state = hc->new_state;
	w->since = t;
	if (t >= w->from) {
		w->transitions++;
	}
	opsdesk__v1__health_changed__free_unpacked(hc, NULL);
	return 0;
}

static int
h_uptime(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	const Opsdesk__V1__UptimeRequest *q
	    = ((const Opsdesk__V1__ProberRequest *) req)->uptime;
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	prober *p = P(c);
	MDB_txn *txn = rpc_call_mdb(c);
	int64_t now = rpc_call_now_ms(c);
	Opsdesk__V1__UptimeReport *u;
	long *sel;
	size_t n;
	int rv, lv;
	unsigned db;

	if (q == NULL || q->from_ms < 0 || q->to_ms <= q->from_ms) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "from_ms must be >= 0 and before to_ms");
	}
	if ((rv = select_targets(c, q->target_ids, q->n_target_ids, &sel, &n))
	    != 0) {
		return rv;
	}
	/* The finest aggregates that still cover the window's start. */
	if (q->from_ms >= now - p->ts.settings.minute_retention_ms) {
		lv = AGG_MINUTE;
		db = PDB_MINUTE;
	} else if (q->from_ms >= now - p->ts.settings.hour_retention_ms) {
		lv = AGG_HOUR;
		db = PDB_HOUR;
	} else {
		lv = AGG_DAY;
		db = PDB_DAY;
	}
	if ((u = rpc_call_alloc(c, sizeof(*u))) == NULL
	    || (opsdesk__v1__uptime_report__init(u),
	        (u->targets = rpc_call_alloc(c, (n + 1) * sizeof(void *)))
	            == NULL)) {
		goto oom;
	}
	for (size_t k = 0; k < n; k++) {
		const target *t = &p->ts.v[sel[k]];
		Opsdesk__V1__TargetUptime *tu = rpc_call_alloc(c, sizeof(*tu));
		down_walk w = { q->from_ms, q->to_ms, S_UNKNOWN, 0, 0, 0 };
		agg a;
		if (tu == NULL) {
			goto oom;
		}
		opsdesk__v1__target_uptime__init(tu);
		if (prober_history_sum(txn, store_db(p->store, db), t->id,
		        prober_agg_floor(q->from_ms, lv), q->to_ms, &a)
		    != 0) {
			memset(&a, 0, sizeof(a));
		}
		(void) prober_history_walk(txn,
		    store_db(p->store, PDB_TRANSITIONS), t->id, 0, q->to_ms,
		    down_row, &w);
		down_until(&w, q->to_ms < now ? q->to_ms : now);
		tu->target_id = t->id;
		tu->name = t->name;
		tu->uptime = prober_agg_uptime(&a);
		if (prober__slo_period(c, t, &a, tu) != 0) {
			goto oom;
		}
		tu->p95_ms = prober_agg_percentile(&a, 0.95);
		tu->transitions = w.transitions;
		tu->down_ms = w.down_ms;
		u->targets[u->n_targets++] = tu;
	}
	u->from_ms = q->from_ms;
	u->to_ms = q->to_ms;
	r->uptime = u;
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_UPTIME;
	return 0;
oom:
	return rpc_call_error(
	    c, OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
}

static int
by_time(const void *a, const void *b)
{
	const Opsdesk__V1__HealthChanged *x
	    = *(const Opsdesk__V1__HealthChanged *const *) a;
	const Opsdesk__V1__HealthChanged *y
	    = *(const Opsdesk__V1__HealthChanged *const *) b;
	return (x->at_ms > y->at_ms) - (x->at_ms < y->at_ms);
}

static int
h_transitions(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)
{
	const Opsdesk__V1__TransitionsRequest *q
	    = ((const Opsdesk__V1__ProberRequest *) req)->transitions;
	Opsdesk__V1__ProberReply *r = (Opsdesk__V1__ProberReply *) rep;
	prober *p = P(c);
	Opsdesk__V1__TransitionList *tl;
	size_t limit, n;
	long *sel;
	collect k;
	int rv;

	if (q == NULL || q->from_ms < 0 || q->to_ms <= q->from_ms) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "from_ms must be >= 0 and before to_ms");
	}
	limit = q->limit == 0 ? 100 : (q->limit > 1000 ? 1000 : q->limit);
	if ((rv = select_targets(c, q->target_ids, q->n_target_ids, &sel, &n))
	    != 0) {
		return rv;
	}
	/* Collect up to 10x the limit over all targets, keep the oldest
	 * `limit` after sorting. */
	if ((tl = rpc_call_alloc(c, sizeof(*tl))) == NULL
	    || collect_init(
	           &k, c, &opsdesk__v1__health_changed__descriptor, limit * 10)
	        != 0) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
	}
	opsdesk__v1__transition_list__init(tl);
	for (size_t i = 0; i < n; i++) {
		(void) prober_history_walk(rpc_call_mdb(c),
		    store_db(p->store, PDB_TRANSITIONS), p->ts.v[sel[i]].id,
		    q->from_ms, q->to_ms, collect_row, &k);
	}
	qsort(k.items, k.n, sizeof(void *), by_time);
	tl->transitions = (Opsdesk__V1__HealthChanged **) k.items;
	tl->n_transitions = k.n < limit ? k.n : limit;
	r->transitions = tl;
	r->result_case = OPSDESK__V1__PROBER_REPLY__RESULT_TRANSITIONS;
	return 0;
}

/*
 * Every method runs under the read side of cfg_lock: a config reload
 * swaps the target array, and a handler indexes it, sizes replies by it
 * and borrows its strings until the reply is sent.
 */
#define UNDER_CFG_LOCK(fn)                                                    \
	static int fn##_locked(                                               \
	    rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep)  \
	{                                                                     \
		prober *p = P(c);                                             \
		int rv;                                                       \
		pthread_rwlock_rdlock(&p->cfg_lock);                          \
		rv = fn(c, req, rep);                                         \
		pthread_rwlock_unlock(&p->cfg_lock);                          \
		return rv;                                                    \
	}

UNDER_CFG_LOCK(h_current)
UNDER_CFG_LOCK(h_history)
UNDER_CFG_LOCK(h_resources)
UNDER_CFG_LOCK(h_metrics)
UNDER_CFG_LOCK(h_snapshot)
UNDER_CFG_LOCK(h_uptime)
UNDER_CFG_LOCK(h_transitions)
UNDER_CFG_LOCK(prober__h_slo)

const rpc_method prober_methods[] = {
	{ "current", RPC_READ, false, h_current_locked },
	{ "history", RPC_READ, false, h_history_locked },
	{ "resources", RPC_READ, true, h_resources_locked },
	{ "metrics", RPC_READ, true, h_metrics_locked },
	{ "snapshot", RPC_READ, false, h_snapshot_locked },
	{ "uptime", RPC_READ, false, h_uptime_locked },
	{ "transitions", RPC_READ, false, h_transitions_locked },
	{ "slo", RPC_READ, false, prober__h_slo_locked },
};
const size_t prober_n_methods
    = sizeof(prober_methods) / sizeof(prober_methods[0]);
