/*
 * commands_help — the main menu and the help pages, role-aware: admins see
 * the operations reference, SLAs and incident response guidelines; users
 * see support options and the status page.
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "incident.pb-c.h"

int
gw_cmd_help(gw_ctx *ctx, const char *args)
{
	gw_keyboard k = { 0 };
	sbuf b = SBUF_INIT;

	sbuf_append(&b, "👋 <b>Hello, ");
	gw_render_text(&b, ctx->name, 64);
	sbuf_append(&b,
	    "!</b>\nI am the service desk bot: open a support "
	    "ticket, follow your tickets, read the FAQ and the "
	    "live status.\n\n"
	    "/support — support menu\n"
	    "/tickets — your tickets\n"
	    "/status — service status\n"
	    "/faq — frequently asked questions\n"
	    "/subscribe — status notifications\n"
	    "/cancel — stop what you started\n"
	    "Reply to any message about a ticket to add to it.\n");
	if (gw_ultra_user(ctx)) {
		/* What the ultra tier was promised, as it is set up here. */
		sbuf_append(&b,
		    "\n⭐ <b>Your ultra plan</b>\n"
		    "• Priority support: a first response within 1 hour "
		    "(30 min when urgent); your tickets lead our queue\n");
		sbuf_append(&b,
		    gw_get_settings(ctx->g)->ultra_chat != 0
		        ? "• A dedicated support channel: your tickets and "
		          "messages go straight to our ultra support team\n"
		        : "• Your tickets and messages reach our support "
		          "team marked ultra\n");
		sbuf_append(&b,
		    "• Live monitoring: /status_page shows each service's "
		    "current response time and uptime, updated in place\n");
	}
	if (ctx->is_admin) {
		sbuf_append(&b,
		    "\n🛠 <b>Admin</b>: /health /monitor /ops "
		    "/incident /queue /report — full list in "
		    "/help_admin\n");
	}
	gw_kbd_button(&k, "🛟 Support", "1:su");
	gw_kbd_button(&k, "📊 Status", "1:st");
	gw_kbd_row(&k);
	gw_kbd_button(&k, "❓ FAQ", "1:fq");
	gw_kbd_button(&k, "⚙️ Operations", "1:ho");
	if (ctx->is_admin) {
		gw_kbd_row(&k);
		gw_kbd_button(&k, "🩺 Health", "1:hl");
		gw_kbd_button(&k, "📈 Monitor", "1:mo");
		gw_kbd_row(&k);
		gw_kbd_button(&k, "🧰 Ops", "1:op");
		gw_kbd_button(&k, "🚨 Incidents", "1:im");
		gw_kbd_button(&k, "📥 Queue", "1:q");
	}
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	return 0;
}

static const char admin_ops_help[]
    = "⚙️ <b>Operations</b>\n\n"
      "<b>Monitoring</b>\n"
      "/health — every component with state, latency and last check\n"
      "/monitor — live dashboard (Refresh edits in place)\n\n"
      "<b>Incidents</b>\n"
      "/incident new &lt;critical|high|medium|low&gt; &lt;title&gt;\n"
      "/incident list [all] · show · ack · resolve &lt;id&gt; [text]\n"
      "/incident update &lt;id&gt; "
      "&lt;investigating|identified|monitoring&gt; "
      "&lt;text&gt;\n"
      "/incident postmortem &lt;id&gt; [rootcause &lt;text&gt; | action "
      "&lt;text&gt;]\n"
      "/severity &lt;id&gt; &lt;critical|high|medium|low&gt; [reason] — "
      "re-classify\n\n"
      "<b>Operations</b>\n"
      "/ops — checklists, maintenance, latest report\n"
      "/maintenance [list] | add &lt;start&gt; &lt;duration&gt; "
      "&lt;components&gt; &lt;title&gt; | cancel &lt;id&gt;\n"
      "/report [day|week|month]\n\n"
      "<b>Incident response</b>\n"
      "1. Acknowledge the alert (button or /incident ack).\n"
      "2. Post updates as you learn: identified, monitoring.\n"
      "3. Resolve with a short public summary; fill the postmortem's "
      "root cause and action items.\n";

