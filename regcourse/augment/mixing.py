"""Mixing: Mixup and CutMix, which blend pairs of examples and their labels.

Their weight λ is drawn with :func:`regcourse.augment.sample_beta`, a Beta sampler that
takes a ``torch.Generator`` (``torch.distributions.Beta`` cannot).

Used in:
    chapter "Data augmentation".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_generator, check_scalar, check_tensor, validate_args_enabled
from .._random import sample_beta

__all__ = [
    "mixup",
    "cutmix_box",
    "cutmix",
]


def _soft_labels(y, num_classes: int, n: int, dtype) -> torch.Tensor:
    """Class indices ``(N,)`` as one-hot rows, or soft labels ``(N, K)`` checked and cast."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if len(y) != n:
        raise ValueError(f"x and y must have the same length, got {n} and {len(y)}")
    if y.dim() == 1 and not y.is_floating_point():
        if y.dtype == torch.bool:
            raise TypeError(
                "y must hold integer class indices or float soft labels, got dtype torch.bool"
            )
        bad = (y < 0) | (y >= num_classes) if validate_args_enabled() else None
        if bad is not None and bool(bad.any()):
            raise ValueError(
                f"y must hold class indices in [0, {num_classes}), got {y[bad][0].item()}"
            )
        return F.one_hot(y.long(), num_classes).to(dtype)  # any integer dtype, as torch indexes
    if y.dim() == 2 and y.is_floating_point():
        check_tensor(y, "y")
        if y.shape[1] != num_classes:
            raise ValueError(f"y must have num_classes = {num_classes} columns, got {y.shape[1]}")
        if bool((y < 0).any()) or not torch.allclose(
            y.sum(1), torch.ones(n, dtype=y.dtype), atol=1e-4
        ):
            raise ValueError("y must hold probability rows (non-negative, summing to 1)")
        return y.to(dtype)
    raise ValueError(
        f"y must be class indices of shape (N,) or soft labels of shape (N, num_classes), "
        f"got shape {tuple(y.shape)} and dtype {y.dtype}"
    )


def _partners(index, n: int) -> torch.Tensor | None:
    """Check an explicit pairing: ``None`` or a long tensor of ``n`` indices in ``[0, n)``."""
    if index is None:
        return None
    if not isinstance(index, torch.Tensor) or index.dtype != torch.long:
        got = getattr(index, "dtype", type(index).__name__)
        raise TypeError(f"index must be a long tensor or None, got {got}")
    if index.shape != (n,):
        raise ValueError(f"index must have shape ({n},), got {tuple(index.shape)}")
    bad = (index < 0) | (index >= n) if validate_args_enabled() else None
    if bad is not None and bool(bad.any()):
        raise ValueError(f"index must hold example indices in [0, {n}), got {index[bad][0].item()}")
    return index


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    alpha: float = 0.2,
    generator: torch.Generator | None = None,
    return_params: bool = False,
    index: torch.Tensor | None = None,
):
    """Mixup (Zhang et al., 2018): blend pairs of images and their labels with one weight λ.

    Draws ``λ ~ Beta(α, α)`` (with :func:`sample_beta`) and a random permutation ``j`` of
    the batch, then returns ``x̃_i = λ·x_i + (1 − λ)·x_j(i)`` and
    ``ỹ_i = λ·y_i + (1 − λ)·y_j(i)`` with one-hot (or already soft) labels. One λ for
    the whole batch, as in the paper's implementation.

    Args:
        x (Tensor): images ``(N, C, H, W)`` (any float batch with ``N`` first works too).
        y (Tensor): class indices ``(N,)`` or soft labels ``(N, num_classes)``.
        num_classes (int): number of classes, ``>= 2``.
        alpha (float): the Beta distribution's parameter, ``> 0``; small values keep
            most λ near 0 or 1. Default: ``0.2``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_params (bool): also return ``{"lam": λ, "index": j}``. Default: ``False``.
        index (Tensor, optional): the partner ``j(i)`` of each example, a long tensor
            ``(N,)``; ``None`` draws a random permutation from ``generator``. Default: ``None``.

    Returns:
        ``(x̃, ỹ)``: mixed images (same shape and dtype as ``x``) and soft labels
        ``(N, num_classes)`` whose rows sum to 1 (and the parameters if asked).

    Used in:
        chapter "Data augmentation".
    """
    check_tensor(x, "x", ndim=(2, 3, 4))
    num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
    alpha = check_scalar(alpha, "alpha", low=0, closed="neither")
    check_generator(generator)
    y_soft = _soft_labels(y, num_classes, len(x), x.dtype)
    index = _partners(index, len(x))
    lam = float(sample_beta(alpha, alpha, generator=generator))
    if index is None:
        index = torch.randperm(len(x), generator=generator)
    x_mix = lam * x + (1 - lam) * x[index]
    y_mix = lam * y_soft + (1 - lam) * y_soft[index]
    if return_params:
        return x_mix, y_mix, {"lam": lam, "index": index}
    return x_mix, y_mix


