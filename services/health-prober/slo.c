/*
 * slo — objectives of probed targets: config, rolling counters, budgets
 * and burn-rate alerts (see slo.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prober.h"
#include "slo.h"
#include "util/util.h"

#define MINUTE_MS 60000LL
#define HOUR_MS   3600000LL
#define DAY_MS    86400000LL
/* Objectives up to this long count in minute slots, longer ones in
 * hour slots (a ring of at most 721 slots either way up to 30 days). */
#define FINE_MAX_MS (12 * HOUR_MS)

const char *const slo_kind_names[]
    = { "availability", "latency", "error_ratio", NULL };
const char *const slo_alert_names[] = { "", "warn", "page", NULL };

/* The quantiles a latency objective names: key and percent. */
static const struct {
	const char *key;
	double percent;
} quantiles[] = {
	{ "p50", 50.0 },
	{ "p75", 75.0 },
	{ "p90", 90.0 },
	{ "p95", 95.0 },
	{ "p99", 99.0 },
	{ "p99.9", 99.9 },
};
#define N_QUANTILES (sizeof(quantiles) / sizeof(quantiles[0]))

/* ---- config ---- */

static int
slo_fail(char *err, size_t errlen, const char *path, const char *key,
    const char *what)
{
	snprintf(
	    err, errlen, "%s.slo%s%s: %s", path, key[0] ? "." : "", key, what);
	return OD_EINVAL;
}

static int
parse_latency(const cJSON *lat, const char *spath, slo_objective *o, char *err,
    size_t errlen)
{
	int found = 0;
	int rv;

	for (size_t i = 0; i < N_QUANTILES; i++) {
		int64_t ms;
		if (cJSON_GetObjectItemCaseSensitive(lat, quantiles[i].key)
		    == NULL) {
			continue;
		}
		if ((rv = config_get_duration_ms(lat, spath, quantiles[i].key,
		         0, 1, 60000, &ms, err, errlen))
		    != 0) {
			return rv;
		}
		o->kind = SLO_LATENCY;
		o->target = quantiles[i].percent;
		o->latency_ms = (uint32_t) ms;
		od_strlcpy(o->quantile, quantiles[i].key, sizeof(o->quantile));
		found++;
	}
	if (found != 1) {
		snprintf(err, errlen,
		    "%s: expected one quantile with its bound, like "
		    "{\"p95\": \"100ms\"} (p50, p75, p90, p95, p99 or p99.9)",
		    spath);
		return OD_EINVAL;
	}
	return 0;
}

static int
parse_error_ratio(const cJSON *er, const char *spath, const target *t,
    slo_objective *o, char *err, size_t errlen)
{
	const char *metric = NULL;
	double max;
	int rv;

	if (t->kind != PROBE_METRIC) {
		snprintf(err, errlen,
		    "%s: only a metric target exposes an error ratio", spath);
		return OD_EINVAL;
	}
	if ((rv = config_get_string(
	         er, spath, "metric", NULL, &metric, err, errlen))
	        != 0
	    || (rv = config_get_double(
	            er, spath, "max", 1.0, 0.001, 99.0, &max, err, errlen))
	        != 0) {
		return rv;
	}
	for (uint32_t k = 0; metric != NULL && k < t->n_metrics; k++) {
		if (strcmp(t->metrics[k].name, metric) == 0) {
			o->kind = SLO_ERROR_RATIO;
			o->target = 100.0 - max;
			o->metric = k;
			return 0;
		}
	}
	snprintf(err, errlen,
	    "%s.metric: expected the name of one of the target's values (a "
	    "percentage of errors)",
	    spath);
	return OD_EINVAL;
}

