/*
 * store unit tests. Ordering is made deterministic with a "gate" job that
 * holds the writer until the test has queued what it wants in one batch;
 * nothing here sleeps to make something happen.
 *
 * Run with "--backup-path <store> <dest>" the binary only calls
 * store_backup_path and exits with its code: the test spawns itself that
 * way to back up a store that this process has open, as opsctl does.
 * With "--stale-reader <store> -" it dies holding a read txn.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "util/util.h"

extern char **environ;

static const char *const test_dbs[] = { "items", "index", NULL };
static const unsigned test_db_flags[] = { 0, MDB_DUPSORT };

/* ---- helpers ---- */

typedef struct tdir {
	char root[256];
	char db[300];
} tdir;

static void
tdir_make(tdir *d)
{
	const char *base = getenv("TMPDIR");
	snprintf(d->root, sizeof(d->root), "%s/store_test.XXXXXX",
	    base != NULL ? base : "/tmp");
	assert_non_null(mkdtemp(d->root));
	snprintf(d->db, sizeof(d->db), "%s/db", d->root);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void) st;
	(void) flag;
	(void) f;
	return remove(p);
}

static void
tdir_remove(tdir *d)
{
	nftw(d->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Tests that need many jobs keep batches small: under ASan each LMDB
 * child txn (about 3 MiB of allocations) is slow, and a growth reruns the
 * whole batch. */
static store *
open_batch(const char *path, size_t map_size, unsigned max_batch)
{
	store_options o = { .path = path,
		.dbs = test_dbs,
		.db_flags = test_db_flags,
		.map_size = map_size,
		.max_batch = max_batch };
	store *s = NULL;
	assert_int_equal(store_open(&s, &o), 0);
	return s;
}

static store *
open_at(const char *path, size_t map_size)
{
	return open_batch(path, map_size, 0);
}

typedef struct put_arg {
	char key[48];
	char val[160];
	int fail;     /* returned after the put */
	unsigned pad; /* > 0: the value is pad copies of val[0] instead */
	int done_rv;
	bool done;
} put_arg;

static int
job_put(store_txn *t, void *arg)
{
	put_arg *a = arg;
	char big[2048];
	const char *v = a->val;
	size_t vlen = strlen(a->val);
	if (a->pad > 0) {
		assert_true(a->pad <= sizeof(big));
		memset(big, a->val[0], a->pad);
		v = big;
		vlen = a->pad;
	}
	int rv = store_put(t, store_db(store_txn_store(t), 0), a->key,
	    strlen(a->key), v, vlen);
	return rv != 0 ? rv : a->fail;
}

static void
put_done(int rv, void *arg)
{
	put_arg *a = arg;
	a->done_rv = rv;
	a->done = true;
}

static int
job_nop(store_txn *t, void *arg)
{
	(void) t;
	(void) arg;
	return 0;
}

/* Wait until every job queued so far has run its done callback. */
static void
drain(store *s)
{
	assert_int_equal(store_write(s, job_nop, NULL), 0);
}

static void
put_sync(store *s, const char *key, const char *val)
{
	put_arg a = { .fail = 0 };
	snprintf(a.key, sizeof(a.key), "%s", key);
	snprintf(a.val, sizeof(a.val), "%s", val);
	assert_int_equal(store_write(s, job_put, &a), 0);
}

/* 0 and the value copied into buf, or the get's error. */
static int
get_str(store *s, unsigned db, const char *key, char *buf, size_t size)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	int rv;

	assert_int_equal(store_read_begin(s, &txn), 0);
	rv = store_get(txn, store_db(s, db), key, strlen(key), &v);
	if (rv == 0) {
		assert_true(v.mv_size < size);
		memcpy(buf, v.mv_data, v.mv_size);
		buf[v.mv_size] = '\0';
	}
	store_read_end(txn);
	return rv;
}

static size_t
count_entries(store *s, unsigned db)
{
	MDB_txn *txn = NULL;
	MDB_stat st;
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(mdb_stat(txn, store_db(s, db), &st), 0);
	store_read_end(txn);
	return st.ms_entries;
}

/* A job that holds the writer until released. */
typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started;
	bool released;
} gate;

static void
gate_init(gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->started = false;
	g->released = false;
}

