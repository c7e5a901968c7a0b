#!/usr/bin/python3
"""peer_torch.py — the PyTorch peers of `mtgrad bench`, timed in the same script run.

For each k, d and thread count it builds the same float32 matrix G as `mtgrad bench` (bit for
bit: the bench's splitmix64 column generator, rebuilt with NumPy; checked against the trace of
G Gᵀ that the bench reports) and times, as median of --reps runs after one warm-up:

  gram      G @ G.T                                  (torch.mm, float32)
  combine   w @ G                                    (float32)
  mgda      TorchJD MGDA: Gramian G @ G.T, Frank–Wolfe on it (max_iters 100, epsilon 1e-3),
            then w @ G
  pcgrad    LibMTL PCGrad: per task, a clone of g_i projected off every g_j it conflicts with in
            a shuffled order (d-long dot products and axpys, O(k² d)), then the sum
  cagrad    LibMTL CAGrad: GG = G @ G.T to NumPy, scipy.optimize.minimize(SLSQP) of the dual
            over the simplex, then g0 + lambda·g_w from G (rescale 1)

then runs `BIN bench --json` on the same k, d and threads, and prints each peer's time, the
mtgrad time of the same thing (Gram, combine, the method end to end: mgda is mtgrad's exact
min-norm solver, pcgrad its Gram-only form, cagrad its exact dual), the ratio
torch/mtgrad (how many times faster mtgrad is), and the peer's multiple of the bench's floor.

Threads: each thread count runs in a child process with OMP_NUM_THREADS/OPENBLAS_NUM_THREADS set
before torch is imported, and torch.set_num_threads. Needs python3-torch, python3-numpy, and
python3-scipy for cagrad (skipped without it). Debian's torch uses OpenBLAS when libopenblas0
is installed (otherwise the reference BLAS: much slower G @ G.T).

usage: bench/peer_torch.py [--bin build/mtgrad] [-k 2,10] [-d 1e6] [-t 1,2] [-r 5]
                           [--methods mgda,pcgrad,cagrad] [--json]
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

def mgda_torchjd(torch, G, max_iters=100, epsilon=1e-3):
    """TorchJD MGDA (aggregation/_mgda.py): Frank–Wolfe on the Gramian, then w @ G."""
    gramian = G @ G.T
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
    return alpha @ G


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
                r["methods"]["mgda"] = 1e3 * timed(lambda: mgda_torchjd(torch, G), args.reps)
            if "pcgrad" in args.methods:
                r["methods"]["pcgrad"] = 1e3 * timed(lambda: pcgrad_libmtl(torch, G, rng), args.reps)
            if "cagrad" in args.methods and scipy_minimize is not None:
                r["methods"]["cagrad"] = 1e3 * timed(lambda: cagrad_libmtl(torch, G, scipy_minimize), args.reps)
            out.append(r)
            del G, Gn
    json.dump({"torch": torch.__version__, "results": out}, sys.stdout)


def csv(s, conv):
    return [conv(float(x)) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/mtgrad", help="the mtgrad binary (default build/mtgrad)")
    ap.add_argument("-k", default="2,3,10,40", help="task counts (default 2,3,10,40)")
    ap.add_argument("-d", default="1e5,1e6,1e7", help="parameter counts (default 1e5,1e6,1e7)")
    ap.add_argument("-t", "--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("-r", "--reps", type=int, default=5, help="timed repetitions, >= 5 (default 5)")
    ap.add_argument("--methods", default="mgda,pcgrad,cagrad", help="peers to time (default all three)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reps < 5:
        ap.error("--reps must be at least 5")
    args.methods = [m for m in args.methods.split(",") if m]
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
                 "-r", str(args.reps), "-m", ",".join(args.methods)]
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
            if m in p["methods"] and m in b["methods"]:
                items.append((m, p["methods"][m], b["methods"][m]["e2e_ms"]))
        for what, tms, mms in items:
            rows.append({"k": key[0], "d": key[1], "threads": key[2], "what": what, "torch_ms": tms,
                         "mtgrad_ms": mms, "ratio": tms / mms if mms else None,
                         "torch_xfloor": tms / b["floor_ms"], "mtgrad_xfloor": mms / b["floor_ms"]})
    if args.json:
        json.dump({"torch": torch_version, "mtgrad": bench["version"], "floors": bench["floors"],
                   "rows": rows}, sys.stdout, indent=1)
        print()
        return 0
    print("torch %s vs mtgrad %s; ratio = torch time / mtgrad time (same matrix, same threads)"
          % (torch_version, bench["version"]))
    print("%4s %8s %3s  %-8s %11s %11s %8s %9s %9s" % ("k", "d", "thr", "what", "torch_ms", "mtgrad_ms",
                                                     "ratio", "torch_xfl", "mtgrad_xfl"))
    for r in rows:
        print("%4d %8.0e %3d  %-8s %11.3f %11.3f %7.1fx %9.1f %9.2f" % (
            r["k"], r["d"], r["threads"], r["what"], r["torch_ms"], r["mtgrad_ms"], r["ratio"],
            r["torch_xfloor"], r["mtgrad_xfloor"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
