/*
 * incidents.c — incident-aware support. ticket-service keeps the set of
 * active public incidents in memory (it is incident-service's fact, not
 * ours): filled from incident.* events, replaced by a snapshot over
 * req/rep on start and after a gap. Tickets opened during one are linked
 * to it in incident_links; when it resolves each linked owner gets one
 * ticket.notify and the link is removed in the same txn, so a repeated
 * resolve or resync never notifies twice.
 */
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "ticket.h"
#include "util/util.h"

#define MAX_ACTIVE 64

struct ticket_incidents {
	pthread_mutex_t mu;
	tk_incident *active[MAX_ACTIVE]; /* owned, unpacked copies */
	size_t n;
};

/* A deep copy through the wire format; caller frees with
 * protobuf_c_message_free_unpacked. */
static tk_incident *
incident_dup(const tk_incident *inc)
{
	size_t len = opsdesk__v1__incident__get_packed_size(inc);
	uint8_t *buf = malloc(len ? len : 1);
	tk_incident *copy;

	if (buf == NULL) {
		return NULL;
	}
	opsdesk__v1__incident__pack(inc, buf);
	copy = opsdesk__v1__incident__unpack(NULL, len, buf);
	free(buf);
	return copy;
}

static bool
is_public_active(const tk_incident *inc)
{
	return inc->public_
	    && inc->status
	    != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED;
}

int
ticket_incidents_new(ticket_incidents **out)
{
	ticket_incidents *ti = calloc(1, sizeof(*ti));

	if (ti == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&ti->mu, NULL);
	*out = ti;
	return 0;
}

static void
clear_locked(ticket_incidents *ti)
{
	for (size_t i = 0; i < ti->n; i++) {
		protobuf_c_message_free_unpacked(&ti->active[i]->base, NULL);
	}
	ti->n = 0;
}

void
ticket_incidents_free(ticket_incidents *ti)
{
	if (ti == NULL) {
		return;
	}
	clear_locked(ti);
	pthread_mutex_destroy(&ti->mu);
	free(ti);
}

/* Lower severity value is more severe; unspecified counts as least. */
static int
severity_rank(int sev)
{
	return sev == 0 ? 100 : sev;
}

tk_incident *
ticket_incidents_current(ticket_incidents *ti)
{
	tk_incident *best = NULL;
	tk_incident *copy = NULL;

	if (ti == NULL) {
		return NULL;
	}
	pthread_mutex_lock(&ti->mu);
	for (size_t i = 0; i < ti->n; i++) {
		tk_incident *inc = ti->active[i];
		if (best == NULL
		    || severity_rank(inc->severity)
		        < severity_rank(best->severity)
		    || (inc->severity == best->severity
		        && inc->created_ms > best->created_ms)) {
			best = inc;
		}
	}
	if (best != NULL) {
		copy = incident_dup(best);
	}
	pthread_mutex_unlock(&ti->mu);
	return copy;
}

/* Insert or replace inc (borrowed) in the active set, or drop it when it
 * is resolved or not public (or `drop`). */
static void
upsert(ticket_incidents *ti, const tk_incident *inc, bool drop)
{
	size_t i;

	pthread_mutex_lock(&ti->mu);
	for (i = 0; i < ti->n; i++) {
		if (ti->active[i]->id == inc->id) {
			break;
		}
	}
	if (i < ti->n) {
		protobuf_c_message_free_unpacked(&ti->active[i]->base, NULL);
		ti->active[i] = ti->active[--ti->n];
	}
	if (!drop && is_public_active(inc) && ti->n < MAX_ACTIVE) {
		tk_incident *copy = incident_dup(inc);
		if (copy != NULL) {
			ti->active[ti->n++] = copy;
		}
	}
	pthread_mutex_unlock(&ti->mu);
}

/* ---- notifying linked owners ---- */

typedef struct notify_job {
	ticket_service *svc;
	uint64_t *ids; /* incidents to notify for */
	size_t n;
	char **titles;
} notify_job;

static void
notify_job_free(notify_job *j)
{
	if (j == NULL) {
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		free(j->titles[i]);
	}
	free(j->titles);
	free(j->ids);
	free(j);
}

