/*
 * outbox_bench — the gateway's delivery scheduler against the depth of
 * its backlog, in one run: the cost of picking the next message and the
 * process's anonymous memory with 1,000 and with 100,000 broadcast
 * messages queued, and how soon a reply queued behind 100,000 goes.
 * The scheduler reads the front of LMDB indexes, so neither may grow
 * with the backlog: asserts the per-send cost ratio (100k vs 1k) stays
 * under 3 and anonymous memory under 64 MB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"

static int64_t fake_now = 1700000000000LL;

static int64_t
fake_clock(void *arg)
{
	(void) arg;
	return fake_now;
}

static long
status_kb(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, strlen(field)) == 0) {
			v = atol(line + strlen(field) + 1);
		}
	}
	fclose(f);
	return v;
}

typedef struct put_job {
	int lane;
	int64_t chat0;
	int n;
} put_job;

static int
put_fn(store_txn *t, void *arg)
{
	put_job *j = arg;
	char body[160];
	for (int i = 0; i < j->n; i++) {
		/* The body names the row's chat, as the gateway's own do:
		 * the fake Bot API counts its limits per body chat_id. */
		snprintf(body, sizeof(body),
		    "{\"chat_id\":%lld,\"text\":\"🟠 <b>Status: Partial "
		    "outage</b>\\nAPI: operational → major_outage\"}",
		    (long long) (j->chat0 + i));
		gw_out o
		    = { "sendMessage", j->chat0 + i, body, "", GW_LANE_AUTO };
		int rv = gw_outbox_put(t, &o, j->lane);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

static void
queue(store *st, int lane, int64_t chat0, int n)
{
	for (int done = 0; done < n; done += 10000) {
		put_job j = { lane, chat0 + done,
			n - done < 10000 ? n - done : 10000 };
		if (store_write(st, put_fn, &j) != 0) {
			fprintf(stderr, "queueing failed\n");
			exit(1);
		}
	}
}

/* Send `sends` messages at 30/s on the fake clock; the real time spent
 * in pick + commit per send, in microseconds. */
static double
drain(store *st, ob_sched *s, int sends, int64_t *first_chat)
{
	ob_msg m[64];
	ob_outcome o[64];
	int sent = 0;
	uint64_t t0 = od_mono_ns();
	while (sent < sends) {
		int64_t wake;
		int n = gw_ob_sched_pick(s, st, fake_now, m, 64, &wake);
		for (int i = 0; i < n; i++) {
			if (sent == 0 && i == 0 && first_chat != NULL) {
				*first_chat = m[i].chat_id;
			}
			memset(&o[i], 0, sizeof(o[i]));
			o[i].msg = m[i];
			o[i].msg.body = NULL;
			o[i].verdict = BOTAPI_OK;
			free(m[i].body);
		}
		if (gw_ob_sched_commit(s, st, o, n, NULL) != 0) {
			fprintf(stderr, "commit failed\n");
			exit(1);
		}
		sent += n;
		fake_now = wake > fake_now ? wake : fake_now + 1;
	}
	return (double) (od_mono_ns() - t0) / 1000.0 / sends;
}

static void
run(const char *dir, int depth, double *us, long *anon_kb, int64_t *first)
{
	char path[512];
	store *st = NULL;
	ob_sched *s = NULL;
	throttle_limits lim = { 30, 1, 20 };

	snprintf(path, sizeof(path), "%s/outbox-%d", dir, depth);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", path, path);
	if (system(cmd) != 0) {
		exit(1);
	}
	store_options so
	    = { .path = path, .dbs = gw_db_names, .map_size = 1ULL << 30 };
	if (store_open(&st, &so) != 0 || gw_ob_sched_new(&s, &lim, 16) != 0) {
		fprintf(stderr, "cannot open the store\n");
		exit(1);
	}
	queue(st, GW_LANE_BROADCAST, 1000000, depth);
	queue(st, GW_LANE_REPLY, 42, 1);
	*us = drain(st, s, 600, first);
	*anon_kb = status_kb("RssAnon:");
	gw_ob_sched_free(s);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
	if (system(cmd) != 0) {
		exit(1);
	}
}

/* --fill DIR N: a gateway store at DIR with N broadcasts queued, on the
 * real clock, for gateway_rss_bench.py to start the gateway on. */
static int
fill(const char *dir, int n)
{
	store *st = NULL;
	store_options so = { .path = dir, .dbs = gw_db_names };
	if (store_open(&st, &so) != 0) {
		fprintf(stderr, "cannot open a store at %s\n", dir);
		return 1;
	}
	queue(st, GW_LANE_BROADCAST, 100000000, n);
	store_close(st);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir
	    = argc > 2 && strcmp(argv[1], "--dir") == 0 ? argv[2] : "/tmp";
	double us_small, us_big;
	long anon_small, anon_big;
	int64_t first_small, first_big;

	if (argc > 3 && strcmp(argv[1], "--fill") == 0) {
		return fill(argv[2], atoi(argv[3]));
	}
	od_clock_set(fake_clock, NULL);
	run(dir, 1000, &us_small, &anon_small, &first_small);
	run(dir, 100000, &us_big, &anon_big, &first_big);
	printf(
	    "outbox scheduler, pick + commit per send (600 sends at 30/s):\n"
	    "  1,000 queued:   %.1f us, RssAnon %ld kB\n"
	    "  100,000 queued: %.1f us, RssAnon %ld kB\n"
	    "  ratio %.2f; first message sent: chat %lld (the reply) "
	    "with 100,000 broadcasts ahead of it\n",
	    us_small, anon_small, us_big, anon_big, us_big / us_small,
	    (long long) first_big);
	int bad = 0;
	if (us_big / us_small > 3.0) {
		fprintf(stderr, "FAIL: picking grows with the backlog\n");
		bad = 1;
	}
	if (anon_big > 64 * 1024) {
		fprintf(stderr, "FAIL: RssAnon %ld kB > 64 MB\n", anon_big);
		bad = 1;
	}
	if (first_big != 42 || first_small != 42) {
		fprintf(stderr, "FAIL: the reply did not go first\n");
		bad = 1;
	}
	return bad;
}
