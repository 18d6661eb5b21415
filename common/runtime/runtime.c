/*
 * runtime — a service's start-up and shutdown. See runtime.h.
 */
#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "log/log.h"
#include "util/util.h"

#define RT_MAX_DEFER  32
#define RT_MAX_TASKS  32
#define RT_MAX_CHECKS 8
#define RT_MAX_RELOAD 8

typedef struct rt_task {
	int64_t interval_ms;
	int64_t next_ms; /* monotonic */
	void (*fn)(void *);
	void *arg;
} rt_task;

struct runtime {
	char service[64];
	config *cfg;
	metrics *m;
	struct {
		void (*fn)(void *);
		void *arg;
	} defers[RT_MAX_DEFER];
	int n_defers;
	struct {
		char name[32];
		bool (*ok)(void *);
		void *arg;
	} checks[RT_MAX_CHECKS];
	int n_checks;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	rt_task tasks[RT_MAX_TASKS];
	int n_tasks;
	bool timer_started;
	bool stopping;
	pthread_t timer;
	sigset_t sigs;
	int64_t started_ms;
	struct {
		void (*fn)(void *);
		void *arg;
	} reloads[RT_MAX_RELOAD];
	int n_reloads;
	char default_http[64];
	metric *m_reload_ok, *m_reload_err;
	store *st;          /* the last runtime_open_store, for rpc options */
	bus_publisher *pub; /* the last runtime_publisher */
};

static const char env_help[]
    = "Environment:\n"
      "  OPSDESK_CONFIG          suite config file (default ./opsdesk.json if "
      "present)\n"
      "  OPSDESK_DATA_DIR        data directory (default ./var/data)\n"
      "  OPSDESK_BUS_PUBLISH     where publishers dial "
      "(tcp://127.0.0.1:7400)\n"
      "  OPSDESK_BUS_SUBSCRIBE   where subscribers dial "
      "(tcp://127.0.0.1:7401)\n"
      "  OPSDESK_TICKET_URL, OPSDESK_INCIDENT_URL, OPSDESK_PROBER_URL,\n"
      "  OPSDESK_STATUS_URL      req/rep addresses of the services\n"
      "  OPSDESK_HTTP_ADDR       this process's HTTP listener (host:port)\n"
      "  OPSDESK_INSTANCE        instance name (default host:pid)\n"
      "  OPSDESK_LOG_LEVEL       debug, info, warn or error (default info)\n"
      "  OPSDESK_ADMINS          comma-separated admin Telegram user ids\n"
      "  OPSDESK_ADMIN_CHAT      chat id for alerts and new tickets\n";

static const char check_help[]
    = "--check-config [FILE]  validate the config (FILE, else "
      "$OPSDESK_CONFIG\n"
      "                       or ./opsdesk.json) and the environment, then\n"
      "                       exit: 0 if valid, 1 with the error logged\n\n";

static void
process_metrics(void *arg, metrics *m)
{
	runtime *rt = arg;
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
			rss = 0;
		}
		fclose(f);
	}
	metric_set(metrics_gauge(m, "process_resident_memory_bytes",
	               "Resident memory size in bytes.", NULL),
	    (double) rss * (double) sysconf(_SC_PAGESIZE));
	metric_set(
	    metrics_gauge(m, "process_start_time_seconds",
	        "Start time of the process since the epoch, in seconds.",
	        NULL),
	    (double) rt->started_ms / 1000.0);
}

/* CPU time only grows: a counter, so its name ends in _total (the
 * registry's counters are integers, hence a text source). */
