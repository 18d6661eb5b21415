#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util/util.h"

static void
clear_env(void)
{
	config_env_clear();
}

/* An owner's schema, as a service declares it: the section "t" of the
 * getter tests takes any members, "demo" is strict. */
static const config_field t_section = { .key = "t", .type = CONFIG_OBJECT };
CONFIG_SCHEMA(t, t_section, NULL)

static const config_field demo_throttle_fields[] = {
	{ .key = "enabled", .type = CONFIG_BOOL },
	{ .key = "chat_per_second", .type = CONFIG_INT },
	{ .key = NULL },
};
static const config_field demo_item_fields[] = {
	{ .key = "id", .type = CONFIG_STRING, .max = 8 },
	{ .key = "interval", .type = CONFIG_DURATION },
	{ .key = NULL },
};
static const config_field demo_item
    = { .type = CONFIG_OBJECT, .members = demo_item_fields };
static const config_field demo_tag = { .type = CONFIG_STRING };
static const config_field demo_fields[] = {
	{ .key = "title", .type = CONFIG_STRING },
	{ .key = "throttle",
	    .type = CONFIG_OBJECT,
	    .members = demo_throttle_fields },
	{ .key = "items", .type = CONFIG_ARRAY, .max = 3, .elem = &demo_item },
	{ .key = "tags", .type = CONFIG_MAP, .elem = &demo_tag },
	{ .key = NULL },
};
static const config_field demo_section
    = { .key = "demo", .type = CONFIG_OBJECT, .members = demo_fields };
static int demo_checks;
static int
demo_check(const config *c, char *err, size_t errlen)
{
	(void) c;
	demo_checks++;
	snprintf(err, errlen, "demo: checked");
	return OD_EINVAL;
}
CONFIG_SCHEMA(demo, demo_section, demo_check)

static void
test_defaults_and_env(void **state)
{
	clear_env();
	config *c;
	char err[256] = "";
	assert_int_equal(config_load_string(&c, "ticket-service",
	                     "127.0.0.1:9410", "{}", err, sizeof(err)),
	    0);
	assert_string_equal(c->ticket_url, "tcp://127.0.0.1:7410");
	assert_string_equal(c->bus_publish, "tcp://127.0.0.1:7400");
	assert_string_equal(c->bus_subscribe, "tcp://127.0.0.1:7401");
	assert_string_equal(c->http_addr, "127.0.0.1:9410");
	assert_string_equal(c->store_dir, "./var/data/ticket-service");
	assert_int_equal(c->n_admins, 0);
	config_free(c);

	setenv("OPSDESK_ADMINS", "42, 7", 1);
	setenv("OPSDESK_ADMIN_CHAT", "-1001234567890", 1);
	setenv("OPSDESK_DATA_DIR", "/tmp/x", 1);
	setenv("OPSDESK_TICKET_URL", "tcp://10.0.0.1:1", 1);
	assert_int_equal(
	    config_load_string(&c, "ticket-service", NULL,
	        "{\"admins\":[1, \"9007199254740993\"]}", err, sizeof(err)),
	    0);
	assert_true(config_is_admin(c, 1));
	assert_true(config_is_admin(c, 42));
	assert_true(config_is_admin(c, 7));
	assert_true(config_is_admin(c, 9007199254740993LL));
	assert_false(config_is_admin(c, 2));
	assert_true(c->admin_chat == -1001234567890LL);
	assert_string_equal(c->store_dir, "/tmp/x/ticket-service");
	assert_string_equal(
	    config_service_url(c, "ticket"), "tcp://10.0.0.1:1");
	assert_null(config_service_url(c, "nope"));
	config_free(c);
	clear_env();
}

