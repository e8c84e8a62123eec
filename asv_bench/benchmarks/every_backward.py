"""Every backward of the op table at the large size, nbops beside PyTorch CPU: the
backward table of the docs (``python tools/perf_table.py --backward`` runs this
class and writes ``docs/perf_table_backward.csv``).

One case per ``nbops.<op>_backward`` and ``nbops.<loss>_with_grad`` of
:func:`nbops._ops.table.backward_functions`, labelled by that name
(``batch_norm_backward_eval``: batch_norm's in evaluation mode), at the large
size of the forward table (``every_op.py``), with its arguments:

* elementwise ops, the pointwise losses, kl_div, BCE, the dropouts on flat
  arrays, rrelu: 1e7 elements;
* ops over rows (softmax family, cross_entropy, nll_loss, layer_norm, rms_norm,
  group_norm (2 groups), instance_norm (as (N, 2, C / 2)), normalize,
  pairwise_distance, cosine_similarity, glu, gumbel_softmax, the row losses,
  local_response_norm (as (N, C, 1), size 5), dropout1d/2d/3d and
  feature_alpha_dropout (as (N, C, 1, ...))): (65536, 128); cdist: those rows
  against 64; pdist: 512 of them;
* batch_norm: (256, 64, 32, 32), training and evaluation (issue 14's size);
* linear: (65536, 128) x (128, 128) with a bias; bilinear: 4096 rows of (64, 64)
  features to 64 outputs with a bias (``lrn_bilinear.py``'s size);
* ctc_loss: T=200, N=64, C=32, target length 50 (``backward_ctc.py``'s size).

The affine norms (batch_norm, layer_norm, group_norm: weight and bias; rms_norm:
weight) get their parameters' gradients too, as a training step needs them.
``grad_output`` is random (a loss's is 1.0; losses use their default reduction,
'mean', kl_div 'batchmean'); the saved arrays are the forward's (its output for
the activations that save it and the softmax family, its statistics for the
norms, ``output=`` for pdist and cdist); the random ops regenerate their mask or
noise from the seed (``rng=0``).

``library``: ``nbops`` (allocating), ``nbops_out`` (the input's gradient into a
preallocated ``out=``, or every gradient where ``out`` is a tuple of them, as
prelu's and pairwise_distance's; skipped where the function has none), ``torch``: for a
``_backward``, PyTorch's backward alone, ``torch.autograd.grad`` of the
``torch.nn.functional`` op's output over a graph built once in ``setup`` and kept
(``retain_graph=True``; the forward is not timed; autograd runs the op's
``aten`` backward kernel, e.g. ``threshold_backward`` for relu,
``native_batch_norm_backward`` for batch_norm), with respect to the inputs
whose gradients nbops returns; for a ``_with_grad``, PyTorch's forward plus
backward (``autograd.grad`` of a fresh forward).

``$NBOPS_PERF_OPS`` (op names separated by spaces or commas; set by
``python tools/perf_table.py --backward --ops ...``) keeps only the cases of
those ops (``cross_entropy`` keeps ``cross_entropy_backward`` and
``cross_entropy_with_grad``) or of those labels.
"""

import inspect
from collections import namedtuple

import numpy as np

import nbops
from nbops._ops import table

from ._common import F, built_once, needs_torch, perf_dtypes, select_cases, torch
from .every_op import ALL_CASES as FORWARD

#: a case: its op (the table's name), the size it runs at (words, for the
#: table), and ``build(dtype) -> Spec``
Case = namedtuple("Case", "op size build")
#: ``nbops() -> (function, args, kwargs)``; ``torch() -> (forward, arguments,
#: indices of the arguments to differentiate, grad_output or None for a loss)``,
#: ``forward(*arguments)`` taking the arguments with the arrays as tensors
Spec = namedtuple("Spec", "nbops torch")

N = 10_000_000
ROWS = (65536, 128)
BATCH_NORM = (256, 64, 32, 32)
BILINEAR = (4096, 64, 64, 64)  # rows, in1, in2, out
CTC = (200, 64, 32, 50)  # T, N, C, target length

