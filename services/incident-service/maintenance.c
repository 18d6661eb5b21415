/*
 * maintenance.c — windows: scheduled -> in progress -> completed on
 * time, or cancelled; maintenance.reminder cfg.reminder_before the start.
 * The windows not yet over sit in INC_DB_MAINT_ACTIVE so the automation's
 * "is this component in maintenance?" scans only those.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"
#include "store/store.h"

#define TITLE_MAX      200
#define MAX_COMPONENTS 64
#define MAX_DURATION   (30 * INC_DAY_MS)
#define LIST_MAX       100

void
inc_window_free(inc_window *w)
{
	if (w != NULL) {
		protobuf_c_message_free_unpacked(&w->base, NULL);
	}
}

bool
inc_window_covers(const inc_window *w, const char *component, int64_t now)
{
	if (w->status == MS_CANCELLED || w->status == MS_COMPLETED
	    || now < w->start_ms || now >= w->end_ms) {
		return false;
	}
	for (size_t i = 0; i < w->n_components; i++) {
		if (strcmp(w->components[i], component) == 0) {
			return true;
		}
	}
	return false;
}

const char *
inc_window_step(inc_window *w, int64_t now)
{
	if (w->status == MS_SCHEDULED) {
		if (!w->reminded && w->remind_ms > 0 && now >= w->remind_ms) {
			w->reminded = true;
			if (now < w->start_ms) {
				w->updated_ms = now;
				return "reminder";
			}
		}
		if (now >= w->start_ms) {
			w->status = MS_IN_PROGRESS;
			w->updated_ms = now;
			return "started";
		}
	} else if (w->status == MS_IN_PROGRESS && now >= w->end_ms) {
		w->status = MS_COMPLETED;
		w->updated_ms = now;
		return "completed";
	}
	return NULL;
}

static int
window_load(MDB_txn *txn, inc_service *svc, uint64_t id, inc_window **out)
{
	return inc_get_by_id(txn, svc, INC_DB_MAINT, id,
	    &opsdesk__v1__maintenance_window__descriptor,
	    (ProtobufCMessage **) out);
}

static int
window_save(
    inc_tx *tx, const inc_window *w, const inc_timer *old, size_t n_old)
{
	inc_timer cur[INC_MAX_TIMERS];
	size_t n_cur = inc_timers_of_window(w, cur);

	return inc_put_timed(tx, INC_DB_MAINT, INC_DB_MAINT_ACTIVE, w->id,
	    &w->base, w->status == MS_SCHEDULED || w->status == MS_IN_PROGRESS,
	    old, n_old, cur, n_cur);
}

static int
window_emit(inc_tx *tx, const char *change, inc_window *w)
{
	Opsdesk__V1__MaintenanceEvent ev
	    = OPSDESK__V1__MAINTENANCE_EVENT__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	char topic[64];

	snprintf(topic, sizeof(topic), "maintenance.%s", change);
	ev.window = w;
	ev.change = (char *) change;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_MAINTENANCE;
	env.maintenance = &ev;
	return inc_emit(tx, topic, &env);
}

/* Run every step due by now, one event each. */
static int
window_steps(inc_tx *tx, inc_window *w)
{
	const char *change;
	int rv;

	while ((change = inc_window_step(w, tx->now)) != NULL) {
		if ((rv = window_emit(tx, change, w)) != 0) {
			return rv;
		}
	}
	return 0;
}

