"""Random helpers shared by the package: a seeded block, Gamma and Beta samplers that take a generator.

- :func:`seeded`: run a block with torch's global generator seeded, then restore it
  (models initialise their weights from it; ``train()`` draws dropout masks from it).
- :func:`sample_gamma`, :func:`sample_beta`: ``torch.distributions.Gamma``/``Beta`` cannot
  draw from a ``torch.Generator``, so Mixup's and CutMix's λ would not be reproducible
  from one; these samplers use only ``torch.randn``/``torch.rand`` with the generator.
"""

from __future__ import annotations

import contextlib
import math

import torch

from ._checks import check_generator, check_scalar, check_shape

__all__ = ["seeded", "sample_gamma", "sample_beta"]


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with torch's global generator seeded to ``seed``, then restore its state.

    Example:
        >>> with seeded(0):
        ...     a = torch.rand(2)
        >>> with seeded(0):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b)
        True
    """
    seed = check_scalar(seed, "seed", kind="int", low=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _log_gamma_parts(
    concentration: float, n: int, generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log G`` for ``n`` Gamma(concentration, 1) variates, as ``(base, log_u)`` (float64).

    Marsaglia & Tsang's (2000) squeeze-and-reject method, drawing normal and uniform
    numbers from ``generator``. For ``concentration < 1`` it samples
    ``Gamma(concentration + 1)`` and multiplies by ``U^(1/concentration)``: then
    ``log G = base + log_u / concentration`` with ``log_u = log U`` returned separately
    (``None`` when ``concentration >= 1``, where ``log G = base``), because for a tiny
    concentration ``log_u / concentration`` overflows to ``-inf`` and only the
    comparison of two such terms (:func:`sample_beta`) stays meaningful.
    """
    a = concentration
    boosted = a < 1
    d = (a + 1 if boosted else a) - 1 / 3
    c = 1 / math.sqrt(9 * d)
    out = torch.empty(n, dtype=torch.float64)
    pending = torch.arange(n)
    while len(pending):
        m = len(pending)
        z = torch.randn(m, generator=generator, dtype=torch.float64)
        u = torch.rand(m, generator=generator, dtype=torch.float64)
        v = (1 + c * z) ** 3
        safe_v = torch.where(v > 0, v, torch.ones_like(v))
        accept = (v > 0) & (torch.log(u) < 0.5 * z**2 + d - d * safe_v + d * torch.log(safe_v))
        out[pending[accept]] = math.log(d) + torch.log(safe_v[accept])
        pending = pending[~accept]
    if boosted:
        return out, torch.log(torch.rand(n, generator=generator, dtype=torch.float64))
    return out, None


def _log_gamma(concentration: float, n: int, generator) -> torch.Tensor:
    base, log_u = _log_gamma_parts(concentration, n, generator)
    return base if log_u is None else base + log_u / concentration


_size = check_shape


def sample_gamma(
    concentration: float, shape=(), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gamma(concentration, 1) variates drawn from ``generator`` (float64).

    Args:
        concentration (float): the shape parameter, ``> 0``. Mean and variance both equal it.
        shape (int or tuple): output shape. Default: ``()`` (a 0-dimensional tensor).
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Returns:
        Tensor of the given shape, dtype float64. For a concentration so small that a
        variate is below the smallest float64, that entry is 0.

    Example:
        >>> sample_gamma(2.0, (3,), torch.Generator().manual_seed(0)).shape
        torch.Size([3])

    Used in:
        chapter "Data augmentation".
    """
    concentration = check_scalar(concentration, "concentration", low=0, closed="neither")
    check_generator(generator)
    shape = _size(shape)
    return torch.exp(_log_gamma(concentration, math.prod(shape), generator)).view(shape)


def sample_beta(
    a: float, b: float, shape=(), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Beta(a, b) variates drawn from ``generator`` (float64), as ``X / (X + Y)``.

    With ``X ~ Gamma(a)`` and ``Y ~ Gamma(b)`` independent, ``X / (X + Y) ~ Beta(a, b)``.
    Computed as ``sigmoid(log X − log Y)`` so that small ``a, b`` (where both Gamma
    variates can be tiny) give no ``0 / 0``; for parameters so small that both
    logarithms overflow to ``−∞`` (e.g. ``a = b = 1e-310``) the result is 0 or 1 by
    which of them is smaller, the limit of Beta(a, b) as its parameters go to 0. Mean
    ``a / (a + b)``, variance ``ab / ((a + b)² (a + b + 1))``.

    Args:
        a, b (float): the two shape parameters, ``> 0``. Mixup uses ``a = b = α``.
        shape (int or tuple): output shape. Default: ``()``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Returns:
        Tensor of the given shape, dtype float64, values in ``[0, 1]`` (never NaN).

    Example:
        >>> lam = sample_beta(1e-310, 1e-310, (1000,), torch.Generator().manual_seed(0))
        >>> bool(((lam == 0) | (lam == 1)).all())        # the alpha -> 0 limit: 0 or 1
        True

    Used in:
        chapter "Data augmentation" (Mixup's and CutMix's λ).
    """
    a = check_scalar(a, "a", low=0, closed="neither")
    b = check_scalar(b, "b", low=0, closed="neither")
    check_generator(generator)
    shape = _size(shape)
    n = math.prod(shape)
    base_x, lu_x = _log_gamma_parts(a, n, generator)
    base_y, lu_y = _log_gamma_parts(b, n, generator)
    log_x = base_x if lu_x is None else base_x + lu_x / a
    log_y = base_y if lu_y is None else base_y + lu_y / b
    diff = log_x - log_y
    both = torch.isnan(diff)  # -inf - (-inf): both u-terms overflowed (both a, b tiny)
    if bool(both.any()):
        # log X < log Y  <=>  lu_x / a < lu_y / b  <=>  lu_x * (b / a) < lu_y (a, b > 0)
        x_smaller = lu_x[both] * (b / a) < lu_y[both]
        diff[both] = torch.where(x_smaller, -math.inf, math.inf).to(diff.dtype)
    return torch.sigmoid(diff).view(shape)
