"""Experiments of the chapter "Batch normalization as a regularizer", on MNIST-1D.

- ``bn_noise``: how much the batch statistics of real activations (the first hidden
  layer of the MNIST-1D MLP, at initialisation) vary between mini-batches, against the
  batch size: the standard deviation of the batch mean falls like ``1/√B``.
- ``bn_batch_size``: the MNIST-1D MLP with batch norm whose statistics come from ``B``
  examples (ghost batches inside a fixed optimizer batch, or real batches of ``B``),
  beside the same MLP with layer norm, with group norm and without normalization;
  train and test accuracy over several seeds.

The pieces the chapter calls one by one: :func:`subset` (the data), :func:`make_mlp`
(the model of one setting) and :func:`fit` (the training loop, written with
:func:`regcourse.training.train_epoch` and :func:`~regcourse.training.evaluate`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, check_choice, check_scalar
from ..data import Split, mnist1d_split
from ..models import mnist1d_model
from ..normalization import GhostBatchNorm1d, batch_stat_noise, loglog_slope
from ..training import evaluate, minibatches, train_epoch
from . import Result, experiment, mean_std
from ._common import one_thread

__all__ = [
    "bn_noise",
    "bn_batch_size",
    "fit",
    "make_mlp",
    "noise_figure",
    "parse_sizes",
    "subset",
]

#: The normalizations :func:`make_mlp` builds, by name.
NORMS = ("none", "batch", "layer", "group")


def parse_sizes(text: str, name: str, *, low: int = 1) -> list[int]:
    """``"4,16,64"`` → ``[4, 16, 64]``: distinct integers ``>= low``, in increasing order."""
    if not isinstance(text, str):
        raise TypeError(
            f"{name} must be a comma-separated string of integers, got {type(text).__name__}"
        )
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from None
    for size in sizes:
        check_scalar(size, name, kind="int", low=low)
    if len(sizes) < 2 or sizes != sorted(set(sizes)):
        raise ValueError(
            f"{name} must hold at least two distinct sizes in increasing order, got {text!r}"
        )
    return sizes


def subset(n_train: int = 1024) -> Split:
    """MNIST-1D with the first ``n_train`` of its 4,000 training signals and all 1,000 test signals.

    The benchmark's order is already random (``make_dataset`` shuffles), so the first
    ``n_train`` signals are a random subset; it is small enough for an MLP to memorise.
    Inputs are ``(N, 40)``; there is no validation set.
    """
    n_train = check_scalar(n_train, "n_train", kind="int", low=16, high=4000)
    full = mnist1d_split()
    empty = full.x_train[:0]
    return Split(
        full.x_train[:n_train].clone(),
        full.y_train[:n_train].clone(),
        empty,
        full.y_train[:0],
        full.x_test,
        full.y_test,
        full.num_classes,
    )


def make_mlp(norm: str = "batch", *, bn_batch_size: int | None = None, seed: int = 0) -> nn.Module:
    """The MNIST-1D MLP 40 → 100 → 100 → 10 with a normalization layer before each ReLU.

    Args:
        norm (str): ``"none"``, ``"batch"`` (our :class:`~regcourse.normalization.BatchNorm1d`),
            ``"layer"`` (our ``LayerNorm``) or ``"group"`` (our ``GroupNorm``, 5 groups of
            20 features). Default: ``"batch"``.
        bn_batch_size (int, optional): with ``norm="batch"``, normalise in training mode
            with the statistics of groups of this many examples
            (:class:`~regcourse.normalization.GhostBatchNorm1d`); ``None``: the whole
            mini-batch. Default: ``None``.
        seed (int): seed of the initial weights. Default: ``0``.
    """
    norm = check_choice(norm, "norm", NORMS)
    if bn_batch_size is not None:
        if norm != "batch":
            raise ValueError(f"bn_batch_size applies to norm='batch' only, got norm={norm!r}")
        size = check_scalar(bn_batch_size, "bn_batch_size", kind="int", low=2)
        return mnist1d_model(
            "mlp", seed=seed, norm=lambda c: GhostBatchNorm1d(c, ghost_batch_size=size)
        )
    spec = None if norm == "none" else f"regcourse_{norm}"
    return mnist1d_model("mlp", seed=seed, norm=spec)


def _check_model_and_data(model, data) -> None:
    """``model`` is an ``nn.Module`` and ``data`` has training and test tensors."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    missing = [a for a in ("x_train", "y_train", "x_test", "y_test") if not hasattr(data, a)]
    if missing:
        raise TypeError(
            "data must be a regcourse.data.Split (x_train, y_train, x_test, y_test), got "
            f"{type(data).__name__} without {', '.join(missing)}"
        )


