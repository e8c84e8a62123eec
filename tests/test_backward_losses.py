"""The losses' backwards (``nbops.<loss>_backward``) and fused value and gradient
(``nbops.<loss>_with_grad``): against ``torch.autograd`` for every option and
reduction, against central finite differences of float64 formulas written here,
inside ``@njit``, and their argument handling. Arrays are small (the serial
kernels only), and each (loss, dtype, weighted) kernel compiles once: the
backward and the with_grad of a loss share it."""

import warnings

import numpy as np
import pytest
from _reference import reference
from numba import njit

import nbops
from nbops._ops import table

DTYPES = [np.float32, np.float64]
SHAPE = (4, 6)

#: (loss, options): "full" / "C" stand for a weight of the input's shape / of its
#: last axis (broadcast), drawn in ``_data``.
CASES = [
    ("l1_loss", {}), ("l1_loss", {"weight": "full"}),
    ("mse_loss", {}), ("mse_loss", {"weight": "full"}),
    ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0}),
    ("huber_loss", {}), ("huber_loss", {"delta": 0.5, "weight": "full"}),
    ("kl_div", {}), ("kl_div", {"log_target": True}),
    ("binary_cross_entropy", {}), ("binary_cross_entropy", {"weight": "C"}),
    ("binary_cross_entropy_with_logits", {}),
    ("binary_cross_entropy_with_logits", {"weight": "full"}),
    ("binary_cross_entropy_with_logits", {"pos_weight": "C"}),
    ("binary_cross_entropy_with_logits", {"weight": "C", "pos_weight": "C"}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]


def _reductions(name):
    return ["mean", "sum", "none"] + (["batchmean"] if name == "kl_div" else [])


def _data(name, kw, dtype, seed=0):
    """(input, target, options with arrays) with the loss's kinks among the elements."""
    rng = np.random.default_rng(seed)
    if name == "kl_div":
        x = np.log(rng.uniform(0.05, 1, SHAPE))
        t = rng.uniform(0, 1, SHAPE)
        t[0, :2] = 0.0  # 0 log 0
        if kw.get("log_target"):
            t = np.log(rng.uniform(0.05, 1, SHAPE))
    elif name == "binary_cross_entropy":
        x = rng.uniform(0.02, 0.98, SHAPE)
        t = rng.uniform(0, 1, SHAPE)
        x[0, :4] = [0.0, 1.0, 0.0, 1.0]  # the clamped denominator
        t[0, :4] = [0.0, 1.0, 1.0, 0.0]
    elif name == "binary_cross_entropy_with_logits":
        x = rng.uniform(-5, 5, SHAPE)
        t = rng.uniform(0, 1, SHAPE)
    else:  # x - t exactly 0, +-0.5, +-1 (the kinks of l1, smooth_l1 and huber)
        x = rng.uniform(-3, 3, SHAPE)
        t = rng.uniform(-3, 3, SHAPE)
        x[0, :5] = [1.0, 1.5, 0.5, 2.0, 0.0]
        t[0, :5] = 1.0
    options = {}
    for k, v in kw.items():
        if v == "full":
            v = rng.uniform(0.5, 2, SHAPE)
        elif v == "C":
            v = rng.uniform(0.5, 3, SHAPE[-1])
        options[k] = v
    cast = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    return x.astype(dtype), t.astype(dtype), cast


def _grad_output(reduction, dtype, seed=1):
    if reduction == "none":
        return np.random.default_rng(seed).uniform(-2, 2, SHAPE).astype(dtype)
    return 0.75


def _strided(a):
    """A non-contiguous copy of ``a`` (a view into a larger array)."""
    big = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    big[:, ::2] = a
    return big[:, ::2]


