/*
 * Units for the ticket service as a whole, in one process: a real store
 * in a temp dir, the rpc server on inproc, a bus publisher dialing a SUB
 * socket this test listens on, and an injected clock, so SLA breaches,
 * pauses and hourly limits are checked without sleeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bus/bus.h"
#include "metrics/metrics.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "ticket.h"
#include "util/util.h"

#define MIN  (60 * 1000LL)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define T0   1800000000000LL

#define CODE(x)  OPSDESK__V1__ERROR_CODE__ERROR_CODE_##x
#define RES(x)   OPSDESK__V1__TICKET_REPLY__RESULT_##x
#define OPEN     OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
#define PENDING  OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING
#define RESOLVED OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_RESOLVED
#define CLOSED   OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED

typedef Opsdesk__V1__TicketReply reply_t;

static int64_t fake_now = T0;

static int64_t
fake_clock(void *arg)
{
	(void) arg;
	return fake_now;
}

typedef struct fixture {
	char dir[64];
	store *st;
	bus_publisher *pub;
	metrics *m;
	rpc_server *srv;
	rpc_client *cli;
	nng_socket sub;
	ticket_service svc;
	char url[64];
} fixture;

static int fixture_seq;

static const char faq_json[]
    = "[{\"question\":\"How do I reset my password?\","
      "\"answer\":\"Use Forgot password on the login page.\","
      "\"tags\":[\"login\",\"account\"]},"
      "{\"question\":\"Which payment methods do you accept?\","
      "\"answer\":\"Cards and bank transfer.\",\"tags\":[\"billing\"]}]";

/* A new temp dir for the fixture's store (f->dir: <tmp>/s). */
static int
fixture_dir(fixture *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/ticket_test.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		return -1;
	}
	strcat(f->dir, "/s");
	return 0;
}

/* Open the store in f->dir (made by fixture_dir; it may hold an older
 * schema's store) and start the service on it. */
