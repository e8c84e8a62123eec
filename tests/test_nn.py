"""nbops.nn: the layer-object shim against torch.nn.

Every module is compared with its PyTorch counterpart (when torch is
installed) with identical state, in train and eval mode; state dicts go both
ways; reprs, constructor validation and load_state_dict errors match PyTorch's.
Shapes are small except where a test runs PyTorch's documented example.
"""

import doctest
import importlib
import inspect
import re
from collections import OrderedDict

import numpy as np
import pytest

import nbops
import nbops.nn as nn
from nbops import data
from nbops._ops import table


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_grad_enabled(False)
    yield torch
    torch.set_grad_enabled(True)


def T(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


def to_torch_state(torch, state):
    return OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in state.items())


def to_numpy_state(state):
    return OrderedDict((k, v.detach().numpy().copy()) for k, v in state.items())


def assert_same_state(nb_mod, t_mod, rtol=1e-6, atol=1e-6):
    a, b = nb_mod.state_dict(), t_mod.state_dict()
    assert list(a) == list(b)
    for k in a:
        assert a[k].shape == tuple(b[k].shape), k
        np.testing.assert_allclose(a[k], b[k].numpy(), rtol=rtol, atol=atol, err_msg=k)


def norm_msg(msg):
    """PyTorch's shapes (``torch.Size([2, 3])``) written as NumPy's (``(2, 3)``)."""
    def shape(m):
        dims = [d.strip() for d in m.group(1).split(",") if d.strip()]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    return re.sub(r"torch\.Size\(\[(.*?)\]\)", shape, msg)


SPECIAL = np.array([-3.0, -1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0, 3.0, 25.0, -np.inf, np.inf,
                    np.nan], dtype=np.float32)


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------

# (class name, args, kwargs): PyTorch's defaults and some non-default settings
ACTIVATIONS = [
    ("ReLU", (), {}), ("ReLU", (), {"inplace": True}),
    ("ReLU6", (), {}), ("ReLU6", (), {"inplace": True}),
    ("ELU", (), {}), ("ELU", (0.5,), {"inplace": True}),
    ("LeakyReLU", (), {}), ("LeakyReLU", (0.2,), {}), ("LeakyReLU", (), {"inplace": True}),
    ("Threshold", (0.1, 20), {}), ("Threshold", (0.5, -1.0, True), {}),
    ("Hardtanh", (), {}), ("Hardtanh", (-2, 2), {}), ("Hardtanh", (-0.5, 1.5, True), {}),
    ("Sigmoid", (), {}), ("Tanh", (), {}), ("LogSigmoid", (), {}),
    ("Softplus", (), {}), ("Softplus", (2, 10), {}),
    ("Softshrink", (), {}), ("Softshrink", (1.0,), {}),
    ("Softsign", (), {}),
    ("PReLU", (), {}), ("PReLU", (3,), {"init": 0.1}),
    ("Softmax", (), {"dim": 1}), ("Softmax", (-1,), {}),
    ("Softmin", (), {"dim": 0}), ("LogSoftmax", (), {"dim": 2}),
]


@pytest.mark.parametrize("name,args,kwargs", ACTIVATIONS,
                         ids=[f"{n}{a}{k}" for n, a, k in ACTIVATIONS])
def test_activation_vs_torch(torch, name, args, kwargs):
    m = getattr(nn, name)(*args, **kwargs)
    t = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(m) == repr(t)
    m.load_state_dict(to_numpy_state(t.state_dict()))
    if name == "PReLU":
        t.weight.copy_(torch.linspace(-0.5, 0.5, t.weight.numel()))
        m.load_state_dict(to_numpy_state(t.state_dict()))
    x = np.concatenate([SPECIAL, np.linspace(-4, 4, 11, dtype=np.float32)])[:24].reshape(2, 3, 4)
    for mode in (True, False):
        m.train(mode), t.train(mode)
        xn, xt = x.copy(), T(torch, x.copy())
        y, yt = m(xn), t(xt)
        assert y.dtype == np.float32 and y.shape == x.shape
        np.testing.assert_allclose(y, yt.numpy(), rtol=2e-6, atol=1e-7, equal_nan=True)
        if getattr(m, "inplace", False):
            assert y is xn
    assert_same_state(m, t)


# Every activation module of the op table (nbops/_ops/table.py), the generated
# plain wrappers and the hand-written ones: constructor signature, repr with the
# defaults and with the entry's non-default parameters (and inplace=True), values.
TABLE_MODULES = [(e.module_name, e) for e in table.elementwise_entries()
                 if isinstance(e.module_name, str)]


