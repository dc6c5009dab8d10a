"""Calibration: does a model's confidence match how often it is right?

A classifier is *calibrated* when, among the examples it predicts with confidence
about 0.8, about 80 % are correct. The usual measurements (Guo et al. 2017), all
computed here from a model's logits (or probabilities) and the true labels:

- the *confidence* of an example is its largest predicted probability, the
  prediction its arg-max class;
- the *reliability diagram* cuts ``[0, 1]`` into ``M`` equal-width bins
  ``(0, 1/M], (1/M, 2/M], …, ((M−1)/M, 1]`` (a confidence of exactly 0 joins the first
  bin) and reports, per bin, the mean confidence, the accuracy and the number of examples;
- the *expected calibration error* is the bin-size-weighted mean gap
  ``ECE = Σ_b (n_b / N) · |acc_b − conf_b|``, between 0 (perfectly calibrated on these
  bins) and 1.

Label smoothing caps the confidence a model can reach and so changes its
calibration; it also keeps the logits from growing without bound, which
:func:`logit_norm` measures.

Used in:
    chapter "Label smoothing".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_bool, check_scalar, check_tensor, validate_args_enabled

__all__ = [
    "ReliabilityDiagram",
    "confidence_and_prediction",
    "reliability_diagram",
    "expected_calibration_error",
    "logit_norm",
    "collect_logits",
]


def _probabilities(scores: torch.Tensor, probs: bool) -> torch.Tensor:
    check_tensor(scores, "scores" if probs else "logits", ndim=2)
    probs = check_bool(probs, "probs")
    if not probs:
        return torch.softmax(scores.double(), dim=1)
    p = scores.double()
    if validate_args_enabled():
        if bool(((p < 0) | (p > 1)).any()):
            raise ValueError(
                "scores must hold probabilities in [0, 1] when probs=True, got a value outside"
            )
        if not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
            raise ValueError("scores must hold probabilities whose rows sum to 1 when probs=True")
    return p


def _check_labels(labels, n: int, k: int) -> torch.Tensor:
    check_tensor(labels, "labels", ndim=1, floating=False)
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    if len(labels) != n:
        raise ValueError(
            f"labels must have one entry per row of the logits ({n}), got {len(labels)}"
        )
    if validate_args_enabled() and bool(((labels < 0) | (labels >= k)).any()):
        bad = labels[(labels < 0) | (labels >= k)][0].item()
        raise ValueError(f"labels must be class indices in [0, {k - 1}], got {bad}")
    return labels.long()


def confidence_and_prediction(
    logits: torch.Tensor, *, probs: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The confidence (largest probability) and the predicted class of every example.

    Args:
        logits (Tensor): ``(N, K)`` logits, or probabilities with ``probs=True``.
        probs (bool, keyword only): ``logits`` already holds probabilities. Default: ``False``.

    Returns:
        ``(confidence, prediction)``: float64 ``(N,)`` in ``[1/K, 1]`` and int64 ``(N,)``.

    Shape:
        - Input: ``(N, K)``.
        - Output: two ``(N,)`` tensors.

    Example:
        >>> conf, pred = confidence_and_prediction(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
        >>> conf.tolist(), pred.tolist()
        ([0.5, 0.8807970779778823], [0, 0])

    Used in:
        chapter "Label smoothing".
    """
    p = _probabilities(logits, probs)
    conf, pred = p.max(dim=1)
    return conf, pred