/* The SLAs and runbooks as configured (incident-service's config). */
static void
render_runbooks(gw_ctx *ctx, sbuf *b)
{
	static const int sevs[] = { OPSDESK__V1__SEVERITY__SEVERITY_CRITICAL,
		OPSDESK__V1__SEVERITY__SEVERITY_HIGH,
		OPSDESK__V1__SEVERITY__SEVERITY_MEDIUM,
		OPSDESK__V1__SEVERITY__SEVERITY_LOW };
	sbuf_append(b,
	    "\n<b>SLAs and runbooks</b> (response = "
	    "acknowledged)\n");
	for (size_t i = 0; i < sizeof(sevs) / sizeof(sevs[0]); i++) {
		Opsdesk__V1__RunbookRequest r
		    = OPSDESK__V1__RUNBOOK_REQUEST__INIT;
		ProtobufCMessage *rep = NULL;
		char d1[48], d2[48];
		r.severity = sevs[i];
		Opsdesk__V1__Runbook *rb = gw_peek(
		    ctx, GW_INCIDENT, "runbook", &r.base, "runbook", &rep);
		if (rb == NULL) {
			gw_reply_free(rep);
			gw_unavailable(b, GW_INCIDENT);
			return;
		}
		if (rb->response_sla_ms > 0) {
			od_format_duration(
			    rb->response_sla_ms, d1, sizeof(d1));
		} else {
			snprintf(d1, sizeof(d1), "no");
		}
		if (rb->resolution_sla_ms > 0) {
			od_format_duration(
			    rb->resolution_sla_ms, d2, sizeof(d2));
		} else {
			snprintf(d2, sizeof(d2), "scheduled");
		}
		sbuf_printf(b, "%s <b>%s</b>: %s response, %s resolution\n",
		    gw_render_severity_symbol(sevs[i]),
		    gw_render_severity_name(sevs[i]), d1, d2);
		if (rb->text[0] != '\0') {
			sbuf_append(b, "<i>");
			gw_render_text(b, rb->text, 400);
			sbuf_append(b, "</i>\n");
		}
		gw_reply_free(rep);
	}
}

static const char user_ops_help[]
    = "⚙️ <b>Operations &amp; support</b>\n\n"
      "🛟 /support — open a ticket, follow your tickets, FAQ\n"
      "📊 /status — live status of our services, active incidents and "
      "planned maintenance\n"
      "🔔 /subscribe — get a message when the status changes "
      "(/unsubscribe to stop)\n\n"
      "Ultra customers get priority support: a first response within 1 "
      "hour.";

int
gw_cmd_help_operations(gw_ctx *ctx, const char *args)
{
	gw_keyboard k = { 0 };
	if (ctx->is_admin) {
		gw_kbd_button(&k, "🩺 Health", "1:hl");
		gw_kbd_button(&k, "🚨 Incidents", "1:im");
		gw_kbd_button(&k, "🧰 Ops", "1:op");
		gw_kbd_row(&k);
		gw_kbd_button(&k, "📖 Admin reference", "1:ha");
	} else {
		gw_kbd_button(&k, "🛟 Support", "1:su");
		gw_kbd_button(&k, "📊 Status", "1:st");
	}
	gw_kbd_button(&k, "⬅️ Menu", "1:h");
	if (ctx->is_admin) {
		sbuf b = SBUF_INIT;
		sbuf_append(&b, admin_ops_help);
		render_runbooks(ctx, &b);
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	} else {
		gw_ctx_reply(ctx, user_ops_help, &k);
	}
	return 0;
}

int
gw_cmd_help_admin(gw_ctx *ctx, const char *args)
{
	size_t n;
	const gw_command *c = gw_router_commands(&n);
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };

	/* Generated from the command table, so it cannot drift. */
	sbuf_append(&b, "📖 <b>Admin reference</b>\n\n<b>Everyone</b>\n");
	for (int admin = 0; admin <= 1; admin++) {
		if (admin) {
			sbuf_append(&b, "\n<b>Admins</b>\n");
		}
		for (size_t i = 0; i < n; i++) {
			if (c[i].admin != (admin == 1) || !c[i].menu) {
				continue;
			}
			gw_render_text(&b, c[i].usage, 0);
			sbuf_append(&b, " — ");
			gw_render_text(&b, c[i].about, 0);
			sbuf_append(&b, "\n");
		}
	}
	sbuf_append(&b,
	    "/reply /note /resolve /pending /close /assign /priority /tier — "
	    "work "
	    "tickets (send one without arguments for its usage)\n"
	    "\nReply to a ticket notification in the admin chat to "
	    "answer the customer.\nIds work with or without their "
	    "prefix: T-12 or 12, INC-3 or 3.");
	gw_kbd_button(&k, "⚙️ Operations", "1:ho");
	gw_kbd_button(&k, "⬅️ Menu", "1:h");
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	return 0;
}
