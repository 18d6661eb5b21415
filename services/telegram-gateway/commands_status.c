/*
 * commands_status — the public status summary and subscriptions, and the
 * admins' health and monitoring dashboards. A dashboard asks several
 * services; one that is down shows as an unavailable section, the rest
 * still render.
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

void
gw_status_render(sbuf *b, gw_keyboard *k, const Opsdesk__V1__StatusSummary *s,
    bool ultra, int64_t now)
{
	sbuf_printf(b, "%s <b>", gw_render_public_symbol(s->indicator));
	gw_render_text(b, s->description[0] ? s->description : "Status", 120);
	sbuf_append(b, "</b>\n\n");
	for (size_t i = 0; i < s->n_components; i++) {
		const Opsdesk__V1__PublicComponent *c = s->components[i];
		sbuf_printf(b, "%s ", gw_render_public_symbol(c->status));
		gw_render_text(b, c->name, 60);
		if (c->uptime_30d >= 0) {
			sbuf_printf(b, " — %.2f%% (30 d)", c->uptime_30d);
		}
		if (c->has_latency) {
			sbuf_printf(b, " · %u ms", c->latency_ms);
		}
		sbuf_append(b, "\n");
	}
	for (size_t i = 0; i < s->n_incidents; i++) {
		const Opsdesk__V1__PublicIncident *in = s->incidents[i];
		sbuf_append(b, i == 0 ? "\n🚨 <b>Active incidents</b>\n" : "");
		sbuf_printf(b, "%s ", gw_render_public_symbol(in->impact));
		gw_render_text(b, in->name, 120);
		sbuf_printf(b, " — <i>%s</i>\n",
		    in->status[0] ? in->status : "investigating");
		if (in->latest_update[0] != '\0') {
			gw_render_text(b, in->latest_update, 300);
			sbuf_append(b, "\n");
		}
		sbuf_append(b, "Updated ");
		gw_render_time(b, in->updated_ms, now);
		sbuf_append(b, "\n");
	}
	for (size_t i = 0; i < s->n_maintenance; i++) {
		const Opsdesk__V1__MaintenanceWindow *w = s->maintenance[i];
		sbuf_append(b, i == 0 ? "\n🔧 <b>Maintenance</b>\n" : "");
		gw_render_text(b, w->title, 120);
		sbuf_append(b, "\n  from ");
		gw_render_time(b, w->start_ms, now);
		sbuf_append(b, "\n  to ");
		gw_render_time(b, w->end_ms, now);
		sbuf_append(b, "\n");
	}
	if (ultra) {
		gw_ultra_live_render(b, s, now);
	}
	if (s->page_url[0] != '\0') {
		sbuf_append(b, "\nFull page: ");
		gw_render_text(b, s->page_url, 200);
	}
	sbuf_append(b, "\nAs of ");
	gw_render_time(b, s->updated_ms ? s->updated_ms : now, now);
	gw_kbd_button(k, "🔄 Refresh", "1:st");
	gw_kbd_button(k, "🔔 Subscribe", "1:sb");
	gw_kbd_row(k);
	gw_kbd_button(k, "⬅️ Menu", "1:h");
}

int
gw_cmd_status(gw_ctx *ctx, const char *args)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__StatusSummaryRequest r
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;
	Opsdesk__V1__StatusSummary *s
	    = gw_ask(ctx, GW_STATUS, "summary", &r.base, "summary", &rep);
	if (s != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		int64_t now = od_now_ms();
		/* Ultra users get the live view, edited in place for a while
		 * (ultra.c); everyone else the summary alone. */
		bool ultra = gw_ultra_user(ctx);
		gw_status_render(&b, &k, s, ultra, now);
		if (!ultra) {
			gw_ctx_reply(ctx, sbuf_str(&b), &k);
		} else if (ctx->edit) {
			/* Refresh pressed: this message, kept live anew. */
			gw_ultra_live_keep(ctx, ctx->chat_id, ctx->user_id,
			    ctx->u->message_id, now);
			gw_ctx_reply(ctx, sbuf_str(&b), &k);
		} else {
			/* The outbox remembers the message id (tag l<user>).
			 */
			char tag[32];
			snprintf(tag, sizeof(tag), "%c%lld", GW_LIVE_TAG,
			    (long long) ctx->user_id);
			gw_ctx_send(ctx, ctx->chat_id, sbuf_str(&b), &k, tag);
		}
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

