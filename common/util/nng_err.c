/*
 * od_nng_err — one mapping from NNG's error codes to od_err, for every
 * module that talks to NNG (bus, rpc); od_nng_close — a socket close that
 * cannot hang a shutdown. See util.h.
 */
#include <errno.h>
#include <nng/nng.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

static void (*_Atomic report_fn)(const char *msg);

void
od_set_report(void (*fn)(const char *msg))
{
	atomic_store(&report_fn, fn);
}

static void
report(const char *msg)
{
	void (*fn)(const char *) = atomic_load(&report_fn);
	if (fn != NULL) {
		fn(msg);
	} else {
		fprintf(stderr, "%s\n", msg);
	}
}

int
od_nng_err(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return OD_ENOMEM;
	case NNG_ECLOSED:
		return OD_ECLOSED;
	case NNG_ETIMEDOUT:
		return OD_ETIMEDOUT;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP: /* an unknown URL scheme */
		return OD_EINVAL;
	case NNG_EADDRINUSE:
		return OD_EEXIST;
	case NNG_EMSGSIZE:
		return OD_ETOOBIG;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
		return OD_EUNAVAIL;
	default:
		return OD_EIO;
	}
}

/*
 * nng_close can hang in NNG 1.5.2: under load, its single reaper thread
 * may wait for ever on a REP pipe's receive aio that nothing will finish
 * (reproduced by clients sending through a SIGTERM, about one stop in ten
 * under ASan: the reaper sits in rep0_pipe_stop), and from then on every
 * other close waits for that reaper too. A service that never exits is
 * worse than one that leaves sockets behind as it exits; everything it
 * acknowledged is already durable. So the close runs on a thread of its
 * own and the caller waits a while; once one close is stuck, later ones
 * are not even tried.
 */
#define OD_NNG_CLOSE_WAIT_MS 5000

static atomic_bool nng_wedged;

typedef struct closer {
	nng_socket sock;
	sem_t done;
	atomic_int refs; /* the closer thread and the waiter */
} closer;

static void
closer_rele(closer *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1) {
		sem_destroy(&c->done);
		free(c);
	}
}

static void *
closer_main(void *arg)
{
	closer *c = arg;
	nng_close(c->sock);
	sem_post(&c->done);
	closer_rele(c);
	return NULL;
}

bool
od_nng_close(nng_socket sock)
{
	closer *c;
	pthread_t th;
	struct timespec ts;
	bool closed = false;

	if (atomic_load(&nng_wedged)) {
		return false;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL
	    || sem_init(&c->done, 0, 0) != 0) {
		free(c);
		nng_close(sock); /* no memory for a thread: wait here */
		return true;
	}
	c->sock = sock;
	atomic_init(&c->refs, 2);
	if (pthread_create(&th, NULL, closer_main, c) != 0) {
		atomic_store(&c->refs, 1);
		closer_rele(c);
		nng_close(sock);
		return true;
	}
	pthread_detach(th);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += OD_NNG_CLOSE_WAIT_MS / 1000;
	for (;;) {
		if (sem_timedwait(&c->done, &ts) == 0) {
			closed = true;
			break;
		}
		if (errno != EINTR) {
			break;
		}
	}
	closer_rele(c);
	if (!closed && !atomic_exchange(&nng_wedged, true)) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		    "an NNG socket did not close within %d ms (an NNG 1.5 "
		    "hang); its resources are left to the process exit",
		    OD_NNG_CLOSE_WAIT_MS);
		report(msg);
	}
	return closed;
}

static void *volatile abandoned[64];
static atomic_int n_abandoned;

void
od_nng_abandon(void *p)
{
	int i = atomic_fetch_add(&n_abandoned, 1);
	if (i < 64) {
		abandoned[i] = p;
	}
}
