"""dask paths of the ops added by issues #16 and #17 (nbops/_dask.py): layer_norm,
rms_norm, group_norm, instance_norm, normalize, cosine_similarity, cdist, pdist,
the issue-17 losses, ctc_loss, and their backwards and ``_with_grad``; and (issue 18)
dropout1d, alpha_dropout, feature_alpha_dropout, rrelu (training), glu, the
cosine_embedding / triplet_margin / multi_margin / multilabel_margin losses,
local_response_norm, bilinear and gumbel_softmax.

The first test walks the op table: every public op (forward, backward, a loss's
``_with_grad``) is called on dask versions of its sample arguments and must return
a lazy result equal to the in-memory one, so an op added without a dask path fails
it. The others check each family against the in-memory result (itself tested
against PyTorch in the family's own test file) for several chunkings: single-element
chunks, chunks that split the reduced axis, one chunk, uneven chunks.
"""

import math
import warnings

import numpy as np
import pytest

import nbops
from nbops._ops import table

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

F32 = np.float32
RNG = np.random.default_rng(1617)

# --------------------------------------------------------------------- helpers
#: Public functions that do not accept dask arrays yet: {name: reason} (each an
#: explicit, strict xfail of the coverage test below); "name-i" for one sample call.
REASON = "added after the dask paths of this file: no dask path yet"
MISSING = {}


def _lazy(result):
    """Whether ``result`` (or a tuple of results) holds a dask array."""
    if isinstance(result, tuple):
        return any(_lazy(r) for r in result)
    return isinstance(result, da.Array)


def _all_lazy(result):
    """Whether every array of ``result`` (a tuple's every non-None item) is a dask array."""
    if isinstance(result, tuple):
        return all(r is None or _all_lazy(r) for r in result)
    return isinstance(result, da.Array)


class _Reads:
    """Counts the source blocks materialized (0 until the caller computes)."""

    def __init__(self):
        self.n = 0

    def __call__(self, block):
        self.n += 1
        return block

    def wrap(self, args):
        return tuple(a.map_blocks(self, dtype=a.dtype, meta=np.empty((0,) * a.ndim, a.dtype))
                     if isinstance(a, da.Array) else a for a in args)


def _assert_same(got, expected, rtol=1e-6, atol=1e-9, path="result"):
    if expected is None or got is None:
        assert got is None and expected is None, path
        return
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same(g, e, rtol, atol, f"{path}[{i}]")
        return
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, (path, got.dtype, expected.dtype)
    assert got.shape == expected.shape, (path, got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=path)


def _chunks_of(shape, name):
    """The coverage test's chunks of an op's first array: its first axis split in two."""
    if name == "ctc_loss":  # (T, N, C): the time and class axes must be one chunk
        return tuple(-1 for _ in shape)
    return tuple(max(1, math.ceil(n / 2)) if i == 0 else -1 for i, n in enumerate(shape))


def _as_dask(args, name):
    """``args`` with the first array, and every array of the same first dimension,
    as dask arrays split along that dimension."""
    first = next(a for a in args if isinstance(a, np.ndarray))
    rows = _chunks_of(first.shape, name)[0] if first.ndim else None
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and (a is first or (
                a.ndim and first.ndim and a.shape[0] == first.shape[0])):
            chunks = (rows,) + (-1,) * (a.ndim - 1) if a.ndim else ()
            if a is first:
                chunks = _chunks_of(a.shape, name)
            a = da.from_array(a, chunks=chunks)
        out.append(a)
    return tuple(out)


def _as_dask_split_all(args, name):
    """As :func:`_as_dask`, but every axis of those arrays in a single-element chunk
    and the rest, ``(1, n - 1)``: the reduced axis split, single-element chunks (for
    ctc_loss only the batch axis: its time and class axes must be one chunk)."""
    first = next(a for a in args if isinstance(a, np.ndarray))
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and (a is first or (
                a.ndim and first.ndim and a.shape[0] == first.shape[0])):
            chunks = tuple((1, n - 1) if n > 1 else (n,) for n in a.shape)
            if name == "ctc_loss" and a is first:
                chunks = (-1, chunks[1], -1) if a.ndim == 3 else -1
            a = da.from_array(a, chunks=chunks)
        out.append(a)
    return tuple(out)


#: Public callables that are not ops on arrays (no dask path to test).
NOT_OPS = {"warmup", "empty_cache", "is_grad_enabled",
           "dropout_mask"}  # takes a shape, not an array: nothing to chunk


