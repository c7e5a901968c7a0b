#!/bin/sh
# test_cli.sh BUILD_DIR — the mtgrad command-line tool: exit codes (0 ok, 1 failure, 2 usage),
# error messages, `aggregate` against hand-computed means, and `check-golden` on small golden
# files written here (a passing case, a deliberately wrong one, malformed files).
# Ends with "N passed, N failed"; exits 1 if anything failed.
build=${1:-build}
M="$build/mtgrad"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtgrad_cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0

fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
pass() { passed=$((passed + 1)); }
# run CMD...: exit status in $rc, stdout in $tmp/out, stderr in $tmp/err
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
want_rc() { # WANT DESCRIPTION
    if [ "$rc" -eq "$1" ]; then pass; else fail "$2: exit $rc, want $1 ($(head -c 300 "$tmp/err"))"; fi
}
want_in() { # out|err FIXED-STRING DESCRIPTION
    if grep -qF -- "$2" "$tmp/$1"; then pass; else
        fail "$3: '$2' not in std$1: $(head -c 400 "$tmp/$1")"; fi
}

if [ ! -x "$M" ]; then
    echo "FAIL: $M not built"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---------------------------------------------------------------- general
run "$M" --version;            want_rc 0 "--version"; want_in out "mtgrad 0." "--version text"
run "$M" --help;               want_rc 0 "--help";    want_in out "check-golden" "--help lists commands"
run "$M";                      want_rc 2 "no command"
run "$M" frobnicate;           want_rc 2 "unknown command"; want_in err "unknown command 'frobnicate'" "unknown command message"
run "$M" help aggregate;       want_rc 0 "help aggregate"; want_in out "usage: mtgrad aggregate" "help aggregate text"
run "$M" help nothing;         want_rc 2 "help of an unknown command"

# ---------------------------------------------------------------- methods
run "$M" methods;              want_rc 0 "methods"; want_in out "mean" "methods lists mean"
run "$M" methods --markdown;   want_rc 0 "methods --markdown"
want_in out "| method | needs | parameters (defaults) | what it does |" "markdown header"
rows=$(grep -c '^| `' "$tmp/out")
nmeth=$("$M" methods | grep -c '^[a-z_0-9]* — ')
if [ "$rows" -eq "$nmeth" ] && [ "$rows" -gt 0 ]; then pass; else fail "markdown has $rows rows for $nmeth methods"; fi
run "$M" methods --json;       want_rc 0 "methods --json"
if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["methods"]; assert isinstance(d, list); m=[x for x in d if x["name"]=="mean"][0]; assert "weights" in m["flags"]; assert all("default" in p for x in d for p in x["params"])' "$tmp/out" 2>/dev/null; then
        pass; else fail "methods --json is not the expected JSON"; fi
    # the optimizers with their memory (AdaTask-Adam: 2 floats per task on the shared parameters)
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); o={x["name"]: x for x in d["optimizers"]}; assert set(o) >= {"sgd","adam","adamw","rmsprop","adagrad","adatask-adam","adatask-rmsprop","adatask-adagrad"}; assert o["adam"]["floats_per_param"] == 2 and not o["adam"]["per_task"]; assert o["adatask-adam"]["per_task"] and o["adatask-adam"]["floats_per_param"] == 2; assert o["adatask-adagrad"]["floats_per_param"] == 1; assert [s["option"] for s in d["step_options"]] == ["--task-sample", "--grad-space"]' "$tmp/out" 2>/dev/null; then
        pass; else fail "methods --json: optimizers or step_options not as expected"; fi
fi
run "$M" methods
want_in out "adatask-adam" "methods lists the AdaTask optimizers"
want_in out "2k·d floats for the d shared parameters" "methods gives AdaTask-Adam's memory"
want_in out "--task-sample os:N" "methods lists the step options"
run "$M" methods --json --markdown; want_rc 2 "methods --json --markdown"
run "$M" methods extra;        want_rc 2 "methods with an argument"

