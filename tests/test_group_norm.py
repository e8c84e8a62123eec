"""Tests of ``nbops.group_norm``, ``nbops.instance_norm``, their backwards and their
nn modules.

Expected values come from the float64 NumPy formulas below (``ref_*``), from
central finite differences in float64, or from PyTorch (parity tests only),
never from nbops itself.
"""

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count

import nbops

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12)}
# (input shape, groups): positions longer than the accumulator lanes with a tail
# (37), a 2-D input (no positions), one group, one group per channel
CASES = [((3, 6, 37), 3), ((2, 4, 3, 5), 2), ((5, 6), 3), ((2, 4, 17), 1), ((2, 4, 2, 3), 4)]


# --------------------------------------------------------------------------- #
# references
# --------------------------------------------------------------------------- #


def ref_group_norm(x, groups, w=None, b=None, eps=1e-5):
    """float64 reference: (output, mean (N, G), rstd (N, G))."""
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1)
    mean = xg.mean(axis=2, keepdims=True)
    var = ((xg - mean) ** 2).mean(axis=2, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = ((xg - mean) * rstd).reshape(x.shape)
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if w is not None:
        y = y * np.asarray(w, np.float64).reshape(bshape)
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(bshape)
    return y, mean[..., 0], rstd[..., 0]


def ref_instance_norm(x, rm=None, rv=None, w=None, b=None, use_input_stats=True,
                      momentum=0.1, eps=1e-5):
    """float64 reference: (output, new running mean, new running var)."""
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if use_input_stats:
        y = ref_group_norm(x, c, eps=eps)[0]
        xs = x.reshape(n, c, -1)
        if rm is not None:
            rm = (1 - momentum) * rm + momentum * xs.mean(axis=2).mean(axis=0)
        if rv is not None:
            rv = (1 - momentum) * rv + momentum * xs.var(axis=2, ddof=1).mean(axis=0)
    else:
        y = (x - rm.reshape(bshape)) / np.sqrt(rv.reshape(bshape) + eps)
    if w is not None:
        y = y * np.asarray(w, np.float64).reshape(bshape)
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(bshape)
    return y, rm, rv


def data(shape, dtype, seed=0, loc=0.5, scale=2.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def affine(channels, dtype, seed=3):
    return data(channels, dtype, seed, 1.0, 0.5), data(channels, dtype, seed + 1, 0.0, 0.5)


def tt(a, grad=False):
    return None if a is None else torch.tensor(a, requires_grad=grad)


def pick(w, b, affine_kind):
    return (None if affine_kind == "none" else w), (b if affine_kind == "both" else None)


# --------------------------------------------------------------------------- #
# group_norm
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", CASES)
@pytest.mark.parametrize("affine_kind", ["none", "weight", "both"])
def test_group_norm_against_reference_and_torch(shape, groups, dtype, affine_kind):
    x = data(shape, dtype)
    w, b = pick(*affine(shape[1], dtype), affine_kind)
    y, mean, rstd = nbops.group_norm(x, groups, w, b, eps=1e-4, return_stats=True)
    assert y.dtype == dtype and y.shape == shape
    assert mean.dtype == dtype and mean.shape == (shape[0], groups) == rstd.shape
    ry, rmean, rrstd = ref_group_norm(x, groups, w, b, eps=1e-4)
    np.testing.assert_allclose(y, ry, **TOL[y.dtype])
    np.testing.assert_allclose(mean, rmean, **TOL[y.dtype])
    np.testing.assert_allclose(rstd, rrstd, **TOL[y.dtype])
    ty = F.group_norm(tt(x), groups, tt(w), tt(b), eps=1e-4).numpy()
    np.testing.assert_allclose(y, ty, **TOL[y.dtype])
    n, c = shape[:2]
    tw = tt(w) if w is not None else None
    tb = tt(b) if b is not None else None
    _, tm, tr = torch.ops.aten.native_group_norm(tt(x), tw, tb, n, c, x.size // (n * c),
                                                 groups, 1e-4)
    np.testing.assert_allclose(mean, tm.numpy(), **TOL[y.dtype])
    np.testing.assert_allclose(rstd, tr.numpy(), **TOL[y.dtype])


def test_group_norm_non_contiguous_out_int_and_offset_mean():
    base = data((4, 8, 10), np.float32)
    x = base[:, ::2, 1:9].transpose(0, 1, 2)[::-1]  # (4, 4, 8), not contiguous
    w, b = affine(4, np.float32)
    y = nbops.group_norm(x, 2, w, b)
    np.testing.assert_allclose(y, ref_group_norm(x, 2, w, b)[0], rtol=2e-5, atol=2e-5)
    out = np.empty(x.shape, np.float32)
    assert nbops.group_norm(x, 2, w, b, out=out) is out
    np.testing.assert_array_equal(out, y)
    xi = np.arange(24).reshape(2, 4, 3)
    yi = nbops.group_norm(xi, 2)
    assert yi.dtype == np.float64
    np.testing.assert_allclose(yi, ref_group_norm(xi, 2)[0], rtol=1e-12, atol=1e-12)
    # float32 groups with a large mean and a small spread keep their variance
    big = (1e4 + data((2, 4, 4096), np.float64, seed=5, loc=0.0, scale=1.0)).astype(np.float32)
    np.testing.assert_allclose(nbops.group_norm(big, 2), ref_group_norm(big, 2)[0], rtol=1e-4,
                               atol=1e-4)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_group_norm_nan_and_empty_as_torch():
    x = data((2, 4, 5), np.float64)
    x[0, 1, 2] = np.nan
    y = nbops.group_norm(x, 2)
    ty = F.group_norm(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ty))
    np.testing.assert_allclose(y[~np.isnan(y)], ty[~np.isnan(ty)], rtol=1e-12, atol=1e-12)
    e = np.ones((0, 4, 3), np.float32)
    assert nbops.group_norm(e, 2).shape == (0, 4, 3)


# --------------------------------------------------------------------------- #
# backward
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", CASES)
@pytest.mark.parametrize("affine_kind", ["none", "weight", "both"])
def test_group_norm_backward_against_torch(shape, groups, dtype, affine_kind):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=7)
    w, b = pick(*affine(shape[1], dtype), affine_kind)
    _, mean, rstd = nbops.group_norm(x, groups, w, b, return_stats=True)
    gi, gw, gb = nbops.group_norm_backward(g, x, groups, mean, rstd, w,
                                           has_bias=b is not None)
    tx, tw, tb = tt(x, True), tt(w, True), tt(b, True)
    F.group_norm(tx, groups, tw, tb).backward(torch.tensor(g))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else TOL[np.dtype(dtype)]
    assert gi.dtype == dtype
    np.testing.assert_allclose(gi, tx.grad.numpy(), **tol)
    if w is None:
        assert gw is None
    else:
        np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
    if b is None:
        assert gb is None
    else:
        np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)


