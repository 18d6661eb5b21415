/*
 * render_html — the public page: one self-contained document (inline CSS,
 * no scripts, no external assets) that reads well on a phone. Every text
 * that came from a user or an admin goes through sbuf_append_html.
 */
#include <stdio.h>
#include <string.h>

#include "status.h"

static const char *const comp_labels[] = {
	[STATUS_OPERATIONAL] = "Operational",
	[STATUS_DEGRADED] = "Degraded Performance",
	[STATUS_PARTIAL] = "Partial Outage",
	[STATUS_MAJOR] = "Major Outage",
	[STATUS_MAINTENANCE] = "Under Maintenance",
};

/* Colours meet WCAG AA (4.5:1 for text) in both schemes. */
static const char css[]
    = "*{box-sizing:border-box}"
      ":root{color-scheme:light dark}"
      "body{margin:0;font:15px/1.5 -apple-system,Segoe UI,Roboto,Helvetica,"
      "Arial,sans-serif;color:#222;background:#f6f7f9;"
      "overflow-wrap:anywhere}"
      "main{max-width:860px;margin:0 auto;padding:16px}"
      "h1{font-size:1.6em;margin:.4em 0 .8em}"
      "h2{font-size:1.15em;margin:1.6em 0 .6em}"
      "h3{font-size:1em;margin:0 0 .3em}"
      ".banner{padding:14px 18px;border-radius:6px;color:#fff;font-weight:600;"
      "font-size:1.1em}.banner .sub{font-weight:400;font-size:.85em}"
      ".ind-none{background:#1e7e44}.ind-minor{background:#f1c40f;color:#222}"
      ".ind-major{background:#a34e00}.ind-critical{background:#c0392b}"
      ".ind-maint{background:#2471a3}"
      ".card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;"
      "padding:12px 16px;margin:10px 0}"
      ".row{display:flex;justify-content:space-between;gap:8px;"
      "flex-wrap:wrap}"
      ".group>.row{font-weight:600}"
      ".comp{padding:10px 0;border-top:1px solid #eef0f2}"
      ".comp:first-child{border-top:0}"
      ".group .comp{padding-left:12px}"
      ".st{font-size:.9em;white-space:nowrap}"
      ".st-operational{color:#137333}.st-degraded_performance{color:#8a6d00}"
      ".st-partial_outage{color:#b34700}.st-major_outage{color:#c0392b}"
      ".st-under_maintenance{color:#2471a3}.st-nodata{color:#5f6368}"
      ".bars{display:flex;gap:1px;height:28px;margin:6px 0 2px;"
      "position:relative}"
      ".b{flex:1;border-radius:1px;background:#d5d8dc;min-width:0}"
      ".b-ok{background:#2fcc66}.b-minor{background:#f1c40f}"
      ".b-major{background:#e67e22}.b-bad{background:#e74c3c}"
      ".b-maint{background:#3498db}"
      ".b:focus{outline:2px solid #222;outline-offset:1px}"
      ".b:hover::after,.b:focus::after{content:attr(aria-label);"
      "position:absolute;left:0;right:0;top:100%;z-index:1;margin-top:2px;"
      "padding:2px 6px;font-size:.8em;text-align:center;color:#fff;"
      "background:#222;border-radius:3px}"
      ".legend{display:flex;justify-content:space-between;font-size:.8em;"
      "color:#5f6368}"
      ".tl{list-style:none;margin:.4em 0 0;padding:0}"
      ".tl li{margin:.5em 0}.tl time,.muted{color:#5f6368;font-size:.85em}"
      ".impact-critical{border-left:4px solid #e74c3c}"
      ".impact-major{border-left:4px solid #e67e22}"
      ".impact-minor{border-left:4px solid #f1c40f}"
      ".impact-none,.impact-maintenance{border-left:4px solid #3498db}"
      ".day{border-bottom:1px solid #e3e6ea;padding:6px 0}"
      "footer{margin:2em 0 1em;font-size:.85em;color:#5f6368}"
      "a{color:#2471a3}"
      ".subscribe{margin:.6em 0 0;font-size:.9em}"
      ".rtw{margin:8px 0 0}.rth{font-size:.85em}"
      ".rt{display:block;width:100%;height:44px;margin:2px 0}"
      ".rt path{fill:none;stroke-width:2;vector-effect:non-scaling-stroke;"
      "stroke-linecap:round;stroke-linejoin:round}"
      ".rt .p50{stroke:#2471a3}.rt .p95{stroke:#7ba7cc}"
      ".rt .ax{stroke:#d5d8dc;stroke-width:1}"
      ".rtw summary{cursor:pointer;font-size:.85em;color:#2471a3}"
      ".key50,.key95{display:inline-block;width:10px;height:3px;"
      "vertical-align:middle;margin:0 3px 0 6px}"
      ".key50{background:#2471a3}.key95{background:#7ba7cc}"
      "@media(max-width:520px){.bars{height:22px;gap:0}main{padding:10px}"
      ".card{padding:10px}}"
      "@media(prefers-color-scheme:dark){"
      "body{color:#e6e6e6;background:#111418}"
      ".card{background:#1b1f24;border-color:#2d333b}"
      ".comp{border-top-color:#2d333b}.day{border-bottom-color:#2d333b}"
      ".impact-critical{border-left-color:#e74c3c}"
      ".impact-major{border-left-color:#e67e22}"
      ".impact-minor{border-left-color:#f1c40f}"
      ".impact-none,.impact-maintenance{border-left-color:#3498db}"
      ".muted,.tl time,.legend,footer,.st-nodata{color:#9aa4af}"
      ".st-operational{color:#4cd07d}.st-degraded_performance{color:#f1c40f}"
      ".st-partial_outage{color:#f0883e}.st-major_outage{color:#ff6b5e}"
      ".st-under_maintenance,a{color:#58a6ff}"
      ".b{background:#3a414a}.b-ok{background:#2fcc66}"
      ".b-minor{background:#f1c40f}.b-major{background:#e67e22}"
      ".b-bad{background:#e74c3c}.b-maint{background:#3498db}"
      ".b:focus{outline-color:#e6e6e6}"
      ".b:hover::after,.b:focus::after{background:#e6e6e6;color:#111418}"
      ".rt .p50{stroke:#58a6ff}.rt .p95{stroke:#3d7bbf}.rt .ax{stroke:#3a414a}"
      ".key50{background:#58a6ff}.key95{background:#3d7bbf}"
      ".rtw summary{color:#58a6ff}}";

