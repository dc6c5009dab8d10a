"""Tests of regcourse.calibration against hand computations (one class per function)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from regcourse import set_validate_args
from regcourse.calibration import (
    collect_logits,
    confidence_and_prediction,
    expected_calibration_error,
    logit_norm,
    reliability_diagram,
)

# Six examples, three classes, written as probabilities so the hand computation is exact.
PROBS = torch.tensor(
    [
        [0.95, 0.03, 0.02],  # conf 0.95, pred 0, label 0: correct
        [0.10, 0.85, 0.05],  # conf 0.85, pred 1, label 2: wrong
        [0.20, 0.15, 0.65],  # conf 0.65, pred 2, label 2: correct
        [0.45, 0.40, 0.15],  # conf 0.45, pred 0, label 1: wrong
        [0.34, 0.33, 0.33],  # conf 0.34, pred 0, label 0: correct
        [0.05, 0.90, 0.05],  # conf 0.90, pred 1, label 1: correct
    ],
    dtype=torch.float64,
)
LABELS = torch.tensor([0, 2, 2, 1, 0, 1])


def _hand_bins(num_bins):
    """Bins by hand: (b/M, (b+1)/M] for every example, in plain Python."""
    confs = [0.95, 0.85, 0.65, 0.45, 0.34, 0.90]
    right = [1, 0, 1, 0, 1, 1]
    bins = [[] for _ in range(num_bins)]
    for c, r in zip(confs, right):
        b = max(0, math.ceil(c * num_bins) - 1)
        bins[b].append((c, r))
    return bins


class TestConfidenceAndPrediction:
    def test_from_probabilities(self):
        conf, pred = confidence_and_prediction(PROBS, probs=True)
        assert pred.tolist() == [0, 1, 2, 0, 0, 1]
        torch.testing.assert_close(
            conf, torch.tensor([0.95, 0.85, 0.65, 0.45, 0.34, 0.90], dtype=torch.float64)
        )

    def test_from_logits_is_softmax(self):
        logits = torch.tensor([[1.0, 2.0, 0.5]])
        conf, pred = confidence_and_prediction(logits)
        e = [math.exp(v) for v in (1.0, 2.0, 0.5)]
        assert pred.item() == 1
        assert conf.item() == pytest.approx(e[1] / sum(e), rel=1e-12)


class TestReliabilityDiagram:
    @pytest.mark.parametrize("num_bins", [1, 2, 5, 10, 15])
    def test_matches_hand_binning(self, num_bins):
        d = reliability_diagram(PROBS, LABELS, num_bins, probs=True)
        bins = _hand_bins(num_bins)
        assert d.count.tolist() == [len(b) for b in bins]
        for b, content in enumerate(bins):
            if content:
                assert d.confidence[b].item() == pytest.approx(
                    sum(c for c, _ in content) / len(content)
                )
                assert d.accuracy[b].item() == pytest.approx(
                    sum(r for _, r in content) / len(content)
                )
            else:
                assert math.isnan(d.confidence[b].item()) and math.isnan(d.accuracy[b].item())

    def test_five_bins_by_hand(self):
        # bins (0,.2] (.2,.4] (.4,.6] (.6,.8] (.8,1]: 0.34 | 0.45 | 0.65 | 0.95 0.85 0.90
        d = reliability_diagram(PROBS, LABELS, 5, probs=True)
        assert d.count.tolist() == [0, 1, 1, 1, 3]
        assert d.accuracy.tolist()[1:] == pytest.approx([1.0, 0.0, 1.0, 2 / 3])
        assert d.confidence.tolist()[1:] == pytest.approx(
            [0.34, 0.45, 0.65, (0.95 + 0.85 + 0.90) / 3]
        )

    def test_right_closed_edges(self):
        probs = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
        d = reliability_diagram(probs, torch.tensor([0, 0]), 2, probs=True)
        assert d.count.tolist() == [1, 1]  # 0.5 in (0, 0.5], 1.0 in (0.5, 1]

    def test_edges(self):
        d = reliability_diagram(PROBS, LABELS, 4, probs=True)
        assert d.edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]

    def test_counts_sum_to_n(self):
        logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 3
        labels = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))
        d = reliability_diagram(logits, labels)
        assert d.num_examples == 500 and len(d.count) == 15

    def test_as_dict_is_strict_json(self):
        import json

        text = json.dumps(
            reliability_diagram(PROBS, LABELS, 5, probs=True).as_dict(), allow_nan=False
        )
        assert json.loads(text)["confidence"][0] is None

    @pytest.mark.parametrize(
        "args, kwargs, exc, match",
        [
            (
                (PROBS.float()[:, :2].sum(1), LABELS),
                {},
                ValueError,
                r"logits must have 2 dimensions",
            ),
            (
                (PROBS, LABELS[:5]),
                dict(probs=True),
                ValueError,
                r"labels must have one entry per row of the logits \(6\), got 5",
            ),
            (
                (PROBS, LABELS.float()),
                dict(probs=True),
                TypeError,
                r"labels must be a|labels must hold integer",
            ),
            (
                (PROBS, torch.tensor([0, 1, 2, 3, 0, 1])),
                dict(probs=True),
                ValueError,
                r"labels must be class indices in \[0, 2\], got 3",
            ),
            ((PROBS, LABELS, 0), dict(probs=True), ValueError, r"num_bins must be >= 1, got 0"),
            ((PROBS, LABELS, 2.5), dict(probs=True), TypeError, r"num_bins must be an integer"),
            ((PROBS * 2, LABELS), dict(probs=True), ValueError, r"probabilities in \[0, 1\]"),
            ((PROBS * 0.5, LABELS), dict(probs=True), ValueError, r"rows sum to 1"),
            ((PROBS, LABELS), dict(probs="yes"), TypeError, r"probs must be a bool"),
            (
                (torch.full((2, 3), float("nan")), torch.tensor([0, 1])),
                {},
                ValueError,
                r"logits must be finite",
            ),
        ],
    )
    def test_bad_input(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            reliability_diagram(*args, **kwargs)

    def test_value_scans_switchable(self):
        old = set_validate_args(False)
        try:
            reliability_diagram(PROBS * 0.5, LABELS, probs=True)  # not refused with scans off
        finally:
            set_validate_args(old)

    def test_numpy_num_bins_accepted(self):
        assert len(reliability_diagram(PROBS, LABELS, np.int64(4), probs=True).count) == 4


class TestExpectedCalibrationError:
    @pytest.mark.parametrize("num_bins", [1, 2, 5, 10, 15])
    def test_matches_hand_computation(self, num_bins):
        bins = _hand_bins(num_bins)
        n = 6
        want = sum(
            len(b) / n * abs(sum(r for _, r in b) / len(b) - sum(c for c, _ in b) / len(b))
            for b in bins
            if b
        )
        got = expected_calibration_error(PROBS, LABELS, num_bins, probs=True)
        assert got == pytest.approx(want, abs=1e-12)

    def test_one_bin_is_mean_confidence_minus_accuracy(self):
        got = expected_calibration_error(PROBS, LABELS, 1, probs=True)
        assert got == pytest.approx(abs((0.95 + 0.85 + 0.65 + 0.45 + 0.34 + 0.90) / 6 - 4 / 6))

    def test_perfectly_calibrated_is_zero(self):
        # 10 examples at confidence 0.8, 8 of them right: no gap in their bin
        probs = torch.tensor([[0.8, 0.2]] * 10, dtype=torch.float64)
        labels = torch.tensor([0] * 8 + [1] * 2)
        assert expected_calibration_error(probs, labels, probs=True) == pytest.approx(
            0.0, abs=1e-12
        )

    def test_logits_and_probabilities_agree(self):
        logits = (
            torch.randn(200, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2
        )
        labels = torch.randint(0, 4, (200,), generator=torch.Generator().manual_seed(3))
        a = expected_calibration_error(logits, labels)
        b = expected_calibration_error(torch.softmax(logits, 1), labels, probs=True)
        assert a == pytest.approx(b, abs=1e-12)

    def test_overconfidence_grows_with_temperature(self):
        """Scaling the logits up makes a model that is 50 % right more over-confident."""
        g = torch.Generator().manual_seed(4)
        logits = torch.randn(2000, 2, generator=g, dtype=torch.float64)
        labels = torch.randint(0, 2, (2000,), generator=g)  # unrelated to the logits
        eces = [expected_calibration_error(logits * t, labels) for t in (1.0, 3.0, 10.0)]
        assert eces[0] < eces[1] < eces[2]


class TestLogitNorm:
    def test_by_hand(self):
        z = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
        assert logit_norm(z, "none").tolist() == [5.0, 1.0, 0.0]
        assert logit_norm(z).item() == pytest.approx(2.0)

    @pytest.mark.parametrize(
        "args, exc, match",
        [
            ((torch.ones(3),), ValueError, r"logits must have 2 dimensions"),
            (
                (torch.ones(2, 3), "sum"),
                ValueError,
                r"reduction must be 'mean' or 'none', got 'sum'",
            ),
            (
                (torch.ones(2, 3, dtype=torch.long),),
                TypeError,
                r"logits must be a floating-point tensor",
            ),
        ],
    )
    def test_bad_input(self, args, exc, match):
        with pytest.raises(exc, match=match):
            logit_norm(*args)


class TestCollectLogits:
    def test_eval_mode_and_restored(self):
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5)).train()
        x = torch.randn(10, 3)
        a, b = collect_logits(model, x, batch_size=3), collect_logits(model, x)
        assert torch.equal(a, b) and model.training
        with torch.no_grad():
            torch.testing.assert_close(a, model.eval()(x))

    def test_bad_batch_size(self):
        with pytest.raises(ValueError, match=r"batch_size must be >= 1, got -5"):
            collect_logits(torch.nn.Linear(3, 2), torch.randn(4, 3), batch_size=-5)
