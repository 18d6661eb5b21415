/*
 * rpc server: a pool of rep0 contexts, each a small state machine
 * (receive -> work -> send). Decoding and the answers that need no
 * handler (errors, ping) happen on NNG's callback thread; read handlers
 * run on a worker pool, write handlers on the store's writer thread inside
 * its group commit, with the reply cached under the actor and request id
 * in the same transaction.
 */
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "log/log.h"
#include "rpc_impl.h"
#include "util/util.h"

#define RPC_DEFAULT_CONTEXTS    256
#define RPC_DEFAULT_WORKERS     4
#define RPC_DEFAULT_IDEM_TTL_MS (24LL * 3600 * 1000)
/* Idempotency entries are pruned by a write job at most this often, and
 * at most this many per job so one job never holds the writer long. */
#define RPC_PRUNE_INTERVAL_MS (60LL * 1000)
#define RPC_PRUNE_MAX         10000
/* Request ids are LMDB keys (max 511 bytes, with the time prefix). */
#define RPC_MAX_REQUEST_ID 256
/* An idempotency key: the actor's user id (8 bytes) and the request id.
 * Entries written before the key had the user id are plain request ids;
 * they are pruned the same way (time || key) and simply never match. */
#define RPC_IDEM_KEY_MAX (8 + RPC_MAX_REQUEST_ID)
/* How long stop waits for in-flight requests to be answered before it
 * closes the socket under them. */
#define RPC_STOP_GRACE_MS 5000

/* An allocation freed with the call. */
typedef struct arena_blk {
	struct arena_blk *next;
	max_align_t data[];
} arena_blk;

typedef struct keep_node {
	struct keep_node *next;
	ProtobufCMessage *msg;
} keep_node;

typedef enum ctx_state {
	CTX_IDLE = 0, /* not armed (stopped) */
	CTX_RECV,
	CTX_WORK,
	CTX_SEND,
} ctx_state;

typedef struct rpc_ctx rpc_ctx;

/* Per-method metrics, index n_methods is ping, n_methods+1 unknown. */
typedef struct method_metrics {
	const char *name;
	metric *ok;
	metric *duration;
} method_metrics;

struct rpc_call {
	rpc_server *s;
	rpc_ctx *ctx; /* NULL for rpc__server_handle */
	ProtobufCMessage *req;
	ProtobufCMessage *reply; /* reply_desc->sizeof_message, reused */
	const rpc_method *m;
	method_metrics *mm;
	store_txn *txn;
	MDB_txn *rtxn;
	int64_t now_ms;
	uint64_t t0_ns;
	int err_code;
	char err_msg[512];
	arena_blk *arena;
	keep_node *keeps;
	uint8_t *out; /* the packed reply */
	size_t out_len;
	int sync_rv;         /* rpc__server_handle's write result */
	rpc_call *next_read; /* the worker queue */
	/* The authenticated caller ("" when auth is off). */
	char identity[AUTH_MAX_IDENTITY + 1];
};

struct rpc_ctx {
	rpc_server *s;
	nng_ctx ctx;
	nng_aio *aio;
	ctx_state state; /* under s->mtx */
	rpc_call call;
};

struct rpc_server {
	rpc_server_options opt;
	char *service;
	char *instance;
	char *shard;
	int64_t started_ms;
	const ProtobufCFieldDescriptor *f_request_id;
	const ProtobufCFieldDescriptor *f_actor;
	const ProtobufCFieldDescriptor *f_error;
	const ProtobufCFieldDescriptor *f_ping_req;
	const ProtobufCFieldDescriptor *f_ping_reply;
	uint32_t *method_ids; /* the oneof member id of each method */
	auth *auth;           /* the process's; NULL: off */
	method_metrics *mm;   /* n_methods + 2 */
	metrics *metrics;

	bool sock_open;
	nng_socket sock;
	nng_listener listener;
	rpc_ctx *ctxs;
	unsigned n_ctxs;

	pthread_mutex_t mtx;
	pthread_cond_t cv;      /* busy fell to 0 (wait_idle) */
	pthread_cond_t work_cv; /* a read is queued, or workers stop */
	bool stopping;
	unsigned busy; /* requests between receive and sent, plus prunes */
	rpc_call *rq_head, *rq_tail; /* read jobs waiting for a worker */
	pthread_t *workers;
	unsigned n_workers;
	bool workers_stop;

	atomic_llong last_prune_ms;
};

/* ---- the call's arena and accessors ---- */

void *
rpc_call_alloc(rpc_call *c, size_t size)
{
	if (c == NULL) {
		return NULL;
	}
	arena_blk *b = calloc(1, sizeof(*b) + (size ? size : 1));
	if (b == NULL) {
		return NULL;
	}
	b->next = c->arena;
	c->arena = b;
	return b->data;
}

char *
rpc_call_strdup(rpc_call *c, const char *s)
{
	if (s == NULL) {
		s = "";
	}
	size_t n = strlen(s);
	char *d = rpc_call_alloc(c, n + 1);
	if (d != NULL) {
		memcpy(d, s, n + 1);
	}
	return d;
}

char *
rpc_call_printf(rpc_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return NULL;
	}
	char *d = rpc_call_alloc(c, (size_t) n + 1);
	if (d != NULL) {
		va_start(ap, fmt);
		vsnprintf(d, (size_t) n + 1, fmt, ap);
		va_end(ap);
	}
	return d;
}

