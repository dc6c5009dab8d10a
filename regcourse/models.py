"""Small networks for the chapters' experiments.

- For scikit-learn's 8 × 8 digits: :class:`MLP`, :class:`SmallCNN`, and the
  :class:`ResidualMLP` whose blocks use stochastic depth (:mod:`regcourse.depth`).
- For MNIST-1D (inputs of length 40): the benchmark's three baselines,
  :class:`LogisticRegression`, the :class:`MLP` 40 → 100 → 100 → 10 and the 1-D
  :class:`CNN1d`, built with the published sizes by :func:`mnist1d_model`.

Every model takes the regularizers as arguments (dropout probability, spatial
dropout, the normalization layer), so an experiment changes one setting and keeps
everything else equal.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._checks import (
    check_bool,
    check_choice,
    check_float_dtype,
    check_scalar,
    check_tensor,
    layer_forward,
)
from ._random import seeded
from .depth import _ACTIVATIONS, ResidualBlock, _check_mode, linear_decay_survival

__all__ = [
    "NORMS",
    "make_norm",
    "LogisticRegression",
    "MLP",
    "SmallCNN",
    "CNN1d",
    "ResidualMLP",
    "build_model",
    "build_residual_mlp",
    "mnist1d_model",
]

#: The names :func:`make_norm` accepts for the ``norm`` argument of the models.
NORMS = ("batch", "regcourse_batch", "layer", "regcourse_layer", "group", "regcourse_group")

NormSpec = None | str | Callable[[int], nn.Module]


def _group_count(channels: int) -> int:
    """The largest number of groups ``<= 8`` that divides ``channels``."""
    return max(g for g in range(1, 9) if channels % g == 0)


def make_norm(norm: NormSpec, num_features: int, *, spatial_dims: int = 0) -> nn.Module:
    """The normalization layer a model puts after a linear or convolutional layer.

    Args:
        norm (None, str or callable): which layer:

            - ``None``: no normalization (:class:`torch.nn.Identity`);
            - ``"batch"``: torch's :class:`~torch.nn.BatchNorm1d` (``spatial_dims`` 0 or 1)
              or :class:`~torch.nn.BatchNorm2d` (``spatial_dims`` 2);
            - ``"regcourse_batch"``: ours from scratch,
              :class:`regcourse.normalization.BatchNorm1d` / ``BatchNorm2d``;
            - ``"layer"``: layer norm over each example's features: :class:`torch.nn.LayerNorm`
              for ``(N, C)`` features; for feature maps :class:`torch.nn.GroupNorm` with one
              group (statistics over all channels and positions of one example, the usual
              convolutional layer norm);
            - ``"group"``: :class:`torch.nn.GroupNorm` with the largest number of groups
              ``<= 8`` that divides ``num_features``;
            - ``"regcourse_layer"``, ``"regcourse_group"``: the same with ours from scratch,
              :class:`regcourse.normalization.LayerNorm` / ``GroupNorm``;
            - a callable ``norm(num_features) -> nn.Module``, for anything else.
        num_features (int): features (channels) of the layer's input.
        spatial_dims (int, keyword only): 0 for ``(N, C)`` features, 1 for ``(N, C, L)``,
            2 for ``(N, C, H, W)``. Default: ``0``.

    Returns:
        nn.Module: the layer.

    Raises:
        ValueError: for an unknown name.
        TypeError: for a value that is neither ``None``, a string nor a callable (a
            ``bool`` included: ``norm=True`` would not say which layer).

    Example:
        >>> make_norm("layer", 25, spatial_dims=1)
        GroupNorm(1, 25, eps=1e-05, affine=True, bias=True)

    Used in:
        chapter "Batch normalization as a regularizer".
    """
    num_features = check_scalar(num_features, "num_features", kind="int", low=1)
    spatial_dims = check_scalar(spatial_dims, "spatial_dims", kind="int", low=0, high=2)
    if norm is None:
        return nn.Identity()
    if isinstance(norm, str):
        if norm == "batch":
            return (
                nn.BatchNorm2d(num_features) if spatial_dims == 2 else nn.BatchNorm1d(num_features)
            )
        if norm == "regcourse_batch":
            from . import normalization

            cls = normalization.BatchNorm2d if spatial_dims == 2 else normalization.BatchNorm1d
            return cls(num_features)
        if norm in ("layer", "group", "regcourse_layer", "regcourse_group"):
            if norm.startswith("regcourse_"):
                from . import normalization as lib
            else:
                lib = nn
            if norm.endswith("group"):
                return lib.GroupNorm(_group_count(num_features), num_features)
            if spatial_dims == 0:
                return lib.LayerNorm(num_features)
            return lib.GroupNorm(1, num_features)
        raise ValueError(f"norm must be None, a callable or one of {list(NORMS)}, got {norm!r}")
    if callable(norm) and not isinstance(norm, bool):
        layer = norm(num_features)
        if not isinstance(layer, nn.Module):
            raise TypeError(
                f"norm({num_features}) must return an nn.Module, got {type(layer).__name__}"
            )
        return layer
    raise TypeError(
        f"norm must be None, a str or a callable returning an nn.Module, got {norm!r} "
        f"({type(norm).__name__})"
    )


def _resolve_norm(norm: NormSpec, batch_norm) -> NormSpec:
    """Combine the models' older ``batch_norm`` flag with ``norm``."""
    batch_norm = check_bool(batch_norm, "batch_norm")
    if batch_norm:
        if norm is not None:
            raise ValueError(f"give batch_norm=True or norm, not both (got norm={norm!r})")
        return "batch"
    return norm


