"""test_api.py — the NumPy API: versions, the registry as the CLI sees it, aggregation against
closed forms computed here with NumPy, zero-copy versus copy, every error path carrying the C
message, state round trips, kernels, thread safety, lifetimes (10 000 create/free cycles with a
flat RSS) and the pip-installed package."""
import ctypes
import gc
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import mtgrad
from mtgrad import _aggregator
from conftest import REPO, build_dir

RNG = np.random.default_rng(7)
G3 = RNG.standard_normal((3, 11))


def _header_macro(name):
    with open(os.path.join(REPO, "include", "mtgrad.h"), encoding="utf-8") as f:
        m = re.search(r"#define %s (\S+)" % name, f.read())
    return m.group(1)


def _cc():
    return shutil.which(os.environ.get("CC", "cc"))


# ---------------------------------------------------------------- versions and layout


def test_header_version_matches_binding_and_library():
    hdr = tuple(int(_header_macro("MTGRAD_VERSION_" + p)) for p in ("MAJOR", "MINOR", "PATCH"))
    assert mtgrad.HEADER_VERSION == hdr
    assert mtgrad.version_number == hdr[0] * 10000 + hdr[1] * 100 + hdr[2]
    assert mtgrad.__version__ == _header_macro("MTGRAD_VERSION_STRING").strip('"')


@pytest.mark.skipif(_cc() is None, reason="no C compiler to read the header's struct layout")
def test_param_desc_layout_matches_header(tmp_path):
    src = tmp_path / "layout.c"
    fields = [f[0] for f in mtgrad._lib.ParamDesc._fields_]
    cname = {"default": "def"}
    src.write_text(
        '#include <stdio.h>\n#include <stddef.h>\n#include "mtgrad.h"\nint main(void) {\n'
        '    printf("size %zu\\n", sizeof(mtgrad_param_desc));\n' +
        "".join('    printf("%s %%zu\\n", offsetof(mtgrad_param_desc, %s));\n'
                % (f, cname.get(f, f)) for f in fields) +
        '    printf("enum %zu\\n", sizeof(mtgrad_param_type));\n    return 0;\n}\n')
    exe = tmp_path / "layout"
    subprocess.run([_cc(), "-std=c11", "-I", os.path.join(REPO, "include"), str(src), "-o",
                    str(exe)], check=True)
    out = dict(line.split() for line in subprocess.check_output([str(exe)]).decode().split("\n")
               if line)
    P = mtgrad._lib.ParamDesc
    assert int(out["size"]) == ctypes.sizeof(P)
    assert int(out["enum"]) == ctypes.sizeof(ctypes.c_int)
    for f in fields:
        assert int(out[f]) == getattr(P, f).offset, f


def _import_with(env_lib):
    env = dict(os.environ, MTGRAD_LIB=env_lib, PYTHONPATH=os.path.join(REPO, "python"))
    return subprocess.run([sys.executable, "-c", "import mtgrad"], env=env,
                          capture_output=True, text=True)


def test_missing_library_is_an_import_error(tmp_path):
    r = _import_with(str(tmp_path / "nothere.so"))
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "MTGRAD_LIB" in r.stderr


