"""Experiments of the chapter "Data augmentation".

- ``aug_gallery``: every image transform of :mod:`regcourse.augment` applied to a real
  photograph, as a figure, with checked facts (identities, Mixup's blend, CutMix's
  label weight equal to the counted fraction of pasted pixels).
- ``aug_strength``: the MNIST-1D MLP trained on a subset of the benchmark without
  augmentation, with random circular shifts of growing size, and with an invalid
  transform (negation, which turns some digits into others); train and test accuracy
  and their gap over several seeds.

The 1-D signal transforms for MNIST-1D live here (:mod:`regcourse.augment` has the
image ones): :func:`shift`, :func:`random_shift`, :func:`random_scale`,
:func:`gaussian_noise`, :func:`random_negate`, their ``nn.Module`` steps for
:class:`regcourse.augment.Augment`, :func:`signal_augment` to compose them, and
:func:`fit_augmented`, the training loop with the augmentation inside it.

Signals are float tensors of shape ``(N, L)`` or ``(N, C, L)``; every random transform
draws one value per signal from an explicit ``generator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import augment as A
from .._checks import check_bool, check_choice, check_generator, check_scalar, check_tensor
from ..data import Split, sample_photo
from ..errors import MissingDependencyError
from ..models import mnist1d_model
from ..plotting import image_grid
from ..training import evaluate, minibatches, train_epoch
from . import Result, experiment, mean_std
from ._common import one_thread
from .batch_norm import _check_model_and_data, parse_sizes, subset

__all__ = [
    "aug_gallery",
    "aug_strength",
    "fit_augmented",
    "gaussian_noise",
    "lambda_histograms",
    "mnist1d_recipe",
    "mnist1d_templates",
    "random_negate",
    "random_scale",
    "random_shift",
    "shift",
    "signal_augment",
    "signal_figure",
    "GaussianNoise1d",
    "RandomNegate1d",
    "RandomScale1d",
    "RandomShift1d",
]


# ----------------------------------------------------------------- MNIST-1D's generator
def _mnist1d_data_module():
    try:
        import mnist1d.data
    except ImportError:
        raise MissingDependencyError("mnist1d", "pip install mnist1d==0.0.2.post1") from None
    return mnist1d.data


def mnist1d_recipe() -> dict:
    """The arguments MNIST-1D's generator uses (``mnist1d.data.get_dataset_args()``), as a dict.

    Among them: ``template_len`` (points of each digit's template), ``padding`` (the
    range of zeros appended before stretching), ``max_translation`` (the largest circular
    shift, in positions of the padded signal), ``scale_coeff`` (the amplitude factor is
    ``1 + scale_coeff (u - 1/2)``), the noise scales and ``final_seq_length`` (40).
    """
    args = _mnist1d_data_module().get_dataset_args(as_dict=True)
    return {k: v for k, v in args.items() if k != "url"}


def mnist1d_templates() -> torch.Tensor:
    """The ten digit templates MNIST-1D's signals are generated from, float64 ``(10, template_len)``."""
    return torch.tensor(_mnist1d_data_module().get_templates()["x"], dtype=torch.float64)


# ----------------------------------------------------------------- 1-D signal transforms
def _signals(x, name: str = "x") -> torch.Tensor:
    check_tensor(x, name, ndim=(2, 3))
    return x


