/*
 * outbox — the durable outbound queue and its sender. Every message the
 * gateway sends is first a row in the store (so a notification survives a
 * restart), then one thread delivers rows in order per chat, within the
 * throttle (30/s overall, 1/s per chat, 20/min per group), honouring 429's
 * retry_after per method, backing off exponentially per chat on 5xx and
 * network errors, and marking a chat blocked on 403. A row is deleted
 * only after Telegram accepted it (or refused it for good), so delivery is
 * at least once: a crash between the send and the delete resends one
 * message.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gateway.h"
#include "log/log.h"

/* ---- throttle: pure logic on explicit times ---- */

#define THR_SLOTS  4096
#define GROUP_RING 64

typedef struct chat_slot {
	int64_t chat_id; /* 0: free */
	int64_t last_ms;
	int64_t ring[GROUP_RING];
	int ring_n;
	int ring_pos;
} chat_slot;

struct throttle {
	throttle_limits lim;
	int64_t *global; /* ring of the last global_per_s send times */
	int g_n, g_pos;
	chat_slot *slots;
	int used;
};

int
gw_throttle_new(throttle **out, const throttle_limits *lim)
{
	throttle *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return OD_ENOMEM;
	}
	t->lim = *lim;
	if (t->lim.group_per_min > GROUP_RING) {
		t->lim.group_per_min = GROUP_RING;
	}
	t->global = calloc((size_t) (lim->global_per_s + 1), sizeof(int64_t));
	t->slots = calloc(THR_SLOTS, sizeof(chat_slot));
	if (t->global == NULL || t->slots == NULL) {
		gw_throttle_free(t);
		return OD_ENOMEM;
	}
	*out = t;
	return 0;
}

void
gw_throttle_free(throttle *t)
{
	if (t != NULL) {
		free(t->global);
		free(t->slots);
		free(t);
	}
}

static chat_slot *
slot_find(throttle *t, int64_t chat, bool create)
{
	uint64_t h = (uint64_t) chat * 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < THR_SLOTS; i++) {
		chat_slot *s = &t->slots[(h + (uint64_t) i) % THR_SLOTS];
		if (s->chat_id == chat) {
			return s;
		}
		if (s->chat_id == 0) {
			if (!create) {
				return NULL;
			}
			if (t->used > THR_SLOTS * 3 / 4) {
				/* Forget old chats: a burst of new chats only
				 * loosens the per-chat limit for a moment. */
				memset(t->slots, 0,
				    THR_SLOTS * sizeof(chat_slot));
				t->used = 0;
				return slot_find(t, chat, true);
			}
			s->chat_id = chat;
			t->used++;
			return s;
		}
	}
	return NULL;
}

int64_t
gw_throttle_global_wait_ms(throttle *t, int64_t now)
{
	int64_t w = 0;
	if (t->lim.global_per_s <= 0) {
		return 0;
	}
	if (t->g_n == t->lim.global_per_s) {
		int64_t oldest = t->global[t->g_pos];
		if (now - oldest < 1000) {
			w = 1000 - (now - oldest);
		}
	}
	/* Evenly spaced, not 30 at once: a burst bunched further by the
	 * network would arrive faster than 30/s. */
	if (t->g_n > 0) {
		int64_t last = t->global[(t->g_pos + t->lim.global_per_s - 1)
		    % t->lim.global_per_s];
		int64_t gap = 1000 / t->lim.global_per_s;
		if (now - last < gap && gap - (now - last) > w) {
			w = gap - (now - last);
		}
	}
	return w;
}

int64_t
gw_throttle_wait_ms(throttle *t, int64_t chat, int64_t now)
{
	int64_t w = gw_throttle_global_wait_ms(t, now);
	int64_t c = gw_throttle_chat_wait_ms(t, chat, now);
	return c > w ? c : w;
}

int64_t
gw_throttle_chat_wait_ms(throttle *t, int64_t chat, int64_t now)
{
	int64_t w = 0;
	chat_slot *s = slot_find(t, chat, false);
	if (s == NULL) {
		return w;
	}
	if (t->lim.chat_per_s > 0 && s->last_ms != 0) {
		int64_t gap = 1000 / t->lim.chat_per_s;
		if (now - s->last_ms < gap && gap - (now - s->last_ms) > w) {
			w = gap - (now - s->last_ms);
		}
	}
	if (chat < 0 && t->lim.group_per_min > 0
	    && s->ring_n == t->lim.group_per_min) {
		int64_t oldest = s->ring[s->ring_pos];
		if (now - oldest < 60000 && 60000 - (now - oldest) > w) {
			w = 60000 - (now - oldest);
		}
	}
	return w;
}

void
gw_throttle_sent(throttle *t, int64_t chat, int64_t now)
{
	if (t->lim.global_per_s > 0) {
		t->global[t->g_pos] = now;
		t->g_pos = (t->g_pos + 1) % t->lim.global_per_s;
		if (t->g_n < t->lim.global_per_s) {
			t->g_n++;
		}
	}
	chat_slot *s = slot_find(t, chat, true);
	if (s == NULL) {
		return;
	}
	s->last_ms = now;
	if (chat < 0 && t->lim.group_per_min > 0) {
		s->ring[s->ring_pos] = now;
		s->ring_pos = (s->ring_pos + 1) % t->lim.group_per_min;
		if (s->ring_n < t->lim.group_per_min) {
			s->ring_n++;
		}
	}
}

/* ---- the stored form: chat (8 bytes BE), method\0 tag\0 body\0 ---- */

uint8_t *
gw_outbox_encode(const gw_out *o, size_t *len)
{
	size_t ml = strlen(o->method), tl = strlen(o->tag),
	       bl = strlen(o->body);
	size_t n = 8 + ml + 1 + tl + 1 + bl + 1;
	uint8_t *v = malloc(n);
	if (v == NULL) {
		return NULL;
	}
	store_key_u64(v, (uint64_t) o->chat_id);
	memcpy(v + 8, o->method, ml + 1);
	memcpy(v + 9 + ml, o->tag, tl + 1);
	memcpy(v + 10 + ml + tl, o->body, bl + 1);
	*len = n;
	return v;
}

int
gw_outbox_decode(const void *v, size_t len, int64_t *chat_id,
    const char **method, const char **tag, const char **body)
{
	const char *p = v, *end = (const char *) v + len;
	if (len < 11 || end[-1] != '\0') {
		return OD_EMALFORMED;
	}
	*chat_id = (int64_t) store_key_get_u64(v);
	*method = p + 8;
	*tag = *method + strlen(*method) + 1;
	if (*tag >= end) {
		return OD_EMALFORMED;
	}
	*body = *tag + strlen(*tag) + 1;
	if (*body >= end) {
		return OD_EMALFORMED;
	}
	return 0;
}

/* ---- the durable queue and its indexes ----
 *
 * GW_DB_OUTBOX   seq -> the call (gw_outbox_encode)
 * GW_DB_OB_QUEUE lane(1) chat(8) seq(8) -> "": each chat's FIFO per lane
 * GW_DB_OB_READY lane(1) due(8) chat(8) -> "": chats with messages in a
 *                lane, by the time their next message may go (ms,
 *                od_now_ms). A chat served goes back with due = now + its
 *                gap, so the oldest due is the chat that waited longest:
 *                round-robin, read from the front, never scanned whole.
 * GW_DB_OB_CHAT  lane(1) chat(8) -> due(8) backoff_ms(8): where the chat
 *                sits in OB_READY, and its retry backoff.
 * GW_DB_OB_AGE   lane(1) seq(8) -> queued at (ms): the lane's messages
 *                oldest first, for its age gauge.
 * meta "ob_lane<n>" -> count(8): the lane's depth, kept in step with
 *                OB_QUEUE; "ob_lanes" marks the two as built.
 */

#define QKEY_LEN 17
#define CKEY_LEN 9

static void
qkey(uint8_t *k, int lane, int64_t chat, uint64_t seq)
{
	k[0] = (uint8_t) lane;
	store_key_u64(k + 1, (uint64_t) chat);
	store_key_u64(k + 9, seq);
}

