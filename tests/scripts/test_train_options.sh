#!/bin/sh
# test_train_options.sh BUILD_DIR — the issue-5 options of `mtgrad train` and `mtgrad compare`
# on a tiny MMoE: usage errors (exit 2) for a bad --optimizer, --task-sample, --grad-space or
# '@' option, and for a combination the method cannot take; the train report records the
# optimizer, task sampling, gradient space and the passes per step; compare with METHOD@OPT
# entries labels its rows with them (table, compare.json), applies -p by label before -p by
# method, and writes delta_m_time.svg. Ends with "N passed, N failed"; exits 1 on a failure.
build=${1:-build}
CLI_TEST=mtgrad_train_opt
. "$(dirname "$0")/cli_lib.sh"
TINY="ntrain=128,ntest=64"
T="train --bench mmoe --bench-params $TINY --epochs 1 --batch 32 -q"

# ---------------------------------------------------------------- usage errors
run "$M" help train; want_in out "--task-sample" "usage names --task-sample"
want_in out "--grad-space" "usage names --grad-space"
want_in out "adatask-adam" "usage names the optimizers"
run "$M" $T --method ls --optimizer lbfgs;       want_rc 2 "bad --optimizer"
want_in err "--optimizer" "bad --optimizer message"
run "$M" $T --method mgda --task-sample os;      want_rc 2 "--task-sample without N"
run "$M" $T --method mgda --task-sample os:0;    want_rc 2 "--task-sample os:0"
run "$M" $T --method mgda --task-sample some:2;  want_rc 2 "--task-sample some:2"
want_in err "os:N or fast:K" "bad --task-sample message"
run "$M" $T --method mgda --task-sample fast:3;  want_rc 2 "--task-sample fast:3 on 2 tasks"
want_in err "has 2 tasks" "too many sampled tasks message"
run "$M" $T --method mgda --grad-space weights;  want_rc 2 "bad --grad-space"
want_in err "param or rep" "bad --grad-space message"
run "$M" $T --method ls --grad-space rep;        want_rc 2 "ls cannot take rep"
run "$M" train --bench toy --method mgda --optimizer sgd; want_rc 2 "toy with --optimizer"
C="compare --bench mmoe --bench-params $TINY --epochs 1 --batch 32 --seeds 1 -q"
run "$M" $C --methods mgda@nope;                 want_rc 2 "compare: unknown '@' option"
want_in err "unknown option 'nope'" "unknown '@' option message"
run "$M" $C --methods mgda@;                     want_rc 2 "compare: '@' without an option"
run "$M" $C --methods mgda@rep@rep;              want_rc 2 "compare: two gradient spaces"
run "$M" $C --methods cagrad@fast:0;             want_rc 2 "compare: fast:0"
run "$M" $C --methods mgda@os:9;                 want_rc 2 "compare: os:9 on 2 tasks"
want_in err "mgda@os:9" "the message names the entry"
run "$M" $C --methods ls@rep;                    want_rc 2 "compare: ls@rep"

# ---------------------------------------------------------------- train reports
run "$M" $T --method mgda --grad-space rep --optimizer rmsprop --out "$tmp/rep"
want_rc 0 "train mgda --grad-space rep --optimizer rmsprop"
want_in out "passes per step: 1 forward, 1 trunk backward" "summary passes"
py "rep report" '
c = d["config"]; assert c["grad_space"] == "rep" and c["task_sample"] == ""
o = c["optimizer"]; assert o["kind"] == "rmsprop" and o["alpha"] == 0.99 and o["eps"] == 1e-8
assert o["lr"] == 1e-3 and not o["per_task"]
p = d["passes"]; assert p["steps"] == 4 and p["forwards"] == 4 and p["trunk_backwards"] == 4
assert p["forwards_per_step"] == 1 and p["trunk_backwards_per_step"] == 1 and len(p["head_backwards"]) == 2
' "$tmp/rep/report.json"
run "$M" $T --method cagrad --task-sample fast:1 --optimizer adatask-adagrad --out "$tmp/fast"
want_rc 2 "cagrad fast:1 with an AdaTask optimizer is not a combination"
run "$M" $T --method cagrad --task-sample fast:1 --out "$tmp/fast"
want_rc 0 "train cagrad --task-sample fast:1"
py "fast report" '
assert d["config"]["task_sample"] == "fast:1" and d["config"]["grad_space"] == "param"
assert d["passes"]["trunk_backwards_per_step"] == 1
' "$tmp/fast/report.json"
run "$M" $T --method ls --optimizer adatask-adam --out "$tmp/ada"
want_rc 0 "train ls --optimizer adatask-adam"
py "adatask report" '
o = d["config"]["optimizer"]; assert o["kind"] == "adatask-adam" and o["per_task"] and o["beta2"] == 0.999
assert d["passes"]["trunk_backwards_per_step"] == 2
' "$tmp/ada/report.json"
run "$M" $T --method ls --optimizer adam --out "$tmp/ada" --resume
want_rc 1 "resume with another optimizer"
want_in err "optimizer=adatask-adam" "the refusal names the optimizer"

