"""Image geometry and colour: flips, crops, rotations, colour jitter, and Cutout.

Used in:
    chapter "Data augmentation".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_generator, check_scalar
from ._common import _gray, _images, _interval, _per_example, _unbatch

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
]


def hflip(
    x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
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

    Used in:
        chapter "Data augmentation".
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

    Used in:
        chapter "Data augmentation".
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
    rows = (top[:, None] + torch.arange(size)).to(xb.device)  # (N, size)
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

    Used in:
        chapter "Data augmentation".
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
        t, le, hh, ww = int(top[i]), int(left[i]), int(ch[i]), int(cw[i])
        crop = xb[i : i + 1, :, t : t + hh, le : le + ww]
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

    Used in:
        chapter "Data augmentation".
    """
    xb, single = _images(x)
    fill = check_scalar(fill, "fill")
    n, _, h, w = xb.shape
    rad = _per_example(degrees, "degrees", n, torch.float64) * (math.pi / 180)
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Output (x, y) in normalised coordinates samples the input at R(angle) (x, y),
    # corrected for the aspect ratio (normalised units differ along H and W).
    theta = (
        torch.stack(
            [
                torch.stack([cos, -sin * (h / w), torch.zeros_like(cos)], dim=1),
                torch.stack([sin * (w / h), cos, torch.zeros_like(cos)], dim=1),
            ],
            dim=1,
        )
        .to(xb.dtype)
        .to(xb.device)
    )
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

    Used in:
        chapter "Data augmentation".
    """
    max_degrees = check_scalar(max_degrees, "max_degrees", low=0, high=180)
    check_generator(generator)
    xb, single = _images(x)
    angles = (torch.rand(len(xb), generator=generator, dtype=torch.float64) * 2 - 1) * max_degrees
    return _unbatch(rotate_by(xb, angles, fill=fill), single)


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
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        dtype=torch.float64,
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
        raise ValueError(
            f"shift must be in [-0.5, 0.5], got {s[(s < -0.5) | (s > 0.5)][0].item():g}"
        )
    to_yiq, to_rgb = _yiq_matrices(torch.float64)
    a = 2 * math.pi * s
    rot = torch.zeros(len(xb), 3, 3, dtype=torch.float64)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(a), -torch.sin(a)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(a), torch.cos(a)
    m = (to_rgb @ rot @ to_yiq).to(xb.dtype).to(xb.device)  # (N, 3, 3)
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

    Used in:
        chapter "Data augmentation".
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

    Used in:
        chapter "Data augmentation".
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
    in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < right[:, None])  # (N, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    out = xb.masked_fill(mask[:, None].to(xb.device), value)
    out = _unbatch(out, single)
    if return_boxes:
        boxes = torch.stack([top, left, bottom - top, right - left], dim=1) * apply[:, None]
        return out, boxes
    return out
