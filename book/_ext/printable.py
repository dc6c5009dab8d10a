"""The single-page build behind the PDF (``make pdf``; ``print_pdf.py`` prints it).

Sphinx looks up how to write a node for the builder's name and falls back to its
format only when *no* extension registered anything for that name. Some extensions
of the book register nodes for ``singlehtml`` explicitly, so the ``html`` visitors of
the others (sphinxcontrib-mermaid's diagrams, ``figures.py``'s data node, ...) are not
found and the build stops at "unknown node type: mermaid". Here the ``singlehtml``
builder gets every ``html`` visitor it lacks, at ``builder-inited``.

``static/print.css`` (print media only) lays the page out for paper: no navigation,
full-width text, figures and diagrams kept whole on a page where possible.
Registered in ``_config.yml`` under ``sphinx: local_extensions``.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def add_static_path(app, config) -> None:
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def html_visitors_for_singlehtml(app) -> None:
    if app.builder.name != "singlehtml":
        return
    handlers = app.registry.translation_handlers
    single = handlers.setdefault("singlehtml", {})
    for name, visitors in handlers.get("html", {}).items():
        single.setdefault(name, visitors)


def setup(app):
    app.connect("config-inited", add_static_path)
    app.connect("builder-inited", html_visitors_for_singlehtml, priority=100)
    app.add_css_file("print.css", media="print")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
