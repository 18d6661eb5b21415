#!/bin/sh
# The image's entrypoint: `<image> <service>` runs that opsdesk executable
# (or opsctl, or any command). Before starting a service it
#  - refuses placeholders: a config, setting or secret still holding
#    REPLACE-ME stops the container with a message naming it (deploy/k8s
#    ships such placeholders on purpose);
#  - listens on every interface by default, since loopback is useless in
#    a container (OPSDESK_HTTP_ADDR and the service's own OPSDESK_*_URL;
#    whatever is set in the environment wins);
#  - speaks tls+tcp:// when OPSDESK_TLS_DIR names the credentials (see
#    `opsctl certs init`, `opsdesk-tls-split`); without it a service
#    refuses to start, unless OPSDESK_ALLOW_INSECURE=1 says plain tcp:// on
#    every interface is wanted (anyone who reaches a port is then trusted).
set -eu

placeholder=REPLACE-ME

die() {
	echo "opsdesk: $*" >&2
	exit 78 # EX_CONFIG
}

check_placeholders() {
	bad=$(env | grep -E '^(OPSDESK|TELEGRAM)_[A-Z_]*=' |
		grep -F "$placeholder" | cut -d= -f1 | tr '\n' ' ') || true
	[ -z "$bad" ] || die "still a placeholder ($placeholder): $bad- edit" \
		"the settings (deploy/k8s: settings.env) before deploying"
	if [ -n "${OPSDESK_CONFIG:-}" ] && [ -f "$OPSDESK_CONFIG" ] &&
		grep -q -F "$placeholder" "$OPSDESK_CONFIG"; then
		die "$OPSDESK_CONFIG still holds $placeholder:" \
			"$(grep -n -F "$placeholder" "$OPSDESK_CONFIG" | head -3)"
	fi
	f=${TELEGRAM_BOT_TOKEN_FILE:-}
	if [ -n "$f" ] && [ -f "$f" ] && grep -q -F "$placeholder" "$f"; then
		die "$f still holds $placeholder: put the real bot token there"
	fi
}

# listen VAR VALUE: set VAR to VALUE unless the environment has it.
listen() {
	eval "[ -n \"\${$1:-}\" ] || export $1=\"\$2\""
}

# The scheme of the rpc/bus listeners, for services only.
scheme() {
	if [ -n "${OPSDESK_TLS_DIR:-}" ]; then
		[ -f "$OPSDESK_TLS_DIR/ca.crt" ] || die "OPSDESK_TLS_DIR" \
			"($OPSDESK_TLS_DIR) has no ca.crt: mount the credentials" \
			"made by opsctl certs init (docs/operations.md)"
		rpc=tls+tcp
	elif [ "${OPSDESK_ALLOW_INSECURE:-}" = 1 ]; then
		echo "opsdesk: warning: OPSDESK_ALLOW_INSECURE=1: plain tcp://" \
			"on every interface, anyone who reaches a port is" \
			"trusted" >&2
		rpc=tcp
	else
		die "no OPSDESK_TLS_DIR: a container listens on every" \
			"interface, which needs TLS. Run opsctl certs init DIR" \
			"once, mount it (or its opsdesk-tls-split part) and set" \
			"OPSDESK_TLS_DIR, with tls+tcp:// in every OPSDESK_*_URL;" \
			"or set OPSDESK_ALLOW_INSECURE=1 to accept plain tcp://"
	fi
}

case "${1:-}" in
bus-relay | ticket-service | incident-service | health-prober | \
	status-publisher | telegram-gateway)
	case "${2:-}" in
	--help | -h | --version) rpc=tcp ;;
	*) scheme ;;
	esac
	;;
esac

case "${1:-}" in
bus-relay)
	listen OPSDESK_BUS_PUBLISH "$rpc://0.0.0.0:7400"
	listen OPSDESK_BUS_SUBSCRIBE "$rpc://0.0.0.0:7401"
	listen OPSDESK_HTTP_ADDR 0.0.0.0:9400
	;;
ticket-service)
	listen OPSDESK_TICKET_URL "$rpc://0.0.0.0:7410"
	listen OPSDESK_HTTP_ADDR 0.0.0.0:9410
	;;
incident-service)
	listen OPSDESK_INCIDENT_URL "$rpc://0.0.0.0:7420"
	listen OPSDESK_HTTP_ADDR 0.0.0.0:9420
	;;
health-prober)
	listen OPSDESK_PROBER_URL "$rpc://0.0.0.0:7430"
	listen OPSDESK_HTTP_ADDR 0.0.0.0:9430
	# A StatefulSet pod's ordinal picks its shard: OPSDESK_PROBER_SHARDS=N
	# with the pod name (HOSTNAME) ending in -<i> gives i/N.
	if [ -n "${OPSDESK_PROBER_SHARDS:-}" ] &&
		[ -z "${OPSDESK_PROBER_SHARD:-}" ]; then
		ordinal=${HOSTNAME##*-}
		case "$ordinal" in
		'' | *[!0-9]*) die "OPSDESK_PROBER_SHARDS is set but the host" \
			"name $HOSTNAME does not end in -<ordinal>" ;;
		esac
		export OPSDESK_PROBER_SHARD="$ordinal/$OPSDESK_PROBER_SHARDS"
	fi
	;;
status-publisher)
	listen OPSDESK_STATUS_URL "$rpc://0.0.0.0:7440"
	listen OPSDESK_HTTP_ADDR 0.0.0.0:8080
	;;
telegram-gateway)
	listen OPSDESK_HTTP_ADDR 0.0.0.0:9450
	;;
"")
	echo "usage: <image> SERVICE (bus-relay, ticket-service," \
		"incident-service, health-prober, status-publisher," \
		"telegram-gateway) or <image> opsctl ..." >&2
	exit 64
	;;
esac

case "$1" in
bus-relay | ticket-service | incident-service | health-prober | \
	status-publisher | telegram-gateway)
	case "${2:-}" in
	--help | -h | --version) ;;
	*) check_placeholders ;;
	esac
	;;
esac
exec "$@"
