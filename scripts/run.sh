#!/usr/bin/env bash
# Run the whole opsdesk suite locally: install what is missing, build,
# start bus-relay and every service in dependency order with data in
# ./var/data and logs in ./var/log, then chat with the bot.
#
# Without TELEGRAM_BOT_TOKEN the gateway runs in console mode in this
# terminal: you are both admin and user; buttons show as numbered choices.
# With a token it long-polls Telegram and this script follows the logs.
# Ctrl-C stops everything cleanly; running it again reuses the data.
#
# --locations: probe from three locations (eu-west, us-east, ap-south:
# three health-probers on this machine) and decide each component's
# state by quorum in a fourth, the decider (health-prober README,
# "Locations and quorum").
set -euo pipefail

locations=
for arg in "$@"; do
	case $arg in
	--locations) locations="eu-west us-east ap-south" ;;
	*)
		echo "usage: scripts/run.sh [--locations]" >&2
		exit 2
		;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Only what building and running needs; the test tools are test.sh's.
"$root/scripts/bootstrap.sh" run

# progress: the build's "[ 42%]" lines as one updating percentage (on a
# terminal) or a line per tenth (in a log); everything goes to the log.
progress() {
	local pct last=-1
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$root/build-run.build.log"
		[[ $line =~ ^\[\ *([0-9]+)%\] ]] || continue
		pct=${BASH_REMATCH[1]}
		if [ -t 1 ]; then
			printf '\rrun.sh: building %3d%%' "$pct"
		elif [ $((pct / 10)) -ne $((last / 10)) ]; then
			echo "run.sh: building $pct%"
		fi
		last=$pct
	done
	[ ! -t 1 ] || echo
}

build="$root/build-run"
echo "run.sh: configuring $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBUILD_TESTING=OFF >"$root/build-run.configure.log" 2>&1 ||
	{ cat "$root/build-run.configure.log"; exit 1; }
echo "run.sh: building (the first build takes a minute or two;" \
	"log: build-run.build.log)"
: >"$root/build-run.build.log"
cmake --build "$build" -j"$(nproc)" 2>&1 | progress ||
	{ grep -E -A5 'error' "$root/build-run.build.log" | head -60; exit 1; }
bin="$build/bin"

mkdir -p "$root/var/data" "$root/var/log"
chmod 700 "$root/var" "$root/var/data"
if [ -z "${OPSDESK_CONFIG:-}" ]; then
	export OPSDESK_CONFIG="$root/var/opsdesk.json"
	if [ ! -f "$OPSDESK_CONFIG" ]; then
		cp "$root/deploy/opsdesk.local.json" "$OPSDESK_CONFIG"
		echo "run.sh: starting with a starter config, $OPSDESK_CONFIG"
		echo "        (yours to edit: probe targets reload with" \
			"'opsctl reload', the rest at the next start)"
	fi
fi
export OPSDESK_DATA_DIR="${OPSDESK_DATA_DIR:-$root/var/data}"
# In console mode the person at the terminal is user 1 and the admin.
if [ -z "${TELEGRAM_BOT_TOKEN:-}" ] && [ -z "${TELEGRAM_BOT_TOKEN_FILE:-}" ]; then
	export OPSDESK_ADMINS="${OPSDESK_ADMINS:-1}"
	export OPSDESK_ADMIN_CHAT="${OPSDESK_ADMIN_CHAT:-1}"
fi

# Validate the config with every executable before starting any (as
# nginx -t does): a typo stops here with the key and its nearest name.
for exe in bus-relay ticket-service incident-service status-publisher \
	telegram-gateway health-prober; do
	[ -x "$bin/$exe" ] || continue
	if ! out=$("$bin/$exe" --check-config 2>&1); then
		echo "run.sh: $OPSDESK_CONFIG is not valid for $exe:"
		echo "$out"
		exit 1
	fi
done

pids=()
names=()
stop_all() {
	local code=${1:-0}
	trap - INT TERM EXIT
	echo
	echo "run.sh: stopping..."
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		if [ "${names[$i]}" = "log follower" ]; then
			wait "${pids[$i]}" 2>/dev/null || true
		elif wait "${pids[$i]}" 2>/dev/null; then
			echo "  ${names[$i]} stopped"
		else
			echo "  ${names[$i]} exited with status $?"
		fi
	done
	exit "$code"
}
# Ctrl-C is how you stop the suite: a clean stop exits 0.
trap 'stop_all 0' INT TERM
trap 'stop_all $?' EXIT

