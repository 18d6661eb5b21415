/*
 * updates — where updates come from: getUpdates long polling (offset and
 * accepted updates persisted, 409 backs off), the webhook (secret header
 * checked, redeliveries deduplicated by gw_accept) and the console (the
 * terminal user is admin and user; numbers press the buttons shown).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "hook.h"
#include "log/log.h"

/* ---- parsing ---- */

static int64_t
num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	/* Ids need up to 52 bits: valueint is 32-bit. */
	return cJSON_IsNumber(v) ? (int64_t) v->valuedouble : 0;
}

static const char *
str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return (cJSON_IsString(v) && v->valuestring) ? v->valuestring : NULL;
}

static char *
dup_clean(const char *s)
{
	return s ? od_utf8_sanitize(s, strlen(s)) : NULL;
}

static void
parse_user(const cJSON *from, gw_update *u)
{
	const char *first = str(from, "first_name");
	const char *last = str(from, "last_name");
	const char *user = str(from, "username");
	u->user_id = num(from, "id");
	if (first != NULL) {
		snprintf(u->user_name, sizeof(u->user_name), "%s%s%s", first,
		    last ? " " : "", last ? last : "");
	} else if (user != NULL) {
		snprintf(u->user_name, sizeof(u->user_name), "%s", user);
	}
	/* Names are outside text: keep them valid UTF-8. */
	char *clean = dup_clean(u->user_name);
	if (clean != NULL) {
		od_strlcpy(u->user_name, clean, sizeof(u->user_name));
		free(clean);
	}
}

static void
parse_message(const cJSON *m, gw_update *u)
{
	const cJSON *chat = cJSON_GetObjectItemCaseSensitive(m, "chat");
	const char *type = str(chat, "type");
	u->chat_id = num(chat, "id");
	od_strlcpy(u->chat_type, type ? type : "", sizeof(u->chat_type));
	u->message_id = num(m, "message_id");
	parse_user(cJSON_GetObjectItemCaseSensitive(m, "from"), u);
	const cJSON *rt
	    = cJSON_GetObjectItemCaseSensitive(m, "reply_to_message");
	if (cJSON_IsObject(rt)) {
		u->reply_to_id = num(rt, "message_id");
		u->reply_to_text = dup_clean(str(rt, "text"));
	}
}

int
gw_update_parse(const cJSON *j, gw_update *out)
{
	gw_update u;
	const cJSON *m;

	memset(&u, 0, sizeof(u));
	if (!cJSON_IsNumber(
	        cJSON_GetObjectItemCaseSensitive(j, "update_id"))) {
		return OD_EMALFORMED;
	}
	u.update_id = num(j, "update_id");
	if (cJSON_IsObject(
	        m = cJSON_GetObjectItemCaseSensitive(j, "message"))) {
		u.kind = GW_UPD_MESSAGE;
		parse_message(m, &u);
		u.text = dup_clean(str(m, "text"));
	} else if (cJSON_IsObject(m = cJSON_GetObjectItemCaseSensitive(
	                              j, "edited_message"))) {
		u.kind = GW_UPD_EDITED;
		parse_message(m, &u);
	} else if (cJSON_IsObject(m = cJSON_GetObjectItemCaseSensitive(
	                              j, "callback_query"))) {
		const cJSON *msg
		    = cJSON_GetObjectItemCaseSensitive(m, "message");
		const char *id = str(m, "id");
		u.kind = GW_UPD_CALLBACK;
		if (cJSON_IsObject(msg)) {
			parse_message(msg, &u);
		}
		/* The presser, not the message's author (the bot). */
		parse_user(cJSON_GetObjectItemCaseSensitive(m, "from"), &u);
		od_strlcpy(u.callback_id, id ? id : "", sizeof(u.callback_id));
		u.text = dup_clean(str(m, "data"));
	}
	*out = u;
	return 0;
}

void
gw_update_clear(gw_update *u)
{
	if (u != NULL) {
		free(u->text);
		free(u->reply_to_text);
		u->text = NULL;
		u->reply_to_text = NULL;
	}
}

