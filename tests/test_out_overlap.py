"""``out=`` that overlaps an input only in part (a shifted view of the same
buffer): the result is what a separate ``out`` gets, as NumPy's ufuncs do;
``out=`` the input itself is written in place."""

import numpy as np
import pytest

import nbops


def _shifted(rng, shape, shift=3):
    n = int(np.prod(shape))
    buf = rng.standard_normal(n + shift)
    return buf[:n].reshape(shape), buf[shift:n + shift].reshape(shape)


CASES = {
    "batch_norm_eval": lambda x, out: nbops.batch_norm(
        x, np.full(x.shape[1], 0.5), np.full(x.shape[1], 2.0), out=out),
    "batch_norm_train": lambda x, out: nbops.batch_norm(
        x, np.zeros(x.shape[1]), np.ones(x.shape[1]), training=True, out=out),
    "batch_norm_train_no_stats": lambda x, out: nbops.batch_norm(
        x, None, None, training=True, out=out),
    "normalize": lambda x, out: nbops.normalize(x, out=out),
    "normalize_p3": lambda x, out: nbops.normalize(x, p=3.0, out=out),
    "normalize_backward_grad": lambda x, out: nbops.normalize_backward(
        x, np.linspace(-1, 1, x.size).reshape(x.shape), out=out),
    "normalize_backward_input": lambda x, out: nbops.normalize_backward(
        np.linspace(-1, 1, x.size).reshape(x.shape), x, out=out),
    "relu": lambda x, out: nbops.relu(x, out=out),
    "softmax": lambda x, out: nbops.softmax(x, dim=-1, out=out),
    "layer_norm": lambda x, out: nbops.layer_norm(x, x.shape[-1:], out=out),
}


@pytest.mark.parametrize("shape", [(4, 40), (600, 40)])
@pytest.mark.parametrize("name", sorted(CASES))
def test_partly_overlapping_out(name, shape):
    rng = np.random.default_rng(7)
    x, out = _shifted(rng, shape)
    expected = CASES[name](x.copy(), None)
    got = CASES[name](x, out)
    assert got is out
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["batch_norm_eval", "batch_norm_train", "normalize"])
def test_out_is_the_input(name):
    x = np.random.default_rng(8).standard_normal((600, 40))
    expected = CASES[name](x.copy(), None)
    got = CASES[name](x, x)
    assert got is x
    np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------ every op
# Every public function with ``out=`` (forwards, ``*_backward``, ``*_with_grad``),
# on the op table's sample calls (the kernels the warm-up and the other table
# tests compile, float64 only): ``out`` a shifted view of the buffer that holds
# each float array argument in turn, ahead of it, behind it and (a smaller
# ``out``) near its end; the result must be, bit for bit, the one of the same
# call on separate arrays. Serial, and parallel kernels from 1000 elements.

def _takes_out(function):
    import inspect

    return "out" in inspect.signature(function).parameters


def _table_calls(d):
    from nbops._ops import table

    calls = []
    for e in table.entries():
        if e.samples is not None and _takes_out(e.function):
            calls += [(e.function, args, kwargs) for args, kwargs in e.samples(d)]
        if e.backward_samples is not None:
            calls += [c for c in e.backward_samples(d) if _takes_out(c[0])]
    # calls the samples lack: batch_norm reading weight and bias (the lean and the
    # general path) and updating running statistics
    calls += [(nbops.batch_norm, (d.x2, d.ch * 0, d.ch.copy(), d.ch, d.ch), {}),
              (nbops.batch_norm, (d.x2, d.ch * 0, d.ch.copy(), d.ch, d.ch),
               {"training": True}),
              (nbops.batch_norm, (d.x2.T.copy().T, None, None, d.ch, d.ch),
               {"training": True})]
    return calls


