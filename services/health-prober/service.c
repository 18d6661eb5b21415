/*
 * service — health-prober's wiring (prober_service_start): the store,
 * the rpc server, probing, the bus subscription for maintenance windows
 * and config reloads, the resync of windows from incident-service, and
 * the timers (flush, retention, reload).
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "prober_impl.h"

typedef struct prober_service {
	prober *p;
	rpc_client *incident;
	bus_resync *resync;
	bus_subscriber *sub;
	atomic_bool reload; /* asked by ops.config_reload */
} prober_service;

/* Set on SIGHUP by runtime_reload (runtime_run's thread), cleared by
 * the timer thread: an atomic, ordered across threads. */
static atomic_int hup_seen;

static void
on_reload(void *arg)
{
	(void) arg;
	atomic_store(&hup_seen, 1);
}

void
prober_process_setup(void)
{
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
}

/*
 * A reload runs on the runtime's timer thread, the one that also runs
 * the flush and the retention: prober_reload must not run concurrently
 * with them, and neither runtime_run's thread (SIGHUP) nor the bus
 * callback may block for the time a reload takes (stopping probes waits
 * for a service ping up to its time-out).
 */
static void
reload_tick(void *arg)
{
	prober_service *ps = arg;
	config *cfg = NULL;
	char err[512];
	int rv;

	/* Both flags consumed at once: a request arriving after this
	 * point is kept for the next tick. */
	bool hup = atomic_exchange(&hup_seen, 0) != 0;
	if (!atomic_exchange(&ps->reload, false) && !hup) {
		return;
	}
	if ((rv = config_load(
	         &cfg, "health-prober", "127.0.0.1:9430", err, sizeof(err)))
	    != 0) {
		log_error(
		    "config reload rejected, the running targets stay: %s",
		    err);
		return;
	}
	if ((rv = prober_reload(
	         ps->p, cfg, getenv("OPSDESK_PROBER_SHARD"), err, sizeof(err)))
	    != 0) {
		log_error(
		    "config reload rejected, the running targets stay: %s",
		    err);
	}
	config_free(cfg);
	malloc_trim(0); /* the parsed tree of the new config is gone */
}

static void
service_free(void *arg)
{
	prober_service *ps = arg;
	prober_free(ps->p);
	free(ps);
}

static void
stop_prober(void *arg)
{
	prober_stop(arg);
}

static void
close_incident(void *arg)
{
	rpc_client_close(arg);
}

static void
stop_resync(void *arg)
{
	bus_resync_stop(arg);
}

