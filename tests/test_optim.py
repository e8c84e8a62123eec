"""nbops.optim against torch.optim (single-tensor path, foreach=False).

Each optimizer runs 20 steps beside PyTorch's from the same start values on the
same random gradients (new each step); the parameters and every state array
are compared after each step. float64: rtol 1e-12. float32: SGD bit for bit;
Adam/AdamW within a few ulps, because PyTorch's CPU ``sqrt`` (MKL's vector
sqrt) is off by one ulp on some elements while nbops' is correctly rounded
(everything else, with the same fused multiply-adds, is bit for bit: see
test_adam_float32_matches_torch_given_its_sqrt).
"""

import numpy as np
import pytest

import nbops
from nbops._grad import get_grad, set_grad
from nbops.optim import SGD, Adam, AdamW, lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(7, 5), (13,), (2, 3, 4)]  # any shape: the kernels run on flat views
STEPS = 20
EPS32 = float(np.finfo(np.float32).eps)


def _pair(ours_cls, torch_cls, kwargs, dtype, rng, groups=False):
    start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [a.copy() for a in start]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in start]
    if groups:  # two groups, different learning rates (the second overrides the default)
        o = ours_cls([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.05}], **kwargs)
        t = torch_cls([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.05}],
                      foreach=False, **kwargs)
    else:
        o = ours_cls(ours, **kwargs)
        t = torch_cls(theirs, foreach=False, **kwargs)
    return o, t, ours, theirs


def _grads(rng, step, ours, theirs, dtype):
    for i, (a, tp) in enumerate(zip(ours, theirs, strict=True)):
        if i == 2 and step % 3 == 1:  # a parameter without a gradient on some steps
            set_grad(a, None)
            tp.grad = None
            continue
        g = rng.standard_normal(a.shape).astype(dtype)
        set_grad(a, g)
        tp.grad = torch.from_numpy(g.copy())


def _close(ours, theirs, dtype, what, ulps):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.dtype == theirs.dtype, what
    if dtype == np.float64:
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-300, err_msg=what)
    elif ulps == 0:
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
    else:
        scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
        np.testing.assert_allclose(ours, theirs, rtol=ulps * EPS32,
                                   atol=ulps * EPS32 * scale, err_msg=what)


def _run_and_compare(o, t, ours, theirs, dtype, rng, ulps):
    for step in range(STEPS):
        _grads(rng, step, ours, theirs, dtype)
        o.step()
        t.step()
        for i, (a, tp) in enumerate(zip(ours, theirs, strict=True)):
            _close(a, tp, dtype, f"step {step} param {i}", ulps)
            ts = t.state.get(tp, {})
            assert set(o.state[a]) == set(ts), (step, i)
            for key, value in ts.items():
                _close(o.state[a][key], value, dtype, f"step {step} param {i} {key}", ulps)


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.05),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    dict(lr=0.02, momentum=0.5, maximize=True),
    dict(lr=0.1, weight_decay=0.1, maximize=True),
]

