#!/usr/bin/python3
"""torch_optim_ref.py — PyTorch's own optimizer updates, for tests/nn/test_optim.c.

Runs torch.optim.SGD / Adam / AdamW / RMSprop / Adagrad (torch 1.13 CPU, float32, single-tensor path: foreach=False)
on one parameter tensor with given gradients and writes, per case, the start parameters, each
step's gradient and the parameters after the step, every float with 9 significant digits (exact
for float32). The C test feeds the same gradients to mtgrad_optimizer_step and compares.

Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 ref/torch_optim_ref.py > tests/nn/data/optim_torch.txt
"""
import sys

import torch

N = 37  # not a multiple of 8 or 16: ATen's vector loop and its scalar tail both run
STEPS = 6

# name, kind (0 SGD, 1 Adam, 2 AdamW, 3 RMSprop, 4 Adagrad), lr, momentum, weight_decay, beta1,
# beta2 (RMSprop's alpha), eps
CASES = [
    ("sgd_plain", 0, 0.05, 0.0, 0.0, 0.9, 0.999, 1e-8),
    ("sgd_momentum_wd", 0, 0.05, 0.9, 0.01, 0.9, 0.999, 1e-8),
    ("adam", 1, 1e-3, 0.0, 0.0, 0.9, 0.999, 1e-8),
    ("adam_wd", 1, 1e-3, 0.0, 0.01, 0.9, 0.999, 1e-8),
    ("adam_betas", 1, 0.05, 0.0, 0.1, 0.5, 0.9, 1e-3),
    ("adamw", 2, 1e-3, 0.0, 0.01, 0.9, 0.999, 1e-8),
    ("adamw_big", 2, 0.05, 0.0, 0.5, 0.8, 0.99, 1e-6),
    ("rmsprop", 3, 1e-2, 0.0, 0.0, 0.9, 0.99, 1e-8),
    ("rmsprop_wd_alpha", 3, 3e-3, 0.0, 0.05, 0.9, 0.9, 1e-4),
    ("adagrad", 4, 1e-2, 0.0, 0.0, 0.9, 0.999, 1e-10),
    ("adagrad_wd", 4, 0.1, 0.0, 0.02, 0.9, 0.999, 1e-6),
]


def fmt(tag, t):
    return tag + " " + " ".join("%.9g" % v for v in t.tolist())


def make_opt(kind, p, lr, mom, wd, b1, b2, eps):
    if kind == 0:
        return torch.optim.SGD([p], lr=lr, momentum=mom, weight_decay=wd, foreach=False)
    if kind == 3:
        return torch.optim.RMSprop([p], lr=lr, alpha=b2, eps=eps, weight_decay=wd, momentum=0,
                                   centered=False, foreach=False)
    if kind == 4:
        return torch.optim.Adagrad([p], lr=lr, lr_decay=0, weight_decay=wd,
                                   initial_accumulator_value=0, eps=eps, foreach=False)
    cls = torch.optim.Adam if kind == 1 else torch.optim.AdamW
    return cls([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)


def main():
    torch.set_num_threads(1)
    out = sys.stdout
    out.write("# optimizer updates by torch %s (CPU, float32, foreach=False)\n" % torch.__version__)
    out.write("# made by: /usr/bin/python3 ref/torch_optim_ref.py > tests/nn/data/optim_torch.txt\n")
    out.write("# case NAME KIND LR MOMENTUM WD BETA1 BETA2 EPS N STEPS; p0 N floats; then STEPS x "
              "(g N floats, p N floats after the step)\n")
    gen = torch.Generator().manual_seed(1234)
    for name, kind, lr, mom, wd, b1, b2, eps in CASES:
        p = torch.randn(N, generator=gen, dtype=torch.float32)
        scale = torch.logspace(-3, 1, N, dtype=torch.float32)
        p.requires_grad_(True)
        opt = make_opt(kind, p, lr, mom, wd, b1, b2, eps)
        out.write("case %s %d %.17g %.17g %.17g %.17g %.17g %.17g %d %d\n"
                  % (name, kind, lr, mom, wd, b1, b2, eps, N, STEPS))
        out.write(fmt("p0", p.detach()) + "\n")
        for _ in range(STEPS):
            g = torch.randn(N, generator=gen, dtype=torch.float32) * scale
            g[5] = 0.0  # a coordinate whose gradient is always 0
            p.grad = g.clone()
            opt.step()
            out.write(fmt("g", g) + "\n")
            out.write(fmt("p", p.detach()) + "\n")


if __name__ == "__main__":
    main()
