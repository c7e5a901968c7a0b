#!/bin/sh
# test_kill_resume.sh BUILD_DIR — crash safety of `mtgrad train` (issue 8.3): `kill -9` at random
# moments, then `--resume`, must end with the same result as a run that was never interrupted.
#
# Why a script and not a C test: only a real SIGKILL of a real process shows that the checkpoint
# on disk is always either the old one or the new one (temp file, fsync, rename) and that nothing
# outside it (report.json, partial temp files) can leak into the resumed run.
#
# A reference run per method (famo and nash_mtl, both stateful: Adam logits, warm-started solver)
# gives report A; then trials: the same run, killed with SIGKILL after a delay drawn from a seeded
# shell generator (an LCG, so the schedule is the same on every machine), resumed and killed again
# 1..3 times, then resumed to completion: report B. A and B must agree bit for bit on everything
# that does not depend on the wall clock: report.json without "time", "peak_rss_mb" and
# "resumed_epoch", and the final checkpoint's parameters, optimizer and method states, dropout
# generator, counters and curves (without their time columns). Delays are fractions of the
# measured reference time, so the schedule covers the whole run on fast and slow (sanitizer)
# builds alike; some trials are forced to die early (before the first checkpoint), and some hunt
# for a checkpoint write in progress (spin until checkpoint.bin.tmp exists, then kill).
# Ends with "N passed, N failed"; exits 1 if anything failed.
build=${1:-build}
M="$build/mtgrad"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtgrad_kill.XXXXXX") || exit 1
pids=""
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
pass() { passed=$((passed + 1)); }

if [ ! -x "$M" ]; then
    echo "FAIL: $M not built"; echo "0 passed, 1 failed"; exit 1
fi
# The digest needs only the standard library (json, struct, hashlib): any Python 3 will do.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) ||
    { echo "FAIL: no python3"; echo "0 passed, 1 failed"; exit 1; }

TRIALS=${MTGRAD_KILL_TRIALS:-10}
seed=${MTGRAD_KILL_SEED:-20240607}
ARGS="--bench mmoe --bench-params ntrain=16384,ntest=256 --epochs 10 --batch 32 --seed 3"
ARGS="$ARGS --data-seed 1 -q"

# rand: the next draw of a 31-bit LCG (glibc's constants), r in [0, 1000)
rand() {
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    r=$(( seed / 65536 % 1000 ))
}
now_ms() { # milliseconds (GNU date); 0 where %N is not supported
    t=$(date +%s%N 2>/dev/null)
    case "$t" in *N*|"") echo 0 ;; *) echo $(( t / 1000000 )) ;; esac
}
sleep_ms() { sleep "$(( $1 / 1000 )).$(printf %03d $(( $1 % 1000 )))"; }

# digest DIR: one line that must be identical for runs with the same result
digest() {
    "$PY" - "$1" <<'EOF'
import hashlib, json, struct, sys
d = sys.argv[1]
rep = json.load(open(d + "/report.json"))
for key in ("time", "peak_rss_mb", "resumed_epoch", "passes"):  # passes: this process's
    rep.pop(key, None)
h = hashlib.sha256(json.dumps(rep, sort_keys=True).encode())
b = open(d + "/checkpoint.bin", "rb").read()
pos = 0
def take(n):
    global pos
    pos += n
    return b[pos - n:pos]
assert take(8) == b"MTGRDCKP"
take(4 + 4 + 8)
(cl,) = struct.unpack("=I", take(4))
h.update(take(cl))                                # configuration text
hdr = struct.unpack("=6q", take(48))              # epoch, k, n_params, steps, warnings, cols
h.update(struct.pack("=6q", *hdr) + take(32))     # counters and the dropout generator
epoch, k, n_params, _, _, cols = hdr
(ol,) = struct.unpack("=Q", take(8)); h.update(take(ol))   # optimizer state
(al,) = struct.unpack("=Q", take(8)); h.update(take(al))   # method state
(sl,) = struct.unpack("=Q", take(8)); h.update(take(sl))   # the MTL step's own state
h.update(take(4 * n_params))                               # parameters
timecols = set(range(3 * k, 3 * k + 8))                    # phase times, eval seconds
for e in range(epoch):
    row = take(8 * cols)
    for j in range(cols):
        if j not in timecols:
            h.update(row[8 * j:8 * j + 8])
assert len(b) - pos == 4, "trailing bytes"
print("epochs=%d steps=%d sha256=%s" % (epoch, hdr[3], h.hexdigest()))
EOF
}

# ---------------------------------------------------------------- references
for m in famo nash_mtl; do
    t0=$(now_ms)
    "$M" train $ARGS --method $m --out "$tmp/ref_$m" >"$tmp/out" 2>&1
    rc=$?
    t1=$(now_ms)
    if [ $rc -ne 0 ]; then fail "reference $m: exit $rc: $(head -c 400 "$tmp/out")"; continue; fi
    pass
    eval "ms_$m=$(( t1 - t0 ))"
    digest "$tmp/ref_$m" >"$tmp/ref_$m.digest" 2>"$tmp/pyerr" && pass ||
        fail "reference $m digest: $(tail -n 2 "$tmp/pyerr")"
    # a second uninterrupted run agrees with itself (else the trials below prove nothing)
    "$M" train $ARGS --method $m --out "$tmp/ref2_$m" >/dev/null 2>&1 &&
        digest "$tmp/ref2_$m" >"$tmp/ref2_$m.digest" 2>/dev/null &&
        cmp -s "$tmp/ref_$m.digest" "$tmp/ref2_$m.digest" && pass ||
        fail "$m: two uninterrupted runs differ"
    rm -rf "$tmp/ref2_$m"
