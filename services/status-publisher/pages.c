/*
 * pages — every response pre-rendered from one view, so serving is a
 * lookup; the site holder swaps whole sets atomically, and a set lives
 * while an answer still sends its bytes (a reference each).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "status.h"

struct status_pages {
	atomic_int refs;    /* the site's or the builder's, one per answer */
	status_page *items; /* sorted by path */
	size_t n, cap;
	int64_t modified_ms;
	char last_modified[40];
};

static const char ct_html[] = "text/html; charset=utf-8";
static const char ct_json[] = "application/json; charset=utf-8";
static const char ct_rss[] = "application/rss+xml; charset=utf-8";
static const char ct_atom[] = "application/atom+xml; charset=utf-8";
static const char ct_svg[] = "image/svg+xml";
/* Clients may keep a page a little while; a changed page shows within
 * the minute, and revalidation is cheap (304). */
static const char cc_page[] = "public, max-age=30, must-revalidate";
static const char cc_badge[] = "public, max-age=60";

/* FNV-1a 64: cheap, and the ETag only has to change when bytes do. */
static uint64_t
fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t) p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int
add_page(status_pages *p, const char *path, const char *ct, const char *cc,
    sbuf *body)
{
	if (sbuf_failed(body)) {
		return OD_ENOMEM;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		status_page *items = realloc(p->items, cap * sizeof(*items));
		if (items == NULL) {
			return OD_ENOMEM;
		}
		p->items = items;
		p->cap = cap;
	}
	status_page *pg = &p->items[p->n];
	memset(pg, 0, sizeof(*pg));
	if ((pg->path = strdup(path)) == NULL) {
		return OD_ENOMEM;
	}
	pg->content_type = ct;
	pg->cache_control = cc;
	pg->body = sbuf_take(body, &pg->len);
	if (pg->body == NULL) {
		free(pg->path);
		return OD_ENOMEM;
	}
	snprintf(pg->etag, sizeof(pg->etag), "\"%016llx\"",
	    (unsigned long long) fnv1a(pg->body, pg->len));
	p->n++;
	return 0;
}

static const struct {
	const char *path;
	status_json_kind kind;
} json_routes[] = {
	{ "/api/v2/summary.json", STATUS_JSON_SUMMARY },
	{ "/api/v2/status.json", STATUS_JSON_STATUS },
	{ "/api/v2/components.json", STATUS_JSON_COMPONENTS },
	{ "/api/v2/incidents.json", STATUS_JSON_INCIDENTS },
	{ "/api/v2/incidents/unresolved.json", STATUS_JSON_UNRESOLVED },
	{ "/api/v2/scheduled-maintenances.json", STATUS_JSON_MAINTENANCES },
	{ "/api/v2/scheduled-maintenances/upcoming.json",
	    STATUS_JSON_MNT_UPCOMING },
	{ "/api/v2/scheduled-maintenances/active.json",
	    STATUS_JSON_MNT_ACTIVE },
};

static int
page_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const status_page *) a)->path, ((const status_page *) b)->path);
}

int
status_pages_build(const status_view *v, status_pages **out)
{
	status_pages *p = calloc(1, sizeof(*p));
	sbuf b = SBUF_INIT;
	char path[600];
	int rv = OD_ENOMEM;

	if (p == NULL) {
		return rv;
	}
	atomic_init(&p->refs, 1);
	p->modified_ms = v->updated_ms;
	status_http_date(
	    v->updated_ms, p->last_modified, sizeof(p->last_modified));
	if ((rv = status_render_html(v, &b)) != 0
	    || (rv = add_page(p, "/", ct_html, cc_page, &b)) != 0) {
		goto out;
	}
	for (size_t i = 0; i < sizeof(json_routes) / sizeof(json_routes[0]);
	     i++) {
		if ((rv = status_render_json(v, json_routes[i].kind, &b)) != 0
		    || (rv = add_page(
		            p, json_routes[i].path, ct_json, cc_page, &b))
		        != 0) {
			goto out;
		}
	}
	if ((rv = status_render_rss(v, &b)) != 0
	    || (rv = add_page(p, "/history.rss", ct_rss, cc_page, &b)) != 0
	    || (rv = status_render_atom(v, &b)) != 0
	    || (rv = add_page(p, "/history.atom", ct_atom, cc_page, &b))
	        != 0) {
		goto out;
	}
	status_render_badge_overall(v, &b);
	if ((rv = add_page(p, "/badge.svg", ct_svg, cc_badge, &b)) != 0) {
		goto out;
	}
	for (size_t i = 0; i < v->n_comps; i++) {
		const status_view_comp *c = &v->comps[i];
		snprintf(path, sizeof(path), "/badge/%s.svg", c->rec->id);
		status_render_badge_state(c, &b);
		if ((rv = add_page(p, path, ct_svg, cc_badge, &b)) != 0) {
			goto out;
		}
		snprintf(
		    path, sizeof(path), "/badge/%s/uptime.svg", c->rec->id);
		status_render_badge_uptime(c, &b);
		if ((rv = add_page(p, path, ct_svg, cc_badge, &b)) != 0) {
			goto out;
		}
	}
	qsort(p->items, p->n, sizeof(p->items[0]), page_cmp);
	*out = p;
	p = NULL;
	rv = 0;
out:
	sbuf_free(&b);
	status_pages_free(p);
	return rv;
}

