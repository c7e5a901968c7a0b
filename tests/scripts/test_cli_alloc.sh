#!/bin/sh
# test_cli_alloc.sh BUILD_DIR [GOLDEN_DIR] — allocation failures in the mtgrad CLI (issue 8.2).
# The library's own allocations are swept through its mtgradi_malloc hook by the C tests; the
# CLI also calls plain malloc/strdup, cJSON and stdio, which only an LD_PRELOAD shim can reach.
# fail_malloc.c (built here) makes the N-th allocation of the main thread after main() starts
# fail once. For each command below the script counts the allocations of a normal run, then
# reruns the command with allocation N failing, for every N when there are at most $max of them,
# else for $max values spread evenly from the first to the last (a fixed sample, so every run of
# this test tries the same N; MTGRAD_CLI_ALLOC_ALL=1 sweeps them all). Each run must:
#   - end by itself (no signal, no hang: exit status < 124), with no sanitizer report;
#   - exit 1 with a message on stderr that says memory ran out ("mtgrad...: out of memory...",
#     "...: Cannot allocate memory"); check-golden's report is its stdout, where it gives the
#     reason of each failed case or file ("FAIL case (file:line): out of memory"), or
#   - exit 0 with exactly the output of the normal run (stdout and the --out files, timings
#     left out): the failed allocation was optional — e.g. a stdio buffer (glibc then writes
#     unbuffered). Whatever the allocation, exit 0 must come with the normal run's output.
# One exception: libgomp (OpenMP) allocates its thread-team data on the first parallel region
# and has no way to report a failure: it prints "libgomp: Out of memory allocating N bytes" and
# exits with status 1 itself. That is a clean exit with a message, not one the CLI could improve,
# so it is accepted (and counted apart).
# The shim also reports whether the failure was injected at all, so a broken shim fails the test.
# Ends with "N passed, N failed"; exits 1 if anything failed.
build=${1:-build}
golden=${2:-../shared/golden}
M="$build/mtgrad"
here=$(dirname "$0")
max=150
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtgrad_clialloc.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
pass() { passed=$((passed + 1)); }

if [ ! -x "$M" ]; then
    echo "FAIL: $M not built"; echo "0 passed, 1 failed"; exit 1
fi
# The shim itself is built without sanitizers: under ASan it wraps ASan's malloc (it must come
# before libasan in the library order, hence verify_asan_link_order=0).
if ! ${CC:-cc} -O1 -g -fno-omit-frame-pointer -shared -fPIC -o "$tmp/fail_malloc.so" \
        "$here/fail_malloc.c" -ldl 2>"$tmp/cc.err"; then
    cat "$tmp/cc.err"; echo "FAIL: cannot build the shim"; echo "0 passed, 1 failed"; exit 1
