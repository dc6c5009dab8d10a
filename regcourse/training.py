"""One small, explicit training loop shared by every experiment of the course.

It does what a careful practitioner does, and nothing hidden:
``model.train()`` before each epoch's updates, ``model.eval()`` and
``torch.no_grad()`` for every measurement, mini-batches shuffled by an explicit
``torch.Generator``, optional augmentation of each batch, label smoothing, weight
decay through the optimizer, and early stopping through a callback.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_scalar, check_tensor

__all__ = ["History", "evaluate", "make_optimizer", "train", "seeded"]


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with torch's global generator seeded to ``seed``, then restore it."""
    seed = check_scalar(seed, "seed", kind="int", low=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class History:
    """Per-epoch measurements of one training run (all measured in eval mode).

    Attributes:
        train_loss, val_loss: mean cross-entropy (without label smoothing) per epoch.
        train_acc, val_acc: accuracy in [0, 1] per epoch.
        stopped_epoch: the last epoch run (1-based); smaller than the requested
            number of epochs if early stopping ended the run.
        best_epoch: the epoch whose weights the model holds at the end (1-based):
            the early-stopping checkpoint if one was used, else the last epoch.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    stopped_epoch: int = 0
    best_epoch: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, in eval mode.

    The model's previous mode (train or eval) is restored afterwards.

    Returns:
        ``(loss, accuracy)`` as Python floats.
    """
    check_tensor(x, "x")
    check_tensor(y, "y", floating=False)
    if y.dtype != torch.int64:
        raise TypeError(f"y must hold class indices (torch.int64), got dtype {y.dtype}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        total_loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
    model.train(was_training)
    return total_loss / len(x), correct / len(x)


def make_optimizer(model: nn.Module, name: str = "adamw", lr: float = 1e-3, weight_decay: float = 0.0):
    """``torch.optim`` optimizer by name: ``"sgd"`` (momentum 0.9), ``"adam"`` (L2 through
    the gradient) or ``"adamw"`` (decoupled weight decay)."""
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0)
    params = model.parameters()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of ['adam', 'adamw', 'sgd'], got {name!r}")


def train(
    model: nn.Module,
    data,
    *,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",
    batch_size: int = 32,
    label_smoothing: float = 0.0,
    augment: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
    early_stopping=None,
    seed: int = 0,
    progress: bool = False,
    desc: str = "training",
) -> History:
    """Train ``model`` on ``data.x_train``/``data.y_train``, measuring on train and val each epoch.

    Args:
        model (nn.Module): the network; trained in place.
        data: a :class:`regcourse.data.Split` (or anything with ``x_train``, ``y_train``,
            ``x_val``, ``y_val``).
        epochs (int): number of passes over the training set. Default: ``100``.
        lr (float): learning rate. Default: ``1e-3``.
        weight_decay (float): the optimizer's ``weight_decay``. Default: ``0.0``.
        optimizer (str): ``"adamw"``, ``"adam"`` or ``"sgd"``. Default: ``"adamw"``.
        batch_size (int): mini-batch size. Default: ``32``.
        label_smoothing (float): ε of the training loss. Default: ``0.0``.
        augment (callable, optional): ``augment(x, y, generator) -> (x, y_soft_or_hard)``
            applied to each training batch; ``y`` may come back as class probabilities
            (Mixup, CutMix). Default: ``None``.
        early_stopping (optional): an object with ``step(val_loss, model) -> bool``
            (True = stop) and ``restore(model)``, e.g.
            :class:`regcourse.early_stopping.EarlyStopping`. Default: ``None``.
        seed (int): seeds the shuffling, the augmentation and the model's random
            layers (dropout). Default: ``0``.
        progress (bool): show a tqdm progress bar (stderr). Default: ``False``.
        desc (str): the progress bar's label.

    Returns:
        History: per-epoch losses and accuracies, in eval mode.
    """
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    label_smoothing = check_scalar(label_smoothing, "label_smoothing", low=0, high=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    missing = [a for a in ("x_train", "y_train", "x_val", "y_val") if not hasattr(data, a)]
    if missing:
        raise TypeError(
            f"data must have x_train, y_train, x_val and y_val (e.g. a regcourse.data.Split), "
            f"got {type(data).__name__} without {', '.join(missing)}"
        )
    x, y = data.x_train, data.y_train
    check_tensor(x, "data.x_train")
    check_tensor(data.x_val, "data.x_val")  # measured every epoch: it must not be empty
    opt = make_optimizer(model, optimizer, lr, weight_decay)
    g = torch.Generator().manual_seed(seed)
    history = History()
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc=desc, unit="epoch", leave=False)
    with seeded(seed):
        for epoch in epoch_iter:
            model.train()
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), batch_size):
                idx = order[i : i + batch_size]
                xb, yb = x[idx], y[idx]
                if augment is not None:
                    xb, yb = augment(xb, yb, g)
                logits = model(xb)
                if yb.dtype.is_floating_point:  # soft labels from Mixup/CutMix
                    if label_smoothing:
                        k = logits.shape[1]
                        yb = (1 - label_smoothing) * yb + label_smoothing / k
                    loss = -(yb * F.log_softmax(logits, dim=1)).sum(1).mean()
                else:
                    loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            tl, ta = evaluate(model, x, y)
            vl, va = evaluate(model, data.x_val, data.y_val)
            history.train_loss.append(tl)
            history.train_acc.append(ta)
            history.val_loss.append(vl)
            history.val_acc.append(va)
            history.stopped_epoch = epoch
            if progress:
                epoch_iter.set_postfix(train_acc=f"{ta:.3f}", val_acc=f"{va:.3f}")
            if early_stopping is not None and early_stopping.step(vl, model):
                break
    history.best_epoch = history.stopped_epoch
    if early_stopping is not None:
        early_stopping.restore(model)
        best = getattr(early_stopping, "best_epoch", None)
        if best is not None:
            history.best_epoch = int(best)
    model.eval()
    return history


def clone_state(model: nn.Module) -> dict:
    """A deep copy of ``model.state_dict()`` (a checkpoint that later training cannot change)."""
    return copy.deepcopy(model.state_dict())
