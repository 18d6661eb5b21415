/*
 * Internals shared by the files of the store module (not a public face:
 * nothing outside common/store includes this).
 */
#ifndef OPSDESK_STORE_IMPL_H
#define OPSDESK_STORE_IMPL_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A function to run after a job's commit, with what frees its argument. */
typedef struct store__hook {
	void (*fn)(void *arg);
	void *arg;
	void (*free_fn)(void *arg);
} store__hook;

struct store_txn {
	store *s;
	MDB_txn *mdb;
	int64_t now_ms;
	/* Set by the helpers when LMDB said MDB_MAP_FULL, so a job that
	 * turns the error into its own code still makes the batch grow. */
	bool map_full;
	store__hook *hooks; /* owned; run or freed by store__hooks_finish */
	size_t n_hooks;
	size_t cap_hooks;
};

/* Map an LMDB return code to an od_err; records map-full on t (may be
 * NULL). */
int store__err(store_txn *t, int rc);

/* The reader gate: read txns of this process are counted so that the
 * writer can remap (grow) while none is open. */
void store__reader_enter(store *s);
void store__reader_leave(store *s);

/* Meta keys in __meta. */
#define STORE__META_SCHEMA         "schema_version"
#define STORE__META_COUNTER_PREFIX "counter:"

MDB_dbi store__meta_db(const store *s);

/*
 * Copy env compactly into dest_dir (see store_backup). With
 * follow_resize, env is a read-only env on another process's store: a
 * remap by that process (MDB_MAP_RESIZED) is followed and the copy
 * retried.
 */
int store__backup_env(MDB_env *env, const char *dest_dir, bool follow_resize);
/* mkdir -p with mode 0700 for the missing parts. */
int store__mkdir_p(const char *path);

#endif /* OPSDESK_STORE_IMPL_H */
