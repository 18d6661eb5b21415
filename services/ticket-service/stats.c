/*
 * stats.c — percentiles for the stats method (first response times).
 */
#include <math.h>
#include <stdlib.h>

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