# ---------------------------------------------------------------- aggregate
printf '# two tasks, three parameters\n1, -2, 0.5\n\n3 4 -1.5  # second task\n' > "$tmp/g.txt"
run "$M" aggregate -m mean "$tmp/g.txt"
want_rc 0 "aggregate mean"
want_in out "direction: 2 1 -0.5" "mean of (1,-2,0.5) and (3,4,-1.5)"
want_in out "weights: 0.5 0.5" "mean weights"
run "$M" aggregate -m sum "$tmp/g.txt"
want_rc 0 "aggregate sum"; want_in out "direction: 4 2 -1" "sum by hand"
run "$M" aggregate --json -m mean "$tmp/g.txt"
want_rc 0 "aggregate --json"; want_in out '"direction"' "json direction key"
if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["direction"]==[2,1,-0.5] and d["weights"]==[0.5,0.5]' "$tmp/out" 2>/dev/null; then
        pass; else fail "aggregate --json values"; fi
fi
# .npy version 1.0, '<f8', shape (2, 1): the values 1.0 and 2.0, mean 1.5
h="{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }"
n=$((${#h} + 1))
{ printf '\223NUMPY\001\000'; printf "\\$(printf %03o "$n")\\000"; printf '%s\n' "$h"
  printf '\000\000\000\000\000\000\360\077\000\000\000\000\000\000\000\100'; } > "$tmp/g.npy"
run "$M" aggregate -m mean "$tmp/g.npy"
want_rc 0 "aggregate .npy"; want_in out "direction: 1.5" "mean of the .npy rows 1 and 2"
run sh -c "\"$M\" aggregate -m mean - < \"$tmp/g.txt\""
want_rc 0 "aggregate from stdin"; want_in out "direction: 2 1 -0.5" "stdin matrix"

run "$M" aggregate -m nope "$tmp/g.txt"
want_rc 1 "unknown method"; want_in err "mtgrad: unknown method 'nope'" "unknown method message"
run "$M" aggregate -m mean -p bogus=1 "$tmp/g.txt"
want_rc 1 "unknown parameter"; want_in err "unknown parameter 'bogus'" "unknown parameter message"
run "$M" aggregate -m mean -p threads=0 "$tmp/g.txt"
want_rc 1 "parameter out of range"; want_in err "threads" "bad value names the parameter"
run "$M" aggregate -m mean --seed abc "$tmp/g.txt"
want_rc 1 "bad seed"; want_in err "seed" "bad seed message"
run "$M" aggregate -m si_ls --losses 1,2,3 "$tmp/g.txt"
want_rc 1 "wrong number of losses"; want_in err "3 values" "losses count message"
run "$M" aggregate "$tmp/g.txt"
want_rc 2 "aggregate without -m"
run "$M" aggregate -m mean "$tmp/g.txt" "$tmp/g.txt"
want_rc 2 "aggregate with two files"
run "$M" aggregate -m mean --bogus "$tmp/g.txt"
want_rc 2 "aggregate unknown option"
run "$M" aggregate -m mean "$tmp/missing.txt"
want_rc 1 "missing file"; want_in err "missing.txt" "missing file named"
printf '1 2 3\n4 5\n' > "$tmp/ragged.txt"
run "$M" aggregate -m mean "$tmp/ragged.txt"
want_rc 1 "ragged matrix"; want_in err "line 2" "ragged matrix line"

# ---------------------------------------------------------------- check-golden
mkdir "$tmp/gold"
# case_text NAME EXPECTED-DIRECTION [EXTRA-PARAM-LINE]: a mean case on G = (1,-2,0.5),(3,4,-1.5)
case_text() {
    printf 'case %s\nmethod mean\nsource hand (mean by hand)\n' "$1"
    [ -n "$3" ] && printf '%s\n' "$3"
    printf 'k 2 d 3\nG\n1 -2 0.5\n3 4 -1.5\nexpect_weights 0.5 0.5\n'
    printf 'expect_direction %s\ntol 1e-12\nend\n\n' "$2"
}
case_text good-case "2 1 -0.5" > "$tmp/gold/a.txt"
run "$M" check-golden "$tmp/gold/a.txt"
want_rc 0 "check-golden on a correct case"; want_in out "1 passed, 0 failed" "one pass"
# a NaN expected value in the first of two steps must fail even when the second step matches
awk '/^case dwa-decreasing-k2-d7$/,/^end$/' "${2:-../shared/golden}/dwa.txt" |
    awk '/^expect_direction/ && !done { print "expect_direction nan 0 0 0 0 0 0"; done = 1; next } { print }' \
    > "$tmp/nan.txt"
run "$M" check-golden "$tmp/nan.txt"
want_rc 1 "a NaN error in an early step sticks"; want_in out "0 passed, 1 failed" "NaN step fails"
run "$M" check-golden -v "$tmp/gold/a.txt"
want_in out "ok good-case" "-v prints passing cases"
{ case_text good-two "2 1 -0.5"; case_text wrong-case "2 1.001 -0.5"; } > "$tmp/gold/b.txt"
run "$M" check-golden "$tmp/gold/b.txt"
want_rc 1 "check-golden with a wrong expected value"
want_in out "FAIL wrong-case ($tmp/gold/b.txt:13): max abs error" "failing case named with file:line"
want_in out "1 passed, 1 failed" "counts with a failure"
if tail -n 1 "$tmp/out" | grep -qx '1 passed, 1 failed'; then pass; else fail "final line alone"; fi
echo 'not a golden file' > "$tmp/gold/README.md"
run "$M" check-golden --summary "$tmp/gold"
want_rc 1 "check-golden on a directory"
want_in out "2 passed, 1 failed" "directory: *.txt only, README.md skipped"
want_in out "mean: 2/3" "--summary per-method counts"

mkdir "$tmp/bad"
case_text runner-state "2 1 -0.5" "param state warm" > "$tmp/bad/s.txt"
run "$M" check-golden "$tmp/bad/s.txt"
want_rc 1 "state other than fresh"; want_in out "param state" "state message"
case_text runner-steps "2 1 -0.5" "param steps 3" > "$tmp/bad/t.txt"
run "$M" check-golden "$tmp/bad/t.txt"
want_rc 1 "steps mismatch"; want_in out "param steps" "steps message"
case_text lib-param "2 1 -0.5" "param bogus 1 (explained)" > "$tmp/bad/p.txt"
run "$M" check-golden "$tmp/bad/p.txt"
want_rc 1 "unknown library param"; want_in out "unknown parameter 'bogus'" "library message"
case_text ok-params "2 1 -0.5" "param state fresh: nothing carried" > "$tmp/bad/ok.txt"
run "$M" check-golden "$tmp/bad/ok.txt"
want_rc 0 "state fresh with an explanation"
sed 's/^method mean/method nosuch/' "$tmp/gold/a.txt" > "$tmp/bad/m.txt"
run "$M" check-golden "$tmp/bad/m.txt"
want_rc 1 "unknown method in a case"; want_in out "FAIL good-case" "unknown method names the case"
head -n 9 "$tmp/gold/a.txt" > "$tmp/bad/trunc.txt"
run "$M" check-golden "$tmp/bad/trunc.txt" "$tmp/gold/a.txt"
want_rc 1 "truncated file"; want_in out "$tmp/bad/trunc.txt:9: " "truncated file gives file:line"
want_in out "1 passed, 1 failed" "a malformed file counts as one failure, the next file still runs"
sed 's/^1 -2 /1 -2x /' "$tmp/gold/a.txt" > "$tmp/bad/num.txt"
run "$M" check-golden "$tmp/bad/num.txt"
want_rc 1 "non-numeric G"; want_in out "$tmp/bad/num.txt:6: " "non-numeric gives file:line"
: > "$tmp/bad/empty.txt"
run "$M" check-golden "$tmp/bad/empty.txt"
want_rc 1 "empty file"; want_in out "empty.txt:1: " "empty file named"
run "$M" check-golden "$tmp/nonexistent.txt"
want_rc 1 "missing golden file"
run "$M" check-golden
want_rc 2 "check-golden without a path"
run "$M" check-golden --bogus "$tmp/gold"
want_rc 2 "check-golden with an unknown option"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
