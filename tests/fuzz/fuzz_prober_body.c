/*
 * health-prober's outside input: probe response bodies, as JSON field
 * conditions, JSON metric paths and Prometheus text read them, and the
 * stored aggregate decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prober.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const json_cond conds[] = {
		{ .path = "status", .op = JSON_OP_EQ, .str = "ok" },
		{ .path = "a.b[1].c",
		    .op = JSON_OP_GT,
		    .is_num = true,
		    .num = 3,
		    .str = "3" },
		{ .path = "[0]", .op = JSON_OP_CONTAINS, .str = "x" },
		{ .path = "", .op = JSON_OP_EXISTS },
	};
	static const char *const names[]
	    = { "up", "http_requests_total", "a" };
	static const char *const labels[]
	    = { "", "code=\"200\"", "a=\"}\",b=\"\\\"\"" };
	const char *body = (const char *) data;
	char why[128];
	double v;
	agg a;

	for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
		(void) prober_extract_json_cond(
		    body, size, &conds[i], why, sizeof(why));
	}
	for (size_t i = 0; i < 3; i++) {
		for (size_t j = 0; j < 3; j++) {
			(void) prober_extract_prometheus(
			    body, size, names[i], labels[j], &v);
		}
	}
	cJSON *root = cJSON_ParseWithLength(body, size);
	if (root != NULL) {
		(void) prober_extract_json_number(
		    prober_extract_json_path(root, "signals.active"), &v);
		cJSON_Delete(root);
	}
	if (prober_agg_decode(data, size, &a) == 0) {
		uint8_t out[AGG_ENC_MAX];
		agg b;
		size_t n = prober_agg_encode(&a, out);
		if (prober_agg_decode(out, n, &b) != 0
		    || b.checks != a.checks) {
			abort();
		}
	}
	return 0;
}
