#!/bin/sh
# The suite's version: project(opsdesk VERSION x.y.z) of CMakeLists.txt,
# the one source of the image tag opsdesk:<version>.
root=$(cd "$(dirname "$0")/.." && pwd)
sed -n 's/^project(opsdesk VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt"
