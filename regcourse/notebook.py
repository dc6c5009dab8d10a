"""Numbers in a chapter's prose that stay true: record them in code, check them in the text.

A chapter's markdown must read as finished text in every notebook client
(JupyterLab, VS Code, Colab, GitHub's preview) *and* every number in it must come
from an executed cell. Inline roles such as myst-nb's ``{glue:text}`` only render
in the Sphinx build, and jupyterlab-myst's ``{eval}`` only with a live kernel, so the
course writes the number itself into the markdown, between two HTML comments that
every Markdown renderer hides::

    Step 2 divides by $1-p =$ <!--{do_keep_prob:.4f}-->0.6000<!--/-->.

The opening comment names a value recorded by a code cell and a format spec; the
text between the comments is that value, formatted. A code cell records values
with :func:`glue`, which adds an invisible output holding them as JSON; nbval
re-executes the chapter and compares that output, so the recorded values are
re-derived on every test run. :func:`check` then compares every marked number in
the prose with the recorded value, and :func:`fill` rewrites the marked numbers
from the recorded values (``make notebooks`` runs it after executing the chapters).

Command line::

    python -m regcourse.notebook check book/*.ipynb   # exit 1 and a list if any number is stale
    python -m regcourse.notebook fill book/*.ipynb    # rewrite the marked numbers in place

Used in: every chapter (``book/*.ipynb``), ``tests/test_prose.py`` and the site
extension ``book/_ext/portable.py``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "GLUE_MIME",
    "Marker",
    "check",
    "fill",
    "glue",
    "glued_values",
    "markers",
    "render",
    "show_source",
]

#: The MIME type of the outputs written by :func:`glue`.
GLUE_MIME = "application/vnd.regcourse.glue+json"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: ``<!--{name}-->text<!--/-->`` or ``<!--{name:format}-->text<!--/-->``.
MARKER = re.compile(
    r"<!--\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<spec>[^{}]*))?\}-->(?P<text>.*?)<!--/-->",
    re.S,
)


def _check_value(name: str, value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"value of {name} must be finite, got {value!r}")
        return float(value)
    # numpy scalars, 0-dim arrays and 0-dim tensors: their Python number (round them first).
    if callable(getattr(value, "item", None)) and tuple(getattr(value, "shape", (None,))) == ():
        return _check_value(name, value.item())
    raise TypeError(
        f"value of {name} must be a bool, int, float, str or None (round numbers before gluing), "
        f"got {type(value).__name__}"
    )


def glue(name: str, value) -> None:
    """Record ``value`` under ``name`` for the chapter's prose.

    In a notebook this adds one output to the cell that no client displays (an empty
    ``text/markdown`` part plus the value as JSON under :data:`GLUE_MIME`); nbval
    compares it on every run. Outside IPython it does nothing.

    Args:
        name (str): a Python identifier, unique in the chapter; by convention it starts
            with the chapter's prefix (``do_``, ``wd_``, ...).
        value (bool, int, float, str or None): the value, already rounded to the digits
            the prose shows (a numpy scalar or 0-dim tensor is converted to its Python
            number). Floats must be finite.

    Returns nothing, so a ``glue`` call ending a cell adds no ``Out[...]`` line.

    Example:
        >>> glue("do_p", 0.4)  # in a notebook: an invisible output holding {"do_p": 0.4}
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    data = _check_value(name, value)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython: nothing to record into
        return
    if get_ipython() is None:
        return
    display({GLUE_MIME: {name: data}, "text/markdown": ""}, raw=True)


def show_source(obj) -> None:
    """Show the source code of a function or class in the notebook, highlighted.

    A chapter that runs a sweep from ``regcourse.experiments`` shows the code of the
    function it calls right above the call, so a learner can read the loop and change
    its knobs. Displays Markdown holding a Python code block (JupyterLab, VS Code,
    GitHub and the site highlight it); its plain-text form is the source itself, which
    nbval compares, so a changed function shows up as a changed output.

    Args:
        obj: a function, method or class defined in Python source.
    """
    import inspect
    import textwrap

    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isclass(obj)):
        raise TypeError(f"obj must be a function, method or class, got {type(obj).__name__}")
    source = textwrap.dedent(inspect.getsource(obj)).rstrip("\n")
    fence = "```"
    while fence in source:
        fence += "`"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(source)
        return
    if get_ipython() is None:
        print(source)
        return
    display({"text/markdown": f"{fence}python\n{source}\n{fence}", "text/plain": source}, raw=True)