def shift(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each signal circularly by its own number of positions.

    ``out[i, ..., t] = x[i, ..., (t - shifts[i]) mod L]``: a positive shift moves the
    signal to later positions, and what leaves at the end comes back at the start, as
    ``torch.roll(x[i], shifts[i], dims=-1)`` does for one signal. MNIST-1D's generator
    translates its signals the same way (a circular ``np.concatenate`` of the two ends).

    Args:
        x (Tensor): signals ``(N, L)`` or ``(N, C, L)``.
        shifts (Tensor): int64 tensor ``(N,)``, any integers (taken modulo ``L``).

    Returns:
        Tensor of the same shape and dtype as ``x``.

    Example:
        >>> shift(torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.tensor([1]))
        tensor([[3., 0., 1., 2.]])
    """
    x = _signals(x)
    if not isinstance(shifts, torch.Tensor) or shifts.dtype != torch.int64:
        got = getattr(shifts, "dtype", type(shifts).__name__)
        raise TypeError(f"shifts must be an int64 tensor, got {got}")
    if shifts.shape != (x.shape[0],):
        raise ValueError(f"shifts must have shape ({x.shape[0]},), got {tuple(shifts.shape)}")
    length = x.shape[-1]
    index = (torch.arange(length, device=x.device) - shifts.to(x.device).view(-1, 1)) % length
    if x.dim() == 3:
        index = index.unsqueeze(1).expand(-1, x.shape[1], -1)
    return x.gather(-1, index)


def random_shift(
    x: torch.Tensor,
    max_shift: int,
    generator: torch.Generator | None = None,
    *,
    return_shifts: bool = False,
):
    """Shift each signal circularly by an integer drawn uniformly from ``[-max_shift, max_shift]``.

    Args:
        x (Tensor): signals ``(N, L)`` or ``(N, C, L)``.
        max_shift (int): the largest shift, ``>= 0`` (``0`` returns ``x`` unchanged).
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
        return_shifts (bool, keyword only): also return the drawn shifts. Default: ``False``.

    Returns:
        The shifted signals (and the int64 shifts ``(N,)`` if asked).
    """
    x = _signals(x)
    max_shift = check_scalar(max_shift, "max_shift", kind="int", low=0)
    check_generator(generator)
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=generator)
    out = shift(x, shifts)
    return (out, shifts) if return_shifts else out


def _per_signal(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return values.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def random_scale(
    x: torch.Tensor, max_change: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multiply each signal by a factor drawn uniformly from ``[1 - max_change, 1 + max_change]``.

    MNIST-1D's generator scales its templates by ``1 + 0.4 (u - 1/2)``, ``u ~ U(0, 1)``:
    ``max_change = 0.2`` reproduces that range.

    Args:
        x (Tensor): signals ``(N, L)`` or ``(N, C, L)``.
        max_change (float): in ``[0, 1)``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
    """
    x = _signals(x)
    max_change = check_scalar(max_change, "max_change", low=0, high=1, closed="left")
    check_generator(generator)
    u = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
    return x * _per_signal(x, 1 + max_change * (2 * u - 1))


def gaussian_noise(
    x: torch.Tensor, std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add independent Gaussian noise of standard deviation ``std`` to every value.

    Args:
        x (Tensor): signals ``(N, L)`` or ``(N, C, L)``.
        std (float): ``>= 0``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
    """
    x = _signals(x)
    std = check_scalar(std, "std", low=0)
    check_generator(generator)
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def random_negate(
    x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multiply each signal by ``-1`` with probability ``p``.

    On MNIST-1D this is an *invalid* augmentation: the negated template of a 0 is the
    template of a 6, that of a 3 the template of an 8 (the chapter measures it).

    Args:
        x (Tensor): signals ``(N, L)`` or ``(N, C, L)``.
        p (float): probability that a signal is negated, in ``[0, 1]``. Default: ``0.5``.
        generator (torch.Generator, optional): source of randomness. Default: ``None``.
    """
    x = _signals(x)
    p = check_scalar(p, "p", low=0, high=1)
    check_generator(generator)
    flip = torch.rand(x.shape[0], generator=generator) < p
    return torch.where(_per_signal(x, flip).bool(), -x, x)


class _SignalAugmentation(nn.Module):
    """A signal transform as a step of :class:`regcourse.augment.Augment`: acts in
    ``train()`` mode, returns its input unchanged in ``eval()`` mode."""

    mixes_labels = False

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return x
        return self.transform(x, generator)


class RandomShift1d(_SignalAugmentation):
    """:func:`random_shift` as a module (only in ``train()`` mode)."""

    def __init__(self, max_shift: int):
        super().__init__()
        self.max_shift = check_scalar(max_shift, "max_shift", kind="int", low=0)

    def transform(self, x, generator):
        return random_shift(x, self.max_shift, generator)

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}"


class RandomScale1d(_SignalAugmentation):
    """:func:`random_scale` as a module (only in ``train()`` mode)."""

    def __init__(self, max_change: float):
        super().__init__()
        self.max_change = check_scalar(max_change, "max_change", low=0, high=1, closed="left")

    def transform(self, x, generator):
        return random_scale(x, self.max_change, generator)

    def extra_repr(self) -> str:
        return f"max_change={self.max_change:g}"


class GaussianNoise1d(_SignalAugmentation):
    """:func:`gaussian_noise` as a module (only in ``train()`` mode)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = check_scalar(std, "std", low=0)

    def transform(self, x, generator):
        return gaussian_noise(x, self.std, generator)

    def extra_repr(self) -> str:
        return f"std={self.std:g}"


class RandomNegate1d(_SignalAugmentation):
    """:func:`random_negate` as a module (only in ``train()`` mode)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_scalar(p, "p", low=0, high=1)

    def transform(self, x, generator):
        return random_negate(x, self.p, generator)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


def signal_augment(
    max_shift: int = 0, max_scale: float = 0.0, noise_std: float = 0.0, negate_p: float = 0.0
) -> A.Augment | None:
    """The pipeline shift → scale → noise → negation with the steps whose setting is not 0.

    Returns:
        :class:`regcourse.augment.Augment`, or ``None`` when every setting is 0 (no
        augmentation).

    Example:
        >>> signal_augment(max_shift=4)
        Augment(
          (steps): ModuleList(
            (0): RandomShift1d(max_shift=4)
          )
        )
    """
    steps: list[nn.Module] = []
    if check_scalar(max_shift, "max_shift", kind="int", low=0):
        steps.append(RandomShift1d(max_shift))
    if check_scalar(max_scale, "max_scale", low=0, high=1, closed="left"):
        steps.append(RandomScale1d(max_scale))
    if check_scalar(noise_std, "noise_std", low=0):
        steps.append(GaussianNoise1d(noise_std))
    if check_scalar(negate_p, "negate_p", low=0, high=1):
        steps.append(RandomNegate1d(negate_p))
    return A.Augment(*steps) if steps else None


def fit_augmented(
    model: nn.Module,
    data: Split,
    augment=None,
    *,
    epochs: int = 40,
    batch_size: int = 256,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[float, float]:
    """Train ``model`` with Adam, augmenting every training batch; train and test accuracy after.

    Each epoch shuffles the training set with a generator seeded with ``seed``; the
    same generator draws the augmentation of every batch (``augment(x, y, generator)``,
    e.g. :func:`signal_augment`'s pipeline, switched to ``train()`` mode if it is a
    module), in training only. Accuracies are measured in evaluation mode (the model
    and the pipeline are left in it) on the *original* training and test signals. One
    torch thread, so the result does not depend on the machine's thread count.

    Returns:
        ``(train_accuracy, test_accuracy)``.
    """
    _check_model_and_data(model, data)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    seed = check_scalar(seed, "seed", kind="int", low=0)
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be callable or None, got {type(augment).__name__}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    with one_thread():
        for _ in range(epochs):
            batches = minibatches(data.x_train, data.y_train, batch_size, generator)
            if isinstance(augment, nn.Module):
                augment.train()  # transforms on (a pipeline left in eval mode does nothing)
            if augment is not None:  # a fresh transform for every batch, training only
                batches = (augment(xb, yb, generator) for xb, yb in batches)
            train_epoch(model, batches, F.cross_entropy, optimizer)
        model.eval()  # left in evaluation mode
        if isinstance(augment, nn.Module):
            augment.eval()
        _, train_acc = evaluate(model, data.x_train, data.y_train)
        _, test_acc = evaluate(model, data.x_test, data.y_test)
    return train_acc, test_acc


def signal_figure(signals: dict[str, torch.Tensor], titles: list[str], *, ncols: int | None = None):
    """Line plots of 1-D signals: one panel per signal index, one line per named version.

    Args:
        signals: ``{name: (K, L) tensor}``: the same ``K`` signals in each version.
        titles: one title per panel (``K`` of them).
    """
    from matplotlib.figure import Figure

    if not isinstance(signals, dict) or not signals:
        raise TypeError(
            f"signals must be a non-empty dict of name -> (K, L) tensor, got {signals!r}"[:200]
        )
    k = len(titles)
    for name, t in signals.items():
        check_tensor(t, f"signals[{name!r}]", ndim=2)
        if t.shape[0] != k:
            raise ValueError(
                f"signals[{name!r}] must hold one signal per title ({k}), got shape {tuple(t.shape)}"
            )
    names = list(signals)
    ncols = ncols or k
    nrows = (k + ncols - 1) // ncols
    fig = Figure(figsize=(2.6 * ncols, 2.2 * nrows))  # outside pyplot
    axes = fig.subplots(nrows, ncols, squeeze=False)
    styles = ["-", "--", ":", "-."]
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.axis("off")
            continue
        for i, name in enumerate(names):
            ax.plot(signals[name][j].tolist(), styles[i % 4], lw=1.4, label=name)
        ax.set_title(titles[j], fontsize=9)
        ax.set_xlabel("position t", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


@experiment(
    "aug_gallery",
    "every augmentation of regcourse.augment applied to a real photograph",
    photo="photo from scikit-learn: china.jpg or flower.jpg",
    size="side of the square photo in pixels",
    seed="seed of the transforms' generator",
    mixup_alpha="alpha of Mixup's Beta(alpha, alpha)",
    cutmix_alpha="alpha of CutMix's Beta(alpha, alpha)",
)
def aug_gallery(
    photo: str = "china.jpg",
    size: int = 128,
    seed: int = 0,
    mixup_alpha: float = 0.2,
    cutmix_alpha: float = 1.0,
    progress: bool = False,
) -> Result:
    """Every augmentation of :mod:`regcourse.augment` applied to one photograph.

    The photo (one of scikit-learn's two sample images, cut to a ``size`` square) goes
    through a horizontal flip, a random resized crop, a rotation, colour jitter and
    Cutout; Mixup and CutMix pair it with the other photo. CutMix is run a second time
    from the same generator state on two constant "tag" images, so that the pasted
    pixels can be counted exactly and compared with the label weight.

    Returns:
        Result: one row per transform with the fraction of pixels it changed
        (``changed_fraction``), claims (shapes kept, values in [0, 1], a double flip and
        a zero rotation give the photo back, Mixup's image is its stated blend, both
        label rows sum to 1, CutMix's label weight equals its pasted area) and the
        gallery figure.
    """
    if photo not in ("china.jpg", "flower.jpg"):
        raise ValueError(f"photo must be 'china.jpg' or 'flower.jpg', got {photo!r}")
    size = check_scalar(size, "size", kind="int", low=16, high=427)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    mixup_alpha = check_scalar(mixup_alpha, "mixup_alpha", low=0, closed="neither")
    cutmix_alpha = check_scalar(cutmix_alpha, "cutmix_alpha", low=0, closed="neither")
    other = "flower.jpg" if photo == "china.jpg" else "china.jpg"
    a, b = sample_photo(photo, size), sample_photo(other, size)
    pair = torch.stack([a, b])  # (2, 3, S, S): the photo and its mixing partner
    labels = torch.tensor([0, 1])
    g = torch.Generator().manual_seed(seed)

    flipped = A.hflip(a, p=1.0)
    crop, boxes = A.random_resized_crop(a[None], scale=(0.3, 0.6), generator=g, return_boxes=True)
    rotated = A.rotate(a, max_degrees=15, generator=g)
    jittered = A.color_jitter(a, brightness=0.4, contrast=0.4, saturation=0.6, hue=0.1, generator=g)
    cut, cut_boxes = A.cutout(a[None], size=size // 3, generator=g, return_boxes=True)
    swap = torch.tensor([1, 0])  # pair each photo with the other one
    mixed, y_mix, mix = A.mixup(
        pair, labels, 2, alpha=mixup_alpha, generator=g, return_params=True, index=swap
    )
    # CutMix twice from the same generator state: once on the photos, once on "tag"
    # images (all 0 and all 1) so that the pasted pixels can be counted unambiguously.
    state = g.get_state()
    pasted, y_cut, cm = A.cutmix(
        pair, labels, 2, alpha=cutmix_alpha, generator=g, return_params=True, index=swap
    )
    g.set_state(state)
    tags = torch.stack([torch.zeros_like(a), torch.ones_like(a)])
    tagged, _, cm_tag = A.cutmix(
        tags, labels, 2, alpha=cutmix_alpha, generator=g, return_params=True, index=swap
    )
    # Row i of the labels gives the other photo's class the weight 1 - lam: it must equal
    # the fraction of photo i's pixels that now come from the other photo.
    from_other = [(tagged[i, 0] != float(i)).float().mean().item() for i in range(2)]
    weight_other = [y_cut[i, 1 - i].item() for i in range(2)]
    images = {
        "original": a,
        "horizontal flip": flipped,
        "random resized crop": crop[0],
        "rotation (up to 15°)": rotated,
        "color jitter": jittered,
        f"Cutout ({size // 3} px)": cut[0],
        f"Mixup (λ = {mix['lam']:.2f})": mixed[0],
        f"CutMix (λ = {cm['lam']:.2f})": pasted[0],
    }
    rows = []
    for name, img in images.items():
        changed = (img != a).any(0).float().mean().item()
        rows.append({"transform": name, "changed_fraction": round(changed, 2)})

    claims = {
        f"every transform keeps the shape {tuple(a.shape)}": all(
            t.shape == a.shape for t in images.values()
        ),
        "every transformed photo stays in [0, 1]": all(
            bool((t >= 0).all() and (t <= 1).all()) for t in images.values()
        ),
        "flipping twice gives the photo back exactly": torch.equal(A.hflip(flipped, p=1.0), a),
        "rotating by 0 degrees gives the photo back (max error < 1e-5)": bool(
            (A.rotate_by(a, 0.0) - a).abs().max() < 1e-5
        ),
        "color jitter with zero strengths gives the photo back exactly": torch.equal(
            A.color_jitter(a, 0, 0, 0, 0, generator=g), a
        ),
        "Mixup image = lam * a + (1 - lam) * b exactly": torch.equal(
            mixed, mix["lam"] * pair + (1 - mix["lam"]) * pair[mix["index"]]
        ),
        "Mixup and CutMix label rows sum to 1": bool(
            torch.allclose(y_mix.sum(1), torch.ones(2))
            and torch.allclose(y_cut.sum(1), torch.ones(2))
        ),
        "CutMix label weight = counted pixel fraction": cm_tag["box"] == cm["box"]
        and all(abs(f - w) < 1e-6 for f, w in zip(from_other, weight_other)),
    }
    fig = image_grid(list(images.values()), titles=list(images), ncols=4, size=2.2)
    return Result(
        "aug_gallery",
        {
            "photo": photo,
            "size": size,
            "seed": seed,
            "mixup_alpha": mixup_alpha,
            "cutmix_alpha": cutmix_alpha,
        },
        rows,
        claims,
        fig,
        extra={
            "images": images,
            "crop_box": tuple(int(v) for v in boxes[0]),
            "cutout_box": tuple(int(v) for v in cut_boxes[0]),
            "mixup": {"lam": mix["lam"], "labels": y_mix},
            "cutmix": {
                "lam": cm["lam"],
                "lam0": cm["lam0"],
                "center": cm["center"],
                "size": cm["size"],
                "box": cm["box"],
                "index": cm["index"].tolist(),
                "counted_fraction": from_other[0],
                "label_weight": weight_other[0],
                "labels": y_cut,
            },
        },
    )


def _arm_label(max_shift: int | None) -> str:
    if max_shift is None:
        return "negation (invalid)"
    return "none" if max_shift == 0 else f"shift <= {max_shift}"


@experiment(
    "aug_strength",
    "MNIST-1D: train/test accuracy without augmentation, with circular shifts of growing size, "
    "and with negation (an invalid transform)",
    max_shifts="comma-separated largest shifts (0: no augmentation), increasing",
    invalid="also train with random negation (p = 0.5), which changes some digits into others",
    seeds="number of seeds (initial weights, shuffling and augmentation draws)",
    n_train="training signals (the first n_train of MNIST-1D's 4,000)",
    epochs="passes over the training signals",
    batch_size="mini-batch size",
    lr="Adam's learning rate",
    model="'mlp' (40-100-100-10) or 'cnn' (the benchmark's 1-D CNN)",
)
def aug_strength(
    max_shifts: str = "0,2,4,8,16",
    invalid: bool = True,
    seeds: int = 3,
    n_train: int = 1024,
    epochs: int = 40,
    batch_size: int = 256,
    lr: float = 0.01,
    model: str = "mlp",
    progress: bool = False,
) -> Result:
    """Train the model once per arm and seed; accuracies on the original signals, mean ± std."""
    shifts = parse_sizes(max_shifts, "max_shifts", low=0)
    invalid = check_bool(invalid, "invalid")
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    n_train = check_scalar(n_train, "n_train", kind="int", low=16, high=4000)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", low=2)
    lr = check_scalar(lr, "lr", low=0, closed="neither")
    model = check_choice(model, "model", ("mlp", "cnn"))
    if shifts[0] != 0:
        raise ValueError(
            f"max_shifts must start with 0 (the run without augmentation), got {max_shifts!r}"
        )
    options = dict(
        max_shifts=max_shifts,
        invalid=invalid,
        seeds=seeds,
        n_train=n_train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        model=model,
    )
    arms: list[tuple[str, int | None]] = [(_arm_label(k), k) for k in shifts]
    if invalid:
        arms.append((_arm_label(None), None))

    data = subset(n_train)
    rows = []
    for seed in range(seeds):
        for label, k in arms:
            net = mnist1d_model(model, seed=seed)
            augment = signal_augment(negate_p=0.5) if k is None else signal_augment(max_shift=k)
            train_acc, test_acc = fit_augmented(
                net, data, augment, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed
            )
            rows.append(
                {
                    "seed": seed,
                    "augmentation": label,
                    "max_shift": "" if k is None else k,
                    "train_acc": train_acc,
                    "test_acc": test_acc,
                    "gap": train_acc - test_acc,
                }
            )

    def column(label, key):
        return [r[key] for r in rows if r["augmentation"] == label]

    keys = ("train_acc", "test_acc", "gap")
    summary = {label: {key: mean_std(column(label, key)) for key in keys} for label, _ in arms}
    labels = [_arm_label(k) for k in shifts]
    gaps = [summary[lab]["gap"][0] for lab in labels]
    tests = [summary[lab]["test_acc"][0] for lab in labels]
    best = labels[max(range(len(labels)), key=tests.__getitem__)]
    claims = {
        "the mean gap shrinks at every larger max shift": all(
            a > b for a, b in zip(gaps, gaps[1:])
        ),
        "the best max shift raises the mean test accuracy by more than 0.05": summary[best][
            "test_acc"
        ][0]
        > tests[0] + 0.05,
        "the best max shift beats no augmentation on test accuracy in every seed": all(
            a > b for a, b in zip(column(best, "test_acc"), column("none", "test_acc"))
        ),
        "test accuracy at the largest shift is more than 0.03 below the best": tests[-1]
        < summary[best]["test_acc"][0] - 0.03,
    }
    if invalid:
        claims["negation lowers the test accuracy below no augmentation in every seed"] = all(
            a < b for a, b in zip(column(_arm_label(None), "test_acc"), column("none", "test_acc"))
        )

    fig = _strength_figure(shifts, summary, invalid, seeds, n_train, model)
    return Result(
        "aug_strength", options, rows, claims, fig, extra={"summary": summary, "best": best}
    )


def _strength_figure(shifts, summary, invalid, seeds, n_train, model):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6))  # outside pyplot: shown only where the chapter asks
    ax = fig.subplots()
    xs = list(range(len(shifts)))
    for key, name, fmt in (
        ("train_acc", "train accuracy", "o--"),
        ("test_acc", "test accuracy", "s-"),
    ):
        stats = [summary[_arm_label(k)][key] for k in shifts]
        ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], fmt=fmt, capsize=3,
                    label=name)  # fmt: skip
    ticks = [str(k) for k in shifts]
    if invalid:
        x_neg = len(shifts) + 0.5
        ax.axvline(len(shifts) - 0.25, color="gray", lw=0.8)
        for key, fmt, color in (("train_acc", "o", "tab:blue"), ("test_acc", "s", "tab:orange")):
            m, s = summary[_arm_label(None)][key]
            ax.errorbar([x_neg], [m], yerr=[s], fmt=fmt, capsize=3, color=color)
        xs = [*xs, x_neg]
        ticks.append("negation\n(invalid)")
    ax.set_xticks(xs, ticks)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("largest random circular shift (positions of 40)")
    ax.set_ylabel(f"accuracy, mean ± std of {seeds} seeds")
    ax.set_title(f"MNIST-1D {model.upper()}, {n_train} training signals", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def lambda_histograms(alphas=(0.2, 1.0), n: int = 20_000, seed: int = 0):
    """Histograms of Mixup's ``λ ~ Beta(α, α)`` for each α, drawn with :func:`regcourse.augment.sample_beta`.

    Returns:
        ``(figure, samples)`` with ``samples[α]`` a float64 tensor of ``n`` draws.
    """
    from matplotlib.figure import Figure

    n = check_scalar(n, "n", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    g = torch.Generator().manual_seed(seed)
    samples = {float(a): A.sample_beta(a, a, n, generator=g) for a in alphas}
    fig = Figure(figsize=(3.2 * len(samples), 2.8))  # outside pyplot
    axes = fig.subplots(1, len(samples), squeeze=False)
    for ax, (a, s) in zip(axes[0], samples.items()):
        ax.hist(s.numpy(), bins=40, range=(0, 1), density=True, color="tab:blue")
        ax.set_title(f"λ ~ Beta({a:g}, {a:g})")
        ax.set_xlabel("λ")
    axes[0][0].set_ylabel("density")
    fig.tight_layout()
    return fig, samples