def _signature(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [(p.name, p.default) for p in params]


@pytest.mark.parametrize("name,entry", TABLE_MODULES, ids=[n for n, _ in TABLE_MODULES])
def test_table_modules_vs_torch(torch, name, entry):
    cls, tcls = getattr(nn, name), getattr(torch.nn, name)
    assert name in nn.__all__
    assert _signature(cls) == _signature(tcls)
    kwargs_sets = [{}, {p.name: p.example for p in entry.params if p.required}]
    if entry.params:
        kwargs_sets.append({**entry.example_params(), **({"inplace": True}
                                                          if entry.inplace else {})})
    elif entry.inplace:
        kwargs_sets.append({"inplace": True})
    x = np.concatenate([SPECIAL, np.linspace(-4, 4, 11, dtype=np.float32)])[:24]
    for kw in kwargs_sets:
        if entry.name == "prelu" or any(p.required and p.name not in kw for p in entry.params):
            continue
        m, t = cls(**kw), tcls(**kw)
        assert repr(m) == repr(t)
        xn, xt = x.copy(), T(torch, x.copy())
        y, yt = m(xn), t(xt)
        assert y.dtype == np.float32
        if name == "GELU" and kw.get("approximate", "none") == "none":
            # torch's float32 kernel loses accuracy where erf is near -1 (its
            # 1 + erf(x / sqrt 2)) and is NaN at +inf: its float64 one decides
            yt = t(T(torch, x.astype(np.float64))).float()
        np.testing.assert_allclose(y, yt.numpy(), rtol=2e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("name", ["Softmax", "Softmin", "LogSoftmax"])
def test_softmax_implicit_dim(torch, name):
    m, t = getattr(nn, name)(), getattr(torch.nn, name)()
    assert repr(m) == repr(t) == f"{name}(dim=None)"
    for shape in [(), (5,), (2, 3), (2, 3, 4), (2, 3, 2, 2)]:
        x = np.linspace(-2, 2, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        with pytest.warns(UserWarning, match="Implicit dimension choice") as rec:
            y = m(x)
        assert rec[0].filename == __file__  # points at the caller, as PyTorch's does
        with pytest.warns(UserWarning, match="Implicit dimension choice") as trec:
            yt = t(T(torch, x))
        assert str(rec[0].message) == str(trec[0].message)
        np.testing.assert_allclose(y, yt.numpy(), rtol=1e-6, atol=1e-7)


def test_activation_constructor_errors(torch):
    with pytest.raises(ValueError, match=r"max_val \(0\) must be greater than min_val \(1\)"):
        nn.Hardtanh(1, 0)
    with pytest.raises(AssertionError, match=r"max_val \(0\) must be greater than min_val"):
        torch.nn.Hardtanh(1, 0)
    with pytest.warns(FutureWarning, match="`min_value` is deprecated"):
        m = nn.Hardtanh(min_value=-3)
    with pytest.warns(FutureWarning, match="`min_value` is deprecated"):
        t = torch.nn.Hardtanh(min_value=-3)
    assert repr(m) == repr(t)
    with pytest.raises(TypeError):
        nn.Threshold(0.5)  # threshold and value are required, as in PyTorch
    with pytest.raises(ValueError, match="negative"):
        nn.PReLU(-1)
    with pytest.raises(RuntimeError):
        torch.nn.PReLU(-1)
    with pytest.raises(TypeError):
        nn.PReLU(2.5)


def test_prelu_init_and_dtype():
    m = nn.PReLU(3, init=0.1, dtype=np.float64)
    assert m.weight.dtype == np.float64 and np.all(m.weight == 0.1)
    assert nn.PReLU().weight.dtype == np.float32
    assert list(m.state_dict()) == ["weight"]


# ---------------------------------------------------------------------------
# BatchNorm
# ---------------------------------------------------------------------------

BN_CONFIGS = [
    {}, {"momentum": None}, {"affine": False}, {"track_running_stats": False},
    {"affine": False, "track_running_stats": False}, {"bias": False},
    {"eps": 1e-3, "momentum": 0.3},
]
BN_SHAPES = {"BatchNorm1d": [(8, 3), (4, 3, 5)], "BatchNorm2d": [(4, 3, 2, 3)],
             "BatchNorm3d": [(2, 3, 2, 2, 3)]}


@pytest.mark.parametrize("name", list(BN_SHAPES))
@pytest.mark.parametrize("cfg", BN_CONFIGS, ids=[str(c) for c in BN_CONFIGS])
def test_batchnorm_vs_torch(torch, name, cfg):
    rng = np.random.default_rng(0)
    m, t = getattr(nn, name)(3, **cfg), getattr(torch.nn, name)(3, **cfg)
    assert repr(m) == repr(t)
    assert_same_state(m, t, rtol=0, atol=0)
    if m.affine:  # non-trivial affine parameters, loaded from torch
        t.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        if t.bias is not None:
            t.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        m.load_state_dict(to_numpy_state(t.state_dict()))
    for shape in BN_SHAPES[name]:
        for _step in range(3):  # training updates the running statistics
            x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
            y, yt = m.train()(x), t.train()(T(torch, x))
            np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)
            assert_same_state(m, t, rtol=1e-5)
        x = rng.standard_normal(shape).astype(np.float32)
        y, yt = m.eval()(x), t.eval()(T(torch, x))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)
        assert_same_state(m, t, rtol=1e-5)
    if m.track_running_stats:
        assert m.num_batches_tracked.dtype == np.int64 and m.num_batches_tracked.shape == ()
        assert int(m.num_batches_tracked) == 3 * len(BN_SHAPES[name])


def test_batchnorm_rank_checks(torch):
    for name, ok in [("BatchNorm1d", (2, 3)), ("BatchNorm2d", (4,)), ("BatchNorm3d", (5,))]:
        m, t = getattr(nn, name)(3), getattr(torch.nn, name)(3)
        for ndim in range(1, 7):
            x = np.ones((2, 3) + (2,) * (ndim - 2) if ndim >= 2 else (3,), np.float32)
            if ndim in ok:
                continue
            with pytest.raises(ValueError) as e1:
                m(x)
            with pytest.raises(ValueError) as e2:
                t(T(torch, x))
            assert str(e1.value) == str(e2.value)
            assert int(m.num_batches_tracked) == 0


def test_batchnorm_momentum_none_is_cumulative_average():
    m = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    rng = np.random.default_rng(1)
    batches = [rng.standard_normal((6, 2)) + i for i in range(4)]
    for b in batches:
        m(b)
    np.testing.assert_allclose(m.running_mean, np.mean([b.mean(0) for b in batches], axis=0))
    np.testing.assert_allclose(m.running_var, np.mean([b.var(0, ddof=1) for b in batches], 0))
    assert int(m.num_batches_tracked) == 4


def test_batchnorm_errors_leave_state_unchanged():
    m = nn.BatchNorm1d(3)
    with pytest.raises(ValueError):
        m(np.ones((1, 3), np.float32))  # one value per channel in training
    assert int(m.num_batches_tracked) == 0 and np.all(m.running_mean == 0)


def test_batchnorm_constructor(torch):
    m = nn.BatchNorm2d(4, dtype="float64")
    assert m.weight.dtype == m.running_var.dtype == np.float64
    assert m.num_batches_tracked.dtype == np.int64
    with pytest.raises(ValueError, match="negative"):
        nn.BatchNorm1d(-2)
    with pytest.raises(RuntimeError):
        torch.nn.BatchNorm1d(-2)
    with pytest.raises(ValueError, match="'cpu', 'cuda'"):
        nn.BatchNorm1d(2, device="mps")
    nn.BatchNorm1d(2, device="cpu")
    nn.BatchNorm1d(2, device=torch.device("cpu"), dtype=torch.float64)
    with pytest.raises(TypeError, match="floating"):
        nn.BatchNorm1d(2, dtype=np.int32)


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_linear_vs_torch(torch, bias):
    m, t = nn.Linear(5, 3, bias=bias, rng=0), torch.nn.Linear(5, 3, bias=bias)
    assert repr(m) == repr(t)
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict(to_numpy_state(t.state_dict()))
    x = np.random.default_rng(0).standard_normal((2, 4, 5)).astype(np.float32)
    for mode in (True, False):
        y = m.train(mode)(x)
        np.testing.assert_allclose(y, t.train(mode)(T(torch, x)).numpy(), rtol=1e-5, atol=1e-6)
    # and the other way: nbops state into torch
    m2 = nn.Linear(5, 3, bias=bias, rng=1)
    t.load_state_dict(to_torch_state(torch, m2.state_dict()))
    np.testing.assert_allclose(m2(x), t(T(torch, x)).numpy(), rtol=1e-5, atol=1e-6)


def test_linear_init_distribution():
    m = nn.Linear(64, 400, rng=0)
    bound = 1 / 8
    for a in (m.weight, m.bias):
        assert a.dtype == np.float32
        assert np.all(np.abs(a) <= bound)
    w = m.weight.astype(np.float64)
    assert abs(w.mean()) < 0.01 * bound * 10
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.02)
    assert np.abs(m.bias).max() > 0.9 * bound
    # rng: int seed and Generator are reproducible, None is fresh
    np.testing.assert_array_equal(nn.Linear(4, 3, rng=7).weight, nn.Linear(4, 3, rng=7).weight)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(nn.Linear(4, 3, rng=g1).bias, nn.Linear(4, 3, rng=g2).bias)
    assert not np.array_equal(nn.Linear(4, 3).weight, nn.Linear(4, 3).weight)
    assert nn.Linear(4, 3, dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 2, rng="seed")


