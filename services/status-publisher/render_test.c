/*
 * Units for the read model and the renderers: the Statuspage JSON shape
 * field by field, escaping of hostile text in every format, only public
 * facts on every page, ETag/304, restart from the store, bounded history
 * and status changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "status.h"

#define ST(x)   OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_##x
#define NOW     1795784400000LL /* 2026-11-27T09:00:00Z */
#define HOSTILE "<script>alert(\"x\")</script> & 'q'"

static status_conf conf;

static int
setup_conf(void **state)
{
	(void) state;
	char err[256];
	cJSON *sec = cJSON_Parse(
	    "{\"title\":\"Ops <&> \\\"Status\\\"\",\"url\":\"https://status."
	    "example.com/\",\"components\":[{\"id\":\"db\",\"description\":"
	    "\"Primary database\"},\"api\"]}");
	assert_non_null(sec);
	assert_int_equal(status_conf_parse(sec, &conf, err, sizeof(err)), 0);
	cJSON_Delete(sec);
	return 0;
}

static int
teardown_conf(void **state)
{
	(void) state;
	status_conf_fini(&conf);
	return 0;
}

static void
health(status_model *m, const char *id, const char *group,
    Opsdesk__V1__ComponentState st, bool pub, int64_t at)
{
	Opsdesk__V1__HealthChanged hc = OPSDESK__V1__HEALTH_CHANGED__INIT;
	hc.target_id = (char *) id;
	hc.name = (char *) id;
	hc.group = (char *) group;
	hc.new_state = st;
	hc.public_ = pub;
	hc.at_ms = at;
	assert_int_equal(status_model_health_changed(m, &hc), 0);
}

static void
incident(status_model *m, uint64_t id, const char *title, bool pub,
    Opsdesk__V1__IncidentStatus status, int64_t at)
{
	Opsdesk__V1__Incident in = OPSDESK__V1__INCIDENT__INIT;
	Opsdesk__V1__TimelineEntry e1 = OPSDESK__V1__TIMELINE_ENTRY__INIT;
	Opsdesk__V1__TimelineEntry e2 = OPSDESK__V1__TIMELINE_ENTRY__INIT;
	Opsdesk__V1__TimelineEntry *tl[2] = { &e1, &e2 };
	Opsdesk__V1__AffectedComponent ac
	    = OPSDESK__V1__AFFECTED_COMPONENT__INIT;
	Opsdesk__V1__AffectedComponent priv
	    = OPSDESK__V1__AFFECTED_COMPONENT__INIT;
	Opsdesk__V1__AffectedComponent *acs[2] = { &ac, &priv };
	e1.at_ms = at;
	e1.author_id = 42;
	e1.author_name = "Alice Admin";
	e1.status
	    = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING;
	e1.text = HOSTILE " update";
	e1.public_ = true;
	e2.at_ms = at + 1000;
	e2.author_id = 42;
	e2.author_name = "Alice Admin";
	e2.text = "INTERNAL-NOTE restart the primary";
	e2.public_ = false;
	ac.component_id = "db";
	ac.state = ST(DOWN);
	priv.component_id = "secret";
	priv.state = ST(DOWN);
	in.id = id;
	in.title = (char *) title;
	in.severity = OPSDESK__V1__SEVERITY__SEVERITY_HIGH;
	in.status = status;
	in.acknowledged_by_name = "Alice Admin";
	in.components = acs;
	in.n_components = 2;
	in.timeline = tl;
	in.n_timeline = 2;
	in.created_ms = at;
	in.updated_ms = at + 1000;
	if (status == OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED) {
		in.resolved_ms = at + 2000;
		in.updated_ms = at + 2000;
	}
	in.public_ = pub;
	assert_int_equal(status_model_incident(m, &in), 0);
}

static void
maintenance(status_model *m, uint64_t id, int64_t start, int64_t end)
{
	Opsdesk__V1__MaintenanceWindow w
	    = OPSDESK__V1__MAINTENANCE_WINDOW__INIT;
	char *comps[2] = { "api", "secret" };
	w.id = id;
	w.title = HOSTILE " upgrade";
	w.description = "Rolling restart";
	w.components = comps;
	w.n_components = 2;
	w.start_ms = start;
	w.end_ms = end;
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_SCHEDULED;
	w.created_by = 42;
	w.created_ms = start - 3600000;
	w.updated_ms = start - 3600000;
	assert_int_equal(status_model_maintenance(m, &w), 0);
}

/* The standard scene: two public components in a group, a private one,
 * a public incident with an internal note, a private incident, an
 * upcoming maintenance. */
static status_model *
scene(store *st)
{
	status_model *m;
	assert_int_equal(status_model_open(&m, &conf, st), 0);
	health(m, "db", "Core", ST(UP), true, NOW - 7200000);
	health(m, "api", "Core", ST(UP), true, NOW - 7200000);
	health(m, "secret", "Internal", ST(DOWN), false, NOW - 7200000);
	incident(m, 7, HOSTILE, true,
	    OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING,
	    NOW - 3600000);
	incident(m, 8, "PRIVATE-INC", false,
	    OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING,
	    NOW - 3600000);
	maintenance(m, 3, NOW + 3600000, NOW + 7200000);
	return m;
}

static int
pages_cb(const status_view *v, void *arg)
{
	return status_pages_build(v, (status_pages **) arg);
}

static status_pages *
render(status_model *m, int64_t now)
{
	status_pages *p = NULL;
	assert_int_equal(status_model_with_view(m, now, pages_cb, &p), 0);
	assert_non_null(p);
	return p;
}

static const char *
body(status_pages *p, const char *path)
{
	const status_page *pg = status_pages_find(p, path);
	assert_non_null(pg);
	return pg->body;
}

static cJSON *
json(status_pages *p, const char *path)
{
	cJSON *j = cJSON_Parse(body(p, path));
	assert_non_null(j);
	return j;
}

/* ---- shape checks against reference/statuspage-v2.md ---- */

typedef enum { T_STR, T_NUM, T_BOOL, T_ARR, T_OBJ, T_STR_NULL } ftype;

typedef struct field {
	const char *name;
	ftype type;
} field;

static void
check_fields(const cJSON *o, const field *f, size_t n)
{
	assert_true(cJSON_IsObject(o));
	for (size_t i = 0; i < n; i++) {
		const cJSON *x
		    = cJSON_GetObjectItemCaseSensitive(o, f[i].name);
		if (x == NULL) {
			fail_msg("missing field %s", f[i].name);
		}
		bool ok = false;
		switch (f[i].type) {
		case T_STR:
			ok = cJSON_IsString(x);
			break;
		case T_NUM:
			ok = cJSON_IsNumber(x);
			break;
		case T_BOOL:
			ok = cJSON_IsBool(x);
			break;
		case T_ARR:
			ok = cJSON_IsArray(x);
			break;
		case T_OBJ:
			ok = cJSON_IsObject(x);
			break;
		case T_STR_NULL:
			ok = cJSON_IsString(x) || cJSON_IsNull(x);
			break;
		}
		if (!ok) {
			fail_msg("field %s has the wrong type", f[i].name);
		}
	}
}

#define CHECK(o, fields)                                                      \
	check_fields(o, fields, sizeof(fields) / sizeof(fields[0]))

