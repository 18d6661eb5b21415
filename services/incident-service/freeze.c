/*
 * freeze.c — a postmortem's health events and tickets opened, stored
 * with it after the resolve. The spec has them "generated at resolve",
 * and the peers do not keep them: health-prober's raw results expire and
 * a peer may be down when someone reads the postmortem weeks later.
 *
 * The resolve's write job cannot ask the peers (it runs on the store's
 * single writer thread), so it enters the incident in INC_DB_PM_UNFROZEN
 * in its txn and wakes the freezer thread after the commit. The freezer
 * asks the peers outside any write job and stores what came back in a
 * second write. A peer that does not answer is asked again every
 * freeze_retry_ms until freeze_for_ms after the resolve; the index is
 * durable, so a restart in between still freezes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incident_core.h"
#include "log/log.h"
#include "store/store.h"

/* Postmortems asked about per write: one write job per batch. */
#define FREEZE_BATCH 32

struct inc_freezer {
	inc_service *svc;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool kick; /* a resolve committed: run now */
	bool stop;
};

void
inc_pm_freeze_pack(
    const inc_pm_freeze_state *s, uint8_t out[INC_PM_FREEZE_STATE_LEN])
{
	store_key_u64(out, (uint64_t) s->next_ms);
	store_key_u64(out + 8, (uint64_t) s->give_up_ms);
	out[16] = (uint8_t) (s->attempts >> 24);
	out[17] = (uint8_t) (s->attempts >> 16);
	out[18] = (uint8_t) (s->attempts >> 8);
	out[19] = (uint8_t) s->attempts;
}

int
inc_pm_freeze_unpack(const void *data, size_t len, inc_pm_freeze_state *s)
{
	const uint8_t *p = data;

	if (len != INC_PM_FREEZE_STATE_LEN) {
		return OD_EINVAL;
	}
	s->next_ms = (int64_t) store_key_get_u64(p);
	s->give_up_ms = (int64_t) store_key_get_u64(p + 8);
	s->attempts = (uint32_t) p[16] << 24 | (uint32_t) p[17] << 16
	    | (uint32_t) p[18] << 8 | (uint32_t) p[19];
	return 0;
}

static int
state_put(inc_tx *tx, uint64_t id, const inc_pm_freeze_state *st)
{
	uint8_t key[8], val[INC_PM_FREEZE_STATE_LEN];

	store_key_u64(key, id);
	inc_pm_freeze_pack(st, val);
	return store_put(tx->txn, inc_dbi(tx->svc, INC_DB_PM_UNFROZEN), key,
	    sizeof(key), val, sizeof(val));
}

static int
state_del(inc_tx *tx, uint64_t id)
{
	uint8_t key[8];
	int rv;

	store_key_u64(key, id);
	rv = store_del(tx->txn, inc_dbi(tx->svc, INC_DB_PM_UNFROZEN), key,
	    sizeof(key), NULL, 0);
	return rv == OD_ENOTFOUND ? 0 : rv;
}

static void
wake_after_commit(void *arg)
{
	inc_freezer_wake(arg);
}

int
inc_pm_freeze_enter(inc_tx *tx, const inc_postmortem *pm)
{
	inc_pm_freeze_state st
	    = { tx->now, tx->now + tx->svc->cfg.freeze_for_ms, 0 };
	int rv;

	if ((rv = state_put(tx, pm->incident_id, &st)) != 0) {
		return rv;
	}
	/* Not before the commit: the freezer would find nothing yet. */
	if (tx->svc->freezer != NULL) {
		rv = store_txn_on_commit(
		    tx->txn, wake_after_commit, tx->svc, NULL);
	}
	return rv;
}

typedef struct freeze_item {
	uint64_t id;
	inc_postmortem *pm; /* as read, for the window; NULL: gone */
	inc_pm_peers peers; /* what the peers said */
} freeze_item;

typedef struct freeze_batch {
	inc_service *svc;
	freeze_item items[FREEZE_BATCH];
	size_t n;
	uint64_t after; /* the next collect starts after this id */
	int frozen;     /* out of the job: fully frozen now */
	int gave_up;    /* out of the job: dropped after freeze_for */
} freeze_batch;

