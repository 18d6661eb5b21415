/*
 * pbjson — one descriptor-driven codec between protobuf-c messages and
 * cJSON trees. Messages built by decode are laid out exactly as
 * protobuf-c's unpack lays them out (malloc'd message, strings, arrays and
 * byte buffers; unset strings at the descriptor's default), so the caller
 * frees them with protobuf_c_message_free_unpacked(m, NULL).
 */
#include "pbjson/pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

/* JSON numbers are doubles: integers beyond 2^53 go out as strings. */
#define PBJSON_MAX_SAFE_INT 9007199254740992.0
/* Nesting deeper than this is hostile input, not a real message. */
#define PBJSON_MAX_DEPTH 64

#define MEMBER(type, msg, off) (*(type *) ((char *) (msg) + (off)))

/* ---- shared ---- */

static size_t
pbjson__value_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default: /* 32-bit integers, float, enum (int-sized in protobuf-c) */
		return 4;
	}
}

static bool
pbjson__utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t more;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= more) {
			return false;
		}
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80) {
				return false;
			}
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000)
		    || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
			return false;
		}
		i += more + 1;
	}
	return true;
}

static const char b64_chars[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---- encoding ---- */

static cJSON *pbjson__encode_message(const ProtobufCMessage *m, int flags);

static cJSON *
pbjson__encode_base64(const ProtobufCBinaryData *bd)
{
	size_t out_len = 4 * ((bd->len + 2) / 3);
	char *out = malloc(out_len + 1);
	cJSON *item;
	size_t i, o = 0;

	if (out == NULL) {
		return NULL;
	}
	for (i = 0; i + 2 < bd->len; i += 3) {
		uint32_t v = ((uint32_t) bd->data[i] << 16)
		    | ((uint32_t) bd->data[i + 1] << 8) | bd->data[i + 2];
		out[o++] = b64_chars[(v >> 18) & 63];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < bd->len) {
		uint32_t v = (uint32_t) bd->data[i] << 16;
		if (i + 1 < bd->len) {
			v |= (uint32_t) bd->data[i + 1] << 8;
		}
		out[o++] = b64_chars[(v >> 18) & 63];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < bd->len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	item = cJSON_CreateString(out);
	free(out);
	return item;
}

/*
 * cJSON prints numbers with "%1.15g" and an approximate round-trip check,
 * which loses digits of integers past 2^31 and of some doubles. Those go
 * into the tree as raw items holding their exact text (cJSON_IsRaw);
 * pbjson_decode reads raw items back as numbers.
 */
static cJSON *
pbjson__encode_int(int64_t v)
{
	char buf[24];
	if (v >= INT32_MIN && v <= INT32_MAX) {
		return cJSON_CreateNumber((double) v);
	}
	snprintf(buf, sizeof(buf), "%" PRId64, v);
	if (v >= -PBJSON_MAX_SAFE_INT && v <= PBJSON_MAX_SAFE_INT) {
		return cJSON_CreateRaw(buf);
	}
	return cJSON_CreateString(buf);
}

static cJSON *
pbjson__encode_uint(uint64_t v)
{
	char buf[24];
	if (v <= INT32_MAX) {
		return cJSON_CreateNumber((double) v);
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	if (v <= (uint64_t) PBJSON_MAX_SAFE_INT) {
		return cJSON_CreateRaw(buf);
	}
	return cJSON_CreateString(buf);
}

static cJSON *
pbjson__encode_double(double d)
{
	/* proto3 JSON spells the non-finite values as strings. */
	if (isnan(d)) {
		return cJSON_CreateString("NaN");
	}
	if (isinf(d)) {
		return cJSON_CreateString(d > 0 ? "Infinity" : "-Infinity");
	}
	if (d == floor(d) && fabs(d) <= PBJSON_MAX_SAFE_INT) {
		return pbjson__encode_int((int64_t) d);
	}
	/* The shortest of 15..17 digits that reads back exactly; cJSON
	 * itself prints the 15-digit form, so only longer ones go raw. */
	char buf[40];
	int prec;
	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d) {
			break;
		}
	}
	if (prec == 15) {
		return cJSON_CreateNumber(d);
	}
	snprintf(buf, sizeof(buf), "%.*g", prec, d);
	return cJSON_CreateRaw(buf);
}

static cJSON *
pbjson__encode_string(const char *s)
{
	size_t n;
	char *clean;
	cJSON *item;

	if (s == NULL) {
		s = "";
	}
	n = strlen(s);
	/* cJSON copies bytes as they are: invalid UTF-8 would make the
	 * output invalid JSON, so such strings go out with U+FFFD. */
	if (pbjson__utf8_valid((const unsigned char *) s, n)) {
		return cJSON_CreateString(s);
	}
	if ((clean = od_utf8_sanitize(s, n)) == NULL) {
		return NULL;
	}
	item = cJSON_CreateString(clean);
	free(clean);
	return item;
}

/* One value of field f stored at p (a singular member or an element). */
static cJSON *
pbjson__encode_value(
    const ProtobufCFieldDescriptor *f, const void *p, int flags)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return cJSON_CreateNumber(*(const int32_t *) p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return cJSON_CreateNumber(*(const uint32_t *) p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return pbjson__encode_int(*(const int64_t *) p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return pbjson__encode_uint(*(const uint64_t *) p);
	case PROTOBUF_C_TYPE_FLOAT: {
		/* Print the float's shortest decimal, not its double
		 * expansion (0.1f, not 0.10000000149011612). */
		char buf[32];
		float fl = *(const float *) p;
		if (!isfinite(fl)) {
			return pbjson__encode_double(fl);
		}
		for (int prec = 6; prec <= 9; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, (double) fl);
			if ((float) strtod(buf, NULL) == fl) {
				break;
			}
		}
		return cJSON_CreateNumber(strtod(buf, NULL));
	}
	case PROTOBUF_C_TYPE_DOUBLE:
		return pbjson__encode_double(*(const double *) p);
	case PROTOBUF_C_TYPE_BOOL:
		return cJSON_CreateBool(*(const protobuf_c_boolean *) p);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *) p;
		const ProtobufCEnumValue *ev
		    = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev != NULL) {
			return cJSON_CreateString(ev->name);
		}
		return cJSON_CreateNumber(v); /* a value newer than us */
	}
	case PROTOBUF_C_TYPE_STRING:
		return pbjson__encode_string(*(char *const *) p);
	case PROTOBUF_C_TYPE_BYTES:
		return pbjson__encode_base64((const ProtobufCBinaryData *) p);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *) p;
		if (sub == NULL) {
			return cJSON_CreateObject();
		}
		return pbjson__encode_message(sub, flags);
	}
	}
	return NULL;
}

