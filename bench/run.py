"""`make bench`: how fast is regcourse compared with torch?

Three parts, each selectable with ``--only``:

``ops``
    Each operation of the package against torch's built-in (or, where torch has
    none, a minimal inline torch reference written here), on realistic sizes, at
    each thread count of ``--threads``. The two sides run *interleaved* (ours,
    torch, ours, torch, ...), so a burst of load from another process hits both;
    warm-up calls are excluded; each repeat times a loop of calls, and we report
    the median per-call time of each side and ``ratio = ours / torch``.
    Before timing, each case checks that both sides compute the same thing.
``notebooks``
    Each chapter executed with ``jupyter nbconvert --execute`` into a temporary
    folder (never in place), beside the floor: a notebook that only imports
    torch and regcourse and calls ``regcourse.setup``.
``classroom``
    ``python -m coursework grade`` of a whole class (``bench/classroom.py``): every chapter's
    reference solution, and 200 generated submissions of one chapter, with ``--jobs 2``.
``book``
    ``jupyter-book build`` of the repository into a temporary ``--path-output``
    folder under /tmp: once cold (executing every chapter), once again unchanged
    (the jupyter-cache makes this a cached rebuild).

Results go to ``bench/results.json`` and ``bench/results.md`` (or ``--out-dir``),
with a description of the machine. Usage::

    python bench/run.py                      # everything (what `make bench` runs)
    python bench/run.py --only ops --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parent.parent
PARTS = ("ops", "notebooks", "book", "classroom")
#: ratio above which a row must carry a note saying why
SLOW_RATIO = 1.2
SHARED_NOTE = (
    "Measured on a shared 2-core machine while other processes were running: "
    "ratios (same run, interleaved, medians) are more trustworthy than absolute times."
)

#: Why ours can be slower than the reference, for the code as it is now (after the commit
#: "Speed: finite check via one reduction, ..."). Found by profiling on this machine with
#: 1 thread: torch.profiler op tables of each case, and the CPU time of single ops (best of
#: 15 repeats). Shown under the table for rows above SLOW_RATIO. The finite check of
#: regcourse._checks.check_tensor is now one sum (_all_finite): ~0.65 ms on 4096x1024
#: floats, where torch.isfinite(x).all() took ~12 ms.
_CHECK = "regcourse._checks.check_tensor's finite check (one sum over {what}, {cost})"
WHY_SLOW = {
    "dropout": "The same arithmetic as torch's CPU F.dropout: a float mask drawn with "
    "bernoulli_ (~85 % of the time on both sides), scaled by 1/(1 - p) and multiplied with x; "
    "the backward multiplies by the saved mask. Ours adds "
    + _CHECK.format(what="x", cost="~0.7 ms")
    + " and scales the mask out of place "
    "(mask / (1 - p): one more 16 MB tensor) where torch divides it in place: a few ms on "
    "~70 ms, so a ratio above 1.2 here is mostly load from other processes.",
    "smoothing": "Ours (regcourse.smoothing.smoothed_cross_entropy) now computes what torch's "
    "cross_entropy(label_smoothing=) computes, in the same order: log_softmax, nll_loss, a "
    "sum over the classes, both reduced over the batch before they are scaled. What remains "
    "are fixed costs on a call of ~1.5 ms: the value scans (the finite check of the logits, "
    "one sum, and the range check of the targets; switch them off with "
    "regcourse.set_validate_args(False)) and a few more small autograd nodes.",
    "batchnorm": "torch calls one native kernel (aten::native_batch_norm: the per-channel "
    "statistics in one pass and the normalising pass, writing one output). Ours "
    "(regcourse.normalization._batch_norm) is composed of autograd-recorded ops: the mean, "
    "x*x (one full-size temporary, kept for the backward) and its mean give the variance as "
    "mean(x^2) - mean^2, then one addcmul x*scale + shift: four passes over x and two new "
    "full-size tensors where torch makes two passes and one. The layer does no value scan "
    "(like torch's layers), so that is the whole difference. A single-pass statistic from "
    "Python (torch.var_mean over the batch dimension) measured 8x slower than two plain "
    "reductions here, which is why it is not used.",
    "drop_path": "Ours (regcourse.depth.drop_path) computes x * (mask / keep) with an "
    "(N, 1, 1, 1) mask: the arithmetic of current timm, one full pass forward and one "
    "backward. It adds " + _CHECK.format(what="x", cost="~2.6 ms on 256x64x32x32") + " on a "
    "call of ~55-70 ms. Against the older x.div(keep).mul(mask), which makes two full passes, "
    "ours is faster.",
    "augment": "Ours does the reference's tensor work (Mixup: lam·x + (1 - lam)·x[index]; "
    "CutMix: clone and paste one box; labels: one_hot and a blend) plus fixed costs the "
    "reference skips: "
    + _CHECK.format(what="the image batch", cost="~0.5 ms on 256x3x64x64")
    + ", range checks of y and of the box, and λ drawn by regcourse.augment.sample_beta (two "
    "gamma variates, ~0.16 ms, vs ~0.05 ms for torch.distributions.Beta). They weigh most on "
    "CutMix, whose own work takes only ~2-3 ms.",
    "sgd_inplace": "regcourse.penalties.sgd_step_ runs torch's single-tensor arithmetic "
    "(grad.add(w, alpha=lam), then w.add_ in place: bit-identical results). With the value "
    "scans on (the default) it also checks that w and grad are finite, one sum over each "
    "(~0.16 ms each on 1024x1024, on a step of ~1 ms); the row with the scans off "
    "(regcourse.set_validate_args(False)) is what a training loop pays.",
    "adamw_inplace": "regcourse.penalties.adamw_step_ runs torch's single-tensor AdamW "
    "arithmetic in place (bit-identical). With the value scans on it checks that w, grad, m "
    "and v are finite (one sum each, ~0.7 ms together on 1024x1024); with them off it does "
    "the same work as torch.",
    "sgd": "Functional by design: regcourse.penalties.sgd_step returns the total gradient and "
    "the new weight without touching its inputs, so it writes two new 4 MB tensors "
    "(grad.add(w, alpha=lam), then w.add(total, alpha=-lr)); torch's single-tensor SGD makes "
    "the first and updates p in place (p.add_), and fused=True does both in one in-place "
    "kernel with no temporary. Plus "
    + _CHECK.format(what="each of w and grad", cost="~0.16 ms each on 1024x1024")
    + ".",
    "adamw": "Functional by design: regcourse.penalties.adamw_step returns new w, m and v "
    "without touching its inputs, so 7 of its 8 elementwise ops (decay w·(1 - lr·lam), lerp, "
    "v·beta2, addcmul, sqrt, divide, add eps in place, addcdiv) write a new 4 MB tensor; "
    "torch's single-tensor AdamW runs the same ops in place (mul_, lerp_, mul_, addcmul_, "
    "addcdiv_) with 2 temporaries for the denominator, and fused=True runs one in-place "
    "kernel. Plus "
    + _CHECK.format(what="each of w, grad, m and v", cost="~0.7 ms together on 1024x1024")
    + ".",
}


# --- statistics helpers ----------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence of numbers."""
    if len(values) == 0:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def ratio(ours: float, reference: float) -> float:
    """``ours / reference``: above 1 means ours is slower."""
    if reference <= 0:
        raise ValueError(f"reference time must be > 0, got {reference}")
    return ours / reference


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """Lower and upper quartile (the values themselves when fewer than 4)."""
    v = sorted(values)
    if len(v) < 4:
        return float(v[0]), float(v[-1])
    q = statistics.quantiles(v, n=4)
    return float(q[0]), float(q[2])


