#!/usr/bin/python3
"""peer_torch.py — the PyTorch peers of `mtgrad bench`, timed in the same script run.

For each k, d and thread count it builds the same float32 matrix G as `mtgrad bench` (bit for
bit: the bench's splitmix64 column generator, rebuilt with NumPy; checked against the trace of
G Gᵀ that the bench reports) and times, as median of --reps runs after one warm-up:

  gram      G @ G.T                                  (torch.mm, float32)
  combine   w @ G                                    (float32)
  mgda      TorchJD MGDA (WeightedAggregator.forward): the finiteness check of G
            (G.isfinite().all()), the Gramian G @ G.T, Frank–Wolfe on it (max_iters 100,
            epsilon 1e-3), then w @ G
  mgda_nochk
            the same without the finiteness check (on torch 1.13, G.isfinite().all() over a
            large G costs several passes and fresh k x d temporaries: this row shows the rest)
  mgda_libmtl
            LibMTL MGDA (mgda_gn 'none', its default): G divided by its normalizers expanded to
            k x d, the Gram, the best pair as a start, projected-gradient steps on the simplex with
            the two-point line search (<= 250, stop at |change|_1 < 1e-5), then the einsum
  pcgrad    LibMTL PCGrad: per task, a clone of g_i projected off every g_j it conflicts with in
            a shuffled order (d-long dot products and axpys, O(k² d)), then the sum
  cagrad    LibMTL CAGrad: GG = G @ G.T to NumPy, scipy.optimize.minimize(SLSQP) of the dual
            over the simplex, then g0 + lambda·g_w from G (rescale 1)
  imtl_g_torchjd, aligned_mtl_torchjd, pcgrad_torchjd
            TorchJD's IMTLG, AlignedMTL and PCGrad (GramianWeightedAggregator.forward: the
            finiteness check, G @ G.T, the weighting — pinv; eigh and the balance transformation;
            the projections on the Gramian's rows — then w @ G). TorchJD's UPGrad and DualProj
            are not here: their weightings call the quadprog QP solver, which Debian does not ship.

then runs `BIN bench --json` on the same k, d and threads, and prints each peer's time, the
mtgrad time of the same thing (Gram, combine, the method end to end: mgda is mtgrad's exact
min-norm solver, pcgrad its Gram-only form, cagrad its exact dual; each *_torchjd row against
the mtgrad method of that name, which tests/scripts/test_bench.sh checks gives the same
direction), the ratio
torch/mtgrad (how many times faster mtgrad is), and the peer's multiple of the bench's floor.

Threads: each thread count runs in a child process with OMP_NUM_THREADS/OPENBLAS_NUM_THREADS set
before torch is imported, and torch.set_num_threads. Needs python3-torch, python3-numpy, and
python3-scipy for cagrad (skipped without it). Debian's torch uses OpenBLAS when libopenblas0
is installed (otherwise the reference BLAS: much slower G @ G.T).

usage: bench/peer_torch.py [--bin build/mtgrad] [-k 2,10] [-d 1e6] [-t 1,2] [-r 5]
                           [--methods mgda,mgda_nochk,...] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

GOLD = np.uint64(0x9E3779B97F4A7C15)
C1 = np.uint64(0xBF58476D1CE4E5B9)
C2 = np.uint64(0x94D049BB133111EB)
TWO24 = np.float32(16777216.0)
HALF = np.float32(0.5)


def splitmix(seed, n):
    """The n-th output (n >= 1, uint64 array) of splitmix64 started at `seed` (cmd_bench.c)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + n * GOLD
        z = (z ^ (z >> np.uint64(30))) * C1
        z = (z ^ (z >> np.uint64(27))) * C2
    return z ^ (z >> np.uint64(31))


