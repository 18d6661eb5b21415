/*
 * pbjson — protobuf <-> JSON for any message, driven by protobuf-c's
 * descriptors (one codec for opsctl, logs and tests).
 *
 * Mapping (proto3 JSON, with the original field names as protoc's
 * --preserving_proto_field_names prints them):
 *   - field names as in the .proto (snake_case); lowerCamelCase is also
 *     accepted on input;
 *   - 64-bit integers as JSON numbers when |v| <= 2^53, else strings;
 *     both accepted on input;
 *   - enums as their value names ("SEVERITY_HIGH"); numbers and the short
 *     name without the enum prefix ("HIGH", "high") accepted on input;
 *   - bytes as base64; messages as objects; repeated as arrays;
 *   - fields at their default value are omitted on output unless
 *     PBJSON_EMIT_DEFAULTS is given; oneof members are always emitted.
 * Unknown JSON keys are an error on input (typos must not pass silently).
 */
#ifndef OPSDESK_PBJSON_H
#define OPSDESK_PBJSON_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#define PBJSON_EMIT_DEFAULTS 0x1
#define PBJSON_PRETTY        0x2

/*
 * A cJSON tree for msg (borrowed); caller cJSON_Delete()s. NULL on OOM.
 * cJSON prints numbers with 15 digits, so integers past 2^31 and doubles
 * that need 16-17 digits are raw items (cJSON_IsRaw, exact text in
 * valuestring); pbjson_decode accepts such items as numbers.
 */
cJSON *pbjson_encode(const ProtobufCMessage *msg, int flags);
/* The JSON text; caller frees with free(). NULL on OOM. */
char *pbjson_encode_string(const ProtobufCMessage *msg, int flags);

/*
 * Build a message of type desc from json (borrowed). On success *out is
 * set; free it with protobuf_c_message_free_unpacked(*out, NULL). On
 * error returns OD_EINVAL with err naming the field path and the problem
 * ("priority: unknown enum value \"hgih\"").
 */
int pbjson_decode(const ProtobufCMessageDescriptor *desc, const cJSON *json,
    ProtobufCMessage **out, char *err, size_t errlen);
/* The same from text (need not be NUL-terminated). */
int pbjson_decode_string(const ProtobufCMessageDescriptor *desc,
    const char *text, size_t len, ProtobufCMessage **out, char *err,
    size_t errlen);

#endif /* OPSDESK_PBJSON_H */
