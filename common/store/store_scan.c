/*
 * store_scan — the one way to walk a prefix of an LMDB database, forwards
 * or backwards, a page at a time (see store.h).
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

void
store_scan_reverse(store_scan *s)
{
	if (!s->started) {
		s->reverse = true;
	}
}

int
store_scan_seek(store_scan *s, const void *key, size_t len)
{
	if (s->started || len > sizeof(s->from) || len < s->prefix_len
	    || memcmp(key, s->prefix, s->prefix_len) != 0) {
		return OD_EINVAL;
	}
	memcpy(s->from, key, len);
	s->from_len = len;
	return 0;
}

/* The first key of a forward scan: the first at or after from, else the
 * first of the prefix. */
static int
first_forward(store_scan *s)
{
	if (s->from_len > 0) {
		s->key.mv_data = s->from;
		s->key.mv_size = s->from_len;
	} else {
		s->key.mv_data = s->prefix;
		s->key.mv_size = s->prefix_len;
	}
	return s->key.mv_size > 0
	    ? mdb_cursor_get(s->cur, &s->key, &s->val, MDB_SET_RANGE)
	    : mdb_cursor_get(s->cur, &s->key, &s->val, MDB_FIRST);
}

/* The first key of a reverse scan: the last at or before from, else the
 * last of the prefix (the one before the prefix's successor). */
static int
first_reverse(store_scan *s)
{
	uint8_t succ[STORE_SCAN_PREFIX_MAX];
	size_t n = s->prefix_len;
	int mrv;

	if (s->from_len > 0) {
		s->key.mv_data = s->from;
		s->key.mv_size = s->from_len;
		mrv = mdb_cursor_get(s->cur, &s->key, &s->val, MDB_SET_RANGE);
		if (mrv == 0 && s->key.mv_size == s->from_len
		    && memcmp(s->key.mv_data, s->from, s->from_len) == 0) {
			return 0;
		}
	} else {
		/* The prefix's successor: its last byte below 0xff plus
		 * one, the rest cut; none (all 0xff, or no prefix): the
		 * last key. */
		memcpy(succ, s->prefix, n);
		while (n > 0 && succ[n - 1] == 0xff) {
			n--;
		}
		if (n == 0) {
			return mdb_cursor_get(
			    s->cur, &s->key, &s->val, MDB_LAST);
		}
		succ[n - 1]++;
		s->key.mv_data = succ;
		s->key.mv_size = n;
		mrv = mdb_cursor_get(s->cur, &s->key, &s->val, MDB_SET_RANGE);
	}
	if (mrv == 0) {
		return mdb_cursor_get(s->cur, &s->key, &s->val, MDB_PREV);
	}
	return mrv == MDB_NOTFOUND
	    ? mdb_cursor_get(s->cur, &s->key, &s->val, MDB_LAST)
	    : mrv;
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
		mrv = s->reverse ? first_reverse(s) : first_forward(s);
	} else {
		mrv = mdb_cursor_get(s->cur, &s->key, &s->val,
		    s->reverse ? MDB_PREV : MDB_NEXT);
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
