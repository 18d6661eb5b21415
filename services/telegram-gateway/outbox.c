/*
 * outbox — the durable outbound queue and its sender. Every message the
 * gateway sends is first a row in the store (so a notification survives a
 * restart), then one thread delivers rows in order per chat, within the
 * throttle (30/s overall, 1/s per chat, 20/min per group), honouring 429's
 * retry_after per method, backing off exponentially per chat on 5xx and
 * network errors, and marking a chat blocked on 403. A row is deleted
 * only after Telegram accepted it (or refused it for good), so delivery is
 * at least once: a crash between the send and the delete resends one
 * message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log/log.h"

/* ---- throttle: pure logic on explicit times ---- */

#define THR_SLOTS  4096
#define GROUP_RING 64

typedef struct chat_slot {
	int64_t chat_id; /* 0: free */
	int64_t last_ms;
	int64_t ring[GROUP_RING];
	int ring_n;
	int ring_pos;
} chat_slot;

struct throttle {
	throttle_limits lim;
	int64_t *global; /* ring of the last global_per_s send times */
	int g_n, g_pos;
	chat_slot *slots;
	int used;
};

int
throttle_new(throttle **out, const throttle_limits *lim)
{
	throttle *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return OD_ENOMEM;
	}
	t->lim = *lim;
	if (t->lim.group_per_min > GROUP_RING) {
		t->lim.group_per_min = GROUP_RING;
	}
	t->global = calloc((size_t) (lim->global_per_s + 1), sizeof(int64_t));
	t->slots = calloc(THR_SLOTS, sizeof(chat_slot));
	if (t->global == NULL || t->slots == NULL) {
		throttle_free(t);
		return OD_ENOMEM;
	}
	*out = t;
	return 0;
}

void
throttle_free(throttle *t)
{
	if (t != NULL) {
		free(t->global);
		free(t->slots);
		free(t);
	}
}

static chat_slot *
slot_find(throttle *t, int64_t chat, bool create)
{
	uint64_t h = (uint64_t) chat * 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < THR_SLOTS; i++) {
		chat_slot *s = &t->slots[(h + (uint64_t) i) % THR_SLOTS];
		if (s->chat_id == chat) {
			return s;
		}
		if (s->chat_id == 0) {
			if (!create) {
				return NULL;
			}
			if (t->used > THR_SLOTS * 3 / 4) {
				/* Forget old chats: a burst of new chats only
				 * loosens the per-chat limit for a moment. */
				memset(t->slots, 0,
				    THR_SLOTS * sizeof(chat_slot));
				t->used = 0;
				return slot_find(t, chat, true);
			}
			s->chat_id = chat;
			t->used++;
			return s;
		}
	}
	return NULL;
}

int64_t
throttle_wait_ms(throttle *t, int64_t chat, int64_t now)
{
	int64_t w = 0;
	if (t->lim.global_per_s > 0 && t->g_n == t->lim.global_per_s) {
		int64_t oldest = t->global[t->g_pos];
		if (now - oldest < 1000) {
			w = 1000 - (now - oldest);
		}
	}
	chat_slot *s = slot_find(t, chat, false);
	if (s == NULL) {
		return w;
	}
	if (t->lim.chat_per_s > 0 && s->last_ms != 0) {
		int64_t gap = 1000 / t->lim.chat_per_s;
		if (now - s->last_ms < gap && gap - (now - s->last_ms) > w) {
			w = gap - (now - s->last_ms);
		}
	}
	if (chat < 0 && t->lim.group_per_min > 0
	    && s->ring_n == t->lim.group_per_min) {
		int64_t oldest = s->ring[s->ring_pos];
		if (now - oldest < 60000 && 60000 - (now - oldest) > w) {
			w = 60000 - (now - oldest);
		}
	}
	return w;
}

void
throttle_sent(throttle *t, int64_t chat, int64_t now)
{
	if (t->lim.global_per_s > 0) {
		t->global[t->g_pos] = now;
		t->g_pos = (t->g_pos + 1) % t->lim.global_per_s;
		if (t->g_n < t->lim.global_per_s) {
			t->g_n++;
		}
	}
	chat_slot *s = slot_find(t, chat, true);
	if (s == NULL) {
		return;
	}
	s->last_ms = now;
	if (chat < 0 && t->lim.group_per_min > 0) {
		s->ring[s->ring_pos] = now;
		s->ring_pos = (s->ring_pos + 1) % t->lim.group_per_min;
		if (s->ring_n < t->lim.group_per_min) {
			s->ring_n++;
		}
	}
}

