/*
 * status_render_bench — the cost of pre-rendering every status page route
 * against the length of history: 1, 90 and 900 days of daily bars,
 * response-time charts and resolved incidents. The page shows fixed
 * windows (90 bars, 24 h / 7 d / 30 d charts, the newest
 * STATUS_KEEP_INCIDENTS resolved incidents), so a longer history costs
 * more only until it fills them: 1 day leaves most bars and chart slices
 * empty, 90 days fills them, 900 days adds nothing. The bench prints the
 * three and fails only on the ratios (so it holds on any machine): 90 days
 * against 1 day under 3, 900 days against 90 under 1.5.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"

#define COMPONENTS        20
#define ROUNDS            100
#define INCIDENTS_PER_DAY 5
#define DAY               86400000LL

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

/* The prober's history of one component over `days` days: daily bars and
 * the three response-time windows, each cut to what `days` covers. */
static void
add_history(status_model *m, const char *id, int days, int64_t now)
{
	static Opsdesk__V1__DailyBar bars[90];
	static Opsdesk__V1__DailyBar *bp[90];
	static Opsdesk__V1__LatencyPoint pts[96 + 56 + 30];
	static Opsdesk__V1__LatencyPoint *pp[96 + 56 + 30];
	Opsdesk__V1__TargetStatus ts = OPSDESK__V1__TARGET_STATUS__INIT;
	Opsdesk__V1__TargetHistory h = OPSDESK__V1__TARGET_HISTORY__INIT;
	int64_t today = now - now % DAY;
	size_t nb = days < 90 ? (size_t) days : 90;
	for (size_t i = 0; i < nb; i++) {
		opsdesk__v1__daily_bar__init(&bars[i]);
		bars[i].day_ms = today - (int64_t) (nb - 1 - i) * DAY;
		bars[i].checks = 1440;
		bars[i].failures = i % 7 == 0 ? 30 : 0;
		bars[i].uptime = i % 7 == 0 ? 97.9 : 100;
		bp[i] = &bars[i];
	}
	/* 96 x 15 min, 56 x 3 h, 30 x 1 day; slices before the history
	 * began have no checks. */
	static const struct {
		size_t n;
		int64_t step;
	} win[3] = { { 96, 900000 }, { 56, 3 * 3600000 }, { 30, DAY } };
	size_t k = 0;
	for (int w = 0; w < 3; w++) {
		for (size_t i = 0; i < win[w].n; i++, k++) {
			int64_t at
			    = now - (int64_t) (win[w].n - i) * win[w].step;
			opsdesk__v1__latency_point__init(&pts[k]);
			pts[k].start_ms = at;
			pts[k].checks = at >= now - days * DAY ? 60 : 0;
			pts[k].p50_ms = 40 + (uint32_t) (i * 7 % 23);
			pts[k].p95_ms
			    = 2 * pts[k].p50_ms + (uint32_t) (i % 17);
			pp[k] = &pts[k];
		}
	}
	ts.id = (char *) id;
	h.target = &ts;
	h.daily = bp;
	h.n_daily = nb;
	h.uptime_30d = 99.5;
	h.uptime_90d = 99.5;
	h.latency_24h = pp;
	h.n_latency_24h = 96;
	h.latency_7d = pp + 96;
	h.n_latency_7d = 56;
	h.latency_30d = pp + 96 + 56;
	h.n_latency_30d = 30;
	if (status_model_history(m, &h) != 0) {
		exit(2);
	}
}

/* CPU milliseconds per full render of a page with `days` days of
 * history: bars, charts and INCIDENTS_PER_DAY resolved incidents a day. */
static double
measure(const status_conf *conf, int days, int64_t now, size_t *html)
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
		hc.at_ms = now - days * DAY;
		status_model_health_changed(m, &hc);
		add_history(m, id, days, now);
		Opsdesk__V1__HealthResult hr
		    = OPSDESK__V1__HEALTH_RESULT__INIT;
		hr.target_id = id;
		hr.ok = true;
		hr.latency_ms = 40;
		hr.at_ms = now - 1000;
		status_model_health_result(m, &hr);
	}
	/* History spread over the days, one incident still open. */
	int history = days * INCIDENTS_PER_DAY;
	for (int i = 0; i < history; i++) {
		add_incident(m, (uint64_t) i + 1,
		    now - days * DAY + (int64_t) i * (days * DAY / history),
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
	static const int days[] = { 1, 90, 900 };
	double ms[3];
	printf("status render: %d components with response-time charts, "
	       "all routes, %d incidents a day\n",
	    COMPONENTS, INCIDENTS_PER_DAY);
	for (int i = 0; i < 3; i++) {
		size_t html = 0;
		ms[i] = measure(&conf, days[i], now, &html);
		printf("  history %3d days: %7.3f ms CPU per render "
		       "(HTML %zu bytes)\n",
		    days[i], ms[i], html);
	}
	/* 1 day fills little of the page's windows (bars, charts, the
	 * kept incidents), 90 days fills them all; past that nothing
	 * grows. */
	double filled = ms[1] / ms[0], beyond = ms[2] / ms[1];
	printf(
	    "render time ratio 90 days vs 1 day: %.2f (want < 3)\n", filled);
	printf("render time ratio 900 days vs 90 days: %.2f (want < 1.5)\n",
	    beyond);
	int rv = filled < 3.0 && beyond < 1.5 ? 0 : 1;
	status_conf_fini(&conf);
	return rv;
}
