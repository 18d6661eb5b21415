/*
 * telegram-gateway — the chat front end of opsdesk. It holds no business
 * rules: it parses Telegram updates, authorizes and routes them to the
 * four services over req/rep, and renders their replies. This header is
 * the internal face of gateway_core, shared by its files and its tests.
 *
 * Flow of an update: a source (poll, webhook, console) accepts it into the
 * store's inbox (durable, deduplicated on update_id) and queues it for
 * the workers (a getUpdates page skips the inbox: gw_accept_page commits
 * the page's effects with its offset), which take one update per chat at
 * a time, so each chat is handled in order while chats run concurrently.
 * The worker routes it (router.c, callbacks.c, conversation.c), collecting
 * outgoing messages and
 * state changes in a gw_ctx; one store job then enqueues the messages in the
 * outbox, applies the state changes, marks the update processed and drops it
 * from the inbox. Backend requests carry request ids derived from the update
 * id, so an update handled again after a crash gets the services' cached
 * replies and changes nothing twice. The outbox sender (outbox.c) delivers
 * with throttling and Bot API error handling.
 */
#ifndef OPSDESK_GATEWAY_H
#define OPSDESK_GATEWAY_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus/bus.h"
#include "common.pb-c.h"
#include "config/config.h"
#include "envelope.pb-c.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "util/util.h"

#define GW_TEXT_MAX   4096 /* Telegram's limit per message */
#define GW_CBDATA_MAX 64   /* callback_data bytes */
#define GW_KBD_ROWS   12
#define GW_KBD_COLS   5

/* ---- render.c: HTML text, keyboards, splitting, symbols ---- */

typedef struct gw_button {
	char text[64];
	char data[GW_CBDATA_MAX + 1];
} gw_button;

typedef struct gw_keyboard {
	int n_rows;
	int n_cols[GW_KBD_ROWS];
	gw_button b[GW_KBD_ROWS][GW_KBD_COLS];
} gw_keyboard;

/* Start a new row of buttons. */
void gw_kbd_row(gw_keyboard *k);
/* Add a button to the current row (a row is started if none). Silently
 * drops buttons beyond the grid or with data over 64 bytes: a keyboard is
 * a convenience, the commands always work. */
void gw_kbd_button(gw_keyboard *k, const char *text, const char *data);
/* The keyboard as a Bot API reply_markup object, or NULL when empty.
 * Caller owns the tree. */
cJSON *gw_kbd_to_json(const gw_keyboard *k);

/* Append outside text (users', services') escaped for Telegram HTML,
 * invalid UTF-8 replaced, cut to max code points with "…" (0: no cut). */
void gw_render_text(sbuf *b, const char *s, size_t max);
/* Time as "2026-11-27 13:05 UTC (5 min ago)"; "—" for 0. */
void gw_render_time(sbuf *b, int64_t ms, int64_t now_ms);
/* Consistent symbols for states. */
const char *gw_render_component_symbol(int component_state);
const char *gw_render_component_name(int component_state);
const char *gw_render_public_symbol(const char *statuspage_status);
/* "Major outage" for major_outage …; "Unknown" otherwise. */
const char *gw_render_public_name(const char *statuspage_status);
/* /health's line of a component's locations (the prober's decider):
 * "\n    📍 eu-west 🟢 12 ms · us-east not reporting"; nothing without
 * locations (commands_status.c). */
void gw_render_locations(sbuf *b, const Opsdesk__V1__TargetStatus *t);
/* Severity order of component statuses: operational 0, maintenance 1,
 * degraded 2, partial 3, major 4. */
int gw_render_public_rank(const char *statuspage_status);
const char *gw_render_severity_name(int severity);
const char *gw_render_severity_symbol(int severity);
const char *gw_render_incident_status(int status);
const char *gw_render_ticket_status(int status);
const char *gw_render_ticket_status_symbol(int status);
const char *gw_render_priority_name(int priority);
const char *gw_render_tier_name(int tier);

/* Length in UTF-16 code units, as Telegram counts. */
size_t gw_render_tg_len(const char *s, size_t n);
/*
 * Split html into parts of at most max UTF-16 units, at line boundaries
 * when possible, otherwise at a character boundary outside tags and
 * entities; tags open at a cut are closed and reopened. *parts is an array
 * of *n strings; free with gw_render_parts_free.
 */
int gw_render_split(const char *html, size_t max, char ***parts, size_t *n);
void gw_render_parts_free(char **parts, size_t n);
/* Plain text of Telegram HTML (tags dropped, entities decoded) for the
 * console. Caller frees with free(). */
char *gw_render_to_plain(const char *html);

/* ---- callbacks.c: compact, versioned callback data ---- */

#define CB_VERSION "1"

/* A decoded button: action code and up to two arguments. */
typedef struct cb_data {
	char action[8];
	char arg1[32];
	char arg2[32];
	int nargs;
} cb_data;

/* "1:<action>[:<arg1>[:<arg2>]]" into out (65 bytes). OD_ETOOBIG when
 * over 64 bytes, OD_EINVAL for characters outside [A-Za-z0-9_.-]. */
int gw_cb_encode(char *out, size_t size, const char *action, const char *a1,
    const char *a2);
/* Parse and validate client-controlled data. OD_ESTATE for another
 * version (an old button), OD_EINVAL for anything malformed. */
