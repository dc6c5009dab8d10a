"""Experiments of the chapter "DropConnect and stochastic depth".

- ``dropconnect_cost``: how many random numbers DropConnect draws compared with
  dropout for one fully connected layer, and how much slower it is.
- ``depth_conventions``: for a residual network with random weights and real MNIST-1D
  signals as inputs, the average of the training-mode outputs against the inference
  output, under both scaling conventions of stochastic depth; and the linearly decaying
  survival probabilities.
- ``depth_mnist1d``: a residual MLP trained on MNIST-1D with and without stochastic
  depth, over several seeds, with :func:`fit_residual` (the loop the chapter writes out
  once from scratch).
- ``depth_digits``: a residual MLP trained on noisy digits with and without stochastic
  depth (the chapter's earlier experiment, kept for the command line).

Training runs with one torch thread (``regcourse.experiments._common.one_thread``),
so the results do not depend on the number of threads.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from .._checks import check_scalar
from . import Result, experiment

__all__ = [
    "dropconnect_cost",
    "depth_conventions",
    "depth_digits",
    "depth_mnist1d",
    "fit_residual",
    "accuracy_curves_figure",
]


# --------------------------------------------------------------------------------------
# DropConnect versus dropout: random numbers and time
# --------------------------------------------------------------------------------------


def _best_times(funcs: dict, repeats: int) -> dict[str, float]:
    """Fastest wall-clock time of each function over ``repeats`` calls, on one thread.

    A busy machine can only add time to a call, so the minimum is the most stable
    estimate of a function's own cost; the calls are interleaved so that a slow moment
    hits every function alike. Timing on one thread avoids the erratic stalls of a
    multi-threaded matrix product on an oversubscribed machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times: dict[str, list[float]] = {name: [] for name in funcs}
        for f in funcs.values():  # warm-up
            f()
        for _ in range(repeats):
            for name, f in funcs.items():
                start = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return {name: min(ts) for name, ts in times.items()}