char *
gw_update_to_json(const gw_update *u)
{
	cJSON *j = cJSON_CreateObject();
	cJSON *m = cJSON_CreateObject();
	cJSON *chat = cJSON_AddObjectToObject(m, "chat");
	cJSON *from = cJSON_CreateObject();
	char *out;

	cJSON_AddNumberToObject(j, "update_id", (double) u->update_id);
	cJSON_AddNumberToObject(chat, "id", (double) u->chat_id);
	cJSON_AddStringToObject(chat, "type", u->chat_type);
	cJSON_AddNumberToObject(m, "message_id", (double) u->message_id);
	cJSON_AddNumberToObject(from, "id", (double) u->user_id);
	cJSON_AddStringToObject(from, "first_name", u->user_name);
	if (u->reply_to_id != 0) {
		cJSON *rt = cJSON_AddObjectToObject(m, "reply_to_message");
		cJSON_AddNumberToObject(
		    rt, "message_id", (double) u->reply_to_id);
		if (u->reply_to_text != NULL) {
			cJSON_AddStringToObject(rt, "text", u->reply_to_text);
		}
	}
	switch (u->kind) {
	case GW_UPD_MESSAGE:
	case GW_UPD_EDITED:
		cJSON_AddItemToObject(m, "from", from);
		if (u->text != NULL) {
			cJSON_AddStringToObject(m, "text", u->text);
		}
		cJSON_AddItemToObject(j,
		    u->kind == GW_UPD_MESSAGE ? "message" : "edited_message",
		    m);
		break;
	case GW_UPD_CALLBACK: {
		cJSON *cq = cJSON_AddObjectToObject(j, "callback_query");
		cJSON_AddStringToObject(cq, "id", u->callback_id);
		cJSON_AddItemToObject(cq, "from", from);
		if (u->text != NULL) {
			cJSON_AddStringToObject(cq, "data", u->text);
		}
		cJSON_AddItemToObject(cq, "message", m);
		break;
	}
	default:
		cJSON_Delete(m);
		cJSON_Delete(from);
		break;
	}
	out = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (out == NULL) {
		return NULL;
	}
	/* cJSON_free and free are the same allocator by default; copy to be
	 * sure the caller's free() is right. */
	char *copy = strdup(out);
	cJSON_free(out);
	return copy;
}

/* Parse an array of updates (borrowed) into a new array. */
static int
parse_batch(const cJSON *arr, gw_update **out, size_t *n)
{
	size_t cap = (size_t) cJSON_GetArraySize(arr), k = 0;
	gw_update *u = calloc(cap ? cap : 1, sizeof(*u));
	const cJSON *e;
	if (u == NULL) {
		return OD_ENOMEM;
	}
	cJSON_ArrayForEach(e, arr)
	{
		if (k < cap && gw_update_parse(e, &u[k]) == 0) {
			k++;
		}
	}
	*out = u;
	*n = k;
	return 0;
}

static void
free_batch(gw_update *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		gw_update_clear(&u[i]);
	}
	free(u);
}

/* ---- poll ---- */

#define OFFSET_MAX_AGE_MS (6LL * 24 * 3600 * 1000)

static int64_t
stored_offset(gw *g)
{
	MDB_txn *txn = NULL;
	MDB_val v;
	int64_t off = 0;
	if (store_read_begin(g->st, &txn) == 0) {
		if (store_get(
		        txn, store_db(g->st, GW_DB_META), "offset", 6, &v)
		        == 0
		    && v.mv_size == 16) {
			off = (int64_t) store_key_get_u64(v.mv_data);
			/* After a week of silence Telegram starts update ids
			 * anew at random: an old offset would hide them. */
			int64_t at = (int64_t) store_key_get_u64(
			    (const uint8_t *) v.mv_data + 8);
			if (od_now_ms() - at > OFFSET_MAX_AGE_MS) {
				log_info("stored offset is older than 6 days: "
				         "starting from the first update");
				off = 0;
			}
		}
		store_read_end(txn);
	}
	return off;
}