def _sample_calls():
    d = table.sample_arrays(np.float64, 96)
    params = []
    for e in table.entries():
        if e.samples is None:
            assert e.name in NOT_OPS, f"{e.name}: no sample call, so no dask test"
            continue
        calls = [(e.function, i, "forward") for i in range(len(e.samples(d)))]
        if e.backward_samples is not None:
            calls += [(f, i, "backward") for i, (f, _, _) in enumerate(e.backward_samples(d))]
        for f, i, kind in calls:
            marks = ()
            key = f.__name__ if f.__name__ in MISSING else f"{f.__name__}-{i}"
            if key in MISSING:
                marks = pytest.mark.xfail(strict=True, reason=MISSING[key])
            params.append(pytest.param(e.name, kind, i, id=f"{f.__name__}-{i}", marks=marks))
    return params


def _call(name, kind, i):
    d = table.sample_arrays(np.float64, 96)  # fresh arrays (running statistics)
    e = table.TABLE[name]
    if kind == "forward":
        args, kwargs = e.samples(d)[i]
        return e.function, args, kwargs
    return e.backward_samples(d)[i]


# --------------------------------------------------------------------- coverage
@pytest.mark.parametrize("name, kind, i", _sample_calls())
def test_every_op_accepts_dask_arrays(name, kind, i):
    """Every public op of the table, on dask versions of its sample arguments: a lazy
    result equal to the in-memory one."""
    f, args, kwargs = _call(name, kind, i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = f(*args, **kwargs)
        f, args, kwargs = _call(name, kind, i)
        reads = _Reads()
        result = f(*reads.wrap(_as_dask(args, name)), **kwargs)
    assert _all_lazy(result), f"{f.__name__} returned {type(result)} for dask inputs"
    assert reads.n == 0, f"{f.__name__} computed its dask input before .compute()"
    _assert_same(dask.compute(result)[0], expected)
    assert reads.n > 0
    # every axis split, single-element chunks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f, args, kwargs = _call(name, kind, i)
        result = f(*_as_dask_split_all(args, name), **kwargs)
    _assert_same(dask.compute(result)[0], expected, rtol=2e-6)


def test_coverage_names_every_public_function():
    """No public function escapes the coverage test above (an op without a sample
    call in the op table would be skipped silently)."""
    covered = {c.values[0] for c in _sample_calls()}
    d = table.sample_arrays(np.float64, 96)
    for e in table.entries():
        if e.backward_samples is not None:
            covered |= {f.__name__ for f, _, _ in e.backward_samples(d)}
        if e.samples is not None:
            covered.add(e.function.__name__)
    public = {n for n in nbops.__all__ if callable(getattr(nbops, n))
              and not isinstance(getattr(nbops, n), type)}
    assert public - covered - NOT_OPS == set()
    assert NOT_OPS <= public


def test_numpy_first_array_with_dask_others_never_computes():
    """The first array decides: with it a NumPy array and another array a dask array,
    each op returns a lazy result (those that accept it) or raises a TypeError naming
    the dask argument, and never computes the dask array implicitly."""
    for p in _sample_calls():
        name, kind, i = p.values
        f, args, kwargs = _call(name, kind, i)
        first = next(a for a in args if isinstance(a, np.ndarray))
        if not any(isinstance(a, np.ndarray) and a.ndim and a is not first for a in args):
            continue
        reads = _Reads()
        args = reads.wrap(tuple(da.from_array(a, chunks=a.shape) if isinstance(a, np.ndarray)
                                and a.ndim and a is not first else a for a in args))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = f(*args, **kwargs)
            except TypeError as exc:
                assert "dask" in str(exc) or "numpy.ndarray" in str(exc), (f.__name__, exc)
            else:
                assert _all_lazy(result), f"{f.__name__}-{i}: {type(result)}"
        assert reads.n == 0, f"{f.__name__}-{i} computed a dask argument"


def test_missing_list_names_public_functions():
    for name in MISSING:  # a function's name, or "name-i" for its i-th sample call
        assert callable(getattr(nbops, name.split("-")[0])), name


# --------------------------------------------------------------------- layer_norm, rms_norm
X3 = RNG.standard_normal((4, 5, 6)).astype(F32) * 3 + 2
G3 = RNG.standard_normal((4, 5, 6)).astype(F32)
W56 = RNG.standard_normal((5, 6)).astype(F32)
B56 = RNG.standard_normal((5, 6)).astype(F32)
# single elements, rows split on both normalized axes, one chunk, uneven
CHUNKINGS_3D = [(1, 1, 1), (2, 2, 4), (4, 5, 6), ((3, 1), (1, 4), (5, 1))]


def _check(result, expected, rtol=2e-5, atol=2e-6):
    assert _lazy(result)
    _assert_same(dask.compute(result)[0], expected, rtol, atol)


@pytest.mark.parametrize("chunks", CHUNKINGS_3D, ids=str)
def test_layer_norm(chunks):
    d = da.from_array(X3, chunks=chunks)
    for ns, w, b in (((5, 6), W56, B56), (6, None, None)):
        expected = nbops.layer_norm(X3, ns, w, b, return_stats=True)
        _check(nbops.layer_norm(d, ns, w, b, return_stats=True), expected)
        _check(nbops.layer_norm(d, ns, w, b), expected[0])
        _, mean, rstd = expected
        gexp = nbops.layer_norm_backward(G3, X3, ns, mean, rstd, w, has_bias=b is not None)
        g = da.from_array(G3, chunks=chunks)
        _check(nbops.layer_norm_backward(g, d, ns, mean, rstd, w, has_bias=b is not None),
               gexp, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunks", CHUNKINGS_3D, ids=str)
def test_rms_norm(chunks):
    d = da.from_array(X3, chunks=chunks)
    g = da.from_array(G3, chunks=chunks)
    for ns, w in (((5, 6), W56), (6, None)):
        expected = nbops.rms_norm(X3, ns, w, return_stats=True)
        _check(nbops.rms_norm(d, ns, w, return_stats=True), expected)
        gexp = nbops.rms_norm_backward(G3, X3, ns, expected[1], w)
        _check(nbops.rms_norm_backward(g, d, ns, expected[1], w), gexp, rtol=1e-4, atol=1e-5)


def test_layer_norm_float64_and_lazy_stats():
    x = X3.astype(np.float64)
    d = da.from_array(x, chunks=(2, 3, 4))
    y, mean, rstd = nbops.layer_norm(d, (5, 6), return_stats=True)
    expected = nbops.layer_norm(x, (5, 6), return_stats=True)
    _assert_same(dask.compute((y, mean, rstd))[0], expected, 1e-12, 1e-12)
    # the lazy statistics feed the backward
    g = da.from_array(G3.astype(np.float64), chunks=(2, 3, 4))
    _assert_same(nbops.layer_norm_backward(g, d, (5, 6), mean, rstd)[0].compute(),
                 nbops.layer_norm_backward(G3.astype(np.float64), x, (5, 6), expected[1],
                                           expected[2])[0], 1e-10, 1e-12)


# --------------------------------------------------------------------- group_norm, instance_norm
XG = RNG.standard_normal((3, 6, 5)).astype(F32) - 1
GG = RNG.standard_normal((3, 6, 5)).astype(F32)
W6 = RNG.standard_normal(6).astype(F32)
B6 = RNG.standard_normal(6).astype(F32)
CHUNKINGS_G = [(1, 1, 1), (2, 4, 2), (3, 6, 5), ((2, 1), (1, 5), (4, 1))]


@pytest.mark.parametrize("chunks", CHUNKINGS_G, ids=str)
def test_group_norm(chunks):
    d = da.from_array(XG, chunks=chunks)
    g = da.from_array(GG, chunks=chunks)
    for groups, w, b in ((3, W6, B6), (2, None, None), (6, W6, None)):
        expected = nbops.group_norm(XG, groups, w, b, return_stats=True)
        _check(nbops.group_norm(d, groups, w, b, return_stats=True), expected)
        gexp = nbops.group_norm_backward(GG, XG, groups, expected[1], expected[2], w,
                                         has_bias=b is not None)
        _check(nbops.group_norm_backward(g, d, groups, expected[1], expected[2], w,
                                         has_bias=b is not None), gexp, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunks", CHUNKINGS_G, ids=str)
def test_instance_norm(chunks):
    d = da.from_array(XG, chunks=chunks)
    rm, rv = np.linspace(-1, 1, 6).astype(F32), np.linspace(1, 2, 6).astype(F32)
    rm_d, rv_d = rm.copy(), rv.copy()
    expected = nbops.instance_norm(XG, rm, rv, W6, B6, return_stats=True)
    lazy = nbops.instance_norm(d, rm_d, rv_d, W6, B6, return_stats=True)
    np.testing.assert_array_equal(rm_d, np.linspace(-1, 1, 6).astype(F32))  # not yet
    _check(lazy, expected)
    np.testing.assert_allclose(rm_d, rm, rtol=1e-6, atol=1e-7)  # updated once, as PyTorch
    np.testing.assert_allclose(rv_d, rv, rtol=1e-6, atol=1e-7)
    g = da.from_array(GG, chunks=chunks)
    gexp = nbops.instance_norm_backward(GG, XG, expected[1], expected[2], W6, has_bias=True)
    _check(nbops.instance_norm_backward(g, d, expected[1], expected[2], W6, has_bias=True),
           gexp, rtol=1e-4, atol=1e-5)
    # the running statistics instead (batch_norm in evaluation)
    _check(nbops.instance_norm(d, rm, rv, W6, B6, use_input_stats=False),
           nbops.instance_norm(XG, rm, rv, W6, B6, use_input_stats=False))


# --------------------------------------------------------------------- normalize, cosine
X2 = RNG.standard_normal((7, 5)).astype(F32)
Y2 = RNG.standard_normal((7, 5)).astype(F32)
G2 = RNG.standard_normal((7, 5)).astype(F32)
CHUNKINGS_2D = [(1, 1), (3, 2), (7, 5), ((2, 5), (1, 4))]


@pytest.mark.parametrize("chunks", CHUNKINGS_2D, ids=str)
@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, 0.5, 3.0])
def test_normalize(chunks, p):
    x = X2.copy()
    x[1, 2] = x[1, 4] = 4.0  # ties of the max (p = inf)
    x[3] = 0.0  # a row below eps
    d, g = da.from_array(x, chunks=chunks), da.from_array(G2, chunks=chunks)
    for axis in (1, 0):
        _check(nbops.normalize(d, p, axis), nbops.normalize(x, p, axis))
        _check(nbops.normalize_backward(g, d, p, axis),
               nbops.normalize_backward(G2, x, p, axis), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunks", CHUNKINGS_2D, ids=str)
def test_cosine_similarity(chunks):
    y = Y2.copy()
    y[2] = 0.0  # a zero vector (its norm clamped to eps)
    a, b = da.from_array(X2, chunks=chunks), da.from_array(y, chunks=chunks)
    for axis in (1, 0):
        expected = nbops.cosine_similarity(X2, y, axis)
        _check(nbops.cosine_similarity(a, b, axis), expected)
        g = RNG.standard_normal(expected.shape).astype(F32)
        gd = da.from_array(g, chunks=chunks[:axis] + chunks[axis + 1:])
        _check(nbops.cosine_similarity_backward(gd, a, b, axis),
               nbops.cosine_similarity_backward(g, X2, y, axis), rtol=1e-4, atol=1e-5)
    # a NumPy row broadcast against every row of x1: its gradient summed back
    _check(nbops.cosine_similarity(a, y[:1]), nbops.cosine_similarity(X2, y[:1]))
    g = RNG.standard_normal(7).astype(F32)
    _check(nbops.cosine_similarity_backward(g, a, y[:1]),
           nbops.cosine_similarity_backward(g, X2, y[:1]), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------- cdist, pdist
XC = RNG.standard_normal((30, 4)).astype(F32)
YC = RNG.standard_normal((27, 4)).astype(F32)


# single rows, rows and features split, one chunk, uneven (pdist: a single-row block
# among larger ones; its graph grows with the square of the number of row blocks)
@pytest.mark.parametrize("chunks, pchunks", [((1, 1), ((1, 2, 27), 4)), ((7, 3), (7, 3)),
                                             ((30, 4), (30, 4)),
                                             (((20, 10), (1, 3)), ((20, 10), (1, 3)))], ids=str)
@pytest.mark.parametrize("p", [2.0, 1.0, math.inf])
def test_cdist_pdist(chunks, pchunks, p):
    a = da.from_array(XC, chunks=chunks)
    b = da.from_array(YC, chunks=(9, 4))
    expected = nbops.cdist(XC, YC, p)
    _check(nbops.cdist(a, b, p), expected, rtol=1e-5, atol=1e-5)
    g = RNG.standard_normal(expected.shape).astype(F32)
    _check(nbops.cdist_backward(da.from_array(g, chunks=(chunks[0], 9)), a, b, p),
           nbops.cdist_backward(g, XC, YC, p), rtol=1e-4, atol=1e-4)
    xp = XC.copy()
    xp[5] = xp[2]  # two equal rows (a zero distance)
    ap = da.from_array(xp, chunks=pchunks)
    expected = nbops.pdist(xp, p)
    _check(nbops.pdist(ap, p), expected, rtol=1e-5, atol=1e-5)
    g = RNG.standard_normal(expected.shape).astype(F32)
    _check(nbops.pdist_backward(da.from_array(g, chunks=100), ap, p),
           nbops.pdist_backward(g, xp, p), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------- losses
XL = RNG.standard_normal((6, 5)).astype(F32)
TL = RNG.standard_normal((6, 5)).astype(F32)
VL = RNG.uniform(0.5, 2.0, (6, 5)).astype(F32)
SIGN = np.where(RNG.standard_normal((6, 5)) > 0, 1.0, -1.0).astype(F32)
LABELS = (RNG.uniform(size=(6, 5)) > 0.5).astype(F32)
CHUNKINGS_L = [(1, 1), (4, 2), (6, 5), ((5, 1), (3, 2))]
REDUCTIONS = ["mean", "sum", "none"]


def _loss_cases():
    """(name, in-memory args, kwargs) of each loss; the first argument is made lazy."""
    cw = RNG.uniform(0.5, 1.5, 5).astype(F32)
    return [
        ("gaussian_nll_loss", (XL, TL, VL), {}),
        ("gaussian_nll_loss", (XL, TL, VL[:, 0]), {"full": True}),  # one variance per row
        ("gaussian_nll_loss", (XL, TL, VL[:1]), {}),  # broadcast along the rows
        ("gaussian_nll_loss", (XL, TL, 0.75), {}),
        ("margin_ranking_loss", (XL, TL, SIGN), {"margin": 0.25}),
        ("multilabel_soft_margin_loss", (XL, LABELS), {}),
        ("multilabel_soft_margin_loss", (XL, LABELS, cw), {}),
        ("poisson_nll_loss", (XL, np.abs(TL)), {}),
        ("poisson_nll_loss", (np.abs(XL), np.abs(TL)), {"log_input": False, "full": True}),
        ("soft_margin_loss", (XL, SIGN), {}),
        ("hinge_embedding_loss", (np.abs(XL), SIGN), {"margin": 0.5}),
    ]


@pytest.mark.parametrize("chunks", CHUNKINGS_L, ids=str)
def test_losses(chunks):
    for name, args, kwargs in _loss_cases():
        forward = getattr(nbops, name)
        backward = getattr(nbops, f"{name}_backward")
        with_grad = getattr(nbops, f"{name}_with_grad")
        lazy = (da.from_array(args[0], chunks=chunks),) + args[1:]
        for reduction in REDUCTIONS:
            kw = dict(kwargs, reduction=reduction)
            expected = forward(*args, **kw)
            _check(forward(*lazy, **kw), expected)
            if reduction == "none":
                g = RNG.standard_normal(np.shape(expected)).astype(F32)
                gd = da.from_array(g, chunks=chunks[:np.ndim(expected)])
            else:
                g = gd = 0.75
            _check(backward(gd, *lazy, **kw), backward(g, *args, **kw), rtol=1e-4, atol=1e-5)
            _check(with_grad(*lazy, **kw), with_grad(*args, **kw), rtol=1e-4, atol=1e-5)


def test_loss_lazy_grad_output_and_chunk_errors():
    d = da.from_array(XL, chunks=(4, 2))
    g = da.from_array(np.array(0.5, F32), chunks=())
    _check(nbops.margin_ranking_loss_backward(g, d, TL, SIGN),
           nbops.margin_ranking_loss_backward(0.5, XL, TL, SIGN))
    with pytest.raises(ValueError, match="rechunk"):
        nbops.margin_ranking_loss(d, da.from_array(TL, chunks=(3, 5)), SIGN)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        nbops.gaussian_nll_loss(d[d[:, 0] > 0], TL, VL)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        nbops.gaussian_nll_loss(d, TL, VL[:2, :2])


# --------------------------------------------------------------------- ctc_loss
def _ctc_case():
    t, n, c = 12, 5, 6
    logits = RNG.standard_normal((t, n, c)).astype(F32)
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    targets = RNG.integers(1, c, (n, 4))
    input_lengths = np.array([12, 10, 12, 3, 11])
    target_lengths = np.array([4, 3, 0, 4, 2])  # sample 3 is impossible (inf)
    return log_probs, targets, input_lengths, target_lengths


@pytest.mark.parametrize("batch_chunks", [1, 2, 5], ids=str)
def test_ctc_loss(batch_chunks):
    lp, targets, il, tl = _ctc_case()
    d = da.from_array(lp, chunks=(-1, batch_chunks, -1))
    flat = np.concatenate([targets[i, :tl[i]] for i in range(len(tl))])
    for tg in (targets, flat):
        for reduction in REDUCTIONS:
            for zi in (False, True):
                kw = {"reduction": reduction, "zero_infinity": zi}
                expected = nbops.ctc_loss(lp, tg, il, tl, **kw)
                _check(nbops.ctc_loss(d, tg, il, tl, **kw), expected)
                g = (RNG.standard_normal(5).astype(F32) if reduction == "none" else 0.5)
                _check(nbops.ctc_loss_backward(g, d, tg, il, tl, **kw),
                       nbops.ctc_loss_backward(g, lp, tg, il, tl, **kw), rtol=1e-4, atol=1e-5)
                _check(nbops.ctc_loss_with_grad(d, tg, il, tl, **kw),
                       nbops.ctc_loss_with_grad(lp, tg, il, tl, **kw), rtol=1e-4, atol=1e-5)
    # unbatched (T, C)
    _check(nbops.ctc_loss(d[:, 0], targets[0], 12, 4),
           nbops.ctc_loss(lp[:, 0], targets[0], 12, 4))
    with pytest.raises(ValueError, match="time axis"):
        nbops.ctc_loss(da.from_array(lp, chunks=(6, 5, 6)), targets, il, tl)
    with pytest.raises(ValueError, match="blank"):
        nbops.ctc_loss(d, targets, il, tl, blank=9)


# --------------------------------------------------------------------- dropouts (stop 18)
DROPOUT_CHUNKS = [(1, 1, 1), (2, 3, 5), ((1, 2), (3, 1), (2, 3)), (3, 4, 5)]


@pytest.mark.parametrize("name", ["dropout1d", "alpha_dropout", "feature_alpha_dropout"])
def test_dropouts_mask_independent_of_chunking(name):
    """dropout1d, alpha_dropout, feature_alpha_dropout (+ backward): the in-memory
    result bit for bit for every chunking (the mask is a function of the seed and the
    element's, or channel's, global index)."""
    forward, backward = getattr(nbops, name), getattr(nbops, f"{name}_backward")
    x = RNG.standard_normal((3, 4, 5)).astype(F32)
    for shape in [(3, 4, 5), (4, 5)]:
        x = x.reshape(-1)[:math.prod(shape)].reshape(shape)
        expected = forward(x, 0.4, True, rng=123)
        grad = backward(x, 0.4, True, rng=123)
        for chunks in DROPOUT_CHUNKS:
            d = da.from_array(x, chunks=chunks[-len(shape):])
            got = forward(d, 0.4, True, rng=123)
            assert isinstance(got, da.Array)
            np.testing.assert_array_equal(got.compute(), expected)
            got = backward(d, 0.4, True, rng=123)
            assert isinstance(got, da.Array)
            np.testing.assert_array_equal(got.compute(), grad)
        d = da.from_array(x, chunks=2)
        assert forward(d, 0.4, False) is d
        np.testing.assert_array_equal(forward(d, 1.0, True).compute(), forward(x, 1.0, True))
        np.testing.assert_array_equal(backward(d, 1.0, True, rng=1).compute(),
                                      backward(x, 1.0, True, rng=1))
    if name == "dropout1d":
        with pytest.raises(ValueError, match="Expected 2D or 3D"):
            forward(da.ones((2, 3, 4, 5)), 0.5, rng=0)
        with pytest.raises(ValueError, match="Expected 2D or 3D"):
            backward(da.ones(3), 0.5, rng=0)


# --------------------------------------------------------------------- rrelu (stop 18)
def test_rrelu_training_slopes_independent_of_chunking():
    """rrelu in training (+ backward): the in-memory slopes, bit for bit, for every
    chunking (each element's slope is drawn at its global flat index)."""
    x = RNG.standard_normal((3, 4, 5)).astype(F32)
    g = RNG.standard_normal(x.shape).astype(F32)
    expected = nbops.rrelu(x, 0.1, 0.4, training=True, rng=5)
    grad = nbops.rrelu_backward(g, x, 0.1, 0.4, training=True, rng=5)
    for chunks in DROPOUT_CHUNKS:
        d, gd = da.from_array(x, chunks=chunks), da.from_array(g, chunks=chunks)
        got = nbops.rrelu(d, 0.1, 0.4, training=True, rng=5)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), expected)
        for args in ((gd, d), (gd, x), (g, d)):
            got = nbops.rrelu_backward(*args, 0.1, 0.4, training=True, rng=5)
            assert isinstance(got, da.Array)
            np.testing.assert_array_equal(got.compute(), grad)
    d = da.from_array(x, chunks=2)
    np.testing.assert_array_equal(nbops.rrelu(d, 0.1, 0.4).compute(), nbops.rrelu(x, 0.1, 0.4))
    assert nbops.rrelu(d[:0], training=True, rng=1).shape == (0, 4, 5)
    with pytest.raises(ValueError, match="Lower bound"):
        nbops.rrelu(d, 0.5, 0.1, training=True)
    with pytest.raises((TypeError, ValueError), match="rng"):
        nbops.rrelu_backward(d, d, training=True, rng=None)
    with pytest.raises(ValueError, match="chunks"):
        nbops.rrelu_backward(d, d.rechunk(3), training=True, rng=1)


# --------------------------------------------------------------------- glu (stop 18)
@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_glu(axis):
    """glu (+ backward): bit for bit the in-memory result, the glu axis in one chunk
    or split (rechunked), NumPy or dask grad_output."""
    x = RNG.standard_normal((4, 6, 8)).astype(F32)
    expected = nbops.glu(x, axis)
    g = RNG.standard_normal(expected.shape).astype(F32)
    grad = nbops.glu_backward(g, x, axis)
    for chunks in [(1, 1, 1), (2, 3, 8), (4, 6, 8), ((1, 3), (5, 1), (3, 5))]:
        d = da.from_array(x, chunks=chunks)
        got = nbops.glu(d, axis)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), expected)
        for gg in (g, da.from_array(g, chunks=1), got * 0 + g):
            got_grad = nbops.glu_backward(gg, d, axis)
            assert isinstance(got_grad, da.Array) and got_grad.shape == x.shape
            np.testing.assert_array_equal(got_grad.compute(), grad)
    np.testing.assert_array_equal(nbops.glu_backward(da.from_array(g), x, axis).compute(),
                                  grad)
    d = da.from_array(x, chunks=2)
    with pytest.raises(ValueError, match="Halving dimension must be even"):
        nbops.glu(d[:, :5], 1)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.glu_backward(da.from_array(x), d, axis)


