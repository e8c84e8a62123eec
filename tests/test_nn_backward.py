"""Module backward (``nbops.nn``): every module's ``backward`` against ``torch.autograd``
through the same ``torch.nn`` module loaded with the same ``state_dict``; the
parameters' gradients by ``state_dict`` name against torch's ``.grad``; the saved
stack (a module used twice, ``no_grad``), accumulation, ``zero_grad``, gradients
kept through ``to()``/``double()``/``load_state_dict``, a user's subclass, and a
training chain (Linear, BatchNorm1d, ReLU, Dropout, Linear, CrossEntropyLoss)
stepped beside PyTorch.

float64 is compared tightly, float32 loosely; few dtypes, to keep compilation short.
"""

import numpy as np
import pytest

import nbops
import nbops.nn as nn
from nbops._ops import table

torch = pytest.importorskip("torch")

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _load_torch(m, t, dtype):
    """``t`` holding ``m``'s state, in ``dtype``."""
    t = t.to(getattr(torch, np.dtype(dtype).name))
    t.load_state_dict({k: T(np.asarray(v)) for k, v in m.state_dict().items()})
    return t


def _compare_grads(m, t, dtype):
    tgrads = {name: p.grad for name, p in t.named_parameters()}
    ngrads = dict(m.named_grads())
    assert list(ngrads) == list(tgrads)
    for name, g in ngrads.items():
        if tgrads[name] is None:
            assert g is None, name
            continue
        assert g.dtype == dtype, name
        np.testing.assert_allclose(g, tgrads[name].numpy(), **TOL[dtype], err_msg=name)


