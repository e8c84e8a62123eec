"""dropout, dropout2d, dropout3d, dropout_mask and the Philox4x32-10 core.

* the generator: Random123's known-answer vectors, the documented key/counter
  scheme element by element (high counter words included);
* reproducibility: serial vs parallel kernels, any partition of the work,
  NUMBA_NUM_THREADS=1 and 2 (subprocesses), memory layouts;
* statistics on 1e7 elements: kept fraction (binomial, 5 sigma), no
  correlation between neighbours (lags 1..8) or between seeds, chi-square
  over channels for dropout2d;
* semantics and edge cases against PyTorch (scaling bit for bit, channel
  structure for every rank, warnings, errors, NaN/inf, identity returns);
* rng forms, and calls inside user @njit code.
"""

import copy
import math
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import nbops
import nbops._ops.dropout as D  # noqa: E402
from nbops import _config
from nbops._validate import result_dtype
from nbops.scalar import random as R

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    torch = F = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _key_of(seed):
    k = R.splitmix64_int(seed)
    return np.uint32(k & 0xFFFFFFFF), np.uint32(k >> 32)


def _ref_keep(i, key, p):
    """The documented decision for mask element i, in pure Python ints."""
    j = i // 4
    r = R.philox4x32_10_int((j & 0xFFFFFFFF, j >> 32, 0, 0), (int(key[0]), int(key[1])))
    return r[i % 4] >= R.drop_threshold(p)


# ------------------------------------------------------------------ Philox core
KAT = [  # Random123 kat_vectors, philox4x32 10 rounds: counter, key, expected
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@numba.njit
def _philox_many(c, k, out):
    for i in range(c.shape[0]):
        r0, r1, r2, r3 = R.philox4x32_10(c[i, 0], c[i, 1], c[i, 2], c[i, 3], k[i, 0], k[i, 1])
        out[i, 0] = r0
        out[i, 1] = r1
        out[i, 2] = r2
        out[i, 3] = r3


@numba.njit
def _splitmix_many(s, out):
    for i in range(s.size):
        out[i] = R.splitmix64(s[i])


def test_philox_known_answer_vectors():
    c = np.array([v[0] for v in KAT], np.uint32)
    k = np.array([v[1] for v in KAT], np.uint32)
    out = np.zeros((len(KAT), 4), np.uint32)
    _philox_many(c, k, out)
    for (ctr, key, expected), got in zip(KAT, out, strict=True):
        assert tuple(int(v) for v in got) == expected, (ctr, key)
        assert R.philox4x32_10_int(ctr, key) == expected
    # the compiled core and the pure-Python reference agree on random inputs
    g = np.random.default_rng(0)
    c = g.integers(0, 1 << 32, size=(200, 4), dtype=np.uint32)
    k = g.integers(0, 1 << 32, size=(200, 2), dtype=np.uint32)
    out = np.zeros((200, 4), np.uint32)
    _philox_many(c, k, out)
    for ci, ki, oi in zip(c, k, out, strict=True):
        assert tuple(int(v) for v in oi) == R.philox4x32_10_int(
            tuple(int(v) for v in ci), tuple(int(v) for v in ki))


def test_splitmix64_and_threshold():
    s = np.array([0, 1, 12345, 2**63 + 7, 2**64 - 1], np.uint64)
    out = np.zeros_like(s)
    _splitmix_many(s, out)
    assert [int(v) for v in out] == [R.splitmix64_int(int(v)) for v in s]
    assert R.splitmix64_int(0) == 0xE220A8397B1DCDAF  # SplitMix64's first output for seed 0
    assert R.drop_threshold(0.0) == 0
    assert R.drop_threshold(0.5) == 1 << 31
    assert R.drop_threshold(1 - 1e-12) == 0xFFFFFFFF
    assert R.drop_threshold(1e-12) == 0


def test_cuda_device_compile_of_the_core():
    """The same Python functions compile with cuda.jit(device=True): simulator KAT + PTX."""
    pytest.importorskip("numba.cuda")
    script = r"""
import os, sys, types as _pt
import numpy as np
from numba import cuda
from nbops.scalar import random as R
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    dev = cuda.jit(device=True)(R.philox4x32_10.py_func)
    @cuda.jit
    def k(out, c, kk):
        r0, r1, r2, r3 = dev(c[0], c[1], c[2], c[3], kk[0], kk[1])
        out[0] = r0; out[1] = r1; out[2] = r2; out[3] = r3
    out = np.zeros(4, np.uint32)
    k[1, 1](out, np.array([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], np.uint32),
            np.array([0xa4093822, 0x299f31d0], np.uint32))
    assert [int(v) for v in out] == [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1], out
    print("sim ok")
else:
    import numba.cuda.cudadrv.nvrtc as _nvrtc
    import numba.cuda.dispatcher as _disp
    from numba.cuda import types as T
    _disp.get_current_device = lambda: _pt.SimpleNamespace(compute_capability=(9, 0))
    _nvrtc.get_supported_ccs = lambda: ((7, 5), (8, 0), (9, 0))
    u = T.uint32
    try:
        _, rt = cuda.compile_ptx(R.philox4x32_10.py_func, (u,) * 6, device=True, cc=(9, 0))
    except Exception as exc:  # no NVVM here
        print("no nvvm", type(exc).__name__); sys.exit(0)
    assert str(rt) == "UniTuple(uint32 x 4)", rt
    cuda.compile_ptx(R.lane.py_func, (u, u, u, u, T.uint64), device=True, cc=(9, 0))
    cuda.compile_ptx(R.splitmix64.py_func, (T.uint64,), device=True, cc=(9, 0))
    print("ptx ok")
"""
    for sim in ("1", "0"):
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM=sim)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------ the documented scheme
def test_mask_edges_p0_p1_empty():
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    for dt in (np.float32, np.float64, np.float16, bool):
        assert (nbops.dropout_mask((2, 3), 1.0, rng=g, dtype=dt) == 0).all()
        assert nbops.dropout_mask((2, 3), 1.0, dtype=dt).dtype == np.dtype(dt)
        assert (nbops.dropout_mask(4, 0.0, rng=g, dtype=dt) == 1).all()
        assert nbops.dropout_mask((0, 3), 0.5, rng=g, dtype=dt).shape == (0, 3)
    assert g.bit_generator.state == state  # nothing was drawn