# --------------------------------------------------------------------- row losses (stop 18)
def _row_loss_calls():
    """(name, arrays, kwargs) of cosine_embedding, triplet_margin (+ with the default
    distance), multi_margin and multilabel_margin losses, batched and unbatched."""
    x = RNG.standard_normal((5, 6)).astype(F32)
    y = RNG.standard_normal((5, 6)).astype(F32)
    z = RNG.standard_normal((5, 6)).astype(F32)
    cls = np.array([0, 3, 5, 1, 2])
    labels = np.array([[0, 2, -1, 0, 0, 0], [5, -1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 0],
                       [-1, 0, 0, 0, 0, 0], [4, 4, -1, 3, 3, 3]])
    w = np.linspace(0.5, 2.0, 6)
    return [
        ("cosine_embedding_loss", (x, y, np.array([1.0, -1, 1, -1, 1])), {"margin": 0.1}),
        ("cosine_embedding_loss", (x, y[:1], np.array([1.0, -1, 1, -1, 1])), {}),
        ("cosine_embedding_loss", (x[0], y[0], np.array(-1.0)), {}),
        ("triplet_margin_loss", (x, y, z), {"margin": 0.5, "swap": True}),
        ("triplet_margin_loss", (x, y[:1], z), {"p": 1}),
        ("triplet_margin_loss", (x[0], y[0], z[0]), {}),
        ("triplet_margin_with_distance_loss", (x, y, z), {"swap": True}),
        ("multi_margin_loss", (x, cls), {"p": 2, "margin": 0.7, "weight": w}),
        ("multi_margin_loss", (x, cls), {}),
        ("multi_margin_loss", (x[0], np.array(3)), {}),
        ("multilabel_margin_loss", (x, labels), {}),
        ("multilabel_margin_loss", (x[0], labels[0]), {}),
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_row_losses(reduction):
    """The loss, backward and _with_grad of the row losses for several chunkings
    (single-element chunks, split rows and features, one chunk): the in-memory
    result within float32 rounding (float64 sums), its dtype and shape."""
    for name, arrays, kw in _row_loss_calls():
        f = getattr(nbops, name)
        backward = getattr(nbops, f"{name}_backward")
        with_grad = getattr(nbops, f"{name}_with_grad")
        kw = dict(kw, reduction=reduction)
        expected = f(*arrays, **kw)
        g = (RNG.standard_normal(np.shape(expected)).astype(F32) if reduction == "none"
             else 0.75)
        grad = backward(g, *arrays, **kw)
        both = with_grad(*arrays, **kw)
        for chunks in (1, 2, -1):
            lazy = tuple(da.from_array(a, chunks=chunks) if a.ndim and a.dtype.kind == "f"
                         else a for a in arrays)
            got = f(*lazy, **kw)
            assert isinstance(got, da.Array), name
            _check(got, expected)
            _assert_same(dask.compute(backward(g, *lazy, **kw))[0], grad, 1e-5, 1e-6)
            _assert_same(dask.compute(with_grad(*lazy, **kw))[0], both, 1e-5, 1e-6)
    x = da.from_array(RNG.standard_normal((4, 6)), chunks=2)
    with pytest.raises(ValueError, match="inconsistent target size"):
        nbops.multi_margin_loss(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        nbops.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(TypeError, match="distance_function"):
        nbops.triplet_margin_with_distance_loss(x, x, x, distance_function=lambda a, b: a)


# --------------------------------------------------------------------- local_response_norm
def test_local_response_norm():
    """local_response_norm (+ backward): bit for bit the in-memory result, the channel
    axis in one chunk or split (rechunked), NumPy or dask grad_output."""
    x = RNG.standard_normal((3, 5, 2, 3)).astype(F32)
    g = RNG.standard_normal(x.shape).astype(F32)
    expected = nbops.local_response_norm(x, 3, 0.5, 0.75, 2.0)
    grad = nbops.local_response_norm_backward(g, x, 3, 0.5, 0.75, 2.0)
    for chunks in [(1, 1, 1, 1), (2, 5, 1, 3), (3, 5, 2, 3), ((1, 2), (4, 1), (1, 1), (2, 1))]:
        d = da.from_array(x, chunks=chunks)
        got = nbops.local_response_norm(d, 3, 0.5, 0.75, 2.0)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), expected)
        for gg, xx in ((g, d), (da.from_array(g, chunks=1), d), (da.from_array(g, chunks=2), x)):
            got = nbops.local_response_norm_backward(gg, xx, 3, 0.5, 0.75, 2.0)
            assert isinstance(got, da.Array)
            np.testing.assert_array_equal(got.compute(), grad)
    with pytest.raises(ValueError, match="Expected 3D or higher"):
        nbops.local_response_norm(da.from_array(x[0, 0]), 2)
    with pytest.raises(ValueError, match="size must be at least 1"):
        nbops.local_response_norm(da.from_array(x), 0)


