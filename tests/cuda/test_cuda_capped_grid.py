"""Kernels launched on a capped grid cover every item: with ``MAX_BLOCKS`` set to 1
(one block of TPB threads), each op below has more items than threads in the
kernel that once handled one item per thread (and so skipped every item past
``MAX_BLOCKS * TPB``); the device result must still equal the CPU path's.
Sizes of about two blocks of threads (TPB: 256 on a GPU, 32 on the simulator,
which runs each thread in Python)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

from nbops.cuda import _kernels as K  # noqa: E402
from nbops.cuda._core import TPB  # noqa: E402

DT = np.float64
#: float64 sums in another order than the CPU's
TOL = {DT: {"rtol": 1e-11, "atol": 1e-11}}
#: more items than one block's threads
N = 2 * TPB + 4  # (divisible by the 4 groups of the group_norm test)


@pytest.fixture(autouse=True)
def one_block(monkeypatch):
    monkeypatch.setattr(K, "MAX_BLOCKS", 1)
    assert K.grid(10 * N) == 1


def test_env_var_sets_max_blocks():
    code = "from nbops.cuda import _kernels as K; assert K.MAX_BLOCKS == 3, K.MAX_BLOCKS"
    env = dict(os.environ, NBOPS_CUDA_MAX_BLOCKS="3")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


def _data(shape, seed, loc=0.0):
    return np.random.default_rng(seed).standard_normal(shape).astype(DT) * 2 + loc


def _close_all(got, want):
    for a, b in zip(got, want, strict=True):
        if b is None:
            assert a is None
        else:
            _close(_h(a), np.asarray(b), DT, TOL)


def test_multilabel_soft_margin_loss_rows():
    # nbops/cuda/_multilabel.py: a thread per row
    x = _data((N, 3), 1)
    t = (_data((N, 3), 2) > 0).astype(DT)
    _close_all(nbops.multilabel_soft_margin_loss_with_grad(_d(x), _d(t), reduction="none"),
               nbops.multilabel_soft_margin_loss_with_grad(x, t, reduction="none"))


@pytest.mark.parametrize("var_shape", [(N, 2), (N, 1)])
def test_gaussian_nll_loss_elements_and_var_sums(var_shape):
    # nbops/cuda/_gaussian.py: both element kernels (N * 2 elements) and the
    # variance-gradient sums along the broadcast axis (N sums)
    x, t = _data((N, 2), 3), _data((N, 2), 4)
    var = np.abs(_data(var_shape, 5)) + 0.1
    got = nbops.gaussian_nll_loss_with_grad(_d(x), _d(t), _d(var), reduction="none")
    want = nbops.gaussian_nll_loss_with_grad(x, t, var, reduction="none")
    _close(_h(got[0]), want[0], DT, TOL)
    _close_all(got[1], want[1])


def test_prelu_backward_weight_sums():
    # nbops/cuda/_kernels.py: _prelu_grad_finish, a thread per channel
    x, g, w = _data((2, N), 6), _data((2, N), 7), _data(N, 8)
    _close_all(nbops.prelu_backward(_d(g), _d(x), _d(w)), nbops.prelu_backward(g, x, w))


def test_batch_norm_channel_combines():
    # nbops/cuda/_kernels.py: _bn_combine and _bn_grad_combine, a thread per channel
    x, g = _data((2, N), 9, loc=1.0), _data((2, N), 10)
    w, b = _data(N, 11, loc=1.0), _data(N, 12)
    rm, rv = _data(N, 13), np.abs(_data(N, 14)) + 0.5
    drm, drv = _d(rm), _d(rv)
    got = nbops.batch_norm(_d(x), drm, drv, _d(w), _d(b), training=True, return_stats=True)
    want = nbops.batch_norm(x, rm, rv, w, b, training=True, return_stats=True)
    _close_all(got, want)
    _close_all((drm, drv), (rm, rv))
    _close_all(nbops.batch_norm_backward(_d(g), _d(x), got[1], got[2], _d(w), training=True),
               nbops.batch_norm_backward(g, x, want[1], want[2], w, training=True))


def test_linear_backward_bias_sums():
    # nbops/cuda/_kernels.py: _column_sums, a thread per output feature
    g, x, w, b = _data((3, N), 15), _data((3, 4), 16), _data((N, 4), 17), _data(N, 18)
    _close_all(nbops.linear_backward(_d(g), _d(x), _d(w), _d(b)),
               nbops.linear_backward(g, x, w, b))


def test_group_norm_backward_channel_sums():
    # nbops/cuda/_norm_groups.py: _channel_parts (a thread per (sample, channel))
    # and _channel_finish (a thread per channel)
    x, g, w = _data((2, N, 2), 19, loc=3.0), _data((2, N, 2), 20), _data(N, 21, loc=1.0)
    got, mean, rstd = nbops.group_norm(_d(x), 4, _d(w), return_stats=True)
    _, wmean, wrstd = nbops.group_norm(x, 4, w, return_stats=True)
    _close_all(nbops.group_norm_backward(_d(g), _d(x), 4, mean, rstd, _d(w), has_bias=True),
               nbops.group_norm_backward(g, x, 4, wmean, wrstd, w, has_bias=True))


def test_instance_norm_running_stats():
    # nbops/cuda/_norm_groups.py: _update_running, a thread per channel
    x = _data((2, N, 3), 22, loc=1.0)
    rm, rv = _data(N, 23), np.abs(_data(N, 24)) + 0.5
    drm, drv = _d(rm), _d(rv)
    _close(_h(nbops.instance_norm(_d(x), drm, drv, momentum=0.3)),
           nbops.instance_norm(x, rm, rv, momentum=0.3), DT, TOL)
    _close_all((drm, drv), (rm, rv))


def test_layer_norm_backward_column_sums():
    # nbops/cuda/_norm_rows.py: _norm_grad_col_finish, a thread per column
    x, g = _data((3, N), 25, loc=2.0), _data((3, N), 26)
    w, b = _data(N, 27, loc=1.0), _data(N, 28)
    got, mean, rstd = nbops.layer_norm(_d(x), (N,), _d(w), _d(b), return_stats=True)
    _, wmean, wrstd = nbops.layer_norm(x, (N,), w, b, return_stats=True)
    _close_all(nbops.layer_norm_backward(_d(g), _d(x), (N,), mean, rstd, _d(w)),
               nbops.layer_norm_backward(g, x, (N,), wmean, wrstd, w))