def cutmix_box(h: int, w: int, center: tuple[int, int], size: tuple[int, int]):
    """CutMix's box clipped at the borders, and the label weight it implies.

    The box of ``size = (box_h, box_w)`` pixels has its pixel ``center = (cy, cx)`` at
    offset ``(box_h // 2, box_w // 2)``: rows ``cy − box_h // 2`` to ``cy − box_h // 2 + box_h``
    (end excluded), likewise columns, each clipped to the image.

    Returns:
        ``((top, left, bottom, right), lam)`` with ``lam = 1 − (bottom − top)(right − left) / (h·w)``,
        the fraction of pixels that keep the original image.

    Example:
        >>> cutmix_box(8, 8, center=(1, 6), size=(4, 4))
        ((0, 4, 3, 8), 0.8125)
    """
    h = check_scalar(h, "h", kind="int", low=1)
    w = check_scalar(w, "w", kind="int", low=1)
    if len(center) != 2 or len(size) != 2:
        raise ValueError(f"center and size must be pairs, got {center!r} and {size!r}")
    cy = check_scalar(center[0], "center[0]", kind="int", low=0, high=h - 1)
    cx = check_scalar(center[1], "center[1]", kind="int", low=0, high=w - 1)
    bh = check_scalar(size[0], "size[0]", kind="int", low=0, high=h)
    bw = check_scalar(size[1], "size[1]", kind="int", low=0, high=w)
    top, bottom = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, h)
    left, right = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, w)
    return (top, left, bottom, right), 1 - (bottom - top) * (right - left) / (h * w)


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    alpha: float = 1.0,
    generator: torch.Generator | None = None,
    return_params: bool = False,
    index: torch.Tensor | None = None,
):
    """CutMix (Yun et al., 2019): paste a box from a partner image, mix labels by area.

    Draws ``λ₀ ~ Beta(α, α)``, a box of ``⌊H·√(1 − λ₀)⌋ × ⌊W·√(1 − λ₀)⌋`` pixels whose
    centre is uniform over all pixels, clips the box at the borders, and pastes that
    region of ``x_j(i)`` (``j`` a random permutation) into ``x_i``. The label weight is
    recomputed from the box *after clipping*, so it is exactly the fraction of pixels
    that still come from ``x_i``:

        λ = 1 − (box height · box width) / (H · W),   ỹ_i = λ·y_i + (1 − λ)·y_j(i).

    One box and one λ per batch, as in the paper's implementation.

    Args:
        x (Tensor): images ``(N, C, H, W)``.
        y (Tensor): class indices ``(N,)`` or soft labels ``(N, num_classes)``.
        num_classes (int): number of classes, ``>= 2``.
        alpha (float): the Beta distribution's parameter, ``> 0``. Default: ``1.0``
            (λ₀ uniform on [0, 1]).
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_params (bool): also return ``{"lam": λ, "lam0": λ₀, "center": (cy, cx),
            "size": (box_h, box_w), "box": (top, left, bottom, right), "index": j}`` (the
            box after clipping, rows ``top:bottom`` and columns ``left:right``, see
            :func:`cutmix_box`). Default: ``False``.
        index (Tensor, optional): the partner ``j(i)`` of each example; ``None`` draws a
            random permutation from ``generator``. Default: ``None``.

    Returns:
        ``(x̃, ỹ)`` as for :func:`mixup` (and the parameters if asked).

    Used in:
        chapter "Data augmentation".
    """
    check_tensor(x, "x", ndim=4)
    num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
    alpha = check_scalar(alpha, "alpha", low=0, closed="neither")
    check_generator(generator)
    n, _, h, w = x.shape
    y_soft = _soft_labels(y, num_classes, n, x.dtype)
    index = _partners(index, n)
    lam0 = float(sample_beta(alpha, alpha, generator=generator))
    cut = math.sqrt(1 - lam0)
    size = (int(h * cut), int(w * cut))
    cy = int(torch.randint(0, h, (1,), generator=generator))
    cx = int(torch.randint(0, w, (1,), generator=generator))
    center = (cy, cx)
    (top, left, bottom, right), lam = cutmix_box(h, w, center, size)
    if index is None:
        index = torch.randperm(n, generator=generator)
    x_mix = x.clone()
    x_mix[:, :, top:bottom, left:right] = x[index, :, top:bottom, left:right]
    y_mix = lam * y_soft + (1 - lam) * y_soft[index]
    if return_params:
        return (
            x_mix,
            y_mix,
            {
                "lam": lam,
                "lam0": lam0,
                "center": center,
                "size": size,
                "box": (top, left, bottom, right),
                "index": index,
            },
        )
    return x_mix, y_mix
