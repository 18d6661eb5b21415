#!/usr/bin/env bash
# Install what opsdesk needs, with apt. Idempotent and quick when everything
# is present: it asks dpkg first and only calls apt-get for what is missing.
#
#   scripts/bootstrap.sh run    what building and running the suite needs
#                               (scripts/run.sh)
#   scripts/bootstrap.sh test   that, plus the test-only tools: compilers
#                               and checkers for the other builds, the
#                               benchmarks' baselines, the deploy validators
#                               (scripts/test.sh; the default)
set -euo pipefail

# Building and running: the toolchain, the libraries, curl (run.sh polls
# /healthz with it).
run_packages=(
	build-essential
	cmake
	curl
	libcjson-dev
	libcurl4-openssl-dev
	liblmdb-dev
	libnng-dev
	libprotobuf-c-dev
	libssl-dev
	pkg-config
	protobuf-c-compiler
)

# Tests only: cmocka (units), python3 + yaml (system tests, compose),
# clang + its runtime (fuzz builds), valgrind, nginx and wrk (benchmark
# baselines), protoc/xmllint/mdb_stat/nngcat/openssl (tests check the
# suite's output with independent tools), prometheus for promtool (rules,
# scrape config, metrics format).
test_packages=(
	chromium
	clang-format-14
	clang
	libclang-rt-14-dev
	libcmocka-dev
	libxml2-utils
	lmdb-utils
	nginx-light
	nng-utils
	openssl
	prometheus
	protobuf-compiler
	python3
	python3-yaml
	valgrind
	wrk
)

# The image test (OPSDESK_TEST_IMAGE=1, opt-in: it takes minutes) builds
# deploy/Dockerfile with podman from a Debian base made by debootstrap;
# netavark + aardvark-dns give the test network its service names.
image_packages=(
	aardvark-dns
	debootstrap
	netavark
	podman
	runc
	uidmap
)

# The end-to-end bench's peers (OPSDESK_BENCH_PEERS=1, opt-in): Debian's
# python-telegram-bot 13.15, and node + npm for the grammY bot (its npm
# packages are installed by `npm ci` in tests/bench/peers, below).
bench_peer_packages=(
	nodejs
	npm
	python3-python-telegram-bot
)

set_name=${1:-test}
case "$set_name" in
run) packages=("${run_packages[@]}") ;;
test)
	packages=("${run_packages[@]}" "${test_packages[@]}")
	if [ "${OPSDESK_TEST_IMAGE:-0}" = 1 ]; then
		packages+=("${image_packages[@]}")
	fi
	if [ "${OPSDESK_BENCH_PEERS:-0}" = 1 ]; then
		# node may come from elsewhere (a newer release): keep it.
		if command -v node >/dev/null && command -v npm >/dev/null; then
			packages+=(python3-python-telegram-bot)
		else
			packages+=("${bench_peer_packages[@]}")
		fi
	fi
	;;
*)
	echo "usage: $0 [run|test]" >&2
	exit 64
	;;
esac

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

peers() {
	if [ "${OPSDESK_BENCH_PEERS:-0}" = 1 ] && [ "$set_name" = test ]; then
		local dir
		dir="$(cd "$(dirname "$0")/.." && pwd)/tests/bench/peers"
		if [ ! -d "$dir/node_modules/grammy" ]; then
			(cd "$dir" && npm ci --no-audit --no-fund --silent)
		fi
	fi
}

if [ ${#missing[@]} -eq 0 ]; then
	peers
	exit 0
fi

echo "bootstrap: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d: packages installed only for their tools (prometheus for
# promtool, nginx for a benchmark baseline) must not start daemons here.
rcd=/usr/sbin/policy-rc.d
if [ ! -e "$rcd" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$rcd" >/dev/null
	$sudo chmod 755 "$rcd"
	trap '$sudo rm -f "$rcd"' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
peers
