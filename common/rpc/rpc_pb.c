/*
 * Generic access to the Request/Reply conventions through protobuf-c's
 * descriptors: every service's messages share field names, so one set of
 * helpers serves them all.
 */
#include <string.h>

#include "rpc.h"
#include "util/util.h"

/* A oneof member's case lives at quantifier_offset as a C enum. */
static uint32_t *
oneof_case(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (uint32_t *) ((char *) m + f->quantifier_offset);
}

static void **
field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (void **) ((char *) m + f->offset);
}

static bool
is_oneof(const ProtobufCFieldDescriptor *f)
{
	return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

const Opsdesk__V1__Error *
rpc_reply_error(const ProtobufCMessage *reply)
{
	if (reply == NULL) {
		return NULL;
	}
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field_by_name(
	        reply->descriptor, "error");
	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE
	    || f->descriptor != &opsdesk__v1__error__descriptor) {
		return NULL;
	}
	return *field_ptr(reply, f);
}

const ProtobufCFieldDescriptor *
rpc_method_field(const ProtobufCMessageDescriptor *req_desc, const char *name)
{
	if (req_desc == NULL || name == NULL) {
		return NULL;
	}
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field_by_name(req_desc, name);
	if (f == NULL || !is_oneof(f) || f->type != PROTOBUF_C_TYPE_MESSAGE) {
		return NULL;
	}
	return f;
}

int
rpc_request_set_method(
    ProtobufCMessage *req, const char *name, ProtobufCMessage *msg)
{
	if (req == NULL || msg == NULL) {
		return OD_EINVAL;
	}
	const ProtobufCFieldDescriptor *f
	    = rpc_method_field(req->descriptor, name);
	if (f == NULL) {
		return OD_ENOTFOUND;
	}
	if (msg->descriptor != f->descriptor) {
		return OD_EINVAL;
	}
	*oneof_case(req, f) = f->id;
	*field_ptr(req, f) = msg;
	return 0;
}

const char *
rpc_oneof_name(const ProtobufCMessage *m)
{
	if (m == NULL) {
		return NULL;
	}
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (is_oneof(f) && *oneof_case(m, f) == f->id) {
			return f->name;
		}
	}
	return NULL;
}

const char *
rpc_error_code_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &opsdesk__v1__error_code__descriptor, code);
	if (code == 0) {
		return "OK";
	}
	if (v == NULL) {
		return "UNKNOWN";
	}
	/* "ERROR_CODE_NOT_FOUND" -> "NOT_FOUND" */
	static const char prefix[] = "ERROR_CODE_";
	if (strncmp(v->name, prefix, sizeof(prefix) - 1) == 0) {
		return v->name + sizeof(prefix) - 1;
	}
	return v->name;
}