def _finite_difference(f, arrays, index, h=1e-6):
    """d f(*arrays) / d arrays[index], central differences (float64)."""
    a = arrays[index]
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + h
        up = f(*arrays)
        a[i] = old - h
        down = f(*arrays)
        a[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def test_backwards_against_finite_differences():
    x = data((2, 4, 3), np.float64)
    g = data(x.shape, np.float64, seed=9)
    w, b = affine(4, np.float64)

    def gn_loss(x, w, b):
        return float(np.sum(g * ref_group_norm(x, 2, w, b, eps=1e-3)[0]))

    _, mean, rstd = nbops.group_norm(x, 2, w, b, eps=1e-3, return_stats=True)
    gi, gw, gb = nbops.group_norm_backward(g, x, 2, mean, rstd, w)
    for got, index in ((gi, 0), (gw, 1), (gb, 2)):
        np.testing.assert_allclose(got, _finite_difference(gn_loss, [x, w, b], index),
                                   rtol=1e-6, atol=1e-7)

    for use_input_stats in (True, False):
        rm, rv = data(4, np.float64, seed=11), 1.0 + np.abs(data(4, np.float64, seed=12))

        def in_loss(x, w, b, rm=rm, rv=rv, use_input_stats=use_input_stats):
            return float(np.sum(g * ref_instance_norm(x, rm, rv, w, b, use_input_stats,
                                                      eps=1e-3)[0]))

        _, mean, rstd = nbops.instance_norm(x, rm.copy(), rv.copy(), w, b, use_input_stats,
                                            eps=1e-3, return_stats=True)
        gi, gw, gb = nbops.instance_norm_backward(g, x, mean, rstd, w, use_input_stats)
        for got, index in ((gi, 0), (gw, 1), (gb, 2)):
            np.testing.assert_allclose(got, _finite_difference(in_loss, [x, w, b], index),
                                       rtol=1e-6, atol=1e-7)


def test_backward_non_contiguous_and_out():
    x = data((3, 12, 9), np.float32)[:, ::2, 1:8]  # (3, 6, 7)
    g = data((3, 6, 14), np.float32, seed=4)[:, :, ::2]
    w, b = affine(6, np.float32)
    _, mean, rstd = nbops.group_norm(x, 3, w, b, return_stats=True)
    gi, gw, gb = nbops.group_norm_backward(g, x, 3, mean, rstd, w)
    tx, tw, tb = tt(x, True), tt(w, True), tt(b, True)
    F.group_norm(tx, 3, tw, tb).backward(torch.tensor(g))
    np.testing.assert_allclose(gi, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-4, atol=1e-4)
    out = np.empty(x.shape, np.float32)
    res = nbops.group_norm_backward(g, x, 3, mean, rstd, w, out=out)
    assert res[0] is out
    np.testing.assert_array_equal(out, gi)
    assert nbops.group_norm_backward(g, x, 3, mean, rstd, w, has_bias=False)[2] is None
    assert nbops.group_norm_backward(g, x, 3, mean, rstd, None, has_bias=True)[1] is None


# --------------------------------------------------------------------------- #
# instance_norm
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 37), (2, 3, 4, 5), (2, 2, 2, 3, 2)])
@pytest.mark.parametrize("running", [False, True])
@pytest.mark.parametrize("affine_kind", ["none", "both"])
def test_instance_norm_forward_backward_against_torch(shape, dtype, running, affine_kind):
    c = shape[1]
    x = data(shape, dtype)
    g = data(shape, dtype, seed=7)
    w, b = pick(*affine(c, dtype), affine_kind)
    tol = TOL[np.dtype(dtype)]
    gtol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else tol
    for use_input_stats in ((True, False) if running else (True,)):
        rm = data(c, dtype, seed=11) if running else None
        rv = (1.0 + np.abs(data(c, dtype, seed=12))).astype(dtype) if running else None
        trm, trv = tt(rm), tt(rv)
        ry, rrm, rrv = ref_instance_norm(x, rm, rv, w, b, use_input_stats, 0.2)
        y, mean, rstd = nbops.instance_norm(x, rm, rv, w, b, use_input_stats, 0.2,
                                            return_stats=True)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ry, **tol)
        tx, tw, tb = tt(x, True), tt(w, True), tt(b, True)
        ty = F.instance_norm(tx, trm, trv, tw, tb, use_input_stats, 0.2)
        np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
        if running:
            assert rm.dtype == dtype
            np.testing.assert_allclose(rm, rrm, **tol)
            np.testing.assert_allclose(rv, rrv, **tol)
            np.testing.assert_allclose(rm, trm.numpy(), **tol)
            np.testing.assert_allclose(rv, trv.numpy(), **tol)
        ty.backward(torch.tensor(g))
        gi, gw, gb = nbops.instance_norm_backward(g, x, mean, rstd, w, use_input_stats,
                                                  has_bias=b is not None)
        np.testing.assert_allclose(gi, tx.grad.numpy(), **gtol)
        if w is None:
            assert gw is None and gb is None
        else:
            np.testing.assert_allclose(gw, tw.grad.numpy(), **gtol)
            np.testing.assert_allclose(gb, tb.grad.numpy(), **gtol)


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #


