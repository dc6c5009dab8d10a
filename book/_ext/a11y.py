"""Accessibility fixes for the site, each one an axe-core finding (tests/test_site.py runs axe).

- The search field button and the colour-mode button of the pydata/book theme have
  accessible names that do not contain their visible text (WCAG 2.5.3 "label in name",
  axe ``label-content-name-mismatch``): ``templates/`` overrides the two theme
  components (Sphinx looks in ``templates_path`` before the theme's own components).
- The bibliography: docutils writes each entry of a citation list (``role="list"``)
  with ``role="doc-biblioentry"``, which is not a list item (axe
  ``aria-required-children``, critical; DPUB-ARIA 1.1 deprecates ``doc-biblioentry``
  for this reason and says to use list items). Entries are written as ``listitem``.
- The sidebar's expandable entries (pages with sub-pages): the theme's ``<summary>``
  holds only a chevron icon, so it has no name (axe ``summary-name``, serious); it is
  named after its page ("Pages under ...").
- Folded code cells (myst-nb's ``hide-input``): the ``<summary>`` shows "Show code cell
  source" but is named "Toggle hidden content" (axe ``label-content-name-mismatch``);
  the label is dropped so that its name is the text it shows.
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


def _name_toctree_toggles(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for summary in soup.select("li.has-children > details > summary"):
        if summary.get_text(strip=True) or summary.get("aria-label"):
            continue
        link = summary.find_parent("li").find("a", class_="reference", recursive=False)
        title = " ".join(link.get_text().split()) if link else "this entry"
        summary["aria-label"] = f"Pages under {title}"
    return str(soup)


def name_toctree_toggles(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context`` (after the theme's): wrap its sidebar generator."""
    generate = context.get("generate_toctree_html")
    if generate is None or getattr(generate, "_regcourse_named", False):
        return
    from markupsafe import Markup

    def generate_named(*args, **kwargs):
        return Markup(_name_toctree_toggles(str(generate(*args, **kwargs))))

    generate_named._regcourse_named = True
    context["generate_toctree_html"] = generate_named


def visit_hide_cell(self, node) -> None:
    """myst-nb's ``visit_HideCellInput`` without its mismatching ``aria-label``."""
    from myst_nb.sphinx_ import visit_HideCellInput

    visit_HideCellInput(self, node)
    for i in range(len(self.body) - 1, -1, -1):
        if self.body[i] == '<summary aria-label="Toggle hidden content">\n':
            self.body[i] = "<summary>\n"
            break


def setup(app):
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput

    app.connect("config-inited", add_paths)
    app.connect("html-page-context", name_toctree_toggles, priority=900)
    app.add_node(nodes.citation, override=True, html=(visit_citation, depart_citation))
    app.add_node(
        HideCodeCellNode, override=True, html=(visit_hide_cell, depart_HideCellInput)
    )
    app.add_css_file("a11y.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
