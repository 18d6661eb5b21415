/*
 * ultra — what the ultra tier was promised (gateway.h): the routing of its
 * tickets' staff notifications, their place in /queue, and the live view
 * of /status_page with its refresher. Tickets' rules stay in
 * ticket-service; this is only where messages go and what they show.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "log/log.h"
#include "status.pb-c.h"
#include "ticket.pb-c.h"

#define TIER_ULTRA OPSDESK__V1__TIER__TIER_ULTRA
#define LIVE_MAX   1000 /* live views edited per tick at most */

size_t
gw_ultra_route(const int64_t *admins, size_t n, int64_t ultra_chat, int tier,
    int64_t *out, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < max; i++) {
		out[k++] = admins[i];
	}
	if (tier != TIER_ULTRA || ultra_chat == 0 || k == max) {
		return k;
	}
	for (size_t i = 0; i < k; i++) {
		if (out[i] == ultra_chat) {
			return k; /* the ultra chat is the admin chat */
		}
	}
	out[k++] = ultra_chat;
	return k;
}

bool
gw_ultra_first(const Opsdesk__V1__Ticket *t)
{
	return t->tier == TIER_ULTRA && t->first_response_ms == 0
	    && (t->status == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_OPEN
	        || t->status
	            == OPSDESK__V1__TICKET_STATUS__TICKET_STATUS_PENDING);
}

void
gw_ultra_order(Opsdesk__V1__Ticket **v, size_t n)
{
	size_t front = 0;

	for (size_t i = 0; i < n; i++) {
		if (!gw_ultra_first(v[i])) {
			continue;
		}
		/* Rotate v[front..i] right by one: stable for both groups. */
		Opsdesk__V1__Ticket *t = v[i];
		memmove(&v[front + 1], &v[front], (i - front) * sizeof(*v));
		v[front++] = t;
	}
}

void
gw_ultra_mark(sbuf *b, const Opsdesk__V1__Ticket *t, int64_t now)
{
	char left[48];

	if (t->tier != TIER_ULTRA) {
		return;
	}
	sbuf_append(b, "⭐ <b>ULTRA</b>");
	if (gw_ultra_first(t) && t->first_response_due_ms > 0) {
		int64_t d = t->first_response_due_ms - now;
		od_format_duration(d > 0 ? d : -d, left, sizeof(left));
		sbuf_printf(b, " · ⏱ first response %s %s",
		    d >= 0 ? "due in" : "overdue by", left);
	}
	sbuf_append(b, "\n");
}

/*
 * The tier cache: direct-mapped by user id, so bounded; an entry is
 * good for TIER_TTL_MS. Process-wide: one gateway per process.
 */
#define TIER_SLOTS      1024
#define TIER_TTL_MS     60000
#define TIER_TIMEOUT_MS 250
#define TIER_BACKOFF_MS 10000

static struct {
	pthread_mutex_t mtx;
	struct {
		int64_t user;
		int64_t until;
		bool ultra;
	} slot[TIER_SLOTS];
	int64_t quiet_until; /* ticket-service did not answer: not before */
} tiers = { .mtx = PTHREAD_MUTEX_INITIALIZER };

static size_t
tier_slot(int64_t user)
{
	return (size_t) ((uint64_t) user * 0x9E3779B97F4A7C15ull >> 54)
	    % TIER_SLOTS;
}

void
gw_ultra_forget(int64_t user)
{
	size_t i = tier_slot(user);

	pthread_mutex_lock(&tiers.mtx);
	if (tiers.slot[i].user == user) {
		tiers.slot[i].until = 0;
	}
	pthread_mutex_unlock(&tiers.mtx);
}

/* 1 ultra, 0 not, -1 ticket-service did not answer. */
static int
tier_lookup(gw *g, int64_t user)
{
	Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;
	Opsdesk__V1__GetTierRequest r = OPSDESK__V1__GET_TIER_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	Opsdesk__V1__CustomerTier *t;
	int64_t now = od_now_ms();
	size_t i = tier_slot(user);
	int ultra;

	pthread_mutex_lock(&tiers.mtx);
	if (tiers.slot[i].user == user && tiers.slot[i].until > now) {
		ultra = tiers.slot[i].ultra;
		pthread_mutex_unlock(&tiers.mtx);
		return ultra;
	}
	ultra = tiers.quiet_until > now ? -1 : 0;
	pthread_mutex_unlock(&tiers.mtx);
	if (ultra < 0) {
		return -1;
	}
	a.user_id = user;
	if (gw_call_quiet_within(g, &a, "", GW_TICKET, "get_tier", &r.base,
	        &rep, TIER_TIMEOUT_MS)
	    != 0) {
		gw_reply_free(rep);
		pthread_mutex_lock(&tiers.mtx);
		tiers.quiet_until = now + TIER_BACKOFF_MS;
		pthread_mutex_unlock(&tiers.mtx);
		return -1;
	}
	t = gw_result(rep, "tier");
	ultra = t != NULL && t->tier == TIER_ULTRA;
	gw_reply_free(rep);
	pthread_mutex_lock(&tiers.mtx);
	tiers.slot[i].user = user;
	tiers.slot[i].ultra = ultra;
	tiers.slot[i].until = now + TIER_TTL_MS;
	pthread_mutex_unlock(&tiers.mtx);
	return ultra;
}

bool
gw_ultra_user(gw_ctx *ctx)
{
	return ctx->user_id != 0 && tier_lookup(ctx->g, ctx->user_id) == 1;
}

