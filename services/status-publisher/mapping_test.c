/*
 * Units for mapping.c: prober states and incident severities in
 * Statuspage's vocabulary, and the page's indicator and description.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "status.h"

#define ST(x) OPSDESK__V1__COMPONENT_STATE__COMPONENT_STATE_##x

static void
test_state_mapping(void **state)
{
	(void) state;
	assert_int_equal(status_map_state(ST(UP), false), STATUS_OPERATIONAL);
	assert_int_equal(
	    status_map_state(ST(UNKNOWN), false), STATUS_OPERATIONAL);
	assert_int_equal(
	    status_map_state(ST(DEGRADED), false), STATUS_DEGRADED);
	assert_int_equal(
	    status_map_state(ST(DEGRADED), true), STATUS_DEGRADED);
	/* Down is a major outage alone, a partial one while its group still
	 * has working members. */
	assert_int_equal(status_map_state(ST(DOWN), false), STATUS_MAJOR);
	assert_int_equal(status_map_state(ST(DOWN), true), STATUS_PARTIAL);
	assert_int_equal(
	    status_map_state(ST(MAINTENANCE), false), STATUS_MAINTENANCE);

	assert_string_equal(
	    status_comp_name(STATUS_OPERATIONAL), "operational");
	assert_string_equal(
	    status_comp_name(STATUS_DEGRADED), "degraded_performance");
	assert_string_equal(
	    status_comp_name(STATUS_PARTIAL), "partial_outage");
	assert_string_equal(status_comp_name(STATUS_MAJOR), "major_outage");
	assert_string_equal(
	    status_comp_name(STATUS_MAINTENANCE), "under_maintenance");
	assert_string_equal(status_comp_name((status_comp) 99), "operational");
}

typedef struct overall_case {
	status_comp comps[4];
	size_t n;
	status_indicator incident;
	status_indicator want;
	const char *desc;
} overall_case;

