"""``Module`` and ``Sequential``: a small, PyTorch-compatible module base on NumPy arrays.

A module keeps three ordered registries, as ``torch.nn.Module`` does: parameters
(``_parameters``), buffers (``_buffers``) and child modules (``_modules``).
Parameters and buffers are plain ``numpy.ndarray`` objects, so ``state_dict()``
keys, order and shapes are PyTorch's and a checkpoint saved as
``{k: v.numpy() for k, v in torch_model.state_dict().items()}`` loads as it is.
``Module.to("cuda")`` replaces them with Numba device arrays (``numba.cuda`` is
imported only then), ``Module.to("cpu")`` brings them back.

There is no autograd: each module's ``forward`` keeps what its ``backward``
needs (on a per-module stack, nothing inside ``nbops.no_grad()``), and
``backward(grad_output)`` returns the gradient of the input and adds the
parameters' gradients into the gradient store of ``nbops/_grad.py``
(``nbops.nn.get_grad(param)``, :meth:`Module.named_grads`).
"""

import math
import numbers
import operator
import re
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .._grad import get_grad, is_grad_enabled, set_grad
from .._validate import is_device_array as _is_dev

__all__ = ["Module", "Sequential", "Parameter"]

#: A module's stack of saved forwards deeper than this warns once (a forward in
#: grad mode that no backward follows keeps its arrays: evaluation belongs in
#: ``nbops.no_grad()``).
_SAVED_WARN_DEPTH = 1024


class Parameter:
    """Marks an array as a parameter when assigned to a module attribute.

    ``self.weight = Parameter(np.zeros(3))`` registers the array (converted
    with ``np.asarray``; a CUDA device array is kept as it is) as the parameter
    ``weight``; reading ``self.weight`` then returns the plain ``ndarray``.
    nbops has no autograd, so there is no separate parameter type: a
    parameter's gradient is not an attribute of the array but lives in a store
    beside it, keyed by the array (``nbops.nn.get_grad(module.weight)``, or by
    ``state_dict`` name with :meth:`Module.named_grads`), filled by the modules'
    ``backward``. Plain arrays assigned to a name that is already a parameter
    replace it.

    Parameters
    ----------
    data : array_like or CUDA device array, optional
        The parameter's values.
    """

    __slots__ = ("data",)

    def __init__(self, data=None):
        self.data = _as_state_array(data)


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _addindent(s_, num_spaces):
    s = s_.split("\n")
    if len(s) == 1:
        return s_
    first = s.pop(0)
    s = [(num_spaces * " ") + line if line.strip() else "" for line in s]
    return first + "\n" + "\n".join(s)


def _check_array(value, what, name):
    if value is None or isinstance(value, np.ndarray) or _is_dev(value):
        return value
    raise TypeError(f"cannot assign {type(value).__name__!r} as {what} {name!r} "
                    f"(numpy.ndarray, CUDA device array, nbops.nn.Parameter or None expected)")


def _as_state_array(value):
    """A parameter or buffer value: None, a CUDA device array as it is, else ``np.asarray``.

    (``np.asarray`` of a Numba device array would silently copy it to the host.)
    """
    if value is None or isinstance(value, np.ndarray) or _is_dev(value):
        return value
    return np.asarray(value)


# ---------------------------------------------------------------------------
# Devices: "cpu" and "cuda". numba.cuda is imported only when a device array
# is met or a module is moved to CUDA (``import nbops`` must not import it).
# ---------------------------------------------------------------------------

_CUDA_NAME = re.compile(r"cuda(?::(\d+))?")
_CPU_NAME = re.compile(r"cpu(?::0)?")


def _parse_device(device):
    """``(kind, index)`` for a device spec: ``("cpu", None)``, ``("cuda", None | int)``.

    Accepts ``'cpu'``, ``'cuda'``, ``'cuda:<index>'`` and anything whose
    ``str()`` is one of them (``torch.device``); ``ValueError`` otherwise.
    """
    name = device if isinstance(device, str) else str(device)
    if _CPU_NAME.fullmatch(name):
        return "cpu", None
    m = _CUDA_NAME.fullmatch(name)
    if m:
        return "cuda", None if m.group(1) is None else int(m.group(1))
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>' (nbops runs on the CPU "
                     f"and on CUDA GPUs through Numba), got {device!r}")


def _check_device(device):
    """Validate a constructor's ``device=``: None, or the kind ``'cpu'``/``'cuda'``.

    Only the name is checked here (no ``numba.cuda`` import); the constructor
    builds the parameters on the host and then moves itself with ``to(device)``.
    """
    if device is None:
        return None
    return _parse_device(device)[0]


