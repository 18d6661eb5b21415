/*
 * stats.c — percentiles for the stats method (first response times), and
 * the support objectives: what a ticket change adds to the day
 * aggregates, and their evaluation over a window.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ticket.h"

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *) a;
	int64_t y = *(const int64_t *) b;
	return (x > y) - (x < y);
}

int64_t
ticket_percentile(int64_t *v, size_t n, double p)
{
	size_t rank;

	if (n == 0) {
		return -1;
	}
	qsort(v, n, sizeof(*v), cmp_i64);
	if (p <= 0) {
		return v[0];
	}
	/* Nearest rank: the smallest value with at least p% at or below. */
	rank = (size_t) ceil(p / 100.0 * (double) n);
	if (rank < 1) {
		rank = 1;
	}
	if (rank > n) {
		rank = n;
	}
	return v[rank - 1];
}

/* ---- support objectives: day aggregates and their evaluation ---- */

static bool
fr_concluded(const tk_ticket *t)
{
	return t->first_response_ms != 0 || t->first_response_breached;
}

static int64_t
day_of(int64_t ms)
{
	return ms >= 0 ? ms / TICKET_DAY_MS : 0;
}

size_t
ticket_support_changes(const tk_ticket *old, const tk_ticket *t, int64_t now,
    int64_t day[2], ticket_support_day delta[2])
{
	size_t n = 0;

	if (fr_concluded(t) && (old == NULL || !fr_concluded(old))) {
		memset(&delta[n], 0, sizeof(delta[n]));
		if (t->first_response_breached) {
			delta[n].fr_missed = 1;
		} else {
			delta[n].fr_met = 1;
		}
		/* A reply on time counts on its day; a breach when flagged. */
		day[n++] = day_of(
		    t->first_response_ms != 0 && !t->first_response_breached
		        ? t->first_response_ms
		        : now);
	}
	if (t->rating != 0 && (old == NULL || old->rating == 0)) {
		memset(&delta[n], 0, sizeof(delta[n]));
		delta[n].csat_sum = t->rating;
		delta[n].csat_count = 1;
		day[n++] = day_of(t->rated_ms != 0 ? t->rated_ms : now);
	}
	return n;
}

void
ticket_support_day_encode(
    const ticket_support_day *d, uint8_t out[TICKET_SUPPORT_DAY_LEN])
{
	store_key_u64(out, d->fr_met);
	store_key_u64(out + 8, d->fr_missed);
	store_key_u64(out + 16, d->csat_sum);
	store_key_u64(out + 24, d->csat_count);
}

int
ticket_support_day_decode(const void *v, size_t len, ticket_support_day *out)
{
	const uint8_t *p = v;

	if (len != TICKET_SUPPORT_DAY_LEN) {
		return OD_EMALFORMED;
	}
	out->fr_met = store_key_get_u64(p);
	out->fr_missed = store_key_get_u64(p + 8);
	out->csat_sum = store_key_get_u64(p + 16);
	out->csat_count = store_key_get_u64(p + 24);
	return 0;
}

void
ticket_support_day_add(ticket_support_day *to, const ticket_support_day *d)
{
	to->fr_met += d->fr_met;
	to->fr_missed += d->fr_missed;
	to->csat_sum += d->csat_sum;
	to->csat_count += d->csat_count;
}

void
ticket_objectives_eval(const ticket_objectives *o,
    const ticket_support_day *sum,
    ticket_objective_result out[TICKET_N_OBJECTIVES])
{
	ticket_objective_result *fr = &out[0], *cs = &out[1];
	uint64_t total = sum->fr_met + sum->fr_missed;

	memset(out, 0, TICKET_N_OBJECTIVES * sizeof(*out));
	fr->name = "support_first_response";
	fr->target = o->first_response_pct;
	fr->target_ratio = o->first_response_pct / 100.0;
	fr->good = sum->fr_met;
	fr->total = total;
	fr->actual = -1;
	fr->attainment_ratio = 1;
	fr->budget_remaining_ratio = 1;
	if (total > 0) {
		/* The budget: the misses the target allows over the tickets
		 * counted so far. */
		double allowed = (1.0 - fr->target_ratio) * (double) total;
		fr->attainment_ratio = (double) sum->fr_met / (double) total;
		fr->actual = 100.0 * fr->attainment_ratio;
		fr->budget_remaining_ratio = allowed > 0
		    ? 1.0 - (double) sum->fr_missed / allowed
		    : (sum->fr_missed == 0 ? 1 : -1);
	}
	fr->met = fr->attainment_ratio >= fr->target_ratio;

	cs->name = "support_csat";
	cs->target = o->csat_min;
	cs->target_ratio = o->csat_min / 5.0;
	cs->good = sum->csat_sum;
	cs->total = sum->csat_count;
	cs->actual = -1;
	cs->attainment_ratio = 1;
	cs->budget_remaining_ratio = 1;
	if (sum->csat_count > 0) {
		cs->actual = (double) sum->csat_sum / (double) sum->csat_count;
		cs->attainment_ratio = cs->actual / 5.0;
	}
	cs->met = sum->csat_count == 0 || cs->actual >= o->csat_min;
}