def time_pair(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 2,
    min_time: float = 0.05,
    max_number: int = 1000,
    collect: bool = True,
) -> dict:
    """Time two callables interleaved; return per-call times (seconds) of each repeat.

    ``number`` calls make one repeat; ``number`` is chosen (from the slower side's
    warm-up) so that a repeat lasts at least ``min_time``. Both sides use the same
    ``number``. Repeats alternate which side goes first. Wall-clock times are under
    ``"ours"``/``"torch"``; the process's CPU times (all its threads) under
    ``"ours_cpu"``/``"torch_cpu"``: with one thread, CPU time does not count the time
    spent waiting for a core, so it is steadier on a loaded machine. With ``collect``
    the garbage collector runs (untimed) before each repeat.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    slowest = 0.0
    for fn in (ours, theirs):
        for _ in range(max(warmup, 1)):
            t0 = time.perf_counter()
            fn()
            slowest = max(slowest, time.perf_counter() - t0)
    number = int(min(max_number, max(1, min_time // max(slowest, 1e-9) + 1)))

    def one(fn, wall, cpu):
        if collect:
            gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            fn()
        wall.append((time.perf_counter() - t0) / number)
        cpu.append((time.process_time() - c0) / number)

    out = {"number": number, "ours": [], "torch": [], "ours_cpu": [], "torch_cpu": []}
    sides = [(ours, out["ours"], out["ours_cpu"]), (theirs, out["torch"], out["torch_cpu"])]
    for r in range(repeats):
        for fn, wall, cpu in sides if r % 2 == 0 else sides[::-1]:
            one(fn, wall, cpu)
    return out


# --- the machine -----------------------------------------------------------------------
def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    config = torch.__config__.show().splitlines()
    keep = ("GCC", "oneAPI", "MKL-DNN", "OpenMP", "CPU capability", "LAPACK")
    summary = [line.strip(" -") for line in config if any(k in line for k in keep)]
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_build": summary,
        "torch_parallel_backend": next(
            (
                line.split(":", 1)[1].strip()
                for line in torch.__config__.parallel_info().splitlines()
                if line.startswith("ATen parallel backend")
            ),
            "unknown",
        ),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# --- the operations ---------------------------------------------------------------------
@dataclass
class Case:
    """One benchmarked operation: ``setup()`` returns ``(ours, torch_ref)`` callables."""

    name: str
    size: str
    reference: str
    setup: Callable[[], tuple[Callable[[], object], Callable[[], object]]]
    module: str
    note: str = ""
    #: why ours is slower (found by profiling); shown when ratio > SLOW_RATIO
    why_slow: str = ""


@dataclass
class Row:
    part: str
    name: str
    size: str
    reference: str
    threads: int | None = None
    ours_ms: float | None = None
    torch_ms: float | None = None
    ratio: float | None = None
    #: ours / torch by process CPU time (ops), or by CPU seconds of the child processes
    #: (notebooks, book)
    cpu_ratio: float | None = None
    status: str = "ok"
    note: str = ""
    detail: dict = field(default_factory=dict)


def _require(module: str):
    import importlib

    return importlib.import_module(module)


def _fwd_bwd(fn, x, grad_out):
    def run():
        x.grad = None
        fn(x).backward(grad_out)

    return run


def case_dropout(quick: bool) -> Case:
    shape = (64, 32) if quick else (4096, 1024)

    def setup():
        from regcourse.dropout import dropout

        g = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=g).requires_grad_()
        gy = torch.randn(shape, generator=g)
        # same semantics: kept entries scaled by 1/(1-p), the rest 0
        torch.manual_seed(1)
        a = dropout(x.detach(), 0.5)
        b = F.dropout(x.detach(), 0.5, training=True)
        for y in (a, b):
            assert set(torch.unique(y / x.detach()).tolist()) <= {0.0, 2.0}
        return (
            _fwd_bwd(lambda t: dropout(t, 0.5), x, gy),
            _fwd_bwd(lambda t: F.dropout(t, 0.5, training=True), x, gy),
        )

    return Case(
        "dropout fwd+bwd (p=0.5)",
        "x".join(map(str, shape)),
        "F.dropout",
        setup,
        "regcourse.dropout",
        why_slow=WHY_SLOW["dropout"],
    )


def case_smoothing(quick: bool, scans: bool = True) -> Case:
    n, k = (16, 10) if quick else (512, 1000)

    def setup():
        from regcourse.smoothing import smoothed_cross_entropy

        g = torch.Generator().manual_seed(0)
        z = torch.randn(n, k, generator=g).requires_grad_()
        t = torch.randint(0, k, (n,), generator=g)
        a = smoothed_cross_entropy(z.detach(), t, 0.1)
        b = F.cross_entropy(z.detach(), t, label_smoothing=0.1)
        torch.testing.assert_close(a, b)

        def ours():
            z.grad = None
            smoothed_cross_entropy(z, t, 0.1).backward()

        def theirs():
            z.grad = None
            F.cross_entropy(z, t, label_smoothing=0.1).backward()

        return (ours if scans else _without_value_scans(ours)), theirs

    return Case(
        "label-smoothed cross-entropy fwd+bwd (eps=0.1), value scans "
        + ("on (default)" if scans else "off"),
        f"{n}x{k} logits",
        "F.cross_entropy(label_smoothing=0.1)",
        setup,
        "regcourse.smoothing",
        why_slow=WHY_SLOW["smoothing"],
    )


def case_batchnorm(quick: bool) -> Case:
    n, d = (64, 32) if quick else (4096, 1024)

    def setup():
        from regcourse.normalization import BatchNorm1d

        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, d, generator=g)
        ours_m, theirs_m = BatchNorm1d(d).train(), nn.BatchNorm1d(d).train()
        torch.testing.assert_close(ours_m(x), theirs_m(x))
        # forward as in training: parameters require grad, so autograd records the graph
        return (lambda: ours_m(x)), (lambda: theirs_m(x))

    return Case(
        "BatchNorm1d training forward",
        f"{n}x{d}",
        "nn.BatchNorm1d",
        setup,
        "regcourse.normalization",
        why_slow=WHY_SLOW["batchnorm"],
    )


def case_batchnorm2d(quick: bool) -> Case:
    shape = (4, 8, 4, 4) if quick else (64, 64, 16, 16)

    def setup():
        from regcourse.normalization import BatchNorm2d

        g = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=g)
        ours_m, theirs_m = BatchNorm2d(shape[1]).train(), nn.BatchNorm2d(shape[1]).train()
        torch.testing.assert_close(ours_m(x), theirs_m(x))
        return (lambda: ours_m(x)), (lambda: theirs_m(x))

    return Case(
        "BatchNorm2d training forward",
        "x".join(map(str, shape)),
        "nn.BatchNorm2d",
        setup,
        "regcourse.normalization",
        why_slow=WHY_SLOW["batchnorm"],
    )


def _without_value_scans(fn):
    """``fn`` called with regcourse's value scans switched off (as a training loop would)."""
    from regcourse import set_validate_args

    def run():
        old = set_validate_args(False)
        try:
            return fn()
        finally:
            set_validate_args(old)

    return run


