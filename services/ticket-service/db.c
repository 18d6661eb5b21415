/*
 * db.c — the store layout of ticket.h: loading a ticket, saving it with
 * every secondary index brought along in the same txn, the audit log and
 * events published after the commit.
 *
 * Indexes are described by a table of key builders: saving computes the
 * keys of the old and the new state of a ticket and changes only the
 * ones that differ, so each handler just edits the Ticket and saves it.
 */
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "ticket.h"
#include "util/util.h"

const char *const ticket_db_names[] = {
	"tickets",
	"messages",
	"user_tickets",
	"queue",
	"sla_due",
	"created_at",
	"resolved_at",
	"rated_at",
	"incident_links",
	"customers",
	"faq",
	"audit",
	"breached",
	"support_days",
	/* Schema 1's, emptied by the migration; see TDB_RETIRED_BY_USER. */
	"by_user",
	"by_status",
	"open_ids",
	"user_open",
	NULL,
};

#define KEY_MAX  24
#define KEYS_MAX 2

typedef struct idx_key {
	uint8_t k[KEY_MAX];
	size_t len;
	uint8_t v[1];
	size_t vlen;
} idx_key;

typedef size_t (*idx_keys_fn)(const tk_ticket *t, idx_key *out);

static bool
is_active(const tk_ticket *t)
{
	return t->status == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
	    || t->status == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING;
}

static size_t
key1(idx_key *out, uint64_t id)
{
	store_key_u64(out->k, id);
	out->len = 8;
	out->vlen = 0;
	return 1;
}

static size_t
key2(idx_key *out, uint64_t a, uint64_t b)
{
	store_key_u64(out->k, a);
	store_key_u64(out->k + 8, b);
	out->len = 16;
	out->vlen = 0;
	return 1;
}

void
ticket__user_key(
    uint8_t k[TICKET_USER_KEY], int64_t owner, unsigned set, uint64_t id)
{
	store_key_u64(k, (uint64_t) owner);
	k[8] = (uint8_t) set;
	store_key_u64(k + 9, id);
}

/* Both of a ticket's user_tickets keys sit in its owner's range, next to
 * each other: a create dirties one leaf there, where by_user and
 * user_open dirtied a leaf each. */
static size_t
keys_user_tickets(const tk_ticket *t, idx_key *out)
{
	size_t n = 0;

	ticket__user_key(out[n].k, t->owner_id, TICKET_USER_ALL, t->id);
	out[n].len = TICKET_USER_KEY;
	out[n++].vlen = 0;
	if (is_active(t)) {
		ticket__user_key(
		    out[n].k, t->owner_id, TICKET_USER_OPEN, t->id);
		out[n].len = TICKET_USER_KEY;
		out[n++].vlen = 0;
	}
	return n;
}

static size_t
keys_breached(const tk_ticket *t, idx_key *out)
{
	if (!is_active(t)
	    || !(t->first_response_breached || t->resolution_breached)) {
		return 0;
	}
	return key1(out, t->id);
}

static size_t
keys_queue(const tk_ticket *t, idx_key *out)
{
	return is_active(t)
	    ? key2(out, (uint64_t) ticket_sla_queue_due(t), t->id)
	    : 0;
}

/* Only the running clock due first: the breach scan flags every clock of
 * a ticket that is due (ticket_sla_due), and no clock can be due before
 * it; the other one is indexed once this one stops. One key per create,
 * where one per clock put a second, week-later region in the commit. */
static size_t
keys_sla_due(const tk_ticket *t, idx_key *out)
{
	unsigned running = ticket_sla_running(t);
	unsigned clock = 0;
	int64_t due = 0;

	if (running & TICKET_CLOCK_FIRST_RESPONSE) {
		clock = TICKET_CLOCK_FIRST_RESPONSE;
		due = t->first_response_due_ms;
	}
	if ((running & TICKET_CLOCK_RESOLUTION)
	    && (clock == 0 || t->resolution_due_ms < due)) {
		clock = TICKET_CLOCK_RESOLUTION;
		due = t->resolution_due_ms;
	}
	if (clock == 0) {
		return 0;
	}
	key2(out, (uint64_t) due, t->id);
	out->k[16] = (uint8_t) clock;
	out->len = 17;
	return 1;
}

