/*
 * render — everything about how text looks in the chat: Telegram HTML
 * escaping of outside text, the 4096-character split, keyboards, the
 * symbols for states and the times with relative ages. No business rules.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

void
gw_kbd_row(gw_keyboard *k)
{
	if (k->n_rows < GW_KBD_ROWS
	    && (k->n_rows == 0 || k->n_cols[k->n_rows - 1] > 0)) {
		k->n_cols[k->n_rows++] = 0;
	}
}

void
gw_kbd_button(gw_keyboard *k, const char *text, const char *data)
{
	if (k->n_rows == 0) {
		gw_kbd_row(k);
	}
	int r = k->n_rows - 1;
	if (k->n_cols[r] >= GW_KBD_COLS || data == NULL
	    || strlen(data) > GW_CBDATA_MAX || data[0] == '\0') {
		return;
	}
	gw_button *b = &k->b[r][k->n_cols[r]++];
	od_strlcpy(b->text, text, sizeof(b->text));
	od_strlcpy(b->data, data, sizeof(b->data));
}

cJSON *
gw_kbd_to_json(const gw_keyboard *k)
{
	if (k == NULL || k->n_rows == 0 || k->n_cols[0] == 0) {
		return NULL;
	}
	cJSON *markup = cJSON_CreateObject();
	cJSON *rows = cJSON_AddArrayToObject(markup, "inline_keyboard");
	if (rows == NULL) {
		cJSON_Delete(markup);
		return NULL;
	}
	for (int r = 0; r < k->n_rows; r++) {
		if (k->n_cols[r] == 0) {
			continue;
		}
		cJSON *row = cJSON_CreateArray();
		cJSON_AddItemToArray(rows, row);
		for (int c = 0; c < k->n_cols[r]; c++) {
			cJSON *b = cJSON_CreateObject();
			cJSON_AddStringToObject(b, "text", k->b[r][c].text);
			cJSON_AddStringToObject(
			    b, "callback_data", k->b[r][c].data);
			cJSON_AddItemToArray(row, b);
		}
	}
	return markup;
}

/* Bytes of the UTF-8 sequence starting at s (1 for a stray byte). */
static size_t
utf8_seq_len(const unsigned char *s)
{
	if (s[0] < 0x80) {
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0 && (s[1] & 0xc0) == 0x80) {
		return 2;
	}
	if ((s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80
	    && (s[2] & 0xc0) == 0x80) {
		return 3;
	}
	if ((s[0] & 0xf8) == 0xf0 && (s[1] & 0xc0) == 0x80
	    && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
		return 4;
	}
	return 1;
}

void
gw_render_text(sbuf *b, const char *s, size_t max)
{
	if (s == NULL) {
		return;
	}
	char *clean = od_utf8_sanitize(s, strlen(s));
	if (clean == NULL) {
		b->failed = true;
		return;
	}
	if (max > 0 && od_utf8_len(clean) > max) {
		/* Cut at a code point boundary, leaving room for "…". */
		size_t i = 0, n = 0;
		while (clean[i] != '\0' && n + 1 < max) {
			i += utf8_seq_len((const unsigned char *) clean + i);
			n++;
		}
		clean[i] = '\0';
		sbuf_append_tg_html(b, clean);
		sbuf_append(b, "…");
	} else {
		sbuf_append_tg_html(b, clean);
	}
	free(clean);
}

void
gw_render_time(sbuf *b, int64_t ms, int64_t now_ms)
{
	if (ms <= 0) {
		sbuf_append(b, "—");
		return;
	}
	char iso[32], age[48];
	od_format_iso8601(ms, iso, sizeof(iso));
	/* "2026-11-27T13:05:00Z" -> "2026-11-27 13:05 UTC" */
	iso[10] = ' ';
	iso[16] = '\0';
	od_format_age(ms, now_ms, age, sizeof(age));
	sbuf_printf(b, "%s UTC (%s)", iso, age);
}

const char *
gw_render_component_symbol(int st)
{
	static const char *const sym[] = { "⚪", "🟢", "🟡", "🔴", "🔧" };
	return (st >= 0 && st <= 4) ? sym[st] : sym[0];
}

const char *
gw_render_component_name(int st)
{
	static const char *const names[]
	    = { "unknown", "up", "degraded", "down", "maintenance" };
	return (st >= 0 && st <= 4) ? names[st] : names[0];
}

const char *
gw_render_public_name(const char *status)
{
	static const struct {
		const char *status;
		const char *name;
	} map[] = {
		{ "operational", "Operational" },
		{ "degraded_performance", "Degraded performance" },
		{ "partial_outage", "Partial outage" },
		{ "major_outage", "Major outage" },
		{ "under_maintenance", "Under maintenance" },
	};
	for (size_t i = 0; status != NULL && i < sizeof(map) / sizeof(map[0]);
	     i++) {
		if (strcmp(map[i].status, status) == 0) {
			return map[i].name;
		}
	}
	return "Unknown";
}

int
gw_render_public_rank(const char *status)
{
	static const char *const order[]
	    = { "operational", "under_maintenance", "degraded_performance",
		      "partial_outage", "major_outage", NULL };
	for (int i = 0; status != NULL && order[i] != NULL; i++) {
		if (strcmp(order[i], status) == 0) {
			return i;
		}
	}
	return 0;
}

const char *
gw_render_public_symbol(const char *status)
{
	static const struct {
		const char *status;
		const char *sym;
	} map[] = {
		{ "operational", "🟢" },
		{ "degraded_performance", "🟡" },
		{ "partial_outage", "🟠" },
		{ "major_outage", "🔴" },
		{ "under_maintenance", "🔧" },
		{ "none", "🟢" },
		{ "minor", "🟡" },
		{ "major", "🟠" },
		{ "critical", "🔴" },
		{ "maintenance", "🔧" },
	};
	for (size_t i = 0; status != NULL && i < sizeof(map) / sizeof(map[0]);
	     i++) {
		if (strcmp(map[i].status, status) == 0) {
			return map[i].sym;
		}
	}
	return "⚪";
}

#define NAME_OF(arr, v)                                                       \
	(((v) >= 0 && (size_t) (v) < sizeof(arr) / sizeof(arr[0])) ? arr[v]   \
	                                                           : arr[0])

const char *
gw_render_severity_name(int v)
{
	static const char *const n[]
	    = { "unspecified", "critical", "high", "medium", "low" };
	return NAME_OF(n, v);
}

const char *
gw_render_severity_symbol(int v)
{
	static const char *const n[] = { "⚪", "🔴", "🟠", "🟡", "🔵" };
	return NAME_OF(n, v);
}

const char *
gw_render_incident_status(int v)
{
	static const char *const n[] = { "unknown", "investigating",
		"identified", "monitoring", "resolved" };
	return NAME_OF(n, v);
}

const char *
gw_render_ticket_status(int v)
{
	static const char *const n[]
	    = { "unknown", "open", "pending", "resolved", "closed" };
	return NAME_OF(n, v);
}

const char *
gw_render_ticket_status_symbol(int v)
{
	static const char *const n[] = { "⚪", "🟢", "⏳", "✅", "⚫" };
	return NAME_OF(n, v);
}

const char *
gw_render_priority_name(int v)
{
	static const char *const n[]
	    = { "normal", "low", "normal", "high", "urgent" };
	return NAME_OF(n, v);
}

const char *
gw_render_tier_name(int v)
{
	static const char *const n[]
	    = { "free", "free", "pro", "elite", "ultra" };
	return NAME_OF(n, v);
}

size_t
gw_render_tg_len(const char *s, size_t n)
{
	size_t units = 0;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len((const unsigned char *) s + i);
		units += (l == 4) ? 2 : 1;
		i += l;
	}
	return units;
}

