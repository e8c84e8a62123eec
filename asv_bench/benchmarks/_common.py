"""Shared helpers: optional PyTorch baseline, input data."""

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # PyTorch is an optional baseline
    torch = F = None


def needs_torch():
    if torch is None:
        raise NotImplementedError("PyTorch is not installed")  # asv: skip


def random_array(size, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(size).astype(dtype)