fi
ASAN_OPTIONS="verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export ASAN_OPTIONS OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# Timings and memory figures differ from run to run: drop them before comparing outputs.
# (checkpoint.bin holds the timings too, under its CRC: it is checked by resuming from it.)
normalize() { # FILE -> stdout
    sed -e '/^time per epoch/d' -e '/"time":/,/"eval_seconds"/d' -e '/peak_rss_mb/d' "$1"
}
# The output of a run in $tmp/got, normalized: stdout (by $out_norm), and for a --out DIR run
# what $dir_collect makes of DIR. For `train --out DIR` (CMD...): DIR/report.json and the report
# of a --resume from DIR/checkpoint.bin (run without the shim), which holds everything the
# checkpoint restores.
collect_train() { # OUTDIR CMD...
    dir=$1; shift
    normalize "$dir/report.json" 2>&1
    echo "== resumed"
    "$M" "$@" --resume >/dev/null 2>"$tmp/resume.err"
    echo "exit $?"
    normalize "$dir/report.json" 2>&1
}
out_norm=normalize; dir_collect=collect_train
collect() { # OUTDIR CMD...
    $out_norm "$tmp/out" >"$tmp/got"
    [ -n "$1" ] || return 0
    echo "== files: $(ls "$1" 2>&1 | tr '\n' ' ')" >>"$tmp/got"
    $dir_collect "$@" >>"$tmp/got"
}
# One run with allocation $1 failing (0: none); $rc, $tmp/out, $tmp/err, $tmp/report.
run_at() { # N OUTDIR CMD...
    at=$1; dir=$2; shift 2
    rm -rf "$tmp/report" ${dir:+"$dir"}
    timeout 60 env LD_PRELOAD="$tmp/fail_malloc.so" MTGRAD_FAIL_MALLOC_AT="$at" \
        MTGRAD_FAIL_MALLOC_REPORT="$tmp/report" "$M" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
# The N to try for COUNT allocations, one per line.
sample() { # COUNT
    if [ "$1" -le "$max" ] || [ -n "$MTGRAD_CLI_ALLOC_ALL" ]; then seq 1 "$1"; return; fi
    awk -v c="$1" -v m="$max" \
        'BEGIN { for (i = 0; i < m; i++) print 1 + int(i * (c - 1) / (m - 1)) }'
}

# sweep NAME OUTDIR CMD...: the whole check for one command (OUTDIR "" if it writes no files).
# $msg_in, $msg_re: where the message of a failed run must be, and what it must match.
msg_in=err; msg_re='^mtgrad.*memory'
sweep() {
    name=$1; dir=$2; shift 2
    run_at 0 "$dir" "$@"
    if [ "$rc" -ne 0 ] || [ ! -s "$tmp/report" ]; then
        fail "$name: the normal run under the shim: exit $rc ($(head -c 300 "$tmp/err"))"; return
    fi
    count=$(cut -d' ' -f1 "$tmp/report")
    collect "$dir" "$@"; mv "$tmp/got" "$tmp/ref"
    if [ "$count" -gt 0 ]; then pass; else fail "$name: no allocation counted"; return; fi
    nerr=0; nopt=0; nbad=0; ntried=0; ngomp=0
    for n in $(sample "$count"); do
        ntried=$((ntried + 1))
        run_at "$n" "$dir" "$@"
        why=""
        if [ "$rc" -ge 124 ]; then why="exit $rc (signal or timeout)"
        elif grep -qE 'Sanitizer|runtime error:' "$tmp/err"; then why="sanitizer report"
        elif [ "$(cut -d' ' -f2 "$tmp/report" 2>/dev/null)" != 1 ]; then
            why="the failure was not injected (report: $(cat "$tmp/report" 2>/dev/null))"
        elif [ "$rc" -eq 1 ]; then
            if grep -q '^libgomp: Out of memory' "$tmp/err"; then ngomp=$((ngomp + 1))
            elif grep -q "$msg_re" "$tmp/$msg_in"; then nerr=$((nerr + 1))
            else why="exit 1 without a message about memory on std$msg_in"; fi
        elif [ "$rc" -eq 0 ]; then
            collect "$dir" "$@"
            if cmp -s "$tmp/got" "$tmp/ref"; then nopt=$((nopt + 1))
            else why="exit 0, wrong output"; fi
        else why="exit $rc"
        fi
        if [ -n "$why" ]; then
            nbad=$((nbad + 1))
            fail "$name: allocation $n of $count failing: $why: $(head -c 300 "$tmp/err")"
        else pass; fi
    done
    # A sweep in which nothing ever failed cleanly would mean the shim fails nothing the CLI sees.
    if [ "$nerr" -gt 0 ]; then pass; else fail "$name: no run reported an error"; fi
    echo "$name: $count allocations, $ntried tried: $nerr clean errors, $ngomp in libgomp," \
        "$nopt optional (same output), $nbad bad"
}

# ---------------------------------------------------------------- the commands
printf '# k=3 d=4\n1 2 3 4\n-4 0.5 2 1\n0 -1 3 -2\n' >"$tmp/g.txt"
sweep "aggregate" "" aggregate -m upgrad "$tmp/g.txt"
sweep "aggregate --json" "" aggregate -m upgrad --json "$tmp/g.txt"
sweep "methods --json" "" methods --json

# one short case of each of two methods: a small golden file
if [ -f "$golden/dwa.txt" ] && [ -f "$golden/upgrad.txt" ]; then
    { awk '/^case /{n++} n==1' "$golden/dwa.txt" | sed '/^end$/q'
      awk '/^case /{n++} n==1' "$golden/upgrad.txt" | sed '/^end$/q'; } >"$tmp/gold.txt"
    msg_in=out; msg_re='^[^ ]*gold.txt[^ ]* .*memory\|^FAIL .*memory'
    sweep "check-golden" "" check-golden "$tmp/gold.txt"
    msg_in=err; msg_re='^mtgrad.*memory'
else
    fail "golden files not found in $golden (give the directory as the second argument)"
fi

sweep "train" "$tmp/run" train --bench mmoe -m upgrad --bench-params ntrain=64,ntest=32 \
    --epochs 1 --batch 32 --out "$tmp/run" -q

# compare, toy and bench write the same kind of report through their own code (tables, JSON,
# SVG): one short run of each. Their timings are masked, not dropped, so that a value replaced by
# null or a missing row still shows: '#' for a measured number.
# compare: the time columns of the table ("time/epoch (s)", "time ×LS": every column whose header
# says time); in compare.json time_per_epoch and time_x_ls; delta_m_time.svg has time on its x
# axis (positions, ticks and their number vary), so of it only the kinds of element are kept
# (numbers masked, duplicates dropped): the curves of each method (by colour), legend, titles.
mask_time_cols() { # FILE
    awk -F'|' -v OFS='|' '
        /^\|---/ { print; next }
        /^\| method / { split("", t); for (i = 2; i < NF; i++) if ($i ~ /time/) t[i] = 1; print; next }
        /^\|/ { for (i in t) $i = " # " }
        { print }' "$1"
}
# mask_json: numeric values of the matching keys -> '#' (null stays null); peak_rss_mb dropped,
# as by normalize.
mask_json() { # FILE KEY_REGEX
    sed -E -e '/peak_rss_mb/d' -e 's/^([[:space:]]*"('"$2"')":[[:space:]]*)[-+0-9.eE]+/\1#/' "$1"
}
collect_compare() { # OUTDIR CMD...
    mask_json "$1/compare.json" 'time_per_epoch|time_x_ls' 2>&1
    cat "$1/curves.svg" "$1/delta_m.svg" 2>&1
    sed -E 's/[0-9][-+0-9.e]*/#/g' "$1/delta_m_time.svg" 2>&1 | sort -u
}
out_norm=mask_time_cols; dir_collect=collect_compare
sweep "compare" "$tmp/cmp" compare --bench mmoe --bench-params k=2,ntrain=64,ntest=32 \
    --epochs 1 --batch 32 --methods ls,mgda,mgda@rep --seeds 1 --out "$tmp/cmp"

# toy: one method, one step, both settings (two SVGs); toy.json's per-run "seconds" masked.
# --threads 1: the runs are on the main thread, where the shim counts.
collect_toy() { # OUTDIR CMD...
    mask_json "$1/toy.json" 'seconds' 2>&1
    cat "$1/toy_cagrad.svg" "$1/toy_nash.svg" 2>&1
}
out_norm=cat; dir_collect=collect_toy
sweep "toy" "$tmp/toy" toy --methods ls --steps 1 --setting both --threads 1 --out "$tmp/toy" --quiet

# bench: its table is mostly timings; every number with a decimal point is measured (bandwidth,
# ms, GB/s, xfloor, solve_us), the rest (k, d, threads, rows, methods, which floor) is not: those
# numbers masked, runs of spaces squeezed (column widths follow the numbers). In the JSON the
# timing keys are masked. Each run reads a 512 MiB buffer (~0.5 s): a sample of $max = 40.
bench_out() { sed -E 's/[0-9]+\.[0-9]+/#/g' "$1" | tr -s ' '; }
bench_json() { mask_json "$1" '[a-z0-9_]*_ms|[a-z_]*xfloor|x_openblas|solve_us|read_gbs|[sd]gemm_gflops'; }
max=40; dir_collect=:
out_norm=bench_out
sweep "bench" "" bench -k 2 -d 1e4 -t 1 -m mean,mgda -r 5 --no-blas
out_norm=bench_json
sweep "bench --json" "" bench -k 2 -d 1e4 -t 1 -m mean,mgda -r 5 --no-blas --json

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