def test_mask_is_the_documented_function_of_seed_and_index():
    p, seed = 0.3, 987654321
    key = _key_of(seed)
    m = nbops.dropout_mask(103, p, rng=seed, dtype=bool)
    assert m.tolist() == [_ref_keep(i, key, p) for i in range(103)]
    # far into the counter space (high counter word != 0), at an unaligned start
    start = (1 << 34) + 4 * 12345 + 3
    t = np.uint32(R.drop_threshold(p))
    out = np.zeros(37, np.bool_)
    D._drop_serial(None, None, out, start, key[0], key[1], t, np.bool_(True), np.bool_(False))
    assert out.tolist() == [_ref_keep(start + i, key, p) for i in range(37)]


def test_seed_forms_reduce_to_one_64bit_seed():
    x = np.ones(1000, np.float32)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    seed = int(g2.integers(2**64, dtype=np.uint64))
    assert np.array_equal(nbops.dropout(x, 0.4, rng=g1), nbops.dropout(x, 0.4, rng=seed))
    assert np.array_equal(nbops.dropout(x, 0.4, rng=np.uint64(seed)),
                          nbops.dropout(x, 0.4, rng=seed))
    # a BitGenerator is wrapped (and advanced), a SeedSequence is deterministic
    bg = np.random.PCG64(9)
    a, b = nbops.dropout(x, 0.5, rng=bg), nbops.dropout(x, 0.5, rng=bg)
    assert not np.array_equal(a, b)
    ss = np.random.SeedSequence(3)
    assert np.array_equal(nbops.dropout(x, 0.5, rng=ss), nbops.dropout(x, 0.5, rng=ss))


# ------------------------------------------------------------------ reproducibility
def _kernel_args(seed, p, dtype):
    key = _key_of(seed)
    dt = np.dtype(dtype)
    return key, np.uint32(R.drop_threshold(p)), dt.type(1 / (1 - p)), dt.type(0)