int gw_cb_decode(const char *data, cb_data *out);
struct gw_ctx;
/* Run a pressed button as the command it names, as the presser. */
int gw_cb_dispatch(struct gw_ctx *ctx, const char *data);

/* ---- the update ---- */

typedef enum gw_update_kind {
	GW_UPD_OTHER = 0,
	GW_UPD_MESSAGE,
	GW_UPD_EDITED,
	GW_UPD_CALLBACK,
} gw_update_kind;

typedef struct gw_update {
	int64_t update_id;
	gw_update_kind kind;
	int64_t chat_id;
	char chat_type[16]; /* private, group, supergroup, channel */
	int64_t user_id;
	char user_name[128];
	char *text;          /* message text or callback data; owned */
	int64_t message_id;  /* the message (of the button, for callbacks) */
	int64_t reply_to_id; /* replied-to message id, 0: none */
	char *reply_to_text; /* its text, owned, may be NULL */
	char callback_id[128];
	/* Not from Telegram: a mutation that timed out is handled again
	 * (same request ids) until it is confirmed or pending_timeout. */
	int attempt;      /* 0: first handling */
	int64_t first_ms; /* when the first attempt timed out */
	bool final;       /* the last attempt: tell the user either way */
} gw_update;

/* Parse a Bot API Update object (borrowed). 0, or OD_EMALFORMED without
 * an update_id. Unknown kinds parse as GW_UPD_OTHER. */
int gw_update_parse(const cJSON *j, gw_update *out);
void gw_update_clear(gw_update *u); /* frees owned strings; NULL-safe */
/* Serialize to the JSON form gw_update_parse reads (for the inbox). Caller
 * frees with free(). */
char *gw_update_to_json(const gw_update *u);

/* ---- router.c: commands ---- */

typedef struct gw_ctx gw_ctx;
typedef struct gw gw;

/* Return GW_USAGE from a handler to answer the command's usage line. */
#define GW_USAGE (-2)

typedef int (*gw_cmd_fn)(gw_ctx *ctx, const char *args);

typedef struct gw_command {
	const char *name;
	bool admin;
	bool menu; /* listed in setMyCommands */
	gw_cmd_fn fn;
	const char *usage;
	const char *about;
} gw_command;

/*
 * Split "/name@bot args" into name (lowercased, without the @) and args.
 * bot_username may be NULL/"" (then any @suffix is accepted). Returns
 * false when text is not a command or is addressed to another bot.
 */
bool gw_router_parse(const char *text, const char *bot_username, char *name,
    size_t name_size, const char **args);
const gw_command *gw_router_find(const char *name);
const gw_command *gw_router_commands(size_t *n);
/* Route a text line as a command (authorizing admin commands). */
int gw_router_dispatch(gw_ctx *ctx, const char *text);

/* Command handlers (commands_*.c). */
/* clang-format off */
#define GW_COMMANDS(X) \
	X(help) X(help_operations) X(help_admin) X(contact) X(status) \
	X(subscribe) X(unsubscribe) X(health) X(monitor) X(support) \
	X(tickets) X(ticket) X(faq) X(newticket) X(addmsg) X(rate) X(queue) \
	X(reply) X(note) X(close) X(resolve) X(pending) X(assign) \
	X(priority) X(tier) X(incident) X(severity) X(maintenance) X(ops) \
	X(tick) X(report) X(cancel) X(offer)
/* clang-format on */
#define GW_DECLARE_CMD(n) int gw_cmd_##n(gw_ctx *ctx, const char *args);
GW_COMMANDS(GW_DECLARE_CMD)
#undef GW_DECLARE_CMD
/* /start: the main menu; "/start subscribe" (the status page's deep link
 * t.me/<bot>?start=subscribe) subscribes the chat. commands_status.c */
int gw_cmd_start(gw_ctx *ctx, const char *args);

/* ---- the context of handling one update ---- */

/*
 * Delivery lanes, in strict priority: a message of a lower lane goes only
 * when no message of a higher lane may go. Inside a lane chats take turns
 * (round-robin), each chat's messages in order.
 */
typedef enum gw_lane {
	GW_LANE_AUTO
	= 0,            /* the ctx's lane: REPLY with an update, else TICKET */
	GW_LANE_REPLY,  /* answers to the user's own action, edits in place */
	GW_LANE_ALERT,  /* admin alerts and SLA breaches */
	GW_LANE_TICKET, /* ticket notifications to users */
	GW_LANE_BROADCAST, /* status changes to subscribers */
} gw_lane;
#define GW_LANES 4

typedef struct gw_out {
	char *method; /* sendMessage, editMessageText */
	int64_t chat_id;
	char *body;   /* JSON body */
	char tag[32]; /* "t<ticket id>": remember message id -> ticket */
	gw_lane lane; /* AUTO: the ctx's */
} gw_out;

typedef struct gw_kv_op {
	unsigned db; /* index in the gateway's DB list */
	void *key;
	size_t klen;
	void *val; /* NULL: delete */
	size_t vlen;
} gw_kv_op;

