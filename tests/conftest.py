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

import _background  # noqa: E402  (needs the path above)


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect
def pytest_collection_modifyitems(config, items):
    # the tests marked ``background`` go last; their subprocesses start once
    # collection is over (tests/_background.py)
    _background.schedule(items)


def pytest_collection_finish(session):
    if not session.config.option.collectonly:
        _background.start()


def pytest_sessionfinish(session):
    _background.stop()


@pytest.fixture
def background(request):
    """The finished subprocess of a test marked ``@pytest.mark.background(args, ...)``."""
    return _background.result(request.node)


@pytest.fixture
def rng():
    """A fresh, seeded NumPy Generator for each test."""
    return np.random.default_rng(12345)
