"""Batch normalization from scratch, and the noise its mini-batch statistics inject.

In training mode batch norm normalises every feature (channel) with the mean
and the *biased* variance of the current mini-batch, then scales and shifts it
with the learned ``weight`` (γ) and ``bias`` (β). It also keeps running averages
of the mean and of the *unbiased* variance, which replace the batch statistics
in evaluation mode. This is exactly what :func:`torch.nn.functional.batch_norm`
and :class:`torch.nn.BatchNorm1d` do; the tests check it.

The batch statistics are estimates from ``B`` examples, so they change from one
mini-batch to the next: :func:`batch_stat_noise` measures how much, and
:func:`loglog_slope` fits the power law (the standard deviation of the batch
mean falls like ``1/√B``).

Layer norm (:func:`layer_norm`, :class:`LayerNorm`) and group norm
(:func:`group_norm`, :class:`GroupNorm`) normalise each *example* with its own
statistics instead, so they behave the same in training and evaluation and for any
batch size, including 1: the small-batch alternative.

Dtypes follow torch's rules on the CPU: a float16 or bfloat16 input is computed in
float32 and returned in its own dtype (the layer's parameters may be float32, as
after ``model.half()`` of only the input); otherwise the input and the parameters
must share one dtype, and a mismatch (a ``.double()`` layer fed float32) is a
``TypeError``, where torch raises a ``RuntimeError``, instead of a silent float64
result.

Our batch-norm layers subclass torch's ``_BatchNorm``, so torch's tools that look
for batch norm (``torch.optim.swa_utils.update_bn``, which resets the running
statistics and re-estimates them with ``momentum=None``) treat them as torch's own.

Used in:
    chapter "Batch normalization as a regularizer".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ._checks import (
    check_bool,
    check_float_dtype,
    check_generator,
    check_scalar,
    check_tensor,
    layer_forward,
)

__all__ = [
    "batch_norm",
    "BatchNorm1d",
    "BatchNorm2d",
    "layer_norm",
    "LayerNorm",
    "group_norm",
    "GroupNorm",
    "ghost_batch_norm",
    "GhostBatchNorm1d",
    "BatchStatNoise",
    "batch_stat_noise",
    "loglog_slope",
]


def _check_momentum(momentum) -> float:
    return check_scalar(momentum, "momentum", low=0.0, high=1.0)


def _check_eps(eps) -> float:
    return check_scalar(eps, "eps", low=0.0, closed="neither")


_check_bool = check_bool
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(x: torch.Tensor, others: dict) -> torch.dtype:
    """The dtype to compute in, by torch's CPU rule (see the module docstring).

    ``others`` maps names to the tensors (or ``None``) that meet ``x``: parameters and
    running statistics. Half and bfloat16 inputs are computed in float32.
    """
    mismatched = {n: t.dtype for n, t in others.items() if t is not None and t.dtype != x.dtype}
    if mismatched:
        if not (x.dtype in _LOW_PRECISION and set(mismatched.values()) == {torch.float32}):
            name, dtype = next(iter(mismatched.items()))
            raise TypeError(
                f"mixed dtype: x is {x.dtype} but {name} is {dtype}; convert the layer "
                f"(e.g. layer.to({x.dtype})) or the input (x.to({dtype}))"
            )
    return torch.float32 if x.dtype in _LOW_PRECISION else x.dtype


def _check_channel_vector(t, name: str, num_channels: int, x: torch.Tensor) -> torch.Tensor | None:
    """``None``, or a floating 1-D tensor of ``num_channels`` entries on ``x``'s device."""
    if t is None:
        return None
    check_tensor(t, name, ndim=1)
    if t.shape[0] != num_channels:
        raise ValueError(
            f"{name} must have {num_channels} elements (one per channel of x, shape "
            f"{tuple(x.shape)}), got {t.shape[0]}"
        )
    if t.device != x.device:
        raise ValueError(f"{name} must be on x's device {x.device}, got {t.device}")
    return t


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    r"""Batch normalization over every dimension except the channel dimension 1.

    For each channel ``c``, with ``m`` values ``x_1 … x_m`` of that channel in the
    batch (``m = N`` for ``(N, C)`` input, ``N·L`` or ``N·H·W`` otherwise):

    - training (``training=True``): normalise with the batch statistics

      .. math::
          \mu_B = \frac1m\sum_i x_i,\quad
          \sigma_B^2 = \frac1m\sum_i (x_i-\mu_B)^2,\quad
          \hat x_i = \frac{x_i-\mu_B}{\sqrt{\sigma_B^2+\epsilon}},\quad
          y_i = \gamma\,\hat x_i + \beta,

      and, if running buffers are given, update them *in place*:
      ``running_mean ← (1 − momentum)·running_mean + momentum·μ_B`` and
      ``running_var ← (1 − momentum)·running_var + momentum·σ_B²·m/(m − 1)``
      (the variance stored is the *unbiased* one, as torch stores it);
    - evaluation (``training=False``): normalise with ``running_mean`` and
      ``running_var`` instead; nothing is updated and the output of one example
      no longer depends on the rest of the batch.

    Gradients flow to ``x``, ``weight`` and ``bias`` (through the batch statistics
    too, in training mode); the running buffers are updated without gradient.

    Args:
        x (Tensor): input of shape ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``, floating point.
        running_mean (Tensor or None): ``(C,)`` running mean; ``None`` (together with
            ``running_var``) means no running statistics: training mode then updates
            nothing, and ``training=False`` is an error.
        running_var (Tensor or None): ``(C,)`` running (unbiased) variance, or ``None``.
        weight (Tensor, optional): ``(C,)`` scale γ. Default: ``None`` (γ = 1).
        bias (Tensor, optional): ``(C,)`` shift β. Default: ``None`` (β = 0).
        training (bool): use batch statistics and update the running ones. Default: ``False``.
        momentum (float): weight of the new batch statistic in the running average,
            in ``[0, 1]``. Default: ``0.1`` (torch's default; note that this is
            ``1 −`` the "momentum" of an optimizer).
        eps (float): added to the variance for numerical stability, ``> 0``. Default: ``1e-5``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Raises:
        ValueError: for a bad shape or argument, or a training batch with a single
            value per channel (its variance is zero: ``x̂`` would be 0 for every input),
            with the message torch uses.

    Shape:
        - Input: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.
        - Output: the same shape.

    Example:
        >>> x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
        >>> rm, rv = torch.zeros(1), torch.ones(1)
        >>> batch_norm(x, rm, rv, training=True).squeeze(1)   # μ_B = 3, σ_B² = 3.5
        tensor([-1.0690, -0.5345,  0.0000,  1.6036])
        >>> rm, rv   # 0.9·0 + 0.1·3 and 0.9·1 + 0.1·(3.5·4/3)
        (tensor([0.3000]), tensor([1.3667]))

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    check_tensor(x, "x", ndim=(2, 3, 4))
    training = _check_bool(training, "training")
    momentum = _check_momentum(momentum)
    eps = _check_eps(eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    c = x.shape[1]
    running_mean = _check_channel_vector(running_mean, "running_mean", c, x)
    running_var = _check_channel_vector(running_var, "running_var", c, x)
    weight = _check_channel_vector(weight, "weight", c, x)
    bias = _check_channel_vector(bias, "bias", c, x)
    if not training and running_mean is None:
        raise ValueError("running_mean and running_var must be given when training=False")
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(
    x, running_mean, running_var, weight, bias, training: bool, momentum: float, eps: float
):
    """:func:`batch_norm` without the argument checks (for layers that own their tensors).

    Two passes over ``x`` for the statistics and one for the output: the mean and the
    mean of squares per channel give the biased variance ``mean(x²) − μ²`` (clamped at
    0; the same "fast variance" as flax's ``BatchNorm(use_fast_variance=True)``, equal
    to ``mean((x − μ)²)`` up to rounding), and the output is one ``addcmul``
    ``x·s + (β − μ·s)`` with the per-channel scale ``s = γ/√(σ² + ε)``.
    """
    out_dtype = x.dtype
    dtype = _compute_dtype(
        x,
        {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var},
    )
    xc = x if x.dtype == dtype else x.to(dtype)
    c = x.shape[1]
    dims = [0] + list(range(2, x.dim()))  # every dimension but the channels
    shape = [1, c] + [1] * (x.dim() - 2)  # broadcast a (C,) vector over x
    m = x.numel() // c  # values per channel
    if training:
        if m <= 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, "
                f"got input size {x.shape} (x)"
            )
        mean = xc.mean(dim=dims)
        var = ((xc * xc).mean(dim=dims) - mean * mean).clamp_min(0.0)  # biased: divide by m
        if running_mean is not None:
            with torch.no_grad():
                running_mean.mul_(1.0 - momentum).add_(
                    (momentum * mean.detach()).to(running_mean.dtype)
                )
                unbiased = var.detach() * (m / (m - 1))
                running_var.mul_(1.0 - momentum).add_((momentum * unbiased).to(running_var.dtype))
    else:
        mean, var = running_mean.to(dtype), running_var.to(dtype)
    # gamma (x - mu) / sqrt(var + eps) + beta  =  x * scale + (beta - mu * scale), with the
    # per-channel scale = gamma / sqrt(var + eps) computed on (C,) vectors: one pass over x
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.to(dtype)
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.to(dtype)
    y = torch.addcmul(shift.view(shape), xc, scale.view(shape))
    return y if y.dtype == out_dtype else y.to(out_dtype)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` input, like :class:`torch.nn.BatchNorm1d`.

    A thin wrapper over :func:`batch_norm`. In ``train()`` mode it normalises with
    the mini-batch statistics and updates the running buffers; in ``eval()`` mode
    it uses the running buffers. The parameter and buffer names (``weight``,
    ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``) are
    torch's, so state dicts can be exchanged with ``torch.nn.BatchNorm1d``.

    Args:
        num_features (int): number of channels ``C``.
        eps (float): added to the variance, ``> 0``. Default: ``1e-5``.
        momentum (float or None): weight of each new batch statistic in the running
            averages, in ``[0, 1]``; ``None`` means a cumulative (equal-weight) average
            over all batches so far. Default: ``0.1``.
        affine (bool): learn a scale γ (``weight``, initialised to 1) and a shift β
            (``bias``, initialised to 0). Default: ``True``.
        track_running_stats (bool): keep running statistics; if ``False`` the layer
            uses batch statistics in eval mode too. Default: ``True``.
        device, dtype: where and in which floating dtype to create the parameters and
            buffers, as for torch's layers. Default: ``None`` (torch's defaults).
        bias (bool, keyword only): learn β when ``affine``. Default: ``True``.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``.
        - Output: the same shape.

    Example:
        >>> bn = BatchNorm1d(3)
        >>> bn
        BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        >>> y = bn(torch.randn(8, 3))      # training mode: batch statistics
        >>> int(bn.num_batches_tracked)
        1

    Used in:
        chapter "Batch normalization as a regularizer".
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        num_features = check_scalar(num_features, "num_features", kind="int", low=1)
        eps = _check_eps(eps)
        momentum = None if momentum is None else _check_momentum(momentum)
        affine = _check_bool(affine, "affine")
        track_running_stats = _check_bool(track_running_stats, "track_running_stats")
        bias = _check_bool(bias, "bias")
        check_float_dtype(dtype, allow_none=True)
        # torch's _BatchNorm creates weight, bias, running_mean, running_var and
        # num_batches_tracked with torch's names and initial values (1, 0, 0, 1, 0)
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )

    def _check_input_dim(self, x: torch.Tensor) -> None:
        check_tensor(x, "x", ndim=self._input_ndim, finite=False)

    _input_ndim: tuple[int, ...] = (2, 3)

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)  # shape and dtype only: a layer does not scan values
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"x must have {self.num_features} channels (dimension 1), got shape {tuple(x.shape)}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average: the n-th batch gets weight 1/n
                factor = 1.0 / float(self.num_batches_tracked)
        # batch statistics while training, or in eval mode when nothing was tracked
        use_batch_stats = self.training or self.running_mean is None
        update = not self.training or self.track_running_stats
        return self._normalize(
            x,
            self.running_mean if update else None,
            self.running_var if update else None,
            use_batch_stats,
            factor,
        )

    def _normalize(self, x, running_mean, running_var, training: bool, momentum: float):
        # x was checked in forward; the parameters and buffers are the layer's own
        return _batch_norm(
            x, running_mean, running_var, self.weight, self.bias, training, momentum, self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm2d(BatchNorm1d):
    """Batch normalization of ``(N, C, H, W)`` feature maps, like :class:`torch.nn.BatchNorm2d`.

    The statistics of channel ``c`` are taken over all ``N·H·W`` values of that channel
    in the batch (every example and every position), so one γ and one β per channel
    are shared by all positions: the convolutional form of batch norm. The running
    variance is unbiased over those ``m = N·H·W`` values (factor ``m/(m − 1)``), as
    torch's. Everything else (arguments, buffers, train/eval behaviour, state-dict
    names) is :class:`BatchNorm1d`'s.

    Args:
        num_features (int): number of channels ``C``.
        eps (float): added to the variance, ``> 0``. Default: ``1e-5``.
        momentum (float or None): weight of each new batch statistic in the running
            averages; ``None`` means a cumulative average. Default: ``0.1``.
        affine (bool): learn a per-channel scale γ and shift β. Default: ``True``.
        track_running_stats (bool): keep running statistics. Default: ``True``.
        bias (bool, keyword only): learn β when ``affine``. Default: ``True``.

    Shape:
        - Input: ``(N, C, H, W)``.
        - Output: the same shape.

    Example:
        >>> bn = BatchNorm2d(2)
        >>> y = bn(torch.randn(4, 2, 3, 3))
        >>> [round(v, 4) + 0.0 for v in y.mean(dim=(0, 2, 3)).tolist()]   # per channel, over N·H·W
        [0.0, 0.0]

    Used in:
        chapter "Batch normalization as a regularizer".
    """

    _input_ndim = (4,)


# --------------------------------------------------------------------------------------
# Per-example normalization: layer norm and group norm.
# --------------------------------------------------------------------------------------


def _normalized_shape(normalized_shape) -> tuple[int, ...]:
    if isinstance(normalized_shape, torch.Size):
        normalized_shape = tuple(normalized_shape)
    if not isinstance(normalized_shape, (tuple, list)):
        normalized_shape = (normalized_shape,)
    if len(normalized_shape) == 0:
        raise ValueError("normalized_shape must not be empty, got ()")
    return tuple(
        check_scalar(n, f"normalized_shape[{i}]", kind="int", low=1)
        for i, n in enumerate(normalized_shape)
    )


def _check_affine_tensor(t, name: str, shape: tuple[int, ...], x: torch.Tensor):
    if t is None:
        return None
    check_tensor(t, name, finite=False)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if t.device != x.device:
        raise ValueError(f"{name} must be on x's device {x.device}, got {t.device}")
    return t


def _layer_norm(x, shape: tuple[int, ...], weight, bias, eps: float) -> torch.Tensor:
    out_dtype = x.dtype
    dtype = _compute_dtype(x, {"weight": weight, "bias": bias})
    xc = x if x.dtype == dtype else x.to(dtype)
    dims = tuple(range(x.dim() - len(shape), x.dim()))
    var, mean = torch.var_mean(xc, dim=dims, correction=0, keepdim=True)  # biased, per example
    y = (xc - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.to(dtype)
    if bias is not None:
        y = y + bias.to(dtype)
    return y if y.dtype == out_dtype else y.to(out_dtype)


def layer_norm(
    x: torch.Tensor,
    normalized_shape,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    r"""Layer normalization: each example normalised over its last dimensions, like :func:`torch.nn.functional.layer_norm`.

    For every example (every index of the leading dimensions) the ``D`` values of the
    trailing ``normalized_shape`` dimensions are normalised with *their own* mean and
    biased variance,

    .. math::
        y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta,\qquad
        \mu = \frac1D\sum_j x_j,\quad \sigma^2 = \frac1D\sum_j (x_j - \mu)^2,

    with ``γ`` (``weight``) and ``β`` (``bias``) of shape ``normalized_shape``, applied
    elementwise. No statistic is shared between examples, so the output of one example
    does not depend on the rest of the batch, in training or in evaluation alike.

    Args:
        x (Tensor): input whose last dimensions are ``normalized_shape``, floating point.
        normalized_shape (int or tuple of int): the trailing shape normalised over.
        weight (Tensor, optional): γ of shape ``normalized_shape``. Default: ``None`` (1).
        bias (Tensor, optional): β of shape ``normalized_shape``. Default: ``None`` (0).
        eps (float): added to the variance, ``> 0``. Default: ``1e-5``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        - Input: ``(*, *normalized_shape)``.
        - Output: the same shape.

    Example:
        >>> layer_norm(torch.tensor([[1.0, 2.0, 3.0, 6.0]]), 4)   # μ = 3, σ² = 3.5
        tensor([[-1.0690, -0.5345,  0.0000,  1.6036]])

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    check_tensor(x, "x")
    shape = _normalized_shape(normalized_shape)
    if tuple(x.shape[x.dim() - len(shape) :]) != shape or x.dim() < len(shape):
        raise ValueError(
            f"x must end with the dimensions normalized_shape={shape}, got shape {tuple(x.shape)}"
        )
    weight = _check_affine_tensor(weight, "weight", shape, x)
    bias = _check_affine_tensor(bias, "bias", shape, x)
    eps = _check_eps(eps)
    return _layer_norm(x, shape, weight, bias, eps)


