/*
 * opsctl core: the service table, method spelling, request building and
 * tail lines (see opsctl.h).
 */
#include "opsctl.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "envelope.pb-c.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "pbjson/pbjson.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"
#include "util/util.h"

static const opsctl_service services[] = {
	{ "ticket", "ticket-service", &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor },
	{ "incident", "incident-service",
	    &opsdesk__v1__incident_request__descriptor,
	    &opsdesk__v1__incident_reply__descriptor },
	{ "prober", "health-prober", &opsdesk__v1__prober_request__descriptor,
	    &opsdesk__v1__prober_reply__descriptor },
	{ "status", "status-publisher",
	    &opsdesk__v1__status_request__descriptor,
	    &opsdesk__v1__status_reply__descriptor },
	{ "gateway", "telegram-gateway", NULL, NULL },
};
#define N_SERVICES (sizeof(services) / sizeof(services[0]))

const opsctl_service *
opsctl_service_find(const char *name)
{
	if (name == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < N_SERVICES; i++) {
		if (strcmp(services[i].name, name) == 0
		    || strcmp(services[i].exe, name) == 0) {
			return &services[i];
		}
	}
	return NULL;
}

const opsctl_service *
opsctl_services(size_t *n)
{
	*n = N_SERVICES;
	return services;
}

size_t
opsctl_rpc_services(void)
{
	return 4;
}

int
opsctl_method_name(const char *in, char *out, size_t size)
{
	size_t o = 0;

	if (in == NULL || !isalpha((unsigned char) in[0])) {
		return OD_EINVAL;
	}
	for (const char *p = in; *p != '\0'; p++) {
		unsigned char c = (unsigned char) *p;
		if (!isalnum(c) && c != '_') {
			return OD_EINVAL;
		}
		/* A capital after the first letter starts a new word. */
		if (isupper(c) && p != in && o > 0 && out[o - 1] != '_') {
			if (o + 1 >= size) {
				return OD_EINVAL;
			}
			out[o++] = '_';
		}
		if (o + 1 >= size) {
			return OD_EINVAL;
		}
		out[o++] = (char) tolower(c);
	}
	out[o] = '\0';
	return 0;
}

static const ProtobufCFieldDescriptor *
opsctl__method_field(const opsctl_service *svc, const char *name)
{
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field_by_name(
	        svc->request, name);
	if (f == NULL || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
	    || f->type != PROTOBUF_C_TYPE_MESSAGE) {
		return NULL;
	}
	return f;
}

char *
opsctl_method_list(const opsctl_service *svc)
{
	sbuf b = SBUF_INIT;

	if (svc == NULL || svc->request == NULL) {
		return strdup("");
	}
	for (unsigned i = 0; i < svc->request->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &svc->request->fields[i];
		if (opsctl__method_field(svc, f->name) != NULL) {
			sbuf_printf(&b, "%s%s", b.len ? ", " : "", f->name);
		}
	}
	if (sbuf_failed(&b)) {
		sbuf_free(&b);
		return NULL;
	}
	return sbuf_take(&b, NULL);
}

