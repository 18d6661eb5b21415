/*
 * conversation — multi-step dialogues (New ticket -> priority -> text,
 * add a message to a ticket, a rating comment). The step lives in the
 * store under (chat, user) with an expiry, so it survives a restart and a
 * stale step does not swallow a message hours later. Changes go through
 * the update's commit, atomically with its replies.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "ticket.pb-c.h"

static void
conv_key(uint8_t k[16], int64_t chat, int64_t user)
{
	store_key_u64(k, (uint64_t) chat);
	store_key_u64(k + 8, (uint64_t) user);
}

/* Stored as "<expires_ms>\n<step>\n<data>". */
size_t
gw_conv_encode(const conv_state *s, char *out, size_t size)
{
	int n = snprintf(out, size, "%lld\n%s\n%s", (long long) s->expires_ms,
	    s->step, s->data);
	return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}

int
gw_conv_decode(const void *v, size_t len, conv_state *out)
{
	char buf[160];
	conv_state s;
	if (len == 0 || len >= sizeof(buf)) {
		return OD_EMALFORMED;
	}
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *p = buf, *a = strsep(&p, "\n"), *b = strsep(&p, "\n");
	if (a == NULL || b == NULL || p == NULL) {
		return OD_EMALFORMED;
	}
	memset(&s, 0, sizeof(s));
	s.expires_ms = strtoll(a, NULL, 10);
	od_strlcpy(s.step, b, sizeof(s.step));
	od_strlcpy(s.data, p, sizeof(s.data));
	*out = s;
	return 0;
}

int
gw_conv_get(gw *g, int64_t chat, int64_t user, conv_state *out)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	uint8_t k[16];
	conv_state s;
	int rv;

	conv_key(k, chat, user);
	if ((rv = store_read_begin(gw_store(g), &txn)) != 0) {
		return rv;
	}
	rv = store_get(txn, store_db(gw_store(g), GW_DB_CONV), k, 16, &v);
	if (rv == 0) {
		rv = gw_conv_decode(v.mv_data, v.mv_size, &s);
	}
	store_read_end(txn);
	if (rv != 0) {
		return OD_ENOTFOUND;
	}
	if (s.expires_ms <= od_now_ms()) {
		return OD_ENOTFOUND;
	}
	*out = s;
	return 0;
}

void
gw_conv_set(gw_ctx *ctx, const char *step, const char *data)
{
	uint8_t k[16];
	char v[160];
	conv_state s;

	memset(&s, 0, sizeof(s));
	od_strlcpy(s.step, step, sizeof(s.step));
	od_strlcpy(s.data, data ? data : "", sizeof(s.data));
	s.expires_ms
	    = od_now_ms() + gw_get_settings(ctx->g)->conversation_ttl_ms;
	conv_key(k, ctx->chat_id, ctx->user_id);
	size_t n = gw_conv_encode(&s, v, sizeof(v));
	if (n > 0) {
		gw_ctx_put(ctx, GW_DB_CONV, k, 16, v, n);
	}
}

/* The text waiting on an "Add to T-3?" question: (chat, user, 'p'). */
static void
pend_key(uint8_t k[17], int64_t chat, int64_t user)
{
	conv_key(k, chat, user);
	k[16] = 'p';
}

void
gw_conv_clear(gw_ctx *ctx)
{
	uint8_t k[17];
	pend_key(k, ctx->chat_id, ctx->user_id);
	gw_ctx_put(ctx, GW_DB_CONV, k, 16, NULL, 0);
	gw_ctx_put(ctx, GW_DB_CONV, k, 17, NULL, 0);
}

/* The pending text (caller frees), or NULL. */
static char *
pend_get(gw *g, int64_t chat, int64_t user)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	uint8_t k[17];
	char *out = NULL;
	pend_key(k, chat, user);
	if (store_read_begin(gw_store(g), &txn) != 0) {
		return NULL;
	}
	if (store_get(txn, store_db(gw_store(g), GW_DB_CONV), k, 17, &v) == 0
	    && (out = malloc(v.mv_size + 1)) != NULL) {
		memcpy(out, v.mv_data, v.mv_size);
		out[v.mv_size] = '\0';
	}
	store_read_end(txn);
	return out;
}

void
gw_conv_cancel_button(gw_keyboard *k)
{
	gw_kbd_row(k);
	gw_kbd_button(k, "✖️ Cancel", "1:cx");
}

