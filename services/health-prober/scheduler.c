/*
 * scheduler — when each target is probed. One thread owns one curl multi
 * handle and a min-heap of due times:
 *   - first due times are spread over each interval by the target's hash,
 *     so a restart does not fire every probe at once;
 *   - the next due time is the previous due time plus the interval, never
 *     "now plus interval", so probes do not drift;
 *   - at most `concurrency` HTTP/TCP transfers are in flight; a due probe
 *     waits for a slot in due order;
 *   - every transfer has its own time-out and the thread never waits on
 *     one, so a slow target delays no other; a target still running when
 *     due again skips that round (counted) rather than piling up.
 * Service pings run on probe_service.c's threads and come back through a
 * completion queue and curl_multi_wakeup.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "prober.h"
#include "util/util.h"

typedef struct done_item {
	size_t index;
	probe_result r;
} done_item;

struct sched {
	const target_set *ts;
	sched_callbacks cb;
	CURLM *multi;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	int64_t *due;  /* by target index, od_mono_ms() */
	uint8_t *busy; /* a probe of the target is in flight */
	void **easy;   /* its curl handle, for shutdown */
	size_t *heap;  /* target indices, min-heap on due */
	size_t heap_len;
	_Atomic unsigned in_flight; /* also read by prober_sched_get_stats */
	service_pool *pool;

	pthread_mutex_t mu; /* done queue and stats */
	done_item *done;
	size_t done_len;
	size_t done_cap;
	sched_stats stats;
};

int64_t
prober_sched_first_due(uint64_t hash, int64_t interval_ms, int64_t now)
{
	return now + (int64_t) ((hash >> 11) % (uint64_t) interval_ms);
}

int64_t
prober_sched_next_due(int64_t due, int64_t interval_ms, int64_t now)
{
	int64_t next = due + interval_ms;
	if (next <= now) {
		next += ((now - next) / interval_ms + 1) * interval_ms;
	}
	return next;
}

static bool
earlier(const sched *s, size_t a, size_t b)
{
	return s->due[s->heap[a]] < s->due[s->heap[b]];
}

static void
swap(sched *s, size_t a, size_t b)
{
	size_t t = s->heap[a];
	s->heap[a] = s->heap[b];
	s->heap[b] = t;
}

static void
heap_push(sched *s, size_t index)
{
	size_t i = s->heap_len++;
	s->heap[i] = index;
	while (i > 0 && earlier(s, i, (i - 1) / 2)) {
		swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static size_t
heap_pop(sched *s)
{
	size_t top = s->heap[0], i = 0;
	s->heap[0] = s->heap[--s->heap_len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->heap_len && earlier(s, l, m)) {
			m = l;
		}
		if (r < s->heap_len && earlier(s, r, m)) {
			m = r;
		}
		if (m == i) {
			break;
		}
		swap(s, i, m);
		i = m;
	}
	return top;
}

/* From a pool thread: queue the result for the scheduler thread. */
static void
service_done(void *arg, size_t index, const probe_result *r)
{
	sched *s = arg;
	pthread_mutex_lock(&s->mu);
	if (s->done_len == s->done_cap) {
		size_t cap = s->done_cap ? 2 * s->done_cap : 16;
		done_item *d = realloc(s->done, cap * sizeof(*d));
		if (d == NULL) {
			pthread_mutex_unlock(&s->mu);
			log_error(
			    "prober: result of %s dropped: out of memory",
			    s->ts->v[index].id);
			return;
		}
		s->done = d;
		s->done_cap = cap;
	}
	s->done[s->done_len].index = index;
	s->done[s->done_len].r = *r;
	s->done_len++;
	pthread_mutex_unlock(&s->mu);
	curl_multi_wakeup(s->multi);
}

static void
count(sched *s, uint64_t *field)
{
	pthread_mutex_lock(&s->mu);
	(*field)++;
	s->stats.in_flight = s->in_flight;
	pthread_mutex_unlock(&s->mu);
}

static void
launch(sched *s, size_t i)
{
	const target *t = &s->ts->v[i];
	probe_job *job;
	void *easy;

	if (s->busy[i]) {
		count(s, &s->stats.skipped);
		return;
	}
	if (t->kind == PROBE_SERVICE) {
		if (prober_service_pool_submit(s->pool, i) == 0) {
			s->busy[i] = 1;
			count(s, &s->stats.started);
		}
		return;
	}
	if (probe_job_start(t, i, &job, &easy) != 0) {
		log_warn("prober: cannot start a probe of %s", t->id);
		return;
	}
	if (curl_multi_add_handle(s->multi, easy) != CURLM_OK) {
		probe_result r;
		probe_job_finish(job, CURLE_FAILED_INIT, &r, NULL, NULL);
		return;
	}
	s->busy[i] = 1;
	s->easy[i] = easy;
	s->in_flight++;
	count(s, &s->stats.started);
}

static void
launch_due(sched *s)
{
	int64_t now = od_mono_ms();
	while (s->heap_len > 0 && s->due[s->heap[0]] <= now) {
		size_t i = s->heap[0];
		const target *t = &s->ts->v[i];
		if (t->kind != PROBE_SERVICE && !s->busy[i]
		    && s->in_flight >= s->ts->settings.concurrency) {
			break; /* waits for a slot, in due order */
		}
		heap_pop(s);
		launch(s, i);
		s->due[i]
		    = prober_sched_next_due(s->due[i], t->interval_ms, now);
		heap_push(s, i);
	}
}

static void
reap(sched *s)
{
	CURLMsg *msg;
	int left, running;
	done_item *batch;
	size_t n;

	curl_multi_perform(s->multi, &running);
	while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
		probe_result r;
		probe_job *job;
		size_t i;
		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		job = probe_job_of(easy);
		i = probe_job_index(job);
		curl_multi_remove_handle(s->multi, easy);
		probe_job_finish(job, rc, &r, s->cb.on_metric, s->cb.arg);
		s->busy[i] = 0;
		s->easy[i] = NULL;
		s->in_flight--;
		count(s, &s->stats.completed);
		s->cb.on_result(s->cb.arg, i, &r);
	}
	pthread_mutex_lock(&s->mu);
	batch = s->done;
	n = s->done_len;
	s->done = NULL;
	s->done_len = s->done_cap = 0;
	s->stats.completed += n;
	pthread_mutex_unlock(&s->mu);
	for (size_t k = 0; k < n; k++) {
		s->busy[batch[k].index] = 0;
		s->cb.on_result(s->cb.arg, batch[k].index, &batch[k].r);
	}
	free(batch);
}

