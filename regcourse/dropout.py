"""Dropout: zero random activations while training, scale the survivors.

Throughout, ``p`` is the probability of *dropping* a unit (as in
:func:`torch.nn.functional.dropout`), so each unit is kept with probability
``1 - p``. We implement *inverted* dropout: kept values are divided by
``1 - p`` during training, so that the expected output equals the input and
nothing changes at inference.

Spatial dropout (:func:`dropout1d`, :func:`dropout2d`, :class:`Dropout1d`,
:class:`Dropout2d`) drops whole *channels* of convolutional features: neighbouring
positions of one feature map are strongly correlated, so dropping single entries
barely removes information, while dropping a whole map does (Tompson et al. 2015).

DropConnect (:func:`dropconnect_linear`, :class:`DropConnectLinear`) applies
the same idea to the *weights* of a linear layer instead of its outputs.

Used in:
    chapters "Dropout" and "DropConnect and stochastic depth".
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import (
    check_binary_mask,
    check_bool,
    check_float_dtype,
    check_generator,
    check_probability,
    check_same_shape,
    check_scalar,
    check_shape,
    check_tensor,
    layer_forward,
)

__all__ = [
    "dropout_mask",
    "apply_dropout_mask",
    "dropout",
    "Dropout",
    "channel_dropout",
    "dropout1d",
    "dropout2d",
    "Dropout1d",
    "Dropout2d",
    "apply_dropconnect_mask",
    "dropconnect_linear",
    "DropConnectLinear",
]


_check_p = check_probability
_check_shape = check_shape


def dropout_mask(
    shape,
    p: float,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sample a dropout mask: each entry is 0 with probability ``p``, else 1.

    ``p`` is the probability of *dropping* a unit (as in torch), so the mask
    entries are independent Bernoulli(``1 - p``) draws.

    Args:
        shape (int or tuple of int): shape of the mask.
        p (float): probability that an entry is 0 (the unit is dropped), in ``[0, 1)``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).
        dtype (torch.dtype): floating dtype of the mask. Default: ``torch.float32``.
        device (torch.device or str, optional): device of the mask. Default: ``None`` (CPU).

    Returns:
        Tensor of the given shape holding only 0.0 and 1.0.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> dropout_mask((2, 3), p=0.5, generator=g).shape
        torch.Size([2, 3])

    Used in:
        chapter "Dropout".
    """
    shape = _check_shape(shape)
    p = _check_p(p)
    generator = check_generator(generator)
    check_float_dtype(dtype)
    # The same sampling call torch's own dropout makes: bernoulli_ with the keep probability.
    return torch.empty(shape, dtype=dtype, device=device).bernoulli_(1.0 - p, generator=generator)