static void
process_cpu_text(void *arg, sbuf *b)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	sbuf_printf(b,
	    "# HELP process_cpu_seconds_total Total user and system CPU "
	    "time spent in seconds.\n"
	    "# TYPE process_cpu_seconds_total counter\n"
	    "process_cpu_seconds_total %.6f\n",
	    (double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
}

int
runtime_init(runtime **out, int argc, char **argv, const char *service,
    const char *default_http, const char *help)
{
	bool check_only = false;
	const char *check_file = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0
		    || strcmp(argv[i], "-h") == 0) {
			printf("Usage: %s [--help] [--version] "
			       "[--check-config [FILE]]\n\n%s\n%s%s",
			    service, help ? help : "", check_help, env_help);
			if (default_http != NULL) {
				printf(
				    "\nDefault HTTP listener: %s (/healthz, "
				    "/readyz, /metrics)\n",
				    default_http);
			}
			return -1;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", service, OPSDESK_VERSION);
			return -1;
		}
		if (strcmp(argv[i], "--check-config") == 0) {
			check_only = true;
			if (i + 1 < argc && argv[i + 1][0] != '-') {
				check_file = argv[++i];
			}
			continue;
		}
		fprintf(stderr, "%s: unknown argument \"%s\" (try --help)\n",
		    service, argv[i]);
		return 1;
	}

	runtime *rt = calloc(1, sizeof(*rt));
	if (rt == NULL) {
		fprintf(stderr, "%s: out of memory\n", service);
		return 1;
	}
	od_strlcpy(rt->service, service, sizeof(rt->service));
	od_strlcpy(rt->default_http, default_http ? default_http : "",
	    sizeof(rt->default_http));
	rt->started_ms = od_now_ms();
	pthread_mutex_init(&rt->mtx, NULL);
	if (od_cond_init(&rt->cv) != 0) {
		fprintf(stderr, "%s: out of memory\n", service);
		pthread_mutex_destroy(&rt->mtx);
		free(rt);
		return 1;
	}

	/* Config errors are one JSON line on stderr (the log), and exit 1:
	 * the same for every service and for --check-config. */
	char err[512];
	int rv = config_load_file(
	    &rt->cfg, check_file, service, default_http, err, sizeof(err));
	if (rv == 0 && check_only) {
		/* Also what the owners check when they read their sections:
		 * ranges, names, references. */
		rv = config_check_all(rt->cfg, err, sizeof(err));
		if (rv != 0 && rt->cfg->path[0] != '\0'
		    && strncmp(err, rt->cfg->path, strlen(rt->cfg->path))
		        != 0) {
			sbuf b = SBUF_INIT;
			sbuf_printf(&b, "%s: %s", rt->cfg->path, err);
			od_strlcpy(err, sbuf_str(&b), sizeof(err));
			sbuf_free(&b);
		}
	}
	if (rv != 0) {
		log_init(service, "", LOG_INFO);
		log_kv(LOG_ERROR, "config error", "error", err, NULL);
		runtime_fini(rt);
		return 1;
	}
	if (check_only) {
		log_init(service, rt->cfg->instance, LOG_INFO);
		log_kv(LOG_INFO, "config ok", "config",
		    rt->cfg->path[0] ? rt->cfg->path : "(none)", NULL);
		runtime_fini(rt);
		return -1;
	}
	log_init(
	    service, rt->cfg->instance, log_level_parse(rt->cfg->log_level));
	if (metrics_new(&rt->m) != 0) {
		runtime_fini(rt);
		return 1;
	}
	char labels[256], esc[128];
	snprintf(labels, sizeof(labels), "service=\"%s\",version=\"%s\"",
	    metrics_label_escape(service, esc, sizeof(esc)), OPSDESK_VERSION);
	metric_set(metrics_gauge(rt->m, "opsdesk_build_info",
	               "Build information; always 1.", labels),
	    1);
	metrics_add_collector(rt->m, process_metrics, rt);
	metrics_add_text(rt->m, process_cpu_text, NULL);
	static const char reload_help[]
	    = "SIGHUP reloads (credentials, admin list, the service's "
	      "own), by result; a failed one keeps what ran.";
	rt->m_reload_ok = metrics_counter(
	    rt->m, "opsdesk_reloads_total", reload_help, "result=\"ok\"");
	rt->m_reload_err = metrics_counter(
	    rt->m, "opsdesk_reloads_total", reload_help, "result=\"error\"");

	/* Signals go to runtime_run's sigwait only: block them here, before
	 * any thread exists, so every thread inherits the mask. SIGHUP
	 * (runtime_reload) too: one sent during start-up waits for
	 * runtime_run instead of ending the process. */
	sigemptyset(&rt->sigs);
	sigaddset(&rt->sigs, SIGTERM);
	sigaddset(&rt->sigs, SIGINT);
	sigaddset(&rt->sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &rt->sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_kv(LOG_INFO, "starting", "version", OPSDESK_VERSION, "config",
	    rt->cfg->path[0] ? rt->cfg->path : "(none)", "data_dir",
	    rt->cfg->data_dir, NULL);
	*out = rt;
	return 0;
}

