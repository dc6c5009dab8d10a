"""Stochastic depth: skip whole residual blocks at random while training.

A residual block computes ``y = x + f(x)``. Stochastic depth (Huang et al., 2016)
multiplies the residual branch by a random ``b ~ Bernoulli(1 - p)`` while training,
so with probability ``p`` the block is skipped and passes ``x`` through its skip
connection unchanged. As everywhere in :mod:`regcourse`, ``p`` is the probability
of *dropping* (here: skipping the block), and ``1 - p`` is its survival probability.

Two conventions make the training-time output agree with the inference-time
output in expectation:

- ``"train_scale"`` (timm, torchvision; the analogue of inverted dropout): kept
  residuals are divided by ``1 - p`` while training, and nothing is scaled at inference.
- ``"test_scale"`` (Huang et al.'s original): no scaling while training, and at
  inference the residual branch is multiplied by the survival probability ``1 - p``.

The function :func:`drop_path` and the module :class:`DropPath` follow timm's
``drop_path``/``DropPath``: one keep/drop decision per example of the batch.

Used in:
    chapter "DropConnect and stochastic depth".
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import (
    check_binary_mask,
    check_bool,
    check_choice,
    check_generator,
    check_probability,
    check_scalar,
    check_tensor,
    layer_forward,
)

__all__ = [
    "MODES",
    "apply_drop_path_mask",
    "drop_path",
    "DropPath",
    "ResidualBlock",
    "linear_decay_survival",
]

#: The two scaling conventions of stochastic depth (see the module docstring).
MODES = ("train_scale", "test_scale")
_ACTIVATIONS = {"relu": nn.ReLU, "identity": nn.Identity}


_check_p = check_probability  # p = 1 would always skip the block (and 1/(1 − p) divides by zero)
_check_bool = check_bool


def _check_mode(mode) -> str:
    return check_choice(mode, "mode", MODES)


def _batch_shape(x: torch.Tensor) -> tuple[int, ...]:
    # one entry per example, broadcast over every other dimension
    return (x.shape[0],) + (1,) * (x.dim() - 1)


def apply_drop_path_mask(
    x: torch.Tensor, mask: torch.Tensor, p: float, scale_by_keep: bool = True
) -> torch.Tensor:
    """Drop path with a given per-example mask: example ``n`` is kept if ``mask[n] = 1``.

    Kept examples are divided by ``1 - p`` if ``scale_by_keep`` (the
    ``"train_scale"`` convention), dropped examples become all zeros.

    Args:
        x (Tensor): a batch, floating point, batch dimension first.
        mask (Tensor): ``(N,)`` with only 0s (dropped) and 1s (kept); any dtype.
        p (float): the drop probability the mask was drawn with, in ``[0, 1)``.
        scale_by_keep (bool): divide kept examples by ``1 - p``. Default: ``True``.

    Returns:
        Tensor like ``x``.

    Shape:
        x: ``(N, *)``; mask: ``(N,)``; output: ``(N, *)``.

    Example:
        >>> apply_drop_path_mask(torch.ones(3, 2), torch.tensor([1, 0, 1]), p=0.5)
        tensor([[2., 2.],
                [0., 0.],
                [2., 2.]])

    Used in:
        chapter "DropConnect and stochastic depth".
    """
    check_tensor(x, "x", nonempty=False)
    if x.dim() < 1:
        raise ValueError(f"x must have a batch dimension, got shape {tuple(x.shape)}")
    check_tensor(mask, "mask", ndim=1, floating=False, nonempty=False)
    if mask.shape[0] != x.shape[0]:
        raise ValueError(
            f"mask must have one entry per example ({x.shape[0]}), got shape {tuple(mask.shape)}"
        )
    p = _check_p(p)
    _check_bool(scale_by_keep, "scale_by_keep")
    check_binary_mask(mask, "mask")
    keep = mask.to(dtype=x.dtype, device=x.device).reshape(_batch_shape(x))
    if scale_by_keep:
        keep = keep / (1.0 - p)
    return x * keep


def drop_path(
    x: torch.Tensor,
    p: float,
    training: bool = True,
    scale_by_keep: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Drop whole examples of a residual branch's output with probability ``p`` (stochastic depth).

    One Bernoulli(``1 - p``) draw per example (the batch dimension), shared by all
    its other dimensions: an example's residual is either kept entirely or zeroed
    entirely. With ``scale_by_keep`` kept residuals are divided by ``1 - p``, so
    the expected output equals ``x`` (the ``"train_scale"`` convention). When
    ``training`` is ``False`` or ``p`` is 0 the input is returned unchanged.

    Modeled on timm's ``drop_path``; unlike timm, ``training`` defaults to ``True``
    as in our :func:`regcourse.dropout.dropout` and :func:`torch.nn.functional.dropout`.

    Args:
        x (Tensor): the residual branch's output, floating point, batch dimension first.
        p (float): probability of dropping (skipping) the path for an example, in ``[0, 1)``.
        training (bool): drop paths if ``True``; return ``x`` if ``False``. Default: ``True``.
        scale_by_keep (bool): divide kept examples by ``1 - p``. Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        Input: ``(N, *)``. Output: ``(N, *)``.

    Used in:
        chapter "DropConnect and stochastic depth".
    """
    from .dropout import dropout_mask

    check_tensor(x, "x", nonempty=False)
    if x.dim() < 1:
        raise ValueError(f"x must have a batch dimension, got shape {tuple(x.shape)}")
    p = _check_p(p)
    _check_bool(training, "training")
    _check_bool(scale_by_keep, "scale_by_keep")
    generator = check_generator(generator)
    if not training or p == 0.0:
        return x
    keep = dropout_mask(_batch_shape(x), p, generator, dtype=x.dtype, device=x.device)
    if scale_by_keep:
        keep = keep / (1.0 - p)
    return x * keep