# start NAME PORT [quiet]: start an executable in the background with
# its log in var/log and wait until its /healthz answers.
start() {
	local name=$1 port=$2 log=${RUN_LOG:-$1}
	if [ ! -x "$bin/$name" ]; then
		echo "run.sh: $name is not built, skipping"
		return 0
	fi
	"$bin/$name" >>"$root/var/log/$log.log" 2>&1 &
	pids+=($!)
	names+=("$name")
	wait_up "$name" "$port"
	[ -n "${3:-}" ] || echo "run.sh: $name up (http://127.0.0.1:$port/metrics)"
}

# The prober: one, or with --locations the decider at the usual address
# and one prober per location (rpc 7431.., HTTP 9431.., own store).
start_probers() {
	if [ -z "$locations" ]; then
		start health-prober 9430 "${1:-}"
		return
	fi
	OPSDESK_PROBER_ROLE=decider start health-prober 9430 "${1:-}"
	local i=1 loc
	for loc in $locations; do
		mkdir -p "$OPSDESK_DATA_DIR/$loc"
		OPSDESK_PROBER_LOCATION=$loc \
			OPSDESK_PROBER_URL=tcp://127.0.0.1:$((7430 + i)) \
			OPSDESK_HTTP_ADDR=127.0.0.1:$((9430 + i)) \
			OPSDESK_INSTANCE=health-prober-$loc \
			OPSDESK_DATA_DIR=$OPSDESK_DATA_DIR/$loc \
			RUN_LOG=health-prober-$loc \
			start health-prober $((9430 + i)) "${1:-}"
		i=$((i + 1))
	done
}

wait_up() {
	local name=$1 port=$2
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "${pids[-1]}" 2>/dev/null; then
			echo "run.sh: $name failed to start; last log lines:"
			tail -n 20 "$root/var/log/$name.log"
			exit 1
		fi
		sleep 0.1
	done
	echo "run.sh: $name did not answer on :$port/healthz within 10 s" \
		"(see var/log/$name.log)"
}

# Dependency order. health-prober comes last, after the gateway: it
# probes every other process, and a first probe of one that is not up
# yet would open an incident on a fresh machine.
start bus-relay 9400
start ticket-service 9410
start incident-service 9420
start status-publisher 8080

echo
echo "  Status page:  http://127.0.0.1:8080/"
echo "  Status JSON:  http://127.0.0.1:8080/api/v2/summary.json"
echo "  Bus events:   $bin/opsctl tail"
echo "  Logs:         $root/var/log/"
echo

if [ ! -x "$bin/telegram-gateway" ]; then
	start_probers
	echo "run.sh: telegram-gateway is not built; press Ctrl-C to stop."
	while true; do sleep 3600; done
fi

if [ -n "${TELEGRAM_BOT_TOKEN:-}${TELEGRAM_BOT_TOKEN_FILE:-}" ]; then
	start telegram-gateway 9450
	start_probers
	echo "run.sh: the bot is polling Telegram; following its log (Ctrl-C stops)"
	tail -n 0 -f "$root/var/log/telegram-gateway.log" &
	tailpid=$!
	pids=("$tailpid" "${pids[@]}")
	names=("log follower" "${names[@]}")
	wait "${pids[-2]}" || true
else
	echo "run.sh: console chat — try /help, /support, /status_page, /health"
	echo "        (Ctrl-C stops everything; Ctrl-D leaves the chat and stops too)"
	# In the background, so the prober can start once the gateway is up;
	# stdin stays this terminal (a script's & would give it /dev/null).
	OPSDESK_GATEWAY_MODE=console "$bin/telegram-gateway" \
		2>>"$root/var/log/telegram-gateway.log" 0<&0 &
	pids+=($!)
	names+=("telegram-gateway")
	gwpid=$!
	wait_up telegram-gateway 9450
	start_probers quiet
	wait "$gwpid" || true
fi