@pytest.mark.parametrize("n", [1, 7, 8193, 300_001])
def test_serial_and_parallel_kernels_agree(n):
    key, t, scale, zero = _kernel_args(42, 0.3, np.float32)
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    a, b, c, m1, m2 = (np.empty_like(x) for _ in range(5))
    D._drop_serial(x, None, a, 0, key[0], key[1], t, scale, zero)
    D._drop_parallel(x, None, b, 0, key[0], key[1], t, scale, zero)
    c[:] = x
    D._drop_parallel(None, True, c, 0, key[0], key[1], t, scale, zero)  # in place
    d = x.copy()
    D._drop_serial(None, True, d, 0, key[0], key[1], t, scale, zero)
    D._drop_serial(None, None, m1, 0, key[0], key[1], t, scale, zero)  # the mask
    D._drop_parallel(None, None, m2, 0, key[0], key[1], t, scale, zero)
    assert a.tobytes() == b.tobytes() == c.tobytes() == d.tobytes() == (x * m1).tobytes()
    assert m1.tobytes() == m2.tobytes()


def test_any_partition_of_the_work_gives_the_same_mask():
    n = 200_003
    key, t, scale, zero = _kernel_args(7, 0.5, np.float32)
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    whole = np.empty_like(x)
    D._drop_serial(x, None, whole, 0, key[0], key[1], t, scale, zero)
    g = np.random.default_rng(2)
    for trial in range(4):
        cuts = np.unique(np.concatenate([[0, n], g.integers(0, n, size=5 + trial),
                                         [1, 2, 3, 5]]))
        got = np.empty_like(x)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            kern = D._drop_parallel if (a + b) % 2 else D._drop_serial
            kern(x[a:b], None, got[a:b], int(a), key[0], key[1], t, scale, zero)
        assert got.tobytes() == whole.tobytes(), cuts


def test_public_serial_and_parallel_paths_agree(monkeypatch):
    x = np.random.default_rng(3).standard_normal((3, 5, 40, 50)).astype(np.float32)
    calls = [lambda: nbops.dropout(x, 0.3, rng=11),
             lambda: nbops.dropout2d(x, 0.3, rng=11),
             lambda: nbops.dropout_mask(x.shape, 0.3, rng=11, dtype=bool)]
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 60)
    serial = [f().tobytes() for f in calls]
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)
    parallel = [f().tobytes() for f in calls]
    assert serial == parallel


_THREAD_SCRIPT = r"""
import hashlib, warnings
import numpy as np, nbops, numba
x = np.random.default_rng(0).standard_normal(1_000_003).astype(np.float32)
x4 = x[:64 * 32 * 16 * 16].reshape(64, 32, 16, 16)
y = x.copy(); nbops.dropout(y, 0.25, inplace=True, rng=3)
res = [nbops.dropout(x, 0.3, rng=123), nbops.dropout2d(x4, 0.6, rng=9),
       nbops.dropout_mask(999_999, 0.1, rng=2**64 - 1, dtype=bool), y]
print(numba.get_num_threads(), *[hashlib.sha256(r.tobytes()).hexdigest()[:16] for r in res])
"""


def test_same_masks_on_one_and_two_threads():
    exec_ns = {}
    buf = []
    exec_ns["print"] = lambda *a: buf.append(" ".join(map(str, a)))
    exec(_THREAD_SCRIPT, exec_ns)
    here = buf[0].split()[1:]
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, NBOPS_PARALLEL_THRESHOLD="1000")
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr
        got = proc.stdout.split()
        assert got[0] == threads
        assert got[1:] == here


def test_memory_layout_does_not_change_the_result():
    x = np.random.default_rng(4).standard_normal((6, 7, 8)).astype(np.float32)
    ref = nbops.dropout(x, 0.5, rng=1)
    for v in (np.asfortranarray(x), x[::-1][::-1], np.ascontiguousarray(x[:, ::-1])[:, ::-1]):
        assert np.array_equal(nbops.dropout(v, 0.5, rng=1), ref)
    # a strided view is masked by its own C-order indices
    v = x[:, ::2]
    assert np.array_equal(nbops.dropout(v, 0.5, rng=1),
                          nbops.dropout(np.ascontiguousarray(v), 0.5, rng=1))
    assert np.array_equal(nbops.dropout2d(np.asfortranarray(x[None]), 0.5, rng=1)[0],
                          nbops.dropout2d(x[None], 0.5, rng=1)[0])