def fit(
    model: nn.Module,
    data: Split,
    *,
    epochs: int = 16,
    batch_size: int = 128,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[float, float]:
    """Train ``model`` with Adam on shuffled mini-batches; its train and test accuracy after.

    One torch thread (results do not depend on the machine's thread count); the
    shuffle comes from a generator seeded with ``seed``. The model is left in
    evaluation mode, and the accuracies are measured in it (batch norm on its running
    statistics).

    Returns:
        ``(train_accuracy, test_accuracy)``.
    """
    _check_model_and_data(model, data)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=2)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    with one_thread():
        for _ in range(epochs):
            batches = minibatches(data.x_train, data.y_train, batch_size, generator)
            train_epoch(model, batches, F.cross_entropy, optimizer)  # model.train() inside
        model.eval()  # the model is left in evaluation mode, as after torch's own loops
        _, train_acc = evaluate(model, data.x_train, data.y_train)  # under torch.no_grad()
        _, test_acc = evaluate(model, data.x_test, data.y_test)
    return train_acc, test_acc


def noise_figure(sizes, measured, predicted, xhat, slope: float):
    """Log-log plot of the measured batch-mean noise, its ``1/√B`` prediction and the
    noise of one example's ``x̂``, against the batch size (the figure of ``bn_noise``)."""
    lengths = {len(v) for v in (measured, predicted, xhat)}
    if lengths != {len(sizes)}:
        raise ValueError(
            f"measured, predicted and xhat must hold one value per batch size ({len(sizes)}), "
            f"got lengths {sorted(lengths)}"
        )
    from matplotlib.figure import Figure

    # a Figure outside pyplot: the notebook shows it only where the chapter asks
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.loglog(sizes, [float(v) for v in measured], "o", label=r"measured std($\mu_B$) / $\sigma$")
    ax.loglog(
        sizes,
        [float(v) for v in predicted],
        "-",
        lw=1,
        label=r"$1/\sqrt{B}$ (with finite-population factor)",
    )
    ax.loglog(
        sizes, [float(v) for v in xhat], "s--", lw=1, label=r"measured std($\hat x$) of one example"
    )
    ax.set_xticks(sizes, [str(b) for b in sizes])
    yticks = [0.05, 0.1, 0.2, 0.5, 1.0]
    ax.set_yticks(yticks, [f"{t:g}" for t in yticks])
    ax.minorticks_off()
    ax.set_xlabel("batch size B (log scale)")
    ax.set_ylabel("std across batches (log scale)")
    ax.set_title(f"batch-statistic noise on MNIST-1D activations, fitted slope {slope:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@experiment(
    "bn_noise",
    "noise of batch-norm statistics vs batch size on real activations (slope -1/2 on log-log axes)",
    batch_sizes="comma-separated batch sizes, each >= 2",
    num_batches="mini-batches drawn per batch size",
    seed="seed of the MLP's weights and of the mini-batches",
    tolerance="allowed distance of the fitted log-log slope from -1/2",
)
def bn_noise(
    batch_sizes: str = "2,4,8,16,32,64,128",
    num_batches: int = 400,
    seed: int = 0,
    tolerance: float = 0.05,
    progress: bool = False,
) -> Result:
    """Measure ``std(μ_B)/σ`` and the noise of one example's ``x̂`` for several batch sizes.

    The data are the pre-activations of the first hidden layer of the MNIST-1D MLP
    (the 100 values its first batch-norm layer normalises) for all 4,000 training
    signals, with the initial weights of ``seed``.
    """
    sizes = parse_sizes(batch_sizes, "batch_sizes", low=2)
    num_batches = check_scalar(num_batches, "num_batches", kind="int", low=10)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    tolerance = check_scalar(tolerance, "tolerance", low=0, closed="neither")
    options = dict(batch_sizes=batch_sizes, num_batches=num_batches, seed=seed, tolerance=tolerance)

    x = mnist1d_split().x_train
    first = make_mlp("none", seed=seed)[1]  # the first Linear(40, 100)
    with torch.no_grad():
        h = first(x)
    if sizes[-1] > len(h) // 4:
        raise ValueError(
            f"batch_sizes must be at most {len(h) // 4} (a quarter of the data), got {sizes[-1]}"
        )
    noise = batch_stat_noise(h, sizes, num_batches, generator=torch.Generator().manual_seed(seed))
    measured = noise.relative_mean_noise()
    predicted = noise.predicted_relative_mean_noise()
    xhat = noise.mean_xhat_noise()
    slope = loglog_slope(sizes, measured)
    slope_xhat = loglog_slope(sizes, xhat)
    rel_err = (measured / predicted - 1).abs()
    # The std of num_batches samples has a relative error of about 1/sqrt(2 num_batches)
    # (3.5% for 400) for one feature; averaging over the 100 features shrinks it further.
    err_tol = 0.05

    rows = [
        {
            "batch_size": b,
            "mean_noise": float(m),
            "predicted_mean_noise": float(p),
            "xhat_noise": float(e),
        }
        for b, m, p, e in zip(sizes, measured, predicted, xhat)
    ]
    claims = {
        f"log-log slope of std(batch mean)/sigma within {tolerance:g} of -1/2": abs(slope + 0.5)
        < tolerance,
        f"every std(batch mean)/sigma within {100 * err_tol:.0f}% of 1/sqrt(B) x sqrt((N-B)/(N-1))": bool(
            (rel_err < err_tol).all()
        ),
        "noise of a fixed example's x-hat falls at every larger batch size": bool(
            (xhat[1:] < xhat[:-1]).all()
        ),
    }

    fig = noise_figure(sizes, measured, predicted, xhat, slope)

    extra = {
        "activations": h,
        "noise": noise,
        "slope": slope,
        "slope_xhat": slope_xhat,
        "max_rel_err": float(rel_err.max()),
        "rel_err_tol": err_tol,
        "num_examples": noise.num_examples,
        "num_features": h.shape[1],
    }
    return Result("bn_noise", options, rows, claims, fig, extra)