config *
runtime_config(runtime *rt)
{
	return rt->cfg;
}

metrics *
runtime_metrics(runtime *rt)
{
	return rt->m;
}

const char *
runtime_service(runtime *rt)
{
	return rt->service;
}

int
runtime_defer(runtime *rt, void (*fn)(void *arg), void *arg)
{
	if (rt->n_defers >= RT_MAX_DEFER) {
		/* What was started must still stop: now, since at shutdown
		 * nothing would. */
		log_error(
		    "runtime: more than %d deferred calls", RT_MAX_DEFER);
		fn(arg);
		return OD_ELIMIT;
	}
	rt->defers[rt->n_defers].fn = fn;
	rt->defers[rt->n_defers].arg = arg;
	rt->n_defers++;
	return 0;
}

int
runtime_ready_check(
    runtime *rt, const char *name, bool (*ok)(void *arg), void *arg)
{
	pthread_mutex_lock(&rt->mtx);
	if (rt->n_checks >= RT_MAX_CHECKS) {
		pthread_mutex_unlock(&rt->mtx);
		return OD_ELIMIT;
	}
	od_strlcpy(
	    rt->checks[rt->n_checks].name, name, sizeof(rt->checks[0].name));
	rt->checks[rt->n_checks].ok = ok;
	rt->checks[rt->n_checks].arg = arg;
	rt->n_checks++;
	pthread_mutex_unlock(&rt->mtx);
	return 0;
}

/* mkdir -p, 0700 for what it creates. */
static int
make_dirs(const char *path)
{
	char tmp[1100];
	od_strlcpy(tmp, path, sizeof(tmp));
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
				return OD_EIO;
			}
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
		return OD_EIO;
	}
	return 0;
}

static void
close_store(void *arg)
{
	store_close(arg);
}

/* Not ready while writes fail for lack of space (store_writable): a
 * balancer then sends the writes elsewhere, and the store's own probe
 * makes it ready again once space is freed. */
static bool
store_ready(void *arg)
{
	return store_writable(arg);
}

static void
store_metrics(void *arg, metrics *m)
{
	store_stats st;
	store_get_stats(arg, &st);
	metric_set(metrics_gauge(m, "opsdesk_store_writable",
	               "1 while the store commits, 0 while writes fail for "
	               "lack of space.",
	               NULL),
	    st.write_failing ? 0 : 1);
	static const char help[]
	    = "Store batches that failed for lack of space.";
	metric *c = metrics_counter(m, "opsdesk_store_write_errors_total",
	    help, "reason=\"disk_full\"");
	/* Counters only go up: add what the store counted since. */
	if (c != NULL && st.disk_full_errors > (uint64_t) metric_value(c)) {
		metric_add(
		    c, st.disk_full_errors - (uint64_t) metric_value(c));
	}
	c = metrics_counter(m, "opsdesk_store_write_errors_total", help,
	    "reason=\"map_full\"");
	if (c != NULL && st.map_full_errors > (uint64_t) metric_value(c)) {
		metric_add(c, st.map_full_errors - (uint64_t) metric_value(c));
	}
}

int
runtime_open_store(runtime *rt, store_options *opt, store **out)
{
	if (make_dirs(rt->cfg->data_dir) != 0) {
		log_error("cannot create data directory %s: %s",
		    rt->cfg->data_dir, strerror(errno));
		return OD_EIO;
	}
	opt->path = rt->cfg->store_dir;
	if (opt->metrics == NULL) {
		opt->metrics = rt->m;
	}
	store *s;
	int rv = store_open(&s, opt);
	if (rv != 0) {
		log_error("cannot open store %s: %s", rt->cfg->store_dir,
		    od_strerror(rv));
		return rv;
	}
	if ((rv = runtime_defer(rt, close_store, s)) != 0) {
		return rv;
	}
	runtime_ready_check(rt, "store", store_ready, s);
	metrics_add_collector(rt->m, store_metrics, s);
	rt->st = s;
	*out = s;
	return 0;
}

static void
close_publisher(void *arg)
{
	bus_publisher_close(arg);
}

static bool
publisher_ready(void *arg)
{
	return bus_publisher_connected(arg);
}