# --------------------------------------------------------------------- bilinear
def test_bilinear():
    """bilinear (+ backward): the in-memory result (within float32 rounding: the
    weight's and bias's gradients are float64 sums over row blocks) for several
    chunkings, batched (N, L, features) and unbatched."""
    x1 = RNG.standard_normal((3, 2, 5)).astype(F32)
    x2 = RNG.standard_normal((3, 2, 4)).astype(F32)
    w = RNG.standard_normal((6, 5, 4)).astype(F32)
    b = RNG.standard_normal(6).astype(F32)
    g = RNG.standard_normal((3, 2, 6)).astype(F32)
    for bias in (b, None):
        for a1, a2, gg in ((x1, x2, g), (x1[0, 0], x2[0, 0], g[0, 0])):
            expected = nbops.bilinear(a1, a2, w, bias)
            grads = nbops.bilinear_backward(gg, a1, a2, w, bias)
            for chunks in (1, 2, -1):
                d1 = da.from_array(a1, chunks=chunks)
                d2 = da.from_array(a2, chunks=(2,) * (a2.ndim - 1) + (3,))
                _check(nbops.bilinear(d1, d2, w, bias), expected, 1e-5, 1e-5)
                _check(nbops.bilinear(d1, a2, w, bias), expected, 1e-5, 1e-5)
                _check(nbops.bilinear(a1, d2, w, bias), expected, 1e-5, 1e-5)
                got = nbops.bilinear_backward(da.from_array(gg, chunks=chunks), d1, d2, w, bias)
                _assert_same(dask.compute(got)[0], grads, 1e-5, 1e-5)
    with pytest.raises(ValueError, match="input2 size does not match"):
        nbops.bilinear(da.from_array(x1), x1, w)
    with pytest.raises(TypeError, match="weight"):
        nbops.bilinear(da.from_array(x1), x2, da.from_array(w))


