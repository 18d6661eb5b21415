/*
 * ticket_bench — durable ticket creates through the real rpc server and
 * ticket_core, against baselines measured in the same run on the same
 * filesystem:
 *   1. raw LMDB, one synced commit per write (what a naive service does);
 *   2. 64 concurrent clients creating tickets over NNG tcp loopback, each
 *      reply sent only after its group commit (target: >= 20,000/s and
 *      >= 15x the raw rate);
 *   3. one client's p50 create latency against a raw NNG req/rep round
 *      trip plus one fdatasync (target: <= 2x).
 * It prints figures and ratios; it asserts nothing about time.
 *
 *   ticket_bench [--dir DIR] [--seconds S] [--clients C] [--creates-only]
 *                [--tls]
 *
 * --creates-only runs just the concurrent creates (for perf record).
 * --tls runs only: the concurrent creates over plain tcp (auth off)
 * against the same over tls+tcp with the HMAC header (target: >= 0.7x).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <sys/socket.h>

#include "auth/auth.h"
#include "log/log.h"
#include "rpc/rpc.h"
#include "store/store.h"
#include "ticket.h"
#include "ticket_bench_util.h"
#include "util/util.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return (x > y) - (x < y);
}

static uint64_t
p50(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n ? v[n / 2] : 0;
}

static int
free_port(void)
{
	struct sockaddr_in sa = { 0 };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = 0;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0
	    && getsockname(fd, (struct sockaddr *) &sa, &len) == 0) {
		port = ntohs(sa.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static void
rm_rf(const char *dir)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", dir);
	}
}

/* ---- 1. raw LMDB: one synced commit per write ---- */

static double
raw_lmdb_rate(const char *dir, double seconds)
{
	MDB_env *env = NULL;
	MDB_dbi dbi;
	MDB_txn *txn;
	char val[300];
	uint64_t n = 0;
	int64_t t0, end;

	memset(val, 'x', sizeof(val));
	mkdir(dir, 0700);
	if (mdb_env_create(&env) != 0
	    || mdb_env_set_mapsize(env, 256u << 20) != 0
	    || mdb_env_open(env, dir, 0, 0600) != 0) {
		fprintf(stderr, "raw lmdb: cannot open %s\n", dir);
		return 0;
	}
	mdb_txn_begin(env, NULL, 0, &txn);
	mdb_dbi_open(txn, NULL, 0, &dbi);
	mdb_txn_commit(txn);
	t0 = od_mono_ms();
	end = t0 + (int64_t) (seconds * 1000);
	while (od_mono_ms() < end) {
		uint8_t k[8];
		MDB_val key = { 8, k }, v = { sizeof(val), val };
		store_key_u64(k, n);
		if (mdb_txn_begin(env, NULL, 0, &txn) != 0
		    || mdb_put(txn, dbi, &key, &v, 0) != 0
		    || mdb_txn_commit(txn) != 0) {
			break;
		}
		n++;
	}
	mdb_env_close(env);
	return (double) n * 1000.0 / (double) (od_mono_ms() - t0);
}

/* ---- 2. the service ---- */

typedef struct bench {
	const char *url;
	double seconds;
	atomic_long total;
	atomic_long errors;
	atomic_int ready;
	atomic_int go;
	int clients;
	bool reads; /* get_tier instead of create: the transport's ceiling */
} bench;

/* A small read (RPC_READ, no store write): what NNG, the rpc layer and
 * the threads cost per call on this machine. */
static int
read_once(rpc_client *c, long long uid)
{
	Opsdesk__V1__TicketRequest req = OPSDESK__V1__TICKET_REQUEST__INIT;
	Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__GetTierRequest gt = OPSDESK__V1__GET_TIER_REQUEST__INIT;
	Opsdesk__V1__TicketReply *r = NULL;
	int rv;

	a.user_id = uid;
	req.actor = &a;
	req.method_case = OPSDESK__V1__TICKET_REQUEST__METHOD_GET_TIER;
	req.get_tier = &gt;
	rv = rpc_client_call(c, &req.base,
	    &opsdesk__v1__ticket_reply__descriptor, (ProtobufCMessage **) &r,
	    10000);
	if (rv == 0 && r->error != NULL) {
		rv = OD_ERPC;
	}
	protobuf_c_message_free_unpacked(r != NULL ? &r->base : NULL, NULL);
	return rv;
}

