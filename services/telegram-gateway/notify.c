/*
 * notify — bus events into chat messages: alerts to the admin chat with
 * Acknowledge / Resolve buttons, new tickets and SLA breaches to the admin
 * chat, staff replies and ticket notices to the ticket's owner, status
 * changes to subscribers, maintenance reminders to subscribers and admins.
 *
 * The bus is best effort, so alerts are also replayed from
 * incident-service's alert log: on start, on every resync and once a
 * minute, from the last seq delivered (kept in the store; a seq is
 * delivered once whichever path sees it first).
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "gateway.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "log/log.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"

#define ALERT_SEQ_KEY "alert_seq"

struct gw_notify {
	gw *g;
	bus_subscriber *sub;
	bus_resync *resync; /* the alert log catch-up */
	pthread_t th;       /* flushes coalesced status notices */
	bool started;
	bool stop; /* under mtx */
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	int64_t window_ms;  /* gateway.status_coalesce */
	status_batch batch; /* under mtx */
};

/* Where admin notifications go: the admin chat, else each admin. */
static size_t
admin_chats(gw *g, int64_t *out, size_t max)
{
	const config *c = gw_config(g);
	size_t n = 0;
	if (gw_is_console(g)) {
		out[n++] = 1; /* the person at the terminal is the admin */
		return n;
	}
	if (c->admin_chat != 0) {
		out[n++] = c->admin_chat;
		return n;
	}
	for (int i = 0; i < c->n_admins && n < max; i++) {
		out[n++] = c->admins[i];
	}
	return n;
}

static void
to_admins(gw_ctx *ctx, const char *html, const gw_keyboard *k, const char *tag)
{
	int64_t chats[CONFIG_MAX_ADMINS];
	size_t n = admin_chats(ctx->g, chats, CONFIG_MAX_ADMINS);
	for (size_t i = 0; i < n; i++) {
		gw_ctx_send_lane(ctx, GW_LANE_ALERT, chats[i], html, k, tag);
	}
}

/* A ticket's staff notification: the admins, and for an ultra ticket its
 * dedicated chat too (tickets.ultra_chat; ultra.c). */
static void
to_ticket_staff(gw_ctx *ctx, const Opsdesk__V1__Ticket *t, const char *html,
    const gw_keyboard *k, const char *tag)
{
	int64_t admins[CONFIG_MAX_ADMINS], chats[CONFIG_MAX_ADMINS + 1];
	size_t n = admin_chats(ctx->g, admins, CONFIG_MAX_ADMINS);
	n = gw_ultra_route(admins, n, gw_get_settings(ctx->g)->ultra_chat,
	    t->tier, chats, CONFIG_MAX_ADMINS + 1);
	for (size_t i = 0; i < n; i++) {
		gw_ctx_send_lane(ctx, GW_LANE_ALERT, chats[i], html, k, tag);
	}
}

/* "13:05 UTC" (the date too when not today). */
static void
clock_time(sbuf *b, int64_t ms)
{
	char buf[32];
	time_t t = (time_t) (ms / 1000), now = (time_t) (od_now_ms() / 1000);
	struct tm tm, tn;
	gmtime_r(&t, &tm);
	gmtime_r(&now, &tn);
	strftime(buf, sizeof(buf),
	    (tm.tm_yday == tn.tm_yday && tm.tm_year == tn.tm_year)
	        ? "%H:%M UTC"
	        : "%Y-%m-%d %H:%M UTC",
	    &tm);
	sbuf_append(b, buf);
}

/* The last timeline entry that resolved the incident, or NULL. */
static const Opsdesk__V1__TimelineEntry *
resolving_entry(const Opsdesk__V1__Incident *in)
{
	for (size_t i = in->n_timeline; i > 0; i--) {
		if (in->timeline[i - 1]->status
		    == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
			return in->timeline[i - 1];
		}
	}
	return NULL;
}

/* The alert message for an incident in its current state: who did what
 * and when, the incident, its latest update, the runbook while it is
 * open; the buttons that still apply. head: the alert's own line (a new
 * alert), or NULL for the state line (an edit). */
