/*
 * commands_incident — incidents, maintenance windows, ops checklists and
 * reports for admins. incident-service owns the lifecycle, SLAs and
 * checklists; this file parses the admin's words and renders answers.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"

static const char *const severities[]
    = { "critical", "high", "medium", "low", NULL };
static const char *const statuses[]
    = { "investigating", "identified", "monitoring", NULL };

static int
word_index(const char *const *list, const char *w)
{
	for (int i = 0; list[i] != NULL; i++) {
		if (strcasecmp(list[i], w) == 0) {
			return i + 1;
		}
	}
	return 0;
}

bool
gw_incident_runbook(gw *g, int severity, sbuf *b, size_t max)
{
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__RunbookRequest r = OPSDESK__V1__RUNBOOK_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	bool ok = false;
	actor.is_admin = true;
	actor.name = "telegram-gateway";
	r.severity = severity;
	if (gw_call_quiet(g, &actor, "", GW_INCIDENT, "runbook", &r.base, &rep)
	    == 0) {
		Opsdesk__V1__Runbook *rb = gw_result(rep, "runbook");
		if (rb != NULL && rb->text != NULL && rb->text[0] != '\0') {
			sbuf_printf(b, "📖 <b>Runbook (%s)</b>\n",
			    gw_render_severity_name(severity));
			gw_render_text(b, rb->text, max);
			ok = true;
		}
	}
	gw_reply_free(rep);
	return ok;
}

void
gw_incident_buttons(gw_keyboard *k, const Opsdesk__V1__Incident *in)
{
	char data[GW_CBDATA_MAX + 1], id[24];
	snprintf(id, sizeof(id), "%llu", (unsigned long long) in->id);
	gw_kbd_row(k);
	if (!in->acknowledged
	    && in->status
	        != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
		gw_cb_encode(data, sizeof(data), "ia", id, NULL);
		gw_kbd_button(k, "✋ Acknowledge", data);
	}
	if (in->status
	    != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
		gw_cb_encode(data, sizeof(data), "ir", id, NULL);
		gw_kbd_button(k, "✅ Resolve", data);
	}
	gw_cb_encode(data, sizeof(data), "is", id, NULL);
	gw_kbd_button(k, "🔎 Show", data);
	if (in->status
	    == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
		gw_cb_encode(data, sizeof(data), "ip", id, NULL);
		gw_kbd_button(k, "📝 Postmortem", data);
	}
}

void
gw_render_incident(sbuf *b, const Opsdesk__V1__Incident *in, bool timeline)
{
	int64_t now = od_now_ms();
	sbuf_printf(b, "%s <b>INC-%llu</b> · ",
	    gw_render_severity_symbol(in->severity),
	    (unsigned long long) in->id);
	gw_render_text(b, in->title, 200);
	sbuf_printf(b, "\nSeverity: <b>%s</b> · Status: <b>%s</b>%s\n",
	    gw_render_severity_name(in->severity),
	    gw_render_incident_status(in->status),
	    in->automatic ? " · automatic" : "");
	sbuf_append(b, "Opened: ");
	gw_render_time(b, in->created_ms, now);
	sbuf_append(b, "\n");
	if (in->acknowledged) {
		sbuf_append(b, "Acknowledged by ");
		gw_render_text(b, in->acknowledged_by_name, 64);
		sbuf_append(b, " ");
		gw_render_time(b, in->acknowledged_ms, now);
		sbuf_append(b, "\n");
	} else if (in->response_due_ms > 0
	    && in->status
	        != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
		sbuf_append(b, "⏰ Acknowledge by ");
		gw_render_time(b, in->response_due_ms, now);
		sbuf_append(
		    b, in->response_breached ? " ⚠️ breached\n" : "\n");
	}
	if (in->resolved_ms > 0) {
		sbuf_append(b, "Resolved: ");
		gw_render_time(b, in->resolved_ms, now);
		sbuf_append(b, "\n");
	} else if (in->resolution_due_ms > 0) {
		sbuf_append(b, "Resolve by ");
		gw_render_time(b, in->resolution_due_ms, now);
		sbuf_append(
		    b, in->resolution_breached ? " ⚠️ breached\n" : "\n");
	}
	for (size_t i = 0; i < in->n_components; i++) {
		sbuf_append(b, i == 0 ? "Components: " : ", ");
		gw_render_text(b,
		    in->components[i]->name[0]
		        ? in->components[i]->name
		        : in->components[i]->component_id,
		    60);
		sbuf_append(b, i + 1 == in->n_components ? "\n" : "");
	}
	for (size_t i = 0; timeline && i < in->n_timeline; i++) {
		const Opsdesk__V1__TimelineEntry *e = in->timeline[i];
		sbuf_append(b, i == 0 ? "\n<b>Timeline</b>\n" : "");
		gw_render_time(b, e->at_ms, now);
		sbuf_printf(
		    b, " · %s · ", gw_render_incident_status(e->status));
		gw_render_text(
		    b, e->author_id ? e->author_name : "system", 64);
		sbuf_append(b, e->public_ ? "" : " 🔒");
		sbuf_append(b, "\n");
		gw_render_text(b, e->text, 500);
		sbuf_append(b, "\n");
	}
}

/* Run an incident method answering an Incident, and show it. */
static void
incident_change(
    gw_ctx *ctx, const char *method, ProtobufCMessage *msg, const char *what)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__Incident *in
	    = gw_ask(ctx, GW_INCIDENT, method, msg, "incident", &rep);
	if (in != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		if (ctx->edit) {
			/* A button on an alert: the alert itself changes, as
			 * the bus edit of every copy will make it. */
			gw_alert_render(ctx->g, &b, &k, NULL, in);
		} else {
			sbuf_printf(&b, "✅ %s\n\n", what);
			gw_render_incident(&b, in, false);
			gw_incident_buttons(&k, in);
		}
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		gw_ctx_answer(ctx, what, false);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
}

