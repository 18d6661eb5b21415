/*
 * service.c — wiring: the store's DBs, event publishing, calls to peers,
 * and start-up on the common runtime.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "config/config.h"
#include "incident_core.h"
#include "log/log.h"
#include "rpc/rpc.h"
#include "runtime/runtime.h"
#include "store/store.h"

const char *const inc_db_names[] = {
	[INC_DB_INCIDENTS] = "incidents",
	[INC_DB_OPEN] = "open_by_key",
	[INC_DB_DUE] = "due",
	[INC_DB_MAINT] = "maintenance",
	[INC_DB_MAINT_ACTIVE] = "maintenance_active",
	[INC_DB_CHECKS] = "checklists",
	[INC_DB_ALERTS] = "alerts",
	[INC_DB_POSTMORTEMS] = "postmortems",
	[INC_DB_COMPONENTS] = "components",
	[INC_DB_ACTIVE] = "active",
	[INC_DB_PM_UNFROZEN] = "pm_unfrozen",
	[INC_DB_COUNT] = NULL,
};

MDB_txn *
inc_tx_mdb(inc_tx *tx)
{
	return store_txn_mdb(tx->txn);
}

MDB_dbi
inc_dbi(inc_service *svc, enum inc_db db)
{
	return store_db(svc->st, (unsigned) db);
}

int
inc_get_by_id(MDB_txn *txn, inc_service *svc, enum inc_db db, uint64_t id,
    const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	uint8_t key[8];

	store_key_u64(key, id);
	return store_get_pb(
	    txn, inc_dbi(svc, db), key, sizeof(key), desc, out);
}

int
inc_put_by_id(
    inc_tx *tx, enum inc_db db, uint64_t id, const ProtobufCMessage *m)
{
	uint8_t key[8];

	store_key_u64(key, id);
	return store_put_pb(
	    tx->txn, inc_dbi(tx->svc, db), key, sizeof(key), m);
}

int
inc_put_timed(inc_tx *tx, enum inc_db db, enum inc_db set_db, uint64_t id,
    const ProtobufCMessage *m, bool live, const inc_timer *old, size_t n_old,
    const inc_timer *cur, size_t n_cur)
{
	MDB_dbi set = inc_dbi(tx->svc, set_db);
	uint8_t key[8];
	int rv;

	if ((rv = inc_put_by_id(tx, db, id, m)) != 0
	    || (rv = inc_timers_reindex(tx, old, n_old, cur, n_cur)) != 0) {
		return rv;
	}
	store_key_u64(key, id);
	if (live) {
		return store_put(tx->txn, set, key, sizeof(key), "", 0);
	}
	rv = store_del(tx->txn, set, key, sizeof(key), NULL, 0);
	return rv == OD_ENOTFOUND ? 0 : rv;
}

int
inc_emit(inc_tx *tx, const char *topic, Opsdesk__V1__Envelope *env)
{
	int rv;

	if (tx->svc->hook != NULL) {
		tx->svc->hook(tx->svc->hook_arg, topic, env);
	}
	if (tx->svc->pub == NULL) {
		return 0;
	}
	rv = bus_publish_on_commit(
	    tx->svc->pub, tx->txn, topic, env, tx->corr);
	if (rv != 0 && rv != OD_ENOMEM) {
		/* An event is a notification; the record is the fact. */
		log_warn("event %s not queued: %s", topic, od_strerror(rv));
		rv = 0;
	}
	return rv;
}

int
inc_emit_incident(
    inc_tx *tx, const char *topic, const char *change, const inc_incident *inc)
{
	Opsdesk__V1__IncidentEvent ev = OPSDESK__V1__INCIDENT_EVENT__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;

	ev.incident = (inc_incident *) inc;
	ev.change = (char *) change;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_INCIDENT;
	env.incident = &ev;
	return inc_emit(tx, topic, &env);
}

int
inc_peer_call(inc_service *svc, struct rpc_client *c, ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **out)
{
	static const Opsdesk__V1__Actor self
	    = { PROTOBUF_C_MESSAGE_INIT(&opsdesk__v1__actor__descriptor), 0,
		      true, (char *) "incident-service", 0 };

	rpc_request_set_actor(req, &self);
	return rpc_client_call_peer(
	    c, req, reply_desc, out, (int) svc->cfg.peer_timeout_ms);
}

typedef struct peer_job {
	inc_service *svc;
	inc_peer_req *r;
} peer_job;

static void *
peer_main(void *arg)
{
	peer_job *j = arg;

	j->r->reply = NULL;
	j->r->rv = inc_peer_call(
	    j->svc, j->r->client, j->r->req, j->r->reply_desc, &j->r->reply);
	return NULL;
}

