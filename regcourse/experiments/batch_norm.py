"""Experiments of the chapter "Batch normalization as a regularizer".

- ``bn_noise``: how much the batch statistics of real activations vary between
  mini-batches, against the batch size (the standard deviation of the batch mean
  falls like ``1/√B``).
- ``bn_gap``: what the batch size that batch norm sees does to the train–test gap
  of an MLP on a small, partly mislabelled digits training set.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_scalar
from ..data import digits_split
from ..models import build_model
from ..normalization import BatchNorm1d, GhostBatchNorm1d, batch_stat_noise, loglog_slope
from ..training import evaluate, train
from . import Result, experiment, mean_std

__all__ = ["bn_noise", "bn_gap", "parse_sizes"]


def parse_sizes(text: str, name: str, *, low: int = 1) -> list[int]:
    """``"4,16,64"`` → ``[4, 16, 64]``: distinct integers ``>= low``, in increasing order."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a comma-separated string of integers, got {type(text).__name__}")
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from None
    for size in sizes:
        check_scalar(size, name, kind="int", low=low)
    if len(sizes) < 2 or sizes != sorted(set(sizes)):
        raise ValueError(f"{name} must hold at least two distinct sizes in increasing order, got {text!r}")
    return sizes


def _pre_activations(seed: int, hidden: int) -> torch.Tensor:
    """The first hidden layer's pre-activations (before batch norm) of the batch-norm MLP,
    for every digit of scikit-learn's data set not held back, at initialisation."""
    data = digits_split(n_train=1697, n_val=0, seed=seed)
    model = build_model("mlp", seed=seed, hidden=hidden, batch_norm=True)
    with torch.no_grad():
        return model[1](model[0](data.x_train))  # Flatten, then the first Linear


