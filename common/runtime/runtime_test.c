#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "runtime.h"
#include "util/util.h"

static void
test_args(void **state)
{
	runtime *rt = NULL;
	char *help[] = { "x", "--help", NULL };
	char *version[] = { "x", "--version", NULL };
	char *bad[] = { "x", "--frobnicate", NULL };
	assert_int_equal(
	    runtime_init(&rt, 2, help, "x", "127.0.0.1:0", "Help."), -1);
	assert_int_equal(
	    runtime_init(&rt, 2, version, "x", "127.0.0.1:0", "Help."), -1);
	assert_int_equal(
	    runtime_init(&rt, 2, bad, "x", "127.0.0.1:0", "Help."), 1);
	assert_null(rt);
}

static void
test_config_error(void **state)
{
	runtime *rt = NULL;
	char *argv[] = { "x", NULL };
	setenv("OPSDESK_CONFIG", "/nonexistent/opsdesk.json", 1);
	assert_int_equal(runtime_init(&rt, 1, argv, "x", NULL, "Help."), 1);
	assert_null(rt);
	unsetenv("OPSDESK_CONFIG");

	/* --check-config [FILE]: -1 (exit 0) when valid, 1 when not; the
	 * file named wins over $OPSDESK_CONFIG */
	char path[] = "/tmp/runtime-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"admins\":[1]}", 14), 14);
	char *check[] = { "x", "--check-config", path, NULL };
	char *check_env[] = { "x", "--check-config", NULL };
	setenv("OPSDESK_CONFIG", "/nonexistent/opsdesk.json", 1);
	assert_int_equal(runtime_init(&rt, 3, check, "x", NULL, "Help."), -1);
	assert_int_equal(
	    runtime_init(&rt, 2, check_env, "x", NULL, "Help."), 1);
	setenv("OPSDESK_CONFIG", path, 1);
	assert_int_equal(
	    runtime_init(&rt, 2, check_env, "x", NULL, "Help."), -1);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "{\"adminz\":[1]}", 14, 0), 14);
	assert_int_equal(runtime_init(&rt, 3, check, "x", NULL, "Help."), 1);
	assert_null(rt);
	close(fd);
	unlink(path);
	unsetenv("OPSDESK_CONFIG");
}

static int order[8];
static int n_order;

static void
record(void *arg)
{
	order[n_order++] = (int) (intptr_t) arg;
}

static int ticks;

static void
tick(void *arg)
{
	__atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
}

static void
test_defer_order_and_timers(void **state)
{
	runtime *rt = NULL;
	char *argv[] = { "x", NULL };
	char dir[] = "/tmp/opsdesk-rt-XXXXXX";
	assert_non_null(mkdtemp(dir));
	setenv("OPSDESK_DATA_DIR", dir, 1);
	setenv("OPSDESK_HTTP_ADDR", "127.0.0.1:0", 1);
	assert_int_equal(runtime_init(&rt, 1, argv, "x", NULL, "Help."), 0);
	assert_non_null(runtime_config(rt));
	assert_non_null(runtime_metrics(rt));
	assert_string_equal(runtime_service(rt), "x");
	n_order = 0;
	runtime_defer(rt, record, (void *) 1);
	runtime_defer(rt, record, (void *) 2);
	runtime_defer(rt, record, (void *) 3);
	assert_int_equal(runtime_every(rt, 0, tick, NULL), OD_EINVAL);
	assert_int_equal(runtime_every(rt, 10, tick, NULL), 0);
	assert_int_equal(runtime_http(rt, NULL, NULL), 0);
	for (int i = 0;
	     i < 300 && __atomic_load_n(&ticks, __ATOMIC_RELAXED) < 3; i++) {
		usleep(10000);
	}
	assert_true(__atomic_load_n(&ticks, __ATOMIC_RELAXED) >= 3);
	runtime_fini(rt);
	int after = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
	usleep(30000); /* an absence: nothing to poll for */
	/* timers stopped before the deferred callbacks ran */
	assert_int_equal(__atomic_load_n(&ticks, __ATOMIC_RELAXED), after);
	assert_int_equal(n_order, 3);
	assert_int_equal(order[0], 3);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 1);
	rmdir(dir);
	unsetenv("OPSDESK_DATA_DIR");
	unsetenv("OPSDESK_HTTP_ADDR");
}

static int n_counted;

static void
count(void *arg)
{
	(void) arg;
	n_counted++;
}

/* A defer that cannot be registered runs at once, so the caller never
 * frees arg itself; every registered one runs once at shutdown. */
static void
test_defer_full_runs_now(void **state)
{
	(void) state;
	runtime *rt = NULL;
	char *argv[] = { "x", NULL };
	int rv = 0, i;

	assert_int_equal(runtime_init(&rt, 1, argv, "x", NULL, "Help."), 0);
	n_counted = 0;
	for (i = 0; i < 100 && (rv = runtime_defer(rt, count, NULL)) == 0;
	     i++) { }
	assert_int_equal(rv, OD_ELIMIT);
	assert_int_equal(n_counted, 1);
	runtime_fini(rt);
	assert_int_equal(n_counted, i + 1);
}

static bool
admin_ok(int64_t uid)
{
	Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;
	a.user_id = uid;
	a.is_admin = true;
	return auth_rpc_allowed(NULL, "x", "m", &a, NULL, 0);
}

static void
rewrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* SIGHUP's reload: the admin list of the config as it is now (a config
 * that does not load keeps the running one), then every callback; auth
 * off, there are no credentials to read. */
static void
test_reload(void **state)
{
	(void) state;
	runtime *rt = NULL;
	char *argv[] = { "x", NULL };
	char path[] = "/tmp/runtime-reload-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	rewrite(path, "{\"admins\":[1]}");
	setenv("OPSDESK_CONFIG", path, 1);
	assert_int_equal(runtime_init(&rt, 1, argv, "x", NULL, "Help."), 0);
	assert_true(admin_ok(1));
	assert_false(admin_ok(2));
	n_counted = 0;
	assert_int_equal(runtime_on_reload(rt, count, NULL), 0);

	rewrite(path, "{\"admins\":[2]}");
	assert_int_equal(runtime_reload(rt), 0);
	assert_int_equal(n_counted, 1);
	assert_false(admin_ok(1));
	assert_true(admin_ok(2));

	rewrite(path, "{\"admins\":[3]");
	assert_int_not_equal(runtime_reload(rt), 0);
	assert_int_equal(n_counted, 2); /* the service's own reload runs */
	assert_true(admin_ok(2));
	assert_false(admin_ok(3));

	for (int i = 1; i < 8; i++) {
		assert_int_equal(runtime_on_reload(rt, count, NULL), 0);
	}
	assert_int_equal(runtime_on_reload(rt, count, NULL), OD_ELIMIT);
	runtime_fini(rt);
	unlink(path);
	unsetenv("OPSDESK_CONFIG");
	auth_clear_admins();
}

int
main(void)
{
	/* What is asserted must not depend on the shell running the tests. */
	config_env_clear();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_config_error),
		cmocka_unit_test(test_defer_order_and_timers),
		cmocka_unit_test(test_defer_full_runs_now),
		cmocka_unit_test(test_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
