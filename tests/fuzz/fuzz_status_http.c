/*
 * status-publisher's outside input: the request path and the conditional
 * headers (If-None-Match, If-Modified-Since) of a GET against a rendered
 * site, the status_page config section, and hostile titles through the
 * renderers. Input: "path\ninm\nims\ntitle\n<json>".
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static status_conf conf;
static status_site site;
static bool ready;

static int
build(const status_view *v, void *arg)
{
	return status_pages_build(v, (status_pages **) arg);
}

static status_model *
scene(const char *title)
{
	status_model *m;
	if (status_model_open(&m, &conf, NULL) != 0) {
		abort();
	}
	Opsdesk__V1__HealthChanged hc = OPSDESK__V1__HEALTH_CHANGED__INIT;
	hc.target_id = "db";
	hc.name = (char *) title;
	hc.group = (char *) title;
	hc.new_state = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN;
	hc.public_ = true;
	hc.at_ms = 1795784400000LL;
	status_model_health_changed(m, &hc);
	Opsdesk__V1__Incident in = OPSDESK__V1__INCIDENT__INIT;
	Opsdesk__V1__TimelineEntry e = OPSDESK__V1__TIMELINE_ENTRY__INIT;
	Opsdesk__V1__TimelineEntry *tl[1] = { &e };
	e.text = (char *) title;
	e.public_ = true;
	e.at_ms = hc.at_ms;
	in.id = 1;
	in.title = (char *) title;
	in.timeline = tl;
	in.n_timeline = 1;
	in.created_ms = hc.at_ms;
	in.public_ = true;
	status_model_incident(m, &in);
	return m;
}

/* Split off the text up to the next newline as a C string (copied). */
static char *
take_line(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t) (end - *p));
	size_t n = (size_t) ((nl ? nl : end) - *p);
	char *s = malloc(n + 1);
	if (s == NULL) {
		abort();
	}
	memcpy(s, *p, n);
	s[n] = '\0';
	*p = nl ? nl + 1 : end;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (!ready) {
		if (status_conf_parse(NULL, &conf, err, sizeof(err)) != 0
		    || status_site_init(&site) != 0) {
			abort();
		}
		status_model *m = scene("db");
		status_pages *p = NULL;
		if (status_model_with_view(m, 1795784400000LL, build, &p)
		    != 0) {
			abort();
		}
		status_site_swap(&site, p);
		status_model_close(m);
		ready = true;
	}
	const uint8_t *p = data, *end = data + size;
	char *path = take_line(&p, end);
	char *inm = take_line(&p, end);
	char *ims = take_line(&p, end);
	char *title = take_line(&p, end);

	status_answer a;
	if (status_site_answer(
	        &site, path, inm[0] ? inm : NULL, ims[0] ? ims : NULL, &a)
	    == 0) {
		status_pages_free(a.hold);
	}
	int64_t ms;
	(void) status_http_date_parse(ims, &ms);

	/* Whatever the title, no script reaches the page: it has none of
	 * its own, so any "<script" would be the title's, unescaped. */
	status_model *m = scene(title);
	status_pages *pages = NULL;
	if (status_model_with_view(m, 1795784400000LL, build, &pages) == 0) {
		if (strstr(status_pages_find(pages, "/")->body, "<script")
		    != NULL) {
			abort();
		}
		status_pages_free(pages);
	}
	status_model_close(m);

	cJSON *j = cJSON_ParseWithLength((const char *) p, (size_t) (end - p));
	status_conf c;
	if (status_conf_parse(j, &c, err, sizeof(err)) == 0) {
		status_conf_fini(&c);
	}
	cJSON_Delete(j);
	free(path);
	free(inm);
	free(ims);
	free(title);
	return 0;
}
