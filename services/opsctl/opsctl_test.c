/*
 * opsctl core unit tests: services, method spellings, requests built from
 * JSON (and their errors), tail lines for good and bad frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "envelope.pb-c.h"
#include "opsctl.h"
#include "ticket.pb-c.h"
#include "util/util.h"

static void
test_services(void **state)
{
	(void) state;
	const opsctl_service *s = opsctl_service_find("ticket");
	assert_non_null(s);
	assert_ptr_equal(s, opsctl_service_find("ticket-service"));
	assert_string_equal(
	    opsctl_service_find("prober")->exe, "health-prober");
	assert_string_equal(
	    opsctl_service_find("status-publisher")->name, "status");
	assert_null(opsctl_service_find("gateway")->request);
	assert_null(opsctl_service_find("tickets"));
	assert_null(opsctl_service_find(NULL));
	size_t n;
	const opsctl_service *all = opsctl_services(&n);
	assert_true(n > opsctl_rpc_services());
	for (size_t i = 0; i < opsctl_rpc_services(); i++) {
		assert_non_null(all[i].request);
	}
}

static void
test_method_names(void **state)
{
	(void) state;
	static const char *const cases[][2] = { { "ListMine", "list_mine" },
		{ "listMine", "list_mine" }, { "list_mine", "list_mine" },
		{ "Ping", "ping" }, { "SetPriority", "set_priority" },
		{ "faq_add", "faq_add" }, { "FaqAdd", "faq_add" } };
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(
		    opsctl_method_name(cases[i][0], out, sizeof(out)), 0);
		assert_string_equal(out, cases[i][1]);
	}
	assert_int_equal(opsctl_method_name("", out, sizeof(out)), OD_EINVAL);
	assert_int_equal(
	    opsctl_method_name("1x", out, sizeof(out)), OD_EINVAL);
	assert_int_equal(
	    opsctl_method_name("a-b", out, sizeof(out)), OD_EINVAL);
	assert_int_equal(
	    opsctl_method_name(NULL, out, sizeof(out)), OD_EINVAL);
	assert_int_equal(opsctl_method_name("ListMine", out, 5), OD_EINVAL);
}

static void
test_build_request(void **state)
{
	(void) state;
	const opsctl_service *s = opsctl_service_find("ticket");
	opsctl_actor admin
	    = { .user_id = 0, .is_admin = true, .name = "opsctl" };
	opsctl_actor user
	    = { .user_id = 9007199254740993LL, .name = "u", .chat_id = 5 };
	ProtobufCMessage *m = NULL;
	char err[512];

	assert_int_equal(opsctl_build_request(s, "Create",
	                     "{\"subject\":\"hi\",\"priority\":\"high\"}",
	                     "rid-1", &admin, &m, err, sizeof(err)),
	    0);
	Opsdesk__V1__TicketRequest *r = (Opsdesk__V1__TicketRequest *) m;
	assert_string_equal(r->request_id, "rid-1");
	assert_true(r->actor->is_admin);
	assert_string_equal(r->actor->name, "opsctl");
	assert_int_equal(
	    r->method_case, OPSDESK__V1__TICKET_REQUEST__METHOD_CREATE);
	assert_string_equal(r->create->subject, "hi");
	assert_int_equal(r->create->priority,
	    OPSDESK__V1__TICKET_PRIORITY__TICKET_PRIORITY_HIGH);
	protobuf_c_message_free_unpacked(m, NULL);

	/* no JSON: the empty message; a 64-bit user id survives */
	m = NULL;
	assert_int_equal(opsctl_build_request(s, "list_mine", NULL, "rid-2",
	                     &user, &m, err, sizeof(err)),
	    0);
	r = (Opsdesk__V1__TicketRequest *) m;
	assert_true(r->actor->user_id == 9007199254740993LL);
	assert_false(r->actor->is_admin);
	assert_true(r->actor->chat_id == 5);
	assert_non_null(r->list_mine);
	protobuf_c_message_free_unpacked(m, NULL);

	m = NULL;
	assert_int_equal(opsctl_build_request(s, "frobnicate", "{}", "r",
	                     &admin, &m, err, sizeof(err)),
	    OD_ENOTFOUND);
	assert_null(m);
	assert_non_null(strstr(err, "no method \"frobnicate\""));
	assert_non_null(strstr(err, "list_mine"));
	/* request_id and actor are fields, not methods */
	assert_int_equal(opsctl_build_request(s, "actor", "{}", "r", &admin,
	                     &m, err, sizeof(err)),
	    OD_ENOTFOUND);
	assert_int_equal(
	    opsctl_build_request(s, "create", "{\"priority\":\"hgih\"}", "r",
	        &admin, &m, err, sizeof(err)),
	    OD_EINVAL);
	assert_string_equal(
	    err, "create.priority: unknown enum value \"hgih\"");
	assert_int_equal(opsctl_build_request(s, "create", "{\"subject\":",
	                     "r", &admin, &m, err, sizeof(err)),
	    OD_EINVAL);
	assert_non_null(strstr(err, "create: invalid JSON"));
	assert_int_equal(opsctl_build_request(s, "create", "{} {}", "r",
	                     &admin, &m, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(opsctl_build_request(s, "get", "[1]", "r", &admin, &m,
	                     err, sizeof(err)),
	    OD_EINVAL);
	assert_string_equal(err, "get: expected a JSON object");
	assert_int_equal(opsctl_build_request(opsctl_service_find("gateway"),
	                     "ping", NULL, "r", &admin, &m, err, sizeof(err)),
	    OD_EINVAL);
	assert_null(m);
}

static cJSON *
tail(const void *frame, size_t len)
{
	char *line = opsctl_tail_line(frame, len);
	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	cJSON *j = cJSON_Parse(line);
	assert_non_null(j);
	free(line);
	return j;
}

static void
test_tail_lines(void **state)
{
	(void) state;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__GatewayEvent gw = OPSDESK__V1__GATEWAY_EVENT__INIT;
	uint8_t frame[512];
	static const char topic[] = "gateway.started";

	env.schema_version = 1;
	env.seq = 9007199254740993ULL;
	env.topic = (char *) topic;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_GATEWAY;
	env.gateway = &gw;
	gw.kind = "started";
	gw.text = "bad \xff utf-8";
	memcpy(frame, topic, sizeof(topic)); /* with its NUL */
	size_t n = sizeof(topic)
	    + opsdesk__v1__envelope__pack(&env, frame + sizeof(topic));

	cJSON *j = tail(frame, n);
	assert_string_equal(
	    cJSON_GetObjectItem(j, "topic")->valuestring, "gateway.started");
	cJSON *e = cJSON_GetObjectItem(j, "envelope");
	assert_non_null(e);
	assert_string_equal(
	    cJSON_GetObjectItem(e, "seq")->valuestring, "9007199254740993");
	cJSON *g = cJSON_GetObjectItem(e, "gateway");
	assert_string_equal(
	    cJSON_GetObjectItem(g, "kind")->valuestring, "started");
	assert_string_equal(cJSON_GetObjectItem(g, "text")->valuestring,
	    "bad \xef\xbf\xbd utf-8");
	assert_null(cJSON_GetObjectItem(j, "error"));
	cJSON_Delete(j);

	/* a topic but a body that is not an Envelope */
	static const char bad_body[] = "ticket.created\0\xff\xff\xff";
	j = tail(bad_body, sizeof(bad_body) - 1);
	assert_string_equal(
	    cJSON_GetObjectItem(j, "topic")->valuestring, "ticket.created");
	assert_string_equal(cJSON_GetObjectItem(j, "error")->valuestring,
	    "envelope does not decode");
	assert_int_equal(
	    cJSON_GetObjectItem(j, "bytes")->valueint, sizeof(bad_body) - 1);
	assert_null(cJSON_GetObjectItem(j, "envelope"));
	cJSON_Delete(j);

	/* no topic at all */
	j = tail("\x01\x02garbage", 9);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "topic")));
	assert_non_null(cJSON_GetObjectItem(j, "error"));
	assert_int_equal(cJSON_GetObjectItem(j, "bytes")->valueint, 9);
	cJSON_Delete(j);
	j = tail("", 0);
	assert_non_null(cJSON_GetObjectItem(j, "error"));
	cJSON_Delete(j);
}

