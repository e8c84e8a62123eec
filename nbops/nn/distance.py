"""PairwiseDistance and CosineSimilarity over :func:`nbops.pairwise_distance` and
:func:`nbops.cosine_similarity`."""

from .._ops.distance import pairwise_distance as _pairwise_distance
from .._ops.distance import pairwise_distance_backward as _pairwise_distance_backward
from .._ops.similarity import cosine_similarity as _cosine_similarity
from .._ops.similarity import cosine_similarity_backward as _cosine_similarity_backward
from ._module import Module

__all__ = ["PairwiseDistance", "CosineSimilarity"]


class PairwiseDistance(Module):
    """The p-norm of ``x1 - x2 + eps`` along the last axis.

    See :func:`nbops.pairwise_distance`. The order ``p`` is stored as ``norm``,
    as PyTorch does.

    Parameters
    ----------
    p : float, default 2.0
        The order of the norm.
    eps : float, default 1e-6
        Added to the difference, to avoid a zero norm.
    keepdim : bool, default False
        Keep the reduced last axis (of length 1).

    Examples
    --------
    >>> pdist = nbops.nn.PairwiseDistance(p=2)
    >>> pdist(np.zeros((1, 2)), np.array([[3.0, 4.0]]))
    array([4.9999986])
    """

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1, x2):
        result = _pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
        self._save_for_backward((x1, x2))
        return result

    def backward(self, grad_output):
        """The gradients of both inputs (:func:`nbops.pairwise_distance_backward`).

        Parameters
        ----------
        grad_output : array
            The gradient of the distances (the forward's result's shape).

        Returns
        -------
        tuple of array
            ``(grad_x1, grad_x2)``, of the shapes of ``x1`` and ``x2``.
        """
        x1, x2 = self._saved_for_backward()
        return _pairwise_distance_backward(grad_output, x1, x2, self.norm, self.eps,
                                           self.keepdim)


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim``.

    See :func:`nbops.cosine_similarity` (whose ``axis`` is this ``dim``).

    Parameters
    ----------
    dim : int, default 1
        The axis along which the vectors lie.
    eps : float, default 1e-8
        Lower bound of each norm.

    Examples
    --------
    >>> cos = nbops.nn.CosineSimilarity(dim=1)
    >>> cos(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])).round(4)
    array([0.7071])
    """

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        result = _cosine_similarity(x1, x2, self.dim, self.eps)
        self._save_for_backward((x1, x2))
        return result

    def backward(self, grad_output):
        """The gradients of both inputs (:func:`nbops.cosine_similarity_backward`).

        Parameters
        ----------
        grad_output : array
            The gradient of the similarities (the forward's result's shape).

        Returns
        -------
        tuple of array
            ``(grad_x1, grad_x2)``, of the shapes of ``x1`` and ``x2``.
        """
        x1, x2 = self._saved_for_backward()
        return _cosine_similarity_backward(grad_output, x1, x2, self.dim, self.eps)
