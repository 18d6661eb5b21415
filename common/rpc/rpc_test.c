/*
 * rpc unit tests: a small test service (rpc_test.proto) on a real store
 * and real tcp sockets on 127.0.0.1 with free ports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "rpc_impl.h"
#include "rpc_test.pb-c.h"
#include "util/util.h"

#define T_REQ      Opsdesk__Test__TestRequest
#define T_REPLY    Opsdesk__Test__TestReply
#define REQ_DESC   (&opsdesk__test__test_request__descriptor)
#define REPLY_DESC (&opsdesk__test__test_reply__descriptor)

/* ---- the test service ---- */

static atomic_int handler_runs;
static pthread_mutex_t block_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cv = PTHREAD_COND_INITIALIZER;
static int blocked;   /* handlers waiting in `block` */
static bool released; /* let them go */

static const Opsdesk__Test__EchoRequest *
echo_arg(const ProtobufCMessage *req)
{
	const T_REQ *r = (const T_REQ *) req;
	return r->echo; /* every method's member shares the union */
}

static Opsdesk__Test__EchoReply *
set_echo(rpc_call *c, ProtobufCMessage *reply)
{
	T_REPLY *r = (T_REPLY *) reply;
	Opsdesk__Test__EchoReply *e = rpc_call_alloc(c, sizeof(*e));
	if (e == NULL) {
		return NULL;
	}
	opsdesk__test__echo_reply__init(e);
	r->result_case = OPSDESK__TEST__TEST_REPLY__RESULT_ECHO;
	r->echo = e;
	return e;
}

static int
h_echo(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__Test__EchoRequest *a = echo_arg(req);
	Opsdesk__Test__EchoReply *e = set_echo(c, reply);
	if (e == NULL) {
		return OD_ENOMEM;
	}
	e->text = rpc_call_printf(c, "%s", a->text);
	e->blob = a->blob;
	return 0;
}

/* The count stored under text, from any txn. */
static uint64_t
stored_count(rpc_call *c, const char *text)
{
	MDB_val v;
	store *st = ((store **) rpc_call_arg(c))[0];
	if (store_get(rpc_call_mdb(c), store_db(st, 0), text, strlen(text), &v)
	        != 0
	    || v.mv_size != 8) {
		return 0;
	}
	return od_get_be64(v.mv_data);
}

static int
h_put(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__Test__EchoRequest *a = echo_arg(req);
	store *st = ((store **) rpc_call_arg(c))[0];
	atomic_fetch_add(&handler_runs, 1);
	if (a->text[0] == 0) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "text is required");
	}
	uint8_t val[8];
	uint64_t n = stored_count(c, a->text) + 1;
	od_put_be64(val, n);
	int rv = store_put(rpc_call_txn(c), store_db(st, 0), a->text,
	    strlen(a->text), val, sizeof(val));
	if (rv != 0) {
		return rv;
	}
	if (a->blob.len > 0) { /* bulk, to fill the map */
		char *bkey = rpc_call_printf(c, "blob:%s", a->text);
		if (bkey == NULL) {
			return OD_ENOMEM;
		}
		rv = store_put(rpc_call_txn(c), store_db(st, 0), bkey,
		    strlen(bkey), a->blob.data, a->blob.len);
		if (rv != 0) {
			return rv;
		}
	}
	/* An event for the change (sent after the commit, if any). */
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__GatewayEvent ge = OPSDESK__V1__GATEWAY_EVENT__INIT;
	ge.text = a->text;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY;
	env.gateway = &ge;
	if ((rv = rpc_call_publish(c, "ops.put", &env)) != 0) {
		return rv;
	}
	Opsdesk__Test__EchoReply *e = set_echo(c, reply);
	if (e == NULL) {
		return OD_ENOMEM;
	}
	e->text = rpc_call_strdup(c, a->text);
	e->count = n;
	return 0;
}

static int
h_fail(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	int rv = h_put(c, req, reply); /* a change that must not stay */
	if (rv != 0) {
		return rv;
	}
	return rpc_call_error(c,
	    OPSDESK__V1__ERROR_CODE__ERROR_CODE_FAILED_PRECONDITION,
	    "failed after writing %s", echo_arg(req)->text);
}

/* Written with the shared helpers: rpc_call_params, rpc_call_fail and
 * rpc_call_result. "fail:N" answers od_err N (with "!", a message). */