static void *
client_thread(void *arg)
{
	bench *b = arg;
	rpc_client *c = NULL;
	long id = atomic_fetch_add(&b->ready, 1);
	long long uid = 1000000000LL + id * 10000000LL;
	int64_t end;

	if (rpc_client_open(&c, b->url, 10000) != 0) {
		return NULL;
	}
	while (!rpc_client_connected(c)) {
		usleep(2000);
	}
	while (!atomic_load(&b->go)) {
		usleep(1000);
	}
	end = od_mono_ms() + (int64_t) (b->seconds * 1000);
	while (od_mono_ms() < end) {
		if ((b->reads ? read_once(c, uid++)
		              : bench_create_ticket(c, uid++, NULL))
		    == 0) {
			atomic_fetch_add(&b->total, 1);
		} else {
			atomic_fetch_add(&b->errors, 1);
		}
	}
	rpc_client_close(c);
	return NULL;
}

/* Run `clients` threads for `seconds`; calls per second. */
static double
run_clients(
    const char *url, double seconds, int clients, bool reads, long *errors)
{
	bench b = { 0 };
	pthread_t *th = calloc((size_t) clients, sizeof(*th));
	int64_t t0;
	double rate;

	if (th == NULL) {
		return 0;
	}
	b.url = url;
	b.seconds = seconds;
	b.clients = clients;
	b.reads = reads;
	for (int i = 0; i < clients; i++) {
		pthread_create(&th[i], NULL, client_thread, &b);
	}
	while (atomic_load(&b.ready) < clients) {
		usleep(1000);
	}
	usleep(200000);
	t0 = od_mono_ms();
	atomic_store(&b.go, 1);
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i], NULL);
	}
	rate = (double) atomic_load(&b.total) * 1000.0
	    / (double) (od_mono_ms() - t0);
	if (errors != NULL) {
		*errors = atomic_load(&b.errors);
	}
	free(th);
	return rate;
}

/* ---- 3. raw NNG round trip and fsync ---- */

static void *
echo_thread(void *arg)
{
	nng_socket *rep = arg;
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(*rep, &m, 0) != 0) {
			return NULL;
		}
		if (nng_sendmsg(*rep, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
}

static uint64_t
nng_rtt_p50_ns(int n)
{
	nng_socket rep, req;
	pthread_t th;
	char url[64];
	char payload[160];
	uint64_t *v = calloc((size_t) n, sizeof(*v));
	uint64_t res;

	memset(payload, 'p', sizeof(payload));
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
	nng_rep0_open(&rep);
	nng_req0_open(&req);
	nng_listen(rep, url, NULL, 0);
	nng_dial(req, url, NULL, 0);
	pthread_create(&th, NULL, echo_thread, &rep);
	for (int i = 0; i < n + 100; i++) {
		nng_msg *m;
		uint64_t t0 = od_mono_ns();
		nng_msg_alloc(&m, 0);
		nng_msg_append(m, payload, sizeof(payload));
		nng_sendmsg(req, m, 0);
		if (nng_recvmsg(req, &m, 0) == 0) {
			nng_msg_free(m);
		}
		if (i >= 100) { /* warm-up first */
			v[i - 100] = od_mono_ns() - t0;
		}
	}
	nng_close(req);
	nng_close(rep);
	pthread_join(th, NULL);
	res = p50(v, (size_t) n);
	free(v);
	return res;
}

static uint64_t
fsync_p50_ns(const char *dir, int n)
{
	char path[1100];
	char buf[512];
	uint64_t *v = calloc((size_t) n, sizeof(*v));
	uint64_t res;
	int fd;

	memset(buf, 'f', sizeof(buf));
	snprintf(path, sizeof(path), "%s/fsync.dat", dir);
	if ((fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600)) < 0) {
		free(v);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		uint64_t t0 = od_mono_ns();
		if (pwrite(fd, buf, sizeof(buf), (off_t) (i % 16) * 4096) < 0
		    || fdatasync(fd) != 0) {
			break;
		}
		v[i] = od_mono_ns() - t0;
	}
	close(fd);
	unlink(path);
	res = p50(v, (size_t) n);
	free(v);
	return res;
}

/* ---- 4. --tls: the trust boundary's cost on durable creates ---- */

typedef struct svc_run {
	ticket_service svc;
	store *st;
	rpc_server *srv;
	char url[64];
} svc_run;

