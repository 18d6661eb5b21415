/*
 * quorum — one decided state of a target from the latest views of
 * several locations. Pure (the caller passes the clock), so the rule is
 * unit-tested on its own: ties, stale locations, thresholds.
 *
 * Only reporting locations count: a location whose last view is older
 * than the time-out (its prober crashed, or is cut off from the decider)
 * is shown as not reporting and is neither up nor down. Down needs the
 * quorum (by default a majority of the reporting locations); fewer
 * locations saying down is a partial failure, shown as the target's
 * partial_down state (up, or degraded for a regional target) with the
 * locations named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prober.h"
#include "util/util.h"

#define S_UNKNOWN  OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UNKNOWN
#define S_UP       OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
#define S_DEGRADED OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED
#define S_DOWN     OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return x < y ? -1 : x > y;
}

/* "a, b, c" of the locations idx[0..n) into b. */
static void
names(sbuf *b, const quorum_vote *v, const uint8_t *idx, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		sbuf_printf(b, "%s%s", i ? ", " : "", v[idx[i]].location);
	}
}

static int
worse(int a, int b)
{
	return prober_state_rank(a) >= prober_state_rank(b) ? a : b;
}

void
prober_quorum_decide(const quorum_vote *v, size_t n, const quorum_rule *rule,
    int64_t now, quorum_decision *out)
{
	uint32_t lat[QUORUM_MAX_LOCATIONS];
	uint8_t deg_idx[QUORUM_MAX_LOCATIONS];
	const char *why = NULL;
	sbuf b = SBUF_INIT;

	memset(out, 0, sizeof(*out));
	if (n > QUORUM_MAX_LOCATIONS) {
		n = QUORUM_MAX_LOCATIONS;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].state == S_UNKNOWN) {
			continue; /* has not decided anything yet: abstains */
		}
		if (now - v[i].at_ms > rule->stale_ms) {
			out->stale_idx[out->n_stale++] = (uint8_t) i;
			continue;
		}
		lat[out->reporting++] = v[i].latency_ms;
		if (v[i].state == S_DOWN) {
			if (why == NULL && v[i].reason != NULL
			    && v[i].reason[0] != '\0') {
				why = v[i].reason;
			}
			out->down_idx[out->down++] = (uint8_t) i;
		} else if (v[i].state == S_DEGRADED) {
			deg_idx[out->degraded++] = (uint8_t) i;
		}
	}
	out->needed = rule->quorum > 0 ? rule->quorum : out->reporting / 2 + 1;
	if (out->reporting == 0) {
		out->state = S_UNKNOWN;
		sbuf_printf(&b, "no location reporting");
	} else {
		qsort(lat, out->reporting, sizeof(lat[0]), cmp_u32);
		out->latency_ms = lat[(out->reporting - 1) / 2];
		if (out->down >= out->needed) {
			out->state = S_DOWN;
		} else {
			out->state = S_UP;
			if (out->down > 0) {
				out->partial = true;
				out->state = rule->partial_down;
			}
			if (out->down + out->degraded >= out->needed) {
				out->state = worse(out->state, S_DEGRADED);
			}
		}
		if (out->down > 0) {
			sbuf_printf(&b, "down from ");
			names(&b, v, out->down_idx, out->down);
			if (out->partial) {
				sbuf_printf(&b, "%s (%u of %u, quorum %u)",
				    out->down == 1 ? " only" : "", out->down,
				    out->reporting, out->needed);
			} else {
				sbuf_printf(&b, " (%u of %u)", out->down,
				    out->reporting);
			}
			if (why != NULL) {
				sbuf_printf(&b, ": %s", why);
			}
		} else if (out->degraded > 0) {
			sbuf_printf(&b, "degraded from ");
			names(&b, v, deg_idx, out->degraded);
			sbuf_printf(
			    &b, " (%u of %u)", out->degraded, out->reporting);
		} else {
			sbuf_printf(&b, "up from %u location%s",
			    out->reporting, out->reporting == 1 ? "" : "s");
		}
	}
	if (out->n_stale > 0) {
		sbuf_printf(&b, "; ");
		names(&b, v, out->stale_idx, out->n_stale);
		sbuf_printf(&b, " not reporting");
	}
	od_strlcpy(
	    out->reason, b.data != NULL ? b.data : "", sizeof(out->reason));
	sbuf_free(&b);
}
