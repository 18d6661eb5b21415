/*
 * commands_support — tickets, FAQ and the admins' ticket work. The rules
 * (who may see which ticket, limits, SLAs, reopening) are ticket-service's;
 * this file only asks and renders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "incident.pb-c.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"

static const char *const priorities[]
    = { "low", "normal", "high", "urgent", NULL };

static int
parse_priority(const char *w)
{
	for (int i = 0; priorities[i] != NULL; i++) {
		if (strcasecmp(w, priorities[i]) == 0) {
			return i + 1; /* TICKET_PRIORITY_LOW = 1 ... */
		}
	}
	return 0;
}

static void
render_ticket_line(sbuf *b, const Opsdesk__V1__Ticket *t, int64_t now)
{
	char age[48];
	od_format_age(t->updated_ms ? t->updated_ms : t->created_ms, now, age,
	    sizeof(age));
	sbuf_printf(b, "%s <b>T-%llu</b> ",
	    gw_render_ticket_status_symbol(t->status),
	    (unsigned long long) t->id);
	gw_render_text(b, t->subject, 60);
	sbuf_printf(b, " — %s, %s, %s\n", gw_render_ticket_status(t->status),
	    gw_render_priority_name(t->priority), age);
}

static void
render_ticket(sbuf *b, const Opsdesk__V1__Ticket *t, bool admin)
{
	int64_t now = od_now_ms();
	sbuf_printf(b, "%s <b>T-%llu</b> · ",
	    gw_render_ticket_status_symbol(t->status),
	    (unsigned long long) t->id);
	gw_render_text(b, t->subject, 200);
	sbuf_printf(b, "\nStatus: <b>%s</b> · Priority: %s · Tier: %s\n",
	    gw_render_ticket_status(t->status),
	    gw_render_priority_name(t->priority),
	    gw_render_tier_name(t->tier));
	if (admin) {
		sbuf_append(b, "Owner: ");
		gw_render_text(b, t->owner_name, 64);
		sbuf_printf(
		    b, " (id <code>%lld</code>)", (long long) t->owner_id);
		if (t->assignee_id != 0) {
			sbuf_append(b, " · Assignee: ");
			gw_render_text(b, t->assignee_name, 64);
		}
		sbuf_append(b, "\n");
	}
	sbuf_append(b, "Opened: ");
	gw_render_time(b, t->created_ms, now);
	sbuf_append(b, "\n");
	if (t->first_response_ms == 0 && t->first_response_due_ms > 0
	    && t->status == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN) {
		sbuf_append(b, "First response due: ");
		gw_render_time(b, t->first_response_due_ms, now);
		sbuf_append(b,
		    t->first_response_breached ? " ⚠️ breached\n" : "\n");
	}
	if (t->incident_id != 0) {
		sbuf_printf(b, "Linked to incident INC-%llu\n",
		    (unsigned long long) t->incident_id);
	}
	if (t->rating != 0) {
		sbuf_printf(b, "Rating: %u/5\n", t->rating);
	}
	for (size_t i = 0; i < t->n_messages; i++) {
		const Opsdesk__V1__TicketMessage *m = t->messages[i];
		const char *who;
		switch (m->kind) {
		case OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_STAFF_REPLY:
			who = "🛟 Support";
			break;
		case OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE:
			if (!admin) {
				continue; /* the service filters; so do we */
			}
			who = "🔒 Internal note";
			break;
		case OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_SYSTEM:
			who = "ℹ️ System";
			break;
		default:
			who = "👤";
			break;
		}
		sbuf_printf(b, "\n%s ", who);
		if (m->kind != OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_SYSTEM
		    && (admin
		        || m->kind
		            == OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_USER)) {
			gw_render_text(b, m->author_name, 64);
		}
		sbuf_append(b, " · ");
		gw_render_time(b, m->at_ms, now);
		sbuf_append(b, "\n");
		gw_render_text(b, m->text, 0);
		sbuf_append(b, "\n");
	}
}

/* ---- user commands ---- */