static int
svc_start(svc_run *r, const char *path, const char *scheme)
{
	ticket_policy pol;
	store_options so = { 0 };
	rpc_server_options ro = { 0 };

	ticket_policy_defaults(&pol);
	pol.open_per_user = 0;
	pol.creations_per_hour = 0;
	so.path = path;
	so.dbs = ticket_db_names;
	so.schema_version = TICKET_SCHEMA_VERSION;
	so.map_size = 512u << 20;
	snprintf(
	    r->url, sizeof(r->url), "%s://127.0.0.1:%d", scheme, free_port());
	if (store_open(&r->st, &so) != 0
	    || ticket_service_init(&r->svc, &pol, r->st, NULL, NULL, NULL)
	        != 0) {
		fprintf(stderr, "cannot open the store in %s\n", path);
		return -1;
	}
	rpc_server_options_init(&ro, r->url,
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor, ticket_methods,
	    ticket_n_methods, &r->svc);
	ro.store = r->st;
	ro.service = TICKET_SERVICE;
	ro.instance = "bench";
	if (rpc_server_start(&r->srv, &ro) != 0) {
		fprintf(stderr, "cannot start the rpc server on %s\n", r->url);
		return -1;
	}
	return 0;
}

static void
svc_stop(svc_run *r)
{
	rpc_server_stop(r->srv);
	ticket_service_fini(&r->svc);
	store_close(r->st);
}

/*
 * Durable creates from `clients` clients over plain tcp with auth off,
 * then over tls+tcp with auth on (credentials of a fresh `certs init`,
 * the clients signing as telegram-gateway), each on a fresh store of its
 * own so that both start from the same size (target: tls >= 0.7x).
 */
static int
tls_compare(const char *dir, double seconds, int clients)
{
	char path[1200], err[256];
	svc_run plain, tls;
	long e_plain = 0, e_tls = 0;

	unsetenv("OPSDESK_TLS_DIR");
	auth_process_reset();
	snprintf(path, sizeof(path), "%s/plain", dir);
	if (svc_start(&plain, path, "tcp") != 0) {
		return 1;
	}
	double r_plain
	    = run_clients(plain.url, seconds, clients, false, &e_plain);
	svc_stop(&plain);

	snprintf(path, sizeof(path), "%s/tls", dir);
	if (auth_certs_init(path, 1, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "certs: %s\n", err);
		return 1;
	}
	setenv("OPSDESK_TLS_DIR", path, 1);
	setenv("OPSDESK_IDENTITY", "telegram-gateway", 1);
	auth_process_reset();
	snprintf(path, sizeof(path), "%s/tls-store", dir);
	if (svc_start(&tls, path, "tls+tcp") != 0) {
		return 1;
	}
	double r_tls = run_clients(tls.url, seconds, clients, false, &e_tls);
	svc_stop(&tls);
	auth_process_reset();
	printf("durable creates, %d clients: plain tcp %.0f/s (%ld errors), "
	       "tls+tcp with HMAC %.0f/s (%ld errors)\n",
	    clients, r_plain, e_plain, r_tls, e_tls);
	printf("bench_ticket_tls: plain=%.0f/s tls=%.0f/s ratio=%.2fx "
	       "(target >= 0.7x)\n",
	    r_plain, r_tls, r_plain > 0 ? r_tls / r_plain : 0);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *base = "/tmp";
	double seconds = 3;
	int clients = 64;
	bool creates_only = false, tls = false;
	char dir[1024], raw_dir[1100], svc_dir[1100];
	ticket_policy pol;
	ticket_service svc;
	store *st = NULL;
	rpc_server *srv = NULL;
	store_options so = { 0 };
	rpc_server_options ro = { 0 };
	char url[64];
	double raw, rate, reads = 0;
	long errors = 0;
	uint64_t lat[400];
	uint64_t one_p50 = 0, rtt, fs;
	rpc_client *c = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--creates-only") == 0) {
			creates_only = true;
			continue;
		}
		if (strcmp(argv[i], "--tls") == 0) {
			tls = true;
			continue;
		}
		if (i + 1 >= argc) {
			break;
		}
		if (strcmp(argv[i], "--dir") == 0) {
			base = argv[i + 1];
		} else if (strcmp(argv[i], "--seconds") == 0) {
			seconds = atof(argv[i + 1]);
		} else if (strcmp(argv[i], "--clients") == 0) {
			clients = atoi(argv[i + 1]);
		}
		i++;
	}
	log_init("ticket_bench", "bench", LOG_WARN);
	mkdir(base, 0700);
	snprintf(dir, sizeof(dir), "%s/ticket_bench.%d", base, (int) getpid());
	mkdir(dir, 0700);
	snprintf(raw_dir, sizeof(raw_dir), "%s/raw", dir);
	snprintf(svc_dir, sizeof(svc_dir), "%s/svc", dir);
	if (tls) {
		int rv = tls_compare(dir, seconds, clients);
		rm_rf(dir);
		return rv;
	}

	raw = creates_only ? 0
	                   : raw_lmdb_rate(raw_dir, seconds < 2 ? seconds : 2);
	if (!creates_only) {
		printf(
		    "raw LMDB, one synced commit per write: %.0f writes/s\n",
		    raw);
	}

	ticket_policy_defaults(&pol);
	pol.open_per_user = 0;
	pol.creations_per_hour = 0;
	so.path = svc_dir;
	so.dbs = ticket_db_names;
	so.schema_version = TICKET_SCHEMA_VERSION;
	so.map_size = 512u << 20;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
	if (store_open(&st, &so) != 0
	    || ticket_service_init(&svc, &pol, st, NULL, NULL, NULL) != 0) {
		fprintf(stderr, "cannot open the store in %s\n", svc_dir);
		return 1;
	}
	rpc_server_options_init(&ro, url,
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor, ticket_methods,
	    ticket_n_methods, &svc);
	ro.store = st;
	ro.service = TICKET_SERVICE;
	ro.instance = "bench";
	if (rpc_server_start(&srv, &ro) != 0) {
		fprintf(stderr, "cannot start the rpc server on %s\n", url);
		return 1;
	}

	if (creates_only) {
		goto creates;
	}
	/* One client first: latency, unloaded. */
	rpc_client_open(&c, url, 10000);
	while (!rpc_client_connected(c)) {
		usleep(2000);
	}
	for (int i = 0; i < 50; i++) {
		bench_create_ticket(c, 1 + i, NULL);
	}
	for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++) {
		bench_create_ticket(c, 100 + (long long) i, &lat[i]);
	}
	rpc_client_close(c);
	one_p50 = p50(lat, sizeof(lat) / sizeof(lat[0]));

	reads = run_clients(url, seconds, clients, true, NULL);
	printf("rpc reads (get_tier), %d clients: %.0f/s (the transport's "
	       "ceiling here)\n",
	    clients, reads);
