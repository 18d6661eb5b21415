/*
 * history — aggregates of probe results and their rows in LMDB.
 *
 * An aggregate counts checks, failures and degraded results of one
 * target over one minute, hour or day, with a fixed latency histogram,
 * so that uptime and p50/p95/p99 of any window are a merge of rows and
 * never need the raw results (which are kept only briefly). Keys are the
 * target id, a 0x00 and the period start in big-endian ms, so one
 * target's rows sort by time: a window is one cursor range, and
 * retention deletes from the front of each target's range and stops at
 * the first row it keeps. The ids present are found by jumping from one
 * id's range to the next, which is how the rows of targets no longer
 * configured are found without reading their rows.
 */
#include <stdlib.h>
#include <string.h>

#include "prober.h"
#include "util/util.h"

const char *const prober_db_names[] = { "state", "transitions", "results",
	"agg_minute", "agg_hour", "agg_day", NULL };

const uint32_t prober_agg_bucket_le_ms[AGG_BUCKETS]
    = { 5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000,
	      3000, 5000, 10000, 30000, UINT32_MAX };

static int
bucket_of(uint32_t ms)
{
	int i = 0;
	while (i < AGG_BUCKETS - 1 && ms > prober_agg_bucket_le_ms[i]) {
		i++;
	}
	return i;
}

void
prober_agg_add(agg *a, const probe_result *r, int shown_state)
{
	a->checks++;
	if (shown_state
	    == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE) {
		a->maint++;
	} else if (r->observed
	    == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN) {
		a->failures++;
	} else if (r->observed
	    == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED) {
		a->degraded++;
	}
	if (a->checks == 1
	    || prober_state_rank(shown_state)
	        > prober_state_rank((int) a->worst)) {
		a->worst = (uint32_t) shown_state;
	}
	a->latency_sum_ms += r->latency_ms;
	a->hist[bucket_of(r->latency_ms)]++;
}

void
prober_agg_merge(agg *into, const agg *from)
{
	if (from->checks == 0) {
		return;
	}
	if (into->checks == 0
	    || prober_state_rank((int) from->worst)
	        > prober_state_rank((int) into->worst)) {
		into->worst = from->worst;
	}
	into->checks += from->checks;
	into->failures += from->failures;
	into->degraded += from->degraded;
	into->maint += from->maint;
	into->latency_sum_ms += from->latency_sum_ms;
	for (int i = 0; i < AGG_BUCKETS; i++) {
		into->hist[i] += from->hist[i];
	}
}

double
prober_agg_uptime(const agg *a)
{
	/* Checks during maintenance count neither for nor against. */
	uint32_t counted = a->checks - a->maint;
	if (counted == 0) {
		return -1;
	}
	return 100.0 * (double) (counted - a->failures) / (double) counted;
}

uint32_t
prober_agg_percentile(const agg *a, double q)
{
	uint64_t total = 0, cum = 0;
	double rank;

	for (int i = 0; i < AGG_BUCKETS; i++) {
		total += a->hist[i];
	}
	if (total == 0) {
		return 0;
	}
	if (q < 0) {
		q = 0;
	} else if (q > 1) {
		q = 1;
	}
	rank = q * (double) total;
	if (rank < 1) {
		rank = 1;
	}
	for (int i = 0; i < AGG_BUCKETS; i++) {
		double lo = i == 0 ? 0 : prober_agg_bucket_le_ms[i - 1];
		double hi = prober_agg_bucket_le_ms[i];
		if (a->hist[i] == 0 || (double) (cum + a->hist[i]) < rank) {
			cum += a->hist[i];
			continue;
		}
		if (i == AGG_BUCKETS - 1) {
			return (uint32_t) lo; /* open bucket: its floor */
		}
		/* Linear within the bucket, as Prometheus'
		 * histogram_quantile does. */
		return (uint32_t) (lo
		    + (hi - lo) * (rank - (double) cum) / (double) a->hist[i]
		    + 0.5);
	}
	return prober_agg_bucket_le_ms[AGG_BUCKETS - 2];
}

