/*
 * report.c — a day, week or month: incidents by severity, MTTA, MTTR and
 * SLA compliance from our own store; uptime per component from
 * health-prober and ticket figures from ticket-service. A peer that does
 * not answer in time makes its section say so; the report still comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incident_core.h"
#include "rpc/rpc.h"
#include "store/store.h"

static const char *const period_names[] = { "", "day", "week", "month" };

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int
inc_report_bounds(
    int period, int64_t at_ms, int64_t now, int64_t *from, int64_t *to)
{
	static const int64_t span[]
	    = { 0, INC_DAY_MS, 7 * INC_DAY_MS, 30 * INC_DAY_MS };
	int64_t days, f, t;
	struct tm tm;
	time_t secs;

	if (period < RP_DAY || period > RP_MONTH) {
		return OD_EINVAL;
	}
	if (at_ms == 0) {
		*from = now - span[period];
		*to = now;
		return 0;
	}
	days = floor_div(at_ms, INC_DAY_MS);
	switch (period) {
	case RP_DAY:
		f = days * INC_DAY_MS;
		t = f + INC_DAY_MS;
		break;
	case RP_WEEK:
		/* ISO weeks start on Monday; 1970-01-01 was a Thursday. */
		f = (floor_div(days + 3, 7) * 7 - 3) * INC_DAY_MS;
		t = f + 7 * INC_DAY_MS;
		break;
	default:
		secs = (time_t) (days * 86400);
		gmtime_r(&secs, &tm);
		tm.tm_mday = 1;
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		f = (int64_t) timegm(&tm) * 1000;
		tm.tm_mon++;
		t = (int64_t) timegm(&tm) * 1000;
		break;
	}
	*from = f;
	*to = t;
	return 0;
}

void
inc_report_add(inc_report_acc *acc, const inc_incident *inc, int64_t now)
{
	int sev = inc_severity_valid(inc->severity) ? inc->severity : 0;

	acc->by_sev[sev]++;
	acc->total++;
	if (inc->acknowledged) {
		acc->ack_sum += inc->acknowledged_ms - inc->created_ms;
		acc->ack_n++;
	}
	if (inc->status == ST_RESOLVED) {
		acc->resolve_sum += inc->resolved_ms - inc->created_ms;
		acc->resolve_n++;
	}
	acc->sla_n++;
	if (!inc->response_breached && !inc->resolution_breached
	    && inc_response_met(inc, now) && inc_resolution_met(inc, now)) {
		acc->sla_met++;
	}
}

int
inc_report_finish(const inc_report_acc *acc, inc_report *r)
{
	r->incidents_total = acc->total;
	r->mtta_ms = acc->ack_n > 0 ? acc->ack_sum / acc->ack_n : -1;
	r->mttr_ms
	    = acc->resolve_n > 0 ? acc->resolve_sum / acc->resolve_n : -1;
	r->sla_percent
	    = acc->sla_n > 0 ? 100.0 * acc->sla_met / acc->sla_n : -1.0;
	if ((r->incidents = calloc(4, sizeof(*r->incidents))) == NULL) {
		return OD_ENOMEM;
	}
	for (int s = SEV_CRITICAL; s <= SEV_LOW; s++) {
		Opsdesk__V1__SeverityCount *c = malloc(sizeof(*c));
		if (c == NULL) {
			return OD_ENOMEM;
		}
		opsdesk__v1__severity_count__init(c);
		c->severity = s;
		c->count = acc->by_sev[s];
		r->incidents[r->n_incidents++] = c;
	}
	return 0;
}

