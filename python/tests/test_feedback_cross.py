"""Aggregator.feedback (marigold) and Aggregator.weights_from_cross_gram (sdmgrad double
sampling) in the Python binding: results against the C semantics restated here, and errors."""
import numpy as np
import pytest

import mtgrad

RNG = np.random.default_rng(5)


def test_feedback_mirror_step_by_hand():
    with mtgrad.Aggregator("marigold", 3) as a:
        assert a.has(mtgrad.Flag.NEEDS_FEEDBACK)
        w = a.weights_from_gram(None)
        np.testing.assert_array_equal(w, np.full(3, 1 / 3))
        h = np.array([1.0, 2.0, -4.0])
        a.feedback(h)
        lam = np.exp(-0.1 * h / 4)  # normalised by max |h| = 4
        np.testing.assert_allclose(a.weights_from_gram(None), lam / lam.sum(), rtol=1e-12)


def test_feedback_errors():
    with mtgrad.Aggregator("marigold", 3) as a:
        with pytest.raises(mtgrad.MtgradError):
            a.feedback([1.0, 2.0, 3.0])  # no call waiting for it
        a.weights_from_gram(None)
        with pytest.raises(mtgrad.MtgradError):
            a.feedback([1.0, np.nan, 3.0])
        with pytest.raises(mtgrad.MtgradError):
            a.feedback([1.0, 2.0])
        a.feedback([1.0, 2.0, 3.0])
        with pytest.raises(mtgrad.MtgradError):
            a.feedback([1.0, 2.0, 3.0])  # twice
    with mtgrad.Aggregator("mgda", 3) as m, pytest.raises(mtgrad.MtgradError):
        m.feedback([1.0, 2.0, 3.0])


def test_cross_gram_of_one_batch_is_single_sampling():
    G = RNG.standard_normal((4, 30))
    M = mtgrad.gram(G)
    with mtgrad.Aggregator("sdmgrad", 4) as a, \
            mtgrad.Aggregator("sdmgrad", 4, sampling="double") as b:
        assert b.has(mtgrad.Flag.CROSS_GRAM)
        for _ in range(3):
            np.testing.assert_array_equal(a.weights_from_gram(M), b.weights_from_cross_gram(M))


def test_cross_gram_asymmetric_and_errors():
    Ga, Gb = RNG.standard_normal((3, 20)), RNG.standard_normal((3, 20))
    C = Ga @ Gb.T
    with mtgrad.Aggregator("sdmgrad", 3, sampling="double") as b:
        w = b.weights_from_cross_gram(C)
        inner = w * 1.3 - 0.3 / 3  # (w_inner + lambda/k)/(1 + lambda), lambda = 0.3
        assert np.all(np.isfinite(w)) and np.all(inner >= -1e-15)
        assert abs(inner.sum() - 1) < 1e-12
        with pytest.raises(mtgrad.MtgradError):
            b.weights_from_cross_gram(None)
        with pytest.raises(mtgrad.MtgradError):
            b.weights_from_cross_gram(np.ones((2, 2)))
    with mtgrad.Aggregator("mgda", 3) as m, pytest.raises(mtgrad.MtgradError):
        m.weights_from_cross_gram(C)