/* ---- subscriptions: chat -> "" (all) or ",id1,id2," ---- */

static bool
subs_read(gw *g, int64_t chat, char *out, size_t size)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	uint8_t k[8];
	bool found = false;
	store_key_u64(k, (uint64_t) chat);
	if (store_read_begin(gw_store(g), &txn) == 0) {
		if (store_get(txn, store_db(gw_store(g), GW_DB_SUBS), k, 8, &v)
		        == 0
		    && v.mv_size < size) {
			memcpy(out, v.mv_data, v.mv_size);
			out[v.mv_size] = '\0';
			found = true;
		}
		store_read_end(txn);
	}
	return found;
}

/* The public names of the components in set (",a,b,"), comma-separated
 * (ids when the status service does not answer). */
static void
subs_names(gw_ctx *ctx, const char *set, sbuf *b)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__StatusSummaryRequest r
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;
	Opsdesk__V1__StatusSummary *s
	    = gw_peek(ctx, GW_STATUS, "summary", &r.base, "summary", &rep);
	bool first = true;
	char *copy = strdup(set), *save = NULL;
	for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		const char *name = tok;
		for (size_t i = 0; s != NULL && i < s->n_components; i++) {
			if (strcmp(s->components[i]->id, tok) == 0) {
				name = s->components[i]->name;
			}
		}
		sbuf_append(b, first ? "" : ", ");
		gw_render_text(b, name, 60);
		first = false;
	}
	free(copy);
	gw_reply_free(rep);
}

/* Match words against the public components; fills ids as ",a,b,". */
static int
subs_resolve(
    gw_ctx *ctx, const char *args, sbuf *ids, sbuf *names, sbuf *universe)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__StatusSummaryRequest r
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;
	Opsdesk__V1__StatusSummary *s
	    = gw_ask(ctx, GW_STATUS, "summary", &r.base, "summary", &rep);
	char w[64];
	int rv = 0;
	if (s == NULL) {
		return OD_EUNAVAIL;
	}
	sbuf_append(ids, ",");
	if (universe != NULL) {
		sbuf_append(universe, ",");
		for (size_t i = 0; i < s->n_components; i++) {
			sbuf_append(universe, s->components[i]->id);
			sbuf_append(universe, ",");
		}
	}
	while (gw_word(&args, w, sizeof(w))) {
		const Opsdesk__V1__PublicComponent *hit = NULL;
		for (size_t i = 0; i < s->n_components && !hit; i++) {
			if (strcasecmp(s->components[i]->id, w) == 0
			    || strcasecmp(s->components[i]->name, w) == 0) {
				hit = s->components[i];
			}
		}
		if (hit == NULL) {
			sbuf b = SBUF_INIT;
			sbuf_append(&b, "🔍 No public component called <b>");
			gw_render_text(&b, w, 60);
			sbuf_append(&b, "</b>. Known: ");
			for (size_t i = 0; i < s->n_components; i++) {
				gw_render_text(&b, s->components[i]->id, 60);
				sbuf_append(
				    &b, i + 1 < s->n_components ? ", " : "");
			}
			gw_ctx_reply(ctx, sbuf_str(&b), NULL);
			sbuf_free(&b);
			rv = OD_EINVAL;
			break;
		}
		sbuf_append(ids, hit->id);
		sbuf_append(ids, ",");
		if (names->len > 0) {
			sbuf_append(names, ", ");
		}
		gw_render_text(names, hit->name, 60);
	}
	gw_reply_free(rep);
	return rv;
}

