/*
 * model — the public read model: components, incidents, maintenance
 * windows and daily bars, in memory for rendering and in LMDB so a restart
 * shows the same page before any owner answers.
 *
 * Records are kept as unpacked protobuf messages. A change builds the new
 * record on the stack (a shallow copy of the old one with some fields
 * replaced), packs it once, and unpacks that into the table: the packed
 * bytes are what the store gets, so memory and disk cannot disagree and
 * every record's memory has one owner (protobuf-c's allocator).
 *
 * Locking: `mu` guards the tables and is held while a view is rendered;
 * `flush_mu` is held across an apply and its store write, so writes reach
 * the store in the order they were applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "log/log.h"
#include "status.h"

enum { DB_COMPONENTS, DB_INCIDENTS, DB_MAINTENANCE, DB_META, DB_COUNT };

const char *const status_model_dbs[]
    = { "components", "incidents", "maintenance", "meta", NULL };

#define MAX_KEY 256

typedef struct pending_write {
	unsigned db;
	uint8_t key[MAX_KEY];
	size_t klen;
	uint8_t *val; /* NULL: delete */
	size_t vlen;
} pending_write;

/* A table of records of one message type, keyed by kind. */
typedef struct rtable {
	const ProtobufCMessageDescriptor *desc;
	unsigned db;
	ProtobufCMessage **items;
	size_t n, cap;
} rtable;

struct status_model {
	pthread_mutex_t mu;
	pthread_mutex_t flush_mu;
	const status_conf *conf;
	store *st;
	rtable comps;
	rtable incs;
	rtable mnts;
	char indicator[16]; /* the last announced indicator */
	int64_t updated_ms;
	int64_t opened_ms; /* Last-Modified before any fact */
	int64_t resync_ms;
	uint64_t version;
	pending_write *pending;
	size_t n_pending, cap_pending;
};

typedef Opsdesk__V1__StatusComponentRecord comp_rec;
typedef Opsdesk__V1__Incident incident;
typedef Opsdesk__V1__MaintenanceWindow mwindow;

/* ---- keys and pending writes ---- */

static size_t
record_key(const ProtobufCMessage *msg, uint8_t *key)
{
	if (msg->descriptor
	    == &opsdesk__v1__status_component_record__descriptor) {
		const comp_rec *c = (const comp_rec *) msg;
		size_t len = strlen(c->id);
		if (len > MAX_KEY) {
			len = MAX_KEY;
		}
		memcpy(key, c->id, len);
		return len;
	}
	if (msg->descriptor == &opsdesk__v1__incident__descriptor) {
		store_key_u64(key, ((const incident *) msg)->id);
	} else {
		store_key_u64(key, ((const mwindow *) msg)->id);
	}
	return 8;
}

static int
queue_write(status_model *m, unsigned db, const uint8_t *key, size_t klen,
    uint8_t *val, size_t vlen)
{
	if (m->n_pending == m->cap_pending) {
		size_t cap = m->cap_pending ? m->cap_pending * 2 : 16;
		pending_write *p = realloc(m->pending, cap * sizeof(*p));
		if (p == NULL) {
			free(val);
			return OD_ENOMEM;
		}
		m->pending = p;
		m->cap_pending = cap;
	}
	pending_write *w = &m->pending[m->n_pending++];
	w->db = db;
	memcpy(w->key, key, klen);
	w->klen = klen;
	w->val = val;
	w->vlen = vlen;
	return 0;
}

/* ---- tables ---- */

static ssize_t
rtable_find(const rtable *t, const uint8_t *key, size_t klen)
{
	uint8_t k[MAX_KEY];
	for (size_t i = 0; i < t->n; i++) {
		if (record_key(t->items[i], k) == klen
		    && memcmp(k, key, klen) == 0) {
			return (ssize_t) i;
		}
	}
	return -1;
}

static int
rtable_append(rtable *t, ProtobufCMessage *msg)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		ProtobufCMessage **p = realloc(t->items, cap * sizeof(*p));
		if (p == NULL) {
			return OD_ENOMEM;
		}
		t->items = p;
		t->cap = cap;
	}
	t->items[t->n++] = msg;
	return 0;
}

/* Insert or replace the record with msg's key by a copy of msg (borrowed)
 * and queue its write. */
static int
rtable_put(status_model *m, rtable *t, const ProtobufCMessage *msg)
{
	uint8_t key[MAX_KEY];
	size_t klen = record_key(msg, key);
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	ProtobufCMessage *copy = NULL;
	int rv = OD_ENOMEM;

	if (buf == NULL) {
		goto out;
	}
	protobuf_c_message_pack(msg, buf);
	copy = protobuf_c_message_unpack(t->desc, NULL, len, buf);
	if (copy == NULL) {
		goto out;
	}
	ssize_t i = rtable_find(t, key, klen);
	if (i >= 0) {
		protobuf_c_message_free_unpacked(t->items[i], NULL);
		t->items[i] = copy;
	} else if ((rv = rtable_append(t, copy)) != 0) {
		goto out;
	}
	copy = NULL;
	m->version++;
	rv = queue_write(m, t->db, key, klen, buf, len);
	buf = NULL;
out:
	free(buf);
	if (copy != NULL) {
		protobuf_c_message_free_unpacked(copy, NULL);
	}
	return rv;
}

static int
rtable_remove(status_model *m, rtable *t, size_t i)
{
	uint8_t key[MAX_KEY];
	size_t klen = record_key(t->items[i], key);
	protobuf_c_message_free_unpacked(t->items[i], NULL);
	t->items[i] = t->items[--t->n];
	m->version++;
	return queue_write(m, t->db, key, klen, NULL, 0);
}

static void
rtable_fini(rtable *t)
{
	for (size_t i = 0; i < t->n; i++) {
		protobuf_c_message_free_unpacked(t->items[i], NULL);
	}
	free(t->items);
	t->items = NULL;
	t->n = t->cap = 0;
}

static comp_rec *
find_comp(status_model *m, const char *id)
{
	ssize_t i = rtable_find(&m->comps, (const uint8_t *) id, strlen(id));
	return i < 0 ? NULL : (comp_rec *) m->comps.items[i];
}

static ssize_t
find_u64(const rtable *t, uint64_t id)
{
	uint8_t key[8];
	store_key_u64(key, id);
	return rtable_find(t, key, 8);
}