static void
batch_clear(freeze_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		inc_pm_free(b->items[i].pm);
		inc_pm_peers_free(&b->items[i].peers);
	}
	b->n = 0;
}

/* The entries due by now with an id above b->after, in id order. */
static int
collect(freeze_batch *b, int64_t now)
{
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	uint8_t key[8];
	int rc, rv;

	if ((rv = store_read_begin(b->svc->st, &txn)) != 0) {
		return rv;
	}
	store_key_u64(key, b->after + 1);
	if ((rv = store_scan_open(
	         &sc, txn, inc_dbi(b->svc, INC_DB_PM_UNFROZEN), NULL, 0, NULL))
	        != 0
	    || (rv = store_scan_seek(&sc, key, sizeof(key))) != 0) {
		store_scan_close(&sc);
		goto out;
	}
	for (rc = b->after == UINT64_MAX ? OD_ENOTFOUND
	                                 : store_scan_next(&sc, &k, &v);
	     rc == 0 && b->n < FREEZE_BATCH;
	     rc = store_scan_next(&sc, &k, &v)) {
		inc_pm_freeze_state st;
		freeze_item *it = &b->items[b->n];
		if (k.mv_size != 8
		    || inc_pm_freeze_unpack(v.mv_data, v.mv_size, &st) != 0) {
			continue;
		}
		b->after = store_key_get_u64(k.mv_data);
		if (st.next_ms > now) {
			continue;
		}
		memset(it, 0, sizeof(*it));
		it->id = b->after;
		rv = inc_pm_load(txn, b->svc, it->id, &it->pm);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			goto out;
		}
		rv = 0;
		b->n++;
	}
	if (rc != 0) {
		/* The whole index was seen. */
		b->after = UINT64_MAX;
	}
out:
	store_scan_close(&sc);
	store_read_end(txn);
	return rv;
}

/* Store what each item's peers said; reschedule, finish or give up. Safe
 * to run twice: it reads everything again from the txn, and a frozen
 * part is never overwritten. */
static int
freeze_job(store_txn *txn, void *arg)
{
	freeze_batch *b = arg;
	inc_tx tx = { b->svc, txn, store_txn_now_ms(txn), NULL };
	MDB_dbi db = inc_dbi(b->svc, INC_DB_PM_UNFROZEN);
	int rv = 0;

	b->frozen = 0;
	b->gave_up = 0;
	for (size_t i = 0; i < b->n && rv == 0; i++) {
		freeze_item *it = &b->items[i];
		inc_postmortem *pm = NULL;
		inc_pm_freeze_state st;
		uint8_t key[8];
		MDB_val val;

		store_key_u64(key, it->id);
		rv = store_get(inc_tx_mdb(&tx), db, key, sizeof(key), &val);
		if (rv == OD_ENOTFOUND) {
			rv = 0; /* done by an earlier round */
			continue;
		}
		if (rv != 0
		    || (rv = inc_pm_freeze_unpack(
		            val.mv_data, val.mv_size, &st))
		        != 0
		    || (rv = inc_pm_load(inc_tx_mdb(&tx), b->svc, it->id, &pm))
		        != 0) {
			/* No postmortem, or a record that does not decode:
			 * nothing to freeze, and asking again will not help.
			 */
			rv = rv == OD_ENOTFOUND || rv == OD_EINVAL
			        || rv == OD_EMALFORMED
			    ? state_del(&tx, it->id)
			    : rv;
			continue;
		}
		/* The stored record, not the read copy: an edit of the root
		 * cause since then is kept. */
		if ((rv = inc_pm_take_peers(pm, &it->peers, true)) != 0) {
			inc_pm_free(pm);
			break;
		}
		pm->freeze_attempts = ++st.attempts;
		if (pm->health_frozen && pm->tickets_frozen) {
			pm->frozen_ms = tx.now;
			b->frozen++;
			rv = state_del(&tx, it->id);
		} else if (tx.now >= st.give_up_ms) {
			pm->freeze_gave_up = true;
			b->gave_up++;
			rv = state_del(&tx, it->id);
		} else {
			st.next_ms = tx.now + b->svc->cfg.freeze_retry_ms;
			rv = state_put(&tx, it->id, &st);
		}
		if (rv == 0) {
			rv = inc_pm_save(&tx, pm);
		}
		inc_pm_free(pm);
	}
	return rv;
}

