/*
 * metrics — a Prometheus registry. See metrics.h.
 *
 * Families (name, help, type) own their series (label set and value).
 * Values are atomics so hot paths never take the registry lock; doubles
 * are stored as their bit patterns and updated with compare-and-swap.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"

#define MAX_BUCKETS    24
#define MAX_COLLECTORS 16

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct metric {
	struct metric *next;
	char *labels;
	enum metric_type type;
	uint64_t count; /* counter value, histogram count */
	uint64_t bits;  /* gauge value, histogram sum (double) */
	size_t n_buckets;
	double bounds[MAX_BUCKETS];
	uint64_t buckets[MAX_BUCKETS]; /* non-cumulative per bucket */
};

typedef struct family {
	struct family *next;
	char *name;
	char *help;
	enum metric_type type;
	metric *series;
	metric *last;
} family;

struct metrics {
	pthread_mutex_t mtx;
	family *families;
	family *last;
	struct {
		metrics_collect_fn fn;
		void *arg;
	} collectors[MAX_COLLECTORS];
	int n_collectors;
	struct {
		metrics_text_fn fn;
		void *arg;
	} texts[MAX_COLLECTORS];
	int n_texts;
};

static const double default_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

static double
bits_to_double(uint64_t b)
{
	double d;
	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t
double_to_bits(double d)
{
	uint64_t b;
	memcpy(&b, &d, sizeof(b));
	return b;
}

int
metrics_new(metrics **out)
{
	metrics *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		return OD_ENOMEM;
	}
	pthread_mutex_init(&m->mtx, NULL);
	*out = m;
	return 0;
}

void
metrics_free(metrics *m)
{
	if (m == NULL) {
		return;
	}
	family *f = m->families;
	while (f != NULL) {
		family *fn = f->next;
		metric *s = f->series;
		while (s != NULL) {
			metric *sn = s->next;
			free(s->labels);
			free(s);
			s = sn;
		}
		free(f->name);
		free(f->help);
		free(f);
		f = fn;
	}
	pthread_mutex_destroy(&m->mtx);
	free(m);
}

static metric *
find_or_create(metrics *m, const char *name, const char *help,
    const char *labels, enum metric_type type, const double *bounds,
    size_t n_bounds)
{
	if (m == NULL || name == NULL) {
		return NULL;
	}
	if (labels == NULL) {
		labels = "";
	}
	metric *res = NULL;
	pthread_mutex_lock(&m->mtx);
	family *f;
	for (f = m->families; f != NULL; f = f->next) {
		if (strcmp(f->name, name) == 0) {
			break;
		}
	}
	if (f != NULL && f->type != type) {
		pthread_mutex_unlock(&m->mtx);
		log_error(
		    "metric %s registered twice with different types", name);
		return NULL;
	}
	if (f == NULL) {
		f = calloc(1, sizeof(*f));
		if (f == NULL) {
			goto out;
		}
		f->name = strdup(name);
		f->help = strdup(help ? help : "");
		f->type = type;
		if (f->name == NULL || f->help == NULL) {
			free(f->name);
			free(f->help);
			free(f);
			goto out;
		}
		if (m->last != NULL) {
			m->last->next = f;
		} else {
			m->families = f;
		}
		m->last = f;
	}
	for (metric *s = f->series; s != NULL; s = s->next) {
		if (strcmp(s->labels, labels) == 0) {
			res = s;
			goto out;
		}
	}
	metric *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		goto out;
	}
	s->labels = strdup(labels);
	if (s->labels == NULL) {
		free(s);
		goto out;
	}
	s->type = type;
	if (type == M_HISTOGRAM) {
		if (bounds == NULL || n_bounds == 0) {
			bounds = default_buckets;
			n_bounds = sizeof(default_buckets)
			    / sizeof(default_buckets[0]);
		}
		if (n_bounds > MAX_BUCKETS) {
			n_bounds = MAX_BUCKETS;
		}
		memcpy(s->bounds, bounds, n_bounds * sizeof(double));
		s->n_buckets = n_bounds;
	}
	if (f->last != NULL) {
		f->last->next = s;
	} else {
		f->series = s;
	}
	f->last = s;
	res = s;