static void
touch(status_model *m, int64_t at_ms)
{
	if (at_ms > m->updated_ms) {
		m->updated_ms = at_ms;
	}
}

static int
put_meta(status_model *m)
{
	Opsdesk__V1__StatusMeta meta = OPSDESK__V1__STATUS_META__INIT;
	meta.indicator = m->indicator;
	meta.updated_ms = m->updated_ms;
	meta.resync_ms = m->resync_ms;
	size_t len = opsdesk__v1__status_meta__get_packed_size(&meta);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__status_meta__pack(&meta, buf);
	return queue_write(m, DB_META, (const uint8_t *) "meta", 4, buf, len);
}

/* ---- persistence ---- */

typedef struct flush_job {
	status_model *m;
	pending_write *w;
	size_t n;
} flush_job;

static int
flush_fn(store_txn *txn, void *arg)
{
	flush_job *j = arg;
	for (size_t i = 0; i < j->n; i++) {
		pending_write *w = &j->w[i];
		MDB_dbi db = store_db(j->m->st, w->db);
		int rv = w->val != NULL
		    ? store_put(txn, db, w->key, w->klen, w->val, w->vlen)
		    : store_del(txn, db, w->key, w->klen, NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	return 0;
}

/* Write what the last apply queued. Called with flush_mu held, mu not. */
static int
flush(status_model *m, pending_write *w, size_t n)
{
	int rv = 0;
	if (m->st != NULL && n > 0) {
		flush_job j = { m, w, n };
		rv = store_write(m->st, flush_fn, &j);
		if (rv != 0) {
			log_error("status model: store write failed: %s",
			    od_strerror(rv));
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(w[i].val);
	}
	free(w);
	return rv;
}

/* Run fn under the locks, then make its changes durable. */
static int
apply(status_model *m, int (*fn)(status_model *m, const void *arg),
    const void *arg)
{
	pthread_mutex_lock(&m->flush_mu);
	pthread_mutex_lock(&m->mu);
	uint64_t before = m->version;
	int rv = fn(m, arg);
	if (m->version != before) {
		int mrv = put_meta(m);
		if (rv == 0) {
			rv = mrv;
		}
	}
	pending_write *w = m->pending;
	size_t n = m->n_pending;
	m->pending = NULL;
	m->n_pending = m->cap_pending = 0;
	pthread_mutex_unlock(&m->mu);
	int frv = flush(m, w, n);
	pthread_mutex_unlock(&m->flush_mu);
	return rv != 0 ? rv : frv;
}

static int
load_db(status_model *m, MDB_txn *txn, rtable *t)
{
	store_scan sc;
	MDB_val k, v;
	int rv
	    = store_scan_open(&sc, txn, store_db(m->st, t->db), NULL, 0, NULL);
	if (rv != 0) {
		return rv;
	}
	while (store_scan_next(&sc, &k, &v) == 0) {
		ProtobufCMessage *msg = protobuf_c_message_unpack(
		    t->desc, NULL, v.mv_size, v.mv_data);
		if (msg == NULL) {
			/* A record this build cannot read is skipped; the next
			 * resync rewrites it. */
			log_warn("status model: undecodable record skipped");
			continue;
		}
		if ((rv = rtable_append(t, msg)) != 0) {
			protobuf_c_message_free_unpacked(msg, NULL);
			break;
		}
	}
	store_scan_close(&sc);
	return rv;
}

static int
load(status_model *m)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	int rv = store_read_begin(m->st, &txn);
	if (rv != 0) {
		return rv;
	}
	if ((rv = load_db(m, txn, &m->comps)) != 0
	    || (rv = load_db(m, txn, &m->incs)) != 0
	    || (rv = load_db(m, txn, &m->mnts)) != 0) {
		goto out;
	}
	if (store_get(txn, store_db(m->st, DB_META), "meta", 4, &v) == 0) {
		Opsdesk__V1__StatusMeta *meta
		    = opsdesk__v1__status_meta__unpack(
		        NULL, v.mv_size, v.mv_data);
		if (meta != NULL) {
			od_strlcpy(m->indicator, meta->indicator,
			    sizeof(m->indicator));
			m->updated_ms = meta->updated_ms;
			m->resync_ms = meta->resync_ms;
			opsdesk__v1__status_meta__free_unpacked(meta, NULL);
		}
	}
out:
	store_read_end(txn);
	return rv;
}

static int do_reword_stored(status_model *m, const void *arg);

int
status_model_open(status_model **out, const status_conf *conf, store *st)
{
	status_model *m = calloc(1, sizeof(*m));
	int rv;
	if (m == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->flush_mu, NULL);
	m->conf = conf;
	m->st = st;
	m->opened_ms = od_now_ms();
	m->comps.desc = &opsdesk__v1__status_component_record__descriptor;
	m->comps.db = DB_COMPONENTS;
	m->incs.desc = &opsdesk__v1__incident__descriptor;
	m->incs.db = DB_INCIDENTS;
	m->mnts.desc = &opsdesk__v1__maintenance_window__descriptor;
	m->mnts.db = DB_MAINTENANCE;
	if (st != NULL
	    && ((rv = load(m)) != 0
	        || (rv = apply(m, do_reword_stored, NULL)) != 0)) {
		status_model_close(m);
		return rv;
	}
	*out = m;
	return 0;
}

void
status_model_close(status_model *m)
{
	if (m == NULL) {
		return;
	}
	rtable_fini(&m->comps);
	rtable_fini(&m->incs);
	rtable_fini(&m->mnts);
	for (size_t i = 0; i < m->n_pending; i++) {
		free(m->pending[i].val);
	}
	free(m->pending);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->flush_mu);
	free(m);
}

uint64_t
status_model_version(status_model *m)
{
	pthread_mutex_lock(&m->mu);
	uint64_t v = m->version;
	pthread_mutex_unlock(&m->mu);
	return v;
}

/* ---- components ---- */

/* The facts a component update carries, from an event or a snapshot. */
typedef struct comp_fact {
	const char *id, *name, *group;
	Opsdesk__V1__ComponentState state;
	bool public;
	int64_t since_ms;
	/* A regional target failing in some locations (borrowed). */
	char **affected;
	size_t n_affected;
} comp_fact;

static bool
same_affected(const comp_rec *r, const comp_fact *f)
{
	if (r->n_affected_locations != f->n_affected) {
		return false;
	}
	for (size_t i = 0; i < f->n_affected; i++) {
		if (strcmp(r->affected_locations[i], f->affected[i]) != 0) {
			return false;
		}
	}
	return true;
}

static int
apply_comp_fact(status_model *m, const comp_fact *f)
{
	comp_rec *old = find_comp(m, f->id);
	comp_rec r = OPSDESK__V1__STATUS_COMPONENT_RECORD__INIT;
	const char *name = f->name[0] ? f->name : f->id;
	/* A target never checked yet has no "since": it is known from now. */
	int64_t at = f->since_ms > 0 ? f->since_ms : od_now_ms();

	if (old == NULL && !f->public) {
		/* Private targets are never shown: only one that was public
		 * needs a record (to leave the page). Thousands of internal
		 * targets then cost nothing here. */
		return 0;
	}
	if (old != NULL) {
		/* An older fact (a snapshot taken before the last event) must
		 * not undo a newer one. A never-checked target's "since" is
		 * our clock when we heard of it, so its first real state,
		 * observed a moment earlier by the prober, is not older: an
		 * observation always beats "unknown" (at a start together
		 * the page once kept a working target at "No data"). */
		bool first_state = old->state
		        == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN
		    && f->state
		        != OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN;
		if (at < old->since_ms && !first_state) {
			return 0;
		}
		if (old->state == f->state && old->public_ == f->public
		    && strcmp(old->name, name) == 0
		    && strcmp(old->group, f->group) == 0
		    && same_affected(old, f)) {
			return 0;
		}
		r = *old;
	} else {
		r.created_ms = at;
		r.uptime_30d = -1;
		r.uptime_90d = -1;
	}
	r.id = (char *) f->id;
	r.name = (char *) name;
	r.group = (char *) f->group;
	r.state = f->state;
	r.public_ = f->public;
	r.n_affected_locations = f->n_affected;
	r.affected_locations = f->affected;
	r.since_ms = at;
	r.updated_ms = at;
	touch(m, at);
	return rtable_put(m, &m->comps, &r.base);
}

static int
do_health_changed(status_model *m, const void *arg)
{
	const Opsdesk__V1__HealthChanged *hc = arg;
	comp_fact f = { hc->target_id, hc->name, hc->group, hc->new_state,
		hc->public_, hc->at_ms, hc->affected_locations,
		hc->n_affected_locations };
	return apply_comp_fact(m, &f);
}

/* Only the locations a regional target's partial failure affects
 * changed: the state and its "since" stay. */
static int
do_health_affected(status_model *m, const void *arg)
{
	const Opsdesk__V1__HealthAffected *ha = arg;
	comp_fact f = { ha->target_id, ha->name, ha->group, ha->state,
		ha->public_, ha->since_ms, ha->affected_locations,
		ha->n_affected_locations };
	return apply_comp_fact(m, &f);
}

int
status_model_health_affected(
    status_model *m, const Opsdesk__V1__HealthAffected *ha)
{
	if (ha->target_id == NULL || ha->target_id[0] == '\0') {
		return OD_EINVAL;
	}
	return apply(m, do_health_affected, ha);
}

int
status_model_health_changed(
    status_model *m, const Opsdesk__V1__HealthChanged *hc)
{
	if (hc->target_id == NULL || hc->target_id[0] == '\0') {
		return OD_EINVAL;
	}
	return apply(m, do_health_changed, hc);
}

static int
state_rank(Opsdesk__V1__ComponentState s)
{
	switch (s) {
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN:
		return 4;
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED:
		return 3;
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE:
		return 2;
	case OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP:
		return 1;
	default:
		return 0;
	}
}

/*
 * Replace r's bars by `bars` (borrowed) limited to the STATUS_DAYS days up
 * to `today`, oldest first, into the caller's out array.
 */
static size_t
window_bars(Opsdesk__V1__DailyBar *const *bars, size_t n, int64_t today,
    Opsdesk__V1__DailyBar **out)
{
	int64_t first = today - (STATUS_DAYS - 1) * STATUS_DAY_MS;
	size_t k = 0;
	for (size_t i = 0; i < n && k < STATUS_DAYS; i++) {
		if (bars[i]->day_ms >= first && bars[i]->day_ms <= today) {
			out[k++] = bars[i];
		}
	}
	return k;
}

static int
do_health_result(status_model *m, const void *arg)
{
	const Opsdesk__V1__HealthResult *hr = arg;
	comp_rec *old = find_comp(m, hr->target_id);
	if (old == NULL || !old->public_ || hr->at_ms <= 0) {
		/* Unknown targets arrive with the next resync's history. */
		return 0;
	}
	int64_t day = hr->at_ms - (hr->at_ms % STATUS_DAY_MS);
	Opsdesk__V1__DailyBar *bars[STATUS_DAYS + 1];
	Opsdesk__V1__DailyBar today = OPSDESK__V1__DAILY_BAR__INIT;
	size_t n = window_bars(old->daily, old->n_daily, day, bars);

	if (n > 0 && bars[n - 1]->day_ms == day) {
		today = *bars[n - 1];
		bars[n - 1] = &today;
	} else {
		today.day_ms = day;
		if (n == STATUS_DAYS) {
			memmove(bars, bars + 1, (n - 1) * sizeof(bars[0]));
			n--;
		}
		bars[n++] = &today;
	}
	today.checks++;
	if (!hr->ok) {
		today.failures++;
	}
	if (state_rank(hr->observed) > state_rank(today.worst)) {
		today.worst = hr->observed;
	}
	today.uptime
	    = 100.0 * (double) (today.checks - today.failures) / today.checks;

	comp_rec r = *old;
	r.daily = bars;
	r.n_daily = n;
	if (hr->ok && hr->at_ms >= old->latency_at_ms) {
		/* A failed check's time is a time-out, not a response. */
		r.latency_ms = hr->latency_ms;
		r.latency_at_ms = hr->at_ms;
	}
	touch(m, hr->at_ms);
	return rtable_put(m, &m->comps, &r.base);
}

int
status_model_health_result(
    status_model *m, const Opsdesk__V1__HealthResult *hr)
{
	if (hr->target_id == NULL || hr->target_id[0] == '\0') {
		return OD_EINVAL;
	}
	return apply(m, do_health_result, hr);
}

static int
do_history(status_model *m, const void *arg)
{
	const Opsdesk__V1__TargetHistory *h = arg;
	comp_rec *old = find_comp(m, h->target->id);
	if (old == NULL) {
		return 0;
	}
	/* Merge day by day, keeping the bar with more checks: the prober's
	 * day aggregates lag its results, which already moved our bar of
	 * today. Both lists are oldest first. */
	Opsdesk__V1__DailyBar *merged[2 * STATUS_DAYS + 2];
	Opsdesk__V1__DailyBar *theirs[STATUS_DAYS], *ours[STATUS_DAYS];
	int64_t last = h->n_daily > 0 ? h->daily[h->n_daily - 1]->day_ms : 0;
	if (old->n_daily > 0 && old->daily[old->n_daily - 1]->day_ms > last) {
		last = old->daily[old->n_daily - 1]->day_ms;
	}
	size_t nt = window_bars(h->daily, h->n_daily, last, theirs);
	size_t no = window_bars(old->daily, old->n_daily, last, ours);
	size_t n = 0, i = 0, k = 0;
	while (i < nt || k < no) {
		if (k == no
		    || (i < nt && theirs[i]->day_ms < ours[k]->day_ms)) {
			merged[n++] = theirs[i++];
		} else if (i == nt || ours[k]->day_ms < theirs[i]->day_ms) {
			merged[n++] = ours[k++];
		} else {
			merged[n++] = ours[k]->checks > theirs[i]->checks
			    ? ours[k]
			    : theirs[i];
			i++;
			k++;
		}
	}
	Opsdesk__V1__DailyBar *bars[STATUS_DAYS];
	n = window_bars(merged, n, last, bars);
	comp_rec r = *old;
	r.daily = bars;
	r.n_daily = n;
	r.uptime_30d = h->uptime_30d;
	r.uptime_90d = h->uptime_90d;
	r.slo_target = h->slo_target;
	r.slo_attainment = h->slo_attainment;
	r.slo_window_ms = h->slo_window_ms;
	if (h->n_latency_24h + h->n_latency_7d + h->n_latency_30d > 0) {
		r.latency_24h = h->latency_24h;
		r.n_latency_24h = h->n_latency_24h;
		r.latency_7d = h->latency_7d;
		r.n_latency_7d = h->n_latency_7d;
		r.latency_30d = h->latency_30d;
		r.n_latency_30d = h->n_latency_30d;
	}
	/* Only a real difference counts as a change of the page. */
	size_t a = protobuf_c_message_get_packed_size(&old->base);
	size_t b = protobuf_c_message_get_packed_size(&r.base);
	if (a == b) {
		uint8_t *pa = malloc(a ? a : 1), *pb = malloc(b ? b : 1);
		bool same = false;
		if (pa != NULL && pb != NULL) {
			protobuf_c_message_pack(&old->base, pa);
			protobuf_c_message_pack(&r.base, pb);
			same = memcmp(pa, pb, a) == 0;
		}
		free(pa);
		free(pb);
		if (same) {
			return 0;
		}
	}
	return rtable_put(m, &m->comps, &r.base);
}

int
status_model_history(status_model *m, const Opsdesk__V1__TargetHistory *h)
{
	if (h->target == NULL || h->target->id[0] == '\0') {
		return OD_EINVAL;
	}
	return apply(m, do_history, h);
}

static int
do_resync_health(status_model *m, const void *arg)
{
	const Opsdesk__V1__HealthCurrent *cur = arg;
	int rv = 0;
	for (size_t i = 0; i < cur->n_targets && rv == 0; i++) {
		const Opsdesk__V1__TargetStatus *t = cur->targets[i];
		if (t->id[0] == '\0') {
			continue;
		}
		comp_fact f = { t->id, t->name, t->group, t->state, t->public_,
			t->since_ms, t->affected_locations,
			t->n_affected_locations };
		rv = apply_comp_fact(m, &f);
	}
	/* A sharded prober's snapshot covers only its shard: then nothing
	 * can be concluded about the targets it does not list. */
	if (cur->shard[0] != '\0' && strcmp(cur->shard, "0/1") != 0) {
		return rv;
	}
	for (size_t i = m->comps.n; i-- > 0 && rv == 0;) {
		comp_rec *c = (comp_rec *) m->comps.items[i];
		bool listed = false;
		for (size_t j = 0; j < cur->n_targets && !listed; j++) {
			listed = strcmp(cur->targets[j]->id, c->id) == 0;
		}
		if (!listed && c->updated_ms <= cur->at_ms) {
			rv = rtable_remove(m, &m->comps, i);
		}
	}
	m->resync_ms = cur->at_ms;
	return rv;
}

int
status_model_resync_health(
    status_model *m, const Opsdesk__V1__HealthCurrent *cur)
{
	return apply(m, do_resync_health, cur);
}

int
status_model_public_ids(status_model *m, char ***ids, size_t *n)
{
	int rv = OD_ENOMEM;
	pthread_mutex_lock(&m->mu);
	char **out = calloc(m->comps.n + 1, sizeof(*out));
	size_t k = 0;
	if (out == NULL) {
		goto out;
	}
	for (size_t i = 0; i < m->comps.n; i++) {
		comp_rec *c = (comp_rec *) m->comps.items[i];
		if (!c->public_) {
			continue;
		}
		if ((out[k] = strdup(c->id)) == NULL) {
			goto out;
		}
		k++;
	}
	*ids = out;
	*n = k;
	out = NULL;
	rv = 0;
out:
	pthread_mutex_unlock(&m->mu);
	if (out != NULL) {
		for (size_t i = 0; i < k; i++) {
			free(out[i]);
		}
		free(out);
	}
	return rv;
}

/* ---- incidents ---- */

/* Keep the newest resolved incidents only, so the page and the feeds
 * cost the same however long the history grows. */
static int
prune_incidents(status_model *m)
{
	int rv = 0;
	for (;;) {
		size_t resolved = 0, oldest = 0;
		int64_t oldest_ms = INT64_MAX;
		for (size_t i = 0; i < m->incs.n; i++) {
			incident *x = (incident *) m->incs.items[i];
			if (x->status
			    != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
				continue;
			}
			resolved++;
			if (x->created_ms < oldest_ms) {
				oldest_ms = x->created_ms;
				oldest = i;
			}
		}
		if (resolved <= STATUS_KEEP_INCIDENTS || rv != 0) {
			return rv;
		}
		rv = rtable_remove(m, &m->incs, oldest);
	}
}

/*
 * Store the public part of an incident: public timeline entries without
 * their authors, no acknowledger, no dedup key; and an automatic
 * incident's entries still in the probe's words (written before the
 * public templates) in the template's (status_public_rewording).
 * stored: in is a record of ours being reworded — put only if that
 * changes it, and it is no news (the page's time stays).
 */
static int
put_public_incident(status_model *m, const incident *in, bool stored)
{
	ssize_t i = find_u64(&m->incs, in->id);
	if (!in->public_) {
		/* Made internal: it leaves the page. */
		return i >= 0 ? rtable_remove(m, &m->incs, (size_t) i) : 0;
	}
	if (!stored && i >= 0
	    && ((incident *) m->incs.items[i])->updated_ms > in->updated_ms) {
		return 0;
	}
	Opsdesk__V1__TimelineEntry **tl
	    = calloc(in->n_timeline + 1, sizeof(*tl));
	Opsdesk__V1__TimelineEntry *entries
	    = calloc(in->n_timeline + 1, sizeof(*entries));
	/* in may be the record that rtable_put replaces (stored). */
	size_t n_in = in->n_timeline;
	char **texts = calloc(n_in + 1, sizeof(*texts));
	char text[1200];
	size_t reworded = 0;
	int rv = OD_ENOMEM;
	if (tl == NULL || entries == NULL || texts == NULL) {
		goto out;
	}
	size_t n = 0;
	for (size_t k = 0; k < in->n_timeline; k++) {
		if (!in->timeline[k]->public_) {
			continue;
		}
		entries[n] = *in->timeline[k];
		if (status_public_rewording(
		        m->conf, in, &entries[n], text, sizeof(text))) {
			if ((texts[n] = strdup(text)) == NULL) {
				goto out;
			}
			entries[n].text = texts[n];
			reworded++;
		}
		entries[n].author_id = 0;
		entries[n].author_name = "";
		tl[n] = &entries[n];
		n++;
	}
	rv = 0;
	if (stored && reworded == 0) {
		goto out;
	}
	incident r = *in;
	r.timeline = tl;
	r.n_timeline = n;
	r.acknowledged_by = 0;
	r.acknowledged_by_name = "";
	r.dedup_key = "";
	r.created_by = 0;
	if (!stored) {
		touch(m, in->updated_ms);
	}
	if ((rv = rtable_put(m, &m->incs, &r.base)) == 0) {
		rv = prune_incidents(m);
	}
out:
	for (size_t k = 0; texts != NULL && k < n_in; k++) {
		free(texts[k]);
	}
	free(texts);
	free(tl);
	free(entries);
	return rv;
}

/* Incidents stored before the public templates: reworded once at open
 * (and rewritten, so the raw text leaves the store too). */
static int
do_reword_stored(status_model *m, const void *arg)
{
	int rv = 0;
	(void) arg;
	for (size_t i = 0; rv == 0 && i < m->incs.n; i++) {
		/* rtable_put replaces items[i] with a copy: borrow the old
		 * record only for the call. */
		rv = put_public_incident(
		    m, (const incident *) m->incs.items[i], true);
	}
	return rv;
}

static int
do_incident(status_model *m, const void *arg)
{
	return put_public_incident(m, arg, false);
}

int
status_model_incident(status_model *m, const Opsdesk__V1__Incident *inc)
{
	if (inc->id == 0) {
		return OD_EINVAL;
	}
	return apply(m, do_incident, inc);
}

/* ---- maintenance ---- */

static int
prune_maintenance(status_model *m)
{
	int rv = 0;
	for (;;) {
		size_t done = 0, oldest = 0;
		int64_t oldest_ms = INT64_MAX;
		for (size_t i = 0; i < m->mnts.n; i++) {
			mwindow *w = (mwindow *) m->mnts.items[i];
			if (w->status
			    != OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED) {
				continue;
			}
			done++;
			if (w->start_ms < oldest_ms) {
				oldest_ms = w->start_ms;
				oldest = i;
			}
		}
		if (done <= STATUS_KEEP_MAINTENANCE || rv != 0) {
			return rv;
		}
		rv = rtable_remove(m, &m->mnts, oldest);
	}
}

static int
put_maintenance(status_model *m, const mwindow *w)
{
	ssize_t i = find_u64(&m->mnts, w->id);
	if (w->status
	    == OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_CANCELLED) {
		touch(m, w->updated_ms);
		return i >= 0 ? rtable_remove(m, &m->mnts, (size_t) i) : 0;
	}
	if (i >= 0
	    && ((mwindow *) m->mnts.items[i])->updated_ms > w->updated_ms) {
		return 0;
	}
	/* Who scheduled it is not public. */
	mwindow r = *w;
	r.created_by = 0;
	touch(m, w->updated_ms);
	int rv = rtable_put(m, &m->mnts, &r.base);
	return rv != 0 ? rv : prune_maintenance(m);
}

static int
do_maintenance(status_model *m, const void *arg)
{
	return put_maintenance(m, arg);
}

int
status_model_maintenance(
    status_model *m, const Opsdesk__V1__MaintenanceWindow *w)
{
	if (w->id == 0) {
		return OD_EINVAL;
	}
	return apply(m, do_maintenance, w);
}

static int
do_resync_incidents(status_model *m, const void *arg)
{
	const Opsdesk__V1__IncidentSnapshot *s = arg;
	int rv = 0;
	for (size_t i = 0; i < s->n_active && rv == 0; i++) {
		rv = put_public_incident(m, s->active[i], false);
	}
	for (size_t i = 0; i < s->n_recent && rv == 0; i++) {
		rv = put_public_incident(m, s->recent[i], false);
	}
	for (size_t i = 0; i < s->n_maintenance && rv == 0; i++) {
		rv = put_maintenance(m, s->maintenance[i]);
	}
	/* What we think is open but the owner does not list was deleted or
	 * made internal while we were not listening. */
	for (size_t i = m->incs.n; i-- > 0 && rv == 0;) {
		incident *x = (incident *) m->incs.items[i];
		bool listed = false;
		if (x->status
		        == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED
		    || x->updated_ms > s->at_ms) {
			continue;
		}
		for (size_t j = 0; j < s->n_active && !listed; j++) {
			listed = s->active[j]->id == x->id;
		}
		for (size_t j = 0; j < s->n_recent && !listed; j++) {
			listed = s->recent[j]->id == x->id;
		}
		if (!listed) {
			rv = rtable_remove(m, &m->incs, i);
		}
	}
	/* A window no longer scheduled nor in progress has ended (or was
	 * cancelled, if its time had not come). */
	for (size_t i = m->mnts.n; i-- > 0 && rv == 0;) {
		mwindow *w = (mwindow *) m->mnts.items[i];
		bool listed = false;
		if (w->status
		        == OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED
		    || w->updated_ms > s->at_ms) {
			continue;
		}
		for (size_t j = 0; j < s->n_maintenance && !listed; j++) {
			listed = s->maintenance[j]->id == w->id;
		}
		if (listed) {
			continue;
		}
		if (w->end_ms <= s->at_ms) {
			mwindow r = *w;
			r.status
			    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED;
			rv = rtable_put(m, &m->mnts, &r.base);
		} else {
			rv = rtable_remove(m, &m->mnts, i);
		}
	}
	m->resync_ms = s->at_ms;
	return rv;
}

int
status_model_resync_incidents(
    status_model *m, const Opsdesk__V1__IncidentSnapshot *snap)
{
	return apply(m, do_resync_incidents, snap);
}

int
status_model_event(status_model *m, const Opsdesk__V1__Envelope *env)
{
	switch (env->payload_case) {
	case OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_CHANGED:
		return status_model_health_changed(m, env->health_changed);
	case OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_RESULT:
		return status_model_health_result(m, env->health_result);
	case OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_AFFECTED:
		return status_model_health_affected(m, env->health_affected);
	case OPSDESK__V1__ENVELOPE__PAYLOAD_INCIDENT:
		if (env->incident->incident == NULL) {
			return OD_EINVAL;
		}
		return status_model_incident(m, env->incident->incident);
	case OPSDESK__V1__ENVELOPE__PAYLOAD_MAINTENANCE:
		if (env->maintenance->window == NULL) {
			return OD_EINVAL;
		}
		return status_model_maintenance(m, env->maintenance->window);
	default:
		return 0;
	}
}

/* ---- the view ---- */

typedef struct view_buf {
	status_view v;
	status_comp *statuses;
} view_buf;

static void
view_fini(view_buf *b)
{
	free(b->v.comps);
	free(b->v.groups);
	free(b->v.unresolved);
	free(b->v.incidents);
	free(b->v.mnt_active);
	free(b->v.mnt_upcoming);
	free(b->v.mnt_all);
	free(b->statuses);
}

static const status_comp_conf *
comp_conf(const status_conf *conf, const char *id, size_t *pos)
{
	for (size_t i = 0; i < conf->n_comps; i++) {
		if (strcmp(conf->comps[i].id, id) == 0) {
			*pos = i;
			return &conf->comps[i];
		}
	}
	*pos = SIZE_MAX;
	return NULL;
}

typedef struct comp_slot {
	comp_rec *rec;
	const status_comp_conf *cc;
	size_t order;
	const char *group;
} comp_slot;

static int
slot_cmp(const void *a, const void *b)
{
	const comp_slot *x = a, *y = b;
	if (x->order != y->order) {
		return x->order < y->order ? -1 : 1;
	}
	int c = strcmp(x->group, y->group);
	if (c != 0) {
		return c;
	}
	c = strcmp(x->rec->name, y->rec->name);
	return c != 0 ? c : strcmp(x->rec->id, y->rec->id);
}

static int
inc_cmp(const void *a, const void *b)
{
	const incident *x = *(incident *const *) a,
	               *y = *(incident *const *) b;
	if (x->created_ms != y->created_ms) {
		return x->created_ms > y->created_ms ? -1 : 1;
	}
	return x->id > y->id ? -1 : (x->id < y->id);
}

static int
mnt_cmp(const void *a, const void *b)
{
	const mwindow *x = *(mwindow *const *) a, *y = *(mwindow *const *) b;
	if (x->start_ms != y->start_ms) {
		return x->start_ms < y->start_ms ? -1 : 1;
	}
	return x->id < y->id ? -1 : (x->id > y->id);
}

/* Percent of successful checks over the last `days` days of bars; < 0
 * when there is no data, then the prober's own figure if it had one. */
static double
bars_uptime(const comp_rec *c, int64_t today, int days, double fallback)
{
	int64_t first = today - (int64_t) (days - 1) * STATUS_DAY_MS;
	uint64_t checks = 0, ok = 0;
	double sum = 0;
	int n = 0;
	for (size_t i = 0; i < c->n_daily; i++) {
		const Opsdesk__V1__DailyBar *d = c->daily[i];
		if (d->day_ms < first || d->day_ms > today) {
			continue;
		}
		if (d->checks > 0) {
			checks += d->checks;
			ok += d->checks
			    - (d->failures < d->checks ? d->failures
			                               : d->checks);
		} else if (d->uptime >= 0) {
			sum += d->uptime;
			n++;
		}
	}
	if (checks > 0) {
		return 100.0 * (double) ok / (double) checks;
	}
	if (n > 0) {
		return sum / n;
	}
	return fallback;
}

static bool
in_active_window(const status_view *v, const char *id)
{
	for (size_t i = 0; i < v->n_mnt_active; i++) {
		const mwindow *w = v->mnt_active[i];
		for (size_t k = 0; k < w->n_components; k++) {
			if (strcmp(w->components[k], id) == 0) {
				return true;
			}
		}
	}
	return false;
}

static int
build_maintenance(status_model *m, view_buf *b)
{
	status_view *v = &b->v;
	size_t n = m->mnts.n + 1;
	v->mnt_all = calloc(n, sizeof(*v->mnt_all));
	v->mnt_active = calloc(n, sizeof(*v->mnt_active));
	v->mnt_upcoming = calloc(n, sizeof(*v->mnt_upcoming));
	if (!v->mnt_all || !v->mnt_active || !v->mnt_upcoming) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < m->mnts.n; i++) {
		const mwindow *w = (const mwindow *) m->mnts.items[i];
		const char *st = status_maintenance_status(w, v->now_ms);
		if (st == NULL) {
			continue;
		}
		v->mnt_all[v->n_mnt_all++] = w;
		if (strcmp(st, "in_progress") == 0) {
			v->mnt_active[v->n_mnt_active++] = w;
		} else if (strcmp(st, "scheduled") == 0) {
			v->mnt_upcoming[v->n_mnt_upcoming++] = w;
		}
	}
	qsort(v->mnt_all, v->n_mnt_all, sizeof(v->mnt_all[0]), mnt_cmp);
	qsort(
	    v->mnt_active, v->n_mnt_active, sizeof(v->mnt_active[0]), mnt_cmp);
	qsort(v->mnt_upcoming, v->n_mnt_upcoming, sizeof(v->mnt_upcoming[0]),
	    mnt_cmp);
	return 0;
}

