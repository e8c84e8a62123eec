"""Tests of the backward paths added for the backward table's misses (issue 14):
local_response_norm's backward on ``(N, C, 1)`` inputs (blocks of batch rows),
cdist's backward into ``out=``, and the kernels split for compile time.

Expected values come from the general kernels these paths must match bit for
bit, from float64 NumPy formulas and central finite differences written here,
or from PyTorch (parity tests only).
"""

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count

import nbops

torch = pytest.importorskip("torch")
F = torch.nn.functional


def data(shape, dtype, seed=0, scale=1.5):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def tt(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


# =========================================================================== #
# local_response_norm_backward on (N, C, 1): blocks of batch rows
# =========================================================================== #


def ref_lrn(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """float64 reference: torch's zero padding, the window averaged over size."""
    x = np.asarray(x, np.float64)
    c = x.shape[1]
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    sq = np.pad(x * x, pad)
    return x / (sum(sq[:, j:j + c] for j in range(size)) / size * alpha + k) ** beta


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_backward_one_position_same_bits_as_several(dtype):
    """(N, C, 1) (37 rows: two blocks of 16 and a tail) gives the bits of the
    general kernel (the same input with its position repeated), inf and NaN
    included, for odd, even and one-channel windows and both beta branches."""
    x = data((37, 50, 1), dtype, seed=4)
    g = data(x.shape, dtype, seed=5)
    x[3, 7, 0] = np.inf
    x[20, 30, 0] = np.nan
    for size, params in [(5, {}), (4, dict(alpha=0.5, beta=0.6, k=2.0)), (1, {}),
                         (2, dict(alpha=1.0))]:
        got = nbops.local_response_norm_backward(g, x, size, **params)
        general = nbops.local_response_norm_backward(
            np.repeat(g, 2, axis=2), np.repeat(x, 2, axis=2), size, **params)
        np.testing.assert_array_equal(got, general[:, :, :1])
        out = np.empty_like(x)
        nbops.local_response_norm_backward(g, x, size, **params, out=out)
        np.testing.assert_array_equal(out, got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_backward_one_position_against_torch_and_finite_differences(dtype):
    x = data((21, 9, 1), dtype, seed=6)
    g = data(x.shape, dtype, seed=7)
    params = dict(alpha=0.7, beta=0.8, k=1.5)
    gi = nbops.local_response_norm_backward(g, x, 3, **params)
    xt = tt(x, True)
    F.local_response_norm(xt, 3, **params).backward(tt(g))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(gi, xt.grad.numpy(), **tol)
    if dtype == np.float64:
        num = np.zeros_like(x)
        h = 1e-6
        for i in range(x.size):
            up, down = x.copy(), x.copy()
            up.flat[i] += h
            down.flat[i] -= h
            num.flat[i] = np.sum((ref_lrn(up, 3, **params) - ref_lrn(down, 3, **params)) * g)
        np.testing.assert_allclose(gi, num / (2 * h), rtol=1e-6, atol=1e-8)


def test_lrn_backward_one_position_same_bits_on_any_thread_count(monkeypatch):
    x = data((70, 130, 1), np.float32, seed=7)
    g = data(x.shape, np.float32, seed=8)
    out = np.empty_like(x)

    def run():
        nbops.local_response_norm_backward(g, x, 5, out=out)
        return [nbops.local_response_norm_backward(g, x, 5), out.copy()]

    assert_same_bits_on_any_thread_count(monkeypatch, run)


# =========================================================================== #
# cdist_backward into out=: written in place
# =========================================================================== #


def ref_cdist_grads(x1, x2, g, p):
    """float64 gradients of sum(g * cdist(x1, x2, p)) for 2-D x1, x2 and p >= 1
    finite (no zero distances in the data used here)."""
    d = x1[:, None, :].astype(np.float64) - x2[None, :, :]
    dist = (np.abs(d) ** p).sum(axis=2) ** (1.0 / p)
    w = np.sign(d) * np.abs(d) ** (p - 1.0) * (g / dist ** (p - 1.0))[:, :, None]
    return w.sum(axis=1), -w.sum(axis=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [2.0, 1.5])
@pytest.mark.parametrize("rows", [20, 700])  # 700 rows: the product form at p = 2
def test_cdist_backward_out_written_in_place(rows, p, dtype):
    x1 = data((rows, 16), dtype, seed=1)
    x2 = data((30, 16), dtype, seed=2)
    y = nbops.cdist(x1, x2, p=p)
    g = data(y.shape, dtype, seed=3)
    want = nbops.cdist_backward(g, x1, x2, p=p, output=y)
    for out in [(np.full_like(x1, np.nan), np.full_like(x2, np.nan)),
                (np.full_like(x1, np.nan), None), (None, np.full_like(x2, np.nan))]:
        got = nbops.cdist_backward(g, x1, x2, p=p, output=y, out=out)
        for r, w, o in zip(got, want, out, strict=True):
            np.testing.assert_array_equal(r, w)
            assert o is None or r is o
    ref = ref_cdist_grads(x1, x2, g.astype(np.float64), p)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    for r, w in zip(want, ref, strict=True):
        np.testing.assert_allclose(r, w, **tol)
    t1, t2 = tt(x1, True), tt(x2, True)
    torch.cdist(t1, t2, p=p).backward(tt(g))
    np.testing.assert_allclose(want[0], t1.grad.numpy(), **tol)
    np.testing.assert_allclose(want[1], t2.grad.numpy(), **tol)


def test_cdist_backward_out_not_written_in_place():
    """out= arrays that cannot take the gradient directly (broadcast batch axes,
    another dtype than the computation's, a non-contiguous view, the input
    itself, one array for both) get the same values as the allocating call."""
    x1 = data((2, 40, 8), np.float64, seed=4)
    x2 = data((1, 30, 8), np.float64, seed=5)
    g = data((2, 40, 30), np.float64, seed=6)
    want = nbops.cdist_backward(g, x1, x2)
    got = nbops.cdist_backward(g, x1, x2, out=(np.empty_like(x1), np.empty_like(x2)))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])  # summed over the broadcast batch
    a, b = data((40, 8), np.float32, seed=7), data((30, 8), np.float32, seed=8)
    g64 = data((40, 30), np.float64, seed=9)
    w32 = nbops.cdist_backward(g64, a, b)  # computed in float64, delivered in float32
    got = nbops.cdist_backward(g64, a, b, out=(np.empty_like(a), np.empty_like(b)))
    np.testing.assert_array_equal(got[0], w32[0])
    wide = np.empty((40, 16), np.float32)
    got = nbops.cdist_backward(g64.astype(np.float32), a, b, out=(wide[:, ::2], None))
    np.testing.assert_array_equal(
        got[0], nbops.cdist_backward(g64.astype(np.float32), a, b)[0])
    a_copy, b_copy = a.copy(), b.copy()
    want = nbops.cdist_backward(g64.astype(np.float32), a, b)
    got = nbops.cdist_backward(g64.astype(np.float32), a_copy, b_copy, out=(a_copy, b_copy))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# =========================================================================== #
# compile time: parallel kernels that call their cores
# =========================================================================== #


def test_linear_kernels_call_their_tasks_by_address():
    """linear's product and weight-gradient kernels call their task functions
    through the task's address (``_launch.task_address``): neither kernel's compiled
    code holds a copy of the task; both kernels give the values of a float64
    NumPy product, and the same bits as each other and as the ``@njit`` form
    (which calls the tasks linked)."""
    from nbops import _launch
    from nbops._ops import linear as L

    g = data((300, 70), np.float32, seed=1)
    x = data((300, 65), np.float32, seed=2)
    w = data((70, 65), np.float32, seed=3)
    b = data(70, np.float32, seed=4)
    cases = ((L._weight_grad_serial, L._weight_grad_parallel, L._weight_grad_task,
              (g, x, np.empty((70, 65), np.float32), np.zeros(70, np.float32), True), 2,
              g.T.astype(np.float64) @ x),
             (L._product_serial, L._product_parallel, L._product_task,
              (x, w, b, True, np.empty((300, 70), np.float32)), 4,
              x.astype(np.float64) @ w.T + b))
    for serial, parallel, task, args, result, want in cases:
        address = _launch.task_address(task, ("test", task), args)
        runs = []
        for kernel in (serial, parallel):
            out = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            kernel(*out, address)
            np.testing.assert_allclose(out[result], want, rtol=1e-4, atol=1e-4)
            if task is L._weight_grad_task:  # the bias's sums
                np.testing.assert_allclose(out[3], g.sum(axis=0, dtype=np.float64),
                                           rtol=1e-5, atol=1e-5)
            runs.append(out[result:result + 2])
            for cres in kernel.overloads.values():
                defined = [f.name for f in cres.library.get_defined_functions()]
                assert not any(task.py_func.__name__ in f for f in defined), defined
        for a, c in zip(*runs, strict=True):
            np.testing.assert_array_equal(a, c)
    numba = pytest.importorskip("numba")
    njit_grads = numba.njit(lambda g, x, w, b: nbops.linear_backward(g, x, w, b))(g, x, w, b)
    for a, c in zip(nbops.linear_backward(g, x, w, b), njit_grads, strict=True):
        np.testing.assert_array_equal(a, c)


# =========================================================================== #
# gumbel_softmax_backward: out= written directly, no pass for tau = 1
# =========================================================================== #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gumbel_softmax_backward_out_and_default_tau(dtype):
    """The gradient into out= (C-contiguous, a transposed view, grad_output
    itself) is the allocating call's; with tau = 1 it is softmax_backward of the
    regenerated soft sample, exactly; and softmax's gradient formula in float64."""
    x = data((50, 7), dtype, seed=1)
    g = data(x.shape, dtype, seed=2)
    for kw in [dict(tau=1.0), dict(tau=0.5, hard=True), dict(tau=2.0, dim=0)]:
        want = nbops.gumbel_softmax_backward(g, x, rng=3, **kw)
        for out in [np.full_like(x, np.nan), np.full(x.shape[::-1], np.nan, dtype).T]:
            got = nbops.gumbel_softmax_backward(g, x, rng=3, out=out, **kw)
            assert got is out
            np.testing.assert_array_equal(got, want)
        g_copy = g.copy()
        got = nbops.gumbel_softmax_backward(g_copy, x, rng=3, out=g_copy, **kw)
        np.testing.assert_array_equal(got, want)
        y = nbops.gumbel_softmax(x, kw["tau"], rng=3, axis=kw.get("dim", -1))
        axis = kw.get("dim", -1)
        y64, g64 = y.astype(np.float64), g.astype(np.float64)
        ref = y64 * (g64 - (g64 * y64).sum(axis=axis, keepdims=True)) / kw["tau"]
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12,
                                                                        atol=1e-14)
        np.testing.assert_allclose(want, ref, **tol)
    y = nbops.gumbel_softmax(x, rng=3)
    np.testing.assert_array_equal(nbops.gumbel_softmax_backward(g, x, rng=3),
                                  nbops.softmax_backward(g, y))