int
prober_slo_parse(const cJSON *o, const char *path, const target *t,
    slo_spec *out, bool *has, char *err, size_t errlen)
{
	const cJSON *s = NULL, *lat = NULL, *er = NULL;
	char spath[96];
	slo_spec spec;
	int64_t w;
	int rv;

	if ((rv = config_get_object(o, path, "slo", &s, err, errlen)) != 0) {
		return rv;
	}
	if (s == NULL) {
		*has = false;
		return 0;
	}
	memset(&spec, 0, sizeof(spec));
	snprintf(spath, sizeof(spath), "%s.slo", path);
	if ((rv = config_get_duration_ms(s, spath, "window", 30 * DAY_MS,
	         MINUTE_MS, 90 * DAY_MS, &w, err, errlen))
	        != 0
	    || (rv = config_get_bool(
	            s, spath, "public", false, &spec.public, err, errlen))
	        != 0) {
		return rv;
	}
	if (w % MINUTE_MS != 0 || (w > FINE_MAX_MS && w % HOUR_MS != 0)) {
		return slo_fail(err, errlen, path, "window",
		    "expected whole minutes up to 12h, whole hours above");
	}
	spec.window_ms = w;
	if (spec.public && !t->public) {
		return slo_fail(err, errlen, path, "public",
		    "the target itself is not public");
	}
	if (cJSON_GetObjectItemCaseSensitive(s, "availability") != NULL) {
		slo_objective *ob = &spec.obj[spec.n_obj++];
		ob->kind = SLO_AVAILABILITY;
		if ((rv = config_get_double(s, spath, "availability", 99.9,
		         1.0, 99.9999, &ob->target, err, errlen))
		    != 0) {
			return rv;
		}
	}
	if ((rv = config_get_object(s, spath, "latency", &lat, err, errlen))
	    != 0) {
		return rv;
	}
	if (lat != NULL) {
		char lpath[112];
		snprintf(lpath, sizeof(lpath), "%s.latency", spath);
		if ((rv = parse_latency(
		         lat, lpath, &spec.obj[spec.n_obj++], err, errlen))
		    != 0) {
			return rv;
		}
	}
	if ((rv = config_get_object(s, spath, "error_ratio", &er, err, errlen))
	    != 0) {
		return rv;
	}
	if (er != NULL) {
		char epath[112];
		snprintf(epath, sizeof(epath), "%s.error_ratio", spath);
		if ((rv = parse_error_ratio(
		         er, epath, t, &spec.obj[spec.n_obj++], err, errlen))
		    != 0) {
			return rv;
		}
	}
	if (spec.n_obj == 0) {
		return slo_fail(err, errlen, path, "",
		    "expected at least one of availability, latency, "
		    "error_ratio");
	}
	*out = spec;
	*has = true;
	return 0;
}

bool
prober_slo_spec_equal(const slo_spec *a, const slo_spec *b)
{
	if (a == NULL || b == NULL) {
		return a == b;
	}
	if (a->window_ms != b->window_ms || a->public != b->public
	    || a->n_obj != b->n_obj) {
		return false;
	}
	for (int k = 0; k < a->n_obj; k++) {
		const slo_objective *x = &a->obj[k], *y = &b->obj[k];
		if (x->kind != y->kind || x->target != y->target
		    || x->latency_ms != y->latency_ms
		    || x->metric != y->metric) {
			return false;
		}
	}
	return true;
}

static int64_t
whole_minutes(int64_t ms)
{
	int64_t m = (ms + MINUTE_MS - 1) / MINUTE_MS;
	return (m < 1 ? 1 : m) * MINUTE_MS;
}

void
prober_slo_burn_windows(int64_t window_ms, int64_t out[SLO_BURN_WINDOWS])
{
	/* The workbook's 1 h, 5 min, 6 h and 30 min of 30 days. */
	out[SLO_FAST_LONG] = whole_minutes(window_ms / 720);
	out[SLO_FAST_SHORT] = whole_minutes(window_ms / 8640);
	out[SLO_SLOW_LONG] = whole_minutes(window_ms / 120);
	out[SLO_SLOW_SHORT] = whole_minutes(window_ms / 1440);
}