static void
close_sub(void *arg)
{
	bus_subscriber_close(arg);
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

/* Objectives are evaluated this often: a fast burn alerts within it. */
#define SLO_ROUND_MS 5000

static void
slo_tick(void *arg)
{
	(void) prober_slo_round(arg, od_now_ms());
}

static void
decide_tick(void *arg)
{
	prober_decide_all(arg);
}

static void
retain_tick(void *arg)
{
	(void) prober_retain(arg, false);
}

static void
on_event(void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	prober_service *ps = arg;
	if (strcmp(topic, "ops.config_reload") == 0
	    || (env->payload_case == OPSDESK__V1__ENVELOPE__PAYLOAD_OPS
	        && env->ops != NULL
	        && strcmp(env->ops->kind, "config_reload") == 0)) {
		log_info("config reload asked on the bus (%s)", topic);
		atomic_store(&ps->reload, true);
		return;
	}
	if (env->payload_case == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_OBSERVED
	    && env->health_observed != NULL) {
		prober_observe(ps->p, env->health_observed);
		return;
	}
	if (env->payload_case
	        == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_OBSERVED_BATCH
	    && env->health_observed_batch != NULL) {
		for (size_t i = 0; i < env->health_observed_batch->n_views;
		     i++) {
			prober_observe(
			    ps->p, env->health_observed_batch->views[i]);
		}
		return;
	}
	if (env->payload_case == OPSDESK__V1__ENVELOPE__PAYLOAD_MAINTENANCE
	    && env->maintenance != NULL && env->maintenance->window != NULL) {
		prober_maintenance_event(ps->p, env->maintenance->window);
	}
}

/* Take the active windows from incident-service. While it is down the
 * known windows stay as they are and the resync worker tries again. */
static int
fetch_maintenance(void *arg)
{
	prober_service *ps = arg;
	Opsdesk__V1__IncidentRequest req = OPSDESK__V1__INCIDENT_REQUEST__INIT;
	Opsdesk__V1__IncidentSnapshotRequest sr
	    = OPSDESK__V1__INCIDENT_SNAPSHOT_REQUEST__INIT;
	Opsdesk__V1__IncidentReply *rep = NULL;
	int rv;

	req.method_case = OPSDESK__V1__INCIDENT_REQUEST__METHOD_SNAPSHOT;
	req.snapshot = &sr;
	if ((rv = rpc_client_call_peer(ps->incident, &req.base,
	         &opsdesk__v1__incident_reply__descriptor,
	         (ProtobufCMessage **) &rep, 2000))
	    != 0) {
		return rv;
	}
	if (rep->result_case == OPSDESK__V1__INCIDENT_REPLY__RESULT_SNAPSHOT) {
		prober_maintenance_resync(ps->p, rep->snapshot->maintenance,
		    rep->snapshot->n_maintenance);
	} else {
		rv = OD_EMALFORMED;
	}
	opsdesk__v1__incident_reply__free_unpacked(rep, NULL);
	return rv;
}

int
prober_service_start(runtime *rt)
{
	static const char *const prefixes[] = { "maintenance.", "ops.", NULL };
	/* The decider also takes every location's view. */
	static const char *const decider_prefixes[]
	    = { "maintenance.", "ops.", "health.observed", NULL };
	config *cfg = runtime_config(rt);
	bool decider;
	prober_service *ps = calloc(1, sizeof(*ps));
	store *st = NULL;
	bus_publisher *pub = NULL;
	char err[512];
	int rv;

	if (ps == NULL) {
		return OD_ENOMEM;
	}
	atomic_init(&ps->reload, false);
	if ((rv = prober_new(&ps->p, cfg, getenv("OPSDESK_PROBER_SHARD"), err,
	         sizeof(err)))
	    != 0) {
		log_error("invalid config: %s", err);
		free(ps);
		return rv;
	}
	/* The prober keeps its own copy of every target; the parsed tree of
	 * a 10,000-target config is megabytes nothing else reads. */
	cJSON_DeleteItemFromObjectCaseSensitive(cfg->root, "targets");
	malloc_trim(0); /* and give the freed pages back */
	/* Freed last, after the store has run its queued jobs. */
	if ((rv = runtime_defer(rt, service_free, ps)) != 0) {
		return rv;
	}

	/* Small batches: LMDB keeps as many page buffers as the largest
	 * txn dirtied, and a start with 10,000 first transitions would
	 * otherwise make that thousands. */
	store_options so
	    = { .dbs = prober_db_names, .schema_version = 1, .max_batch = 64 };
	if ((rv = runtime_open_store(rt, &so, &st)) != 0
	    || (rv = runtime_publisher(rt, &pub)) != 0) {
		return rv;
	}
	if ((rv = prober_attach(ps->p, st, pub, runtime_metrics(rt),
	         cfg->instance, cfg->data_dir))
	    != 0) {
		log_error("cannot load the prober state: %s", od_strerror(rv));
		return rv;
	}
	rpc_server_options ro;
	runtime_rpc_options(rt, &ro, cfg->prober_url,
	    &opsdesk__v1__prober_request__descriptor,
	    &opsdesk__v1__prober_reply__descriptor, prober_methods,
	    prober_n_methods, ps->p);
	ro.shard = prober_shard(ps->p)[0] ? prober_shard(ps->p) : NULL;
	if ((rv = runtime_rpc_server(rt, &ro, NULL)) != 0) {
		return rv;
	}
	/* The decider probes nothing: its states come from the locations'
	 * views (prober_observe). */
	decider = prober_targets(ps->p)->settings.decider;
	if (!decider && (rv = prober_start(ps->p)) != 0) {
		log_error("cannot start probing: %s", od_strerror(rv));
		return rv;
	}
	if ((rv = runtime_defer(rt, stop_prober, ps->p)) != 0) {
		return rv;
	}

	if ((rv = rpc_client_open(&ps->incident, cfg->incident_url, 2000)) != 0
	    || (rv = runtime_defer(rt, close_incident, ps->incident)) != 0) {
		return rv;
	}
	/* Windows are stale until incident-service first answers: at start,
	 * and after every gap on the bus. */
	bus_resync_source src
	    = { "incident-service", fetch_maintenance, ps, 0 };
	/* A snapshot is one cheap read: retry at least every 5 s. */
	bus_resync_options rso = { .sources = &src,
		.n_sources = 1,
		.backoff_max_ms = 5000,
		.metrics = runtime_metrics(rt) };
	if ((rv = bus_resync_start(&ps->resync, &rso)) != 0
	    || (rv = runtime_defer(rt, stop_resync, ps->resync)) != 0) {
		return rv;
	}
	bus_subscriber_options bo = {
		.url = cfg->bus_subscribe,
		.prefixes = decider ? decider_prefixes : prefixes,
		.on_event = on_event,
		.arg = ps,
		.metrics = runtime_metrics(rt),
		.resync = ps->resync,
	};
	if ((rv = bus_subscriber_open(&ps->sub, &bo)) != 0) {
		log_error("cannot subscribe to %s: %s", cfg->bus_subscribe,
		    od_strerror(rv));
		return rv;
	}
	if ((rv = runtime_defer(rt, close_sub, ps->sub)) != 0
	    || (rv = runtime_every(rt,
	            prober_targets(ps->p)->settings.flush_ms, flush_tick,
	            ps->p))
	        != 0
	    || (rv = runtime_every(rt, 60000, retain_tick, ps->p)) != 0
	    || (rv = runtime_every(rt, SLO_ROUND_MS, slo_tick, ps->p)) != 0
	    || (rv = runtime_every(rt, 200, reload_tick, ps)) != 0
	    || (rv = runtime_on_reload(rt, on_reload, ps)) != 0
	    || (decider
	        && (rv = runtime_every(rt, 1000, decide_tick, ps->p)) != 0)) {
		return rv;
	}
	if ((rv = runtime_http(rt, NULL, NULL)) != 0) {
		log_error("cannot start HTTP on %s: %s", cfg->http_addr,
		    od_strerror(rv));
		return rv;
	}
	if (decider) {
		log_info("deciding %zu targets from the locations' "
		         "health.observed%s%s",
		    prober_targets(ps->p)->n,
		    prober_shard(ps->p)[0] ? " of shard " : "",
		    prober_shard(ps->p));
		return 0;
	}
	log_info("probing %zu targets%s%s%s%s", prober_targets(ps->p)->n,
	    prober_shard(ps->p)[0] ? " of shard " : "", prober_shard(ps->p),
	    prober_targets(ps->p)->settings.location[0] ? " from location "
	                                                : "",
	    prober_targets(ps->p)->settings.location);
	return 0;
}