static int
incident_list(gw_ctx *ctx, bool all)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__ListIncidentsRequest r
	    = OPSDESK__V1__LIST_INCIDENTS_REQUEST__INIT;
	Opsdesk__V1__PageRequest page = OPSDESK__V1__PAGE_REQUEST__INIT;
	page.limit = 15;
	r.page = &page;
	r.include_resolved = all;
	Opsdesk__V1__IncidentList *l
	    = gw_ask(ctx, GW_INCIDENT, "list", &r.base, "incidents", &rep);
	if (l != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		char age[48];
		sbuf_printf(
		    &b, "🚨 <b>%s</b>\n", all ? "Incidents" : "Open incidents");
		for (size_t i = 0; i < l->n_incidents; i++) {
			const Opsdesk__V1__Incident *in = l->incidents[i];
			char data[GW_CBDATA_MAX + 1], id[24], label[32];
			od_format_age(
			    in->created_ms, od_now_ms(), age, sizeof(age));
			sbuf_printf(&b, "%s <b>INC-%llu</b> ",
			    gw_render_severity_symbol(in->severity),
			    (unsigned long long) in->id);
			gw_render_text(&b, in->title, 80);
			sbuf_printf(&b, " — %s%s, %s\n",
			    gw_render_incident_status(in->status),
			    in->acknowledged ? "" : ", not acknowledged", age);
			snprintf(id, sizeof(id), "%llu",
			    (unsigned long long) in->id);
			snprintf(label, sizeof(label), "INC-%s", id);
			if (i % 4 == 0) {
				gw_kbd_row(&k);
			}
			if (gw_cb_encode(data, sizeof(data), "is", id, NULL)
			    == 0) {
				gw_kbd_button(&k, label, data);
			}
		}
		if (l->n_incidents == 0) {
			sbuf_append(&b, "None. 🎉\n");
		}
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

static int
incident_show(gw_ctx *ctx, uint64_t id)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__IncidentId r = OPSDESK__V1__INCIDENT_ID__INIT;
	r.id = id;
	Opsdesk__V1__Incident *in
	    = gw_ask(ctx, GW_INCIDENT, "get", &r.base, "incident", &rep);
	if (in != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		gw_render_incident(&b, in, true);
		sbuf_append(&b, "\n");
		gw_incident_runbook(ctx->g, in->severity, &b, 1500);
		gw_incident_buttons(&k, in);
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

static void
render_postmortem(sbuf *b, const Opsdesk__V1__Postmortem *p)
{
	char d[48];
	int64_t now = od_now_ms();
	sbuf_printf(b, "📝 <b>Postmortem INC-%llu</b> (%s)\n",
	    (unsigned long long) p->incident_id,
	    gw_render_severity_name(p->severity));
	gw_render_text(b, p->summary, 500);
	sbuf_append(b, "\nImpact: ");
	gw_render_time(b, p->impact_start_ms, now);
	sbuf_append(b, " → ");
	gw_render_time(b, p->impact_end_ms, now);
	od_format_duration(
	    p->impact_end_ms - p->impact_start_ms, d, sizeof(d));
	sbuf_printf(b, " (%s)", d);
	for (size_t i = 0; i < p->n_components; i++) {
		sbuf_append(b, i == 0 ? "\nAffected: " : ", ");
		gw_render_text(b,
		    p->components[i]->name[0] ? p->components[i]->name
		                              : p->components[i]->component_id,
		    60);
		sbuf_printf(b, " (%s)",
		    gw_render_component_name(p->components[i]->state));
	}
	if (p->time_to_ack_ms >= 0) {
		od_format_duration(p->time_to_ack_ms, d, sizeof(d));
		sbuf_printf(b, "\nTime to acknowledge: %s %s", d,
		    p->response_sla_ms == 0 ? ""
		        : p->response_met   ? "✅ within SLA"
		                            : "⚠️ SLA missed");
	} else {
		sbuf_append(b, "\nNever acknowledged");
	}
	od_format_duration(p->time_to_resolve_ms, d, sizeof(d));
	sbuf_printf(b, "\nTime to resolve: %s %s", d,
	    p->resolution_sla_ms == 0 ? ""
	        : p->resolution_met   ? "✅ within SLA"
	                              : "⚠️ SLA missed");
	if (p->tickets_opened >= 0) {
		sbuf_printf(
		    b, "\nTickets opened meanwhile: %d", p->tickets_opened);
	}
	if (!p->health_available) {
		sbuf_append(b,
		    "\nHealth events: the health prober did not "
		    "answer");
	}
	/* Until incident-service stored them, these were asked now and may
	 * read differently later. */
	if (!p->health_frozen || !p->tickets_frozen) {
		sbuf_append(b,
		    "\n⏳ Health events and tickets asked live: "
		    "not stored with the postmortem yet");
	}
	for (size_t i = 0; i < p->n_timeline; i++) {
		const Opsdesk__V1__TimelineEntry *e = p->timeline[i];
		sbuf_append(b, i == 0 ? "\n\n<b>Timeline</b>\n" : "");
		gw_render_time(b, e->at_ms, 0);
		sbuf_printf(
		    b, " · %s · ", gw_render_incident_status(e->status));
		gw_render_text(
		    b, e->author_id ? e->author_name : "system", 64);
		sbuf_append(b, e->public_ ? ": " : " 🔒: ");
		gw_render_text(b, e->text, 300);
		sbuf_append(b, "\n");
	}
	for (size_t i = 0; i < p->n_health_events; i++) {
		sbuf_append(b, i == 0 ? "\n<b>Health events</b>\n" : "");
		gw_render_text(b, p->health_events[i], 200);
		sbuf_append(b, "\n");
	}
	sbuf_append(b, "\n<b>Root cause</b>\n");
	gw_render_text(
	    b, p->root_cause[0] ? p->root_cause : "(not filled in)", 1000);
	sbuf_append(b, "\n\n<b>Action items</b>\n");
	for (size_t i = 0; i < p->n_actions; i++) {
		const Opsdesk__V1__ActionItem *a = p->actions[i];
		sbuf_printf(
		    b, "%zu. %s", i + 1, a->done ? "☑️ " : "◻️ ");
		gw_render_text(b, a->text, 300);
		if (a->owner[0] != '\0') {
			sbuf_append(b, " — owner: ");
			gw_render_text(b, a->owner, 64);
		}
		if (a->due_ms > 0) {
			char day[16];
			time_t t = (time_t) (a->due_ms / 1000);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(day, sizeof(day), "%Y-%m-%d", &tm);
			sbuf_printf(b, " — due %s", day);
		}
		sbuf_append(b, "\n");
	}
	if (p->n_actions == 0) {
		sbuf_append(b, "(none yet)\n");
	}
	sbuf_printf(b,
	    "\n<i>Edit: /incident postmortem %llu rootcause &lt;text&gt; | "
	    "action &lt;text&gt; [owner=&lt;name&gt;] "
	    "[due=YYYY-MM-DD] | done &lt;n&gt; | md</i>",
	    (unsigned long long) p->incident_id);
}

/* Take "owner=<name>" and "due=YYYY-MM-DD" words out of an action text.
 * 0, or GW_USAGE for a bad date. */
static int
action_fields(
    char *text, Opsdesk__V1__ActionItem *a, char *owner, size_t owner_size)
{
	sbuf rest = SBUF_INIT;
	const char *p = text;
	char w[128];
	int rv = 0;
	while (gw_word(&p, w, sizeof(w))) {
		if (strncasecmp(w, "owner=", 6) == 0 && w[6] != '\0') {
			od_strlcpy(owner, w + 6, owner_size);
			a->owner = owner;
		} else if (strncasecmp(w, "due=", 4) == 0) {
			int64_t ms;
			char iso[160];
			snprintf(iso, sizeof(iso), "%sT00:00:00Z", w + 4);
			if (strlen(w + 4) != 10
			    || od_parse_iso8601(iso, &ms) != 0) {
				rv = GW_USAGE;
				break;
			}
			a->due_ms = ms;
		} else {
			sbuf_append(&rest, rest.len ? " " : "");
			sbuf_append(&rest, w);
		}
	}
	od_strlcpy(text, sbuf_str(&rest), strlen(text) + 1);
	sbuf_free(&rest);
	return rv == 0 && text[0] == '\0' ? GW_USAGE : rv;
}

/* The Markdown as a file in the chat: INC-<n>-postmortem.md. */
static void
postmortem_document(gw_ctx *ctx, uint64_t id)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__IncidentId r = OPSDESK__V1__INCIDENT_ID__INIT;
	r.id = id;
	Opsdesk__V1__Postmortem *p = gw_ask(ctx, GW_INCIDENT,
	    "postmortem_markdown", &r.base, "postmortem", &rep);
	if (p != NULL && p->markdown != NULL) {
		char fn[64], cap[96];
		snprintf(fn, sizeof(fn), "INC-%llu-postmortem.md",
		    (unsigned long long) id);
		snprintf(cap, sizeof(cap), "📝 Postmortem INC-%llu (Markdown)",
		    (unsigned long long) id);
		cJSON *body = cJSON_CreateObject();
		cJSON *doc = cJSON_AddObjectToObject(body, "document");
		cJSON_AddNumberToObject(
		    body, "chat_id", (double) ctx->chat_id);
		cJSON_AddStringToObject(body, "caption", cap);
		cJSON_AddStringToObject(doc, "filename", fn);
		cJSON_AddStringToObject(doc, "content", p->markdown);
		gw_ctx_send_method(
		    ctx, "sendDocument", ctx->chat_id, body, NULL);
		gw_ctx_answer(ctx, "Sending the Markdown", false);
	}
	gw_reply_free(rep);
}

static int
incident_postmortem(gw_ctx *ctx, uint64_t id, const char *args)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__Postmortem *p;
	char w[16], owner[128];
	char *clean = NULL;

	if (gw_word(&args, w, sizeof(w))) {
		Opsdesk__V1__EditPostmortemRequest e
		    = OPSDESK__V1__EDIT_POSTMORTEM_REQUEST__INIT;
		Opsdesk__V1__ActionItem a = OPSDESK__V1__ACTION_ITEM__INIT;
		if (strcasecmp(w, "md") == 0
		    || strcasecmp(w, "markdown") == 0) {
			postmortem_document(ctx, id);
			return 0;
		}
		if (*args == '\0'
		    || (clean = od_utf8_sanitize(args, strlen(args)))
		        == NULL) {
			return GW_USAGE;
		}
		e.incident_id = id;
		if (strcasecmp(w, "rootcause") == 0) {
			e.root_cause = clean;
		} else if (strcasecmp(w, "action") == 0) {
			if (action_fields(clean, &a, owner, sizeof(owner))
			    != 0) {
				free(clean);
				return GW_USAGE;
			}
			a.text = clean;
			e.add_action = &a;
		} else if (strcasecmp(w, "done") == 0) {
			uint64_t n;
			if (gw_parse_id(clean, "", &n) != 0 || n == 0
			    || n > 1000) {
				free(clean);
				return GW_USAGE;
			}
			e.done_action = (uint32_t) n;
		} else {
			free(clean);
			return GW_USAGE;
		}
		p = gw_ask(ctx, GW_INCIDENT, "postmortem_edit", &e.base,
		    "postmortem", &rep);
	} else {
		Opsdesk__V1__IncidentId r = OPSDESK__V1__INCIDENT_ID__INIT;
		r.id = id;
		p = gw_ask(ctx, GW_INCIDENT, "postmortem", &r.base,
		    "postmortem", &rep);
	}
	if (p != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		char data[GW_CBDATA_MAX + 1], ids[24];
		snprintf(ids, sizeof(ids), "%llu", (unsigned long long) id);
		render_postmortem(&b, p);
		gw_cb_encode(data, sizeof(data), "ipm", ids, NULL);
		gw_kbd_button(&k, "📄 Markdown file", data);
		gw_cb_encode(data, sizeof(data), "is", ids, NULL);
		gw_kbd_button(&k, "🔎 Incident", data);
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	free(clean);
	return 0;
}

int
gw_cmd_incident(gw_ctx *ctx, const char *args)
{
	char verb[16], w[32];
	uint64_t id = 0;

	if (!gw_word(&args, verb, sizeof(verb))) {
		gw_keyboard k = { 0 };
		gw_kbd_button(&k, "📋 Open incidents", "1:il");
		gw_kbd_button(&k, "🗂 All", "1:ila");
		gw_kbd_row(&k);
		gw_kbd_button(&k, "🩺 Health", "1:hl");
		gw_kbd_button(&k, "⬅️ Menu", "1:h");
		gw_ctx_reply(ctx,
		    "🚨 <b>Incidents</b>\nOpen one with <code>/incident new "
		    "&lt;critical|high|medium|low&gt; &lt;title&gt;</code>; "
		    "see /help_operations for the rest.",
		    &k);
		return 0;
	}
	if (strcasecmp(verb, "new") == 0) {
		int sev;
		if (!gw_word(&args, w, sizeof(w))
		    || (sev = word_index(severities, w)) == 0
		    || *args == '\0') {
			return GW_USAGE;
		}
		char *title = od_utf8_sanitize(args, strlen(args));
		if (title == NULL) {
			return OD_ENOMEM;
		}
		Opsdesk__V1__CreateIncidentRequest r
		    = OPSDESK__V1__CREATE_INCIDENT_REQUEST__INIT;
		r.severity = sev;
		r.title = title;
		incident_change(ctx, "create", &r.base, "Incident opened");
		free(title);
		return 0;
	}
	if (strcasecmp(verb, "list") == 0) {
		bool all = gw_word(&args, w, sizeof(w));
		if (all && strcasecmp(w, "all") != 0) {
			return GW_USAGE;
		}
		return incident_list(ctx, all);
	}
	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "INC", &id) != 0) {
		return GW_USAGE;
	}
	if (strcasecmp(verb, "show") == 0) {
		return incident_show(ctx, id);
	}
	if (strcasecmp(verb, "ack") == 0) {
		Opsdesk__V1__IncidentId r = OPSDESK__V1__INCIDENT_ID__INIT;
		r.id = id;
		incident_change(ctx, "ack", &r.base, "Acknowledged");
		return 0;
	}
	if (strcasecmp(verb, "postmortem") == 0) {
		return incident_postmortem(ctx, id, args);
	}
	char *text = od_utf8_sanitize(args, strlen(args));
	int rv = 0;
	if (text == NULL) {
		return OD_ENOMEM;
	}
	if (strcasecmp(verb, "resolve") == 0) {
		Opsdesk__V1__ResolveIncidentRequest r
		    = OPSDESK__V1__RESOLVE_INCIDENT_REQUEST__INIT;
		r.id = id;
		r.text = text;
		incident_change(ctx, "resolve", &r.base, "Resolved");
	} else if (strcasecmp(verb, "update") == 0) {
		const char *p = text;
		int st;
		if (!gw_word(&p, w, sizeof(w))
		    || (st = word_index(statuses, w)) == 0 || *p == '\0') {
			rv = GW_USAGE;
		} else {
			Opsdesk__V1__UpdateIncidentRequest r
			    = OPSDESK__V1__UPDATE_INCIDENT_REQUEST__INIT;
			r.id = id;
			r.status = st;
			r.text = (char *) p;
			incident_change(ctx, "update", &r.base, "Updated");
		}
	} else {
		rv = GW_USAGE;
	}
	free(text);
	return rv;
}

