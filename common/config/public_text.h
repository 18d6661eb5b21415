/*
 * public_text — the public wording of automatic incidents
 * (status_page.templates): incident-service writes these texts and
 * status-publisher recognises them, so both read the same keys and share
 * the same defaults and substitution here.
 */
#ifndef OPSDESK_PUBLIC_TEXT_H
#define OPSDESK_PUBLIC_TEXT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Indexes of the templates, in status_page.templates' key order. */
enum public_tmpl {
	PUBLIC_TMPL_DOWN = 0,
	PUBLIC_TMPL_DEGRADED = 1,
	PUBLIC_TMPL_MONITORING = 2,
	PUBLIC_TMPL_RESOLVED = 3,
	PUBLIC_TMPL_COUNT = 4,
};

/*
 * Reads the templates of sec (the status_page section; NULL: none) into
 * tmpl:
 * each key given replaces (and frees) tmpl[i] with a copy; keys not given
 * leave tmpl[i] as it is. A bad key fails naming it; what was read until
 * then stays in tmpl for the caller to free.
 */
int public_templates_parse(
    const cJSON *sec, char *tmpl[PUBLIC_TMPL_COUNT], char *err, size_t errlen);

/* tmpl (or, when NULL, the default of which) with "{component}" replaced
 * by name, truncated to size; out is always terminated. */
void public_text(const char *tmpl, enum public_tmpl which, const char *name,
    char *out, size_t size);

#endif /* OPSDESK_PUBLIC_TEXT_H */