FLAT, ROW, LINEAR = "1e7", "(65536, 128)", "(65536, 128) x (128, 128)"


def _normal(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.dtype(dtype))


def _forward(op, dtype):
    """every_op.py's arguments of ``op`` at the large size: ``(args, kwargs)``."""
    return FORWARD[op][2]("large", dtype)


def _f(name):
    return getattr(F, name, None) or getattr(torch, name)


# ------------------------------------------------------------------- builders
def _elementwise(entry):
    def build(dtype):
        (x, *params), kwargs = _forward(entry.name, dtype)
        g = _normal(x.shape, dtype, 7)
        # prelu's weight is an array: its gradient is returned too
        diff = (0,) + tuple(i + 1 for i, p in enumerate(params) if isinstance(p, np.ndarray))

        def nb():
            saved = entry.function(x, *params, **kwargs) if entry.residual == "output" else x
            return entry.backward_function, (g, saved, *params), kwargs

        return Spec(nb, lambda: (lambda *t: _f(entry.name)(*t, **kwargs), (x, *params), diff, g))
    return build


def _row(entry):
    def build(dtype):
        (x, axis), _ = _forward(entry.name, dtype)
        g = _normal(x.shape, dtype, 7)
        return Spec(lambda: (entry.backward_function, (g, entry.function(x, axis), axis), {}),
                    lambda: (lambda t: _f(entry.name)(t, axis), (x,), (0,), g))
    return build


def _loss(name, with_grad, diff=(0,), forward=None):
    """A loss from every_op.py's arguments (or ``forward(dtype)``'s): its
    ``_backward(1.0, ...)`` or ``_with_grad(...)``; ``diff``: the inputs whose
    gradients nbops returns."""
    def build(dtype):
        args, kwargs = (forward or (lambda d: _forward(name, d)))(dtype)
        entry = table.TABLE[name]
        if with_grad:
            nb = (entry.with_grad_function, args, kwargs)
        else:
            nb = (entry.backward_function, (1.0, *args), kwargs)
        return Spec(lambda: nb,
                    lambda: (lambda *t: _f(name)(*t, **kwargs), args, diff, None))
    return build


def _affine(c, dtype):
    """A weight near one and a bias near zero of ``c`` channels."""
    return 1.0 + 0.1 * _normal(c, dtype, 3), 0.1 * _normal(c, dtype, 4)


def _batch_norm(training):
    def build(dtype):
        x, g = _normal(BATCH_NORM, dtype), _normal(BATCH_NORM, dtype, 7)
        c = BATCH_NORM[1]
        w, b = _affine(c, dtype)

        def nb():
            _, mean, invstd = nbops.batch_norm(x, np.zeros(c, dtype), np.ones(c, dtype), w, b,
                                               training=training, return_stats=True)
            return nbops.batch_norm_backward, (g, x, mean, invstd, w), {"training": training}

        def tf():
            return (lambda *t: F.batch_norm(*t, training=training),
                    (x, np.zeros(c, dtype), np.ones(c, dtype), w, b), (0, 3, 4), g)
        return Spec(nb, tf)
    return build


def _layer_norm(dtype):
    x, g = _normal(ROWS, dtype), _normal(ROWS, dtype, 7)
    w, b = _affine(ROWS[1], dtype)
    shape = (ROWS[1],)

    def nb():
        _, mean, rstd = nbops.layer_norm(x, shape, w, b, return_stats=True)
        return nbops.layer_norm_backward, (g, x, shape, mean, rstd, w), {}
    return Spec(nb, lambda: (lambda *t: F.layer_norm(*t), (x, shape, w, b), (0, 2, 3), g))


def _rms_norm(dtype):
    x, g = _normal(ROWS, dtype), _normal(ROWS, dtype, 7)
    w, _ = _affine(ROWS[1], dtype)
    shape = (ROWS[1],)

    def nb():
        _, rstd = nbops.rms_norm(x, shape, w, return_stats=True)
        return nbops.rms_norm_backward, (g, x, shape, rstd, w), {}
    return Spec(nb, lambda: (lambda *t: F.rms_norm(*t), (x, shape, w), (0, 2), g))


