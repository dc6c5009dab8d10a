"""Experiment of the chapter "Early stopping".

One 50-epoch run of an MLP on a small, label-noised digits training set, long
enough for the validation loss to pass its minimum and turn upward. From its
recorded validation curve, :func:`regcourse.early_stopping.simulate` replays what
several patience values would have done; a second run with
``train(..., early_stopping=EarlyStopping(patience))`` checks that the replay is
right and that the restored weights are exactly those of the best epoch.
"""

from __future__ import annotations

import itertools

import torch

from .._checks import check_scalar
from ..data import digits_split
from ..early_stopping import EarlyStopping, simulate
from ..models import build_model
from ..plotting import loss_curves
from ..training import evaluate, train
from . import Result, experiment

__all__ = ["early_stopping", "parse_patiences"]


def parse_patiences(text: str) -> list[int]:
    """``"2,10,20"`` → ``[2, 10, 20]`` (sorted, without repeats); ``ValueError`` naming
    ``patiences`` for anything else."""
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


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@experiment(
    "early_stopping",
    "a full run on noisy digits; what patience k would have done; restore the best checkpoint",
    n_train="training examples (small, so the network memorises)",
    n_val="validation examples",
    label_noise="fraction of training labels replaced by a wrong class",
    epochs="epochs of the full run",
    hidden="width of the MLP's two hidden layers",
    lr="AdamW learning rate",
    patience="patience of the run with train(..., early_stopping=EarlyStopping(patience))",
    patiences="patience values replayed on the full run's curve, comma-separated",
    seed="seed of the split, the weights and the shuffling",
)
def early_stopping(
    n_train: int = 250,
    n_val: int = 400,
    label_noise: float = 0.3,
    epochs: int = 50,
    hidden: int = 256,
    lr: float = 1e-3,
    patience: int = 10,
    patiences: str = "2,10,20",
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Run the chapter's experiment; see the module docstring.

    Returns:
        Result: one row per replayed patience (stop epoch, restored epoch, validation
        loss at the restored epoch, epochs trained past it); ``extra`` holds the full
        run's :class:`~regcourse.training.History` (``"history"``), the early-stopped
        run's history and :class:`~regcourse.early_stopping.EarlyStopping`
        (``"es_history"``, ``"es"``), the restored model (``"model"``) and test-set numbers.
    """
    n_val = check_scalar(n_val, "n_val", kind="int", low=10)
    epochs = check_scalar(epochs, "epochs", kind="int", low=2)
    patience = check_scalar(patience, "patience", kind="int", low=1)
    pats = parse_patiences(patiences)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    data = digits_split(n_train, n_val, label_noise=label_noise, seed=seed)

    # 1. The full run, recording both curves.
    full_model = build_model("mlp", seed=seed, hidden=hidden)
    common = dict(lr=lr, seed=seed)
    hist = train(full_model, data, epochs=epochs, progress=progress, desc="full run", **common)
    val = hist.val_loss
    best_epoch = min(range(len(val)), key=val.__getitem__) + 1  # first epoch at the minimum
    final_state = _state(full_model)

    # 2. Replay patience values on the recorded curve.
    rows = []
    for p in pats:
        stop, best = simulate(val, p)
        rows.append(
            {
                "patience": p,
                "stop_epoch": stop,
                "best_epoch": best,
                "val_loss_at_restore": val[best - 1],
                "epochs_past_best": stop - best,
                "epochs_saved": epochs - stop,
            }
        )

    # 3. A real run with early stopping, and checks of its restored weights.
    es = EarlyStopping(patience=patience)
    es_model = build_model("mlp", seed=seed, hidden=hidden)
    es_hist = train(
        es_model, data, epochs=epochs, early_stopping=es, progress=progress, desc="early stopping",
        **common,
    )
    restored_val_loss, restored_val_acc = evaluate(es_model, data.x_val, data.y_val)
    replay = simulate(val, patience)
    # the same run trained for exactly best_epoch epochs, without early stopping
    fresh = build_model("mlp", seed=seed, hidden=hidden)
    train(fresh, data, epochs=es.best_epoch, **common)
    restored_state = _state(es_model)

    test_restored = evaluate(es_model, data.x_test, data.y_test)
    test_final = evaluate(full_model, data.x_test, data.y_test)

    rise = val[-1] - min(val)
    claims = {
        "validation loss rises after its minimum (by more than 0.05 at the last epoch)":
            rise > 0.05,
        "training loss keeps falling after the best epoch":
            hist.train_loss[-1] < hist.train_loss[best_epoch - 1],
    }
    for a, b in zip(pats, pats[1:]):
        sa = next(r["stop_epoch"] for r in rows if r["patience"] == a)
        sb = next(r["stop_epoch"] for r in rows if r["patience"] == b)
        claims[f"patience {a} stops earlier than patience {b}"] = sa < sb
    n = es_hist.stopped_epoch
    es_call = f"train(early_stopping=EarlyStopping({patience}))"
    claims.update(
        {
            f"the patience-{patience} run retraces the full run's validation curve exactly":
                es_hist.val_loss == val[:n],
            f"{es_call} stops and restores where simulate() predicts":
                (es_hist.stopped_epoch, es_hist.best_epoch) == tuple(replay),
            "the restored model reproduces the best validation loss exactly":
                restored_val_loss == es.best_value,
            "restored weights are bit-identical to a fresh run trained for exactly best_epoch "
            "epochs":
                _same_weights(restored_state, _state(fresh)),
            "restored weights differ from the full run's final weights":
                not _same_weights(restored_state, final_state),
            "restored model's test loss is lower than the final model's (by more than 0.05)":
                test_restored[0] < test_final[0] - 0.05,
        }
    )

    title = f"{epochs} epochs, {n_train} training digits, label noise {label_noise:g}"
    fig = loss_curves(hist, best_epoch=best_epoch, title=title)
    ax = fig.axes[0]
    for r, marker in zip(rows, itertools.cycle("ovs^D<>")):
        ax.plot(r["stop_epoch"], val[r["stop_epoch"] - 1], marker=marker, ls="none", color="k",
                label=f"patience {r['patience']} stops")
    ax.legend(fontsize=8)

    return Result(
        name="early_stopping",
        options=dict(
            n_train=n_train, n_val=n_val, label_noise=label_noise, epochs=epochs, hidden=hidden,
            lr=lr, patience=patience, patiences=patiences, seed=seed,
        ),
        rows=rows,
        claims=claims,
        figure=fig,
        extra={
            "history": hist,
            "best_epoch": best_epoch,
            "es_history": es_hist,
            "es": es,
            "model": es_model,
            "data": data,
            "restored_val_loss": restored_val_loss,
            "restored_val_acc": restored_val_acc,
            "test_restored": test_restored,
            "test_final": test_final,
        },
    )
