"""A solid default: several regularizers combined, each one switchable, in one call.

:func:`solid_default` builds a small network and trains it on a
:class:`~regcourse.data.Split` with the combination the course recommends as a
starting point:

=====================  ==========================================  =====================
component              what the recipe uses                        switch it off with
=====================  ==========================================  =====================
weight decay           AdamW, decoupled decay ``λ = 0.01``         ``weight_decay=0``
early stopping         patience 10 on the validation loss,         ``patience=None``
                       best checkpoint restored
data augmentation      shifts of up to 1 pixel and rotations of    ``augment=None``
                       up to 10°, no flips (digits are not
                       mirror-symmetric)
batch normalization    ``batch_norm=True`` in the CNN / MLP        ``batch_norm=False``
dropout                ``p = 0.25`` (the usual range is 0.1–0.5)   ``dropout=0``
label smoothing        ``ε = 0.1``                                 ``label_smoothing=0``
=====================  ==========================================  =====================

:func:`no_regularization` trains the same network with the same optimizer, learning
rate, batch size and epoch budget and none of the above, as the baseline.

Why ``λ = 0.01``: it is ``torch.optim.AdamW``'s default and the usual starting value
for decoupled decay. In AdamW every step multiplies each weight by ``1 − η·λ``
(learning rate ``η``) on top of the Adam update, so ``λ`` is a decay *rate per unit
of learning rate*, the same for every weight whatever its gradient history (see the
chapter "Weight decay"). Values of 0.01 to 0.1 are common; 0.01 is the cautious end.

Used in:
    chapter "Choosing and combining regularizers".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from . import augment as A
from ._checks import check_bool, check_scalar, check_tensor
from .early_stopping import EarlyStopping
from .models import build_model
from .training import History, evaluate, train

__all__ = [
    "WEIGHT_DECAY",
    "PATIENCE",
    "DROPOUT",
    "DROPOUT_RANGE",
    "LABEL_SMOOTHING",
    "MAX_SHIFT",
    "MAX_DEGREES",
    "RecipeResult",
    "image_augment",
    "solid_default",
    "no_regularization",
]

#: AdamW's decoupled weight decay λ (torch's default for AdamW).
WEIGHT_DECAY = 0.01
#: Early-stopping patience in epochs.
PATIENCE = 10
#: Dropout probability p of the recipe, inside :data:`DROPOUT_RANGE`.
DROPOUT = 0.25
#: The usual range of p for dropout on fully connected layers.
DROPOUT_RANGE = (0.1, 0.5)
#: Label-smoothing ε.
LABEL_SMOOTHING = 0.1
#: Largest shift (pixels) of the default image augmentation.
MAX_SHIFT = 1
#: Largest rotation (degrees) of the default image augmentation.
MAX_DEGREES = 10.0

_MODELS = ("cnn", "mlp")


@dataclass
class RecipeResult:
    """A model trained by :func:`solid_default` or :func:`no_regularization`.

    Attributes:
        model (nn.Module): the trained network, in ``eval()`` mode; with early
            stopping it holds the weights of the best epoch.
        history (History): per-epoch losses and accuracies (see :func:`regcourse.training.train`).
        train_acc (float): accuracy on the (unaugmented) training set, eval mode.
        test_acc (float): accuracy on the test set, eval mode.
        settings (dict): every setting the run used, components included.
    """

    model: nn.Module
    history: History
    train_acc: float
    test_acc: float
    settings: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Train accuracy minus test accuracy."""
        return self.train_acc - self.test_acc


