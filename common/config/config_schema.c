/*
 * config_schema — validating the file against the sections' schemas:
 * unknown keys (with the nearest known one), JSON types, duplicate keys,
 * sizes. See config.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_impl.h"
#include "util/util.h"

#define MAX_SECTIONS  32
#define PATH_MAX_LEN  256
#define ANY_ARRAY_MAX 1000000

static struct {
	const config_field *f;
	int (*check)(const config *c, char *err, size_t errlen);
} registry[MAX_SECTIONS];
static int n_registry;

void
config_register(const config_field *f,
    int (*check)(const config *c, char *err, size_t errlen))
{
	/* Constructors run before main, one thread: no lock needed. A
	 * section registered twice (a test linking two owners) keeps the
	 * first. */
	for (int i = 0; i < n_registry; i++) {
		if (strcmp(registry[i].f->key, f->key) == 0) {
			return;
		}
	}
	if (n_registry < MAX_SECTIONS) {
		registry[n_registry].f = f;
		registry[n_registry].check = check;
		n_registry++;
	}
}

const config_field *
config_schema_find(const char *name)
{
	for (int i = 0; i < n_registry; i++) {
		if (strcmp(registry[i].f->key, name) == 0) {
			return registry[i].f;
		}
	}
	return NULL;
}

int
config_check_all(const config *c, char *err, size_t errlen)
{
	for (int i = 0; i < n_registry; i++) {
		int rv;
		if (registry[i].check != NULL
		    && (rv = registry[i].check(c, err, errlen)) != 0) {
			return rv;
		}
	}
	return 0;
}

/* Levenshtein distance, capped: names are short. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64) {
		return 64;
	}
	for (size_t j = 0; j <= lb; j++) {
		row[j] = j;
	}
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best) {
				best = row[j] + 1;
			}
			if (row[j - 1] + 1 < best) {
				best = row[j - 1] + 1;
			}
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *
config_nearest(const char *key, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t) -1;
	size_t len = strlen(key);
	/* Close enough to be a typo: 2 edits, or a third of the name. */
	size_t limit = len / 3 > 2 ? len / 3 : 2;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(key, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	if (best_d <= limit) {
		return best;
	}
	/* A shortened name ("reminder" for "reminder_before"). */
	for (size_t i = 0; i < n && len >= 4; i++) {
		if (strncmp(names[i], key, len) == 0) {
			return names[i];
		}
	}
	return NULL;
}

int
config_unknown_key(const char *path, const char *key, const char *const *names,
    size_t n, char *err, size_t errlen)
{
	const char *near = config_nearest(key, names, n);
	sbuf b = SBUF_INIT;

	if (near != NULL) {
		config_fail(err, errlen,
		    "%s%s%s: unknown key, did you mean \"%s\"?", path,
		    *path ? "." : "", key, near);
		return OD_EINVAL;
	}
	for (size_t i = 0; i < n && i < 24; i++) {
		sbuf_printf(&b, "%s%s", i ? ", " : "", names[i]);
	}
	config_fail(err, errlen, "%s%s%s: unknown key (known keys: %s)", path,
	    *path ? "." : "", key, sbuf_failed(&b) ? "?" : sbuf_str(&b));
	sbuf_free(&b);
	return OD_EINVAL;
}

static const char *
expected_name(config_type t)
{
	switch (t) {
	case CONFIG_STRING:
		return "a string";
	case CONFIG_INT:
		return "an integer";
	case CONFIG_NUMBER:
		return "a number";
	case CONFIG_BOOL:
		return "true or false";
	case CONFIG_DURATION:
		return "a duration like \"30s\" or a number of seconds";
	case CONFIG_SCALAR:
		return "a string, number or boolean";
	case CONFIG_OBJECT:
	case CONFIG_MAP:
		return "an object";
	case CONFIG_STRING_OR_OBJECT:
		return "a string or an object";
	case CONFIG_ARRAY:
		return "an array";
	case CONFIG_ANY:
		break;
	}
	return "a value";
}

static void
child_path(char *out, const char *path, const char *key)
{
	snprintf(out, PATH_MAX_LEN, "%s%s%s", path, *path ? "." : "", key);
}

static bool
type_ok(const cJSON *v, config_type t)
{
	switch (t) {
	case CONFIG_ANY:
		return true;
	case CONFIG_STRING:
		return cJSON_IsString(v);
	case CONFIG_INT:
	case CONFIG_DURATION:
		return cJSON_IsNumber(v) || cJSON_IsString(v);
	case CONFIG_NUMBER:
		return cJSON_IsNumber(v);
	case CONFIG_BOOL:
		return cJSON_IsBool(v);
	case CONFIG_SCALAR:
		return cJSON_IsString(v) || cJSON_IsNumber(v)
		    || cJSON_IsBool(v);
	case CONFIG_OBJECT:
	case CONFIG_MAP:
		return cJSON_IsObject(v);
	case CONFIG_STRING_OR_OBJECT:
		return cJSON_IsString(v) || cJSON_IsObject(v);
	case CONFIG_ARRAY:
		return cJSON_IsArray(v);
	}
	return false;
}

