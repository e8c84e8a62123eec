"""Every op of the op table at three sizes, nbops beside PyTorch CPU: the
performance table of the docs (``python tools/perf_table.py`` runs this class
and writes ``docs/perf_table.csv``).

Sizes, as the speed targets name them:

* elementwise ops, the pointwise losses, kl_div, BCE, dropout and alpha_dropout: 1000, 1e5 and
  1e7 elements;
* ops over rows (softmax family, cross_entropy, nll_loss, batch_norm,
  layer_norm, rms_norm, group_norm (2 groups), instance_norm (as (N, 2, C / 2)),
  pairwise_distance, cosine_similarity, normalize, multilabel_soft_margin_loss,
  the embedding and class-margin losses, local_response_norm (as (N, C, 1), size 5),
  dropout1d/2d/3d, glu along the last axis): (64, 10), (4096, 1000) and (65536, 128);
  cdist: each of those rows against 64 rows; pdist: at most 512 of those rows;
* linear: (64, 128) x (128, 64), (1024, 256) x (256, 256), (65536, 128) x (128, 128),
  with a bias.

``library``: ``nbops`` (allocating), ``nbops_out`` (into a preallocated
``out=``; skipped for ops without ``out=``), ``torch`` (``torch.nn.functional``
on ``torch.from_numpy`` tensors, same arguments; skipped where PyTorch has no
such op). Losses use their default reduction ('mean'; kl_div 'batchmean').

``$NBOPS_PERF_OPS`` (op names separated by spaces or commas; set by
``python tools/perf_table.py --ops ...``) keeps only the cases of those ops
(named by their label or by their op: ``batch_norm`` keeps ``batch_norm`` and
``batch_norm_eval``), so that asv's parameter lists hold only them.
"""

import inspect

import numpy as np

import nbops
from nbops._ops import table

from ._common import F, built_once, needs_torch, perf_dtypes, random_array, select_cases, torch

SIZES = {"small": (1000, (64, 10), ((64, 128), 64)),
         "medium": (100_000, (4096, 1000), ((1024, 256), 256)),
         "large": (10_000_000, (65536, 128), ((65536, 128), 128))}


def _elementwise(entry):
    def build(size, dtype):
        n = SIZES[size][0]
        x = random_array(n, dtype)
        args = tuple(np.full(1, p.example, dtype) if p.kind == "array" else p.example
                     for p in entry.params if p.required)
        return (x,) + args, {}
    return build


def _rows(fn):
    def build(size, dtype):
        shape = SIZES[size][1]
        return fn(shape, dtype)
    return build


def _flat(fn):
    def build(size, dtype):
        return fn(SIZES[size][0], dtype)
    return build


def _labels(shape):
    return np.random.default_rng(1).integers(0, shape[1], shape[0]).astype(np.int64)


def _probabilities(n, dtype, seed):
    return np.random.default_rng(seed).uniform(0.02, 0.98, n).astype(dtype)


def _linear(size, dtype):
    (rows, n_in), n_out = SIZES[size][2]
    x = random_array(rows * n_in, dtype).reshape(rows, n_in)
    w = random_array(n_out * n_in, dtype, 1).reshape(n_out, n_in)
    return (x, w, random_array(n_out, dtype, 2)), {}


def _batch_norm(training):
    def build(shape, dtype):
        x = random_array(shape[0] * shape[1], dtype).reshape(shape)
        rm, rv = np.zeros(shape[1], dtype), np.ones(shape[1], dtype)
        return (x, rm, rv, np.ones(shape[1], dtype), np.zeros(shape[1], dtype)), \
            {"training": training}
    return build


def _pair(n, dtype):
    return (random_array(n, dtype), random_array(n, dtype, 1)), {}


#: op label -> (nbops function, torch function name, argument builder)
CASES = {e.name: (e.function, e.name, _elementwise(e)) for e in table.elementwise_entries()}
for _name in ("softmax", "log_softmax", "softmin"):
    CASES[_name] = (getattr(nbops, _name), _name, _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape), -1),
                              {})))