static void *
run(void *arg)
{
	sched *s = arg;
	while (!atomic_load(&s->stop)) {
		int64_t wait = 1000;
		launch_due(s);
		reap(s);
		if (s->heap_len > 0) {
			int64_t d = s->due[s->heap[0]] - od_mono_ms();
			if (d < wait) {
				wait = d < 1 ? 1 : d;
			}
			/* Due but waiting for a slot: completions wake us. */
			if (s->in_flight >= s->ts->settings.concurrency) {
				wait = 1000;
			}
		}
		curl_multi_poll(s->multi, NULL, 0, (int) wait, NULL);
	}
	return NULL;
}

int
prober_sched_start(
    sched **out, const target_set *ts, const sched_callbacks *cb)
{
	sched *s;
	int64_t now = od_mono_ms();
	size_t n = ts->n + 1;
	int rv = OD_ENOMEM;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return OD_ENOMEM;
	}
	s->ts = ts;
	s->cb = *cb;
	atomic_init(&s->stop, false);
	pthread_mutex_init(&s->mu, NULL);
	if ((s->due = calloc(n, sizeof(*s->due))) == NULL
	    || (s->busy = calloc(n, sizeof(*s->busy))) == NULL
	    || (s->easy = calloc(n, sizeof(*s->easy))) == NULL
	    || (s->heap = calloc(n, sizeof(*s->heap))) == NULL
	    || (s->multi = curl_multi_init()) == NULL) {
		goto out;
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
	    (long) ts->settings.concurrency);
	if ((rv = prober_service_pool_start(&s->pool, ts, service_done, s))
	    != 0) {
		goto out;
	}
	for (size_t i = 0; i < ts->n; i++) {
		s->due[i] = prober_sched_first_due(
		    ts->v[i].hash, ts->v[i].interval_ms, now);
		heap_push(s, i);
	}
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		rv = OD_ENOMEM;
		goto out;
	}
	s->started = true;
	*out = s;
	return 0;
out:
	prober_sched_stop(s);
	return rv;
}

void
prober_sched_stop(sched *s)
{
	if (s == NULL) {
		return;
	}
	atomic_store(&s->stop, true);
	if (s->started) {
		curl_multi_wakeup(s->multi);
		pthread_join(s->thread, NULL);
	}
	prober_service_pool_stop(s->pool);
	for (size_t i = 0; s->easy != NULL && i < s->ts->n; i++) {
		if (s->easy[i] != NULL) {
			probe_result r;
			curl_multi_remove_handle(s->multi, s->easy[i]);
			probe_job_finish(probe_job_of(s->easy[i]),
			    CURLE_ABORTED_BY_CALLBACK, &r, NULL, NULL);
		}
	}
	if (s->multi != NULL) {
		curl_multi_cleanup(s->multi);
	}
	free(s->done);
	free(s->due);
	free(s->busy);
	free(s->easy);
	free(s->heap);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void
prober_sched_get_stats(sched *s, sched_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->in_flight = s->in_flight;
	pthread_mutex_unlock(&s->mu);
}
