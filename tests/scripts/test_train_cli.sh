#!/bin/sh
# test_train_cli.sh BUILD_DIR — `mtgrad train` and `mtgrad compare` end to end on a tiny MMoE:
# exit codes (0 ok, 1 failure, 2 usage), the JSON report and its schema, checkpoint + --resume,
# a refused resume with another configuration, --stl, the compare table, compare.json and the
# SVG plots, and `train --bench toy`. Ends with "N passed, N failed"; exits 1 if anything failed.
build=${1:-build}
CLI_TEST=mtgrad_train_cli
. "$(dirname "$0")/cli_lib.sh"
TINY="ntrain=256,ntest=128"

# ---------------------------------------------------------------- usage errors
run "$M" help train;   want_rc 0 "help train"; want_in out "usage: mtgrad train" "train usage"
run "$M" help compare; want_rc 0 "help compare"; want_in out "usage: mtgrad compare" "compare usage"
run "$M" train --method ls;                 want_rc 2 "train without --bench"
run "$M" train --bench mmoe;                want_rc 2 "train without --method"
run "$M" train --bench mmoe --method nope;  want_rc 2 "unknown method"
want_in err "unknown method" "unknown method message"
run "$M" train --bench mmoe --method ls --epochs x;  want_rc 2 "bad --epochs"
run "$M" train --bench mmoe --method ls --epochs 0;  want_rc 2 "--epochs 0"
run "$M" train --bench mmoe --method ls --resume;    want_rc 2 "--resume without --out"
run "$M" train --bench mmoe --method ls extra;       want_rc 2 "extra argument"
run "$M" train --bench mmoe --method ls --frob;      want_rc 2 "unknown option"
run "$M" train --bench nope --method ls;             want_rc 2 "unknown benchmark"
run "$M" train --bench mmoe --method ls --bench-params $TINY --stl 7 -q; want_rc 2 "--stl out of range"
run "$M" compare --methods ls;                       want_rc 2 "compare without --bench"
run "$M" compare --bench mmoe --methods ls,nope;     want_rc 2 "compare unknown method"
run "$M" compare --bench mmoe --seeds 0;             want_rc 2 "compare --seeds 0"

# ---------------------------------------------------------------- train, report, resume
run "$M" train --bench mmoe --method cagrad -p c=0.4 --bench-params $TINY --epochs 2 --batch 64 \
    --out "$tmp/t"
want_rc 0 "train cagrad"
want_in out "| task | metric | final |" "summary table"
want_in out "time per epoch" "time line"
want_in err "epoch 2/2: train loss" "plain progress lines off a terminal"
want_file "$tmp/t/report.json" "report.json"
want_file "$tmp/t/checkpoint.bin" "checkpoint.bin"
py "report schema" '
assert d["schema"] == "mtgrad.train/1"
c = d["config"]; assert c["method"] == "cagrad" and c["method_params"] == "c=0.4" and c["batch"] == 64
assert c["ntrain"] == 256 and c["ntest"] == 128 and d["epochs"] == 2 and d["steps"] == 8
assert len(d["tasks"]) == 2 and all(t["metric"] == "mse" and not t["higher_is_better"] for t in d["tasks"])
cu = d["curves"]; assert len(cu["train_loss"]) == 2 and all(len(r) == 2 for r in cu["test_metric"])
assert abs(d["tasks"][1]["final"] - cu["test_metric"][-1][1]) < 1e-12
t = d["time"]; assert set(t["per_epoch"]) == {"forward","backward","gram","solve","combine","optim","total"}
assert len(t["per_epoch"]["total"]) == 2 and t["mean_per_epoch"]["total"] > 0
assert d["peak_rss_mb"] > 0 and d["resumed_epoch"] == 0 and d["model"]["k"] == 2
' "$tmp/t/report.json"
cp "$tmp/t/report.json" "$tmp/first.json"

run "$M" train --bench mmoe --method cagrad -p c=0.4 --bench-params $TINY --epochs 3 --batch 64 \
    --out "$tmp/t" --resume -q