static void
gate_fini(gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

static int
job_gate(store_txn *t, void *arg)
{
	gate *g = arg;
	(void) t;
	pthread_mutex_lock(&g->mu);
	g->started = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->released) {
		pthread_cond_wait(&g->cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return 0;
}

/* Queue the gate job and return once the writer is inside it. */
static void
gate_hold(store *s, gate *g)
{
	assert_int_equal(store_submit(s, job_gate, g, NULL, NULL), 0);
	pthread_mutex_lock(&g->mu);
	while (!g->started) {
		pthread_cond_wait(&g->cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
}

static void
gate_release(gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->released = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void
wait_queue_depth(store *s, uint64_t n)
{
	store_stats st;
	for (;;) {
		store_get_stats(s, &st);
		if (st.queue_depth >= n) {
			return;
		}
		usleep(1000);
	}
}

/* ---- tests ---- */

static int
pb_job(store_txn *t, void *arg)
{
	return store_put_pb(t, store_db(store_txn_store(t), 0), "actor", 5,
	    (const ProtobufCMessage *) arg);
}

static void
test_put_get_reopen(void **state)
{
	tdir d;
	store *s;
	char buf[64];
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__Actor *got = NULL;
	MDB_txn *txn = NULL;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	put_sync(s, "alpha", "one");
	put_sync(s, "beta", "two");
	actor.user_id = 42;
	actor.name = "Ada";
	actor.is_admin = true;
	store_close(s);

	s = open_at(d.db, 0);
	assert_int_equal(get_str(s, 0, "alpha", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "one");
	assert_int_equal(get_str(s, 0, "beta", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "two");
	assert_int_equal(
	    get_str(s, 0, "gamma", buf, sizeof(buf)), OD_ENOTFOUND);

	/* Protobuf values round-trip; bytes that do not decode are told. */
	assert_int_equal(store_write(s, pb_job, &actor), 0);
	store_close(s);
	s = open_at(d.db, 0);
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(
	    store_get_pb(txn, store_db(s, 0), "actor", 5,
	        &opsdesk__v1__actor__descriptor, (ProtobufCMessage **) &got),
	    0);
	assert_int_equal(got->user_id, 42);
	assert_string_equal(got->name, "Ada");
	assert_true(got->is_admin);
	protobuf_c_message_free_unpacked(&got->base, NULL);
	got = NULL;
	store_read_end(txn);
	/* "\xff..." is a truncated varint tag. */
	put_sync(s, "bad", "\xff\xff\xff");
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(
	    store_get_pb(txn, store_db(s, 0), "bad", 3,
	        &opsdesk__v1__actor__descriptor, (ProtobufCMessage **) &got),
	    OD_EMALFORMED);
	assert_null(got);
	store_read_end(txn);
	store_close(s);
	tdir_remove(&d);
}

/* store_scan: the prefix bound, pages resumed from the cursor, and
 * cursors that are not the scan's refused. */
static void
test_scan_pages(void **state)
{
	tdir d;
	store *s;
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	char cur[STORE_PAGE_CURSOR_MAX] = "";
	char seen[256] = "";
	int pages = 0, rv;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	put_sync(s, "a", "before");
	put_sync(s, "p/1", "1");
	put_sync(s, "p/2", "2");
	put_sync(s, "p/3", "3");
	put_sync(s, "p/4", "4");
	put_sync(s, "p/5", "5");
	put_sync(s, "q/1", "after");
	assert_int_equal(store_read_begin(s, &txn), 0);
	do {
		int n = 0;
		assert_int_equal(
		    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, cur),
		    0);
		cur[0] = '\0';
		while ((rv = store_scan_next(&sc, &k, &v)) == 0) {
			if (n == 2) {
				store_scan_page_cursor(&sc, cur, sizeof(cur));
				break;
			}
			strncat(seen, v.mv_data, v.mv_size);
			n++;
		}
		assert_true(rv == 0 || rv == OD_ENOTFOUND);
		store_scan_close(&sc);
		store_scan_close(&sc); /* idempotent */
		pages++;
	} while (cur[0] != '\0');
	assert_string_equal(seen, "12345");
	assert_int_equal(pages, 3);

	/* No prefix: every key. */
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), NULL, 0, NULL), 0);
	int n = 0;
	while (store_scan_next(&sc, &k, &v) == 0) {
		n++;
	}
	assert_int_equal(n, 7);
	assert_int_equal(store_scan_next(&sc, &k, &v), OD_ENOTFOUND);
	store_scan_close(&sc);

	/* Not a cursor of this scan: odd, not hex, another prefix. */
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, "702"),
	    OD_EINVAL);
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, "zz"),
	    OD_EINVAL);
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, "712f31"),
	    OD_EINVAL);
	store_read_end(txn);
	store_close(s);
	tdir_remove(&d);
}

/* Collect a scan's values, n at most, into out; the page cursor when
 * the page was full, else "". */
static void
scan_collect(store_scan *sc, int max, char *out, size_t size, char *cur)
{
	MDB_val k, v;
	int n = 0, rv;

	out[0] = '\0';
	cur[0] = '\0';
	while ((rv = store_scan_next(sc, &k, &v)) == 0) {
		if (n == max) {
			store_scan_page_cursor(sc, cur, STORE_PAGE_CURSOR_MAX);
			break;
		}
		strncat(out, v.mv_data,
		    v.mv_size < size - strlen(out) - 1
		        ? v.mv_size
		        : size - strlen(out) - 1);
		n++;
	}
	assert_true(rv == 0 || rv == OD_ENOTFOUND);
	store_scan_close(sc);
}

/* store_scan backwards (the prefix's last key first, pages resumed from
 * the cursor) and from a start key (at it or the next/previous one when
 * it is gone); prefixes ending in 0xff, and a prefix past the last key. */
static void
test_scan_reverse_seek(void **state)
{
	tdir d;
	store *s;
	MDB_txn *txn = NULL;
	store_scan sc;
	char cur[STORE_PAGE_CURSOR_MAX] = "", got[64], all[64] = "";
	int pages = 0;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	put_sync(s, "a", "before");
	put_sync(s, "p/1", "1");
	put_sync(s, "p/2", "2");
	put_sync(s, "p/4", "4");
	put_sync(s, "p/5", "5");
	put_sync(s, "q/1", "after");
	put_sync(s, "r\xff", "F");
	put_sync(s, "r\xff\x01", "G");
	put_sync(s, "s", "S");
	assert_int_equal(store_read_begin(s, &txn), 0);
	do {
		assert_int_equal(
		    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, cur),
		    0);
		store_scan_reverse(&sc);
		scan_collect(&sc, 3, got, sizeof(got), cur);
		strcat(all, got);
		pages++;
	} while (cur[0] != '\0');
	assert_string_equal(all, "5421");
	assert_int_equal(pages, 2);

	/* From a key that is gone: the one before it (backwards), after it
	 * (forwards); from one that is there: itself. */
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, NULL), 0);
	assert_int_equal(store_scan_seek(&sc, "p/3", 3), 0);
	store_scan_reverse(&sc);
	scan_collect(&sc, 10, got, sizeof(got), cur);
	assert_string_equal(got, "21");
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, NULL), 0);
	assert_int_equal(store_scan_seek(&sc, "p/3", 3), 0);
	scan_collect(&sc, 10, got, sizeof(got), cur);
	assert_string_equal(got, "45");
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, NULL), 0);
	assert_int_equal(store_scan_seek(&sc, "p/4", 3), 0);
	store_scan_reverse(&sc);
	scan_collect(&sc, 10, got, sizeof(got), cur);
	assert_string_equal(got, "421");
	/* Outside the prefix: refused. */
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "p/", 2, NULL), 0);
	assert_int_equal(store_scan_seek(&sc, "q/1", 3), OD_EINVAL);
	store_scan_close(&sc);

	/* A prefix ending in 0xff; a prefix after every key; no prefix. */
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "r\xff", 2, NULL), 0);
	store_scan_reverse(&sc);
	scan_collect(&sc, 10, got, sizeof(got), cur);
	assert_string_equal(got, "GF");
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), "z", 1, NULL), 0);
	store_scan_reverse(&sc);
	scan_collect(&sc, 10, got, sizeof(got), cur);
	assert_string_equal(got, "");
	assert_int_equal(
	    store_scan_open(&sc, txn, store_db(s, 0), NULL, 0, NULL), 0);
	store_scan_reverse(&sc);
	scan_collect(&sc, 2, got, sizeof(got), cur);
	assert_string_equal(got, "SG");
	assert_true(cur[0] != '\0');
	store_read_end(txn);
	store_close(s);
	tdir_remove(&d);
}