/* ---- the stored form: chat (8 bytes BE), method\0 tag\0 body\0 ---- */

uint8_t *
outbox_encode(const gw_out *o, size_t *len)
{
	size_t ml = strlen(o->method), tl = strlen(o->tag),
	       bl = strlen(o->body);
	size_t n = 8 + ml + 1 + tl + 1 + bl + 1;
	uint8_t *v = malloc(n);
	if (v == NULL) {
		return NULL;
	}
	store_key_u64(v, (uint64_t) o->chat_id);
	memcpy(v + 8, o->method, ml + 1);
	memcpy(v + 9 + ml, o->tag, tl + 1);
	memcpy(v + 10 + ml + tl, o->body, bl + 1);
	*len = n;
	return v;
}

int
outbox_decode(const void *v, size_t len, int64_t *chat_id, const char **method,
    const char **tag, const char **body)
{
	const char *p = v, *end = (const char *) v + len;
	if (len < 11 || end[-1] != '\0') {
		return OD_EMALFORMED;
	}
	*chat_id = (int64_t) store_key_get_u64(v);
	*method = p + 8;
	*tag = *method + strlen(*method) + 1;
	if (*tag >= end) {
		return OD_EMALFORMED;
	}
	*body = *tag + strlen(*tag) + 1;
	if (*body >= end) {
		return OD_EMALFORMED;
	}
	return 0;
}

/* ---- the sender ---- */

#define SCAN_MAX       256
#define BACKOFF_MAX_MS 60000

typedef struct ob_item {
	uint64_t id;
	int64_t chat_id;
	char method[32];
	char tag[32];
	char *body;
} ob_item;

/* Per-method pause after a 429. */
typedef struct method_pause {
	char method[32];
	int64_t until_ms;
} method_pause;

/* Per-chat backoff after 5xx and network errors. */
typedef struct chat_backoff {
	int64_t chat_id;
	int64_t until_ms;
	int64_t delay_ms;
} chat_backoff;

/* Calls in flight at once grow while rounds succeed and drop to one on
 * a 429, so a rate limit is found with one call, not a burst. */
#define CONCURRENCY_MAX 8

typedef struct sender_state {
	method_pause pauses[16];
	chat_backoff backoff[64];
	int concurrency;
	bool saw_429;
} sender_state;

/* What one round decided, applied in one commit. */
typedef struct round_result {
	uint64_t del[2 * SCAN_MAX];
	int n_del;
	int64_t blocked[SCAN_MAX];
	int n_blocked;
	struct {
		int64_t chat_id, message_id;
		uint64_t ticket;
		char kind; /* 't': ticket (admin_msg), 'i': incident alert */
	} maps[SCAN_MAX];
	int n_maps;
} round_result;

static int
round_fn(store_txn *t, void *arg)
{
	round_result *r = arg;
	store *s = store_txn_store(t);
	uint8_t k[16], now[8];
	int rv;

	store_key_u64(now, (uint64_t) store_txn_now_ms(t));
	for (int i = 0; i < r->n_del; i++) {
		store_key_u64(k, r->del[i]);
		rv = store_del(t, store_db(s, GW_DB_OUTBOX), k, 8, NULL, 0);
		if (rv != 0 && rv != OD_ENOTFOUND) {
			return rv;
		}
	}
	for (int i = 0; i < r->n_blocked; i++) {
		store_key_u64(k, (uint64_t) r->blocked[i]);
		if ((rv = store_put(
		         t, store_db(s, GW_DB_BLOCKED), k, 8, now, 8))
		    != 0) {
			return rv;
		}
	}
	for (int i = 0; i < r->n_maps; i++) {
		uint8_t v[8];
		if (r->maps[i].kind == 'i') {
			/* incident, chat, message: the alerts to edit */
			uint8_t ak[24];
			store_key_u64(ak, r->maps[i].ticket);
			store_key_u64(ak + 8, (uint64_t) r->maps[i].chat_id);
			store_key_u64(ak + 16, (uint64_t) r->maps[i].message_id);
			if ((rv = store_put(t, store_db(s, GW_DB_ALERT_MSG),
			         ak, 24, "", 0))
			    != 0) {
				return rv;
			}
			continue;
		}
		store_key_u64(k, (uint64_t) r->maps[i].chat_id);
		store_key_u64(k + 8, (uint64_t) r->maps[i].message_id);
		store_key_u64(v, r->maps[i].ticket);
		if ((rv = store_put(
		         t, store_db(s, GW_DB_ADMIN_MSG), k, 16, v, 8))
		    != 0) {
			return rv;
		}
	}
	return 0;
}

