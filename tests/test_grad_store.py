"""The gradient store (nbops._grad) and grad mode (nbops.no_grad)."""

import gc
import threading

import numpy as np
import pytest

import nbops
from nbops import _grad


def test_grad_mode_context_decorator_and_threads():
    assert nbops.is_grad_enabled()
    with nbops.no_grad():
        assert not nbops.is_grad_enabled()
        with nbops.enable_grad():
            assert nbops.is_grad_enabled()
        assert not nbops.is_grad_enabled()
        seen = []
        t = threading.Thread(target=lambda: seen.append(nbops.is_grad_enabled()))
        t.start()
        t.join()
        assert seen == [True]  # per thread, as torch
    assert nbops.is_grad_enabled()

    @nbops.no_grad()
    def f():
        return nbops.is_grad_enabled()
    assert f() is False and nbops.is_grad_enabled()

    nbops.set_grad_enabled(False)
    assert not nbops.is_grad_enabled()
    nbops.set_grad_enabled(True)
    with nbops.set_grad_enabled(False):
        assert not nbops.is_grad_enabled()
    assert nbops.is_grad_enabled()

    @nbops.set_grad_enabled(False)
    def g():
        return nbops.is_grad_enabled()
    assert nbops.is_grad_enabled() and g() is False and nbops.is_grad_enabled()


def test_store_set_get_accumulate_and_clear():
    p = np.zeros(3, np.float32)
    assert _grad.get_grad(p) is None
    g = np.array([1, 2, 3], np.float32)
    _grad.accumulate_grad(p, g)
    stored = _grad.get_grad(p)
    assert stored is not g and np.array_equal(stored, g)  # copied: g stays the caller's
    _grad.accumulate_grad(p, g)
    assert stored is _grad.get_grad(p)  # += in place
    np.testing.assert_array_equal(stored, 2 * g)
    assert np.array_equal(g, [1, 2, 3])
    fresh = np.ones(3, np.float32)
    q = np.zeros(3, np.float32)
    _grad.accumulate_grad(q, fresh, owned=True)
    assert _grad.get_grad(q) is fresh
    _grad.set_grad(p, None)
    assert _grad.get_grad(p) is None
    assert _grad.get_grad(q) is fresh  # one parameter's gradient only


def test_store_rejects_bad_gradients():
    p = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        _grad.set_grad(p, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        _grad.set_grad(p, np.zeros((2, 3), np.float64))
    with pytest.raises(TypeError, match="param"):
        _grad.set_grad([1.0], np.zeros(1))
    assert _grad.get_grad(p) is None


def test_store_forgets_a_freed_parameter():
    p = np.zeros(4)
    _grad.set_grad(p, np.ones(4))
    before = len(_grad._store)
    del p
    gc.collect()
    assert len(_grad._store) == before - 1
    q = np.zeros(4)  # may reuse the freed id: must not see the old gradient
    assert _grad.get_grad(q) is None
