/*
 * gw — the gateway's core: settings, the per-update context, backend
 * calls with their time-outs and user-facing failures, the inbox and the
 * workers, and the commit that makes an update's effects durable at once.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "log/log.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"

const char *const gw_db_names[] = { "meta", "inbox", "done", "conv", "outbox",
	"blocked", "subs", "admin_msg", "ob_queue", "ob_ready", "ob_chat",
	"alert_msg", "live_msg", "ob_age", NULL };

/* ---- settings ---- */

int
gw_settings_load(const config *c, gw_settings *s, char *err, size_t errlen)
{
	const cJSON *sec = config_section(c, "gateway");
	const cJSON *thr = NULL;
	const char *str;
	int64_t v;
	bool on;
	int rv;

	memset(s, 0, sizeof(*s));
	if ((rv = config_get_string(
	         sec, "gateway", "bot_username", "", &str, err, errlen))
	    != 0) {
		return rv;
	}
	od_strlcpy(s->bot_username, str[0] == '@' ? str + 1 : str,
	    sizeof(s->bot_username));
	if ((rv = config_get_object(
	         sec, "gateway", "throttle", &thr, err, errlen))
	        != 0
	    || (rv = config_get_bool(thr, "gateway.throttle", "enabled", true,
	            &on, err, errlen))
	        != 0) {
		return rv;
	}
	if ((rv = config_get_int(thr, "gateway.throttle", "global_per_second",
	         30, 0, 1000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->throttle.global_per_s = on ? (int) v : 0;
	if ((rv = config_get_int(thr, "gateway.throttle", "chat_per_second", 1,
	         0, 100, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->throttle.chat_per_s = on ? (int) v : 0;
	if ((rv = config_get_int(thr, "gateway.throttle", "group_per_minute",
	         20, 0, 1000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->throttle.group_per_min = on ? (int) v : 0;
	if ((rv = config_get_duration_ms(sec, "gateway", "conversation_ttl",
	         15 * 60 * 1000, 10 * 1000, 7LL * 24 * 3600 * 1000,
	         &s->conversation_ttl_ms, err, errlen))
	    != 0) {
		return rv;
	}
	if ((rv = config_get_int(
	         sec, "gateway", "workers", 16, 1, 64, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->workers = (int) v;
	if ((rv = config_get_duration_ms(sec, "gateway", "poll_timeout", 25000,
	         0, 50000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->poll_timeout_s = (int) (v / 1000);
	if ((rv = config_get_duration_ms(sec, "gateway", "backend_timeout",
	         2500, 100, 3000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->backend_timeout_ms = (int) v;
	if ((rv = config_get_string(sec, "gateway", "webhook_path",
	         "/telegram/webhook", &str, err, errlen))
	    != 0) {
		return rv;
	}
	od_strlcpy(s->webhook_path, str, sizeof(s->webhook_path));
	if ((rv = config_get_string(
	         sec, "gateway", "webhook_listen", "", &str, err, errlen))
	    != 0) {
		return rv;
	}
	od_strlcpy(s->webhook_listen, str, sizeof(s->webhook_listen));
	if ((rv = config_get_int(sec, "gateway", "webhook_max_connections", 64,
	         1, 10000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->webhook_max_connections = (int) v;
	if ((rv = config_get_duration_ms(sec, "gateway",
	         "webhook_header_timeout", 10000, 100, 600000, &v, err,
	         errlen))
	    != 0) {
		return rv;
	}
	s->webhook_header_timeout_ms = (int) v;
	if ((rv = config_get_duration_ms(sec, "gateway",
	         "webhook_body_timeout", 10000, 100, 600000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->webhook_body_timeout_ms = (int) v;
	if ((rv = config_get_int(sec, "gateway", "webhook_max_body", 1048576,
	         1024, 64 * 1048576, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->webhook_max_body = (int) v;
	/* Delivery and fairness (issue 12). */
	if ((rv = config_get_int(sec, "gateway", "send_concurrency", 16, 1,
	         256, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->send_concurrency = (int) v;
	if ((rv = config_get_duration_ms(sec, "gateway", "send_timeout", 10000,
	         500, 60000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->send_timeout_ms = (int) v;
	/* Without a throttle (tests, a local Bot API server) the command
	 * budget is off too, unless set. */
	if ((rv = config_get_int(sec, "gateway", "commands_per_minute",
	         on ? 20 : 0, 0, 100000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->command_budget = (int) v;
	if ((rv = config_get_int(sec, "gateway", "command_burst", 10, 1,
	         100000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->command_burst = (int) v;
	if ((rv = config_get_int(sec, "gateway", "outbox_max", 100000, 100,
	         100000000, &v, err, errlen))
	    != 0) {
		return rv;
	}
	s->outbox_max = (uint64_t) v;
	if ((rv = config_get_duration_ms(sec, "gateway", "pending_timeout",
	         60000, 1000, 3600000, &s->pending_timeout_ms, err, errlen))
	    != 0) {
		return rv;
	}
	/* The ultra tier (ultra.c): the live /status_page view. */
	if ((rv = config_get_duration_ms(sec, "gateway", "live_refresh", 30000,
	         1000, 3600000, &s->live_refresh_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "gateway", "live_ttl", 600000,
	            1000, 86400000, &s->live_ttl_ms, err, errlen))
	        != 0) {
		return rv;
	}
	/* Ultra tickets' chat: the tickets section's (ticket-service
	 * validates it too); 0 when unset. */
	if ((rv = config_get_int(config_section(c, "tickets"), "tickets",
	         "ultra_chat", 0, INT64_MIN, INT64_MAX, &s->ultra_chat, err,
	         errlen))
	    != 0) {
		return rv;
	}
	return 0;
}

const gw_settings *
gw_get_settings(gw *g)
{
	return &g->set;
}

config *
gw_config(gw *g)
{
	return g->cfg;
}

store *
gw_store(gw *g)
{
	return g->st;
}

metrics *
gw_metrics(gw *g)
{
	return g->m;
}

bool
gw_is_console(gw *g)
{
	return g->mode == GW_MODE_CONSOLE;
}

metric *
gw_counter(gw *g, const char *name, const char *help, const char *labels)
{
	return metrics_counter(g->m, name, help, labels);
}

void
gw_publish(gw *g, const char *kind, int64_t chat_id, const char *text)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__GatewayEvent ev = OPSDESK__V1__GATEWAY_EVENT__INIT;
	char topic[64];
	if (g->pub == NULL) {
		return;
	}
	ev.kind = (char *) kind;
	ev.chat_id = chat_id;
	ev.text = (char *) (text ? text : "");
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY;
	env.gateway = &ev;
	snprintf(topic, sizeof(topic), "gateway.%s", kind);
	bus_publish(g->pub, topic, &env, NULL);
}

/* ---- small parsing helpers shared by the commands ---- */

bool
gw_word(const char **p, char *w, size_t size)
{
	const char *s = *p;
	size_t n = 0;
	while (isspace((unsigned char) *s)) {
		s++;
	}
	if (*s == '\0') {
		*p = s;
		return false;
	}
	while (s[n] != '\0' && !isspace((unsigned char) s[n])) {
		n++;
	}
	if (n >= size) {
		n = size - 1;
	}
	memcpy(w, s, n);
	w[n] = '\0';
	s += n;
	while (s[0] != '\0' && !isspace((unsigned char) s[0])) {
		s++;
	}
	while (isspace((unsigned char) *s)) {
		s++;
	}
	*p = s;
	return true;
}

int
gw_parse_id(const char *s, const char *prefix, uint64_t *out)
{
	size_t pl = strlen(prefix);
	uint64_t v = 0;
	if (s == NULL) {
		return OD_EINVAL;
	}
	if (strncasecmp(s, prefix, pl) == 0) {
		s += pl;
		if (*s == '-') {
			s++;
		}
	}
	if (*s == '\0') {
		return OD_EINVAL;
	}
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char) *s) || v > UINT64_MAX / 10 - 9) {
			return OD_EINVAL;
		}
		v = v * 10 + (uint64_t) (*s - '0');
	}
	if (v == 0) {
		return OD_EINVAL;
	}
	*out = v;
	return 0;
}

/* ---- the context ---- */

static void
ctx_fail(gw_ctx *ctx, int rv)
{
	if (ctx->rv == 0) {
		ctx->rv = rv;
	}
}

void
gw_ctx_send_method(gw_ctx *ctx, const char *method, int64_t chat_id,
    cJSON *body, const char *tag)
{
	gw_out *o = ctx->outs;
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	/* Geometric growth: a broadcast queues one message per subscriber. */
	if (ctx->n_outs == ctx->cap_outs) {
		size_t cap = ctx->cap_outs ? ctx->cap_outs * 2 : 4;
		o = realloc(ctx->outs, cap * sizeof(*o));
		if (o != NULL) {
			ctx->cap_outs = cap;
		}
	}
	if (text == NULL || o == NULL || (method = strdup(method)) == NULL) {
		cJSON_free(text);
		if (o != NULL) {
			ctx->outs = o;
		}
		ctx_fail(ctx, OD_ENOMEM);
		return;
	}
	ctx->outs = o;
	o = &ctx->outs[ctx->n_outs++];
	memset(o, 0, sizeof(*o));
	o->method = (char *) method;
	o->chat_id = chat_id;
	o->body = strdup(text);
	cJSON_free(text);
	if (o->body == NULL) {
		ctx_fail(ctx, OD_ENOMEM);
	}
	if (tag != NULL) {
		od_strlcpy(o->tag, tag, sizeof(o->tag));
	}
}

static void
send_parts(gw_ctx *ctx, gw_lane lane, int64_t chat_id, const char *html,
    const gw_keyboard *kbd, const char *tag, int64_t edit_id)
{
	char **parts = NULL;
	size_t n = 0;
	int rv = gw_render_split(html, GW_TEXT_MAX, &parts, &n);
	if (rv != 0) {
		ctx_fail(ctx, rv);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		cJSON *body = cJSON_CreateObject();
		bool edit = edit_id != 0 && i == 0;
		cJSON_AddNumberToObject(body, "chat_id", (double) chat_id);
		if (edit) {
			cJSON_AddNumberToObject(
			    body, "message_id", (double) edit_id);
		}
		cJSON_AddStringToObject(
		    body, "text", parts[i][0] ? parts[i] : "…");
		cJSON_AddStringToObject(body, "parse_mode", "HTML");
		cJSON_AddTrueToObject(body, "disable_web_page_preview");
		/* The keyboard goes under the last part. */
		cJSON *kb = (i + 1 == n) ? gw_kbd_to_json(kbd) : NULL;
		if (kb != NULL) {
			cJSON_AddItemToObject(body, "reply_markup", kb);
		}
		size_t before = ctx->n_outs;
		gw_ctx_send_method(ctx,
		    edit ? "editMessageText" : "sendMessage", chat_id, body,
		    (i + 1 == n) ? tag : NULL);
		if (ctx->n_outs > before) {
			ctx->outs[before].lane = lane;
		}
	}
	gw_render_parts_free(parts, n);
}

void
gw_ctx_reply(gw_ctx *ctx, const char *html, const gw_keyboard *kbd)
{
	int64_t edit_id = ctx->edit ? ctx->u->message_id : 0;
	send_parts(ctx, GW_LANE_AUTO, ctx->chat_id, html, kbd, NULL, edit_id);
	/* One edit per press: later replies are new messages. */
	ctx->edit = false;
}

void
gw_ctx_send(gw_ctx *ctx, int64_t chat_id, const char *html,
    const gw_keyboard *kbd, const char *tag)
{
	send_parts(ctx, GW_LANE_AUTO, chat_id, html, kbd, tag, 0);
}

void
gw_ctx_send_lane(gw_ctx *ctx, gw_lane lane, int64_t chat_id, const char *html,
    const gw_keyboard *kbd, const char *tag)
{
	send_parts(ctx, lane, chat_id, html, kbd, tag, 0);
}

void
gw_ctx_edit(gw_ctx *ctx, gw_lane lane, int64_t chat_id, int64_t message_id,
    const char *html, const gw_keyboard *kbd)
{
	char **parts = NULL;
	size_t n = 0, before = ctx->n_outs;
	int rv = gw_render_split(html, GW_TEXT_MAX, &parts, &n);
	if (rv != 0) {
		ctx_fail(ctx, rv);
		return;
	}
	cJSON *body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "chat_id", (double) chat_id);
	cJSON_AddNumberToObject(body, "message_id", (double) message_id);
	cJSON_AddStringToObject(
	    body, "text", n > 0 && parts[0][0] ? parts[0] : "…");
	cJSON_AddStringToObject(body, "parse_mode", "HTML");
	cJSON_AddTrueToObject(body, "disable_web_page_preview");
	cJSON *kb = gw_kbd_to_json(kbd);
	if (kb != NULL) {
		cJSON_AddItemToObject(body, "reply_markup", kb);
	}
	gw_render_parts_free(parts, n);
	gw_ctx_send_method(ctx, "editMessageText", chat_id, body, NULL);
	if (ctx->n_outs > before) {
		ctx->outs[before].lane = lane;
	}
}

void
gw_ctx_send_document(gw_ctx *ctx, gw_lane lane, int64_t chat_id,
    const char *filename, const char *content, const char *caption_html)
{
	size_t before = ctx->n_outs;
	cJSON *body = cJSON_CreateObject();
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "chat_id", (double) chat_id);
	if (caption_html != NULL && caption_html[0] != '\0') {
		char **parts = NULL;
		size_t n = 0;
		if (gw_render_split(caption_html, 1024, &parts, &n) == 0
		    && n > 0) {
			cJSON_AddStringToObject(body, "caption", parts[0]);
			cJSON_AddStringToObject(body, "parse_mode", "HTML");
		}
		gw_render_parts_free(parts, n);
	}
	cJSON_AddStringToObject(doc, "filename", filename);
	cJSON_AddStringToObject(doc, "content", content ? content : "");
	cJSON_AddItemToObject(body, "document", doc);
	gw_ctx_send_method(ctx, "sendDocument", chat_id, body, NULL);
	if (ctx->n_outs > before) {
		ctx->outs[before].lane = lane;
	}
}

void
gw_ctx_put(gw_ctx *ctx, unsigned db, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	gw_kv_op *o = realloc(ctx->ops, (ctx->n_ops + 1) * sizeof(*o));
	if (o == NULL) {
		ctx_fail(ctx, OD_ENOMEM);
		return;
	}
	ctx->ops = o;
	o = &ctx->ops[ctx->n_ops];
	memset(o, 0, sizeof(*o));
	o->db = db;
	o->klen = klen;
	o->vlen = vlen;
	o->key = malloc(klen ? klen : 1);
	o->val = val ? malloc(vlen ? vlen : 1) : NULL;
	if (o->key == NULL || (val != NULL && o->val == NULL)) {
		free(o->key);
		free(o->val);
		ctx_fail(ctx, OD_ENOMEM);
		return;
	}
	memcpy(o->key, key, klen);
	if (val != NULL) {
		memcpy(o->val, val, vlen);
	}
	ctx->n_ops++;
}

void
gw_ctx_answer(gw_ctx *ctx, const char *text, bool alert)
{
	if (ctx->answer[0] == '\0') {
		od_strlcpy(ctx->answer, text, sizeof(ctx->answer));
		ctx->answer_alert = alert;
	}
}

void
gw_ctx_free(gw_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_outs; i++) {
		free(ctx->outs[i].method);
		free(ctx->outs[i].body);
	}
	free(ctx->outs);
	ctx->cap_outs = 0;
	for (size_t i = 0; i < ctx->n_ops; i++) {
		free(ctx->ops[i].key);
		free(ctx->ops[i].val);
	}
	free(ctx->ops);
	ctx->outs = NULL;
	ctx->ops = NULL;
	ctx->n_outs = ctx->n_ops = 0;
}

/* ---- backend calls ---- */

static const struct svc_info {
	const char *name;  /* config_service_url name, metrics label */
	const char *title; /* for users */
	const ProtobufCMessageDescriptor *req;
	const ProtobufCMessageDescriptor *rep;
} svc_info[GW_N_SERVICES] = {
	{ "ticket", "support desk (ticket-service)",
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor },
	{ "incident", "incident service",
	    &opsdesk__v1__incident_request__descriptor,
	    &opsdesk__v1__incident_reply__descriptor },
	{ "prober", "health prober", &opsdesk__v1__prober_request__descriptor,
	    &opsdesk__v1__prober_reply__descriptor },
	{ "status", "status service", &opsdesk__v1__status_request__descriptor,
	    &opsdesk__v1__status_reply__descriptor },
};

const char *
gw_service_title(gw_service s)
{
	return svc_info[s].title;
}

int
gw_call_quiet(gw *g, const Opsdesk__V1__Actor *actor, const char *rid,
    gw_service s, const char *method, ProtobufCMessage *msg,
    ProtobufCMessage **reply)
{
	return gw_call_quiet_within(
	    g, actor, rid, s, method, msg, reply, g->set.backend_timeout_ms);
}

int
gw_call_quiet_within(gw *g, const Opsdesk__V1__Actor *actor, const char *rid,
    gw_service s, const char *method, ProtobufCMessage *msg,
    ProtobufCMessage **reply, int timeout_ms)
{
	const struct svc_info *si = &svc_info[s];
	uint64_t req_buf[64];
	ProtobufCMessage *req = (ProtobufCMessage *) req_buf;
	ProtobufCMessage *rep = NULL;
	const ProtobufCFieldDescriptor *f;
	char labels[128];
	int rv;

	if (si->req->sizeof_message > sizeof(req_buf)) {
		return OD_EINTERNAL;
	}
	protobuf_c_message_init(si->req, req);
	f = protobuf_c_message_descriptor_get_field_by_name(
	    si->req, "request_id");
	*(const char **) ((char *) req + f->offset) = rid ? rid : "";
	f = protobuf_c_message_descriptor_get_field_by_name(si->req, "actor");
	*(const Opsdesk__V1__Actor **) ((char *) req + f->offset) = actor;
	if ((rv = rpc_request_set_method(req, method, msg)) != 0) {
		return rv;
	}
	uint64_t t0 = od_mono_ns();
	rv = rpc_client_call(g->svc[s], req, si->rep, &rep, timeout_ms);
	double secs = (double) (od_mono_ns() - t0) / 1e9;
	snprintf(labels, sizeof(labels), "service=\"%s\",method=\"%s\"",
	    si->name, method);
	metric_observe(
	    metrics_histogram(g->m, "opsdesk_gateway_backend_duration_seconds",
	        "Backend call latency", labels, NULL, 0),
	    secs);
	snprintf(labels, sizeof(labels), "service=\"%s\",result=\"%s\"",
	    si->name,
	    rv == 0                  ? (rpc_reply_error(rep) ? "error" : "ok")
	        : rv == OD_EUNAVAIL  ? "unavailable"
	        : rv == OD_ETIMEDOUT ? "timeout"
	                             : "failed");
	metric_inc(metrics_counter(g->m, "opsdesk_gateway_backend_calls_total",
	    "Backend calls by service and result", labels));
	if (rv != 0) {
		return rv;
	}
	const Opsdesk__V1__Error *e = rpc_reply_error(rep);
	if (e != NULL
	    && e->code != OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED) {
		*reply = rep;
		return OD_ERPC;
	}
	*reply = rep;
	return 0;
}

/* Methods that change something: a time-out there is not a failure. */
static bool
is_mutation(gw_service s, const char *method)
{
	static const char *const ticket[] = { "create", "reply", "note",
		"user_message", "assign", "set_priority", "set_status", "rate",
		"set_tier", "faq_add", "faq_remove", NULL };
	static const char *const incident[] = { "create", "ack", "update",
		"resolve", "postmortem_edit", "maintenance_create",
		"maintenance_cancel", "tick", "set_severity", NULL };
	const char *const *w = s == GW_TICKET ? ticket
	    : s == GW_INCIDENT                ? incident
	                                      : NULL;
	for (; w != NULL && *w != NULL; w++) {
		if (strcmp(*w, method) == 0) {
			return true;
		}
	}
	return false;
}

int
gw_call(gw_ctx *ctx, gw_service s, const char *method, ProtobufCMessage *msg,
    ProtobufCMessage **reply)
{
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	ProtobufCMessage *rep = NULL;
	char rid[64];
	sbuf b = SBUF_INIT;

	actor.user_id = ctx->user_id;
	actor.is_admin = ctx->is_admin;
	actor.name = ctx->name;
	actor.chat_id = ctx->chat_id;
	/* Deterministic per update: a re-handled update repeats its request
	 * ids, and the services answer from their idempotency cache. */
	snprintf(rid, sizeof(rid), "%s-%lld-%d", ctx->g->rid_prefix,
	    (long long) (ctx->u ? ctx->u->update_id : 0), ++ctx->calls);
	int rv = gw_call_quiet(
	    ctx->g, &actor, ctx->u ? rid : "", s, method, msg, &rep);
	if (rv == 0) {
		*reply = rep;
		return 0;
	}
	if (rv == OD_ERPC) {
		const Opsdesk__V1__Error *e = rpc_reply_error(rep);
		switch (e->code) {
		case OPSDESK__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND:
			sbuf_append(&b, "🔍 Not found");
			break;
		case OPSDESK__V1__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED:
			sbuf_append(&b, "⛔ Not allowed");
			break;
		case OPSDESK__V1__ERROR_CODE__ERROR_CODE_RESOURCE_EXHAUSTED:
			sbuf_append(&b, "⏳ Limit reached");
			break;
		case OPSDESK__V1__ERROR_CODE__ERROR_CODE_UNAVAILABLE:
			sbuf_append(&b, "⚠️ Temporarily unavailable");
			break;
		default:
			sbuf_append(&b, "⚠️ Could not do that");
			break;
		}
		if (e->message != NULL && e->message[0] != '\0') {
			/* "Limit reached: limit reached: …" says it twice. */
			const char *say = strchr(sbuf_str(&b), ' ') + 1;
			if (strncasecmp(e->message, say, strlen(say)) == 0) {
				b.len = (size_t) (say - b.data);
				b.data[b.len] = '\0';
				sbuf_appendc(&b,
				    (char) toupper(
				        (unsigned char) e->message[0]));
				gw_render_text(&b, e->message + 1, 500);
			} else {
				sbuf_append(&b, ": ");
				gw_render_text(&b, e->message, 500);
			}
		}
		gw_ctx_answer(ctx, "Could not do that", false);
		protobuf_c_message_free_unpacked(rep, NULL);
	} else if (rv == OD_ETIMEDOUT && ctx->u != NULL
	    && is_mutation(s, method)) {
		/* The request may still be done: it sits in the service's
		 * queue. Not a failure to report but one to confirm: the
		 * update is handled again with the same request ids (the
		 * service answers a repeat from its idempotency cache). */
		if (!ctx->u->final) {
			ctx->pending = true;
			ctx->pending_service = (int) s;
			sbuf_free(&b);
			return rv;
		}
		sbuf_printf(&b,
		    "⚠️ I could not confirm this: the %s has not answered "
		    "for %lld s. It may still be done, so please check "
		    "before you try again.",
		    svc_info[s].title,
		    (long long) ((od_now_ms() - ctx->u->first_ms) / 1000));
		gw_ctx_answer(ctx, "Not confirmed", false);
	} else {
		sbuf_printf(&b,
		    "⚠️ The %s is unavailable right now%s, so this cannot "
		    "be "
		    "done. Please try again in a minute.",
		    svc_info[s].title,
		    rv == OD_ETIMEDOUT ? " (it did not answer in time)" : "");
		gw_ctx_answer(ctx, "Service unavailable", false);
	}
	gw_ctx_refuse(ctx, sbuf_str(&b), NULL);
	sbuf_free(&b);
	return rv;
}

/* ---- the workers: chats in order, chats in parallel ----
 *
 * One queue for all workers. A worker takes the oldest update whose chat
 * no other worker is handling, so a chat's updates run one at a time and
 * in order, while a chat waiting on a slow backend holds up only itself.
 */

typedef struct gw_page gw_page;

typedef struct wq_item {
	struct wq_item *next;
	gw_update u;
	gw_page *page; /* NULL: not from a getUpdates page */
	size_t idx;    /* its place in the page */
} wq_item;

static void page_unref(gw_page *p);
static bool page_hand_in(gw *g, wq_item *it);

static void
item_free(wq_item *it)
{
	if (it != NULL) {
		gw_update_clear(&it->u);
		page_unref(it->page);
		free(it);
	}
}

struct gw_worker {
	gw *g;
	pthread_t th;
	bool started;
	bool busy;
	int64_t chat; /* the chat being handled when busy */
};

static int64_t
item_chat(const wq_item *it)
{
	return it->u.chat_id ? it->u.chat_id : it->u.user_id;
}

static bool
chat_busy(gw *g, int64_t chat)
{
	for (int i = 0; i < g->n_workers; i++) {
		if (g->workers[i].busy && g->workers[i].chat == chat) {
			return true;
		}
	}
	return false;
}

/* Unlink the first item whose chat is free; NULL if none. Locked. */
static wq_item *
take_item(gw *g)
{
	wq_item *prev = NULL;
	/* A chat seen busy or skipped keeps its later items behind it. */
	int64_t skipped[64];
	int n_skipped = 0;
	for (wq_item *it = g->wq_head; it != NULL; prev = it, it = it->next) {
		int64_t chat = item_chat(it);
		bool blocked = chat_busy(g, chat);
		for (int i = 0; i < n_skipped && !blocked; i++) {
			blocked = skipped[i] == chat;
		}
		if (blocked) {
			if (n_skipped < 64) {
				skipped[n_skipped++] = chat;
			}
			continue;
		}
		if (prev != NULL) {
			prev->next = it->next;
		} else {
			g->wq_head = it->next;
		}
		if (g->wq_tail == it) {
			g->wq_tail = prev;
		}
		it->next = NULL;
		g->wq_len--;
		return it;
	}
	return NULL;
}

static void *
worker_main(void *arg)
{
	gw_worker *w = arg;
	gw *g = w->g;
	pthread_mutex_lock(&g->wq_mtx);
	while (!g->stopping) {
		wq_item *it = take_item(g);
		if (it == NULL) {
			pthread_cond_wait(&g->wq_cond, &g->wq_mtx);
			continue;
		}
		w->busy = true;
		w->chat = item_chat(it);
		pthread_mutex_unlock(&g->wq_mtx);
		if (it->page == NULL) {
			gw_handle(g, &it->u);
			item_free(it);
		} else if (!page_hand_in(g, it)) {
			item_free(it);
		}
		pthread_mutex_lock(&g->wq_mtx);
		w->busy = false;
		/* The chat's next update may now go to any worker; with
		 * nothing queued there is no one to tell. */
		if (g->wq_head != NULL) {
			pthread_cond_broadcast(&g->wq_cond);
		}
	}
	pthread_mutex_unlock(&g->wq_mtx);
	return NULL;
}

static int
update_copy(gw_update *dst, const gw_update *src)
{
	*dst = *src;
	dst->text = src->text ? strdup(src->text) : NULL;
	dst->reply_to_text
	    = src->reply_to_text ? strdup(src->reply_to_text) : NULL;
	if ((src->text && !dst->text)
	    || (src->reply_to_text && !dst->reply_to_text)) {
		gw_update_clear(dst);
		return OD_ENOMEM;
	}
	return 0;
}

/* Queue a copy of u for the workers. */
static int
dispatch(gw *g, const gw_update *u)
{
	wq_item *it = calloc(1, sizeof(*it));
	if (it == NULL || update_copy(&it->u, u) != 0) {
		free(it);
		return OD_ENOMEM;
	}
	pthread_mutex_lock(&g->wq_mtx);
	if (g->wq_tail != NULL) {
		g->wq_tail->next = it;
	} else {
		g->wq_head = it;
	}
	g->wq_tail = it;
	g->wq_len++;
	pthread_cond_signal(&g->wq_cond);
	pthread_mutex_unlock(&g->wq_mtx);
	return 0;
}

/* ---- updates handled again: a mutation that timed out ---- */

typedef struct pend_item {
	struct pend_item *next;
	int64_t due_ms;
	gw_update u;
} pend_item;

static void
pending_add(gw *g, const gw_update *u)
{
	pend_item *p = calloc(1, sizeof(*p));
	int64_t now = od_now_ms(), delay;
	if (p == NULL || update_copy(&p->u, u) != 0) {
		free(p);
		log_error("update %lld: cannot retry it (out of memory)",
		    (long long) u->update_id);
		return;
	}
	if (p->u.attempt == 0) {
		p->u.first_ms = now;
	}
	p->u.attempt++;
	delay = 1000LL << (p->u.attempt < 3 ? p->u.attempt - 1 : 2);
	p->u.final = now + delay - p->u.first_ms >= g->set.pending_timeout_ms;
	p->due_ms = now + delay;
	metric_inc(gw_counter(g, "opsdesk_gateway_pending_retries_total",
	    "Updates handled again after a mutation timed out", NULL));
	pthread_mutex_lock(&g->pend_mtx);
	p->next = g->pend;
	g->pend = p;
	pthread_cond_signal(&g->pend_cond);
	pthread_mutex_unlock(&g->pend_mtx);
}

static void *
pending_main(void *arg)
{
	gw *g = arg;
	pthread_mutex_lock(&g->pend_mtx);
	while (!g->stopping) {
		int64_t now = od_now_ms(), next = now + 1000;
		pend_item **pp = &g->pend;
		while (*pp != NULL) {
			pend_item *p = *pp;
			if (p->due_ms > now) {
				next = p->due_ms < next ? p->due_ms : next;
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			pthread_mutex_unlock(&g->pend_mtx);
			dispatch(g, &p->u);
			gw_update_clear(&p->u);
			free(p);
			pthread_mutex_lock(&g->pend_mtx);
			pp = &g->pend;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t wait = next - now;
		int64_t ns = ts.tv_nsec + (wait % 1000) * 1000000;
		ts.tv_sec += wait / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&g->pend_cond, &g->pend_mtx, &ts);
	}
	pthread_mutex_unlock(&g->pend_mtx);
	return NULL;
}

#define WQ_MAX 2000 /* updates waiting for a worker */

bool
gw_intake_open(gw *g)
{
	return g->intake_open != 0;
}

bool
gw_backlogged(gw *g)
{
	if (!g->intake_open) {
		return true; /* starting: the inbox is not replayed yet */
	}
	pthread_mutex_lock(&g->wq_mtx);
	size_t n = g->wq_len;
	pthread_mutex_unlock(&g->wq_mtx);
	pthread_mutex_lock(&g->ob_mtx);
	uint64_t depth = g->ob_depth;
	pthread_mutex_unlock(&g->ob_mtx);
	return n > WQ_MAX || depth > g->set.outbox_max;
}

/* ---- accepting updates into the inbox ---- */

typedef struct accept_job {
	gw_update *u;
	size_t n;
	bool *fresh;
	int64_t next_offset;
} accept_job;

static int
accept_fn(store_txn *t, void *arg)
{
	accept_job *j = arg;
	MDB_txn *m = store_txn_mdb(t);
	store *s = store_txn_store(t);
	uint8_t k[8];
	MDB_val v;
	int rv;

	for (size_t i = 0; i < j->n; i++) {
		store_key_u64(k, (uint64_t) j->u[i].update_id);
		j->fresh[i] = false;
		if (store_get(m, store_db(s, GW_DB_DONE), k, 8, &v) == 0
		    || store_get(m, store_db(s, GW_DB_INBOX), k, 8, &v) == 0) {
			continue; /* a redelivery */
		}
		char *json = gw_update_to_json(&j->u[i]);
		if (json == NULL) {
			return OD_ENOMEM;
		}
		rv = store_put(
		    t, store_db(s, GW_DB_INBOX), k, 8, json, strlen(json));
		free(json);
		if (rv != 0) {
			return rv;
		}
		j->fresh[i] = true;
	}
	if (j->next_offset > 0) {
		uint8_t off[16];
		store_key_u64(off, (uint64_t) j->next_offset);
		store_key_u64(off + 8, (uint64_t) store_txn_now_ms(t));
		if ((rv = store_put(
		         t, store_db(s, GW_DB_META), "offset", 6, off, 16))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

/* ---- pruning the processed set ---- */

#define DONE_KEEP_MS (48LL * 3600 * 1000) /* Telegram keeps updates 24 h */
#define PRUNE_BATCH  2000

static int
prune_fn(store_txn *t, void *arg)
{
	int *pruned = arg;
	store *s = store_txn_store(t);
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int64_t cutoff = store_txn_now_ms(t) - DONE_KEEP_MS;

	*pruned = 0;
	if (mdb_cursor_open(store_txn_mdb(t), store_db(s, GW_DB_DONE), &cur)
	    != 0) {
		return OD_EIO;
	}
	/* Update ids grow with time: stop at the first one to keep. */
	while (*pruned < PRUNE_BATCH
	    && mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && v.mv_size == 8
	    && (int64_t) store_key_get_u64(v.mv_data) < cutoff) {
		if (mdb_cursor_del(cur, 0) != 0) {
			break;
		}
		(*pruned)++;
	}
	mdb_cursor_close(cur);
	return 0;
}

int
gw_prune(gw *g)
{
	int pruned = 0;
	int rv = store_write(g->st, prune_fn, &pruned);
	if (rv == 0 && pruned > 0) {
		log_debug("pruned %d processed update ids", pruned);
	}
	return rv;
}

int
gw_accept(gw *g, gw_update *u, size_t n, int64_t next_offset)
{
	accept_job j = { u, n, NULL, next_offset };
	int rv;

	if (n > 0 && (j.fresh = calloc(n, sizeof(bool))) == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = store_write(g->st, accept_fn, &j)) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (j.fresh[i]) {
				dispatch(g, &u[i]);
			} else {
				metric_inc(gw_counter(g,
				    "opsdesk_gateway_updates_duplicate_total",
				    "Redelivered updates ignored", NULL));
			}
		}
	}
	free(j.fresh);
	return rv;
}

/* Updates accepted before a crash or restart, in update_id order. */
static int
replay_inbox(gw *g)
{
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	int rv, n = 0;
	cJSON *pending = cJSON_CreateArray();

	if (pending == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = store_read_begin(g->st, &txn)) != 0) {
		cJSON_Delete(pending);
		return rv;
	}
	if ((rv = store_scan_open(
	         &sc, txn, store_db(g->st, GW_DB_INBOX), NULL, 0, NULL))
	    != 0) {
		store_read_end(txn);
		cJSON_Delete(pending);
		return rv;
	}
	/* Parse everything first and end the read txn before dispatching:
	 * handling an update writes, and a write that must grow the map
	 * waits for open read txns such as this one. */
	while (store_scan_next(&sc, &k, &v) == 0) {
		cJSON *j = cJSON_ParseWithLength(v.mv_data, v.mv_size);
		if (j != NULL && !cJSON_AddItemToArray(pending, j)) {
			cJSON_Delete(j);
		}
	}
	store_scan_close(&sc);
	store_read_end(txn);
	cJSON *j;
	cJSON_ArrayForEach(j, pending)
	{
		gw_update u;
		if (gw_update_parse(j, &u) == 0) {
			dispatch(g, &u);
			gw_update_clear(&u);
			n++;
		}
	}
	cJSON_Delete(pending);
	if (n > 0) {
		log_info("replaying %d accepted updates from the inbox", n);
	}
	return 0;
}

/* ---- handling one update ---- */

typedef struct commit_job {
	gw_ctx *ctx;
	int64_t update_id;
	bool mark_done;
	const char *once_key; /* gw_enqueue_once */
	uint64_t once_seq;
} commit_job;

static int
commit_fn(store_txn *t, void *arg)
{
	commit_job *j = arg;
	gw_ctx *ctx = j->ctx;
	store *s = store_txn_store(t);
	uint8_t k[8], now[8];
	int rv;

	if (j->once_key != NULL) {
		MDB_val v;
		if (store_get(store_txn_mdb(t), store_db(s, GW_DB_META),
		        j->once_key, strlen(j->once_key), &v)
		        == 0
		    && v.mv_size == 8
		    && store_key_get_u64(v.mv_data) >= j->once_seq) {
			return 0; /* already delivered */
		}
		store_key_u64(k, j->once_seq);
		if ((rv = store_put(t, store_db(s, GW_DB_META), j->once_key,
		         strlen(j->once_key), k, 8))
		    != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < ctx->n_outs; i++) {
		gw_lane lane = ctx->outs[i].lane;
		if (lane == GW_LANE_AUTO) {
			lane = ctx->lane;
		}
		if (lane == GW_LANE_AUTO) {
			lane = ctx->u != NULL ? GW_LANE_REPLY : GW_LANE_TICKET;
		}
		if ((rv = gw_outbox_put(t, &ctx->outs[i], (int) lane)) != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < ctx->n_ops; i++) {
		gw_kv_op *o = &ctx->ops[i];
		if (o->val != NULL) {
			rv = store_put(t, store_db(s, o->db), o->key, o->klen,
			    o->val, o->vlen);
		} else {
			rv = store_del(
			    t, store_db(s, o->db), o->key, o->klen, NULL, 0);
			rv = rv == OD_ENOTFOUND ? 0 : rv;
		}
		if (rv != 0) {
			return rv;
		}
	}
	if (j->mark_done) {
		store_key_u64(k, (uint64_t) j->update_id);
		store_key_u64(now, (uint64_t) store_txn_now_ms(t));
		if ((rv = store_put(t, store_db(s, GW_DB_DONE), k, 8, now, 8))
		    != 0) {
			return rv;
		}
		rv = store_del(t, store_db(s, GW_DB_INBOX), k, 8, NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	return 0;
}

int
gw_enqueue_once(gw *g, gw_ctx *ctx, const char *key, uint64_t seq)
{
	commit_job j = { ctx, 0, false, key, seq };
	int rv = store_write(g->st, commit_fn, &j);
	if (rv == 0) {
		gw_outbox_kick(g);
	}
	return rv;
}

uint64_t
gw_meta_u64(gw *g, const char *key)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	uint64_t n = 0;
	if (store_read_begin(g->st, &txn) == 0) {
		if (store_get(
		        txn, store_db(g->st, GW_DB_META), key, strlen(key), &v)
		        == 0
		    && v.mv_size == 8) {
			n = store_key_get_u64(v.mv_data);
		}
		store_read_end(txn);
	}
	return n;
}

int
gw_enqueue_lane(gw *g, gw_ctx *ctx, gw_lane lane)
{
	if (ctx->lane == GW_LANE_AUTO) {
		ctx->lane = lane;
	}
	return gw_enqueue(g, ctx);
}

int
gw_enqueue(gw *g, gw_ctx *ctx)
{
	commit_job j = { ctx, 0, false, NULL, 0 };
	if (ctx->n_outs == 0 && ctx->n_ops == 0) {
		return 0;
	}
	int rv = store_write(g->st, commit_fn, &j);
	if (rv == 0) {
		gw_outbox_kick(g);
	}
	return rv;
}

#define ENQUEUE_LINGER_MS 10

typedef struct async_job {
	gw *g;
	gw_ctx ctx;
	commit_job j;
} async_job;

/* One queued notification fewer: gw_enqueue_async and gw_free may wait. */
static void
async_release(gw *g)
{
	pthread_mutex_lock(&g->aq_mtx);
	g->aq_n--;
	pthread_cond_broadcast(&g->aq_cond);
	pthread_mutex_unlock(&g->aq_mtx);
}

static void
async_done(int rv, void *arg)
{
	async_job *a = arg;
	gw *g = a->g;
	if (rv != 0) {
		log_error("cannot queue a notification: %s", od_strerror(rv));
	} else {
		gw_outbox_kick(g);
	}
	gw_ctx_free(&a->ctx);
	free(a);
	async_release(g);
}

int
gw_enqueue_async(gw *g, gw_ctx *ctx)
{
	if (ctx->n_outs == 0 && ctx->n_ops == 0) {
		return 0;
	}
	async_job *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return OD_ENOMEM;
	}
	a->g = g;
	a->ctx = *ctx;
	a->ctx.u = NULL;
	a->j = (commit_job) { &a->ctx, 0, false, NULL, 0 };
	/* The messages are the job's now. */
	ctx->outs = NULL;
	ctx->ops = NULL;
	ctx->n_outs = ctx->n_ops = ctx->cap_outs = 0;
	pthread_mutex_lock(&g->aq_mtx);
	while (g->aq_n >= GW_ENQUEUE_AHEAD) {
		pthread_cond_wait(&g->aq_cond, &g->aq_mtx);
	}
	g->aq_n++;
	pthread_mutex_unlock(&g->aq_mtx);
	int rv = store_submit_lazy(
	    g->st, commit_fn, &a->j, async_done, a, ENQUEUE_LINGER_MS);
	if (rv != 0) {
		/* Not queued: done will not run. */
		gw_ctx_free(&a->ctx);
		free(a);
		async_release(g);
	}
	return rv;
}

void
gw_enqueue_wait(gw *g)
{
	pthread_mutex_lock(&g->aq_mtx);
	while (g->aq_n > 0) {
		pthread_cond_wait(&g->aq_cond, &g->aq_mtx);
	}
	pthread_mutex_unlock(&g->aq_mtx);
}

/* A reply in the admin chat to a ticket notification: a staff reply. */
static bool
admin_reply(gw_ctx *ctx, const char *text)
{
	const gw_update *u = ctx->u;
	uint8_t k[16];
	uint64_t id = 0;
	MDB_txn *txn = NULL;
	MDB_val v;

	/* In the admin chat, or the ultra tickets' chat (ultra.c). */
	if (u->reply_to_id == 0 || !ctx->is_admin
	    || (ctx->g->cfg->admin_chat != 0
	        && u->chat_id != ctx->g->cfg->admin_chat
	        && (ctx->g->set.ultra_chat == 0
	            || u->chat_id != ctx->g->set.ultra_chat))) {
		return false;
	}
	store_key_u64(k, (uint64_t) u->chat_id);
	store_key_u64(k + 8, (uint64_t) u->reply_to_id);
	if (store_read_begin(ctx->g->st, &txn) == 0) {
		if (store_get(
		        txn, store_db(ctx->g->st, GW_DB_ADMIN_MSG), k, 16, &v)
		        == 0
		    && v.mv_size == 8) {
			id = store_key_get_u64(v.mv_data);
		}
		store_read_end(txn);
	}
	if (id == 0 && u->reply_to_text != NULL) {
		/* The notification's text names the ticket ("T-12"). */
		const char *p = strstr(u->reply_to_text, "T-");
		uint64_t v2 = 0;
		for (p = p ? p + 2 : NULL; p && isdigit((unsigned char) *p);
		     p++) {
			v2 = v2 * 10 + (uint64_t) (*p - '0');
		}
		id = v2;
	}
	if (id == 0) {
		return false;
	}
	char line[64];
	snprintf(line, sizeof(line), "%llu ", (unsigned long long) id);
	sbuf b = SBUF_INIT;
	sbuf_append(&b, line);
	sbuf_append(&b, text);
	gw_cmd_reply(ctx, sbuf_str(&b));
	sbuf_free(&b);
	return true;
}

static void
count_update(gw *g, const gw_update *u)
{
	static const char *const kinds[]
	    = { "other", "message", "edited_message", "callback_query" };
	char labels[64];
	snprintf(labels, sizeof(labels), "type=\"%s\"", kinds[u->kind]);
	metric_inc(gw_counter(g, "opsdesk_gateway_updates_total",
	    "Updates handled, by type", labels));
}

static void
answer_callback(gw *g, const gw_update *u, const gw_ctx *ctx)
{
	botapi_result res;
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "callback_query_id", u->callback_id);
	if (ctx->answer[0] != '\0') {
		cJSON_AddStringToObject(body, "text", ctx->answer);
		if (ctx->answer_alert) {
			cJSON_AddTrueToObject(body, "show_alert");
		}
	}
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (text != NULL && g->api != NULL
	    && gw_botapi_call(g->api, "answerCallbackQuery", text, 5000, &res)
	        == 0) {
		gw_botapi_result_clear(&res);
	}
	cJSON_free(text);
}

/* Handle u into ctx: what to send and change, and how to commit it. */
static void
handle_collect(gw *g, const gw_update *u, gw_ctx *ctx, commit_job *j)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->g = g;
	ctx->u = u;
	ctx->user_id = u->user_id;
	ctx->chat_id = u->chat_id ? u->chat_id : u->user_id;
	ctx->is_admin = g->mode == GW_MODE_CONSOLE
	    || config_is_admin(g->cfg, u->user_id);
	ctx->is_group
	    = strcmp(u->chat_type, "private") != 0 && u->chat_type[0] != '\0';
	od_strlcpy(ctx->name, u->user_name[0] ? u->user_name : "user",
	    sizeof(ctx->name));
	count_update(g, u);

	budget_verdict bv = u->attempt == 0
	        && (u->kind == GW_UPD_CALLBACK
	            || (u->kind == GW_UPD_MESSAGE && u->text != NULL))
	    ? gw_budget_take(g->budget, u->user_id, od_now_ms())
	    : BUDGET_OK;
	if (bv != BUDGET_OK) {
		metric_inc(
		    gw_counter(g, "opsdesk_gateway_updates_throttled_total",
		        "Updates over the sender's command budget", NULL));
	}
	if (bv == BUDGET_WARN) {
		gw_ctx_answer(ctx, "Slow down, please", false);
		gw_ctx_reply(ctx,
		    "⏳ You are sending commands faster than I can answer. "
		    "Please wait a minute: until then I will not answer "
		    "more.",
		    NULL);
	} else if (bv == BUDGET_IGNORE) {
		gw_ctx_answer(ctx, "Slow down, please", false);
	} else if (u->kind == GW_UPD_CALLBACK) {
		gw_cb_dispatch(ctx, u->text ? u->text : "");
	} else if (u->kind == GW_UPD_MESSAGE && u->text != NULL) {
		/* A message from a chat that blocked us: it is back. */
		uint8_t k[8];
		store_key_u64(k, (uint64_t) ctx->chat_id);
		gw_ctx_put(ctx, GW_DB_BLOCKED, k, 8, NULL, 0);
		if (u->text[0] == '/') {
			/* Not a command we know the shape of: in a private
			 * chat say so; in a group it may be for another bot.
			 */
			if (gw_router_dispatch(ctx, u->text) == OD_ENOTFOUND
			    && !ctx->is_group) {
				gw_ctx_reply(ctx,
				    "Unknown command. Send /help for the "
				    "list.",
				    NULL);
			}
		} else if (admin_reply(ctx, u->text)) {
			/* done */
		} else if (gw_conv_handle(ctx, u->text)) {
			/* done */
		} else if (gw_conv_reply(ctx, u->text)) {
			/* a reply to a message naming a ticket */
		} else if (!ctx->is_group) {
			gw_conv_fallback(ctx, u->text);
		}
	}
	*j = (commit_job) { ctx, u->update_id, true, NULL, 0 };
	if (ctx->pending) {
		/* Nothing of this attempt is kept but, the first time, a
		 * word to the user; the update stays in the inbox (a
		 * restart handles it again too). */
		gw_ctx_free(ctx);
		ctx->rv = 0;
		ctx->edit = false;
		if (u->attempt == 0) {
			sbuf b = SBUF_INIT;
			sbuf_printf(&b,
			    "⏳ Still working on it: the %s is slow to "
			    "answer. I will confirm here.",
			    svc_info[ctx->pending_service].title);
			gw_ctx_reply(ctx, sbuf_str(&b), NULL);
			sbuf_free(&b);
			gw_ctx_answer(ctx, "Still working on it", false);
		}
		j->mark_done = false;
		pending_add(g, u);
	}
}

static bool
wants_answer(gw *g, const gw_update *u)
{
	return u->kind == GW_UPD_CALLBACK && g->mode != GW_MODE_CONSOLE
	    && u->attempt == 0;
}

/* Commit what handle_collect gathered, on its own. */
static int
handle_commit(
    gw *g, const gw_update *u, gw_ctx *ctx, commit_job *j, bool answer)
{
	int rv;
	if ((rv = ctx->rv) == 0) {
		rv = store_write(g->st, commit_fn, j);
	}
	if (rv != 0) {
		log_error("update %lld: could not commit its effects: %s",
		    (long long) u->update_id, od_strerror(rv));
	} else {
		gw_outbox_kick(g);
	}
	if (answer && wants_answer(g, u)) {
		answer_callback(g, u, ctx);
	}
	gw_ctx_free(ctx);
	if (g->mode == GW_MODE_CONSOLE) {
		gw_console_done(g);
	}
	return rv;
}

int
gw_handle(gw *g, const gw_update *u)
{
	gw_ctx ctx;
	commit_job j;
	handle_collect(g, u, &ctx, &j);
	return handle_commit(g, u, &ctx, &j, true);
}

/* ---- a getUpdates page: handled by the workers, one commit ----
 *
 * The updates of a page go to the workers at once; the poller waits for
 * them (up to PAGE_HOLD_MS) and commits everything they produced, the
 * processed marks and the new offset in one transaction. Updates not
 * handled by then go into the inbox in that same commit and commit on
 * their own later, as do updates of a chat with a later update in the
 * same page (so the later one sees their changes). A crash before the
 * commit loses nothing: the offset did not move, Telegram delivers the
 * page again and the backends answer repeated request ids from their
 * caches. After it, nothing is handled twice: every update is either
 * done or in the inbox.
 */

#define PAGE_HOLD_MS 200

enum { SLOT_WAITING = 0, SLOT_COMMITTING, SLOT_DONE };

typedef struct page_slot {
	const gw_update *u; /* the poller's; NULL: a redelivery */
	bool solo;          /* commits itself */
	int state;
	wq_item *it; /* handed in to the page's commit, with: */
	gw_ctx ctx;
	bool mark_done;
} page_slot;

struct gw_page {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	int refs;    /* the poller and the queued items */
	size_t left; /* members not handed in */
	int busy;    /* solo members committing */
	bool sealed; /* the page's commit is being made */
	bool committed;
	page_slot *slot;
	size_t n;
};

static void
page_unref(gw_page *p)
{
	if (p == NULL) {
		return;
	}
	pthread_mutex_lock(&p->mtx);
	bool last = --p->refs == 0;
	pthread_mutex_unlock(&p->mtx);
	if (last) {
		pthread_mutex_destroy(&p->mtx);
		pthread_cond_destroy(&p->cond);
		free(p->slot);
		free(p);
	}
}

static metric *
page_commits(gw *g, const char *how)
{
	char labels[32];
	snprintf(labels, sizeof(labels), "how=\"%s\"", how);
	return gw_counter(g, "opsdesk_gateway_update_commits_total",
	    "Updates of getUpdates pages committed with their page or on "
	    "their own",
	    labels);
}

/* A worker handles an item of a page: true when the page took it. */
static bool
page_hand_in(gw *g, wq_item *it)
{
	gw_page *p = it->page;
	page_slot *sl = &p->slot[it->idx];
	gw_ctx ctx;
	commit_job j;

	handle_collect(g, &it->u, &ctx, &j);
	/* The answer only stops the button's spinner: it need not wait
	 * for the commit. */
	if (wants_answer(g, &it->u)) {
		answer_callback(g, &it->u, &ctx);
	}
	pthread_mutex_lock(&p->mtx);
	if (!p->sealed && !sl->solo) {
		sl->ctx = ctx;
		sl->ctx.u = &it->u;
		sl->mark_done = j.mark_done;
		sl->it = it;
		sl->state = SLOT_DONE;
		if (--p->left == 0) {
			pthread_cond_broadcast(&p->cond);
		}
		pthread_mutex_unlock(&p->mtx);
		return true;
	}
	if (!p->sealed) {
		/* Before the page's commit: it waits for this one. */
		sl->state = SLOT_COMMITTING;
		p->busy++;
		pthread_mutex_unlock(&p->mtx);
		handle_commit(g, &it->u, &ctx, &j, false);
		metric_inc(page_commits(g, "own"));
		pthread_mutex_lock(&p->mtx);
		sl->state = SLOT_DONE;
		p->busy--;
		p->left--;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mtx);
		return false;
	}
	/* Too late for the page: it is in the inbox once the page's
	 * commit is through; then done on its own. */
	while (!p->committed) {
		pthread_cond_wait(&p->cond, &p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
	handle_commit(g, &it->u, &ctx, &j, false);
	metric_inc(page_commits(g, "own"));
	return false;
}

typedef struct page_job {
	gw_page *p;
	int64_t next_offset;
} page_job;

static int
inbox_put(store_txn *t, const gw_update *u)
{
	uint8_t k[8];
	char *json = gw_update_to_json(u);
	int rv;
	if (json == NULL) {
		return OD_ENOMEM;
	}
	store_key_u64(k, (uint64_t) u->update_id);
	rv = store_put(t, store_db(store_txn_store(t), GW_DB_INBOX), k, 8,
	    json, strlen(json));
	free(json);
	return rv;
}

static int
page_commit_fn(store_txn *t, void *arg)
{
	page_job *pj = arg;
	gw_page *p = pj->p;
	uint8_t off[16];
	int rv;

	for (size_t i = 0; i < p->n; i++) {
		page_slot *sl = &p->slot[i];
		if (sl->u == NULL) {
			continue;
		}
		if (sl->it != NULL && sl->ctx.rv == 0) {
			commit_job j = { &sl->ctx, sl->u->update_id,
				sl->mark_done, NULL, 0 };
			if ((rv = commit_fn(t, &j)) != 0) {
				return rv;
			}
			if (sl->mark_done) {
				continue;
			}
		} else if (sl->it == NULL && sl->state == SLOT_DONE) {
			continue; /* committed on its own */
		}
		/* Not handled yet, to handle again, or failed: kept. */
		if ((rv = inbox_put(t, sl->u)) != 0) {
			return rv;
		}
	}
	store_key_u64(off, (uint64_t) pj->next_offset);
	store_key_u64(off + 8, (uint64_t) store_txn_now_ms(t));
	return store_put(
	    t, store_db(store_txn_store(t), GW_DB_META), "offset", 6, off, 16);
}

/* Which updates of the page were seen before (done or in the inbox). */
static int
page_fresh(gw *g, const gw_update *u, size_t n, bool *fresh)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	int rv = store_read_begin(g->st, &txn);
	if (rv != 0) {
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t k[8];
		store_key_u64(k, (uint64_t) u[i].update_id);
		fresh[i]
		    = store_get(txn, store_db(g->st, GW_DB_DONE), k, 8, &v)
		        != 0
		    && store_get(txn, store_db(g->st, GW_DB_INBOX), k, 8, &v)
		        != 0;
		/* The same id twice in one page: the first counts. */
		for (size_t j = 0; j < i && fresh[i]; j++) {
			fresh[i] = u[j].update_id != u[i].update_id;
		}
	}
	store_read_end(txn);
	return 0;
}

int
gw_accept_page(gw *g, gw_update *u, size_t n, int64_t next_offset)
{
	gw_page *p = calloc(1, sizeof(*p));
	bool *fresh = calloc(n ? n : 1, sizeof(bool));
	wq_item **items = calloc(n ? n : 1, sizeof(wq_item *));
	size_t m = 0;
	int rv = OD_ENOMEM;

	if (p == NULL || fresh == NULL || items == NULL
	    || (p->slot = calloc(n ? n : 1, sizeof(page_slot))) == NULL
	    || (rv = page_fresh(g, u, n, fresh)) != 0) {
		goto fail;
	}
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		if (!fresh[i]) {
			metric_inc(gw_counter(g,
			    "opsdesk_gateway_updates_duplicate_total",
			    "Redelivered updates ignored", NULL));
			continue;
		}
		wq_item *it = calloc(1, sizeof(*it));
		if (it == NULL || update_copy(&it->u, &u[i]) != 0) {
			free(it);
			rv = OD_ENOMEM;
			goto fail;
		}
		it->page = p;
		it->idx = i;
		items[m++] = it;
		p->slot[i].u = &u[i];
		for (size_t j = i + 1; j < n && !p->slot[i].solo; j++) {
			p->slot[i].solo = fresh[j]
			    && item_chat(it)
			        == (u[j].chat_id ? u[j].chat_id
			                         : u[j].user_id);
		}
	}
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->refs = 1 + (int) m;
	p->left = m;
	if (m > 0) {
		/* All at once: one lock, one wake-up. */
		pthread_mutex_lock(&g->wq_mtx);
		for (size_t i = 0; i < m; i++) {
			if (g->wq_tail != NULL) {
				g->wq_tail->next = items[i];
			} else {
				g->wq_head = items[i];
			}
			g->wq_tail = items[i];
		}
		g->wq_len += m;
		pthread_cond_broadcast(&g->wq_cond);
		pthread_mutex_unlock(&g->wq_mtx);
	}
	free(items);
	items = NULL;

	int64_t until = od_mono_ms() + PAGE_HOLD_MS;
	pthread_mutex_lock(&p->mtx);
	while (p->left > 0 && !g->stopping) {
		int64_t now = od_mono_ms();
		if (now >= until) {
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (until - now) * 1000000LL;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&p->cond, &p->mtx, &ts);
	}
	p->sealed = true;
	while (p->busy > 0) {
		pthread_cond_wait(&p->cond, &p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);

	page_job pj = { p, next_offset };
	rv = store_write(g->st, page_commit_fn, &pj);
	pthread_mutex_lock(&p->mtx);
	p->committed = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	if (rv == 0) {
		gw_outbox_kick(g);
		metric_inc(gw_counter(g, "opsdesk_gateway_pages_total",
		    "getUpdates pages committed", NULL));
	} else {
		log_error("getUpdates page: could not commit it: %s",
		    od_strerror(rv));
	}
	int handed = 0;
	for (size_t i = 0; i < n; i++) {
		page_slot *sl = &p->slot[i];
		if (sl->it != NULL) {
			if (sl->ctx.rv != 0) {
				log_error("update %lld: could not commit its "
				          "effects: %s",
				    (long long) sl->u->update_id,
				    od_strerror(sl->ctx.rv));
			}
			gw_ctx_free(&sl->ctx);
			/* Not item_free: its page reference is dropped
			 * below, with everyone else's. */
			wq_item *it = sl->it;
			sl->it = NULL;
			gw_update_clear(&it->u);
			free(it);
			handed++;
		}
	}
	pthread_mutex_lock(&p->mtx);
	p->refs -= handed; /* never to 0: the poller's is left */
	pthread_mutex_unlock(&p->mtx);
	if (rv == 0) {
		metric_add(page_commits(g, "page"), (uint64_t) handed);
	}
	free(fresh);
	page_unref(p);
	return rv;

fail:
	for (size_t i = 0; items != NULL && i < m; i++) {
		gw_update_clear(&items[i]->u);
		free(items[i]);
	}
	if (p != NULL) {
		free(p->slot);
	}
	free(p);
	free(fresh);
	free(items);
	return rv;
}

/* ---- life cycle ---- */

int
gw_new(gw **out, const gw_options *opt)
{
	gw *g;
	char err[256];
	int rv;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		return OD_ENOMEM;
	}
	g->cfg = opt->cfg;
	g->m = opt->metrics;
	g->st = opt->store;
	g->pub = opt->publisher;
	g->mode = opt->mode;
	g->cin = opt->console_in ? opt->console_in : stdin;
	g->cout = opt->console_out ? opt->console_out : stdout;
	g->on_console_eof = opt->on_console_eof;
	g->eof_arg = opt->eof_arg;
	pthread_mutex_init(&g->ob_mtx, NULL);
	g->ob_wake_fd = -1;
	pthread_mutex_init(&g->aq_mtx, NULL);
	pthread_cond_init(&g->aq_cond, NULL);
	pthread_mutex_init(&g->pend_mtx, NULL);
	pthread_cond_init(&g->pend_cond, NULL);
	pthread_mutex_init(&g->console_mtx, NULL);
	pthread_cond_init(&g->console_cond, NULL);
	pthread_mutex_init(&g->wq_mtx, NULL);
	pthread_cond_init(&g->wq_cond, NULL);
	if ((rv = gw_settings_load(g->cfg, &g->set, err, sizeof(err))) != 0) {
		log_error("%s", err);
		goto fail;
	}
	if (g->mode == GW_MODE_CONSOLE) {
		/* A person reading a terminal is not rate limited. */
		memset(&g->set.throttle, 0, sizeof(g->set.throttle));
	} else if ((rv = gw_botapi_new(
	                &g->api, opt->api_url, opt->token, g->m))
	    != 0) {
		log_error("bot token missing or invalid");
		goto fail;
	}
	/* The bot id (the token's part before ':', not secret) keeps two
	 * bots' update ids apart in the services' idempotency caches. */
	snprintf(g->rid_prefix, sizeof(g->rid_prefix), "gw");
	if (opt->token != NULL) {
		size_t n = strspn(opt->token, "0123456789");
		if (n > 0 && n < 20 && opt->token[n] == ':') {
			snprintf(g->rid_prefix, sizeof(g->rid_prefix),
			    "gw%.*s", (int) n, opt->token);
		}
	}
	if (opt->webhook_secret != NULL) {
		od_strlcpy(g->webhook_secret, opt->webhook_secret,
		    sizeof(g->webhook_secret));
	}
	if ((rv = gw_budget_new(&g->budget,
	         g->mode == GW_MODE_CONSOLE ? 0 : g->set.command_budget,
	         g->set.command_burst))
	    != 0) {
		goto fail;
	}
	static const char *const names[]
	    = { "ticket", "incident", "prober", "status" };
	for (int i = 0; i < GW_N_SERVICES; i++) {
		if ((rv = rpc_client_open(&g->svc[i],
		         config_service_url(g->cfg, names[i]),
		         g->set.backend_timeout_ms))
		    != 0) {
			log_error("cannot open the %s client: %s", names[i],
			    od_strerror(rv));
			goto fail;
		}
	}
	g->n_workers = g->set.workers;
	if ((g->workers = calloc((size_t) g->n_workers, sizeof(gw_worker)))
	    == NULL) {
		rv = OD_ENOMEM;
		goto fail;
	}
	for (int i = 0; i < g->n_workers; i++) {
		g->workers[i].g = g;
	}
	*out = g;
	return 0;
fail:
	gw_free(g);
	return rv;
}

int
gw_start(gw *g)
{
	int rv;
	for (int i = 0; i < g->n_workers; i++) {
		if (pthread_create(
		        &g->workers[i].th, NULL, worker_main, &g->workers[i])
		    != 0) {
			return OD_ENOMEM;
		}
		g->workers[i].started = true;
	}
	if (pthread_create(&g->pend_th, NULL, pending_main, g) != 0) {
		return OD_ENOMEM;
	}
	g->pend_started = true;
	if ((rv = replay_inbox(g)) != 0 || (rv = gw_outbox_start(g)) != 0
	    || (rv = gw_notify_start(&g->notify, g)) != 0) {
		return rv;
	}
	g->intake_open = 1;
	gw_publish(g, "started", 0,
	    g->mode == GW_MODE_POLL          ? "poll"
	        : g->mode == GW_MODE_WEBHOOK ? "webhook"
	                                     : "console");
	switch (g->mode) {
	case GW_MODE_POLL:
		return gw_poll_start(g);
	case GW_MODE_CONSOLE:
		return gw_console_start(g);
	case GW_MODE_WEBHOOK:
		/* Its own listener, or the route on the HTTP listener. */
		return gw_hook_start(g);
	}
	return 0;
}

void
gw_free(gw *g)
{
	if (g == NULL) {
		return;
	}
	g->stopping = 1;
	gw_hook_stop(g);
	gw_poll_stop(g);
	gw_console_stop(g);
	gw_notify_stop(g->notify);
	gw_enqueue_wait(g); /* their done callbacks use g */
	if (g->pend_started) {
		pthread_mutex_lock(&g->pend_mtx);
		pthread_cond_broadcast(&g->pend_cond);
		pthread_mutex_unlock(&g->pend_mtx);
		pthread_join(g->pend_th, NULL);
		g->pend_started = false;
	}
	pthread_mutex_lock(&g->wq_mtx);
	pthread_cond_broadcast(&g->wq_cond);
	pthread_mutex_unlock(&g->wq_mtx);
	for (int i = 0; g->workers != NULL && i < g->n_workers; i++) {
		if (g->workers[i].started) {
			pthread_join(g->workers[i].th, NULL);
		}
	}
	/* Updates waiting to be handled again stay in the inbox. */
	for (pend_item *p = g->pend, *next; p != NULL; p = next) {
		next = p->next;
		gw_update_clear(&p->u);
		free(p);
	}
	g->pend = NULL;
	/* Unhandled updates stay in the inbox for the next start. */
	for (wq_item *it = g->wq_head, *next; it != NULL; it = next) {
		next = it->next;
		item_free(it);
	}
	pthread_mutex_destroy(&g->wq_mtx);
	pthread_cond_destroy(&g->wq_cond);
	free(g->workers);
	gw_outbox_stop(g);
	for (int i = 0; i < GW_N_SERVICES; i++) {
		rpc_client_close(g->svc[i]);
	}
	gw_budget_free(g->budget);
	gw_botapi_free(g->api);
	pthread_mutex_destroy(&g->ob_mtx);
	pthread_mutex_destroy(&g->aq_mtx);
	pthread_cond_destroy(&g->aq_cond);
	pthread_mutex_destroy(&g->pend_mtx);
	pthread_cond_destroy(&g->pend_cond);
	pthread_mutex_destroy(&g->console_mtx);
	pthread_cond_destroy(&g->console_cond);
	free(g);
}

void *
gw_result(const ProtobufCMessage *rep, const char *name)
{
	const ProtobufCFieldDescriptor *f;
	if (rep == NULL) {
		return NULL;
	}
	f = protobuf_c_message_descriptor_get_field_by_name(
	    rep->descriptor, name);
	if (f == NULL || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0) {
		return NULL;
	}
	if (*(const uint32_t *) ((const char *) rep + f->quantifier_offset)
	    != f->id) {
		return NULL;
	}
	return *(void *const *) ((const char *) rep + f->offset);
}

void *
gw_ask(gw_ctx *ctx, gw_service s, const char *method, ProtobufCMessage *msg,
    const char *result, ProtobufCMessage **rep)
{
	*rep = NULL;
	if (gw_call(ctx, s, method, msg, rep) != 0) {
		*rep = NULL;
		return NULL;
	}
	void *r = gw_result(*rep, result);
	if (r == NULL) {
		gw_ctx_reply(ctx,
		    "⚠️ The service gave an answer I cannot show. Please "
		    "try "
		    "again later.",
		    NULL);
	}
	return r;
}

void
gw_reply_free(ProtobufCMessage *rep)
{
	if (rep != NULL) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
}

void *
gw_peek(gw_ctx *ctx, gw_service s, const char *method, ProtobufCMessage *msg,
    const char *result, ProtobufCMessage **rep)
{
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	char rid[64];
	actor.user_id = ctx->user_id;
	actor.is_admin = ctx->is_admin;
	actor.name = ctx->name;
	actor.chat_id = ctx->chat_id;
	snprintf(rid, sizeof(rid), "%s-%lld-%d", ctx->g->rid_prefix,
	    (long long) (ctx->u ? ctx->u->update_id : 0), ++ctx->calls);
	*rep = NULL;
	if (gw_call_quiet(
	        ctx->g, &actor, ctx->u ? rid : "", s, method, msg, rep)
	    != 0) {
		gw_reply_free(*rep);
		*rep = NULL;
		return NULL;
	}
	return gw_result(*rep, result);
}

void
gw_unavailable(sbuf *b, gw_service s)
{
	sbuf_printf(b, "⚠️ <i>The %s is unavailable right now.</i>\n",
	    gw_service_title(s));
}

/* ---- the schema of the gateway section (common/config) ---- */

static const config_field throttle_fields[] = {
	{ .key = "enabled", .type = CONFIG_BOOL },
	{ .key = "global_per_second", .type = CONFIG_INT },
	{ .key = "chat_per_second", .type = CONFIG_INT },
	{ .key = "group_per_minute", .type = CONFIG_INT },
	{ .key = NULL },
};
static const config_field gateway_fields[] = {
	{ .key = "bot_username", .type = CONFIG_STRING, .max = 63 },
	{ .key = "throttle",
	    .type = CONFIG_OBJECT,
	    .members = throttle_fields },
	{ .key = "conversation_ttl", .type = CONFIG_DURATION },
	{ .key = "workers", .type = CONFIG_INT },
	{ .key = "poll_timeout", .type = CONFIG_DURATION },
	{ .key = "backend_timeout", .type = CONFIG_DURATION },
	{ .key = "webhook_path", .type = CONFIG_STRING, .max = 127 },
	{ .key = "webhook_listen", .type = CONFIG_STRING, .max = 127 },
	{ .key = "webhook_max_connections", .type = CONFIG_INT },
	{ .key = "webhook_header_timeout", .type = CONFIG_DURATION },
	{ .key = "webhook_body_timeout", .type = CONFIG_DURATION },
	{ .key = "webhook_max_body", .type = CONFIG_INT },
	{ .key = "send_concurrency", .type = CONFIG_INT },
	{ .key = "send_timeout", .type = CONFIG_DURATION },
	{ .key = "commands_per_minute", .type = CONFIG_INT },
	{ .key = "command_burst", .type = CONFIG_INT },
	{ .key = "outbox_max", .type = CONFIG_INT },
	{ .key = "pending_timeout", .type = CONFIG_DURATION },
	{ .key = "status_coalesce", .type = CONFIG_DURATION },
	{ .key = "live_refresh", .type = CONFIG_DURATION },
	{ .key = "live_ttl", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field gateway_section
    = { .key = "gateway", .type = CONFIG_OBJECT, .members = gateway_fields };

static int
gateway_check(const config *c, char *err, size_t errlen)
{
	gw_settings s;
	return gw_settings_load(c, &s, err, errlen);
}
CONFIG_SCHEMA(gateway, gateway_section, gateway_check)
