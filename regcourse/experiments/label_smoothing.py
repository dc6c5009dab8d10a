"""Experiments of the chapter "Label smoothing", on MNIST-1D.

- :func:`smoothing_calibration`: the benchmark's MLP (40 → 100 → 100 → 10) trained with
  hard targets and with label smoothing, over several seeds: accuracy, expected
  calibration error, a reliability diagram and the logit norm after every epoch.
- :func:`smoothing_distillation`: each of those networks as the *teacher* of a smaller
  student that learns only from the teacher's softened outputs (knowledge distillation),
  and how much the teacher's probabilities for the *wrong* classes say
  (:func:`wrong_class_information`).

Both use :func:`train_classifier`, the loop the chapter writes out once from scratch.
A seed fixes a network's initial weights and its mini-batch order; the data are the
benchmark's own. Training runs with one torch thread
(``regcourse.experiments._common.one_thread``), so the results do not depend on
the number of threads. Teachers are trained once per process and kept
(:func:`teacher`): training is deterministic, so the distillation experiment gets
exactly the networks the calibration experiment measured, without training them again.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from .._checks import check_bool, check_scalar
from ..calibration import (
    ReliabilityDiagram,
    collect_logits,
    confidence_and_prediction,
    logit_norm,
    reliability_diagram,
)
from ..data import Split, mnist1d_split
from ..models import build_model, mnist1d_model
from ..smoothing import LabelSmoothingLoss, logit_gap
from ..training import evaluate, minibatches, train_epoch
from . import Result, experiment, mean_std
from ._common import one_thread

__all__ = [
    "train_classifier",
    "teacher",
    "distill",
    "wrong_class_information",
    "smoothing_calibration",
    "smoothing_distillation",
    "reliability_figure",
    "logit_norm_figure",
]


def train_classifier(
    model: nn.Module,
    data: Split,
    *,
    eps: float,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    record_norms: bool = True,
) -> list[float]:
    """Train ``model`` with Adam on label-smoothed cross-entropy; the chapter's loop.

    Per epoch: shuffle the training set with a ``torch.Generator`` seeded with ``seed``
    and cut it into mini-batches (:func:`~regcourse.training.minibatches`), one Adam
    step per batch in training mode (:func:`~regcourse.training.train_epoch`: forward,
    :class:`~regcourse.smoothing.LabelSmoothingLoss` with ``eps``, ``zero_grad``,
    ``backward``, ``step``), then measure the mean logit norm on the training set in
    eval mode (:func:`~regcourse.calibration.collect_logits`). One torch thread.

    Args:
        model (nn.Module): the network, trained in place.
        data (Split): ``x_train``/``y_train`` to train on.
        eps (float, keyword only): label smoothing ε in ``[0, 1)``; ``0`` is hard targets.
        epochs (int, keyword only): passes over the training set, ``>= 1``.
        batch_size (int, keyword only): examples per step, ``>= 1``.
        lr (float, keyword only): Adam's learning rate, ``> 0``.
        seed (int, keyword only): seed of the mini-batch order, ``>= 0``.
        record_norms (bool, keyword only): measure the logit norm after every epoch.
            Default: ``True``.

    Returns:
        list of float: the mean logit norm ``‖z‖₂`` over the training set after each
        epoch (empty with ``record_norms=False``).

    Used in: chapter "Label smoothing".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a regcourse.data.Split, got {type(data).__name__}")
    eps = check_scalar(eps, "eps", low=0, high=1, closed="left")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    record_norms = check_bool(record_norms, "record_norms")
    loss_fn = LabelSmoothingLoss(eps=eps)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    norms = []
    with one_thread():
        for _ in range(epochs):
            batches = minibatches(data.x_train, data.y_train, batch_size, generator)
            train_epoch(model, batches, loss_fn, optimizer)
            if record_norms:
                norms.append(float(logit_norm(collect_logits(model, data.x_train))))
    return norms


@functools.lru_cache(maxsize=32)
def _trained_teacher(eps, seed, epochs, batch_size, lr, hidden):
    model = mnist1d_model("mlp", seed=seed, hidden=hidden)
    norms = train_classifier(
        model, mnist1d_split(), eps=eps, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
    )
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, tuple(norms)