int
gw_cmd_subscribe(gw_ctx *ctx, const char *args)
{
	uint8_t k[8];
	sbuf ids = SBUF_INIT, names = SBUF_INIT, b = SBUF_INIT;
	char cur[1024];
	store_key_u64(k, (uint64_t) ctx->chat_id);
	if (*args == '\0') {
		gw_ctx_put(ctx, GW_DB_SUBS, k, 8, "", 0);
		gw_ctx_reply(ctx,
		    "🔔 Subscribed: you will get a message whenever the status "
		    "changes. /unsubscribe stops it.",
		    NULL);
		gw_ctx_answer(ctx, "Subscribed", false);
		return 0;
	}
	if (subs_resolve(ctx, args, &ids, &names, NULL) == 0) {
		bool had = subs_read(ctx->g, ctx->chat_id, cur, sizeof(cur));
		if (had && cur[0] == '\0') {
			sbuf_append(
			    &b, "🔔 You already get every status change.");
		} else {
			/* Merge with what the chat had. */
			sbuf all = SBUF_INIT;
			sbuf_append(&all, had ? cur : ",");
			char *save, *tok, *copy = strdup(sbuf_str(&ids));
			for (tok = copy ? strtok_r(copy, ",", &save) : NULL;
			     tok != NULL; tok = strtok_r(NULL, ",", &save)) {
				char needle[80];
				snprintf(needle, sizeof(needle), ",%s,", tok);
				if (strstr(sbuf_str(&all), needle) == NULL) {
					sbuf_append(&all, tok);
					sbuf_append(&all, ",");
				}
			}
			free(copy);
			gw_ctx_put(
			    ctx, GW_DB_SUBS, k, 8, sbuf_str(&all), all.len);
			sbuf_free(&all);
			sbuf_printf(
			    &b, "🔔 Subscribed to %s.", sbuf_str(&names));
		}
		gw_ctx_reply(ctx, sbuf_str(&b), NULL);
	}
	sbuf_free(&ids);
	sbuf_free(&names);
	sbuf_free(&b);
	return 0;
}

/* Whether the set ",a,b," holds id. */
static bool
subs_has(const char *set, const char *id, size_t idlen)
{
	for (const char *p = set; p != NULL && (p = strchr(p, ',')) != NULL;
	     p++) {
		if (strncmp(p + 1, id, idlen) == 0 && p[1 + idlen] == ',') {
			return true;
		}
	}
	return false;
}

bool
gw_subs_remove(
    const char *cur, const char *remove, const char *universe, sbuf *out)
{
	const char *from = (cur != NULL && cur[0] == '\0') ? universe : cur;
	bool any = false;
	sbuf_append(out, ",");
	for (const char *p = from; p != NULL && *p != '\0';) {
		const char *e;
		while (*p == ',') {
			p++;
		}
		if (*p == '\0') {
			break;
		}
		e = strchr(p, ',');
		size_t n = e ? (size_t) (e - p) : strlen(p);
		if (!subs_has(remove, p, n)) {
			sbuf_append_len(out, p, n);
			sbuf_append(out, ",");
			any = true;
		}
		p += n;
	}
	return any;
}

int
gw_cmd_start(gw_ctx *ctx, const char *args)
{
	if (strcmp(args, "subscribe") == 0) {
		return gw_cmd_subscribe(ctx, "");
	}
	return gw_cmd_help(ctx, args);
}

