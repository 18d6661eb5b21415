/*
 * ticket_pages — how many bytes (LMDB pages) one group commit of durable
 * ticket creates writes, measured rather than guessed: the commit's page
 * volume is what a create costs on disk, so a layout change is judged by
 * it.
 *
 * The real rpc server and ticket_core run over inproc (no socket writes,
 * so the process's wchar in /proc/self/io is the store's writes alone).
 *   1. Warm-up: `clients` threads create tickets for new users (a
 *      per-thread base + a counter, as ticket_bench does) until the
 *      store holds `warm` tickets, so the B-trees have the depth they
 *      have under the bench.
 *   2. Rounds: a job holding the writer lets exactly `batch` creates (for
 *      `batch` different users) queue up; releasing it makes them one
 *      commit. The round's wchar delta is that commit (the holding job
 *      writes nothing, and LMDB skips the write of an empty txn).
 * It prints bytes and 4 KiB pages per commit and per create; it asserts
 * nothing. With --snapshot S the last round's data.mdb is copied to
 * S/before.mdb and S/after.mdb around its commit, for
 * tests/bench/lmdb_pages.py to say which DB wrote which pages.
 *
 *   ticket_pages [--dir DIR] [--warm N] [--batch B] [--rounds R]
 *                [--clients C] [--snapshot S]
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "ticket.h"
#include "ticket_bench_util.h"
#include "util/util.h"

#define MAX_BATCH 256

/* Copy dir/data.mdb to dest (0 or -1). */
static int
copy_data(const char *dir, const char *dest)
{
	char src[1100], buf[65536];
	FILE *in, *out;
	size_t n;
	int rv = 0;

	snprintf(src, sizeof(src), "%s/data.mdb", dir);
	if ((in = fopen(src, "rb")) == NULL) {
		return -1;
	}
	if ((out = fopen(dest, "wb")) == NULL) {
		fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (fwrite(buf, 1, n, out) != n) {
			rv = -1;
			break;
		}
	}
	fclose(in);
	if (fclose(out) != 0) {
		rv = -1;
	}
	return rv;
}

/* One client thread: in the warm-up it creates until `left` runs out; in
 * the rounds it creates once per `go` post. */
typedef struct client {
	const char *url;
	rpc_client *c;
	long long uid;
	atomic_long *left;
	sem_t go;
	sem_t done;
	bool quit;
	int errors;
} client;

static void *
warm_thread(void *arg)
{
	client *cl = arg;

	while (atomic_fetch_sub(cl->left, 1) > 0) {
		if (bench_create_ticket(cl->c, cl->uid++, NULL) != 0) {
			cl->errors++;
		}
	}
	return NULL;
}

static void *
round_thread(void *arg)
{
	client *cl = arg;

	for (;;) {
		while (sem_wait(&cl->go) != 0) { }
		if (cl->quit) {
			return NULL;
		}
		if (bench_create_ticket(cl->c, cl->uid++, NULL) != 0) {
			cl->errors++;
		}
		sem_post(&cl->done);
	}
}

/* The job that holds the writer until released. */
typedef struct hold {
	sem_t running;
	sem_t release;
	sem_t committed;
} hold;

static int
hold_fn(store_txn *txn, void *arg)
{
	hold *h = arg;

	(void) txn;
	sem_post(&h->running);
	while (sem_wait(&h->release) != 0) { }
	return 0;
}

static void
hold_done(int rv, void *arg)
{
	(void) rv;
	sem_post(&((hold *) arg)->committed);
}