static int
fixture_start(fixture *f, const ticket_policy *pol)
{
	store_options so = { 0 };
	rpc_server_options ro = { 0 };
	char bus_url[64];
	cJSON *faq = cJSON_Parse(faq_json);
	int rv;

	fixture_seq++;
	snprintf(bus_url, sizeof(bus_url), "inproc://tk-bus-%d-%d",
	    (int) getpid(), fixture_seq);
	snprintf(f->url, sizeof(f->url), "inproc://tk-rpc-%d-%d",
	    (int) getpid(), fixture_seq);
	so.path = f->dir;
	so.dbs = ticket_db_names;
	so.schema_version = TICKET_SCHEMA_VERSION;
	so.migrate = ticket_store_migrate;
	if ((rv = nng_sub0_open(&f->sub)) != 0
	    || (rv = nng_socket_set(f->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0
	    || (rv = nng_socket_set_ms(f->sub, NNG_OPT_RECVTIMEO, 2000)) != 0
	    || (rv = nng_listen(f->sub, bus_url, NULL, 0)) != 0) {
		return rv;
	}
	if ((rv = metrics_new(&f->m)) != 0
	    || (rv = store_open(&f->st, &so)) != 0
	    || (rv = bus_publisher_open(
	            &f->pub, bus_url, TICKET_SERVICE, "test", f->m))
	        != 0
	    || (rv = ticket_service_init(
	            &f->svc, pol, f->st, f->pub, f->m, faq))
	        != 0) {
		cJSON_Delete(faq);
		return rv;
	}
	cJSON_Delete(faq);
	f->svc.faq_seed = NULL;
	rpc_server_options_init(&ro, f->url,
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor, ticket_methods,
	    ticket_n_methods, &f->svc);
	ro.store = f->st;
	ro.publisher = f->pub;
	ro.metrics = f->m;
	ro.service = TICKET_SERVICE;
	ro.instance = "test";
	ro.contexts = 8;
	ro.workers = 2;
	if ((rv = rpc_server_start(&f->srv, &ro)) != 0
	    || (rv = rpc_client_open(&f->cli, f->url, 5000)) != 0) {
		return rv;
	}
	/* Readiness, not timing: events sent before the pipe is up would be
	 * dropped, and so would a call before the client connected. */
	for (int i = 0; i < 500
	     && (!bus_publisher_connected(f->pub)
	         || !rpc_client_connected(f->cli));
	     i++) {
		usleep(10000);
	}
	return bus_publisher_connected(f->pub) && rpc_client_connected(f->cli)
	    ? 0
	    : -1;
}

static int
fixture_open(fixture *f, const ticket_policy *pol)
{
	return fixture_dir(f) == 0 ? fixture_start(f, pol) : -1;
}

static void
fixture_close(fixture *f)
{
	char cmd[128];

	rpc_client_close(f->cli);
	rpc_server_stop(f->srv);
	ticket_service_fini(&f->svc);
	/* The store's completion thread may still fire publish-on-commit
	 * hooks (a reply goes out before them): it stops first, then the
	 * publisher those hooks use. */
	store_close(f->st);
	bus_publisher_close(f->pub);
	metrics_free(f->m);
	nng_close(f->sub);
	f->dir[strlen(f->dir) - 2] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", f->dir);
	}
}

static int
setup_with(void **state, const ticket_policy *pol)
{
	fixture *f = calloc(1, sizeof(*f));

	fake_now = T0;
	od_clock_set(fake_clock, NULL);
	if (f == NULL || fixture_open(f, pol) != 0) {
		return -1;
	}
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	ticket_policy pol;

	ticket_policy_defaults(&pol);
	return setup_with(state, &pol);
}

static int
setup_no_limits(void **state)
{
	ticket_policy pol;

	ticket_policy_defaults(&pol);
	pol.open_per_user = 0;
	pol.creations_per_hour = 0;
	return setup_with(state, &pol);
}

static int
teardown(void **state)
{
	fixture_close(*state);
	free(*state);
	od_clock_set(NULL, NULL);
	return 0;
}

/* ---- calling ---- */

static Opsdesk__V1__Actor
user(int64_t id)
{
	Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;

	a.user_id = id;
	a.chat_id = id;
	a.name = "user";
	return a;
}

static Opsdesk__V1__Actor
admin(void)
{
	Opsdesk__V1__Actor a = user(9000);

	a.is_admin = true;
	a.name = "Ada";
	return a;
}

/* Call method with msg as actor; the reply is freed by the caller. */
static reply_t *
call_id(fixture *f, const char *request_id, Opsdesk__V1__Actor *actor,
    const char *method, ProtobufCMessage *msg)
{
	Opsdesk__V1__TicketRequest req = OPSDESK__V1__TICKET_REQUEST__INIT;
	reply_t *r = NULL;

	req.request_id = (char *) (request_id != NULL ? request_id : "");
	req.actor = actor;
	assert_int_equal(rpc_request_set_method(&req.base, method, msg), 0);
	assert_int_equal(rpc_client_call(f->cli, &req.base,
	                     &opsdesk__v1__ticket_reply__descriptor,
	                     (ProtobufCMessage **) &r, 0),
	    0);
	return r;
}

static reply_t *
call(fixture *f, Opsdesk__V1__Actor *actor, const char *method,
    ProtobufCMessage *msg)
{
	return call_id(f, NULL, actor, method, msg);
}

static int
err_code(const reply_t *r)
{
	return r->error != NULL ? (int) r->error->code : 0;
}

static void
expect_error(reply_t *r, int code)
{
	if (err_code(r) != code) {
		fprintf(stderr, "expected %s, got %s: %s\n",
		    rpc_error_code_name(code),
		    rpc_error_code_name(err_code(r)),
		    r->error != NULL ? r->error->message : "(ok)");
	}
	assert_int_equal(err_code(r), code);
	assert_int_equal(r->result_case, RES(_NOT_SET));
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static uint64_t
create(fixture *f, int64_t uid, const char *text)
{
	Opsdesk__V1__Actor a = user(uid);
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	reply_t *r;
	uint64_t id;

	c.text = (char *) text;
	r = call(f, &a, "create", &c.base);
	if (err_code(r) != 0) {
		fprintf(stderr, "create: %s\n", r->error->message);
	}
	assert_int_equal(err_code(r), 0);
	assert_int_equal(r->result_case, RES(CREATED));
	id = r->created->ticket->id;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return id;
}

static reply_t *
text_call(fixture *f, Opsdesk__V1__Actor *a, const char *method, uint64_t id,
    const char *text)
{
	Opsdesk__V1__TicketTextRequest t
	    = OPSDESK__V1__TICKET_TEXT_REQUEST__INIT;

	t.id = id;
	t.text = (char *) text;
	return call(f, a, method, &t.base);
}

static reply_t *
status_call(fixture *f, Opsdesk__V1__Actor *a, uint64_t id, int status)
{
	Opsdesk__V1__SetStatusRequest s
	    = OPSDESK__V1__SET_STATUS_REQUEST__INIT;

	s.id = id;
	s.status = status;
	return call(f, a, "set_status", &s.base);
}

static reply_t *
get_call(fixture *f, Opsdesk__V1__Actor *a, uint64_t id)
{
	Opsdesk__V1__TicketId t = OPSDESK__V1__TICKET_ID__INIT;

	t.id = id;
	return call(f, a, "get", &t.base);
}

static void
ok(reply_t *r)
{
	if (err_code(r) != 0) {
		fprintf(stderr, "unexpected error: %s\n", r->error->message);
	}
	assert_int_equal(err_code(r), 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Receive events until one with topic arrives (or the 2 s receive
 * time-out); count how many had that topic on the way. */
static int
drain_events(fixture *f, const char *topic)
{
	int n = 0;

	for (;;) {
		nng_msg *msg;
		const char *t;
		size_t tl, bl;
		const uint8_t *body;
		nng_socket_set_ms(f->sub, NNG_OPT_RECVTIMEO, 300);
		if (nng_recvmsg(f->sub, &msg, 0) != 0) {
			return n;
		}
		if (bus_frame_split(nng_msg_body(msg), nng_msg_len(msg), &t,
		        &tl, &body, &bl)
		        == 0
		    && tl == strlen(topic) && memcmp(t, topic, tl) == 0) {
			n++;
		}
		nng_msg_free(msg);
	}
}

/* ---- tests ---- */

static void
test_lifecycle(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100), ad = admin();
	Opsdesk__V1__ListTicketsRequest l
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__RateRequest rate = OPSDESK__V1__RATE_REQUEST__INIT;
	reply_t *r;
	uint64_t id;

	id = create(f, 100, "Login fails\nsince this morning");
	r = get_call(f, &u, id);
	assert_int_equal(err_code(r), 0);
	assert_string_equal(r->ticket->subject, "Login fails");
	assert_int_equal(r->ticket->status, OPEN);
	assert_int_equal(r->ticket->n_messages, 1);
	assert_int_equal(r->ticket->tier, OPSDESK__V1__TIER__TIER_FREE);
	assert_int_equal(r->ticket->first_response_due_ms, T0 + DAY);
	ok(r);

	r = call(f, &u, "list_mine", &l.base);
	assert_int_equal(r->tickets->n_tickets, 1);
	assert_int_equal(r->tickets->tickets[0]->id, id);
	ok(r);

	fake_now += 30 * MIN;
	ok(text_call(f, &ad, "reply", id, "Try resetting your password"));
	ok(text_call(f, &ad, "note", id, "internal: user on old app"));
	r = get_call(f, &u, id);
	/* The owner does not see the internal note. */
	assert_int_equal(r->ticket->n_messages, 2);
	assert_int_equal(r->ticket->first_response_ms, T0 + 30 * MIN);
	assert_int_equal(r->ticket->message_count, 3);
	ok(r);
	r = get_call(f, &ad, id);
	assert_int_equal(r->ticket->n_messages, 3);
	assert_int_equal(r->ticket->messages[2]->kind,
	    OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE);
	ok(r);

	rate.id = id;
	rate.rating = 5;
	/* Not before it is resolved. */
	expect_error(
	    call(f, &u, "rate", &rate.base), CODE(FAILED_PRECONDITION));
	fake_now += HOUR;
	ok(status_call(f, &ad, id, RESOLVED));
	rate.comment = "quick, thanks";
	ok(call(f, &u, "rate", &rate.base));
	/* Once. */
	expect_error(
	    call(f, &u, "rate", &rate.base), CODE(FAILED_PRECONDITION));
	r = get_call(f, &u, id);
	assert_int_equal(r->ticket->status, RESOLVED);
	assert_int_equal(r->ticket->rating, 5);
	assert_string_equal(r->ticket->rating_comment, "quick, thanks");
	ok(r);

	/* A message by the owner reopens it; closing makes it terminal. */
	ok(text_call(f, &u, "user_message", id, "it broke again"));
	r = get_call(f, &u, id);
	assert_int_equal(r->ticket->status, OPEN);
	ok(r);
	ok(status_call(f, &ad, id, CLOSED));
	expect_error(text_call(f, &u, "user_message", id, "hello?"),
	    CODE(FAILED_PRECONDITION));
	expect_error(status_call(f, &ad, id, OPEN), CODE(FAILED_PRECONDITION));
}

static void
test_other_user_cannot_touch(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor owner = user(100), other = user(200);
	Opsdesk__V1__RateRequest rate = OPSDESK__V1__RATE_REQUEST__INIT;
	Opsdesk__V1__AssignRequest as = OPSDESK__V1__ASSIGN_REQUEST__INIT;
	Opsdesk__V1__SetPriorityRequest sp
	    = OPSDESK__V1__SET_PRIORITY_REQUEST__INIT;
	Opsdesk__V1__ListTicketsRequest l
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__GetTierRequest gt = OPSDESK__V1__GET_TIER_REQUEST__INIT;
	Opsdesk__V1__AuditRequest au = OPSDESK__V1__AUDIT_REQUEST__INIT;
	reply_t *r;
	uint64_t id = create(f, 100, "private problem");

	/* Reads and owner acts: NOT_FOUND, the same as a missing ticket. */
	expect_error(get_call(f, &other, id), CODE(NOT_FOUND));
	expect_error(get_call(f, &other, id + 1000), CODE(NOT_FOUND));
	expect_error(
	    text_call(f, &other, "user_message", id, "hi"), CODE(NOT_FOUND));
	rate.id = id;
	rate.rating = 1;
	expect_error(call(f, &other, "rate", &rate.base), CODE(NOT_FOUND));
	/* Staff acts: refused for every non-admin, whatever the id. */
	expect_error(
	    text_call(f, &other, "reply", id, "x"), CODE(PERMISSION_DENIED));
	expect_error(
	    text_call(f, &other, "note", id, "x"), CODE(PERMISSION_DENIED));
	expect_error(
	    status_call(f, &other, id, CLOSED), CODE(PERMISSION_DENIED));
	as.id = id;
	as.assignee_id = 200;
	expect_error(
	    call(f, &other, "assign", &as.base), CODE(PERMISSION_DENIED));
	sp.id = id;
	sp.priority = OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_URGENT;
	expect_error(call(f, &other, "set_priority", &sp.base),
	    CODE(PERMISSION_DENIED));
	au.ticket_id = id;
	expect_error(
	    call(f, &other, "audit", &au.base), CODE(PERMISSION_DENIED));
	/* The owner is not staff either. */
	expect_error(
	    status_call(f, &owner, id, RESOLVED), CODE(PERMISSION_DENIED));
	/* Lists: another user's are refused; one's own shows nothing. */
	l.user_id = 100;
	expect_error(
	    call(f, &other, "list_mine", &l.base), CODE(PERMISSION_DENIED));
	l.user_id = 0;
	r = call(f, &other, "list_mine", &l.base);
	assert_int_equal(err_code(r), 0);
	assert_int_equal(r->tickets->n_tickets, 0);
	ok(r);
	gt.user_id = 100;
	expect_error(
	    call(f, &other, "get_tier", &gt.base), CODE(PERMISSION_DENIED));

	/* Nothing changed. */
	r = get_call(f, &owner, id);
	assert_int_equal(r->ticket->status, OPEN);
	assert_int_equal(r->ticket->message_count, 1);
	assert_int_equal(r->ticket->assignee_id, 0);
	assert_int_equal(r->ticket->priority,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL);
	assert_int_equal(r->ticket->rating, 0);
	ok(r);
}

static void
test_limits(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100), ad = admin();
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	uint64_t ids[3];
	reply_t *r;

	c.text = "one more";
	for (int i = 0; i < 3; i++) {
		ids[i] = create(f, 100, "problem");
	}
	r = call(f, &u, "create", &c.base);
	assert_int_equal(err_code(r), CODE(RESOURCE_EXHAUSTED));
	assert_non_null(strstr(r->error->message, "open tickets"));
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* Resolving one frees a slot; 5 creations an hour is next. */
	ok(status_call(f, &ad, ids[0], RESOLVED));
	ok(status_call(f, &ad, ids[1], CLOSED));
	ok(status_call(f, &ad, ids[2], CLOSED));
	create(f, 100, "fourth");
	create(f, 100, "fifth");
	fake_now += 10 * MIN;
	r = call(f, &u, "create", &c.base);
	assert_int_equal(err_code(r), CODE(RESOURCE_EXHAUSTED));
	assert_non_null(strstr(r->error->message, "last hour"));
	assert_non_null(strstr(r->error->message, "50 min"));
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* Another user is not affected; an hour later this one is free. */
	create(f, 101, "someone else");
	fake_now += 51 * MIN;
	create(f, 100, "an hour later");
}

static void
test_idempotent_create(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100);
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__ListTicketsRequest l
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	reply_t *a, *b, *r;

	c.text = "only once";
	a = call_id(f, "req-123", &u, "create", &c.base);
	b = call_id(f, "req-123", &u, "create", &c.base);
	assert_int_equal(err_code(a), 0);
	assert_int_equal(err_code(b), 0);
	assert_int_equal(a->created->ticket->id, b->created->ticket->id);
	ok(a);
	ok(b);
	r = call(f, &u, "list_mine", &l.base);
	assert_int_equal(r->tickets->n_tickets, 1);
	assert_int_equal(r->tickets->total, 1);
	ok(r);
	/* One ticket.created went out. */
	assert_int_equal(drain_events(f, "ticket.created"), 1);
}

static void
test_breach_once_and_pause(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor ad = admin();
	Opsdesk__V1__SetTierRequest st = OPSDESK__V1__SET_TIER_REQUEST__INIT;
	Opsdesk__V1__QueueRequest q = OPSDESK__V1__QUEUE_REQUEST__INIT;
	reply_t *r;
	uint64_t a, b;

	st.user_id = 100;
	st.tier = OPSDESK__V1__TIER__TIER_ULTRA;
	ok(call(f, &ad, "set_tier", &st.base));
	a = create(f, 100, "ultra customer, urgent");
	b = create(f, 100, "waiting on me");
	ok(status_call(f, &ad, b, PENDING));
	(void) drain_events(f, "none");

	/* 59 min: nothing. 61 min: a's first response, once. b is paused. */
	fake_now += 59 * MIN;
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	fake_now += 2 * MIN;
	assert_int_equal(ticket_breach_scan(&f->svc), 1);
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	assert_int_equal(drain_events(f, "ticket.sla_breached"), 1);
	r = get_call(f, &ad, a);
	assert_true(r->ticket->first_response_breached);
	assert_false(r->ticket->resolution_breached);
	assert_int_equal(r->ticket->tier, OPSDESK__V1__TIER__TIER_ULTRA);
	ok(r);
	r = get_call(f, &ad, b);
	assert_false(r->ticket->first_response_breached);
	ok(r);
	/* The queue: open tickets by due time, b (paused) with its own. */
	r = call(f, &ad, "queue", &q.base);
	assert_int_equal(r->tickets->n_tickets, 2);
	assert_int_equal(r->tickets->total, 2);
	ok(r);
	/* b back to open after 2 h pending: due moved out by 2 h. */
	fake_now += 59 * MIN;
	ok(status_call(f, &ad, b, OPEN));
	r = get_call(f, &ad, b);
	assert_int_equal(
	    r->ticket->first_response_due_ms, T0 + HOUR + 2 * HOUR);
	ok(r);
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	fake_now = T0 + 3 * HOUR;
	assert_int_equal(ticket_breach_scan(&f->svc), 1);
	/* a's resolution (1 day for ultra normal) and b's: two more, once. */
	fake_now = T0 + 3 * DAY;
	assert_int_equal(ticket_breach_scan(&f->svc), 2);
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	assert_true(metric_value(f->svc.m_breaches) >= 4);
}

static void
test_faq(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100), ad = admin();
	Opsdesk__V1__FaqListRequest fl = OPSDESK__V1__FAQ_LIST_REQUEST__INIT;
	Opsdesk__V1__FaqSearchRequest fs
	    = OPSDESK__V1__FAQ_SEARCH_REQUEST__INIT;
	Opsdesk__V1__FaqAddRequest fa = OPSDESK__V1__FAQ_ADD_REQUEST__INIT;
	Opsdesk__V1__FaqRemoveRequest fr
	    = OPSDESK__V1__FAQ_REMOVE_REQUEST__INIT;
	char *tags[] = { "refund" };
	reply_t *r;
	uint32_t id;

	r = call(f, &u, "faq_list", &fl.base);
	assert_int_equal(r->faq->n_entries, 2);
	ok(r);
	fs.query = "password";
	r = call(f, &u, "faq_search", &fs.base);
	assert_int_equal(r->faq->n_entries, 1);
	assert_non_null(strstr(r->faq->entries[0]->question, "password"));
	ok(r);
	fs.query = "";
	expect_error(
	    call(f, &u, "faq_search", &fs.base), CODE(INVALID_ARGUMENT));

	fa.question = "Can I get a refund?";
	fa.answer = "Within 14 days.";
	fa.tags = tags;
	fa.n_tags = 1;
	expect_error(
	    call(f, &u, "faq_add", &fa.base), CODE(PERMISSION_DENIED));
	r = call(f, &ad, "faq_add", &fa.base);
	assert_int_equal(err_code(r), 0);
	id = r->faq_entry->id;
	ok(r);
	fs.query = "refund billing";
	r = call(f, &u, "faq_search", &fs.base);
	assert_int_equal(r->faq->n_entries, 2);
	/* The question match ranks first. */
	assert_int_equal(r->faq->entries[0]->id, id);
	ok(r);
	fa.answer = "";
	expect_error(
	    call(f, &ad, "faq_add", &fa.base), CODE(INVALID_ARGUMENT));
	fr.id = id;
	ok(call(f, &ad, "faq_remove", &fr.base));
	expect_error(call(f, &ad, "faq_remove", &fr.base), CODE(NOT_FOUND));
	r = call(f, &u, "faq_list", &fl.base);
	assert_int_equal(r->faq->n_entries, 2);
	ok(r);
}

