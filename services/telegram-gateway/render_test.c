/* Units for render.c: escaping, the 4096 split, plain text, keyboards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway.h"

/* Telegram counts the text after entity parsing. */
static size_t
visible_len(const char *html)
{
	char *p = gw_render_to_plain(html);
	size_t n = gw_render_tg_len(p, strlen(p));
	free(p);
	return n;
}

static void
test_escape_hostile(void **state)
{
	sbuf b = SBUF_INIT;
	gw_render_text(&b, "<b>bold</b> & \"q\"", 0);
	assert_string_equal(
	    sbuf_str(&b), "&lt;b&gt;bold&lt;/b&gt; &amp; \"q\"");
	sbuf_reset(&b);
	/* Invalid UTF-8 is replaced, never passed through. */
	gw_render_text(&b,
	    "a\xff\xfe"
	    "b",
	    0);
	assert_string_equal(sbuf_str(&b),
	    "a\xef\xbf\xbd\xef\xbf\xbd"
	    "b");
	sbuf_reset(&b);
	gw_render_text(&b, "héllo wörld", 5);
	assert_string_equal(sbuf_str(&b), "héll…");
	sbuf_free(&b);
}

static void
test_split_short(void **state)
{
	char **parts;
	size_t n;
	assert_int_equal(gw_render_split("hello\nworld", 4096, &parts, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(parts[0], "hello\nworld");
	gw_render_parts_free(parts, n);
}

static void
test_split_lines(void **state)
{
	sbuf b = SBUF_INIT;
	char **parts;
	size_t n, total = 0;
	for (int i = 0; i < 300; i++) {
		sbuf_printf(&b, "<b>line %03d</b> some text here\n", i);
	}
	assert_int_equal(gw_render_split(sbuf_str(&b), 4096, &parts, &n), 0);
	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(parts[i]);
		assert_true(visible_len(parts[i]) <= 4096);
		/* Cut at line boundaries: each part ends with a newline. */
		assert_int_equal(parts[i][l - 1], '\n');
		total += l;
	}
	assert_int_equal(total, b.len);
	gw_render_parts_free(parts, n);
	sbuf_free(&b);
}

static void
test_split_long_line_keeps_tags(void **state)
{
	sbuf b = SBUF_INIT;
	char **parts;
	size_t n;
	sbuf_append(&b, "<b>");
	for (int i = 0; i < 5000; i++) {
		sbuf_append(&b, i % 7 == 0 ? "&amp;" : "é");
	}
	sbuf_append(&b, "</b>");
	assert_int_equal(gw_render_split(sbuf_str(&b), 4096, &parts, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(parts[i]);
		assert_true(visible_len(parts[i]) <= 4096);
		/* Every part is balanced HTML with whole entities. */
		assert_true(strncmp(parts[i], "<b>", 3) == 0);
		assert_true(strcmp(parts[i] + l - 4, "</b>") == 0);
		const char *amp = parts[i];
		while ((amp = strchr(amp, '&')) != NULL) {
			assert_true(strncmp(amp, "&amp;", 5) == 0);
			amp++;
		}
	}
	gw_render_parts_free(parts, n);
	sbuf_free(&b);
}

static void
test_plain(void **state)
{
	char *p = gw_render_to_plain("<b>T-1</b> &lt;x&gt; &amp; y");
	assert_string_equal(p, "T-1 <x> & y");
	free(p);
}

static void
test_keyboard(void **state)
{
	gw_keyboard k = { 0 };
	char big[80];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(gw_kbd_to_json(&k));
	gw_kbd_button(&k, "A", "1:h");
	gw_kbd_button(&k, "too big", big); /* dropped: over 64 bytes */
	gw_kbd_row(&k);
	gw_kbd_button(&k, "B", "1:st");
	cJSON *j = gw_kbd_to_json(&k);
	char *s = cJSON_PrintUnformatted(j);
	assert_string_equal(s,
	    "{\"inline_keyboard\":[[{\"text\":\"A\",\"callback_data\":\"1:h\"}"
	    "],"
	    "[{\"text\":\"B\",\"callback_data\":\"1:st\"}]]}");
	cJSON_free(s);
	cJSON_Delete(j);
}

static void
test_symbols(void **state)
{
	assert_string_equal(gw_render_component_symbol(1), "🟢");
	assert_string_equal(gw_render_component_symbol(3), "🔴");
	assert_string_equal(gw_render_component_symbol(99), "⚪");
	assert_string_equal(gw_render_public_symbol("major_outage"), "🔴");
	assert_string_equal(gw_render_public_symbol(NULL), "⚪");
}

/* /health's location line: each location's state and latency, one
 * that times out as not reporting (no stale state shown), names
 * escaped; nothing for a target without locations. */
static void
test_locations_line(void **state)
{
	Opsdesk__V1__TargetStatus t = OPSDESK__V1__TARGET_STATUS__INIT;
	Opsdesk__V1__LocationStatus l[3];
	Opsdesk__V1__LocationStatus *lp[3] = { &l[0], &l[1], &l[2] };
	sbuf b = SBUF_INIT;

	(void) state;
	gw_render_locations(&b, &t);
	assert_string_equal(sbuf_str(&b), "");
	for (int i = 0; i < 3; i++) {
		opsdesk__v1__location_status__init(&l[i]);
		l[i].reporting = true;
	}
	l[0].location = "eu-west";
	l[0].state = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DOWN;
	l[0].latency_ms = 0; /* a time-out: no latency shown */
	l[1].location = "us-east";
	l[1].state = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP;
	l[1].latency_ms = 12;
	l[2].location = "<ap>";
	l[2].state = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP;
	l[2].latency_ms = 30;
	l[2].reporting = false;
	t.locations = lp;
	t.n_locations = 3;
	gw_render_locations(&b, &t);
	assert_string_equal(sbuf_str(&b),
	    "\n    📍 eu-west 🔴 · us-east 🟢 12 ms · &lt;ap&gt; not "
	    "reporting");
	sbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_hostile),
		cmocka_unit_test(test_split_short),
		cmocka_unit_test(test_split_lines),
		cmocka_unit_test(test_split_long_line_keeps_tags),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_keyboard),
		cmocka_unit_test(test_symbols),
		cmocka_unit_test(test_locations_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
