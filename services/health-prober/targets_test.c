/* Unit tests: target config parsing, validation errors, shards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prober.h"
#include "util/util.h"

/* Load json; on success *ts is filled and 0 returned, else err holds the
 * message. */
static int
load(const char *json, const char *shard, target_set *ts, char *err,
    size_t errlen)
{
	config *c = NULL;
	int rv;
	/* The section's schema (unknown keys, JSON types) is checked as the
	 * file loads; the rest by prober_targets_load. */
	if ((rv = config_load_string(
	         &c, "health-prober", "127.0.0.1:9430", json, err, errlen))
	    != 0) {
		return rv;
	}
	rv = prober_targets_load(c, shard, ts, err, errlen);
	config_free(c);
	return rv;
}

static void
test_full_http_target(void **state)
{
	target_set ts;
	char err[256] = "";
	const char *json = "{\"targets\":[{\"id\":\"web\",\"name\":\"Web "
	                   "app\",\"group\":\"Frontend\",\"kind\":\"http\","
	                   "\"url\":\"https://example.org/healthz\","
	                   "\"interval\":\"15s\",\"timeout\":\"5s\","
	                   "\"expect_status\":[200,\"3xx\",\"401-403\"],"
	                   "\"body_contains\":\"ok\",\"json\":{\"path\":"
	                   "\"db.lag\",\"op\":\"lt\",\"value\":5},"
	                   "\"degraded_latency\":\"800ms\","
	                   "\"criticality\":\"critical\",\"public\":true}]}";
	(void) state;
	assert_int_equal(load(json, NULL, &ts, err, sizeof(err)), 0);
	assert_int_equal(ts.n, 1);
	target *t = &ts.v[0];
	assert_string_equal(t->id, "web");
	assert_string_equal(t->name, "Web app");
	assert_int_equal(t->kind, PROBE_HTTP);
	assert_int_equal(t->interval_ms, 15000);
	assert_int_equal(t->timeout_ms, 5000);
	assert_int_equal(t->failure_threshold, 3);
	assert_int_equal(t->success_threshold, 2);
	assert_int_equal(t->criticality, 1);
	assert_true(t->public);
	assert_int_equal(t->n_status, 3);
	assert_int_equal(t->status[1].lo, 300);
	assert_int_equal(t->status[1].hi, 399);
	assert_int_equal(t->status[2].lo, 401);
	assert_int_equal(t->status[2].hi, 403);
	assert_non_null(t->json);
	assert_int_equal(t->json->op, JSON_OP_LT);
	assert_true(t->json->is_num);
	assert_null(t->req);
	assert_int_equal(t->degraded_ms, 800);
	assert_int_equal(t->cert_warn_days, 14);
	assert_true(t->tls_verify);
	assert_string_equal(t->method, "GET");
	assert_ptr_equal(prober_target_find(&ts, "web"), t);
	assert_null(prober_target_find(&ts, "nope"));
	/* defaults of the prober section */
	assert_int_equal(ts.settings.concurrency, 64);
	assert_int_equal(ts.settings.day_retention_ms, 400 * 86400000LL);
	prober_target_set_free(&ts);
}

static void
test_other_kinds(void **state)
{
	target_set ts;
	char err[256] = "";
	const char *json
	    = "{\"prober\":{\"concurrency\":8},\"targets\":["
	      "{\"id\":\"db\",\"kind\":\"tcp\",\"host\":\"127.0.0.1\","
	      "\"port\":5432,\"failure_threshold\":1,\"success_threshold\":5},"
	      "{\"id\":\"tickets\",\"kind\":\"service\",\"service\":"
	      "\"ticket\"},"
	      "{\"id\":\"biz\",\"kind\":\"metric\",\"url\":\"http://x/m\","
	      "\"format\":\"prometheus\",\"values\":[{\"name\":\"api_"
	      "requests\","
	      "\"metric\":\"http_requests_total\",\"labels\":\"code="
	      "\\\"200\\\"\"}]}"
	      "]}";
	(void) state;
	assert_int_equal(load(json, "", &ts, err, sizeof(err)), 0);
	assert_int_equal(ts.n, 3);
	assert_int_equal(ts.settings.concurrency, 8);
	assert_int_equal(ts.v[0].kind, PROBE_TCP);
	assert_int_equal(ts.v[0].port, 5432);
	assert_int_equal(ts.v[0].failure_threshold, 1);
	assert_int_equal(ts.v[0].success_threshold, 5);
	assert_string_equal(ts.v[1].service_url, "tcp://127.0.0.1:7410");
	assert_true(ts.v[2].prometheus);
	assert_int_equal(ts.v[2].n_metrics, 1);
	assert_string_equal(ts.v[2].metrics[0].labels, "code=\"200\"");
	prober_target_set_free(&ts);
	prober_target_set_free(NULL);
}