# ------------------------------------------------------------------ statistics
N_STAT = 10_000_000


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kept_fraction_within_binomial_bounds(p):
    for seed in (0, 1):
        m = nbops.dropout_mask(N_STAT, p, rng=seed, dtype=bool)
        kept = int(np.count_nonzero(m))
        mean, sd = N_STAT * (1 - p), math.sqrt(N_STAT * p * (1 - p))
        assert abs(kept - mean) < 5 * sd, (p, seed, kept, mean)
        # and in each of the four Philox lanes
        for lane in range(4):
            k = int(np.count_nonzero(m[lane::4]))
            n = m[lane::4].size
            assert abs(k - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p)), (p, lane)


def _corr(a, b):
    """Pearson correlation of two boolean arrays, from integer counts."""
    n = a.size
    sa, sb, sab = int(np.count_nonzero(a)), int(np.count_nonzero(b)), int(np.count_nonzero(a & b))
    cov = n * sab - sa * sb
    return cov / math.sqrt(sa * (n - sa) * sb * (n - sb))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_no_correlation_between_neighbours_or_seeds(p):
    m = nbops.dropout_mask(N_STAT, p, rng=12345, dtype=bool)
    bound = 5 / math.sqrt(N_STAT)
    for lag in range(1, 9):  # lags 1-3 cross lanes of a block, 4 and 8 cross blocks
        assert abs(_corr(m[:-lag], m[lag:])) < bound, lag
    # consecutive seeds and successive Generator draws give unrelated masks
    m2 = nbops.dropout_mask(N_STAT, p, rng=12346, dtype=bool)
    assert abs(_corr(m, m2)) < bound
    g = np.random.default_rng(0)
    a = nbops.dropout_mask(N_STAT, p, rng=g, dtype=bool)
    b = nbops.dropout_mask(N_STAT, p, rng=g, dtype=bool)
    assert abs(_corr(a, b)) < bound


def test_dropout2d_channels_chi_square():
    p, n, c, calls = 0.3, 256, 64, 40
    x = np.ones((n, c, 2, 3), np.float32)
    g = np.random.default_rng(2024)
    counts = np.zeros(c, np.int64)
    for _ in range(calls):
        y = nbops.dropout2d(x, p, rng=g)
        ch = y[:, :, 0, 0]
        assert np.all(y == ch[:, :, None, None])  # whole channels
        counts += np.count_nonzero(ch, axis=0)
    trials = n * calls
    q = 1 - p
    chi2 = float(np.sum((counts - trials * q) ** 2 / (trials * q * (1 - q))))
    # chi-square with c degrees of freedom: mean c, sd sqrt(2c)
    assert abs(chi2 - c) < 6 * math.sqrt(2 * c), chi2
    # and over the batch axis
    y = nbops.dropout2d(np.ones((4096, 4, 1, 2)), 0.5, rng=7)
    rows = np.count_nonzero(y[:, :, 0, 0], axis=1)  # Binomial(4, 0.5) per row
    observed = np.bincount(rows, minlength=5)
    expected = 4096 * np.array([1, 4, 6, 4, 1]) / 16
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert chi2 < 4 + 6 * math.sqrt(8), chi2


# ------------------------------------------------------------------ semantics, edge cases
def test_scaling_dtypes_and_mask_equivalence():
    for dtype in (np.float32, np.float64):
        x = np.random.default_rng(0).standard_normal(1001).astype(dtype)
        for p in (0.1, 1 / 3, 0.75):
            y = nbops.dropout(x, p, rng=5)
            m = nbops.dropout_mask(x.shape, p, rng=5, dtype=dtype)
            assert y.dtype == dtype and m.dtype == dtype
            assert y.tobytes() == (x * m).tobytes()
            scale = dtype(1.0 / (1.0 - p))
            assert set(np.unique(m).tolist()) == {0.0, float(scale)}
            km = nbops.dropout_mask(x.shape, p, rng=5, dtype=bool)
            assert np.array_equal(km, m != 0)
    m16 = nbops.dropout_mask((3, 4), 0.5, rng=1, dtype=np.float16)
    assert m16.dtype == np.float16 and set(np.unique(m16).tolist()) <= {0.0, 2.0}
    assert nbops.dropout_mask(5, 0.0).tolist() == [1.0] * 5
    assert nbops.dropout_mask(5, 1.0, dtype=bool).tolist() == [False] * 5
    assert nbops.dropout_mask((0, 3), 0.5).shape == (0, 3)
    with pytest.raises(TypeError, match="dtype"):
        nbops.dropout_mask(5, 0.5, dtype=np.int32)
    with pytest.raises(ValueError, match="shape"):
        nbops.dropout_mask((2, -1), 0.5)
    with pytest.raises(ValueError, match="p"):
        nbops.dropout_mask(4, 1.5)