struct gw_ctx {
	gw *g;
	const gw_update *u;
	int64_t user_id;
	int64_t chat_id;
	bool is_admin;
	bool is_group;
	char name[128];
	int calls; /* request ids: gw<bot>-<update>-<calls> */
	bool edit; /* reply by editing u->message_id */
	gw_out *outs;
	size_t n_outs;
	gw_kv_op *ops;
	size_t n_ops;
	char answer[200]; /* answerCallbackQuery text */
	bool answer_alert;
	int rv;       /* first error while collecting */
	gw_lane lane; /* of messages queued without one (AUTO: by kind) */
	bool pending; /* a mutation timed out: handle the update again */
	int pending_service; /* the gw_service that did not answer */
	size_t cap_outs;
};

/* Queue a reply (HTML text, keyboard may be NULL). Texts over 4096 are
 * split; with ctx->edit the first part edits the pressed message. */
void gw_ctx_reply(gw_ctx *ctx, const char *html, const gw_keyboard *kbd);
/* Queue a Bot API call (body: takes ownership). */
void gw_ctx_send_method(gw_ctx *ctx, const char *method, int64_t chat_id,
    cJSON *body, const char *tag);
/* Queue a message to any chat. tag may be NULL. */
void gw_ctx_send(gw_ctx *ctx, int64_t chat_id, const char *html,
    const gw_keyboard *kbd, const char *tag);
/* The same in a given lane (GW_LANE_ALERT for an admin alert, ...). */
void gw_ctx_send_lane(gw_ctx *ctx, gw_lane lane, int64_t chat_id,
    const char *html, const gw_keyboard *kbd, const char *tag);
/* Edit a message already sent (text over 4096 is cut, not split): an
 * alert updated in place. kbd may be NULL (the buttons go). A 400
 * "message is not modified" counts as done. */
void gw_ctx_edit(gw_ctx *ctx, gw_lane lane, int64_t chat_id,
    int64_t message_id, const char *html, const gw_keyboard *kbd);
/* Send a text file (sendDocument, multipart) with an HTML caption (may be
 * NULL; cut to 1024). content is copied; it must be text (UTF-8). */
void gw_ctx_send_document(gw_ctx *ctx, gw_lane lane, int64_t chat_id,
    const char *filename, const char *content, const char *caption_html);
/* Queue a store change applied with the update's commit (val NULL:
 * delete). Key and value are copied. */
void gw_ctx_put(gw_ctx *ctx, unsigned db, const void *key, size_t klen,
    const void *val, size_t vlen);
/* The callback answer text (≤ 200). */
void gw_ctx_answer(gw_ctx *ctx, const char *text, bool alert);
/* A refusal or failure: for a pressed button, a pop-up to the presser
 * (show_alert; popup, or html as plain text when NULL), plus the message
 * in a private chat but never in a group; otherwise the message. */
void gw_ctx_refuse(gw_ctx *ctx, const char *html, const char *popup);
void gw_ctx_free(gw_ctx *ctx);

/* The services. */
typedef enum gw_service {
	GW_TICKET = 0,
	GW_INCIDENT,
	GW_PROBER,
	GW_STATUS,
	GW_N_SERVICES
} gw_service;

const char *gw_service_title(gw_service s);
/*
 * Call method (a oneof member name) of service s with msg (borrowed) as
 * ctx's actor, with a request id derived from the update. On success
 * *reply is set (free with protobuf_c_message_free_unpacked). When the
 * service is down, times out or answers an Error, a clear message has
 * already been queued to the user and the error code is returned.
 */
int gw_call(gw_ctx *ctx, gw_service s, const char *method,
    ProtobufCMessage *msg, ProtobufCMessage **reply);
/* The same without a user-facing message (notifications, quiet reads). */
int gw_call_quiet(gw *g, const Opsdesk__V1__Actor *actor, const char *rid,
    gw_service s, const char *method, ProtobufCMessage *msg,
    ProtobufCMessage **reply);
/* The same with its own time-out (a lookup that must never hold a
 * reply up for long). */
int gw_call_quiet_within(gw *g, const Opsdesk__V1__Actor *actor,
    const char *rid, gw_service s, const char *method, ProtobufCMessage *msg,
    ProtobufCMessage **reply, int timeout_ms);

/* The set result member `name` of a reply, or NULL. Borrowed. */
void *gw_result(const ProtobufCMessage *rep, const char *name);
/* gw_call, then the expected result member (NULL: the user was told).
 * *rep is the reply to free with gw_reply_free. */
void *gw_ask(gw_ctx *ctx, gw_service s, const char *method,
    ProtobufCMessage *msg, const char *result, ProtobufCMessage **rep);
void gw_reply_free(ProtobufCMessage *rep); /* NULL-safe */
/* The same without telling the user: dashboards show a section as
 * unavailable (gw_unavailable) and go on with the others. */
void *gw_peek(gw_ctx *ctx, gw_service s, const char *method,
    ProtobufCMessage *msg, const char *result, ProtobufCMessage **rep);
void gw_unavailable(sbuf *b, gw_service s);

/* Parse "T-12", "t12", "12", "INC-3" … for prefix: 0 or OD_EINVAL. */
int gw_parse_id(const char *s, const char *prefix, uint64_t *out);
/* Next whitespace-separated word of *p into w; false at the end. */
bool gw_word(const char **p, char *w, size_t size);

/* ---- conversation.c: steps kept in the store with an expiry ---- */

typedef struct conv_state {
	char step[24]; /* "ticket_priority", "ticket_text", ... */
	char data[64]; /* step argument: a priority, a ticket id */
	int64_t expires_ms;
} conv_state;

