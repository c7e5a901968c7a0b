#!/bin/sh
# test_toy_cli.sh BUILD_DIR — `mtgrad toy`: a short run prints the markdown table (one row per
# method, ✓/✗ with the final θ), writes toy_<setting>.svg (well-formed XML: parsed by Python's
# XML parser when python3 is there, tag balance otherwise) and toy.json (valid, one entry per
# method and start); MGDA reaches the Pareto set from all Nash-MTL starts with the default steps;
# method parameters (--methods NAME:k=v, --param); usage errors exit 2, failed runs exit 1.
# Ends with "N passed, N failed"; exits 1 if anything failed.
build=${1:-build}
M="$build/mtgrad"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtgrad_toy_cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
pass() { passed=$((passed + 1)); }
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
want_rc() { # WANT DESCRIPTION
    if [ "$rc" -eq "$1" ]; then pass; else fail "$2: exit $rc, want $1 ($(head -c 300 "$tmp/err"))"; fi
}
want_in() { # out|err FIXED-STRING DESCRIPTION
    if grep -qF -- "$2" "$tmp/$1"; then pass; else
        fail "$3: '$2' not in std$1: $(head -c 400 "$tmp/$1")"; fi
}
have_py=0
command -v python3 >/dev/null 2>&1 && python3 -c 'import json, xml.etree.ElementTree' 2>/dev/null && have_py=1

# svg_ok FILE: well-formed XML with an <svg> root
svg_ok() {
    if [ "$have_py" -eq 1 ]; then
        python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); assert r.tag.endswith("svg"); assert len(r.findall(".//{http://www.w3.org/2000/svg}polyline")) > 0' "$1" 2>/dev/null
    else
        [ "$(grep -o '<[a-z]' "$1" | wc -l)" -gt 0 ] && [ "$(grep -c '</svg>' "$1")" -eq 1 ]
    fi
}

if [ ! -x "$M" ]; then
    echo "FAIL: $M not built"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---------------------------------------------------------------- a short run
run "$M" toy --methods mean,mgda,cagrad:c=0.2 --steps 3000 --out "$tmp/o1" --threads 2
want_rc 0 "short toy run"
want_in out "| method | start (-8.5, 7.5) | start (-8.5, 5) | start (0, 0) | start (9, 9) | start (10, -8) | reached |" "table header"
want_in out "| mean |" "mean row"
want_in out "| mgda |" "mgda row"
want_in out "| cagrad (c=0.2) |" "row with parameters"
want_in out "3000 Adam steps" "steps in the title"
rows=$(grep -c '^| [a-z]' "$tmp/out")
if [ "$rows" -eq 4 ]; then pass; else fail "expected header + 3 rows, got $rows"; fi
if grep -q '^| mean | [✓✗] (-\?[0-9.]*, -\?[0-9.]*) |' "$tmp/out"; then pass; else
    fail "cells are ✓/✗ with the final θ: $(grep '^| mean' "$tmp/out")"; fi
want_in err "toy: wrote" "progress on stderr"
if [ -s "$tmp/o1/toy_cagrad.svg" ] && svg_ok "$tmp/o1/toy_cagrad.svg"; then pass; else
    fail "toy_cagrad.svg missing or not well-formed"; fi
if [ ! -e "$tmp/o1/toy_nash.svg" ]; then pass; else fail "nash SVG written for --setting cagrad"; fi
if [ "$have_py" -eq 1 ]; then
    if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = d["settings"]
assert len(s) == 1 and s[0]["setting"] == "cagrad" and s[0]["steps"] == 3000
assert [m["method"] for m in s[0]["methods"]] == ["mean", "mgda", "cagrad"]
assert s[0]["methods"][2]["params"] == "c=0.2"
for m in s[0]["methods"]:
    assert len(m["runs"]) == 5
    for r in m["runs"]:
        assert r["status"] == "ok" and len(r["final"]) == 2
        assert r["trajectory"][0] == r["start"] and r["trajectory"][-1] == r["final"]
        assert 50 <= len(r["trajectory"]) <= 120
' "$tmp/o1/toy.json" 2>"$tmp/py.err"; then pass; else fail "toy.json: $(cat "$tmp/py.err")"; fi
fi

# ---------------------------------------------------------------- both settings, --param
run "$M" toy --methods mgda,cagrad --param cagrad:c=0 --setting both --steps 500 --out "$tmp/o2" --quiet
want_rc 0 "both settings"
want_in out "Nash-MTL setting (0.1·L1, L2)" "nash table"
want_in out "| cagrad (c=0) |" "--param applied"
if [ ! -s "$tmp/err" ]; then pass; else fail "--quiet still printed: $(head -c 200 "$tmp/err")"; fi
if svg_ok "$tmp/o2/toy_cagrad.svg" && svg_ok "$tmp/o2/toy_nash.svg"; then pass; else
    fail "both SVGs well-formed"; fi

# ---------------------------------------------------------------- MGDA reaches from every start
run "$M" toy --methods mgda --setting nash --out "$tmp/o3" --quiet
want_rc 0 "mgda, nash setting, default steps"
want_in out "50000 Adam steps" "default steps of the nash setting"
want_in out "| 5/5 |" "mgda reaches the Pareto set from all 5 starts"

# ---------------------------------------------------------------- errors
run "$M" toy --methods nosuch --out "$tmp/o4";        want_rc 2 "unknown method"
want_in err "unknown method 'nosuch'" "unknown method message"
run "$M" toy --setting sideways;                      want_rc 2 "bad setting"
run "$M" toy --steps 0;                               want_rc 2 "steps 0"
run "$M" toy --steps 12abc;                           want_rc 2 "steps not a number"
run "$M" toy --lr -1;                                 want_rc 2 "negative lr"
run "$M" toy extra;                                   want_rc 2 "extra argument"
run "$M" toy --methods mean --param mgda:x=1;         want_rc 2 "--param of a method not run"
run "$M" toy --bogus;                                 want_rc 2 "unknown option"
run "$M" toy --methods cagrad:c=-1 --steps 10 --out "$tmp/o5" --quiet
want_rc 1 "a method that cannot run: exit 1"
want_in out "error:" "the table shows the failed runs"
want_in err "cagrad" "the failure is explained"
run "$M" help toy;                                    want_rc 0 "help toy"
want_in out "usage: mtgrad toy" "usage text"
run "$M" toy --help;                                  want_rc 0 "toy --help"
printf 'x' > "$tmp/file"
run "$M" toy --methods mean --steps 10 --out "$tmp/file/sub" --quiet
want_rc 1 "unwritable output directory"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
