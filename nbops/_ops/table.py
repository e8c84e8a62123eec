"""The op table: every op of nbops declared once, and what is generated from it.

An *entry* says what an op is: its name, its family, its parameters (name,
default, kind), the checks on them, the residual its backward will need, its
``nbops.nn`` module and its documentation. For an elementwise op the entry also
names its scalar core (in :mod:`nbops.scalar.activations`), and from the entry
alone this module generates

* the public function ``nbops.<op>`` with ``torch.nn.functional``'s signature
  plus a keyword-only ``out=``: a real Python function (compiled from a small
  source template), so binding the arguments costs what a hand-written
  function costs; it converts and checks the parameters, then runs the shared
  elementwise kernels (:func:`nbops._ops.elementwise.unary`, which also sends
  CUDA device arrays to the CUDA kernels);
* its ``@overload``, so that ``nbops.<op>(...)`` works inside a user's ``@njit``
  code (same defaults, same checks);
* its docstring, from the entry's pieces and the shared sections written once
  below (``input``, ``inplace``, ``out``, ``Returns`` with the dtype rule);
* the ``nbops.nn`` class, where the module is a plain holder of the op's
  parameters (``nbops.nn.ReLU``, ``ELU``, ...);
* where the entry names a derivative core (``backward=``), the backward
  ``nbops.<op>_backward(grad_output, <residual>, *params, *, out=None)``
  (same parameter conversions and checks; the shared 2-input kernels of
  :func:`nbops._ops.elementwise.binary`, CUDA included), its ``@overload``
  and its docstring;

and everything that lists ops reads the table: ``nbops.__all__`` and
``nbops.nn.__all__``, the warm-up (:mod:`nbops.warmup`), the asv benchmarks,
the PTX and GPU checks, the documentation's pages and plots and the test
matrices (whose float64 references stay in ``tests/_reference.py``).

The pointwise losses (``core(input_i, target_i, *params)``, then weighted and
reduced: ``l1_loss``, ``mse_loss``, ...) are :class:`PointwiseLoss` entries
(:func:`pointwise_loss`), and the row ops of the log-sum-exp family
(``softmax``, ``log_softmax``, ``softmin``: a row core applied along an axis)
are :class:`RowOp` entries (:func:`row_op`): their public function, overload,
docstring and ``nbops.nn`` class are generated the same way, over the shared
loss drivers and the shared row driver (``nbops/_ops/softmax.py``).
Ops whose implementation is neither (reductions, the other losses, ...) are
registered with the same :class:`Entry` (their functions are written by hand in
their family modules), so the lists above include them too.

Adding an elementwise activation (``silu`` as the example)
----------------------------------------------------------
1. Its scalar core, at the end of ``nbops/scalar/activations.py``: a
   ``@core`` function of one element (and float hyperparameters, which take
   the element's type through ``const``), with a docstring, its name added to
   the module's ``__all__`` (``nbops.scalar`` exports it from there).
   Its derivative core beside it, ``silu_backward(g, x)``: ``g`` times the
   derivative at the residual (the input, or the output for an op whose
   derivative is a function of it), with PyTorch autograd's convention at
   any kink, its docstring's first paragraph saying so (the backward's
   docstring quotes it); also in ``__all__``.
2. One entry in ``nbops/_ops/activation.py``::

       SILU = table.elementwise(
           "silu", S.silu, inplace=True,          # residual="input" (the default)
           backward=S.silu_backward,              # generates nbops.silu_backward
           module=Module("SiLU", "``x * sigmoid(x)``", example=">>> ..."),
           summary=r"Sigmoid linear unit (swish), :math:`x \\sigma(x)` ...",
           notes="Same as ``torch.nn.functional.silu`` ...",
           example=">>> nbops.silu(np.array([-1.0, 0.0, 2.0])) ...")

   Parameters are :class:`Param` objects (``Param("alpha", 1.0, "Scale of the
   negative part.", example=1.5)``; ``example`` is a non-default value, exactly
   representable in float32, used by the tests, benchmarks and warm-up);
   checks are :class:`Check` objects. A string option is a ``choice``
   parameter that picks the core instead of being passed to it (GELU:
   ``Param("approximate", "none", kind="choice", choices=("none", "tanh"))``
   with ``core={"none": S.gelu, "tanh": S.gelu_tanh}`` and ``backward=`` a dict
   likewise): each choice compiles its own loop.
3. Its float64 reference in ``tests/_reference.py`` (a function of the same
   name). The test matrices (CPU, ``@njit``, CUDA simulator) iterate over the
   table and compare with it and with PyTorch; a missing reference fails them.

Nothing else is edited: ``nbops.silu``, ``nbops.silu_backward``,
``nbops.nn.SiLU``, the ``@njit`` overloads, the CUDA kernels, warm-up,
benchmarks, docs and tests pick it up (``tests/test_backward.py`` checks the
backward against ``torch.autograd`` and finite differences; then regenerate
the type stubs, ``python tools/gen_stubs.py``).

Adding a pointwise loss (``huber_loss`` as the example)
-------------------------------------------------------
1. Its scalar core ``core(x, t[, param])`` at the end of
   ``nbops/scalar/losses.py`` (the unreduced loss of one pair of elements),
   added to that module's ``__all__``; its derivative core beside it,
   ``huber_loss_backward(g, x, t[, param])``: ``g`` times the derivative of the
   unreduced loss at ``x``, with PyTorch autograd's convention at any kink
   (also in ``__all__``).
2. One entry at the end of ``nbops/_ops/losses.py``::

       HUBER = table.pointwise_loss(
           "huber_loss", S.huber_loss, (Param("delta", 1.0, "...", example=0.5),),
           legacy=False, weight=True,             # PyTorch's signature
           backward=S.huber_loss_backward,        # generates the backward, _with_grad
           checks=(Check("not delta > 0", "...", "..."),),
           module=Module("HuberLoss", "Huber loss", example=">>> ..."),
           summary=r"Huber loss ...", notes="...", example=">>> ...").op

   From it: ``nbops.huber_loss`` (PyTorch's signature; the shared CPU driver,
   the CUDA ``pointwise_loss`` for device arrays), its ``@overload``, its
   docstring (the shared sections below written once) and ``nbops.nn.HuberLoss``;
   from the derivative core ``nbops.huber_loss_backward(grad_output, input,
   target, ...)`` and ``nbops.huber_loss_with_grad(input, target, ...)`` (the
   shared gradient kernel of ``nbops/_ops/losses.py``, the CUDA
   ``pointwise_loss_backward``/``pointwise_loss_with_grad``) with their
   overloads and docstrings.
3. Its float64 reference in ``tests/_reference.py`` (a function of the same
   name, the unreduced loss); the loss test matrices iterate over
   :func:`pointwise_loss_entries`.

Adding a row op
---------------
A row op of the log-sum-exp family is one whose row statistics are the row
max ``m`` and ``s = sum(exp(v - m))`` of ``v = sgn * input`` along the axis.

1. Its row core, in ``nbops/scalar/rows.py``: two ``@_inline`` scalar
   functions and one :class:`~nbops.scalar.rows.RowCore` line::

       @_inline
       def my_prep(s):            # the per-row constant, from the float64 sum
           return 1.0 / s

       @_inline
       def my_value(t, k):        # one element, from t = exp(v - m) (stored)
           return t * k           # or from d = v - m when stores_exp=False

       MY = RowCore("my_op", my_prep, my_value, stores_exp=True)

   Its backward, from the output ``y`` and ``grad_output`` ``g``, is two more
   such functions, passed as ``RowCore(..., grad_term=, grad_value=)``: the
   terms of a row sum ``s`` and each element's gradient from ``(g, y, s)``
   (softmax: ``g * y`` and ``y * (g - s)``).
   All are plain scalar math (``math.*``, arithmetic, ``sub_exact``), so the
   same source runs in the CPU row and column code (:func:`~nbops.scalar.rows.lse_row`,
   :func:`~nbops.scalar.rows.lse_cols`, inside ``@njit``) and in the CUDA block,
   warp and column kernels (``row_kernels`` in ``nbops/cuda/_kernels.py``).
   An op that is an existing core of ``-x`` (softmin) needs no new core.
2. One entry at the end of ``nbops/_ops/softmax.py``::

       MY_OP = table.row_op(
           "my_op", R.MY,                         # sgn=-1: the core applied to -x
           module=Module("MyOp", "... along ``dim``", example=">>> ..."),
           summary=r"... :math:`...`", notes="Same as ``torch...``",
           example=">>> nbops.my_op(np.array([1.0, 2.0, 3.0])) ...")

   From it: ``nbops.my_op``
   (PyTorch's signature ``(input, axis=-1, dtype=None, *, dim=None,
   out=None)``; the plan of ``nbops/_ops/plan.py``; the CPU driver, or the
   CUDA launcher ``row_op`` for device arrays), its ``@overload``, its
   docstring (the shared sections below written once) and ``nbops.nn.MyOp``
   (``dim=None`` with PyTorch's implicit axis, over the base class of
   ``nbops/nn/activation.py``); where the core has its backward,
   ``nbops.my_op_backward(grad_output, output, axis=-1, *, dim=None, out=None)``
   and its ``@overload`` (``backward_formula=`` gives its Notes; the CUDA
   launcher ``row_backward``).
3. Its float64 reference in ``tests/_reference.py`` (a function of the same
   name taking ``(x, axis)``); the row-op tests (``tests/test_softmax.py``,
   the CUDA simulator tests, the table tests) iterate over
   :func:`row_op_entries`.
"""

