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

Used in: chapter "Data augmentation".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_generator, check_scalar, check_tensor

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

# ITU-R BT.601 luma weights, the grayscale used by torchvision and PIL.
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- helpers
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


# --------------------------------------------------------------------------- geometry
def hflip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left to right with probability ``p``.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        p (float): probability that an image is flipped (``1`` flips all, ``0`` none).
            Default: ``0.5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Returns:
        Tensor of the same shape and dtype; flipping twice with ``p=1`` gives ``x`` back.

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 1, 4)
        >>> hflip(x, p=1.0)
        tensor([[[[3., 2., 1., 0.]]]])

    Used in: chapter "Data augmentation".
    """
    p = check_scalar(p, "p", low=0, high=1)
    check_generator(generator)
    xb, single = _images(x)
    flip = torch.rand(len(xb), generator=generator) < p
    out = torch.where(flip.view(-1, 1, 1, 1).to(xb.device), xb.flip(-1), xb)
    return _unbatch(out, single)


def random_crop(
    x: torch.Tensor,
    size: int,
    padding: int = 0,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pad each image by ``padding`` pixels of value ``fill``, then cut a random ``size × size`` window.

    With ``size`` equal to the image size this is a random *shift* by up to
    ``padding`` pixels in each direction, the usual crop for small images
    (CIFAR's "pad 4, crop 32"). No interpolation: pixels are copied.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        size (int): side of the output window, ``1 <= size <= min(H, W) + 2 * padding``.
        padding (int): pixels added on every side before cropping. Default: ``0``.
        fill (float): value of the padding. Default: ``0.0``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, size, size)``.

    Used in: chapter "Data augmentation".
    """
    check_generator(generator)
    xb, single = _images(x)
    padding = check_scalar(padding, "padding", kind="int", low=0)
    n, c, h, w = xb.shape
    size = check_scalar(size, "size", kind="int", low=1, high=min(h, w) + 2 * padding)
    fill = check_scalar(fill, "fill")
    padded = F.pad(xb, (padding,) * 4, value=fill) if padding else xb
    top = torch.randint(0, h + 2 * padding - size + 1, (n,), generator=generator)
    left = torch.randint(0, w + 2 * padding - size + 1, (n,), generator=generator)
    rows = (top[:, None] + torch.arange(size)).to(xb.device)   # (N, size)
    cols = (left[:, None] + torch.arange(size)).to(xb.device)
    batch = torch.arange(n, device=xb.device)[:, None, None, None]
    chan = torch.arange(c, device=xb.device)[None, :, None, None]
    out = padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
    return _unbatch(out, single)


def random_resized_crop(
    x: torch.Tensor,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    return_boxes: bool = False,
):
    """Crop a random region of each image and resize it back to ``H × W`` (bilinear).

    For each image, the region's area is a fraction ``s ~ U(scale)`` of the image and
    its aspect ratio (width / height) ``r`` is log-uniform in ``ratio``; its width is
    ``round(sqrt(s·H·W·r))`` and its height ``round(sqrt(s·H·W / r))``, each clipped to
    ``[1, W]`` and ``[1, H]`` (torchvision instead retries up to ten times, then falls
    back to a centre crop). Its top-left corner is uniform over the valid positions.
    The region is resized with ``F.interpolate(mode="bilinear", align_corners=False)``.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        scale (pair of float): range of the area fraction, in ``(0, 1]``. Default: ``(0.6, 1.0)``.
        ratio (pair of float): range of the aspect ratio, positive. Default: ``(3/4, 4/3)``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_boxes (bool): also return the regions as a long tensor ``(N, 4)`` of
            ``(top, left, height, width)``. Default: ``False``.

    Returns:
        The resized crops, same shape and dtype as ``x`` (and the boxes if asked).

    Used in: chapter "Data augmentation".
    """
    check_generator(generator)
    xb, single = _images(x)
    s_lo, s_hi = _interval(scale, "scale", 0, 1)
    r_lo, r_hi = _interval(ratio, "ratio", 0, None)
    n, _, h, w = xb.shape
    area = torch.empty(n, dtype=torch.float64).uniform_(s_lo, s_hi, generator=generator) * (h * w)
    log_r = torch.empty(n, dtype=torch.float64).uniform_(
        math.log(r_lo), math.log(r_hi), generator=generator
    )
    r = torch.exp(log_r)
    cw = torch.sqrt(area * r).round().clamp(1, w).long()
    ch = torch.sqrt(area / r).round().clamp(1, h).long()
    u_top = torch.rand(n, generator=generator, dtype=torch.float64)
    u_left = torch.rand(n, generator=generator, dtype=torch.float64)
    top = (u_top * (h - ch + 1)).floor().long()
    left = (u_left * (w - cw + 1)).floor().long()
    out = torch.empty_like(xb)
    for i in range(n):
        t, l, hh, ww = int(top[i]), int(left[i]), int(ch[i]), int(cw[i])
        crop = xb[i : i + 1, :, t : t + hh, l : l + ww]
        out[i] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    out = _unbatch(out, single)
    if return_boxes:
        return out, torch.stack([top, left, ch, cw], dim=1)
    return out


