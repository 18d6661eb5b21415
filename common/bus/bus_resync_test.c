/*
 * bus_resync unit tests: the worker against a real peer over NNG
 * req/rep (an rpc_client dialing an echoing rep0 socket on inproc), so
 * "the peer is down" is what a service sees, not a flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "metrics/metrics.h"
#include "rpc/rpc.h"
#include "util/util.h"

/* Upper bound for something asynchronous to happen; never a measure. */
#define WAIT_MS 10000

/* ---- a peer that answers every request with its bytes ---- */

typedef struct peer {
	nng_socket sock;
	pthread_t th;
} peer;

static void *
peer_main(void *arg)
{
	peer *p = arg;
	nng_msg *m;
	while (nng_recvmsg(p->sock, &m, 0) == 0) {
		if (nng_sendmsg(p->sock, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
	return NULL;
}

static void
peer_start(peer *p, const char *url)
{
	assert_int_equal(nng_rep0_open(&p->sock), 0);
	assert_int_equal(nng_listen(p->sock, url, NULL, 0), 0);
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void
peer_stop(peer *p)
{
	assert_true(od_nng_close(p->sock));
	pthread_join(p->th, NULL);
}

/* ---- a source whose snapshot is one call to the peer ---- */

typedef struct source {
	rpc_client *client;
	atomic_int attempts;
	atomic_int applied;
	/* When set, the fetch blocks until released (a slow peer). */
	atomic_bool hold;
	atomic_bool in_fetch;
} source;

static int
fetch(void *arg)
{
	source *s = arg;
	void *out = NULL;
	size_t len = 0;
	int rv;

	atomic_fetch_add(&s->attempts, 1);
	atomic_store(&s->in_fetch, true);
	while (atomic_load(&s->hold)) {
		nng_msleep(1);
	}
	rv = rpc_client_call_raw(s->client, "snap", 4, &out, &len, 500);
	if (rv == 0) {
		assert_int_equal(len, 4);
		atomic_fetch_add(&s->applied, 1);
	}
	free(out);
	atomic_store(&s->in_fetch, false);
	return rv;
}

/* Poll cond(arg) for at most WAIT_MS. */
static bool
eventually(bool (*cond)(void *), void *arg)
{
	int64_t end = od_mono_ms() + WAIT_MS;
	while (!cond(arg)) {
		if (od_mono_ms() > end) {
			return false;
		}
		nng_msleep(2);
	}
	return true;
}

static bool
retried_twice(void *arg)
{
	return atomic_load(&((source *) arg)->attempts) >= 3;
}

typedef struct stale_args {
	bus_resync *r;
	source *s;
} stale_args;

/* Retried twice and waiting to try again: a source is not stale while
 * its fetch runs (a mark meanwhile makes it stale again), so a look
 * during the third attempt saw false (once, under TSan). */
static bool
retried_and_stale(void *arg)
{
	stale_args *a = arg;
	return retried_twice(a->s) && bus_resync_stale(a->r, 0);
}

typedef struct done_args {
	bus_resync *r;
	uint64_t n;
} done_args;

static bool
done_reached(void *arg)
{
	done_args *d = arg;
	return bus_resync_done(d->r, 0) >= d->n;
}

static bool
in_fetch(void *arg)
{
	return atomic_load(&((source *) arg)->in_fetch);
}

static bus_resync *
start(source *s, const char *url, int64_t period_ms, metrics *m)
{
	bus_resync *r = NULL;
	bus_resync_source src = { "peer", fetch, s, period_ms };
	bus_resync_options o = { &src, 1, 20, 80, m };

	memset(s, 0, sizeof(*s));
	assert_int_equal(rpc_client_open(&s->client, url, 500), 0);
	assert_int_equal(bus_resync_start(&r, &o), 0);
	return r;
}

/* The bug this worker fixes: the peer is down when the service starts;
 * the worker keeps trying and the snapshot arrives once it is up, with no
 * bus event to ask again. */
static void
test_peer_down_at_start(void **state)
{
	(void) state;
	const char *url = "inproc://resync-down-at-start";
	source s;
	peer p;
	metrics *m = NULL;
	sbuf text;

	assert_int_equal(metrics_new(&m), 0);
	bus_resync *r = start(&s, url, 0, m);
	stale_args sa = { r, &s };
	assert_true(eventually(retried_and_stale, &sa));
	assert_int_equal(atomic_load(&s.applied), 0);
	assert_int_equal(bus_resync_done(r, 0), 0);

	peer_start(&p, url);
	done_args d = { r, 1 };
	assert_true(eventually(done_reached, &d));
	assert_int_equal(atomic_load(&s.applied), 1);
	assert_false(bus_resync_stale(r, 0));
	sbuf_init(&text);
	assert_int_equal(metrics_render(m, &text), 0);
	assert_non_null(strstr(text.data,
	    "opsdesk_resyncs_total{source=\"peer\",result=\"ok\"} 1"));
	assert_non_null(strstr(text.data,
	    "opsdesk_resyncs_total{source=\"peer\",result=\"failed\"}"));
	sbuf_free(&text);

	bus_resync_stop(r);
	rpc_client_close(s.client);
	peer_stop(&p);
	metrics_free(m);
}

/* A mark that arrives while a fetch runs (a gap opened meanwhile) is
 * fetched again afterwards; marks while idle fetch once each. */
static void
test_mark_during_fetch(void **state)
{
	(void) state;
	const char *url = "inproc://resync-mark-during";
	source s;
	peer p;

	peer_start(&p, url);
	bus_resync *r = start(&s, url, 0, NULL);
	done_args d = { r, 1 };
	assert_true(eventually(done_reached, &d));

	atomic_store(&s.hold, true);
	bus_resync_mark(r, 0, "gap");
	assert_true(eventually(in_fetch, &s));
	bus_resync_mark(r, -1, "gap"); /* during the fetch */
	assert_true(bus_resync_stale(r, 0));
	atomic_store(&s.hold, false);
	d.n = 3;
	assert_true(eventually(done_reached, &d));
	assert_int_equal(atomic_load(&s.applied), 3);

	/* Out of range: ignored. */
	bus_resync_mark(r, 7, "nothing");
	bus_resync_stop(r);
	rpc_client_close(s.client);
	peer_stop(&p);
}

/* period_ms: fetched again without anyone asking. */
static void
test_period(void **state)
{
	(void) state;
	const char *url = "inproc://resync-period";
	source s;
	peer p;

	peer_start(&p, url);
	bus_resync *r = start(&s, url, 30, NULL);
	done_args d = { r, 3 };
	assert_true(eventually(done_reached, &d));
	bus_resync_stop(r);
	rpc_client_close(s.client);
	peer_stop(&p);
}

static void
test_errors(void **state)
{
	(void) state;
	bus_resync *r = NULL;
	bus_resync_source bad = { "x", NULL, NULL, 0 };
	bus_resync_options o = { &bad, 1, 0, 0, NULL };

	assert_int_equal(bus_resync_start(&r, NULL), OD_EINVAL);
	assert_int_equal(bus_resync_start(&r, &o), OD_EINVAL);
	o.n_sources = 0;
	assert_int_equal(bus_resync_start(&r, &o), OD_EINVAL);
	assert_null(r);
	bus_resync_stop(NULL);
	bus_resync_mark(NULL, -1, "x");
	assert_int_equal(bus_resync_done(NULL, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_peer_down_at_start),
		cmocka_unit_test(test_mark_during_fetch),
		cmocka_unit_test(test_period),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