def teacher(
    eps: float,
    seed: int,
    *,
    epochs: int = 40,
    batch_size: int = 500,
    lr: float = 0.01,
    hidden: int = 100,
) -> tuple[nn.Module, list[float]]:
    """The benchmark's MLP trained on MNIST-1D with smoothing ``eps`` (:func:`train_classifier`).

    The MLP (:func:`regcourse.models.mnist1d_model`, hidden width ``hidden``) is seeded
    with ``seed``, as is its batch order. Each configuration is trained once per process
    and its weights are kept; later calls return a fresh copy of the same network (bit
    for bit what a new training run would give, since training is deterministic).

    Args:
        eps (float): label smoothing ε in ``[0, 1)``.
        seed (int): seed of the initial weights and the batch order.
        epochs, batch_size, lr (keyword only): as in :func:`train_classifier`.
            Defaults: ``40``, ``500``, ``0.01``.
        hidden (int, keyword only): width of the two hidden layers. Default: ``100``.

    Returns:
        ``(model, norms)``: the trained network in eval mode, and its training-set mean
        logit norm after each epoch.

    Used in: chapter "Label smoothing".
    """
    eps = check_scalar(eps, "eps", low=0, high=1, closed="left")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    hidden = check_scalar(hidden, "hidden", kind="int", low=1)
    state, norms = _trained_teacher(eps, seed, epochs, batch_size, lr, hidden)
    model = mnist1d_model("mlp", seed=seed, hidden=hidden)
    model.load_state_dict(state)
    return model.eval(), list(norms)