def rotate_by(x: torch.Tensor, degrees, fill: float = 0.0) -> torch.Tensor:
    """Rotate each image about its centre by ``degrees`` (counter-clockwise as displayed).

    Every output pixel takes the bilinear interpolation of the input at the rotated
    position (``F.affine_grid`` + ``F.grid_sample`` with ``align_corners=False``);
    positions outside the input get ``fill``. Positive angles turn the picture
    counter-clockwise when row 0 is drawn at the top, the direction of
    ``torch.rot90(x, 1, dims=(-2, -1))`` and of torchvision.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        degrees (float or Tensor): one angle for all, or one per example ``(N,)``.
        fill (float): value of the corners that come from outside the image.
            Default: ``0.0``.

    Returns:
        Tensor of the same shape and dtype. ``degrees=0`` returns ``x`` up to rounding;
        ``degrees=90`` on a square image equals ``torch.rot90`` (up to rounding).

    Used in: chapter "Data augmentation".
    """
    xb, single = _images(x)
    fill = check_scalar(fill, "fill")
    n, _, h, w = xb.shape
    rad = _per_example(degrees, "degrees", n, torch.float64) * (math.pi / 180)
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Output (x, y) in normalised coordinates samples the input at R(angle) (x, y),
    # corrected for the aspect ratio (normalised units differ along H and W).
    theta = torch.stack(
        [
            torch.stack([cos, -sin * (h / w), torch.zeros_like(cos)], dim=1),
            torch.stack([sin * (w / h), cos, torch.zeros_like(cos)], dim=1),
        ],
        dim=1,
    ).to(xb.dtype).to(xb.device)
    grid = F.affine_grid(theta, list(xb.shape), align_corners=False)
    out = F.grid_sample(xb - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out + fill
    return _unbatch(out, single)


def rotate(
    x: torch.Tensor,
    max_degrees: float = 15.0,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate each image by its own random angle, uniform in ``[-max_degrees, max_degrees]``.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        max_degrees (float): largest angle, in ``[0, 180]``. Default: ``15.0`` (small
            rotations of 5 to 15 degrees are the usual choice).
        fill (float): value of the corners that come from outside the image. For
            standardised inputs pass the value of a background pixel. Default: ``0.0``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Returns:
        Tensor of the same shape and dtype (see :func:`rotate_by`).

    Used in: chapter "Data augmentation".
    """
    max_degrees = check_scalar(max_degrees, "max_degrees", low=0, high=180)
    check_generator(generator)
    xb, single = _images(x)
    angles = (torch.rand(len(xb), generator=generator, dtype=torch.float64) * 2 - 1) * max_degrees
    return _unbatch(rotate_by(xb, angles, fill=fill), single)


# --------------------------------------------------------------------------- colour
def adjust_brightness(x: torch.Tensor, factor) -> torch.Tensor:
    """Multiply each image by ``factor`` (``1`` keeps it, ``0`` makes it black). No clipping.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        factor (float or Tensor): one factor, or one per example ``(N,)``.
    """
    xb, single = _images(x)
    f = _per_example(factor, "factor", len(xb), xb.dtype).view(-1, 1, 1, 1).to(xb.device)
    return _unbatch(xb * f, single)


def adjust_contrast(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend each image with its mean gray level: ``factor·x + (1 − factor)·mean``.

    ``factor = 1`` keeps the image, ``0`` gives a uniform gray image; the mean is that
    of the luma for RGB images and of the single channel otherwise. No clipping.
    """
    xb, single = _images(x)
    f = _per_example(factor, "factor", len(xb), xb.dtype).view(-1, 1, 1, 1).to(xb.device)
    gray = _gray(xb) if xb.shape[1] == 3 else xb.mean(1, keepdim=True)
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    return _unbatch(f * xb + (1 - f) * mean, single)


def adjust_saturation(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend each RGB image with its own grayscale version: ``factor·x + (1 − factor)·gray``.

    ``factor = 1`` keeps the image, ``0`` removes all colour. RGB only (``C = 3``).
    """
    xb, single = _images(x)
    if xb.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) channels for saturation, got {xb.shape[1]}")
    f = _per_example(factor, "factor", len(xb), xb.dtype).view(-1, 1, 1, 1).to(xb.device)
    return _unbatch(f * xb + (1 - f) * _gray(xb), single)


def _yiq_matrices(dtype) -> tuple[torch.Tensor, torch.Tensor]:
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
    )
    return to_yiq, torch.linalg.inv(to_yiq)


def adjust_hue(x: torch.Tensor, shift) -> torch.Tensor:
    """Turn the hue of each RGB image by ``shift`` of a full turn (``shift`` in ``[-0.5, 0.5]``).

    Implemented as a rotation by ``2π·shift`` of the two chroma coordinates (I, Q) of
    the YIQ colour space, leaving the luma Y unchanged: a linear, smooth version of
    the HSV hue shift that torchvision uses. Gray pixels stay as they are; a shift
    and its negative cancel. No clipping. RGB only (``C = 3``).
    """
    xb, single = _images(x)
    if xb.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) channels for hue, got {xb.shape[1]}")
    s = _per_example(shift, "shift", len(xb), torch.float64)
    if bool(((s < -0.5) | (s > 0.5)).any()):
        raise ValueError(f"shift must be in [-0.5, 0.5], got {s[(s < -0.5) | (s > 0.5)][0].item():g}")
    to_yiq, to_rgb = _yiq_matrices(torch.float64)
    a = 2 * math.pi * s
    rot = torch.zeros(len(xb), 3, 3, dtype=torch.float64)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(a), -torch.sin(a)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(a), torch.cos(a)
    m = (to_rgb @ rot @ to_yiq).to(xb.dtype).to(xb.device)   # (N, 3, 3)
    return _unbatch(torch.einsum("nij,njhw->nihw", m, xb), single)


def color_jitter(
    x: torch.Tensor,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
    hue: float = 0.0,
    generator: torch.Generator | None = None,
    clamp: bool = True,
) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue, drawn per image, applied in that order.

    Each image draws factors ``b ~ U(max(0, 1 − brightness), 1 + brightness)``, likewise
    ``c`` and ``s``, and a hue shift ``h ~ U(−hue, hue)``, then applies
    :func:`adjust_brightness`, :func:`adjust_contrast`, :func:`adjust_saturation` and
    :func:`adjust_hue` (the YIQ rotation) in this fixed order (torchvision shuffles the
    order). A strength of ``0`` skips its step, so all-zero strengths return ``x``.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or ``(C, H, W)``, values in ``[0, 1]``;
            saturation and hue need ``C = 3``.
        brightness, contrast, saturation (float): strengths, ``>= 0``. Default: ``0.2``.
        hue (float): largest hue shift, in ``[0, 0.5]`` of a turn. Default: ``0.0``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        clamp (bool): clip the result to ``[0, 1]``. Default: ``True``.

    Used in: chapter "Data augmentation".
    """
    brightness = check_scalar(brightness, "brightness", low=0)
    contrast = check_scalar(contrast, "contrast", low=0)
    saturation = check_scalar(saturation, "saturation", low=0)
    hue = check_scalar(hue, "hue", low=0, high=0.5)
    check_generator(generator)
    xb, single = _images(x)
    if xb.shape[1] != 3 and (saturation > 0 or hue > 0):
        raise ValueError(f"x must have 3 (RGB) channels for saturation or hue, got {xb.shape[1]}")
    n = len(xb)

    def factors(strength):
        return torch.empty(n, dtype=torch.float64).uniform_(
            max(0.0, 1 - strength), 1 + strength, generator=generator
        )

    b, c, s = factors(brightness), factors(contrast), factors(saturation)
    h = torch.empty(n, dtype=torch.float64).uniform_(-hue, hue, generator=generator)
    out = xb
    if brightness > 0:
        out = adjust_brightness(out, b)
    if contrast > 0:
        out = adjust_contrast(out, c)
    if saturation > 0:
        out = adjust_saturation(out, s)
    if hue > 0:
        out = adjust_hue(out, h)
    if clamp and out is not xb:
        out = out.clamp(0, 1)
    return _unbatch(out, single)


# --------------------------------------------------------------------------- Cutout
def cutout(
    x: torch.Tensor,
    size: int,
    p: float = 1.0,
    value: float = 0.0,
    generator: torch.Generator | None = None,
    return_boxes: bool = False,
):
    """Cutout: set a random ``size × size`` square of each image to ``value``.

    As in DeVries & Taylor (2017), the square's centre is uniform over *all* pixels,
    so a square near the border is clipped by it and covers fewer than ``size²``
    pixels; for even ``size`` the centre pixel sits just below and right of the middle.
    Each image is cut with probability ``p``.

    Args:
        x (Tensor): images ``(N, C, H, W)`` or one image ``(C, H, W)``.
        size (int): side of the square, ``1 <= size <= min(H, W)``.
        p (float): probability that an image gets a square (``0``: none). Default: ``1.0``.
        value (float): value written into the square. Default: ``0.0``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_boxes (bool): also return the squares after clipping as a long tensor
            ``(N, 4)`` of ``(top, left, height, width)`` (zeros where no square was
            cut). Default: ``False``.

    Used in: chapter "Data augmentation".
    """
    p = check_scalar(p, "p", low=0, high=1)
    value = check_scalar(value, "value")
    check_generator(generator)
    xb, single = _images(x)
    n, _, h, w = xb.shape
    size = check_scalar(size, "size", kind="int", low=1, high=min(h, w))
    apply = torch.rand(n, generator=generator) < p
    cy = torch.randint(0, h, (n,), generator=generator)
    cx = torch.randint(0, w, (n,), generator=generator)
    top = (cy - size // 2).clamp(0, h)
    bottom = (cy - size // 2 + size).clamp(0, h)
    left = (cx - size // 2).clamp(0, w)
    right = (cx - size // 2 + size).clamp(0, w)
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])        # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < right[:, None])        # (N, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    out = xb.masked_fill(mask[:, None].to(xb.device), value)
    out = _unbatch(out, single)
    if return_boxes:
        boxes = torch.stack([top, left, bottom - top, right - left], dim=1) * apply[:, None]
        return out, boxes
    return out


# --------------------------------------------------------------------------- Beta sampling
def _log_gamma_variates(concentration: float, n: int, generator) -> torch.Tensor:
    """Logarithms of ``n`` Gamma(concentration, 1) variates (float64).

    Marsaglia & Tsang's (2000) squeeze-and-reject method, drawing normal and uniform
    numbers from ``generator``; for ``concentration < 1`` it samples
    ``Gamma(concentration + 1)`` and multiplies by ``U^(1/concentration)`` (added in
    log space so that tiny values do not underflow to zero).
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
        out = out + torch.log(torch.rand(n, generator=generator, dtype=torch.float64)) / a
    return out


def _size(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    for i, s in enumerate(shape):
        check_scalar(s, f"shape[{i}]", kind="int", low=0)
    return shape


def sample_gamma(concentration: float, shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
    """Gamma(concentration, 1) variates drawn from ``generator`` (float64).

    ``torch.distributions.Gamma`` (and ``torch._standard_gamma``) cannot take a
    generator, so Mixup and CutMix would not be reproducible from one; this sampler
    (Marsaglia & Tsang) uses only ``torch.randn``/``torch.rand`` with the generator.

    Args:
        concentration (float): the shape parameter, ``> 0``. Mean and variance both equal it.
        shape (int or tuple): output shape. Default: ``()`` (a 0-dimensional tensor).
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
    """
    concentration = check_scalar(concentration, "concentration", low=0, closed="neither")
    check_generator(generator)
    shape = _size(shape)
    return torch.exp(_log_gamma_variates(concentration, math.prod(shape), generator)).view(shape)


def sample_beta(a: float, b: float, shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
    """Beta(a, b) variates drawn from ``generator`` (float64), as ``X / (X + Y)``.

    With ``X ~ Gamma(a)`` and ``Y ~ Gamma(b)`` independent, ``X / (X + Y) ~ Beta(a, b)``.
    Computed as ``sigmoid(log X − log Y)`` so that small ``a, b`` (where both Gamma
    variates can be tiny) give no ``0 / 0``. Mean ``a / (a + b)``, variance
    ``ab / ((a + b)² (a + b + 1))``.

    Args:
        a, b (float): the two shape parameters, ``> 0``. Mixup uses ``a = b = α``.
        shape (int or tuple): output shape. Default: ``()``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.

    Used in: chapter "Data augmentation" (Mixup's and CutMix's λ).
    """
    a = check_scalar(a, "a", low=0, closed="neither")
    b = check_scalar(b, "b", low=0, closed="neither")
    check_generator(generator)
    shape = _size(shape)
    n = math.prod(shape)
    log_x = _log_gamma_variates(a, n, generator)
    log_y = _log_gamma_variates(b, n, generator)
    return torch.sigmoid(log_x - log_y).view(shape)


# --------------------------------------------------------------------------- Mixup and CutMix
def _soft_labels(y, num_classes: int, n: int, dtype) -> torch.Tensor:
    """Class indices ``(N,)`` as one-hot rows, or soft labels ``(N, K)`` checked and cast."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if len(y) != n:
        raise ValueError(f"x and y must have the same length, got {n} and {len(y)}")
    if y.dim() == 1 and not y.is_floating_point():
        if y.dtype == torch.bool:
            raise TypeError("y must hold integer class indices or float soft labels, got dtype torch.bool")
        bad = (y < 0) | (y >= num_classes)
        if bool(bad.any()):
            raise ValueError(f"y must hold class indices in [0, {num_classes}), got {y[bad][0].item()}")
        return F.one_hot(y, num_classes).to(dtype)
    if y.dim() == 2 and y.is_floating_point():
        check_tensor(y, "y")
        if y.shape[1] != num_classes:
            raise ValueError(f"y must have num_classes = {num_classes} columns, got {y.shape[1]}")
        if bool((y < 0).any()) or not torch.allclose(y.sum(1), torch.ones(n, dtype=y.dtype), atol=1e-4):
            raise ValueError("y must hold probability rows (non-negative, summing to 1)")
        return y.to(dtype)
    raise ValueError(
        f"y must be class indices of shape (N,) or soft labels of shape (N, num_classes), "
        f"got shape {tuple(y.shape)} and dtype {y.dtype}"
    )


def _partners(index, n: int) -> torch.Tensor | None:
    """Check an explicit pairing: ``None`` or a long tensor of ``n`` indices in ``[0, n)``."""
    if index is None:
        return None
    if not isinstance(index, torch.Tensor) or index.dtype != torch.long:
        got = getattr(index, "dtype", type(index).__name__)
        raise TypeError(f"index must be a long tensor or None, got {got}")
    if index.shape != (n,):
        raise ValueError(f"index must have shape ({n},), got {tuple(index.shape)}")
    bad = (index < 0) | (index >= n)
    if bool(bad.any()):
        raise ValueError(f"index must hold example indices in [0, {n}), got {index[bad][0].item()}")
    return index


def mixup(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    alpha: float = 0.2,
    generator: torch.Generator | None = None,
    return_params: bool = False,
    index: torch.Tensor | None = None,
):
    """Mixup (Zhang et al., 2018): blend pairs of images and their labels with one weight λ.

    Draws ``λ ~ Beta(α, α)`` (with :func:`sample_beta`) and a random permutation ``j`` of
    the batch, then returns ``x̃_i = λ·x_i + (1 − λ)·x_j(i)`` and
    ``ỹ_i = λ·y_i + (1 − λ)·y_j(i)`` with one-hot (or already soft) labels. One λ for
    the whole batch, as in the paper's implementation.

    Args:
        x (Tensor): images ``(N, C, H, W)`` (any float batch with ``N`` first works too).
        y (Tensor): class indices ``(N,)`` or soft labels ``(N, num_classes)``.
        num_classes (int): number of classes, ``>= 2``.
        alpha (float): the Beta distribution's parameter, ``> 0``; small values keep
            most λ near 0 or 1. Default: ``0.2``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_params (bool): also return ``{"lam": λ, "index": j}``. Default: ``False``.
        index (Tensor, optional): the partner ``j(i)`` of each example, a long tensor
            ``(N,)``; ``None`` draws a random permutation from ``generator``. Default: ``None``.

    Returns:
        ``(x̃, ỹ)``: mixed images (same shape and dtype as ``x``) and soft labels
        ``(N, num_classes)`` whose rows sum to 1 (and the parameters if asked).

    Used in: chapter "Data augmentation".
    """
    check_tensor(x, "x", ndim=(2, 3, 4))
    num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
    alpha = check_scalar(alpha, "alpha", low=0, closed="neither")
    check_generator(generator)
    y_soft = _soft_labels(y, num_classes, len(x), x.dtype)
    index = _partners(index, len(x))
    lam = float(sample_beta(alpha, alpha, generator=generator))
    if index is None:
        index = torch.randperm(len(x), generator=generator)
    x_mix = lam * x + (1 - lam) * x[index]
    y_mix = lam * y_soft + (1 - lam) * y_soft[index]
    if return_params:
        return x_mix, y_mix, {"lam": lam, "index": index}
    return x_mix, y_mix


def cutmix_box(h: int, w: int, center: tuple[int, int], size: tuple[int, int]):
    """CutMix's box clipped at the borders, and the label weight it implies.

    The box of ``size = (box_h, box_w)`` pixels has its pixel ``center = (cy, cx)`` at
    offset ``(box_h // 2, box_w // 2)``: rows ``cy − box_h // 2`` to ``cy − box_h // 2 + box_h``
    (end excluded), likewise columns, each clipped to the image.

    Returns:
        ``((top, left, bottom, right), lam)`` with ``lam = 1 − (bottom − top)(right − left) / (h·w)``,
        the fraction of pixels that keep the original image.

    Example:
        >>> cutmix_box(8, 8, center=(1, 6), size=(4, 4))
        ((0, 4, 3, 8), 0.8125)
    """
    h = check_scalar(h, "h", kind="int", low=1)
    w = check_scalar(w, "w", kind="int", low=1)
    if len(center) != 2 or len(size) != 2:
        raise ValueError(f"center and size must be pairs, got {center!r} and {size!r}")
    cy = check_scalar(center[0], "center[0]", kind="int", low=0, high=h - 1)
    cx = check_scalar(center[1], "center[1]", kind="int", low=0, high=w - 1)
    bh = check_scalar(size[0], "size[0]", kind="int", low=0, high=h)
    bw = check_scalar(size[1], "size[1]", kind="int", low=0, high=w)
    top, bottom = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, h)
    left, right = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, w)
    return (top, left, bottom, right), 1 - (bottom - top) * (right - left) / (h * w)


def cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    alpha: float = 1.0,
    generator: torch.Generator | None = None,
    return_params: bool = False,
    index: torch.Tensor | None = None,
):
    """CutMix (Yun et al., 2019): paste a box from a partner image, mix labels by area.

    Draws ``λ₀ ~ Beta(α, α)``, a box of ``⌊H·√(1 − λ₀)⌋ × ⌊W·√(1 − λ₀)⌋`` pixels whose
    centre is uniform over all pixels, clips the box at the borders, and pastes that
    region of ``x_j(i)`` (``j`` a random permutation) into ``x_i``. The label weight is
    recomputed from the box *after clipping*, so it is exactly the fraction of pixels
    that still come from ``x_i``:

        λ = 1 − (box height · box width) / (H · W),   ỹ_i = λ·y_i + (1 − λ)·y_j(i).

    One box and one λ per batch, as in the paper's implementation.

    Args:
        x (Tensor): images ``(N, C, H, W)``.
        y (Tensor): class indices ``(N,)`` or soft labels ``(N, num_classes)``.
        num_classes (int): number of classes, ``>= 2``.
        alpha (float): the Beta distribution's parameter, ``> 0``. Default: ``1.0``
            (λ₀ uniform on [0, 1]).
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_params (bool): also return ``{"lam": λ, "lam0": λ₀, "center": (cy, cx),
            "size": (box_h, box_w), "box": (top, left, bottom, right), "index": j}`` (the
            box after clipping, rows ``top:bottom`` and columns ``left:right``, see
            :func:`cutmix_box`). Default: ``False``.
        index (Tensor, optional): the partner ``j(i)`` of each example; ``None`` draws a
            random permutation from ``generator``. Default: ``None``.

    Returns:
        ``(x̃, ỹ)`` as for :func:`mixup` (and the parameters if asked).

    Used in: chapter "Data augmentation".
    """
    check_tensor(x, "x", ndim=4)
    num_classes = check_scalar(num_classes, "num_classes", kind="int", low=2)
    alpha = check_scalar(alpha, "alpha", low=0, closed="neither")
    check_generator(generator)
    n, _, h, w = x.shape
    y_soft = _soft_labels(y, num_classes, n, x.dtype)
    index = _partners(index, n)
    lam0 = float(sample_beta(alpha, alpha, generator=generator))
    cut = math.sqrt(1 - lam0)
    size = (int(h * cut), int(w * cut))
    cy = int(torch.randint(0, h, (1,), generator=generator))
    cx = int(torch.randint(0, w, (1,), generator=generator))
    center = (cy, cx)
    (top, left, bottom, right), lam = cutmix_box(h, w, center, size)
    if index is None:
        index = torch.randperm(n, generator=generator)
    x_mix = x.clone()
    x_mix[:, :, top:bottom, left:right] = x[index, :, top:bottom, left:right]
    y_mix = lam * y_soft + (1 - lam) * y_soft[index]
    if return_params:
        return x_mix, y_mix, {"lam": lam, "lam0": lam0, "center": center, "size": size,
                              "box": (top, left, bottom, right), "index": index}
    return x_mix, y_mix


# --------------------------------------------------------------------------- modules and pipeline
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
        return color_jitter(x, self.brightness, self.contrast, self.saturation, self.hue,
                            generator=generator, clamp=self.clamp)

    def extra_repr(self) -> str:
        return (f"brightness={self.brightness:g}, contrast={self.contrast:g}, "
                f"saturation={self.saturation:g}, hue={self.hue:g}")


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

    Used in: chapter "Data augmentation".
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


# --------------------------------------------------------------------------- text
#: A tiny synonym table for the text examples (lower-case words).
SYNONYMS: dict[str, list[str]] = {
    "quick": ["fast", "rapid", "speedy"],
    "brown": ["tan", "chestnut"],
    "jumps": ["leaps", "hops", "springs"],
    "lazy": ["idle", "sluggish"],
    "dog": ["hound", "pup"],
    "big": ["large", "huge"],
    "small": ["little", "tiny"],
    "happy": ["glad", "cheerful"],
    "movie": ["film", "picture"],
    "good": ["fine", "great"],
    "bad": ["poor", "awful"],
    "very": ["really", "truly"],
}


def _words(text, name: str = "text") -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text.split()


def synonym_replacement(text: str, n: int = 1, generator: torch.Generator | None = None,
                        synonyms: dict[str, list[str]] | None = None) -> str:
    """Replace up to ``n`` distinct words that have synonyms by a random synonym.

    Words are split on whitespace and compared in lower case; words without an entry
    in ``synonyms`` (default :data:`SYNONYMS`) are never touched.

    Example:
        >>> synonym_replacement("the quick dog", n=2, generator=torch.Generator().manual_seed(0))
        'the fast pup'
    """
    n = check_scalar(n, "n", kind="int", low=0)
    check_generator(generator)
    table = SYNONYMS if synonyms is None else synonyms
    words = _words(text)
    candidates = [i for i, word in enumerate(words) if table.get(word.lower())]
    order = torch.randperm(len(candidates), generator=generator).tolist()
    for k in order[:n]:
        i = candidates[k]
        options = table[words[i].lower()]
        words[i] = options[int(torch.randint(0, len(options), (1,), generator=generator))]
    return " ".join(words)


def random_insertion(text: str, n: int = 1, generator: torch.Generator | None = None,
                     synonyms: dict[str, list[str]] | None = None) -> str:
    """Insert ``n`` times a synonym of a random word (one that has synonyms) at a random position."""
    n = check_scalar(n, "n", kind="int", low=0)
    check_generator(generator)
    table = SYNONYMS if synonyms is None else synonyms
    words = _words(text)
    for _ in range(n):
        candidates = [word.lower() for word in words if table.get(word.lower())]
        if not candidates:
            break
        word = candidates[int(torch.randint(0, len(candidates), (1,), generator=generator))]
        options = table[word]
        new = options[int(torch.randint(0, len(options), (1,), generator=generator))]
        words.insert(int(torch.randint(0, len(words) + 1, (1,), generator=generator)), new)
    return " ".join(words)


def random_swap(text: str, n: int = 1, generator: torch.Generator | None = None) -> str:
    """Swap two random words (two different positions), ``n`` times."""
    n = check_scalar(n, "n", kind="int", low=0)
    check_generator(generator)
    words = _words(text)
    if len(words) < 2:
        return " ".join(words)
    for _ in range(n):
        i, j = torch.randperm(len(words), generator=generator)[:2].tolist()
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


# --------------------------------------------------------------------------- audio
def _wave(wave, name: str = "wave") -> torch.Tensor:
    return check_tensor(wave, name, ndim=1)


def tone(
    freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 8000, amplitude: float = 0.5
) -> torch.Tensor:
    """A sine tone ``amplitude·sin(2π·freq·t)`` sampled at ``sample_rate`` (float64, 1-D)."""
    sample_rate = check_scalar(sample_rate, "sample_rate", kind="int", low=1)
    freq = check_scalar(freq, "freq", low=0, high=sample_rate / 2, closed="right")
    seconds = check_scalar(seconds, "seconds", low=0, closed="neither")
    amplitude = check_scalar(amplitude, "amplitude", low=0)
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return amplitude * torch.sin(2 * math.pi * freq * t)


def dominant_frequency(wave: torch.Tensor, sample_rate: int) -> float:
    """The frequency (Hz) of the largest peak of ``|rfft(wave)|`` (resolution ``sample_rate / len``)."""
    _wave(wave)
    sample_rate = check_scalar(sample_rate, "sample_rate", kind="int", low=1)
    spectrum = torch.fft.rfft(wave.double()).abs()
    return int(spectrum.argmax()) * sample_rate / len(wave)


def resample(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster: linear interpolation at positions ``k·factor``.

    The result has ``round(len / factor)`` samples; at the same sample rate it lasts
    ``1 / factor`` as long and every frequency is multiplied by ``factor`` (a tape
    played fast). Duration and pitch change together.
    """
    _wave(wave)
    factor = check_scalar(factor, "factor", low=0, closed="neither")
    n = len(wave)
    length = max(1, round(n / factor))
    pos = torch.arange(length, dtype=torch.float64) * factor
    i0 = pos.floor().long().clamp(max=n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    frac = (pos - i0).clamp(0, 1).to(wave.dtype)
    return (1 - frac) * wave[i0] + frac * wave[i1]


def time_stretch(wave: torch.Tensor, rate: float, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """Change the duration by ``1 / rate`` and keep the pitch: a phase vocoder.

    The short-time Fourier transform's frames are read at ``rate`` times the normal
    pace; magnitudes are interpolated between neighbouring frames and each
    frequency bin's phase advances by its measured increment, so sinusoids stay
    continuous. ``rate > 1`` is faster (shorter), ``rate < 1`` slower.

    Returns:
        A 1-D tensor of ``round(len(wave) / rate)`` samples.
    """
    _wave(wave)
    rate = check_scalar(rate, "rate", low=0, closed="neither")
    n_fft = check_scalar(n_fft, "n_fft", kind="int", low=4, high=max(4, len(wave)))
    hop = check_scalar(hop, "hop", kind="int", low=1, high=n_fft)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(wave.double(), n_fft, hop, window=window, return_complex=True)   # (F, T)
    frames = spec.shape[1]
    steps = torch.arange(0, frames, rate, dtype=torch.float64)
    spec = F.pad(torch.view_as_real(spec), (0, 0, 0, 2))                             # two silent frames
    spec = torch.view_as_complex(spec.contiguous())
    i0 = steps.floor().long()
    frac = steps - i0
    left, right = spec[:, i0], spec[:, i0 + 1]
    magnitude = (1 - frac) * left.abs() + frac * right.abs()
    expected = torch.linspace(0, math.pi * hop, spec.shape[0], dtype=torch.float64)[:, None]
    delta = right.angle() - left.angle() - expected
    delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi))
    advance = expected + delta
    phase = spec[:, :1].angle() + torch.cumsum(advance, dim=1) - advance   # phase before each step
    stretched = torch.polar(magnitude, phase)
    length = max(1, round(len(wave) / rate))
    out = torch.istft(stretched, n_fft, hop, window=window, length=length)
    return out.to(wave.dtype)


def pitch_shift(wave: torch.Tensor, semitones: float, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """Shift the pitch by ``semitones`` (12 per octave) and keep the duration.

    With ``f = 2^(semitones / 12)``: :func:`time_stretch` by ``1 / f`` (``f`` times
    longer, same pitch), then :func:`resample` by ``f`` (back to the original length,
    every frequency times ``f``). The result has exactly ``len(wave)`` samples.
    """
    _wave(wave)
    semitones = check_scalar(semitones, "semitones", low=-48, high=48)
    f = 2 ** (semitones / 12)
    out = resample(time_stretch(wave, 1 / f, n_fft, hop), f)
    if len(out) >= len(wave):
        return out[: len(wave)]
    return F.pad(out, (0, len(wave) - len(out)))


def add_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise scaled so the signal-to-noise ratio is exactly ``snr_db`` decibels.

    The drawn noise ``e`` is rescaled so that ``10·log10(mean(wave²) / mean(e²)) = snr_db``.
    """
    _wave(wave)
    snr_db = check_scalar(snr_db, "snr_db")
    check_generator(generator)
    power = wave.double().pow(2).mean()
    if power == 0:
        raise ValueError("wave must not be silent (all zeros): its SNR is undefined")
    noise = torch.randn(len(wave), generator=generator, dtype=torch.float64)
    noise = noise * torch.sqrt(power / (noise.pow(2).mean() * 10 ** (snr_db / 10)))
    return (wave.double() + noise).to(wave.dtype)


# --------------------------------------------------------------------------- tabular
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

    Used in: chapter "Data augmentation".
    """
    check_tensor(x, "x", ndim=2)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples, got {len(x)}")
    n_new = check_scalar(n_new, "n_new", kind="int", low=0)
    k = check_scalar(k, "k", kind="int", low=1, high=len(x) - 1)
    check_generator(generator)
    dist = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    dist.fill_diagonal_(float("inf"))
    neighbours = dist.topk(k, dim=1, largest=False).indices          # (N, k)
    base = torch.randint(0, len(x), (n_new,), generator=generator)
    pick = torch.randint(0, k, (n_new,), generator=generator)
    u = torch.rand(n_new, 1, generator=generator, dtype=x.dtype)
    partner = neighbours[base, pick]
    out = x[base] + u * (x[partner] - x[base])
    if return_params:
        return out, {"base": base, "neighbour": partner, "u": u[:, 0]}
    return out
