"""Keep the built site self-contained: no page loads anything from the network.

Jupyter Book always loads ``sphinx_thebe``, which puts on every page an inline
script declaring ``const THEBE_JS_URL = "https://unpkg.com/thebe@..."`` (a CDN
bundle fetched when a reader presses a "live code" button) plus
``sphinx-thebe.js``. The course does not use thebe (``launch_buttons.thebe`` is
false; the launch button is a plain link to Binder), and the inline script is
emitted twice per page, which the browser reports as ``SyntaxError: Identifier
'THEBE_JS_URL' has already been declared``. It also appends to every page a
``<script type="text/x-thebe-config">`` block naming a placeholder Binder
repository. This extension removes thebe's scripts, stylesheet and per-page
configuration, and drops exact duplicate inline scripts.

Registered in ``_config.yml`` under ``sphinx: local_extensions``. The site test
(``tests/test_site.py``) checks the result in the built HTML and in a browser.
"""

from __future__ import annotations

import os

from docutils import nodes

THEBE_FILES = {"sphinx-thebe.js", "sphinx-thebe.css"}


def _name(asset) -> str:
    return os.path.basename(os.fspath(asset.filename or ""))


def _is_thebe(asset) -> bool:
    return _name(asset) in THEBE_FILES or "THEBE_JS_URL" in asset.attributes.get(
        "body", ""
    )


def strip_thebe(app, pagename, templatename, context, doctree):
    """``html-page-context`` handler: drop thebe assets and duplicate inline scripts."""
    if "script_files" in context:
        kept, seen = [], set()
        for js in context["script_files"]:
            if _is_thebe(js):
                continue
            key = (os.fspath(js.filename or ""), tuple(sorted(js.attributes.items())))
            if key in seen:
                continue
            seen.add(key)
            kept.append(js)
        context["script_files"] = kept
    if "css_files" in context:
        context["css_files"] = [
            css for css in context["css_files"] if not _is_thebe(css)
        ]


def strip_thebe_config(app, doctree, docname):
    """``doctree-resolved`` handler: drop the raw thebe configuration sphinx_thebe appends."""
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "text/x-thebe-config" in text or text.startswith("<script>kernelName ="):
            node.parent.remove(node)


def setup(app):
    # priority 900: after sphinx_thebe's and the theme's own handlers (default 500)
    app.connect("doctree-resolved", strip_thebe_config, priority=900)
    app.connect("html-page-context", strip_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
