/*
 * telegram-gateway — the Telegram bot of opsdesk (see gateway.h). Thin:
 * everything is in gateway_core (gw_service_start wires it).
 */
#include <curl/curl.h>

#include "gateway.h"
#include "runtime/runtime.h"

static const char help[]
    = "The Telegram bot: users open tickets and read the status, admins run\n"
      "health, monitoring, incidents and operations from the chat.\n"
      "  TELEGRAM_BOT_TOKEN / TELEGRAM_BOT_TOKEN_FILE  the bot token (never "
      "logged)\n"
      "  TELEGRAM_API_URL      Bot API base (https://api.telegram.org)\n"
      "  OPSDESK_GATEWAY_MODE  poll, webhook or console (poll with a token,\n"
      "                        else console: chat in this terminal)\n"
      "  TELEGRAM_WEBHOOK_SECRET  required in webhook mode\n"
      "  OPSDESK_ADMINS, OPSDESK_ADMIN_CHAT  admins and the admin chat\n";

int
main(int argc, char **argv)
{
	runtime *rt;
	int rv = runtime_init(
	    &rt, argc, argv, "telegram-gateway", "127.0.0.1:9450", help);

	if (rv != 0) {
		return rv < 0 ? 0 : 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (gw_service_start(rt) != 0) {
		runtime_fini(rt);
		curl_global_cleanup();
		return 1;
	}
	rv = runtime_run(rt);
	curl_global_cleanup();
	return rv;
}
