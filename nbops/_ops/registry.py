"""Op-table entries of the ops written by hand in their family modules.

batch_norm, linear, pairwise_distance, dropout and the losses have their own
drivers (reductions, random masks ...); their entries here give the table what
every list of ops needs: name, family, parameters (read from the function's
signature), the residuals their backward will need, their ``nbops.nn``
class(es) and the calls that warm them up: the forward's, and the backward's on
the same arrays (a loss's ``_backward`` and ``_with_grad`` calls are made from
its forward's, :func:`nbops._ops.table.loss_backward_samples`). The elementwise
activations are declared in :mod:`nbops._ops.activation`, the pointwise losses in
:mod:`nbops._ops.losses`, the row ops (softmax family) in
:mod:`nbops._ops.softmax` (imported here, so that they register after the
pointwise losses, as before).
"""

import inspect

import numpy as np

from . import (
    bilinear,
    class_margin_losses,
    classification,
    ctc,
    distance,
    dropout,
    embedding_losses,
    glu,
    group_norm,
    gumbel,
    layer_norm,
    linear,
    local_response_norm,
    losses,
    margin_losses,
    multilabel_losses,
    nll_losses,
    normalization,
    rrelu,
    similarity,
    softmax,  # noqa: F401  (declares the row ops, after the pointwise losses)
    table,
)
from .table import REQUIRED, Param

#: the kind of a parameter, from its default (None: an optional array) ...
_KIND_OF_DEFAULT = {bool: "bool", int: "int", float: "float", str: "choice"}
#: ... or from its name
_KIND_OF_NAME = {"size_average": "bool", "reduce": "bool", "axis": "int", "dim": "int",
                 "p": "float", "dtype": "object", "rng": "object", "shape": "object",
                 "normalized_shape": "object", "eps": "float",
                 "num_groups": "int", "distance_function": "object", "size": "int"}
#: the values of the string options
_CHOICES = {"reduction": ("none", "mean", "sum"),
            "compute_mode": similarity.COMPUTE_MODES,
            "kl_div.reduction": ("none", "mean", "sum", "batchmean")}


def _params(function, inputs):
    """The parameters of ``function`` besides its array inputs and ``out``."""
    params = []
    for p in inspect.signature(function).parameters.values():
        if p.name in inputs or p.name == "out":
            continue
        default = REQUIRED if p.default is p.empty else p.default
        kind = _KIND_OF_NAME.get(p.name) or _KIND_OF_DEFAULT.get(type(default), "array")
        choices = _CHOICES.get(f"{function.__name__}.{p.name}", _CHOICES.get(p.name, ()))
        params.append(Param(p.name, default, kind=kind,
                            choices=choices if kind == "choice" else ()))
    return tuple(params)


def _register(function, family, inputs, residual, module, samples, backward=None,
              with_grad=None, backward_samples=None):
    name = function.__name__
    table.op(name, family, _params(function, inputs), function=function, residual=residual,
             module=module, samples=samples,
             inplace="inplace" in inspect.signature(function).parameters,
             backward=backward, with_grad=with_grad, backward_samples=backward_samples)


# (the softmax family, softmax, log_softmax and softmin, is declared in
# nbops/_ops/softmax.py, imported above so that it registers here, in this order)
# ------------------------------------------------------- glu (an axis split in half)
_register(glu.glu, "activation", ("input",), ("input",), "GLU",
          lambda d: [((d.x2,), {})], backward=glu.glu_backward,
          backward_samples=lambda d: [(glu.glu_backward,
                                       (np.ascontiguousarray(d.g2[:, :8]), d.x2), {})])
# --------------------------------------------------- rrelu (slopes from the generator)
_register(rrelu.rrelu, "activation", ("input",), ("input",), "RReLU",
          lambda d: [((d.x,), {}), ((d.x,), {"training": True, "rng": 0})],
          backward=rrelu.rrelu_backward,
          backward_samples=lambda d: [(rrelu.rrelu_backward, (d.g, d.x),
                                       {"training": True, "rng": 0})])