def test_linear_init_matches_torch_statistics(torch):
    torch.manual_seed(0)
    t = torch.nn.Linear(256, 512)
    m = nn.Linear(256, 512, rng=0)
    for a, b in [(m.weight, t.weight), (m.bias, t.bias)]:
        b = b.numpy()
        assert np.abs(a).max() <= 1 / 16 and np.abs(b).max() <= 1 / 16
        np.testing.assert_allclose(a.std(), b.std(), rtol=0.1)


def test_linear_constructor_errors(torch):
    with pytest.raises(ValueError, match="negative"):
        nn.Linear(-1, 3)
    with pytest.raises(RuntimeError, match="negative"):
        torch.nn.Linear(-1, 3)
    with pytest.raises(TypeError):
        nn.Linear(2.5, 3)
    with pytest.raises(TypeError):
        torch.nn.Linear(2.5, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        m = nn.Linear(0, 3)
    assert m.weight.shape == (3, 0) and np.all(m.bias == 0)


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Dropout", "Dropout2d", "Dropout3d"])
def test_dropout_repr_and_args(torch, name):
    for kw in [{}, {"p": 0.2}, {"p": 1, "inplace": True}]:
        assert repr(getattr(nn, name)(**kw)) == repr(getattr(torch.nn, name)(**kw))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError) as e1:
            getattr(nn, name)(p)
        with pytest.raises(ValueError) as e2:
            getattr(torch.nn, name)(p)
        assert str(e1.value) == str(e2.value)


@pytest.mark.parametrize("name,shape", [("Dropout", (4, 12)), ("Dropout2d", (2, 3, 2, 4)),
                                        ("Dropout3d", (2, 3, 2, 2, 2))])
def test_dropout_eval_is_identity(name, shape):
    x = np.arange(48, dtype=np.float32).reshape(shape)
    m = getattr(nn, name)(0.5, rng=0).eval()
    y = m(x)
    np.testing.assert_array_equal(y, x)
    assert y.dtype == np.float32


@pytest.mark.parametrize("name,shape", [("Dropout", (20, 16)), ("Dropout2d", (20, 16, 4, 4)),
                                        ("Dropout3d", (20, 16, 2, 4, 4))])
def test_dropout_train(torch, name, shape):
    x = np.random.default_rng(0).uniform(1, 2, shape).astype(np.float32)
    m = getattr(nn, name)(p=0.25, rng=0)
    y1, y2 = m(x), m(x)
    assert not np.array_equal(y1, y2)  # one Generator across calls: fresh masks
    m2 = getattr(nn, name)(p=0.25, rng=0)
    np.testing.assert_array_equal(m2(x), y1)  # same seed, same sequence
    np.testing.assert_array_equal(m2(x), y2)
    kept = y1 != 0
    np.testing.assert_allclose(y1[kept], x[kept] / 0.75, rtol=1e-6)
    assert 0.55 < kept.mean() < 0.95
    if name != "Dropout":  # whole channels
        per_channel = kept.reshape(shape[0], shape[1], -1)
        assert np.all(per_channel.all(-1) | ~per_channel.any(-1))
    t = getattr(torch.nn, name)(p=0.25)
    yt = t(T(torch, x)).numpy()  # same law: zeros or x / (1 - p)
    np.testing.assert_allclose(yt[yt != 0], x[yt != 0] / 0.75, rtol=1e-6)
    assert y1.dtype == np.float32


