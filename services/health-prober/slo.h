/*
 * slo — service level objectives of probed targets: the `slo` key of a
 * target, attainment and error budget over the objective's window, and
 * multi-window, multi-burn-rate alerts (the Google SRE workbook's 14.4x
 * over 1 h confirmed over 5 min pages, 6x over 6 h confirmed over 30 min
 * warns, for a 30-day window; the windows scale with the objective's).
 *
 * Evaluation is incremental: every result adds to rolling counters (a
 * ring of minute slots for the burn windows and short objectives, a ring
 * of hour slots for long ones) whose window sums are kept as slots enter
 * and leave, so a round costs the same per objective whatever the length
 * of the history (a 30-day objective: 73 slots of 5 min, 241 of 3 h). The
 * rings are seeded from the stored minute and hour aggregates when a target's
 * objective is set up (start, reload).
 */
#ifndef OPSDESK_PROBER_SLO_H
#define OPSDESK_PROBER_SLO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct agg;
struct target;

#define SLO_OBJ_MAX 3

enum slo_kind {
	SLO_AVAILABILITY = 0, /* checks that were not down */
	SLO_LATENCY = 1,      /* answers within the latency bound */
	SLO_ERROR_RATIO = 2,  /* a metric target's error percentage */
};
extern const char *const slo_kind_names[]; /* "availability", ... NULL */

/* The burn windows, in slo_obj_status.burn order. */
enum slo_burn_window {
	SLO_FAST_LONG = 0,  /* 1 h of 30 d: page at 14.4x */
	SLO_FAST_SHORT = 1, /* 5 min of 30 d: confirms the page */
	SLO_SLOW_LONG = 2,  /* 6 h of 30 d: warn at 6x */
	SLO_SLOW_SHORT = 3, /* 30 min of 30 d: confirms the warning */
	SLO_BURN_WINDOWS = 4,
};

#define SLO_PAGE_BURN 14.4
#define SLO_WARN_BURN 6.0

enum slo_alert { SLO_ALERT_NONE = 0, SLO_ALERT_WARN = 1, SLO_ALERT_PAGE = 2 };
extern const char *const slo_alert_names[]; /* "", "warn", "page" */

typedef struct slo_objective {
	uint8_t kind;        /* enum slo_kind */
	double target;       /* percent of good events: 99.9 */
	uint32_t latency_ms; /* SLO_LATENCY: the bound */
	char quantile[8];    /* SLO_LATENCY: "p95" as configured */
	uint32_t metric;     /* SLO_ERROR_RATIO: index in target.metrics */
} slo_objective;

/* A target's objectives (target.slo; NULL when it has none). */
typedef struct slo_spec {
	int64_t window_ms;
	bool public; /* attainment shown on the status page */
	uint8_t n_obj;
	slo_objective obj[SLO_OBJ_MAX];
} slo_spec;

/*
 * Parse the `slo` member of target object o (path "targets[2]") of t
 * (its kind and metrics are read) into *out. *has is false when there is
 * no `slo` key (*out untouched). OD_EINVAL with err naming the key.
 */
int prober_slo_parse(const cJSON *o, const char *path, const struct target *t,
    slo_spec *out, bool *has, char *err, size_t errlen);
bool prober_slo_spec_equal(const slo_spec *a, const slo_spec *b);
/* The burn windows of an objective window, in ms (at least a minute). */
void prober_slo_burn_windows(int64_t window_ms, int64_t out[SLO_BURN_WINDOWS]);
/* "30d", "6h", "5m", "90s": the shortest exact form of a duration. */
const char *prober_slo_duration_name(int64_t ms, char *buf, size_t size);

/* ---- rolling counters ---- */

typedef struct slo_bucket {
	uint32_t total;
	uint32_t bad;
} slo_bucket;

#define SLO_RING_WINDOWS 5

/*
 * Slots of slice_ms; slot cur starts at cur_start and is still filling.
 * Window w is its current slot and the win_len[w] - 1 before it; its sums
 * are kept as slots enter and leave. n > every win_len.
 */
typedef struct slo_ring {
	slo_bucket *b;
	uint32_t n;
	uint32_t cur;
	int64_t slice_ms;
	int64_t cur_start; /* 0: nothing recorded yet */
	uint8_t n_win;
	uint32_t win_len[SLO_RING_WINDOWS];
	uint64_t win_total[SLO_RING_WINDOWS];
	uint64_t win_bad[SLO_RING_WINDOWS];
} slo_ring;