/* proto3: a singular field at its zero value is "not set". */
static bool
pbjson__is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) p;
		return s == NULL || s[0] == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *) p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *) p == NULL;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *) p == 0 && !signbit(*(const float *) p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *) p == 0
		    && !signbit(*(const double *) p);
	default: {
		static const uint8_t zero[8];
		return memcmp(p, zero, pbjson__value_size(f->type)) == 0;
	}
	}
}

/* Whether field f of m is present, and (repeated) how many values. */
static bool
pbjson__present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
    int flags, size_t *n)
{
	const void *p = (const char *) m + f->offset;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		return MEMBER(uint32_t, m, f->quantifier_offset) == f->id;
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		*n = MEMBER(size_t, m, f->quantifier_offset);
		return *n > 0 || (flags & PBJSON_EMIT_DEFAULTS);
	}
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		return *(ProtobufCMessage *const *) p != NULL;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset
	    && f->type != PROTOBUF_C_TYPE_STRING) {
		return MEMBER(protobuf_c_boolean, m, f->quantifier_offset);
	}
	return (flags & PBJSON_EMIT_DEFAULTS) || !pbjson__is_default(f, p);
}

static cJSON *
pbjson__encode_message(const ProtobufCMessage *m, int flags)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL) {
		return NULL;
	}
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		size_t n = 0;
		cJSON *item;

		if (!pbjson__present(m, f, flags, &n)) {
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			const char *arr = MEMBER(const char *, m, f->offset);
			size_t sz = pbjson__value_size(f->type);
			if ((item = cJSON_CreateArray()) == NULL) {
				goto fail;
			}
			for (size_t j = 0; j < n; j++) {
				cJSON *v = pbjson__encode_value(
				    f, arr + j * sz, flags);
				if (v == NULL
				    || !cJSON_AddItemToArray(item, v)) {
					cJSON_Delete(v);
					cJSON_Delete(item);
					goto fail;
				}
			}
		} else {
			item = pbjson__encode_value(
			    f, (const char *) m + f->offset, flags);
		}
		if (item == NULL
		    || !cJSON_AddItemToObject(obj, f->name, item)) {
			cJSON_Delete(item);
			goto fail;
		}
	}
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