static int
build_incidents(status_model *m, view_buf *b, status_indicator *impact)
{
	status_view *v = &b->v;
	size_t n = m->incs.n + 1;
	v->incidents = calloc(n, sizeof(*v->incidents));
	v->unresolved = calloc(n, sizeof(*v->unresolved));
	if (!v->incidents || !v->unresolved) {
		return OD_ENOMEM;
	}
	*impact = STATUS_IND_NONE;
	for (size_t i = 0; i < m->incs.n; i++) {
		const incident *x = (const incident *) m->incs.items[i];
		v->incidents[v->n_incidents++] = x;
		if (x->status
		    != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
			v->unresolved[v->n_unresolved++] = x;
			if (x->status
			    == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING) {
				/* Fixed and watched: the headline follows
				 * the components, not the old impact. */
				v->n_monitoring++;
				continue;
			}
			status_indicator im = status_impact_of(x->severity);
			if (im > *impact) {
				*impact = im;
			}
		}
	}
	qsort(v->incidents, v->n_incidents, sizeof(v->incidents[0]), inc_cmp);
	qsort(
	    v->unresolved, v->n_unresolved, sizeof(v->unresolved[0]), inc_cmp);
	return 0;
}

static int
build_components(status_model *m, view_buf *b)
{
	status_view *v = &b->v;
	const status_conf *conf = m->conf;
	comp_slot *slots = calloc(m->comps.n + 1, sizeof(*slots));
	size_t n = 0;
	int rv = OD_ENOMEM;

	if (slots == NULL) {
		goto out;
	}
	for (size_t i = 0; i < m->comps.n; i++) {
		comp_rec *c = (comp_rec *) m->comps.items[i];
		size_t pos;
		const status_comp_conf *cc = comp_conf(conf, c->id, &pos);
		if (!c->public_ || (cc == NULL && !conf->show_unlisted)) {
			continue;
		}
		slots[n].rec = c;
		slots[n].cc = cc;
		slots[n].order = pos;
		slots[n].group = (cc && cc->group) ? cc->group : c->group;
		n++;
	}
	qsort(slots, n, sizeof(*slots), slot_cmp);

	v->comps = calloc(n + 1, sizeof(*v->comps));
	v->groups = calloc(n + 1, sizeof(*v->groups));
	b->statuses = calloc(n + 1, sizeof(*b->statuses));
	if (!v->comps || !v->groups || !b->statuses) {
		goto out;
	}
	/* Lay the components out group by group, a group where its first
	 * member would be, so each group's members are contiguous. */
	bool *placed = calloc(n + 1, sizeof(*placed));
	if (placed == NULL) {
		goto out;
	}
	int64_t today = v->now_ms - (v->now_ms % STATUS_DAY_MS);
	for (size_t i = 0; i < n; i++) {
		if (placed[i]) {
			continue;
		}
		status_view_group *g = NULL;
		if (slots[i].group[0] != '\0') {
			g = &v->groups[v->n_groups];
			g->name = slots[i].group;
			snprintf(g->id, sizeof(g->id), "group-%zu",
			    v->n_groups + 1);
			g->first = v->n_comps;
			g->position = (unsigned) v->n_comps + 1;
			g->created_ms = INT64_MAX;
			v->n_groups++;
		}
		for (size_t j = i; j < n; j++) {
			if (placed[j]
			    || (j != i
			        && (g == NULL
			            || strcmp(slots[j].group, g->name)
			                != 0))) {
				continue;
			}
			placed[j] = true;
			status_view_comp *vc = &v->comps[v->n_comps];
			const comp_rec *c = slots[j].rec;
			const status_comp_conf *cc = slots[j].cc;
			vc->rec = c;
			vc->name = (cc && cc->name) ? cc->name : c->name;
			vc->group = slots[j].group;
			vc->description = cc ? cc->description : NULL;
			vc->position = (unsigned) v->n_comps + 1;
			/* Not settled yet: today's checks are not a
			 * verdict, so they count for nothing. */
			vc->no_data = c->state
			    == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN;
			vc->not_responding = c->state
			    == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN;
			int64_t upto
			    = vc->no_data ? today - STATUS_DAY_MS : today;
			vc->uptime_30d = bars_uptime(
			    c, upto, 30, vc->no_data ? -1 : c->uptime_30d);
			vc->uptime_90d = bars_uptime(
			    c, upto, 90, vc->no_data ? -1 : c->uptime_90d);
			vc->group_index = g ? (int) (g - v->groups) : -1;
			v->n_comps++;
			if (g != NULL) {
				g->count++;
				if (c->created_ms < g->created_ms) {
					g->created_ms = c->created_ms;
				}
				if (c->updated_ms > g->updated_ms) {
					g->updated_ms = c->updated_ms;
				}
			}
			if (g == NULL) {
				break;
			}
		}
	}
	free(placed);

	/* Statuses need the whole group: a member down while another works
	 * is a partial outage. */
	for (size_t i = 0; i < v->n_comps; i++) {
		status_view_comp *vc = &v->comps[i];
		bool working = false;
		if (vc->group_index >= 0) {
			const status_view_group *g
			    = &v->groups[vc->group_index];
			for (size_t k = g->first; k < g->first + g->count;
			     k++) {
				Opsdesk__V1__ComponentState s
				    = v->comps[k].rec->state;
				if (k != i
				    && (s == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
				        || s
				            == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED)) {
					working = true;
				}
			}
		}
		vc->status = in_active_window(v, vc->rec->id)
		    ? STATUS_MAINTENANCE
		    : status_map_state(vc->rec->state, working);
		/* A regional target failing in some locations: an outage
		 * for its users there. */
		if (vc->rec->n_affected_locations > 0
		    && vc->status != STATUS_MAINTENANCE
		    && vc->status < STATUS_PARTIAL) {
			vc->status = STATUS_PARTIAL;
		}
		b->statuses[i] = vc->status;
	}
	for (size_t gi = 0; gi < v->n_groups; gi++) {
		status_view_group *g = &v->groups[gi];
		g->status = STATUS_OPERATIONAL;
		for (size_t k = g->first; k < g->first + g->count; k++) {
			status_comp s = v->comps[k].status;
			/* Maintenance ranks below any problem. */
			int rs = s == STATUS_MAINTENANCE ? 0 : (int) s + 1;
			int rg = g->status == STATUS_MAINTENANCE
			    ? 0
			    : (int) g->status + 1;
			if (s == STATUS_MAINTENANCE
			    && g->status == STATUS_OPERATIONAL) {
				g->status = s;
			} else if (rs > rg && s != STATUS_MAINTENANCE) {
				g->status = s;
			}
		}
	}
	rv = 0;
out:
	free(slots);
	return rv;
}

