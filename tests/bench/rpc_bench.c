/*
 * rpc_bench — what the rpc layer costs over raw NNG, measured in one run:
 *   raw: a req0 socket and a rep0 echo server on a thread (nng_recvmsg /
 *        nng_sendmsg), tcp on loopback;
 *   rpc: rpc_client_call to an rpc_server whose RPC_READ method echoes
 *        (decode, worker pool, read txn, pack; on the client a context
 *        per call, pack and unpack), same transport and request size.
 * --tls: the trust boundary's cost instead (goal: <= 1.3x):
 *   rpc tcp:      rpc as above, auth off;
 *   rpc tcp+hmac: auth on (OPSDESK_TLS_DIR, credentials of a fresh
 *                 `certs init`): every request carries the HMAC header;
 *   rpc tls+hmac: the same over tls+tcp (both sides verified).
 * Round trips are measured one at a time, alternating blocks of the legs
 * so that drift on a shared machine hits all alike. Prints median and
 * p99 of each and the ratio of the medians to the first (goal: <= 1.5x);
 * the last line is the summary scripts grep for.
 *
 *   rpc_bench [--tls] [--rounds N] [--size BYTES] [--dir DIR]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
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

/* One way of making the round trip, measured in blocks with the others. */
typedef struct leg {
	const char *name;
	rpc_client *cli; /* NULL: raw nng on reqs */
	nng_socket reqs;
	uint64_t *ns;
	int n;
} leg;