import inspect
import linecache
from dataclasses import dataclass

from numba.extending import overload

from .._validate import as_param
from .elementwise import Op, binary, map2_njit, map_njit, unary

#: Marks a parameter without a default (a required argument).
REQUIRED = inspect.Parameter.empty

#: The residual a backward needs: the op's input, or its output (cheaper for
#: ops whose derivative is a function of the output: relu, sigmoid, tanh).
RESIDUALS = ("input", "output")

KINDS = ("float", "int", "bool", "choice", "array", "object")


@dataclass(frozen=True)
class Param:
    """One parameter of an op (besides ``input``, ``inplace`` and ``out``).

    Parameters
    ----------
    name : str
        As in ``torch.nn.functional``.
    default : object, optional
        :data:`REQUIRED` (the default) for a required argument.
    doc : str
        Its description in the docstring.
    kind : {'float', 'int', 'bool', 'choice', 'array', 'object'}
        How the public function converts it: float, int and bool to Python
        scalars (a ``TypeError`` naming the parameter otherwise), choice must
        be one of ``choices`` (a string option, e.g. GELU's ``approximate``),
        array is an array (prelu's ``weight``; ``None`` where optional), object
        anything else passed on as it is (dropout's ``rng``).
    example : object, optional
        A non-default value, exactly representable in float32: the tests'
        non-default parameter set, and the value of a required argument in
        the warm-up, benchmark and plot calls.
    choices : tuple of str
        The accepted values of a ``choice`` parameter.
    """

    name: str
    default: object = REQUIRED
    doc: str = ""
    kind: str = "float"
    example: object = None
    choices: tuple = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Param {self.name}: kind must be one of {KINDS}")

    @property
    def required(self):
        return self.default is REQUIRED

    def doc_header(self):
        if self.kind == "choice":
            kind = "{" + ", ".join(repr(c) for c in self.choices) + "}"
        else:
            kind = {"array": "array_like"}.get(self.kind, self.kind)
        return f"{self.name} : {kind}" + ("" if self.required else f", default {self.default!r}")


@dataclass(frozen=True)
class Check:
    """A check of the parameters, run before any kernel.

    Parameters
    ----------
    error_if : str
        A Python expression of the parameter names (already converted), true
        when the arguments are invalid: ``"min_val > max_val"``,
        ``"not lambd >= 0"`` (which also rejects NaN).
    message : str
        The ``ValueError``'s message from Python; ``{name}`` fields are
        replaced by the parameters' values.
    njit_message : str
        The message inside ``@njit`` code (where it cannot be formatted).
    """

    error_if: str
    message: str
    njit_message: str


@dataclass(frozen=True)
class Module:
    """The ``nbops.nn`` class of an op that is a plain holder of its parameters.

    Its constructor takes the op's parameters (same defaults) and ``inplace``
    when the op has it; ``forward`` calls the op.

    Parameters
    ----------
    name : str
        The class name, as in ``torch.nn``.
    summary : str
        First line of the class docstring (``(see nbops.<op>)`` is appended).
    example : str
        A doctest (``np`` and ``nbops`` are imported).
    repr : str, optional
        ``extra_repr`` as a format string of the attributes, where PyTorch's
        differs from the default ``name=value, ...`` (``inplace=True`` last,
        only when set).
    """

    name: str
    summary: str
    example: str = ""
    repr: str = None
    #: With ``inplace=True`` the input is overwritten, so a backward that needs
    #: the input gets a copy of it made before the op (as autograd copies an
    #: in-place op's input), unless this condition (a Python expression of
    #: ``self``'s attributes) holds: then the output gives the same derivative
    #: and is kept instead (LeakyReLU with ``negative_slope >= 0``).
    inplace_output_if: str = None


@dataclass
class Entry:
    """One op of the table (see the module docstring).

    ``function`` is the public function: generated for elementwise entries
    (:func:`elementwise`), written by hand for the others. ``module`` is a
    :class:`Module` (generated class) or the name of a hand-written
    ``nbops.nn`` class (or None). ``samples(d)`` returns the calls
    ``[(args, kwargs), ...]`` that exercise the op's kernels on the arrays of
    :func:`sample_arrays` (the warm-up runs them), and ``backward_samples(d)``
    the calls ``[(function, args, kwargs), ...]`` of its backward (and, for a
    loss, its ``_with_grad``) on the same arrays (the warm-up with
    ``backward=True`` and the thread tuning run them): generated for the
    elementwise ops, pointwise losses and row ops with a generated backward and
    for every op registered with ``with_grad`` (:func:`loss_backward_samples`),
    declared with the others' entries.
    """

    name: str
    family: str
    params: tuple = ()
    residual: object = "input"
    module: object = None
    function: object = None
    samples: object = None
    inplace: bool = False
    out: bool = True
    #: ``nbops.<name>_backward`` (generated for elementwise entries from their
    #: derivative core, written by hand in the family module otherwise) and, for
    #: a loss, ``nbops.<name>_with_grad``; None where the op has none yet.
    backward_function: object = None
    with_grad_function: object = None
    #: ``backward_samples(d)``: the backward's sample calls (see above); None
    #: where the op has no backward.
    backward_samples: object = None

    def param(self, name):
        return next(p for p in self.params if p.name == name)

    def example_params(self):
        """The non-default parameter set: ``{name: example}``."""
        return {p.name: p.example for p in self.params if p.example is not None}

    def required_args(self):
        """The examples of the required parameters, in order (for sample calls)."""
        return tuple(p.example for p in self.params if p.required)

    @property
    def module_name(self):
        return self.module.name if isinstance(self.module, Module) else self.module


@dataclass
class Elementwise(Entry):
    """An op computed element by element by a scalar core: ``core(x, *params)``."""

    core: object = None
    op: Op = None
    checks: tuple = ()
    summary: str = ""
    notes: str = ""
    example: str = ""
    plot_range: tuple = (-4.0, 4.0)
    #: The derivative core ``backward(g, r, *params)`` (``r``: the residual) and
    #: its Op, from which ``backward_function`` is generated (None where none).
    backward: object = None
    backward_op: Op = None
    #: Where the op has a ``choice`` parameter (GELU's ``approximate``): ``{choice:
    #: Op}`` of the forward and of the backward, one core each (each choice
    #: compiles its own loop); ``op``/``backward_op`` are the default choice's.
    choice_ops: dict = None
    choice_backward_ops: dict = None

    def all_ops(self):
        """Every forward Op of the entry (one per choice where it has a choice)."""
        return list(self.choice_ops.values()) if self.choice_ops else [self.op]

    def all_backward_ops(self):
        """Every backward Op of the entry (none where it has no backward)."""
        if self.choice_backward_ops:
            return list(self.choice_backward_ops.values())
        return [] if self.backward_op is None else [self.backward_op]

    def choice_param(self):
        """Its ``choice`` parameter, or None."""
        return next((p for p in self.params if p.kind == "choice"), None)


def _float_params(entry):
    """The parameters passed to the scalar core (all but a ``choice``, which picks it)."""
    return [p for p in entry.params if p.kind != "choice"]


#: name -> Entry, in registration order (the order of ``nbops.__all__``).
TABLE = {}


def register(entry):
    """Add ``entry`` to the table (a name may be registered once)."""
    if entry.name in TABLE:
        raise ValueError(f"op {entry.name!r} is already in the table")
    if entry.residual not in RESIDUALS and not isinstance(entry.residual, tuple):
        raise ValueError(f"op {entry.name!r}: residual must be one of {RESIDUALS} or a tuple")
    TABLE[entry.name] = entry
    return entry


def entries(family=None):
    """The table's entries (of one ``family``), in registration order."""
    return [e for e in TABLE.values() if family is None or e.family == family]


def elementwise_entries():
    return [e for e in TABLE.values() if isinstance(e, Elementwise)]