# ---------------------------------------------------------------- compare with '@' entries
run "$M" compare --bench mmoe --bench-params $TINY --epochs 2 --batch 32 --seeds 2 \
    --methods famo,mgda@rep,cagrad@fast:1,cagrad,ls@adatask-adam \
    -p cagrad:c=0.3 -p 'cagrad@fast:1:c=0.7' --out "$tmp/c"
want_rc 0 "compare with '@' entries"
want_in out "| mgda@rep |" "row labelled mgda@rep"
want_in out "| cagrad@fast:1 |" "row labelled cagrad@fast:1"
want_in out "| ls@adatask-adam |" "row labelled ls@adatask-adam"
want_in out "passes/step (fwd + bwd) |" "passes column"
want_in out "| 2 + 1 |" "famo: 2 forwards + 1 backward"
want_in out "cagrad@fast:1 parameters: c=0.7" "label parameters"
want_file "$tmp/c/delta_m_time.svg" "delta_m_time.svg"
py "compare rows" '
rows = {m["name"]: m for m in d["methods"]}
assert list(rows) == ["ls", "famo", "mgda@rep", "cagrad@fast:1", "cagrad", "ls@adatask-adam"], list(rows)
r = rows["mgda@rep"]; assert r["method"] == "mgda" and r["grad_space"] == "rep" and r["task_sample"] == ""
assert r["passes_per_step"] == {"forward": 1, "backward": 1} and r["optimizer"] == "adam"
r = rows["cagrad@fast:1"]; assert r["method"] == "cagrad" and r["task_sample"] == "fast:1"
assert r["params"] == "c=0.7" and r["params_used"]["c"] == "0.7", r["params_used"]
assert rows["cagrad"]["params"] == "c=0.3" and rows["cagrad"]["passes_per_step"]["backward"] == 2
assert rows["ls@adatask-adam"]["optimizer"] == "adatask-adam" and rows["ls"]["optimizer"] == "adam"
assert rows["ls"]["passes_per_step"] == {"forward": 1, "backward": 1}
assert rows["famo"]["passes_per_step"] == {"forward": 2, "backward": 1}
assert d["stl"]["method"] == "ls" and d["stl"]["passes_per_step"]["forward"] == 2  # 2 networks
for r in rows.values():
    for s in r["runs"]:
        assert s["ok"] and s["forwards_per_step"] >= 1, (r["name"], s)
' "$tmp/c/compare.json"
if command -v "$PY" >/dev/null 2>&1; then
    if "$PY" - "$tmp/c/delta_m_time.svg" <<'EOF' 2>"$tmp/pyerr"; then pass; else fail "delta_m_time.svg: $(tail -n 2 "$tmp/pyerr")"; fi
import sys, xml.dom.minidom as x
doc = x.parse(sys.argv[1])
text = " ".join(t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild)
for label in ["mgda@rep", "cagrad@fast:1", "ls@adatask-adam", "famo", "training time"]:
    assert label in text, label
lines = doc.getElementsByTagName("polyline")
assert len(lines) >= 6, len(lines)   # one per row (2 epochs: 2 points each)
EOF
fi

# ---------------------------------------------------------------- --stl-from
run "$M" compare --bench mmoe --bench-params $TINY --epochs 2 --batch 32 --seeds 2 \
    --methods ls,mgda --stl-from "$tmp/c/compare.json" --out "$tmp/s"
want_rc 0 "compare --stl-from"
want_in err "[4/4] seed 1 mgda" "no STL training (2 seeds x 2 rows)"
py "reused STL" '
f = json.load(open(sys.argv[1].replace("/s/", "/c/")))
assert d["stl"]["runs"] == f["stl"]["runs"] and d["config"]["stl_from"].endswith("compare.json")
assert d["methods"][0]["runs"] == [dict(r, time_per_epoch=s["time_per_epoch"]) for r, s in
                                   zip(f["methods"][0]["runs"], d["methods"][0]["runs"])]
' "$tmp/s/compare.json"
run "$M" compare --bench mmoe --bench-params $TINY --epochs 3 --batch 32 --seeds 2 \
    --methods ls --stl-from "$tmp/c/compare.json" -q
want_rc 1 "--stl-from of another number of epochs"
want_in err "another number of epochs" "--stl-from mismatch message"
run "$M" compare --bench mmoe --bench-params $TINY --epochs 2 --batch 32 --seeds 3 \
    --methods ls --stl-from "$tmp/c/compare.json" -q
want_rc 1 "--stl-from without the third seed"
run "$M" compare --bench mmoe --bench-params $TINY --epochs 2 --batch 32 --seeds 1 \
    --methods ls --stl-from "$tmp/c/curves.svg" -q
want_rc 1 "--stl-from of a file that is not JSON"

cli_test_end
