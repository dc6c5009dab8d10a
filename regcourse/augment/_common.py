"""Helpers shared by the augmentation modules: image-batch checks and small conversions."""

from __future__ import annotations

import torch

from .._checks import check_scalar, check_tensor

_LUMA = (0.299, 0.587, 0.114)


def _images(x, name: str = "x", single_ok: bool = True) -> tuple[torch.Tensor, bool]:
    """Check an image batch; return it as ``(N, C, H, W)`` and whether it was one image."""
    check_tensor(x, name, ndim=(3, 4) if single_ok else 4)
    if x.dim() == 3:
        return x.unsqueeze(0), True
    return x, False


def _unbatch(x: torch.Tensor, single: bool) -> torch.Tensor:
    return x[0] if single else x


def _per_example(value, name: str, n: int, dtype) -> torch.Tensor:
    """A float or a tensor of ``n`` values as a float tensor of shape ``(n,)``."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        check_tensor(value, name, ndim=1, floating=False)
        if len(value) != n:
            raise ValueError(f"{name} must hold one value per example ({n}), got {len(value)}")
        if not bool(torch.isfinite(value.double()).all()):
            raise ValueError(f"{name} must be finite, got a tensor containing NaN or inf")
        return value.to(dtype)
    return torch.full((n,), check_scalar(value, name), dtype=dtype)


def _interval(value, name: str, low: float, high: float | None) -> tuple[float, float]:
    """A pair ``(lo, hi)`` with ``low <= lo <= hi <= high``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (low, high), got {value!r}")
    lo = check_scalar(value[0], f"{name}[0]", low=low, high=high, closed="right")
    hi = check_scalar(value[1], f"{name}[1]", low=low, high=high, closed="right")
    if lo > hi:
        raise ValueError(f"{name} must satisfy {name}[0] <= {name}[1], got {tuple(value)}")
    return lo, hi


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma of an RGB batch, shape ``(N, 1, H, W)``."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
