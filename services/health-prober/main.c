/*
 * health-prober — probes the targets of the config, keeps their states
 * and history, answers ProberRequest on OPSDESK_PROBER_URL and publishes
 * health.changed / health.result. The logic is prober_core.
 */
#include <curl/curl.h>

#include "prober.h"
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

int
main(int argc, char **argv)
{
	runtime *rt;
	int rv;

	prober_process_setup(); /* before any thread */
	rv = runtime_init(
	    &rt, argc, argv, "health-prober", "127.0.0.1:9430", help);
	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (prober_service_start(rt) != 0) {
		runtime_fini(rt);
		curl_global_cleanup();
		return 1;
	}
	rv = runtime_run(rt);
	curl_global_cleanup();
	return rv;
}
