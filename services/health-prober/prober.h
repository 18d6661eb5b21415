/*
 * prober_core — the internals of health-prober, shared by its files and
 * its unit tests (not a public header of the suite):
 *
 *   targets.c    the `targets` and `prober` config sections, validated
 *   extract.c    a JSON field path and Prometheus text extraction
 *   state.c      the per-target state machine with flap damping
 *   history.c    aggregates with latency histograms, their LMDB rows and
 *                retention
 *   resources.c  host CPU, memory, disk and load from /proc
 *   probe_http.c probe_tcp.c probe_service.c   one probe of each kind
 *   scheduler.c  when each target is probed; one curl multi handle
 *   prober.c     results -> state, history, metrics and events
 *   handlers.c   the ProberRequest methods
 *   service.c    prober_service_start: the wiring of the executable
 */
#ifndef OPSDESK_PROBER_H
#define OPSDESK_PROBER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "config/config.h"
#include "health.pb-c.h"
#include "incident.pb-c.h"
#include "metrics/metrics.h"
#include "runtime/runtime.h"
#include "store/store.h"

struct slo_spec;

/* ---- targets.c ---- */

typedef enum probe_kind {
	PROBE_HTTP = 0,
	PROBE_TCP = 1,
	PROBE_SERVICE = 2,
	PROBE_METRIC = 3,
} probe_kind;

extern const char *const probe_kind_names[]; /* "http", ... NULL */

/* A condition on a JSON field of an HTTP body. */
typedef enum json_op {
	JSON_OP_EXISTS = 0,
	JSON_OP_EQ,
	JSON_OP_NE,
	JSON_OP_GT,
	JSON_OP_GE,
	JSON_OP_LT,
	JSON_OP_LE,
	JSON_OP_CONTAINS,
} json_op;

typedef struct json_cond {
	char *path; /* "data.items[0].status" */
	json_op op;
	bool is_num; /* compare numbers (value was a number) */
	double num;
	char *str; /* the value as text (strings, booleans) */
} json_cond;

/* One business metric a `metric` target extracts. */
typedef struct metric_spec {
	char *name;   /* "active_signals" */
	char *path;   /* JSON field path (JSON targets) */
	char *metric; /* Prometheus metric name (Prometheus targets) */
	char *labels; /* Prometheus label matchers: a="x",b="y" (may be "") */
	char *unit;
} metric_spec;

#define TARGET_MAX_STATUS 16

/* An accepted range of HTTP status codes. */
typedef struct status_range {
	uint16_t lo;
	uint16_t hi;
} status_range;

/*
 * What an HTTP request sends besides the URL: headers and credentials.
 * Only targets that have any get one (most have none). The secrets
 * (basic_password, bearer_token and the values of headers marked secret)
 * are never logged nor shown: see prober_target_redact_header.
 */
typedef struct http_request_opts {
	char **headers; /* "Name: value", n_headers of them */
	size_t n_headers;
	char *basic_user; /* NULL: no basic auth */
	char *basic_password;
	char *bearer_token; /* NULL: none (from bearer_token[_file]) */
} http_request_opts;

/*
 * A configured target. Sized to need because a config may hold 10,000
 * of them: every string lives in the target set's arena (no malloc
 * header or rounding each), the name is the id's own bytes when not
 * set, and kind-specific options that are rare (a JSON condition,
 * headers and credentials) are pointers that stay NULL without them.
 */
