#!/bin/sh
# test_bench_train.sh BUILD_DIR — `mtgrad bench --train`: the per-step cost table on a tiny run.
# What is checked is what does not depend on timing: every row is there, LS's xLS is 1, and the
# passes per step the model counted match what each method must do by its definition
# (methods.md: LS one weighted backward; FAMO one backward and a second forward after the
# update; MGDA k backwards; MARIGOLD/forward one backward and one extra forward, central two,
# step with reuse_next none; MGDA-UB one trunk backward; AdaTask k backwards; SDMGrad's double
# sampling three batches of k backwards; task sampling between 1 and k), the JSON parses, a row
# that cannot run is an error row (not a crash), and usage errors exit 2.
# Ends with "N passed, N failed"; exits 1 if anything failed.
build=${1:-build}
CLI_TEST=mtgrad_bench_train
. "$(dirname "$0")/cli_lib.sh"

# ---------------------------------------------------------------- usage errors
run "$M" bench --train --help;                 want_rc 0 "--train --help"
want_in out "usage: mtgrad bench --train" "--train usage text"
run "$M" help bench;                           want_rc 0 "help bench"
want_in out "--train" "bench usage mentions --train"
run "$M" bench --train -k 1;                   want_rc 2 "-k 1"
run "$M" bench --train -k x;                   want_rc 2 "-k x"
run "$M" bench --train -k 2,65;                want_rc 2 "-k 65"
run "$M" bench --train -m nope;                want_rc 2 "unknown method"
want_in err "nope" "unknown method named"
run "$M" bench --train -m ls@nope;             want_rc 2 "unknown step option"
run "$M" bench --train -m cagrad@fast:0;       want_rc 2 "fast:0"
run "$M" bench --train --models imagenet;      want_rc 2 "unknown model"
run "$M" bench --train --steps 2;              want_rc 2 "--steps below 5"
run "$M" bench --train --warmup -1;            want_rc 2 "negative --warmup"
run "$M" bench --train extra;                  want_rc 2 "extra argument"

# ---------------------------------------------------------------- the quick table on mmoe
run "$M" bench --train --quick --models mmoe --batch 32 --ntrain 256 --json "$tmp/b.json"
want_rc 0 "bench --train --quick"
for m in ls famo mgda marigold "marigold:estimator=central" "sdmgrad@os:1" "mgda@rep" \
         "ls@adatask-adam" "sdmgrad:sampling=double" "cagrad@fast:2" "cagrad@fast:4"; do
    if grep -q "^$m  *mmoe " "$tmp/out"; then pass; else fail "no row for $m: $(head -c 600 "$tmp/out")"; fi
done
# LS's xLS column is 1.00 at both k (columns: method model k batch ms xLS ...)
n=$(awk '$1 == "ls" && $2 == "mmoe" && $6 == "1.00"' "$tmp/out" | wc -l)
if [ "$n" -eq 2 ]; then pass; else fail "LS xLS = 1.00 on $n rows, want 2"; fi
if grep -q "error:" "$tmp/out"; then fail "error rows in the quick run: $(grep error: "$tmp/out")"; else pass; fi
want_in out "median of 5 timed steps after 2 warm-up" "the footer says what was timed"
want_in err "estimated" "an estimate on stderr"

# passes per step, by definition of each method (f: forwards, b: trunk backwards)
PY_ROWS='r={(x["method"], x["k"]): x for x in d["rows"] if x["model"] == "mmoe"}
def p(m, k): x = r[(m, k)]; assert x["status"] == "ok", x; return x["forwards_per_step"], x["trunk_backwards_per_step"], x
'
py "JSON rows for both k" "$PY_ROWS
assert {k for (_, k) in r} == {2, 4}, r.keys()
assert all(x['batch'] == 32 and x['ms_per_step'] > 0 for x in r.values())" "$tmp/b.json"
py "LS: x_ls 1, one forward, one backward" "$PY_ROWS
for k in (2, 4):
    f, b, x = p('ls', k); assert (f, b, x['x_ls']) == (1, 1, 1), x
    assert x['head_backwards_per_step'] == k, x" "$tmp/b.json"
