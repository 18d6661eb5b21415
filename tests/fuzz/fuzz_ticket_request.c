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

#include "fuzz_service.h"
#include "log/log.h"
#include "ticket.h"
#include "util/util.h"

static fuzz_service fs;
static ticket_service svc;

static void
svc_fini(void *arg)
{
	ticket_service_fini(arg);
}

static void
call(Opsdesk__V1__Actor *a, const char *method, ProtobufCMessage *msg)
{
	Opsdesk__V1__TicketRequest req = OPSDESK__V1__TICKET_REQUEST__INIT;

	req.actor = a;
	protobuf_c_message_free_unpacked(
	    fuzz_service_call(&fs, &req.base, method, msg,
	        &opsdesk__v1__ticket_reply__descriptor),
	    NULL);
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
	call(&u1, "create", &c.base);
	c.text = "second";
	call(&u2, "create", &c.base);
	note.id = 1;
	note.text = "internal only";
	call(&ad, "note", &note.base);
}

static void
setup(void)
{
	store_options so = { 0 };
	rpc_server_options ro = { 0 };
	ticket_policy pol;

	log_init("fuzz_ticket_request", "fuzz", LOG_ERROR);
	ticket_policy_defaults(&pol);
	so.dbs = ticket_db_names;
	so.schema_version = TICKET_SCHEMA_VERSION;
	fuzz_service_open_store(&fs, "ticket", &so);
	if (ticket_service_init(&svc, &pol, fs.st, NULL, NULL, NULL) != 0) {
		abort();
	}
	rpc_server_options_init(&ro, NULL,
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor, ticket_methods,
	    ticket_n_methods, &svc);
	ro.service = TICKET_SERVICE;
	fuzz_service_start(&fs, "ticket", &ro, svc_fini);
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

	if (fs.cli == NULL) {
		setup();
	}
	r = (Opsdesk__V1__TicketReply *) fuzz_service_call_raw(
	    &fs, data, size, &opsdesk__v1__ticket_reply__descriptor);
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
