"""mtgrad.torch — one balanced backward pass for a PyTorch multi-task model.

    agg = mtgrad.Aggregator("cagrad", k)
    losses = [loss_fn_i(model(x)) for i in range(k)]
    optimizer.zero_grad()
    mtgrad.torch.backward(losses, model.trunk.parameters(), agg)
    optimizer.step()
    mtgrad.torch.update(agg, losses_after)   # FAMO-like methods only; a no-op for the others

What backward() does depends on the method's flags (read from the C registry):
  * methods that need the task gradients (Gram or Jacobian methods): one torch.autograd.grad per
    task. The shared parameters' gradients of task i are written into row i of one preallocated,
    contiguous k x d buffer (float32; float64 when every shared parameter is float64) that the
    library reads in place; the direction it returns is written into the shared parameters'
    .grad (overwriting it). The same autograd.grad calls return the gradients of every other
    parameter the losses depend on (the task-specific "heads", found by walking the graph, or
    given as task_params), so no extra backward pass is needed for them;
  * loss-only methods (weights from the losses and the method's state, e.g. mean, DWA, FAMO):
    the weights first, then a single backward of Σ w_i L_i.
Heads follow methods.md §0.3: methods flagged HEADS_WEIGHTED (their references train by a
backward of Σ w_i L_i) give head parameters Σ_i w_i ∇L_i, the others the unweighted Σ_i ∇L_i.
Head gradients are accumulated into .grad, as loss.backward() would.

Methods that clip the direction (max_norm of Nash-MTL, FAMO, FairGrad) return clipped weights;
as in the references, which clip only the shared parameters' gradient, heads get the unclipped
weights (weights / Aggregator.clip_scale()).
"""
import numpy as np
import torch

from ._aggregator import as_vector
from ._errors import InvalidArgumentError
from ._registry import Flag

__all__ = ["backward", "update", "task_parameters"]

_GRADIENT_METHODS = Flag.NEEDS_GRAM | Flag.NEEDS_JACOBIAN


def _losses(losses, k):
    if isinstance(losses, torch.Tensor):
        losses = list(losses.reshape(-1)) if losses.dim() <= 1 else None
    else:
        losses = list(losses)
    if losses is None or len(losses) != k:
        raise ValueError("backward: expected %d task losses (one scalar each) for this "
                         "aggregator" % k)
    for i, loss in enumerate(losses):
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("backward: loss %d is not a scalar tensor" % i)
    return losses


def _loss_values(losses):
    return np.array([float(loss.detach()) for loss in losses], dtype=np.float64)


def _shared(params):
    params = list(params)
    if not params:
        raise ValueError("backward: shared_params is empty")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("backward: a parameter appears twice in shared_params")
    for p in params:
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise ValueError("backward: every shared parameter must be a tensor with "
                             "requires_grad=True")
        if p.device.type != "cpu":
            raise TypeError("backward: mtgrad works on CPU tensors; a shared parameter is on %s"
                            % p.device)
    return params


def task_parameters(losses, shared_params):
    """The leaf tensors with requires_grad that the losses depend on, other than the shared
    parameters (the task-specific heads), in a fixed order (graph walk order)."""
    shared = {id(p) for p in shared_params}
    seen, out, found = set(), [], set()
    stack = [loss.grad_fn for loss in losses if loss.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)  # AccumulateGrad nodes hold their leaf
        if var is not None:
            if id(var) not in shared and id(var) not in found:
                found.add(id(var))
                out.append(var)
            continue
        stack.extend(nxt for nxt, _ in reversed(fn.next_functions) if nxt is not None)
    return out


def _buffers(aggregator, shared):
    """The k x d gradient matrix, the direction and the weights, reused across calls."""
    dtype = torch.float64 if all(p.dtype == torch.float64 for p in shared) else torch.float32
    sizes = tuple(p.numel() for p in shared)
    key = ("torch.backward", sizes, dtype)
    buf = aggregator.scratch.get(key)
    if buf is None:
        d = sum(sizes)
        buf = (torch.empty((aggregator.k, d), dtype=dtype), torch.empty(d, dtype=dtype),
               np.empty(aggregator.k, dtype=np.float64))
        aggregator.scratch.clear()  # one shape at a time: a model rarely alternates
        aggregator.scratch[key] = buf
    return buf


def _write_row(row, grads, shared):
    if all(g is not None and g.dtype == row.dtype for g in grads):
        torch.cat([g.reshape(-1) for g in grads], out=row)  # sizes match: written in place
        return
    off = 0
    for g, p in zip(grads, shared):
        n = p.numel()
        if g is None:
            row[off:off + n].zero_()
        else:
            row[off:off + n].copy_(g.reshape(-1))
        off += n


