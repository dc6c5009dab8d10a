"""Early stopping: watch the validation loss, keep the best checkpoint, stop when it stalls.

The rule, for a monitored value ``L(t)`` measured after epoch ``t = 1, 2, ...``
(``mode="min"``, e.g. a validation loss):

- epoch ``t`` *improves* if ``L(t) < best - min_delta``, where ``best`` is the value
  at the last improving epoch (``+inf`` before the first epoch, so epoch 1 always
  improves); an improving epoch becomes the new ``best_epoch`` and its weights are
  saved;
- training stops after the first epoch ``t`` with ``t - best_epoch >= patience``,
  i.e. after ``patience`` epochs in a row without an improvement;
- at the end, the weights of ``best_epoch`` are loaded back.

With ``mode="max"`` (e.g. a validation accuracy) improving means ``L(t) > best + min_delta``.
Epochs are counted from 1: ``best_epoch = 3`` means "after the third call of ``step``".

Used in:
    chapter "Early stopping".
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_scalar

__all__ = ["EarlyStopping", "StopPoint", "simulate"]

_MODES = ("min", "max")


def _check_patience(patience) -> int:
    return check_scalar(patience, "patience", kind="int", low=1)


def _check_min_delta(min_delta) -> float:
    return check_scalar(min_delta, "min_delta", low=0.0)


def _check_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


def _improves(value: float, best: float, min_delta: float, mode: str) -> bool:
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


def _snapshot(model: nn.Module) -> dict:
    """A copy of ``model.state_dict()`` sharing no memory with the model."""
    return {
        k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for k, v in model.state_dict().items()
    }


class StopPoint(NamedTuple):
    """What early stopping does on a recorded curve (see :func:`simulate`).

    Attributes:
        stop_epoch (int): the last epoch trained (1-based): the epoch at which the rule
            fires, or the length of the curve if it never fires.
        best_epoch (int): the epoch whose checkpoint is restored (1-based).
    """

    stop_epoch: int
    best_epoch: int


def simulate(values, patience: int, min_delta: float = 0.0, mode: str = "min") -> StopPoint:
    """Replay early stopping on a recorded validation curve, without training.

    This answers "what would patience ``k`` have done on this run?": the stop epoch
    and the restored epoch, from the per-epoch values of one full run. It applies the
    rule of this module directly (``t - best_epoch >= patience``) and does not use
    :class:`EarlyStopping`, so each checks the other.

    Args:
        values (sequence of float): the monitored value after epochs 1, 2, ... (a list,
            tuple, 1-D array or 1-D tensor of finite numbers; not empty).
        patience (int): epochs without improvement before stopping, at least 1.
        min_delta (float): an epoch improves only if it beats the best value by more
            than ``min_delta``. Default: ``0.0``.
        mode (str): ``"min"`` (lower is better) or ``"max"``. Default: ``"min"``.

    Returns:
        StopPoint: ``(stop_epoch, best_epoch)``, both 1-based.

    Example:
        >>> simulate([1.0, 0.8, 0.9, 0.85, 0.95, 0.7], patience=3)
        StopPoint(stop_epoch=5, best_epoch=2)
    """
    patience = _check_patience(patience)
    min_delta = _check_min_delta(min_delta)
    mode = _check_mode(mode)
    if isinstance(values, torch.Tensor):
        if values.dim() != 1:
            raise ValueError(f"values must be 1-D, got shape {tuple(values.shape)}")
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"values must be a sequence of numbers, got {type(values).__name__}")
    if len(values) == 0:
        raise ValueError("values must not be empty, got 0 values")
    best = math.inf if mode == "min" else -math.inf
    best_epoch = 0
    for t, v in enumerate(values, start=1):
        v = check_scalar(v, f"values[{t - 1}]")
        if _improves(v, best, min_delta, mode):
            best, best_epoch = v, t
        elif t - best_epoch >= patience:
            return StopPoint(t, best_epoch)
    return StopPoint(len(values), best_epoch)


class EarlyStopping:
    """Stop training when a monitored value has not improved for ``patience`` epochs,
    and keep the weights of the best epoch.

    Call :meth:`step` once per epoch with the validation loss (and the model); it
    returns ``True`` when training should stop. :meth:`restore` then loads the best
    checkpoint back into the model. :func:`regcourse.training.train` does both when
    given ``early_stopping=EarlyStopping(...)``.

    Args:
        patience (int): epochs in a row without an improvement after which to stop
            (at least 1). Default: ``10``.
        min_delta (float): the smallest change that counts as an improvement: with
            ``mode="min"`` an epoch improves if its value is below ``best - min_delta``.
            Default: ``0.0``.
        mode (str): ``"min"`` for a loss, ``"max"`` for e.g. an accuracy. Default: ``"min"``.
        restore_best (bool): save the best weights in :meth:`step` and load them in
            :meth:`restore`; with ``False``, :meth:`restore` leaves the model as it is.
            Default: ``True``.

    Attributes:
        best_value (float): the value at the best epoch (``inf``/``-inf`` before the first step).
        best_epoch (int): the best epoch, 1-based (0 before the first step).
        epoch (int): number of :meth:`step` calls so far.
        counter (int): epochs since the best epoch (``epoch - best_epoch``).
        stopped_epoch (int): the epoch at which :meth:`step` first returned ``True``
            (0 while it has not).
        best_state (dict or None): the saved ``state_dict`` of the best epoch.

    Example:
        >>> es = EarlyStopping(patience=2)
        >>> [es.step(v) for v in [0.9, 0.7, 0.8, 0.75]]
        [False, False, False, True]
        >>> es.best_epoch, es.best_value, es.stopped_epoch
        (2, 0.7, 4)

    Used in:
        chapter "Early stopping".
    """

    def __init__(
        self,
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
    ):
        self.patience = _check_patience(patience)
        self.min_delta = _check_min_delta(min_delta)
        self.mode = _check_mode(mode)
        if not isinstance(restore_best, bool):
            raise TypeError(f"restore_best must be a bool, got {restore_best!r}")
        self.restore_best = restore_best
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far (to reuse the object for a new run)."""
        self.best_value = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.epoch = 0
        self.counter = 0
        self.stopped_epoch = 0
        self.best_state: dict | None = None

    def step(self, value, model: nn.Module | None = None) -> bool:
        """Record one epoch's value; return ``True`` if training should stop now.

        Args:
            value (float): the monitored value after this epoch (a finite number or a
                one-element tensor).
            model (nn.Module, optional): the model; if given (and ``restore_best``),
                its ``state_dict`` is copied when this epoch improves. Default: ``None``.

        Returns:
            bool: ``True`` once ``patience`` epochs in a row have not improved.

        Raises:
            ValueError: if ``value`` is NaN or infinite (a diverged run should fail
                loudly, not be "not an improvement").
        """
        value = check_scalar(value, "value")
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module or None, got {type(model).__name__}")
        self.epoch += 1
        if _improves(value, self.best_value, self.min_delta, self.mode):
            self.best_value = value
            self.best_epoch = self.epoch
            self.counter = 0
            if model is not None and self.restore_best:
                self.best_state = _snapshot(model)
            return False
        self.counter = self.epoch - self.best_epoch
        if self.counter >= self.patience:
            if not self.stopped_epoch:
                self.stopped_epoch = self.epoch
            return True
        return False

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best epoch's weights into ``model`` (a no-op if ``restore_best=False``).

        The loaded weights are bit-identical to the model's weights right after the
        best epoch; the checkpoint stays unchanged by later training of ``model``.

        Returns:
            The model.

        Raises:
            RuntimeError: if ``restore_best`` is on but no checkpoint was saved (no
                ``step`` call received a model).
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not self.restore_best:
            return model
        if self.best_state is None:
            raise RuntimeError(
                "no checkpoint to restore: call step(value, model) with the model at least once"
            )
        model.load_state_dict(self.best_state)
        return model

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta:g}, "
            f"mode={self.mode!r}, restore_best={self.restore_best}, epoch={self.epoch}, "
            f"best_epoch={self.best_epoch}, best_value={self.best_value:.4g}, "
            f"counter={self.counter}, stopped_epoch={self.stopped_epoch})"
        )