def _numba_cuda():
    try:
        from numba import cuda
    except ImportError as exc:  # numba-cuda missing
        raise ImportError("nbops.nn: moving a module to CUDA needs the numba-cuda package "
                          f"(pip install 'nbops[cuda]'): {exc}") from exc
    return cuda


def _cuda_for(index):
    """``numba.cuda``, once it is known that arrays can be placed on device ``index``."""
    cuda = _numba_cuda()
    if not cuda.is_available():
        raise RuntimeError("cannot move to 'cuda': no CUDA GPU is available "
                           "(numba.cuda.is_available() is False; for Numba's CUDA simulator "
                           "set NUMBA_ENABLE_CUDASIM=1 before numba is imported)")
    if index is not None:
        current = getattr(cuda.get_current_device(), "id", 0)  # the simulator's has no id
        if index != current:
            raise ValueError(f"device 'cuda:{index}': nbops places arrays on the current CUDA "
                             f"device (cuda:{current}); make device {index} current first "
                             f"(`with numba.cuda.gpus[{index}]:` around the move and the calls)")
    return cuda


def _numba_dev(a):
    """A device array as a Numba device array (CuPy/torch arrays: a zero-copy view)."""
    return a if hasattr(a, "copy_to_host") else _numba_cuda().as_cuda_array(a)


def _on_device(a):
    return not isinstance(a, np.ndarray) and _is_dev(a)


def _to_host(a):
    """A host copy of device array ``a``."""
    return _numba_dev(a).copy_to_host()


def _to_device(a, cuda):
    """A device copy of host array ``a`` (C-contiguous, as the CUDA ops need)."""
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return cuda.to_device(a)


def _write(arr, value):
    """Write ``value`` (host, broadcast and cast as ``arr[...] = value``) into ``arr`` in
    place, on the host or on the device."""
    if isinstance(arr, np.ndarray):
        arr[...] = value
        return
    d = _numba_dev(arr)
    host = np.empty(tuple(d.shape), np.dtype(d.dtype))
    host[...] = value
    d.copy_to_device(host)


def _read(arr):
    """``arr`` as a host array (itself on the host, a copy from the device)."""
    return arr if isinstance(arr, np.ndarray) else _to_host(arr)


def _copy_into(current, value):
    """``load_state_dict``'s copy: ``value`` (host or device) into ``current`` (on the
    device) in place, cast to its dtype."""
    d = _numba_dev(current)
    dt = np.dtype(d.dtype)
    if (not isinstance(value, np.ndarray) and np.dtype(value.dtype) == dt
            and value.is_c_contiguous() and d.is_c_contiguous()):
        d.copy_to_device(value)  # device to device
        return
    host = _read(value).astype(dt, copy=False)
    if not host.flags.c_contiguous:
        host = np.ascontiguousarray(host)
    d.copy_to_device(host)


class _DeviceMismatchError(TypeError):
    """A module called on an input on the other side (host/device) from its state."""


# ---------------------------------------------------------------------------
# Helpers shared by the layer files: factory kwargs, sizes, random init
# ---------------------------------------------------------------------------

def _factory_dtype(dtype):
    """The parameter dtype for ``dtype=`` (PyTorch's default float32 when None).

    Accepts NumPy dtypes and names, and ``torch.float32``-style objects.
    Only floating dtypes make sense for parameters.
    """
    if dtype is None:
        return np.dtype(np.float32)
    if type(dtype).__module__ == "torch":  # torch.float32 -> "float32"
        dtype = str(dtype).rsplit(".", 1)[-1]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy floating dtype, got {dtype!r}") from None
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating dtype (parameters are float), got {dt}")
    return dt


def _size(value, name):
    """A non-negative int size (PyTorch raises for negative tensor dimensions)."""
    if isinstance(value, bool):
        value = int(value)
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    if n < 0:
        raise ValueError(f"{name} must be non-negative (Trying to create tensor with negative "
                         f"dimension {n}), got {n}")
    return n


