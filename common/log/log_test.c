#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "log.h"

/* Capture what the logger writes through a pipe. */
static char *
capture(void (*fn)(void))
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	log_set_fd(fds[1]);
	fn();
	log_set_fd(2);
	close(fds[1]);
	static char buf[65536];
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
write_lines(void)
{
	log_info("hello %s %d", "world", 7);
	log_debug("hidden at info level");
	log_kv(LOG_WARN, "token is 123456:ABC-secret", "url",
	    "https://api.telegram.org/bot123456:ABC-secret/getMe", "bad",
	    "\xff\"quote\"", NULL);
}

static void
test_json_lines_and_redaction(void **state)
{
	log_init("test-service", "host:1", LOG_INFO);
	log_add_secret("123456:ABC-secret");
	char *out = capture(write_lines);
	assert_null(strstr(out, "ABC-secret"));
	assert_null(strstr(out, "hidden"));
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_string_equal(
	    cJSON_GetObjectItem(j, "msg")->valuestring, "hello world 7");
	assert_string_equal(
	    cJSON_GetObjectItem(j, "level")->valuestring, "info");
	assert_string_equal(
	    cJSON_GetObjectItem(j, "service")->valuestring, "test-service");
	assert_non_null(cJSON_GetObjectItem(j, "ts"));
	cJSON_Delete(j);
	j = cJSON_Parse(nl + 1);
	assert_non_null(j);
	assert_string_equal(
	    cJSON_GetObjectItem(j, "msg")->valuestring, "token is [REDACTED]");
	assert_string_equal(cJSON_GetObjectItem(j, "url")->valuestring,
	    "https://api.telegram.org/bot[REDACTED]/getMe");
	assert_string_equal(cJSON_GetObjectItem(j, "bad")->valuestring,
	    "\xef\xbf\xbd\"quote\"");
	cJSON_Delete(j);

	char s[128] = "error calling bot123456:ABC-secret/x";
	log_redact(s, sizeof(s));
	assert_string_equal(s, "error calling bot[REDACTED]/x");
}

static void
test_levels(void **state)
{
	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("error"), LOG_ERROR);
	assert_int_equal(log_level_parse("loud"), -1);
	log_set_level(LOG_ERROR);
	assert_int_equal(log_get_level(), LOG_ERROR);
	log_set_level(99);
	assert_int_equal(log_get_level(), LOG_ERROR);
	log_set_level(LOG_INFO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_lines_and_redaction),
		cmocka_unit_test(test_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
