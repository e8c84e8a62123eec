"""The argument plans on device arrays: the bad inputs of tests/_bad_inputs.py raise
the CPU path's exception (type, and where marked the message) on CUDA too, and the
legacy ``size_average``/``reduce`` flags give the CPU's results and warning."""

import re

import numpy as np
import pytest
from _bad_inputs import CASES, EXACT_CUDA
from _bad_inputs import raised as _raised

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import TOL  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

FLAGS = [None, True, False]
LEGACY = [(sa, rd) for sa in FLAGS for rd in FLAGS if (sa, rd) != (None, None)]


def _on_device(v):
    return _d(v) if isinstance(v, np.ndarray) else v


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_same_error_on_device(case):
    fn = getattr(nbops, case.op)
    cpu = _raised(fn, *case.args, **case.kwargs)
    dev = _raised(fn, *(_on_device(a) for a in case.args),
                  **{k: _on_device(v) for k, v in case.kwargs.items()})
    assert type(dev) is case.exc, repr(dev)
    assert re.search(case.match, str(dev)), str(dev)
    if EXACT_CUDA in case.exact:
        assert str(dev) == str(cpu)


RNG = np.random.default_rng(5)
X = RNG.standard_normal((5, 4)).astype(np.float32)
Y = RNG.standard_normal((5, 4)).astype(np.float32)
Q = RNG.uniform(0.1, 1.0, (5, 4)).astype(np.float32)
T = np.array([0, 3, 1, 2, 3])


def _both(op, args, **kwargs):
    """(device result on the host, CPU result), each call warning as PyTorch."""
    fn = getattr(nbops, op)
    with pytest.warns(DeprecationWarning, match="size_average and reduce args") as rec:
        dev = fn(*(_d(a) for a in args), **kwargs)
    assert rec[0].filename == __file__  # attributed to the caller's line
    with pytest.warns(DeprecationWarning):
        cpu = fn(*args, **kwargs)
    return _h(dev), cpu


@pytest.mark.parametrize("size_average,reduce", LEGACY)
def test_legacy_flags_on_device(size_average, reduce):
    flags = {"size_average": size_average, "reduce": reduce}
    for op, args, red in (("mse_loss", (X, Y), "sum"), ("kl_div", (X, Q), "batchmean"),
                          ("kl_div", (X, Q), "mean"), ("cross_entropy", (X, T), "xyz"),
                          ("nll_loss", (X, T), "mean")):
        dev, cpu = _both(op, args, reduction=red, **flags)
        assert dev.shape == np.shape(cpu), (op, red)
        np.testing.assert_allclose(dev, cpu, err_msg=f"{op} {red}", **TOL[np.float32])