void
gw_alert_render(gw *g, sbuf *b, gw_keyboard *k, const char *head,
    const Opsdesk__V1__Incident *in)
{
	bool resolved = in->status
	    == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED;
	if (resolved) {
		const Opsdesk__V1__TimelineEntry *e = resolving_entry(in);
		if (e == NULL || e->author_id == 0) {
			sbuf_append(b, "✅ <b>Resolved automatically</b>");
		} else {
			sbuf_append(b, "✅ <b>Resolved</b> by ");
			gw_render_text(b, e->author_name, 64);
		}
		sbuf_append(b, " at ");
		clock_time(b,
		    in->resolved_ms ? in->resolved_ms
		        : e != NULL ? e->at_ms
		                    : od_now_ms());
		sbuf_append(b, "\n");
	} else if (in->acknowledged) {
		sbuf_append(b, "✋ <b>Acknowledged</b> by ");
		gw_render_text(b, in->acknowledged_by_name, 64);
		sbuf_append(b, " at ");
		clock_time(b, in->acknowledged_ms);
		sbuf_append(b, "\n");
	}
	if (head != NULL) {
		sbuf_append(b, head);
	} else if (!resolved && !in->acknowledged) {
		sbuf_printf(b, "🚨 <b>Alert</b> %s\n",
		    gw_render_severity_symbol(in->severity));
	}
	sbuf_append(b, "\n");
	gw_render_incident(b, in, false);
	if (in->n_timeline > 0) {
		const Opsdesk__V1__TimelineEntry *e
		    = in->timeline[in->n_timeline - 1];
		sbuf_append(b, "Latest: ");
		clock_time(b, e->at_ms);
		sbuf_printf(
		    b, " · %s · ", gw_render_incident_status(e->status));
		gw_render_text(
		    b, e->author_id ? e->author_name : "system", 64);
		sbuf_append(b, ": ");
		gw_render_text(b, e->text, 300);
		sbuf_append(b, "\n");
	}
	if (!resolved) {
		sbuf_append(b, "\n");
		gw_incident_runbook(g, in->severity, b, 600);
	}
	gw_incident_buttons(k, in);
}