void *
rpc_call_keep(rpc_call *c, ProtobufCMessage *m)
{
	if (c == NULL || m == NULL) {
		return m;
	}
	keep_node *k = rpc_call_alloc(c, sizeof(*k));
	if (k == NULL) {
		/* Free it now rather than leak; the caller sees NULL. */
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	k->msg = m;
	k->next = c->keeps;
	c->keeps = k;
	return m;
}

void *
rpc_call_arg(rpc_call *c)
{
	return c != NULL ? c->s->opt.arg : NULL;
}

static const Opsdesk__V1__Actor empty_actor = OPSDESK__V1__ACTOR__INIT;

const Opsdesk__V1__Actor *
rpc_call_actor(rpc_call *c)
{
	if (c == NULL || c->req == NULL) {
		return &empty_actor;
	}
	const Opsdesk__V1__Actor *a
	    = *(void **) ((char *) c->req + c->s->f_actor->offset);
	return a != NULL ? a : &empty_actor;
}

const char *
rpc_call_request_id(rpc_call *c)
{
	if (c == NULL || c->req == NULL) {
		return "";
	}
	const char *id
	    = *(char **) ((char *) c->req + c->s->f_request_id->offset);
	return id != NULL ? id : "";
}

const char *
rpc_call_method(rpc_call *c)
{
	return c != NULL && c->mm != NULL ? c->mm->name : "";
}

store_txn *
rpc_call_txn(rpc_call *c)
{
	return c != NULL ? c->txn : NULL;
}

MDB_txn *
rpc_call_mdb(rpc_call *c)
{
	if (c == NULL) {
		return NULL;
	}
	return c->txn != NULL ? store_txn_mdb(c->txn) : c->rtxn;
}

int64_t
rpc_call_now_ms(rpc_call *c)
{
	return c != NULL ? c->now_ms : od_now_ms();
}

static void
call_set_error_v(rpc_call *c, int code, const char *fmt, va_list ap)
{
	c->err_code
	    = code != 0 ? code : OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL;
	vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
	/* Error messages are shown to the actor: no secret may leak. */
	log_redact(c->err_msg, sizeof(c->err_msg));
}

static void call_set_error(rpc_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
call_set_error(rpc_call *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	call_set_error_v(c, code, fmt, ap);
	va_end(ap);
}

int
rpc_call_error(rpc_call *c, Opsdesk__V1__ErrorCode code, const char *fmt, ...)
{
	if (c == NULL) {
		return OD_ERPC;
	}
	va_list ap;
	va_start(ap, fmt);
	call_set_error_v(c, (int) code, fmt, ap);
	va_end(ap);
	return OD_ERPC;
}

int
rpc_call_fail(rpc_call *c, int rv, const char *fmt, ...)
{
	Opsdesk__V1__ErrorCode code;

	switch (rv) {
	case OD_EINVAL:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT;
		break;
	case OD_ENOTFOUND:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND;
		break;
	case OD_EPERM:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED;
		break;
	case OD_EEXIST:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_ALREADY_EXISTS;
		break;
	case OD_ESTATE:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_FAILED_PRECONDITION;
		break;
	case OD_ELIMIT:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_RESOURCE_EXHAUSTED;
		break;
	case OD_ETOOBIG:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE;
		break;
	case OD_EUNAVAIL:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
		break;
	case OD_ETIMEDOUT:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_DEADLINE_EXCEEDED;
		break;
	case OD_EMALFORMED:
		code = OPSDESK__V1__ERROR_CODE__ERROR_CODE_MALFORMED;
		break;
	default:
		/* 0, OD_ERPC, and what rpc itself answers or retries; the
		 * handler's words for a storage error go to the log. */
		if (fmt != NULL && rv != 0 && rv != OD_ERPC
		    && rv != OD_EMAPFULL && rv != OD_ENOSPC) {
			char why[256];
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(why, sizeof(why), fmt, ap);
			va_end(ap);
			log_warn("rpc %s: %s: %s",
			    c != NULL ? c->m->name : "?", why,
			    od_strerror(rv));
		}
		return rv;
	}
	if (c == NULL) {
		return OD_ERPC;
	}
	if (fmt == NULL) {
		return rpc_call_error(c, code, "%s", od_strerror(rv));
	}
	va_list ap;
	va_start(ap, fmt);
	call_set_error_v(c, (int) code, fmt, ap);
	va_end(ap);
	return OD_ERPC;
}

const void *
rpc_call_params(rpc_call *c)
{
	const ProtobufCFieldDescriptor *f
	    = rpc_method_field(c->req->descriptor, c->m->name);
	if (f == NULL) {
		return NULL;
	}
	return *(void *const *) ((const char *) c->req + f->offset);
}

int
rpc_call_result(rpc_call *c, const char *member, void *msg)
{
	ProtobufCMessage *m = msg;
	const ProtobufCFieldDescriptor *f = rpc_method_field(
	    c->reply->descriptor, member); /* any oneof message member */
	if (f == NULL || m == NULL || m->descriptor != f->descriptor) {
		log_error("rpc %s: no result member %s of that type",
		    c->m->name, member);
		return OD_EINTERNAL;
	}
	*(uint32_t *) ((char *) c->reply + f->quantifier_offset) = f->id;
	*(void **) ((char *) c->reply + f->offset) = msg;
	return 0;
}

int
rpc_call_publish(
    rpc_call *c, const char *topic, const Opsdesk__V1__Envelope *env)
{
	if (c == NULL || topic == NULL || env == NULL) {
		return OD_EINVAL;
	}
	bus_publisher *p = c->s->opt.publisher;
	if (p == NULL) {
		return 0; /* a server without a bus (tests, tools) */
	}
	const char *rid = rpc_call_request_id(c);
	if (c->txn != NULL) {
		return bus_publish_on_commit(p, c->txn, topic, env, rid);
	}
	return bus_publish(p, topic, env, rid);
}

/* ---- one call, from bytes to reply bytes ---- */

/* Free what the call holds except the packed reply. */
static void
call_release(rpc_call *c)
{
	while (c->keeps != NULL) {
		keep_node *k = c->keeps;
		c->keeps = k->next;
		protobuf_c_message_free_unpacked(k->msg, NULL);
	}
	while (c->arena != NULL) {
		arena_blk *b = c->arena;
		c->arena = b->next;
		free(b);
	}
	if (c->req != NULL) {
		protobuf_c_message_free_unpacked(c->req, NULL);
		c->req = NULL;
	}
	c->txn = NULL;
	c->rtxn = NULL;
}

static void
reply_reset(rpc_call *c)
{
	protobuf_c_message_init(c->s->opt.reply_desc, c->reply);
}

/* Pack c->reply into c->out. */
static int
call_pack(rpc_call *c)
{
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	size_t len = protobuf_c_message_get_packed_size(c->reply);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL) {
		return OD_ENOMEM;
	}
	c->out_len = protobuf_c_message_pack(c->reply, buf);
	c->out = buf;
	return 0;
}

/* Replace whatever the handler built with an Error-only reply, packed. */
static int
call_pack_error(rpc_call *c)
{
	Opsdesk__V1__Error err = OPSDESK__V1__ERROR__INIT;
	err.code = (Opsdesk__V1__ErrorCode) c->err_code;
	err.message = c->err_msg;
	reply_reset(c);
	*(void **) ((char *) c->reply + c->s->f_error->offset) = &err;
	int rv = call_pack(c);
	reply_reset(c);
	return rv;
}

static void
call_begin(rpc_call *c)
{
	c->req = NULL;
	c->m = NULL;
	c->mm = &c->s->mm[c->s->opt.n_methods + 1]; /* "unknown" */
	c->txn = NULL;
	c->rtxn = NULL;
	c->err_code = 0;
	c->err_msg[0] = 0;
	c->identity[0] = 0;
	c->out = NULL;
	c->out_len = 0;
	c->t0_ns = od_mono_ns();
	c->now_ms = od_now_ms();
	reply_reset(c);
}

/* Metrics and logs once the reply bytes exist; frees the call's memory
 * (not c->out). */
static void
call_end(rpc_call *c)
{
	rpc_server *s = c->s;
	double secs = (double) (od_mono_ns() - c->t0_ns) / 1e9;
	if (c->err_code == 0) {
		metric_inc(c->mm->ok);
	} else if (s->metrics != NULL) {
		char labels[256];
		snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"",
		    c->mm->name, rpc_error_code_name(c->err_code));
		metric_inc(
		    metrics_counter(s->metrics, "opsdesk_rpc_requests_total",
		        "Requests answered", labels));
	}
	metric_observe(c->mm->duration, secs);
	if (c->err_code == OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL) {
		log_warn(
		    "rpc %s: internal error: %s", c->mm->name, c->err_msg);
	}
	call_release(c);
}