static void
rkey(uint8_t *k, int lane, int64_t due, int64_t chat)
{
	k[0] = (uint8_t) lane;
	store_key_u64(k + 1, (uint64_t) due);
	store_key_u64(k + 9, (uint64_t) chat);
}

static int
lane_index(int lane)
{
	return (lane >= GW_LANE_REPLY && lane <= GW_LANE_BROADCAST)
	    ? lane - GW_LANE_REPLY
	    : GW_LANE_TICKET - GW_LANE_REPLY;
}

static void
lane_meta_key(char *k, int li)
{
	memcpy(k, "ob_lane", 7);
	k[7] = (char) ('0' + li);
}

/* The lane's depth moves by delta (never below 0). */
static int
lane_count_add(store_txn *t, int li, int64_t delta)
{
	store *s = store_txn_store(t);
	char k[8];
	uint8_t v[8];
	MDB_val cur;
	int64_t n = 0;

	lane_meta_key(k, li);
	if (store_get(store_txn_mdb(t), store_db(s, GW_DB_META), k, 8, &cur)
	        == 0
	    && cur.mv_size == 8) {
		n = (int64_t) store_key_get_u64(cur.mv_data);
	}
	n += delta;
	store_key_u64(v, (uint64_t) (n < 0 ? 0 : n));
	return store_put(t, store_db(s, GW_DB_META), k, 8, v, 8);
}

static void
akey(uint8_t *k, int li, uint64_t seq)
{
	k[0] = (uint8_t) li;
	store_key_u64(k + 1, seq);
}

/* A message joins the lane's depth and age index at now. */
static int
lane_add(store_txn *t, int li, uint64_t seq, int64_t now)
{
	store *s = store_txn_store(t);
	uint8_t k[CKEY_LEN], v[8];
	int rv;
	akey(k, li, seq);
	store_key_u64(v, (uint64_t) now);
	if ((rv = store_put(t, store_db(s, GW_DB_OB_AGE), k, CKEY_LEN, v, 8))
	    != 0) {
		return rv;
	}
	return lane_count_add(t, li, 1);
}

/* The chat's place: 0 and *due, *backoff; OD_ENOTFOUND. */
static int
chat_get(
    MDB_txn *m, store *s, int li, int64_t chat, int64_t *due, int64_t *backoff)
{
	uint8_t k[CKEY_LEN];
	MDB_val v;
	k[0] = (uint8_t) li;
	store_key_u64(k + 1, (uint64_t) chat);
	if (store_get(m, store_db(s, GW_DB_OB_CHAT), k, CKEY_LEN, &v) != 0
	    || v.mv_size != 16) {
		return OD_ENOTFOUND;
	}
	*due = (int64_t) store_key_get_u64(v.mv_data);
	*backoff = (int64_t) store_key_get_u64((uint8_t *) v.mv_data + 8);
	return 0;
}

/* Put the chat in OB_READY at due (moving it if it was elsewhere). */
static int
chat_set(store_txn *t, int li, int64_t chat, int64_t due, int64_t backoff)
{
	store *s = store_txn_store(t);
	uint8_t k[CKEY_LEN], rk[QKEY_LEN], v[16];
	int64_t old, ob;
	int rv;

	if (chat_get(store_txn_mdb(t), s, li, chat, &old, &ob) == 0) {
		if (old == due && ob == backoff) {
			return 0;
		}
		rkey(rk, li, old, chat);
		rv = store_del(
		    t, store_db(s, GW_DB_OB_READY), rk, QKEY_LEN, NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	k[0] = (uint8_t) li;
	store_key_u64(k + 1, (uint64_t) chat);
	store_key_u64(v, (uint64_t) due);
	store_key_u64(v + 8, (uint64_t) backoff);
	rkey(rk, li, due, chat);
	if ((rv = store_put(t, store_db(s, GW_DB_OB_CHAT), k, CKEY_LEN, v, 16))
	    != 0) {
		return rv;
	}
	return store_put(t, store_db(s, GW_DB_OB_READY), rk, QKEY_LEN, "", 0);
}

/* The chat has nothing more in the lane: out of OB_READY. */
static int
chat_clear(store_txn *t, int li, int64_t chat)
{
	store *s = store_txn_store(t);
	uint8_t k[CKEY_LEN], rk[QKEY_LEN];
	int64_t due, b;
	int rv;

	if (chat_get(store_txn_mdb(t), s, li, chat, &due, &b) != 0) {
		return 0;
	}
	rkey(rk, li, due, chat);
	rv = store_del(t, store_db(s, GW_DB_OB_READY), rk, QKEY_LEN, NULL, 0);
	if (rv != 0 && rv != OD_ENOTFOUND) {
		return rv;
	}
	k[0] = (uint8_t) li;
	store_key_u64(k + 1, (uint64_t) chat);
	rv = store_del(t, store_db(s, GW_DB_OB_CHAT), k, CKEY_LEN, NULL, 0);
	return rv == OD_ENOTFOUND ? 0 : rv;
}

/* The chat's oldest message in the lane: 0 and *seq, or OD_ENOTFOUND. */
static int
queue_head(MDB_txn *m, store *s, int li, int64_t chat, uint64_t *seq)
{
	store_scan sc;
	MDB_val k, v;
	uint8_t key[QKEY_LEN];
	int rv = OD_ENOTFOUND;

	qkey(key, li, chat, 0); /* the prefix: lane and chat, 9 bytes */
	if (store_scan_open(&sc, m, store_db(s, GW_DB_OB_QUEUE), key, 9, NULL)
	    != 0) {
		return OD_EIO;
	}
	if (store_scan_next(&sc, &k, &v) == 0 && k.mv_size == QKEY_LEN) {
		*seq = store_key_get_u64((uint8_t *) k.mv_data + 9);
		rv = 0;
	}
	store_scan_close(&sc);
	return rv;
}

int
gw_outbox_put(store_txn *t, const gw_out *o, int lane)
{
	store *s = store_txn_store(t);
	int li = lane_index(lane);
	uint8_t k[8], q[QKEY_LEN];
	uint64_t id;
	int64_t due, b;
	size_t len;
	int rv;

	uint8_t *val = gw_outbox_encode(o, &len);
	if (val == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = store_next_id(t, "outbox", &id)) == 0) {
		store_key_u64(k, id);
		rv = store_put(t, store_db(s, GW_DB_OUTBOX), k, 8, val, len);
	}
	free(val);
	if (rv != 0) {
		return rv;
	}
	qkey(q, li, o->chat_id, id);
	if ((rv = store_put(
	         t, store_db(s, GW_DB_OB_QUEUE), q, QKEY_LEN, "", 0))
	        != 0
	    || (rv = lane_add(t, li, id, store_txn_now_ms(t))) != 0) {
		return rv;
	}
	if (chat_get(store_txn_mdb(t), s, li, o->chat_id, &due, &b) == 0) {
		return 0; /* already waiting its turn */
	}
	return chat_set(t, li, o->chat_id, store_txn_now_ms(t), 0);
}

/* Rows of an older version (no index): queued as replies, in order. */
static int
index_old_rows(store_txn *t, void *arg)
{
	store *s = store_txn_store(t);
	store_scan sc;
	MDB_val k, v;
	MDB_stat st;
	int rv = 0, *n = arg;

	if (mdb_stat(store_txn_mdb(t), store_db(s, GW_DB_OB_QUEUE), &st) != 0
	    || st.ms_entries > 0) {
		return 0;
	}
	/* The puts go to other DBs: the scan of outbox is not disturbed. */
	if (store_scan_open(&sc, store_txn_mdb(t), store_db(s, GW_DB_OUTBOX),
	        NULL, 0, NULL)
	    != 0) {
		return OD_EIO;
	}
	while (rv == 0 && store_scan_next(&sc, &k, &v) == 0) {
		int64_t chat, due, b;
		const char *m, *tag, *body;
		uint8_t q[QKEY_LEN];
		if (k.mv_size != 8
		    || gw_outbox_decode(
		           v.mv_data, v.mv_size, &chat, &m, &tag, &body)
		        != 0) {
			continue;
		}
		qkey(q, 0, chat, store_key_get_u64(k.mv_data));
		rv = store_put(
		    t, store_db(s, GW_DB_OB_QUEUE), q, QKEY_LEN, "", 0);
		if (rv == 0
		    && chat_get(store_txn_mdb(t), s, 0, chat, &due, &b) != 0) {
			rv = chat_set(t, 0, chat, store_txn_now_ms(t), 0);
		}
		(*n)++;
	}
	store_scan_close(&sc);
	return rv;
}

/* Queues of a version without lane gauges: counted and aged (as queued
 * now) once. */
static int
index_lanes(store_txn *t)
{
	store *s = store_txn_store(t);
	MDB_txn *m = store_txn_mdb(t);
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int64_t n[GW_LANES] = { 0 }, now = store_txn_now_ms(t);
	uint8_t one[8];
	int rv = 0;

	if (store_get(m, store_db(s, GW_DB_META), "ob_lanes", 8, &v) == 0) {
		return 0;
	}
	if (mdb_cursor_open(m, store_db(s, GW_DB_OB_QUEUE), &c) != 0) {
		return OD_EIO;
	}
	for (int op = MDB_FIRST; mdb_cursor_get(c, &k, &v, op) == 0;
	     op = MDB_NEXT) {
		const uint8_t *kb = k.mv_data;
		uint8_t a[CKEY_LEN], at[8];
		if (k.mv_size != QKEY_LEN || kb[0] >= GW_LANES) {
			continue;
		}
		n[kb[0]]++;
		akey(a, kb[0], store_key_get_u64(kb + 9));
		store_key_u64(at, (uint64_t) now);
		/* A put does not move this cursor in another DB. */
		if ((rv = store_put(
		         t, store_db(s, GW_DB_OB_AGE), a, CKEY_LEN, at, 8))
		    != 0) {
			break;
		}
	}
	mdb_cursor_close(c);
	for (int li = 0; rv == 0 && li < GW_LANES; li++) {
		char key[8];
		uint8_t cnt[8];
		lane_meta_key(key, li);
		store_key_u64(cnt, (uint64_t) n[li]);
		rv = store_put(t, store_db(s, GW_DB_META), key, 8, cnt, 8);
	}
	store_key_u64(one, 1);
	return rv != 0
	    ? rv
	    : store_put(t, store_db(s, GW_DB_META), "ob_lanes", 8, one, 8);
}

static int
index_queues(store_txn *t, void *arg)
{
	int rv = index_old_rows(t, arg);
	return rv != 0 ? rv : index_lanes(t);
}

int
gw_outbox_lanes(store *st, int64_t now, uint64_t depth[GW_LANES],
    int64_t oldest_ms[GW_LANES])
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	int rv;

	if ((rv = store_read_begin(st, &txn)) != 0) {
		return rv;
	}
	if (mdb_cursor_open(txn, store_db(st, GW_DB_OB_AGE), &c) != 0) {
		store_read_end(txn);
		return OD_EIO;
	}
	for (int li = 0; li < GW_LANES; li++) {
		char key[8];
		uint8_t a[CKEY_LEN];
		MDB_val k, v;
		depth[li] = 0;
		oldest_ms[li] = 0;
		lane_meta_key(key, li);
		if (store_get(txn, store_db(st, GW_DB_META), key, 8, &v) == 0
		    && v.mv_size == 8) {
			depth[li] = store_key_get_u64(v.mv_data);
		}
		akey(a, li, 0);
		k.mv_size = CKEY_LEN;
		k.mv_data = a;
		if (mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0
		    && k.mv_size == CKEY_LEN
		    && ((const uint8_t *) k.mv_data)[0] == li
		    && v.mv_size == 8) {
			int64_t at = (int64_t) store_key_get_u64(v.mv_data);
			oldest_ms[li] = now > at ? now - at : 0;
		}
	}
	mdb_cursor_close(c);
	store_read_end(txn);
	return 0;
}

