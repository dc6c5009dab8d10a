"""Experiments of the chapter "Choosing and combining regularizers", on MNIST-1D.

The chapter trains :func:`regcourse.recipe.solid_default` on the MNIST-1D
benchmark's MLP (40 → 100 → 100 → 10) and asks two questions of it:

- ``forgotten_eval`` (and :func:`mode_table` on any trained model): what goes wrong
  when a model with batch norm and dropout is measured while still in ``train()``
  mode, and how much of the damage each of the two layers does.
- ``ablation``: the recipe with one component switched off at a time, plus no
  regularization at all, over several seeds; every component's effect is the paired
  difference of test accuracy against the full recipe, seed by seed, with a paired
  t-test (:func:`paired_difference`) deciding whether it is distinguishable from the
  seed-to-seed noise.

The pieces the chapter calls directly:

- :func:`mnist1d_subset`: a seeded subset of MNIST-1D's 4,000 training signals and a
  validation set beside it; the benchmark's 1,000 test signals unchanged.
- :class:`RandomShift1d` and :func:`shift_augment`: random circular shifts of 1-D
  signals, the augmentation the recipe uses on MNIST-1D. The package's augmentations
  (``regcourse.augment``) transform images; MNIST-1D's generator itself places each
  digit at a random circular offset, so a small circular shift keeps the label, and
  torch has no per-example random shift (``torch.roll`` shifts a whole tensor by one
  amount), hence these few lines.
- :func:`recipe_mlp`: the recipe on the benchmark's MLP, every component switchable.

Training runs inside ``regcourse.experiments._common.one_thread()``, so the results
do not depend on the number of torch threads.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from .. import augment as A
from .._checks import check_bool, check_generator, check_scalar, check_tensor
from ..data import Split, mnist1d_split
from ..dropout import Dropout
from ..recipe import RecipeResult, no_regularization, solid_default
from ..training import seeded
from . import Result, experiment, mean_std
from ._common import one_thread

__all__ = [
    "N_TRAIN",
    "N_VAL",
    "EPOCHS",
    "LR",
    "BATCH_SIZE",
    "HIDDEN",
    "MAX_SHIFT",
    "MODE_SETTINGS",
    "ABLATION_ARMS",
    "NONE_ARM",
    "mnist1d_subset",
    "RandomShift1d",
    "shift_augment",
    "recipe_mlp",
    "set_modes",
    "mode_table",
    "forgotten_eval",
    "PairedDifference",
    "paired_difference",
    "ablation",
    "plot_ablation",
    "plot_modes",
    "mean_std",
]

#: Training signals the chapter's runs use (a seeded subset of MNIST-1D's 4,000).
N_TRAIN = 800
#: Validation signals (for early stopping), drawn from the rest of the 4,000.
N_VAL = 500
#: Epoch budget of every run (early stopping may end the recipe sooner).
EPOCHS = 30
#: The learning rate of the MNIST-1D benchmark's runs (Adam, 1e-2).
LR = 1e-2
#: The mini-batch size of the MNIST-1D benchmark's runs.
BATCH_SIZE = 100
#: The width of the two hidden layers of the benchmark's MLP.
HIDDEN = 100
#: Largest circular shift (positions of 40) of the recipe's augmentation on MNIST-1D.
MAX_SHIFT = 3

_MNIST1D_TRAIN = 4000


# --------------------------------------------------------------------------- data
def _check_sizes(n_train, n_val) -> tuple[int, int]:
    """``n_train >= 20`` and ``n_val >= 10`` signals, together at most the 4,000."""
    n_train = check_scalar(n_train, "n_train", kind="int", low=20, high=_MNIST1D_TRAIN - 10)
    n_val = check_scalar(n_val, "n_val", kind="int", low=10, high=_MNIST1D_TRAIN - n_train)
    return n_train, n_val


def mnist1d_subset(n_train: int = N_TRAIN, n_val: int = N_VAL, *, seed: int = 0) -> Split:
    """A seeded subset of MNIST-1D's training set, a validation set, and the benchmark's test set.

    The 4,000 training signals of :func:`regcourse.data.mnist1d_split` are shuffled
    with ``seed``; the first ``n_train`` become the training set, the next ``n_val``
    the validation set. The test set is the benchmark's 1,000 signals, the same for
    every seed.

    Args:
        n_train (int): training signals, ``>= 20``. Default: ``800``.
        n_val (int): validation signals, ``>= 10``, with ``n_train + n_val <= 4000``.
            Default: ``500``.
        seed (int, keyword only): seed of the shuffle. Default: ``0``.

    Returns:
        Split: inputs of shape ``(N, 40)`` (float32), int64 labels, 10 classes.

    Example:
        >>> mnist1d_subset(800, 500, seed=1)
        Split(train=800, val=500, test=1000, input=(40,), classes=10)

    Used in:
        chapter "Choosing and combining regularizers".
    """
    n_train, n_val = _check_sizes(n_train, n_val)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    full = mnist1d_split()
    order = torch.randperm(len(full.y_train), generator=torch.Generator().manual_seed(seed))
    train, val = order[:n_train], order[n_train : n_train + n_val]
    return Split(
        full.x_train[train],
        full.y_train[train],
        full.x_train[val],
        full.y_train[val],
        full.x_test,
        full.y_test,
        full.num_classes,
    )


# --------------------------------------------------------------------------- augmentation
class RandomShift1d(nn.Module):
    """Shift each 1-D signal circularly by a random whole number of positions.

    Example ``i`` is shifted by ``k_i``, drawn uniformly from ``-max_shift … max_shift``
    with ``generator``: ``out[i] = torch.roll(x[i], k_i, dims=-1)``. In ``eval()`` mode
    it returns its input unchanged. A step of :class:`regcourse.augment.Augment`.

    Args:
        max_shift (int): largest shift in positions, ``>= 0``. Default: ``3``.

    Shape:
        - Input: ``(N, L)`` or ``(N, C, L)``; every channel of an example moves together.
        - Output: the same shape.

    Example:
        >>> shift = RandomShift1d(2)  # here the three rows move by 2, 2 and 1 positions
        >>> shift(torch.arange(5.0).repeat(3, 1), torch.Generator().manual_seed(0))
        tensor([[3., 4., 0., 1., 2.],
                [3., 4., 0., 1., 2.],
                [4., 0., 1., 2., 3.]])

    Used in:
        chapter "Choosing and combining regularizers".
    """

    def __init__(self, max_shift: int = MAX_SHIFT) -> None:
        super().__init__()
        self.max_shift = check_scalar(max_shift, "max_shift", kind="int", low=0)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_tensor(x, "x", floating=False, finite=False)
        if x.dim() not in (2, 3):
            raise ValueError(f"x must have shape (N, L) or (N, C, L), got {tuple(x.shape)}")
        generator = check_generator(generator)
        if not self.training or self.max_shift == 0:
            return x
        n, length = x.shape[0], x.shape[-1]
        k = torch.randint(-self.max_shift, self.max_shift + 1, (n, 1), generator=generator)
        source = (torch.arange(length) - k) % length  # out[i, j] = x[i, j - k_i]
        if x.dim() == 3:
            source = source.unsqueeze(1).expand(-1, x.shape[1], -1)
        return x.gather(-1, source)

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}"


def shift_augment(max_shift: int = MAX_SHIFT) -> A.Augment:
    """The recipe's augmentation for MNIST-1D: ``Augment(RandomShift1d(max_shift))``.

    Callable as ``augment(x, y, generator) -> (x, y)``, as
    :func:`regcourse.training.train` expects.

    Used in:
        chapter "Choosing and combining regularizers".
    """
    return A.Augment(RandomShift1d(max_shift))


# --------------------------------------------------------------------------- the recipe
_SWITCHES = ("weight_decay", "patience", "augment", "batch_norm", "dropout", "label_smoothing")


def recipe_mlp(
    data: Split,
    *,
    seed: int = 0,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    hidden: int = HIDDEN,
    max_shift: int = MAX_SHIFT,
    progress: bool = False,
    **switches,
) -> RecipeResult:
    """:func:`regcourse.recipe.solid_default` on the MNIST-1D benchmark's MLP.

    The MLP is ``40 → hidden → hidden → 10`` with batch norm and dropout after each
    hidden layer; the augmentation is :func:`shift_augment`. Every other setting is the
    recipe's unless switched off through ``switches``.

    Args:
        data (Split): MNIST-1D signals of length 40 with a validation set, e.g.
            :func:`mnist1d_subset`.
        seed (int, keyword only): seed of the weights, shuffling, shifts and dropout.
            Default: ``0``.
        epochs, lr, batch_size (keyword only): the training budget. Defaults: ``30``,
            ``1e-2``, ``100``.
        hidden (int, keyword only): width of both hidden layers. Default: ``100``.
        max_shift (int, keyword only): largest shift of the augmentation. Default: ``3``.
        progress (bool, keyword only): show a progress bar. Default: ``False``.
        **switches: any of ``weight_decay``, ``patience``, ``augment``, ``batch_norm``,
            ``dropout``, ``label_smoothing``, passed to ``solid_default``
            (``augment=None`` switches the shifts off).

    Returns:
        RecipeResult: the trained model (eval mode), its history and accuracies.

    Used in:
        chapter "Choosing and combining regularizers".
    """
    unknown = sorted(set(switches) - set(_SWITCHES))
    if unknown:
        raise TypeError(
            f"recipe_mlp() got an unexpected switch {unknown[0]!r}; switches: {_SWITCHES}"
        )
    switches.setdefault("augment", shift_augment(max_shift))
    return solid_default(
        data,
        model="mlp",
        in_features=40,
        hidden=hidden,
        depth=2,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        **switches,
    )


# --------------------------------------------------------------------------- forgotten eval
def _is_batch_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def _is_dropout(module: nn.Module) -> bool:
    return isinstance(module, (Dropout, nn.modules.dropout._DropoutNd))


def set_modes(model: nn.Module, *, batch_norm: bool, dropout: bool) -> nn.Module:
    """Switch a model to ``eval()``, then batch norm and/or dropout back to ``train()``.

    ``set_modes(model, batch_norm=True, dropout=True)`` is ``model.train()`` for a
    network whose only mode-dependent layers are these two; with one of them ``False``
    it isolates the other's effect.

    Args:
        model (nn.Module): the network, changed in place.
        batch_norm (bool, keyword only): batch-norm layers in training mode.
        dropout (bool, keyword only): dropout layers in training mode.

    Returns:
        nn.Module: ``model``.

    Used in:
        chapter "Choosing and combining regularizers".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    batch_norm = check_bool(batch_norm, "batch_norm")
    dropout = check_bool(dropout, "dropout")
    model.eval()
    for module in model.modules():
        if _is_batch_norm(module):
            module.train(batch_norm)
        elif _is_dropout(module):
            module.train(dropout)
    return model


