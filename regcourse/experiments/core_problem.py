"""Experiment of the chapter "The core problem: memorization vs generalization".

One wide MLP, trained on a small digits training set in which a fraction of the
labels has been replaced by a wrong class, three times per seed: without
regularization, with light regularization (a little dropout, a little weight
decay) and with heavy regularization (much dropout, strong weight decay). Every
seed uses its own split, label noise and initial weights, shared by the three
levels, so the levels are compared on identical data and starting points.

The table reports the mean ± standard deviation over the seeds of the training
accuracy (measured against the training labels as given, noisy ones included,
as a practitioner would see it), the test accuracy (clean held-out digits), their
gap, and how many of the corrupted training labels the network reproduces. The
diagnosis column is computed from the two mean accuracies by :func:`diagnose`.
"""

from __future__ import annotations

import torch

from .._checks import check_scalar
from ..data import digits_split
from ..models import build_model
from ..plotting import mean_std_bars
from ..training import evaluate, train
from . import Result, experiment, mean_std

__all__ = ["LEVELS", "SOURCE_TABLE", "core_problem", "diagnose", "mean_std"]

#: the three regularization levels, in the order of the table
LEVELS = ("none", "light", "heavy")

#: the source's table, quoted: level -> (train accuracy %, test accuracy %, diagnosis).
#: The source states no data set, model or training setup for it.
SOURCE_TABLE = {
    "none": (99.8, 72.1, "Severe overfitting"),
    "light": (97.2, 89.4, "Mild overfitting"),
    "heavy": (88.5, 87.9, "Slight underfitting"),
}

_N_DIGITS = 1797  # images in scikit-learn's digits
_N_VAL = 100  # validation examples (train() measures on them; the table uses the test set)
_MIN_TEST = 500  # keep at least this many test digits


def diagnose(
    train_acc: float,
    test_acc: float,
    *,
    severe_gap: float = 15.0,
    mild_gap: float = 5.0,
    fit_train: float = 95.0,
    underfit_train: float = 80.0,
) -> str:
    """Name the fit of a model from its training and test accuracy, in percent.

    The rule, with the gap ``g = train_acc - test_acc`` in percentage points:

    - ``g >= severe_gap``: ``"Severe overfitting"``;
    - ``mild_gap <= g < severe_gap``: ``"Mild overfitting"``;
    - ``g < mild_gap`` (train and test agree) and ``train_acc >= fit_train``: ``"Good fit"``;
    - ``g < mild_gap`` and ``underfit_train <= train_acc < fit_train``: ``"Slight underfitting"``;
    - ``g < mild_gap`` and ``train_acc < underfit_train``: ``"Severe underfitting"``.

    Applied to the source's table (99.8/72.1, 97.2/89.4, 88.5/87.9) it gives the
    source's own diagnoses.

    Args:
        train_acc (float): training accuracy in percent, in ``[0, 100]``.
        test_acc (float): test accuracy in percent, in ``[0, 100]``.
        severe_gap (float): smallest gap called severe overfitting. Default: ``15.0``.
        mild_gap (float): smallest gap called overfitting at all; must be
            ``<= severe_gap``. Default: ``5.0``.
        fit_train (float): smallest training accuracy of a good fit. Default: ``95.0``.
        underfit_train (float): training accuracy below which underfitting is severe;
            must be ``<= fit_train``. Default: ``80.0``.

    Returns:
        str: one of the five labels above.

    Example:
        >>> diagnose(99.8, 72.1)
        'Severe overfitting'
        >>> diagnose(88.5, 87.9)
        'Slight underfitting'

    Used in: chapter "The core problem: memorization vs generalization".
    """
    train_acc = check_scalar(train_acc, "train_acc", low=0, high=100)
    test_acc = check_scalar(test_acc, "test_acc", low=0, high=100)
    severe_gap = check_scalar(severe_gap, "severe_gap", low=0, high=100)
    mild_gap = check_scalar(mild_gap, "mild_gap", low=0, high=severe_gap)
    fit_train = check_scalar(fit_train, "fit_train", low=0, high=100)
    underfit_train = check_scalar(underfit_train, "underfit_train", low=0, high=fit_train)
    gap = train_acc - test_acc
    if gap >= severe_gap:
        return "Severe overfitting"
    if gap >= mild_gap:
        return "Mild overfitting"
    if train_acc >= fit_train:
        return "Good fit"
    if train_acc >= underfit_train:
        return "Slight underfitting"
    return "Severe underfitting"