/* The chat+user's live step (expired steps read as none): 0 or
 * OD_ENOTFOUND. */
int gw_conv_get(gw *g, int64_t chat_id, int64_t user_id, conv_state *out);
/* Set (step non-NULL) or clear with ctx's commit. */
void gw_conv_set(gw_ctx *ctx, const char *step, const char *data);
void gw_conv_clear(gw_ctx *ctx);
/* Handle a plain message as the answer to the current step; false when
 * no step is live. */
bool gw_conv_handle(gw_ctx *ctx, const char *text);
/* A Telegram reply to a bot message naming a ticket: the text goes to
 * that ticket (a staff reply from an admin). False when it names none. */
bool gw_conv_reply(gw_ctx *ctx, const char *text);
/* Any other plain text in a private chat: offered to the user's open or
 * pending ticket(s) ("Add to T-3?"), else the hint. Never dropped. */
void gw_conv_fallback(gw_ctx *ctx, const char *text);
/* A Cancel button (1:cx) on a row of its own. */
void gw_conv_cancel_button(gw_keyboard *k);
/* Encode/decode the stored value (tests). */
size_t gw_conv_encode(const conv_state *s, char *out, size_t size);
int gw_conv_decode(const void *v, size_t len, conv_state *out);

/* commands_status.c: subscription sets, stored as "" (every component)
 * or ",id1,id2,". cur minus the ids in remove (",a,"); an
 * all-subscription ("") counts as universe. Appends the result to out;
 * false when nothing is left (the subscription ends). */
bool gw_subs_remove(
    const char *cur, const char *remove, const char *universe, sbuf *out);

/* commands_incident.c, also for alerts. */
struct Opsdesk__V1__Incident;
void gw_render_incident(
    sbuf *b, const struct Opsdesk__V1__Incident *in, bool timeline);
/* notify.c: an alert message for the incident's current state (who
 * acknowledged or resolved it and when, latest update, runbook while
 * open) with the buttons that apply; head: the alert's own first line,
 * or NULL for the state line. */
void gw_alert_render(gw *g, sbuf *b, gw_keyboard *k, const char *head,
    const struct Opsdesk__V1__Incident *in);
/* render_slo.c: service level objectives (health-prober's slo method
 * and slo.* events). One objective's line: attainment, budget left, burn
 * rates. */
void gw_render_slo_line(sbuf *b, const struct Opsdesk__V1__SloStatus *s);
/* The "Objectives" section of /monitor and /ops (asked of the prober). */
void gw_render_slo_section(gw_ctx *ctx, sbuf *b);
/* The admin alert of slo.burn or slo.resolved (topic), with its
 * buttons (Open incident while it burns). */
void gw_render_slo_alert(sbuf *b, gw_keyboard *k, const char *topic,
    const struct Opsdesk__V1__SloEvent *e);
/* Acknowledge / Resolve / Show / Postmortem, as they apply now. */
void gw_incident_buttons(
    gw_keyboard *k, const struct Opsdesk__V1__Incident *in);
/* Append the configured runbook of a severity (asked of
 * incident-service, cut to max code points); false when none. */
bool gw_incident_runbook(gw *g, int severity, sbuf *b, size_t max);

/* commands_support.c, for conversation steps. */
void gw_support_create(gw_ctx *ctx, const char *text, const char *priority);
void gw_support_user_message(gw_ctx *ctx, const char *id, const char *text);
void gw_support_rate_comment(gw_ctx *ctx, const char *arg, const char *text);

/* ---- outbox.c: throttling (pure logic, tested with explicit times) ---- */

typedef struct throttle_limits {
	int global_per_s;  /* 0: unlimited */
	int chat_per_s;    /* 0: unlimited */
	int group_per_min; /* 0: unlimited */
} throttle_limits;

typedef struct throttle throttle;

int gw_throttle_new(throttle **out, const throttle_limits *lim);
void gw_throttle_free(throttle *t);
/* 0 when a message to chat may go at now_ms, else the ms to wait. */
int64_t gw_throttle_wait_ms(throttle *t, int64_t chat_id, int64_t now_ms);
/* The same split: the overall limit, and the chat's own. */
int64_t gw_throttle_global_wait_ms(throttle *t, int64_t now_ms);
int64_t gw_throttle_chat_wait_ms(throttle *t, int64_t chat_id, int64_t now_ms);
/* Record a send to chat at now_ms. */
void gw_throttle_sent(throttle *t, int64_t chat_id, int64_t now_ms);

/* ---- botapi.c: the Bot API client ---- */

typedef struct botapi botapi;

typedef struct botapi_result {
	int http_status; /* 0: network error */
	bool ok;
	int error_code;        /* Telegram's error_code, or http status */
	int retry_after;       /* seconds, from 429 */
	char description[256]; /* redacted */
	cJSON *result;         /* "result", owned; may be NULL */
	bool telegram;  /* the body was a Bot API reply (JSON with "ok") */
	bool timed_out; /* the call hit its time-out */
} botapi_result;

/* base like "https://api.telegram.org"; token is registered with the
 * logger as a secret. m may be NULL. */
int gw_botapi_new(
    botapi **out, const char *base, const char *token, metrics *m);
void gw_botapi_free(botapi *a); /* NULL-safe */
/* POST method with body (borrowed JSON text). Thread-safe. 0 when a
 * reply (ok or not) was parsed; OD_EUNAVAIL on network errors.
 * timeout_ms bounds the whole call. */
