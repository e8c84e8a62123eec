"""nbops.nn modules on CUDA: ``to("cuda")``/``cuda()``/``cpu()``/``to("cpu")``.

Every device result is compared with the same module run on the CPU path on
host arrays (which tests/test_nn.py checks against PyTorch), on small arrays
(the simulator runs each GPU thread as a Python thread)."""


import numpy as np
import pytest

import nbops.nn as nn

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close  # noqa: E402  (after the numba.cuda check)
from devarrays import is_device as _is_dev  # noqa: E402
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(11)
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _close(got, want, dtype=np.float32):
    assert_close(got, want, dtype, TOL)


def _state(m):
    return [*m.named_parameters(), *m.named_buffers()]


def _mlp(dtype=np.float32):
    return nn.Sequential(nn.Linear(4, 6, rng=0, dtype=dtype), nn.ReLU(),
                         nn.BatchNorm1d(6, dtype=dtype), nn.Dropout(0.5, rng=3),
                         nn.Linear(6, 3, rng=1, dtype=dtype), nn.Softmax(dim=1))


def _perturb(m, seed=5):
    """Non-trivial BatchNorm state (so eval mode does not just divide by 1)."""
    g = np.random.default_rng(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm1d):
            mod.weight[...] = g.uniform(0.5, 2.0, mod.weight.shape)
            mod.bias[...] = g.standard_normal(mod.bias.shape)
            mod.running_mean[...] = g.standard_normal(mod.running_mean.shape)
            mod.running_var[...] = g.uniform(0.5, 2.0, mod.running_var.shape)
    return m


# ------------------------------------------------------------------ moving
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_to_cuda_forward_matches_cpu(dtype):
    ref = _perturb(_mlp(dtype)).eval()
    m = _perturb(_mlp(dtype)).eval()
    assert m.to("cuda") is m
    assert m.device == "cuda"
    names = [n for n, _ in _state(m)]
    assert names == [n for n, _ in _state(ref)] and "2.num_batches_tracked" in names
    for (name, a), (_, r) in zip(_state(m), _state(ref), strict=True):
        assert _is_dev(a), name
        np.testing.assert_array_equal(a.copy_to_host(), r)  # moved exactly
        assert a.dtype == r.dtype
    x = RNG.standard_normal((5, 4)).astype(dtype)
    y = m(_d(x))
    _close(_h(y), ref(x), dtype)


def test_cpu_restores_host_arrays_and_moves_are_idempotent():
    ref = _perturb(_mlp())
    m = _perturb(_mlp()).cuda()
    weight = m[0].weight
    assert m.to("cuda:0") is m and m[0].weight is weight  # already there: no copy
    assert m.cuda(0) is m and m[0].weight is weight
    assert m.to("cuda", dtype=np.float32) is m and m[0].weight is weight
    assert m.cpu() is m
    assert m.device == "cpu"
    for (name, a), (_, r) in zip(_state(m), _state(ref), strict=True):
        assert type(a) is np.ndarray, name
        np.testing.assert_array_equal(a, r)
        assert a.dtype == r.dtype
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(m.eval()(x), ref.eval()(x))
    host = m[0].weight
    assert m.to("cpu") is m and m[0].weight is host
    m.to("cuda").to("cpu")
    assert type(m[4].bias) is np.ndarray


def test_device_specs():
    torch = pytest.importorskip("torch")
    m = nn.Linear(3, 2, rng=0)
    assert m.to(torch.device("cuda")).device == "cuda"
    assert m.to(torch.device("cpu")).device == "cpu"
    assert m.to(device="cuda:0").device == "cuda"
    assert m.to("cpu").cuda("cuda").device == "cuda"
    m.cpu()
    for bad in ("cuda:1", "cuda:7"):  # not the current device: nothing moves
        with pytest.raises(ValueError, match="current"):
            m.to(bad)
        assert m.device == "cpu"
    with pytest.raises(ValueError):
        m.cuda("cpu")
    with pytest.raises(ValueError):
        m.to("gpu")
    assert type(m.weight) is np.ndarray