static void
test_stats(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor ad = admin(), u1 = user(1), u2 = user(2);
	Opsdesk__V1__StatsRequest s = OPSDESK__V1__STATS_REQUEST__INIT;
	Opsdesk__V1__RateRequest rate = OPSDESK__V1__RATE_REQUEST__INIT;
	reply_t *r;
	uint64_t a = create(f, 1, "a");
	uint64_t b = create(f, 2, "b");
	uint64_t c = create(f, 3, "c");

	(void) c;
	fake_now += 10 * MIN;
	ok(text_call(f, &ad, "reply", a, "hi"));
	fake_now += 20 * MIN;
	ok(text_call(f, &ad, "reply", b, "hi"));
	ok(status_call(f, &ad, a, RESOLVED));
	ok(status_call(f, &ad, b, RESOLVED));
	rate.id = a;
	rate.rating = 5;
	ok(call(f, &u1, "rate", &rate.base));
	rate.id = b;
	rate.rating = 2;
	ok(call(f, &u2, "rate", &rate.base));

	s.from_ms = T0 - HOUR;
	s.to_ms = T0 + DAY;
	r = call(f, &ad, "stats", &s.base);
	assert_int_equal(err_code(r), 0);
	assert_int_equal(r->stats->created, 3);
	assert_int_equal(r->stats->resolved, 2);
	assert_int_equal(r->stats->first_response_p50_ms, 10 * MIN);
	assert_int_equal(r->stats->first_response_p90_ms, 30 * MIN);
	assert_true(r->stats->sla_percent > 99.9);
	assert_int_equal(r->stats->csat_count, 2);
	assert_true(
	    r->stats->csat_average > 3.49 && r->stats->csat_average < 3.51);
	assert_int_equal(r->stats->open_now, 1);
	ok(r);
	/* A window before everything: empty, no data markers. */
	s.from_ms = T0 - 2 * HOUR;
	s.to_ms = T0 - HOUR;
	r = call(f, &ad, "stats", &s.base);
	assert_int_equal(r->stats->created, 0);
	assert_int_equal(r->stats->first_response_p50_ms, -1);
	assert_true(r->stats->sla_percent < 0);
	ok(r);
	s.from_ms = T0;
	s.to_ms = T0 - 1;
	expect_error(call(f, &ad, "stats", &s.base), CODE(INVALID_ARGUMENT));
	expect_error(call(f, &u1, "stats", &s.base), CODE(PERMISSION_DENIED));
}