void
inc_peer_calls(inc_service *svc, inc_peer_req *reqs, size_t n)
{
	pthread_t th[8];
	peer_job jobs[8];
	bool started[8] = { false };

	for (size_t i = 0; i < n && i < 8; i++) {
		jobs[i] = (peer_job) { svc, &reqs[i] };
		/* The first runs here; a thread that cannot start runs
		 * here too, only later. */
		if (i > 0
		    && pthread_create(&th[i], NULL, peer_main, &jobs[i])
		        == 0) {
			started[i] = true;
		}
	}
	for (size_t i = 0; i < n && i < 8; i++) {
		if (!started[i]) {
			peer_main(&jobs[i]);
		}
	}
	for (size_t i = 1; i < n && i < 8; i++) {
		if (started[i]) {
			pthread_join(th[i], NULL);
		}
	}
}

void
inc_peer_prober_and_stats(inc_service *svc, Opsdesk__V1__ProberRequest *preq,
    int64_t from_ms, int64_t to_ms, Opsdesk__V1__ProberReply **prep,
    Opsdesk__V1__TicketReply **trep)
{
	Opsdesk__V1__TicketRequest treq = OPSDESK__V1__TICKET_REQUEST__INIT;
	Opsdesk__V1__StatsRequest st = OPSDESK__V1__STATS_REQUEST__INIT;

	st.from_ms = from_ms;
	st.to_ms = to_ms;
	treq.method_case = OPSDESK__V1__TICKET_REQUEST__METHOD_STATS;
	treq.stats = &st;
	inc_peer_req calls[2] = {
		{ svc->prober, &preq->base,
		    &opsdesk__v1__prober_reply__descriptor, NULL, 0 },
		{ svc->tickets, &treq.base,
		    &opsdesk__v1__ticket_reply__descriptor, NULL, 0 },
	};
	inc_peer_calls(svc, calls, 2);
	*prep = (Opsdesk__V1__ProberReply *) calls[0].reply;
	*trep = (Opsdesk__V1__TicketReply *) calls[1].reply;
}

/* Gauges read from the store at scrape time: open incidents by severity,
 * unacknowledged ones, active maintenance windows, the alert log's seq. */
static void
svc_collect(void *arg, metrics *m)
{
	inc_service *svc = arg;
	double open[SEV_COUNT] = { 0 }, unacked = 0, windows = 0, unfrozen = 0;
	uint64_t alert_seq = 0;
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	MDB_stat st;
	char labels[64];

	if (store_read_begin(svc->st, &txn) != 0) {
		return;
	}
	if (store_scan_open(
	        &sc, txn, inc_dbi(svc, INC_DB_ACTIVE), NULL, 0, NULL)
	    == 0) {
		while (store_scan_next(&sc, &k, &v) == 0) {
			inc_incident *inc = NULL;
			if (k.mv_size != 8
			    || inc_load(txn, svc, store_key_get_u64(k.mv_data),
			           &inc)
			        != 0) {
				continue;
			}
			open[inc_severity_valid(inc->severity) ? inc->severity
			                                       : 0]++;
			unacked += inc->acknowledged ? 0 : 1;
			inc_free(inc);
		}
		store_scan_close(&sc);
	}
	if (mdb_stat(txn, inc_dbi(svc, INC_DB_MAINT_ACTIVE), &st) == 0) {
		windows = (double) st.ms_entries;
	}
	if (mdb_stat(txn, inc_dbi(svc, INC_DB_PM_UNFROZEN), &st) == 0) {
		unfrozen = (double) st.ms_entries;
	}
	(void) store_counter(txn, svc->st, "alert", &alert_seq);
	store_read_end(txn);
	for (int s = SEV_CRITICAL; s <= SEV_LOW; s++) {
		snprintf(labels, sizeof(labels), "severity=\"%s\"",
		    inc_severity_name(s));
		metric_set(metrics_gauge(m, "opsdesk_incidents_open",
		               "Unresolved incidents by severity.", labels),
		    open[s]);
	}
	metric_set(metrics_gauge(m, "opsdesk_incidents_unacknowledged",
	               "Unresolved incidents nobody acknowledged yet.", NULL),
	    unacked);
	metric_set(metrics_gauge(m, "opsdesk_maintenance_windows_active",
	               "Maintenance windows scheduled or in progress.", NULL),
	    windows);
	metric_set(metrics_gauge(m, "opsdesk_postmortems_unfrozen",
	               "Postmortems whose health events or ticket count "
	               "are not stored yet (a peer did not answer).",
	               NULL),
	    unfrozen);
	metric_set(
	    metrics_gauge(m, "opsdesk_incident_alert_seq",
	        "Sequence number of the latest alert in the log.", NULL),
	    (double) alert_seq);
}

static void
svc_free(void *arg)
{
	inc_service *svc = arg;

	inc_freezer_free(svc);
	rpc_client_close(svc->prober);
	rpc_client_close(svc->tickets);
	inc_config_free(&svc->cfg);
	free(svc);
}

static void
svc_stop_rpc(void *arg)
{
	inc_service *svc = arg;

	rpc_server_stop(svc->rpc);
	svc->rpc = NULL;
}

static void
svc_stop_resync(void *arg)
{
	inc_service *svc = arg;

	bus_resync_stop(svc->resync);
	svc->resync = NULL;
}