static int64_t *
pause_of(sender_state *ss, const char *method)
{
	for (int i = 0; i < 16; i++) {
		if (strcmp(ss->pauses[i].method, method) == 0) {
			return &ss->pauses[i].until_ms;
		}
	}
	for (int i = 0; i < 16; i++) {
		if (ss->pauses[i].method[0] == '\0') {
			od_strlcpy(ss->pauses[i].method, method,
			    sizeof(ss->pauses[i].method));
			return &ss->pauses[i].until_ms;
		}
	}
	return &ss->pauses[0].until_ms;
}

static chat_backoff *
backoff_of(sender_state *ss, int64_t chat, bool create)
{
	chat_backoff *oldest = &ss->backoff[0];
	for (int i = 0; i < 64; i++) {
		if (ss->backoff[i].chat_id == chat
		    && ss->backoff[i].delay_ms > 0) {
			return &ss->backoff[i];
		}
		if (ss->backoff[i].until_ms < oldest->until_ms) {
			oldest = &ss->backoff[i];
		}
	}
	if (!create) {
		return NULL;
	}
	memset(oldest, 0, sizeof(*oldest));
	oldest->chat_id = chat;
	return oldest;
}

/* Print a message for the person at the terminal; remember its
 * buttons so a typed number presses one. */
static void
console_print(gw *g, const char *method, const char *body)
{
	cJSON *j = cJSON_Parse(body);
	if (j == NULL) {
		return;
	}
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "reply_markup"),
	    "inline_keyboard");
	char *plain
	    = cJSON_IsString(text) ? render_to_plain(text->valuestring) : NULL;
	pthread_mutex_lock(&g->console_mtx);
	fprintf(g->cout, "\n%s%s\n",
	    strcmp(method, "editMessageText") == 0 ? "(updated) " : "",
	    plain ? plain : "");
	memset(&g->console_kbd, 0, sizeof(g->console_kbd));
	int n = 0;
	const cJSON *row, *b;
	cJSON_ArrayForEach(row, rows)
	{
		kbd_row(&g->console_kbd);
		fputs(" ", g->cout);
		cJSON_ArrayForEach(b, row)
		{
			const cJSON *t = cJSON_GetObjectItem(b, "text");
			const cJSON *d
			    = cJSON_GetObjectItem(b, "callback_data");
			if (cJSON_IsString(t) && cJSON_IsString(d)) {
				kbd_button(&g->console_kbd, t->valuestring,
				    d->valuestring);
				fprintf(
				    g->cout, " [%d] %s", ++n, t->valuestring);
			}
		}
		fputs("\n", g->cout);
	}
	if (n > 0) {
		g->console_msg_id = ++g->console_next_msg;
		fputs("  (type a number to press a button)\n", g->cout);
	}
	fflush(g->cout);
	pthread_mutex_unlock(&g->console_mtx);
	free(plain);
	cJSON_Delete(j);
}

/* Decide what happens to an item after its call (rv, res). Returns
 * true when Telegram took it. */