static const field page_fields[] = { { "id", T_STR }, { "name", T_STR },
	{ "url", T_STR }, { "time_zone", T_STR }, { "updated_at", T_STR } };
static const field status_fields[]
    = { { "indicator", T_STR }, { "description", T_STR } };
static const field comp_fields[] = { { "id", T_STR }, { "name", T_STR },
	{ "status", T_STR }, { "created_at", T_STR }, { "updated_at", T_STR },
	{ "position", T_NUM }, { "description", T_STR_NULL },
	{ "showcase", T_BOOL }, { "start_date", T_STR_NULL },
	{ "group_id", T_STR_NULL }, { "page_id", T_STR }, { "group", T_BOOL },
	{ "only_show_if_degraded", T_BOOL } };
static const field incident_fields[] = { { "id", T_STR }, { "name", T_STR },
	{ "status", T_STR }, { "created_at", T_STR }, { "updated_at", T_STR },
	{ "monitoring_at", T_STR_NULL }, { "resolved_at", T_STR_NULL },
	{ "impact", T_STR }, { "shortlink", T_STR }, { "started_at", T_STR },
	{ "page_id", T_STR }, { "incident_updates", T_ARR },
	{ "components", T_ARR } };
static const field update_fields[] = { { "id", T_STR }, { "status", T_STR },
	{ "body", T_STR }, { "incident_id", T_STR }, { "created_at", T_STR },
	{ "updated_at", T_STR }, { "display_at", T_STR },
	{ "affected_components", T_ARR } };
static const field affected_fields[] = { { "code", T_STR }, { "name", T_STR },
	{ "old_status", T_STR }, { "new_status", T_STR } };
static const field mnt_fields[]
    = { { "scheduled_for", T_STR }, { "scheduled_until", T_STR } };

static bool
in_vocab(const char *s, const char *const *vocab)
{
	for (; *vocab != NULL; vocab++) {
		if (strcmp(s, *vocab) == 0) {
			return true;
		}
	}
	return false;
}

static const char *const comp_vocab[]
    = { "operational", "degraded_performance", "partial_outage",
	      "major_outage", "under_maintenance", NULL };
static const char *const inc_vocab[] = { "investigating", "identified",
	"monitoring", "resolved", "postmortem", NULL };
static const char *const mnt_vocab[]
    = { "scheduled", "in_progress", "verifying", "completed", NULL };
static const char *const impact_vocab[]
    = { "none", "minor", "major", "critical", NULL };

static const char *
str(const cJSON *o, const char *name)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
	assert_true(cJSON_IsString(x));
	return x->valuestring;
}

static void
check_component(const cJSON *c)
{
	CHECK(c, comp_fields);
	assert_true(in_vocab(str(c, "status"), comp_vocab));
	if (cJSON_IsTrue(cJSON_GetObjectItem(c, "group"))) {
		assert_true(
		    cJSON_IsArray(cJSON_GetObjectItem(c, "components")));
	}
}

static void
check_incident(const cJSON *in, bool maint)
{
	const cJSON *x;
	CHECK(in, incident_fields);
	if (maint) {
		CHECK(in, mnt_fields);
		assert_string_equal(str(in, "impact"), "maintenance");
		assert_true(in_vocab(str(in, "status"), mnt_vocab));
	} else {
		assert_true(in_vocab(str(in, "impact"), impact_vocab));
		assert_true(in_vocab(str(in, "status"), inc_vocab));
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(in, "incident_updates"))
	{
		const cJSON *a;
		CHECK(x, update_fields);
		cJSON_ArrayForEach(
		    a, cJSON_GetObjectItem(x, "affected_components"))
		{
			CHECK(a, affected_fields);
			assert_true(
			    in_vocab(str(a, "new_status"), comp_vocab));
		}
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(in, "components"))
	{
		check_component(x);
	}
}

static void
test_summary_shape(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	status_pages *p = render(m, NOW);
	cJSON *j = json(p, "/api/v2/summary.json");
	const cJSON *x;

	CHECK(cJSON_GetObjectItem(j, "page"), page_fields);
	assert_string_equal(str(cJSON_GetObjectItem(j, "page"), "url"),
	    "https://status.example.com");
	CHECK(cJSON_GetObjectItem(j, "status"), status_fields);
	/* A high incident is open: major, though every part works. */
	assert_string_equal(
	    str(cJSON_GetObjectItem(j, "status"), "indicator"), "major");

	const cJSON *comps = cJSON_GetObjectItem(j, "components");
	assert_int_equal(cJSON_GetArraySize(comps), 3); /* group + 2 */
	cJSON_ArrayForEach(x, comps)
	{
		check_component(x);
	}
	const cJSON *g = cJSON_GetArrayItem(comps, 0);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(g, "group")));
	assert_string_equal(str(g, "name"), "Core");
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(g, "components")), 2);
	const cJSON *db = cJSON_GetArrayItem(comps, 1);
	assert_string_equal(str(db, "id"), "db");
	assert_string_equal(str(db, "description"), "Primary database");
	assert_string_equal(str(db, "group_id"), str(g, "id"));

	const cJSON *incs = cJSON_GetObjectItem(j, "incidents");
	assert_int_equal(cJSON_GetArraySize(incs), 1);
	cJSON_ArrayForEach(x, incs)
	{
		check_incident(x, false);
	}
	const cJSON *inc = cJSON_GetArrayItem(incs, 0);
	assert_string_equal(str(inc, "id"), "INC-7");
	assert_string_equal(str(inc, "impact"), "major");
	assert_string_equal(
	    str(inc, "shortlink"), "https://status.example.com/#INC-7");
	/* The internal note is gone; the public update names only public
	 * components. */
	const cJSON *ups = cJSON_GetObjectItem(inc, "incident_updates");
	assert_int_equal(cJSON_GetArraySize(ups), 1);
	const cJSON *aff = cJSON_GetObjectItem(
	    cJSON_GetArrayItem(ups, 0), "affected_components");
	assert_int_equal(cJSON_GetArraySize(aff), 1);
	assert_string_equal(str(cJSON_GetArrayItem(aff, 0), "code"), "db");
	assert_int_equal(
	    cJSON_GetArraySize(cJSON_GetObjectItem(inc, "components")), 1);

	const cJSON *mnts = cJSON_GetObjectItem(j, "scheduled_maintenances");
	assert_int_equal(cJSON_GetArraySize(mnts), 1);
	check_incident(cJSON_GetArrayItem(mnts, 0), true);
	assert_string_equal(
	    str(cJSON_GetArrayItem(mnts, 0), "status"), "scheduled");
	cJSON_Delete(j);

	/* Each other endpoint: its keys, and the same shapes. */
	static const struct {
		const char *path, *key;
		size_t n;
		bool maint;
	} eps[] = {
		{ "/api/v2/components.json", "components", 3, false },
		{ "/api/v2/incidents.json", "incidents", 1, false },
		{ "/api/v2/incidents/unresolved.json", "incidents", 1, false },
		{ "/api/v2/scheduled-maintenances.json",
		    "scheduled_maintenances", 1, true },
		{ "/api/v2/scheduled-maintenances/upcoming.json",
		    "scheduled_maintenances", 1, true },
		{ "/api/v2/scheduled-maintenances/active.json",
		    "scheduled_maintenances", 0, true },
	};
	for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		j = json(p, eps[i].path);
		CHECK(cJSON_GetObjectItem(j, "page"), page_fields);
		const cJSON *a = cJSON_GetObjectItem(j, eps[i].key);
		assert_true(cJSON_IsArray(a));
		assert_int_equal(cJSON_GetArraySize(a), eps[i].n);
		cJSON_ArrayForEach(x, a)
		{
			if (strcmp(eps[i].key, "components") == 0) {
				check_component(x);
			} else {
				check_incident(x, eps[i].maint);
			}
		}
		cJSON_Delete(j);
	}
	j = json(p, "/api/v2/status.json");
	CHECK(cJSON_GetObjectItem(j, "page"), page_fields);
	CHECK(cJSON_GetObjectItem(j, "status"), status_fields);
	assert_int_equal(cJSON_GetArraySize(j), 2);
	cJSON_Delete(j);
	status_pages_free(p);
	status_model_close(m);
}

