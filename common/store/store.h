/*
 * store — one LMDB environment per process, its named DBs, and a single
 * writer thread with group commit.
 *
 * Writes are jobs: a function run on the writer thread inside a
 * transaction. The writer takes every job that is waiting (up to
 * max_batch), runs them all in one transaction, and commits it once — one
 * fsync for the whole batch. A job whose function returns non-zero
 * changes nothing; the others are not affected (the batch is then run
 * again with each job in a child transaction of its own, so a job may
 * run more than once). Only after the commit is durable are the jobs' done
 * callbacks and on-commit hooks run, so "replied" always means "durable".
 *
 * If the map fills (MDB_MAP_FULL) the writer aborts the batch, doubles the
 * map and runs the whole batch again: a job function must therefore have
 * no effect outside its transaction other than through
 * store_txn_on_commit(), and must be safe to run twice.
 *
 * Reads use their own read-only transactions from any thread (the
 * environment is opened MDB_NOTLS). Values returned by LMDB live until the
 * transaction ends or the next write in it: copy or unpack before. Begin
 * them with store_read_begin, not mdb_txn_begin on store_env(): growing
 * the map remaps the file, and the writer waits for the read txns it
 * knows of to end first (up to 10 s; then the batch fails with
 * OD_EMAPFULL). So keep read txns short and never wait for a write while
 * holding one.
 *
 * The store keeps three internal DBs: "__meta" (schema version, counters),
 * "__idem" and "__idem_time" (the rpc idempotency cache; plain DBs, no
 * DUPSORT).
 */
#ifndef OPSDESK_STORE_H
#define OPSDESK_STORE_H

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_txn store_txn;

#define STORE_MAX_DBS 32

typedef struct store_options {
	const char *path; /* directory; created 0700, files 0600 */
	/* NULL-terminated names of the service's named DBs; the index of a
	 * name is its handle for store_db(). */
	const char *const *dbs;
	/* Optional flags per DB (e.g. MDB_DUPSORT), same order; may be NULL.
	 */
	const unsigned *db_flags;
	size_t map_size;    /* initial map; 0: 64 MiB */
	unsigned max_batch; /* jobs per commit; 0: 512 */
	bool nosync;        /* MDB_NOSYNC: only for rebuildable data */
	/* Schema version this build writes. A store with an older version is
	 * migrated by migrate(txn, from, to) in one write txn at open (also
	 * the one that opens the DBs; migrate NULL: only the version is
	 * updated); a newer one refuses to open (OD_ESTATE). A new store
	 * starts at this version without a migrate call. 0 means 1. */
	unsigned schema_version;
	int (*migrate)(store_txn *txn, unsigned from, unsigned to, void *arg);
	void *migrate_arg;
	/* Optional: where opsdesk_store_commit_seconds (the time to run and
	 * durably commit one batch) is observed. runtime_open_store sets it.
	 */
	struct metrics *metrics;
} store_options;

/* Open (creating if needed) and start the writer thread. */
int store_open(store **out, const store_options *opt);
/* Run the waiting jobs, stop the writer, close the env. NULL-safe. */
void store_close(store *s);

MDB_env *store_env(store *s);
/* The handle of the DB at `index` in options.dbs (0, which every LMDB
 * call refuses, when out of range). */
MDB_dbi store_db(const store *s, unsigned index);
/* Internal DBs, for the rpc idempotency cache. */
MDB_dbi store_idem_db(const store *s);
MDB_dbi store_idem_time_db(const store *s);

/* ---- writes ---- */

typedef int (*store_write_fn)(store_txn *txn, void *arg);
typedef void (*store_done_fn)(int rv, void *arg);

/*
 * Queue a write job. fn(txn, arg) runs on the writer thread; done(rv,
 * done_arg) runs on the store's completion thread after the batch
 * committed (rv is fn's return, or the commit's error as an od_err),
 * while the writer already runs the next batch. Done callbacks and hooks
 * run one at a time, in queue order. done may be NULL. Returns
 * OD_ECLOSED after store_close began; then neither fn nor done runs.
 */
int store_submit(store *s, store_write_fn fn, void *arg, store_done_fn done,
    void *done_arg);
