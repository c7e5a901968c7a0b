"""two_task_reference.py — plain-NumPy weights of MGDA, CAGrad and IMGrad for k = 2 from the
2 x 2 Gram matrix (closed form / bisection on the convex dual), written independently of the
library: the oracle of tests/test_torch.py and the plain side of bench/torch_helper_step.py."""
import math

import numpy as np


def _min_on_segment(fprime):
    """argmin over t in [0, 1] of a convex function given its derivative (bisection)."""
    if fprime(0.0) >= 0:
        return 0.0
    if fprime(1.0) <= 0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if fprime(mid) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _quad(M, t):
    return t * t * M[0, 0] + 2 * t * (1 - t) * M[0, 1] + (1 - t) ** 2 * M[1, 1]


def _dquad(M, t):
    return 2 * t * M[0, 0] + 2 * (1 - 2 * t) * M[0, 1] - 2 * (1 - t) * M[1, 1]


def mgda_weights(M):
    """Exact min-norm point of the segment [g0, g1]."""
    a, b, c = M[0, 0], M[0, 1], M[1, 1]
    t = min(max((c - b) / (a + c - 2 * b), 0.0), 1.0)
    return np.array([t, 1 - t])


def _cagrad_like(M, c, lin_coef, norm_coef):
    """x = argmin lin_coef·xᵀM1/k + norm_coef·φ·sqrt(xᵀMx + 1e-8); LibMTL's recovery (rescale 1)."""
    k = 2
    lin = M.sum(axis=1) / k
    phi = c * math.sqrt(M.sum() / k ** 2 + 1e-8) + 1e-8
    t = _min_on_segment(lambda t: lin_coef * (lin[0] - lin[1])
                        + norm_coef * phi * _dquad(M, t) / (2 * math.sqrt(_quad(M, t) + 1e-8)))
    x = np.array([t, 1 - t])
    lam = phi / (math.sqrt(max(_quad(M, t), 0.0)) + 1e-8)
    return (1 / k + lam * x) / (1 + c * c)


def cagrad_weights(M, c=0.5):
    return _cagrad_like(M, c, 1.0, 1.0)


def imgrad_weights(M, c=0.8):
    a = mgda_weights(M)
    lin = M.sum(axis=1) / 2
    g0g0, g0gm, gmgm = M.sum() / 4, a @ lin, a @ M @ a
    rho = min(max(g0gm / max(math.sqrt(g0g0 * gmgm), 1e-8), 0.0), 1.0)
    return _cagrad_like(M, c, 1.5 - rho, rho)


REFERENCES = {"cagrad": (cagrad_weights, False), "imgrad": (imgrad_weights, False),
              "mgda": (mgda_weights, True)}  # name: (weights of M, heads weighted)