cJSON *
pbjson_encode(const ProtobufCMessage *msg, int flags)
{
	if (msg == NULL) {
		return NULL;
	}
	return pbjson__encode_message(msg, flags);
}

char *
pbjson_encode_string(const ProtobufCMessage *msg, int flags)
{
	cJSON *json = pbjson_encode(msg, flags);
	char *text, *out;

	if (json == NULL) {
		return NULL;
	}
	text = (flags & PBJSON_PRETTY) ? cJSON_Print(json)
	                               : cJSON_PrintUnformatted(json);
	cJSON_Delete(json);
	if (text == NULL) {
		return NULL;
	}
	/* cJSON's allocator may be hooked; the contract is free(). */
	out = strdup(text);
	cJSON_free(text);
	return out;
}

/* ---- decoding ---- */

typedef struct pbjson__ctx {
	char *err;
	size_t errlen;
	char path[512];
	size_t plen;
	int depth;
} pbjson__ctx;

static int
pbjson__fail(pbjson__ctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err != NULL && c->errlen > 0) {
		if (c->plen > 0) {
			snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
		} else {
			snprintf(c->err, c->errlen, "%s", msg);
		}
	}
	return OD_EINVAL;
}

static int
pbjson__oom(pbjson__ctx *c)
{
	if (c->err != NULL && c->errlen > 0) {
		snprintf(c->err, c->errlen, "out of memory");
	}
	return OD_ENOMEM;
}

/* Append ".name" (or "name" at the root) or "[i]" to the path; returns
 * the old length to restore. */
static size_t
pbjson__push(pbjson__ctx *c, const char *name, long index)
{
	size_t old = c->plen;
	int n;

	if (name != NULL) {
		n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen,
		    "%s%s", c->plen ? "." : "", name);
	} else {
		n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen,
		    "[%ld]", index);
	}
	if (n > 0) {
		c->plen += (size_t) n;
		if (c->plen >= sizeof(c->path)) {
			c->plen = sizeof(c->path) - 1;
		}
	}
	return old;
}

