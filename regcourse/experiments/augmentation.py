"""Experiments of the chapter "Data augmentation".

- ``aug_gallery``: every image transform of :mod:`regcourse.augment` applied to a real
  photograph, as a figure, with checked facts (identities, Mixup's blend, CutMix's
  label weight equal to the counted fraction of pasted pixels).
- ``aug_gap``: a small CNN trained on a few hundred 8 × 8 digits without augmentation,
  with augmentations that keep a digit's identity (small shifts, small rotations,
  Cutout), and with horizontal flips (which do not); the train–test accuracy gap of
  each, over several seeds.
"""

from __future__ import annotations

import torch

from .. import augment as A
from .._checks import check_scalar
from ..data import digits_split, sample_photo
from ..models import build_model
from ..plotting import image_grid, mean_std_bars
from ..training import evaluate, train
from . import Result, experiment, mean_std

__all__ = ["aug_gallery", "aug_gap", "digit_augment", "lambda_histograms"]


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
    if photo not in ("china.jpg", "flower.jpg"):
        raise ValueError(f"photo must be 'china.jpg' or 'flower.jpg', got {photo!r}")
    size = check_scalar(size, "size", kind="int", low=16, high=427)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    mixup_alpha = check_scalar(mixup_alpha, "mixup_alpha", low=0, closed="neither")
    cutmix_alpha = check_scalar(cutmix_alpha, "cutmix_alpha", low=0, closed="neither")
    other = "flower.jpg" if photo == "china.jpg" else "china.jpg"
    a, b = sample_photo(photo, size), sample_photo(other, size)
    pair = torch.stack([a, b])                 # (2, 3, S, S): the photo and its mixing partner
    labels = torch.tensor([0, 1])
    g = torch.Generator().manual_seed(seed)

    flipped = A.hflip(a, p=1.0)
    crop, boxes = A.random_resized_crop(a[None], scale=(0.3, 0.6), generator=g, return_boxes=True)
    rotated = A.rotate(a, max_degrees=15, generator=g)
    jittered = A.color_jitter(a, brightness=0.4, contrast=0.4, saturation=0.6, hue=0.1, generator=g)
    cut, cut_boxes = A.cutout(a[None], size=size // 3, generator=g, return_boxes=True)
    swap = torch.tensor([1, 0])                # pair each photo with the other one
    mixed, y_mix, mix = A.mixup(pair, labels, 2, alpha=mixup_alpha, generator=g, return_params=True, index=swap)
    # CutMix twice from the same generator state: once on the photos, once on "tag"
    # images (all 0 and all 1) so that the pasted pixels can be counted unambiguously.
    state = g.get_state()
    pasted, y_cut, cm = A.cutmix(pair, labels, 2, alpha=cutmix_alpha, generator=g, return_params=True,
                                 index=swap)
    g.set_state(state)
    tags = torch.stack([torch.zeros_like(a), torch.ones_like(a)])
    tagged, _, cm_tag = A.cutmix(tags, labels, 2, alpha=cutmix_alpha, generator=g, return_params=True,
                                 index=swap)
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
        f"every transform keeps the shape {tuple(a.shape)}": all(t.shape == a.shape for t in images.values()),
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
            torch.allclose(y_mix.sum(1), torch.ones(2)) and torch.allclose(y_cut.sum(1), torch.ones(2))
        ),
        "CutMix label weight = counted pixel fraction": cm_tag["box"] == cm["box"]
        and all(abs(f - w) < 1e-6 for f, w in zip(from_other, weight_other)),
    }
    fig = image_grid(list(images.values()), titles=list(images), ncols=4, size=2.2)
    return Result(
        "aug_gallery",
        {"photo": photo, "size": size, "seed": seed, "mixup_alpha": mixup_alpha, "cutmix_alpha": cutmix_alpha},
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


def digit_augment(kind: str, background: float, padding: int = 1, max_degrees: float = 10.0,
                  cutout: int = 3) -> A.Augment | None:
    """The augmentation pipelines of ``aug_gap`` for standardised 8 × 8 digits.

    ``"none"``: no augmentation. ``"shift_rotate_cutout"``: shift by up to ``padding``
    pixels (pad, then crop 8 × 8), rotate by up to ``max_degrees``, and a
    ``cutout × cutout`` square on half of the images (``cutout=0``: no Cutout), all
    filling with the ``background`` value (the standardised value of a blank pixel,
    not 0). ``"flip"``: horizontal flips, which turn many digits into
    non-digits or other digits — an invalid augmentation for this task.
    """
    if kind == "none":
        return None
    if kind == "shift_rotate_cutout":
        steps = [A.RandomCrop(8, padding=padding, fill=background),
                 A.RandomRotation(max_degrees, fill=background)]
        if cutout:
            steps.append(A.Cutout(cutout, p=0.5, value=background))
        return A.Augment(*steps)
    if kind == "flip":
        return A.Augment(A.RandomHFlip(0.5))
    raise ValueError(f"kind must be one of ['flip', 'none', 'shift_rotate_cutout'], got {kind!r}")


ARMS = ("none", "shift_rotate_cutout", "flip")


@experiment(
    "aug_gap",
    "train-test accuracy gap on digits without augmentation, with valid augmentation, with flips",
    seeds="number of seeds (data split, initialisation, shuffling, augmentation)",
    n_train="training images",
    epochs="training epochs",
    channels="channels of the small CNN",
    padding="largest shift in pixels",
    max_degrees="largest rotation in degrees",
    cutout="side of the Cutout square (0: no Cutout)",
)
def aug_gap(
    seeds: int = 3,
    n_train: int = 150,
    epochs: int = 80,
    channels: int = 16,
    padding: int = 1,
    max_degrees: float = 10.0,
    cutout: int = 3,
    progress: bool = False,
) -> Result:
    seeds = check_scalar(seeds, "seeds", kind="int", low=1)
    n_train = check_scalar(n_train, "n_train", kind="int", low=20, high=1000)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    channels = check_scalar(channels, "channels", kind="int", low=1)
    padding = check_scalar(padding, "padding", kind="int", low=0, high=4)
    max_degrees = check_scalar(max_degrees, "max_degrees", low=0, high=180)
    cutout = check_scalar(cutout, "cutout", kind="int", low=0, high=8)
    rows = []
    for seed in range(seeds):
        data = digits_split(n_train, 100, seed=seed)
        background = float(data.x_train.min())   # a blank pixel after standardisation
        for arm in ARMS:
            model = build_model("cnn", seed=seed, channels=channels)
            augment = digit_augment(arm, background, padding, max_degrees, cutout)
            train(model, data, epochs=epochs, lr=3e-3, augment=augment,
                  seed=seed, progress=progress, desc=f"{arm}, seed {seed}")
            _, train_acc = evaluate(model, data.x_train, data.y_train)
            _, test_acc = evaluate(model, data.x_test, data.y_test)
            rows.append({"seed": seed, "augmentation": arm, "train_acc": train_acc,
                         "test_acc": test_acc, "gap": train_acc - test_acc})

    def column(arm, key):
        return [r[key] for r in rows if r["augmentation"] == arm]


    keys = ("train_acc", "test_acc", "gap")
    summary = {arm: {key: mean_std(column(arm, key)) for key in keys} for arm in ARMS}
    gap_none, gap_aug = column("none", "gap"), column("shift_rotate_cutout", "gap")
    test_none, test_flip = column("none", "test_acc"), column("flip", "test_acc")
    reduction = summary["none"]["gap"][0] - summary["shift_rotate_cutout"]["gap"][0]
    test_aug = column("shift_rotate_cutout", "test_acc")
    claims = {
        "augmentation shrinks the train-test gap in every seed": all(a < n for a, n in zip(gap_aug, gap_none)),
        "mean gap shrinks by more than 1 percentage point": reduction > 0.01,
        "augmentation raises the test accuracy in every seed": all(a > n for a, n in zip(test_aug, test_none)),
        "horizontal flips lower the test accuracy in every seed": all(f < n for f, n in zip(test_flip, test_none)),
    }
    fig = mean_std_bars(
        ["none", "shift + rotate\n+ Cutout", "horizontal flip"],
        {
            "train accuracy": tuple([summary[a]["train_acc"][i] for a in ARMS] for i in (0, 1)),
            "test accuracy": tuple([summary[a]["test_acc"][i] for a in ARMS] for i in (0, 1)),
        },
        ylabel="accuracy",
        title=f"Small CNN, {n_train} digits, mean ± std over {seeds} seeds",
    )
    fig.axes[0].set_ylim(0.8, 1.02)
    fig.tight_layout()
    return Result(
        "aug_gap",
        {"seeds": seeds, "n_train": n_train, "epochs": epochs, "channels": channels,
         "padding": padding, "max_degrees": max_degrees, "cutout": cutout},
        rows,
        claims,
        fig,
        extra={"summary": summary, "gap_reduction": reduction},
    )


def lambda_histograms(alphas=(0.2, 1.0), n: int = 20_000, seed: int = 0):
    """Histograms of Mixup's ``λ ~ Beta(α, α)`` for each α, drawn with :func:`regcourse.augment.sample_beta`.

    Returns:
        ``(figure, samples)`` with ``samples[α]`` a float64 tensor of ``n`` draws.
    """
    import matplotlib.pyplot as plt

    n = check_scalar(n, "n", kind="int", low=1)
    seed = check_scalar(seed, "seed", kind="int", low=0)
    g = torch.Generator().manual_seed(seed)
    samples = {float(a): A.sample_beta(a, a, n, generator=g) for a in alphas}
    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 2.8), squeeze=False)
    for ax, (a, s) in zip(axes[0], samples.items()):
        ax.hist(s.numpy(), bins=40, range=(0, 1), density=True, color="tab:blue")
        ax.set_title(f"λ ~ Beta({a:g}, {a:g})")
        ax.set_xlabel("λ")
    axes[0][0].set_ylabel("density")
    fig.tight_layout()
    return fig, samples
