/*
 * store — the helpers a job or a reader uses on its transaction: values,
 * protobuf messages and counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "util/util.h"

/* LMDB's default limit (mdb_env_get_maxkeysize). */
#define STORE_MAX_KEY 511
/* Messages up to this size are packed on the stack. */
#define STORE_PB_STACK         1024
#define STORE_MAX_COUNTER_NAME 200

int
store__err(store_txn *t, int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return OD_ENOTFOUND;
	case MDB_MAP_FULL:
		if (t != NULL) {
			t->map_full = true;
		}
		return OD_EMAPFULL;
	case MDB_BAD_VALSIZE:
	case MDB_BAD_DBI:
	case EINVAL:
		return OD_EINVAL;
	case MDB_INCOMPATIBLE:
		return OD_ESTATE;
	case ENOMEM:
		return OD_ENOMEM;
	case EACCES:
		return OD_EPERM;
	case ENOSPC:
	case EDQUOT:
		return OD_ENOSPC;
	default:
		return OD_EIO;
	}
}

static bool
store_key_ok(const void *key, size_t klen)
{
	return key != NULL && klen > 0 && klen <= STORE_MAX_KEY;
}

MDB_txn *
store_txn_mdb(store_txn *t)
{
	return t->mdb;
}

store *
store_txn_store(store_txn *t)
{
	return t->s;
}

int64_t
store_txn_now_ms(store_txn *t)
{
	return t->now_ms;
}

int
store_put(store_txn *t, MDB_dbi db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_val k = { klen, (void *) key };
	MDB_val v = { vlen, (void *) val };

	if (t == NULL || t->mdb == NULL || !store_key_ok(key, klen)
	    || (val == NULL && vlen > 0)) {
		return OD_EINVAL;
	}
	return store__err(t, mdb_put(t->mdb, db, &k, &v, 0));
}

int
store_del(store_txn *t, MDB_dbi db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	MDB_val k = { klen, (void *) key };
	MDB_val v = { vlen, (void *) val };

	if (t == NULL || t->mdb == NULL || !store_key_ok(key, klen)) {
		return OD_EINVAL;
	}
	return store__err(t, mdb_del(t->mdb, db, &k, val != NULL ? &v : NULL));
}

int
store_put_pb(store_txn *t, MDB_dbi db, const void *key, size_t klen,
    const ProtobufCMessage *m)
{
	uint8_t stack[STORE_PB_STACK];
	uint8_t *buf = stack;
	size_t len;
	int rv;

	if (m == NULL) {
		return OD_EINVAL;
	}
	len = protobuf_c_message_get_packed_size(m);
	if (len > sizeof(stack) && (buf = malloc(len)) == NULL) {
		return OD_ENOMEM;
	}
	protobuf_c_message_pack(m, buf);
	rv = store_put(t, db, key, klen, buf, len);
	if (buf != stack) {
		free(buf);
	}
	return rv;
}

int
store_get(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, MDB_val *out)
{
	MDB_val k = { klen, (void *) key };
	MDB_val v;
	int rc;

	if (txn == NULL || out == NULL || !store_key_ok(key, klen)) {
		return OD_EINVAL;
	}
	if ((rc = mdb_get(txn, db, &k, &v)) != 0) {
		return store__err(NULL, rc);
	}
	*out = v;
	return 0;
}

int
store_get_pb(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	ProtobufCMessage *m;
	MDB_val v;
	int rv;

	if (desc == NULL || out == NULL) {
		return OD_EINVAL;
	}
	if ((rv = store_get(txn, db, key, klen, &v)) != 0) {
		return rv;
	}
	m = protobuf_c_message_unpack(desc, NULL, v.mv_size, v.mv_data);
	if (m == NULL) {
		return OD_EMALFORMED;
	}
	*out = m;
	return 0;
}

/* "counter:<name>" into key; its length or 0 for a bad name. */
static size_t
store_counter_key(const char *name, char *key, size_t size)
{
	size_t n;

	if (name == NULL || name[0] == '\0'
	    || strlen(name) > STORE_MAX_COUNTER_NAME) {
		return 0;
	}
	n = (size_t) snprintf(
	    key, size, "%s%s", STORE__META_COUNTER_PREFIX, name);
	return n < size ? n : 0;
}

/* The counter's value in txn: 0 when it was never used. */
static int
store_counter_read(
    MDB_txn *txn, MDB_dbi meta, const char *key, size_t klen, uint64_t *out)
{
	MDB_val v;
	int rv = store_get(txn, meta, key, klen, &v);

	if (rv == OD_ENOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rv != 0) {
		return rv;
	}
	if (v.mv_size != 8) {
		return OD_EMALFORMED;
	}
	*out = od_get_be64(v.mv_data);
	return 0;
}

int
store_next_id(store_txn *t, const char *counter, uint64_t *out)
{
	char key[STORE_MAX_COUNTER_NAME + 16];
	size_t klen = store_counter_key(counter, key, sizeof(key));
	uint8_t val[8];
	uint64_t cur;
	int rv;

	if (t == NULL || t->mdb == NULL || out == NULL || klen == 0) {
		return OD_EINVAL;
	}
	rv = store_counter_read(t->mdb, store__meta_db(t->s), key, klen, &cur);
	if (rv != 0) {
		return rv;
	}
	od_put_be64(val, cur + 1);
	rv = store_put(t, store__meta_db(t->s), key, klen, val, sizeof(val));
	if (rv != 0) {
		return rv;
	}
	*out = cur + 1;
	return 0;
}

int
store_counter(MDB_txn *txn, store *s, const char *counter, uint64_t *out)
{
	char key[STORE_MAX_COUNTER_NAME + 16];
	size_t klen = store_counter_key(counter, key, sizeof(key));
	uint64_t v;
	int rv;

	if (txn == NULL || s == NULL || out == NULL || klen == 0) {
		return OD_EINVAL;
	}
	if ((rv = store_counter_read(txn, store__meta_db(s), key, klen, &v))
	    != 0) {
		return rv;
	}
	*out = v;
	return 0;
}