#define AGG_VERSION 2

static size_t
put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t) v;
	return n;
}

/* 0, or OD_EMALFORMED past end or over 10 bytes. */
static int
get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (*p >= end) {
			return OD_EMALFORMED;
		}
		uint8_t b = *(*p)++;
		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return 0;
		}
	}
	return OD_EMALFORMED;
}

size_t
prober_agg_encode(const agg *a, uint8_t out[AGG_ENC_MAX])
{
	const uint64_t head[6] = { a->checks, a->failures, a->degraded,
		a->maint, a->worst, a->latency_sum_ms };
	size_t n = 0;
	uint8_t used = 0;

	out[n++] = AGG_VERSION;
	for (int i = 0; i < 6; i++) {
		n += put_varint(out + n, head[i]);
	}
	for (int i = 0; i < AGG_BUCKETS; i++) {
		used += a->hist[i] != 0;
	}
	out[n++] = used;
	for (int i = 0; i < AGG_BUCKETS; i++) {
		if (a->hist[i] != 0) {
			out[n++] = (uint8_t) i;
			n += put_varint(out + n, a->hist[i]);
		}
	}
	return n;
}

int
prober_agg_decode(const void *buf, size_t len, agg *out)
{
	const uint8_t *p = buf, *end = p + len;
	uint64_t head[6], v;
	agg a;

	memset(&a, 0, sizeof(a));
	if (len < 2 || *p++ != AGG_VERSION) {
		return OD_EMALFORMED;
	}
	for (int i = 0; i < 6; i++) {
		if (get_varint(&p, end, &head[i]) != 0
		    || (i < 5 && head[i] > UINT32_MAX)) {
			return OD_EMALFORMED;
		}
	}
	a.checks = (uint32_t) head[0];
	a.failures = (uint32_t) head[1];
	a.degraded = (uint32_t) head[2];
	a.maint = (uint32_t) head[3];
	a.worst = (uint32_t) head[4];
	a.latency_sum_ms = head[5];
	if (p >= end) {
		return OD_EMALFORMED;
	}
	for (unsigned used = *p++; used > 0; used--) {
		unsigned i;
		if (p >= end || (i = *p++) >= AGG_BUCKETS
		    || get_varint(&p, end, &v) != 0 || v > UINT32_MAX) {
			return OD_EMALFORMED;
		}
		a.hist[i] = (uint32_t) v;
	}
	if (p != end) {
		return OD_EMALFORMED;
	}
	*out = a;
	return 0;
}

int64_t
prober_agg_period_ms(int level)
{
	static const int64_t period[AGG_LEVELS] = { 60000, 3600000, 86400000 };
	return period[level];
}

int64_t
prober_agg_floor(int64_t ms, int level)
{
	int64_t p = prober_agg_period_ms(level);
	int64_t r = ms % p;
	return ms - (r < 0 ? r + p : r);
}

size_t
prober_history_key(uint8_t *out, const char *id, int64_t t)
{
	size_t n = strlen(id);
	if (n > HISTORY_ID_MAX) {
		return 0;
	}
	memcpy(out, id, n);
	out[n] = 0;
	od_put_be64(out + n + 1, (uint64_t) t);
	return n + 9;
}

int
prober_history_put_agg(
    store_txn *txn, MDB_dbi db, const char *id, int64_t start, const agg *a)
{
	uint8_t key[512], val[AGG_ENC_MAX];
	size_t klen = prober_history_key(key, id, start);
	if (klen == 0) {
		return OD_EINVAL;
	}
	return store_put(txn, db, key, klen, val, prober_agg_encode(a, val));
}

