/*
 * render_chart — response-time charts as small inline SVG (no script, no
 * external asset): p95 and p50 lines over a window's slices, a gap where a
 * slice has no checks, a lone slice drawn as a dash across its width. The y
 * scale runs from 0 to a round number above the highest p95, so two charts of
 * one component are comparable by their captions.
 */
#include <stdio.h>
#include <string.h>

#include "status.h"

#define CHART_W 600.0
#define CHART_H 40.0

/* 1, 2 or 5 times a power of ten, at least v (and at least 10 ms). */
static uint32_t
nice_ceiling(uint32_t v)
{
	uint64_t p = 10;
	for (;;) {
		if (v <= p) {
			return (uint32_t) p;
		}
		if (v <= 2 * p) {
			return (uint32_t) (2 * p);
		}
		if (v <= 5 * p) {
			return (uint32_t) (5 * p);
		}
		p *= 10;
		if (p > 1000000000ULL) {
			return UINT32_MAX;
		}
	}
}

bool
status_latency_summary(const Opsdesk__V1__LatencyPoint *const *pts, size_t n,
    uint32_t *p50, uint32_t *p95, uint32_t *peak)
{
	bool any = false;
	uint32_t top = 0;
	for (size_t i = 0; i < n; i++) {
		if (pts[i]->checks == 0) {
			continue;
		}
		any = true;
		*p50 = pts[i]->p50_ms;
		*p95 = pts[i]->p95_ms;
		if (pts[i]->p95_ms > top) {
			top = pts[i]->p95_ms;
		}
		if (pts[i]->p50_ms > top) {
			top = pts[i]->p50_ms;
		}
	}
	if (any) {
		*peak = top;
	}
	return any;
}

static void
line(const Opsdesk__V1__LatencyPoint *const *pts, size_t n, bool p95,
    double scale, sbuf *b)
{
	bool open = false;
	sbuf_printf(b, "<path class=\"%s\" d=\"", p95 ? "p95" : "p50");
	for (size_t i = 0; i < n; i++) {
		if (pts[i]->checks == 0) {
			open = false;
			continue;
		}
		double v = p95 ? pts[i]->p95_ms : pts[i]->p50_ms;
		double x = ((double) i + 0.5) * CHART_W / (double) n;
		double y = CHART_H - 1.0 - v * scale;
		if (!open && (i + 1 == n || pts[i + 1]->checks == 0)) {
			/* A lone slice: a dash across its width. */
			double w = CHART_W / (double) n;
			sbuf_printf(b, "M%.1f %.1fH%.1f", x - w / 2 + 1.0, y,
			    x + w / 2 - 1.0);
			continue;
		}
		sbuf_printf(b, "%s%.1f %.1f", open ? "L" : "M", x, y);
		open = true;
	}
	sbuf_append(b, "\"/>");
}

bool
status_render_chart(const Opsdesk__V1__LatencyPoint *const *pts, size_t n,
    const char *label, sbuf *b)
{
	uint32_t p50 = 0, p95 = 0, peak = 0;
	if (n == 0 || !status_latency_summary(pts, n, &p50, &p95, &peak)) {
		return false;
	}
	uint32_t top = nice_ceiling(peak);
	double scale = (CHART_H - 2.0) / (double) top;
	sbuf_printf(b,
	    "<svg class=\"rt\" viewBox=\"0 0 %.0f %.0f\" "
	    "preserveAspectRatio=\"none\" role=\"img\" aria-label=\"",
	    CHART_W, CHART_H);
	sbuf_append_html(b, label);
	sbuf_printf(b, ": latest p50 %u ms, p95 %u ms, peak %u ms\"><title>",
	    p50, p95, peak);
	sbuf_append_html(b, label);
	sbuf_printf(b, " (0 to %u ms)</title>", top);
	/* Frame: the zero line and the top of the scale. */
	sbuf_printf(b, "<path class=\"ax\" d=\"M0 %.1fH%.0fM0 1H%.0f\"/>",
	    CHART_H - 1.0, CHART_W, CHART_W);
	line(pts, n, true, scale, b);
	line(pts, n, false, scale, b);
	sbuf_append(b, "</svg>");
	return true;
}
