"""alpha_dropout, feature_alpha_dropout and dropout1d (issue 16, item 4), their
backwards and ``nbops.nn`` modules.

PyTorch draws other random numbers than nbops' counter-based generator, so the
tests take the keep mask as given (``dropout_mask(..., dtype=bool)`` for
nbops, derived from the output for PyTorch) and check the formula: against a
float64 NumPy formula written here, against PyTorch's own arithmetic applied
to the same mask (bit for bit, forward and ``torch.autograd`` backward), and
PyTorch's outputs against that arithmetic with their derived mask. Then the
statistics (kept fraction, mean 0 and variance 1 preserved), reproducibility
(serial/parallel kernels, 1 and 2 threads), edge cases, rank rules and errors
as PyTorch's, finite differences for the backwards, ``@njit`` and the modules.
"""

import copy
import math
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import nbops
from nbops import _config

torch = pytest.importorskip("torch")
F = torch.nn.functional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALPHA = 1.7580993408473766  # PyTorch's constant (SELU scale * alpha)
DTYPES = [np.float32, np.float64]
ALPHAS = ["alpha_dropout", "feature_alpha_dropout"]


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _a(p):
    return 1.0 / math.sqrt((ALPHA * ALPHA * p + 1.0) * (1.0 - p))


def _mask_shape(name, shape):
    """The shape of the keep mask (one decision per element or per channel)."""
    if name == "alpha_dropout":
        return shape
    if name == "dropout1d" and len(shape) == 2:
        return (shape[0], 1)
    return shape[:2] + (1,) * (len(shape) - 2)


def _keep(name, shape, p, seed):
    return nbops.dropout_mask(_mask_shape(name, shape), p, rng=seed, dtype=bool)


def _ref64(x, keep, p):
    """The paper's formula in float64: a (x m + alpha' (1 - m)) + b, b = -a alpha' p."""
    a, ap = _a(p), -ALPHA
    m = keep.astype(np.float64)
    return (x.astype(np.float64) * m + ap * (1.0 - m)) * a - a * ap * p


def _torch_formula(xt, keep, p):
    """PyTorch's arithmetic (aten Dropout.cpp, _dropout_impl with alpha) on a given mask."""
    noise = torch.from_numpy(keep).to(xt.dtype)
    a = _a(p)
    b = noise.add(-1).mul_(ALPHA * a).add_(ALPHA * a * p)
    noise.mul_(a)
    return xt * noise + b


def _values(x, p):
    """(kept value, dropped value) of every element in x's dtype, rounded as PyTorch."""
    t = x.dtype.type
    a = _a(p)
    A, B = t(a), t(ALPHA * a * p)
    D = t(B - t(ALPHA * a))
    return x * A + B, x * t(0) + D


def _data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ the formula
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", [("alpha_dropout", (7, 9, 5)),
                                        ("feature_alpha_dropout", (6, 5, 4, 3)),
                                        ("feature_alpha_dropout", (40, 7))])
def test_formula_given_the_mask(name, shape, dtype):
    x = _data(shape, dtype)
    fn = getattr(nbops, name)
    for p in (0.1, 0.5, 1 / 3, 0.9):
        y = fn(x, p, True, rng=17)
        assert y.dtype == dtype and y.shape == shape
        keep = np.broadcast_to(_keep(name, shape, p, 17), shape)
        assert 0 < keep.sum() < keep.size
        # the float64 formula (float32: within rounding)
        tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-14,
                                                                         atol=1e-14)
        np.testing.assert_allclose(y, _ref64(x, keep, p), **tol)
        # PyTorch's arithmetic on the same mask: bit for bit
        want = _torch_formula(T(x), _keep(name, shape, p, 17), p).numpy()
        assert y.tobytes() == want.tobytes(), p
        kept, dropped = _values(x, p)
        assert np.array_equal(y, np.where(keep, kept, dropped))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALPHAS)
