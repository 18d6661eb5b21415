/*
 * service — status-publisher's wiring: bus events in, resyncs from the
 * owners' snapshots, pre-rendering, the HTTP routes, the chat summary
 * method and status.changed out.
 *
 * Threads: the bus subscriber applies events; the common resync worker
 * (bus_resync) fetches the owners' snapshots (rpc calls may wait seconds
 * for a peer that is down, and must not hold up events); one worker
 * thread re-renders when the model changed or the clock moved the page
 * (day bars, maintenance starting); NNG's threads serve HTTP and rpc
 * from memory.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log/log.h"
#include "rpc/rpc.h"
#include "service.h"

/* The resync sources, in bus_resync order. */
enum { RS_HEALTH, RS_INCIDENTS, RS_HISTORY };

struct status_service {
	runtime *rt;
	config *cfg;
	status_conf conf;
	store *st;
	status_model *model;
	status_site site;
	bool site_ok;
	bus_publisher *pub;
	bus_subscriber *sub;
	bus_resync *resync; /* RS_* sources */
	rpc_server *rpc;
	rpc_client *prober;
	rpc_client *incident;

	pthread_mutex_t render_mu; /* one render at a time */
	uint64_t rendered_version;
	int64_t rendered_minute;

	pthread_mutex_t mu; /* guards stopping */
	pthread_cond_t cv;
	pthread_t worker;
	bool worker_started;
	bool stopping;
	atomic_bool dirty; /* health.result applied, render soon */

	metric *renders;
	metric *render_seconds;
	metric *events;
	metric *changes;
};

/* ---- rendering ---- */

static int
build_pages(const status_view *v, void *arg)
{
	return status_pages_build(v, (status_pages **) arg);
}

static void
publish_changes(status_service *s, const status_changes *ch)
{
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	Opsdesk__V1__StatusChanged sc = OPSDESK__V1__STATUS_CHANGED__INIT;
	Opsdesk__V1__ComponentChange *items
	    = calloc(ch->n + 1, sizeof(*items));
	Opsdesk__V1__ComponentChange **ptrs = calloc(ch->n + 1, sizeof(*ptrs));
	if (items == NULL || ptrs == NULL) {
		goto out;
	}
	for (size_t i = 0; i < ch->n; i++) {
		opsdesk__v1__component_change__init(&items[i]);
		items[i].component_id = ch->items[i].id;
		items[i].name = ch->items[i].name;
		items[i].old_status = (char *) ch->items[i].old_status;
		items[i].new_status = (char *) ch->items[i].new_status;
		ptrs[i] = &items[i];
	}
	sc.indicator = (char *) status_indicator_name(ch->indicator);
	sc.description = (char *) ch->description;
	sc.old_indicator = (char *) status_indicator_name(ch->old_indicator);
	sc.changes = ptrs;
	sc.n_changes = ch->n;
	sc.page_url = s->conf.url;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_STATUS_CHANGED;
	env.status_changed = &sc;
	int rv = bus_publish(s->pub, "status.changed", &env, NULL);
	if (rv != 0) {
		log_warn("status.changed not published: %s", od_strerror(rv));
	}
	metric_inc(s->changes);
	log_info("status changed: %s (%zu components)", sc.indicator, ch->n);
out:
	free(items);
	free(ptrs);
}

/*
 * Render every page from the current model, swap them in, and announce
 * what changed publicly. Renders are serialized so an older view never
 * replaces a newer one. Unless forced, nothing happens when neither the
 * model nor the minute changed since the last render (the clock alone moves
 * the page at a new day or when a maintenance window starts).
 */
static void
refresh(status_service *s, bool force)
{
	pthread_mutex_lock(&s->render_mu);
	uint64_t version = status_model_version(s->model);
	int64_t now = od_now_ms();
	if (!force && version == s->rendered_version
	    && now / 60000 == s->rendered_minute) {
		goto out;
	}
	uint64_t t0 = od_mono_ns();
	status_pages *pages = NULL;
	int rv = status_model_with_view(s->model, now, build_pages, &pages);
	if (rv != 0) {
		log_error("render failed: %s", od_strerror(rv));
		goto out;
	}
	status_site_swap(&s->site, pages);
	metric_inc(s->renders);
	metric_observe(s->render_seconds, (double) (od_mono_ns() - t0) / 1e9);
	s->rendered_version = version;
	s->rendered_minute = now / 60000;

	status_changes ch;
	if (status_model_take_changes(s->model, now, &ch) == 0) {
		if (ch.any && s->pub != NULL) {
			publish_changes(s, &ch);
		}
		status_changes_fini(&ch);
	}
out:
	pthread_mutex_unlock(&s->render_mu);
}

