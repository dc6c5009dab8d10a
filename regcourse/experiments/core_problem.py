"""Experiments of the chapter "The core problem: memorization vs generalization".

All of them train on MNIST-1D (:func:`regcourse.data.mnist1d_split`, the benchmark's
4,000 training and 1,000 test signals) with the training loop that the chapter writes
out once from scratch; :func:`fit` is that loop in a few lines, built on
:func:`regcourse.training.train_epoch` and :func:`regcourse.training.evaluate`:

- :func:`core_problem`: the benchmark's MLP (40 → 100 → 100 → 10) without, with light
  and with heavy regularization (dropout and AdamW weight decay), over several seeds;
  the table of train and test accuracy, their gap and a diagnosis (:func:`diagnose`).
- :func:`mnist1d_baselines`: the benchmark's three models (logistic regression, MLP,
  1-D CNN) over several seeds, beside the published test accuracies
  (:data:`regcourse.data.MNIST1D_PUBLISHED`).
- :func:`random_labels`: Zhang et al. (2017)'s experiment: the same MLP trained on the
  true labels and on labels drawn uniformly at random.

A seed fixes a run's initial weights, its mini-batch order and its dropout masks; the
data are the benchmark's own and the same for every seed. The figure of each
:class:`~regcourse.experiments.Result` is closed (a notebook does not draw it by itself):
show it with :func:`regcourse.plotting.show_figure` or save it with ``savefig``. Training runs with one torch
thread (``regcourse.experiments._common.one_thread``), so results do not depend on
the number of threads.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from .._checks import check_choice, check_scalar
from .._random import seeded
from ..data import MNIST1D_PUBLISHED, Split, mnist1d_split
from ..models import mnist1d_model
from ..plotting import mean_std_bars
from ..training import evaluate, make_optimizer, minibatches, train_epoch
from . import Result, experiment, mean_std
from ._common import one_thread

__all__ = [
    "LEVELS",
    "MNIST1D_NOTEBOOK_RUN",
    "MODELS",
    "SOURCE_TABLE",
    "accuracy_curves",
    "baselines_figure",
    "core_problem",
    "diagnose",
    "fit",
    "mean_std",
    "mnist1d_baselines",
    "random_labels",
    "training_subset",
]

#: the three regularization levels, in the order of the table
LEVELS = ("none", "light", "heavy")

#: the MNIST-1D benchmark's models, in the order of the published table
MODELS = ("logistic", "mlp", "cnn")

#: the source's table, quoted: level -> (train accuracy %, test accuracy %, diagnosis).
#: The source states no data set, model or training setup for it.
SOURCE_TABLE = {
    "none": (99.8, 72.1, "Severe overfitting"),
    "light": (97.2, 89.4, "Mild overfitting"),
    "heavy": (88.5, 87.9, "Slight underfitting"),
}

#: Test accuracy (percent) after 6,000 steps in the MNIST-1D repository's own benchmark
#: notebook, ``notebooks/mnist1d-classification.ipynb`` as committed (d537845, May 2024):
#: one run (seed 42) of each model with the published training setup, its MLP with the
#: skip connection of ``MLPBase``. Quoted, like :data:`regcourse.data.MNIST1D_PUBLISHED`
#: (the README's rounded table), as an outside reference.
MNIST1D_NOTEBOOK_RUN = {"logistic": 31.5, "mlp": 65.1, "cnn": 92.3}

_N_TRAIN = 4000  # MNIST-1D's training set (make_dataset's default split)


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


def training_subset(data: Split, n_train: int) -> Split:
    """``data`` with only its first ``n_train`` training examples (validation and test kept).

    Args:
        data (Split): a split, e.g. :func:`regcourse.data.mnist1d_split`.
        n_train (int): training examples to keep, ``10 <= n_train <= len(data.y_train)``.

    Returns:
        Split: the same data set with ``x_train[:n_train]`` and ``y_train[:n_train]``
        (the benchmark's order, no randomness); ``data`` itself if nothing is cut.

    Example:
        >>> training_subset(mnist1d_split(), 1000)
        Split(train=1000, val=0, test=1000, input=(40,), classes=10)

    Used in: chapter "The core problem: memorization vs generalization".
    """
    if not isinstance(data, Split):
        raise TypeError(f"data must be a regcourse.data.Split, got {type(data).__name__}")
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=len(data.y_train))
    if n_train == len(data.y_train):
        return data
    return Split(
        data.x_train[:n_train],
        data.y_train[:n_train],
        data.x_val,
        data.y_val,
        data.x_test,
        data.y_test,
        data.num_classes,
    )


def fit(
    model: torch.nn.Module,
    data: Split,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 100,
    weight_decay: float = 0.0,
    seed: int = 0,
    curves: bool = False,
) -> dict:
    """Train ``model`` on ``data``'s training set as the chapter's loop does, then measure it.

    The loop, per epoch: shuffle the training set with a ``torch.Generator`` seeded
    with ``seed`` and cut it into mini-batches of ``batch_size``
    (:func:`~regcourse.training.minibatches`), then one optimizer step per batch in
    training mode (:func:`~regcourse.training.train_epoch`: forward, cross-entropy,
    ``zero_grad``, ``backward``, ``step``). The optimizer is Adam with learning rate
    ``lr`` when ``weight_decay`` is 0 (the MNIST-1D benchmark's optimizer) and AdamW
    with decoupled weight decay ``weight_decay`` otherwise. Measurements use
    :func:`~regcourse.training.evaluate` (``model.eval()`` and ``torch.no_grad()``) on
    the training and test sets, and on the validation set if ``data`` has one.
    Training runs with one torch thread and with torch's global generator seeded with
    ``seed`` (dropout draws its masks from it), restored afterwards.

    Args:
        model (nn.Module): the network, trained in place.
        data (Split): ``x_train``/``y_train`` to train on; ``x_test``/``y_test`` (and a
            non-empty ``x_val``/``y_val``) to measure.
        epochs (int, keyword only): passes over the training set, ``>= 1``.
        lr (float, keyword only): learning rate, ``> 0``.
        batch_size (int, keyword only): examples per step. Default: ``100``.
        weight_decay (float, keyword only): AdamW's weight decay λ (each step multiplies
            the weights by ``1 - lr·λ``); ``0`` means plain Adam. Default: ``0.0``.
        seed (int, keyword only): seed of the batch order and of dropout. Default: ``0``.
        curves (bool, keyword only): also measure after every epoch. Default: ``False``.

    Returns:
        dict: after the last epoch, ``train_acc``, ``test_acc`` (percent) and
        ``train_loss``, ``test_loss`` (mean cross-entropy), and ``val_acc``, ``val_loss``
        if there is a validation set; with ``curves=True`` also ``"curves"``: the same
        keys, each a list with one value per epoch.

    Example:
        >>> data = training_subset(mnist1d_split(), 100)
        >>> out = fit(mnist1d_model("logistic"), data, epochs=2, lr=0.01, curves=True)
        >>> sorted(out["curves"]), len(out["curves"]["test_acc"])
        (['test_acc', 'test_loss', 'train_acc', 'train_loss'], 2)

    Used in: chapters "The core problem: memorization vs generalization", "Early stopping".
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a regcourse.data.Split, got {type(data).__name__}")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    if not isinstance(curves, bool):
        raise TypeError(f"curves must be a bool, got {curves!r}")
    name = "adam" if weight_decay == 0 else "adamw"
    optimizer = make_optimizer(model, name, lr, weight_decay)
    generator = torch.Generator().manual_seed(seed)
    parts = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    if len(data.y_val):
        parts["val"] = (data.x_val, data.y_val)

    def measure() -> dict[str, float]:
        out = {}
        for part, (x, y) in parts.items():
            loss, acc = evaluate(model, x, y)
            out[f"{part}_acc"], out[f"{part}_loss"] = 100.0 * acc, loss
        return out

    history: dict[str, list[float]] = {}
    with one_thread(), seeded(seed):
        for _ in range(epochs):
            batches = minibatches(data.x_train, data.y_train, batch_size, generator)
            train_epoch(model, batches, F.cross_entropy, optimizer)
            if curves:
                for key, value in measure().items():
                    history.setdefault(key, []).append(value)
        result: dict = measure()
    if curves:
        result["curves"] = history
    return result


def _check_common(seeds, epochs, lr, batch_size):
    return (
        check_scalar(seeds, "seeds", kind="int", low=1),
        check_scalar(epochs, "epochs", kind="int", low=1),
        check_scalar(lr, "lr", low=0, closed="neither"),
        check_scalar(batch_size, "batch_size", kind="int", low=1),
    )


def _progress(runs: list, progress: bool, desc: str):
    if not progress:
        return runs
    from tqdm.auto import tqdm

    return tqdm(runs, desc=desc, unit="run", leave=False)


@torch.no_grad()
def _predict(model, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x).argmax(1)


def _level_run(model, data: Split, clean: Split, out: dict) -> dict:
    """Accuracies of one trained run, and how many corrupted training labels it reproduces."""
    pred = _predict(model, data.x_train)
    flipped = data.y_train != clean.y_train
    n_flipped = int(flipped.sum())
    noise_fit = None
    if n_flipped:
        noise_fit = 100.0 * float((pred[flipped] == data.y_train[flipped]).double().mean())
    return {
        "train_acc": out["train_acc"],
        "test_acc": out["test_acc"],
        "clean_train_acc": 100.0 * float((pred == clean.y_train).double().mean()),
        "n_flipped": n_flipped,
        "noise_fit": noise_fit,
    }


def _level_rows(per_seed: list[dict], settings: dict) -> list[dict]:
    """One row per level: its settings, mean ± std over seeds, and the diagnosis."""
    rows = []
    for level in LEVELS:
        mine = [r for r in per_seed if r["level"] == level]
        tr_m, tr_s = mean_std(r["train_acc"] for r in mine)
        te_m, te_s = mean_std(r["test_acc"] for r in mine)
        gap_m, gap_s = mean_std(r["train_acc"] - r["test_acc"] for r in mine)
        fits = [r["noise_fit"] for r in mine if r["noise_fit"] is not None]
        rows.append(
            {
                "level": level,
                "dropout": settings[level][0],
                "weight_decay": settings[level][1],
                "train_acc": tr_m,
                "train_acc_std": tr_s,
                "test_acc": te_m,
                "test_acc_std": te_s,
                "gap": gap_m,
                "gap_std": gap_s,
                "clean_train_acc": mean_std(r["clean_train_acc"] for r in mine)[0],
                "noise_fit": mean_std(fits)[0] if fits else None,
                "diagnosis": diagnose(tr_m, te_m),
            }
        )
    return rows


def _levels_figure(rows: list[dict], title: str):
    by = {row["level"]: row for row in rows}
    fig = mean_std_bars(
        [f"{r['level']}\n(p={r['dropout']:g}, λ={r['weight_decay']:g})" for r in rows],
        {
            "train": ([r["train_acc"] for r in rows], [r["train_acc_std"] for r in rows]),
            "test": ([r["test_acc"] for r in rows], [r["test_acc_std"] for r in rows]),
        },
        ylabel="accuracy (%)",
        title=title,
    )
    ax = fig.axes[0]
    ax.set_ylim(0, 119)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(loc="lower left")
    for i, level in enumerate(LEVELS):
        label = by[level]["diagnosis"].replace(" ", "\n", 1)
        ax.text(i, 104, label, ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


@experiment(
    "core_problem",
    "MNIST-1D: train/test accuracy of the benchmark's MLP with none, light and heavy "
    "regularization",
    seeds="number of seeds (each: its own initial weights, batch order and dropout masks)",
    epochs="training epochs of every run",
    n_train="training examples: the first n_train of MNIST-1D's 4,000",
    label_noise="fraction of training labels replaced by a random wrong class",
    hidden="width of the MLP's two hidden layers",
    lr="learning rate of Adam (none) and AdamW (light, heavy)",
    batch_size="mini-batch size",
    light_dropout="drop probability p of the light level",
    light_weight_decay="AdamW weight decay of the light level",
    heavy_dropout="drop probability p of the heavy level",
    heavy_weight_decay="AdamW weight decay of the heavy level",
    memorize_threshold="training accuracy in percent that counts as 'memorised'",
)
def core_problem(
    seeds: int = 5,
    epochs: int = 40,
    n_train: int = 4000,
    label_noise: float = 0.0,
    hidden: int = 100,
    lr: float = 0.01,
    batch_size: int = 100,
    light_dropout: float = 0.2,
    light_weight_decay: float = 0.05,
    heavy_dropout: float = 0.5,
    heavy_weight_decay: float = 0.5,
    memorize_threshold: float = 95.0,
    progress: bool = False,
) -> Result:
    """The benchmark's MLP on MNIST-1D at three levels of regularization, over seeds.

    For each seed ``0, 1, ..., seeds - 1`` and each level a fresh MLP
    (:func:`regcourse.models.mnist1d_model`, seeded with the seed) is trained with
    :func:`fit`: ``none`` without dropout or weight decay (Adam), ``light`` and
    ``heavy`` with dropout after each hidden layer and AdamW weight decay. The three
    levels of one seed share the initial weights and the batch order.

    Returns:
        Result: one row per level (``none``, ``light``, ``heavy``) with its settings, the
        mean and standard deviation over seeds of the training accuracy, the test
        accuracy and their gap (percent), the percentage of corrupted training labels
        the network reproduces (``noise_fit``; ``None`` without label noise) and the
        diagnosis of the mean accuracies (:func:`diagnose`). ``extra["per_seed"]``
        holds every run, ``extra["models"]`` the trained networks by ``(level, seed)``.
    """
    seeds, epochs, lr, batch_size = _check_common(seeds, epochs, lr, batch_size)
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=_N_TRAIN)
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    settings = {  # level -> (dropout p, weight decay λ)
        "none": (0.0, 0.0),
        "light": (
            check_scalar(light_dropout, "light_dropout", low=0, high=1, closed="left"),
            check_scalar(light_weight_decay, "light_weight_decay", low=0),
        ),
        "heavy": (
            check_scalar(heavy_dropout, "heavy_dropout", low=0, high=1, closed="left"),
            check_scalar(heavy_weight_decay, "heavy_weight_decay", low=0),
        ),
    }
    memorize = check_scalar(memorize_threshold, "memorize_threshold", low=0, high=100)
    options = dict(seeds=seeds, epochs=epochs, n_train=n_train, label_noise=label_noise,
                   hidden=hidden, lr=lr, batch_size=batch_size,
                   light_dropout=settings["light"][0], light_weight_decay=settings["light"][1],
                   heavy_dropout=settings["heavy"][0], heavy_weight_decay=settings["heavy"][1],
                   memorize_threshold=memorize)  # fmt: skip

    clean = training_subset(mnist1d_split(), n_train)
    per_seed, models = [], {}
    runs = [(seed, level) for seed in range(seeds) for level in LEVELS]
    for seed, level in _progress(runs, progress, "core_problem"):
        data = clean
        if label_noise > 0:  # the seed also chooses which labels are corrupted
            data = training_subset(mnist1d_split(label_noise=label_noise, seed=seed), n_train)
        p, wd = settings[level]
        model = mnist1d_model("mlp", seed=seed, hidden=hidden, dropout=p)
        out = fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size,
                  weight_decay=wd, seed=seed)  # fmt: skip
        per_seed.append({"level": level, "seed": seed, **_level_run(model, data, clean, out)})
        models[level, seed] = model

    rows = _level_rows(per_seed, settings)
    by = {row["level"]: row for row in rows}
    claims = {
        f"without regularization the MLP memorises its training set "
        f"(mean train accuracy >= {memorize:g}%)": by["none"]["train_acc"] >= memorize,
        "the train-test gap shrinks: none > light > heavy":
            by["none"]["gap"] > by["light"]["gap"] > by["heavy"]["gap"],
        "heavy regularization has the lowest training accuracy":
            by["heavy"]["train_acc"] < min(by["none"]["train_acc"], by["light"]["train_acc"]),
        "light regularization has the highest mean test accuracy":
            by["light"]["test_acc"] > max(by["none"]["test_acc"], by["heavy"]["test_acc"]),
    }  # fmt: skip
    if by["none"]["noise_fit"] is not None:
        claims["the unregularized MLP reproduces more corrupted labels than the heavy one"] = (
            by["none"]["noise_fit"] > by["heavy"]["noise_fit"]
        )
    title = f"MNIST-1D MLP, {n_train} training signals, {seeds} seeds (mean ± std)"
    fig = _levels_figure(rows, title)
    plt.close(fig)  # not shown by itself in a notebook: show_figure(result.figure, ...) or save it
    extra = {"per_seed": per_seed, "models": models, "settings": settings}
    return Result("core_problem", options, rows, claims, fig, extra=extra)