/* /severity INC-<n> <critical|high|medium|low> [reason]: re-classify.
 * incident-service recomputes the SLA clocks, alerts when raised and
 * keeps the reason as an internal timeline entry. */
int
gw_cmd_severity(gw_ctx *ctx, const char *args)
{
	Opsdesk__V1__SetSeverityRequest r
	    = OPSDESK__V1__SET_SEVERITY_REQUEST__INIT;
	char w[32], what[64];
	char *reason;

	if (!gw_word(&args, w, sizeof(w)) || gw_parse_id(w, "INC", &r.id) != 0
	    || !gw_word(&args, w, sizeof(w))
	    || (r.severity = word_index(severities, w)) == 0) {
		return GW_USAGE;
	}
	if ((reason = od_utf8_sanitize(args, strlen(args))) == NULL) {
		return OD_ENOMEM;
	}
	r.reason = reason;
	snprintf(what, sizeof(what), "Severity set to %s",
	    severities[r.severity - 1]);
	incident_change(ctx, "set_severity", &r.base, what);
	free(reason);
	return 0;
}

/* ---- maintenance ---- */

/* The monitored components (health-prober's targets), or NULL when the
 * prober does not answer; *rep to free. */
static Opsdesk__V1__HealthCurrent *
known_components(gw_ctx *ctx, ProtobufCMessage **rep)
{
	Opsdesk__V1__HealthCurrentRequest hc
	    = OPSDESK__V1__HEALTH_CURRENT_REQUEST__INIT;
	return gw_peek(ctx, GW_PROBER, "current", &hc.base, "current", rep);
}