int
gw_cmd_support(gw_ctx *ctx, const char *args)
{
	gw_keyboard k = { 0 };
	sbuf b = SBUF_INIT;
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	char rid[64];

	if (*args != '\0') {
		gw_support_create(ctx, args, "normal");
		return 0;
	}
	actor.user_id = ctx->user_id;
	actor.is_admin = ctx->is_admin;
	actor.name = ctx->name;
	actor.chat_id = ctx->chat_id;
	/* Incident-aware: an active public incident comes first. A status
	 * service that is down only loses this hint. */
	Opsdesk__V1__StatusSummaryRequest sr
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;
	snprintf(rid, sizeof(rid), "%s-%lld-s", ctx->g->rid_prefix,
	    (long long) (ctx->u ? ctx->u->update_id : 0));
	if (gw_call_quiet(
	        ctx->g, &actor, rid, GW_STATUS, "summary", &sr.base, &rep)
	    == 0) {
		Opsdesk__V1__StatusSummary *s = gw_result(rep, "summary");
		for (size_t i = 0; s != NULL && i < s->n_incidents; i++) {
			if (i == 0) {
				sbuf_append(&b,
				    "⚠️ <b>We know about an ongoing "
				    "issue:</b>\n");
			}
			sbuf_printf(&b, "%s ",
			    gw_render_public_symbol(s->incidents[i]->impact));
			gw_render_text(&b, s->incidents[i]->name, 120);
			sbuf_printf(&b, " — %s\n", s->incidents[i]->status);
		}
		if (s != NULL && s->n_incidents > 0) {
			sbuf_append(&b,
			    "Tickets opened now are linked to it, and "
			    "you will hear when it is resolved.\n\n");
		}
	}
	gw_reply_free(rep);
	rep = NULL;
	sbuf_append(&b, "🛟 <b>Support</b>\n");
	Opsdesk__V1__GetTierRequest tr = OPSDESK__V1__GET_TIER_REQUEST__INIT;
	tr.user_id = ctx->user_id;
	snprintf(rid, sizeof(rid), "%s-%lld-t", ctx->g->rid_prefix,
	    (long long) (ctx->u ? ctx->u->update_id : 0));
	if (gw_call_quiet(
	        ctx->g, &actor, rid, GW_TICKET, "get_tier", &tr.base, &rep)
	    == 0) {
		Opsdesk__V1__CustomerTier *t = gw_result(rep, "tier");
		if (t != NULL) {
			sbuf_printf(&b, "Your plan: <b>%s</b>%s\n",
			    gw_render_tier_name(t->tier),
			    t->tier == OPSDESK__V1__TIER__TIER_ULTRA
			        ? " — priority support, first response within "
			          "1 hour"
			        : "");
		}
	}
	gw_reply_free(rep);
	sbuf_append(&b,
	    "Open a ticket, follow your tickets or read the FAQ. "
	    "You can also write <code>/support your "
	    "question</code>.");
	gw_kbd_button(&k, "📝 New ticket", "1:nt");
	gw_kbd_button(&k, "📋 My tickets", "1:tl");
	gw_kbd_row(&k);
	gw_kbd_button(&k, "❓ FAQ", "1:fq");
	gw_kbd_button(&k, "✉️ Contact", "1:ct");
	gw_kbd_row(&k);
	gw_kbd_button(&k, "📊 Status", "1:st");
	gw_kbd_button(&k, "⬅️ Menu", "1:h");
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	return 0;
}