done

# the digest sees a change of one parameter bit (else equal digests would prove nothing)
if [ -s "$tmp/ref_famo.digest" ]; then
    cp -r "$tmp/ref_famo" "$tmp/flip"
    "$PY" -c '
import struct, sys
p = sys.argv[1] + "/checkpoint.bin"
b = bytearray(open(p, "rb").read())
(cl,) = struct.unpack_from("=I", b, 24)
epoch, cols = struct.unpack_from("=q", b, 28 + cl)[0], struct.unpack_from("=q", b, 68 + cl)[0]
b[len(b) - 4 - 8 * epoch * cols - 2] ^= 1   # the last parameter (the curves follow it)
open(p, "wb").write(b)' "$tmp/flip"
    if digest "$tmp/flip" >"$tmp/flip.digest" 2>/dev/null &&
        ! cmp -s "$tmp/flip.digest" "$tmp/ref_famo.digest"; then
        pass
    else
        fail "the digest does not see a flipped parameter bit"
    fi
    rm -rf "$tmp/flip"
fi

# ---------------------------------------------------------------- trials
kills=0; before_ckpt=0; after_ckpt=0; mid_write=0; ended_first=0; same=0
i=0
while [ $i -lt $TRIALS ]; do
    if [ $((i % 2)) -eq 0 ]; then m=famo; else m=nash_mtl; fi
    eval "ms=\${ms_$m:-0}"
    [ "$ms" -gt 0 ] || ms=2000
    dir="$tmp/trial$i"
    rand; nkill=$(( r % 3 + 1 ))
    k=0; done_=0; runs=0
    while [ $done_ -eq 0 ] && [ $runs -lt 12 ]; do
        runs=$((runs + 1))
        "$M" train $ARGS --method $m --out "$dir" --resume >"$tmp/out" 2>&1 &
        pid=$!
        pids=$pid
        if [ $k -lt $nkill ]; then
            rand
            if [ $k -eq 0 ] && [ $((i % 3)) -eq 0 ]; then
                delay=$(( r * ms / 6000 ))          # early: the first sixth of the run
            else
                delay=$(( ms / 5 + r * ms * 9 / 10000 )) # past the start-up, sometimes past the end
            fi
            if [ $((i % 5)) -eq 4 ] && [ ! -e "$dir/checkpoint.bin.tmp" ]; then
                # hunt for a write in progress: spin until the temporary file appears
                delay=hunt
                while kill -0 $pid 2>/dev/null && [ ! -e "$dir/checkpoint.bin.tmp" ]; do :; done
            else
                sleep_ms $delay
            fi
            kill -9 $pid 2>/dev/null
        fi
        wait $pid 2>/dev/null
        rc=$?
        pids=""
        if [ $rc -eq 137 ]; then
            k=$((k + 1)); kills=$((kills + 1))
            if [ -e "$dir/checkpoint.bin" ]; then after_ckpt=$((after_ckpt + 1))
            else before_ckpt=$((before_ckpt + 1)); fi
            [ -e "$dir/checkpoint.bin.tmp" ] && mid_write=$((mid_write + 1))
            [ -n "$MTGRAD_KILL_VERBOSE" ] &&
                echo "trial $i $m: killed after ${delay} ms of ~${ms}," \
                    "files: $(ls "$dir" | tr '\n' ' ')"
        elif [ $rc -eq 0 ]; then
            done_=1
            [ $k -eq 0 ] && ended_first=$((ended_first + 1))
        else
            fail "trial $i ($m): run $runs exit $rc: $(head -c 400 "$tmp/out")"
            break
        fi
    done
    if [ $done_ -eq 1 ]; then
        pass
        if digest "$dir" >"$tmp/trial.digest" 2>"$tmp/pyerr" &&
            cmp -s "$tmp/ref_$m.digest" "$tmp/trial.digest"; then
            pass; same=$((same + 1))
        else
            fail "trial $i ($m, $k kills): result differs from the uninterrupted run:
  want $(cat "$tmp/ref_$m.digest")
  got  $(cat "$tmp/trial.digest") $(tail -n 2 "$tmp/pyerr")"
        fi
        if [ -e "$dir/checkpoint.bin.tmp" ] || [ -e "$dir/report.json.tmp" ]; then
            fail "trial $i: temporary file left after completion"
        else pass; fi
    elif [ $runs -ge 12 ]; then
        fail "trial $i ($m): not finished after $runs runs"
    fi
    rm -rf "$dir"
    i=$((i + 1))
done

echo "kill/resume: $TRIALS trials, $kills kills ($before_ckpt before the first checkpoint," \
     "$after_ckpt with a checkpoint on disk, $mid_write during a checkpoint write)," \
     "$ended_first runs finished before their kill;" \
     "$same/$TRIALS identical to the uninterrupted run"
[ $kills -ge $TRIALS ] && pass || fail "only $kills kills in $TRIALS trials"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
