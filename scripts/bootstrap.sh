#!/usr/bin/env bash
# Install exactly what opsdesk's build and tests need, with apt. Idempotent
# and quick when everything is present: it asks dpkg first and only calls
# apt-get for what is missing.
set -euo pipefail

packages=(
	build-essential
	clang
	clang-format-14
	cmake
	curl
	libclang-rt-14-dev
	libcjson-dev
	libcmocka-dev
	libcurl4-openssl-dev
	liblmdb-dev
	libnng-dev
	libprotobuf-c-dev
	libxml2-utils
	lmdb-utils
	nginx-light
	nng-utils
	openssl
	pkg-config
	protobuf-c-compiler
	protobuf-compiler
	python3
	python3-yaml
	valgrind
	wrk
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "bootstrap: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
