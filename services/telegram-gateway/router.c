/*
 * router — the command table and its parser. Every chat command and every
 * button (callbacks.c expands buttons into command lines) passes through
 * gw_router_dispatch, which is the one place the gateway's own admin check
 * happens; the services check the actor again.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

static const gw_command commands[] = {
	{ "start", false, false, gw_cmd_start, "/start", "main menu" },
	{ "help", false, true, gw_cmd_help, "/help", "main menu" },
	{ "help_operations", false, true, gw_cmd_help_operations,
	    "/help_operations", "operations and support help" },
	{ "help_admin", true, false, gw_cmd_help_admin, "/help_admin",
	    "full admin reference" },
	{ "status_page", false, true, gw_cmd_status, "/status_page",
	    "service status" },
	{ "status", false, false, gw_cmd_status, "/status", "service status" },
	{ "subscribe", false, true, gw_cmd_subscribe,
	    "/subscribe [component…]", "status notifications" },
	{ "unsubscribe", false, true, gw_cmd_unsubscribe,
	    "/unsubscribe [component…]", "stop status notifications" },
	{ "support", false, true, gw_cmd_support, "/support [text]",
	    "support menu, or open a ticket with that text" },
	{ "tickets", false, true, gw_cmd_tickets, "/tickets", "my tickets" },
	{ "ticket", false, false, gw_cmd_ticket, "/ticket <id>",
	    "one ticket with its thread" },
	{ "faq", false, true, gw_cmd_faq, "/faq [words]",
	    "frequently asked questions" },
	{ "contact", false, false, gw_cmd_contact, "/contact",
	    "how to reach support" },
	{ "newticket", false, false, gw_cmd_newticket,
	    "/newticket [low|normal|high|urgent]",
	    "open a ticket step by step" },
	{ "addmsg", false, false, gw_cmd_addmsg, "/addmsg <id>",
	    "add a message to your ticket" },
	{ "rate", false, false, gw_cmd_rate, "/rate <id> <1-5> [comment]",
	    "rate a resolved ticket" },
	{ "cancel", false, true, gw_cmd_cancel, "/cancel",
	    "stop what you started (a new ticket, a message, a rating)" },
	{ "offer", false, false, gw_cmd_offer, "/offer yes <id> | new",
	    "where a message goes (the Add to ticket buttons)" },
	{ "health", true, true, gw_cmd_health, "/health", "component health" },
	{ "monitor", true, true, gw_cmd_monitor, "/monitor",
	    "monitoring dashboard" },
	{ "ops", true, true, gw_cmd_ops, "/ops", "operations dashboard" },
	{ "tick", true, false, gw_cmd_tick, "/tick <list> <item>",
	    "tick a checklist item" },
	{ "incident", true, true, gw_cmd_incident,
	    "/incident [new <critical|high|medium|low> <title> | list [all] | "
	    "show <id> | ack <id> | update <id> "
	    "<investigating|identified|monitoring> <text> | resolve <id> "
	    "[text] | postmortem <id> [rootcause <text> | action <text>]]",
	    "incidents" },
	{ "severity", true, true, gw_cmd_severity,
	    "/severity INC-<id> <critical|high|medium|low> [reason]",
	    "re-classify an incident (SLA clocks follow)" },
	{ "maintenance", true, true, gw_cmd_maintenance,
	    "/maintenance [list] | add <start> <duration> <components> "
	    "<title> | cancel <id>",
	    "maintenance windows" },
	{ "queue", true, true, gw_cmd_queue, "/queue",
	    "open tickets by SLA due time" },
	{ "reply", true, false, gw_cmd_reply, "/reply <id> <text>",
	    "staff reply on a ticket" },
	{ "note", true, false, gw_cmd_note, "/note <id> <text>",
	    "internal note on a ticket" },
	{ "resolve", true, false, gw_cmd_resolve, "/resolve <id>",
	    "mark a ticket resolved (the owner is asked to rate it)" },
	{ "pending", true, false, gw_cmd_pending, "/pending <id>",
	    "wait on the customer (pauses the SLA)" },
	{ "close", true, false, gw_cmd_close, "/close <id>",
	    "close a ticket" },
	{ "assign", true, false, gw_cmd_assign, "/assign <id> [me|<user id>]",
	    "assign a ticket" },
	{ "priority", true, false, gw_cmd_priority,
	    "/priority <id> <low|normal|high|urgent>",
	    "set a ticket's priority" },
	{ "tier", true, false, gw_cmd_tier,
	    "/tier <user id> <free|pro|elite|ultra>",
	    "set a customer's tier" },
	{ "report", true, true, gw_cmd_report, "/report [day|week|month]",
	    "performance report" },
};

const gw_command *
gw_router_commands(size_t *n)
{
	*n = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const gw_command *
gw_router_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			return &commands[i];
		}
	}
	return NULL;
}

bool
gw_router_parse(const char *text, const char *bot, char *name,
    size_t name_size, const char **args)
{
	const char *p = text;
	size_t n = 0;

	if (p == NULL || *p != '/' || name_size < 2) {
		return false;
	}
	p++;
	while (isalnum((unsigned char) p[n]) || p[n] == '_') {
		n++;
	}
	if (n == 0 || n >= name_size) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		name[i] = (char) tolower((unsigned char) p[i]);
	}
	name[n] = '\0';
	p += n;
	if (*p == '@') {
		const char *u = ++p;
		size_t ul = 0;
		while (isalnum((unsigned char) u[ul]) || u[ul] == '_') {
			ul++;
		}
		/* Telegram usernames are case-insensitive. */
		if (bot != NULL && *bot != '\0'
		    && (strlen(bot) != ul || strncasecmp(bot, u, ul) != 0)) {
			return false;
		}
		p = u + ul;
	}
	if (*p != '\0' && !isspace((unsigned char) *p)) {
		return false;
	}
	while (isspace((unsigned char) *p)) {
		p++;
	}
	*args = p;
	return true;
}