#define MAX_OPEN_TAGS 8

/* Tags open at some point of the text, to close and reopen at a cut. */
typedef struct tag_stack {
	char name[MAX_OPEN_TAGS][16];
	char open[MAX_OPEN_TAGS][128]; /* the whole opening tag */
	int n;
} tag_stack;

/* Update st with the tag at s[0..len) ("<b>", "</b>", "<a href=…>"). */
static void
tags_apply(tag_stack *st, const char *s, size_t len)
{
	bool closing = len > 1 && s[1] == '/';
	const char *p = s + (closing ? 2 : 1);
	size_t n = 0;
	while (p + n < s + len && p[n] != '>' && p[n] != ' ' && n < 15) {
		n++;
	}
	if (closing) {
		for (int i = st->n - 1; i >= 0; i--) {
			if (strlen(st->name[i]) == n
			    && memcmp(st->name[i], p, n) == 0) {
				st->n = i;
				return;
			}
		}
	} else if (st->n < MAX_OPEN_TAGS && len < sizeof(st->open[0])) {
		memcpy(st->name[st->n], p, n);
		st->name[st->n][n] = '\0';
		memcpy(st->open[st->n], s, len);
		st->open[st->n][len] = '\0';
		st->n++;
	}
}

static void
tags_close(sbuf *b, const tag_stack *st)
{
	for (int i = st->n - 1; i >= 0; i--) {
		sbuf_printf(b, "</%s>", st->name[i]);
	}
}

static void
tags_reopen(sbuf *b, const tag_stack *st)
{
	for (int i = 0; i < st->n; i++) {
		sbuf_append(b, st->open[i]);
	}
}