def test_torch_outputs_follow_the_same_formula(name, dtype):
    """PyTorch's own alpha dropout: every output is the kept or the dropped value of
    the formula above (its mask derived from the output), bit for bit."""
    x = _data((64, 32, 3), dtype, seed=1)
    tfn = getattr(F, name)
    torch.manual_seed(0)
    for p in (0.2, 0.5, 0.8):
        yt = tfn(T(x), p, True).numpy()
        kept, dropped = _values(x, p)
        tkeep = yt == kept
        assert np.all(tkeep | (yt == dropped)), p
        assert 0.1 < tkeep.mean() < 0.95
        if name == "feature_alpha_dropout":  # whole channels
            assert np.all(tkeep.all(-1) | ~tkeep.any(-1))


@pytest.mark.parametrize("name", ALPHAS)
def test_nan_inf_and_edges_as_torch(name):
    fn, tfn = getattr(nbops, name), getattr(F, name)
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0] * 40, np.float32).reshape(40, 6)
    with np.errstate(invalid="ignore"):
        y = fn(x, 0.5, True, rng=3)
        keep = np.broadcast_to(_keep(name, x.shape, 0.5, 3), x.shape)
        want = _torch_formula(T(x), _keep(name, x.shape, 0.5, 3), 0.5).numpy()
        assert np.array_equal(y, want, equal_nan=True)
        # kept inf stay inf, dropped non-finite give NaN (x * 0), as PyTorch
        assert np.all(np.isnan(y[~keep & ~np.isfinite(x)]))
        assert np.all(y[keep & np.isinf(x)] == x[keep & np.isinf(x)])
        # p == 1: input * 0, as PyTorch (not the saturation value)
        z, zt = fn(x, 1.0, True), tfn(T(x), 1.0, True).numpy()
        assert np.array_equal(z, zt, equal_nan=True) and z.dtype == np.float32
        assert not np.shares_memory(z, x)
    # the identity: training=False (the default), p == 0, empty input: the input itself
    tx = T(x)
    for kw in ({}, {"p": 0.0, "training": True}, {"p": 0.5, "training": False}):
        assert fn(x, **kw) is x
        assert tfn(tx, **kw) is tx
    e = np.empty((0, 3), np.float32)
    assert fn(e, 0.5, True) is e
    # 0-d input (elementwise alpha dropout only)
    if name == "alpha_dropout":
        s = np.array(0.25)
        kept, dropped = _values(s, 0.5)
        assert float(fn(s, 0.5, True, rng=0)) in (float(kept), float(dropped))


# ------------------------------------------------------------------ statistics
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_fraction_and_self_normalization(p):
    n = 2_000_000
    x = np.random.default_rng(5).standard_normal(n)
    y = nbops.alpha_dropout(x, p, True, rng=11)
    kept, _ = _values(x, p)
    frac = np.mean(y == kept)
    assert abs(frac - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    # mean 0 and variance 1 of a standard normal input are preserved
    assert abs(y.mean()) < 5e-3, y.mean()
    assert abs(y.var() - 1) < 2e-2, y.var()
    # whole channels: the same law per element
    xc = np.random.default_rng(6).standard_normal((4000, 50, 10))
    yc = nbops.feature_alpha_dropout(xc, p, True, rng=12)
    assert abs(yc.mean()) < 2e-2, yc.mean()
    assert abs(yc.var() - 1) < 5e-2, yc.var()


# ------------------------------------------------------------------ reproducibility
def test_serial_and_parallel_kernels_agree(monkeypatch):
    x = _data((3, 50, 40, 7), np.float32, seed=3)
    g = _data(x.shape, np.float32, seed=4)
    calls = [lambda: nbops.alpha_dropout(x, 0.3, True, rng=11),
             lambda: nbops.feature_alpha_dropout(x, 0.3, True, rng=11),
             lambda: nbops.dropout1d(x[0], 0.3, rng=11),
             lambda: nbops.alpha_dropout_backward(g, 0.3, True, rng=11),
             lambda: nbops.feature_alpha_dropout_backward(g, 0.3, True, rng=11),
             lambda: nbops.dropout1d_backward(g[0], 0.3, rng=11)]
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 60)
    serial = [f().tobytes() for f in calls]
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)
    parallel = [f().tobytes() for f in calls]
    assert serial == parallel