static int
h_get(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__Test__EchoRequest *a = rpc_call_params(c);
	Opsdesk__Test__EchoReply *e;
	(void) req;
	(void) reply;

	if (strncmp(a->text, "fail:", 5) == 0) {
		int rv = atoi(a->text + 5);
		rv = strchr(a->text, '!') != NULL
		    ? rpc_call_fail(c, rv, "custom %d", rv)
		    : rpc_call_fail(c, rv, NULL);
		if (rv != 0) {
			return rv;
		}
	}
	if ((e = rpc_call_alloc(c, sizeof(*e))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__test__echo_reply__init(e);
	e->text = rpc_call_strdup(c, a->text);
	e->count = stored_count(c, a->text);
	/* A wrong member is a bug, never a half-set reply. */
	assert_int_equal(rpc_call_result(c, "ping", e), OD_EINTERNAL);
	assert_int_equal(rpc_call_result(c, "nothing", e), OD_EINTERNAL);
	return rpc_call_result(c, "echo", e);
}

static int
h_block(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	pthread_mutex_lock(&block_mtx);
	blocked++;
	pthread_cond_broadcast(&block_cv);
	while (!released) {
		pthread_cond_wait(&block_cv, &block_mtx);
	}
	pthread_mutex_unlock(&block_mtx);
	return h_echo(c, req, reply);
}

static const rpc_method methods[] = {
	{ "echo", RPC_READ, false, h_echo },
	{ "put", RPC_WRITE, false, h_put },
	{ "fail", RPC_WRITE, false, h_fail },
	{ "admin", RPC_READ, true, h_echo },
	{ "get", RPC_READ, false, h_get },
	{ "block", RPC_READ, false, h_block },
};

/* ---- fixture ---- */

typedef struct fixture {
	char dir[64];
	char url[64];
	store *st;
	store *st_slot[1]; /* rpc_call_arg: survives store reopening */
	rpc_server *srv;
	rpc_client *cli;
	metrics *m;
} fixture;

static int
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void
open_store_sized(fixture *f, bool nosync, size_t map_size)
{
	static const char *const dbs[] = { "data", NULL };
	store_options so = { 0 };
	so.path = f->dir;
	so.dbs = dbs;
	so.nosync = nosync;
	so.map_size = map_size;
	assert_int_equal(store_open(&f->st, &so), 0);
	f->st_slot[0] = f->st;
}

static void
open_store(fixture *f, bool nosync)
{
	open_store_sized(f, nosync, 0);
}

static void
server_options(fixture *f, rpc_server_options *o)
{
	rpc_server_options_init(o, f->url, REQ_DESC, REPLY_DESC, methods,
	    sizeof(methods) / sizeof(methods[0]), f->st_slot);
	o->store = f->st;
	o->metrics = f->m;
	o->service = "rpc_test";
	o->instance = "t1";
	o->shard = "1/2";
	o->contexts = 16;
}

/*
 * Wait (bounded) for a client's connection. Tests also do this before
 * closing a fresh client: NNG 1.5 leaks the dialer of a socket closed
 * while its connection handshake is in progress.
 */
static void
wait_connected(rpc_client *c)
{
	int64_t end = od_mono_ms() + 5000;
	while (!rpc_client_connected(c) && od_mono_ms() < end) {
		usleep(1000);
	}
	assert_true(rpc_client_connected(c));
}

static void
start_server(fixture *f)
{
	rpc_server_options o;
	server_options(f, &o);
	assert_int_equal(rpc_server_start(&f->srv, &o), 0);
}

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rpc_test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%d", free_port());
	assert_int_equal(metrics_new(&f->m), 0);
	open_store(f, true);
	start_server(f);
	assert_int_equal(rpc_client_open(&f->cli, f->url, 5000), 0);
	wait_connected(f->cli);
	atomic_store(&handler_runs, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	rpc_client_close(f->cli);
	rpc_server_stop(f->srv);
	store_close(f->st);
	metrics_free(f->m);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	od_clock_set(NULL, NULL);
	return 0;
}

/* Call method with text as user (request id may be NULL: filled by the
 * client). */
static T_REPLY *
call_as(rpc_client *cli, int64_t user, const char *method, const char *id,
    const char *text, bool admin, int want_rv)
{
	T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__Test__EchoRequest e = OPSDESK__TEST__ECHO_REQUEST__INIT;
	Opsdesk__V1__PingRequest ping = OPSDESK__V1__PING_REQUEST__INIT;
	actor.user_id = user;
	actor.is_admin = admin;
	req.actor = &actor;
	if (id != NULL) {
		req.request_id = (char *) id;
	}
	e.text = (char *) text;
	if (method != NULL) {
		ProtobufCMessage *m
		    = strcmp(method, "ping") == 0 ? &ping.base : &e.base;
		assert_int_equal(
		    rpc_request_set_method(&req.base, method, m), 0);
	}
	ProtobufCMessage *out = NULL;
	assert_int_equal(
	    rpc_client_call(cli, &req.base, REPLY_DESC, &out, 0), want_rv);
	return (T_REPLY *) out;
}

/* As user 42. */
static T_REPLY *
call(rpc_client *cli, const char *method, const char *id, const char *text,
    bool admin, int want_rv)
{
	return call_as(cli, 42, method, id, text, admin, want_rv);
}

static int
reply_code(const T_REPLY *r)
{
	const Opsdesk__V1__Error *e = rpc_reply_error(&r->base);
	return e != NULL ? (int) e->code : 0;
}

static void
free_reply(T_REPLY *r)
{
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* ---- tests ---- */

static void
test_round_trip_and_ping(void **state)
{
	fixture *f = *state;
	T_REPLY *r = call(f->cli, "echo", NULL, "hello", false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_int_equal(
	    r->result_case, OPSDESK__TEST__TEST_REPLY__RESULT_ECHO);
	assert_string_equal(r->echo->text, "hello");
	assert_string_equal(rpc_oneof_name(&r->base), "echo");
	free_reply(r);
	assert_true(rpc_client_connected(f->cli));
	assert_string_equal(rpc_client_url(f->cli), f->url);

	r = call(f->cli, "ping", NULL, NULL, false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_int_equal(
	    r->result_case, OPSDESK__TEST__TEST_REPLY__RESULT_PING);
	assert_string_equal(r->ping->service, "rpc_test");
	assert_string_equal(r->ping->version, OPSDESK_VERSION);
	assert_string_equal(r->ping->instance, "t1");
	assert_string_equal(r->ping->shard, "1/2");
	assert_true(r->ping->now_ms >= r->ping->started_ms);
	free_reply(r);

	metric *ok = metrics_counter(f->m, "opsdesk_rpc_requests_total", "",
	    "method=\"echo\",code=\"OK\"");
	assert_int_equal(metric_value(ok), 1);
	metric *h = metrics_histogram(f->m, "opsdesk_rpc_duration_seconds", "",
	    "method=\"echo\"", NULL, 0);
	assert_int_equal(metric_count(h), 1);
}

static void
test_errors(void **state)
{
	fixture *f = *state;
	T_REPLY *r = call(f->cli, "unhandled", NULL, "x", false, 0);
	assert_int_equal(
	    reply_code(r), OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNIMPLEMENTED);
	assert_int_equal(
	    r->result_case, OPSDESK__TEST__TEST_REPLY__RESULT__NOT_SET);
	free_reply(r);
	r = call(f->cli, NULL, NULL, "x", false, 0); /* no method */
	assert_int_equal(
	    reply_code(r), OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNIMPLEMENTED);
	free_reply(r);
	/* admin_only */
	r = call(f->cli, "admin", NULL, "x", false, 0);
	assert_int_equal(reply_code(r),
	    OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED);
	free_reply(r);
	r = call(f->cli, "admin", NULL, "x", true, 0);
	assert_int_equal(reply_code(r), 0);
	assert_string_equal(r->echo->text, "x");
	free_reply(r);
	/* a handler's own error */
	r = call(f->cli, "put", "id-empty", "", false, 0);
	assert_int_equal(reply_code(r),
	    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT);
	assert_string_equal(
	    rpc_reply_error(&r->base)->message, "text is required");
	free_reply(r);
	metric *pd = metrics_counter(f->m, "opsdesk_rpc_requests_total", "",
	    "method=\"admin\",code=\"PERMISSION_DENIED\"");
	assert_int_equal(metric_value(pd), 1);
}

/* A write without a request id (sent raw: the client would fill one). */
/* rpc_call_fail: the one od_err -> Error mapping. */
static void
test_call_fail_mapping(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *text;
		int code;
		const char *msg;
	} cases[] = {
		{ "fail:2",
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "invalid argument" },
		{ "fail:2!",
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "custom 2" },
		{ "fail:3", OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND,
		    "not found" },
		{ "fail:4", OPSDESK__V1__ERROR_CODE__ERROR_CODE_ALREADY_EXISTS,
		    "already exists" },
		{ "fail:5",
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_DEADLINE_EXCEEDED,
		    "timed out" },
		{ "fail:6", OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE,
		    "service unavailable" },
		{ "fail:9", OPSDESK__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE,
		    "too large" },
		{ "fail:10", OPSDESK__V1__ERROR_CODE__ERROR_CODE_MALFORMED,
		    "malformed input" },
		{ "fail:11",
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED,
		    "permission denied" },
		{ "fail:12",
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_FAILED_PRECONDITION,
		    "not allowed in the current state" },
		{ "fail:13",
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_RESOURCE_EXHAUSTED,
		    "limit reached" },
		/* Not the handler's to word: rpc answers them. */
		{ "fail:7", OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "get failed: I/O error" },
		{ "fail:1", OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "get failed: out of memory" },
		{ "fail:0", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		T_REPLY *r
		    = call(f->cli, "get", NULL, cases[i].text, false, 0);
		assert_int_equal(reply_code(r), cases[i].code);
		if (cases[i].msg != NULL) {
			assert_string_equal(r->error->message, cases[i].msg);
		} else {
			assert_int_equal(r->result_case,
			    OPSDESK__TEST__TEST_REPLY__RESULT_ECHO);
			assert_string_equal(r->echo->text, "fail:0");
		}
		free_reply(r);
	}
	assert_int_equal(rpc_call_fail(NULL, OD_ENOTFOUND, NULL), OD_ERPC);
	assert_int_equal(rpc_call_fail(NULL, 0, NULL), 0);
	assert_int_equal(rpc_call_fail(NULL, OD_EMAPFULL, NULL), OD_EMAPFULL);
}

static void
test_write_needs_request_id(void **state)
{
	fixture *f = *state;
	T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__Test__EchoRequest e = OPSDESK__TEST__ECHO_REQUEST__INIT;
	e.text = "k";
	req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_PUT;
	req.put = &e;
	uint8_t buf[64];
	size_t len = opsdesk__test__test_request__pack(&req, buf);
	void *out = NULL;
	size_t out_len = 0;
	assert_int_equal(
	    rpc_client_call_raw(f->cli, buf, len, &out, &out_len, 0), 0);
	T_REPLY *r = opsdesk__test__test_reply__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(r);
	assert_int_equal(reply_code(r),
	    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT);
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), 0);
}

static void
test_idempotent_writes(void **state)
{
	fixture *f = *state;
	T_REPLY *r = call(f->cli, "put", "req-1", "k", false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
	/* The same id: the first reply, and the handler did not run. */
	r = call(f->cli, "put", "req-1", "k", false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), 1);
	/* Also after a restart of the server and store. */
	rpc_client_close(f->cli);
	rpc_server_stop(f->srv);
	store_close(f->st);
	open_store(f, true);
	start_server(f);
	assert_int_equal(rpc_client_open(&f->cli, f->url, 5000), 0);
	r = call(f->cli, "put", "req-1", "k", false, 0);
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), 1);
	/* A new id applies again. */
	r = call(f->cli, "put", "req-2", "k", false, 0);
	assert_int_equal(r->echo->count, 2);
	free_reply(r);
	r = call(f->cli, "get", NULL, "k", false, 0);
	assert_int_equal(r->echo->count, 2);
	free_reply(r);
}

/*
 * The idempotency cache is per actor: another user who sends (guesses or
 * reuses) a request id gets a reply of their own request, never the
 * first user's reply, and the first user's replay still gets theirs.
 */
static void
test_idem_keyed_by_actor(void **state)
{
	fixture *f = *state;
	T_REPLY *r
	    = call_as(f->cli, 42, "put", "shared-id", "alice", false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_string_equal(r->echo->text, "alice");
	free_reply(r);
	r = call_as(f->cli, 43, "put", "shared-id", "bob", false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_string_equal(r->echo->text, "bob");
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), 2);
	/* Each actor's replay answers its own first reply, applying
	 * nothing. */
	r = call_as(f->cli, 43, "put", "shared-id", "bob", false, 0);
	assert_string_equal(r->echo->text, "bob");
	free_reply(r);
	r = call_as(f->cli, 42, "put", "shared-id", "other", false, 0);
	assert_string_equal(r->echo->text, "alice");
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), 2);
	r = call(f->cli, "get", NULL, "bob", false, 0);
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
}