static void
fill_ping(rpc_call *c)
{
	rpc_server *s = c->s;
	Opsdesk__V1__PingReply *pr = rpc_call_alloc(c, sizeof(*pr));
	if (pr == NULL) {
		call_set_error(c, OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
		return;
	}
	opsdesk__v1__ping_reply__init(pr);
	pr->service = s->service;
	pr->version = OPSDESK_VERSION;
	pr->instance = s->instance;
	pr->started_ms = s->started_ms;
	pr->now_ms = c->now_ms;
	pr->shard = s->shard;
	*(uint32_t *) ((char *) c->reply + s->f_ping_reply->quantifier_offset)
	    = s->f_ping_reply->id;
	*(void **) ((char *) c->reply + s->f_ping_reply->offset) = pr;
}

typedef enum route {
	ROUTE_DONE, /* c->out holds the answer (or an error to pack) */
	ROUTE_READ,
	ROUTE_WRITE,
} route;

/*
 * Check the request's authentication header (auth on) or skip one (auth
 * off: a client with credentials talking to a server without). false:
 * refused, the call's error is set.
 */
static bool
call_authenticate(rpc_call *c, const void **buf, size_t *len)
{
	rpc_server *s = c->s;
	size_t off = 0;
	if (s->auth == NULL) {
		auth_header h;
		if (auth_header_parse(*buf, *len, &h) == 0) {
			off = h.len;
		}
	} else {
		char err[160];
		int rv = auth_verify(s->auth, *buf, *len, 0, c->identity, &off,
		    err, sizeof(err));
		if (rv != 0) {
			c->identity[0] = 0;
			log_warn(
			    "rpc: %s refused a request: %s", s->service, err);
			call_set_error(c,
			    OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED,
			    "unauthenticated: %s", err);
			return false;
		}
	}
	*buf = (const uint8_t *) *buf + off;
	*len -= off;
	return true;
}

/*
 * Decode and route a request. ROUTE_DONE: answer now (error or ping);
 * else run the handler the route names.
 */
static route
call_decode(rpc_call *c, const void *buf, size_t len)
{
	rpc_server *s = c->s;
	if (s->auth != NULL || auth_has_header(buf, len)) {
		if (!call_authenticate(c, &buf, &len)) {
			return ROUTE_DONE;
		}
	}
	c->req
	    = protobuf_c_message_unpack(s->opt.request_desc, NULL, len, buf);
	if (c->req == NULL) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_MALFORMED,
		    "the request does not decode as %s",
		    s->opt.request_desc->name);
		return ROUTE_DONE;
	}
	uint32_t id = *(
	    uint32_t *) ((char *) c->req + s->f_ping_req->quantifier_offset);
	if (id == 0) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNIMPLEMENTED,
		    "no method set (or one this service does not know)");
		return ROUTE_DONE;
	}
	if (id == s->f_ping_req->id) {
		c->mm = &s->mm[s->opt.n_methods];
		fill_ping(c);
		return ROUTE_DONE;
	}
	for (size_t i = 0; i < s->opt.n_methods; i++) {
		if (s->method_ids[i] == id) {
			c->m = &s->opt.methods[i];
			c->mm = &s->mm[i];
			break;
		}
	}
	if (c->m == NULL) {
		const ProtobufCFieldDescriptor *f
		    = protobuf_c_message_descriptor_get_field(
		        s->opt.request_desc, id);
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNIMPLEMENTED,
		    "method %s is not implemented", f ? f->name : "?");
		return ROUTE_DONE;
	}
	char why[160];
	if (!auth_rpc_allowed(c->identity[0] ? c->identity : NULL, s->service,
	        c->m->name, rpc_call_actor(c), why, sizeof(why))) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED,
		    "%s", why);
		return ROUTE_DONE;
	}
	if (c->m->admin_only && !rpc_call_actor(c)->is_admin) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED,
		    "%s is for admins only", c->m->name);
		return ROUTE_DONE;
	}
	if (c->m->kind == RPC_WRITE) {
		size_t idlen = strlen(rpc_call_request_id(c));
		if (idlen == 0 || idlen > RPC_MAX_REQUEST_ID) {
			call_set_error(c,
			    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
			    "a write needs a request_id of 1 to %d bytes",
			    RPC_MAX_REQUEST_ID);
			return ROUTE_DONE;
		}
		if (s->opt.store == NULL) {
			call_set_error(c,
			    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
			    "no store for write method %s", c->m->name);
			return ROUTE_DONE;
		}
		return ROUTE_WRITE;
	}
	return ROUTE_READ;
}

