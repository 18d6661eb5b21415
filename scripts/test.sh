#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
# install what is missing, build, run every test (unit, system, fuzz
# replay) in a normal build, then again in an ASan+UBSan build.
#
#   scripts/test.sh              both builds
#   OPSDESK_TEST_QUICK=1 ...     the normal build only
#   OPSDESK_TEST_BENCH=1 ...     also run the benchmarks (ctest -L bench)
#   OPSDESK_TEST_IMAGE=1 ...     also build the image with podman and run
#                                the suite from it (deploy_test.py; about
#                                10 minutes the first time)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/bootstrap.sh" test

jobs=2
status=0

run_suite() {
	local dir=$1
	shift
	echo "== configure $dir ($*)"
	cmake -S "$root" -B "$root/$dir" "$@" >"$root/$dir.configure.log" 2>&1 ||
		{ cat "$root/$dir.configure.log"; return 1; }
	echo "== build $dir"
	if ! cmake --build "$root/$dir" -j"$jobs" >"$root/$dir.build.log" 2>&1; then
		grep -E -B2 -A6 'error|Error' "$root/$dir.build.log" | head -80
		return 1
	fi
	echo "== test $dir"
	ctest --test-dir "$root/$dir" --output-on-failure -j"$jobs" -LE bench \
		--timeout 600
}

# Sanitizers: fail on the first UB report and on leaks; child processes
# started by system tests inherit these.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo || status=1

if [ "${OPSDESK_TEST_QUICK:-0}" != 1 ]; then
	run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DOPSDESK_SANITIZE=ON \
		-DOPSDESK_BENCH=OFF || status=1
fi

if [ "${OPSDESK_TEST_BENCH:-0}" = 1 ]; then
	echo "== benchmarks"
	ctest --test-dir "$root/build" --output-on-failure -L bench || status=1
fi

if [ $status -ne 0 ]; then
	echo "test.sh: FAILED"
else
	echo "test.sh: all suites passed"
fi
exit $status