/* The same for a job that need not be durable at once (delivery
 * bookkeeping, notifications): it waits up to linger_ms for other jobs to
 * share its commit (it rides with the next job that does not wait, or
 * with the others once 64 are queued); 0 is store_submit. Order is kept:
 * a later job never commits before it. */
int store_submit_lazy(store *s, store_write_fn fn, void *arg,
    store_done_fn done, void *done_arg, int linger_ms);
/* Queue a job and wait for its commit. Returns fn's rv or the commit
 * error. Must not be called from the writer or the completion thread
 * (OD_ESTATE). */
int store_write(store *s, store_write_fn fn, void *arg);

/* The LMDB transaction of a job (the batch's txn, or a child of it
 * when the batch is rerun after a job failed). */
MDB_txn *store_txn_mdb(store_txn *t);
store *store_txn_store(store_txn *t);
/* The time the batch began, from od_now_ms(): one clock for the job. */
int64_t store_txn_now_ms(store_txn *t);
/*
 * Run fn(arg) after this job's changes are durable, on the completion
 * thread (before the job's done), in registration order; then free_fn(arg) if
 * not NULL. If the job is aborted or the batch retried, only free_fn runs.
 * Returns OD_ENOMEM (after calling free_fn) when it cannot register. Takes
 * ownership of arg through free_fn in every case.
 */
int store_txn_on_commit(store_txn *t, void (*fn)(void *arg), void *arg,
    void (*free_fn)(void *arg));

/* Convenience wrappers; they return 0, OD_ENOTFOUND, OD_EMAPFULL,
 * OD_EINVAL (no key, a key over 511 bytes, a bad handle) or OD_EIO. A job
 * should return what they return: OD_EMAPFULL makes the store grow and
 * rerun the batch (it is also noticed when the job returns another code).
 * key and val are borrowed (copied into the map). */
int store_put(store_txn *t, MDB_dbi db, const void *key, size_t klen,
    const void *val, size_t vlen);
int store_del(store_txn *t, MDB_dbi db, const void *key, size_t klen,
    const void *val, size_t vlen); /* val NULL: all values of key */
/* Pack m (borrowed) and put it under key. */
int store_put_pb(store_txn *t, MDB_dbi db, const void *key, size_t klen,
    const ProtobufCMessage *m);
/* The next value of a named counter in __meta (1, 2, 3, ...); counter is
 * a name of 1..200 bytes. */
int store_next_id(store_txn *t, const char *counter, uint64_t *out);

/* ---- reads ---- */

/* Begin and end a read-only transaction (any thread; it may end on
 * another thread than it began). */
int store_read_begin(store *s, MDB_txn **out);
void store_read_end(MDB_txn *txn); /* NULL-safe */
/* Get a value: 0 and *out set, or OD_ENOTFOUND / OD_EIO. Valid until the
 * txn ends or writes. */
int store_get(
    MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, MDB_val *out);
/* Get and unpack a protobuf message (OD_EMALFORMED when the bytes do not
 * decode); caller frees with protobuf_c_message_free_unpacked(*out,
 * NULL). */
int store_get_pb(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
/* Read a named counter's current value (0 if never used). */
int store_counter(MDB_txn *txn, store *s, const char *counter, uint64_t *out);

/* ---- operations ---- */

/* Clear stale reader slots; *dead (may be NULL) gets how many. Also run by
 * the writer every minute. */
int store_reader_check(store *s, int *dead);
/* A compacted, consistent copy into dir (created, must not exist or be
 * empty), taken while the store runs: copied into dir.tmp-<pid>, then
 * renamed. Files are 0600. */
int store_backup(store *s, const char *dir);
/*
 * The same compacted copy of the store in store_dir, taken from another
 * process while its owner runs (opsctl backup): the environment is opened
 * read-only and a map growth by the owner during the copy is followed.
 * OD_ENOTFOUND when store_dir holds no store, OD_EEXIST when dest_dir is
 * not empty. Must not be called in the process that has the store open
 * (LMDB allows one environment per file and process): use store_backup
 * there.
 */
int store_backup_path(const char *store_dir, const char *dest_dir);

typedef struct store_stats {
	uint64_t commits;     /* batches committed */
	uint64_t jobs;        /* jobs run */
	uint64_t jobs_failed; /* jobs whose fn returned non-zero */
	uint64_t map_grows;
	uint64_t queue_depth; /* jobs waiting now */
	size_t map_size;
	uint64_t max_batch_seen;
	/* Grows that waited for read txns to end, and those that gave up
	 * (their batch failed with OD_EMAPFULL). */
	uint64_t grow_waits;
	uint64_t grow_timeouts;
	/* Batches that failed because the disk is full (ENOSPC, EDQUOT) or
	 * the map could not grow, and whether writes fail now. */
	uint64_t disk_full_errors;
	uint64_t map_full_errors;
	bool write_failing;
} store_stats;
void store_get_stats(store *s, store_stats *out);

/*
 * Whether writes commit. False from the first batch that fails for lack
 * of space (disk full or map full: logged once per episode, with the path
 * and the free space) until a commit succeeds again; while false and
 * idle, the writer tries a small commit every second, so that the store
 * recovers by itself when space is freed. runtime's /readyz uses it.
 */
bool store_writable(store *s);

/* Keys: big-endian so byte order is numeric order. */
static inline void
store_key_u64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t) (v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t
store_key_get_u64(const void *key)
{
	const uint8_t *p = key;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | p[i];
	}
	return v;
}

