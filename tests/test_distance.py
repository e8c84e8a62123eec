"""Tests of ``nbops.pairwise_distance``.

Expected values come from the float64 NumPy formula ``ref_pdist`` or from
PyTorch (parity tests only), never from nbops itself.
"""

import numpy as np
import pytest

import nbops
from nbops import _config

FLOATS = (np.float32, np.float64)
PS = [0.0, 1.0, 2.0, 0.5, 3.0, np.inf, -np.inf, -1.5]
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=1e-6),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-14)}


def ref_pdist(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """float64 reference: the p-norm of (x1 - x2 + eps) over the broadcast last axis."""
    x1 = np.asarray(x1, np.float64)
    x2 = np.asarray(x2, np.float64)
    scalar = x1.ndim == 0 and x2.ndim == 0
    d = np.abs(np.atleast_1d(x1 - x2 + eps))
    with np.errstate(all="ignore"):
        if p == 0:
            r = (d != 0).sum(axis=-1).astype(np.float64)
        elif p == np.inf:
            r = d.max(axis=-1)
        elif p == -np.inf:
            r = d.min(axis=-1)
        else:
            r = (d ** p).sum(axis=-1) ** (1.0 / p)
    if keepdim and not scalar:
        r = r[..., None]
    return np.asarray(r)


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def close(got, exp, dtype, what=""):
    assert isinstance(got, np.ndarray), f"{what}: {type(got)}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == exp.shape, f"{what}: shape {got.shape}, expected {exp.shape}"
    np.testing.assert_allclose(got, exp, err_msg=what, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", PS)
def test_matches_reference(p, dtype):
    x1, x2 = data((7, 9), dtype), data((7, 9), dtype, 1)  # 9: the unrolled loops' tail
    close(nbops.pairwise_distance(x1, x2, p=p), ref_pdist(x1, x2, p), dtype, f"p={p}")


@pytest.mark.parametrize("p", [1.0, 2.0, np.inf])
@pytest.mark.parametrize("s1, s2", [((4, 6), (6,)), ((4, 6), (1, 6)), ((1, 6), (4, 6)),
                                    ((3, 1, 6), (4, 6)), ((4, 6), (4, 1)), ((2, 3, 6), (6,)),
                                    ((6,), (4, 1))])
def test_broadcasting(s1, s2, p):
    x1, x2 = data(s1, np.float64), data(s2, np.float64, 1)
    close(nbops.pairwise_distance(x1, x2, p=p), ref_pdist(x1, x2, p), np.float64,
          f"{s1} vs {s2}")
    close(nbops.pairwise_distance(x2, x1, p=p, keepdim=True), ref_pdist(x2, x1, p, keepdim=True),
          np.float64, f"{s2} vs {s1}, keepdim")


def test_shapes_1d_0d_keepdim():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 5.0])
    r = nbops.pairwise_distance(a, b)
    assert isinstance(r, np.ndarray) and r.shape == ()
    close(r, ref_pdist(a, b), np.float64)
    assert nbops.pairwise_distance(a, b, keepdim=True).shape == (1,)
    assert nbops.pairwise_distance(np.ones((4, 3)), a, keepdim=True).shape == (4, 1)
    # two 0-d inputs: a 0-d result, keepdim or not (as PyTorch)
    for keepdim in (False, True):
        r = nbops.pairwise_distance(np.float64(1.0), np.float64(3.0), keepdim=keepdim)
        assert r.shape == ()
        np.testing.assert_allclose(r, 2.0 - 1e-6)


def test_eps_is_added_to_the_difference():
    x = data((3, 4), np.float64)
    np.testing.assert_allclose(nbops.pairwise_distance(x, x, eps=1e-3), 2e-3)  # sqrt(4) * eps
    np.testing.assert_allclose(nbops.pairwise_distance(x, x, p=1, eps=1e-3), 4e-3)
    np.testing.assert_array_equal(nbops.pairwise_distance(x, x, eps=0.0), 0.0)


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 0.5])
def test_empty(p):
    assert nbops.pairwise_distance(np.ones((0, 4)), np.ones((0, 4)), p=p).shape == (0,)
    r = nbops.pairwise_distance(np.ones((3, 0), np.float32), np.ones((3, 0), np.float32), p=p)
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, np.zeros(3))
    assert nbops.pairwise_distance(np.ones((2, 0, 4)), np.ones(4), keepdim=True).shape == (2, 0, 1)


@pytest.mark.parametrize("p", [np.inf, -np.inf, -1.0])
def test_empty_last_axis_rejects_inf_and_negative_p(p):
    with pytest.raises(ValueError, match="p="):
        nbops.pairwise_distance(np.ones((3, 0)), np.ones((3, 0)), p=p)
    # no rows: nothing to reduce, no error (as PyTorch)
    assert nbops.pairwise_distance(np.ones((0, 0)), np.ones((0, 0)), p=p).shape == (0,)