py "FAMO: 2 forwards, 1 backward" "$PY_ROWS
for k in (2, 4): f, b, x = p('famo', k); assert (f, b) == (2, 1), x" "$tmp/b.json"
py "MGDA: k backwards" "$PY_ROWS
for k in (2, 4): f, b, x = p('mgda', k); assert (f, b) == (1, k), x" "$tmp/b.json"
py "MARIGOLD forward: 2 forwards, 1 backward" "$PY_ROWS
for k in (2, 4): f, b, x = p('marigold', k); assert (f, b) == (2, 1), x" "$tmp/b.json"
py "MARIGOLD central: 3 forwards, 1 backward" "$PY_ROWS
for k in (2, 4): f, b, x = p('marigold:estimator=central', k); assert (f, b) == (3, 1), x" "$tmp/b.json"
py "MARIGOLD step+reuse_next: 1 forward, 1 backward" "$PY_ROWS
for k in (2, 4): f, b, x = p('marigold:estimator=step+reuse_next=1', k); assert (f, b) == (1, 1), x" "$tmp/b.json"
py "MGDA-UB: one trunk backward, k head backwards" "$PY_ROWS
for k in (2, 4):
    f, b, x = p('mgda@rep', k); assert (f, b) == (1, 1), x
    assert x['head_backwards_per_step'] >= k, x" "$tmp/b.json"
py "AdaTask: k backwards" "$PY_ROWS
for k in (2, 4): f, b, x = p('ls@adatask-adam', k); assert (f, b) == (1, k), x" "$tmp/b.json"
py "SDMGrad double sampling: 3 forwards, 3k backwards" "$PY_ROWS
for k in (2, 4): f, b, x = p('sdmgrad:sampling=double', k); assert (f, b) == (3, 3 * k), x" "$tmp/b.json"
py "SDMGrad-OS: between 1 and k backwards" "$PY_ROWS
for k in (2, 4): f, b, x = p('sdmgrad@os:1', k); assert f == 1 and 1 <= b <= k, x" "$tmp/b.json"
py "CAGrad-fastK with K = min(4, k): K backwards" "$PY_ROWS
for k in (2, 4): f, b, x = p('cagrad@fast:%d' % min(4, k), k); assert (f, b) == (1, min(4, k)), x" "$tmp/b.json"
py "phases present" "$PY_ROWS
x = r[('mgda', 4)]['phases_ms']
assert set(x) == {'forward','backward','gram','solve','combine','optim','total'}, x" "$tmp/b.json"

# ---------------------------------------------------------------- a row that cannot run
run "$M" bench --train -k 2 --models mmoe --batch 16 --ntrain 64 -m ls@rep,mgda --warmup 0 --json "$tmp/e.json"
want_rc 0 "a row that cannot run is not a failure of the run"
want_in out "error:" "error row in the table"
py "error row in JSON, the other rows fine" "r={x['method']: x for x in d['rows']}
assert r['ls@rep']['status'] != 'ok' and r['ls@rep']['error'], r
assert r['mgda']['status'] == 'ok' and r['ls']['status'] == 'ok', r" "$tmp/e.json"

# ---------------------------------------------------------------- fashion-k (when its data is there)
run "$M" bench --train -k 2,40 --models fashion-k,mmoe --batch 8 --ntrain 64 -m ls,mgda --warmup 0
want_rc 0 "fashion-k and mmoe"
want_in err "fashion-k has k <= 10" "k = 40 on mmoe only"
if grep -q "^ls  *fashion-k .*error:.*fashion" "$tmp/out"; then
    echo "note: fashion-k data missing, its rows are error rows"
    pass
else
    if awk '$1 == "mgda" && $2 == "fashion-k" && $3 == 2 && $8 == "2.00"' "$tmp/out" | grep -q .; then
        pass; else fail "fashion-k mgda row: $(grep fashion-k "$tmp/out")"; fi
fi
if awk '$1 == "mgda" && $2 == "mmoe" && $3 == 40 && $8 == "40.00"' "$tmp/out" | grep -q .; then
    pass; else fail "mmoe k=40 mgda row with 40 backwards: $(grep ' 40 ' "$tmp/out")"; fi
if grep -q "fashion-k  *40 " "$tmp/out"; then fail "a fashion-k row at k = 40"; else pass; fi

cli_test_end
