"""Figures for every reader: alt text from the output, the figure's numbers as a CSV file.

A chapter shows a figure with :func:`regcourse.plotting.show_figure`, which displays
one output whose mime bundle holds ``image/png``, ``text/plain`` (a sentence saying
what the figure shows) and ``text/csv`` (the numbers behind it). myst-nb puts every
mime type of an output into the doctree and a post-transform (``SelectMimeType``,
priority 4) later keeps the one the builder prefers (the PNG for HTML). Before it
runs, this extension's post-transform:

- gives the image the bundle's ``text/plain`` as its alt text (myst-nb would give
  the file path);
- writes the bundle's ``text/csv`` to a file beside the page
  (``book/<chapter>-figure-<n>.csv``) and puts a "Download the data (CSV)" link
  under the figure.

myst-nb renders mime types it does not know with a warning and drops them, and it
takes extra renderers only from installed entry points (``myst_nb.mime_renderers``);
the site is not an installed package, so ``setup`` wraps myst-nb's
``NbElementRenderer.render_mime_type`` for ``text/csv`` alone (every other mime type
goes to myst-nb unchanged). Works the same for the single-page build behind the PDF.
Registered in ``_config.yml`` under ``sphinx: local_extensions``; checked by
``tests/test_figures.py`` (a small build) and ``tests/test_site.py`` (the site).
"""

from __future__ import annotations

import html
import os
import posixpath
from pathlib import Path

from docutils import nodes
from myst_nb.core.render import NbElementRenderer
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

CSV = "text/csv"
LINK_TEXT = "Download the data (CSV)"
LINK_CLASS = "regcourse-figure-data"


class figure_data(nodes.General, nodes.Element):
    """The CSV text of a figure's output (``node["csv"]``); replaced by a link before writing."""


def _skip(self, node):
    raise nodes.SkipNode


def _render_mime_type(original):
    def render_mime_type(self, data):
        if data.mime_type == CSV:
            return [
                figure_data(
                    csv=data.content
                    if isinstance(data.content, str)
                    else "".join(data.content)
                )
            ]
        return original(self, data)

    render_mime_type.__wrapped__ = original
    return render_mime_type


def _bundle_parts(bundle) -> dict[str, nodes.Element]:
    return {
        child.get("mime_type"): child
        for child in bundle.children
        if isinstance(child, nodes.container)
    }


class FigureAltAndData(SphinxPostTransform):
    """Alt text and CSV link for every figure output (before myst-nb picks one mime type)."""

    default_priority = 3  # myst-nb's SelectMimeType runs at 4

    def run(self, **kwargs) -> None:
        builder = self.app.builder
        counters: dict[str, int] = {}
        for bundle in list(self.document.findall(nodes.container)):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            parts = _bundle_parts(bundle)
            images = [
                img
                for mime, part in parts.items()
                if mime and mime.startswith("image/")
                for img in part.findall(nodes.image)
            ]
            if not images:
                continue
            if "text/plain" in parts:
                alt = " ".join(parts["text/plain"].astext().split())
                for img in images:
                    img["alt"] = alt
            data = [n for n in parts.get(CSV, nodes.container()).findall(figure_data)]
            if not data or builder.format != "html":
                continue
            docname = self._docname(bundle)
            counters[docname] = counters.get(docname, 0) + 1
            target = f"{docname}-figure-{counters[docname]}.csv"
            out = Path(builder.outdir, *target.split("/"))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(data[0]["csv"], encoding="utf-8")
            href = posixpath.relpath(
                target, posixpath.dirname(self._page(docname)) or "."
            )
            link = (
                f'<p class="{LINK_CLASS}"><a class="reference download" href="{html.escape(href)}" '
                f'download="{html.escape(posixpath.basename(target))}">{LINK_TEXT}</a></p>\n'
            )
            bundle.parent.insert(
                bundle.parent.index(bundle) + 1, nodes.raw("", link, format="html")
            )

    def _docname(self, node) -> str:
        """The chapter an output comes from (in the single-page build, not the root)."""
        source = node.get("source") or node.source
        if source:
            docname = self.env.path2doc(os.fspath(source))
            if docname:
                return docname
        return self.env.docname

    def _page(self, docname: str) -> str:
        """The page (relative to the output folder) on which ``docname``'s content appears."""
        if self.app.builder.name == "singlehtml":
            # Sphinx writes the single page as <root_doc>.html but makes its links
            # relative to the output folder's root (print_pdf.py opens it from there)
            return "index" + self.app.builder.out_suffix
        return docname + self.app.builder.out_suffix


def setup(app):
    if not hasattr(NbElementRenderer.render_mime_type, "__wrapped__"):
        NbElementRenderer.render_mime_type = _render_mime_type(
            NbElementRenderer.render_mime_type
        )
    app.add_node(
        figure_data,
        html=(_skip, None),
        latex=(_skip, None),
        text=(_skip, None),
        man=(_skip, None),
        texinfo=(_skip, None),
    )
    app.add_post_transform(FigureAltAndData)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
