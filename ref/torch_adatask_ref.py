#!/usr/bin/python3
"""torch_adatask_ref.py — AdaTask steps computed with PyTorch, for tests/nn/test_adatask.c.

The shared parameters follow the step of the official AdaTask code (EnnengYang/AdaTask
adatask.py, Adam_with_AdaTask.step), re-implemented here with the same tensor operations: one
step counter; for each task t in order, exp_avg_t.mul_(b1).add_(g_t, alpha=1-b1),
exp_avg_sq_t.mul_(b2).addcmul_(g_t, g_t, value=1-b2), denom = sqrt(exp_avg_sq_t)/sqrt(bc2) + eps,
p.addcdiv_(exp_avg_t, denom, value=-lr/bc1), i.e. the parameter moves once per task. The RMSprop
and Adagrad analogues (the paper's variants; no official code) use torch.optim.RMSprop's and
Adagrad's own operations per task: v_t.mul_(alpha).addcmul_(g_t, g_t, value=1-alpha) (Adagrad:
s_t.addcmul_(g_t, g_t, value=1)), p.addcdiv_(g_t, sqrt(v_t) + eps, value=-lr). Weight decay is
ignored on the shared parameters, as in the official code.
The task-specific parameters take torch.optim.Adam / RMSprop / Adagrad (foreach=False, with the
case's weight decay) on their summed gradient; with weight decay 0 this is the official code's
task-specific step.

Writes, per case, the start parameters, each step's per-task shared gradients G (k x d), the
task-specific gradient g (n - d) and the parameters after the step; floats with 9 significant
digits (exact for float32). Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 ref/torch_adatask_ref.py > tests/nn/data/adatask_torch.txt
"""
import math
import sys

import torch

N = 37   # parameters: d shared, then n - d task-specific
D = 21   # neither part a multiple of 8: vector loops and scalar tails both run
K = 3
STEPS = 5

# name, kind (5 AdaTask-Adam, 6 AdaTask-RMSprop, 7 AdaTask-Adagrad), lr, weight_decay, beta1,
# beta2 (RMSprop's alpha), eps
CASES = [
    ("adatask_adam", 5, 1e-3, 0.0, 0.9, 0.999, 1e-8),
    ("adatask_adam_wd_betas", 5, 0.05, 0.01, 0.5, 0.9, 1e-3),
    ("adatask_rmsprop", 6, 1e-2, 0.0, 0.9, 0.99, 1e-8),
    ("adatask_rmsprop_wd", 6, 3e-3, 0.05, 0.9, 0.9, 1e-4),
    ("adatask_adagrad", 7, 1e-2, 0.0, 0.9, 0.999, 1e-10),
    ("adatask_adagrad_wd", 7, 0.1, 0.02, 0.9, 0.999, 1e-6),
]


def fmt(tag, t):
    return tag + " " + " ".join("%.9g" % v for v in t.reshape(-1).tolist())


class SharedAdaTask:
    """The per-task moments of one shared tensor and the sequential per-task updates."""

    def __init__(self, kind, p, lr, b1, b2, eps):
        self.kind, self.p, self.lr, self.b1, self.b2, self.eps = kind, p, lr, b1, b2, eps
        self.step_count = 0
        self.m = [torch.zeros_like(p) for _ in range(K)]
        self.v = [torch.zeros_like(p) for _ in range(K)]

    @torch.no_grad()
    def step(self, grads):
        self.step_count += 1
        p = self.p
        if self.kind == 5:
            bc1 = 1 - self.b1 ** self.step_count
            bc2 = 1 - self.b2 ** self.step_count
            for t in range(K):
                self.m[t].mul_(self.b1).add_(grads[t], alpha=1 - self.b1)
                self.v[t].mul_(self.b2).addcmul_(grads[t], grads[t], value=1 - self.b2)
                denom = (self.v[t].sqrt() / math.sqrt(bc2)).add_(self.eps)
                p.addcdiv_(self.m[t], denom, value=-(self.lr / bc1))
        elif self.kind == 6:
            for t in range(K):
                self.v[t].mul_(self.b2).addcmul_(grads[t], grads[t], value=1 - self.b2)
                p.addcdiv_(grads[t], self.v[t].sqrt().add_(self.eps), value=-self.lr)
        else:
            for t in range(K):
                self.v[t].addcmul_(grads[t], grads[t], value=1)
                clr = self.lr / (1 + (self.step_count - 1) * 0)
                p.addcdiv_(grads[t], self.v[t].sqrt().add_(self.eps), value=-clr)


def head_optimizer(kind, q, lr, wd, b1, b2, eps):
    if kind == 5:
        return torch.optim.Adam([q], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    if kind == 6:
        return torch.optim.RMSprop([q], lr=lr, alpha=b2, eps=eps, weight_decay=wd, momentum=0,
                                   centered=False, foreach=False)
    return torch.optim.Adagrad([q], lr=lr, lr_decay=0, weight_decay=wd,
                               initial_accumulator_value=0, eps=eps, foreach=False)


def main():
    torch.set_num_threads(1)
    out = sys.stdout
    out.write("# AdaTask steps by torch %s (CPU, float32)\n" % torch.__version__)
    out.write("# made by: /usr/bin/python3 ref/torch_adatask_ref.py > tests/nn/data/adatask_torch.txt\n")
    out.write("# case NAME KIND LR WD BETA1 BETA2 EPS N D K STEPS; p0 N floats; then STEPS x "
              "(G K*D floats, g N-D floats, p N floats after the step)\n")
    gen = torch.Generator().manual_seed(4321)
    # task 1's gradients are 100x larger than the others': per-task moments keep its size from
    # shrinking the other tasks' steps
    task_scale = [1.0, 100.0, 0.3]
    for name, kind, lr, wd, b1, b2, eps in CASES:
        p0 = torch.randn(N, generator=gen, dtype=torch.float32)
        shared = p0[:D].clone()
        head = p0[D:].clone().requires_grad_(True)
        sh = SharedAdaTask(kind, shared, lr, b1, b2, eps)
        hopt = head_optimizer(kind, head, lr, wd, b1, b2, eps)
        out.write("case %s %d %.17g %.17g %.17g %.17g %.17g %d %d %d %d\n"
                  % (name, kind, lr, wd, b1, b2, eps, N, D, K, STEPS))
        out.write(fmt("p0", p0) + "\n")
        for _ in range(STEPS):
            G = torch.stack([torch.randn(D, generator=gen, dtype=torch.float32) * task_scale[t]
                             for t in range(K)])
            G[:, 4] = 0.0  # a shared coordinate no task moves
            g = torch.randn(N - D, generator=gen, dtype=torch.float32)
            sh.step([G[t].clone() for t in range(K)])
            head.grad = g.clone()
            hopt.step()
            out.write(fmt("G", G) + "\n")
            out.write(fmt("g", g) + "\n")
            out.write(fmt("p", torch.cat([shared, head.detach()])) + "\n")


if __name__ == "__main__":
    main()
