/*
 * status-publisher — the public status page, its Statuspage v2 JSON API,
 * feeds and badges, and the status summary for chat.
 */
#include "service.h"

static const char help[]
    = "Serves the public status page (HTML, Statuspage v2 JSON, RSS/Atom,\n"
      "SVG badges) from a read model built from health.*, incident.* and\n"
      "maintenance.* events, resynced from health-prober and\n"
      "incident-service; answers StatusRequest on OPSDESK_STATUS_URL and\n"
      "publishes status.changed. Page settings: the config's status_page.\n";

int
main(int argc, char **argv)
{
	runtime *rt;
	int rv = runtime_init(
	    &rt, argc, argv, "status-publisher", "127.0.0.1:8080", help);
	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	if (status_service_start(rt) != 0) {
		runtime_fini(rt);
		return 1;
	}
	return runtime_run(rt);
}