static void
pbjson__pop(pbjson__ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

/* "list_mine" matches "listMine" (proto3 JSON names). */
static bool
pbjson__camel_eq(const char *snake, const char *key)
{
	while (*snake != '\0') {
		if (*snake == '_' && snake[1] != '\0') {
			snake++;
			if (*key != toupper((unsigned char) *snake)) {
				return false;
			}
		} else if (*key != *snake) {
			return false;
		}
		snake++;
		key++;
	}
	return *key == '\0';
}

static const ProtobufCFieldDescriptor *
pbjson__find_field(const ProtobufCMessageDescriptor *desc, const char *key)
{
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field_by_name(desc, key);

	if (f != NULL) {
		return f;
	}
	for (unsigned i = 0; i < desc->n_fields; i++) {
		if (pbjson__camel_eq(desc->fields[i].name, key)) {
			return &desc->fields[i];
		}
	}
	return NULL;
}

static int
pbjson__int(
    pbjson__ctx *c, const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (!isfinite(d) || d != floor(d)) {
			return pbjson__fail(c, "expected an integer");
		}
		if (d < (double) min || d >= (double) max + 1.0) {
			return pbjson__fail(c, "integer out of range");
		}
		*out = (int64_t) d;
		return 0;
	}
	/* Strings for 64-bit values, raw items from pbjson_encode. */
	if ((cJSON_IsString(v) || cJSON_IsRaw(v)) && v->valuestring != NULL) {
		const char *s = v->valuestring;
		char *end;
		long long ll;
		if (!(isdigit((unsigned char) s[0])
		        || (s[0] == '-' && isdigit((unsigned char) s[1])))) {
			return pbjson__fail(
			    c, "expected an integer, got \"%.40s\"", s);
		}
		errno = 0;
		ll = strtoll(s, &end, 10);
		if (*end != '\0') {
			return pbjson__fail(
			    c, "expected an integer, got \"%.40s\"", s);
		}
		if (errno == ERANGE || ll < min || ll > max) {
			return pbjson__fail(c, "integer out of range");
		}
		*out = ll;
		return 0;
	}
	return pbjson__fail(c, "expected an integer");
}

static int
pbjson__uint(pbjson__ctx *c, const cJSON *v, uint64_t max, uint64_t *out)
{
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (!isfinite(d) || d != floor(d)) {
			return pbjson__fail(c, "expected an integer");
		}
		if (d < 0 || d >= (double) max + 1.0) {
			return pbjson__fail(c, "integer out of range");
		}
		*out = (uint64_t) d;
		return 0;
	}
	/* Strings for 64-bit values, raw items from pbjson_encode. */
	if ((cJSON_IsString(v) || cJSON_IsRaw(v)) && v->valuestring != NULL) {
		const char *s = v->valuestring;
		char *end;
		unsigned long long ull;
		/* strtoull would take "-1" as 2^64-1. */
		if (!isdigit((unsigned char) s[0])) {
			return pbjson__fail(c,
			    "expected an unsigned integer, got \"%.40s\"", s);
		}
		errno = 0;
		ull = strtoull(s, &end, 10);
		if (*end != '\0') {
			return pbjson__fail(c,
			    "expected an unsigned integer, got \"%.40s\"", s);
		}
		if (errno == ERANGE || ull > max) {
			return pbjson__fail(c, "integer out of range");
		}
		*out = ull;
		return 0;
	}
	return pbjson__fail(c, "expected an unsigned integer");
}

static int
pbjson__double(pbjson__ctx *c, const cJSON *v, double *out)
{
	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return 0;
	}
	/* Strings for 64-bit values, raw items from pbjson_encode. */
	if ((cJSON_IsString(v) || cJSON_IsRaw(v)) && v->valuestring != NULL) {
		const char *s = v->valuestring;
		char *end;
		if (strcmp(s, "NaN") == 0) {
			*out = NAN;
			return 0;
		}
		if (strcmp(s, "Infinity") == 0
		    || strcmp(s, "-Infinity") == 0) {
			*out = s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		errno = 0;
		*out = strtod(s, &end);
		if (s[0] != '\0' && *end == '\0' && errno == 0
		    && isfinite(*out)) {
			return 0;
		}
	}
	return pbjson__fail(c, "expected a number");
}

/* "TicketPriority" -> "TICKET_PRIORITY_": the prefix of its values. */
static void
pbjson__enum_prefix(const char *short_name, char *out, size_t size)
{
	size_t o = 0;
	for (const char *p = short_name; *p != '\0' && o + 3 < size; p++) {
		if (p != short_name && isupper((unsigned char) *p)
		    && !isupper((unsigned char) p[-1])) {
			out[o++] = '_';
		}
		out[o++] = (char) toupper((unsigned char) *p);
	}
	out[o++] = '_';
	out[o] = '\0';
}