void
gw_support_create(gw_ctx *ctx, const char *text, const char *priority)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__CreateTicketRequest r
	    = OPSDESK__V1__CREATE_TICKET_REQUEST__INIT;
	sbuf b = SBUF_INIT;
	char *clean = od_utf8_sanitize(text, strlen(text));

	r.text = clean ? clean : (char *) "";
	r.priority = parse_priority(priority);
	Opsdesk__V1__CreateTicketReply *c
	    = gw_ask(ctx, GW_TICKET, "create", &r.base, "created", &rep);
	if (c != NULL && c->ticket != NULL) {
		const Opsdesk__V1__Ticket *t = c->ticket;
		sbuf_printf(&b,
		    "✅ Ticket <b>T-%llu</b> opened (priority %s).\n",
		    (unsigned long long) t->id,
		    gw_render_priority_name(t->priority));
		if (t->first_response_due_ms > 0) {
			sbuf_append(&b, "We will answer by ");
			gw_render_time(
			    &b, t->first_response_due_ms, od_now_ms());
			sbuf_append(&b, ".\n");
		}
		if (c->active_incident != NULL) {
			sbuf_printf(&b,
			    "It is linked to the ongoing incident "
			    "INC-%llu: ",
			    (unsigned long long) c->active_incident->id);
			gw_render_text(&b, c->active_incident->title, 120);
			sbuf_append(
			    &b, ". You will hear when it is resolved.\n");
		}
		sbuf_printf(&b, "Follow it with /ticket %llu.",
		    (unsigned long long) t->id);
		gw_keyboard k = { 0 };
		char data[GW_CBDATA_MAX + 1], id[24];
		snprintf(id, sizeof(id), "%llu", (unsigned long long) t->id);
		gw_cb_encode(data, sizeof(data), "tv", id, NULL);
		gw_kbd_button(&k, "🔎 View ticket", data);
		gw_kbd_button(&k, "📋 My tickets", "1:tl");
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
	}
	gw_reply_free(rep);
	free(clean);
	sbuf_free(&b);
}

int
gw_cmd_newticket(gw_ctx *ctx, const char *args)
{
	char w[16];
	if (!gw_word(&args, w, sizeof(w))) {
		gw_keyboard k = { 0 };
		gw_kbd_button(&k, "🔵 Low", "1:nt:low");
		gw_kbd_button(&k, "🟢 Normal", "1:nt:normal");
		gw_kbd_row(&k);
		gw_kbd_button(&k, "🟠 High", "1:nt:high");
		gw_kbd_button(&k, "🔴 Urgent", "1:nt:urgent");
		gw_conv_cancel_button(&k);
		gw_ctx_reply(
		    ctx, "📝 <b>New ticket</b>\nHow urgent is it?", &k);
		return 0;
	}
	if (parse_priority(w) == 0) {
		return GW_USAGE;
	}
	gw_conv_set(ctx, "ticket_text", w);
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	gw_conv_cancel_button(&k);
	sbuf_printf(&b,
	    "📝 Priority <b>%s</b>. Now describe the problem in "
	    "one message (or /cancel).",
	    w);
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	gw_ctx_answer(ctx, "Describe the problem", false);
	return 0;
}