want_rc 0 "resume for a third epoch"
want_in out "resumed after epoch 2" "summary says resumed"
py "resumed report" '
assert d["resumed_epoch"] == 2 and d["epochs"] == 3 and len(d["curves"]["test_loss"]) == 3
f = json.load(open(sys.argv[1].replace("t/report.json", "first.json")))
assert d["curves"]["test_loss"][:2] == f["curves"]["test_loss"]
' "$tmp/t/report.json"

run "$M" train --bench mmoe --method mgda --bench-params $TINY --epochs 3 --batch 64 \
    --out "$tmp/t" --resume -q
want_rc 1 "resume with another method"
want_in err "another configuration" "refused resume message"
want_in err "method=cagrad" "the message names the difference"

run "$M" train --bench mmoe --method ls --bench-params $TINY --epochs 1 --stl 1 --out "$tmp/s" -q
want_rc 0 "train --stl 1"
py "stl report" 'assert d["model"]["k"] == 1 and d["tasks"][0]["bench_task"] == 1 and d["config"]["stl_task"] == 1' \
    "$tmp/s/report.json"

# ---------------------------------------------------------------- compare
run "$M" compare --bench mmoe --methods mgda --seeds 1 --quick --bench-params $TINY --epochs 2 \
    --out "$tmp/c"
want_rc 0 "compare --quick"
want_in out "| method |" "table header"
want_in out "| stl |" "STL row"
want_in out "| ls |" "ls added automatically"
want_in out "| mgda |" "mgda row"
want_in out "Δm% ↓ | MR ↓ | time/epoch (s) | time ×LS |" "table columns"
want_in err "[4/4] seed 0 mgda" "per-run lines (2 STL + ls + mgda)"
want_file "$tmp/c/compare.json" "compare.json"
want_file "$tmp/c/curves.svg" "curves.svg"
want_file "$tmp/c/delta_m.svg" "delta_m.svg"
want_in out "256 train / 128 test" "quick keeps the smaller data"
py "compare schema" '
assert d["schema"] == "mtgrad.compare/1" and d["config"]["seeds"] == 1 and d["config"]["epochs"] == 2
assert [m["name"] for m in d["methods"]] == ["ls", "mgda"]
assert d["stl"]["delta_m_mean"] == 0 and d["stl"]["seeds_ok"] == 1
ls = d["methods"][0]; assert abs(ls["time_x_ls"] - 1) < 1e-12 and len(ls["metric_mean"]) == 2
for m in d["methods"]:
    r = m["runs"][0]; assert r["ok"] and len(r["metrics"]) == 2
    b = d["stl"]["runs"][0]["metrics"]
    dm = sum((r["metrics"][j] - b[j]) / b[j] for j in range(2)) / 2 * 100   # MSE: lower is better
    assert abs(dm - r["delta_m"]) < 1e-9 and abs(m["delta_m_mean"] - dm) < 1e-9 and m["delta_m_se"] == 0
    assert 1 <= m["mean_rank"] <= 2
' "$tmp/c/compare.json"
if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import sys, xml.dom.minidom as x; [x.parse(f) for f in sys.argv[1:]]' \
        "$tmp/c/curves.svg" "$tmp/c/delta_m.svg" 2>/dev/null; then pass; else fail "SVG not well-formed"; fi
fi
run "$M" compare --bench mmoe --methods ls --seeds 1 --bench-params $TINY --epochs 1 -q \
    --out /dev/null/x
want_rc 1 "compare with an unwritable --out"

# ---------------------------------------------------------------- toy
run "$M" train --bench toy --method mgda --bench-params steps=3000 --out "$tmp/toy"
want_rc 0 "train --bench toy"
want_in out "reached the Pareto set from" "toy summary"
py "toy report" 'assert d["schema"] == "mtgrad.train-toy/1" and len(d["runs"]) == 5 and d["steps"] == 3000' \
    "$tmp/toy/report.json"
run "$M" train --bench toy --method mgda --bench-params setting=7; want_rc 2 "toy bad setting"

cli_test_end