int
inc_report_text(const inc_report *r, sbuf *b)
{
	char f[32], t[32], d1[32] = "n/a", d2[32] = "n/a";

	od_format_iso8601(r->from_ms, f, sizeof(f));
	od_format_iso8601(r->to_ms, t, sizeof(t));
	if (r->mtta_ms >= 0) {
		od_format_duration(r->mtta_ms, d1, sizeof(d1));
	}
	if (r->mttr_ms >= 0) {
		od_format_duration(r->mttr_ms, d2, sizeof(d2));
	}
	sbuf_printf(b, "Report (%s): %s to %s\n",
	    r->period <= RP_MONTH ? period_names[r->period] : "", f, t);
	sbuf_printf(b, "Incidents: %u", r->incidents_total);
	for (size_t i = 0; i < r->n_incidents; i++) {
		sbuf_printf(b, "%s%s %u", i == 0 ? " (" : ", ",
		    inc_severity_name(r->incidents[i]->severity),
		    r->incidents[i]->count);
	}
	sbuf_append(b, r->n_incidents > 0 ? ")\n" : "\n");
	sbuf_printf(b, "MTTA: %s, MTTR: %s, within SLA: ", d1, d2);
	if (r->sla_percent < 0) {
		sbuf_append(b, "n/a\n");
	} else {
		sbuf_printf(b, "%.1f%%\n", r->sla_percent);
	}
	if (!r->uptime_available) {
		sbuf_append(b,
		    "Uptime: unavailable (health-prober did not "
		    "answer)\n");
	} else {
		sbuf_append(b, "Uptime:\n");
		for (size_t i = 0; i < r->n_uptime; i++) {
			const Opsdesk__V1__ComponentUptime *u = r->uptime[i];
			if (u->uptime < 0) {
				sbuf_printf(b, "  %s: no data\n", u->name);
			} else {
				sbuf_printf(
				    b, "  %s: %.2f%%\n", u->name, u->uptime);
			}
		}
	}
	if (r->n_objectives > 0) {
		size_t met = 0;
		for (size_t i = 0; i < r->n_objectives; i++) {
			met += r->objectives[i]->met;
		}
		sbuf_printf(b, "Objectives: %zu met, %zu missed\n", met,
		    r->n_objectives - met);
		for (size_t i = 0; i < r->n_objectives; i++) {
			const Opsdesk__V1__ObjectiveOutcome *o
			    = r->objectives[i];
			sbuf_printf(b, "  %s %s, %s: ",
			    o->met                  ? "met"
			        : o->attainment < 0 ? "no data"
			                            : "MISSED",
			    o->name, o->description);
			if (o->attainment < 0) {
				sbuf_append(b, "no data\n");
			} else {
				sbuf_printf(b, "%.3f%% (target %g%%)\n",
				    o->attainment, o->target);
			}
		}
	}
	if (!r->tickets_available) {
		sbuf_append(b,
		    "Tickets: unavailable (ticket-service did not "
		    "answer)\n");
	} else {
		char fr[32] = "n/a";
		if (r->first_response_p50_ms >= 0) {
			od_format_duration(
			    r->first_response_p50_ms, fr, sizeof(fr));
		}
		sbuf_printf(b,
		    "Tickets: %u created, %u resolved, first response "
		    "p50 %s",
		    r->tickets_created, r->tickets_resolved, fr);
		if (r->csat_count > 0) {
			sbuf_printf(b, ", CSAT %.1f (%u ratings)",
			    r->csat_average, r->csat_count);
		}
		if (r->tickets_sla_percent >= 0) {
			sbuf_printf(
			    b, ", within SLA %.1f%%", r->tickets_sla_percent);
		}
		sbuf_appendc(b, '\n');
		inc_report_support_text(r, b);
	}
	return sbuf_failed(b) ? OD_ENOMEM : 0;
}