/* A usage example that works now: tomorrow 02:00 UTC, real components. */
static void
maintenance_example(gw_ctx *ctx, sbuf *b)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__HealthCurrent *h = known_components(ctx, &rep);
	char day[32];
	time_t t = (time_t) (od_now_ms() / 1000) + 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT02:00Z", &tm);
	sbuf_printf(b, "\nAdd one: <code>/maintenance add %s 90m ", day);
	if (h != NULL && h->n_targets > 0) {
		for (size_t i = 0; i < h->n_targets && i < 2; i++) {
			sbuf_append(b, i ? "," : "");
			gw_render_text(b, h->targets[i]->id, 40);
		}
	} else {
		sbuf_append(b, "api");
	}
	sbuf_append(b,
	    " Database upgrade</code>\n(start in UTC, duration "
	    "like 90m or 2h, components comma-separated)");
	if (h != NULL && h->n_targets > 0) {
		sbuf_append(b, "\nComponents: ");
		for (size_t i = 0; i < h->n_targets; i++) {
			sbuf_append(b, i ? ", " : "");
			gw_render_text(b, h->targets[i]->id, 40);
		}
	}
	gw_reply_free(rep);
}

static int
maintenance_list(gw_ctx *ctx)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__ListMaintenanceRequest r
	    = OPSDESK__V1__LIST_MAINTENANCE_REQUEST__INIT;
	Opsdesk__V1__MaintenanceList *l = gw_ask(ctx, GW_INCIDENT,
	    "maintenance_list", &r.base, "maintenance_list", &rep);
	if (l != NULL) {
		sbuf b = SBUF_INIT;
		int64_t now = od_now_ms();
		ProtobufCMessage *hrep = NULL;
		Opsdesk__V1__HealthCurrent *h
		    = l->n_windows > 0 ? known_components(ctx, &hrep) : NULL;
		sbuf_append(&b, "🔧 <b>Maintenance</b>\n");
		for (size_t i = 0; i < l->n_windows; i++) {
			const Opsdesk__V1__MaintenanceWindow *w
			    = l->windows[i];
			sbuf_printf(&b, "\n<b>MNT-%llu</b> ",
			    (unsigned long long) w->id);
			gw_render_text(&b, w->title, 120);
			sbuf_append(&b, "\n  ");
			gw_render_time(&b, w->start_ms, now);
			sbuf_append(&b, " → ");
			gw_render_time(&b, w->end_ms, now);
			for (size_t c = 0; c < w->n_components; c++) {
				const char *name = w->components[c];
				for (size_t t = 0;
				     h != NULL && t < h->n_targets; t++) {
					if (strcmp(h->targets[t]->id, name)
					        == 0
					    && h->targets[t]->name[0]) {
						name = h->targets[t]->name;
						break;
					}
				}
				sbuf_append(
				    &b, c == 0 ? "\n  components: " : ", ");
				gw_render_text(&b, name, 60);
			}
			sbuf_append(&b, "\n");
		}
		if (l->n_windows == 0) {
			sbuf_append(&b, "Nothing scheduled.\n");
		}
		gw_reply_free(hrep);
		maintenance_example(ctx, &b);
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

/* Tell the admin what is wrong with a /maintenance add, and how. */
static int
maintenance_refuse(gw_ctx *ctx, const char *html)
{
	sbuf b = SBUF_INIT;
	sbuf_append(&b, html);
	sbuf_append(&b, "\n");
	maintenance_example(ctx, &b);
	gw_ctx_refuse(ctx, sbuf_str(&b), NULL);
	sbuf_free(&b);
	return 0;
}

int
gw_cmd_maintenance(gw_ctx *ctx, const char *args)
{
	char verb[16], start[40], dur[16], comps[256], w[32];
	ProtobufCMessage *rep = NULL;

	if (!gw_word(&args, verb, sizeof(verb))
	    || strcasecmp(verb, "list") == 0) {
		return *args == '\0' ? maintenance_list(ctx) : GW_USAGE;
	}
	if (strcasecmp(verb, "cancel") == 0) {
		uint64_t id;
		if (!gw_word(&args, w, sizeof(w))
		    || gw_parse_id(w, "MNT", &id) != 0 || *args != '\0') {
			return GW_USAGE;
		}
		Opsdesk__V1__MaintenanceId r
		    = OPSDESK__V1__MAINTENANCE_ID__INIT;
		r.id = id;
		if (gw_ask(ctx, GW_INCIDENT, "maintenance_cancel", &r.base,
		        "maintenance", &rep)
		    != NULL) {
			sbuf b = SBUF_INIT;
			sbuf_printf(&b, "✅ MNT-%llu cancelled.",
			    (unsigned long long) id);
			gw_ctx_reply(ctx, sbuf_str(&b), NULL);
			sbuf_free(&b);
		}
		gw_reply_free(rep);
		return 0;
	}
	if (strcasecmp(verb, "add") != 0) {
		return GW_USAGE;
	}
	int64_t start_ms, dur_ms;
	if (!gw_word(&args, start, sizeof(start))
	    || !gw_word(&args, dur, sizeof(dur))
	    || !gw_word(&args, comps, sizeof(comps)) || *args == '\0') {
		return maintenance_refuse(ctx,
		    "🔧 A maintenance window needs a start, a duration, the "
		    "components and a title.");
	}
	if (od_parse_iso8601(start, &start_ms) != 0) {
		return maintenance_refuse(ctx,
		    "🕑 The start is a date and time in UTC, like "
		    "2030-01-31T02:00Z.");
	}
	if (od_parse_duration_ms(dur, &dur_ms) != 0 || dur_ms <= 0) {
		return maintenance_refuse(
		    ctx, "⏱ The duration is like 90m or 2h.");
	}
	if (start_ms + dur_ms <= od_now_ms()) {
		return maintenance_refuse(
		    ctx, "🕑 That window would already be over.");
	}
	char *list[32];
	size_t n = 0;
	char *save, *tok;
	ProtobufCMessage *hrep = NULL;
	Opsdesk__V1__HealthCurrent *known = known_components(ctx, &hrep);
	for (tok = strtok_r(comps, ",", &save); tok != NULL && n < 32;
	     tok = strtok_r(NULL, ",", &save)) {
		bool found = known == NULL || known->n_targets == 0;
		for (size_t i = 0; !found && i < known->n_targets; i++) {
			found = strcasecmp(known->targets[i]->id, tok) == 0;
			if (found) {
				tok = known->targets[i]->id; /* its spelling */
			}
		}
		if (!found) {
			/* An unknown id would show on the public page. */
			sbuf b = SBUF_INIT;
			sbuf_append(&b, "🔍 There is no component <b>");
			gw_render_text(&b, tok, 60);
			sbuf_append(&b, "</b>.");
			maintenance_refuse(ctx, sbuf_str(&b));
			sbuf_free(&b);
			gw_reply_free(hrep);
			return 0;
		}
		list[n++] = tok;
	}
	char *title = od_utf8_sanitize(args, strlen(args));
	if (title == NULL) {
		return OD_ENOMEM;
	}
	Opsdesk__V1__CreateMaintenanceRequest r
	    = OPSDESK__V1__CREATE_MAINTENANCE_REQUEST__INIT;
	r.title = title;
	r.components = list;
	r.n_components = n;
	r.start_ms = start_ms;
	r.end_ms = start_ms + dur_ms;
	Opsdesk__V1__MaintenanceWindow *mw = gw_ask(ctx, GW_INCIDENT,
	    "maintenance_create", &r.base, "maintenance", &rep);
	gw_reply_free(hrep); /* list[] pointed into it until now */
	if (mw != NULL) {
		sbuf b = SBUF_INIT;
		sbuf_printf(&b, "✅ <b>MNT-%llu</b> scheduled: ",
		    (unsigned long long) mw->id);
		gw_render_text(&b, mw->title, 120);
		sbuf_append(&b, "\n");
		gw_render_time(&b, mw->start_ms, od_now_ms());
		sbuf_append(&b, " → ");
		gw_render_time(&b, mw->end_ms, od_now_ms());
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	free(title);
	return 0;
}

/* ---- ops dashboard, checklists, reports ---- */

static void
render_checklists(sbuf *b, gw_keyboard *k, const Opsdesk__V1__Checklists *c)
{
	for (size_t i = 0; i < c->n_lists; i++) {
		const Opsdesk__V1__Checklist *l = c->lists[i];
		sbuf_printf(b, "\n<b>");
		gw_render_text(b, l->title[0] ? l->title : l->id, 60);
		sbuf_printf(b, "</b> (%s) — %u/%u\n", l->period_key, l->done,
		    l->total);
		for (size_t j = 0; j < l->n_items; j++) {
			const Opsdesk__V1__ChecklistItem *it = l->items[j];
			char data[GW_CBDATA_MAX + 1], label[64];
			sbuf_append(b, it->done ? "☑️ " : "◻️ ");
			gw_render_text(b, it->text, 120);
			if (it->done) {
				sbuf_append(b, " — ");
				gw_render_text(b, it->done_by_name, 40);
			}
			sbuf_append(b, "\n");
			/* Buttons only for ids that fit in callback data. */
			if (!it->done
			    && gw_cb_encode(
			           data, sizeof(data), "ck", l->id, it->id)
			        == 0) {
				snprintf(label, sizeof(label), "☑️ %.40s",
				    it->text);
				gw_kbd_row(k);
				gw_kbd_button(k, label, data);
			}
		}
	}
}

int
gw_cmd_ops(gw_ctx *ctx, const char *args)
{
	ProtobufCMessage *rep = NULL;
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	int64_t now = od_now_ms();

	sbuf_append(&b, "🧰 <b>Operations</b>\n");
	Opsdesk__V1__HealthCurrentRequest hc
	    = OPSDESK__V1__HEALTH_CURRENT_REQUEST__INIT;
	Opsdesk__V1__HealthCurrent *h
	    = gw_peek(ctx, GW_PROBER, "current", &hc.base, "current", &rep);
	if (h == NULL) {
		gw_unavailable(&b, GW_PROBER);
	} else {
		sbuf_printf(&b, "Overall: %s ",
		    gw_render_component_symbol(h->overall));
		gw_render_text(&b,
		    h->assessment[0] ? h->assessment
		                     : gw_render_component_name(h->overall),
		    120);
		sbuf_append(&b, "\n");
	}
	gw_reply_free(rep);

	Opsdesk__V1__ChecklistsRequest cr
	    = OPSDESK__V1__CHECKLISTS_REQUEST__INIT;
	Opsdesk__V1__Checklists *c = gw_peek(
	    ctx, GW_INCIDENT, "checklists", &cr.base, "checklists", &rep);
	if (c == NULL) {
		gw_unavailable(&b, GW_INCIDENT);
	} else {
		render_checklists(&b, &k, c);
	}
	gw_reply_free(rep);

	Opsdesk__V1__ListMaintenanceRequest mr
	    = OPSDESK__V1__LIST_MAINTENANCE_REQUEST__INIT;
	Opsdesk__V1__MaintenanceList *ml = gw_peek(ctx, GW_INCIDENT,
	    "maintenance_list", &mr.base, "maintenance_list", &rep);
	if (ml != NULL) {
		sbuf_append(&b, "\n<b>Upcoming maintenance</b>\n");
		for (size_t i = 0; i < ml->n_windows && i < 5; i++) {
			sbuf_printf(&b, "MNT-%llu ",
			    (unsigned long long) ml->windows[i]->id);
			gw_render_text(&b, ml->windows[i]->title, 80);
			sbuf_append(&b, " — ");
			gw_render_time(&b, ml->windows[i]->start_ms, now);
			sbuf_append(&b, "\n");
		}
		if (ml->n_windows == 0) {
			sbuf_append(&b, "none\n");
		}
	}
	gw_reply_free(rep);

	gw_render_slo_section(ctx, &b);

	Opsdesk__V1__ReportRequest rr = OPSDESK__V1__REPORT_REQUEST__INIT;
	rr.period = OPSDESK__V1__REPORT_PERIOD__REPORT_PERIOD_DAY;
	Opsdesk__V1__Report *r
	    = gw_peek(ctx, GW_INCIDENT, "report", &rr.base, "report", &rep);
	if (r != NULL) {
		sbuf_printf(&b,
		    "\n<b>Last 24 h</b>: %u incidents, %u tickets "
		    "created, %u resolved\n",
		    r->incidents_total, r->tickets_created,
		    r->tickets_resolved);
	}
	gw_reply_free(rep);
	gw_kbd_row(&k);
	gw_kbd_button(&k, "🔄 Refresh", "1:op");
	gw_kbd_button(&k, "📊 Report", "1:rp:day");
	gw_kbd_button(&k, "🔧 Maintenance", "1:mt");
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	return 0;
}

int
gw_cmd_tick(gw_ctx *ctx, const char *args)
{
	char list[40], item[40];
	ProtobufCMessage *rep = NULL;
	if (!gw_word(&args, list, sizeof(list))
	    || !gw_word(&args, item, sizeof(item)) || *args != '\0') {
		return GW_USAGE;
	}
	Opsdesk__V1__TickRequest r = OPSDESK__V1__TICK_REQUEST__INIT;
	r.list_id = list;
	r.item_id = item;
	r.done = true;
	Opsdesk__V1__Checklists *c
	    = gw_ask(ctx, GW_INCIDENT, "tick", &r.base, "checklists", &rep);
	if (c != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		sbuf_append(&b, "🧰 <b>Checklists</b>\n");
		render_checklists(&b, &k, c);
		gw_kbd_row(&k);
		gw_kbd_button(&k, "⬅️ Ops", "1:op");
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		gw_ctx_answer(ctx, "Ticked", false);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

int
gw_cmd_report(gw_ctx *ctx, const char *args)
{
	static const char *const periods[] = { "day", "week", "month", NULL };
	char w[16];
	int period = 1;
	ProtobufCMessage *rep = NULL;
	if (gw_word(&args, w, sizeof(w))
	    && ((period = word_index(periods, w)) == 0 || *args != '\0')) {
		return GW_USAGE;
	}
	Opsdesk__V1__ReportRequest r = OPSDESK__V1__REPORT_REQUEST__INIT;
	r.period = period;
	Opsdesk__V1__Report *rp
	    = gw_ask(ctx, GW_INCIDENT, "report", &r.base, "report", &rep);
	if (rp != NULL) {
		sbuf b = SBUF_INIT;
		char d[48];
		sbuf_printf(&b, "📊 <b>Report — %s</b>\n", periods[period - 1]);
		if (rp->text[0] != '\0') {
			sbuf_append(&b, "<pre>");
			gw_render_text(&b, rp->text, 3500);
			sbuf_append(&b, "</pre>");
		} else {
			sbuf_printf(
			    &b, "Incidents: %u\n", rp->incidents_total);
			if (rp->mtta_ms >= 0) {
				od_format_duration(rp->mtta_ms, d, sizeof(d));
				sbuf_printf(&b, "MTTA: %s\n", d);
			}
			if (rp->mttr_ms >= 0) {
				od_format_duration(rp->mttr_ms, d, sizeof(d));
				sbuf_printf(&b, "MTTR: %s\n", d);
			}
			if (rp->sla_percent >= 0) {
				sbuf_printf(&b, "SLA compliance: %.1f%%\n",
				    rp->sla_percent);
			}
			if (rp->tickets_available) {
				sbuf_printf(&b,
				    "Tickets: %u created, %u resolved, CSAT "
				    "%.1f (%u)\n",
				    rp->tickets_created, rp->tickets_resolved,
				    rp->csat_average, rp->csat_count);
			}
			for (size_t i = 0; i < rp->n_uptime; i++) {
				gw_render_text(&b, rp->uptime[i]->name, 60);
				sbuf_printf(
				    &b, ": %.2f%%\n", rp->uptime[i]->uptime);
			}
		}
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}
