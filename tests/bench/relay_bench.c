/*
 * bus-relay forwarding rate, as ratios against baselines measured in the
 * same run over TCP loopback:
 *   direct  publisher -> subscriber, no relay (the ceiling);
 *   device  NNG's own forwarder (nng_device on raw sockets), which
 *           cannot count;
 *   relay   relay_start(): the same forwarding plus per-domain counters
 *           and pipe gauges.
 * The sender keeps at most WINDOW frames in flight (it waits for the
 * receiver to catch up), so the figure is a lossless rate, not how fast
 * frames can be dropped.
 *
 * --tls instead: the relay as above against the relay with publisher
 * checks (every frame sealed, verified, its topic checked) over tcp and
 * over tls+tcp (target: >= 0.7x of the first).
 *
 *   relay_bench [--tls] [frames] [size]   (default 100000 x 200 bytes)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "metrics/metrics.h"
#include "relay.h"
#include "util/util.h"

#define WINDOW 256

typedef struct receiver {
	nng_socket sock;
	atomic_long count;
} receiver;

static void
receive_loop(void *arg)
{
	receiver *r = arg;
	nng_msg *m;
	while (nng_recvmsg(r->sock, &m, 0) == 0) {
		nng_msg_free(m);
		atomic_fetch_add(&r->count, 1);
	}
}

/* The process's auth when frames are sealed (--tls), else NULL. */
static auth *g_seal;

/* One frame: as it is, or sealed as the process's identity (a fresh
 * header each: the relay refuses a replayed one). */
static void
send_frame(nng_socket pub, const char *frame, size_t size)
{
	if (g_seal == NULL) {
		nng_send(pub, (void *) frame, size, 0);
		return;
	}
	size_t tlen = strlen(frame) + 1, len = size;
	uint8_t *buf = malloc(size);
	memcpy(buf, frame, size);
	if (auth_seal(g_seal, &buf, &len, tlen) == 0) {
		nng_send(pub, buf, len, 0);
	}
	free(buf);
}

/* Dial url from s, with the suite's TLS config for tls+tcp://. */
static void
dial(nng_socket s, const char *url)
{
	nng_dialer d;
	if (nng_dialer_create(&d, s, url) != 0
	    || auth_dialer_setup(d, url) != 0 || nng_dialer_start(d, 0) != 0) {
		fprintf(stderr, "cannot dial %s\n", url);
		exit(1);
	}
}