def make_G(k, d, seed):
    """The bench's fill_G: per column one draw for the shared signal, one per pair of rows."""
    G = np.empty((k, d), dtype=np.float32)
    per_col = 1 + (k + 1) // 2
    chunk = max(1, (1 << 22) // per_col)
    for c0 in range(0, d, chunk):
        c1 = min(d, c0 + chunk)
        base = np.arange(c0, c1, dtype=np.uint64) * np.uint64(per_col)
        r = splitmix(seed, base + np.uint64(1))
        common = (r >> np.uint64(40)).astype(np.float32) / TWO24 - HALF
        for i in range(k):
            if i % 2 == 0:
                r = splitmix(seed, base + np.uint64(2 + i // 2))
            shift = np.uint64(8 if i % 2 else 40)
            noise = ((r >> shift) & np.uint64(0xFFFFFF)).astype(np.float32) / TWO24 - HALF
            sign = np.float32(-0.4 if i % 3 == 2 else 0.4)
            G[i, c0:c1] = sign * common + noise * np.float32(1 + i % 4)
    return G


def timed(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------- the peers (torch code)

def torchjd_gramian_weighted(torch, G, weighting, check=True):
    """TorchJD's GramianWeightedAggregator.forward: the finiteness check of G (check=False: the
    mgda_nochk row), the Gramian, the method's weighting of it, then w @ G
    (aggregation/_aggregator_bases.py)."""
    if check and not G.isfinite().all():
        raise ValueError("G is not finite")
    return weighting(torch, G @ G.T) @ G


def mgda_torchjd_weights(torch, gramian, max_iters=100, epsilon=1e-3):
    """TorchJD MGDA (aggregation/_mgda.py): Frank–Wolfe on the Gramian."""
    k = gramian.shape[0]
    alpha = torch.ones(k, dtype=gramian.dtype) / k
    for _ in range(max_iters):
        t = torch.argmin(gramian @ alpha)
        e_t = torch.zeros(k, dtype=gramian.dtype)
        e_t[t] = 1.0
        a = alpha @ (gramian @ e_t)
        b = alpha @ (gramian @ alpha)
        c = e_t @ (gramian @ e_t)
        if c <= a:
            gamma = 1.0
        elif b <= a:
            gamma = 0.0
        else:
            gamma = (b - a) / (b + c - 2 * a)
        alpha = (1 - gamma) * alpha + gamma * e_t
        if gamma < epsilon:
            break
    return alpha


def imtl_g_torchjd_weights(torch, gramian):
    """TorchJD IMTL-G (aggregation/_imtl_g.py): pinv(M) sqrt(diag M), normalised to sum 1."""
    v = torch.linalg.pinv(gramian) @ torch.sqrt(torch.diagonal(gramian))
    s = v.sum()
    return torch.zeros_like(v) if s.abs() < 1e-12 else v / s


def aligned_mtl_torchjd_weights(torch, gramian):
    """TorchJD Aligned-MTL (aggregation/_aligned_mtl.py): the balance transformation
    B = sqrt(lambda_R) V diag(lambda)^-1/2 Vᵀ of the Gramian, applied to the mean weights."""
    k = gramian.shape[0]
    lam, V = torch.linalg.eigh(gramian, UPLO="U")
    tol = torch.max(lam) * k * torch.finfo().eps
    rank = int(sum(lam > tol))
    w = torch.full((k,), 1.0 / k, dtype=gramian.dtype)
    if rank == 0:
        return w
    order = torch.argsort(lam, dim=-1, descending=True)
    lam, V = lam[order][:rank], V[:, order][:, :rank]
    B = lam[-1].sqrt() * V @ torch.diag(1 / lam.sqrt()) @ V.T
    return B @ w


def pcgrad_torchjd_weights(torch, gramian):
    """TorchJD PCGrad (aggregation/_pcgrad.py): the projections done on the Gramian's rows, each
    task's in a fresh random order (torch.randperm)."""
    k = gramian.shape[0]
    weights = torch.zeros(k, dtype=gramian.dtype)
    for i in range(k):
        cur = torch.zeros(k, dtype=gramian.dtype)
        cur[i] = 1.0
        for j in torch.randperm(k):
            if j == i:
                continue
            inner = gramian[j] @ cur
            if inner < 0.0:
                cur[j] -= inner / gramian[j, j]
        weights = weights + cur
    return weights


TORCHJD_WEIGHTINGS = {"imtl_g_torchjd": imtl_g_torchjd_weights,
                      "aligned_mtl_torchjd": aligned_mtl_torchjd_weights,
                      "pcgrad_torchjd": pcgrad_torchjd_weights}


def _pair_min_norm(v11, v12, v22):
    """min over g in [0, 1] of |g v1 + (1-g) v2|^2 from the three dot products: (gamma, cost),
    with LibMTL's clamps 0.999 / 0.001 at the ends."""
    if v12 >= v11:
        return 0.999, v11
    if v12 >= v22:
        return 0.001, v22
    g = (v22 - v12) / (v11 + v22 - 2 * v12)
    return g, v22 + g * (v12 - v22)


def _simplex_projection(torch, y):
    """Euclidean projection onto the simplex by the sorted-threshold rule (LibMTL's form)."""
    m = len(y)
    ys = torch.sort(y, descending=True)[0]
    theta = (torch.sum(y) - 1.0) / m
    acc = 0.0
    for i in range(m - 1):
        acc += ys[i]
        t = (acc - 1) / (i + 1.0)
        if t > ys[i + 1]:
            theta = t
            break
    return torch.max(y - theta, torch.zeros(m))


def _simplex_step(torch, x, g, n):
    """LibMTL's next point: move x along the centred g to the simplex's boundary, project."""
    pg = g - torch.sum(g) / n
    neg, pos = pg < 0, pg > 0
    t_neg = -1.0 * x[neg] / pg[neg]
    t_pos = (1.0 - x[pos]) / pg[pos]
    t = torch.ones(1)
    if (t_neg > 1e-7).sum() > 0:
        t = torch.min(t_neg[t_neg > 1e-7])
    if (t_pos > 1e-7).sum() > 0:
        t = torch.min(t, torch.min(t_pos[t_pos > 1e-7]))
    return _simplex_projection(torch, pg * t + x)


def mgda_libmtl(torch, G, max_iter=250, stop=1e-5):
    """LibMTL MGDA (weighting/MGDA.py) with mgda_gn 'none': normalise, Gram, min-norm point, einsum."""
    k, d = G.shape
    gn = torch.ones(k)
    grads = G / gn.unsqueeze(1).repeat(1, d)
    M = grads.mm(grads.t())
    best = None
    for i in range(k):  # the best pair of rows as the start
        for j in range(i + 1, k):
            g, cost = _pair_min_norm(M[i, i], M[i, j], M[j, j])
            if best is None or cost < best[2]:
                best = (i, j, g, cost)
    sol = torch.zeros(k)
    sol[best[0]], sol[best[1]] = best[2], 1 - best[2]
    if k >= 3:
        for _ in range(max_iter):
            nxt = _simplex_step(torch, sol, -1.0 * torch.matmul(M, sol), k)
            outer = lambda a, b: a.unsqueeze(1).repeat(1, k) * b.unsqueeze(0).repeat(k, 1)
            v11 = torch.sum(outer(sol, sol) * M)
            v12 = torch.sum(outer(sol, nxt) * M)
            v22 = torch.sum(outer(nxt, nxt) * M)
            g, _ = _pair_min_norm(v11, v12, v22)
            new = g * sol + (1 - g) * nxt
            done = torch.sum(torch.abs(new - sol)) < stop
            if done:
                break
            sol = new
    return torch.einsum("i,i...->...", sol, grads)


def pcgrad_libmtl(torch, G, rng):
    """LibMTL PCGrad (weighting/PCGrad.py): projections on the d-long gradients."""
    k = G.shape[0]
    batch_weight = np.ones(k)
    pc_grads = G.clone()
    for tn_i in range(k):
        task_index = list(range(k))
        rng.shuffle(task_index)
        for tn_j in task_index:
            g_ij = torch.dot(pc_grads[tn_i], G[tn_j])
            if g_ij < 0:
                pc_grads[tn_i] -= g_ij * G[tn_j] / (G[tn_j].norm().pow(2) + 1e-8)
                batch_weight[tn_j] -= (g_ij / (G[tn_j].norm().pow(2) + 1e-8)).item()
    return pc_grads.sum(0)


def cagrad_libmtl(torch, G, scipy_minimize, calpha=0.5, rescale=1):
    """LibMTL CAGrad (weighting/CAGrad.py): SLSQP on the dual from the Gram matrix."""
    k = G.shape[0]
    GG = (G @ G.T).cpu()
    g0_norm = (GG.mean() + 1e-8).sqrt()
    x_start = np.ones(k) / k
    bnds = tuple((0, 1) for _ in x_start)
    cons = {"type": "eq", "fun": lambda x: 1 - sum(x)}
    A = GG.numpy()
    b = x_start.copy()
    c = (calpha * g0_norm + 1e-8).item()

    def objfn(x):
        return (x.reshape(1, -1).dot(A).dot(b.reshape(-1, 1)) +
                c * np.sqrt(x.reshape(1, -1).dot(A).dot(x.reshape(-1, 1)) + 1e-8)).sum()

    res = scipy_minimize(objfn, x_start, bounds=bnds, constraints=cons)
    w_cpu = res.x
    ww = torch.tensor(w_cpu, dtype=G.dtype)
    gw = (G * ww.view(-1, 1)).sum(0)
    gw_norm = gw.norm()
    lmbda = c / (gw_norm + 1e-8)
    g = G.mean(0) + lmbda * gw
    if rescale == 1:
        g = g / (1 + calpha ** 2)
    return g


def worker(args):
    """Child process: time the peers at one thread count; print JSON."""
    import torch
    torch.set_num_threads(args.threads)
    try:
        from scipy.optimize import minimize as scipy_minimize
    except ImportError:
        scipy_minimize = None
    import random
    out = []
    for k in args.k:
        for d in args.d:
            Gn = make_G(k, d, 12345 + k)
            trace = float(sum(np.dot(Gn[i].astype(np.float64), Gn[i].astype(np.float64)) for i in range(k)))
            G = torch.from_numpy(Gn)
            w = torch.full((k,), 1.0 / k, dtype=torch.float32)
            r = {"k": k, "d": d, "threads": args.threads, "trace": trace,
                 "gram_ms": 1e3 * timed(lambda: G @ G.T, args.reps),
                 "combine_ms": 1e3 * timed(lambda: w @ G, args.reps), "methods": {}}
            rng = random.Random(0)
            if "mgda" in args.methods:
                r["methods"]["mgda"] = 1e3 * timed(
                    lambda: torchjd_gramian_weighted(torch, G, mgda_torchjd_weights), args.reps)
            if "mgda_nochk" in args.methods:
                r["methods"]["mgda_nochk"] = 1e3 * timed(
                    lambda: torchjd_gramian_weighted(torch, G, mgda_torchjd_weights, check=False),
                    args.reps)
            if "mgda_libmtl" in args.methods:
                r["methods"]["mgda_libmtl"] = 1e3 * timed(lambda: mgda_libmtl(torch, G), args.reps)
            if "pcgrad" in args.methods:
                r["methods"]["pcgrad"] = 1e3 * timed(lambda: pcgrad_libmtl(torch, G, rng), args.reps)
            for name, weighting in TORCHJD_WEIGHTINGS.items():
                if name in args.methods:
                    r["methods"][name] = 1e3 * timed(
                        lambda wf=weighting: torchjd_gramian_weighted(torch, G, wf), args.reps)
            if "cagrad" in args.methods and scipy_minimize is not None:
                r["methods"]["cagrad"] = 1e3 * timed(lambda: cagrad_libmtl(torch, G, scipy_minimize), args.reps)
            out.append(r)
            del G, Gn
    json.dump({"torch": torch.__version__, "results": out}, sys.stdout)


# peer -> the mtgrad method it is compared with
MTGRAD_METHOD = {"mgda": "mgda", "mgda_nochk": "mgda", "mgda_libmtl": "mgda", "pcgrad": "pcgrad",
                 "cagrad": "cagrad", "imtl_g_torchjd": "imtl_g", "aligned_mtl_torchjd": "aligned_mtl",
                 "pcgrad_torchjd": "pcgrad"}


def csv(s, conv):
    return [conv(float(x)) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/mtgrad", help="the mtgrad binary (default build/mtgrad)")
    ap.add_argument("-k", default="2,3,10,40", help="task counts (default 2,3,10,40)")
    ap.add_argument("-d", default="1e5,1e6,1e7", help="parameter counts (default 1e5,1e6,1e7)")
    ap.add_argument("-t", "--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("-r", "--reps", type=int, default=5, help="timed repetitions, >= 5 (default 5)")
    ap.add_argument("--methods", default=",".join(MTGRAD_METHOD),
                    help="peers to time (default all: %s)" % ", ".join(MTGRAD_METHOD))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reps < 5:
        ap.error("--reps must be at least 5")
    args.methods = [m for m in args.methods.split(",") if m]
    for m in args.methods:
        if m not in MTGRAD_METHOD:
            ap.error("unknown peer %r (known: %s)" % (m, ", ".join(MTGRAD_METHOD)))
    if args.worker:
        args.k, args.d, args.threads = csv(args.k, int), csv(args.d, int), int(args.threads)
        worker(args)
        return 0
    ks, ds, ts = csv(args.k, int), csv(args.d, int), csv(args.threads, int)
    peers = {}
    for t in ts:
        env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t))
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "-k", args.k, "-d", args.d,
               "-t", str(t), "-r", str(args.reps), "--methods", ",".join(args.methods)]
        sys.stderr.write("peer_torch: torch, %d thread(s)\n" % t)
        res = json.loads(subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE).stdout)
        torch_version = res["torch"]
        for r in res["results"]:
            peers[(r["k"], r["d"], t)] = r
    sys.stderr.write("peer_torch: %s bench --json\n" % args.bin)
    bench_cmd = [args.bin, "bench", "--json", "-k", args.k, "-d", args.d, "-t", args.threads,
                 "-r", str(args.reps), "-m", ",".join(sorted({MTGRAD_METHOD[m] for m in args.methods}))]
    bench = json.loads(subprocess.run(bench_cmd, check=True, stdout=subprocess.PIPE).stdout)
    rows = []
    for b in bench["results"]:
        key = (int(b["k"]), int(b["d"]), int(b["threads"]))
        p = peers.get(key)
        if p is None:
            continue
        if abs(p["trace"] - b["gram_trace"]) > 1e-9 * abs(b["gram_trace"]):
            sys.stderr.write("peer_torch: k=%d d=%d: G differs from the bench's (trace %.17g vs %.17g)\n"
                             % (key[0], key[1], p["trace"], b["gram_trace"]))
            return 1
        items = [("gram", p["gram_ms"], b["gram_ms"]), ("combine", p["combine_ms"], b["combine_ms"])]
        for m in args.methods:
            ours = MTGRAD_METHOD[m]
            if m in p["methods"] and ours in b["methods"]:
                items.append((m, p["methods"][m], b["methods"][ours]["e2e_ms"]))
        for what, tms, mms in items:
            # a method's own floor (the bench re-measures it between the calls of that method)
            ours = b["methods"].get(MTGRAD_METHOD.get(what, ""), {})
            floor = ours.get("floor_ms") or b["floor_ms"]
            if what == "combine":  # one pass, no Gram arithmetic: the bandwidth floor
                floor = b["bandwidth_floor_ms"]
            rows.append({"k": key[0], "d": key[1], "threads": key[2], "what": what, "torch_ms": tms,
                         "mtgrad_ms": mms, "ratio": tms / mms if mms else None,
                         "torch_xfloor": tms / floor, "mtgrad_xfloor": mms / floor})
    if args.json:
        json.dump({"torch": torch_version, "mtgrad": bench["version"], "floors": bench["floors"],
                   "rows": rows}, sys.stdout, indent=1)
        print()
        return 0
    print("torch %s vs mtgrad %s; ratio = torch time / mtgrad time (same matrix, same threads)"
          % (torch_version, bench["version"]))
    print("%4s %8s %3s  %-19s %11s %11s %8s %9s %9s" % ("k", "d", "thr", "what", "torch_ms", "mtgrad_ms",
                                                     "ratio", "torch_xfl", "mtgrad_xfl"))
    for r in rows:
        print("%4d %8.0e %3d  %-19s %11.3f %11.3f %7.1fx %9.1f %9.2f" % (
            r["k"], r["d"], r["threads"], r["what"], r["torch_ms"], r["mtgrad_ms"], r["ratio"],
            r["torch_xfloor"], r["mtgrad_xfloor"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
