"""Training end to end: nbops.nn + nbops.optim against the same model trained by PyTorch.

The model of the issue (Linear, BatchNorm1d, ReLU, Dropout, Linear with
CrossEntropyLoss) starts from one state_dict on both sides and takes the same
steps on the same batches; after every step the losses, the parameters, the
running statistics and the optimizer state must agree.
"""

import numpy as np
import pytest

import nbops
from nbops import nn, optim

torch = pytest.importorskip("torch")

N_IN, HIDDEN, N_OUT, BATCH, STEPS = 12, 24, 5, 32, 6


def _models(dtype, p):
    model = nn.Sequential(nn.Linear(N_IN, HIDDEN, rng=0, dtype=dtype),
                          nn.BatchNorm1d(HIDDEN, dtype=dtype), nn.ReLU(),
                          nn.Dropout(p, rng=1), nn.Linear(HIDDEN, N_OUT, rng=2, dtype=dtype))
    tdt = getattr(torch, np.dtype(dtype).name)
    tmodel = torch.nn.Sequential(torch.nn.Linear(N_IN, HIDDEN), torch.nn.BatchNorm1d(HIDDEN),
                                 torch.nn.ReLU(), torch.nn.Dropout(p),
                                 torch.nn.Linear(HIDDEN, N_OUT)).to(tdt)
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            model.state_dict().items()})
    return model, tmodel


def _batches(dtype):
    rng = np.random.default_rng(7)
    return [(rng.standard_normal((BATCH, N_IN)).astype(dtype),
             rng.integers(0, N_OUT, BATCH)) for _ in range(STEPS)]


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12),
                                               (np.float32, 2e-4, 2e-5)])
@pytest.mark.parametrize("opt_name", ["Adam", "SGD"])
def test_training_matches_pytorch_step_by_step(dtype, rtol, atol, opt_name):
    model, tmodel = _models(dtype, 0.0)
    crit, tcrit = nn.CrossEntropyLoss(label_smoothing=0.1), \
        torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    if opt_name == "Adam":
        opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    else:
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                               foreach=False)
    for x, y in _batches(dtype):
        opt.zero_grad()
        loss = crit(model(x), y)
        model.backward(crit.backward())
        opt.step()
        topt.zero_grad()
        tloss = tcrit(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(float(loss), tloss.item(), rtol=rtol, atol=atol)
        tstate = tmodel.state_dict()
        for name, value in model.state_dict().items():
            np.testing.assert_allclose(np.asarray(value), tstate[name].numpy(), rtol=rtol,
                                       atol=atol, err_msg=name)
    # gradients by state_dict name, as torch's .grad (of the last step)
    tgrads = {k: p.grad.numpy() for k, p in tmodel.named_parameters()}
    grads = dict(model.named_grads())
    assert grads.keys() == tgrads.keys()
    for name, g in grads.items():
        np.testing.assert_allclose(g, tgrads[name], rtol=rtol * 10, atol=atol * 10,
                                   err_msg=name)


def test_trained_checkpoint_loads_into_pytorch_and_back(tmp_path):
    model, _ = _models(np.float32, 0.2)
    crit = nn.CrossEntropyLoss()
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    for x, y in _batches(np.float32):
        opt.zero_grad()
        crit(model(x), y)
        model.backward(crit.backward())
        opt.step()
    path = tmp_path / "trained.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in model.state_dict().items()})
    tmodel = torch.nn.Sequential(torch.nn.Linear(N_IN, HIDDEN), torch.nn.BatchNorm1d(HIDDEN),
                                 torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                 torch.nn.Linear(HIDDEN, N_OUT))
    with np.load(path) as npz:
        result = tmodel.load_state_dict({k: torch.from_numpy(npz[k]) for k in npz.files})
    assert not result.missing_keys and not result.unexpected_keys
    model.eval()
    tmodel.eval()
    x = _batches(np.float32)[0][0]
    with nbops.no_grad(), torch.no_grad():
        np.testing.assert_allclose(model(x), tmodel(torch.from_numpy(x)).numpy(), rtol=1e-5,
                                   atol=1e-6)
    # the optimizer's checkpoint goes to torch and back too
    topt = torch.optim.AdamW(tmodel.parameters(), lr=1e-2)
    sd = opt.state_dict()
    topt.load_state_dict(_to_torch(sd))
    back = optim.AdamW(model.parameters(), lr=1e-2)
    back.load_state_dict(_to_numpy(topt.state_dict()))
    for i, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            np.testing.assert_array_equal(np.asarray(back.state_dict()["state"][i][k]),
                                          np.asarray(v), err_msg=k)


def _to_torch(obj):
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_torch(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    return obj


def _to_numpy(obj):
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_numpy(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    return obj


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    import pickle

    batches = _batches(np.float64)

    def run(model, opt, sched, crit, steps):
        for x, y in steps:
            opt.zero_grad()
            crit(model(x), y)
            model.backward(crit.backward(), needs_input_grad=False)
            opt.step()
            sched.step()

    def fresh():
        model, _ = _models(np.float64, 0.3)
        opt = optim.AdamW(model.parameters(), lr=1e-2, amsgrad=True)
        return model, opt, optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    crit = nn.CrossEntropyLoss()
    model, opt, sched = fresh()
    run(model, opt, sched, crit, batches)  # uninterrupted
    model2, opt2, sched2 = fresh()
    run(model2, opt2, sched2, crit, batches[:3])
    path = tmp_path / "ckpt.pkl"
    with open(path, "wb") as f:  # the usual checkpoint: model, optimizer, scheduler
        pickle.dump({"model": model2.state_dict(), "opt": opt2.state_dict(),
                     "sched": sched2.state_dict(), "rng": model2[3].rng}, f)
    model3, opt3, sched3 = fresh()
    with open(path, "rb") as f:
        ckpt = pickle.load(f)
    model3.load_state_dict(ckpt["model"])
    opt3.load_state_dict(ckpt["opt"])
    sched3.load_state_dict(ckpt["sched"])
    model3[3].rng = ckpt["rng"]  # the dropout masks' generator, where it stopped
    run(model3, opt3, sched3, crit, batches[3:])
    want = model.state_dict()
    for name, value in model3.state_dict().items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)