static bool
apply_result(gw *g, sender_state *ss, ob_item *it, int rv, botapi_result *res,
    round_result *r, int64_t now)
{
	char labels[64];

	if (rv == 0 && (res->ok || botapi_is_not_modified(res))) {
		chat_backoff *b = backoff_of(ss, it->chat_id, false);
		if (b != NULL) {
			b->delay_ms = 0;
		}
		const cJSON *mid = cJSON_GetObjectItemCaseSensitive(
		    res->result, "message_id");
		uint64_t ticket = 0;
		if ((it->tag[0] == 't' || it->tag[0] == 'i')
		    && cJSON_IsNumber(mid)
		    && gw_parse_id(it->tag + 1, "", &ticket) == 0) {
			r->maps[r->n_maps].kind = it->tag[0];
			r->maps[r->n_maps].chat_id = it->chat_id;
			r->maps[r->n_maps].message_id
			    = (int64_t) mid->valuedouble;
			r->maps[r->n_maps++].ticket = ticket;
		}
		r->del[r->n_del++] = it->id;
		return true;
	}
	if (rv == 0 && res->error_code == 429) {
		*pause_of(ss, it->method) = now + res->retry_after * 1000LL;
		ss->saw_429 = true;
		log_warn("Bot API 429 on %s: waiting %d s", it->method,
		    res->retry_after);
	} else if (rv == 0 && botapi_is_blocked(res)) {
		log_info("chat %lld blocked the bot (%s): not sending to it",
		    (long long) it->chat_id, res->description);
		r->blocked[r->n_blocked++] = it->chat_id;
		r->del[r->n_del++] = it->id;
		metric_inc(gw_counter(g, "opsdesk_gateway_chats_blocked_total",
		    "Chats marked blocked after a 403", NULL));
	} else if (rv != 0 || res->error_code >= 500
	    || res->http_status == 0) {
		chat_backoff *b = backoff_of(ss, it->chat_id, true);
		b->delay_ms = b->delay_ms ? b->delay_ms * 2 : 1000;
		if (b->delay_ms > BACKOFF_MAX_MS) {
			b->delay_ms = BACKOFF_MAX_MS;
		}
		b->until_ms = now + b->delay_ms;
		log_warn("Bot API %s failed (%s): retrying in %lld ms",
		    it->method, res->description, (long long) b->delay_ms);
	} else {
		/* A permanent refusal (400 bad request): retrying cannot
		 * help. */
		log_warn("Bot API refused %s to chat %lld: %d %s", it->method,
		    (long long) it->chat_id, res->error_code,
		    res->description);
		snprintf(labels, sizeof(labels), "method=\"%s\"", it->method);
		metric_inc(
		    gw_counter(g, "opsdesk_gateway_outbox_dropped_total",
		        "Outgoing calls refused for good", labels));
		r->del[r->n_del++] = it->id;
	}
	return false;
}

/* One call of a round, run on its own thread when the round has more. */
typedef struct send_job {
	gw *g;
	ob_item *it;
	int rv;
	botapi_result res;
	pthread_t th;
	bool threaded;
} send_job;

static void *
send_job_run(void *arg)
{
	send_job *j = arg;
	j->rv = botapi_call(
	    j->g->api, j->it->method, j->it->body, 15000, &j->res);
	return NULL;
}

/* Send the round's calls concurrently (each to another chat). */
static void
send_batch(gw *g, send_job *jobs, int n)
{
	for (int i = 1; i < n; i++) {
		jobs[i].threaded
		    = pthread_create(&jobs[i].th, NULL, send_job_run, &jobs[i])
		    == 0;
		if (!jobs[i].threaded) {
			send_job_run(&jobs[i]);
		}
	}
	if (n > 0) {
		send_job_run(&jobs[0]);
	}
	for (int i = 1; i < n; i++) {
		if (jobs[i].threaded) {
			pthread_join(jobs[i].th, NULL);
		}
	}
}

static bool
is_blocked(MDB_txn *txn, store *s, int64_t chat)
{
	uint8_t k[8];
	MDB_val v;
	store_key_u64(k, (uint64_t) chat);
	return store_get(txn, store_db(s, GW_DB_BLOCKED), k, 8, &v) == 0;
}

