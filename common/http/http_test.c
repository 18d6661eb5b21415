#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "http.h"

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	sbuf_append_len(arg, p, sz * n);
	return sz * n;
}

/* One request; returns the status, body in *out (caller frees). */
static long
fetch(int port, const char *method, const char *path, const char *body,
    const char *header, sbuf *out, sbuf *headers)
{
	CURL *c = curl_easy_init();
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (headers != NULL) {
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, headers);
	}
	struct curl_slist *hl = NULL;
	if (header != NULL) {
		hl = curl_slist_append(hl, header);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	}
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return status;
}

static bool ready_flag;

static bool
ready(void *arg, char *why, size_t size)
{
	snprintf(why, size, "store not open");
	return ready_flag;
}

static int
echo(void *arg, const http_request *req, http_response *res)
{
	sbuf b = SBUF_INIT;
	sbuf_printf(&b, "%s %s q=%s secret=%s body=", req->method, req->path,
	    req->query, http_request_header(req, "X-Secret") ?: "-");
	sbuf_append_len(&b, req->body, req->body_len);
	size_t len;
	char *t = sbuf_take(&b, &len);
	http_response_set_body(res, 201, "text/plain", t, len);
	http_response_header(res, "ETag", "\"abc\"");
	return 0;
}

static int
failing(void *arg, const http_request *req, http_response *res)
{
	http_response_text(res, 200, NULL, "partial");
	return OD_EIO;
}

static void
test_standard_and_custom_routes(void **state)
{
	metrics *m;
	assert_int_equal(metrics_new(&m), 0);
	metric_inc(metrics_counter(m, "opsdesk_test_total", "T.", NULL));
	http_server *s;
	assert_int_equal(
	    http_server_new(&s, "127.0.0.1:0", m, ready, NULL), 0);
	assert_int_equal(
	    http_server_route(s, NULL, "/api", true, echo, NULL), 0);
	assert_int_equal(
	    http_server_route(s, "GET", "/fail", false, failing, NULL), 0);
	assert_int_equal(http_server_start(s), 0);
	int port = http_server_port(s);
	assert_true(port > 0);
	/* routes cannot be added once started */
	assert_int_equal(
	    http_server_route(s, "GET", "/late", false, echo, NULL),
	    OD_ESTATE);

	sbuf b = SBUF_INIT, h = SBUF_INIT;
	assert_int_equal(
	    fetch(port, "GET", "/healthz", NULL, NULL, &b, NULL), 200);
	assert_string_equal(sbuf_str(&b), "ok\n");
	sbuf_reset(&b);
	ready_flag = false;
	assert_int_equal(
	    fetch(port, "GET", "/readyz", NULL, NULL, &b, NULL), 503);
	assert_non_null(strstr(sbuf_str(&b), "store not open"));
	sbuf_reset(&b);
	ready_flag = true;
	assert_int_equal(
	    fetch(port, "GET", "/readyz", NULL, NULL, &b, NULL), 200);
	sbuf_reset(&b);
	assert_int_equal(
	    fetch(port, "GET", "/metrics", NULL, NULL, &b, &h), 200);
	assert_non_null(strstr(sbuf_str(&b), "opsdesk_test_total 1\n"));
	assert_non_null(strstr(sbuf_str(&h), "version=0.0.4"));
	sbuf_reset(&b);
	sbuf_reset(&h);
	assert_int_equal(fetch(port, "POST", "/api/x%20y?a=1", "hello",
	                     "X-Secret: s3", &b, &h),
	    201);
	assert_string_equal(
	    sbuf_str(&b), "POST /api/x y q=a=1 secret=s3 body=hello");
	assert_non_null(strstr(sbuf_str(&h), "ETag: \"abc\""));
	sbuf_reset(&b);
	assert_int_equal(
	    fetch(port, "GET", "/fail", NULL, NULL, &b, NULL), 500);
	sbuf_reset(&b);
	assert_int_equal(
	    fetch(port, "GET", "/nowhere", NULL, NULL, &b, NULL), 404);
	sbuf_free(&b);
	sbuf_free(&h);
	http_server_free(s);
	metrics_free(m);
}

/* ---- borrowed bodies ---- */

#define BIG (8u << 20) /* more than loopback buffers hold */
static char *big;
static atomic_int lent, returned;

static void
give_back(void *arg)
{
	assert_ptr_equal(arg, big);
	atomic_fetch_add(&returned, 1);
}

static int
lend(void *arg, const http_request *req, http_response *res)
{
	size_t len = strcmp(req->path, "/big") == 0 ? BIG : 1000;
	atomic_fetch_add(&lent, 1);
	http_response_header(res, "ETag", "\"big\"");
	http_response_borrow_body(
	    res, 200, "text/plain", big, len, give_back, big);
	return arg == NULL ? 0 : OD_EIO; /* arg: fail after lending */
}