int
main(int argc, char **argv)
{
	const char *base = "/tmp";
	const char *snap = NULL;
	char snap_before[1100], snap_after[1100];
	long warm = 30000;
	int batch = 20, rounds = 30, clients = 64;
	char dir[1024], cmd[1200];
	ticket_policy pol;
	ticket_service svc;
	store *st = NULL;
	rpc_server *srv = NULL;
	store_options so = { 0 };
	rpc_server_options ro = { 0 };
	char url[64];
	client *cl = NULL;
	pthread_t *th = NULL;
	atomic_long left;
	long long total = 0, lo = -1, hi = 0, storage = 0;
	int measured = 0, errors = 0;
	int rv = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dir") == 0) {
			base = argv[i + 1];
		} else if (strcmp(argv[i], "--warm") == 0) {
			warm = atol(argv[i + 1]);
		} else if (strcmp(argv[i], "--batch") == 0) {
			batch = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--rounds") == 0) {
			rounds = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--clients") == 0) {
			clients = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--snapshot") == 0) {
			snap = argv[i + 1];
		}
	}
	if (batch < 1 || batch > MAX_BATCH || clients < batch) {
		fprintf(stderr, "need 1 <= batch <= %d and clients >= batch\n",
		    MAX_BATCH);
		return 2;
	}
	if (bench_io_counter("wchar") < 0) {
		fprintf(stderr, "no /proc/self/io here\n");
		return 2;
	}
	log_init("ticket_pages", "bench", LOG_WARN);
	mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/ticket_pages.%d", base, (int) getpid());

	/* As ticket_bench opens it: no limits, the bench's map. */
	ticket_policy_defaults(&pol);
	pol.open_per_user = 0;
	pol.creations_per_hour = 0;
	so.path = dir;
	so.dbs = ticket_db_names;
	so.schema_version = TICKET_SCHEMA_VERSION;
	so.map_size = 512u << 20;
	snprintf(url, sizeof(url), "inproc://ticket_pages.%d", (int) getpid());
	if (store_open(&st, &so) != 0
	    || ticket_service_init(&svc, &pol, st, NULL, NULL, NULL) != 0) {
		fprintf(stderr, "cannot open the store in %s\n", dir);
		goto out;
	}
	rpc_server_options_init(&ro, url,
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor, ticket_methods,
	    ticket_n_methods, &svc);
	ro.store = st;
	ro.service = TICKET_SERVICE;
	ro.instance = "pages";
	if (rpc_server_start(&srv, &ro) != 0) {
		fprintf(stderr, "cannot start the rpc server on %s\n", url);
		goto out;
	}
	cl = calloc((size_t) clients, sizeof(*cl));
	th = calloc((size_t) clients, sizeof(*th));
	if (cl == NULL || th == NULL) {
		goto out;
	}
	atomic_store(&left, warm);
	for (int i = 0; i < clients; i++) {
		cl[i].url = url;
		cl[i].uid = 1000000000LL + i * 10000000LL;
		cl[i].left = &left;
		sem_init(&cl[i].go, 0, 0);
		sem_init(&cl[i].done, 0, 0);
		if (rpc_client_open(&cl[i].c, url, 10000) != 0) {
			goto out;
		}
	}

	/* 1. warm-up */
	for (int i = 0; i < clients; i++) {
		pthread_create(&th[i], NULL, warm_thread, &cl[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
	}

	/* 2. rounds of exactly `batch` creates in one commit */
	for (int i = 0; i < batch; i++) {
		pthread_create(&th[i], NULL, round_thread, &cl[i]);
	}
	for (int r = 0; r < rounds; r++) {
		hold h;
		store_stats s0, s1;
		long long w0, w1, b0, b1, d;

		sem_init(&h.running, 0, 0);
		sem_init(&h.release, 0, 0);
		sem_init(&h.committed, 0, 0);
		if (store_submit(st, hold_fn, &h, hold_done, &h) != 0) {
			goto out;
		}
		while (sem_wait(&h.running) != 0) { }
		for (int i = 0; i < batch; i++) {
			sem_post(&cl[i].go);
		}
		/* Every create queued behind the holding job. */
		do {
			usleep(1000);
			store_get_stats(st, &s0);
		} while (s0.queue_depth < (uint64_t) batch);
		/* Copied outside the counted span: it writes too. */
		if (snap != NULL && r == rounds - 1) {
			mkdir(snap, 0700);
			snprintf(snap_before, sizeof(snap_before),
			    "%s/before.mdb", snap);
			snprintf(snap_after, sizeof(snap_after),
			    "%s/after.mdb", snap);
			if (copy_data(dir, snap_before) != 0) {
				fprintf(
				    stderr, "cannot write %s\n", snap_before);
			}
		}
		w0 = bench_io_counter("wchar");
		b0 = bench_io_counter("write_bytes");
		sem_post(&h.release);
		for (int i = 0; i < batch; i++) {
			while (sem_wait(&cl[i].done) != 0) { }
		}
		while (sem_wait(&h.committed) != 0) { }
		w1 = bench_io_counter("wchar");
		b1 = bench_io_counter("write_bytes");
		store_get_stats(st, &s1);
		if (snap != NULL && r == rounds - 1
		    && copy_data(dir, snap_after) != 0) {
			fprintf(stderr, "cannot write %s\n", snap_after);
		}
		sem_destroy(&h.running);
		sem_destroy(&h.release);
		sem_destroy(&h.committed);
		/* A round whose creates did not share one commit (a prune
		 * job slipped in) is not counted. */
		if (s1.commits - s0.commits > 2
		    || s1.jobs - s0.jobs != (uint64_t) batch + 1) {
			continue;
		}
		d = w1 - w0;
		total += d;
		storage += b1 - b0;
		lo = lo < 0 || d < lo ? d : lo;
		hi = d > hi ? d : hi;
		measured++;
	}
	for (int i = 0; i < batch; i++) {
		cl[i].quit = true;
		sem_post(&cl[i].go);
		pthread_join(th[i], NULL);
	}
	for (int i = 0; i < clients; i++) {
		errors += cl[i].errors;
	}
	if (measured == 0) {
		fprintf(stderr, "no round measured\n");
		goto out;
	}
	printf("ticket schema %u, %ld tickets before, %d rounds of %d creates "
	       "(%d errors)\n",
	    (unsigned) TICKET_SCHEMA_VERSION, warm, measured, batch, errors);
	printf("per commit: %.0f bytes = %.1f pages (min %.1f, max %.1f)\n",
	    (double) total / measured, (double) total / measured / 4096.0,
	    (double) lo / 4096.0, (double) hi / 4096.0);
	printf("per create: %.0f bytes = %.2f pages\n",
	    (double) total / measured / batch,
	    (double) total / measured / batch / 4096.0);
	printf("accounted to storage (write_bytes): %.0f KiB per commit, "
	       "%.1f KiB per create\n",
	    (double) storage / measured / 1024.0,
	    (double) storage / measured / batch / 1024.0);
	rv = 0;
out:
	if (cl != NULL) {
		for (int i = 0; i < clients; i++) {
			rpc_client_close(cl[i].c);
		}
	}
	rpc_server_stop(srv);
	ticket_service_fini(&svc);
	store_close(st);
	free(cl);
	free(th);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", dir);
	}
	return rv;
}
