/*
 * handlers.c — the TicketRequest methods. Each handler validates, checks
 * who asks (a non-owner non-admin gets NOT_FOUND for any ticket), applies
 * the change to a copy of the stored ticket and saves it with its indexes
 * in the call's txn; the rpc layer replies after the group commit and
 * keeps the reply under the request id. Events go out after the commit.
 *
 * A write handler may run twice (map growth), so nothing here has an
 * effect outside the txn other than through on-commit hooks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "ticket.h"
#include "util/util.h"

#define ST_OPEN     OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
#define ST_PENDING  OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING
#define ST_RESOLVED OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_RESOLVED

#define PAGE_DEFAULT   20
#define PAGE_MAX       100
#define FAQ_SEARCH_MAX 10
#define HOUR_MS        (3600 * 1000LL)

/*
 * Copy outside text into call memory with invalid UTF-8 replaced, after
 * checking its length. *out is set only on success.
 */
static int
clean_text(rpc_call *c, const char *s, size_t max, const char *field,
    bool required, char **out)
{
	size_t n = s != NULL ? strlen(s) : 0;
	char *tmp;

	if (required && n == 0) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "%s is required", field);
	}
	if (n > max) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "%s is longer than %zu bytes", field, max);
	}
	if ((tmp = od_utf8_sanitize(s != NULL ? s : "", n)) == NULL) {
		return OD_ENOMEM;
	}
	*out = rpc_call_strdup(c, tmp);
	free(tmp);
	return *out != NULL ? 0 : OD_ENOMEM;
}

static const char *
actor_name(const tk_actor *a)
{
	return a->name != NULL ? a->name : "";
}

/*
 * Load ticket id for `what` by the call's actor. The stored message is kept
 * until the call ends; *copy (call memory) is a shallow copy to edit and
 * save, *old the stored state (both may be NULL when not wanted).
 */
static int
load_for(rpc_call *c, uint64_t id, ticket_access what, tk_ticket **old,
    tk_ticket **copy)
{
	tk_ticket *t = NULL;
	int rv;

	rv = id != 0 ? ticket__load(rpc_call_mdb(c), rpc_call_arg(c), id, &t)
	             : OD_ENOTFOUND;
	if (rv == 0) {
		rpc_call_keep(c, &t->base);
		rv = ticket_authorize(t, rpc_call_actor(c), what);
	}
	if (rv == OD_ENOTFOUND) {
		/* The same answer whether it does not exist or is not yours.
		 */
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no ticket T-%llu", (unsigned long long) id);
	}
	if (rv == OD_EPERM) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED,
		    what == TICKET_STAFF_ACT
		        ? "only admins can do that"
		        : "only the ticket's owner can do that");
	}
	if (rv != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	if (old != NULL) {
		*old = t;
	}
	if (copy != NULL) {
		if ((*copy = rpc_call_alloc(c, sizeof(**copy))) == NULL) {
			return OD_ENOMEM;
		}
		**copy = *t;
	}
	return 0;
}

