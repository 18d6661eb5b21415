/*
 * prober — what happens to a probe result: the target's state machine,
 * its aggregates, its metrics, and on a transition one durable
 * `health.changed`.
 *
 * Durability is split on purpose. A transition is written in its own
 * store job (the state and the transition row in one txn) and published
 * only after that commit, so the state survives a crash. Raw results and
 * aggregates are high volume and may be lost in a crash: they are
 * collected in memory and written by one job per flush interval, which
 * is what keeps the write load at one commit per few seconds however
 * many targets there are.
 *
 * Store jobs never point into the prober: each carries a copy of the
 * keys and values it writes ("put lists"), so a job still queued at
 * shutdown is safe whatever is freed first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "prober_impl.h"
#include "util/util.h"

#define S_UNKNOWN OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN
#define S_UP      OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
#define S_DOWN    OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN
#define S_MAINT   OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE

/* ---- put lists: a store job's writes, copied ---- */

typedef struct put_list {
	sbuf data; /* [db u8][klen u16][vlen u32][key][val] ... */
	size_t n;
	uint8_t *event; /* a packed Envelope to publish, or NULL */
	size_t event_len;
	const char *topic; /* of the event: a string literal */
	bus_publisher *pub;
} put_list;

static void
put_add(put_list *l, unsigned db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	uint8_t hdr[7];
	hdr[0] = (uint8_t) db;
	hdr[1] = (uint8_t) (klen >> 8);
	hdr[2] = (uint8_t) klen;
	od_put_be32(hdr + 3, (uint32_t) vlen);
	sbuf_append_len(&l->data, (const char *) hdr, sizeof(hdr));
	sbuf_append_len(&l->data, key, klen);
	sbuf_append_len(&l->data, val, vlen);
	l->n++;
}

static void
put_add_pb(put_list *l, unsigned db, const void *key, size_t klen,
    const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t small[1024], *buf = n <= sizeof(small) ? small : malloc(n);
	if (buf == NULL) {
		l->data.failed = true;
		return;
	}
	protobuf_c_message_pack(m, buf);
	put_add(l, db, key, klen, buf, n);
	if (buf != small) {
		free(buf);
	}
}

static void
put_list_free(put_list *l)
{
	if (l != NULL) {
		sbuf_free(&l->data);
		free(l->event);
		free(l);
	}
}

static int
put_job(store_txn *txn, void *arg)
{
	put_list *l = arg;
	const uint8_t *p = (const uint8_t *) l->data.data;
	const uint8_t *end = p + l->data.len;
	store *st = store_txn_store(txn);
	int rv;

	while (p != NULL && p + 7 <= end) {
		unsigned db = p[0];
		size_t klen = ((size_t) p[1] << 8) | p[2];
		size_t vlen = od_get_be32(p + 3);
		p += 7;
		if ((rv = store_put(
		         txn, store_db(st, db), p, klen, p + klen, vlen))
		    != 0) {
			return rv;
		}
		p += klen + vlen;
	}
	if (l->event != NULL && l->pub != NULL) {
		Opsdesk__V1__Envelope *env = opsdesk__v1__envelope__unpack(
		    NULL, l->event_len, l->event);
		if (env == NULL) {
			return OD_EINTERNAL;
		}
		rv = bus_publish_on_commit(l->pub, txn, l->topic, env, NULL);
		opsdesk__v1__envelope__free_unpacked(env, NULL);
		if (rv != 0) {
			log_warn("prober: %s not queued: %s", l->topic,
			    od_strerror(rv));
		}
	}
	return 0;
}

/* Pack env as l's event on topic (published after l's commit). */
static void
put_event(put_list *l, bus_publisher *pub, const char *topic,
    const Opsdesk__V1__Envelope *env)
{
	l->event_len = opsdesk__v1__envelope__get_packed_size(env);
	if ((l->event = malloc(l->event_len + 1)) == NULL) {
		l->data.failed = true;
		return;
	}
	opsdesk__v1__envelope__pack(env, l->event);
	l->topic = topic;
	l->pub = pub;
}

static void
put_done(int rv, void *arg)
{
	if (rv != 0) {
		log_error("prober: store write of %zu rows failed: %s",
		    ((put_list *) arg)->n, od_strerror(rv));
	}
	put_list_free(arg);
}

/* Submit l (ownership passes); wait for the commit when sync. */
static int
put_submit(prober *p, put_list *l, bool sync)
{
	int rv;
	if (sbuf_failed(&l->data)) {
		put_list_free(l);
		return OD_ENOMEM;
	}
	if (sync) {
		rv = store_write(p->store, put_job, l);
		if (rv != 0) {
			log_error(
			    "prober: store write failed: %s", od_strerror(rv));
		}
		put_list_free(l);
		return rv;
	}
	return store_submit(p->store, put_job, l, put_done, l);
}

/* ---- status ---- */

void
prober__status(
    const target *t, const target_rt *rt, Opsdesk__V1__TargetStatus *out)
{
	const target_state *s = &rt->st;
	out->id = t->id;
	out->name = t->name;
	out->group = t->group;
	out->kind = (char *) probe_kind_names[t->kind];
	out->state = s->state;
	out->health = s->health;
	out->criticality = t->criticality;
	out->public_ = t->public;
	out->latency_ms = s->latency_ms;
	out->last_check_ms = s->last_check_ms;
	out->since_ms = s->since_ms;
	out->reason = s->reason != NULL ? s->reason : (char *) "";
	out->cert_days_left = s->cert_days_left;
	out->cert_not_after_ms = rt->cert_not_after_s * 1000;
	out->status_code = s->status_code;
	out->consecutive_failures = s->consecutive_failures;
	out->consecutive_successes = s->consecutive_successes;
	out->uptime_24h = -1;
}

size_t
prober__affected_split(char *s, char **v)
{
	size_t n = 0;
	char *save = NULL;
	for (char *tok = s != NULL ? strtok_r(s, ",", &save) : NULL;
	     tok != NULL && n < QUORUM_MAX_LOCATIONS;
	     tok = strtok_r(NULL, ",", &save)) {
		v[n++] = tok;
	}
	return n;
}