ADAM_CASES = [
    (Adam, "Adam", dict(lr=0.01)),
    (Adam, "Adam", dict(lr=0.01, betas=(0.3, 0.95), weight_decay=0.1)),  # lerp's other branch
    (Adam, "Adam", dict(lr=0.02, amsgrad=True, maximize=True, eps=1e-6)),
    (AdamW, "AdamW", dict(lr=0.01)),
    (AdamW, "AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.2, betas=(0.8, 0.9))),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_sgd_matches_torch(kwargs, dtype):
    rng = np.random.default_rng(1)
    o, t, ours, theirs = _pair(SGD, torch.optim.SGD, kwargs, dtype, rng)
    _run_and_compare(o, t, ours, theirs, dtype, rng, ulps=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,name,kwargs", ADAM_CASES)
def test_adam_matches_torch(cls, name, kwargs, dtype):
    rng = np.random.default_rng(2)
    o, t, ours, theirs = _pair(cls, getattr(torch.optim, name), kwargs, dtype, rng)
    _run_and_compare(o, t, ours, theirs, dtype, rng, ulps=2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parameter_groups_match_torch(dtype):
    rng = np.random.default_rng(3)
    o, t, ours, theirs = _pair(SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), dtype, rng,
                               groups=True)
    _run_and_compare(o, t, ours, theirs, dtype, rng, ulps=0)
    o, t, ours, theirs = _pair(Adam, torch.optim.Adam, dict(lr=0.01), dtype, rng, groups=True)
    assert [g["lr"] for g in o.param_groups] == [0.01, 0.05]
    _run_and_compare(o, t, ours, theirs, dtype, rng, ulps=2)


def test_adam_float32_matches_torch_given_its_sqrt():
    # One step's arithmetic is PyTorch's bit for bit: from the same parameter and
    # gradient the state agrees exactly, and the parameter agrees wherever
    # PyTorch's sqrt of exp_avg_sq (MKL's, not correctly rounded) equals the
    # correctly rounded one.
    rng = np.random.default_rng(4)
    n = 1000
    for kwargs in (dict(lr=0.01, weight_decay=0.1), dict(lr=0.01, betas=(0.3, 0.9)),
                   dict(lr=0.01, amsgrad=True, maximize=True)):
        p0 = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        ours = p0.copy()
        theirs = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        o, t = Adam([ours], **kwargs), torch.optim.Adam([theirs], foreach=False, **kwargs)
        set_grad(ours, g)
        theirs.grad = torch.from_numpy(g.copy())
        o.step()
        t.step()
        for key, value in t.state[theirs].items():
            np.testing.assert_array_equal(np.asarray(o.state[ours][key]), value.numpy(), key)
        v = o.state[ours]["exp_avg_sq"]
        agree = torch.from_numpy(v).sqrt().numpy() == np.sqrt(v)
        assert agree.mean() > 0.5
        np.testing.assert_array_equal(ours[agree], theirs.detach().numpy()[agree])


def test_float32_adam_ulps_report():
    # How close float32 Adam stays to PyTorch over the 20 steps (printed with -s).
    rng = np.random.default_rng(5)
    o, t, ours, theirs = _pair(Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1),
                               np.float32, rng)
    worst = 0
    for step in range(STEPS):
        _grads(rng, step, ours, theirs, np.float32)
        o.step()
        t.step()
        for a, tp in zip(ours, theirs, strict=True):
            b = tp.detach().numpy()
            worst = max(worst, int(np.max(np.abs(a.view(np.int32).astype(np.int64)
                                                  - b.view(np.int32).astype(np.int64)))))
    print(f"float32 Adam vs torch: at most {worst} ulp apart over {STEPS} steps")
    assert worst <= 8


# ------------------------------------------------------------------ state_dict
def _to_numpy(state_dict):
    return {"state": {k: {kk: vv.numpy().copy() if torch.is_tensor(vv) else vv
                          for kk, vv in v.items()} for k, v in state_dict["state"].items()},
            "param_groups": state_dict["param_groups"]}


def _to_torch(state_dict):
    return {"state": {k: {kk: torch.from_numpy(np.array(vv)) if isinstance(vv, np.ndarray)
                          else vv for kk, vv in v.items()}
                      for k, v in state_dict["state"].items()},
            "param_groups": state_dict["param_groups"]}


@pytest.mark.parametrize("cls,name,kwargs", [
    (Adam, "Adam", dict(lr=0.01, amsgrad=True)),
    (AdamW, "AdamW", dict(lr=0.01)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.9)),
])
def test_state_dict_round_trips_with_torch(cls, name, kwargs):
    dtype = np.float64
    rng = np.random.default_rng(6)
    torch_cls = getattr(torch.optim, name)
    # torch -> nbops: train torch 3 steps, load its state into a fresh nbops optimizer
    o, t, ours, theirs = _pair(cls, torch_cls, kwargs, dtype, rng)
    for step in range(3):
        _grads(rng, step, ours, theirs, dtype)
        t.step()
    for a, tp in zip(ours, theirs, strict=True):
        a[...] = tp.detach().numpy()
    sd = t.state_dict()
    o.load_state_dict(_to_numpy(sd))
    assert o.param_groups[0]["lr"] == kwargs["lr"]
    assert all(g["params"] is not None for g in o.param_groups)
    ours_sd = o.state_dict()
    assert ours_sd["param_groups"] == sd["param_groups"]  # the same keys and values
    assert set(ours_sd["state"]) == set(sd["state"])
    for k, v in sd["state"].items():
        assert set(ours_sd["state"][k]) == set(v)
        for key, value in v.items():
            assert np.asarray(ours_sd["state"][k][key]).dtype == value.numpy().dtype
            np.testing.assert_array_equal(ours_sd["state"][k][key], value.numpy())
    for step in range(3, 6):  # and both go on alike
        _grads(rng, step, ours, theirs, dtype)
        o.step()
        t.step()
        for a, tp in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, tp.detach().numpy(), rtol=1e-12)
    # nbops -> torch: load ours into a fresh torch optimizer on the same values
    fresh = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in ours]
    t2 = torch_cls(fresh, foreach=False, **kwargs)
    t2.load_state_dict(_to_torch(o.state_dict()))
    for step in range(6, 9):
        _grads(rng, step, ours, fresh, dtype)
        o.step()
        t2.step()
        for a, tp in zip(ours, fresh, strict=True):
            np.testing.assert_allclose(a, tp.detach().numpy(), rtol=1e-12)
        for a, tp in zip(ours, fresh, strict=True):
            for key, value in t2.state[tp].items():
                np.testing.assert_allclose(np.asarray(o.state[a][key]), value.numpy(),
                                           rtol=1e-12, atol=1e-300)


