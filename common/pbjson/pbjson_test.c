/*
 * pbjson unit tests: every field kind round-trips (test schema and the
 * real opsdesk messages, filled generically from their descriptors),
 * errors name the field path, 64-bit ids survive, output is valid JSON
 * even for invalid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.pb-c.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "pbjson/pbjson.h"
#include "pbjson_kinds.pb-c.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"
#include "util/util.h"

/* ---- helpers ---- */

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), *len);
	return buf;
}

/* encode -> text -> decode must give the same wire bytes. */
static void
assert_roundtrip(const ProtobufCMessage *m, int flags)
{
	char *text = pbjson_encode_string(m, flags);
	ProtobufCMessage *back = NULL;
	char err[256];
	size_t a_len, b_len;
	uint8_t *a, *b;

	assert_non_null(text);
	int rv = pbjson_decode_string(
	    m->descriptor, text, strlen(text), &back, err, sizeof(err));
	if (rv != 0) {
		fail_msg("decode of %s failed: %s", text, err);
	}
	a = pack(m, &a_len);
	b = pack(back, &b_len);
	if (a_len != b_len || memcmp(a, b, a_len) != 0) {
		fail_msg("round trip of %s changed the message", text);
	}
	free(b);
	protobuf_c_message_free_unpacked(back, NULL);
	/* the tree itself (raw number items included) decodes too */
	cJSON *tree = pbjson_encode(m, flags);
	assert_non_null(tree);
	back = NULL;
	if (pbjson_decode(m->descriptor, tree, &back, err, sizeof(err)) != 0) {
		fail_msg("decode of the tree of %s failed: %s", text, err);
	}
	b = pack(back, &b_len);
	if (a_len != b_len || memcmp(a, b, a_len) != 0) {
		fail_msg("tree round trip of %s changed the message", text);
	}
	cJSON_Delete(tree);
	free(a);
	free(b);
	free(text);
	protobuf_c_message_free_unpacked(back, NULL);
}

static ProtobufCMessage *
decode_ok(const ProtobufCMessageDescriptor *d, const char *json)
{
	ProtobufCMessage *m = NULL;
	char err[256];
	int rv = pbjson_decode_string(
	    d, json, strlen(json), &m, err, sizeof(err));
	if (rv != 0) {
		fail_msg("decode of %s: %s", json, err);
	}
	return m;
}

static void
assert_decode_err(
    const ProtobufCMessageDescriptor *d, const char *json, const char *want)
{
	ProtobufCMessage *m = NULL;
	char err[256];
	int rv = pbjson_decode_string(
	    d, json, strlen(json), &m, err, sizeof(err));
	assert_int_equal(rv, OD_EINVAL);
	assert_null(m);
	if (strstr(err, want) == NULL) {
		fail_msg("decode of %s: error \"%s\" lacks \"%s\"", json, err,
		    want);
	}
}

static char *
encode(const ProtobufCMessage *m)
{
	char *s = pbjson_encode_string(m, 0);
	assert_non_null(s);
	return s;
}

/*
 * Fill every field of a message of type d with non-default values the
 * way unpack would allocate them: strings and arrays malloc'd, nested
 * messages to depth 3, two elements per repeated field, the oneof member
 * `pick` (field id; 0: the first member of each oneof).
 */