_THREAD_SCRIPT = r"""
import hashlib
import numpy as np, nbops, numba
x = np.random.default_rng(0).standard_normal(300_003).astype(np.float32)
x4 = x[:64 * 32 * 8 * 16].reshape(64, 32, 8, 16)
y = x.copy(); nbops.alpha_dropout(y, 0.25, True, True, rng=3)
res = [nbops.alpha_dropout(x, 0.3, True, rng=123),
       nbops.feature_alpha_dropout(x4, 0.6, True, rng=9), nbops.dropout1d(x4[0], 0.4, rng=5),
       nbops.alpha_dropout_backward(x, 0.3, True, rng=123), y]
print(numba.get_num_threads(), *[hashlib.sha256(r.tobytes()).hexdigest()[:16] for r in res])
"""


def test_same_results_on_one_and_two_threads():
    buf = []
    exec(_THREAD_SCRIPT, {"print": lambda *a: buf.append(" ".join(map(str, a)))})
    here = buf[0].split()[1:]
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, NBOPS_PARALLEL_THRESHOLD="1000")
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        got = proc.stdout.split()
        assert got[0] == threads
        assert got[1:] == here


# ------------------------------------------------------------------ layouts, inplace, out, rng
@pytest.mark.parametrize("name", ALPHAS + ["dropout1d"])
def test_layouts_inplace_out_and_rng(name):
    fn = getattr(nbops, name)
    x = _data((5, 6, 7), np.float32, seed=2)
    ref = fn(x, 0.4, True, rng=8)
    # non-contiguous inputs: the mask of the C-order index
    assert np.array_equal(fn(np.asfortranarray(x), 0.4, True, rng=8), ref)
    v = _data((5, 12, 7), np.float32, seed=3)[:, ::2]
    assert np.array_equal(fn(v, 0.4, True, rng=8), fn(np.ascontiguousarray(v), 0.4, True, rng=8))
    # in place (a contiguous and a strided writable array)
    y = x.copy()
    assert fn(y, 0.4, True, True, rng=8) is y and np.array_equal(y, ref)
    base = np.zeros((5, 12, 7), np.float32)
    s = base[:, ::2]
    s[...] = x
    assert fn(s, 0.4, True, True, rng=8) is s
    assert np.array_equal(s, ref) and not base[:, 1::2].any()
    # out=, also where nothing is drawn
    out = np.full_like(x, 7)
    assert fn(x, 0.4, True, rng=8, out=out) is out and np.array_equal(out, ref)
    for kw in (dict(training=False), dict(p=0.0), dict(p=1.0)):
        o = np.full(x.shape, 5, np.float32)
        args = dict(p=0.4, training=True, rng=1)
        args.update(kw)
        assert np.array_equal(fn(x, out=o, **args), fn(x, **args), equal_nan=True)
    # integers promote as dropout's
    assert fn(np.arange(30).reshape(2, 3, 5), 0.5, True, rng=2).dtype == np.float64
    # rng forms: same seed, same result; a Generator advances only when drawing
    assert not np.array_equal(ref, fn(x, 0.4, True, rng=9))
    g = np.random.default_rng(4)
    state = copy.deepcopy(g.bit_generator.state)
    fn(x, 0.4, False, rng=g)
    fn(x, 1.0, True, rng=g)
    assert g.bit_generator.state == state
    a = fn(x, 0.4, True, rng=g)
    assert np.array_equal(a, fn(x, 0.4, True, rng=np.random.default_rng(4)))
    # errors before anything: nothing written, Generator not advanced
    state = copy.deepcopy(g.bit_generator.state)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p"):
            fn(x, bad, True, rng=g)
    with pytest.raises(ValueError, match="inplace"):
        fn(x.copy(), 0.5, True, True, out=np.empty_like(x), rng=g)
    with pytest.raises(ValueError, match="out"):
        fn(x, 0.5, True, rng=g, out=np.empty((5, 6), np.float32))
    with pytest.raises(TypeError, match="out"):
        fn(x, 0.5, True, rng=g, out=np.empty(x.shape))
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(ro, 0.5, True, True, rng=g)
    for bad, exc in ((1.5, TypeError), ("seed", TypeError), (-1, ValueError)):
        with pytest.raises(exc, match="rng"):
            fn(x, 0.5, True, rng=bad)
    assert g.bit_generator.state == state and np.array_equal(ro, x)


