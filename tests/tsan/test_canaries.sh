#!/bin/sh
# test_canaries.sh BUILD_DIR — proves the ThreadSanitizer setup of `make tsan` is honest before
# the threaded tests are trusted: BUILD_DIR/tests/tsan/canary_race (a real race) must be reported
# as a data race in canary_race.c, and canary_sync (barriers, reductions, per-chunk partials) must
# run clean. Ends with "N passed, N failed".
build=${1:-build-tsan}
passed=0; failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
for p in canary_race canary_sync; do
    [ -x "$build/tests/tsan/$p" ] || { bad "$build/tests/tsan/$p not built"; continue; }
done
if [ "$failed" -eq 0 ]; then
    out=$("$build/tests/tsan/canary_race" 2>&1); rc=$?
    if [ "$rc" -ne 0 ] &&
        printf '%s\n' "$out" | grep -q 'SUMMARY: ThreadSanitizer: data race .*canary_race.c'; then
        ok "a real race is reported (exit $rc)"
    else
        printf '%s\n' "$out" | tail -n 20
        bad "the race in canary_race.c was not reported (exit $rc): is the build instrumented" \
            "with -fsanitize=thread, TSAN_OPTIONS free of broad suppressions?"
    fi
    out=$("$build/tests/tsan/canary_sync" 2>&1); rc=$?
    if [ "$rc" -eq 0 ] && ! printf '%s\n' "$out" | grep -q 'ThreadSanitizer'; then
        ok "correct OpenMP synchronisation is not reported"
    else
        printf '%s\n' "$out" | tail -n 40
        bad "canary_sync failed (exit $rc): ThreadSanitizer does not see the OpenMP runtime's" \
            "barriers (build with clang and libomp, whose Archer tool libarcher.so must be" \
            "loadable; TSAN_OPTIONS needs ignore_noninstrumented_modules=1)"
    fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