static void
test_escaping(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	status_pages *p = render(m, NOW);
	static const char *const markup[]
	    = { "/", "/history.rss", "/history.atom" };
	for (size_t i = 0; i < 3; i++) {
		const char *b = body(p, markup[i]);
		assert_null(strstr(b, "<script>"));
		assert_null(strstr(b, "Ops <&>"));
		assert_non_null(strstr(b, "&lt;script&gt;"));
		assert_non_null(strstr(b, "&amp;"));
		assert_null(strstr(b, "alert(\"x\")"));
		assert_non_null(strstr(b, "Ops &lt;&amp;&gt;"));
	}
	/* JSON: the exact title survives a round trip. */
	cJSON *j = json(p, "/api/v2/incidents.json");
	const cJSON *inc
	    = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "incidents"), 0);
	assert_string_equal(str(inc, "name"), HOSTILE);
	assert_string_equal(
	    str(cJSON_GetObjectItem(j, "page"), "name"), "Ops <&> \"Status\"");
	cJSON_Delete(j);
	/* Badges are XML too. */
	const char *badge = body(p, "/badge/db.svg");
	assert_non_null(strstr(badge, "<svg"));
	assert_non_null(strstr(badge, "operational"));
	status_pages_free(p);
	status_model_close(m);
}

static void
test_only_public_facts(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	status_pages *p = render(m, NOW);
	static const char *const secrets[] = { "INTERNAL-NOTE", "Alice Admin",
		"secret", "Internal", "PRIVATE-INC", "INC-8" };
	assert_true(status_pages_count(p) > 10);
	for (size_t i = 0; i < status_pages_count(p); i++) {
		/* Walk every page through its path list. */
		static const char *const paths[] = { "/",
			"/api/v2/summary.json", "/api/v2/components.json",
			"/api/v2/incidents.json",
			"/api/v2/scheduled-maintenances.json", "/history.rss",
			"/history.atom", "/badge/db.svg", "/badge/api.svg" };
		if (i >= sizeof(paths) / sizeof(paths[0])) {
			break;
		}
		const char *b = body(p, paths[i]);
		for (size_t k = 0; k < sizeof(secrets) / sizeof(secrets[0]);
		     k++) {
			if (strstr(b, secrets[k]) != NULL) {
				fail_msg("%s leaks %s", paths[i], secrets[k]);
			}
		}
	}
	assert_null(status_pages_find(p, "/badge/secret.svg"));
	status_pages_free(p);

	/* A component made private leaves the page too. */
	health(m, "api", "Core", ST(UP), false, NOW);
	p = render(m, NOW);
	assert_null(status_pages_find(p, "/badge/api.svg"));
	assert_null(strstr(body(p, "/api/v2/components.json"), "\"api\""));
	status_pages_free(p);

	/* An incident made internal leaves the page. */
	incident(m, 7, "now internal", false,
	    OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_IDENTIFIED, NOW);
	p = render(m, NOW);
	assert_null(strstr(body(p, "/api/v2/incidents.json"), "INC-7"));
	status_pages_free(p);
	status_model_close(m);
}

static const char *
comp_status(status_pages *p, const char *id)
{
	static char out[64];
	cJSON *j = json(p, "/api/v2/components.json");
	const cJSON *c;
	out[0] = '\0';
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "components"))
	{
		if (strcmp(str(c, "id"), id) == 0) {
			snprintf(out, sizeof(out), "%s", str(c, "status"));
		}
	}
	cJSON_Delete(j);
	return out;
}

static void
test_states_through_model(void **state)
{
	(void) state;
	status_model *m;
	assert_int_equal(status_model_open(&m, &conf, NULL), 0);
	health(m, "db", "Core", ST(UP), true, NOW - 1000);
	health(m, "api", "Core", ST(UP), true, NOW - 1000);
	health(m, "web", "", ST(DEGRADED), true, NOW - 1000);
	status_pages *p = render(m, NOW);
	assert_string_equal(comp_status(p, "web"), "degraded_performance");
	status_pages_free(p);

	health(m, "db", "Core", ST(DOWN), true, NOW);
	p = render(m, NOW);
	assert_string_equal(comp_status(p, "db"), "partial_outage");
	assert_string_equal(comp_status(p, "group-1"), "partial_outage");
	status_pages_free(p);

	health(m, "api", "Core", ST(DOWN), true, NOW);
	health(m, "web", "", ST(DOWN), true, NOW);
	p = render(m, NOW);
	assert_string_equal(comp_status(p, "db"), "major_outage");
	assert_string_equal(comp_status(p, "web"), "major_outage");
	assert_non_null(strstr(
	    body(p, "/api/v2/status.json"), "\"indicator\":\"critical\""));
	assert_non_null(strstr(body(p, "/badge/db.svg"), "major outage"));
	status_pages_free(p);

	/* An older fact (a stale snapshot) does not undo a newer one. */
	health(m, "web", "", ST(UP), true, NOW - 5000);
	health(m, "api", "Core", ST(MAINTENANCE), true, NOW + 1);
	p = render(m, NOW);
	assert_string_equal(comp_status(p, "web"), "major_outage");
	assert_string_equal(comp_status(p, "api"), "under_maintenance");
	status_pages_free(p);
	status_model_close(m);
}

/* A target the snapshot listed as never checked (its "since" is our
 * clock) takes its first real state even when the prober observed it a
 * moment before our clock said: an observation beats "unknown", while an
 * older real state still does not undo a newer one. */
static void
test_first_state_beats_never_checked(void **state)
{
	(void) state;
	status_model *m;
	assert_int_equal(status_model_open(&m, &conf, NULL), 0);
	health(m, "web", "", ST(UNKNOWN), true, 0);
	status_pages *p = render(m, od_now_ms() + 1000);
	assert_non_null(strstr(body(p, "/"), "class=\"st st-nodata\""));
	status_pages_free(p);

	health(m, "web", "", ST(UP), true, od_now_ms() - 500);
	p = render(m, od_now_ms() + 1000);
	assert_null(strstr(body(p, "/"), "class=\"st st-nodata\""));
	assert_string_equal(comp_status(p, "web"), "operational");
	status_pages_free(p);

	health(m, "web", "", ST(DOWN), true, od_now_ms() - 5000);
	p = render(m, od_now_ms() + 1000);
	assert_string_equal(comp_status(p, "web"), "operational");
	status_pages_free(p);
	status_model_close(m);
}