/* ---- the scheduler: which messages may go now ---- */

#define SCAN_LIMIT     64 /* entries looked at per lane and pass */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define PAUSE_MAX_MS   5000 /* a 429 pauses every send at most this */

typedef struct ob_chatref {
	int li;
	int64_t chat;
	int64_t until; /* rekey: the new due */
} ob_chatref;

/* Outcomes wait at most this long in the store for company (see
 * maybe_commit); OB_BATCH is the room for those that finish meanwhile.
 * The linger is short because a chat sends nothing more until its last
 * outcome is committed: at 10 ms every busy chat's next reply waited for
 * it, and the bench's 300 chats got 2,300-2,600 updates/s; at 1 ms,
 * 2,900-3,200, with ~290 commits for the 3,000 replies and 30 pages
 * (one commit is under way at a time and the next batch forms
 * meanwhile, so company comes without the wait). */
#define OB_BATCH     128
#define OB_LINGER_MS 1

struct ob_sched {
	throttle *thr;
	int max_inflight; /* sends at once */
	int n_slots;      /* sends and outcomes not yet committed */
	int64_t gap_ms;   /* per chat, from the throttle */
	ob_msg *inflight; /* [n_slots], seq 0: free slot */
	bool *sending;    /* [n_slots]: the call is not over yet */
	int n_inflight;   /* slots used */
	int n_sending;    /* of which calls not over */
	ob_chatref rekey[SCAN_LIMIT * GW_LANES];
	int n_rekey;
	ob_chatref purge[SCAN_LIMIT * GW_LANES];
	int n_purge;
	int64_t pause_until; /* after a 429 */
};

int
gw_ob_sched_new(ob_sched **out, const throttle_limits *lim, int max_inflight)
{
	ob_sched *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return OD_ENOMEM;
	}
	s->max_inflight = max_inflight > 0 ? max_inflight : 1;
	/* Room for a batch waiting while the one before it commits. */
	s->n_slots = s->max_inflight + 2 * OB_BATCH;
	s->gap_ms = lim->chat_per_s > 0 ? 1000 / lim->chat_per_s : 0;
	s->inflight = calloc((size_t) s->n_slots, sizeof(ob_msg));
	s->sending = calloc((size_t) s->n_slots, sizeof(bool));
	if (s->inflight == NULL || s->sending == NULL
	    || gw_throttle_new(&s->thr, lim) != 0) {
		gw_ob_sched_free(s);
		return OD_ENOMEM;
	}
	*out = s;
	return 0;
}

void
gw_ob_sched_free(ob_sched *s)
{
	if (s != NULL) {
		gw_throttle_free(s->thr);
		free(s->inflight);
		free(s->sending);
		free(s);
	}
}

int
gw_ob_sched_inflight(const ob_sched *s)
{
	return s->n_sending;
}

int
gw_ob_sched_capacity(const ob_sched *s)
{
	return s->n_slots;
}

bool
gw_ob_sched_reorders(const ob_sched *s)
{
	return s->n_rekey > 0 || s->n_purge > 0;
}

static bool
inflight_has(const ob_sched *s, int64_t chat)
{
	for (int i = 0; i < s->n_slots; i++) {
		if (s->inflight[i].chat_id == chat
		    && s->inflight[i].seq != 0) {
			return true;
		}
	}
	return false;
}

void
gw_ob_sched_finished(ob_sched *s, uint64_t seq)
{
	for (int i = 0; i < s->n_slots; i++) {
		if (s->inflight[i].seq == seq && s->sending[i]) {
			s->sending[i] = false;
			s->n_sending--;
			return;
		}
	}
}

static void
inflight_drop(ob_sched *s, uint64_t seq)
{
	for (int i = 0; i < s->n_slots; i++) {
		if (s->inflight[i].seq == seq) {
			memset(&s->inflight[i], 0, sizeof(s->inflight[i]));
			if (s->sending[i]) {
				s->sending[i] = false;
				s->n_sending--;
			}
			s->n_inflight--;
			return;
		}
	}
}

static bool
is_blocked(MDB_txn *txn, store *s, int64_t chat)
{
	uint8_t k[8];
	MDB_val v;
	store_key_u64(k, (uint64_t) chat);
	return store_get(txn, store_db(s, GW_DB_BLOCKED), k, 8, &v) == 0;
}