static bool
all_returned(void)
{
	for (int i = 0; i < 500; i++) {
		if (atomic_load(&returned) == atomic_load(&lent)) {
			return true;
		}
		usleep(10000); /* polling a condition, 5 s at most */
	}
	return false;
}

/* Stop reading after the first chunk: curl drops the connection. */
static size_t
abort_early(char *p, size_t sz, size_t n, void *arg)
{
	return 0;
}

/* A raw request; the socket is returned unread. */
static int
raw_request(int port, const char *text)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct sockaddr_in sa
	    = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(
	    write(fd, text, strlen(text)), (ssize_t) strlen(text));
	return fd;
}

static void
test_borrowed_body(void **state)
{
	big = malloc(BIG);
	for (size_t i = 0; i < BIG; i++) {
		big[i] = (char) ('a' + i % 26);
	}
	atomic_store(&lent, 0);
	atomic_store(&returned, 0);
	http_server *s;
	assert_int_equal(
	    http_server_new(&s, "127.0.0.1:0", NULL, NULL, NULL), 0);
	assert_int_equal(
	    http_server_route(s, "GET", "/small", false, lend, NULL), 0);
	assert_int_equal(
	    http_server_route(s, "GET", "/big", false, lend, NULL), 0);
	assert_int_equal(
	    http_server_route(s, "GET", "/failing", false, lend, s), 0);
	assert_int_equal(http_server_start(s), 0);
	int port = http_server_port(s);

	/* Sent as lent, then given back; twice on one connection. */
	sbuf b = SBUF_INIT, h = SBUF_INIT;
	assert_int_equal(fetch(port, "GET", "/big", NULL, NULL, &b, &h), 200);
	assert_int_equal(b.len, BIG);
	assert_memory_equal(sbuf_str(&b), big, BIG);
	assert_non_null(strstr(sbuf_str(&h), "ETag: \"big\""));
	assert_null(strstr(sbuf_str(&h), "Connection: close"));
	sbuf_reset(&b);
	sbuf_reset(&h);
	CURL *c = curl_easy_init();
	char url[128];
	for (int i = 0; i < 2; i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/small", port);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		assert_int_equal(curl_easy_perform(c), CURLE_OK);
	}
	long conns = 0;
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
	assert_int_equal(conns, 0); /* the second reused the first's */
	curl_easy_cleanup(c);
	assert_int_equal(b.len, 2000);
	assert_memory_equal(sbuf_str(&b) + 1000, big, 1000);
	sbuf_reset(&b);
	assert_true(all_returned());

	/* HEAD: the length, no bytes. */
	assert_int_equal(
	    fetch(port, "HEAD", "/small", NULL, NULL, &b, &h), 200);
	assert_int_equal(b.len, 0);
	assert_non_null(strstr(sbuf_str(&h), "Content-Length: 1000"));
	sbuf_reset(&h);
	/* HTTP/1.0: the server closes, and says so. */
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_0);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	assert_int_equal(b.len, 1000);
	assert_non_null(strstr(sbuf_str(&h), "Connection: close"));
	sbuf_reset(&b);
	sbuf_reset(&h);
	/* A handler failing after it lent: 500, and the body given back. */
	assert_int_equal(
	    fetch(port, "GET", "/failing", NULL, NULL, &b, NULL), 500);
	sbuf_reset(&b);
	/* A client leaving mid-body. */
	c = curl_easy_init();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_early);
	assert_int_equal(curl_easy_perform(c), CURLE_WRITE_ERROR);
	curl_easy_cleanup(c);
	assert_true(all_returned());

	/* A client that never reads holds a write; stopping the server
	 * ends it and gives the body back. */
	int fd = raw_request(port, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
	for (int i = 0;
	     i < 500 && atomic_load(&lent) == atomic_load(&returned); i++) {
		usleep(10000);
	}
	assert_int_not_equal(atomic_load(&lent), atomic_load(&returned));
	http_server_free(s);
	assert_int_equal(atomic_load(&returned), atomic_load(&lent));
	close(fd);
	sbuf_free(&b);
	sbuf_free(&h);
	free(big);
}

static void
test_bad_address(void **state)
{
	http_server *s = NULL;
	assert_int_equal(http_server_new(&s, "", NULL, NULL, NULL), OD_EINVAL);
	assert_null(s);
	http_server_free(NULL);
}

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_standard_and_custom_routes),
		cmocka_unit_test(test_borrowed_body),
		cmocka_unit_test(test_bad_address),
	};
	int rv = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rv;
}
