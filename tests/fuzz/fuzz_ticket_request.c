/*
 * fuzz_ticket_request — arbitrary bytes as a TicketRequest through the real
 * rpc server and ticket_core handlers (a store in a temp dir, inproc).
 * Checks, for every input:
 *   - a reply comes back and decodes as a TicketReply (never a crash, a
 *     hang or garbage);
 *   - a non-admin actor never gets a ticket of another user, nor an
 *     internal note, in any result (the authorization invariant).
 * Two tickets exist before the first input: T-1 of user 1 (with an
 * internal note) and T-2 of user 2, so ids 1 and 2 in the corpus hit real
 * tickets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "ticket.h"
#include "util/util.h"

typedef struct fuzz_env {
	char dir[64];
	store *st;
	rpc_server *srv;
	rpc_client *cli;
	ticket_service svc;
} fuzz_env;

static fuzz_env *env;

static void
cleanup(void)
{
	char cmd[128];

	if (env == NULL) {
		return;
	}
	rpc_client_close(env->cli);
	rpc_server_stop(env->srv);
	ticket_service_fini(&env->svc);
	store_close(env->st);
	env->dir[strlen(env->dir) - 2] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", env->dir);
	}
	free(env);
	env = NULL;
}

static Opsdesk__V1__TicketReply *
call(Opsdesk__V1__Actor *a, const char *method, ProtobufCMessage *msg)
{
	Opsdesk__V1__TicketRequest req = OPSDESK__V1__TICKET_REQUEST__INIT;
	Opsdesk__V1__TicketReply *r = NULL;

	req.actor = a;
	if (rpc_request_set_method(&req.base, method, msg) != 0
	    || rpc_client_call(env->cli, &req.base,
	           &opsdesk__v1__ticket_reply__descriptor,
	           (ProtobufCMessage **) &r, 10000)
	        != 0
	    || r->error != NULL) {
		fprintf(stderr, "fuzz setup: %s failed\n", method);
		abort();
	}
	return r;
}

static void
seed(void)
{
	Opsdesk__V1__Actor u1 = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__Actor u2 = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__Actor ad = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__TicketTextRequest note
	    = OPSDESK__V1__TICKET_TEXT_REQUEST__INIT;

	u1.user_id = 1;
	u2.user_id = 2;
	ad.user_id = 99;
	ad.is_admin = true;
	c.text = "first";
	protobuf_c_message_free_unpacked(
	    &call(&u1, "create", &c.base)->base, NULL);
	c.text = "second";
	protobuf_c_message_free_unpacked(
	    &call(&u2, "create", &c.base)->base, NULL);
	note.id = 1;
	note.text = "internal only";
	protobuf_c_message_free_unpacked(
	    &call(&ad, "note", &note.base)->base, NULL);
}

static void
setup(void)
{
	store_options so = { 0 };
	rpc_server_options ro = { 0 };
	ticket_policy pol;
	char url[64];

	log_init("fuzz_ticket_request", "fuzz", LOG_ERROR);
	if ((env = calloc(1, sizeof(*env))) == NULL) {
		abort();
	}
	snprintf(env->dir, sizeof(env->dir), "/tmp/fuzz_ticket.XXXXXX");
	if (mkdtemp(env->dir) == NULL) {
		abort();
	}
	strcat(env->dir, "/s");
	snprintf(url, sizeof(url), "inproc://fuzz-ticket-%d", (int) getpid());
	ticket_policy_defaults(&pol);
	so.path = env->dir;
	so.dbs = ticket_db_names;
	so.schema_version = TICKET_SCHEMA_VERSION;
	so.nosync = true; /* a throwaway store: speed over durability */
	ro.url = url;
	ro.request_desc = &opsdesk__v1__ticket_request__descriptor;
	ro.reply_desc = &opsdesk__v1__ticket_reply__descriptor;
	ro.methods = ticket_methods;
	ro.n_methods = ticket_n_methods;
	ro.arg = &env->svc;
	ro.service = TICKET_SERVICE;
	ro.instance = "fuzz";
	ro.contexts = 4;
	ro.workers = 1;
	if (store_open(&env->st, &so) != 0
	    || ticket_service_init(&env->svc, &pol, env->st, NULL, NULL, NULL)
	        != 0) {
		abort();
	}
	ro.store = env->st;
	if (rpc_server_start(&env->srv, &ro) != 0
	    || rpc_client_open(&env->cli, url, 10000) != 0) {
		abort();
	}
	for (int i = 0; i < 1000 && !rpc_client_connected(env->cli); i++) {
		usleep(1000);
	}
	atexit(cleanup);
	seed();
}

/* The authorization invariant over one ticket in a result. */
static void
check_ticket(const Opsdesk__V1__Actor *a, const Opsdesk__V1__Ticket *t)
{
	int64_t uid = a != NULL ? a->user_id : 0;

	if (t == NULL || (a != NULL && a->is_admin)) {
		return;
	}
	if (t->owner_id != uid) {
		fprintf(stderr, "user %lld got T-%llu of user %lld\n",
		    (long long) uid, (unsigned long long) t->id,
		    (long long) t->owner_id);
		abort();
	}
	for (size_t i = 0; i < t->n_messages; i++) {
		if (t->messages[i]->kind
		    == OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE) {
			fprintf(stderr, "user %lld saw an internal note\n",
			    (long long) a->user_id);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Opsdesk__V1__TicketRequest *req;
	Opsdesk__V1__TicketReply *r;
	void *out = NULL;
	size_t out_len = 0;

	if (env == NULL) {
		setup();
	}
	if (rpc_client_call_raw(env->cli, data, size, &out, &out_len, 10000)
	    != 0) {
		fprintf(stderr, "no reply to a %zu-byte request\n", size);
		abort();
	}
	if ((r = opsdesk__v1__ticket_reply__unpack(NULL, out_len, out))
	    == NULL) {
		fprintf(stderr, "the reply does not decode\n");
		abort();
	}
	free(out);
	req = opsdesk__v1__ticket_request__unpack(NULL, size, data);
	/* A write's reply is kept under its request id and given back to
	 * whoever repeats that id (the gateway, never a user, picks ids), so
	 * the invariant is checked on requests without one. */
	if (req != NULL && r->error == NULL && req->request_id[0] == '\0') {
		const Opsdesk__V1__Actor *a = req->actor;
		switch (r->result_case) {
		case OPSDESK__V1__TICKET_REPLY__RESULT_TICKET:
			check_ticket(a, r->ticket);
			break;
		case OPSDESK__V1__TICKET_REPLY__RESULT_CREATED:
			check_ticket(a, r->created->ticket);
			break;
		case OPSDESK__V1__TICKET_REPLY__RESULT_TICKETS:
			for (size_t i = 0; i < r->tickets->n_tickets; i++) {
				check_ticket(a, r->tickets->tickets[i]);
			}
			break;
		default:
			break;
		}
	}
	protobuf_c_message_free_unpacked(
	    req != NULL ? &req->base : NULL, NULL);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}