def test_bad_inputs_are_rejected_before_any_kernel():
    x = np.ones((3, 4, 2), np.float32)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nbops.group_norm(x, 3)
    with pytest.raises(ValueError, match="num_groups must be positive"):
        nbops.group_norm(x, 0)
    with pytest.raises(TypeError, match="num_groups must be an int"):
        nbops.group_norm(x, 2.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nbops.group_norm(np.ones(4), 2)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.group_norm(x, 2, np.ones(3))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        nbops.group_norm(x, 2, np.ones(4), np.ones((1, 4)))
    with pytest.raises(ValueError, match="out has shape"):
        nbops.group_norm(x, 2, out=np.empty((4, 3), np.float32))
    _, mean, rstd = nbops.group_norm(x, 2, return_stats=True)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.group_norm_backward(np.ones((3, 4, 3), np.float32), x, 2, mean, rstd)
    with pytest.raises(TypeError, match="grad_output: expected a float array"):
        nbops.group_norm_backward(np.ones(x.shape, np.int64), x, 2, mean, rstd)
    with pytest.raises(ValueError, match=r"mean must have shape \(3, 2\)"):
        nbops.group_norm_backward(x, x, 2, mean[:2], rstd)
    with pytest.raises(ValueError, match=r"rstd must have shape \(3, 2\)"):
        nbops.group_norm_backward(x, x, 2, mean, rstd.T)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.group_norm_backward(x, x, 2, mean, rstd, np.ones(5))
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nbops.instance_norm(np.ones((3, 4, 1), np.float32), rm, rv)
    with pytest.raises(ValueError, match="running_mean and running_var to be defined"):
        nbops.instance_norm(x, None, rv, use_input_stats=False)
    with pytest.raises(ValueError, match=r"running_mean must be a float ndarray of shape"):
        nbops.instance_norm(x, np.zeros(3, np.float32), rv)
    frozen = rv.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="running_var must be writeable"):
        nbops.instance_norm(x, rm, frozen)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.instance_norm(x, rm, rv, np.ones(5))
    np.testing.assert_array_equal(rm, 0)  # nothing updated by a rejected call
    np.testing.assert_array_equal(rv, 1)