/* Turn the handler's return into the call's error state. */
static void
call_after_handler(rpc_call *c, int rv)
{
	if (rv != 0 && c->err_code == 0) {
		call_set_error(c, OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "%s failed: %s", c->m->name, od_strerror(rv));
	}
}

/* Pack whatever the call ended with: its error or its reply. */
static void
call_finish_packing(rpc_call *c)
{
	if (c->out != NULL && c->err_code == 0) {
		return; /* packed in the write job or from the cache */
	}
	int rv = c->err_code != 0 ? call_pack_error(c) : call_pack(c);
	if (rv != 0) {
		log_error("rpc %s: cannot pack the reply: %s", c->mm->name,
		    od_strerror(rv));
	}
}

static void
call_run_read(rpc_call *c)
{
	rpc_server *s = c->s;
	int rv = 0;
	if (s->opt.store != NULL
	    && (rv = store_read_begin(s->opt.store, &c->rtxn)) != 0) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE,
		    "store: %s", od_strerror(rv));
		return;
	}
	rv = c->m->fn(c, c->req, c->reply);
	call_after_handler(c, rv);
	/* Pack before the txn ends: replies may point into LMDB. */
	call_finish_packing(c);
	store_read_end(c->rtxn);
	c->rtxn = NULL;
}

/* ---- writes ---- */

/*
 * The idempotency key is the request id then the actor's user id: a
 * request id replayed by another actor is a new request of that actor,
 * never a way to read someone else's reply. The request id leads because
 * ids are made time-ordered (rpc_client_call, the gateway's update ids),
 * so a batch's entries share the tail leaf; led by the user id, each
 * write of a batch dirtied a leaf of its own, a third of the pages a
 * ticket create committed. Returns the key's length.
 */
static size_t
idem_key(uint8_t *key, rpc_call *c)
{
	const char *id = rpc_call_request_id(c);
	size_t idlen = strlen(id); /* <= RPC_MAX_REQUEST_ID: call_decode */
	memcpy(key, id, idlen);
	od_put_be64(key + idlen, (uint64_t) rpc_call_actor(c)->user_id);
	return idlen + 8;
}

/* The key older versions wrote (user id first): a request retried
 * across an upgrade still finds its reply until the entry expires. */
static size_t
idem_key_v1(uint8_t *key, rpc_call *c)
{
	const char *id = rpc_call_request_id(c);
	size_t idlen = strlen(id);
	od_put_be64(key, (uint64_t) rpc_call_actor(c)->user_id);
	memcpy(key + 8, id, idlen);
	return 8 + idlen;
}