def image_augment(
    x_train: torch.Tensor, max_shift: int = MAX_SHIFT, max_degrees: float = MAX_DEGREES
) -> A.Augment:
    """Small random shifts and rotations for image batches; no flips.

    Shifts are :func:`regcourse.augment.random_crop` after padding by ``max_shift``
    pixels (so the image moves by up to ``max_shift`` pixels each way and keeps its
    size), rotations are :func:`regcourse.augment.rotate` with angles uniform in
    ``[-max_degrees, max_degrees]``. Both fill uncovered pixels with the *background*
    value, the smallest value of ``x_train`` (a blank pixel after standardisation),
    not with 0. Flips are left out on purpose: a mirrored digit is not the same digit.

    Args:
        x_train (Tensor): training images ``(N, C, H, W)``, used for the background
            value and the image size.
        max_shift (int): largest shift in pixels, ``>= 0``. Default: ``1``.
        max_degrees (float): largest rotation in degrees, in ``[0, 180]``. Default: ``10.0``.

    Returns:
        Augment: callable as ``augment(x, y, generator) -> (x, y)``.

    Used in:
        chapter "Choosing and combining regularizers".
    """
    check_tensor(x_train, "x_train", ndim=4)
    max_shift = check_scalar(max_shift, "max_shift", kind="int", low=0)
    max_degrees = check_scalar(max_degrees, "max_degrees", low=0, high=180)
    h, w = x_train.shape[-2:]
    if h != w:
        raise ValueError(f"x_train must hold square images, got shape {tuple(x_train.shape)}")
    background = float(x_train.min())
    return A.Augment(
        A.RandomCrop(h, padding=max_shift, fill=background),
        A.RandomRotation(max_degrees, fill=background),
    )


def _check_data(data) -> None:
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        if not hasattr(data, name):
            raise TypeError(
                f"data must be a Split (with x_train ... y_test), got {type(data).__name__}"
            )
    check_tensor(data.x_train, "data.x_train")
    check_tensor(data.x_test, "data.x_test")
    if len(data.x_val) == 0:
        raise ValueError("data must have a validation set for early stopping, got n_val = 0")


_check_bool = check_bool


def _resolve_augment(augment, data) -> tuple[Callable | None, str]:
    if augment is None:
        return None, "none"
    if isinstance(augment, str):
        if augment != "shift_rotate":
            raise ValueError(f"augment must be 'shift_rotate', None or a callable, got {augment!r}")
        if data.x_train.dim() != 4:
            raise ValueError(
                "augment='shift_rotate' needs image inputs (N, C, H, W), "
                f"got data.x_train of shape {tuple(data.x_train.shape)}"
            )
        name = f"shift_rotate(max_shift={MAX_SHIFT}, max_degrees={MAX_DEGREES:g})"
        return image_augment(data.x_train), name
    if callable(augment):
        return augment, "custom"
    raise TypeError(
        f"augment must be 'shift_rotate', None or a callable, got {type(augment).__name__}"
    )