static size_t
keys_created_at(const tk_ticket *t, idx_key *out)
{
	return key2(out, (uint64_t) t->created_ms, t->id);
}

static size_t
keys_resolved_at(const tk_ticket *t, idx_key *out)
{
	return t->resolved_ms != 0
	    ? key2(out, (uint64_t) t->resolved_ms, t->id)
	    : 0;
}

static size_t
keys_rated_at(const tk_ticket *t, idx_key *out)
{
	if (t->rating == 0) {
		return 0;
	}
	key2(out, (uint64_t) t->rated_ms, t->id);
	out->v[0] = (uint8_t) t->rating;
	out->vlen = 1;
	return 1;
}

static const struct {
	enum ticket_db db;
	idx_keys_fn keys;
} indexes[] = {
	{ TDB_USER_TICKETS, keys_user_tickets },
	{ TDB_QUEUE, keys_queue },
	{ TDB_SLA_DUE, keys_sla_due },
	{ TDB_CREATED_AT, keys_created_at },
	{ TDB_RESOLVED_AT, keys_resolved_at },
	{ TDB_RATED_AT, keys_rated_at },
	{ TDB_BREACHED, keys_breached },
};

static bool
key_in(const idx_key *k, const idx_key *set, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (set[i].len == k->len && set[i].vlen == k->vlen
		    && memcmp(set[i].k, k->k, k->len) == 0
		    && memcmp(set[i].v, k->v, k->vlen) == 0) {
			return true;
		}
	}
	return false;
}

int
ticket__load(
    MDB_txn *txn, const ticket_service *svc, uint64_t id, tk_ticket **out)
{
	uint8_t key[8];

	store_key_u64(key, id);
	return store_get_pb(txn, store_db(svc->store, TDB_TICKETS), key,
	    sizeof(key), &opsdesk__v1__ticket__descriptor,
	    (ProtobufCMessage **) out);
}

/* Add d to day's support aggregate. */
static int
support_day_put(
    store_txn *txn, store *st, int64_t day, const ticket_support_day *d)
{
	MDB_dbi db = store_db(st, TDB_SUPPORT_DAYS);
	ticket_support_day cur = { 0 };
	uint8_t key[8], v[TICKET_SUPPORT_DAY_LEN];
	MDB_val val;
	int rv;

	store_key_u64(key, (uint64_t) day);
	rv = store_get(store_txn_mdb(txn), db, key, sizeof(key), &val);
	if (rv == 0) {
		if ((rv = ticket_support_day_decode(
		         val.mv_data, val.mv_size, &cur))
		    != 0) {
			return rv;
		}
	} else if (rv != OD_ENOTFOUND) {
		return rv;
	}
	ticket_support_day_add(&cur, d);
	ticket_support_day_encode(&cur, v);
	return store_put(txn, db, key, sizeof(key), v, sizeof(v));
}

/* The day aggregates of the support objectives follow the ticket. */
static int
support_days_update(store_txn *txn, store *st, const tk_ticket *old,
    const tk_ticket *t, int64_t now)
{
	int64_t day[2];
	ticket_support_day delta[2];
	size_t n = ticket_support_changes(old, t, now, day, delta);
	int rv = 0;

	for (size_t i = 0; i < n && rv == 0; i++) {
		rv = support_day_put(txn, st, day[i], &delta[i]);
	}
	return rv;
}

int
ticket__support_window(MDB_txn *txn, const ticket_service *svc, int64_t now,
    ticket_support_day *sum)
{
	MDB_dbi db = store_db(svc->store, TDB_SUPPORT_DAYS);
	int64_t last = now / TICKET_DAY_MS;
	int rv;

	memset(sum, 0, sizeof(*sum));
	for (int64_t day = last - svc->policy.objectives.window_days + 1;
	     day <= last; day++) {
		ticket_support_day d;
		uint8_t key[8];
		MDB_val val;
		if (day < 0) {
			continue;
		}
		store_key_u64(key, (uint64_t) day);
		rv = store_get(txn, db, key, sizeof(key), &val);
		if (rv == OD_ENOTFOUND) {
			continue;
		}
		if (rv != 0
		    || (rv = ticket_support_day_decode(
		            val.mv_data, val.mv_size, &d))
		        != 0) {
			return rv;
		}
		ticket_support_day_add(sum, &d);
	}
	return 0;
}