/* The actor as JSON; ids as strings so any int64 survives. */
static cJSON *
opsctl__actor_json(const opsctl_actor *a)
{
	cJSON *o = cJSON_CreateObject();
	char id[24], chat[24];

	snprintf(id, sizeof(id), "%" PRId64, a->user_id);
	snprintf(chat, sizeof(chat), "%" PRId64, a->chat_id);
	if (o == NULL || cJSON_AddStringToObject(o, "user_id", id) == NULL
	    || cJSON_AddBoolToObject(o, "is_admin", a->is_admin) == NULL
	    || cJSON_AddStringToObject(o, "name", a->name ? a->name : "")
	        == NULL
	    || cJSON_AddStringToObject(o, "chat_id", chat) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int
opsctl_build_request(const opsctl_service *svc, const char *method,
    const char *json, const char *request_id, const opsctl_actor *actor,
    ProtobufCMessage **out, char *err, size_t errlen)
{
	char name[64];
	cJSON *root = NULL, *body = NULL, *a = NULL;
	const char *end = NULL;
	int rv;

	if (svc == NULL || svc->request == NULL || actor == NULL) {
		snprintf(err, errlen, "this service has no methods");
		return OD_EINVAL;
	}
	if (opsctl_method_name(method, name, sizeof(name)) != 0
	    || opsctl__method_field(svc, name) == NULL) {
		char *list = opsctl_method_list(svc);
		snprintf(err, errlen, "%s has no method \"%s\" (methods: %s)",
		    svc->exe, method ? method : "", list ? list : "?");
		free(list);
		return OD_ENOTFOUND;
	}
	if (json == NULL || json[0] == '\0') {
		json = "{}";
	}
	body = cJSON_ParseWithLengthOpts(json, strlen(json), &end, 0);
	if (body == NULL) {
		snprintf(err, errlen, "%s: invalid JSON at offset %zu", name,
		    end != NULL && end >= json ? (size_t) (end - json) : 0);
		return OD_EINVAL;
	}
	while (end != NULL && isspace((unsigned char) *end)) {
		end++;
	}
	if (end != NULL && *end != '\0') {
		snprintf(
		    err, errlen, "%s: trailing characters after JSON", name);
		rv = OD_EINVAL;
		goto out;
	}
	/* The whole request as JSON, so pbjson's errors name the path
	 * from the method down ("create.priority: …"). */
	if ((root = cJSON_CreateObject()) == NULL
	    || cJSON_AddStringToObject(root, "request_id", request_id) == NULL
	    || (a = opsctl__actor_json(actor)) == NULL
	    || !cJSON_AddItemToObject(root, "actor", a)) {
		cJSON_Delete(a);
		rv = OD_ENOMEM;
		goto out;
	}
	if (!cJSON_AddItemToObject(root, name, body)) {
		rv = OD_ENOMEM;
		goto out;
	}
	body = NULL; /* owned by root now */
	rv = pbjson_decode(svc->request, root, out, err, errlen);
out:
	cJSON_Delete(body);
	cJSON_Delete(root);
	return rv;
}

static char *
opsctl__print(cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);
	char *copy = text != NULL ? strdup(text) : NULL;
	cJSON_free(text);
	cJSON_Delete(o);
	return copy;
}

char *
opsctl_tail_line(const void *frame, size_t len)
{
	const char *topic;
	size_t topic_len, body_len;
	const uint8_t *body;
	Opsdesk__V1__Envelope *env;
	cJSON *o = cJSON_CreateObject(), *e;
	char tbuf[BUS_MAX_TOPIC + 1];
	const char *error = NULL;

	if (o == NULL) {
		return NULL;
	}
	if (bus_frame_split(frame, len, &topic, &topic_len, &body, &body_len)
	    != 0) {
		cJSON_AddNullToObject(o, "topic");
		error = "malformed frame: no printable topic ended by 0x00";
		goto error;
	}
	memcpy(tbuf, topic, topic_len);
	tbuf[topic_len] = '\0';
	cJSON_AddStringToObject(o, "topic", tbuf);
	env = opsdesk__v1__envelope__unpack(NULL, body_len, body);
	if (env == NULL) {
		error = "envelope does not decode";
		goto error;
	}
	e = pbjson_encode(&env->base, 0);
	opsdesk__v1__envelope__free_unpacked(env, NULL);
	if (e == NULL || !cJSON_AddItemToObject(o, "envelope", e)) {
		cJSON_Delete(e);
		cJSON_Delete(o);
		return NULL;
	}
	return opsctl__print(o);
error:
	cJSON_AddStringToObject(o, "error", error);
	cJSON_AddNumberToObject(o, "bytes", (double) len);
	return opsctl__print(o);
}

int
opsctl_publish_frame(const char *topic, const char *json, const char *instance,
    uint8_t **frame, size_t *len, char *err, size_t errlen)
{
	Opsdesk__V1__Envelope *env = NULL;
	char id[33];
	int rv;

	if (topic == NULL || topic[0] == '\0'
	    || strlen(topic) >= BUS_MAX_TOPIC) {
		snprintf(err, errlen, "a topic is 1 to %d characters",
		    BUS_MAX_TOPIC - 1);
		return OD_EINVAL;
	}
	for (const char *p = topic; *p != '\0'; p++) {
		if (*p <= ' ' || *p > '~') {
			snprintf(err, errlen,
			    "topic: printable ASCII without spaces only");
			return OD_EINVAL;
		}
	}
	if (json == NULL || json[0] == '\0') {
		json = "{}";
	}
	rv = pbjson_decode_string(&opsdesk__v1__envelope__descriptor, json,
	    strlen(json), (ProtobufCMessage **) &env, err, errlen);
	if (rv != 0) {
		return rv;
	}
	/* Header strings set here point at static or stack memory: put the
	 * defaults back before the free so it frees only what it owns. */
	char *saved[4]
	    = { env->event_id, env->source, env->instance, env->topic };
	if (env->schema_version == 0) {
		env->schema_version = BUS_SCHEMA_VERSION;
	}
	if (env->event_id[0] == '\0') {
		od_random_hex(id, 16);
		env->event_id = id;
	}
	if (env->source[0] == '\0') {
		env->source = "opsctl";
	}
	if (env->instance[0] == '\0' && instance != NULL) {
		env->instance = (char *) instance;
	}
	if (env->seq == 0) {
		env->seq = 1;
	}
	if (env->ts_ms == 0) {
		env->ts_ms = od_now_ms();
	}
	if (env->topic[0] == '\0') {
		env->topic = (char *) topic;
	}
	rv = bus_frame_build(topic, env, frame, len);
	if (rv != 0) {
		snprintf(err, errlen, "cannot build the frame: %s",
		    od_strerror(rv));
	}
	env->event_id = saved[0];
	env->source = saved[1];
	env->instance = saved[2];
	env->topic = saved[3];
	opsdesk__v1__envelope__free_unpacked(env, NULL);
	return rv;
}
