"""Backward and fused value-and-gradient of cross_entropy and nll_loss.

``nbops.cross_entropy_backward`` / ``nll_loss_backward`` against
``torch.autograd`` for every option (class-index and class-probability
targets, weight, ignore_index, label smoothing, every reduction and the legacy
flags, ``(C,)``, ``(N, C)`` and ``(N, C, d1, d2)`` inputs, float32 and float64,
non-contiguous inputs, random ``grad_output``), against central finite
differences in float64 (independent of PyTorch), ``*_with_grad`` against the
forward and the backward, thread-count determinism, ``out=``, bad inputs and
the forms inside ``@njit``.

Compile time is the cost: one kernel per (dtype, layout, loss, smoothing or
not), so the float32 cases are few and the arrays small.
"""

import json
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import nbops

torch = pytest.importorskip("torch")
F = torch.nn.functional
REDUCTIONS = ("none", "mean", "sum")


def case(shape, dtype, seed=0, ignore=True):
    """(x, class-index targets (one ignored where ``ignore``), weights, probabilities)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    t = rng.integers(0, C, tshape)
    if ignore and t.ndim:
        t.flat[1] = -100
    w = (rng.random(C) + 0.5).astype(dtype)
    p = rng.random(shape).astype(dtype)
    p /= p.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    return x, t, w, p


def torch_grad(fn, x, target, go, **kw):
    """(loss, grad of x) through torch.autograd, given grad_output ``go``."""
    xt = torch.tensor(x, requires_grad=True)
    if "weight" in kw and kw["weight"] is not None:
        kw["weight"] = torch.tensor(kw["weight"])
    loss = fn(xt, torch.tensor(target), **kw)
    loss.backward(torch.tensor(go, dtype=loss.dtype))
    return loss.detach().numpy(), xt.grad.numpy()


def random_go(red, loss_shape, dtype, seed=1):
    rng = np.random.default_rng(seed)
    if red == "none":
        return rng.standard_normal(loss_shape).astype(dtype)
    return np.asarray(rng.standard_normal(), dtype)


def tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-6)


def loss_shape(x):
    return (x.shape[0],) + x.shape[2:] if x.ndim > 1 else ()


def check_all(x, t, w, p, dtype, smoothing=(0.0, 0.3)):
    """Every option of both losses on one input, against torch.autograd."""
    for red in REDUCTIONS:
        go = random_go(red, loss_shape(x), dtype)
        for weight in (None, w):
            for eps in smoothing:
                kw = dict(weight=weight, reduction=red, label_smoothing=eps)
                for target in (t, p):
                    _, ref = torch_grad(F.cross_entropy, x, target, go, **kw)
                    got = nbops.cross_entropy_backward(go, x, target, **kw)
                    assert got.dtype == dtype and got.shape == x.shape
                    np.testing.assert_allclose(got, ref, **tol(dtype),
                                               err_msg=f"{x.shape} {red} {eps} {weight}")
            kw = dict(weight=weight, reduction=red)
            _, ref = torch_grad(F.nll_loss, x, t, go, **kw)
            got = nbops.nll_loss_backward(go, x, t, **kw)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, ref, **tol(dtype))


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 2, 3), (5,)])
def test_every_option_float64(shape):
    x, t, w, p = case(shape, np.float64)
    check_all(x, t, w, p, np.float64)


@pytest.mark.parametrize("shape", [(9, 6), (2, 5, 3, 4)])
def test_every_option_float32(shape):
    x, t, w, p = case(shape, np.float32)
    check_all(x, t, w, p, np.float32, smoothing=(0.0, 0.25))


def test_ignore_index_other_value_and_legacy_flags():
    x, t, w, p = case((6, 4), np.float64, ignore=False)
    t[[0, 3]] = 2
    go = random_go("mean", (), np.float64)
    for kw in (dict(ignore_index=2), dict(ignore_index=2, label_smoothing=0.2, weight=w),
               dict(size_average=False), dict(reduce=False, weight=w)):
        red = "none" if kw.get("reduce") is False else "mean"
        g = random_go(red, (6,), np.float64) if red == "none" else go
        for fn, fb in ((F.cross_entropy, nbops.cross_entropy_backward),
                       (F.nll_loss, nbops.nll_loss_backward)):
            if fn is F.nll_loss:
                kw = {k: v for k, v in kw.items() if k != "label_smoothing"}
            with warnings.catch_warnings():  # the legacy flags' deprecation warnings
                warnings.simplefilter("ignore")
                _, ref = torch_grad(fn, x, t, g, **kw)
                got = fb(g, x, t, **kw)
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12, err_msg=str(kw))
    # ignored rows are 0
    got = nbops.cross_entropy_backward(1.0, x, t, ignore_index=2, label_smoothing=0.1)
    assert not got[[0, 3]].any()


def test_all_ignored_gives_zero_gradient():
    x, t, w, _ = case((4, 3), np.float64)
    t[:] = -100
    for fb in (nbops.cross_entropy_backward, nbops.nll_loss_backward):
        g = fb(1.0, x, t, w)
        assert g.shape == x.shape and not g.any()
    loss, g = nbops.cross_entropy_with_grad(x, t, label_smoothing=0.2)
    assert np.isnan(loss) and not g.any()


def test_inf_and_nan_logits():
    """-inf entries get 0, rows holding +inf or NaN (or all -inf) are NaN, as in torch;
    an ignored row is 0 whatever it holds (torch: NaN for a non-finite ignored row, its
    softmax times 0; the documented difference)."""
    inf, nan = np.inf, np.nan
    x = np.array([[0.0, -inf, 1.0], [inf, 0.0, 1.0], [nan, 0.0, 1.0], [-inf, -inf, -inf],
                  [nan, inf, 3.0]])
    t = np.array([0, 1, 2, 0, -100])
    for eps in (0.0, 0.1):
        _, ref = torch_grad(F.cross_entropy, x, t, np.asarray(1.0), reduction="sum",
                            label_smoothing=eps)
        got = nbops.cross_entropy_backward(1.0, x, t, reduction="sum", label_smoothing=eps)
        assert np.isnan(ref[4]).all() and not got[4].any()
        np.testing.assert_array_equal(np.isnan(got[:4]), np.isnan(ref[:4]))
        np.testing.assert_allclose(got[:4], ref[:4], rtol=1e-12, atol=1e-15)
    assert not nbops.cross_entropy_with_grad(x, t)[1][4].any()

def test_non_contiguous_inputs_and_targets():
    x, t, w, p = case((8, 12), np.float64)
    xs, ps = x[::2, ::3], p[::2, ::3]
    ps = ps / ps.sum(axis=1, keepdims=True)
    ts = np.minimum(t[::2], 3)
    ts[1] = -100
    go = random_go("none", (4,), np.float64)
    for target in (ts, ps):
        _, ref = torch_grad(F.cross_entropy, np.ascontiguousarray(xs), target, go,
                            reduction="none", weight=w[:4], label_smoothing=0.1)
        got = nbops.cross_entropy_backward(go[::-1].copy()[::-1], xs, target, w[:4],
                                           reduction="none", label_smoothing=0.1)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    x4, t4, _, _ = case((2, 3, 4, 5), np.float32)
    xt = np.moveaxis(np.moveaxis(x4, 1, -1).copy(), -1, 1)  # not C-contiguous
    go4 = random_go("none", (2, 4, 5), np.float32)
    _, ref = torch_grad(F.cross_entropy, x4, t4, go4, reduction="none")
    np.testing.assert_allclose(nbops.cross_entropy_backward(go4, xt, t4, reduction="none"),
                               ref, rtol=2e-4, atol=2e-6)


# ------------------------------------------------------------ finite differences
def _ref_loss(x, target, w, red, eps, logits):
    """Float64 loss from the definition (independent of nbops and torch)."""
    xm = np.moveaxis(x, 1, -1) if x.ndim > 1 else x[None]
    C = xm.shape[-1]
    w = np.ones(C) if w is None else w
    if logits:
        z = xm - xm.max(axis=-1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    else:
        lp = xm
    if target.dtype.kind == "f":
        pm = np.moveaxis(target, 1, -1) if x.ndim > 1 else target[None]
        q = w * (pm * (1 - eps) + eps / C)
        loss = -(q * lp).sum(-1)
        denom = loss.size
    else:
        tm = target if x.ndim > 1 else target[None]
        keep = tm != -100
        tc = np.where(keep, tm, 0)
        wt = w[tc] * keep
        nll = -wt * np.take_along_axis(lp, tc[..., None], -1)[..., 0]
        smooth = -(w * lp).sum(-1) * keep
        loss = (1 - eps) * nll + eps / C * smooth
        denom = wt.sum()
    if red == "none":
        return loss if x.ndim > 1 else loss[0]
    return loss.sum() / (denom if red == "mean" else 1.0)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 2)])
def test_central_finite_differences(shape):
    x, t, w, p = case(shape, np.float64, seed=3)
    h = 1e-6
    for target, eps, red, logits in ((t, 0.2, "mean", True), (p, 0.1, "none", True),
                                     (t, 0.0, "sum", False), (t, 0.0, "none", True)):
        go = random_go(red, loss_shape(x), np.float64, seed=5)
        if logits:
            got = nbops.cross_entropy_backward(go, x, target, w, reduction=red,
                                               label_smoothing=eps)
        else:
            got = nbops.nll_loss_backward(go, x, target, w, reduction=red)
        num = np.empty_like(x)
        for i in np.ndindex(x.shape):
            xp, xn = x.copy(), x.copy()
            xp[i] += h
            xn[i] -= h
            num[i] = np.sum(go * (_ref_loss(xp, target, w, red, eps, logits)
                                  - _ref_loss(xn, target, w, red, eps, logits))) / (2 * h)
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8, err_msg=f"{red} {eps}")


# ------------------------------------------------------------ the fused forms
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_with_grad_is_forward_and_backward(dtype):
    for shape in ((7, 5), (2, 4, 3, 5)):
        x, t, w, p = case(shape, dtype)
        for red in REDUCTIONS:
            ones = np.ones(loss_shape(x), dtype) if red == "none" else 1.0
            for kw, target in ((dict(weight=w, label_smoothing=0.2), t), (dict(), t),
                               (dict(weight=w), p)):
                loss, grad = nbops.cross_entropy_with_grad(x, target, reduction=red, **kw)
                ref = nbops.cross_entropy(x, target, reduction=red, **kw)
                assert type(loss) is type(ref) and np.array_equal(loss, ref)  # same bits
                np.testing.assert_array_equal(
                    grad, nbops.cross_entropy_backward(ones, x, target, reduction=red, **kw))
            loss, grad = nbops.nll_loss_with_grad(x, t, w, reduction=red)
            assert np.array_equal(loss, nbops.nll_loss(x, t, w, reduction=red))
            np.testing.assert_array_equal(grad, nbops.nll_loss_backward(ones, x, t, w,
                                                                        reduction=red))
            _, ref = torch_grad(F.cross_entropy, x, t, ones, reduction=red)
            np.testing.assert_allclose(nbops.cross_entropy_with_grad(x, t, reduction=red)[1],
                                       ref, **tol(dtype))


def test_out():
    x, t, w, _ = case((5, 4), np.float64)
    out = np.full_like(x, 7.0)
    res = nbops.cross_entropy_backward(1.0, x, t, w, out=out)
    assert res is out
    # (the same kernel; written into out= or into a new array, the vectorized row
    # loops may round the last bit differently: a CI run saw 1 ulp on 3 of 20)
    np.testing.assert_allclose(out, nbops.cross_entropy_backward(1.0, x, t, w),
                               rtol=1e-15, atol=1e-17)
    out32 = np.empty(x.shape, np.float32)
    with pytest.raises(TypeError, match="out"):
        nbops.cross_entropy_backward(1.0, x, t, out=out32)
    outT = np.empty(x.shape[::-1]).T  # Fortran order: computed, then copied
    loss, g = nbops.nll_loss_with_grad(x, t, out=outT)
    assert g is outT
    np.testing.assert_array_equal(outT, nbops.nll_loss_backward(1.0, x, t))
    with pytest.raises(ValueError, match="out has shape"):
        nbops.nll_loss_backward(1.0, x, t, out=np.empty((4, 5)))


_THREAD_SCRIPT = """
import json, sys
import numba
import numpy as np
import nbops
rng = np.random.default_rng(0)
x = (rng.standard_normal((1024, 200)) * 3).astype(np.float32)
t = rng.integers(0, 200, 1024)
t[::7] = -100
w = rng.random(200).astype(np.float32)
x4 = (rng.standard_normal((4, 50, 30, 30)) * 3).astype(np.float32)
t4 = rng.integers(0, 50, (4, 30, 30))
l1, g1 = nbops.cross_entropy_with_grad(x, t, w, label_smoothing=0.1)
l2, g2 = nbops.cross_entropy_with_grad(x4, t4)
l3, g3 = nbops.nll_loss_with_grad(x, t, w)
json.dump([float(l1), float(l2), float(l3), g1.tobytes().hex()[:20000],
           g2.tobytes().hex()[:20000]], sys.stdout)
