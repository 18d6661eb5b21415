/*
 * ticket-service — tickets, threads, tiers, FAQ and SLAs behind /support.
 * All the logic is in ticket_core (ticket_service_start wires it).
 */
#include "runtime/runtime.h"
#include "ticket.h"

static const char help[]
    = "Serves TicketRequest over NNG req/rep (OPSDESK_TICKET_URL, default\n"
      "tcp://127.0.0.1:7410), publishes ticket.* events, follows incident.*\n"
      "events. Config sections: tickets (sla, limits, reopen_days) and faq.\n";

int
main(int argc, char **argv)
{
	runtime *rt;
	int rv = runtime_init(
	    &rt, argc, argv, TICKET_SERVICE, TICKET_DEFAULT_HTTP, help);

	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	if (ticket_service_start(rt) != 0) {
		runtime_fini(rt);
		return 1;
	}
	return runtime_run(rt);
}
