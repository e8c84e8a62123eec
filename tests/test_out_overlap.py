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