int
gw_cmd_tickets(gw_ctx *ctx, const char *args)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__ListTicketsRequest r
	    = OPSDESK__V1__LIST_TICKETS_REQUEST__INIT;
	Opsdesk__V1__PageRequest page = OPSDESK__V1__PAGE_REQUEST__INIT;
	page.limit = 10;
	r.page = &page;
	r.include_closed = true; /* closed ones are still theirs to see */
	Opsdesk__V1__TicketList *l
	    = gw_ask(ctx, GW_TICKET, "list_mine", &r.base, "tickets", &rep);
	if (l != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		int64_t now = od_now_ms();
		sbuf_append(&b, "📋 <b>Your tickets</b>\n");
		if (l->n_tickets == 0) {
			sbuf_append(&b,
			    "None yet. Press New ticket to open "
			    "one.");
		}
		for (size_t i = 0; i < l->n_tickets; i++) {
			char data[GW_CBDATA_MAX + 1], id[24], label[32];
			render_ticket_line(&b, l->tickets[i], now);
			snprintf(id, sizeof(id), "%llu",
			    (unsigned long long) l->tickets[i]->id);
			snprintf(label, sizeof(label), "T-%s", id);
			if (i % 4 == 0) {
				gw_kbd_row(&k);
			}
			if (gw_cb_encode(data, sizeof(data), "tv", id, NULL)
			    == 0) {
				gw_kbd_button(&k, label, data);
			}
		}
		gw_kbd_row(&k);
		gw_kbd_button(&k, "📝 New ticket", "1:nt");
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

int
gw_cmd_ticket(gw_ctx *ctx, const char *args)
{
	char w[32];
	uint64_t id;
	ProtobufCMessage *rep = NULL;

	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0) {
		return GW_USAGE;
	}
	Opsdesk__V1__TicketId r = OPSDESK__V1__TICKET_ID__INIT;
	r.id = id;
	Opsdesk__V1__Ticket *t
	    = gw_ask(ctx, GW_TICKET, "get", &r.base, "ticket", &rep);
	if (t != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		char data[GW_CBDATA_MAX + 1], ids[24];
		snprintf(ids, sizeof(ids), "%llu", (unsigned long long) t->id);
		render_ticket(&b, t, ctx->is_admin);
		if (t->owner_id == ctx->user_id
		    && t->status
		        != OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED) {
			gw_cb_encode(data, sizeof(data), "tm", ids, NULL);
			gw_kbd_button(&k, "💬 Add a message", data);
		}
		if (t->owner_id == ctx->user_id && t->rating == 0
		    && t->status
		        == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_RESOLVED) {
			sbuf_append(&b,
			    "\nHow did we do? Rate 1 (bad) to 5 "
			    "(great):");
			gw_kbd_row(&k);
			for (int s = 1; s <= 5; s++) {
				char n[4], label[8];
				snprintf(n, sizeof(n), "%d", s);
				snprintf(label, sizeof(label), "%d⭐", s);
				gw_cb_encode(data, sizeof(data), "tr", ids, n);
				gw_kbd_button(&k, label, data);
			}
		}
		gw_kbd_row(&k);
		gw_cb_encode(data, sizeof(data), "tv", ids, NULL);
		gw_kbd_button(&k, "🔄 Refresh", data);
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

int
gw_cmd_addmsg(gw_ctx *ctx, const char *args)
{
	char w[32], ids[24];
	uint64_t id;
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0) {
		return GW_USAGE;
	}
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long) id);
	if (*args != '\0') {
		gw_support_user_message(ctx, ids, args);
		return 0;
	}
	gw_conv_set(ctx, "ticket_msg", ids);
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	gw_conv_cancel_button(&k);
	sbuf_printf(
	    &b, "💬 Write your message for <b>T-%s</b> (or /cancel).", ids);
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	return 0;
}

void
gw_support_user_message(gw_ctx *ctx, const char *ids, const char *text)
{
	uint64_t id;
	ProtobufCMessage *rep = NULL;
	char *clean = od_utf8_sanitize(text, strlen(text));
	if (gw_parse_id(ids, "T", &id) != 0 || clean == NULL) {
		free(clean);
		return;
	}
	Opsdesk__V1__TicketTextRequest r
	    = OPSDESK__V1__TICKET_TEXT_REQUEST__INIT;
	r.id = id;
	r.text = clean;
	Opsdesk__V1__Ticket *t
	    = gw_ask(ctx, GW_TICKET, "user_message", &r.base, "ticket", &rep);
	if (t != NULL) {
		sbuf b = SBUF_INIT;
		sbuf_printf(&b, "✅ Added to <b>T-%llu</b> (now %s).",
		    (unsigned long long) t->id,
		    gw_render_ticket_status(t->status));
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	free(clean);
}

/*
 * /rate <id> <1-5> [comment]. Without a comment (a star button) the
 * rating waits in a conversation step for an optional comment, since the
 * service takes one rating with its comment; "-" sends it without one.
 */
int
gw_cmd_rate(gw_ctx *ctx, const char *args)
{
	char w[32], s[8], arg[48];
	uint64_t id;
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0
	    || !gw_word(&args, s, sizeof(s)) || s[1] != '\0' || s[0] < '1'
	    || s[0] > '5') {
		return GW_USAGE;
	}
	snprintf(arg, sizeof(arg), "%llu:%c", (unsigned long long) id, s[0]);
	if (*args == '\0') {
		/* Ask the service first: someone else's ticket is not found
		 * before any prompt. */
		ProtobufCMessage *rep = NULL;
		Opsdesk__V1__TicketId tid = OPSDESK__V1__TICKET_ID__INIT;
		tid.id = id;
		Opsdesk__V1__Ticket *t
		    = gw_ask(ctx, GW_TICKET, "get", &tid.base, "ticket", &rep);
		bool rated = t != NULL && t->rating != 0;
		gw_reply_free(rep);
		if (t == NULL) {
			return 0;
		}
		if (rated) {
			gw_ctx_reply(ctx,
			    "⭐ This ticket is already rated. Thank you!",
			    NULL);
			return 0;
		}
		gw_keyboard k = { 0 };
		char data[GW_CBDATA_MAX + 1], ids[24], score[2] = { s[0], 0 };
		snprintf(ids, sizeof(ids), "%llu", (unsigned long long) id);
		gw_conv_set(ctx, "rate_comment", arg);
		gw_cb_encode(data, sizeof(data), "rs", ids, score);
		gw_kbd_button(&k, "Send without a comment", data);
		gw_conv_cancel_button(&k);
		sbuf b = SBUF_INIT;
		sbuf_printf(&b,
		    "⭐ %c/5 for <b>T-%s</b>. Add a comment in one message, "
		    "or send it as it is.",
		    s[0], ids);
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
		gw_ctx_answer(ctx, "Add a comment?", false);
		return 0;
	}
	gw_conv_clear(ctx);
	gw_support_rate_comment(ctx, arg, strcmp(args, "-") == 0 ? "" : args);
	return 0;
}