def test_dtype_rule_for_other_inputs():
    for dtype in (np.int8, np.int16, np.int64, np.uint8, np.bool_, np.float16):
        x = (np.arange(24) % 3).astype(dtype).reshape(4, 6)
        y = nbops.dropout(x, 0.5, rng=1)
        assert y.dtype == result_dtype(x.dtype)[1], dtype
        ref = nbops.dropout(x.astype(result_dtype(x.dtype)[0]), 0.5, rng=1)
        assert np.array_equal(y, ref.astype(y.dtype))
        e = nbops.dropout(x, 0.5, training=False)
        assert e.dtype == result_dtype(x.dtype)[1]
    assert nbops.dropout([1, 2, 3], 0.0).dtype == np.float64
    with pytest.raises(TypeError, match="complex"):
        nbops.dropout(np.ones(3, np.complex64), 0.5)


def test_identity_returns_and_p_one():
    x = np.arange(1.0, 9.0, dtype=np.float32)
    assert nbops.dropout(x, 0.0) is x
    assert nbops.dropout(x, 0.5, training=False) is x
    with pytest.warns(UserWarning):
        assert nbops.dropout2d(x.reshape(2, 2, 2), 0.5, training=False).base is x
    e = np.empty((0, 3), np.float32)
    assert nbops.dropout(e, 0.5) is e
    z = nbops.dropout(x, 1.0)
    assert z.dtype == np.float32 and not z.any() and not np.shares_memory(z, x)
    with np.errstate(invalid="ignore"):
        nan_in = np.array([1.0, np.nan, np.inf, -np.inf], np.float32)
        assert np.array_equal(nbops.dropout(nan_in, 1.0), nan_in * 0, equal_nan=True)
    # 0-d
    s = np.array(3.0)
    assert nbops.dropout(s, 0.5, rng=0).shape == ()
    assert float(nbops.dropout(s, 0.5, rng=0)) in (0.0, 6.0)


def test_p_validation():
    x = np.ones(4)
    for bad in (-0.1, 1.1, float("nan"), float("inf")):
        for fn in (nbops.dropout, nbops.dropout2d, nbops.dropout3d):
            with pytest.raises(ValueError, match="p"):
                fn(x.reshape(1, 1, 2, 2), bad)
    with pytest.raises(TypeError, match="p"):
        nbops.dropout(x, "half")


def test_inplace():
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    ref = nbops.dropout(x, 0.4, rng=8)
    y = x.copy()
    assert nbops.dropout(y, 0.4, inplace=True, rng=8) is y
    assert np.array_equal(y, ref)
    # a strided writable view
    base = np.zeros((5, 12), np.float32)
    v = base[:, ::2]
    v[...] = x
    assert nbops.dropout(v, 0.4, inplace=True, rng=8) is v
    assert np.array_equal(v, ref) and not base[:, 1::2].any()
    y2 = np.ones((2, 3, 4, 4))
    nbops.dropout2d(y2, 0.5, inplace=True, rng=1)
    assert np.array_equal(y2, nbops.dropout2d(np.ones((2, 3, 4, 4)), 0.5, rng=1))
    # p == 1 and training=False in place
    y3 = x.copy()
    assert nbops.dropout(y3, 1.0, inplace=True) is y3 and not y3.any()
    # read-only input, integer input: errors, nothing modified, rng not advanced
    ro = x.copy()
    ro.flags.writeable = False
    g = np.random.default_rng(0)
    state = copy.deepcopy(g.bit_generator.state)
    with pytest.raises(ValueError, match="read-only"):
        nbops.dropout(ro, 0.5, inplace=True, rng=g)
    with pytest.raises(TypeError, match="inplace"):
        nbops.dropout(np.arange(4), 0.5, inplace=True, rng=g)
    assert np.array_equal(ro, x) and g.bit_generator.state == state
    # float16 in place: computed in float32, written back
    h = np.ones(10, np.float16)
    nbops.dropout(h, 0.5, inplace=True, rng=3)
    assert h.dtype == np.float16 and set(np.unique(h).tolist()) <= {0.0, 2.0}
    assert np.array_equal(h, nbops.dropout(np.ones(10, np.float16), 0.5, rng=3))


