"""test_torch.py — mtgrad.torch.backward on a small two-task MLP, against plain-PyTorch
implementations of the same updates written here: CAGrad, IMGrad and MGDA (Gram path, per-task
autograd.grad) for 50 SGD steps, parameters equal to 1e-5 after every step; the loss-only path
(mean; FAMO with its losses-after update, checked against the NumPy API); head gradients by the
HEADS_WEIGHTED convention; buffers reused in place; errors; examples/torch_mtl.py trains."""
import copy
import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import mtgrad  # noqa: E402
import mtgrad.torch as mt  # noqa: E402
from conftest import REPO  # noqa: E402

STEPS = 50
LR = 0.1


class TwoTask(torch.nn.Module):
    def __init__(self, dtype=torch.float32):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(),
                                         torch.nn.Linear(16, 12), torch.nn.Tanh())
        self.heads = torch.nn.ModuleList([torch.nn.Linear(12, 1), torch.nn.Linear(12, 1)])
        self.to(dtype)

    def losses(self, x, ys):
        z = self.trunk(x)
        return [F.mse_loss(h(z).squeeze(-1), y) for h, y in zip(self.heads, ys)]


def batches(n, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, generator=g)
    out = []
    for _ in range(n):
        x = torch.randn(32, 6, generator=g)
        # two conflicting targets of different scales
        out.append((x.to(dtype), [torch.sin(x @ a).to(dtype), (-0.5 * (x @ a) + 3).to(dtype)]))
    return out


# ---------------------------------------------------------------- plain-PyTorch references


from two_task_reference import REFERENCES, cagrad_weights  # noqa: E402



def plain_step(model, x, ys, weights_fn, heads_weighted):
    losses = model.losses(x, ys)
    shared = list(model.trunk.parameters())
    rows, head_grads = [], []
    for i, loss in enumerate(losses):
        head = list(model.heads[i].parameters())
        gs = torch.autograd.grad(loss, shared + head, retain_graph=i < len(losses) - 1)
        rows.append(torch.cat([g.reshape(-1) for g in gs[:len(shared)]]))
        head_grads.append((head, gs[len(shared):]))
    G = torch.stack(rows)
    G64 = G.double()
    w = weights_fn((G64 @ G64.T).numpy())
    direction = (torch.from_numpy(w) @ G64).to(G.dtype)
    off = 0
    for p in shared:
        p.grad = direction[off:off + p.numel()].view_as(p).clone()
        off += p.numel()
    for i, (head, gs) in enumerate(head_grads):
        for p, g in zip(head, gs):
            p.grad = g * float(w[i]) if heads_weighted else g
    return [float(loss) for loss in losses]


def train(model, step, n=STEPS, dtype=torch.float32):
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    trace = []
    for x, ys in batches(n, dtype):
        opt.zero_grad()
        losses = step(model, x, ys)
        opt.step()
        trace.append(([p.detach().clone() for p in model.parameters()], losses))
    return trace


def helper_step(agg):
    def step(model, x, ys):
        losses = model.losses(x, ys)
        mt.backward(losses, model.trunk.parameters(), agg)
        return [float(loss) for loss in losses]
    return step


def assert_same_trajectory(a, b, tol):
    for t, ((pa, la), (pb, lb)) in enumerate(zip(a, b)):
        for x, y in zip(pa, pb):
            err = float((x - y).abs().max())
            assert err <= tol, "step %d: parameters differ by %.3g" % (t, err)
        np.testing.assert_allclose(la, lb, rtol=0, atol=tol)


# ---------------------------------------------------------------- the Gram-path methods


@pytest.mark.parametrize("method", ["cagrad", "imgrad", "mgda"])
def test_helper_matches_plain_pytorch(method):
    weights_fn, heads_weighted = REFERENCES[method]
    agg = mtgrad.Aggregator(method, 2)
    assert agg.has(mtgrad.Flag.HEADS_WEIGHTED) == heads_weighted  # methods.md §0.3
    base = TwoTask()
    ours = train(copy.deepcopy(base), helper_step(agg))
    ref = train(copy.deepcopy(base),
                lambda m, x, ys: plain_step(m, x, ys, weights_fn, heads_weighted))
    assert_same_trajectory(ours, ref, 1e-5)
    # the model did move and the tasks did not collapse to one
    first, last = ref[0][1], ref[-1][1]
    assert sum(last) < sum(first)


