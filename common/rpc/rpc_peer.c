/*
 * rpc_peer.c — a service calling another service as itself: the actor it
 * sends and what it makes of an Error reply, which ticket-service,
 * incident-service and status-publisher each wrote out before.
 */
#include "log/log.h"
#include "rpc.h"
#include "util/util.h"

int
rpc_request_set_actor(ProtobufCMessage *req, const Opsdesk__V1__Actor *actor)
{
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field_by_name(
	        req->descriptor, "actor");

	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE
	    || f->descriptor != &opsdesk__v1__actor__descriptor) {
		return OD_ENOTFOUND;
	}
	/* The request only borrows it; protobuf-c never writes through. */
	*(const Opsdesk__V1__Actor **) ((char *) req + f->offset) = actor;
	return 0;
}

int
rpc_client_call_peer(rpc_client *c, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **out,
    int timeout_ms)
{
	const Opsdesk__V1__Error *err;
	ProtobufCMessage *rep = NULL;
	int rv;

	if (c == NULL) {
		return OD_EUNAVAIL;
	}
	if ((rv = rpc_client_call(c, req, reply_desc, &rep, timeout_ms))
	    != 0) {
		return rv;
	}
	if ((err = rpc_reply_error(rep)) != NULL && err->code != 0) {
		const char *method = rpc_oneof_name(req);
		log_warn("%s %s answered %s: %s", rpc_client_url(c),
		    method != NULL ? method : "(no method)",
		    rpc_error_code_name(err->code), err->message);
		protobuf_c_message_free_unpacked(rep, NULL);
		return OD_ERPC;
	}
	*out = rep;
	return 0;
}