def _group_norm(dtype):
    x, g = _normal(ROWS, dtype), _normal(ROWS, dtype, 7)
    w, b = _affine(ROWS[1], dtype)

    def nb():
        _, mean, rstd = nbops.group_norm(x, 2, w, b, return_stats=True)
        return nbops.group_norm_backward, (g, x, 2, mean, rstd, w), {}
    return Spec(nb, lambda: (lambda *t: F.group_norm(*t), (x, 2, w, b), (0, 2, 3), g))


def _instance_norm(dtype):
    shape = (ROWS[0], 2, ROWS[1] // 2)
    x, g = _normal(shape, dtype), _normal(shape, dtype, 7)

    def nb():
        _, mean, rstd = nbops.instance_norm(x, return_stats=True)
        return nbops.instance_norm_backward, (g, x, mean, rstd), {}
    return Spec(nb, lambda: (lambda t: F.instance_norm(t), (x,), (0,), g))


def _one_input(name, shape, *params, grad_shape=None, saved_output=False, **kwargs):
    """An op of one differentiable input of ``shape``: ``<name>_backward(g, input,
    *params, **kwargs)`` (with ``output=`` the forward's output where
    ``saved_output``) beside ``F.<name>(input, *params, **kwargs)``."""
    def build(dtype):
        x = _normal(shape, dtype)
        forward = getattr(nbops, name)

        def nb():
            out_shape = grad_shape or forward(x, *params, **kwargs).shape
            g = _normal(out_shape, dtype, 7)
            kw = dict(kwargs, output=forward(x, *params, **kwargs)) if saved_output else kwargs
            return getattr(nbops, f"{name}_backward"), (g, x, *params), kw

        def tf():
            y = _f(name)(torch.from_numpy(x), *params, **kwargs)
            return (lambda t: _f(name)(t, *params, **kwargs), (x,), (0,),
                    _normal(tuple(y.shape), dtype, 7))
        return Spec(nb, tf)
    return build


def _two_inputs(name, shape1, shape2, saved_output=False):
    """An op of two differentiable inputs: ``<name>_backward(g, x1, x2)``."""
    def build(dtype):
        x1, x2 = _normal(shape1, dtype), _normal(shape2, dtype, 1)
        forward = getattr(nbops, name)
        y = forward(x1, x2)
        g = _normal(y.shape, dtype, 7)
        kw = {"output": y} if saved_output else {}
        return Spec(lambda: (getattr(nbops, f"{name}_backward"), (g, x1, x2), kw),
                    lambda: (_f(name), (x1, x2), (0, 1), g))
    return build


def _linear(dtype):
    (x, w, b), _ = _forward("linear", dtype)
    g = _normal((x.shape[0], w.shape[0]), dtype, 7)
    return Spec(lambda: (nbops.linear_backward, (g, x, w, b), {}),
                lambda: (F.linear, (x, w, b), (0, 1, 2), g))


def _bilinear(dtype):
    rows, n1, n2, n_out = BILINEAR
    args = (_normal((rows, n1), dtype), _normal((rows, n2), dtype, 1),
            _normal((n_out, n1, n2), dtype, 2), _normal(n_out, dtype, 3))
    g = _normal((rows, n_out), dtype, 7)
    return Spec(lambda: (nbops.bilinear_backward, (g, *args), {}),
                lambda: (F.bilinear, args, (0, 1, 2, 3), g))


def _dropout(name, shape):
    """``<name>_backward(g, 0.5, True, rng=0)`` (the mask regenerated) beside
    PyTorch's backward of ``F.<name>(x, 0.5, training=True)`` (its mask kept)."""
    def build(dtype):
        x, g = _normal(shape, dtype), _normal(shape, dtype, 7)
        return Spec(lambda: (getattr(nbops, f"{name}_backward"), (g, 0.5, True), {"rng": 0}),
                    lambda: (lambda t: _f(name)(t, 0.5, training=True), (x,), (0,), g))
    return build


def _rrelu(dtype):
    x, g = _normal(N, dtype), _normal(N, dtype, 7)
    return Spec(lambda: (nbops.rrelu_backward, (g, x), {"training": True, "rng": 0}),
                lambda: (lambda t: F.rrelu(t, training=True), (x,), (0,), g))


def _gumbel_softmax(dtype):
    x, g = _normal(ROWS, dtype), _normal(ROWS, dtype, 7)
    return Spec(lambda: (nbops.gumbel_softmax_backward, (g, x), {"rng": 0}),
                lambda: (F.gumbel_softmax, (x,), (0,), g))


def _rows(fn):
    """every_op.py-style arguments at (65536, 128): ``fn(shape, dtype) -> (args, kwargs)``."""
    return lambda dtype: fn(ROWS, dtype)


def _triplet_args(shape, dtype):
    return tuple(_normal(shape, dtype, seed) for seed in range(3)), {}


def _ctc_args(dtype):
    n_t, n, n_c, s = CTC
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_t, n, n_c))
    log_probs = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    return (log_probs, rng.integers(1, n_c, (n, s)), (n_t,) * n, (s,) * n), {}