/* A regional target's affected locations change without a transition
 * (health.affected): the page follows, its state and "since" stay. */
static void
test_affected_locations_change(void **state)
{
	(void) state;
	status_model *m;
	char *one[] = { "eu-west" }, *two[] = { "eu-west", "us-east" };
	Opsdesk__V1__HealthChanged hc = OPSDESK__V1__HEALTH_CHANGED__INIT;
	Opsdesk__V1__HealthAffected ha = OPSDESK__V1__HEALTH_AFFECTED__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	assert_int_equal(status_model_open(&m, &conf, NULL), 0);
	hc.target_id = "web";
	hc.name = "Web shop";
	hc.group = "";
	hc.old_state = ST(UP);
	hc.new_state = ST(DEGRADED);
	hc.public_ = true;
	hc.at_ms = NOW - 60000;
	hc.n_affected_locations = 1;
	hc.affected_locations = one;
	assert_int_equal(status_model_health_changed(m, &hc), 0);
	status_pages *p = render(m, NOW);
	assert_non_null(
	    strstr(body(p, "/"), "Partial outage: affects users in eu-west<"));
	status_pages_free(p);

	/* Through the bus dispatch, as the service gets it. */
	uint64_t v = status_model_version(m);
	ha.target_id = "web";
	ha.name = "Web shop";
	ha.group = "";
	ha.state = ST(DEGRADED);
	ha.public_ = true;
	ha.since_ms = NOW - 60000;
	ha.at_ms = NOW - 1000;
	ha.n_affected_locations = 2;
	ha.affected_locations = two;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_HEALTH_AFFECTED;
	env.health_affected = &ha;
	assert_int_equal(status_model_event(m, &env), 0);
	assert_true(status_model_version(m) > v);
	p = render(m, NOW);
	assert_non_null(strstr(body(p, "/"),
	    "Partial outage: affects users in eu-west, us-east<"));
	assert_string_equal(comp_status(p, "web"), "partial_outage");
	status_pages_free(p);

	/* The same set again changes nothing. */
	v = status_model_version(m);
	assert_int_equal(status_model_event(m, &env), 0);
	assert_int_equal(status_model_version(m), v);

	/* None left (the decider says so while still degraded): the note
	 * goes, the state stays. */
	ha.n_affected_locations = 0;
	ha.affected_locations = NULL;
	assert_int_equal(status_model_event(m, &env), 0);
	p = render(m, NOW);
	assert_null(strstr(body(p, "/"), "Partial outage"));
	assert_string_equal(comp_status(p, "web"), "degraded_performance");
	status_pages_free(p);
	ha.target_id = "";
	assert_int_equal(status_model_health_affected(m, &ha), OD_EINVAL);
	status_model_close(m);
}

static void
test_maintenance_window_applies(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	/* During the window its public component is under maintenance. */
	status_pages *p = render(m, NOW + 3600000 + 1);
	assert_string_equal(comp_status(p, "api"), "under_maintenance");
	cJSON *j = json(p, "/api/v2/scheduled-maintenances/active.json");
	assert_int_equal(cJSON_GetArraySize(
	                     cJSON_GetObjectItem(j, "scheduled_maintenances")),
	    1);
	cJSON_Delete(j);
	status_pages_free(p);

	Opsdesk__V1__MaintenanceWindow w
	    = OPSDESK__V1__MAINTENANCE_WINDOW__INIT;
	w.id = 3;
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_CANCELLED;
	w.updated_ms = NOW;
	assert_int_equal(status_model_maintenance(m, &w), 0);
	p = render(m, NOW + 3600000 + 1);
	assert_string_equal(comp_status(p, "api"), "operational");
	assert_null(
	    strstr(body(p, "/api/v2/scheduled-maintenances.json"), "MNT-3"));
	status_pages_free(p);
	status_model_close(m);
}

static void
test_conditional_get(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	status_site site;
	status_answer a;
	assert_int_equal(status_site_init(&site), 0);
	status_site_swap(&site, render(m, NOW));

	assert_int_equal(
	    status_site_answer(&site, "/api/v2/summary.json", NULL, NULL, &a),
	    0);
	assert_int_equal(a.status, 200);
	assert_non_null(a.body);
	assert_string_equal(a.content_type, "application/json; charset=utf-8");
	assert_non_null(strstr(a.cache_control, "max-age"));
	char etag[24], lm[40];
	strcpy(etag, a.etag);
	strcpy(lm, a.last_modified);
	status_pages_free(a.hold);

	assert_int_equal(
	    status_site_answer(&site, "/api/v2/summary.json", etag, NULL, &a),
	    0);
	assert_int_equal(a.status, 304);
	assert_null(a.body);
	char list[64];
	snprintf(list, sizeof(list), "\"nope\", W/%s", etag);
	assert_int_equal(
	    status_site_answer(&site, "/api/v2/summary.json", list, NULL, &a),
	    0);
	assert_int_equal(a.status, 304);
	assert_int_equal(status_site_answer(&site, "/api/v2/summary.json",
	                     "\"0000\"", NULL, &a),
	    0);
	assert_int_equal(a.status, 200);
	status_pages_free(a.hold);
	assert_int_equal(
	    status_site_answer(&site, "/history.rss", NULL, lm, &a), 0);
	assert_int_equal(a.status, 304);
	assert_int_equal(status_site_answer(&site, "/history.rss", NULL,
	                     "Thu, 01 Jan 2015 00:00:00 GMT", &a),
	    0);
	assert_int_equal(a.status, 200);
	status_pages_free(a.hold);
	assert_int_equal(
	    status_site_answer(&site, "/nothing-here", NULL, NULL, &a), 0);
	assert_int_equal(a.status, 404);

	/* Same model, same bytes, same ETag; a change changes it. */
	status_site_swap(&site, render(m, NOW));
	assert_int_equal(
	    status_site_answer(&site, "/api/v2/summary.json", etag, NULL, &a),
	    0);
	assert_int_equal(a.status, 304);
	assert_null(a.hold);
	/* An answer being sent keeps its set alive across swaps (ASan
	 * would see the bytes freed under it). */
	status_answer held;
	assert_int_equal(status_site_answer(
	                     &site, "/api/v2/summary.json", NULL, NULL, &held),
	    0);
	assert_non_null(held.hold);
	health(m, "db", "Core", ST(DEGRADED), true, NOW);
	status_site_swap(&site, render(m, NOW));
	assert_int_equal(
	    status_site_answer(&site, "/api/v2/summary.json", etag, NULL, &a),
	    0);
	assert_int_equal(a.status, 200);
	assert_ptr_not_equal(a.hold, held.hold);
	assert_null(strstr(held.body, "degraded_performance"));
	assert_non_null(strstr(a.body, "degraded_performance"));
	status_pages_free(held.hold);
	status_pages_free(a.hold);

	int64_t ms;
	assert_int_equal(status_http_date_parse(lm, &ms), 0);
	char again[40];
	status_http_date(ms, again, sizeof(again));
	assert_string_equal(again, lm);
	assert_int_equal(status_http_date_parse("yesterday", &ms), OD_EINVAL);
	status_site_fini(&site);
	status_model_close(m);
}