/* ---- scans (store_scan.c) ---- */

/*
 * A forward scan over the keys of db that start with a prefix, resumable
 * by a page cursor. The scan owns its LMDB cursor and the prefix bound;
 * every paged list uses its one cursor format: the lowercase hex of the
 * first key of the next page (the key store_scan_next returned when the
 * page was full), so a page starts there, or at the key after it when it
 * is gone, whatever the key holds. Use:
 *	while ((rv = store_scan_next(&sc, &k, &v)) == 0) {
 *		if (n == limit) { store_scan_page_cursor(&sc, buf, size);
 *			break; }
 *		... add it ...
 *	}
 */
#define STORE_SCAN_PREFIX_MAX 511           /* LMDB's default max key */
#define STORE_PAGE_CURSOR_MAX (2 * 511 + 1) /* LMDB's default max key */

typedef struct store_scan {
	MDB_cursor *cur;
	uint8_t prefix[STORE_SCAN_PREFIX_MAX];
	size_t prefix_len;
	MDB_val key, val; /* the last returned, valid until the next call */
	bool started;
	bool done;
	uint8_t from[511]; /* the page cursor's key, decoded */
	size_t from_len;
	bool reverse;
} store_scan;

/*
 * Open a scan of db in txn (borrowed; the scan must end before it) over
 * keys starting with prefix (prefix_len <= STORE_SCAN_PREFIX_MAX; 0: every
 * key), from the key page_cursor names (NULL or "": from the first).
 * OD_EINVAL when page_cursor is not one store_scan_page_cursor gave for
 * this prefix; OD_EIO when LMDB cannot open a cursor. On success close
 * with store_scan_close.
 */
int store_scan_open(store_scan *s, MDB_txn *txn, MDB_dbi db,
    const void *prefix, size_t prefix_len, const char *page_cursor);
/* The next key and value (borrowed until the next call or the txn's end):
 * 0, OD_ENOTFOUND past the last key of the prefix, or OD_EIO. */
int store_scan_next(store_scan *s, MDB_val *key, MDB_val *val);
/* The page cursor naming the last key returned (or "" before any), into
 * out of at least STORE_PAGE_CURSOR_MAX bytes. */
void store_scan_page_cursor(const store_scan *s, char *out, size_t size);
void store_scan_close(store_scan *s); /* NULL-safe, idempotent */
/*
 * Before the first store_scan_next: walk backwards (newest first for
 * time- or id-ordered keys), from the last key of the prefix, or from
 * the page cursor's key (or the one before it when it is gone). Pages
 * work the same way: the cursor names the first key of the next page.
 */
void store_scan_reverse(store_scan *s);
/*
 * Before the first store_scan_next: start at key (forwards: the first key
 * at or after it; backwards: the last at or before it) instead of the
 * prefix's first (last) key; it replaces a page cursor. OD_EINVAL when
 * key does not start with the prefix or is longer than LMDB's max key.
 */
int store_scan_seek(store_scan *s, const void *key, size_t len);

#endif /* OPSDESK_STORE_H */