static const Opsdesk__V1__SupportObjective *
objective(const reply_t *r, const char *name)
{
	for (size_t i = 0; i < r->objectives->n_objectives; i++) {
		if (strcmp(r->objectives->objectives[i]->name, name) == 0) {
			return r->objectives->objectives[i];
		}
	}
	fail_msg("no objective %s", name);
	return NULL;
}

/* The support objectives come from the day aggregates: a reply in time
 * and a breach count once each, ratings average, the gauges follow, and
 * a day falls out of the window as the clock rolls past it. */
static void
test_support_objectives(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor ad = admin(), u1 = user(1), u2 = user(2);
	Opsdesk__V1__SupportObjectivesRequest q
	    = OPSDESK__V1__SUPPORT_OBJECTIVES_REQUEST__INIT;
	Opsdesk__V1__RateRequest rate = OPSDESK__V1__RATE_REQUEST__INIT;
	const Opsdesk__V1__SupportObjective *fr, *cs;
	reply_t *r;
	uint64_t a = create(f, 1, "a");
	uint64_t b = create(f, 2, "b");

	/* Nothing concluded yet: no data, met. */
	r = call(f, &ad, "objectives", &q.base);
	assert_int_equal(err_code(r), 0);
	fr = objective(r, "support_first_response");
	assert_int_equal(fr->total, 0);
	assert_true(fr->actual < 0 && fr->met);
	assert_int_equal(fr->window_days, 30);
	ok(r);

	fake_now += 10 * MIN;
	ok(text_call(f, &ad, "reply", a, "hi"));
	ok(text_call(f, &ad, "reply", a, "again")); /* counted once */
	/* b (free tier, normal: 24 h) is never answered: breached. */
	fake_now += 25 * HOUR;
	assert_int_equal(ticket_breach_scan(&f->svc), 1);
	ok(text_call(f, &ad, "reply", b, "sorry, late")); /* still once */
	ok(status_call(f, &ad, a, RESOLVED));
	ok(status_call(f, &ad, b, RESOLVED));
	rate.id = a;
	rate.rating = 5;
	ok(call(f, &u1, "rate", &rate.base));
	rate.id = b;
	rate.rating = 2;
	ok(call(f, &u2, "rate", &rate.base));

	r = call(f, &ad, "objectives", &q.base);
	assert_int_equal(err_code(r), 0);
	fr = objective(r, "support_first_response");
	cs = objective(r, "support_csat");
	assert_int_equal(fr->good, 1);
	assert_int_equal(fr->total, 2);
	assert_true(fr->actual > 49.9 && fr->actual < 50.1);
	assert_false(fr->met);
	assert_true(fr->target == 95);
	assert_true(fr->error_budget_remaining_ratio < 0);
	assert_int_equal(cs->total, 2);
	assert_true(cs->actual == 3.5);
	assert_false(cs->met);
	ok(r);

	/* The stats carry them too (the report's ticket part). */
	Opsdesk__V1__StatsRequest s = OPSDESK__V1__STATS_REQUEST__INIT;
	r = call(f, &ad, "stats", &s.base);
	assert_int_equal(err_code(r), 0);
	assert_int_equal(r->stats->n_objectives, 2);
	ok(r);

	/* The breach timer sets the gauges. */
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	assert_true(
	    metric_value(metrics_gauge(f->m, "opsdesk_slo_attainment_ratio",
	        "", "objective=\"support_first_response\""))
	    == 0.5);
	assert_true(metric_value(metrics_gauge(f->m, "opsdesk_slo_met", "",
	                "objective=\"support_csat\""))
	    == 0);
	assert_true(metric_value(metrics_gauge(f->m, "opsdesk_slo_events", "",
	                "objective=\"support_csat\""))
	    == 2);

	/* at_ms in the past: the window ending on the first day holds the
	 * reply in time only. */
	q.at_ms = T0 + HOUR;
	r = call(f, &ad, "objectives", &q.base);
	fr = objective(r, "support_first_response");
	assert_int_equal(fr->total, 1);
	assert_true(fr->met);
	ok(r);
	/* 31 days on, everything has left the 30-day window. */
	q.at_ms = 0;
	fake_now += 31 * DAY;
	r = call(f, &ad, "objectives", &q.base);
	fr = objective(r, "support_first_response");
	cs = objective(r, "support_csat");
	assert_int_equal(fr->total, 0);
	assert_int_equal(cs->total, 0);
	assert_true(fr->met && cs->met);
	ok(r);
	expect_error(
	    call(f, &u1, "objectives", &q.base), CODE(PERMISSION_DENIED));
	q.at_ms = -5;
	expect_error(
	    call(f, &ad, "objectives", &q.base), CODE(INVALID_ARGUMENT));
}