def _cells(nb) -> list:
    cells = nb.get("cells", []) if isinstance(nb, Mapping) else getattr(nb, "cells", [])
    return list(cells)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def glued_values(nb) -> dict:
    """The values recorded with :func:`glue` in a notebook's stored outputs, by name.

    Raises:
        ValueError: if a name was recorded twice with different values.
    """
    values: dict = {}
    for index, cell in enumerate(_cells(nb)):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {}) if isinstance(output, Mapping) else {}
            record = data.get(GLUE_MIME)
            if isinstance(record, str):  # some writers store JSON mime data as text
                record = json.loads(record)
            if not isinstance(record, Mapping):
                continue
            for name, value in record.items():
                if name in values and values[name] != value:
                    raise ValueError(
                        f"{name} is glued twice with different values: {values[name]!r} and "
                        f"{value!r} (cell {index})"
                    )
                values[name] = value
    return values


@dataclass(frozen=True)
class Marker:
    """One marked number in a markdown cell."""

    cell: int
    name: str
    spec: str
    text: str
    start: int
    end: int

    def expected(self, values: Mapping) -> str:
        """The text this marker should hold, given the recorded ``values``."""
        if self.name not in values:
            raise KeyError(self.name)
        return format_value(values[self.name], self.spec)


def format_value(value, spec: str = "") -> str:
    """``value`` formatted with the format ``spec`` (``str(value)`` when empty)."""
    if value is None:
        return "None"
    if spec == "":
        return str(value)
    return format(value, spec)


def markers(nb) -> Iterator[Marker]:
    """Every marked number in the notebook's markdown cells, in order."""
    for index, cell in enumerate(_cells(nb)):
        if cell.get("cell_type") != "markdown":
            continue
        for m in MARKER.finditer(_source(cell)):
            yield Marker(index, m["name"], m["spec"] or "", m["text"], m.start(), m.end())


def render(source: str, values: Mapping) -> str:
    """``source`` with the text of every marker replaced by its formatted value.

    Raises:
        KeyError: for a marker whose name has no recorded value.
    """

    def one(m: re.Match) -> str:
        spec = m["spec"] or ""
        if m["name"] not in values:
            raise KeyError(m["name"])
        head = f"<!--{{{m['name']}{':' + spec if m['spec'] is not None else ''}}}-->"
        return f"{head}{format_value(values[m['name']], spec)}<!--/-->"

    return MARKER.sub(one, source)


def check(nb) -> list[str]:
    """Problems with the marked numbers of a notebook (empty when all agree).

    A problem is a marker whose name was never glued, a format spec that does not
    apply to the value, or a text that differs from the formatted recorded value.
    """
    try:
        values = glued_values(nb)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for mk in markers(nb):
        try:
            want = mk.expected(values)
        except KeyError:
            problems.append(f"cell {mk.cell}: {mk.name} is not glued by any code cell")
            continue
        except (ValueError, TypeError) as exc:
            problems.append(
                f"cell {mk.cell}: format {mk.spec!r} does not apply to {mk.name}: {exc}"
            )
            continue
        if mk.text != want:
            problems.append(
                f"cell {mk.cell}: {mk.name} reads {mk.text!r} but the executed value is {want!r}"
            )
    return problems


def fill(nb) -> int:
    """Rewrite every marked number of ``nb`` (in place) from its recorded value; return how many changed."""
    values = glued_values(nb)
    changed = 0
    for cell in _cells(nb):
        if cell.get("cell_type") != "markdown":
            continue
        old = _source(cell)
        new = render(old, values)
        if new != old:
            changed += sum(
                a.group(0) != b.group(0) for a, b in zip(MARKER.finditer(old), MARKER.finditer(new))
            )
            cell["source"] = new
    return changed


def main(argv: list[str] | None = None) -> int:
    import argparse

    import nbformat

    parser = argparse.ArgumentParser(
        prog="python -m regcourse.notebook", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["check", "fill"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            status = 2
            continue
        if args.command == "check":
            problems = check(nb)
            for p in problems:
                print(f"{path}: {p}")
            status = max(status, 1 if problems else 0)
        else:
            try:
                n = fill(nb)
            except (KeyError, ValueError, TypeError) as exc:
                print(f"{path}: cannot fill: {exc!r}", file=sys.stderr)
                status = 1
                continue
            if n:
                nbformat.write(nb, path)
            print(f"{path}: {n} number(s) updated")
    return status


if __name__ == "__main__":
    sys.exit(main())
