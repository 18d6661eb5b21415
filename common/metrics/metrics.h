/*
 * metrics — counters, gauges and histograms, rendered in the Prometheus
 * text exposition format 0.0.4. A metric is found or created by its name
 * and label set, so code can ask for ("opsdesk_rpc_requests_total",
 * "method=\"create\"") on the fly. Updates are lock-free atomics;
 * registration takes a mutex. Names follow Prometheus conventions
 * (opsdesk_ prefix, _total for counters, base units in the name).
 */
#ifndef OPSDESK_METRICS_H
#define OPSDESK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef struct metrics metrics;
typedef struct metric metric;

int metrics_new(metrics **out);
void metrics_free(metrics *m); /* NULL-safe */

/*
 * Find or create. `labels` is the inside of the braces, already escaped
 * ("method=\"create\",result=\"ok\""), or NULL/"" for none. `help` is used
 * the first time the name is seen. Returns NULL on OOM or when the name
 * already exists with another type (a programming error, logged). The
 * returned pointer lives as long as the registry.
 */
metric *metrics_counter(
    metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_gauge(
    metrics *m, const char *name, const char *help, const char *labels);
/* Buckets are upper bounds in increasing order (no +Inf); NULL uses the
 * default latency buckets in seconds (0.0005 … 10). At most 24. */
metric *metrics_histogram(metrics *m, const char *name, const char *help,
    const char *labels, const double *buckets, size_t n_buckets);

/* NULL-safe updates, so a failed registration never crashes a service. */
void metric_inc(metric *c);
void metric_add(metric *c, uint64_t n);
void metric_set(metric *g, double v);
void metric_gauge_add(metric *g, double delta);
void metric_observe(metric *h, double v);
double metric_value(const metric *m);   /* counter or gauge value (tests) */
uint64_t metric_count(const metric *h); /* histogram count (tests) */

/*
 * A collector fills gauges just before rendering (host resources, queue
 * depths, per-target state). It runs under the render lock: only
 * metrics_* calls inside.
 */
typedef void (*metrics_collect_fn)(void *arg, metrics *m);
int metrics_add_collector(metrics *m, metrics_collect_fn fn, void *arg);

/*
 * A text source appends its own exposition lines (# HELP, # TYPE and
 * samples) after the registry's at every render. For series an owner
 * keeps by the thousand in its own memory (health-prober's per-target
 * gauges), where a registry entry each would cost more than the data.
 * Runs outside the registry lock; it must not call metrics_render.
 */
typedef void (*metrics_text_fn)(void *arg, sbuf *b);
int metrics_add_text(metrics *m, metrics_text_fn fn, void *arg);

/* The whole exposition into b. 0 or OD_ENOMEM. */
int metrics_render(metrics *m, sbuf *b);

/* Escape a label value (\\, \", \n) into out. Returns out. */
char *metrics_label_escape(const char *v, char *out, size_t size);

#endif /* OPSDESK_METRICS_H */