/* Bad keys and handles are refused and change nothing. */
static int
job_bad_input(store_txn *t, void *arg)
{
	store *s = store_txn_store(t);
	char big[600];
	int *checked = arg;
	memset(big, 'k', sizeof(big));
	assert_int_equal(
	    store_put(t, store_db(s, 0), "", 0, "v", 1), OD_EINVAL);
	assert_int_equal(
	    store_put(t, store_db(s, 0), big, sizeof(big), "v", 1), OD_EINVAL);
	assert_int_equal(
	    store_put(t, store_db(s, 7), "k", 1, "v", 1), OD_EINVAL);
	assert_int_equal(
	    store_del(t, store_db(s, 0), "nope", 4, NULL, 0), OD_ENOTFOUND);
	/* A DUPSORT index: two values under one key, delete one. */
	assert_int_equal(store_put(t, store_db(s, 1), "k", 1, "a", 1), 0);
	assert_int_equal(store_put(t, store_db(s, 1), "k", 1, "b", 1), 0);
	assert_int_equal(store_del(t, store_db(s, 1), "k", 1, "a", 1), 0);
	*checked = 1;
	return 0;
}

/* Each committed batch is one observation of
 * opsdesk_store_commit_seconds; a batch whose only job failed commits
 * nothing and is not observed. */
static void
test_commit_seconds_metric(void **state)
{
	tdir d;
	metrics *m = NULL;
	store *s = NULL;
	(void) state;

	tdir_make(&d);
	assert_int_equal(metrics_new(&m), 0);
	store_options o = { .path = d.db,
		.dbs = test_dbs,
		.db_flags = test_db_flags,
		.metrics = m };
	assert_int_equal(store_open(&s, &o), 0);
	metric *h = metrics_histogram(m, "opsdesk_store_commit_seconds",
	    "Time to run and durably commit one batch of writes.", NULL, NULL,
	    0);
	assert_non_null(h);
	assert_int_equal(metric_count(h), 0);
	put_sync(s, "alpha", "one");
	assert_int_equal(metric_count(h), 1);
	put_sync(s, "beta", "two");
	assert_int_equal(metric_count(h), 2);
	put_arg bad = { .key = "gamma", .val = "x", .fail = OD_EINVAL };
	assert_int_equal(store_write(s, job_put, &bad), OD_EINVAL);
	assert_int_equal(metric_count(h), 2);
	store_close(s);
	metrics_free(m);
	tdir_remove(&d);
}

static void
test_bad_input_and_dups(void **state)
{
	tdir d;
	store *s;
	char buf[16];
	int checked = 0;
	store_options o = { .path = NULL };
	static const char *const reserved[] = { "__meta", NULL };
	(void) state;

	tdir_make(&d);
	assert_int_equal(store_open(&s, &o), OD_EINVAL);
	o.path = d.db;
	o.dbs = reserved;
	assert_int_equal(store_open(&s, &o), OD_EINVAL);

	s = open_at(d.db, 0);
	assert_int_equal(store_write(s, job_bad_input, &checked), 0);
	assert_int_equal(checked, 1);
	assert_int_equal(count_entries(s, 0), 0);
	assert_int_equal(count_entries(s, 1), 1);
	assert_int_equal(get_str(s, 1, "k", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "b");
	assert_int_equal(store_write(NULL, job_nop, NULL), OD_EINVAL);
	assert_int_equal(store_submit(s, NULL, NULL, NULL, NULL), OD_EINVAL);
	store_close(s);
	tdir_remove(&d);
}

/* One failing job inside a batch: its child is aborted, the others are
 * committed in the same commit. */
static void
test_batch_isolation(void **state)
{
	tdir d;
	store *s;
	gate g;
	put_arg a[3] = {
		{ .key = "ok1", .val = "v1", .done_rv = -1 },
		{ .key = "bad",
		    .val = "v2",
		    .fail = OD_ESTATE,
		    .done_rv = -1 },
		{ .key = "ok2", .val = "v3", .done_rv = -1 },
	};
	store_stats before, after;
	char buf[16];
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	gate_init(&g);
	gate_hold(s, &g);
	store_get_stats(s, &before);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    store_submit(s, job_put, &a[i], put_done, &a[i]), 0);
	}
	gate_release(&g);
	drain(s);
	store_get_stats(s, &after);

	assert_true(a[0].done && a[1].done && a[2].done);
	assert_int_equal(a[0].done_rv, 0);
	assert_int_equal(a[1].done_rv, OD_ESTATE);
	assert_int_equal(a[2].done_rv, 0);
	assert_int_equal(get_str(s, 0, "ok1", buf, sizeof(buf)), 0);
	assert_int_equal(get_str(s, 0, "ok2", buf, sizeof(buf)), 0);
	assert_int_equal(get_str(s, 0, "bad", buf, sizeof(buf)), OD_ENOTFOUND);
	/* The three ran as one batch (the sentinel of drain() too). */
	assert_true(after.max_batch_seen >= 3);
	assert_int_equal(after.jobs_failed - before.jobs_failed, 1);
	store_close(s);
	gate_fini(&g);
	tdir_remove(&d);
}

