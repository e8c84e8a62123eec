"""Every CUDA op against the CPU path (which the rest of the suite checks against
PyTorch), on small arrays (the simulator runs each GPU thread as a Python thread)."""

import numpy as np
import pytest

import nbops
from nbops._ops import table

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(7)




SPECIAL = np.array([-np.inf, -30.0, -1.0, -0.0, 0.0, 1e-8, 0.5, 3.0, 30.0, np.inf, np.nan])

# the op table's elementwise entries (prelu, with its weight, is tested below);
# the parameters: these, else the entry's non-default set
PARAMS = {"elu": {"alpha": 1.5}, "leaky_relu": {"negative_slope": 0.2},
          "threshold": {"threshold": 0.1, "value": -2.0},
          "hardtanh": {"min_val": -0.5, "max_val": 2.0},
          "softplus": {"beta": 2.0, "threshold": 5.0}, "softshrink": {"lambd": 0.3}}
ACTS = [(e.name, PARAMS.get(e.name, e.example_params()))
        for e in table.elementwise_entries() if e.name != "prelu"]
# the op table's row ops (softmax, log_softmax, softmin)
ROW_OPS = [e.name for e in table.row_op_entries()]
INPLACE_ACTS = [e.name for e in table.elementwise_entries() if e.inplace]


def _required(name):
    """The op's required arguments (threshold's), from the table's examples."""
    return {p.name: p.example for p in table.TABLE[name].params if p.required}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", ACTS)
def test_activation(name, kw, dtype):
    x = np.concatenate([SPECIAL, RNG.standard_normal(29) * 4]).astype(dtype).reshape(5, 8)
    fn = getattr(nbops, name)
    _close(_h(fn(_d(x), **kw)), fn(x, **kw), dtype)
    defaults = _required(name)
    if kw != defaults:  # also with the default parameters
        _close(_h(fn(_d(x), **defaults)), fn(x, **defaults), dtype)


@pytest.mark.parametrize("name", INPLACE_ACTS)
def test_activation_inplace_and_out(name):
    x = RNG.standard_normal((3, 7)).astype(np.float32)
    fn = getattr(nbops, name)
    kw = _required(name)
    want = fn(x, **kw)
    d = _d(x)
    r = fn(d, inplace=True, **kw)
    assert r is d
    _close(_h(d), want, np.float32)
    out = cuda.device_array(x.shape, np.float32)
    assert fn(_d(x), out=out, **kw) is out
    _close(_h(out), want, np.float32)


def test_fortran_order_and_empty():
    x = np.asfortranarray(RNG.standard_normal((4, 5)))
    _close(_h(nbops.sigmoid(cuda.to_device(x))), nbops.sigmoid(x), np.float64)
    e = nbops.relu(cuda.to_device(np.zeros((0, 3), np.float32)))
    assert e.shape == (0, 3)


def test_prelu():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    for w in (np.array([0.25], np.float32), np.array([0.1, 0.2, 0.3], np.float32)):
        _close(_h(nbops.prelu(_d(x), _d(w))), nbops.prelu(x, w), np.float32)