out:
	pthread_mutex_unlock(&m->mtx);
	return res;
}

metric *
metrics_counter(
    metrics *m, const char *name, const char *help, const char *labels)
{
	return find_or_create(m, name, help, labels, M_COUNTER, NULL, 0);
}

metric *
metrics_gauge(
    metrics *m, const char *name, const char *help, const char *labels)
{
	return find_or_create(m, name, help, labels, M_GAUGE, NULL, 0);
}

metric *
metrics_histogram(metrics *m, const char *name, const char *help,
    const char *labels, const double *buckets, size_t n_buckets)
{
	return find_or_create(
	    m, name, help, labels, M_HISTOGRAM, buckets, n_buckets);
}

void
metric_inc(metric *c)
{
	metric_add(c, 1);
}

void
metric_add(metric *c, uint64_t n)
{
	if (c != NULL) {
		__atomic_add_fetch(&c->count, n, __ATOMIC_RELAXED);
	}
}

static void
atomic_add_double(uint64_t *bits, double delta)
{
	uint64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t nv = double_to_bits(bits_to_double(old) + delta);
		if (__atomic_compare_exchange_n(bits, &old, nv, false,
		        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			return;
		}
	}
}

void
metric_set(metric *g, double v)
{
	if (g != NULL) {
		__atomic_store_n(
		    &g->bits, double_to_bits(v), __ATOMIC_RELAXED);
	}
}

void
metric_gauge_add(metric *g, double delta)
{
	if (g != NULL) {
		atomic_add_double(&g->bits, delta);
	}
}

void
metric_observe(metric *h, double v)
{
	if (h == NULL || h->type != M_HISTOGRAM) {
		return;
	}
	size_t i;
	for (i = 0; i < h->n_buckets; i++) {
		if (v <= h->bounds[i]) {
			__atomic_add_fetch(
			    &h->buckets[i], 1, __ATOMIC_RELAXED);
			break;
		}
	}
	atomic_add_double(&h->bits, v);
	__atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
}

double
metric_value(const metric *m)
{
	if (m == NULL) {
		return 0;
	}
	if (m->type == M_COUNTER) {
		return (double) __atomic_load_n(&m->count, __ATOMIC_RELAXED);
	}
	return bits_to_double(__atomic_load_n(&m->bits, __ATOMIC_RELAXED));
}

uint64_t
metric_count(const metric *h)
{
	return h ? __atomic_load_n(&h->count, __ATOMIC_RELAXED) : 0;
}

int
metrics_add_collector(metrics *m, metrics_collect_fn fn, void *arg)
{
	int rv = OD_ELIMIT;
	pthread_mutex_lock(&m->mtx);
	if (m->n_collectors < MAX_COLLECTORS) {
		m->collectors[m->n_collectors].fn = fn;
		m->collectors[m->n_collectors].arg = arg;
		m->n_collectors++;
		rv = 0;
	}
	pthread_mutex_unlock(&m->mtx);
	return rv;
}