# ---------------------------------------------------------------------------
# PairwiseDistance
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"p": 1}, {"p": 3.0, "keepdim": True}, {"eps": 0.1}])
def test_pairwise_distance_vs_torch(torch, kw):
    m, t = nn.PairwiseDistance(**kw), torch.nn.PairwiseDistance(**kw)
    assert repr(m) == repr(t) == "PairwiseDistance()"
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4, 5)).astype(np.float32)
    for mode in (True, False):
        m.train(mode), t.train(mode)
        np.testing.assert_allclose(m(a, b), t(T(torch, a), T(torch, b)).numpy(), rtol=1e-5)
    assert m.norm == t.norm and m.state_dict() == OrderedDict()


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

def _loss_inputs(name, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    if name in ("CrossEntropyLoss", "NLLLoss", "NLLLoss2d"):
        if name != "CrossEntropyLoss":
            x = x - np.log(np.exp(x).sum(1, keepdims=True))
        return x, np.array([0, 2, 1, 2])
    if name == "BCELoss":
        return 1 / (1 + np.exp(-x)), rng.uniform(0, 1, x.shape).astype(np.float32)
    if name == "BCEWithLogitsLoss":
        return x, rng.uniform(0, 1, x.shape).astype(np.float32)
    if name == "KLDivLoss":
        return x - np.log(np.exp(x).sum(1, keepdims=True)), \
            rng.dirichlet(np.ones(3), 4).astype(np.float32)
    return x, rng.standard_normal((4, 3)).astype(np.float32)


W3 = np.array([0.5, 1.0, 2.0], np.float32)
# the pointwise losses of the op table (generated classes): defaults, 'sum',
# their example parameters, and 'none' with them
POINTWISE_LOSSES = [e for e in table.pointwise_loss_entries() if e.module_name]
LOSSES = [
    *((e.module_name, kw) for e in POINTWISE_LOSSES
      for kw in ({}, {"reduction": "sum"}, e.example_params(),
                 {"reduction": "none", **e.example_params()})),
    ("CrossEntropyLoss", {}), ("CrossEntropyLoss", {"weight": W3, "label_smoothing": 0.1}),
    ("CrossEntropyLoss", {"ignore_index": 2, "reduction": "sum"}),
    ("NLLLoss", {"weight": W3}), ("NLLLoss", {"reduction": "none", "ignore_index": 0}),
    ("KLDivLoss", {"reduction": "batchmean"}), ("KLDivLoss", {"log_target": True}),
    ("BCELoss", {}), ("BCELoss", {"weight": W3, "reduction": "none"}),
    ("BCEWithLogitsLoss", {}), ("BCEWithLogitsLoss", {"pos_weight": W3, "weight": W3[::-1]}),
]


@pytest.mark.parametrize("name,kw", LOSSES, ids=[f"{n}{sorted(k)}" for n, k in LOSSES])
def test_loss_vs_torch(torch, name, kw):
    tkw = {k: (T(torch, v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    m, t = getattr(nn, name)(**kw), getattr(torch.nn, name)(**tkw)
    assert repr(m) == repr(t)
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict(to_numpy_state(t.state_dict()))
    x, y = _loss_inputs(name, np.random.default_rng(0))
    for mode in (True, False):
        m.train(mode), t.train(mode)
        out, tout = m(x, y), t(T(torch, x), T(torch, y))
        assert np.asarray(out).dtype == np.float32
        np.testing.assert_allclose(out, tout.numpy(), rtol=2e-5, atol=1e-6)
    assert m.reduction == t.reduction


@pytest.mark.parametrize("entry", POINTWISE_LOSSES, ids=[e.name for e in POINTWISE_LOSSES])
def test_pointwise_loss_modules(torch, entry):
    cls, tcls = getattr(nn, entry.module_name), getattr(torch.nn, entry.module_name)
    assert entry.module_name in nn.__all__ and cls.__module__ == "nbops.nn.loss"
    assert _signature(cls) == _signature(tcls)
    assert f":func:`nbops.{entry.name}`" in cls.__doc__
    for kw in ({}, entry.example_params()):
        m, t = cls(**kw), tcls(**kw)
        assert repr(m) == repr(t)
        for p in entry.params:
            assert getattr(m, p.name) == getattr(t, p.name)


LEGACY = [(None, False), (False, None), (True, True), (False, False), (True, False),
          (False, True), (None, True), (True, None)]


@pytest.mark.parametrize("size_average,reduce", LEGACY)
def test_loss_legacy_args(torch, size_average, reduce):
    for name in (*(e.module_name for e in POINTWISE_LOSSES if e.legacy), "CrossEntropyLoss",
                 "NLLLoss", "KLDivLoss", "BCELoss", "BCEWithLogitsLoss"):
        with pytest.warns(DeprecationWarning, match="size_average and reduce args") as rec:
            m = getattr(nn, name)(size_average=size_average, reduce=reduce, reduction="xyz")
        assert rec[0].filename == __file__
        with pytest.warns(UserWarning, match="size_average and reduce args") as trec:
            t = getattr(torch.nn, name)(size_average=size_average, reduce=reduce,
                                        reduction="xyz")
        assert m.reduction == t.reduction
        assert str(rec[0].message) == str(trec[0].message)


def test_nllloss2d_is_deprecated_alias(torch):
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated") as rec:
        m = nn.NLLLoss2d(ignore_index=1)
    with pytest.warns(FutureWarning) as trec:
        t = torch.nn.NLLLoss2d(ignore_index=1)
    assert str(rec[0].message) == str(trec[0].message)
    assert isinstance(m, nn.NLLLoss) and repr(m) == repr(t) == "NLLLoss2d()"
    x = np.log(np.full((2, 3, 2, 2), 1 / 3, np.float32))
    y = np.array([[[0, 1], [2, 0]], [[1, 1], [0, 2]]])
    np.testing.assert_allclose(m(x, y), t(T(torch, x), T(torch, y)).numpy(), rtol=1e-6)


def test_loss_bad_reduction_raises_when_called(torch):
    m = nn.L1Loss(reduction="avg")  # PyTorch checks when the loss is computed
    torch.nn.L1Loss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        m(np.zeros(2), np.zeros(2))


def test_weighted_loss_state_dict_and_dtype():
    m = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert list(m.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=np.ones(2)).state_dict()) == ["pos_weight"]
    m.float()
    assert m.weight.dtype == np.float32
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "weight"'):
        nn.CrossEntropyLoss().load_state_dict({"weight": np.ones(2)})


# ---------------------------------------------------------------------------
# Module, Sequential, state dicts
# ---------------------------------------------------------------------------

def nb_mlp():
    return nn.Sequential(nn.Linear(4, 5, rng=0), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.1),
                         nn.Linear(5, 2, rng=1))


def torch_mlp(torch):
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                               torch.nn.Dropout(0.1), torch.nn.Linear(5, 2))


def test_module_structure_matches_torch(torch):
    m, t = nb_mlp(), torch_mlp(torch)
    assert repr(m) == repr(t)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in m.named_children()] == [n for n, _ in t.named_children()]
    assert [n for n, _ in m.named_modules()] == [n for n, _ in t.named_modules()]
    assert [type(c).__name__ for c in m.children()] == [type(c).__name__ for c in t.children()]
    assert len(list(m.modules())) == 6 and len(list(m.parameters())) == 6
    assert len(list(m.buffers())) == 3
    assert list(m.state_dict()) == list(t.state_dict())
    assert m.state_dict()._metadata == t.state_dict()._metadata
    assert m.training and all(c.training for c in m.modules())
    assert m.eval() is m and not any(c.training for c in m.modules())
    assert m.train() is m and all(c.training for c in m.modules())
    with pytest.raises(ValueError, match="boolean"):
        m.train(1)