/* ---- bus ---- */

static void
on_event(void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	status_service *s = arg;
	metric_inc(s->events);
	log_debug("event %s seq %llu from %s/%s", topic,
	    (unsigned long long) env->seq, env->source, env->instance);
	int rv = status_model_event(s->model, env);
	if (rv != 0) {
		log_warn("event %s not applied: %s", topic, od_strerror(rv));
		return;
	}
	if (env->payload_case
	    == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_RESULT) {
		/* High volume and only moves today's bar: the worker renders
		 * within a second. */
		atomic_store(&s->dirty, true);
		return;
	}
	if (env->payload_case
	    == OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_CHANGED) {
		/* A component may have just appeared: fetch its bars now
		 * rather than at the next periodic refresh. */
		bus_resync_mark(s->resync, RS_HISTORY, "health.changed");
	}
	refresh(s, false);
}

/* ---- resync ---- */

static const Opsdesk__V1__Actor system_actor
    = { PROTOBUF_C_MESSAGE_INIT(&opsdesk__v1__actor__descriptor), 0, true,
	      (char *) "status-publisher", 0 };

/*
 * Call a peer as status-publisher: a request of req_desc from
 * system_actor (field 2 of every Request) whose method is `method`
 * holding arg (borrowed). 0 only for a reply without an Error; *out freed
 * with protobuf_c_message_free_unpacked.
 */
static int
call(rpc_client *c, const ProtobufCMessageDescriptor *req_desc,
    const char *method, ProtobufCMessage *arg,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **out)
{
	ProtobufCMessage *req = calloc(1, req_desc->sizeof_message);
	int rv;

	if (req == NULL) {
		return OD_ENOMEM;
	}
	protobuf_c_message_init(req_desc, req);
	if ((rv = rpc_request_set_actor(req, &system_actor)) == 0
	    && (rv = rpc_request_set_method(req, method, arg)) == 0) {
		rv = rpc_client_call_peer(c, req, reply_desc, out, 0);
	}
	free(req); /* its members are borrowed */
	return rv;
}

static int
resync_health(void *arg)
{
	status_service *s = arg;
	Opsdesk__V1__HealthSnapshotRequest snap
	    = OPSDESK__V1__HEALTH_SNAPSHOT_REQUEST__INIT;
	Opsdesk__V1__ProberReply *rep = NULL;
	int rv = call(s->prober, &opsdesk__v1__prober_request__descriptor,
	    "snapshot", &snap.base, &opsdesk__v1__prober_reply__descriptor,
	    (ProtobufCMessage **) &rep);
	if (rv != 0) {
		return rv;
	}
	const Opsdesk__V1__HealthCurrent *cur
	    = rep->result_case == OPSDESK__V1__PROBER_REPLY__RESULT_SNAPSHOT
	    ? rep->snapshot
	    : rep->result_case == OPSDESK__V1__PROBER_REPLY__RESULT_CURRENT
	    ? rep->current
	    : NULL;
	rv = cur != NULL ? status_model_resync_health(s->model, cur)
	                 : OD_EMALFORMED;
	opsdesk__v1__prober_reply__free_unpacked(rep, NULL);
	return rv;
}

/* Daily bars and uptime of every public component. */
static int
resync_history(void *arg)
{
	status_service *s = arg;
	char **ids = NULL;
	size_t n = 0;
	int rv = status_model_public_ids(s->model, &ids, &n);
	if (rv != 0) {
		return rv;
	}
	for (size_t i = 0; i < n; i++) {
		Opsdesk__V1__HistoryRequest hr
		    = OPSDESK__V1__HISTORY_REQUEST__INIT;
		Opsdesk__V1__ProberReply *rep = NULL;
		hr.target_id = ids[i];
		hr.recent = 1;
		hr.latency = true; /* the response-time charts */
		if (rv == 0
		    && (rv = call(s->prober,
		            &opsdesk__v1__prober_request__descriptor,
		            "history", &hr.base,
		            &opsdesk__v1__prober_reply__descriptor,
		            (ProtobufCMessage **) &rep))
		        == 0) {
			if (rep->result_case
			        == OPSDESK__V1__PROBER_REPLY__RESULT_HISTORY
			    && rep->history->target != NULL) {
				rv = status_model_history(
				    s->model, rep->history);
			}
			opsdesk__v1__prober_reply__free_unpacked(rep, NULL);
		}
		free(ids[i]);
	}
	free(ids);
	return rv;
}

