/*
 * render_slo — service level objectives in chat: the section of /monitor
 * and /ops (attainment, budget left, burn rates) and the burn alerts of
 * slo.burn / slo.resolved (health-prober evaluates, the gateway tells the
 * admins).
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "health.pb-c.h"

/* "30d", "6h", "5m", "90s". */
static void
duration(sbuf *b, int64_t ms)
{
	if (ms > 0 && ms % 86400000 == 0) {
		sbuf_printf(b, "%lldd", (long long) (ms / 86400000));
	} else if (ms > 0 && ms % 3600000 == 0) {
		sbuf_printf(b, "%lldh", (long long) (ms / 3600000));
	} else if (ms > 0 && ms % 60000 == 0) {
		sbuf_printf(b, "%lldm", (long long) (ms / 60000));
	} else {
		sbuf_printf(b, "%llds", (long long) (ms / 1000));
	}
}

/* A percentage with the digits an objective needs: 99.95, 100, 98.2. */
static void
percent(sbuf *b, double v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%.3f", v);
	/* Trailing zeros say nothing: 99.950 -> 99.95, 100.000 -> 100. */
	char *dot = strchr(buf, '.');
	if (dot != NULL) {
		char *e = buf + strlen(buf) - 1;
		while (e > dot && *e == '0') {
			*e-- = '\0';
		}
		if (e == dot) {
			*e = '\0';
		}
	}
	sbuf_printf(b, "%s %%", buf);
}

static const char *
objective_symbol(const Opsdesk__V1__SloStatus *s)
{
	if (strcmp(s->alert, "page") == 0 || s->budget_remaining < 0) {
		return "🔴";
	}
	if (strcmp(s->alert, "warn") == 0 || s->budget_remaining < 0.25) {
		return "🟠";
	}
	return s->attainment < 0 ? "⚪" : "🟢";
}

/* "Name · p95 latency <= 100 ms (30d)". */
static void
objective_name(sbuf *b, const Opsdesk__V1__SloStatus *s)
{
	gw_render_text(b, s->name[0] ? s->name : s->target_id, 60);
	sbuf_append(b, " · ");
	gw_render_text(b, s->description, 80);
	sbuf_append(b, " (");
	duration(b, s->window_ms);
	sbuf_append(b, ")");
}

void
gw_render_slo_line(sbuf *b, const Opsdesk__V1__SloStatus *s)
{
	double left_min = s->budget_remaining * s->budget_minutes;
	sbuf_printf(b, "%s ", objective_symbol(s));
	objective_name(b, s);
	sbuf_append(b, ": ");
	if (s->attainment < 0) {
		sbuf_append(b, "no data yet");
	} else {
		sbuf_append(b, "<b>");
		percent(b, s->attainment);
		sbuf_append(b, "</b>");
	}
	sbuf_printf(b, " · budget left %.0f %% (%.1f of %.1f min)",
	    100.0 * s->budget_remaining, left_min, s->budget_minutes);
	/* The long windows: the short ones confirm them. */
	sbuf_append(b, " · burn ");
	for (size_t w = 0; w < s->n_burn; w += 2) {
		sbuf_append(b, w ? ", " : "");
		duration(b, s->burn[w]->window_ms);
		sbuf_printf(b, " %.1f×", s->burn[w]->rate);
	}
	if (s->alert[0] != '\0') {
		sbuf_printf(b, " · <b>%s</b>",
		    strcmp(s->alert, "page") == 0 ? "fast burn" : "slow burn");
	}
	sbuf_append(b, "\n");
}

void
gw_render_slo_section(gw_ctx *ctx, sbuf *b)
{
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__SloRequest q = OPSDESK__V1__SLO_REQUEST__INIT;
	Opsdesk__V1__SloList *l
	    = gw_peek(ctx, GW_PROBER, "slo", &q.base, "slo", &rep);

	sbuf_append(b, "\n<b>Objectives</b>\n");
	if (l == NULL) {
		gw_unavailable(b, GW_PROBER);
	}
	for (size_t i = 0; l != NULL && i < l->n_objectives; i++) {
		if (i == 20) {
			sbuf_printf(b,
			    "… and %zu more (opsctl call prober "
			    "slo)\n",
			    l->n_objectives - i);
			break;
		}
		gw_render_slo_line(b, l->objectives[i]);
	}
	if (l != NULL && l->n_objectives == 0) {
		sbuf_append(b, "none configured\n");
	}
	gw_reply_free(rep);
}

void
gw_render_slo_alert(
    sbuf *b, gw_keyboard *k, const char *topic, const Opsdesk__V1__SloEvent *e)
{
	const Opsdesk__V1__SloStatus *s = e->objective;
	bool resolved = strcmp(topic, "slo.resolved") == 0;
	bool page = strcmp(e->severity, "page") == 0;
	char data[GW_CBDATA_MAX + 1];

	if (resolved) {
		sbuf_append(b, "✅ <b>Error budget burn stopped</b>\n");
	} else if (page) {
		sbuf_append(b, "🔥 <b>Error budget burning fast</b>\n");
	} else {
		sbuf_append(
		    b, "⚠️ <b>Error budget burning</b> (slow burn)\n");
	}
	objective_name(b, s);
	sbuf_append(b, "\n");
	if (s->n_burn >= 4 && !resolved) {
		/* What met the threshold: the long window, confirmed by the
		 * short one. */
		const Opsdesk__V1__SloBurnRate *l = s->burn[page ? 0 : 2];
		const Opsdesk__V1__SloBurnRate *sh = s->burn[page ? 1 : 3];
		sbuf_printf(b, "Burn rate %.1f× over ", l->rate);
		duration(b, l->window_ms);
		sbuf_printf(b, ", %.1f× over ", sh->rate);
		duration(b, sh->window_ms);
		sbuf_printf(b, " (%s at %s×)\n", page ? "page" : "warning",
		    page ? "14.4" : "6");
	}
	sbuf_append(b, "Attained: ");
	if (s->attainment < 0) {
		sbuf_append(b, "no data");
	} else {
		percent(b, s->attainment);
	}
	sbuf_append(b, " (target ");
	percent(b, s->target);
	sbuf_printf(
	    b, ") · budget left %.0f %%\n", 100.0 * s->budget_remaining);
	if (!resolved
	    && gw_cb_encode(data, sizeof(data), page ? "isp" : "isw",
	           s->target_id, NULL)
	        == 0) {
		gw_kbd_button(k, "🚨 Open incident", data);
	}
	gw_kbd_button(k, "📈 Monitor", "1:mo");
}
