"""Augmentations as ``nn.Module`` steps and the :class:`Augment` pipeline for ``train(augment=...)``.

Like torch's own layers they act only in ``train()`` mode; in ``eval()`` mode they
return their input unchanged.

Used in:
    chapter "Data augmentation".
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_generator, check_scalar
from ._common import _interval
from .image import color_jitter, cutout, hflip, random_crop, random_resized_crop, rotate
from .mixing import cutmix, mixup

__all__ = [
    "RandomHFlip",
    "RandomCrop",
    "RandomResizedCrop",
    "RandomRotation",
    "ColorJitter",
    "Cutout",
    "Mixup",
    "CutMix",
    "Augment",
]


class _ImageAugmentation(nn.Module):
    """Base of the image-only transforms: act in ``train()`` mode, identity in ``eval()``."""

    mixes_labels = False

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return x
        return self.transform(x, generator)


class RandomHFlip(_ImageAugmentation):
    """:func:`hflip` as a module (only in ``train()`` mode)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_scalar(p, "p", low=0, high=1)

    def transform(self, x, generator):
        return hflip(x, self.p, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RandomCrop(_ImageAugmentation):
    """:func:`random_crop` (pad, then crop) as a module (only in ``train()`` mode)."""

    def __init__(self, size: int, padding: int = 0, fill: float = 0.0):
        super().__init__()
        self.size = check_scalar(size, "size", kind="int", low=1)
        self.padding = check_scalar(padding, "padding", kind="int", low=0)
        self.fill = check_scalar(fill, "fill")

    def transform(self, x, generator):
        return random_crop(x, self.size, self.padding, self.fill, generator=generator)

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}, fill={self.fill:g}"


class RandomResizedCrop(_ImageAugmentation):
    """:func:`random_resized_crop` as a module (only in ``train()`` mode)."""

    def __init__(self, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)):
        super().__init__()
        self.scale = _interval(scale, "scale", 0, 1)
        self.ratio = _interval(ratio, "ratio", 0, None)

    def transform(self, x, generator):
        return random_resized_crop(x, self.scale, self.ratio, generator=generator)

    def extra_repr(self) -> str:
        (s0, s1), (r0, r1) = self.scale, self.ratio
        return f"scale=({s0:g}, {s1:g}), ratio=({r0:.3g}, {r1:.3g})"


class RandomRotation(_ImageAugmentation):
    """:func:`rotate` as a module (only in ``train()`` mode)."""

    def __init__(self, max_degrees: float = 15.0, fill: float = 0.0):
        super().__init__()
        self.max_degrees = check_scalar(max_degrees, "max_degrees", low=0, high=180)
        self.fill = check_scalar(fill, "fill")

    def transform(self, x, generator):
        return rotate(x, self.max_degrees, self.fill, generator=generator)

    def extra_repr(self) -> str:
        return f"max_degrees={self.max_degrees:g}, fill={self.fill:g}"


class ColorJitter(_ImageAugmentation):
    """:func:`color_jitter` as a module (only in ``train()`` mode)."""

    def __init__(self, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.0, clamp=True):
        super().__init__()
        self.brightness = check_scalar(brightness, "brightness", low=0)
        self.contrast = check_scalar(contrast, "contrast", low=0)
        self.saturation = check_scalar(saturation, "saturation", low=0)
        self.hue = check_scalar(hue, "hue", low=0, high=0.5)
        self.clamp = bool(clamp)

    def transform(self, x, generator):
        return color_jitter(
            x,
            self.brightness,
            self.contrast,
            self.saturation,
            self.hue,
            generator=generator,
            clamp=self.clamp,
        )

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness:g}, contrast={self.contrast:g}, "
            f"saturation={self.saturation:g}, hue={self.hue:g}"
        )


class Cutout(_ImageAugmentation):
    """:func:`cutout` as a module (only in ``train()`` mode)."""

    def __init__(self, size: int, p: float = 1.0, value: float = 0.0):
        super().__init__()
        self.size = check_scalar(size, "size", kind="int", low=1)
        self.p = check_scalar(p, "p", low=0, high=1)
        self.value = check_scalar(value, "value")

    def transform(self, x, generator):
        return cutout(x, self.size, self.p, self.value, generator=generator)

    def extra_repr(self) -> str:
        return f"size={self.size}, p={self.p:g}, value={self.value:g}"


class _LabelMixing(nn.Module):
    mixes_labels = True

    def __init__(self, num_classes: int, alpha: float):
        super().__init__()
        self.num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
        self.alpha = check_scalar(alpha, "alpha", low=0, closed="neither")

    def forward(self, x, y, generator: torch.Generator | None = None):
        if not self.training:
            return x, y
        return self.mix(x, y, self.num_classes, self.alpha, generator=generator)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, alpha={self.alpha:g}"


class Mixup(_LabelMixing):
    """:func:`mixup` as a module: ``forward(x, y, generator) -> (x̃, ỹ)`` in ``train()`` mode."""

    mix = staticmethod(mixup)

    def __init__(self, num_classes: int, alpha: float = 0.2):
        super().__init__(num_classes, alpha)


class CutMix(_LabelMixing):
    """:func:`cutmix` as a module: ``forward(x, y, generator) -> (x̃, ỹ)`` in ``train()`` mode."""

    mix = staticmethod(cutmix)

    def __init__(self, num_classes: int, alpha: float = 1.0):
        super().__init__(num_classes, alpha)


class Augment(nn.Module):
    """A pipeline of augmentations, callable as ``augment(x, y, generator) -> (x, y)``.

    Pass it to ``regcourse.training.train(..., augment=Augment(...))``. The steps run in
    order with the same generator; image transforms change ``x`` only, :class:`Mixup`
    and :class:`CutMix` also turn ``y`` into soft labels. In ``eval()`` mode the whole
    pipeline returns its input unchanged.

    Args:
        *steps: modules from this file (or any ``nn.Module`` following the same
            convention: ``forward(x, generator)``, or ``forward(x, y, generator)`` with a
            class attribute ``mixes_labels = True``).

    Example:
        >>> aug = Augment(RandomCrop(8, padding=1), RandomRotation(10), Cutout(3))
        >>> x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
        >>> xa, ya = aug(x, y, torch.Generator().manual_seed(0))
        >>> xa.shape, torch.equal(ya, y)
        (torch.Size([4, 1, 8, 8]), True)

    Used in:
        chapter "Data augmentation".
    """

    def __init__(self, *steps: nn.Module):
        super().__init__()
        for i, step in enumerate(steps):
            if not isinstance(step, nn.Module):
                raise TypeError(f"steps[{i}] must be an nn.Module, got {type(step).__name__}")
        self.steps = nn.ModuleList(steps)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        check_generator(generator)
        if not self.training:
            return x, y
        for step in self.steps:
            if getattr(step, "mixes_labels", False):
                x, y = step(x, y, generator=generator)
            else:
                x = step(x, generator=generator)
        return x, y