typedef struct target {
	char *id;
	char *name;    /* the id when not configured */
	char *group;   /* "" when not configured */
	uint64_t hash; /* prober_target_hash(id): shard and spread */
	int64_t interval_ms;
	int64_t timeout_ms;
	uint32_t failure_threshold;
	uint32_t success_threshold;
	probe_kind kind;
	int criticality; /* Opsdesk__V1__Severity */
	bool public;

	/* http and metric */
	bool tls_verify;
	uint16_t n_status;
	int cert_warn_days; /* certificate expiring within: degraded */
	char *url;
	const char *method;         /* static: "GET", "HEAD", "POST" */
	const status_range *status; /* n_status ranges */
	char *body_contains;
	char *body_not_contains;
	const json_cond *json;        /* NULL: no JSON condition */
	int64_t degraded_ms;          /* latency above this: degraded; 0 off */
	const http_request_opts *req; /* NULL: no headers, no auth */

	/* tcp */
	char *host;
	int port;

	/* Several locations (the decider): in the padding after port. */
	uint8_t quorum; /* locations that must say down; 0: majority */
	bool regional;  /* a failure in some locations hits users there */
	uint8_t partial_down; /* ComponentState when down below the quorum */

	/* service */
	char *service_url;

	/* metric */
	bool prometheus;
	uint32_t n_metrics;
	metric_spec *metrics;

	/* all: service level objectives (slo.h); NULL without */
	const struct slo_spec *slo;
} target;

/* The arena holding a target set's strings and arrays: freed at once. */
typedef struct target_arena_chunk target_arena_chunk;

#define PROBER_LOCATION_MAX 31

typedef struct prober_settings {
	unsigned concurrency;     /* HTTP/TCP probes in flight at most */
	int64_t flush_ms;         /* results and aggregates batch period */
	int64_t raw_retention_ms; /* raw results kept this long */
	unsigned raw_max;         /* and at most this many per target */
	int64_t minute_retention_ms;
	int64_t hour_retention_ms;
	int64_t day_retention_ms;
	bool publish_results; /* health.result events */
	unsigned shard_index; /* OPSDESK_PROBER_SHARD i/N; 0/1 */
	unsigned shard_count;
	/* OPSDESK_PROBER_LOCATION or prober.location: this instance probes
	 * from there and publishes health.observed instead of
	 * health.changed. "" for none (one location, as before). */
	char location[PROBER_LOCATION_MAX + 1];
	/* OPSDESK_PROBER_ROLE=decider or prober.role: probe nothing, decide
	 * every target's state from the locations' health.observed. */
	bool decider;
	/* A location silent this long is not reporting (0: 3 intervals
	 * plus the time-out of each target). */
	int64_t location_timeout_ms;
} prober_settings;

typedef struct target_set {
	target *v;
	size_t n;
	prober_settings settings;
	target_arena_chunk *arena; /* every string and array of v */
} target_set;

/*
 * Parse and validate `targets` and `prober` of c (borrowed) into *out
 * (caller frees with prober_target_set_free). shard is OPSDESK_PROBER_SHARD
 * (NULL or "" for none). Only the targets of this shard are kept. On an
 * error returns OD_EINVAL with err naming the key ("targets[2].url:
 * ...") and *out untouched.
 */
int prober_targets_load(const config *c, const char *shard, target_set *out,
    char *err, size_t errlen);
void prober_target_set_free(target_set *ts); /* NULL-safe; zeroes *ts */
/* A location name: letters, digits, _ - . (1 to PROBER_LOCATION_MAX). */
bool prober_location_valid(const char *s);
/* Stable 64-bit FNV-1a hash of a target id. */
uint64_t prober_target_hash(const char *id);
/* "i/N" with 0 <= i < N <= 1024. 0 or OD_EINVAL. */
int prober_shard_parse(const char *s, unsigned *index, unsigned *count);
bool prober_target_in_shard(uint64_t hash, unsigned index, unsigned count);
/* The target with this id, or NULL. Borrowed. */
target *prober_target_find(const target_set *ts, const char *id);
/*
 * Whether a and b probe the same thing the same way (every configured
 * field equal, secrets included). A config reload keeps the live state
 * of a target whose definition is the same.
 */
bool prober_target_equal(const target *a, const target *b);
/*
 * The header line "Name: value" as it may be shown or logged: the value
 * of Authorization, Proxy-Authorization, Cookie and any header whose name
 * holds "token", "key", "secret" or "auth" becomes "<redacted>". Writes
 * at most size bytes to out (NUL-terminated) and returns out.
 */
