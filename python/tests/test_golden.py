"""test_golden.py — the NumPy API on every golden case of ../shared/golden, with the pass rule of
`mtgrad check-golden` (reproduced in golden_reader.py). One test per case, named after it."""
import os

import pytest

import mtgrad
from conftest import golden_dir
from golden_reader import GoldenError, golden_files, read_cases, run_case


def _collect():
    d = golden_dir()
    if not os.path.isdir(d):
        return [pytest.param(None, None, id="golden-dir-missing",
                             marks=pytest.mark.skip(reason="no golden directory %s" % d))]
    items = []
    for path in golden_files(d):
        name = os.path.basename(path)
        try:
            items += [pytest.param(path, c, id=c.name) for c in read_cases(path)]
        except GoldenError as e:
            items.append(pytest.param(path, str(e), id=name + "-malformed"))
    return items or [pytest.param(d, "no golden cases found", id="golden-empty")]


@pytest.mark.parametrize("path,case", _collect())
def test_golden_case(path, case):
    assert not isinstance(case, str), "%s: %s" % (path, case)
    ok, worst, why = run_case(mtgrad, case)
    assert why is None, "%s (%s:%d): %s" % (case.name, path, case.line, why)
    assert ok, "%s (%s:%d): max abs error %.3g > tol %.3g" % (case.name, path, case.line,
                                                               worst, case.tol)


GOOD = """# a comment
case mean-tiny-k2-d3
method mean
source hand (computed by hand)
param state fresh (explanation in parentheses is dropped)
k 2 d 3
G
1 -2 0.5
3 4 -1.5
expect_weights 0.5 0.5
expect_direction 2 1 -0.5
tol 1e-12
end
"""


def _case(text, tmp_path):
    p = tmp_path / "x.txt"
    p.write_text(text)
    cases = read_cases(str(p))
    assert len(cases) == 1
    return run_case(mtgrad, cases[0])


def test_runner_passes_a_right_case(tmp_path):
    assert _case(GOOD, tmp_path) == (True, 0.0, None)


def test_runner_fails_a_wrong_case(tmp_path):
    ok, worst, why = _case(GOOD.replace("expect_direction 2 1 -0.5",
                                        "expect_direction 2 1 -0.4999"), tmp_path)
    assert not ok and why is None and abs(worst - 1e-4) < 1e-12
    ok, worst, why = _case(GOOD.replace("expect_weights 0.5 0.5", "expect_weights 0.5 0.6"),
                           tmp_path)
    assert not ok and abs(worst - 0.1) < 1e-12


def test_runner_reports_cases_it_cannot_run(tmp_path):
    _, _, why = _case(GOOD.replace("param state fresh", "param state warm"), tmp_path)
    assert "only a fresh state" in why
    _, _, why = _case(GOOD.replace("method mean", "method nope"), tmp_path)
    assert "unknown method 'nope'" in why
    _, _, why = _case(GOOD.replace("param state fresh", "param speed 3"), tmp_path)
    assert "unknown parameter 'speed'" in why
    _, _, why = _case(GOOD.replace("method mean", "method graddrop"), tmp_path)
    assert "expects weights but method graddrop has none" in why


@pytest.mark.parametrize("old,new", [("tol 1e-12\n", ""), ("3 4 -1.5", "3 4"),
                                     ("expect_direction 2 1 -0.5", "expect_direction 2 1 nan"),
                                     ("expect_weights 0.5 0.5\nexpect_direction 2 1 -0.5",
                                      "expect_direction 2 1 -0.5\nexpect_weights 0.5 0.5"),
                                     ("end\n", "")])
def test_reader_rejects_malformed_files(old, new, tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text(GOOD.replace(old, new))
    with pytest.raises(GoldenError):
        read_cases(str(p))
