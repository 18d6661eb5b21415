/*
 * store_bench — what group commit buys, measured against its own baseline
 * in the same run and on the same filesystem:
 *   (a) raw LMDB: one write txn and one commit (default sync) per put,
 *       from one thread;
 *   (b) the store: 64 threads each calling store_write with one small
 *       put, so the writer commits many of them per fsync.
 * The two alternate in three rounds and the medians are compared, so the
 * noise of a shared machine falls on both alike. Prints both rates and
 * their ratio (the goal is >= 20x). It checks that every write of (b)
 * landed, and exits non-zero only for that or a failed call; the rates
 * are reported, never asserted.
 *
 *   store_bench [--dir DIR] [--seconds S per side] [--threads N]
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/util.h"

#define VAL_SIZE 64

static const char *const bench_dbs[] = { "bench", NULL };

typedef struct bench_opts {
	const char *dir;
	double seconds;
	int threads;
} bench_opts;

static void
make_val(char *val, uint64_t i)
{
	memset(val, 'v', VAL_SIZE);
	snprintf(val, VAL_SIZE, "value-%llu", (unsigned long long) i);
}

static int
rm_store(const char *dir)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

/* (a) One txn and one synced commit per put, from one thread. */
typedef struct raw_env {
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t next;
} raw_env;

static int
raw_open(raw_env *r, const char *dir)
{
	MDB_txn *txn = NULL;
	int rc;

	if (mkdir(dir, 0700) != 0 || (rc = mdb_env_create(&r->env)) != 0) {
		return -1;
	}
	if ((rc = mdb_env_set_mapsize(r->env, (size_t) 256 << 20)) != 0
	    || (rc = mdb_env_open(r->env, dir, 0, 0600)) != 0
	    || (rc = mdb_txn_begin(r->env, NULL, 0, &txn)) != 0
	    || (rc = mdb_dbi_open(txn, NULL, 0, &r->dbi)) != 0
	    || (rc = mdb_txn_commit(txn)) != 0) {
		fprintf(
		    stderr, "bench_store: raw open: %s\n", mdb_strerror(rc));
		return -1;
	}
	return 0;
}

/* One round of ms milliseconds; writes/s or -1. */
static double
raw_round(raw_env *r, int64_t ms, uint64_t *n_out)
{
	uint64_t n = 0;
	int64_t t0 = od_mono_ms();
	int64_t t1 = t0;
	int rc;

	while (t1 - t0 < ms) {
		MDB_txn *txn = NULL;
		uint8_t key[8];
		char val[VAL_SIZE];
		MDB_val k = { sizeof(key), key };
		MDB_val v = { sizeof(val), val };
		store_key_u64(key, r->next);
		make_val(val, r->next);
		if ((rc = mdb_txn_begin(r->env, NULL, 0, &txn)) != 0
		    || (rc = mdb_put(txn, r->dbi, &k, &v, 0)) != 0
		    || (rc = mdb_txn_commit(txn)) != 0) {
			fprintf(stderr, "bench_store: raw put: %s\n",
			    mdb_strerror(rc));
			return -1;
		}
		r->next++;
		n++;
		t1 = od_mono_ms();
	}
	*n_out += n;
	return (double) n * 1000.0 / (double) (t1 - t0);
}

/* (b) Many threads, one store_write each at a time. Keys come from one
 * sequence, as ids from store_next_id do and as (a) writes them: both
 * sides append to the same end of the tree. */
static atomic_uint_fast64_t next_key;

typedef struct writer {
	store *s;
	int id;
	atomic_bool *stop;
	pthread_barrier_t *go;
	uint64_t n; /* writes this round */
	int err;
	pthread_t th;
} writer;

typedef struct put_job {
	uint8_t key[8];
	char val[VAL_SIZE];
} put_job;

static int
job_put(store_txn *t, void *arg)
{
	put_job *p = arg;
	return store_put(t, store_db(store_txn_store(t), 0), p->key,
	    sizeof(p->key), p->val, sizeof(p->val));
}

static void *
writer_main(void *arg)
{
	writer *w = arg;
	pthread_barrier_wait(w->go);
	while (!atomic_load(w->stop)) {
		put_job p;
		uint64_t id = atomic_fetch_add(&next_key, 1);
		store_key_u64(p.key, id);
		make_val(p.val, id);
		if ((w->err = store_write(w->s, job_put, &p)) != 0) {
			break;
		}
		w->n++;
	}
	return NULL;
}

