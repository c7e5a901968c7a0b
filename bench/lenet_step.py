#!/usr/bin/python3
"""lenet_step.py — our LeNet training step against PyTorch CPU's, same model, batch and threads,
timed in one run.

The model is the MultiFashion LeNet of benchmarks.md §5.2 (1x36x36 inputs, Conv 10@9x9, Conv
20@5x5, Linear 500->50, two Linear(50->10) heads, cross-entropy). A step is
  ls: forward, one backward of L1 + L2, Adam step (lr 1e-3, weight decay 0.01);
  k2: forward, one backward per task through the trunk (torch: two autograd.grad calls with
      retain_graph, ours: two backward_task calls), trunk gradients summed, Adam step.
For each thread count T the script alternates blocks of torch steps (in this process,
torch.set_num_threads(T)) and of ours (the C driver bench/lenet_step.c, --threads T), so that
both see the same machine state, and prints both medians and the ratio
    speed-up = torch median / ours median   (> 1: ours is faster; target >= 1.0, performance.md).
The script builds nothing: build the driver first with `make bench-lenet` (BUILD=... as usual)
and pass its path with --bin. Run with Debian's python3-torch:
    /usr/bin/python3 bench/lenet_step.py --bin build/bench/lenet_step [--threads 1,2] [--json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def build_torch_model():
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(
        torch.nn.Conv2d(1, 10, 9), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(10, 20, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(500, 50), torch.nn.ReLU())
    heads = torch.nn.ModuleList([torch.nn.Linear(50, 10) for _ in range(2)])
    return trunk, heads


def time_torch(threads, batch, reps, warmup, mode):
    """Per-step seconds of torch's step (sorted list)."""
    torch.set_num_threads(threads)
    trunk, heads = build_torch_model()
    params = list(trunk.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 1, 36, 36, generator=gen)
    y = torch.randint(0, 10, (2, batch), generator=gen)
    tparams = list(trunk.parameters())
    times = []
    for r in range(warmup + reps):
        t0 = time.perf_counter()
        z = trunk(x)
        l1 = F.cross_entropy(heads[0](z), y[0])
        l2 = F.cross_entropy(heads[1](z), y[1])
        opt.zero_grad(set_to_none=True)
        if mode == "ls":
            (l1 + l2).backward()
        else:
            h0, h1 = list(heads[0].parameters()), list(heads[1].parameters())
            g1 = torch.autograd.grad(l1, tparams + h0, retain_graph=True)
            g2 = torch.autograd.grad(l2, tparams + h1)
            nt = len(tparams)
            for p, a, b in zip(tparams, g1[:nt], g2[:nt]):
                p.grad = a + b
            for p, g in zip(h0, g1[nt:]):
                p.grad = g
            for p, g in zip(h1, g2[nt:]):
                p.grad = g
        opt.step()
        dt = time.perf_counter() - t0
        if r >= warmup:
            times.append(dt)
    return times


def time_ours(binary, threads, batch, reps, warmup, mode):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "--threads", str(threads), "--batch", str(batch), "--reps", str(reps),
           "--warmup", str(warmup), "--mode", mode]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/bench/lenet_step", help="the C driver (make bench-lenet)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=20, help="timed steps per block")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="alternating blocks per implementation")
    ap.add_argument("--mode", default="ls", choices=["ls", "k2", "both"])
    ap.add_argument("--json", action="store_true", help="print one JSON object per row instead of a table")
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        sys.exit("lenet_step.py: %s not found; build it with `make bench-lenet` (or pass --bin)" % args.bin)

    modes = ["ls", "k2"] if args.mode == "both" else [args.mode]
    rows = []
    for mode in modes:
        for threads in [int(t) for t in args.threads.split(",")]:
            torch_t, ours_t = [], []
            for _ in range(args.rounds):
                torch_t += time_torch(threads, args.batch, args.reps, args.warmup, mode)
                res = time_ours(args.bin, threads, args.batch, args.reps, args.warmup, mode)
                ours_t.append(res["median_ms"])
            tm = 1e3 * statistics.median(torch_t)
            om = statistics.median(ours_t)  # median of the blocks' medians
            rows.append({"mode": mode, "threads": threads, "batch": args.batch,
                         "torch_median_ms": round(tm, 4), "ours_median_ms": round(om, 4),
                         "speedup": round(tm / om, 3)})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")  # torch's BLAS on Debian
    print("LeNet training step, batch %d, torch %s (libblas.so.3 -> %s), median of %d x %d steps"
          % (args.batch, torch.__version__, blas, args.rounds, args.reps))
    print("%-5s %7s %12s %12s %9s" % ("mode", "threads", "torch ms", "mtgrad ms", "speed-up"))
    for r in rows:
        print("%-5s %7d %12.3f %12.3f %8.2fx" % (r["mode"], r["threads"], r["torch_median_ms"],
                                                 r["ours_median_ms"], r["speedup"]))


if __name__ == "__main__":
    main()