static void
test_restart_same_output(void **state)
{
	(void) state;
	char dir[] = "/tmp/status_render_test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	store_options so = { 0 };
	so.path = dir;
	so.dbs = status_model_dbs;
	so.nosync = true;
	store *st;
	assert_int_equal(store_open(&st, &so), 0);
	status_model *m = scene(st);
	Opsdesk__V1__HealthResult hr = OPSDESK__V1__HEALTH_RESULT__INIT;
	hr.target_id = "db";
	hr.ok = false;
	hr.observed = ST(DOWN);
	hr.at_ms = NOW - 60000;
	assert_int_equal(status_model_health_result(m, &hr), 0);
	status_pages *before = render(m, NOW);
	status_model_close(m);
	store_close(st);

	assert_int_equal(store_open(&st, &so), 0);
	assert_int_equal(status_model_open(&m, &conf, st), 0);
	status_pages *after = render(m, NOW);
	static const char *const paths[] = { "/", "/api/v2/summary.json",
		"/api/v2/incidents.json", "/history.rss", "/history.atom",
		"/badge/db/uptime.svg" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_string_equal(
		    body(before, paths[i]), body(after, paths[i]));
	}
	/* The failed check shows in today's bar. */
	assert_non_null(strstr(body(after, "/badge/db/uptime.svg"), "0%"));
	status_pages_free(before);
	status_pages_free(after);
	status_model_close(m);
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* An automatic incident as incident-service wrote it before the public
 * templates: the probe's error in public entries. */
#define RAW_DOWN                                                              \
	"Web application is down: Failed to connect to 10.1.2.3 port 45370 "  \
	"after 0 ms: Couldn't connect to server. Opened automatically."
#define RAW_UP                                                                \
	"Web application is up: HTTP 200 from "                               \
	"https://admin:hunter2@web.internal.example:8443/health."

static void
old_automatic(Opsdesk__V1__Incident *in, Opsdesk__V1__TimelineEntry *e,
    Opsdesk__V1__TimelineEntry **tl, Opsdesk__V1__AffectedComponent *ac,
    Opsdesk__V1__AffectedComponent **acs, uint64_t id, int64_t at)
{
	static const char *const texts[4] = {
		RAW_DOWN, RAW_UP,
		"Recovered and stable; resolved automatically.",
		"Web application is slow because of a bad deploy; rolled back."
	};
	static const Opsdesk__V1__IncidentStatus st[4] = {
		OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING,
		OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING,
		OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED,
		OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING,
	};
	opsdesk__v1__incident__init(in);
	opsdesk__v1__affected_component__init(ac);
	ac->component_id = "db";
	ac->name = "Web application";
	ac->state = ST(DOWN);
	acs[0] = ac;
	for (int k = 0; k < 4; k++) {
		opsdesk__v1__timeline_entry__init(&e[k]);
		e[k].at_ms = at + k * 1000;
		e[k].status = st[k];
		e[k].text = (char *) texts[k];
		e[k].public_ = true;
		tl[k] = &e[k];
	}
	e[3].author_id = 42; /* a person's update */
	in->id = id;
	in->title = "Web application is down";
	in->severity = OPSDESK__V1__SEVERITY__SEVERITY_HIGH;
	in->status = OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED;
	in->automatic = true;
	in->components = acs;
	in->n_components = 1;
	in->timeline = tl;
	in->n_timeline = 4;
	in->created_ms = at;
	in->updated_ms = in->resolved_ms = at + 4000;
	in->public_ = true;
}

static void
assert_no_probe_words(status_pages *p)
{
	static const char *const paths[] = { "/", "/api/v2/summary.json",
		"/api/v2/incidents.json", "/history.rss", "/history.atom" };
	static const char *const raw[]
	    = { "10.1.2.3", "45370", "hunter2", "internal.example", "8443",
		      "Failed to connect", "Opened automatically" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (size_t k = 0; k < sizeof(raw) / sizeof(raw[0]); k++) {
			if (strstr(body(p, paths[i]), raw[k]) != NULL) {
				fail_msg("%s shows %s", paths[i], raw[k]);
			}
		}
	}
	const char *inc = body(p, "/api/v2/incidents.json");
	assert_non_null(
	    strstr(inc, "We are investigating an outage of Web application."));
	assert_non_null(strstr(inc, "Web application has recovered. A fix"));
	assert_non_null(strstr(inc, "Recovered and stable"));
}

static store *raw_store;

static bool
has_bytes(const MDB_val *v, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i + n <= v->mv_size; i++) {
		if (memcmp((const char *) v->mv_data + i, s, n) == 0) {
			return true;
		}
	}
	return false;
}

static int
put_raw(store_txn *t, void *arg)
{
	Opsdesk__V1__Incident *in = arg;
	uint8_t key[8];
	store_key_u64(key, in->id);
	return store_put_pb(
	    t, store_db(raw_store, 1 /* "incidents" */), key, 8, &in->base);
}

