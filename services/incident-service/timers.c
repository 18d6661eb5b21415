/*
 * timers.c — every time-driven action (SLA breach, re-alert, auto-resolve,
 * maintenance reminder/start/end) is an entry in one index keyed by due
 * time: be64 due_ms | kind | be64 id. The entries are derived from the
 * records alone (inc_timers_of_*), so each change re-indexes by removing
 * the old record's entries and adding the new one's. A tick scans the
 * index up to now and runs what is due in one write job.
 */
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"
#include "log/log.h"
#include "store/store.h"

#define RUN_BATCH 256

size_t
inc_timers_of_incident(const inc_incident *inc, inc_timer out[INC_MAX_TIMERS])
{
	size_t n = 0;

	if (inc->status == ST_RESOLVED) {
		return 0;
	}
	if (!inc->acknowledged && !inc->response_breached
	    && inc->response_due_ms > 0) {
		out[n++] = (inc_timer) { inc->response_due_ms, TMR_RESPONSE,
			inc->id };
	}
	if (!inc->resolution_breached && inc->resolution_due_ms > 0) {
		out[n++] = (inc_timer) { inc->resolution_due_ms,
			TMR_RESOLUTION, inc->id };
	}
	if (!inc->acknowledged && inc->next_alert_ms > 0) {
		out[n++]
		    = (inc_timer) { inc->next_alert_ms, TMR_REALERT, inc->id };
	}
	if (inc->status == ST_MONITORING && !inc->taken_over
	    && inc->auto_resolve_ms > 0) {
		out[n++] = (inc_timer) { inc->auto_resolve_ms, TMR_AUTORESOLVE,
			inc->id };
	}
	return n;
}

size_t
inc_timers_of_window(const inc_window *w, inc_timer out[INC_MAX_TIMERS])
{
	size_t n = 0;

	if (w->status == MS_SCHEDULED) {
		if (!w->reminded && w->remind_ms > 0) {
			out[n++] = (inc_timer) { w->remind_ms, TMR_MNT_REMIND,
				w->id };
		}
		out[n++] = (inc_timer) { w->start_ms, TMR_MNT_START, w->id };
	} else if (w->status == MS_IN_PROGRESS) {
		out[n++] = (inc_timer) { w->end_ms, TMR_MNT_END, w->id };
	}
	return n;
}

void
inc_timer_key(const inc_timer *t, uint8_t key[INC_TIMER_KEY_LEN])
{
	/* Times before the epoch cannot be due later than now: clamp. */
	store_key_u64(key, t->due_ms > 0 ? (uint64_t) t->due_ms : 0);
	key[8] = t->kind;
	store_key_u64(key + 9, t->id);
}

void
inc_timer_parse(const uint8_t key[INC_TIMER_KEY_LEN], inc_timer *t)
{
	t->due_ms = (int64_t) store_key_get_u64(key);
	t->kind = key[8];
	t->id = store_key_get_u64(key + 9);
}

static bool
timer_in(const inc_timer *t, const inc_timer *set, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (set[i].due_ms == t->due_ms && set[i].kind == t->kind
		    && set[i].id == t->id) {
			return true;
		}
	}
	return false;
}

int
inc_timers_reindex(inc_tx *tx, const inc_timer *old, size_t n_old,
    const inc_timer *cur, size_t n_cur)
{
	MDB_dbi db = inc_dbi(tx->svc, INC_DB_DUE);
	uint8_t key[INC_TIMER_KEY_LEN];
	int rv;

	for (size_t i = 0; i < n_old; i++) {
		if (timer_in(&old[i], cur, n_cur)) {
			continue;
		}
		inc_timer_key(&old[i], key);
		rv = store_del(tx->txn, db, key, sizeof(key), NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	for (size_t i = 0; i < n_cur; i++) {
		inc_timer_key(&cur[i], key);
		if ((rv = store_put(tx->txn, db, key, sizeof(key), "", 0))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

typedef struct due_batch {
	inc_service *svc;
	inc_timer timers[RUN_BATCH];
	size_t n;
} due_batch;

/* What each kind of timer runs; both look at the whole record, so a
 * stale or duplicate entry does no harm. */
typedef int (*fire_fn)(inc_tx *tx, uint64_t id);

static const fire_fn fire_table[] = {
	[TMR_RESPONSE] = inc_due,
	[TMR_RESOLUTION] = inc_due,
	[TMR_REALERT] = inc_due,
	[TMR_AUTORESOLVE] = inc_due,
	[TMR_MNT_REMIND] = inc_mnt_advance,
	[TMR_MNT_START] = inc_mnt_advance,
	[TMR_MNT_END] = inc_mnt_advance,
};

static int
fire_job(store_txn *txn, void *arg)
{
	due_batch *b = arg;
	inc_tx tx = { b->svc, txn, store_txn_now_ms(txn), NULL };
	MDB_dbi db = inc_dbi(b->svc, INC_DB_DUE);
	uint8_t key[INC_TIMER_KEY_LEN];
	int rv;

	for (size_t i = 0; i < b->n; i++) {
		const inc_timer *t = &b->timers[i];
		inc_timer_key(t, key);
		rv = store_del(txn, db, key, sizeof(key), NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
		if (t->kind < sizeof(fire_table) / sizeof(fire_table[0])
		    && fire_table[t->kind] != NULL
		    && (rv = fire_table[t->kind](&tx, t->id)) != 0) {
			return rv;
		}
	}
	return 0;
}

/* Collect up to RUN_BATCH entries due by now. */
static int
collect_due(inc_service *svc, int64_t now, due_batch *b)
{
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	int rv;

	b->n = 0;
	if ((rv = store_read_begin(svc->st, &txn)) != 0) {
		return rv;
	}
	if ((rv = store_scan_open(
	         &sc, txn, inc_dbi(svc, INC_DB_DUE), NULL, 0, NULL))
	    != 0) {
		goto out;
	}
	while (b->n < RUN_BATCH && store_scan_next(&sc, &k, &v) == 0) {
		inc_timer t;
		if (k.mv_size != INC_TIMER_KEY_LEN) {
			continue;
		}
		inc_timer_parse(k.mv_data, &t);
		if (t.due_ms > now) {
			break;
		}
		b->timers[b->n++] = t;
	}
	store_scan_close(&sc);
out:
	store_read_end(txn);
	return rv;
}

int
inc_timers_run(inc_service *svc, int *fired)
{
	due_batch *b = calloc(1, sizeof(*b));
	int total = 0, rv;

	if (b == NULL) {
		return OD_ENOMEM;
	}
	b->svc = svc;
	/* Loop while full batches come back: a long outage may leave many
	 * timers due at once. */
	for (;;) {
		if ((rv = collect_due(svc, od_now_ms(), b)) != 0
		    || b->n == 0) {
			break;
		}
		if ((rv = store_write(svc->st, fire_job, b)) != 0) {
			log_error("incident timers: %s", od_strerror(rv));
			break;
		}
		total += (int) b->n;
		if (b->n < RUN_BATCH) {
			break;
		}
	}
	free(b);
	if (fired != NULL) {
		*fired = total;
	}
	return rv;
}