int gw_botapi_call(botapi *a, const char *method, const char *body,
    int timeout_ms, botapi_result *res);
void gw_botapi_result_clear(botapi_result *r);
/* Make calls in flight (a long poll) return at once; for shutdown. */
void gw_botapi_abort(botapi *a);
/* botapi_doc.c: a sendDocument body (JSON with "document": {filename,
 * content}) as the multipart upload Telegram expects, or NULL. The caller
 * frees it with curl_mime_free after the transfer. */
typedef struct curl_mime curl_mime;
curl_mime *gw_botapi_document_mime(void *curl_easy, const char *body);
/* Classify a failed result. */
bool gw_botapi_is_not_modified(const botapi_result *r);
bool gw_botapi_is_blocked(const botapi_result *r);

/* What to do with a message after a call (rv, r). Only Telegram's own
 * refusals are final: 403 (blocked, kicked, deactivated) and 400 (chat
 * not found, message to edit not found, ...); "message is not modified"
 * is success. Everything else -- a body that is not a Bot API reply,
 * 401, 404, 5xx, network errors, time-outs -- is retried; 429 after its
 * retry_after. *reason (static) names the case for metrics. */
typedef enum botapi_verdict {
	BOTAPI_OK = 0,
	BOTAPI_RETRY,
	BOTAPI_RETRY_AFTER,
	BOTAPI_BLOCKED,
	BOTAPI_REFUSED,
} botapi_verdict;
botapi_verdict gw_botapi_classify(
    int rv, const botapi_result *r, const char **reason);

/*
 * One call to drive on a curl multi handle. gw_botapi_xfer_new prepares it
 * (body is copied; a body with "_document":{"filename","content"} goes
 * out as multipart/form-data, for sendDocument); add gw_botapi_xfer_easy(x)
 * to the multi; when curl reports it done, remove it from the multi and
 * call gw_botapi_xfer_finish(x, CURLcode, res), which parses the reply like
 * gw_botapi_call and frees x. gw_botapi_xfer_free(x, true) drops a call not
 * finished (shutdown). user is the caller's, from gw_botapi_xfer_user.
 */
typedef struct botapi_xfer botapi_xfer;
int gw_botapi_xfer_new(botapi *a, const char *method, const char *body,
    int timeout_ms, void *user, botapi_xfer **out);
CURL *gw_botapi_xfer_easy(botapi_xfer *x);
void *gw_botapi_xfer_user(botapi_xfer *x);
int gw_botapi_xfer_finish(botapi_xfer *x, int curlcode, botapi_result *res);
void gw_botapi_xfer_free(botapi_xfer *x, bool broken);

/* ---- the gateway ---- */

enum gw_db {
	GW_DB_META = 0,  /* offset, alert seq, counters */
	GW_DB_INBOX,     /* update_id -> update JSON, accepted not done */
	GW_DB_DONE,      /* update_id -> processed at ms */
	GW_DB_CONV,      /* chat,user -> conversation step */
	GW_DB_OUTBOX,    /* seq -> queued Bot API call */
	GW_DB_BLOCKED,   /* chat -> blocked at ms */
	GW_DB_SUBS,      /* chat -> subscribed components ("" all) */
	GW_DB_ADMIN_MSG, /* chat,message -> ticket id */
	GW_DB_OB_QUEUE,  /* lane,chat,seq -> "": each chat's queue per lane */
	GW_DB_OB_READY,  /* lane,due,chat -> "": chats waiting their turn */
	GW_DB_OB_CHAT,   /* lane,chat -> due,backoff: a chat's turn */
	GW_DB_ALERT_MSG, /* incident,chat,message -> "": alerts to edit */
	GW_DB_LIVE_MSG,  /* chat -> user,message,since: ultra live views */
	GW_DB_OB_AGE,    /* lane,seq -> queued at ms: each lane's oldest */
	GW_DB_COUNT
};

extern const char *const gw_db_names[];

typedef enum gw_mode {
	GW_MODE_POLL = 0,
	GW_MODE_WEBHOOK,
	GW_MODE_CONSOLE
} gw_mode;

typedef struct gw_settings {
	char bot_username[64];
	throttle_limits throttle;
	int64_t conversation_ttl_ms;
	int workers;
	int poll_timeout_s;
	int backend_timeout_ms;
	char webhook_path[128];
	/* The webhook's own listener (hook.h); "" serves the webhook on the
	 * shared HTTP listener, which has no time-outs. */
	char webhook_listen[128];
	int webhook_max_connections;
	int webhook_header_timeout_ms;
	int webhook_body_timeout_ms;
	int webhook_max_body;
	int send_concurrency;       /* Bot API sends in flight at most */
	int send_timeout_ms;        /* per send */
	int command_budget;         /* commands per user and minute (0: off) */
	int command_burst;          /* ... taken at once */
	uint64_t outbox_max;        /* backlog over which updates wait */
	int64_t pending_timeout_ms; /* retrying a timed-out mutation */
	int64_t live_refresh_ms;    /* ultra live view: edited this often */
	int64_t live_ttl_ms;        /* ... for this long after it was shown */
	int64_t ultra_chat;         /* tickets.ultra_chat, 0: unset */
} gw_settings;

typedef struct gw_worker gw_worker;
typedef struct gw_notify gw_notify;