def test_out():
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    ref = nbops.dropout(x, 0.4, rng=8)
    out = np.full_like(x, 7)
    assert nbops.dropout(x, 0.4, rng=8, out=out) is out and np.array_equal(out, ref)
    # a strided out, out == input, an out overlapping the input differently
    base = np.zeros((5, 12), np.float32)
    assert np.array_equal(nbops.dropout(x, 0.4, rng=8, out=base[:, ::2]), ref)
    y = x.copy()
    assert nbops.dropout(y, 0.4, rng=8, out=y) is y and np.array_equal(y, ref)
    z = np.concatenate([x.ravel(), [0]]).astype(np.float32)
    nbops.dropout(z[1:].reshape(5, 6), 0.4, rng=8, out=z[:-1].reshape(5, 6))
    assert np.array_equal(z[:-1], nbops.dropout(np.append(x.ravel()[1:], 0).astype(
        np.float32).reshape(5, 6), 0.4, rng=8).ravel())
    # channel dropout, training=False and p == 1 write out too; ints promote
    o4 = np.empty((2, 3, 4, 4))
    nbops.dropout2d(np.ones((2, 3, 4, 4)), 0.5, rng=1, out=o4)
    assert np.array_equal(o4, nbops.dropout2d(np.ones((2, 3, 4, 4)), 0.5, rng=1))
    for kw in (dict(training=False), dict(p=0.0), dict(p=1.0)):
        o = np.full(x.shape, 5, np.float32)
        args = dict(p=0.4, rng=1)
        args.update(kw)
        assert np.array_equal(nbops.dropout(x, out=o, **args), nbops.dropout(x, **args))
    oi = np.empty(6)
    assert np.array_equal(nbops.dropout(np.arange(6), 0.5, rng=2, out=oi),
                          nbops.dropout(np.arange(6.0), 0.5, rng=2))
    # errors: nothing written, rng not advanced
    g = np.random.default_rng(0)
    state = copy.deepcopy(g.bit_generator.state)
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    for bad, exc in ((np.zeros((6, 5), np.float32), ValueError),
                     (np.zeros_like(x, dtype=np.float64), TypeError), (ro, ValueError),
                     ([0.0] * 30, TypeError)):
        with pytest.raises(exc, match="out"):
            nbops.dropout(x, 0.5, rng=g, out=bad)
    with pytest.raises(ValueError, match="inplace"):
        nbops.dropout(x.copy(), 0.5, inplace=True, out=np.empty_like(x), rng=g)
    assert g.bit_generator.state == state


def test_rng_forms():
    x = np.ones(4096, np.float32)
    assert np.array_equal(nbops.dropout(x, 0.5, rng=1), nbops.dropout(x, 0.5, rng=1))
    assert not np.array_equal(nbops.dropout(x, 0.5, rng=1), nbops.dropout(x, 0.5, rng=2))
    assert not np.array_equal(nbops.dropout(x, 0.5), nbops.dropout(x, 0.5))  # fresh entropy
    g = np.random.default_rng(3)
    a, b = nbops.dropout(x, 0.5, rng=g), nbops.dropout(x, 0.5, rng=g)
    assert not np.array_equal(a, b)
    # no draw when nothing is random: training=False, p in {0, 1}, empty input
    g = np.random.default_rng(4)
    state = copy.deepcopy(g.bit_generator.state)
    nbops.dropout(x, 0.5, training=False, rng=g)
    nbops.dropout(x, 0.0, rng=g)
    nbops.dropout(x, 1.0, rng=g)
    nbops.dropout(np.ones(0), 0.5, rng=g)
    assert g.bit_generator.state == state
    nbops.dropout(x, 0.5, rng=g)
    assert g.bit_generator.state != state
    for bad, exc in ((1.5, TypeError), (True, TypeError), ("seed", TypeError),
                     (np.random.RandomState(0), TypeError), (-1, ValueError),
                     (2**64, ValueError)):
        with pytest.raises(exc, match="rng"):
            nbops.dropout(x, 0.5, rng=bad)
    top = 2**64 - 1
    assert np.array_equal(nbops.dropout(x, 0.5, rng=top), nbops.dropout(x, 0.5, rng=top))


