"""Tests of regcourse.smoothing: worked example, torch cross-checks, properties, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from regcourse.smoothing import (
    LabelSmoothingLoss,
    cross_entropy_from_probs,
    logit_gap,
    optimal_logit_gap,
    smooth_targets,
    smoothed_cross_entropy,
)

DT = torch.float64


def random_problem(n: int, k: int, seed: int, scale: float = 3.0):
    """Random float64 logits (N, K) and integer targets (N,) from a fixed generator."""
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, k, generator=g, dtype=DT)
    target = torch.randint(0, k, (n,), generator=g)
    return logits, target


# The source's worked example: K = 3, true class 1, eps = 0.1, predictions p.
P = torch.tensor([[0.1, 0.7, 0.2]], dtype=DT)
T1 = torch.tensor([1])


class TestSmoothTargets:
    def test_worked_example_uniform(self):
        # eps/K = 0.1/3 = 1/30; 1 - eps + eps/K = 0.9 + 1/30 = 28/30.
        y = smooth_targets(T1, 3, eps=0.1, dtype=DT)
        torch.testing.assert_close(y, torch.tensor([[1 / 30, 28 / 30, 1 / 30]], dtype=DT))

    def test_worked_example_others(self):
        # The source's [0.05, 0.9, 0.05]: 1 - eps on the true class, eps/(K-1) elsewhere.
        y = smooth_targets(T1, 3, eps=0.1, variant="others", dtype=DT)
        torch.testing.assert_close(y, torch.tensor([[0.05, 0.9, 0.05]], dtype=DT))

    def test_eps_zero_is_one_hot(self):
        t = torch.tensor([2, 0, 1, 1])
        for variant in ("uniform", "others"):
            y = smooth_targets(t, 4, eps=0.0, variant=variant, dtype=DT)
            torch.testing.assert_close(y, F.one_hot(t, 4).to(DT))

    def test_eps_one_uniform_is_uniform_distribution(self):
        y = smooth_targets(torch.tensor([0, 3]), 5, eps=1.0, dtype=DT)
        torch.testing.assert_close(y, torch.full((2, 5), 0.2, dtype=DT))

    def test_rows_sum_to_one(self):
        t = torch.randint(0, 7, (50,), generator=torch.Generator().manual_seed(0))
        for variant in ("uniform", "others"):
            y = smooth_targets(t, 7, eps=0.3, variant=variant, dtype=DT)
            torch.testing.assert_close(y.sum(dim=1), torch.ones(50, dtype=DT))

    def test_scalar_target_gives_vector(self):
        y = smooth_targets(torch.tensor(2), 4, eps=0.2, dtype=DT)
        assert y.shape == (4,)
        torch.testing.assert_close(y, torch.tensor([0.05, 0.05, 0.85, 0.05], dtype=DT))

    def test_default_dtype_and_int32_target(self):
        y = smooth_targets(torch.tensor([0, 1], dtype=torch.int32), 2)
        assert y.dtype == torch.get_default_dtype()
        assert y.shape == (2, 2)

    def test_others_equals_uniform_with_rescaled_eps(self):
        # True class: 1 - e' + e'/K = 1 - e'(K-1)/K; with e' = eps K/(K-1) that is 1 - eps,
        # and the others get e'/K = eps/(K-1).
        t = torch.tensor([0, 4, 2])
        k, eps = 5, 0.3
        a = smooth_targets(t, k, eps=eps, variant="others", dtype=DT)
        b = smooth_targets(t, k, eps=eps * k / (k - 1), dtype=DT)
        torch.testing.assert_close(a, b)


class TestCrossEntropyFromProbs:
    def test_worked_example_hard(self):
        hard = smooth_targets(T1, 3, eps=0.0, dtype=DT)
        assert cross_entropy_from_probs(P, hard).item() == pytest.approx(-math.log(0.7))

    def test_worked_example_smoothed(self):
        y = smooth_targets(T1, 3, eps=0.1, dtype=DT)
        expected = -(math.log(0.1) / 30 + 28 * math.log(0.7) / 30 + math.log(0.2) / 30)
        assert cross_entropy_from_probs(P, y).item() == pytest.approx(expected)
        assert round(expected, 4) == 0.4633  # the value the chapter prints

    def test_equals_smoothed_ce_on_softmax(self):
        logits, target = random_problem(16, 6, seed=1)
        for eps in (0.0, 0.1, 0.5):
            y = smooth_targets(target, 6, eps=eps, dtype=DT)
            a = cross_entropy_from_probs(torch.softmax(logits, dim=1), y)
            b = smoothed_cross_entropy(logits, target, eps=eps)
            torch.testing.assert_close(a, b)

    def test_mean_over_rows(self):
        logits, target = random_problem(5, 4, seed=2)
        probs = torch.softmax(logits, dim=1)
        y = smooth_targets(target, 4, eps=0.2, dtype=DT)
        rows = torch.stack([cross_entropy_from_probs(probs[i], y[i]) for i in range(5)])
        torch.testing.assert_close(cross_entropy_from_probs(probs, y), rows.mean())

    def test_zero_probability_where_target_is_zero_is_finite(self):
        probs = torch.tensor([[0.0, 1.0]], dtype=DT)
        target = torch.tensor([[0.0, 1.0]], dtype=DT)
        assert cross_entropy_from_probs(probs, target).item() == 0.0

    def test_zero_probability_where_target_is_positive_is_inf(self):
        probs = torch.tensor([[0.0, 1.0]], dtype=DT)
        target = torch.tensor([[0.5, 0.5]], dtype=DT)
        assert cross_entropy_from_probs(probs, target).item() == math.inf


class TestSmoothedCrossEntropy:
    @pytest.mark.parametrize("k", [2, 3, 10])
    @pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.4, 1.0])
    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    def test_values_match_torch(self, k, eps, reduction):
        logits, target = random_problem(32, k, seed=k)
        ours = smoothed_cross_entropy(logits, target, eps=eps, reduction=reduction)
        ref = F.cross_entropy(logits, target, label_smoothing=eps, reduction=reduction)
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("k", [2, 3, 10])
    @pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    def test_gradients_match_torch(self, k, eps, reduction):
        logits, target = random_problem(32, k, seed=100 + k)
        weights = torch.rand(32, generator=torch.Generator().manual_seed(7), dtype=DT)
        a = logits.clone().requires_grad_(True)
        b = logits.clone().requires_grad_(True)
        ours = smoothed_cross_entropy(a, target, eps=eps, reduction=reduction)
        ref = F.cross_entropy(b, target, label_smoothing=eps, reduction=reduction)
        # Weight the per-row losses so the "none" case has a non-trivial upstream gradient.
        (ours * weights if reduction == "none" else ours).sum().backward()
        (ref * weights if reduction == "none" else ref).sum().backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)

    def test_gradient_is_softmax_minus_target(self):
        logits, target = random_problem(8, 5, seed=3)
        z = logits.clone().requires_grad_(True)
        smoothed_cross_entropy(z, target, eps=0.2).backward()
        y = smooth_targets(target, 5, eps=0.2, dtype=DT)
        torch.testing.assert_close(z.grad, (torch.softmax(logits, dim=1) - y) / 8)

    def test_single_example_vector_logits(self):
        logits, target = random_problem(1, 4, seed=4)
        ours = smoothed_cross_entropy(logits[0], target[0], eps=0.1)
        ref = F.cross_entropy(logits[0], target[0], label_smoothing=0.1)
        assert ours.shape == ()
        torch.testing.assert_close(ours, ref)

    def test_worked_example_from_log_probs(self):
        # log p as logits: softmax(log p) = p since p sums to 1.
        ours = smoothed_cross_entropy(torch.log(P), T1, eps=0.1)
        expected = -(math.log(0.1) / 30 + 28 * math.log(0.7) / 30 + math.log(0.2) / 30)
        assert ours.item() == pytest.approx(expected)

    def test_stable_for_huge_logits(self):
        logits = torch.tensor([[1e4, -1e4, 0.0], [5e3, 5e3, -5e3]], dtype=DT)
        target = torch.tensor([0, 2])
        ours = smoothed_cross_entropy(logits, target, eps=0.1, reduction="none")
        assert bool(torch.isfinite(ours).all())
        ref = F.cross_entropy(logits, target, label_smoothing=0.1, reduction="none")
        torch.testing.assert_close(ours, ref)

    def test_float32_matches_torch(self):
        logits, target = random_problem(16, 4, seed=5)
        logits = logits.float()
        ours = smoothed_cross_entropy(logits, target, eps=0.1)
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, F.cross_entropy(logits, target, label_smoothing=0.1))

    @pytest.mark.parametrize("k", [2, 3, 10])
    @pytest.mark.parametrize("eps", [0.05, 0.1, 0.4])
    def test_others_variant_differs_from_torch_by_derived_amount(self, k, eps):
        # y_others - y_uniform is -eps/K on the true class and eps/(K(K-1)) on each other
        # class, so per row: CE_others - CE_torch
        #   = (eps/K) * ( mean_{k != y} (-log p_k) - (-log p_y) ).
        logits, target = random_problem(20, k, seed=200 + k)
        nll = -F.log_softmax(logits, dim=1)
        true_term = nll.gather(1, target[:, None])[:, 0]
        others_mean = (nll.sum(dim=1) - true_term) / (k - 1)
        derived = (eps / k) * (others_mean - true_term)
        ours = smoothed_cross_entropy(logits, target, eps=eps, reduction="none", variant="others")
        ref = F.cross_entropy(logits, target, label_smoothing=eps, reduction="none")
        torch.testing.assert_close(ours - ref, derived)

    @pytest.mark.parametrize("k", [3, 10])
    def test_others_variant_is_torch_with_rescaled_eps(self, k):
        logits, target = random_problem(20, k, seed=300 + k)
        eps = 0.2
        ours = smoothed_cross_entropy(logits, target, eps=eps, variant="others")
        ref = F.cross_entropy(logits, target, label_smoothing=eps * k / (k - 1))
        torch.testing.assert_close(ours, ref)


class TestOptimalLogitGap:
    def test_worked_value(self):
        # (1 - 0.1 + 0.1/3) / (0.1/3) = (28/30) / (1/30) = 28.
        assert optimal_logit_gap(0.1, 3) == pytest.approx(math.log(28))

    def test_others_variant_value(self):
        assert optimal_logit_gap(0.1, 3, variant="others") == pytest.approx(math.log(0.9 / 0.05))

    def test_hard_targets_have_no_finite_optimum(self):
        assert optimal_logit_gap(0.0, 3) == math.inf

    def test_eps_one_uniform_gap_is_zero(self):
        assert optimal_logit_gap(1.0, 4) == pytest.approx(0.0)

    @pytest.mark.parametrize("variant", ["uniform", "others"])
    @pytest.mark.parametrize("k,eps", [(3, 0.1), (10, 0.1), (4, 0.2), (100, 0.05)])
    def test_torch_gradient_vanishes_at_the_gap(self, variant, k, eps):
        # Logits: gap on the true class, 0 elsewhere. torch's loss (with the eps that makes
        # it equal to the chosen variant) must be stationary there, and have a minimum.
        gap = optimal_logit_gap(eps, k, variant=variant)
        torch_eps = eps if variant == "uniform" else eps * k / (k - 1)
        target = torch.tensor([1])
        z = torch.zeros(1, k, dtype=DT)
        z[0, 1] = gap
        z.requires_grad_(True)
        loss = F.cross_entropy(z, target, label_smoothing=torch_eps)
        loss.backward()
        torch.testing.assert_close(z.grad, torch.zeros_like(z), rtol=0, atol=1e-12)
        for delta in (-0.5, 0.5):
            z2 = z.detach().clone()
            z2[0, 1] += delta
            assert F.cross_entropy(z2, target, label_smoothing=torch_eps) > loss

    def test_hard_target_loss_keeps_falling_as_gap_grows(self):
        target = torch.tensor([0])
        gaps = (2.0, 5.0, 10.0, 20.0)
        losses = [F.cross_entropy(torch.tensor([[g, 0.0, 0.0]], dtype=DT), target) for g in gaps]
        assert all(a > b for a, b in zip(losses, losses[1:]))

    def test_gap_shrinks_with_eps_and_grows_with_k(self):
        gaps_eps = [optimal_logit_gap(e, 10) for e in (0.01, 0.05, 0.1, 0.3)]
        assert all(a > b for a, b in zip(gaps_eps, gaps_eps[1:]))
        gaps_k = [optimal_logit_gap(0.1, k) for k in (2, 3, 10, 1000)]
        assert all(a < b for a, b in zip(gaps_k, gaps_k[1:]))


class TestLogitGap:
    def test_hand_example(self):
        z = torch.tensor([[1.0, 4.0, 0.0], [2.0, 2.0, 2.0]], dtype=DT)
        # Row 0: 4 - (1 + 0)/2 = 3.5. Row 1: all equal, gap 0.
        torch.testing.assert_close(logit_gap(z), torch.tensor([3.5, 0.0], dtype=DT))

    def test_vector_input(self):
        assert logit_gap(torch.tensor([0.0, -2.0], dtype=DT)).item() == 2.0

    def test_shift_invariant(self):
        logits, _ = random_problem(6, 5, seed=6)
        torch.testing.assert_close(logit_gap(logits + 3.0), logit_gap(logits))


class TestLabelSmoothingLoss:
    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    def test_matches_torch_module(self, reduction):
        logits, target = random_problem(12, 5, seed=8)
        ours = LabelSmoothingLoss(eps=0.15, reduction=reduction)(logits, target)
        ref = torch.nn.CrossEntropyLoss(label_smoothing=0.15, reduction=reduction)(logits, target)
        torch.testing.assert_close(ours, ref)

    def test_same_in_train_and_eval(self):
        logits, target = random_problem(12, 5, seed=9)
        loss = LabelSmoothingLoss(eps=0.1)
        a = loss.train()(logits, target)
        b = loss.eval()(logits, target)
        assert a.item() == b.item()

    def test_variant_is_passed_on(self):
        logits, target = random_problem(12, 5, seed=10)
        ours = LabelSmoothingLoss(eps=0.1, variant="others")(logits, target)
        torch.testing.assert_close(
            ours, smoothed_cross_entropy(logits, target, eps=0.1, variant="others")
        )
        assert ours.item() != LabelSmoothingLoss(eps=0.1)(logits, target).item()

    def test_extra_repr(self):
        text = repr(LabelSmoothingLoss(eps=0.2, reduction="sum"))
        assert text == "LabelSmoothingLoss(eps=0.2, reduction='sum', variant='uniform')"

    def test_has_no_parameters_and_backpropagates(self):
        loss_fn = LabelSmoothingLoss()
        assert list(loss_fn.parameters()) == []
        logits, target = random_problem(4, 3, seed=11)
        z = logits.requires_grad_(True)
        loss_fn(z, target).backward()
        assert z.grad is not None and bool(torch.isfinite(z.grad).all())


# --- bad input ----------------------------------------------------------------

GOOD_Z = torch.zeros(2, 3)
GOOD_T = torch.tensor([0, 2])
GOOD_P = torch.full((2, 3), 1 / 3)
HALF = torch.tensor([[0.5, 0.5]])
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: smooth_targets(GOOD_T, 3, eps=1.5),
            ValueError,
            r"eps must be between 0\.0 and 1\.0\. Got: 1\.5",
        ),
        (
            lambda: smooth_targets(GOOD_T, 3, eps=-0.1),
            ValueError,
            r"eps must be between 0\.0 and 1\.0\. Got: -0\.1",
        ),
        (
            lambda: smooth_targets(GOOD_T, 3, eps=float("nan")),
            ValueError,
            r"eps must be finite, got nan",
        ),
        (lambda: smooth_targets(GOOD_T, 3, eps="0.1"), TypeError, r"eps must be a real number"),
        (lambda: smooth_targets(GOOD_T, 1), ValueError, r"num_classes must be >= 2, got 1"),
        (
            lambda: smooth_targets(GOOD_T, 2.5),
            TypeError,
            r"num_classes must be an integer, got 2\.5",
        ),
        (
            lambda: smooth_targets(torch.tensor([0, 3]), 3),
            ValueError,
            r"target must hold class indices in \[0, 3\), got 3",
        ),
        (
            lambda: smooth_targets(torch.tensor([-1]), 3),
            ValueError,
            r"target must hold class indices in \[0, 3\), got -1",
        ),
        (
            lambda: smooth_targets(torch.tensor([0.0, 1.0]), 3),
            TypeError,
            r"target must be an integer tensor.*torch\.float32",
        ),
        (
            lambda: smooth_targets(torch.tensor([True]), 3),
            TypeError,
            r"target must be an integer tensor.*torch\.bool",
        ),
        (lambda: smooth_targets([0, 1], 3), TypeError, r"target must be a torch\.Tensor.*list"),
        (
            lambda: smooth_targets(torch.zeros(2, 2, dtype=torch.long), 3),
            ValueError,
            r"target must have 0 or 1 dimensions, got 2",
        ),
        (
            lambda: smooth_targets(torch.tensor([], dtype=torch.long), 3),
            ValueError,
            r"target must not be empty",
        ),
        (
            lambda: smooth_targets(GOOD_T, 3, variant="kminus1"),
            ValueError,
            r"variant must be 'uniform' or 'others', got 'kminus1'",
        ),
        (
            lambda: smooth_targets(GOOD_T, 3, dtype=torch.int64),
            TypeError,
            r"dtype must be a floating-point",
        ),
        (
            lambda: cross_entropy_from_probs(torch.tensor([[0.5, 0.6]]), HALF),
            ValueError,
            r"probs must sum to 1.*got a row summing to 1\.1",
        ),
        (
            lambda: cross_entropy_from_probs(torch.tensor([[-0.1, 1.1]]), HALF),
            ValueError,
            r"probs must be non-negative, got -0\.1",
        ),
        (
            lambda: cross_entropy_from_probs(GOOD_P, torch.tensor([[0.5, 0.6, 0.0]] * 2)),
            ValueError,
            r"target_dist must sum to 1",
        ),
        (
            lambda: cross_entropy_from_probs(GOOD_P, torch.tensor([[1.5, -0.5, 0.0]] * 2)),
            ValueError,
            r"target_dist must be non-negative, got -0\.5",
        ),
        (
            lambda: cross_entropy_from_probs(GOOD_P, torch.full((3, 3), 1 / 3)),
            ValueError,
            r"probs and target_dist must have the same shape, got \(2, 3\) and \(3, 3\)",
        ),
        (
            lambda: cross_entropy_from_probs(torch.tensor([[NAN, 0.5, 0.5]]), GOOD_P[:1]),
            ValueError,
            r"probs must be finite",
        ),
        (
            lambda: cross_entropy_from_probs(torch.tensor([[1, 0]]), torch.tensor([[1.0, 0.0]])),
            TypeError,
            r"probs must be a floating-point tensor",
        ),
        (
            lambda: cross_entropy_from_probs(GOOD_P[None], GOOD_P[None]),
            ValueError,
            r"probs must have 1 or 2 dimensions, got 3",
        ),
        (
            lambda: smoothed_cross_entropy(GOOD_Z, GOOD_T, eps=1.5),
            ValueError,
            r"eps must be between 0\.0 and 1\.0\. Got: 1\.5",
        ),
        (
            lambda: smoothed_cross_entropy(GOOD_Z, GOOD_T, reduction="avg"),
            ValueError,
            r"'avg' is not a valid value for reduction",
        ),
        (
            lambda: smoothed_cross_entropy(GOOD_Z, torch.tensor([0, 1, 2])),
            ValueError,
            r"target must have shape \(2,\) to match logits of shape \(2, 3\), got \(3,\)",
        ),
        (
            lambda: smoothed_cross_entropy(GOOD_Z, torch.tensor([0, 5])),
            ValueError,
            r"target must hold class indices in \[0, 3\), got 5",
        ),
        (
            lambda: smoothed_cross_entropy(GOOD_Z, torch.tensor([0.0, 1.0])),
            TypeError,
            r"target must be an integer tensor",
        ),
        (
            lambda: smoothed_cross_entropy(torch.tensor([[0.0, INF, 1.0]]), torch.tensor([0])),
            ValueError,
            r"logits must be finite",
        ),
        (
            lambda: smoothed_cross_entropy(torch.zeros(2, 1), torch.tensor([0, 0])),
            ValueError,
            r"logits must have at least 2 classes.*\(2, 1\)",
        ),
        (
            lambda: smoothed_cross_entropy(torch.zeros(2, 3, dtype=torch.long), GOOD_T),
            TypeError,
            r"logits must be a floating-point tensor",
        ),
        (
            lambda: smoothed_cross_entropy(GOOD_Z, GOOD_T, variant="K-1"),
            ValueError,
            r"variant must be 'uniform' or 'others', got 'K-1'",
        ),
        (
            lambda: optimal_logit_gap(2.0, 3),
            ValueError,
            r"eps must be between 0\.0 and 1\.0\. Got: 2\.0",
        ),
        (lambda: optimal_logit_gap(0.1, 1), ValueError, r"num_classes must be >= 2, got 1"),
        (lambda: logit_gap(torch.zeros(3, 1)), ValueError, r"logits must have at least 2 classes"),
        (
            lambda: logit_gap(torch.tensor([[float("nan"), 0.0]])),
            ValueError,
            r"logits must be finite",
        ),
        (
            lambda: LabelSmoothingLoss(eps=1.5),
            ValueError,
            r"eps must be between 0\.0 and 1\.0\. Got: 1\.5",
        ),
        (
            lambda: LabelSmoothingLoss(reduction="avg"),
            ValueError,
            r"'avg' is not a valid value for reduction",
        ),
        (
            lambda: LabelSmoothingLoss(variant="x"),
            ValueError,
            r"variant must be 'uniform' or 'others', got 'x'",
        ),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_eps_message_mirrors_torch():
    """Our eps message is torch's label_smoothing message with the argument renamed."""
    with pytest.raises(RuntimeError) as theirs:
        F.cross_entropy(GOOD_Z, GOOD_T, label_smoothing=1.5)
    with pytest.raises(ValueError) as ours:
        smoothed_cross_entropy(GOOD_Z, GOOD_T, eps=1.5)
    assert str(ours.value) == str(theirs.value).replace("label_smoothing", "eps")