def apply_dropout_mask(x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with a given mask: ``x * mask / (1 - p)``.

    Use this when the mask is chosen by hand (worked examples) or sampled once
    with :func:`dropout_mask` and reused. ``p`` is the drop probability the mask
    was drawn with; kept values are scaled by ``1 / (1 - p)``.

    Args:
        x (Tensor): the activations, floating point.
        mask (Tensor): same shape as ``x``, only 0s (dropped) and 1s (kept); any dtype.
        p (float): probability of dropping, in ``[0, 1)``.

    Returns:
        Tensor like ``x``: 0 where ``mask`` is 0, ``x / (1 - p)`` where it is 1.

    Shape:
        ``x`` and ``mask``: any shape, the same for both. Output: the same shape.

    Example:
        >>> h = torch.tensor([0.8, -0.3, 1.2, 0.5, -0.9])
        >>> apply_dropout_mask(h, torch.tensor([1, 0, 1, 1, 0]), p=0.4)
        tensor([1.3333, -0.0000, 2.0000, 0.8333, -0.0000])

        (A negative value times 0 is -0.0 in floating point; torch's dropout does the same.)

    Used in:
        chapter "Dropout".
    """
    check_tensor(x, "x", nonempty=False)
    check_tensor(mask, "mask", floating=False, nonempty=False)
    check_same_shape(x, "x", mask, "mask")
    p = _check_p(p)
    check_binary_mask(mask, "mask")
    # Scale the mask first, then multiply: the same arithmetic as torch's dropout,
    # so kept values agree with torch.nn.functional.dropout bit for bit.
    return x * (mask.to(dtype=x.dtype, device=x.device) / (1.0 - p))


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverted dropout: zero each entry with probability ``p``, scale the rest by ``1 / (1 - p)``.

    ``p`` is the probability of *dropping* an entry, as in
    :func:`torch.nn.functional.dropout`. When ``training`` is ``False`` or ``p``
    is 0 the input is returned unchanged (the same tensor object). Gradients
    flow through: the derivative of the output with respect to ``x`` is
    ``mask / (1 - p)``.

    Unlike torch, ``p = 1`` is rejected: the ``1 / (1 - p)`` scale would divide
    by zero (torch special-cases it and returns zeros).

    Args:
        x (Tensor): the activations, floating point.
        p (float): probability of dropping an entry, in ``[0, 1)``. Default: ``0.5``.
        training (bool): apply dropout if ``True``, return ``x`` if ``False``. Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        Input: any shape. Output: the same shape.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = dropout(torch.ones(6), p=0.5, generator=g)
        >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True

    Used in:
        chapter "Dropout".
    """
    check_tensor(x, "x", nonempty=False)
    p = _check_p(p)
    training = check_bool(training, "training")
    generator = check_generator(generator)
    if not training or p == 0.0:
        return x
    mask = dropout_mask(x.shape, p, generator, dtype=x.dtype, device=x.device)
    return x * (mask / (1.0 - p))


class Dropout(nn.Module):
    """Inverted dropout as a layer; active in ``train()`` mode, the identity in ``eval()``.

    A thin wrapper over :func:`dropout`, behaving like :class:`torch.nn.Dropout`.
    ``p`` is the probability of *dropping* an entry.

    Args:
        p (float): probability of dropping an entry, in ``[0, 1)``. Default: ``0.5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).

    Shape:
        Input: any shape. Output: the same shape.

    Example:
        >>> layer = Dropout(p=0.2)
        >>> layer
        Dropout(p=0.2)
        >>> x = torch.randn(3, 4)
        >>> layer.eval()(x) is x
        True

    Used in:
        chapter "Dropout".
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.generator = check_generator(generator)

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


# --------------------------------------------------------------------------------------
# Spatial dropout: drop whole channels of convolutional feature maps.
# --------------------------------------------------------------------------------------


def channel_dropout(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
    *,
    spatial_dims: int = 1,
) -> torch.Tensor:
    """Spatial dropout: zero whole channels with probability ``p``, scale the rest by ``1/(1 - p)``.

    For input ``(N, C, *spatial)`` one Bernoulli(``1 - p``) draw is made per example
    and channel (a mask of shape ``(N, C, 1, ..., 1)``) and broadcast over the
    ``spatial_dims`` trailing dimensions, so a channel is either dropped at every
    position or kept at every position. Input without the batch dimension,
    ``(C, *spatial)``, is treated as one example, as torch does. This is
    :func:`torch.nn.functional.dropout1d` (``spatial_dims=1``) and
    :func:`~torch.nn.functional.dropout2d` (``spatial_dims=2``); ``p`` is the
    probability of *dropping* a channel.

    Args:
        x (Tensor): the feature maps, floating point.
        p (float): probability of dropping a channel, in ``[0, 1)``. Default: ``0.5``.
        training (bool): apply dropout if ``True``, return ``x`` if ``False``. Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).
        spatial_dims (int, keyword only): number of trailing spatial dimensions, 1 or 2.
            Default: ``1``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        - Input: ``(N, C, *spatial)`` or ``(C, *spatial)`` with ``spatial_dims`` spatial dims.
        - Output: the same shape.

    Used in:
        chapter "Dropout".
    """
    check_tensor(x, "x", nonempty=False)
    spatial_dims = check_scalar(spatial_dims, "spatial_dims", kind="int", low=1, high=2)
    if x.dim() not in (spatial_dims + 1, spatial_dims + 2):
        name = f"dropout{spatial_dims}d"
        raise ValueError(
            f"{name}: x must have {spatial_dims + 1} or {spatial_dims + 2} dimensions "
            f"((C, *spatial) or (N, C, *spatial)), got shape {tuple(x.shape)}"
        )
    p = _check_p(p)
    training = check_bool(training, "training")
    generator = check_generator(generator)
    if not training or p == 0.0:
        return x
    mask_shape = tuple(x.shape[: x.dim() - spatial_dims]) + (1,) * spatial_dims
    mask = dropout_mask(mask_shape, p, generator, dtype=x.dtype, device=x.device)
    return x * (mask / (1.0 - p))


def dropout1d(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Spatial dropout of 1-D feature maps: :func:`channel_dropout` with one spatial dimension.

    Drops whole channels of ``(N, C, L)`` (or ``(C, L)``) input, like
    :func:`torch.nn.functional.dropout1d`; ``p`` is the probability of dropping a channel.

    Args:
        x (Tensor): ``(N, C, L)`` or ``(C, L)`` feature maps.
        p (float): drop probability of a channel, in ``[0, 1)``. Default: ``0.5``.
        training (bool): apply dropout if ``True``. Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``.
        - Output: the same shape.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = dropout1d(torch.ones(1, 4, 3), p=0.5, generator=g)
        >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())   # each channel all-0 or all-2
        True

    Used in:
        chapter "Dropout".
    """
    return channel_dropout(x, p, training, generator, spatial_dims=1)


def dropout2d(
    x: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Spatial dropout of 2-D feature maps: :func:`channel_dropout` with two spatial dimensions.

    Drops whole channels of ``(N, C, H, W)`` (or ``(C, H, W)``) input, like
    :func:`torch.nn.functional.dropout2d`; ``p`` is the probability of dropping a channel.
    A 3-D input is always one unbatched example ``(C, H, W)``: torch 2.13 still reads it
    as ``(N, C, L)`` with a warning and has announced the change to ours.

    Args:
        x (Tensor): ``(N, C, H, W)`` or ``(C, H, W)`` feature maps.
        p (float): drop probability of a channel, in ``[0, 1)``. Default: ``0.5``.
        training (bool): apply dropout if ``True``. Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``.
        - Output: the same shape.

    Used in:
        chapter "Dropout".
    """
    return channel_dropout(x, p, training, generator, spatial_dims=2)


class Dropout1d(Dropout):
    """Spatial dropout of 1-D feature maps as a layer (whole channels), like :class:`torch.nn.Dropout1d`.

    A thin wrapper over :func:`dropout1d`; active in ``train()`` mode, the identity in ``eval()``.

    Args:
        p (float): probability of dropping a channel, in ``[0, 1)``. Default: ``0.5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Shape:
        - Input: ``(N, C, L)`` or ``(C, L)``.
        - Output: the same shape.

    Example:
        >>> Dropout1d(0.1)
        Dropout1d(p=0.1)

    Used in:
        chapter "Dropout".
    """

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout1d(x, self.p, self.training, self.generator)


class Dropout2d(Dropout):
    """Spatial dropout of 2-D feature maps as a layer (whole channels), like :class:`torch.nn.Dropout2d`.

    A thin wrapper over :func:`dropout2d`; active in ``train()`` mode, the identity in ``eval()``.

    Args:
        p (float): probability of dropping a channel, in ``[0, 1)``. Default: ``0.5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``.
        - Output: the same shape.

    Used in:
        chapter "Dropout".
    """

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout2d(x, self.p, self.training, self.generator)


# --------------------------------------------------------------------------------------
# DropConnect: drop weights instead of activations.
# --------------------------------------------------------------------------------------


def _check_linear_args(x, weight, bias) -> None:
    check_tensor(weight, "weight", ndim=2)
    check_tensor(x, "x", nonempty=False)
    if x.dim() < 1:
        raise ValueError(f"x must have at least 1 dimension, got shape {tuple(x.shape)}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"x's last dimension must equal weight's in_features {weight.shape[1]}, "
            f"got x of shape {tuple(x.shape)}"
        )
    if x.dtype != weight.dtype:
        raise TypeError(f"x and weight must have the same dtype, got {x.dtype} and {weight.dtype}")
    if bias is not None:
        check_tensor(bias, "bias", ndim=1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(
                f"bias must have weight's out_features {weight.shape[0]} entries, "
                f"got shape {tuple(bias.shape)}"
            )
        if bias.dtype != weight.dtype:
            raise TypeError(
                f"bias and weight must have the same dtype, got {bias.dtype} and {weight.dtype}"
            )


def apply_dropconnect_mask(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    p: float,
) -> torch.Tensor:
    """A linear layer whose weights are masked by a given DropConnect mask:
    ``x @ (mask * weight / (1 - p)).T + bias``.

    Use this when the mask is chosen by hand (worked examples) or sampled once with
    ``dropout_mask(weight.shape, p)`` and reused. The mask multiplies *weights*, not
    activations: entry ``mask[i, j] = 0`` cuts the connection from input ``j`` to
    output ``i``. Kept weights are scaled by ``1 / (1 - p)`` so that, averaged over
    masks, the pre-activation equals the plain linear layer's. The bias is never dropped.

    Args:
        x (Tensor): the inputs, floating point.
        weight (Tensor): the weight matrix, ``(out_features, in_features)``.
        bias (Tensor or None): the bias, ``(out_features,)``, or ``None``.
        mask (Tensor): same shape as ``weight``, only 0s (dropped) and 1s (kept); any dtype.
        p (float): probability of dropping a weight, in ``[0, 1)``.

    Returns:
        Tensor of shape ``(*, out_features)``.

    Shape:
        - x: ``(*, in_features)``; weight and mask: ``(out_features, in_features)``.
        - Output: ``(*, out_features)``.

    Example:
        >>> w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> mask = torch.tensor([[1, 0], [1, 1]])
        >>> apply_dropconnect_mask(torch.tensor([1.0, 1.0]), w, None, mask, p=0.5)
        tensor([ 2., 14.])

    Used in:
        chapter "DropConnect and stochastic depth".
    """
    _check_linear_args(x, weight, bias)
    check_tensor(mask, "mask", floating=False)
    check_same_shape(weight, "weight", mask, "mask")
    p = _check_p(p)
    check_binary_mask(mask, "mask")
    masked = weight * (mask.to(dtype=weight.dtype, device=weight.device) / (1.0 - p))
    return torch.nn.functional.linear(x, masked, bias)


def dropconnect_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DropConnect linear layer: drop each *weight* with probability ``p`` while training.

    In training mode one mask ``M`` the shape of ``weight`` is drawn per call,
    with independent entries ``M[i, j] ~ Bernoulli(1 - p)``, and **shared by every
    example of the batch**; the layer computes ``x @ (M * weight / (1 - p)).T + bias``.
    (Wan et al. draw a separate mask for every training example, which costs a
    weight-sized mask per example and a batched matrix-vector product instead of
    one matrix product; sharing the mask keeps the layer as cheap as possible.)
    The inverted scaling ``1 / (1 - p)`` makes the expected pre-activation equal
    to the plain layer's, so at inference (``training=False`` or ``p = 0``) the
    layer is exactly :func:`torch.nn.functional.linear`. Wan et al. instead
    approximate the inference-time average over masks of the *activation* by
    moment matching a Gaussian and sampling from it; we use the mean, as dropout does.

    ``p`` is the probability of *dropping* a weight (as for dropout; Wan et al.'s
    Bernoulli parameter is the keep probability ``1 - p``). The bias is never
    dropped (Wan et al. mask it as well). ``p = 1`` is rejected (the scale would
    divide by zero).

    Args:
        x (Tensor): the inputs, floating point.
        weight (Tensor): the weight matrix, ``(out_features, in_features)``.
        bias (Tensor or None): the bias, ``(out_features,)``, or ``None``.
        p (float): probability of dropping each weight, in ``[0, 1)``. Default: ``0.5``.
        training (bool): drop weights if ``True``; plain linear layer if ``False``.
            Default: ``True``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``
            (torch's default generator).

    Returns:
        Tensor of shape ``(*, out_features)``.

    Shape:
        - x: ``(*, in_features)``; weight: ``(out_features, in_features)``.
        - Output: ``(*, out_features)``.

    Example:
        >>> w, x = torch.randn(3, 4), torch.randn(2, 4)
        >>> torch.equal(dropconnect_linear(x, w, None, p=0.5, training=False), x @ w.T)
        True

    Used in:
        chapter "DropConnect and stochastic depth".
    """
    _check_linear_args(x, weight, bias)
    p = _check_p(p)
    training = check_bool(training, "training")
    generator = check_generator(generator)
    if not training or p == 0.0:
        return torch.nn.functional.linear(x, weight, bias)
    mask = dropout_mask(weight.shape, p, generator, dtype=weight.dtype, device=weight.device)
    return torch.nn.functional.linear(x, weight * (mask / (1.0 - p)), bias)


class DropConnectLinear(nn.Linear):
    """:class:`torch.nn.Linear` with DropConnect on its weights while training.

    The same parameters and initialisation as ``nn.Linear``; in ``train()`` mode the
    forward pass is :func:`dropconnect_linear` (one weight mask per call, shared by
    the batch), in ``eval()`` mode it is exactly ``nn.Linear``'s. ``p`` is the
    probability of *dropping* a weight.

    Args:
        in_features (int): size of each input.
        out_features (int): size of each output.
        bias (bool): learn an additive bias. Default: ``True``.
        p (float): probability of dropping each weight, in ``[0, 1)``. Default: ``0.5``.
        generator (torch.Generator, optional): source of randomness for the masks.
            Default: ``None`` (torch's default generator).

    Shape:
        Input: ``(*, in_features)``. Output: ``(*, out_features)``.

    Example:
        >>> DropConnectLinear(4, 3, p=0.3)
        DropConnectLinear(in_features=4, out_features=3, bias=True, p=0.3)

    Used in:
        chapter "DropConnect and stochastic depth".
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        in_features = check_scalar(in_features, "in_features", kind="int", low=1)
        out_features = check_scalar(out_features, "out_features", kind="int", low=1)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        p = _check_p(p)
        generator = check_generator(generator)
        super().__init__(in_features, out_features, bias=bias)
        self.p = p
        self.generator = generator

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropconnect_linear(x, self.weight, self.bias, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p:g}"