def test_nested_repr_matches_torch(torch):
    def build(lib, **kw):
        return lib.Sequential(lib.Linear(2, 3, **kw), lib.Sequential(lib.Softplus(2),
                              lib.Softshrink(), lib.BatchNorm2d(3, momentum=None)),
                              lib.CrossEntropyLoss())
    assert repr(build(nn, rng=0)) == repr(build(torch.nn))


def test_state_dict_round_trips(torch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    # torch -> nbops: train torch's BatchNorm a little so its buffers are not trivial
    t = torch_mlp(torch)
    t.train()(T(torch, x))
    m = nb_mlp()
    res = m.load_state_dict(to_numpy_state(t.state_dict()))
    assert repr(res) == "<All keys matched successfully>"
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert_same_state(m, t, rtol=0, atol=0)
    assert m[1].num_batches_tracked.dtype == np.int64
    np.testing.assert_allclose(m.eval()(x), t.eval()(T(torch, x)).numpy(), rtol=1e-5, atol=1e-6)
    # nbops -> dict -> torch
    m2 = nb_mlp()
    m2.train()(x)
    m2.train()(x[::-1].copy())
    t2 = torch_mlp(torch)
    print(t2.load_state_dict(to_torch_state(torch, m2.state_dict())))
    assert_same_state(m2, t2, rtol=0, atol=0)
    assert int(t2[1].num_batches_tracked) == 2
    np.testing.assert_allclose(m2.eval()(x), t2.eval()(T(torch, x)).numpy(), rtol=1e-5,
                               atol=1e-6)
    # torch tensors load as they are (np.asarray on CPU tensors)
    m3 = nb_mlp()
    m3.load_state_dict(t.state_dict())
    assert_same_state(m3, t)


def test_state_dict_returns_module_arrays_and_copies_on_load():
    m = nn.Linear(2, 2, rng=0)
    sd = m.state_dict()
    assert sd["weight"] is m.weight
    w = m.weight
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": [1, 2]})
    assert m.weight is w and m.weight.dtype == np.float32  # copied in place, cast
    np.testing.assert_array_equal(m.bias, [1, 2])
    new = np.zeros((2, 2))
    m.load_state_dict({"weight": new, "bias": np.zeros(2)}, assign=True)
    assert m.weight is new


def _load_errors(torch, m, t, state, strict=True):
    with pytest.raises(RuntimeError) as e1:
        m.load_state_dict(state, strict=strict)
    with pytest.raises(RuntimeError) as e2:
        t.load_state_dict(to_torch_state(torch, state), strict=strict)
    assert str(e1.value) == norm_msg(str(e2.value))
    return str(e1.value)


def test_load_state_dict_errors_match_torch(torch):
    m, t = nb_mlp(), torch_mlp(torch)
    good = to_numpy_state(t.state_dict())
    before = {k: v.copy() for k, v in m.state_dict().items()}
    bad = dict(good)
    del bad["0.bias"], bad["4.weight"]
    bad["foo"] = np.zeros(1)
    bad["1.bar"] = np.zeros(1)
    bad["7.x"] = np.zeros(1)
    bad["1.weight"] = np.zeros(4, np.float32)
    bad["1.num_batches_tracked"] = np.array([3])  # (1,) into a 0-d buffer: accepted
    msg = _load_errors(torch, m, t, bad)
    assert msg.startswith("Error(s) in loading state_dict for Sequential:\n\tMissing key(s) "
                          'in state_dict: "0.bias", "4.weight". \n\tUnexpected key(s)')
    assert "size mismatch for 1.weight: copying a param with shape (4,) from checkpoint, " \
        "the shape in current model is (5,)." in msg
    for k, v in m.state_dict().items():  # all or nothing
        np.testing.assert_array_equal(v, before[k])
    # strict=False: size mismatches still raise; missing/unexpected are returned
    msg = _load_errors(torch, m, t, bad, strict=False)
    assert "Missing" not in msg and "size mismatch" in msg
    bad["1.weight"] = good["1.weight"]
    res = m.load_state_dict(bad, strict=False)
    tres = t.load_state_dict(to_torch_state(torch, bad), strict=False)
    assert res == tuple(tres) and res.missing_keys == ["0.bias", "4.weight"]
    assert int(m[1].num_batches_tracked) == 3
    with pytest.raises(TypeError, match="dict-like"):
        m.load_state_dict([("0.weight", np.zeros((5, 4)))])


def test_num_batches_tracked_optional_as_in_torch(torch):
    m, t = nb_mlp(), torch_mlp(torch)
    plain = {k: v for k, v in m.state_dict().items() if k != "1.num_batches_tracked"}
    m.load_state_dict(plain)  # a plain dict has no version: PyTorch fills the key in
    t.load_state_dict(to_torch_state(torch, plain))
    versioned = m.state_dict()  # carries _metadata with BatchNorm's version 2
    del versioned["1.num_batches_tracked"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: '
                       '"1.num_batches_tracked"'):
        m.load_state_dict(versioned)
    tsd = t.state_dict()
    del tsd["1.num_batches_tracked"]
    with pytest.raises(RuntimeError, match='"1.num_batches_tracked"'):
        t.load_state_dict(tsd)


def test_dtype_conversion():
    m = nb_mlp()
    x = np.random.default_rng(0).standard_normal((4, 4))
    assert m.double() is m
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].running_var.dtype == np.float64 and m[1].num_batches_tracked.dtype == np.int64
    assert m.eval()(x).dtype == np.float64
    m.to(np.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.to("cpu", dtype="float64")
    assert m[0].weight.dtype == np.float64
    m.float()
    assert m(x.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError):
        m.to("mps")
    with pytest.raises(TypeError):
        m.to(np.int64)


def test_sequential_container():
    m = nb_mlp()
    assert len(m) == 5 and isinstance(m[-1], nn.Linear) and m[0] is list(m)[0]
    head = m[:2]
    assert type(head) is nn.Sequential and list(head.state_dict())[0] == "0.weight"
    with pytest.raises(IndexError):
        m[5]
    m.append(nn.Softmax(dim=1))
    assert list(m._modules)[-1] == "5"
    del m[3]
    assert list(m._modules) == ["0", "1", "2", "3", "4"]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2, rng=0)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]
    m[2] = nn.Tanh()
    assert isinstance(m[2], nn.Tanh)