/* ---- on-commit hooks ---- */

typedef struct hook_log {
	store *s;
	int events[32];
	int n;
	int regs;
	int frees;
	bool saw_committed[8];
} hook_log;

typedef struct hook_arg {
	hook_log *log;
	int id;
	char key[16];
} hook_arg;

static void
hook_run(void *p)
{
	hook_arg *h = p;
	char buf[16];
	h->log->events[h->log->n++] = h->id;
	/* After the commit: a new reader sees the job's write. */
	h->log->saw_committed[h->id / 10]
	    = get_str(h->log->s, 0, h->key, buf, sizeof(buf)) == 0;
}

static void
hook_free(void *p)
{
	hook_arg *h = p;
	h->log->frees++;
	free(h);
}

typedef struct hook_job {
	hook_log *log;
	int job; /* 1..3 */
	int fail;
	int done_rv;
} hook_job;

static int
job_with_hooks(store_txn *t, void *arg)
{
	hook_job *j = arg;
	char key[16];
	int rv;
	snprintf(key, sizeof(key), "h%d", j->job);
	rv = store_put(
	    t, store_db(store_txn_store(t), 0), key, strlen(key), "x", 1);
	assert_int_equal(rv, 0);
	for (int k = 1; k <= 2; k++) {
		hook_arg *h = calloc(1, sizeof(*h));
		assert_non_null(h);
		h->log = j->log;
		h->id = j->job * 10 + k;
		snprintf(h->key, sizeof(h->key), "%s", key);
		j->log->regs++;
		assert_int_equal(
		    store_txn_on_commit(t, hook_run, h, hook_free), 0);
	}
	return j->fail;
}

static void
hook_job_done(int rv, void *arg)
{
	hook_job *j = arg;
	j->done_rv = rv;
	/* The reply comes after the job's hooks. */
	j->log->events[j->log->n++] = -j->job;
}

static void
test_on_commit_hooks(void **state)
{
	tdir d;
	store *s;
	gate g;
	hook_log log = { 0 };
	hook_job jobs[3] = { { &log, 1, 0, -1 }, { &log, 2, OD_EPERM, -1 },
		{ &log, 3, 0, -1 } };
	const int want[] = { 11, 12, -1, -2, 31, 32, -3 };
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	log.s = s;
	gate_init(&g);
	gate_hold(s, &g);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_submit(s, job_with_hooks, &jobs[i],
		                     hook_job_done, &jobs[i]),
		    0);
	}
	/* Nothing runs before the commit. */
	assert_int_equal(log.n, 0);
	gate_release(&g);
	drain(s);

	assert_int_equal(log.n, (int) (sizeof(want) / sizeof(want[0])));
	for (int i = 0; i < log.n; i++) {
		assert_int_equal(log.events[i], want[i]);
	}
	assert_true(log.saw_committed[1]);
	assert_true(log.saw_committed[3]);
	assert_false(log.saw_committed[2]);
	/* Every registration was freed, run or not (jobs may have run twice:
	 * a failed job makes the batch run again, a child txn each). */
	assert_true(log.regs >= 6);
	assert_int_equal(log.frees, log.regs);
	assert_int_equal(jobs[1].done_rv, OD_EPERM);
	store_close(s);
	gate_fini(&g);
	tdir_remove(&d);
}

/* ---- concurrency ---- */

#define N_THREADS  16
#define PER_THREAD 20

typedef struct writer_arg {
	store *s;
	int id;
	int n;
	int errors;
} writer_arg;

static void *
writer_thread(void *p)
{
	writer_arg *w = p;
	for (int i = 0; i < w->n; i++) {
		put_arg a = { .fail = 0 };
		snprintf(a.key, sizeof(a.key), "t%02d-%05d", w->id, i);
		snprintf(a.val, sizeof(a.val), "value %d of %d", i, w->id);
		if (store_write(w->s, job_put, &a) != 0) {
			w->errors++;
		}
	}
	return NULL;
}

