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
import hashlib
import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

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


#: The arguments of ``mnist1d.data.get_dataset_args()`` in mnist1d 0.0.2.post1 (without
#: its download ``url``), i.e. what the arrays are generated from. They name the disk cache's
#: file; a generation whose actual arguments differ is returned but never cached.
_MNIST1D_ARGS = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 0.02,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}
#: Bump when the cached file's layout or the conversion of the arrays changes.
_CACHE_FORMAT = 1
_ARRAY_NAMES = ("x", "y", "x_test", "y_test")
_ARRAY_DTYPES = (np.float32, np.int64, np.float32, np.int64)


def _cache_dir() -> Path | None:
    """The disk cache's folder: ``$REGCOURSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/regcourse``,
    else ``~/.cache/regcourse``; ``None`` (no disk cache) when ``REGCOURSE_CACHE_DIR`` is set
    but empty, or when there is no home folder to put it in."""
    folder = os.environ.get("REGCOURSE_CACHE_DIR")
    if folder is not None:
        return Path(folder) if folder.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not base:
        home = os.path.expanduser("~")
        if home == "~":
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "regcourse"


def _cache_key(args: dict, mnist1d_version: str, numpy_version: str) -> str:
    """Everything that determines the generated arrays, as one canonical JSON string."""
    return json.dumps(
        {
            "format": _CACHE_FORMAT,
            "generator": "mnist1d.data.make_dataset",
            "args": args,
            "mnist1d": mnist1d_version,
            "numpy_major": numpy_version.split(".")[0],
        },
        sort_keys=True,
    )


def _cache_path(folder: Path, key: str) -> Path:
    return folder / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _checksum(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _valid_arrays(arrays, args: dict) -> bool:
    """Shapes and dtypes the generator gives for ``args``."""
    n_train = int(args["num_samples"] * args["train_split"])
    n_test = args["num_samples"] - n_train
    length = args["final_seq_length"]
    shapes = ((n_train, length), (n_train,), (n_test, length), (n_test,))
    return all(
        type(a) is np.ndarray and a.dtype == dtype and a.shape == shape
        for a, dtype, shape in zip(arrays, _ARRAY_DTYPES, shapes, strict=True)
    )


def _read_cache(path: Path, key: str, args: dict):
    """The cached arrays, or ``None`` if the file is missing, unreadable or not exactly right."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            arrays = tuple(f[name] for name in _ARRAY_NAMES)
            checksum = str(f["checksum"])
    except Exception:  # missing, truncated, corrupted, not an npz, a folder, no permission ...
        return None
    if not _valid_arrays(arrays, args) or _checksum(arrays) != checksum:
        return None
    return arrays


def _write_cache(path: Path, key: str, arrays) -> None:
    """Write atomically (a temporary file in the same folder, then ``os.replace``); any
    failure (read-only or full disk, no such folder allowed) leaves no file and is ignored."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                key=np.array(key),
                checksum=np.array(_checksum(arrays)),
                **dict(zip(_ARRAY_NAMES, arrays, strict=True)),
            )
        os.replace(tmp, path)
        tmp = None
    except Exception:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _generate_mnist1d():
    """``make_dataset(get_dataset_args())``, as float32/int64 arrays, and the arguments
    (without ``url``) it was generated with.

    ``make_dataset`` seeds numpy's and Python's *global* generators (``set_seed(42)``)
    and draws from them; their states are saved before and restored after, so the
    caller's random streams are untouched. Only the generator is called, never
    ``get_dataset`` (which would download a pickle).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise MissingDependencyError("mnist1d", _MNIST1D_PIP) from None
    args = get_dataset_args()
    used = {k: v for k, v in vars(args).items() if k != "url"}
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = tuple(
        np.asarray(data[name], dtype=dtype)
        for name, dtype in zip(_ARRAY_NAMES, _ARRAY_DTYPES, strict=True)
    )
    return arrays, used


def _mnist1d_version() -> str | None:
    """The installed mnist1d's version, found without importing it (its import pulls scipy,
    matplotlib.pyplot and requests: about a second); ``None`` when it is importable but has
    no package metadata (then nothing is cached on disk).

    Raises:
        MissingDependencyError: if ``mnist1d`` cannot be imported.
    """
    import importlib.metadata
    import importlib.util

    try:
        found = importlib.util.find_spec("mnist1d") is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        found = False
    if not found:
        raise MissingDependencyError("mnist1d", _MNIST1D_PIP)
    try:
        return importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D's arrays (``x``, ``y``, ``x_test``, ``y_test``), once per process, from the
    disk cache when it holds them, else generated (and then stored there)."""
    version, folder = _mnist1d_version(), _cache_dir()
    key = None if version is None else _cache_key(_MNIST1D_ARGS, version, np.__version__)
    path = None if folder is None or key is None else _cache_path(folder, key)
    arrays = None if path is None else _read_cache(path, key, _MNIST1D_ARGS)
    if arrays is None:
        arrays, used = _generate_mnist1d()
        if path is not None and used == _MNIST1D_ARGS and _valid_arrays(arrays, used):
            _write_cache(path, key, arrays)
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
    The data are generated once (about two seconds with the import of ``mnist1d``) and
    cached in memory for the process and on disk for later processes; each call returns
    fresh tensors. numpy's and Python's global random states are the same after the call
    as before it.

    The disk cache is one ``.npz`` file in ``$REGCOURSE_CACHE_DIR`` (default
    ``$XDG_CACHE_HOME/regcourse``, else ``~/.cache/regcourse``; set the variable to an
    empty string to switch the disk cache off). Its name is derived from everything that
    determines the arrays: the generator's arguments, mnist1d's version, numpy's major
    version and the file format's version. It is written atomically and read with
    ``allow_pickle=False``; a file that cannot be read, or whose key, shapes, dtypes or
    checksum (SHA-256 of the arrays, stored beside them) are not exactly right, is ignored
    and the data are generated again, as they are when the folder cannot be written (a
    read-only home): the cache never raises and never changes a value.

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