class LayerNorm(nn.Module):
    """Layer normalization as a layer, like :class:`torch.nn.LayerNorm` (a thin wrapper over :func:`layer_norm`).

    The same computation in ``train()`` and ``eval()`` mode: there are no running
    statistics. Parameter names (``weight``, ``bias``) are torch's.

    Args:
        normalized_shape (int or tuple of int): the trailing shape normalised over.
        eps (float): added to the variance, ``> 0``. Default: ``1e-5``.
        elementwise_affine (bool): learn γ (initialised to 1) and β (initialised to 0)
            of shape ``normalized_shape``. Default: ``True``.
        bias (bool, keyword only): learn β when ``elementwise_affine``. Default: ``True``.

    Shape:
        - Input: ``(*, *normalized_shape)``.
        - Output: the same shape.

    Example:
        >>> LayerNorm(100)
        LayerNorm((100,), eps=1e-05, elementwise_affine=True)

    Used in:
        chapter "Batch normalization as a regularizer".
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = _check_eps(eps)
        self.elementwise_affine = _check_bool(elementwise_affine, "elementwise_affine")
        bias = _check_bool(bias, "bias")
        if self.elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape)) if bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", finite=False)
        shape = self.normalized_shape
        if tuple(x.shape[max(0, x.dim() - len(shape)) :]) != shape:
            raise ValueError(f"x must end with the dimensions {shape}, got shape {tuple(x.shape)}")
        return _layer_norm(x, shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


def _group_norm(x, num_groups: int, weight, bias, eps: float) -> torch.Tensor:
    out_dtype = x.dtype
    dtype = _compute_dtype(x, {"weight": weight, "bias": bias})
    xc = x if x.dtype == dtype else x.to(dtype)
    n, c = x.shape[:2]
    g = xc.reshape(n, num_groups, -1)  # (N, G, C/G · spatial)
    var, mean = torch.var_mean(
        g, dim=2, correction=0, keepdim=True
    )  # biased, per example and group
    y = ((g - mean) * torch.rsqrt(var + eps)).reshape(x.shape)
    shape = [1, c] + [1] * (x.dim() - 2)
    if weight is not None:
        y = y * weight.to(dtype).view(shape)
    if bias is not None:
        y = y + bias.to(dtype).view(shape)
    return y if y.dtype == out_dtype else y.to(out_dtype)


def group_norm(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    r"""Group normalization, like :func:`torch.nn.functional.group_norm`.

    The ``C`` channels are split into ``num_groups`` consecutive groups of ``C/G``
    channels; for every example and group, the values of those channels at every
    position are normalised with their own mean and biased variance, then each
    channel is scaled by its ``γ_c`` (``weight``) and shifted by ``β_c`` (``bias``).
    One group is layer norm over channels and positions; ``C`` groups (one channel
    each) is instance norm. No statistic crosses examples, so batch size does not matter.

    Args:
        x (Tensor): input ``(N, C, *)``, floating point.
        num_groups (int): number of groups ``G``; must divide ``C``.
        weight (Tensor, optional): ``(C,)`` scale γ. Default: ``None`` (1).
        bias (Tensor, optional): ``(C,)`` shift β. Default: ``None`` (0).
        eps (float): added to the variance, ``> 0``. Default: ``1e-5``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        - Input: ``(N, C, *)``.
        - Output: the same shape.

    Example:
        >>> x = torch.tensor([[[1.0], [2.0], [3.0], [6.0]]])   # N = 1, C = 4, L = 1
        >>> group_norm(x, 1).flatten()                          # one group: layer norm
        tensor([-1.0690, -0.5345,  0.0000,  1.6036])

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    check_tensor(x, "x")
    if x.dim() < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, C, *), got shape {tuple(x.shape)}")
    num_groups = check_scalar(num_groups, "num_groups", kind="int", low=1)
    c = x.shape[1]
    if c % num_groups:
        raise ValueError(f"num_groups must divide the number of channels {c}, got {num_groups}")
    weight = _check_affine_tensor(weight, "weight", (c,), x)
    bias = _check_affine_tensor(bias, "bias", (c,), x)
    eps = _check_eps(eps)
    return _group_norm(x, num_groups, weight, bias, eps)


