#!/bin/sh
# test_fuzz_corpus.sh — a short fuzzing pass in `make test`: builds the libFuzzer targets of
# tests/fuzz with clang (ASan + UBSan) into BUILD-fuzz and runs each from its seed corpus for
# FUZZ_SECONDS (default 5) seconds; one check per target, passed when it found nothing.
# Without clang or its fuzzer runtime it says why and reports 0 checks.
# usage: tests/scripts/test_fuzz_corpus.sh BUILD_DIR [GOLDEN_DIR]
build=${1:-build}
# a fixed libFuzzer seed (FUZZ_SEED) keeps this short run reproducible; `make fuzz` stays random
out=$(FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_SECONDS=${FUZZ_SECONDS:-5} sh tests/fuzz/run_fuzz.sh "$build-fuzz" 2>&1)
rc=$?
if [ "$rc" -eq 2 ]; then
    printf '%s\n' "$out" | tail -n 1
    echo "fuzzing skipped"
    echo "0 passed, 0 failed"
    exit 0
fi
printf '%s\n' "$out" | grep -v '^clang ' | tail -n 30
passed=0
failed=0
for t in golden matrix params bench_params checkpoint agg_state optim_state step_state; do
    line=$(printf '%s\n' "$out" | grep -E "^$t +[0-9?]+ +[0-9]+ +[0-9]+$")
    crashes=$(echo "$line" | awk '{print $4}')
    if [ -n "$line" ] && [ "$crashes" = 0 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL fuzz target $t: ${line:-did not run}"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
