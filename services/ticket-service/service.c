/*
 * service.c — setting up the ticket service around its store, seeding the
 * FAQ from config, the SLA breach timer, and ticket_service_start (the
 * wiring of the executable).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "log/log.h"
#include "runtime/runtime.h"
#include "ticket.h"
#include "util/util.h"

#define BREACH_BATCH 256

/* ---- FAQ seed ---- */

typedef struct faq_seed_job {
	const cJSON *faq;
	ticket_service *svc;
} faq_seed_job;

/* The members of one configured FAQ entry (any may be NULL). */
static void
faq_item(
    const cJSON *item, const cJSON **q, const cJSON **a, const cJSON **tags)
{
	*q = cJSON_GetObjectItemCaseSensitive(item, "question");
	*a = cJSON_GetObjectItemCaseSensitive(item, "answer");
	*tags = cJSON_GetObjectItemCaseSensitive(item, "tags");
}

static int
faq_seed_fn(store_txn *txn, void *arg)
{
	faq_seed_job *j = arg;
	const cJSON *item;
	uint64_t used = 0;
	int rv;

	/* Seed once: an FAQ admins have edited (even emptied) is theirs. */
	if ((rv = store_counter(
	         store_txn_mdb(txn), j->svc->store, "faq", &used))
	        != 0
	    || used != 0) {
		return rv;
	}
	cJSON_ArrayForEach(item, j->faq)
	{
		Opsdesk__V1__FaqEntry e = OPSDESK__V1__FAQ_ENTRY__INIT;
		const cJSON *q, *a, *tags, *tag;
		char *tagv[TICKET_MAX_TAGS];
		uint64_t id;
		uint8_t k[4];

		faq_item(item, &q, &a, &tags);
		if (!cJSON_IsString(q) || !cJSON_IsString(a)) {
			continue; /* checked by ticket_faq_seed_check */
		}
		e.question = q->valuestring;
		e.answer = a->valuestring;
		cJSON_ArrayForEach(tag, tags)
		{
			if (cJSON_IsString(tag)
			    && e.n_tags < TICKET_MAX_TAGS) {
				tagv[e.n_tags++] = tag->valuestring;
			}
		}
		e.tags = tagv;
		if ((rv = store_next_id(txn, "faq", &id)) != 0) {
			return rv;
		}
		e.id = (uint32_t) id;
		od_put_be32(k, e.id);
		if ((rv = store_put_pb(txn, store_db(j->svc->store, TDB_FAQ),
		         k, sizeof(k), &e.base))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

int
ticket_faq_seed_check(const cJSON *faq, char *err, size_t errlen)
{
	const cJSON *item;
	int i = 0;

	if (faq == NULL) {
		return 0;
	}
	if (!cJSON_IsArray(faq)) {
		snprintf(err, errlen,
		    "faq: expected an array of {question, answer, tags}");
		return OD_EINVAL;
	}
	cJSON_ArrayForEach(item, faq)
	{
		const cJSON *q, *a, *tags;

		faq_item(item, &q, &a, &tags);
		if (!cJSON_IsString(q) || q->valuestring[0] == '\0'
		    || !cJSON_IsString(a) || a->valuestring[0] == '\0') {
			snprintf(err, errlen,
			    "faq[%d]: expected non-empty strings question and "
			    "answer",
			    i);
			return OD_EINVAL;
		}
		if (tags != NULL && !cJSON_IsArray(tags)) {
			snprintf(err, errlen,
			    "faq[%d].tags: expected an array of strings", i);
			return OD_EINVAL;
		}
		if (++i > TICKET_MAX_FAQ) {
			snprintf(err, errlen, "faq: at most %d entries",
			    TICKET_MAX_FAQ);
			return OD_EINVAL;
		}
	}
	return 0;
}

/* The schema of the "faq" section (common/config). */
static const config_field faq_tag = { .type = CONFIG_STRING, .max = 64 };
static const config_field faq_item_fields[] = {
	{ .key = "question", .type = CONFIG_STRING, .max = 1024 },
	{ .key = "answer", .type = CONFIG_STRING, .max = 4096 },
	{ .key = "tags", .type = CONFIG_ARRAY, .max = 32, .elem = &faq_tag },
	{ .key = NULL },
};
static const config_field faq_item_field
    = { .type = CONFIG_OBJECT, .members = faq_item_fields };
static const config_field faq_section = { .key = "faq",
	.type = CONFIG_ARRAY,
	.max = TICKET_MAX_FAQ,
	.elem = &faq_item_field };

static int
faq_check(const config *c, char *err, size_t errlen)
{
	return ticket_faq_seed_check(config_section(c, "faq"), err, errlen);
}
CONFIG_SCHEMA(faq, faq_section, faq_check)

/* opsdesk_slo_*{objective="support_…"}: the names the SLO engine uses for
 * the probed targets' objectives, so one dashboard shows both. */
static void
objectives_metrics_init(ticket_service *svc, metrics *m)
{
	static const char *const names[TICKET_N_OBJECTIVES]
	    = { "support_first_response", "support_csat" };
	char l[64];

	for (size_t i = 0; i < TICKET_N_OBJECTIVES; i++) {
		snprintf(l, sizeof(l), "objective=\"%s\"", names[i]);
		svc->m_slo_attainment[i] = metrics_gauge(m,
		    "opsdesk_slo_attainment_ratio",
		    "Attainment of each objective over its window (support: "
		    "first responses in time / counted; average rating / 5).",
		    l);
		svc->m_slo_target[i] = metrics_gauge(m,
		    "opsdesk_slo_target_ratio",
		    "Each objective's target, in the attainment's unit.", l);
		/* CSAT is an average: it has no budget of bad events. */
		svc->m_slo_budget[i] = i != 0
		    ? NULL
		    : metrics_gauge(m,
		        "opsdesk_slo_error_budget_remaining_ratio",
		        "Share of the error budget left over the window "
		        "(negative: overspent).",
		        l);
		svc->m_slo_met[i] = metrics_gauge(m, "opsdesk_slo_met",
		    "1 while the objective is met over its window, else 0.",
		    l);
		svc->m_slo_events[i] = metrics_gauge(m, "opsdesk_slo_events",
		    "What the attainment counts over the window (support: "
		    "first responses concluded; ratings). 0: no data.",
		    l);
	}
}

void
ticket_objectives_metrics(ticket_service *svc, MDB_txn *txn, int64_t now)
{
	ticket_support_day sum;
	ticket_objective_result r[TICKET_N_OBJECTIVES];

	if (ticket__support_window(txn, svc, now, &sum) != 0) {
		return;
	}
	ticket_objectives_eval(&svc->policy.objectives, &sum, r);
	for (size_t i = 0; i < TICKET_N_OBJECTIVES; i++) {
		metric_set(svc->m_slo_attainment[i], r[i].attainment_ratio);
		metric_set(svc->m_slo_target[i], r[i].target_ratio);
		metric_set(svc->m_slo_budget[i], r[i].budget_remaining_ratio);
		metric_set(svc->m_slo_met[i], r[i].met ? 1 : 0);
		metric_set(svc->m_slo_events[i], (double) r[i].total);
	}
}

int
ticket_service_init(ticket_service *svc, const ticket_policy *policy,
    store *st, bus_publisher *pub, metrics *m, const cJSON *faq_seed)
{
	int rv;

	memset(svc, 0, sizeof(*svc));
	svc->policy = *policy;
	svc->store = st;
	svc->publisher = pub;
	svc->metrics = m;
	svc->faq_seed = faq_seed;
	if (m != NULL) {
		svc->m_creates = metrics_counter(m,
		    "opsdesk_tickets_created_total", "Tickets created.", NULL);
		svc->m_breaches = metrics_counter(m,
		    "opsdesk_ticket_sla_breaches_total",
		    "SLA clocks breached (once per clock per ticket).", NULL);
		svc->m_open = metrics_gauge(m, "opsdesk_tickets_open",
		    "Tickets open or pending.", NULL);
		svc->m_notifies = metrics_counter(m,
		    "opsdesk_ticket_incident_notifies_total",
		    "Incident resolutions for which owners were notified.",
		    NULL);
		objectives_metrics_init(svc, m);
	}
	if ((rv = ticket_incidents_new(&svc->incidents)) != 0) {
		return rv;
	}
	if (faq_seed != NULL && cJSON_GetArraySize(faq_seed) > 0) {
		faq_seed_job j = { faq_seed, svc };
		if ((rv = store_write(st, faq_seed_fn, &j)) != 0) {
			ticket_service_fini(svc);
			return rv;
		}
	}
	return 0;
}

void
ticket_service_fini(ticket_service *svc)
{
	if (svc == NULL) {
		return;
	}
	ticket_incidents_free(svc->incidents);
	svc->incidents = NULL;
}

/* ---- breach timer ---- */

typedef struct breach_key {
	int64_t due;
	uint64_t id;
	unsigned clock;
} breach_key;

typedef struct breach_job {
	ticket_service *svc;
	breach_key keys[BREACH_BATCH];
	size_t n;
	int flagged;
} breach_job;

static void
count_breach(void *arg)
{
	metric_inc(((ticket_service *) arg)->m_breaches);
}

/*
 * Runs in the writer: reload each ticket (it may have changed since the
 * read), and flag only clocks that are still running and due; the
 * breached flag in the stored ticket is what makes the event once-only.
 */
static int
breach_fn(store_txn *txn, void *arg)
{
	breach_job *j = arg;
	ticket_service *svc = j->svc;
	int64_t now = store_txn_now_ms(txn);
	int rv;

	j->flagged = 0;
	for (size_t i = 0; i < j->n; i++) {
		tk_ticket *old = NULL;
		tk_ticket t;
		unsigned fresh;

		if (i > 0 && j->keys[i].id == j->keys[i - 1].id) {
			continue; /* both clocks of one ticket: done together
			           */
		}
		if ((rv = ticket__load(
		         store_txn_mdb(txn), svc, j->keys[i].id, &old))
		    != 0) {
			if (rv == OD_ENOTFOUND) {
				continue;
			}
			return rv;
		}
		t = *old;
		fresh = ticket_sla_mark(&t, ticket_sla_due(&t, now));
		rv = 0;
		if (fresh != 0) {
			t.updated_ms = now;
			rv = ticket__save(txn, svc, old, &t);
		}
		for (unsigned clock = 1; rv == 0 && clock <= 2; clock <<= 1) {
			if (!(fresh & clock)) {
				continue;
			}
			if ((rv = ticket__publish_ticket(txn, svc,
			         "ticket.sla_breached", "sla_breached", &t,
			         NULL, ticket_clock_name(clock), NULL, NULL))
			        == 0
			    && (rv = ticket__audit(txn, svc, t.id, NULL,
			            "sla_breached", ticket_clock_name(clock),
			            NULL))
			        == 0) {
				rv = store_txn_on_commit(
				    txn, count_breach, svc, NULL);
			}
			j->flagged++;
		}
		protobuf_c_message_free_unpacked(&old->base, NULL);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

static int
cmp_breach_key(const void *a, const void *b)
{
	const breach_key *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

int
ticket_breach_scan(ticket_service *svc)
{
	breach_job *j = calloc(1, sizeof(*j));
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val key, val;
	int64_t now = od_now_ms();
	int rv;

	if (j == NULL) {
		return -OD_ENOMEM;
	}
	j->svc = svc;
	if ((rv = store_read_begin(svc->store, &txn)) != 0) {
		goto out;
	}
	metric_set(svc->m_open, (double) ticket__open_count(txn, svc));
	if (svc->metrics != NULL) {
		ticket_objectives_metrics(svc, txn, now);
	}
	if ((rv = store_scan_open(
	         &sc, txn, store_db(svc->store, TDB_SLA_DUE), NULL, 0, NULL))
	    != 0) {
		goto out;
	}
	/* Only the expired prefix of the due-time index is read. */
	while (j->n < BREACH_BATCH && store_scan_next(&sc, &key, &val) == 0
	    && key.mv_size == 17) {
		const uint8_t *p = key.mv_data;
		int64_t due = (int64_t) store_key_get_u64(p);
		if (due > now) {
			break;
		}
		j->keys[j->n].due = due;
		j->keys[j->n].id = store_key_get_u64(p + 8);
		j->keys[j->n].clock = p[16];
		j->n++;
	}
	store_scan_close(&sc);
	store_read_end(txn);
	txn = NULL;
	if (j->n == 0) {
		rv = 0;
		goto out;
	}
	qsort(j->keys, j->n, sizeof(j->keys[0]), cmp_breach_key);
	rv = store_write(svc->store, breach_fn, j);
out:
	store_read_end(txn);
	if (rv == 0) {
		rv = j->flagged;
	} else {
		rv = -rv;
	}
	free(j);
	return rv;
}

void
ticket_breach_timer(void *arg)
{
	int rv = ticket_breach_scan(arg);

	if (rv < 0) {
		log_warn("SLA breach check: %s", od_strerror(-rv));
	}
}

/* ---- the executable's wiring ---- */

static void
svc_free(void *arg)
{
	ticket_service_fini(arg);
	free(arg);
}

static void
client_close(void *arg)
{
	rpc_client_close(arg);
}

static void
resync_stop(void *arg)
{
	bus_resync_stop(arg);
}

static void
subscriber_close(void *arg)
{
	bus_subscriber_close(arg);
}

int
ticket_service_start(runtime *rt)
{
	static const char *const prefixes[] = { "incident.", NULL };
	config *cfg = runtime_config(rt);
	ticket_service *svc;
	ticket_policy policy;
	store *st = NULL;
	bus_publisher *pub = NULL;
	bus_subscriber *sub = NULL;
	rpc_server_options ro;
	bus_subscriber_options so = { 0 };
	store_options sto = { 0 };
	char err[256];
	int rv;

	ticket_policy_defaults(&policy);
	if (ticket_policy_load(
	        &policy, config_section(cfg, "tickets"), err, sizeof(err))
	        != 0
	    || ticket_faq_seed_check(
	           config_section(cfg, "faq"), err, sizeof(err))
	        != 0) {
		log_kv(LOG_ERROR, "config error", "error", err, "config",
		    cfg->path[0] != '\0' ? cfg->path : "(none)", NULL);
		return OD_EINVAL;
	}

	sto.dbs = ticket_db_names;
	sto.schema_version = TICKET_SCHEMA_VERSION;
	sto.migrate = ticket_store_migrate;
	if ((rv = runtime_open_store(rt, &sto, &st)) != 0
	    || (rv = runtime_publisher(rt, &pub)) != 0) {
		return rv;
	}
	if ((svc = calloc(1, sizeof(*svc))) == NULL) {
		return OD_ENOMEM;
	}
	if ((rv = ticket_service_init(svc, &policy, st, pub,
	         runtime_metrics(rt), config_section(cfg, "faq")))
	    != 0) {
		free(svc);
		return rv;
	}
	if ((rv = runtime_defer(rt, svc_free, svc)) != 0) {
		return rv;
	}
	if ((rv = rpc_client_open(&svc->incident_client,
	         config_service_url(cfg, "incident"), 2000))
	        != 0
	    || (rv = runtime_defer(rt, client_close, svc->incident_client))
	        != 0) {
		return rv;
	}

	runtime_rpc_options(rt, &ro, config_service_url(cfg, "ticket"),
	    &opsdesk__v1__ticket_request__descriptor,
	    &opsdesk__v1__ticket_reply__descriptor, ticket_methods,
	    ticket_n_methods, svc);
	if ((rv = runtime_rpc_server(rt, &ro, NULL)) != 0) {
		return rv;
	}

	/* Until a snapshot arrives the active incidents are unknown: the
	 * worker asks at start and after every gap, until it gets one. */
	bus_resync_source src
	    = { "incident-service", ticket_incidents_fetch, svc, 0 };
	bus_resync_options rso = {
		.sources = &src, .n_sources = 1, .metrics = runtime_metrics(rt)
	};
	if ((rv = bus_resync_start(&svc->resync, &rso)) != 0
	    || (rv = runtime_defer(rt, resync_stop, svc->resync)) != 0) {
		return rv;
	}
	so.url = cfg->bus_subscribe;
	so.prefixes = prefixes;
	so.on_event = ticket_on_incident_event;
	so.resync = svc->resync;
	so.arg = svc;
	so.metrics = runtime_metrics(rt);
	if ((rv = bus_subscriber_open(&sub, &so)) != 0
	    || (rv = runtime_defer(rt, subscriber_close, sub)) != 0) {
		return rv;
	}
	if ((rv = runtime_every(
	         rt, policy.breach_interval_ms, ticket_breach_timer, svc))
	        != 0
	    || (rv = runtime_http(rt, NULL, NULL)) != 0) {
		return rv;
	}
	log_info("ticket-service listening on %s", ro.url);
	return 0;
}
