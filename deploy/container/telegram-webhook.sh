#!/bin/sh
# Tell Telegram where updates go, before the gateway starts (Kubernetes runs
# it as the gateway's init container; run it by hand elsewhere):
#   webhook mode: setWebhook https://$OPSDESK_PUBLIC_HOST<webhook_path> with
#                 the secret token (Telegram sends it back in
#                 X-Telegram-Bot-Api-Secret-Token; the gateway checks it);
#   poll mode:    deleteWebhook (getUpdates is refused while a webhook is
#                 set).
# The token comes from TELEGRAM_BOT_TOKEN_FILE and never reaches the
# command line or the log (curl reads the URL from its stdin); the secret
# token from TELEGRAM_WEBHOOK_SECRET, as the gateway reads it.
set -eu
api=${TELEGRAM_API_URL:-https://api.telegram.org}
mode=${OPSDESK_GATEWAY_MODE:-poll}
path=${OPSDESK_WEBHOOK_PATH:-/telegram/webhook}
: "${TELEGRAM_BOT_TOKEN_FILE:?the bot token file}"

call() { # METHOD [curl data args...]: the URL (with the token) goes via stdin
	method=$1
	shift
	printf 'url = "%s/bot%s/%s"\n' "$api" \
		"$(tr -d '\r\n' <"$TELEGRAM_BOT_TOKEN_FILE")" "$method" |
		curl -fsS --retry 5 --retry-connrefused --max-time 30 \
			-o /dev/null -K - "$@" ||
		{ echo "telegram-webhook: $method failed" >&2; exit 1; }
	echo "telegram-webhook: $method ok"
}

case "$mode" in
webhook)
	: "${OPSDESK_PUBLIC_HOST:?the public host name of the webhook}"
	: "${TELEGRAM_WEBHOOK_SECRET:?the webhook secret}"
	call setWebhook --data-urlencode "url=https://$OPSDESK_PUBLIC_HOST$path" \
		--data-urlencode "secret_token=$TELEGRAM_WEBHOOK_SECRET" \
		--data-urlencode 'allowed_updates=["message","edited_message","callback_query"]'
	;;
poll)
	call deleteWebhook
	;;
*)
	echo "telegram-webhook: mode $mode: nothing to do"
	;;
esac