static int
pbjson__enum(pbjson__ctx *c, const ProtobufCEnumDescriptor *ed, const cJSON *v,
    int *out)
{
	if (cJSON_IsNumber(v)) {
		int64_t n;
		int rv = pbjson__int(c, v, INT32_MIN, INT32_MAX, &n);
		if (rv == 0) {
			*out = (int) n;
		}
		return rv;
	}
	if (cJSON_IsString(v) && v->valuestring != NULL) {
		char prefix[128];
		size_t plen;
		pbjson__enum_prefix(ed->short_name, prefix, sizeof(prefix));
		plen = strlen(prefix);
		for (unsigned i = 0; i < ed->n_values; i++) {
			const char *name = ed->values[i].name;
			if (strcasecmp(name, v->valuestring) == 0
			    || (strncmp(name, prefix, plen) == 0
			        && strcasecmp(name + plen, v->valuestring)
			            == 0)) {
				*out = ed->values[i].value;
				return 0;
			}
		}
		return pbjson__fail(
		    c, "unknown enum value \"%.60s\"", v->valuestring);
	}
	return pbjson__fail(c, "expected an enum name (string)");
}

static int
pbjson__b64_value(int ch)
{
	if (ch >= 'A' && ch <= 'Z') {
		return ch - 'A';
	}
	if (ch >= 'a' && ch <= 'z') {
		return ch - 'a' + 26;
	}
	if (ch >= '0' && ch <= '9') {
		return ch - '0' + 52;
	}
	if (ch == '+' || ch == '-') {
		return 62;
	}
	if (ch == '/' || ch == '_') {
		return 63;
	}
	return -1;
}

/* Standard or URL-safe base64, padding optional (proto3 JSON). */
static int
pbjson__bytes(pbjson__ctx *c, const cJSON *v, ProtobufCBinaryData *out)
{
	const char *s;
	size_t n, o = 0;
	uint32_t acc = 0;
	int bits = 0;
	uint8_t *data;

	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		return pbjson__fail(c, "expected a base64 string");
	}
	s = v->valuestring;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '=') {
		n--;
	}
	if (n % 4 == 1) {
		return pbjson__fail(c, "invalid base64 length");
	}
	if ((data = malloc(n * 3 / 4 + 1)) == NULL) {
		return pbjson__oom(c);
	}
	for (size_t i = 0; i < n; i++) {
		int d = pbjson__b64_value((unsigned char) s[i]);
		if (d < 0) {
			free(data);
			return pbjson__fail(c, "invalid base64 character");
		}
		acc = (acc << 6) | (uint32_t) d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			data[o++] = (uint8_t) (acc >> bits);
		}
	}
	if (o == 0) {
		free(data);
		data = NULL;
	}
	out->data = data;
	out->len = o;
	return 0;
}

static int pbjson__decode_message(pbjson__ctx *c,
    const ProtobufCMessageDescriptor *desc, const cJSON *obj,
    ProtobufCMessage **out);

/* Decode v into the value slot p of field f (zeroed or at default). */
static int
pbjson__decode_value(
    pbjson__ctx *c, const ProtobufCFieldDescriptor *f, const cJSON *v, void *p)
{
	int rv = 0;
	int64_t i64;
	uint64_t u64;
	double d;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rv = pbjson__int(c, v, INT32_MIN, INT32_MAX, &i64))
		    == 0) {
			*(int32_t *) p = (int32_t) i64;
		}
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rv = pbjson__uint(c, v, UINT32_MAX, &u64)) == 0) {
			*(uint32_t *) p = (uint32_t) u64;
		}
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((rv = pbjson__int(c, v, INT64_MIN, INT64_MAX, &i64))
		    == 0) {
			*(int64_t *) p = i64;
		}
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((rv = pbjson__uint(c, v, UINT64_MAX, &u64)) == 0) {
			*(uint64_t *) p = u64;
		}
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		if ((rv = pbjson__double(c, v, &d)) == 0) {
			if (isfinite(d) && fabs(d) > FLT_MAX) {
				return pbjson__fail(c, "float out of range");
			}
			*(float *) p = (float) d;
		}
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		if ((rv = pbjson__double(c, v, &d)) == 0) {
			*(double *) p = d;
		}
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (!cJSON_IsBool(v)) {
			return pbjson__fail(c, "expected true or false");
		}
		*(protobuf_c_boolean *) p = cJSON_IsTrue(v);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		rv = pbjson__enum(c, f->descriptor, v, (int *) p);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		char *s;
		if (!cJSON_IsString(v) || v->valuestring == NULL) {
			return pbjson__fail(c, "expected a string");
		}
		if (!pbjson__utf8_valid((const unsigned char *) v->valuestring,
		        strlen(v->valuestring))) {
			return pbjson__fail(c, "invalid UTF-8 in string");
		}
		if ((s = strdup(v->valuestring)) == NULL) {
			return pbjson__oom(c);
		}
		*(char **) p = s;
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		rv = pbjson__bytes(c, v, (ProtobufCBinaryData *) p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		rv = pbjson__decode_message(
		    c, f->descriptor, v, (ProtobufCMessage **) p);
		break;
	}
	return rv;
}