def _label(norm: str, size: int | None) -> str:
    names = {"none": "no norm", "batch": "BN", "layer": "LN", "group": "GN"}
    return names[norm] if size is None else f"{names[norm]}, B={size}"


@experiment(
    "bn_batch_size",
    "MNIST-1D MLP: accuracy vs the batch size batch norm sees, beside layer norm, group norm and none",
    bn_batch_sizes="comma-separated batch sizes B for batch norm's statistics, each >= 2",
    norms="comma-separated per-example normalizations to train beside it: layer, group ('' for none)",
    baseline="also train the MLP without normalization",
    mode="'ghost': the optimizer's batch stays batch_size, batch norm uses groups of B; "
    "'plain': B is the optimizer's batch size too (every setting is trained at every B)",
    seeds="number of seeds (initial weights and shuffling)",
    n_train="training signals (the first n_train of MNIST-1D's 4,000)",
    epochs="passes over the training signals",
    batch_size="the optimizer's mini-batch size in 'ghost' mode",
    lr="Adam's learning rate",
)
def bn_batch_size(
    bn_batch_sizes: str = "2,4,8,32,128",
    norms: str = "layer,group",
    baseline: bool = True,
    mode: str = "ghost",
    seeds: int = 3,
    n_train: int = 1024,
    epochs: int = 16,
    batch_size: int = 128,
    lr: float = 0.01,
    progress: bool = False,
) -> Result:
    """Train every setting with every seed; train/test accuracy and the gap, mean ± std."""
    sizes = parse_sizes(bn_batch_sizes, "bn_batch_sizes", low=2)
    if not isinstance(norms, str):
        raise TypeError(f"norms must be a comma-separated string, got {type(norms).__name__}")
    others = [n.strip() for n in norms.split(",") if n.strip()]
    for n in others:
        check_choice(n, "norms", ("layer", "group"))
    if len(set(others)) != len(others):
        raise ValueError(f"norms must not repeat a name, got {norms!r}")
    baseline = check_bool(baseline, "baseline")
    mode = check_choice(mode, "mode", ("ghost", "plain"))
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    n_train = check_scalar(n_train, "n_train", kind="int", low=16, high=4000)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=2)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    if mode == "ghost" and sizes[-1] > batch_size:
        raise ValueError(
            f"bn_batch_sizes must not exceed batch_size={batch_size} in 'ghost' mode, got {sizes[-1]}"
        )
    if max(sizes[-1], batch_size if mode == "ghost" else 0) > n_train:
        raise ValueError(f"n_train must be at least the largest batch, got {n_train}")
    options = dict(
        bn_batch_sizes=bn_batch_sizes,
        norms=norms,
        baseline=baseline,
        mode=mode,
        seeds=seeds,
        n_train=n_train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
    )

    # (label, norm, batch-norm group size or None, the optimizer's batch size)
    settings: list[tuple[str, str, int | None, int]] = []
    for b in sizes:
        # in ghost mode the largest size that equals the optimizer's batch is plain batch norm
        ghost = b if mode == "ghost" and b < batch_size else None
        settings.append((_label("batch", b), "batch", ghost, batch_size if mode == "ghost" else b))
    for norm in [*others, *(["none"] if baseline else [])]:
        if mode == "ghost":
            settings.append((_label(norm, None), norm, None, batch_size))
        else:
            settings += [(_label(norm, b), norm, None, b) for b in sizes]

    data = subset(n_train)
    runs: dict[str, list[dict]] = {label: [] for label, *_ in settings}
    for seed in range(seeds):
        for label, norm, ghost, bs in settings:
            model = make_mlp(norm, bn_batch_size=ghost, seed=seed)
            train_acc, test_acc = fit(model, data, epochs=epochs, batch_size=bs, lr=lr, seed=seed)
            runs[label].append(
                {"train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc}
            )

    rows, summary = [], {}
    for label, norm, ghost, bs in settings:
        stats = {k: mean_std([r[k] for r in runs[label]]) for k in ("train_acc", "test_acc", "gap")}
        summary[label] = stats
        rows.append(
            {
                "setting": label,
                "norm": norm,
                "bn_batch_size": (ghost or bs) if norm == "batch" else "",
                "optimizer_batch_size": bs,
                "train_acc_mean": stats["train_acc"][0],
                "train_acc_std": stats["train_acc"][1],
                "test_acc_mean": stats["test_acc"][0],
                "test_acc_std": stats["test_acc"][1],
                "gap_mean": stats["gap"][0],
                "gap_std": stats["gap"][1],
            }
        )

    small, large = _label("batch", sizes[0]), _label("batch", sizes[-1])
    test = {label: s["test_acc"][0] for label, s in summary.items()}
    gap = {label: s["gap"][0] for label, s in summary.items()}
    claims = {
        f"BN's mean gap at B={sizes[0]} is more than 0.2 below B={sizes[-1]}": gap[small]
        < gap[large] - 0.2,
        f"BN's gap at B={sizes[0]} below B={sizes[-1]} for every seed": all(
            a["gap"] < b["gap"] for a, b in zip(runs[small], runs[large])
        ),
        f"BN's test accuracy at B={sizes[0]} is more than 0.1 below B={sizes[-1]}": test[small]
        < test[large] - 0.1,
        f"no smaller B beats B={sizes[-1]}'s mean test accuracy by more than 0.02": all(
            test[_label("batch", b)] <= test[large] + 0.02 for b in sizes[:-1]
        ),
    }
    if mode == "ghost":
        for norm in others:
            label = _label(norm, None)
            claims[f"{label} beats BN at B={sizes[0]} on test accuracy in every seed"] = all(
                a["test_acc"] > b["test_acc"] for a, b in zip(runs[label], runs[small])
            )

    fig = _figure(sizes, settings, summary, mode, seeds, n_train)
    return Result("bn_batch_size", options, rows, claims, fig, {"runs": runs, "summary": summary})


def _figure(sizes, settings, summary, mode, seeds, n_train):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))  # outside pyplot: shown only where the chapter asks
    axes = fig.subplots(1, 2)
    colors = {"layer": "tab:green", "group": "tab:purple", "none": "tab:gray"}
    for ax, key, title in zip(
        axes, ("test_acc", "gap"), ("test accuracy", "train - test accuracy (the gap)")
    ):
        bn = [summary[_label("batch", b)][key] for b in sizes]
        ax.errorbar(
            sizes, [m for m, _ in bn], yerr=[s for _, s in bn], fmt="o-", capsize=3,
            color="tab:blue", label="batch norm, statistics over B examples",
        )  # fmt: skip
        for label, norm, _, _ in settings:
            if norm == "batch":
                continue
            m, s = summary[label][key]
            if mode == "ghost":  # no batch statistics: the same value for every B
                ax.axhline(m, color=colors[norm], ls="--" if norm == "none" else "-", lw=1.2,
                           label=f"{label} (independent of B)")  # fmt: skip
                ax.axhspan(m - s, m + s, color=colors[norm], alpha=0.15, lw=0)
        if mode == "plain":
            for norm in {n for _, n, _, _ in settings if n != "batch"}:
                vals = [summary[_label(norm, b)][key] for b in sizes]
                ax.errorbar(sizes, [m for m, _ in vals], yerr=[s for _, s in vals], fmt="s--",
                            capsize=3, color=colors[norm], label=_label(norm, None))  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.minorticks_off()
        ax.set_ylim(0, max(0.6, ax.get_ylim()[1]))
        ax.set_xlabel(f"batch size B seen by batch norm (log scale; {mode} batches)")
        ax.set_title(title)
    axes[0].set_ylabel(f"mean ± std over {seeds} seeds")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"MNIST-1D MLP, {n_train} training signals", fontsize=10)
    fig.tight_layout()
    return fig