int
inc_pm_freeze_run(inc_service *svc, int *frozen)
{
	freeze_batch *b = calloc(1, sizeof(*b));
	/* A peer that did not answer once is not asked again in this round:
	 * each would cost a full time-out. */
	bool prober_down = false, tickets_down = false;
	int total = 0, rv = 0;

	if (b == NULL) {
		return OD_ENOMEM;
	}
	b->svc = svc;
	while (b->after != UINT64_MAX) {
		if ((rv = collect(b, od_now_ms())) != 0 || b->n == 0) {
			break;
		}
		for (size_t i = 0; i < b->n; i++) {
			freeze_item *it = &b->items[i];
			bool want_health, want_tickets;
			if (it->pm == NULL) {
				continue;
			}
			want_health = !it->pm->health_frozen && !prober_down;
			want_tickets
			    = !it->pm->tickets_frozen && !tickets_down;
			if (!want_health && !want_tickets) {
				continue;
			}
			(svc->pm_fetch != NULL ? svc->pm_fetch : inc_pm_fetch)(
			    svc, it->pm, want_health, want_tickets,
			    &it->peers);
			prober_down |= want_health && !it->peers.health;
			tickets_down |= want_tickets && !it->peers.tickets;
		}
		if ((rv = store_write(svc->st, freeze_job, b)) != 0) {
			log_error("postmortem freeze: %s", od_strerror(rv));
			break;
		}
		total += b->frozen;
		if (b->gave_up > 0) {
			log_warn(
			    "%d postmortem(s) left unfrozen: the peers did "
			    "not answer for %lld s after the resolve",
			    b->gave_up,
			    (long long) (svc->cfg.freeze_for_ms / 1000));
		}
		batch_clear(b);
	}
	batch_clear(b);
	free(b);
	if (frozen != NULL) {
		*frozen = total;
	}
	return rv;
}

static void *
freezer_main(void *arg)
{
	struct inc_freezer *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		if (!f->kick) {
			/* Retries are due by the record's clock; the tick
			 * only says how often to look. */
			(void) od_cond_wait_ms(
			    &f->cv, &f->mu, f->svc->cfg.tick_ms);
		}
		if (f->stop) {
			break;
		}
		f->kick = false;
		pthread_mutex_unlock(&f->mu);
		(void) inc_pm_freeze_run(f->svc, NULL);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int
inc_freezer_start(inc_service *svc)
{
	struct inc_freezer *f = calloc(1, sizeof(*f));
	bool mu = false, cv = false;
	int rv = OD_ENOMEM;

	if (f == NULL) {
		return OD_ENOMEM;
	}
	f->svc = svc;
	/* Whatever a restart left unfrozen is looked at at once. */
	f->kick = true;
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		goto out;
	}
	mu = true;
	cv = od_cond_init(&f->cv) == 0;
	if (!cv || pthread_create(&f->thread, NULL, freezer_main, f) != 0) {
		goto out;
	}
	svc->freezer = f;
	f = NULL;
	rv = 0;
out:
	if (f != NULL) {
		if (cv) {
			pthread_cond_destroy(&f->cv);
		}
		if (mu) {
			pthread_mutex_destroy(&f->mu);
		}
		free(f);
	}
	return rv;
}

void
inc_freezer_wake(inc_service *svc)
{
	struct inc_freezer *f = svc->freezer;

	if (f == NULL) {
		return;
	}
	pthread_mutex_lock(&f->mu);
	f->kick = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void
inc_freezer_stop(inc_service *svc)
{
	struct inc_freezer *f = svc != NULL ? svc->freezer : NULL;
	bool join;

	if (f == NULL) {
		return;
	}
	pthread_mutex_lock(&f->mu);
	join = !f->stop;
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	if (join) {
		pthread_join(f->thread, NULL);
	}
}

void
inc_freezer_free(inc_service *svc)
{
	struct inc_freezer *f = svc != NULL ? svc->freezer : NULL;

	if (f == NULL) {
		return;
	}
	inc_freezer_stop(svc);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	svc->freezer = NULL;
	free(f);
}
