"""Experiments of the chapter "Weight decay: L2, L1 and decoupled".

All of them train the MNIST-1D benchmark's MLP (40 → 100 → 100 → 10) with AdamW on a
fixed subset of the benchmark's training set, so that one run takes well under a second
on one CPU thread and the unregularized network memorises its training data:

- :func:`fit`: one training run, weight decay through parameter groups (weights only,
  or every parameter), the weight norm recorded after every epoch;
- ``wd_sweep`` (:func:`wd_sweep`): train and validation accuracy, validation loss and
  the weight norm for a grid of weight-decay strengths λ, several seeds each.

Helpers: :func:`mnist1d_subset` (the data), :func:`decay_split` and
:func:`param_groups` (which parameters are decayed), :func:`weight_norm`,
:func:`parse_floats` (a λ grid given as ``"0,0.3,1"`` on the command line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .._checks import check_bool, check_scalar
from ..data import Split, mnist1d_split
from ..models import mnist1d_model
from ..training import evaluate, minibatches, seeded, train_epoch
from . import Result, experiment, mean_std
from ._common import one_thread

__all__ = [
    "FitResult",
    "decay_split",
    "fit",
    "mnist1d_subset",
    "param_groups",
    "parse_floats",
    "plot_norms",
    "plot_sweep",
    "wd_sweep",
    "weight_norm",
]


def parse_floats(values, name: str, *, low: float = 0.0) -> list[float]:
    """A grid of numbers from ``"0,0.3,1"`` or a sequence such as ``(0, 0.3, 1)``.

    Returns at least two distinct numbers ``>= low``, increasing; anything else is a
    ``ValueError`` (or ``TypeError``) naming ``name`` and the value.

    Example:
        >>> parse_floats("0, 0.3, 1", "lams")
        [0.0, 0.3, 1.0]
    """
    if isinstance(values, str):
        try:
            items = [float(part) for part in values.split(",")]
        except ValueError:
            raise ValueError(f"{name} must be comma-separated numbers, got {values!r}") from None
    elif isinstance(values, Sequence):
        items = list(values)
    else:
        raise TypeError(
            f"{name} must be a sequence of numbers or a comma-separated str, "
            f"got {type(values).__name__}"
        )
    items = [check_scalar(v, name, low=low) for v in items]
    if len(items) < 2 or items != sorted(set(items)):
        raise ValueError(
            f"{name} must hold at least two distinct values, increasing, got {values!r}"
        )
    return items


def mnist1d_subset(n_train: int = 2000, n_val: int = 1000, *, seed: int = 0) -> Split:
    """MNIST-1D with a validation set and a smaller training set.

    ``mnist1d_split(n_val, seed=seed)`` carves ``n_val`` validation examples out of the
    benchmark's 4,000 training examples; the first ``n_train`` of the rest are kept for
    training. The test set is the benchmark's 1,000 test examples.

    Args:
        n_train (int): training examples, ``10 <= n_train <= 4000 - n_val``. Default: ``2000``.
        n_val (int): validation examples, ``>= 1``. Default: ``1000``.
        seed (int, keyword only): seed of the validation subset. Default: ``0``.

    Returns:
        Split: inputs of shape ``(N, 40)``.

    Example:
        >>> mnist1d_subset(500, 200)
        Split(train=500, val=200, test=1000, input=(40,), classes=10)
    """
    n_val = check_scalar(n_val, "n_val", kind="int", low=1, high=3990)
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=4000 - n_val)
    data = mnist1d_split(n_val, seed=seed)
    return Split(
        data.x_train[:n_train],
        data.y_train[:n_train],
        data.x_val,
        data.y_val,
        data.x_test,
        data.y_test,
        data.num_classes,
    )


def decay_split(model: nn.Module) -> tuple[list[str], list[str]]:
    """The names of ``model``'s parameters that get weight decay, and of those that do not.

    The common convention: decay the weight matrices and convolution kernels (parameters
    with two or more dimensions), not the biases and the gains and shifts of
    normalization layers (one-dimensional parameters).

    Returns:
        ``(decay, no_decay)``: two lists of names, in ``model.named_parameters()`` order.

    Example:
        >>> decay_split(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)))
        (['0.weight'], ['0.bias', '1.weight', '1.bias'])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() >= 2 else no_decay).append(name)
    return decay, no_decay