@torch.no_grad()
def _predict(model, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x).argmax(1)


@experiment(
    "core_problem",
    "train/test accuracy of a wide MLP on noisy digits with none, light and heavy regularization",
    seeds="number of seeds (each: its own split, label noise and weights)",
    epochs="training epochs of every run",
    n_train="training examples (small, so the network can memorise them)",
    label_noise="fraction of training labels replaced by a random wrong class",
    hidden="width of the MLP's two hidden layers",
    lr="AdamW learning rate",
    batch_size="mini-batch size",
    light_dropout="drop probability p of the light level",
    light_weight_decay="AdamW weight decay of the light level",
    heavy_dropout="drop probability p of the heavy level",
    heavy_weight_decay="AdamW weight decay of the heavy level",
    memorize_threshold="training accuracy in percent that counts as 'nearly memorised'",
)
def core_problem(
    seeds: int = 5,
    epochs: int = 50,
    n_train: int = 200,
    label_noise: float = 0.15,
    hidden: int = 256,
    lr: float = 2e-3,
    batch_size: int = 64,
    light_dropout: float = 0.2,
    light_weight_decay: float = 1.0,
    heavy_dropout: float = 0.6,
    heavy_weight_decay: float = 2.5,
    memorize_threshold: float = 98.0,
    progress: bool = False,
) -> Result:
    """Run the chapter's experiment; see the module docstring.

    Returns:
        Result: one row per level (``none``, ``light``, ``heavy``) with its settings,
        the mean and standard deviation over seeds of the training accuracy, test
        accuracy and gap (all in percent), the percentage of corrupted training
        labels the network reproduces (``noise_fit``, ``None`` without label noise)
        and the diagnosis. ``extra["per_seed"]`` holds every single run,
        ``extra["histories"]`` their :class:`~regcourse.training.History` objects.
    """
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    n_max = _N_DIGITS - _N_VAL - _MIN_TEST
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=n_max)
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    light_dropout = check_scalar(light_dropout, "light_dropout", low=0, high=1, closed="left")
    heavy_dropout = check_scalar(heavy_dropout, "heavy_dropout", low=0, high=1, closed="left")
    light_weight_decay = check_scalar(light_weight_decay, "light_weight_decay", low=0)
    heavy_weight_decay = check_scalar(heavy_weight_decay, "heavy_weight_decay", low=0)
    memorize_threshold = check_scalar(memorize_threshold, "memorize_threshold", low=0, high=100)
    options = dict(
        seeds=seeds, epochs=epochs, n_train=n_train, label_noise=label_noise, hidden=hidden, lr=lr,
        batch_size=batch_size, light_dropout=light_dropout, light_weight_decay=light_weight_decay,
        heavy_dropout=heavy_dropout, heavy_weight_decay=heavy_weight_decay,
        memorize_threshold=memorize_threshold,
    )
    settings = {
        "none": (0.0, 0.0),
        "light": (light_dropout, light_weight_decay),
        "heavy": (heavy_dropout, heavy_weight_decay),
    }

    per_seed: list[dict] = []
    histories: dict[str, list] = {level: [] for level in LEVELS}
    for seed in range(seeds):
        data = digits_split(n_train, _N_VAL, label_noise=label_noise, seed=seed)
        # The same seed without noise gives the same shuffle: its labels are the clean ones.
        clean = digits_split(n_train, _N_VAL, label_noise=0.0, seed=seed).y_train
        flipped = data.y_train != clean
        for level in LEVELS:
            p, wd = settings[level]
            model = build_model("mlp", seed=seed, hidden=hidden, depth=2, dropout=p)
            hist = train(
                model, data, epochs=epochs, lr=lr, weight_decay=wd, optimizer="adamw",
                batch_size=batch_size, seed=seed, progress=progress, desc=f"{level}, seed {seed}",
            )
            _, test_acc = evaluate(model, data.x_test, data.y_test)
            pred = _predict(model, data.x_train)
            n_flipped = int(flipped.sum())
            noise_fit = (
                100.0 * float((pred[flipped] == data.y_train[flipped]).double().mean())
                if n_flipped else None
            )
            per_seed.append({
                "level": level, "seed": seed,
                "train_acc": 100.0 * hist.train_acc[-1], "test_acc": 100.0 * test_acc,
                "clean_train_acc": 100.0 * float((pred == clean).double().mean()),
                "n_flipped": n_flipped, "noise_fit": noise_fit,
            })
            histories[level].append(hist)

    rows = []
    for level in LEVELS:
        runs = [r for r in per_seed if r["level"] == level]
        tr_m, tr_s = mean_std(r["train_acc"] for r in runs)
        te_m, te_s = mean_std(r["test_acc"] for r in runs)
        gap_m, gap_s = mean_std(r["train_acc"] - r["test_acc"] for r in runs)
        fits = [r["noise_fit"] for r in runs if r["noise_fit"] is not None]
        rows.append({
            "level": level,
            "dropout": settings[level][0],
            "weight_decay": settings[level][1],
            "train_acc": tr_m, "train_acc_std": tr_s,
            "test_acc": te_m, "test_acc_std": te_s,
            "gap": gap_m, "gap_std": gap_s,
            "clean_train_acc": mean_std(r["clean_train_acc"] for r in runs)[0],
            "noise_fit": mean_std(fits)[0] if fits else None,
            "diagnosis": diagnose(tr_m, te_m),
        })

    by = {row["level"]: row for row in rows}
    claims = {
        f"without regularization the net nearly memorises its training set "
        f"(train accuracy >= {memorize_threshold:g}%)":
            by["none"]["train_acc"] >= memorize_threshold,
        "the train-test gap shrinks: none > light > heavy":
            by["none"]["gap"] > by["light"]["gap"] > by["heavy"]["gap"],
        "heavy regularization has the lowest training accuracy":
            by["heavy"]["train_acc"] < min(by["none"]["train_acc"], by["light"]["train_acc"]),
        "regularization raises test accuracy: light and heavy both beat none":
            min(by["light"]["test_acc"], by["heavy"]["test_acc"]) > by["none"]["test_acc"],
    }
    if by["none"]["noise_fit"] is not None:  # some training labels were corrupted
        claims[
            "the unregularized net reproduces >= 90% of the corrupted training labels, "
            "the heavily regularized one <= 40%"
        ] = by["none"]["noise_fit"] >= 90 and by["heavy"]["noise_fit"] <= 40

    def column(key):
        return [by[level][key] for level in LEVELS]

    fig = mean_std_bars(
        [f"{level}\n(p={settings[level][0]:g}, wd={settings[level][1]:g})" for level in LEVELS],
        {
            "train": (column("train_acc"), column("train_acc_std")),
            "test": (column("test_acc"), column("test_acc_std")),
        },
        ylabel="accuracy (%)",
        title=f"{n_train} digits, {label_noise:.0%} noisy labels, {seeds} seeds (mean ± std)",
    )
    ax = fig.axes[0]
    ax.set_ylim(0, 119)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(loc="lower left")
    for i, level in enumerate(LEVELS):
        label = by[level]["diagnosis"].replace(" ", "\n", 1)
        ax.text(i, 104, label, ha="center", va="bottom", fontsize=8)
    fig.tight_layout()

    return Result(
        "core_problem", options, rows, claims, fig,
        extra={"per_seed": per_seed, "histories": histories, "settings": settings},
    )