def _check_module(m, t, x, dtype=np.float64, seed=1):
    """Forward and backward of ``m`` and of torch's ``t`` on ``x`` with a random grad:
    the outputs, the input's gradient and every parameter's gradient."""
    t = _load_torch(m, t, dtype)
    xt = T(x).requires_grad_()
    y, yt = m(x), t(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    gx = m.backward(g)
    yt.backward(T(g))
    assert gx.dtype == dtype and gx.shape == x.shape
    np.testing.assert_allclose(gx, xt.grad.numpy(), **TOL[dtype])
    _compare_grads(m, t, dtype)
    assert m._saved == []  # consumed
    return m, t


@pytest.fixture(scope="module")
def x64():
    return np.random.default_rng(0).standard_normal((4, 3, 5))


# ---------------------------------------------------------------- activations
def _activation_cases():
    cases = []
    for e in table.entries("activation"):
        name = e.module_name
        if name is None or e.backward_function is None or name in ("PReLU", "GLU", "RReLU"):
            continue  # PReLU, GLU and RReLU: their own tests below (weights, shapes, modes)
        cases.append((name, e.example_params()))
        if e.inplace:
            cases.append((name, {**e.example_params(), "inplace": True}))
    cases += [("Hardtanh", {"min_val": -0.5, "max_val": 1.5}),
              ("LeakyReLU", {"negative_slope": -0.5}),  # inplace: the input is copied
              ("LeakyReLU", {"negative_slope": 0.0, "inplace": True}),
              ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": 0}), ("Softmin", {"dim": -1})]
    return cases


ACTIVATIONS = _activation_cases()


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=[f"{n}{sorted(k.items())}"
                                                      for n, k in ACTIVATIONS])
def test_activation_backward_vs_torch(name, kw, x64):
    m, t = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    x = x64.copy()
    if not kw.get("inplace"):
        _check_module(m, t, x)
        np.testing.assert_array_equal(x, x64)
        return
    # in place: torch needs a non-leaf input; both overwrite it
    leaf = T(x64.copy()).requires_grad_()
    xt = leaf.clone()
    y, yt = m(x), t(xt)
    assert y is x
    np.testing.assert_allclose(x, yt.detach().numpy(), **TOL[np.float64])
    g = np.random.default_rng(1).standard_normal(x.shape)
    yt.backward(T(g))
    np.testing.assert_allclose(m.backward(g), leaf.grad.numpy(), **TOL[np.float64])


PLAIN_ACTIVATIONS = [(n, k) for n, k in ACTIVATIONS if not k.get("inplace")]


@pytest.mark.parametrize("name,kw", PLAIN_ACTIVATIONS, ids=[f"{n}{sorted(k.items())}"
                                                            for n, k in PLAIN_ACTIVATIONS])
def test_activation_backward_vs_torch_float32(name, kw, x64):
    """float32 in, float32 gradients out, close to torch's float32 autograd."""
    m, t = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    _check_module(m, t, x64.astype(np.float32), np.float32)


def test_inplace_relu_keeps_its_output_not_a_copy():
    m = nn.ReLU(inplace=True)
    x = np.array([-1.0, 2.0, 0.0])
    y = m(x)
    assert m._saved[-1] is y is x  # the output, as autograd keeps relu_'s result
    np.testing.assert_array_equal(m.backward(np.ones(3)), [0.0, 1.0, 0.0])


def test_prelu_backward_vs_torch(x64):
    m = nn.PReLU(3, dtype=np.float64)
    m.weight[:] = [0.1, -0.3, 0.7]
    _check_module(m, torch.nn.PReLU(3), x64)
    m1 = nn.PReLU(dtype=np.float32)
    _check_module(m1, torch.nn.PReLU(), x64.astype(np.float32), np.float32)


def test_glu_backward_vs_torch(x64):
    _check_module(nn.GLU(dim=0), torch.nn.GLU(dim=0), x64)  # (4, 3, 5): the even axis
    _check_module(nn.GLU(), torch.nn.GLU(), x64[..., :4].astype(np.float32), np.float32)


def test_rrelu_eval_backward_vs_torch(x64):
    """RReLU in eval mode (torch's training slopes come from its own generator: the
    training backward is tested in tests/test_glu_rrelu_gumbel.py)."""
    _check_module(nn.RReLU(0.1, 0.3).eval(), torch.nn.RReLU(0.1, 0.3).eval(), x64)


# ---------------------------------------------------------------- layers
@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_vs_torch(bias, x64):
    _check_module(nn.Linear(5, 7, bias=bias, dtype=np.float64, rng=0),
                  torch.nn.Linear(5, 7, bias=bias), x64)


def test_identity_backward():
    g = np.ones(3)
    assert nn.Identity().backward(g) is g


BN = [("BatchNorm1d", (6, 3), {}), ("BatchNorm1d", (6, 3, 4), {"affine": False}),
      ("BatchNorm2d", (4, 3, 2, 5), {"momentum": None}),
      ("BatchNorm2d", (4, 3, 2, 2), {"track_running_stats": False}),
      ("BatchNorm3d", (2, 3, 2, 2, 3), {"bias": False})]


@pytest.mark.parametrize("name,shape,kw", BN, ids=[f"{n}{s}{sorted(k)}" for n, s, k in BN])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_vs_torch(name, shape, kw, training):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 2 + 0.5
    m = getattr(nn, name)(3, dtype=np.float64, **kw)
    if m.weight is not None:
        m.weight[:] = rng.uniform(0.5, 1.5, 3)
    if m.bias is not None:
        m.bias[:] = rng.standard_normal(3)
    if m.running_mean is not None:
        m.running_mean[:] = rng.standard_normal(3)
        m.running_var[:] = rng.uniform(0.5, 2, 3)
    tkw = {k: v for k, v in kw.items() if k != "bias"}
    t = getattr(torch.nn, name)(3, **tkw)
    if "bias" in kw:  # torch.nn's bias=False: none to load
        t.bias = None
    t = _load_torch(m, t, np.float64)
    m.train(training), t.train(training)
    m, t = _check_module(m, t, x)
    for buf in ("running_mean", "running_var"):
        if getattr(m, buf) is not None:
            np.testing.assert_allclose(getattr(m, buf), getattr(t, buf).numpy(), rtol=1e-12)
            assert nbops.nn.get_grad(getattr(m, buf)) is None  # never a gradient


@pytest.mark.parametrize("name,shape", [("Dropout", (6, 8)), ("Dropout2d", (2, 5, 3, 2)),
                                        ("Dropout3d", (2, 5, 2, 2, 2))])
def test_dropout_backward_applies_the_forwards_mask(name, shape):
    m = getattr(nn, name)(0.4, rng=3)
    ones = np.ones(shape)
    masks = [m(ones), m(ones)]  # two forwards, two masks; backward pops the latest
    assert not np.array_equal(masks[0], masks[1])
    g = np.random.default_rng(1).standard_normal(shape)
    np.testing.assert_array_equal(m.backward(g), g * masks[1])
    np.testing.assert_array_equal(m.backward(g), g * masks[0])
    # the masks are those of the functional op driven by the same Generator
    fn = getattr(nbops, name.lower())
    gen = np.random.default_rng(3)
    np.testing.assert_array_equal(masks[0], fn(ones, 0.4, rng=gen))
    np.testing.assert_array_equal(masks[1], fn(ones, 0.4, rng=gen))
    m.eval()
    m(ones)
    np.testing.assert_array_equal(m.backward(g), g)  # eval: the identity
    m0 = getattr(nn, name)(0.0).train()
    x = np.random.default_rng(4).standard_normal(shape)
    _check_module(m0, getattr(torch.nn, name)(0.0), x)


@pytest.mark.parametrize("kw", [{}, {"p": 1.0, "keepdim": True}, {"p": 3.0, "eps": 0.0}])
def test_pairwise_distance_backward_vs_torch(kw):
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    m, t = nn.PairwiseDistance(**kw), torch.nn.PairwiseDistance(**kw)
    a, b = T(x1).requires_grad_(), T(x2).requires_grad_()
    y, yt = m(x1, x2), t(a, b)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(T(g))
    g1, g2 = m.backward(g)
    np.testing.assert_allclose(g1, a.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g2, b.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- losses
def _loss_inputs(name, rng, dtype):
    x = rng.standard_normal((5, 3))
    if name in ("CrossEntropyLoss", "NLLLoss"):
        if name == "NLLLoss":
            x = x - np.log(np.exp(x).sum(1, keepdims=True))
        return x.astype(dtype), np.array([0, 2, 1, 2, 1])
    if name == "BCELoss":
        x = 1 / (1 + np.exp(-x))
    elif name == "KLDivLoss":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
        return x.astype(dtype), rng.dirichlet(np.ones(3), 5).astype(dtype)
    t = rng.uniform(0, 1, x.shape) if name.startswith("BCE") else rng.standard_normal(x.shape)
    return x.astype(dtype), t.astype(dtype)


W3 = np.array([0.5, 1.0, 2.0])
LOSSES = [*((e.module_name, {**e.example_params(), "reduction": r})
            for e in table.pointwise_loss_entries() if e.module_name
            for r in ("mean", "sum", "none")),
          ("CrossEntropyLoss", {}), ("CrossEntropyLoss", {"weight": W3, "label_smoothing": 0.1}),
          ("CrossEntropyLoss", {"ignore_index": 2, "reduction": "sum"}),
          ("CrossEntropyLoss", {"reduction": "none", "weight": W3}),
          ("NLLLoss", {"weight": W3}), ("NLLLoss", {"reduction": "none", "ignore_index": 0}),
          ("KLDivLoss", {"reduction": "batchmean"}), ("KLDivLoss", {"log_target": True}),
          ("KLDivLoss", {"reduction": "none"}),
          ("BCELoss", {}), ("BCELoss", {"weight": W3, "reduction": "none"}),
          ("BCEWithLogitsLoss", {"reduction": "sum"}),
          ("BCEWithLogitsLoss", {"pos_weight": W3, "weight": W3[::-1].copy()})]


@pytest.mark.parametrize("name,kw", LOSSES, ids=[f"{n}{sorted(k)}" for n, k in LOSSES])
def test_loss_backward_vs_torch(name, kw):
    tkw = {k: (T(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    m, t = getattr(nn, name)(**kw), getattr(torch.nn, name)(**tkw)
    x, y = _loss_inputs(name, np.random.default_rng(6), np.float64)
    for grad_output in ((1.0, 2.5) if kw.get("reduction") != "none" else (None,)):
        xt = T(x).requires_grad_()
        loss, lt = m(x, y), t(xt, T(y))
        np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12)
        if grad_output is None:  # an array of the loss's shape
            g = np.random.default_rng(7).standard_normal(np.shape(loss))
            gx = m.backward(g)
            lt.backward(T(g))
        else:
            gx = m.backward() if grad_output == 1.0 else m.backward(np.float64(grad_output))
            lt.backward(torch.tensor(grad_output, dtype=torch.float64))
        assert gx.shape == x.shape and gx.dtype == np.float64
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_loss_backward_float32_and_bad_grad_output():
    m = nn.MSELoss()
    x, y = _loss_inputs("MSELoss", np.random.default_rng(8), np.float32)
    m(x, y)
    gx = m.backward(0.5)
    assert gx.dtype == np.float32
    np.testing.assert_allclose(gx, (x - y) / x.size, rtol=1e-6)
    m(x, y)
    with pytest.raises(ValueError, match="grad_output"):
        m.backward(np.ones(3))


# ---------------------------------------------------------------- the saved stack
def test_module_used_twice_backprops_the_latest_call_first():
    rng = np.random.default_rng(9)
    lin, relu = nn.Linear(4, 4, dtype=np.float64, rng=0), nn.ReLU()
    model = nn.Sequential(lin, relu, nn.Linear(4, 4, dtype=np.float64, rng=1), relu, lin)
    tl, tr = torch.nn.Linear(4, 4).double(), torch.nn.ReLU()
    t = torch.nn.Sequential(tl, tr, torch.nn.Linear(4, 4).double(), tr, tl)
    t.load_state_dict({k: T(v) for k, v in model.state_dict().items()})
    assert [k for k, _ in model.named_grads()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = rng.standard_normal((3, 4))
    _check_module(model, t, x)
    assert relu._saved == [] and lin._saved == []


def test_no_grad_keeps_nothing_and_backward_raises():
    model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64, rng=0), nn.Tanh(),
                          nn.BatchNorm1d(2, dtype=np.float64), nn.Dropout(0.5, rng=0))
    crit = nn.CrossEntropyLoss()
    with nbops.no_grad():
        crit(model(np.ones((4, 3))), np.array([0, 1, 1, 0]))
    assert all(m._saved == [] for m in [*model.modules(), crit])
    with pytest.raises(RuntimeError, match="no forward to backpropagate"):
        crit.backward()
    with pytest.raises(RuntimeError, match="Linear.backward: no forward"):
        model[0].backward(np.ones((4, 2)))
    model(np.ones((4, 3)))
    model.backward(np.ones((4, 2)))
    with pytest.raises(RuntimeError, match="no forward"):  # one backward per forward
        model.backward(np.ones((4, 2)))


def test_base_module_backward_explains_how_to_write_one():
    class Mine(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match="children's backward in the reverse order"):
        Mine().backward(np.ones(2))


class _TwoLayer(nn.Module):
    """A user's subclass: forward from children, backward composing theirs."""

    def __init__(self, lib, **kw):
        super().__init__()
        self.fc1 = lib.Linear(3, 5, **kw)
        self.act = lib.Tanh()
        self.fc2 = lib.Linear(5, 2, **kw)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) + self.fc1(x)[:, :2]  # fc1 used twice

    def backward(self, grad_output):
        grad_skip = np.zeros((grad_output.shape[0], 5))
        grad_skip[:, :2] = grad_output
        grad_x = self.fc1.backward(grad_skip)  # the latest call of fc1 first
        return grad_x + self.fc1.backward(self.act.backward(self.fc2.backward(grad_output)))


class _TorchTwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = (torch.nn.Linear(3, 5), torch.nn.Tanh(),
                                        torch.nn.Linear(5, 2))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) + self.fc1(x)[:, :2]


def test_user_subclass_composes_its_childrens_backward():
    m = _TwoLayer(nn, dtype=np.float64, rng=0)
    _check_module(m, _TorchTwoLayer(), np.random.default_rng(10).standard_normal((4, 3)))


# ---------------------------------------------------------------- gradients
def test_accumulation_zero_grad_and_named_grads():
    m = nn.Linear(3, 2, dtype=np.float64, rng=0)
    assert [g for _, g in m.named_grads()] == [None, None]
    x1, x2 = np.ones((2, 3)), np.arange(6.0).reshape(2, 3)
    g = np.array([[1.0, -2.0], [0.5, 3.0]])
    m(x1)
    m.backward(g)
    first = nn.get_grad(m.weight)
    np.testing.assert_allclose(first, g.T @ x1)
    m(x2)
    m.backward(g)
    assert nn.get_grad(m.weight) is first  # += in place
    np.testing.assert_allclose(first, g.T @ x1 + g.T @ x2)
    np.testing.assert_allclose(dict(m.named_grads(prefix="fc"))["fc.bias"], 2 * g.sum(0))
    m.zero_grad(set_to_none=False)
    assert nn.get_grad(m.weight) is first and not first.any()
    m.zero_grad()
    assert nn.get_grad(m.weight) is None and nn.get_grad(m.bias) is None
    nn.set_grad(m.bias, np.ones(2))
    assert dict(m.named_grads())["bias"].tolist() == [1.0, 1.0]


def test_grads_follow_dtype_conversion_and_load_state_dict():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    model(np.ones((2, 3), np.float32))
    model.backward(np.ones((2, 2), np.float32))
    before = {k: g.copy() for k, g in model.named_grads()}
    model.double()
    for name, g in model.named_grads():
        assert g.dtype == np.float64, name
        np.testing.assert_array_equal(g, before[name].astype(np.float64))
    model.to(np.float32)
    model.float()
    for name, g in model.named_grads():
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, before[name])
    weight = model[0].weight
    model.load_state_dict({k: np.zeros_like(v) for k, v in model.state_dict().items()})
    assert model[0].weight is weight  # copied in place: the gradient stays
    np.testing.assert_array_equal(nn.get_grad(weight), before["0.weight"])
    model.to("cpu")  # nothing moves
    np.testing.assert_array_equal(nn.get_grad(model[0].weight), before["0.weight"])