static void
test_old_incidents_reworded(void **state)
{
	(void) state;
	Opsdesk__V1__Incident in;
	Opsdesk__V1__TimelineEntry e[4], *tl[4];
	Opsdesk__V1__AffectedComponent ac, *acs[1];
	old_automatic(&in, e, tl, &ac, acs, 21, NOW - 7200000);

	/* Sent as it is by an incident-service that stored it so: the
	 * system's entries take the templates' words, a person's stays. */
	status_model *m = scene(NULL);
	assert_int_equal(status_model_incident(m, &in), 0);
	status_pages *p = render(m, NOW);
	assert_no_probe_words(p);
	assert_non_null(
	    strstr(body(p, "/api/v2/incidents.json"), "a bad deploy"));
	status_pages_free(p);
	status_model_close(m);

	/* Stored by status-publisher before the templates (authors were
	 * never stored): reworded when the model opens, and rewritten. */
	char dir[] = "/tmp/status_render_test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	store_options so = { 0 };
	so.path = dir;
	so.dbs = status_model_dbs;
	so.nosync = true;
	store *st;
	assert_int_equal(store_open(&st, &so), 0);
	m = scene(st);
	status_model_close(m);
	e[3].author_id = 0;
	in.id = 22;
	raw_store = st;
	assert_int_equal(store_write(st, put_raw, &in), 0);
	assert_int_equal(status_model_open(&m, &conf, st), 0);
	p = render(m, NOW);
	assert_no_probe_words(p);
	status_pages_free(p);
	status_model_close(m);
	MDB_txn *txn;
	MDB_val v;
	uint8_t key[8];
	store_key_u64(key, 22);
	assert_int_equal(store_read_begin(st, &txn), 0);
	assert_int_equal(store_get(txn, store_db(st, 1), key, 8, &v), 0);
	assert_false(has_bytes(&v, "10.1.2.3"));
	assert_true(has_bytes(&v, "an outage of"));
	store_read_end(txn);
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_history_is_bounded(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	size_t len[2];
	for (int round = 0; round < 2; round++) {
		int n = round == 0 ? 60 : 600;
		for (int i = 0; i < n; i++) {
			incident(m, 1000 + (uint64_t) i, "old trouble", true,
			    OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED,
			    NOW - 86400000LL * 20 + i * 1000);
		}
		status_pages *p = render(m, NOW);
		cJSON *j = json(p, "/api/v2/incidents.json");
		/* The 50 newest resolved ones, plus the open one. */
		assert_int_equal(
		    cJSON_GetArraySize(cJSON_GetObjectItem(j, "incidents")),
		    STATUS_KEEP_INCIDENTS + 1);
		cJSON_Delete(j);
		len[round] = status_pages_find(p, "/history.rss")->len;
		status_pages_free(p);
	}
	assert_int_equal(len[0], len[1]);
	status_model_close(m);
}

static void
test_changes(void **state)
{
	(void) state;
	status_model *m;
	status_changes ch;
	assert_int_equal(status_model_open(&m, &conf, NULL), 0);
	health(m, "db", "", ST(UP), true, NOW - 1000);
	health(m, "secret", "", ST(UP), false, NOW - 1000);
	/* The first look only records what is shown. */
	assert_int_equal(status_model_take_changes(m, NOW, &ch), 0);
	assert_false(ch.any);
	status_changes_fini(&ch);

	health(m, "db", "", ST(DOWN), true, NOW);
	health(m, "secret", "", ST(DOWN), false, NOW);
	assert_int_equal(status_model_take_changes(m, NOW, &ch), 0);
	assert_true(ch.any);
	assert_int_equal(ch.n, 1);
	assert_string_equal(ch.items[0].id, "db");
	assert_string_equal(ch.items[0].old_status, "operational");
	assert_string_equal(ch.items[0].new_status, "major_outage");
	assert_int_equal(ch.old_indicator, STATUS_IND_NONE);
	assert_int_equal(ch.indicator, STATUS_IND_CRITICAL);
	status_changes_fini(&ch);

	/* Nothing new: nothing to announce. */
	assert_int_equal(status_model_take_changes(m, NOW, &ch), 0);
	assert_false(ch.any);
	status_changes_fini(&ch);
	status_model_close(m);
}

static void
test_uptime_and_bars(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	Opsdesk__V1__TargetStatus ts = OPSDESK__V1__TARGET_STATUS__INIT;
	Opsdesk__V1__TargetHistory h = OPSDESK__V1__TARGET_HISTORY__INIT;
	Opsdesk__V1__DailyBar bars[3];
	Opsdesk__V1__DailyBar *bp[3];
	int64_t today = NOW - NOW % STATUS_DAY_MS;
	for (int i = 0; i < 3; i++) {
		opsdesk__v1__daily_bar__init(&bars[i]);
		bars[i].day_ms = today - (2 - i) * STATUS_DAY_MS;
		bars[i].checks = 100;
		bars[i].failures = i == 1 ? 50 : 0;
		bars[i].uptime = i == 1 ? 50 : 100;
		bp[i] = &bars[i];
	}
	ts.id = "api";
	h.target = &ts;
	h.daily = bp;
	h.n_daily = 3;
	h.uptime_30d = 83.3;
	h.uptime_90d = 83.3;
	assert_int_equal(status_model_history(m, &h), 0);
	status_pages *p = render(m, NOW);
	/* 250 of 300 checks passed. */
	assert_non_null(strstr(body(p, "/badge/api/uptime.svg"), "83.33%"));
	assert_non_null(strstr(body(p, "/badge/db/uptime.svg"), "no data"));
	const char *html = body(p, "/");
	assert_non_null(strstr(html, "50.00% up, 100 checks, 50 failed"));
	assert_non_null(strstr(html, "no data"));
	status_pages_free(p);

	/* The prober's day aggregates lag its results: a history without
	 * today keeps the bar the results built. */
	for (int i = 0; i < 4; i++) {
		Opsdesk__V1__HealthResult hr
		    = OPSDESK__V1__HEALTH_RESULT__INIT;
		hr.target_id = "db";
		hr.ok = i != 0;
		hr.at_ms = NOW - 1000 * i;
		assert_int_equal(status_model_health_result(m, &hr), 0);
	}
	ts.id = "db";
	h.daily = bp;
	h.n_daily = 2; /* the two days before today */
	assert_int_equal(status_model_history(m, &h), 0);
	p = render(m, NOW);
	html = body(p, "/");
	assert_non_null(strstr(html, "75.00% up, 4 checks, 1 failed"));
	/* 100 + 50 + 3 of 204 checks. */
	assert_non_null(strstr(body(p, "/badge/db/uptime.svg"), "75.00%"));
	status_pages_free(p);

	char buf[16];
	status_format_uptime(99.999, buf, sizeof(buf));
	assert_string_equal(buf, "99.99%");
	status_format_uptime(100, buf, sizeof(buf));
	assert_string_equal(buf, "100%");
	status_format_uptime(-1, buf, sizeof(buf));
	assert_string_equal(buf, "no data");
	status_model_close(m);
}

static void
test_conf_errors(void **state)
{
	(void) state;
	char err[256];
	status_conf c;
	cJSON *sec = cJSON_Parse("{\"components\":[{\"name\":\"x\"}]}");
	assert_int_equal(
	    status_conf_parse(sec, &c, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "status_page.components[0]"));
	cJSON_Delete(sec);
	sec = cJSON_Parse("{\"title\":5}");
	assert_int_equal(
	    status_conf_parse(sec, &c, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "title"));
	cJSON_Delete(sec);
	sec = cJSON_Parse("{\"templates\":{\"down\":\"\"}}");
	assert_int_equal(
	    status_conf_parse(sec, &c, err, sizeof(err)), OD_EINVAL);
	assert_non_null(strstr(err, "status_page.templates.down"));
	cJSON_Delete(sec);
	sec = cJSON_Parse("{\"templates\":{\"resolved\":\"Fine: {component}"
	                  "\"}}");
	assert_int_equal(status_conf_parse(sec, &c, err, sizeof(err)), 0);
	assert_string_equal(
	    c.templates[STATUS_TMPL_RESOLVED], "Fine: {component}");
	assert_null(c.templates[STATUS_TMPL_DOWN]);
	status_conf_fini(&c);
	cJSON_Delete(sec);
	assert_int_equal(status_conf_parse(NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.title, "opsdesk status");
	status_conf_fini(&c);
}

/* A tiny arena for status_summary_fill: everything freed at once. */
typedef struct arena {
	void *blocks[1024];
	size_t n;
} arena;

static void *
arena_alloc(void *arg, size_t size)
{
	arena *a = arg;
	if (a->n == sizeof(a->blocks) / sizeof(a->blocks[0])) {
		return NULL;
	}
	return a->blocks[a->n++] = calloc(1, size);
}

typedef struct summary_args {
	arena *a;
	Opsdesk__V1__StatusSummary *sum;
} summary_args;

static int
summary_cb(const status_view *v, void *arg)
{
	summary_args *sa = arg;
	return status_summary_fill(v, sa->sum, arena_alloc, sa->a);
}

static void
test_summary_fill(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	arena a = { .n = 0 };
	Opsdesk__V1__StatusSummary sum = OPSDESK__V1__STATUS_SUMMARY__INIT;
	summary_args sa = { &a, &sum };
	/* During the maintenance window. */
	assert_int_equal(
	    status_model_with_view(m, NOW + 3600000 + 1, summary_cb, &sa), 0);
	status_model_close(m); /* the summary outlives the view */

	assert_string_equal(sum.indicator, "major");
	assert_string_equal(sum.page_url, "https://status.example.com");
	assert_string_equal(sum.page_name, "Ops <&> \"Status\"");
	assert_int_equal(sum.n_components, 2);
	assert_string_equal(sum.components[0]->id, "db");
	assert_string_equal(
	    sum.components[0]->description, "Primary database");
	assert_int_equal(sum.components[0]->position, 1);
	assert_string_equal(sum.components[1]->status, "under_maintenance");
	assert_int_equal(sum.n_incidents, 1);
	assert_int_equal(sum.incidents[0]->id, 7);
	assert_string_equal(
	    sum.incidents[0]->latest_update, HOSTILE " update");
	assert_string_equal(sum.incidents[0]->impact, "major");
	assert_int_equal(sum.incidents[0]->n_components, 1); /* not secret */
	assert_int_equal(sum.n_maintenance, 1);
	assert_int_equal(sum.maintenance[0]->status,
	    OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS);
	assert_int_equal(sum.maintenance[0]->n_components, 1);
	assert_int_equal(sum.maintenance[0]->created_by, 0);
	/* It packs: the rpc layer can send it. */
	size_t len = opsdesk__v1__status_summary__get_packed_size(&sum);
	uint8_t *buf = malloc(len);
	opsdesk__v1__status_summary__pack(&sum, buf);
	Opsdesk__V1__StatusSummary *back
	    = opsdesk__v1__status_summary__unpack(NULL, len, buf);
	assert_non_null(back);
	assert_int_equal(back->n_components, 2);
	opsdesk__v1__status_summary__free_unpacked(back, NULL);
	free(buf);
	for (size_t i = 0; i < a.n; i++) {
		free(a.blocks[i]);
	}
}

/* The banner follows the components: after a recovery the incident in
 * monitoring no longer claims an outage; a component the prober has not
 * settled on shows "No data", not Operational beside a red bar. */
static void
test_truthful_banner_and_no_data(void **state)
{
	(void) state;
	status_model *m;
	assert_int_equal(status_model_open(&m, &conf, NULL), 0);
	health(m, "db", "Core", ST(DOWN), true, NOW - 7200000);
	health(m, "api", "Core", ST(UP), true, NOW - 7200000);
	incident(m, 7, "Database is down", true,
	    OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_INVESTIGATING,
	    NOW - 3600000);
	status_pages *p = render(m, NOW);
	const char *html = body(p, "/");
	assert_non_null(strstr(html, "Partial System Outage"));
	assert_null(strstr(html, "we are monitoring"));
	/* The day's bar names its incident, for keyboard and screen
	 * readers too. */
	assert_non_null(strstr(html,
	    "tabindex=\"0\" aria-label=\"2026-11-27: no data, 1 incident\""));
	assert_non_null(strstr(html, "aria-label=\"2026-11-26: no data\""));
	status_pages_free(p);

	health(m, "db", "Core", ST(UP), true, NOW - 600000);
	incident(m, 7, "Database is down", true,
	    OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING,
	    NOW - 500000);
	p = render(m, NOW);
	html = body(p, "/");
	assert_non_null(strstr(html,
	    "<div class=\"banner ind-none\">All Systems Operational<div "
	    "class=\"sub\">A fix has been implemented and we are "
	    "monitoring the results.</div></div>"));
	assert_non_null(
	    strstr(body(p, "/api/v2/status.json"), "\"indicator\":\"none\""));
	assert_non_null(strstr(html, "monitoring &middot; "));
	assert_non_null(
	    strstr(body(p, "/badge.svg"), "All Systems Operational"));
	/* No bot configured: the feeds only. */
	assert_null(strstr(html, "t.me/"));
	assert_non_null(
	    strstr(html, "Subscribe to updates: <a href=\"/history.rss\""));
	status_pages_free(p);

	/* A new component with one failed check but no verdict yet. */
	Opsdesk__V1__HealthChanged hc = OPSDESK__V1__HEALTH_CHANGED__INIT;
	hc.target_id = "web";
	hc.name = "Web";
	hc.new_state = ST(UNKNOWN);
	hc.public_ = true;
	hc.at_ms = NOW - 1000;
	assert_int_equal(status_model_health_changed(m, &hc), 0);
	Opsdesk__V1__HealthResult hr = OPSDESK__V1__HEALTH_RESULT__INIT;
	hr.target_id = "web";
	hr.ok = false;
	hr.at_ms = NOW - 500;
	assert_int_equal(status_model_health_result(m, &hr), 0);
	conf.bot_username = "opsdesk_bot";
	p = render(m, NOW);
	conf.bot_username = NULL;
	html = body(p, "/");
	const char *web = strstr(html, "id=\"c-web\"");
	assert_non_null(web);
	assert_non_null(
	    strstr(web, "<span class=\"st st-nodata\">No data</span>"));
	assert_null(strstr(web, "b-bad"));
	assert_non_null(strstr(web, "No data yet"));
	assert_non_null(strstr(body(p, "/badge/web/uptime.svg"), "no data"));
	assert_non_null(strstr(
	    html, "<a href=\"https://t.me/opsdesk_bot?start=subscribe\""));
	status_pages_free(p);
	status_model_close(m);
}

/* Points for the chart tests: checks 0 where ms is 0 (a gap). */
static size_t
points(Opsdesk__V1__LatencyPoint *pt, Opsdesk__V1__LatencyPoint **pp,
    const uint32_t *ms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		opsdesk__v1__latency_point__init(&pt[i]);
		pt[i].start_ms = NOW - (int64_t) (n - i) * STATUS_DAY_MS;
		pt[i].checks = ms[i] ? 10 : 0;
		pt[i].p50_ms = ms[i];
		pt[i].p95_ms = ms[i] * 2;
		pp[i] = &pt[i];
	}
	return n;
}

static size_t
count_of(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) {
		n++;
	}
	return n;
}