static int
build_view(status_model *m, int64_t now_ms, view_buf *b)
{
	status_view *v = &b->v;
	status_indicator impact;
	int rv;
	memset(b, 0, sizeof(*b));
	v->conf = m->conf;
	v->now_ms = now_ms;
	/* Nothing heard yet: the page is as of its first render, not 1970. */
	v->updated_ms = m->updated_ms > 0 ? m->updated_ms : m->opened_ms;
	if ((rv = build_maintenance(m, b)) != 0
	    || (rv = build_incidents(m, b, &impact)) != 0
	    || (rv = build_components(m, b)) != 0) {
		return rv;
	}
	status_overall(
	    b->statuses, v->n_comps, impact, &v->indicator, &v->description);
	return 0;
}

int
status_model_with_view(status_model *m, int64_t now_ms,
    int (*fn)(const status_view *v, void *arg), void *arg)
{
	view_buf b;
	pthread_mutex_lock(&m->mu);
	int rv = build_view(m, now_ms, &b);
	if (rv == 0) {
		rv = fn(&b.v, arg);
	}
	pthread_mutex_unlock(&m->mu);
	view_fini(&b);
	return rv;
}

const status_view_comp *
status_view_find(const status_view *v, const char *id)
{
	for (size_t i = 0; i < v->n_comps; i++) {
		if (strcmp(v->comps[i].rec->id, id) == 0) {
			return &v->comps[i];
		}
	}
	return NULL;
}