# ------------------------------------- gumbel_softmax (a sample, along an axis)
_register(gumbel.gumbel_softmax, "softmax", ("logits",), ("logits",), None,
          lambda d: [((d.x2,), {"rng": 0}), ((d.x2,), {"hard": True, "rng": 0})],
          backward=gumbel.gumbel_softmax_backward,
          backward_samples=lambda d: [(gumbel.gumbel_softmax_backward, (d.g2, d.x2),
                                       {"rng": 0})])
# -------------------------------------------------------- normalization, linear
_register(normalization.batch_norm, "normalization", ("input", "running_mean", "running_var"),
          ("input", "saved_mean", "saved_invstd"), ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
          lambda d: [((d.x2, d.ch * 0, d.ch.copy()), {"training": False}),
                     ((d.x2, None, None), {"training": True})],
          backward=normalization.batch_norm_backward,
          backward_samples=lambda d: [
              (normalization.batch_norm_backward, (d.g2, d.x2, d.ch * 0, d.ch),
               {"training": False}),
              (normalization.batch_norm_backward, (d.g2, d.x2, d.ch * 0, d.ch, d.ch),
               {"training": True})])



def _row_stats(d, fill):
    """A saved per-row statistic of d.x2 normalized over its last axis: (rows, 1)."""
    return np.full((len(d.x2), 1), fill, d.dtype)


_register(layer_norm.layer_norm, "normalization", ("input",),
          ("input", "saved_mean", "saved_rstd"), "LayerNorm",
          lambda d: [((d.x2, 16), {}), ((d.x2, (16,), d.ch, d.ch), {})],
          backward=layer_norm.layer_norm_backward,
          backward_samples=lambda d: [
              (layer_norm.layer_norm_backward,
               (d.g2, d.x2, 16, _row_stats(d, 0.0), _row_stats(d, 1.0), d.ch), {})])
_register(layer_norm.rms_norm, "normalization", ("input",), ("input", "saved_rstd"),
          "RMSNorm", lambda d: [((d.x2, 16, d.ch), {})],
          backward=layer_norm.rms_norm_backward,
          backward_samples=lambda d: [
              (layer_norm.rms_norm_backward, (d.g2, d.x2, 16, _row_stats(d, 1.0), d.ch), {})])

_register(group_norm.group_norm, "normalization", ("input",),
          ("input", "saved_mean", "saved_rstd"), "GroupNorm",
          lambda d: [((d.x2, 4), {}), ((d.x2, 4, d.ch, d.ch), {})],
          backward=group_norm.group_norm_backward,
          backward_samples=lambda d: [
              (group_norm.group_norm_backward,
               (d.g2, d.x2, 4, np.zeros((len(d.x2), 4), d.dtype),
                np.ones((len(d.x2), 4), d.dtype), d.ch), {})])


def _instances(a):
    """A sample of shape (rows, 4, 4): 4 channels of 4 positions."""
    return a.reshape(len(a), 4, 4)


_register(group_norm.instance_norm, "normalization",
          ("input", "running_mean", "running_var"), ("input", "saved_mean", "saved_rstd"),
          ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"),
          lambda d: [((_instances(d.x2),), {}),
                     ((_instances(d.x2), d.ch[:4] * 0, d.ch[:4].copy(), d.ch[:4], d.ch[:4]),
                      {})],
          backward=group_norm.instance_norm_backward,
          backward_samples=lambda d: [
              (group_norm.instance_norm_backward,
               (_instances(d.g2), _instances(d.x2), np.zeros((len(d.x2), 4), d.dtype),
                np.ones((len(d.x2), 4), d.dtype), d.ch[:4]), {})])