static void
start_writers(store *s, pthread_t *th, writer_arg *w, int n, int per)
{
	for (int i = 0; i < n; i++) {
		w[i] = (writer_arg) { s, i, per, 0 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
	}
}

static void
join_writers(pthread_t *th, writer_arg *w, int n)
{
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
}

static void
test_concurrent_writers(void **state)
{
	tdir d;
	store *s;
	gate g;
	pthread_t th[N_THREADS];
	writer_arg w[N_THREADS];
	store_stats st;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	gate_init(&g);
	/* Hold the writer until every thread has a job waiting, so the
	 * next batch holds all of them. */
	gate_hold(s, &g);
	start_writers(s, th, w, N_THREADS, PER_THREAD);
	wait_queue_depth(s, N_THREADS);
	gate_release(&g);
	join_writers(th, w, N_THREADS);

	assert_int_equal(count_entries(s, 0), N_THREADS * PER_THREAD);
	store_get_stats(s, &st);
	assert_int_equal(st.jobs, N_THREADS * PER_THREAD + 1);
	assert_int_equal(st.jobs_failed, 0);
	assert_true(st.max_batch_seen >= N_THREADS);
	assert_true(st.commits < st.jobs);
	assert_int_equal(st.queue_depth, 0);
	store_close(s);
	/* And all of it is durable. */
	s = open_at(d.db, 0);
	assert_int_equal(count_entries(s, 0), N_THREADS * PER_THREAD);
	store_close(s);
	gate_fini(&g);
	tdir_remove(&d);
}

/* A job must not wait for its own writer. */
static int
job_write_from_writer(store_txn *t, void *arg)
{
	*(int *) arg = store_write(store_txn_store(t), job_nop, NULL);
	return 0;
}

static void
test_write_from_writer_refused(void **state)
{
	tdir d;
	store *s;
	int inner = -1;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	assert_int_equal(store_write(s, job_write_from_writer, &inner), 0);
	assert_int_equal(inner, OD_ESTATE);
	store_close(s);
	tdir_remove(&d);
}

/*
 * The writer does not wait for replies: while a committed job's done
 * callback is still running, the next job runs and commits. Done
 * callbacks keep the order of the queue, and one that writes is refused
 * (it would wait for itself).
 */
typedef struct slow_done {
	sem_t entered;
	sem_t release;
	store *s;
	int write_rv;
	int order[3];
	int n;
} slow_done;

static void
slow_done_cb(int rv, void *arg)
{
	slow_done *d = arg;
	assert_int_equal(rv, 0);
	d->write_rv = store_write(d->s, job_nop, NULL);
	d->order[d->n++] = 1;
	sem_post(&d->entered);
	while (sem_wait(&d->release) != 0) { }
}

static void
order_done_cb(int rv, void *arg)
{
	slow_done *d = arg;
	assert_int_equal(rv, 0);
	d->order[d->n++] = 2;
}

static void
test_done_runs_beside_writer(void **state)
{
	tdir d;
	slow_done sd = { .write_rv = -1 };
	put_arg a = { .key = "first", .val = "1" };
	put_arg b = { .key = "second", .val = "2" };
	store_stats st;
	(void) state;

	tdir_make(&d);
	sd.s = open_at(d.db, 0);
	assert_int_equal(sem_init(&sd.entered, 0, 0), 0);
	assert_int_equal(sem_init(&sd.release, 0, 0), 0);
	assert_int_equal(
	    store_submit(sd.s, job_put, &a, slow_done_cb, &sd), 0);
	while (sem_wait(&sd.entered) != 0) { }
	/* The first done is blocked; the writer is free. */
	assert_int_equal(sd.write_rv, OD_ESTATE);
	assert_int_equal(
	    store_submit(sd.s, job_put, &b, order_done_cb, &sd), 0);
	for (int i = 0; i < 5000; i++) {
		store_get_stats(sd.s, &st);
		if (st.commits >= 2) {
			break;
		}
		usleep(1000);
	}
	assert_int_equal(st.commits, 2);
	assert_int_equal(sd.n, 1); /* its done waits for the first's */
	sem_post(&sd.release);
	drain(sd.s);
	assert_int_equal(sd.n, 2);
	assert_int_equal(sd.order[0], 1);
	assert_int_equal(sd.order[1], 2);
	assert_int_equal(count_entries(sd.s, 0), 2);
	store_close(sd.s);
	sem_destroy(&sd.entered);
	sem_destroy(&sd.release);
	tdir_remove(&d);
}

/* Lazy jobs wait for company: they ride with the next eager job in one
 * commit, and alone they commit once their linger is over; close does
 * not wait for a linger. */
static sem_t lazy_sem;

static void
lazy_alone_done(int rv, void *arg)
{
	put_done(rv, arg);
	sem_post(&lazy_sem);
}

static void
test_lazy_jobs(void **state)
{
	tdir d;
	store *s;
	store_stats st0, st1;
	put_arg a[4];
	(void) state;

	memset(a, 0, sizeof(a));
	tdir_make(&d);
	s = open_at(d.db, 0);
	drain(s);
	store_get_stats(s, &st0);
	for (int i = 0; i < 3; i++) {
		snprintf(a[i].key, sizeof(a[i].key), "lazy%d", i);
		snprintf(a[i].val, sizeof(a[i].val), "v");
		assert_int_equal(store_submit_lazy(s, job_put, &a[i], put_done,
		                     &a[i], 600000),
		    0);
	}
	assert_int_equal(
	    store_submit_lazy(s, job_put, &a[0], put_done, &a[0], -1),
	    OD_EINVAL);
	/* An eager write takes them along: one commit, theirs done first. */
	put_sync(s, "eager", "v");
	store_get_stats(s, &st1);
	assert_int_equal(st1.commits - st0.commits, 1);
	for (int i = 0; i < 3; i++) {
		assert_true(a[i].done);
		assert_int_equal(a[i].done_rv, 0);
	}
	assert_int_equal(count_entries(s, 0), 4);
	/* Alone, a lazy job commits when its linger is over. */
	assert_int_equal(sem_init(&lazy_sem, 0, 0), 0);
	snprintf(a[3].key, sizeof(a[3].key), "alone");
	snprintf(a[3].val, sizeof(a[3].val), "v");
	assert_int_equal(
	    store_submit_lazy(s, job_put, &a[3], lazy_alone_done, &a[3], 20),
	    0);
	while (sem_wait(&lazy_sem) != 0) { }
	assert_int_equal(a[3].done_rv, 0);
	assert_int_equal(count_entries(s, 0), 5);
	/* Close runs a lingering job at once. */
	memset(&a[0], 0, sizeof(a[0]));
	snprintf(a[0].key, sizeof(a[0].key), "at-close");
	snprintf(a[0].val, sizeof(a[0].val), "v");
	assert_int_equal(
	    store_submit_lazy(s, job_put, &a[0], put_done, &a[0], 600000), 0);
	store_close(s);
	assert_true(a[0].done);
	assert_int_equal(a[0].done_rv, 0);
	sem_destroy(&lazy_sem);
	tdir_remove(&d);
}

/* ---- map growth ---- */

/* 300 KB of values: the 64 KiB map doubles at least twice. */
#define N_GROW     200
#define GROW_VALUE 1500

/* Hooks run or are freed on the writer (a retried batch) and on the
 * completion thread, hence atomic counters. */
typedef struct grow_ctx {
	_Atomic int hook_runs;
	_Atomic int hook_frees;
	_Atomic int registered;
} grow_ctx;

static grow_ctx grow;

static void
grow_hook(void *p)
{
	(void) p;
	grow.hook_runs++;
}

static void
grow_free(void *p)
{
	(void) p;
	grow.hook_frees++;
}

static int
job_put_hook(store_txn *t, void *arg)
{
	int rv = job_put(t, arg);
	if (rv == 0) {
		grow.registered++;
		rv = store_txn_on_commit(t, grow_hook, NULL, grow_free);
	}
	return rv;
}

static int
job_big(store_txn *t, void *arg)
{
	size_t len = 300 * 1024;
	char *v = calloc(1, len);
	int rv;
	(void) arg;
	assert_non_null(v);
	rv = store_put(t, store_db(store_txn_store(t), 0), "big", 3, v, len);
	free(v);
	return rv;
}

static void
test_map_growth(void **state)
{
	tdir d;
	store *s;
	put_arg *a = calloc(N_GROW, sizeof(*a));
	store_stats st;
	char buf[GROW_VALUE + 1];
	int bad = 0;
	(void) state;

	assert_non_null(a);
	memset(&grow, 0, sizeof(grow));
	tdir_make(&d);
	s = open_batch(d.db, 64 * 1024, 40);
	for (int i = 0; i < N_GROW; i++) {
		snprintf(a[i].key, sizeof(a[i].key), "key-%06d", i);
		a[i].val[0] = (char) ('a' + i % 26);
		a[i].pad = GROW_VALUE;
		a[i].done_rv = -1;
		assert_int_equal(
		    store_submit(s, job_put_hook, &a[i], put_done, &a[i]), 0);
	}
	drain(s);
	for (int i = 0; i < N_GROW; i++) {
		if (!a[i].done || a[i].done_rv != 0) {
			bad++;
		}
	}
	assert_int_equal(bad, 0);
	assert_int_equal(count_entries(s, 0), N_GROW);
	assert_int_equal(get_str(s, 0, "key-000199", buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), GROW_VALUE);
	store_get_stats(s, &st);
	assert_true(st.map_grows >= 2);
	assert_true(st.map_size >= 256 * 1024);
	/* Retried jobs registered again; each commit ran its hook once and
	 * every registration was freed. */
	assert_int_equal(grow.hook_runs, N_GROW);
	assert_int_equal(grow.hook_frees, grow.registered);
	assert_true(grow.registered > N_GROW);
	store_close(s);
	s = open_at(d.db, 64 * 1024);
	assert_int_equal(count_entries(s, 0), N_GROW);
	put_sync(s, "after", "reopen");
	/* A job alone in its batch, bigger than the whole map. */
	assert_int_equal(store_write(s, job_big, NULL), 0);
	assert_int_equal(count_entries(s, 0), N_GROW + 2);
	store_close(s);
	free(a);
	tdir_remove(&d);
}

/* Thousands of small writes one by one into a 64 KiB map (nosync: this
 * is about growth, not fsync). */
static void
test_map_growth_many_small(void **state)
{
	tdir d;
	store *s = NULL;
	store_options o = { .dbs = test_dbs,
		.db_flags = test_db_flags,
		.map_size = 64 * 1024,
		.nosync = true };
	store_stats st;
	char key[32], val[64];
	(void) state;

	tdir_make(&d);
	o.path = d.db;
	assert_int_equal(store_open(&s, &o), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "small-%06d", i);
		snprintf(val, sizeof(val), "%040d", i);
		put_sync(s, key, val);
	}
	assert_int_equal(count_entries(s, 0), 3000);
	assert_int_equal(get_str(s, 0, "small-002999", val, sizeof(val)), 0);
	assert_int_equal(atoi(val), 2999);
	store_get_stats(s, &st);
	assert_true(st.map_grows >= 2);
	assert_int_equal(st.jobs_failed, 0);
	store_close(s);
	tdir_remove(&d);
}

