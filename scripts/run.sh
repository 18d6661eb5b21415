#!/usr/bin/env bash
# Run the whole opsdesk suite locally: install what is missing, build,
# start bus-relay and every service in dependency order with data in
# ./var/data and logs in ./var/log, then chat with the bot.
#
# Without TELEGRAM_BOT_TOKEN the gateway runs in console mode in this
# terminal: you are both admin and user; buttons show as numbered choices.
# With a token it long-polls Telegram and this script follows the logs.
# Ctrl-C stops everything cleanly; running it again reuses the data.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/bootstrap.sh"

build="$root/build-run"
echo "run.sh: building (first time takes a minute)..."
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBUILD_TESTING=OFF >"$root/build-run.configure.log" 2>&1 ||
	{ cat "$root/build-run.configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" >"$root/build-run.build.log" 2>&1 ||
	{ grep -E -A5 'error' "$root/build-run.build.log" | head -60; exit 1; }
bin="$build/bin"

mkdir -p "$root/var/data" "$root/var/log"
chmod 700 "$root/var" "$root/var/data"
if [ -z "${OPSDESK_CONFIG:-}" ]; then
	export OPSDESK_CONFIG="$root/var/opsdesk.json"
	if [ ! -f "$OPSDESK_CONFIG" ]; then
		cp "$root/deploy/opsdesk.local.json" "$OPSDESK_CONFIG"
		echo "run.sh: wrote $OPSDESK_CONFIG (edit it, then run again)"
	fi
fi
export OPSDESK_DATA_DIR="${OPSDESK_DATA_DIR:-$root/var/data}"
# In console mode the person at the terminal is user 1 and the admin.
if [ -z "${TELEGRAM_BOT_TOKEN:-}" ] && [ -z "${TELEGRAM_BOT_TOKEN_FILE:-}" ]; then
	export OPSDESK_ADMINS="${OPSDESK_ADMINS:-1}"
	export OPSDESK_ADMIN_CHAT="${OPSDESK_ADMIN_CHAT:-1}"
fi

pids=()
names=()
stop_all() {
	trap - INT TERM EXIT
	echo
	echo "run.sh: stopping..."
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		if wait "${pids[$i]}" 2>/dev/null; then
			echo "  ${names[$i]} stopped"
		else
			echo "  ${names[$i]} exited with status $?"
		fi
	done
}
trap stop_all INT TERM EXIT

# name, HTTP port (for the readiness wait)
services=(
	"bus-relay 9400"
	"ticket-service 9410"
	"incident-service 9420"
	"health-prober 9430"
	"status-publisher 8080"
)

for entry in "${services[@]}"; do
	set -- $entry
	name=$1
	port=$2
	if [ ! -x "$bin/$name" ]; then
		echo "run.sh: $name is not built yet, skipping"
		continue
	fi
	"$bin/$name" >>"$root/var/log/$name.log" 2>&1 &
	pids+=($!)
	names+=("$name")
	for _ in $(seq 1 50); do
		if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "${pids[-1]}" 2>/dev/null; then
			echo "run.sh: $name failed to start; last log lines:"
			tail -n 20 "$root/var/log/$name.log"
			exit 1
		fi
		sleep 0.1
	done
	echo "run.sh: $name up (http://127.0.0.1:$port/metrics)"
done

echo
echo "  Status page:  http://127.0.0.1:8080/"
echo "  Status JSON:  http://127.0.0.1:8080/api/v2/summary.json"
echo "  Bus events:   $bin/opsctl tail"
echo "  Logs:         $root/var/log/"
echo

if [ ! -x "$bin/telegram-gateway" ]; then
	echo "run.sh: telegram-gateway is not built yet; press Ctrl-C to stop."
	while true; do sleep 3600; done
fi

if [ -n "${TELEGRAM_BOT_TOKEN:-}${TELEGRAM_BOT_TOKEN_FILE:-}" ]; then
	"$bin/telegram-gateway" >>"$root/var/log/telegram-gateway.log" 2>&1 &
	pids+=($!)
	names+=("telegram-gateway")
	echo "run.sh: the bot is polling Telegram; following its log (Ctrl-C stops)"
	tail -n 0 -f "$root/var/log/telegram-gateway.log" &
	tailpid=$!
	wait "${pids[-1]}" || true
	kill "$tailpid" 2>/dev/null || true
else
	echo "run.sh: console chat — try /help, /support, /status_page, /health"
	OPSDESK_GATEWAY_MODE=console "$bin/telegram-gateway" \
		2>>"$root/var/log/telegram-gateway.log" || true
fi