static ProtobufCMessage *
fill(const ProtobufCMessageDescriptor *d, int depth, uint32_t pick)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);
	assert_non_null(m);
	protobuf_c_message_init(d, m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *slot = (char *) m + f->offset;
		size_t n = 1, sz;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t *which
			    = (uint32_t *) ((char *) m + f->quantifier_offset);
			if (*which != 0 || (pick != 0 && pick != f->id)) {
				continue;
			}
			*which = f->id;
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 3) {
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				/* an empty member still counts as set */
				*(ProtobufCMessage **) slot
				    = fill(f->descriptor, 99, 0);
			}
			continue;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
		case PROTOBUF_C_TYPE_DOUBLE:
			sz = 8;
			break;
		case PROTOBUF_C_TYPE_STRING:
		case PROTOBUF_C_TYPE_MESSAGE:
			sz = sizeof(void *);
			break;
		case PROTOBUF_C_TYPE_BYTES:
			sz = sizeof(ProtobufCBinaryData);
			break;
		default:
			sz = 4;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = 2;
			char *arr = calloc(n, sz);
			assert_non_null(arr);
			*(void **) slot = arr;
			*(size_t *) ((char *) m + f->quantifier_offset) = n;
			slot = arr;
		}
		for (size_t k = 0; k < n; k++, slot += sz) {
			uint64_t v = f->id * 7 + k + 1;
			switch (f->type) {
			case PROTOBUF_C_TYPE_INT32:
			case PROTOBUF_C_TYPE_SINT32:
			case PROTOBUF_C_TYPE_SFIXED32:
				*(int32_t *) slot = -(int32_t) v * 1000003;
				break;
			case PROTOBUF_C_TYPE_UINT32:
			case PROTOBUF_C_TYPE_FIXED32:
				*(uint32_t *) slot
				    = 4000000000u - (uint32_t) v;
				break;
			case PROTOBUF_C_TYPE_INT64:
			case PROTOBUF_C_TYPE_SINT64:
			case PROTOBUF_C_TYPE_SFIXED64:
				/* one small, one past 2^53 */
				*(int64_t *) slot = k
				    ? -(int64_t) v
				    : -9007199254740993LL - (int64_t) v;
				break;
			case PROTOBUF_C_TYPE_UINT64:
			case PROTOBUF_C_TYPE_FIXED64:
				*(uint64_t *) slot
				    = k ? v : 18446744073709551615ull - v;
				break;
			case PROTOBUF_C_TYPE_FLOAT:
				*(float *) slot = 0.1f * (float) v;
				break;
			case PROTOBUF_C_TYPE_DOUBLE:
				*(double *) slot = 99.97 / (double) v;
				break;
			case PROTOBUF_C_TYPE_BOOL:
				*(protobuf_c_boolean *) slot = 1;
				break;
			case PROTOBUF_C_TYPE_ENUM: {
				const ProtobufCEnumDescriptor *ed
				    = f->descriptor;
				*(int *) slot
				    = ed->values[ed->n_values - 1 - k % 2]
				          .value;
				break;
			}
			case PROTOBUF_C_TYPE_STRING: {
				char buf[64];
				snprintf(buf, sizeof(buf),
				    "%s-%u \xc3\xa9\"\\\n\x01", f->name,
				    (unsigned) v);
				*(char **) slot = strdup(buf);
				break;
			}
			case PROTOBUF_C_TYPE_BYTES: {
				ProtobufCBinaryData *bd
				    = (ProtobufCBinaryData *) slot;
				bd->len = (size_t) (v % 5) + 1 + k;
				bd->data = malloc(bd->len);
				for (size_t j = 0; j < bd->len; j++) {
					bd->data[j]
					    = (uint8_t) (0xff - j * 37);
				}
				break;
			}
			case PROTOBUF_C_TYPE_MESSAGE:
				*(ProtobufCMessage **) slot
				    = fill(f->descriptor, depth + 1, 0);
				break;
			}
		}
	}
	return m;
}

/* Every oneof member of d (e.g. each payload of Envelope) in turn. */
static void
roundtrip_each_member(const ProtobufCMessageDescriptor *d)
{
	int members = 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
			continue;
		}
		ProtobufCMessage *m = fill(d, 0, d->fields[i].id);
		assert_roundtrip(m, 0);
		assert_roundtrip(m, PBJSON_EMIT_DEFAULTS | PBJSON_PRETTY);
		/* the member's name is in the JSON */
		char *s = encode(m);
		char key[80];
		snprintf(key, sizeof(key), "\"%s\":", d->fields[i].name);
		assert_non_null(strstr(s, key));
		free(s);
		protobuf_c_message_free_unpacked(m, NULL);
		members++;
	}
	assert_true(members > 0);
}

/* ---- tests ---- */