def _dropout_layer(p: float) -> nn.Module:
    from .dropout import Dropout

    return Dropout(p) if p > 0 else nn.Identity()


def _channel_dropout_layer(p: float, spatial_dims: int) -> nn.Module:
    from .dropout import Dropout1d, Dropout2d

    if p == 0:
        return nn.Identity()
    return Dropout1d(p) if spatial_dims == 1 else Dropout2d(p)


class LogisticRegression(nn.Sequential):
    """Multinomial logistic regression: flatten, then one linear layer (softmax in the loss).

    The MNIST-1D benchmark's linear baseline (``LinearBase`` in the ``mnist1d``
    repository: one ``nn.Linear(40, 10)``).

    Args:
        in_features (int): input size after flattening. Default: ``40`` (MNIST-1D).
        num_classes (int): output size. Default: ``10``.

    Shape:
        - Input: ``(N, *)`` with ``in_features`` elements per example.
        - Output: ``(N, num_classes)`` logits.

    Example:
        >>> LogisticRegression()(torch.zeros(2, 40)).shape
        torch.Size([2, 10])

    Used in:
        chapter "The core problem".
    """

    def __init__(self, in_features: int = 40, num_classes: int = 10) -> None:
        in_features = check_scalar(in_features, "in_features", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        super().__init__(nn.Flatten(), nn.Linear(in_features, num_classes))


class MLP(nn.Sequential):
    """Fully connected network: flatten, then (Linear → [norm] → ReLU → [Dropout]) × depth.

    With ``in_features=40, hidden=100, depth=2`` this is the MNIST-1D benchmark's
    MLP, 40 → 100 → 100 → 10, except that the published ``MLPBase`` also adds a
    residual connection around its second layer (``h + relu(W₂h)``); ours is the
    plain stack.

    Args:
        in_features (int): input size after flattening. Default: ``64`` (8 × 8 digits).
        hidden (int): width of every hidden layer. Default: ``256``.
        depth (int): number of hidden layers. Default: ``2``.
        num_classes (int): output size. Default: ``10``.
        dropout (float): drop probability ``p`` after each hidden activation. Default: ``0.0``.
        batch_norm (bool): torch's batch norm before each activation (the same as
            ``norm="batch"``). Default: ``False``.
        norm (None, str or callable, keyword only): the normalization layer before each
            activation, see :func:`make_norm`. Default: ``None``.

    Shape:
        - Input: ``(N, *)`` with ``in_features`` elements per example.
        - Output: ``(N, num_classes)`` logits.

    Example:
        >>> MLP(40, hidden=100, dropout=0.1)
        MLP(
          (0): Flatten(start_dim=1, end_dim=-1)
          (1): Linear(in_features=40, out_features=100, bias=True)
          (2): ReLU()
          (3): Dropout(p=0.1)
          (4): Linear(in_features=100, out_features=100, bias=True)
          (5): ReLU()
          (6): Dropout(p=0.1)
          (7): Linear(in_features=100, out_features=10, bias=True)
        )

    Used in:
        every chapter with an experiment.
    """

    def __init__(
        self,
        in_features=64,
        hidden=256,
        depth=2,
        num_classes=10,
        dropout=0.0,
        batch_norm=False,
        *,
        norm: NormSpec = None,
    ):
        in_features = check_scalar(in_features, "in_features", kind="int", low=1)
        hidden = check_scalar(hidden, "hidden", kind="int", low=1)
        depth = check_scalar(depth, "depth", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        dropout = check_scalar(dropout, "dropout", low=0, high=1, closed="left")
        norm = _resolve_norm(norm, batch_norm)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if norm is not None:
                layers.append(make_norm(norm, hidden))
            layers.append(nn.ReLU())
            layers.append(_dropout_layer(dropout))  # nn.Identity() when p = 0
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class SmallCNN(nn.Sequential):
    """Two 3 × 3 convolutions, then a small classifier, for 8 × 8 single-channel images.

    Args:
        in_channels (int): input channels. Default: ``1``.
        channels (int): channels of both convolutions. Default: ``32``.
        num_classes (int): output size. Default: ``10``.
        dropout (float): drop probability before the last layer. Default: ``0.0``.
        batch_norm (bool): torch's batch norm after each convolution (the same as
            ``norm="batch"``). Default: ``False``.
        norm (None, str or callable, keyword only): the normalization layer after each
            convolution, see :func:`make_norm`. Default: ``None``.
        channel_dropout (float, keyword only): spatial dropout (whole channels,
            :class:`regcourse.dropout.Dropout2d`) after each convolution's activation.
            Default: ``0.0``.

    Shape:
        - Input: ``(N, in_channels, 8, 8)``.
        - Output: ``(N, num_classes)`` logits.

    Used in:
        chapters "Batch normalization as a regularizer", "Data augmentation".
    """

    def __init__(
        self,
        in_channels=1,
        channels=32,
        num_classes=10,
        dropout=0.0,
        batch_norm=False,
        *,
        norm: NormSpec = None,
        channel_dropout: float = 0.0,
    ):
        in_channels = check_scalar(in_channels, "in_channels", kind="int", low=1)
        channels = check_scalar(channels, "channels", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        dropout = check_scalar(dropout, "dropout", low=0, high=1, closed="left")
        channel_dropout = check_scalar(
            channel_dropout, "channel_dropout", low=0, high=1, closed="left"
        )
        norm = _resolve_norm(norm, batch_norm)

        def block(c_in: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, channels, 3, padding=1),
                make_norm(norm, channels, spatial_dims=2),
                nn.ReLU(),
            ] + ([_channel_dropout_layer(channel_dropout, 2)] if channel_dropout > 0 else [])

        super().__init__(
            *block(in_channels),
            *block(channels),
            nn.MaxPool2d(2),  # 8 × 8 → 4 × 4
            nn.Flatten(),
            _dropout_layer(dropout),
            nn.Linear(channels * 16, num_classes),
        )


class _AsNCL(nn.Module):
    """Accept ``(N, L)`` signals as well as ``(N, C, L)``: add the channel dimension if missing."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels

    @layer_forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and self.in_channels == 1:
            return x.unsqueeze(1)
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, L)"
                + (" or (N, L)" if self.in_channels == 1 else "")
                + f", got {tuple(x.shape)}"
            )
        return x

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}"


def _conv_length(length: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
    return (length + 2 * padding - kernel) // stride + 1


class CNN1d(nn.Sequential):
    """The MNIST-1D benchmark's 1-D CNN: three strided convolutions with ReLU, then a linear layer.

    Matches ``ConvBase`` of the ``mnist1d`` repository (``notebooks/models.py``):
    ``Conv1d(1, 25, 5, stride=2, padding=1)``, ``Conv1d(25, 25, 3, stride=2, padding=1)``,
    ``Conv1d(25, 25, 3, stride=2, padding=1)``, each followed by ReLU, then the flattened
    ``25 × 5 = 125`` features into ``Linear(125, 10)`` (lengths 40 → 19 → 10 → 5). The
    optional normalization layer sits between each convolution and its ReLU, spatial
    dropout after the ReLU, element-wise dropout before the linear layer; with their
    defaults the network is exactly the published one.

    Args:
        length (int): input length ``L``. Default: ``40`` (MNIST-1D).
        channels (int): channels of every convolution. Default: ``25``.
        num_classes (int): output size. Default: ``10``.
        in_channels (int): input channels. Default: ``1``.
        dropout (float): drop probability of the flattened features before the linear
            layer. Default: ``0.0``.
        channel_dropout (float): spatial dropout (whole channels,
            :class:`regcourse.dropout.Dropout1d`) after each convolution's ReLU. Default: ``0.0``.
        norm (None, str or callable): the normalization layer after each convolution,
            see :func:`make_norm` (``"batch"``, ``"regcourse_batch"``, ``"layer"``,
            ``"group"``). Default: ``None``.

    Shape:
        - Input: ``(N, in_channels, L)``, or ``(N, L)`` when ``in_channels == 1``.
        - Output: ``(N, num_classes)`` logits.

    Example:
        >>> net = CNN1d()   # 150 + 1,900 + 1,900 conv parameters, 1,260 in the linear layer
        >>> net(torch.zeros(2, 40)).shape, sum(p.numel() for p in net.parameters())
        (torch.Size([2, 10]), 5210)

    Used in:
        chapters "The core problem", "Dropout", "Batch normalization as a regularizer".
    """

    def __init__(
        self,
        length: int = 40,
        channels: int = 25,
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        dropout: float = 0.0,
        channel_dropout: float = 0.0,
        norm: NormSpec = None,
    ) -> None:
        length = check_scalar(length, "length", kind="int", low=8)
        channels = check_scalar(channels, "channels", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        in_channels = check_scalar(in_channels, "in_channels", kind="int", low=1)
        dropout = check_scalar(dropout, "dropout", low=0, high=1, closed="left")
        channel_dropout = check_scalar(
            channel_dropout, "channel_dropout", low=0, high=1, closed="left"
        )
        make_norm(norm, channels, spatial_dims=1)  # check norm before building anything
        layers: list[nn.Module] = [_AsNCL(in_channels)]
        c_in, out_len = in_channels, length
        for kernel in (5, 3, 3):
            layers.append(nn.Conv1d(c_in, channels, kernel, stride=2, padding=1))
            if norm is not None:
                layers.append(make_norm(norm, channels, spatial_dims=1))
            layers.append(nn.ReLU())
            if channel_dropout > 0:
                layers.append(_channel_dropout_layer(channel_dropout, 1))
            c_in, out_len = channels, _conv_length(out_len, kernel)
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(_dropout_layer(dropout))
        layers.append(nn.Linear(channels * out_len, num_classes))
        super().__init__(*layers)


class ResidualMLP(nn.Module):
    """A residual MLP for 8 × 8 digits built from :class:`~regcourse.depth.ResidualBlock`\\ s with stochastic depth.

    Flatten → Linear(in_features, width) → ``num_blocks`` residual blocks →
    activation → Linear(width, num_classes). Each block's branch is the
    pre-activation unit ``activation → Linear → activation → Linear``; block ``l``
    is skipped with probability ``1 - p_l``, where ``p_l`` comes from
    :func:`~regcourse.depth.linear_decay_survival` (``survival_last = 1`` means no stochastic depth).

    Args:
        in_features (int): input size after flattening. Default: ``64``.
        width (int): width of the residual stream and of every branch. Default: ``64``.
        num_blocks (int): number of residual blocks. Default: ``4``.
        num_classes (int): output size. Default: ``10``.
        survival_last (float): survival probability of the last block, in ``(0, 1]``. Default: ``1.0``.
        mode (str): ``"train_scale"`` or ``"test_scale"``. Default: ``"train_scale"``.
        activation (str): ``"relu"``, or ``"identity"`` for a linear network. Default: ``"relu"``.
        generator (torch.Generator, optional): source of randomness of the blocks.
            Default: ``None``.

    Shape:
        Input: ``(N, *)`` with ``in_features`` elements per example. Output: ``(N, num_classes)``.

    Used in:
        chapter "DropConnect and stochastic depth".
    """

    def __init__(
        self,
        in_features: int = 64,
        width: int = 64,
        num_blocks: int = 4,
        num_classes: int = 10,
        survival_last: float = 1.0,
        mode: str = "train_scale",
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        in_features = check_scalar(in_features, "in_features", kind="int", low=1)
        width = check_scalar(width, "width", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=1)
        survival = linear_decay_survival(num_blocks, survival_last)
        mode = _check_mode(mode)
        check_choice(activation, "activation", sorted(_ACTIVATIONS))
        act = _ACTIVATIONS[activation]
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width))
        self.blocks = nn.ModuleList(
            ResidualBlock(
                nn.Sequential(act(), nn.Linear(width, width), act(), nn.Linear(width, width)),
                p=1.0 - float(s),
                mode=mode,
                generator=generator,
            )
            for s in survival
        )
        self.head = nn.Sequential(act(), nn.Linear(width, num_classes))

    @property
    def survival(self) -> torch.Tensor:
        """The blocks' survival probabilities (float64), first block first."""
        return torch.tensor([b.survival for b in self.blocks], dtype=torch.float64)

    @layer_forward
    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``x``; ``masks`` (``(num_blocks, N)``, 0/1), if given, fixes every
        block's keep decisions and computes the training-mode output with them."""
        h = self.stem(x)
        if masks is not None:
            check_tensor(masks, "masks", ndim=2, floating=False)
            if masks.shape != (len(self.blocks), h.shape[0]):
                raise ValueError(
                    f"masks must have shape (num_blocks, N) = {(len(self.blocks), h.shape[0])}, "
                    f"got {tuple(masks.shape)}"
                )
        for i, block in enumerate(self.blocks):
            h = block(h, None if masks is None else masks[i])
        return self.head(h)


def build_residual_mlp(
    *, seed: int = 0, dtype: torch.dtype = torch.float32, **kwargs
) -> ResidualMLP:
    """A :class:`ResidualMLP` with weights initialised from ``seed``, converted to ``dtype``.

    Torch's global generator is left as it was.

    Args:
        seed (int, keyword only): seed of the initial weights. Default: ``0``.
        dtype (torch.dtype, keyword only): floating dtype of the parameters. Default: ``torch.float32``.
        **kwargs: passed to :class:`ResidualMLP`.

    Returns:
        ResidualMLP: the model, in training mode.

    Used in:
        chapter "DropConnect and stochastic depth".
    """
    seed = check_scalar(seed, "seed", kind="int", low=0)
    check_float_dtype(dtype)
    with seeded(seed):
        model = ResidualMLP(**kwargs)
    return model.to(dtype)


_BUILDERS = {"mlp": MLP, "cnn": SmallCNN, "logistic": LogisticRegression, "cnn1d": CNN1d}


def build_model(kind: str = "mlp", *, seed: int = 0, **kwargs) -> nn.Module:
    """Build a model with weights initialised from ``seed``; torch's global generator is left as it was.

    Args:
        kind (str): ``"mlp"`` (:class:`MLP`), ``"cnn"`` (:class:`SmallCNN`),
            ``"logistic"`` (:class:`LogisticRegression`) or ``"cnn1d"`` (:class:`CNN1d`).
            Default: ``"mlp"``.
        seed (int, keyword only): seed of the initial weights. Default: ``0``.
        **kwargs: passed to the model's constructor.

    Returns:
        nn.Module: the model, in training mode.

    Example:
        >>> a, b = build_model("cnn1d", seed=1), build_model("cnn1d", seed=1)
        >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        True

    Used in:
        every chapter with an experiment.
    """
    check_choice(kind, "kind", sorted(_BUILDERS))
    seed = check_scalar(seed, "seed", kind="int", low=0)
    with seeded(seed):
        return _BUILDERS[kind](**kwargs)


_MNIST1D = {
    "logistic": ("logistic", {"in_features": 40}),
    "mlp": ("mlp", {"in_features": 40, "hidden": 100, "depth": 2}),
    "cnn": ("cnn1d", {"length": 40, "channels": 25}),
}


def mnist1d_model(kind: str, *, seed: int = 0, **kwargs) -> nn.Module:
    """One of the MNIST-1D benchmark's baselines with the published sizes, seeded.

    Args:
        kind (str): ``"logistic"`` (:class:`LogisticRegression`, 40 → 10), ``"mlp"``
            (:class:`MLP` 40 → 100 → 100 → 10) or ``"cnn"`` (:class:`CNN1d`, 25 channels).
        seed (int, keyword only): seed of the initial weights. Default: ``0``.
        **kwargs: further constructor arguments (``dropout``, ``norm``, ...).

    Returns:
        nn.Module: the model; it accepts ``(N, 40)`` inputs (and the CNN ``(N, 1, 40)`` too).

    Example:
        >>> mnist1d_model("mlp")[1]
        Linear(in_features=40, out_features=100, bias=True)

    Used in:
        chapter "The core problem".
    """
    check_choice(kind, "kind", sorted(_MNIST1D))
    builder, sizes = _MNIST1D[kind]
    return build_model(builder, seed=seed, **{**sizes, **kwargs})