/* Each bad config fails with a message naming the key. */
static void
test_validation_errors(void **state)
{
	static const struct {
		const char *json;
		const char *want;
	} cases[] = {
		{ "{\"targets\":{}}", "targets" },
		{ "{\"targets\":[{\"kind\":\"http\"}]}", "targets[0].id" },
		{ "{\"targets\":[{\"id\":\"a b\",\"kind\":\"http\"}]}",
		    "targets[0].id" },
		{ "{\"targets\":[{\"id\":\"a\"}]}", "targets[0].kind" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"ftp\"}]}",
		    "targets[0].kind" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\"}]}",
		    "targets[0].url" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"ftp://x\"}]}",
		    "targets[0].url" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"interval\":\"soon\"}]}",
		    "targets[0].interval" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"interval\":\"5s\",\"timeout\":\"10s\"}]}",
		    "targets[0].timeout" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"failure_threshold\":0}]}",
		    "targets[0].failure_threshold" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"expect_status\":[99]}]}",
		    "targets[0].expect_status" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"criticality\":\"huge\"}]}",
		    "targets[0].criticality" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"json\":{\"path\":\"a\",\"op\":\"gt\","
		  "\"value\":\"x\"}}]}",
		    "targets[0].json.value" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"tcp\",\"host\":"
		  "\"h\"}]}",
		    "targets[0].port" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"service\","
		  "\"service\":\"bogus\"}]}",
		    "targets[0].service" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"metric\",\"url\":"
		  "\"http://x\"}]}",
		    "targets[0].values" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"metric\",\"url\":"
		  "\"http://x\",\"format\":\"prometheus\",\"values\":[{"
		  "\"name\":\"v\"}]}]}",
		    "targets[0].values[0].metric" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"tcp\",\"host\":"
		  "\"h\","
		  "\"port\":1},{\"id\":\"a\",\"kind\":\"tcp\",\"host\":\"h\","
		  "\"port\":2}]}",
		    "targets[1].id" },
		{ "{\"prober\":{\"concurrency\":0}}", "prober.concurrency" },
		{ "{\"prober\":{\"concurency\":2}}",
		    "prober.concurency: unknown key, did you mean "
		    "\"concurrency\"?" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"tcp\",\"host\":"
		  "\"h\",\"port\":1,\"intervall\":\"10s\"}]}",
		    "targets[0].intervall: unknown key, did you mean "
		    "\"interval\"?" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"json\":{\"path\":\"a\",\"opp\":\"gt\"}}]}",
		    "targets[0].json.opp: unknown key, did you mean \"op\"?" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"tcp\",\"host\":"
		  "\"h\",\"port\":1,\"public\":\"yes\"}]}",
		    "targets[0].public: expected true or false" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"headers\":{\"Bad Name\":\"v\"}}]}",
		    "targets[0].headers" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"headers\":{\"X-A\":\"v\\r\\nX-B: 1\"}}]}",
		    "targets[0].headers.X-A" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"headers\":{\"X-A\":5}}]}",
		    "targets[0].headers.X-A" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"basic_auth\":{\"password\":\"p\"}}]}",
		    "targets[0].basic_auth.username" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"basic_auth\":{\"username\":\"a:b\"}}]}",
		    "targets[0].basic_auth.username" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"basic_auth\":{\"username\":\"u\"},"
		  "\"bearer_token\":\"t\"}]}",
		    "targets[0].basic_auth" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"bearer_token\":\"t\",\"headers\":{"
		  "\"authorization\":\"Basic x\"}}]}",
		    "targets[0].bearer_token" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\",\"url\":"
		  "\"http://x\",\"bearer_token\":\"\"}]}",
		    "targets[0].bearer_token" },
		{ "{\"targets\":[{\"id\":\"a\",\"kind\":\"metric\",\"url\":"
		  "\"http://x\",\"values\":[{\"name\":\"v\",\"path\":\"v\"}],"
		  "\"bearer_token_file\":\"/nonexistent/token\"}]}",
		    "targets[0].bearer_token_file" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		target_set ts;
		char err[256] = "";
		memset(&ts, 0, sizeof(ts));
		if (load(cases[i].json, NULL, &ts, err, sizeof(err)) == 0) {
			fail_msg("case %zu accepted: %s", i, cases[i].json);
		}
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
			fail_msg("case %zu: \"%s\" does not start with %s", i,
			    err, cases[i].want);
		}
		assert_null(ts.v);
	}
}