int
prober_history_walk(MDB_txn *txn, MDB_dbi db, const char *id, int64_t from,
    int64_t to, history_row_fn fn, void *arg)
{
	uint8_t key[512];
	size_t plen = strlen(id) + 1;
	size_t klen = prober_history_key(key, id, from);
	store_scan sc;
	MDB_val k, v;
	int rc, rv = 0;

	if (klen == 0) {
		return OD_EINVAL;
	}
	/* The target's rows (prefix: id and its NUL) from `from` on. */
	if ((rv = store_scan_open(&sc, txn, db, key, plen, NULL)) != 0
	    || (rv = store_scan_seek(&sc, key, klen)) != 0) {
		store_scan_close(&sc);
		return rv;
	}
	while ((rc = store_scan_next(&sc, &k, &v)) == 0) {
		int64_t t;
		if (k.mv_size != plen + 8) {
			break;
		}
		t = (int64_t) od_get_be64((const uint8_t *) k.mv_data + plen);
		if (t >= to || (rv = fn(arg, t, &v)) != 0) {
			break;
		}
	}
	if (rc == OD_EIO) {
		rv = OD_EIO;
	}
	store_scan_close(&sc);
	return rv;
}

int
prober_history_walk_back(MDB_txn *txn, MDB_dbi db, const char *id, size_t n,
    history_row_fn fn, void *arg)
{
	uint8_t key[512];
	size_t plen = strlen(id) + 1;
	size_t klen = prober_history_key(key, id, 0);
	store_scan sc;
	MDB_val k, v;
	int rc = 0, rv = 0;

	if (klen == 0) {
		return OD_EINVAL;
	}
	/* The target's rows (prefix: id and its NUL), newest first. */
	if ((rv = store_scan_open(&sc, txn, db, key, plen, NULL)) != 0) {
		return rv;
	}
	store_scan_reverse(&sc);
	for (; n > 0 && (rc = store_scan_next(&sc, &k, &v)) == 0; n--) {
		if (k.mv_size != plen + 8) {
			break;
		}
		if ((rv = fn(arg,
		         (int64_t) od_get_be64(
		             (const uint8_t *) k.mv_data + plen),
		         &v))
		    != 0) {
			break;
		}
	}
	if (rc == OD_EIO) {
		rv = OD_EIO;
	}
	store_scan_close(&sc);
	return rv;
}

static int
sum_row(void *arg, int64_t start, const MDB_val *v)
{
	agg a;
	(void) start;
	if (prober_agg_decode(v->mv_data, v->mv_size, &a) == 0) {
		prober_agg_merge(arg, &a);
	}
	return 0;
}

int
prober_history_sum(MDB_txn *txn, MDB_dbi db, const char *id, int64_t from,
    int64_t to, agg *out)
{
	agg sum;
	int rv;
	memset(&sum, 0, sizeof(sum));
	if ((rv = prober_history_walk(txn, db, id, from, to, sum_row, &sum))
	    == 0) {
		*out = sum;
	}
	return rv;
}

struct series {
	int64_t from;
	int64_t period;
	size_t n;
	agg *out;
};

static int
series_row(void *arg, int64_t start, const MDB_val *v)
{
	struct series *s = arg;
	size_t i = (size_t) ((start - s->from) / s->period);
	agg a;
	if (i < s->n && prober_agg_decode(v->mv_data, v->mv_size, &a) == 0) {
		prober_agg_merge(&s->out[i], &a);
	}
	return 0;
}

int
prober_history_series(MDB_txn *txn, MDB_dbi db, const char *id, int64_t from,
    int64_t period, size_t n, agg *out)
{
	struct series s = { from, period, n, out };
	memset(out, 0, n * sizeof(*out));
	return prober_history_walk(
	    txn, db, id, from, from + (int64_t) n * period, series_row, &s);
}