/* Turn the entry of (request id, user) into the user-first key older
 * versions wrote. */
static int
job_to_legacy_key(store_txn *t, void *arg)
{
	const char *id = arg;
	store *st = store_txn_store(t);
	size_t n = strlen(id);
	uint8_t nk[64], ok[64];
	MDB_val v;
	int rv;

	memcpy(nk, id, n);
	od_put_be64(nk + n, 42);
	od_put_be64(ok, 42);
	memcpy(ok + 8, id, n);
	if ((rv = store_get(
	         store_txn_mdb(t), store_idem_db(st), nk, n + 8, &v))
	    != 0) {
		return rv;
	}
	char *copy = malloc(v.mv_size);
	assert_non_null(copy);
	memcpy(copy, v.mv_data, v.mv_size);
	rv = store_put(t, store_idem_db(st), ok, n + 8, copy, v.mv_size);
	free(copy);
	return rv != 0 ? rv
	               : store_del(t, store_idem_db(st), nk, n + 8, NULL, 0);
}

/* A request retried across the upgrade that reordered the key still
 * gets its first reply. */
static void
test_idem_legacy_key(void **state)
{
	fixture *f = *state;
	T_REPLY *r
	    = call_as(f->cli, 42, "put", "legacy-id", "alice", false, 0);
	assert_int_equal(reply_code(r), 0);
	free_reply(r);
	int runs = atomic_load(&handler_runs);
	assert_int_equal(
	    store_write(f->st, job_to_legacy_key, (void *) "legacy-id"), 0);
	r = call_as(f->cli, 42, "put", "legacy-id", "other", false, 0);
	assert_int_equal(reply_code(r), 0);
	assert_string_equal(r->echo->text, "alice");
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), runs);
	/* Another user's same id is still a request of its own. */
	r = call_as(f->cli, 43, "put", "legacy-id", "bob", false, 0);
	assert_string_equal(r->echo->text, "bob");
	free_reply(r);
}

