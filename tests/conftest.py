"""Shared pytest configuration for the nbops test suite.

Kept deliberately light: nothing here imports nbops or compiles anything.
"""

import os
import sys

import numpy as np
import pytest

# Make ``import _reference`` work whatever pytest's import mode is.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def rng():
    """A fresh, seeded NumPy Generator for each test."""
    return np.random.default_rng(12345)