/* arg is "<id>:<rating>"; text the comment ("" for none). */
void
gw_support_rate_comment(gw_ctx *ctx, const char *arg, const char *text)
{
	uint64_t id = strtoull(arg, NULL, 10);
	const char *colon = strchr(arg, ':');
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__RateRequest r = OPSDESK__V1__RATE_REQUEST__INIT;
	char *clean = od_utf8_sanitize(text, strlen(text));

	if (id == 0 || colon == NULL || clean == NULL) {
		free(clean);
		return;
	}
	r.id = id;
	r.rating = (uint32_t) atoi(colon + 1);
	r.comment = clean;
	if (gw_ask(ctx, GW_TICKET, "rate", &r.base, "ticket", &rep) != NULL) {
		gw_ctx_reply(ctx, "⭐ Thank you for the feedback!", NULL);
		gw_ctx_answer(ctx, "Thank you!", false);
	}
	gw_reply_free(rep);
	free(clean);
}

int
gw_cmd_faq(gw_ctx *ctx, const char *args)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__FaqList *l;
	Opsdesk__V1__FaqListRequest lr = OPSDESK__V1__FAQ_LIST_REQUEST__INIT;
	Opsdesk__V1__FaqSearchRequest sr
	    = OPSDESK__V1__FAQ_SEARCH_REQUEST__INIT;
	char *clean = od_utf8_sanitize(args, strlen(args));

	if (clean == NULL) {
		return OD_ENOMEM;
	}
	if (*args != '\0') {
		sr.query = clean;
		l = gw_ask(
		    ctx, GW_TICKET, "faq_search", &sr.base, "faq", &rep);
	} else {
		l = gw_ask(ctx, GW_TICKET, "faq_list", &lr.base, "faq", &rep);
	}
	if (l != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		sbuf_append(&b, "❓ <b>FAQ</b>");
		if (*args != '\0') {
			sbuf_append(&b, " — ");
			gw_render_text(&b, args, 60);
		}
		sbuf_append(&b, "\n");
		if (l->n_entries == 0) {
			sbuf_append(&b,
			    "\nNothing matches. Ask us with /support "
			    "&lt;your question&gt;.");
		}
		for (size_t i = 0; i < l->n_entries; i++) {
			sbuf_append(&b, "\n<b>");
			gw_render_text(&b, l->entries[i]->question, 200);
			sbuf_append(&b, "</b>\n");
			gw_render_text(&b, l->entries[i]->answer, 0);
			sbuf_append(&b, "\n");
		}
		gw_kbd_button(&k, "📝 New ticket", "1:nt");
		gw_kbd_button(&k, "⬅️ Support", "1:su");
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	free(clean);
	return 0;
}

int
gw_cmd_contact(gw_ctx *ctx, const char *args)
{
	gw_keyboard k = { 0 };
	gw_kbd_button(&k, "📝 New ticket", "1:nt");
	gw_kbd_button(&k, "❓ FAQ", "1:fq");
	gw_ctx_reply(ctx,
	    "✉️ <b>Contact support</b>\nWrite <code>/support your "
	    "question</code> or press New ticket: a person answers in this "
	    "chat. Ultra customers get a first response within 1 hour.",
	    &k);
	return 0;
}

