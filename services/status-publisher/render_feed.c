/*
 * render_feed — RSS 2.0 and Atom 1.0 feeds of the public incidents, newest
 * first. Every text is XML-escaped; an entry's body is its public updates
 * as plain text.
 */
#include <stdio.h>

#include "status.h"

/*
 * Append markup and XML-escaped text in turn (parts[0] markup, parts[1]
 * text, parts[2] markup, ...; all borrowed), so a feed's skeleton reads as
 * one list instead of a run of alternating appends.
 */
static void
append_markup(sbuf *b, const char *const *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i % 2 == 0) {
			sbuf_append(b, parts[i]);
		} else {
			sbuf_append_html(b, parts[i]);
		}
	}
}

#define MARKUP(b, ...)                                                        \
	append_markup((b), (const char *const[]) { __VA_ARGS__ },             \
	    sizeof((const char *const[]) { __VA_ARGS__ })                     \
	        / sizeof(const char *))

static void
updates_text(const Opsdesk__V1__Incident *in, sbuf *b)
{
	for (size_t k = in->n_timeline; k-- > 0;) {
		const Opsdesk__V1__TimelineEntry *e = in->timeline[k];
		char when[32];
		od_format_iso8601(e->at_ms, when, sizeof(when));
		sbuf_printf(b, "%s - %s: ", when,
		    status_incident_status_name(
		        e->status ? e->status : in->status));
		sbuf_append_html(b, e->text);
		if (k > 0) {
			sbuf_append(b, "\n");
		}
	}
}

int
status_render_rss(const status_view *v, sbuf *b)
{
	char date[40];
	status_http_date(v->updated_ms, date, sizeof(date));
	MARKUP(b,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<rss version=\"2.0\" "
	    "xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel>"
	    "<title>",
	    v->conf->title, " - Incident History</title><link>", v->conf->url,
	    "/</link><atom:link href=\"", v->conf->url,
	    "/history.rss\" rel=\"self\" "
	    "type=\"application/rss+xml\"/><description>",
	    v->conf->title);
	sbuf_printf(b,
	    " status page incidents</description><lastBuildDate>%s"
	    "</lastBuildDate>",
	    date);
	for (size_t i = 0; i < v->n_incidents; i++) {
		const Opsdesk__V1__Incident *in = v->incidents[i];
		unsigned long long id = (unsigned long long) in->id;
		MARKUP(b, "<item><title>", in->title, "</title><link>",
		    v->conf->url);
		sbuf_printf(
		    b, "/#INC-%llu</link><guid isPermaLink=\"false\">", id);
		sbuf_append_html(b, v->conf->page_id);
		status_http_date(in->created_ms, date, sizeof(date));
		sbuf_printf(b,
		    "-INC-%llu</guid><pubDate>%s</pubDate>"
		    "<description>",
		    id, date);
		updates_text(in, b);
		sbuf_append(b, "</description></item>");
	}
	sbuf_append(b, "</channel></rss>\n");
	return sbuf_failed(b) ? OD_ENOMEM : 0;
}

int
status_render_atom(const status_view *v, sbuf *b)
{
	char when[32];
	od_format_iso8601(
	    v->updated_ms > 0 ? v->updated_ms : 0, when, sizeof(when));
	MARKUP(b,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<feed xmlns=\"http://www.w3.org/2005/Atom\" "
	    "xml:lang=\"en\"><id>",
	    v->conf->url, "/history.atom</id><title>", v->conf->title);
	sbuf_printf(
	    b, " - Incident History</title><updated>%s</updated>", when);
	MARKUP(b, "<link rel=\"alternate\" type=\"text/html\" href=\"",
	    v->conf->url,
	    "/\"/><link rel=\"self\" "
	    "type=\"application/atom+xml\" href=\"",
	    v->conf->url, "/history.atom\"/><author><name>", v->conf->title,
	    "</name></author>");
	for (size_t i = 0; i < v->n_incidents; i++) {
		const Opsdesk__V1__Incident *in = v->incidents[i];
		unsigned long long id = (unsigned long long) in->id;
		sbuf_append(b, "<entry><id>");
		sbuf_append_html(b, v->conf->url);
		sbuf_printf(b, "/#INC-%llu</id><title>", id);
		sbuf_append_html(b, in->title);
		od_format_iso8601(
		    in->updated_ms ? in->updated_ms : in->created_ms, when,
		    sizeof(when));
		sbuf_printf(b, "</title><updated>%s</updated>", when);
		od_format_iso8601(in->created_ms, when, sizeof(when));
		sbuf_printf(b,
		    "<published>%s</published><link "
		    "rel=\"alternate\" type=\"text/html\" href=\"",
		    when);
		sbuf_append_html(b, v->conf->url);
		sbuf_printf(b, "/#INC-%llu\"/><content type=\"text\">", id);
		updates_text(in, b);
		sbuf_append(b, "</content></entry>");
	}
	sbuf_append(b, "</feed>\n");
	return sbuf_failed(b) ? OD_ENOMEM : 0;
}