/* Load up to SCAN_MAX queued items; drop those to blocked chats. */
static int
load_items(gw *g, ob_item *items, round_result *r, uint64_t *depth)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	MDB_stat st;
	int n = 0;

	if (store_read_begin(g->st, &txn) != 0) {
		return 0;
	}
	if (mdb_stat(txn, store_db(g->st, GW_DB_OUTBOX), &st) == 0) {
		*depth = st.ms_entries;
	}
	if (mdb_stat(txn, store_db(g->st, GW_DB_BLOCKED), &st) == 0) {
		metric_set(metrics_gauge(g->m, "opsdesk_gateway_blocked_chats",
		               "Chats that blocked the bot", NULL),
		    (double) st.ms_entries);
	}
	if (mdb_cursor_open(txn, store_db(g->st, GW_DB_OUTBOX), &cur) != 0) {
		store_read_end(txn);
		return 0;
	}
	for (int op = MDB_FIRST;
	     n + r->n_del < SCAN_MAX && mdb_cursor_get(cur, &k, &v, op) == 0;
	     op = MDB_NEXT) {
		ob_item *it = &items[n];
		const char *method, *tag, *body;
		uint64_t id = store_key_get_u64(k.mv_data);
		if (outbox_decode(v.mv_data, v.mv_size, &it->chat_id, &method,
		        &tag, &body)
		    != 0) {
			r->del[r->n_del++] = id;
			continue;
		}
		if (is_blocked(txn, g->st, it->chat_id)) {
			r->del[r->n_del++] = id;
			continue;
		}
		if ((it->body = strdup(body)) == NULL) {
			break;
		}
		it->id = id;
		od_strlcpy(it->method, method, sizeof(it->method));
		od_strlcpy(it->tag, tag, sizeof(it->tag));
		n++;
	}
	mdb_cursor_close(cur);
	store_read_end(txn);
	return n;
}

static void
set_my_commands(gw *g)
{
	size_t n;
	const gw_command *c = router_commands(&n);
	for (int admin = 0; admin <= 1; admin++) {
		int scopes = admin ? g->cfg->n_admins : 1;
		for (int s = 0; s < scopes; s++) {
			cJSON *body = cJSON_CreateObject();
			cJSON *list = cJSON_AddArrayToObject(body, "commands");
			for (size_t i = 0; i < n; i++) {
				if (!c[i].menu || (c[i].admin && !admin)) {
					continue;
				}
				cJSON *e = cJSON_CreateObject();
				cJSON_AddStringToObject(
				    e, "command", c[i].name);
				cJSON_AddStringToObject(
				    e, "description", c[i].about);
				cJSON_AddItemToArray(list, e);
			}
			if (admin) {
				cJSON *scope
				    = cJSON_AddObjectToObject(body, "scope");
				cJSON_AddStringToObject(scope, "type", "chat");
				cJSON_AddNumberToObject(scope, "chat_id",
				    (double) g->cfg->admins[s]);
			}
			char *text = cJSON_PrintUnformatted(body);
			botapi_result res;
			if (text != NULL
			    && botapi_call(
			           g->api, "setMyCommands", text, 10000, &res)
			        == 0) {
				botapi_result_clear(&res);
			}
			cJSON_free(text);
			cJSON_Delete(body);
		}
	}
}