def test_mixing_host_and_device_raises():
    x = RNG.standard_normal((2, 3))
    with pytest.raises(TypeError, match="target"):
        nbops.mse_loss(_d(x), x)
    with pytest.raises(TypeError, match="target"):
        nbops.mse_loss(x, _d(x))
    with pytest.raises(TypeError, match="out"):
        nbops.relu(_d(x), out=np.empty_like(x))
    with pytest.raises(TypeError, match="float32 or float64"):
        nbops.relu(cuda.to_device(np.arange(3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ROW_OPS)
@pytest.mark.parametrize("shape,axis", [((3, 50), -1), ((2, 5, 3), 1), ((4, 3), 0), ((7,), 0)])
def test_softmax_family(fn, shape, axis, dtype):
    x = (RNG.standard_normal(shape) * 5).astype(dtype)
    f = getattr(nbops, fn)
    _close(_h(f(_d(x), axis=axis)), f(x, axis=axis), dtype)


def test_softmax_special_rows():
    x = np.array([[0.0, 0.0, -np.inf], [-np.inf] * 3, [1.0, np.inf, 0.0], [1.0, np.nan, 0.0]])
    for f in (nbops.softmax, nbops.log_softmax):
        np.testing.assert_array_equal(_h(f(_d(x))), f(x))


# the op table's pointwise losses (defaults and example parameters), then the others
POINTWISE = table.pointwise_loss_entries()
LOSSES = [*((e.name, kw) for e in POINTWISE
            for kw in ([{}, e.example_params()] if e.params else [{}])),
          ("kl_div", {}), ("kl_div", {"log_target": True}),
          ("binary_cross_entropy_with_logits", {})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name,kw", LOSSES)
def test_elementwise_losses(name, kw, reduction, dtype):
    x = RNG.standard_normal((4, 9)).astype(dtype)
    t = RNG.random((4, 9)).astype(dtype)
    f = getattr(nbops, name)
    got = f(_d(x), _d(t), reduction=reduction, **kw)
    want = f(x, t, reduction=reduction, **kw)
    if reduction != "none":
        assert got.shape == ()
    _close(_h(got), want, dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("entry", POINTWISE, ids=[e.name for e in POINTWISE])
def test_pointwise_losses_vs_reference(entry, reduction):
    import _reference as R

    x = RNG.standard_normal((4, 9))
    t = RNG.random((4, 9))
    w = RNG.random((4, 9)) * 2 if entry.weight else None
    kw = entry.example_params()
    got = entry.function(_d(x), _d(t), reduction=reduction, **kw,
                         **({"weight": _d(w)} if entry.weight else {}))
    loss = R.reference(entry.name)(x, t, **kw) * (1.0 if w is None else w)
    want = {"none": loss, "sum": loss.sum(),
            "mean": loss.sum() / (w.sum() if w is not None and entry.mean_divisor == "weight_sum"
                                  else loss.size)}[reduction]
    _close(_h(got), want, np.float64)


def test_kl_div_batchmean():
    x = np.log(RNG.random((3, 5)))
    t = RNG.random((3, 5))
    _close(_h(nbops.kl_div(_d(x), _d(t), reduction="batchmean")),
           nbops.kl_div(x, t, reduction="batchmean"), np.float64)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_bce_weight_and_pos_weight(reduction):
    x = RNG.random((3, 4))
    t = RNG.random((3, 4))
    w = RNG.random((3, 4))
    pw = RNG.random(4) * 3
    _close(_h(nbops.binary_cross_entropy(_d(x), _d(t), weight=_d(w), reduction=reduction)),
           nbops.binary_cross_entropy(x, t, weight=w, reduction=reduction), np.float64)
    _close(_h(nbops.binary_cross_entropy_with_logits(_d(x), _d(t), pos_weight=_d(pw),
                                                     reduction=reduction)),
           nbops.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction),
           np.float64)
    _close(_h(nbops.mse_loss(_d(x), _d(t), weight=_d(w), reduction=reduction)),
           nbops.mse_loss(x, t, weight=w, reduction=reduction), np.float64)


def test_bce_rejects_out_of_range_probability():
    x = np.array([0.2, 1.5])
    with pytest.raises(ValueError, match="input"):
        nbops.binary_cross_entropy(_d(x), _d(np.array([0.0, 1.0])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2), (5,)])
def test_class_index_losses(fn, reduction, shape, dtype):
    x = RNG.standard_normal(shape).astype(dtype)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = RNG.integers(0, C, tshape).astype(np.int32)
    if t.ndim:
        t.reshape(-1)[0] = -100  # ignored
    f = getattr(nbops, fn)
    w = RNG.random(C).astype(dtype)
    for kw in ({}, {"weight": w}):
        dkw = {k: _d(v) for k, v in kw.items()}
        _close(_h(f(_d(x), _d(t), reduction=reduction, **dkw)),
               f(x, t, reduction=reduction, **kw), dtype)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_label_smoothing_and_probabilities(reduction):
    x = RNG.standard_normal((5, 4))
    t = RNG.integers(0, 4, 5)
    w = RNG.random(4)
    _close(_h(nbops.cross_entropy(_d(x), _d(t), weight=_d(w), label_smoothing=0.2,
                                  reduction=reduction)),
           nbops.cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction=reduction),
           np.float64)
    p = nbops.softmax(RNG.standard_normal((5, 4)))
    _close(_h(nbops.cross_entropy(_d(x), _d(p), label_smoothing=0.1, reduction=reduction)),
           nbops.cross_entropy(x, p, label_smoothing=0.1, reduction=reduction), np.float64)


@pytest.mark.parametrize("bad", [4, -1])
def test_class_index_out_of_range_raises_and_context_survives(bad):
    x = RNG.standard_normal((3, 4))
    t = np.array([0, bad, 2])
    with pytest.raises(ValueError, match="out of range"):
        nbops.cross_entropy(_d(x), _d(t))
    t[1] = 1  # the context is still usable
    _close(_h(nbops.cross_entropy(_d(x), _d(t))), nbops.cross_entropy(x, t), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(training, dtype):
    x = (RNG.standard_normal((4, 3, 5)) * 3 + 10).astype(dtype)
    w, b = RNG.random(3).astype(dtype), RNG.random(3).astype(dtype)
    rm, rv = RNG.random(3).astype(dtype), (RNG.random(3) + 0.5).astype(dtype)
    drm, drv = _d(rm), _d(rv)
    got = nbops.batch_norm(_d(x), drm, drv, _d(w), _d(b), training=training, momentum=0.2)
    want = nbops.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2)
    _close(_h(got), want, dtype)
    _close(_h(drm), rm, dtype)
    _close(_h(drv), rv, dtype)


def test_batch_norm_deterministic():
    x = _d(RNG.standard_normal((8, 2, 33)).astype(np.float32))
    a = _h(nbops.batch_norm(x, None, None, training=True))
    b = _h(nbops.batch_norm(x, None, None, training=True))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xshape", [(5, 7), (2, 3, 7), (7,)])
def test_linear(xshape, dtype):
    x = RNG.standard_normal(xshape).astype(dtype)
    w = RNG.standard_normal((6, 7)).astype(dtype)
    b = RNG.standard_normal(6).astype(dtype)
    _close(_h(nbops.linear(_d(x), _d(w), _d(b))), nbops.linear(x, w, b), dtype)
    _close(_h(nbops.linear(_d(x), _d(w))), nbops.linear(x, w), dtype)


@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, np.inf, -np.inf, 0.5])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance(p, keepdim):
    a = RNG.standard_normal((4, 6))
    b = RNG.standard_normal((4, 6))
    _close(_h(nbops.pairwise_distance(_d(a), _d(b), p=p, keepdim=keepdim)),
           nbops.pairwise_distance(a, b, p=p, keepdim=keepdim), np.float64)
    _close(_h(nbops.pairwise_distance(_d(a[0]), _d(b[0]), p=p)),
           nbops.pairwise_distance(a[0], b[0], p=p), np.float64)


@pytest.mark.gpu
def test_large_relu_on_hardware():
    x = RNG.standard_normal(10_000_000).astype(np.float32)
    np.testing.assert_array_equal(_h(nbops.relu(_d(x))), nbops.relu(x))