def _timm_drop_path(x, p):
    """Inline torch reference as the task states timm's drop_path: ``x.div(keep).mul(mask)``."""
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x.div(keep).mul(mask)


def _timm_drop_path_scaled_mask(x, p):
    """timm's current drop_path: scale the (N, 1, ..., 1) mask, then one multiply ``x * mask``."""
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


def _drop_path_cases(quick: bool) -> list[Case]:
    shape = (4, 3, 8, 8) if quick else (256, 64, 32, 32)

    def setup(reference):
        def run():
            from regcourse.depth import drop_path

            g = torch.Generator().manual_seed(0)
            x = torch.randn(shape, generator=g).requires_grad_()
            gy = torch.randn(shape, generator=g)
            for y in (drop_path(x.detach(), 0.2, True), reference(x.detach(), 0.2)):
                r = (y / x.detach()).flatten(1)
                # each example: all 0 (dropped) or all 1/(1-p) (kept and scaled)
                assert bool(((r == 0).all(1) | (r - 1 / 0.8).abs().lt(1e-5).all(1)).all())
            return (
                _fwd_bwd(lambda t: drop_path(t, 0.2, True), x, gy),
                _fwd_bwd(lambda t: reference(t, 0.2), x, gy),
            )

        return run

    size = "x".join(map(str, shape))
    return [
        Case(
            "drop_path fwd+bwd (p=0.2)",
            size,
            "inline timm-style x.div(keep).mul(mask) (torch has no built-in)",
            setup(_timm_drop_path),
            "regcourse.depth",
            why_slow=WHY_SLOW["drop_path"],
        ),
        Case(
            "drop_path fwd+bwd (p=0.2)",
            size,
            "inline current-timm x * mask.div_(keep) (torch has no built-in)",
            setup(_timm_drop_path_scaled_mask),
            "regcourse.depth",
            why_slow=WHY_SLOW["drop_path"],
        ),
    ]


