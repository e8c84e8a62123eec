"""How the ``@njit`` overloads read their options with the plans of :mod:`.plan`.

Options that decide the result's type (``reduction``, the legacy
``size_average``/``reduce`` flags) are compile-time constants inside
``@njit`` code: an overload reads them here at typing time and computes the
same plan as the CPU driver. A value the plan rejects does not fail the
compilation: the overload compiles to a function that raises the plan's
exception (same type, same message) when it is called, as the CPU path raises
when it is called.
"""

import functools
import inspect

import numpy as np
from numba import types
from numba.core import errors
from numba.extending import register_jitable

from . import plan as P


def is_none(value):
    """True for an argument that is None (absent, defaulted or ``None`` itself)."""
    if not isinstance(value, types.Type):  # an omitted argument's default
        return value is None
    if isinstance(value, types.Omitted):
        return value.value is None
    return isinstance(value, types.NoneType)


def literal(value, name):
    """The Python value of an argument fixed at compile time (None if absent)."""
    if value is None or isinstance(value, types.NoneType):
        return None
    if not isinstance(value, types.Type):  # an omitted argument's default
        return value
    if isinstance(value, types.Omitted):
        return value.value
    if isinstance(value, types.Literal):
        return value.literal_value
    raise errors.TypingError(f"nbops: inside @njit code, {name} must be a constant "
                             f"(a literal), got a value of type {value}")


#: Read by the raising implementations: a condition Numba cannot prune.
_ALWAYS = np.ones(1, np.bool_)


def raising_impl(typer, exc):
    """An implementation with ``typer``'s signature that raises ``exc`` (its type and
    message) when called: a plan's error, raised at run time as on the CPU path.

    It is typed as returning a float (after the raise, never reached), so that
    the caller's code around the call (``loss * 2``) still compiles and the
    error is the plan's when the function runs.
    """
    params = inspect.signature(typer).parameters.values()
    src = (f"def impl({', '.join(p.name for p in params)}):\n"
           "    if _always[0]:\n"
           "        raise _exc(_msg)\n"
           "    return 0.0\n")
    namespace = {"_exc": type(exc), "_msg": str(exc), "_always": _ALWAYS}
    exec(src, namespace)
    impl = namespace["impl"]
    impl.__defaults__ = tuple(p.default for p in params if p.default is not p.empty) or None
    return impl


class DeferredError(Exception):
    """A plan's error found at typing time, to be raised when the function runs."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def deferred(plan_function, *args, **kwargs):
    """``plan_function(*args, **kwargs)``, its ValueError or TypeError turned into a
    :class:`DeferredError` (which :func:`plan_errors_at_run_time` turns into an
    implementation that raises it)."""
    try:
        return plan_function(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise DeferredError(exc) from None


def plan_errors_at_run_time(typer):
    """Decorate an overload's typing function: a :class:`DeferredError` it raises
    gives an implementation (of ``typer``'s signature) raising the plan's error."""
    @functools.wraps(typer)
    def wrapper(*args, **kwargs):
        try:
            return typer(*args, **kwargs)
        except DeferredError as exc:
            return raising_impl(typer, exc.error)

    return wrapper


def reduction_plan(size_average, reduce, reduction, batchmean=False):
    """The :class:`~.plan.ReductionPlan` of literal arguments (an invalid one raises
    :class:`DeferredError`).

    The legacy flags' ``DeprecationWarning`` is issued when the function
    compiles (not on every call: compiled code issues no warnings).
    """
    plan = deferred(P.reduction_plan, literal(reduction, "reduction"),
                    literal(size_average, "size_average"), literal(reduce, "reduce"),
                    batchmean=batchmean)
    plan.warn(stacklevel=2)
    return plan


def loss_grad_factor(mode, name):
    """``factor(grad_output, rows) -> (g, c)`` of a row loss's njit backward.

    ``mode`` is the reduction plan's mode. With ``'none'``, ``g`` is
    ``grad_output`` flattened (one gradient per row; a size other than ``rows``
    raises ``ValueError`` naming ``name``) and ``c`` is 1. With ``'mean'`` or
    ``'sum'``, ``g`` is ``np.ones(1)`` (one factor for every row: kernels read
    ``g[0]`` when ``g.size`` is not ``rows``) and ``c`` is ``grad_output``,
    divided by ``rows`` for ``'mean'`` (NaN for no rows, as PyTorch's mean of
    nothing).
    """
    message = (f"nbops: {name}: grad_output must have the shape of the per-sample "
               "losses (reduction='none')")

    def per_row(grad_output, rows):
        g = np.ascontiguousarray(np.asarray(grad_output)).reshape(-1)
        if g.size != rows:
            raise ValueError(message)
        return g, 1.0

    def one_factor(grad_output, rows):
        c = float(grad_output)
        if mode == "mean":
            c = c / rows if rows else np.nan
        return np.ones(1), c

    return register_jitable(per_row if mode == "none" else one_factor)
