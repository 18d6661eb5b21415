/*
 * Fuzz pbjson_decode_string with arbitrary text into the two messages
 * that take outside JSON most (opsctl call's TicketRequest, a bus
 * Envelope), and check what decodes survives encode -> decode unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.pb-c.h"
#include "pbjson/pbjson.h"
#include "ticket.pb-c.h"

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf == NULL) {
		abort();
	}
	protobuf_c_message_pack(m, buf);
	return buf;
}

static void
one(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = NULL, *back = NULL;
	char err[256];
	char *text;
	size_t a_len, b_len;
	uint8_t *a, *b;

	if (pbjson_decode_string(
	        desc, (const char *) data, size, &m, err, sizeof(err))
	    != 0) {
		return;
	}
	text = pbjson_encode_string(m, 0);
	if (text == NULL) {
		abort();
	}
	/* Our own output must always decode to the same message. */
	if (pbjson_decode_string(
	        desc, text, strlen(text), &back, err, sizeof(err))
	    != 0) {
		abort();
	}
	a = pack(m, &a_len);
	b = pack(back, &b_len);
	if (a_len != b_len || memcmp(a, b, a_len) != 0) {
		abort();
	}
	free(a);
	free(b);
	free(text);
	protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(back, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(&opsdesk__v1__ticket_request__descriptor, data, size);
	one(&opsdesk__v1__envelope__descriptor, data, size);
	return 0;
}
