"""Small networks for the chapters' experiments: an MLP and a CNN for 8 × 8 digits.

Both take the regularizers as arguments (dropout probability, batch norm on/off),
so an experiment changes one setting and keeps everything else equal.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_scalar

__all__ = ["MLP", "SmallCNN", "build_model"]


def _dropout_layer(p: float) -> nn.Module:
    from .dropout import Dropout

    return Dropout(p) if p > 0 else nn.Identity()


class MLP(nn.Sequential):
    """Fully connected network: flatten, then (Linear → [BatchNorm] → ReLU → [Dropout]) × depth.

    Args:
        in_features (int): input size after flattening. Default: ``64`` (8 × 8 digits).
        hidden (int): width of every hidden layer. Default: ``256``.
        depth (int): number of hidden layers. Default: ``2``.
        num_classes (int): output size. Default: ``10``.
        dropout (float): drop probability ``p`` after each hidden activation. Default: ``0.0``.
        batch_norm (bool): batch norm before each activation. Default: ``False``.

    Shape:
        - Input: ``(N, *)`` with ``in_features`` elements per example.
        - Output: ``(N, num_classes)`` logits.
    """

    def __init__(self, in_features=64, hidden=256, depth=2, num_classes=10, dropout=0.0, batch_norm=False):
        in_features = check_scalar(in_features, "in_features", kind="int", low=1)
        hidden = check_scalar(hidden, "hidden", kind="int", low=1)
        depth = check_scalar(depth, "depth", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        dropout = check_scalar(dropout, "dropout", low=0, high=1, closed="left")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(nn.ReLU())
            layers.append(_dropout_layer(dropout))
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
        batch_norm (bool): batch norm after each convolution. Default: ``False``.

    Shape:
        - Input: ``(N, in_channels, 8, 8)``.
        - Output: ``(N, num_classes)`` logits.
    """

    def __init__(self, in_channels=1, channels=32, num_classes=10, dropout=0.0, batch_norm=False):
        in_channels = check_scalar(in_channels, "in_channels", kind="int", low=1)
        channels = check_scalar(channels, "channels", kind="int", low=1)
        num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        dropout = check_scalar(dropout, "dropout", low=0, high=1, closed="left")
        bn = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, padding=1), bn(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), bn(channels), nn.ReLU(),
            nn.MaxPool2d(2),  # 8 × 8 → 4 × 4
            nn.Flatten(),
            _dropout_layer(dropout),
            nn.Linear(channels * 16, num_classes),
        )


def build_model(kind: str = "mlp", *, seed: int = 0, **kwargs) -> nn.Module:
    """Build an :class:`MLP` (``"mlp"``) or :class:`SmallCNN` (``"cnn"``) with weights
    initialised from ``seed`` (torch's global generator is left as it was)."""
    builders = {"mlp": MLP, "cnn": SmallCNN}
    if kind not in builders:
        raise ValueError(f"kind must be one of {sorted(builders)}, got {kind!r}")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builders[kind](**kwargs)