@experiment(
    "dropconnect_cost",
    "random numbers drawn and time taken by DropConnect versus dropout for one linear layer",
    in_features="inputs of the layer",
    out_features="outputs of the layer",
    batch_size="examples per mini-batch",
    p="drop probability of both methods",
    repeats="timed repetitions (the fastest is reported)",
    seed="seed of the inputs, weights and masks",
)
def dropconnect_cost(
    in_features: int = 1024,
    out_features: int = 1024,
    batch_size: int = 64,
    p: float = 0.5,
    repeats: int = 15,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """Dropout on the layer's outputs against DropConnect on its weights.

    Counts the random numbers each method draws per mini-batch (dropout: one per
    output of every example; DropConnect with one shared mask: one per weight;
    DropConnect with a mask per example, as Wan et al.: one per weight and example),
    and times a training-mode forward pass of dropout and of shared-mask DropConnect
    (fastest of ``repeats`` calls, on one thread).
    """
    from ..dropout import dropconnect_linear, dropout, dropout_mask

    in_features = check_scalar(in_features, "in_features", kind="int", low=1)
    out_features = check_scalar(out_features, "out_features", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    p = check_scalar(p, "p", low=0, high=1, closed="neither")
    repeats = check_scalar(repeats, "repeats", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    options = dict(
        in_features=in_features,
        out_features=out_features,
        batch_size=batch_size,
        p=p,
        repeats=repeats,
        seed=seed,
    )

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, in_features, generator=g)
    weight = torch.randn(out_features, in_features, generator=g) / math.sqrt(in_features)
    bias = torch.zeros(out_features)

    # Random numbers: the size of each method's mask for one mini-batch.
    n_dropout = dropout_mask((batch_size, out_features), p, g).numel()
    n_shared = dropout_mask(weight.shape, p, g).numel()
    n_per_example = batch_size * n_shared  # one weight-sized mask per example (not drawn: too big)

    with torch.no_grad():
        times = _best_times(
            {
                "linear": lambda: F.linear(x, weight, bias),
                "dropout": lambda: dropout(F.linear(x, weight, bias), p, generator=g),
                "dropconnect": lambda: dropconnect_linear(x, weight, bias, p, generator=g),
            },
            repeats,
        )
    ratio = times["dropconnect"] / times["dropout"]
    rows = [
        {
            "method": "dropout (outputs)",
            "mask_shape": f"{batch_size} x {out_features}",
            "random_numbers": n_dropout,
            "per_example": out_features,
            "time_ms": round(times["dropout"] * 1e3, 3),
        },
        {
            "method": "DropConnect, one mask per batch",
            "mask_shape": f"{out_features} x {in_features}",
            "random_numbers": n_shared,
            "per_example": None,
            "time_ms": round(times["dropconnect"] * 1e3, 3),
        },
        {
            "method": "DropConnect, one mask per example",
            "mask_shape": f"{batch_size} x {out_features} x {in_features}",
            "random_numbers": n_per_example,
            "per_example": n_shared,
            "time_ms": None,
        },
        {
            "method": "plain linear layer (no noise)",
            "mask_shape": "-",
            "random_numbers": 0,
            "per_example": 0,
            "time_ms": round(times["linear"] * 1e3, 3),
        },
    ]
    dropout_per_example = n_dropout // batch_size  # one number per output unit
    dropconnect_per_example = n_shared  # Wan et al.: a weight-sized mask per example
    claims = {
        "per example, DropConnect draws in_features times more random numbers than dropout": (
            dropconnect_per_example == in_features * dropout_per_example
        ),
        "per mini-batch, one shared mask draws in_features / batch_size times dropout's": (
            n_shared * batch_size == in_features * n_dropout
        ),
        "DropConnect (one shared mask) more than twice as slow as dropout": ratio > 2.0,
    }
    return Result(
        "dropconnect_cost", options, rows, claims, extra={"times": times, "time_ratio": ratio}
    )


# --------------------------------------------------------------------------------------
# Stochastic depth: expectation of the training output against the inference output
# --------------------------------------------------------------------------------------


def _all_patterns(num_blocks: int, survival: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every keep/skip pattern of the blocks, ``(num_blocks, 2**num_blocks)``, and the
    probability of each."""
    codes = torch.arange(2**num_blocks)
    bits = (codes.unsqueeze(0) >> torch.arange(num_blocks).unsqueeze(1)) & 1  # (L, 2^L)
    s = survival.unsqueeze(1)
    probs = torch.where(bits == 1, s, 1 - s).prod(dim=0)
    return bits, probs


@experiment(
    "depth_conventions",
    "stochastic depth: average training output versus inference output, both conventions",
    blocks="number of residual blocks (all 2**blocks sub-networks are enumerated)",
    width="width of the residual stream",
    survival_last="survival probability of the last block",
    samples="Monte-Carlo samples of the training-mode output",
    examples="MNIST-1D test signals fed through the network",
    seed="seed of the weights and the masks",
)
def depth_conventions(
    blocks: int = 6,
    width: int = 32,
    survival_last: float = 0.5,
    samples: int = 2000,
    examples: int = 4,
    seed: int = 0,
    progress: bool = False,
) -> Result:
    """For each convention and for a linear and a ReLU residual MLP with random weights,
    fed with the first ``examples`` MNIST-1D test signals:

    - the *exact* expectation of the training-mode output, by enumerating all
      ``2**blocks`` keep/skip patterns with their probabilities, against the
      inference output;
    - a Monte-Carlo average of ``samples`` training-mode outputs against the
      inference output, in standard errors.
    """
    import matplotlib.pyplot as plt

    from ..data import mnist1d_split
    from ..depth import MODES, build_residual_mlp, linear_decay_survival

    blocks = check_scalar(blocks, "blocks", kind="int", low=1, high=12)
    width = check_scalar(width, "width", kind="int", low=1)
    survival_last = check_scalar(survival_last, "survival_last", low=0, high=1, closed="right")
    samples = check_scalar(samples, "samples", kind="int", low=2)
    examples = check_scalar(examples, "examples", kind="int", low=1, high=100)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    options = dict(
        blocks=blocks,
        width=width,
        survival_last=survival_last,
        samples=samples,
        examples=examples,
        seed=seed,
    )

    x = mnist1d_split().x_test[:examples].double()  # real signals, the first of the test set
    ones = [1] * (x.dim() - 1)  # x.repeat(n, *ones) stacks n copies of the batch
    survival = linear_decay_survival(blocks, survival_last)
    bits, probs = _all_patterns(blocks, survival)
    n_patterns = bits.shape[1]
    rows, curves = [], {}
    for mode in MODES:
        for activation in ("identity", "relu"):
            g = torch.Generator().manual_seed(seed + 1)
            model = build_residual_mlp(
                seed=seed,
                dtype=torch.float64,
                in_features=x.shape[1],
                width=width,
                num_blocks=blocks,
                survival_last=survival_last,
                mode=mode,
                activation=activation,
                generator=g,
            )
            with torch.no_grad():
                model.eval()
                eval_out = model(x)  # (E, C)
                scale = eval_out.abs().max().item()
                # exact expectation over all keep/skip patterns
                masks = bits.repeat_interleave(examples, dim=1)  # (L, 2^L * E)
                outs = model(x.repeat(n_patterns, *ones), masks=masks)
                outs = outs.view(n_patterns, examples, -1)
                exact = (probs.view(-1, 1, 1) * outs).sum(0)
                # Monte Carlo: every copy of an example draws its own masks
                model.train()
                draws = model(x.repeat(samples, *ones)).view(samples, examples, -1)
            mc_mean = draws.mean(0)
            se = draws.std(0) / math.sqrt(samples)
            z = ((mc_mean - eval_out).abs() / se.clamp_min(1e-12)).max().item()
            z_exact = ((mc_mean - exact).abs() / se.clamp_min(1e-12)).max().item()
            network = "linear" if activation == "identity" else "ReLU"
            rows.append(
                {
                    "mode": mode,
                    "network": network,
                    "exact_gap": (exact - eval_out).abs().max().item() / scale,
                    "mc_gap": (mc_mean - eval_out).abs().max().item() / scale,
                    "mc_max_z_vs_eval": z,
                    "mc_max_z_vs_exact": z_exact,
                    "max_se": se.max().item() / scale,
                }
            )
            if activation == "identity":
                n = torch.arange(1, samples + 1, dtype=torch.float64).view(-1, 1, 1)
                running = draws.cumsum(0) / n
                curves[mode] = ((running - eval_out).abs().amax(dim=(1, 2)) / scale).tolist()

    expected_active = float(survival.sum())
    closed_form = blocks - (1 - survival_last) * (blocks + 1) / 2
    by = {(r["mode"], r["network"]): r for r in rows}
    claims = {}
    for mode in MODES:
        claims[f"{mode}, linear net: exact E[training output] = inference output (to 1e-12)"] = (
            by[mode, "linear"]["exact_gap"] < 1e-12
        )
        claims[
            f"{mode}, linear net: Monte-Carlo mean within 5 standard errors of inference output"
        ] = by[mode, "linear"]["mc_max_z_vs_eval"] < 5
        claims[
            f"{mode}, ReLU net: Monte-Carlo mean within 5 standard errors of exact expectation"
        ] = by[mode, "ReLU"]["mc_max_z_vs_exact"] < 5
        claims[
            f"{mode}, ReLU net: inference output differs from exact expectation (gap > 1e-6)"
        ] = by[mode, "ReLU"]["exact_gap"] > 1e-6
    diffs = survival[1:] - survival[:-1] if blocks > 1 else torch.zeros(0, dtype=torch.float64)
    claims["survival decreases linearly with depth, to survival_last at the last block"] = (
        bool(
            (diffs < 0).all()
            and torch.allclose(diffs, diffs.mean().expand_as(diffs))
            and abs(float(survival[-1]) - survival_last) < 1e-12
        )
        if blocks > 1
        else abs(float(survival[-1]) - survival_last) < 1e-12
    )
    claims["expected active blocks = sum of survival = L - (1 - p_L)(L + 1)/2"] = (
        abs(expected_active - closed_form) < 1e-12
    )

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    depth = list(range(1, blocks + 1))
    ax1.bar(depth, survival.tolist(), color="#4a9eff", label=f"$s_L$ = {survival_last:g}")
    ax1.plot([0.5, blocks + 0.5], [1, 1], "k--", lw=1)
    ax1.set_xlabel(r"block $\ell$")
    ax1.set_ylabel(r"survival probability $s_\ell$")
    ax1.set_ylim(0, 1.05)
    ax1.set_title("Linear decay with depth")
    ax1.legend(loc="lower left")
    steps = torch.arange(1, samples + 1).tolist()
    for mode, curve in curves.items():
        ax2.loglog(steps, curve, label=mode, lw=1)
    ref = curves[MODES[0]][len(curves[MODES[0]]) // 10]
    ax2.loglog(
        steps,
        [ref * math.sqrt(samples // 10 + 1) / math.sqrt(s) for s in steps],
        "k--",
        lw=1,
        label=r"$\propto 1/\sqrt{S}$",
    )
    ax2.set_xlabel("Monte-Carlo samples $S$")
    ax2.set_ylabel("max |mean - inference| (relative)")
    ax2.set_title("Linear net: average converges to inference")
    ax2.legend()
    fig.tight_layout()
    return Result(
        "depth_conventions",
        options,
        rows,
        claims,
        figure=fig,
        extra={"survival": survival.tolist(), "expected_active": expected_active, "curves": curves},
    )


# --------------------------------------------------------------------------------------
# A residual MLP on digits, with and without stochastic depth
# --------------------------------------------------------------------------------------


@experiment(
    "depth_digits",
    "residual MLP on noisy digits with and without stochastic depth",
    blocks="number of residual blocks",
    width="width of the residual stream",
    survival_last="survival probability of the last block (stochastic-depth runs)",
    epochs="training epochs",
    label_noise="fraction of wrong training labels",
    seeds="number of seeds",
)
def depth_digits(
    blocks: int = 6,
    width: int = 64,
    survival_last: float = 0.5,
    epochs: int = 30,
    label_noise: float = 0.2,
    seeds: int = 3,
    progress: bool = False,
) -> Result:
    """Train the same residual MLP with (``survival_last``) and without (``survival_last = 1``)
    stochastic depth on digits with noisy training labels, for a few seeds, and
    compare training accuracy (on the noisy labels), validation accuracy and their gap."""
    from ..data import digits_split
    from ..depth import build_residual_mlp
    from ..training import train

    blocks = check_scalar(blocks, "blocks", kind="int", low=1)
    width = check_scalar(width, "width", kind="int", low=1)
    survival_last = check_scalar(survival_last, "survival_last", low=0, high=1, closed="neither")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    options = dict(
        blocks=blocks,
        width=width,
        survival_last=survival_last,
        epochs=epochs,
        label_noise=label_noise,
        seeds=seeds,
    )

    rows = []
    for seed in range(seeds):
        data = digits_split(300, 300, label_noise=label_noise, seed=seed)
        for name, pl in (("no stochastic depth", 1.0), ("stochastic depth", survival_last)):
            model = build_residual_mlp(
                seed=seed,
                width=width,
                num_blocks=blocks,
                survival_last=pl,
                generator=torch.Generator().manual_seed(seed + 100),
            )
            hist = train(
                model, data, epochs=epochs, lr=1e-3, seed=seed, progress=progress, desc=name
            )
            rows.append(
                {
                    "method": name,
                    "seed": seed,
                    "train_acc": hist.train_acc[-1],
                    "val_acc": hist.val_acc[-1],
                    "gap": hist.train_acc[-1] - hist.val_acc[-1],
                }
            )

    def mean(method, key):
        vals = [r[key] for r in rows if r["method"] == method]
        return sum(vals) / len(vals)

    summary = {
        m: {k: mean(m, k) for k in ("train_acc", "val_acc", "gap")}
        for m in ("no stochastic depth", "stochastic depth")
    }
    none, sd = summary["no stochastic depth"], summary["stochastic depth"]
    claims = {
        "stochastic depth fits fewer noisy training labels (train acc lower by > 0.02)": (
            none["train_acc"] - sd["train_acc"] > 0.02
        ),
        "stochastic depth shrinks the train-validation gap (by > 0.02)": (
            none["gap"] - sd["gap"] > 0.02
        ),
        "stochastic depth does not lower validation accuracy (by more than 0.01)": (
            sd["val_acc"] > none["val_acc"] - 0.01
        ),
    }
    return Result("depth_digits", options, rows, claims, extra={"summary": summary})


# --------------------------------------------------------------------------------------
# A residual MLP on MNIST-1D, with and without stochastic depth
# --------------------------------------------------------------------------------------


def fit_residual(
    model: torch.nn.Module,
    data,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    eval_every: int = 0,
) -> dict:
    """Train ``model`` with Adam on cross-entropy, as the chapter's loop does, then measure it.

    Per epoch: shuffle the training set with a ``torch.Generator`` seeded with ``seed``
    and cut it into mini-batches (:func:`~regcourse.training.minibatches`), then one Adam
    step per batch in training mode (:func:`~regcourse.training.train_epoch`: forward,
    cross-entropy, ``zero_grad``, ``backward``, ``step``). Stochastic depth draws its
    gates from the blocks' own generator (given when the model was built). Measurements
    use :func:`~regcourse.training.evaluate` (``model.eval()`` and ``torch.no_grad()``);
    the model is left in eval mode. One torch thread.

    Args:
        model (nn.Module): the network, trained in place.
        data (Split): ``x_train``/``y_train`` to train on, ``x_test``/``y_test`` to measure.
        epochs (int, keyword only): passes over the training set, ``>= 1``.
        batch_size (int, keyword only): examples per step, ``>= 1``.
        lr (float, keyword only): Adam's learning rate, ``> 0``.
        seed (int, keyword only): seed of the batch order, ``>= 0``.
        eval_every (int, keyword only): also measure after every ``eval_every``-th epoch
            (and the last); ``0`` measures only at the end. Default: ``0``.

    Returns:
        dict: ``train_acc`` and ``test_acc`` (in ``[0, 1]``) after the last epoch, and
        ``"curves"``: ``{"epoch": [...], "train_acc": [...], "test_acc": [...]}`` (empty
        lists with ``eval_every=0``).

    Used in: chapter "DropConnect and stochastic depth".
    """
    from ..data import Split
    from ..training import evaluate, minibatches, train_epoch
    from ._common import one_thread

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a regcourse.data.Split, got {type(data).__name__}")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    eval_every = check_scalar(eval_every, "eval_every", kind="int", low=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    curves: dict[str, list] = {"epoch": [], "train_acc": [], "test_acc": []}
    with one_thread():
        for epoch in range(1, epochs + 1):
            batches = minibatches(data.x_train, data.y_train, batch_size, generator)
            train_epoch(model, batches, F.cross_entropy, optimizer)
            if eval_every and (epoch % eval_every == 0 or epoch == epochs):
                curves["epoch"].append(epoch)
                curves["train_acc"].append(evaluate(model, data.x_train, data.y_train)[1])
                curves["test_acc"].append(evaluate(model, data.x_test, data.y_test)[1])
        train_acc = evaluate(model, data.x_train, data.y_train)[1]
        test_acc = evaluate(model, data.x_test, data.y_test)[1]
    model.eval()
    return {"train_acc": train_acc, "test_acc": test_acc, "curves": curves}


_METHODS = ("no stochastic depth", "stochastic depth")


@experiment(
    "depth_mnist1d",
    "MNIST-1D: a residual MLP with and without stochastic depth, over several seeds",
    seeds="number of seeds (each: its own initial weights, batch order and gates)",
    blocks="number of residual blocks",
    width="width of the residual stream",
    survival_last="survival probability of the last block (stochastic-depth runs)",
    mode="scaling convention: train_scale or test_scale",
    epochs="training epochs of every run",
    batch_size="mini-batch size",
    lr="Adam's learning rate",
    eval_every="measure the accuracies every eval_every epochs (0: only at the end)",
)
def depth_mnist1d(
    seeds: int = 3,
    blocks: int = 4,
    width: int = 64,
    survival_last: float = 0.5,
    mode: str = "train_scale",
    epochs: int = 30,
    batch_size: int = 500,
    lr: float = 0.01,
    eval_every: int = 5,
    progress: bool = False,
) -> Result:
    """For seeds ``0 … seeds − 1``, the same residual MLP (same initial weights, batch order
    and gate generator) trained on MNIST-1D without stochastic depth (``survival_last = 1``)
    and with linearly decaying survival down to ``survival_last``, with :func:`fit_residual`.

    The model is :func:`regcourse.models.build_residual_mlp` with ``in_features = 40``,
    weights seeded with the seed and its blocks' gates drawn from a generator seeded with
    ``seed + 100``.

    Returns:
        Result: one row per (seed, method) with ``train_acc``, ``test_acc`` and
        ``gap = train_acc - test_acc``; ``extra["summary"]``: per method, mean and std over
        seeds of the three; ``extra["curves"]``: ``{(method, seed): curves}``;
        ``extra["models"]``: the trained networks by ``(method, seed)``. Claims
        compare the two methods seed by seed; ``figure`` is :func:`accuracy_curves_figure`.
    """
    from ..data import mnist1d_split
    from ..depth import MODES
    from ..models import build_residual_mlp
    from . import mean_std

    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    blocks = check_scalar(blocks, "blocks", kind="int", low=1)
    width = check_scalar(width, "width", kind="int", low=1)
    survival_last = check_scalar(survival_last, "survival_last", low=0, high=1, closed="neither")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    eval_every = check_scalar(eval_every, "eval_every", kind="int", low=0)
    options = dict(seeds=seeds, blocks=blocks, width=width, survival_last=survival_last,
                   mode=mode, epochs=epochs, batch_size=batch_size, lr=lr,
                   eval_every=eval_every)  # fmt: skip

    data = mnist1d_split()
    runs = [(seed, method) for seed in range(seeds) for method in _METHODS]
    if progress:
        from tqdm.auto import tqdm

        runs = tqdm(runs, desc="depth_mnist1d", unit="run", leave=False)
    rows, curves, models = [], {}, {}
    for seed, method in runs:
        model = build_residual_mlp(
            seed=seed,
            in_features=data.x_train.shape[1],
            width=width,
            num_blocks=blocks,
            survival_last=1.0 if method == "no stochastic depth" else survival_last,
            mode=mode,
            generator=torch.Generator().manual_seed(seed + 100),
        )
        out = fit_residual(
            model, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            eval_every=eval_every,
        )  # fmt: skip
        curves[method, seed] = out["curves"]
        models[method, seed] = model
        rows.append(
            {
                "method": method,
                "seed": seed,
                "train_acc": out["train_acc"],
                "test_acc": out["test_acc"],
                "gap": out["train_acc"] - out["test_acc"],
            }
        )
    summary = {
        m: {
            k: mean_std(r[k] for r in rows if r["method"] == m)
            for k in ("train_acc", "test_acc", "gap")
        }
        for m in _METHODS
    }
    by = {(r["method"], r["seed"]): r for r in rows}
    pairs = [(by[_METHODS[0], s], by[_METHODS[1], s]) for s in range(seeds)]
    claims = {
        "stochastic depth lowers the training accuracy, every seed": all(
            sd["train_acc"] < none["train_acc"] for none, sd in pairs
        ),
        "stochastic depth shrinks the train-test gap, every seed": all(
            sd["gap"] < none["gap"] for none, sd in pairs
        ),
    }
    result = Result(
        "depth_mnist1d",
        options,
        rows,
        claims,
        extra={"summary": summary, "curves": curves, "models": models},
    )
    if eval_every:
        result.figure = accuracy_curves_figure(curves)
    return result


def accuracy_curves_figure(curves: dict):
    """Training and test accuracy over the epochs, mean ± std over seeds, one colour per method.

    Args:
        curves (dict): ``{(method, seed): {"epoch": [...], "train_acc": [...],
            "test_acc": [...]}}``, ``depth_mnist1d``'s ``extra["curves"]``.

    Returns:
        matplotlib Figure, not registered with pyplot (show it with
        :func:`regcourse.plotting.show_figure`); the y axis starts at 0.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    colours = {"no stochastic depth": "#d9480f", "stochastic depth": "#1c7ed6"}
    for method in dict.fromkeys(m for m, _ in curves):
        mine = [c for (m, _), c in sorted(curves.items()) if m == method]
        epochs = mine[0]["epoch"]
        for key, style in (("train_acc", "--"), ("test_acc", "-")):
            values = torch.tensor([c[key] for c in mine], dtype=torch.float64)
            mean = values.mean(0)
            std = values.std(0) if len(mine) > 1 else torch.zeros_like(mean)
            label = f"{method}, {'training' if key == 'train_acc' else 'test'}"
            ax.plot(epochs, mean.tolist(), style, color=colours.get(method), label=label)
            ax.fill_between(epochs, (mean - std).tolist(), (mean + std).tolist(),
                            color=colours.get(method), alpha=0.2)  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