# ------------------------------------------------------------------- the cases
#: a loss's differentiable inputs, where not only the first
_LOSS_INPUTS = {"margin_ranking_loss": (0, 1), "cosine_embedding_loss": (0, 1),
                "triplet_margin_loss": (0, 1, 2), "triplet_margin_with_distance_loss": (0, 1, 2)}
#: losses whose arguments are not every_op.py's: (size, arguments)
_LOSS_ARGS = {"triplet_margin_with_distance_loss": (ROW, _rows(_triplet_args)),
              "ctc_loss": ("T=200, N=64, C=32, S=50", _ctc_args)}
_ROW_LOSSES = {"cross_entropy", "nll_loss", "multilabel_soft_margin_loss",
               "cosine_embedding_loss", "triplet_margin_loss", "multi_margin_loss",
               "multilabel_margin_loss"}

#: label (``<op>_backward`` / ``<op>_with_grad``) -> Case
ALL_CASES = {}
for _e in table.elementwise_entries():
    if _e.backward_function is not None:
        ALL_CASES[f"{_e.name}_backward"] = Case(_e.name, FLAT, _elementwise(_e))
for _e in table.row_op_entries():
    ALL_CASES[f"{_e.name}_backward"] = Case(_e.name, ROW, _row(_e))
for _e in table.entries():
    if _e.with_grad_function is None:
        continue
    _size, _args = _LOSS_ARGS.get(_e.name, (ROW if _e.name in _ROW_LOSSES else FLAT, None))
    for _kind in ("backward", "with_grad"):
        ALL_CASES[f"{_e.name}_{_kind}"] = Case(_e.name, _size, _loss(
            _e.name, _kind == "with_grad", _LOSS_INPUTS.get(_e.name, (0,)), _args))