int
gw_cmd_cancel(gw_ctx *ctx, const char *args)
{
	conv_state s;
	bool live = gw_conv_get(ctx->g, ctx->chat_id, ctx->user_id, &s) == 0;
	(void) args;
	gw_conv_clear(ctx);
	gw_ctx_reply(ctx,
	    live ? "✖️ Cancelled — nothing was sent. Send /help for the "
	           "menu."
	         : "Nothing to cancel. Send /help for the menu.",
	    NULL);
	gw_ctx_answer(ctx, "Cancelled", false);
	return 0;
}

/*
 * The ticket a message names: the message->ticket map of tagged
 * messages, else the first "T-<n>" of its text.
 */
static uint64_t
replied_ticket(gw_ctx *ctx)
{
	const gw_update *u = ctx->u;
	uint8_t k[16];
	uint64_t id = 0;
	MDB_txn *txn = NULL;
	MDB_val v;

	store_key_u64(k, (uint64_t) ctx->chat_id);
	store_key_u64(k + 8, (uint64_t) u->reply_to_id);
	if (store_read_begin(gw_store(ctx->g), &txn) == 0) {
		if (store_get(txn, store_db(gw_store(ctx->g), GW_DB_ADMIN_MSG),
		        k, 16, &v)
		        == 0
		    && v.mv_size == 8) {
			id = store_key_get_u64(v.mv_data);
		}
		store_read_end(txn);
	}
	for (const char *p = u->reply_to_text;
	     id == 0 && p != NULL && (p = strstr(p, "T-")) != NULL; p += 2) {
		if (p != u->reply_to_text
		    && (isalnum((unsigned char) p[-1]) || p[-1] == '-')) {
			continue;
		}
		for (const char *d = p + 2; isdigit((unsigned char) *d); d++) {
			id = id * 10 + (uint64_t) (*d - '0');
			if (id > 1000000000000ULL) {
				id = 0;
				break;
			}
		}
	}
	return id;
}

bool
gw_conv_reply(gw_ctx *ctx, const char *text)
{
	char ids[24];
	uint64_t id;
	/* In a group only an admin's reply is for a ticket (a staff reply);
	 * users follow their tickets in their private chat. */
	if (ctx->u == NULL || ctx->u->reply_to_id == 0
	    || (ctx->is_group && !ctx->is_admin)
	    || (id = replied_ticket(ctx)) == 0) {
		return false;
	}
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long) id);
	if (ctx->is_admin) {
		/* An admin answering a ticket: a staff reply. */
		sbuf b = SBUF_INIT;
		sbuf_printf(&b, "%s ", ids);
		sbuf_append(&b, text);
		gw_cmd_reply(ctx, sbuf_str(&b));
		sbuf_free(&b);
	} else {
		gw_support_user_message(ctx, ids, text);
	}
	return true;
}

#define OFFER_MAX 6

/* Ask where text goes: the user's open or pending tickets, or a new one.
 */
static void
offer(gw_ctx *ctx, const char *text, const uint64_t *ids, size_t n)
{
	gw_keyboard k = { 0 };
	sbuf b = SBUF_INIT;
	uint8_t key[17];
	char data[GW_CBDATA_MAX + 1], id[24], label[48];

	if (n == 1) {
		sbuf_printf(&b,
		    "💬 Add this to your ticket <b>T-%llu</b>?\n<i>",
		    (unsigned long long) ids[0]);
		gw_render_text(&b, text, 200);
		sbuf_append(&b, "</i>");
		snprintf(id, sizeof(id), "%llu", (unsigned long long) ids[0]);
		snprintf(label, sizeof(label), "✅ Add to T-%s", id);
		gw_cb_encode(data, sizeof(data), "oy", id, NULL);
		gw_kbd_button(&k, label, data);
	} else {
		sbuf_append(&b, "💬 Which ticket is this for?\n<i>");
		gw_render_text(&b, text, 200);
		sbuf_append(&b, "</i>");
		for (size_t i = 0; i < n; i++) {
			snprintf(id, sizeof(id), "%llu",
			    (unsigned long long) ids[i]);
			snprintf(label, sizeof(label), "T-%s", id);
			if (i % 3 == 0) {
				gw_kbd_row(&k);
			}
			gw_cb_encode(data, sizeof(data), "oy", id, NULL);
			gw_kbd_button(&k, label, data);
		}
		gw_kbd_row(&k);
	}
	gw_kbd_button(&k, "📝 New ticket", "1:on");
	gw_kbd_button(&k, "✖️ Cancel", "1:cx");
	gw_conv_set(ctx, "offer", "");
	pend_key(key, ctx->chat_id, ctx->user_id);
	gw_ctx_put(ctx, GW_DB_CONV, key, 17, text, strlen(text));
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
}

