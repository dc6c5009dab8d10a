"""Turn the chapters' portable Markdown into the site's MyST features, and check their numbers.

The chapter notebooks are written so that they read as finished text in every
notebook client (JupyterLab, VS Code, Colab, GitHub's preview): their markdown
cells hold no MyST roles or directives (CONTRIBUTING.md, "Writing a chapter").
For the site, this extension rewrites each notebook's markdown as it is read
(Sphinx's ``source-read`` event, before myst-nb parses or executes it):

- a marked number ``<!--{name:spec}-->0.6000<!--/-->`` becomes its plain text,
  after checking it against the value the notebook's code recorded with
  ``regcourse.notebook.glue`` (a stale number is a build warning, so the strict
  build ``-W`` fails);
- a citation link ``[Srivastava et al. (2014)](references.md#key)`` becomes
  ``{cite:t}`key``` and a parenthesised group of such links
  ``([Srivastava et al., 2014](references.md#key))`` becomes ``{cite:p}`key```,
  so the site keeps sphinxcontrib-bibtex's bibliography and links;
- an exercise cell (``metadata.regcourse.exercise``, first line
  ``### Exercise N.M: Title``) becomes a sphinx-exercise ``exercise`` directive
  with that label and title;
- a run of solution cells (``metadata.regcourse.solution``, first line
  ``#### Solution to Exercise N.M``) is wrapped in ``solution-start`` (a
  dropdown) and ``solution-end``.

Code cells and outputs are not touched, so execution and its cache see the
notebook as committed. The downloadable ``.ipynb`` is the original file.
Written here because nothing in the Jupyter Book 1.x stack does this: myst-nb's
``glue`` and MyST roles only render in Sphinx, which is the problem being solved.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from sphinx.util import logging

from regcourse.notebook import GLUE_MIME, MARKER, check

logger = logging.getLogger(__name__)

#: Output MIME types of our own that myst-nb does not know, with the function that
#: renders them (``handler(renderer, mime_data) -> list of nodes``). myst-nb renders every
#: MIME type of an output bundle while parsing and warns about each one it does not know
#: ("skipping unknown output mime type"), even when the bundle has a type it does render;
#: under ``-W`` that fails the build. Values recorded by ``glue`` render as nothing.
#: Other extensions of the book may add entries.
MIME_HANDLERS = {GLUE_MIME: lambda renderer, data: []}


def _patch_myst_nb() -> None:
    from myst_nb.core.render import NbElementRenderer

    if getattr(NbElementRenderer.render_mime_type, "_regcourse", False):
        return
    original = NbElementRenderer.render_mime_type

    def render_mime_type(self, data):
        handler = MIME_HANDLERS.get(data.mime_type)
        return handler(self, data) if handler is not None else original(self, data)

    render_mime_type._regcourse = True
    NbElementRenderer.render_mime_type = render_mime_type


_CITE = r"\[(?P<text{n}>[^\[\]]+)\]\(references\.md#(?P<key{n}>[\w:.-]+)\)"
_ONE_CITE = re.compile(_CITE.format(n=""))
_CITE_GROUP = re.compile(
    r"\((?P<links>" + _CITE.format(n="a") + r"(?:;\s*" + _CITE.format(n="b") + r")*)\)"
)
_GROUP_LINK = re.compile(r"\[[^\[\]]+\]\(references\.md#([\w:.-]+)\)")
_EX_HEAD = re.compile(r"^#{2,6}\s+Exercise\s+\d+\.\d+:\s*(?P<title>.+?)\s*$")
_SOL_HEAD = re.compile(r"^#{2,6}\s+Solution to Exercise\s+\d+\.\d+\s*$")


def _course(cell) -> dict:
    meta = cell.get("metadata", {}).get("regcourse", {})
    return meta if isinstance(meta, dict) else {}


def _citations(src: str) -> str:
    def group(m: re.Match) -> str:
        keys = _GROUP_LINK.findall(m["links"])
        return "{cite:p}`" + ",".join(keys) + "`"

    src = _CITE_GROUP.sub(group, src)
    return _ONE_CITE.sub(lambda m: "{cite:t}`" + m["key"] + "`", src)


def _fence(body: str) -> str:
    """A colon fence longer than any colon run at the start of a line of ``body``."""
    runs = [len(m) for m in re.findall(r"^\s*(:{3,})", body, re.M)]
    return ":" * max([3, *[r + 1 for r in runs]])


def transform(nb, docname: str = "") -> list[str]:
    """Rewrite ``nb``'s markdown cells in place for the site; return problems found."""
    problems = check(nb)
    cells = []
    open_label = None
    for index, cell in enumerate(nb.cells):
        meta = _course(cell)
        if open_label is not None and meta.get("solution") != open_label:
            cells.append(nbformat.v4.new_markdown_cell("```{solution-end}\n```"))
            open_label = None
        if cell.cell_type != "markdown":
            cells.append(cell)
            continue
        src = MARKER.sub(lambda m: m["text"], cell.source)
        src = _citations(src)
        first, _, rest = src.partition("\n")
        if "exercise" in meta:
            head = _EX_HEAD.match(first)
            if not head:
                problems.append(
                    f"cell {index}: exercise {meta['exercise']!r} has no '### Exercise N.M: Title' line"
                )
            else:
                body = rest.strip("\n")
                fence = _fence(body)
                src = f"{fence}{{exercise}} {head['title']}\n:label: {meta['exercise']}\n\n{body}\n{fence}"
        if "solution" in meta and meta["solution"] != open_label:
            if not _SOL_HEAD.match(first):
                problems.append(
                    f"cell {index}: solution of {meta['solution']!r} has no "
                    "'#### Solution to Exercise N.M' line"
                )
            else:
                src = f"```{{solution-start}} {meta['solution']}\n:class: dropdown\n```\n\n{rest.strip()}"
            open_label = meta["solution"]
        cell.source = src
        cells.append(cell)
    if open_label is not None:
        cells.append(nbformat.v4.new_markdown_cell("```{solution-end}\n```"))
    nb.cells = cells
    return problems


def _source_read(app, docname: str, source: list[str]) -> None:
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".ipynb":
        return
    nb = nbformat.reads(source[0], as_version=4)
    for problem in transform(nb, docname):
        logger.warning(
            f"{problem}", location=docname, type="regcourse", subtype="prose"
        )
    source[0] = nbformat.writes(nb)


def _register_round_citations() -> None:
    """The referencing style ``author_year_round``: "(Srivastava et al., 2014)" and
    "Srivastava et al. (2014)", as the notebooks write their citation links.

    sphinxcontrib-bibtex's ``author_year`` uses square brackets; its documentation
    shows this way of deriving a style with other brackets.
    """
    import dataclasses

    from sphinxcontrib.bibtex.plugin import register_plugin
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import (
        AuthorYearReferenceStyle,
    )

    def round_brackets():
        return BracketStyle(left="(", right=")")

    @dataclasses.dataclass
    class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = dataclasses.field(
            default_factory=round_brackets
        )
        bracket_textual: BracketStyle = dataclasses.field(
            default_factory=round_brackets
        )
        bracket_author: BracketStyle = dataclasses.field(default_factory=round_brackets)
        bracket_label: BracketStyle = dataclasses.field(default_factory=round_brackets)
        bracket_year: BracketStyle = dataclasses.field(default_factory=round_brackets)

    register_plugin(
        "sphinxcontrib.bibtex.style.referencing",
        "author_year_round",
        RoundAuthorYearReferenceStyle,
    )


def setup(app):
    _register_round_citations()
    _patch_myst_nb()
    app.connect("source-read", _source_read)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