/* n slots of slice_ms with the windows of lens[n_win] slots. */
int prober_slo_ring_init(slo_ring *r, int64_t slice_ms, uint32_t n,
    const uint32_t *lens, uint8_t n_win);
void prober_slo_ring_fini(slo_ring *r); /* NULL-safe */
/* Move the current slot to the one holding now (slots that leave every
 * window are dropped). A clock that goes back changes nothing. */
void prober_slo_ring_advance(slo_ring *r, int64_t now);
/* Count an event of time at (late ones go to their slot while it is in
 * the ring; older ones are dropped). */
void prober_slo_ring_add(
    slo_ring *r, int64_t at, uint32_t total, uint32_t bad);

/* ---- one target's objectives ---- */

typedef struct slo_obj_rt {
	slo_ring fine;   /* whole minutes: burn windows (+ window <= 12 h) */
	slo_ring coarse; /* whole hours: the window > 12 h; n 0 otherwise */
	uint8_t alert;   /* enum slo_alert alerted in the current episode */
	int64_t alert_since_ms;
} slo_obj_rt;

typedef struct slo_rt {
	uint8_t n;
	slo_obj_rt o[SLO_OBJ_MAX];
} slo_rt;

/* The rings of spec's objectives, empty. Caller frees with
 * prober_slo_rt_free. */
int prober_slo_rt_new(const slo_spec *spec, slo_rt **out);
void prober_slo_rt_free(slo_rt *s); /* NULL-safe */
/*
 * Fill the rings from the stored minute and hour aggregates of id up to
 * now (txn: a read txn of the prober's store). Error ratios are not in
 * the aggregates: they start empty.
 */
int prober_slo_rt_seed(slo_rt *s, const slo_spec *spec, MDB_txn *txn,
    store *st, const char *id, int64_t now);

/* One probe result. maint: the target was in maintenance (not counted);
 * down: the result was down; latency_ms its latency. */
void prober_slo_record(slo_rt *s, const slo_spec *spec, int64_t at, bool maint,
    bool down, uint32_t latency_ms);
/* One value of a metric target's business metric metric_index. */
void prober_slo_record_metric(slo_rt *s, const slo_spec *spec,
    uint32_t metric_index, double value, int64_t at, bool maint);
/* What stored aggregate a counts for objective o: good+bad, bad. */
void prober_slo_agg_counts(const slo_objective *o, const struct agg *a,
    uint32_t *total, uint32_t *bad);

/* One objective evaluated. */
typedef struct slo_obj_status {
	double attainment;  /* percent of good events; -1 without data */
	double budget_left; /* ratio of the error budget left (<0: spent) */
	double budget_min;  /* the window's error budget in minutes */
	double burn[SLO_BURN_WINDOWS];
	int64_t burn_ms[SLO_BURN_WINDOWS];
	uint64_t total;
	uint64_t bad;
	int condition; /* enum slo_alert the burn rates meet now */
	int alert;     /* enum slo_alert of the open episode */
} slo_obj_status;

/* What an evaluation asks to publish for an objective. */
enum slo_event {
	SLO_EVENT_NONE = 0,
	SLO_EVENT_FIRING = 1,   /* an episode started or got worse */
	SLO_EVENT_RESOLVED = 2, /* the burn stopped */
};

/*
 * Evaluate objective k at now (rings advanced): attainment, budget and
 * burn rates into *out, and the alert episode: it fires when the burn
 * rates meet a level above the one alerted (never while maint: the
 * component is in maintenance), and resolves when they meet none (with
 * data in the short windows). Returns the enum slo_event.
 */
int prober_slo_eval(slo_rt *s, const slo_spec *spec, int k, int64_t now,
    bool maint, slo_obj_status *out);
/* The same figures without touching the episode (views). */
void prober_slo_peek(
    slo_rt *s, const slo_spec *spec, int k, int64_t now, slo_obj_status *out);

/* "availability 99.9 %", "p95 < 100 ms 95 %"... for messages. */
const char *prober_slo_describe(
    const struct target *t, const slo_objective *o, char *buf, size_t size);

#endif /* OPSDESK_PROBER_SLO_H */