static bool
ref_has(const ob_chatref *r, int n, int li, int64_t chat)
{
	for (int i = 0; i < n; i++) {
		if (r[i].li == li && r[i].chat == chat) {
			return true;
		}
	}
	return false;
}

/* Load message seq into m (body copied). */
static int
load_msg(MDB_txn *txn, store *s, uint64_t seq, ob_msg *m)
{
	uint8_t k[8];
	MDB_val v;
	const char *method, *tag, *body;
	store_key_u64(k, seq);
	if (store_get(txn, store_db(s, GW_DB_OUTBOX), k, 8, &v) != 0
	    || gw_outbox_decode(
	           v.mv_data, v.mv_size, &m->chat_id, &method, &tag, &body)
	        != 0) {
		return OD_ENOTFOUND;
	}
	if ((m->body = strdup(body)) == NULL) {
		return OD_ENOMEM;
	}
	m->seq = seq;
	od_strlcpy(m->method, method, sizeof(m->method));
	od_strlcpy(m->tag, tag, sizeof(m->tag));
	return 0;
}

int
gw_ob_sched_pick(
    ob_sched *s, store *st, int64_t now, ob_msg *out, int max, int64_t *wake)
{
	MDB_txn *txn = NULL;
	store_scan sc = { 0 };
	int n = 0;
	int64_t w = now + 1000;

	if (s->pause_until > now) {
		*wake = s->pause_until;
		return 0;
	}
	if (max > s->max_inflight - s->n_sending) {
		max = s->max_inflight - s->n_sending;
	}
	if (max > s->n_slots - s->n_inflight) {
		max = s->n_slots - s->n_inflight;
	}
	if (store_read_begin(st, &txn) != 0) {
		*wake = w;
		return 0;
	}
	for (int li = 0; li < GW_LANES; li++) {
		uint8_t key[QKEY_LEN];
		MDB_val k, v;
		int scanned = 0;
		rkey(key, li, 0, 0); /* the prefix: the lane, 1 byte */
		store_scan_close(&sc);
		if (store_scan_open(
		        &sc, txn, store_db(st, GW_DB_OB_READY), key, 1, NULL)
		    != 0) {
			break;
		}
		while (store_scan_next(&sc, &k, &v) == 0) {
			const uint8_t *kb = k.mv_data;
			if (k.mv_size != QKEY_LEN) {
				break;
			}
			int64_t due = (int64_t) store_key_get_u64(kb + 1);
			int64_t chat = (int64_t) store_key_get_u64(kb + 9);
			if (due > now) {
				w = due < w ? due : w;
				break;
			}
			if (++scanned > SCAN_LIMIT) {
				/* More ready chats than looked at: come back
				 * soon, not at once (they were all skipped).
				 */
				w = now + 50 < w ? now + 50 : w;
				break;
			}
			if (inflight_has(s, chat)) {
				continue;
			}
			if (is_blocked(txn, st, chat)) {
				if (s->n_purge < SCAN_LIMIT * GW_LANES
				    && !ref_has(
				        s->purge, s->n_purge, li, chat)) {
					s->purge[s->n_purge++]
					    = (ob_chatref) { li, chat, 0 };
				}
				continue;
			}
			int64_t cw
			    = gw_throttle_chat_wait_ms(s->thr, chat, now);
			if (cw > 0) {
				/* Its turn comes when the chat may send:
				 * move it there rather than look again. */
				if (s->n_rekey < SCAN_LIMIT * GW_LANES
				    && !ref_has(
				        s->rekey, s->n_rekey, li, chat)) {
					s->rekey[s->n_rekey++]
					    = (ob_chatref) { li, chat,
						      now + cw };
				}
				w = now + cw < w ? now + cw : w;
				continue;
			}
			int64_t gw_ = gw_throttle_global_wait_ms(s->thr, now);
			if (gw_ > 0) {
				w = now + gw_ < w ? now + gw_ : w;
				goto done;
			}
			if (n >= max) {
				goto done; /* woken by the next completion */
			}
			uint64_t seq;
			ob_msg m;
			memset(&m, 0, sizeof(m));
			if (queue_head(txn, st, li, chat, &seq) != 0
			    || load_msg(txn, st, seq, &m) != 0) {
				/* An index entry with nothing behind it. */
				free(m.body);
				if (s->n_purge < SCAN_LIMIT * GW_LANES
				    && !ref_has(
				        s->purge, s->n_purge, li, chat)) {
					s->purge[s->n_purge++]
					    = (ob_chatref) { li, chat, 0 };
				}
				continue;
			}
			m.chat_id = chat;
			m.lane = li + GW_LANE_REPLY;
			for (int i = 0; i < s->n_slots; i++) {
				if (s->inflight[i].seq == 0) {
					s->inflight[i] = m;
					s->inflight[i].body = NULL;
					s->sending[i] = true;
					break;
				}
			}
			s->n_inflight++;
			s->n_sending++;
			gw_throttle_sent(s->thr, chat, now);
			out[n++] = m;
		}
	}
done:
	store_scan_close(&sc);
	store_read_end(txn);
	*wake = w;
	return n;
}

/* ---- outcomes, rekeys and purges in one commit ---- */

struct ob_commit {
	ob_sched *s;
	const ob_outcome *o;
	int n;
	int rv; /* the commit's, once done */
	void (*done)(void *arg);
	void *done_arg;
	ob_chatref rekey[SCAN_LIMIT * GW_LANES];
	int n_rekey;
	ob_chatref purge[SCAN_LIMIT * GW_LANES];
	int n_purge;
	int purged;
};
typedef struct ob_commit commit_arg;

/* After the head message left (sent or dropped): the chat's next turn,
 * or out of the ready set. */
static int
after_head(store_txn *t, ob_sched *s, int li, int64_t chat, int64_t now)
{
	uint64_t seq;
	if (queue_head(store_txn_mdb(t), store_txn_store(t), li, chat, &seq)
	    != 0) {
		return chat_clear(t, li, chat);
	}
	return chat_set(t, li, chat, now + s->gap_ms, 0);
}

static int
del_msg(store_txn *t, int li, int64_t chat, uint64_t seq)
{
	store *s = store_txn_store(t);
	uint8_t k[8], q[QKEY_LEN];
	int rv;
	store_key_u64(k, seq);
	rv = store_del(t, store_db(s, GW_DB_OUTBOX), k, 8, NULL, 0);
	if (rv != 0 && rv != OD_ENOTFOUND) {
		return rv;
	}
	qkey(q, li, chat, seq);
	rv = store_del(t, store_db(s, GW_DB_OB_QUEUE), q, QKEY_LEN, NULL, 0);
	if (rv != 0) {
		return rv == OD_ENOTFOUND ? 0 : rv;
	}
	akey(q, li, seq);
	rv = store_del(t, store_db(s, GW_DB_OB_AGE), q, CKEY_LEN, NULL, 0);
	if (rv != 0 && rv != OD_ENOTFOUND) {
		return rv;
	}
	return lane_count_add(t, li, -1);
}

#define PURGE_MAX 1000