@pytest.mark.skipif(_cc() is None, reason="no C compiler to build a fake library")
def test_version_mismatch_is_refused(tmp_path):
    src = tmp_path / "fake.c"
    src.write_text("int mtgrad_version_number(void) { return 20100; }\n"
                   'const char *mtgrad_version_string(void) { return "2.1.0"; }\n')
    so = tmp_path / "libfake.so"
    subprocess.run([_cc(), "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    r = _import_with(str(so))
    assert r.returncode != 0
    assert "version 2.1.0" in r.stderr and "major.minor must match" in r.stderr


# ---------------------------------------------------------------- registry


def _cli_methods():
    cli = os.path.join(build_dir(), "mtgrad")
    if not os.access(cli, os.X_OK):
        pytest.skip("no CLI at %s" % cli)
    return json.loads(subprocess.check_output([cli, "methods", "--json"]))["methods"]


_CLI_FLAGS = {"gram": "NEEDS_GRAM", "jacobian": "NEEDS_JACOBIAN", "losses": "NEEDS_LOSSES",
              "random": "NEEDS_RANDOM", "stateful": "STATEFUL",
              "losses-after": "NEEDS_LOSSES_AFTER", "weights": "HAS_WEIGHTS",
              "nonconflict": "PROMISE_NONCONFLICT", "permutation": "PROMISE_PERMUTATION",
              "heads-weighted": "HEADS_WEIGHTED", "feedback": "NEEDS_FEEDBACK",
              "cross-gram": "CROSS_GRAM"}


def test_methods_agree_with_the_cli():
    cli = _cli_methods()
    ms = mtgrad.methods()
    assert list(ms) == [m["name"] for m in cli]
    for cm in cli:
        m = ms[cm["name"]]
        assert m.summary == cm["summary"] and m.citation == cm["citation"]
        flags = mtgrad.Flag(0)
        for word in cm["flags"]:
            flags |= mtgrad.Flag[_CLI_FLAGS[word]]
        assert m.flags == flags, m.name
        assert list(m.params) == [p["name"] for p in cm["params"]]
        for cp in cm["params"]:
            p = m.params[cp["name"]]
            assert (p.type, p.default_text, p.common, p.doc) == (
                cp["type"], cp["default"], cp["common"], cp["doc"]), (m.name, p.name)
            if "range" in cp:
                r = cp["range"]
                assert p.lo == pytest.approx(r["lo"], rel=1e-14)
                assert p.hi == pytest.approx(r["hi"], rel=1e-14)
                assert (p.lo_open, p.hi_open) == (r["lo_open"], r["hi_open"])
            if "choices" in cp:
                assert list(p.choices) == cp["choices"]


def test_methods_structure():
    ms = mtgrad.methods()
    assert "mean" in ms and "cagrad" in ms
    c = ms["cagrad"].params["c"]
    assert c.type == "real" and isinstance(c.default, float) and c.doc
    assert ms["cagrad"].needs == ("gram",)
    assert "losses_after" in ms["famo"].needs
    betas = ms["famo"].params["adam_betas"]
    assert betas.type == "reals" and betas.default == tuple(
        float(x) for x in betas.default_text.split(":"))
    variant = ms["mgda"].params["variant"]
    assert variant.default in variant.choices
    ms["mean"] = None  # the caller's copy; the registry is unchanged
    assert mtgrad.methods()["mean"] is not None


def test_fresh_aggregators_report_the_registry_defaults():
    for name, m in mtgrad.methods().items():
        with mtgrad.Aggregator(name, 3) as a:
            assert a.params == {n: p.default for n, p in m.params.items()}, name
            for n, p in m.params.items():
                assert a.get_param_text(n) == p.default_text, (name, n)


def test_parameter_values_round_trip():
    a = mtgrad.Aggregator("famo", 3, gamma=0.001, adam_betas=(0.8, 0.99), min_losses=[0.5])
    assert a.get_param("gamma") == 0.001
    assert a.get_param("adam_betas") == (0.8, 0.99)
    assert a.get_param_text("adam_betas") == "0.8:0.99"
    a.set_param("min_losses", np.array([0.1, 0.2, 0.3]))
    assert a.get_param("min_losses") == (0.1, 0.2, 0.3)
    m = mtgrad.Aggregator("mgda", 2, variant="frank_wolfe", enforce_max_iter=True, max_iters=7)
    assert m.params["variant"] == "frank_wolfe" and m.params["enforce_max_iter"] is True
    assert m.params["max_iters"] == 7
    m.set_param("enforce_max_iter", "off")
    assert m.get_param("enforce_max_iter") is False


# ---------------------------------------------------------------- aggregation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mean_and_sum_against_numpy(dtype):
    G = G3.astype(dtype)
    d, w = mtgrad.aggregate(G, "mean")
    assert d.dtype == dtype and d.shape == (11,)
    np.testing.assert_allclose(w, np.full(3, 1 / 3), rtol=0, atol=1e-16)
    np.testing.assert_allclose(d, G.astype(np.float64).mean(axis=0),
                               rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
    d, w = mtgrad.aggregate(G, "sum")
    np.testing.assert_allclose(w, np.ones(3), rtol=0, atol=0)


def test_loss_weighted_method_needs_losses():
    L = np.array([2.0, 0.5, 4.0])
    d, w = mtgrad.aggregate(G3, "si_ls", losses=L)
    np.testing.assert_allclose(w, 1 / L, rtol=1e-15)
    np.testing.assert_allclose(d, (G3 / L[:, None]).sum(axis=0), rtol=1e-12, atol=1e-14)


def test_mgda_two_tasks_closed_form():
    G = RNG.standard_normal((2, 6))
    a, b, c = G[0] @ G[0], G[0] @ G[1], G[1] @ G[1]
    gamma = min(max((c - b) / (a + c - 2 * b), 0.0), 1.0)  # min-norm point of the segment
    d, w = mtgrad.aggregate(G, "mgda")
    np.testing.assert_allclose(w, [gamma, 1 - gamma], atol=1e-12)
    np.testing.assert_allclose(d, gamma * G[0] + (1 - gamma) * G[1], atol=1e-12)


def test_weights_from_gram_match_aggregate():
    M = G3 @ G3.T
    with mtgrad.Aggregator("upgrad", 3) as a:
        w1 = a.weights_from_gram(M)
        d, w2 = a(G3)
    np.testing.assert_allclose(w1, w2, atol=1e-12)
    np.testing.assert_allclose(d, w2 @ G3, atol=1e-12)


def test_methods_without_weights_return_none():
    d, w = mtgrad.aggregate(G3, "graddrop")
    assert w is None and d.shape == (11,)


def test_out_argument_and_threads_give_the_same_bits():
    G = RNG.standard_normal((4, 5000)).astype(np.float32)
    out = np.empty(5000, dtype=np.float32)
    d1, w1 = mtgrad.Aggregator("upgrad", 4)(G, out=out)
    assert d1 is out
    d4, w4 = mtgrad.Aggregator("upgrad", 4, threads=4)(G)
    assert np.array_equal(d1, d4) and np.array_equal(w1, w4)
    with pytest.raises(mtgrad.ShapeError):
        mtgrad.Aggregator("upgrad", 4)(G, out=np.empty(5000, dtype=np.float64))


# ---------------------------------------------------------------- zero copy


def test_zero_copy_layouts_are_read_in_place():
    for dtype in (np.float32, np.float64):
        G = np.ascontiguousarray(G3, dtype=dtype)
        assert _aggregator.as_matrix(G)[0] is G
        big = np.zeros((3, 20), dtype=dtype)
        view = big[:, 2:13]  # rows of contiguous elements, row stride 20
        a, k, d, ldg = _aggregator.as_matrix(view)
        assert a is view and (k, d, ldg) == (3, 11, 20)


@pytest.mark.parametrize("make", [
    lambda G: np.asfortranarray(G),
    lambda G: np.repeat(G, 2, axis=1)[:, ::2],
    lambda G: G[::-1][::-1].copy()[:, ::-1][:, ::-1],  # negative strides undone: contiguous
    lambda G: (G * 1000).astype(np.int64),
    lambda G: G.astype(np.float16),
])
def test_other_layouts_are_copied_and_give_the_same_answer(make):
    X = make(G3)
    expect = np.asarray(X, dtype=np.float64).mean(axis=0)
    d, _ = mtgrad.aggregate(X, "mean")
    np.testing.assert_allclose(d, expect, rtol=1e-6, atol=1e-6)


def test_row_slice_gives_the_same_answer_as_its_copy():
    big = RNG.standard_normal((3, 40)).astype(np.float32)
    view = big[:, 5:30]
    d1, w1 = mtgrad.aggregate(view, "cagrad")
    d2, w2 = mtgrad.aggregate(view.copy(), "cagrad")
    assert np.array_equal(d1, d2) and np.array_equal(w1, w2)


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    t = torch.tensor(G3, dtype=torch.float32)
    d, _ = mtgrad.aggregate(t, "mean")
    np.testing.assert_allclose(d, G3.mean(axis=0), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- errors carry the C message


def _raises(cls, needle, fn, *args, **kw):
    with pytest.raises(cls) as e:
        fn(*args, **kw)
    assert needle in str(e.value), str(e.value)
    assert isinstance(e.value, mtgrad.MtgradError)
    return e.value


def test_errors_carry_the_library_message():
    e = _raises(mtgrad.InvalidArgumentError, "unknown method 'nope'", mtgrad.Aggregator, "nope", 2)
    assert e.status == mtgrad.Status.E_INVAL and "invalid argument" in str(e)
    _raises(mtgrad.ShapeError, "k = 0 tasks", mtgrad.Aggregator, "mean", 0)
    _raises(mtgrad.InvalidArgumentError, "cagrad: parameter c = -1 is outside",
            mtgrad.Aggregator, "cagrad", 2, c=-1)
    _raises(mtgrad.InvalidArgumentError, "unknown parameter 'speed'",
            mtgrad.Aggregator, "cagrad", 2, speed=3)
    _raises(mtgrad.InvalidArgumentError, "'fast' is not one of", mtgrad.Aggregator, "mgda", 2,
            variant="fast")
    _raises(mtgrad.InvalidArgumentError, "is not a finite number", mtgrad.Aggregator, "cagrad",
            2, c=float("nan"))
    a = mtgrad.Aggregator("mean", 3)
    e = _raises(mtgrad.ShapeError, "k = 2, but this mean aggregator has k = 3", a, G3[:2])
    assert e.status == mtgrad.Status.E_SHAPE
    bad = G3.copy()
    bad[1, 4] = np.nan
    _raises(mtgrad.NonFiniteError, "row 1 of G contains NaN", mtgrad.aggregate, bad, "upgrad")
    _raises(mtgrad.ShapeError, "d = 0", a, np.zeros((3, 0)))
    _raises(mtgrad.UnsupportedError, "takes no losses after the step", a.update, [1, 2, 3])
    _raises(mtgrad.UnsupportedError, "draws no random numbers", a.set_draws, [0.5])
    _raises(mtgrad.StateError, "", a.load, b"not a state")
    dwa = mtgrad.Aggregator("dwa", 3)
    _raises(mtgrad.InvalidArgumentError, "needs the 3 task losses", dwa, G3)
    _raises(mtgrad.NonFiniteError, "losses[1]", dwa, G3, [1.0, np.inf, 2.0])
    _raises(mtgrad.ShapeError, "losses must have shape (3,)", dwa, G3, [1.0, 2.0])
    _raises(mtgrad.ShapeError, "G must be a 2-D array", a, G3[0])
    # a failed call leaves the aggregator usable
    d, w = a(G3)
    np.testing.assert_allclose(d, G3.mean(axis=0), atol=1e-15)


def test_solver_stop_is_a_warning_with_the_message_and_a_valid_result():
    G = RNG.standard_normal((5, 3))
    with pytest.warns(mtgrad.SolverWarning, match="did not reach stop_crit") as rec:
        d, w = mtgrad.aggregate(G, "mgda", variant="sener_minnorm", enforce_max_iter=True,
                                max_iter=1)
    assert rec[0].filename == __file__  # attributed to the caller, not to the package
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    np.testing.assert_allclose(d, w @ G, atol=1e-12)


def test_kernel_errors():
    bad = G3.copy()
    bad[0, 0] = np.inf
    _raises(mtgrad.NonFiniteError, "mtgrad_gram_f64", mtgrad.gram, bad)
    _raises(mtgrad.ShapeError, "w must have shape (3,)", mtgrad.combine, G3, [1.0, 2.0])
    _raises(mtgrad.NonFiniteError, "simplex", mtgrad.simplex_project, [1.0, np.nan])


def test_closed_aggregator():
    a = mtgrad.Aggregator("mean", 2)
    a.close()
    a.close()
    with pytest.raises(ValueError, match="closed"):
        a(G3[:2])
    assert "closed" in repr(a)


# ---------------------------------------------------------------- state


def _famo_run(agg, steps, G, L0):
    out = []
    L = L0.copy()
    for t in range(steps):
        d, w = agg(G, L)
        L = L * (0.9 + 0.05 * np.arange(1, 4))  # the losses after the step
        agg.update(L)
        out.append(w.copy())
    return out, L


def test_state_dict_round_trip_continues_identically():
    L0 = np.array([1.0, 2.0, 0.5])
    a = mtgrad.Aggregator("famo", 3, gamma=0.001)
    _, L = _famo_run(a, 4, G3, L0)
    sd = a.state_dict()
    assert sd["params"]["gamma"] == "0.001"
    rest_a, _ = _famo_run(a, 3, G3, L)
    b = mtgrad.Aggregator("famo", 3)
    b.load_state_dict(sd)
    assert b.get_param("gamma") == 0.001
    rest_b, _ = _famo_run(b, 3, G3, L)
    for x, y in zip(rest_a, rest_b):
        assert np.array_equal(x, y)
    c = pickle.loads(pickle.dumps(b))
    assert c.state_dict() == b.state_dict()


def test_reset_returns_to_the_fresh_state():
    L0 = np.array([1.0, 2.0, 0.5])
    a = mtgrad.Aggregator("famo", 3)
    first, _ = _famo_run(a, 3, G3, L0)
    a.reset()
    again, _ = _famo_run(a, 3, G3, L0)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))


def test_load_state_dict_is_atomic():
    a = mtgrad.Aggregator("famo", 3)
    _famo_run(a, 2, G3, np.array([1.0, 2.0, 0.5]))
    before = a.state_dict()
    sd = dict(before, state=before["state"][:-3] + b"xyz", params={"gamma": "0.5"})
    with pytest.raises(mtgrad.StateError):
        a.load_state_dict(sd)
    assert a.state_dict() == before
    with pytest.raises(mtgrad.StateError, match="does not fit"):
        a.load_state_dict(mtgrad.Aggregator("dwa", 3).state_dict())


def test_draws_replace_the_random_numbers():
    G = np.array([[1.0, -2.0, 3.0], [-1.0, 1.0, 1.0]])
    U = np.array([0.1, 0.9, 0.5])
    a = mtgrad.Aggregator("graddrop", 2)
    a.set_draws(U)
    d, _ = a(G)
    # TorchJD GradDrop with the given U (README of the golden files), computed here
    P = 0.5 * (1 + G.sum(0) / np.abs(G).sum(0))
    mask = ((P > U) & (G > 0)) | ((P < U) & (G < 0))
    np.testing.assert_allclose(d, (mask * G).sum(0), atol=1e-15)


# ---------------------------------------------------------------- kernels


def test_kernels_against_numpy():
    for dtype in (np.float32, np.float64):
        G = G3.astype(dtype)
        G64 = G.astype(np.float64)
        np.testing.assert_allclose(mtgrad.gram(G), G64 @ G64.T, rtol=1e-13, atol=1e-13)
        w = np.array([0.2, -1.0, 3.5])
        c = mtgrad.combine(G, w)
        assert c.dtype == dtype
        np.testing.assert_allclose(c, w @ G64, rtol=1e-6, atol=1e-6)


def _project_ref(y):
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - 1
    rho = np.nonzero(u - css / np.arange(1, len(y) + 1) > 0)[0][-1]
    return np.maximum(y - css[rho] / (rho + 1), 0)


def test_simplex_projection_against_a_sort_based_reference():
    for _ in range(50):
        y = RNG.standard_normal(RNG.integers(1, 9)) * 3
        np.testing.assert_allclose(mtgrad.simplex_project(y), _project_ref(y), atol=1e-14)


# ---------------------------------------------------------------- concurrency and lifetime


def test_one_aggregator_from_several_threads():
    a = mtgrad.Aggregator("upgrad", 3)
    G = RNG.standard_normal((3, 2000)).astype(np.float32)
    want = a(G)[0].copy()
    bad = []

    def work():
        for _ in range(100):
            d, _ = a(G)
            if not np.array_equal(d, want):
                bad.append(1)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_ten_thousand_create_free_cycles_leave_memory_flat():
    G = RNG.standard_normal((4, 64)).astype(np.float32)

    def cycles(n):
        for i in range(n):
            if i % 2:
                with mtgrad.Aggregator("nash_mtl", 4) as a:  # freed by close()
                    a(G)
            else:
                a = mtgrad.Aggregator("famo", 4, min_losses=[0.1] * 4)  # freed by the GC
                a(G, [1.0, 2.0, 3.0, 4.0])
                a.update([0.9, 1.9, 2.9, 3.9])
                a.state_dict()
                del a

    cycles(1000)  # warm up allocator pools and caches
    gc.collect()
    before = _rss_kib()
    cycles(10000)
    gc.collect()
    grown = _rss_kib() - before
    # one leaked aggregator is > 1 KiB (buffers + state), so 10 000 leaks would be > 10 MiB
    assert grown < 2048, "RSS grew by %d KiB over 10 000 cycles" % grown


# ---------------------------------------------------------------- the installed package


def test_pip_install_carries_the_library(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("no pip for %s" % sys.executable)
    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    env = dict(os.environ, MTGRAD_BUILD=build_dir(),
               MTGRAD_HEADER=os.path.join(REPO, "include", "mtgrad.h"))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-deps", "--no-cache-dir", "--target", str(site), str(src)],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("MTGRAD_LIB", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    code = ("import mtgrad, numpy as np; print(mtgrad.library_path); "
            "print(mtgrad.aggregate(np.eye(2), 'mean')[0])")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lib_path, direction = r.stdout.split("\n")[:2]
    assert lib_path == str(site / "mtgrad" / "libmtgrad.so")
    assert direction == "[0.5 0.5]"