def _ref_mixup(x, y, num_classes, alpha, lam=None, index=None):
    """Minimal Mixup (torch has no built-in): one λ ~ Beta(α, α), blend with a permutation."""
    if lam is None:
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
    if index is None:
        index = torch.randperm(len(x))
    y1 = F.one_hot(y, num_classes).to(x.dtype)
    return lam * x + (1 - lam) * x[index], lam * y1 + (1 - lam) * y1[index]


def _ref_cutmix(x, y, num_classes, alpha, box=None, index=None):
    """Minimal CutMix (torch has no built-in): paste a box from the partner, mix labels by area."""
    n, _, h, w = x.shape
    if box is None:
        cut = (1 - float(torch.distributions.Beta(alpha, alpha).sample())) ** 0.5
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        top, bottom = max(cy - ch // 2, 0), min(cy - ch // 2 + ch, h)
        left, right = max(cx - cw // 2, 0), min(cx - cw // 2 + cw, w)
        box = (min(top, bottom), min(left, right), bottom, right)
    if index is None:
        index = torch.randperm(n)
    top, left, bottom, right = box
    out = x.clone()
    out[:, :, top:bottom, left:right] = x[index, :, top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (h * w)
    y1 = F.one_hot(y, num_classes).to(x.dtype)
    return out, lam * y1 + (1 - lam) * y1[index]


def _augment_cases(quick: bool) -> list[Case]:
    shape = (8, 3, 16, 16) if quick else (256, 3, 64, 64)
    classes = 10
    size = "x".join(map(str, shape)) + f", {classes} classes"
    ref = "minimal inline torch reference (torch has no built-in)"

    def inputs():
        g = torch.Generator().manual_seed(0)
        return torch.rand(shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)

    def mixup_setup(scans=True):
        from regcourse.augment import mixup

        x, y = inputs()
        xa, ya, params = mixup(x, y, classes, 0.2, torch.Generator().manual_seed(1), True)
        xb, yb = _ref_mixup(x, y, classes, 0.2, params["lam"], params["index"])
        torch.testing.assert_close((xa, ya), (xb, yb))
        g = torch.Generator().manual_seed(2)
        ours = lambda: mixup(x, y, classes, 0.2, g)  # noqa: E731
        return (ours if scans else _without_value_scans(ours)), (
            lambda: _ref_mixup(x, y, classes, 0.2)
        )

    def cutmix_setup(scans=True):
        from regcourse.augment import cutmix

        x, y = inputs()
        xa, ya, params = cutmix(x, y, classes, 1.0, torch.Generator().manual_seed(1), True)
        xb, yb = _ref_cutmix(x, y, classes, 1.0, params["box"], params["index"])
        torch.testing.assert_close((xa, ya), (xb, yb))
        g = torch.Generator().manual_seed(2)
        ours = lambda: cutmix(x, y, classes, 1.0, g)  # noqa: E731
        return (ours if scans else _without_value_scans(ours)), (
            lambda: _ref_cutmix(x, y, classes, 1.0)
        )

    def scans_name(text, scans):
        return f"{text}, value scans " + ("on (default)" if scans else "off")

    return [
        Case(
            scans_name("Mixup (alpha=0.2), images and labels", scans),
            size,
            ref,
            (lambda scans=scans: mixup_setup(scans)),
            "regcourse.augment",
            why_slow=WHY_SLOW["augment"],
        )
        for scans in (True, False)
    ] + [
        Case(
            scans_name("CutMix (alpha=1.0), images and labels", scans),
            size,
            ref,
            (lambda scans=scans: cutmix_setup(scans)),
            "regcourse.augment",
            why_slow=WHY_SLOW["augment"],
        )
        for scans in (True, False)
    ]


def _optim_cases(quick: bool) -> list[Case]:
    shape = (32, 32) if quick else (1024, 1024)
    size = "x".join(map(str, shape)) + " parameter"
    lr, lam = 0.1, 1e-2

    def sgd_setup(fused: bool):
        def setup():
            from regcourse.penalties import sgd_step

            g = torch.Generator().manual_seed(0)
            w0, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            p = nn.Parameter(w0.clone())
            p.grad = grad.clone()
            opt = torch.optim.SGD(
                [p], lr=lr, weight_decay=lam, **({"fused": True} if fused else {})
            )
            want = sgd_step(w0, grad, lr, lam, "l2").weight
            opt.step()
            torch.testing.assert_close(p.detach(), want)
            return (lambda: sgd_step(w0, grad, lr, lam, "l2")), opt.step

        return setup

    def adamw_setup(fused: bool):
        def setup():
            from regcourse.penalties import adam_init, adamw_step

            g = torch.Generator().manual_seed(0)
            w0, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            p = nn.Parameter(w0.clone())
            p.grad = grad.clone()
            opt = torch.optim.AdamW(
                [p], lr=1e-3, weight_decay=lam, **({"fused": True} if fused else {})
            )
            state = adam_init(w0)
            want = adamw_step(w0, grad, state, 1e-3, lam).weight
            opt.step()
            torch.testing.assert_close(p.detach(), want)
            # a later step (t = 1 -> 2): the same work every step after the first
            state = adamw_step(w0, grad, state, 1e-3, lam).state
            return (lambda: adamw_step(w0, grad, state, 1e-3, lam)), opt.step

        return setup

    def cfg():
        # what torch picks when neither foreach nor fused is given (here: CPU tensors)
        try:
            from torch.optim.optimizer import _default_to_fused_or_foreach

            p = nn.Parameter(torch.zeros(2))
            fused, foreach = _default_to_fused_or_foreach(
                [p], differentiable=False, use_fused=False
            )
        except (ImportError, TypeError):  # a private helper: name or signature may change
            return "torch's default implementation"
        return "foreach" if foreach else ("fused" if fused else "single-tensor for-loop")

    def sgd_inplace_setup(scans: bool):
        def setup():
            from regcourse.penalties import sgd_step_

            g = torch.Generator().manual_seed(0)
            w0, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            w, p = w0.clone(), nn.Parameter(w0.clone())
            p.grad = grad.clone()
            opt = torch.optim.SGD([p], lr=lr, weight_decay=lam)
            sgd_step_(w, grad, lr, lam)
            opt.step()
            assert torch.equal(w, p.detach())  # bit for bit
            ours = lambda: sgd_step_(w, grad, lr, lam)  # noqa: E731
            return (ours if scans else _without_value_scans(ours)), opt.step

        return setup

    def adamw_inplace_setup(scans: bool):
        def setup():
            from regcourse.penalties import adam_init, adamw_step_

            g = torch.Generator().manual_seed(0)
            w0, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            w, p = w0.clone(), nn.Parameter(w0.clone())
            p.grad = grad.clone()
            opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=lam)
            state = adamw_step_(w, grad, adam_init(w), 1e-3, lam)
            opt.step()
            assert torch.equal(w, p.detach())  # bit for bit
            box = [state]

            def ours():
                box[0] = adamw_step_(w, grad, box[0], 1e-3, lam)

            return (ours if scans else _without_value_scans(ours)), opt.step

        return setup

    default_impl = cfg()
    inplace = [
        Case(
            "SGD step in place (sgd_step_), L2 weight decay, value scans "
            + ("on (default)" if scans else "off"),
            size,
            f"torch.optim.SGD(weight_decay=) default ({default_impl})",
            sgd_inplace_setup(scans),
            "regcourse.penalties",
            why_slow=WHY_SLOW["sgd_inplace"],
        )
        for scans in (True, False)
    ] + [
        Case(
            "AdamW step in place (adamw_step_), value scans "
            + ("on (default)" if scans else "off"),
            size,
            f"torch.optim.AdamW default ({default_impl})",
            adamw_inplace_setup(scans),
            "regcourse.penalties",
            why_slow=WHY_SLOW["adamw_inplace"],
        )
        for scans in (True, False)
    ]
    return inplace + [
        Case(
            "SGD step, functional (sgd_step), L2 weight decay",
            size,
            f"torch.optim.SGD(weight_decay=) default ({default_impl})",
            sgd_setup(False),
            "regcourse.penalties",
            why_slow=WHY_SLOW["sgd"],
        ),
        Case(
            "SGD step, functional (sgd_step), L2 weight decay",
            size,
            "torch.optim.SGD(weight_decay=, fused=True)",
            sgd_setup(True),
            "regcourse.penalties",
            why_slow=WHY_SLOW["sgd"],
        ),
        Case(
            "AdamW step, functional (adamw_step)",
            size,
            f"torch.optim.AdamW default ({default_impl})",
            adamw_setup(False),
            "regcourse.penalties",
            why_slow=WHY_SLOW["adamw"],
        ),
        Case(
            "AdamW step, functional (adamw_step)",
            size,
            "torch.optim.AdamW(fused=True)",
            adamw_setup(True),
            "regcourse.penalties",
            why_slow=WHY_SLOW["adamw"],
        ),
    ]


def all_cases(quick: bool = False) -> list[Case]:
    return [
        case_dropout(quick),
        case_smoothing(quick),
        case_smoothing(quick, scans=False),
        case_batchnorm(quick),
        case_batchnorm2d(quick),
        *_drop_path_cases(quick),
        *_augment_cases(quick),
        *_optim_cases(quick),
    ]


def run_ops(threads: Sequence[int], repeats: int, quick: bool = False, log=print) -> list[Row]:
    rows: list[Row] = []
    saved = torch.get_num_threads()
    try:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            for case in all_cases(quick):
                row = Row(
                    "ops", case.name, case.size, case.reference, threads=n_threads, note=case.note
                )
                try:
                    _require(case.module)
                except ImportError as exc:
                    row.status = "not available"
                    row.note = f"{case.module} not available ({exc})"
                    rows.append(row)
                    log(f"[ops] {case.name}: not available")
                    continue
                try:
                    ours, theirs = case.setup()
                except ImportError as exc:
                    row.status = "not available"
                    row.note = f"{case.module}: {exc}"
                    rows.append(row)
                    log(f"[ops] {case.name}: not available ({exc})")
                    continue
                t = time_pair(
                    ours, theirs, repeats=repeats, min_time=0.0 if quick else 0.2, collect=not quick
                )
                row.ours_ms = median(t["ours"]) * 1e3
                row.torch_ms = median(t["torch"]) * 1e3
                row.ratio = ratio(row.ours_ms, row.torch_ms)
                cpu_torch = median(t["torch_cpu"])
                if cpu_torch > 0:
                    row.cpu_ratio = ratio(median(t["ours_cpu"]), cpu_torch)
                paired = [ratio(a, b) for a, b in zip(t["ours"], t["torch"])]
                row.detail = {
                    "calls_per_repeat": t["number"],
                    "repeats": repeats,
                    "ours_ms_each": [round(v * 1e3, 4) for v in t["ours"]],
                    "torch_ms_each": [round(v * 1e3, 4) for v in t["torch"]],
                    "ours_cpu_ms_each": [round(v * 1e3, 4) for v in t["ours_cpu"]],
                    "torch_cpu_ms_each": [round(v * 1e3, 4) for v in t["torch_cpu"]],
                    "paired_ratio_quartiles": [round(q, 3) for q in quartiles(paired)],
                }
                if row.ratio > SLOW_RATIO:
                    why = case.why_slow or "no profile recorded for this case"
                    row.note = f"{row.note}; {why}" if row.note else why
                rows.append(row)
                log(
                    f"[ops] {n_threads}t {case.name} / {case.reference}: "
                    f"ours {row.ours_ms:.3f} ms, "
                    f"torch {row.torch_ms:.3f} ms, ratio {row.ratio:.2f} (CPU time: "
                    f"{'-' if row.cpu_ratio is None else f'{row.cpu_ratio:.2f}'})"
                )
                del ours, theirs
                if not quick:
                    gc.collect()
    finally:
        torch.set_num_threads(saved)
    return rows


# --- notebooks and the book ----------------------------------------------------------
FLOOR_SOURCE = 'import torch\nimport regcourse\nregcourse.setup("{version}")'


def _write_floor_notebook(path: Path) -> None:
    import nbformat

    import regcourse

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(FLOOR_SOURCE.format(version=regcourse.__version__)))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("REGCOURSE_NUM_THREADS", "1")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(cmd: Sequence[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; return the process, its wall-clock seconds and the CPU seconds it and
    its (waited-for) descendants used, e.g. the Jupyter kernels it started."""
    c0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, cwd=cwd, env=_env())
    return proc, time.perf_counter() - t0, _children_cpu() - c0


def execute_notebook(path: Path, out_dir: Path) -> tuple[float, float]:
    """Execute ``path`` with nbconvert into ``out_dir`` (never in place).

    Returns (wall-clock seconds, CPU seconds of nbconvert and its kernel)."""
    cmd = [
        _bin("jupyter"),
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=900",
        "--output-dir",
        str(out_dir),
        str(path),
    ]
    proc, wall, cpu = timed_run(cmd, path.parent)
    proc.check_returncode()
    return wall, cpu


def run_notebooks(repeats: int, log=print, notebooks: Sequence[Path] | None = None) -> list[Row]:
    rows: list[Row] = []
    if notebooks is None:
        notebooks = sorted((REPO / "book").glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="regcourse-bench-nb-") as tmp:
        tmp = Path(tmp)
        floor_nb = tmp / "floor.ipynb"
        _write_floor_notebook(floor_nb)
        floor = [execute_notebook(floor_nb, tmp / "out") for _ in range(max(repeats, 2))]
        floor_s, floor_cpu = median([w for w, _ in floor]), median([c for _, c in floor])
        rows.append(
            Row(
                "notebooks",
                "floor: import torch, regcourse; regcourse.setup()",
                "1 cell",
                "-",
                ours_ms=floor_s * 1e3,
                status="ok",
                note=f"kernel start + imports + setup (CPU {floor_cpu:.1f} s)",
                detail={
                    "seconds_each": [round(w, 2) for w, _ in floor],
                    "cpu_seconds_each": [round(c, 2) for _, c in floor],
                },
            )
        )
        log(f"[notebooks] floor {floor_s:.1f} s (CPU {floor_cpu:.1f} s)")
        for nb in notebooks:
            try:
                times = [execute_notebook(nb, tmp / "out") for _ in range(repeats)]
            except subprocess.CalledProcessError as exc:
                tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
                rows.append(
                    Row(
                        "notebooks",
                        f"book/{nb.name}",
                        "chapter",
                        "-",
                        status="failed",
                        note=f"execution failed: {' '.join(tail)}",
                    )
                )
                log(f"[notebooks] {nb.name}: FAILED")
                continue
            s, cpu = median([w for w, _ in times]), median([c for _, c in times])
            rows.append(
                Row(
                    "notebooks",
                    f"book/{nb.name}",
                    "chapter",
                    "-",
                    ours_ms=s * 1e3,
                    ratio=s / floor_s,
                    cpu_ratio=cpu / floor_cpu if floor_cpu > 0 else None,
                    note=f"CPU {cpu:.1f} s; {s - floor_s:.1f} s of wall time above the floor",
                    detail={
                        "seconds_each": [round(w, 2) for w, _ in times],
                        "cpu_seconds_each": [round(c, 2) for _, c in times],
                    },
                )
            )
            log(f"[notebooks] {nb.name}: {s:.1f} s, CPU {cpu:.1f} s ({s / floor_s:.1f}x floor)")
    return rows


def run_book(log=print) -> list[Row]:
    rows: list[Row] = []
    out = Path(tempfile.mkdtemp(prefix="regcourse-bench-book-"))
    cmd = [_bin("jupyter-book"), "build", str(REPO), "--path-output", str(out)]
    try:
        times, cpus = {}, {}
        for label in ("cold", "cached"):
            proc, times[label], cpus[label] = timed_run(cmd, REPO)
            ok = proc.returncode == 0 and (out / "_build" / "html" / "index.html").exists()
            note = (
                "execute_notebooks: cache, fresh --path-output: executes every chapter"
                if label == "cold"
                else "unchanged sources: the jupyter-cache is reused"
            )
            note += f"; CPU {cpus[label]:.1f} s"
            row = Row(
                "book",
                f"jupyter-book build ({label})",
                "whole book",
                "-",
                ours_ms=times[label] * 1e3,
                status="ok" if ok else "failed",
                note=note,
            )
            if not ok:
                tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
                row.note += "; build failed: " + " | ".join(tail)
            if label == "cached" and times["cold"] > 0:
                row.ratio = times["cached"] / times["cold"]
                row.cpu_ratio = cpus["cached"] / cpus["cold"] if cpus["cold"] > 0 else None
                row.note += f" ({times['cold'] / times['cached']:.1f}x faster than cold)"
            rows.append(row)
            log(f"[book] {label}: {times[label]:.1f} s{'' if ok else ' FAILED'}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return rows


def _classroom():
    """bench/classroom.py, the coursework part, loaded by path (as the tests load this file)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_classroom", Path(__file__).with_name("classroom.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- output -------------------------------------------------------------------------------
def _fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 10:
        return f"{v:.3f} ms"
    return f"{v:.1f} ms" if v < 1000 else f"{v / 1e3:.1f} s"


def _short_build(lines: Sequence[str]) -> list[str]:
    """The build summary without the long compiler-flag line (kept in full in the JSON)."""
    out = []
    for line in lines:
        if line.startswith("Build settings"):
            keys = ("BLAS_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "BUILD_TYPE")
            flags = [f.strip() for f in line.split(":", 1)[1].split(",")]
            out.append(", ".join(f for f in flags if f.split("=")[0] in keys))
        else:
            out.append(line)
    return out


def _load_note(info: dict) -> str:
    """A warning when the machine was busier than it has cores (from the load averages)."""
    cores = info.get("cores") or 1
    loads = [
        v[0] for v in (info.get("load_average_at_start"), info.get("load_average_at_end")) if v
    ]
    if not loads or max(loads) <= cores:
        return ""
    return (
        f"The 1-minute load average reached {max(loads):.1f} on {cores} cores: every "
        "process waited for a core much of the time, so absolute times are inflated. "
        "With 2 threads it is worse: OpenMP's threads wait for each other whenever one of "
        "them is descheduled, so the 2-thread rows are not a measure of the code. The most "
        "trustworthy column is the CPU ratio of the 1-thread rows."
    )


def _threads_note(rows: Sequence[Row]) -> str:
    """A warning when torch itself got slower with more threads (a busy machine)."""
    one = {
        (r.name, r.reference): r.torch_ms
        for r in rows
        if r.part == "ops" and r.threads == 1 and r.torch_ms
    }
    slowdowns = {}
    for r in rows:
        key = (r.name, r.reference)
        if r.part == "ops" and r.threads and r.threads > 1 and r.torch_ms and key in one:
            slowdowns.setdefault(r.threads, []).append(r.torch_ms / one[key])
    notes = []
    for n, values in sorted(slowdowns.items()):
        m = median(values)
        if m > 1:
            notes.append(
                f"With {n} threads torch's own reference ran {m:.1f}x *slower* (median over the "
                f"operations) than with 1 thread in this run: the other cores were busy, so the "
                f"{n}-thread rows mostly measure waiting for the OS to schedule OpenMP's threads, "
                "not the code. Read the 1-thread rows."
            )
    return " ".join(notes)


def write_results(
    rows: Sequence[Row], info: dict, out_dir: Path, settings: dict
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": info,
        "settings": settings,
        "note": SHARED_NOTE,
        "rows": [asdict(r) for r in rows],
    }
    jpath = out_dir / "results.json"
    jpath.write_text(json.dumps(payload, indent=2) + "\n")
    return jpath, write_markdown(rows, info, out_dir, settings)


def write_markdown(rows: Sequence[Row], info: dict, out_dir: Path, settings: dict) -> Path:
    """Write ``results.md`` (the tables) into ``out_dir``; return its path."""
    lines = [
        "# Benchmarks: regcourse against torch",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand.",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores (1/5/15-minute load averages "
        f"at start: {info.get('load_average_at_start')}, at end: "
        f"{info.get('load_average_at_end', 'not recorded')})",
        f"- torch {info['torch']} ({info['torch_parallel_backend']}): "
        + "; ".join(_short_build(info["torch_build"])),
        f"- Python {info['python']} on {info['platform']}",
        f"- date: {info['date']}",
        f"- settings: {settings}",
        "",
        f"{SHARED_NOTE}",
        "",
    ]
    for note in (_load_note(info), _threads_note(rows)):
        if note:
            lines += [note, ""]
    ops = [r for r in rows if r.part == "ops"]
    if ops:
        lines += [
            "## Operations",
            "",
            "ratio = ours / torch, median wall-clock time per call over interleaved "
            "repeats, warm-up excluded; above 1 means ours is slower. CPU ratio: the same "
            "from process CPU time, which does not count waiting for a core (steadier "
            "on a loaded machine with 1 thread; with 2 threads it also counts OpenMP "
            "spinning).",
            "",
            "| operation | size | threads | ours | torch | ratio | CPU ratio "
            "| reference and note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        legend: list[str] = []
        for r in ops:
            rat = "-" if r.ratio is None else f"{r.ratio:.2f}"
            crat = "-" if r.cpu_ratio is None else f"{r.cpu_ratio:.2f}"
            note = r.reference
            if r.note:
                if r.note not in legend:
                    legend.append(r.note)
                note += f"; slower: see ({legend.index(r.note) + 1})"
            if r.status != "ok":
                note = f"**{r.status}**: {r.reference}; {r.note}"
            lines.append(
                f"| {r.name} | {r.size} | {r.threads} | {_fmt_ms(r.ours_ms)} | "
                f"{_fmt_ms(r.torch_ms)} | {rat} | {crat} | {note} |"
            )
        lines.append("")
        if legend:
            lines += [
                "Why some rows are slower than torch by more than "
                f"{round((SLOW_RATIO - 1) * 100)} %:",
                "",
            ]
            lines += [f"{i}. {text}" for i, text in enumerate(legend, 1)]
            lines.append("")
    other = [r for r in rows if r.part in ("notebooks", "book")]
    if other:
        lines += [
            "## Notebooks and the book",
            "",
            "Wall-clock time of a subprocess (REGCOURSE_NUM_THREADS=1) and the CPU time it "
            "and its kernels used; ratio: chapter / floor, cached / cold build.",
            "",
            "| what | time | ratio | CPU ratio | note |",
            "|---|---|---|---|---|",
        ]
        for r in other:
            rat = "-" if r.ratio is None else f"{r.ratio:.2f}"
            crat = "-" if r.cpu_ratio is None else f"{r.cpu_ratio:.2f}"
            note = r.note if r.status == "ok" else f"**{r.status}**: {r.note}"
            lines.append(f"| {r.name} | {_fmt_ms(r.ours_ms)} | {rat} | {crat} | {note} |")
        lines.append("")
    if any(r.part == "classroom" for r in rows):
        lines += _classroom().markdown([r for r in rows if r.part == "classroom"])
    mpath = out_dir / "results.md"
    mpath.write_text("\n".join(lines))
    return mpath


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, from {PARTS} (default: all)",
    )
    ap.add_argument("--threads", default="1,2", help="torch thread counts for ops (default: 1,2)")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per op (default: 7)")
    ap.add_argument(
        "--nb-repeats",
        type=int,
        default=1,
        help="executions per chapter (default: 1; the floor always runs >= 2)",
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes (tests of the harness)")
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: rewrite results.md from the results.json in --out-dir",
    )
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        ap.error(f"--only must name parts from {PARTS}, got {args.only!r}")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    if any(t < 1 for t in threads):
        ap.error(f"--threads must be >= 1, got {args.threads!r}")
    if args.repeats < 1 or args.nb_repeats < 1:
        ap.error("--repeats and --nb-repeats must be >= 1")
    args.parts, args.thread_list = parts, threads
    return args


def render_only(out_dir: Path) -> Path:
    """Rewrite ``results.md`` from an existing ``results.json`` (after a change of layout)."""
    data = json.loads((out_dir / "results.json").read_text())
    rows = [Row(**r) for r in data["rows"]]
    return write_markdown(rows, data["machine"], out_dir, data["settings"])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render_only:
        print(f"wrote {render_only(args.out_dir)}")
        return 0
    info = machine_info()
    rows: list[Row] = []
    if "ops" in args.parts:
        rows += run_ops(args.thread_list, args.repeats, quick=args.quick)
    if "notebooks" in args.parts:
        rows += run_notebooks(args.nb_repeats)
    if "book" in args.parts:
        rows += run_book()
    if "classroom" in args.parts:  # grading a class with coursework/ (bench/classroom.py)
        rows += _classroom().run_classroom(Row, quick=args.quick)
    try:
        info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    settings = {
        "parts": args.parts,
        "threads": args.thread_list,
        "repeats": args.repeats,
        "nb_repeats": args.nb_repeats,
        "quick": args.quick,
    }
    jpath, mpath = write_results(rows, info, args.out_dir, settings)
    print(f"wrote {jpath} and {mpath}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