static void
time_text(sbuf *b, int64_t ms)
{
	char iso[32], text[32];
	od_format_iso8601(ms, iso, sizeof(iso));
	/* "2026-11-27T13:05:00Z" reads better as "2026-11-27 13:05 UTC". */
	od_strlcpy(text, iso, sizeof(text));
	text[10] = ' ';
	text[16] = '\0';
	sbuf_printf(b, "<time datetime=\"%s\">%s UTC</time>", iso, text);
}

static const char *
bar_class(const Opsdesk__V1__DailyBar *d)
{
	if (d == NULL || (d->checks == 0 && d->uptime < 0)) {
		return "b";
	}
	if (d->worst
	        == OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_MAINTENANCE
	    && d->failures == 0) {
		return "b b-maint";
	}
	if (d->uptime >= 99.9) {
		return "b b-ok";
	}
	if (d->uptime >= 99.0) {
		return "b b-minor";
	}
	if (d->uptime >= 95.0) {
		return "b b-major";
	}
	return "b b-bad";
}

/* Public incidents of component id that started on day. */
static unsigned
incidents_on(const status_view *v, const char *id, int64_t day)
{
	unsigned n = 0;
	for (size_t i = 0; i < v->n_incidents; i++) {
		const Opsdesk__V1__Incident *in = v->incidents[i];
		if (in->created_ms < day
		    || in->created_ms >= day + STATUS_DAY_MS) {
			continue;
		}
		for (size_t k = 0; k < in->n_components; k++) {
			if (strcmp(in->components[k]->component_id, id) == 0) {
				n++;
				break;
			}
		}
	}
	return n;
}

/* A percentage with the digits an objective needs: "99.95", "100". */
static void
slo_percent(double v, char *out, size_t size)
{
	char *dot, *e;
	snprintf(out, size, "%.3f", v);
	if ((dot = strchr(out, '.')) == NULL) {
		return;
	}
	for (e = out + strlen(out) - 1; e > dot && *e == '0'; e--) {
		*e = '\0';
	}
	if (e == dot) {
		*e = '\0';
	}
}