static void
test_incident_link_and_notify(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100);
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__Incident inc = OPSDESK__V1__INCIDENT__INIT;
	Opsdesk__V1__Incident *active[] = { &inc };
	reply_t *r;
	uint64_t before = create(f, 100, "before the incident");

	inc.id = 7;
	inc.title = "Database down";
	inc.public_ = true;
	inc.severity = OPSDESK__V1__SEVERITY__SEVERITY_CRITICAL;
	inc.status
	    = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING;
	assert_int_equal(ticket_incidents_sync(&f->svc, active, 1), 0);
	c.text = "site is down";
	r = call(f, &u, "create", &c.base);
	assert_int_equal(err_code(r), 0);
	assert_non_null(r->created->active_incident);
	assert_int_equal(r->created->active_incident->id, 7);
	assert_int_equal(r->created->ticket->incident_id, 7);
	ok(r);
	r = get_call(f, &u, before);
	assert_int_equal(r->ticket->incident_id, 0);
	ok(r);
	(void) drain_events(f, "none");

	/* Resolved: one notify for the linked ticket; a repeat, none. */
	inc.status = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED;
	assert_int_equal(ticket_incident_resolved(&f->svc, &inc), 0);
	assert_int_equal(drain_events(f, "ticket.notify"), 1);
	assert_int_equal(ticket_incident_resolved(&f->svc, &inc), 0);
	assert_int_equal(drain_events(f, "ticket.notify"), 0);
	assert_null(ticket_incidents_current(f->svc.incidents));

	/* Resolved while we were not listening: a resync without it
	 * notifies the owners of its tickets. */
	inc.id = 8;
	inc.status = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_IDENTIFIED;
	assert_int_equal(ticket_incidents_sync(&f->svc, active, 1), 0);
	create(f, 101, "also down");
	assert_int_equal(ticket_incidents_sync(&f->svc, NULL, 0), 0);
	assert_int_equal(drain_events(f, "ticket.notify"), 1);
	/* One notice per owner, whatever their number of linked tickets;
	 * none for a closed one. */
	{
		Opsdesk__V1__Actor ad = admin();
		inc.id = 10;
		inc.status
		    = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_IDENTIFIED;
		assert_int_equal(ticket_incidents_sync(&f->svc, active, 1), 0);
		create(f, 102, "down 1");
		create(f, 102, "down 2");
		create(f, 102, "down 3");
		uint64_t closed = create(f, 103, "down 4");
		ok(status_call(f, &ad, closed,
		    OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED));
		(void) drain_events(f, "none");
		inc.status
		    = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED;
		assert_int_equal(ticket_incident_resolved(&f->svc, &inc), 0);
		assert_int_equal(drain_events(f, "ticket.notify"), 1);
	}
	/* Internal incidents are not shown to users. */
	inc.id = 9;
	inc.public_ = false;
	assert_int_equal(ticket_incidents_sync(&f->svc, active, 1), 0);
	assert_null(ticket_incidents_current(f->svc.incidents));
}