/* Free what a singular slot holds and put it back to its default, the
 * way protobuf_c_message_free_unpacked would judge ownership. */
static void
pbjson__clear_slot(const ProtobufCFieldDescriptor *f, void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		char *s = *(char **) p;
		if (s != NULL && s != f->default_value) {
			free(s);
		}
		*(char **) p = (char *) f->default_value;
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		free(((ProtobufCBinaryData *) p)->data);
		((ProtobufCBinaryData *) p)->data = NULL;
		((ProtobufCBinaryData *) p)->len = 0;
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		protobuf_c_message_free_unpacked(
		    *(ProtobufCMessage **) p, NULL);
		*(ProtobufCMessage **) p = NULL;
		break;
	default:
		memset(p, 0, pbjson__value_size(f->type));
		break;
	}
}

static int
pbjson__decode_repeated(pbjson__ctx *c, ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f, const cJSON *v)
{
	size_t n, sz = pbjson__value_size(f->type), i = 0;
	char *arr;
	const cJSON *el;

	if (!cJSON_IsArray(v)) {
		return pbjson__fail(c, "expected an array");
	}
	n = (size_t) cJSON_GetArraySize(v);
	if (n == 0) {
		return 0;
	}
	if ((arr = calloc(n, sz)) == NULL) {
		return pbjson__oom(c);
	}
	/* Zeroed elements are safe to free, so the array belongs to m from
	 * here on and an error below needs no cleanup of its own. */
	MEMBER(void *, m, f->offset) = arr;
	MEMBER(size_t, m, f->quantifier_offset) = n;
	cJSON_ArrayForEach(el, v)
	{
		size_t old = pbjson__push(c, NULL, (long) i);
		int rv;
		if (cJSON_IsNull(el)) {
			rv = pbjson__fail(c, "null is not a valid element");
		} else {
			rv = pbjson__decode_value(c, f, el, arr + i * sz);
		}
		if (rv != 0) {
			return rv;
		}
		pbjson__pop(c, old);
		i++;
	}
	return 0;
}

static int
pbjson__decode_field(pbjson__ctx *c, ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f, const cJSON *v, const char **oneofs)
{
	void *p = (char *) m + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		return cJSON_IsNull(v) ? 0
		                       : pbjson__decode_repeated(c, m, f, v);
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = &MEMBER(uint32_t, m, f->quantifier_offset);
		unsigned slot = (unsigned) (f - m->descriptor->fields);
		if (*which != 0) {
			return pbjson__fail(c,
			    "conflicts with \"%s\": only one member of a "
			    "oneof may be set",
			    oneofs[slot] != NULL ? oneofs[slot] : "?");
		}
		if (cJSON_IsNull(v)) {
			return 0;
		}
		/* The union is zeroed, then owned by m through the case. */
		memset(p, 0, pbjson__value_size(f->type));
		*which = f->id;
		for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
			if (m->descriptor->fields[i].quantifier_offset
			        == f->quantifier_offset
			    && (m->descriptor->fields[i].flags
			        & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
				oneofs[i] = f->name;
			}
		}
		return pbjson__decode_value(c, f, v, p);
	}
	if (cJSON_IsNull(v)) {
		return 0;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset
	    && f->type != PROTOBUF_C_TYPE_STRING
	    && f->type != PROTOBUF_C_TYPE_MESSAGE) {
		MEMBER(protobuf_c_boolean, m, f->quantifier_offset) = 1;
	}
	pbjson__clear_slot(f, p);
	return pbjson__decode_value(c, f, v, p);
}

