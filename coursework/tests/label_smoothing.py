"""Hidden tests for the chapter "Label smoothing" (book/label_smoothing.ipynb)."""

import math

import torch
import torch.nn.functional as F

from coursework.spec import Chapter, as_float, assert_number_close, assert_tensor_close
from regcourse.smoothing import (
    cross_entropy_from_probs,
    optimal_logit_gap,
    smooth_targets,
    smoothed_cross_entropy,
)

CHAPTER = Chapter("label_smoothing", "Label smoothing")
DT = torch.float64


def _as_tensor(value, what, size):
    values = value.tolist() if isinstance(value, torch.Tensor) else value
    assert isinstance(values, (list, tuple)) and len(values) == size, (
        f"{what} should hold {size} numbers, got {value!r}"
    )
    return torch.tensor([as_float(v, f"an entry of {what}") for v in values], dtype=DT)


# --- ls-ex1: targets and losses by hand (per-student numbers) -------------------------------
ex1 = CHAPTER.exercise("ls-ex1", "Smoothed targets and loss by hand")


def _draw_ex1(rng):
    """K in 3..5, any true class, eps from a short list, q of K positive tenths summing to 1."""
    k = rng.choice([3, 4, 5])
    while True:
        cuts = sorted(rng.sample(range(1, 10), k - 1))
        tenths = [b - a for a, b in zip([0] + cuts, cuts + [10])]
        if len(set(tenths)) > 1:  # not uniform: then hard and smoothed losses would coincide
            break
    return {
        "K_ex": k,
        "c_ex": rng.randrange(k),
        "eps_ex": rng.choice([0.1, 0.2, 0.3, 0.4]),
        "q_ex": [t / 10 for t in tenths],
    }


ex1.variants(
    _draw_ex1, published={"K_ex": 4, "c_ex": 2, "eps_ex": 0.2, "q_ex": [0.1, 0.2, 0.6, 0.1]}
)


def _ex1_numbers(student):
    v = student.variant
    q, c, k, eps = (
        torch.tensor(v["q_ex"], dtype=DT),
        torch.tensor(v["c_ex"]),
        v["K_ex"],
        v["eps_ex"],
    )
    return q, c, k, eps, f"(K = {k}, c = {v['c_ex']}, eps = {eps:g}, q = {v['q_ex']})"


@ex1.test(points=1)
def smoothed_and_others_targets(student):
    _, c, k, eps, numbers = _ex1_numbers(student)
    for name, variant in (("by_hand_target", "uniform"), ("by_hand_others", "others")):
        expected = smooth_targets(c, k, eps=eps, variant=variant, dtype=DT)
        # torch.allclose's default tolerances, as the chapter's own check uses
        assert_tensor_close(
            _as_tensor(student.value(name), f"{name} {numbers}", k),
            expected,
            rtol=1e-5,
            atol=1e-8,
            what=f"{name} {numbers}",
        )


@ex1.test(points=1)
def hard_and_smoothed_losses(student):
    q, c, k, eps, numbers = _ex1_numbers(student)
    hard = cross_entropy_from_probs(q, smooth_targets(c, k, eps=0.0, dtype=DT)).item()
    smoothed = cross_entropy_from_probs(q, smooth_targets(c, k, eps=eps, dtype=DT)).item()
    assert_number_close(
        student.value("by_hand_hard"), hard, tol=1e-9, rel=True, what=f"by_hand_hard {numbers}"
    )
    assert_number_close(
        student.value("by_hand_smoothed"),
        smoothed,
        tol=1e-9,
        rel=True,
        what=f"by_hand_smoothed {numbers}",
    )


# --- ls-ex2: the smoothed cross-entropy ----------------------------------------------------
ex2 = CHAPTER.exercise(
    "ls-ex2",
    "Implement the smoothed cross-entropy",
    functions=["ex_smoothed_cross_entropy"],
    forbid=[
        "smoothed_cross_entropy",
        "cross_entropy",
        "LabelSmoothingLoss",
        "CrossEntropyLoss",
        "smooth_targets",
    ],
)


def _check_ce(student, logits, target, eps):
    expected = smoothed_cross_entropy(logits, target, eps=eps)
    torch_value = F.cross_entropy(logits, target, label_smoothing=eps)
    tol = 1e-10 if logits.dtype == DT else 1e-5
    what = (
        f"ex_smoothed_cross_entropy on logits of shape {tuple(logits.shape)} ({logits.dtype}, "
        f"largest |z| {logits.abs().max().item():.3g}) with eps = {eps}"
    )
    got = student.call("ex_smoothed_cross_entropy", logits, target, eps)
    assert_tensor_close(got, expected, rtol=tol, atol=0.0, what=what)
    assert_tensor_close(
        got, torch_value, rtol=tol, atol=0.0, what=what + " (against F.cross_entropy)"
    )


@ex2.test(points=1)
def small_batches(student):
    """Batches of 8 with K = 3, 10, 100 classes and moderate logits."""
    gen = torch.Generator().manual_seed(31)
    for k, eps, scale in [(3, 0.1, 1.0), (10, 0.2, 5.0), (100, 0.05, 3.0)]:
        _check_ce(
            student,
            scale * torch.randn(8, k, generator=gen, dtype=DT),
            torch.randint(0, k, (8,), generator=gen),
            eps,
        )