int
ticket__save(store_txn *txn, const ticket_service *svc, const tk_ticket *old,
    const tk_ticket *t)
{
	uint8_t key[8];
	int rv;

	store_key_u64(key, t->id);
	if ((rv = store_put_pb(txn, store_db(svc->store, TDB_TICKETS), key,
	         sizeof(key), &t->base))
	    != 0) {
		return rv;
	}
	for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
		idx_key ok[KEYS_MAX], nk[KEYS_MAX];
		size_t on = old != NULL ? indexes[i].keys(old, ok) : 0;
		size_t nn = indexes[i].keys(t, nk);
		MDB_dbi db = store_db(svc->store, indexes[i].db);

		for (size_t j = 0; j < on; j++) {
			if (key_in(&ok[j], nk, nn)) {
				continue;
			}
			rv = store_del(txn, db, ok[j].k, ok[j].len, NULL, 0);
			if (rv != 0 && rv != OD_ENOTFOUND) {
				return rv;
			}
		}
		for (size_t j = 0; j < nn; j++) {
			if (key_in(&nk[j], ok, on)) {
				continue;
			}
			if ((rv = store_put(txn, db, nk[j].k, nk[j].len,
			         nk[j].v, nk[j].vlen))
			    != 0) {
				return rv;
			}
		}
	}
	return support_days_update(
	    txn, svc->store, old, t, store_txn_now_ms(txn));
}

int
ticket__audit(store_txn *txn, const ticket_service *svc, uint64_t ticket_id,
    const tk_actor *actor, const char *action, const char *detail,
    const char *request_id)
{
	Opsdesk__V1__AuditEntry e = OPSDESK__V1__AUDIT_ENTRY__INIT;
	uint8_t key[16];
	int rv;

	if ((rv = store_next_id(txn, "audit", &e.seq)) != 0) {
		return rv;
	}
	e.at_ms = store_txn_now_ms(txn);
	e.actor_id = actor != NULL ? actor->user_id : 0;
	e.actor_name
	    = (char *) (actor != NULL && actor->name != NULL ? actor->name
	                                                     : "");
	e.ticket_id = ticket_id;
	e.action = (char *) action;
	e.detail = (char *) (detail != NULL ? detail : "");
	e.request_id = (char *) (request_id != NULL ? request_id : "");
	store_key_u64(key, ticket_id);
	store_key_u64(key + 8, e.seq);
	return store_put_pb(
	    txn, store_db(svc->store, TDB_AUDIT), key, sizeof(key), &e.base);
}

int
ticket__publish_ticket(store_txn *txn, const ticket_service *svc,
    const char *topic, const char *change, const tk_ticket *t,
    const tk_message *m, const char *clock, const tk_incident *inc,
    const char *correlation_id)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__TicketEvent ev = OPSDESK__V1__TICKET_EVENT__INIT;
	tk_ticket copy;

	if (svc->publisher == NULL) {
		return 0;
	}
	/* Events never carry the thread (internal notes are in it). */
	copy = *t;
	copy.n_messages = 0;
	copy.messages = NULL;
	ev.ticket = &copy;
	ev.change = (char *) change;
	ev.message = (tk_message *) m;
	ev.clock = (char *) (clock != NULL ? clock : "");
	ev.incident = (tk_incident *) inc;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_TICKET;
	env.ticket = &ev;
	return bus_publish_on_commit(
	    svc->publisher, txn, topic, &env, correlation_id);
}