static void
test_bad_input(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100), nobody = user(0), ad = admin();
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__SetTierRequest st = OPSDESK__V1__SET_TIER_REQUEST__INIT;
	char *big = malloc(TICKET_MAX_TEXT + 2);
	const char garbage[] = "\xff\xff\xff\xff garbage";
	void *out = NULL;
	size_t out_len = 0;
	reply_t *r;

	expect_error(call(f, &u, "create", &c.base), CODE(INVALID_ARGUMENT));
	c.text = "x";
	expect_error(
	    call(f, &nobody, "create", &c.base), CODE(INVALID_ARGUMENT));
	memset(big, 'a', TICKET_MAX_TEXT + 1);
	big[TICKET_MAX_TEXT + 1] = '\0';
	c.text = big;
	expect_error(call(f, &u, "create", &c.base), CODE(INVALID_ARGUMENT));
	free(big);
	c.text = "x";
	c.priority = 17;
	expect_error(call(f, &u, "create", &c.base), CODE(INVALID_ARGUMENT));
	st.user_id = 5;
	st.tier = 9;
	expect_error(
	    call(f, &ad, "set_tier", &st.base), CODE(INVALID_ARGUMENT));
	expect_error(status_call(f, &ad, 12345, CLOSED), CODE(NOT_FOUND));
	/* Bytes that do not decode: an Error reply, and still serving. */
	assert_int_equal(rpc_client_call_raw(f->cli, garbage, sizeof(garbage),
	                     &out, &out_len, 0),
	    0);
	r = opsdesk__v1__ticket_reply__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(r);
	assert_int_equal(err_code(r), CODE(MALFORMED));
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* Invalid UTF-8 is stored replaced, never refused or kept raw. */
	c.priority = 0;
	c.text = "caf\xc3 ok";
	r = call(f, &u, "create", &c.base);
	assert_int_equal(err_code(r), 0);
	assert_null(strstr(r->created->ticket->subject, "\xc3 "));
	ok(r);
	/* Nothing else was created. */
	{
		Opsdesk__V1__ListTicketsRequest l
		    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
		r = call(f, &u, "list_mine", &l.base);
		assert_int_equal(r->tickets->total, 1);
		ok(r);
	}
}