/* A read txn open across a needed growth: the writer waits for it, and
 * what it reads stays mapped and unchanged until it ends. */
static void
test_grow_waits_for_readers(void **state)
{
	tdir d;
	store *s;
	put_arg *a = calloc(N_GROW, sizeof(*a));
	MDB_txn *txn = NULL;
	MDB_val v;
	store_stats st;
	char seen[16];
	int done = 0;
	(void) state;

	assert_non_null(a);
	tdir_make(&d);
	s = open_batch(d.db, 64 * 1024, 40);
	put_sync(s, "pinned", "still here");
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_get(txn, store_db(s, 0), "pinned", 6, &v), 0);
	for (int i = 0; i < N_GROW; i++) {
		snprintf(a[i].key, sizeof(a[i].key), "key-%06d", i);
		a[i].val[0] = 'x';
		a[i].pad = GROW_VALUE;
		assert_int_equal(
		    store_submit(s, job_put, &a[i], put_done, &a[i]), 0);
	}
	for (;;) {
		store_get_stats(s, &st);
		if (st.grow_waits > 0) {
			break;
		}
		usleep(1000);
	}
	/* The map was not remapped under us. */
	assert_int_equal(v.mv_size, 10);
	memcpy(seen, v.mv_data, v.mv_size);
	assert_memory_equal(seen, "still here", 10);
	store_read_end(txn);
	drain(s);
	for (int i = 0; i < N_GROW; i++) {
		done += a[i].done && a[i].done_rv == 0;
	}
	assert_int_equal(done, N_GROW);
	store_get_stats(s, &st);
	assert_true(st.map_grows >= 1);
	assert_int_equal(st.grow_timeouts, 0);
	store_close(s);
	free(a);
	tdir_remove(&d);
}

/* ---- schema ---- */

typedef struct mig_ctx {
	int calls;
	unsigned from;
	unsigned to;
	int fail;
} mig_ctx;

static int
migrate_fn(store_txn *t, unsigned from, unsigned to, void *arg)
{
	mig_ctx *m = arg;
	char val[16];
	m->calls++;
	m->from = from;
	m->to = to;
	snprintf(val, sizeof(val), "%u->%u", from, to);
	assert_int_equal(store_put(t, store_db(store_txn_store(t), 0),
	                     "migrated", 8, val, strlen(val)),
	    0);
	return m->fail;
}

static int
open_version(const char *path, unsigned v, mig_ctx *m, store **out)
{
	store_options o = { .path = path,
		.dbs = test_dbs,
		.db_flags = test_db_flags,
		.schema_version = v,
		.migrate = m != NULL ? migrate_fn : NULL,
		.migrate_arg = m };
	return store_open(out, &o);
}