int
runtime_publisher(runtime *rt, bus_publisher **out)
{
	bus_publisher *p;
	int rv = bus_publisher_open(
	    &p, rt->cfg->bus_publish, rt->service, rt->cfg->instance, rt->m);
	if (rv != 0) {
		log_error("cannot open bus publisher %s: %s",
		    rt->cfg->bus_publish, od_strerror(rv));
		return rv;
	}
	if ((rv = runtime_defer(rt, close_publisher, p)) != 0) {
		return rv;
	}
	runtime_ready_check(rt, "bus", publisher_ready, p);
	rt->pub = p;
	*out = p;
	return 0;
}

void
runtime_rpc_options(runtime *rt, rpc_server_options *o, const char *url,
    const ProtobufCMessageDescriptor *request_desc,
    const ProtobufCMessageDescriptor *reply_desc, const rpc_method *methods,
    size_t n_methods, void *arg)
{
	rpc_server_options_init(
	    o, url, request_desc, reply_desc, methods, n_methods, arg);
	o->store = rt->st;
	o->publisher = rt->pub;
	o->metrics = rt->m;
	o->service = rt->service;
	o->instance = rt->cfg->instance;
}

static void
stop_rpc_server(void *arg)
{
	rpc_server_stop(arg);
}

int
runtime_rpc_server(runtime *rt, const rpc_server_options *o, rpc_server **out)
{
	rpc_server *srv;
	int rv;

	if ((rv = rpc_server_start(&srv, o)) != 0) {
		log_error("cannot listen on %s: %s", o->url, od_strerror(rv));
		return rv;
	}
	if ((rv = runtime_defer(rt, stop_rpc_server, srv)) != 0) {
		return rv;
	}
	if (out != NULL) {
		*out = srv;
	}
	return 0;
}

static bool
http_ready(void *arg, char *why, size_t size)
{
	runtime *rt = arg;
	bool ok = true;
	size_t used = 0;
	why[0] = '\0';
	pthread_mutex_lock(&rt->mtx);
	for (int i = 0; i < rt->n_checks; i++) {
		if (!rt->checks[i].ok(rt->checks[i].arg)) {
			int n = snprintf(why + used, size - used, "%s%s",
			    ok ? "" : ", ", rt->checks[i].name);
			if (n > 0 && (size_t) n < size - used) {
				used += (size_t) n;
			}
			ok = false;
		}
	}
	pthread_mutex_unlock(&rt->mtx);
	return ok;
}

static void
free_http(void *arg)
{
	http_server_free(arg);
}

int
runtime_http(
    runtime *rt, int (*add_routes)(void *arg, http_server *s), void *arg)
{
	if (rt->cfg->http_addr[0] == '\0') {
		return 0;
	}
	http_server *s;
	int rv
	    = http_server_new(&s, rt->cfg->http_addr, rt->m, http_ready, rt);
	if (rv != 0) {
		return rv;
	}
	if (add_routes != NULL && (rv = add_routes(arg, s)) != 0) {
		http_server_free(s);
		return rv;
	}
	if ((rv = http_server_start(s)) != 0) {
		http_server_free(s);
		return rv;
	}
	runtime_defer(rt, free_http, s);
	log_info("http listening on %s", rt->cfg->http_addr);
	return 0;
}

static void *
timer_main(void *arg)
{
	runtime *rt = arg;
	pthread_mutex_lock(&rt->mtx);
	while (!rt->stopping) {
		int64_t now = od_mono_ms();
		int64_t next = now + 60000;
		for (int i = 0; i < rt->n_tasks && !rt->stopping; i++) {
			rt_task *t = &rt->tasks[i];
			if (t->next_ms <= now) {
				/* Schedule from the due time, not from now, so
				 * a periodic task does not drift; skip missed
				 * ticks instead of bursting. */
				t->next_ms += t->interval_ms;
				if (t->next_ms <= now) {
					t->next_ms = now + t->interval_ms;
				}
				pthread_mutex_unlock(&rt->mtx);
				t->fn(t->arg);
				pthread_mutex_lock(&rt->mtx);
				now = od_mono_ms();
			}
			if (t->next_ms < next) {
				next = t->next_ms;
			}
		}
		if (rt->stopping) {
			break;
		}
		if (next > now) {
			(void) od_cond_wait_ms(&rt->cv, &rt->mtx, next - now);
		}
	}
	pthread_mutex_unlock(&rt->mtx);
	return NULL;
}