# ------------------------------------------------------------------ rank rules
def _constant_axes(y):
    return tuple(k for k in range(y.ndim) if y.shape[k] > 1 and np.all(y == y.take([0], axis=k)))


def _outcome(fn, x, training, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            r = fn(x, 0.5, training, **kw)
        except (ValueError, RuntimeError):
            r = None
    return r, len(w)


@pytest.mark.parametrize("name", ["feature_alpha_dropout", "dropout1d"])
def test_torch_rank_rules_and_channel_structure(name):
    tfn, nfn = getattr(F, name), getattr(nbops, name)
    torch.manual_seed(0)
    for ndim in range(0, 6):
        x = np.ones(((24,) + (3,) * (ndim - 1)) if ndim else ())
        for training in (True, False):
            tr, tw = _outcome(tfn, T(x.copy()), training)
            nr, nw = _outcome(nfn, x, training, rng=ndim)
            assert tw == nw == 0, (name, ndim, training)
            assert (tr is None) == (nr is None), (name, ndim, training)
            if tr is not None and training:
                assert _constant_axes(tr.numpy()) == _constant_axes(nr), (name, ndim)
    with pytest.raises(ValueError, match="Expected 2D or 3D input, but received a 4D input"):
        nbops.dropout1d(np.ones((2, 3, 4, 5)), 0.5, training=False)
    with pytest.raises(ValueError, match="2 dimensions"):
        nbops.feature_alpha_dropout(np.ones(5), 0.5, True, rng=0)
    # no draw: no rank error (as PyTorch)
    assert nbops.feature_alpha_dropout(np.ones(5), 1.0, True).tolist() == [0.0] * 5
    assert nbops.feature_alpha_dropout(np.ones(5), 0.5).tolist() == [1.0] * 5


def test_channel_masks_are_dropout_masks_of_the_channel_shape():
    x = _data((3, 4, 5), np.float64, seed=7)
    assert np.array_equal(nbops.dropout1d(x, 0.5, rng=4),
                          x * nbops.dropout_mask((3, 4, 1), 0.5, rng=4, dtype=np.float64))
    assert np.array_equal(nbops.dropout1d(x[0], 0.5, rng=4),  # unbatched (C, L)
                          x[0] * nbops.dropout_mask((4, 1), 0.5, rng=4, dtype=np.float64))
    # a 2-D input: one decision per element, as elementwise alpha dropout
    assert np.array_equal(nbops.feature_alpha_dropout(x[0], 0.5, True, rng=4),
                          nbops.alpha_dropout(x[0], 0.5, True, rng=4))
    # the channel path (inner > 1) and the same decisions as dropout2d
    y = nbops.feature_alpha_dropout(x[:, :, :, None], 0.5, True, rng=4)
    kept = nbops.dropout2d(np.ones((3, 4, 5, 1)), 0.5, rng=4) != 0
    assert np.array_equal(y == _values(x[:, :, :, None], 0.5)[0], kept)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout1d_scaling_as_torch(dtype):
    x = _data((30, 20, 8), dtype, seed=8)
    torch.manual_seed(1)
    for p in (0.1, 1 / 3, 0.9):
        scale = dtype(1.0 / (1.0 - p))  # 1 / (1 - p) rounded to the dtype, as PyTorch
        for r in (F.dropout1d(T(x), p).numpy(), nbops.dropout1d(x, p, rng=1)):
            k = r != 0
            assert r[k].tobytes() == (x[k] * scale).tobytes()
            assert np.all(k.all(-1) | ~k.any(-1))
    assert nbops.dropout1d(x, 0.0) is x and nbops.dropout1d(x, 0.5, training=False) is x
    assert not nbops.dropout1d(x, 1.0).any()


# ------------------------------------------------------------------ backward
CASES = [("alpha_dropout", (5, 7, 3)), ("feature_alpha_dropout", (4, 6, 3, 5)),
         ("dropout1d", (4, 6, 5)), ("dropout1d", (6, 5))]


def _torch_forward(name, xt, keep, p):
    """PyTorch's arithmetic on a given mask: feature dropout's ``x * (keep / (1 - p))``
    for dropout1d, alpha dropout's otherwise."""
    if name == "dropout1d":
        return xt * torch.from_numpy(keep).to(xt.dtype).div_(1 - p)
    return _torch_formula(xt, keep, p)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", CASES)
def test_backward_against_torch_autograd(name, shape, dtype):
    forward = getattr(nbops, name)
    backward = getattr(nbops, f"{name}_backward")
    x = _data(shape, dtype, seed=1)
    g = np.random.default_rng(2).uniform(-2, 2, shape).astype(dtype)  # non-uniform
    keep = _keep(name, shape, 0.3, 1234)
    xt = T(x).requires_grad_()
    yt = _torch_forward(name, xt, keep, 0.3)
    yt.backward(T(g))
    y = forward(x, 0.3, True, rng=1234)
    assert y.tobytes() == yt.detach().numpy().tobytes()
    gx = backward(g, 0.3, True, rng=1234)
    assert gx.dtype == dtype and gx.shape == shape
    assert gx.tobytes() == xt.grad.numpy().tobytes()  # bit for bit
    # non-contiguous grad_output, out=
    assert np.array_equal(backward(np.asfortranarray(g), 0.3, True, rng=1234), gx)
    gs = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    gs[...] = g
    assert np.array_equal(backward(gs, 0.3, True, rng=1234), gx)
    out = np.empty(shape, dtype)
    assert backward(g, 0.3, True, rng=1234, out=out) is out and np.array_equal(out, gx)


@pytest.mark.parametrize("name", ALPHAS)
def test_alpha_backward_with_torchs_own_mask(name):
    """torch.autograd through PyTorch's alpha dropout: the gradient is grad * a where its
    output is the kept value, 0 elsewhere, as nbops' backward for its own mask."""
    x = _data((50, 8, 4), np.float64, seed=3)
    g = np.random.default_rng(4).uniform(-1, 1, x.shape)
    torch.manual_seed(2)
    xt = T(x).requires_grad_()
    yt = getattr(F, name)(xt, 0.4, True)
    yt.backward(T(g))
    tkeep = yt.detach().numpy() == _values(x, 0.4)[0]
    assert np.array_equal(xt.grad.numpy(), np.where(tkeep, g * _a(0.4), 0.0))
    keep = np.broadcast_to(_keep(name, x.shape, 0.4, 5), x.shape)
    gx = getattr(nbops, f"{name}_backward")(g, 0.4, True, rng=5)
    assert np.array_equal(gx, np.where(keep, g * _a(0.4), 0.0))


@pytest.mark.parametrize("name,shape", CASES)
def test_backward_edges(name, shape):
    backward = getattr(nbops, f"{name}_backward")
    g = np.random.default_rng(1).standard_normal(shape)
    g.flat[0] = np.nan
    for kwargs in (dict(p=0.0, training=True), dict(p=0.4, training=False)):
        res = backward(g, rng=0, **kwargs)
        assert res is not g
        np.testing.assert_array_equal(res, g)
    if name != "dropout1d":  # training=False by default, as the forward
        np.testing.assert_array_equal(backward(g, 0.4, rng=0), g)
    res = backward(g, 1.0, True, rng=0)
    assert np.isnan(res.flat[0]) and not res.flat[1:].any()  # g * 0, as the forward
    assert backward(np.ones((0,) + shape[1:]), 0.5, True, rng=0).shape == (0,) + shape[1:]


def _fd(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += h
        xm.flat[i] -= h
        grad.flat[i] = (f(xp) - f(xm)) / (2 * h)
    return grad


@pytest.mark.parametrize("name,shape", CASES[:3])
def test_backward_finite_differences(name, shape):
    forward = getattr(nbops, name)
    backward = getattr(nbops, f"{name}_backward")
    x = np.random.default_rng(2).standard_normal(shape)
    g = np.random.default_rng(3).uniform(-1, 1, shape)
    fd = _fd(lambda v: float(np.sum(g * forward(v, 0.5, True, rng=99))), x)
    np.testing.assert_allclose(backward(g, 0.5, True, rng=99), fd, rtol=1e-6, atol=1e-8)


def test_backward_bad_inputs():
    g = np.ones((2, 3, 4))
    for name in ("alpha_dropout", "feature_alpha_dropout", "dropout1d"):
        backward = getattr(nbops, f"{name}_backward")
        for rng in (None, np.random.default_rng(0), 1.5, True):
            with pytest.raises(TypeError, match="rng"):
                backward(g, 0.5, True, rng=rng)
        with pytest.raises(TypeError, match="rng"):
            backward(g, 0.5, True)  # rng is required
        with pytest.raises(ValueError, match="rng"):
            backward(g, 0.5, True, rng=-1)
        with pytest.raises(ValueError, match="p"):
            backward(g, 1.5, True, rng=0)
        with pytest.raises(TypeError, match="grad_output"):
            backward(np.ones((2, 3, 4), int), 0.5, True, rng=0)
        with pytest.raises(ValueError, match="out"):
            backward(g, 0.5, True, rng=0, out=np.empty(3))
    with pytest.raises(ValueError, match="2D or 3D"):
        nbops.dropout1d_backward(np.ones(4), 0.5, rng=0)


# ------------------------------------------------------------------ inside @njit
@numba.njit
def _nj_forward(x, x3, p, seed):
    return (nbops.alpha_dropout(x, p, True, rng=seed),
            nbops.feature_alpha_dropout(x, p, True, rng=seed),
            nbops.dropout1d(x3, p, rng=seed),
            nbops.alpha_dropout(x, p))


@numba.njit
def _nj_backward(g, g3, p, seed):
    return (nbops.alpha_dropout_backward(g, p, True, rng=seed),
            nbops.feature_alpha_dropout_backward(g, p, True, rng=seed),
            nbops.dropout1d_backward(g3, p, rng=seed),
            nbops.alpha_dropout_backward(g, p, rng=seed))


@numba.njit
def _nj_scalar(v, seed):
    return nbops.alpha_dropout(v, 0.5, True, rng=seed)


@numba.njit
def _nj_inplace(x, seed):
    return nbops.feature_alpha_dropout(x, 0.5, True, True, rng=seed)


def test_inside_njit_same_as_outside():
    x = _data((4, 6, 5), np.float32)
    x3 = x[:, :, :2].copy()
    a, b, c, d = _nj_forward(x, x3, 0.4, 77)
    assert np.array_equal(a, nbops.alpha_dropout(x, 0.4, True, rng=77))
    assert np.array_equal(b, nbops.feature_alpha_dropout(x, 0.4, True, rng=77))
    assert np.array_equal(c, nbops.dropout1d(x3, 0.4, rng=77))
    assert np.array_equal(d, x) and not np.shares_memory(d, x)  # training=False by default
    ga, gb, gc, gd = _nj_backward(x, x3, 0.4, 77)
    assert np.array_equal(ga, nbops.alpha_dropout_backward(x, 0.4, True, rng=77))
    assert np.array_equal(gb, nbops.feature_alpha_dropout_backward(x, 0.4, True, rng=77))
    assert np.array_equal(gc, nbops.dropout1d_backward(x3, 0.4, rng=77))
    assert np.array_equal(gd, x)
    a1, *_ = _nj_forward(x, x3, 1.0, 77)
    assert not a1.any()
    assert _nj_scalar(0.25, 1) == float(nbops.alpha_dropout(np.float64(0.25), 0.5, True, rng=1))
    y = x.copy()
    _nj_inplace(y, 5)
    assert np.array_equal(y, nbops.feature_alpha_dropout(x, 0.5, True, rng=5))
    with pytest.raises(ValueError, match="p"):
        _nj_forward(x, x3, 1.5, 1)
    with pytest.raises(numba.core.errors.TypingError, match="2D or 3D"):
        numba.njit(lambda v: nbops.dropout1d(v, 0.5, rng=1))(x[0, 0])


# ------------------------------------------------------------------ nbops.nn
MODULES = ["AlphaDropout", "FeatureAlphaDropout", "Dropout1d"]


@pytest.mark.parametrize("name", MODULES)
def test_module_repr_args_and_eval(name):
    for kw in [{}, {"p": 0.2}, {"p": 1, "inplace": True}]:
        assert repr(getattr(nbops.nn, name)(**kw)) == repr(getattr(torch.nn, name)(**kw))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError) as e1:
            getattr(nbops.nn, name)(p)
        with pytest.raises(ValueError) as e2:
            getattr(torch.nn, name)(p)
        assert str(e1.value) == str(e2.value)
    x = _data((4, 3, 5), np.float32)
    m = getattr(nbops.nn, name)(0.5, rng=0).eval()
    y = m(x)
    assert np.array_equal(y, x) and y.dtype == np.float32
    assert np.array_equal(m.backward(x), x)


@pytest.mark.parametrize("name", MODULES)
def test_module_forward_and_backward(name):
    fname = {"AlphaDropout": "alpha_dropout", "FeatureAlphaDropout": "feature_alpha_dropout",
             "Dropout1d": "dropout1d"}[name]
    x = _data((4, 6, 5), np.float64, seed=9)
    g = np.random.default_rng(10).standard_normal(x.shape)
    m = getattr(nbops.nn, name)(0.4, rng=3)
    y1, y2 = m(x), m(x)
    assert not np.array_equal(y1, y2)  # one Generator across calls: fresh masks
    gen = np.random.default_rng(3)
    seeds = [int(gen.integers(2**64, dtype=np.uint64)) for _ in range(2)]
    # the masks are those of the functional op with the seeds the Generator gives
    assert np.array_equal(y1, getattr(nbops, fname)(x, 0.4, True, rng=seeds[0]))
    assert np.array_equal(y2, getattr(nbops, fname)(x, 0.4, True, rng=seeds[1]))
    backward = getattr(nbops, f"{fname}_backward")
    assert np.array_equal(m.backward(g), backward(g, 0.4, True, rng=seeds[1]))  # latest first
    assert np.array_equal(m.backward(g), backward(g, 0.4, True, rng=seeds[0]))
    # against torch.autograd through PyTorch's arithmetic on the same mask
    keep = _keep(fname, x.shape, 0.4, seeds[0])
    m2 = getattr(nbops.nn, name)(0.4, rng=3)
    xt = T(x).requires_grad_()
    yt = _torch_forward(fname, xt, keep, 0.4)
    yt.backward(T(g))
    assert np.array_equal(m2(x), yt.detach().numpy())
    assert np.array_equal(m2.backward(g), xt.grad.numpy())
    # p == 0 in training: the identity, as torch's module (forward and autograd)
    m0, t0 = getattr(nbops.nn, name)(0.0).train(), getattr(torch.nn, name)(0.0)
    xt = T(x).requires_grad_()
    t0(xt).backward(T(g))
    assert np.array_equal(m0(x), x) and np.array_equal(m0.backward(g), xt.grad.numpy())


@pytest.mark.parametrize("name", MODULES)
def test_module_inplace_as_torch(name):
    """Dropout1d writes into its input with inplace=True; AlphaDropout and
    FeatureAlphaDropout never do (PyTorch's modules do not pass inplace on)."""
    x = _data((4, 6, 5), np.float32, seed=11)
    xn, xt = x.copy(), T(x.copy())
    yn = getattr(nbops.nn, name)(0.5, inplace=True, rng=1)(xn)
    torch.manual_seed(0)
    yt = getattr(torch.nn, name)(0.5, inplace=True)(xt)
    assert (yn is xn) == (yt.data_ptr() == xt.data_ptr())
    assert np.array_equal(xn, x) == np.array_equal(xt.numpy(), x)
