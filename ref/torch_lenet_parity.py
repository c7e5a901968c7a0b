#!/usr/bin/python3
"""torch_lenet_parity.py — PyTorch's 20-step training trajectory of the MultiFashion LeNet, for
tests/nn/test_torch_parity.c.

The model is the Pareto-MTL LeNet of benchmarks.md §5.2 on 1x36x36 inputs, with two heads:
  trunk  Conv(1->10, 9x9) ReLU MaxPool2 Conv(10->20, 5x5) ReLU MaxPool2 Flatten Linear(500->50) ReLU
  heads  Linear(50->10) each, cross-entropy losses
(mtgrad: trunk "conv:10:9,relu,maxpool:2,conv:20:5,relu,maxpool:2,flatten,linear:50,relu",
heads "linear:10"). Training: Adam(lr 1e-3, weight_decay 0.01) — CAGrad's MultiFashion recipe —,
STEPS steps of batch BATCH, each one backward of L1 + L2.

The batches are not stored: both this script and the C test make them with the generator below
(LCG, Numerical Recipes constants, 32-bit):
    s = (1664525 * s + 1013904223) mod 2^32, starting from s = SEED; next() returns the new s.
For each step, for each sample j of the batch, in this order:
    label0 = (next() >> 16) % 10;  label1 = (next() >> 16) % 10
    r0 = (next() >> 16) % 5; c0 = (next() >> 16) % 5          top-left item's corner
    r1 = 4 + (next() >> 16) % 5; c1 = 4 + (next() >> 16) % 5  bottom-right item's corner
    the 36x36 image starts at 0; for each item (r0,c0,label0) then (r1,c1,label1), for y in
    0..27, x in 0..27 (row-major): b = next() >> 24; if b >= 96 + 16*label:
    pixel[r+y][c+x] = max(pixel, float32(b) / float32(255))
so images look like MultiFashion's: two overlapping items on a zero background (ties in max
pooling and zeros at ReLU included), pixel values in [0, 1], and each item's density tells its
label, so the losses fall over the 20 steps rather than sit at log(10).

Output (default tests/nn/data/lenet_parity.bin): ASCII header lines, each starting with '#',
ending with the line "#data"; then little-endian float32 arrays:
    params0[P]      initial parameters in mtgrad's arena order (torch state_dict order of the
                    trunk, then head0, then head1; weight then bias per layer)
    grad0[P]        gradient of L1 + L2 at step 0 (before the first update), same order
    losses[STEPS*2] per step (before its update): L1, L2
    params_end[P]   parameters after the last step
Run from the repository root with Debian's python3-torch:
    /usr/bin/python3 ref/torch_lenet_parity.py
"""
import argparse
import struct
import sys

import torch
import torch.nn.functional as F

FORMAT_VERSION = 1
SEED = 20240611
STEPS = 20
BATCH = 32
INIT_SEED = 0
LR = 1e-3
WEIGHT_DECAY = 0.01


class Lcg:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def next(self):
        self.s = (1664525 * self.s + 1013904223) & 0xFFFFFFFF
        return self.s


def make_batch(gen, n):
    """n images (n x 1 x 36 x 36, float32) and labels (2 x n, int64) as documented above."""
    x = torch.zeros(n, 1, 36, 36, dtype=torch.float32)
    y = torch.zeros(2, n, dtype=torch.int64)
    # float32(b) / float32(255), rounded once, as the C side computes it
    table = (torch.arange(256, dtype=torch.float32) / 255.0).tolist()
    for j in range(n):
        y[0, j] = (gen.next() >> 16) % 10
        y[1, j] = (gen.next() >> 16) % 10
        r0 = (gen.next() >> 16) % 5
        c0 = (gen.next() >> 16) % 5
        r1 = 4 + (gen.next() >> 16) % 5
        c1 = 4 + (gen.next() >> 16) % 5
        img = [[0.0] * 36 for _ in range(36)]
        for (r, c, label) in ((r0, c0, int(y[0, j])), (r1, c1, int(y[1, j]))):
            threshold = 96 + 16 * label
            for yy in range(28):
                row = img[r + yy]
                for xx in range(28):
                    b = gen.next() >> 24
                    if b >= threshold and table[b] > row[c + xx]:
                        row[c + xx] = table[b]
        x[j, 0] = torch.tensor(img, dtype=torch.float32)
    return x, y