@pytest.mark.parametrize("kind", ["fortran", "strided", "reversed", "lists", "ints"])
def test_noncontiguous_and_other_inputs(kind):
    a, b = data((6, 10), np.float64), data((6, 10), np.float64, 1)
    if kind == "fortran":
        a, b = np.asfortranarray(a), np.asfortranarray(b)
    elif kind == "strided":
        a, b = a[::2, ::3], b[::2, ::-3]
    elif kind == "reversed":
        a, b = a[::-1, ::-1], b[:, ::-1]
    elif kind == "lists":
        a, b = a.tolist(), b.tolist()
    else:
        a, b = np.arange(12).reshape(3, 4), np.arange(4, dtype=np.int8)
    for p in (2.0, 1.0):
        close(nbops.pairwise_distance(a, b, p=p), ref_pdist(a, b, p), np.float64, kind)


def test_float32_stays_float32_and_float16():
    a, b = data((5, 3), np.float32), data((5, 3), np.float32, 1)
    assert nbops.pairwise_distance(a, b, p=3).dtype == np.float32
    r16 = nbops.pairwise_distance(a.astype(np.float16), b.astype(np.float16))
    assert r16.dtype == np.float16
    np.testing.assert_allclose(r16, ref_pdist(a.astype(np.float16), b.astype(np.float16)),
                               rtol=2e-3)


def test_nan_and_inf():
    a = np.array([[np.nan, 1.0, 0.0], [np.inf, 1.0, 0.0], [np.inf, 0.0, 0.0]])
    b = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [np.inf, 0.0, 0.0]])
    for p in PS:
        with np.errstate(all="ignore"):
            exp = ref_pdist(a, b, p, eps=0.0)
        got = nbops.pairwise_distance(a, b, p=p, eps=0.0)
        np.testing.assert_allclose(got, exp, equal_nan=True, err_msg=f"p={p}")


def test_large_parallel_path(monkeypatch):
    """2048 x 128 float32 (262144 values: the parallel kernel), with a shared row too."""
    a, b = data((2048, 128), np.float32), data((2048, 128), np.float32, 1)
    assert a.size >= max(200_000, _config.PARALLEL_THRESHOLD)
    r = nbops.pairwise_distance(a, b)
    close(r, ref_pdist(a, b), np.float32)
    r_row = nbops.pairwise_distance(a, b[:1])
    close(r_row, ref_pdist(a, b[:1]), np.float32, "one shared row")
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)
    np.testing.assert_array_equal(nbops.pairwise_distance(a, b), r)  # serial twin: same bits
    np.testing.assert_array_equal(nbops.pairwise_distance(a, b[:1]), r_row)


@pytest.mark.parametrize("args, kw, exc, match", [
    ((np.ones((3, 4)), np.ones((2, 4))), {}, ValueError, r"x1.*\(3, 4\).*x2.*\(2, 4\)"),
    ((np.ones(3, complex), np.ones(3)), {}, TypeError, "x1"),
    ((np.ones(3), np.array(["a", "b", "c"])), {}, TypeError, "x2"),
    ((np.ones(3), np.ones(3)), {"p": "two"}, TypeError, "p"),
    ((np.ones(3), np.ones(3)), {"eps": None}, TypeError, "eps"),
])
def test_bad_input(args, kw, exc, match):
    with pytest.raises(exc, match=match):
        nbops.pairwise_distance(*args, **kw)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", PS)
def test_torch_parity(p, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x1, x2 = data((5, 2, 11), dtype, 3), data((2, 11), dtype, 4)
    exp = F.pairwise_distance(torch.from_numpy(x1), torch.from_numpy(x2), p=p).numpy()
    got = nbops.pairwise_distance(x1, x2, p=p)
    assert got.dtype == exp.dtype and got.shape == exp.shape
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got, exp, **tol)


def test_torch_parity_nan_inf_shapes():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    a = np.array([[np.nan, 1.0, 0.0], [np.inf, 1.0, 0.0], [np.inf, 0.0, 0.0], [1.0, 1.0, 1.0]])
    b = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [np.inf, 0.0, 0.0], [1.0, 1.0, 1.0]])
    for p in PS:
        for eps in (0.0, 1e-6):
            exp = F.pairwise_distance(torch.from_numpy(a), torch.from_numpy(b), p=p,
                                      eps=eps).numpy()
            np.testing.assert_allclose(nbops.pairwise_distance(a, b, p=p, eps=eps), exp,
                                       equal_nan=True, rtol=1e-12, err_msg=f"p={p}")
    t = torch.from_numpy
    for s1, s2, keepdim in [((3,), (3,), False), ((3,), (3,), True), ((), (), True),
                            ((4, 3), (4, 1), True), ((3, 0), (3, 0), False),
                            ((0, 3), (3,), True)]:
        x1, x2 = data(s1, np.float64), data(s2, np.float64, 1)
        exp = F.pairwise_distance(t(x1), t(x2), keepdim=keepdim).numpy()
        got = nbops.pairwise_distance(x1, x2, keepdim=keepdim)
        assert got.shape == exp.shape, (s1, s2, keepdim)
        np.testing.assert_allclose(got, exp, rtol=1e-12)