static void
test_pagination(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(100), ad = admin();
	Opsdesk__V1__ListTicketsRequest l
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__QueueRequest q = OPSDESK__V1__QUEUE_REQUEST__INIT;
	Opsdesk__V1__PageRequest page = OPSDESK__V1__PAGE_REQUEST__INIT;
	uint64_t seen = 0, last = UINT64_MAX;
	int64_t last_due = 0;
	char cursor[64] = "";
	reply_t *r;

	for (int i = 0; i < 7; i++) {
		create(f, 100, "t");
		create(f, 200 + i, "other");
	}
	page.limit = 3;
	l.page = &page;
	do {
		page.cursor = cursor;
		r = call(f, &u, "list_mine", &l.base);
		assert_int_equal(err_code(r), 0);
		assert_int_equal(r->tickets->total, 7);
		for (size_t i = 0; i < r->tickets->n_tickets; i++) {
			/* Newest first, only mine. */
			assert_true(r->tickets->tickets[i]->id < last);
			assert_int_equal(
			    r->tickets->tickets[i]->owner_id, 100);
			last = r->tickets->tickets[i]->id;
			seen++;
		}
		od_strlcpy(cursor, r->tickets->next_cursor, sizeof(cursor));
		ok(r);
	} while (cursor[0] != '\0');
	assert_int_equal(seen, 7);

	seen = 0;
	q.page = &page;
	cursor[0] = '\0';
	do {
		page.cursor = cursor;
		r = call(f, &ad, "queue", &q.base);
		assert_int_equal(err_code(r), 0);
		for (size_t i = 0; i < r->tickets->n_tickets; i++) {
			int64_t due
			    = ticket_sla_queue_due(r->tickets->tickets[i]);
			assert_true(due >= last_due);
			last_due = due;
			seen++;
		}
		od_strlcpy(cursor, r->tickets->next_cursor, sizeof(cursor));
		ok(r);
	} while (cursor[0] != '\0');
	assert_int_equal(seen, 14);
	page.cursor = "nonsense";
	expect_error(call(f, &ad, "queue", &q.base), CODE(INVALID_ARGUMENT));
}

/* ---- schema 1 -> 2 ---- */

/* The DBs of schema 1, in its order: a store as that build left it. */
static const char *const v1_db_names[] = { "tickets", "messages", "by_user",
	"by_status", "open_ids", "user_open", "queue", "sla_due", "created_at",
	"resolved_at", "rated_at", "incident_links", "customers", "faq",
	"audit", "breached", NULL };
enum {
	V1_TICKETS,
	V1_MESSAGES,
	V1_BY_USER,
	V1_BY_STATUS,
	V1_OPEN_IDS,
	V1_USER_OPEN,
	V1_QUEUE,
	V1_SLA_DUE,
	V1_CREATED_AT,
	V1_RESOLVED_AT,
};

/* T-1..T-6 of the schema 1 store, made 2 h before T0 (so the hourly
 * limit does not count them) and moved to their status 1 h before. */
static const struct {
	int64_t owner;
	int status;
} v1_tickets[] = {
	{ 42, OPEN },
	{ 42, OPEN },
	{ 42, PENDING },
	{ 42, RESOLVED },
	{ 42, CLOSED },
	{ 43, OPEN },
};

static int
v1_put(store_txn *txn, unsigned db, const uint8_t *k, size_t klen)
{
	return store_put(
	    txn, store_db(store_txn_store(txn), db), k, klen, "", 0);
}

static int
v1_put2(store_txn *txn, unsigned db, uint64_t a, uint64_t b)
{
	uint8_t k[16];

	store_key_u64(k, a);
	store_key_u64(k + 8, b);
	return v1_put(txn, db, k, sizeof(k));
}

/* Write v1_tickets with the keys schema 1 kept for them. */
static int
v1_fill(store_txn *txn, void *arg)
{
	ticket_policy pol;
	int rv = 0;

	(void) arg;
	ticket_policy_defaults(&pol);
	for (size_t i = 0; i < sizeof(v1_tickets) / sizeof(v1_tickets[0]);
	     i++) {
		tk_ticket t = OPSDESK__V1__TICKET__INIT;
		bool active;
		uint8_t k[17];

		if ((rv = store_next_id(txn, "ticket", &t.id)) != 0) {
			return rv;
		}
		t.owner_id = v1_tickets[i].owner;
		t.chat_id = t.owner_id;
		t.owner_name = "user";
		t.subject = "from schema 1";
		t.priority
		    = OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_NORMAL;
		t.status = OPEN;
		t.created_ms = T0 - 2 * HOUR;
		t.updated_ms = t.created_ms;
		ticket_sla_apply(&pol, &t);
		if (v1_tickets[i].status != OPEN) {
			ticket_status_apply(
			    &pol, &t, v1_tickets[i].status, T0 - HOUR);
		}
		active = t.status == OPEN || t.status == PENDING;
		store_key_u64(k, t.id);
		if ((rv = store_put_pb(txn,
		         store_db(store_txn_store(txn), V1_TICKETS), k, 8,
		         &t.base))
		        != 0
		    || (rv = v1_put2(
		            txn, V1_BY_USER, (uint64_t) t.owner_id, t.id))
		        != 0
		    || (rv = v1_put2(
		            txn, V1_CREATED_AT, (uint64_t) t.created_ms, t.id))
		        != 0) {
			return rv;
		}
		k[0] = (uint8_t) t.status;
		store_key_u64(k + 1, t.id);
		if ((rv = v1_put(txn, V1_BY_STATUS, k, 9)) != 0) {
			return rv;
		}
		if (t.resolved_ms != 0
		    && (rv = v1_put2(txn, V1_RESOLVED_AT,
		            (uint64_t) t.resolved_ms, t.id))
		        != 0) {
			return rv;
		}
		if (!active) {
			continue;
		}
		store_key_u64(k, t.id);
		if ((rv = v1_put(txn, V1_OPEN_IDS, k, 8)) != 0
		    || (rv = v1_put2(
		            txn, V1_USER_OPEN, (uint64_t) t.owner_id, t.id))
		        != 0
		    || (rv = v1_put2(txn, V1_QUEUE,
		            (uint64_t) ticket_sla_queue_due(&t), t.id))
		        != 0) {
			return rv;
		}
		for (unsigned clock = 1; clock <= 2; clock <<= 1) {
			if (!(ticket_sla_running(&t) & clock)) {
				continue;
			}
			store_key_u64(k,
			    (uint64_t) (clock == TICKET_CLOCK_FIRST_RESPONSE
			            ? t.first_response_due_ms
			            : t.resolution_due_ms));
			store_key_u64(k + 8, t.id);
			k[16] = (uint8_t) clock;
			if ((rv = v1_put(txn, V1_SLA_DUE, k, 17)) != 0) {
				return rv;
			}
		}
	}
	return rv;
}

/* A schema 1 store in a new fixture dir, then the service on it (which
 * migrates it to this build's schema). */
