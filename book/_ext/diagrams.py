"""Mermaid diagrams at reading size, in light and dark mode.

sphinxcontrib-mermaid (2.1.1) puts every diagram in a full-width box whose ``<svg>``
is forced to ``mermaid_height`` (500 px by default) and stretched or shrunk to the
column: wide left-to-right diagrams end up with 8 px labels and small ones float in
an empty box. Its own options cover part of it and are set in ``_config.yml``
(``mermaid_height: auto``, a smaller ``mermaid_init_config`` spacing, an empty
``mermaid_fullscreen_button`` text); this extension adds what no option does:

- ``static/diagrams.css``: the diagram's frame fits its drawing; the fullscreen
  control's icon is drawn with a CSS mask, so it shows without an icon font;
- ``static/diagrams.js``: every diagram drawn at its natural size, shrunk to the
  column only down to 11 px labels, scrolling sideways (keyboard-focusable) beyond.

The site test (``tests/test_site.py``) measures every diagram's smallest label and
how much of its box the drawing fills, on every page, in light and dark mode.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def add_static_path(app, config) -> None:
    """``config-inited``: serve ``static/`` as part of ``_static/``."""
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def setup(app):
    app.connect("config-inited", add_static_path)
    app.add_css_file("diagrams.css")
    app.add_js_file("diagrams.js", defer="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
