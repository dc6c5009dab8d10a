"""Label smoothing: soft targets, cross-entropy from probabilities or logits, a loss module.

Convention (the one ``torch.nn.functional.cross_entropy(label_smoothing=eps)`` uses):
with ``K`` classes and true class ``y``, the smoothed target is

    y_k = (1 - eps) * [k == y] + eps / K,

so the true class gets ``1 - eps + eps/K`` and every other class ``eps/K``. For teaching,
``variant="others"`` gives the other common form, where the true class gets ``1 - eps`` and
each of the ``K - 1`` others ``eps/(K - 1)``; it equals the uniform form with
``eps * K / (K - 1)`` in place of ``eps``.

Used in:
    chapter "Label smoothing".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_same_shape,
    check_scalar,
    check_tensor,
    layer_forward,
    validate_args_enabled,
)

__all__ = [
    "smooth_targets",
    "cross_entropy_from_probs",
    "smoothed_cross_entropy",
    "optimal_logit_gap",
    "logit_gap",
    "LabelSmoothingLoss",
]

_VARIANTS = ("uniform", "others")
_REDUCTIONS = ("none", "mean", "sum")
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
# torch's wording for the same check in F.cross_entropy, with our argument's name.
_EPS_MESSAGE = "{name} must be between 0.0 and 1.0. Got: {value}"


def _check_eps(eps) -> float:
    return check_scalar(eps, "eps", low=0.0, high=1.0, message=_EPS_MESSAGE)


def _check_variant(variant) -> str:
    if not isinstance(variant, str) or variant not in _VARIANTS:
        raise ValueError(f"variant must be 'uniform' or 'others', got {variant!r}")
    return variant


def _check_reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        # torch's wording ("avg is not a valid value for reduction"), plus the choices.
        raise ValueError(
            f"{reduction!r} is not a valid value for reduction (use 'none', 'mean' or 'sum')"
        )
    return reduction


def _check_target(target, num_classes: int, name: str = "target") -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of class indices, got {type(target).__name__}"
        )
    if target.dtype not in _INT_DTYPES:
        raise TypeError(
            f"{name} must be an integer tensor of class indices, got dtype {target.dtype}"
        )
    if target.dim() > 1:
        raise ValueError(
            f"{name} must have 0 or 1 dimensions, got {target.dim()} (shape {tuple(target.shape)})"
        )
    if target.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(target.shape)}")
    if validate_args_enabled():  # a value scan: switchable (regcourse.set_validate_args)
        bad = (target < 0) | (target >= num_classes)
        if bool(bad.any()):
            value = int(target[bad].flatten()[0])
            raise ValueError(f"{name} must hold class indices in [0, {num_classes}), got {value}")
    return target


def _check_logits(logits) -> torch.Tensor:
    check_tensor(logits, "logits", ndim=(1, 2))
    if logits.shape[-1] < 2:
        raise ValueError(
            "logits must have at least 2 classes in the last dimension, "
            f"got shape {tuple(logits.shape)}"
        )
    return logits


def _check_distribution(x: torch.Tensor, name: str) -> None:
    """Entries >= 0 and each row summing to 1 (tolerance grows with K and the dtype's eps)."""
    if bool((x < 0).any()):
        raise ValueError(f"{name} must be non-negative, got {float(x.min()):g}")
    k = x.shape[-1]
    atol = max(1e-5, 8 * k * torch.finfo(x.dtype).eps)
    sums = x.sum(dim=-1)
    off = (sums - 1).abs() > atol
    if bool(off.any()):
        value = float(sums[off].flatten()[0])
        raise ValueError(
            f"{name} must sum to 1 along the last dimension (within {atol:g}), "
            f"got a row summing to {value:g}"
        )


def smooth_targets(
    target: torch.Tensor,
    num_classes: int,
    eps: float = 0.1,
    variant: str = "uniform",
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Turn class indices into label-smoothed target distributions.

    With ``variant="uniform"`` (torch's convention) the true class gets
    ``1 - eps + eps/K`` and every other class ``eps/K``, i.e.
    ``(1 - eps) * one_hot + eps / K``. With ``variant="others"`` the true class
    gets ``1 - eps`` and each of the ``K - 1`` others ``eps / (K - 1)``.

    Args:
        target (Tensor): integer class indices in ``[0, num_classes)``.
        num_classes (int): the number of classes ``K`` (at least 2).
        eps (float): the smoothing strength, in ``[0, 1]``. Default: ``0.1``.
            ``eps=0`` gives the hard one-hot targets.
        variant (str): ``"uniform"`` or ``"others"``. Default: ``"uniform"``.
        dtype (torch.dtype, optional): floating dtype of the result.
            Default: ``torch.get_default_dtype()``.

    Returns:
        Tensor: the smoothed targets; each row is non-negative and sums to 1.

    Shape:
        - target: ``(N,)`` or ``()``
        - output: ``(N, K)`` or ``(K,)``

    Example:
        >>> smooth_targets(torch.tensor([1]), 3, eps=0.1)
        tensor([[0.0333, 0.9333, 0.0333]])
        >>> smooth_targets(torch.tensor([1]), 3, eps=0.1, variant="others")
        tensor([[0.0500, 0.9000, 0.0500]])

    Used in:
        chapter "Label smoothing".
    """
    num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
    eps = _check_eps(eps)
    variant = _check_variant(variant)
    target = _check_target(target, num_classes)
    if dtype is None:
        dtype = torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    one_hot = F.one_hot(target.long(), num_classes).to(dtype)
    if variant == "uniform":
        return (1.0 - eps) * one_hot + eps / num_classes
    return (1.0 - eps) * one_hot + (eps / (num_classes - 1)) * (1.0 - one_hot)


def cross_entropy_from_probs(probs: torch.Tensor, target_dist: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``-sum_k t_k log p_k`` of predicted probabilities against target distributions.

    Averaged over the batch. Terms with ``t_k = 0`` count as 0 even where ``p_k = 0``;
    the result is ``inf`` if ``probs`` gives probability 0 to a class ``target_dist`` does not.

    Args:
        probs (Tensor): predicted probabilities (e.g. a softmax output); non-negative,
            each row summing to 1.
        target_dist (Tensor): target distributions (e.g. from :func:`smooth_targets`);
            non-negative, each row summing to 1.

    Returns:
        Tensor: a scalar, the mean cross-entropy over the rows.

    Shape:
        - probs: ``(N, K)`` or ``(K,)``
        - target_dist: the same shape as ``probs``
        - output: ``()``

    Example:
        >>> p = torch.tensor([[0.1, 0.7, 0.2]])
        >>> cross_entropy_from_probs(p, smooth_targets(torch.tensor([1]), 3, eps=0.1))
        tensor(0.4633)

    Used in:
        chapter "Label smoothing".
    """
    check_tensor(probs, "probs", ndim=(1, 2))
    check_tensor(target_dist, "target_dist", ndim=(1, 2))
    check_same_shape(probs, "probs", target_dist, "target_dist")
    _check_distribution(probs, "probs")
    _check_distribution(target_dist, "target_dist")
    per_row = -torch.xlogy(target_dist, probs).sum(dim=-1)
    return per_row.mean()


def smoothed_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    eps: float = 0.1,
    reduction: str = "mean",
    *,
    variant: str = "uniform",
) -> torch.Tensor:
    """Cross-entropy of logits against label-smoothed targets.

    Computes ``-sum_k y_k log softmax(logits)_k`` with ``y`` from
    :func:`smooth_targets`, using ``log_softmax`` (numerically stable for large
    logits). With the default ``variant="uniform"`` it equals
    ``F.cross_entropy(logits, target, label_smoothing=eps, reduction=reduction)``.
    Its gradient with respect to the logits of one row is ``softmax(logits) - y``.

    Args:
        logits (Tensor): unnormalized scores.
        target (Tensor): integer class indices in ``[0, K)``.
        eps (float): the smoothing strength, in ``[0, 1]``. Default: ``0.1``.
        reduction (str): ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        variant (str): ``"uniform"`` (torch's) or ``"others"``; see
            :func:`smooth_targets`. Default: ``"uniform"``.

    Returns:
        Tensor: the loss, per row for ``reduction="none"``, else a scalar.

    Shape:
        - logits: ``(N, K)`` or ``(K,)``
        - target: ``(N,)`` or ``()`` respectively
        - output: ``(N,)`` (or ``()``) for ``"none"``, else ``()``

    Example:
        >>> p = torch.tensor([[0.1, 0.7, 0.2]])
        >>> smoothed_cross_entropy(torch.log(p), torch.tensor([1]), eps=0.1)
        tensor(0.4633)

    Used in:
        chapter "Label smoothing".
    """
    _check_logits(logits)
    eps = _check_eps(eps)
    reduction = _check_reduction(reduction)
    variant = _check_variant(variant)
    num_classes = logits.shape[-1]
    target = _check_target(target, num_classes)
    if target.shape != logits.shape[:-1]:
        raise ValueError(
            f"target must have shape {tuple(logits.shape[:-1])} to match logits of shape "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    # sum_k y_k (-log p_k) with y = (1 - e) onehot + e/K equals (1 - e)(-log p_y) - (e/K) sum_k log p_k:
    # the value smooth_targets() gives, without building the (N, K) target matrix. As torch
    # does, the two terms are reduced over the batch first and scaled afterwards, so the
    # only full-size passes are log_softmax's (forward and backward): the nll term is one
    # gather (F.nll_loss), the smoothing term one sum over the classes.
    e = eps if variant == "uniform" else eps * num_classes / (num_classes - 1)
    log_p = F.log_softmax(logits, dim=-1)
    flat_log_p, flat_target = log_p.reshape(-1, num_classes), target.reshape(-1).long()
    if reduction == "none":
        nll = F.nll_loss(flat_log_p, flat_target, reduction="none").reshape(target.shape)
        return (1.0 - e) * nll - (e / num_classes) * log_p.sum(dim=-1)
    nll = F.nll_loss(flat_log_p, flat_target, reduction=reduction)
    smooth = log_p.sum(dim=-1)
    smooth = smooth.mean() if reduction == "mean" else smooth.sum()
    return (1.0 - e) * nll - (e / num_classes) * smooth


def optimal_logit_gap(eps: float, num_classes: int, variant: str = "uniform") -> float:
    """The logit gap (true class minus any other class) that minimizes the smoothed loss.

    The smoothed cross-entropy of one example is smallest when ``softmax(z)`` equals
    the smoothed target ``y``, i.e. when ``z_true - z_other = log(y_true / y_other)``:
    ``log((1 - eps + eps/K) / (eps/K))`` for ``"uniform"``, ``log((1 - eps) (K - 1) / eps)``
    for ``"others"``. With ``eps = 0`` (hard targets) no finite logits reach the
    minimum and the gap is ``inf``.

    Args:
        eps (float): the smoothing strength, in ``[0, 1]``.
        num_classes (int): the number of classes ``K`` (at least 2).
        variant (str): ``"uniform"`` or ``"others"``. Default: ``"uniform"``.

    Returns:
        float: the optimal gap (``inf`` for ``eps = 0``; may be ``-inf`` for ``"others"``
        with ``eps = 1``, where the true class gets probability 0).

    Example:
        >>> round(optimal_logit_gap(0.1, 3), 4)   # log(28)
        3.3322

    Used in:
        chapter "Label smoothing".
    """
    num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
    eps = _check_eps(eps)
    variant = _check_variant(variant)
    if eps == 0.0:
        return math.inf
    if variant == "uniform":
        return math.log((1.0 - eps + eps / num_classes) / (eps / num_classes))
    if eps == 1.0:
        return -math.inf
    return math.log((1.0 - eps) * (num_classes - 1) / eps)


def logit_gap(logits: torch.Tensor) -> torch.Tensor:
    """How far the largest logit stands above the others: max minus the mean of the rest.

    At the minimum of the smoothed loss all non-target logits are equal, so this is
    the quantity :func:`optimal_logit_gap` predicts; with hard targets it grows
    without bound during training.

    Args:
        logits (Tensor): unnormalized scores.

    Returns:
        Tensor: the gap of each row.

    Shape:
        - logits: ``(N, K)`` or ``(K,)``, with ``K >= 2``
        - output: ``(N,)`` or ``()``

    Used in:
        chapter "Label smoothing".
    """
    _check_logits(logits)
    k = logits.shape[-1]
    top = logits.max(dim=-1).values
    rest_mean = (logits.sum(dim=-1) - top) / (k - 1)
    return top - rest_mean


class LabelSmoothingLoss(nn.Module):
    """Cross-entropy with label-smoothed targets, as a module (see :func:`smoothed_cross_entropy`).

    With ``variant="uniform"`` it matches ``nn.CrossEntropyLoss(label_smoothing=eps)``.
    Like torch's loss modules it behaves the same in ``train()`` and ``eval()`` mode:
    to evaluate a model on hard targets, use ``eps=0`` or plain cross-entropy.

    Args:
        eps (float): the smoothing strength, in ``[0, 1]``. Default: ``0.1``.
        reduction (str): ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        variant (str): ``"uniform"`` or ``"others"``. Default: ``"uniform"``.

    Shape:
        - input: ``(N, K)`` or ``(K,)`` logits
        - target: ``(N,)`` or ``()`` class indices
        - output: ``(N,)`` (or ``()``) for ``"none"``, else ``()``

    Example:
        >>> LabelSmoothingLoss(eps=0.1)
        LabelSmoothingLoss(eps=0.1, reduction='mean', variant='uniform')

    Used in:
        chapter "Label smoothing".
    """

    def __init__(self, eps: float = 0.1, reduction: str = "mean", variant: str = "uniform") -> None:
        super().__init__()
        self.eps = _check_eps(eps)
        self.reduction = _check_reduction(reduction)
        self.variant = _check_variant(variant)

    @layer_forward
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: A002
        return smoothed_cross_entropy(input, target, self.eps, self.reduction, variant=self.variant)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}, variant={self.variant!r}"
