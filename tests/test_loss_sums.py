"""The losses' float64 sums (issue 13): the pointwise losses (nbops/_ops/losses.py and
the losses that run its kernels: margin_ranking_loss, gaussian_nll_loss) and
multilabel_soft_margin_loss sum with one vectorized compiled sum
(``losses._block_sum``, compiled with ``reassoc``). Checked here:

* a sum over 1e5 values plus a tail (neither a multiple of the chunk, the
  block nor the vector width) against a float64 reference: the loss formula
  in float64 NumPy, and the exact sum (``math.fsum``) of the losses nbops
  returns with ``reduction='none'``;
* the same bits with the serial kernels and the parallel ones on 1 and 2
  threads (tests/_threads.py);
* ``<loss>_with_grad``'s value equals the forward's, bit for bit (both
  reductions; the weighted and the third-operand kernels too).
"""

import math

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count

import nbops

N = 100_000 + 37
FLOATS = (np.float32, np.float64)


def _data(dtype, n=N):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    t = rng.standard_normal(n).astype(dtype)
    sign = np.where(rng.standard_normal(n) > 0, 1.0, -1.0).astype(dtype)
    var = rng.uniform(0.1, 2.0, n).astype(dtype)
    prob = rng.uniform(0.0, 1.0, n).astype(dtype)
    return x, t, sign, var, prob


def _cases(dtype):
    """name -> (forward(reduction), with_grad(reduction) -> (value, grads), float64
    reference of the elementwise losses)."""
    x, t, sign, var, prob = _data(dtype)
    w = np.abs(t) + dtype(0.5)
    pw = np.linspace(0.5, 2.0, 7).astype(dtype)
    x7 = x[: N - N % 7].reshape(-1, 7)
    p7 = prob[: N - N % 7].reshape(-1, 7)
    X, T, S, V, P = (a.astype(np.float64) for a in (x, t, sign, var, prob))
    W = w.astype(np.float64)
    D = X - T

    def huber(d, delta):
        a = np.abs(d)
        return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))

    def logsig(z):
        return np.minimum(z, 0) - np.log1p(np.exp(-np.abs(z)))

    X7, P7 = x7.astype(np.float64), p7.astype(np.float64)
    PW = pw.astype(np.float64)
    return {
        "l1": (lambda r: nbops.l1_loss(x, t, reduction=r),
               lambda r: nbops.l1_loss_with_grad(x, t, reduction=r), np.abs(D)),
        "mse": (lambda r: nbops.mse_loss(x, t, reduction=r),
                lambda r: nbops.mse_loss_with_grad(x, t, reduction=r), D * D),
        "mse_weighted": (lambda r: nbops.mse_loss(x, t, reduction=r, weight=w),
                         lambda r: nbops.mse_loss_with_grad(x, t, reduction=r, weight=w),
                         D * D * W),
        "smooth_l1": (lambda r: nbops.smooth_l1_loss(x, t, reduction=r, beta=0.5),
                      lambda r: nbops.smooth_l1_loss_with_grad(x, t, reduction=r, beta=0.5),
                      huber(D, 0.5) / 0.5),
        "huber": (lambda r: nbops.huber_loss(x, t, reduction=r, delta=0.7),
                  lambda r: nbops.huber_loss_with_grad(x, t, reduction=r, delta=0.7),
                  huber(D, 0.7)),
        "soft_margin": (lambda r: nbops.soft_margin_loss(x, sign, reduction=r),
                        lambda r: nbops.soft_margin_loss_with_grad(x, sign, reduction=r),
                        -logsig(-(-S * X))),
        "margin_ranking": (
            lambda r: nbops.margin_ranking_loss(x, t, sign, margin=0.25, reduction=r),
            lambda r: nbops.margin_ranking_loss_with_grad(x, t, sign, margin=0.25,
                                                          reduction=r),
            np.maximum(0.0, -S * (X - T) + 0.25)),
        "gaussian_nll": (
            lambda r: nbops.gaussian_nll_loss(x, t, var, reduction=r),
            lambda r: nbops.gaussian_nll_loss_with_grad(x, t, var, reduction=r),
            0.5 * (np.log(V) + D * D / V)),
        "bce_logits_pos_weight": (
            lambda r: nbops.binary_cross_entropy_with_logits(x7, p7, pos_weight=pw,
                                                             reduction=r),
            lambda r: nbops.binary_cross_entropy_with_logits_with_grad(
                x7, p7, pos_weight=pw, reduction=r),
            -(PW * P7 * logsig(X7) + (1 - P7) * logsig(-X7))),
    }


