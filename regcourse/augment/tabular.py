"""Tabular augmentation: SMOTE-style oversampling of a minority class.

Used in:
    chapter "Data augmentation".
"""

from __future__ import annotations

import torch

from .._checks import check_generator, check_scalar, check_tensor

__all__ = [
    "smote",
]


def smote(
    x: torch.Tensor,
    n_new: int,
    k: int = 5,
    generator: torch.Generator | None = None,
    return_params: bool = False,
):
    """SMOTE-style oversampling: new points on segments between minority-class neighbours.

    For each new point: pick a minority example ``x_b`` at random, one of its ``k``
    nearest other minority examples ``x_m`` (Euclidean) at random, and ``u ~ U(0, 1)``;
    the point is ``x_b + u·(x_m − x_b)`` (Chawla et al., 2002).

    Args:
        x (Tensor): the minority class's examples ``(N, D)``, ``N >= 2``.
        n_new (int): number of synthetic examples, ``>= 0``.
        k (int): neighbours considered, ``1 <= k <= N − 1``. Default: ``5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_params (bool): also return ``{"base", "neighbour", "u"}``. Default: ``False``.

    Returns:
        Tensor ``(n_new, D)`` of synthetic examples (and the parameters if asked).

    Used in:
        chapter "Data augmentation".
    """
    check_tensor(x, "x", ndim=2)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples, got {len(x)}")
    n_new = check_scalar(n_new, "n_new", kind="int", low=0)
    k = check_scalar(k, "k", kind="int", low=1, high=len(x) - 1)
    check_generator(generator)
    dist = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    dist.fill_diagonal_(float("inf"))
    neighbours = dist.topk(k, dim=1, largest=False).indices  # (N, k)
    base = torch.randint(0, len(x), (n_new,), generator=generator)
    pick = torch.randint(0, k, (n_new,), generator=generator)
    u = torch.rand(n_new, 1, generator=generator, dtype=x.dtype)
    partner = neighbours[base, pick]
    out = x[base] + u * (x[partner] - x[base])
    if return_params:
        return out, {"base": base, "neighbour": partner, "u": u[:, 0]}
    return out