static int
parts_push(char ***parts, size_t *n, sbuf *b)
{
	char **np = realloc(*parts, (*n + 1) * sizeof(char *));
	if (np == NULL) {
		return OD_ENOMEM;
	}
	*parts = np;
	size_t len;
	char *s = sbuf_take(b, &len);
	if (s == NULL) {
		s = strdup("");
		if (s == NULL) {
			return OD_ENOMEM;
		}
	}
	np[(*n)++] = s;
	return 0;
}

/*
 * One pass over the text. A "unit" is a tag, an entity or one character:
 * cuts happen only between units. The last newline seen in the current
 * part is the preferred cut; the tag stack there is remembered so the cut
 * can close and reopen what is open.
 */
int
gw_render_split(const char *html, size_t max, char ***parts, size_t *n)
{
	int rv = 0;
	char **out = NULL;
	size_t nout = 0;
	sbuf cur = SBUF_INIT;
	tag_stack st = { .n = 0 }, at_nl = { .n = 0 }, start = { .n = 0 };
	size_t len = strlen(html);
	size_t part_start = 0; /* index in html of this part's first byte */
	size_t nl = 0;         /* index just after the last newline, 0 none */
	size_t units = 0, units_at_nl = 0;
	size_t reserve = 64; /* room for closing tags at a cut */

	if (max <= reserve * 2) {
		return OD_EINVAL;
	}
	for (size_t i = 0; i <= len;) {
		size_t ulen, uunits;
		if (i == len) {
			break;
		}
		if (html[i] == '<') {
			const char *e = memchr(html + i, '>', len - i);
			ulen = e ? (size_t) (e - (html + i)) + 1 : 1;
			uunits = 0;
		} else if (html[i] == '&') {
			const char *e = memchr(html + i, ';', len - i);
			ulen = (e && e - (html + i) < 8)
			    ? (size_t) (e - (html + i)) + 1
			    : 1;
			uunits = 1;
		} else {
			ulen = utf8_seq_len((const unsigned char *) html + i);
			uunits = (ulen == 4) ? 2 : 1;
		}
		if (units + uunits > max - reserve) {
			/* Cut at the last newline if the part has one, else
			 * here. */
			size_t cut = nl > part_start ? nl : i;
			tag_stack *open = nl > part_start ? &at_nl : &st;
			sbuf_reset(&cur);
			tags_reopen(&cur, &start);
			sbuf_append_len(
			    &cur, html + part_start, cut - part_start);
			tags_close(&cur, open);
			if ((rv = parts_push(&out, &nout, &cur)) != 0) {
				goto out;
			}
			start = *open;
			if (nl > part_start) {
				st = at_nl;
				i = cut;
			}
			part_start = cut;
			nl = 0;
			units = 0;
			units_at_nl = 0;
			/* The reopened tags count towards the next part. */
			continue;
		}
		if (html[i] == '<' && ulen > 1) {
			tags_apply(&st, html + i, ulen);
		}
		units += uunits;
		i += ulen;
		if (html[i - 1] == '\n' && ulen == 1) {
			nl = i;
			at_nl = st;
			units_at_nl = units;
		}
	}
	(void) units_at_nl;
	if (part_start < len || nout == 0) {
		sbuf_reset(&cur);
		tags_reopen(&cur, &start);
		sbuf_append(&cur, html + part_start);
		if ((rv = parts_push(&out, &nout, &cur)) != 0) {
			goto out;
		}
	}
	*parts = out;
	*n = nout;
	out = NULL;
	nout = 0;
out:
	gw_render_parts_free(out, nout);
	sbuf_free(&cur);
	return rv;
}

void
gw_render_parts_free(char **parts, size_t n)
{
	for (size_t i = 0; parts != NULL && i < n; i++) {
		free(parts[i]);
	}
	free(parts);
}

char *
gw_render_to_plain(const char *html)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&quot;", '"' } };
	sbuf b = SBUF_INIT;
	sbuf_append(&b, "");
	for (const char *p = html; *p != '\0';) {
		if (*p == '<') {
			const char *e = strchr(p, '>');
			if (e != NULL) {
				p = e + 1;
				continue;
			}
		}
		if (*p == '&') {
			bool done = false;
			for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]);
			     i++) {
				size_t l = strlen(ents[i].ent);
				if (strncmp(p, ents[i].ent, l) == 0) {
					sbuf_appendc(&b, ents[i].c);
					p += l;
					done = true;
					break;
				}
			}
			if (done) {
				continue;
			}
		}
		sbuf_appendc(&b, *p++);
	}
	if (sbuf_failed(&b)) {
		sbuf_free(&b);
		return NULL;
	}
	return sbuf_take(&b, NULL);
}