@ex2.test(points=2)
def edge_cases(student):
    """eps = 0 and eps = 1, two classes, a single example, float32, and logits of size 1e4."""
    gen = torch.Generator().manual_seed(32)
    for n, k, eps, scale, dtype in [
        (5, 4, 0.0, 1.0, DT),
        (5, 4, 1.0, 2.0, DT),
        (6, 2, 0.3, 1.0, DT),
        (1, 7, 0.1, 1.0, DT),
        (16, 5, 0.1, 1.0, torch.float32),
        (4, 6, 0.15, 1e4, DT),
    ]:
        logits = scale * torch.randn(n, k, generator=gen, dtype=dtype)
        _check_ce(student, logits, torch.randint(0, k, (n,), generator=gen), eps)


# --- ls-ex3: the optimal logit gap -------------------------------------------------------------
ex3 = CHAPTER.exercise(
    "ls-ex3",
    "How the optimal logit gap depends on the smoothing and the number of classes",
    manual="part 1: the predictions (eps grows, K grows, eps = 1)",
)


@ex3.test(points=1)
def gradient_descent_reaches_the_optimal_gap(student):
    assert_number_close(
        student.value("measured_gap"), optimal_logit_gap(0.05, 10), tol=1e-4, what="measured_gap"
    )


# --- ls-ex4: when smoothing lowers the loss -------------------------------------------------------
ex4 = CHAPTER.exercise(
    "ls-ex4", "When does smoothing lower the loss?", manual="the derivation from the decomposition"
)


@ex4.test(points=1)
def q4_has_smoothed_loss_below_hard_loss(student):
    q = _as_tensor(student.value("q4"), "q4", 3)
    assert bool((q >= 0).all()) and abs(q.sum().item() - 1) < 1e-6, (
        f"q4 = {q.tolist()} is not a probability vector"
    )
    c = torch.tensor(1)
    hard = cross_entropy_from_probs(q, smooth_targets(c, 3, eps=0.0, dtype=DT)).item()
    soft = cross_entropy_from_probs(q, smooth_targets(c, 3, eps=0.1, dtype=DT)).item()
    assert math.isfinite(soft) and soft < hard, (
        f"for q4 = {q.tolist()} the smoothed loss {soft:.4f} is not below the hard loss {hard:.4f}"
    )


# --- ls-ex5: the expected calibration error --------------------------------------------------
ex5 = CHAPTER.exercise(
    "ls-ex5",
    "The expected calibration error",
    functions=["ex_expected_calibration_error"],
    forbid=["expected_calibration_error", "reliability_diagram", "ReliabilityDiagram"],
)


def _check_ece(student, logits, labels, num_bins):
    from regcourse.calibration import reliability_diagram

    expected = reliability_diagram(logits, labels, num_bins).ece
    what = (
        f"ex_expected_calibration_error on {tuple(logits.shape)} {logits.dtype} logits "
        f"with {num_bins} bins"
    )
    assert_number_close(
        student.call("ex_expected_calibration_error", logits, labels, num_bins),
        expected,
        tol=1e-9,
        what=what,
    )


@ex5.test(points=1)
def random_logits(student):
    """Logits of several sizes and scales, 1 to 20 bins, float32 and float64."""
    gen = torch.Generator().manual_seed(51)
    for n, k, scale, bins, dtype in [
        (500, 10, 3.0, 15, torch.float32),
        (300, 4, 1.0, 10, DT),
        (1000, 10, 8.0, 20, DT),
        (50, 3, 0.5, 1, DT),
    ]:
        logits = (scale * torch.randn(n, k, generator=gen, dtype=DT)).to(dtype)
        right = torch.rand(n, generator=gen) < 0.5
        labels = torch.where(right, logits.argmax(1), torch.randint(0, k, (n,), generator=gen))
        _check_ece(student, logits, labels, bins)


@ex5.test(points=1)
def confidences_on_bin_edges(student):
    """A confidence exactly on an edge b/M belongs to the bin below it (bins are (a, b])."""
    third = math.log(3)
    logits = torch.tensor(
        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [third, 0.0], [0.0, third]], dtype=DT
    )
    labels = torch.tensor([0, 0, 1, 1, 0])
    for bins in (2, 4, 8):
        _check_ece(student, logits, labels, bins)
    # all confidences 1/K exactly (equal logits), with K bins: the lowest bin
    _check_ece(student, torch.zeros(6, 5, dtype=DT), torch.tensor([0, 1, 2, 0, 0, 4]), 5)


@ex5.test(points=1)
def single_example_and_perfect_predictions(student):
    logits = torch.tensor([[2.0, 0.0, -1.0]], dtype=DT)
    _check_ece(student, logits, torch.tensor([0]), 10)
    _check_ece(student, logits, torch.tensor([2]), 10)
    sure = torch.tensor([[50.0, 0.0], [0.0, 50.0]], dtype=DT)  # confidence 1, both right: ECE 0
    _check_ece(student, sure, torch.tensor([0, 1]), 15)