/* The write job: replay a cached reply, or run the handler and cache. */
static int
write_job(store_txn *txn, void *arg)
{
	rpc_call *c = arg;
	rpc_server *s = c->s;
	store *st = s->opt.store;
	uint8_t key[8 + RPC_IDEM_KEY_MAX]; /* time || idem key */
	size_t klen = idem_key(key + 8, c);
	MDB_val v;
	int rv;

	/* The job may run again after the map grew: start clean. */
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	c->err_code = 0;
	c->err_msg[0] = 0;
	c->txn = txn;
	c->now_ms = store_txn_now_ms(txn);
	reply_reset(c);

	rv = store_get(
	    store_txn_mdb(txn), store_idem_db(st), key + 8, klen, &v);
	if (rv == OD_ENOTFOUND) {
		uint8_t old[RPC_IDEM_KEY_MAX];
		rv = store_get(store_txn_mdb(txn), store_idem_db(st), old,
		    idem_key_v1(old, c), &v);
	}
	if (rv == 0) {
		if (v.mv_size < 8) {
			call_set_error(c,
			    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
			    "corrupt idempotency entry");
			return OD_EIO;
		}
		c->out_len = v.mv_size - 8;
		c->out = malloc(c->out_len ? c->out_len : 1);
		if (c->out == NULL) {
			return OD_ENOMEM;
		}
		memcpy(c->out, (uint8_t *) v.mv_data + 8, c->out_len);
		return 0; /* the first reply; nothing applied */
	}
	if (rv != OD_ENOTFOUND) {
		return rv;
	}
	rv = c->m->fn(c, c->req, c->reply);
	if (rv == 0 && c->err_code != 0) {
		rv = OD_ERPC; /* an error must discard the changes */
	}
	if (rv != 0) {
		call_after_handler(c, rv);
		return rv;
	}
	if ((rv = call_pack(c)) != 0) {
		return rv;
	}
	uint8_t *val = malloc(8 + c->out_len);
	if (val == NULL) {
		return OD_ENOMEM;
	}
	od_put_be64(val, (uint64_t) c->now_ms);
	memcpy(val + 8, c->out, c->out_len);
	rv = store_put(
	    txn, store_idem_db(st), key + 8, klen, val, 8 + c->out_len);
	free(val);
	if (rv != 0) {
		return rv;
	}
	od_put_be64(key, (uint64_t) c->now_ms);
	return store_put(txn, store_idem_time_db(st), key, 8 + klen, "", 0);
}

/* Delete idempotency entries older than the ttl, oldest first. */
static int
prune_job(store_txn *txn, void *arg)
{
	rpc_server *s = arg;
	store *st = s->opt.store;
	MDB_txn *mt = store_txn_mdb(txn);
	int64_t cutoff = store_txn_now_ms(txn) - s->opt.idem_ttl_ms;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int n = 0, rv = 0;
	uint8_t key[8 + RPC_IDEM_KEY_MAX];

	if (mdb_cursor_open(mt, store_idem_time_db(st), &cur) != 0) {
		return OD_EIO;
	}
	/* Delete through the helpers (they track map-full), re-seeking the
	 * first key each time. */
	while (
	    n < RPC_PRUNE_MAX && mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0) {
		if (k.mv_size < 8 || k.mv_size > sizeof(key)
		    || (int64_t) od_get_be64(k.mv_data) >= cutoff) {
			break;
		}
		size_t klen = k.mv_size;
		memcpy(key, k.mv_data, klen);
		rv = store_del(
		    txn, store_idem_db(st), key + 8, klen - 8, NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			break;
		}
		if ((rv = store_del(
		         txn, store_idem_time_db(st), key, klen, NULL, 0))
		    != 0) {
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (n > 0) {
		log_debug("rpc: pruned %d idempotency entries", n);
	}
	return rv;
}

static void busy_done(rpc_server *s);

static void
prune_done(int rv, void *arg)
{
	rpc_server *s = arg;
	if (rv != 0) {
		log_warn("rpc: pruning idempotency entries failed: %s",
		    od_strerror(rv));
	}
	busy_done(s);
}

/* Submit a prune job when one is due (by the injectable clock). */
static void
maybe_prune(rpc_server *s)
{
	int64_t now = od_now_ms();
	long long last = atomic_load(&s->last_prune_ms);
	if (now - last < RPC_PRUNE_INTERVAL_MS && now >= last) {
		return;
	}
	if (!atomic_compare_exchange_strong(&s->last_prune_ms, &last, now)) {
		return; /* another thread just did */
	}
	pthread_mutex_lock(&s->mtx);
	s->busy++;
	pthread_mutex_unlock(&s->mtx);
	if (store_submit(s->opt.store, prune_job, s, prune_done, s) != 0) {
		busy_done(s);
	}
}

/* ---- sending ---- */

static void
busy_done(rpc_server *s)
{
	pthread_mutex_lock(&s->mtx);
	/* Only wait_idle waits for this: wake nobody on the busy path. */
	if (--s->busy == 0) {
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mtx);
}

/* Arm the context's receive again, unless the server stops. Called with
 * the request finished (sent or given up). */
static void
ctx_next(rpc_ctx *x)
{
	rpc_server *s = x->s;
	pthread_mutex_lock(&s->mtx);
	if (--s->busy == 0) {
		pthread_cond_broadcast(&s->cv);
	}
	if (s->stopping) {
		x->state = CTX_IDLE;
	} else {
		x->state = CTX_RECV;
		nng_ctx_recv(x->ctx, x->aio);
	}
	pthread_mutex_unlock(&s->mtx);
}

/* Send the call's packed reply on its context (any thread). */
static void
ctx_send_reply(rpc_ctx *x)
{
	rpc_call *c = &x->call;
	nng_msg *msg = NULL;
	int rv = c->out != NULL ? nng_msg_alloc(&msg, 0) : NNG_ENOMEM;
	if (rv == 0) {
		rv = nng_msg_append(msg, c->out, c->out_len);
	}
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	if (rv != 0) {
		/* The peer's REQ will resend or time out. */
		if (msg != NULL) {
			nng_msg_free(msg);
		}
		log_error("rpc: cannot build a reply: %s", nng_strerror(rv));
		ctx_next(x);
		return;
	}
	/*
	 * The send may complete (and the server look idle) before
	 * nng_ctx_send returns; closing the socket under a thread still
	 * inside it crashes NNG 1.5. So this thread counts as busy too.
	 */
	pthread_mutex_lock(&x->s->mtx);
	x->state = CTX_SEND;
	x->s->busy++;
	pthread_mutex_unlock(&x->s->mtx);
	nng_aio_set_msg(x->aio, msg);
	nng_ctx_send(x->ctx, x->aio);
	busy_done(x->s);
}

/* Finish a call: reply bytes, metrics, free, send. */
static void
call_complete(rpc_call *c)
{
	call_finish_packing(c);
	call_end(c);
	if (c->ctx != NULL) {
		ctx_send_reply(c->ctx);
	}
}

static void
write_done(int rv, void *arg)
{
	rpc_call *c = arg;
	if (rv != 0 && c->err_code == 0) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE,
		    "the store did not commit: %s", od_strerror(rv));
	}
	if (rv != 0) {
		free(c->out); /* never a reply that was not committed */
		c->out = NULL;
	}
	c->txn = NULL;
	c->sync_rv = rv;
	call_complete(c);
}