static void
test_all_kinds_roundtrip(void **state)
{
	(void) state;
	const ProtobufCMessageDescriptor *d
	    = &opsdesk__test__kinds__descriptor;
	roundtrip_each_member(d);
	/* and an empty message */
	Opsdesk__Test__Kinds empty = OPSDESK__TEST__KINDS__INIT;
	char *s = encode(&empty.base);
	assert_string_equal(s, "{}");
	free(s);
	assert_roundtrip(&empty.base, PBJSON_EMIT_DEFAULTS);
}

static void
test_opsdesk_messages_roundtrip(void **state)
{
	(void) state;
	static const ProtobufCMessageDescriptor *const all[] = {
		&opsdesk__v1__envelope__descriptor,
		&opsdesk__v1__ticket_request__descriptor,
		&opsdesk__v1__ticket_reply__descriptor,
		&opsdesk__v1__incident_request__descriptor,
		&opsdesk__v1__incident_reply__descriptor,
		&opsdesk__v1__prober_request__descriptor,
		&opsdesk__v1__prober_reply__descriptor,
		&opsdesk__v1__status_request__descriptor,
		&opsdesk__v1__status_reply__descriptor,
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		roundtrip_each_member(all[i]);
	}
}

static void
test_encode_shapes(void **state)
{
	(void) state;
	Opsdesk__Test__Kinds k = OPSDESK__TEST__KINDS__INIT;
	Opsdesk__Test__Inner in = OPSDESK__TEST__INNER__INIT;
	int32_t vals[] = { 1, -2 };
	uint8_t raw[] = { 0xfb, 0xff, 0x00 };
	k.i64 = 9007199254740992LL;  /* 2^53: still a number */
	k.u64 = 9007199254740993ULL; /* 2^53+1: a string */
	k.s64 = INT64_MIN;
	k.color = OPSDESK__TEST__COLOR__COLOR_DARK_BLUE;
	k.raw.data = raw;
	k.raw.len = sizeof(raw);
	k.b = 1;
	k.fl = 0.1f;
	k.db = 1.0 / 0.0;
	in.name = "x";
	in.n_values = 2;
	in.values = vals;
	k.inner = &in;
	k.choice_case = OPSDESK__TEST__KINDS__CHOICE_C_U64;
	k.c_u64 = 0; /* a set oneof member is emitted even at zero */
	char *s = encode(&k.base);
	assert_string_equal(s,
	    "{\"i64\":9007199254740992,\"s64\":\"-9223372036854775808\","
	    "\"u64\":\"9007199254740993\",\"fl\":0.1,\"db\":\"Infinity\","
	    "\"b\":true,\"color\":\"COLOR_DARK_BLUE\",\"raw\":\"+/8A\","
	    "\"inner\":{\"name\":\"x\",\"values\":[1,-2]},\"c_u64\":0}");
	free(s);
}