def solid_default(
    data,
    *,
    model: str = "cnn",
    weight_decay: float = WEIGHT_DECAY,
    patience: int | None = PATIENCE,
    augment: str | Callable | None = "shift_rotate",
    batch_norm: bool = True,
    dropout: float = DROPOUT,
    label_smoothing: float = LABEL_SMOOTHING,
    epochs: int = 60,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
    **model_kwargs,
) -> RecipeResult:
    """Build a network and train it with the course's solid default regularization.

    AdamW with decoupled weight decay, early stopping that restores the best
    checkpoint, data augmentation, batch norm, dropout and label smoothing, each
    with the recipe's value by default and each switchable (see the module docstring).
    Everything else (network, learning rate, batch size, epoch budget) is shared with
    :func:`no_regularization`, so the two are a fair comparison.

    Args:
        data (Split): the data; ``data.x_val`` drives early stopping and
            ``data.x_test`` gives ``RecipeResult.test_acc``.
        model (str): ``"cnn"`` (:class:`~regcourse.models.SmallCNN`) or ``"mlp"``
            (:class:`~regcourse.models.MLP`). Default: ``"cnn"``.
        weight_decay (float): AdamW's λ, ``>= 0``; ``0`` switches decay off. Default: ``0.01``.
        patience (int or None): early-stopping patience in epochs, ``>= 1``; ``None``
            trains for all ``epochs`` and keeps the last weights. Default: ``10``.
        augment (str, callable or None): ``"shift_rotate"`` (:func:`image_augment`
            on ``data.x_train``), any ``augment(x, y, generator) -> (x, y)``
            callable, or ``None`` for no augmentation. Default: ``"shift_rotate"``.
        batch_norm (bool): batch norm in the network. Default: ``True``.
        dropout (float): drop probability ``p`` of the network's dropout layers, in
            ``[0, 1)``; ``0`` switches dropout off. Default: ``0.25``.
        label_smoothing (float): ε of the training loss, in ``[0, 1]``. Default: ``0.1``.
        epochs (int): the epoch budget (early stopping may end sooner). Default: ``60``.
        lr (float): AdamW's learning rate. Default: ``3e-3``.
        batch_size (int): mini-batch size. Default: ``32``.
        seed (int): seeds the weights, the shuffling, the augmentation and dropout.
            Default: ``0``.
        progress (bool): show a progress bar. Default: ``False``.
        **model_kwargs: passed to the network, e.g. ``channels=16`` (CNN) or
            ``hidden=128, depth=2`` (MLP).

    Returns:
        RecipeResult: the trained model (in eval mode), its history, train and test
        accuracy, and the settings.

    Example:
        >>> from regcourse.data import digits_split
        >>> run = solid_default(digits_split(150, 100), channels=8, epochs=5)
        >>> run.settings["weight_decay"], run.settings["dropout"]
        (0.01, 0.25)

    Used in:
        chapter "Choosing and combining regularizers".
    """
    _check_data(data)
    if model not in _MODELS:
        raise ValueError(f"model must be one of {list(_MODELS)}, got {model!r}")
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0)
    if patience is not None:
        patience = check_scalar(patience, "patience", kind="int", low=1)
    batch_norm = _check_bool(batch_norm, "batch_norm")
    dropout = check_scalar(dropout, "dropout", low=0, high=1, closed="left")
    label_smoothing = check_scalar(label_smoothing, "label_smoothing", low=0, high=1)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    progress = _check_bool(progress, "progress")
    augment_fn, augment_name = _resolve_augment(augment, data)

    net = build_model(model, seed=seed, dropout=dropout, batch_norm=batch_norm, **model_kwargs)
    stopper = EarlyStopping(patience=patience) if patience is not None else None
    history = train(
        net,
        data,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        optimizer="adamw",
        batch_size=batch_size,
        label_smoothing=label_smoothing,
        augment=augment_fn,
        early_stopping=stopper,
        seed=seed,
        progress=progress,
        desc=f"{model}, seed {seed}",
    )
    _, train_acc = evaluate(net, data.x_train, data.y_train)
    _, test_acc = evaluate(net, data.x_test, data.y_test)
    settings = {
        "model": model,
        **model_kwargs,
        "weight_decay": weight_decay,
        "patience": patience,
        "augment": augment_name,
        "batch_norm": batch_norm,
        "dropout": dropout,
        "label_smoothing": label_smoothing,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
    }
    return RecipeResult(net, history, train_acc, test_acc, settings)


def no_regularization(
    data,
    *,
    model: str = "cnn",
    epochs: int = 60,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
    **model_kwargs,
) -> RecipeResult:
    """The baseline for :func:`solid_default`: the same network, optimizer (AdamW, here
    with ``weight_decay=0``, which makes it plain Adam), learning rate, batch size, epoch
    budget and seed, with every regularizer of the recipe switched off: no weight decay,
    no early stopping (all ``epochs`` are trained and the last weights kept), no
    augmentation, no batch norm, no dropout, no label smoothing.

    Args: as for :func:`solid_default`.

    Returns:
        RecipeResult.

    Used in:
        chapter "Choosing and combining regularizers".
    """
    return solid_default(
        data,
        model=model,
        weight_decay=0.0,
        patience=None,
        augment=None,
        batch_norm=False,
        dropout=0.0,
        label_smoothing=0.0,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        **model_kwargs,
    )