const char *prober_target_redact_header(
    const char *line, char *out, size_t size);

/* ---- extract.c ---- */

/*
 * The item at a field path ("a.b[2].c", "[0].x"; "" is the root), or
 * NULL. Borrowed from root.
 */
const cJSON *prober_extract_json_path(const cJSON *root, const char *path);
/* A number from an item: numbers, booleans (1/0), numeric strings. */
int prober_extract_json_number(const cJSON *item, double *out);
/*
 * Evaluate cond against a JSON text (len bytes, not NUL-terminated).
 * true when it holds; why (size >= 96) says what failed.
 */
bool prober_extract_json_cond(const char *body, size_t len,
    const json_cond *cond, char *why, size_t size);
/*
 * The value of the first sample of `metric` in Prometheus text whose
 * labels include every matcher of `labels` (a="x",b="y"; "" or NULL for
 * any). 0, OD_ENOTFOUND, or OD_EMALFORMED for a broken matcher.
 */
int prober_extract_prometheus(const char *text, size_t len, const char *metric,
    const char *labels, double *out);

/* ---- state.c ---- */

typedef struct probe_result {
	int observed; /* UP, DEGRADED or DOWN (ComponentState) */
	uint32_t latency_ms;
	int status_code; /* HTTP status, 0 otherwise */
	char error[160]; /* why not up; "" when up */
	int64_t at_ms;
	int cert_days_left;       /* -1 when not TLS */
	int64_t cert_not_after_s; /* leaf certificate expiry; 0 when not TLS */
} probe_result;

typedef struct target_state {
	int state;  /* shown: maintenance overrides health */
	int health; /* damped health: UNKNOWN, UP, DEGRADED, DOWN */
	uint32_t worse_streak;
	uint32_t better_streak;
	uint32_t consecutive_failures;
	uint32_t consecutive_successes;
	int64_t since_ms;
	int64_t last_check_ms;
	uint32_t latency_ms;
	int status_code;
	int cert_days_left;
	/* Why the shown state is what it is; NULL before the first
	 * transition. Owned (malloc'd to its length: a fixed buffer per
	 * target is 1 MB of mostly padding at 10,000 targets). */
	char *reason;
	bool maintenance;
} target_state;

typedef struct state_change {
	int old_state;
	int new_state;
	char reason[200];
	uint32_t latency_ms;
	int64_t at_ms;
} state_change;

void prober_state_init(target_state *s);
void prober_state_fini(target_state *s); /* frees the reason; NULL-safe */
/* Replace the reason with a copy of why (may be NULL); OD_ENOMEM leaves
 * the old one. */
int prober_state_set_reason(target_state *s, const char *why);
/*
 * Feed one result. Health moves to a worse level after
 * failure_threshold consecutive results worse than it, and to a better
 * level after success_threshold consecutive results better than it (the
 * first result of an unknown target decides at once). Returns true and
 * fills *chg when the shown state changed.
 */
bool prober_state_feed(target_state *s, const target *t, const probe_result *r,
    state_change *chg);
/*
 * The decider: set the damped health to a decided one (no thresholds:
 * the locations damped their own). latency is recorded; true and *chg
 * when the shown state changed.
 */
bool prober_state_decide(target_state *s, int health, uint32_t latency_ms,
    const char *why, int64_t at_ms, state_change *chg);
/* Enter or leave maintenance at now_ms; true and *chg on a change. */
bool prober_state_set_maintenance(target_state *s, bool on, const char *why,
    int64_t now_ms, state_change *chg);
/* 0 (best) .. 3 (worst) ordering of states for "worst of". */
int prober_state_rank(int state);
const char *prober_state_name(int state);

/* ---- quorum.c: one decided state from several locations ---- */

#define QUORUM_MAX_LOCATIONS 16