static int
put_message(
    rpc_call *c, tk_ticket *t, int kind, const char *text, tk_message **out)
{
	ticket_service *svc = rpc_call_arg(c);
	store_txn *txn = rpc_call_txn(c);
	const tk_actor *a = rpc_call_actor(c);
	tk_message *m;
	uint8_t key[12];

	if (t->message_count >= TICKET_MAX_MESSAGES) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_RESOURCE_EXHAUSTED,
		    "T-%llu has %u messages, the most a ticket holds; please "
		    "open a new ticket",
		    (unsigned long long) t->id, t->message_count);
	}
	if ((m = rpc_call_alloc(c, sizeof(*m))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__ticket_message__init(m);
	m->seq = ++t->message_count;
	m->kind = kind;
	m->author_id = a->user_id;
	m->author_name = (char *) actor_name(a);
	m->text = (char *) text;
	m->at_ms = rpc_call_now_ms(c);
	store_key_u64(key, t->id);
	od_put_be32(key + 8, m->seq);
	*out = m;
	return store_put_pb(txn, store_db(svc->store, TDB_MESSAGES), key,
	    sizeof(key), &m->base);
}

/* Save t (from old), audit and publish in the call's txn. */
static int
commit_change(rpc_call *c, const tk_ticket *old, tk_ticket *t,
    const char *action, const char *detail, const char *topic,
    const tk_message *m)
{
	store_txn *txn = rpc_call_txn(c);
	ticket_service *svc = rpc_call_arg(c);
	int rv;

	t->updated_ms = rpc_call_now_ms(c);
	if ((rv = ticket__save(txn, svc, old, t)) != 0
	    || (rv = ticket__audit(txn, svc, t->id, rpc_call_actor(c), action,
	            detail, rpc_call_request_id(c)))
	        != 0
	    || (rv = ticket__publish_ticket(txn, svc, topic, action, t, m,
	            NULL, NULL, rpc_call_request_id(c)))
	        != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	return 0;
}

/* Reply with t, carrying only message m (may be NULL). */
static int
reply_ticket(rpc_call *c, ProtobufCMessage *reply, tk_ticket *t, tk_message *m)
{
	if (m != NULL) {
		tk_message **v = rpc_call_alloc(c, sizeof(*v));
		if (v == NULL) {
			return OD_ENOMEM;
		}
		v[0] = m;
		t->messages = v;
		t->n_messages = 1;
	} else {
		t->messages = NULL;
		t->n_messages = 0;
	}
	return rpc_call_result(c, "ticket", t);
}

static uint32_t
page_limit(const Opsdesk__V1__PageRequest *p)
{
	return od_page_limit(p != NULL ? p->limit : 0, PAGE_DEFAULT, PAGE_MAX);
}

static const char *
page_cursor(const Opsdesk__V1__PageRequest *p)
{
	return p != NULL && p->cursor != NULL ? p->cursor : "";
}

/* ---- create ---- */

/* Open tickets of user and creations in the last hour, by index. */
static int
count_for_limits(rpc_call *c, int64_t user, uint32_t *open, uint32_t *recent,
    int64_t *oldest)
{
	ticket_service *svc = rpc_call_arg(c);
	MDB_txn *txn = rpc_call_mdb(c);
	int64_t since = rpc_call_now_ms(c) - HOUR_MS;
	uint8_t k[TICKET_USER_KEY];
	MDB_val key, val;
	store_scan sc;
	int rv;

	*open = 0;
	*recent = 0;
	*oldest = 0;
	/* The user's open set (the first 9 bytes of its keys): stop at the
	 * limit, more does not change the answer (and without a limit the
	 * count is not needed). */
	ticket__user_key(k, user, TICKET_USER_OPEN, 0);
	if ((rv = store_scan_open(
	         &sc, txn, store_db(svc->store, TDB_USER_TICKETS), k, 9, NULL))
	    != 0) {
		return rv;
	}
	while (svc->policy.open_per_user != 0
	    && *open < svc->policy.open_per_user
	    && store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == TICKET_USER_KEY) {
		(*open)++;
	}
	store_scan_close(&sc);

	/* All the user's tickets, newest first: ids grow with time, so stop
	 * at the first ticket older than an hour. */
	if (svc->policy.creations_per_hour == 0) {
		return 0;
	}
	ticket__user_key(k, user, TICKET_USER_ALL, 0);
	if ((rv = store_scan_open(
	         &sc, txn, store_db(svc->store, TDB_USER_TICKETS), k, 9, NULL))
	    != 0) {
		return rv;
	}
	store_scan_reverse(&sc);
	while (*recent < svc->policy.creations_per_hour
	    && store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == TICKET_USER_KEY) {
		tk_ticket *t = NULL;
		uint64_t id = store_key_get_u64((uint8_t *) key.mv_data + 9);
		int64_t created;
		if ((rv = ticket__load(txn, svc, id, &t)) != 0) {
			break;
		}
		created = t->created_ms;
		protobuf_c_message_free_unpacked(&t->base, NULL);
		if (created < since) {
			break;
		}
		(*recent)++;
		*oldest = created;
	}
	store_scan_close(&sc);
	return rv;
}

static int
customer_tier(MDB_txn *txn, ticket_service *svc, int64_t user)
{
	Opsdesk__V1__CustomerTier *ct = NULL;
	uint8_t k[8];
	int tier = OPSDESK__V1__TIER__TIER_FREE;

	store_key_u64(k, (uint64_t) user);
	if (store_get_pb(txn, store_db(svc->store, TDB_CUSTOMERS), k,
	        sizeof(k), &opsdesk__v1__customer_tier__descriptor,
	        (ProtobufCMessage **) &ct)
	    == 0) {
		if (ct->tier > 0 && ct->tier < TICKET_N_TIERS) {
			tier = ct->tier;
		}
		protobuf_c_message_free_unpacked(&ct->base, NULL);
	}
	return tier;
}

static void
count_create(void *arg)
{
	/* The open gauge is recounted by the breach timer, from the index. */
	metric_inc(((ticket_service *) arg)->m_creates);
}

static int
h_create(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__CreateTicketRequest *q = rpc_call_params(c);
	ticket_service *svc = rpc_call_arg(c);
	store_txn *txn = rpc_call_txn(c);
	const tk_actor *a = rpc_call_actor(c);
	int64_t now = rpc_call_now_ms(c);
	Opsdesk__V1__CreateTicketReply *cr;
	tk_ticket *t;
	tk_message *m = NULL;
	tk_incident *inc = NULL;
	char *text, *subject, *derived;
	char msg[256];
	uint32_t open, recent;
	int64_t oldest;
	int rv;

	if (a->user_id == 0) {
		return rpc_call_fail(
		    c, OD_EINVAL, "actor.user_id is required");
	}
	if ((int) q->priority < 0
	    || (int) q->priority >= TICKET_N_PRIORITIES) {
		return rpc_call_fail(c, OD_EINVAL,
		    "priority must be low, normal, high or urgent");
	}
	if ((rv = clean_text(c, q->text, TICKET_MAX_TEXT, "text",
	         q->subject == NULL || q->subject[0] == '\0', &text))
	        != 0
	    || (rv = clean_text(c, q->subject, TICKET_MAX_SUBJECT, "subject",
	            false, &subject))
	        != 0) {
		return rv;
	}
	if (strlen(actor_name(a)) > TICKET_MAX_NAME) {
		return rpc_call_fail(c, OD_EINVAL, "actor.name is too long");
	}
	if ((rv = count_for_limits(c, a->user_id, &open, &recent, &oldest))
	    != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	if ((rv = ticket_limits_check(
	         &svc->policy, open, recent, oldest, now, msg, sizeof(msg)))
	    != 0) {
		return rpc_call_fail(c, rv, "%s", msg);
	}
	if (subject[0] == '\0') {
		if ((derived = ticket_subject_from_text(text)) == NULL) {
			return OD_ENOMEM;
		}
		subject = rpc_call_strdup(c, derived);
		free(derived);
		if (subject == NULL) {
			return OD_ENOMEM;
		}
	}
	if ((t = rpc_call_alloc(c, sizeof(*t))) == NULL
	    || (cr = rpc_call_alloc(c, sizeof(*cr))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__ticket__init(t);
	opsdesk__v1__create_ticket_reply__init(cr);
	if ((rv = store_next_id(txn, "ticket", &t->id)) != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	t->owner_id = a->user_id;
	t->chat_id = a->chat_id != 0 ? a->chat_id : a->user_id;
	t->owner_name = (char *) actor_name(a);
	t->tier = customer_tier(rpc_call_mdb(c), svc, a->user_id);
	t->subject = subject;
	t->priority = q->priority != 0
	    ? q->priority
	    : OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL;
	t->status = ST_OPEN;
	t->created_ms = now;
	t->updated_ms = now;
	ticket_sla_apply(&svc->policy, t);

	/* A ticket opened during a public incident is linked to it; its owner
	 * hears when the incident is resolved. */
	if ((inc = ticket_incidents_current(svc->incidents)) != NULL) {
		uint8_t lk[16];
		rpc_call_keep(c, &inc->base);
		t->incident_id = inc->id;
		store_key_u64(lk, inc->id);
		store_key_u64(lk + 8, t->id);
		if ((rv = store_put(txn,
		         store_db(svc->store, TDB_INCIDENT_LINKS), lk,
		         sizeof(lk), "", 0))
		    != 0) {
			return rpc_call_fail(c, rv, NULL);
		}
		cr->active_incident = inc;
	}
	if (text[0] != '\0'
	    && (rv = put_message(c, t,
	            OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_USER, text, &m))
	        != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	if ((rv = ticket__save(txn, svc, NULL, t)) != 0
	    || (rv = ticket__audit(txn, svc, t->id, a, "create",
	            ticket_priority_name(t->priority), rpc_call_request_id(c)))
	        != 0
	    || (rv = ticket__publish_ticket(txn, svc, "ticket.created",
	            "created", t, m, NULL, inc, rpc_call_request_id(c)))
	        != 0
	    || (rv = store_txn_on_commit(txn, count_create, svc, NULL)) != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	if ((rv = reply_ticket(c, reply, t, m)) != 0) {
		return rv;
	}
	cr->ticket = t;
	return rpc_call_result(c, "created", cr);
}

/* ---- get ---- */

static int
h_get(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	const tk_actor *a = rpc_call_actor(c);
	MDB_txn *txn = rpc_call_mdb(c);
	tk_ticket *t;
	tk_message **v;
	store_scan sc;
	MDB_val key, val;
	uint8_t k[8];
	size_t n = 0;
	int rv;

	const Opsdesk__V1__TicketId *q = rpc_call_params(c);

	if ((rv = load_for(c, q->id, TICKET_READ, NULL, &t)) != 0) {
		return rv;
	}
	if ((v = rpc_call_alloc(c, TICKET_GET_MESSAGES * sizeof(*v)))
	    == NULL) {
		return OD_ENOMEM;
	}
	/* The newest messages, read backwards from the end of the thread
	 * (keys: ticket id, then the message's u32 seq). */
	store_key_u64(k, t->id);
	if (store_scan_open(&sc, txn, store_db(svc->store, TDB_MESSAGES), k,
	        sizeof(k), NULL)
	    != 0) {
		return rpc_call_fail(c, OD_EIO, NULL);
	}
	store_scan_reverse(&sc);
	while (n < TICKET_GET_MESSAGES && store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == 12) {
		tk_message *m = opsdesk__v1__ticket_message__unpack(
		    NULL, val.mv_size, val.mv_data);
		if (m == NULL) {
			rv = rpc_call_fail(
			    c, OD_EIO, "a stored message does not decode");
			goto out;
		}
		rpc_call_keep(c, &m->base);
		if (m->kind
		        != OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE
		    || a->is_admin) {
			v[n++] = m;
		}
	}
	/* Oldest first, as a thread reads. */
	for (size_t i = 0; i < n / 2; i++) {
		tk_message *tmp = v[i];
		v[i] = v[n - 1 - i];
		v[n - 1 - i] = tmp;
	}
	t->messages = v;
	t->n_messages = n;
	rv = rpc_call_result(c, "ticket", t);
out:
	store_scan_close(&sc);
	return rv;
}

/* ---- lists ---- */

static int
list_add(rpc_call *c, Opsdesk__V1__TicketList *l, uint64_t id, size_t cap)
{
	tk_ticket *t = NULL;
	int rv;

	if (l->tickets == NULL
	    && (l->tickets = rpc_call_alloc(c, cap * sizeof(*l->tickets)))
	        == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = ticket__load(rpc_call_mdb(c), rpc_call_arg(c), id, &t))
	    != 0) {
		return rv;
	}
	rpc_call_keep(c, &t->base);
	l->tickets[l->n_tickets++] = t;
	return 0;
}

static int
h_list_mine(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__ListTicketsRequest *q = rpc_call_params(c);
	const tk_actor *a = rpc_call_actor(c);
	ticket_service *svc = rpc_call_arg(c);
	MDB_txn *txn = rpc_call_mdb(c);
	Opsdesk__V1__TicketList *l;
	uint32_t limit = page_limit(q->page);
	const char *cursor = page_cursor(q->page);
	int64_t user = a->user_id;
	store_scan sc;
	MDB_val key, val;
	uint8_t k[TICKET_USER_KEY];
	int rv;

	if (q->user_id != 0 && q->user_id != a->user_id) {
		if (!a->is_admin) {
			return rpc_call_fail(c, OD_EPERM,
			    "only admins can list another user's tickets");
		}
		user = q->user_id;
	}
	if (user == 0) {
		return rpc_call_fail(
		    c, OD_EINVAL, "actor.user_id is required");
	}
	if ((l = rpc_call_alloc(c, sizeof(*l))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__ticket_list__init(l);
	/* Newest first: the user's set (the first 9 bytes of its keys)
	 * backwards, from the cursor's key or the set's last. */
	ticket__user_key(k, user, TICKET_USER_ALL, 0);
	rv = store_scan_open(
	    &sc, txn, store_db(svc->store, TDB_USER_TICKETS), k, 9, cursor);
	if (rv == OD_EINVAL) {
		return rpc_call_fail(
		    c, rv, "page.cursor is not one this service gave");
	}
	if (rv != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	store_scan_reverse(&sc);
	while (store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == TICKET_USER_KEY) {
		uint64_t id = store_key_get_u64((uint8_t *) key.mv_data + 9);
		tk_ticket *t;
		if (l->n_tickets == limit) {
			char next[STORE_PAGE_CURSOR_MAX];
			store_scan_page_cursor(&sc, next, sizeof(next));
			l->next_cursor = rpc_call_printf(c, "%s", next);
			break;
		}
		if ((rv = list_add(c, l, id, limit)) != 0) {
			rv = rpc_call_fail(c, rv, NULL);
			goto out;
		}
		t = l->tickets[l->n_tickets - 1];
		if (!q->include_closed
		    && t->status
		        == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED) {
			l->n_tickets--;
		}
	}
	store_scan_close(&sc);
	/* total: every ticket of the user's, by the index alone. */
	if (store_scan_open(
	        &sc, txn, store_db(svc->store, TDB_USER_TICKETS), k, 9, NULL)
	    != 0) {
		return rpc_call_fail(c, OD_EIO, NULL);
	}
	while (store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == TICKET_USER_KEY) {
		l->total++;
	}
	rv = rpc_call_result(c, "tickets", l);
out:
	store_scan_close(&sc);
	return rv;
}

/*
 * Walk index db forward from the key `cursor` names (store_scan's page
 * cursor) and load up to limit tickets whose id is the key's second u64.
 */
static int
list_by_due(rpc_call *c, enum ticket_db db, const char *cursor, uint32_t limit,
    Opsdesk__V1__TicketList *l)
{
	ticket_service *svc = rpc_call_arg(c);
	store_scan sc;
	MDB_val key, val;
	char next[STORE_PAGE_CURSOR_MAX];
	int rv;

	if ((rv = store_scan_open(&sc, rpc_call_mdb(c),
	         store_db(svc->store, db), NULL, 0, cursor))
	    != 0) {
		return rpc_call_fail(c, rv,
		    rv == OD_EINVAL
		        ? "page.cursor is not one this service gave"
		        : NULL);
	}
	while ((rv = store_scan_next(&sc, &key, &val)) == 0) {
		if (key.mv_size != 16) {
			continue;
		}
		if (l->n_tickets == limit) {
			store_scan_page_cursor(&sc, next, sizeof(next));
			l->next_cursor = rpc_call_strdup(c, next);
			break;
		}
		if ((rv = list_add(c, l,
		         store_key_get_u64((const uint8_t *) key.mv_data + 8),
		         limit))
		    != 0) {
			rv = rpc_call_fail(c, rv, NULL);
			goto out;
		}
	}
	rv = rv == OD_ENOTFOUND ? 0 : rpc_call_fail(c, rv, NULL);
out:
	store_scan_close(&sc);
	return rv;
}

static int
h_queue(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__QueueRequest *q = rpc_call_params(c);
	Opsdesk__V1__TicketList *l;
	int rv;

	if ((l = rpc_call_alloc(c, sizeof(*l))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__ticket_list__init(l);
	if ((rv = list_by_due(
	         c, TDB_QUEUE, page_cursor(q->page), page_limit(q->page), l))
	    != 0) {
		return rv;
	}
	l->total
	    = (uint32_t) ticket__open_count(rpc_call_mdb(c), rpc_call_arg(c));
	return rpc_call_result(c, "tickets", l);
}

static int
h_snapshot(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	Opsdesk__V1__TicketSnapshot *s;
	Opsdesk__V1__TicketList l = OPSDESK__V1__TICKET_LIST__INIT;
	int rv;

	if ((s = rpc_call_alloc(c, sizeof(*s))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__ticket_snapshot__init(s);
	if ((rv = list_by_due(c, TDB_QUEUE, "", TICKET_SNAPSHOT_MAX, &l))
	    != 0) {
		return rv;
	}
	s->open = l.tickets;
	s->n_open = l.n_tickets;
	if ((rv = store_counter(
	         rpc_call_mdb(c), svc->store, "ticket", &s->last_id))
	    != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	s->at_ms = rpc_call_now_ms(c);
	return rpc_call_result(c, "snapshot", s);
}

/* ---- thread ---- */

/* reply, note and user_message share one shape; the table says which. */
typedef struct text_method {
	int kind;
	ticket_access access;
	const char *topic;
	const char *action;
} text_method;

static const text_method text_reply = {
	OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_STAFF_REPLY,
	TICKET_STAFF_ACT,
	"ticket.replied",
	"reply",
};
static const text_method text_note = {
	OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE,
	TICKET_STAFF_ACT,
	"ticket.updated",
	"note",
};
/* A user message is a thread message admins must see, as a staff reply
 * is one the owner must see: both go out as ticket.replied and the
 * message's kind says which way it goes. */
static const text_method text_user = {
	OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_USER,
	TICKET_OWNER_ACT,
	"ticket.replied",
	"user_message",
};

static int
add_text(rpc_call *c, const Opsdesk__V1__TicketTextRequest *q,
    const text_method *tm, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	int64_t now = rpc_call_now_ms(c);
	tk_ticket *old, *t;
	tk_message *m;
	const char *why = NULL;
	const char *action = tm->action;
	char *text;
	bool reopens = false;
	int rv;

	if ((rv = clean_text(c, q->text, TICKET_MAX_TEXT, "text", true, &text))
	        != 0
	    || (rv = load_for(c, q->id, tm->access, &old, &t)) != 0) {
		return rv;
	}
	switch (tm->kind) {
	case OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_STAFF_REPLY:
		if ((rv = ticket_staff_change_check(t, &why)) != 0) {
			return rpc_call_fail(c, rv, "%s", why);
		}
		ticket_sla_first_response(t, now);
		break;
	case OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_USER:
		if ((rv = ticket_user_message_check(
		         &svc->policy, t, now, &reopens, &why))
		    != 0) {
			return rpc_call_fail(c, rv, "%s", why);
		}
		/* The customer answered: a pending ticket is back with staff,
		 * a resolved one reopens. */
		if (t->status == ST_PENDING || reopens) {
			ticket_status_apply(&svc->policy, t, ST_OPEN, now);
		}
		if (reopens) {
			action = "reopened";
		}
		break;
	default:
		break;
	}
	if ((rv = put_message(c, t, tm->kind, text, &m)) != 0
	    || (rv = commit_change(c, old, t, action, NULL, tm->topic,
	            tm->kind
	                    == OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE
	                ? NULL
	                : m))
	        != 0) {
		return rv;
	}
	return reply_ticket(c, reply, t, m);
}

static int
h_reply(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	return add_text(c, rpc_call_params(c), &text_reply, reply);
}

static int
h_note(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	return add_text(c, rpc_call_params(c), &text_note, reply);
}

static int
h_user_message(
    rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	return add_text(c, rpc_call_params(c), &text_user, reply);
}

/* ---- staff changes ---- */

static int
h_assign(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__AssignRequest *q = rpc_call_params(c);
	const tk_actor *a = rpc_call_actor(c);
	tk_ticket *old, *t;
	const char *why;
	char *name;
	int rv;

	if ((rv = clean_text(c, q->assignee_name, TICKET_MAX_NAME,
	         "assignee_name", false, &name))
	        != 0
	    || (rv = load_for(c, q->id, TICKET_STAFF_ACT, &old, &t)) != 0) {
		return rv;
	}
	if ((rv = ticket_staff_change_check(t, &why)) != 0) {
		return rpc_call_fail(c, rv, "%s", why);
	}
	if (q->assignee_id < 0) {
		return rpc_call_fail(
		    c, OD_EINVAL, "assignee_id must be a user id or 0");
	}
	if (name[0] == '\0' && q->assignee_id == a->user_id) {
		name = (char *) actor_name(a);
	}
	t->assignee_id = q->assignee_id;
	t->assignee_name = q->assignee_id != 0 ? name : (char *) "";
	if ((rv = commit_change(c, old, t, "assign",
	         rpc_call_printf(c, "%lld", (long long) q->assignee_id),
	         "ticket.updated", NULL))
	    != 0) {
		return rv;
	}
	return reply_ticket(c, reply, t, NULL);
}

static int
h_set_priority(
    rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	const Opsdesk__V1__SetPriorityRequest *q = rpc_call_params(c);
	tk_ticket *old, *t;
	const char *why;
	int rv;

	if ((int) q->priority <= 0
	    || (int) q->priority >= TICKET_N_PRIORITIES) {
		return rpc_call_fail(c, OD_EINVAL,
		    "priority must be low, normal, high or urgent");
	}
	if ((rv = load_for(c, q->id, TICKET_STAFF_ACT, &old, &t)) != 0) {
		return rv;
	}
	if ((rv = ticket_staff_change_check(t, &why)) != 0) {
		return rpc_call_fail(c, rv, "%s", why);
	}
	if (t->priority == q->priority) {
		return rpc_call_fail(
		    c, OD_ESTATE, "the ticket already has that priority");
	}
	t->priority = q->priority;
	ticket_sla_apply(&svc->policy, t);
	if ((rv = commit_change(c, old, t, "priority",
	         ticket_priority_name(q->priority), "ticket.updated", NULL))
	    != 0) {
		return rv;
	}
	return reply_ticket(c, reply, t, NULL);
}

/* Tell the owner that staff resolved, closed or are waiting on them:
 * ticket.notify is the gateway's "message for a ticket owner". */
static int
notify_status(rpc_call *c, const tk_ticket *t)
{
	ticket_service *svc = rpc_call_arg(c);
	Opsdesk__V1__TicketNotify n = OPSDESK__V1__TICKET_NOTIFY__INIT;
	unsigned long long id = (unsigned long long) t->id;
	int rv;

	switch (t->status) {
	case ST_PENDING:
		n.text = rpc_call_printf(c,
		    "Support is waiting for your answer on T-%llu: reply to "
		    "the ticket to continue.",
		    id);
		break;
	case ST_RESOLVED:
		n.text = rpc_call_printf(c,
		    "T-%llu is resolved. Rate the help with /rate %llu <1-5>; "
		    "if the problem is not solved, reply to the ticket within "
		    "%lld days to reopen it.",
		    id, id,
		    (long long) (svc->policy.reopen_ms / (24 * HOUR_MS)));
		break;
	case OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED:
		n.text = t->rating == 0
		    ? rpc_call_printf(c,
		        "T-%llu is closed. Rate the help with /rate %llu "
		        "<1-5>.",
		        id, id)
		    : rpc_call_printf(c, "T-%llu is closed.", id);
		break;
	default:
		return 0;
	}
	if (n.text == NULL) {
		return OD_ENOMEM;
	}
	n.ticket_id = t->id;
	n.user_id = t->owner_id;
	n.chat_id = t->chat_id;
	n.incident_id = 0;
	if ((rv = ticket__publish_notify(rpc_call_txn(c), rpc_call_arg(c), &n))
	    != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	return 0;
}

static int
h_set_status(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	const Opsdesk__V1__SetStatusRequest *q = rpc_call_params(c);
	tk_ticket *old, *t;
	const char *why = NULL;
	int rv;

	if ((rv = load_for(c, q->id, TICKET_STAFF_ACT, &old, &t)) != 0) {
		return rv;
	}
	if ((rv = ticket_status_change_check(t, q->status, &why)) != 0) {
		return rpc_call_fail(c, rv, "%s", why);
	}
	ticket_status_apply(&svc->policy, t, q->status, rpc_call_now_ms(c));
	if ((rv = commit_change(c, old, t, "status",
	         ticket_status_name(q->status), "ticket.updated", NULL))
	        != 0
	    || (rv = notify_status(c, t)) != 0) {
		return rv;
	}
	return reply_ticket(c, reply, t, NULL);
}

static int
h_rate(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__RateRequest *q = rpc_call_params(c);
	tk_ticket *old, *t;
	const char *why = NULL;
	char *comment;
	int rv;

	if ((rv = clean_text(c, q->comment, TICKET_MAX_COMMENT, "comment",
	         false, &comment))
	        != 0
	    || (rv = load_for(c, q->id, TICKET_OWNER_ACT, &old, &t)) != 0) {
		return rv;
	}
	if ((rv = ticket_rate_check(t, q->rating, &why)) != 0) {
		return rpc_call_fail(c, rv, "%s", why);
	}
	t->rating = q->rating;
	t->rating_comment = comment;
	t->rated_ms = rpc_call_now_ms(c);
	if ((rv = commit_change(c, old, t, "rate",
	         rpc_call_printf(c, "%u", q->rating), "ticket.rated", NULL))
	    != 0) {
		return rv;
	}
	return reply_ticket(c, reply, t, NULL);
}

/* ---- tiers ---- */

static int
reply_tier(rpc_call *c, ProtobufCMessage *reply, int64_t user, int tier,
    int64_t updated)
{
	Opsdesk__V1__CustomerTier *ct = rpc_call_alloc(c, sizeof(*ct));

	if (ct == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__customer_tier__init(ct);
	ct->user_id = user;
	ct->tier = tier;
	ct->updated_ms = updated;
	return rpc_call_result(c, "tier", ct);
}

static int
h_set_tier(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__SetTierRequest *q = rpc_call_params(c);
	ticket_service *svc = rpc_call_arg(c);
	store_txn *txn = rpc_call_txn(c);
	Opsdesk__V1__CustomerTier ct = OPSDESK__V1__CUSTOMER_TIER__INIT;
	uint8_t k[8];
	int rv;

	if (q->user_id <= 0) {
		return rpc_call_fail(
		    c, OD_EINVAL, "user_id must be a Telegram user id");
	}
	if ((int) q->tier <= 0 || (int) q->tier >= TICKET_N_TIERS) {
		return rpc_call_fail(
		    c, OD_EINVAL, "tier must be free, pro, elite or ultra");
	}
	ct.user_id = q->user_id;
	ct.tier = q->tier;
	ct.updated_ms = rpc_call_now_ms(c);
	store_key_u64(k, (uint64_t) q->user_id);
	if ((rv = store_put_pb(txn, store_db(svc->store, TDB_CUSTOMERS), k,
	         sizeof(k), &ct.base))
	        != 0
	    || (rv = ticket__audit(txn, svc, 0, rpc_call_actor(c), "tier",
	            rpc_call_printf(c, "%lld %s", (long long) q->user_id,
	                ticket_tier_name(q->tier)),
	            rpc_call_request_id(c)))
	        != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	return reply_tier(c, reply, ct.user_id, ct.tier, ct.updated_ms);
}

static int
h_get_tier(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	const Opsdesk__V1__GetTierRequest *q = rpc_call_params(c);
	const tk_actor *a = rpc_call_actor(c);
	Opsdesk__V1__CustomerTier *ct = NULL;
	int64_t user = q->user_id != 0 ? q->user_id : a->user_id;
	uint8_t k[8];
	int rv;

	if (user != a->user_id && !a->is_admin) {
		return rpc_call_fail(
		    c, OD_EPERM, "only admins can see another user's tier");
	}
	if (user <= 0) {
		return rpc_call_fail(
		    c, OD_EINVAL, "user_id must be a Telegram user id");
	}
	store_key_u64(k, (uint64_t) user);
	rv = store_get_pb(rpc_call_mdb(c), store_db(svc->store, TDB_CUSTOMERS),
	    k, sizeof(k), &opsdesk__v1__customer_tier__descriptor,
	    (ProtobufCMessage **) &ct);
	if (rv == OD_ENOTFOUND) {
		return reply_tier(
		    c, reply, user, OPSDESK__V1__TIER__TIER_FREE, 0);
	}
	if (rv != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	rpc_call_keep(c, &ct->base);
	return rpc_call_result(c, "tier", ct);
}

/* ---- FAQ ---- */

/* Every FAQ entry in id order (the FAQ is small and bounded). */
static int
faq_load_all(rpc_call *c, Opsdesk__V1__FaqList *l)
{
	ticket_service *svc = rpc_call_arg(c);
	store_scan sc;
	MDB_val key, val;
	int rv;

	if ((l->entries = rpc_call_alloc(
	         c, (TICKET_MAX_FAQ + 1) * sizeof(*l->entries)))
	    == NULL) {
		return OD_ENOMEM;
	}
	if (store_scan_open(&sc, rpc_call_mdb(c),
	        store_db(svc->store, TDB_FAQ), NULL, 0, NULL)
	    != 0) {
		return rpc_call_fail(c, OD_EIO, NULL);
	}
	while (l->n_entries <= TICKET_MAX_FAQ
	    && store_scan_next(&sc, &key, &val) == 0) {
		Opsdesk__V1__FaqEntry *e = opsdesk__v1__faq_entry__unpack(
		    NULL, val.mv_size, val.mv_data);
		if (e == NULL) {
			rv = rpc_call_fail(
			    c, OD_EIO, "a stored FAQ entry does not decode");
			goto out;
		}
		rpc_call_keep(c, &e->base);
		l->entries[l->n_entries++] = e;
	}
	rv = 0;
out:
	store_scan_close(&sc);
	return rv;
}

static int
reply_faq(rpc_call *c, ProtobufCMessage *reply, Opsdesk__V1__FaqList *l)
{
	return rpc_call_result(c, "faq", l);
}

static int
h_faq_list(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	Opsdesk__V1__FaqList *l = rpc_call_alloc(c, sizeof(*l));
	int rv;

	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__faq_list__init(l);
	if ((rv = faq_load_all(c, l)) != 0) {
		return rv;
	}
	return reply_faq(c, reply, l);
}

static int
h_faq_search(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const char *query
	    = ((const Opsdesk__V1__FaqSearchRequest *) rpc_call_params(c))
	          ->query;
	Opsdesk__V1__FaqList all = OPSDESK__V1__FAQ_LIST__INIT;
	Opsdesk__V1__FaqList *l = rpc_call_alloc(c, sizeof(*l));
	int *score;
	int rv;

	if (query == NULL || query[0] == '\0') {
		return rpc_call_fail(c, OD_EINVAL, "query is required");
	}
	if (strlen(query) > 256) {
		return rpc_call_fail(
		    c, OD_EINVAL, "query is longer than 256 bytes");
	}
	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__faq_list__init(l);
	if ((rv = faq_load_all(c, &all)) != 0) {
		return rv;
	}
	if ((score = rpc_call_alloc(c, (all.n_entries + 1) * sizeof(int)))
	        == NULL
	    || (l->entries
	           = rpc_call_alloc(c, FAQ_SEARCH_MAX * sizeof(*l->entries)))
	        == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < all.n_entries; i++) {
		score[i] = ticket_faq_score(all.entries[i], query);
	}
	/* Best first; equal scores keep id order. */
	while (l->n_entries < FAQ_SEARCH_MAX) {
		size_t best = all.n_entries;
		for (size_t i = 0; i < all.n_entries; i++) {
			if (score[i] > 0
			    && (best == all.n_entries
			        || score[i] > score[best])) {
				best = i;
			}
		}
		if (best == all.n_entries) {
			break;
		}
		l->entries[l->n_entries++] = all.entries[best];
		score[best] = 0;
	}
	return reply_faq(c, reply, l);
}

static int
h_faq_add(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__FaqAddRequest *q = rpc_call_params(c);
	ticket_service *svc = rpc_call_arg(c);
	store_txn *txn = rpc_call_txn(c);
	Opsdesk__V1__FaqEntry *e = rpc_call_alloc(c, sizeof(*e));
	uint64_t id;
	uint8_t k[4];
	int rv;

	if (e == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__faq_entry__init(e);
	if ((rv = clean_text(
	         c, q->question, 512, "question", true, &e->question))
	        != 0
	    || (rv = clean_text(
	            c, q->answer, TICKET_MAX_TEXT, "answer", true, &e->answer))
	        != 0) {
		return rv;
	}
	if (q->n_tags > TICKET_MAX_TAGS) {
		return rpc_call_fail(c, OD_EINVAL, "at most 16 tags");
	}
	if ((e->tags = rpc_call_alloc(c, (q->n_tags + 1) * sizeof(char *)))
	    == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < q->n_tags; i++) {
		if ((rv = clean_text(
		         c, q->tags[i], 64, "tag", true, &e->tags[i]))
		    != 0) {
			return rv;
		}
	}
	e->n_tags = q->n_tags;
	if (ticket__db_entries(rpc_call_mdb(c), store_db(svc->store, TDB_FAQ))
	    >= TICKET_MAX_FAQ) {
		return rpc_call_fail(
		    c, OD_ELIMIT, "the FAQ holds at most 200 entries");
	}
	if ((rv = store_next_id(txn, "faq", &id)) != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	e->id = (uint32_t) id;
	od_put_be32(k, e->id);
	if ((rv = store_put_pb(
	         txn, store_db(svc->store, TDB_FAQ), k, sizeof(k), &e->base))
	        != 0
	    || (rv = ticket__audit(txn, svc, 0, rpc_call_actor(c), "faq_add",
	            e->question, rpc_call_request_id(c)))
	        != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	return rpc_call_result(c, "faq_entry", e);
}

static int
h_faq_remove(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	uint32_t id
	    = ((const Opsdesk__V1__FaqRemoveRequest *) rpc_call_params(c))->id;
	ticket_service *svc = rpc_call_arg(c);
	store_txn *txn = rpc_call_txn(c);
	Opsdesk__V1__FaqEntry *e = NULL;
	uint8_t k[4];
	int rv;

	od_put_be32(k, id);
	rv = store_get_pb(rpc_call_mdb(c), store_db(svc->store, TDB_FAQ), k,
	    sizeof(k), &opsdesk__v1__faq_entry__descriptor,
	    (ProtobufCMessage **) &e);
	if (rv == OD_ENOTFOUND) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "no FAQ entry %u", id);
	}
	if (rv != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	rpc_call_keep(c, &e->base);
	if ((rv = store_del(
	         txn, store_db(svc->store, TDB_FAQ), k, sizeof(k), NULL, 0))
	        != 0
	    || (rv = ticket__audit(txn, svc, 0, rpc_call_actor(c),
	            "faq_remove", e->question, rpc_call_request_id(c)))
	        != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	return rpc_call_result(c, "faq_entry", e);
}

/* ---- stats ---- */

/* Call fn for each id in [from, to) of a (be64 time | be64 id) index. */
static int
scan_range(MDB_txn *txn, MDB_dbi db, int64_t from, int64_t to,
    int (*fn)(void *arg, uint64_t id, const MDB_val *val), void *arg)
{
	store_scan sc;
	MDB_val key, val;
	uint8_t k[16];
	int rv;

	store_key_u64(k, (uint64_t) from);
	store_key_u64(k + 8, 0);
	if ((rv = store_scan_open(&sc, txn, db, NULL, 0, NULL)) != 0
	    || (rv = store_scan_seek(&sc, k, sizeof(k))) != 0) {
		store_scan_close(&sc);
		return rv;
	}
	while (store_scan_next(&sc, &key, &val) == 0 && key.mv_size == 16
	    && (int64_t) store_key_get_u64(key.mv_data) < to) {
		if ((rv = fn(arg,
		         store_key_get_u64((uint8_t *) key.mv_data + 8), &val))
		    != 0) {
			break;
		}
	}
	store_scan_close(&sc);
	return rv;
}

typedef struct stats_acc stats_acc;

struct stats_acc {
	rpc_call *call;
	Opsdesk__V1__TicketStats *st;
	int64_t *fr;
	size_t n_fr;
	size_t cap_fr;
	uint32_t met;
	uint64_t csat_sum;
	/* What stats_ticket does with each ticket of the index scanned. */
	int (*on_ticket)(stats_acc *a, const tk_ticket *t);
};

static int
stats_created(stats_acc *a, const tk_ticket *t)
{
	a->st->created++;
	if (t->first_response_ms != 0) {
		if (a->n_fr == a->cap_fr) {
			size_t cap = a->cap_fr ? a->cap_fr * 2 : 256;
			int64_t *v = realloc(a->fr, cap * sizeof(*v));
			if (v == NULL) {
				return OD_ENOMEM;
			}
			a->fr = v;
			a->cap_fr = cap;
		}
		a->fr[a->n_fr++] = t->first_response_ms - t->created_ms;
	}
	return 0;
}

static int
stats_resolved(stats_acc *a, const tk_ticket *t)
{
	a->st->resolved++;
	if (!t->first_response_breached && !t->resolution_breached) {
		a->met++;
	}
	return 0;
}

/* scan_range callback: load ticket id and hand it to a->on_ticket. */
static int
stats_ticket(void *arg, uint64_t id, const MDB_val *val)
{
	stats_acc *a = arg;
	tk_ticket *t = NULL;
	int rv;

	(void) val;
	if ((rv = ticket__load(
	         rpc_call_mdb(a->call), rpc_call_arg(a->call), id, &t))
	    != 0) {
		return rv;
	}
	rv = a->on_ticket(a, t);
	protobuf_c_message_free_unpacked(&t->base, NULL);
	return rv;
}

static int
stats_rated(void *arg, uint64_t id, const MDB_val *val)
{
	stats_acc *a = arg;

	(void) id;
	if (val->mv_size == 1) {
		a->csat_sum += *(const uint8_t *) val->mv_data;
		a->st->csat_count++;
	}
	return 0;
}

/*
 * The support objectives as of at: window_days day aggregates read, never
 * the tickets. *out is an array of TICKET_N_OBJECTIVES in c's arena.
 */
static int
objectives_at(rpc_call *c, int64_t at, Opsdesk__V1__SupportObjective ***out)
{
	ticket_service *svc = rpc_call_arg(c);
	ticket_support_day sum;
	ticket_objective_result r[TICKET_N_OBJECTIVES];
	Opsdesk__V1__SupportObjective **v;
	int rv;

	if ((rv = ticket__support_window(rpc_call_mdb(c), svc, at, &sum))
	    != 0) {
		return rv;
	}
	ticket_objectives_eval(&svc->policy.objectives, &sum, r);
	v = rpc_call_alloc(c, TICKET_N_OBJECTIVES * sizeof(*v));
	if (v == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < TICKET_N_OBJECTIVES; i++) {
		Opsdesk__V1__SupportObjective *o
		    = rpc_call_alloc(c, sizeof(*o));
		if (o == NULL) {
			return OD_ENOMEM;
		}
		opsdesk__v1__support_objective__init(o);
		o->name = (char *) r[i].name;
		o->target = r[i].target;
		o->actual = r[i].actual;
		o->good = r[i].good;
		o->total = r[i].total;
		o->attainment_ratio = r[i].attainment_ratio;
		o->target_ratio = r[i].target_ratio;
		o->error_budget_remaining_ratio = r[i].budget_remaining_ratio;
		o->met = r[i].met;
		o->window_days = (uint32_t) svc->policy.objectives.window_days;
		v[i] = o;
	}
	*out = v;
	return 0;
}

static int
h_objectives(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__SupportObjectivesRequest *q = rpc_call_params(c);
	Opsdesk__V1__SupportObjectives *so = rpc_call_alloc(c, sizeof(*so));
	int64_t at = q->at_ms != 0 ? q->at_ms : rpc_call_now_ms(c);
	int rv;

	if (so == NULL) {
		return OD_ENOMEM;
	}
	if (at < 0) {
		return rpc_call_fail(
		    c, OD_EINVAL, "at_ms must not be negative");
	}
	opsdesk__v1__support_objectives__init(so);
	so->at_ms = at;
	if ((rv = objectives_at(c, at, &so->objectives)) != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	so->n_objectives = TICKET_N_OBJECTIVES;
	return rpc_call_result(c, "objectives", so);
}

static int
h_stats(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__V1__StatsRequest *q = rpc_call_params(c);
	ticket_service *svc = rpc_call_arg(c);
	MDB_txn *txn = rpc_call_mdb(c);
	stats_acc a = { .call = c };
	int64_t to = q->to_ms != 0 ? q->to_ms : rpc_call_now_ms(c);
	int64_t from = q->from_ms != 0 ? q->from_ms : to - 30 * 24 * HOUR_MS;
	int rv;

	if (from < 0 || to <= from) {
		return rpc_call_fail(
		    c, OD_EINVAL, "from_ms must be before to_ms");
	}
	if ((a.st = rpc_call_alloc(c, sizeof(*a.st))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__ticket_stats__init(a.st);
	a.st->from_ms = from;
	a.st->to_ms = to;
	a.on_ticket = stats_created;
	if ((rv = scan_range(txn, store_db(svc->store, TDB_CREATED_AT), from,
	         to, stats_ticket, &a))
	    == 0) {
		a.on_ticket = stats_resolved;
		rv = scan_range(txn, store_db(svc->store, TDB_RESOLVED_AT),
		    from, to, stats_ticket, &a);
	}
	if (rv == 0) {
		rv = scan_range(txn, store_db(svc->store, TDB_RATED_AT), from,
		    to, stats_rated, &a);
	}
	if (rv != 0) {
		free(a.fr);
		return rpc_call_fail(c, rv, NULL);
	}
	a.st->first_response_p50_ms = ticket_percentile(a.fr, a.n_fr, 50);
	a.st->first_response_p90_ms = ticket_percentile(a.fr, a.n_fr, 90);
	free(a.fr);
	a.st->sla_percent
	    = a.st->resolved != 0 ? 100.0 * a.met / a.st->resolved : -1;
	a.st->csat_average = a.st->csat_count != 0
	    ? (double) a.csat_sum / a.st->csat_count
	    : 0;
	a.st->open_now = (uint32_t) ticket__open_count(txn, svc);
	a.st->breached_now = (uint32_t) ticket__db_entries(
	    txn, store_db(svc->store, TDB_BREACHED));
	if ((rv = objectives_at(c, to, &a.st->objectives)) != 0) {
		return rpc_call_fail(c, rv, NULL);
	}
	a.st->n_objectives = TICKET_N_OBJECTIVES;
	return rpc_call_result(c, "stats", a.st);
}

/* ---- audit ---- */

static int
h_audit(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	ticket_service *svc = rpc_call_arg(c);
	const Opsdesk__V1__AuditRequest *q = rpc_call_params(c);
	Opsdesk__V1__AuditList *l = rpc_call_alloc(c, sizeof(*l));
	uint32_t limit = page_limit(q->page);
	store_scan sc;
	MDB_val key, val;
	char next[STORE_PAGE_CURSOR_MAX];
	uint8_t k[8];
	int rv;

	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__audit_list__init(l);
	l->entries = rpc_call_alloc(c, limit * sizeof(*l->entries));
	if (l->entries == NULL) {
		return OD_ENOMEM;
	}
	/* The ticket's entries: (ticket id, seq) keys. */
	store_key_u64(k, q->ticket_id);
	if ((rv = store_scan_open(&sc, rpc_call_mdb(c),
	         store_db(svc->store, TDB_AUDIT), k, sizeof(k),
	         page_cursor(q->page)))
	    != 0) {
		return rpc_call_fail(c, rv,
		    rv == OD_EINVAL
		        ? "page.cursor is not one this service gave"
		        : NULL);
	}
	while ((rv = store_scan_next(&sc, &key, &val)) == 0) {
		Opsdesk__V1__AuditEntry *e;
		if (key.mv_size != 16) {
			continue;
		}
		if (l->n_entries == limit) {
			store_scan_page_cursor(&sc, next, sizeof(next));
			l->next_cursor = rpc_call_strdup(c, next);
			break;
		}
		e = opsdesk__v1__audit_entry__unpack(
		    NULL, val.mv_size, val.mv_data);
		if (e == NULL) {
			rv = rpc_call_fail(
			    c, OD_EIO, "a stored audit entry does not decode");
			goto out;
		}
		rpc_call_keep(c, &e->base);
		l->entries[l->n_entries++] = e;
	}
	rv = rv == 0 || rv == OD_ENOTFOUND ? rpc_call_result(c, "audit", l)
	                                   : rpc_call_fail(c, rv, NULL);
out:
	store_scan_close(&sc);
	return rv;
}

/* Who may call what: admin_only is enforced by the rpc server; ticket
 * ownership by load_for in each handler. */
const rpc_method ticket_methods[] = {
	{ "create", RPC_WRITE, false, h_create },
	{ "get", RPC_READ, false, h_get },
	{ "list_mine", RPC_READ, false, h_list_mine },
	{ "queue", RPC_READ, true, h_queue },
	{ "reply", RPC_WRITE, true, h_reply },
	{ "note", RPC_WRITE, true, h_note },
	{ "user_message", RPC_WRITE, false, h_user_message },
	{ "assign", RPC_WRITE, true, h_assign },
	{ "set_priority", RPC_WRITE, true, h_set_priority },
	{ "set_status", RPC_WRITE, true, h_set_status },
	{ "rate", RPC_WRITE, false, h_rate },
	{ "set_tier", RPC_WRITE, true, h_set_tier },
	{ "get_tier", RPC_READ, false, h_get_tier },
	{ "faq_list", RPC_READ, false, h_faq_list },
	{ "faq_search", RPC_READ, false, h_faq_search },
	{ "faq_add", RPC_WRITE, true, h_faq_add },
	{ "faq_remove", RPC_WRITE, true, h_faq_remove },
	{ "stats", RPC_READ, true, h_stats },
	{ "snapshot", RPC_READ, true, h_snapshot },
	{ "audit", RPC_READ, true, h_audit },
	{ "objectives", RPC_READ, true, h_objectives },
};
const size_t ticket_n_methods
    = sizeof(ticket_methods) / sizeof(ticket_methods[0]);