def test_channel_masks_are_dropout_masks_of_the_channel_shape():
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)
    assert np.array_equal(nbops.dropout2d(x, 0.5, rng=4),
                          x * nbops.dropout_mask((3, 4, 1, 1), 0.5, rng=4))
    with pytest.warns(UserWarning, match="dropout2d"):  # PyTorch's rank warning
        assert np.array_equal(nbops.dropout2d(x[0], 0.5, rng=4),  # (N, C, L)
                              x[0] * nbops.dropout_mask((4, 5, 1), 0.5, rng=4))
    with pytest.warns(UserWarning, match="dropout2d"):
        assert np.array_equal(nbops.dropout2d(x[0, 0], 0.5, rng=4),  # 2-D: per element
                              nbops.dropout(x[0, 0], 0.5, rng=4))
    with pytest.warns(UserWarning, match="dropout3d"):
        assert np.array_equal(nbops.dropout3d(x[0, 0], 0.5, rng=4),  # 2-D: rows
                              x[0, 0] * nbops.dropout_mask((5, 1), 0.5, rng=4))
    # dropout3d: 4-D is (C, D, H, W), 5-D is (N, C, D, H, W)
    assert np.array_equal(nbops.dropout3d(x, 0.5, rng=4),
                          x * nbops.dropout_mask((3, 1, 1, 1), 0.5, rng=4))
    assert np.array_equal(nbops.dropout3d(x[None], 0.5, rng=4),
                          x[None] * nbops.dropout_mask((1, 3, 1, 1, 1), 0.5, rng=4))
    # a large channel count and a small inner size take the channel kernel in parallel
    big = np.ones((300, 400, 2, 1), np.float32)
    assert np.array_equal(nbops.dropout2d(big, 0.5, rng=6),
                          big * nbops.dropout_mask((300, 400, 1, 1), 0.5, rng=6))


# ------------------------------------------------------------------ PyTorch parity
@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_scaling_bit_for_bit(dtype):
    x = np.random.default_rng(1).standard_normal(20000).astype(dtype)
    for p in (0.1, 0.3, 1 / 3, 0.123456789, 0.9):
        t = F.dropout(torch.from_numpy(x), p).numpy()
        y = nbops.dropout(x, p, rng=1)
        scale = nbops.dropout_mask(64, p, rng=0, dtype=dtype).max()
        tk, yk = t != 0, y != 0
        assert t[tk].tobytes() == (x[tk] * scale).tobytes()
        assert y[yk].tobytes() == (x[yk] * scale).tobytes()
        assert np.all(t[~tk] == 0) and np.all(y[~yk] == 0)


@needs_torch
def test_torch_nan_inf_and_identity():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0] * 50, np.float32)
    for p in (0.5, 1.0):
        with np.errstate(invalid="ignore"):
            t = F.dropout(torch.from_numpy(x), p).numpy()
            y = nbops.dropout(x, p, rng=3)
        # kept non-finite stay as they are, dropped ones become NaN (x * 0), as torch
        for r in (t, y):
            fin = np.isfinite(x)
            assert np.all(np.isnan(r[np.isnan(x)]))
            assert np.all(np.isnan(r[~fin & (r != x)]))
            assert np.all(np.isfinite(r[fin]))
    tx = torch.from_numpy(x)
    assert F.dropout(tx, 0.0) is tx and nbops.dropout(x, 0.0) is x
    assert F.dropout(tx, 0.5, training=False) is tx and nbops.dropout(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match="dropout probability"):
        F.dropout(tx, 1.5)


def _constant_axes(y):
    return tuple(k for k in range(y.ndim) if y.shape[k] > 1 and np.all(y == y.take([0], axis=k)))