# --- properties -----------------------------------------------------------------

eps_st = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
k_st = st.integers(min_value=2, max_value=50)
seed_st = st.integers(min_value=0, max_value=2**31 - 1)
variant_st = st.sampled_from(["uniform", "others"])


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(eps=eps_st, k=k_st, seed=seed_st, variant=variant_st)
    def test_targets_are_distributions(self, eps, k, seed, variant):
        # Each entry is (1-eps)*[0 or 1] + a non-negative share of eps, and the shares of
        # eps add up to eps, so the row sums to (1 - eps) + eps = 1.
        target = torch.randint(0, k, (8,), generator=torch.Generator().manual_seed(seed))
        y = smooth_targets(target, k, eps=eps, variant=variant, dtype=DT)
        assert bool((y >= 0).all())
        torch.testing.assert_close(y.sum(dim=1), torch.ones(8, dtype=DT))
        # The true class keeps the largest share: uniform gives it 1 - eps + eps/K > eps/K
        # whenever eps < 1; "others" gives 1 - eps > eps/(K-1) only while eps < (K-1)/K.
        # (Margins keep clear of floating-point ties at the boundary.)
        limit = 0.999 if variant == "uniform" else (k - 1) / k - 1e-9
        if eps <= limit:
            assert bool((y.argmax(dim=1) == target).all())

    @settings(max_examples=60, deadline=None)
    @given(eps=eps_st, k=k_st, seed=seed_st)
    def test_decomposition(self, eps, k, seed):
        # The loss is linear in the target: y = (1-eps)*onehot + eps*uniform, so
        # CE(y) = (1-eps)*CE(onehot) + eps*CE(uniform) exactly.
        logits, target = random_problem(8, k, seed=seed)
        hard = F.cross_entropy(logits, target, reduction="none")
        uniform_ce = -F.log_softmax(logits, dim=1).mean(dim=1)
        ours = smoothed_cross_entropy(logits, target, eps=eps, reduction="none")
        torch.testing.assert_close(ours, (1 - eps) * hard + eps * uniform_ce)

    @settings(max_examples=60, deadline=None)
    @given(eps=eps_st, k=k_st, seed=seed_st, scale=st.floats(min_value=0.0, max_value=30.0))
    def test_lower_bounds(self, eps, k, seed, scale):
        # CE(uniform) = mean_k(-log p_k) >= -log(mean_k p_k) = log K (Jensen), so
        # smoothed CE >= (1-eps)*hard CE + eps*log K >= (1-eps)*hard CE. And by Gibbs'
        # inequality CE(y, p) = H(y) + KL(y || p) >= H(y), the entropy of the target.
        logits, target = random_problem(8, k, seed=seed, scale=scale)
        hard = F.cross_entropy(logits, target, reduction="none")
        ours = smoothed_cross_entropy(logits, target, eps=eps, reduction="none")
        tol = 1e-10
        assert bool((ours >= (1 - eps) * hard + eps * math.log(k) - tol).all())
        assert bool((ours >= (1 - eps) * hard - tol).all())
        y = smooth_targets(target, k, eps=eps, dtype=DT)
        entropy = -torch.xlogy(y, y).sum(dim=1)
        assert bool((ours >= entropy - tol).all())

    @settings(max_examples=40, deadline=None)
    @given(eps=st.floats(min_value=1e-3, max_value=1.0), k=k_st, seed=seed_st)
    def test_minimum_is_the_smoothed_target(self, eps, k, seed):
        # At logits = log y the softmax is y itself: the gradient softmax - y vanishes and
        # the loss equals its lower bound H(y).
        target = torch.randint(0, k, (4,), generator=torch.Generator().manual_seed(seed))
        y = smooth_targets(target, k, eps=eps, dtype=DT)
        z = torch.log(y).requires_grad_(True)
        loss = smoothed_cross_entropy(z, target, eps=eps, reduction="sum")
        loss.backward()
        torch.testing.assert_close(z.grad, torch.zeros_like(z), rtol=0, atol=1e-12)
        entropy = -torch.xlogy(y, y).sum()
        torch.testing.assert_close(loss.detach(), entropy)
        torch.testing.assert_close(
            logit_gap(z.detach()), torch.full((4,), optimal_logit_gap(eps, k), dtype=DT)
        )