static int
copy_window(const inc_window *w, inc_window **out)
{
	size_t len = opsdesk__v1__maintenance_window__get_packed_size(w);
	uint8_t *buf = malloc(len > 0 ? len : 1);

	if (buf == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__maintenance_window__pack(w, buf);
	*out = opsdesk__v1__maintenance_window__unpack(NULL, len, buf);
	free(buf);
	return *out != NULL ? 0 : OD_ENOMEM;
}

static int
validate(const Opsdesk__V1__CreateMaintenanceRequest *r, int64_t now,
    char *err, size_t errlen)
{
	const char *why = NULL;

	if (r->title == NULL || r->title[0] == '\0'
	    || strlen(r->title) > TITLE_MAX) {
		why = "a title of 1 to 200 bytes is required";
	} else if (r->n_components == 0 || r->n_components > MAX_COMPONENTS) {
		why = "name 1 to 64 components";
	} else if (r->start_ms <= 0 || r->end_ms <= r->start_ms) {
		why = "the end must be after the start";
	} else if (r->end_ms - r->start_ms > MAX_DURATION) {
		why = "a window lasts at most 30 days";
	} else if (r->end_ms <= now) {
		why = "the window is already over";
	}
	for (size_t i = 0; why == NULL && i < r->n_components; i++) {
		if (r->components[i][0] == '\0'
		    || strlen(r->components[i]) > 128) {
			why = "component ids must be 1 to 128 bytes";
		}
	}
	if (why != NULL) {
		snprintf(err, errlen, "%s", why);
		return OD_EINVAL;
	}
	return 0;
}

int
inc_mnt_create(inc_tx *tx, const Opsdesk__V1__CreateMaintenanceRequest *r,
    const inc_actor *who, inc_window **out, char *err, size_t errlen)
{
	inc_window *w = NULL;
	int64_t before = tx->svc->cfg.reminder_before_ms;
	uint64_t id;
	int rv;

	if ((rv = validate(r, tx->now, err, errlen)) != 0) {
		return rv;
	}
	if ((w = malloc(sizeof(*w))) == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__maintenance_window__init(w);
	if ((w->components = calloc(r->n_components, sizeof(char *)))
	    == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->n_components; i++) {
		if ((w->components[i] = strdup(r->components[i])) == NULL) {
			rv = OD_ENOMEM;
			goto out;
		}
		w->n_components++;
	}
	if ((rv = store_next_id(tx->txn, "maintenance", &id)) != 0
	    || (rv = inc_set_str(&w->title, r->title)) != 0
	    || (rv = inc_set_str(&w->description, r->description)) != 0) {
		goto out;
	}
	w->id = id;
	w->start_ms = r->start_ms;
	w->end_ms = r->end_ms;
	w->status = MS_SCHEDULED;
	w->created_by = who != NULL ? who->user_id : 0;
	w->created_ms = tx->now;
	w->updated_ms = tx->now;
	/* A window starting sooner than the reminder lead gets none. */
	w->remind_ms = before > 0 && r->start_ms - before > tx->now
	    ? r->start_ms - before
	    : 0;
	w->reminded = w->remind_ms == 0;
	if ((rv = window_emit(tx, "scheduled", w)) != 0
	    || (rv = window_steps(tx, w)) != 0
	    || (rv = window_save(tx, w, NULL, 0)) != 0) {
		goto out;
	}
	rv = out != NULL ? copy_window(w, out) : 0;
out:
	inc_window_free(w);
	return rv;
}

/* The window no longer holds its components back. */
static int
window_released(inc_tx *tx, const inc_window *w)
{
	int rv;

	for (size_t i = 0; i < w->n_components; i++) {
		if ((rv = inc_auto_reevaluate(tx, w->components[i])) != 0) {
			return rv;
		}
	}
	return 0;
}

int
inc_mnt_cancel(inc_tx *tx, uint64_t id, inc_window **out)
{
	inc_timer old[INC_MAX_TIMERS];
	size_t n_old;
	inc_window *w = NULL;
	int rv;

	if ((rv = window_load(inc_tx_mdb(tx), tx->svc, id, &w)) != 0) {
		return rv;
	}
	n_old = inc_timers_of_window(w, old);
	if (w->status != MS_SCHEDULED && w->status != MS_IN_PROGRESS) {
		rv = OD_ESTATE;
		goto out;
	}
	w->status = MS_CANCELLED;
	w->updated_ms = tx->now;
	if ((rv = window_save(tx, w, old, n_old)) != 0
	    || (rv = window_emit(tx, "cancelled", w)) != 0
	    || (rv = window_released(tx, w)) != 0) {
		goto out;
	}
	rv = out != NULL ? copy_window(w, out) : 0;
out:
	inc_window_free(w);
	return rv;
}

int
inc_mnt_advance(inc_tx *tx, uint64_t id)
{
	inc_timer old[INC_MAX_TIMERS];
	size_t n_old;
	inc_window *w = NULL;
	int was, rv;

	if ((rv = window_load(inc_tx_mdb(tx), tx->svc, id, &w)) != 0) {
		return rv == OD_ENOTFOUND ? 0 : rv;
	}
	n_old = inc_timers_of_window(w, old);
	was = w->status;
	if ((rv = window_steps(tx, w)) == 0
	    && (rv = window_save(tx, w, old, n_old)) == 0
	    && was != MS_COMPLETED && w->status == MS_COMPLETED) {
		rv = window_released(tx, w);
	}
	inc_window_free(w);
	return rv;
}

static int
by_start(const void *a, const void *b)
{
	const inc_window *x = *(inc_window *const *) a;
	const inc_window *y = *(inc_window *const *) b;

	return (x->start_ms > y->start_ms) - (x->start_ms < y->start_ms);
}

int
inc_mnt_list(MDB_txn *txn, inc_service *svc, bool include_done,
    Opsdesk__V1__MaintenanceList **out)
{
	Opsdesk__V1__MaintenanceList *l = malloc(sizeof(*l));
	store_scan sc = { 0 };
	MDB_val k, v;
	int rc, rv = 0;

	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__maintenance_list__init(l);
	if ((l->windows = calloc(LIST_MAX, sizeof(*l->windows))) == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	/* Active ones from their index; with include_done the latest of
	 * all, newest id first. */
	if ((rv = store_scan_open(&sc, txn,
	         inc_dbi(
	             svc, include_done ? INC_DB_MAINT : INC_DB_MAINT_ACTIVE),
	         NULL, 0, NULL))
	    != 0) {
		goto out;
	}
	store_scan_reverse(&sc);
	for (rc = store_scan_next(&sc, &k, &v);
	     rc == 0 && l->n_windows < LIST_MAX;
	     rc = store_scan_next(&sc, &k, &v)) {
		inc_window *w;
		if (k.mv_size != 8) {
			continue;
		}
		if ((rv = window_load(
		         txn, svc, store_key_get_u64(k.mv_data), &w))
		    != 0) {
			goto out;
		}
		l->windows[l->n_windows++] = w;
	}
	qsort(l->windows, l->n_windows, sizeof(*l->windows), by_start);
out:
	store_scan_close(&sc);
	if (rv != 0) {
		protobuf_c_message_free_unpacked(&l->base, NULL);
		return rv;
	}
	*out = l;
	return 0;
}

bool
inc_mnt_active_for(
    MDB_txn *txn, inc_service *svc, const char *component, int64_t now)
{
	store_scan sc;
	MDB_val k, v;
	bool found = false;

	if (store_scan_open(
	        &sc, txn, inc_dbi(svc, INC_DB_MAINT_ACTIVE), NULL, 0, NULL)
	    != 0) {
		return false;
	}
	while (!found && store_scan_next(&sc, &k, &v) == 0) {
		inc_window *w = NULL;
		if (k.mv_size == 8
		    && window_load(txn, svc, store_key_get_u64(k.mv_data), &w)
		        == 0) {
			/* By the clock, not the status: a tick may lag. */
			found = inc_window_covers(w, component, now);
			inc_window_free(w);
		}
	}
	store_scan_close(&sc);
	return found;
}