# =========================================================================== #
# multilabel_soft_margin_loss_backward: the gradient kernel alone, out= direct
# =========================================================================== #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multilabel_soft_margin_backward_gradient_kernel(dtype):
    """The backward's own gradient kernel gives the bits of _with_grad's
    gradient (one expression), into out= too (contiguous, transposed, float64
    for float32 arguments), and the float64 formula g w (sigmoid(x) - y) / C."""
    x = data((40, 9), dtype, seed=1)
    t = (data(x.shape, dtype, seed=2) > 0).astype(dtype)
    w = (np.abs(data(9, dtype, seed=3)) + 0.1).astype(dtype)
    for reduction in ("mean", "sum", "none"):
        for kw in ({}, dict(weight=w)):
            g = 1.0 if reduction != "none" else data(40, dtype, seed=4)
            want = nbops.multilabel_soft_margin_loss_backward(g, x, t, reduction=reduction,
                                                              **kw)
            if reduction != "none":
                _, wg = nbops.multilabel_soft_margin_loss_with_grad(x, t, reduction=reduction,
                                                                    **kw)
                np.testing.assert_array_equal(want, wg)
            for out in (np.full_like(x, np.nan), np.full(x.shape[::-1], np.nan, dtype).T):
                got = nbops.multilabel_soft_margin_loss_backward(
                    g, x, t, reduction=reduction, out=out, **kw)
                assert got is out
                np.testing.assert_array_equal(got, want)
            x64, t64 = x.astype(np.float64), t.astype(np.float64)
            w64 = np.ones(9) if not kw else w.astype(np.float64)
            g64 = (np.full((40, 1), 1.0 / 40 if reduction == "mean" else 1.0)
                   if reduction != "none" else g.astype(np.float64)[:, None])
            ref = g64 * w64 * (1.0 / (1.0 + np.exp(-x64)) - t64) / 9
            tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12,
                                                                            atol=1e-15)
            np.testing.assert_allclose(want, ref, **tol)
            xt = tt(x, True)
            F.multilabel_soft_margin_loss(xt, tt(t), weight=tt(w) if kw else None,
                                          reduction=reduction).backward(
                None if reduction != "none" else tt(g))
            np.testing.assert_allclose(want, xt.grad.numpy(), **tol)


def test_multilabel_soft_margin_backward_same_bits_on_any_thread_count(monkeypatch):
    x = data((300, 40), np.float32, seed=5)
    t = (data(x.shape, np.float32, seed=6) > 0).astype(np.float32)

    def run():
        return [nbops.multilabel_soft_margin_loss_backward(1.0, x, t)]

    assert_same_bits_on_any_thread_count(monkeypatch, run)
