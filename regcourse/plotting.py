"""Figures for the chapters. Each function returns a matplotlib ``Figure``; the
chapters show it with :func:`show_figure` (PNG, alt text and the figure's numbers in
one output), the command line saves it as PNG."""

from __future__ import annotations

import base64
import csv
import io
import numbers
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["figure_bundle", "image_grid", "loss_curves", "mean_std_bars", "show_figure"]


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


def mean_std_bars(
    labels, groups: dict[str, tuple[list[float], list[float]]], *, ylabel: str = "", title: str = ""
):
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


# --- showing a figure: picture, alt text and data in one notebook output ---------

_CSV_ROWS_MAX = 100_000


def _cell(value, column: str, row: int) -> str:
    """One CSV cell: numbers in full precision (``repr`` of the float), text as is."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim != 0:
            raise ValueError(
                f"data[{column!r}][{row}] must be a number or a string, got an array of shape "
                f"{tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return value
    raise TypeError(
        f"data[{column!r}][{row}] must be a number or a string, got {type(value).__name__}"
    )


def _column(values, column: str) -> list:
    if isinstance(values, (torch.Tensor, np.ndarray)):
        if values.ndim != 1:
            raise ValueError(
                f"data[{column!r}] must be one-dimensional, got shape {tuple(values.shape)}"
            )
        return list(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            f"data[{column!r}] must be a sequence of values (list, tuple, 1-D array or tensor), "
            f"got {type(values).__name__}"
        )
    return list(values)


def _csv_text(data) -> str:
    if not isinstance(data, Mapping):
        raise TypeError(
            f"data must be a mapping of column name to values, got {type(data).__name__}"
        )
    if not data:
        raise ValueError("data must have at least one column, got an empty mapping")
    columns = {}
    for name, values in data.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"data's column names must be non-empty strings, got {name!r}")
        columns[name] = _column(values, name)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"data's columns must have the same length, got {lengths}")
    n_rows = next(iter(lengths.values()))
    if n_rows == 0:
        raise ValueError("data's columns must not be empty, got 0 rows")
    if n_rows > _CSV_ROWS_MAX:
        raise ValueError(f"data must have at most {_CSV_ROWS_MAX} rows, got {n_rows}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for i in range(n_rows):
        writer.writerow(_cell(values[i], name, i) for name, values in columns.items())
    return out.getvalue()


def _check_alt(alt) -> str:
    if not isinstance(alt, str):
        raise TypeError(f"alt must be a str, got {type(alt).__name__}")
    text = " ".join(alt.split())
    if not text:
        raise ValueError("alt must say what the figure shows, got an empty string")
    if text.startswith("<") or text.lower().endswith((".png", ".jpg", ".jpeg", ".svg")):
        raise ValueError(f"alt must be a sentence saying what the figure shows, got {alt!r}")
    return text


def figure_bundle(fig, *, alt: str, data: Mapping[str, Sequence] | None = None) -> dict:
    """The notebook output of a figure: its PNG, its alt text and (optionally) its data.

    :func:`show_figure` displays this bundle; it is separate so that it can be checked
    or saved without a notebook. The PNG is drawn as the notebook's inline backend
    draws it (``bbox_inches="tight"`` at the figure's dpi, fixed by ``regcourse.setup``).

    Args:
        fig (matplotlib.figure.Figure): the figure.
        alt (str): what the figure shows, as a sentence with the claim or the numbers
            it supports, e.g. ``"Training and validation loss over 30 epochs: validation
            loss is lowest at epoch 12 (0.41) and rises afterwards."`` Whitespace is
            collapsed; empty text, a file name or a repr (``"<Figure ...>"``) is refused.
        data (Mapping[str, Sequence], optional): the numbers behind the figure, one
            column per key (lists, tuples, 1-D arrays or tensors of numbers or strings,
            all of the same length), written as CSV with a header row. Floats are
            written in full precision. Default: ``None`` (no data).

    Returns:
        dict: the mime bundle ``{"image/png": <base64 str>, "text/plain": alt,
        "text/csv": <csv text>}`` (``text/csv`` only when ``data`` is given).

    Raises:
        TypeError: if ``fig`` is not a matplotlib ``Figure``, ``alt`` is not a str, or
            ``data`` is not a mapping of columns.
        ValueError: if ``alt`` is empty or not a sentence, or the columns of ``data``
            are empty, of different lengths, or hold arrays instead of values.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> _ = ax.plot([1, 2, 3], [0.9, 0.5, 0.4])
        >>> bundle = figure_bundle(fig, alt="Loss falls from 0.9 to 0.4 in 3 epochs.",
        ...                        data={"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.4]})
        >>> sorted(bundle)
        ['image/png', 'text/csv', 'text/plain']
        >>> print(bundle["text/csv"], end="")
        epoch,loss
        1,0.9
        2,0.5
        3,0.4
        >>> plt.close(fig)
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    text = _check_alt(alt)
    csv_text = None if data is None else _csv_text(data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    bundle = {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": text}
    if csv_text is not None:
        bundle["text/csv"] = csv_text
    return bundle


def show_figure(fig, *, alt: str, data: Mapping[str, Sequence] | None = None) -> None:
    """Show a figure in a notebook as one output with its alt text and its data; close it.

    The output's mime bundle holds ``image/png`` (what JupyterLab, VS Code and Colab
    show), ``text/plain`` = ``alt`` and, with ``data``, ``text/csv`` = the figure's
    numbers. nbval compares ``text/plain`` and ``text/csv`` on every run, so the alt
    text and the data are checked like any printed number. The site uses them too:
    ``alt`` becomes the image's alt text and the CSV a "Download the data (CSV)" link
    under the figure (``book/_ext/figures.py``). End a figure cell with this call
    instead of ``plt.show()``; a cell whose numbers depend on the CPU (training
    curves) starts with ``# NBVAL_IGNORE_OUTPUT`` and a following cell checks its claim.

    Args:
        fig (matplotlib.figure.Figure): the figure, e.g. from :func:`loss_curves`.
        alt (str): what the figure shows, as a sentence with the claim or numbers it
            supports (see :func:`figure_bundle`). Screen-reader users hear only this.
        data (Mapping[str, Sequence], optional): the figure's numbers, one column per
            key, e.g. ``{"epoch": [...], "train_loss": [...], "val_loss": [...]}``.
            Default: ``None``.

    Raises:
        RuntimeError: outside a notebook/IPython (a script saves figures with
            ``fig.savefig`` instead); the figure is closed either way.
        TypeError, ValueError: bad ``fig``, ``alt`` or ``data``, as in :func:`figure_bundle`.

    Example (in a notebook cell)::

        fig = loss_curves(history, best_epoch=best)
        show_figure(
            fig,
            alt=f"Validation loss is lowest at epoch {best} and rises afterwards.",
            data={"epoch": list(range(1, len(history.val_loss) + 1)),
                  "train_loss": history.train_loss, "val_loss": history.val_loss},
        )

    Used in: every chapter with a figure.
    """
    try:
        bundle = figure_bundle(fig, alt=alt, data=data)
    finally:
        if isinstance(fig, Figure):
            plt.close(fig)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with every notebook kernel
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        raise RuntimeError(
            "show_figure displays a figure in a notebook (IPython kernel); "
            "in a script, save the figure with fig.savefig(path) instead"
        )
    display(bundle, raw=True)


del matplotlib
