#!/usr/bin/env python3
"""torch_helper_step.py — per-step time of mtgrad.torch.backward against a plain-PyTorch
implementation of the same method on the same model, measured in one run.

    PYTHONPATH=python MTGRAD_LIB=build/libmtgrad.so python3 bench/torch_helper_step.py \
        --method cagrad --width 512 --threads 1

One training step = forward of both task losses, the balanced backward, an SGD step. Both
sides compute the per-task gradients the same way (one torch.autograd.grad per task); they
differ in what follows: the plain side stacks the rows (torch.stack), forms M = G Gᵀ in float64
with torch, solves the two-task problem in Python (closed form for MGDA, bisection on the convex
dual for CAGrad/IMGrad, as in python/tests/test_torch.py) and writes wᵀG into .grad; the helper
copies the rows into its preallocated buffer and lets libmtgrad do the Gram, the solve and the
combination. For `mean` both sides are a single backward. The two models see the same batches,
alternately in blocks of --block steps (so drift of the machine hits both), and must end with
the same parameters (printed as a check). Prints the median per-step time of each side and the
ratio helper/plain.
"""
import argparse
import copy
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "python", "tests"))  # the plain two-task weights

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mtgrad  # noqa: E402
import mtgrad.torch  # noqa: E402
from two_task_reference import REFERENCES  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self, n_in, width, depth):
        super().__init__()
        layers, n = [], n_in
        for _ in range(depth):
            layers += [torch.nn.Linear(n, width), torch.nn.ReLU()]
            n = width
        self.trunk = torch.nn.Sequential(*layers)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(width, 1), torch.nn.Linear(width, 1)])

    def losses(self, x, ys):
        z = self.trunk(x)
        return [F.mse_loss(h(z).squeeze(-1), y) for h, y in zip(self.heads, ys)]


# ---------------------------------------------------------------- plain PyTorch, k = 2


def plain_backward(model, losses, method):
    if method == "mean":
        (sum(losses) / len(losses)).backward()
        return
    weights_fn, heads_weighted = REFERENCES[method]
    shared = list(model.trunk.parameters())
    rows, head_grads = [], []
    for i, loss in enumerate(losses):
        head = list(model.heads[i].parameters())
        gs = torch.autograd.grad(loss, shared + head, retain_graph=i < len(losses) - 1)
        rows.append(torch.cat([g.reshape(-1) for g in gs[:len(shared)]]))
        head_grads.append((head, gs[len(shared):]))
    G64 = torch.stack(rows).double()
    w = weights_fn((G64 @ G64.T).numpy())
    direction = (torch.from_numpy(w) @ G64).float()
    off = 0
    for p in shared:
        p.grad = direction[off:off + p.numel()].view_as(p).clone()
        off += p.numel()
    for i, (head, gs) in enumerate(head_grads):
        for p, g in zip(head, gs):
            p.grad = g * float(w[i]) if heads_weighted else g


# ---------------------------------------------------------------- timing


def run_block(model, opt, batches, step_fn):
    t0 = time.perf_counter()
    for x, ys in batches:
        opt.zero_grad()
        losses = model.losses(x, ys)
        step_fn(model, losses)
        opt.step()
    return (time.perf_counter() - t0) / len(batches)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="cagrad", choices=sorted(REFERENCES) + ["mean"])
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--block", type=int, default=10, help="steps per timed block")
    ap.add_argument("--blocks", type=int, default=10, help="timed blocks per side")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (mtgrad uses 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_in = 64
    base = Net(n_in, args.width, args.depth)
    d = sum(p.numel() for p in base.trunk.parameters())
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(n_in, generator=gen)

    def batch():
        x = torch.randn(args.batch, n_in, generator=gen)
        return x, [torch.sin(x @ a), -0.3 * (x @ a) + 1]

    ours, plain = copy.deepcopy(base), copy.deepcopy(base)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.01)
    opt_p = torch.optim.SGD(plain.parameters(), lr=0.01)
    agg = mtgrad.Aggregator(args.method, 2)
    shared_o = list(ours.trunk.parameters())
    heads_o = list(ours.heads.parameters())

    def helper(model, losses):
        mtgrad.torch.backward(losses, shared_o, agg, task_params=heads_o)

    def reference(model, losses):
        plain_backward(model, losses, args.method)

    warm = [batch() for _ in range(3)]
    run_block(ours, opt_o, warm, helper)
    run_block(plain, opt_p, warm, reference)
    t_ours, t_plain = [], []
    for r in range(args.blocks):
        bs = [batch() for _ in range(args.block)]
        first = (ours, opt_o, helper, t_ours), (plain, opt_p, reference, t_plain)
        for model, opt, fn, out in (first if r % 2 == 0 else first[::-1]):
            out.append(run_block(model, opt, bs, fn))
    diff = max(float((p - q).abs().max()) for p, q in zip(ours.parameters(), plain.parameters()))
    mo, mp = statistics.median(t_ours), statistics.median(t_plain)
    print("method %s, k = 2, d = %d shared parameters, batch %d, torch threads %d, torch %s"
          % (args.method, d, args.batch, args.threads, torch.__version__))
    print("steps: %d timed per side (%d blocks of %d, alternating), after %d warm-up"
          % (args.blocks * args.block, args.blocks, args.block, len(warm)))
    print("mtgrad.torch.backward step: %8.3f ms (median of blocks; min %.3f)"
          % (mo * 1e3, min(t_ours) * 1e3))
    print("plain PyTorch step:         %8.3f ms (median of blocks; min %.3f)"
          % (mp * 1e3, min(t_plain) * 1e3))
    print("ratio helper/plain:         %8.3f" % (mo / mp))
    print("check: max |parameter difference| after all steps = %.3g" % diff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