void
inc_report_support_text(const inc_report *r, sbuf *b)
{
	for (size_t i = 0; i < r->n_support_objectives; i++) {
		const Opsdesk__V1__ReportSupportObjective *o
		    = r->support_objectives[i];
		bool fr = strcmp(o->name, "support_first_response") == 0;
		if (i == 0) {
			sbuf_printf(
			    b, "Support objectives (%u d):\n", o->window_days);
		}
		sbuf_printf(
		    b, "  %s: ", fr ? "first response within SLA" : "CSAT");
		if (o->actual < 0) {
			sbuf_printf(b, "no data (target %g%s)\n", o->target,
			    fr ? "%" : "");
			continue;
		}
		sbuf_printf(b, fr ? "%.1f%%" : "%.2f", o->actual);
		sbuf_printf(b, " (target %g%s, %llu %s) — %s\n", o->target,
		    fr ? "%" : "", (unsigned long long) o->total,
		    fr ? "tickets" : "ratings", o->met ? "met" : "MISSED");
	}
}

static int
count_incidents(inc_service *svc, int64_t now, inc_report *r)
{
	inc_report_acc acc;
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val k, v;
	int rv;

	memset(&acc, 0, sizeof(acc));
	if ((rv = store_read_begin(svc->st, &txn)) != 0) {
		return rv;
	}
	if ((rv = store_scan_open(
	         &sc, txn, inc_dbi(svc, INC_DB_INCIDENTS), NULL, 0, NULL))
	    != 0) {
		goto out;
	}
	while (store_scan_next(&sc, &k, &v) == 0) {
		inc_incident *inc = opsdesk__v1__incident__unpack(
		    NULL, v.mv_size, v.mv_data);
		if (inc == NULL) {
			continue;
		}
		if (inc->created_ms >= r->from_ms
		    && inc->created_ms < r->to_ms) {
			inc_report_add(&acc, inc, now);
		}
		inc_free(inc);
	}
	store_scan_close(&sc);
	rv = inc_report_finish(&acc, r);
out:
	store_read_end(txn);
	return rv;
}

static int
add_uptime(inc_report *r, const Opsdesk__V1__UptimeReport *u)
{
	if (u->n_targets == 0) {
		return 0;
	}
	if ((r->uptime = calloc(u->n_targets, sizeof(*r->uptime))) == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < u->n_targets; i++) {
		Opsdesk__V1__ComponentUptime *c = malloc(sizeof(*c));
		if (c == NULL) {
			return OD_ENOMEM;
		}
		opsdesk__v1__component_uptime__init(c);
		r->uptime[r->n_uptime++] = c;
		c->uptime = u->targets[i]->uptime;
		if (inc_set_str(&c->component_id, u->targets[i]->target_id)
		        != 0
		    || inc_set_str(&c->name,
		           u->targets[i]->name[0] ? u->targets[i]->name
		                                  : u->targets[i]->target_id)
		        != 0) {
			return OD_ENOMEM;
		}
	}
	return 0;
}

/* The support objectives of ticket-service's stats, met or missed. */
static int
add_support_objectives(inc_report *r, const Opsdesk__V1__TicketStats *s)
{
	if (s->n_objectives == 0) {
		return 0;
	}
	r->support_objectives
	    = calloc(s->n_objectives, sizeof(*r->support_objectives));
	if (r->support_objectives == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < s->n_objectives; i++) {
		const Opsdesk__V1__SupportObjective *o = s->objectives[i];
		Opsdesk__V1__ReportSupportObjective *c = malloc(sizeof(*c));
		if (c == NULL) {
			return OD_ENOMEM;
		}
		opsdesk__v1__report_support_objective__init(c);
		r->support_objectives[r->n_support_objectives++] = c;
		c->target = o->target;
		c->actual = o->actual;
		c->met = o->met;
		c->window_days = o->window_days;
		c->total = o->total;
		if (inc_set_str(&c->name, o->name) != 0) {
			return OD_ENOMEM;
		}
	}
	return 0;
}

