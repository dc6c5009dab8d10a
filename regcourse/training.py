"""One small, explicit training loop shared by every experiment of the course.

It does what a careful practitioner does, and nothing hidden:
``model.train()`` before each epoch's updates, ``model.eval()`` and
``torch.no_grad()`` for every measurement, mini-batches shuffled by an explicit
``torch.Generator``, optional augmentation of each batch, label smoothing, weight
decay through the optimizer, and early stopping through a callback.

:func:`train` is the concise call. Its pieces are public, so a chapter can write the
same loop from scratch in a few lines and check it against :func:`train`:
:func:`batch_indices` / :func:`minibatches` (the shuffled batches; a last batch of a
single example is merged into the one before it, so batch norm never sees a batch of
one), :func:`train_epoch` (``model.train()``, then one optimizer step per batch) and
:func:`evaluate` (``model.eval()`` and ``torch.no_grad()``, then the mean loss and the
accuracy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_bool, check_generator, check_scalar, check_tensor
from ._random import seeded

__all__ = [
    "History",
    "batch_indices",
    "minibatches",
    "train_epoch",
    "evaluate",
    "make_optimizer",
    "train",
    "seeded",
]


@dataclass
class History:
    """Per-epoch measurements of one training run (all measured in eval mode).

    Attributes:
        train_loss: mean cross-entropy (without label smoothing) on the training set, per epoch.
        val_loss: the same on the validation set.
        train_acc: accuracy in [0, 1] on the training set, per epoch.
        val_acc: the same on the validation set.
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


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator | None = None, *, shuffle: bool = True
) -> list[torch.Tensor]:
    """The index tensors of one epoch's mini-batches over ``n`` examples.

    The examples are shuffled with ``generator`` (one ``torch.randperm`` call) and cut
    into consecutive batches of ``batch_size``. If the last batch would hold a single
    example it is **merged** into the batch before it (which then has ``batch_size + 1``
    examples): every example is still used once per epoch, and no batch of one reaches
    batch norm (whose variance would be zero: torch refuses such a batch in training).

    Args:
        n (int): number of examples, ``>= 1``.
        batch_size (int): examples per batch, ``>= 1``.
        generator (torch.Generator, optional): the shuffle's randomness. Default: ``None``
            (torch's default generator).
        shuffle (bool, keyword only): shuffle first; ``False`` keeps the order 0 … n − 1.
            Default: ``True``.

    Returns:
        list of Tensor: int64 index tensors that together hold each of ``0 … n − 1`` once.

    Example:
        >>> [len(b) for b in batch_indices(9, 4, shuffle=False)]   # 4 + 4 + 1: the 1 is merged
        [4, 5]
        >>> [len(b) for b in batch_indices(10, 4, shuffle=False)]
        [4, 4, 2]

    Used in:
        chapter "The core problem".
    """
    n = check_scalar(n, "n", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    generator = check_generator(generator)
    shuffle = check_bool(shuffle, "shuffle")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1 and batch_size > 1:
        starts.pop()  # a last batch of one joins the batch before it
    ends = starts[1:] + [n]
    return [order[a:b] for a, b in zip(starts, ends)]


def minibatches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    *,
    shuffle: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled mini-batches ``(x[idx], y[idx])``, as :func:`batch_indices` cuts them.

    Args:
        x (Tensor): inputs, ``(N, ...)``.
        y (Tensor): targets, ``(N, ...)``.
        batch_size (int): examples per batch (a last batch of one is merged, see
            :func:`batch_indices`).
        generator (torch.Generator, optional): the shuffle's randomness. Default: ``None``.
        shuffle (bool, keyword only): shuffle first. Default: ``True``.

    Returns:
        An iterator of ``(x_batch, y_batch)`` pairs.

    Example:
        >>> x, y = torch.arange(5.0).unsqueeze(1), torch.arange(5)
        >>> [yb.tolist() for _, yb in minibatches(x, y, 2, shuffle=False)]
        [[0, 1], [2, 3, 4]]

    Used in:
        chapter "The core problem".
    """
    check_tensor(x, "x", floating=False, finite=False)
    check_tensor(y, "y", floating=False, finite=False)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    for idx in batch_indices(len(x), batch_size, generator, shuffle=shuffle):
        yield x[idx], y[idx]


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
) -> float:
    """One pass of optimizer steps over ``batches``, in training mode; returns the mean loss.

    Exactly the inner loop of :func:`train`, written out::

        model.train()
        for xb, yb in batches:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    The model is left in training mode; measure it with :func:`evaluate`.

    Args:
        model (nn.Module): the network, updated in place.
        batches (iterable): ``(inputs, targets)`` pairs, e.g. :func:`minibatches`.
        loss_fn (callable): ``loss_fn(logits, targets) -> scalar tensor``, e.g.
            :func:`torch.nn.functional.cross_entropy`.
        optimizer (torch.optim.Optimizer): the optimizer over ``model``'s parameters.

    Returns:
        float: the mean of the batch losses, weighted by batch size (the training loss
        *during* the epoch, with dropout active and the weights changing; not the same
        as :func:`evaluate` afterwards).

    Example:
        >>> torch.manual_seed(0) and None
        >>> model = torch.nn.Linear(3, 2)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
        >>> loss = train_epoch(model, minibatches(x, y, 4), F.cross_entropy, opt)
        >>> model.training
        True

    Used in:
        chapter "The core problem".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    model.train()
    total, count = 0.0, 0
    for xb, yb in batches:
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        count += len(xb)
    if count == 0:
        raise ValueError("batches must hold at least one batch, got none")
    return total / count


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, in eval mode.

    Switches the model to ``eval()`` (dropout off, batch norm on its running
    statistics), runs it under ``torch.no_grad()`` in batches of ``batch_size``, and
    restores the model's previous mode (train or eval) afterwards.

    Args:
        model (nn.Module): the network.
        x (Tensor): inputs, ``(N, ...)``, floating point, not empty.
        y (Tensor): int64 class indices, ``(N,)``.
        batch_size (int): examples per forward pass (only memory depends on it), ``>= 1``.
            Default: ``1024``.

    Returns:
        ``(loss, accuracy)`` as Python floats, accuracy in ``[0, 1]``.

    Example:
        >>> model = torch.nn.Linear(2, 2)
        >>> loss, acc = evaluate(model, torch.randn(5, 2), torch.zeros(5, dtype=torch.long))
        >>> 0.0 <= acc <= 1.0
        True

    Used in:
        every chapter with an experiment.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_tensor(x, "x")
    check_tensor(y, "y", floating=False)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    if y.dtype != torch.int64:
        raise TypeError(f"y must hold class indices (torch.int64), got dtype {y.dtype}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    was_training = model.training
    model.eval()
    try:
        total_loss, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size])
            total_loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
            correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
    finally:
        model.train(was_training)
    return total_loss / len(x), correct / len(x)