for _entry in table.pointwise_loss_entries():
    CASES[_entry.name] = (_entry.function, _entry.name, _flat(_pair))
CASES.update({
    "kl_div": (nbops.kl_div, "kl_div", _flat(
        lambda n, dtype: ((np.log(_probabilities(n, dtype, 0)), _probabilities(n, dtype, 1)),
                          {"reduction": "batchmean"}))),
    "binary_cross_entropy": (nbops.binary_cross_entropy, "binary_cross_entropy", _flat(
        lambda n, dtype: ((_probabilities(n, dtype, 0), _probabilities(n, dtype, 1)), {}))),
    "binary_cross_entropy_with_logits": (
        nbops.binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits", _flat(
            lambda n, dtype: ((random_array(n, dtype), _probabilities(n, dtype, 1)), {}))),
    "cross_entropy": (nbops.cross_entropy, "cross_entropy", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               _labels(shape)), {}))),
    "nll_loss": (nbops.nll_loss, "nll_loss", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               _labels(shape)), {}))),
    "batch_norm": (nbops.batch_norm, "batch_norm", _rows(_batch_norm(True))),
    "batch_norm_eval": (nbops.batch_norm, "batch_norm", _rows(_batch_norm(False))),
    "layer_norm": (nbops.layer_norm, "layer_norm", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               (shape[1],)), {}))),
    "rms_norm": (nbops.rms_norm, "rms_norm", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               (shape[1],)), {}))),
    "linear": (nbops.linear, "linear", _linear),
    "pairwise_distance": (nbops.pairwise_distance, "pairwise_distance", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               random_array(shape[0] * shape[1], dtype, 1).reshape(shape)),
                              {}))),
    "dropout": (nbops.dropout, "dropout", _flat(
        lambda n, dtype: ((random_array(n, dtype), 0.5), {"rng": 0}))),
    "dropout2d": (nbops.dropout2d, "dropout2d", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype)
                               .reshape(shape[0], shape[1], 1, 1), 0.5), {"rng": 0}))),
    "dropout3d": (nbops.dropout3d, "dropout3d", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype)
                               .reshape(shape[0], shape[1], 1, 1, 1), 0.5), {"rng": 0}))),
    "group_norm": (nbops.group_norm, "group_norm", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape), 2), {}))),
    "instance_norm": (nbops.instance_norm, "instance_norm", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype)
                               .reshape(shape[0], 2, shape[1] // 2),), {}))),
    "cosine_similarity": (nbops.cosine_similarity, "cosine_similarity", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               random_array(shape[0] * shape[1], dtype, 1).reshape(shape)),
                              {}))),
    "normalize": (nbops.normalize, "normalize", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),), {}))),
    # cdist: every row against 64 others; pdist: at most 512 rows (512 * 511 / 2 pairs)
    "cdist": (nbops.cdist, "cdist", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               random_array(64 * shape[1], dtype, 1).reshape(64, shape[1])),
                              {}))),
    "pdist": (nbops.pdist, "pdist", _rows(
        lambda shape, dtype: ((random_array(min(shape[0], 512) * shape[1], dtype)
                               .reshape(min(shape[0], 512), shape[1]),), {}))),
    "poisson_nll_loss": (nbops.poisson_nll_loss, "poisson_nll_loss", _flat(
        lambda n, dtype: ((random_array(n, dtype),
                           np.random.default_rng(1).poisson(2.0, n).astype(dtype)), {}))),
    "gaussian_nll_loss": (nbops.gaussian_nll_loss, "gaussian_nll_loss", _flat(
        lambda n, dtype: ((random_array(n, dtype), random_array(n, dtype, 1),
                           _probabilities(n, dtype, 2)), {}))),
    "margin_ranking_loss": (nbops.margin_ranking_loss, "margin_ranking_loss", _flat(
        lambda n, dtype: ((random_array(n, dtype), random_array(n, dtype, 1),
                           np.sign(random_array(n, dtype, 2))), {}))),
    "multilabel_soft_margin_loss": (
        nbops.multilabel_soft_margin_loss, "multilabel_soft_margin_loss", _rows(
            lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                                   (_probabilities(shape[0] * shape[1], dtype, 1) > 0.5)
                                   .astype(dtype).reshape(shape)), {}))),
    "cosine_embedding_loss": (nbops.cosine_embedding_loss, "cosine_embedding_loss", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               random_array(shape[0] * shape[1], dtype, 1).reshape(shape),
                               np.sign(random_array(shape[0], dtype, 2))), {}))),
    "triplet_margin_loss": (nbops.triplet_margin_loss, "triplet_margin_loss", _rows(
        lambda shape, dtype: (tuple(random_array(shape[0] * shape[1], dtype, seed).reshape(shape)
                                    for seed in range(3)), {}))),
    "multi_margin_loss": (nbops.multi_margin_loss, "multi_margin_loss", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               _labels(shape)), {}))),
    "multilabel_margin_loss": (nbops.multilabel_margin_loss, "multilabel_margin_loss", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape),
                               np.where(np.arange(shape[1]) < 2, _labels(shape)[:, None],
                                        -1)), {}))),
    "local_response_norm": (nbops.local_response_norm, "local_response_norm", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype)
                               .reshape(shape[0], shape[1], 1), 5), {}))),
    "alpha_dropout": (nbops.alpha_dropout, "alpha_dropout", _flat(
        lambda n, dtype: ((random_array(n, dtype), 0.5, True), {"rng": 0}))),
    "dropout1d": (nbops.dropout1d, "dropout1d", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype)
                               .reshape(shape[0], shape[1], 1), 0.5), {"rng": 0}))),
    "glu": (nbops.glu, "glu", _rows(
        lambda shape, dtype: ((random_array(shape[0] * shape[1], dtype).reshape(shape), -1),
                              {}))),
})