static void
test_chart(void **state)
{
	(void) state;
	Opsdesk__V1__LatencyPoint pt[30], *pp[30];
	sbuf b = SBUF_INIT;
	uint32_t ms[30] = { 0 };

	/* Empty, and all gaps: no chart at all. */
	assert_false(status_render_chart(NULL, 0, "x", &b));
	points(pt, pp, ms, 30);
	assert_false(status_render_chart(
	    (const Opsdesk__V1__LatencyPoint *const *) pp, 30, "x", &b));
	assert_int_equal(b.len, 0);

	/* One point: a dot per line, labelled, scale rounded up. */
	ms[29] = 120;
	points(pt, pp, ms, 30);
	assert_true(status_render_chart(
	    (const Opsdesk__V1__LatencyPoint *const *) pp, 30, "Web <&>", &b));
	const char *svg = sbuf_str(&b);
	assert_non_null(
	    strstr(svg, "<svg class=\"rt\" viewBox=\"0 0 600 40\""));
	assert_non_null(strstr(svg,
	    "aria-label=\"Web &lt;&amp;&gt;: latest p50 120 ms, p95 240 ms, "
	    "peak 240 ms\""));
	assert_non_null(strstr(svg, "(0 to 500 ms)</title>"));
	/* A dash across the last of 30 slices (20 units wide). */
	assert_non_null(strstr(svg, "<path class=\"p50\" d=\"M581.0 "));
	assert_non_null(strstr(svg, "H599.0\"/></svg>"));
	assert_int_equal(count_of(strstr(svg, "class=\"p95\""), "H"), 2);
	assert_null(strstr(svg, "<script"));
	sbuf_free(&b);

	/* Gaps split the lines: 3 runs of data, one of them a lone day. */
	uint32_t gappy[30] = { 0 };
	for (int i = 0; i < 30; i++) {
		gappy[i] = (i < 10 || (i > 12 && i < 20) || i == 25)
		    ? (uint32_t) (100 + i)
		    : 0;
	}
	points(pt, pp, gappy, 30);
	b = (sbuf) SBUF_INIT;
	assert_true(status_render_chart(
	    (const Opsdesk__V1__LatencyPoint *const *) pp, 30, "API", &b));
	svg = sbuf_str(&b);
	const char *p50 = strstr(svg, "class=\"p50\"");
	assert_non_null(p50);
	assert_int_equal(count_of(p50, "M"), 3);
	assert_int_equal(count_of(p50, "L"), 9 + 6);
	assert_int_equal(count_of(p50, "H"), 1);
	sbuf_free(&b);

	/* 30 full days: one run of 30 points per line, small. */
	for (int i = 0; i < 30; i++) {
		ms[i] = (uint32_t) (50 + 7 * i);
	}
	points(pt, pp, ms, 30);
	b = (sbuf) SBUF_INIT;
	assert_true(status_render_chart(
	    (const Opsdesk__V1__LatencyPoint *const *) pp, 30, "API", &b));
	svg = sbuf_str(&b);
	assert_int_equal(count_of(strstr(svg, "class=\"p95\""), "M"), 2);
	assert_int_equal(count_of(svg, "L"), 2 * 29);
	assert_non_null(strstr(svg, "(0 to 1000 ms)"));
	assert_true(b.len < 1200);
	sbuf_free(&b);
}