static void
add_state_put(put_list *l, const target *t, const target_rt *rt)
{
	Opsdesk__V1__TargetStatus ts = OPSDESK__V1__TARGET_STATUS__INIT;
	char buf[QUORUM_MAX_LOCATIONS * (PROBER_LOCATION_MAX + 1) + 1];
	char *aff[QUORUM_MAX_LOCATIONS];
	prober__status(t, rt, &ts);
	/* The decider's published affected locations survive a restart:
	 * it publishes a change of them once. */
	if (rt->affected != NULL) {
		od_strlcpy(buf, rt->affected, sizeof(buf));
		ts.n_affected_locations = prober__affected_split(buf, aff);
		ts.affected_locations = aff;
	}
	put_add_pb(l, PDB_STATE, t->id, strlen(t->id), &ts.base);
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * The locations whose users a regional target's failure hits while it is
 * not down as a whole (state is the shown one): the reporting locations
 * that see it down, sorted and joined by ','; NULL for none or on error.
 */
static char *
affected_of(const target *t, int state, const quorum_decision *d,
    const quorum_vote *votes)
{
	const char *v[QUORUM_MAX_LOCATIONS];
	sbuf b = SBUF_INIT;
	char *out;

	if (!t->regional || state == S_DOWN || state == S_MAINT
	    || d->down == 0) {
		return NULL;
	}
	for (unsigned k = 0; k < d->down; k++) {
		v[k] = votes[d->down_idx[k]].location;
	}
	qsort(v, d->down, sizeof(v[0]), cmp_cstr);
	for (unsigned k = 0; k < d->down; k++) {
		sbuf_printf(&b, "%s%s", k ? "," : "", v[k]);
	}
	out = sbuf_failed(&b) || b.data == NULL ? NULL : strdup(b.data);
	sbuf_free(&b);
	return out;
}

static bool
same_str(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The locations a decision saw down and those not reporting, as the
 * string arrays of HealthChanged and HealthAffected (borrowed from
 * votes). */
static void
decision_locations(const quorum_decision *d, const quorum_vote *votes,
    char **down, char **stale)
{
	for (unsigned k = 0; k < d->down; k++) {
		down[k] = (char *) votes[d->down_idx[k]].location;
	}
	for (unsigned k = 0; k < d->n_stale; k++) {
		stale[k] = (char *) votes[d->stale_idx[k]].location;
	}
}

/* A transition: state and transition row in one job, event after it.
 * Called with p->mu held so jobs are queued in transition order. */
static void
record_transition_at(prober *p, size_t index, const state_change *chg,
    const quorum_decision *d, const quorum_vote *votes)
{
	char *down[QUORUM_MAX_LOCATIONS], *stale[QUORUM_MAX_LOCATIONS];
	char *aff[QUORUM_MAX_LOCATIONS];
	char buf[QUORUM_MAX_LOCATIONS * (PROBER_LOCATION_MAX + 1) + 1];
	const target *t = &p->ts.v[index];
	target_rt *rt = &p->rt[index];
	Opsdesk__V1__HealthChanged hc = OPSDESK__V1__HEALTH_CHANGED__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	uint8_t key[512];
	put_list *l;
	int64_t at = chg->at_ms;

	if (at <= rt->last_transition_ms) {
		at = rt->last_transition_ms + 1;
	}
	rt->last_transition_ms = at;
	hc.target_id = t->id;
	hc.name = t->name;
	hc.group = t->group;
	hc.old_state = chg->old_state;
	hc.new_state = chg->new_state;
	hc.reason = (char *) chg->reason;
	hc.latency_ms = chg->latency_ms;
	hc.criticality = t->criticality;
	hc.public_ = t->public;
	hc.at_ms = chg->at_ms;
	hc.shard = p->shard;
	if (d != NULL) {
		decision_locations(d, votes, down, stale);
		hc.n_down_locations = d->down;
		hc.down_locations = down;
		hc.n_not_reporting = d->n_stale;
		hc.not_reporting = stale;
	}
	/* A transition carries the affected locations (none when down as a
	 * whole, or in maintenance): they are stored with the state. */
	if (p->ts.settings.decider) {
		free(rt->affected);
		rt->affected = d != NULL
		    ? affected_of(t, chg->new_state, d, votes)
		    : NULL;
		if (rt->affected != NULL) {
			od_strlcpy(buf, rt->affected, sizeof(buf));
			hc.n_affected_locations
			    = prober__affected_split(buf, aff);
			hc.affected_locations = aff;
		}
	}
	metric_inc(p->m_transitions);
	log_kv(LOG_INFO, "target state changed", "target", t->id, "old",
	    prober_state_name(chg->old_state), "new",
	    prober_state_name(chg->new_state), "reason", chg->reason, NULL);
	if (p->store == NULL || (l = calloc(1, sizeof(*l))) == NULL) {
		return;
	}
	add_state_put(l, t, rt);
	put_add_pb(l, PDB_TRANSITIONS, key, prober_history_key(key, t->id, at),
	    &hc.base);
	/* A located prober's transitions are its own view: the decider
	 * publishes the decided ones (health.observed carries the view). */
	if (p->ts.settings.location[0] == '\0') {
		env.payload_case
		    = OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_CHANGED;
		env.health_changed = &hc;
		put_event(l, p->pub, "health.changed", &env);
	}
	if (put_submit(p, l, false) != 0) {
		log_error("prober: transition of %s not stored", t->id);
	}
}

/*
 * The decider: only the affected locations of target index changed (its
 * state did not): aff (owned) is stored with the state and published as
 * one health.affected after the commit, so the status page's "Partial
 * outage: affects users in …" follows without a transition, and a
 * restarted decider, which loads the stored set, does not send it again.
 * p->mu held, so it is queued in order with the transitions.
 */
static void
record_affected(prober *p, size_t index, const quorum_decision *d,
    const quorum_vote *votes, char *aff, int64_t now)
{
	char *down[QUORUM_MAX_LOCATIONS], *stale[QUORUM_MAX_LOCATIONS];
	char *names[QUORUM_MAX_LOCATIONS];
	char buf[QUORUM_MAX_LOCATIONS * (PROBER_LOCATION_MAX + 1) + 1];
	const target *t = &p->ts.v[index];
	target_rt *rt = &p->rt[index];
	Opsdesk__V1__HealthAffected ha = OPSDESK__V1__HEALTH_AFFECTED__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	put_list *l;

	free(rt->affected);
	rt->affected = aff;
	ha.target_id = t->id;
	ha.name = t->name;
	ha.group = t->group;
	ha.state = rt->st.state;
	ha.public_ = t->public;
	ha.since_ms = rt->st.since_ms;
	ha.at_ms = now;
	ha.reason = (char *) d->reason;
	ha.shard = p->shard;
	if (aff != NULL) {
		od_strlcpy(buf, aff, sizeof(buf));
		ha.n_affected_locations = prober__affected_split(buf, names);
		ha.affected_locations = names;
	}
	decision_locations(d, votes, down, stale);
	ha.n_down_locations = d->down;
	ha.down_locations = down;
	ha.n_not_reporting = d->n_stale;
	ha.not_reporting = stale;
	log_kv(LOG_INFO, "affected locations changed", "target", t->id,
	    "affected", aff != NULL ? aff : "", NULL);
	if (p->store == NULL || (l = calloc(1, sizeof(*l))) == NULL) {
		return;
	}
	add_state_put(l, t, rt);
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_AFFECTED;
	env.health_affected = &ha;
	put_event(l, p->pub, "health.affected", &env);
	if (put_submit(p, l, false) != 0) {
		log_error(
		    "prober: affected locations of %s not stored", t->id);
	}
}

static void
record_transition(prober *p, size_t index, const state_change *chg)
{
	record_transition_at(p, index, chg, NULL, NULL);
}

/* ---- results ---- */

/* Queue r for the next flush; p->mu held. */
static void
pend_result(prober *p, size_t index, const probe_result *r)
{
	target_rt *rt = &p->rt[index];
	if (p->n_pend == p->cap_pend) {
		size_t cap = p->cap_pend ? 2 * p->cap_pend : 256;
		pending_result *n = realloc(p->pend, cap * sizeof(*n));
		if (n != NULL) {
			p->pend = n;
			p->cap_pend = cap;
		}
	}
	if (p->n_pend < p->cap_pend) {
		p->pend[p->n_pend].index = index;
		p->pend[p->n_pend].shown = rt->st.state;
		p->pend[p->n_pend].r = *r;
		p->pend[p->n_pend].locs = NULL;
		p->pend[p->n_pend].n_locs = 0;
		p->n_pend++;
	}
}

static void
pend_free(pending_result *pend, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		free(pend[k].locs);
	}
	free(pend);
}

/*
 * A located prober's views. Only a view whose state changed is needed at
 * once (it may complete a quorum); the others keep the location
 * reporting and fill the decided rounds, so they go out together, one
 * message per flush interval (or per OBS_BATCH_MAX views): the bus, the
 * relay and the decider handle a few messages a second instead of one
 * per probe.
 */
#define OBS_BATCH_MAX 512

static void
obs_fill(const prober *p, const obs_view *v, Opsdesk__V1__HealthObserved *ho)
{
	opsdesk__v1__health_observed__init(ho);
	ho->location = (char *) p->ts.settings.location;
	ho->target_id = (char *) v->id;
	ho->state = v->state;
	ho->latency_ms = v->latency_ms;
	ho->reason = (char *) v->reason;
	ho->at_ms = v->at_ms;
	ho->instance = (char *) p->instance;
	ho->observed = v->observed;
}

/* Send the waiting views, then one (may be NULL) on its own. */
static void
publish_views(prober *p, const obs_view *one)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__HealthObservedBatch batch
	    = OPSDESK__V1__HEALTH_OBSERVED_BATCH__INIT;
	Opsdesk__V1__HealthObserved *ho = NULL, **hp = NULL, single;
	obs_view *v;
	size_t n;

	pthread_mutex_lock(&p->obs_mu);
	pthread_mutex_lock(&p->mu);
	v = p->obs;
	n = p->n_obs;
	p->obs = NULL;
	p->n_obs = p->cap_obs = 0;
	pthread_mutex_unlock(&p->mu);
	if (n > 0 && p->pub != NULL && (ho = malloc(n * sizeof(*ho))) != NULL
	    && (hp = malloc(n * sizeof(*hp))) != NULL) {
		for (size_t k = 0; k < n; k++) {
			obs_fill(p, &v[k], &ho[k]);
			hp[k] = &ho[k];
		}
		batch.views = hp;
		batch.n_views = n;
		env.payload_case
		    = OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_OBSERVED_BATCH;
		env.health_observed_batch = &batch;
		if (bus_publish(p->pub, "health.observed", &env, NULL) != 0) {
			log_debug("prober: %zu views not sent", n);
		}
	} else if (n > 0 && p->pub != NULL) {
		log_warn("prober: %zu views dropped: out of memory", n);
	}
	if (one != NULL && p->pub != NULL) {
		obs_fill(p, one, &single);
		env.payload_case
		    = OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_OBSERVED;
		env.health_observed = &single;
		if (bus_publish(p->pub, "health.observed", &env, NULL) != 0) {
			log_debug(
			    "prober: health.observed of %s not sent", one->id);
		}
	}
	pthread_mutex_unlock(&p->obs_mu);
	free(hp);
	free(ho);
	free(v);
}

