"""Empty inputs (no rows, no elements) of the distance ops and the issue-17 losses,
forward and backward, against PyTorch: the result's shape, dtype and value (a
mean over nothing is NaN, a sum 0), and gradients of the inputs' shapes.

The older ops have their own empty-input tests beside their other tests
(test_losses.py, test_distance.py, test_softmax.py, test_layer_norm.py, ...).
"""

import numpy as np
import pytest

import nbops

torch = pytest.importorskip("torch")


def e(*shape):
    return np.zeros(shape, np.float32)


#: name -> (float arguments, keyword arguments); every case has an empty result
#: or reduces over nothing.
CASES = {
    "cosine_similarity": ((e(0, 4), e(0, 4)), {}),
    "normalize": ((e(0, 4),), {}),
    "pdist": ((e(0, 4),), {}),
    "pdist-one-row": ((e(1, 4),), {}),
    "cdist": ((e(0, 4), e(3, 4)), {}),
    "cdist-no-columns": ((e(2, 4), e(0, 4)), {}),
    "soft_margin_loss": ((e(0), e(0)), {}),
    "hinge_embedding_loss": ((e(0), e(0)), {}),
    "poisson_nll_loss": ((e(0), e(0)), {}),
    "gaussian_nll_loss": ((e(0), e(0), e(0) + 1), {}),
    "margin_ranking_loss": ((e(0), e(0), e(0)), {}),
    "multilabel_soft_margin_loss": ((e(0, 3), e(0, 3)), {}),
}
LOSSES = [n for n in CASES if n.endswith("_loss")]


def _torch_fn(name):
    return getattr(torch.nn.functional, name, None) or getattr(torch, name)


def _cases():
    out = []
    for label, (args, kw) in CASES.items():
        name = label.split("-")[0]
        for reduction in (["none", "sum", "mean"] if label in LOSSES else [None]):
            kwargs = dict(kw) if reduction is None else {**kw, "reduction": reduction}
            out.append(pytest.param(name, args, kwargs, id=f"{label}-{reduction}"))
    return out


@pytest.mark.parametrize("name,args,kwargs", _cases())
def test_forward_and_backward_like_torch(name, args, kwargs):
    # the arguments both libraries differentiate: a loss's input (and
    # margin_ranking_loss's second input), every argument of the distances
    n_grad = {"margin_ranking_loss": 2}.get(name, 1 if name in LOSSES else len(args))
    tensors = [torch.from_numpy(a.copy()).requires_grad_(i < n_grad)
               for i, a in enumerate(args)]
    expected = _torch_fn(name)(*tensors, **kwargs)
    got = getattr(nbops, name)(*args, **kwargs)
    assert np.shape(got) == tuple(expected.shape)
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(got), expected.detach().numpy())

    g = np.ones(np.shape(got), np.float32)
    if expected.numel():
        expected.backward(torch.from_numpy(g))
        expected_grads = [np.zeros_like(a) if t.grad is None else t.grad.numpy()
                          for a, t in zip(args, tensors, strict=True)]
    else:  # nothing depends on the inputs (torch 2.13's pdist backward crashes here)
        expected_grads = [np.zeros_like(a) for a in args]
    grads = getattr(nbops, f"{name}_backward")(g if g.ndim else np.float32(1), *args, **kwargs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert any(gr is not None for gr in grads)
    for gr, want in zip(grads[:n_grad], expected_grads, strict=False):
        if gr is None:
            continue
        assert gr.shape == want.shape and gr.dtype == np.float32
        np.testing.assert_array_equal(gr, want)

    if name in LOSSES and kwargs.get("reduction") != "none":
        with_grad = getattr(nbops, f"{name}_with_grad")(*args, **kwargs)
        np.testing.assert_array_equal(np.asarray(with_grad[0]), expected.detach().numpy())