# --------------------------------------------------------------------------- #
# thread counts
# --------------------------------------------------------------------------- #


def test_same_bits_serial_and_parallel_on_any_thread_count(monkeypatch):
    """The task cut depends on the shape alone: the serial kernel and the parallel
    one on 1 or 2 threads give the same bits (forward, statistics, backward)."""
    x = data((40, 8, 300), np.float32, loc=30.0)
    g = data(x.shape, np.float32, seed=2)
    w, b = affine(8, np.float32)

    def run():
        y, mean, rstd = nbops.group_norm(x, 4, w, b, return_stats=True)
        return [y, mean, rstd, *nbops.group_norm_backward(g, x, 4, mean, rstd, w)]

    assert_same_bits_on_any_thread_count(monkeypatch, run)


def test_2d_default_affine_one_scale_per_group(monkeypatch):
    """(N, C) inputs without weight and bias take one scale per group: the same bits
    as the per-channel path with unit weights (a group whose weights are all 1 while
    another's are not), close to the float64 formula, the same on any thread count
    (the backward's (N, C) path too); groups of 203 values (vector lanes and a tail)."""
    x = data((700, 406), np.float32, loc=30.0)
    w = np.ones(406, np.float32)
    w[-1] = 2.0  # not all ones: the per-channel path
    y = nbops.group_norm(x, 2)
    np.testing.assert_array_equal(y[:, :203], nbops.group_norm(x, 2, w)[:, :203])
    np.testing.assert_allclose(y, ref_group_norm(x, 2)[0], rtol=2e-5, atol=2e-5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(nbops.group_norm(x64, 2), ref_group_norm(x64, 2)[0],
                               rtol=1e-12, atol=1e-12)

    g = data(x.shape, np.float32, seed=2)

    def run():
        y, mean, rstd = nbops.group_norm(x, 2, return_stats=True)
        return [y, mean, rstd, *nbops.group_norm_backward(g, x, 2, mean, rstd, w)]

    assert_same_bits_on_any_thread_count(monkeypatch, run)


def test_short_channels_same_bits_on_any_thread_count(monkeypatch):
    """Channels of fewer than 16 positions (normalized a whole group at a time):
    against the float64 reference, and the same bits from the serial kernel and
    the parallel one on 1 or 2 threads."""
    x = data((300, 64, 3), np.float32, loc=30.0)
    w, b = affine(64, np.float32)

    def run():
        return list(nbops.group_norm(x, 2, w, b, return_stats=True))

    y = run()[0]
    np.testing.assert_allclose(y, ref_group_norm(x, 2, w, b)[0], **TOL[y.dtype])
    assert_same_bits_on_any_thread_count(monkeypatch, run)


# --------------------------------------------------------------------------- #
# nn modules
# --------------------------------------------------------------------------- #


def _check_module(m, t, x, dtype=np.float64, seed=1, training=True):
    """Forward and backward of ``m`` and of torch's ``t`` (loaded with ``m``'s
    state) on ``x`` with a random grad: outputs, gradients, state afterwards."""
    t = t.to(getattr(torch, np.dtype(dtype).name))
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})
    m.train(training)
    t.train(training)
    xt = torch.tensor(x, requires_grad=True)
    y, yt = m(x), t(xt)
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    gx = m.backward(g)
    yt.backward(torch.tensor(g))
    assert gx.dtype == dtype and gx.shape == x.shape
    gtol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else tol
    np.testing.assert_allclose(gx, xt.grad.numpy(), **gtol)
    grads = dict(m.named_grads())
    assert list(grads) == [k for k, _ in t.named_parameters()]
    for name, p in t.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **gtol, err_msg=name)
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(m.state_dict()[k], v.numpy(), **tol, err_msg=k)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nn_group_norm_against_torch(dtype):
    for args, kwargs in [((2, 4), {}), ((4, 4), dict(eps=1e-3)), ((1, 4), dict(affine=False)),
                         ((2, 4), dict(bias=False))]:
        ours, theirs = nbops.nn.GroupNorm(*args, **kwargs), torch.nn.GroupNorm(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
            assert ours.state_dict()[k].dtype == np.float32
        m = nbops.nn.GroupNorm(*args, **kwargs, dtype=dtype)
        if m.affine:
            m.weight[...] = affine(4, dtype)[0]
            if m.bias is not None:
                m.bias[...] = affine(4, dtype)[1]
        _check_module(m, torch.nn.GroupNorm(*args, **kwargs), data((3, 4, 2, 5), dtype), dtype)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nbops.nn.GroupNorm(3, 4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (2, 3, 7)),
                                       ("InstanceNorm1d", (3, 7)),
                                       ("InstanceNorm2d", (2, 3, 4, 5)),
                                       ("InstanceNorm3d", (2, 3, 2, 3, 2))])