void
status_pages_free(status_pages *p)
{
	if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1) {
		return;
	}
	for (size_t i = 0; i < p->n; i++) {
		free(p->items[i].path);
		free(p->items[i].body);
	}
	free(p->items);
	free(p);
}

const status_page *
status_pages_find(const status_pages *p, const char *path)
{
	if (p == NULL) {
		return NULL;
	}
	status_page key = { .path = (char *) path };
	return bsearch(&key, p->items, p->n, sizeof(p->items[0]), page_cmp);
}

const char *
status_pages_last_modified(const status_pages *p)
{
	return p->last_modified;
}

int64_t
status_pages_modified_ms(const status_pages *p)
{
	return p->modified_ms;
}

size_t
status_pages_count(const status_pages *p)
{
	return p ? p->n : 0;
}

/* ---- the site ---- */

int
status_site_init(status_site *s)
{
	s->pages = NULL;
	return pthread_mutex_init(&s->mu, NULL) == 0 ? 0 : OD_ENOMEM;
}

void
status_site_fini(status_site *s)
{
	status_pages_free(s->pages);
	s->pages = NULL;
	pthread_mutex_destroy(&s->mu);
}

void
status_site_swap(status_site *s, status_pages *p)
{
	pthread_mutex_lock(&s->mu);
	status_pages *old = s->pages;
	s->pages = p;
	pthread_mutex_unlock(&s->mu);
	status_pages_free(old);
}

/* Does an If-None-Match list name etag (weak forms and "*" included)? */
static bool
etag_matches(const char *inm, const char *etag)
{
	size_t el = strlen(etag);
	for (const char *p = inm; *p != '\0';) {
		while (*p == ' ' || *p == ',') {
			p++;
		}
		if (p[0] == '*') {
			return true;
		}
		if (p[0] == 'W' && p[1] == '/') {
			p += 2;
		}
		if (strncmp(p, etag, el) == 0
		    && (p[el] == '\0' || p[el] == ',' || p[el] == ' ')) {
			return true;
		}
		while (*p != '\0' && *p != ',') {
			p++;
		}
	}
	return false;
}

void
status_pages_release(void *p)
{
	status_pages_free(p);
}

int
status_site_answer(status_site *s, const char *path, const char *inm,
    const char *ims, status_answer *out)
{
	int rv = 0;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->mu);
	const status_page *pg = status_pages_find(s->pages, path);
	if (pg == NULL) {
		out->status = 404;
		out->content_type = "text/plain; charset=utf-8";
		goto out;
	}
	out->content_type = pg->content_type;
	out->cache_control = pg->cache_control;
	memcpy(out->etag, pg->etag, sizeof(out->etag));
	od_strlcpy(out->last_modified, s->pages->last_modified,
	    sizeof(out->last_modified));
	/* If-None-Match wins over If-Modified-Since (RFC 7232 §6). */
	int64_t since;
	if ((inm != NULL && etag_matches(inm, pg->etag))
	    || (inm == NULL && ims != NULL
	        && status_http_date_parse(ims, &since) == 0
	        && s->pages->modified_ms / 1000 <= since / 1000)) {
		out->status = 304;
		goto out;
	}
	out->status = 200;
	atomic_fetch_add(&s->pages->refs, 1);
	out->hold = s->pages;
	out->body = pg->body;
	out->len = pg->len;
out:
	pthread_mutex_unlock(&s->mu);
	return rv;
}

/* ---- HTTP dates ---- */

static const char *const wdays[]
    = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void
status_http_date(int64_t ms, char *out, size_t size)
{
	time_t t = (time_t) ((ms > 0 ? ms : 0) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	    wdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int
status_http_date_parse(const char *s, int64_t *out_ms)
{
	char wd[4], mon[4];
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%3s, %d %3s %d %d:%d:%d GMT", wd, &tm.tm_mday, mon,
	        &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec)
	    != 7) {
		return OD_EINVAL;
	}
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++) {
		if (strcasecmp(mon, months[i]) == 0) {
			tm.tm_mon = i;
		}
	}
	if (tm.tm_mon < 0 || tm.tm_year < 1970) {
		return OD_EINVAL;
	}
	tm.tm_year -= 1900;
	*out_ms = (int64_t) timegm(&tm) * 1000;
	return 0;
}
