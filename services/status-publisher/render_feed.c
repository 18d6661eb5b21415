/*
 * render_feed — RSS 2.0 and Atom 1.0 feeds of the public incidents, newest
 * first. Every text is XML-escaped; an entry's body is its public updates
 * as plain text.
 */
#include <stdio.h>

#include "status.h"

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
	sbuf_append(b,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<rss version=\"2.0\" "
	    "xmlns:atom=\"http://www.w3.org/2005/Atom\"><channel>"
	    "<title>");
	sbuf_append_html(b, v->conf->title);
	sbuf_append(b, " - Incident History</title><link>");
	sbuf_append_html(b, v->conf->url);
	sbuf_append(b, "/</link><atom:link href=\"");
	sbuf_append_html(b, v->conf->url);
	sbuf_append(b,
	    "/history.rss\" rel=\"self\" "
	    "type=\"application/rss+xml\"/><description>");
	sbuf_append_html(b, v->conf->title);
	sbuf_printf(b,
	    " status page incidents</description><lastBuildDate>%s"
	    "</lastBuildDate>",
	    date);
	for (size_t i = 0; i < v->n_incidents; i++) {
		const Opsdesk__V1__Incident *in = v->incidents[i];
		unsigned long long id = (unsigned long long) in->id;
		sbuf_append(b, "<item><title>");
		sbuf_append_html(b, in->title);
		sbuf_append(b, "</title><link>");
		sbuf_append_html(b, v->conf->url);
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
	sbuf_append(b,
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<feed xmlns=\"http://www.w3.org/2005/Atom\" "
	    "xml:lang=\"en\"><id>");
	sbuf_append_html(b, v->conf->url);
	sbuf_append(b, "/history.atom</id><title>");
	sbuf_append_html(b, v->conf->title);
	sbuf_printf(
	    b, " - Incident History</title><updated>%s</updated>", when);
	sbuf_append(b, "<link rel=\"alternate\" type=\"text/html\" href=\"");
	sbuf_append_html(b, v->conf->url);
	sbuf_append(b,
	    "/\"/><link rel=\"self\" "
	    "type=\"application/atom+xml\" href=\"");
	sbuf_append_html(b, v->conf->url);
	sbuf_append(b, "/history.atom\"/><author><name>");
	sbuf_append_html(b, v->conf->title);
	sbuf_append(b, "</name></author>");
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
