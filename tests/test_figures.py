"""book/_ext/figures.py: a figure output's alt text and CSV data reach the built page.

Builds a two-page Sphinx project (myst-nb, outputs as committed, no execution) whose
notebook holds the outputs chapters produce: one from ``regcourse.plotting.show_figure``
(PNG + alt text + CSV) and one from a bare ``plt.show()`` (PNG + matplotlib's repr).
Both the multi-page HTML build and the single-page build behind the PDF are checked.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest

from regcourse.plotting import figure_bundle

EXT = Path(__file__).resolve().parents[1] / "book" / "_ext"
ALT = "Validation loss is lowest at epoch 2 (0.40) and rises afterwards."
DATA = {"epoch": [1, 2, 3], "val_loss": [0.5, 0.4, 0.45]}


def _notebook() -> nbformat.NotebookNode:
    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=40)
    ax.plot(DATA["epoch"], DATA["val_loss"])
    shown = figure_bundle(fig, alt=ALT, data=DATA)
    bare = {"image/png": shown["image/png"], "text/plain": "<Figure size 80x60 with 1 Axes>"}
    plt.close(fig)
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A chapter\n\nText."),
        nbformat.v4.new_code_cell(
            "show_figure(fig, alt=..., data=...)",
            outputs=[nbformat.v4.new_output("display_data", data=shown)],
        ),
        nbformat.v4.new_code_cell(
            "plt.show()", outputs=[nbformat.v4.new_output("display_data", data=bare)]
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    src = tmp_path_factory.mktemp("figures_src")
    (src / "book").mkdir()
    nbformat.write(_notebook(), src / "book" / "chapter.ipynb")
    (src / "index.md").write_text("# Index\n\n```{toctree}\nbook/chapter\n```\n", encoding="utf-8")
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(EXT)!r})\n"
        "extensions = ['myst_nb', 'figures']\n"
        "nb_execution_mode = 'off'\n"
        "exclude_patterns = ['_build']\n",
        encoding="utf-8",
    )
    return src


def build(src: Path, builder: str) -> Path:
    out = src / "_build" / builder
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", builder, "-W", "-q", "-E", str(src), str(out)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"sphinx -b {builder} failed:\n{done.stdout}\n{done.stderr}"
    return out


def images(page: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<img[^>]*\balt="([^"]*)"', page)]


def data_links(page: str) -> list[str]:
    return re.findall(
        r'<a class="reference download" href="([^"]+)"[^>]*>Download the data \(CSV\)</a>', page
    )


@pytest.mark.parametrize(
    ("builder", "page"), [("html", "book/chapter.html"), ("singlehtml", "index.html")]
)
def test_alt_text_and_data_link(project, builder, page):
    out = build(project, builder)
    html = (out / page).read_text(encoding="utf-8")
    assert images(html) == [ALT, "<Figure size 80x60 with 1 Axes>"]
    links = data_links(html)
    assert len(links) == 1, f"expected one data link (the show_figure output), found {links}"
    target = (out / page).parent / links[0]
    assert target.is_file(), f"{links[0]} does not resolve from {page}"
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows == [["epoch", "val_loss"], ["1", "0.5"], ["2", "0.4"], ["3", "0.45"]]


def test_link_sits_right_under_its_figure(project):
    html = (build(project, "html") / "book/chapter.html").read_text(encoding="utf-8")
    first_img, second_img = (m.start() for m in re.finditer(r"<img ", html))
    link = html.index("Download the data (CSV)")
    assert first_img < link < second_img
