#!/bin/sh
# opsdesk-tls-split SRC OUT: from SRC (written by `opsctl certs init`)
# make OUT/<identity>/ for every suite identity holding only what that
# process loads (common/auth): ca.crt, its own .crt/.key/.secret, and the
# .secret of each peer it verifies (the relay: every publisher; a service:
# its rpc callers, per the policy table in docs/operations.md). ca.key is
# never copied. Re-running refreshes OUT from SRC (rotation).
set -eu
[ $# -eq 2 ] || { echo "usage: opsdesk-tls-split SRC OUT" >&2; exit 64; }
src=$1
out=$2
[ -f "$src/ca.crt" ] || { echo "opsdesk-tls-split: no $src/ca.crt" \
	"(run opsctl certs init $src first)" >&2; exit 66; }

# peers IDENTITY: whose requests or frames IDENTITY verifies.
peers() {
	case "$1" in
	bus-relay) echo ticket-service incident-service health-prober \
		status-publisher telegram-gateway opsctl ;;
	ticket-service) echo telegram-gateway opsctl incident-service \
		health-prober ;;
	incident-service) echo telegram-gateway opsctl ticket-service \
		health-prober status-publisher ;;
	health-prober) echo telegram-gateway opsctl incident-service \
		status-publisher ;;
	status-publisher) echo telegram-gateway opsctl health-prober ;;
	*) ;;
	esac
}

umask 077
for id in bus-relay ticket-service incident-service health-prober \
	status-publisher telegram-gateway opsctl; do
	d=$out/$id
	mkdir -p "$d"
	rm -f "$d"/*.crt "$d"/*.key "$d"/*.secret
	cp "$src/ca.crt" "$src/$id.crt" "$d/"
	cp "$src/$id.key" "$src/$id.secret" "$d/"
	for p in $(peers "$id"); do
		cp "$src/$p.secret" "$d/"
	done
	chmod 0644 "$d/ca.crt" "$d/$id.crt"
	chmod 0600 "$d/$id.key" "$d"/*.secret
done