def param_groups(model: nn.Module, weight_decay: float, *, decay_all: bool = False) -> list[dict]:
    """Parameter groups for a ``torch.optim`` optimizer: weight decay on the weights only.

    Args:
        model (nn.Module): the network.
        weight_decay (float): λ of the decayed group, ``>= 0``.
        decay_all (bool, keyword only): put every parameter in one decayed group instead
            (what ``AdamW(model.parameters(), weight_decay=λ)`` does). Default: ``False``.

    Returns:
        list of dict: ``[{"params": weights, "weight_decay": λ}, {"params": others,
        "weight_decay": 0.0}]`` (empty groups left out), or one group with ``decay_all``.

    Example:
        >>> groups = param_groups(nn.Linear(3, 4), 0.1)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.1), (1, 0.0)]
    """
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0)
    decay_all = check_bool(decay_all, "decay_all")
    if decay_all:
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    decay, _ = decay_split(model)
    params = dict(model.named_parameters())
    groups = [
        {"params": [params[n] for n in params if n in decay], "weight_decay": weight_decay},
        {"params": [params[n] for n in params if n not in decay], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def weight_norm(model: nn.Module) -> float:
    """``‖W‖``: the Euclidean norm of all decayed weights of ``model`` together (see
    :func:`decay_split`), as a Python float."""
    decay, _ = decay_split(model)
    params = dict(model.named_parameters())
    return float(sum((params[n].double() ** 2).sum() for n in decay) ** 0.5)


@dataclass
class FitResult:
    """What :func:`fit` measured (accuracies in ``[0, 1]``, losses are mean cross-entropy)."""

    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    test_acc: float
    norms: list[float] = field(default_factory=list)  # ‖W‖ at the start and after each epoch


def fit(
    model: nn.Module,
    data,
    *,
    lr: float,
    weight_decay: float,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    decay_all: bool = False,
) -> FitResult:
    """Train ``model`` with AdamW (decay on the weights only); measure it at the end.

    The loop is ``regcourse.training.train_epoch`` once per epoch over shuffled
    mini-batches (shuffled by a generator seeded with ``seed``; dropout masks, if the
    model has any, come from torch's generator seeded with ``seed``), one CPU thread.

    Args:
        model (nn.Module): the network, trained in place.
        data: a :class:`regcourse.data.Split` with a validation set.
        lr (float): AdamW's learning rate.
        weight_decay (float): AdamW's ``weight_decay`` λ (the weights shrink by the
            factor ``1 - lr·λ`` at every step).
        epochs (int): passes over the training set.
        batch_size (int): examples per mini-batch.
        seed (int): seed of the shuffling (and of dropout masks). Default: ``0``.
        decay_all (bool): decay every parameter, biases and normalization parameters
            included (see :func:`param_groups`). Default: ``False``.

    Returns:
        FitResult: final train and validation loss and accuracy, test accuracy, and
        ``‖W‖`` per epoch.
    """
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    groups = param_groups(model, weight_decay, decay_all=decay_all)
    optimizer = torch.optim.AdamW(groups, lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    with one_thread(), seeded(seed):
        norms = [weight_norm(model)]
        for _ in range(epochs):
            batches = minibatches(data.x_train, data.y_train, batch_size, shuffle)
            train_epoch(model, batches, F.cross_entropy, optimizer)
            norms.append(weight_norm(model))
        train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        _, test_acc = evaluate(model, data.x_test, data.y_test)
    return FitResult(train_loss, train_acc, val_loss, val_acc, test_acc, norms)


@experiment(
    "wd_sweep",
    "train/validation accuracy, validation loss and weight norm of the MNIST-1D MLP "
    "for a grid of AdamW weight-decay strengths",
    lams="comma-separated weight-decay strengths λ (AdamW's weight_decay)",
    seeds="seeds per λ (initial weights and mini-batch order; the data stay the same)",
    n_train="training examples (a subset of MNIST-1D's training set)",
    n_val="validation examples",
    epochs="passes over the training set",
    batch_size="mini-batch size",
    lr="AdamW learning rate",
)
def wd_sweep(
    lams: str = "0,0.3,1,3,10",
    seeds: int = 3,
    n_train: int = 2000,
    n_val: int = 1000,
    epochs: int = 30,
    batch_size: int = 500,
    lr: float = 0.02,
    progress: bool = False,
) -> Result:
    """Train the MLP once per (λ, seed) with :func:`fit`; summarise each λ over seeds.

    Returns:
        Result: one row per λ with the mean and standard deviation over seeds of the
        training, validation and test accuracy, the validation loss and the final
        weight norm (accuracies in percent); ``extra["norms"][λ]`` is the mean
        ``‖W‖`` per epoch, ``extra["runs"]`` every :class:`FitResult` by ``(λ, seed)``.
    """
    lam_grid = parse_floats(lams, "lams")
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    data = mnist1d_subset(n_train, n_val)
    runs = {}
    for lam in lam_grid:
        for seed in range(seeds):
            model = mnist1d_model("mlp", seed=seed)
            runs[lam, seed] = fit(
                model,
                data,
                lr=lr,
                weight_decay=lam,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
            )

    rows, norms = [], {}
    for lam in lam_grid:
        res = [runs[lam, seed] for seed in range(seeds)]
        row = {"lam": lam}
        for key in ("train_acc", "val_acc", "test_acc"):
            row[key], row[key + "_std"] = mean_std(100 * getattr(r, key) for r in res)
        row["val_loss"], row["val_loss_std"] = mean_std(r.val_loss for r in res)
        row["norm"], row["norm_std"] = mean_std(r.norms[-1] for r in res)
        rows.append(row)
        norms[lam] = [mean_std(r.norms[e] for r in res)[0] for e in range(epochs + 1)]

    val_acc = [row["val_acc"] for row in rows]
    val_loss = [row["val_loss"] for row in rows]
    inner = range(1, len(rows) - 1)  # the λ values strictly inside the grid
    memorised = rows[0]["train_acc"] >= 99
    acc_inner = max((val_acc[i] for i in inner), default=-1)
    acc_peak = acc_inner > max(val_acc[0], val_acc[-1])
    loss_low = min((val_loss[i] for i in inner), default=float("inf"))
    loss_dip = loss_low <= min(val_loss[0], val_loss[-1]) - 0.1
    norm_falls = all(a["norm"] > b["norm"] for a, b in zip(rows, rows[1:]))
    claims = {
        "λ = 0 memorises the training set (train accuracy >= 99%)": memorised,
        "validation accuracy peaks inside the λ grid, not at an end": acc_peak,
        "validation loss is U-shaped: inside the grid >= 0.1 below both ends": loss_dip,
        "the final weight norm falls at every step of the λ grid": norm_falls,
    }
    options = dict(
        lams=lams if isinstance(lams, str) else ",".join(f"{v:g}" for v in lam_grid),
        seeds=seeds,
        n_train=n_train,
        n_val=n_val,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
    )
    figure, extra = plot_sweep(rows), {"norms": norms, "runs": runs}
    return Result("wd_sweep", options, rows, claims, figure, extra=extra)


def plot_sweep(rows: list[dict]):
    """Accuracy (train, validation) and validation loss against λ, mean ± std over seeds.

    The λ values sit at evenly spaced positions (the grid is roughly geometric and
    starts at 0, which a log axis cannot show). Both y axes start at 0."""
    labels = [f"{row['lam']:g}" for row in rows]
    pos = range(len(rows))
    fig = Figure(figsize=(9, 3.5))  # not a pyplot figure: shown only when asked
    ax_acc, ax_loss = fig.subplots(1, 2)
    for key, label, style in [("train_acc", "training", "o-"), ("val_acc", "validation", "s-")]:
        ax_acc.errorbar(
            pos,
            [r[key] for r in rows],
            yerr=[r[key + "_std"] for r in rows],
            fmt=style,
            capsize=3,
            label=label,
        )
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_ylim(0, 105)
    ax_acc.legend(loc="lower left")
    ax_loss.errorbar(
        pos,
        [r["val_loss"] for r in rows],
        yerr=[r["val_loss_std"] for r in rows],
        fmt="s-",
        color="C1",
        capsize=3,
    )
    ax_loss.set_ylabel("validation loss (cross-entropy)")
    ax_loss.set_ylim(bottom=0)
    for ax, title in [(ax_acc, "accuracy"), (ax_loss, "validation loss")]:
        ax.set_xticks(list(pos), labels)
        ax.set_xlabel("weight decay λ (AdamW)")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_norms(norms: dict[float, list[float]]):
    """The weight norm ``‖W‖`` over the epochs, one line per λ (mean over seeds); y from 0."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for lam, values in norms.items():
        ax.plot(range(len(values)), values, label=f"λ = {lam:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight norm ‖W‖")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