creates:;
	store_stats s0;
	store_get_stats(st, &s0);
	long long wb0 = bench_io_counter("wchar");
	rate = run_clients(url, seconds, clients, false, &errors);
	{
		store_stats ss;
		store_get_stats(st, &ss);
		unsigned long long wb
		    = (unsigned long long) (bench_io_counter("wchar") - wb0);
		unsigned long long jobs = ss.jobs - s0.jobs;
		unsigned long long commits = ss.commits - s0.commits;
		printf("durable creates, %d clients: %.0f/s (%ld errors; %llu "
		       "commits of %llu jobs, %llu failed, largest batch "
		       "%llu, %llu map growths)\n",
		    clients, rate, errors, (unsigned long long) ss.commits,
		    (unsigned long long) ss.jobs,
		    (unsigned long long) ss.jobs_failed,
		    (unsigned long long) ss.max_batch_seen,
		    (unsigned long long) ss.map_grows);
		printf("written by LMDB: %.1f KiB per create, %.0f KiB per "
		       "commit (%.1f creates per commit)\n",
		    jobs ? (double) wb / 1024.0 / (double) jobs : 0,
		    commits ? (double) wb / 1024.0 / (double) commits : 0,
		    commits ? (double) jobs / (double) commits : 0);
	}
	rpc_server_stop(srv);
	ticket_service_fini(&svc);
	store_close(st);

	if (creates_only) {
		printf("%.0f creates/s\n", rate);
		rm_rf(dir);
		return 0;
	}
	rtt = nng_rtt_p50_ns(2000);
	fs = fsync_p50_ns(dir, 200);
	printf("ratio to raw LMDB: %.1fx (target >= 15x; >= 20000/s)\n",
	    raw > 0 ? rate / raw : 0);
	printf("one client: create p50 %.0f us; raw NNG round trip p50 %.0f "
	       "us + fdatasync p50 %.0f us = %.0f us; ratio %.2f (target "
	       "<= 2)\n",
	    one_p50 / 1e3, rtt / 1e3, fs / 1e3, (rtt + fs) / 1e3,
	    (rtt + fs) > 0 ? (double) one_p50 / (double) (rtt + fs) : 0);
	/* LMDB syncs twice per commit (the pages, then the meta page), so
	 * a durable reply cannot come back faster than this. */
	if (raw > 0 && (rtt + fs) > 0) {
		double floor_ns = (double) rtt + 1e9 / raw;
		printf(
		    "floor: round trip + one raw one-put LMDB commit (mean) = "
		    "%.0f us = %.2fx the baseline\n",
		    floor_ns / 1e3, floor_ns / (double) (rtt + fs));
	}
	rm_rf(dir);
	return 0;
}