int
runtime_every(
    runtime *rt, int64_t interval_ms, void (*fn)(void *arg), void *arg)
{
	if (interval_ms <= 0) {
		return OD_EINVAL;
	}
	pthread_mutex_lock(&rt->mtx);
	if (rt->n_tasks >= RT_MAX_TASKS) {
		pthread_mutex_unlock(&rt->mtx);
		return OD_ELIMIT;
	}
	rt_task *t = &rt->tasks[rt->n_tasks++];
	t->interval_ms = interval_ms;
	t->next_ms = od_mono_ms() + interval_ms;
	t->fn = fn;
	t->arg = arg;
	int rv = 0;
	if (!rt->timer_started) {
		if (pthread_create(&rt->timer, NULL, timer_main, rt) != 0) {
			rt->n_tasks--;
			rv = OD_ENOMEM;
		} else {
			rt->timer_started = true;
		}
	} else {
		pthread_cond_signal(&rt->cv);
	}
	pthread_mutex_unlock(&rt->mtx);
	return rv;
}

static void
stop_timers(runtime *rt)
{
	pthread_mutex_lock(&rt->mtx);
	rt->stopping = true;
	pthread_cond_broadcast(&rt->cv);
	bool started = rt->timer_started;
	rt->timer_started = false;
	pthread_mutex_unlock(&rt->mtx);
	if (started) {
		pthread_join(rt->timer, NULL);
	}
}

void
runtime_stop(runtime *rt)
{
	/* sigwait in runtime_run picks this up like an operator's ^C. */
	kill(getpid(), SIGTERM);
	(void) rt;
}

void
runtime_fini(runtime *rt)
{
	if (rt == NULL) {
		return;
	}
	stop_timers(rt);
	for (int i = rt->n_defers - 1; i >= 0; i--) {
		rt->defers[i].fn(rt->defers[i].arg);
	}
	rt->n_defers = 0;
	config_free(rt->cfg);
	metrics_free(rt->m);
	pthread_cond_destroy(&rt->cv);
	pthread_mutex_destroy(&rt->mtx);
	free(rt);
}

int
runtime_on_reload(runtime *rt, void (*fn)(void *arg), void *arg)
{
	if (rt->n_reloads >= RT_MAX_RELOAD) {
		log_error(
		    "runtime: more than %d reload callbacks", RT_MAX_RELOAD);
		return OD_ELIMIT;
	}
	rt->reloads[rt->n_reloads].fn = fn;
	rt->reloads[rt->n_reloads].arg = arg;
	rt->n_reloads++;
	return 0;
}

int
runtime_reload(runtime *rt)
{
	char err[512];
	int rv = auth_process_reload(err, sizeof(err));
	if (rv == OD_ENOTFOUND) {
		rv = 0; /* auth off: no credentials to read */
	} else if (rv != 0) {
		log_kv(LOG_ERROR,
		    "credential reload failed, the running credentials stay",
		    "error", err, NULL);
	} else {
		log_info("credentials reloaded");
	}
	/* The admin list every request's actor is checked against: loading
	 * the config sets it (auth_set_admins); a config that does not
	 * load leaves the running list. */
	config *c = NULL;
	int crv = config_load_file(&c, NULL, rt->service,
	    rt->default_http[0] ? rt->default_http : NULL, err, sizeof(err));
	if (crv != 0) {
		log_kv(LOG_ERROR,
		    "config reload rejected, the running admin list stays",
		    "error", err, NULL);
		rv = rv != 0 ? rv : crv;
	} else {
		log_info("admin list reloaded: %d admins", c->n_admins);
	}
	config_free(c);
	metric_inc(rv == 0 ? rt->m_reload_ok : rt->m_reload_err);
	for (int i = 0; i < rt->n_reloads; i++) {
		rt->reloads[i].fn(rt->reloads[i].arg);
	}
	return rv;
}

int
runtime_run(runtime *rt)
{
	log_info("ready");
	int sig = 0;
	for (;;) {
		if (sigwait(&rt->sigs, &sig) != 0) {
			continue;
		}
		if (sig != SIGHUP) {
			break;
		}
		log_info("SIGHUP: reloading");
		(void) runtime_reload(rt);
	}
	log_info("shutting down on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	runtime_fini(rt);
	log_info("stopped");
	return 0;
}