/* ---- admin commands ---- */

int
gw_cmd_queue(gw_ctx *ctx, const char *args)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__QueueRequest r = OPSDESK__V1__QUEUE_REQUEST__INIT;
	Opsdesk__V1__PageRequest page = OPSDESK__V1__PAGE_REQUEST__INIT;
	/* The first 100 by due time, of which 20 are shown: ultra tickets
	 * whose 1 h first-response clock runs go first (ultra.c). */
	page.limit = 100;
	r.page = &page;
	Opsdesk__V1__TicketList *l
	    = gw_ask(ctx, GW_TICKET, "queue", &r.base, "tickets", &rep);
	if (l != NULL) {
		sbuf b = SBUF_INIT;
		int64_t now = od_now_ms();
		size_t shown = l->n_tickets < 20 ? l->n_tickets : 20;
		gw_ultra_order(l->tickets, l->n_tickets);
		sbuf_printf(&b, "📥 <b>Queue</b> — %u open\n",
		    l->total ? l->total : (unsigned) l->n_tickets);
		for (size_t i = 0; i < shown; i++) {
			const Opsdesk__V1__Ticket *t = l->tickets[i];
			if (gw_ultra_first(t)) {
				sbuf_append(&b, "⭐ ULTRA ⏱ ");
			}
			int64_t due = t->first_response_ms == 0
			    ? t->first_response_due_ms
			    : t->resolution_due_ms;
			render_ticket_line(&b, t, now);
			if (due > 0) {
				sbuf_append(&b, "    due ");
				gw_render_time(&b, due, now);
				sbuf_append(&b,
				    (t->first_response_breached
				        || t->resolution_breached)
				        ? " ⚠️ breached\n"
				        : "\n");
			}
		}
		if (l->n_tickets == 0) {
			sbuf_append(&b, "Nothing waiting. 🎉");
		} else if (shown < l->n_tickets || l->next_cursor[0] != '\0') {
			sbuf_append(&b, "…\n");
		}
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

/* /reply and /note: "<id> <text>". */
static int
ticket_text(
    gw_ctx *ctx, const char *args, const char *method, const char *done)
{
	char w[32];
	uint64_t id;
	ProtobufCMessage *rep = NULL;
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0
	    || *args == '\0') {
		return GW_USAGE;
	}
	char *clean = od_utf8_sanitize(args, strlen(args));
	if (clean == NULL) {
		return OD_ENOMEM;
	}
	Opsdesk__V1__TicketTextRequest r
	    = OPSDESK__V1__TICKET_TEXT_REQUEST__INIT;
	r.id = id;
	r.text = clean;
	Opsdesk__V1__Ticket *t
	    = gw_ask(ctx, GW_TICKET, method, &r.base, "ticket", &rep);
	if (t != NULL) {
		sbuf b = SBUF_INIT;
		sbuf_printf(&b, "✅ %s on <b>T-%llu</b> (%s).", done,
		    (unsigned long long) t->id,
		    gw_render_ticket_status(t->status));
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	free(clean);
	return 0;
}

int
gw_cmd_reply(gw_ctx *ctx, const char *args)
{
	return ticket_text(ctx, args, "reply", "Reply sent");
}

int
gw_cmd_note(gw_ctx *ctx, const char *args)
{
	return ticket_text(ctx, args, "note", "Internal note added");
}

/* Run a ticket mutation and confirm with the ticket's new state. */
static void
ticket_change(
    gw_ctx *ctx, const char *method, ProtobufCMessage *msg, const char *what)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__Ticket *t
	    = gw_ask(ctx, GW_TICKET, method, msg, "ticket", &rep);
	if (t != NULL) {
		sbuf b = SBUF_INIT;
		sbuf_printf(&b,
		    "✅ <b>T-%llu</b>: %s (status %s, priority %s).",
		    (unsigned long long) t->id, what,
		    gw_render_ticket_status(t->status),
		    gw_render_priority_name(t->priority));
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
}

/* /close, /resolve, /pending <id>: one status change each. */
static int
ticket_status_cmd(gw_ctx *ctx, const char *args,
    Opsdesk__V1__TicketStatus status, const char *what)
{
	char w[32];
	uint64_t id;
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0
	    || *args != '\0') {
		return GW_USAGE;
	}
	Opsdesk__V1__SetStatusRequest r
	    = OPSDESK__V1__SET_STATUS_REQUEST__INIT;
	r.id = id;
	r.status = status;
	ticket_change(ctx, "set_status", &r.base, what);
	return 0;
}