/* The public availability objective: " · 99.95 % (target 99.9 %)". */
static void
slo_html(const status_view_comp *c, sbuf *b)
{
	char got[32], want[32];
	if (c->rec == NULL || c->rec->slo_target <= 0) {
		return;
	}
	slo_percent(c->rec->slo_target, want, sizeof(want));
	if (c->rec->slo_attainment < 0) {
		sbuf_printf(b, " · objective %s %%", want);
		return;
	}
	slo_percent(c->rec->slo_attainment, got, sizeof(got));
	sbuf_printf(b,
	    " · <span class=\"slo\" title=\"Availability objective\">%s %% "
	    "(target %s %%)</span>",
	    got, want);
}

/* 90 bars, oldest first. Each is focusable (tab, or a tap on a phone)
 * and labelled with its day ("2026-12-03: 99.20% up, 1 incident"), which
 * shows under the bars on focus or hover. */
static void
bars_html(const status_view *v, const status_view_comp *c, sbuf *b)
{
	int64_t today = v->now_ms - (v->now_ms % STATUS_DAY_MS);
	size_t k = 0;
	sbuf_append(b, "<div class=\"bars\" role=\"list\" aria-label=\"");
	sbuf_append_html(b, c->name);
	sbuf_append(b, ": uptime of the last 90 days\">");
	for (int i = STATUS_DAYS - 1; i >= 0; i--) {
		int64_t day = today - (int64_t) i * STATUS_DAY_MS;
		const Opsdesk__V1__DailyBar *d = NULL;
		while (k < c->rec->n_daily && c->rec->daily[k]->day_ms < day) {
			k++;
		}
		if (k < c->rec->n_daily && c->rec->daily[k]->day_ms == day
		    && !(c->no_data && day == today)) {
			d = c->rec->daily[k];
		}
		char date[32], up[16], inc[32] = "";
		od_format_iso8601(day, date, sizeof(date));
		date[10] = '\0';
		unsigned n_inc = incidents_on(v, c->rec->id, day);
		if (n_inc > 0) {
			snprintf(inc, sizeof(inc), ", %u incident%s", n_inc,
			    n_inc == 1 ? "" : "s");
		}
		if (d != NULL && (d->checks > 0 || d->uptime >= 0)) {
			status_format_uptime(d->uptime, up, sizeof(up));
			sbuf_printf(b,
			    "<span class=\"%s\" role=\"listitem\" "
			    "tabindex=\"0\" aria-label=\"%s: %s up%s\" "
			    "title=\"%s: %s up, %u checks, %u failed%s\">"
			    "</span>",
			    bar_class(d), date, up, inc, date, up, d->checks,
			    d->failures, inc);
		} else {
			sbuf_printf(b,
			    "<span class=\"b\" role=\"listitem\" "
			    "tabindex=\"0\" aria-label=\"%s: no data%s\" "
			    "title=\"%s: no data%s\"></span>",
			    date, inc, date, inc);
		}
	}
	char up[16];
	status_format_uptime(c->uptime_90d, up, sizeof(up));
	sbuf_printf(b,
	    "</div><div class=\"legend\"><span>90 days ago</span>"
	    "<span>%s%s",
	    c->uptime_90d < 0 ? "No data yet" : up,
	    c->uptime_90d < 0 ? "" : " uptime");
	slo_html(c, b);
	sbuf_append(b, "</span><span>Today</span></div>");
}

/* One window's chart with its caption; false when it has no data. */
static bool
chart_html(const status_view_comp *c, Opsdesk__V1__LatencyPoint *const *pts,
    size_t n, const char *window, const char *ago, sbuf *b)
{
	char label[400];
	uint32_t p50 = 0, p95 = 0, peak = 0;
	if (!status_latency_summary(
	        (const Opsdesk__V1__LatencyPoint *const *) pts, n, &p50, &p95,
	        &peak)) {
		return false;
	}
	snprintf(
	    label, sizeof(label), "%s response time, %s", c->name, window);
	(void) status_render_chart(
	    (const Opsdesk__V1__LatencyPoint *const *) pts, n, label, b);
	sbuf_printf(b,
	    "<div class=\"legend\"><span>%s</span><span><i "
	    "class=\"key50\"></i>p50 %u ms <i class=\"key95\"></i>p95 %u ms"
	    "</span><span>now</span></div>",
	    ago, p50, p95);
	return true;
}