static int
notify_one(
    store_txn *txn, ticket_service *svc, uint64_t inc_id, const char *title)
{
	MDB_txn *mt = store_txn_mdb(txn);
	MDB_dbi links = store_db(svc->store, TDB_INCIDENT_LINKS);
	store_scan sc;
	MDB_val key, val;
	uint8_t k[16];
	uint64_t ids[256];
	size_t n = 0;
	int rv = 0;

	/* Collect first: the scan must not outlive the deletes. A very
	 * large incident is notified in rounds of 256 by the caller's loop.
	 * Keys: incident id, ticket id. */
	store_key_u64(k, inc_id);
	if (store_scan_open(&sc, mt, links, k, 8, NULL) != 0) {
		return OD_EIO;
	}
	while (n < 256 && store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == 16) {
		ids[n++] = store_key_get_u64((uint8_t *) key.mv_data + 8);
	}
	store_scan_close(&sc);

	/* Unlink all, then one notice per owner naming their tickets (a
	 * user with five linked tickets gets one message); closed tickets
	 * are done with and get none. */
	tk_ticket *ts[256];
	for (size_t i = 0; i < n; i++) {
		store_key_u64(k + 8, ids[i]);
		if ((rv = store_del(txn, links, k, sizeof(k), NULL, 0)) != 0) {
			for (size_t j = 0; j < i; j++) {
				if (ts[j] != NULL) {
					protobuf_c_message_free_unpacked(
					    &ts[j]->base, NULL);
				}
			}
			return rv;
		}
		ts[i] = NULL;
		if (ticket__load(mt, svc, ids[i], &ts[i]) != 0) {
			ts[i] = NULL;
		} else if (ts[i]->status
		    == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_CLOSED) {
			protobuf_c_message_free_unpacked(&ts[i]->base, NULL);
			ts[i] = NULL;
		}
	}
	for (size_t i = 0; i < n && rv == 0; i++) {
		Opsdesk__V1__TicketNotify nt
		    = OPSDESK__V1__TICKET_NOTIFY__INIT;
		sbuf list = SBUF_INIT, text = SBUF_INIT;
		size_t same = 0;
		if (ts[i] == NULL) {
			continue;
		}
		for (size_t j = i; j < n; j++) {
			if (ts[j] != NULL
			    && ts[j]->owner_id == ts[i]->owner_id) {
				sbuf_printf(&list, "%sT-%llu",
				    same == 0 ? "" : ", ",
				    (unsigned long long) ts[j]->id);
				same++;
			}
		}
		sbuf_printf(&text,
		    "The incident INC-%llu%s%s that was affecting the service "
		    "when you opened %s is resolved. If the problem "
		    "persists, reply to the ticket.",
		    (unsigned long long) inc_id, title[0] != '\0' ? ", " : "",
		    title, sbuf_str(&list));
		nt.ticket_id = ts[i]->id;
		nt.user_id = ts[i]->owner_id;
		nt.chat_id = ts[i]->chat_id;
		nt.text = (char *) sbuf_str(&text);
		nt.incident_id = inc_id;
		rv = sbuf_failed(&text) || sbuf_failed(&list)
		    ? OD_ENOMEM
		    : ticket__publish_notify(txn, svc, &nt);
		int64_t owner = ts[i]->owner_id;
		for (size_t j = i; j < n; j++) {
			if (ts[j] == NULL || ts[j]->owner_id != owner) {
				continue;
			}
			if (rv == 0) {
				rv = ticket__audit(txn, svc, ts[j]->id, NULL,
				    "notify", "incident resolved", NULL);
			}
			protobuf_c_message_free_unpacked(&ts[j]->base, NULL);
			ts[j] = NULL;
		}
		sbuf_free(&list);
		sbuf_free(&text);
	}
	for (size_t i = 0; i < n; i++) {
		if (ts[i] != NULL) {
			protobuf_c_message_free_unpacked(&ts[i]->base, NULL);
		}
	}
	if (rv != 0) {
		return rv;
	}
	return n == 256 ? notify_one(txn, svc, inc_id, title) : 0;
}