static void
test_publish_frame(void **state)
{
	(void) state;
	uint8_t *frame = NULL;
	size_t len;
	char err[256];

	assert_int_equal(opsctl_publish_frame("ops.reload",
	                     "{\"ops\":{\"kind\":\"reload\"},\"seq\":7}",
	                     "host:1", &frame, &len, err, sizeof(err)),
	    0);
	cJSON *j = tail(frame, len);
	free(frame);
	assert_string_equal(
	    cJSON_GetObjectItem(j, "topic")->valuestring, "ops.reload");
	cJSON *e = cJSON_GetObjectItem(j, "envelope");
	assert_int_equal(
	    cJSON_GetObjectItem(e, "schema_version")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(e, "seq")->valueint, 7);
	assert_string_equal(
	    cJSON_GetObjectItem(e, "source")->valuestring, "opsctl");
	assert_string_equal(
	    cJSON_GetObjectItem(e, "instance")->valuestring, "host:1");
	assert_string_equal(
	    cJSON_GetObjectItem(e, "topic")->valuestring, "ops.reload");
	assert_int_equal(
	    strlen(cJSON_GetObjectItem(e, "event_id")->valuestring), 32);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(e, "ops"), "kind")
	        ->valuestring,
	    "reload");
	cJSON_Delete(j);

	/* given header fields are kept (and freed) */
	assert_int_equal(opsctl_publish_frame("x.y",
	                     "{\"source\":\"me\",\"event_id\":\"e1\"}", NULL,
	                     &frame, &len, err, sizeof(err)),
	    0);
	j = tail(frame, len);
	free(frame);
	e = cJSON_GetObjectItem(j, "envelope");
	assert_string_equal(
	    cJSON_GetObjectItem(e, "source")->valuestring, "me");
	assert_string_equal(
	    cJSON_GetObjectItem(e, "event_id")->valuestring, "e1");
	cJSON_Delete(j);

	frame = NULL;
	assert_int_equal(opsctl_publish_frame("bad topic", NULL, NULL, &frame,
	                     &len, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(opsctl_publish_frame(
	                     "", NULL, NULL, &frame, &len, err, sizeof(err)),
	    OD_EINVAL);
	assert_int_equal(opsctl_publish_frame("a.b", "{\"ops\":[]}", NULL,
	                     &frame, &len, err, sizeof(err)),
	    OD_EINVAL);
	assert_string_equal(err, "ops: expected a JSON object");
	assert_null(frame);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_method_names),
		cmocka_unit_test(test_build_request),
		cmocka_unit_test(test_tail_lines),
		cmocka_unit_test(test_publish_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