def test_float64_model_uses_the_f64_entry_point():
    agg = mtgrad.Aggregator("cagrad", 2)
    base = TwoTask(torch.float64)
    ours = train(copy.deepcopy(base), helper_step(agg), n=10, dtype=torch.float64)
    ref = train(copy.deepcopy(base), lambda m, x, ys: plain_step(m, x, ys, cagrad_weights, False),
                n=10, dtype=torch.float64)
    assert_same_trajectory(ours, ref, 1e-10)
    (G, _, _), = agg.scratch.values()
    assert G.dtype == torch.float64


def test_heads_get_the_unweighted_or_weighted_gradients():
    x, ys = batches(1)[0]
    for method, weighted in (("cagrad", False), ("mgda", True)):
        model = TwoTask()
        agg = mtgrad.Aggregator(method, 2)
        losses = model.losses(x, ys)
        want = [torch.autograd.grad(losses[i], list(model.heads[i].parameters()),
                                    retain_graph=True) for i in range(2)]
        w = mt.backward(losses, model.trunk.parameters(), agg)
        for i in range(2):
            for p, g in zip(model.heads[i].parameters(), want[i]):
                expect = g * float(w[i]) if weighted else g
                assert torch.allclose(p.grad, expect, rtol=1e-6, atol=1e-8)


def test_heads_are_found_by_walking_the_graph():
    model = TwoTask()
    x, ys = batches(1)[0]
    losses = model.losses(x, ys)
    found = mt.task_parameters(losses, list(model.trunk.parameters()))
    assert {id(p) for p in found} == {id(p) for p in model.heads.parameters()}
    assert len(found) == 4


def test_buffers_are_reused_in_place():
    model = TwoTask()
    agg = mtgrad.Aggregator("upgrad", 2)
    ptrs = set()
    for x, ys in batches(3):
        model.zero_grad()
        mt.backward(model.losses(x, ys), model.trunk.parameters(), agg)
        (G, direction, _), = agg.scratch.values()
        ptrs.add((G.data_ptr(), direction.data_ptr()))
        d = sum(p.numel() for p in model.trunk.parameters())
        assert G.shape == (2, d) and G.is_contiguous() and G.dtype == torch.float32
    assert len(ptrs) == 1
    # the rows of the buffer are this step's task gradients, the .grad its direction
    losses = model.losses(*batches(1)[0])
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        loss, list(model.trunk.parameters()), retain_graph=True)]) for loss in losses]
    model.zero_grad()
    w = mt.backward(losses, model.trunk.parameters(), agg)
    (G, _, _), = agg.scratch.values()
    assert torch.equal(G, torch.stack(rows))
    grad = torch.cat([p.grad.reshape(-1) for p in model.trunk.parameters()])
    expect = (torch.from_numpy(w) @ torch.stack(rows).double()).float()
    assert torch.allclose(grad, expect, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- loss-only methods


def test_mean_is_one_backward_of_the_mean_loss():
    base = TwoTask()
    agg = mtgrad.Aggregator("mean", 2)

    def plain(model, x, ys):
        losses = model.losses(x, ys)
        (sum(losses) / 2).backward()
        return [float(loss) for loss in losses]

    assert_same_trajectory(train(copy.deepcopy(base), helper_step(agg), n=20),
                           train(copy.deepcopy(base), plain, n=20), 1e-6)


def test_famo_weights_and_losses_after_match_the_numpy_api():
    model = TwoTask()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    agg = mtgrad.Aggregator("famo", 2)
    twin = mtgrad.Aggregator("famo", 2)  # driven through the NumPy API with the same losses
    G_dummy = np.ones((2, 1))
    for x, ys in batches(15):
        opt.zero_grad()
        losses = model.losses(x, ys)
        w = mt.backward(losses, model.trunk.parameters(), agg)
        _, w_twin = twin(G_dummy, [float(loss) for loss in losses])
        assert np.array_equal(w, w_twin)
        opt.step()
        with torch.no_grad():
            after = model.losses(x, ys)
        assert mt.update(agg, after) is True
        twin.update([float(loss) for loss in after])
    assert not mt.update(mtgrad.Aggregator("mean", 2), after)


def test_clipping_loss_only_method_falls_back_to_the_gradients():
    model = TwoTask()
    agg = mtgrad.Aggregator("famo", 2, max_norm=1e-3)
    x, ys = batches(1)[0]
    mt.backward(model.losses(x, ys), model.trunk.parameters(), agg)
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.trunk.parameters()))
    assert norm <= 1e-3 * (1 + 1e-5)