/* Headers and credentials: parsed, and never echoed in an error. */
static void
test_request_opts(void **state)
{
	target_set ts;
	char err[256] = "", path[] = "/tmp/prober_token.XXXXXX", line[64];
	int fd = mkstemp(path);
	sbuf json = SBUF_INIT;
	(void) state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "tok-123\n", 8), 8);
	close(fd);
	sbuf_printf(&json,
	    "{\"targets\":[{\"id\":\"a\",\"kind\":\"http\","
	    "\"url\":\"http://x\",\"headers\":{\"X-Api-Key\":\"k1\","
	    "\"X-Empty\":\"\"},\"bearer_token_file\":\"%s\"},"
	    "{\"id\":\"b\",\"kind\":\"http\",\"url\":\"http://x\","
	    "\"basic_auth\":{\"username\":\"u\",\"password\":\"p w\"}},"
	    "{\"id\":\"c\",\"kind\":\"http\",\"url\":\"http://x\"}]}",
	    path);
	assert_int_equal(load(json.data, NULL, &ts, err, sizeof(err)), 0);
	unlink(path);
	const http_request_opts *r = ts.v[0].req;
	assert_non_null(r);
	assert_int_equal(r->n_headers, 2);
	assert_string_equal(r->headers[0], "X-Api-Key: k1");
	assert_string_equal(r->headers[1], "X-Empty;");
	assert_string_equal(r->bearer_token, "tok-123"); /* newline gone */
	assert_null(r->basic_user);
	assert_string_equal(ts.v[1].req->basic_user, "u");
	assert_string_equal(ts.v[1].req->basic_password, "p w");
	assert_null(ts.v[2].req);
	/* Equal to itself, not to another definition. */
	assert_true(prober_target_equal(&ts.v[0], &ts.v[0]));
	assert_false(prober_target_equal(&ts.v[0], &ts.v[1]));
	assert_false(prober_target_equal(&ts.v[1], &ts.v[2]));

	assert_string_equal(
	    prober_target_redact_header("X-Api-Key: k1", line, sizeof(line)),
	    "X-Api-Key: <redacted>");
	assert_string_equal(prober_target_redact_header(
	                        "authorization: Bearer x", line, sizeof(line)),
	    "authorization: <redacted>");
	assert_string_equal(prober_target_redact_header(
	                        "X-Probe: opsdesk", line, sizeof(line)),
	    "X-Probe: opsdesk");
	prober_target_set_free(&ts);
	sbuf_free(&json);

	/* A bad value is named by its key, its text is not repeated. */
	assert_int_equal(load("{\"targets\":[{\"id\":\"a\",\"kind\":"
	                      "\"http\",\"url\":\"http://x\",\"bearer_token\":"
	                      "\"s3cret\\nX: y\"}]}",
	                     NULL, &ts, err, sizeof(err)),
	    OD_EINVAL);
	assert_null(strstr(err, "s3cret"));
	assert_non_null(strstr(err, "targets[0].bearer_token"));
}

static void
test_shards(void **state)
{
	unsigned i, n;
	char err[256] = "";
	sbuf json = SBUF_INIT;
	size_t total = 0;
	(void) state;

	assert_int_equal(prober_shard_parse("0/1", &i, &n), 0);
	assert_int_equal(prober_shard_parse("2/3", &i, &n), 0);
	assert_int_equal(i, 2);
	assert_int_equal(n, 3);
	assert_int_equal(prober_shard_parse("3/3", &i, &n), OD_EINVAL);
	assert_int_equal(prober_shard_parse("1/0", &i, &n), OD_EINVAL);
	assert_int_equal(prober_shard_parse("x", &i, &n), OD_EINVAL);
	assert_int_equal(prober_shard_parse("1/2x", &i, &n), OD_EINVAL);

	sbuf_append(&json, "{\"targets\":[");
	for (int k = 0; k < 60; k++) {
		sbuf_printf(&json,
		    "%s{\"id\":\"t%d\",\"kind\":\"tcp\",\"host\":\"h\","
		    "\"port\":1}",
		    k ? "," : "", k);
	}
	sbuf_append(&json, "]}");
	/* Every target lands in exactly one of three shards, and each shard
	 * gets some. */
	for (unsigned s = 0; s < 3; s++) {
		target_set ts;
		char shard[8];
		snprintf(shard, sizeof(shard), "%u/3", s);
		assert_int_equal(
		    load(sbuf_str(&json), shard, &ts, err, sizeof(err)), 0);
		assert_true(ts.n > 5);
		assert_int_equal(ts.settings.shard_index, s);
		for (size_t k = 0; k < ts.n; k++) {
			/* Another shard's target gives its arena bytes back:
			 * the kept ones' strings must be intact after. */
			assert_true(
			    prober_target_in_shard(ts.v[k].hash, s, 3));
			assert_true(
			    prober_target_hash(ts.v[k].id) == ts.v[k].hash);
			assert_string_equal(ts.v[k].host, "h");
		}
		total += ts.n;
		prober_target_set_free(&ts);
	}
	assert_int_equal(total, 60);
	target_set ts;
	assert_int_equal(
	    load(sbuf_str(&json), "5/3", &ts, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "OPSDESK_PROBER_SHARD"));
	sbuf_free(&json);
	/* The hash is stable across builds: shards must not move. */
	assert_true(prober_target_hash("a") == 0xaf63dc4c8601ec8cULL);
	assert_int_equal(prober_target_hash(""), 14695981039346656037ULL);
}

int
main(void)
{
	/* What is asserted must not depend on the shell running the tests. */
	config_env_clear();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_http_target),
		cmocka_unit_test(test_other_kinds),
		cmocka_unit_test(test_validation_errors),
		cmocka_unit_test(test_request_opts),
		cmocka_unit_test(test_shards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
