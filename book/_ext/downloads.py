"""Downloads for readers who run the course themselves: the package wheel and the PDF.

- **The wheel.** Every chapter needs the ``regcourse`` package of the version it was
  written for. ``make dist`` builds ``dist/regcourse-<version>-py3-none-any.whl``; this
  extension ships that file at the site's root and, on every chapter page (a page
  built from a notebook), adds it to the theme's download menu next to the
  ``.ipynb`` and writes the one-line install command under the chapter's title:
  ``pip install regcourse-<version>-py3-none-any.whl``. A missing wheel is a build
  warning (the strict build fails: run ``make dist`` first).
- **The PDF.** ``make pdf`` prints the whole course to ``_build/pdf/regcourse.pdf``
  and copies it to the site's root; every page's download menu links it.

The version is the installed package's (``regcourse.__version__``), the one the
chapters' first cell checks. No JavaScript: the menu entries are the book theme's
own ``header_buttons`` (added after the theme builds them), the install line is HTML.
Registered in ``_config.yml`` under ``sphinx: local_extensions``; checked by
``tests/test_site.py``.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

PDF_NAME = "regcourse.pdf"
INSTALL_CLASS = "regcourse-install"


def wheel_name() -> str:
    import regcourse

    return f"regcourse-{regcourse.__version__}-py3-none-any.whl"


def _wheel_source(app) -> Path:
    return Path(app.confdir, "dist", wheel_name())


def check_wheel(app) -> None:
    """``builder-inited``: the wheel the pages will link must exist."""
    if app.builder.name in {"html", "dirhtml"} and not _wheel_source(app).is_file():
        logger.warning(
            f"no {_wheel_source(app)}: the chapter pages link the package wheel; "
            "run `make dist` before building the site"
        )


def _is_chapter(context) -> bool:
    """A page built from a notebook (the theme then offers the ``.ipynb`` as its source)."""
    return context.get("page_source_suffix") == ".ipynb" or bool(
        context.get("ipynb_source")
    )


def add_downloads(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context`` (after the book theme's buttons): wheel and PDF entries."""
    pathto = context["pathto"]
    menu = next(
        (
            b
            for b in context.get("header_buttons", [])
            if b.get("label") == "download-buttons"
        ),
        None,
    )
    if menu is None:
        return
    wheel = wheel_name()
    if _is_chapter(context):
        at = next(
            (
                i + 1
                for i, b in enumerate(menu["buttons"])
                if b.get("label")
                in {"download-notebook-button", "download-source-button"}
            ),
            0,
        )
        menu["buttons"].insert(
            at,
            {
                "type": "link",
                "url": pathto(wheel, 1),
                "text": ".whl",
                "icon": "fas fa-box",
                "tooltip": f"The regcourse package this chapter runs with: pip install {wheel}",
                "label": "download-wheel-button",
            },
        )
        note = (
            f'<p class="{INSTALL_CLASS}">To run this chapter yourself, download the notebook '
            f'and <a class="reference download" href="{html.escape(pathto(wheel, 1))}">{wheel}</a>, '
            f"then install the package: <code>pip install {wheel}</code></p>\n"
        )
        body = context.get("body", "")
        end = body.find("</h1>")
        context["body"] = (
            body[: end + 5] + "\n" + note + body[end + 5 :] if end >= 0 else note + body
        )
    menu["buttons"].append(
        {
            "type": "link",
            "url": pathto(PDF_NAME, 1),
            "text": "course .pdf",
            "icon": "fas fa-book",
            "tooltip": "The whole course as one PDF",
            "label": "download-course-pdf-button",
        }
    )


def copy_files(app, exception) -> None:
    """``build-finished``: the wheel (and a PDF already printed) at the site's root."""
    if (
        exception is not None
        or app.builder.format != "html"
        or app.builder.name == "singlehtml"
    ):
        return
    wheel = _wheel_source(app)
    if wheel.is_file():
        shutil.copy2(wheel, Path(app.outdir, wheel.name))
    pdf = Path(app.outdir).parent / "pdf" / PDF_NAME
    if pdf.is_file():
        shutil.copy2(pdf, Path(app.outdir, PDF_NAME))


def setup(app):
    app.connect("builder-inited", check_wheel)
    app.connect(
        "html-page-context", add_downloads, priority=502
    )  # after the theme's 501
    app.connect("build-finished", copy_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