# ---------------------------------------------------------------- training chain
def _chain(p, dtype):
    return nn.Sequential(nn.Linear(6, 8, dtype=dtype, rng=0), nn.BatchNorm1d(8, dtype=dtype),
                         nn.ReLU(), nn.Dropout(p, rng=11), nn.Linear(8, 3, dtype=dtype, rng=1))


def _torch_chain(p):
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                               torch.nn.Dropout(p), torch.nn.Linear(8, 3))


class _Mask(torch.nn.Module):
    """Multiplies by the next of the given masks (the masks nbops' Dropout draws)."""

    def __init__(self, masks):
        super().__init__()
        self.masks = list(masks)

    def forward(self, x):
        return x * T(self.masks.pop(0))


@pytest.mark.parametrize("dtype,p", [(np.float64, 0.0), (np.float64, 0.3), (np.float32, 0.3)])
def test_training_chain_steps_as_pytorch(dtype, p):
    rng = np.random.default_rng(12)
    model = _chain(p, dtype)
    crit = nn.CrossEntropyLoss(label_smoothing=0.05)
    t = _load_torch(model, _torch_chain(p), dtype)
    steps, batch = 3, 16
    if p > 0:  # nbops' masks: one seed per training forward from the module's Generator
        gen = np.random.default_rng(11)
        masks = [nbops.dropout_mask((batch, 8), p, rng=int(gen.integers(2**64, dtype=np.uint64)),
                                    dtype=dtype) for _ in range(steps)]
        t[3] = _Mask(masks)
    tcrit = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    lr = 0.1
    for _ in range(steps):
        x = rng.standard_normal((batch, 6)).astype(dtype)
        y = rng.integers(0, 3, batch)
        model.zero_grad()
        t.zero_grad()
        loss = crit(model(x), y)
        grad_x = model.backward(crit.backward())
        xt = T(x).requires_grad_()
        lt = tcrit(t(xt), T(y))
        lt.backward()
        np.testing.assert_allclose(loss, lt.item(), **TOL[dtype])
        np.testing.assert_allclose(grad_x, xt.grad.numpy(), **TOL[dtype])
        _compare_grads(model, t, dtype)
        with torch.no_grad():
            for (name, param), (_, g) in zip(model.named_parameters(), model.named_grads(),
                                             strict=True):
                param -= lr * g
                tp = t.get_parameter(name)
                tp -= lr * tp.grad
        for name, v in model.state_dict().items():
            np.testing.assert_allclose(v, t.state_dict()[name].numpy(), **TOL[dtype],
                                       err_msg=name)