# ------------------------------------------------------------------ torch.autograd
def _torch_grad(name, x, t, options, reduction, g):
    torch = pytest.importorskip("torch")
    xt = torch.from_numpy(x.copy()).requires_grad_()
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
          for k, v in options.items()}
    with warnings.catch_warnings():  # kl_div's 'mean' warning, the legacy flags
        warnings.simplefilter("ignore")
        out = getattr(torch.nn.functional, name)(xt, torch.from_numpy(t), reduction=reduction,
                                                 **kw)
    out.backward(torch.from_numpy(g) if isinstance(g, np.ndarray)
                 else torch.tensor(g, dtype=xt.dtype))
    return xt.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_against_torch_autograd(name, kw, dtype):
    backward = getattr(nbops, f"{name}_backward")
    x, t, options = _data(name, kw, dtype)
    tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
    for reduction in _reductions(name):
        g = _grad_output(reduction, dtype)
        want = _torch_grad(name, x, t, options, reduction, g)
        for xs in (x, _strided(x)):
            got = backward(g, xs, t, reduction=reduction, **options)
            assert got.dtype == dtype and got.shape == x.shape
            np.testing.assert_allclose(got, want, rtol=4 * tol, atol=tol * np.abs(want).max(),
                                       err_msg=f"{name} {kw} {reduction}")
        if name in ("l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss"):
            kinks = slice(0, 5)  # the kinks exactly (sign(0) = 0, the switch points)
            np.testing.assert_array_equal(
                np.sign(got[0, kinks]), np.sign(want[0, kinks]), err_msg=f"{name} {kw}")


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_with_grad_is_forward_and_backward(name, kw):
    """The value is the forward's, bit for bit; the gradient the backward's."""
    forward = getattr(nbops, name)
    backward = getattr(nbops, f"{name}_backward")
    with_grad = getattr(nbops, f"{name}_with_grad")
    for dtype in DTYPES:
        x, t, options = _data(name, kw, dtype)
        for reduction in _reductions(name):
            loss, grad = with_grad(x, t, reduction=reduction, **options)
            want = forward(x, t, reduction=reduction, **options)
            assert type(loss) is type(want)
            np.testing.assert_array_equal(loss, want)
            g = np.ones(SHAPE, dtype) if reduction == "none" else 1.0
            np.testing.assert_array_equal(grad, backward(g, x, t, reduction=reduction,
                                                          **options))
            assert grad.dtype == dtype


