#!/bin/sh
# run_memcheck.sh BUILD_DIR GOLDEN_DIR — the CLI under valgrind's memcheck (issue 8, `make
# memcheck`, run by .ci/run): the golden suite, a short MMoE training with a checkpoint and a resume
# (the MLP path, 2 threads), the CAGrad toy (its SVG), and one epoch of MultiFashion on 256 images
# (the conv path). Each run must exit 0 with zero memcheck errors: invalid reads/writes, uses of
# uninitialised values, bad frees, and definitely lost memory (memory still referenced at exit is
# not an error). The whole script takes under a minute on 2 cores. Ends with "N passed,
# N failed". VALGRIND_EXTRA adds options (e.g. --track-origins=yes).
build=${1:-build-vg}; golden=${2:-../shared/golden}
cd "$(dirname "$0")/../.." || exit 1
M=$build/mtgrad
if ! command -v valgrind >/dev/null 2>&1; then
    echo "FAIL: valgrind not found (Debian: valgrind; sh tools/deps.sh --ci installs it)"
    echo "0 passed, 1 failed"; exit 1
fi
[ -x "$M" ] || { echo "FAIL: $M not built"; echo "0 passed, 1 failed"; exit 1; }
# Valgrind emulates each FMA instruction with a call into C, so OpenBLAS's Haswell SGEMM runs ~800
# times slower than natively (160 s for one MultiFashion epoch); its AVX-without-FMA Sandybridge
# kernels, ~10 times faster under valgrind, read and write the same buffers, which is what memcheck
# checks. Passive waiting: under valgrind threads take turns, and a spinning OpenMP thread only
# burns the time the working one needs.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx /proc/cpuinfo 2>/dev/null; then
    export OPENBLAS_CORETYPE=Sandybridge
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0; n=0
# memcheck NAME ARGS...: runs the CLI under memcheck; passes if the exit status is 0 and
# valgrind's summary says 0 errors (the status alone could be the program's own failure).
memcheck() {
    name=$1; shift; n=$((n + 1)); log="$tmp/vg$n.log"
    start=$(date +%s)
    # shellcheck disable=SC2086  # VALGRIND_EXTRA is a list of options
    valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --suppressions=tests/valgrind/memcheck.supp --num-callers=40 $VALGRIND_EXTRA \
        "$M" "$@" >"$log" 2>&1
    rc=$?; secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ] && grep -q '== ERROR SUMMARY: 0 errors' "$log"; then
        echo "ok $name (${secs} s)"; passed=$((passed + 1))
    else
        grep -v '^ok ' "$log" | tail -n 80
        echo "FAIL: $name: exit $rc under memcheck (${secs} s): mtgrad $*"; failed=$((failed + 1))
    fi
}
memcheck "check-golden" check-golden "$golden"
memcheck "train mmoe, 2 epochs, checkpoint" train --bench mmoe --method cagrad \
    --bench-params ntrain=512,ntest=256 --epochs 2 --threads 2 --out "$tmp/mmoe" -q
memcheck "train mmoe, resume to 3 epochs" train --bench mmoe --method cagrad \
    --bench-params ntrain=512,ntest=256 --epochs 3 --threads 2 --out "$tmp/mmoe" --resume -q
memcheck "toy, 3 methods, 2 threads, SVG" toy --methods mean,mgda,cagrad:c=0.2 --steps 300 \
    --threads 2 --out "$tmp/toy"
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    memcheck "train multifashion, 1 epoch (conv)" train --bench multifashion --method pcgrad \
        --bench-params ntrain=256,ntest=128 --epochs 1 --threads 2 --out "$tmp/mf" -q
else
    echo "FAIL: Fashion-MNIST not installed (Debian: dataset-fashion-mnist)"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