static int
commit_fn(store_txn *t, void *arg)
{
	commit_arg *a = arg;
	store *st = store_txn_store(t);
	MDB_txn *m = store_txn_mdb(t);
	int64_t now = store_txn_now_ms(t);
	uint8_t k[16];
	int rv;

	a->purged = 0;
	for (int i = 0; i < a->n; i++) {
		const ob_outcome *o = &a->o[i];
		int li = lane_index(o->msg.lane);
		int64_t chat = o->msg.chat_id, due, backoff = 0;
		switch (o->verdict) {
		case BOTAPI_OK:
		case BOTAPI_REFUSED:
		case BOTAPI_BLOCKED:
			if ((rv = del_msg(t, li, chat, o->msg.seq)) != 0
			    || (rv = after_head(t, a->s, li, chat, now))
			        != 0) {
				return rv;
			}
			if (o->verdict == BOTAPI_BLOCKED) {
				uint8_t v[8];
				store_key_u64(k, (uint64_t) chat);
				store_key_u64(v, (uint64_t) now);
				if ((rv = store_put(t,
				         store_db(st, GW_DB_BLOCKED), k, 8, v,
				         8))
				    != 0) {
					return rv;
				}
			}
			if (o->verdict == BOTAPI_OK && o->kind == 'i'
			    && o->ticket != 0 && o->message_id != 0) {
				/* incident, chat, message: alerts to edit */
				uint8_t ak[24];
				store_key_u64(ak, o->ticket);
				store_key_u64(ak + 8, (uint64_t) chat);
				store_key_u64(
				    ak + 16, (uint64_t) o->message_id);
				if ((rv = store_put(t,
				         store_db(st, GW_DB_ALERT_MSG), ak, 24,
				         "", 0))
				    != 0) {
					return rv;
				}
			} else if (o->verdict == BOTAPI_OK
			    && o->kind == GW_LIVE_TAG && o->message_id != 0) {
				/* an ultra live view to edit (ultra.c) */
				uint8_t lv[24];
				store_key_u64(k, (uint64_t) chat);
				store_key_u64(lv, o->ticket);
				store_key_u64(
				    lv + 8, (uint64_t) o->message_id);
				store_key_u64(lv + 16, (uint64_t) now);
				if ((rv = store_put(t,
				         store_db(st, GW_DB_LIVE_MSG), k, 8,
				         lv, 24))
				    != 0) {
					return rv;
				}
			} else if (o->verdict == BOTAPI_OK && o->ticket != 0
			    && o->message_id != 0) {
				uint8_t v[8];
				store_key_u64(k, (uint64_t) chat);
				store_key_u64(k + 8, (uint64_t) o->message_id);
				store_key_u64(v, o->ticket);
				if ((rv = store_put(t,
				         store_db(st, GW_DB_ADMIN_MSG), k, 16,
				         v, 8))
				    != 0) {
					return rv;
				}
			}
			break;
		case BOTAPI_RETRY:
		case BOTAPI_RETRY_AFTER:
			if (chat_get(m, st, li, chat, &due, &backoff) != 0) {
				break; /* purged meanwhile */
			}
			if (o->verdict == BOTAPI_RETRY_AFTER) {
				due = now + o->retry_after_ms;
			} else {
				/* Capped exponential, with up to +25 %
				 * jitter so chats do not retry in step. */
				backoff = backoff > 0 ? backoff * 2
				                      : BACKOFF_MIN_MS;
				if (backoff > BACKOFF_MAX_MS) {
					backoff = BACKOFF_MAX_MS;
				}
				due = now + backoff
				    + (int64_t) ((uint64_t) rand()
				        % (uint64_t) (backoff / 4 + 1));
			}
			if ((rv = chat_set(t, li, chat, due, backoff)) != 0) {
				return rv;
			}
			break;
		}
	}
	for (int i = 0; i < a->n_rekey; i++) {
		ob_chatref *r = &a->rekey[i];
		int64_t due, backoff;
		if (chat_get(m, st, r->li, r->chat, &due, &backoff) == 0
		    && due < r->until
		    && (rv = chat_set(t, r->li, r->chat, r->until, backoff))
		        != 0) {
			return rv;
		}
	}
	for (int i = 0; i < a->n_purge && a->purged < PURGE_MAX; i++) {
		ob_chatref *r = &a->purge[i];
		uint64_t seq;
		while (a->purged < PURGE_MAX
		    && queue_head(m, st, r->li, r->chat, &seq) == 0) {
			if ((rv = del_msg(t, r->li, r->chat, seq)) != 0) {
				return rv;
			}
			a->purged++;
		}
		if (queue_head(m, st, r->li, r->chat, &seq) != 0
		    && (rv = chat_clear(t, r->li, r->chat)) != 0) {
			return rv;
		}
	}
	return 0;
}

/* The commit of o[0..n) (borrowed until settled) and the pick's
 * re-orderings. A 429 pauses every send from now on, not from the
 * commit. */
static commit_arg *
commit_prepare(ob_sched *s, const ob_outcome *o, int n)
{
	commit_arg *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return NULL;
	}
	a->s = s;
	a->o = o;
	a->n = n;
	memcpy(a->rekey, s->rekey, sizeof(ob_chatref) * (size_t) s->n_rekey);
	a->n_rekey = s->n_rekey;
	memcpy(a->purge, s->purge, sizeof(ob_chatref) * (size_t) s->n_purge);
	a->n_purge = s->n_purge;
	s->n_rekey = s->n_purge = 0;
	for (int i = 0; i < n; i++) {
		if (o[i].verdict == BOTAPI_RETRY_AFTER) {
			int64_t p = o[i].retry_after_ms < PAUSE_MAX_MS
			    ? o[i].retry_after_ms
			    : PAUSE_MAX_MS;
			/* A 429 is a flood warning for the bot as a whole:
			 * everyone waits a little, that chat the full
			 * retry_after. */
			if (od_now_ms() + p > s->pause_until) {
				s->pause_until = od_now_ms() + p;
			}
		}
	}
	return a;
}

/* The commit is over: its messages leave flight (a failed one is sent
 * again, its row still queued). */
static int
commit_settle(ob_sched *s, commit_arg *a, int *purged)
{
	int rv = a->rv;
	for (int i = 0; i < a->n; i++) {
		inflight_drop(s, a->o[i].msg.seq);
	}
	if (purged != NULL) {
		*purged = a->purged;
	}
	free(a);
	return rv;
}

int
gw_ob_sched_commit(ob_sched *s, store *st, ob_outcome *o, int n, int *purged)
{
	commit_arg *a = commit_prepare(s, o, n);
	if (a == NULL) {
		return OD_ENOMEM;
	}
	if (n + a->n_rekey + a->n_purge > 0) {
		a->rv = store_write(st, commit_fn, a);
	}
	return commit_settle(s, a, purged);
}

static void
commit_done(int rv, void *arg)
{
	commit_arg *a = arg;
	a->rv = rv;
	a->done(a->done_arg);
}

int
gw_ob_sched_submit(ob_sched *s, store *st, const ob_outcome *o, int n,
    int linger_ms, void (*done)(void *arg), void *arg, ob_commit **out)
{
	commit_arg *a = commit_prepare(s, o, n);
	if (a == NULL) {
		return OD_ENOMEM;
	}
	a->done = done;
	a->done_arg = arg;
	int rv
	    = store_submit_lazy(st, commit_fn, a, commit_done, a, linger_ms);
	if (rv != 0) {
		/* Not queued: the messages stay in the outbox, sent again. */
		a->rv = rv;
		(void) commit_settle(s, a, NULL);
		return rv;
	}
	*out = a;
	return 0;
}

int
gw_ob_sched_settle(ob_sched *s, ob_commit *c, int *purged)
{
	return commit_settle(s, c, purged);
}

/* ---- the sender: one thread, one curl multi handle ---- */

/* Print a message for the person at the terminal; remember its
 * buttons so a typed number presses one. */
static void
console_print(gw *g, const char *method, const char *body)
{
	cJSON *j = cJSON_Parse(body);
	if (j == NULL) {
		return;
	}
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
	if (!cJSON_IsString(text)) {
		text = cJSON_GetObjectItemCaseSensitive(j, "caption");
	}
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "reply_markup"),
	    "inline_keyboard");
	char *plain = cJSON_IsString(text)
	    ? gw_render_to_plain(text->valuestring)
	    : NULL;
	pthread_mutex_lock(&g->console_mtx);
	fprintf(g->cout, "\n%s%s\n",
	    strcmp(method, "editMessageText") == 0 ? "(updated) " : "",
	    plain ? plain : "");
	memset(&g->console_kbd, 0, sizeof(g->console_kbd));
	int n = 0;
	const cJSON *row, *b;
	cJSON_ArrayForEach(row, rows)
	{
		gw_kbd_row(&g->console_kbd);
		fputs(" ", g->cout);
		cJSON_ArrayForEach(b, row)
		{
			const cJSON *t = cJSON_GetObjectItem(b, "text");
			const cJSON *d
			    = cJSON_GetObjectItem(b, "callback_data");
			if (cJSON_IsString(t) && cJSON_IsString(d)) {
				gw_kbd_button(&g->console_kbd, t->valuestring,
				    d->valuestring);
				fprintf(
				    g->cout, " [%d] %s", ++n, t->valuestring);
			}
		}
		fputs("\n", g->cout);
	}
	if (n > 0) {
		g->console_msg_id = ++g->console_next_msg;
		fputs("  (type a number to press a button)\n", g->cout);
	}
	fflush(g->cout);
	pthread_mutex_unlock(&g->console_mtx);
	free(plain);
	cJSON_Delete(j);
}