/* Queue a view for the next batch; p->mu held. False when it could not
 * be queued (then it is sent on its own). */
static bool
obs_queue(prober *p, const obs_view *v)
{
	if (p->n_obs == p->cap_obs) {
		size_t cap = p->cap_obs ? 2 * p->cap_obs : 64;
		obs_view *n = realloc(p->obs, cap * sizeof(*n));
		if (n == NULL) {
			return false;
		}
		p->obs = n;
		p->cap_obs = cap;
	}
	p->obs[p->n_obs++] = *v;
	return true;
}

/* r (target id) as a HealthResult, borrowing its strings. */
static void
result_pb(Opsdesk__V1__HealthResult *hr, const char *id, const probe_result *r)
{
	hr->target_id = (char *) id;
	hr->ok = r->observed != S_DOWN;
	hr->observed = r->observed;
	hr->latency_ms = r->latency_ms;
	hr->status_code = r->status_code;
	hr->error = (char *) r->error;
	hr->at_ms = r->at_ms;
	hr->cert_days_left = r->cert_days_left;
}

/* health.result of r (target id), unless publish_results is off. */
static void
publish_result(prober *p, const char *id, const probe_result *r)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__HealthResult hr = OPSDESK__V1__HEALTH_RESULT__INIT;

	if (!p->ts.settings.publish_results || p->pub == NULL) {
		return;
	}
	result_pb(&hr, id, r);
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_RESULT;
	env.health_result = &hr;
	(void) bus_publish(p->pub, "health.result", &env, NULL);
}

void
prober_feed(void *arg, size_t index, const probe_result *r)
{
	prober *p = arg;
	target_rt *rt = &p->rt[index];
	bool located = p->ts.settings.location[0] != '\0';
	bool one = false, full = false;
	state_change chg;
	obs_view v;

	metric_inc(r->observed == S_DOWN ? p->m_fail : p->m_ok);
	pthread_mutex_lock(&p->mu);
	if (prober_state_feed(&rt->st, &p->ts.v[index], r, &chg)) {
		record_transition(p, index, &chg);
	}
	if (rt->slo != NULL) {
		prober_slo_record(rt->slo, p->ts.v[index].slo, r->at_ms,
		    prober__slo_in_maintenance(rt), r->observed == S_DOWN,
		    r->latency_ms);
	}
	rt->cert_not_after_s = r->cert_not_after_s;
	rt->dirty = true;
	pend_result(p, index, r);
	if (located) {
		od_strlcpy(v.id, p->ts.v[index].id, sizeof(v.id));
		v.state = rt->st.health;
		v.observed = r->observed;
		v.latency_ms = r->latency_ms;
		v.at_ms = r->at_ms;
		od_strlcpy(v.reason, r->error, sizeof(v.reason));
		if (rt->sent_state != (uint8_t) v.state || !obs_queue(p, &v)) {
			one = true;
		} else {
			full = p->n_obs >= OBS_BATCH_MAX;
		}
		rt->sent_state = (uint8_t) v.state;
	}
	pthread_mutex_unlock(&p->mu);

	/* A located prober's result goes out as its view (it carries the
	 * result: observed, latency, error); the decider publishes one
	 * health.result per decided round. A changed view leaves at once,
	 * after the views queued before it. */
	if (located) {
		if (one || full) {
			publish_views(p, one ? &v : NULL);
		}
		return;
	}
	publish_result(p, p->ts.v[index].id, r);
}

static void
on_metric(void *arg, size_t index, size_t mi, double v, int64_t at_ms)
{
	prober *p = arg;
	business_value *b = &p->bm[p->bm_base[index] + mi];
	pthread_mutex_lock(&p->mu);
	b->value = v;
	b->at_ms = at_ms;
	b->set = true;
	if (p->rt[index].slo != NULL) {
		prober_slo_record_metric(p->rt[index].slo, p->ts.v[index].slo,
		    (uint32_t) mi, v, at_ms,
		    prober__slo_in_maintenance(&p->rt[index]));
	}
	pthread_mutex_unlock(&p->mu);
}

/* The flush job: the results' rows and their fold into the minute,
 * hour and day aggregates (read, add, write in the job's txn, so a retry
 * after map growth recomputes from the committed rows). */
typedef struct agg_item {
	char id[72];
	int shown;
	probe_result r;
} agg_item;

typedef struct flush_job {
	put_list *puts;
	agg_item *items;
	size_t n;
} flush_job;

static void
flush_job_free(flush_job *j)
{
	if (j != NULL) {
		put_list_free(j->puts);
		free(j->items);
		free(j);
	}
}

static int
flush_fn(store_txn *txn, void *arg)
{
	static const unsigned level_db[AGG_LEVELS]
	    = { PDB_MINUTE, PDB_HOUR, PDB_DAY };
	flush_job *j = arg;
	store *st = store_txn_store(txn);
	uint8_t key[512], val[AGG_ENC_MAX];
	int rv;

	if ((rv = put_job(txn, j->puts)) != 0) {
		return rv;
	}
	for (size_t i = 0; i < j->n; i++) {
		const agg_item *it = &j->items[i];
		for (int lv = 0; lv < AGG_LEVELS; lv++) {
			MDB_dbi db = store_db(st, level_db[lv]);
			size_t klen = prober_history_key(
			    key, it->id, prober_agg_floor(it->r.at_ms, lv));
			agg a;
			MDB_val v;
			memset(&a, 0, sizeof(a));
			if (store_get(store_txn_mdb(txn), db, key, klen, &v)
			    == 0) {
				(void) prober_agg_decode(
				    v.mv_data, v.mv_size, &a);
			}
			prober_agg_add(&a, &it->r, it->shown);
			if ((rv = store_put(txn, db, key, klen, val,
			         prober_agg_encode(&a, val)))
			    != 0) {
				return rv;
			}
		}
	}
	return 0;
}

static void
flush_done(int rv, void *arg)
{
	if (rv != 0) {
		log_error("prober: flush of %zu results failed: %s",
		    ((flush_job *) arg)->n, od_strerror(rv));
	}
	flush_job_free(arg);
}

