/*
 * checklists.c — daily, weekly and monthly ops checklists. The items come
 * from config; what is ticked is stored per period under
 * list \0 period key \0 item, so a new day (ISO week, month) starts with
 * every box empty and old periods stay as a record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incident_core.h"
#include "store/store.h"

static const char *const list_ids[4] = { NULL, "daily", "weekly", "monthly" };
static const char *const list_titles[4]
    = { NULL, "Daily checklist", "Weekly checklist", "Monthly checklist" };

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static void
utc_day(int64_t days, struct tm *tm)
{
	time_t t = (time_t) (days * 86400);

	gmtime_r(&t, tm);
}

int
inc_period_key(int period, int64_t at_ms, char *out, size_t size)
{
	int64_t days = floor_div(at_ms, INC_DAY_MS);
	struct tm tm;
	int n;

	switch (period) {
	case CK_DAILY:
		utc_day(days, &tm);
		n = snprintf(out, size, "%04d-%02d-%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday);
		break;
	case CK_WEEKLY: {
		/* ISO 8601: weeks start on Monday and belong to the year
		 * of their Thursday. 1970-01-01 was a Thursday. */
		int64_t monday0 = floor_div(days + 3, 7) * 7 - 3;
		utc_day(monday0 + 3, &tm);
		n = snprintf(out, size, "%04d-W%02d", tm.tm_year + 1900,
		    tm.tm_yday / 7 + 1);
		break;
	}
	case CK_MONTHLY:
		utc_day(days, &tm);
		n = snprintf(
		    out, size, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
		break;
	default:
		return OD_EINVAL;
	}
	return n > 0 && (size_t) n < size ? 0 : OD_EINVAL;
}

static int
list_period(const char *list_id)
{
	for (int p = CK_DAILY; p <= CK_MONTHLY; p++) {
		if (list_id != NULL && strcmp(list_id, list_ids[p]) == 0) {
			return p;
		}
	}
	return 0;
}

static size_t
check_key(char *key, size_t size, const char *list, const char *period,
    const char *item)
{
	int n = snprintf(key, size, "%s%c%s%c%s", list, 0, period, 0, item);

	return n > 0 && (size_t) n < size ? (size_t) n : 0;
}