def sample_arrays(dtype, n):
    """The arrays the sample calls use: about ``n`` elements of ``dtype``."""
    import types

    import numpy as np

    rows = max(n // 16, 2)
    return types.SimpleNamespace(
        dtype=np.dtype(dtype),
        x=np.linspace(-3, 3, n, dtype=dtype),
        x2=np.linspace(-3, 3, rows * 16, dtype=dtype).reshape(rows, 16),
        p=np.linspace(0.01, 0.99, n, dtype=dtype),
        labels=np.arange(rows, dtype=np.int64) % 16,
        ch=np.ones(16, dtype),
        # for the backward calls: a grad_output of x's and of x2's shape, and
        # probabilities of x2's shape (a softmax's output)
        g=np.linspace(1, -1, n, dtype=dtype),
        g2=np.linspace(1, -1, rows * 16, dtype=dtype).reshape(rows, 16),
        p2=np.linspace(0.01, 0.99, rows * 16, dtype=dtype).reshape(rows, 16))


def loss_backward_samples(entry):
    """The backward sample calls of a loss with ``<loss>_with_grad``, from its
    forward samples (at a reduced ``reduction``): for each forward call
    ``(args, kwargs)``, ``<loss>_backward(1.0, *args, **kwargs)`` and
    ``<loss>_with_grad(*args, **kwargs)``."""
    def backward_samples(d):
        calls = []
        for args, kwargs in entry.samples(d):
            calls.append((entry.backward_function, (1.0, *args), kwargs))
            calls.append((entry.with_grad_function, tuple(args), kwargs))
        return calls

    return backward_samples


# --------------------------------------------------------------- docstrings
# The sections every elementwise op shares, written once.
_INPUT_DOC = """input : array_like
    Any shape, any memory layout (0-d and empty included)."""
_INPLACE_DOC = """inplace : bool, default False
    Write the result into ``input`` (a writable float array) and return it."""
_OUT_DOC = """out : ndarray, optional
    Array of the result's shape and dtype to write into (keyword-only)."""
_RETURNS_DOC = """Returns
-------
ndarray
    Same shape as ``input``; float32 stays float32, float64 stays float64,
    other real dtypes promote as ``np.exp`` would."""


def _indent(text, prefix="    "):
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def compose_docstring(entry):
    """The numpydoc docstring of an elementwise op, from its entry."""
    params = [_INPUT_DOC]
    for p in entry.params:
        params.append(p.doc_header() + ("\n" + _indent(p.doc) if p.doc else ""))
    if entry.inplace:
        params.append(_INPLACE_DOC)
    params.append(_OUT_DOC)
    parts = [inspect.cleandoc(entry.summary),
             "Parameters\n----------\n" + "\n".join(params),
             _RETURNS_DOC]
    if entry.notes:
        parts.append("Notes\n-----\n" + inspect.cleandoc(entry.notes))
    if entry.example:
        parts.append("Examples\n--------\n" + inspect.cleandoc(entry.example))
    return "\n\n".join(parts) + "\n"


# ------------------------------------------------------- the public function
_CONVERT = {"float": "as_param", "int": "_as_int", "bool": "bool"}


def _as_int(value, name):
    """An integer hyperparameter as a Python int, or a TypeError naming it."""
    import operator

    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def _as_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _signature_source(entry):
    """``input, alpha=_default_alpha, inplace=False`` (the defaults by name)."""
    args = ["input"]
    for p in entry.params:
        args.append(p.name if p.required else f"{p.name}=_default_{p.name}")
    if entry.inplace:
        args.append("inplace=False")
    return ", ".join(args)


def _convert_source(p):
    if p.kind == "choice":
        return f"_as_choice({p.name}, {p.name!r}, {tuple(p.choices)!r})"
    if p.kind == "bool":
        return f"bool({p.name})"
    return f"{_CONVERT[p.kind]}({p.name}, {p.name!r})"


def _tuple_source(items):
    """``()``, ``(a,)`` or ``(a, b)``."""
    return "()" if not items else "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _op_source(entry, prefix="_op"):
    """The Op to run: ``_op``, or ``_op_ops[<choice>]`` where a choice picks the core."""
    choice = entry.choice_param()
    return prefix if choice is None else f"{prefix}_ops[{choice.name}]"


def _function_source(entry):
    """Source of the public function: conversions, checks, then the kernels."""
    inplace = "inplace" if entry.inplace else "False"
    lines = [f"def {entry.name}({_signature_source(entry)}, *, out=None):"]
    floats = _float_params(entry)
    if entry.checks or entry.choice_param():  # convert first, check, then pass them
        lines += [f"    {p.name} = {_convert_source(p)}" for p in entry.params]
        for c in entry.checks:
            lines.append(f"    if {c.error_if}:")
            lines.append(f"        raise ValueError(f{c.message!r})")
        params = _tuple_source([p.name for p in floats])
    else:
        params = _tuple_source([_convert_source(p) for p in floats])
    lines.append(f"    return unary({_op_source(entry)}, input, {params}, {inplace}, out)")
    return "\n".join(lines) + "\n"


def _namespace(entry):
    ns = {"unary": unary, "map_njit": map_njit, "as_param": as_param, "_as_int": _as_int,
          "_as_choice": _as_choice, "_op": entry.op, "_op_ops": entry.choice_ops}
    ns.update({f"_default_{p.name}": p.default for p in entry.params if not p.required})
    if entry.choice_ops:  # each choice's Op as a global of its own (for @njit code)
        ns.update({f"_op_{i}": op for i, op in enumerate(entry.choice_ops.values())})
    return ns


def _choice_njit_lines(entry, call, prefix="_op"):
    """The ``@njit`` body's end: ``call`` (a format string of ``{op}``) with the Op
    of the choice given (compared at run time; a bad one raises ValueError)."""
    choice = entry.choice_param()
    if choice is None:
        return [f"        return {call.format(op=prefix)}"]
    lines = []
    for i, value in enumerate(choice.choices):
        lines.append(f"        if {choice.name} == {value!r}:")
        lines.append(f"            return {call.format(op=f'{prefix}_{i}')}")
    message = f"{choice.name} must be one of {list(choice.choices)}"
    lines.append(f"        raise ValueError({message!r})")
    return lines


def _njit_source(entry):
    """Source of the ``@overload`` typing function (same signature, ``out`` positional)."""
    args = _signature_source(entry)
    params = _tuple_source([p.name for p in _float_params(entry)])
    inplace = "inplace" if entry.inplace else "False"
    lines = [f"def _{entry.name}_njit({args}, out=None):",
             f"    def impl({args}, out=None):"]
    for c in entry.checks:
        lines.append(f"        if {c.error_if}:")
        lines.append(f"            raise ValueError({c.njit_message!r})")
    lines += _choice_njit_lines(entry, f"map_njit({{op}}, input, {params}, {inplace}, out)")
    lines.append("    return impl")
    return "\n".join(lines) + "\n"


def _compile(source, namespace, name, filename):
    """Define ``name`` from ``source`` in ``namespace``; tracebacks show the source."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


# ------------------------------------------------------------ the backward function
_GRAD_OUTPUT_DOC = """grad_output : array_like
    The gradient of the forward's output: a float array of its shape."""
_RESIDUAL_DOC = {
    "input": """input : array_like
    The forward's input: a float array of ``grad_output``'s shape (no
    broadcasting, as autograd).""",
    "output": """output : array_like
    The forward's output: a float array of ``grad_output``'s shape (no
    broadcasting, as autograd)."""}
_BACKWARD_OUT_DOC = """out : ndarray, optional
    Array of the result's shape and dtype to write into (keyword-only)."""
_BACKWARD_RETURNS_DOC = """Returns
-------
ndarray
    The gradient of the forward's input: ``grad_output``'s shape, the common
    float dtype of ``grad_output`` and the residual (float32 stays float32)."""


def _backward_signature_source(entry):
    """``grad_output, input, alpha=_default_alpha`` (the forward's parameters)."""
    args = ["grad_output", entry.residual]
    for p in entry.params:
        args.append(p.name if p.required else f"{p.name}=_default_{p.name}")
    return ", ".join(args)


def compose_backward_docstring(entry):
    """The numpydoc docstring of ``nbops.<op>_backward``, from the entry and the
    derivative core's docstring (its first paragraph: the formula and the
    convention at the kinks)."""
    core_doc = inspect.cleandoc(entry.backward.__doc__ or "").split("\n\n")[0]
    summary = (f"Backward of :func:`nbops.{entry.name}`: the gradient of its input, "
               f"given ``grad_output`` and its {entry.residual}.")
    params = [_GRAD_OUTPUT_DOC, _RESIDUAL_DOC[entry.residual]]
    params += [p.doc_header() + ("\n" + _indent(p.doc) if p.doc else "") for p in entry.params]
    params.append(_BACKWARD_OUT_DOC)
    core_doc = core_doc.replace("Derivative core of", "The derivative of", 1)
    notes = (f"{core_doc}\n\nElement by element (``g`` is ``grad_output``), by\n"
             f":func:`nbops.scalar.{entry.name}_backward`. Same as what ``torch.autograd``\n"
             f"computes for ``torch.nn.functional.{entry.name}``, at the kinks too.")
    call = "".join(f", {p.example!r}" for p in entry.params if p.required)
    forward = "y" if entry.residual == "output" else "x"
    example = ("\n>>> x = np.array([-2.0, 0.5, 3.0])\n"
               f">>> y = nbops.{entry.name}(x{call})\n"
               f">>> grad_input = nbops.{entry.name}_backward(np.ones_like(y), {forward}{call})\n"
               ">>> grad_input.shape\n(3,)")
    parts = [summary, "Parameters\n----------\n" + "\n".join(params), _BACKWARD_RETURNS_DOC,
             "Notes\n-----\n" + notes, "Examples\n--------" + example]
    return "\n\n".join(parts) + "\n"


def _backward_function_source(entry):
    """Source of ``nbops.<op>_backward``: the forward's conversions and checks, then
    the shared 2-input kernels (nbops/_ops/elementwise.py's ``binary``)."""
    name = f"{entry.name}_backward"
    lines = [f"def {name}({_backward_signature_source(entry)}, *, out=None):"]
    lines += [f"    {p.name} = {_convert_source(p)}" for p in entry.params]
    for c in entry.checks:
        lines.append(f"    if {c.error_if}:")
        lines.append(f"        raise ValueError(f{c.message!r})")
    params = _tuple_source([p.name for p in _float_params(entry)])
    lines.append(f"    return binary({_op_source(entry, '_bop')}, grad_output, {entry.residual}, "
                 f"{entry.residual!r}, {params}, out)")
    return "\n".join(lines) + "\n"


def _backward_njit_source(entry):
    """Source of the backward's ``@overload`` typing function."""
    name = f"{entry.name}_backward"
    args = _backward_signature_source(entry)
    params = _tuple_source([p.name for p in _float_params(entry)])
    lines = [f"def _{name}_njit({args}, out=None):",
             f"    def impl({args}, out=None):"]
    for c in entry.checks:
        lines.append(f"        if {c.error_if}:")
        lines.append(f"            raise ValueError({c.njit_message!r})")
    lines += _choice_njit_lines(
        entry, f"map2_njit({{op}}, grad_output, {entry.residual}, {params}, out)", "_bop")
    lines.append("    return impl")
    return "\n".join(lines) + "\n"


def _make_backward(entry, module_name):
    """Generate ``nbops.<op>_backward`` and its ``@overload`` from ``entry.backward``."""
    name = f"{entry.name}_backward"
    nparams = len(_float_params(entry))
    ns = _namespace(entry)
    if isinstance(entry.backward, dict):  # one derivative core per choice
        entry.choice_backward_ops = {
            c: Op(name if c == entry.choice_param().default else f"{entry.name}_{c}_backward",
                  core, nparams) for c, core in entry.backward.items()}
        entry.backward = entry.backward[entry.choice_param().default]
        entry.backward_op = entry.choice_backward_ops[entry.choice_param().default]
        ns["_bop_ops"] = entry.choice_backward_ops
        ns.update({f"_bop_{i}": op for i, op in enumerate(entry.choice_backward_ops.values())})
    else:
        entry.backward_op = Op(name, entry.backward, nparams)
    ns.update({"binary": binary, "map2_njit": map2_njit, "_bop": entry.backward_op})
    function = _compile(_backward_function_source(entry), ns, name, f"<nbops.{name}>")
    function.__module__ = module_name
    function.__doc__ = compose_backward_docstring(entry)
    overload(function)(_compile(_backward_njit_source(entry), ns, f"_{name}_njit",
                                f"<nbops.{name} @njit>"))
    entry.backward_function = function


def backward_entries():
    """The elementwise entries with a generated ``nbops.<op>_backward`` (from a
    derivative core; the shared 2-input kernels)."""
    return [e for e in elementwise_entries() if e.backward_op is not None]


def backward_functions(family=None):
    """``{name: function}`` of every op's backward (of one ``family``), generated
    or written by hand (``nbops.relu_backward``, ``nbops.softmax_backward``, ...),
    and of the losses' fused ``<loss>_with_grad``, in table order."""
    functions = {}
    for e in entries(family):
        if e.backward_function is not None:
            functions[f"{e.name}_backward"] = e.backward_function
        if e.with_grad_function is not None:
            functions[f"{e.name}_with_grad"] = e.with_grad_function
    return functions


def elementwise(name, core, params=(), *, family="activation", inplace=False, checks=(),
                residual="input", backward=None, module=None, summary="", notes="", example="",
                plot_range=(-4.0, 4.0), function=None, samples=None, backward_samples=None,
                module_name=None):
    """Declare an elementwise op, register it and generate its function and overload.

    Parameters
    ----------
    name : str
        The op's name (``nbops.<name>``, ``torch.nn.functional.<name>``).
    core : function or dict
        Its scalar core ``core(x, *params)`` (float parameters only). Where a
        parameter is a ``choice`` (GELU's ``approximate``, at most one), a dict
        ``{choice: core}`` over its choices: the choice picks the core (and the
        compiled kernels), it is not passed to it.
    params : tuple of Param
    family : str
        The family module the op belongs to (the docs' section).
    inplace : bool
        Whether the op takes ``inplace=`` (as its PyTorch counterpart).
    checks : tuple of Check
    residual : {'input', 'output'}
        What its backward needs: the forward's input, or its output (the
        second argument of ``backward`` and of ``nbops.<name>_backward``).
    backward : function, optional
        Its derivative core ``backward(g, r, *params)`` (in
        :mod:`nbops.scalar.activations`): ``g`` times the derivative at the
        residual ``r``. From it ``nbops.<name>_backward(grad_output, <residual>,
        *params, *, out=None)`` and its ``@overload`` are generated. A dict
        ``{choice: backward}`` where ``core`` is one.
    module : Module or str, optional
        Its ``nbops.nn`` class: a :class:`Module` to generate, or the name of a
        hand-written one.
    summary, notes, example : str
        The docstring's pieces: the first line (with the formula) and any
        paragraph after it, the Notes section, the Examples section.
    plot_range : (float, float)
        The x range of the documentation's plot.
    function : function, optional
        A hand-written public function (prelu: its per-channel weight); the
        entry then generates neither the function nor the overload.
    samples : callable, optional
        ``samples(d)`` (see :class:`Entry`); default: one call with the
        required parameters' examples.
    backward_samples : callable, optional
        ``backward_samples(d)`` (see :class:`Entry`); default, where
        ``backward`` is given: one call of the generated backward on the
        gradient ``d.g`` and the residual ``d.x`` (input) or ``d.p`` (output),
        with the required parameters' examples.
    module_name : str, optional
        The ``__module__`` of the generated function (default: the family
        module ``nbops._ops.<family>``).

    Returns
    -------
    Elementwise
        The registered entry; ``entry.function`` is the public function.
    """
    entry = Elementwise(name=name, family=family, params=tuple(params), residual=residual,
                        module=module, inplace=inplace, core=core, checks=tuple(checks),
                        summary=summary, notes=notes, example=example, plot_range=plot_range,
                        samples=samples, backward=backward,
                        backward_samples=backward_samples)
    choice = entry.choice_param()
    nparams = len(_float_params(entry))
    if choice is not None:
        if function is not None or sum(p.kind == "choice" for p in entry.params) > 1:
            raise ValueError(f"{name}: a generated op takes at most one choice parameter")
        for cores in (core, backward):
            if cores is not None and (not isinstance(cores, dict)
                                      or tuple(cores) != tuple(choice.choices)):
                raise ValueError(f"{name}: core and backward must be dicts {{choice: core}} "
                                 f"over {choice.name}'s choices {choice.choices}")
        entry.choice_ops = {c: Op(name if c == choice.default else f"{name}_{c}", fn, nparams)
                            for c, fn in core.items()}
        entry.core = core[choice.default]
        entry.op = entry.choice_ops[choice.default]
    else:
        entry.op = Op(name, core, nparams)
    # the sample calls: one per choice (each compiles its own kernels)
    choices = [{}]
    if choice is not None:
        choices += [{choice.name: c} for c in choice.choices if c != choice.default]
    if entry.samples is None:
        entry.samples = lambda d, e=entry: [((d.x,) + e.required_args(), kw) for kw in choices]
    if entry.backward_samples is None and backward is not None:
        entry.backward_samples = lambda d, e=entry: [
            (e.backward_function,
             (d.g, d.x if e.residual == "input" else d.p) + e.required_args(), kw)
            for kw in choices]
    if function is None:
        for p in entry.params:
            if p.kind not in ("float", "int", "bool", "choice"):
                raise ValueError(f"{name}: a generated elementwise op takes scalar parameters "
                                 f"only ({p.name} is {p.kind})")
        ns = _namespace(entry)
        function = _compile(_function_source(entry), ns, name, f"<nbops.{name}>")
        function.__module__ = module_name or f"nbops._ops.{family}"
        function.__doc__ = compose_docstring(entry)
        overload(function)(_compile(_njit_source(entry), ns, f"_{name}_njit",
                                    f"<nbops.{name} @njit>"))
    if backward is not None:
        _make_backward(entry, module_name or f"nbops._ops.{family}")
    entry.function = function
    return register(entry)


def op(name, family, params=(), *, function, residual="input", module=None, samples=None,
       inplace=False, out=True, backward=None, with_grad=None, backward_samples=None):
    """Register an op whose implementation is written by hand (see :class:`Entry`);
    ``backward``/``with_grad``: its hand-written ``<name>_backward`` and (losses)
    ``<name>_with_grad``; ``backward_samples``: their sample calls (default for
    a loss with ``with_grad``: :func:`loss_backward_samples`)."""
    entry = Entry(name=name, family=family, params=tuple(params), residual=residual,
                  module=module, function=function, samples=samples, inplace=inplace,
                  out=out, backward_function=backward, with_grad_function=with_grad,
                  backward_samples=backward_samples)
    if backward_samples is None and with_grad is not None and samples is not None:
        entry.backward_samples = loss_backward_samples(entry)
    return register(entry)


# ------------------------------------------------------------ nbops.nn classes
def _module_init_source(entry):
    args = ["self"] + [p.name if p.required else f"{p.name}=_default_{p.name}"
                       for p in entry.params]
    if entry.inplace:
        args.append("inplace=False")
    lines = [f"def __init__({', '.join(args)}):", "    super(_cls, self).__init__()"]
    names = [p.name for p in entry.params] + (["inplace"] if entry.inplace else [])
    lines += [f"    self.{n} = {n}" for n in names]
    return "\n".join(lines) + "\n"


def _module_forward_source(entry):
    """``forward``: the op, and what its backward needs kept on the module's stack
    (nbops/nn/_module.py's ``Module._save_for_backward``): the output or the input
    (the entry's residual); an in-place call's input is overwritten, so then a copy
    of it made first (or the output, under ``Module.inplace_output_if``)."""
    args = "".join(f", self.{p.name}" for p in entry.params)
    lines = ["def forward(self, input):"]
    if entry.backward_function is None:  # no backward: nothing to keep
        if entry.inplace:
            args += ", inplace=self.inplace"
        return f"def forward(self, input):\n    return _fn(input{args})\n"
    if entry.inplace and entry.residual == "input":
        lines += ["    if self.inplace and _grad_enabled():"]
        cond = entry.module.inplace_output_if
        if cond:
            lines += [f"        if {cond}:",
                      f"            result = _fn(input{args}, inplace=True)",
                      "            self._save_for_backward(result)",
                      "            return result"]
        lines += ["        saved = _copy(input)",
                  f"        result = _fn(input{args}, inplace=True)",
                  "        self._save_for_backward(saved)",
                  "        return result"]
    if entry.inplace:
        args += ", inplace=self.inplace"
    lines += [f"    result = _fn(input{args})",
              f"    self._save_for_backward({'result' if entry.residual == 'output' else 'input'})",
              "    return result"]
    return "\n".join(lines) + "\n"


def module_backward_doc(how):
    """The docstring of an activation module's ``backward`` (``how``: its second sentence)."""
    return (f"The gradient of the latest forward's input, given ``grad_output``.\n\n{how}\n\n"
            "Parameters\n----------\ngrad_output : array\n"
            "    The gradient of the loss with respect to the latest forward's output.\n\n"
            "Returns\n-------\narray\n    The gradient with respect to that forward's input.\n")


def _module_backward_source(entry):
    """``backward``: the op's backward on the kept residual and the module's parameters."""
    args = "".join(f", self.{p.name}" for p in entry.params)
    return ("def backward(self, grad_output):\n"
            f"    return _bfn(grad_output, self._saved_for_backward(){args})\n")


def _extra_repr(entry):
    spec = entry.module.repr
    names = [p.name for p in entry.params]
    inplace = entry.inplace

    def extra_repr(self):
        if spec is not None:
            return spec.format(**{n: getattr(self, n) for n in names})
        text = ", ".join(f"{n}={getattr(self, n)}" for n in names)
        if inplace and self.inplace:
            text += ", inplace=True" if text else "inplace=True"
        return text

    return extra_repr


def _module_params_doc(entry):
    """The Parameters section of a generated class: the op's parameters and ``inplace``."""
    params = [p.doc_header() + ("\n" + _indent(p.doc) if p.doc else "") for p in entry.params]
    if entry.inplace:
        params.append(_INPLACE_DOC)
    if not params:  # the base class's constructor, as PyTorch's: takes no argument
        params.append("*args, **kwargs\n    None accepted (PyTorch's signature).")
    return "Parameters\n----------\n" + "\n".join(params)


def make_module_class(entry, base, module_name):
    """The ``nbops.nn`` class of ``entry`` (a plain wrapper), subclassing ``base``."""
    from .._grad import copy_array, is_grad_enabled

    spec = entry.module
    ns = {"_fn": entry.function, "_bfn": entry.backward_function,
          "_grad_enabled": is_grad_enabled, "_copy": copy_array}
    ns.update({f"_default_{p.name}": p.default for p in entry.params if not p.required})
    init = _compile(_module_init_source(entry), ns, "__init__", f"<nbops.nn.{spec.name}>")
    forward = _compile(_module_forward_source(entry), ns, "forward", f"<nbops.nn.{spec.name}>")
    doc = f"{spec.summary} (see :func:`nbops.{entry.name}`).\n\n" + _module_params_doc(entry)
    if spec.example:
        doc += "\n\nExamples\n--------\n" + inspect.cleandoc(spec.example)
    body = {"forward": forward, "__module__": module_name, "__doc__": doc}
    if entry.backward_function is not None:
        body["backward"] = _compile(_module_backward_source(entry), ns, "backward",
                                    f"<nbops.nn.{spec.name}>")
        body["backward"].__doc__ = module_backward_doc(
            f":func:`nbops.{entry.name}_backward` on the {entry.residual} the forward kept.")
    if entry.params or entry.inplace:  # else the base class's constructor, as PyTorch
        body["__init__"] = init
    if entry.params or entry.inplace or spec.repr is not None:
        body["extra_repr"] = _extra_repr(entry)
    cls = type(spec.name, (base,), body)
    cls.__qualname__ = spec.name
    ns["_cls"] = cls
    for fn in (init, forward, body.get("backward"), body.get("extra_repr")):
        if fn is not None:
            fn.__qualname__ = f"{spec.name}.{fn.__name__}"
    return cls


def module_classes(family, base, module_name):
    """``{class name: class}`` of the generated ``nbops.nn`` classes of ``family``."""
    return {e.module.name: make_module_class(e, base, module_name)
            for e in entries(family) if isinstance(e.module, Module)}


def public_names():
    """The names of the table's public functions (``nbops.__all__``'s ops): the
    entries', then the backwards' and the fused ``_with_grad``'s."""
    return list(TABLE) + list(backward_functions())


# ------------------------------------------------------------- pointwise losses
@dataclass
class PointwiseLoss(Entry):
    """A loss computed element by element, ``core(input_i, target_i, *params)``, then
    weighted and reduced (``nbops.l1_loss``, ``mse_loss``, ``smooth_l1_loss``, ...).

    ``legacy`` says whether the signature has PyTorch's deprecated
    ``size_average``/``reduce`` flags, ``weight`` whether it takes a per-element
    ``weight``; ``mean_divisor`` what its weighted ``'mean'`` divides by:
    ``'weight_sum'`` (``weight.sum()``: l1_loss, mse_loss) or ``'count'`` (the
    number of elements, the weights only rescale each term: huber_loss).
    """

    core: object = None
    op: Op = None
    checks: tuple = ()
    legacy: bool = True
    weight: bool = False
    mean_divisor: str = "weight_sum"
    #: The float parameters come right after ``target``, before the deprecated
    #: flags (PyTorch's order for ``hinge_embedding_loss(input, target, margin, ...)``).
    params_first: bool = False
    summary: str = ""
    notes: str = ""
    example: str = ""
    #: The derivative core ``backward(g, x, t, *params)`` (``g`` times the
    #: derivative of the unreduced loss) and its Op, from which
    #: ``backward_function`` and ``with_grad_function`` are generated.
    backward: object = None
    backward_op: Op = None


def pointwise_loss_entries():
    return [e for e in TABLE.values() if isinstance(e, PointwiseLoss)]


_LOSS_INPUTS_DOC = """input, target : array_like
    Any shapes that broadcast together (a ``UserWarning`` is issued when
    they differ, as PyTorch does: usually a mistake such as ``(N, 1)``
    against ``(N,)``). Shapes that do not broadcast raise ``ValueError``."""
_LEGACY_DOC = """size_average, reduce : bool, optional
    Deprecated (``DeprecationWarning``); when given they override
    ``reduction`` as in PyTorch."""
_REDUCTION_DOC = """reduction : {'mean', 'sum', 'none'}, default 'mean'
    ``'none'``: the array of losses (broadcast shape); ``'sum'``: their
    sum; ``'mean'``: the sum divided by the number of elements"""
_WEIGHT_DOC = """weight : array_like, optional
    Per-element weights of exactly ``input``'s shape."""
_LOSS_RETURNS_DOC = """Returns
-------
ndarray or NumPy scalar
    ``reduction='none'``: the elementwise losses (the broadcast shape);
    otherwise a NumPy scalar of the computation dtype (float32 stays
    float32)."""
_MODULE_LEGACY_DOC = """size_average, reduce : bool, optional
    PyTorch's deprecated flags: either one, when given, sets ``reduction``
    (with a ``DeprecationWarning``)."""
_MODULE_REDUCTION_DOC = """reduction : {'mean', 'sum', 'none'}, default 'mean'
    How the elementwise losses are reduced (checked when the loss is computed)."""


def _param_docs(entry):
    return [p.doc_header() + ("\n" + _indent(p.doc) if p.doc else "") for p in entry.params]


def _in_signature_order(entry, head, flags):
    """``head``, the parameters' docs and ``flags`` (the legacy flags and
    ``reduction``) in the order of the loss's signature (``entry.params_first``)."""
    if entry.params_first:
        return head + _param_docs(entry) + flags
    return head + flags + _param_docs(entry)


def compose_loss_docstring(entry):
    """The numpydoc docstring of a pointwise loss, from its entry."""
    if entry.weight and entry.mean_divisor == "weight_sum":
        reduction = _REDUCTION_DOC + (", or by ``weight.sum()`` when ``weight`` is given\n"
                                      "    (a weighted mean).")
    elif entry.weight:
        reduction = _REDUCTION_DOC + (", also with ``weight`` (which only rescales\n"
                                      "    each term).")
    else:
        reduction = _REDUCTION_DOC + "."
    params = _in_signature_order(entry, [_LOSS_INPUTS_DOC],
                                 ([_LEGACY_DOC] if entry.legacy else []) + [reduction])
    params += [_WEIGHT_DOC] if entry.weight else []
    parts = [inspect.cleandoc(entry.summary),
             "Parameters\n----------\n" + "\n".join(params), _LOSS_RETURNS_DOC]
    if entry.notes:
        parts.append("Notes\n-----\n" + inspect.cleandoc(entry.notes))
    if entry.example:
        parts.append("Examples\n--------\n" + inspect.cleandoc(entry.example))
    return "\n\n".join(parts) + "\n"


def _loss_signature_source(entry):
    """``input, target, size_average=None, reduce=None, reduction="mean", beta=...``."""
    args = ["input", "target"]
    params = [f"{p.name}=_default_{p.name}" for p in entry.params]
    if entry.params_first:
        args += params
    if entry.legacy:
        args += ["size_average=None", "reduce=None"]
    args.append('reduction="mean"')
    if not entry.params_first:
        args += params
    if entry.weight:
        args.append("weight=None")
    return ", ".join(args)


def _loss_call_args(entry):
    """``size_average, reduce, reduction, weight`` as the shared drivers take them
    (and ``weight_sum=False`` where the weighted mean divides by the count)."""
    legacy = "size_average, reduce" if entry.legacy else "None, None"
    count = ", weight_sum=False" if entry.mean_divisor == "count" else ""
    return f"{legacy}, reduction, {'weight' if entry.weight else 'None'}{count}"


def _loss_function_source(entry):
    """Source of a pointwise loss: parameter conversions and checks, then the drivers
    of nbops/_ops/losses.py (CPU) or nbops/cuda/_ops.py (CUDA device arrays)."""
    lines = [f"def {entry.name}({_loss_signature_source(entry)}):"]
    lines += [f"    {p.name} = {_convert_source(p)}" for p in entry.params]
    for c in entry.checks:
        lines.append(f"    if {c.error_if}:")
        lines.append(f"        raise ValueError(f{c.message!r})")
    params = _tuple_source([p.name for p in entry.params])
    lines.append("    if type(input) is not _ndarray and _is_device_array(input):")
    lines.append(f"        return _cuda().pointwise_loss(_entry, {params}, input, target, "
                 f"{_loss_call_args(entry)})")
    lines.append(f"    return _regression(_op, {params}, input, target, "
                 f"{_loss_call_args(entry)})")
    return "\n".join(lines) + "\n"


def _loss_njit_source(entry):
    """Source of a pointwise loss's ``@overload`` typing function."""
    args = _loss_signature_source(entry)
    params = _tuple_source([p.name for p in entry.params])
    weight = "weight" if entry.weight else "None"
    lines = [f"def _{entry.name}_njit({args}):",
             f"    body = _nj_loss(_op, input, target, {_loss_call_args(entry)})",
             f"    def impl({args}):"]
    for c in entry.checks:
        lines.append(f"        if {c.error_if}:")
        lines.append(f"            raise ValueError({c.njit_message!r})")
    lines.append(f"        return body(input, target, {weight}, {params})")
    lines.append("    return impl")
    return "\n".join(lines) + "\n"


_LOSS_GRAD_OUTPUT_DOC = """grad_output : float or array_like
    The gradient of the forward's output: a real scalar (or 0-d array) for
    ``'mean'``/``'sum'``, a float array of the unreduced loss's (broadcast)
    shape for ``'none'``."""
_LOSS_BACKWARD_OUT_DOC = """out : ndarray, optional
    Array of ``input``'s shape and the result dtype to write into (keyword-only)."""
_LOSS_BACKWARD_RETURNS_DOC = """Returns
-------
ndarray
    The gradient of ``input``: ``input``'s shape (summed over the axes along
    which it was broadcast against ``target``), the common float dtype of the
    arguments (float32 stays float32)."""
_LOSS_WITH_GRAD_RETURNS_DOC = """Returns
-------
loss : NumPy scalar or ndarray
    Exactly what the forward returns for these arguments.
grad_input : ndarray
    The gradient of ``loss`` with respect to ``input`` (as the backward with
    ``grad_output=1.0``); for ``reduction='none'``, the gradient of the sum of
    the losses (``grad_output`` all ones)."""


def _loss_backward_params_doc(entry):
    if entry.weight and entry.mean_divisor == "weight_sum":
        reduction = ("    The forward's; ``'mean'`` divides by ``weight.sum()`` when ``weight``\n"
                     "    is given.")
    else:
        reduction = "    The forward's; ``'mean'`` divides by the number of elements."
    flags = ([_LEGACY_DOC] if entry.legacy else [])
    flags.append("reduction : {'mean', 'sum', 'none'}, default 'mean'\n" + reduction)
    params = _in_signature_order(entry, [_LOSS_INPUTS_DOC], flags)
    return params + ([_WEIGHT_DOC] if entry.weight else [])


def _loss_grad_notes(entry):
    core_doc = inspect.cleandoc(entry.backward.__doc__ or "").split("\n\n")[0]
    core_doc = core_doc.replace("Derivative core of", "The derivative of", 1)
    return (f"{core_doc}\n\nElement by element, by :func:`nbops.scalar.{entry.name}_backward`,\n"
            "with ``g`` the gradient of the element's loss (``grad_output`` divided by\n"
            "the ``'mean'`` divisor), times the weight. Same as what ``torch.autograd``\n"
            f"computes for ``torch.nn.functional.{entry.name}``, at the kinks too.")


def compose_loss_backward_docstring(entry):
    """The numpydoc docstring of ``nbops.<loss>_backward``, from the entry."""
    summary = (f"Backward of :func:`nbops.{entry.name}`: the gradient of its input, given "
               "``grad_output`` and the forward's arguments.")
    params = [_LOSS_GRAD_OUTPUT_DOC] + _loss_backward_params_doc(entry)
    params.append(_LOSS_BACKWARD_OUT_DOC)
    example = ("\n>>> x = np.array([1.0, 2.0, 4.0])\n>>> y = np.array([1.5, 2.0, 2.0])\n"
               f">>> nbops.{entry.name}_backward(1.0, x, y).shape\n(3,)")
    parts = [summary, "Parameters\n----------\n" + "\n".join(params),
             _LOSS_BACKWARD_RETURNS_DOC, "Notes\n-----\n" + _loss_grad_notes(entry),
             "Examples\n--------" + example]
    return "\n\n".join(parts) + "\n"


def compose_loss_with_grad_docstring(entry):
    """The numpydoc docstring of ``nbops.<loss>_with_grad``, from the entry."""
    summary = (f"The value of :func:`nbops.{entry.name}` and the gradient of its input, "
               "from one pass over ``input`` and ``target``.")
    notes = ("One kernel computes the losses (summed as the forward sums them, so the\n"
             "value is the forward's) and writes the gradient; see\n"
             f":func:`nbops.{entry.name}_backward` for the gradient.")
    example = ("\n>>> x = np.array([1.0, 2.0, 4.0])\n>>> y = np.array([1.5, 2.0, 2.0])\n"
               f">>> loss, grad = nbops.{entry.name}_with_grad(x, y)\n"
               f">>> bool(loss == nbops.{entry.name}(x, y))\nTrue")
    parts = [summary, "Parameters\n----------\n" + "\n".join(_loss_backward_params_doc(entry)),
             _LOSS_WITH_GRAD_RETURNS_DOC, "Notes\n-----\n" + notes,
             "Examples\n--------" + example]
    return "\n\n".join(parts) + "\n"


def _loss_backward_source(entry):
    """Sources of ``<loss>_backward`` and ``<loss>_with_grad``: the forward's
    conversions and checks, then the drivers of nbops/_ops/losses.py (CPU) or
    nbops/cuda/_ops.py (CUDA device arrays)."""
    args = _loss_signature_source(entry)
    params = _tuple_source([p.name for p in entry.params])
    head = [f"    {p.name} = {_convert_source(p)}" for p in entry.params]
    for c in entry.checks:
        head.append(f"    if {c.error_if}:")
        head.append(f"        raise ValueError(f{c.message!r})")
    call = _loss_call_args(entry)
    backward = [f"def {entry.name}_backward(grad_output, {args}, *, out=None):", *head,
                "    if type(input) is not _ndarray and _is_device_array(input):",
                f"        return _cuda().pointwise_loss_backward(_entry, {params}, grad_output, "
                f"input, target, {call}, out=out)",
                f"    return _regression_backward(_op, _gop, {params}, grad_output, input, "
                f"target, {call}, out=out)"]
    with_grad = [f"def {entry.name}_with_grad({args}):", *head,
                 "    if type(input) is not _ndarray and _is_device_array(input):",
                 f"        return _cuda().pointwise_loss_with_grad(_entry, {params}, input, "
                 f"target, {call})",
                 f"    return _regression_with_grad(_op, _gop, {params}, input, target, {call})"]
    return "\n".join(backward) + "\n", "\n".join(with_grad) + "\n"


def _loss_backward_njit_source(entry):
    """Sources of the ``@overload`` typing functions of ``<loss>_backward`` and
    ``<loss>_with_grad``."""
    args = _loss_signature_source(entry)
    params = _tuple_source([p.name for p in entry.params])
    weight = "weight" if entry.weight else "None"
    checks = []
    for c in entry.checks:
        checks.append(f"        if {c.error_if}:")
        checks.append(f"            raise ValueError({c.njit_message!r})")
    bodies = f"_nj_regression_grad(_op, _gop, input, target, {_loss_call_args(entry)})"
    backward = [f"def _{entry.name}_backward_njit(grad_output, {args}, out=None):",
                f"    body = {bodies}[0]",
                f"    def impl(grad_output, {args}, out=None):", *checks,
                f"        return body(grad_output, input, target, {weight}, None, {params}, out)",
                "    return impl"]
    with_grad = [f"def _{entry.name}_with_grad_njit({args}):",
                 f"    body = {bodies}[1]",
                 f"    def impl({args}):", *checks,
                 f"        return body(input, target, {weight}, None, {params})",
                 "    return impl"]
    return "\n".join(backward) + "\n", "\n".join(with_grad) + "\n"


def _make_loss_backward(entry, ns):
    """Generate ``nbops.<loss>_backward``, ``nbops.<loss>_with_grad`` and their
    ``@overload``s from ``entry.backward``."""
    from . import losses
    from . import njit_args as NJ

    name = entry.name
    entry.backward_op = Op(f"loss.{name}_backward", entry.backward, len(entry.params))
    ns.update({"_gop": entry.backward_op, "_regression_backward": losses._regression_backward,
               "_regression_with_grad": losses._regression_with_grad,
               "_nj_regression_grad": losses._nj_regression_grad})
    backward, with_grad = _loss_backward_source(entry)
    backward = _compile(backward, ns, f"{name}_backward", f"<nbops.{name}_backward>")
    with_grad = _compile(with_grad, ns, f"{name}_with_grad", f"<nbops.{name}_with_grad>")
    backward.__doc__ = compose_loss_backward_docstring(entry)
    with_grad.__doc__ = compose_loss_with_grad_docstring(entry)
    for fn, source in zip((backward, with_grad), _loss_backward_njit_source(entry), strict=True):
        fn.__module__ = "nbops._ops.losses"
        typer = _compile(source, ns, f"_{fn.__name__}_njit", f"<nbops.{fn.__name__} @njit>")
        overload(fn, prefer_literal=True)(NJ.plan_errors_at_run_time(typer))
    entry.backward_function = backward
    entry.with_grad_function = with_grad


def pointwise_loss(name, core, params=(), *, legacy=True, weight=False,
                   mean_divisor="weight_sum", checks=(), backward=None, module=None,
                   summary="", notes="", example="", samples=None, params_first=False):
    """Declare a pointwise loss, register it and generate its function and overload.

    Parameters
    ----------
    name : str
        The loss's name (``nbops.<name>``, ``torch.nn.functional.<name>``).
    core : function
        Its scalar core ``core(x, t, *params)`` (in :mod:`nbops.scalar.losses`;
        at most one float parameter).
    params : tuple of Param
        Its float parameters, placed after ``reduction`` as in PyTorch.
    legacy : bool
        The signature has the deprecated ``size_average``/``reduce`` flags.
    weight : bool
        The signature ends with a per-element ``weight=None``.
    mean_divisor : {'weight_sum', 'count'}
        What the weighted ``'mean'`` divides by (see :class:`PointwiseLoss`).
    checks : tuple of Check
    backward : function, optional
        Its derivative core ``backward(g, x, t, *params)`` (in
        :mod:`nbops.scalar.losses`): ``g`` times the derivative of the
        unreduced loss at ``x``, with PyTorch autograd's convention at any
        kink. From it ``nbops.<name>_backward(grad_output, input, target, ...,
        *, out=None)``, ``nbops.<name>_with_grad(input, target, ...)`` and their
        ``@overload``s are generated.
    module : Module, optional
        Its ``nbops.nn`` class (generated by :func:`loss_module_classes`).
    summary, notes, example : str
        The docstring's pieces (see :func:`elementwise`).
    samples : callable, optional
        ``samples(d)`` (see :class:`Entry`); default: input ``d.x``, target ``d.p``.
        The backward's sample calls are made from them
        (:func:`loss_backward_samples`).
    params_first : bool
        The parameters come right after ``target``, before ``size_average``
        (in the function and in the nn class's constructor), as in PyTorch's
        ``hinge_embedding_loss``.

    Returns
    -------
    PointwiseLoss
        The registered entry; ``entry.function`` is the public function.
    """
    import numpy as np

    from .._validate import is_device_array
    from ..cuda import ops as cuda_ops
    from . import losses  # the drivers (losses.py declares its entries at its end)
    from . import njit_args as NJ

    entry = PointwiseLoss(name=name, family="losses", params=tuple(params),
                          residual=("input", "target"), module=module, core=core,
                          checks=tuple(checks), legacy=legacy, weight=weight,
                          mean_divisor=mean_divisor, params_first=params_first,
                          summary=summary,
                          notes=notes, example=example, backward=backward,
                          samples=samples or (lambda d: [((d.x, d.p), {})]))
    if mean_divisor not in ("weight_sum", "count"):
        raise ValueError(f"{name}: mean_divisor must be 'weight_sum' or 'count'")
    if any(p.kind != "float" for p in entry.params) or len(entry.params) > 1:
        raise ValueError(f"{name}: a pointwise loss takes at most one float parameter")
    entry.op = Op(f"loss.{name}", core, len(entry.params))
    ns = {"as_param": as_param, "_op": entry.op, "_entry": entry, "_ndarray": np.ndarray,
          "_is_device_array": is_device_array, "_cuda": cuda_ops,
          "_regression": losses._regression, "_nj_loss": losses._nj_loss,
          "_target_grows_input": losses.target_grows_input, "_np_shape": np.shape}
    ns.update({f"_default_{p.name}": p.default for p in entry.params})
    function = _compile(_loss_function_source(entry), ns, name, f"<nbops.{name}>")
    function.__module__ = "nbops._ops.losses"
    function.__doc__ = compose_loss_docstring(entry)
    typer = _compile(_loss_njit_source(entry), ns, f"_{name}_njit", f"<nbops.{name} @njit>")
    overload(function, prefer_literal=True)(NJ.plan_errors_at_run_time(typer))
    entry.function = function
    if backward is not None:
        _make_loss_backward(entry, ns)
        entry.backward_samples = loss_backward_samples(entry)
    return register(entry)


def make_loss_module_class(entry, base, module_name):
    """The ``nbops.nn`` class of a pointwise loss, subclassing ``base`` (whose
    constructor takes ``size_average, reduce, reduction`` and handles the flags)."""
    spec = entry.module
    ns = {"_fn": entry.function}
    ns.update({f"_default_{p.name}": p.default for p in entry.params})
    params = [f"{p.name}=_default_{p.name}" for p in entry.params]
    args = ["self"] + (params if entry.params_first else [])
    args += (["size_average=None", "reduce=None"] if entry.legacy else [])
    args += ['reduction="mean"'] + ([] if entry.params_first else params)
    flags = "size_average, reduce" if entry.legacy else "None, None"
    init = [f"def __init__({', '.join(args)}):",
            f"    super(_cls, self).__init__({flags}, reduction)"]
    init += [f"    self.{p.name} = {p.name}" for p in entry.params]
    call = "".join(f", {p.name!r}: self.{p.name}" for p in entry.params)
    # forward and backward through the base's _loss_forward/_loss_backward
    # (nbops/nn/loss.py): the loss and its gradient in one pass, kept for backward
    options = ("def _loss_options(self):\n"
               f"    return {{'reduction': self.reduction{call}}}\n")
    forward = ("def forward(self, input, target):\n"
               "    return self._loss_forward(_fn, _wg, input, target, "
               "**self._loss_options())\n")
    filename = f"<nbops.nn.{spec.name}>"
    ns.update({"_wg": entry.with_grad_function})
    init = _compile("\n".join(init) + "\n", ns, "__init__", filename)
    options = _compile(options, ns, "_loss_options", filename)
    forward = _compile(forward, ns, "forward", filename)
    params = _in_signature_order(
        entry, [], ([_MODULE_LEGACY_DOC] if entry.legacy else []) + [_MODULE_REDUCTION_DOC])
    doc = (f"{spec.summary} (see :func:`nbops.{entry.name}`).\n\n"
           "Parameters\n----------\n" + "\n".join(params))
    if spec.example:
        doc += "\n\nExamples\n--------\n" + inspect.cleandoc(spec.example)
    cls = type(spec.name, (base,), {"__init__": init, "forward": forward,
                                    "_loss_options": options,
                                    "_bfn": staticmethod(entry.backward_function),
                                    "__module__": module_name, "__doc__": doc})
    cls.__qualname__ = spec.name
    ns["_cls"] = cls
    for fn in (init, forward, options):
        fn.__qualname__ = f"{spec.name}.{fn.__name__}"
    return cls


def loss_module_classes(base, module_name):
    """``{class name: class}`` of the generated ``nbops.nn`` pointwise-loss classes."""
    return {e.module.name: make_loss_module_class(e, base, module_name)
            for e in pointwise_loss_entries() if isinstance(e.module, Module)}


# ------------------------------------------------------------------ row ops
@dataclass
class RowOp(Entry):
    """An op along an axis of the log-sum-exp row family (``nbops.softmax``,
    ``log_softmax``, ``softmin``): its :class:`~nbops.scalar.rows.RowCore` (the
    math, in ``nbops/scalar/rows.py``) applied to ``sgn * input``."""

    core: object = None
    sgn: int = 1
    summary: str = ""
    notes: str = ""
    example: str = ""
    #: the Notes paragraph of its backward (the formula)
    backward_formula: str = ""


def row_op_entries():
    return [e for e in TABLE.values() if isinstance(e, RowOp)]


# The sections every row op shares, written once.
_ROW_PARAMS_DOC = """input : array_like
    Any shape, any memory layout. 0-d arrays count as one element.
axis : int, default -1
    The axis to normalize over. ``dim=`` is accepted as an alias (PyTorch).
dtype : dtype, optional
    As PyTorch's ``dtype=``: the input is cast to this float dtype first
    and the result has it (e.g. ``float64`` for a float32 input).
dim : int, optional
    PyTorch's name for ``axis`` (keyword-only); give one or the other.
out : ndarray, optional
    Array of the result's shape and dtype to write into (may be ``input``)."""
_ROW_RETURNS_DOC = """Returns
-------
ndarray
    Same shape as ``input``; float32 stays float32, integers give float64.
    Rows that are all -inf, or hold +inf or NaN, are NaN (as in PyTorch)."""
_ROW_MODULE_PARAMS_DOC = """Parameters
----------
dim : int, optional
    The axis; ``None`` picks it as PyTorch does (with its warning)."""

#: The signature of every row op (PyTorch's, with ``axis`` as NumPy's name of ``dim``).
_ROW_SIGNATURE = "input, axis=-1, dtype=None, *, dim=None, out=None"


def compose_row_docstring(entry):
    """The numpydoc docstring of a row op, from its entry."""
    parts = [inspect.cleandoc(entry.summary), "Parameters\n----------\n" + _ROW_PARAMS_DOC,
             _ROW_RETURNS_DOC]
    if entry.notes:
        parts.append("Notes\n-----\n" + inspect.cleandoc(entry.notes))
    if entry.example:
        parts.append("Examples\n--------\n" + inspect.cleandoc(entry.example))
    return "\n\n".join(parts) + "\n"


def _row_function_source(entry):
    """Source of a row op: CUDA device arrays to nbops/cuda/_ops.py's row_op, anything
    else to the CPU driver of nbops/_ops/softmax.py."""
    return (f"def {entry.name}({_ROW_SIGNATURE}):\n"
            "    if type(input) is not _ndarray:\n"
            "        if _is_device_array(input):\n"
            "            return _cuda().row_op(_entry, input, axis, dtype, dim, out)\n"
            "        if _is_dask_array(input):\n"
            f"            return _dask().dispatch({entry.name!r}, (input,), dict(\n"
            "                axis=axis, dtype=dtype, dim=dim, out=out))\n"
            "    return _along_axis(input, axis, dtype, dim, out, _core, _sgn)\n")


def _row_njit_source(entry):
    """Source of a row op's ``@overload`` typing function."""
    return (f"def _{entry.name}_njit(input, axis=-1, dtype=None, dim=None, out=None):\n"
            "    return _axis_njit(_core, _sgn, input, axis, dtype, dim, out)\n")


_ROW_BACKWARD_SIGNATURE = "grad_output, output, axis=-1, *, dim=None, out=None"
_ROW_BACKWARD_PARAMS_DOC = """grad_output : array_like
    The gradient of the forward's output: a float array of its shape.
output : array_like
    The forward's output: a float array of ``grad_output``'s shape.
axis : int, default -1
    The forward's axis. ``dim=`` is accepted as an alias (PyTorch).
dim : int, optional
    PyTorch's name for ``axis`` (keyword-only); give one or the other.
out : ndarray, optional
    Array of the result's shape and dtype to write into (may be
    ``grad_output`` or ``output``)."""
_ROW_BACKWARD_RETURNS_DOC = """Returns
-------
ndarray
    The gradient of the forward's input: ``grad_output``'s shape, the
    common float dtype of ``grad_output`` and ``output`` (float32 stays
    float32)."""


def compose_row_backward_docstring(entry):
    """The numpydoc docstring of a row op's backward, from its entry."""
    summary = (f"Backward of :func:`nbops.{entry.name}`: the gradient of its input, "
               "given ``grad_output`` and its output.")
    notes = (inspect.cleandoc(entry.backward_formula) + "\n\n"
             "The row sum is accumulated in float64 (float32 elements are summed in\n"
             "blocks, as the forward's sums). Same as what ``torch.autograd`` computes\n"
             f"for ``torch.nn.functional.{entry.name}``.")
    example = (f">>> y = nbops.{entry.name}(np.array([[1.0, 2.0, 3.0]]), axis=1)\n"
               f">>> g = nbops.{entry.name}_backward(np.array([[1.0, 0.0, 0.0]]), y, axis=1)\n"
               ">>> g.shape\n(1, 3)")
    parts = [summary, "Parameters\n----------\n" + _ROW_BACKWARD_PARAMS_DOC,
             _ROW_BACKWARD_RETURNS_DOC, "Notes\n-----\n" + notes, "Examples\n--------\n" + example]
    return "\n\n".join(parts) + "\n"


def _row_backward_source(entry):
    """Source of a row op's backward: CUDA device arrays to nbops/cuda/_ops.py's
    row_backward, dask arrays to nbops/_dask.py's softmax_family_backward, anything
    else to the CPU driver of nbops/_ops/softmax.py."""
    return (f"def {entry.name}_backward({_ROW_BACKWARD_SIGNATURE}):\n"
            "    if type(grad_output) is not _ndarray:\n"
            "        if _is_device_array(grad_output):\n"
            "            return _cuda().row_backward(_entry, grad_output, output, axis, dim, out)\n"
            "        if _is_dask_array(grad_output):\n"
            "            return _dask().softmax_family_backward(\n"
            f"                {entry.name!r}, grad_output, output, axis, dim, out)\n"
            "    elif type(output) is not _ndarray and _is_dask_array(output):\n"
            "        return _dask().softmax_family_backward(\n"
            f"            {entry.name!r}, grad_output, output, axis, dim, out)\n"
            "    return _grad_along_axis(grad_output, output, axis, dim, out, _core, _sgn)\n")


def _row_backward_njit_source(entry):
    """Source of a row op's backward ``@overload`` typing function."""
    return (f"def _{entry.name}_backward_njit(grad_output, output, axis=-1, dim=None, "
            "out=None):\n"
            "    return _grad_njit(_core, _sgn, grad_output, output, axis, dim, out)\n")


def row_op(name, core, *, sgn=1, module=None, summary="", notes="", example="",
           samples=None, backward_formula=""):
    """Declare a row op, register it and generate its function and overload.

    Parameters
    ----------
    name : str
        The op's name (``nbops.<name>``, ``torch.nn.functional.<name>``).
    core : RowCore
        Its math (:class:`nbops.scalar.rows.RowCore`).
    sgn : {1, -1}
        The op is ``core`` applied to ``sgn * input`` (softmin: -1).
    module : Module, optional
        Its ``nbops.nn`` class (constructor ``dim=None``, generated by
        :func:`row_module_classes`).
    summary, notes, example : str
        The docstring's pieces (see :func:`elementwise`).
    samples : callable, optional
        ``samples(d)`` (see :class:`Entry`); default: the 2-D sample ``d.x2``.
        The backward's sample call: gradient ``d.g2`` and output ``d.p2``.
    backward_formula : str, optional
        The Notes paragraph of ``nbops.<name>_backward`` (its formula). Where
        the core has its backward (``grad_term``, ``grad_value``), that
        function and its ``@overload`` are generated (``entry.backward_function``).

    Returns
    -------
    RowOp
        The registered entry; ``entry.function`` is the public function.
    """
    import numpy as np

    from .._validate import dask_ops, is_dask_array, is_device_array
    from ..cuda import ops as cuda_ops
    from . import njit_args as NJ
    from . import softmax  # the driver (softmax.py declares its entries at its end)

    if sgn not in (1, -1):
        raise ValueError(f"{name}: sgn must be 1 or -1")
    params = (Param("axis", -1, kind="int"), Param("dtype", None, kind="object"),
              Param("dim", None, kind="int"))
    entry = RowOp(name=name, family="softmax", params=params, residual="output",
                  module=module, core=core, sgn=sgn, summary=summary, notes=notes,
                  example=example, samples=samples or (lambda d: [((d.x2,), {})]))
    ns = {"_ndarray": np.ndarray, "_is_device_array": is_device_array, "_cuda": cuda_ops,
          "_is_dask_array": is_dask_array, "_dask": dask_ops, "_entry": entry, "_core": core,
          "_sgn": sgn, "_along_axis": softmax._along_axis,
          "_axis_njit": softmax._axis_njit}
    function = _compile(_row_function_source(entry), ns, name, f"<nbops.{name}>")
    function.__module__ = "nbops._ops.softmax"
    function.__doc__ = compose_row_docstring(entry)
    typer = _compile(_row_njit_source(entry), ns, f"_{name}_njit", f"<nbops.{name} @njit>")
    overload(function)(NJ.plan_errors_at_run_time(typer))
    entry.function = function
    if core.grad_value is not None:
        entry.backward_formula = backward_formula
        ns.update({"_grad_along_axis": softmax._grad_along_axis,
                   "_grad_njit": softmax._grad_njit})
        bname = f"{name}_backward"
        backward = _compile(_row_backward_source(entry), ns, bname, f"<nbops.{bname}>")
        backward.__module__ = "nbops._ops.softmax"
        backward.__doc__ = compose_row_backward_docstring(entry)
        typer = _compile(_row_backward_njit_source(entry), ns, f"_{bname}_njit",
                         f"<nbops.{bname} @njit>")
        overload(backward)(NJ.plan_errors_at_run_time(typer))
        entry.backward_function = backward
        entry.backward_samples = lambda d: [(backward, (d.g2, d.p2), {})]
    return register(entry)


def make_row_module_class(entry, base, module_name):
    """The ``nbops.nn`` class of a row op, subclassing ``base`` (whose constructor
    takes ``dim=None`` and whose ``forward`` calls ``_fn`` along it, choosing
    PyTorch's implicit axis for ``dim=None``)."""
    spec = entry.module
    doc = f"{spec.summary} (see :func:`nbops.{entry.name}`).\n\n" + _ROW_MODULE_PARAMS_DOC
    if spec.example:
        doc += "\n\nExamples\n--------\n" + inspect.cleandoc(spec.example)
    cls = type(spec.name, (base,), {"_fn": staticmethod(entry.function),
                                    "_bfn": staticmethod(entry.backward_function),
                                    "_name": entry.name,
                                    "__module__": module_name, "__doc__": doc})
    cls.__qualname__ = spec.name
    return cls


def row_module_classes(base, module_name):
    """``{class name: class}`` of the generated ``nbops.nn`` row-op classes."""
    return {e.module.name: make_row_module_class(e, base, module_name)
            for e in row_op_entries() if isinstance(e.module, Module)}