int
prober_flush(prober *p, bool sync)
{
	flush_job *j = NULL;
	pending_result *pend;
	size_t n_pend;
	uint8_t key[512];
	sched_stats ss;
	int rv;

	if (p->ts.settings.location[0] != '\0') {
		publish_views(p, NULL);
	}
	if (p->sched != NULL) {
		prober_sched_get_stats(p->sched, &ss);
		metric_set(p->m_in_flight, ss.in_flight);
		metric_add(p->m_skipped, ss.skipped - p->skipped_seen);
		p->skipped_seen = ss.skipped;
	}
	if (p->store == NULL || (j = calloc(1, sizeof(*j))) == NULL
	    || (j->puts = calloc(1, sizeof(*j->puts))) == NULL) {
		free(j);
		return OD_ENOMEM;
	}
	pthread_mutex_lock(&p->mu);
	pend = p->pend;
	n_pend = p->n_pend;
	p->pend = NULL;
	p->n_pend = p->cap_pend = 0;
	/* At shutdown the last check, latency and counters of every target
	 * too; while running only transitions write the state. */
	for (size_t i = 0; sync && i < p->ts.n; i++) {
		if (p->rt[i].dirty) {
			add_state_put(j->puts, &p->ts.v[i], &p->rt[i]);
			p->rt[i].dirty = false;
		}
	}
	pthread_mutex_unlock(&p->mu);

	if (n_pend > 0
	    && (j->items = calloc(n_pend, sizeof(*j->items))) == NULL) {
		pend_free(pend, n_pend);
		flush_job_free(j);
		return OD_ENOMEM;
	}
	for (size_t k = 0; k < n_pend; k++) {
		const probe_result *r = &pend[k].r;
		Opsdesk__V1__HealthResult hr
		    = OPSDESK__V1__HEALTH_RESULT__INIT;
		Opsdesk__V1__LocationStatus ls[QUORUM_MAX_LOCATIONS];
		Opsdesk__V1__LocationStatus *lp[QUORUM_MAX_LOCATIONS];
		const char *id = p->ts.v[pend[k].index].id;
		for (uint8_t q = 0; q < pend[k].n_locs; q++) {
			opsdesk__v1__location_status__init(&ls[q]);
			ls[q].location = pend[k].locs[q].name;
			ls[q].state = pend[k].locs[q].state;
			ls[q].latency_ms = pend[k].locs[q].latency_ms;
			ls[q].reporting = true;
			lp[q] = &ls[q];
		}
		hr.n_locations = pend[k].n_locs;
		hr.locations = lp;
		hr.location = p->ts.settings.location; /* "": none */
		result_pb(&hr, id, r);
		put_add_pb(j->puts, PDB_RESULTS, key,
		    prober_history_key(key, id, r->at_ms), &hr.base);
		od_strlcpy(j->items[k].id, id, sizeof(j->items[k].id));
		j->items[k].shown = pend[k].shown;
		j->items[k].r = *r;
	}
	j->n = n_pend;
	pend_free(pend, n_pend);
	if (j->n == 0 && j->puts->n == 0) {
		flush_job_free(j);
		return 0;
	}
	if (sbuf_failed(&j->puts->data)) {
		flush_job_free(j);
		return OD_ENOMEM;
	}
	if (sync) {
		rv = store_write(p->store, flush_fn, j);
		flush_job_free(j);
		return rv;
	}
	return store_submit(p->store, flush_fn, j, flush_done, j);
}

/* ---- retention ---- */

/*
 * A retention run deletes the expired rows of the configured targets
 * (all of them: they expire as fast as they are written) and at most
 * removed_max rows of targets no longer configured, which is where a
 * backlog can be (a store that was unsharded, a config that dropped
 * thousands of targets), so that one run's txn stays small.
 */
typedef struct retain_job {
	char **ids;          /* the configured targets, in config order */
	const char **sorted; /* the same strings sorted by strcmp */
	int64_t *raw_cutoff; /* by id: raw results */
	size_t n;
	int64_t cutoff[PDB_COUNT]; /* 0: keep */
	/* Targets not configured: raw results, aggregates and transitions
	 * by age; 0 keeps. */
	int64_t removed_cutoff[PDB_COUNT];
	size_t removed_max;
} retain_job;

/* Whether any row of id is left in the history DBs (PDB_TRANSITIONS to
 * PDB_DAY). */