/* Prometheus float text: integers without a fraction, +Inf/NaN spelled. */
static void
append_value(sbuf *b, double v)
{
	if (isnan(v)) {
		sbuf_append(b, "NaN");
	} else if (isinf(v)) {
		sbuf_append(b, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		sbuf_printf(b, "%.0f", v);
	} else {
		sbuf_printf(b, "%.15g", v);
	}
}

static void
append_help(sbuf *b, const char *help)
{
	for (const char *p = help; *p; p++) {
		if (*p == '\\') {
			sbuf_append(b, "\\\\");
		} else if (*p == '\n') {
			sbuf_append(b, "\\n");
		} else {
			sbuf_appendc(b, *p);
		}
	}
}

static void
append_labels(sbuf *b, const char *labels, const char *extra)
{
	bool has = labels[0] != '\0';
	if (!has && extra == NULL) {
		return;
	}
	sbuf_appendc(b, '{');
	sbuf_append(b, labels);
	if (extra != NULL) {
		if (has) {
			sbuf_appendc(b, ',');
		}
		sbuf_append(b, extra);
	}
	sbuf_appendc(b, '}');
}

int
metrics_render(metrics *m, sbuf *b)
{
	/* Collectors register and set metrics themselves, so run them
	 * before taking the lock for rendering. */
	pthread_mutex_lock(&m->mtx);
	int n = m->n_collectors;
	pthread_mutex_unlock(&m->mtx);
	for (int i = 0; i < n; i++) {
		m->collectors[i].fn(m->collectors[i].arg, m);
	}
	static const char *const type_names[]
	    = { "counter", "gauge", "histogram" };
	pthread_mutex_lock(&m->mtx);
	for (family *f = m->families; f != NULL; f = f->next) {
		sbuf_printf(b, "# HELP %s ", f->name);
		append_help(b, f->help);
		sbuf_printf(
		    b, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
		for (metric *s = f->series; s != NULL; s = s->next) {
			if (f->type != M_HISTOGRAM) {
				sbuf_append(b, f->name);
				append_labels(b, s->labels, NULL);
				sbuf_appendc(b, ' ');
				append_value(b, metric_value(s));
				sbuf_appendc(b, '\n');
				continue;
			}
			uint64_t cum = 0;
			char le[64];
			for (size_t i = 0; i < s->n_buckets; i++) {
				cum += __atomic_load_n(
				    &s->buckets[i], __ATOMIC_RELAXED);
				snprintf(
				    le, sizeof(le), "le=\"%g\"", s->bounds[i]);
				sbuf_printf(b, "%s_bucket", f->name);
				append_labels(b, s->labels, le);
				sbuf_printf(
				    b, " %llu\n", (unsigned long long) cum);
			}
			uint64_t count = metric_count(s);
			sbuf_printf(b, "%s_bucket", f->name);
			append_labels(b, s->labels, "le=\"+Inf\"");
			sbuf_printf(b, " %llu\n", (unsigned long long) count);
			sbuf_printf(b, "%s_sum", f->name);
			append_labels(b, s->labels, NULL);
			sbuf_appendc(b, ' ');
			append_value(b,
			    bits_to_double(
			        __atomic_load_n(&s->bits, __ATOMIC_RELAXED)));
			sbuf_printf(b, "\n%s_count", f->name);
			append_labels(b, s->labels, NULL);
			sbuf_printf(b, " %llu\n", (unsigned long long) count);
		}
	}
	n = m->n_texts;
	pthread_mutex_unlock(&m->mtx);
	for (int i = 0; i < n; i++) {
		m->texts[i].fn(m->texts[i].arg, b);
	}
	return sbuf_failed(b) ? OD_ENOMEM : 0;
}

int
metrics_add_text(metrics *m, metrics_text_fn fn, void *arg)
{
	int rv = OD_ELIMIT;
	pthread_mutex_lock(&m->mtx);
	if (m->n_texts < MAX_COLLECTORS) {
		m->texts[m->n_texts].fn = fn;
		m->texts[m->n_texts].arg = arg;
		m->n_texts++;
		rv = 0;
	}
	pthread_mutex_unlock(&m->mtx);
	return rv;
}

char *
metrics_label_escape(const char *v, char *out, size_t size)
{
	size_t o = 0;
	if (size == 0) {
		return out;
	}
	for (const char *p = v ? v : ""; *p && o + 2 < size; p++) {
		if (*p == '\\' || *p == '"') {
			out[o++] = '\\';
			out[o++] = *p;
		} else if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}
