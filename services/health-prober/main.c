/*
 * health-prober — probes the targets of the config, keeps their states
 * and history, answers ProberRequest on OPSDESK_PROBER_URL and publishes
 * health.changed / health.result. Maintenance windows come from
 * incident-service: maintenance.* events, and its snapshot after a gap.
 */
#include <curl/curl.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "prober_impl.h"
#include "runtime/runtime.h"

static const char help[]
    = "Probe HTTP, TCP, opsdesk service and metric targets; keep their\n"
      "states (with flap damping), minute/hour/day aggregates and business\n"
      "metrics; publish health.changed on every transition.\n"
      "Targets come from the config's `targets` section, settings from\n"
      "`prober` (see services/health-prober/README.md).\n"
      "  OPSDESK_PROBER_SHARD    i/N: probe only the targets of shard i\n"
      "SIGHUP or an ops.config_reload event re-reads the config file; an\n"
      "invalid one is logged and the running targets stay as they are.\n";

typedef struct app {
	prober *p;
	rpc_client *incident;
	bus_subscriber *sub;
	atomic_bool reload; /* asked by ops.config_reload */
} app;

/* Set by the SIGHUP handler: all it may do is store a flag. */
static volatile sig_atomic_t hup_seen;

static void
on_sighup(int sig)
{
	(void) sig;
	hup_seen = 1;
}

/*
 * A reload runs on the runtime's timer thread, the one that also runs
 * the flush and the retention: prober_reload must not run concurrently
 * with them, and neither a signal handler nor the bus callback may block
 * for the time a reload takes (stopping probes waits for a service ping
 * up to its time-out).
 */
static void
reload_tick(void *arg)
{
	app *a = arg;
	config *cfg = NULL;
	char err[512];
	int rv;

	if (!hup_seen && !atomic_exchange(&a->reload, false)) {
		return;
	}
	hup_seen = 0;
	atomic_store(&a->reload, false);
	if ((rv = config_load(
	         &cfg, "health-prober", "127.0.0.1:9430", err, sizeof(err)))
	    != 0) {
		log_error(
		    "config reload rejected, the running targets stay: %s",
		    err);
		return;
	}
	if ((rv = prober_reload(
	         a->p, cfg, getenv("OPSDESK_PROBER_SHARD"), err, sizeof(err)))
	    != 0) {
		log_error(
		    "config reload rejected, the running targets stay: %s",
		    err);
	}
	config_free(cfg);
	malloc_trim(0); /* the parsed tree of the new config is gone */
}

static void
free_prober(void *arg)
{
	prober_free(arg);
}

static void
stop_prober(void *arg)
{
	prober_stop(arg);
}

static void
stop_rpc(void *arg)
{
	rpc_server_stop(arg);
}

static void
close_sub(void *arg)
{
	app *a = arg;
	bus_subscriber_close(a->sub);
	rpc_client_close(a->incident);
}

static void
flush_tick(void *arg)
{
	(void) prober_flush(arg, false);
	/* Results, store jobs and curl handles churn through several
	 * threads' arenas; hand the freed pages back each flush so the
	 * resident size stays that of the live state. */
	malloc_trim(0);
}

static void
retain_tick(void *arg)
{
	(void) prober_retain(arg, false);
}

static void
on_event(void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	app *a = arg;
	if (strcmp(topic, "ops.config_reload") == 0
	    || (env->payload_case == OPSDESK__V1__ENVELOPE__PAYLOAD_OPS
	        && env->ops != NULL
	        && strcmp(env->ops->kind, "config_reload") == 0)) {
		log_info("config reload asked on the bus (%s)", topic);
		atomic_store(&a->reload, true);
		return;
	}
	if (env->payload_case == OPSDESK__V1__ENVELOPE__PAYLOAD_MAINTENANCE
	    && env->maintenance != NULL && env->maintenance->window != NULL) {
		prober_maintenance_event(a->p, env->maintenance->window);
	}
}

/* Something may have been missed: take the active windows from
 * incident-service. When it is down the known windows stay as they are. */
static void
on_resync(void *arg, const char *reason)
{
	app *a = arg;
	Opsdesk__V1__IncidentRequest req = OPSDESK__V1__INCIDENT_REQUEST__INIT;
	Opsdesk__V1__IncidentSnapshotRequest sr
	    = OPSDESK__V1__INCIDENT_SNAPSHOT_REQUEST__INIT;
	Opsdesk__V1__IncidentReply *rep = NULL;
	int rv;

	req.method_case = OPSDESK__V1__INCIDENT_REQUEST__METHOD_SNAPSHOT;
	req.snapshot = &sr;
	rv = rpc_client_call(a->incident, &req.base,
	    &opsdesk__v1__incident_reply__descriptor,
	    (ProtobufCMessage **) &rep, 2000);
	if (rv != 0
	    || rep->result_case
	        != OPSDESK__V1__INCIDENT_REPLY__RESULT_SNAPSHOT) {
		log_warn(
		    "maintenance resync (%s) skipped: incident-service: %s",
		    reason, rv != 0 ? od_strerror(rv) : "error reply");
	} else {
		prober_maintenance_resync(a->p, rep->snapshot->maintenance,
		    rep->snapshot->n_maintenance);
	}
	if (rep != NULL) {
		opsdesk__v1__incident_reply__free_unpacked(rep, NULL);
	}
}

