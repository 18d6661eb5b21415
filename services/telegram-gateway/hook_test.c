/*
 * hook_test — the webhook listener on loopback with a test handler that names
 * what it got: pipelined requests on one connection, chunked bodies refused,
 * an oversized head refused, HTTP/1.0 closed after its reply.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hook.h"

static int
echo_handler(
    void *arg, const hook_req *req, const char **ctype, const char **text)
{
	(void) arg;
	*ctype = NULL;
	/* Echo the body when it is short and static-safe. */
	if (strcmp(req->body, "one") == 0) {
		*text = "got one";
	} else if (strcmp(req->body, "two") == 0) {
		*text = "got two";
	} else {
		*text = req->secret != NULL ? req->secret : "none";
	}
	return strcmp(req->path, "/hook") == 0 ? 200 : 404;
}

static int
dial(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Everything until the peer closes (or the 5 s time-out). */
static size_t
read_all(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	while (len + 1 < size
	    && (n = recv(fd, buf + len, size - len - 1, 0)) > 0) {
		len += (size_t) n;
	}
	buf[len] = '\0';
	return len;
}

static hook *
start(void)
{
	hook *h = NULL;
	hook_limits lim = { .max_conns = 4,
		.header_ms = 2000,
		.body_ms = 2000,
		.max_body = 64 };
	assert_int_equal(gw_listener_start(&h, "127.0.0.1:0", &lim,
	                     echo_handler, NULL, NULL),
	    0);
	assert_true(gw_listener_port(h) > 0);
	return h;
}

static void
test_pipelined_and_close(void **state)
{
	(void) state;
	hook *h = start();
	int fd = dial(gw_listener_port(h));
	const char *req = "POST /hook HTTP/1.1\r\nContent-Length: 3\r\n"
	                  "\r\none"
	                  "POST /hook?x=1 HTTP/1.1\r\ncontent-length: 3\r\n"
	                  "Connection: close\r\n\r\ntwo";
	char buf[4096];
	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t) strlen(req));
	read_all(fd, buf, sizeof(buf));
	char *first = strstr(buf, "got one");
	char *second = strstr(buf, "got two");
	assert_non_null(first);
	assert_non_null(second);
	assert_true(first < second);
	assert_non_null(strstr(buf, "Connection: close"));
	close(fd);
	gw_listener_stop(h);
}

static void
test_refusals(void **state)
{
	(void) state;
	hook *h = start();
	char buf[4096];
	struct {
		const char *req;
		const char *want;
	} cases[] = {
		{ "POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		    "HTTP/1.1 411 " },
		{ "POST /hook HTTP/1.1\r\nContent-Length: 65\r\n\r\n",
		    "HTTP/1.1 413 " },
		{ "nonsense\r\n\r\n", "HTTP/1.1 400 " },
		{ "POST /hook HTTP/1.0\r\nX-Telegram-Bot-Api-Secret-Token: "
		  " s3 \r\n\r\n",
		    "\r\n\r\ns3" },
		{ "GET /other HTTP/1.0\r\n\r\n", "HTTP/1.1 404 " },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = dial(gw_listener_port(h));
		send(fd, cases[i].req, strlen(cases[i].req), 0);
		read_all(fd, buf, sizeof(buf)); /* the server closes */
		assert_non_null(strstr(buf, cases[i].want));
		close(fd);
	}
	/* A head over 8 KiB without its end. */
	int fd = dial(gw_listener_port(h));
	char big[9000];
	memset(big, 'a', sizeof(big));
	memcpy(big, "POST /hook HTTP/1.1\r\nX: ", 24);
	send(fd, big, sizeof(big), MSG_NOSIGNAL);
	read_all(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 431 "));
	close(fd);
	gw_listener_stop(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_and_close),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
