/*
 * store — the environment, the writer thread and its group commit.
 *
 * Every write of the process goes through one thread, so LMDB's single
 * writer lock is never contended and many requests can share one fsync:
 * the writer takes everything that is queued (up to max_batch), runs the
 * jobs in one txn (a child txn each only when one failed) and commits
 * once. Readers
 * pass a small gate (a counter under the store's mutex) so that the
 * writer can remap the file when it has to grow it: mdb_env_set_mapsize
 * unmaps the old map, which must not be under a running reader.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "store_impl.h"
#include "util/util.h"

#define STORE_DEFAULT_MAP   ((size_t) 64 << 20)
#define STORE_DEFAULT_BATCH 512
/* Growth stops here: the map is address space, but a job that writes
 * without end must fail at some point rather than take the machine. */
#define STORE_MAX_MAP         ((size_t) 1 << 40)
#define STORE_READER_CHECK_MS 60000
/* How long a grow waits for this process's readers to finish before the
 * batch fails with OD_EMAPFULL (a reader that waits for a write would
 * otherwise deadlock with the writer). */
#define STORE_GROW_WAIT_MS 10000
#define STORE_INTERNAL_DBS 3
/* While writes fail for lack of space, an idle writer tries a small
 * commit this often to notice that space came back. */
#define STORE_PROBE_MS 1000
/* Lazy jobs wait for company only while fewer than this are queued. */
#define STORE_LAZY_MAX 64
/* store_batch_once: a job of a shared batch failed (not an od_err). */
#define STORE_RERUN_NESTED (-1)

typedef struct store_job store_job;
struct store_job {
	store_write_fn fn;
	void *arg;
	store_done_fn done;
	void *done_arg;
	bool heap;          /* allocated by store_submit, freed after done */
	bool failed;        /* fn or its child commit failed (own error) */
	int64_t lazy_until; /* store_submit_lazy: od_mono_ms; 0: eager */
	int rv;
	store_txn txn;
	store_job *next;
};

struct store {
	MDB_env *env;
	MDB_dbi dbs[STORE_MAX_DBS];
	unsigned n_dbs;
	MDB_dbi meta;
	MDB_dbi idem;
	MDB_dbi idem_time;
	unsigned max_batch;
	struct metric *commit_seconds; /* NULL without options.metrics */

	pthread_mutex_t mu;
	pthread_cond_t work_cv; /* the writer waits for jobs */
	pthread_cond_t gate_cv; /* readers and a grow wait on each other */
	pthread_cond_t done_cv; /* the completer waits for committed jobs */
	bool sync_init;
	store_job *head; /* the queue, FIFO */
	store_job *tail;
	size_t queued;
	size_t eager; /* queued jobs that are not lazy */
	bool closing;
	bool writer_started;
	pthread_t writer;
	/* Committed batches whose hooks and done callbacks are still to run,
	 * FIFO, job after job. */
	store_job *done_head;
	store_job *done_tail;
	bool writer_exited; /* the completer may stop once drained */
	bool completer_started;
	pthread_t completer;
	unsigned readers;
	bool growing;
	store_stats stats;
	int64_t next_reader_check_ms; /* writer only, od_mono_ms */
	int64_t next_probe_ms;        /* writer only, while write_failing */
	char path[3001];
};

/* ---- hooks ---- */

/* Run (committed) or only free (aborted, retried) a job's hooks, then
 * forget them. */
static void
store_hooks_finish(store_txn *t, bool run)
{
	for (size_t i = 0; i < t->n_hooks; i++) {
		store__hook *h = &t->hooks[i];
		if (run && h->fn != NULL) {
			h->fn(h->arg);
		}
		if (h->free_fn != NULL) {
			h->free_fn(h->arg);
		}
	}
	free(t->hooks);
	t->hooks = NULL;
	t->n_hooks = 0;
	t->cap_hooks = 0;
}

