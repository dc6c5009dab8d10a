"""Experiments of the chapter "Choosing and combining regularizers".

- ``solid_default``: :func:`regcourse.recipe.solid_default` (AdamW with weight decay,
  early stopping, augmentation, batch norm, dropout, label smoothing) against
  :func:`regcourse.recipe.no_regularization` (the same small CNN and budget with none of
  them) on a few hundred digits, over several seeds.
- ``forgotten_eval``: the classic bug of measuring a model with dropout and batch norm
  while it is still in ``train()`` mode: outputs that change from pass to pass, a
  batch of one that cannot be normalised, running statistics overwritten by the test
  data, and a lower accuracy than in ``eval()`` mode.
- ``ablation``: the recipe with one component switched off at a time.
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import torch
from torch import nn

from .._checks import check_scalar
from ..data import digits_split
from ..recipe import no_regularization, solid_default
from ..training import evaluate, seeded
from . import Result, experiment, mean_std

__all__ = [
    "solid_default_vs_none", "forgotten_eval", "ablation", "mean_std", "ABLATION_ARMS", "NONE_ARM",
]

_N_VAL = 100
_N_DIGITS = 1797
_MIN_TEST = 500


def _check_n_train(n_train) -> int:
    return check_scalar(n_train, "n_train", kind="int", low=20, high=_N_DIGITS - _N_VAL - _MIN_TEST)


# --------------------------------------------------------------------------- solid_default
@experiment(
    "solid_default",
    "the solid default recipe against no regularization: a small CNN on a few hundred digits",
    seeds="number of seeds (data split, weights, shuffling, augmentation, dropout)",
    n_train="training images",
    epochs="epoch budget of both setups (early stopping may end the recipe sooner)",
    channels="channels of the small CNN",
)
def solid_default_vs_none(
    seeds: int = 3,
    n_train: int = 150,
    epochs: int = 60,
    channels: int = 16,
    progress: bool = False,
) -> Result:
    """Run the recipe and the baseline on the same data, weights and budget per seed.

    Returns:
        Result: one row per seed and setup (``"solid default"``, ``"no regularization"``)
        with train/test accuracy, gap and the epochs trained; ``extra["summary"]`` holds
        ``{setup: {"train_acc"|"test_acc"|"gap": (mean, std)}}``, ``extra["histories"]``
        the runs' histories and ``extra["settings"]`` the recipe's settings.
    """
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    n_train = _check_n_train(n_train)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    channels = check_scalar(channels, "channels", kind="int", low=1)
    setups = {"solid default": solid_default, "no regularization": no_regularization}
    rows, histories, settings = [], {name: [] for name in setups}, None
    for seed in range(seeds):
        data = digits_split(n_train, _N_VAL, seed=seed)
        for name, fit in setups.items():
            out = fit(data, model="cnn", channels=channels, epochs=epochs, seed=seed,
                      progress=progress)
            if name == "solid default":
                settings = out.settings
            histories[name].append(out.history)
            rows.append({
                "seed": seed, "setup": name, "train_acc": out.train_acc, "test_acc": out.test_acc,
                "gap": out.gap, "epochs_trained": out.history.stopped_epoch,
                "best_epoch": out.history.best_epoch,
            })

    def column(setup, key):
        return [r[key] for r in rows if r["setup"] == setup]

    keys = ("train_acc", "test_acc", "gap")
    summary = {s: {k: mean_std(column(s, k)) for k in keys} for s in setups}
    rec, base = summary["solid default"], summary["no regularization"]
    claims = {
        "the recipe has the smaller train-test gap in every seed": all(
            a < b
            for a, b in zip(column("solid default", "gap"), column("no regularization", "gap"))
        ),
        "the recipe's mean gap is less than two thirds of the baseline's":
            rec["gap"][0] < base["gap"][0] * 2 / 3,
        "the recipe's mean test accuracy is higher than the baseline's by more than 1 point":
            rec["test_acc"][0] > base["test_acc"][0] + 0.01,
        "without regularization the CNN fits every training image in every seed": all(
            a == 1.0 for a in column("no regularization", "train_acc")
        ),
    }
    fig = _bars_and_curves(summary, histories, n_train, seeds)
    return Result(
        "solid_default",
        {"seeds": seeds, "n_train": n_train, "epochs": epochs, "channels": channels},
        rows,
        claims,
        fig,
        extra={"summary": summary, "histories": histories, "settings": settings},
    )


def _bars_and_curves(summary, histories, n_train, seeds):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    setups = list(summary)
    for i, key in enumerate(("train_acc", "test_acc")):
        means = [summary[s][key][0] for s in setups]
        stds = [summary[s][key][1] for s in setups]
        xs = [j + (i - 0.5) * 0.38 for j in range(len(setups))]
        ax1.bar(xs, means, 0.38, yerr=stds, capsize=3, label=key.replace("_acc", " accuracy"))
    ax1.set_xticks(range(len(setups)), setups)
    ax1.set_ylim(0.85, 1.06)
    ax1.set_ylabel("accuracy")
    ax1.set_title(f"{n_train} digits, mean ± std over {seeds} seed{'s' if seeds > 1 else ''}")
    ax1.legend(loc="upper center", ncol=2, fontsize=8)
    for s, color in zip(setups, ("C2", "C3")):
        h = histories[s][0]
        epochs = range(1, len(h.val_loss) + 1)
        ax2.plot(epochs, h.train_loss, color=color, ls="--", lw=1, label=f"{s}: training")
        ax2.plot(epochs, h.val_loss, color=color, label=f"{s}: validation")
        if s == "solid default" and h.best_epoch != h.stopped_epoch:
            ax2.axvline(h.best_epoch, color=color, ls=":", lw=1)
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("cross-entropy (eval mode)")
    ax2.set_title("seed 0: loss curves")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- forgotten_eval
@torch.no_grad()
def _accuracy_in_batches(model, x, y, batch_size: int) -> float:
    """Accuracy of ``model`` *in whatever mode it is in*, over batches of ``batch_size``.

    A last batch of a single example is merged into the one before it, because batch
    norm cannot normalise a batch of one in training mode.
    """
    starts = list(range(0, len(x), batch_size))
    if len(starts) > 1 and len(x) - starts[-1] == 1:
        starts.pop()
    ends = starts[1:] + [len(x)]
    correct = 0
    for i, j in zip(starts, ends):
        correct += (model(x[i:j]).argmax(1) == y[i:j]).sum().item()
    return correct / len(x)


@experiment(
    "forgotten_eval",
    "the forgotten model.eval() bug: an MLP with dropout and batch norm measured in train mode",
    n_train="training images",
    epochs="epoch budget of the recipe",
    hidden="width of the MLP's hidden layers",
    batch_size="evaluation batch size of the buggy (train-mode) measurement",
    margin="accuracy points (%%) by which train mode must fall below eval mode",
    seed="seed of the data, the training and the dropout masks",
)
def forgotten_eval(
    n_train: int = 300,
    epochs: int = 40,
    hidden: int = 128,
    batch_size: int = 8,
    margin: float = 10.0,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Train an MLP with the recipe, then measure it correctly and with ``model.eval()`` forgotten.

    The buggy measurements run on deep copies of the trained model, so the correct
    ones are not affected by the running statistics the buggy passes overwrite.

    Returns:
        Result: one row per measurement (mode, evaluation batch size, accuracy);
        ``extra`` holds the model, ``max_diff_train``/``max_diff_eval`` (largest
        difference between two passes over the test set), the error raised by a
        batch of one, and the accuracies.
    """
    n_train = _check_n_train(n_train)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=2)
    margin = check_scalar(margin, "margin", low=0, high=100)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    data = digits_split(n_train, _N_VAL, seed=seed)
    fit = solid_default(data, model="mlp", hidden=hidden, epochs=epochs, seed=seed,
                        progress=progress)
    model = fit.model
    x, y = data.x_test, data.y_test

    with torch.no_grad():
        model.eval()
        eval_1, eval_2 = model(x), model(x)
    eval_acc = evaluate(model, x, y)[1]
    eval_acc_small = _accuracy_in_batches(model.eval(), x, y, batch_size)

    buggy = copy.deepcopy(model).train()          # the bug: still in training mode
    bn = next(m for m in buggy.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    bn_before = bn.running_mean.clone()
    with seeded(seed), torch.no_grad():
        train_1, train_2 = buggy(x), buggy(x)
        try:
            buggy(x[:1])
            single_error = ""
        except ValueError as err:
            single_error = str(err)
    stats_moved = not torch.equal(bn_before, bn.running_mean)

    rows = [{"mode": "eval", "batch_size": len(x), "accuracy": eval_acc},
            {"mode": "eval", "batch_size": batch_size, "accuracy": eval_acc_small}]
    train_accs = {}
    for bs in (batch_size, 64, len(x)):
        with seeded(seed):
            train_accs[bs] = _accuracy_in_batches(copy.deepcopy(model).train(), x, y, bs)
        rows.append({"mode": "train", "batch_size": bs, "accuracy": train_accs[bs]})

    max_diff_train = (train_1 - train_2).abs().max().item()
    max_diff_eval = (eval_1 - eval_2).abs().max().item()
    claims = {
        "train mode: two passes over the same test set give different outputs (max difference > 0)":
            max_diff_train > 0,
        "eval mode: two passes give identical outputs": torch.equal(eval_1, eval_2),
        f"eval mode: batches of {batch_size} give the same predictions as one big batch":
            eval_acc_small == eval_acc,
        "train mode: a batch of one example raises ValueError": bool(single_error),
        "train mode: the forward passes overwrote batch norm's running statistics": stats_moved,
        f"train-mode accuracy in batches of {batch_size} is more than {margin:g} points "
        "below eval mode": train_accs[batch_size] < eval_acc - margin / 100,
    }
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = ["eval()\nany batch"] + [
        f"train()\nbatch {bs}" if bs != len(x) else "train()\nwhole test set" for bs in train_accs
    ]
    values = [eval_acc] + list(train_accs.values())
    ax.bar(range(len(values)), values, color=["C2"] + ["C3"] * len(train_accs))
    for i, v in enumerate(values):
        ax.text(i, v + 0.005, f"{v:.3f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(values)), labels)
    ax.set_ylim(min(values) - 0.1, 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title("The same trained MLP, measured in eval() and in train() mode")
    fig.tight_layout()
    return Result(
        "forgotten_eval",
        {"n_train": n_train, "epochs": epochs, "hidden": hidden, "batch_size": batch_size,
         "margin": margin, "seed": seed},
        rows,
        claims,
        fig,
        extra={
            "model": model, "data": data, "max_diff_train": max_diff_train,
            "max_diff_eval": max_diff_eval, "single_error": single_error, "eval_acc": eval_acc,
            "train_accs": train_accs,
        },
    )


# --------------------------------------------------------------------------- ablation
#: Each arm of ``ablation``: the arguments of ``solid_default`` that switch one component off.
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


@experiment(
    "ablation",
    "the solid default recipe with one component switched off at a time (small CNN, digits)",
    seeds="number of seeds",
    n_train="training images",
    epochs="epoch budget",
    channels="channels of the small CNN",
)
def ablation(
    seeds: int = 2,
    n_train: int = 150,
    epochs: int = 60,
    channels: int = 16,
    progress: bool = False,
) -> Result:
    """Train the recipe, each one-component-off variant and the unregularized baseline on
    the same data and seeds.

    Returns:
        Result: one row per arm (the arms of :data:`ABLATION_ARMS`, then
        ``"no regularization"``) with mean and std of the test accuracy over seeds and
        its drop against the full recipe; ``extra["per_seed"]`` has every run.
    """
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    n_train = _check_n_train(n_train)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    channels = check_scalar(channels, "channels", kind="int", low=1)
    arms = list(ABLATION_ARMS) + [NONE_ARM]
    per_seed = []
    for seed in range(seeds):
        data = digits_split(n_train, _N_VAL, seed=seed)
        common = dict(model="cnn", channels=channels, epochs=epochs, seed=seed, progress=progress)
        for arm in arms:
            if arm == NONE_ARM:
                fit = no_regularization(data, **common)
            else:
                fit = solid_default(data, **common, **ABLATION_ARMS[arm])
            per_seed.append({"seed": seed, "arm": arm, "train_acc": fit.train_acc,
                             "test_acc": fit.test_acc})
    means = {}
    rows = []
    for arm in arms:
        m, s = mean_std(r["test_acc"] for r in per_seed if r["arm"] == arm)
        means[arm] = m
        rows.append({"arm": arm, "test_acc_mean": m, "test_acc_std": s})
    for row in rows:
        row["drop_vs_full"] = means["full recipe"] - row["test_acc_mean"]
    one_off = [r for r in rows if r["arm"] not in ("full recipe", NONE_ARM)]
    gain = means["full recipe"] - means[NONE_ARM]
    largest = max(one_off, key=lambda r: abs(r["drop_vs_full"]))
    claims = {
        "the recipe without any single one of its components still beats no regularization":
            all(r["test_acc_mean"] > means[NONE_ARM] for r in one_off),
        "no single component changes the test accuracy by as much as the whole recipe gains":
            abs(largest["drop_vs_full"]) < gain,
    }
    fig, ax = plt.subplots(figsize=(6, 3.5))
    colors = ["C2"] + ["C0"] * len(one_off) + ["C3"]
    ax.barh(range(len(rows)), [r["test_acc_mean"] for r in rows],
            xerr=[r["test_acc_std"] for r in rows], color=colors, capsize=3)
    ax.set_yticks(range(len(rows)), [r["arm"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(min(r["test_acc_mean"] for r in rows) - 0.03, 1.0)
    ax.set_xlabel("test accuracy")
    ax.set_title(f"Ablation, {n_train} digits, {seeds} seed{'s' if seeds > 1 else ''}")
    fig.tight_layout()
    return Result(
        "ablation",
        {"seeds": seeds, "n_train": n_train, "epochs": epochs, "channels": channels},
        rows,
        claims,
        fig,
        extra={"per_seed": per_seed, "gain": gain, "largest_change": largest["arm"]},
    )