@dataclass(frozen=True)
class ReliabilityDiagram:
    """The data of a reliability diagram: per equal-width confidence bin, what the model said and did.

    Attributes:
        edges: ``(M + 1,)`` bin edges ``0, 1/M, …, 1``.
        confidence: ``(M,)`` mean confidence of the examples in each bin (NaN for an empty bin).
        accuracy: ``(M,)`` fraction of them predicted correctly (NaN for an empty bin).
        count: ``(M,)`` number of examples in each bin (int64; 0 for an empty bin).
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor

    @property
    def num_examples(self) -> int:
        """``N``, the number of examples binned."""
        return int(self.count.sum())

    @property
    def ece(self) -> float:
        """The expected calibration error ``Σ_b (n_b/N)·|acc_b − conf_b|`` over the non-empty bins."""
        keep = self.count > 0
        w = self.count[keep].double() / self.num_examples
        return float((w * (self.accuracy[keep] - self.confidence[keep]).abs()).sum())

    def as_dict(self) -> dict:
        """Plain lists (``None`` for the empty bins' NaN), for JSON."""

        def clean(t):
            return [None if v != v else v for v in t.tolist()]

        return {
            "edges": self.edges.tolist(),
            "confidence": clean(self.confidence),
            "accuracy": clean(self.accuracy),
            "count": self.count.tolist(),
            "ece": self.ece,
        }


def reliability_diagram(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_bins: int = 15,
    *,
    probs: bool = False,
) -> ReliabilityDiagram:
    """Bin the predictions by confidence into ``num_bins`` equal-width bins and measure each bin.

    Bin ``b`` (0-based) holds the confidences in ``(b/M, (b+1)/M]``; a confidence of
    exactly 0 (impossible for a softmax) would join bin 0. This is the binning of
    Guo et al. 2017 ("On calibration of modern neural networks"), whose 15 bins are
    the default.

    Args:
        logits (Tensor): ``(N, K)`` logits, or probabilities with ``probs=True``.
        labels (Tensor): ``(N,)`` true class indices.
        num_bins (int): the number of bins ``M``, ``>= 1``. Default: ``15``.
        probs (bool, keyword only): ``logits`` already holds probabilities. Default: ``False``.

    Returns:
        ReliabilityDiagram: edges, and per bin the mean confidence, accuracy and count.

    Shape:
        - ``logits``: ``(N, K)``; ``labels``: ``(N,)``.
        - Result: ``edges`` ``(M + 1,)``; ``confidence``, ``accuracy``, ``count`` ``(M,)``.

    Example:
        >>> logits = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]]))
        >>> d = reliability_diagram(logits, torch.tensor([0, 1, 1, 0]), num_bins=2)
        >>> d.count.tolist(), d.accuracy.tolist()     # bins (0, 0.5] and (0.5, 1]
        ([0, 4], [nan, 0.5])
        >>> round(d.ece, 4)                           # |0.5 - (0.9+0.6+0.7+0.8)/4|
        0.25

    Used in:
        chapter "Label smoothing".
    """
    p = _probabilities(logits, probs)
    n, k = p.shape
    labels = _check_labels(labels, n, k)
    num_bins = check_scalar(num_bins, "num_bins", kind="int", low=1)
    conf, pred = p.max(dim=1)
    correct = (pred == labels).double()
    # bin b holds (b/M, (b+1)/M]: ceil(conf·M) − 1, with conf = 0 clamped into bin 0
    idx = (torch.ceil(conf * num_bins).long() - 1).clamp_(0, num_bins - 1)
    count = torch.bincount(idx, minlength=num_bins)
    conf_sum = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, idx, conf)
    acc_sum = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, idx, correct)
    denom = count.double()
    empty = count == 0
    confidence = torch.where(empty, torch.nan, conf_sum / denom.clamp_min(1))
    accuracy = torch.where(empty, torch.nan, acc_sum / denom.clamp_min(1))
    edges = torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64)
    return ReliabilityDiagram(edges, confidence, accuracy, count)


def expected_calibration_error(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_bins: int = 15,
    *,
    probs: bool = False,
) -> float:
    """Expected calibration error over ``num_bins`` equal-width confidence bins.

    ``ECE = Σ_b (n_b / N) · |acc_b − conf_b|``, with the bins of
    :func:`reliability_diagram`: the mean absolute gap between confidence and accuracy,
    weighted by how many examples each bin holds. 0 means the confidences match the
    accuracies bin by bin; an over-confident model has ``conf_b > acc_b``.

    Args:
        logits (Tensor): ``(N, K)`` logits, or probabilities with ``probs=True``.
        labels (Tensor): ``(N,)`` true class indices.
        num_bins (int): number of bins ``M``, ``>= 1``. Default: ``15``.
        probs (bool, keyword only): ``logits`` already holds probabilities. Default: ``False``.

    Returns:
        float: the ECE, in ``[0, 1]``.

    Example:
        >>> logits = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4]]))
        >>> round(expected_calibration_error(logits, torch.tensor([0, 0]), num_bins=10), 4)
        0.25

        (Bins (0.8, 0.9] and (0.5, 0.6] each hold one correct prediction: gaps 0.1 and
        0.4, weighted ½ each.)

    Used in:
        chapter "Label smoothing".
    """
    return reliability_diagram(logits, labels, num_bins, probs=probs).ece


def logit_norm(logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The Euclidean norm ``‖z‖₂`` of each example's logit vector.

    Cross-entropy with hard targets keeps rewarding larger logit gaps, so the norm
    of the logits grows through training; label smoothing's optimum has a finite gap
    (see :func:`regcourse.smoothing.optimal_logit_gap`), so its norm levels off.

    Args:
        logits (Tensor): ``(N, K)`` logits.
        reduction (str): ``"mean"`` (the mean over examples, a 0-dim tensor) or
            ``"none"`` (one norm per example). Default: ``"mean"``.

    Returns:
        Tensor: 0-dim (``"mean"``) or ``(N,)`` (``"none"``), the dtype of ``logits``.

    Example:
        >>> logit_norm(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), reduction="none")
        tensor([5., 0.])

    Used in:
        chapter "Label smoothing".
    """
    check_tensor(logits, "logits", ndim=2)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    norms = torch.linalg.vector_norm(logits, dim=1)
    return norms.mean() if reduction == "mean" else norms


@torch.no_grad()
def collect_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The model's logits on ``x``, computed in ``eval()`` mode without gradients.

    The model's previous mode is restored afterwards (as :func:`regcourse.training.evaluate` does).

    Args:
        model (nn.Module): the classifier.
        x (Tensor): inputs ``(N, ...)``.
        batch_size (int): examples per forward pass, ``>= 1``. Default: ``1024``.

    Returns:
        Tensor: ``(N, K)`` logits.

    Used in:
        chapter "Label smoothing".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_tensor(x, "x")
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)