static void
call_submit_write(rpc_call *c)
{
	rpc_server *s = c->s;
	maybe_prune(s);
	int rv = store_submit(s->opt.store, write_job, c, write_done, c);
	if (rv != 0) {
		call_set_error(c,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE,
		    "the store is %s", od_strerror(rv));
		call_complete(c);
	}
}

/* ---- read workers ---- */

static void *
worker_main(void *arg)
{
	rpc_server *s = arg;
	pthread_mutex_lock(&s->mtx);
	for (;;) {
		while (s->rq_head == NULL && !s->workers_stop) {
			pthread_cond_wait(&s->work_cv, &s->mtx);
		}
		rpc_call *c = s->rq_head;
		if (c == NULL) {
			break; /* stopping and drained */
		}
		s->rq_head = c->next_read;
		if (s->rq_head == NULL) {
			s->rq_tail = NULL;
		}
		pthread_mutex_unlock(&s->mtx);
		call_run_read(c);
		call_complete(c);
		pthread_mutex_lock(&s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

static void
queue_read(rpc_call *c)
{
	rpc_server *s = c->s;
	pthread_mutex_lock(&s->mtx);
	c->next_read = NULL;
	if (s->rq_tail != NULL) {
		s->rq_tail->next_read = c;
	} else {
		s->rq_head = c;
	}
	s->rq_tail = c;
	pthread_cond_signal(&s->work_cv); /* one read, one worker */
	pthread_mutex_unlock(&s->mtx);
}

/* ---- the context state machine (NNG's callback threads) ---- */

static void
ctx_cb(void *arg)
{
	rpc_ctx *x = arg;
	rpc_server *s = x->s;
	int rv = nng_aio_result(x->aio);

	switch (x->state) {
	case CTX_RECV:
		if (rv != 0) {
			pthread_mutex_lock(&s->mtx);
			bool again = !s->stopping && rv != NNG_ECLOSED;
			x->state = again ? CTX_RECV : CTX_IDLE;
			if (again) {
				nng_ctx_recv(x->ctx, x->aio);
			}
			pthread_mutex_unlock(&s->mtx);
			return;
		}
		nng_msg *msg = nng_aio_get_msg(x->aio);
		pthread_mutex_lock(&s->mtx);
		x->state = CTX_WORK;
		s->busy++;
		pthread_mutex_unlock(&s->mtx);
		rpc_call *c = &x->call;
		call_begin(c);
		route r = call_decode(c, nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
		switch (r) {
		case ROUTE_DONE:
			call_complete(c);
			break;
		case ROUTE_READ:
			queue_read(c);
			break;
		case ROUTE_WRITE:
			call_submit_write(c);
			break;
		}
		return;
	case CTX_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(x->aio));
		}
		ctx_next(x);
		return;
	default:
		return;
	}
}

/* ---- start and stop ---- */

static int
find_conventions(rpc_server *s)
{
	const ProtobufCMessageDescriptor *rq = s->opt.request_desc;
	const ProtobufCMessageDescriptor *rp = s->opt.reply_desc;
	s->f_request_id = protobuf_c_message_descriptor_get_field_by_name(
	    rq, "request_id");
	s->f_actor
	    = protobuf_c_message_descriptor_get_field_by_name(rq, "actor");
	s->f_error
	    = protobuf_c_message_descriptor_get_field_by_name(rp, "error");
	s->f_ping_req = rpc_method_field(rq, "ping");
	s->f_ping_reply = rpc_method_field(rp, "ping");
	if (s->f_request_id == NULL
	    || s->f_request_id->type != PROTOBUF_C_TYPE_STRING
	    || s->f_request_id->label == PROTOBUF_C_LABEL_REPEATED
	    || s->f_actor == NULL
	    || s->f_actor->descriptor != &opsdesk__v1__actor__descriptor
	    || s->f_error == NULL
	    || s->f_error->descriptor != &opsdesk__v1__error__descriptor
	    || s->f_ping_req == NULL || s->f_ping_reply == NULL
	    || s->f_ping_reply->descriptor
	        != &opsdesk__v1__ping_reply__descriptor) {
		log_error("rpc: %s/%s do not follow the conventions of rpc.h",
		    rq->name, rp->name);
		return OD_EINVAL;
	}
	return 0;
}

static int
setup_methods(rpc_server *s)
{
	size_t n = s->opt.n_methods;
	s->method_ids = calloc(n ? n : 1, sizeof(*s->method_ids));
	s->mm = calloc(n + 2, sizeof(*s->mm));
	if (s->method_ids == NULL || s->mm == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < n + 2; i++) {
		const rpc_method *m = i < n ? &s->opt.methods[i] : NULL;
		if (m != NULL) {
			const ProtobufCFieldDescriptor *f
			    = rpc_method_field(s->opt.request_desc, m->name);
			if (f == NULL || m->fn == NULL
			    || f->id == s->f_ping_req->id) {
				log_error("rpc: %s is not a method of %s",
				    m->name ? m->name : "(null)",
				    s->opt.request_desc->name);
				return OD_EINVAL;
			}
			s->method_ids[i] = f->id;
		}
		method_metrics *mm = &s->mm[i];
		mm->name = m != NULL ? m->name : i == n ? "ping" : "unknown";
		char labels[200];
		snprintf(labels, sizeof(labels), "method=\"%s\",code=\"OK\"",
		    mm->name);
		mm->ok = metrics_counter(s->metrics,
		    "opsdesk_rpc_requests_total", "Requests answered", labels);
		snprintf(labels, sizeof(labels), "method=\"%s\"", mm->name);
		mm->duration = metrics_histogram(s->metrics,
		    "opsdesk_rpc_duration_seconds",
		    "Time from receiving a request to its reply", labels, NULL,
		    0);
	}
	return 0;
}

static void
call_init(rpc_server *s, rpc_call *c, rpc_ctx *x)
{
	c->s = s;
	c->ctx = x;
	c->mm = &s->mm[s->opt.n_methods + 1];
}

int
rpc__server_create(rpc_server **out, const rpc_server_options *opt)
{
	if (out == NULL || opt == NULL || opt->request_desc == NULL
	    || opt->reply_desc == NULL
	    || (opt->n_methods > 0 && opt->methods == NULL)) {
		return OD_EINVAL;
	}
	int rv = OD_ENOMEM;
	rpc_server *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return OD_ENOMEM;
	}
	s->opt = *opt;
	s->opt.url = NULL; /* not kept */
	s->metrics = opt->metrics;
	if (s->opt.contexts == 0) {
		s->opt.contexts = RPC_DEFAULT_CONTEXTS;
	}
	if (s->opt.workers == 0) {
		s->opt.workers = RPC_DEFAULT_WORKERS;
	}
	if (s->opt.max_msg == 0) {
		s->opt.max_msg = RPC_DEFAULT_MAX_MSG;
	}
	if (s->opt.idem_ttl_ms <= 0) {
		s->opt.idem_ttl_ms = RPC_DEFAULT_IDEM_TTL_MS;
	}
	pthread_mutex_init(&s->mtx, NULL);
	/* cv: wait_idle's time-outs are on the monotonic clock. */
	od_cond_init(&s->cv);
	pthread_cond_init(&s->work_cv, NULL);
	/* Due at the first write: clears what expired while we were down. */
	atomic_init(&s->last_prune_ms, INT64_MIN / 2);
	s->started_ms = od_now_ms();
	s->service = strdup(opt->service ? opt->service : "");
	s->instance = strdup(opt->instance ? opt->instance : "");
	s->shard = strdup(opt->shard ? opt->shard : "");
	if (s->service == NULL || s->instance == NULL || s->shard == NULL) {
		goto out;
	}
	if ((rv = auth_process(&s->auth)) != 0
	    || (rv = find_conventions(s)) != 0
	    || (rv = setup_methods(s)) != 0) {
		goto out;
	}
	s->workers = calloc(s->opt.workers, sizeof(*s->workers));
	if (s->workers == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < s->opt.workers; i++) {
		if (pthread_create(&s->workers[i], NULL, worker_main, s)
		    != 0) {
			rv = OD_ENOMEM;
			goto out;
		}
		s->n_workers++;
	}
	rv = 0;
out:
	if (rv != 0) {
		rpc_server_stop(s);
		return rv;
	}
	*out = s;
	return 0;
}

static int
server_listen(rpc_server *s, const char *url)
{
	int rv;
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		return od_nng_err(rv);
	}
	s->sock_open = true;
	s->ctxs = calloc(s->opt.contexts, sizeof(*s->ctxs));
	if (s->ctxs == NULL) {
		return OD_ENOMEM;
	}
	for (unsigned i = 0; i < s->opt.contexts; i++) {
		rpc_ctx *x = &s->ctxs[i];
		x->s = s;
		call_init(s, &x->call, x);
		x->call.reply = calloc(1, s->opt.reply_desc->sizeof_message);
		if (x->call.reply == NULL) {
			return OD_ENOMEM;
		}
		if ((rv = nng_aio_alloc(&x->aio, ctx_cb, x)) != 0) {
			return od_nng_err(rv);
		}
		if ((rv = nng_ctx_open(&x->ctx, s->sock)) != 0) {
			return od_nng_err(rv);
		}
		s->n_ctxs++;
	}
	/* Every listener bounds what a peer can make us allocate: a larger
	 * message closes that peer's connection (its REQ then times out). */
	if ((rv = nng_listener_create(&s->listener, s->sock, url)) != 0) {
		log_error(
		    "rpc: cannot listen on %s: %s", url, nng_strerror(rv));
		return od_nng_err(rv);
	}
	if ((rv = auth_listener_setup(s->listener, url)) != 0) {
		return rv;
	}
	if ((rv = nng_listener_set_size(
	         s->listener, NNG_OPT_RECVMAXSZ, s->opt.max_msg))
	        != 0
	    || (rv = nng_listener_start(s->listener, 0)) != 0) {
		log_error(
		    "rpc: cannot listen on %s: %s", url, nng_strerror(rv));
		return od_nng_err(rv);
	}
	pthread_mutex_lock(&s->mtx);
	for (unsigned i = 0; i < s->n_ctxs; i++) {
		s->ctxs[i].state = CTX_RECV;
		nng_ctx_recv(s->ctxs[i].ctx, s->ctxs[i].aio);
	}
	pthread_mutex_unlock(&s->mtx);
	return 0;
}