int
ticket__publish_notify(store_txn *txn, const ticket_service *svc,
    const Opsdesk__V1__TicketNotify *n)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;

	if (svc->publisher == NULL) {
		return 0;
	}
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_TICKET_NOTIFY;
	env.ticket_notify = (Opsdesk__V1__TicketNotify *) n;
	return bus_publish_on_commit(
	    svc->publisher, txn, "ticket.notify", &env, NULL);
}

int
ticket__set_str(char **field, const char *v)
{
	char *s = strdup(v != NULL ? v : "");

	if (s == NULL) {
		return OD_ENOMEM;
	}
	if (*field != NULL && *field != protobuf_c_empty_string) {
		free(*field);
	}
	*field = s;
	return 0;
}

size_t
ticket__db_entries(MDB_txn *txn, MDB_dbi db)
{
	MDB_stat st;

	if (mdb_stat(txn, db, &st) != 0) {
		return 0;
	}
	return st.ms_entries;
}

size_t
ticket__open_count(MDB_txn *txn, const ticket_service *svc)
{
	return ticket__db_entries(txn, store_db(svc->store, TDB_QUEUE));
}

/* ---- schema migrations ---- */

static int
lmdb_err(int rc)
{
	return rc == MDB_MAP_FULL ? OD_EMAPFULL : OD_EIO;
}

/* Free every page of a retired DB; its (empty) name stays: see
 * TDB_RETIRED_BY_USER. */
static int
empty_db(store_txn *txn, enum ticket_db db)
{
	int rc = mdb_drop(
	    store_txn_mdb(txn), store_db(store_txn_store(txn), db), 0);

	return rc == 0 ? 0 : lmdb_err(rc);
}

/*
 * Copy every key of schema 1's index `from` (be64 owner | be64 id -> "")
 * into user_tickets as set `set`, then empty `from`. A copy into a DB of
 * another name rather than a rewrite in place: old and new keys never
 * share a DB, so the walk sees each old key once.
 */
static int
migrate_user_index(store_txn *txn, enum ticket_db from, unsigned set)
{
	store *st = store_txn_store(txn);
	MDB_dbi dest = store_db(st, TDB_USER_TICKETS);
	store_scan sc = { 0 };
	MDB_val key, val;
	uint8_t k[TICKET_USER_KEY];
	int rv, mrv;

	if ((rv = store_scan_open(
	         &sc, store_txn_mdb(txn), store_db(st, from), NULL, 0, NULL))
	    != 0) {
		goto out;
	}
	while ((mrv = store_scan_next(&sc, &key, &val)) == 0) {
		const uint8_t *p = key.mv_data;
		if (key.mv_size != 16) {
			log_error("ticket store: a schema 1 %s key of %zu "
			          "bytes",
			    ticket_db_names[from], key.mv_size);
			rv = OD_EMALFORMED;
			goto out;
		}
		ticket__user_key(k, (int64_t) store_key_get_u64(p), set,
		    store_key_get_u64(p + 8));
		if ((rv = store_put(txn, dest, k, sizeof(k), "", 0)) != 0) {
			goto out;
		}
	}
	if (mrv != OD_ENOTFOUND) {
		rv = mrv;
		goto out;
	}
	store_scan_close(&sc);
	rv = empty_db(txn, from);
out:
	store_scan_close(&sc);
	return rv;
}

/*
 * Keep only the sla_due key keys_sla_due gives each ticket now (schemas 1
 * and 2 had one per running clock). A later key left behind would never be
 * deleted by ticket__save, which removes only the keys the old state
 * gives, and would be read by every breach scan once expired.
 */