def test_clipped_method_gives_heads_the_unclipped_weights():
    # Nash-MTL clips only the shared gradient (clip_grad_norm_ on the shared parameters), so
    # head i gets alpha_i grad L_i with the unclipped alpha: the weights a huge max_norm returns.
    model = TwoTask()
    x, ys = batches(1)[0]
    losses = model.losses(x, ys)
    want = [torch.autograd.grad(losses[i], list(model.heads[i].parameters()), retain_graph=True)
            for i in range(2)]
    ref = mtgrad.Aggregator("nash_mtl", 2, max_norm=1e9)
    w_ref = mt.backward(model.losses(x, ys), model.trunk.parameters(), ref)
    model.zero_grad()
    agg = mtgrad.Aggregator("nash_mtl", 2, max_norm=1e-3)
    w = mt.backward(model.losses(x, ys), model.trunk.parameters(), agg)
    assert agg.clip_scale() < 1 and np.allclose(w / agg.clip_scale(), w_ref, rtol=1e-9)
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.trunk.parameters()))
    assert norm <= 1e-3 * (1 + 1e-5)
    for i in range(2):
        for p, g in zip(model.heads[i].parameters(), want[i]):
            assert torch.allclose(p.grad, w_ref[i] * g, rtol=1e-5, atol=1e-7)


def test_methods_without_weights():
    model = TwoTask()
    agg = mtgrad.Aggregator("graddrop", 2)
    x, ys = batches(1)[0]
    losses = model.losses(x, ys)
    want = [torch.autograd.grad(losses[i], list(model.heads[i].parameters()), retain_graph=True)
            for i in range(2)]
    assert mt.backward(losses, model.trunk.parameters(), agg) is None
    for i in range(2):
        for p, g in zip(model.heads[i].parameters(), want[i]):
            assert torch.allclose(p.grad, g)


# ---------------------------------------------------------------- errors


def test_errors():
    model = TwoTask()
    x, ys = batches(1)[0]
    agg = mtgrad.Aggregator("cagrad", 2)
    with pytest.raises(ValueError, match="expected 2 task losses"):
        mt.backward(model.losses(x, ys)[:1], model.trunk.parameters(), agg)
    with pytest.raises(ValueError, match="twice"):
        p = list(model.trunk.parameters())
        mt.backward(model.losses(x, ys), p + p[:1], agg)
    losses = model.losses(x, ys)
    losses[1] = losses[1] * float("nan")
    with pytest.raises(mtgrad.NonFiniteError, match="row 1 of G contains NaN"):
        mt.backward(losses, model.trunk.parameters(), agg)
    dwa = mtgrad.Aggregator("dwa", 2)
    losses = model.losses(x, ys)
    losses[0] = losses[0] + float("inf")
    with pytest.raises(mtgrad.NonFiniteError, match=r"losses\[0\]"):
        mt.backward(losses, model.trunk.parameters(), dwa)


def test_retain_graph():
    model = TwoTask()
    x, ys = batches(1)[0]
    agg = mtgrad.Aggregator("mgda", 2)
    losses = model.losses(x, ys)
    mt.backward(losses, model.trunk.parameters(), agg, retain_graph=True)
    mt.backward(losses, model.trunk.parameters(), agg)  # the graph is still there
    with pytest.raises(RuntimeError):
        mt.backward(losses, model.trunk.parameters(), agg)


@pytest.mark.parametrize("method", ["famo", "cagrad"])
def test_example_trains(method):
    r = subprocess.run([sys.executable, os.path.join(REPO, "examples", "torch_mtl.py"), method,
                        "--steps", "60", "--every", "60"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.split()[0].isdigit()]
    assert [row[0] for row in rows] == ["0", "60"]
    assert all(float(b) < float(a) for a, b in zip(rows[0][1:], rows[1][1:])), r.stdout