static void
deliver_alert(gw *g, const Opsdesk__V1__AlertEvent *a)
{
	gw_ctx ctx;
	sbuf b = SBUF_INIT, head = SBUF_INIT;
	gw_keyboard k = { 0 };
	char tag[32] = "";

	if (a->seq != 0 && a->seq <= gw_meta_u64(g, ALERT_SEQ_KEY)) {
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	sbuf_printf(&head, "🚨 <b>Alert</b> %s ",
	    gw_render_severity_symbol(a->severity));
	gw_render_text(&head, a->text[0] ? a->text : a->kind, 300);
	sbuf_append(&head, "\n");
	if (a->incident != NULL) {
		/* Tagged: the sender remembers where it went, so later
		 * changes of the incident edit it in place. */
		snprintf(tag, sizeof(tag), "i%llu",
		    (unsigned long long) a->incident->id);
		gw_alert_render(g, &b, &k, sbuf_str(&head), a->incident);
	} else {
		sbuf_append(&b, sbuf_str(&head));
	}
	to_admins(&ctx, sbuf_str(&b), &k, tag[0] ? tag : NULL);
	int rv = a->seq != 0 ? gw_enqueue_once(g, &ctx, ALERT_SEQ_KEY, a->seq)
	                     : gw_enqueue(g, &ctx);
	if (rv != 0) {
		log_error("cannot queue alert %llu: %s",
		    (unsigned long long) a->seq, od_strerror(rv));
	}
	metric_inc(gw_counter(g, "opsdesk_gateway_notifications_total",
	    "Bus events turned into messages", "kind=\"alert\""));
	gw_ctx_free(&ctx);
	sbuf_free(&b);
	sbuf_free(&head);
}

/*
 * An incident changed (acknowledged, updated, severity, resolved): every
 * alert message about it is edited to its new state, its moot buttons
 * gone. An automatic resolve is also announced to the admins.
 */
static void
deliver_incident(gw *g, const char *topic, const Opsdesk__V1__IncidentEvent *e)
{
	const Opsdesk__V1__Incident *in = e->incident;
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	uint8_t prefix[8];
	gw_ctx ctx;
	sbuf b = SBUF_INIT;
	gw_keyboard kb = { 0 };
	size_t n = 0;

	if (in == NULL || in->id == 0 || strcmp(e->change, "opened") == 0) {
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	gw_alert_render(g, &b, &kb, NULL, in);
	store_key_u64(prefix, in->id);
	if (store_read_begin(gw_store(g), &txn) == 0) {
		/* Keys: incident id, chat, message id. */
		if (store_scan_open(&sc, txn,
		        store_db(gw_store(g), GW_DB_ALERT_MSG), prefix, 8,
		        NULL)
		    == 0) {
			while (store_scan_next(&sc, &k, &v) == 0
			    && k.mv_size == 24) {
				const uint8_t *p = k.mv_data;
				int64_t chat
				    = (int64_t) store_key_get_u64(p + 8);
				int64_t msg
				    = (int64_t) store_key_get_u64(p + 16);
				cJSON *body = cJSON_CreateObject();
				cJSON_AddNumberToObject(
				    body, "chat_id", (double) chat);
				cJSON_AddNumberToObject(
				    body, "message_id", (double) msg);
				cJSON_AddStringToObject(
				    body, "text", sbuf_str(&b));
				cJSON_AddStringToObject(
				    body, "parse_mode", "HTML");
				cJSON_AddTrueToObject(
				    body, "disable_web_page_preview");
				cJSON *kj = gw_kbd_to_json(&kb);
				if (kj != NULL) {
					cJSON_AddItemToObject(
					    body, "reply_markup", kj);
				} else {
					/* no buttons left: remove them */
					cJSON *empty = cJSON_CreateObject();
					cJSON_AddItemToObject(empty,
					    "inline_keyboard",
					    cJSON_CreateArray());
					cJSON_AddItemToObject(
					    body, "reply_markup", empty);
				}
				gw_ctx_send_method(
				    &ctx, "editMessageText", chat, body, NULL);
				n++;
			}
			store_scan_close(&sc);
		}
		store_read_end(txn);
	}
	const Opsdesk__V1__TimelineEntry *r = resolving_entry(in);
	if (strcmp(topic, "incident.resolved") == 0
	    && (r == NULL || r->author_id == 0)
	    && (n > 0
	        || in->severity <= OPSDESK__V1__SEVERITY__SEVERITY_HIGH)) {
		/* Nobody pressed anything: say so where the alert was. */
		sbuf a = SBUF_INIT;
		gw_keyboard ak = { 0 };
		char data[GW_CBDATA_MAX + 1], id[24];
		char d[48];
		od_format_duration(
		    (in->resolved_ms ? in->resolved_ms : od_now_ms())
		        - in->created_ms,
		    d, sizeof(d));
		sbuf_printf(&a,
		    "✅ <b>INC-%llu resolved automatically</b> after %s\n",
		    (unsigned long long) in->id, d);
		gw_render_text(&a, in->title, 200);
		if (r != NULL && r->text[0] != '\0') {
			sbuf_append(&a, "\n");
			gw_render_text(&a, r->text, 300);
		}
		snprintf(id, sizeof(id), "%llu", (unsigned long long) in->id);
		gw_cb_encode(data, sizeof(data), "is", id, NULL);
		gw_kbd_button(&ak, "🔎 Show", data);
		gw_cb_encode(data, sizeof(data), "ip", id, NULL);
		gw_kbd_button(&ak, "📝 Postmortem", data);
		to_admins(&ctx, sbuf_str(&a), &ak, NULL);
		sbuf_free(&a);
	}
	if (ctx.n_outs > 0 && gw_enqueue(g, &ctx) == 0) {
		metric_add(gw_counter(g, "opsdesk_gateway_notifications_total",
		               "Bus events turned into messages",
		               "kind=\"incident\""),
		    ctx.n_outs);
	}
	gw_ctx_free(&ctx);
	sbuf_free(&b);
}

static void
deliver_ticket(gw *g, const char *topic, const Opsdesk__V1__TicketEvent *e)
{
	const Opsdesk__V1__Ticket *t = e->ticket;
	const Opsdesk__V1__TicketMessage *m = e->message;
	gw_ctx ctx;
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	char tag[32], data[GW_CBDATA_MAX + 1], id[24];

	if (t == NULL) {
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	snprintf(tag, sizeof(tag), "t%llu", (unsigned long long) t->id);
	snprintf(id, sizeof(id), "%llu", (unsigned long long) t->id);
	gw_cb_encode(data, sizeof(data), "tv", id, NULL);
	if (strcmp(topic, "ticket.created") == 0
	    || (strcmp(topic, "ticket.replied") == 0 && m != NULL
	        && m->kind == OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_USER)) {
		bool created = strcmp(topic, "ticket.created") == 0;
		gw_ultra_mark(&b, t, od_now_ms());
		sbuf_printf(&b, "%s <b>T-%llu</b> · %s · %s\nFrom ",
		    created ? "🎫 New ticket" : "👤 New message on",
		    (unsigned long long) t->id,
		    gw_render_priority_name(t->priority),
		    gw_render_tier_name(t->tier));
		gw_render_text(&b, t->owner_name, 64);
		sbuf_printf(&b, " (id <code>%lld</code>)\n\n",
		    (long long) t->owner_id);
		gw_render_text(&b, m != NULL ? m->text : t->subject, 1500);
		sbuf_append(&b,
		    "\n\n<i>Reply to this message to answer the "
		    "customer.</i>");
		gw_kbd_button(&k, "🔎 Show", data);
		to_ticket_staff(&ctx, t, sbuf_str(&b), &k, tag);
	} else if (strcmp(topic, "ticket.replied") == 0 && m != NULL
	    && m->kind
	        == OPSDESK__V1__MESSAGE_KIND__MESSAGE_KIND_STAFF_REPLY) {
		sbuf_printf(&b, "💬 <b>Support replied on T-%llu</b>\n\n",
		    (unsigned long long) t->id);
		gw_render_text(&b, m->text, 3000);
		char am[GW_CBDATA_MAX + 1];
		gw_cb_encode(am, sizeof(am), "tm", id, NULL);
		gw_kbd_button(&k, "💬 Answer", am);
		gw_kbd_button(&k, "🔎 View ticket", data);
		gw_ctx_send(&ctx, t->chat_id ? t->chat_id : t->owner_id,
		    sbuf_str(&b), &k, NULL);
	} else if (strcmp(topic, "ticket.sla_breached") == 0) {
		gw_ultra_mark(&b, t, od_now_ms());
		sbuf_printf(&b,
		    "⏰ <b>SLA breached</b> on T-%llu (%s) · %s · "
		    "%s\n",
		    (unsigned long long) t->id,
		    strcmp(e->clock, "resolution") == 0 ? "resolution"
		                                        : "first response",
		    gw_render_priority_name(t->priority),
		    gw_render_tier_name(t->tier));
		gw_render_text(&b, t->subject, 200);
		gw_kbd_button(&k, "🔎 Show", data);
		to_ticket_staff(&ctx, t, sbuf_str(&b), &k, tag);
	}
	/* One per ticket event, possibly many a second: committed with
	 * others, without waiting. */
	if (ctx.n_outs > 0 && gw_enqueue_async(g, &ctx) == 0) {
		metric_inc(gw_counter(g, "opsdesk_gateway_notifications_total",
		    "Bus events turned into messages", "kind=\"ticket\""));
	}
	gw_ctx_free(&ctx);
	sbuf_free(&b);
}

static void
deliver_ticket_notify(gw *g, const Opsdesk__V1__TicketNotify *n)
{
	gw_ctx ctx;
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	char data[GW_CBDATA_MAX + 1], id[24];

	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	snprintf(id, sizeof(id), "%llu", (unsigned long long) n->ticket_id);
	sbuf_printf(&b, "ℹ️ <b>T-%s</b>\n", id);
	gw_render_text(&b, n->text, 3000);
	/* The service asks for a rating in words ("/rate 12 <1-5>"): offer
	 * the buttons too. */
	if (n->ticket_id != 0 && strstr(n->text, "/rate") != NULL) {
		for (int r = 1; r <= 5; r++) {
			char score[4], label[8];
			snprintf(score, sizeof(score), "%d", r);
			snprintf(label, sizeof(label), "%d⭐", r);
			if (gw_cb_encode(data, sizeof(data), "tr", id, score)
			    == 0) {
				gw_kbd_button(&k, label, data);
			}
		}
		gw_kbd_row(&k);
	}
	if (n->ticket_id != 0
	    && gw_cb_encode(data, sizeof(data), "tv", id, NULL) == 0) {
		gw_kbd_button(&k, "🔎 View ticket", data);
	}
	gw_ctx_send(&ctx, n->chat_id ? n->chat_id : n->user_id, sbuf_str(&b),
	    &k, NULL);
	gw_enqueue_async(g, &ctx);
	gw_ctx_free(&ctx);
	sbuf_free(&b);
}

/* ---- subscriber notices ---- */

void
gw_status_batch_add(status_batch *b, const Opsdesk__V1__StatusChanged *s,
    int64_t now_ms, int64_t window_ms)
{
	if (b->due_ms == 0) {
		b->due_ms = now_ms + window_ms;
	}
	od_strlcpy(b->indicator, s->indicator, sizeof(b->indicator));
	od_strlcpy(b->description, s->description, sizeof(b->description));
	od_strlcpy(b->page_url, s->page_url, sizeof(b->page_url));
	if (s->n_changes == 0) {
		b->overall = true;
	}
	for (size_t i = 0; i < s->n_changes; i++) {
		const Opsdesk__V1__ComponentChange *c = s->changes[i];
		size_t j = 0;
		while (j < b->n && strcmp(b->ch[j].id, c->component_id) != 0) {
			j++;
		}
		if (j == b->n) {
			if (b->n == STATUS_BATCH_MAX) {
				continue;
			}
			b->n++;
			od_strlcpy(
			    b->ch[j].id, c->component_id, sizeof(b->ch[j].id));
			od_strlcpy(b->ch[j].old_status, c->old_status,
			    sizeof(b->ch[j].old_status));
		}
		od_strlcpy(b->ch[j].name,
		    c->name[0] ? c->name : c->component_id,
		    sizeof(b->ch[j].name));
		od_strlcpy(b->ch[j].new_status, c->new_status,
		    sizeof(b->ch[j].new_status));
	}
}

bool
gw_status_batch_due(const status_batch *b, int64_t now_ms)
{
	return b->due_ms != 0 && now_ms >= b->due_ms;
}

size_t
gw_status_batch_settle(status_batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (strcmp(b->ch[i].old_status, b->ch[i].new_status) != 0) {
			b->ch[n++] = b->ch[i];
		}
	}
	b->n = n;
	return n;
}

/* Whether a subscription ("" all, ",a,b,") covers component id. */
static bool
subs_cover(const char *subs, size_t len, const char *id)
{
	char needle[80];
	if (len == 0) {
		return true;
	}
	snprintf(needle, sizeof(needle), ",%s,", id);
	return memmem(subs, len, needle, strlen(needle)) != NULL;
}

/* One subscriber's notice: only the components they follow, the worst
 * of them in the header, the incidents on them with their latest public
 * update. Empty when nothing of theirs changed. */
static void
status_notice(sbuf *b, const status_batch *sb, const char *subs, size_t len,
    const Opsdesk__V1__StatusSummary *sum)
{
	int worst = -1;
	size_t n = 0;
	sbuf lines = SBUF_INIT;
	for (size_t i = 0; i < sb->n; i++) {
		if (!subs_cover(subs, len, sb->ch[i].id)) {
			continue;
		}
		int r = gw_render_public_rank(sb->ch[i].new_status);
		worst = r > worst ? r : worst;
		n++;
		sbuf_printf(&lines, "%s <b>",
		    gw_render_public_symbol(sb->ch[i].new_status));
		gw_render_text(&lines, sb->ch[i].name, 60);
		sbuf_printf(&lines, "</b>: %s%s (was %s)\n",
		    gw_render_public_name(sb->ch[i].new_status),
		    gw_render_public_rank(sb->ch[i].new_status) == 0 ? " again"
		                                                     : "",
		    gw_render_public_name(sb->ch[i].old_status));
	}
	if (n == 0 && !(len == 0 && sb->overall)) {
		sbuf_free(&lines);
		return;
	}
	static const char *const heads[] = { "✅ <b>Back to normal</b>",
		"🔧 <b>Maintenance</b>", "🟡 <b>Degraded performance</b>",
		"🟠 <b>Partial outage</b>", "🔴 <b>Major outage</b>" };
	if (n > 0) {
		sbuf_append(b, heads[worst]);
		sbuf_append(b, "\n\n");
		sbuf_append(b, sbuf_str(&lines));
	} else {
		sbuf_printf(b, "%s <b>Status update</b>\n",
		    gw_render_public_symbol(sb->indicator));
	}
	for (size_t i = 0; sum != NULL && i < sum->n_incidents; i++) {
		const Opsdesk__V1__PublicIncident *in = sum->incidents[i];
		bool ours = in->n_components == 0 && n == 0;
		for (size_t c = 0; c < in->n_components && !ours; c++) {
			for (size_t j = 0; j < sb->n && !ours; j++) {
				ours = (strcmp(in->components[c], sb->ch[j].id)
				               == 0
				           || strcmp(in->components[c],
				                  sb->ch[j].name)
				               == 0)
				    && subs_cover(subs, len, sb->ch[j].id);
			}
		}
		if (!ours) {
			continue;
		}
		sbuf_append(b, "\n📣 <b>");
		gw_render_text(b, in->name, 160);
		sbuf_append(b, "</b>");
		if (in->status[0] != '\0') {
			sbuf_printf(b, " — %c",
			    toupper((unsigned char) in->status[0]));
			gw_render_text(b, in->status + 1, 40);
		}
		sbuf_append(b, "\n");
		if (in->latest_update[0] != '\0') {
			gw_render_text(b, in->latest_update, 500);
			sbuf_append(b, "\n");
		}
	}
	if (sb->description[0] != '\0') {
		sbuf_append(b, "\nOverall: ");
		gw_render_text(b, sb->description, 160);
	}
	if (sb->page_url[0] != '\0') {
		sbuf_append(b, "\n");
		gw_render_text(b, sb->page_url, 200);
	}
	sbuf_free(&lines);
}

/* Send the settled batch to every subscriber it concerns. */
static void
deliver_status(gw *g, status_batch *sb)
{
	gw_ctx ctx;
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__StatusSummaryRequest r
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;

	if (gw_status_batch_settle(sb) == 0 && !sb->overall) {
		return; /* flapped back within the window */
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	actor.name = "telegram-gateway";
	/* The public incidents, for their titles and latest updates; a
	 * status service that does not answer only loses those. */
	Opsdesk__V1__StatusSummary *sum = NULL;
	if (gw_call_quiet(g, &actor, "", GW_STATUS, "summary", &r.base, &rep)
	    == 0) {
		sum = gw_result(rep, "summary");
	}
	if (store_read_begin(gw_store(g), &txn) == 0) {
		if (store_scan_open(&sc, txn,
		        store_db(gw_store(g), GW_DB_SUBS), NULL, 0, NULL)
		    == 0) {
			while (store_scan_next(&sc, &k, &v) == 0) {
				sbuf b = SBUF_INIT;
				if (k.mv_size != 8) {
					continue;
				}
				status_notice(
				    &b, sb, v.mv_data, v.mv_size, sum);
				if (b.len > 0) {
					gw_ctx_send(&ctx,
					    (int64_t) store_key_get_u64(
					        k.mv_data),
					    sbuf_str(&b), NULL, NULL);
				}
				sbuf_free(&b);
			}
			store_scan_close(&sc);
		}
		store_read_end(txn);
	}
	gw_reply_free(rep);
	/* A broadcast: behind every reply, alert and ticket notice. */
	if (gw_enqueue_lane(g, &ctx, GW_LANE_BROADCAST) == 0) {
		metric_add(
		    gw_counter(g, "opsdesk_gateway_notifications_total",
		        "Bus events turned into messages", "kind=\"status\""),
		    ctx.n_outs);
	}
	gw_ctx_free(&ctx);
}

/* Send html to every subscribed chat whose components match (components
 * NULL: every subscriber). */
static void
to_subscribers(
    gw *g, gw_ctx *ctx, const char *html, const char *const *ids, size_t n_ids)
{
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	if (store_read_begin(gw_store(g), &txn) != 0) {
		return;
	}
	if (store_scan_open(
	        &sc, txn, store_db(gw_store(g), GW_DB_SUBS), NULL, 0, NULL)
	    == 0) {
		while (store_scan_next(&sc, &k, &v) == 0) {
			bool match = v.mv_size == 0 || ids == NULL;
			for (size_t i = 0; i < n_ids && !match; i++) {
				match
				    = subs_cover(v.mv_data, v.mv_size, ids[i]);
			}
			if (match && k.mv_size == 8) {
				gw_ctx_send_lane(ctx, GW_LANE_BROADCAST,
				    (int64_t) store_key_get_u64(k.mv_data),
				    html, NULL, NULL);
			}
		}
		store_scan_close(&sc);
	}
	store_read_end(txn);
}

static void
deliver_maintenance(gw *g, const Opsdesk__V1__MaintenanceEvent *e)
{
	const Opsdesk__V1__MaintenanceWindow *w = e->window;
	gw_ctx ctx;
	sbuf b = SBUF_INIT;
	if (w == NULL) {
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	sbuf_append(&b, "🔧 <b>Planned maintenance</b>\n");
	gw_render_text(&b, w->title, 200);
	sbuf_append(&b, "\nFrom ");
	gw_render_time(&b, w->start_ms, od_now_ms());
	sbuf_append(&b, "\nTo ");
	gw_render_time(&b, w->end_ms, od_now_ms());
	/* Names, not ids: the prober knows them. */
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__HealthCurrentRequest hr
	    = OPSDESK__V1__HEALTH_CURRENT_REQUEST__INIT;
	Opsdesk__V1__HealthCurrent *h = NULL;
	actor.is_admin = true;
	actor.name = "telegram-gateway";
	if (w->n_components > 0
	    && gw_call_quiet(
	           g, &actor, "", GW_PROBER, "current", &hr.base, &rep)
	        == 0) {
		h = gw_result(rep, "current");
	}
	for (size_t i = 0; i < w->n_components; i++) {
		const char *name = w->components[i];
		for (size_t t = 0; h != NULL && t < h->n_targets; t++) {
			if (strcmp(h->targets[t]->id, name) == 0
			    && h->targets[t]->name[0] != '\0') {
				name = h->targets[t]->name;
				break;
			}
		}
		sbuf_append(&b, i == 0 ? "\nAffects: " : ", ");
		gw_render_text(&b, name, 60);
	}
	gw_reply_free(rep);
	to_subscribers(g, &ctx, sbuf_str(&b),
	    (const char *const *) w->components, w->n_components);
	to_admins(&ctx, sbuf_str(&b), NULL, NULL);
	gw_enqueue(g, &ctx);
	gw_ctx_free(&ctx);
	sbuf_free(&b);
}

/* An error budget burn (health-prober's slo.burn / slo.resolved): to the
 * admins at once, as alerts go. */
static void
deliver_slo(gw *g, const char *topic, const Opsdesk__V1__SloEvent *e)
{
	gw_ctx ctx;
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };

	if (e->objective == NULL) {
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	gw_render_slo_alert(&b, &k, topic, e);
	to_admins(&ctx, sbuf_str(&b), &k, NULL);
	if (gw_enqueue(g, &ctx) != 0) {
		log_error("cannot queue the %s alert of %s", topic,
		    e->objective->target_id);
	}
	metric_inc(gw_counter(g, "opsdesk_gateway_notifications_total",
	    "Bus events turned into messages", "kind=\"slo\""));
	gw_ctx_free(&ctx);
	sbuf_free(&b);
}

void
gw_notify_event(gw *g, const char *topic, const Opsdesk__V1__Envelope *env)
{
	switch (env->payload_case) {
	case OPSDESK__V1__ENVELOPE__PAYLOAD_ALERT:
		deliver_alert(g, env->alert);
		break;
	case OPSDESK__V1__ENVELOPE__PAYLOAD_TICKET:
		deliver_ticket(g, topic, env->ticket);
		break;
	case OPSDESK__V1__ENVELOPE__PAYLOAD_INCIDENT:
		deliver_incident(g, topic, env->incident);
		break;
	case OPSDESK__V1__ENVELOPE__PAYLOAD_SLO:
		deliver_slo(g, topic, env->slo);
		break;
	case OPSDESK__V1__ENVELOPE__PAYLOAD_TICKET_NOTIFY:
		deliver_ticket_notify(g, env->ticket_notify);
		break;
	case OPSDESK__V1__ENVELOPE__PAYLOAD_STATUS_CHANGED: {
		status_batch *sb = calloc(1, sizeof(*sb));
		if (sb != NULL) {
			gw_status_batch_add(sb, env->status_changed, 0, 0);
			deliver_status(g, sb);
			free(sb);
		}
		break;
	}
	case OPSDESK__V1__ENVELOPE__PAYLOAD_MAINTENANCE:
		if (strcmp(topic, "maintenance.reminder") == 0) {
			deliver_maintenance(g, env->maintenance);
		}
		break;
	default:
		break;
	}
}

int
gw_notify_catch_up(gw *g)
{
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	actor.is_admin = true;
	actor.name = "telegram-gateway";
	for (int round = 0; round < 20; round++) {
		ProtobufCMessage *rep = NULL;
		Opsdesk__V1__AlertsRequest r
		    = OPSDESK__V1__ALERTS_REQUEST__INIT;
		r.since_seq = gw_meta_u64(g, ALERT_SEQ_KEY);
		r.limit = 50;
		int rv = gw_call_quiet(
		    g, &actor, "", GW_INCIDENT, "alerts", &r.base, &rep);
		Opsdesk__V1__AlertList *l
		    = rv == 0 ? gw_result(rep, "alerts") : NULL;
		size_t n = l ? l->n_alerts : 0;
		for (size_t i = 0; i < n; i++) {
			deliver_alert(g, l->alerts[i]);
		}
		gw_reply_free(rep);
		if (rv != 0 || n < 50) {
			return rv;
		}
	}
	return 0;
}

static void
on_event(void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	gw_notify *n = arg;
	if (env->payload_case == OPSDESK__V1__ENVELOPE__PAYLOAD_STATUS_CHANGED
	    && n->window_ms > 0) {
		/* Held for the window, then one notice (notify_main). */
		pthread_mutex_lock(&n->mtx);
		gw_status_batch_add(
		    &n->batch, env->status_changed, od_now_ms(), n->window_ms);
		pthread_cond_signal(&n->cond);
		pthread_mutex_unlock(&n->mtx);
		return;
	}
	gw_notify_event(n->g, topic, env);
}

/* The bus_resync fetch: alerts raised while we were down or the bus
 * dropped, then the housekeeping that shares its minute. */
static int
catch_up(void *arg)
{
	gw_notify *n = arg;
	int rv = gw_notify_catch_up(n->g);
	(void) gw_prune(n->g);
	return rv;
}

/* Status changes held for gateway.status_coalesce, then one notice per
 * subscriber: this thread sends a batch when it is due. */
static void *
notify_main(void *arg)
{
	gw_notify *n = arg;
	status_batch *sb = malloc(sizeof(*sb));

	pthread_mutex_lock(&n->mtx);
	while (!n->stop && sb != NULL) {
		int64_t now = od_now_ms();
		if (gw_status_batch_due(&n->batch, now)) {
			*sb = n->batch;
			memset(&n->batch, 0, sizeof(n->batch));
			pthread_mutex_unlock(&n->mtx);
			deliver_status(n->g, sb);
			pthread_mutex_lock(&n->mtx);
			continue;
		}
		/* Nothing held: sleep until signalled (a minute at most). */
		int64_t wait
		    = n->batch.due_ms != 0 ? n->batch.due_ms - now : 60000;
		(void) od_cond_wait_ms(&n->cond, &n->mtx, wait < 1 ? 1 : wait);
	}
	pthread_mutex_unlock(&n->mtx);
	free(sb);
	return NULL;
}

int
gw_notify_start(gw_notify **out, gw *g)
{
	static const char *const prefixes[] = { "alert.", "incident.updated",
		"incident.resolved", "ticket.created", "ticket.replied",
		"ticket.notify", "ticket.sla_breached", "status.changed",
		"maintenance.reminder", "slo.", NULL };
	gw_notify *n = calloc(1, sizeof(*n));
	int rv;
	if (n == NULL) {
		return OD_ENOMEM;
	}
	n->g = g;
	{
		/* gateway.status_coalesce: status changes within this window
		 * make one notice (0: each change at once). */
		char err[160];
		if ((rv = config_get_duration_ms(
		         config_section(gw_config(g), "gateway"), "gateway",
		         "status_coalesce", 3000, 0, 600000, &n->window_ms,
		         err, sizeof(err)))
		    != 0) {
			log_error("%s", err);
			free(n);
			return rv;
		}
	}
	pthread_mutex_init(&n->mtx, NULL);
	if (od_cond_init(&n->cond) != 0) {
		pthread_mutex_destroy(&n->mtx);
		free(n);
		return OD_ENOMEM;
	}
	if (pthread_create(&n->th, NULL, notify_main, n) != 0) {
		pthread_cond_destroy(&n->cond);
		pthread_mutex_destroy(&n->mtx);
		free(n);
		return OD_ENOMEM;
	}
	n->started = true;
	/* At start (alerts raised while down), on every resync and once a
	 * minute; retried while incident-service is down. */
	bus_resync_source src
	    = { "incident-service alerts", catch_up, n, 60000 };
	bus_resync_options rso
	    = { .sources = &src, .n_sources = 1, .metrics = gw_metrics(g) };
	if ((rv = bus_resync_start(&n->resync, &rso)) != 0) {
		gw_notify_stop(n);
		return rv;
	}
	bus_subscriber_options o = {
		.url = gw_config(g)->bus_subscribe,
		.prefixes = prefixes,
		.on_event = on_event,
		.resync = n->resync,
		.arg = n,
		.metrics = gw_metrics(g),
	};
	if ((rv = bus_subscriber_open(&n->sub, &o)) != 0) {
		log_error("cannot subscribe to the bus: %s", od_strerror(rv));
		gw_notify_stop(n);
		return rv;
	}
	*out = n;
	return 0;
}

void
gw_notify_stop(gw_notify *n)
{
	if (n == NULL) {
		return;
	}
	bus_subscriber_close(n->sub); /* it marks the worker */
	bus_resync_stop(n->resync);
	if (n->started) {
		pthread_mutex_lock(&n->mtx);
		n->stop = true;
		pthread_cond_signal(&n->cond);
		pthread_mutex_unlock(&n->mtx);
		pthread_join(n->th, NULL);
		pthread_mutex_destroy(&n->mtx);
		pthread_cond_destroy(&n->cond);
	}
	free(n);
}
