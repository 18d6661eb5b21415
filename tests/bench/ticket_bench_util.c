#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ticket.h"
#include "ticket_bench_util.h"
#include "util/util.h"

int
bench_create_ticket(rpc_client *c, long long uid, uint64_t *ns)
{
	Opsdesk__V1__TicketRequest req = OPSDESK__V1__TICKET_REQUEST__INIT;
	Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__CreateTicketRequest cr
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	Opsdesk__V1__TicketReply *r = NULL;
	uint64_t t0 = od_mono_ns();
	int rv;

	a.user_id = uid;
	a.chat_id = uid;
	a.name = "bench user";
	cr.text = "The app does not load my dashboard since this morning; "
	          "I tried logging out and in again.";
	req.actor = &a;
	req.method_case = OPSDESK__V1__TICKET_REQUEST__METHOD_CREATE;
	req.create = &cr;
	rv = rpc_client_call(c, &req.base,
	    &opsdesk__v1__ticket_reply__descriptor, (ProtobufCMessage **) &r,
	    10000);
	if (ns != NULL) {
		*ns = od_mono_ns() - t0;
	}
	if (rv == 0 && r->error != NULL) {
		rv = OD_ERPC;
	}
	protobuf_c_message_free_unpacked(r != NULL ? &r->base : NULL, NULL);
	return rv;
}

long long
bench_io_counter(const char *name)
{
	FILE *f = fopen("/proc/self/io", "r");
	size_t n = strlen(name);
	char line[128];
	long long v = -1;

	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			v = atoll(line + n + 1);
			break;
		}
	}
	fclose(f);
	return v;
}
