/*
 * store_scan — the one way to walk a prefix of an LMDB database a page at
 * a time (see store.h).
 */
#include <stdio.h>
#include <string.h>

#include "store_impl.h"
#include "util/util.h"

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

int
store_scan_open(store_scan *s, MDB_txn *txn, MDB_dbi db, const void *prefix,
    size_t prefix_len, const char *page_cursor)
{
	size_t n = page_cursor != NULL ? strlen(page_cursor) : 0;

	memset(s, 0, sizeof(*s));
	if (prefix_len > STORE_SCAN_PREFIX_MAX || n % 2 != 0
	    || n / 2 > sizeof(s->from)) {
		return OD_EINVAL;
	}
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_val(page_cursor[2 * i]);
		int lo = hex_val(page_cursor[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			return OD_EINVAL;
		}
		s->from[i] = (uint8_t) (hi << 4 | lo);
	}
	s->from_len = n / 2;
	if (prefix_len > 0) {
		memcpy(s->prefix, prefix, prefix_len);
	}
	s->prefix_len = prefix_len;
	/* A cursor of another prefix would silently start elsewhere. */
	if (s->from_len > 0
	    && (s->from_len < prefix_len
	        || memcmp(s->from, s->prefix, prefix_len) != 0)) {
		return OD_EINVAL;
	}
	if (mdb_cursor_open(txn, db, &s->cur) != 0) {
		s->cur = NULL;
		return OD_EIO;
	}
	return 0;
}

int
store_scan_next(store_scan *s, MDB_val *key, MDB_val *val)
{
	int mrv;

	if (s->cur == NULL || s->done) {
		return OD_ENOTFOUND;
	}
	if (!s->started) {
		s->started = true;
		if (s->from_len > 0) {
			s->key.mv_data = s->from;
			s->key.mv_size = s->from_len;
		} else {
			s->key.mv_data = s->prefix;
			s->key.mv_size = s->prefix_len;
		}
		mrv = s->key.mv_size > 0
		    ? mdb_cursor_get(s->cur, &s->key, &s->val, MDB_SET_RANGE)
		    : mdb_cursor_get(s->cur, &s->key, &s->val, MDB_FIRST);
	} else {
		mrv = mdb_cursor_get(s->cur, &s->key, &s->val, MDB_NEXT);
	}
	if (mrv == MDB_NOTFOUND
	    || (mrv == 0
	        && (s->key.mv_size < s->prefix_len
	            || memcmp(s->key.mv_data, s->prefix, s->prefix_len)
	                != 0))) {
		s->done = true;
		return OD_ENOTFOUND;
	}
	if (mrv != 0) {
		s->done = true;
		return OD_EIO;
	}
	*key = s->key;
	*val = s->val;
	return 0;
}

void
store_scan_page_cursor(const store_scan *s, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (size == 0) {
		return;
	}
	if (s->started && s->key.mv_data != NULL) {
		const uint8_t *p = s->key.mv_data;
		for (size_t i = 0; i < s->key.mv_size && n + 2 < size; i++) {
			out[n++] = hex[p[i] >> 4];
			out[n++] = hex[p[i] & 0xf];
		}
	}
	out[n] = '\0';
}

void
store_scan_close(store_scan *s)
{
	if (s != NULL && s->cur != NULL) {
		mdb_cursor_close(s->cur);
		s->cur = NULL;
	}
}