/* Sleep ms in small steps so shutdown is prompt. */
static void
nap(gw *g, int64_t ms)
{
	for (int64_t t = 0; t < ms && !g->stopping; t += 50) {
		usleep(50 * 1000);
	}
}

static void *
poll_main(void *arg)
{
	gw *g = arg;
	int64_t offset = stored_offset(g);
	int64_t backoff = 0;
	char body[160];

	log_info("polling getUpdates from offset %lld", (long long) offset);
	bool held = false;
	while (!g->stopping) {
		botapi_result res;
		if (gw_backlogged(g)) {
			/* Telegram keeps the updates (24 h): take them when
			 * the backlog has gone down, rather than grow. */
			if (!held) {
				log_warn("backlog over its bound: not taking "
				         "updates for now");
				metric_inc(gw_counter(g,
				    "opsdesk_gateway_intake_paused_total",
				    "Times updates were left with Telegram "
				    "under backlog",
				    NULL));
			}
			held = true;
			nap(g, 200);
			continue;
		}
		if (held) {
			log_info("backlog back under its bound: taking "
			         "updates again");
			held = false;
		}
		snprintf(body, sizeof(body),
		    "{\"offset\":%lld,\"limit\":100,\"timeout\":%d,"
		    "\"allowed_updates\":[\"message\",\"edited_message\","
		    "\"callback_query\"]}",
		    (long long) offset, g->set.poll_timeout_s);
		int64_t t0 = od_mono_ms();
		int rv = gw_botapi_call(g->api, "getUpdates", body,
		    (g->set.poll_timeout_s + 10) * 1000, &res);
		if (rv != 0 || !res.ok) {
			if (rv == 0 && res.error_code == 409) {
				/* Another poller or a webhook: Telegram
				 * answers one 409 per 3 s, so waiting 3 s
				 * never spins. */
				backoff = 3000;
			} else if (rv == 0 && res.error_code == 429) {
				backoff = res.retry_after * 1000LL;
			} else {
				backoff = backoff < 1000 ? 1000 : backoff * 2;
				if (backoff > 60000) {
					backoff = 60000;
				}
			}
			log_warn(
			    "getUpdates failed (%d %s): retrying in %lld ms",
			    rv == 0 ? res.error_code : 0, res.description,
			    (long long) backoff);
			gw_botapi_result_clear(&res);
			nap(g, backoff);
			continue;
		}
		backoff = 0;
		gw_update *batch = NULL;
		size_t n = 0;
		if (cJSON_IsArray(res.result)
		    && parse_batch(res.result, &batch, &n) == 0) {
			int64_t next = offset;
			for (size_t i = 0; i < n; i++) {
				if (batch[i].update_id + 1 > next) {
					next = batch[i].update_id + 1;
				}
			}
			/* Handled (or kept in the inbox) and the offset
			 * durable before the next poll confirms them to
			 * Telegram: one commit for the page. */
			rv = n > 0 ? gw_accept_page(g, batch, n, next) : 0;
			if (rv == 0) {
				offset = next;
			} else {
				log_error("cannot accept updates: %s",
				    od_strerror(rv));
				nap(g, 1000);
			}
			free_batch(batch, n);
		}
		gw_botapi_result_clear(&res);
		if (n == 0 && od_mono_ms() - t0 < 500) {
			/* Nothing, and at once: a server that does not block
			 * on long polling (some emulators). Do not spin. */
			nap(g, 300);
		}
	}
	return NULL;
}

int
gw_poll_start(gw *g)
{
	if (pthread_create(&g->poller, NULL, poll_main, g) != 0) {
		return OD_ENOMEM;
	}
	g->poller_started = true;
	return 0;
}

void
gw_poll_stop(gw *g)
{
	if (g->poller_started) {
		g->stopping = 1;
		gw_botapi_abort(g->api);
		pthread_join(g->poller, NULL);
		g->poller_started = false;
	}
}

/* ---- webhook ---- */

/* Compare without an early exit, so timing does not reveal the secret. */
static bool
secret_ok(const char *want, const char *got)
{
	size_t wl = strlen(want), gl = got ? strlen(got) : 0;
	unsigned char d = (unsigned char) (wl != gl);
	for (size_t i = 0; i < wl; i++) {
		d |= (unsigned char) (want[i] ^ (i < gl ? got[i] : 0));
	}
	return wl > 0 && d == 0;
}

