"""The optimizer base class: parameter groups, per-parameter state, checkpoints.

Parameters are plain arrays (NumPy arrays, or CUDA device arrays after
``module.to("cuda")``); their gradients live in nbops' gradient store
(:func:`nbops.nn.get_grad`, filled by the modules' ``backward``). An
optimizer's ``step()`` reads each parameter's gradient from the store and
updates the parameter in place (the module keeps the same array object).
"""

import copy

import numpy as np

from .._grad import get_grad, set_grad
from .._validate import is_device_array

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a default that every parameter group must set itself."""

    def __repr__(self):
        return "<required parameter>"


#: A default value that each parameter group must provide (as ``torch.optim.optimizer.required``).
required = _RequiredParameter()


def _cuda():
    from . import _cuda as module  # imports numba.cuda: only once a device array is met
    return module


class ParamState:
    """The optimizer's per-parameter state, keyed by the parameter array itself.

    Behaves as PyTorch's ``optimizer.state`` (a ``defaultdict(dict)`` keyed by
    tensors): ``state[param]`` is that parameter's dict (created empty on first
    access). Arrays are unhashable, so keys compare by identity.
    """

    def __init__(self):
        self._items = {}  # id(param) -> (param, dict)

    def __getitem__(self, param):
        entry = self._items.get(id(param))
        if entry is None or entry[0] is not param:
            entry = self._items[id(param)] = (param, {})
        return entry[1]

    def __setitem__(self, param, value):
        self._items[id(param)] = (param, value)

    def __contains__(self, param):
        entry = self._items.get(id(param))
        return entry is not None and entry[0] is param

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return (param for param, _ in self._items.values())

    def items(self):
        return list(self._items.values())

    def values(self):
        return [value for _, value in self._items.values()]

    def __repr__(self):
        return f"ParamState({len(self)} parameters)"


def _check_param(p):
    if is_device_array(p):
        if not p.is_c_contiguous():
            raise ValueError("optimizer parameters must be C-contiguous device arrays")
    elif isinstance(p, np.ndarray):
        if not p.flags.c_contiguous or not p.flags.writeable:
            raise ValueError("optimizer parameters must be writeable C-contiguous arrays "
                             "(the step updates them in place)")
    else:
        raise TypeError(f"optimizer can only optimize arrays (numpy.ndarray or CUDA device "
                        f"arrays), but one of the params is {type(p).__name__}")
    if np.dtype(p.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"optimizer parameters must be float32 or float64, got {np.dtype(p.dtype)}")


def _as_param_list(params):
    if isinstance(params, np.ndarray) or is_device_array(params):
        return [params]
    if isinstance(params, set):
        raise TypeError("optimizer parameters need to be organized in ordered collections, "
                        "but the ordering of tensors in sets will change between runs. "
                        "Please use a list instead.")
    return list(params)


class Optimizer:
    """Base class of the optimizers (PyTorch's ``torch.optim.Optimizer``).

    Parameters
    ----------
    params : iterable of arrays or of dicts
        The parameters to optimize (``model.parameters()``), or parameter
        groups: dicts with a ``"params"`` list and per-group options that
        replace ``defaults``.
    defaults : dict
        Each option's default value.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group: ``"params"`` (the arrays) and every option.
    state : ParamState
        Per parameter (``state[param]``), the optimizer's buffers, with
        PyTorch's names.
    defaults : dict
        The options' defaults.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = ParamState()
        self.param_groups = []
        if isinstance(params, np.ndarray) or is_device_array(params):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"arrays or dicts, but got {type(params).__name__}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group):
        """Add a parameter group to :attr:`param_groups` (PyTorch's ``add_param_group``).

        Parameters
        ----------
        param_group : dict
            ``"params"`` (an array or an iterable of arrays) and any options;
            options the group does not set take the optimizer's defaults. A
            parameter may belong to one group only.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        param_group = dict(param_group)
        params = _as_param_list(param_group["params"])
        for p in params:
            _check_param(p)
        param_group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        for group in self.param_groups:
            if any(id(p) in ids for p in group["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (PyTorch's ``zero_grad``).

        Parameters
        ----------
        set_to_none : bool, default True
            True: clear the gradients (``nbops.nn.get_grad(p)`` is then None
            and the next ``step()`` skips ``p`` unless a backward reaches it).
            False: fill the existing gradient arrays with zeros in place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                grad = get_grad(p)
                if grad is None:
                    continue
                if set_to_none:
                    set_grad(p, None)
                elif isinstance(grad, np.ndarray):
                    grad[...] = 0
                else:
                    _cuda().fill_zero(grad)

    def step(self, closure=None):
        """Update every parameter that has a gradient (subclasses define the update).

        Parameters
        ----------
        closure : callable, optional
            Called first (re-evaluates the model and returns the loss).

        Returns
        -------
        object
            The closure's result, or None.
        """
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                grad = get_grad(p)
                if grad is not None:
                    self._update(p, grad, group)
        return loss

    def _update(self, param, grad, group):
        raise NotImplementedError

    # -------------------------------------------------------------- checkpoints
    def state_dict(self):
        """The optimizer's state in PyTorch's layout.

        Returns
        -------
        dict
            ``{"state": {index: {name: array, ...}}, "param_groups": [{option:
            value, ..., "params": [index, ...]}]}``: parameters are numbered
            across groups in order, state holds only the parameters that have
            state. The state arrays are the optimizer's own (not copies), as in
            PyTorch; ``step`` is a 0-d float32 array. With tensors turned into
            arrays (``t.numpy()``), a ``torch.optim`` state_dict has the same
            layout, and this one loads into ``torch.optim`` with arrays turned
            into tensors (``torch.from_numpy``).
        """
        mapping = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {mapping[id(p)]: dict(value) for p, value in self.state.items()
                 if id(p) in mapping}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a state from :meth:`state_dict` (ours, or PyTorch's with arrays).

        Parameters
        ----------
        state_dict : dict
            ``{"state": ..., "param_groups": ...}`` as :meth:`state_dict`
            returns it, or as ``torch.optim``'s ``state_dict()`` with its
            tensors turned into arrays.

        Raises
        ------
        ValueError
            Different number of groups, a group of another size, a state array
            whose shape is not its parameter's, or a state index of no parameter.

        Notes
        -----
        The groups' options are replaced by the saved ones (the parameters
        stay this optimizer's). Each state array is copied, cast to its
        parameter's dtype and placed on its side (host or device), as PyTorch
        casts to the parameter's dtype and device; ``step`` keeps its own dtype
        (a Python number becomes a 0-d float32 array).
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for group, saved in zip(groups, saved_groups, strict=True):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
        id_map = {}
        for group, saved in zip(groups, saved_groups, strict=True):
            for index, p in zip(saved["params"], group["params"], strict=True):
                id_map[index] = p
        new_state = ParamState()
        for index, values in state_dict["state"].items():
            if index not in id_map:
                raise ValueError(f"loaded state dict has state for parameter index {index}, "
                                 "which no parameter group lists")
            param = id_map[index]
            new_state[param] = {key: _cast_state(param, key, value, index)
                                for key, value in values.items()}
        new_groups = []
        for group, saved in zip(groups, saved_groups, strict=True):
            saved["params"] = group["params"]
            for name, default in self.defaults.items():
                saved.setdefault(name, default)
            if "betas" in saved:
                saved["betas"] = tuple(saved["betas"])
            new_groups.append(saved)
        self.state = new_state
        self.param_groups = new_groups


def _cast_state(param, key, value, index):
    """A state value loaded for ``param``: a copy of the param's dtype on its side."""
    if key == "step":
        if is_device_array(value):
            value = value.copy_to_host()
        if isinstance(value, (int, float)):
            return np.array(float(value), dtype=np.float32)
        return np.array(value)
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return copy.deepcopy(value)
    if tuple(value.shape) != tuple(param.shape):
        raise ValueError(f"loaded state dict's {key!r} of parameter {index} has shape "
                         f"{tuple(value.shape)}, the parameter has shape {tuple(param.shape)}")
    if is_device_array(value) and not hasattr(value, "copy_to_host"):
        raise TypeError(f"loaded state dict's {key!r} of parameter {index}: a device array "
                        "that is not a Numba device array")
    host = value.copy_to_host() if is_device_array(value) else value
    host = np.array(host, dtype=param.dtype, order="C")
    if is_device_array(param):
        return _cuda().to_device(host)
    return host
