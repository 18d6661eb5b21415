/*
 * fuzz_incident_request — arbitrary bytes as an IncidentRequest through the
 * real rpc server and incident_core handlers (a store in a temp dir,
 * inproc, no peers: reports and postmortems take their "unavailable"
 * paths). Checks, for every input:
 *   - a reply comes back and decodes as an IncidentReply (never a crash,
 *     a hang or garbage);
 *   - a non-admin actor never sees an internal timeline entry, an author
 *     or acknowledger name, or a non-public incident (snapshot, alerts).
 * Seeded with a public incident carrying an internal note (INC-1), an
 * internal incident (INC-2), a maintenance window and a ticked checklist
 * item, so ids 1 and 2 in the corpus hit real records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_service.h"
#include "incident_core.h"
#include "log/log.h"

static fuzz_service fs;
static inc_service svc;

static void
svc_fini(void *arg)
{
	inc_config_free(&((inc_service *) arg)->cfg);
}

static void
call(const char *method, ProtobufCMessage *msg)
{
	Opsdesk__V1__IncidentRequest req = OPSDESK__V1__INCIDENT_REQUEST__INIT;
	Opsdesk__V1__Actor ad = OPSDESK__V1__ACTOR__INIT;

	ad.user_id = 99;
	ad.is_admin = true;
	ad.name = "root";
	req.actor = &ad;
	protobuf_c_message_free_unpacked(
	    fuzz_service_call(&fs, &req.base, method, msg,
	        &opsdesk__v1__incident_reply__descriptor),
	    NULL);
}

static void
seed(void)
{
	Opsdesk__V1__CreateIncidentRequest c
	    = OPSDESK__V1__CREATE_INCIDENT_REQUEST__INIT;
	Opsdesk__V1__UpdateIncidentRequest u
	    = OPSDESK__V1__UPDATE_INCIDENT_REQUEST__INIT;
	Opsdesk__V1__CreateMaintenanceRequest m
	    = OPSDESK__V1__CREATE_MAINTENANCE_REQUEST__INIT;
	Opsdesk__V1__TickRequest t = OPSDESK__V1__TICK_REQUEST__INIT;
	char *comps[] = { "db" };
	int64_t now = od_now_ms();

	c.severity = SEV_CRITICAL;
	c.title = "public outage";
	c.components = comps;
	c.n_components = 1;
	call("create", &c.base);
	c.severity = SEV_LOW;
	c.title = "internal only";
	c.internal = true;
	call("create", &c.base);
	u.id = 1;
	u.text = "secret internal note";
	u.internal = true;
	call("update", &u.base);
	m.title = "upgrade";
	m.components = comps;
	m.n_components = 1;
	m.start_ms = now + INC_HOUR_MS;
	m.end_ms = now + 2 * INC_HOUR_MS;
	call("maintenance_create", &m.base);
	t.list_id = "daily";
	t.item_id = "1";
	t.done = true;
	call("tick", &t.base);
}

static void
setup(void)
{
	store_options so = { 0 };
	rpc_server_options ro = { 0 };

	log_init("fuzz_incident_request", "fuzz", LOG_ERROR);
	if (inc_config_defaults(&svc.cfg) != 0) {
		abort();
	}
	svc.cfg.lists[CK_DAILY].items = calloc(1, sizeof(inc_check_item));
	svc.cfg.lists[CK_DAILY].items[0].id = strdup("1");
	svc.cfg.lists[CK_DAILY].items[0].text = strdup("check backups");
	svc.cfg.lists[CK_DAILY].n_items = 1;
	so.dbs = inc_db_names;
	fuzz_service_open_store(&fs, "incident", &so);
	svc.st = fs.st;
	rpc_server_options_init(&ro, NULL,
	    &opsdesk__v1__incident_request__descriptor,
	    &opsdesk__v1__incident_reply__descriptor, inc_methods,
	    inc_n_methods, &svc);
	ro.service = "incident-service";
	fuzz_service_start(&fs, "incident", &ro, svc_fini);
	seed();
}

static void
fail(const char *what, uint64_t id)
{
	fprintf(stderr, "a non-admin saw %s: %llu\n", what,
	    (unsigned long long) id);
	abort();
}

/* The public-view invariant over one incident in a non-admin's result. */
static void
check_public(const inc_incident *inc, bool must_be_public)
{
	if (inc == NULL) {
		return;
	}
	if (must_be_public && !inc->public_) {
		fail("a non-public incident", inc->id);
	}
	if (inc->acknowledged_by_name[0] != '\0') {
		fail("the acknowledger", inc->id);
	}
	for (size_t i = 0; i < inc->n_timeline; i++) {
		if (!inc->timeline[i]->public_) {
			fail("an internal entry", inc->id);
		}
		if (inc->timeline[i]->author_name[0] != '\0') {
			fail("an author name", inc->id);
		}
	}
}

static void
check_reply(const Opsdesk__V1__IncidentReply *r)
{
	switch (r->result_case) {
	case OPSDESK__V1__INCIDENT_REPLY__RESULT_SNAPSHOT:
		for (size_t i = 0; i < r->snapshot->n_active; i++) {
			check_public(r->snapshot->active[i], true);
		}
		for (size_t i = 0; i < r->snapshot->n_recent; i++) {
			check_public(r->snapshot->recent[i], true);
		}
		for (size_t i = 0; i < r->snapshot->n_maintenance; i++) {
			if (r->snapshot->maintenance[i]->created_by != 0) {
				fail("who scheduled a window (MNT id)",
				    r->snapshot->maintenance[i]->id);
			}
		}
		break;
	case OPSDESK__V1__INCIDENT_REPLY__RESULT_ALERTS:
		for (size_t i = 0; i < r->alerts->n_alerts; i++) {
			check_public(r->alerts->alerts[i]->incident, false);
		}
		break;
	case OPSDESK__V1__INCIDENT_REPLY__RESULT_MAINTENANCE_LIST:
		for (size_t i = 0; i < r->maintenance_list->n_windows; i++) {
			if (r->maintenance_list->windows[i]->created_by != 0) {
				fail("who scheduled a window (MNT id)",
				    r->maintenance_list->windows[i]->id);
			}
		}
		break;
	default:
		if (r->result_case
		        != OPSDESK__V1__INCIDENT_REPLY__RESULT__NOT_SET
		    && r->result_case
		        != OPSDESK__V1__INCIDENT_REPLY__RESULT_PING) {
			fprintf(stderr, "a non-admin got an admin result %d\n",
			    (int) r->result_case);
			abort();
		}
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Opsdesk__V1__IncidentRequest *req;
	Opsdesk__V1__IncidentReply *r;

	if (fs.cli == NULL) {
		setup();
	}
	r = (Opsdesk__V1__IncidentReply *) fuzz_service_call_raw(
	    &fs, data, size, &opsdesk__v1__incident_reply__descriptor);
	req = opsdesk__v1__incident_request__unpack(NULL, size, data);
	/* A write's reply is kept under its request id and given back to
	 * whoever repeats that id (services pick ids, never a user), so the
	 * invariant is checked on requests without one. */
	if (req != NULL && r->error == NULL && req->request_id[0] == '\0'
	    && (req->actor == NULL || !req->actor->is_admin)) {
		check_reply(r);
	}
	protobuf_c_message_free_unpacked(
	    req != NULL ? &req->base : NULL, NULL);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}