static int
has_history(MDB_txn *txn, store *st, const char *id, bool *out)
{
	int64_t t;
	int rv;
	for (unsigned db = PDB_TRANSITIONS; db <= PDB_DAY; db++) {
		rv = prober_history_first(txn, store_db(st, db), id, &t);
		if (rv == 0) {
			*out = true;
			return 0;
		}
		if (rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	*out = false;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * The stored state of a target not configured goes with its last history
 * row: until then a target configured again gets its state back along
 * with its history (prober_reload, prober_attach). The state DB holds one
 * key per id, so this walks ids, not rows.
 */
static int
retain_removed_states(store_txn *txn, const retain_job *j, size_t *budget)
{
	store *st = store_txn_store(txn);
	MDB_txn *mtxn = store_txn_mdb(txn);
	char id[HISTORY_ID_MAX + 1];
	const char *idp = id;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	bool has;
	int rc, rv = 0;

	if (mdb_cursor_open(mtxn, store_db(st, PDB_STATE), &cur) != 0) {
		return OD_EIO;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0 && *budget > 0) {
		if (k.mv_size == 0 || k.mv_size > HISTORY_ID_MAX
		    || memchr(k.mv_data, 0, k.mv_size) != NULL) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		memcpy(id, k.mv_data, k.mv_size);
		id[k.mv_size] = '\0';
		has = true;
		if (bsearch(&idp, j->sorted, j->n, sizeof(*j->sorted), cmp_str)
		        == NULL
		    && (rv = has_history(mtxn, st, id, &has)) != 0) {
			goto out;
		}
		if (has) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			rv = rc == MDB_MAP_FULL ? OD_EMAPFULL : OD_EIO;
			goto out;
		}
		(*budget)--;
		/* Re-seek rather than trust the cursor after a delete: the
		 * smallest key after id is id 0x00. */
		k.mv_size = strlen(id) + 1;
		k.mv_data = id;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		rv = OD_EIO;
	}
out:
	mdb_cursor_close(cur);
	return rv;
}

static int
retain_fn(store_txn *txn, void *arg)
{
	retain_job *j = arg;
	store *st = store_txn_store(txn);
	size_t total = 0, removed, budget = j->removed_max, n;
	int rv;

	for (size_t i = 0; i < j->n; i++) {
		for (unsigned db = 0; db < PDB_COUNT; db++) {
			int64_t cut = db == PDB_RESULTS ? j->raw_cutoff[i]
			                                : j->cutoff[db];
			if (cut <= 0) {
				continue;
			}
			if ((rv = prober_history_retain(txn, store_db(st, db),
			         j->ids[i], cut, SIZE_MAX, &n))
			    != 0) {
				return rv;
			}
			total += n;
		}
	}
	for (unsigned db = 0; db < PDB_COUNT && budget > 0; db++) {
		if (j->removed_cutoff[db] <= 0) {
			continue;
		}
		if ((rv = prober_history_retain_unlisted(txn, store_db(st, db),
		         j->sorted, j->n, j->removed_cutoff[db], budget, &n))
		    != 0) {
			return rv;
		}
		budget -= n;
	}
	if (budget > 0 && (rv = retain_removed_states(txn, j, &budget)) != 0) {
		return rv;
	}
	removed = j->removed_max - budget;
	if (total > 0 || removed > 0) {
		log_debug("prober: retention deleted %zu rows of configured "
		          "targets, %zu of others%s",
		    total, removed, budget == 0 ? " (more next run)" : "");
	}
	return 0;
}

static void
retain_free(retain_job *j)
{
	for (size_t i = 0; j != NULL && i < j->n; i++) {
		free(j->ids[i]);
	}
	if (j != NULL) {
		free(j->ids);
		free(j->sorted);
		free(j->raw_cutoff);
		free(j);
	}
}

static void
retain_done(int rv, void *arg)
{
	if (rv != 0) {
		log_error("prober: retention failed: %s", od_strerror(rv));
	}
	retain_free(arg);
}

int
prober_retain(prober *p, bool sync)
{
	const prober_settings *s = &p->ts.settings;
	int64_t now = od_now_ms();
	retain_job *j = calloc(1, sizeof(*j));
	int rv;

	if (j == NULL || (j->ids = calloc(p->ts.n + 1, sizeof(char *))) == NULL
	    || (j->sorted = calloc(p->ts.n + 1, sizeof(char *))) == NULL
	    || (j->raw_cutoff = calloc(p->ts.n + 1, sizeof(int64_t)))
	        == NULL) {
		retain_free(j);
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < p->ts.n; i++) {
		/* Raw results are bounded in time and in number: raw_max
		 * intervals' worth is about raw_max results, without keeping a
		 * count per target. */
		int64_t keep = (int64_t) s->raw_max * p->ts.v[i].interval_ms;
		if (keep > s->raw_retention_ms) {
			keep = s->raw_retention_ms;
		}
		if ((j->ids[j->n] = strdup(p->ts.v[i].id)) == NULL) {
			retain_free(j);
			return OD_ENOMEM;
		}
		j->sorted[j->n] = j->ids[j->n];
		j->raw_cutoff[j->n] = now - keep;
		j->n++;
	}
	qsort(j->sorted, j->n, sizeof(*j->sorted), cmp_str);
	j->cutoff[PDB_MINUTE] = now - s->minute_retention_ms;
	j->cutoff[PDB_HOUR] = now - s->hour_retention_ms;
	j->cutoff[PDB_DAY] = now - s->day_retention_ms;
	/* A target that is no longer configured (removed from the config,
	 * or of another shard: a store belongs to one shard) keeps each
	 * kind of row as long as a configured one would, so one that comes
	 * back finds the history it would have had; raw results by time
	 * only (its interval is gone), and its transitions, which a
	 * configured target keeps, as long as its day rows. */
	memcpy(j->removed_cutoff, j->cutoff, sizeof(j->cutoff));
	j->removed_cutoff[PDB_RESULTS] = now - s->raw_retention_ms;
	j->removed_cutoff[PDB_TRANSITIONS] = now - s->day_retention_ms;
	j->removed_max = p->retain_removed_max;
	if (sync) {
		rv = store_write(p->store, retain_fn, j);
		retain_free(j);
		return rv;
	}
	return store_submit(p->store, retain_fn, j, retain_done, j);
}

/* ---- the decider: locations -> one decided state ---- */

int64_t
prober__stale_ms(const prober *p, const target *t)
{
	/* Three missed results and the time-out of a fourth: a location
	 * is late by a whole round before it stops counting. */
	return p->ts.settings.location_timeout_ms > 0
	    ? p->ts.settings.location_timeout_ms
	    : 3 * t->interval_ms + t->timeout_ms;
}

static int
cmp_slot(const void *a, const void *b)
{
	return strcmp(((const id_slot *) a)->id, ((const id_slot *) b)->id);
}

/* The decider's index of ts by id; NULL when not the decider. */
static id_slot *
build_by_id(const target_set *ts)
{
	id_slot *v;
	if (!ts->settings.decider
	    || (v = calloc(ts->n + 1, sizeof(*v))) == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < ts->n; i++) {
		v[i].id = ts->v[i].id;
		v[i].index = i;
	}
	qsort(v, ts->n, sizeof(*v), cmp_slot);
	return v;
}

/* The index of target id, or -1; p->mu held. */
static long
find_target(const prober *p, const char *id)
{
	id_slot key = { id, 0 }, *hit;
	if (p->by_id == NULL || p->ts.n == 0) {
		return -1;
	}
	hit = bsearch(&key, p->by_id, p->ts.n, sizeof(key), cmp_slot);
	return hit != NULL ? (long) hit->index : -1;
}

/*
 * A decided round of target index is complete (every reporting location
 * reported once since the last): one result of the decided state, with
 * the views it was decided from, into the history, the aggregates and
 * the objectives. So the decider's history and budgets count the
 * component once per round, as one prober's do, however many locations
 * probe it; p->mu held.
 */
static void
record_round(prober *p, size_t index, int64_t now, const quorum_decision *d,
    probe_result *out)
{
	const target *t = &p->ts.v[index];
	target_rt *rt = &p->rt[index];
	probe_result r;
	loc_sample *ls;
	bool bad;

	memset(&r, 0, sizeof(r));
	r.observed = rt->st.health;
	r.latency_ms = d->latency_ms;
	if (d->down > 0 || d->degraded > 0) {
		od_strlcpy(r.error, d->reason, sizeof(r.error));
	}
	/* Keys stay unique when rounds end in the same millisecond. */
	r.at_ms = now > rt->last_result_ms ? now : rt->last_result_ms + 1;
	rt->last_result_ms = r.at_ms;
	r.cert_days_left = -1;
	rt->st.last_check_ms = now;
	rt->dirty = true;
	/*
	 * The availability objective spends budget when the component is
	 * down as decided: not for a failure the quorum overruled, nor for
	 * a regional target's partial failure (decided degraded) — the
	 * objective, the uptime, the reports and the counters' seed after
	 * a restart (the aggregates) all count the same decided state.
	 */
	bad = r.observed == S_DOWN;
	if (rt->slo != NULL) {
		prober_slo_record(rt->slo, t->slo, r.at_ms,
		    prober__slo_in_maintenance(rt), bad, r.latency_ms);
	}
	pend_result(p, index, &r);
	*out = r;
	if (p->n_pend == 0 || p->pend[p->n_pend - 1].index != index
	    || (ls = calloc(rt->n_locs, sizeof(*ls))) == NULL) {
		return;
	}
	for (uint8_t k = 0; k < rt->n_locs; k++) {
		od_strlcpy(ls[k].name, rt->locs[k].name, sizeof(ls[k].name));
		ls[k].state = rt->locs[k].state;
		ls[k].latency_ms = rt->locs[k].latency_ms;
	}
	p->pend[p->n_pend - 1].locs = ls;
	p->pend[p->n_pend - 1].n_locs = rt->n_locs;
}

/*
 * Decide target index again at now; from (may be NULL) is the view that
 * just came. p->mu held, so decisions and their store jobs are in one
 * order whatever thread runs them (the bus callback or the timer).
 * True when from completed a decided round, whose result is *round.
 */
static bool
decide_one(prober *p, size_t index, int64_t now, loc_view *from,
    probe_result *round_out)
{
	const target *t = &p->ts.v[index];
	target_rt *rt = &p->rt[index];
	quorum_vote votes[QUORUM_MAX_LOCATIONS];
	int64_t stale = prober__stale_ms(p, t);
	quorum_rule rule = { t->quorum, t->partial_down, stale };
	quorum_decision d;
	state_change chg;
	bool round = from != NULL, recorded = false;
	char *aff;

	for (uint8_t k = 0; k < rt->n_locs; k++) {
		const loc_view *lv = &rt->locs[k];
		votes[k] = (quorum_vote) { lv->name, lv->state, lv->latency_ms,
			lv->at_ms, lv->reason };
	}
	prober_quorum_decide(votes, rt->n_locs, &rule, now, &d);
	/* What current shows is what was decided on (the tick runs once a
	 * second): reporting and the reason agree. */
	for (uint8_t k = 0; k < rt->n_locs; k++) {
		rt->locs[k].reporting = rt->locs[k].state != S_UNKNOWN;
	}
	for (unsigned k = 0; k < d.n_stale; k++) {
		rt->locs[d.stale_idx[k]].reporting = false;
	}
	if (from != NULL) {
		from->counted = true;
	}
	/* The round is complete when every reporting location is in it. */
	for (uint8_t k = 0; k < rt->n_locs && round; k++) {
		round = !rt->locs[k].reporting || rt->locs[k].counted;
	}
	/*
	 * Not before every location that is up had the time to report
	 * since the target's views started again (the decider started, or
	 * every view had timed out: the decider was cut off from the bus):
	 * the first view to arrive would otherwise be a majority of one.
	 * The state stays the stored one meanwhile, so a restart of the
	 * decider changes nothing.
	 */
	if (d.state != S_UNKNOWN && now - rt->warm_from_ms >= stale) {
		if (prober_state_decide(
		        &rt->st, d.state, d.latency_ms, d.reason, now, &chg)) {
			record_transition_at(p, index, &chg, &d, votes);
		} else if (!same_str(
		               aff = affected_of(t, rt->st.state, &d, votes),
		               rt->affected)) {
			record_affected(p, index, &d, votes, aff, now);
		} else {
			free(aff);
		}
		if (round) {
			record_round(p, index, now, &d, round_out);
			recorded = true;
		}
	}
	if (round) {
		for (uint8_t k = 0; k < rt->n_locs; k++) {
			rt->locs[k].counted = false;
		}
	}
	/* The shown reason follows the locations between transitions
	 * ("down from eu-west only" while still up). */
	if (rt->st.reason == NULL || strcmp(rt->st.reason, d.reason) != 0) {
		(void) prober_state_set_reason(&rt->st, d.reason);
	}
	return recorded;
}

void
prober_observe(prober *p, const Opsdesk__V1__HealthObserved *o)
{
	int64_t now = od_now_ms();
	const target *t;
	target_rt *rt;
	loc_view *lv = NULL;
	bool fresh = false, round;
	probe_result r;
	long i;

	if (!p->ts.settings.decider || o->location == NULL
	    || !prober_location_valid(o->location) || o->target_id == NULL) {
		return;
	}
	pthread_mutex_lock(&p->mu);
	if ((i = find_target(p, o->target_id)) < 0) {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	t = &p->ts.v[i];
	rt = &p->rt[i];
	for (uint8_t k = 0; k < rt->n_locs; k++) {
		if (strcmp(rt->locs[k].name, o->location) == 0) {
			lv = &rt->locs[k];
		}
		fresh = fresh
		    || now - rt->locs[k].at_ms <= prober__stale_ms(p, t);
	}
	if (!fresh) {
		rt->warm_from_ms = now; /* the first view after a silence */
	}
	if (lv == NULL && rt->n_locs < QUORUM_MAX_LOCATIONS) {
		loc_view *n = realloc(rt->locs, (rt->n_locs + 1) * sizeof(*n));
		if (n != NULL) {
			rt->locs = n;
			lv = &rt->locs[rt->n_locs++];
			memset(lv, 0, sizeof(*lv));
			od_strlcpy(lv->name, o->location, sizeof(lv->name));
		}
	}
	if (lv == NULL) {
		pthread_mutex_unlock(&p->mu);
		log_warn("prober: view of %s from %s dropped (at most %d "
		         "locations)",
		    o->target_id, o->location, QUORUM_MAX_LOCATIONS);
		return;
	}
	/* Maintenance is the decider's own (its windows); a location's
	 * view is its damped health. */
	lv->state = o->state == S_MAINT ? S_UNKNOWN : (int) o->state;
	lv->latency_ms = o->latency_ms;
	lv->at_ms = now;
	od_strlcpy(lv->reason, o->reason != NULL ? o->reason : "",
	    sizeof(lv->reason));
	round = decide_one(p, (size_t) i, now, lv, &r);
	pthread_mutex_unlock(&p->mu);
	/* Outside the lock (the id is the view's: a reload may replace
	 * the targets meanwhile): the status page's checks and latency,
	 * one per decided round. */
	if (round) {
		publish_result(p, o->target_id, &r);
	}
}

void
prober_decide_all(prober *p)
{
	int64_t now = od_now_ms();
	if (!p->ts.settings.decider) {
		return;
	}
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->ts.n; i++) {
		if (p->rt[i].n_locs > 0) {
			(void) decide_one(p, i, now, NULL, NULL);
		}
	}
	pthread_mutex_unlock(&p->mu);
}

/* ---- maintenance ---- */

static bool
window_covers(const maint_window *w, const target *t)
{
	for (size_t i = 0; i < w->n_components; i++) {
		const char *c = w->components[i];
		if (strcasecmp(c, t->id) == 0 || strcasecmp(c, t->name) == 0
		    || (t->group[0] != '\0' && strcasecmp(c, t->group) == 0)) {
			return true;
		}
	}
	return false;
}

/* Recompute every target's maintenance flag; p->mu held. */
static void
apply_maintenance(prober *p)
{
	int64_t now = od_now_ms();
	for (size_t i = 0; i < p->ts.n; i++) {
		const maint_window *cover = NULL;
		state_change chg;
		char why[160];
		for (size_t w = 0; w < p->n_win && cover == NULL; w++) {
			if (window_covers(&p->win[w], &p->ts.v[i])) {
				cover = &p->win[w];
			}
		}
		if (cover != NULL) {
			snprintf(why, sizeof(why), "MNT-%llu %s",
			    (unsigned long long) cover->id, cover->title);
		}
		if (prober_state_set_maintenance(&p->rt[i].st, cover != NULL,
		        cover != NULL ? why : NULL, now, &chg)) {
			record_transition(p, i, &chg);
		}
	}
}

static void
window_free(maint_window *w)
{
	for (size_t i = 0; i < w->n_components; i++) {
		free(w->components[i]);
	}
	free(w->components);
	memset(w, 0, sizeof(*w));
}

static void
window_remove(prober *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_win; i++) {
		if (p->win[i].id == id) {
			window_free(&p->win[i]);
			p->win[i] = p->win[--p->n_win];
			return;
		}
	}
}

static bool
window_active(const Opsdesk__V1__MaintenanceWindow *w, int64_t now)
{
	return w->status
	    == OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS
	    || (w->status
	            == OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_SCHEDULED
	        && w->start_ms <= now && now < w->end_ms);
}

static void
window_add(prober *p, const Opsdesk__V1__MaintenanceWindow *w)
{
	maint_window *n = realloc(p->win, (p->n_win + 1) * sizeof(*n));
	maint_window *m;
	if (n == NULL) {
		return;
	}
	p->win = n;
	m = &p->win[p->n_win];
	memset(m, 0, sizeof(*m));
	m->id = w->id;
	od_strlcpy(m->title, w->title ? w->title : "", sizeof(m->title));
	if ((m->components = calloc(w->n_components + 1, sizeof(char *)))
	    == NULL) {
		return;
	}
	for (size_t i = 0; i < w->n_components; i++) {
		if ((m->components[m->n_components] = strdup(w->components[i]))
		    != NULL) {
			m->n_components++;
		}
	}
	p->n_win++;
}

void
prober_maintenance_event(prober *p, const Opsdesk__V1__MaintenanceWindow *w)
{
	pthread_mutex_lock(&p->mu);
	window_remove(p, w->id);
	if (window_active(w, od_now_ms())) {
		window_add(p, w);
	}
	apply_maintenance(p);
	pthread_mutex_unlock(&p->mu);
}

void
prober_maintenance_resync(
    prober *p, Opsdesk__V1__MaintenanceWindow *const *w, size_t n)
{
	int64_t now = od_now_ms();
	pthread_mutex_lock(&p->mu);
	while (p->n_win > 0) {
		window_free(&p->win[--p->n_win]);
	}
	for (size_t i = 0; i < n; i++) {
		if (window_active(w[i], now)) {
			window_add(p, w[i]);
		}
	}
	apply_maintenance(p);
	pthread_mutex_unlock(&p->mu);
}

/* ---- metrics ---- */

static void
family(sbuf *b, const char *name, const char *help)
{
	sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* Per-target gauges in blackbox_exporter's spirit, from our memory. */
static void
render_targets(void *arg, sbuf *b)
{
	prober *p = arg;
	static const struct {
		const char *name;
		const char *help;
	} fam[] = {
		{ "opsdesk_probe_success",
		    "Whether the last probe succeeded (1) or failed (0)." },
		{ "opsdesk_probe_duration_seconds",
		    "How long the last probe took in seconds." },
		{ "opsdesk_probe_state",
		    "Component state: 0 unknown, 1 up, 2 degraded, 3 down, 4 "
		    "maintenance." },
		{ "opsdesk_probe_http_status_code",
		    "HTTP status of the last probe." },
		{ "opsdesk_probe_ssl_earliest_cert_expiry",
		    "Expiry of the leaf certificate in unixtime." },
	};
	pthread_mutex_lock(&p->mu);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		family(b, fam[f].name, fam[f].help);
		for (size_t i = 0; i < p->ts.n; i++) {
			const target *t = &p->ts.v[i];
			const target_rt *rt = &p->rt[i];
			double v;
			if (rt->st.last_check_ms == 0 && f != 2) {
				continue;
			}
			switch (f) {
			case 0:
				v = rt->st.consecutive_failures == 0;
				break;
			case 1:
				v = rt->st.latency_ms / 1000.0;
				break;
			case 2:
				v = rt->st.state;
				break;
			case 3:
				if (t->kind != PROBE_HTTP
				    && t->kind != PROBE_METRIC) {
					continue;
				}
				v = rt->st.status_code;
				break;
			default:
				if (rt->cert_not_after_s == 0) {
					continue;
				}
				v = (double) rt->cert_not_after_s;
				break;
			}
			sbuf_printf(b, "%s{target=\"%s\",kind=\"%s\"} %.17g\n",
			    fam[f].name, t->id, probe_kind_names[t->kind], v);
		}
	}
	family(b, "opsdesk_business_metric",
	    "A business value extracted by a metric target.");
	for (size_t i = 0; i < p->ts.n; i++) {
		const target *t = &p->ts.v[i];
		for (size_t k = 0; k < t->n_metrics; k++) {
			const business_value *bv = &p->bm[p->bm_base[i] + k];
			if (bv->set) {
				sbuf_printf(b,
				    "opsdesk_business_metric{name=\"%s\","
				    "target=\"%s\"} %.17g\n",
				    t->metrics[k].name, t->id, bv->value);
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
}

/* ---- life cycle ---- */

/*
 * At debug level, what each target with headers or credentials sends,
 * with every secret redacted: enough to see that a header is configured
 * without the log becoming a place credentials leak to.
 */
static void
log_request_opts(const target_set *ts)
{
	for (size_t i = 0; log_get_level() <= LOG_DEBUG && i < ts->n; i++) {
		const target *t = &ts->v[i];
		const http_request_opts *req = t->req;
		sbuf b = SBUF_INIT;
		char line[160];
		if (req == NULL) {
			continue;
		}
		for (size_t k = 0; k < req->n_headers; k++) {
			sbuf_printf(&b, "%s%s", k ? ", " : "",
			    prober_target_redact_header(
			        req->headers[k], line, sizeof(line)));
		}
		log_debug("prober: target %s sends headers [%s], auth %s%s%s",
		    t->id, b.data != NULL ? b.data : "",
		    req->basic_user != NULL ? "basic user " : "",
		    req->basic_user != NULL ? req->basic_user : "",
		    req->bearer_token != NULL
		        ? "bearer <redacted>"
		        : (req->basic_user != NULL ? " password <redacted>"
		                                   : "none"));
		sbuf_free(&b);
	}
}

int
prober_new(
    prober **out, const config *c, const char *shard, char *err, size_t errlen)
{
	prober *p = calloc(1, sizeof(*p));
	size_t n_bm = 0;
	int rv;

	if (p == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->obs_mu, NULL);
	pthread_rwlock_init(&p->cfg_lock, NULL);
	p->retain_removed_max = PROBER_RETAIN_REMOVED_MAX;
	if ((rv = prober_targets_load(c, shard, &p->ts, err, errlen)) != 0) {
		goto out;
	}
	if (p->ts.settings.shard_count > 1) {
		snprintf(p->shard, sizeof(p->shard), "%u/%u",
		    p->ts.settings.shard_index, p->ts.settings.shard_count);
	}
	rv = OD_ENOMEM;
	if ((p->rt = calloc(p->ts.n + 1, sizeof(*p->rt))) == NULL
	    || (p->bm_base = calloc(p->ts.n + 1, sizeof(size_t))) == NULL) {
		goto out;
	}
	for (size_t i = 0; i < p->ts.n; i++) {
		prober_state_init(&p->rt[i].st);
		p->bm_base[i] = n_bm;
		n_bm += p->ts.v[i].n_metrics;
	}
	if ((p->bm = calloc(n_bm + 1, sizeof(*p->bm))) == NULL) {
		goto out;
	}
	p->n_bm = n_bm;
	if (p->ts.settings.decider
	    && (p->by_id = build_by_id(&p->ts)) == NULL) {
		goto out;
	}
	log_request_opts(&p->ts);
	*out = p;
	return 0;
out:
	prober_free(p);
	return rv;
}

/* Restore one target's live state from its stored state, if any. */
static void
load_target(store *st, MDB_txn *txn, const target *t, target_rt *rt)
{
	Opsdesk__V1__TargetStatus *ts = NULL;

	if (store_get_pb(txn, store_db(st, PDB_STATE), t->id, strlen(t->id),
	        &opsdesk__v1__target_status__descriptor,
	        (ProtobufCMessage **) &ts)
	    == 0) {
		/* Maintenance is not restored: it comes back from the
		 * incident-service snapshot. */
		rt->st.health = ts->state == S_MAINT ? (int) ts->health
		                                     : (int) ts->state;
		rt->st.state = rt->st.health;
		rt->st.since_ms = ts->since_ms;
		rt->st.last_check_ms = ts->last_check_ms;
		rt->st.latency_ms = ts->latency_ms;
		rt->st.status_code = ts->status_code;
		rt->st.cert_days_left = ts->cert_days_left;
		rt->st.consecutive_failures = ts->consecutive_failures;
		rt->st.consecutive_successes = ts->consecutive_successes;
		rt->cert_not_after_s = ts->cert_not_after_ms / 1000;
		(void) prober_state_set_reason(
		    &rt->st, ts->reason[0] != '\0' ? ts->reason : NULL);
		/* The decider's last published affected locations. */
		free(rt->affected);
		rt->affected = NULL;
		if (ts->n_affected_locations > 0) {
			sbuf b = SBUF_INIT;
			for (size_t k = 0; k < ts->n_affected_locations; k++) {
				sbuf_printf(&b, "%s%s", k ? "," : "",
				    ts->affected_locations[k]);
			}
			rt->affected = sbuf_failed(&b) ? NULL : strdup(b.data);
			sbuf_free(&b);
		}
		protobuf_c_message_free_unpacked(&ts->base, NULL);
	}
}

int
prober_attach(prober *p, store *st, bus_publisher *pub, metrics *m,
    const char *instance, const char *disk_path)
{
	MDB_txn *txn = NULL;
	int rv;

	p->store = st;
	p->pub = pub;
	p->metrics = m;
	od_strlcpy(p->instance, instance ? instance : "", sizeof(p->instance));
	od_strlcpy(
	    p->disk_path, disk_path ? disk_path : "/", sizeof(p->disk_path));
	if ((rv = store_read_begin(st, &txn)) != 0) {
		return rv;
	}
	for (size_t i = 0; i < p->ts.n; i++) {
		load_target(st, txn, &p->ts.v[i], &p->rt[i]);
		if ((rv = prober__slo_build(
		         p, &p->ts.v[i], txn, &p->rt[i].slo))
		    != 0) {
			store_read_end(txn);
			return rv;
		}
	}
	store_read_end(txn);
	if (m != NULL) {
		p->m_ok = metrics_counter(m, "opsdesk_probes_total",
		    "Probes run, by result.", "result=\"success\"");
		p->m_fail = metrics_counter(m, "opsdesk_probes_total",
		    "Probes run, by result.", "result=\"failure\"");
		p->m_transitions
		    = metrics_counter(m, "opsdesk_probe_transitions_total",
		        "State transitions of all targets.", NULL);
		p->m_in_flight = metrics_gauge(m, "opsdesk_prober_in_flight",
		    "Probes in flight at the last flush.", NULL);
		p->m_skipped
		    = metrics_counter(m, "opsdesk_prober_skipped_total",
		        "Probes skipped because the previous one still ran.",
		        NULL);
		p->m_targets = metrics_gauge(m, "opsdesk_prober_targets",
		    "Targets probed by this shard.", NULL);
		p->m_reloads
		    = metrics_counter(m, "opsdesk_prober_config_reloads_total",
		        "Config reloads applied (a rejected config is not "
		        "counted).",
		        NULL);
		metric_set(p->m_targets, (double) p->ts.n);
		(void) metrics_add_text(m, render_targets, p);
		(void) metrics_add_text(m, prober__slo_render, p);
	}
	return 0;
}

int
prober_start(prober *p)
{
	sched_callbacks cb = { prober_feed, on_metric, p };
	int rv = prober_sched_start(&p->sched, &p->ts, &cb);
	/* A reload restarts probing only if it ran: unit tests feed
	 * results by hand. */
	p->probing = rv == 0;
	return rv;
}

/* ---- config reload ---- */

typedef struct id_index {
	const char *id;
	size_t index;
} id_index;

static int
by_id(const void *a, const void *b)
{
	return strcmp(((const id_index *) a)->id, ((const id_index *) b)->id);
}

int
prober_reload(
    prober *p, const config *c, const char *shard, char *err, size_t errlen)
{
	target_set nts, ots;
	target_rt *nrt = NULL, *ort;
	size_t *nbase = NULL, n_bm = 0, added = 0, changed = 0, kept = 0;
	id_slot *nby_id = NULL, *oby_id;
	business_value *nbm = NULL, *obm;
	size_t *obase;
	id_index *idx = NULL;
	slo_rt **fresh = NULL; /* by new index: objectives set up anew */
	long *from = NULL;     /* by new index: the old index, or -1 */
	bool *moved = NULL;
	MDB_txn *txn = NULL;
	sched_callbacks cb = { prober_feed, on_metric, p };
	int rv;

	if ((rv = prober_targets_load(c, shard, &nts, err, errlen)) != 0) {
		return rv;
	}
	/* What the instance is (its subscription, whether it probes) is
	 * set at its start. */
	if (nts.settings.decider != p->ts.settings.decider
	    || strcmp(nts.settings.location, p->ts.settings.location) != 0) {
		log_warn("prober: role and location change at the next "
		         "restart");
		nts.settings.decider = p->ts.settings.decider;
		memcpy(nts.settings.location, p->ts.settings.location,
		    sizeof(nts.settings.location));
	}
	rv = OD_ENOMEM;
	if ((nrt = calloc(nts.n + 1, sizeof(*nrt))) == NULL
	    || (nbase = calloc(nts.n + 1, sizeof(size_t))) == NULL
	    || (from = calloc(nts.n + 1, sizeof(long))) == NULL
	    || (moved = calloc(p->ts.n + 1, sizeof(bool))) == NULL
	    || (idx = calloc(p->ts.n + 1, sizeof(*idx))) == NULL
	    || (fresh = calloc(nts.n + 1, sizeof(*fresh))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nts.n; i++) {
		nbase[i] = n_bm;
		n_bm += nts.v[i].n_metrics;
	}
	if ((nbm = calloc(n_bm + 1, sizeof(*nbm))) == NULL
	    || (nts.settings.decider
	        && (nby_id = build_by_id(&nts)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* The old targets by id: 10,000 targets are matched in
	 * O(n log n), not n^2 string compares. Only this thread changes
	 * p->ts, so it is read here without a lock. */
	for (size_t i = 0; i < p->ts.n; i++) {
		idx[i].id = p->ts.v[i].id;
		idx[i].index = i;
	}
	qsort(idx, p->ts.n, sizeof(*idx), by_id);
	for (size_t i = 0; i < nts.n; i++) {
		id_index key = { nts.v[i].id, 0 };
		id_index *hit = p->ts.n == 0
		    ? NULL
		    : bsearch(&key, idx, p->ts.n, sizeof(*idx), by_id);
		from[i] = hit != NULL ? (long) hit->index : -1;
		prober_state_init(&nrt[i].st);
	}
	/* A target configured again after a removal gets its stored state
	 * back, as at a start. */
	if (p->store != NULL && store_read_begin(p->store, &txn) == 0) {
		for (size_t i = 0; i < nts.n; i++) {
			if (from[i] < 0) {
				load_target(p->store, txn, &nts.v[i], &nrt[i]);
			}
			/* New objectives count from the aggregates;
			 * unchanged ones keep their counters. */
			if (from[i] < 0
			    || !prober_slo_spec_equal(
			        nts.v[i].slo, p->ts.v[from[i]].slo)) {
				(void) prober__slo_build(
				    p, &nts.v[i], txn, &fresh[i]);
			}
		}
		store_read_end(txn);
	}

	/* Probes of the old set stop (in-flight ones are dropped: the next
	 * round probes them again) and its pending results are written
	 * under the old indices before they mean something else. */
	prober_sched_stop(p->sched);
	p->sched = NULL;
	if (p->store != NULL) {
		(void) prober_flush(p, false);
	}

	log_request_opts(&nts);
	pthread_rwlock_wrlock(&p->cfg_lock);
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < nts.n; i++) {
		const target *nt = &nts.v[i];
		size_t o;
		if (from[i] < 0) {
			nrt[i].slo = fresh[i];
			fresh[i] = NULL;
			added++;
			continue;
		}
		o = (size_t) from[i];
		nrt[i] = p->rt[o]; /* the reason moves with it */
		moved[o] = true;
		if (!prober_slo_spec_equal(nt->slo, p->ts.v[o].slo)) {
			prober_slo_rt_free(nrt[i].slo);
			nrt[i].slo = fresh[i];
			fresh[i] = NULL;
		}
		if (prober_target_equal(nt, &p->ts.v[o])) {
			kept++;
			for (size_t k = 0; k < nt->n_metrics; k++) {
				nbm[nbase[i] + k] = p->bm[p->bm_base[o] + k];
			}
		} else {
			/* What it probes changed: the shown state stays until
			 * the new definition earns a transition on its own
			 * results. */
			changed++;
			nrt[i].st.worse_streak = 0;
			nrt[i].st.better_streak = 0;
		}
	}
	ots = p->ts;
	ort = p->rt;
	obase = p->bm_base;
	obm = p->bm;
	oby_id = p->by_id;
	p->by_id = nby_id;
	p->ts = nts;
	p->rt = nrt;
	p->bm_base = nbase;
	p->bm = nbm;
	p->n_bm = n_bm;
	apply_maintenance(p);
	pthread_mutex_unlock(&p->mu);
	pthread_rwlock_unlock(&p->cfg_lock);

	for (size_t i = 0; i < ots.n; i++) {
		if (!moved[i]) {
			prober_state_fini(&ort[i].st);
			free(ort[i].locs);
			free(ort[i].affected);
			prober_slo_rt_free(ort[i].slo);
		}
	}
	if (ots.settings.flush_ms != p->ts.settings.flush_ms) {
		log_warn("prober: flush_interval changes at the next restart");
	}
	metric_set(p->m_targets, (double) p->ts.n);
	metric_inc(p->m_reloads);
	log_info("prober: config reloaded: %zu targets: %zu added, %zu "
	         "removed, %zu changed, %zu unchanged",
	    p->ts.n, added, ots.n - (p->ts.n - added), changed, kept);
	prober_target_set_free(&ots);
	free(ort);
	free(obase);
	free(obm);
	free(oby_id);
	/* Now p's: nothing of them is freed below. */
	nby_id = NULL;
	nrt = NULL;
	nbase = NULL;
	nbm = NULL;
	memset(&nts, 0, sizeof(nts));
	rv = 0;
	err[0] = '\0';
	if (p->probing
	    && (rv = prober_sched_start(&p->sched, &p->ts, &cb)) != 0) {
		snprintf(err, errlen, "cannot restart probing: %s",
		    od_strerror(rv));
	}
out:
	for (size_t i = 0; fresh != NULL && i < nts.n; i++) {
		prober_slo_rt_free(fresh[i]);
	}
	free(fresh);
	free(nrt);
	free(nbase);
	free(nbm);
	free(nby_id);
	free(idx);
	free(from);
	free(moved);
	prober_target_set_free(&nts);
	return rv;
}

void
prober_stop(prober *p)
{
	if (p == NULL) {
		return;
	}
	prober_sched_stop(p->sched);
	p->sched = NULL;
	p->probing = false;
	if (p->store != NULL) {
		(void) prober_flush(p, true);
	}
}

void
prober_free(prober *p)
{
	if (p == NULL) {
		return;
	}
	prober_sched_stop(p->sched);
	while (p->n_win > 0) {
		window_free(&p->win[--p->n_win]);
	}
	free(p->win);
	free(p->obs);
	pend_free(p->pend, p->n_pend);
	for (size_t i = 0; p->rt != NULL && i < p->ts.n; i++) {
		prober_state_fini(&p->rt[i].st);
		free(p->rt[i].locs);
		free(p->rt[i].affected);
		prober_slo_rt_free(p->rt[i].slo);
	}
	free(p->rt);
	free(p->by_id);
	free(p->bm_base);
	free(p->bm);
	prober_target_set_free(&p->ts);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->obs_mu);
	pthread_rwlock_destroy(&p->cfg_lock);
	free(p);
}

const target_set *
prober_targets(const prober *p)
{
	return &p->ts;
}

const char *
prober_shard(const prober *p)
{
	return p->shard;
}