static void *
sender_main(void *arg)
{
	gw *g = arg;
	sender_state *ss = calloc(1, sizeof(*ss));
	ob_item *items = calloc(SCAN_MAX, sizeof(ob_item));
	round_result *r = calloc(1, sizeof(*r));
	send_job *jobs = calloc(SCAN_MAX, sizeof(send_job));
	metric *depth_g = metrics_gauge(g->m, "opsdesk_gateway_outbox_depth",
	    "Messages waiting in the outbound queue", NULL);

	if (ss == NULL || items == NULL || r == NULL || jobs == NULL) {
		log_error("outbox sender: out of memory");
		goto out;
	}
	ss->concurrency = 1;
	if (g->mode != GW_MODE_CONSOLE) {
		set_my_commands(g);
	}
	while (!g->stopping) {
		uint64_t depth = 0;
		int64_t chats_seen[SCAN_MAX];
		int n_seen = 0, nb = 0;
		int64_t wait = 1000;
		bool progressed = false;

		memset(r, 0, sizeof(*r));
		int n = load_items(g, items, r, &depth);
		metric_set(depth_g, (double) depth);
		int64_t now = od_mono_ms();
		/* Pick at most one item per chat (the oldest: order per chat),
		 * within the pauses, backoffs and throttle. */
		for (int i = 0; i < n && !g->stopping; i++) {
			ob_item *it = &items[i];
			bool seen = false;
			for (int c = 0; c < n_seen && !seen; c++) {
				seen = chats_seen[c] == it->chat_id;
			}
			if (seen) {
				continue;
			}
			chats_seen[n_seen++] = it->chat_id;
			int64_t w = 0, *pause = pause_of(ss, it->method);
			chat_backoff *b = backoff_of(ss, it->chat_id, false);
			if (*pause > now) {
				w = *pause - now;
			} else if (b != NULL && b->until_ms > now) {
				w = b->until_ms - now;
			} else {
				w = throttle_wait_ms(g->thr, it->chat_id, now);
			}
			if (w > 0) {
				wait = w < wait ? w : wait;
				continue;
			}
			if (nb >= ss->concurrency) {
				wait = 0;
				continue;
			}
			throttle_sent(g->thr, it->chat_id, now);
			memset(&jobs[nb], 0, sizeof(jobs[nb]));
			jobs[nb].g = g;
			jobs[nb++].it = it;
		}
		if (g->mode == GW_MODE_CONSOLE) {
			for (int i = 0; i < nb; i++) {
				console_print(
				    g, jobs[i].it->method, jobs[i].it->body);
				r->del[r->n_del++] = jobs[i].it->id;
			}
		} else {
			send_batch(g, jobs, nb);
			ss->saw_429 = false;
			bool all_ok = true;
			now = od_mono_ms();
			for (int i = 0; i < nb; i++) {
				all_ok &= apply_result(g, ss, jobs[i].it,
				    jobs[i].rv, &jobs[i].res, r, now);
				botapi_result_clear(&jobs[i].res);
			}
			if (ss->saw_429) {
				ss->concurrency = 1;
			} else if (all_ok && nb == ss->concurrency
			    && ss->concurrency < CONCURRENCY_MAX) {
				ss->concurrency *= 2;
			}
		}
		progressed = nb > 0;
		for (int i = 0; i < n; i++) {
			free(items[i].body);
			items[i].body = NULL;
		}
		if (r->n_del + r->n_blocked + r->n_maps > 0) {
			int rv = store_write(g->st, round_fn, r);
			if (rv != 0) {
				log_error("outbox: cannot record sends: %s",
				    od_strerror(rv));
			}
			for (int i = 0; rv == 0 && i < r->n_blocked; i++) {
				gw_publish(g, "chat_blocked", r->blocked[i],
				    "403 from the Bot API");
			}
			progressed = true;
		}
		if (g->mode == GW_MODE_CONSOLE) {
			pthread_mutex_lock(&g->console_mtx);
			pthread_cond_broadcast(&g->console_cond);
			pthread_mutex_unlock(&g->console_mtx);
		}
		if (progressed) {
			continue;
		}
		pthread_mutex_lock(&g->ob_mtx);
		if (!g->ob_kick && !g->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = ts.tv_nsec + (wait % 1000) * 1000000;
			ts.tv_sec += wait / 1000 + ns / 1000000000;
			ts.tv_nsec = ns % 1000000000;
			pthread_cond_timedwait(&g->ob_cond, &g->ob_mtx, &ts);
		}
		g->ob_kick = false;
		pthread_mutex_unlock(&g->ob_mtx);
	}
out:
	free(ss);
	free(items);
	free(r);
	free(jobs);
	return NULL;
}

void
gw_outbox_kick(gw *g)
{
	pthread_mutex_lock(&g->ob_mtx);
	g->ob_kick = true;
	pthread_cond_signal(&g->ob_cond);
	pthread_mutex_unlock(&g->ob_mtx);
}

uint64_t
gw_outbox_depth(gw *g)
{
	MDB_txn *txn = NULL;
	MDB_stat st;
	uint64_t n = 0;
	if (store_read_begin(g->st, &txn) == 0) {
		if (mdb_stat(txn, store_db(g->st, GW_DB_OUTBOX), &st) == 0) {
			n = st.ms_entries;
		}
		store_read_end(txn);
	}
	return n;
}

int
outbox_start(gw *g)
{
	if (pthread_create(&g->sender, NULL, sender_main, g) != 0) {
		return OD_ENOMEM;
	}
	g->sender_started = true;
	return 0;
}

void
outbox_stop(gw *g)
{
	if (g == NULL || !g->sender_started) {
		return;
	}
	g->stopping = 1;
	gw_outbox_kick(g);
	pthread_join(g->sender, NULL);
	g->sender_started = false;
}