def test_load_state_dict_casts_copies_and_validates():
    w = np.zeros((2, 3), np.float32)
    b = np.zeros(3, np.float32)
    o = Adam([w, b], lr=0.1)
    state = {0: {"step": 4.0, "exp_avg": np.ones((2, 3)), "exp_avg_sq": np.ones((2, 3))}}
    groups = [dict(o.state_dict()["param_groups"][0], lr=0.5)]
    o.load_state_dict({"state": state, "param_groups": groups})
    s = o.state[w]
    assert s["exp_avg"].dtype == np.float32 and s["exp_avg"] is not state[0]["exp_avg"]
    assert s["step"].dtype == np.float32 and float(s["step"]) == 4.0
    assert o.param_groups[0]["lr"] == 0.5 and o.param_groups[0]["params"][0] is w
    assert b not in o.state
    with pytest.raises(ValueError, match="different number of parameter groups"):
        o.load_state_dict({"state": {}, "param_groups": groups * 2})
    with pytest.raises(ValueError, match="doesn't match the size"):
        o.load_state_dict({"state": {}, "param_groups": [dict(groups[0], params=[0])]})
    bad = {0: {"step": 1.0, "exp_avg": np.ones((3, 2)), "exp_avg_sq": np.ones((2, 3))}}
    with pytest.raises(ValueError, match="shape"):
        o.load_state_dict({"state": bad, "param_groups": groups})
    with pytest.raises(ValueError, match="index 7"):
        o.load_state_dict({"state": {7: {}}, "param_groups": groups})


# ------------------------------------------------------------------ the rest
def test_zero_grad_both_modes():
    w = np.ones(4)
    o = SGD([w], lr=0.1)
    g = np.full(4, 2.0)
    set_grad(w, g)
    o.zero_grad(set_to_none=False)
    assert get_grad(w) is g and np.all(g == 0)
    o.zero_grad()
    assert get_grad(w) is None
    o.step()  # no gradient: nothing changes
    assert np.all(w == 1)


def test_step_updates_in_place_and_returns_closure_value():
    w = np.ones((3, 2), np.float32)
    o = Adam([w], lr=0.1)
    set_grad(w, np.ones((3, 2), np.float32))
    assert o.step(lambda: 1.5) == 1.5
    assert np.allclose(w, 0.9)


