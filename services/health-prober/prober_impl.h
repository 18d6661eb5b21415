/*
 * The prober's state, shared by prober.c (writes) and handlers.c (reads
 * under the lock). Not for other files.
 */
#ifndef OPSDESK_PROBER_IMPL_H
#define OPSDESK_PROBER_IMPL_H

#include <pthread.h>

#include "prober.h"
#include "rpc/rpc.h"
#include "slo.h"

/*
 * One target's live state. Aggregates are not kept here: the flush job
 * folds the pending results into the stored rows, so memory does not
 * grow with 3 histograms per target (10,000 targets in 32 MB).
 */
/* The decider's latest view of a target from one location. */
typedef struct loc_view {
	char name[PROBER_LOCATION_MAX + 1];
	int state;
	uint32_t latency_ms;
	int64_t at_ms;  /* received, on the decider's clock */
	bool reporting; /* at the last decision */
	bool counted;   /* reported in the decided round under way */
	char reason[120];
} loc_view;

/* One location's view in a decided round's result (the history). */
typedef struct loc_sample {
	char name[PROBER_LOCATION_MAX + 1];
	int state;
	uint32_t latency_ms;
} loc_sample;

/* A target's id and its index in the target set. */
typedef struct id_slot {
	const char *id;
	size_t index;
} id_slot;

typedef struct target_rt {
	target_state st;
	bool dirty; /* results since the last state write */
	uint8_t n_locs;
	uint8_t sent_state; /* a located prober's: state of its last view */
	int64_t cert_not_after_s;
	int64_t last_transition_ms; /* keeps transition keys unique */
	int64_t last_result_ms;     /* the decider's: result keys unique */
	int64_t warm_from_ms; /* the decider's: first view after a silence */
	loc_view *locs;       /* the decider's, n_locs of them */
	/* The decider's: the affected locations last published (in a
	 * health.changed or health.affected) and stored with the state,
	 * sorted and joined by ','; NULL for none. */
	char *affected;
	struct slo_rt *slo; /* the target's objectives (slo.h) */
} target_rt;

typedef struct business_value {
	double value;
	int64_t at_ms;
	bool set;
} business_value;

/* A located prober's view waiting for the next batch (copied: a reload
 * may replace the targets before it goes). */
typedef struct obs_view {
	char id[72];
	int state;
	int observed;
	uint32_t latency_ms;
	int64_t at_ms;
	char reason[120];
} obs_view;

typedef struct pending_result {
	size_t index;
	int shown; /* the state shown when the result came */
	probe_result r;
	/* The decider's round: the views it was decided from (owned). */
	loc_sample *locs;
	uint8_t n_locs;
} pending_result;

/* An active maintenance window, by id. */
typedef struct maint_window {
	uint64_t id;
	char title[128];
	char **components;
	size_t n_components;
} maint_window;

struct prober {
	/*
	 * A config reload replaces ts, rt, bm_base and bm. It holds this
	 * lock for writing (and mu) while it swaps them; the rpc handlers
	 * hold it for reading for their whole run, so a handler never sees
	 * a target array freed under it. Order: cfg_lock before mu.
	 */
	pthread_rwlock_t cfg_lock;
	target_set ts;
	target_rt *rt;
	size_t *bm_base; /* by target: index of its first value in bm */
	business_value *bm;
	size_t n_bm;
	pthread_mutex_t mu; /* everything below and rt, bm */
	pending_result *pend;
	size_t n_pend;
	size_t cap_pend;
	maint_window *win;
	size_t n_win;
	obs_view *obs; /* a located prober's unchanged views, not yet sent */
	size_t n_obs;
	size_t cap_obs;
	/* Held while views are taken and published, so they leave in the
	 * order they came whichever thread sends them. Before mu. */
	pthread_mutex_t obs_mu;
	cpu_sample cpu;

	store *store;
	bus_publisher *pub;
	metrics *metrics;
	metric *m_ok;
	metric *m_fail;
	metric *m_transitions;
	metric *m_in_flight;
	metric *m_skipped;
	metric *m_targets;
	metric *m_reloads;
	uint64_t skipped_seen;
	char instance[128];
	char shard[16];
	char disk_path[1024];
	sched *sched;
	bool probing; /* prober_start ran and prober_stop did not */
	/* The decider: targets by id (sorted by id). */
	id_slot *by_id;
	/* Rows of targets no longer configured that one retention run
	 * deletes at most (PROBER_RETAIN_REMOVED_MAX; tests lower it). */
	size_t retain_removed_max;
};

/*
 * 10,000 rows a run (once a minute) keep a run's txn to a few hundred
 * dirtied pages, and keep pace with the rows of about 1,400 removed
 * targets probed every 10 s (7 rows a minute each) as they expire.
 */
#define PROBER_RETAIN_REMOVED_MAX 10000

/* Fill a TargetStatus from target t and its state (strings borrowed). */
void prober__status(
    const target *t, const target_rt *rt, Opsdesk__V1__TargetStatus *out);

/* Split s (a target_rt.affected, copied) at its ',' into v (at least
 * QUORUM_MAX_LOCATIONS slots); the number of names. s NULL: 0. */
size_t prober__affected_split(char *s, char **v);

/* The time-out after which a location is not reporting on t. */
int64_t prober__stale_ms(const prober *p, const target *t);
/* slo_prober.c: the objectives of t, their counters seeded from the
 * store through txn (may be NULL: empty); *out NULL when t has none. */
int prober__slo_build(prober *p, const target *t, MDB_txn *txn, slo_rt **out);
bool prober__slo_in_maintenance(const target_rt *rt);
/* The slo method (under cfg_lock) and the opsdesk_slo_* metrics. */
int prober__h_slo(
    rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *rep);
void prober__slo_render(void *arg, sbuf *b);
/* The availability objective of target i for the status page, when its
 * objectives are public. */
void prober__slo_public(
    prober *p, size_t i, int64_t now, Opsdesk__V1__TargetHistory *h);
/* t's objectives judged on a (a report period's aggregates) into
 * tu->objectives (call memory). */
int prober__slo_period(
    rpc_call *c, const target *t, const agg *a, Opsdesk__V1__TargetUptime *tu);

/* handlers.c: the ProberRequest methods, for rpc_server_start. */
extern const rpc_method prober_methods[];
extern const size_t prober_n_methods;

#endif /* OPSDESK_PROBER_IMPL_H */