def _outcome(fn, x, training, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            r = fn(x, 0.5, training, **kw)
        except (ValueError, RuntimeError):
            r = None
    return r, len(w)


@needs_torch
@pytest.mark.parametrize("name", ["dropout2d", "dropout3d"])
def test_torch_rank_rules_warnings_and_channel_structure(name):
    tfn, nfn = getattr(F, name), getattr(nbops, name)
    torch.manual_seed(0)
    for ndim in range(0, 7):
        # 24 x 3 x 3 ...: a varying axis looking constant by chance is negligible
        x = np.ones(((24,) + (3,) * (ndim - 1)) if ndim else ())
        for training in (True, False):
            tr, tw = _outcome(tfn, torch.from_numpy(x.copy()), training)
            nr, nw = _outcome(nfn, x, training, rng=ndim)
            assert tw == nw, (name, ndim, training)
            assert (tr is None) == (nr is None), (name, ndim, training)
            if tr is not None and training:
                assert _constant_axes(tr.numpy()) == _constant_axes(nr), (name, ndim)
    # warning text and category (the caller's line)
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        nbops.dropout2d(np.ones((2, 3, 4)), 0.5, rng=0)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout3d") as rec:
        nbops.dropout3d(np.ones((2, 3)), 0.5, rng=0)
    assert rec[0].filename == __file__


# ------------------------------------------------------------------ inside user @njit
@numba.njit
def _nj_all(x, p, seed):
    out = np.empty_like(x)
    nbops.dropout2d(x, p, rng=seed, out=out)
    return (nbops.dropout(x, p, rng=seed), nbops.dropout2d(x, p, rng=seed),
            nbops.dropout3d(x, p, True, False, seed), nbops.dropout(x, p, training=False), out)


@numba.njit
def _nj_inplace(x, p, seed):
    return nbops.dropout(x, p, inplace=True, rng=seed)


@numba.njit
def _nj_fresh(x, p):
    return nbops.dropout(x, p)


@numba.njit
def _nj_scalar(v, seed):
    return nbops.dropout(v, 0.5, rng=seed)


def test_inside_njit_same_masks_as_outside():
    x = np.random.default_rng(0).standard_normal((4, 6, 5, 3)).astype(np.float32)
    a, b, c, d, o = _nj_all(x, 0.4, 77)
    assert np.array_equal(o, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rank warnings of dropout2d/3d
        assert np.array_equal(a, nbops.dropout(x, 0.4, rng=77))
        assert np.array_equal(b, nbops.dropout2d(x, 0.4, rng=77))
        assert np.array_equal(c, nbops.dropout3d(x, 0.4, rng=77))
    assert a.dtype == np.float32 and np.array_equal(d, x) and not np.shares_memory(d, x)
    # strided, in place (copy back), p == 1
    base = np.zeros((4, 12, 5, 3), np.float32)
    v = base[:, ::2]
    v[...] = x
    _nj_inplace(v, 0.4, 77)
    assert np.array_equal(v, a) and not base[:, 1::2].any()
    y = x.copy()
    _nj_inplace(y, 1.0, 1)
    assert not y.any()
    # fresh entropy differs between calls; kept values are scaled
    f1, f2 = _nj_fresh(x, 0.5), _nj_fresh(x, 0.5)
    assert not np.array_equal(f1, f2)
    assert np.allclose(f1[f1 != 0], 2 * x[f1 != 0])
    assert _nj_scalar(3.0, 1) in (0.0, 6.0)
    assert _nj_scalar(3.0, 1) == float(nbops.dropout(np.float64(3.0), 0.5, rng=1))


@numba.njit
def _nj_2d(x):
    return nbops.dropout2d(x, 0.5, rng=1)


def test_inside_njit_errors():
    x = np.ones((1, 2, 2, 2), np.float32)  # the specializations compiled above
    with pytest.raises(ValueError, match="p"):
        _nj_all(x, 1.5, 1)
    with pytest.raises(ValueError, match="rng"):
        _nj_inplace(x, 0.5, -3)
    with pytest.raises(ValueError, match="2 dimensions"):
        _nj_2d(np.ones(3))  # dropout2d on a 1-D input draws a mask: error
    assert _nj_2d(np.ones(0)).shape == (0,)  # nothing to draw: no error, as PyTorch
    with pytest.raises(numba.core.errors.TypingError, match="rng"):
        numba.njit(lambda v: nbops.dropout(v, 0.5, rng=1.5))(x)