static int
check_members(const cJSON *v, const char *path, const config_field *members,
    char *err, size_t errlen)
{
	const char *names[128];
	size_t n = 0;
	const cJSON *m;
	char sub[PATH_MAX_LEN];
	int rv;

	for (const config_field *f = members; f->key != NULL && n < 128; f++) {
		names[n++] = f->key;
	}
	cJSON_ArrayForEach(m, v)
	{
		const config_field *f = members;
		while (f->key != NULL && strcmp(f->key, m->string) != 0) {
			f++;
		}
		if (f->key == NULL) {
			return config_unknown_key(
			    path, m->string, names, n, err, errlen);
		}
		child_path(sub, path, m->string);
		if ((rv = config_check(m, sub, f, err, errlen)) != 0) {
			return rv;
		}
	}
	return 0;
}

int
config_check(const cJSON *v, const char *path, const config_field *f,
    char *err, size_t errlen)
{
	char sub[PATH_MAX_LEN];
	const cJSON *it;
	size_t i = 0;
	size_t max;
	int rv;

	if (cJSON_IsNull(v)) {
		return 0; /* null means the default, as in the getters */
	}
	if (!type_ok(v, f->type)) {
		return config_fail(err, errlen, "%s: expected %s, got %s",
		    path, expected_name(f->type), config_type_name(v));
	}
	if (cJSON_IsString(v)) {
		max = f->type == CONFIG_ANY ? CONFIG_ANY_STRING_MAX
		    : f->max != 0           ? f->max
		                            : CONFIG_STRING_MAX;
		if (v->valuestring != NULL && strlen(v->valuestring) > max) {
			return config_fail(err, errlen,
			    "%s: a string of at most %zu bytes expected, got "
			    "%zu",
			    path, max, strlen(v->valuestring));
		}
		return 0;
	}
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) {
		return 0;
	}
	max = f->max != 0 ? f->max : CONFIG_ARRAY_MAX;
	if (f->type != CONFIG_ANY && (size_t) cJSON_GetArraySize(v) > max) {
		return config_fail(err, errlen,
		    "%s: at most %zu entries, got %d", path, max,
		    cJSON_GetArraySize(v));
	}
	switch (f->type) {
	case CONFIG_OBJECT:
	case CONFIG_STRING_OR_OBJECT:
		return f->members != NULL
		    ? check_members(v, path, f->members, err, errlen)
		    : 0;
	case CONFIG_ARRAY:
		cJSON_ArrayForEach(it, v)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i++);
			if (f->elem != NULL
			    && (rv = config_check(
			            it, sub, f->elem, err, errlen))
			        != 0) {
				return rv;
			}
		}
		return 0;
	case CONFIG_MAP:
		cJSON_ArrayForEach(it, v)
		{
			child_path(sub, path, it->string);
			if (f->elem != NULL
			    && (rv = config_check(
			            it, sub, f->elem, err, errlen))
			        != 0) {
				return rv;
			}
		}
		return 0;
	default:
		return 0;
	}
}

static int
name_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *) a;
	const cJSON *y = *(const cJSON *const *) b;
	return strcmp(x->string, y->string);
}

/* Duplicate keys and sizes anywhere in the tree, schema or not. */
int
config_check_tree(const cJSON *v, const char *path, char *err, size_t errlen)
{
	char sub[PATH_MAX_LEN];
	const cJSON *it;
	size_t i = 0, n;
	int rv;

	if (cJSON_IsString(v)) {
		if (v->valuestring != NULL
		    && strlen(v->valuestring) > CONFIG_ANY_STRING_MAX) {
			return config_fail(err, errlen,
			    "%s: a string of at most %d bytes expected, got "
			    "%zu",
			    *path ? path : "config", CONFIG_ANY_STRING_MAX,
			    strlen(v->valuestring));
		}
		return 0;
	}
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) {
		return 0;
	}
	n = (size_t) cJSON_GetArraySize(v);
	if (n > ANY_ARRAY_MAX) {
		return config_fail(err, errlen,
		    "%s: at most %d entries, got %zu", *path ? path : "config",
		    ANY_ARRAY_MAX, n);
	}
	if (cJSON_IsObject(v) && n > 1) {
		const cJSON **sorted = malloc(n * sizeof(*sorted));
		if (sorted == NULL) {
			return OD_ENOMEM;
		}
		cJSON_ArrayForEach(it, v)
		{
			sorted[i++] = it;
		}
		qsort(sorted, n, sizeof(*sorted), name_cmp);
		for (i = 1; i < n; i++) {
			if (strcmp(sorted[i]->string, sorted[i - 1]->string)
			    == 0) {
				child_path(sub, path, sorted[i]->string);
				free(sorted);
				return config_fail(err, errlen,
				    "%s: duplicate key (each key may appear "
				    "once in an object)",
				    sub);
			}
		}
		free(sorted);
	}
	i = 0;
	cJSON_ArrayForEach(it, v)
	{
		if (cJSON_IsArray(v)) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i++);
		} else {
			child_path(sub, path, it->string);
		}
		if ((rv = config_check_tree(it, sub, err, errlen)) != 0) {
			return rv;
		}
	}
	return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * Returns the offset of the first bad byte, or len. */
size_t
config_utf8_check(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;
		unsigned min, cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return i;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (p[i + k] & 0xc0) != 0x80) {
				return i;
			}
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff
		    || (cp >= 0xd800 && cp <= 0xdfff)) {
			return i;
		}
		i += n + 1;
	}
	return len;
}