void
gw_ultra_live_render(sbuf *b, const Opsdesk__V1__StatusSummary *s, int64_t now)
{
	sbuf_append(b, "\n⚡ <b>Live monitoring</b> · ultra\n");
	for (size_t i = 0; i < s->n_components; i++) {
		const Opsdesk__V1__PublicComponent *c = s->components[i];
		sbuf_printf(b, "%s ", gw_render_public_symbol(c->status));
		gw_render_text(b, c->name, 60);
		sbuf_append(b, ": ");
		if (c->has_latency) {
			sbuf_printf(b, "now <b>%u ms</b>", c->latency_ms);
		} else {
			sbuf_append(b, "now —");
		}
		if (c->p95_24h_ms > 0) {
			sbuf_printf(b, " · p95 24 h %u ms", c->p95_24h_ms);
		}
		if (c->uptime_30d >= 0) {
			sbuf_printf(b, " · uptime 30 d %.3f%%", c->uptime_30d);
		}
		if (c->uptime_90d >= 0) {
			sbuf_printf(b, " · 90 d %.3f%%", c->uptime_90d);
		}
		if (c->slo_target > 0 && c->slo_attainment >= 0) {
			sbuf_printf(b, " · objective %.3f%% (target %g%%)",
			    c->slo_attainment, c->slo_target);
		} else if (c->slo_target > 0) {
			sbuf_printf(b, " · objective %g%%", c->slo_target);
		}
		sbuf_append(b, "\n");
	}
	if (s->n_components == 0) {
		sbuf_append(b, "No public components.\n");
	}
	time_t t = (time_t) (now / 1000);
	struct tm tm;
	char hms[16] = "";
	if (gmtime_r(&t, &tm) != NULL) {
		strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	}
	sbuf_printf(b,
	    "<i>Live at %s UTC, updated in place while you watch; 🔄 keeps "
	    "it live longer.</i>\n",
	    hms);
}

void
gw_ultra_live_keep(
    gw_ctx *ctx, int64_t chat, int64_t user, int64_t message, int64_t now)
{
	uint8_t k[8], v[24];

	store_key_u64(k, (uint64_t) chat);
	store_key_u64(v, (uint64_t) user);
	store_key_u64(v + 8, (uint64_t) message);
	store_key_u64(v + 16, (uint64_t) now);
	gw_ctx_put(ctx, GW_DB_LIVE_MSG, k, sizeof(k), v, sizeof(v));
}

typedef struct live_view {
	int64_t chat;
	int64_t user;
	int64_t message;
	int64_t since;
} live_view;

/* Every live view (at most LIVE_MAX) into *out; returns how many. */
static size_t
live_views(gw *g, live_view **out)
{
	MDB_txn *txn = NULL;
	store_scan sc;
	MDB_val key, val;
	live_view *v = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	if (store_read_begin(gw_store(g), &txn) != 0) {
		return 0;
	}
	if (store_scan_open(
	        &sc, txn, store_db(gw_store(g), GW_DB_LIVE_MSG), NULL, 0, NULL)
	    != 0) {
		store_read_end(txn);
		return 0;
	}
	while (n < LIVE_MAX && store_scan_next(&sc, &key, &val) == 0) {
		const uint8_t *p = val.mv_data;
		if (key.mv_size != 8 || val.mv_size != 24) {
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			live_view *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n].chat = (int64_t) store_key_get_u64(key.mv_data);
		v[n].user = (int64_t) store_key_get_u64(p);
		v[n].message = (int64_t) store_key_get_u64(p + 8);
		v[n].since = (int64_t) store_key_get_u64(p + 16);
		n++;
	}
	store_scan_close(&sc);
	store_read_end(txn);
	*out = v;
	return n;
}

void
gw_ultra_live_tick(void *arg)
{
	gw *g = arg;
	const gw_settings *set = gw_get_settings(g);
	Opsdesk__V1__StatusSummaryRequest r
	    = OPSDESK__V1__STATUS_SUMMARY_REQUEST__INIT;
	Opsdesk__V1__StatusSummary *s = NULL;
	ProtobufCMessage *rep = NULL;
	live_view *v = NULL;
	size_t n = live_views(g, &v);
	int64_t now = od_now_ms();
	sbuf b = SBUF_INIT;
	gw_keyboard k = { 0 };
	gw_ctx ctx;

	if (n == 0) {
		free(v);
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.g = g;
	for (size_t i = 0; i < n; i++) {
		uint8_t key[8];
		int ultra = 1;
		store_key_u64(key, (uint64_t) v[i].chat);
		if (now - v[i].since > set->live_ttl_ms
		    || (ultra = tier_lookup(g, v[i].user)) == 0) {
			/* expired, or no longer ultra: forget it */
			gw_ctx_put(
			    &ctx, GW_DB_LIVE_MSG, key, sizeof(key), NULL, 0);
			continue;
		}
		if (ultra < 0) {
			break; /* ticket-service does not answer: next tick */
		}
		if (s == NULL && rep == NULL) {
			Opsdesk__V1__Actor a = OPSDESK__V1__ACTOR__INIT;
			a.user_id = v[i].user;
			if (gw_call_quiet(
			        g, &a, "", GW_STATUS, "summary", &r.base, &rep)
			    == 0) {
				s = gw_result(rep, "summary");
			}
			if (s == NULL) {
				break; /* status-publisher down: next tick */
			}
			gw_status_render(&b, &k, s, true, now);
		}
		gw_ctx_edit(&ctx, GW_LANE_BROADCAST, v[i].chat, v[i].message,
		    sbuf_str(&b), &k);
	}
	if (gw_enqueue(g, &ctx) != 0) {
		log_warn("ultra live views: cannot queue the edits");
	} else if (ctx.n_outs > 0) {
		metric_add(
		    gw_counter(g, "opsdesk_gateway_live_edits_total",
		        "Ultra live status views edited in place", NULL),
		    ctx.n_outs);
	}
	gw_ctx_free(&ctx);
	gw_reply_free(rep);
	sbuf_free(&b);
	free(v);
}
