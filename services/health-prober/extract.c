/*
 * extract — values out of probe bodies: a JSON field path for HTTP JSON
 * conditions and JSON metric targets, and a sample of Prometheus text
 * for Prometheus metric targets. Bodies come from the network: every
 * function here treats its input as hostile and bounded by len.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prober.h"
#include "util/util.h"

const cJSON *
prober_extract_json_path(const cJSON *root, const char *path)
{
	const cJSON *cur = root;
	const char *p = path;
	char key[128];

	while (cur != NULL && p != NULL && *p != '\0') {
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p == '[') {
			char *end;
			long idx = strtol(p + 1, &end, 10);
			if (end == p + 1 || *end != ']' || idx < 0
			    || !cJSON_IsArray(cur)) {
				return NULL;
			}
			cur = cJSON_GetArrayItem(cur, (int) idx);
			p = end + 1;
			continue;
		}
		size_t n = strcspn(p, ".[");
		if (n >= sizeof(key) || !cJSON_IsObject(cur)) {
			return NULL;
		}
		memcpy(key, p, n);
		key[n] = '\0';
		cur = cJSON_GetObjectItemCaseSensitive(cur, key);
		p += n;
	}
	return cur;
}

int
prober_extract_json_number(const cJSON *item, double *out)
{
	if (cJSON_IsNumber(item)) {
		*out = item->valuedouble;
		return 0;
	}
	if (cJSON_IsBool(item)) {
		*out = cJSON_IsTrue(item) ? 1 : 0;
		return 0;
	}
	if (cJSON_IsString(item) && item->valuestring != NULL) {
		char *end;
		double v = strtod(item->valuestring, &end);
		if (end != item->valuestring && *end == '\0' && isfinite(v)) {
			*out = v;
			return 0;
		}
	}
	return OD_EINVAL;
}

/* The item as text for eq/ne/contains: strings as is, others printed. */
static void
item_text(const cJSON *item, char *out, size_t size)
{
	if (cJSON_IsString(item) && item->valuestring != NULL) {
		od_strlcpy(out, item->valuestring, size);
	} else if (cJSON_IsBool(item)) {
		od_strlcpy(out, cJSON_IsTrue(item) ? "true" : "false", size);
	} else if (cJSON_IsNumber(item)) {
		snprintf(out, size, "%.17g", item->valuedouble);
	} else if (cJSON_IsNull(item)) {
		od_strlcpy(out, "null", size);
	} else {
		od_strlcpy(
		    out, cJSON_IsArray(item) ? "[array]" : "{object}", size);
	}
}

static bool
compare(const cJSON *item, const json_cond *c)
{
	char text[256];
	double v;

	switch (c->op) {
	case JSON_OP_EXISTS:
		return true;
	case JSON_OP_EQ:
	case JSON_OP_NE: {
		bool eq;
		if (c->is_num && prober_extract_json_number(item, &v) == 0) {
			eq = v == c->num;
		} else {
			item_text(item, text, sizeof(text));
			eq = strcmp(text, c->str != NULL ? c->str : "") == 0;
		}
		return c->op == JSON_OP_EQ ? eq : !eq;
	}
	case JSON_OP_CONTAINS:
		item_text(item, text, sizeof(text));
		return strstr(text, c->str != NULL ? c->str : "") != NULL;
	default:
		break;
	}
	if (prober_extract_json_number(item, &v) != 0) {
		return false;
	}
	switch (c->op) {
	case JSON_OP_GT:
		return v > c->num;
	case JSON_OP_GE:
		return v >= c->num;
	case JSON_OP_LT:
		return v < c->num;
	case JSON_OP_LE:
		return v <= c->num;
	default:
		return false;
	}
}

bool
prober_extract_json_cond(const char *body, size_t len, const json_cond *cond,
    char *why, size_t size)
{
	static const char *const ops[]
	    = { "exists", "==", "!=", ">", ">=", "<", "<=", "contains" };
	cJSON *root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
	const cJSON *item;
	bool ok = false;
	char text[64];

	if (root == NULL) {
		snprintf(why, size, "body is not JSON");
		return false;
	}
	if ((item = prober_extract_json_path(root, cond->path)) == NULL) {
		snprintf(why, size, "JSON field %.60s missing", cond->path);
		goto out;
	}
	if (!(ok = compare(item, cond))) {
		item_text(item, text, sizeof(text));
		snprintf(why, size, "JSON %.40s is %.30s, expected %s %.30s",
		    cond->path, text, ops[cond->op],
		    cond->str != NULL ? cond->str : "");
	}
out:
	cJSON_Delete(root);
	return ok;
}

