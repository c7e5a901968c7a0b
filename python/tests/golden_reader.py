"""golden_reader.py — a second, independent reader of the golden files (../shared/golden/README.md)
and the runner's pass rule, written from the README and tools/cmd_check_golden.c so that the
Python test applies exactly the rule `mtgrad check-golden` applies:

  * one fresh aggregator per case, created with no parameters; every `param` line is then set
    with set_param, its value being the rest of the line minus a trailing "(explanation)";
    the runner-level params state (must start with "fresh"), steps (must equal the number of
    steps), stochastic (must be "no") and w0 (must be "uniform") are checked, never passed on;
  * a case that expects weights from a method without task weights fails;
  * a step closes at its expect_direction line and uses the G block in effect; methods that want
    the losses after a step get, before step t >= 1, the `losses` line of step t; a `uniform`
    line is passed as the step's random draws; G goes in as float64 with ldg = d;
  * OK, MAXITER and NOPROGRESS are successful calls; any other status fails the case;
  * the case passes iff max |ours - expected| <= tol over every expected number of every step
    (absolute; a NaN anywhere fails).
"""
import math
import os
import warnings

import numpy as np

RUNNER_PARAMS = ("state", "steps", "stochastic", "w0")


class GoldenError(Exception):
    """A malformed golden file: message names the line."""


class Step:
    def __init__(self, G, losses, uniform, weights, direction, line):
        self.G, self.losses, self.uniform = G, losses, uniform
        self.expect_weights, self.expect_direction, self.line = weights, direction, line


class Case:
    def __init__(self, name, line):
        self.name, self.line = name, line
        self.method = None
        self.params = []  # (name, value) in file order
        self.k = self.d = None
        self.steps = []
        self.tol = None


def _numbers(tokens, n, what, lineno):
    if len(tokens) != n:
        raise GoldenError("line %d: %s: expected %d numbers, found %d" % (lineno, what, n,
                                                                           len(tokens)))
    out = np.empty(n, dtype=np.float64)
    for i, t in enumerate(tokens):
        try:
            if "_" in t:  # Python's float() allows digit separators, strtod does not
                raise ValueError
            x = float(t)
        except ValueError:
            raise GoldenError("line %d: %s: number %d is not a number: %r" % (lineno, what,
                                                                               i + 1, t)) from None
        if not math.isfinite(x):
            raise GoldenError("line %d: %s: number %d is not finite" % (lineno, what, i + 1))
        out[i] = x
    return out


def _param_value(rest):
    s = rest.strip(" \t")
    if s.endswith(")"):
        depth = 0
        for i in range(len(s) - 1, -1, -1):
            if s[i] == ")":
                depth += 1
            elif s[i] == "(":
                depth -= 1
                if depth == 0:
                    break
        if depth == 0 and i > 0 and s[i] == "(" and s[i - 1] in " \t":
            s = s[:i].rstrip(" \t")
    return s


def _significant(lines):
    for lineno, raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.startswith("#") or not line.strip(" \t"):
            continue
        yield lineno, line