def test_conventions():
    """PyTorch autograd's conventions, written out (independent of torch)."""
    x, t = np.array([1.0, 2.0, 0.0, np.nan]), np.array([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(nbops.l1_loss_backward(1.0, x, t, reduction="sum"),
                                  [0.0, 1.0, -1.0, 0.0])  # sign(0) = sign(nan) = 0
    np.testing.assert_array_equal(
        nbops.smooth_l1_loss_backward(1.0, x, t, reduction="sum", beta=0.0),
        [0.0, 1.0, -1.0, 0.0])  # beta = 0 is l1_loss
    g = nbops.smooth_l1_loss_backward(1.0, x, t, reduction="sum", beta=1.0)
    np.testing.assert_array_equal(g[:3], [0.0, 1.0, -1.0])  # |d| == beta: d / beta
    assert np.isnan(g[3])
    np.testing.assert_array_equal(
        nbops.huber_loss_backward(1.0, x[:3], t[:3], reduction="sum", delta=0.5),
        [0.0, 0.5, -0.5])
    # binary_cross_entropy: the denominator clamped at 1e-12 (PyTorch's float32 constant)
    eps = float(np.float32(1e-12))
    p, y = np.array([0.0, 1.0, 0.0, 0.5]), np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(
        nbops.binary_cross_entropy_backward(1.0, p, y, reduction="sum"),
        [-1 / eps, 1 / eps, 0.0, -2.0])
    # kl_div: -target (the gradient does not see the 0 log 0 convention)
    np.testing.assert_array_equal(
        nbops.kl_div_backward(2.0, np.zeros(2), np.array([0.0, 0.5]), reduction="sum"),
        [-0.0, -1.0])
    # 'mean' divides by the weight sum (l1, mse) or by the count (huber)
    w = np.array([1.0, 3.0])
    np.testing.assert_array_equal(
        nbops.l1_loss_backward(1.0, np.array([2.0, 2.0]), np.zeros(2), weight=w), [0.25, 0.75])
    np.testing.assert_array_equal(
        nbops.huber_loss_backward(1.0, np.array([0.5, 0.5]), np.zeros(2), weight=w),
        [0.25, 0.75])


# ------------------------------------------------------------ finite differences
def _loss64(name, x, t, options):
    """The unreduced losses in float64, weighted (formulas independent of nbops)."""
    o = dict(options)
    w = o.pop("weight", None)
    if name == "kl_div":
        if o.get("log_target"):
            loss = np.exp(t) * (t - x)
        else:
            loss = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0) - t * x
    elif name == "binary_cross_entropy":
        loss = -(t * np.log(x) + (1 - t) * np.log1p(-x))
    elif name == "binary_cross_entropy_with_logits":
        pw = o.get("pos_weight", 1.0)
        logsig = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
        loss = (1 - t) * x - (1 + (pw - 1) * t) * logsig
    else:
        loss = reference(name)(x, t, **o)
    return loss if w is None else loss * w


def _divisor(name, reduction, options, n, batch):
    if reduction == "mean":
        w = options.get("weight")
        if w is not None and name in ("l1_loss", "mse_loss"):
            return w.sum()
        return n
    return batch if reduction == "batchmean" else 1


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_against_finite_differences(name, kw):
    h = 1e-6
    x, t, options = _data(name, kw, np.float64, seed=2)
    if name == "binary_cross_entropy":
        x = np.clip(x, 0.05, 0.95)
    d = x - t
    away = np.ones(SHAPE, bool)
    for k in (0.0, 0.5, 1.0, options.get("beta", 1.0), options.get("delta", 1.0)):
        away &= np.abs(np.abs(d) - k) > 1e-3
    if name in ("kl_div", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        away[:] = True
    for reduction in _reductions(name):
        g = _grad_output(reduction, np.float64)
        scale = g / _divisor(name, reduction, options, x.size, SHAPE[0])
        fd = scale * (_loss64(name, x + h, t, options)
                      - _loss64(name, x - h, t, options)) / (2 * h)
        got = getattr(nbops, f"{name}_backward")(g, x, t, reduction=reduction, **options)
        np.testing.assert_allclose(got[away], fd[away], rtol=1e-6, atol=1e-8,
                                   err_msg=f"{name} {kw} {reduction}")


# ------------------------------------------------------------------ options
def test_legacy_flags_and_broadcasting():
    torch = pytest.importorskip("torch")
    x, t, _ = _data("mse_loss", {}, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size_average, reduce, reduction in ((False, None, "sum"), (None, False, "none"),
                                                (True, True, "mean")):
            g = _grad_output(reduction, np.float64)
            for name in ("l1_loss", "mse_loss", "smooth_l1_loss", "kl_div",
                         "binary_cross_entropy_with_logits"):
                got = getattr(nbops, f"{name}_backward")(g, x, t, size_average=size_average,
                                                         reduce=reduce)
                want = _torch_grad(name, x, t, {}, reduction, g)
                np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15, err_msg=name)
    # an input broadcast against the target: its gradient summed back to its shape
    xb = x[:, :1]
    for name in ("mse_loss", "kl_div"):
        for reduction in ("mean", "none"):
            g = _grad_output(reduction, np.float64)
            xt = torch.from_numpy(xb.copy()).requires_grad_()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = getattr(torch.nn.functional, name)(xt, torch.from_numpy(t),
                                                         reduction=reduction)
                out.backward(torch.from_numpy(g) if reduction == "none" else torch.tensor(g))
                got = getattr(nbops, f"{name}_backward")(g, xb, t, reduction=reduction)
            assert got.shape == xb.shape
            np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-13, err_msg=name)


def test_out_dtypes_and_edges():
    x, t, _ = _data("mse_loss", {}, np.float32)
    want = nbops.mse_loss_backward(0.5, x, t)
    out = np.empty_like(x)
    assert nbops.mse_loss_backward(0.5, x, t, out=out) is out
    np.testing.assert_array_equal(out, want)
    big = np.zeros((4, 12), np.float32)  # a strided out
    nbops.mse_loss_backward(0.5, x, t, out=big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], want)
    x2 = x.copy()  # into the input itself
    assert nbops.mse_loss_backward(0.5, x2, t, out=x2) is x2
    np.testing.assert_array_equal(x2, want)
    # Fortran-ordered arrays, a 0-d grad_output, float16 computed in float32
    np.testing.assert_array_equal(
        nbops.mse_loss_backward(np.array(0.5), np.asfortranarray(x), np.asfortranarray(t)),
        want)
    half = nbops.mse_loss_backward(0.5, x.astype(np.float16), t.astype(np.float16))
    assert half.dtype == np.float16
    # empty and 0-d inputs
    assert nbops.l1_loss_backward(1.0, x[:0], t[:0]).shape == (0, 6)
    assert nbops.l1_loss_backward(1.0, np.float64(2.0), np.float64(1.0)).shape == ()
    assert nbops.kl_div_with_grad(x[:0], t[:0], reduction="sum")[1].shape == (0, 6)