class GroupNorm(nn.Module):
    """Group normalization as a layer, like :class:`torch.nn.GroupNorm` (a thin wrapper over :func:`group_norm`).

    Args:
        num_groups (int): number of groups ``G``; must divide ``num_channels``.
        num_channels (int): number of channels ``C``.
        eps (float): added to the variance, ``> 0``. Default: ``1e-5``.
        affine (bool): learn a per-channel γ (1) and β (0). Default: ``True``.

    Shape:
        - Input: ``(N, C, *)``.
        - Output: the same shape.

    Example:
        >>> GroupNorm(5, 25)
        GroupNorm(5, 25, eps=1e-05, affine=True)

    Used in:
        chapter "Batch normalization as a regularizer".
    """

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True
    ) -> None:
        super().__init__()
        self.num_groups = check_scalar(num_groups, "num_groups", kind="int", low=1)
        self.num_channels = check_scalar(num_channels, "num_channels", kind="int", low=1)
        if self.num_channels % self.num_groups:
            raise ValueError(
                f"num_groups must divide num_channels {self.num_channels}, got {self.num_groups}"
            )
        self.eps = _check_eps(eps)
        self.affine = _check_bool(affine, "affine")
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_channels))
            self.bias = nn.Parameter(torch.zeros(self.num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", finite=False)
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"x must have shape (N, {self.num_channels}, *), got {tuple(x.shape)}")
        return _group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


def ghost_batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    ghost_batch_size: int = 32,
) -> torch.Tensor:
    r"""Batch norm whose training statistics come from small groups ("ghost batches") of rows.

    In training mode the ``N`` rows of ``x`` are cut into consecutive groups of
    ``ghost_batch_size`` rows (the last group may be smaller; a last group of one row
    joins the group before it), and every group is normalised with its *own* mean and
    biased variance, exactly as :func:`batch_norm` would normalise that group alone.
    So the statistics are as noisy as those of a batch of ``ghost_batch_size``
    examples, while the optimizer still averages the gradient over all ``N`` rows.
    The running buffers are updated once per call with the average over the groups
    of their means and of their unbiased variances. In evaluation mode this is
    :func:`batch_norm`. With ``ghost_batch_size >= N`` it equals :func:`batch_norm`.

    This separates the two things a smaller batch changes, the noise of the
    normalisation statistics and the noise and number of the gradient steps; the
    chapter's ``bn_gap`` experiment uses it to vary only the first.

    Args:
        x (Tensor): input of shape ``(N, C)``, floating point.
        running_mean, running_var, weight, bias, training, momentum, eps: as in :func:`batch_norm`.
        ghost_batch_size (int, keyword only): rows per group, ``>= 2``. Default: ``32``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        - Input: ``(N, C)``.
        - Output: ``(N, C)``.

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    check_tensor(x, "x", ndim=2)
    size = check_scalar(ghost_batch_size, "ghost_batch_size", kind="int", low=2)
    training = _check_bool(training, "training")
    n, c = x.shape
    if not training or size >= n:
        return batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    momentum = _check_momentum(momentum)
    eps = _check_eps(eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    running_mean = _check_channel_vector(running_mean, "running_mean", c, x)
    running_var = _check_channel_vector(running_var, "running_var", c, x)
    weight = _check_channel_vector(weight, "weight", c, x)
    bias = _check_channel_vector(bias, "bias", c, x)
    return _ghost_batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps, size)


def _ghost_batch_norm(
    x,
    running_mean,
    running_var,
    weight,
    bias,
    training: bool,
    momentum: float,
    eps: float,
    size: int,
):
    """:func:`ghost_batch_norm` without the argument checks (for layers that own their tensors)."""
    n, c = x.shape
    if not training or size >= n:
        return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    out_dtype = x.dtype
    dtype = _compute_dtype(
        x,
        {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var},
    )
    x = x.to(dtype)
    weight = None if weight is None else weight.to(dtype)
    bias = None if bias is None else bias.to(dtype)
    # q full groups of `size` rows, reshaped to (q, size, C), then at most one smaller
    # group with the remaining rows; a single remaining row joins the last full group.
    q, r = divmod(n, size)
    if r == 1:
        q -= 1
    head = q * size
    groups = [x[:head].view(q, size, c)] + ([x[head:].unsqueeze(0)] if head < n else [])
    means = [g.mean(dim=1, keepdim=True) for g in groups]  # (q, 1, C), (1, 1, C)
    centred = [g - m for g, m in zip(groups, means)]
    variances = [(d**2).mean(dim=1, keepdim=True) for d in centred]  # biased, per group
    if running_mean is not None:
        with torch.no_grad():
            group_means = torch.cat([m.squeeze(1) for m in means])  # (number of groups, C)
            group_vars = torch.cat(
                [v.squeeze(1) * g.shape[1] / (g.shape[1] - 1) for v, g in zip(variances, groups)]
            )  # unbiased
            running_mean.mul_(1.0 - momentum).add_(
                (momentum * group_means.mean(dim=0)).to(running_mean.dtype)
            )
            running_var.mul_(1.0 - momentum).add_(
                (momentum * group_vars.mean(dim=0)).to(running_var.dtype)
            )
    x_hat = torch.cat(
        [(d / torch.sqrt(v + eps)).reshape(-1, c) for d, v in zip(centred, variances)]
    )
    if weight is not None:
        x_hat = x_hat * weight
    if bias is not None:
        x_hat = x_hat + bias
    return x_hat.to(out_dtype)


class GhostBatchNorm1d(BatchNorm1d):
    """:class:`BatchNorm1d` whose training statistics come from groups of ``ghost_batch_size`` rows.

    A thin wrapper over :func:`ghost_batch_norm`; in ``eval()`` mode it is exactly
    :class:`BatchNorm1d`. Takes the arguments of :class:`BatchNorm1d` plus
    ``ghost_batch_size`` (int, ``>= 2``, default ``32``).

    Shape:
        - Input: ``(N, C)``.
        - Output: ``(N, C)``.

    Example:
        >>> GhostBatchNorm1d(3, ghost_batch_size=4)
        GhostBatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True, ghost_batch_size=4)

    Used in:
        chapter "Batch normalization as a regularizer".
    """

    def __init__(self, num_features: int, *args, ghost_batch_size: int = 32, **kwargs) -> None:
        super().__init__(num_features, *args, **kwargs)
        self.ghost_batch_size = check_scalar(
            ghost_batch_size, "ghost_batch_size", kind="int", low=2
        )

    _input_ndim = (2,)

    def _normalize(self, x, running_mean, running_var, training: bool, momentum: float):
        return _ghost_batch_norm(
            x,
            running_mean,
            running_var,
            self.weight,
            self.bias,
            training,
            momentum,
            self.eps,
            self.ghost_batch_size,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_batch_size={self.ghost_batch_size}"


@dataclass(frozen=True)
class BatchStatNoise:
    """How much the batch statistics of a data set vary from one mini-batch to the next.

    Attributes:
        batch_sizes: the batch sizes ``B`` measured, in the order given.
        num_batches: mini-batches drawn per batch size.
        num_examples: ``N``, the number of examples the batches were drawn from.
        index: the fixed example whose normalised value ``x̂`` was followed.
        population_std: ``(C,)`` standard deviation ``σ`` of each feature over all
            ``N`` examples (divided by ``N``).
        mean_std: ``(len(batch_sizes), C)``: for each ``B`` and feature, the standard
            deviation across mini-batches of the batch mean ``μ_B``.
        xhat_std: ``(len(batch_sizes), C)``: the standard deviation across mini-batches
            (each containing example ``index``) of that example's ``x̂``.
    """

    batch_sizes: tuple[int, ...]
    num_batches: int
    num_examples: int
    index: int
    population_std: torch.Tensor
    mean_std: torch.Tensor
    xhat_std: torch.Tensor

    def _varying(self) -> torch.Tensor:
        return self.population_std > 1e-6 * self.population_std.max()

    def relative_mean_noise(self) -> torch.Tensor:
        """``std(μ_B) / σ`` averaged over the features that vary, one value per batch size."""
        keep = self._varying()
        return (self.mean_std[:, keep] / self.population_std[keep]).mean(dim=1)

    def mean_xhat_noise(self) -> torch.Tensor:
        """``std(x̂)`` of the fixed example averaged over the features that vary, one per batch size."""
        return self.xhat_std[:, self._varying()].mean(dim=1)

    def predicted_relative_mean_noise(self) -> torch.Tensor:
        r"""The theory for :meth:`relative_mean_noise`: ``std(μ_B)/σ = 1/√B · √((N − B)/(N − 1))``.

        ``1/√B`` is the standard error of a mean of ``B`` independent draws; the second
        factor (the finite-population correction) accounts for drawing the batch
        *without replacement* from ``N`` examples, and is close to 1 when ``B ≪ N``.
        """
        b = torch.tensor(self.batch_sizes, dtype=torch.float64)
        n = self.num_examples
        return torch.sqrt((n - b) / (n - 1)) / torch.sqrt(b)


def _check_batch_sizes(batch_sizes, n: int) -> tuple[int, ...]:
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence):
        raise TypeError(f"batch_sizes must be a sequence of ints, got {type(batch_sizes).__name__}")
    if len(batch_sizes) == 0:
        raise ValueError("batch_sizes must not be empty, got []")
    return tuple(
        check_scalar(b, f"batch_sizes[{i}]", kind="int", low=2, high=n)
        for i, b in enumerate(batch_sizes)
    )


def _random_subsets(num: int, n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``(num, size)`` indices into ``range(n)``, each row drawn without replacement."""
    # The items with the `size` smallest of n uniform random keys: a uniformly random
    # subset. float64 keys make ties (where tie-breaking would matter) practically impossible.
    keys = torch.rand(num, n, generator=g, dtype=torch.float64)
    return keys.topk(size, dim=1, largest=False, sorted=True).indices


