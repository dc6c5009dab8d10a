"""Figures for the chapters. Each function returns a matplotlib ``Figure``; the
chapters show it, the command line saves it as PNG."""

from __future__ import annotations

import matplotlib

import matplotlib.pyplot as plt
import torch

__all__ = ["loss_curves", "mean_std_bars", "image_grid"]


def loss_curves(history, *, best_epoch: int | None = None, title: str = "", ax=None):
    """Training and validation loss per epoch, with an optional marked epoch.

    Args:
        history: a :class:`regcourse.training.History`.
        best_epoch (int, optional): epoch (1-based) to mark with a vertical line.
        title (str): axes title.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.5))
    epochs = range(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, label="training loss")
    ax.plot(epochs, history.val_loss, label="validation loss")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="k", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def mean_std_bars(labels, groups: dict[str, tuple[list[float], list[float]]], *, ylabel: str = "", title: str = ""):
    """Grouped bars of means with ± one standard deviation.

    Args:
        labels: one label per bar position (e.g. regularization levels).
        groups: ``{series name: (means, stds)}``, each list as long as ``labels``.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    n = len(groups)
    width = 0.8 / max(n, 1)
    for i, (name, (means, stds)) in enumerate(groups.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def image_grid(images, titles=None, *, ncols: int = 4, size: float = 2.2):
    """Show a list of ``(C, H, W)`` tensors in [0, 1] (C = 1 or 3) in a grid."""
    images = list(images)
    nrows = (len(images) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(images):
            continue
        img = images[k].detach().clamp(0, 1)
        if img.dim() == 3 and img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).numpy() if img.dim() == 3 else img.numpy())
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    """Close a figure that was saved but not shown."""
    plt.close(fig)


del matplotlib, torch