int
gw_cmd_unsubscribe(gw_ctx *ctx, const char *args)
{
	uint8_t k[8];
	char cur[1024];
	sbuf ids = SBUF_INIT, names = SBUF_INIT, universe = SBUF_INIT;
	sbuf all = SBUF_INIT, b = SBUF_INIT;
	store_key_u64(k, (uint64_t) ctx->chat_id);
	bool had = subs_read(ctx->g, ctx->chat_id, cur, sizeof(cur));
	if (*args == '\0' || !had) {
		gw_ctx_put(ctx, GW_DB_SUBS, k, 8, NULL, 0);
		gw_ctx_reply(ctx,
		    had ? "🔕 Unsubscribed from status notifications."
		        : "🔕 You were not subscribed.",
		    NULL);
		return 0;
	}
	/* Names or ids, as /subscribe takes them; an all-subscription
	 * becomes every public component but the ones named. */
	if (subs_resolve(ctx, args, &ids, &names, &universe) != 0) {
		goto out;
	}
	if (gw_subs_remove(cur, sbuf_str(&ids), sbuf_str(&universe), &all)) {
		gw_ctx_put(ctx, GW_DB_SUBS, k, 8, sbuf_str(&all), all.len);
		sbuf_printf(&b,
		    "🔕 Unsubscribed from %s. You still get status changes "
		    "of: ",
		    sbuf_str(&names));
		subs_names(ctx, sbuf_str(&all), &b);
		sbuf_append(&b, ".");
	} else {
		gw_ctx_put(ctx, GW_DB_SUBS, k, 8, NULL, 0);
		sbuf_printf(&b,
		    "🔕 Unsubscribed from %s. You get no status "
		    "notifications now; /subscribe to start again.",
		    sbuf_str(&names));
	}
	gw_ctx_reply(ctx, sbuf_str(&b), NULL);
out:
	sbuf_free(&ids);
	sbuf_free(&names);
	sbuf_free(&universe);
	sbuf_free(&all);
	sbuf_free(&b);
	return 0;
}

/* ---- admin dashboards ---- */

void
gw_render_locations(sbuf *b, const Opsdesk__V1__TargetStatus *t)
{
	for (size_t k = 0; k < t->n_locations; k++) {
		const Opsdesk__V1__LocationStatus *l = t->locations[k];
		sbuf_append(b, k == 0 ? "\n    📍 " : " · ");
		gw_render_text(b, l->location, 40);
		if (!l->reporting) {
			sbuf_append(b, " not reporting");
			continue;
		}
		sbuf_printf(b, " %s", gw_render_component_symbol(l->state));
		if (l->latency_ms > 0) {
			sbuf_printf(b, " %u ms", l->latency_ms);
		}
	}
}

static void
render_targets(sbuf *b, const Opsdesk__V1__HealthCurrent *h, bool detail)
{
	int64_t now = od_now_ms();
	for (size_t i = 0; i < h->n_targets; i++) {
		const Opsdesk__V1__TargetStatus *t = h->targets[i];
		sbuf_printf(b, "%s <b>", gw_render_component_symbol(t->state));
		gw_render_text(b, t->name[0] ? t->name : t->id, 60);
		sbuf_printf(
		    b, "</b> — %s", gw_render_component_name(t->state));
		if (t->latency_ms > 0) {
			sbuf_printf(b, ", %u ms", t->latency_ms);
		}
		if (detail) {
			char age[48];
			od_format_age(t->last_check_ms, now, age, sizeof(age));
			sbuf_printf(b, ", checked %s",
			    t->last_check_ms ? age : "never");
			if (t->uptime_24h > 0) {
				sbuf_printf(b, ", %.2f%% 24 h", t->uptime_24h);
			}
			/* A decided state says which locations disagree,
			 * even while up ("down from eu-west only"). */
			if (t->reason[0] != '\0'
			    && (t->state
			            != OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP
			        || t->n_down_locations > 0)) {
				sbuf_append(b, "\n    ");
				gw_render_text(b, t->reason, 120);
			}
			gw_render_locations(b, t);
		}
		sbuf_append(b, "\n");
	}
}