def _parse_models(text: str) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"models must be a str such as 'logistic,mlp,cnn', got {text!r}")
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"models must name at least one of {list(MODELS)}, got {text!r}")
    for name in names:
        check_choice(name, "models", MODELS)
    return [m for m in MODELS if m in names]  # the published order, without repeats


def _check_str(value, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _check_numbers(values, name: str, length: int | None = None) -> list[float]:
    """``values`` as a list of finite numbers (numpy and 0-dim torch scalars accepted)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    out = [check_scalar(v, f"{name}[{i}]") for i, v in enumerate(values)]
    if not out:
        raise ValueError(f"{name} must not be empty")
    if length is not None and len(out) != length:
        raise ValueError(f"{name} must have {length} values, got {len(out)}")
    return out


def baselines_figure(rows: list[dict], *, title: str = ""):
    """Bars of our MNIST-1D test accuracies (mean ± std) with the published ones marked.

    Args:
        rows (list of dict): one per model, with ``model``, ``test_acc``,
            ``test_acc_std`` and ``published`` (all accuracies in percent), optionally
            ``notebook_run`` (:data:`MNIST1D_NOTEBOOK_RUN`), drawn as a circle.
        title (str, keyword only): axes title. Default: ``""``.

    Returns:
        matplotlib.figure.Figure: the figure; the y axis starts at 0.

    Used in: chapter "The core problem: memorization vs generalization".
    """
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if not rows:
        raise ValueError("rows must not be empty")
    checked = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"rows[{i}] must be a dict, got {type(row).__name__}")
        missing = [k for k in ("model", "test_acc", "test_acc_std", "published") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks the keys {missing}")
        clean = {"model": str(row["model"])}
        for key in ("test_acc", "published") + (("notebook_run",) if "notebook_run" in row else ()):
            clean[key] = check_scalar(row[key], f"rows[{i}][{key!r}]", low=0, high=100)
        clean["test_acc_std"] = check_scalar(
            row["test_acc_std"], f"rows[{i}]['test_acc_std']", low=0
        )
        checked.append(clean)
    rows = checked
    _check_str(title, "title")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(rows))
    ax.bar(
        xs,
        [r["test_acc"] for r in rows],
        0.6,
        yerr=[r["test_acc_std"] for r in rows],
        capsize=4,
        label="ours (mean ± std over seeds)",
    )
    ax.scatter(
        xs,
        [r["published"] for r in rows],
        marker="D",
        color="black",
        zorder=3,
        label="README table (Greydanus 2020)",
    )
    if all("notebook_run" in r for r in rows):
        ax.scatter(
            xs,
            [r["notebook_run"] for r in rows],
            marker="o",
            s=45,
            facecolors="white",
            edgecolors="black",
            zorder=4,
            label="the benchmark notebook's run",
        )
    for x, r in zip(xs, rows):
        ax.text(x, r["published"] + 3, f"{r['published']:.0f}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), [r["model"] for r in rows])
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


@experiment(
    "mnist1d_baselines",
    "MNIST-1D: the benchmark's logistic regression, MLP and CNN over seeds, beside the "
    "published test accuracies",
    models="comma-separated models to train: logistic, mlp, cnn",
    seeds="number of seeds (each: its own initial weights and batch order)",
    epochs="training epochs of every model (an epoch: 40 steps of 100; the benchmark: 150)",
    lr="Adam learning rate (the benchmark's: 0.01)",
    batch_size="mini-batch size (the benchmark's: 100)",
    tolerance="largest |ours - published| in percentage points that counts as reproduced",
)
def mnist1d_baselines(
    models: str = "logistic,mlp,cnn",
    seeds: int = 3,
    epochs: int = 40,
    lr: float = 0.01,
    batch_size: int = 100,
    tolerance: float = 5.0,
    progress: bool = False,
) -> Result:
    """The MNIST-1D benchmark's baselines, trained as published but for ``epochs`` epochs.

    Each model (:func:`regcourse.models.mnist1d_model`: ``logistic`` 40 → 10, ``mlp``
    40 → 100 → 100 → 10, ``cnn`` the three-layer 1-D CNN) is trained with :func:`fit`
    (Adam, ``lr``, ``batch_size``) for every seed on the benchmark's 4,000 training
    signals and measured on its 1,000 test signals.

    Returns:
        Result: one row per model with the published test accuracy (percent), that of the
        benchmark notebook's run (:data:`MNIST1D_NOTEBOOK_RUN`), our mean and standard
        deviation of the train and test accuracy, the difference ``test_acc - published``
        and whether it is within ``tolerance``.
        ``extra["per_seed"]`` holds every run.
    """
    names = _parse_models(models)
    seeds, epochs, lr, batch_size = _check_common(seeds, epochs, lr, batch_size)
    tolerance = check_scalar(tolerance, "tolerance", low=0, high=100)
    options = dict(
        models=models,
        seeds=seeds,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        tolerance=tolerance,
    )
    data = mnist1d_split()
    runs = [(name, seed) for name in names for seed in range(seeds)]
    per_seed = []
    for name, seed in _progress(runs, progress, "mnist1d_baselines"):
        out = fit(
            mnist1d_model(name, seed=seed),
            data,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
        )
        per_seed.append(
            {
                "model": name,
                "seed": seed,
                "train_acc": out["train_acc"],
                "test_acc": out["test_acc"],
            }
        )

    rows = []
    for name in names:
        mine = [r for r in per_seed if r["model"] == name]
        tr_m, tr_s = mean_std(r["train_acc"] for r in mine)
        te_m, te_s = mean_std(r["test_acc"] for r in mine)
        published = 100.0 * MNIST1D_PUBLISHED[name]
        rows.append(
            {
                "model": name,
                "published": published,
                "notebook_run": MNIST1D_NOTEBOOK_RUN[name],
                "train_acc": tr_m,
                "train_acc_std": tr_s,
                "test_acc": te_m,
                "test_acc_std": te_s,
                "difference": te_m - published,
                "reproduced": abs(te_m - published) <= tolerance,
            }
        )
    claims = {
        f"{r['model']}: mean test accuracy within {tolerance:g} points of the published "
        f"{r['published']:.0f}%": r["reproduced"]
        for r in rows
    }
    tests = [r["test_acc"] for r in rows]
    if len(rows) > 1:
        claims["the published ranking holds: " + " < ".join(r["model"] for r in rows)] = all(
            a < b for a, b in zip(tests, tests[1:])
        )
    fig = baselines_figure(rows, title=f"MNIST-1D, {epochs} epochs, {seeds} seeds")
    plt.close(fig)  # shown with show_figure or saved, never drawn by itself
    return Result("mnist1d_baselines", options, rows, claims, fig, extra={"per_seed": per_seed})


def accuracy_curves(
    series: dict, *, ylabel: str = "accuracy (%)", chance: float | None = None, title: str = ""
):
    """Accuracy per epoch for several runs, each a line with an optional ± std band.

    Args:
        series (dict): ``{label: means}`` or ``{label: (means, stds)}``, one value per
            epoch (epoch 1 first); a label ending in ``"(test)"`` is drawn dashed.
        ylabel (str, keyword only): the y axis label. Default: ``"accuracy (%)"``.
        chance (float, optional, keyword only): draw a dotted line at this accuracy
            (e.g. 10 for ten balanced classes). Default: ``None``.
        title (str, keyword only): axes title. Default: ``""``.

    Returns:
        matplotlib.figure.Figure: the figure; the y axis runs from 0 to 100.

    Used in: chapter "The core problem: memorization vs generalization".
    """
    if not isinstance(series, dict):
        raise TypeError(f"series must be a dict of label -> values, got {type(series).__name__}")
    if not series:
        raise ValueError("series must not be empty")
    checked = {}
    for label, values in series.items():
        name = f"series[{label!r}]"
        if isinstance(values, tuple):
            if len(values) != 2:
                raise ValueError(f"{name} must be a list of means or a (means, stds) pair")
            means = _check_numbers(values[0], f"{name} means")
            stds = _check_numbers(values[1], f"{name} stds", len(means))
        else:
            means, stds = _check_numbers(values, name), None
        checked[_check_str(label, "a label of series")] = (means, stds)
    _check_str(ylabel, "ylabel")
    _check_str(title, "title")
    if chance is not None:
        chance = check_scalar(chance, "chance", low=0, high=100)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (label, (means, stds)) in enumerate(checked.items()):
        epochs = range(1, len(means) + 1)
        color = f"C{i // 2}" if len(series) > 2 else f"C{i}"
        style = "--" if label.endswith("(test)") else "-"
        ax.plot(epochs, means, style, color=color, label=label)
        if stds is not None:
            lo = [m - s for m, s in zip(means, stds)]
            hi = [m + s for m, s in zip(means, stds)]
            ax.fill_between(epochs, lo, hi, color=color, alpha=0.2, lw=0)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", lw=1, label=f"chance ({chance:g}%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


def _mean_std_curve(curves: list[list[float]]) -> tuple[list[float], list[float]]:
    """Epoch-wise mean and standard deviation of equally long curves."""
    pairs = [mean_std(values) for values in zip(*curves)]
    return [m for m, _ in pairs], [s for _, s in pairs]


def _first_epoch_at(curve: list[float], level: float) -> int | None:
    """The first epoch (1-based) at which ``curve`` reaches ``level``, or ``None``."""
    return next((t for t, v in enumerate(curve, start=1) if v >= level), None)


@experiment(
    "random_labels",
    "MNIST-1D: the benchmark's MLP fits true labels and labels drawn at random "
    "(Zhang et al. 2017); test accuracy on random labels is chance",
    seeds="number of seeds (each: its own random labels, initial weights and batch order)",
    n_train="training examples: the first n_train of MNIST-1D's 4,000",
    epochs="training epochs of every run",
    lr="Adam learning rate",
    batch_size="mini-batch size",
    hidden="width of the MLP's two hidden layers",
    fit_level="training accuracy in percent that counts as 'fitted'",
)
def random_labels(
    seeds: int = 3,
    n_train: int = 1000,
    epochs: int = 40,
    lr: float = 0.01,
    batch_size: int = 100,
    hidden: int = 100,
    fit_level: float = 95.0,
    progress: bool = False,
) -> Result:
    """The MLP trained on the true training labels and on uniformly random ones.

    For each seed, the first ``n_train`` training signals are used twice: with their
    true labels and with labels drawn uniformly from the ten classes
    (``mnist1d_split(random_labels=True, seed=seed)``); the same architecture, initial
    weights and training (:func:`fit` with Adam) learn each. The test labels are always
    the true ones, so on random labels nothing learned can transfer: the expected test
    accuracy is that of guessing, 10 %.

    Returns:
        Result: one row per labelling (``true``, ``random``): mean ± std over seeds of
        the final training and test accuracy (percent), and of the first epoch at which
        the training accuracy reaches ``fit_level`` (``None`` if some run never does).
        ``extra["curves"]`` holds, per labelling, the per-epoch mean and std of the
        training and test accuracy; ``extra["per_seed"]`` every run.
    """
    seeds, epochs, lr, batch_size = _check_common(seeds, epochs, lr, batch_size)
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=_N_TRAIN)
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    fit_level = check_scalar(fit_level, "fit_level", low=0, high=100)
    options = dict(
        seeds=seeds,
        n_train=n_train,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        hidden=hidden,
        fit_level=fit_level,
    )
    true_data = training_subset(mnist1d_split(), n_train)
    runs = [(seed, labels) for seed in range(seeds) for labels in ("true", "random")]
    per_seed = []
    for seed, labels in _progress(runs, progress, "random_labels"):
        data = true_data
        if labels == "random":
            data = training_subset(mnist1d_split(random_labels=True, seed=seed), n_train)
        model = mnist1d_model("mlp", seed=seed, hidden=hidden)
        out = fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, curves=True)
        curve = out["curves"]
        per_seed.append(
            {
                "labels": labels,
                "seed": seed,
                "train_acc": out["train_acc"],
                "test_acc": out["test_acc"],
                "epoch_fitted": _first_epoch_at(curve["train_acc"], fit_level),
                "agree_with_true": 100.0
                * float((data.y_train == true_data.y_train).double().mean()),
                "curves": curve,
            }
        )

    rows, curves = [], {}
    for labels in ("true", "random"):
        mine = [r for r in per_seed if r["labels"] == labels]
        tr_m, tr_s = mean_std(r["train_acc"] for r in mine)
        te_m, te_s = mean_std(r["test_acc"] for r in mine)
        fitted = [r["epoch_fitted"] for r in mine]
        ep_m, ep_s = mean_std(fitted) if None not in fitted else (None, None)
        rows.append(
            {
                "labels": labels,
                "train_acc": tr_m,
                "train_acc_std": tr_s,
                "test_acc": te_m,
                "test_acc_std": te_s,
                "epoch_fitted": ep_m,
                "epoch_fitted_std": ep_s,
                "agree_with_true": mean_std(r["agree_with_true"] for r in mine)[0],
            }
        )
        curves[labels] = {key: _mean_std_curve([r["curves"][key] for r in mine])
                          for key in ("train_acc", "test_acc")}  # fmt: skip

    by = {row["labels"]: row for row in rows}
    # A classifier that ignores its input is right on 10 % of ten balanced classes; over
    # the 1,000 test signals one such run's standard error is sqrt(0.1 * 0.9 / 1000).
    chance_se = 100.0 * math.sqrt(0.1 * 0.9 / len(true_data.y_test))
    fitted_true, fitted_random = by["true"]["epoch_fitted"], by["random"]["epoch_fitted"]
    faster = fitted_true is not None and (fitted_random is None or fitted_true < fitted_random)
    claims = {
        f"the MLP fits random labels too (mean train accuracy >= {fit_level:g}%)":
            by["random"]["train_acc"] >= fit_level,
        "on random labels the test accuracy is chance: within 3 standard errors of 10%":
            abs(by["random"]["test_acc"] - 10.0) <= 3 * chance_se,
        "true labels are fitted in fewer epochs than random ones": faster,
        "on true labels the test accuracy is far above chance (> 30%)":
            by["true"]["test_acc"] > 30.0,
    }  # fmt: skip
    fig = accuracy_curves(
        {
            "true labels (train)": curves["true"]["train_acc"],
            "true labels (test)": curves["true"]["test_acc"],
            "random labels (train)": curves["random"]["train_acc"],
            "random labels (test)": curves["random"]["test_acc"],
        },
        chance=10.0,
        title=f"MNIST-1D MLP, {n_train} training signals, {seeds} seeds (mean ± std)",
    )
    plt.close(fig)  # shown with show_figure or saved, never drawn by itself
    return Result(
        "random_labels",
        options,
        rows,
        claims,
        fig,
        extra={"curves": curves, "per_seed": per_seed, "chance_se": chance_se},
    )