static void
test_overall(void **state)
{
	(void) state;
	static const overall_case cases[] = {
		{ { 0 }, 0, STATUS_IND_NONE, STATUS_IND_NONE,
		    "All Systems Operational" },
		{ { STATUS_OPERATIONAL, STATUS_OPERATIONAL }, 2,
		    STATUS_IND_NONE, STATUS_IND_NONE,
		    "All Systems Operational" },
		{ { STATUS_OPERATIONAL, STATUS_DEGRADED }, 2, STATUS_IND_NONE,
		    STATUS_IND_MINOR, "Partially Degraded Service" },
		{ { STATUS_DEGRADED, STATUS_DEGRADED }, 2, STATUS_IND_NONE,
		    STATUS_IND_MINOR, "Degraded System Service" },
		{ { STATUS_OPERATIONAL, STATUS_PARTIAL }, 2, STATUS_IND_NONE,
		    STATUS_IND_MAJOR, "Partial System Outage" },
		{ { STATUS_OPERATIONAL, STATUS_MAJOR, STATUS_DEGRADED }, 3,
		    STATUS_IND_NONE, STATUS_IND_MAJOR,
		    "Partial System Outage" },
		{ { STATUS_MAJOR, STATUS_MAJOR }, 2, STATUS_IND_NONE,
		    STATUS_IND_CRITICAL, "Major System Outage" },
		/* Maintenance is neither working nor broken. */
		{ { STATUS_MAJOR, STATUS_MAINTENANCE }, 2, STATUS_IND_NONE,
		    STATUS_IND_CRITICAL, "Major System Outage" },
		{ { STATUS_OPERATIONAL, STATUS_MAINTENANCE }, 2,
		    STATUS_IND_NONE, STATUS_IND_NONE,
		    "Service Under Maintenance" },
		/* An open incident raises the indicator above the parts. */
		{ { STATUS_OPERATIONAL }, 1, STATUS_IND_MINOR,
		    STATUS_IND_MINOR, "Minor Service Outage" },
		{ { STATUS_DEGRADED }, 1, STATUS_IND_CRITICAL,
		    STATUS_IND_CRITICAL, "Major System Outage" },
		/* ... and never lowers it. */
		{ { STATUS_MAJOR }, 1, STATUS_IND_MINOR, STATUS_IND_CRITICAL,
		    "Major System Outage" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status_indicator ind;
		const char *desc;
		status_overall(cases[i].comps, cases[i].n, cases[i].incident,
		    &ind, &desc);
		assert_int_equal(ind, cases[i].want);
		assert_string_equal(desc, cases[i].desc);
	}
	assert_string_equal(status_indicator_name(STATUS_IND_NONE), "none");
	assert_string_equal(status_indicator_name(STATUS_IND_MINOR), "minor");
	assert_string_equal(status_indicator_name(STATUS_IND_MAJOR), "major");
	assert_string_equal(
	    status_indicator_name(STATUS_IND_CRITICAL), "critical");
}

static void
test_incident_vocabulary(void **state)
{
	(void) state;
	assert_int_equal(
	    status_impact_of(OPSDESK__V1__SEVERITY__SEVERITY_CRITICAL),
	    STATUS_IND_CRITICAL);
	assert_int_equal(
	    status_impact_of(OPSDESK__V1__SEVERITY__SEVERITY_HIGH),
	    STATUS_IND_MAJOR);
	assert_int_equal(
	    status_impact_of(OPSDESK__V1__SEVERITY__SEVERITY_MEDIUM),
	    STATUS_IND_MINOR);
	assert_int_equal(status_impact_of(OPSDESK__V1__SEVERITY__SEVERITY_LOW),
	    STATUS_IND_NONE);
	assert_string_equal(
	    status_incident_status_name(
	        OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_UNSPECIFIED),
	    "investigating");
	assert_string_equal(
	    status_incident_status_name(
	        OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_IDENTIFIED),
	    "identified");
	assert_string_equal(
	    status_incident_status_name(
	        OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_MONITORING),
	    "monitoring");
	assert_string_equal(
	    status_incident_status_name(
	        OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED),
	    "resolved");
}

static void
test_maintenance_status(void **state)
{
	(void) state;
	Opsdesk__V1__MaintenanceWindow w
	    = OPSDESK__V1__MAINTENANCE_WINDOW__INIT;
	w.start_ms = 1000;
	w.end_ms = 2000;
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_SCHEDULED;
	assert_string_equal(status_maintenance_status(&w, 500), "scheduled");
	/* The clock, not the owner's next event, starts and ends it. */
	assert_string_equal(
	    status_maintenance_status(&w, 1000), "in_progress");
	assert_string_equal(status_maintenance_status(&w, 2000), "completed");
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_IN_PROGRESS;
	assert_string_equal(status_maintenance_status(&w, 500), "in_progress");
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_COMPLETED;
	assert_string_equal(status_maintenance_status(&w, 1500), "completed");
	w.status
	    = OPSDESK__V1__MAINTENANCE_STATUS__MAINTENANCE_STATUS_CANCELLED;
	assert_null(status_maintenance_status(&w, 1500));
}

#define IST(x) OPSDESK__V1__INCIDENT_STATUS__INCIDENT_STATUS_##x

/* What is reworded: the system's entries of automatic incidents in the
 * probe's words; and to which template. */
static void
test_public_rewording(void **state)
{
	status_conf c;
	memset(&c, 0, sizeof(c));
	char out[1200];
	Opsdesk__V1__AffectedComponent ac
	    = OPSDESK__V1__AFFECTED_COMPONENT__INIT;
	Opsdesk__V1__AffectedComponent *acs[1] = { &ac };
	Opsdesk__V1__Incident in = OPSDESK__V1__INCIDENT__INIT;
	Opsdesk__V1__TimelineEntry e = OPSDESK__V1__TIMELINE_ENTRY__INIT;
	ac.name = "API";
	in.components = acs;
	in.n_components = 1;
	in.automatic = true;

	status_template_text(NULL, STATUS_TMPL_DEGRADED, "API", out, 64);
	assert_string_equal(
	    out, "We are investigating degraded performance of API.");
	status_template_text(NULL, STATUS_TMPL_DOWN, "API", out, 20);
	assert_string_equal(out, "We are investigatin"); /* cut, ended */

	e.status = IST(INVESTIGATING);
	e.text = "API is down: connect to 10.0.0.5:8443 refused. Opened "
	         "automatically.";
	assert_true(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	assert_string_equal(out, "We are investigating an outage of API.");
	e.text = "API is degraded: 2300 ms from db-7.internal.";
	assert_true(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	assert_string_equal(
	    out, "We are investigating degraded performance of API.");
	e.status = IST(MONITORING);
	e.text = "API is up: 200 from http://u:p@10.0.0.5/health.";
	assert_true(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	assert_string_equal(out,
	    "API has recovered. A fix has been implemented and we are "
	    "monitoring the results.");
	e.status = IST(RESOLVED);
	assert_true(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	assert_string_equal(out,
	    "This incident has been resolved. API is operating normally.");

	/* Public as they are: other system words, a template's text, a
	 * person's update, a person's incident. */
	e.text = "Recovered and stable; resolved automatically.";
	assert_false(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	e.text = "We are investigating an outage of API.";
	assert_false(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	c.templates[STATUS_TMPL_DOWN] = "{component} is down; we are on it.";
	e.status = IST(INVESTIGATING);
	e.text = "API is down; we are on it.";
	assert_false(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	e.text = "API is down: 10.0.0.5 unreachable.";
	assert_true(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	assert_string_equal(out, "API is down; we are on it.");
	e.author_id = 7;
	assert_false(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	e.author_id = 0;
	in.automatic = false;
	assert_false(status_public_rewording(&c, &in, &e, out, sizeof(out)));
	in.automatic = true;
	ac.name = "Web";
	assert_false(status_public_rewording(&c, &in, &e, out, sizeof(out)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_mapping),
		cmocka_unit_test(test_overall),
		cmocka_unit_test(test_incident_vocabulary),
		cmocka_unit_test(test_maintenance_status),
		cmocka_unit_test(test_public_rewording),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
