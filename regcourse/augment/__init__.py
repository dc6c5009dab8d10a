"""Data augmentation on tensors: new training examples from transformed old ones.

Images are float tensors of shape ``(N, C, H, W)`` (a single ``(C, H, W)`` image is
accepted wherever the transform acts on one image at a time). Every random
transform draws its randomness from an explicit ``generator`` (``None`` means
torch's default generator, as in torch itself), and draws it *per example*: each
image of a batch gets its own flip, crop, angle, colour factors and Cutout square.
Mixup and CutMix follow their papers and draw one mixing weight (and one box) per
batch, pairing each example with another one of the same batch.

- Geometry: :func:`hflip`, :func:`random_crop` (pad, then crop back), :func:`random_resized_crop`
  (crop a random region, resize it back with bilinear interpolation), :func:`rotate_by`
  and :func:`rotate` (small rotations with ``affine_grid``/``grid_sample``).
- Colour: :func:`adjust_brightness`, :func:`adjust_contrast`, :func:`adjust_saturation`,
  :func:`adjust_hue` and the random :func:`color_jitter`.
- Occlusion and mixing: :func:`cutout`, :func:`mixup`, :func:`cutmix`, with a
  generator-aware Beta sampler :func:`sample_beta`.
- A pipeline for ``regcourse.training.train(..., augment=...)``: the module
  wrappers (:class:`RandomHFlip`, ..., :class:`CutMix`) composed by :class:`Augment`.
  Like torch's own layers they act only in ``train()`` mode: in ``eval()`` mode they
  return their input unchanged, because augmentation is a training-time device.
- Beyond images: text (:func:`synonym_replacement`, :func:`random_insertion`,
  :func:`random_swap`), audio (:func:`tone`, :func:`resample`, :func:`time_stretch`,
  :func:`pitch_shift`, :func:`add_noise`) and tabular data (:func:`smote`).

Used in:
    chapter "Data augmentation".

The subpackage is organised by idea: ``regcourse.augment.image`` (geometry and
colour, Cutout), ``.mixing`` (Mixup, CutMix), ``.modules`` (the ``nn.Module`` steps and
:class:`Augment`), ``.text``, ``.audio`` and ``.tabular``; every public name is importable from
``regcourse.augment`` itself.
"""

from __future__ import annotations

from .._random import sample_beta, sample_gamma
from .audio import add_noise, dominant_frequency, pitch_shift, resample, time_stretch, tone
from .image import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    color_jitter,
    cutout,
    hflip,
    random_crop,
    random_resized_crop,
    rotate,
    rotate_by,
)
from .mixing import cutmix, cutmix_box, mixup
from .modules import (
    Augment,
    ColorJitter,
    CutMix,
    Cutout,
    Mixup,
    RandomCrop,
    RandomHFlip,
    RandomResizedCrop,
    RandomRotation,
)
from .tabular import smote
from .text import SYNONYMS, random_insertion, random_swap, synonym_replacement

__all__ = [
    "hflip",
    "random_crop",
    "random_resized_crop",
    "rotate_by",
    "rotate",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "color_jitter",
    "cutout",
    "sample_gamma",
    "sample_beta",
    "mixup",
    "cutmix_box",
    "cutmix",
    "RandomHFlip",
    "RandomCrop",
    "RandomResizedCrop",
    "RandomRotation",
    "ColorJitter",
    "Cutout",
    "Mixup",
    "CutMix",
    "Augment",
    "SYNONYMS",
    "synonym_replacement",
    "random_insertion",
    "random_swap",
    "tone",
    "dominant_frequency",
    "resample",
    "time_stretch",
    "pitch_shift",
    "add_noise",
    "smote",
]