/* One location's latest view of a target. */
typedef struct quorum_vote {
	const char *location;
	int state; /* its damped health; UNKNOWN abstains */
	uint32_t latency_ms;
	int64_t at_ms;      /* when it reported (the decider's clock) */
	const char *reason; /* its error, "" or NULL when up */
} quorum_vote;

typedef struct quorum_rule {
	unsigned quorum;  /* locations that must say down; 0: majority */
	int partial_down; /* the state when some, but too few, say down */
	int64_t stale_ms; /* a vote older than this is not reporting */
} quorum_rule;

typedef struct quorum_decision {
	int state;          /* UNKNOWN when no location reports */
	unsigned reporting; /* fresh votes that are not UNKNOWN */
	unsigned down;
	unsigned degraded;   /* degraded (not down) votes */
	unsigned needed;     /* the quorum applied */
	uint32_t latency_ms; /* the median of the reporting latencies */
	bool partial;        /* some but fewer than the quorum say down */
	/* Indexes into the votes: the reporting ones that say down, the
	 * stale ones (not reporting). */
	uint8_t down_idx[QUORUM_MAX_LOCATIONS];
	uint8_t stale_idx[QUORUM_MAX_LOCATIONS];
	unsigned n_stale;
	char reason[200]; /* "down from eu-west only: HTTP 503; ..." */
} quorum_decision;

/*
 * Decide a target's state at now from n votes (at most
 * QUORUM_MAX_LOCATIONS; more are ignored). A vote is reporting when it
 * is not UNKNOWN and at most stale_ms old; only reporting votes count.
 * The quorum is rule->quorum, or a majority of the reporting locations
 * (n / 2 + 1). Down when at least the quorum say down; otherwise
 * rule->partial_down when some say down; degraded when at least the
 * quorum say degraded or down; else up. No reporting vote: UNKNOWN (the
 * caller keeps its state). Pure: the clock is the caller's.
 */
void prober_quorum_decide(const quorum_vote *v, size_t n,
    const quorum_rule *rule, int64_t now, quorum_decision *out);

/* ---- probe_http.c, probe_tcp.c, probe_service.c ---- */

/* A business metric value extracted by a metric target. */
typedef void (*probe_metric_fn)(void *arg, size_t target_index,
    size_t metric_index, double value, int64_t at_ms);

typedef struct probe_job probe_job;

/*
 * Prepare one curl transfer probing t (borrowed; must outlive the job):
 * an HTTP(S) request for http and metric targets, a connect-only
 * transfer for tcp. *easy is the handle to add to the multi handle; its
 * CURLOPT_PRIVATE is the job.
 */
int probe_job_start(
    const target *t, size_t index, probe_job **out, void **easy);
/* The job of a finished easy handle (CURLOPT_PRIVATE). */
probe_job *probe_job_of(void *easy);
size_t probe_job_index(const probe_job *j);
/*
 * Evaluate the finished transfer (curl_code is its CURLcode) into *r,
 * report metric values through fn, and free the job and its easy handle
 * (which the caller has removed from the multi handle).
 */
void probe_job_finish(probe_job *j, int curl_code, probe_result *r,
    probe_metric_fn fn, void *arg);

/* probe_http.c: judge an HTTP response; exposed for the unit tests. */
void probe_http_judge(const target *t, int curl_code, const char *curl_err,
    long status, const char *body, size_t body_len, probe_result *r);
/* "Jan  2 03:04:05 2027 GMT" (curl's certinfo) -> unix seconds. */
int probe_parse_cert_time(const char *s, int64_t *out);

/* probe_tcp.c */
int probe_tcp_setup(void *easy, const target *t);
void probe_tcp_judge(
    void *easy, int curl_code, const char *curl_err, probe_result *r);

/* probe_service.c: a pool of threads that ping opsdesk services. */
typedef struct service_pool service_pool;
typedef void (*probe_done_fn)(
    void *arg, size_t target_index, const probe_result *r);
/* One client per service target of ts (borrowed; outlives the pool). */
int prober_service_pool_start(
    service_pool **out, const target_set *ts, probe_done_fn done, void *arg);