/* Response time: the last check, the 24 h chart, 7 d and 30 d a tap
 * away. Nothing when the prober has no latency for it yet; only "not
 * responding" while it is down. */
static void
response_html(const status_view_comp *c, sbuf *b)
{
	const Opsdesk__V1__StatusComponentRecord *r = c->rec;
	if (c->not_responding) {
		sbuf_append(b,
		    "<div class=\"rtw\"><div class=\"rth\">Response time "
		    "<span class=\"muted nr\">&middot; not responding"
		    "</span></div></div>");
		return;
	}
	uint32_t x, y, z;
	bool has24 = status_latency_summary(
	    (const Opsdesk__V1__LatencyPoint *const *) r->latency_24h,
	    r->n_latency_24h, &x, &y, &z);
	bool has7 = status_latency_summary(
	    (const Opsdesk__V1__LatencyPoint *const *) r->latency_7d,
	    r->n_latency_7d, &x, &y, &z);
	bool has30 = status_latency_summary(
	    (const Opsdesk__V1__LatencyPoint *const *) r->latency_30d,
	    r->n_latency_30d, &x, &y, &z);
	if (!has24 && !has7 && !has30 && r->latency_at_ms == 0) {
		return;
	}
	sbuf_append(b, "<div class=\"rtw\"><div class=\"rth\">Response time");
	if (r->latency_at_ms > 0) {
		sbuf_printf(b,
		    " <span class=\"muted\">&middot; last check %u ms"
		    "</span>",
		    r->latency_ms);
	}
	sbuf_append(b, "</div>");
	chart_html(c, r->latency_24h, r->n_latency_24h, "last 24 hours",
	    "24 hours ago", b);
	if (has7 || has30) {
		sbuf_append(b, "<details><summary>7 and 30 days</summary>");
		chart_html(c, r->latency_7d, r->n_latency_7d, "last 7 days",
		    "7 days ago", b);
		chart_html(c, r->latency_30d, r->n_latency_30d, "last 30 days",
		    "30 days ago", b);
		sbuf_append(b, "</details>");
	}
	sbuf_append(b, "</div>");
}

static void
comp_html(const status_view *v, const status_view_comp *c, sbuf *b)
{
	sbuf_printf(b, "<div class=\"comp\" id=\"c-");
	sbuf_append_html(b, c->rec->id);
	sbuf_append(b, "\"><div class=\"row\"><span>");
	sbuf_append_html(b, c->name);
	if (c->description != NULL) {
		sbuf_append(b, " <span class=\"muted\">");
		sbuf_append_html(b, c->description);
		sbuf_append(b, "</span>");
	}
	if (c->no_data && c->status == STATUS_OPERATIONAL) {
		/* Not settled yet: no claim either way. */
		sbuf_append(b,
		    "</span><span class=\"st st-nodata\">No data</span>"
		    "</div>");
	} else {
		sbuf_printf(b,
		    "</span><span class=\"st st-%s\">%s</span></div>",
		    status_comp_name(c->status), comp_labels[c->status]);
	}
	for (size_t i = 0; i < c->rec->n_affected_locations; i++) {
		sbuf_append(b,
		    i == 0 ? "<div class=\"muted\">Partial outage: "
		             "affects users in "
		           : ", ");
		sbuf_append_html(b, c->rec->affected_locations[i]);
		if (i + 1 == c->rec->n_affected_locations) {
			sbuf_append(b, "</div>");
		}
	}
	bars_html(v, c, b);
	response_html(c, b);
	sbuf_append(b, "</div>");
}

