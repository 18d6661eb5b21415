/*
 * ticket-service — tickets, threads, tiers, FAQ and SLAs behind /support.
 * All the logic is in ticket_core; this wires it to the runtime: store,
 * publisher, rpc server, the incident.* subscription and the breach timer.
 */
#include <stdio.h>

#include "config/config.h"
#include "log/log.h"
#include "rpc/rpc.h"
#include "runtime/runtime.h"
#include "ticket.h"
#include "ticket.pb-c.h"
#include "util/util.h"

static const char help[]
    = "Serves TicketRequest over NNG req/rep (OPSDESK_TICKET_URL, default\n"
      "tcp://127.0.0.1:7410), publishes ticket.* events, follows incident.*\n"
      "events. Config sections: tickets (sla, limits, reopen_days) and faq.\n";

static void
svc_fini(void *arg)
{
	ticket_service_fini(arg);
}

static void
client_close(void *arg)
{
	rpc_client_close(arg);
}

static void
server_stop(void *arg)
{
	rpc_server_stop(arg);
}

static void
subscriber_close(void *arg)
{
	bus_subscriber_close(arg);
}

int
main(int argc, char **argv)
{
	static ticket_service svc;
	static const char *const prefixes[] = { "incident.", NULL };
	ticket_policy policy;
	runtime *rt = NULL;
	config *cfg;
	store *st = NULL;
	bus_publisher *pub = NULL;
	rpc_server *srv = NULL;
	bus_subscriber *sub = NULL;
	rpc_server_options ro = { 0 };
	bus_subscriber_options so = { 0 };
	store_options sto = { 0 };
	char err[256];
	int rv;

	rv = runtime_init(
	    &rt, argc, argv, TICKET_SERVICE, TICKET_DEFAULT_HTTP, help);
	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	cfg = runtime_config(rt);
	ticket_policy_defaults(&policy);
	if (ticket_policy_load(
	        &policy, config_section(cfg, "tickets"), err, sizeof(err))
	        != 0
	    || ticket_faq_seed_check(
	           config_section(cfg, "faq"), err, sizeof(err))
	        != 0) {
		log_kv(LOG_ERROR, "config error", "error", err, "config",
		    cfg->path[0] != '\0' ? cfg->path : "(none)", NULL);
		runtime_fini(rt);
		return 1;
	}

	sto.dbs = ticket_db_names;
	sto.schema_version = TICKET_SCHEMA_VERSION;
	sto.migrate = ticket_store_migrate;
	if ((rv = runtime_open_store(rt, &sto, &st)) != 0
	    || (rv = runtime_publisher(rt, &pub)) != 0) {
		goto fail;
	}
	if ((rv = ticket_service_init(&svc, &policy, st, pub,
	         runtime_metrics(rt), config_section(cfg, "faq")))
	        != 0
	    || (rv = runtime_defer(rt, svc_fini, &svc)) != 0) {
		goto fail;
	}
	if ((rv = rpc_client_open(&svc.incident_client,
	         config_service_url(cfg, "incident"), 2000))
	        != 0
	    || (rv = runtime_defer(rt, client_close, svc.incident_client))
	        != 0) {
		goto fail;
	}

	ro.url = config_service_url(cfg, "ticket");
	ro.request_desc = &opsdesk__v1__ticket_request__descriptor;
	ro.reply_desc = &opsdesk__v1__ticket_reply__descriptor;
	ro.methods = ticket_methods;
	ro.n_methods = ticket_n_methods;
	ro.store = st;
	ro.publisher = pub;
	ro.metrics = runtime_metrics(rt);
	ro.arg = &svc;
	ro.service = TICKET_SERVICE;
	ro.instance = cfg->instance;
	if ((rv = rpc_server_start(&srv, &ro)) != 0
	    || (rv = runtime_defer(rt, server_stop, srv)) != 0) {
		goto fail;
	}

	so.url = cfg->bus_subscribe;
	so.prefixes = prefixes;
	so.on_event = ticket_on_incident_event;
	so.on_resync = ticket_on_incident_resync;
	so.arg = &svc;
	so.metrics = runtime_metrics(rt);
	if ((rv = bus_subscriber_open(&sub, &so)) != 0
	    || (rv = runtime_defer(rt, subscriber_close, sub)) != 0) {
		goto fail;
	}
	if ((rv = runtime_every(
	         rt, policy.breach_interval_ms, ticket_breach_timer, &svc))
	        != 0
	    || (rv = runtime_every(rt, 30000, ticket_resync_timer, &svc)) != 0
	    || (rv = runtime_http(rt, NULL, NULL)) != 0) {
		goto fail;
	}
	log_info("ticket-service listening on %s", ro.url);
	return runtime_run(rt);

fail:
	log_error("ticket-service: start-up failed: %s", od_strerror(rv));
	runtime_fini(rt);
	return 1;
}