/* Queue a ping of target index; done runs on a pool thread. */
int prober_service_pool_submit(service_pool *p, size_t index);
void prober_service_pool_stop(service_pool *p); /* NULL-safe, joins */

/* ---- scheduler.c ---- */

typedef struct sched sched;

typedef struct sched_callbacks {
	/* On the scheduler thread, one result at a time. */
	probe_done_fn on_result;
	probe_metric_fn on_metric;
	void *arg;
} sched_callbacks;

typedef struct sched_stats {
	uint64_t started;
	uint64_t completed;
	uint64_t skipped; /* still running when due again */
	unsigned in_flight;
} sched_stats;

/* The first due time of a target: spread over its interval by its hash
 * so that targets do not all fire at start (no thundering herd). */
int64_t prober_sched_first_due(
    uint64_t hash, int64_t interval_ms, int64_t now);
/* The due time after `due`: due + interval (no drift), skipping whole
 * intervals already missed by now. */
int64_t prober_sched_next_due(int64_t due, int64_t interval_ms, int64_t now);

/* Start the scheduler thread over ts (borrowed; outlives it). */
int prober_sched_start(
    sched **out, const target_set *ts, const sched_callbacks *cb);
void prober_sched_stop(sched *s); /* NULL-safe; in-flight probes are dropped */
void prober_sched_get_stats(sched *s, sched_stats *out);

/* ---- history.c ---- */

#define AGG_BUCKETS 20
/* Upper bounds (ms) of the latency histogram buckets; the last is open. */
extern const uint32_t prober_agg_bucket_le_ms[AGG_BUCKETS];

typedef struct agg {
	uint32_t checks;
	uint32_t failures; /* down results outside maintenance */
	uint32_t degraded;
	uint32_t maint; /* results during maintenance (not counted) */
	uint32_t worst; /* worst shown state in the period */
	uint64_t latency_sum_ms;
	uint32_t hist[AGG_BUCKETS];
} agg;

/* The most an encoded aggregate takes (varints; typically 10-40 bytes). */
#define AGG_ENC_MAX (1 + 10 * 6 + 1 + 6 * AGG_BUCKETS)

enum agg_level { AGG_MINUTE = 0, AGG_HOUR = 1, AGG_DAY = 2, AGG_LEVELS };

void prober_agg_add(agg *a, const probe_result *r, int shown_state);
void prober_agg_merge(agg *into, const agg *from);
/* Percent of checks that were not failures; -1 when there is no check. */
double prober_agg_uptime(const agg *a);
/* Latency at quantile q (0..1) interpolated in its bucket; 0 if empty. */
uint32_t prober_agg_percentile(const agg *a, double q);
/* Compact form: a version byte, varint counters, then only the non-empty
 * histogram buckets as (index, varint count). Returns the length. */
size_t prober_agg_encode(const agg *a, uint8_t out[AGG_ENC_MAX]);
int prober_agg_decode(const void *buf, size_t len, agg *out);
/* Start of the minute, hour or day (UTC) holding ms. */
int64_t prober_agg_floor(int64_t ms, int level);
int64_t prober_agg_period_ms(int level);

/* The DBs of the prober's store, in store_options.dbs order. */
enum prober_db {
	PDB_STATE = 0,       /* id -> TargetStatus (durable state) */
	PDB_TRANSITIONS = 1, /* id\0 at be64 seq be64 -> HealthChanged */
	PDB_RESULTS = 2,     /* id\0 at be64 -> HealthResult */
	PDB_MINUTE = 3,      /* id\0 start be64 -> agg */
	PDB_HOUR = 4,
	PDB_DAY = 5,
	PDB_COUNT = 6,
};
extern const char *const prober_db_names[]; /* NULL-terminated */

/* The longest id prober_history_key takes (config ids are at most 64). */
#define HISTORY_ID_MAX 400