def test_forwards_that_no_backward_follows_warn_once(monkeypatch):
    from nbops.nn import _module

    monkeypatch.setattr(_module, "_SAVED_WARN_DEPTH", 3)
    m = nn.Tanh()
    x = np.zeros(2)
    m(x), m(x)
    with pytest.warns(RuntimeWarning, match="no_grad"):
        m(x)
    m(x)  # once
    assert len(m._saved) == 4
    assert nn.get_grad is nbops._grad.get_grad and nn.set_grad is nbops._grad.set_grad


@pytest.mark.parametrize("make", [
    lambda dt: (nn.LayerNorm((3, 4), dtype=dt), torch.nn.LayerNorm((3, 4))),
    lambda dt: (nn.LayerNorm(4, bias=False, dtype=dt), torch.nn.LayerNorm(4, bias=False)),
    lambda dt: (nn.LayerNorm(4, elementwise_affine=False, dtype=dt),
                torch.nn.LayerNorm(4, elementwise_affine=False)),
    lambda dt: (nn.RMSNorm((3, 4), dtype=dt), torch.nn.RMSNorm((3, 4))),
    lambda dt: (nn.RMSNorm(4, eps=1e-3, elementwise_affine=False, dtype=dt),
                torch.nn.RMSNorm(4, eps=1e-3, elementwise_affine=False)),
], ids=["layer_norm", "layer_norm_no_bias", "layer_norm_plain", "rms_norm",
        "rms_norm_plain"])
