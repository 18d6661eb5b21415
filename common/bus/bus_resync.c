/*
 * bus_resync — the worker that fetches stale sources from their owners'
 * snapshots (see bus.h). One thread; a fetch runs with the lock released
 * so marking never waits for a peer.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "log/log.h"
#include "util/util.h"

typedef struct resync_entry {
	bus_resync_source src;
	char *name;
	bool stale;
	int64_t due_ms;     /* od_mono_ms of the next try (backoff) */
	int64_t backoff_ms; /* 0 after a success */
	int64_t period_due_ms;
	uint64_t done;
	metric *ok;
	metric *failed;
} resync_entry;

struct bus_resync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool stopping;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	resync_entry *e;
	size_t n;
};

/* The earliest time anything is due; INT64_MAX for nothing. */
static int64_t
next_due(bus_resync *r)
{
	int64_t due = INT64_MAX;
	for (size_t i = 0; i < r->n; i++) {
		resync_entry *e = &r->e[i];
		if (e->stale && e->due_ms < due) {
			due = e->due_ms;
		}
		if (e->src.period_ms > 0 && e->period_due_ms < due) {
			due = e->period_due_ms;
		}
	}
	return due;
}

static void *
resync_main(void *arg)
{
	bus_resync *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->stopping) {
		int64_t now = od_mono_ms();
		resync_entry *run = NULL;

		for (size_t i = 0; i < r->n; i++) {
			resync_entry *e = &r->e[i];
			if (e->src.period_ms > 0 && now >= e->period_due_ms) {
				e->stale = true;
				e->period_due_ms = now + e->src.period_ms;
			}
			if (run == NULL && e->stale && now >= e->due_ms) {
				run = e;
			}
		}
		if (run == NULL) {
			int64_t due = next_due(r);
			/* Wake at least once a minute: a cheap guard against
			 * anything unforeseen about the clock. */
			int64_t wait = due == INT64_MAX ? 60000 : due - now;
			(void) od_cond_wait_ms(
			    &r->cv, &r->mu, wait > 60000 ? 60000 : wait);
			continue;
		}
		run->stale = false;
		pthread_mutex_unlock(&r->mu);
		int rv = run->src.fetch(run->src.arg);
		pthread_mutex_lock(&r->mu);
		if (rv == 0) {
			run->done++;
			if (run->backoff_ms != 0) {
				log_info("resync from %s: done after retries",
				    run->name);
			}
			run->backoff_ms = 0;
			metric_inc(run->ok);
			continue;
		}
		/* The peer may be down: keep what we have and try again,
		 * backing off, until it answers. A mark that came in during
		 * the fetch is kept, but waits for the backoff too. */
		run->stale = true;
		run->backoff_ms = run->backoff_ms == 0 ? r->backoff_min_ms
		    : run->backoff_ms * 2 > r->backoff_max_ms
		    ? r->backoff_max_ms
		    : run->backoff_ms * 2;
		run->due_ms = od_mono_ms() + run->backoff_ms;
		metric_inc(run->failed);
		/* The first failure of an episode is news; the retries are
		 * counted in the metric. */
		if (run->backoff_ms == r->backoff_min_ms) {
			log_warn("resync from %s failed, retrying: %s",
			    run->name, od_strerror(rv));
		} else {
			log_debug("resync from %s failed again: %s", run->name,
			    od_strerror(rv));
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void
resync_free(bus_resync *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->e[i].name);
	}
	free(r->e);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int
bus_resync_start(bus_resync **out, const bus_resync_options *opt)
{
	bus_resync *r;
	int64_t now = od_mono_ms();

	if (out == NULL || opt == NULL || opt->sources == NULL
	    || opt->n_sources == 0) {
		return OD_EINVAL;
	}
	for (size_t i = 0; i < opt->n_sources; i++) {
		if (opt->sources[i].fetch == NULL
		    || opt->sources[i].name == NULL) {
			return OD_EINVAL;
		}
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&r->mu, NULL);
	if (od_cond_init(&r->cv) != 0) {
		pthread_mutex_destroy(&r->mu);
		free(r);
		return OD_ENOMEM;
	}
	r->backoff_min_ms
	    = opt->backoff_min_ms > 0 ? opt->backoff_min_ms : 1000;
	r->backoff_max_ms
	    = opt->backoff_max_ms > 0 ? opt->backoff_max_ms : 30000;
	if (r->backoff_max_ms < r->backoff_min_ms) {
		r->backoff_max_ms = r->backoff_min_ms;
	}
	if ((r->e = calloc(opt->n_sources, sizeof(*r->e))) == NULL) {
		resync_free(r);
		return OD_ENOMEM;
	}
	r->n = opt->n_sources;
	for (size_t i = 0; i < r->n; i++) {
		resync_entry *e = &r->e[i];
		char labels[256];
		e->src = opt->sources[i];
		if ((e->name = strdup(opt->sources[i].name)) == NULL) {
			resync_free(r);
			return OD_ENOMEM;
		}
		e->src.name = e->name;
		/* Until the first fetch nothing is known. */
		e->stale = true;
		e->due_ms = now;
		e->period_due_ms = now + e->src.period_ms;
		snprintf(labels, sizeof(labels), "source=\"%s\",result=\"ok\"",
		    e->name);
		e->ok = metrics_counter(opt->metrics, "opsdesk_resyncs_total",
		    "Resyncs from the owners' snapshots", labels);
		snprintf(labels, sizeof(labels),
		    "source=\"%s\",result=\"failed\"", e->name);
		e->failed
		    = metrics_counter(opt->metrics, "opsdesk_resyncs_total",
		        "Resyncs from the owners' snapshots", labels);
	}
	if (pthread_create(&r->th, NULL, resync_main, r) != 0) {
		resync_free(r);
		return OD_ENOMEM;
	}
	*out = r;
	return 0;
}

void
bus_resync_mark(bus_resync *r, int i, const char *reason)
{
	if (r == NULL || i >= (int) r->n) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	for (size_t k = 0; k < r->n; k++) {
		if (i >= 0 && (size_t) i != k) {
			continue;
		}
		resync_entry *e = &r->e[k];
		log_debug("resync from %s asked (%s)", e->name,
		    reason != NULL ? reason : "?");
		e->stale = true;
		/* A new reason to look: the peer may well be back. */
		e->due_ms = od_mono_ms();
	}
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

uint64_t
bus_resync_done(bus_resync *r, int i)
{
	uint64_t n = 0;
	if (r == NULL || i < 0 || i >= (int) r->n) {
		return 0;
	}
	pthread_mutex_lock(&r->mu);
	n = r->e[i].done;
	pthread_mutex_unlock(&r->mu);
	return n;
}

bool
bus_resync_stale(bus_resync *r, int i)
{
	bool stale = false;
	if (r == NULL || i < 0 || i >= (int) r->n) {
		return false;
	}
	pthread_mutex_lock(&r->mu);
	stale = r->e[i].stale;
	pthread_mutex_unlock(&r->mu);
	return stale;
}

void
bus_resync_stop(bus_resync *r)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->th, NULL);
	resync_free(r);
}