/*
 * Does the label block {a="x",b="y"} (p at '{', bounded by end) include
 * every matcher of want? Values are compared in their escaped form.
 */
static bool
labels_match(const char *p, const char *end, const char *want)
{
	const char *w = want;

	while (w != NULL && *w != '\0') {
		const char *eq = strchr(w, '=');
		const char *q, *close;
		size_t nlen, vlen;
		bool found = false;

		while (*w == ',' || *w == ' ') {
			w++;
		}
		if (*w == '\0') {
			break;
		}
		eq = strchr(w, '=');
		if (eq == NULL || eq[1] != '"'
		    || (close = strchr(eq + 2, '"')) == NULL) {
			return false;
		}
		nlen = (size_t) (eq - w);
		vlen = (size_t) (close - (eq + 2));
		/* Look for name="value" after '{' or ',' in the block. */
		for (q = p; q + nlen + vlen + 3 <= end; q++) {
			if ((q == p || q[-1] == '{' || q[-1] == ','
			        || q[-1] == ' ')
			    && memcmp(q, w, nlen) == 0 && q[nlen] == '='
			    && q[nlen + 1] == '"'
			    && memcmp(q + nlen + 2, eq + 2, vlen) == 0
			    && q[nlen + 2 + vlen] == '"') {
				found = true;
				break;
			}
		}
		if (!found) {
			return false;
		}
		w = close + 1;
	}
	return true;
}

int
prober_extract_prometheus(const char *text, size_t len, const char *metric,
    const char *labels, double *out)
{
	const char *p = text, *end = text + len;
	size_t mlen = strlen(metric);

	if (labels != NULL && labels[0] != '\0'
	    && (strchr(labels, '=') == NULL || strchr(labels, '"') == NULL)) {
		return OD_EMALFORMED;
	}
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t) (end - p));
		const char *line = p, *q, *lb_end;
		char num[64];
		size_t n;

		if (eol == NULL) {
			eol = end;
		}
		p = eol + 1;
		if (line == eol || *line == '#'
		    || (size_t) (eol - line) <= mlen
		    || memcmp(line, metric, mlen) != 0) {
			continue;
		}
		q = line + mlen;
		lb_end = q;
		if (*q == '{') {
			/* The label block ends at the first '}' outside a
			 * quoted value. */
			bool quoted = false;
			for (lb_end = q + 1; lb_end < eol; lb_end++) {
				if (quoted && *lb_end == '\\') {
					lb_end++;
				} else if (*lb_end == '"') {
					quoted = !quoted;
				} else if (!quoted && *lb_end == '}') {
					break;
				}
			}
			if (lb_end >= eol) {
				continue;
			}
			if (!labels_match(q, lb_end, labels)) {
				continue;
			}
			q = lb_end + 1;
		} else if (*q != ' ' && *q != '\t') {
			continue; /* a longer name with this prefix */
		} else if (labels != NULL && labels[0] != '\0') {
			continue;
		}
		while (q < eol && (*q == ' ' || *q == '\t')) {
			q++;
		}
		n = 0;
		while (q + n < eol && q[n] != ' ' && q[n] != '\t'
		    && q[n] != '\r') {
			n++;
		}
		if (n == 0 || n >= sizeof(num)) {
			continue;
		}
		memcpy(num, q, n);
		num[n] = '\0';
		if (strcmp(num, "+Inf") == 0) {
			*out = INFINITY;
			return 0;
		}
		if (strcmp(num, "-Inf") == 0) {
			*out = -INFINITY;
			return 0;
		}
		char *e;
		double v = strtod(num, &e);
		if (*e == '\0') {
			*out = v;
			return 0;
		}
	}
	return OD_ENOTFOUND;
}