def test_bad_inputs():
    x, t, _ = _data("mse_loss", {}, np.float64)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.mse_loss_backward(np.ones(3), x, t)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.mse_loss_backward(np.ones((4, 5)), x, t, reduction="none")
    with pytest.raises(TypeError, match="grad_output"):
        nbops.mse_loss_backward(np.ones(SHAPE, np.int64), x, t, reduction="none")
    with pytest.raises(TypeError, match="grad_output"):
        nbops.l1_loss_backward(True, x, t)
    with pytest.raises(TypeError, match="grad_output"):
        nbops.l1_loss_backward("1", x, t)
    with pytest.raises(ValueError, match="do not broadcast"):
        nbops.l1_loss_backward(1.0, x, t[:, :4])
    with pytest.raises(ValueError, match="weight"):
        nbops.l1_loss_backward(1.0, x, t, weight=np.ones(6))
    with pytest.raises(ValueError, match="target of shape"):
        nbops.binary_cross_entropy_backward(1.0, x, t[:, :1])
    with pytest.raises(ValueError, match="pos_weight"):
        nbops.binary_cross_entropy_with_logits_backward(1.0, x, t, pos_weight=np.ones(4))
    with pytest.raises(ValueError, match="beta"):
        nbops.smooth_l1_loss_backward(1.0, x, t, beta=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        nbops.mse_loss_backward(1.0, x, t, reduction="avg")
    with pytest.raises(ValueError, match="out has shape"):
        nbops.mse_loss_backward(1.0, x, t, out=np.empty(3))
    with pytest.raises(ValueError, match="input"):  # with_grad checks [0, 1] as the forward
        nbops.binary_cross_entropy_with_grad(x, np.clip(t, 0, 1))


def test_deterministic_across_thread_counts():
    """Chunked float64 sums: the value and the gradient do not depend on the kernel
    (serial or parallel) that ran them."""
    from nbops import _config
    from nbops._ops import losses
    if _config.pool_threads() < 2:
        pytest.skip("one Numba thread")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(100_000).astype(np.float32)
    t = rng.standard_normal(100_000).astype(np.float32)
    serial = {}
    for parallel in (False, True):
        kernel = losses._grad_parallel if parallel else losses._grad_serial
        op, gop = table.TABLE["mse_loss"].op, table.TABLE["mse_loss"].backward_op
        partials = np.empty(-(-x.size // losses.CHUNK))
        out = np.empty_like(x)
        kernel(op, gop, None, x, t, None, 1, 1, None, 1, 1, np.empty(0, np.float32),
               np.float32(1e-5), (), out, None, partials, True)
        serial[parallel] = (partials.copy(), out.copy())
    np.testing.assert_array_equal(serial[False][0], serial[True][0])
    np.testing.assert_array_equal(serial[False][1], serial[True][1])
    loss, grad = nbops.mse_loss_with_grad(x, t)
    assert loss == nbops.mse_loss(x, t)


# ------------------------------------------------------------------ inside @njit
@njit
def _njit_pointwise(x, t, g, w):
    return (nbops.l1_loss_backward(0.5, x, t), nbops.mse_loss_backward(g, x, t, reduction="none"),
            nbops.smooth_l1_loss_backward(0.5, x, t, beta=0.5, reduction="sum"),
            nbops.huber_loss_backward(0.5, x, t, "mean", 0.5, w),
            nbops.mse_loss_with_grad(x, t, weight=w),
            nbops.l1_loss_with_grad(x, t, reduction="none"))


@njit
def _njit_others(x, t, g, p, q, w, pw):
    return (nbops.kl_div_backward(0.5, x, t, reduction="batchmean"),
            nbops.kl_div_backward(g, x, t, reduction="none", log_target=True),
            nbops.kl_div_with_grad(x, t, reduction="sum"),
            nbops.binary_cross_entropy_backward(0.5, p, q, w),
            nbops.binary_cross_entropy_with_grad(p, q),
            nbops.binary_cross_entropy_with_logits_backward(0.5, x, q, pos_weight=pw),
            nbops.binary_cross_entropy_with_logits_with_grad(x, q, w, reduction="sum"))


def _close(got, want):
    if isinstance(want, tuple):
        for a, b in zip(got, want, strict=True):
            _close(a, b)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_inside_njit():
    x, t, _ = _data("mse_loss", {}, np.float64)
    g = _grad_output("none", np.float64)
    w = np.random.default_rng(4).uniform(0.5, 2, SHAPE)
    got = _njit_pointwise(x, t, g, w)
    want = (nbops.l1_loss_backward(0.5, x, t), nbops.mse_loss_backward(g, x, t, reduction="none"),
            nbops.smooth_l1_loss_backward(0.5, x, t, beta=0.5, reduction="sum"),
            nbops.huber_loss_backward(0.5, x, t, delta=0.5, weight=w),
            nbops.mse_loss_with_grad(x, t, weight=w),
            nbops.l1_loss_with_grad(x, t, reduction="none"))
    _close(got, want)
    lp, _, _ = _data("kl_div", {}, np.float64)
    p, q, _ = _data("binary_cross_entropy", {}, np.float64)
    pw = np.linspace(0.5, 3, SHAPE[-1])
    got = _njit_others(lp, q, g, p, q, w, pw)
    want = (nbops.kl_div_backward(0.5, lp, q, reduction="batchmean"),
            nbops.kl_div_backward(g, lp, q, reduction="none", log_target=True),
            nbops.kl_div_with_grad(lp, q, reduction="sum"),
            nbops.binary_cross_entropy_backward(0.5, p, q, w),
            nbops.binary_cross_entropy_with_grad(p, q),
            nbops.binary_cross_entropy_with_logits_backward(0.5, lp, q, pos_weight=pw),
            nbops.binary_cross_entropy_with_logits_with_grad(lp, q, w, reduction="sum"))
    _close(got, want)
    with pytest.raises(ValueError, match="grad_output"):
        _njit_pointwise(x, t, g[:, :3].copy(), w)


def test_public_names():
    """Every loss has its backward and with_grad (table, nbops.__all__, scalar cores)."""
    for name in ("l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                 "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        for suffix in ("_backward", "_with_grad"):
            assert name + suffix in nbops.__all__
        assert table.TABLE[name].backward_function is getattr(nbops, f"{name}_backward")
    for entry in table.pointwise_loss_entries():
        assert entry.backward is getattr(nbops.scalar, f"{entry.name}_backward")
