#!/usr/bin/env bash
# Build the opsdesk image as opsdesk:<version>, the version of
# CMakeLists.txt's project(), with podman (preferred) or docker:
#   scripts/image.sh [extra build arguments, e.g. --build-arg BASE=...]
#   OPSDESK_ENGINE=docker scripts/image.sh
# Prints the tag on the last line. Without registry access, pass a local
# Debian base: --build-arg BASE=<image> --build-arg RUNTIME_BASE=<image>
# (deploy_test.py makes one with debootstrap). deploy_test.py runs podman
# as OPSDESK_ENGINE="podman --runtime=runc", the combination tested on
# Debian 12.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$("$root/scripts/version.sh")
engine=${OPSDESK_ENGINE:-}
if [ -z "$engine" ]; then
	if command -v podman >/dev/null; then
		engine=podman
	elif command -v docker >/dev/null; then
		engine=docker
	else
		echo "image.sh: neither podman nor docker is installed" >&2
		exit 1
	fi
fi
tag="opsdesk:$version"
format=()
case "$engine" in
# The OCI image format has no HEALTHCHECK; podman defaults to it.
podman*) format=(--format docker) ;;
esac
# shellcheck disable=SC2086 # engine may carry options
$engine build "${format[@]}" -f "$root/deploy/Dockerfile" -t "$tag" "$@" "$root" >&2
echo "$tag"
