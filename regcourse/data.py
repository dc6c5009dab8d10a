"""Real data sets for the chapters, from installed packages only (nothing is downloaded).

- :func:`digits_split`: scikit-learn's handwritten digits (1,797 images of 8 × 8 pixels,
  10 classes), split into train / validation / test tensors.
- :func:`sample_photo`: a real colour photograph shipped with scikit-learn, as a
  ``(3, H, W)`` float tensor in ``[0, 1]`` for the augmentation gallery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_scalar

__all__ = ["Split", "digits_split", "sample_photo"]


@dataclass(frozen=True)
class Split:
    """Train / validation / test tensors of one data set.

    Attributes:
        x_train, x_val, x_test: float32 inputs, ``(N, 1, 8, 8)`` for digits.
        y_train, y_val, y_test: int64 class labels.
        num_classes: number of classes.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def __repr__(self) -> str:
        shape = tuple(self.x_train.shape[1:])
        return (
            f"Split(train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, "
            f"input={shape}, classes={self.num_classes})"
        )


def digits_split(
    n_train: int = 300,
    n_val: int = 300,
    *,
    label_noise: float = 0.0,
    seed: int = 0,
) -> Split:
    """scikit-learn's digits, shuffled with ``seed`` and split three ways.

    Pixels (0..16) are scaled to [0, 1] and then standardised with the training
    set's mean and standard deviation (one value each), so no information from the
    validation or test set leaks into the inputs. The test set is everything left
    after the first ``n_train + n_val`` shuffled images.

    Args:
        n_train (int): training examples. Default: ``300`` (small enough to memorise).
        n_val (int): validation examples. Default: ``300``.
        label_noise (float): fraction of *training* labels replaced by a random
            other class, so there is noise to memorise. Default: ``0.0``.
        seed (int): seed of the shuffle and of the label noise. Default: ``0``.

    Returns:
        Split: inputs of shape ``(N, 1, 8, 8)`` (float32) and int64 labels.

    Used in: every chapter with an experiment.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    total = len(digits.target)
    n_train = check_scalar(n_train, "n_train", kind="int", low=10, high=total - 100)
    n_val = check_scalar(n_val, "n_val", kind="int", low=0, high=total - 100 - n_train)
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    seed = check_scalar(seed, "seed", kind="int", low=0)

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(total, generator=g)
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[order].unsqueeze(1)
    y = torch.from_numpy(digits.target.astype(np.int64))[order]
    x_train, x_val, x_test = x[:n_train], x[n_train : n_train + n_val], x[n_train + n_val :]
    y_train, y_val, y_test = y[:n_train].clone(), y[n_train : n_train + n_val], y[n_train + n_val :]

    if label_noise > 0:
        flip = torch.rand(n_train, generator=g) < label_noise
        shift = torch.randint(1, 10, (n_train,), generator=g)
        y_train[flip] = (y_train[flip] + shift[flip]) % 10

    mean, std = x_train.mean(), x_train.std()
    norm = lambda t: (t - mean) / std  # noqa: E731
    return Split(norm(x_train), y_train, norm(x_val), y_val, norm(x_test), y_test, 10)


def sample_photo(name: str = "china.jpg", size: int | None = 128) -> torch.Tensor:
    """A real photograph shipped with scikit-learn, as a float tensor in [0, 1].

    Args:
        name (str): ``"china.jpg"`` or ``"flower.jpg"``. Default: ``"china.jpg"``.
        size (int, optional): resize (area averaging) so the shorter side is
            ``size`` pixels, then centre-crop to ``size × size``; ``None`` keeps
            the original 427 × 640 image. Default: ``128``.

    Returns:
        Tensor of shape ``(3, H, W)``, dtype float32.

    Used in: chapter "Data augmentation".
    """
    from sklearn.datasets import load_sample_image

    if name not in ("china.jpg", "flower.jpg"):
        raise ValueError(f"name must be 'china.jpg' or 'flower.jpg', got {name!r}")
    img = torch.from_numpy(load_sample_image(name).astype(np.float32) / 255.0).permute(2, 0, 1)
    if size is None:
        return img.contiguous()
    size = check_scalar(size, "size", kind="int", low=8, high=min(img.shape[1:]))
    h, w = img.shape[1:]
    scale = size / min(h, w)
    new_hw = (max(size, round(h * scale)), max(size, round(w * scale)))
    img = torch.nn.functional.interpolate(img[None], size=new_hw, mode="area")[0]
    top, left = (new_hw[0] - size) // 2, (new_hw[1] - size) // 2
    return img[:, top : top + size, left : left + size].contiguous()