def test_constructor_device_cuda():
    ref = nn.Linear(3, 2, rng=4)
    m = nn.Linear(3, 2, rng=4, device="cuda")
    np.testing.assert_array_equal(_h(m.weight), ref.weight)
    np.testing.assert_array_equal(_h(m.bias), ref.bias)
    bn = nn.BatchNorm2d(2, device="cuda", dtype=np.float64)
    assert bn.device == "cuda" and bn.running_var.dtype == np.float64
    assert nn.PReLU(3, device="cuda").device == "cuda"


def test_shared_arrays_stay_shared():
    a, b = nn.Linear(3, 3, rng=0), nn.Linear(3, 3, rng=1)
    b.weight = a.weight  # tied weights
    m = nn.Sequential(a, b).cuda()
    assert m[0].weight is m[1].weight and _is_dev(m[0].weight)
    m.cpu()
    assert m[0].weight is m[1].weight
    m.cuda().double()
    assert m[0].weight is m[1].weight and m[0].weight.dtype == np.float64


def test_dtype_conversion_on_device():
    ref = _perturb(_mlp()).double().eval()
    m = _perturb(_mlp()).cuda().double().eval()
    assert m.device == "cuda"
    assert m[0].weight.dtype == np.float64 and m[2].num_batches_tracked.dtype == np.int64
    x = RNG.standard_normal((5, 4))
    _close(_h(m(_d(x))), ref(x), np.float64)
    m.to("cpu", np.float32)
    assert type(m[0].weight) is np.ndarray and m[0].weight.dtype == np.float32


def test_reset_parameters_on_device():
    m = nn.Linear(4, 3, rng=0).cuda()
    m.reset_parameters(rng=9)
    ref = nn.Linear(4, 3, rng=0)
    ref.reset_parameters(rng=9)
    np.testing.assert_array_equal(_h(m.weight), ref.weight)
    np.testing.assert_array_equal(_h(m.bias), ref.bias)
    bn = nn.BatchNorm1d(3).cuda()
    bn(_d(RNG.standard_normal((4, 3)).astype(np.float32)))
    bn.reset_parameters()
    np.testing.assert_array_equal(_h(bn.running_mean), np.zeros(3, np.float32))
    np.testing.assert_array_equal(_h(bn.running_var), np.ones(3, np.float32))
    assert int(_h(bn.num_batches_tracked)) == 0
    p = nn.PReLU(2, init=0.1).cuda()
    p.init = 0.3
    p.reset_parameters()
    np.testing.assert_array_equal(_h(p.weight), np.full(2, 0.3, np.float32))


# ------------------------------------------------------------------ layers
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2)])
def test_batchnorm_training_on_device_updates_running_stats(shape, momentum):
    ref = nn.BatchNorm1d(3, momentum=momentum)
    m = nn.BatchNorm1d(3, momentum=momentum).cuda()
    rm, rv, nbt = m.running_mean, m.running_var, m.num_batches_tracked
    for step in range(2):
        x = RNG.standard_normal(shape).astype(np.float32) * 3 + step
        _close(_h(m(_d(x))), ref(x))
    assert m.running_mean is rm and m.running_var is rv and m.num_batches_tracked is nbt
    _close(_h(rm), ref.running_mean)
    _close(_h(rv), ref.running_var)
    assert int(_h(nbt)) == int(ref.num_batches_tracked) == 2
    x = RNG.standard_normal(shape).astype(np.float32)
    _close(_h(m.eval()(_d(x))), ref.eval()(x))


def test_batchnorm2d_and_no_running_stats_on_device():
    x = RNG.standard_normal((2, 3, 2, 2))
    for kw in ({}, {"track_running_stats": False}, {"affine": False}):
        ref = nn.BatchNorm2d(3, dtype=np.float64, **kw)
        m = nn.BatchNorm2d(3, dtype=np.float64, **kw).cuda()
        _close(_h(m(_d(x))), ref(x), np.float64)
        if ref.running_mean is not None:
            _close(_h(m.running_mean), ref.running_mean, np.float64)


def test_prelu_and_parameterless_modules_on_device():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    ref = nn.PReLU(3, init=0.2)
    m = nn.PReLU(3, init=0.2).to("cuda")
    _close(_h(m(_d(x))), ref(x))
    for mod in (nn.Tanh(), nn.LogSoftmax(dim=1), nn.Softmax(dim=1)):
        assert mod.cuda() is mod and mod.device == "cpu"  # holds nothing; runs on either
        _close(_h(mod(_d(x))), mod(x))
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        _close(_h(nn.Softmax()(_d(x))), nn.Softmax()(x))