void
gw_conv_fallback(gw_ctx *ctx, const char *text)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__ListTicketsRequest r
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__PageRequest page = OPSDESK__V1__PAGE_REQUEST__INIT;
	uint64_t ids[OFFER_MAX];
	size_t n = 0;
	page.limit = 50;
	r.page = &page;
	Opsdesk__V1__TicketList *l
	    = gw_peek(ctx, GW_TICKET, "list_mine", &r.base, "tickets", &rep);
	for (size_t i = 0; l != NULL && i < l->n_tickets && n < OFFER_MAX;
	     i++) {
		int st = l->tickets[i]->status;
		if (st == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
		    || st
		        == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING) {
			ids[n++] = l->tickets[i]->id;
		}
	}
	gw_reply_free(rep);
	if (n > 0 && strlen(text) < GW_TEXT_MAX) {
		offer(ctx, text, ids, n);
		return;
	}
	gw_ctx_reply(ctx,
	    "I understand commands. Send /help for the menu, "
	    "or /support &lt;your message&gt; to open a "
	    "ticket.",
	    NULL);
}

/* /offer yes <id> | new: the answer to "Add to T-3?". */
int
gw_cmd_offer(gw_ctx *ctx, const char *args)
{
	conv_state s;
	char w[16], ids[32];
	char *text = NULL;
	if (gw_conv_get(ctx->g, ctx->chat_id, ctx->user_id, &s) != 0
	    || strcmp(s.step, "offer") != 0
	    || (text = pend_get(ctx->g, ctx->chat_id, ctx->user_id)) == NULL) {
		gw_ctx_reply(ctx,
		    "This question has expired. Send your message again, "
		    "or /help for the menu.",
		    NULL);
		gw_ctx_answer(ctx, "Expired", false);
		return 0;
	}
	if (!gw_word(&args, w, sizeof(w))) {
		free(text);
		return GW_USAGE;
	}
	gw_conv_clear(ctx);
	if (strcmp(w, "new") == 0) {
		gw_support_create(ctx, text, "normal");
	} else if (strcmp(w, "yes") == 0 && gw_word(&args, ids, sizeof(ids))) {
		gw_support_user_message(ctx, ids, text);
	} else {
		free(text);
		return GW_USAGE;
	}
	free(text);
	return 0;
}

/* Create a ticket from a conversation's text. */
static void
step_ticket_text(gw_ctx *ctx, const conv_state *s, const char *text)
{
	char line[64];
	snprintf(line, sizeof(line), "%s", s->data);
	gw_conv_clear(ctx);
	gw_support_create(ctx, text, line);
}

static void
step_ticket_msg(gw_ctx *ctx, const conv_state *s, const char *text)
{
	gw_conv_clear(ctx);
	gw_support_user_message(ctx, s->data, text);
}

static void
step_rate_comment(gw_ctx *ctx, const conv_state *s, const char *text)
{
	gw_conv_clear(ctx);
	gw_support_rate_comment(ctx, s->data, text);
}

/* More text while "Add to T-3?" waits: asked again with all of it. */
static void
step_offer(gw_ctx *ctx, const conv_state *s, const char *text)
{
	char *prev = pend_get(ctx->g, ctx->chat_id, ctx->user_id);
	sbuf b = SBUF_INIT;
	(void) s;
	if (prev != NULL) {
		sbuf_append(&b, prev);
		sbuf_append(&b, "\n");
	}
	sbuf_append(&b, text);
	free(prev);
	gw_conv_fallback(ctx, sbuf_str(&b));
	sbuf_free(&b);
}

static const struct conv_step {
	const char *step;
	void (*fn)(gw_ctx *ctx, const conv_state *s, const char *text);
} steps[] = {
	{ "ticket_text", step_ticket_text },
	{ "ticket_msg", step_ticket_msg },
	{ "rate_comment", step_rate_comment },
	{ "offer", step_offer },
};

bool
gw_conv_handle(gw_ctx *ctx, const char *text)
{
	conv_state s;
	if (gw_conv_get(ctx->g, ctx->chat_id, ctx->user_id, &s) != 0) {
		return false;
	}
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (strcmp(steps[i].step, s.step) == 0) {
			steps[i].fn(ctx, &s, text);
			return true;
		}
	}
	gw_conv_clear(ctx);
	return false;
}