/* The gateway; fields are shared by the files of the core. */
struct gw {
	config *cfg;
	metrics *m;
	store *st;
	bus_publisher *pub;
	gw_settings set;
	char rid_prefix[32]; /* "gw<bot id>": request ids per bot */
	gw_mode mode;
	botapi *api; /* NULL in console mode */
	char webhook_secret[260];
	struct hook *hook; /* webhook listener, when gateway.webhook_listen */
	rpc_client *svc[GW_N_SERVICES];
	_Atomic int stopping; /* read by every thread of the gateway */
	/* Set once the inbox is replayed: a webhook update accepted before
	 * would be dispatched live and by the replay too. */
	_Atomic int intake_open;

	gw_worker *workers;
	int n_workers;
	pthread_mutex_t wq_mtx; /* the update queue of the workers */
	pthread_cond_t wq_cond;
	struct wq_item *wq_head, *wq_tail;
	size_t wq_len;

	/* outbox sender */
	pthread_t sender;
	bool sender_started;
	pthread_mutex_t ob_mtx; /* guards ob_multi, ob_wake_fd for wake-ups */
	CURLM *ob_multi;
	int ob_wake_fd;            /* eventfd the sender waits on; -1: none */
	_Atomic unsigned ob_kicks; /* gw_outbox_kick calls */
	_Atomic int ob_sleeping;   /* the sender waits in epoll_wait */
	struct ob_sched *ob_sched;
	volatile uint64_t ob_depth; /* last seen backlog */
	pthread_mutex_t aq_mtx;     /* gw_enqueue_async commits waiting */
	pthread_cond_t aq_cond;
	int aq_n;
	struct budget *budget; /* commands per user */

	/* poller */
	pthread_t poller;
	bool poller_started;

	/* console */
	FILE *cin;
	FILE *cout;
	pthread_t console;
	bool console_started;
	pthread_mutex_t console_mtx;
	gw_keyboard console_kbd; /* the last keyboard shown */
	int64_t console_msg_id;
	int64_t console_next_msg;
	int console_pending; /* updates not answered yet */
	pthread_cond_t console_cond;
	void (*on_console_eof)(void *arg);
	void *eof_arg;

	gw_notify *notify;

	/* updates to handle again (a mutation timed out), by due time */
	pthread_t pend_th;
	bool pend_started;
	pthread_mutex_t pend_mtx;
	pthread_cond_t pend_cond;
	struct pend_item *pend;
};

/* Read the config's gateway section into s; err names the bad key. */
int gw_settings_load(
    const config *c, gw_settings *s, char *err, size_t errlen);

typedef struct gw_options {
	config *cfg;              /* borrowed */
	metrics *metrics;         /* borrowed */
	store *store;             /* borrowed */
	bus_publisher *publisher; /* borrowed, may be NULL: gateway.* */
	gw_mode mode;
	const char *api_url; /* Bot API base */
	const char *token;   /* NULL in console mode */
	const char *webhook_secret;
	FILE *console_in; /* console mode; borrowed */
	FILE *console_out;
	/* Called when the console's input ends (Ctrl-D); may be NULL. */
	void (*on_console_eof)(void *arg);
	void *eof_arg;
} gw_options;

int gw_new(gw **out, const gw_options *opt);
/* Start workers, sender, the update source and notifications. */
int gw_start(gw *g);
/* Stop threads (the store stays open). NULL-safe free. */
void gw_free(gw *g);
/* Start (webhook mode with gateway.webhook_listen) and stop the
 * webhook's own listener. */
int gw_hook_start(gw *g);
void gw_hook_stop(gw *g);
/* The port of the webhook's own listener, or 0 (tests). */
int gw_hook_port(gw *g);
/* Register the webhook route (webhook mode) on s. */
int gw_http_routes(void *arg, http_server *s);
/*
 * service.c: start telegram-gateway on rt — the token (TELEGRAM_BOT_TOKEN
 * or _FILE, registered as a log secret), the mode, the store, the
 * publisher, the gateway and its HTTP routes. Everything started stops
 * at runtime shutdown. Errors are logged.
 */
struct runtime;
int gw_service_start(struct runtime *rt);

/* Internal hooks between the files of the core. */
const gw_settings *gw_get_settings(gw *g);
config *gw_config(gw *g);
store *gw_store(gw *g);
metrics *gw_metrics(gw *g);
bool gw_is_console(gw *g);
/* Accept updates (borrowed): store the new ones in the inbox, then hand
 * them to the workers. offset (>0) is persisted with them. */
int gw_accept(gw *g, gw_update *u, size_t n, int64_t next_offset);
/* A getUpdates page (borrowed): handled by the workers and committed
 * with the new offset in one transaction (gw.c says how a crash is
 * safe); returns when the offset is durable. */
int gw_accept_page(gw *g, gw_update *u, size_t n, int64_t next_offset);
/* Handle one update now (workers, tests); commits its effects. */
int gw_handle(gw *g, const gw_update *u);
/* Drop processed update ids older than 48 h (Telegram keeps updates for
 * 24 h, so none of them can come again). */
int gw_prune(gw *g);
/* Publish gateway.<kind> (chat_id may be 0); best effort. */
void gw_publish(gw *g, const char *kind, int64_t chat_id, const char *text);
/* Backpressure: true while the outbox holds more than outbox_max
 * messages or the workers have a long queue; sources then stop taking
 * updates (Telegram keeps them) instead of growing. */
