"""The op table itself (nbops/_ops/table.py): its entries are consistent and
everything that lists ops lists all of them. Nothing here compiles a kernel."""

import inspect

import numpy as np
import pytest

import nbops
import nbops.nn as nn
from nbops._ops import table
from nbops._ops.table import Param

ENTRIES = table.entries()
ELEMENTWISE = table.elementwise_entries()


def test_every_public_function_is_a_table_entry():
    ops = [n for n in nbops.__all__ if n not in ("scalar", "warmup", "empty_cache", "nn", "optim",
                                                 "no_grad", "enable_grad", "set_grad_enabled",
                                                 "is_grad_enabled")]
    assert ops == table.public_names()
    for e in ENTRIES:
        assert getattr(nbops, e.name) is e.function


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_is_consistent(entry):
    assert entry.residual in table.RESIDUALS or isinstance(entry.residual, tuple)
    assert entry.family in {"activation", "softmax", "normalization", "linear", "dropout",
                            "distance", "losses", "classification"}
    names = entry.module_name if isinstance(entry.module_name, tuple) else (entry.module_name,)
    for name in names:
        if name is not None:
            assert name in nn.__all__, name
    sig = inspect.signature(entry.function).parameters
    for p in entry.params:  # declared parameters are the function's, same defaults
        assert p.name in sig, p.name
        assert (sig[p.name].default is sig[p.name].empty) == p.required, p.name
        if not p.required:
            assert sig[p.name].default == p.default or sig[p.name].default is p.default
    assert ("inplace" in sig) == entry.inplace


@pytest.mark.parametrize("entry", ELEMENTWISE, ids=[e.name for e in ELEMENTWISE])
def test_elementwise_entry(entry):
    assert getattr(nbops.scalar, entry.name) is entry.core
    floats = [p for p in entry.params if p.kind != "choice"]  # a choice picks the core
    assert entry.op.core is entry.core and entry.op.nparams == len(floats)
    if entry.choice_ops:  # one public core (and Op) per choice, the default's first
        choice = entry.choice_param()
        assert tuple(entry.choice_ops) == choice.choices
        assert entry.choice_ops[choice.default] is entry.op
        for op in entry.choice_ops.values():
            assert getattr(nbops.scalar, op.core.__name__) is op.core
            assert op.nparams == len(floats)
    for p in entry.params:  # an example of each parameter for the tests and benchmarks
        assert p.example is not None, p.name
    if entry.name != "prelu":  # generated: the docstring's shared sections are there
        doc = entry.function.__doc__
        for section in ("Parameters\n----------\ninput : array_like", "out : ndarray, optional",
                        "Returns\n-------", "float32 stays float32", "Examples\n--------"):
            assert section in doc, section
        assert ("inplace : bool, default False" in doc) == entry.inplace
        assert entry.function.__module__ == f"nbops._ops.{entry.family}"


def test_residuals_for_the_backward():
    outputs = {e.name for e in ELEMENTWISE if e.residual == "output"}
    assert outputs == {"relu", "sigmoid", "tanh"}


def test_generated_module_classes():
    for e in ELEMENTWISE:
        if isinstance(e.module, table.Module):
            cls = getattr(nn, e.module.name)
            assert cls.__module__ == "nbops.nn.activation"
            assert f":func:`nbops.{e.name}`" in cls.__doc__
            m = cls(**{p.name: p.example for p in e.params if p.required})
            for p in e.params:
                assert hasattr(m, p.name)


def test_parameter_kinds_and_conversions():
    with pytest.raises(ValueError, match="kind"):
        Param("x", kind="complex")
    assert Param("approximate", "none", kind="choice",
                 choices=("none", "tanh")).doc_header() == \
        "approximate : {'none', 'tanh'}, default 'none'"
    assert Param("alpha", 1.0).doc_header() == "alpha : float, default 1.0"
    assert Param("threshold").doc_header() == "threshold : float"
    assert table._as_int(np.int64(3), "n") == 3
    with pytest.raises(TypeError, match="n must be an integer"):
        table._as_int(2.5, "n")
    assert table._as_choice("tanh", "approximate", ("none", "tanh")) == "tanh"
    with pytest.raises(ValueError, match="approximate must be one of"):
        table._as_choice("exact", "approximate", ("none", "tanh"))


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already in the table"):
        table.register(table.TABLE["relu"])