def _rng(rng):
    """``None`` (fresh OS entropy), an int seed, or a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")


def _uniform(rng, bound, shape, dtype):
    """U(-bound, bound) of ``shape`` (drawn in float64, then cast, as torch's uniform_ rounds)."""
    if bound == 0:
        return np.zeros(shape, dtype)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _kaiming_uniform_sqrt5(rng, shape, dtype):
    """``init.kaiming_uniform_(w, a=sqrt(5))``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    if 0 in shape:
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=4)
        return np.zeros(shape, dtype)
    fan_in = math.prod(shape[1:])
    gain = math.sqrt(2.0 / (1 + 5))  # calculate_gain('leaky_relu', sqrt(5))
    bound = math.sqrt(3.0) * gain / math.sqrt(fan_in)
    return _uniform(rng, bound, shape, dtype)


# ---------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------

class Module:
    """Base class of nbops layers, mirroring ``torch.nn.Module`` on NumPy arrays.

    Subclasses call ``super().__init__()`` first, then assign parameters
    (``Parameter(array)`` or :meth:`register_parameter`), buffers
    (:meth:`register_buffer`) and child modules as attributes, and define
    ``forward``. Calling the instance runs ``forward``.

    Devices: parameters and buffers are NumPy arrays until the module is moved.
    ``model.to("cuda")`` (or ``model.cuda()``) replaces every parameter and
    buffer of the module and its descendants with a Numba device array (a copy
    made with ``numba.cuda.to_device``; ``num_batches_tracked`` included),
    in place, and returns the module; ``model.to("cpu")`` (or ``model.cpu()``)
    copies them back into NumPy arrays. Devices are ``'cpu'``, ``'cuda'`` and
    ``'cuda:<index>'`` of the current device (or a ``torch.device`` naming
    one); anything else raises ``ValueError``. A module on CUDA takes device
    inputs (Numba device arrays, CuPy arrays, CUDA tensors), runs the CUDA
    kernels and returns device arrays; nbops never copies between host and
    device implicitly, so calling it on a host array (or a host module on a
    device array) raises ``TypeError`` telling which ``.to(...)`` to call.
    :attr:`device` says where the module's arrays are; ``state_dict()``
    returns them where they are, and ``load_state_dict()`` copies host or
    device arrays into them.

    Backward: there is no autograd. Every module of ``nbops.nn`` has
    ``backward(grad_output)``, which returns the gradient of its input and adds
    (``+=``, as autograd) its parameters' gradients into the gradient store
    (:func:`nbops.nn.get_grad`; :meth:`named_grads` by ``state_dict`` name;
    :meth:`zero_grad` clears them). ``forward`` keeps what ``backward`` needs
    (PyTorch's choice: the output for relu, sigmoid, tanh and the softmax
    family, the input otherwise; references, not copies) on a stack of the
    module, so a module called twice in one forward backpropagates twice, the
    latest call first; inside ``with nbops.no_grad():`` it keeps nothing, and a
    ``backward`` with nothing kept raises ``RuntimeError``. A subclass whose
    ``forward`` composes its children writes ``backward`` by calling the
    children's ``backward`` in reverse order (the example below);
    :class:`Sequential` does that for its children.

    Parameters
    ----------
    *args, **kwargs
        Ignored (accepted so that subclasses may pass anything on, as PyTorch).

    Examples
    --------
    >>> import numpy as np, nbops.nn as nn
    >>> class Affine(nn.Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.scale = nn.Parameter(np.ones(n, np.float32))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> list(Affine(2).state_dict().items())
    [('scale', array([1., 1.], dtype=float32))]

    A model made of modules, with its backward:

    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 8, rng=0)
    ...         self.act = nn.ReLU()
    ...         self.fc2 = nn.Linear(8, 3, rng=1)
    ...     def forward(self, x):
    ...         return self.fc2(self.act(self.fc1(x)))
    ...     def backward(self, grad_output):   # the children's, in reverse order
    ...         return self.fc1.backward(self.act.backward(self.fc2.backward(grad_output)))
    >>> model, criterion = MLP(), nn.CrossEntropyLoss()
    >>> loss = criterion(model(np.ones((5, 4), np.float32)), np.array([0, 1, 2, 1, 0]))
    >>> grad_x = model.backward(criterion.backward())
    >>> grad_x.shape
    (5, 4)
    >>> [(name, g.shape) for name, g in model.named_grads()]
    [('fc1.weight', (8, 4)), ('fc1.bias', (8,)), ('fc2.weight', (3, 8)), ('fc2.bias', (3,))]
    """

    _version = 1
    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"{args!r} {kwargs!r}")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_saved", [])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def backward(self, grad_output):
        """The gradient of this module's input, given ``grad_output`` (the gradient of
        its output); adds the parameters' gradients into the gradient store.

        Every module of ``nbops.nn`` defines it. A subclass defines it too (this
        base raises ``NotImplementedError``): when its ``forward`` calls child
        modules, its ``backward`` calls their ``backward`` in the reverse order,
        passing each one's result to the next (see the class's example); a
        forward that computes with the functional ops keeps what it needs with
        :meth:`_save_for_backward` and calls ``nbops.<op>_backward``.

        Parameters
        ----------
        grad_output : array
            The gradient of the loss with respect to the latest ``forward``'s output.

        Returns
        -------
        array
            The gradient with respect to that forward's input.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no backward: a subclass of nbops.nn.Module defines "
            f"backward(self, grad_output) beside forward, calling its children's backward in "
            f"the reverse order of forward (return self.fc1.backward(self.act.backward("
            f"self.fc2.backward(grad_output))) for fc2(act(fc1(x)))); see nbops.nn.Module")

    def _save_for_backward(self, value):
        """Push what ``backward`` will need (nothing is kept inside ``nbops.no_grad()``)."""
        if is_grad_enabled():
            saved = self._saved
            saved.append(value)
            if len(saved) == _SAVED_WARN_DEPTH:
                warnings.warn(f"{type(self).__name__}: {len(saved)} forwards kept for a "
                              "backward that has not come (each keeps its arrays); run "
                              "evaluation inside `with nbops.no_grad():`", RuntimeWarning,
                              stacklevel=3)

    def _saved_for_backward(self):
        """Pop what the latest ``forward`` kept (``RuntimeError`` when nothing is kept)."""
        try:
            return self._saved.pop()
        except IndexError:
            raise RuntimeError(
                f"{type(self).__name__}.backward: no forward to backpropagate through: "
                f"backward runs once per forward call made in grad mode (forward keeps "
                f"nothing inside nbops.no_grad(), and each backward consumes the latest "
                f"forward)") from None

    def __call__(self, *args, **kwargs):
        try:
            return self.forward(*args, **kwargs)
        except TypeError as exc:  # free when nothing is raised; explain device mixing
            if isinstance(exc, _DeviceMismatchError):
                raise
            err = self._device_mismatch(args, kwargs)
            if err is None:
                raise
            raise err from exc

    def _device_mismatch(self, args, kwargs):
        """The error for an input on the other side (host/device) from this module's
        parameters and buffers, or None when that is not the case."""
        on_dev = None
        for a in (*args, *kwargs.values()):
            if isinstance(a, np.ndarray):
                on_dev = False
                break
            if _is_dev(a):
                on_dev = True
                break
        if on_dev is None:
            return None
        other = [name for name, a in (*self.named_parameters(), *self.named_buffers())
                 if _on_device(a) != on_dev]
        if not other:
            return None
        names = ", ".join(other[:4]) + (", ..." if len(other) > 4 else "")
        if on_dev:
            msg = (f"{self._get_name()}: the input is a CUDA device array but the module's "
                   f"parameters/buffers ({names}) are host NumPy arrays: move the module to "
                   "the GPU first with module.to('cuda') (or module.cuda()), or pass a host "
                   "input")
        else:
            msg = (f"{self._get_name()}: the input is a host NumPy array but the module's "
                   f"parameters/buffers ({names}) are CUDA device arrays: pass a device "
                   "input (numba.cuda.to_device(x)), or move the module back with "
                   "module.to('cpu') (or module.cpu())")
        return _DeviceMismatchError(msg + "; nbops never copies between host and device "
                                    "implicitly")

    # --- registration ------------------------------------------------------

    def _check_name(self, name, kind):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."')

    def _attr_exists(self, name):
        if name == "device":  # the property, unless an instance value hides it
            return name in self.__dict__
        return hasattr(self, name)

    def register_parameter(self, name, param):
        """Add a parameter (an array, converted with ``np.asarray``; a CUDA device
        array as it is; or None).

        Parameters
        ----------
        name : str
            The attribute name (no dots).
        param : array_like, Parameter, CUDA device array or None
            The parameter's values.
        """
        self._check_name(name, "parameter")
        if self._attr_exists(name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if isinstance(param, Parameter):
            param = param.data
        self._parameters[name] = _as_state_array(param)

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer (state that is not a parameter, e.g. running statistics).

        Persistent buffers (the default) are part of :meth:`state_dict`. The
        array is converted with ``np.asarray`` (a CUDA device array is kept).

        Parameters
        ----------
        name : str
            The attribute name (no dots).
        tensor : array_like, CUDA device array or None
            The buffer's values (PyTorch's argument name).
        persistent : bool, default True
            Whether the buffer is part of :meth:`state_dict`.
        """
        self._check_name(name, "buffer")
        if self._attr_exists(name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        self._buffers[name] = _as_state_array(tensor)
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a child module (``None`` allowed, as in PyTorch).

        Parameters
        ----------
        name : str
            The attribute name (no dots).
        module : Module or None
            The child.
        """
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        if self._attr_exists(name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __getattr__(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg in d and name in d[reg]:
                return d[reg][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, d, params)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            params[name] = _check_array(value, "parameter", name)
            return
        if isinstance(value, Module):
            if "_modules" not in d:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, d, d["_modules"])
            d["_modules"][name] = value
            return
        modules = d.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__!r} as child module "
                                f"{name!r} (nbops.nn.Module or None expected)")
            modules[name] = value
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            buffers[name] = _check_array(value, "buffer", name)
            return
        object.__setattr__(self, name, value)

    def _remove_from(self, name, d, keep):
        d.pop(name, None)
        for reg in ("_parameters", "_buffers", "_modules"):
            if d[reg] is not keep:
                d[reg].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __delattr__(self, name):
        for reg in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[reg]:
                del self.__dict__[reg][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # --- traversal -----------------------------------------------------------

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Iterate over (name, module) for this module and every descendant, depth first.

        Parameters
        ----------
        memo : set, optional
            Modules already visited (used by the recursion).
        prefix : str, default ''
            Prefix of the names (``prefix + '.' + name``).
        remove_duplicate : bool, default True
            Yield a module reachable along several paths only once.

        Yields
        ------
        tuple of (str, Module)
            The dotted name and the module.
        """
        if memo is None:
            memo = set()
        if self in memo and remove_duplicate:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        memo = set()
        for name, module in self._modules.items():
            if module is not None and module not in memo:
                memo.add(module)
                yield name, module

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        memo = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or (remove_duplicate and id(value) in memo):
                    continue
                if remove_duplicate:
                    memo.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Iterate over (name, array) for every parameter, with PyTorch's dotted names.

        Parameters
        ----------
        prefix : str, default ''
            Prefix of the names.
        recurse : bool, default True
            Include the parameters of every descendant (else this module's only).
        remove_duplicate : bool, default True
            Yield an array shared by several modules only once.

        Yields
        ------
        tuple of (str, ndarray or CUDA device array)
            The dotted name and the parameter.
        """
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # --- gradients -----------------------------------------------------------

    def named_grads(self, prefix="", recurse=True):
        """Iterate over (name, gradient) for every parameter, by its ``state_dict`` name.

        The gradient is what the backwards accumulated since the last
        :meth:`zero_grad` (PyTorch's ``param.grad``), or None.

        Parameters
        ----------
        prefix : str, default ''
            Prefix of the names.
        recurse : bool, default True
            Include the parameters of every descendant (else this module's only).

        Yields
        ------
        tuple of (str, ndarray, CUDA device array or None)
            The dotted name and the parameter's gradient.
        """
        for name, param in self.named_parameters(prefix=prefix, recurse=recurse):
            yield name, get_grad(param)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (recursively), as PyTorch.

        Parameters
        ----------
        set_to_none : bool, default True
            Clear them (``get_grad`` then returns None); False writes zeros into
            the existing gradient arrays, in place.
        """
        for param in self.parameters():
            if set_to_none:
                set_grad(param, None)
                continue
            grad = get_grad(param)
            if grad is not None:
                _write(grad, 0)

    def get_submodule(self, target):
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if item not in mod._modules:
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def apply(self, fn):
        """Call ``fn`` on every child (recursively) and then on ``self``.

        Parameters
        ----------
        fn : callable
            Called with each module.

        Returns
        -------
        Module
            ``self``.
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- modes -----------------------------------------------------------------

    def train(self, mode=True):
        """Set training mode on this module and its descendants.

        Parameters
        ----------
        mode : bool, default True
            True for training mode, False for evaluation mode.

        Returns
        -------
        Module
            ``self``.
        """
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``): BatchNorm uses its running statistics,
        Dropout is the identity.

        Returns
        -------
        Module
            ``self``.
        """
        return self.train(False)

    # --- dtype and device conversion -----------------------------------------

    def _apply(self, fn):
        for module in self.children():
            module._apply(fn)
        for key, value in self._parameters.items():
            if value is not None:
                new = fn(value)
                self._parameters[key] = new
                grad = get_grad(value)
                if new is not value and grad is not None:  # the gradient follows, converted
                    set_grad(new, fn(grad))
        for key, value in self._buffers.items():
            if value is not None:
                self._buffers[key] = fn(value)
        return self

    def to(self, *args, dtype=None, device=None, non_blocking=False):
        """Move and/or cast every parameter and buffer (recursively), in place; return
        ``self``.

        Accepts ``to(dtype)``, ``to(device)``, ``to(device, dtype)`` and keywords,
        as PyTorch. ``device``: ``'cpu'`` (NumPy arrays), ``'cuda'`` or
        ``'cuda:<index>'`` of the current CUDA device (Numba device arrays,
        copied with ``numba.cuda.to_device``), or a ``torch.device``; anything
        else raises ``ValueError``, and ``'cuda'`` without a usable GPU raises
        ``RuntimeError`` (both before anything changes). ``dtype`` converts the
        floating-point arrays only (integer buffers such as
        ``num_batches_tracked`` are kept); casting arrays that stay on the GPU
        goes through the host. Arrays shared between modules stay shared.
        ``non_blocking`` is accepted and ignored (copies are synchronous).

        Parameters
        ----------
        *args
            A device, a dtype, or a device then a dtype.
        dtype : dtype, optional
            Float dtype for the floating-point arrays.
        device : str or torch.device, optional
            ``'cpu'``, ``'cuda'`` or ``'cuda:<index>'``.
        non_blocking : bool, default False
            Ignored.

        Returns
        -------
        Module
            ``self``.
        """
        for a in args:
            if a is None:
                continue
            if isinstance(a, str) or type(a).__name__ == "device":
                if device is not None:
                    raise TypeError("to() got multiple devices")
                device = a
            else:
                if dtype is not None:
                    raise TypeError("to() got multiple dtypes")
                dtype = a
        target = cuda = None
        if device is not None:
            kind, index = _parse_device(device)
            target = kind == "cuda"
            if target:
                cuda = _cuda_for(index)
        dt = None if dtype is None else _factory_dtype(dtype)
        if target is None and dt is None:
            return self
        memo = {}

        def convert(a):
            done = memo.get(id(a))
            if done is not None:
                return done[1]
            on_dev = _on_device(a)
            src = _numba_dev(a) if on_dev else a
            cast = dt is not None and np.dtype(src.dtype).kind == "f" and src.dtype != dt
            to_dev = on_dev if target is None else target
            if cast or on_dev != to_dev:
                host = _to_host(src) if on_dev else src
                if cast:
                    host = host.astype(dt)
                result = _to_device(host, cuda or _numba_cuda()) if to_dev else host
            else:
                result = a
            memo[id(a)] = (a, result)  # keeps ``a`` alive, so its id is not reused
            return result
        return self._apply(convert)

    def cuda(self, device=None, non_blocking=False):
        """Move every parameter and buffer to the GPU (``to("cuda")``); return ``self``.

        Parameters
        ----------
        device : None, int or str, optional
            None (the current device), an int index or a device name.
        non_blocking : bool, default False
            Ignored.

        Returns
        -------
        Module
            ``self``.
        """
        if device is None:
            device = "cuda"
        elif isinstance(device, numbers.Integral) and not isinstance(device, bool):
            device = f"cuda:{int(device)}"
        elif _parse_device(device)[0] != "cuda":
            raise ValueError(f"cuda(): device must be None, an index or a CUDA device, "
                             f"got {device!r}")
        return self.to(device)

    def cpu(self):
        """Copy every parameter and buffer on the GPU back to NumPy arrays (``to("cpu")``).

        A module on the host is left as it is.

        Returns
        -------
        Module
            ``self``.
        """
        return self.to("cpu")

    @property
    def device(self):
        """Where the parameters and buffers are: ``'cpu'`` or ``'cuda'``.

        ``'cpu'`` also for a module that holds none (it runs on inputs from
        either side); ``RuntimeError`` when they are on both sides (arrays
        assigned by hand). A subclass may assign its own ``self.device`` (or
        register a parameter, buffer or child module of that name), which then
        takes precedence.
        """
        d = self.__dict__
        if "device" in d:
            return d["device"]
        for reg in ("_parameters", "_buffers", "_modules"):  # something registered so
            if "device" in d.get(reg, ()):
                return d[reg]["device"]
        host, dev = [], []
        for name, a in (*self.named_parameters(), *self.named_buffers()):
            (dev if _on_device(a) else host).append(name)
        if host and dev:
            raise RuntimeError(f"{self._get_name()} has parameters/buffers both on the host "
                               f"({', '.join(host[:3])}) and on the GPU "
                               f"({', '.join(dev[:3])}): call .to('cuda') or .to('cpu')")
        return "cuda" if dev else "cpu"

    @device.setter
    def device(self, value):  # PyTorch code often keeps its own ``self.device``
        self.__dict__["device"] = value

    @device.deleter
    def device(self):
        del self.__dict__["device"]

    def float(self):
        """Cast the floating-point parameters and buffers to float32.

        Returns
        -------
        Module
            ``self``.
        """
        return self.to(np.float32)

    def double(self):
        """Cast the floating-point parameters and buffers to float64.

        Returns
        -------
        Module
            ``self``.
        """
        return self.to(np.float64)

    # --- state dict ----------------------------------------------------------

    def _local_state(self):
        persistent = ((k, v) for k, v in self._buffers.items()
                      if k not in self._non_persistent_buffers_set)
        return OrderedDict((k, v) for k, v in
                           list(self._parameters.items()) + list(persistent) if v is not None)

    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """An ``OrderedDict`` of every parameter and persistent buffer under PyTorch's
        keys (``"0.weight"``, ``"1.running_mean"``, ``"1.num_batches_tracked"``...).

        The values are the module's own arrays (not copies), as PyTorch's
        tensors share storage with the module, on the module's device: NumPy
        arrays, or Numba device arrays after ``to("cuda")`` (copy them with
        ``v.copy_to_host()``, or move the model with ``cpu()``, before saving).
        ``_metadata`` holds each module's version, as PyTorch's does.

        Parameters
        ----------
        destination : collections.OrderedDict, optional
            The mapping to fill (a new one by default).
        prefix : str, default ''
            Prefix of the keys.
        keep_vars : bool, default False
            Accepted for PyTorch compatibility (there is no autograd).

        Returns
        -------
        collections.OrderedDict
            The keys and the module's arrays.
        """
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = {"version": self._version}
        for name, value in self._local_state().items():
            destination[prefix + name] = value
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".")
        return destination

    def _load_plan(self, state_dict, prefix, metadata, plan, missing, unexpected, errors):
        """PyTorch's ``_load_from_state_dict``, collecting copies instead of doing them."""
        local = self._local_state()
        version = metadata.get(prefix[:-1], {}).get("version") if metadata else None
        optional = self._optional_keys(version)
        for name, param in local.items():
            key = prefix + name
            if key not in state_dict:
                if name not in optional:
                    missing.append(key)
                continue
            raw = state_dict[key]
            try:
                # a device array stays on the device (np.asarray would copy it to the host)
                value = _numba_dev(raw) if _on_device(raw) else np.asarray(raw)
                vdtype = np.dtype(value.dtype)
            except Exception as exc:
                errors.append(f'While copying the parameter named "{key}", expected an '
                              f"array-like object from checkpoint but received "
                              f"{type(raw)} ({exc})")
                continue
            if vdtype.kind not in "biuf":
                errors.append(f'While copying the parameter named "{key}", expected a real '
                              f"numeric array from checkpoint but received dtype {vdtype}")
                continue
            vshape, pshape = tuple(value.shape), tuple(param.shape)
            if len(pshape) == 0 and vshape == (1,):
                value, vshape = value.reshape(()), ()
            if vshape != pshape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{vshape} from checkpoint, the shape in current model "
                              f"is {pshape}.")
                continue
            plan.append((self, name, value))
        # unexpected keys are collected whatever ``strict`` (PyTorch reports them too)
        for key in state_dict:
            if not isinstance(key, str) or not key.startswith(prefix):
                continue
            head = key[len(prefix):].split(".", 1)
            if len(head) > 1:
                if head[0] not in self._modules:
                    unexpected.append(key)
            elif head[0] not in local:
                unexpected.append(key)
        for name, child in self._modules.items():
            if child is not None:
                child._load_plan(state_dict, prefix + name + ".", metadata, plan, missing,
                                 unexpected, errors)

    def _optional_keys(self, version):
        """Local keys that may be missing from a checkpoint of this ``version``."""
        return ()

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy parameters and buffers from ``state_dict`` (any mapping of PyTorch's
        keys to arrays: NumPy arrays, CPU torch tensors, anything ``np.asarray``
        accepts, and CUDA device arrays: Numba's, CuPy's, CUDA tensors).

        Values are copied into the existing arrays, cast to their dtype (as
        PyTorch's ``copy_``), on the module's device whatever side the values
        are on (a module on CUDA stays on CUDA), unless ``assign=True``, which
        makes the module hold the given arrays (on their own device). With
        ``strict=True`` (default) missing and unexpected keys raise
        ``RuntimeError`` in PyTorch's format; wrong shapes always raise.
        Returns ``(missing_keys, unexpected_keys)``.

        Unlike PyTorch, loading is all or nothing: if anything raises, the module
        is unchanged. As in PyTorch, a plain dict (no ``_metadata``) may omit
        BatchNorm's ``num_batches_tracked`` (the module keeps its own).

        Parameters
        ----------
        state_dict : Mapping
            PyTorch's keys to arrays.
        strict : bool, default True
            Raise on missing and unexpected keys.
        assign : bool, default False
            Hold the given arrays instead of copying into the existing ones.

        Returns
        -------
        tuple of (list, list)
            ``(missing_keys, unexpected_keys)``, a named tuple as PyTorch's.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be a bool, got {strict!r}")
        metadata = getattr(state_dict, "_metadata", None)
        plan, missing, unexpected, errors = [], [], [], []
        self._load_plan(state_dict, "", metadata, plan, missing, unexpected, errors)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        for module, name, value in plan:
            reg = module._parameters if name in module._parameters else module._buffers
            current = reg[name]
            if assign:
                reg[name] = value
            elif not isinstance(current, np.ndarray):  # on the device
                _copy_into(current, value)
            else:
                value = _read(value)
                if not current.flags.writeable:  # e.g. a read-only array assigned by the user
                    reg[name] = value.astype(current.dtype)
                    grad = get_grad(current)
                    if grad is not None:  # the replacement keeps the parameter's gradient
                        set_grad(reg[name], grad)
                else:
                    np.copyto(current, value, casting="unsafe")
        return _IncompatibleKeys(missing, unexpected)

    # --- repr ----------------------------------------------------------------

    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        """Extra text inside this module's repr (override in subclasses).

        Returns
        -------
        str
            The text between the parentheses of the repr ('' here).
        """
        return ""

    def __repr__(self):
        extra_lines = []
        extra = self.extra_repr()
        if extra:
            extra_lines = extra.split("\n")
        child_lines = []
        for key, module in self._modules.items():
            mod_str = _addindent(repr(module), 2)
            child_lines.append("(" + key + "): " + mod_str)
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class Sequential(Module):
    """Modules applied in order; ``Sequential(*modules)`` or ``Sequential(OrderedDict)``.

    Parameters
    ----------
    *args : Module or collections.OrderedDict
        The modules, named ``'0'``, ``'1'``, ... in order; or one ``OrderedDict``
        mapping names to modules.

    Examples
    --------
    >>> import numpy as np, nbops.nn as nn
    >>> model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU())
    >>> model(np.ones((2, 4), np.float32)).shape
    (2, 3)
    >>> list(model.state_dict())
    ['0.weight', '0.bias']
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def _get_item_by_idx(self, iterator, idx):
        size = len(self)
        idx = operator.index(idx)
        if not -size <= idx < size:
            raise IndexError(f"index {idx} is out of range")
        idx %= size
        for i, item in enumerate(iterator):
            if i == idx:
                return item

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._get_item_by_idx(self._modules.values(), idx)

    def __setitem__(self, idx, module):
        key = self._get_item_by_idx(self._modules.keys(), idx)
        setattr(self, key, module)

    def __delitem__(self, idx):
        if isinstance(idx, slice):
            for key in list(self._modules.keys())[idx]:
                delattr(self, key)
        else:
            delattr(self, self._get_item_by_idx(self._modules.keys(), idx))
        # renumber, as PyTorch does
        str_indices = [str(i) for i in range(len(self._modules))]
        self.__dict__["_modules"] = OrderedDict(
            zip(str_indices, self._modules.values(), strict=True))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end.

        Parameters
        ----------
        module : Module
            The module to append.

        Returns
        -------
        Sequential
            ``self``.
        """
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input

    _backward_skips_input_grad = True

    def backward(self, grad_output, *, needs_input_grad=True):
        """The children's ``backward`` in reverse order: the gradient of the input.

        Parameters
        ----------
        grad_output : array
            The gradient of the loss with respect to the output.
        needs_input_grad : bool, default True
            False when the input is data whose gradient nobody reads (PyTorch
            skips it for inputs that do not require grad): a first child that
            can leave it out (``Linear``, ``Sequential``) does, and None is
            returned. The parameters' gradients are the same.

        Returns
        -------
        array or None
            The gradient with respect to the input.
        """
        modules = [m for m in self._modules.values() if m is not None]
        for i in range(len(modules) - 1, -1, -1):
            module = modules[i]
            if i == 0 and not needs_input_grad and \
                    getattr(module, "_backward_skips_input_grad", False):
                module.backward(grad_output, needs_input_grad=False)
                return None
            grad_output = module.backward(grad_output)
        return grad_output