@experiment(
    "bn_noise",
    "noise of batch-norm statistics vs batch size on real activations (slope -1/2 on log-log axes)",
    batch_sizes="comma-separated batch sizes, each >= 2",
    num_batches="mini-batches drawn per batch size",
    seed="seed of the network's weights and of the mini-batches",
    hidden="width of the MLP's first hidden layer (the features measured)",
    tolerance="allowed distance of the fitted log-log slope from -1/2",
)
def bn_noise(
    batch_sizes: str = "2,4,8,16,32,64,128",
    num_batches: int = 400,
    seed: int = 0,
    hidden: int = 128,
    tolerance: float = 0.05,
    progress: bool = False,
) -> Result:
    """Measure ``std(μ_B)/σ`` and the noise of one example's ``x̂`` for several batch sizes."""
    sizes = parse_sizes(batch_sizes, "batch_sizes", low=2)
    num_batches = check_scalar(num_batches, "num_batches", kind="int", low=10)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    tolerance = check_scalar(tolerance, "tolerance", low=0, closed="neither")
    options = dict(batch_sizes=batch_sizes, num_batches=num_batches, seed=seed, hidden=hidden,
                   tolerance=tolerance)

    h = _pre_activations(seed, hidden)
    if sizes[-1] > len(h) // 4:
        raise ValueError(f"batch_sizes must be at most {len(h) // 4} (a quarter of the data), got {sizes[-1]}")
    noise = batch_stat_noise(h, sizes, num_batches, generator=torch.Generator().manual_seed(seed))
    measured = noise.relative_mean_noise()
    predicted = noise.predicted_relative_mean_noise()
    xhat = noise.mean_xhat_noise()
    slope = loglog_slope(sizes, measured)
    slope_xhat = loglog_slope(sizes, xhat)
    rel_err = (measured / predicted - 1).abs()
    # The std of num_batches samples has a relative error of about 1/sqrt(2 num_batches)
    # (3.5% for 400) for one feature; averaging over the features shrinks it further.
    err_tol = 0.05

    rows = [
        {"batch_size": b, "mean_noise": float(m), "predicted_mean_noise": float(p), "xhat_noise": float(x)}
        for b, m, p, x in zip(sizes, measured, predicted, xhat)
    ]
    claims = {
        f"log-log slope of std(batch mean)/sigma within {tolerance:g} of -1/2": abs(slope + 0.5) < tolerance,
        f"every std(batch mean)/sigma within {100 * err_tol:.0f}% of 1/sqrt(B) x sqrt((N-B)/(N-1))":
            bool((rel_err < err_tol).all()),
        "noise of a fixed example's x-hat falls at every larger batch size": bool((xhat[1:] < xhat[:-1]).all()),
    }

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.loglog(sizes, measured.tolist(), "o", label=r"measured std($\mu_B$) / $\sigma$")
    ax.loglog(sizes, predicted.tolist(), "-", lw=1, label=r"$1/\sqrt{B}$ (with finite-population factor)")
    ax.loglog(sizes, xhat.tolist(), "s--", lw=1, label=r"measured std($\hat x$) of one example")
    ax.set_xticks(sizes, [str(b) for b in sizes])
    yticks = [0.05, 0.1, 0.2, 0.5, 1.0]
    ax.set_yticks(yticks, [f"{t:g}" for t in yticks])
    ax.minorticks_off()
    ax.set_xlabel("batch size B")
    ax.set_ylabel("standard deviation across batches")
    ax.set_title(f"batch-statistic noise, fitted slope {slope:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()

    extra = {"activations": h, "noise": noise, "slope": slope, "slope_xhat": slope_xhat, "max_rel_err": float(rel_err.max()),
             "rel_err_tol": err_tol, "num_examples": noise.num_examples, "num_features": h.shape[1]}
    return Result("bn_noise", options, rows, claims, fig, extra)


def _with_batch_norm(model: nn.Sequential, ghost_batch_size: int | None) -> nn.Sequential:
    """Replace torch's BatchNorm1d layers by ours (ghost batches if a size is given)."""
    for i, layer in enumerate(model):
        if isinstance(layer, nn.BatchNorm1d):
            if ghost_batch_size is None:
                model[i] = BatchNorm1d(layer.num_features)
            else:
                model[i] = GhostBatchNorm1d(layer.num_features, ghost_batch_size=ghost_batch_size)
    return model


@experiment(
    "bn_gap",
    "train-test gap of a batch-norm MLP vs the batch size batch norm sees (small noisy digits set)",
    bn_batch_sizes="comma-separated batch sizes for batch norm's statistics, each >= 2",
    mode="'ghost': gradient batch fixed at batch_size, batch norm uses groups of each size; "
         "'plain': each size is the training batch size itself",
    batch_size="gradient mini-batch size in 'ghost' mode",
    baseline="also train the same MLP without batch norm",
    seeds="number of seeds (data split, label noise, weights, shuffling)",
    epochs="training epochs",
    n_train="training examples",
    label_noise="fraction of training labels replaced by a wrong class",
    hidden="width of the MLP's two hidden layers",
    lr="AdamW learning rate",
)
def bn_gap(
    bn_batch_sizes: str = "4,16,64",
    mode: str = "ghost",
    batch_size: int = 64,
    baseline: bool = True,
    seeds: int = 4,
    epochs: int = 40,
    n_train: int = 256,
    label_noise: float = 0.2,
    hidden: int = 128,
    lr: float = 1e-3,
    progress: bool = False,
) -> Result:
    """Train the batch-norm MLP with each batch-norm batch size and several seeds; measure the gap."""
    if mode not in ("ghost", "plain"):
        raise ValueError(f"mode must be 'ghost' or 'plain', got {mode!r}")
    sizes = parse_sizes(bn_batch_sizes, "bn_batch_sizes", low=2)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=2)
    if not isinstance(baseline, bool):
        raise TypeError(f"baseline must be a bool, got {type(baseline).__name__}")
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    n_train = check_scalar(n_train, "n_train", kind="int", low=16, high=1000)
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    hidden = check_scalar(hidden, "hidden", kind="int", low=2)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    if mode == "ghost" and sizes[-1] > batch_size:
        raise ValueError(f"bn_batch_sizes must not exceed batch_size={batch_size} in 'ghost' mode, got {sizes[-1]}")
    options = dict(bn_batch_sizes=bn_batch_sizes, mode=mode, batch_size=batch_size, baseline=baseline,
                   seeds=seeds, epochs=epochs, n_train=n_train, label_noise=label_noise, hidden=hidden, lr=lr)

    settings: list[tuple[str, int | None]] = [(f"BN, B={b}", b) for b in sizes]
    if baseline:
        settings.append(("no BN", None))
    runs: dict[str, list[dict]] = {label: [] for label, _ in settings}
    for seed in range(seeds):
        data = digits_split(n_train, 100, label_noise=label_noise, seed=seed)
        for label, size in settings:
            model = build_model("mlp", seed=seed, hidden=hidden, batch_norm=size is not None)
            if size is not None:
                model = _with_batch_norm(model, size if mode == "ghost" else None)
            train_bs = batch_size if (mode == "ghost" or size is None) else size
            train(model, data, epochs=epochs, lr=lr, batch_size=train_bs, seed=seed,
                  progress=progress, desc=f"{label}, seed {seed}")
            _, train_acc = evaluate(model, data.x_train, data.y_train)
            _, test_acc = evaluate(model, data.x_test, data.y_test)
            runs[label].append({"train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc})

    rows, summary = [], {}
    for label, size in settings:
        stats = {k: mean_std([r[k] for r in runs[label]]) for k in ("train_acc", "test_acc", "gap")}
        summary[label] = stats
        rows.append({
            "setting": label,
            "bn_batch_size": size if size is not None else "",
            "train_acc_mean": stats["train_acc"][0], "train_acc_std": stats["train_acc"][1],
            "test_acc_mean": stats["test_acc"][0], "test_acc_std": stats["test_acc"][1],
            "gap_mean": stats["gap"][0], "gap_std": stats["gap"][1],
        })

    small, large = f"BN, B={sizes[0]}", f"BN, B={sizes[-1]}"
    gap_small = [r["gap"] for r in runs[small]]
    gap_large = [r["gap"] for r in runs[large]]
    margin = 0.05
    claims = {
        f"mean gap with B={sizes[0]} is at least {margin:g} below B={sizes[-1]}":
            summary[small]["gap"][0] < summary[large]["gap"][0] - margin,
        f"gap with B={sizes[0]} below B={sizes[-1]} for every seed":
            all(a < b for a, b in zip(gap_small, gap_large)),
        f"test accuracy with B={sizes[0]} above B={sizes[-1]} on average":
            summary[small]["test_acc"][0] > summary[large]["test_acc"][0],
    }

    import matplotlib.pyplot as plt

    labels = [label for label, _ in settings]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.38
    for j, (key, name) in enumerate([("train_acc", "train accuracy (noisy labels)"), ("test_acc", "test accuracy")]):
        xs = [i + (j - 0.5) * width for i in range(len(labels))]
        ax.bar(xs, [summary[lab][key][0] for lab in labels], width,
               yerr=[summary[lab][key][1] for lab in labels], capsize=3, label=name)
    ax.axhline(1 - label_noise, color="gray", ls=":", lw=1, label="share of correct training labels")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0.3, 1.05)
    ax.set_ylabel(f"accuracy (mean ± std, {seeds} seeds)")
    ax.set_title(f"batch size seen by batch norm ({mode} mode), {int(label_noise * 100)}% wrong labels")
    ax.legend(fontsize=7, loc="lower center", ncol=3)
    fig.tight_layout()

    return Result("bn_gap", options, rows, claims, fig, {"runs": runs, "summary": summary})