bool gw_backlogged(gw *g);
/* gw_start has replayed the inbox: new updates may come in. */
bool gw_intake_open(gw *g);
/* Wake the sender after new outbox items. */
void gw_outbox_kick(gw *g);
/* Enqueue messages outside an update (notifications) in one commit. */
int gw_enqueue(gw *g, gw_ctx *ctx);
/* The same without waiting for the commit, for bus events that come in a
 * stream (a ticket notice per ticket): the commit waits up to 10 ms for
 * other writes (store_submit_lazy), so many share one fsync instead of
 * one each. Takes ctx's messages and changes
 * (ctx is left empty); commits stay in call order with every other write.
 * At most GW_ENQUEUE_AHEAD wait: the next call then waits for room.
 * Nothing is lost that a synchronous enqueue would keep: a bus event is
 * not acknowledged either way. */
#define GW_ENQUEUE_AHEAD 64
int gw_enqueue_async(gw *g, gw_ctx *ctx);
/* Wait until every gw_enqueue_async commit is over. */
void gw_enqueue_wait(gw *g);
/* The same, messages queued without a lane in lane (ctx->lane AUTO). */
int gw_enqueue_lane(gw *g, gw_ctx *ctx, gw_lane lane);
/* The same, once per seq: skipped when the meta counter `key` is already
 * at or past seq, else the counter is set to seq in the same commit. */
int gw_enqueue_once(gw *g, gw_ctx *ctx, const char *key, uint64_t seq);
/* A meta counter (0 if unset). */
uint64_t gw_meta_u64(gw *g, const char *key);
uint64_t gw_outbox_depth(gw *g);
metric *gw_counter(
    gw *g, const char *name, const char *help, const char *labels);

/* outbox.c: the durable queue and its sender thread. */
/* Encode an outbox value; caller frees with free(). */
uint8_t *gw_outbox_encode(const gw_out *o, size_t *len);
/* Decode a value: pointers into v (valid while v is). */
int gw_outbox_decode(const void *v, size_t len, int64_t *chat_id,
    const char **method, const char **tag, const char **body);
int gw_outbox_start(gw *g);
void gw_outbox_stop(gw *g);
/* Queue o (borrowed) in lane inside a write job: the row, the chat's
 * queue, and the chat in the lane's ready set if it was not. */
int gw_outbox_put(store_txn *t, const gw_out *o, int lane);

/*
 * The scheduler over the durable queue (tests drive it on explicit
 * times). gw_ob_sched_pick reads the ready sets from the front, lane by
 * lane, and returns up to max messages that may go at now (the throttle
 * and the chats in flight allowed); each stays in flight until its
 * outcome is committed with gw_ob_sched_commit (or submitted with
 * gw_ob_sched_submit and settled), so its chat sends nothing else
 * meanwhile. *wake is when a pick may find more. Bodies of out[] are the
 * caller's (free).
 */
typedef struct ob_sched ob_sched;
typedef struct ob_msg {
	uint64_t seq;
	int64_t chat_id;
	int lane;
	char method[32];
	char tag[32];
	char *body;
} ob_msg;
typedef struct ob_outcome {
	ob_msg msg; /* body unused */
	botapi_verdict verdict;
	int64_t retry_after_ms;
	int64_t message_id; /* of a tagged message */
	uint64_t ticket;    /* or incident, when kind is 'i' */
	char kind;          /* the tag's: 't' ticket, 'i' incident alert */
} ob_outcome;
int gw_ob_sched_new(
    ob_sched **out, const throttle_limits *lim, int max_inflight);
void gw_ob_sched_free(ob_sched *s);
int gw_ob_sched_pick(
    ob_sched *s, store *st, int64_t now, ob_msg *out, int max, int64_t *wake);
/* Record outcomes (and the pick's re-orderings) in one commit; *purged
 * (may be NULL): messages dropped for blocked chats. */
int gw_ob_sched_commit(
    ob_sched *s, store *st, ob_outcome *o, int n, int *purged);
/* The same without waiting (the sender's group commit): o[0..n) is
 * borrowed until settled; the commit may wait linger_ms for other writes
 * to share it (store_submit_lazy); done(arg) runs on the store's
 * completion thread once it is over (durable or failed), and the caller
 * then calls gw_ob_sched_settle on the scheduler's thread, which returns
 * the commit's result. Only OD_ENOMEM or the store's refusal fail here
 * (the messages then simply stay queued). */
typedef struct ob_commit ob_commit;
int gw_ob_sched_submit(ob_sched *s, store *st, const ob_outcome *o, int n,
    int linger_ms, void (*done)(void *arg), void *arg, ob_commit **out);
int gw_ob_sched_settle(ob_sched *s, ob_commit *c, int *purged);
/* A picked message's call is over (its outcome waits for a commit): it
 * no longer counts against the sends in flight, but its chat still waits
 * for the commit. */
void gw_ob_sched_finished(ob_sched *s, uint64_t seq);
/* Calls in flight (picked, not finished nor committed). */
int gw_ob_sched_inflight(const ob_sched *s);
/* Messages picked and not yet committed, at most (sizes the caller's
 * outcome buffers). */