int
store_txn_on_commit(
    store_txn *t, void (*fn)(void *arg), void *arg, void (*free_fn)(void *arg))
{
	int rv = 0;
	if (t == NULL) {
		rv = OD_EINVAL;
		goto out;
	}
	if (t->n_hooks == t->cap_hooks) {
		size_t cap = t->cap_hooks == 0 ? 4 : t->cap_hooks * 2;
		store__hook *h = realloc(t->hooks, cap * sizeof(*h));
		if (h == NULL) {
			rv = OD_ENOMEM;
			goto out;
		}
		t->hooks = h;
		t->cap_hooks = cap;
	}
	t->hooks[t->n_hooks++] = (store__hook) { fn, arg, free_fn };
out:
	if (rv != 0 && free_fn != NULL) {
		free_fn(arg);
	}
	return rv;
}

/* ---- the reader gate and map growth ---- */

void
store__reader_enter(store *s)
{
	pthread_mutex_lock(&s->mu);
	while (s->growing) {
		pthread_cond_wait(&s->gate_cv, &s->mu);
	}
	s->readers++;
	pthread_mutex_unlock(&s->mu);
}

void
store__reader_leave(store *s)
{
	pthread_mutex_lock(&s->mu);
	s->readers--;
	if (s->readers == 0 && s->growing) {
		pthread_cond_broadcast(&s->gate_cv);
	}
	pthread_mutex_unlock(&s->mu);
}

/* Double the map. Called with no write txn active (the writer between
 * batches, or open). */
static int
store_grow(store *s)
{
	MDB_envinfo info;
	int64_t deadline;
	size_t size = 0;
	int rv = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	s->growing = true;
	deadline = od_mono_ms() + STORE_GROW_WAIT_MS;
	if (s->readers > 0) {
		s->stats.grow_waits++;
	}
	while (s->readers > 0) {
		if (od_cond_wait_ms(
		        &s->gate_cv, &s->mu, deadline - od_mono_ms())
		    && s->readers > 0) {
			s->stats.grow_timeouts++;
			rv = OD_EMAPFULL;
			goto out;
		}
	}
	mdb_env_info(s->env, &info);
	size = info.me_mapsize * 2;
	if (size > STORE_MAX_MAP) {
		rv = OD_EMAPFULL;
		goto out;
	}
	if ((rc = mdb_env_set_mapsize(s->env, size)) != 0) {
		rv = store__err(NULL, rc);
		goto out;
	}
	s->stats.map_grows++;
	s->stats.map_size = size;
out:
	s->growing = false;
	pthread_cond_broadcast(&s->gate_cv);
	pthread_mutex_unlock(&s->mu);
	if (rv == 0) {
		log_info("store: map grown to %zu bytes", size);
	} else {
		log_warn("store: cannot grow the map: %s", od_strerror(rv));
	}
	return rv;
}

/* ---- the writer ---- */

/*
 * Run the batch once. Returns 0 when done (each job's rv set; *committed
 * tells whether a commit happened), OD_EMAPFULL when it must be rerun
 * after growing, STORE_RERUN_NESTED when it must be rerun with nested
 * txns, or another error that fails the whole batch.
 *
 * First every job runs in the parent itself (nested false): LMDB's child
 * txn costs about 3 MiB of allocations, which a busy service would pay
 * per job, not per batch; under ASan each costs ~10 ms (mmap, page
 * faults, shadow), so a batch of 25 creates took 250 ms and concurrent
 * clients stalled. Only when a job of a larger batch fails is the batch
 * aborted and run again with a child txn per job, so the failure discards
 * just that job's changes. A batch of one needs no rerun: aborting the
 * parent is aborting the job.
 */