/* The charts reach the page, the JSON extension and the chat summary. */
static void
test_latency_through_model(void **state)
{
	(void) state;
	status_model *m = scene(NULL);
	Opsdesk__V1__TargetStatus ts = OPSDESK__V1__TARGET_STATUS__INIT;
	Opsdesk__V1__TargetHistory h = OPSDESK__V1__TARGET_HISTORY__INIT;
	Opsdesk__V1__LatencyPoint pt[30], *pp[30];
	uint32_t ms[30] = { 0 };
	ms[28] = 80;
	ms[29] = 90;
	points(pt, pp, ms, 30);
	ts.id = "api";
	h.target = &ts;
	h.latency_24h = pp;
	h.n_latency_24h = 30;
	h.latency_30d = pp;
	h.n_latency_30d = 30;
	assert_int_equal(status_model_history(m, &h), 0);
	Opsdesk__V1__HealthResult hr = OPSDESK__V1__HEALTH_RESULT__INIT;
	hr.target_id = "api";
	hr.ok = true;
	hr.latency_ms = 42;
	hr.at_ms = NOW - 1000;
	assert_int_equal(status_model_health_result(m, &hr), 0);
	status_pages *p = render(m, NOW);
	const char *api = strstr(body(p, "/"), "id=\"c-api\"");
	assert_non_null(api);
	assert_non_null(strstr(api, "last check 42 ms"));
	assert_non_null(
	    strstr(api, "aria-label=\"api response time, last 24 hours"));
	assert_non_null(strstr(api, "<details><summary>7 and 30 days"));
	assert_null(strstr(body(p, "/"), "db response time"));
	cJSON *j = json(p, "/api/v2/components.json");
	const cJSON *c;
	bool seen = false;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "components"))
	{
		const cJSON *rt
		    = cJSON_GetObjectItem(c, "opsdesk_response_time");
		if (strcmp(str(c, "id"), "api") == 0) {
			seen = true;
			assert_int_equal(
			    cJSON_GetObjectItem(rt, "current_ms")->valueint,
			    42);
			const cJSON *w = cJSON_GetObjectItem(rt, "24h");
			assert_int_equal(
			    cJSON_GetObjectItem(w, "slice_seconds")->valueint,
			    86400);
			const cJSON *p50 = cJSON_GetObjectItem(w, "p50_ms");
			assert_int_equal(cJSON_GetArraySize(p50), 30);
			assert_true(cJSON_IsNull(cJSON_GetArrayItem(p50, 0)));
			assert_int_equal(
			    cJSON_GetArrayItem(p50, 29)->valueint, 90);
			assert_true(
			    cJSON_IsNull(cJSON_GetObjectItem(rt, "7d")));
		} else if (strcmp(str(c, "id"), "db") == 0) {
			assert_true(cJSON_IsNull(rt));
		}
	}
	assert_true(seen);
	cJSON_Delete(j);
	status_pages_free(p);

	/* Down: no chart, no last-check latency from before the outage,
	 * on the page, in the JSON and in the chat summary. */
	health(m, "api", "Core", ST(DOWN), true, NOW - 500);
	p = render(m, NOW);
	api = strstr(body(p, "/"), "id=\"c-api\"");
	assert_non_null(api);
	const char *next = strstr(api + 1, "class=\"comp");
	size_t len = next != NULL ? (size_t) (next - api) : strlen(api);
	char *block = strndup(api, len);
	assert_non_null(strstr(block, "Response time"));
	assert_non_null(strstr(block, "not responding"));
	assert_null(strstr(block, "<svg"));
	assert_null(strstr(block, "response time, last"));
	assert_null(strstr(block, "42 ms"));
	free(block);
	assert_null(strstr(body(p, "/"), "api response time"));
	j = json(p, "/api/v2/components.json");
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "components"))
	{
		if (strcmp(str(c, "id"), "api") == 0) {
			const cJSON *rt
			    = cJSON_GetObjectItem(c, "opsdesk_response_time");
			assert_true(cJSON_IsNull(
			    cJSON_GetObjectItem(rt, "current_ms")));
		}
	}
	cJSON_Delete(j);
	status_pages_free(p);
	arena a = { .n = 0 };
	Opsdesk__V1__StatusSummary sum = OPSDESK__V1__STATUS_SUMMARY__INIT;
	summary_args sa = { &a, &sum };
	assert_int_equal(status_model_with_view(m, NOW, summary_cb, &sa), 0);
	for (size_t i = 0; i < sum.n_components; i++) {
		if (strcmp(sum.components[i]->id, "api") == 0) {
			assert_false(sum.components[i]->has_latency);
		}
	}
	for (size_t i = 0; i < a.n; i++) {
		free(a.blocks[i]);
	}

	/* Back up: the chart returns. */
	health(m, "api", "Core", ST(UP), true, NOW - 100);
	p = render(m, NOW);
	assert_non_null(strstr(body(p, "/"), "api response time, last 24"));
	status_pages_free(p);
	status_model_close(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_shape),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_only_public_facts),
		cmocka_unit_test(test_states_through_model),
		cmocka_unit_test(test_affected_locations_change),
		cmocka_unit_test(test_first_state_beats_never_checked),
		cmocka_unit_test(test_maintenance_window_applies),
		cmocka_unit_test(test_conditional_get),
		cmocka_unit_test(test_restart_same_output),
		cmocka_unit_test(test_old_incidents_reworded),
		cmocka_unit_test(test_history_is_bounded),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_uptime_and_bars),
		cmocka_unit_test(test_conf_errors),
		cmocka_unit_test(test_summary_fill),
		cmocka_unit_test(test_truthful_banner_and_no_data),
		cmocka_unit_test(test_chart),
		cmocka_unit_test(test_latency_through_model),
	};
	return cmocka_run_group_tests(tests, setup_conf, teardown_conf);
}