int
main(int argc, char **argv)
{
	static app a;
	static const char *const prefixes[] = { "maintenance.", "ops.", NULL };
	struct sigaction sa;
	runtime *rt;
	config *cfg;
	store *st = NULL;
	bus_publisher *pub = NULL;
	rpc_server *srv = NULL;
	char err[512];
	int rv;

	/*
	 * Memory is the budget that matters here (10,000 targets in 32 MB),
	 * so glibc malloc is told two things before any thread starts:
	 *  - a fixed mmap threshold: blocks of 128 KB and more (the target
	 *    array, LMDB's dirty-page list, the /metrics text of 10,000
	 *    targets) get their own mapping. The default threshold grows to
	 *    the size of the largest block freed, after which such blocks
	 *    come from heap holes: calloc then has to zero them (making a
	 *    2 MB list LMDB barely uses resident) and a freed /metrics
	 *    buffer stays resident until the next trim. Mapped blocks are
	 *    zero pages until written and go back to the kernel on free.
	 *  - two arenas: glibc's default is 8 per core, and each thread
	 *    that ever allocated keeps an arena with its own free fragments
	 *    resident. The prober's threads mostly wait on I/O; two arenas
	 *    are contention enough.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_ARENA_MAX, 2);
	/* SIGHUP asks for a config reload (its default would end the
	 * process); installed first so one sent during start-up is kept. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	atomic_init(&a.reload, false);
	rv = runtime_init(
	    &rt, argc, argv, "health-prober", "127.0.0.1:9430", help);

	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	cfg = runtime_config(rt);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if ((rv = prober_new(
	         &a.p, cfg, getenv("OPSDESK_PROBER_SHARD"), err, sizeof(err)))
	    != 0) {
		log_error("invalid config: %s", err);
		goto fail;
	}
	/* The prober keeps its own copy of every target; the parsed tree of
	 * a 10,000-target config is megabytes nothing else reads. */
	cJSON_DeleteItemFromObjectCaseSensitive(cfg->root, "targets");
	malloc_trim(0); /* and give the freed pages back */
	/* Freed last, after the store has run its queued jobs. */
	runtime_defer(rt, free_prober, a.p);

	/* Small batches: LMDB keeps as many page buffers as the largest
	 * txn dirtied, and a start with 10,000 first transitions would
	 * otherwise make that thousands. */
	store_options so
	    = { .dbs = prober_db_names, .schema_version = 1, .max_batch = 64 };
	if ((rv = runtime_open_store(rt, &so, &st)) != 0
	    || (rv = runtime_publisher(rt, &pub)) != 0) {
		goto fail;
	}
	if ((rv = prober_attach(a.p, st, pub, runtime_metrics(rt),
	         cfg->instance, cfg->data_dir))
	    != 0) {
		log_error("cannot load the prober state: %s", od_strerror(rv));
		goto fail;
	}
	rpc_server_options ro = {
		.url = cfg->prober_url,
		.request_desc = &opsdesk__v1__prober_request__descriptor,
		.reply_desc = &opsdesk__v1__prober_reply__descriptor,
		.methods = prober_methods,
		.n_methods = prober_n_methods,
		.store = st,
		.publisher = pub,
		.metrics = runtime_metrics(rt),
		.arg = a.p,
		.service = "health-prober",
		.instance = cfg->instance,
		.shard = prober_shard(a.p)[0] ? prober_shard(a.p) : NULL,
	};
	if ((rv = rpc_server_start(&srv, &ro)) != 0) {
		log_error("cannot listen on %s: %s", cfg->prober_url,
		    od_strerror(rv));
		goto fail;
	}
	runtime_defer(rt, stop_rpc, srv);
	if ((rv = prober_start(a.p)) != 0) {
		log_error("cannot start probing: %s", od_strerror(rv));
		goto fail;
	}
	runtime_defer(rt, stop_prober, a.p);

	if ((rv = rpc_client_open(&a.incident, cfg->incident_url, 2000))
	    != 0) {
		goto fail;
	}
	bus_subscriber_options bo = {
		.url = cfg->bus_subscribe,
		.prefixes = prefixes,
		.on_event = on_event,
		.on_resync = on_resync,
		.arg = &a,
		.metrics = runtime_metrics(rt),
	};
	if ((rv = bus_subscriber_open(&a.sub, &bo)) != 0) {
		log_error("cannot subscribe to %s: %s", cfg->bus_subscribe,
		    od_strerror(rv));
		rpc_client_close(a.incident);
		goto fail;
	}
	runtime_defer(rt, close_sub, &a);
	runtime_every(
	    rt, prober_targets(a.p)->settings.flush_ms, flush_tick, a.p);
	runtime_every(rt, 60000, retain_tick, a.p);
	runtime_every(rt, 200, reload_tick, &a);
	if ((rv = runtime_http(rt, NULL, NULL)) != 0) {
		log_error("cannot start HTTP on %s: %s", cfg->http_addr,
		    od_strerror(rv));
		goto fail;
	}
	log_info("probing %zu targets%s%s", prober_targets(a.p)->n,
	    prober_shard(a.p)[0] ? " of shard " : "", prober_shard(a.p));
	rv = runtime_run(rt);
	curl_global_cleanup();
	return rv;
fail:
	runtime_fini(rt);
	curl_global_cleanup();
	return 1;
}