static int
notify_fn(store_txn *txn, void *arg)
{
	notify_job *j = arg;
	int rv;

	for (size_t i = 0; i < j->n; i++) {
		if ((rv = notify_one(txn, j->svc, j->ids[i], j->titles[i]))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

static void
notify_done(int rv, void *arg)
{
	if (rv != 0) {
		log_warn("notifying ticket owners of a resolved incident: %s",
		    od_strerror(rv));
	}
	notify_job_free(arg);
}

static int
notify_submit(ticket_service *svc, notify_job *j)
{
	int rv;

	if (j->n == 0) {
		notify_job_free(j);
		return 0;
	}
	if ((rv = store_submit(svc->store, notify_fn, j, notify_done, j))
	    != 0) {
		notify_job_free(j);
	}
	return rv;
}

static int
job_add(notify_job *j, uint64_t id, const char *title, size_t cap)
{
	if (j->ids == NULL) {
		j->ids = calloc(cap, sizeof(*j->ids));
		j->titles = calloc(cap, sizeof(*j->titles));
		if (j->ids == NULL || j->titles == NULL) {
			return OD_ENOMEM;
		}
	}
	if (j->n == cap) {
		return OD_ELIMIT;
	}
	if ((j->titles[j->n] = strdup(title != NULL ? title : "")) == NULL) {
		return OD_ENOMEM;
	}
	j->ids[j->n++] = id;
	return 0;
}

int
ticket_incident_resolved(ticket_service *svc, const tk_incident *inc)
{
	notify_job *j = calloc(1, sizeof(*j));
	int rv;

	upsert(svc->incidents, inc, true);
	if (j == NULL) {
		return OD_ENOMEM;
	}
	j->svc = svc;
	if ((rv = job_add(j, inc->id, inc->title, 1)) != 0) {
		notify_job_free(j);
		return rv;
	}
	return notify_submit(svc, j);
}

int
ticket_incidents_sync(
    ticket_service *svc, Opsdesk__V1__Incident **active, size_t n)
{
	ticket_incidents *ti = svc->incidents;
	notify_job *j;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, val;
	int rv, mrv;

	pthread_mutex_lock(&ti->mu);
	clear_locked(ti);
	pthread_mutex_unlock(&ti->mu);
	for (size_t i = 0; i < n; i++) {
		upsert(ti, active[i], false);
	}

	/* Links to an incident that is not active any more: it resolved
	 * while we were not listening. Walk the distinct incident ids of
	 * incident_links (jumping over each one's tickets). */
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		return OD_ENOMEM;
	}
	j->svc = svc;
	if ((rv = store_read_begin(svc->store, &txn)) != 0) {
		goto out;
	}
	if (mdb_cursor_open(
	        txn, store_db(svc->store, TDB_INCIDENT_LINKS), &cur)
	    != 0) {
		rv = OD_EIO;
		goto out;
	}
	mrv = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (mrv == 0 && key.mv_size == 16) {
		uint64_t id = store_key_get_u64(key.mv_data);
		bool still = false;
		uint8_t next[16];
		for (size_t i = 0; i < n; i++) {
			if (active[i]->id == id
			    && active[i]->status
			        != OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
				still = true;
			}
		}
		if (!still && (rv = job_add(j, id, "", MAX_ACTIVE)) != 0) {
			break;
		}
		store_key_u64(next, id + 1);
		store_key_u64(next + 8, 0);
		key.mv_data = next;
		key.mv_size = sizeof(next);
		mrv = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	}
	rv = 0;
out:
	if (cur != NULL) {
		mdb_cursor_close(cur);
	}
	store_read_end(txn);
	if (rv == 0) {
		return notify_submit(svc, j);
	}
	notify_job_free(j);
	return rv;
}

void
ticket_on_incident_event(
    void *arg, const char *topic, const Opsdesk__V1__Envelope *env)
{
	ticket_service *svc = arg;
	const tk_incident *inc;

	if (env->payload_case != OPSDESK__V1__ENVELOPE__PAYLOAD_INCIDENT
	    || env->incident == NULL || env->incident->incident == NULL) {
		return;
	}
	inc = env->incident->incident;
	upsert(svc->incidents, inc, false);
	if (inc->status
	        == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED
	    || strcmp(topic, "incident.resolved") == 0) {
		int rv = ticket_incident_resolved(svc, inc);
		if (rv != 0) {
			log_warn("incident INC-%llu resolved: %s",
			    (unsigned long long) inc->id, od_strerror(rv));
		}
	}
}

int
ticket_incidents_fetch(void *arg)
{
	ticket_service *svc = arg;
	Opsdesk__V1__IncidentRequest req = OPSDESK__V1__INCIDENT_REQUEST__INIT;
	Opsdesk__V1__IncidentSnapshotRequest sr
	    = OPSDESK__V1__INCIDENT_SNAPSHOT_REQUEST__INIT;
	Opsdesk__V1__Actor actor = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__IncidentReply *rep = NULL;
	int rv;

	/* A service-to-service read, as ticket-service. */
	actor.is_admin = true;
	actor.name = "ticket-service";
	req.actor = &actor;
	req.method_case = OPSDESK__V1__INCIDENT_REQUEST__METHOD_SNAPSHOT;
	req.snapshot = &sr;
	if ((rv = rpc_client_call_peer(svc->incident_client, &req.base,
	         &opsdesk__v1__incident_reply__descriptor,
	         (ProtobufCMessage **) &rep, 2000))
	    != 0) {
		/* Events still update the set meanwhile. */
		return rv;
	}
	if (rep->result_case == OPSDESK__V1__INCIDENT_REPLY__RESULT_SNAPSHOT) {
		int nrv = ticket_incidents_sync(
		    svc, rep->snapshot->active, rep->snapshot->n_active);
		log_info("incident resync: %zu active incident(s)%s",
		    rep->snapshot->n_active,
		    nrv != 0 ? ", notify failed" : "");
	} else {
		rv = OD_EMALFORMED;
	}
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return rv;
}