static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0
	    || getsockname(fd, (struct sockaddr *) &a, &len) != 0) {
		perror("free port");
		exit(1);
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* Frames per second delivered from pub_url's publisher to sub_url's
 * subscriber; *lost gets the frames that never arrived. */
static double
run(const char *pub_url, const char *sub_url, bool listen_pub, long n,
    size_t size, long *lost)
{
	nng_socket pub;
	receiver r = { .count = 0 };
	nng_thread *thr;
	char *frame = calloc(1, size);
	memcpy(frame, "health.bench", 13);

	nng_sub0_open(&r.sock);
	nng_socket_set(r.sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	nng_socket_set_int(r.sock, NNG_OPT_RECVBUF, 8192);
	nng_pub0_open(&pub);
	nng_socket_set_int(pub, NNG_OPT_SENDBUF, 8192);
	if (listen_pub) {
		nng_listen(pub, pub_url, NULL, 0);
		dial(r.sock, sub_url);
	} else {
		dial(r.sock, sub_url);
		dial(pub, pub_url);
	}
	nng_thread_create(&thr, receive_loop, &r);
	/* Probe until a frame gets through: every pipe is up then. */
	while (atomic_load(&r.count) == 0) {
		send_frame(pub, frame, size);
		nng_msleep(5);
	}
	nng_msleep(50);
	long base = atomic_load(&r.count);
	uint64_t t0 = od_mono_ns();
	long sent = 0;
	while (sent < n) {
		for (int i = 0; i < WINDOW && sent < n; i++, sent++) {
			send_frame(pub, frame, size);
		}
		/* Wait for the window to drain (1 s at most: then it was
		 * lost). */
		uint64_t waited = od_mono_ns();
		while (atomic_load(&r.count) - base < sent - WINDOW / 2
		    && od_mono_ns() - waited < 1000000000ull) {
			sched_yield();
		}
	}
	uint64_t t_wait = od_mono_ns();
	while (atomic_load(&r.count) - base < sent
	    && od_mono_ns() - t_wait < 1000000000ull) {
		nng_msleep(1);
	}
	long got = atomic_load(&r.count) - base;
	uint64_t t1 = od_mono_ns();
	if (got < sent) {
		t1 = t_wait; /* do not count the final wait for lost frames */
	}
	*lost = sent - got;
	nng_close(pub);
	nng_close(r.sock);
	nng_thread_destroy(thr);
	free(frame);
	return (double) got / ((double) (t1 - t0) / 1e9);
}

static void
device_thread(void *arg)
{
	nng_socket *s = arg;
	nng_device(s[0], s[1]); /* returns when a socket closes */
}

/* One relay_start on fresh ports of scheme; frames/s through it. */
static double
relay_run(const char *scheme, long n, size_t size, const char *what)
{
	char a[64], b[64];
	long lost;
	metrics *m;
	relay *r;
	metrics_new(&m);
	snprintf(a, sizeof(a), "%s://127.0.0.1:%d", scheme, free_port());
	snprintf(b, sizeof(b), "%s://127.0.0.1:%d", scheme, free_port());
	relay_options opt
	    = { .publish_url = a, .subscribe_url = b, .metrics = m };
	if (relay_start(&r, &opt) != 0) {
		fprintf(stderr, "relay_start failed\n");
		exit(1);
	}
	double rate = run(a, b, false, n, size, &lost);
	printf("%-24s %9.0f frames/s (lost %ld)\n", what, rate, lost);
	relay_stop(r);
	metrics_free(m);
	return rate;
}

/*
 * --tls: the relay as it is (auth off, tcp) against the relay with
 * publisher checks (auth on: each frame sealed by the publisher as
 * health-prober, verified and its topic checked by the relay) over tcp
 * and over tls+tcp (target: >= 0.7x). Auth is per process: the plain
 * relay runs before OPSDESK_TLS_DIR is set.
 */
static int
tls_compare(long n, size_t size)
{
	char dir[] = "/tmp/relay_bench.XXXXXX", cmd[128], err[256];
	unsetenv("OPSDESK_TLS_DIR");
	auth_process_reset();
	double plain = relay_run("tcp", n, size, "relay tcp");
	if (mkdtemp(dir) == NULL
	    || auth_certs_init(dir, 1, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "certs: %s\n", err);
		return 1;
	}
	setenv("OPSDESK_TLS_DIR", dir, 1);
	setenv("OPSDESK_IDENTITY", "health-prober", 1);
	auth_process_reset();
	if (auth_process(&g_seal) != 0 || g_seal == NULL) {
		return 1;
	}
	double hmac = relay_run("tcp", n, size, "relay tcp+checks");
	double tls = relay_run("tls+tcp", n, size, "relay tls+tcp+checks");
	printf("bench_relay_tls: plain=%.0f/s checks=%.0f/s tls=%.0f/s "
	       "checks_ratio=%.2fx tls_ratio=%.2fx (target >= 0.7x)\n",
	    plain, hmac, tls, hmac / plain, tls / plain);
	g_seal = NULL;
	auth_process_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	bool tls = argc > 1 && strcmp(argv[1], "--tls") == 0;
	if (tls) {
		argv++;
		argc--;
	}
	long n = argc > 1 ? atol(argv[1]) : 100000;
	size_t size = argc > 2 ? (size_t) atol(argv[2]) : 200;
	char a[64], b[64];
	long lost;

	if (size < 16) {
		size = 16;
	}
	if (tls) {
		return tls_compare(n, size);
	}
	snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", free_port());
	double direct = run(a, a, true, n, size, &lost);
	printf("direct  %9.0f frames/s (lost %ld)\n", direct, lost);

	nng_socket dev[2];
	nng_thread *dt;
	snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", free_port());
	snprintf(b, sizeof(b), "tcp://127.0.0.1:%d", free_port());
	nng_sub0_open_raw(&dev[0]);
	nng_pub0_open_raw(&dev[1]);
	nng_socket_set_int(dev[0], NNG_OPT_RECVBUF, 1024);
	nng_socket_set_int(dev[1], NNG_OPT_SENDBUF, 1024);
	nng_listen(dev[0], a, NULL, 0);
	nng_listen(dev[1], b, NULL, 0);
	nng_thread_create(&dt, device_thread, dev);
	double device = run(a, b, false, n, size, &lost);
	printf("device  %9.0f frames/s (lost %ld)\n", device, lost);
	nng_close(dev[0]);
	nng_close(dev[1]);
	nng_thread_destroy(dt);

	double ours = relay_run("tcp", n, size, "relay");

	printf("%ld frames of %zu bytes: relay/device %.2f, relay/direct "
	       "%.2f\n",
	    n, size, ours / device, ours / direct);
	return 0;
}
