/*
 * service — telegram-gateway's wiring (gw_service_start): the token and
 * mode from the environment, the store, the publisher, the gateway and
 * its HTTP routes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log/log.h"
#include "runtime/runtime.h"

/* The token from the environment or its file, registered as a secret
 * before anything can log it. Caller frees. */
static char *
load_token(void)
{
	const char *t = config_env("TELEGRAM_BOT_TOKEN", NULL);
	const char *path = config_env("TELEGRAM_BOT_TOKEN_FILE", NULL);
	char buf[512];
	char *tok = NULL;

	if (t != NULL) {
		tok = strdup(t);
	} else if (path != NULL) {
		FILE *f = fopen(path, "r");
		if (f == NULL) {
			log_error(
			    "cannot read TELEGRAM_BOT_TOKEN_FILE %s", path);
			return NULL;
		}
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		while (n > 0
		    && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
		        || buf[n - 1] == ' ')) {
			buf[--n] = '\0';
		}
		tok = n > 0 ? strdup(buf) : NULL;
	}
	if (tok != NULL) {
		log_add_secret(tok);
	}
	return tok;
}

static bool
intake_ready(void *arg)
{
	return gw_intake_open(arg);
}

static void
free_gateway(void *arg)
{
	gw_free(arg);
}

static void
free_token(void *arg)
{
	free(arg);
}

static void
stop_runtime(void *arg)
{
	runtime_stop(arg);
}

int
gw_service_start(runtime *rt)
{
	store *st = NULL;
	gw *g = NULL;
	char *token = load_token();
	int rv;

	/* Freed after the gateway, which borrows it. */
	if ((rv = runtime_defer(rt, free_token, token)) != 0) {
		return rv;
	}
	const char *mode_s = config_env(
	    "OPSDESK_GATEWAY_MODE", token != NULL ? "poll" : "console");
	gw_options opt = {
		.cfg = runtime_config(rt),
		.metrics = runtime_metrics(rt),
		.api_url
		= config_env("TELEGRAM_API_URL", "https://api.telegram.org"),
		.token = token,
		.webhook_secret = config_env("TELEGRAM_WEBHOOK_SECRET", NULL),
		.on_console_eof = stop_runtime,
		.eof_arg = rt,
	};
	if (strcmp(mode_s, "poll") == 0) {
		opt.mode = GW_MODE_POLL;
	} else if (strcmp(mode_s, "webhook") == 0) {
		opt.mode = GW_MODE_WEBHOOK;
	} else if (strcmp(mode_s, "console") == 0) {
		opt.mode = GW_MODE_CONSOLE;
	} else {
		log_error("OPSDESK_GATEWAY_MODE: expected poll, webhook or "
		          "console, got \"%s\"",
		    mode_s);
		return OD_EINVAL;
	}
	if (opt.mode != GW_MODE_CONSOLE && token == NULL) {
		log_error("mode %s needs TELEGRAM_BOT_TOKEN or "
		          "TELEGRAM_BOT_TOKEN_FILE",
		    mode_s);
		return OD_EINVAL;
	}
	if (opt.mode == GW_MODE_WEBHOOK && opt.webhook_secret == NULL) {
		log_error("webhook mode needs TELEGRAM_WEBHOOK_SECRET");
		return OD_EINVAL;
	}
	store_options so = { .dbs = gw_db_names };
	if ((rv = runtime_open_store(rt, &so, &st)) != 0) {
		log_error("cannot open the store: %s", od_strerror(rv));
		return rv;
	}
	opt.store = st;
	/* gateway.* events; also makes /readyz wait for the bus. */
	if ((rv = runtime_publisher(rt, &opt.publisher)) != 0) {
		log_error(
		    "cannot open the bus publisher: %s", od_strerror(rv));
		return rv;
	}
	if ((rv = gw_new(&g, &opt)) != 0) {
		return rv;
	}
	/* Deferred callbacks run in reverse: the gateway stops before the
	 * store it writes to closes. */
	if ((rv = runtime_defer(rt, free_gateway, g)) != 0) {
		return rv;
	}
	if ((rv = runtime_http(rt, gw_http_routes, g)) != 0) {
		log_error("cannot start HTTP on %s: %s",
		    runtime_config(rt)->http_addr, od_strerror(rv));
		return rv;
	}
	/* Not ready until gw_start has replayed the inbox: the webhook
	 * answers 503 until then, and Telegram redelivers. */
	if ((rv = runtime_ready_check(rt, "intake", intake_ready, g)) != 0) {
		return rv;
	}
	if ((rv = gw_start(g)) != 0) {
		log_error("cannot start the gateway: %s", od_strerror(rv));
		return rv;
	}
	/* Ultra users' live /status_page views (ultra.c); timers stop
	 * before the gateway is freed. */
	if ((rv = runtime_every(rt, gw_get_settings(g)->live_refresh_ms,
	         gw_ultra_live_tick, g))
	    != 0) {
		return rv;
	}
	log_info("telegram-gateway running in %s mode", mode_s);
	return 0;
}