def test_inside_njit():
    numba = pytest.importorskip("numba")

    @numba.njit
    def run(a, b, c):
        return (nbops.pairwise_distance(a, b),
                nbops.pairwise_distance(a, c, 1.0, 1e-6, True))

    a, b, c = data((4, 5), np.float32), data((4, 5), np.float32, 1), data((1, 5), np.float32, 2)
    r1, r2 = run(a, b, c)
    close(r1, ref_pdist(a, b), np.float32, "p=2")
    close(r2, ref_pdist(a, c, 1.0, keepdim=True), np.float32, "p=1, keepdim, broadcast")
    r1, r2 = run(np.ones((3, 0), np.float32), np.ones((3, 0), np.float32),
                 np.ones((1, 0), np.float32))
    np.testing.assert_array_equal(r1, np.zeros(3))
    assert r2.shape == (3, 1)


# --------------------------------------------------------------------------- #
# out=
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("s1, s2, keepdim", [((4, 6), (4, 6), False), ((4, 6), (6,), True),
                                             ((2, 3, 5), (3, 5), False), ((5,), (5,), False),
                                             ((5,), (5,), True), ((), (), False)])
def test_out(s1, s2, keepdim, dtype):
    x1, x2 = data(s1, dtype), data(s2, dtype, 1)
    exp = ref_pdist(x1, x2, 3.0, keepdim=keepdim)
    out = np.full(exp.shape, np.nan, dtype)
    r = nbops.pairwise_distance(x1, x2, p=3.0, keepdim=keepdim, out=out)
    assert r is out
    close(out, exp, dtype, f"{s1} vs {s2}, keepdim={keepdim}")


def test_out_noncontiguous_and_float16():
    x1, x2 = data((6, 4), np.float64), data((6, 4), np.float64, 1)
    buf = np.zeros((6, 2))
    r = nbops.pairwise_distance(x1, x2, p=1.0, keepdim=True, out=buf[:, :1])
    assert r.base is buf
    close(buf[:, 0], ref_pdist(x1, x2, 1.0), np.float64, "strided out")
    np.testing.assert_array_equal(buf[:, 1], 0.0)
    h1, h2 = x1.astype(np.float16), x2.astype(np.float16)
    out16 = np.empty(6, np.float16)
    assert nbops.pairwise_distance(h1, h2, out=out16) is out16
    np.testing.assert_array_equal(out16, nbops.pairwise_distance(h1, h2))


def test_out_empty():
    out = np.empty((0,), np.float32)
    assert nbops.pairwise_distance(np.ones((0, 3), np.float32), np.ones(3, np.float32),
                                   out=out) is out


@pytest.mark.parametrize("out, exc, match", [
    (np.empty(3), ValueError, "out has shape"),
    (np.empty((4, 1)), ValueError, "out has shape"),
    (np.empty(4, np.float32), TypeError, "out has dtype"),
    ([0.0] * 4, TypeError, "out must be a numpy.ndarray"),
])
def test_out_errors(out, exc, match):
    x1, x2 = data((4, 5), np.float64), data((4, 5), np.float64, 1)
    with pytest.raises(exc, match=match):
        nbops.pairwise_distance(x1, x2, out=out)


def test_out_read_only():
    out = np.zeros(4)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        nbops.pairwise_distance(np.ones((4, 5)), np.zeros((4, 5)), out=out)
    np.testing.assert_array_equal(out, 0.0)


def test_plan_shapes():
    from nbops._ops.plan_norm import pairwise_distance_plan

    plan = pairwise_distance_plan((3, 1, 6), (4, 6), 2, 0, True)
    assert plan.shape == (3, 4, 6) and plan.rows == 12 and plan.dim == 6
    assert plan.out_shape == (3, 4, 1)
    assert pairwise_distance_plan((), (), 1, 0, True).out_shape == ()
    assert pairwise_distance_plan((5,), (5,), 1, 0, True).out_shape == (1,)
    with pytest.raises(ValueError, match="must not be NaN"):
        pairwise_distance_plan((5,), (5,), np.nan, 0, False)


@pytest.mark.parametrize("p", PS)
def test_shared_pnorm_cores_match_reference(p):
    """The cores the CUDA kernel uses, folded in a different order (two partial
    accumulators merged), give the reference norm."""
    from nbops.scalar import _norms as NM

    x1, x2 = data((3, 7), np.float64, 8), data((3, 7), np.float64, 9)
    kind = NM.pnorm_kind.py_func(p)
    for r in range(3):
        parts = []
        for start in (0, 1):
            acc = NM.pnorm_start.py_func(0.0, kind)
            for i in range(start, 7, 2):
                acc = NM.pnorm_add(acc, x1[r, i] - x2[r, i] + 1e-6, p, kind)
            parts.append(acc)
        got = NM.pnorm_finish(NM.pnorm_merge(parts[0], parts[1], kind), p, kind)
        np.testing.assert_allclose(got, ref_pdist(x1[r], x2[r], p), rtol=1e-12)