def test_dropout_in_a_device_model_matches_cpu():
    ref = _perturb(_mlp()).train()
    m = _perturb(_mlp()).cuda().train()
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    _close(_h(m(_d(x))), ref(x))  # the same seeds give the same masks on CPU and CUDA
    _close(_h(m[2].running_mean), ref[2].running_mean)


# ------------------------------------------------------------------ losses
def test_weighted_loss_modules_move_their_weights():
    C = 4
    x = RNG.standard_normal((5, C)).astype(np.float32)
    t = np.array([0, 3, 1, 1, 2])
    w = RNG.uniform(0.5, 2, C).astype(np.float32)
    for reduction in ("mean", "sum", "none"):
        for cls, inp, kw in ((nn.CrossEntropyLoss, x, {"label_smoothing": 0.1}),
                             (nn.NLLLoss, np.log(nn.Softmax(dim=1)(x)), {})):
            ref = cls(weight=w, reduction=reduction, **kw)
            m = cls(weight=w, reduction=reduction, **kw).to("cuda")
            assert _is_dev(m.weight) and m.device == "cuda"
            got = _h(m(_d(inp), _d(t)))
            _close(got.reshape(np.shape(ref(inp, t))), ref(inp, t))
    p = RNG.uniform(0.05, 0.95, (5, C)).astype(np.float32)
    y = (RNG.random((5, C)) > 0.5).astype(np.float32)
    bw = RNG.uniform(0.5, 2, (5, C)).astype(np.float32)  # CUDA: a weight of the input's shape
    pw = RNG.uniform(0.5, 2, C).astype(np.float32)
    for ref, m, inp in ((nn.BCELoss(weight=bw), nn.BCELoss(weight=bw).cuda(), p),
                        (nn.BCEWithLogitsLoss(weight=bw, pos_weight=pw),
                         nn.BCEWithLogitsLoss(weight=bw, pos_weight=pw).cuda(), x)):
        assert _is_dev(m.weight)
        _close(_h(m(_d(inp), _d(y))).reshape(()), ref(inp, y))
    m.cpu()
    assert type(m.pos_weight) is np.ndarray and m.device == "cpu"


def test_loss_built_with_a_device_weight_keeps_it():
    w = _d(np.array([1.0, 2.0, 3.0], np.float32))
    m = nn.CrossEntropyLoss(weight=w)
    assert m.weight is w and m.device == "cuda"


# ------------------------------------------------------------------ mixing
def _mixing_cases():
    x2 = RNG.standard_normal((4, 3)).astype(np.float32)
    return [
        (nn.Linear(3, 2, rng=0), (x2,)),
        (nn.BatchNorm1d(3), (x2,)),
        (nn.PReLU(3), (x2,)),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 2, rng=0)), (x2,)),
        (nn.CrossEntropyLoss(weight=np.ones(3, np.float32)), (x2, np.array([0, 1, 2, 1]))),
        (nn.BCEWithLogitsLoss(pos_weight=np.ones(3, np.float32)), (x2, np.zeros_like(x2))),
    ]


@pytest.mark.parametrize("case", range(6))
def test_mixing_host_and_device_raises_a_clear_error(case):
    m, args = _mixing_cases()[case]
    before = [(n, np.array(a)) for n, a in _state(m)]
    with pytest.raises(TypeError, match=r"module\.to\('cuda'\)") as info:
        m(*[_d(a) for a in args])  # host module, device input
    assert "host NumPy arrays" in str(info.value)
    for (n, a), (_, b) in zip(_state(m), before, strict=True):
        # nothing changed (num_batches_tracked either)
        np.testing.assert_array_equal(a, b, err_msg=n)
    m.cuda()
    with pytest.raises(TypeError, match=r"module\.to\('cpu'\)") as info:
        m(*args)  # device module, host input
    assert "CUDA device arrays" in str(info.value)
    for (n, a), (_, b) in zip(_state(m), before, strict=True):
        np.testing.assert_array_equal(_h(a), b, err_msg=n)