int
gw_cmd_health(gw_ctx *ctx, const char *args)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__HealthCurrentRequest r
	    = OPSDESK__V1__HEALTH_CURRENT_REQUEST__INIT;
	Opsdesk__V1__HealthCurrent *h
	    = gw_ask(ctx, GW_PROBER, "current", &r.base, "current", &rep);
	if (h != NULL) {
		sbuf b = SBUF_INIT;
		gw_keyboard k = { 0 };
		sbuf_printf(&b, "🩺 <b>Health</b> — %s ",
		    gw_render_component_symbol(h->overall));
		gw_render_text(&b,
		    h->assessment[0] ? h->assessment
		                     : gw_render_component_name(h->overall),
		    120);
		sbuf_append(&b, "\n\n");
		render_targets(&b, h, true);
		if (h->n_targets == 0) {
			sbuf_append(&b, "No probe targets configured.\n");
		}
		sbuf_append(&b, "\nAs of ");
		gw_render_time(
		    &b, h->at_ms ? h->at_ms : od_now_ms(), od_now_ms());
		gw_kbd_button(&k, "🔄 Refresh", "1:hl");
		gw_kbd_button(&k, "📈 Monitor", "1:mo");
		gw_ctx_reply(ctx, sbuf_str(&b), &k);
		sbuf_free(&b);
	}
	gw_reply_free(rep);
	return 0;
}

static double
counter_sum(gw *g, const char *name, const char *const *labels)
{
	double v = 0;
	for (size_t i = 0; labels[i] != NULL; i++) {
		v += metric_value(
		    metrics_counter(gw_metrics(g), name, "", labels[i]));
	}
	return v;
}

