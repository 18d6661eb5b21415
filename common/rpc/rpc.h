/*
 * rpc — protobuf request/reply over NNG REQ/REP.
 *
 * Conventions every service's messages follow (see the .proto files in
 * proto/):
 *   Request: field 1 `string request_id`, field 2 `Actor actor`, and a
 *            oneof `method` whose member names are the method names;
 *   Reply:   field 1 `Error error`, and a oneof `result`;
 *   member `ping` (PingRequest/PingReply) exists in both and is answered
 *   by the server itself.
 *
 * The server keeps a pool of nng contexts. Received requests are decoded
 * (bytes that do not decode get a MALFORMED Error reply, an empty or
 * unknown method UNIMPLEMENTED; never a crash) and dispatched by method.
 * A message over max_msg never reaches the server: NNG closes that
 * peer's connection (NNG_OPT_RECVMAXSZ), so the peer sees no reply and
 * its call times out; other peers are not affected.
 *   RPC_READ  handlers run on a small worker pool with a read txn;
 *   RPC_WRITE handlers run on the store's writer thread inside the
 *             batch's txn (group commit); the reply is sent only after
 *             the commit. The reply bytes are stored under the actor's
 *             user id and the request id in the same txn, so a repeated
 *             request id from the same actor gets the first reply back
 *             and applies nothing (NNG's REQ resends); from another actor
 *             it is that actor's own request (no one reads another's
 *             reply by reusing an id).
 * Per-method counters and latency histograms go to the metrics registry:
 * opsdesk_rpc_requests_total{method,code}, opsdesk_rpc_duration_seconds.
 */
#ifndef OPSDESK_RPC_H
#define OPSDESK_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "common.pb-c.h"
#include "metrics/metrics.h"
#include "store/store.h"

#define RPC_DEFAULT_MAX_MSG    (1024 * 1024)
#define RPC_DEFAULT_TIMEOUT_MS 3000

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

typedef enum rpc_kind { RPC_READ = 0, RPC_WRITE = 1 } rpc_kind;

/*
 * A method handler. req is the whole decoded Request (borrowed); reply is
 * the whole Reply, zero-initialised: set its result oneof (case and
 * member). Allocate nested messages and strings with rpc_call_alloc /
 * rpc_call_strdup (freed after the reply is packed). Return 0, or the
 * value of rpc_call_error() to answer an Error and (for writes) discard
 * the txn's changes. Write handlers may run twice (map growth): effects
 * outside the txn only through rpc_call_publish / store_txn_on_commit.
 */
typedef int (*rpc_handler_fn)(
    rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply);

typedef struct rpc_method {
	const char *name; /* the oneof member name: "create", "list_mine" */
	rpc_kind kind;
	bool admin_only; /* answered PERMISSION_DENIED unless actor.is_admin */
	rpc_handler_fn fn;
} rpc_method;

typedef struct rpc_server_options {
	const char *url; /* "tcp://127.0.0.1:7410" */
	const ProtobufCMessageDescriptor *request_desc;
	const ProtobufCMessageDescriptor *reply_desc;
	const rpc_method *methods;
	size_t n_methods;
	store *store;             /* required for RPC_WRITE and reads' txn */
	bus_publisher *publisher; /* for rpc_call_publish; may be NULL */
	metrics *metrics;         /* may be NULL */
	void *arg;                /* rpc_call_arg() */
	const char *service;      /* for ping: executable name */
	const char *instance;
	const char *shard; /* ping's shard, may be NULL */
	unsigned contexts; /* concurrent requests; 0: 256 */
	unsigned workers;  /* read threads; 0: 4 */
	size_t max_msg;    /* 0: RPC_DEFAULT_MAX_MSG */
	/* Idempotency entries older than this are pruned; 0: 24 h. */
	int64_t idem_ttl_ms;
} rpc_server_options;

/* Zero *o and set the fields every server has (all borrowed); the rest
 * (store, publisher, metrics, service, ...) are set by the caller, or by
 * runtime_rpc_options in a service. */
void rpc_server_options_init(rpc_server_options *o, const char *url,
    const ProtobufCMessageDescriptor *request_desc,
    const ProtobufCMessageDescriptor *reply_desc, const rpc_method *methods,
    size_t n_methods, void *arg);
int rpc_server_start(rpc_server **out, const rpc_server_options *opt);
/* Stop receiving, answer what is in flight, free. NULL-safe. */
void rpc_server_stop(rpc_server *s);