const char *
prober_slo_duration_name(int64_t ms, char *buf, size_t size)
{
	if (ms > 0 && ms % DAY_MS == 0) {
		snprintf(buf, size, "%lldd", (long long) (ms / DAY_MS));
	} else if (ms > 0 && ms % HOUR_MS == 0) {
		snprintf(buf, size, "%lldh", (long long) (ms / HOUR_MS));
	} else if (ms > 0 && ms % MINUTE_MS == 0) {
		snprintf(buf, size, "%lldm", (long long) (ms / MINUTE_MS));
	} else {
		snprintf(buf, size, "%llds", (long long) (ms / 1000));
	}
	return buf;
}

/* ---- rolling counters ---- */

int
prober_slo_ring_init(slo_ring *r, int64_t slice_ms, uint32_t n,
    const uint32_t *lens, uint8_t n_win)
{
	memset(r, 0, sizeof(*r));
	if (n_win > SLO_RING_WINDOWS || slice_ms <= 0) {
		return OD_EINVAL;
	}
	for (uint8_t w = 0; w < n_win; w++) {
		if (lens[w] == 0 || lens[w] >= n) {
			return OD_EINVAL;
		}
		r->win_len[w] = lens[w];
	}
	if ((r->b = calloc(n, sizeof(*r->b))) == NULL) {
		return OD_ENOMEM;
	}
	r->n = n;
	r->n_win = n_win;
	r->slice_ms = slice_ms;
	return 0;
}

void
prober_slo_ring_fini(slo_ring *r)
{
	if (r != NULL) {
		free(r->b);
		memset(r, 0, sizeof(*r));
	}
}

static int64_t
floor_to(int64_t t, int64_t slice)
{
	return t - ((t % slice) + slice) % slice;
}

void
prober_slo_ring_advance(slo_ring *r, int64_t now)
{
	int64_t start, steps;

	if (r->n == 0) {
		return;
	}
	start = floor_to(now, r->slice_ms);
	if (r->cur_start == 0) {
		r->cur_start = start;
		return;
	}
	if (start <= r->cur_start) {
		return;
	}
	steps = (start - r->cur_start) / r->slice_ms;
	if (steps >= (int64_t) r->n) {
		/* Everything in the ring is older than every window. */
		memset(r->b, 0, r->n * sizeof(*r->b));
		memset(r->win_total, 0, sizeof(r->win_total));
		memset(r->win_bad, 0, sizeof(r->win_bad));
		r->cur_start = start;
		return;
	}
	for (int64_t s = 0; s < steps; s++) {
		uint32_t next = (r->cur + 1) % r->n;
		/* Window w holds slots cur-len+1 .. cur: as cur moves on,
		 * slot next-len leaves it. */
		for (uint8_t w = 0; w < r->n_win; w++) {
			const slo_bucket *out
			    = &r->b[(next + r->n - r->win_len[w]) % r->n];
			r->win_total[w] -= out->total;
			r->win_bad[w] -= out->bad;
		}
		r->b[next].total = 0;
		r->b[next].bad = 0;
		r->cur = next;
	}
	r->cur_start = start;
}

void
prober_slo_ring_add(slo_ring *r, int64_t at, uint32_t total, uint32_t bad)
{
	int64_t back;
	slo_bucket *b;

	if (r->n == 0 || (total == 0 && bad == 0)) {
		return;
	}
	prober_slo_ring_advance(r, at);
	back = (r->cur_start - floor_to(at, r->slice_ms)) / r->slice_ms;
	if (back < 0 || back >= (int64_t) r->n - 1) {
		return;
	}
	b = &r->b[(r->cur + r->n - (uint32_t) back) % r->n];
	/* Saturate rather than wrap (a slot never sees 4 billion). */
	if (b->total > UINT32_MAX - total || b->bad > UINT32_MAX - bad) {
		return;
	}
	b->total += total;
	b->bad += bad;
	for (uint8_t w = 0; w < r->n_win; w++) {
		if ((uint32_t) back < r->win_len[w]) {
			r->win_total[w] += total;
			r->win_bad[w] += bad;
		}
	}
}

