/*
 * alerts.c — the alert log. Every alert gets the next sequence number and
 * is stored before alert.<kind> goes out, so a gateway that was down asks
 * for everything after the last seq it delivered (AlertsRequest) and loses
 * nothing. The log keeps the last cfg.alert_keep entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_core.h"
#include "store/store.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000

int
inc_alert(
    inc_tx *tx, const char *kind, const inc_incident *inc, const char *text)
{
	Opsdesk__V1__AlertEvent ev = OPSDESK__V1__ALERT_EVENT__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	inc_incident brief = *inc;
	MDB_dbi db = inc_dbi(tx->svc, INC_DB_ALERTS);
	uint8_t key[8];
	char topic[64];
	uint64_t seq;
	int rv;

	/* The alert carries the incident without its timeline: enough to
	 * render it with its buttons, and the log stays small. */
	brief.n_timeline = 0;
	brief.timeline = NULL;
	if ((rv = store_next_id(tx->txn, "alert", &seq)) != 0) {
		return rv;
	}
	ev.seq = seq;
	ev.kind = (char *) kind;
	ev.incident = &brief;
	ev.text = (char *) (text != NULL ? text : "");
	ev.at_ms = tx->now;
	ev.severity = inc->severity;
	store_key_u64(key, seq);
	if ((rv = store_put_pb(tx->txn, db, key, sizeof(key), &ev.base))
	    != 0) {
		return rv;
	}
	if (seq > tx->svc->cfg.alert_keep) {
		store_key_u64(key, seq - tx->svc->cfg.alert_keep);
		rv = store_del(tx->txn, db, key, sizeof(key), NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	snprintf(topic, sizeof(topic), "alert.%s", kind);
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_ALERT;
	env.alert = &ev;
	return inc_emit(tx, topic, &env);
}

int
inc_alert_reclassified(inc_tx *tx, inc_incident *inc, int was)
{
	int sev = inc->severity;
	int64_t realert;
	char text[300];

	if (inc->acknowledged) {
		return 0; /* someone is on it: no more alerts either way */
	}
	if (sev != SEV_CRITICAL && sev != SEV_HIGH) {
		/* Medium and low do not alert or re-alert. */
		inc->next_alert_ms = 0;
		return 0;
	}
	realert = tx->svc->cfg.realert_ms[sev];
	inc->next_alert_ms = realert > 0 ? tx->now + realert : 0;
	if (sev >= was) {
		/* Lowered to high: its re-alert interval from now, no new
		 * alert. */
		return 0;
	}
	/* Raised: the alert a new incident of this severity gets, now. */
	inc->alert_count++;
	snprintf(text, sizeof(text), "INC-%llu escalated to %s: %s",
	    (unsigned long long) inc->id, inc_severity_name(sev), inc->title);
	return inc_alert(tx, "incident", inc, text);
}

int
inc_alert_opened(inc_tx *tx, inc_incident *inc)
{
	char text[256];
	int64_t realert;

	if (inc->severity != SEV_CRITICAL && inc->severity != SEV_HIGH) {
		return 0;
	}
	realert = tx->svc->cfg.realert_ms[inc->severity];
	inc->next_alert_ms = realert > 0 ? tx->now + realert : 0;
	inc->alert_count++;
	snprintf(text, sizeof(text), "New %s incident INC-%llu: %s",
	    inc_severity_name(inc->severity), (unsigned long long) inc->id,
	    inc->title);
	return inc_alert(tx, "incident", inc, text);
}

static int
append_alert(Opsdesk__V1__AlertList *l, const MDB_val *v)
{
	Opsdesk__V1__AlertEvent *ev
	    = opsdesk__v1__alert_event__unpack(NULL, v->mv_size, v->mv_data);
	Opsdesk__V1__AlertEvent **p;

	if (ev == NULL) {
		return OD_EMALFORMED;
	}
	if ((p = realloc(l->alerts, (l->n_alerts + 1) * sizeof(*p))) == NULL) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return OD_ENOMEM;
	}
	l->alerts = p;
	l->alerts[l->n_alerts++] = ev;
	return 0;
}

int
inc_alerts_list(MDB_txn *txn, inc_service *svc, uint64_t since_seq,
    uint32_t limit, Opsdesk__V1__AlertList **out)
{
	Opsdesk__V1__AlertList *l = malloc(sizeof(*l));
	store_scan sc = { 0 };
	MDB_val k, v;
	uint8_t key[8];
	size_t key_len = 0;
	int rc, rv = 0;

	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__alert_list__init(l);
	limit = od_page_limit(limit, LIST_DEFAULT, LIST_MAX);
	if ((rv = store_counter(txn, svc->st, "alert", &l->last_seq)) != 0) {
		goto out;
	}
	if (since_seq == 0) {
		/* The latest `limit`, oldest first: find where they start
		 * (the first key when there are fewer). */
		size_t back = 0;
		if ((rv = store_scan_open(
		         &sc, txn, inc_dbi(svc, INC_DB_ALERTS), NULL, 0, NULL))
		    != 0) {
			goto out;
		}
		store_scan_reverse(&sc);
		while (back++ < limit && store_scan_next(&sc, &k, &v) == 0) {
			if (k.mv_size == sizeof(key)) {
				memcpy(key, k.mv_data, sizeof(key));
				key_len = sizeof(key);
			}
		}
		store_scan_close(&sc);
	} else {
		store_key_u64(key, since_seq + 1);
		key_len = sizeof(key);
	}
	if ((rv = store_scan_open(
	         &sc, txn, inc_dbi(svc, INC_DB_ALERTS), NULL, 0, NULL))
	        != 0
	    || (key_len > 0
	        && (rv = store_scan_seek(&sc, key, key_len)) != 0)) {
		goto out;
	}
	for (rc = store_scan_next(&sc, &k, &v); rc == 0 && l->n_alerts < limit;
	     rc = store_scan_next(&sc, &k, &v)) {
		if ((rv = append_alert(l, &v)) != 0) {
			goto out;
		}
	}
out:
	store_scan_close(&sc);
	if (rv != 0) {
		protobuf_c_message_free_unpacked(&l->base, NULL);
		return rv;
	}
	*out = l;
	return 0;
}