static void
components_html(const status_view *v, sbuf *b)
{
	if (v->n_comps == 0) {
		sbuf_append(b,
		    "<div class=\"card muted\">No components are "
		    "monitored yet.</div>");
		return;
	}
	sbuf_append(b, "<div class=\"card\">");
	for (size_t i = 0; i < v->n_comps;) {
		const status_view_comp *c = &v->comps[i];
		if (c->group_index < 0) {
			comp_html(v, c, b);
			i++;
			continue;
		}
		const status_view_group *g = &v->groups[c->group_index];
		sbuf_append(b,
		    "<div class=\"comp group\"><div class=\"row\">"
		    "<span>");
		sbuf_append_html(b, g->name);
		sbuf_printf(b,
		    "</span><span class=\"st st-%s\">%s</span></div>",
		    status_comp_name(g->status), comp_labels[g->status]);
		for (size_t k = g->first; k < g->first + g->count; k++) {
			comp_html(v, &v->comps[k], b);
		}
		sbuf_append(b, "</div>");
		i = g->first + g->count;
	}
	sbuf_append(b, "</div>");
}

static void
affected_html(const status_view *v, char **ids, size_t n, sbuf *b)
{
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		const char *name = status_view_comp_name(v, ids[i]);
		if (name == NULL) {
			continue;
		}
		sbuf_append(b, any ? ", " : "<div class=\"muted\">Affects: ");
		sbuf_append_html(b, name);
		any = true;
	}
	if (any) {
		sbuf_append(b, "</div>");
	}
}

static void
incident_html(const status_view *v, const Opsdesk__V1__Incident *in,
    bool timeline, sbuf *b)
{
	const char *impact
	    = status_indicator_name(status_impact_of(in->severity));
	sbuf_printf(b,
	    "<article class=\"card impact-%s\" id=\"INC-%llu\"><h3>", impact,
	    (unsigned long long) in->id);
	sbuf_append_html(b, in->title);
	sbuf_printf(b, "</h3><div class=\"muted\">%s &middot; ",
	    status_incident_status_name(in->status));
	time_text(b, in->created_ms);
	sbuf_append(b, "</div>");
	char *ids[64];
	size_t n = 0;
	for (size_t i = 0; i < in->n_components && n < 64; i++) {
		ids[n++] = in->components[i]->component_id;
	}
	affected_html(v, ids, n, b);
	if (timeline && in->n_timeline > 0) {
		sbuf_append(b, "<ol class=\"tl\">");
		for (size_t k = in->n_timeline; k-- > 0;) {
			const Opsdesk__V1__TimelineEntry *e = in->timeline[k];
			sbuf_printf(b, "<li><b>%s</b> &mdash; ",
			    status_incident_status_name(
			        e->status ? e->status : in->status));
			sbuf_append_html(b, e->text);
			sbuf_append(b, "<br>");
			time_text(b, e->at_ms);
			sbuf_append(b, "</li>");
		}
		sbuf_append(b, "</ol>");
	} else if (in->n_timeline > 0) {
		sbuf_append(b, "<div>");
		sbuf_append_html(b, in->timeline[in->n_timeline - 1]->text);
		sbuf_append(b, "</div>");
	}
	sbuf_append(b, "</article>");
}

static void
maintenance_html(
    const status_view *v, const Opsdesk__V1__MaintenanceWindow *w, sbuf *b)
{
	sbuf_printf(b,
	    "<article class=\"card impact-maintenance\" id=\"MNT-%llu\"><h3>",
	    (unsigned long long) w->id);
	sbuf_append_html(b, w->title);
	sbuf_append(b, "</h3><div class=\"muted\">");
	time_text(b, w->start_ms);
	sbuf_append(b, " &ndash; ");
	time_text(b, w->end_ms);
	sbuf_append(b, "</div>");
	if (w->description[0] != '\0') {
		sbuf_append(b, "<div>");
		sbuf_append_html(b, w->description);
		sbuf_append(b, "</div>");
	}
	affected_html(v, w->components, w->n_components, b);
	sbuf_append(b, "</article>");
}