/* One round of ms milliseconds with `threads` writers; writes/s or -1. */
static double
group_round(store *s, writer *w, int threads, int64_t ms, uint64_t *n_out)
{
	pthread_barrier_t go;
	atomic_bool stop = false;
	uint64_t n = 0;
	int started = 0;
	int err = 0;
	int64_t t0, t1;

	if (pthread_barrier_init(&go, NULL, (unsigned) threads + 1) != 0) {
		return -1;
	}
	for (; started < threads; started++) {
		w[started].s = s;
		w[started].id = started;
		w[started].stop = &stop;
		w[started].go = &go;
		w[started].n = 0;
		if (pthread_create(
		        &w[started].th, NULL, writer_main, &w[started])
		    != 0) {
			fprintf(stderr, "bench_store: cannot start threads\n");
			abort(); /* the barrier would never open */
		}
	}
	pthread_barrier_wait(&go);
	t0 = od_mono_ms();
	usleep((useconds_t) (ms * 1000));
	atomic_store(&stop, true);
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].th, NULL);
		n += w[i].n;
		if (w[i].err != 0) {
			err = w[i].err;
		}
	}
	t1 = od_mono_ms();
	pthread_barrier_destroy(&go);
	if (err != 0) {
		fprintf(stderr, "bench_store: store_write: %s\n",
		    od_strerror(err));
		return -1;
	}
	*n_out += n;
	return (double) n * 1000.0 / (double) (t1 - t0);
}

/* Every acknowledged write must be in the store. */
static int
group_check(store *s, uint64_t n)
{
	MDB_txn *txn = NULL;
	MDB_stat ms;
	int rv = -1;

	if (store_read_begin(s, &txn) == 0
	    && mdb_stat(txn, store_db(s, 0), &ms) == 0 && ms.ms_entries == n) {
		rv = 0;
	} else {
		fprintf(stderr,
		    "bench_store: the store does not hold every "
		    "acknowledged write\n");
	}
	store_read_end(txn);
	return rv;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

#define ROUNDS 3

int
main(int argc, char **argv)
{
	bench_opts o = { getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp",
		3.0, 64 };
	char base[4096], raw_dir[4200], group_dir[4200];
	raw_env raw = { 0 };
	store *s = NULL;
	writer *w = NULL;
	double raw_rate[ROUNDS], group_rate[ROUNDS];
	uint64_t n_raw = 0, n_group = 0;
	store_stats st = { 0 };
	int status = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			o.dir = argv[++i];
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			o.seconds = atof(argv[++i]);
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			o.threads = atoi(argv[++i]);
		} else {
			fprintf(stderr,
			    "usage: store_bench [--dir DIR] [--seconds S] "
			    "[--threads N]\n");
			return 2;
		}
	}
	if (o.seconds <= 0 || o.threads <= 0) {
		fprintf(stderr, "store_bench: bad --seconds or --threads\n");
		return 2;
	}
	mkdir(o.dir, 0700);
	snprintf(base, sizeof(base), "%s/store_bench.XXXXXX", o.dir);
	if (mkdtemp(base) == NULL) {
		fprintf(stderr, "store_bench: mkdtemp in %s: %s\n", o.dir,
		    strerror(errno));
		return 1;
	}
	snprintf(raw_dir, sizeof(raw_dir), "%s/raw", base);
	snprintf(group_dir, sizeof(group_dir), "%s/group", base);

	store_options so = { .path = group_dir,
		.dbs = bench_dbs,
		.map_size = (size_t) 256 << 20 };
	if (raw_open(&raw, raw_dir) != 0 || store_open(&s, &so) != 0
	    || (w = calloc((size_t) o.threads, sizeof(*w))) == NULL) {
		fprintf(stderr, "bench_store: setup failed\n");
		goto out;
	}
	/* Rounds alternate, so that the noise of a shared machine falls on
	 * both sides alike; the medians are compared. */
	int64_t ms = (int64_t) (o.seconds * 1000 / ROUNDS);
	for (int r = 0; r < ROUNDS; r++) {
		raw_rate[r] = raw_round(&raw, ms, &n_raw);
		group_rate[r] = group_round(s, w, o.threads, ms, &n_group);
		if (raw_rate[r] <= 0 || group_rate[r] <= 0) {
			goto out;
		}
		printf("round %d: raw %.0f/s, group %.0f/s\n", r + 1,
		    raw_rate[r], group_rate[r]);
	}
	if (group_check(s, n_group) != 0) {
		goto out;
	}
	store_get_stats(s, &st);
	qsort(raw_rate, ROUNDS, sizeof(double), cmp_double);
	qsort(group_rate, ROUNDS, sizeof(double), cmp_double);
	double rr = raw_rate[ROUNDS / 2], gr = group_rate[ROUNDS / 2];

	printf("raw LMDB, one synced commit per put: %llu puts\n",
	    (unsigned long long) n_raw);
	printf("store group commit, %d writers: %llu puts, %llu commits, "
	       "%.1f puts/commit, largest batch %llu\n",
	    o.threads, (unsigned long long) n_group,
	    (unsigned long long) st.commits,
	    st.commits ? (double) st.jobs / (double) st.commits : 0.0,
	    (unsigned long long) st.max_batch_seen);
	printf("bench_store: raw_commit_per_write=%.0f/s "
	       "group_commit_%d=%.0f/s ratio=%.1fx (medians of %d rounds; "
	       "goal >= 20x: %s)\n",
	    rr, o.threads, gr, gr / rr, ROUNDS,
	    gr / rr >= 20 ? "met" : "NOT met");
	status = 0;
out:
	store_close(s);
	if (raw.env != NULL) {
		mdb_env_close(raw.env);
	}
	free(w);
	rm_store(raw_dir);
	rm_store(group_dir);
	rmdir(base);
	return status;
}