def test_custom_module():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(np.full(3, 2.0, np.float32))
            self.register_buffer("count", np.zeros((), np.int64))
            self.register_buffer("cache", np.zeros(3), persistent=False)
            self.inner = nn.Linear(3, 3, rng=0)

        def forward(self, x):
            self.count += 1
            return self.inner(x) * self.scale

    b = Block()
    assert list(b.state_dict()) == ["scale", "count", "inner.weight", "inner.bias"]
    assert [n for n, _ in b.named_buffers()] == ["count", "cache"]
    y = b(np.ones((2, 3), np.float32))
    assert y.shape == (2, 3) and int(b.count) == 1
    assert repr(b) == "Block(\n  (inner): Linear(in_features=3, out_features=3, bias=True)\n)"
    b.scale = np.ones(3)  # a plain array replaces a registered parameter
    assert "scale" in dict(b.named_parameters())
    with pytest.raises(TypeError, match="parameter"):
        b.scale = [1, 2, 3]
    with pytest.raises(TypeError, match="child module"):
        b.inner = 3
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)
    del b.inner
    assert "inner.weight" not in b.state_dict()


# ---------------------------------------------------------------------------
# The shipped, PyTorch-trained MLP
# ---------------------------------------------------------------------------

def test_shipped_checkpoint_loads_and_classifies():
    state = data.load_checkpoint()
    model = data.mlp(rng=0)
    assert list(state) == list(model.state_dict())
    assert repr(model.load_state_dict(state)) == "<All keys matched successfully>"
    x, y = data.make_dataset(data.N_TEST, data.TEST_SEED)
    logits = model.eval()(x)
    loss = nn.CrossEntropyLoss()(logits, y)
    assert loss.dtype == np.float32 and loss < 0.2
    assert np.mean(logits.argmax(1) == y) > 0.95