def _starts(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` pairs; a last batch of one joins the one before it."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


@torch.no_grad()
def _accuracy_as_is(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Accuracy of ``model`` in whatever modes its layers are in, over consecutive batches."""
    correct = sum(
        (model(x[a:b]).argmax(1) == y[a:b]).sum().item() for a, b in _starts(len(x), batch_size)
    )
    return correct / len(x)


#: The settings :func:`mode_table` measures, ``name -> (batch norm in train, dropout in train)``.
MODE_SETTINGS = {
    "eval()": (False, False),
    "train()": (True, True),
    "dropout only": (False, True),
    "batch norm only": (True, False),
}


def mode_table(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_sizes: tuple[int, ...] = (8, 100),
    passes: int = 5,
    seed: int = 0,
) -> list[dict]:
    """Test accuracy of a trained model with its layers in each mode, for several batch sizes.

    For each setting of :data:`MODE_SETTINGS` (everything in ``eval()``; everything in
    ``train()``, the forgotten-``eval()`` bug; only dropout in training mode; only
    batch norm in training mode) and each evaluation batch size (plus the whole of
    ``x`` in one batch), the model is measured ``passes`` times, each time on a fresh
    deep copy (so that no pass sees running statistics overwritten by an earlier one),
    with dropout masks drawn from torch's generator seeded with ``seed``. The model
    itself is not changed.

    Args:
        model (nn.Module): the trained network.
        x (Tensor): inputs, ``(N, ...)``.
        y (Tensor): int64 labels, ``(N,)``.
        batch_sizes (tuple of int, keyword only): evaluation batch sizes, each ``>= 2``
            (torch's batch norm refuses a batch of one in training mode). The whole set
            is always added. Default: ``(8, 100)``.
        passes (int, keyword only): measurements per cell, ``>= 1``. Default: ``5``.
        seed (int, keyword only): seed of the dropout masks. Default: ``0``.

    Returns:
        list of dict: one row per (mode, batch size) with ``mode``, ``batch_size``,
        ``acc_mean``, ``acc_std`` (over the passes) and ``accs`` (every pass).

    Used in:
        chapter "Choosing and combining regularizers".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_tensor(x, "x")
    check_tensor(y, "y", floating=False)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if isinstance(batch_sizes, (int, float)) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty tuple of ints, got {batch_sizes!r}")
    sizes = [check_scalar(b, "batch_sizes", kind="int", low=2) for b in batch_sizes]
    passes = check_scalar(passes, "passes", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    sizes = sorted(set(s for s in sizes if s < len(x))) + [len(x)]
    rows = []
    with seeded(seed):
        for mode, (bn, do) in MODE_SETTINGS.items():
            for bs in sizes if bn else [len(x)]:  # without batch statistics size is irrelevant
                accs = [
                    _accuracy_as_is(
                        set_modes(copy.deepcopy(model), batch_norm=bn, dropout=do), x, y, bs
                    )
                    for _ in range(passes if do else 1)
                ]
                mean, std = mean_std(accs)
                rows.append(
                    {"mode": mode, "batch_size": bs, "acc_mean": mean, "acc_std": std, "accs": accs}
                )
    return rows


def plot_modes(rows: list[dict], *, title: str = "") -> plt.Figure:
    """Bar chart of :func:`mode_table`'s rows: accuracy (mean ± std over passes) per setting.

    The accuracy axis starts at 0; a dotted line marks chance (10 classes).

    Used in:
        chapter "Choosing and combining regularizers".
    """
    n_all = max(r["batch_size"] for r in rows)
    labels = [
        f"{r['mode']}\n" + ("whole set" if r["batch_size"] == n_all else f"batch {r['batch_size']}")
        for r in rows
    ]
    colors = {"eval()": "C2", "train()": "C3", "dropout only": "C1", "batch norm only": "C0"}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(
        range(len(rows)),
        [r["acc_mean"] for r in rows],
        yerr=[r["acc_std"] for r in rows],
        capsize=3,
        color=[colors[r["mode"]] for r in rows],
    )
    ax.axhline(0.1, color="0.4", ls=":", lw=1, label="chance (10 classes)")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "One trained model, measured with its layers in each mode")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


@experiment(
    "forgotten_eval",
    "the forgotten model.eval() bug: the recipe's MLP (batch norm, dropout) measured in each mode",
    n_train="training signals (MNIST-1D subset)",
    epochs="epoch budget of the recipe",
    batch_size="evaluation batch size of the buggy (train-mode) measurement",
    passes="measurements per setting (fresh dropout masks each)",
    seed="seed of the data subset, the training and the dropout masks",
)
def forgotten_eval(
    n_train: int = N_TRAIN,
    epochs: int = EPOCHS,
    batch_size: int = 8,
    passes: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Train the recipe's MLP, then :func:`mode_table` on the test set.

    Returns:
        Result: the rows of :func:`mode_table`; claims about outputs that change between
        passes, a batch of one, overwritten running statistics and the accuracy drop;
        ``extra`` holds the model and the data.
    """
    n_train = check_scalar(n_train, "n_train", kind="int", low=20, high=_MNIST1D_TRAIN - N_VAL)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=2)
    passes = check_scalar(passes, "passes", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    data = mnist1d_subset(n_train, N_VAL, seed=seed)
    with one_thread():
        fit = recipe_mlp(data, seed=seed, epochs=epochs, progress=progress)
        rows = mode_table(
            fit.model, data.x_test, data.y_test, batch_sizes=(batch_size,), passes=passes, seed=seed
        )
    cell = {(r["mode"], r["batch_size"]): r["acc_mean"] for r in rows}
    n = len(data.y_test)
    claims = {
        "eval() gives the same accuracy in small batches as in one": cell[("eval()", n)]
        == _accuracy_as_is(fit.model.eval(), data.x_test, data.y_test, batch_size),
        f"train() in batches of {batch_size} is below eval()": cell[("train()", batch_size)]
        < cell[("eval()", n)],
    }
    fig = plot_modes(rows)
    plt.close(fig)  # drawn, not shown: a notebook shows it with show_figure
    return Result(
        "forgotten_eval",
        {
            "n_train": n_train,
            "epochs": epochs,
            "batch_size": batch_size,
            "passes": passes,
            "seed": seed,
        },
        [{k: v for k, v in r.items() if k != "accs"} for r in rows],
        claims,
        fig,
        extra={"model": fit.model, "data": data, "fit": fit},
    )


# --------------------------------------------------------------------------- ablation
#: The arms of ``ablation``, each with the switches of :func:`recipe_mlp` that turn one component off.
ABLATION_ARMS = {
    "full recipe": {},
    "no weight decay": {"weight_decay": 0.0},
    "no early stopping": {"patience": None},
    "no augmentation": {"augment": None},
    "no batch norm": {"batch_norm": False},
    "no dropout": {"dropout": 0.0},
    "no label smoothing": {"label_smoothing": 0.0},
}
#: The extra arm with every component off (:func:`regcourse.recipe.no_regularization`).
NONE_ARM = "no regularization"


@dataclass(frozen=True)
class PairedDifference:
    """Summary of paired differences ``d_i = a_i - b_i`` (see :func:`paired_difference`)."""

    mean: float
    std: float
    t: float
    p: float
    n: int
    n_positive: int
    n_negative: int


def paired_difference(a, b) -> PairedDifference:
    """Mean, sample standard deviation and paired t-test of the differences ``a_i - b_i``.

    With ``n`` pairs, ``d̄`` the mean and ``s`` the sample standard deviation (``n - 1``
    in the denominator) of the differences, the statistic is ``t = d̄ / (s / √n)`` and
    the two-sided p-value is ``2 · P(T > |t|)`` for Student's t with ``n - 1`` degrees
    of freedom: the same as ``scipy.stats.ttest_rel(a, b)``. If every difference is the
    same, ``s = 0``: then ``t`` is ``0`` and ``p`` is ``1`` when they are all zero, and
    ``t = ±inf``, ``p = 0`` otherwise (where scipy returns NaN with a warning).

    Args:
        a, b: sequences of numbers of the same length ``n >= 2`` (one entry per seed).

    Returns:
        PairedDifference: ``mean``, ``std``, ``t``, ``p``, ``n`` and how many differences
        are positive and negative.

    Example:
        >>> d = paired_difference([0.56, 0.55, 0.58], [0.50, 0.51, 0.50])
        >>> round(d.mean, 4), d.n_positive, round(d.p, 3)
        (0.06, 3, 0.035)

    Used in:
        chapter "Choosing and combining regularizers".
    """
    from scipy import stats

    a = [check_scalar(v, "a") for v in a]
    b = [check_scalar(v, "b") for v in b]
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError(f"a and b need at least 2 pairs for a t-test, got {len(a)}")
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean, std = mean_std(d)
    if std == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
    else:
        t = mean / (std / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), df=n - 1))
    return PairedDifference(mean, std, t, p, n, sum(v > 0 for v in d), sum(v < 0 for v in d))


def _verdict(diff: PairedDifference, alpha: float) -> str:
    if diff.p < alpha:
        return "raises" if diff.mean > 0 else "lowers"
    return "no detectable change"


@experiment(
    "ablation",
    "the solid default recipe on MNIST-1D's MLP, one component switched off at a time",
    seeds="number of seeds (data subset, weights, shuffling, shifts, dropout)",
    n_train="training signals (MNIST-1D subset)",
    n_val="validation signals (early stopping)",
    epochs="epoch budget of every run",
    lr="learning rate (AdamW)",
    batch_size="mini-batch size",
    hidden="width of the MLP's hidden layers",
    max_shift="largest circular shift of the augmentation",
    alpha="significance level of the paired t-test",
)
def ablation(
    seeds: int = 3,
    n_train: int = N_TRAIN,
    n_val: int = N_VAL,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    hidden: int = HIDDEN,
    max_shift: int = MAX_SHIFT,
    alpha: float = 0.05,
    progress: bool = False,
) -> Result:
    """Train every arm of :data:`ABLATION_ARMS` and no regularization on the same seeds.

    Per seed, every arm gets the same data subset and initial weights. Each arm's effect
    is ``test accuracy(arm) - test accuracy(full recipe)``, paired by seed, tested with
    :func:`paired_difference` at level ``alpha``: switching the component off "raises"
    or "lowers" the test accuracy, or makes "no detectable change". Where early
    stopping did nothing in a seed's full-recipe run (its best epoch is the last of the
    budget, so it neither stopped early nor restored other weights), the "no early
    stopping" arm is that same run, not trained again (its row says ``reused``).

    Returns:
        Result: one row per arm with mean and std (over seeds) of train, validation
        and test accuracy, the paired differences against the full recipe and their
        verdicts; ``extra["per_seed"]`` holds every run, ``extra["histories"]`` their
        histories; ``figure`` is :func:`plot_ablation` of the result (closed: show it
        with :func:`regcourse.plotting.show_figure`).
    """
    seeds = check_scalar(seeds, "seeds", kind="int", low=2)
    n_train, n_val = _check_sizes(n_train, n_val)
    alpha = check_scalar(alpha, "alpha", low=0, high=1, closed="neither")
    budget = dict(epochs=epochs, lr=lr, batch_size=batch_size, hidden=hidden)
    arms = [*ABLATION_ARMS, NONE_ARM]
    per_seed, histories = [], {arm: [] for arm in arms}
    with one_thread():
        for seed in range(seeds):
            data = mnist1d_subset(n_train, n_val, seed=seed)
            fits = {}
            for arm in arms:
                full = fits.get("full recipe")
                if arm == "no early stopping" and full.history.best_epoch == epochs:
                    # Early stopping neither ended the full recipe's run early nor
                    # restored an earlier epoch: training without it gives the same
                    # weights.
                    fit = full
                elif arm == NONE_ARM:
                    fit = no_regularization(
                        data,
                        model="mlp",
                        in_features=40,
                        depth=2,
                        seed=seed,
                        progress=progress,
                        **budget,
                    )
                else:
                    fit = recipe_mlp(
                        data,
                        seed=seed,
                        max_shift=max_shift,
                        progress=progress,
                        **budget,
                        **ABLATION_ARMS[arm],
                    )
                fits[arm] = fit
                histories[arm].append(fit.history)
                per_seed.append(
                    {
                        "seed": seed,
                        "arm": arm,
                        "train_acc": fit.train_acc,
                        "val_acc": fit.history.val_acc[fit.history.best_epoch - 1],
                        "test_acc": fit.test_acc,
                        "epochs_trained": fit.history.stopped_epoch,
                        "best_epoch": fit.history.best_epoch,
                        "reused": fit is full,
                    }
                )

    def column(arm, key):
        return [r[key] for r in per_seed if r["arm"] == arm]

    rows = []
    for arm in arms:
        row = {"arm": arm}
        for key in ("train_acc", "val_acc", "test_acc"):
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std(column(arm, key))
        if arm != "full recipe":  # paired by seed against the full recipe
            for key in ("test_acc", "train_acc"):
                d = paired_difference(column(arm, key), column("full recipe", key))
                m = key.split("_")[0]
                row[f"{m}_delta_mean"], row[f"{m}_delta_std"] = d.mean, d.std
                row[f"{m}_t"], row[f"{m}_p"] = d.t, d.p
                row[f"{m}_seeds_up"] = d.n_positive
                row[f"{m}_seeds_down"] = d.n_negative
                row[f"{m}_verdict"] = _verdict(d, alpha)
        rows.append(row)
    full, none = column("full recipe", "test_acc"), column(NONE_ARM, "test_acc")
    gap = {
        arm: [a - b for a, b in zip(column(arm, "train_acc"), column(arm, "test_acc"))]
        for arm in ("full recipe", NONE_ARM)
    }
    beats = all(a > b for a, b in zip(full, none))
    narrower = all(a < b for a, b in zip(gap["full recipe"], gap[NONE_ARM]))
    memorizes = all(a >= 0.99 for a in column(NONE_ARM, "train_acc"))
    claims = {
        "the full recipe beats no regularization in test accuracy, every seed": beats,
        "the full recipe has the smaller train-test gap, every seed": narrower,
        "without regularization the MLP fits >= 99 % of its training set": memorizes,
    }
    result = Result(
        "ablation",
        {
            "seeds": seeds,
            "n_train": n_train,
            "n_val": n_val,
            **budget,
            "max_shift": max_shift,
            "alpha": alpha,
        },
        rows,
        claims,
        None,
        extra={"per_seed": per_seed, "histories": histories},
    )
    result.figure = plot_ablation(result)
    plt.close(result.figure)  # drawn, not shown: a notebook shows it with show_figure
    return result


def plot_ablation(result: Result) -> plt.Figure:
    """The ablation as a figure: test accuracy per arm (left), and each arm's paired
    difference against the full recipe in test accuracy (middle) and in training
    accuracy (right), every seed a dot.

    The accuracy axis starts at 0; the difference axes are centred on 0.

    Used in:
        chapter "Choosing and combining regularizers".
    """
    rows, per_seed = result.rows, result.extra["per_seed"]
    arms = [r["arm"] for r in rows]
    colors = ["C2"] + ["C0"] * (len(arms) - 2) + ["C3"]
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.8), sharey=True)
    ys = list(range(len(arms)))
    axes[0].barh(
        ys,
        [r["test_acc_mean"] for r in rows],
        xerr=[r["test_acc_std"] for r in rows],
        color=colors,
        capsize=3,
    )
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel("test accuracy (mean ± std)", fontsize=9)
    axes[0].set_yticks(ys, arms)
    axes[0].invert_yaxis()
    for ax, m in zip(axes[1:], ("test", "train")):
        full = {r["seed"]: r[f"{m}_acc"] for r in per_seed if r["arm"] == "full recipe"}
        for i, r in enumerate(rows[1:], start=1):
            dots = [
                100 * (p[f"{m}_acc"] - full[p["seed"]]) for p in per_seed if p["arm"] == r["arm"]
            ]
            ax.barh(i, 100 * r[f"{m}_delta_mean"], color=colors[i], alpha=0.5)
            ax.plot(dots, [i] * len(dots), "k.", ms=5)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"{m} accuracy: variant − full recipe (points)", fontsize=9)
        lim = 1.1 * max(abs(v) for v in ax.get_xlim())
        ax.set_xlim(-lim, lim)
    opts = result.options
    axes[0].set_title(f"{opts['n_train']} MNIST-1D signals, {opts['seeds']} seeds", fontsize=9)
    axes[1].set_title("effect on test accuracy (dots: seeds)", fontsize=9)
    axes[2].set_title("effect on training accuracy (dots: seeds)", fontsize=9)
    fig.tight_layout()
    return fig
