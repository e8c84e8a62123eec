"""Learning-rate schedulers, PyTorch's ``torch.optim.lr_scheduler``.

A scheduler sets ``group["lr"]`` of its optimizer's parameter groups; call its
``step()`` once per epoch, after the optimizer's ``step()``. The learning rates
are computed as PyTorch 2.13 computes them (the same float64 operations in the
same order, so the same values), including the step that the constructor runs.
"""

import math

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR"]


class LRScheduler:
    """Base class of the schedulers (PyTorch's ``LRScheduler``).

    Parameters
    ----------
    optimizer : nbops.optim.Optimizer
        The optimizer whose learning rates this scheduler sets.
    last_epoch : int, default -1
        The index of the last epoch; -1 starts a schedule (each group's
        ``initial_lr`` is set to its ``lr``), another value resumes one (the
        groups must have ``initial_lr``).

    Attributes
    ----------
    base_lrs : list of float
        Each group's ``initial_lr``.
    last_epoch : int
        The epoch count: 0 after the constructor, +1 per ``step()``.
    """

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   "when resuming scheduler with last_epoch >= 0")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """Compute the learning rates of the epoch ``last_epoch`` (subclasses define it).

        Returns
        -------
        list of float
            One learning rate per parameter group.
        """
        raise NotImplementedError

    def get_last_lr(self):
        """Return the learning rates the last ``step()`` set.

        Returns
        -------
        list of float
            One learning rate per parameter group.
        """
        return self._last_lr

    def step(self):
        """Advance one epoch and set each group's ``lr``."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Return the scheduler's state: every attribute but the optimizer (as PyTorch).

        Returns
        -------
        dict
            The attributes by name.
        """
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a state from :meth:`state_dict`.

        Parameters
        ----------
        state_dict : dict
            What :meth:`state_dict` returned.
        """
        self.__dict__.update(state_dict)

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    r"""Multiply the learning rates by ``gamma`` every ``step_size`` epochs (PyTorch's ``StepLR``).

    .. math:: \mathrm{lr}_t = \mathrm{lr}_{t-1} \gamma \text{ when } t > 0
              \text{ and } t \bmod \mathrm{step\_size} = 0

    Parameters
    ----------
    optimizer : nbops.optim.Optimizer
    step_size : int
        Epochs between decays.
    gamma : float, default 0.1
        Decay factor.
    last_epoch : int, default -1
        As :class:`LRScheduler`.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> opt = nbops.optim.SGD([np.zeros(3)], lr=1.0)
    >>> sched = nbops.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(sched.get_last_lr()[0])
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """Compute the learning rates of the epoch ``last_epoch``.

        Returns
        -------
        list of float
            ``lr * gamma`` at each multiple of ``step_size``, else ``lr``.
        """
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing of the learning rates (PyTorch's ``CosineAnnealingLR``).

    The learning rates follow, period :math:`2 T_{max}`,

    .. math:: \eta_t = \eta_{min} + \tfrac12 (\eta_{base} - \eta_{min})
              \left(1 + \cos\left(\pi \tfrac{t}{T_{max}}\right)\right)

    computed as PyTorch does, recursively from the current ``lr`` (so it
    composes with changes made to ``lr`` by others)::

        lr_t = (1 + cos(pi t / T_max)) / (1 + cos(pi (t - 1) / T_max))
               * (lr_{t-1} - eta_min) + eta_min

    and, where that quotient is 0/0 (``(t - 1 - T_max) % (2 T_max) == 0``),
    ``lr_t = lr_{t-1} + (base_lr - eta_min) (1 - cos(pi / T_max)) / 2``.

    Parameters
    ----------
    optimizer : nbops.optim.Optimizer
    T_max : int
        Half period, in epochs.
    eta_min : float, default 0.0
        Smallest learning rate.
    last_epoch : int, default -1
        As :class:`LRScheduler`.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> opt = nbops.optim.SGD([np.zeros(3)], lr=1.0)
    >>> sched = nbops.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(round(sched.get_last_lr()[0], 12))
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [1.0, 0.5, 0.0, 0.5, 1.0]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """Compute the learning rates of the epoch ``last_epoch`` (PyTorch's recursion).

        Returns
        -------
        list of float
            One learning rate per parameter group.
        """
        eta_min, t_max, t = self.eta_min, self.T_max, self.last_epoch
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / t_max)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups,
                                              strict=True)]
        return [(1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
                * (group["lr"] - eta_min) + eta_min
                for group in self.optimizer.param_groups]
