/*
 * service — status-publisher as a running service on top of the runtime
 * (bus, rpc, HTTP); main.c only calls this.
 */
#ifndef OPSDESK_STATUS_SERVICE_H
#define OPSDESK_STATUS_SERVICE_H

#include "runtime/runtime.h"
#include "status.h"

typedef struct status_service status_service;

/*
 * Read the status_page config, open the read model, start the HTTP routes,
 * the rpc server (StatusRequest), the bus subscriber and the resync
 * worker. Everything is registered with rt for shutdown (rt borrowed).
 * 0 or an od_err (logged).
 */
int status_service_start(runtime *rt);

#endif /* OPSDESK_STATUS_SERVICE_H */