static int
migrate_sla_due(store_txn *txn)
{
	store *st = store_txn_store(txn);
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi db = store_db(st, TDB_SLA_DUE);
	store_scan sc = { 0 };
	MDB_val key, val;
	uint8_t *stale = NULL; /* keys to delete, 17 bytes each */
	size_t n = 0, cap = 0;
	int rv = 0, mrv;

	if ((rv = store_scan_open(&sc, mt, db, NULL, 0, NULL)) != 0) {
		goto out;
	}
	while ((mrv = store_scan_next(&sc, &key, &val)) == 0) {
		tk_ticket *t = NULL;
		idx_key k;
		uint8_t id[8];
		bool keep;

		if (key.mv_size != 17) {
			rv = OD_EMALFORMED;
			goto out;
		}
		memcpy(id, (uint8_t *) key.mv_data + 8, 8);
		rv = store_get_pb(mt, store_db(st, TDB_TICKETS), id,
		    sizeof(id), &opsdesk__v1__ticket__descriptor,
		    (ProtobufCMessage **) &t);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			goto out;
		}
		keep = rv == 0 && keys_sla_due(t, &k) == 1
		    && memcmp(k.k, key.mv_data, 17) == 0;
		protobuf_c_message_free_unpacked(
		    t != NULL ? &t->base : NULL, NULL);
		rv = 0;
		if (keep) {
			continue;
		}
		if (n == cap) {
			uint8_t *v;
			cap = cap != 0 ? cap * 2 : 256;
			if ((v = realloc(stale, cap * 17)) == NULL) {
				rv = OD_ENOMEM;
				goto out;
			}
			stale = v;
		}
		memcpy(stale + n++ * 17, key.mv_data, 17);
	}
	if (mrv != OD_ENOTFOUND) {
		rv = mrv;
		goto out;
	}
	/* Deleted after the walk, so the walking cursor never sees a
	 * deletion under it. */
	store_scan_close(&sc);
	for (size_t i = 0; i < n && rv == 0; i++) {
		rv = store_del(txn, db, stale + i * 17, 17, NULL, 0);
	}
out:
	store_scan_close(&sc);
	free(stale);
	return rv;
}

/*
 * 1 -> 2: by_user and user_open become the two sets of user_tickets;
 * open_ids (counted by the queue now, which holds the same tickets) and
 * by_status (written, never read) are emptied.
 */
static int
migrate_v1_v2(store_txn *txn)
{
	int rv;

	if ((rv = migrate_user_index(
	         txn, TDB_RETIRED_BY_USER, TICKET_USER_ALL))
	        != 0
	    || (rv = migrate_user_index(
	            txn, TDB_RETIRED_USER_OPEN, TICKET_USER_OPEN))
	        != 0
	    || (rv = empty_db(txn, TDB_RETIRED_OPEN_IDS)) != 0
	    || (rv = empty_db(txn, TDB_RETIRED_BY_STATUS)) != 0) {
		return rv;
	}
	return 0;
}

/* 3 -> 4: support_days from every ticket, as if each were saved new
 * (a breach flagged before counts on the day of the migration). */
static int
migrate_support_days(store_txn *txn)
{
	store *st = store_txn_store(txn);
	store_scan sc;
	MDB_val key, val;
	int rv;

	if ((rv = store_scan_open(&sc, store_txn_mdb(txn),
	         store_db(st, TDB_TICKETS), NULL, 0, NULL))
	    != 0) {
		return rv;
	}
	while ((rv = store_scan_next(&sc, &key, &val)) == 0) {
		tk_ticket *t = opsdesk__v1__ticket__unpack(
		    NULL, val.mv_size, val.mv_data);
		if (t == NULL) {
			rv = OD_EMALFORMED;
			break;
		}
		/* support_days is another DB: the walk is not disturbed. */
		rv = support_days_update(
		    txn, st, NULL, t, store_txn_now_ms(txn));
		protobuf_c_message_free_unpacked(&t->base, NULL);
		if (rv != 0) {
			break;
		}
	}
	store_scan_close(&sc);
	return rv == OD_ENOTFOUND ? 0 : rv;
}

int
ticket_store_migrate(store_txn *txn, unsigned from, unsigned to, void *arg)
{
	int rv = 0;

	(void) arg;
	for (unsigned v = from; v < to && rv == 0; v++) {
		switch (v) {
		case 1:
			rv = migrate_v1_v2(txn);
			break;
		case 2:
			/* 2 -> 3: sla_due keeps one key per ticket. */
			rv = migrate_sla_due(txn);
			break;
		case 3:
			rv = migrate_support_days(txn);
			break;
		default:
			log_error(
			    "ticket store: no migration from schema %u", v);
			rv = OD_ESTATE;
			break;
		}
	}
	return rv;
}