@pytest.mark.parametrize("make,message", [
    (lambda p: SGD(p, lr=-1), "Invalid learning rate"),
    (lambda p: SGD(p, momentum=-0.1), "Invalid momentum value"),
    (lambda p: SGD(p, weight_decay=-1), "Invalid weight_decay value"),
    (lambda p: SGD(p, nesterov=True), "Nesterov momentum requires"),
    (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda p: Adam(p, lr=-1), "Invalid learning rate"),
    (lambda p: Adam(p, eps=-1e-8), "Invalid epsilon value"),
    (lambda p: Adam(p, betas=(1.0, 0.9)), "beta parameter at index 0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), "beta parameter at index 1"),
    (lambda p: AdamW(p, weight_decay=-1), "Invalid weight_decay value"),
    (lambda p: SGD([], lr=0.1), "empty parameter list"),
    (lambda p: SGD([p[0], p[0]], lr=0.1), "duplicate parameters"),
    (lambda p: SGD([{"params": p}, {"params": p}], lr=0.1), "more than one parameter group"),
    (lambda p: SGD([np.ones((4, 4))[:, ::2]]), "C-contiguous"),
])
def test_argument_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make([np.ones(3)])


def test_parameter_type_errors():
    with pytest.raises(TypeError, match="iterable of arrays"):
        SGD(np.ones(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        SGD([np.ones(3, np.int64)])
    with pytest.raises(TypeError, match="optimize arrays"):
        SGD([[1.0, 2.0]])


def test_defaults_and_group_keys_are_torchs():
    p = [np.ones(2)]
    tp = [torch.nn.Parameter(torch.ones(2))]
    for ours, theirs in ((SGD(p), torch.optim.SGD(tp)), (Adam(p), torch.optim.Adam(tp)),
                         (AdamW(p), torch.optim.AdamW(tp))):
        assert ours.defaults == theirs.defaults
        assert ours.state_dict() == {"state": {}, "param_groups": theirs.state_dict()[
            "param_groups"]}


# ------------------------------------------------------------------ schedulers
@pytest.mark.parametrize("make", [
    lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    lambda m, o: m.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    lambda m, o: m.CosineAnnealingLR(o, T_max=4),
])
def test_schedulers_match_torch(make):
    ours = SGD([{"params": [np.ones(2)]}, {"params": [np.ones(3)], "lr": 0.3}], lr=0.1)
    theirs = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)]},
                              {"params": [torch.ones(3, requires_grad=True)], "lr": 0.3}],
                             lr=0.1)
    s, ts = make(lr_scheduler, ours), make(torch.optim.lr_scheduler, theirs)
    assert s.base_lrs == ts.base_lrs and s.last_epoch == ts.last_epoch == 0
    for _ in range(3 * 5):
        assert s.get_last_lr() == ts.get_last_lr()
        assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in theirs.param_groups]
        ours.step()
        theirs.step()
        s.step()
        ts.step()
    assert s.last_epoch == ts.last_epoch
    # a resumed scheduler goes on alike
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 15
    s2 = make(lr_scheduler, ours)
    s2.load_state_dict(sd)
    for _ in range(3):
        s2.step()
        ts.step()
        assert s2.get_last_lr() == ts.get_last_lr()


def test_scheduler_type_error():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    assert nbops.optim.lr_scheduler is lr_scheduler


def test_parallel_kernels_equal_serial(monkeypatch):
    # Several chunks, run by the parallel twins (every size parallel), against the
    # serial kernels: the same results bit for bit.
    from nbops import _config
    from nbops.optim import _kernels

    rng = np.random.default_rng(8)
    n = 2 * _kernels.CHUNK + 123
    start = rng.standard_normal(n).astype(np.float32)
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(3)]
    results = []
    for threshold in (None, 1):
        if threshold is not None:
            monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", threshold)
        runs = []
        for cls, kwargs in ((Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                            (SGD, dict(lr=0.01, momentum=0.9))):
            w = start.copy()
            o = cls([w], **kwargs)
            for g in grads:
                set_grad(w, g)
                o.step()
            runs.append([w, *(v for k, v in o.state[w].items() if k != "step")])
        results.append(runs)
    from nbops import _launch
    assert (_kernels._adam_parallel, ("adam", np.dtype(np.float32))) in _launch._entry_points
    for serial, parallel in zip(*results, strict=True):
        for a, b in zip(serial, parallel, strict=True):
            np.testing.assert_array_equal(a, b)