@torch.no_grad()
def batch_stat_noise(
    x: torch.Tensor,
    batch_sizes: Sequence[int],
    num_batches: int = 1000,
    *,
    index: int = 0,
    eps: float = 1e-5,
    generator: torch.Generator | None = None,
) -> BatchStatNoise:
    r"""Measure the noise of batch statistics: how ``μ_B`` and ``x̂`` vary across mini-batches.

    For every batch size ``B``, draws ``num_batches`` mini-batches of ``B`` distinct
    rows of ``x`` (without replacement, as a training loop does) and records, per feature,

    - the standard deviation of the batch mean ``μ_B`` across the mini-batches
      (theory: ``σ/√B`` times the finite-population factor ``√((N−B)/(N−1))``), and
    - the standard deviation of the normalised value
      ``x̂ = (x_index − μ_B)/√(σ_B² + ε)`` of the fixed example ``index``, across
      mini-batches that contain it (its other ``B − 1`` members drawn at random).
      This is the noise batch norm injects into that example's activations.

    Args:
        x (Tensor): ``(N, C)`` data, e.g. a layer's pre-activations for ``N`` examples.
        batch_sizes (sequence of int): the batch sizes ``B``, each in ``[2, N]``.
        num_batches (int): mini-batches per batch size, ``≥ 2``. Default: ``1000``.
        index (int): the example followed for ``x̂``. Default: ``0``.
        eps (float): the ``ε`` of :func:`batch_norm`. Default: ``1e-5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).

    Returns:
        BatchStatNoise: the measured standard deviations and the theory.

    Shape:
        ``x``: ``(N, C)``; the returned ``mean_std`` and ``xhat_std``: ``(len(batch_sizes), C)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(1000, 4, generator=g)
        >>> noise = batch_stat_noise(x, [4, 64], num_batches=500, generator=g)
        >>> noise.mean_std.shape
        torch.Size([2, 4])

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    check_tensor(x, "x", ndim=2)
    n, c = x.shape
    if n < 2:
        raise ValueError(f"x must have at least 2 rows (examples), got shape {tuple(x.shape)}")
    sizes = _check_batch_sizes(batch_sizes, n)
    num_batches = check_scalar(num_batches, "num_batches", kind="int", low=2)
    index = check_scalar(index, "index", kind="int", low=0, high=n - 1)
    eps = _check_eps(eps)
    generator = check_generator(generator)

    x = x.double()
    xt = x.T.contiguous()  # (C, N): each batch's values of a feature lie in the last dimension
    x_i = xt[:, index, None]  # (C, 1): the followed example
    others = torch.cat([torch.arange(index), torch.arange(index + 1, n)])
    budget = 2_000_000  # values gathered at once, to bound memory for large B or C
    mean_std, xhat_std = [], []
    for b in sizes:
        chunk = max(1, budget // (b * c))
        means, xhats = [], []
        for start in range(0, num_batches, chunk):
            k = min(chunk, num_batches - start)
            batches = xt[:, _random_subsets(k, n, b, generator)]  # (C, k, B)
            means.append(batches.mean(dim=2))
            # batches that contain the example: it plus B - 1 of the others
            rest = xt[:, others[_random_subsets(k, n - 1, b - 1, generator)]]  # (C, k, B - 1)
            mu = (x_i + rest.sum(dim=2)) / b  # (C, k)
            var = (((rest - mu[..., None]) ** 2).sum(dim=2) + (x_i - mu) ** 2) / b  # biased
            xhats.append((x_i - mu) / torch.sqrt(var + eps))
        mean_std.append(torch.cat(means, dim=1).std(dim=1))
        xhat_std.append(torch.cat(xhats, dim=1).std(dim=1))
    return BatchStatNoise(
        batch_sizes=sizes,
        num_batches=num_batches,
        num_examples=n,
        index=index,
        population_std=x.std(dim=0, unbiased=False),
        mean_std=torch.stack(mean_std),
        xhat_std=torch.stack(xhat_std),
    )


def loglog_slope(xs: Sequence[float], ys: Sequence[float] | torch.Tensor) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent ``a`` of ``y ∝ x^a``.

    Args:
        xs (sequence of float): positive x values (e.g. batch sizes), at least two distinct.
        ys (sequence of float or Tensor): positive y values, as many as ``xs``.

    Returns:
        float: the fitted exponent.

    Example:
        >>> round(loglog_slope([1, 4, 16], [1.0, 0.5, 0.25]), 6)
        -0.5

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    lx = torch.tensor(
        [math.log(check_scalar(v, f"xs[{i}]", low=0, closed="neither")) for i, v in enumerate(xs)],
        dtype=torch.float64,
    )
    ys = ys.tolist() if isinstance(ys, torch.Tensor) else list(ys)
    if len(ys) != len(lx):
        raise ValueError(f"xs and ys must have the same length, got {len(lx)} and {len(ys)}")
    ly = torch.tensor(
        [math.log(check_scalar(v, f"ys[{i}]", low=0, closed="neither")) for i, v in enumerate(ys)],
        dtype=torch.float64,
    )
    dx = lx - lx.mean()
    if len(lx) < 2 or float((dx**2).sum()) == 0.0:
        raise ValueError(f"xs must hold at least two distinct values, got {list(xs)}")
    return float((dx * (ly - ly.mean())).sum() / (dx**2).sum())