/* ---- one target's objectives ---- */

static int
obj_init(slo_obj_rt *o, const slo_spec *spec)
{
	int64_t bw[SLO_BURN_WINDOWS];
	/* Slots as coarse as the windows allow, to keep 10,000 objectives
	 * small: the shortest burn window (window/8640: 5 min of 30 d) in
	 * whole minutes, and 1/240 of the objective's window in whole hours
	 * (3 h of 30 d), both seeded exactly from the minute and hour
	 * aggregates. */
	int64_t fine = spec->window_ms / 8640 / MINUTE_MS * MINUTE_MS;
	int64_t coarse = spec->window_ms / 240 / HOUR_MS * HOUR_MS;
	uint32_t lens[SLO_RING_WINDOWS], max = 0;
	uint8_t n = 0;
	int rv;

	fine = fine < MINUTE_MS ? MINUTE_MS : fine;
	coarse = coarse < HOUR_MS ? HOUR_MS : coarse;
	prober_slo_burn_windows(spec->window_ms, bw);
	/* A window of k slots is the one filling and the k - 1 before it:
	 * a 1-minute window of a 1 h objective resolves within a minute of
	 * a recovery. */
	for (int w = 0; w < SLO_BURN_WINDOWS; w++) {
		lens[n++] = (uint32_t) ((bw[w] + fine - 1) / fine);
	}
	if (spec->window_ms <= FINE_MAX_MS) {
		lens[n++] = (uint32_t) ((spec->window_ms + fine - 1) / fine);
	}
	for (uint8_t w = 0; w < n; w++) {
		max = lens[w] > max ? lens[w] : max;
	}
	if ((rv = prober_slo_ring_init(&o->fine, fine, max + 1, lens, n))
	    != 0) {
		return rv;
	}
	if (spec->window_ms > FINE_MAX_MS) {
		uint32_t len
		    = (uint32_t) ((spec->window_ms + coarse - 1) / coarse);
		if ((rv = prober_slo_ring_init(
		         &o->coarse, coarse, len + 1, &len, 1))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

void
prober_slo_rt_free(slo_rt *s)
{
	if (s == NULL) {
		return;
	}
	for (int k = 0; k < s->n; k++) {
		prober_slo_ring_fini(&s->o[k].fine);
		prober_slo_ring_fini(&s->o[k].coarse);
	}
	free(s);
}

int
prober_slo_rt_new(const slo_spec *spec, slo_rt **out)
{
	slo_rt *s = calloc(1, sizeof(*s));
	int rv;

	if (s == NULL) {
		return OD_ENOMEM;
	}
	for (int k = 0; k < spec->n_obj; k++) {
		s->n++;
		if ((rv = obj_init(&s->o[k], spec)) != 0) {
			prober_slo_rt_free(s);
			return rv;
		}
	}
	*out = s;
	return 0;
}

/* Checks of a with latency above ms, interpolated in its bucket. */
static uint32_t
agg_slower_than(const agg *a, uint32_t ms)
{
	double slow = 0;
	for (int i = 0; i < AGG_BUCKETS; i++) {
		double lo = i == 0 ? 0 : prober_agg_bucket_le_ms[i - 1];
		double hi = prober_agg_bucket_le_ms[i];
		if (a->hist[i] == 0 || hi <= ms) {
			continue;
		}
		if (lo >= ms || i == AGG_BUCKETS - 1) {
			slow += a->hist[i];
		} else {
			slow += a->hist[i] * (hi - ms) / (hi - lo);
		}
	}
	return (uint32_t) (slow + 0.5);
}

void
prober_slo_agg_counts(
    const slo_objective *o, const agg *a, uint32_t *total, uint32_t *bad)
{
	uint32_t counted = a->checks > a->maint ? a->checks - a->maint : 0;
	*total = *bad = 0;
	switch (o->kind) {
	case SLO_AVAILABILITY:
		*total = counted;
		*bad = a->failures < counted ? a->failures : counted;
		break;
	case SLO_LATENCY: {
		/* Answers only (an outage is availability's); the histogram
		 * holds the failures too, taken as the slowest. */
		uint32_t slow = agg_slower_than(a, o->latency_ms);
		*total = counted > a->failures ? counted - a->failures : 0;
		slow = slow > a->failures ? slow - a->failures : 0;
		*bad = slow < *total ? slow : *total;
		break;
	}
	default:
		break;
	}
}

typedef struct seed_ctx {
	slo_rt *s;
	const slo_spec *spec;
	bool coarse;
} seed_ctx;

static int
seed_row(void *arg, int64_t t, const MDB_val *v)
{
	seed_ctx *c = arg;
	agg a;
	if (prober_agg_decode(v->mv_data, v->mv_size, &a) != 0) {
		return 0;
	}
	for (int k = 0; k < c->s->n; k++) {
		slo_obj_rt *o = &c->s->o[k];
		uint32_t total, bad;
		prober_slo_agg_counts(&c->spec->obj[k], &a, &total, &bad);
		prober_slo_ring_add(
		    c->coarse ? &o->coarse : &o->fine, t, total, bad);
	}
	return 0;
}

int
prober_slo_rt_seed(slo_rt *s, const slo_spec *spec, MDB_txn *txn, store *st,
    const char *id, int64_t now)
{
	seed_ctx c = { s, spec, false };
	int64_t fine_from = 0, coarse_from = 0;
	int rv;

	for (int k = 0; k < s->n; k++) {
		slo_obj_rt *o = &s->o[k];
		prober_slo_ring_advance(&o->fine, now);
		prober_slo_ring_advance(&o->coarse, now);
		fine_from = o->fine.cur_start
		    - (int64_t) (o->fine.n - 2) * o->fine.slice_ms;
		if (o->coarse.n > 0) {
			coarse_from = o->coarse.cur_start
			    - (int64_t) (o->coarse.n - 2) * o->coarse.slice_ms;
		}
	}
	if ((rv = prober_history_walk(txn, store_db(st, PDB_MINUTE), id,
	         fine_from, now + 1, seed_row, &c))
	    != 0) {
		return rv;
	}
	if (coarse_from != 0) {
		c.coarse = true;
		rv = prober_history_walk(txn, store_db(st, PDB_HOUR), id,
		    coarse_from, now + 1, seed_row, &c);
	}
	return rv;
}

void
prober_slo_record(slo_rt *s, const slo_spec *spec, int64_t at, bool maint,
    bool down, uint32_t latency_ms)
{
	if (maint) {
		return; /* maintenance spends no budget */
	}
	for (int k = 0; k < s->n; k++) {
		const slo_objective *ob = &spec->obj[k];
		slo_obj_rt *o = &s->o[k];
		uint32_t total, bad;
		if (ob->kind == SLO_AVAILABILITY) {
			total = 1;
			bad = down;
		} else if (ob->kind == SLO_LATENCY && !down) {
			total = 1;
			bad = latency_ms > ob->latency_ms;
		} else {
			continue;
		}
		prober_slo_ring_add(&o->fine, at, total, bad);
		prober_slo_ring_add(&o->coarse, at, total, bad);
	}
}

void
prober_slo_record_metric(slo_rt *s, const slo_spec *spec,
    uint32_t metric_index, double value, int64_t at, bool maint)
{
	if (maint || !isfinite(value)) {
		return;
	}
	for (int k = 0; k < s->n; k++) {
		const slo_objective *ob = &spec->obj[k];
		/* A sample weighs 1000: bad is its error per mille. */
		double v = value < 0 ? 0 : value > 100 ? 100 : value;
		uint32_t bad = (uint32_t) lround(v * 10.0);
		if (ob->kind != SLO_ERROR_RATIO
		    || ob->metric != metric_index) {
			continue;
		}
		prober_slo_ring_add(&s->o[k].fine, at, 1000, bad);
		prober_slo_ring_add(&s->o[k].coarse, at, 1000, bad);
	}
}

static void
figures(slo_obj_rt *o, const slo_spec *spec, int k, int64_t now,
    slo_obj_status *out)
{
	double allowed = 1.0 - spec->obj[k].target / 100.0;
	const slo_ring *wr;
	int wi;

	memset(out, 0, sizeof(*out));
	prober_slo_ring_advance(&o->fine, now);
	prober_slo_ring_advance(&o->coarse, now);
	prober_slo_burn_windows(spec->window_ms, out->burn_ms);
	for (int w = 0; w < SLO_BURN_WINDOWS; w++) {
		uint64_t t = o->fine.win_total[w];
		out->burn[w] = t == 0
		    ? 0
		    : ((double) o->fine.win_bad[w] / (double) t) / allowed;
	}
	wr = o->coarse.n > 0 ? &o->coarse : &o->fine;
	wi = o->coarse.n > 0 ? 0 : SLO_BURN_WINDOWS;
	out->total = wr->win_total[wi];
	out->bad = wr->win_bad[wi];
	out->budget_min = allowed * (double) spec->window_ms / MINUTE_MS;
	if (out->total == 0) {
		out->attainment = -1;
		out->budget_left = 1.0;
	} else {
		double bad_ratio = (double) out->bad / (double) out->total;
		out->attainment = 100.0 * (1.0 - bad_ratio);
		out->budget_left = 1.0 - bad_ratio / allowed;
	}
	if (out->burn[SLO_FAST_LONG] >= SLO_PAGE_BURN
	    && out->burn[SLO_FAST_SHORT] >= SLO_PAGE_BURN) {
		out->condition = SLO_ALERT_PAGE;
	} else if (out->burn[SLO_SLOW_LONG] >= SLO_WARN_BURN
	    && out->burn[SLO_SLOW_SHORT] >= SLO_WARN_BURN) {
		out->condition = SLO_ALERT_WARN;
	} else {
		out->condition = SLO_ALERT_NONE;
	}
	out->alert = o->alert;
}

void
prober_slo_peek(
    slo_rt *s, const slo_spec *spec, int k, int64_t now, slo_obj_status *out)
{
	figures(&s->o[k], spec, k, now, out);
}

int
prober_slo_eval(slo_rt *s, const slo_spec *spec, int k, int64_t now,
    bool maint, slo_obj_status *out)
{
	slo_obj_rt *o = &s->o[k];

	figures(o, spec, k, now, out);
	if (out->condition > o->alert && !maint) {
		o->alert = (uint8_t) out->condition;
		if (o->alert_since_ms == 0) {
			o->alert_since_ms = now;
		}
		out->alert = o->alert;
		return SLO_EVENT_FIRING;
	}
	if (out->condition == SLO_ALERT_NONE && o->alert != SLO_ALERT_NONE
	    && (o->fine.win_total[SLO_FAST_SHORT] > 0
	        || o->fine.win_total[SLO_SLOW_SHORT] > 0)) {
		o->alert = SLO_ALERT_NONE;
		o->alert_since_ms = 0;
		out->alert = SLO_ALERT_NONE;
		return SLO_EVENT_RESOLVED;
	}
	return SLO_EVENT_NONE;
}

const char *
prober_slo_describe(
    const target *t, const slo_objective *o, char *buf, size_t size)
{
	switch (o->kind) {
	case SLO_AVAILABILITY:
		snprintf(buf, size, "availability %g %%", o->target);
		break;
	case SLO_LATENCY:
		snprintf(buf, size, "%s latency <= %u ms", o->quantile,
		    o->latency_ms);
		break;
	default:
		snprintf(buf, size, "errors (%s) <= %g %%",
		    t != NULL && o->metric < t->n_metrics
		        ? t->metrics[o->metric].name
		        : "?",
		    100.0 - o->target);
		break;
	}
	return buf;
}
