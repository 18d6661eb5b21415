/*
 * runtime — what every service's main() does, once: --help/--version,
 * config and logging, the store under $OPSDESK_DATA_DIR/<service>, the
 * HTTP listener with /healthz /readyz /metrics, the bus publisher,
 * periodic tasks, signals, and shutdown in the reverse order of start-up
 * (rpc server before the store it writes to, and so on).
 *
 * A service main is then:
 *
 *	runtime *rt;
 *	int rv = runtime_init(&rt, argc, argv, "ticket-service",
 *	    "127.0.0.1:9410", HELP_TEXT);
 *	if (rv != 0) return rv < 0 ? 0 : 1;   (-1: --help or --version)
 *	... runtime_open_store, runtime_publisher, start the rpc server,
 *	    register it with runtime_defer, runtime_every for timers ...
 *	return runtime_run(rt);   (waits for SIGTERM/SIGINT, shuts down;
 *	                           SIGHUP: runtime_reload)
 */
#ifndef OPSDESK_RUNTIME_H
#define OPSDESK_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "config/config.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "rpc/rpc.h"
#include "store/store.h"

typedef struct runtime runtime;

/*
 * Parse argv (--help prints `help` and the environment it reads,
 * --version the version; both return -1), load the config (errors are
 * printed and return 1), start logging, create the metrics registry and
 * block SIGTERM/SIGINT/SIGPIPE in every thread created after. 0 on
 * success.
 */
int runtime_init(runtime **out, int argc, char **argv, const char *service,
    const char *default_http, const char *help);

config *runtime_config(runtime *rt);
metrics *runtime_metrics(runtime *rt);
const char *runtime_service(runtime *rt);

/* Open the store at config's store_dir (opt->path is ignored and set). */
int runtime_open_store(runtime *rt, store_options *opt, store **out);
/* Open the publisher to config's bus_publish. */
int runtime_publisher(runtime *rt, bus_publisher **out);
/*
 * Fill *o for a service's rpc server: rpc_server_options_init with the
 * arguments, then the runtime's metrics, service name and instance, and
 * the store and publisher of the last runtime_open_store /
 * runtime_publisher (NULL when none). Set other fields after.
 */
void runtime_rpc_options(runtime *rt, rpc_server_options *o, const char *url,
    const ProtobufCMessageDescriptor *request_desc,
    const ProtobufCMessageDescriptor *reply_desc, const rpc_method *methods,
    size_t n_methods, void *arg);
/* Start an rpc server (errors logged with the url) and stop it at
 * shutdown. *out (may be NULL) is borrowed. */
int runtime_rpc_server(
    runtime *rt, const rpc_server_options *o, rpc_server **out);
/* Start the HTTP server on config's http_addr, with `routes` added first
 * by add_routes(arg, server) (may be NULL). Readiness: every check added
 * with runtime_ready_check must pass. */
int runtime_http(
    runtime *rt, int (*add_routes)(void *arg, http_server *s), void *arg);
/* A readiness check shown in /readyz: ok(arg) false -> 503 naming it. */
int runtime_ready_check(
    runtime *rt, const char *name, bool (*ok)(void *arg), void *arg);

/* Call fn(arg) at shutdown; callbacks run in reverse order of
 * registration. fn(arg) runs exactly once in every case: when it cannot
 * be registered (OD_ELIMIT) it runs before runtime_defer returns, so the
 * caller only returns the error and never frees arg itself:
 *	if ((rv = runtime_defer(rt, thing_stop, thing)) != 0) return rv; */
int runtime_defer(runtime *rt, void (*fn)(void *arg), void *arg);
/* Call fn(arg) every interval_ms on the runtime's timer thread (first
 * call after one interval); stopped at shutdown before the deferred
 * callbacks run. */
int runtime_every(
    runtime *rt, int64_t interval_ms, void (*fn)(void *arg), void *arg);

/*
 * SIGHUP (runtime_run calls this; tests may directly): read the
 * credentials of OPSDESK_TLS_DIR again (auth_process_reload: new
 * messages and connections use them), and the config's admin list; a
 * file that does not load is logged and what runs stays. Then every
 * callback of runtime_on_reload, in order of registration (on the
 * thread of runtime_run: a callback that takes long sets a flag for its
 * own thread). Counted in opsdesk_reloads_total{result}. 0 or the first
 * error.
 */
int runtime_reload(runtime *rt);
/* Call fn(arg) at every runtime_reload. OD_ELIMIT past 8. */
int runtime_on_reload(runtime *rt, void (*fn)(void *arg), void *arg);

/* Wait for SIGTERM or SIGINT, then shut down and free rt; SIGHUP runs
 * runtime_reload and keeps waiting. Returns the process exit code (0). */
int runtime_run(runtime *rt);
/* Ask runtime_run to return (tests, fatal errors in a thread). */
void runtime_stop(runtime *rt);
/* Shut down and free without waiting (errors during start-up). */
void runtime_fini(runtime *rt);

#endif /* OPSDESK_RUNTIME_H */