def _copies(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _out_slots(call, expected):
    """Where ``out`` goes: ``[(k, None)]`` for a result array or the ``k``-th of a
    tuple that ``out`` is written into; for a tuple ``out`` (prelu_backward's
    pair), ``[(k, n)]`` for each of its ``n`` arrays in turn."""
    function, args, kwargs = call
    if not isinstance(expected, tuple):
        return [(None, None)]
    for k, e in enumerate(expected):
        if isinstance(e, np.ndarray) and e.ndim:
            trial = np.empty_like(e)
            try:
                got = function(*_copies(args), out=trial, **kwargs)
            except TypeError:  # out= is a tuple of arrays
                return [(j, len(expected)) for j in range(len(expected))]
            if got[k] is trial:
                return [(k, None)]
    raise AssertionError(f"{function.__name__}: no result is out")


def _overlap_case(call, expected, slot, i, where):
    """The arguments with argument ``i`` in a buffer and ``out`` a view of that
    buffer shifted by a few elements: "ahead" (after the argument's start),
    "behind" (before it), "end" (a smaller ``out`` a few elements before the
    argument's end)."""
    function, args, kwargs = call
    k, n = slot
    result = expected if k is None else expected[k]
    a = args[i]
    shift = max(1, min(3, a.size - 1, result.size - 1))
    buf = np.zeros(max(a.size, result.size) + shift)
    start_a, start_out = {"ahead": (0, shift), "behind": (shift, 0),
                          "end": (0, a.size - result.size - shift)}[where]
    x = buf[start_a:start_a + a.size].reshape(a.shape)
    x[...] = a
    out = buf[start_out:start_out + result.size].reshape(result.shape)
    got_args = _copies(args)
    got_args[i] = x
    if n is not None:
        out = tuple(out if j == k else np.empty_like(expected[j]) for j in range(n))
    return got_args, out


def _check(call, expected, slot, got, out):
    """What is wrong with ``got`` (None when nothing)."""
    k, n = slot
    if k is None:
        if got is not out:
            return "did not return out"
        return None if np.array_equal(got, expected, equal_nan=True) else "wrong values"
    if n is None and got[k] is not out:
        return "did not return out"
    if n is not None and any(g is not o for g, o in zip(got, out, strict=True)):
        return "did not return out"
    for g, e in zip(got, expected, strict=True):
        if (g is None) != (e is None) or (e is not None and not np.array_equal(
                g, e, equal_nan=True)):
            return "wrong values"
    return None


def _placements(a, result):
    return ("ahead", "behind", "end") if result.size + 6 < a.size else ("ahead", "behind")


def _float_positions(args, updated):
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    return [i for i, u in zip(arrays, updated, strict=True)
            if args[i].dtype == np.float64 and args[i].size > 1 and not u]


@pytest.mark.parametrize("size", ["small", "parallel"])
def test_every_op_partly_overlapping_out(size, monkeypatch):
    from nbops import _config
    from nbops._ops import table

    if size == "parallel":  # parallel kernels (and the large paths) from 1000 elements
        monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1000)
    d = table.sample_arrays(np.float64, 64 if size == "small" else 1 << 14)
    failures = []
    checked = set()
    for call in _table_calls(d):
        function, args, kwargs = call
        ref_args = _copies(args)
        expected = function(*ref_args, **kwargs)
        # (an array the op updates in place, a running statistic, is an output too)
        updated = [not np.array_equal(r, a, equal_nan=True)
                   for r, a in zip(ref_args, args, strict=True) if isinstance(a, np.ndarray)]
        for slot in _out_slots(call, expected):
            result = expected if slot[0] is None else expected[slot[0]]
            if not isinstance(result, np.ndarray) or result.dtype != np.float64:
                continue
            checked.add(function.__name__)
            for i in _float_positions(args, updated):
                for where in _placements(args[i], result):
                    got_args, out = _overlap_case(call, expected, slot, i, where)
                    got = function(*got_args, out=out, **kwargs)
                    wrong = _check(call, expected, slot, got, out)
                    if wrong:
                        failures.append(f"{function.__name__} arg {i} out[{slot[0]}] "
                                        f"{where}: {wrong}")
    # every function with out= was reached by some call
    wanted = {name for name in nbops.__all__
              if callable(getattr(nbops, name)) and name not in ("warmup", "empty_cache")
              and _takes_out(getattr(nbops, name))}
    assert wanted <= checked, sorted(wanted - checked)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["batch_norm", "instance_norm"])
def test_out_overlapping_updated_running_stats_raises(name):
    x = np.linspace(-1, 1, 64).reshape(4, 4, 4)
    buf = np.zeros(80)
    running_mean, out = buf[:4], buf[2:66].reshape(x.shape)
    function = getattr(nbops, name)
    kwargs = {"training": True} if name == "batch_norm" else {}
    with pytest.raises(ValueError, match="out overlaps running_mean"):
        function(x, running_mean, np.ones(4), out=out, **kwargs)
    assert not buf.any()  # nothing was written
