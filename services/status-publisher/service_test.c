/*
 * status_service_start as main() runs it: a runtime on a temporary data
 * directory, peers that are not there (inproc addresses nobody listens
 * on), the chat summary over req/rep, the resync worker retrying, and
 * shutdown through runtime_fini (ASan checks that it frees everything).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "runtime/runtime.h"
#include "service.h"
#include "status.pb-c.h"
#include "util/util.h"

#define WAIT_MS 10000

static char dir[64];
static char url[64];

static void
set_env(void)
{
	char bus[64];
	/* Only what the test sets: nothing from the shell's OPSDESK_*. */
	unsetenv("OPSDESK_CONFIG");
	unsetenv("OPSDESK_ADMINS");
	unsetenv("OPSDESK_ADMIN_CHAT");
	unsetenv("OPSDESK_INSTANCE");
	setenv("OPSDESK_LOG_LEVEL", "error", 1);
	setenv("OPSDESK_DATA_DIR", dir, 1);
	setenv("OPSDESK_HTTP_ADDR", "127.0.0.1:0", 1);
	snprintf(url, sizeof(url), "inproc://status-svc-%d", (int) getpid());
	setenv("OPSDESK_STATUS_URL", url, 1);
	snprintf(bus, sizeof(bus), "inproc://status-none-%d", (int) getpid());
	setenv("OPSDESK_BUS_PUBLISH", bus, 1);
	setenv("OPSDESK_BUS_SUBSCRIBE", bus, 1);
	setenv("OPSDESK_PROBER_URL", bus, 1);
	setenv("OPSDESK_INCIDENT_URL", bus, 1);
}

static bool
contains(metrics *m, const char *needle)
{
	sbuf b;
	bool found;
	sbuf_init(&b);
	assert_int_equal(metrics_render(m, &b), 0);
	found = strstr(b.data, needle) != NULL;
	sbuf_free(&b);
	return found;
}

static void
test_start_serve_stop(void **state)
{
	(void) state;
	char *argv[] = { "status-publisher", NULL };
	runtime *rt = NULL;
	rpc_client *cli = NULL;
	Opsdesk__V1__StatusRequest req = OPSDESK__V1__STATUS_REQUEST__INIT;
	Opsdesk__V1__StatusSummaryRequest sr
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;
	Opsdesk__V1__StatusReply *rep = NULL;

	snprintf(dir, sizeof(dir), "/tmp/status_service_test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	set_env();
	assert_int_equal(runtime_init(&rt, 1, argv, "status-publisher",
	                     "127.0.0.1:0", "help"),
	    0);
	assert_int_equal(status_service_start(rt), 0);

	/* The chat summary answers from the (empty) read model. */
	assert_int_equal(rpc_client_open(&cli, url, 5000), 0);
	req.method_case = OPSDESK__V1__STATUS_REQUEST__METHOD_SUMMARY;
	req.summary = &sr;
	assert_int_equal(rpc_client_call(cli, &req.base,
	                     &opsdesk__v1__status_reply__descriptor,
	                     (ProtobufCMessage **) &rep, 0),
	    0);
	assert_null(rpc_reply_error(&rep->base));
	assert_int_equal(
	    rep->result_case, OPSDESK__V1__STATUS_REPLY__RESULT_SUMMARY);
	opsdesk__v1__status_reply__free_unpacked(rep, NULL);
	rpc_client_close(cli);

	/* The peers are not there: each source is tried, and counted. */
	int64_t end = od_mono_ms() + WAIT_MS;
	while (!contains(runtime_metrics(rt),
	           "opsdesk_resyncs_total{source=\"incident-service\","
	           "result=\"failed\"} ")
	    && od_mono_ms() < end) {
		nng_msleep(10);
	}
	assert_true(contains(runtime_metrics(rt),
	    "opsdesk_resyncs_total{source=\"health-prober\","
	    "result=\"failed\"} "));

	runtime_fini(rt);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_serve_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