def test_shipped_checkpoint_matches_torch(torch):
    state = data.load_checkpoint()
    t = torch.nn.Sequential(torch.nn.Linear(data.N_FEATURES, data.HIDDEN),
                            torch.nn.BatchNorm1d(data.HIDDEN), torch.nn.ReLU(),
                            torch.nn.Dropout(data.DROPOUT),
                            torch.nn.Linear(data.HIDDEN, data.N_CLASSES))
    t.load_state_dict(to_torch_state(torch, state))
    m = data.mlp()
    m.load_state_dict(state)
    assert repr(m) == repr(t)
    x, y = data.make_dataset(500, 123)
    logits, tlogits = m.eval()(x), t.eval()(T(torch, x)).numpy()
    np.testing.assert_allclose(logits, tlogits, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(logits.argmax(1), tlogits.argmax(1))
    np.testing.assert_allclose(nn.CrossEntropyLoss()(logits, y),
                               torch.nn.CrossEntropyLoss()(torch.from_numpy(tlogits),
                                                           T(torch, y)).item(), rtol=1e-5)


def test_synthetic_data_is_deterministic():
    x1, y1 = data.make_dataset(50, 3)
    x2, y2 = data.make_dataset(50, 3)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.dtype == np.float32 and y1.dtype == np.int64 and x1.shape == (50, data.N_FEATURES)
    assert set(np.unique(y1)) <= set(range(data.N_CLASSES))


# ---------------------------------------------------------------------------
# PyTorch's documented examples, converted to NumPy
# ---------------------------------------------------------------------------

def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _doc_examples(rng):
    """name -> (module kwargs/args, inputs): each class's example in PyTorch's docs."""
    ex = {name: ((), {}, (_randn(rng, 2),)) for name in
          ["ReLU", "ReLU6", "ELU", "PReLU", "Sigmoid", "Tanh", "LogSigmoid", "Softplus",
           "Softshrink", "Softsign"]}
    ex["LeakyReLU"] = ((0.1,), {}, (_randn(rng, 2),))
    ex["Hardtanh"] = ((-2, 2), {}, (_randn(rng, 2),))
    ex["Threshold"] = ((0, 0.5), {}, (np.arange(-3, 3),))
    for name in ("Softmin", "Softmax", "LogSoftmax"):
        ex[name] = ((), {"dim": 1}, (_randn(rng, 2, 3),))
    ex["BatchNorm1d"] = ((100,), {"affine": False}, (_randn(rng, 20, 100),))
    ex["BatchNorm2d"] = ((100,), {}, (_randn(rng, 20, 100, 35, 45),))
    ex["BatchNorm3d"] = ((100,), {"affine": False}, (_randn(rng, 20, 100, 35, 45, 10),))
    ex["Linear"] = ((20, 30), {}, (_randn(rng, 128, 20),))
    ex["PairwiseDistance"] = ((), {"p": 2}, (_randn(rng, 100, 128), _randn(rng, 100, 128)))
    ex["L1Loss"] = ((), {}, (_randn(rng, 3, 5), _randn(rng, 3, 5)))
    ex["MSELoss"] = ((), {}, (_randn(rng, 3, 5), _randn(rng, 3, 5)))
    ex["SmoothL1Loss"] = ((), {}, (_randn(rng, 3, 5), _randn(rng, 3, 5)))
    ex["CrossEntropyLoss"] = ((), {}, (_randn(rng, 3, 5), rng.integers(0, 5, 3)))
    p = np.exp(_randn(rng, 3, 5))
    ex["CrossEntropyLoss-probs"] = ((), {}, (_randn(rng, 3, 5), p / p.sum(1, keepdims=True)))
    x = _randn(rng, 3, 5)
    ex["NLLLoss"] = ((), {}, (x - np.log(np.exp(x).sum(1, keepdims=True)), np.array([1, 0, 4])))
    x = _randn(rng, 5, 4, 8, 8)
    ex["NLLLoss-2d"] = ((), {}, (x - np.log(np.exp(x).sum(1, keepdims=True)),
                                 rng.integers(0, 4, (5, 8, 8))))
    x, p = _randn(rng, 3, 5), np.exp(rng.uniform(0, 1, (3, 5))).astype(np.float32)
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    ex["KLDivLoss"] = ((), {"reduction": "batchmean"}, (logp, p / p.sum(1, keepdims=True)))
    ex["KLDivLoss-log"] = ((), {"reduction": "batchmean", "log_target": True},
                           (logp, np.log(p / p.sum(1, keepdims=True))))
    ex["BCELoss"] = ((), {}, (1 / (1 + np.exp(-_randn(rng, 3, 2))),
                              rng.uniform(0, 1, (3, 2)).astype(np.float32)))
    ex["BCEWithLogitsLoss"] = ((), {"pos_weight": np.ones(64, np.float32)},
                               (np.full((10, 64), 1.5, np.float32), np.ones((10, 64), np.float32)))
    ex["BCEWithLogitsLoss-2"] = ((), {}, (_randn(rng, 3),
                                          rng.integers(0, 2, 3).astype(np.float32)))
    ex["Dropout"] = ((), {"p": 0.2}, (_randn(rng, 20, 16),))
    return ex


def test_pytorch_doc_examples(torch):
    rng = np.random.default_rng(2024)
    for key, (args, kw, inputs) in _doc_examples(rng).items():
        name = key.split("-")[0]
        tkw = {k: (T(torch, v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        m, t = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **tkw)
        m.load_state_dict(to_numpy_state(t.state_dict()))
        for mode in ([True, False] if name != "Dropout" else [False]):
            m.train(mode), t.train(mode)
            out = m(*inputs)
            if name == "Threshold":  # int input: nbops promotes to float64 (NumPy's rule),
                inputs = (inputs[0].astype(np.float64),)  # PyTorch keeps int64 (value 0.5 -> 0)
                assert out.dtype == np.float64
            tout = t(*[T(torch, a) for a in inputs]).numpy()
            assert np.shape(out) == tout.shape, key
            np.testing.assert_allclose(out, tout, rtol=1e-5, atol=1e-5, err_msg=key)
        assert_same_state(m, t, rtol=1e-5, atol=1e-6)
    assert nn.Linear(20, 30)(_randn(rng, 128, 20)).shape == (128, 30)  # print(output.size())
    # BCEWithLogitsLoss docs: criterion(output, target) == -log(sigmoid(1.5))
    v = nn.BCEWithLogitsLoss(pos_weight=np.ones(64))(np.full((10, 64), 1.5), np.ones((10, 64)))
    np.testing.assert_allclose(v, 0.20141327964786433)


# ---------------------------------------------------------------------------
# The docstring examples of nbops.nn
# ---------------------------------------------------------------------------

NN_MODULES = ["nbops.nn", "nbops.nn._module", "nbops.nn.activation", "nbops.nn.normalization",
              "nbops.nn.linear", "nbops.nn.dropout", "nbops.nn.distance", "nbops.nn.loss"]


@pytest.mark.parametrize("modname", NN_MODULES)
def test_docstring_examples(modname):
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    n = 0
    for test in finder.find(mod, modname, globs={"np": np, "nbops": nbops}):
        runner.run(test)
        n += len(test.examples)
    assert runner.failures == 0
    assert n > 0 or modname == "nbops.nn.distance"


# ---------------------------------------------------------------------------
# odds and ends
# ---------------------------------------------------------------------------

def test_copy_and_pickle():
    import copy
    import pickle
    m = nb_mlp()
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert repr(clone) == repr(m) and list(clone.state_dict()) == list(m.state_dict())
        assert clone[0].weight is not m[0].weight
        np.testing.assert_array_equal(clone.eval()(x), m.eval()(x))


def test_float64_modules_vs_torch(torch):
    m, t = nb_mlp().double(), torch_mlp(torch).double()
    m.load_state_dict(to_numpy_state(t.state_dict()))
    x = np.random.default_rng(0).standard_normal((8, 4))
    y, yt = m.train()(x), t.train()(T(torch, x))
    assert y.dtype == np.float64
    kept = yt.numpy() != 0  # dropout masks differ; compare the BatchNorm state instead
    assert kept.any()
    assert_same_state(m, t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.eval()(x), t.eval()(T(torch, x)).numpy(), rtol=1e-12,
                               atol=1e-12)


def test_identity_and_import_light():
    x = np.ones(2)
    assert nn.Identity(3, foo=1)(x) is x and repr(nn.Identity()) == "Identity()"
    import subprocess
    import sys
    code = ("import sys, nbops, nbops.nn; m = nbops.nn.Linear(3, 2, rng=0); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------
# Devices on the CPU side (the CUDA side: tests/cuda/test_cuda_nn.py)
# ---------------------------------------------------------------------------

def test_cpu_on_a_host_model_is_a_no_op(torch):
    m = nb_mlp()
    before = [(n, a) for n, a in (*m.named_parameters(), *m.named_buffers())]
    assert m.cpu() is m
    assert m.to("cpu") is m and m.to(device="cpu") is m and m.to("cpu:0") is m
    assert m.to(torch.device("cpu")) is m
    after = [(n, a) for n, a in (*m.named_parameters(), *m.named_buffers())]
    assert [n for n, _ in before] == [n for n, _ in after]
    # the same arrays, no copies
    assert all(a is b for (_, a), (_, b) in zip(before, after, strict=True))
    assert m.device == "cpu" and nn.ReLU().device == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda0", "mps", "", "cpu:1",
                                 "meta", 3])
def test_bad_device_strings_raise_value_error(bad):
    m = nb_mlp()
    w = m[0].weight
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:<index>'"):
        m.to(device=bad)
    if isinstance(bad, str):
        with pytest.raises(ValueError):
            m.to(bad, np.float64)
    assert m[0].weight is w and w.dtype == np.float32  # nothing changed
    with pytest.raises(ValueError):
        nn.Linear(2, 2, device=bad)
    with pytest.raises(ValueError):
        nn.PReLU(device=bad)
    if isinstance(bad, str):  # m.cuda(3) is device index 3
        with pytest.raises(ValueError):
            m.cuda(bad)
    with pytest.raises(ValueError):
        m.cuda("cpu")


def test_device_attribute_can_be_assigned_by_subclasses():
    class Net(nn.Module):  # PyTorch code often stores its own ``self.device``
        def __init__(self, device):
            super().__init__()
            self.device = device
            self.fc = nn.Linear(2, 2, rng=0)

        def forward(self, x):
            return self.fc(x)

    net = Net("my-device")
    assert net.device == "my-device" and net.fc.device == "cpu"
    del net.device
    assert net.device == "cpu"


def test_dtype_conversion_keeps_shared_arrays_shared():
    a, b = nn.Linear(3, 3, rng=0), nn.Linear(3, 3, rng=1)
    b.weight = a.weight
    m = nn.Sequential(a, b).double()
    assert m[0].weight is m[1].weight and m[0].weight.dtype == np.float64


def _run_py(code):
    import os
    import subprocess
    import sys
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)


def test_moving_to_the_cpu_does_not_import_numba_cuda():
    r = _run_py(
        "import sys, numpy as np, nbops, nbops.nn as nn\n"
        "m = nn.Sequential(nn.Linear(4, 3, rng=0), nn.BatchNorm1d(3), nn.PReLU(3),\n"
        "                  nn.Dropout(0.2, rng=0))\n"
        "loss = nn.CrossEntropyLoss(weight=np.ones(3, np.float32))\n"
        "assert m.to('cpu') is m and m.cpu() is m and loss.cpu() is loss\n"
        "m.to('cpu', np.float64); m.float(); m.to(device='cpu:0')\n"
        "y = m(np.ones((2, 4), np.float32)); loss(y, np.array([0, 2]))\n"
        "m.load_state_dict(m.state_dict()); assert m.device == 'cpu'\n"
        "try:\n"
        "    m.to('gpu')\n"
        "except ValueError:\n"
        "    pass\n"
        "bad = [k for k in sys.modules\n"
        "       if k.startswith(('numba.cuda', 'numba_cuda', 'nbops.cuda.'))]\n"
        "assert not bad, bad\n")
    assert r.returncode == 0, r.stderr


def test_to_cuda_without_a_gpu_is_a_clear_error():
    """Without a GPU (and without the simulator) ``to('cuda')`` raises and changes nothing;
    with one, the module moves (the device behaviour: tests/cuda/test_cuda_nn.py)."""
    r = _run_py(
        "import numpy as np, nbops.nn as nn\n"
        "m = nn.Linear(3, 2, rng=0); w = m.weight\n"
        "try:\n"
        "    m.to('cuda')\n"
        "except (RuntimeError, ImportError) as exc:\n"
        "    assert m.weight is w and m.device == 'cpu'\n"
        "    print(type(exc).__name__, exc)\n"
        "else:\n"
        "    assert m.device == 'cuda'\n"
        "    print('moved')\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip()
    assert out == "moved" or out.startswith("RuntimeError cannot move to 'cuda': no CUDA GPU") \
        or (out.startswith("ImportError") and "numba-cuda" in out), out


def test_state_named_device_takes_precedence():
    m = nn.Module()
    m.register_buffer("device", np.zeros(2))
    assert m.device is m._buffers["device"] and list(m.state_dict()) == ["device"]
    s = nn.Sequential()
    s.device = nn.ReLU()
    assert isinstance(s.device, nn.ReLU) and len(s) == 1