static void
set_my_commands(gw *g)
{
	size_t n;
	const gw_command *c = gw_router_commands(&n);
	for (int admin = 0; admin <= 1; admin++) {
		int scopes = admin ? g->cfg->n_admins : 1;
		for (int s = 0; s < scopes; s++) {
			cJSON *body = cJSON_CreateObject();
			cJSON *list = cJSON_AddArrayToObject(body, "commands");
			for (size_t i = 0; i < n; i++) {
				if (!c[i].menu || (c[i].admin && !admin)) {
					continue;
				}
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(
				    e, "command", c[i].name);
				cJSON_AddStringToObject(
				    e, "description", c[i].about);
				cJSON_AddItemToArray(list, e);
			}
			if (admin) {
				cJSON *scope
				    = cJSON_AddObjectToObject(body, "scope");
				cJSON_AddStringToObject(scope, "type", "chat");
				cJSON_AddNumberToObject(scope, "chat_id",
				    (double) g->cfg->admins[s]);
			}
			char *text = cJSON_PrintUnformatted(body);
			botapi_result res;
			if (text != NULL
			    && gw_botapi_call(
			           g->api, "setMyCommands", text, 10000, &res)
			        == 0) {
				gw_botapi_result_clear(&res);
			}
			cJSON_free(text);
			cJSON_Delete(body);
		}
	}
}

/* Retry reasons that last: logged as an error once, after a minute.
 * OPSDESK_GATEWAY_LASTING_MS shortens the minute for tests only. */
#define LASTING_MS 60000

static int64_t
lasting_ms(void)
{
	const char *v = getenv("OPSDESK_GATEWAY_LASTING_MS");
	char *end = NULL;
	long long ms = v != NULL ? strtoll(v, &end, 10) : 0;
	return v != NULL && end != v && *end == '\0' && ms > 0 ? ms
	                                                       : LASTING_MS;
}

typedef struct lasting {
	char reason[16];
	int64_t since;
	bool logged;
} lasting;

typedef struct sender {
	gw *g;
	ob_sched *s;
	ob_msg *picked;
	ob_outcome *done; /* outcomes waiting for a commit */
	int n_done;
	ob_outcome *committing; /* the commit under way's outcomes */
	int n_committing;
	unsigned kicks_seen; /* g->ob_kicks when this pass began */
	ob_commit *commit;   /* the commit under way, or NULL */
	bool committed;      /* it is over (under g->ob_mtx) */
	int ep;              /* epoll: curl's sockets and g->ob_wake_fd */
	int64_t timer_due;   /* curl's timer, od_mono_ms; -1: none */
	botapi_xfer **xfers; /* in flight, [send_concurrency] */
	lasting last[8];
	int64_t lasting_ms; /* LASTING_MS, or the tests' value */
	metric *depth_g, *inflight_g;
	metric *lane_depth_g[GW_LANES], *lane_age_g[GW_LANES];
} sender;

static void
xfer_track(sender *sd, botapi_xfer *x, bool add)
{
	for (int i = 0; i < sd->g->set.send_concurrency; i++) {
		if (sd->xfers[i] == (add ? NULL : x)) {
			sd->xfers[i] = add ? x : NULL;
			return;
		}
	}
}

static void
note_retry(sender *sd, const char *reason, const ob_msg *m,
    const botapi_result *res, int64_t now)
{
	char labels[64];
	lasting *l = NULL;
	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	metric_inc(gw_counter(sd->g, "opsdesk_gateway_outbox_retries_total",
	    "Outgoing calls to retry, by reason", labels));
	for (int i = 0; i < 8 && l == NULL; i++) {
		if (strcmp(sd->last[i].reason, reason) == 0
		    || sd->last[i].reason[0] == '\0') {
			l = &sd->last[i];
		}
	}
	if (l == NULL) {
		return;
	}
	if (l->reason[0] == '\0') {
		od_strlcpy(l->reason, reason, sizeof(l->reason));
		l->since = now;
		l->logged = false;
	}
	if (!l->logged && now - l->since >= sd->lasting_ms) {
		log_error("Bot API calls have failed for %lld s (%s: %s); "
		          "messages are kept and retried",
		    (long long) ((now - l->since) / 1000), reason,
		    res->description);
		l->logged = true;
	} else {
		log_warn("Bot API %s to chat %lld: %s (%s), will retry",
		    m->method, (long long) m->chat_id, reason,
		    res->description);
	}
}

/* Turn a finished call into an outcome. */
static void
outcome_of(sender *sd, ob_msg *m, int rv, botapi_result *res, int64_t now)
{
	ob_outcome *o = &sd->done[sd->n_done++];
	const char *reason = "ok";
	char labels[64];

	memset(o, 0, sizeof(*o));
	o->msg = *m;
	o->msg.body = NULL;
	o->verdict = gw_botapi_classify(rv, res, &reason);
	gw_ob_sched_finished(sd->s, m->seq);
	switch (o->verdict) {
	case BOTAPI_OK: {
		const cJSON *mid = cJSON_GetObjectItemCaseSensitive(
		    res->result, "message_id");
		uint64_t ticket = 0;
		if ((m->tag[0] == 't' || m->tag[0] == 'i'
		        || m->tag[0] == GW_LIVE_TAG)
		    && cJSON_IsNumber(mid)
		    && gw_parse_id(m->tag + 1, "", &ticket) == 0) {
			o->kind = m->tag[0];
			o->ticket = ticket;
			o->message_id = (int64_t) mid->valuedouble;
		}
		/* Any success ends every lasting failure. */
		memset(sd->last, 0, sizeof(sd->last));
		break;
	}
	case BOTAPI_RETRY_AFTER:
		o->retry_after_ms = res->retry_after * 1000LL;
		log_warn("Bot API 429 on %s: waiting %d s", m->method,
		    res->retry_after);
		note_retry(sd, reason, m, res, now);
		break;
	case BOTAPI_RETRY:
		note_retry(sd, reason, m, res, now);
		break;
	case BOTAPI_BLOCKED:
		log_info("chat %lld blocked the bot (%s): not sending to it",
		    (long long) m->chat_id, res->description);
		metric_inc(
		    gw_counter(sd->g, "opsdesk_gateway_chats_blocked_total",
		        "Chats marked blocked after a 403", NULL));
		break;
	case BOTAPI_REFUSED:
		log_warn("Bot API refused %s to chat %lld: %d %s", m->method,
		    (long long) m->chat_id, res->error_code, res->description);
		snprintf(labels, sizeof(labels), "method=\"%s\"", m->method);
		metric_inc(
		    gw_counter(sd->g, "opsdesk_gateway_outbox_dropped_total",
		        "Outgoing calls refused for good", labels));
		break;
	}
}

static void
commit_over(void *arg)
{
	sender *sd = arg;
	gw *g = sd->g;
	pthread_mutex_lock(&g->ob_mtx);
	sd->committed = true;
	pthread_mutex_unlock(&g->ob_mtx);
	gw_outbox_kick(g);
}