static int
resync_incidents(void *arg)
{
	status_service *s = arg;
	Opsdesk__V1__IncidentSnapshotRequest snap
	    = OPSDESK__V1__INCIDENT_SNAPSHOT_REQUEST__INIT;
	Opsdesk__V1__IncidentReply *rep = NULL;
	int rv = call(s->incident, &opsdesk__v1__incident_request__descriptor,
	    "snapshot", &snap.base, &opsdesk__v1__incident_reply__descriptor,
	    (ProtobufCMessage **) &rep);
	if (rv != 0) {
		return rv;
	}
	rv = rep->result_case == OPSDESK__V1__INCIDENT_REPLY__RESULT_SNAPSHOT
	    ? status_model_resync_incidents(s->model, rep->snapshot)
	    : OD_EMALFORMED;
	opsdesk__v1__incident_reply__free_unpacked(rep, NULL);
	return rv;
}

/* Re-render at least every second: what the resyncs and health.result
 * events changed, and what the clock moved. */
static void *
worker_main(void *arg)
{
	status_service *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		(void) od_cond_wait_ms(&s->cv, &s->mu, 1000);
		if (s->stopping) {
			break;
		}
		pthread_mutex_unlock(&s->mu);
		refresh(s, atomic_exchange(&s->dirty, false));
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- rpc: the chat summary ---- */

static void *
call_alloc(void *arg, size_t size)
{
	return rpc_call_alloc(arg, size);
}

typedef struct summary_args {
	rpc_call *call;
	Opsdesk__V1__StatusSummary *sum;
} summary_args;

static int
summary_view(const status_view *v, void *arg)
{
	summary_args *a = arg;
	return status_summary_fill(v, a->sum, call_alloc, a->call);
}

static int
method_summary(
    rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *reply)
{
	status_service *s = rpc_call_arg(call);
	Opsdesk__V1__StatusReply *r = (Opsdesk__V1__StatusReply *) reply;
	summary_args a = { call, rpc_call_alloc(call, sizeof(*a.sum)) };
	if (a.sum == NULL) {
		return rpc_call_error(call,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
		    "out of memory");
	}
	opsdesk__v1__status_summary__init(a.sum);
	int rv = status_model_with_view(
	    s->model, rpc_call_now_ms(call), summary_view, &a);
	if (rv != 0) {
		return rpc_call_error(call,
		    OPSDESK__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "%s",
		    od_strerror(rv));
	}
	r->result_case = OPSDESK__V1__STATUS_REPLY__RESULT_SUMMARY;
	r->summary = a.sum;
	return 0;
}

static const rpc_method methods[] = {
	{ "summary", RPC_READ, false, method_summary },
};

/* ---- http ---- */

/* Answers are sent from the pre-rendered set (no copy), but rendering
 * a set allocates and frees a few hundred KB, and NNG's own buffers come
 * and go per request. With glibc's defaults a freed block at the top of a
 * thread's arena goes back to the kernel and the next use faults it in
 * again, page by page (two thirds of the CPU of serving / when answers
 * were copies). Keep freed memory (up to 16 MB an arena) and pages off
 * mmap. */
static void
keep_freed_memory(void)
{
#ifdef __GLIBC__
	(void) mallopt(M_TRIM_THRESHOLD, 16 << 20);
	(void) mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
}

static int
serve(void *arg, const http_request *req, http_response *res)
{
	status_service *s = arg;
	status_answer a;
	int rv = status_site_answer(&s->site, req->path,
	    http_request_header(req, "If-None-Match"),
	    http_request_header(req, "If-Modified-Since"), &a);
	if (rv != 0) {
		return rv;
	}
	if (a.status == 404) {
		return http_response_text(
		    res, 404, NULL, "not found: see / for the status page\n");
	}
	if ((rv = http_response_header(res, "ETag", a.etag)) != 0
	    || (rv = http_response_header(
	            res, "Access-Control-Allow-Origin", "*"))
	        != 0
	    || (rv = http_response_header(
	            res, "Last-Modified", a.last_modified))
	        != 0
	    || (rv = http_response_header(
	            res, "Cache-Control", a.cache_control))
	        != 0) {
		status_pages_free(a.hold);
		return rv;
	}
	if (a.status == 304) {
		res->status = 304;
		res->content_type = a.content_type;
		return 0;
	}
	/* Sent from the set itself, which the reference keeps alive. */
	http_response_borrow_body(res, 200, a.content_type, a.body, a.len,
	    status_pages_release, a.hold);
	return 0;
}

/* CORS preflight: every route is public and read-only, so any origin may
 * GET it (Statuspage's widget on a product's own site). */
static int
serve_options(void *arg, const http_request *req, http_response *res)
{
	const char *hdrs
	    = http_request_header(req, "Access-Control-Request-Headers");
	int rv;
	(void) arg;
	if ((rv = http_response_header(
	         res, "Access-Control-Allow-Origin", "*"))
	        != 0
	    || (rv = http_response_header(
	            res, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"))
	        != 0
	    || (rv = http_response_header(res, "Access-Control-Allow-Headers",
	            hdrs != NULL && strlen(hdrs) < 500 ? hdrs : "*"))
	        != 0
	    || (rv = http_response_header(
	            res, "Access-Control-Max-Age", "86400"))
	        != 0) {
		return rv;
	}
	return http_response_text(res, 204, NULL, "");
}

static const char *const fixed_routes[] = {
	"/",
	"/index.html",
	"/badge.svg",
	"/api/v2/summary.json",
	"/api/v2/status.json",
	"/api/v2/components.json",
	"/api/v2/incidents.json",
	"/api/v2/incidents/unresolved.json",
	"/api/v2/scheduled-maintenances.json",
	"/api/v2/scheduled-maintenances/upcoming.json",
	"/api/v2/scheduled-maintenances/active.json",
	"/history.rss",
	"/history.atom",
};

static int
serve_index(void *arg, const http_request *req, http_response *res)
{
	http_request r = *req;
	od_strlcpy(r.path, "/", sizeof(r.path));
	return serve(arg, &r, res);
}

static int
add_routes(void *arg, http_server *srv)
{
	int rv = 0;
	for (size_t i = 0;
	     rv == 0 && i < sizeof(fixed_routes) / sizeof(fixed_routes[0]);
	     i++) {
		rv = http_server_route(srv, "GET", fixed_routes[i], false,
		    strcmp(fixed_routes[i], "/index.html") == 0 ? serve_index
		                                                : serve,
		    arg);
		if (rv == 0) {
			rv = http_server_route(srv, "OPTIONS", fixed_routes[i],
			    false, serve_options, arg);
		}
	}
	if (rv == 0) {
		/* NNG matches a tree on whole path segments after its uri,
		 * so the uri must not end in a slash. */
		rv = http_server_route(srv, "GET", "/badge", true, serve, arg);
	}
	if (rv == 0) {
		rv = http_server_route(
		    srv, "OPTIONS", "/badge", true, serve_options, arg);
	}
	return rv;
}

/* ---- start and stop ---- */

static bool
subscriber_ready(void *arg)
{
	return bus_subscriber_connected(arg);
}

static void
service_stop(void *arg)
{
	status_service *s = arg;
	if (s->worker_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->worker, NULL);
	}
	/* Nothing may call into the model once it is gone: the bus, the
	 * resyncs and rpc stop first. */
	bus_subscriber_close(s->sub);
	bus_resync_stop(s->resync);
	rpc_server_stop(s->rpc);
	rpc_client_close(s->prober);
	rpc_client_close(s->incident);
	status_model_close(s->model);
	if (s->site_ok) {
		status_site_fini(&s->site);
	}
	status_conf_fini(&s->conf);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->render_mu);
	free(s);
}

static void
register_metrics(status_service *s, metrics *m)
{
	s->renders = metrics_counter(m, "opsdesk_status_renders_total",
	    "Pre-renders of the status page set", NULL);
	s->render_seconds
	    = metrics_histogram(m, "opsdesk_status_render_seconds",
	        "Time to render every page", NULL, NULL, 0);
	s->events = metrics_counter(m, "opsdesk_status_events_total",
	    "Bus events applied to the read model", NULL);
	s->changes = metrics_counter(m, "opsdesk_status_changed_total",
	    "status.changed events published", NULL);
}

int
status_service_start(runtime *rt)
{
	status_service *s = calloc(1, sizeof(*s));
	char err[512] = "";
	int rv = OD_ENOMEM;
	if (s == NULL) {
		return rv;
	}
	s->rt = rt;
	s->cfg = runtime_config(rt);
	pthread_mutex_init(&s->render_mu, NULL);
	pthread_mutex_init(&s->mu, NULL);
	if (od_cond_init(&s->cv) != 0) {
		pthread_mutex_destroy(&s->mu);
		pthread_mutex_destroy(&s->render_mu);
		free(s);
		return OD_ENOMEM;
	}
	atomic_init(&s->dirty, false);
	keep_freed_memory();

	const cJSON *sec = config_section(s->cfg, "status_page");
	if ((rv = status_conf_parse(sec, &s->conf, err, sizeof(err))) != 0) {
		log_error("config: %s", err);
		goto fail;
	}
	if (cJSON_GetObjectItemCaseSensitive(sec, "url") == NULL
	    && s->cfg->http_addr[0] != '\0') {
		/* No public URL configured: the listener's is the best
		 * guess, and right for a local run. */
		char url[300];
		snprintf(url, sizeof(url), "http://%s", s->cfg->http_addr);
		char *u = strdup(url);
		if (u == NULL) {
			rv = OD_ENOMEM;
			goto fail;
		}
		free(s->conf.url);
		s->conf.url = u;
	}
	/* The page's Subscribe link names the chat bot. */
	const cJSON *bot = cJSON_GetObjectItemCaseSensitive(
	    config_section(s->cfg, "gateway"), "bot_username");
	if (cJSON_IsString(bot) && bot->valuestring[0] != '\0'
	    && (s->conf.bot_username
	           = strdup(bot->valuestring + (bot->valuestring[0] == '@')))
	        == NULL) {
		rv = OD_ENOMEM;
		goto fail;
	}
	register_metrics(s, runtime_metrics(rt));
	if ((rv = status_site_init(&s->site)) != 0) {
		goto fail;
	}
	s->site_ok = true;

	/* The read model can always be rebuilt from the owners, so the
	 * store skips fsync. */
	store_options so = { 0 };
	so.dbs = status_model_dbs;
	so.nosync = true;
	if ((rv = runtime_open_store(rt, &so, &s->st)) != 0
	    || (rv = status_model_open(&s->model, &s->conf, s->st)) != 0) {
		log_error("read model: %s", od_strerror(rv));
		goto fail;
	}
	if ((rv = runtime_publisher(rt, &s->pub)) != 0) {
		goto fail;
	}
	/* Shutdown runs deferred callbacks in reverse: this one (the bus,
	 * rpc and the model) before the publisher and the store it uses, and
	 * after the HTTP server registered below. From here on runtime
	 * shutdown frees s, whatever fails. */
	if ((rv = runtime_defer(rt, service_stop, s)) != 0) {
		return rv;
	}
	/* Serve what the store held before any peer answers. */
	refresh(s, true);

	if ((rv = rpc_client_open(&s->prober, s->cfg->prober_url, 3000)) != 0
	    || (rv = rpc_client_open(&s->incident, s->cfg->incident_url, 3000))
	        != 0) {
		log_error("rpc clients: %s", od_strerror(rv));
		return rv;
	}
	/* Events are best effort: a periodic resync bounds how long a
	 * silently lost one can leave the page wrong. */
	const bus_resync_source sources[] = {
		[RS_HEALTH] = { "health-prober", resync_health, s,
		    s->conf.resync_interval_ms },
		[RS_INCIDENTS] = { "incident-service", resync_incidents, s,
		    s->conf.resync_interval_ms },
		[RS_HISTORY] = { "health-prober history", resync_history, s,
		    s->conf.history_interval_ms },
	};
	bus_resync_options rso = { .sources = sources,
		.n_sources = sizeof(sources) / sizeof(sources[0]),
		.metrics = runtime_metrics(rt) };
	if ((rv = bus_resync_start(&s->resync, &rso)) != 0) {
		return rv;
	}
	if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
		return OD_ENOMEM;
	}
	s->worker_started = true;

	static const char *const prefixes[]
	    = { "health.", "incident.", "maintenance.", NULL };
	bus_subscriber_options bo = { 0 };
	bo.url = s->cfg->bus_subscribe;
	bo.prefixes = prefixes;
	bo.on_event = on_event;
	bo.resync = s->resync;
	bo.arg = s;
	bo.metrics = runtime_metrics(rt);
	if ((rv = bus_subscriber_open(&s->sub, &bo)) != 0) {
		log_error("bus subscriber %s: %s", bo.url, od_strerror(rv));
		return rv;
	}
	runtime_ready_check(rt, "bus_subscriber", subscriber_ready, s->sub);

	rpc_server_options ro;
	runtime_rpc_options(rt, &ro, s->cfg->status_url,
	    &opsdesk__v1__status_request__descriptor,
	    &opsdesk__v1__status_reply__descriptor, methods,
	    sizeof(methods) / sizeof(methods[0]), s);
	if ((rv = rpc_server_start(&s->rpc, &ro)) != 0) {
		log_error("rpc server %s: %s", ro.url, od_strerror(rv));
		return rv;
	}
	if ((rv = runtime_http(rt, add_routes, s)) != 0) {
		log_error("http %s: %s", s->cfg->http_addr, od_strerror(rv));
		return rv;
	}
	log_info("status page at %s", s->conf.url);
	return 0;
fail:
	service_stop(s);
	return rv;
}