static void
test_schema_migration(void **state)
{
	tdir d;
	store *s = NULL;
	mig_ctx m = { 0 };
	char buf[32];
	(void) state;

	tdir_make(&d);
	/* A new store starts at its version: no migration. */
	assert_int_equal(open_version(d.db, 0, &m, &s), 0);
	assert_int_equal(m.calls, 0);
	put_sync(s, "k", "v");
	store_close(s);

	assert_int_equal(open_version(d.db, 2, &m, &s), 0);
	assert_int_equal(m.calls, 1);
	assert_int_equal(m.from, 1);
	assert_int_equal(m.to, 2);
	assert_int_equal(get_str(s, 0, "migrated", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1->2");
	store_close(s);

	assert_int_equal(open_version(d.db, 2, &m, &s), 0);
	assert_int_equal(m.calls, 1);
	store_close(s);

	/* An older build refuses the newer store. */
	s = NULL;
	assert_int_equal(open_version(d.db, 1, NULL, &s), OD_ESTATE);
	assert_null(s);

	/* A failed migration changes nothing, and is retried next open. */
	m.fail = OD_EIO;
	assert_int_equal(open_version(d.db, 3, &m, &s), OD_EIO);
	assert_int_equal(m.calls, 2);
	m.fail = 0;
	assert_int_equal(open_version(d.db, 3, &m, &s), 0);
	assert_int_equal(m.calls, 3);
	assert_int_equal(m.from, 2);
	assert_int_equal(get_str(s, 0, "k", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "v");
	store_close(s);
	tdir_remove(&d);
}

/* ---- counters ---- */

typedef struct ctr_arg {
	uint64_t got[4];
	int fail;
} ctr_arg;

static int
job_counters(store_txn *t, void *arg)
{
	ctr_arg *c = arg;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_next_id(t, "ticket", &c->got[i]), 0);
	}
	assert_int_equal(store_next_id(t, "incident", &c->got[3]), 0);
	assert_int_equal(store_next_id(t, "", &c->got[3]), OD_EINVAL);
	return c->fail;
}

static void
test_counters(void **state)
{
	tdir d;
	store *s;
	ctr_arg c = { { 0 }, 0 };
	MDB_txn *txn = NULL;
	uint64_t v = 99;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_counter(txn, s, "ticket", &v), 0);
	assert_int_equal(v, 0);
	store_read_end(txn);

	assert_int_equal(store_write(s, job_counters, &c), 0);
	assert_int_equal(c.got[0], 1);
	assert_int_equal(c.got[1], 2);
	assert_int_equal(c.got[2], 3);
	assert_int_equal(c.got[3], 1);
	/* A failed job's ids are not used up. */
	c.fail = OD_EPERM;
	assert_int_equal(store_write(s, job_counters, &c), OD_EPERM);
	store_close(s);

	s = open_at(d.db, 0);
	assert_int_equal(store_read_begin(s, &txn), 0);
	assert_int_equal(store_counter(txn, s, "ticket", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(store_counter(txn, s, "incident", &v), 0);
	assert_int_equal(v, 1);
	store_read_end(txn);
	c.fail = 0;
	assert_int_equal(store_write(s, job_counters, &c), 0);
	assert_int_equal(c.got[0], 4);
	store_close(s);
	tdir_remove(&d);
}

/* ---- files and backups ---- */

static unsigned
mode_of(const char *dir, const char *name)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s%s%s", dir, name[0] ? "/" : "", name);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static void
test_file_modes(void **state)
{
	tdir d;
	store *s;
	char nested[400];
	char parent[380];
	mode_t old
	    = umask(0); /* the store, not the umask, makes them private */
	(void) state;

	tdir_make(&d);
	snprintf(parent, sizeof(parent), "%s/data", d.root);
	snprintf(nested, sizeof(nested), "%s/svc", parent);
	s = open_at(nested, 0);
	umask(old);
	assert_int_equal(mode_of(parent, ""), 0700);
	assert_int_equal(mode_of(nested, ""), 0700);
	assert_int_equal(mode_of(nested, "data.mdb"), 0600);
	assert_int_equal(mode_of(nested, "lock.mdb"), 0600);
	store_close(s);
	tdir_remove(&d);
}

static void
check_backup(const char *dir, int min_keys)
{
	store *b;
	char buf[200];
	assert_int_equal(mode_of(dir, ""), 0700);
	assert_int_equal(mode_of(dir, "data.mdb"), 0600);
	b = open_at(dir, 0);
	for (int i = 0; i < min_keys; i++) {
		char key[32];
		snprintf(key, sizeof(key), "pre-%04d", i);
		assert_int_equal(get_str(b, 0, key, buf, sizeof(buf)), 0);
	}
	store_close(b);
}

static void
put_pre(store *s, int n)
{
	for (int i = 0; i < n; i++) {
		char key[32];
		snprintf(key, sizeof(key), "pre-%04d", i);
		put_sync(s, key, "before the backup");
	}
}

/* No "<dest>.tmp-<pid>" left next to the backup. */
static void
assert_no_tmp(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		assert_null(strstr(e->d_name, ".tmp-"));
	}
	closedir(d);
}

static void
test_backup_while_writing(void **state)
{
	tdir d;
	store *s;
	pthread_t th[4];
	writer_arg w[4];
	char dest[400];
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	put_pre(s, 50);
	start_writers(s, th, w, 4, 30);
	snprintf(dest, sizeof(dest), "%s/backup", d.root);
	assert_int_equal(store_backup(s, dest), 0);
	/* Not over an existing backup. */
	assert_int_equal(store_backup(s, dest), OD_EEXIST);
	join_writers(th, w, 4);
	store_close(s);
	check_backup(dest, 50);
	assert_no_tmp(d.root);
	tdir_remove(&d);
}

/* This binary, resolved at start (under valgrind /proc/self/exe would
 * name valgrind's tool). */
static char self_path[4096];

/* Run this binary in one of its helper modes; its exit status. */
static int
spawn_self(const char *mode, const char *a, const char *b)
{
	char *argv[]
	    = { "store_test", (char *) mode, (char *) a, (char *) b, NULL };
	pid_t pid;
	int status = 0;
	assert_int_equal(
	    posix_spawn(&pid, self_path, NULL, NULL, argv, environ), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int
spawn_backup_path(const char *src, const char *dst)
{
	return spawn_self("--backup-path", src, dst);
}

/* Helper mode: take a reader slot in dir's store and die holding it. */
static int
stale_reader_main(const char *dir)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	if (mdb_env_create(&env) != 0
	    || mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600) != 0
	    || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0) {
		return 1;
	}
	_exit(0); /* no abort, no close: the slot stays taken */
}

static void
test_backup_path_other_process(void **state)
{
	tdir d;
	store *s;
	pthread_t th[4];
	writer_arg w[4];
	char dest[400];
	char missing[400];
	(void) state;

	tdir_make(&d);
	/* A tiny map, so the owner is likely to grow it during the copy. */
	s = open_at(d.db, 64 * 1024);
	put_pre(s, 50);
	start_writers(s, th, w, 4, 30);
	snprintf(dest, sizeof(dest), "%s/nested/copy", d.root);
	assert_int_equal(spawn_backup_path(d.db, dest), 0);
	join_writers(th, w, 4);
	check_backup(dest, 50);
	/* The destination must be empty or new; a missing store is told. */
	assert_int_equal(spawn_backup_path(d.db, dest), OD_EEXIST);
	snprintf(missing, sizeof(missing), "%s/none", d.root);
	assert_int_equal(spawn_backup_path(missing, d.root), OD_ENOTFOUND);
	store_close(s);
	/* And with the owner stopped. */
	snprintf(dest, sizeof(dest), "%s/copy2/", d.root);
	assert_int_equal(store_backup_path(d.db, dest), 0);
	check_backup(dest, 50);
	assert_no_tmp(d.root);
	tdir_remove(&d);
}

/* ---- close ---- */

static void *
closer_thread(void *p)
{
	store_close(p);
	return NULL;
}

#define N_QUEUED 40

static void
test_close_drains_queue(void **state)
{
	tdir d;
	store *s;
	gate g;
	put_arg *a = calloc(N_QUEUED, sizeof(*a));
	pthread_t closer;
	int extra = 0;
	put_arg probe[64];
	(void) state;

	assert_non_null(a);
	tdir_make(&d);
	s = open_at(d.db, 0);
	gate_init(&g);
	gate_hold(s, &g);
	for (int i = 0; i < N_QUEUED; i++) {
		snprintf(a[i].key, sizeof(a[i].key), "q%03d", i);
		snprintf(a[i].val, sizeof(a[i].val), "v");
		a[i].done_rv = -1;
		assert_int_equal(
		    store_submit(s, job_put, &a[i], put_done, &a[i]), 0);
	}
	assert_int_equal(pthread_create(&closer, NULL, closer_thread, s), 0);
	/* Submissions are refused as soon as close began (the writer is
	 * still held, so s is alive while we probe). */
	for (;;) {
		put_arg *p = &probe[extra % 64];
		memset(p, 0, sizeof(*p));
		snprintf(p->key, sizeof(p->key), "probe");
		int rv = store_submit(s, job_put, p, NULL, NULL);
		if (rv == OD_ECLOSED) {
			break;
		}
		assert_int_equal(rv, 0);
		extra++;
		usleep(100);
	}
	gate_release(&g);
	pthread_join(closer, NULL);
	for (int i = 0; i < N_QUEUED; i++) {
		assert_true(a[i].done);
		assert_int_equal(a[i].done_rv, 0);
	}
	s = open_at(d.db, 0);
	assert_int_equal(count_entries(s, 0), N_QUEUED + (extra > 0 ? 1 : 0));
	store_close(s);
	store_close(NULL);
	gate_fini(&g);
	free(a);
	tdir_remove(&d);
}

static void
test_reader_check(void **state)
{
	tdir d;
	store *s;
	int dead = -1;
	(void) state;

	tdir_make(&d);
	s = open_at(d.db, 0);
	assert_int_equal(store_reader_check(s, &dead), 0);
	assert_int_equal(dead, 0);
	/* A process that died inside a read txn leaves its slot: cleared. */
	assert_int_equal(spawn_self("--stale-reader", d.db, "-"), 0);
	assert_int_equal(store_reader_check(s, &dead), 0);
	assert_int_equal(dead, 1);
	assert_int_equal(store_reader_check(s, &dead), 0);
	assert_int_equal(dead, 0);
	store_close(s);
	assert_int_equal(store_reader_check(NULL, &dead), OD_EINVAL);
	tdir_remove(&d);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--backup-path") == 0) {
		return store_backup_path(argv[2], argv[3]);
	}
	if (argc == 4 && strcmp(argv[1], "--stale-reader") == 0) {
		return stale_reader_main(argv[2]);
	}
	ssize_t n
	    = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0) {
		return 1;
	}
	self_path[n] = '\0';
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_reopen),
		cmocka_unit_test(test_scan_pages),
		cmocka_unit_test(test_scan_reverse_seek),
		cmocka_unit_test(test_bad_input_and_dups),
		cmocka_unit_test(test_commit_seconds_metric),
		cmocka_unit_test(test_batch_isolation),
		cmocka_unit_test(test_on_commit_hooks),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_write_from_writer_refused),
		cmocka_unit_test(test_done_runs_beside_writer),
		cmocka_unit_test(test_lazy_jobs),
		cmocka_unit_test(test_map_growth),
		cmocka_unit_test(test_map_growth_many_small),
		cmocka_unit_test(test_grow_waits_for_readers),
		cmocka_unit_test(test_schema_migration),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_file_modes),
		cmocka_unit_test(test_backup_while_writing),
		cmocka_unit_test(test_backup_path_other_process),
		cmocka_unit_test(test_close_drains_queue),
		cmocka_unit_test(test_reader_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
