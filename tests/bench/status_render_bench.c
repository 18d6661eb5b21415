/*
 * status_render_bench — the cost of pre-rendering every status page route
 * against the length of the incident history. The model keeps a bounded
 * window (the newest STATUS_KEEP_INCIDENTS resolved incidents), so the
 * ratio of the longest history's render time to the shortest's should stay
 * near 1; the bench prints it and fails only if it exceeds 2 (a ratio, so
 * it holds on any machine).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"

#define COMPONENTS 20
#define ROUNDS     100
#define DAY        86400000LL

static int
build(const status_view *v, void *arg)
{
	status_pages *p = NULL;
	int rv = status_pages_build(v, &p);
	if (rv == 0) {
		*(size_t *) arg = strlen(status_pages_find(p, "/")->body);
	}
	status_pages_free(p);
	return rv;
}

static void
add_incident(status_model *m, uint64_t id, int64_t at, bool open)
{
	Opsdesk__V1__Incident in = OPSDESK__V1__INCIDENT__INIT;
	Opsdesk__V1__TimelineEntry e = OPSDESK__V1__TIMELINE_ENTRY__INIT;
	Opsdesk__V1__TimelineEntry *tl[1] = { &e };
	Opsdesk__V1__AffectedComponent ac
	    = OPSDESK__V1__AFFECTED_COMPONENT__INIT;
	Opsdesk__V1__AffectedComponent *acs[1] = { &ac };
	char title[64];
	snprintf(title, sizeof(title), "Elevated errors #%llu",
	    (unsigned long long) id);
	e.at_ms = at;
	e.text = "We are investigating elevated error rates & latency.";
	e.public_ = true;
	ac.component_id = "c1";
	ac.state = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_DEGRADED;
	in.id = id;
	in.title = title;
	in.severity = OPSDESK__V1__SEVERITY__SEVERITY_MEDIUM;
	in.status = open
	    ? OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING
	    : OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED;
	in.components = acs;
	in.n_components = 1;
	in.timeline = tl;
	in.n_timeline = 1;
	in.created_ms = at;
	in.updated_ms = at + 1000;
	in.resolved_ms = open ? 0 : at + 1000;
	in.public_ = true;
	status_model_incident(m, &in);
}

/* CPU time of this thread: the cores are shared with other work, and
 * wall time would measure that. */
static uint64_t
cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* CPU milliseconds per full render with `history` resolved incidents. */
static double
measure(const status_conf *conf, int history, int64_t now, size_t *html)
{
	status_model *m;
	if (status_model_open(&m, conf, NULL) != 0) {
		exit(2);
	}
	for (int i = 0; i < COMPONENTS; i++) {
		Opsdesk__V1__HealthChanged hc
		    = OPSDESK__V1__HEALTH_CHANGED__INIT;
		char id[16], group[16];
		snprintf(id, sizeof(id), "c%d", i);
		snprintf(group, sizeof(group), "g%d", i / 5);
		hc.target_id = id;
		hc.name = id;
		hc.group = group;
		hc.new_state
		    = OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_UP;
		hc.public_ = true;
		hc.at_ms = now - 90 * DAY;
		status_model_health_changed(m, &hc);
		for (int d = 0; d < 90; d++) {
			Opsdesk__V1__HealthResult hr
			    = OPSDESK__V1__HEALTH_RESULT__INIT;
			hr.target_id = id;
			hr.ok = (d + i) % 7 != 0;
			hr.at_ms = now - d * DAY;
			status_model_health_result(m, &hr);
		}
	}
	/* History spread over the last 90 days, one incident still open. */
	for (int i = 0; i < history; i++) {
		add_incident(m, (uint64_t) i + 1,
		    now - 90 * DAY + (int64_t) i * (90 * DAY / history),
		    false);
	}
	add_incident(m, (uint64_t) history + 1, now - 3600000, true);

	uint64_t t0 = cpu_ns();
	for (int r = 0; r < ROUNDS; r++) {
		if (status_model_with_view(m, now, build, html) != 0) {
			exit(2);
		}
	}
	double ms = (double) (cpu_ns() - t0) / 1e6 / ROUNDS;
	status_model_close(m);
	return ms;
}

int
main(void)
{
	status_conf conf;
	char err[256];
	if (status_conf_parse(NULL, &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	int64_t now = od_now_ms();
	static const int sizes[] = { 60, 600, 6000, 60000 };
	double first = 0, last = 0;
	printf("status render: %d components x 90 daily bars, all routes\n",
	    COMPONENTS);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t html = 0;
		double ms = measure(&conf, sizes[i], now, &html);
		printf("  history %6d incidents: %7.3f ms CPU per render "
		       "(HTML %zu "
		       "bytes)\n",
		    sizes[i], ms, html);
		if (i == 0) {
			first = ms;
		}
		last = ms;
	}
	double ratio = last / first;
	printf("render time ratio 60000 vs 60 incidents: %.2f (want < 2)\n",
	    ratio);
	status_conf_fini(&conf);
	return ratio < 2.0 ? 0 : 1;
}
