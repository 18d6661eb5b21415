/*
 * render_badge — SVG badges in the common flat style (shields.io's "flat"):
 * a grey label box and a coloured message box, 20 px high, with a light
 * gradient and a text shadow.
 */
#include <stdio.h>

#include <string.h>

#include "status.h"

/* Verdana 11 px averages about 7 px a character; the boxes get 5 px of
 * padding on each side, as shields.io's do. */
static int
text_width(const char *s)
{
	return (int) od_utf8_len(s) * 7;
}

void
status_render_badge(
    const char *label, const char *message, const char *color, sbuf *b)
{
	int lw = text_width(label) + 10;
	int mw = text_width(message) + 10;
	int w = lw + mw;

	sbuf_printf(b,
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"20\" role=\"img\" aria-label=\"",
	    w);
	sbuf_append_html(b, label);
	sbuf_append(b, ": ");
	sbuf_append_html(b, message);
	sbuf_append(b, "\"><title>");
	sbuf_append_html(b, label);
	sbuf_append(b, ": ");
	sbuf_append_html(b, message);
	sbuf_printf(b,
	    "</title><linearGradient id=\"s\" x2=\"0\" y2=\"100%%\">"
	    "<stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/>"
	    "<stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>"
	    "<clipPath id=\"r\"><rect width=\"%d\" height=\"20\" rx=\"3\" "
	    "fill=\"#fff\"/></clipPath><g clip-path=\"url(#r)\">"
	    "<rect width=\"%d\" height=\"20\" fill=\"#555\"/>"
	    "<rect x=\"%d\" width=\"%d\" height=\"20\" fill=\"%s\"/>"
	    "<rect width=\"%d\" height=\"20\" fill=\"url(#s)\"/></g>"
	    "<g fill=\"#fff\" text-anchor=\"middle\" "
	    "font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" "
	    "font-size=\"11\">",
	    w, lw, lw, mw, color, w);
	const char *texts[2] = { label, message };
	int centers[2] = { lw / 2, lw + mw / 2 };
	for (int i = 0; i < 2; i++) {
		sbuf_printf(b,
		    "<text x=\"%d\" y=\"15\" fill=\"#010101\" "
		    "fill-opacity=\".3\">",
		    centers[i]);
		sbuf_append_html(b, texts[i]);
		sbuf_printf(b, "</text><text x=\"%d\" y=\"14\">", centers[i]);
		sbuf_append_html(b, texts[i]);
		sbuf_append(b, "</text>");
	}
	sbuf_append(b, "</g></svg>\n");
}

static const struct {
	const char *message;
	const char *color;
} state_badges[] = {
	[STATUS_OPERATIONAL] = { "operational", "#4c1" },
	[STATUS_DEGRADED] = { "degraded", "#dfb317" },
	[STATUS_PARTIAL] = { "partial outage", "#fe7d37" },
	[STATUS_MAJOR] = { "major outage", "#e05d44" },
	[STATUS_MAINTENANCE] = { "maintenance", "#007ec6" },
};

void
status_render_badge_state(const status_view_comp *c, sbuf *b)
{
	status_render_badge(c->name, state_badges[c->status].message,
	    state_badges[c->status].color, b);
}

void
status_format_uptime(double pct, char *out, size_t size)
{
	if (pct < 0) {
		snprintf(out, size, "no data");
	} else if (pct >= 100.0) {
		snprintf(out, size, "100%%");
	} else {
		/* Never round a bad month up to a perfect one. */
		double t = (double) (long long) (pct * 100.0) / 100.0;
		snprintf(out, size, "%.2f%%", t);
	}
}

void
status_render_badge_uptime(const status_view_comp *c, sbuf *b)
{
	char msg[16], label[300];
	double u = c->uptime_30d;
	const char *color = u < 0 ? "#9f9f9f"
	    : u >= 99.9           ? "#4c1"
	    : u >= 99.0           ? "#97ca00"
	    : u >= 95.0           ? "#dfb317"
	                          : "#e05d44";
	status_format_uptime(u, msg, sizeof(msg));
	snprintf(label, sizeof(label), "%s 30d", c->name);
	status_render_badge(label, msg, color, b);
}

void
status_render_badge_overall(const status_view *v, sbuf *b)
{
	static const char *const colors[] = {
		[STATUS_IND_NONE] = "#4c1",
		[STATUS_IND_MINOR] = "#dfb317",
		[STATUS_IND_MAJOR] = "#fe7d37",
		[STATUS_IND_CRITICAL] = "#e05d44",
	};
	const char *color = colors[v->indicator];
	/* Only maintenance: blue, as on the page. */
	if (v->indicator == STATUS_IND_NONE
	    && strcmp(v->description, "Service Under Maintenance") == 0) {
		color = "#007ec6";
	}
	status_render_badge("status", v->description, color, b);
}