static void
test_write_error_discards(void **state)
{
	fixture *f = *state;
	T_REPLY *r = call(f->cli, "fail", "req-f", "k", false, 0);
	assert_int_equal(reply_code(r),
	    OPSDESK__V1__ERROR_CODE__ERROR_CODE_FAILED_PRECONDITION);
	assert_string_equal(
	    rpc_reply_error(&r->base)->message, "failed after writing k");
	free_reply(r);
	r = call(f->cli, "get", NULL, "k", false, 0);
	assert_int_equal(r->echo->count, 0); /* the put was discarded */
	free_reply(r);
	/* Errors are not cached: the same id runs again. (A failed job
	 * sharing its batch, here with the idempotency prune, runs twice.) */
	int runs = atomic_load(&handler_runs);
	assert_true(runs >= 1);
	r = call(f->cli, "fail", "req-f", "k", false, 0);
	assert_int_equal(reply_code(r),
	    OPSDESK__V1__ERROR_CODE__ERROR_CODE_FAILED_PRECONDITION);
	free_reply(r);
	assert_true(atomic_load(&handler_runs) > runs);
}

static int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	return fake_now;
}

static void
test_idem_pruned_after_ttl(void **state)
{
	fixture *f = *state;
	fake_now = 1700000000000LL;
	od_clock_set(fake_clock, NULL);
	T_REPLY *r = call(f->cli, "put", "old-id", "p", false, 0);
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
	r = call(f->cli, "put", "old-id", "p", false, 0);
	assert_int_equal(r->echo->count, 1); /* still cached */
	free_reply(r);
	fake_now += 25LL * 3600 * 1000; /* past the 24 h default */
	r = call(f->cli, "put", "new-id", "q", false, 0); /* prunes */
	free_reply(r);
	r = call(f->cli, "put", "old-id", "p", false, 0);
	assert_int_equal(r->echo->count, 2); /* forgotten: applied again */
	free_reply(r);
	r = call(f->cli, "put", "new-id", "q", false, 0);
	assert_int_equal(r->echo->count, 1); /* young: kept */
	free_reply(r);
}

typedef struct writer_arg {
	fixture *f;
	int index;
	int ok;
} writer_arg;

#define N_WRITERS   64
#define WRITES_EACH 4

static void *
writer_main(void *arg)
{
	writer_arg *w = arg;
	for (int i = 0; i < WRITES_EACH; i++) {
		char text[32];
		snprintf(text, sizeof(text), "w%d", w->index);
		T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
		Opsdesk__Test__EchoRequest e
		    = OPSDESK__TEST__ECHO_REQUEST__INIT;
		e.text = text;
		req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_PUT;
		req.put = &e;
		ProtobufCMessage *out = NULL;
		if (rpc_client_call(w->f->cli, &req.base, REPLY_DESC, &out, 0)
		    == 0) {
			T_REPLY *r = (T_REPLY *) out;
			if (reply_code(r) == 0
			    && r->echo->count == (uint64_t) i + 1) {
				w->ok++;
			}
			free_reply(r);
		}
	}
	return NULL;
}

