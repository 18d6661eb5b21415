/*
 * slo_bench — health-prober's evaluation round (prober_slo_round) over
 * 10,000 targets with a 30-day availability and a p95 latency objective
 * each, in one run: with 1 day of history behind the counters, then with
 * 90 days. The round reads rolling counters, never the history, so its
 * CPU must not grow with it: asserts the 90-day round costs under twice
 * the 1-day one (a ratio in the same run; the absolute figure, which the
 * issue wants under 50 ms, is printed). Also prints the counters' memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prober_impl.h"
#include "util/util.h"

#define N_TARGETS 10000
#define MIN       60000LL
#define HOUR      3600000LL
#define DAY       86400000LL
#define ROUNDS    36 /* 3 minutes of 5 s rounds: slots enter and leave */

static _Atomic int64_t fake_now;

static int64_t
fake_clock(void *arg)
{
	(void) arg;
	return fake_now;
}

static double
cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static long
rss_kb(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			v = atol(line + 6);
		}
	}
	fclose(f);
	return v;
}

/* A prober over an empty store with N_TARGETS objectives' counters. */
static prober *
make(const char *dir, store **st)
{
	sbuf b = SBUF_INIT;
	config *c = NULL;
	prober *p = NULL;
	char err[256];
	store_options so = { .path = dir, .dbs = prober_db_names };
	so.nosync = true;

	sbuf_append(&b, "{\"targets\":[");
	for (int i = 0; i < N_TARGETS; i++) {
		sbuf_printf(&b,
		    "%s{\"id\":\"t%d\",\"kind\":\"tcp\",\"host\":\"127.0.0."
		    "1\","
		    "\"port\":1,\"slo\":{\"availability\":99.9,\"latency\":"
		    "{\"p95\":\"100ms\"},\"window\":\"30d\"}}",
		    i ? "," : "", i);
	}
	sbuf_append(&b, "]}");
	if (config_load_string(
	        &c, "health-prober", NULL, sbuf_str(&b), err, sizeof(err))
	        != 0
	    || store_open(st, &so) != 0
	    || prober_new(&p, c, NULL, err, sizeof(err)) != 0
	    || prober_attach(p, *st, NULL, NULL, "bench", "/") != 0) {
		fprintf(stderr, "set-up failed: %s\n", err);
		exit(1);
	}
	config_free(c);
	sbuf_free(&b);
	return p;
}

/* Feed days of history into every target's counters (one result per
 * target every step ms, 1 in 500 down, 1 in 20 slow), as prober_feed
 * does, ending at fake_now. */
static void
history(prober *p, int64_t days, int64_t step)
{
	int64_t from = fake_now - days * DAY;
	uint32_t k = 0;
	for (int64_t t = from; t < fake_now; t += step) {
		for (size_t i = 0; i < p->ts.n; i++, k++) {
			prober_slo_record(p->rt[i].slo, p->ts.v[i].slo, t,
			    false, k % 500 == 0, k % 20 == 0 ? 300 : 20);
		}
	}
}

/* CPU ms per round, rounds every 5 s with a result per target between. */
static double
rounds(prober *p)
{
	double total = 0;
	for (int r = 0; r < ROUNDS; r++) {
		double t0;
		fake_now += 5000;
		for (size_t i = 0; i < p->ts.n; i++) {
			prober_slo_record(p->rt[i].slo, p->ts.v[i].slo,
			    fake_now, false, false, 20);
		}
		t0 = cpu_ms();
		(void) prober_slo_round(p, fake_now);
		total += cpu_ms() - t0;
	}
	return total / ROUNDS;
}

static double
run(const char *base, int64_t days, int64_t step, long *mem_kb)
{
	char dir[512], cmd[1100];
	store *st = NULL;
	prober *p;
	long before;
	double ms;

	snprintf(dir, sizeof(dir), "%s/slo_bench.%d.%lld", base,
	    (int) getpid(), (long long) days);
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(cmd) != 0) {
		exit(1);
	}
	fake_now = 1795132800000LL; /* 2026-11-20 */
	before = rss_kb();
	p = make(dir, &st);
	history(p, days, step);
	*mem_kb = rss_kb() - before;
	ms = rounds(p);
	prober_stop(p);
	store_close(st);
	prober_free(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void) system(cmd);
	return ms;
}

int
main(int argc, char **argv)
{
	const char *base
	    = argc > 2 && strcmp(argv[1], "--dir") == 0 ? argv[2] : "/tmp";
	long mem1, mem90;
	double d1, d90;

	od_clock_set(fake_clock, NULL);
	/* The same number of results either way: the history's length is
	 * what differs. */
	d1 = run(base, 1, 5 * MIN, &mem1);
	d90 = run(base, 90, 450 * MIN, &mem90);
	printf("slo_bench: %d targets x 2 objectives (30 d), %d rounds\n",
	    N_TARGETS, ROUNDS);
	printf("  round CPU, 1 day of history:   %.2f ms\n", d1);
	printf("  round CPU, 90 days of history: %.2f ms\n", d90);
	printf("  ratio 90 d / 1 d: %.2f (want < 2)\n", d90 / d1);
	printf("  process RSS for targets + counters: %ld KB (1 d), %ld KB "
	       "(90 d)\n",
	    mem1, mem90);
	if (d90 / d1 >= 2.0) {
		fprintf(stderr, "FAIL: the round grows with the history\n");
		return 1;
	}
	return 0;
}