def make_optimizer(
    model: nn.Module, name: str = "adamw", lr: float = 1e-3, weight_decay: float = 0.0
):
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
    augment: Callable[
        [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]
    ]
    | None = None,
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
        batch_size (int): mini-batch size. A last batch of a single example is merged
            into the one before it (see :func:`batch_indices`). Default: ``32``.
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
    if len(x) < 2:
        raise ValueError(f"data.x_train must hold at least 2 examples, got {len(x)}")
    opt = make_optimizer(model, optimizer, lr, weight_decay)
    g = torch.Generator().manual_seed(seed)

    def loss_fn(logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if yb.dtype.is_floating_point:  # soft labels from Mixup/CutMix
            if label_smoothing:
                yb = (1 - label_smoothing) * yb + label_smoothing / logits.shape[1]
            return -(yb * F.log_softmax(logits, dim=1)).sum(1).mean()
        return F.cross_entropy(logits, yb, label_smoothing=label_smoothing)

    history = History()
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc=desc, unit="epoch", leave=False)
    with seeded(seed):
        for epoch in epoch_iter:
            batches = minibatches(x, y, batch_size, g)
            if augment is not None:
                batches = ((*augment(xb, yb, g),) for xb, yb in batches)
            train_epoch(model, batches, loss_fn, opt)
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