def test_nn_instance_norm_against_torch(cls, shape, dtype):
    for kwargs in [{}, dict(affine=True), dict(track_running_stats=True, momentum=0.3),
                   dict(affine=True, track_running_stats=True, eps=1e-3),
                   dict(affine=True, bias=False, track_running_stats=True, momentum=None)]:
        ours, theirs = getattr(nbops.nn, cls)(3, **kwargs), getattr(torch.nn, cls)(3, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        m = getattr(nbops.nn, cls)(3, **kwargs, dtype=dtype)
        if m.affine:
            m.weight[...] = affine(3, dtype)[0]
            if m.bias is not None:
                m.bias[...] = affine(3, dtype)[1]
        t = getattr(torch.nn, cls)(3, **kwargs)
        for training in (True, False):  # training updates the running stats; eval uses them
            _check_module(m, t, data(shape, dtype, seed=int(training)), dtype,
                          training=training)
    with pytest.raises(ValueError, match="expected"):
        getattr(nbops.nn, cls)(3)(np.ones((2,) * 6))
    with pytest.raises(ValueError, match="num_features"):
        getattr(nbops.nn, cls)(4, affine=True)(data(shape, dtype))


# --------------------------------------------------------------------------- #
# inside @njit
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def njit_fns():
    from numba import njit

    @njit
    def gn(x, w, b, g):
        y, mean, rstd = nbops.group_norm(x, 2, w, b, 1e-3, return_stats=True)
        return (y, mean, rstd, nbops.group_norm(x, 4),
                nbops.group_norm_backward(g, x, 2, mean, rstd, w),
                nbops.group_norm_backward(g, x, 2, mean, rstd, None, has_bias=True))

    @njit
    def inorm(x, rm, rv, w, b, g):
        y, mean, rstd = nbops.instance_norm(x, rm, rv, w, b, momentum=0.2,
                                            return_stats=True)
        ye, me, re = nbops.instance_norm(x, rm, rv, w, b, False, return_stats=True)
        return (y, mean, rstd, nbops.instance_norm(x), ye,
                nbops.instance_norm_backward(g, x, mean, rstd, w),
                nbops.instance_norm_backward(g, x, me, re, w, False))

    return gn, inorm


def test_inside_njit_same_bits_as_outside(njit_fns):
    gn, inorm = njit_fns
    x = data((3, 4, 5), np.float32)
    g = data(x.shape, np.float32, seed=8)
    w, b = affine(4, np.float32)
    y, mean, rstd, y4, grads, grads_nw = gn(x, w, b, g)
    ey, emean, erstd = nbops.group_norm(x, 2, w, b, 1e-3, return_stats=True)
    for a, e in zip([y, mean, rstd, y4, *grads],
                    [ey, emean, erstd, nbops.group_norm(x, 4),
                     *nbops.group_norm_backward(g, x, 2, emean, erstd, w)], strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_array_equal(a, e)
    expect = nbops.group_norm_backward(g, x, 2, emean, erstd, None, has_bias=True)
    assert grads_nw[1] is None and expect[1] is None
    np.testing.assert_array_equal(grads_nw[0], expect[0])
    np.testing.assert_array_equal(grads_nw[2], expect[2])

    rm, rv = data(4, np.float32, seed=5), np.ones(4, np.float32) * 2
    erm, erv = rm.copy(), rv.copy()
    y, mean, rstd, y0, ye, grads, egrads = inorm(x, rm, rv, w, b, g)
    ey, emean, erstd = nbops.instance_norm(x, erm, erv, w, b, momentum=0.2, return_stats=True)
    np.testing.assert_array_equal(rm, erm)
    np.testing.assert_array_equal(rv, erv)
    eye, eme, ere = nbops.instance_norm(x, erm, erv, w, b, False, return_stats=True)
    for a, e in zip([y, mean, rstd, y0, ye, *grads, *egrads],
                    [ey, emean, erstd, nbops.instance_norm(x), eye,
                     *nbops.instance_norm_backward(g, x, emean, erstd, w),
                     *nbops.instance_norm_backward(g, x, eme, ere, w, False)], strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_array_equal(a, e)


def test_inside_njit_bad_shapes(njit_fns):
    gn, inorm = njit_fns
    x = data((3, 4, 5), np.float32)
    w = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="weight must have input.shape"):
        gn(x, np.ones(5, np.float32), w, x)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        gn(data((3, 6, 5), np.float32), np.ones(6, np.float32), np.ones(6, np.float32),
           data((3, 6, 5), np.float32))
    with pytest.raises(ValueError, match="grad_output must have the input's shape"):
        gn(x, w, w, x[:2])
    with pytest.raises(ValueError, match="running_mean and running_var must have"):
        inorm(x, np.zeros(3, np.float32), np.ones(3, np.float32), w, w, x)


def test_nn_constructor_signatures_and_legacy_checkpoint_as_torch():
    import inspect

    def signature(cls):
        return [(p.name, p.default, p.kind)
                for p in list(inspect.signature(cls.__init__).parameters.values())[1:]]

    for name in ("GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"):
        assert signature(getattr(nbops.nn, name)) == signature(getattr(torch.nn, name)), name
    # a plain dict carries no version: running stats are rejected as PyTorch does
    legacy = {"running_mean": np.zeros(3, np.float32), "running_var": np.ones(3, np.float32)}
    with pytest.raises(RuntimeError) as ours:
        nbops.nn.InstanceNorm1d(3).load_state_dict(legacy)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.InstanceNorm1d(3).load_state_dict({k: torch.from_numpy(v)
                                                    for k, v in legacy.items()})
    assert "Unexpected running stats buffer(s)" in str(ours.value)
    assert str(ours.value).split(":", 1)[1].strip()[:200] == \
        str(theirs.value).split(":", 1)[1].strip()[:200]
    m = nbops.nn.InstanceNorm1d(3, track_running_stats=True)
    m.load_state_dict(legacy)  # num_batches_tracked optional without a version
    assert int(m.num_batches_tracked) == 0