static int
leg_once(leg *l, const Opsdesk__Test__TestRequest *req,
    const uint8_t *req_bytes, size_t req_len)
{
	if (l->cli == NULL) {
		nng_msg *m;
		if (nng_msg_alloc(&m, 0) != 0
		    || nng_msg_append(m, req_bytes, req_len) != 0
		    || nng_sendmsg(l->reqs, m, 0) != 0
		    || nng_recvmsg(l->reqs, &m, 0) != 0) {
			return -1;
		}
		nng_msg_free(m);
		return 0;
	}
	ProtobufCMessage *out = NULL;
	int rv = rpc_client_call(l->cli, &req->base,
	    &opsdesk__test__test_reply__descriptor, &out, 0);
	if (rv == 0 && rpc_reply_error(out) != NULL) {
		rv = -1;
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return rv;
}

static int
rpc_pair(const char *url, store *st, rpc_server **srv, rpc_client **cli)
{
	rpc_server_options o = { 0 };
	rpc_server_options_init(&o, url,
	    &opsdesk__test__test_request__descriptor,
	    &opsdesk__test__test_reply__descriptor, methods, 1, NULL);
	o.service = "rpc_bench";
	o.store = st;
	if (rpc_server_start(srv, &o) != 0
	    || rpc_client_open(cli, url, 5000) != 0) {
		fprintf(stderr, "rpc setup on %s failed\n", url);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	int rounds = 5000, size = 256, rv = 1;
	const char *base = "/tmp";
	bool tls = false;
	if (argc > 1 && strcmp(argv[1], "--tls") == 0) {
		/* The trust boundary's cost: rpc over plain tcp with auth off
		 * against rpc over tcp with the HMAC header (auth on) and rpc
		 * over tls+tcp with the HMAC header, in one process: the
		 * plain pair is made before OPSDESK_TLS_DIR is set. */
		tls = true;
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
	unsetenv("OPSDESK_TLS_DIR");
	unsetenv("OPSDESK_IDENTITY");

	char dir[512], tls_dir[600], url[3][64], cmd[600], err[256];
	snprintf(dir, sizeof(dir), "%s/rpc_bench.XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	snprintf(tls_dir, sizeof(tls_dir), "%s/tls", dir);
	for (int i = 0; i < 3; i++) {
		snprintf(url[i], sizeof(url[i]), "%s://127.0.0.1:%d",
		    tls && i == 2 ? "tls+tcp" : "tcp", free_port());
	}

	/* The request every leg sends: an echo of size bytes. */
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

	static const char *const dbs[] = { "data", NULL };
	store_options so = { 0 };
	so.path = dir;
	so.dbs = dbs;
	so.nosync = true;
	store *st = NULL;
	rpc_server *srv[3] = { NULL };
	rpc_client *cli[3] = { NULL };
	leg legs[3];
	int n_legs = 0;
	nng_socket rep = NNG_SOCKET_INITIALIZER, reqs = NNG_SOCKET_INITIALIZER;
	pthread_t echo_thr;
	bool echo_started = false;
	memset(legs, 0, sizeof(legs));
	if (store_open(&st, &so) != 0) {
		fprintf(stderr, "store_open failed\n");
		return 1;
	}
	if (!tls) {
		/* raw nng against rpc, both plain tcp */
		if (nng_rep0_open(&rep) != 0
		    || nng_listen(rep, url[0], NULL, 0) != 0
		    || nng_req0_open(&reqs) != 0
		    || nng_dial(reqs, url[0], NULL, 0) != 0
		    || pthread_create(&echo_thr, NULL, raw_echo_main, &rep)
		        != 0) {
			fprintf(stderr, "raw setup failed\n");
			goto out;
		}
		echo_started = true;
		nng_socket_set_ms(reqs, NNG_OPT_RECVTIMEO, 5000);
		legs[n_legs++] = (leg) { .name = "raw nng", .reqs = reqs };
		if (rpc_pair(url[1], st, &srv[1], &cli[1]) != 0) {
			goto out;
		}
		legs[n_legs++] = (leg) { .name = "rpc", .cli = cli[1] };
	} else {
		if (rpc_pair(url[0], st, &srv[0], &cli[0]) != 0) {
			goto out;
		}
		legs[n_legs++] = (leg) { .name = "rpc tcp", .cli = cli[0] };
		if (auth_certs_init(tls_dir, 1, false, err, sizeof(err))
		    != 0) {
			fprintf(stderr, "certs: %s\n", err);
			goto out;
		}
		setenv("OPSDESK_TLS_DIR", tls_dir, 1);
		setenv("OPSDESK_IDENTITY", "opsctl", 1);
		auth_process_reset(); /* nothing loaded yet: nothing freed */
		if (rpc_pair(url[1], st, &srv[1], &cli[1]) != 0
		    || rpc_pair(url[2], st, &srv[2], &cli[2]) != 0) {
			goto out;
		}
		legs[n_legs++]
		    = (leg) { .name = "rpc tcp+hmac", .cli = cli[1] };
		legs[n_legs++]
		    = (leg) { .name = "rpc tls+hmac", .cli = cli[2] };
	}

	int errors = 0;
	for (int l = 0; l < n_legs; l++) {
		legs[l].ns = calloc((size_t) rounds, sizeof(uint64_t));
		/* Warm up (connections, handshakes, allocator, cache). */
		for (int i = 0; i < 200; i++) {
			(void) leg_once(&legs[l], &req, req_bytes, req_len);
		}
	}
	bool more = true;
	while (more && errors <= 100) {
		more = false;
		for (int l = 0; l < n_legs; l++) {
			leg *g = &legs[l];
			for (int i = 0; i < BLOCK && g->n < rounds; i++) {
				uint64_t t0 = od_mono_ns();
				if (leg_once(g, &req, req_bytes, req_len)
				    != 0) {
					errors++;
					continue;
				}
				g->ns[g->n++] = od_mono_ns() - t0;
			}
			more = more || g->n < rounds;
		}
	}
	if (errors > 100) {
		fprintf(stderr, "bench_rpc: too many errors (%d)\n", errors);
		goto out;
	}
	printf("request %zu bytes, %d round trips each over loopback, "
	       "one client, %d errors\n",
	    req_len, rounds, errors);
	double p50[3], p99[3];
	for (int l = 0; l < n_legs; l++) {
		qsort(
		    legs[l].ns, (size_t) legs[l].n, sizeof(uint64_t), cmp_u64);
		p50[l] = pct_us(legs[l].ns, (size_t) legs[l].n, 0.5);
		p99[l] = pct_us(legs[l].ns, (size_t) legs[l].n, 0.99);
		printf("%-14s p50 %.1f us  p99 %.1f us  (%.2fx)\n",
		    legs[l].name, p50[l], p99[l], p50[l] / p50[0]);
	}
	if (!tls) {
		printf("bench_rpc: raw_nng_p50=%.0fus rpc_p50=%.0fus "
		       "ratio=%.2fx raw_nng_p99=%.0fus rpc_p99=%.0fus\n",
		    p50[0], p50[1], p50[1] / p50[0], p99[0], p99[1]);
	} else {
		printf("bench_rpc_tls: tcp_p50=%.0fus hmac_p50=%.0fus "
		       "tls_p50=%.0fus hmac_ratio=%.2fx tls_ratio=%.2fx "
		       "tcp_p99=%.0fus tls_p99=%.0fus\n",
		    p50[0], p50[1], p50[2], p50[1] / p50[0], p50[2] / p50[0],
		    p99[0], p99[2]);
	}
	rv = 0;
out:
	for (int i = 0; i < 3; i++) {
		rpc_client_close(cli[i]);
		rpc_server_stop(srv[i]);
	}
	store_close(st);
	if (echo_started) {
		nng_close(reqs);
		nng_close(rep);
		pthread_join(echo_thr, NULL);
	}
	for (int l = 0; l < n_legs; l++) {
		free(legs[l].ns);
	}
	free(req_bytes);
	free(blob);
	auth_process_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", dir);
	}
	return rv;
}