void
gw_ctx_refuse(gw_ctx *ctx, const char *html, const char *popup)
{
	bool button = ctx->u != NULL && ctx->u->kind == GW_UPD_CALLBACK;
	if (button) {
		/* The presser alone sees it, as a pop-up. */
		char *plain = popup ? NULL : gw_render_to_plain(html);
		if (popup != NULL || plain != NULL) {
			od_strlcpy(ctx->answer, popup ? popup : plain,
			    sizeof(ctx->answer));
			ctx->answer_alert = true;
			free(plain);
		}
		if (ctx->is_group) {
			return; /* never a message to the whole group */
		}
		ctx->edit = false; /* the pressed message stays as it is */
	}
	gw_ctx_reply(ctx, html, NULL);
}

int
gw_router_dispatch(gw_ctx *ctx, const char *text)
{
	char name[40], line[160];
	const char *args;
	const gw_command *c;
	const gw_settings *set = gw_get_settings(ctx->g);

	if (!gw_router_parse(
	        text, set->bot_username, name, sizeof(name), &args)) {
		return OD_ENOTFOUND;
	}
	c = gw_router_find(name);
	metric_inc(gw_counter(ctx->g, "opsdesk_gateway_commands_total",
	    "Commands handled, by name",
	    c ? (snprintf(line, sizeof(line), "command=\"%s\"", c->name), line)
	      : "command=\"unknown\""));
	if (c == NULL) {
		sbuf b = SBUF_INIT;
		sbuf_append(&b, "Unknown command /");
		gw_render_text(&b, name, 40);
		sbuf_append(&b, ". Send /help for the list.");
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
		gw_ctx_answer(ctx, "Unknown command", false);
		return 0;
	}
	if (c->admin && !ctx->is_admin) {
		snprintf(line, sizeof(line),
		    "⛔ /%s is for admins only. Send /help to see what you "
		    "can do.",
		    c->name);
		char popup[128];
		snprintf(popup, sizeof(popup),
		    "⛔ Admins only: /%s is for admins.", c->name);
		gw_ctx_refuse(ctx, line, popup);
		return 0;
	}
	int rv = c->fn(ctx, args);
	if (rv == GW_USAGE) {
		sbuf b = SBUF_INIT;
		sbuf_append(&b, "Usage: <code>");
		gw_render_text(&b, c->usage, 0);
		sbuf_append(&b, "</code>\n");
		gw_render_text(&b, c->about, 0);
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
		gw_ctx_answer(ctx, "Check the arguments", false);
		rv = 0;
	}
	return rv;
}