"""


def _run_threads(n, threshold):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n), NBOPS_PARALLEL_THRESHOLD=str(threshold))
    out = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out)


def test_identical_on_any_thread_count():
    """Parallel kernels on 1 and 2 threads and the serial kernels: the same bits."""
    serial = _run_threads(2, 10**12)
    assert _run_threads(1, 1000) == serial
    assert _run_threads(2, 1000) == serial


# ------------------------------------------------------------ bad inputs
def test_bad_inputs_name_the_argument():
    x, t, w, p = case((5, 4), np.float64)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.cross_entropy_backward(np.ones(5), x, t)  # 'mean' wants a scalar
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.nll_loss_backward(np.ones(4), x, t, reduction="none")
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.cross_entropy_backward(1.0, x, t, reduction="none")
    with pytest.raises(TypeError, match="grad_output"):
        nbops.cross_entropy_backward(np.ones(5, np.int64), x, t, reduction="none")
    bad = t.copy()
    bad[2] = 4
    for fn in (lambda: nbops.cross_entropy_backward(1.0, x, bad),
               lambda: nbops.nll_loss_with_grad(x, bad),
               lambda: nbops.cross_entropy_with_grad(x, bad - 5)):
        with pytest.raises(ValueError, match="target: class index"):
            fn()
    with pytest.raises(TypeError, match="target"):
        nbops.nll_loss_backward(1.0, x, p)
    with pytest.raises(ValueError, match="weight"):
        nbops.cross_entropy_with_grad(x, t, np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        nbops.cross_entropy_backward(1.0, x, t, label_smoothing=2.0)
    with pytest.raises(ValueError, match="reduction"):
        nbops.nll_loss_with_grad(x, t, reduction="max")
    with pytest.raises(ValueError, match="target has shape"):
        nbops.cross_entropy_backward(1.0, x, t[:3])


# ------------------------------------------------------------ inside @njit
@numba.njit
def _jit_grads(x, t, w, p, go):
    return (nbops.cross_entropy_backward(go, x, t, w, reduction="none", label_smoothing=0.1),
            nbops.cross_entropy_with_grad(x, t),
            nbops.nll_loss_backward(np.float32(0.5), x, t, w, ignore_index=-100),
            nbops.nll_loss_with_grad(x, t, reduction="sum"),
            nbops.cross_entropy_with_grad(x, p, w, reduction="none"))


def test_inside_njit():
    # every form on float32 (N, C) in one compiled function (compile time)
    x, t, w, p = case((6, 4), np.float32)
    go = random_go("none", (6,), np.float32)
    a, (l1, b), c, (l2, d), (l3, e) = _jit_grads(x, t, w, p, go)
    np.testing.assert_array_equal(a, nbops.cross_entropy_backward(
        go, x, t, w, reduction="none", label_smoothing=0.1))
    assert l1 == nbops.cross_entropy(x, t)
    np.testing.assert_array_equal(b, nbops.cross_entropy_with_grad(x, t)[1])
    np.testing.assert_array_equal(c, nbops.nll_loss_backward(np.float32(0.5), x, t, w,
                                                             ignore_index=-100))
    assert l2 == nbops.nll_loss(x, t, reduction="sum")
    np.testing.assert_array_equal(d, nbops.nll_loss_with_grad(x, t, reduction="sum")[1])
    np.testing.assert_array_equal(l3, nbops.cross_entropy(x, p, w, reduction="none"))
    _, ref = torch_grad(F.cross_entropy, x, p, np.ones(6, np.float32), weight=w,
                        reduction="none")
    np.testing.assert_allclose(e, ref, rtol=2e-4, atol=2e-6)
    bad = t.copy()
    bad[3] = 7
    with pytest.raises(ValueError, match="out of range"):
        _jit_grads(x, bad, w, p, go)
    with pytest.raises(ValueError, match="grad_output"):
        _jit_grads(x, t, w, p, go[:5])