int
gw_cmd_monitor(gw_ctx *ctx, const char *args)
{
	static const char *const types[]
	    = { "type=\"message\"", "type=\"callback_query\"",
		      "type=\"edited_message\"", "type=\"other\"", NULL };
	ProtobufCMessage *rep = NULL;
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	int64_t now = od_now_ms();

	sbuf_append(&b, "📈 <b>Monitor</b>\n\n<b>Gateway</b>\n");
	sbuf_printf(&b, "Updates handled: %.0f · outbound queue: %llu\n",
	    counter_sum(ctx->g, "opsdesk_gateway_updates_total", types),
	    (unsigned long long) gw_outbox_depth(ctx->g));

	Opsdesk__V1__MetricsRequest mr = OPSDESK__V1__METRICS_REQUEST__INIT;
	Opsdesk__V1__BusinessMetrics *bm
	    = gw_peek(ctx, GW_PROBER, "metrics", &mr.base, "metrics", &rep);
	sbuf_append(&b, "\n<b>Business metrics</b>\n");
	if (bm == NULL) {
		gw_unavailable(&b, GW_PROBER);
	}
	for (size_t i = 0; bm != NULL && i < bm->n_metrics; i++) {
		const char *unit = bm->metrics[i]->unit;
		gw_render_text(&b, bm->metrics[i]->name, 60);
		if (strcmp(unit, "ratio") == 0 || strcmp(unit, "%") == 0
		    || strcmp(unit, "percent") == 0) {
			/* a ratio reads as a percentage */
			sbuf_printf(&b, ": <b>%.1f%%</b>",
			    strcmp(unit, "ratio") == 0
			        ? 100.0 * bm->metrics[i]->value
			        : bm->metrics[i]->value);
		} else {
			sbuf_printf(&b, ": <b>%g</b>", bm->metrics[i]->value);
			if (unit[0] != '\0') {
				sbuf_append(&b, " "); /* "12 req/s" */
				gw_render_text(&b, unit, 20);
			}
		}
		sbuf_append(&b, "\n");
	}
	if (bm != NULL && bm->n_metrics == 0) {
		sbuf_append(&b, "none configured\n");
	}
	gw_reply_free(rep);

	Opsdesk__V1__ResourcesRequest rr
	    = OPSDESK__V1__RESOURCES_REQUEST__INIT;
	Opsdesk__V1__HostResources *hr = gw_peek(
	    ctx, GW_PROBER, "resources", &rr.base, "resources", &rep);
	sbuf_append(&b, "\n<b>Host</b>\n");
	if (hr == NULL) {
		gw_unavailable(&b, GW_PROBER);
	} else {
		double mem = hr->mem_total_bytes ? 100.0
		        * (double) (hr->mem_total_bytes
		            - hr->mem_available_bytes)
		        / (double) hr->mem_total_bytes
		                                 : 0;
		double disk = hr->disk_total_bytes ? 100.0
		        * (double) (hr->disk_total_bytes - hr->disk_free_bytes)
		        / (double) hr->disk_total_bytes
		                                   : 0;
		sbuf_printf(&b,
		    "CPU %.0f%% · memory %.0f%% · disk %.0f%% · load %.2f\n",
		    hr->cpu_percent, mem, disk, hr->load1);
	}
	gw_reply_free(rep);

	Opsdesk__V1__HealthCurrentRequest hc
	    = OPSDESK__V1__HEALTH_CURRENT_REQUEST__INIT;
	Opsdesk__V1__HealthCurrent *h
	    = gw_peek(ctx, GW_PROBER, "current", &hc.base, "current", &rep);
	sbuf_append(&b, "\n<b>Components</b>\n");
	if (h == NULL) {
		gw_unavailable(&b, GW_PROBER);
	} else {
		render_targets(&b, h, false);
	}
	gw_reply_free(rep);

	gw_render_slo_section(ctx, &b);

	Opsdesk__V1__ListIncidentsRequest lr
	    = OPSDESK__V1__LIST_INCIDENTS_REQUEST__INIT;
	Opsdesk__V1__IncidentList *il
	    = gw_peek(ctx, GW_INCIDENT, "list", &lr.base, "incidents", &rep);
	sbuf_append(&b, "\n<b>Open incidents</b>\n");
	if (il == NULL) {
		gw_unavailable(&b, GW_INCIDENT);
	}
	for (size_t i = 0; il != NULL && i < il->n_incidents && i < 5; i++) {
		const Opsdesk__V1__Incident *in = il->incidents[i];
		sbuf_printf(&b, "%s INC-%llu ",
		    gw_render_severity_symbol(in->severity),
		    (unsigned long long) in->id);
		gw_render_text(&b, in->title, 80);
		sbuf_printf(&b, " — %s%s\n",
		    gw_render_incident_status(in->status),
		    in->acknowledged ? ", acked" : ", not acknowledged");
	}
	if (il != NULL && il->n_incidents == 0) {
		sbuf_append(&b, "none 🎉\n");
	}
	gw_reply_free(rep);

	/* The latest alerts, newest first. */
	Opsdesk__V1__AlertsRequest ar = OPSDESK__V1__ALERTS_REQUEST__INIT;
	ar.limit = 5;
	Opsdesk__V1__AlertList *al
	    = gw_peek(ctx, GW_INCIDENT, "alerts", &ar.base, "alerts", &rep);
	sbuf_append(&b, "\n<b>Recent alerts</b>\n");
	if (al == NULL) {
		gw_unavailable(&b, GW_INCIDENT);
	}
	for (size_t i = al != NULL ? al->n_alerts : 0; i > 0; i--) {
		const Opsdesk__V1__AlertEvent *a = al->alerts[i - 1];
		char age[48];
		od_format_age(a->at_ms, now, age, sizeof(age));
		sbuf_printf(&b, "%s ", gw_render_severity_symbol(a->severity));
		gw_render_text(&b, a->text[0] ? a->text : a->kind, 100);
		sbuf_printf(&b, " — %s\n", age);
	}
	if (al != NULL && al->n_alerts == 0) {
		sbuf_append(&b, "none\n");
	}
	gw_reply_free(rep);
	sbuf_append(&b, "\nAs of ");
	gw_render_time(&b, now, now);
	gw_kbd_button(&k, "🔄 Refresh", "1:mo");
	gw_kbd_button(&k, "🩺 Health", "1:hl");
	gw_ctx_reply(ctx, sbuf_str(&b), &k);
	sbuf_free(&b);
	return 0;
}