def test_layer_and_rms_norm_modules(make):
    m, t = make(np.float64)
    rng = np.random.default_rng(3)
    for p in m.parameters():  # not the initial ones and zeros
        p[...] = rng.standard_normal(p.shape)
    x = rng.standard_normal((5, 3, 4)) * 2 + 0.5
    _check_module(m, t, x)


def test_every_module_class_has_its_backward():
    for name in nn.__all__:
        cls = getattr(nn, name)
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls is not nn.Module:
            assert cls.backward is not nn.Module.backward, name


def test_sequential_backward_without_the_input_gradient():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5))
    g = rng.standard_normal((6, 3))
    grads = []
    for needs in (True, False):
        m = nn.Sequential(nn.Sequential(nn.Linear(5, 4, rng=0, dtype=np.float64)), nn.Tanh(),
                          nn.Linear(4, 3, rng=1, dtype=np.float64))
        m(x)
        gx = m.backward(g, needs_input_grad=needs)
        assert (gx is None) == (not needs)
        assert m[0][0]._saved == []
        grads.append(dict(m.named_grads()))
    for name, value in grads[0].items():
        np.testing.assert_array_equal(grads[1][name], value, err_msg=name)
    # a first child that cannot leave it out computes it
    m = nn.Sequential(nn.Tanh(), nn.Linear(5, 3, rng=1, dtype=np.float64))
    m(x)
    assert m.backward(g, needs_input_grad=False).shape == x.shape
