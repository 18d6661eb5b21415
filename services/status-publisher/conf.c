/*
 * conf — the status_page section of the suite config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/public_text.h"
#include "status.h"

static char *
dup_or_null(const char *s)
{
	return (s != NULL && s[0] != '\0') ? strdup(s) : NULL;
}

/* One entry of status_page.components: a string id or an object. */
static int
parse_comp(const cJSON *item, const char *path, status_comp_conf *cc,
    char *err, size_t errlen)
{
	const char *id = NULL, *name = NULL, *group = NULL, *desc = NULL;
	int rv;

	if (cJSON_IsString(item) && item->valuestring != NULL) {
		id = item->valuestring;
	} else if (cJSON_IsObject(item)) {
		if ((rv = config_get_string(
		         item, path, "id", NULL, &id, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            item, path, "name", NULL, &name, err, errlen))
		        != 0
		    || (rv = config_get_string(
		            item, path, "group", NULL, &group, err, errlen))
		        != 0
		    || (rv = config_get_string(item, path, "description", NULL,
		            &desc, err, errlen))
		        != 0) {
			return rv;
		}
	}
	if (id == NULL || id[0] == '\0') {
		snprintf(err, errlen,
		    "%s: expected a component id or an object with \"id\"",
		    path);
		return OD_EINVAL;
	}
	cc->id = strdup(id);
	cc->name = dup_or_null(name);
	cc->group = dup_or_null(group);
	cc->description = dup_or_null(desc);
	if (cc->id == NULL || (name != NULL && name[0] && !cc->name)
	    || (group != NULL && group[0] && !cc->group)
	    || (desc != NULL && desc[0] && !cc->description)) {
		return OD_ENOMEM;
	}
	return 0;
}

/* status_page.templates: read here to recognise incident-service's texts
 * and to reword what it stored before it had them. */
static int
parse_templates(const cJSON *sec, status_conf *c, char *err, size_t errlen)
{
	return public_templates_parse(sec, c->templates, err, errlen);
}

int
status_conf_parse(const cJSON *sec, status_conf *out, char *err, size_t errlen)
{
	const char *title, *url, *tz, *page_id;
	const cJSON *comps = NULL;
	status_conf c;
	int rv;

	memset(&c, 0, sizeof(c));
	if (sec != NULL && !cJSON_IsObject(sec)) {
		snprintf(err, errlen, "status_page: expected an object");
		return OD_EINVAL;
	}
	if ((rv = config_get_string(sec, "status_page", "title",
	         "opsdesk status", &title, err, errlen))
	        != 0
	    || (rv = config_get_string(sec, "status_page", "url",
	            "http://127.0.0.1:8080", &url, err, errlen))
	        != 0
	    || (rv = config_get_string(sec, "status_page", "time_zone",
	            "Etc/UTC", &tz, err, errlen))
	        != 0
	    || (rv = config_get_string(sec, "status_page", "page_id",
	            "opsdesk", &page_id, err, errlen))
	        != 0
	    || (rv = config_get_bool(sec, "status_page", "show_unlisted", true,
	            &c.show_unlisted, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "status_page",
	            "resync_interval", 300000, 1000, 86400000,
	            &c.resync_interval_ms, err, errlen))
	        != 0
	    || (rv = config_get_duration_ms(sec, "status_page",
	            "history_interval", 600000, 1000, 86400000,
	            &c.history_interval_ms, err, errlen))
	        != 0
	    || (rv = config_get_array(
	            sec, "status_page", "components", &comps, err, errlen))
	        != 0) {
		goto out;
	}
	c.title = strdup(title);
	c.url = strdup(url);
	c.time_zone = strdup(tz);
	c.page_id = strdup(page_id);
	if (!c.title || !c.url || !c.time_zone || !c.page_id) {
		rv = OD_ENOMEM;
		goto out;
	}
	/* The page links are built as url + "/..." and url + "#INC-1". */
	size_t ul = strlen(c.url);
	while (ul > 0 && c.url[ul - 1] == '/') {
		c.url[--ul] = '\0';
	}
	if (comps != NULL) {
		int n = cJSON_GetArraySize(comps);
		c.comps = calloc(n > 0 ? (size_t) n : 1, sizeof(*c.comps));
		if (c.comps == NULL) {
			rv = OD_ENOMEM;
			goto out;
		}
		const cJSON *item;
		cJSON_ArrayForEach(item, comps)
		{
			char path[64];
			snprintf(path, sizeof(path),
			    "status_page.components[%zu]", c.n_comps);
			rv = parse_comp(
			    item, path, &c.comps[c.n_comps], err, errlen);
			c.n_comps++;
			if (rv != 0) {
				goto out;
			}
		}
	}
	if ((rv = parse_templates(sec, &c, err, errlen)) != 0) {
		goto out;
	}
	*out = c;
	return 0;
out:
	status_conf_fini(&c);
	return rv;
}

