/*
 * probe_service — the suite watches itself: a `service` target is an
 * rpc ping of an opsdesk service. rpc_client_call blocks, so pings run
 * on a few threads of their own (one per service target, at most 8),
 * and a hung service never holds up the curl probes or another ping.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prober.h"
#include "rpc/rpc.h"
#include "util/util.h"

#define POOL_MAX_THREADS 8

struct service_pool {
	const target_set *ts;
	rpc_client **clients; /* by target index; NULL for other kinds */
	pthread_t threads[POOL_MAX_THREADS];
	unsigned n_threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t *queue; /* ring of target indices */
	size_t cap;
	size_t head;
	size_t len;
	bool stop;
	probe_done_fn done;
	void *arg;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* One ping: every opsdesk Request has `ping` as field 10 and every Reply
 * `error` as 1 and `ping` as 10, so ProberRequest/ProberReply speak to
 * any service. */
static void
ping(service_pool *p, size_t index, probe_result *r)
{
	const target *t = &p->ts->v[index];
	rpc_client *c = p->clients[index];
	Opsdesk__V1__ProberRequest req = OPSDESK__V1__PROBER_REQUEST__INIT;
	Opsdesk__V1__PingRequest pr = OPSDESK__V1__PING_REQUEST__INIT;
	ProtobufCMessage *out = NULL;
	const Opsdesk__V1__Error *e;
	int64_t start = od_mono_ms(), waited;
	int rv;

	memset(r, 0, sizeof(*r));
	r->cert_days_left = -1;
	r->observed = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN;
	/* The dial is asynchronous: give a fresh connection part of the
	 * time-out to come up before calling the service unreachable. */
	while (!rpc_client_connected(c)
	    && (waited = od_mono_ms() - start) < t->timeout_ms / 2
	    && waited < 2000) {
		sleep_ms(20);
	}
	req.method_case = OPSDESK__V1__PROBER_REQUEST__METHOD_PING;
	req.ping = &pr;
	start = od_mono_ms();
	rv = rpc_client_call(c, &req.base,
	    &opsdesk__v1__prober_reply__descriptor, &out, (int) t->timeout_ms);
	r->latency_ms = (uint32_t) (od_mono_ms() - start);
	r->at_ms = od_now_ms();
	if (rv == OD_ETIMEDOUT) {
		snprintf(r->error, sizeof(r->error),
		    "no ping reply in %lld ms", (long long) t->timeout_ms);
	} else if (rv != 0) {
		snprintf(
		    r->error, sizeof(r->error), "ping: %s", od_strerror(rv));
	} else if ((e = rpc_reply_error(out)) != NULL && e->code != 0) {
		snprintf(r->error, sizeof(r->error), "ping: %s %.100s",
		    rpc_error_code_name(e->code), e->message);
	} else {
		r->observed = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP;
	}
	protobuf_c_message_free_unpacked(out, NULL);
}

static void *
worker(void *arg)
{
	service_pool *p = arg;
	probe_result r;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		size_t index;
		while (!p->stop && p->len == 0) {
			pthread_cond_wait(&p->cv, &p->mu);
		}
		if (p->stop) {
			break;
		}
		index = p->queue[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		pthread_mutex_unlock(&p->mu);
		ping(p, index, &r);
		p->done(p->arg, index, &r);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
prober_service_pool_start(
    service_pool **out, const target_set *ts, probe_done_fn done, void *arg)
{
	service_pool *p;
	size_t n_service = 0;
	int rv = 0;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return OD_ENOMEM;
	}
	p->ts = ts;
	p->done = done;
	p->arg = arg;
	p->cap = ts->n + 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((p->clients = calloc(ts->n + 1, sizeof(*p->clients))) == NULL
	    || (p->queue = calloc(p->cap, sizeof(*p->queue))) == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ts->n; i++) {
		if (ts->v[i].kind != PROBE_SERVICE) {
			continue;
		}
		if ((rv = rpc_client_open(&p->clients[i], ts->v[i].service_url,
		         (int) ts->v[i].timeout_ms))
		    != 0) {
			goto out;
		}
		n_service++;
	}
	while (p->n_threads < n_service && p->n_threads < POOL_MAX_THREADS) {
		if (pthread_create(&p->threads[p->n_threads], NULL, worker, p)
		    != 0) {
			rv = OD_ENOMEM;
			goto out;
		}
		p->n_threads++;
	}
	*out = p;
	return 0;
out:
	prober_service_pool_stop(p);
	return rv;
}

int
prober_service_pool_submit(service_pool *p, size_t index)
{
	int rv = 0;
	pthread_mutex_lock(&p->mu);
	if (p->n_threads == 0 || p->clients[index] == NULL) {
		rv = OD_EINVAL;
	} else if (p->len == p->cap) {
		rv = OD_ELIMIT;
	} else {
		p->queue[(p->head + p->len) % p->cap] = index;
		p->len++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return rv;
}

void
prober_service_pool_stop(service_pool *p)
{
	if (p == NULL) {
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_threads; i++) {
		pthread_join(p->threads[i], NULL);
	}
	for (size_t i = 0; p->clients != NULL && i < p->ts->n; i++) {
		rpc_client_close(p->clients[i]);
	}
	free(p->clients);
	free(p->queue);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