def test_other_type_errors_are_not_rewritten():
    m = nn.CrossEntropyLoss(weight=np.ones(3, np.float32)).cuda()
    x = _d(RNG.standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(TypeError, match="^target") as info:  # host target: the op's message
        m(x, np.array([0, 1, 2, 1]))
    assert "module.to" not in str(info.value)


def test_mixed_module_state():
    m = nn.Linear(3, 2, rng=0)
    m.bias = _d(m.bias)
    with pytest.raises(RuntimeError, match="both on the host"):
        _ = m.device  # the property raises
    m.to("cuda")
    assert m.device == "cuda"


# ------------------------------------------------------------------ state dicts
def test_state_dict_round_trip_across_devices():
    src = _perturb(_mlp(), seed=8)
    src.train()(RNG.standard_normal((5, 4)).astype(np.float32))  # num_batches_tracked = 1
    host_sd = {k: np.array(v) for k, v in src.state_dict().items()}
    dev = _mlp().cuda()
    sd = src.cuda().state_dict()
    assert all(_is_dev(v) for v in sd.values())  # on the module's device...
    assert sd["0.weight"] is src[0].weight  # ...and the module's own arrays
    # device -> device: the target keeps its own device arrays
    before = {k: v for k, v in dev.state_dict().items()}
    dev.load_state_dict(sd)
    for k, v in dev.state_dict().items():
        assert v is before[k]
        np.testing.assert_array_equal(_h(v), host_sd[k])
    # device -> host
    host = _mlp()
    host.load_state_dict(sd)
    for k, v in host.state_dict().items():
        assert type(v) is np.ndarray
        np.testing.assert_array_equal(v, host_sd[k])
    # host -> device, cast to the module's dtype, num_batches_tracked as a (1,) array
    dev2 = _mlp().cuda()
    sd64 = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v.reshape(1))
            for k, v in host_sd.items()}
    dev2.load_state_dict(sd64)
    assert dev2.device == "cuda"
    for k, v in dev2.state_dict().items():
        np.testing.assert_array_equal(_h(v), host_sd[k])
        assert v.dtype == host_sd[k].dtype
    # and the loaded models compute the same thing
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    want = host.eval()(x)
    _close(_h(dev.eval()(_d(x))), want)
    _close(_h(dev2.eval()(_d(x))), want)
    # a device float64 array into a float32 device module (cast on the way)
    dev.load_state_dict({k: _d(v) for k, v in sd64.items()})
    _close(_h(dev[0].weight), host_sd["0.weight"])


def test_load_state_dict_errors_leave_a_device_module_unchanged():
    m = nn.Linear(3, 2, rng=0).cuda()
    w = _h(m.weight)
    bad = {"weight": _d(np.zeros((2, 3), np.float32)), "bias": _d(np.zeros(5, np.float32))}
    with pytest.raises(RuntimeError, match="size mismatch for bias"):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(_h(m.weight), w)


def test_load_state_dict_assign_keeps_the_given_arrays():
    m = nn.Linear(3, 2, rng=0)
    sd = {"weight": _d(np.ones((2, 3), np.float32)), "bias": _d(np.zeros(2, np.float32))}
    m.load_state_dict(sd, assign=True)
    assert m.weight is sd["weight"] and m.device == "cuda"


def test_batchnorm_counter_counts_on_the_device():
    """num_batches_tracked advances on the device (a kernel, no host copy), and
    momentum=None (the cumulative average, which reads it) still matches the CPU."""
    x = RNG.standard_normal((6, 3)).astype(np.float32)
    cpu = nn.BatchNorm1d(3, momentum=None)
    gpu = nn.BatchNorm1d(3, momentum=None).to("cuda")
    for k in range(3):
        xk = x * (k + 1)
        _close(_h(gpu(_d(xk))), cpu(xk))
    assert int(_h(gpu.num_batches_tracked)) == int(cpu.num_batches_tracked) == 3
    _close(_h(gpu.running_mean), cpu.running_mean)
    _close(_h(gpu.running_var), cpu.running_var)
    from nbops import cuda as nbcuda

    with pytest.raises(ValueError, match="counter"):
        nbcuda.ops().increment(_d(np.zeros(2, np.int64)))