/* The last 14 days, newest first, each day with its incidents. */
static void
history_html(const status_view *v, sbuf *b)
{
	int64_t today = v->now_ms - (v->now_ms % STATUS_DAY_MS);
	sbuf_append(b, "<h2>Past Incidents</h2>");
	for (int d = 0; d < STATUS_RECENT_DAYS; d++) {
		int64_t day = today - (int64_t) d * STATUS_DAY_MS;
		char date[32];
		od_format_iso8601(day, date, sizeof(date));
		date[10] = '\0';
		sbuf_printf(b, "<div class=\"day\"><h3>%s</h3>", date);
		bool any = false;
		for (size_t i = 0; i < v->n_incidents; i++) {
			const Opsdesk__V1__Incident *in = v->incidents[i];
			if (in->created_ms >= day
			    && in->created_ms < day + STATUS_DAY_MS) {
				incident_html(v, in, true, b);
				any = true;
			}
		}
		if (!any) {
			sbuf_append(b,
			    "<div class=\"muted\">No incidents "
			    "reported.</div>");
		}
		sbuf_append(b, "</div>");
	}
}

/* Subscribe: the chat bot's deep link (when its name is configured) and
 * the feeds. */
static void
subscribe_html(const status_view *v, sbuf *b)
{
	sbuf_append(b, "<p class=\"subscribe\">Subscribe to updates: ");
	if (v->conf->bot_username != NULL) {
		sbuf_append(b, "<a href=\"https://t.me/");
		sbuf_append_html(b, v->conf->bot_username);
		sbuf_append(b,
		    "?start=subscribe\" rel=\"nofollow\">Telegram</a> "
		    "&middot; ");
	}
	sbuf_append(b,
	    "<a href=\"/history.rss\">RSS</a> &middot; "
	    "<a href=\"/history.atom\">Atom</a></p>");
}

int
status_render_html(const status_view *v, sbuf *b)
{
	const char *ind = status_indicator_name(v->indicator);
	if (v->indicator == STATUS_IND_NONE
	    && strcmp(v->description, "All Systems Operational") != 0) {
		ind = "maint";
	}
	sbuf_append(b,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><meta name=\"viewport\" "
	    "content=\"width=device-width,initial-scale=1\">"
	    "<title>");
	sbuf_append_html(b, v->conf->title);
	sbuf_printf(b,
	    "</title><link rel=\"alternate\" type=\"application/rss+xml\" "
	    "href=\"/history.rss\"><link rel=\"alternate\" "
	    "type=\"application/atom+xml\" href=\"/history.atom\">"
	    "<style>%s</style></head><body><main><h1>",
	    css);
	sbuf_append_html(b, v->conf->title);
	sbuf_printf(
	    b, "</h1><div class=\"banner ind-%s\">%s", ind, v->description);
	if (v->n_monitoring > 0 && v->n_monitoring == v->n_unresolved) {
		/* Only incidents being watched after a fix: say so, without
		 * an outage the components no longer show. */
		sbuf_append(b,
		    "<div class=\"sub\">A fix has been implemented and we "
		    "are monitoring the results.</div>");
	}
	sbuf_append(b, "</div>");
	subscribe_html(v, b);

	if (v->n_unresolved > 0) {
		sbuf_append(b, "<h2>Active Incidents</h2>");
		for (size_t i = 0; i < v->n_unresolved; i++) {
			incident_html(v, v->unresolved[i], true, b);
		}
	}
	if (v->n_mnt_active > 0) {
		sbuf_append(b, "<h2>Maintenance in Progress</h2>");
		for (size_t i = 0; i < v->n_mnt_active; i++) {
			maintenance_html(v, v->mnt_active[i], b);
		}
	}
	sbuf_append(b, "<h2>Components</h2>");
	components_html(v, b);
	if (v->n_mnt_upcoming > 0) {
		sbuf_append(b, "<h2>Scheduled Maintenance</h2>");
		for (size_t i = 0; i < v->n_mnt_upcoming; i++) {
			maintenance_html(v, v->mnt_upcoming[i], b);
		}
	}
	history_html(v, b);
	sbuf_append(b, "<footer>Updated ");
	if (v->updated_ms > 0) {
		time_text(b, v->updated_ms);
	} else {
		sbuf_append(b, "never");
	}
	sbuf_append(b,
	    " &middot; <a href=\"/api/v2/summary.json\">JSON API</a> &middot; "
	    "<a href=\"/history.rss\">RSS</a> &middot; "
	    "<a "
	    "href=\"/history.atom\">Atom</a></footer></main></body></html>\n");
	return sbuf_failed(b) ? OD_ENOMEM : 0;
}