def read_cases(path):
    """Every case of one golden file, in order. Raises GoldenError on malformed input."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    it = _significant(enumerate(text.split("\n"), 1))
    cases, names = [], set()
    for lineno, line in it:
        tok = line.split()
        if line[0] in " \t" or tok[0] != "case" or len(tok) != 2:
            raise GoldenError("line %d: expected 'case <name>'" % lineno)
        if tok[1] in names:
            raise GoldenError("line %d: duplicate case name %r" % (lineno, tok[1]))
        names.add(tok[1])
        cases.append(_read_case(it, Case(tok[1], lineno)))
    if not cases:
        raise GoldenError("no case in this file")
    return cases


def _read_case(it, c):
    G = None
    acc = {}
    rank = 0
    order = {"G": 1, "losses": 2, "uniform": 3, "expect_weights": 4, "expect_direction": 5}
    for lineno, line in it:
        if line[0] in " \t":
            raise GoldenError("line %d: line starts with a blank" % lineno)
        kw, _, rest = line.partition(" ")
        tok = rest.split()
        if kw == "end":
            if tok or c.k is None or c.tol is None:
                raise GoldenError("line %d: misplaced 'end'" % lineno)
            return c
        if c.tol is not None:
            raise GoldenError("line %d: %r after 'tol'" % (lineno, kw))
        if c.k is None:  # header
            if kw == "method" and len(tok) == 1 and c.method is None:
                c.method = tok[0]
            elif kw == "source":
                pass
            elif kw == "param" and tok:
                value = _param_value(rest.strip(" \t")[len(tok[0]):])
                if not value or any(n == tok[0] for n, _ in c.params):
                    raise GoldenError("line %d: bad or duplicate param" % lineno)
                c.params.append((tok[0], value))
            elif kw == "k" and len(tok) == 3 and tok[1] == "d" and c.method:
                c.k, c.d = int(tok[0]), int(tok[2])
                if c.k < 1 or c.d < 1:
                    raise GoldenError("line %d: k and d must be >= 1" % lineno)
            else:
                raise GoldenError("line %d: unexpected %r in the header" % (lineno, kw))
            continue
        if kw == "tol":
            if rank or not c.steps:
                raise GoldenError("line %d: misplaced 'tol'" % lineno)
            c.tol = float(_numbers(tok, 1, "tol", lineno)[0])
            if c.tol < 0:
                raise GoldenError("line %d: tol must be >= 0" % lineno)
            continue
        r = order.get(kw)
        if r is None or r <= rank:
            raise GoldenError("line %d: unexpected or out-of-order %r" % (lineno, kw))
        rank = r
        if kw == "G":
            if tok:
                raise GoldenError("line %d: 'G' line must stand alone" % lineno)
            rows = []
            for i in range(c.k):
                ln, row = next(it, (None, None))
                if row is None:
                    raise GoldenError("end of file inside the G block of line %d" % lineno)
                rows.append(_numbers(row.split(), c.d, "G row %d" % (i + 1), ln))
            G = np.ascontiguousarray(np.array(rows, dtype=np.float64))
            continue
        if G is None:
            raise GoldenError("line %d: %r before any G block" % (lineno, kw))
        n = c.k if kw in ("losses", "expect_weights") else c.d
        acc[kw] = _numbers(tok, n, kw, lineno)
        if kw == "expect_direction":
            c.steps.append(Step(G, acc.get("losses"), acc.get("uniform"),
                                acc.get("expect_weights"), acc[kw], lineno))
            acc, rank = {}, 0
    raise GoldenError("end of file inside case %r (line %d): no 'end' line" % (c.name, c.line))


def _runner_param(c, name, value):
    """None if fine, else the reason this runner cannot run the case."""
    if name == "state" and not value.startswith("fresh"):
        return "param state %r: only a fresh state is supported" % value
    if name == "steps":
        if not value.isdigit() or int(value) != len(c.steps):
            return "param steps %r does not match the %d steps of the case" % (value,
                                                                               len(c.steps))
    if name == "stochastic" and value != "no":
        return "param stochastic %r: only 'no' is supported" % value
    if name == "w0" and value != "uniform":
        return "param w0 %r: only 'uniform' is supported" % value
    return None


def _max_err(ours, want):
    e = np.abs(np.asarray(ours, dtype=np.float64) - want)
    return math.nan if np.isnan(e).any() else float(e.max(initial=0.0))


def run_case(mtgrad, c):
    """(passed, worst error, reason): reason is a message when the case could not run."""
    try:
        agg = mtgrad.Aggregator(c.method, c.k)
    except mtgrad.MtgradError as e:
        return False, None, str(e)
    with agg:
        for name, value in c.params:
            if name in RUNNER_PARAMS:
                why = _runner_param(c, name, value)
                if why:
                    return False, None, why
                continue
            try:
                agg.set_param(name, value)
            except mtgrad.MtgradError as e:
                return False, None, "param %s %r: %s" % (name, value, e)
        has_w = agg.has(mtgrad.Flag.HAS_WEIGHTS)
        if any(s.expect_weights is not None for s in c.steps) and not has_w:
            return False, None, "the case expects weights but method %s has none" % c.method
        after = agg.has(mtgrad.Flag.NEEDS_LOSSES_AFTER)
        worst = 0.0
        for t, s in enumerate(c.steps):
            try:
                if after and t >= 1:
                    if s.losses is None:
                        return False, None, "step %d: no losses line to pass as losses after" % t
                    agg.update(s.losses)
                if s.uniform is not None:
                    agg.set_draws(s.uniform)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", mtgrad.SolverWarning)
                    direction, weights = agg(s.G, s.losses)
            except mtgrad.MtgradError as e:
                return False, None, "step %d: %s" % (t, e)
            errs = [worst, _max_err(direction, s.expect_direction)]
            if s.expect_weights is not None:
                errs.append(_max_err(weights, s.expect_weights))
            worst = math.nan if any(math.isnan(x) for x in errs) else max(errs)
        return worst <= c.tol, worst, None


def golden_files(directory):
    """The *.txt files of a golden directory, sorted (as the C runner does)."""
    names = sorted(n for n in os.listdir(directory) if n.endswith(".txt") and len(n) > 4
                   and not n.startswith("."))
    return [os.path.join(directory, n) for n in names]