void
rpc_server_options_init(rpc_server_options *o, const char *url,
    const ProtobufCMessageDescriptor *request_desc,
    const ProtobufCMessageDescriptor *reply_desc, const rpc_method *methods,
    size_t n_methods, void *arg)
{
	memset(o, 0, sizeof(*o));
	o->url = url;
	o->request_desc = request_desc;
	o->reply_desc = reply_desc;
	o->methods = methods;
	o->n_methods = n_methods;
	o->arg = arg;
}

int
rpc_server_start(rpc_server **out, const rpc_server_options *opt)
{
	if (out == NULL || opt == NULL || opt->url == NULL) {
		return OD_EINVAL;
	}
	rpc_server *s = NULL;
	int rv = rpc__server_create(&s, opt);
	if (rv != 0) {
		return rv;
	}
	if ((rv = server_listen(s, opt->url)) != 0) {
		rpc_server_stop(s);
		return rv;
	}
	*out = s;
	return 0;
}

/* Wait until busy is 0, at most until deadline (mono ms; 0: forever). */
static bool
wait_idle(rpc_server *s, int64_t deadline)
{
	pthread_mutex_lock(&s->mtx);
	while (s->busy > 0) {
		if (deadline == 0) {
			pthread_cond_wait(&s->cv, &s->mtx);
			continue;
		}
		int64_t left = deadline - od_mono_ms();
		if (left <= 0) {
			break;
		}
		(void) od_cond_wait_ms(&s->cv, &s->mtx, left);
	}
	bool idle = s->busy == 0;
	pthread_mutex_unlock(&s->mtx);
	return idle;
}

