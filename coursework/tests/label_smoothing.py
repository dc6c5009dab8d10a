"""Hidden tests for the chapter "Label smoothing" (book/label_smoothing.ipynb)."""

import math

import torch
import torch.nn.functional as F

from coursework.spec import Chapter, as_float, assert_number_close, assert_tensor_close
from regcourse.smoothing import cross_entropy_from_probs, optimal_logit_gap, smooth_targets, smoothed_cross_entropy

CHAPTER = Chapter("label_smoothing", "Label smoothing")
DT = torch.float64


def _as_tensor(value, what, size):
    values = value.tolist() if isinstance(value, torch.Tensor) else value
    assert isinstance(values, (list, tuple)) and len(values) == size, f"{what} should hold {size} numbers, got {value!r}"
    return torch.tensor([as_float(v, f"an entry of {what}") for v in values], dtype=DT)


# --- ls-ex1: targets and losses by hand ----------------------------------------------------
ex1 = CHAPTER.exercise("ls-ex1", "Smoothed targets and loss by hand")
Q1, C1, K1, EPS1 = torch.tensor([0.1, 0.2, 0.6, 0.1], dtype=DT), torch.tensor(2), 4, 0.2


@ex1.test(points=1)
def smoothed_and_others_targets(student):
    for name, variant in (("by_hand_target", "uniform"), ("by_hand_others", "others")):
        expected = smooth_targets(C1, K1, eps=EPS1, variant=variant, dtype=DT)
        # torch.allclose's default tolerances, as the chapter's own check uses
        assert_tensor_close(_as_tensor(student.value(name), name, 4), expected, rtol=1e-5, atol=1e-8, what=name)


@ex1.test(points=1)
def hard_and_smoothed_losses(student):
    hard = cross_entropy_from_probs(Q1, smooth_targets(C1, K1, eps=0.0, dtype=DT)).item()
    smoothed = cross_entropy_from_probs(Q1, smooth_targets(C1, K1, eps=EPS1, dtype=DT)).item()
    assert_number_close(student.value("by_hand_hard"), hard, tol=1e-9, rel=True, what="by_hand_hard")
    assert_number_close(student.value("by_hand_smoothed"), smoothed, tol=1e-9, rel=True, what="by_hand_smoothed")


# --- ls-ex2: the smoothed cross-entropy ----------------------------------------------------
ex2 = CHAPTER.exercise("ls-ex2", "Implement the smoothed cross-entropy", functions=["ex_smoothed_cross_entropy"],
                       forbid=["smoothed_cross_entropy", "cross_entropy", "LabelSmoothingLoss", "CrossEntropyLoss",
                               "smooth_targets"])


def _check_ce(student, logits, target, eps):
    expected = smoothed_cross_entropy(logits, target, eps=eps)
    torch_value = F.cross_entropy(logits, target, label_smoothing=eps)
    tol = 1e-10 if logits.dtype == DT else 1e-5
    what = (f"ex_smoothed_cross_entropy on logits of shape {tuple(logits.shape)} ({logits.dtype}, "
            f"largest |z| {logits.abs().max().item():.3g}) with eps = {eps}")
    got = student.call("ex_smoothed_cross_entropy", logits, target, eps)
    assert_tensor_close(got, expected, rtol=tol, atol=0.0, what=what)
    assert_tensor_close(got, torch_value, rtol=tol, atol=0.0, what=what + " (against F.cross_entropy)")


@ex2.test(points=1)
def small_batches(student):
    """Batches of 8 with K = 3, 10, 100 classes and moderate logits."""
    gen = torch.Generator().manual_seed(31)
    for k, eps, scale in [(3, 0.1, 1.0), (10, 0.2, 5.0), (100, 0.05, 3.0)]:
        _check_ce(student, scale * torch.randn(8, k, generator=gen, dtype=DT), torch.randint(0, k, (8,), generator=gen), eps)


@ex2.test(points=2)
def edge_cases(student):
    """eps = 0 and eps = 1, two classes, a single example, float32, and logits of size 1e4."""
    gen = torch.Generator().manual_seed(32)
    for n, k, eps, scale, dtype in [(5, 4, 0.0, 1.0, DT), (5, 4, 1.0, 2.0, DT), (6, 2, 0.3, 1.0, DT),
                                    (1, 7, 0.1, 1.0, DT), (16, 5, 0.1, 1.0, torch.float32), (4, 6, 0.15, 1e4, DT)]:
        logits = scale * torch.randn(n, k, generator=gen, dtype=dtype)
        _check_ce(student, logits, torch.randint(0, k, (n,), generator=gen), eps)


# --- ls-ex3: the optimal logit gap -------------------------------------------------------------
ex3 = CHAPTER.exercise("ls-ex3", "How the optimal logit gap depends on the smoothing and the number of classes",
                       manual="part 1: the predictions (eps grows, K grows, eps = 1)")


@ex3.test(points=1)
def gradient_descent_reaches_the_optimal_gap(student):
    assert_number_close(student.value("measured_gap"), optimal_logit_gap(0.05, 10), tol=1e-4, what="measured_gap")


# --- ls-ex4: when smoothing lowers the loss -------------------------------------------------------
ex4 = CHAPTER.exercise("ls-ex4", "When does smoothing lower the loss?", manual="the derivation from the decomposition")


@ex4.test(points=1)
def q4_has_smoothed_loss_below_hard_loss(student):
    q = _as_tensor(student.value("q4"), "q4", 3)
    assert bool((q >= 0).all()) and abs(q.sum().item() - 1) < 1e-6, f"q4 = {q.tolist()} is not a probability vector"
    c = torch.tensor(1)
    hard = cross_entropy_from_probs(q, smooth_targets(c, 3, eps=0.0, dtype=DT)).item()
    soft = cross_entropy_from_probs(q, smooth_targets(c, 3, eps=0.1, dtype=DT)).item()
    assert math.isfinite(soft) and soft < hard, f"for q4 = {q.tolist()} the smoothed loss {soft:.4f} is not below the hard loss {hard:.4f}"