/* id, a 0x00, then be64 t: rows of one target sort by time. Returns the
 * length (<= 512) or 0 when the id is longer than HISTORY_ID_MAX. */
size_t prober_history_key(uint8_t *out, const char *id, int64_t t);
int prober_history_put_agg(
    store_txn *txn, MDB_dbi db, const char *id, int64_t start, const agg *a);
/* A row of a target: its time and value (valid during the call). */
typedef int (*history_row_fn)(void *arg, int64_t t, const MDB_val *v);
/* id's rows with t in [from, to), oldest first, until fn returns
 * non-zero. */
int prober_history_walk(MDB_txn *txn, MDB_dbi db, const char *id, int64_t from,
    int64_t to, history_row_fn fn, void *arg);
/* id's newest rows first, at most n. */
int prober_history_walk_back(MDB_txn *txn, MDB_dbi db, const char *id,
    size_t n, history_row_fn fn, void *arg);
/* The merge of id's rows with start in [from, to). */
int prober_history_sum(MDB_txn *txn, MDB_dbi db, const char *id, int64_t from,
    int64_t to, agg *out);
/* Rows with start in [from, from + n*period) into days[n] (zeroed first),
 * indexed by (start - from) / period. */
int prober_history_series(MDB_txn *txn, MDB_dbi db, const char *id,
    int64_t from, int64_t period, size_t n, agg *out);
/*
 * Delete id's rows older than cutoff, at most max of them (SIZE_MAX: no
 * bound), oldest first: a cursor walks from the target's first row and
 * stops at the first row it keeps, so only expired rows are visited.
 * *deleted (may be NULL) gets the count.
 */
int prober_history_retain(store_txn *txn, MDB_dbi db, const char *id,
    int64_t cutoff, size_t max, size_t *deleted);
/* The time of id's oldest row in db: 0, or OD_ENOTFOUND without rows. */
int prober_history_first(MDB_txn *txn, MDB_dbi db, const char *id, int64_t *t);
/*
 * prober_history_retain for every id with rows in db that is not in keep
 * (n_keep ids sorted by strcmp; borrowed), at most max rows in all. It
 * costs one seek per id present in db (it jumps from one id's rows to the
 * next with MDB_SET_RANGE), plus the rows it deletes; keys that are not
 * "id 0x00 ..." are left alone. *deleted (may be NULL) gets the count.
 */
int prober_history_retain_unlisted(store_txn *txn, MDB_dbi db,
    const char *const *keep, size_t n_keep, int64_t cutoff, size_t max,
    size_t *deleted);

/* ---- resources.c ---- */

typedef struct cpu_sample {
	uint64_t busy;
	uint64_t total;
} cpu_sample;

int prober_resources_parse_stat(const char *text, cpu_sample *out);
double prober_resources_cpu_percent(
    const cpu_sample *prev, const cpu_sample *cur);
/* MemTotal and MemAvailable (bytes) from /proc/meminfo text. */
int prober_resources_parse_meminfo(
    const char *text, uint64_t *total, uint64_t *available);
int prober_resources_parse_loadavg(
    const char *text, double *l1, double *l5, double *l15);
/*
 * Fill out from /proc and statvfs(disk_path); prev (may be NULL) is the
 * previous CPU sample and is updated, so the CPU percentage is over the
 * time since the last call.
 */
int prober_resources_read(
    Opsdesk__V1__HostResources *out, const char *disk_path, cpu_sample *prev);

/* ---- prober.c: the service's state, fed by the scheduler ---- */

typedef struct prober prober;

/*
 * Parse the targets of c (borrowed for the call) for this shard
 * (OPSDESK_PROBER_SHARD, may be NULL). Config errors return OD_EINVAL
 * with err naming the key.
 */
int prober_new(prober **out, const config *c, const char *shard, char *err,
    size_t errlen);
/*
 * Attach the store (opened with prober_db_names), the publisher and the
 * metrics registry (all borrowed; may be NULL except the store), and
 * load each target's durable state and current aggregates.
 */