void
rpc_server_stop(rpc_server *s)
{
	if (s == NULL) {
		return;
	}
	/* 1. Take no new requests: cancel the contexts that wait for one. */
	pthread_mutex_lock(&s->mtx);
	s->stopping = true;
	for (unsigned i = 0; i < s->n_ctxs; i++) {
		if (s->ctxs[i].state == CTX_RECV) {
			nng_aio_cancel(s->ctxs[i].aio);
		}
	}
	pthread_mutex_unlock(&s->mtx);
	/* 2. Answer what is in flight, for a while. */
	if (!wait_idle(s, od_mono_ms() + RPC_STOP_GRACE_MS)) {
		log_warn("rpc: stopping with requests still in flight");
	}
	/* 3. Close: sends still pending fail, and every job and read still
	 * queued completes against the closed socket. */
	if (s->sock_open && !od_nng_close(s->sock)) {
		/* NNG may still call back into the contexts: leave them. */
		od_nng_abandon(s);
		return;
	}
	wait_idle(s, 0);
	pthread_mutex_lock(&s->mtx);
	s->workers_stop = true;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->mtx);
	for (unsigned i = 0; i < s->n_workers; i++) {
		pthread_join(s->workers[i], NULL);
	}
	/* 4. No callback may run on freed memory. */
	if (s->ctxs != NULL) {
		for (unsigned i = 0; i < s->opt.contexts; i++) {
			if (s->ctxs[i].aio != NULL) {
				nng_aio_stop(s->ctxs[i].aio);
			}
		}
		for (unsigned i = 0; i < s->opt.contexts; i++) {
			if (s->ctxs[i].aio != NULL) {
				nng_aio_free(s->ctxs[i].aio);
			}
			free(s->ctxs[i].call.reply);
		}
		free(s->ctxs);
	}
	pthread_cond_destroy(&s->work_cv);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s->workers);
	free(s->method_ids);
	free(s->mm);
	free(s->service);
	free(s->instance);
	free(s->shard);
	free(s);
}

/* ---- synchronous path (fuzzing, tests) ---- */

int
rpc__server_handle(
    rpc_server *s, const void *req, size_t len, uint8_t **out, size_t *out_len)
{
	if (s == NULL || out == NULL || out_len == NULL
	    || (req == NULL && len > 0)) {
		return OD_EINVAL;
	}
	rpc_call c = { 0 };
	call_init(s, &c, NULL);
	c.reply = calloc(1, s->opt.reply_desc->sizeof_message);
	if (c.reply == NULL) {
		return OD_ENOMEM;
	}
	call_begin(&c);
	switch (call_decode(&c, req ? req : "", len)) {
	case ROUTE_DONE:
		call_complete(&c);
		break;
	case ROUTE_READ:
		call_run_read(&c);
		call_complete(&c);
		break;
	case ROUTE_WRITE: {
		maybe_prune(s);
		int rv = store_write(s->opt.store, write_job, &c);
		write_done(rv, &c);
		break;
	}
	}
	free(c.reply);
	if (c.out == NULL) {
		return OD_ENOMEM;
	}
	*out = c.out;
	*out_len = c.out_len;
	return 0;
}
