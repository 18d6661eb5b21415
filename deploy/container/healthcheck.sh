#!/bin/sh
# The image's HEALTHCHECK: GET /healthz of the service this container runs
# (PID 1), on the port of OPSDESK_HTTP_ADDR or that service's default.
set -eu
port=${OPSDESK_HTTP_ADDR:-}
port=${port##*:}
if [ -z "$port" ]; then
	# /proc/1/comm is the executable's name cut to 15 characters.
	case "$(cat /proc/1/comm)" in
	bus-relay) port=9400 ;;
	ticket-service) port=9410 ;;
	incident-servic*) port=9420 ;;
	health-prober) port=9430 ;;
	status-publishe*) port=8080 ;;
	telegram-gatewa*) port=9450 ;;
	*) exit 0 ;; # opsctl or a shell: nothing to check
	esac
fi
exec curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$port/healthz"