int prober_attach(prober *p, store *st, bus_publisher *pub, metrics *m,
    const char *instance, const char *disk_path);
int prober_start(prober *p); /* starts probing */
/* Stop probing and write every target's state and pending results
 * (waits for the commit). */
void prober_stop(prober *p);
void prober_free(prober *p); /* NULL-safe; after the store is closed */
const target_set *prober_targets(const prober *p);
const char *prober_shard(const prober *p); /* "i/N" or "" */

/* One result of target `index` (the scheduler's callback; tests call it
 * directly with an injected clock). */
void prober_feed(void *p, size_t index, const probe_result *r);
/* Queue the pending results and aggregates as one store job; wait for
 * its commit when sync. */
int prober_flush(prober *p, bool sync);
/*
 * Delete expired raw results and aggregates (one job; waits when sync).
 * Rows of targets that are not configured (removed, or of another shard)
 * expire too, by the same periods, at most PROBER_RETAIN_REMOVED_MAX of
 * them a run; their transitions with the day rows and their state with
 * their last row.
 */
int prober_retain(prober *p, bool sync);

/*
 * Apply a new config (c borrowed for the call): parse and validate its
 * targets first — on an error nothing changes and err names the key.
 * Then stop probing, write the pending results, keep the live state of
 * every target whose id is still configured (an unchanged target keeps
 * everything; a changed one keeps its shown state and restarts its
 * flap-damping streaks), give new targets their stored state if they
 * had one, drop removed ones (their history stays in the store and
 * expires as it would have: prober_retain), and probe again. Settings
 * apply too, except flush_interval (a restart).
 * Must not run concurrently with itself, prober_flush or prober_retain
 * (main.c runs all of them on the runtime's timer thread).
 */
int prober_reload(
    prober *p, const config *c, const char *shard, char *err, size_t errlen);

/*
 * The decider (role decider): one location's view of a target
 * (health.observed). The target's state is decided again at once by
 * prober_quorum_decide over the latest view of every location; a change
 * is one durable transition and one health.changed, as for a probe.
 * Ignored by a prober that is not the decider, and for unknown targets.
 */
void prober_observe(prober *p, const Opsdesk__V1__HealthObserved *o);
/* The decider: decide every target again (a location may have timed
 * out since its last view). Once a second on the timer thread. */
void prober_decide_all(prober *p);

/* A maintenance window changed (maintenance.* event). */
void prober_maintenance_event(
    prober *p, const Opsdesk__V1__MaintenanceWindow *w);
/* Replace every known window with the active ones of a snapshot. */
void prober_maintenance_resync(
    prober *p, Opsdesk__V1__MaintenanceWindow *const *w, size_t n);

/*
 * slo_prober.c: evaluate every target's objectives at now, publish
 * slo.burn / slo.resolved for the alert episodes that start, get worse
 * or end, and return how many were published.
 */
int prober_slo_round(prober *p, int64_t now);

/* ---- handlers.c (the method table is in prober_impl.h) ---- */

/* Uptime over the last window_ms before now from the best-suited
 * aggregates (hours up to 7 days, then days); -1 without data. */
double prober_uptime_window(MDB_txn *txn, store *st, const char *id,
    int64_t now, int64_t window_ms, agg *out);

/* ---- service.c ---- */

/* Process-wide set-up, before runtime_init and any thread: malloc
 * tuning for the memory budget. (SIGHUP, "reload the config", comes
 * through runtime_on_reload.) */
void prober_process_setup(void);
/*
 * Start health-prober on rt: the targets of its config (and
 * OPSDESK_PROBER_SHARD), the store, the rpc server, probing, the bus
 * subscription (maintenance.*, ops.config_reload) with the maintenance
 * resync from incident-service, the timers and HTTP. Everything started
 * stops at runtime shutdown. Errors are logged.
 */
int prober_service_start(runtime *rt);

#endif /* OPSDESK_PROBER_H */