static void
test_concurrent_writes_group_commit(void **state)
{
	fixture *f = *state;
	/* With fsync, as a service runs. */
	rpc_client_close(f->cli);
	rpc_server_stop(f->srv);
	store_close(f->st);
	open_store(f, false);
	rpc_server_options o;
	server_options(f, &o);
	o.contexts = 0; /* the default pool */
	assert_int_equal(rpc_server_start(&f->srv, &o), 0);
	assert_int_equal(rpc_client_open(&f->cli, f->url, 10000), 0);

	pthread_t th[N_WRITERS];
	writer_arg wa[N_WRITERS];
	for (int i = 0; i < N_WRITERS; i++) {
		wa[i] = (writer_arg) { f, i, 0 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, writer_main, &wa[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < N_WRITERS; i++) {
		pthread_join(th[i], NULL);
		ok += wa[i].ok;
	}
	assert_int_equal(ok, N_WRITERS * WRITES_EACH);
	store_stats st;
	store_get_stats(f->st, &st);
	/* Group commit: fewer commits than jobs. */
	assert_true(st.max_batch_seen > 1);
	assert_true(st.commits < st.jobs);
	print_message("  %d writes: %" PRIu64 " jobs in %" PRIu64
	              " commits, largest batch %" PRIu64 "\n",
	    ok, st.jobs, st.commits, st.max_batch_seen);
}

/* One client of its own (its own socket and connection) making writes. */
typedef struct own_client_arg {
	const char *url;
	int index;
	int writes;
	int ok;
} own_client_arg;

static void *
own_client_main(void *arg)
{
	own_client_arg *a = arg;
	rpc_client *cli = NULL;
	if (rpc_client_open(&cli, a->url, 10000) != 0) {
		return NULL;
	}
	for (int i = 0; i < a->writes; i++) {
		char text[32];
		snprintf(text, sizeof(text), "c%d-%d", a->index, i);
		T_REPLY *r = NULL;
		T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
		Opsdesk__Test__EchoRequest e
		    = OPSDESK__TEST__ECHO_REQUEST__INIT;
		e.text = text;
		req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_PUT;
		req.put = &e;
		if (rpc_client_call(cli, &req.base, REPLY_DESC,
		        (ProtobufCMessage **) &r, 0)
		    == 0) {
			a->ok += reply_code(r) == 0 && r->echo->count == 1;
			free_reply(r);
		}
	}
	rpc_client_close(cli);
	return NULL;
}

/* n clients, each on its own connection, make `writes` writes each at
 * once; the wall time in ms. */
static int64_t
run_own_clients(fixture *f, int n, int writes, int base)
{
	pthread_t th[8];
	own_client_arg a[8];
	assert_true(n <= 8);
	int64_t t0 = od_mono_ms();
	for (int i = 0; i < n; i++) {
		a[i] = (own_client_arg) { f->url, base + i, writes, 0 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, own_client_main, &a[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].ok;
	}
	assert_int_equal(ok, n * writes);
	return od_mono_ms() - t0;
}

/*
 * Several clients with connections of their own must not make each other
 * wait: eight clients' writes together take about as long as one
 * client's (group commit), at worst eight times as long (one after the
 * other). A cost per job of a batch (a child txn each: ~10 ms under ASan)
 * made each call wait for the whole batch: ~100x one client's time. The
 * bound is generous, and the best of three tries counts, so a loaded
 * machine's hiccup does not fail it while a real stall fails every try.
 */
static void
test_concurrent_clients_do_not_stall(void **state)
{
	fixture *f = *state;
	enum { WRITES = 40, CLIENTS = 8, TRIES = 3 };
	int64_t one = 0, many = 0;
	run_own_clients(f, 1, 5, 100); /* warm up: threads, pages */
	for (int t = 0; t < TRIES; t++) {
		one = run_own_clients(f, 1, WRITES, 200 + t * 100);
		many = run_own_clients(f, CLIENTS, WRITES, 500 + t * 100);
		print_message("  %d writes: 1 client %" PRId64
		              " ms, %d clients %" PRId64 " ms\n",
		    WRITES, one, CLIENTS, many);
		/* 20 ms of slack so a very fast single run does not make
		 * the ratio meaningless. */
		if (many <= 12 * (one + 20)) {
			break;
		}
	}
	assert_true(many <= 12 * (one + 20));
}

static void
test_garbage_gets_malformed(void **state)
{
	fixture *f = *state;
	static const uint8_t garbage[]
	    = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34 };
	void *out = NULL;
	size_t out_len = 0;
	assert_int_equal(rpc_client_call_raw(f->cli, garbage, sizeof(garbage),
	                     &out, &out_len, 0),
	    0);
	T_REPLY *r = opsdesk__test__test_reply__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(r);
	assert_int_equal(
	    reply_code(r), OPSDESK__V1__ERROR_CODE__ERROR_CODE_MALFORMED);
	free_reply(r);
	/* An empty request decodes to no method at all. */
	assert_int_equal(
	    rpc_client_call_raw(f->cli, NULL, 0, &out, &out_len, 0), 0);
	r = opsdesk__test__test_reply__unpack(NULL, out_len, out);
	free(out);
	assert_int_equal(
	    reply_code(r), OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNIMPLEMENTED);
	free_reply(r);
	/* and the server keeps serving */
	r = call(f->cli, "echo", NULL, "still here", false, 0);
	assert_string_equal(r->echo->text, "still here");
	free_reply(r);
}

static void
test_oversized_drops_connection(void **state)
{
	fixture *f = *state;
	rpc_client_close(f->cli);
	rpc_server_stop(f->srv);
	rpc_server_options o;
	server_options(f, &o);
	o.max_msg = 4096;
	assert_int_equal(rpc_server_start(&f->srv, &o), 0);
	assert_int_equal(rpc_client_open(&f->cli, f->url, 5000), 0);

	size_t big_len = 64 * 1024;
	uint8_t *big = calloc(1, big_len);
	assert_non_null(big);
	void *out = NULL;
	size_t out_len = 0;
	/* The server closes the connection: no reply, ever. */
	assert_int_equal(
	    rpc_client_call_raw(f->cli, big, big_len, &out, &out_len, 300),
	    OD_ETIMEDOUT);
	free(big);
	/* The client refuses more than any server takes, without sending. */
	assert_int_equal(rpc_client_call_raw(f->cli, "x",
	                     RPC_DEFAULT_MAX_MSG + 1, &out, &out_len, 0),
	    OD_ETOOBIG);
	/* Others (and this client, reconnected) are still served. */
	rpc_client *other;
	assert_int_equal(rpc_client_open(&other, f->url, 5000), 0);
	T_REPLY *r = call(other, "echo", NULL, "fine", false, 0);
	assert_string_equal(r->echo->text, "fine");
	free_reply(r);
	rpc_client_close(other);
	int64_t end = od_mono_ms() + 5000;
	while (!rpc_client_connected(f->cli) && od_mono_ms() < end) {
		usleep(5000);
	}
	r = call(f->cli, "echo", NULL, "again", false, 0);
	assert_string_equal(r->echo->text, "again");
	free_reply(r);
}

static void
test_no_server_unavailable(void **state)
{
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
	rpc_client *c;
	assert_int_equal(rpc_client_open(&c, url, 10000), 0);
	int64_t t0 = od_mono_ms();
	void *out;
	size_t out_len;
	assert_int_equal(
	    rpc_client_call_raw(c, "", 0, &out, &out_len, 0), OD_EUNAVAIL);
	/* At once, not after the 10 s time-out. */
	assert_true(od_mono_ms() - t0 < 5000);
	assert_false(rpc_client_connected(c));
	rpc_client_close(c);
	rpc_client_close(NULL);
	assert_int_equal(rpc_client_open(&c, "nosuch://x", 0), OD_EINVAL);
}

static void
test_silent_server_times_out(void **state)
{
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
	nng_socket rep;
	assert_int_equal(nng_rep0_open(&rep), 0);
	assert_int_equal(nng_listen(rep, url, NULL, 0), 0);
	rpc_client *c;
	assert_int_equal(rpc_client_open(&c, url, 0), 0);
	wait_connected(c);
	void *out;
	size_t out_len;
	assert_int_equal(
	    rpc_client_call_raw(c, "x", 1, &out, &out_len, 200), OD_ETIMEDOUT);
	rpc_client_close(c);
	nng_close(rep);
}

typedef struct blocked_call {
	rpc_client *cli;
	int code;
	int rv;
	char text[32];
} blocked_call;

static void *
blocked_call_main(void *arg)
{
	blocked_call *b = arg;
	T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__Test__EchoRequest e = OPSDESK__TEST__ECHO_REQUEST__INIT;
	e.text = "in flight";
	req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_BLOCK;
	req.block = &e;
	ProtobufCMessage *out = NULL;
	b->rv = rpc_client_call(b->cli, &req.base, REPLY_DESC, &out, 0);
	if (b->rv == 0) {
		T_REPLY *r = (T_REPLY *) out;
		b->code = reply_code(r);
		od_strlcpy(
		    b->text, r->echo ? r->echo->text : "", sizeof(b->text));
		free_reply(r);
	}
	return NULL;
}

static void *
stop_main(void *arg)
{
	rpc_server_stop(arg);
	return NULL;
}

static void
test_stop_with_requests_in_flight(void **state)
{
	fixture *f = *state;
	enum { N = 3 };
	pthread_t th[N], stopper;
	blocked_call b[N];
	blocked = 0;
	released = false;
	for (int i = 0; i < N; i++) {
		b[i] = (blocked_call) { f->cli, -1, -1, "" };
		assert_int_equal(
		    pthread_create(&th[i], NULL, blocked_call_main, &b[i]), 0);
	}
	pthread_mutex_lock(&block_mtx);
	while (blocked < N) {
		pthread_cond_wait(&block_cv, &block_mtx);
	}
	pthread_mutex_unlock(&block_mtx);
	/* Stop while all three handlers are inside. */
	assert_int_equal(pthread_create(&stopper, NULL, stop_main, f->srv), 0);
	/* Not a wait for work: rpc_server_stop shows nothing to poll while
	 * it waits for the handlers; the pause only makes it likely that
	 * the stop has begun, and the answers below hold either way. */
	usleep(50000);
	pthread_mutex_lock(&block_mtx);
	released = true;
	pthread_cond_broadcast(&block_cv);
	pthread_mutex_unlock(&block_mtx);
	pthread_join(stopper, NULL);
	f->srv = NULL;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(b[i].rv, 0); /* answered, not dropped */
		assert_int_equal(b[i].code, 0);
		assert_string_equal(b[i].text, "in flight");
	}
	/* Stopped: nothing answers now. */
	void *out;
	size_t out_len;
	int rv = rpc_client_call_raw(f->cli, "", 0, &out, &out_len, 300);
	assert_true(rv == OD_EUNAVAIL || rv == OD_ETIMEDOUT);
}

static void
test_bad_options(void **state)
{
	fixture *f = *state;
	rpc_server *s = NULL;
	rpc_server_options o;
	server_options(f, &o);
	o.url = NULL;
	assert_int_equal(rpc_server_start(&s, &o), OD_EINVAL);
	server_options(f, &o);
	static const rpc_method typo[]
	    = { { "ecko", RPC_READ, false, h_echo } };
	o.methods = typo;
	o.n_methods = 1;
	assert_int_equal(rpc_server_start(&s, &o), OD_EINVAL);
	/* Messages that do not follow the conventions. */
	server_options(f, &o);
	o.reply_desc = &opsdesk__test__echo_reply__descriptor;
	assert_int_equal(rpc_server_start(&s, &o), OD_EINVAL);
	/* The port is taken by the fixture's server. */
	server_options(f, &o);
	assert_int_not_equal(rpc_server_start(&s, &o), 0);
	rpc_server_stop(NULL);
}

static void
test_helpers(void **state)
{
	assert_string_equal(rpc_error_code_name(0), "OK");
	assert_string_equal(
	    rpc_error_code_name(OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND),
	    "NOT_FOUND");
	assert_string_equal(rpc_error_code_name(9999), "UNKNOWN");
	T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__Test__EchoRequest e = OPSDESK__TEST__ECHO_REQUEST__INIT;
	Opsdesk__V1__PingRequest p = OPSDESK__V1__PING_REQUEST__INIT;
	assert_null(rpc_oneof_name(&req.base));
	assert_int_equal(rpc_request_set_method(&req.base, "get", &e.base), 0);
	assert_int_equal(
	    req.method_case, OPSDESK__TEST__TEST_REQUEST__METHOD_GET);
	assert_ptr_equal(req.get, &e);
	assert_string_equal(rpc_oneof_name(&req.base), "get");
	assert_int_equal(
	    rpc_request_set_method(&req.base, "nope", &e.base), OD_ENOTFOUND);
	/* request_id is no method; the message type must match */
	assert_int_equal(
	    rpc_request_set_method(&req.base, "request_id", &e.base),
	    OD_ENOTFOUND);
	assert_int_equal(
	    rpc_request_set_method(&req.base, "echo", &p.base), OD_EINVAL);
	assert_non_null(rpc_method_field(REQ_DESC, "put"));
	assert_null(rpc_method_field(REQ_DESC, "actor"));
	T_REPLY r = OPSDESK__TEST__TEST_REPLY__INIT;
	assert_null(rpc_reply_error(&r.base));
	assert_null(rpc_reply_error(NULL));
}

/* A service calling a peer as itself: the actor it sets is the one the
 * peer checks, and an Error reply is OD_ERPC with no reply left over. */
static void
test_call_peer(void **state)
{
	fixture *f = *state;
	T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__V1__Actor user = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__Actor self = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__Test__EchoRequest e = OPSDESK__TEST__ECHO_REQUEST__INIT;
	Opsdesk__Test__EchoReply er = OPSDESK__TEST__ECHO_REPLY__INIT;
	ProtobufCMessage *out = NULL;

	user.user_id = 7;
	self.is_admin = true;
	e.text = "peer";
	assert_int_equal(
	    rpc_request_set_method(&req.base, "admin", &e.base), 0);
	assert_int_equal(rpc_request_set_actor(&req.base, &user), 0);
	assert_ptr_equal(req.actor, &user);
	assert_int_equal(
	    rpc_client_call_peer(f->cli, &req.base, REPLY_DESC, &out, 0),
	    OD_ERPC);
	assert_null(out);
	assert_int_equal(rpc_request_set_actor(&req.base, &self), 0);
	assert_int_equal(
	    rpc_client_call_peer(f->cli, &req.base, REPLY_DESC, &out, 0), 0);
	assert_non_null(out);
	assert_string_equal(((T_REPLY *) out)->echo->text, "peer");
	free_reply((T_REPLY *) out);
	assert_int_equal(
	    rpc_client_call_peer(NULL, &req.base, REPLY_DESC, &out, 0),
	    OD_EUNAVAIL);
	/* A message without an actor field is refused, not written into. */
	assert_int_equal(rpc_request_set_actor(&er.base, &self), OD_ENOTFOUND);
}

/*
 * Writes that fill the map: the store aborts the batch, grows the map and
 * runs the jobs again. Every reply still says what was stored, once, and
 * the idempotency cache still answers repeats without the handler.
 */
static void
test_writes_survive_map_growth(void **state)
{
	fixture *f = *state;
	rpc_server_stop(f->srv);
	store_close(f->st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/*", f->dir);
	assert_int_equal(system(cmd), 0);
	open_store_sized(f, true, 256 * 1024);
	start_server(f);
	wait_connected(f->cli);

	enum { N = 24 };
	static uint8_t blob[32 * 1024];
	memset(blob, 'b', sizeof(blob));
	for (int i = 0; i < N; i++) {
		char id[32], text[32];
		snprintf(id, sizeof(id), "grow-%d", i);
		snprintf(text, sizeof(text), "g%d", i);
		T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
		Opsdesk__Test__EchoRequest e
		    = OPSDESK__TEST__ECHO_REQUEST__INIT;
		e.text = text;
		e.blob.data = blob;
		e.blob.len = sizeof(blob);
		req.request_id = id;
		req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_PUT;
		req.put = &e;
		ProtobufCMessage *out = NULL;
		assert_int_equal(
		    rpc_client_call(f->cli, &req.base, REPLY_DESC, &out, 0),
		    0);
		T_REPLY *r = (T_REPLY *) out;
		assert_int_equal(reply_code(r), 0);
		assert_int_equal(r->echo->count, 1);
		assert_string_equal(r->echo->text, text);
		free_reply(r);
	}
	store_stats st;
	store_get_stats(f->st, &st);
	assert_true(st.map_grows >= 1);
	int runs = atomic_load(&handler_runs);
	assert_true(runs > N); /* some ran again after a growth */
	/* The writes above had no actor: user 0 repeats. */
	T_REPLY *r = call_as(f->cli, 0, "put", "grow-0", "g0", false, 0);
	assert_int_equal(r->echo->count, 1); /* the cached first reply */
	free_reply(r);
	assert_int_equal(atomic_load(&handler_runs), runs);
	r = call(f->cli, "get", NULL, "g7", false, 0);
	assert_int_equal(r->echo->count, 1);
	free_reply(r);
}

/* Receive one event frame (bounded wait) and unpack it. */
static Opsdesk__V1__Envelope *
recv_event(nng_socket sub)
{
	nng_msg *m = NULL;
	const char *topic;
	size_t tlen, blen;
	const uint8_t *body;
	assert_int_equal(nng_recvmsg(sub, &m, 0), 0);
	assert_int_equal(bus_frame_split(nng_msg_body(m), nng_msg_len(m),
	                     &topic, &tlen, &body, &blen),
	    0);
	assert_memory_equal(topic, "ops.put", tlen);
	Opsdesk__V1__Envelope *env
	    = opsdesk__v1__envelope__unpack(NULL, blen, body);
	assert_non_null(env);
	nng_msg_free(m);
	return env;
}

/* A write's event goes out after its commit, never for a failed or
 * replayed request, with the request id as correlation id. */
static void
test_publish_after_commit(void **state)
{
	fixture *f = *state;
	char url[64];
	nng_socket sub;
	bus_publisher *pub;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
	/* The test listens in the relay's place. */
	assert_int_equal(nng_sub0_open(&sub), 0);
	assert_int_equal(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	assert_int_equal(nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_listen(sub, url, NULL, 0), 0);
	assert_int_equal(
	    bus_publisher_open(&pub, url, "rpc_test", "t1", NULL), 0);
	int64_t end = od_mono_ms() + 5000;
	while (!bus_publisher_connected(pub) && od_mono_ms() < end) {
		usleep(1000);
	}
	assert_true(bus_publisher_connected(pub));
	rpc_server_stop(f->srv);
	rpc_server_options o;
	server_options(f, &o);
	o.publisher = pub;
	assert_int_equal(rpc_server_start(&f->srv, &o), 0);
	wait_connected(f->cli);

	T_REPLY *r = call(f->cli, "fail", "req-f", "k1", false, 0);
	assert_int_not_equal(reply_code(r), 0);
	free_reply(r);
	r = call(f->cli, "put", "req-p", "k2", false, 0);
	assert_int_equal(reply_code(r), 0);
	free_reply(r);
	r = call(f->cli, "put", "req-p", "k2", false, 0); /* replayed */
	free_reply(r);
	r = call(f->cli, "put", "req-q", "k3", false, 0);
	free_reply(r);
	/* In order: req-p then req-q; nothing for the failure or the
	 * replay. */
	Opsdesk__V1__Envelope *env = recv_event(sub);
	assert_string_equal(env->correlation_id, "req-p");
	assert_string_equal(env->gateway->text, "k2");
	assert_string_equal(env->source, "rpc_test");
	assert_int_equal(env->seq, 1);
	opsdesk__v1__envelope__free_unpacked(env, NULL);
	env = recv_event(sub);
	assert_string_equal(env->correlation_id, "req-q");
	assert_int_equal(env->seq, 2);
	opsdesk__v1__envelope__free_unpacked(env, NULL);
	assert_int_equal(bus_publisher_seq(pub), 2);

	rpc_server_stop(f->srv); /* before the publisher it borrows */
	f->srv = NULL;
	bus_publisher_close(pub);
	nng_close(sub);
}

/* The socket-less path the fuzz target uses answers like the server. */
static void
test_sync_handle(void **state)
{
	fixture *f = *state;
	rpc_server *s;
	rpc_server_options o;
	server_options(f, &o);
	o.url = NULL;
	assert_int_equal(rpc__server_create(&s, &o), 0);
	T_REQ req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__Test__EchoRequest e = OPSDESK__TEST__ECHO_REQUEST__INIT;
	e.text = "sync";
	req.request_id = "sync-1";
	req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_PUT;
	req.put = &e;
	uint8_t buf[64];
	size_t len = opsdesk__test__test_request__pack(&req, buf);
	for (int i = 0; i < 2; i++) {
		uint8_t *out;
		size_t out_len;
		assert_int_equal(
		    rpc__server_handle(s, buf, len, &out, &out_len), 0);
		T_REPLY *r
		    = opsdesk__test__test_reply__unpack(NULL, out_len, out);
		free(out);
		assert_int_equal(reply_code(r), 0);
		assert_int_equal(r->echo->count, 1);
		free_reply(r);
	}
	assert_int_equal(atomic_load(&handler_runs), 1);
	rpc_server_stop(s);
}

int
main(void)
{
	log_init("rpc_test", "t", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_no_server_unavailable),
		cmocka_unit_test(test_silent_server_times_out),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_round_trip_and_ping),
		T(test_errors),
		T(test_call_fail_mapping),
		T(test_write_needs_request_id),
		T(test_idempotent_writes),
		T(test_idem_keyed_by_actor),
		T(test_idem_legacy_key),
		T(test_write_error_discards),
		T(test_idem_pruned_after_ttl),
		T(test_concurrent_writes_group_commit),
		T(test_concurrent_clients_do_not_stall),
		T(test_garbage_gets_malformed),
		T(test_oversized_drops_connection),
		T(test_stop_with_requests_in_flight),
		T(test_bad_options),
		T(test_sync_handle),
		T(test_publish_after_commit),
		T(test_writes_survive_map_growth),
		T(test_call_peer),
#undef T
	};
	/* TEST_FILTER=test_name runs one test (a glob), for debugging. */
	if (getenv("TEST_FILTER") != NULL) {
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	}
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	/* Let NNG reap what closed sockets left, so the leak checker sees
	 * a clean exit. */
	nng_fini();
	return failed;
}
