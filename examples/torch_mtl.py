#!/usr/bin/env python3
"""torch_mtl.py — a small two-task model trained in PyTorch with any mtgrad method.

    PYTHONPATH=python MTGRAD_LIB=build/libmtgrad.so python3 examples/torch_mtl.py cagrad c=0.4
    python3 examples/torch_mtl.py --list

A shared MLP trunk feeds two heads on synthetic data: task 0 is a regression (MSE), task 1 a
binary classification (cross-entropy) whose loss has a different scale and partly conflicts with
task 0 in the trunk. Each step computes both losses, lets mtgrad.torch.backward balance the
shared gradient, and steps an SGD optimizer; methods that want the losses after the step (FAMO)
get them from a second forward on the same batch. Prints the held-out per-task losses.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mtgrad  # noqa: E402
import mtgrad.torch  # noqa: E402


class TwoTaskNet(torch.nn.Module):
    def __init__(self, n_in, width):
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Linear(n_in, width), torch.nn.ReLU(),
                                         torch.nn.Linear(width, width), torch.nn.ReLU())
        self.regress = torch.nn.Linear(width, 1)
        self.classify = torch.nn.Linear(width, 1)

    def losses(self, x, y_reg, y_cls):
        z = self.trunk(x)
        return [F.mse_loss(self.regress(z).squeeze(-1), y_reg),
                F.binary_cross_entropy_with_logits(self.classify(z).squeeze(-1), y_cls)]


def make_data(n, a, b, gen):
    """x ~ N(0, I); y_reg = 3 sin(2 a·x) + noise; y_cls = [b·x - 0.5 a·x > 0]."""
    x = torch.randn(n, a.shape[0], generator=gen)
    y_reg = 3 * torch.sin(x @ a * 2) + 0.1 * torch.randn(n, generator=gen)
    y_cls = ((x @ b - 0.5 * (x @ a)) > 0).float()
    return x, y_reg, y_cls


def parse_params(items):
    params = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq:
            raise SystemExit("parameter %r: expected name=value" % item)
        params[name] = value  # text: the library parses it, with its own messages
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("method", nargs="?", default="mgda", help="an mtgrad method (--list)")
    ap.add_argument("params", nargs="*", help="method parameters name=value")
    ap.add_argument("--list", action="store_true", help="list the methods and exit")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=50, help="print every N steps")
    args = ap.parse_args()
    if args.list:
        for name, m in mtgrad.methods().items():
            print("%-12s %s" % (name, m.summary))
        return 0

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    n_in = 16
    a = torch.randn(n_in, generator=gen) / n_in ** 0.5
    b = torch.randn(n_in, generator=gen) / n_in ** 0.5
    train = make_data(4096, a, b, gen)
    test = make_data(1024, a, b, gen)
    model = TwoTaskNet(n_in, 64)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    try:
        agg = mtgrad.Aggregator(args.method, 2, **parse_params(args.params))
    except mtgrad.MtgradError as e:
        print("torch_mtl: %s" % e, file=sys.stderr)
        return 2
    shared = list(model.trunk.parameters())
    heads = list(model.regress.parameters()) + list(model.classify.parameters())
    print("method %s (%s), params %s" % (agg.name, ", ".join(agg.method.needs) or "no inputs",
                                         agg.params))
    print("%6s %12s %12s" % ("step", "test mse", "test bce"))
    with torch.no_grad():
        t = model.losses(*test)
    print("%6d %12.5f %12.5f" % (0, float(t[0]), float(t[1])))
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, train[0].shape[0], (args.batch,), generator=gen)
        batch = [t[idx] for t in train]
        opt.zero_grad()
        losses = model.losses(*batch)
        mtgrad.torch.backward(losses, shared, agg, task_params=heads)
        opt.step()
        if agg.has(mtgrad.Flag.NEEDS_LOSSES_AFTER):
            with torch.no_grad():
                mtgrad.torch.update(agg, model.losses(*batch))
        if step % args.every == 0 or step == args.steps:
            with torch.no_grad():
                t = model.losses(*test)
            print("%6d %12.5f %12.5f" % (step, float(t[0]), float(t[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
