/*
 * Fuzz what every subscriber does with a frame off the bus: split it
 * into topic and body (bus_frame_split), unpack the Envelope, and render
 * it as opsctl tail does (pbjson). A split must stay inside the frame, a
 * decoded envelope must pack again, and its JSON must decode (invalid
 * UTF-8 comes out as U+FFFD, unknown enum values as numbers).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "envelope.pb-c.h"
#include "pbjson/pbjson.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *topic;
	size_t topic_len, body_len;
	const uint8_t *body;

	if (bus_frame_split(data, size, &topic, &topic_len, &body, &body_len)
	    != 0) {
		return 0;
	}
	/* The body follows the topic's 0x00 and a publisher's
	 * authentication header, if any, and runs to the end. */
	if ((const uint8_t *) topic != data || topic_len >= BUS_MAX_TOPIC
	    || body < data + topic_len + 1 || body + body_len != data + size
	    || memchr(topic, 0, topic_len) != NULL) {
		abort();
	}
	Opsdesk__V1__Envelope *env
	    = opsdesk__v1__envelope__unpack(NULL, body_len, body);
	if (env == NULL) {
		return 0;
	}
	char *json = pbjson_encode_string(&env->base, 0);
	if (json == NULL) {
		abort();
	}
	/* What tail prints must read back as the same envelope. */
	ProtobufCMessage *back = NULL;
	char err[256];
	if (pbjson_decode_string(&opsdesk__v1__envelope__descriptor, json,
	        strlen(json), &back, err, sizeof(err))
	    != 0) {
		abort();
	}
	size_t n = opsdesk__v1__envelope__get_packed_size(env);
	uint8_t *buf = malloc(n ? n : 1);
	if (buf == NULL) {
		abort();
	}
	opsdesk__v1__envelope__pack(env, buf);
	free(buf);
	free(json);
	protobuf_c_message_free_unpacked(back, NULL);
	opsdesk__v1__envelope__free_unpacked(env, NULL);
	return 0;
}