/* One webhook request, from either listener: the status and reply. */
static int
webhook_decide(gw *g, const char *method, const char *secret, const char *body,
    size_t body_len, const char **ctype, const char **text)
{
	cJSON *j = NULL;
	gw_update u;

	*ctype = NULL;
	if (strcmp(method, "POST") != 0) {
		*text = "POST only\n";
		return 405;
	}
	if (!secret_ok(g->webhook_secret, secret)) {
		metric_inc(
		    gw_counter(g, "opsdesk_gateway_webhook_rejected_total",
		        "Webhook requests without the right secret", NULL));
		*text = "unauthorized\n";
		return 401;
	}
	if (gw_backlogged(g)) {
		/* Telegram redelivers a non-2xx later. */
		metric_inc(gw_counter(g, "opsdesk_gateway_intake_paused_total",
		    "Times updates were left with Telegram under backlog",
		    NULL));
		*text = "busy, retry\n";
		return 503;
	}
	j = cJSON_ParseWithLength(body, body_len);
	if (j == NULL || gw_update_parse(j, &u) != 0) {
		cJSON_Delete(j);
		/* Telegram would retry a non-2xx forever: a malformed update
		 * is dropped with a 400 that says why. */
		*text = "not an update\n";
		return 400;
	}
	cJSON_Delete(j);
	int rv = gw_accept(g, &u, 1, 0);
	gw_update_clear(&u);
	if (rv != 0) {
		*text = "try again\n";
		return 503;
	}
	*ctype = "application/json";
	*text = "{}";
	return 200;
}

static int
webhook_handler(void *arg, const http_request *req, http_response *res)
{
	gw *g = arg;
	const char *ctype, *text;
	int status = webhook_decide(g, req->method,
	    http_request_header(req, "X-Telegram-Bot-Api-Secret-Token"),
	    req->body, req->body_len, &ctype, &text);
	return http_response_text(res, status, ctype, text);
}

static int
hook_handler(
    void *arg, const hook_req *req, const char **ctype, const char **text)
{
	gw *g = arg;
	if (strcmp(req->path, g->set.webhook_path) != 0) {
		*ctype = NULL;
		*text = "not found\n";
		return 404;
	}
	return webhook_decide(g, req->method, req->secret, req->body,
	    req->body_len, ctype, text);
}

int
gw_hook_start(gw *g)
{
	hook_limits lim = {
		.max_conns = g->set.webhook_max_connections,
		.header_ms = g->set.webhook_header_timeout_ms,
		.body_ms = g->set.webhook_body_timeout_ms,
		.max_body = (size_t) g->set.webhook_max_body,
	};
	if (g->mode != GW_MODE_WEBHOOK) {
		return 0;
	}
	if (g->set.webhook_listen[0] == '\0') {
		log_warn("webhook: served on the shared HTTP listener, which "
		         "has no time-outs or connection cap; set "
		         "gateway.webhook_listen");
		return 0;
	}
	return gw_listener_start(
	    &g->hook, g->set.webhook_listen, &lim, hook_handler, g, g->m);
}

void
gw_hook_stop(gw *g)
{
	gw_listener_stop(g->hook);
	g->hook = NULL;
}

int
gw_hook_port(gw *g)
{
	return g->hook != NULL ? gw_listener_port(g->hook) : 0;
}

int
gw_http_routes(void *arg, http_server *s)
{
	gw *g = arg;
	if (g->mode != GW_MODE_WEBHOOK || g->set.webhook_listen[0] != '\0') {
		return 0;
	}
	return http_server_route(
	    s, NULL, g->set.webhook_path, false, webhook_handler, g);
}

/* ---- console ---- */

static void
console_prompt(gw *g)
{
	pthread_mutex_lock(&g->console_mtx);
	fputs("\nyou> ", g->cout);
	fflush(g->cout);
	pthread_mutex_unlock(&g->console_mtx);
}

