"""Accessibility fixes for the site, each one an axe-core finding (tests/test_site.py runs axe).

- The search field button and the colour-mode button of the pydata/book theme have
  accessible names that do not contain their visible text (WCAG 2.5.3 "label in name",
  axe ``label-content-name-mismatch``): ``templates/`` overrides the two theme
  components (Sphinx looks in ``templates_path`` before the theme's own components).
- The bibliography: docutils writes each entry of a citation list (``role="list"``)
  with ``role="doc-biblioentry"``, which is not a list item (axe
  ``aria-required-children``, critical; DPUB-ARIA 1.1 deprecates ``doc-biblioentry``
  for this reason and says to use list items). Entries are written as ``listitem``.
- Links inside exercise and solution boxes (equation references, citations) are drawn
  in the theme's link colour on the boxes' tinted background, contrast 4.29 < 4.5
  (axe ``color-contrast``): ``static/a11y.css`` darkens them there, light and dark mode.

Registered in ``_config.yml`` under ``sphinx: local_extensions``.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def add_paths(app, config) -> None:
    """``config-inited``: our templates first, our static files served under ``_static/``."""
    if str(TEMPLATES) not in config.templates_path:
        config.templates_path.insert(0, str(TEMPLATES))
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def visit_citation(self, node) -> None:
    """The HTML translator's own ``visit_citation``, with the entry made a list item."""
    type(self).visit_citation(self, node)
    self.body[-1] = self.body[-1].replace('role="doc-biblioentry"', 'role="listitem"')


def depart_citation(self, node) -> None:
    type(self).depart_citation(self, node)


def setup(app):
    app.connect("config-inited", add_paths)
    app.add_node(nodes.citation, override=True, html=(visit_citation, depart_citation))
    app.add_css_file("a11y.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