/* The targets' objectives judged over the period (health-prober). */
static int
add_objectives(inc_report *r, const Opsdesk__V1__UptimeReport *u)
{
	size_t n = 0;
	for (size_t i = 0; i < u->n_targets; i++) {
		n += u->targets[i]->n_objectives;
	}
	if (n == 0) {
		return 0;
	}
	if ((r->objectives = calloc(n, sizeof(*r->objectives))) == NULL) {
		return OD_ENOMEM;
	}
	for (size_t i = 0; i < u->n_targets; i++) {
		const Opsdesk__V1__TargetUptime *t = u->targets[i];
		for (size_t k = 0; k < t->n_objectives; k++) {
			const Opsdesk__V1__SloPeriod *sp = t->objectives[k];
			Opsdesk__V1__ObjectiveOutcome *o = malloc(sizeof(*o));
			if (o == NULL) {
				return OD_ENOMEM;
			}
			opsdesk__v1__objective_outcome__init(o);
			r->objectives[r->n_objectives++] = o;
			o->target = sp->target;
			o->attainment = sp->attainment;
			o->met = sp->met;
			if (inc_set_str(&o->component_id, t->target_id) != 0
			    || inc_set_str(&o->name,
			           t->name[0] ? t->name : t->target_id)
			        != 0
			    || inc_set_str(&o->description, sp->description)
			        != 0) {
				return OD_ENOMEM;
			}
		}
	}
	return 0;
}

static void
ask_peers(inc_service *svc, inc_report *r)
{
	Opsdesk__V1__ProberRequest preq = OPSDESK__V1__PROBER_REQUEST__INIT;
	Opsdesk__V1__UptimeRequest ur = OPSDESK__V1__UPTIME_REQUEST__INIT;
	Opsdesk__V1__ProberReply *prep = NULL;
	Opsdesk__V1__TicketReply *trep = NULL;

	ur.from_ms = r->from_ms;
	ur.to_ms = r->to_ms;
	preq.method_case = OPSDESK__V1__PROBER_REQUEST__METHOD_UPTIME;
	preq.uptime = &ur;
	inc_peer_prober_and_stats(
	    svc, &preq, r->from_ms, r->to_ms, &prep, &trep);
	if (prep != NULL
	    && prep->result_case == OPSDESK__V1__PROBER_REPLY__RESULT_UPTIME) {
		r->uptime_available = add_uptime(r, prep->uptime) == 0
		    && add_objectives(r, prep->uptime) == 0;
	}
	if (trep != NULL
	    && trep->result_case == OPSDESK__V1__TICKET_REPLY__RESULT_STATS) {
		const Opsdesk__V1__TicketStats *s = trep->stats;
		r->tickets_available = true;
		r->tickets_created = s->created;
		r->tickets_resolved = s->resolved;
		r->first_response_p50_ms = s->first_response_p50_ms;
		r->csat_average = s->csat_average;
		r->csat_count = s->csat_count;
		r->tickets_sla_percent = s->sla_percent;
		add_support_objectives(r, s);
	}
	if (prep != NULL) {
		protobuf_c_message_free_unpacked(&prep->base, NULL);
	}
	if (trep != NULL) {
		protobuf_c_message_free_unpacked(&trep->base, NULL);
	}
}

int
inc_report_build(inc_service *svc, int period, int64_t at_ms, inc_report **out)
{
	inc_report *r = malloc(sizeof(*r));
	int64_t now = od_now_ms();
	sbuf text = SBUF_INIT;
	int rv;

	if (r == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__report__init(r);
	r->period = period;
	r->first_response_p50_ms = -1;
	r->tickets_sla_percent = -1;
	if ((rv = inc_report_bounds(
	         period, at_ms, now, &r->from_ms, &r->to_ms))
	        != 0
	    || (rv = count_incidents(svc, now, r)) != 0) {
		goto out;
	}
	ask_peers(svc, r);
	if ((rv = inc_report_text(r, &text)) != 0) {
		goto out;
	}
	if (r->text != NULL && r->text != protobuf_c_empty_string) {
		free(r->text);
	}
	r->text = sbuf_take(&text, NULL);
	if (r->text == NULL) {
		r->text = (char *) protobuf_c_empty_string;
		rv = OD_ENOMEM;
	}
out:
	sbuf_free(&text);
	if (rv != 0) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return rv;
	}
	*out = r;
	return 0;
}