def build_model():
    torch.manual_seed(INIT_SEED)
    trunk = torch.nn.Sequential(
        torch.nn.Conv2d(1, 10, 9), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(10, 20, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(500, 50), torch.nn.ReLU())
    heads = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(50, 10)) for _ in range(2)])
    return trunk, heads


def arena_tensors(trunk, heads):
    """(mtgrad name, parameter) in arena order: trunk state_dict, then head0, head1."""
    out = [("trunk." + k, v) for k, v in trunk.named_parameters()]
    for i, h in enumerate(heads):
        out += [("head%d.%s" % (i, k), v) for k, v in h.named_parameters()]
    return out


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def f32_bytes(t):
    t = t.detach().to(torch.float32).reshape(-1).contiguous()
    return struct.pack("<%df" % t.numel(), *t.tolist())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/nn/data/lenet_parity.bin")
    ap.add_argument("--mkldnn", type=int, default=1, help="0: ATen's own convolution instead of oneDNN's")
    args = ap.parse_args()
    torch.backends.mkldnn.enabled = bool(args.mkldnn)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    trunk, heads = build_model()
    named = arena_tensors(trunk, heads)
    params = [p for _, p in named]
    opt = torch.optim.Adam(params, lr=LR, weight_decay=WEIGHT_DECAY, foreach=False)
    params0 = flat(params).clone()

    gen = Lcg(SEED)
    check = Lcg(SEED)
    x0, y0 = make_batch(check, BATCH)
    losses = []
    grad0 = None
    for step in range(STEPS):
        x, y = make_batch(gen, BATCH)
        z = trunk(x)
        l1 = F.cross_entropy(heads[0](z), y[0])
        l2 = F.cross_entropy(heads[1](z), y[1])
        opt.zero_grad()
        (l1 + l2).backward()
        if step == 0:
            grad0 = flat([p.grad for p in params]).clone()
        opt.step()
        losses += [float(l1), float(l2)]
        print("step %2d  L1 %.7f  L2 %.7f" % (step, float(l1), float(l2)), file=sys.stderr)
    params_end = flat(params).clone()

    header = [
        "# mtgrad LeNet parity data, format %d" % FORMAT_VERSION,
        "# made by: /usr/bin/python3 ref/torch_lenet_parity.py (torch %s, CPU, float32, 1 thread)"
        % torch.__version__,
        "# model: Conv(1->10,9) ReLU MaxPool2 Conv(10->20,5) ReLU MaxPool2 Flatten Linear(500->50) ReLU;"
        " heads Linear(50->10) x2; CE",
        "# convolution: %s" % ("oneDNN (torch's default)" if args.mkldnn else "ATen native (--mkldnn 0)"),
        "# init: torch default init after torch.manual_seed(%d)" % INIT_SEED,
        "# optimizer: Adam lr %g weight_decay %g betas 0.9 0.999 eps 1e-8 (foreach=False)"
        % (LR, WEIGHT_DECAY),
        "# batches: LCG s = 1664525 s + 1013904223 mod 2^32 from the seed; see the script's docstring",
        "# layout after '#data': float32 LE params0[P] grad0[P] losses[steps*2] params_end[P]",
        "# format %d" % FORMAT_VERSION,
        "# params %d" % params0.numel(),
        "# steps %d" % STEPS,
        "# batch %d" % BATCH,
        "# seed %d" % SEED,
        "# lr %.17g" % LR,
        "# weight_decay %.17g" % WEIGHT_DECAY,
    ]
    header += ["# tensor %s %d" % (name, p.numel()) for name, p in named]
    header += ["# batch0 pixel_sum %.17g nonzero %d label_sum %d %d"
               % (float(x0.double().sum()), int((x0 != 0).sum()), int(y0[0].sum()), int(y0[1].sum()))]
    header += [
        "# final params: sum %.9g, L2 norm %.9g, max |p| %.9g"
        % (float(params_end.double().sum()), float(params_end.double().norm()),
           float(params_end.abs().max())),
        "# final losses: L1 %.9g, L2 %.9g" % (losses[-2], losses[-1]),
        "#data",
    ]
    with open(args.out, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(f32_bytes(params0))
        f.write(f32_bytes(grad0))
        f.write(struct.pack("<%df" % len(losses), *losses))
        f.write(f32_bytes(params_end))
    print("wrote %s" % args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