def _set_grad(p, value):
    """p.grad = value (a view into our buffer, so copied)."""
    if p.grad is None or p.grad.shape != p.shape or p.grad.dtype != p.dtype:
        p.grad = value.view(p.shape).to(dtype=p.dtype, copy=True)
    else:
        p.grad.copy_(value.view(p.shape))


def _add_grad(p, g, owned):
    """p.grad += g. autograd.grad may hand out the same (even expanded) tensor for several
    inputs, so a tensor we did not create ourselves is copied before it becomes a .grad."""
    if p.grad is not None:
        p.grad.add_(g)
    elif owned and g.dtype == p.dtype:
        p.grad = g.contiguous()
    else:
        p.grad = g.to(dtype=p.dtype, memory_format=torch.contiguous_format, copy=True)


def _combine_heads(per_task, weights):
    """(Σ_i c_i g_i over the tasks that reach the head, whether we created that tensor)."""
    total, owned = None, False
    for i, g in enumerate(per_task):
        if g is None:
            continue
        fresh = weights is not None
        if fresh:
            g = g * float(weights[i])
        if total is None:
            total, owned = g, fresh
        else:
            total, owned = total + g, True
    return total, owned


def _per_task(losses, shared, heads, aggregator, values, retain_graph):
    G, direction, w = _buffers(aggregator, shared)
    k, d = G.shape
    inputs = shared + heads
    head_grads = []
    for i, loss in enumerate(losses):
        grads = torch.autograd.grad(loss, inputs, retain_graph=retain_graph or i < k - 1,
                                    allow_unused=True)
        _write_row(G[i], grads[:len(shared)], shared)
        head_grads.append(grads[len(shared):])
    has_w = aggregator.has(Flag.HAS_WEIGHTS)
    aggregator.aggregate_into(G.data_ptr(), k, d, d, G.dtype == torch.float32,
                              values.ctypes.data, direction.data_ptr(),
                              w.ctypes.data if has_w else None)
    weights = w.copy() if has_w else None
    with torch.no_grad():
        for p, v in zip(shared, torch.split(direction, [p.numel() for p in shared])):
            _set_grad(p, v)
        hw = weights if has_w and aggregator.has(Flag.HEADS_WEIGHTED) else None
        if hw is not None:
            hw = hw / aggregator.clip_scale()  # heads are not clipped in the references
        for j, h in enumerate(heads):
            g, owned = _combine_heads([hg[j] for hg in head_grads], hw)
            if g is not None:
                _add_grad(h, g, owned)
    return weights


def _loss_only(losses, shared, aggregator, values, retain_graph):
    w = aggregator.weights_from_gram(None, values)
    for p in shared:
        # the shared gradient is overwritten, as in the other path; None rather than zeros lets
        # autograd hand over its result buffer instead of adding it to a zeroed one
        p.grad = None
    total = sum(float(w[i]) * loss.reshape(()) for i, loss in enumerate(losses))
    total.backward(retain_graph=retain_graph)
    return w


def backward(losses, shared_params, aggregator, *, retain_graph=False, task_params=None):
    """Balanced gradients for one step: shared_params' .grad gets the aggregator's direction,
    the other parameters the losses depend on get their per-task gradients (see the module doc).
    losses: k scalar tensors (a list or a 1-D tensor). task_params: the non-shared parameters,
    to skip the graph walk that finds them. Returns the task weights (NumPy) or None."""
    k = aggregator.k
    losses = _losses(losses, k)
    shared = _shared(shared_params)
    values = _loss_values(losses)
    flags = aggregator.flags
    if (not flags & _GRADIENT_METHODS and flags & Flag.HAS_WEIGHTS
            and flags & Flag.HEADS_WEIGHTED):
        try:
            return _loss_only(losses, shared, aggregator, values, retain_graph)
        except InvalidArgumentError:
            # e.g. clipping the direction's norm needs the gradients after all; the failed
            # call left the aggregator unchanged, so the general path can run instead
            pass
    heads = list(task_params) if task_params is not None else task_parameters(losses, shared)
    return _per_task(losses, shared, heads, aggregator, values, retain_graph)


def update(aggregator, losses_after):
    """Pass the losses re-evaluated after the optimizer step to methods that want them
    ("losses_after" in needs, e.g. FAMO). Returns True if the method took them, False (and does
    nothing) for the others, so training loops can call it unconditionally."""
    if not aggregator.has(Flag.NEEDS_LOSSES_AFTER):
        return False
    if isinstance(losses_after, torch.Tensor):
        values = losses_after.detach().reshape(-1).to(torch.float64).numpy()
    else:
        values = np.array([float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
                           for x in losses_after], dtype=np.float64)
    aggregator.update(as_vector(values, aggregator.k, "losses_after"))
    return True