static int
store_batch_once(store *s, store_job *jobs, bool nested, bool *committed)
{
	MDB_txn *parent = NULL;
	int64_t now = od_now_ms();
	bool single = jobs->next == NULL;
	int rv = 0;
	int rc;

	*committed = false;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &parent)) != 0) {
		return store__err(NULL, rc);
	}
	for (store_job *j = jobs; j != NULL; j = j->next) {
		store_txn *t = &j->txn;
		MDB_txn *child = parent;

		j->failed = false;
		j->rv = 0;
		if (nested
		    && (rc = mdb_txn_begin(s->env, parent, 0, &child)) != 0) {
			rv = store__err(NULL, rc);
			goto out;
		}
		t->s = s;
		t->mdb = child;
		t->now_ms = now;
		t->map_full = false;
		j->rv = j->fn(t, j->arg);
		if (!nested) {
			/* The parent is the job's txn: handled below. */
		} else if (j->rv == 0) {
			if ((rc = mdb_txn_commit(child)) != 0) {
				j->rv = store__err(t, rc);
			}
		} else {
			mdb_txn_abort(child);
		}
		t->mdb = NULL;
		if (t->map_full || j->rv == OD_EMAPFULL) {
			rv = OD_EMAPFULL;
			goto out;
		}
		if (j->rv != 0 && !nested && !single) {
			/* Its changes are mixed with the others': undo all,
			 * then once more with a child txn per job. */
			rv = STORE_RERUN_NESTED;
			goto out;
		}
		if (j->rv != 0) {
			/* Only this job's child is gone: the others stay. */
			j->failed = true;
			store_hooks_finish(t, false);
			if (single) {
				goto out; /* abort: nothing else is in it */
			}
		}
	}
	rc = mdb_txn_commit(parent);
	parent = NULL;
	if (rc != 0) {
		rv = store__err(NULL, rc);
	} else {
		*committed = true;
	}
out:
	if (parent != NULL) {
		mdb_txn_abort(parent);
	}
	return rv;
}

/* Free bytes for an unprivileged writer on the store's filesystem. */
static unsigned long long
store_free_bytes(const store *s)
{
	struct statvfs st;
	if (statvfs(s->path, &st) != 0) {
		return 0;
	}
	return (unsigned long long) st.f_bavail * st.f_frsize;
}

/*
 * After a batch (or a probe): a failure for lack of space starts an
 * episode (logged once, with the path and the free space), a commit ends
 * it. Writer thread only, like the episode's start and end.
 */
static void
store_note_outcome(store *s, int rv, bool committed)
{
	bool space = rv == OD_ENOSPC || rv == OD_EMAPFULL;
	bool started = false, ended = false;

	if (!space && !committed) {
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (space) {
		if (rv == OD_ENOSPC) {
			s->stats.disk_full_errors++;
		} else {
			s->stats.map_full_errors++;
		}
		started = !s->stats.write_failing;
		s->stats.write_failing = true;
		s->next_probe_ms = od_mono_ms() + STORE_PROBE_MS;
	} else if (s->stats.write_failing) {
		s->stats.write_failing = false;
		ended = true;
	}
	pthread_mutex_unlock(&s->mu);
	if (started) {
		char free_b[32];
		snprintf(free_b, sizeof(free_b), "%llu", store_free_bytes(s));
		log_kv(LOG_ERROR,
		    rv == OD_ENOSPC
		        ? "store: writes fail, the disk is full"
		        : "store: writes fail, the map cannot grow",
		    "path", s->path, "free_bytes", free_b, "error",
		    od_strerror(rv), NULL);
	} else if (ended) {
		char free_b[32];
		snprintf(free_b, sizeof(free_b), "%llu", store_free_bytes(s));
		log_kv(LOG_INFO, "store: writes commit again", "path", s->path,
		    "free_bytes", free_b, NULL);
	}
}

/* A small commit that dirties a page or two: is there space again? */
static void
store_probe(store *s)
{
	static const char key[] = "space_probe";
	char val[2048];
	MDB_txn *txn;
	MDB_val k = { sizeof(key) - 1, (void *) key };
	MDB_val v = { sizeof(val), val };
	int rc;

	memset(val, 0, sizeof(val));
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		store_note_outcome(s, store__err(NULL, rc), false);
		return;
	}
	if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		store_note_outcome(s, store__err(NULL, rc), false);
		return;
	}
	rc = mdb_txn_commit(txn);
	store_note_outcome(s, store__err(NULL, rc), rc == 0);
}