class DropPath(nn.Module):
    """Drop path (stochastic depth) as a layer, for the residual branch; the identity in ``eval()``.

    A thin wrapper over :func:`drop_path`, like timm's ``DropPath``. ``p`` is the
    probability of dropping the path for an example.

    Args:
        p (float): drop probability, in ``[0, 1)``. Default: ``0.0``.
        scale_by_keep (bool): divide kept examples by ``1 - p``. Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Shape:
        Input: ``(N, *)``. Output: the same shape.

    Example:
        >>> DropPath(0.1)
        DropPath(p=0.1, scale_by_keep=True)

    Used in:
        chapter "DropConnect and stochastic depth".
    """

    def __init__(
        self, p: float = 0.0, scale_by_keep: bool = True, generator: torch.Generator | None = None
    ):
        super().__init__()
        self.p = _check_p(p)
        self.scale_by_keep = _check_bool(scale_by_keep, "scale_by_keep")
        self.generator = check_generator(generator)

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training, self.scale_by_keep, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p:g}, scale_by_keep={self.scale_by_keep}"


class ResidualBlock(nn.Module):
    """A residual block with stochastic depth: ``y = x + b * f(x)``, one ``b ~ Bernoulli(1 - p)``
    per example.

    ``mode`` chooses where the correction for the dropped blocks goes:

    ============== ============================== =============================
    mode           training (``train()``)         inference (``eval()``)
    ============== ============================== =============================
    "train_scale"  ``x + b * f(x) / (1 - p)``     ``x + f(x)``
    "test_scale"   ``x + b * f(x)``               ``x + (1 - p) * f(x)``
    ============== ============================== =============================

    Both have ``E[training output] = inference output`` for a fixed input ``x``.
    ``"train_scale"`` is what timm and torchvision do; ``"test_scale"`` is Huang et
    al.'s original formulation. (Huang et al. also apply a ReLU after the sum and
    draw one ``b`` per mini-batch; we keep the pre-activation form ``x + f(x)`` and
    draw one ``b`` per example, as timm does.)

    Args:
        branch (nn.Module): the residual function ``f``; must keep the shape of its input.
        p (float): probability of skipping the block, in ``[0, 1)``. Default: ``0.0``.
        mode (str): ``"train_scale"`` or ``"test_scale"``. Default: ``"train_scale"``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Shape:
        Input: ``(N, *)``. Output: the same shape.

    Used in:
        chapter "DropConnect and stochastic depth".
    """

    def __init__(
        self,
        branch: nn.Module,
        p: float = 0.0,
        mode: str = "train_scale",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(branch, nn.Module):
            raise TypeError(f"branch must be an nn.Module, got {type(branch).__name__}")
        self.branch = branch
        self.p = _check_p(p)
        self.mode = _check_mode(mode)
        self.generator = check_generator(generator)

    @property
    def survival(self) -> float:
        """The probability ``1 - p`` that the block is active during training."""
        return 1.0 - self.p

    @layer_forward
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x + b * f(x)`` (scaled by the mode's rule).

        Args:
            x (Tensor): the input, batch dimension first.
            mask (Tensor, optional): an explicit ``(N,)`` 0/1 keep mask; the block then
                computes its *training* output with this mask whatever its mode
                (used to enumerate the sub-networks exactly). Default: ``None``.
        """
        out = self.branch(x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"branch must return a tensor of its input's shape {tuple(x.shape)}, got {got}"
            )
        train_scale = self.mode == "train_scale"
        if mask is not None:
            out = apply_drop_path_mask(out, mask, self.p, scale_by_keep=train_scale)
        elif self.training:
            out = drop_path(out, self.p, True, scale_by_keep=train_scale, generator=self.generator)
        elif not train_scale:
            out = out * (1.0 - self.p)
        return x + out

    def extra_repr(self) -> str:
        return f"p={self.p:g}, mode={self.mode!r}"


def linear_decay_survival(num_blocks: int, survival_last: float = 0.5) -> torch.Tensor:
    """Survival probabilities decaying linearly with depth (Huang et al.'s rule).

    Block ``l = 1, ..., L`` survives with probability
    ``p_l = 1 - (l / L) * (1 - p_L)``: early blocks, which compute the low-level
    features every later block needs, are almost always kept, and the last block
    survives with probability ``p_L``.

    Note: here ``survival_last`` is Huang et al.'s ``p_L``, a *survival* probability (the
    block's drop probability is ``1 - p_l``); elsewhere in ``regcourse`` ``p`` is the
    probability of dropping.

    Args:
        num_blocks (int): the number of residual blocks ``L`` (at least 1).
        survival_last (float): survival probability of the last block, in ``(0, 1]``.
            Default: ``0.5`` (Huang et al.'s choice).

    Returns:
        Tensor of ``L`` survival probabilities (float64), block 1 first.

    Example:
        >>> linear_decay_survival(4, 0.5)
        tensor([0.8750, 0.7500, 0.6250, 0.5000], dtype=torch.float64)

    Used in:
        chapter "DropConnect and stochastic depth".
    """
    num_blocks = check_scalar(num_blocks, "num_blocks", kind="int", low=1)
    survival_last = check_scalar(survival_last, "survival_last", low=0.0, high=1.0, closed="right")
    depth = torch.arange(1, num_blocks + 1, dtype=torch.float64)
    return 1.0 - depth / num_blocks * (1.0 - survival_last)


def __getattr__(name: str):
    # The residual MLP lives with the other models (regcourse.models); these names stay
    # importable from here, where the chapter "DropConnect and stochastic depth" finds them.
    if name in ("ResidualMLP", "build_residual_mlp"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
