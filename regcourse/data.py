"""Real data sets for the chapters, from installed packages only (nothing is downloaded).

- :func:`mnist1d_split`: MNIST-1D (Greydanus 2020), 5,000 one-dimensional signals of
  length 40 in 10 classes, generated offline by the ``mnist1d`` package with the
  benchmark's default arguments (4,000 train / 1,000 test), optionally with a seeded
  validation set carved from the training set.
- :func:`digits_split`: scikit-learn's handwritten digits (1,797 images of 8 × 8 pixels,
  10 classes), split into train / validation / test tensors.
- :func:`sample_photo`: a real colour photograph shipped with scikit-learn, as a
  ``(3, H, W)`` float tensor in ``[0, 1]`` for the augmentation gallery.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_bool, check_choice, check_scalar
from .errors import MissingDependencyError

__all__ = ["Split", "mnist1d_split", "MNIST1D_PUBLISHED", "digits_split", "sample_photo"]

#: The published MNIST-1D test accuracies (Greydanus 2020, the ``mnist1d`` README's
#: table; Adam, learning rate 1e-2, batch 100, 6,000 steps), our outside reference.
MNIST1D_PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}

_MNIST1D_PIP = "pip install mnist1d==0.0.2.post1"
_SKLEARN_PIP = "pip install scikit-learn"


@dataclass(frozen=True)
class Split:
    """Train / validation / test tensors of one data set.

    Attributes:
        x_train: float32 training inputs, ``(N, 1, 8, 8)`` for digits, ``(N, 40)`` or
            ``(N, 1, 40)`` for MNIST-1D.
        y_train: int64 training labels ``(N,)``.
        x_val: validation inputs (possibly empty), shaped like ``x_train``.
        y_val: int64 validation labels.
        x_test: test inputs, shaped like ``x_train``.
        y_test: int64 test labels.
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


def _sklearn_datasets():
    try:
        import sklearn.datasets
    except ImportError:
        raise MissingDependencyError("scikit-learn", _SKLEARN_PIP) from None
    return sklearn.datasets


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``make_dataset()`` with the default arguments, generated once per process.

    ``make_dataset`` seeds numpy's and Python's *global* generators (``set_seed(42)``)
    and draws from them; their states are saved before and restored after, so the
    caller's random streams are untouched. Only the generator is called, never
    ``get_dataset`` (which would download a pickle).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise MissingDependencyError("mnist1d", _MNIST1D_PIP) from None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        np.asarray(data["x"], dtype=np.float32),
        np.asarray(data["y"], dtype=np.int64),
        np.asarray(data["x_test"], dtype=np.float32),
        np.asarray(data["y_test"], dtype=np.int64),
    )
    for a in arrays:
        a.setflags(write=False)  # the cache is shared: tensors handed out are copies
    return arrays


def mnist1d_split(
    n_val: int = 0,
    *,
    layout: str = "flat",
    label_noise: float = 0.0,
    random_labels: bool = False,
    seed: int = 0,
) -> Split:
    """MNIST-1D (Greydanus 2020) with the benchmark's split, optionally with a validation set.

    The ``mnist1d`` package generates the data set procedurally from ten 1-D digit
    templates (padding, shear, scale, translation, correlated and i.i.d. noise),
    offline: this calls ``mnist1d.data.make_dataset(get_dataset_args())``, the
    benchmark's default arguments (5,000 examples, the first 80 % for training,
    length 40, its own seed 42), never its download path. With ``n_val=0`` the
    training and test tensors are exactly ``make_dataset()``'s ``x``/``y`` and
    ``x_test``/``y_test``, in its order (already centred and scaled by the generator).
    The data are generated once per process (about a second) and cached; each call
    returns fresh tensors. numpy's and Python's global random states are the same
    after the call as before it.

    Args:
        n_val (int): validation examples carved from the 4,000 training examples
            (a seeded random subset; both parts keep the benchmark's order).
            Default: ``0`` (no validation set: ``x_val`` is empty).
        layout (str): ``"flat"`` for inputs of shape ``(N, 40)`` (linear models, MLPs)
            or ``"ncl"`` for ``(N, 1, 40)``, the ``(batch, channels, length)`` layout of
            :class:`torch.nn.Conv1d`. Default: ``"flat"``.
        label_noise (float): fraction of *training* labels replaced by a random other
            class (chosen with ``seed``). Default: ``0.0``.
        random_labels (bool): replace *every* training label by a uniformly random
            class (Zhang et al. 2017's random-label experiment); validation and test
            labels stay true. Default: ``False``.
        seed (int): seed of the validation subset and of the label noise. Default: ``0``.

    Returns:
        Split: float32 inputs, int64 labels, 10 classes.

    Raises:
        MissingDependencyError: if ``mnist1d`` is not installed (the message names the
            ``pip install`` command; in a notebook it prints as one line).

    Shape:
        - ``x_*``: ``(N, 40)`` with ``layout="flat"``, ``(N, 1, 40)`` with ``layout="ncl"``.
        - ``y_*``: ``(N,)``.

    Example:
        >>> data = mnist1d_split(500)
        >>> data
        Split(train=3500, val=500, test=1000, input=(40,), classes=10)
        >>> mnist1d_split(layout="ncl").x_test.shape
        torch.Size([1000, 1, 40])

    Used in:
        chapters "The core problem", "Weight decay", "Dropout", "Batch normalization
        as a regularizer", "Label smoothing".
    """
    layout = check_choice(layout, "layout", ("flat", "ncl"))
    label_noise = check_scalar(label_noise, "label_noise", low=0, high=1, closed="left")
    random_labels = check_bool(random_labels, "random_labels")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    x, y, x_test, y_test = _mnist1d_arrays()
    n_val = check_scalar(n_val, "n_val", kind="int", low=0, high=len(y) - 10)
    x, y = torch.tensor(x), torch.tensor(y)
    x_test, y_test = torch.tensor(x_test), torch.tensor(y_test)

    g = torch.Generator().manual_seed(seed)
    if n_val > 0:
        order = torch.randperm(len(y), generator=g)
        val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
        x_val, y_val, x, y = x[val_idx], y[val_idx], x[train_idx], y[train_idx]
    else:
        x_val, y_val = x[:0].clone(), y[:0].clone()
    if random_labels:
        y = torch.randint(0, 10, (len(y),), generator=g)
    elif label_noise > 0:
        flip = torch.rand(len(y), generator=g) < label_noise
        shift = torch.randint(1, 10, (len(y),), generator=g)
        y[flip] = (y[flip] + shift[flip]) % 10
    if layout == "ncl":
        x, x_val, x_test = x.unsqueeze(1), x_val.unsqueeze(1), x_test.unsqueeze(1)
    return Split(x, y, x_val, y_val, x_test, y_test, 10)


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

    Used in:
        every chapter with an experiment.
    """
    load_digits = _sklearn_datasets().load_digits

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

    Used in:
        chapter "Data augmentation".
    """
    load_sample_image = _sklearn_datasets().load_sample_image

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