int
gw_cmd_close(gw_ctx *ctx, const char *args)
{
	return ticket_status_cmd(ctx, args,
	    OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED, "closed");
}

int
gw_cmd_resolve(gw_ctx *ctx, const char *args)
{
	return ticket_status_cmd(ctx, args,
	    OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_RESOLVED, "resolved");
}

int
gw_cmd_pending(gw_ctx *ctx, const char *args)
{
	return ticket_status_cmd(ctx, args,
	    OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING,
	    "pending on the customer");
}

int
gw_cmd_assign(gw_ctx *ctx, const char *args)
{
	char w[32], who[32];
	uint64_t id;
	Opsdesk__V1__AssignRequest r = OPSDESK__V1__ASSIGN_REQUEST__INIT;
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0) {
		return GW_USAGE;
	}
	r.id = id;
	if (!gw_word(&args, who, sizeof(who)) || strcmp(who, "me") == 0) {
		r.assignee_id = ctx->user_id;
		r.assignee_name = ctx->name;
	} else {
		char *end;
		long long uid = strtoll(who, &end, 10);
		if (*end != '\0' || uid <= 0 || *args != '\0') {
			return GW_USAGE;
		}
		r.assignee_id = uid;
		r.assignee_name = who;
	}
	char what[128];
	if (r.assignee_id == ctx->user_id) {
		snprintf(what, sizeof(what), "assigned to you");
	} else {
		snprintf(what, sizeof(what), "assigned to user %lld",
		    (long long) r.assignee_id);
	}
	ticket_change(ctx, "assign", &r.base, what);
	return 0;
}

int
gw_cmd_priority(gw_ctx *ctx, const char *args)
{
	char w[32], p[16];
	uint64_t id;
	Opsdesk__V1__SetPriorityRequest r
	    = OPSDESK__V1__SET_PRIORITY_REQUEST__INIT;
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "T", &id) != 0
	    || !gw_word(&args, p, sizeof(p)) || parse_priority(p) == 0
	    || *args != '\0') {
		return GW_USAGE;
	}
	r.id = id;
	r.priority = parse_priority(p);
	ticket_change(ctx, "set_priority", &r.base, "priority changed");
	return 0;
}

int
gw_cmd_tier(gw_ctx *ctx, const char *args)
{
	static const char *const tiers[]
	    = { "free", "pro", "elite", "ultra", NULL };
	char w[32], t[16];
	int tier = 0;
	ProtobufCMessage *rep = NULL;
	if (!gw_word(&args, w, sizeof(w)) || !gw_word(&args, t, sizeof(t))
	    || *args != '\0') {
		return GW_USAGE;
	}
	for (int i = 0; tiers[i] != NULL; i++) {
		if (strcasecmp(t, tiers[i]) == 0) {
			tier = i + 1;
		}
	}
	char *end;
	long long uid = strtoll(w, &end, 10);
	if (tier == 0 || *end != '\0' || uid <= 0) {
		return GW_USAGE;
	}
	Opsdesk__V1__SetTierRequest r = OPSDESK__V1__SET_TIER_REQUEST__INIT;
	r.user_id = uid;
	r.tier = tier;
	Opsdesk__V1__CustomerTier *ct
	    = gw_ask(ctx, GW_TICKET, "set_tier", &r.base, "tier", &rep);
	if (ct != NULL) {
		sbuf b = SBUF_INIT;
		gw_ultra_forget(
		    ct->user_id); /* its next view is the new tier */
		sbuf_printf(&b,
		    "✅ User <code>%lld</code> is now on <b>%s</b>.",
		    (long long) ct->user_id, gw_render_tier_name(ct->tier));
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}