ALL_CASES.update({
    "batch_norm_backward": Case("batch_norm", "(256, 64, 32, 32)", _batch_norm(True)),
    "batch_norm_backward_eval": Case("batch_norm", "(256, 64, 32, 32)", _batch_norm(False)),
    "layer_norm_backward": Case("layer_norm", ROW, _layer_norm),
    "rms_norm_backward": Case("rms_norm", ROW, _rms_norm),
    "group_norm_backward": Case("group_norm", ROW, _group_norm),
    "instance_norm_backward": Case("instance_norm", "(65536, 2, 64)", _instance_norm),
    "local_response_norm_backward": Case(
        "local_response_norm", "(65536, 128, 1)",
        _one_input("local_response_norm", ROWS + (1,), 5)),
    "normalize_backward": Case("normalize", ROW, _one_input("normalize", ROWS)),
    "glu_backward": Case("glu", ROW, _one_input("glu", ROWS)),
    "pdist_backward": Case("pdist", "(512, 128)",
                           _one_input("pdist", (512, ROWS[1]), saved_output=True)),
    "pairwise_distance_backward": Case("pairwise_distance", ROW,
                                       _two_inputs("pairwise_distance", ROWS, ROWS)),
    "cosine_similarity_backward": Case("cosine_similarity", ROW,
                                       _two_inputs("cosine_similarity", ROWS, ROWS)),
    "cdist_backward": Case("cdist", "(65536, 128) x (64, 128)",
                           _two_inputs("cdist", ROWS, (64, ROWS[1]), saved_output=True)),
    "linear_backward": Case("linear", LINEAR, _linear),
    "bilinear_backward": Case("bilinear", "4096 x (64, 64) -> 64", _bilinear),
    "dropout_backward": Case("dropout", FLAT, _dropout("dropout", (N,))),
    "alpha_dropout_backward": Case("alpha_dropout", FLAT, _dropout("alpha_dropout", (N,))),
    "dropout1d_backward": Case("dropout1d", "(65536, 128, 1)",
                               _dropout("dropout1d", ROWS + (1,))),
    "dropout2d_backward": Case("dropout2d", "(65536, 128, 1, 1)",
                               _dropout("dropout2d", ROWS + (1, 1))),
    "dropout3d_backward": Case("dropout3d", "(65536, 128, 1, 1, 1)",
                               _dropout("dropout3d", ROWS + (1, 1, 1))),
    "feature_alpha_dropout_backward": Case(
        "feature_alpha_dropout", "(65536, 128, 1, 1)",
        _dropout("feature_alpha_dropout", ROWS + (1, 1))),
    "rrelu_backward": Case("rrelu", FLAT, _rrelu),
    "gumbel_softmax_backward": Case("gumbel_softmax", ROW, _gumbel_softmax),
})
#: the cases timed: those of the ops ``$NBOPS_PERF_OPS`` names (all when unset)
CASES = select_cases(ALL_CASES, lambda label, case: case.op)


def _preallocated(function, args, kwargs, with_grad):
    """``out=`` for ``function(*args, **kwargs)``: an array of the input's gradient
    (a ``_with_grad``'s gradient), or, for a backward whose ``out`` is a tuple of
    all its gradients (prelu, pairwise_distance, ...), that tuple; None where
    there is no array to write."""
    result = function(*args, **kwargs)
    if isinstance(result, np.ndarray):
        return np.empty_like(result)
    grad = result[1] if with_grad else result[0]
    if not isinstance(grad, np.ndarray):
        return None
    out = np.empty_like(grad)
    if with_grad:
        return out
    try:
        function(*args, out=out, **kwargs)
        return out
    except TypeError:  # out must be a tuple of every gradient
        return tuple(np.empty_like(a) if isinstance(a, np.ndarray) else None for a in result)


@built_once
class EveryBackward:
    params = (sorted(CASES), perf_dtypes(), ["nbops", "nbops_out", "torch"])
    param_names = ["case", "dtype", "library"]
    timeout = 240
    # the settings of every_op.EveryOp: one process, a few samples each
    processes = 1
    repeat = (3, 9, 2.0)  # samples of about 10 ms each (built_once)
    warmup_time = 0.05

    def setup(self, case, dtype, library):
        spec = CASES[case].build(dtype)
        with_grad = case.endswith("_with_grad")
        if library == "torch":
            needs_torch()
            forward, arguments, diff, grad = spec.torch()
            tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                       for a in arguments]
            for i in diff:
                tensors[i] = tensors[i].detach().requires_grad_()
            leaves = [tensors[i] for i in diff]
            if with_grad:  # the forward plus the backward
                self.fn = lambda: torch.autograd.grad(forward(*tensors), leaves)
            else:  # the backward alone, over a graph kept
                output = forward(*tensors)
                tg = None if grad is None else torch.from_numpy(grad)
                self.fn = lambda: torch.autograd.grad(output, leaves, tg, retain_graph=True)
        else:
            function, args, kwargs = spec.nbops()
            if library == "nbops_out":
                if "out" not in inspect.signature(function).parameters:
                    raise NotImplementedError(f"{case} has no out=")  # asv: skipped
                out = _preallocated(function, args, kwargs, with_grad)
                if out is None:
                    raise NotImplementedError(f"{case} returns no array")  # asv: skipped
                self.fn = lambda: function(*args, out=out, **kwargs)
            else:
                self.fn = lambda: function(*args, **kwargs)

    def time_backward(self, case, dtype, library):
        self.fn()