# --------------------------------------------------------------------- gumbel_softmax
@pytest.mark.parametrize("axis", [-1, 0])
def test_gumbel_softmax_noise_independent_of_chunking(axis):
    """gumbel_softmax (soft and hard; + backward, with the seed or y_soft): the
    in-memory result for every chunking, bit for bit along the last axis (the noise
    is drawn at each element's global flat index; along another axis the in-memory
    softmax of a block may round differently from the whole array's)."""
    # float32 with blocks summed in another order: a few ulp apart, and a gradient
    # (a difference of terms of order 1) then a few ulp of 1 apart near 0
    same = (np.testing.assert_array_equal if axis == -1 else
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6))
    rng = np.random.default_rng(592)  # its own data, whichever tests ran before
    x = rng.standard_normal((4, 5, 6)).astype(F32)
    g = rng.standard_normal(x.shape).astype(F32)
    soft = nbops.gumbel_softmax(x, 0.7, axis=axis, rng=9)
    hard = nbops.gumbel_softmax(x, 0.7, True, axis=axis, rng=9)
    grad = nbops.gumbel_softmax_backward(g, x, 0.7, axis=axis, rng=9)
    grad_y = nbops.gumbel_softmax_backward(g, x, 0.7, axis=axis, y_soft=soft)
    for chunks in [(1, 1, 1), (3, 2, 5), ((1, 3), (3, 2), (2, 4)), (4, 5, 6)]:
        d = da.from_array(x, chunks=chunks)
        got = nbops.gumbel_softmax(d, 0.7, axis=axis, rng=9)
        assert isinstance(got, da.Array)
        same(got.compute(), soft)
        same(
            nbops.gumbel_softmax(d, 0.7, True, axis=axis, rng=9).compute(), hard)
        for gg, xx in ((da.from_array(g, chunks=chunks), d), (g, d), (da.from_array(g), x)):
            got = nbops.gumbel_softmax_backward(gg, xx, 0.7, axis=axis, rng=9)
            assert isinstance(got, da.Array)
            same(got.compute(), grad)
        got = nbops.gumbel_softmax_backward(g, d, 0.7, axis=axis, y_soft=da.from_array(soft))
        same(got.compute(), grad_y)
    with pytest.raises(ValueError, match="at least one dimension"):
        nbops.gumbel_softmax(da.from_array(np.float32(1.0)), rng=0)
    with pytest.raises((TypeError, ValueError), match="rng"):
        nbops.gumbel_softmax_backward(da.from_array(g), x, rng=None)


# --------------------------------------------------------------------- determinism
def test_same_chunking_is_bit_identical_on_any_scheduler():
    d = da.from_array(X3, chunks=(1, 2, 3))
    results = (nbops.layer_norm(d, (5, 6)), nbops.group_norm(d, 5),
               nbops.normalize(d, 3.0, 2),
               nbops.multilabel_soft_margin_loss(d, (X3 > 0).astype(F32)))
    one = dask.compute(results, scheduler="synchronous")[0]
    many = dask.compute(results, scheduler="threads", num_workers=4)[0]
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