#: every case, whatever ``$NBOPS_PERF_OPS`` says (every_backward.py builds on them)
ALL_CASES = CASES
#: the cases timed: those of the ops ``$NBOPS_PERF_OPS`` names (all when unset);
#: a case's op is its PyTorch name
CASES = select_cases(ALL_CASES, lambda label, case: case[1])

#: ops that take ``out=``
OUT = {op for op, (function, _, _) in CASES.items()
       if "out" in inspect.signature(function).parameters}


def _torch_args(args, kwargs):
    targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    tkw = {k: v for k, v in kwargs.items() if k != "rng"}
    return targs, tkw


@built_once
class EveryOp:
    params = (sorted(CASES), list(SIZES), perf_dtypes(),
              ["nbops", "nbops_out", "torch"])
    param_names = ["op", "size", "dtype", "library"]
    timeout = 240
    # About 1000 cells: one process and a few samples each keep the whole run
    # near half an hour (asv's defaults, two processes and up to ten samples,
    # took about 90 minutes). Each sample is a batch of calls (built_once).
    processes = 1
    repeat = (3, 9, 2.0)  # samples of about 10 ms each (built_once)
    warmup_time = 0.05

    def setup(self, op, size, dtype, library):
        function, torch_name, build = CASES[op]
        args, kwargs = build(size, dtype)
        if library == "torch":
            needs_torch()
            fn = getattr(F, torch_name, None) or getattr(torch, torch_name, None)
            if fn is None:
                raise NotImplementedError(f"PyTorch has no {torch_name}")  # asv: skipped
            targs, tkw = _torch_args(args, kwargs)
            if torch_name in ("dropout", "dropout1d", "dropout2d", "dropout3d"):
                tkw["training"] = True
            self.fn = lambda: fn(*targs, **tkw)
        elif library == "nbops_out":
            if op not in OUT:
                raise NotImplementedError(f"{op} has no out=")  # asv: skipped
            out = np.empty_like(function(*args, **kwargs))
            self.fn = lambda: function(*args, out=out, **kwargs)
        else:
            self.fn = lambda: function(*args, **kwargs)

    def time_op(self, op, size, dtype, library):
        self.fn()