void
status_conf_fini(status_conf *c)
{
	if (c == NULL) {
		return;
	}
	for (size_t i = 0; i < c->n_comps; i++) {
		free(c->comps[i].id);
		free(c->comps[i].name);
		free(c->comps[i].group);
		free(c->comps[i].description);
	}
	free(c->comps);
	free(c->title);
	free(c->url);
	free(c->time_zone);
	free(c->page_id);
	free(c->bot_username);
	for (int i = 0; i < 4; i++) {
		free(c->templates[i]);
	}
	memset(c, 0, sizeof(*c));
}

/* ---- the schema of the status_page section (common/config) ---- */

static const config_field comp_fields[] = {
	{ .key = "id", .type = CONFIG_STRING, .max = 128 },
	{ .key = "name", .type = CONFIG_STRING, .max = 256 },
	{ .key = "group", .type = CONFIG_STRING, .max = 256 },
	{ .key = "description", .type = CONFIG_STRING, .max = 2048 },
	{ .key = NULL },
};
static const config_field comp_elem
    = { .type = CONFIG_STRING_OR_OBJECT, .max = 128, .members = comp_fields };
/* The public wording of automatic incidents (read by incident-service). */
static const config_field template_fields[] = {
	{ .key = "down", .type = CONFIG_STRING, .max = 1000 },
	{ .key = "degraded", .type = CONFIG_STRING, .max = 1000 },
	{ .key = "monitoring", .type = CONFIG_STRING, .max = 1000 },
	{ .key = "resolved", .type = CONFIG_STRING, .max = 1000 },
	{ .key = NULL },
};
static const config_field status_page_fields[] = {
	{ .key = "templates",
	    .type = CONFIG_OBJECT,
	    .members = template_fields },
	{ .key = "title", .type = CONFIG_STRING, .max = 256 },
	{ .key = "url", .type = CONFIG_STRING, .max = 2048 },
	{ .key = "time_zone", .type = CONFIG_STRING, .max = 64 },
	{ .key = "page_id", .type = CONFIG_STRING, .max = 64 },
	{ .key = "show_unlisted", .type = CONFIG_BOOL },
	{ .key = "resync_interval", .type = CONFIG_DURATION },
	{ .key = "history_interval", .type = CONFIG_DURATION },
	{ .key = "components",
	    .type = CONFIG_ARRAY,
	    .max = 1000,
	    .elem = &comp_elem },
	{ .key = NULL },
};
static const config_field status_page_section = { .key = "status_page",
	.type = CONFIG_OBJECT,
	.members = status_page_fields };

static int
status_page_check(const config *c, char *err, size_t errlen)
{
	status_conf sc;
	int rv = status_conf_parse(
	    config_section(c, "status_page"), &sc, err, errlen);
	if (rv == 0) {
		status_conf_fini(&sc);
	}
	return rv;
}
CONFIG_SCHEMA(status_page, status_page_section, status_page_check)
