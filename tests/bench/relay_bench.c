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
 *   relay_bench [frames] [size]       (default 100000 x 200 bytes)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
		nng_dial(r.sock, sub_url, NULL, 0);
	} else {
		nng_dial(r.sock, sub_url, NULL, 0);
		nng_dial(pub, pub_url, NULL, 0);
	}
	nng_thread_create(&thr, receive_loop, &r);
	/* Probe until a frame gets through: every pipe is up then. */
	while (atomic_load(&r.count) == 0) {
		nng_send(pub, frame, size, 0);
		nng_msleep(5);
	}
	nng_msleep(50);
	long base = atomic_load(&r.count);
	uint64_t t0 = od_mono_ns();
	long sent = 0;
	while (sent < n) {
		for (int i = 0; i < WINDOW && sent < n; i++, sent++) {
			nng_send(pub, frame, size, 0);
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

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	size_t size = argc > 2 ? (size_t) atol(argv[2]) : 200;
	char a[64], b[64];
	long lost;

	if (size < 16) {
		size = 16;
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

	metrics *m;
	relay *r;
	metrics_new(&m);
	snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", free_port());
	snprintf(b, sizeof(b), "tcp://127.0.0.1:%d", free_port());
	relay_options opt
	    = { .publish_url = a, .subscribe_url = b, .metrics = m };
	if (relay_start(&r, &opt) != 0) {
		fprintf(stderr, "relay_start failed\n");
		return 1;
	}
	double ours = run(a, b, false, n, size, &lost);
	printf("relay   %9.0f frames/s (lost %ld)\n", ours, lost);
	relay_stop(r);
	metrics_free(m);

	printf("%ld frames of %zu bytes: relay/device %.2f, relay/direct "
	       "%.2f\n",
	    n, size, ours / device, ours / direct);
	return 0;
}
