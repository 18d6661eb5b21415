/*
 * incident-service — incidents, alerts, maintenance windows, ops
 * checklists, postmortems and reports. The logic is incident_core.
 */
#include "incident_core.h"
#include "runtime/runtime.h"

static const char help[]
    = "Serves incidents, maintenance windows, ops checklists, postmortems,\n"
      "reports and the alert log over req/rep (OPSDESK_INCIDENT_URL,\n"
      "default tcp://127.0.0.1:7420); opens incidents from health.changed;\n"
      "publishes incident.*, maintenance.*, alert.* and ops.checklist.\n"
      "Config sections: incidents, checklists, maintenance (see README).\n";

int
main(int argc, char **argv)
{
	runtime *rt;
	int rv = runtime_init(
	    &rt, argc, argv, "incident-service", "127.0.0.1:9420", help);

	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	if (inc_service_start(rt) != 0) {
		runtime_fini(rt);
		return 1;
	}
	return runtime_run(rt);
}