static int
pbjson__decode_message(pbjson__ctx *c, const ProtobufCMessageDescriptor *desc,
    const cJSON *obj, ProtobufCMessage **out)
{
	ProtobufCMessage *m = NULL;
	const char **seen = NULL;   /* per field: the key that set it */
	const char **oneofs = NULL; /* per oneof member: who holds it */
	const cJSON *item;
	int rv = 0;

	if (!cJSON_IsObject(obj)) {
		return pbjson__fail(c, "expected a JSON object");
	}
	if (++c->depth > PBJSON_MAX_DEPTH) {
		rv = pbjson__fail(c, "nested too deeply");
		goto out;
	}
	m = malloc(desc->sizeof_message);
	seen = calloc(desc->n_fields + 1, sizeof(*seen));
	oneofs = calloc(desc->n_fields + 1, sizeof(*oneofs));
	if (m == NULL || seen == NULL || oneofs == NULL) {
		free(m);
		m = NULL;
		rv = pbjson__oom(c);
		goto out;
	}
	protobuf_c_message_init(desc, m);
	cJSON_ArrayForEach(item, obj)
	{
		const ProtobufCFieldDescriptor *f
		    = pbjson__find_field(desc, item->string);
		size_t old = pbjson__push(c, item->string, 0);
		unsigned slot;
		if (f == NULL) {
			rv = pbjson__fail(c, "unknown field");
			goto out;
		}
		slot = (unsigned) (f - desc->fields);
		if (seen[slot] != NULL) {
			rv = pbjson__fail(
			    c, "given twice (also as \"%s\")", seen[slot]);
			goto out;
		}
		seen[slot] = item->string;
		if ((rv = pbjson__decode_field(c, m, f, item, oneofs)) != 0) {
			goto out;
		}
		pbjson__pop(c, old);
	}
	*out = m;
	m = NULL;
out:
	c->depth--;
	protobuf_c_message_free_unpacked(m, NULL);
	free(seen);
	free(oneofs);
	return rv;
}

int
pbjson_decode(const ProtobufCMessageDescriptor *desc, const cJSON *json,
    ProtobufCMessage **out, char *err, size_t errlen)
{
	pbjson__ctx c = { .err = err, .errlen = errlen };

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (desc == NULL || out == NULL) {
		return OD_EINVAL;
	}
	return pbjson__decode_message(&c, desc, json, out);
}

int
pbjson_decode_string(const ProtobufCMessageDescriptor *desc, const char *text,
    size_t len, ProtobufCMessage **out, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *json;
	int rv;

	if (text == NULL) {
		text = "";
		len = 0;
	}
	json = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (json == NULL) {
		if (err != NULL && errlen > 0) {
			size_t at = end != NULL && end >= text
			    ? (size_t) (end - text)
			    : 0;
			snprintf(
			    err, errlen, "invalid JSON at offset %zu", at);
		}
		return OD_EINVAL;
	}
	for (; end != NULL && (size_t) (end - text) < len; end++) {
		if (!isspace((unsigned char) *end)) {
			cJSON_Delete(json);
			if (err != NULL && errlen > 0) {
				snprintf(err, errlen,
				    "trailing characters after JSON at offset "
				    "%zu",
				    (size_t) (end - text));
			}
			return OD_EINVAL;
		}
	}
	rv = pbjson_decode(desc, json, out, err, errlen);
	cJSON_Delete(json);
	return rv;
}
