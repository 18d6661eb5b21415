/*
 * conversation — multi-step dialogues (New ticket -> priority -> text,
 * add a message to a ticket, a rating comment). The step lives in the
 * store under (chat, user) with an expiry, so it survives a restart and a
 * stale step does not swallow a message hours later. Changes go through
 * the update's commit, atomically with its replies.
 */
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
conv_encode(const conv_state *s, char *out, size_t size)
{
	int n = snprintf(out, size, "%lld\n%s\n%s", (long long) s->expires_ms,
	    s->step, s->data);
	return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}

int
conv_decode(const void *v, size_t len, conv_state *out)
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
conv_get(gw *g, int64_t chat, int64_t user, conv_state *out)
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
		rv = conv_decode(v.mv_data, v.mv_size, &s);
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
conv_set(gw_ctx *ctx, const char *step, const char *data)
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
	size_t n = conv_encode(&s, v, sizeof(v));
	if (n > 0) {
		ctx_put(ctx, GW_DB_CONV, k, 16, v, n);
	}
}

void
conv_clear(gw_ctx *ctx)
{
	uint8_t k[16];
	conv_key(k, ctx->chat_id, ctx->user_id);
	ctx_put(ctx, GW_DB_CONV, k, 16, NULL, 0);
}

/* Create a ticket from a conversation's text. */
static void
step_ticket_text(gw_ctx *ctx, const conv_state *s, const char *text)
{
	char line[64];
	snprintf(line, sizeof(line), "%s", s->data);
	conv_clear(ctx);
	support_create(ctx, text, line);
}

static void
step_ticket_msg(gw_ctx *ctx, const conv_state *s, const char *text)
{
	conv_clear(ctx);
	support_user_message(ctx, s->data, text);
}

static void
step_rate_comment(gw_ctx *ctx, const conv_state *s, const char *text)
{
	conv_clear(ctx);
	support_rate_comment(ctx, s->data, text);
}

static const struct conv_step {
	const char *step;
	void (*fn)(gw_ctx *ctx, const conv_state *s, const char *text);
} steps[] = {
	{ "ticket_text", step_ticket_text },
	{ "ticket_msg", step_ticket_msg },
	{ "rate_comment", step_rate_comment },
};

bool
conv_handle(gw_ctx *ctx, const char *text)
{
	conv_state s;
	if (conv_get(ctx->g, ctx->chat_id, ctx->user_id, &s) != 0) {
		return false;
	}
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (strcmp(steps[i].step, s.step) == 0) {
			steps[i].fn(ctx, &s, text);
			return true;
		}
	}
	conv_clear(ctx);
	return false;
}
