/*
 * fuzz_rpc_request — arbitrary bytes through the rpc server's decode and
 * dispatch path (rpc__server_handle: the same code a socket request runs,
 * without sockets) for the test service of common/rpc/rpc_test.proto, on
 * a store in a temp dir. Checks, for every input:
 *   - the reply decodes as a TestReply;
 *   - bytes that do not decode get MALFORMED, and nothing else does;
 *   - a non-admin actor never gets past the admin-only method;
 *   - a write without a request id is refused and runs no handler;
 *   - a repeated write request id answers the first reply again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "rpc_impl.h"
#include "rpc_test.pb-c.h"
#include "util/util.h"

typedef Opsdesk__Test__TestRequest test_req;
typedef Opsdesk__Test__TestReply test_reply;

static int handler_runs;

static int
h_echo(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const test_req *r = (const test_req *) req;
	test_reply *out = (test_reply *) reply;
	Opsdesk__Test__EchoReply *e = rpc_call_alloc(c, sizeof(*e));
	if (e == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__test__echo_reply__init(e);
	e->text = rpc_call_strdup(c, r->echo->text); /* members share */
	e->blob = r->echo->blob;
	out->result_case = OPSDESK__TEST__TEST_REPLY__RESULT_ECHO;
	out->echo = e;
	return 0;
}

/* Count writes per text, so a replayed id shows in the reply. */
static int
h_put(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const test_req *r = (const test_req *) req;
	store *st = rpc_call_arg(c);
	const char *key = r->put->text;
	size_t klen = strlen(key);
	MDB_val v;
	uint8_t val[8];
	uint64_t n = 1;

	handler_runs++;
	if (klen == 0 || klen > 256) {
		return rpc_call_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
		    "text must be 1 to 256 bytes");
	}
	if (store_get(rpc_call_mdb(c), store_db(st, 0), key, klen, &v) == 0
	    && v.mv_size == 8) {
		n += od_get_be64(v.mv_data);
	}
	od_put_be64(val, n);
	int rv = store_put(
	    rpc_call_txn(c), store_db(st, 0), key, klen, val, sizeof(val));
	if (rv != 0) {
		return rv;
	}
	if ((rv = h_echo(c, req, reply)) == 0) {
		((test_reply *) reply)->echo->count = n;
	}
	return rv;
}

static int
h_fail(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	int rv = h_put(c, req, reply);
	return rv != 0
	    ? rv
	    : rpc_call_error(c, OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
	        "fails after writing");
}

static const rpc_method methods[] = {
	{ "echo", RPC_READ, false, h_echo },
	{ "put", RPC_WRITE, false, h_put },
	{ "fail", RPC_WRITE, false, h_fail },
	{ "admin", RPC_READ, true, h_echo },
	{ "get", RPC_READ, false, h_echo },
};

static char dir[64];
static store *st;
static rpc_server *srv;

static void
cleanup(void)
{
	char cmd[128];
	rpc_server_stop(srv);
	store_close(st);
	if (dir[0] != 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "could not remove %s\n", dir);
		}
	}
}

static void
setup_once(void)
{
	static const char *const dbs[] = { "data", NULL };
	store_options so = { 0 };
	rpc_server_options o = { 0 };

	log_init("fuzz_rpc_request", "fuzz", LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/fuzz_rpc.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		abort();
	}
	so.path = dir;
	so.dbs = dbs;
	so.nosync = true;
	if (store_open(&st, &so) != 0) {
		abort();
	}
	rpc_server_options_init(&o, NULL,
	    &opsdesk__test__test_request__descriptor,
	    &opsdesk__test__test_reply__descriptor, methods,
	    sizeof(methods) / sizeof(methods[0]), st);
	o.store = st;
	o.service = "fuzz";
	o.workers = 1;
	if (rpc__server_create(&srv, &o) != 0) {
		abort();
	}
	atexit(cleanup);
}

static test_reply *
handle(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	if (rpc__server_handle(srv, data, size, &out, &out_len) != 0) {
		abort(); /* every input gets an answer */
	}
	test_reply *r = opsdesk__test__test_reply__unpack(NULL, out_len, out);
	free(out);
	if (r == NULL) {
		abort();
	}
	return r;
}

static int
code_of(const test_reply *r)
{
	return r->error != NULL ? (int) r->error->code : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (srv == NULL) {
		setup_once();
	}
	test_req *req = opsdesk__test__test_request__unpack(NULL, size, data);
	int runs = handler_runs;
	test_reply *r = handle(data, size);
	int code = code_of(r);

	if ((req == NULL)
	    != (code == OPSDESK__V1__ERROR_CODE__ERROR_CODE_MALFORMED)) {
		abort(); /* MALFORMED exactly for what does not decode */
	}
	if (req != NULL
	    && req->method_case == OPSDESK__TEST__TEST_REQUEST__METHOD_ADMIN
	    && (req->actor == NULL || !req->actor->is_admin)
	    && code != OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED) {
		abort();
	}
	bool write = req != NULL
	    && (req->method_case == OPSDESK__TEST__TEST_REQUEST__METHOD_PUT
	        || req->method_case
	            == OPSDESK__TEST__TEST_REQUEST__METHOD_FAIL);
	if (write && req->request_id[0] == 0
	    && (code != OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT
	        || handler_runs != runs)) {
		abort();
	}
	if (write && code == 0) {
		/* The same request again: the cached reply, no handler. */
		runs = handler_runs;
		test_reply *again = handle(data, size);
		if (handler_runs != runs || code_of(again) != 0
		    || again->result_case != r->result_case
		    || (r->echo != NULL
		        && again->echo->count != r->echo->count)) {
			abort();
		}
		opsdesk__test__test_reply__free_unpacked(again, NULL);
	}
	opsdesk__test__test_reply__free_unpacked(r, NULL);
	opsdesk__test__test_request__free_unpacked(req, NULL);
	return 0;
}