static int
build_list(MDB_txn *txn, inc_service *svc, int p, int64_t at_ms,
    Opsdesk__V1__Checklist **out)
{
	const inc_check_list *def = &svc->cfg.lists[p];
	Opsdesk__V1__Checklist *l = malloc(sizeof(*l));
	char period[32], key[256];
	int rv;

	if (l == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__checklist__init(l);
	l->period = p;
	if ((rv = inc_period_key(p, at_ms, period, sizeof(period))) != 0
	    || (rv = inc_set_str(&l->id, list_ids[p])) != 0
	    || (rv = inc_set_str(&l->title, list_titles[p])) != 0
	    || (rv = inc_set_str(&l->period_key, period)) != 0) {
		goto out;
	}
	if ((l->items = calloc(def->n_items + 1, sizeof(*l->items))) == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < def->n_items; i++) {
		Opsdesk__V1__ChecklistItem *it = NULL;
		size_t klen = check_key(
		    key, sizeof(key), list_ids[p], period, def->items[i].id);
		rv = klen == 0
		    ? OD_ENOTFOUND
		    : store_get_pb(txn, inc_dbi(svc, INC_DB_CHECKS), key, klen,
		        &opsdesk__v1__checklist_item__descriptor,
		        (ProtobufCMessage **) &it);
		if (rv == OD_ENOTFOUND) {
			if ((it = malloc(sizeof(*it))) == NULL) {
				rv = OD_ENOMEM;
				goto out;
			}
			opsdesk__v1__checklist_item__init(it);
			rv = 0;
		}
		if (rv != 0) {
			goto out;
		}
		l->items[l->n_items++] = it;
		/* The text follows the config; the record keeps who/when. */
		if ((rv = inc_set_str(&it->id, def->items[i].id)) != 0
		    || (rv = inc_set_str(&it->text, def->items[i].text))
		        != 0) {
			goto out;
		}
		l->done += it->done ? 1 : 0;
	}
	l->total = (uint32_t) def->n_items;
out:
	if (rv != 0) {
		protobuf_c_message_free_unpacked(&l->base, NULL);
		return rv;
	}
	*out = l;
	return 0;
}

int
inc_checklists(MDB_txn *txn, inc_service *svc, int64_t at_ms,
    Opsdesk__V1__Checklists **out)
{
	Opsdesk__V1__Checklists *c = malloc(sizeof(*c));
	int rv = 0;

	if (c == NULL) {
		return OD_ENOMEM;
	}
	opsdesk__v1__checklists__init(c);
	if ((c->lists = calloc(3, sizeof(*c->lists))) == NULL) {
		rv = OD_ENOMEM;
		goto out;
	}
	for (int p = CK_DAILY; p <= CK_MONTHLY; p++) {
		if (svc->cfg.lists[p].n_items == 0) {
			continue;
		}
		if ((rv = build_list(
		         txn, svc, p, at_ms, &c->lists[c->n_lists]))
		    != 0) {
			goto out;
		}
		c->n_lists++;
	}
out:
	if (rv != 0) {
		protobuf_c_message_free_unpacked(&c->base, NULL);
		return rv;
	}
	*out = c;
	return 0;
}

static const inc_check_item *
find_item(const inc_check_list *l, const char *id)
{
	for (size_t i = 0; id != NULL && i < l->n_items; i++) {
		if (strcmp(l->items[i].id, id) == 0) {
			return &l->items[i];
		}
	}
	return NULL;
}

static int
emit_tick(inc_tx *tx, const char *list, const inc_check_item *item, bool done,
    const inc_actor *who)
{
	Opsdesk__V1__OpsEvent ev = OPSDESK__V1__OPS_EVENT__INIT;
	Opsdesk__V1__Envelope env = OPSDESK__V1__ENVELOPE__INIT;
	char text[512];

	snprintf(text, sizeof(text), "%s %s: %s",
	    who != NULL && who->name[0] ? who->name : "admin",
	    done ? "ticked" : "unticked", item->text);
	ev.kind = "checklist";
	ev.text = text;
	ev.list = (char *) list;
	ev.item = item->id;
	ev.actor_id = who != NULL ? who->user_id : 0;
	env.payload_case = OPSDESK__V1__ENVELOPE__PAYLOAD_OPS;
	env.ops = &ev;
	return inc_emit(tx, "ops.checklist", &env);
}

int
inc_tick(inc_tx *tx, const char *list_id, const char *item_id, bool done,
    const inc_actor *who, Opsdesk__V1__Checklists **out, char *err,
    size_t errlen)
{
	int p = list_period(list_id);
	const inc_check_item *item;
	MDB_dbi db = inc_dbi(tx->svc, INC_DB_CHECKS);
	char period[32], key[256];
	MDB_val have;
	size_t klen;
	int rv;

	if (p == 0) {
		snprintf(err, errlen,
		    "unknown list \"%s\": daily, weekly or monthly",
		    list_id != NULL ? list_id : "");
		return OD_EINVAL;
	}
	if ((item = find_item(&tx->svc->cfg.lists[p], item_id)) == NULL) {
		snprintf(err, errlen, "the %s checklist has no item \"%s\"",
		    list_ids[p], item_id != NULL ? item_id : "");
		return OD_EINVAL;
	}
	if ((rv = inc_period_key(p, tx->now, period, sizeof(period))) != 0) {
		return rv;
	}
	if ((klen = check_key(key, sizeof(key), list_ids[p], period, item->id))
	    == 0) {
		return OD_EINVAL;
	}
	rv = store_get(inc_tx_mdb(tx), db, key, klen, &have);
	if (rv != 0 && rv != OD_ENOTFOUND) {
		return rv;
	}
	/* Ticking a ticked box keeps who ticked it first: no change. */
	if (done && rv == OD_ENOTFOUND) {
		Opsdesk__V1__ChecklistItem it
		    = OPSDESK__V1__CHECKLIST_ITEM__INIT;
		it.id = item->id;
		it.done = true;
		it.done_by = who != NULL ? who->user_id : 0;
		it.done_by_name = (char *) (who != NULL ? who->name : "");
		it.done_ms = tx->now;
		if ((rv = store_put_pb(tx->txn, db, key, klen, &it.base)) != 0
		    || (rv = emit_tick(tx, list_ids[p], item, true, who))
		        != 0) {
			return rv;
		}
	} else if (!done && rv == 0) {
		if ((rv = store_del(tx->txn, db, key, klen, NULL, 0)) != 0
		    || (rv = emit_tick(tx, list_ids[p], item, false, who))
		        != 0) {
			return rv;
		}
	}
	return out != NULL
	    ? inc_checklists(inc_tx_mdb(tx), tx->svc, tx->now, out)
	    : 0;
}