const char *
status_view_comp_name(const status_view *v, const char *id)
{
	const status_view_comp *c = status_view_find(v, id);
	return c ? c->name : NULL;
}

/* ---- changes, for status.changed ---- */

void
status_changes_fini(status_changes *c)
{
	if (c == NULL) {
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		free(c->items[i].id);
		free(c->items[i].name);
	}
	free(c->items);
	memset(c, 0, sizeof(*c));
}

static status_indicator
indicator_parse(const char *s)
{
	for (int i = STATUS_IND_NONE; i <= STATUS_IND_CRITICAL; i++) {
		if (strcmp(s, status_indicator_name(i)) == 0) {
			return i;
		}
	}
	return STATUS_IND_NONE;
}

static int
do_take_changes(status_model *m, const void *arg)
{
	const void *const *a = arg;
	int64_t now_ms = *(const int64_t *) a[0];
	status_changes *out = (status_changes *) a[1];
	view_buf b;
	int rv = build_view(m, now_ms, &b);
	if (rv != 0) {
		goto out;
	}
	out->items = calloc(b.v.n_comps + 1, sizeof(*out->items));
	if (out->items == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	out->indicator = b.v.indicator;
	out->description = b.v.description;
	/* The first run ever has nothing to compare with: it only records. */
	bool first = m->indicator[0] == '\0';
	out->old_indicator
	    = first ? b.v.indicator : indicator_parse(m->indicator);
	if (out->old_indicator != out->indicator) {
		out->any = true;
	}
	/* Collect first, write after: a put may move the records the view
	 * points to. */
	size_t n_upd = 0;
	comp_rec **upd = calloc(b.v.n_comps + 1, sizeof(*upd));
	const char **upd_status = calloc(b.v.n_comps + 1, sizeof(*upd_status));
	if (upd == NULL || upd_status == NULL) {
		free(upd);
		free(upd_status);
		rv = OD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < b.v.n_comps; i++) {
		const status_view_comp *vc = &b.v.comps[i];
		const char *now = status_comp_name(vc->status);
		const char *was = vc->rec->public_status;
		if (strcmp(was, now) == 0) {
			continue;
		}
		upd[n_upd] = (comp_rec *) vc->rec;
		upd_status[n_upd++] = now;
		if (was[0] == '\0') {
			continue; /* newly shown: nothing to announce */
		}
		status_change *ch = &out->items[out->n];
		ch->id = strdup(vc->rec->id);
		ch->name = strdup(vc->name);
		ch->new_status = now;
		ch->old_status = status_comp_name(STATUS_OPERATIONAL);
		for (int s = STATUS_OPERATIONAL; s <= STATUS_MAINTENANCE;
		     s++) {
			if (strcmp(was, status_comp_name(s)) == 0) {
				ch->old_status = status_comp_name(s);
			}
		}
		out->n++;
		out->any = true;
		if (ch->id == NULL || ch->name == NULL) {
			rv = OD_ENOMEM;
		}
	}
	for (size_t i = 0; i < n_upd && rv == 0; i++) {
		comp_rec r = *upd[i];
		r.public_status = (char *) upd_status[i];
		uint64_t version = m->version;
		rv = rtable_put(m, &m->comps, &r.base);
		/* Remembering what was announced changes no page. */
		m->version = version;
	}
	free(upd);
	free(upd_status);
	if (rv == 0
	    && strcmp(m->indicator, status_indicator_name(b.v.indicator))) {
		od_strlcpy(m->indicator, status_indicator_name(b.v.indicator),
		    sizeof(m->indicator));
		rv = put_meta(m);
	}
out:
	view_fini(&b);
	return rv;
}

int
status_model_take_changes(status_model *m, int64_t now_ms, status_changes *out)
{
	memset(out, 0, sizeof(*out));
	const void *args[2] = { &now_ms, out };
	int rv = apply(m, do_take_changes, args);
	if (rv != 0) {
		status_changes_fini(out);
	}
	return rv;
}
