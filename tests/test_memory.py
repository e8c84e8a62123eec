"""The cache of large output blocks (nbops._memory): reuse only of freed blocks."""

import threading

import numpy as np
import pytest

import nbops
from nbops import _config, _memory

BIG = _memory.MIN_BYTES // 8 + 1000  # float64 elements: just above the threshold


@pytest.fixture(autouse=True)
def _empty_cache():
    nbops.empty_cache()
    yield
    nbops.empty_cache()


def _address(a):
    return a.__array_interface__["data"][0]


def test_a_freed_block_is_reused_and_a_live_one_is_not():
    a = _memory.empty((BIG,), np.float64)
    first = _address(a)
    b = _memory.empty((BIG,), np.float64)  # a is alive: another block
    assert _address(b) != first
    del a
    assert _memory.idle_bytes() == BIG * 8
    c = _memory.empty((BIG // 2, 2), np.float64)  # same byte size, other shape
    assert _address(c) == first and _memory.idle_bytes() == 0
    assert c.shape == (BIG // 2, 2) and c.dtype == np.float64
    assert c.flags.c_contiguous and c.flags.writeable and not c.flags.owndata
    del b, c
    assert _memory.idle_bytes() == 2 * BIG * 8


@pytest.mark.parametrize("make_view", [
    lambda a: a[::3],
    lambda a: a.reshape(-1, 2).T,
    lambda a: a.view(np.int32),
    lambda a: np.asarray(memoryview(a)),
    lambda a: memoryview(a),
    lambda a: np.frombuffer(a, np.uint8),
])
def test_a_block_stays_busy_while_any_view_lives(make_view):
    a = _memory.empty((BIG,), np.float64)
    a[:] = 7.0
    first = _address(a)
    view = make_view(a)
    del a
    assert _memory.idle_bytes() == 0
    b = _memory.empty((BIG,), np.float64)  # must not be the viewed block
    assert _address(b) != first
    b[:] = -1.0
    assert np.all(np.asarray(view).view(np.float64)[:10] == 7.0) or isinstance(view, memoryview)
    if isinstance(view, memoryview):
        assert np.all(np.frombuffer(view, np.float64) == 7.0)
        view.release()
    del view
    assert _memory.idle_bytes() == BIG * 8


def test_fortran_order_and_empty_like():
    f = _memory.empty((1000, BIG // 1000 + 1), np.float32, order="F")
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    like = _memory.empty_like(f)
    assert like.flags.f_contiguous and like.shape == f.shape and like.dtype == np.float32
    small = _memory.empty_like(np.zeros((3, 4), np.float32, order="F"))
    assert small.flags.f_contiguous and small.flags.owndata
    strided = np.zeros((BIG, 2))[:, 0]
    assert _memory.empty_like(strided).shape == (BIG,)


def test_small_arrays_are_plain(monkeypatch):
    a = _memory.empty((10, 10), np.float32)
    assert a.flags.owndata and a.base is None


def test_the_idle_blocks_are_bounded(monkeypatch):
    monkeypatch.setattr(_config, "OUTPUT_CACHE_BYTES", 3 * BIG * 8)
    arrays = [_memory.empty((BIG,), np.float64) for _ in range(5)]
    addresses = [_address(a) for a in arrays]
    del arrays
    assert _memory.idle_bytes() == 3 * BIG * 8  # the two oldest were dropped
    again = _memory.empty((BIG,), np.float64)
    assert _address(again) in addresses
    assert nbops.empty_cache() == 2 * BIG * 8 and _memory.idle_bytes() == 0


def test_the_cache_turned_off(monkeypatch):
    monkeypatch.setattr(_config, "OUTPUT_CACHE_BYTES", 0)
    a = _memory.empty((BIG,), np.float64)
    assert a.flags.owndata
    del a
    assert _memory.idle_bytes() == 0


def test_op_results_from_the_cache_are_right_and_independent():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(BIG)
    y1 = nbops.relu(x)
    np.testing.assert_array_equal(y1, np.maximum(x, 0.0))
    y2 = nbops.sigmoid(x)  # y1 alive: its own block
    assert not np.shares_memory(y1, y2)
    np.testing.assert_allclose(y2, 1.0 / (1.0 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_array_equal(y1, np.maximum(x, 0.0))  # untouched
    first = _address(y1)
    del y1
    y3 = nbops.tanh(x)  # reuses the freed block, with every element written
    assert _address(y3) == first
    np.testing.assert_allclose(y3, np.tanh(x), rtol=1e-14)
    rows = x[:BIG - BIG % 1000].reshape(-1, 1000)
    s = nbops.softmax(rows, axis=1)
    ref = np.exp(rows)
    np.testing.assert_allclose(s, ref / ref.sum(1, keepdims=True), rtol=1e-13)


def test_threads_never_share_a_block():
    errors = []

    def work(value):
        try:
            for _ in range(30):
                a = _memory.empty((BIG,), np.float64)
                a.fill(value)
                if not (a[0] == value and a[-1] == value and a[BIG // 2] == value):
                    errors.append(value)
                del a
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _child_sum(n):
    a = _memory.empty((n,), np.float64)
    a.fill(2.0)
    return float(a.sum())


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_allocates_from_the_cache():
    import multiprocessing

    held = _memory.empty((BIG,), np.float64)
    del held  # an idle block inherited by the child
    with _memory._lock:  # held by this thread at the fork: the child has its own lock
        ctx = multiprocessing.get_context("fork")
        pool = ctx.Pool(1)
    try:
        assert pool.apply_async(_child_sum, (BIG,)).get(timeout=60) == 2.0 * BIG
    finally:
        pool.terminate()
        pool.join()