def _fsum_mean(values, reduction, divisor=None):
    s = math.fsum(np.ravel(values).astype(np.float64))
    return s if reduction == "sum" else s / (np.size(values) if divisor is None else divisor)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sums_against_float64(dtype):
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    weight_sum = math.fsum(np.abs(_data(dtype)[1]).astype(np.float64) + 0.5)
    for name, (forward, _, ref) in _cases(dtype).items():
        # a weighted 'mean' divides by the sum of the weights (PyTorch)
        divisor = weight_sum if name == "mse_weighted" else None
        for reduction in ("sum", "mean"):
            got = forward(reduction)
            assert got.dtype == dtype, name
            np.testing.assert_allclose(float(got), _fsum_mean(ref, reduction, divisor),
                                       rtol=rtol, err_msg=name)
            # the sum itself: against the exact sum of nbops' own losses
            exact = _fsum_mean(forward("none"), reduction, divisor)
            assert abs(float(got) - exact) <= 1e-12 * abs(exact) + (
                abs(exact) * np.finfo(dtype).eps / 2), name


@pytest.mark.parametrize("dtype", FLOATS)
def test_with_grad_value_is_the_forward_value(dtype):
    for name, (forward, with_grad, _) in _cases(dtype).items():
        for reduction in ("sum", "mean"):
            value, _ = with_grad(reduction)
            want = forward(reduction)
            assert value.dtype == want.dtype, name
            assert value.tobytes() == want.tobytes(), (name, reduction)


def _multilabel_data(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((97, 1031)).astype(dtype)
    y = (rng.uniform(size=x.shape) > 0.5).astype(dtype)
    w = rng.uniform(0.5, 1.5, x.shape[1]).astype(dtype)
    return x, y, w


@pytest.mark.parametrize("dtype", FLOATS)
def test_multilabel_soft_margin_rows(dtype):
    x, y, w = _multilabel_data(dtype)
    X, Y, W = (a.astype(np.float64) for a in (x, y, w))
    logsig = np.minimum(X, 0) - np.log1p(np.exp(-np.abs(X)))
    logsig_neg = np.minimum(-X, 0) - np.log1p(np.exp(-np.abs(X)))
    ref_rows = -(Y * logsig + (1 - Y) * logsig_neg) * W
    rows = nbops.multilabel_soft_margin_loss(x, y, w, reduction="none")
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(rows, [math.fsum(r) / x.shape[1] for r in ref_rows], rtol=rtol)
    for reduction in ("sum", "mean"):
        value, grad = nbops.multilabel_soft_margin_loss_with_grad(x, y, w, reduction=reduction)
        want = nbops.multilabel_soft_margin_loss(x, y, w, reduction=reduction)
        assert value.tobytes() == want.tobytes()
        np.testing.assert_array_equal(
            grad, nbops.multilabel_soft_margin_loss_backward(1.0, x, y, w,
                                                             reduction=reduction))


@pytest.mark.parametrize("dtype", FLOATS)
def test_same_bits_on_any_thread_count(monkeypatch, dtype):
    x, t, sign, var, prob = _data(dtype)
    mx, my, mw = _multilabel_data(dtype)

    def run():
        out = []
        for r in ("sum", "none"):
            out.append(nbops.mse_loss(x, t, reduction=r))
            out.extend(np.atleast_1d(v) for v in [nbops.mse_loss_with_grad(x, t, reduction=r)[0]])
        value, (gx, gv) = nbops.gaussian_nll_loss_with_grad(x, t, var, reduction="sum")
        out += [np.atleast_1d(nbops.gaussian_nll_loss(x, t, var, reduction="mean")),
                np.atleast_1d(value), gx, gv]
        value, grad = nbops.multilabel_soft_margin_loss_with_grad(mx, my, mw)
        out += [np.atleast_1d(nbops.multilabel_soft_margin_loss(mx, my, mw)),
                np.atleast_1d(value), grad]
        return out

    assert_same_bits_on_any_thread_count(monkeypatch, run)