static void
test_errors_name_the_key(void **state)
{
	clear_env();
	config *c = NULL;
	char err[256];
	assert_int_equal(config_load_string(&c, "x", NULL,
	                     "{\"admins\":[\"bob\"]}", err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "admins[0]"));
	assert_null(c);
	assert_int_equal(config_load_string(
	                     &c, "x", NULL, "{\"admins\":", err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "invalid JSON"));
	setenv("OPSDESK_ADMINS", "1,abc", 1);
	assert_int_equal(
	    config_load_string(&c, "x", NULL, "{}", err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_ADMINS"));
	clear_env();
	setenv("OPSDESK_LOG_LEVEL", "loud", 1);
	assert_int_equal(
	    config_load_string(&c, "x", NULL, "{}", err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_LOG_LEVEL"));
	clear_env();
}

static void
test_typed_getters(void **state)
{
	clear_env();
	config *c;
	char err[256];
	assert_int_equal(
	    config_load_string(&c, "x", NULL,
	        "{\"t\":{\"n\":5,\"f\":1.5,\"s\":\"hi\",\"b\":true,"
	        "\"d\":\"90m\",\"d2\":30,\"e\":\"high\",\"bad\":\"x\","
	        "\"frac\":1.5,\"arr\":[1],\"obj\":{}}}",
	        err, sizeof(err)),
	    0);
	const cJSON *t = config_section(c, "t");
	int64_t i;
	double d;
	const char *s;
	bool b;
	int e;
	const cJSON *j;
	assert_int_equal(
	    config_get_int(t, "t", "n", 0, 0, 10, &i, err, sizeof(err)), 0);
	assert_int_equal(i, 5);
	assert_int_equal(
	    config_get_int(t, "t", "missing", 3, 0, 10, &i, err, sizeof(err)),
	    0);
	assert_int_equal(i, 3);
	assert_int_equal(
	    config_get_int(t, "t", "n", 0, 6, 10, &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_string_equal(
	    err, "t.n: expected an integer from 6 to 10, got 5");
	assert_int_equal(
	    config_get_int(t, "t", "frac", 0, 0, 10, &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(
	    config_get_int(t, "t", "s", 0, 0, 10, &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(
	    config_get_double(t, "t", "f", 0, 0, 2, &d, err, sizeof(err)), 0);
	assert_true(d == 1.5);
	assert_int_equal(
	    config_get_string(t, "t", "s", NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "hi");
	assert_int_equal(
	    config_get_string(t, "t", "n", NULL, &s, err, sizeof(err)),
	    OD_EINVAL);
	assert_string_equal(err, "t.n: expected a string, got a number");
	assert_int_equal(
	    config_get_bool(t, "t", "b", false, &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(config_get_duration_ms(t, "t", "d", 0, 0, INT64_MAX,
	                     &i, err, sizeof(err)),
	    0);
	assert_int_equal(i, 90 * 60000);
	assert_int_equal(config_get_duration_ms(t, "t", "d2", 0, 0, INT64_MAX,
	                     &i, err, sizeof(err)),
	    0);
	assert_int_equal(i, 30000);
	assert_int_equal(config_get_duration_ms(t, "t", "bad", 0, 0, INT64_MAX,
	                     &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "t.bad: expected a duration"));
	static const char *const sev[]
	    = { "critical", "high", "medium", "low", NULL };
	assert_int_equal(
	    config_get_enum(t, "t", "e", sev, 0, &e, err, sizeof(err)), 0);
	assert_int_equal(e, 1);
	assert_int_equal(
	    config_get_enum(t, "t", "s", sev, 0, &e, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "expected one of \"critical\""));
	assert_int_equal(
	    config_get_array(t, "t", "arr", &j, err, sizeof(err)), 0);
	assert_non_null(j);
	assert_int_equal(
	    config_get_array(t, "t", "obj", &j, err, sizeof(err)), OD_EINVAL);
	assert_int_equal(
	    config_get_object(t, "t", "obj", &j, err, sizeof(err)), 0);
	assert_int_equal(
	    config_get_object(NULL, "t", "obj", &j, err, sizeof(err)), 0);
	assert_null(j);
	config_free(c);
}

static void
test_file(void **state)
{
	clear_env();
	char path[] = "/tmp/opsdesk-config-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "{\n \"admin_chat\": 5,\n \"admins\": [3]\n}\n";
	assert_int_equal(write(fd, text, strlen(text)), (int) strlen(text));
	close(fd);
	setenv("OPSDESK_CONFIG", path, 1);
	config *c;
	char err[256];
	assert_int_equal(config_load(&c, "x", NULL, err, sizeof(err)), 0);
	assert_string_equal(c->path, path);
	assert_true(c->admin_chat == 5);
	assert_true(config_is_admin(c, 3));
	config_free(c);
	/* a syntax error names the file and the line */
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *bad = "{\n \"admins\": [3,\n}\n";
	assert_int_equal(write(fd, bad, strlen(bad)), (int) strlen(bad));
	close(fd);
	assert_int_equal(
	    config_load(&c, "x", NULL, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":3: invalid JSON"));
	unlink(path);
	assert_int_equal(
	    config_load(&c, "x", NULL, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_CONFIG"));
	clear_env();
}

/* load json; returns the error text ("" when it loaded). */
static const char *
load_err(const char *json)
{
	static char err[512];
	config *c = NULL;
	err[0] = '\0';
	if (config_load_string(&c, "x", NULL, json, err, sizeof(err)) == 0) {
		assert_string_equal(err, "");
		config_free(c);
		return "";
	}
	assert_null(c);
	assert_true(err[0] != '\0');
	return err;
}

static void
test_schema_unknown_keys(void **state)
{
	(void) state;
	clear_env();
	/* a typo names its path and the nearest known key */
	assert_string_equal(load_err("{\"adminz\":[1]}"),
	    "adminz: unknown key, did you mean \"admins\"?");
	assert_string_equal(load_err("{\"demo\":{\"throtle\":{}}}"),
	    "demo.throtle: unknown key, did you mean \"throttle\"?");
	assert_string_equal(
	    load_err("{\"demo\":{\"throttle\":{\"enabeld\":true}}}"),
	    "demo.throttle.enabeld: unknown key, did you mean \"enabled\"?");
	assert_string_equal(load_err("{\"demo\":{\"items\":[{\"id\":\"a\"},"
	                             "{\"intervall\":\"1s\"}]}}"),
	    "demo.items[1].intervall: unknown key, did you mean "
	    "\"interval\"?");
	/* nothing close: the known keys are listed */
	assert_string_equal(load_err("{\"demo\":{\"zzzzzz\":1}}"),
	    "demo.zzzzzz: unknown key (known keys: title, throttle, items, "
	    "tags)");
	/* a section another executable reads is known, not checked here */
	assert_string_equal(load_err("{\"gateway\":{\"anything\":1}}"), "");
	/* maps take any key; their values are still typed */
	assert_string_equal(
	    load_err("{\"demo\":{\"tags\":{\"a\":\"b\"}}}"), "");
	assert_string_equal(load_err("{\"demo\":{\"tags\":{\"a\":1}}}"),
	    "demo.tags.a: expected a string, got a number");
	/* types */
	assert_string_equal(load_err("{\"demo\":{\"throttle\":[]}}"),
	    "demo.throttle: expected an object, got an array");
	assert_string_equal(
	    load_err("{\"demo\":{\"throttle\":{\"enabled\":1}}}"),
	    "demo.throttle.enabled: expected true or false, got a number");
	assert_string_equal(load_err("{\"admins\":[true]}"),
	    "admins[0]: expected an integer, got a boolean");
	/* null is "the default", as for the getters */
	assert_string_equal(load_err("{\"demo\":{\"title\":null}}"), "");
	/* the deeper check runs only when asked (--check-config) */
	config *c;
	char err[128];
	assert_int_equal(
	    config_load_string(&c, "x", NULL, "{}", err, sizeof(err)), 0);
	assert_int_equal(demo_checks, 0);
	assert_int_equal(config_check_all(c, err, sizeof(err)), OD_EINVAL);
	assert_string_equal(err, "demo: checked");
	assert_int_equal(demo_checks, 1);
	config_free(c);
}

static void
test_schema_duplicates_utf8_sizes(void **state)
{
	(void) state;
	clear_env();
	assert_string_equal(load_err("{\"admins\":[1],\"admins\":[2]}"),
	    "admins: duplicate key (each key may appear once in an object)");
	assert_string_equal(
	    load_err("{\"gateway\":{\"x\":{\"a\":1,\"b\":2,\"a\":3}}}"),
	    "gateway.x.a: duplicate key (each key may appear once in an "
	    "object)");
	/* invalid UTF-8: a stray continuation byte, an overlong "/", a
	 * surrogate, a truncated sequence at the end */
	assert_string_equal(load_err("{\"demo\":{\"title\":\"a\x80\"}}"),
	    "config: invalid UTF-8 at byte 19");
	assert_non_null(strstr(load_err("{\"t\":\"\xc0\xaf\"}"), "UTF-8"));
	assert_non_null(strstr(load_err("{\"t\":\"\xed\xa0\x80\"}"), "UTF-8"));
	assert_non_null(strstr(load_err("{\"t\":\"\xe2\x82"), "UTF-8"));
	assert_string_equal(
	    load_err(
	        "{\"demo\":{\"title\":\"caf\xc3\xa9 \xf0\x9f\x9a\x80\"}}"),
	    "");
	/* sizes: a schema's bound, the default bound, any string */
	assert_string_equal(
	    load_err("{\"demo\":{\"items\":[{\"id\":\"123456789\"}]}}"),
	    "demo.items[0].id: a string of at most 8 bytes expected, got 9");
	assert_string_equal(load_err("{\"demo\":{\"items\":[{},{},{},{}]}}"),
	    "demo.items: at most 3 entries, got 4");
	size_t big = 5u << 20; /* a 5 MB title */
	char *json = malloc(big + 64);
	assert_non_null(json);
	strcpy(json, "{\"demo\":{\"title\":\"");
	size_t off = strlen(json);
	memset(json + off, 'x', big);
	strcpy(json + off + big, "\"}}");
	assert_string_equal(load_err(json),
	    "demo.title: a string of at most 4096 bytes expected, got "
	    "5242880");
	/* in a section without a schema here, the bound for any string */
	strcpy(json, "{\"gateway\":{\"title\":\"");
	off = strlen(json);
	memset(json + off, 'x', big);
	strcpy(json + off + big, "\"}}");
	assert_string_equal(load_err(json),
	    "gateway.title: a string of at most 65536 bytes expected, got "
	    "5242880");
	free(json);
}

static void
test_schema_file_limits(void **state)
{
	(void) state;
	clear_env();
	char path[] = "/tmp/opsdesk-config-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	/* bad UTF-8 in a file names the line */
	const char *text = "{\n \"demo\": {\n  \"title\": \"\xff\"}}\n";
	assert_int_equal(write(fd, text, strlen(text)), (int) strlen(text));
	config *c = NULL;
	char err[512];
	setenv("OPSDESK_CONFIG", path, 1);
	assert_int_equal(
	    config_load(&c, "x", NULL, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, ":3: invalid UTF-8"));
	/* a file over the limit is refused before it is parsed */
	assert_int_equal(ftruncate(fd, CONFIG_FILE_MAX + 1), 0);
	assert_int_equal(
	    config_load(&c, "x", NULL, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "larger than"));
	/* config_load_file reads the file named, not $OPSDESK_CONFIG */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(write(fd, "{\"admins\":[4]}", 14), 14);
	close(fd);
	setenv("OPSDESK_CONFIG", "/nonexistent", 1);
	assert_int_equal(
	    config_load_file(&c, path, "x", NULL, err, sizeof(err)), 0);
	assert_true(config_is_admin(c, 4));
	config_free(c);
	unlink(path);
	clear_env();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_env),
		cmocka_unit_test(test_errors_name_the_key),
		cmocka_unit_test(test_typed_getters),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_schema_unknown_keys),
		cmocka_unit_test(test_schema_duplicates_utf8_sizes),
		cmocka_unit_test(test_schema_file_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
