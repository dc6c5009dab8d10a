"""regcourse.plotting: figures shown as one output with their alt text and their data."""

from __future__ import annotations

import base64
import csv
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from regcourse import plotting
from regcourse.plotting import figure_bundle, show_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALT = "Loss falls from 0.9 at epoch 1 to 0.4 at epoch 3."


@pytest.fixture
def fig():
    figure, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([1, 2, 3], [0.9, 0.5, 0.4])
    yield figure
    plt.close(figure)


def rows(bundle) -> list[list[str]]:
    return list(csv.reader(io.StringIO(bundle["text/csv"])))


class TestFigureBundle:
    def test_holds_a_png_and_the_alt_text(self, fig):
        bundle = figure_bundle(fig, alt=ALT)
        assert set(bundle) == {"image/png", "text/plain"}
        assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
        assert bundle["text/plain"] == ALT

    def test_png_has_the_figure_size_at_its_dpi(self, fig):
        png = base64.b64decode(figure_bundle(fig, alt=ALT)["image/png"])
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        # bbox_inches="tight" trims the margins: at most 3 x 2 inches at 50 dpi
        assert 0 < width <= 150 and 0 < height <= 100

    def test_alt_whitespace_is_collapsed(self, fig):
        bundle = figure_bundle(fig, alt="  Loss falls\n  from 0.9\tto 0.4. ")
        assert bundle["text/plain"] == "Loss falls from 0.9 to 0.4."

    def test_data_becomes_csv_with_a_header_row(self, fig):
        bundle = figure_bundle(fig, alt=ALT, data={"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.4]})
        assert rows(bundle) == [["epoch", "loss"], ["1", "0.9"], ["2", "0.5"], ["3", "0.4"]]

    def test_floats_keep_full_precision(self, fig):
        value = 1 / 3
        bundle = figure_bundle(fig, alt=ALT, data={"x": [value]})
        assert float(rows(bundle)[1][0]) == value

    def test_text_cells_are_quoted_by_csv(self, fig):
        bundle = figure_bundle(fig, alt=ALT, data={"method": ["L2, light", 'say "hi"']})
        assert rows(bundle)[1:] == [["L2, light"], ['say "hi"']]

    def test_tensor_and_array_columns_and_scalars(self, fig):
        data = {
            "t": torch.tensor([0.25, 0.5]),
            "a": np.array([1, 2]),
            "s": [torch.tensor(3), np.float64(0.125)],
            "b": [True, np.bool_(False)],
        }
        assert rows(figure_bundle(fig, alt=ALT, data=data))[1:] == [
            ["0.25", "1", "3", "True"],
            ["0.5", "2", "0.125", "False"],
        ]

    def test_does_not_close_the_figure(self, fig):
        figure_bundle(fig, alt=ALT)
        assert plt.fignum_exists(fig.number)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"alt": None}, TypeError, "alt must be a str"),
            ({"alt": "   "}, ValueError, "alt must say what the figure shows"),
            ({"alt": "<Figure size 640x480 with 1 Axes>"}, ValueError, "alt must be a sentence"),
            ({"alt": "_images/loss.png"}, ValueError, "alt must be a sentence"),
            ({"data": [1, 2]}, TypeError, "data must be a mapping"),
            ({"data": {}}, ValueError, "at least one column"),
            ({"data": {"x": [1, 2], "y": [1]}}, ValueError, "same length"),
            ({"data": {"x": []}}, ValueError, "0 rows"),
            ({"data": {"": [1]}}, ValueError, "column names"),
            ({"data": {"x": "123"}}, TypeError, r"data\['x'\] must be a sequence"),
            ({"data": {"x": 5}}, TypeError, r"data\['x'\] must be a sequence"),
            ({"data": {"x": np.zeros((2, 2))}}, ValueError, r"data\['x'\] must be one-dimensional"),
            (
                {"data": {"x": [[1, 2]]}},
                TypeError,
                r"data\['x'\]\[0\] must be a number or a string",
            ),
            ({"data": {"x": [None]}}, TypeError, r"data\['x'\]\[0\] must be a number or a string"),
            ({"data": {"x": [torch.zeros(2)]}}, ValueError, r"data\['x'\]\[0\].*shape \(2,\)"),
        ],
    )
    def test_bad_input(self, fig, kwargs, error, match):
        with pytest.raises(error, match=match):
            figure_bundle(fig, **{"alt": ALT, **kwargs})

    def test_bad_figure(self):
        with pytest.raises(TypeError, match="fig must be a matplotlib Figure, got list"):
            figure_bundle([1, 2], alt=ALT)


class TestShowFigure:
    def test_displays_one_raw_bundle_and_closes_the_figure(self, fig, monkeypatch):
        shown = []
        monkeypatch.setattr("IPython.get_ipython", lambda: object())
        monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append((a, k)))
        show_figure(fig, alt=ALT, data={"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.4]})
        assert len(shown) == 1
        (bundle,), kwargs = shown[0]
        assert kwargs == {"raw": True}
        assert bundle["text/plain"] == ALT
        assert bundle["text/csv"].splitlines()[0] == "epoch,loss"
        assert not plt.fignum_exists(fig.number)

    def test_outside_a_notebook_raises_and_closes_the_figure(self, fig, monkeypatch):
        monkeypatch.setattr("IPython.get_ipython", lambda: None)
        with pytest.raises(RuntimeError, match="show_figure displays a figure in a notebook"):
            show_figure(fig, alt=ALT)
        assert not plt.fignum_exists(fig.number)

    def test_bad_alt_still_closes_the_figure(self, fig):
        with pytest.raises(ValueError, match="alt"):
            show_figure(fig, alt="")
        assert not plt.fignum_exists(fig.number)

    def test_is_public(self):
        assert {"show_figure", "figure_bundle"} <= set(plotting.__all__)
