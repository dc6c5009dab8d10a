"""Experiment of the chapter "Early stopping", on MNIST-1D.

The benchmark's MLP (40 → 100 → 100 → 10) is trained with Adam on MNIST-1D's training
signals minus a validation set, for a fixed number of epochs, and measured after every
epoch (:func:`regcourse.experiments.core_problem.fit`). Early stopping only *reads* the
validation curve, so :func:`regcourse.early_stopping.simulate` replays on the recorded
curve exactly what a run with each patience value would have done: where it stops, which
epoch it restores, and what that checkpoint scores on the test set (recorded too). The
chapter checks the replay against a real run with
:class:`~regcourse.early_stopping.EarlyStopping` inside the training loop.

Each seed draws its own validation subset, initial weights and batch order; the test set
is the benchmark's. Training runs with one torch thread.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt

from .._checks import check_scalar
from ..data import mnist1d_split
from ..early_stopping import simulate
from ..models import mnist1d_model
from . import Result, experiment, mean_std
from .core_problem import fit

__all__ = ["early_stopping", "parse_patiences", "replay", "stop_figure"]

_N_TRAIN = 4000  # MNIST-1D's training set, of which n_val become the validation set


def parse_patiences(text: str) -> list[int]:
    """``"2,10,20"`` → ``[2, 10, 20]`` (sorted, without repeats); ``ValueError`` naming
    ``patiences`` for anything else.

    Example:
        >>> parse_patiences("10, 2,2")
        [2, 10]
    """
    if not isinstance(text, str):
        raise TypeError(f"patiences must be a str such as '2,10,20', got {type(text).__name__}")
    values = []
    for part in text.split(","):
        try:
            values.append(int(part.strip()))
        except ValueError:
            raise ValueError(
                f"patiences must be comma-separated integers such as '2,10,20', got {text!r}"
            ) from None
    for v in values:
        if v < 1:
            raise ValueError(f"patiences must all be >= 1, got {text!r}")
    return sorted(set(values))


def replay(curves: dict, patience: int, *, min_delta: float = 0.0) -> dict:
    """What early stopping on the validation loss would have done on one recorded run.

    Args:
        curves (dict): per-epoch lists ``val_loss``, ``test_loss`` and ``test_acc`` (as
            :func:`~regcourse.experiments.core_problem.fit` records them with
            ``curves=True``).
        patience (int): the patience ``P``, ``>= 1``.
        min_delta (float, keyword only): the threshold ``δ``. Default: ``0.0``.

    Returns:
        dict: ``stop_epoch`` and ``best_epoch`` (1-based, from
        :func:`~regcourse.early_stopping.simulate`), ``epochs_past_best``,
        ``val_loss`` at the restored epoch, and ``test_loss``, ``test_acc`` of the
        restored checkpoint (the run's measurements after ``best_epoch``).

    Example:
        >>> replay({"val_loss": [3, 2, 2.5, 2.6], "test_loss": [3, 2.1, 2.4, 2.7],
        ...         "test_acc": [10, 40, 41, 42]}, patience=2)["best_epoch"]
        2
    """
    stop, best = simulate(curves["val_loss"], patience, min_delta)
    return {
        "stop_epoch": stop,
        "best_epoch": best,
        "epochs_past_best": stop - best,
        "val_loss": curves["val_loss"][best - 1],
        "test_loss": curves["test_loss"][best - 1],
        "test_acc": curves["test_acc"][best - 1],
    }


def stop_figure(curves: dict, stops: dict, *, title: str = ""):
    """Training and validation loss per epoch, with the stops of several patience values.

    Args:
        curves (dict): per-epoch lists ``train_loss`` and ``val_loss``.
        stops (dict): ``{patience: replay(...)}``; each stop epoch gets a marker on the
            validation curve, and the epoch all of them restore is marked by a line
            when they agree.
        title (str, keyword only): axes title. Default: ``""``.

    Returns:
        matplotlib.figure.Figure: the figure (closed: show it with ``show_figure``).
    """
    fig, ax = plt.subplots(figsize=(7.5, 3.5))
    epochs = range(1, len(curves["val_loss"]) + 1)
    ax.plot(epochs, curves["train_loss"], label="training loss")
    ax.plot(epochs, curves["val_loss"], label="validation loss")
    best = min(epochs, key=lambda t: curves["val_loss"][t - 1])
    ax.axvline(best, color="k", ls="--", lw=1, label=f"lowest validation loss (epoch {best})")
    for (p, r), marker in zip(sorted(stops.items()), itertools.cycle("ovs^D<>")):
        t = r["stop_epoch"]
        ax.plot(t, curves["val_loss"][t - 1], marker=marker, ls="none", color="k",
                label=f"patience {p} stops (epoch {t})")  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the curves
    fig.tight_layout()
    plt.close(fig)
    return fig


@experiment(
    "early_stopping",
    "MNIST-1D: full runs of the benchmark's MLP over seeds; what each patience would have "
    "done, and the test scores of the restored checkpoints",
    seeds="number of seeds (each: its own validation subset, weights and batch order)",
    epochs="epochs of every full run",
    n_val="validation signals taken from MNIST-1D's 4,000 training signals",
    lr="Adam learning rate",
    batch_size="mini-batch size",
    hidden="width of the MLP's two hidden layers",
    label_noise="fraction of the remaining training labels replaced by a wrong class",
    patience="the patience whose restored checkpoint is compared with the final weights",
    patiences="patience values replayed on every run's curve, comma-separated",
)
def early_stopping(
    seeds: int = 3,
    epochs: int = 50,
    n_val: int = 1000,
    lr: float = 0.003,
    batch_size: int = 100,
    hidden: int = 100,
    label_noise: float = 0.0,
    patience: int = 10,
    patiences: str = "2,5,10,20",
    progress: bool = False,
) -> Result:
    """Full runs over seeds, and every patience replayed on each run's validation curve.

    For each seed a fresh MLP is trained for ``epochs`` epochs on
    ``mnist1d_split(n_val, seed=seed)`` and measured after every epoch on its training,
    validation and test sets. :func:`replay` then gives, for each patience, the stop and
    restored epochs and the restored checkpoint's test loss and accuracy.

    Returns:
        Result: one row per replayed patience and a last row ``patience=None`` for the
        weights after the last epoch (no early stopping), each with the mean and
        standard deviation over seeds of the stop epoch, the restored epoch, and the test
        loss and accuracy. ``extra["curves"]`` holds every run's per-epoch measurements
        by seed, ``extra["replays"]`` the replays by ``(seed, patience)``.
    """
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    epochs = check_scalar(epochs, "epochs", kind="int", low=2)
    n_val = check_scalar(n_val, "n_val", kind="int", low=10, high=_N_TRAIN - 100)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    patience = check_scalar(patience, "patience", kind="int", low=1)
    pats = sorted(set(parse_patiences(patiences)) | {patience})
    options = dict(seeds=seeds, epochs=epochs, n_val=n_val, lr=lr, batch_size=batch_size,
                   hidden=hidden, label_noise=label_noise, patience=patience,
                   patiences=patiences)  # fmt: skip

    curves, replays = {}, {}
    runs = range(seeds)
    if progress:
        from tqdm.auto import tqdm

        runs = tqdm(runs, desc="early_stopping", unit="run", leave=False)
    for seed in runs:
        data = mnist1d_split(n_val, label_noise=label_noise, seed=seed)
        model = mnist1d_model("mlp", seed=seed, hidden=hidden)
        out = fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  curves=True)  # fmt: skip
        curves[seed] = out["curves"]
        for p in pats:
            replays[seed, p] = replay(out["curves"], p)

    rows = []
    for p in [*pats, None]:
        if p is None:  # no early stopping: the weights after the last epoch
            runs_p = [{"stop_epoch": epochs, "best_epoch": epochs,
                       "test_loss": c["test_loss"][-1], "test_acc": c["test_acc"][-1]}
                      for c in curves.values()]  # fmt: skip
        else:
            runs_p = [replays[seed, p] for seed in range(seeds)]
        row = {"patience": p}
        for key in ("stop_epoch", "best_epoch", "test_loss", "test_acc"):
            row[key], row[f"{key}_std"] = mean_std(r[key] for r in runs_p)
        rows.append(row)

    c_all = list(curves.values())
    rep = [replays[seed, patience] for seed in range(seeds)]
    claims = {
        "on every seed the validation loss rises after its minimum "
        "(by more than 0.1 at the last epoch)":
            all(c["val_loss"][-1] - min(c["val_loss"]) > 0.1 for c in c_all),
        "on every seed the training loss keeps falling after the best epoch":
            all(c["train_loss"][-1] < c["train_loss"][r["best_epoch"] - 1]
                for c, r in zip(c_all, rep)),
        "a larger patience never stops earlier and never restores a worse validation loss":
            all(replays[s, a]["stop_epoch"] <= replays[s, b]["stop_epoch"]
                and replays[s, a]["val_loss"] >= replays[s, b]["val_loss"]
                for s in range(seeds) for a, b in zip(pats, pats[1:])),
        f"patience {patience}: on every seed the restored checkpoint has a lower test loss "
        "than the final weights":
            all(r["test_loss"] < c["test_loss"][-1] for c, r in zip(c_all, rep)),
        f"patience {patience}: on every seed the rule fires before the last epoch":
            all(r["stop_epoch"] < epochs for r in rep),
    }  # fmt: skip

    first = curves[0]
    fig = stop_figure(
        first,
        {p: replays[0, p] for p in pats},
        title=f"MNIST-1D MLP, seed 0: {epochs} epochs, {n_val} validation signals",
    )
    return Result(
        "early_stopping", options, rows, claims, fig,
        extra={"curves": curves, "replays": replays, "patiences": pats},
    )  # fmt: skip
