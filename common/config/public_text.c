#include "public_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util/util.h"

static const char *const tmpl_keys[PUBLIC_TMPL_COUNT]
    = { "down", "degraded", "monitoring", "resolved" };

static const char *const default_tmpl[PUBLIC_TMPL_COUNT] = {
	"We are investigating an outage of {component}.",
	"We are investigating degraded performance of {component}.",
	"{component} has recovered. A fix has been implemented and we are "
	"monitoring the results.",
	"This incident has been resolved. {component} is operating normally.",
};

int
public_templates_parse(
    const cJSON *sec, char *tmpl[PUBLIC_TMPL_COUNT], char *err, size_t errlen)
{
	const cJSON *tm = NULL;
	int rv;

	if (sec == NULL
	    || (rv = config_get_object(
	            sec, "status_page", "templates", &tm, err, errlen))
	        != 0
	    || tm == NULL) {
		return sec == NULL ? 0 : rv;
	}
	for (int i = 0; i < PUBLIC_TMPL_COUNT; i++) {
		const char *v = NULL;
		if ((rv = config_get_string(tm, "status_page.templates",
		         tmpl_keys[i], NULL, &v, err, errlen))
		    != 0) {
			return rv;
		}
		if (v == NULL) {
			continue;
		}
		if (v[0] == '\0' || strlen(v) > 1000) {
			snprintf(err, errlen,
			    "status_page.templates.%s: expected 1 to 1000 "
			    "characters",
			    tmpl_keys[i]);
			return OD_EINVAL;
		}
		free(tmpl[i]);
		if ((tmpl[i] = strdup(v)) == NULL) {
			return OD_ENOMEM;
		}
	}
	return 0;
}

void
public_text(const char *tmpl, enum public_tmpl which, const char *name,
    char *out, size_t size)
{
	const char *t = tmpl != NULL ? tmpl : default_tmpl[which];
	static const char ph[] = "{component}";
	size_t n = 0;

	if (size == 0) {
		return;
	}
	while (*t != '\0' && n + 1 < size) {
		if (strncmp(t, ph, sizeof(ph) - 1) == 0) {
			int w = snprintf(out + n, size - n, "%s", name);
			n += w < 0 ? 0 : (size_t) w;
			n = n < size ? n : size - 1;
			t += sizeof(ph) - 1;
			continue;
		}
		out[n++] = *t++;
	}
	out[n] = '\0';
}
