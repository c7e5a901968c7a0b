#!/bin/sh
# run_fuzz.sh — builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan,
# and runs each for FUZZ_SECONDS seconds from its seed corpus (tests/fuzz/corpus/<target>/).
#   usage: tests/fuzz/run_fuzz.sh [BUILD_DIR]        (default build-fuzz; `make fuzz` passes it)
#   env:   FUZZ_SECONDS (default 60) per target; FUZZ_TARGETS="golden matrix ..." a subset;
#          CLANG (default clang); FUZZ_BUILD_ONLY=1 only builds.
# The library sources are compiled once into BUILD_DIR/libfuzz.a with -fsanitize=fuzzer-no-link
# (coverage hooks, no main) and each target links it with -fsanitize=fuzzer. Inputs the fuzzer
# finds go to BUILD_DIR/corpus/<target> (the checked-in seeds stay as they are); a crash, leak,
# UB report, timeout or broken invariant leaves BUILD_DIR/artifacts/<target>-crash-* and makes
# the script exit 1. Reproduce one with: BUILD_DIR/fuzz_<target> ARTIFACT.
# Prints per target: executions (libFuzzer's stat::number_of_executed_units), seconds, crashes.
# Exit status: 0 all clean, 1 a target crashed, 2 clang or its fuzzer runtime is missing.
set -u
B=${1:-build-fuzz}
SECONDS_PER=${FUZZ_SECONDS:-60}
CLANG=${CLANG:-clang}
ALL="golden matrix params bench_params checkpoint agg_state optim_state step_state"
TARGETS=${FUZZ_TARGETS:-$ALL}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-std=c11 -g -O1 -Wall -Wno-unknown-pragmas $SAN -Iinclude -Isrc/core -Isrc -Isrc/data -Isrc/eval -Itools"
LIBS="-lopenblas -lz -lcjson -lm"

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "run_fuzz: $CLANG not found (Debian: apt-get install clang libclang-rt-14-dev)"; exit 2
fi
mkdir -p "$B/obj" "$B/corpus" "$B/artifacts" || exit 1
probe="$B/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined -o "$B/probe" "$probe" >"$B/probe.log" 2>&1; then
    echo "run_fuzz: $CLANG cannot link -fsanitize=fuzzer (Debian: apt-get install libclang-rt-14-dev)"
    exit 2
fi

# ---- build: objects are rebuilt when their source or any header is newer
SRCS="$(ls src/core/*.c src/nn/*.c src/data/*.c src/eval/*.c) tools/golden.c tools/matrix_io.c"
newest_hdr=$(ls -t include/*.h src/*/*.h tools/*.h | head -n 1)
objs=""
for s in $SRCS; do
    o="$B/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')"
    objs="$objs $o"
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ "$newest_hdr" -nt "$o" ]; then
        echo "$CLANG -fsanitize=fuzzer-no-link $CFLAGS -c $s -o $o"
    fi
done > "$B/compile.cmds"
if [ -s "$B/compile.cmds" ]; then
    echo "run_fuzz: compiling $(wc -l < "$B/compile.cmds") library sources with $CLANG"
    tr '\n' '\0' < "$B/compile.cmds" | xargs -0 -P 2 -n 1 sh -c || { echo "run_fuzz: compile failed"; exit 1; }
    rm -f "$B/libfuzz.a"
fi
[ -f "$B/libfuzz.a" ] || ar rcs "$B/libfuzz.a" $objs || exit 1
newest_fuzz_hdr=$(ls -t tests/fuzz/*.h | head -n 1) # fuzz_common.h, fuzz_step_config.h
for t in $TARGETS; do
    src=tests/fuzz/fuzz_$t.c
    [ -f "$src" ] || { echo "run_fuzz: no target $src"; exit 1; }
    if [ ! -x "$B/fuzz_$t" ] || [ "$src" -nt "$B/fuzz_$t" ] || [ "$B/libfuzz.a" -nt "$B/fuzz_$t" ] ||
       [ "$newest_fuzz_hdr" -nt "$B/fuzz_$t" ]; then
        "$CLANG" -fsanitize=fuzzer $CFLAGS -o "$B/fuzz_$t" "$src" "$B/libfuzz.a" $LIBS || {
            echo "run_fuzz: cannot build $src"; exit 1; }
    fi
done
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

# ---- run
status=0
total=0
printf '%-14s %14s %8s %8s\n' target executions seconds crashes
for t in $TARGETS; do
    mkdir -p "$B/corpus/$t"
    log="$B/fuzz_$t.log"
    rm -f "$B/artifacts/$t-"*
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    start=$(date +%s)
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$B/fuzz_$t" -max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=20 ${FUZZ_SEED:+-seed=$FUZZ_SEED} \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -artifact_prefix="$B/artifacts/$t-" $dict \
        "$B/corpus/$t" "tests/fuzz/corpus/$t" > "$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crashes=$(ls "$B/artifacts/$t-"* 2>/dev/null | wc -l)
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
    printf '%-14s %14s %8s %8s\n' "$t" "${execs:-?}" "$secs" "$crashes"
    total=$((total + ${execs:-0}))
    if [ "$crashes" -ne 0 ]; then
        status=1
        grep -E 'ERROR|runtime error|invariant|SUMMARY|Test unit written' "$log" | head -n 8 | sed 's/^/    /'
        echo "    log: $log; reproduce: $B/fuzz_$t $(ls "$B/artifacts/$t-"* 2>/dev/null | head -n 1)"
    fi
done
echo "total executions: $total"
exit $status