static int
setup_v1(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	store_options so = { 0 };
	ticket_policy pol;
	store *st = NULL;
	int rv;

	fake_now = T0;
	od_clock_set(fake_clock, NULL);
	if (f == NULL || fixture_dir(f) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	so.path = f->dir;
	so.dbs = v1_db_names;
	so.schema_version = 1;
	if ((rv = store_open(&st, &so)) == 0) {
		rv = store_write(st, v1_fill, NULL);
		store_close(st);
	}
	ticket_policy_defaults(&pol);
	return rv == 0 ? fixture_start(f, &pol) : -1;
}

/* Entries of the store's DB at index db. */
static size_t
db_entries(fixture *f, unsigned db)
{
	MDB_txn *txn = NULL;
	size_t n;

	assert_int_equal(store_read_begin(f->st, &txn), 0);
	n = ticket__db_entries(txn, store_db(f->st, db));
	store_read_end(txn);
	return n;
}

/* Ids of a list_mine page, newest first, into ids (0-terminated). */
static void
list_ids(fixture *f, Opsdesk__V1__Actor *a, uint32_t limit, const char *cursor,
    uint32_t *total, uint64_t *ids, char *next, size_t nextlen)
{
	Opsdesk__V1__ListTicketsRequest l
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__PageRequest page = OPSDESK__V1__PAGE_REQUEST__INIT;
	reply_t *r;
	size_t i;

	page.limit = limit;
	page.cursor = (char *) cursor;
	l.page = &page;
	r = call(f, a, "list_mine", &l.base);
	assert_int_equal(err_code(r), 0);
	for (i = 0; i < r->tickets->n_tickets; i++) {
		assert_int_equal(r->tickets->tickets[i]->owner_id, a->user_id);
		ids[i] = r->tickets->tickets[i]->id;
	}
	ids[i] = 0;
	*total = r->tickets->total;
	od_strlcpy(next, r->tickets->next_cursor, nextlen);
	ok(r);
}

static void
test_migrate_v1(void **state)
{
	fixture *f = *state;
	Opsdesk__V1__Actor u = user(42), v = user(43), ad = admin();
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__QueueRequest q = OPSDESK__V1__QUEUE_REQUEST__INIT;
	Opsdesk__V1__StatsRequest sr = OPSDESK__V1__STATS_REQUEST__INIT;
	uint64_t ids[8], id;
	uint32_t total;
	char next[64];
	reply_t *r;

	/* The old indexes hold nothing (their pages are free); the new one
	 * holds every ticket, and the open ones again. */
	assert_int_equal(db_entries(f, TDB_RETIRED_BY_USER), 0);
	assert_int_equal(db_entries(f, TDB_RETIRED_BY_STATUS), 0);
	assert_int_equal(db_entries(f, TDB_RETIRED_OPEN_IDS), 0);
	assert_int_equal(db_entries(f, TDB_RETIRED_USER_OPEN), 0);
	assert_int_equal(db_entries(f, TDB_USER_TICKETS), 6 + 4);
	/* One sla_due key per open ticket (T-1, T-2, T-6), not per clock. */
	assert_int_equal(db_entries(f, TDB_SLA_DUE), 3);

	/* Listing: newest first, closed T-5 left out but counted, pages
	 * continue where they stopped, only the user's own. */
	list_ids(f, &u, 2, "", &total, ids, next, sizeof(next));
	assert_int_equal(total, 5);
	assert_int_equal(ids[0], 4);
	assert_int_equal(ids[1], 3);
	assert_int_equal(ids[2], 0);
	assert_true(next[0] != '\0'); /* opaque: store_scan's */
	list_ids(f, &u, 2, next, &total, ids, next, sizeof(next));
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 1);
	assert_int_equal(ids[2], 0);
	list_ids(f, &v, 0, "", &total, ids, next, sizeof(next));
	assert_int_equal(total, 1);
	assert_int_equal(ids[0], 6);
	assert_int_equal(ids[1], 0);

	/* Open limit (3): T-1, T-2 open and T-3 pending count, the resolved
	 * and the closed one do not. */
	c.text = "after the upgrade";
	expect_error(call(f, &u, "create", &c.base), CODE(RESOURCE_EXHAUSTED));
	ok(status_call(f, &ad, 1, RESOLVED));
	id = create(f, 42, "after the upgrade");
	assert_int_equal(id, 7);
	expect_error(call(f, &u, "create", &c.base), CODE(RESOURCE_EXHAUSTED));
	list_ids(f, &u, 0, "", &total, ids, next, sizeof(next));
	assert_int_equal(total, 6);
	assert_int_equal(ids[0], 7);

	/* Open counts: T-2, T-3, T-6, T-7. */
	r = call(f, &ad, "queue", &q.base);
	assert_int_equal(err_code(r), 0);
	assert_int_equal(r->tickets->total, 4);
	assert_int_equal(r->tickets->n_tickets, 4);
	ok(r);
	sr.from_ms = T0 - DAY;
	sr.to_ms = T0 + HOUR;
	r = call(f, &ad, "stats", &sr.base);
	assert_int_equal(err_code(r), 0);
	assert_int_equal(r->stats->open_now, 4);
	assert_int_equal(r->stats->created, 7);
	ok(r);

	/* Breaches through the one-key sla_due: the first response clocks of
	 * T-2, T-6 and T-7, then their resolution clocks, each once. */
	fake_now = T0 + 30 * HOUR;
	assert_int_equal(ticket_breach_scan(&f->svc), 3);
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	fake_now = T0 + 8 * DAY;
	assert_int_equal(ticket_breach_scan(&f->svc), 3);
	assert_int_equal(ticket_breach_scan(&f->svc), 0);
	assert_int_equal(db_entries(f, TDB_SLA_DUE), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_other_user_cannot_touch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_idempotent_create, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_breach_once_and_pause, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faq, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats, setup_no_limits, teardown),
		cmocka_unit_test_setup_teardown(
		    test_support_objectives, setup_no_limits, teardown),
		cmocka_unit_test_setup_teardown(
		    test_incident_link_and_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pagination, setup_no_limits, teardown),
		cmocka_unit_test_setup_teardown(
		    test_migrate_v1, setup_v1, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