/* The commit under way is over: its chats may send again. */
static void
settle(sender *sd)
{
	gw *g = sd->g;
	int purged = 0;
	pthread_mutex_lock(&g->ob_mtx);
	bool over = sd->committed;
	pthread_mutex_unlock(&g->ob_mtx);
	if (sd->commit == NULL || !over) {
		return;
	}
	int rv = gw_ob_sched_settle(sd->s, sd->commit, &purged);
	sd->commit = NULL;
	if (rv != 0) {
		log_error("outbox: cannot record sends: %s", od_strerror(rv));
	}
	for (int i = 0; i < sd->n_committing; i++) {
		if (rv == 0 && sd->committing[i].verdict == BOTAPI_BLOCKED) {
			gw_publish(g, "chat_blocked",
			    sd->committing[i].msg.chat_id,
			    "403 from the Bot API");
		}
	}
	sd->n_committing = 0;
	if (purged > 0) {
		metric_add(
		    gw_counter(g, "opsdesk_gateway_outbox_dropped_total",
		        "Outgoing calls refused for good",
		        "method=\"blocked_chat\""),
		    (uint64_t) purged);
	}
	if (g->mode == GW_MODE_CONSOLE) {
		pthread_mutex_lock(&g->console_mtx);
		pthread_cond_broadcast(&g->console_cond);
		pthread_mutex_unlock(&g->console_mtx);
	}
}

/*
 * Group commit of outcomes: one commit under way at a time, and what
 * finishes meanwhile waits for the next. While other calls are in flight
 * the commit is lazy: it waits up to OB_LINGER_MS in the store for other
 * writes (a getUpdates page, more outcomes) to share its fsync. Until its
 * commit a message stays at the head of its chat's queue and the chat
 * sends nothing else, so a crash before it resends that message (at
 * least once, as before) and never skips one.
 */
static void
maybe_commit(sender *sd, bool force)
{
	gw *g = sd->g;
	if (sd->commit != NULL
	    || (sd->n_done == 0 && !gw_ob_sched_reorders(sd->s))) {
		return; /* commit_over wakes the sender */
	}
	ob_outcome *t = sd->committing;
	sd->committing = sd->done;
	sd->n_committing = sd->n_done;
	sd->done = t;
	sd->n_done = 0;
	pthread_mutex_lock(&g->ob_mtx);
	sd->committed = false;
	pthread_mutex_unlock(&g->ob_mtx);
	int linger
	    = !force && gw_ob_sched_inflight(sd->s) > 0 ? OB_LINGER_MS : 0;
	if (gw_ob_sched_submit(sd->s, g->st, sd->committing, sd->n_committing,
	        linger, commit_over, sd, &sd->commit)
	    != 0) {
		log_error("outbox: cannot record sends: the store refused");
		sd->commit = NULL;
		sd->n_committing = 0;
	}
}

static void
update_gauges(sender *sd)
{
	gw *g = sd->g;
	MDB_txn *txn = NULL;
	MDB_stat st;
	if (store_read_begin(g->st, &txn) != 0) {
		return;
	}
	if (mdb_stat(txn, store_db(g->st, GW_DB_OUTBOX), &st) == 0) {
		metric_set(sd->depth_g, (double) st.ms_entries);
		pthread_mutex_lock(&g->ob_mtx);
		g->ob_depth = st.ms_entries;
		pthread_mutex_unlock(&g->ob_mtx);
	}
	if (mdb_stat(txn, store_db(g->st, GW_DB_BLOCKED), &st) == 0) {
		metric_set(metrics_gauge(g->m, "opsdesk_gateway_blocked_chats",
		               "Chats that blocked the bot", NULL),
		    (double) st.ms_entries);
	}
	store_read_end(txn);
	metric_set(sd->inflight_g, (double) gw_ob_sched_inflight(sd->s));
	/* The workers' queue is held at WQ_MAX by backpressure. */
	pthread_mutex_lock(&g->wq_mtx);
	size_t wq = g->wq_len;
	pthread_mutex_unlock(&g->wq_mtx);
	metric_set(metrics_gauge(g->m, "opsdesk_gateway_update_queue_depth",
	               "Updates accepted and waiting for a worker", NULL),
	    (double) wq);
	uint64_t depth[GW_LANES];
	int64_t age[GW_LANES];
	if (gw_outbox_lanes(g->st, od_now_ms(), depth, age) == 0) {
		for (int li = 0; li < GW_LANES; li++) {
			metric_set(sd->lane_depth_g[li], (double) depth[li]);
			metric_set(
			    sd->lane_age_g[li], (double) age[li] / 1000.0);
		}
	}
}

/*
 * curl's event interface: curl tells which sockets to watch (sock_cb) and
 * when to call back (timer_cb); the sender waits in epoll_wait and hands
 * curl only the sockets that are ready. curl_multi_perform would instead
 * poll() every transfer's socket on every pass: with 16 sends in flight,
 * most of the sender's system calls.
 */
static int
sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	sender *sd = userp;
	(void) e;
	if (what == CURL_POLL_REMOVE) {
		(void) epoll_ctl(sd->ep, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(sd->g->ob_multi, fd, NULL);
		return 0;
	}
	struct epoll_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0)
	    | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	ev.data.fd = fd;
	/* socketp: watched already (curl_multi_assign below). */
	if (epoll_ctl(sd->ep, socketp != NULL ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	        fd, &ev)
	    != 0) {
		log_warn("outbox: cannot watch a socket: %s", strerror(errno));
		return -1;
	}
	if (socketp == NULL) {
		curl_multi_assign(sd->g->ob_multi, fd, sd);
	}
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	sender *sd = userp;
	(void) multi;
	sd->timer_due = timeout_ms < 0 ? -1 : od_mono_ms() + timeout_ms;
	return 0;
}

/* Run curl's timer when due, then collect the calls that finished into
 * outcomes. */