static void
svc_stop_freezer(void *arg)
{
	inc_freezer_stop(arg);
}

static void
svc_stop_sub(void *arg)
{
	inc_service *svc = arg;

	bus_subscriber_close(svc->sub);
	svc->sub = NULL;
}

static void
svc_tick(void *arg)
{
	inc_service *svc = arg;

	(void) inc_timers_run(svc, NULL);
}

static bool
svc_sub_ready(void *arg)
{
	inc_service *svc = arg;

	return svc->sub != NULL && bus_subscriber_connected(svc->sub);
}

int
inc_service_start(runtime *rt)
{
	/* Only the transitions: health.result is every probe result, high
	 * volume, and would crowd them out of the subscriber queue. Gaps are
	 * tracked per topic, so filtering does not look like loss. */
	static const char *const prefixes[] = { "health.changed", NULL };
	config *cfg = runtime_config(rt);
	inc_service *svc = calloc(1, sizeof(*svc));
	store_options so = { 0 };
	rpc_server_options ro = { 0 };
	bus_subscriber_options bo = { 0 };
	char err[512] = "";
	int rv;

	if (svc == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = inc_config_defaults(&svc->cfg)) != 0) {
		free(svc);
		return rv;
	}
	if ((rv = inc_config_parse(&svc->cfg, cfg->root, err, sizeof(err)))
	    != 0) {
		log_error("config %s: %s", cfg->path, err);
		free(svc);
		return rv;
	}
	/* Freed last: everything registered after it uses it. */
	if ((rv = runtime_defer(rt, svc_free, svc)) != 0) {
		return rv;
	}
	so.dbs = inc_db_names;
	if ((rv = runtime_open_store(rt, &so, &svc->st)) != 0
	    || (rv = runtime_publisher(rt, &svc->pub)) != 0) {
		return rv;
	}
	if ((rv = rpc_client_open(&svc->prober,
	         config_service_url(cfg, "prober"),
	         (int) svc->cfg.peer_timeout_ms))
	        != 0
	    || (rv = rpc_client_open(&svc->tickets,
	            config_service_url(cfg, "ticket"),
	            (int) svc->cfg.peer_timeout_ms))
	        != 0) {
		log_error("cannot open peer clients: %s", od_strerror(rv));
		return rv;
	}
	/* Before the rpc server, so it stops after it: no resolve can
	 * commit unseen by a running freezer. */
	if ((rv = inc_freezer_start(svc)) != 0) {
		return rv;
	}
	runtime_defer(rt, svc_stop_freezer, svc);
	ro.url = cfg->incident_url;
	ro.request_desc = &opsdesk__v1__incident_request__descriptor;
	ro.reply_desc = &opsdesk__v1__incident_reply__descriptor;
	ro.methods = inc_methods;
	ro.n_methods = inc_n_methods;
	ro.store = svc->st;
	ro.publisher = svc->pub;
	ro.metrics = runtime_metrics(rt);
	ro.arg = svc;
	ro.service = runtime_service(rt);
	ro.instance = cfg->instance;
	if ((rv = rpc_server_start(&svc->rpc, &ro)) != 0) {
		log_error("cannot listen on %s: %s", ro.url, od_strerror(rv));
		return rv;
	}
	runtime_defer(rt, svc_stop_rpc, svc);
	/* Health states are stale until the prober first answers: at start,
	 * after every gap on the bus and after an event that could not be
	 * applied; the worker retries while the prober is down. */
	bus_resync_source src = { "health-prober", inc_auto_resync, svc, 0 };
	/* Retried at least every tick, as the timers are. */
	bus_resync_options rso = { .sources = &src,
		.n_sources = 1,
		.backoff_min_ms
		= svc->cfg.tick_ms < 1000 ? svc->cfg.tick_ms : 1000,
		.backoff_max_ms = svc->cfg.tick_ms,
		.metrics = runtime_metrics(rt) };
	if ((rv = bus_resync_start(&svc->resync, &rso)) != 0
	    || (rv = runtime_defer(rt, svc_stop_resync, svc)) != 0) {
		return rv;
	}
	bo.url = cfg->bus_subscribe;
	bo.prefixes = prefixes;
	bo.on_event = inc_auto_on_event;
	bo.resync = svc->resync;
	bo.arg = svc;
	bo.metrics = runtime_metrics(rt);
	if ((rv = bus_subscriber_open(&svc->sub, &bo)) != 0) {
		log_error(
		    "cannot subscribe at %s: %s", bo.url, od_strerror(rv));
		return rv;
	}
	runtime_defer(rt, svc_stop_sub, svc);
	runtime_ready_check(rt, "subscriber", svc_sub_ready, svc);
	if ((rv = metrics_add_collector(runtime_metrics(rt), svc_collect, svc))
	        != 0
	    || (rv = runtime_every(rt, svc->cfg.tick_ms, svc_tick, svc)) != 0
	    || (rv = runtime_http(rt, NULL, NULL)) != 0) {
		return rv;
	}
	log_info("incident-service listening on %s", ro.url);
	return 0;
}
