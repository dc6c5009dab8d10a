"""Experiments of the chapter "Dropout".

- :func:`fit`: one training run of a model with Adam on a training set, measured on the
  training and the test set at the end (dropout off);
- ``dropout_sweep`` (:func:`dropout_sweep`): the train/test gap of the MNIST-1D
  benchmark's MLP (40 → 100 → 100 → 10, dropout after each hidden ReLU) against the
  drop probability ``p``, several seeds each.

The training set is a subset of MNIST-1D's 4,000 training examples, small enough that
the network without dropout memorises it within the chapter's time budget; the test
set is the benchmark's 1,000 test examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .._checks import check_scalar
from ..data import Split, mnist1d_split
from ..models import mnist1d_model
from ..training import evaluate, minibatches, seeded, train_epoch
from . import Result, experiment, mean_std
from ._common import one_thread
from .weight_decay import parse_floats

__all__ = ["FitResult", "dropout_sweep", "fit", "mnist1d_train_subset", "plot_gap"]


def mnist1d_train_subset(n_train: int = 2000) -> Split:
    """The first ``n_train`` of MNIST-1D's 4,000 training examples and its 1,000 test
    examples (no validation set: ``x_val`` is empty). Inputs of shape ``(N, 40)``.

    Example:
        >>> mnist1d_train_subset(500)
        Split(train=500, val=0, test=1000, input=(40,), classes=10)
    """
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=4000)
    data = mnist1d_split()
    return Split(
        data.x_train[:n_train],
        data.y_train[:n_train],
        data.x_val,
        data.y_val,
        data.x_test,
        data.y_test,
        data.num_classes,
    )


@dataclass
class FitResult:
    """What :func:`fit` measured, in eval mode (accuracies in ``[0, 1]``)."""

    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float

    @property
    def gap(self) -> float:
        """Training minus test accuracy."""
        return self.train_acc - self.test_acc


def fit(
    model: nn.Module, data, *, lr: float, epochs: int, batch_size: int, seed: int = 0
) -> FitResult:
    """Train ``model`` with Adam (no weight decay); measure it at the end.

    Each epoch is one ``regcourse.training.train_epoch`` over mini-batches shuffled by
    a generator seeded with ``seed``; the dropout masks come from torch's global
    generator, seeded with ``seed`` for the run (and restored afterwards); one CPU
    thread. This is the loop of ``regcourse.training.train`` without its per-epoch
    measurements.

    Args:
        model (nn.Module): the network, trained in place.
        data: a :class:`regcourse.data.Split` (its validation part is not used).
        lr (float): Adam's learning rate.
        epochs (int): passes over the training set.
        batch_size (int): examples per mini-batch.
        seed (int): seed of the shuffling and of the dropout masks. Default: ``0``.

    Returns:
        FitResult: loss and accuracy on the training and the test set, dropout off.
    """
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    with one_thread(), seeded(seed):
        for _ in range(epochs):
            batches = minibatches(data.x_train, data.y_train, batch_size, shuffle)
            train_epoch(model, batches, F.cross_entropy, optimizer)
        train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
        test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    return FitResult(train_loss, train_acc, test_loss, test_acc)


@experiment(
    "dropout_sweep",
    "train/test accuracy and gap of the MNIST-1D MLP against the drop probability p",
    ps="comma-separated drop probabilities p in [0, 1)",
    seeds="seeds per p (initial weights, batch order, masks; the data stay the same)",
    n_train="training examples (the first ones of MNIST-1D's training set)",
    epochs="passes over the training set",
    batch_size="mini-batch size",
    lr="Adam learning rate",
)
def dropout_sweep(
    ps: str = "0,0.1,0.25,0.5",
    seeds: int = 3,
    n_train: int = 2000,
    epochs: int = 40,
    batch_size: int = 500,
    lr: float = 0.02,
    progress: bool = False,
) -> Result:
    """Train the MLP once per (p, seed) with :func:`fit`; summarise each p over seeds.

    Returns:
        Result: one row per p with the mean and standard deviation over seeds of the
        training accuracy, the test accuracy and their gap (in percent);
        ``extra["runs"]`` holds every :class:`FitResult` by ``(p, seed)``.
    """
    p_grid = parse_floats(ps, "ps")
    for p in p_grid:
        check_scalar(p, "ps", low=0, high=1, closed="left")
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    data = mnist1d_train_subset(n_train)
    runs = {}
    for p in p_grid:
        for seed in range(seeds):
            model = mnist1d_model("mlp", seed=seed, dropout=p)
            runs[p, seed] = fit(
                model,
                data,
                lr=lr,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
            )

    rows = []
    for p in p_grid:
        res = [runs[p, seed] for seed in range(seeds)]
        row = {"p": p}
        for key in ("train_acc", "test_acc", "gap"):
            row[key], row[key + "_std"] = mean_std(100 * getattr(r, key) for r in res)
        rows.append(row)

    gaps = [row["gap"] for row in rows]
    best = max(p_grid[1:], key=lambda p: rows[p_grid.index(p)]["test_acc"])
    first = p_grid[0]
    claims = {
        "without dropout the net memorises its training set (train accuracy >= 99%)": (
            rows[0]["train_acc"] >= 99
        ),
        "the train-test gap shrinks at every step of the p grid": all(
            a > b for a, b in zip(gaps, gaps[1:])
        ),
        "the best p > 0 (highest mean test accuracy) beats p = 0 on every seed": all(
            runs[best, s].test_acc > runs[first, s].test_acc for s in range(seeds)
        ),
        "the largest p has the lowest training accuracy": (
            rows[-1]["train_acc"] == min(row["train_acc"] for row in rows)
        ),
    }
    options = dict(
        ps=ps if isinstance(ps, str) else ",".join(f"{v:g}" for v in p_grid),
        seeds=seeds,
        n_train=n_train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
    )
    figure = plot_gap(rows)
    return Result("dropout_sweep", options, rows, claims, figure, extra={"runs": runs})


def plot_gap(rows: list[dict]):
    """Training and test accuracy (left) and their gap (right) against p, mean ± std.

    The p values sit at evenly spaced positions; both y axes start at 0."""
    labels = [f"{row['p']:g}" for row in rows]
    pos = list(range(len(rows)))
    fig = Figure(figsize=(9, 3.5))  # not a pyplot figure: shown only when asked
    ax_acc, ax_gap = fig.subplots(1, 2)
    for key, label, style in [("train_acc", "training", "o-"), ("test_acc", "test", "s-")]:
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
    ax_gap.bar(
        pos, [r["gap"] for r in rows], yerr=[r["gap_std"] for r in rows], capsize=3, color="C3"
    )
    ax_gap.set_ylabel("train − test accuracy (points)")
    ax_gap.set_ylim(bottom=0)
    for ax, title in [(ax_acc, "accuracy"), (ax_gap, "generalization gap")]:
        ax.set_xticks(pos, labels)
        ax.set_xlabel("drop probability p")
        ax.set_title(title)
    fig.tight_layout()
    return fig