static void
test_decode_inputs(void **state)
{
	(void) state;
	Opsdesk__Test__Kinds *k = (Opsdesk__Test__Kinds *) decode_ok(
	    &opsdesk__test__kinds__descriptor,
	    "{\"u64\":\"18446744073709551615\",\"i64\":-9007199254740992,"
	    "\"sf64\":\"-9223372036854775808\",\"rU64\":[1,\"2\"],"
	    "\"color\":\"dark_blue\",\"rColor\":[\"RED\",\"COLOR_RED\",2],"
	    "\"raw\":\"-_8\",\"db\":\"NaN\",\"fl\":1.5,\"u32\":4294967295,"
	    "\"str\":null,\"inner\":{\"values\":[]}}");
	assert_true(k->u64 == UINT64_MAX);
	assert_true(k->i64 == -9007199254740992LL);
	assert_true(k->sf64 == INT64_MIN);
	assert_int_equal(k->n_r_u64, 2);
	assert_true(k->r_u64[1] == 2);
	assert_int_equal(k->color, OPSDESK__TEST__COLOR__COLOR_DARK_BLUE);
	assert_int_equal(k->n_r_color, 3);
	assert_int_equal(k->r_color[0], OPSDESK__TEST__COLOR__COLOR_RED);
	assert_int_equal(k->r_color[1], OPSDESK__TEST__COLOR__COLOR_RED);
	assert_int_equal(k->r_color[2], 2);
	assert_int_equal(k->raw.len, 2);
	assert_int_equal(k->raw.data[0], 0xfb);
	assert_int_equal(k->raw.data[1], 0xff);
	assert_true(k->db != k->db);
	assert_true(k->u32 == UINT32_MAX);
	/* absent and null strings sit at the descriptor default, as
	 * after init, so free_unpacked leaves them alone */
	assert_ptr_equal(k->str, protobuf_c_empty_string);
	assert_non_null(k->inner);
	assert_int_equal(k->inner->n_values, 0);
	protobuf_c_message_free_unpacked(&k->base, NULL);

	/* the real request, with a lowerCamelCase method name */
	Opsdesk__V1__TicketRequest *r
	    = (Opsdesk__V1__TicketRequest *) decode_ok(
	        &opsdesk__v1__ticket_request__descriptor,
	        "{\"request_id\":\"r1\",\"actor\":{\"user_id\":\"42\","
	        "\"isAdmin\":true},\"listMine\":{\"includeClosed\":true}}");
	assert_string_equal(r->request_id, "r1");
	assert_true(r->actor->user_id == 42);
	assert_true(r->actor->is_admin);
	assert_ptr_equal(r->actor->name, protobuf_c_empty_string);
	assert_int_equal(
	    r->method_case, OPSDESK__V1__TICKET_REQUEST__METHOD_LIST_MINE);
	assert_true(r->list_mine->include_closed);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	/* enum spellings */
	static const char *const high[]
	    = { "\"high\"", "\"HIGH\"", "\"TICKET_PRIORITY_HIGH\"", "3" };
	for (size_t i = 0; i < 4; i++) {
		char json[128];
		snprintf(json, sizeof(json), "{\"priority\":%s}", high[i]);
		Opsdesk__V1__CreateTicketRequest *c
		    = (Opsdesk__V1__CreateTicketRequest *) decode_ok(
		        &opsdesk__v1__create_ticket_request__descriptor, json);
		assert_int_equal(c->priority,
		    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_HIGH);
		protobuf_c_message_free_unpacked(&c->base, NULL);
	}
}

static void
test_decode_errors(void **state)
{
	(void) state;
	const ProtobufCMessageDescriptor *tr
	    = &opsdesk__v1__ticket_request__descriptor;
	const ProtobufCMessageDescriptor *kd
	    = &opsdesk__test__kinds__descriptor;

	assert_decode_err(tr, "{\"create\":{\"priority\":\"hgih\"}}",
	    "create.priority: unknown enum value \"hgih\"");
	assert_decode_err(tr, "{\"create\":{\"subjekt\":\"x\"}}",
	    "create.subjekt: unknown field");
	assert_decode_err(tr, "{\"faq_add\":{\"tags\":[\"a\",1]}}",
	    "faq_add.tags[1]: expected a string");
	assert_decode_err(tr, "{\"create\":{},\"get\":{\"id\":1}}",
	    "get: conflicts with \"create\"");
	assert_decode_err(
	    tr, "{\"list_mine\":{},\"listMine\":{}}", "listMine: given twice");
	assert_decode_err(tr, "{\"actor\":{\"user_id\":1.5}}",
	    "actor.user_id: expected an integer");
	assert_decode_err(tr, "{\"actor\":{\"user_id\":\"12x\"}}",
	    "actor.user_id: expected an integer");
	assert_decode_err(tr, "{\"actor\":{\"is_admin\":1}}",
	    "actor.is_admin: expected true or false");
	assert_decode_err(tr, "{\"rate\":{\"rating\":4294967296}}",
	    "rate.rating: integer out of range");
	assert_decode_err(tr, "{\"get\":{\"id\":\"-1\"}}",
	    "get.id: expected an unsigned integer");
	assert_decode_err(tr, "{\"get\":{\"id\":-1}}", "get.id: integer out");
	assert_decode_err(tr, "{\"get\":{\"id\":\"18446744073709551616\"}}",
	    "get.id: integer out of range");
	assert_decode_err(tr, "{\"get\":[]}", "get: expected a JSON object");
	assert_decode_err(tr, "[1]", "expected a JSON object");
	assert_decode_err(tr, "{\"create\":", "invalid JSON");
	assert_decode_err(tr, "{} x", "trailing characters");
	assert_decode_err(tr, "", "invalid JSON");
	assert_decode_err(kd, "{\"raw\":\"a\"}", "raw: invalid base64");
	assert_decode_err(kd, "{\"raw\":\"ab$d\"}", "raw: invalid base64");
	assert_decode_err(
	    kd, "{\"r_inner\":[{},null]}", "r_inner[1]: null is not");
	assert_decode_err(kd, "{\"r_inner\":[{\"values\":[1,\"z\"]}]}",
	    "r_inner[0].values[1]: expected an integer");
	assert_decode_err(kd, "{\"fl\":1e300}", "fl: float out of range");
	assert_decode_err(kd, "{\"str\":\"a\xff\"}", "str: invalid UTF-8");
	assert_decode_err(
	    kd, "{\"str\":\"\xed\xa0\x80\"}", "str: invalid UTF-8");
	assert_decode_err(kd, "{\"c_str\":\"a\",\"c_inner\":{\"name\":1}}",
	    "c_inner: conflicts with \"c_str\"");
	/* an error deep in a oneof member leaves nothing behind (ASan) */
	assert_decode_err(kd,
	    "{\"c_inner\":{\"name\":\"a\",\"values\":[1,{}]}}",
	    "c_inner.values[1]");

	/* NULL err buffer is allowed */
	ProtobufCMessage *m = NULL;
	assert_int_equal(
	    pbjson_decode_string(tr, "{\"x\":1}", 7, &m, NULL, 0), OD_EINVAL);
	assert_null(m);
}

