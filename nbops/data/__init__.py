"""Data for ``python -m nbops``: a synthetic classification task and a checkpoint.

The task is generated deterministically by NumPy (nothing is downloaded): points
on a four-armed spiral in the plane (one arm per class, with noise), embedded
into ``N_FEATURES`` dimensions by a fixed random map with a ``tanh``
nonlinearity. The map depends only on ``TASK_SEED``; ``seed`` picks the samples.

``mlp_checkpoint.npz`` is the state_dict of :func:`mlp` trained with PyTorch on
``make_dataset(N_TRAIN, TRAIN_SEED)`` by ``tools/train_mlp_checkpoint.py``,
saved as ``{k: v.numpy() for k, v in model.state_dict().items()}``.
"""

import os

import numpy as np

__all__ = ["N_FEATURES", "N_CLASSES", "HIDDEN", "DROPOUT", "TASK_SEED", "TRAIN_SEED",
           "TEST_SEED", "N_TRAIN", "N_TEST", "CHECKPOINT", "make_dataset", "mlp",
           "load_checkpoint"]

N_FEATURES = 16
N_CLASSES = 4
HIDDEN = 64
DROPOUT = 0.2
TASK_SEED = 20240601   # fixes the task (the embedding map)
TRAIN_SEED = 0         # samples the checkpoint was trained on
TEST_SEED = 1          # default held-out samples of the demo
N_TRAIN = 8192
N_TEST = 2000
CHECKPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlp_checkpoint.npz")


def make_dataset(n, seed, dtype=np.float32):
    """``(x, y)``: ``n`` samples of shape ``(n, N_FEATURES)`` and int64 labels in
    ``[0, N_CLASSES)``, a pure function of ``(n, seed)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=n)
    t = rng.uniform(0.05, 1.0, size=n)
    angle = 2 * np.pi * (y / N_CLASSES + 0.75 * t) + rng.normal(0.0, 0.12, size=n)
    plane = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    task = np.random.default_rng(TASK_SEED)
    proj = task.normal(0.0, 1.5, size=(2, N_FEATURES))
    shift = task.uniform(-1.0, 1.0, size=N_FEATURES)
    x = np.tanh(plane @ proj + shift) + rng.normal(0.0, 0.05, size=(n, N_FEATURES))
    return x.astype(dtype), y.astype(np.int64)


def mlp(rng=None, dtype=None):
    """The demo's classifier as an ``nbops.nn.Sequential`` (PyTorch's keys:
    ``0.weight``, ``1.running_mean``...): Linear, BatchNorm1d, ReLU, Dropout, Linear."""
    from .. import nn
    gen = np.random.default_rng(rng)
    return nn.Sequential(
        nn.Linear(N_FEATURES, HIDDEN, rng=gen, dtype=dtype),
        nn.BatchNorm1d(HIDDEN, dtype=dtype),
        nn.ReLU(),
        nn.Dropout(DROPOUT, rng=gen),
        nn.Linear(HIDDEN, N_CLASSES, rng=gen, dtype=dtype),
    )


def load_checkpoint(path=CHECKPOINT):
    """The shipped checkpoint as a dict of NumPy arrays, in PyTorch's state_dict layout."""
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}
