#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
# install what is missing, build, run every test (unit, system, fuzz
# replay, format) in a normal build, then the unit, system and fuzz tests
# again in an ASan+UBSan build, and the unit, fuzz and a selection of
# the system tests in a ThreadSanitizer build.
#
#   scripts/test.sh              all three builds
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

# run_suite DIR EXCLUDE SKIP CMAKE_ARGS...: EXCLUDE is ctest's -LE regex
# (labels), SKIP its -E regex (test names; "" for none).
run_suite() {
	local dir=$1 exclude=$2 skip=$3
	shift 3
	local skip_args=()
	[ -z "$skip" ] || skip_args=(-E "$skip")
	echo "== configure $dir ($*)"
	cmake -S "$root" -B "$root/$dir" "$@" >"$root/$dir.configure.log" 2>&1 ||
		{ cat "$root/$dir.configure.log"; return 1; }
	echo "== build $dir"
	if ! cmake --build "$root/$dir" -j"$jobs" >"$root/$dir.build.log" 2>&1; then
		grep -E -B2 -A6 'error|Error' "$root/$dir.build.log" | head -80
		return 1
	fi
	echo "== test $dir"
	local t0=$SECONDS
	ctest --test-dir "$root/$dir" --output-on-failure -j"$jobs" \
		-LE "$exclude" "${skip_args[@]}" --timeout 900 || { echo "== $dir: FAILED after $((SECONDS - t0)) s"; return 1; }
	echo "== $dir: tests took $((SECONDS - t0)) s"
}

# Sanitizers: fail on the first UB report and on leaks; child processes
# started by system tests inherit these.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ThreadSanitizer: a report fails the process (exit 66 at its end, so a
# system test sees a service that did not exit 0); the suppressions are
# for races inside uninstrumented system libraries only, each justified
# in the file.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0:exitcode=66:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}

run_suite build bench "" -DCMAKE_BUILD_TYPE=RelWithDebInfo || status=1

if [ "${OPSDESK_TEST_QUICK:-0}" != 1 ]; then
	# The format test does not depend on the build: once is enough.
	run_suite build-asan 'bench|format' "" -DCMAKE_BUILD_TYPE=Debug \
		-DOPSDESK_SANITIZE=ON -DOPSDESK_BENCH=OFF || status=1
	# ThreadSanitizer: the unit and fuzz tests, and the system tests
	# not labelled "notsan" (bus, gateway, incident, opsctl, prober,
	# status, ticket: the list and why the others are left out are in
	# tests/system/CMakeLists.txt; ctest stretches their waits by
	# OPSDESK_TEST_TIME_SCALE). Measured on a busy 2-core machine: build
	# about 3-7 min, tests about 10 min; the whole script stays under 30
	# minutes.
	run_suite build-tsan 'bench|format|notsan' "" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPSDESK_TSAN=ON \
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