/* ---- inside a handler ---- */
void *rpc_call_arg(rpc_call *c);
/* Zeroed memory freed with the call; NULL on OOM. */
void *rpc_call_alloc(rpc_call *c, size_t size);
/* A copy of s (NULL -> ""), freed with the call. */
char *rpc_call_strdup(rpc_call *c, const char *s);
char *rpc_call_printf(rpc_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Keep an unpacked message until the call ends (then freed with
 * protobuf_c_message_free_unpacked). Returns m. */
void *rpc_call_keep(rpc_call *c, ProtobufCMessage *m);
/* The request's actor (an empty one when absent). Borrowed. */
const Opsdesk__V1__Actor *rpc_call_actor(rpc_call *c);
const char *rpc_call_request_id(rpc_call *c);
const char *rpc_call_method(rpc_call *c);
/* The write txn (RPC_WRITE) or NULL. */
store_txn *rpc_call_txn(rpc_call *c);
/* A txn to read with: the write txn's, or the read txn. */
MDB_txn *rpc_call_mdb(rpc_call *c);
/* od_now_ms() as of the call (one clock per call). */
int64_t rpc_call_now_ms(rpc_call *c);
/*
 * Answer with an Error: records code and message and returns OD_ERPC for
 * the handler to return.
 */
int rpc_call_error(rpc_call *c, Opsdesk__V1__ErrorCode code, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
/*
 * The one mapping from an od_err to an Error reply, for every handler:
 *   OD_EINVAL INVALID_ARGUMENT, OD_ENOTFOUND NOT_FOUND, OD_EPERM
 *   PERMISSION_DENIED, OD_EEXIST ALREADY_EXISTS, OD_ESTATE
 *   FAILED_PRECONDITION, OD_ELIMIT RESOURCE_EXHAUSTED, OD_ETOOBIG
 *   TOO_LARGE, OD_EUNAVAIL UNAVAILABLE, OD_ETIMEDOUT DEADLINE_EXCEEDED,
 *   OD_EMALFORMED MALFORMED
 * with the message fmt (NULL: od_strerror(rv)), returning OD_ERPC. 0 and
 * OD_ERPC (already answered) come back unchanged, and so does every other
 * code (storage, memory, map full): rpc retries a full map in a bigger
 * one and answers the rest itself, so store errors read the same from
 * every service (fmt, if any, is then logged as a warning). Use:
 *	return rpc_call_fail(c, rv, "T-%llu ...", id);
 */
int rpc_call_fail(rpc_call *c, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The message of the request's method (its `method` oneof member, e.g.
 * the CreateTicketRequest of "create"). Borrowed for the call. */
const void *rpc_call_params(rpc_call *c);
/* Set the reply's `result` oneof to member `member` holding msg (a
 * message of that member's type, borrowed: allocate it with the call).
 * Returns 0, or OD_EINTERNAL for a wrong member or type (a bug, answered
 * INTERNAL). Use: return rpc_call_result(c, "ticket", t); */
int rpc_call_result(rpc_call *c, const char *member, void *msg);
/*
 * Publish an event (env borrowed, payload packed now) after the reply's
 * commit (writes) or at once (reads). The correlation id is the request
 * id. A failed or replayed write publishes nothing. Without a publisher
 * in the options the event is dropped and 0 returned.
 */
int rpc_call_publish(
    rpc_call *c, const char *topic, const Opsdesk__V1__Envelope *env);

/* ---- client ---- */

typedef struct rpc_client rpc_client;

/*
 * Dial url without blocking (a service that is not up is retried in the
 * background). timeout_ms is the default per call (0: 3000). Thread-safe:
 * each call uses its own nng context.
 */
int rpc_client_open(rpc_client **out, const char *url, int timeout_ms);
/* NULL-safe. No call may be in progress on another thread. */
void rpc_client_close(rpc_client *c);
/* True when a connection to the service is up. */
bool rpc_client_connected(rpc_client *c);
const char *rpc_client_url(rpc_client *c);

/*
 * Send req (borrowed; an empty request_id is filled with a fresh one) and
 * wait for the reply, decoded with reply_desc into *out (caller frees
 * with protobuf_c_message_free_unpacked). Returns 0 when a reply arrived
 * (it may carry an Error: check it), OD_EUNAVAIL at once when no
 * connection to the service is up (within 250 ms of rpc_client_open a
 * call first waits for the first connection, at most timeout_ms, so
 * open-then-call works), OD_ETIMEDOUT, OD_EMALFORMED for
 * an undecodable reply, OD_ETOOBIG (nothing sent) over
 * RPC_DEFAULT_MAX_MSG. timeout_ms 0: the client's default.
 */
int rpc_client_call(rpc_client *c, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **out,
    int timeout_ms);
/* Raw bytes in and out (opsctl, tests). *out freed with free(). */
int rpc_client_call_raw(rpc_client *c, const void *req, size_t len, void **out,
    size_t *out_len, int timeout_ms);

/* ---- helpers on the conventions ---- */

/* The Error of a decoded reply (field `error`), or NULL. Borrowed. */
const Opsdesk__V1__Error *rpc_reply_error(const ProtobufCMessage *reply);
/* Set the request's `method` oneof to member `name` holding msg
 * (borrowed). OD_ENOTFOUND when no such member. */
int rpc_request_set_method(
    ProtobufCMessage *req, const char *name, ProtobufCMessage *msg);
/* The descriptor of method `name`'s message in a Request, or NULL. */
const ProtobufCFieldDescriptor *rpc_method_field(
    const ProtobufCMessageDescriptor *req_desc, const char *name);
/* The name of the set oneof member of a message (method or result), or
 * NULL when none is set. */
const char *rpc_oneof_name(const ProtobufCMessage *m);
/* ErrorCode name without the prefix: "NOT_FOUND". */
const char *rpc_error_code_name(int code);

/* ---- calling a peer service as this service (rpc_peer.c) ---- */

/* Set the request's `actor` (field 2 of every Request) to actor
 * (borrowed: it must outlive the call). OD_ENOTFOUND when req has no
 * Actor field `actor`. */
int rpc_request_set_actor(
    ProtobufCMessage *req, const Opsdesk__V1__Actor *actor);
/*
 * rpc_client_call for service-to-service calls, where an Error reply is a
 * failure: a reply carrying an Error with a code is logged as a warning
 * (url, method, code, message), freed, and OD_ERPC returned. c may be NULL
 * (OD_EUNAVAIL: the peer is not configured). *out, set only on 0, is
 * freed with protobuf_c_message_free_unpacked.
 */
int rpc_client_call_peer(rpc_client *c, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **out,
    int timeout_ms);

#endif /* OPSDESK_RPC_H */
