#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util/util.h"

static void
clear_env(void)
{
	const char *vars[] = { "OPSDESK_CONFIG", "OPSDESK_ADMINS",
		"OPSDESK_ADMIN_CHAT", "OPSDESK_DATA_DIR", "OPSDESK_TICKET_URL",
		"OPSDESK_HTTP_ADDR", "OPSDESK_LOG_LEVEL", "OPSDESK_INSTANCE",
		NULL };
	for (int i = 0; vars[i]; i++) {
		unsetenv(vars[i]);
	}
}

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
	assert_int_equal(config_load_string(&c, "ticket-service", NULL,
	                     "{\"admins\":[1, \"9007199254740993\"]}", err,
	                     sizeof(err)),
	    0);
	assert_true(config_is_admin(c, 1));
	assert_true(config_is_admin(c, 42));
	assert_true(config_is_admin(c, 7));
	assert_true(config_is_admin(c, 9007199254740993LL));
	assert_false(config_is_admin(c, 2));
	assert_true(c->admin_chat == -1001234567890LL);
	assert_string_equal(c->store_dir, "/tmp/x/ticket-service");
	assert_string_equal(config_service_url(c, "ticket"),
	    "tcp://10.0.0.1:1");
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
	assert_int_equal(config_load_string(&c, "x", NULL, "{\"admins\":[\"bob\"]}",
	                     err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "admins[0]"));
	assert_null(c);
	assert_int_equal(
	    config_load_string(&c, "x", NULL, "{\"admins\":", err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "invalid JSON"));
	setenv("OPSDESK_ADMINS", "1,abc", 1);
	assert_int_equal(config_load_string(&c, "x", NULL, "{}", err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_ADMINS"));
	clear_env();
	setenv("OPSDESK_LOG_LEVEL", "loud", 1);
	assert_int_equal(config_load_string(&c, "x", NULL, "{}", err, sizeof(err)),
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
	assert_string_equal(err, "t.n: expected an integer from 6 to 10, got 5");
	assert_int_equal(
	    config_get_int(t, "t", "frac", 0, 0, 10, &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(
	    config_get_int(t, "t", "s", 0, 0, 10, &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(config_get_double(t, "t", "f", 0, 0, 2, &d, err,
	                     sizeof(err)),
	    0);
	assert_true(d == 1.5);
	assert_int_equal(
	    config_get_string(t, "t", "s", NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "hi");
	assert_int_equal(
	    config_get_string(t, "t", "n", NULL, &s, err, sizeof(err)),
	    OD_EINVAL);
	assert_string_equal(err, "t.n: expected a string, got a number");
	assert_int_equal(config_get_bool(t, "t", "b", false, &b, err,
	                     sizeof(err)),
	    0);
	assert_true(b);
	assert_int_equal(config_get_duration_ms(t, "t", "d", 0, 0,
	                     INT64_MAX, &i, err, sizeof(err)),
	    0);
	assert_int_equal(i, 90 * 60000);
	assert_int_equal(config_get_duration_ms(t, "t", "d2", 0, 0,
	                     INT64_MAX, &i, err, sizeof(err)),
	    0);
	assert_int_equal(i, 30000);
	assert_int_equal(config_get_duration_ms(t, "t", "bad", 0, 0,
	                     INT64_MAX, &i, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "t.bad: expected a duration"));
	static const char *const sev[] = { "critical", "high", "medium", "low",
		NULL };
	assert_int_equal(
	    config_get_enum(t, "t", "e", sev, 0, &e, err, sizeof(err)), 0);
	assert_int_equal(e, 1);
	assert_int_equal(
	    config_get_enum(t, "t", "s", sev, 0, &e, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "expected one of \"critical\""));
	assert_int_equal(config_get_array(t, "t", "arr", &j, err, sizeof(err)),
	    0);
	assert_non_null(j);
	assert_int_equal(config_get_array(t, "t", "obj", &j, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(config_get_object(t, "t", "obj", &j, err, sizeof(err)),
	    0);
	assert_int_equal(config_get_object(NULL, "t", "obj", &j, err,
	                     sizeof(err)),
	    0);
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
	assert_int_equal(config_load(&c, "x", NULL, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":3: invalid JSON"));
	unlink(path);
	assert_int_equal(config_load(&c, "x", NULL, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_CONFIG"));
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
