/*
 * rpc_bench — what the rpc layer costs over raw NNG, measured in one run:
 *   raw: a req0 socket and a rep0 echo server on a thread (nng_recvmsg /
 *        nng_sendmsg), tcp on loopback;
 *   rpc: rpc_client_call to an rpc_server whose RPC_READ method echoes
 *        (decode, worker pool, read txn, pack; on the client a context
 *        per call, pack and unpack), same transport and request size.
 * Round trips are measured one at a time, alternating blocks of the two
 * so that drift on a shared machine hits both alike. Prints median and
 * p99 of each and the ratio of the medians (goal: <= 1.5x); the last
 * line is the summary scripts grep for.
 *
 *   rpc_bench [--rounds N] [--size BYTES] [--dir DIR]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log/log.h"
#include "rpc/rpc.h"
#include "rpc_test.pb-c.h"
#include "util/util.h"

#define BLOCK 100

static int
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	int port = -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0
	    && getsockname(fd, (struct sockaddr *) &a, &len) == 0) {
		port = ntohs(a.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

/* ---- raw NNG ---- */

static void *
raw_echo_main(void *arg)
{
	nng_socket *rep = arg;
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(*rep, &m, 0) != 0) {
			return NULL; /* closed */
		}
		if (nng_sendmsg(*rep, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
}

/* ---- rpc ---- */

static int
h_echo(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	const Opsdesk__Test__TestRequest *r
	    = (const Opsdesk__Test__TestRequest *) req;
	Opsdesk__Test__TestReply *out = (Opsdesk__Test__TestReply *) reply;
	Opsdesk__Test__EchoReply *e = rpc_call_alloc(c, sizeof(*e));
	if (e == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__test__echo_reply__init(e);
	e->text = r->echo->text;
	e->blob = r->echo->blob;
	out->result_case = OPSDESK__TEST__TEST_REPLY__RESULT_ECHO;
	out->echo = e;
	return 0;
}

static const rpc_method methods[] = {
	{ "echo", RPC_READ, false, h_echo },
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

static double
pct_us(uint64_t *ns, size_t n, double p)
{
	size_t i = (size_t) (p * (double) (n - 1));
	return (double) ns[i] / 1000.0;
}

int
main(int argc, char **argv)
{
	int rounds = 5000, size = 256, rv = 1;
	const char *base = "/tmp";
	const char *scheme = "tcp";
	if (argc > 1 && strcmp(argv[1], "--tls") == 0) {
		/* rpc over tls+tcp (OPSDESK_TLS_DIR set: requests are also
		 * authenticated); raw stays plain tcp. */
		scheme = "tls+tcp";
		argv++;
		argc--;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--rounds") == 0) {
			rounds = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--size") == 0) {
			size = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--dir") == 0) {
			base = argv[i + 1];
		}
	}
	if (rounds < BLOCK || size < 0) {
		fprintf(stderr,
		    "usage: rpc_bench [--tls] [--rounds N>=%d] [--size B] "
		    "[--dir DIR]\n",
		    BLOCK);
		return 2;
	}
	log_init("rpc_bench", "bench", LOG_ERROR);

	char dir[512], raw_url[64], rpc_url[64], cmd[600];
	snprintf(dir, sizeof(dir), "%s/rpc_bench.XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	snprintf(raw_url, sizeof(raw_url), "tcp://127.0.0.1:%d", free_port());
	snprintf(rpc_url, sizeof(rpc_url), "%s://127.0.0.1:%d", scheme,
	    free_port());

	/* The request both sides send: an echo of size bytes. */
	uint8_t *blob = malloc(size ? (size_t) size : 1);
	memset(blob, 'x', (size_t) size);
	Opsdesk__Test__TestRequest req = OPSDESK__TEST__TEST_REQUEST__INIT;
	Opsdesk__Test__EchoRequest er = OPSDESK__TEST__ECHO_REQUEST__INIT;
	er.blob.data = blob;
	er.blob.len = (size_t) size;
	req.request_id = "0123456789abcdef0123456789abcdef";
	req.method_case = OPSDESK__TEST__TEST_REQUEST__METHOD_ECHO;
	req.echo = &er;
	size_t req_len = opsdesk__test__test_request__get_packed_size(&req);
	uint8_t *req_bytes = malloc(req_len);
	opsdesk__test__test_request__pack(&req, req_bytes);

	/* raw */
	nng_socket rep, reqs;
	pthread_t echo_thr;
	if (nng_rep0_open(&rep) != 0 || nng_listen(rep, raw_url, NULL, 0) != 0
	    || nng_req0_open(&reqs) != 0
	    || nng_dial(reqs, raw_url, NULL, 0) != 0
	    || pthread_create(&echo_thr, NULL, raw_echo_main, &rep) != 0) {
		fprintf(stderr, "raw setup failed\n");
		return 1;
	}
	nng_socket_set_ms(reqs, NNG_OPT_RECVTIMEO, 5000);

	/* rpc */
	static const char *const dbs[] = { "data", NULL };
	store_options so = { 0 };
	so.path = dir;
	so.dbs = dbs;
	so.nosync = true;
	store *st = NULL;
	rpc_server *srv = NULL;
	rpc_client *cli = NULL;
	rpc_server_options o = { 0 };
	rpc_server_options_init(&o, rpc_url,
	    &opsdesk__test__test_request__descriptor,
	    &opsdesk__test__test_reply__descriptor, methods, 1, NULL);
	o.service = "rpc_bench";
	if (store_open(&st, &so) != 0) {
		fprintf(stderr, "store_open failed\n");
		return 1;
	}
	o.store = st;
	if (rpc_server_start(&srv, &o) != 0
	    || rpc_client_open(&cli, rpc_url, 5000) != 0) {
		fprintf(stderr, "rpc setup failed\n");
		return 1;
	}

	uint64_t *raw_ns = calloc((size_t) rounds, sizeof(uint64_t));
	uint64_t *rpc_ns = calloc((size_t) rounds, sizeof(uint64_t));
	int n_raw = 0, n_rpc = 0, errors = 0;
	/* Warm both up (connections, allocator, page cache). */
	for (int i = 0; i < 200; i++) {
		ProtobufCMessage *out = NULL;
		if (rpc_client_call(cli, &req.base,
		        &opsdesk__test__test_reply__descriptor, &out, 0)
		    == 0) {
			protobuf_c_message_free_unpacked(out, NULL);
		}
		nng_msg *m;
		nng_msg_alloc(&m, 0);
		nng_msg_append(m, req_bytes, req_len);
		if (nng_sendmsg(reqs, m, 0) == 0
		    && nng_recvmsg(reqs, &m, 0) == 0) {
			nng_msg_free(m);
		}
	}
	while (n_raw < rounds || n_rpc < rounds) {
		for (int i = 0; i < BLOCK && n_raw < rounds; i++) {
			nng_msg *m;
			uint64_t t0 = od_mono_ns();
			if (nng_msg_alloc(&m, 0) != 0
			    || nng_msg_append(m, req_bytes, req_len) != 0
			    || nng_sendmsg(reqs, m, 0) != 0
			    || nng_recvmsg(reqs, &m, 0) != 0) {
				errors++;
				continue;
			}
			raw_ns[n_raw++] = od_mono_ns() - t0;
			nng_msg_free(m);
		}
		for (int i = 0; i < BLOCK && n_rpc < rounds; i++) {
			ProtobufCMessage *out = NULL;
			uint64_t t0 = od_mono_ns();
			if (rpc_client_call(cli, &req.base,
			        &opsdesk__test__test_reply__descriptor, &out,
			        0)
			        != 0
			    || rpc_reply_error(out) != NULL) {
				errors++;
				protobuf_c_message_free_unpacked(out, NULL);
				if (errors > 100) {
					break;
				}
				continue;
			}
			rpc_ns[n_rpc++] = od_mono_ns() - t0;
			protobuf_c_message_free_unpacked(out, NULL);
		}
		if (errors > 100) {
			break;
		}
	}
	if (errors > 100 || n_raw < 2 || n_rpc < 2) {
		fprintf(stderr, "bench_rpc: too many errors (%d)\n", errors);
		goto out;
	}
	qsort(raw_ns, (size_t) n_raw, sizeof(uint64_t), cmp_u64);
	qsort(rpc_ns, (size_t) n_rpc, sizeof(uint64_t), cmp_u64);
	double raw50 = pct_us(raw_ns, (size_t) n_raw, 0.5);
	double raw99 = pct_us(raw_ns, (size_t) n_raw, 0.99);
	double rpc50 = pct_us(rpc_ns, (size_t) n_rpc, 0.5);
	double rpc99 = pct_us(rpc_ns, (size_t) n_rpc, 0.99);
	printf("request %zu bytes, %d round trips each over loopback (rpc: "
	       "%s), %d errors\n",
	    req_len, rounds, rpc_url, errors);
	printf("raw nng req/rep:  p50 %.1f us  p99 %.1f us\n", raw50, raw99);
	printf("rpc_client_call:  p50 %.1f us  p99 %.1f us\n", rpc50, rpc99);
	printf("bench_rpc: raw_nng_p50=%.0fus rpc_p50=%.0fus ratio=%.2fx "
	       "raw_nng_p99=%.0fus rpc_p99=%.0fus\n",
	    raw50, rpc50, rpc50 / raw50, raw99, rpc99);
	rv = 0;
out:
	rpc_client_close(cli);
	rpc_server_stop(srv);
	store_close(st);
	nng_close(reqs);
	nng_close(rep);
	pthread_join(echo_thr, NULL);
	free(raw_ns);
	free(rpc_ns);
	free(req_bytes);
	free(blob);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", dir);
	}
	return rv;
}