static void
collect(sender *sd, CURLM *multi)
{
	int running = 0;
	CURLMsg *cm;
	int left;
	if (sd->timer_due >= 0 && od_mono_ms() >= sd->timer_due) {
		sd->timer_due = -1;
		curl_multi_socket_action(
		    multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	while ((cm = curl_multi_info_read(multi, &left)) != NULL) {
		if (cm->msg != CURLMSG_DONE) {
			continue;
		}
		CURL *e = cm->easy_handle;
		CURLcode cc = cm->data.result;
		botapi_xfer *x = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &x);
		curl_multi_remove_handle(multi, e);
		xfer_track(sd, x, false);
		ob_msg *m = gw_botapi_xfer_user(x);
		botapi_result res;
		int rv = gw_botapi_xfer_finish(x, (int) cc, &res);
		outcome_of(sd, m, rv, &res, od_now_ms());
		gw_botapi_result_clear(&res);
		free(m);
	}
}

/* Wait up to timeout_ms (cut to curl's timer) for a socket or a kick,
 * and hand the ready sockets to curl. */
static void
wait_events(sender *sd, CURLM *multi, int64_t timeout_ms)
{
	struct epoll_event ev[32];
	int running = 0;
	if (sd->timer_due >= 0) {
		int64_t t = sd->timer_due - od_mono_ms();
		timeout_ms = t < timeout_ms ? t : timeout_ms;
	}
	timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
	/* Kicks write the eventfd only while the sender sleeps (or is about
	 * to): one that came since this pass began means no sleep at all. */
	gw *g = sd->g;
	g->ob_sleeping = 1;
	if (g->ob_kicks != sd->kicks_seen) {
		timeout_ms = 0;
	}
	int n = epoll_wait(sd->ep, ev, 32, (int) timeout_ms);
	g->ob_sleeping = 0;
	for (int i = 0; i < n; i++) {
		int fd = ev[i].data.fd;
		if (fd == sd->g->ob_wake_fd) {
			uint64_t v;
			(void) !read(fd, &v, sizeof(v));
			continue;
		}
		int flags = ((ev[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0)
		    | ((ev[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0)
		    | ((ev[i].events & (EPOLLERR | EPOLLHUP))
		            ? CURL_CSELECT_ERR
		            : 0);
		curl_multi_socket_action(multi, fd, flags, &running);
	}
}

static void *
sender_main(void *arg)
{
	gw *g = arg;
	CURLM *multi = g->ob_multi;
	sender sd;
	int max = g->set.send_concurrency;
	int cap = gw_ob_sched_capacity(g->ob_sched);

	memset(&sd, 0, sizeof(sd));
	sd.g = g;
	sd.s = g->ob_sched;
	sd.lasting_ms = lasting_ms();
	sd.picked = calloc((size_t) max, sizeof(ob_msg));
	sd.done = calloc((size_t) cap, sizeof(ob_outcome));
	sd.committing = calloc((size_t) cap, sizeof(ob_outcome));
	sd.xfers = calloc((size_t) max, sizeof(botapi_xfer *));
	sd.depth_g = metrics_gauge(g->m, "opsdesk_gateway_outbox_depth",
	    "Messages waiting in the outbound queue", NULL);
	sd.inflight_g = metrics_gauge(g->m, "opsdesk_gateway_outbox_in_flight",
	    "Bot API sends in flight", NULL);
	for (int li = 0; li < GW_LANES; li++) {
		static const char *const names[GW_LANES]
		    = { "reply", "alert", "ticket", "broadcast" };
		char labels[32];
		snprintf(labels, sizeof(labels), "lane=\"%s\"", names[li]);
		sd.lane_depth_g[li]
		    = metrics_gauge(g->m, "opsdesk_gateway_outbox_lane_depth",
		        "Messages queued per delivery lane", labels);
		sd.lane_age_g[li] = metrics_gauge(g->m,
		    "opsdesk_gateway_outbox_lane_oldest_seconds",
		    "Age of the oldest message queued per delivery lane",
		    labels);
	}
	sd.timer_due = -1;
	sd.ep = epoll_create1(EPOLL_CLOEXEC);
	if (sd.picked == NULL || sd.done == NULL || sd.committing == NULL
	    || sd.xfers == NULL || sd.ep < 0) {
		log_error("outbox sender: out of memory");
		goto out;
	}
	{
		struct epoll_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.fd = g->ob_wake_fd;
		if (epoll_ctl(sd.ep, EPOLL_CTL_ADD, g->ob_wake_fd, &ev) != 0) {
			log_error("outbox sender: %s", strerror(errno));
			goto out;
		}
	}
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &sd);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &sd);
	if (g->mode != GW_MODE_CONSOLE) {
		set_my_commands(g);
	}
	int64_t last_gauges = 0;
	while (!g->stopping) {
		int64_t now = od_now_ms(), wake = now + 1000;
		sd.kicks_seen = g->ob_kicks;
		settle(&sd);
		int n = gw_ob_sched_pick(sd.s, g->st, now, sd.picked,
		    max - gw_ob_sched_inflight(sd.s), &wake);
		for (int i = 0; i < n; i++) {
			ob_msg *m = &sd.picked[i];
			botapi_xfer *x = NULL;
			if (g->mode == GW_MODE_CONSOLE) {
				botapi_result res
				    = { .ok = true, .telegram = true };
				console_print(g, m->method, m->body);
				outcome_of(&sd, m, 0, &res, now);
				free(m->body);
				continue;
			}
			ob_msg *own = malloc(sizeof(*own));
			if (own != NULL) {
				*own = *m;
			}
			if (own == NULL
			    || gw_botapi_xfer_new(g->api, m->method, m->body,
			           g->set.send_timeout_ms, own, &x)
			        != 0
			    || curl_multi_add_handle(
			           multi, gw_botapi_xfer_easy(x))
			        != CURLM_OK) {
				botapi_result res = { 0 };
				gw_botapi_xfer_free(x, true);
				free(own);
				outcome_of(&sd, m, OD_ENOMEM, &res, now);
			} else {
				xfer_track(&sd, x, true);
			}
			free(m->body);
			own = NULL;
		}
		int done0 = sd.n_done;
		collect(&sd, multi);
		bool progressed = sd.n_done > done0 || n > 0;
		maybe_commit(&sd, false);
		/* Gauges (and the depth backpressure reads) at most every
		 * 100 ms while sending, not after every send. */
		if (now - last_gauges >= (progressed ? 100 : 1000)) {
			update_gauges(&sd);
			last_gauges = now;
		}
		if (progressed) {
			continue;
		}
		int64_t t = wake - od_now_ms();
		t = t < 0 ? 0 : t > 1000 ? 1000 : t;
		wait_events(&sd, multi, t);
	}
	/* Let calls in flight finish (or they would be sent again after the
	 * restart), for a moment, and record every outcome. */
	for (int64_t until = od_mono_ms() + 2000;
	     (gw_ob_sched_inflight(sd.s) > 0 && od_mono_ms() < until)
	     || sd.commit != NULL || sd.n_done > 0;) {
		sd.kicks_seen = g->ob_kicks;
		settle(&sd);
		collect(&sd, multi);
		maybe_commit(&sd, true);
		if (sd.commit != NULL || gw_ob_sched_inflight(sd.s) > 0) {
			wait_events(&sd, multi, 100);
		}
	}
	/* Whatever is still in flight stays queued for the next start. */
	for (int i = 0; i < max; i++) {
		botapi_xfer *x = sd.xfers[i];
		if (x != NULL) {
			curl_multi_remove_handle(
			    multi, gw_botapi_xfer_easy(x));
			free(gw_botapi_xfer_user(x));
			gw_botapi_xfer_free(x, true);
		}
	}
out:
	/* No callback may reach this frame's sender any more. */
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, NULL);
	if (sd.ep >= 0) {
		close(sd.ep);
	}
	free(sd.xfers);
	free(sd.picked);
	free(sd.done);
	free(sd.committing);
	return NULL;
}

void
gw_outbox_kick(gw *g)
{
	/* Counted first: a sender that has not gone to sleep yet sees the
	 * count move and does not (wait_events); one that has is woken. */
	g->ob_kicks++;
	if (!atomic_exchange(&g->ob_sleeping, 0)) {
		return;
	}
	pthread_mutex_lock(&g->ob_mtx);
	if (g->ob_wake_fd >= 0) {
		uint64_t one = 1;
		(void) !write(g->ob_wake_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&g->ob_mtx);
}

uint64_t
gw_outbox_depth(gw *g)
{
	MDB_txn *txn = NULL;
	MDB_stat st;
	uint64_t n = 0;
	if (store_read_begin(g->st, &txn) == 0) {
		if (mdb_stat(txn, store_db(g->st, GW_DB_OUTBOX), &st) == 0) {
			n = st.ms_entries;
		}
		store_read_end(txn);
	}
	return n;
}

int
gw_outbox_start(gw *g)
{
	int n = 0, rv;
	if ((rv = store_write(g->st, index_queues, &n)) != 0) {
		return rv;
	}
	if (n > 0) {
		log_info("outbox: indexed %d queued messages", n);
	}
	if ((rv = gw_ob_sched_new(
	         &g->ob_sched, &g->set.throttle, g->set.send_concurrency))
	    != 0) {
		return rv;
	}
	CURLM *multi = curl_multi_init();
	if (multi == NULL) {
		return OD_ENOMEM;
	}
	/* Keep a connection per send in flight (and one spare) between
	 * bursts: by default the cache holds 4 per transfer still added, so
	 * each lull closed them and the next burst connected anew. */
	curl_multi_setopt(
	    multi, CURLMOPT_MAXCONNECTS, (long) g->set.send_concurrency + 1);
	int wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wfd < 0) {
		curl_multi_cleanup(multi);
		return OD_ENOMEM;
	}
	pthread_mutex_lock(&g->ob_mtx);
	g->ob_multi = multi;
	g->ob_wake_fd = wfd;
	pthread_mutex_unlock(&g->ob_mtx);
	if (pthread_create(&g->sender, NULL, sender_main, g) != 0) {
		return OD_ENOMEM;
	}
	g->sender_started = true;
	return 0;
}

void
gw_outbox_stop(gw *g)
{
	if (g == NULL) {
		return;
	}
	if (g->sender_started) {
		g->stopping = 1;
		gw_outbox_kick(g);
		pthread_join(g->sender, NULL);
		g->sender_started = false;
	}
	pthread_mutex_lock(&g->ob_mtx);
	if (g->ob_multi != NULL) {
		curl_multi_cleanup(g->ob_multi);
		g->ob_multi = NULL;
	}
	if (g->ob_wake_fd >= 0) {
		close(g->ob_wake_fd);
		g->ob_wake_fd = -1;
	}
	pthread_mutex_unlock(&g->ob_mtx);
	gw_ob_sched_free(g->ob_sched);
	g->ob_sched = NULL;
}
