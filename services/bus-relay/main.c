/*
 * bus-relay — the hub of the bus: publishers dial $OPSDESK_BUS_PUBLISH,
 * subscribers dial $OPSDESK_BUS_SUBSCRIBE, and every frame is forwarded
 * from one to the other (see relay.h). HTTP: /healthz, /readyz, /metrics.
 */
#include <stdbool.h>

#include "bus/bus.h"
#include "log/log.h"
#include "relay.h"
#include "runtime/runtime.h"

static const char help[]
    = "Forward every bus frame from publishers to subscribers.\n"
      "Publishers dial OPSDESK_BUS_PUBLISH (tcp://127.0.0.1:7400),\n"
      "subscribers dial OPSDESK_BUS_SUBSCRIBE (tcp://127.0.0.1:7401);\n"
      "the relay listens on both. Frames over 1 MiB close the sender's\n"
      "connection.\n";

static void
stop_relay(void *arg)
{
	relay_stop(arg);
}

int
main(int argc, char **argv)
{
	runtime *rt;
	relay *r = NULL;
	int rv = runtime_init(
	    &rt, argc, argv, "bus-relay", "127.0.0.1:9400", help);

	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	config *cfg = runtime_config(rt);
	relay_options opt = {
		.publish_url = cfg->bus_publish,
		.subscribe_url = cfg->bus_subscribe,
		.max_msg = BUS_MAX_MSG,
		.metrics = runtime_metrics(rt),
	};
	if ((rv = relay_start(&r, &opt)) != 0) {
		log_error("cannot start the relay: %s", od_strerror(rv));
		goto fail;
	}
	/* Deferred callbacks run in reverse: HTTP stops before the relay. */
	if ((rv = runtime_defer(rt, stop_relay, r)) != 0) {
		goto fail;
	}
	if ((rv = runtime_http(rt, NULL, NULL)) != 0) {
		log_error("cannot start HTTP on %s: %s", cfg->http_addr,
		    od_strerror(rv));
		goto fail;
	}
	return runtime_run(rt);
fail:
	runtime_fini(rt);
	return 1;
}