def test_warmup_lists_every_op_with_samples():
    import sys

    warmup = sys.modules["nbops.warmup"]
    assert warmup.available_ops() == sorted(e.name for e in ENTRIES if e.samples is not None)
    assert {e.name for e in ELEMENTWISE} <= set(warmup.available_ops())


def test_warmup_parallel_samples_reach_the_parallel_size(monkeypatch):
    """The warm-up's large sample arrays (rows of 16 included) hold at least the
    element count from which every kernel runs parallel: one row short, the
    kernels at that threshold stayed uncompiled."""
    import sys

    warmup = sys.modules["nbops.warmup"]
    sizes = []

    def calls(dtype, n, backward=False):
        sizes.append(n)
        return {"relu": lambda: None}

    monkeypatch.setattr(warmup._launch, "everywhere_parallel_from", lambda: 1000)
    monkeypatch.setattr(warmup, "_calls", calls)
    warmup.warmup(["relu"], dtypes=["float32"], verbose=False)
    d = table.sample_arrays(np.float32, max(sizes))
    assert min(d.x.size, d.x2.size, d.g2.size) >= 1000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_backward_has_sample_calls(dtype):
    """The warm-up (``backward=True``) and the thread tuning run each op's backward
    (and a loss's ``_with_grad``) through its entry's backward sample calls."""
    d = table.sample_arrays(dtype, 64)
    for e in ENTRIES:
        functions = {e.backward_function, e.with_grad_function} - {None}
        if not functions:
            assert e.backward_samples is None, e.name
            continue
        calls = e.backward_samples(d)
        assert {f for f, _, _ in calls} == functions, e.name
        for f, args, kwargs in calls:
            inspect.signature(f).bind(*args, **kwargs)
            floats = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
            assert floats and {a.dtype for a in floats} == {np.dtype(dtype)}, e.name
    assert {f.__name__ for e in ENTRIES if e.backward_samples is not None
            for f, _, _ in e.backward_samples(d)} == set(table.backward_functions())


ROW_OPS = table.row_op_entries()


def test_row_ops_are_the_softmax_family():
    assert [e.name for e in ROW_OPS] == ["softmax", "log_softmax", "softmin"]
    assert [e.sgn for e in ROW_OPS] == [1, 1, -1]
    assert ROW_OPS[2].core is ROW_OPS[0].core  # softmin: softmax of -x


@pytest.mark.parametrize("entry", ROW_OPS, ids=[e.name for e in ROW_OPS])
def test_row_op_entry(entry):
    from nbops.scalar.rows import RowCore

    assert isinstance(entry.core, RowCore) and entry.family == "softmax"
    assert entry.residual == "output"
    assert str(inspect.signature(entry.function)) == \
        "(input, axis=-1, dtype=None, *, dim=None, out=None)"
    doc = entry.function.__doc__  # generated: the shared sections are there
    for section in ("Parameters\n----------\ninput : array_like", "axis : int, default -1",
                    "dtype : dtype, optional", "dim : int, optional",
                    "out : ndarray, optional", "Returns\n-------", "float32 stays float32",
                    "Notes\n-----", "Examples\n--------", f"nbops.{entry.name}("):
        assert section in doc, section
    assert entry.function.__module__ == "nbops._ops.softmax"
    cls = getattr(nn, entry.module.name)  # the generated nbops.nn class
    assert cls.__module__ == "nbops.nn.activation"
    assert f":func:`nbops.{entry.name}`" in cls.__doc__
    assert "dim : int, optional" in cls.__doc__
    assert repr(cls(dim=1)) == f"{entry.module.name}(dim=1)"
    assert repr(cls()) == f"{entry.module.name}(dim=None)"
    assert cls(0).state_dict() == {}