bool
store_writable(store *s)
{
	bool ok;
	if (s == NULL) {
		return false;
	}
	pthread_mutex_lock(&s->mu);
	ok = !s->stats.write_failing;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static void
store_run_batch(store *s, store_job *jobs, unsigned n)
{
	unsigned failed = 0;
	bool committed = false;
	bool nested = false;
	uint64_t t0 = od_mono_ns();
	int rv;

	for (;;) {
		rv = store_batch_once(s, jobs, nested, &committed);
		if (rv != OD_EMAPFULL && rv != STORE_RERUN_NESTED) {
			break;
		}
		/* The jobs run again from scratch: what they registered is
		 * dropped, as the header promises. */
		for (store_job *j = jobs; j != NULL; j = j->next) {
			store_hooks_finish(&j->txn, false);
		}
		if (rv == STORE_RERUN_NESTED) {
			nested = true;
			continue;
		}
		if ((rv = store_grow(s)) != 0) {
			break;
		}
	}
	for (store_job *j = jobs; j != NULL; j = j->next) {
		if (rv != 0 && !j->failed) {
			j->rv = rv;
		}
		if (j->rv != 0) {
			failed++;
		}
	}

	/*
	 * Durable now. The completer runs the hooks and the done callbacks
	 * (replies go out from there) while this thread commits the next
	 * batch: sending a batch's replies costs about as much as its
	 * commit, and doing both here in turn halved the commit rate.
	 */
	store_note_outcome(s, rv, committed);
	if (committed) {
		metric_observe(
		    s->commit_seconds, (double) (od_mono_ns() - t0) / 1e9);
	}
	pthread_mutex_lock(&s->mu);
	if (committed) {
		s->stats.commits++;
	}
	s->stats.jobs += n;
	s->stats.jobs_failed += failed;
	if (n > s->stats.max_batch_seen) {
		s->stats.max_batch_seen = n;
	}
	store_job *last = jobs;
	while (last->next != NULL) {
		last = last->next;
	}
	if (s->done_tail != NULL) {
		s->done_tail->next = jobs;
	} else {
		s->done_head = jobs;
		pthread_cond_signal(&s->done_cv);
	}
	s->done_tail = last;
	pthread_mutex_unlock(&s->mu);
}

/* Hooks, then the reply, of each committed job in the order of the
 * queue. */
static void *
store_completer_main(void *arg)
{
	store *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		store_job *jobs = s->done_head;
		if (jobs == NULL) {
			if (s->writer_exited) {
				break;
			}
			pthread_cond_wait(&s->done_cv, &s->mu);
			continue;
		}
		s->done_head = s->done_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		for (store_job *j = jobs, *next; j != NULL; j = next) {
			next = j->next; /* done may free a store_write's job */
			store_hooks_finish(&j->txn, j->rv == 0);
			bool heap = j->heap;
			if (j->done != NULL) {
				j->done(j->rv, j->done_arg);
			}
			if (heap) {
				free(j);
			}
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void
store_reader_check_now(store *s)
{
	int dead = 0;
	int rc = mdb_reader_check(s->env, &dead);
	if (rc != 0) {
		log_warn("store: reader check: %s", mdb_strerror(rc));
	} else if (dead > 0) {
		log_warn("store: cleared %d stale reader slot(s)", dead);
	}
	s->next_reader_check_ms = od_mono_ms() + STORE_READER_CHECK_MS;
}

static void *
store_writer_main(void *arg)
{
	store *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (od_mono_ms() >= s->next_reader_check_ms) {
			pthread_mutex_unlock(&s->mu);
			store_reader_check_now(s);
			pthread_mutex_lock(&s->mu);
		}
		if (s->head == NULL) {
			int64_t wake = s->next_reader_check_ms;
			if (s->closing) {
				break;
			}
			if (s->stats.write_failing) {
				if (od_mono_ms() >= s->next_probe_ms) {
					s->next_probe_ms
					    = od_mono_ms() + STORE_PROBE_MS;
					pthread_mutex_unlock(&s->mu);
					store_probe(s);
					pthread_mutex_lock(&s->mu);
					continue;
				}
				if (s->next_probe_ms < wake) {
					wake = s->next_probe_ms;
				}
			}
			(void) od_cond_wait_ms(
			    &s->work_cv, &s->mu, wake - od_mono_ms());
			continue;
		}
		if (s->eager == 0 && !s->closing
		    && s->queued < STORE_LAZY_MAX) {
			/* Only lazy jobs: they wait for company, until the
			 * first of them is due. */
			int64_t due = INT64_MAX;
			for (store_job *j = s->head; j != NULL; j = j->next) {
				due = j->lazy_until < due ? j->lazy_until
				                          : due;
			}
			int64_t left = due - od_mono_ms();
			if (left > 0) {
				(void) od_cond_wait_ms(
				    &s->work_cv, &s->mu, left);
				continue;
			}
		}
		store_job *batch = s->head;
		store_job *last = batch;
		unsigned n = 1;
		size_t eager = batch->lazy_until == 0;
		while (n < s->max_batch && last->next != NULL) {
			last = last->next;
			eager += last->lazy_until == 0;
			n++;
		}
		s->eager -= eager;
		s->head = last->next;
		if (s->head == NULL) {
			s->tail = NULL;
		}
		last->next = NULL;
		s->queued -= n;
		pthread_mutex_unlock(&s->mu);
		store_run_batch(s, batch, n);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int
store_enqueue(store *s, store_job *j)
{
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		return OD_ECLOSED;
	}
	j->next = NULL;
	if (s->tail == NULL || (j->lazy_until == 0 && s->eager == 0)
	    || s->queued + 1 == STORE_LAZY_MAX) {
		/* The writer sleeps on an empty queue or on lazy jobs. */
		pthread_cond_signal(&s->work_cv);
	}
	if (s->tail == NULL) {
		s->head = j;
	} else {
		s->tail->next = j;
	}
	s->tail = j;
	s->queued++;
	s->eager += j->lazy_until == 0;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int
store_submit(
    store *s, store_write_fn fn, void *arg, store_done_fn done, void *done_arg)
{
	return store_submit_lazy(s, fn, arg, done, done_arg, 0);
}

int
store_submit_lazy(store *s, store_write_fn fn, void *arg, store_done_fn done,
    void *done_arg, int linger_ms)
{
	store_job *j;
	int rv;

	if (s == NULL || fn == NULL || linger_ms < 0) {
		return OD_EINVAL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		return OD_ENOMEM;
	}
	j->fn = fn;
	j->arg = arg;
	j->done = done;
	j->done_arg = done_arg;
	j->heap = true;
	j->lazy_until = linger_ms > 0 ? od_mono_ms() + linger_ms : 0;
	if ((rv = store_enqueue(s, j)) != 0) {
		free(j);
	}
	return rv;
}

/*
 * A store_write caller waits on its own semaphore: the writer wakes it
 * without taking the store's mutex, so a woken caller does not at once
 * block on the lock the writer needs for the next wake-up (on a small VM
 * the context switches, not the fsync, bounded the group commit rate).
 * glibc's sem_post touches the semaphore in one atomic step, so the
 * caller may return and drop it as soon as sem_wait returns.
 */
typedef struct store_waiter {
	sem_t sem;
	int rv;
} store_waiter;

static void
store_write_done(int rv, void *arg)
{
	store_waiter *w = arg;
	w->rv = rv;
	sem_post(&w->sem);
}

int
store_write(store *s, store_write_fn fn, void *arg)
{
	store_waiter w = { .rv = 0 };
	store_job job = { 0 };
	int rv;

	if (s == NULL || fn == NULL) {
		return OD_EINVAL;
	}
	/* The writer (or the completer, which runs done callbacks and
	 * hooks) would wait for itself. */
	if ((s->writer_started && pthread_equal(pthread_self(), s->writer))
	    || (s->completer_started
	        && pthread_equal(pthread_self(), s->completer))) {
		return OD_ESTATE;
	}
	job.fn = fn;
	job.arg = arg;
	job.done = store_write_done;
	job.done_arg = &w;
	if (sem_init(&w.sem, 0, 0) != 0) {
		return OD_ENOMEM;
	}
	if ((rv = store_enqueue(s, &job)) != 0) {
		goto out;
	}
	while (sem_wait(&w.sem) != 0) {
		/* EINTR: a signal handler ran; the job is still queued. */
	}
	rv = w.rv;
out:
	sem_destroy(&w.sem);
	return rv;
}

/* ---- open and close ---- */

/*
 * Open every named DB, check the schema version and migrate, all in one
 * write txn. OD_EMAPFULL means: grow and call again.
 */
static int
store_open_dbs(store *s, const store_options *opt)
{
	static const struct {
		const char *name;
		unsigned flags;
		size_t off;
	} internal[STORE_INTERNAL_DBS] = {
		{ "__meta", 0, offsetof(store, meta) },
		{ "__idem", 0, offsetof(store, idem) },
		/* Plain: rpc keys it by time || request id. */
		{ "__idem_time", 0, offsetof(store, idem_time) },
	};
	const unsigned allowed = MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY
	    | MDB_DUPFIXED | MDB_INTEGERDUP | MDB_REVERSEDUP;
	unsigned want = opt->schema_version == 0 ? 1 : opt->schema_version;
	store_txn t = { .s = s, .now_ms = od_now_ms() };
	MDB_txn *txn = NULL;
	MDB_val v;
	uint8_t ver[4];
	int rv = 0;
	int rc;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		return store__err(NULL, rc);
	}
	t.mdb = txn;
	for (unsigned i = 0; i < s->n_dbs; i++) {
		unsigned fl = opt->db_flags != NULL ? opt->db_flags[i] : 0;
		rc = mdb_dbi_open(
		    txn, opt->dbs[i], MDB_CREATE | (fl & allowed), &s->dbs[i]);
		if (rc != 0) {
			log_error("store: open db %s: %s", opt->dbs[i],
			    mdb_strerror(rc));
			rv = store__err(&t, rc);
			goto out;
		}
	}
	for (unsigned i = 0; i < STORE_INTERNAL_DBS; i++) {
		MDB_dbi *dbi = (MDB_dbi *) ((char *) s + internal[i].off);
		rc = mdb_dbi_open(txn, internal[i].name,
		    MDB_CREATE | internal[i].flags, dbi);
		if (rc != 0) {
			rv = store__err(&t, rc);
			goto out;
		}
	}

	rv = store_get(
	    txn, s->meta, STORE__META_SCHEMA, strlen(STORE__META_SCHEMA), &v);
	if (rv == 0) {
		unsigned have;
		if (v.mv_size != 4) {
			log_error("store: %s has a malformed schema version",
			    opt->path);
			rv = OD_EMALFORMED;
			goto out;
		}
		have = od_get_be32(v.mv_data);
		if (have > want) {
			log_error("store: %s has schema version %u, newer "
			          "than this build's %u",
			    opt->path, have, want);
			rv = OD_ESTATE;
			goto out;
		}
		if (have < want && opt->migrate != NULL) {
			log_info("store: migrating %s from schema %u to %u",
			    opt->path, have, want);
			rv = opt->migrate(&t, have, want, opt->migrate_arg);
			if (t.map_full) {
				rv = OD_EMAPFULL;
			}
			if (rv != 0) {
				goto out;
			}
		}
	} else if (rv != OD_ENOTFOUND) {
		goto out;
	}
	/* A new store starts at this build's version: nothing to migrate. */
	od_put_be32(ver, want);
	rv = store_put(&t, s->meta, STORE__META_SCHEMA,
	    strlen(STORE__META_SCHEMA), ver, sizeof(ver));
	if (rv != 0) {
		goto out;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		rv = store__err(NULL, rc);
	}
out:
	if (txn != NULL) {
		mdb_txn_abort(txn);
	}
	store_hooks_finish(&t, rv == 0);
	return rv;
}

/* Stop the writer once the queue is drained, then the completer once
 * the last replies and hooks ran. */
static void
store_stop_threads(store *s)
{
	if (s->writer_started) {
		pthread_mutex_lock(&s->mu);
		s->closing = true;
		pthread_cond_signal(&s->work_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
		s->writer_started = false;
	}
	if (s->completer_started) {
		pthread_mutex_lock(&s->mu);
		s->writer_exited = true;
		pthread_cond_signal(&s->done_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->completer, NULL);
		s->completer_started = false;
	}
}

static void
store_destroy(store *s)
{
	store_stop_threads(s);
	if (s->env != NULL) {
		mdb_env_close(s->env);
	}
	if (s->sync_init) {
		pthread_cond_destroy(&s->done_cv);
		pthread_cond_destroy(&s->gate_cv);
		pthread_cond_destroy(&s->work_cv);
		pthread_mutex_destroy(&s->mu);
	}
	free(s);
}

static int
store_sync_init(store *s)
{
	pthread_condattr_t ca;
	int rv = OD_ENOMEM;

	if (pthread_condattr_init(&ca) != 0) {
		return OD_ENOMEM;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		goto out;
	}
	if (pthread_cond_init(&s->work_cv, &ca) != 0) {
		pthread_mutex_destroy(&s->mu);
		goto out;
	}
	if (pthread_cond_init(&s->gate_cv, &ca) != 0) {
		pthread_cond_destroy(&s->work_cv);
		pthread_mutex_destroy(&s->mu);
		goto out;
	}
	if (pthread_cond_init(&s->done_cv, &ca) != 0) {
		pthread_cond_destroy(&s->gate_cv);
		pthread_cond_destroy(&s->work_cv);
		pthread_mutex_destroy(&s->mu);
		goto out;
	}
	s->sync_init = true;
	rv = 0;
out:
	pthread_condattr_destroy(&ca);
	return rv;
}

/* The files are 0600 whatever the umask or an older tool left. */
static void
store_fix_modes(const char *dir)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	char p[4096];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		if (chmod(p, 0600) != 0 && errno != ENOENT) {
			log_warn("store: chmod %s: %s", p, strerror(errno));
		}
	}
}

int
store_open(store **out, const store_options *opt)
{
	store *s = NULL;
	unsigned n = 0;
	/* No readahead: pages are faulted in as read, so a process maps (and
	 * shows in its RSS) only what it touches, not neighbouring pages. */
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	int rv = 0;
	int rc;

	if (out == NULL || opt == NULL || opt->path == NULL
	    || opt->path[0] == '\0' || strlen(opt->path) > 3000) {
		return OD_EINVAL;
	}
	while (opt->dbs != NULL && opt->dbs[n] != NULL) {
		/* "__" names belong to the store. */
		if (n == STORE_MAX_DBS || strncmp(opt->dbs[n], "__", 2) == 0) {
			return OD_EINVAL;
		}
		n++;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return OD_ENOMEM;
	}
	s->n_dbs = n;
	od_strlcpy(s->path, opt->path, sizeof(s->path));
	s->max_batch
	    = opt->max_batch == 0 ? STORE_DEFAULT_BATCH : opt->max_batch;
	if (opt->metrics != NULL) {
		s->commit_seconds = metrics_histogram(opt->metrics,
		    "opsdesk_store_commit_seconds",
		    "Time to run and durably commit one batch of writes.",
		    NULL, NULL, 0);
	}
	if ((rv = store_sync_init(s)) != 0) {
		goto out;
	}
	if ((rv = store__mkdir_p(opt->path)) != 0) {
		log_error(
		    "store: cannot create %s: %s", opt->path, od_strerror(rv));
		goto out;
	}
	if ((rc = mdb_env_create(&s->env)) != 0) {
		rv = store__err(NULL, rc);
		goto out;
	}
	mdb_env_set_userctx(s->env, s);
	if (opt->nosync) {
		flags |= MDB_NOSYNC;
	}
	if ((rc = mdb_env_set_maxdbs(s->env, n + STORE_INTERNAL_DBS)) != 0
	    || (rc = mdb_env_set_mapsize(s->env,
	            opt->map_size != 0 ? opt->map_size : STORE_DEFAULT_MAP))
	        != 0
	    || (rc = mdb_env_open(s->env, opt->path, flags, 0600)) != 0) {
		log_error("store: open %s: %s", opt->path, mdb_strerror(rc));
		rv = store__err(NULL, rc);
		goto out;
	}
	store_fix_modes(opt->path);
	store_reader_check_now(s);
	while ((rv = store_open_dbs(s, opt)) == OD_EMAPFULL) {
		if ((rv = store_grow(s)) != 0) {
			goto out;
		}
	}
	if (rv != 0) {
		goto out;
	}
	if (pthread_create(&s->completer, NULL, store_completer_main, s)
	    != 0) {
		rv = OD_ENOMEM;
		goto out;
	}
	s->completer_started = true;
	if (pthread_create(&s->writer, NULL, store_writer_main, s) != 0) {
		rv = OD_ENOMEM;
		goto out;
	}
	s->writer_started = true;
	*out = s;
out:
	if (rv != 0) {
		store_destroy(s);
	}
	return rv;
}

void
store_close(store *s)
{
	if (s == NULL) {
		return;
	}
	store_destroy(s);
}

/* ---- accessors and operations ---- */

MDB_env *
store_env(store *s)
{
	return s->env;
}

MDB_dbi
store_db(const store *s, unsigned index)
{
	/* 0 is LMDB's free-page DB, refused (EINVAL) by every user call. */
	return index < s->n_dbs ? s->dbs[index] : 0;
}

MDB_dbi
store_idem_db(const store *s)
{
	return s->idem;
}

MDB_dbi
store_idem_time_db(const store *s)
{
	return s->idem_time;
}

MDB_dbi
store__meta_db(const store *s)
{
	return s->meta;
}

int
store_read_begin(store *s, MDB_txn **out)
{
	MDB_txn *txn;
	int rc;

	if (s == NULL || out == NULL) {
		return OD_EINVAL;
	}
	store__reader_enter(s);
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
		store__reader_leave(s);
		return store__err(NULL, rc);
	}
	*out = txn;
	return 0;
}

void
store_read_end(MDB_txn *txn)
{
	store *s;

	if (txn == NULL) {
		return;
	}
	s = mdb_env_get_userctx(mdb_txn_env(txn));
	mdb_txn_abort(txn);
	if (s != NULL) {
		store__reader_leave(s);
	}
}

int
store_reader_check(store *s, int *dead)
{
	int n = 0;
	int rc;

	if (s == NULL) {
		return OD_EINVAL;
	}
	if ((rc = mdb_reader_check(s->env, &n)) != 0) {
		return store__err(NULL, rc);
	}
	if (dead != NULL) {
		*dead = n;
	}
	return 0;
}

int
store_backup(store *s, const char *dir)
{
	int rv;

	if (s == NULL || dir == NULL || dir[0] == '\0') {
		return OD_EINVAL;
	}
	/* The copy reads the map: it must not be remapped under it. */
	store__reader_enter(s);
	rv = store__backup_env(s->env, dir, false);
	store__reader_leave(s);
	return rv;
}

void
store_get_stats(store *s, store_stats *out)
{
	MDB_envinfo info;

	if (s == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->queue_depth = s->queued;
	mdb_env_info(s->env, &info);
	out->map_size = info.me_mapsize;
	pthread_mutex_unlock(&s->mu);
}