/* Wait until the update is handled and its replies printed. */
static void
console_wait(gw *g)
{
	int64_t until = od_mono_ms() + 5000;
	pthread_mutex_lock(&g->console_mtx);
	while (!g->stopping && od_mono_ms() < until
	    && (g->console_pending > 0 || gw_outbox_depth(g) > 0)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g->console_cond, &g->console_mtx, &ts);
	}
	pthread_mutex_unlock(&g->console_mtx);
}

void
gw_console_done(gw *g)
{
	pthread_mutex_lock(&g->console_mtx);
	if (g->console_pending > 0) {
		g->console_pending--;
	}
	pthread_cond_broadcast(&g->console_cond);
	pthread_mutex_unlock(&g->console_mtx);
}

/* One typed line as an update: a number presses a shown button. */
static void
console_line(gw *g, const char *line, int64_t update_id)
{
	gw_update u;
	memset(&u, 0, sizeof(u));
	u.update_id = update_id;
	u.chat_id = 1;
	u.user_id = 1;
	od_strlcpy(u.chat_type, "private", sizeof(u.chat_type));
	od_strlcpy(u.user_name, "console", sizeof(u.user_name));
	u.kind = GW_UPD_MESSAGE;
	char *end;
	long pick = strtol(line, &end, 10);
	pthread_mutex_lock(&g->console_mtx);
	if (end != line && *end == '\0' && pick > 0) {
		int n = 0;
		for (int r = 0; r < g->console_kbd.n_rows; r++) {
			for (int c = 0; c < g->console_kbd.n_cols[r]; c++) {
				if (++n == pick) {
					u.kind = GW_UPD_CALLBACK;
					u.text = strdup(
					    g->console_kbd.b[r][c].data);
					u.message_id = g->console_msg_id;
				}
			}
		}
	}
	g->console_pending++;
	pthread_mutex_unlock(&g->console_mtx);
	if (u.kind == GW_UPD_MESSAGE) {
		u.text = strdup(line);
	}
	if (u.text == NULL || gw_accept(g, &u, 1, 0) != 0) {
		gw_console_done(g);
	}
	gw_update_clear(&u);
}

static void *
console_main(void *arg)
{
	gw *g = arg;
	int fd = fileno(g->cin);
	char buf[8192];
	size_t len = 0;
	int64_t id = od_now_ms(); /* fresh ids on every start */

	pthread_mutex_lock(&g->console_mtx);
	fputs("opsdesk console — you are both a user and an admin.\n"
	      "Type /help for the menu, /support <text> to open a ticket; "
	      "numbers press buttons; Ctrl-D quits.\n",
	    g->cout);
	pthread_mutex_unlock(&g->console_mtx);
	console_prompt(g);
	while (!g->stopping) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 200);
		if (r <= 0) {
			continue;
		}
		ssize_t got = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (got <= 0) {
			if (got < 0 && errno == EINTR) {
				continue;
			}
			break;
		}
		len += (size_t) got;
		buf[len] = '\0';
		char *nl;
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			char *line = buf;
			size_t ll = strlen(line);
			while (ll > 0
			    && (line[ll - 1] == '\r' || line[ll - 1] == ' ')) {
				line[--ll] = '\0';
			}
			if (ll > 0) {
				console_line(g, line, ++id);
				console_wait(g);
			}
			console_prompt(g);
			size_t used = (size_t) (nl - buf) + 1;
			memmove(buf, nl + 1, len - used);
			len -= used;
		}
		if (len == sizeof(buf) - 1) {
			len = 0; /* an absurdly long line: drop it */
		}
	}
	if (!g->stopping && g->on_console_eof != NULL) {
		g->on_console_eof(g->eof_arg);
	}
	return NULL;
}

int
gw_console_start(gw *g)
{
	if (pthread_create(&g->console, NULL, console_main, g) != 0) {
		return OD_ENOMEM;
	}
	g->console_started = true;
	return 0;
}

void
gw_console_stop(gw *g)
{
	if (g->console_started) {
		g->stopping = 1;
		pthread_join(g->console, NULL);
		g->console_started = false;
	}
}