int gw_ob_sched_capacity(const ob_sched *s);
/* The pick left re-orderings or purges to commit. */
bool gw_ob_sched_reorders(const ob_sched *s);
/* Each lane's depth (messages queued) and the age of its oldest message
 * at now (ms, 0 when empty), indexed by lane - GW_LANE_REPLY: the
 * opsdesk_gateway_outbox_lane_* gauges. Counted as messages are queued
 * and leave, so reading them costs the same at any depth. */
int gw_outbox_lanes(store *st, int64_t now, uint64_t depth[GW_LANES],
    int64_t oldest_ms[GW_LANES]);

/*
 * Inbound fairness: a token bucket per user (rate per minute, burst).
 * gw_budget_take says whether the user's update may run at now: OK, the
 * first refusal (answer "slow down" once), or a later one (ignore).
 * Bounded memory: the least recently seen users are forgotten.
 */
typedef struct budget budget;
typedef enum budget_verdict {
	BUDGET_OK = 0,
	BUDGET_WARN,
	BUDGET_IGNORE,
} budget_verdict;
int gw_budget_new(budget **out, int per_min, int burst);
void gw_budget_free(budget *b);
budget_verdict gw_budget_take(budget *b, int64_t user, int64_t now_ms);

/* updates.c: the sources. */
int gw_poll_start(gw *g);
void gw_poll_stop(gw *g);
int gw_console_start(gw *g);
void gw_console_stop(gw *g);
/* An update of the console was handled (its replies are queued). */
void gw_console_done(gw *g);

/* notify.c: status.changed events of a few seconds become one notice.
 * The window runs from the first event (a stream of events cannot hold
 * a notice back for ever); per component the first old and the last new
 * status are kept, and a component back where it was is dropped. */
#define STATUS_BATCH_MAX 64

typedef struct status_batch {
	struct {
		char id[64];
		char name[128];
		char old_status[32];
		char new_status[32];
	} ch[STATUS_BATCH_MAX];
	size_t n;
	bool overall; /* an event without component changes came */
	char indicator[32];
	char description[160];
	char page_url[256];
	int64_t due_ms; /* 0: empty */
} status_batch;

void gw_status_batch_add(status_batch *b, const Opsdesk__V1__StatusChanged *s,
    int64_t now_ms, int64_t window_ms);
/* Whether b holds something to send at now_ms. */
bool gw_status_batch_due(const status_batch *b, int64_t now_ms);
/* The changes still worth telling (old != new) after the window. */
size_t gw_status_batch_settle(status_batch *b);

/* notify.c */
int gw_notify_start(gw_notify **out, gw *g);
void gw_notify_stop(gw_notify *n);
/* Turn one bus event into messages (tests call it directly). */
void gw_notify_event(
    gw *g, const char *topic, const Opsdesk__V1__Envelope *env);
/* Replay the alert log from the last seen seq. */
int gw_notify_catch_up(gw *g);

/*
 * ultra.c — what the ultra tier was promised: its tickets also go to a
 * dedicated chat (tickets.ultra_chat) or carry an ULTRA mark, they lead
 * /queue while their 1 h first-response clock runs, and an ultra user's
 * /status_page holds a live view (current latency and uptime per public
 * component) that the gateway edits in place every live_refresh for
 * live_ttl. Only public status data is shown: nothing of the probes.
 */
/* Where a ticket notification for staff goes: the admin chats (admins,
 * n), plus ultra_chat (when set and not one of them) for an ultra ticket.
 * Returns how many chats were written to out. */
size_t gw_ultra_route(const int64_t *admins, size_t n, int64_t ultra_chat,
    int tier, int64_t *out, size_t max);
/* An ultra ticket whose first-response clock runs (open or pending, no
 * staff reply yet): first in /queue. */
bool gw_ultra_first(const Opsdesk__V1__Ticket *t);
/* Stable: such tickets to the front, each group in its order. */
void gw_ultra_order(Opsdesk__V1__Ticket **v, size_t n);
/* The mark on a staff notification of an ultra ticket ("" otherwise). */
void gw_ultra_mark(sbuf *b, const Opsdesk__V1__Ticket *t, int64_t now);
/* Is ctx's user ultra? From a small cache (a minute), else asked of
 * ticket-service with a short time-out; false when it does not answer,
 * and then not asked again for a few seconds, so /help never waits on a
 * stalled ticket-service. */
bool gw_ultra_user(gw_ctx *ctx);
/* Forget what the cache knows of user (after /tier). */
void gw_ultra_forget(int64_t user);
/* The live section of /status_page (public data only). */
void gw_ultra_live_render(
    sbuf *b, const Opsdesk__V1__StatusSummary *s, int64_t now);
/* commands_status.c: the /status_page text and buttons (ultra: with the
 * live section). */
void gw_status_render(sbuf *b, gw_keyboard *k,
    const Opsdesk__V1__StatusSummary *s, bool ultra, int64_t now);
/* The tag that makes the outbox remember a live view's message id. */
#define GW_LIVE_TAG 'l'
/* Remember (chat -> user, message, since) with ctx's commit. */
void gw_ultra_live_keep(
    gw_ctx *ctx, int64_t chat, int64_t user, int64_t message, int64_t now);
/* The refresher (runtime_every, arg: the gw): edits every live view
 * still within live_ttl whose user is still ultra; forgets the others. */
void gw_ultra_live_tick(void *g);

#endif /* OPSDESK_GATEWAY_H */