_register(local_response_norm.local_response_norm, "normalization", ("input",), ("input",),
          "LocalResponseNorm",
          # (N, C, S) and (N, C, 1): the second takes kernels of its own (batch rows)
          lambda d: [((_instances(d.x2), 3), {}), ((d.x2[:, :, None], 3), {})],
          backward=local_response_norm.local_response_norm_backward,
          backward_samples=lambda d: [(local_response_norm.local_response_norm_backward,
                                       (_instances(d.g2), _instances(d.x2), 3), {}),
                                      (local_response_norm.local_response_norm_backward,
                                       (d.g2[:, :, None], d.x2[:, :, None], 3), {})])


def _linear_args(d):
    """(input, weight, bias) of a layer of 64 inputs and 32 outputs (the thread
    tuning's cost per multiply-add)."""
    return (d.x2[:len(d.x2) // 4 * 4].reshape(-1, 64), np.ones((32, 64), d.dtype),
            np.ones(32, d.dtype))


def _linear_backward_args(d):
    """A grad_output of that layer's output shape, then its forward's arguments."""
    x, weight, bias = _linear_args(d)
    return d.g2.reshape(-1)[:len(x) * 32].reshape(-1, 32), x, weight, bias


_register(linear.linear, "linear", ("input", "weight"), ("input", "weight"), "Linear",
          lambda d: [(_linear_args(d), {})], backward=linear.linear_backward,
          backward_samples=lambda d: [(linear.linear_backward, _linear_backward_args(d), {})])


def _bilinear_args(d):
    """(input1, input2, weight, bias): 16 and 16 features to 8 outputs."""
    return d.x2, d.x2[::-1], np.full((8, 16, 16), 0.01, d.dtype), d.ch[:8]


_register(bilinear.bilinear, "linear", ("input1", "input2", "weight"),
          ("input1", "input2", "weight"), "Bilinear", lambda d: [(_bilinear_args(d), {})],
          backward=bilinear.bilinear_backward,
          backward_samples=lambda d: [(bilinear.bilinear_backward,
                                       (np.ascontiguousarray(d.g2[:, :8]), *_bilinear_args(d)),
                                       {})])

# -------------------------------------------------------------- dropout, distance
for _fn, _module, _backward in (
        (dropout.dropout, "Dropout", dropout.dropout_backward),
        (dropout.dropout2d, "Dropout2d", dropout.dropout2d_backward),
        (dropout.dropout3d, "Dropout3d", dropout.dropout3d_backward)):
    _register(_fn, "dropout", ("input",), ("mask",), _module,
              lambda d: [((d.x2.reshape(-1, 16, 1, 1),), {"rng": 0})], backward=_backward,
              backward_samples=lambda d, b=_backward: [
                  (b, (d.g2.reshape(-1, 16, 1, 1),), {"rng": 0})])
_register(dropout.dropout_mask, "dropout", ("shape",), (), None, None)
for _fn, _module, _backward, _shape in (
        (dropout.dropout1d, "Dropout1d", dropout.dropout1d_backward, (-1, 16, 1)),
        (dropout.alpha_dropout, "AlphaDropout", dropout.alpha_dropout_backward, (-1, 16)),
        (dropout.feature_alpha_dropout, "FeatureAlphaDropout",
         dropout.feature_alpha_dropout_backward, (-1, 16, 1, 1))):
    _register(_fn, "dropout", ("input",), ("mask",), _module,
              lambda d, s=_shape: [((d.x2.reshape(s),), {"rng": 0, "training": True})],
              backward=_backward,
              backward_samples=lambda d, b=_backward, s=_shape: [
                  (b, (d.g2.reshape(s),), {"rng": 0, "training": True})])
_register(distance.pairwise_distance, "distance", ("x1", "x2"), ("x1", "x2", "output"),
          "PairwiseDistance", lambda d: [((d.x2, d.x2[::-1]), {})],
          backward=distance.pairwise_distance_backward,
          backward_samples=lambda d: [(distance.pairwise_distance_backward,
                                       (np.ascontiguousarray(d.g2[:, 0]), d.x2, d.x2[::-1]),
                                       {})])
_register(similarity.cosine_similarity, "distance", ("x1", "x2"), ("x1", "x2"),
          "CosineSimilarity", lambda d: [((d.x2, d.x2[::-1]), {})],
          backward=similarity.cosine_similarity_backward,
          backward_samples=lambda d: [(similarity.cosine_similarity_backward,
                                       (np.ascontiguousarray(d.g2[:, 0]), d.x2, d.x2[::-1]),
                                       {})])
_register(similarity.normalize, "normalization", ("input",), ("input",), None,
          lambda d: [((d.x2,), {})], backward=similarity.normalize_backward,
          backward_samples=lambda d: [(similarity.normalize_backward, (d.g2, d.x2), {})])
_register(similarity.pdist, "distance", ("input",), ("input", "output"), None,
          lambda d: [((d.x2,), {})], backward=similarity.pdist_backward,
          backward_samples=lambda d: [(similarity.pdist_backward,
                                       (np.ones(len(d.x2) * (len(d.x2) - 1) // 2, d.dtype),
                                        d.x2), {})])
_register(similarity.cdist, "distance", ("x1", "x2"), ("x1", "x2", "output"), None,
          lambda d: [((d.x2, d.x2[::2]), {})], backward=similarity.cdist_backward,
          backward_samples=lambda d: [(similarity.cdist_backward,
                                       (np.ones((len(d.x2), len(d.x2[::2])), d.dtype), d.x2,
                                        d.x2[::2]), {})])

# ---------------------------------------------------------------------- losses
# (the pointwise losses, l1_loss, mse_loss, ..., are declared in nbops/_ops/losses.py)
_register(losses.kl_div, "losses", ("input", "target"), ("input", "target"), "KLDivLoss",
          lambda d: [((d.x, d.p), {})], backward=losses.kl_div_backward,
          with_grad=losses.kl_div_with_grad)
_register(losses.binary_cross_entropy, "losses", ("input", "target"), ("input", "target"),
          "BCELoss", lambda d: [((d.p, d.p[::-1].copy()), {})],
          backward=losses.binary_cross_entropy_backward,
          with_grad=losses.binary_cross_entropy_with_grad)
_register(losses.binary_cross_entropy_with_logits, "losses", ("input", "target"),
          ("input", "target"), "BCEWithLogitsLoss", lambda d: [((d.x, d.p), {})],
          backward=losses.binary_cross_entropy_with_logits_backward,
          with_grad=losses.binary_cross_entropy_with_logits_with_grad)
_register(nll_losses.poisson_nll_loss, "losses", ("input", "target"), ("input", "target"),
          "PoissonNLLLoss", lambda d: [((d.x, d.p), {}), ((d.p, d.p), {"log_input": False})],
          backward=nll_losses.poisson_nll_loss_backward,
          with_grad=nll_losses.poisson_nll_loss_with_grad)
_register(nll_losses.gaussian_nll_loss, "losses", ("input", "target", "var"),
          ("input", "target", "var"), "GaussianNLLLoss",
          lambda d: [((d.x, d.p, d.p + 0.5), {}), ((d.x, d.p, 0.5), {"full": True})],
          backward=nll_losses.gaussian_nll_loss_backward,
          with_grad=nll_losses.gaussian_nll_loss_with_grad)
_register(margin_losses.margin_ranking_loss, "losses", ("input1", "input2", "target"),
          ("input1", "input2", "target"), "MarginRankingLoss",
          lambda d: [((d.x, d.p, np.sign(d.x)), {"margin": 0.25})],
          backward=margin_losses.margin_ranking_loss_backward,
          with_grad=margin_losses.margin_ranking_loss_with_grad)
_register(multilabel_losses.multilabel_soft_margin_loss, "losses", ("input", "target"),
          ("input", "target"), "MultiLabelSoftMarginLoss",
          lambda d: [((d.x2, (d.x2 > 0).astype(d.dtype)), {})],
          backward=multilabel_losses.multilabel_soft_margin_loss_backward,
          with_grad=multilabel_losses.multilabel_soft_margin_loss_with_grad)
_register(embedding_losses.cosine_embedding_loss, "losses", ("input1", "input2", "target"),
          ("input1", "input2", "target"), "CosineEmbeddingLoss",
          lambda d: [((d.x2, d.x2[::-1].copy(),
                       np.where(d.labels % 2 == 0, 1, -1).astype(d.dtype)), {"margin": 0.25})],
          backward=embedding_losses.cosine_embedding_loss_backward,
          with_grad=embedding_losses.cosine_embedding_loss_with_grad)
_register(embedding_losses.triplet_margin_loss, "losses", ("anchor", "positive", "negative"),
          ("anchor", "positive", "negative"), "TripletMarginLoss",
          lambda d: [((d.x2, d.x2[::-1].copy(), d.x2 * 0.5), {}),
                     ((d.x2, d.x2[::-1].copy(), d.x2 * 0.5), {"swap": True})],
          backward=embedding_losses.triplet_margin_loss_backward,
          with_grad=embedding_losses.triplet_margin_loss_with_grad)
_register(embedding_losses.triplet_margin_with_distance_loss, "losses",
          ("anchor", "positive", "negative"), ("anchor", "positive", "negative"),
          "TripletMarginWithDistanceLoss",
          lambda d: [((d.x2, d.x2[::-1].copy(), d.x2 * 0.5), {})],
          backward=embedding_losses.triplet_margin_with_distance_loss_backward,
          with_grad=embedding_losses.triplet_margin_with_distance_loss_with_grad)


def _label_lists(d):
    """Class-index lists of d.x2's shape: three classes per row, then -1."""
    cols = np.arange(d.x2.shape[1])
    return np.where(cols < 3, (d.labels[:, None] + 5 * cols) % d.x2.shape[1], -1)


_register(class_margin_losses.multi_margin_loss, "losses", ("input", "target"),
          ("input", "target"), "MultiMarginLoss",
          lambda d: [((d.x2, d.labels), {}), ((d.x2, d.labels, 2, 0.5, d.ch), {})],
          backward=class_margin_losses.multi_margin_loss_backward,
          with_grad=class_margin_losses.multi_margin_loss_with_grad)
_register(class_margin_losses.multilabel_margin_loss, "losses", ("input", "target"),
          ("input", "target"), "MultiLabelMarginLoss",
          lambda d: [((d.x2, _label_lists(d)), {})],
          backward=class_margin_losses.multilabel_margin_loss_backward,
          with_grad=class_margin_losses.multilabel_margin_loss_with_grad)
_register(classification.cross_entropy, "classification", ("input", "target"),
          ("input", "target"), "CrossEntropyLoss",
          lambda d: [((d.x2, d.labels), {})],
          backward=classification.cross_entropy_backward,
          with_grad=classification.cross_entropy_with_grad)
_register(classification.nll_loss, "classification", ("input", "target"), ("input", "target"),
          ("NLLLoss", "NLLLoss2d"), lambda d: [((d.x2, d.labels), {})],
          backward=classification.nll_loss_backward, with_grad=classification.nll_loss_with_grad)


def _ctc_args(d):
    """(log_probs (T, 1, 16), padded targets, input_lengths, target_lengths) of d.x2."""
    return d.x2.reshape(len(d.x2), 1, 16), np.array([[1, 2]]), [len(d.x2)], [2]


_register(ctc.ctc_loss, "losses", ("log_probs", "targets", "input_lengths", "target_lengths"),
          ("log_probs", "targets"), "CTCLoss", lambda d: [(_ctc_args(d), {})],
          backward=ctc.ctc_loss_backward, with_grad=ctc.ctc_loss_with_grad)