int
prober_history_retain(store_txn *txn, MDB_dbi db, const char *id,
    int64_t cutoff, size_t max, size_t *deleted)
{
	uint8_t key[512];
	size_t plen = strlen(id) + 1;
	size_t klen = prober_history_key(key, id, 0);
	MDB_cursor *cur = NULL;
	MDB_val k = { klen, key }, v;
	size_t n = 0;
	int rc, rv = 0;

	if (klen == 0) {
		return OD_EINVAL;
	}
	if (mdb_cursor_open(store_txn_mdb(txn), db, &cur) != 0) {
		return OD_EIO;
	}
	/* Re-seek after each delete rather than trust the cursor's position
	 * after mdb_cursor_del at a page end. */
	while (n < max) {
		k.mv_size = klen;
		k.mv_data = key;
		if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) != 0) {
			break;
		}
		if (k.mv_size < plen + 8 || memcmp(k.mv_data, key, plen) != 0
		    || (int64_t) od_get_be64(
		           (const uint8_t *) k.mv_data + plen)
		        >= cutoff) {
			break;
		}
		if ((rc = mdb_cursor_del(cur, 0)) != 0) {
			rv = rc == MDB_MAP_FULL ? OD_EMAPFULL : OD_EIO;
			goto out;
		}
		n++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		rv = OD_EIO;
	}
out:
	mdb_cursor_close(cur);
	if (rv == 0 && deleted != NULL) {
		*deleted = n;
	}
	return rv;
}

int
prober_history_first(MDB_txn *txn, MDB_dbi db, const char *id, int64_t *t)
{
	uint8_t key[512];
	size_t plen = strlen(id) + 1;
	size_t klen = prober_history_key(key, id, 0);
	store_scan sc;
	MDB_val k, v;
	int rc, rv = OD_ENOTFOUND;

	if (klen == 0) {
		return OD_EINVAL;
	}
	if ((rc = store_scan_open(&sc, txn, db, key, plen, NULL)) != 0) {
		return rc;
	}
	rc = store_scan_next(&sc, &k, &v);
	if (rc == 0 && k.mv_size >= plen + 8) {
		*t = (int64_t) od_get_be64((const uint8_t *) k.mv_data + plen);
		rv = 0;
	} else if (rc == OD_EIO) {
		rv = OD_EIO;
	}
	store_scan_close(&sc);
	return rv;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int
prober_history_retain_unlisted(store_txn *txn, MDB_dbi db,
    const char *const *keep, size_t n_keep, int64_t cutoff, size_t max,
    size_t *deleted)
{
	uint8_t key[HISTORY_ID_MAX + 1];
	char id[HISTORY_ID_MAX + 1];
	const char *idp = id;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t n = 0, d;
	int rc, rv = 0;

	if (mdb_cursor_open(store_txn_mdb(txn), db, &cur) != 0) {
		return OD_EIO;
	}
	/* One seek per target id present, however many rows each has: the
	 * rows of an id are [id 0x00, id 0x01), so seeking id 0x01 lands on
	 * the next id's first row (ids hold no control characters). */
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0 && n < max) {
		const uint8_t *nul = memchr(k.mv_data, 0, k.mv_size);
		size_t idlen = nul != NULL
		    ? (size_t) (nul - (const uint8_t *) k.mv_data)
		    : k.mv_size;
		if (nul == NULL || idlen > HISTORY_ID_MAX) {
			/* Not a history key: not ours to judge. */
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		memcpy(id, k.mv_data, idlen);
		id[idlen] = '\0';
		if (bsearch(&idp, keep, n_keep, sizeof(*keep), cmp_id)
		    == NULL) {
			/* prober_history_retain's cursor moves ours (LMDB
			 * fixes up the txn's cursors on delete): re-seek
			 * below. */
			if ((rv = prober_history_retain(
			         txn, db, id, cutoff, max - n, &d))
			    != 0) {
				goto out;
			}
			n += d;
		}
		memcpy(key, id, idlen);
		key[idlen] = 0x01;
		k.mv_size = idlen + 1;
		k.mv_data = key;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		rv = OD_EIO;
	}
out:
	mdb_cursor_close(cur);
	if (rv == 0 && deleted != NULL) {
		*deleted = n;
	}
	return rv;
}
