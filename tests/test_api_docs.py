"""The API reference (book/api/*.md) covers every public name of the package.

Each public module is documented by an ``automodule`` directive with ``:members:``,
``:imported-members:`` and ``:undoc-members:``, which lists exactly the names in the
module's ``__all__``; the augment subpackage's modules are documented through
``regcourse.augment``, which re-exports all their names. The site test reads the built
pages and finds an entry (an HTML anchor) for every public name.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

import regcourse

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "book" / "api"
HTML = ROOT / "_build" / "html" / "book" / "api"


def _public_modules() -> list[str]:
    names = ["regcourse"]
    for info in pkgutil.walk_packages(regcourse.__path__, "regcourse."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def _directives() -> dict[str, str]:
    """module name -> the option block of its automodule directive, over all API pages."""
    found = {}
    for page in sorted(API.glob("*.md")):
        for m in re.finditer(
            r"^\.\. automodule:: (\S+)\n((?:   :[^\n]*\n)*)", page.read_text(), re.M
        ):
            found[m.group(1)] = m.group(2)
    return found


def _documented_names() -> dict[str, list[str]]:
    """For each documented module, the public names an entry must exist for."""
    out = {}
    for name in _directives():
        module = importlib.import_module(name)
        out[name] = [n for n in module.__all__ if not (n.startswith("__") and n.endswith("__"))]
    return out


PUBLIC = _public_modules()


class TestApiPages:
    @pytest.mark.parametrize("name", PUBLIC)
    def test_every_public_module_has_all(self, name):
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} has no __all__"
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{name}.__all__ names missing objects: {missing}"

    @pytest.mark.parametrize("name", PUBLIC)
    def test_every_public_module_is_documented(self, name):
        directives = _directives()
        if name in directives:
            return
        # a submodule of a documented package whose names the package re-exports
        parent = name.rsplit(".", 1)[0]
        assert parent in directives, f"{name} has no automodule directive in book/api/*.md"
        assert ":imported-members:" in directives[parent]
        module, package = importlib.import_module(name), importlib.import_module(parent)
        missing = [n for n in module.__all__ if n not in package.__all__]
        assert not missing, f"{parent} does not re-export {missing} from {name}"

    @pytest.mark.parametrize("name", sorted(_directives()))
    def test_directive_lists_all_members(self, name):
        options = _directives()[name]
        for option in (":members:", ":imported-members:", ":undoc-members:"):
            assert option in options, f"{name}: automodule needs {option}"

    def test_pages_are_in_the_toc(self):
        toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
        files = set()

        def walk(entries):
            for entry in entries:
                files.add(entry.get("file"))
                walk(entry.get("sections", []))

        for part in toc["parts"]:
            walk(part["chapters"])
        for page in API.glob("*.md"):
            assert f"book/api/{page.stem}" in files, f"{page.name} is not in _toc.yml"

    def test_napoleon_sections_configured(self):
        config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
        assert {"sphinx.ext.autodoc", "sphinx.ext.napoleon"} <= set(config["extra_extensions"])
        assert {"Shape", "Used in"} <= set(config["config"]["napoleon_custom_sections"])

    @pytest.mark.parametrize("name", PUBLIC)
    def test_public_functions_and_classes_have_docstrings(self, name):
        module = importlib.import_module(name)
        bare = [
            n
            for n in module.__all__
            if callable(getattr(module, n)) and not (getattr(module, n).__doc__ or "").strip()
        ]
        assert not bare, f"{name}: no docstring for {bare}"


@pytest.mark.site
class TestBuiltApiPages:
    @pytest.fixture(scope="class")
    def html(self):
        pages = sorted(HTML.glob("*.html"))
        if not pages:
            pytest.fail(f"no built API pages under {HTML}: run `make book-strict` first")
        return "\n".join(p.read_text() for p in pages)

    @pytest.mark.parametrize("module", sorted(_documented_names()))
    def test_every_public_name_has_an_entry(self, html, module):
        missing = [n for n in _documented_names()[module] if f'id="{module}.{n}"' not in html]
        assert not missing, f"no API entry for {module}: {missing}"

    def test_shape_and_used_in_sections_rendered(self, html):
        assert html.count('class="rubric">Shape</p>') >= 30
        assert html.count('class="rubric">Used in</p>') >= 30