def wrong_class_information(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0
) -> float:
    """How far the probabilities of the wrong classes are from uniform, in nats.

    For each example, softmax the logits divided by ``temperature`` over the ``K - 1``
    classes other than its label, and measure the KL divergence of that distribution
    from the uniform one: ``log(K - 1) - H``, where ``H`` is its entropy. 0 means the
    wrong classes look all alike (nothing to learn about which classes resemble the
    example); ``log(K - 1)`` means one wrong class takes all the mass. The mean over
    the examples is returned. Computed in float64 with ``log_softmax``, so probabilities
    that underflow in float32 still count.

    Args:
        logits (Tensor): ``(N, K)`` logits, ``K >= 3``.
        labels (Tensor): ``(N,)`` class indices.
        temperature (float): ``T > 0``. Default: ``1.0``.

    Returns:
        float: the mean KL from uniform, in ``[0, log(K - 1)]``.

    Example:
        >>> z = torch.tensor([[5.0, 1.0, 1.0, 1.0], [5.0, 9.0, 1.0, 1.0]])
        >>> round(wrong_class_information(z, torch.tensor([0, 0])), 4)  # 0 and nearly log 3
        0.5463

    Used in: chapter "Label smoothing".
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] < 3:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be an (N, K) tensor with K >= 3, got {got}")
    if not isinstance(labels, torch.Tensor) or labels.shape != (logits.shape[0],):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must have shape ({logits.shape[0]},), got {got}")
    temperature = check_scalar(temperature, "temperature", low=0, closed="neither")
    k = logits.shape[1]
    true = F.one_hot(labels.long(), k).bool()
    z = (logits.double() / temperature).masked_fill(true, -math.inf)
    log_p = F.log_softmax(z, dim=1)
    p = log_p.exp()
    entropy = -(p * log_p.masked_fill(true, 0.0)).sum(1)
    return float((math.log(k - 1) - entropy).mean())


def distill(
    student: nn.Module,
    teacher_logits: torch.Tensor,
    data: Split,
    *,
    temperature: float,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> None:
    """Train ``student`` on the teacher's softened outputs only (no labels).

    The target of training example ``i`` is ``softmax(teacher_logits[i] / T)``; the loss
    is Hinton et al.'s ``T² · KL(target ‖ softmax(z / T))`` (``F.kl_div``), averaged over
    the batch. The loop is :func:`train_classifier`'s (Adam, shuffled mini-batches
    seeded with ``seed``, :func:`~regcourse.training.train_epoch`), on example indices
    so that each batch finds its targets. One torch thread.

    Args:
        student (nn.Module): the network to train, in place.
        teacher_logits (Tensor): ``(N, K)`` teacher logits on ``data.x_train``.
        data (Split): the training inputs ``x_train`` (its labels are not used).
        temperature (float, keyword only): ``T > 0``.
        epochs, batch_size, lr, seed (keyword only): as in :func:`train_classifier`.

    Used in: chapter "Label smoothing".
    """
    if not isinstance(student, nn.Module):
        raise TypeError(f"student must be an nn.Module, got {type(student).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a regcourse.data.Split, got {type(data).__name__}")
    n = len(data.x_train)
    if not isinstance(teacher_logits, torch.Tensor) or teacher_logits.shape[:1] != (n,):
        got = (
            tuple(teacher_logits.shape)
            if isinstance(teacher_logits, torch.Tensor)
            else type(teacher_logits).__name__
        )
        raise ValueError(f"teacher_logits must have one row per training example ({n}), got {got}")
    temperature = check_scalar(temperature, "temperature", low=0, closed="neither")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    targets = torch.softmax(teacher_logits.detach().float() / temperature, dim=1)

    def loss_fn(logits, idx):
        log_q = F.log_softmax(logits / temperature, dim=1)
        return F.kl_div(log_q, targets[idx], reduction="batchmean") * temperature**2

    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    index = torch.arange(n)
    with one_thread():
        for _ in range(epochs):
            train_epoch(
                student, minibatches(data.x_train, index, batch_size, generator), loss_fn, optimizer
            )
    student.eval()


def _check_options(seeds, eps, epochs, batch_size, lr, hidden):
    return dict(
        seeds=check_scalar(seeds, "seeds", kind="int", low=1),
        eps=check_scalar(eps, "eps", low=0, high=1, closed="neither"),
        epochs=check_scalar(epochs, "epochs", kind="int", low=1),
        batch_size=check_scalar(batch_size, "batch_size", kind="int", low=1),
        lr=check_scalar(lr, "lr", low=0, closed="neither"),
        hidden=check_scalar(hidden, "hidden", kind="int", low=1),
    )


_OPTION_HELP = dict(
    seeds="number of seeds (each: its own initial weights and batch order)",
    eps="label smoothing of the smoothed runs (the other runs use hard targets)",
    epochs="training epochs of every network",
    batch_size="mini-batch size",
    lr="Adam's learning rate",
    hidden="width of the MLP's two hidden layers",
)


@experiment(
    "smoothing_calibration",
    "MNIST-1D MLP with hard and smoothed targets: accuracy, calibration, logit norm",
    num_bins="confidence bins of the reliability diagram and the ECE",
    **_OPTION_HELP,
)
def smoothing_calibration(
    seeds: int = 3,
    eps: float = 0.1,
    epochs: int = 40,
    batch_size: int = 500,
    lr: float = 0.01,
    hidden: int = 100,
    num_bins: int = 15,
    progress: bool = False,
) -> Result:
    """For seeds ``0 … seeds − 1``, train the MLP with ``ε = 0`` and with ``ε = eps``
    (:func:`teacher`) and measure it on the 1,000 test signals.

    Returns:
        Result: one row per run (``eps``, ``seed``, ``train_acc``, ``test_acc``,
        ``test_nll`` = hard-label cross-entropy, ``ece``, ``mean_conf`` on the test set,
        ``train_gap`` = mean logit gap and ``logit_norm`` on the training set after the
        last epoch). ``extra``: ``"norms"`` ``{(eps, seed): [norm per epoch]}``,
        ``"diagrams"`` ``{eps: ReliabilityDiagram}`` of the test predictions of all seeds
        pooled, ``"logits"`` ``{(eps, seed): test logits}``. The claims compare the two
        settings seed by seed; ``figure`` is :func:`reliability_figure`.
    """
    options = _check_options(seeds, eps, epochs, batch_size, lr, hidden)
    options["num_bins"] = check_scalar(num_bins, "num_bins", kind="int", low=1)
    train_opts = {k: options[k] for k in ("epochs", "batch_size", "lr", "hidden")}
    data = mnist1d_split()
    settings = (0.0, options["eps"])
    runs = [(e, seed) for seed in range(options["seeds"]) for e in settings]
    if progress:
        from tqdm.auto import tqdm

        runs = tqdm(runs, desc="smoothing_calibration", unit="run", leave=False)
    rows, norms, logits = [], {}, {}
    for e, seed in runs:
        model, norms[e, seed] = teacher(e, seed, **train_opts)
        z_train = collect_logits(model, data.x_train)
        z_test = logits[e, seed] = collect_logits(model, data.x_test)
        test_nll, test_acc = evaluate(model, data.x_test, data.y_test)
        conf, _ = confidence_and_prediction(z_test)
        rows.append(
            {
                "eps": e,
                "seed": seed,
                "train_acc": evaluate(model, data.x_train, data.y_train)[1],
                "test_acc": test_acc,
                "test_nll": test_nll,
                "ece": reliability_diagram(z_test, data.y_test, options["num_bins"]).ece,
                "mean_conf": float(conf.mean()),
                "train_gap": float(logit_gap(z_train).mean()),
                "logit_norm": float(logit_norm(z_train)),
            }
        )
    diagrams = {
        e: reliability_diagram(
            torch.cat([logits[e, s] for s in range(options["seeds"])]),
            data.y_test.repeat(options["seeds"]),
            options["num_bins"],
        )
        for e in settings
    }
    by = {(r["eps"], r["seed"]): r for r in rows}
    pairs = [(by[0.0, s], by[options["eps"], s]) for s in range(options["seeds"])]
    half = options["epochs"] // 2
    claims = {
        "smoothing lowers the test ECE for every seed": all(s["ece"] < h["ece"] for h, s in pairs),
        "smoothing lowers the hard-label test cross-entropy for every seed": all(
            s["test_nll"] < h["test_nll"] for h, s in pairs
        ),
        "hard targets: mean confidence above test accuracy (overconfident) for every seed": all(
            h["mean_conf"] > h["test_acc"] for h, _ in pairs
        ),
        "hard targets: the logit norm grows over the second half of training for every seed": all(
            norms[0.0, s][-1] > 1.2 * norms[0.0, s][half - 1] for s in range(options["seeds"])
        ),
        "smoothing: the logit norm changes by less than 10% over the second half": all(
            abs(norms[options["eps"], s][-1] / norms[options["eps"], s][half - 1] - 1) < 0.1
            for s in range(options["seeds"])
        ),
    }
    return Result(
        "smoothing_calibration",
        options,
        rows,
        claims,
        figure=reliability_figure(diagrams),
        extra={"norms": norms, "diagrams": diagrams, "logits": logits},
    )


@experiment(
    "smoothing_distillation",
    "MNIST-1D: students distilled from teachers trained with and without label smoothing",
    temperature="distillation temperature T",
    student_hidden="width of the student's single hidden layer",
    **_OPTION_HELP,
)
def smoothing_distillation(
    seeds: int = 3,
    eps: float = 0.1,
    epochs: int = 40,
    batch_size: int = 500,
    lr: float = 0.01,
    hidden: int = 100,
    temperature: float = 1.0,
    student_hidden: int = 32,
    progress: bool = False,
) -> Result:
    """For every seed, a student MLP (40 → ``student_hidden`` → 10) learns from the hard
    labels, from the hard-target teacher and from the smoothed teacher (:func:`teacher`,
    the networks of :func:`smoothing_calibration` with the same options).

    The students of one seed share their initial weights (seeded with ``seed + 1000``)
    and batch order; they train for ``epochs`` epochs like the teachers, the distilled
    ones with :func:`distill` at ``temperature`` on the teacher's training-set logits.

    Returns:
        Result: one row per (seed, source) with ``source`` one of ``"labels"``,
        ``"hard teacher"``, ``"smoothed teacher"``, the student's ``test_acc``, and for
        the teachers their ``teacher_test_acc`` and ``wrong_class_info`` (nats, at
        ``temperature``, on the training set: :func:`wrong_class_information`).
        ``extra["summary"]``: per source, mean and std over seeds of those numbers.
    """
    options = _check_options(seeds, eps, epochs, batch_size, lr, hidden)
    options["temperature"] = check_scalar(temperature, "temperature", low=0, closed="neither")
    options["student_hidden"] = check_scalar(student_hidden, "student_hidden", kind="int", low=1)
    train_opts = {k: options[k] for k in ("epochs", "batch_size", "lr", "hidden")}
    fit_opts = {k: options[k] for k in ("epochs", "batch_size", "lr")}
    data = mnist1d_split()
    rows = []
    seeds_iter = range(options["seeds"])
    if progress:
        from tqdm.auto import tqdm

        seeds_iter = tqdm(seeds_iter, desc="smoothing_distillation", unit="seed", leave=False)

    def new_student(seed):
        return build_model(
            "mlp", seed=seed + 1000, in_features=40, hidden=options["student_hidden"], depth=1
        )

    for seed in seeds_iter:
        student = new_student(seed)
        train_classifier(student, data, eps=0.0, seed=seed, record_norms=False, **fit_opts)
        rows.append(
            {
                "seed": seed,
                "source": "labels",
                "test_acc": evaluate(student, data.x_test, data.y_test)[1],
                "teacher_test_acc": None,
                "wrong_class_info": None,
            }
        )
        for name, e in (("hard teacher", 0.0), ("smoothed teacher", options["eps"])):
            model, _ = teacher(e, seed, **train_opts)
            z = collect_logits(model, data.x_train)
            student = new_student(seed)
            distill(student, z, data, temperature=options["temperature"], seed=seed, **fit_opts)
            rows.append(
                {
                    "seed": seed,
                    "source": name,
                    "test_acc": evaluate(student, data.x_test, data.y_test)[1],
                    "teacher_test_acc": evaluate(model, data.x_test, data.y_test)[1],
                    "wrong_class_info": wrong_class_information(
                        z, data.y_train, options["temperature"]
                    ),
                }
            )
    summary = {}
    for source in ("labels", "hard teacher", "smoothed teacher"):
        mine = [r for r in rows if r["source"] == source]
        summary[source] = {"test_acc": mean_std(r["test_acc"] for r in mine)}
        if source != "labels":
            summary[source]["teacher_test_acc"] = mean_std(r["teacher_test_acc"] for r in mine)
            summary[source]["wrong_class_info"] = mean_std(r["wrong_class_info"] for r in mine)
    by = {(r["source"], r["seed"]): r for r in rows}
    claims = {
        "the smoothed teacher's wrong-class probabilities are closer to uniform, every seed": all(
            by["smoothed teacher", s]["wrong_class_info"]
            < by["hard teacher", s]["wrong_class_info"]
            for s in range(options["seeds"])
        ),
    }
    return Result("smoothing_distillation", options, rows, claims, extra={"summary": summary})


def reliability_figure(diagrams: dict) -> Figure:
    """Reliability diagrams side by side: accuracy per confidence bin against the diagonal.

    Args:
        diagrams (dict): ``{eps: ReliabilityDiagram}``, e.g. ``smoothing_calibration``'s
            ``extra["diagrams"]``.

    The figure is not registered with pyplot (a notebook shows it only when asked, with
    :func:`regcourse.plotting.show_figure`).

    Returns:
        matplotlib Figure: one panel per ε; bars are the accuracy of each bin, dots its mean
        confidence, the dashed line perfect calibration; the ECE in the title.
    """
    if not isinstance(diagrams, dict) or not diagrams:
        raise TypeError(
            f"diagrams must be a non-empty dict {{eps: ReliabilityDiagram}}, got {diagrams!r:.80}"
        )
    bad = [k for k, d in diagrams.items() if not isinstance(d, ReliabilityDiagram)]
    if bad:
        raise TypeError(f"diagrams must map each eps to a ReliabilityDiagram, not for eps = {bad}")
    fig = Figure(figsize=(4.2 * len(diagrams), 3.8))
    axes = fig.subplots(1, len(diagrams), sharey=True, squeeze=False)[0]
    for ax, (e, d) in zip(axes, diagrams.items()):
        keep = d.count > 0
        left = d.edges[:-1][keep].tolist()
        width = float(d.edges[1] - d.edges[0])
        ax.bar(left, d.accuracy[keep].tolist(), width=width, align="edge", color="#4a9eff",
               edgecolor="#1c5fa8", label="accuracy of the bin")  # fmt: skip
        ax.plot(d.confidence[keep].tolist(), d.confidence[keep].tolist(), "o", color="#d9480f",
                ms=4, label="mean confidence of the bin")  # fmt: skip
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (largest softmax probability)")
        ax.set_title(f"ε = {e:g}: ECE = {d.ece:.3f}")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def logit_norm_figure(norms: dict, eps_values) -> Figure:
    """Mean training-set logit norm after each epoch, mean ± std over seeds, one line per ε.

    Args:
        norms (dict): ``{(eps, seed): [norm per epoch]}``, ``smoothing_calibration``'s
            ``extra["norms"]``.
        eps_values: the ε values to draw, in order.

    Returns:
        matplotlib Figure (the y axis starts at 0), not registered with pyplot.
    """
    if not isinstance(norms, dict) or not all(
        isinstance(k, tuple) and len(k) == 2 and isinstance(v, (list, tuple)) and len(v) > 0
        for k, v in norms.items()
    ):
        raise TypeError(
            f"norms must be a dict {{(eps, seed): [norm per epoch]}}, got {norms!r:.80}"
        )
    eps_values = list(eps_values)
    missing = [e for e in eps_values if not any(ee == e for ee, _ in norms)]
    if not eps_values or missing:
        raise ValueError(
            f"eps_values must name eps values of norms, got {eps_values} (missing {missing})"
        )
    for e in eps_values:
        lengths = {len(v) for (ee, _), v in norms.items() if ee == e}
        if len(lengths) != 1:
            raise ValueError(f"norms of eps = {e} have different lengths {sorted(lengths)}")
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for e in eps_values:
        curves = torch.tensor([v for (ee, _), v in sorted(norms.items()) if ee == e])
        mean = curves.mean(0)
        std = curves.std(0) if len(curves) > 1 else torch.zeros_like(mean)
        epochs = list(range(1, curves.shape[1] + 1))
        ax.plot(epochs, mean.tolist(), label=f"ε = {e:g}")
        ax.fill_between(epochs, (mean - std).tolist(), (mean + std).tolist(), alpha=0.25)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean logit norm ‖z‖ (training set)")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    return fig