static void
test_text_not_terminated(void **state)
{
	(void) state;
	/* the length bounds the parse: the bytes after it are not read */
	const char text[] = "{\"get\":{\"id\":7}}GARBAGE";
	ProtobufCMessage *m = NULL;
	char err[128];
	assert_int_equal(
	    pbjson_decode_string(&opsdesk__v1__ticket_request__descriptor,
	        text, strlen("{\"get\":{\"id\":7}}"), &m, err, sizeof(err)),
	    0);
	assert_true(((Opsdesk__V1__TicketRequest *) m)->get->id == 7);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void
test_invalid_utf8_output_is_valid_json(void **state)
{
	(void) state;
	Opsdesk__V1__GatewayEvent ev = OPSDESK__V1__GATEWAY_EVENT__INIT;
	ev.kind = "bad\xff\xfe";
	ev.text = "ok \xc3\xa9 and half \xe2\x82";
	char *s = encode(&ev.base);
	/* it parses, and decodes again (decode rejects invalid UTF-8) */
	ProtobufCMessage *m = decode_ok(ev.base.descriptor, s);
	Opsdesk__V1__GatewayEvent *back = (Opsdesk__V1__GatewayEvent *) m;
	assert_string_equal(back->kind, "bad\xef\xbf\xbd\xef\xbf\xbd");
	assert_non_null(strstr(back->text, "ok \xc3\xa9 and half "));
	protobuf_c_message_free_unpacked(m, NULL);
	free(s);
}

static void
test_emit_defaults(void **state)
{
	(void) state;
	Opsdesk__V1__CreateTicketRequest c
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	char *s = pbjson_encode_string(&c.base, PBJSON_EMIT_DEFAULTS);
	assert_string_equal(s,
	    "{\"subject\":\"\",\"text\":\"\","
	    "\"priority\":\"TICKET_PRIORITY_UNSPECIFIED\"}");
	free(s);
	s = pbjson_encode_string(&c.base, 0);
	assert_string_equal(s, "{}");
	free(s);
	assert_null(pbjson_encode(NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_kinds_roundtrip),
		cmocka_unit_test(test_opsdesk_messages_roundtrip),
		cmocka_unit_test(test_encode_shapes),
		cmocka_unit_test(test_decode_inputs),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_text_not_terminated),
		cmocka_unit_test(test_invalid_utf8_output_is_valid_json),
		cmocka_unit_test(test_emit_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
