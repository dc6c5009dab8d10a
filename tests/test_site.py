"""The built site as readers get it: offline, internally consistent, rendered in a browser.

These tests read a site that has already been built; they never build it. Run them
with ``make test-site`` after ``make book`` (or ``make book-strict``). Environment:

- ``REGCOURSE_SITE``: the built HTML (default ``_build/html`` in the repository);
- ``REGCOURSE_SOURCE``: the book's source root holding ``_toc.yml`` and
  ``references.bib`` (default: the repository);
- ``REGCOURSE_CHROMIUM``: the browser to drive (default ``/usr/bin/chromium``,
  Debian's package; Playwright's own browser downloads are never used).

Part 1 parses every built page: nothing is loaded from another host, every
internal link resolves, every chapter offers its notebook for download. Part 2
serves the site on 127.0.0.1 and opens every page in headless Chromium: math is
typeset, diagrams are drawn, images load, the console stays clean and no request
leaves the machine. A full-page screenshot of each page is saved under
``<site>/../screenshots/``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.site

REPO = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("REGCOURSE_SITE", REPO / "_build" / "html")).resolve()
SOURCE = Path(os.environ.get("REGCOURSE_SOURCE", REPO)).resolve()
CHROMIUM = os.environ.get("REGCOURSE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = SITE.parent / "screenshots"
NOT_BUILT = "(site not built)"

# Folders of the build that hold assets, not pages (their *.html are template leftovers).
ASSET_DIRS = {"_static", "_sources", "_images", "_downloads"}


def _pages() -> list[str]:
    if not (SITE / "index.html").is_file():
        return [NOT_BUILT]
    return sorted(
        p.relative_to(SITE).as_posix()
        for p in SITE.rglob("*.html")
        if p.relative_to(SITE).parts[0] not in ASSET_DIRS
    )


PAGES = _pages()


def require_site() -> None:
    if not (SITE / "index.html").is_file():
        pytest.fail(
            f"no built site at {SITE}: run `make book` first "
            "(or point REGCOURSE_SITE at a built _build/html)",
            pytrace=False,
        )


# --- parsing built pages -----------------------------------------------------

class _Page(HTMLParser):
    """What the tests need from one built page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []  # (tag, attributes) in order
        self.ids: set[str] = set()
        self.inline_scripts: list[str] = []
        self.styles: list[str] = []
        self.redirect = ""  # target of a <meta http-equiv="refresh">
        self.math = 0  # elements MathJax must typeset (Sphinx marks them class="math")
        self.mermaid = 0  # diagrams mermaid must draw
        self._in: str | None = None
        self._buf: list[str] = []
        self._stack: list[list] = []  # open <a>: [attributes, text parts]
        self.links: list[tuple[dict[str, str], str]] = []  # (<a> attributes, its text)

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        self.tags.append((tag, attrs))
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            self.redirect = attrs.get("content", "").partition("url=")[2].strip()
        classes = attrs.get("class", "").split()
        self.math += "math" in classes
        self.mermaid += tag == "pre" and "mermaid" in classes
        if tag == "script" and not attrs.get("src"):
            self._in, self._buf = "script", []
        elif tag == "style":
            self._in, self._buf = "style", []
        elif tag == "a":
            self._stack.append([attrs, []])
        if attrs.get("style"):
            self.styles.append(attrs["style"])

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)
        for _, text in self._stack:
            text.append(data)

    def handle_endtag(self, tag):
        if tag == self._in:
            (self.inline_scripts if tag == "script" else self.styles).append("".join(self._buf))
            self._in = None
        elif tag == "a" and self._stack:
            attrs, text = self._stack.pop()
            self.links.append((attrs, " ".join("".join(text).split())))


@functools.lru_cache(maxsize=None)
def parse(page: str) -> _Page:
    require_site()
    parser = _Page()
    parser.feed((SITE / page).read_text(encoding="utf-8"))
    parser.close()
    return parser


REMOTE_SCHEMES = {"http", "https", "ftp", "ws", "wss"}


def is_external(url: str) -> bool:
    url = url.strip()
    return url.startswith("//") or urlsplit(url).scheme.lower() in REMOTE_SCHEMES


# rel values of <link> that only point somewhere; every other rel makes the browser fetch.
NAVIGATION_RELS = {"canonical", "alternate", "next", "prev", "index", "search", "author",
                   "license", "help", "up", "me", "bookmark", "external", "nofollow"}
LOADING_ATTRS = {  # tag -> attributes whose URL the browser fetches
    "script": ("src",), "img": ("src", "srcset"), "source": ("src", "srcset"),
    "iframe": ("src",), "frame": ("src",), "embed": ("src",), "object": ("data",),
    "video": ("src", "poster"), "audio": ("src",), "track": ("src",),
    "image": ("href", "xlink:href"), "use": ("href", "xlink:href"), "input": ("src",),
}
CSS_EXTERNAL = re.compile(
    r"""@import\s+(?:url\()?\s*['"]?\s*(?:https?:)?//[^'")\s;]+"""
    r"""|url\(\s*['"]?\s*(?:https?:)?//[^'")\s]+""",
    re.IGNORECASE,
)
# In inline scripts: module imports from another host, or a string holding the URL of a
# script/stylesheet/font (what a script would later inject, like thebe's CDN bundle).
SCRIPT_EXTERNAL = re.compile(
    r"""\bimport\s*(?:\(|[^'"();]*\bfrom)\s*['"](?:https?:)?//[^'"]+['"]"""
    r"""|['"`](?:https?:)?//[^'"`\s]+\.(?:m?js|css|woff2?|ttf|otf)(?:\?[^'"`\s]*)?['"`]""",
    re.IGNORECASE,
)


def _urls(value: str) -> list[str]:
    """The URLs in an attribute value (srcset lists several, with descriptors)."""
    return [part.strip().split()[0] for part in value.split(",") if part.strip()] if value else []


def external_resources(page: str) -> list[str]:
    """Everything ``page`` would fetch from another host, as readable strings."""
    doc, found = parse(page), []
    for tag, attrs in doc.tags:
        if tag == "link":
            rels = set(attrs.get("rel", "").lower().split())
            if is_external(attrs.get("href", "")) and not rels <= NAVIGATION_RELS:
                found.append(f"<link rel={attrs.get('rel', '')!r} href={attrs['href']!r}>")
        for attr in LOADING_ATTRS.get(tag, ()):
            value = attrs.get(attr, "")
            for url in _urls(value) if attr.endswith("srcset") else [value]:
                if is_external(url):
                    found.append(f"<{tag} {attr}={url!r}>")
    if is_external(doc.redirect):
        found.append(f"<meta refresh to {doc.redirect!r}>")
    for style in doc.styles:
        found += [f"CSS in the page: {m.group(0)!r}" for m in CSS_EXTERNAL.finditer(style)]
    for script in doc.inline_scripts:
        found += [f"inline script: {m.group(0)!r}" for m in SCRIPT_EXTERNAL.finditer(script)]
    return found


def site_pages_or_fail() -> list[str]:
    require_site()
    return PAGES


def toc_files() -> list[str]:
    """The documents listed in the table of contents, in reading order (without suffix)."""
    toc = yaml.safe_load((SOURCE / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    walk(toc.get("sections"))
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


def notebook_chapters() -> list[str]:
    return [f for f in toc_files() if (SOURCE / f"{f}.ipynb").is_file()]


# --- part 1: the built HTML --------------------------------------------------

def test_every_toc_entry_is_built():
    require_site()
    missing = [f for f in toc_files() if not (SITE / f"{f}.html").is_file()]
    assert not missing, f"pages listed in {SOURCE / '_toc.yml'} but not built in {SITE}: {missing}"
    for special in ("search.html", "genindex.html", "searchindex.js"):
        assert (SITE / special).is_file(), f"{special} missing from {SITE}"


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_nothing_from_the_network(page):
    found = external_resources(page)
    assert not found, f"{page} loads external resources:\n  " + "\n  ".join(found)


def test_built_css_loads_nothing_from_the_network():
    require_site()
    css_files = sorted(SITE.rglob("*.css"))
    assert css_files, f"no CSS at all under {SITE}: is this a Sphinx build?"
    found = [
        f"{css.relative_to(SITE)}: {m.group(0)}"
        for css in css_files
        for m in CSS_EXTERNAL.finditer(css.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not found, "built CSS imports from the network:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("page", PAGES)
def test_no_inline_script_is_repeated(page):
    # A repeated `const X = ...` script is a SyntaxError in the browser
    # (sphinx_thebe's THEBE_JS_URL did this before book/_ext/offline.py).
    scripts = [s.strip() for s in parse(page).inline_scripts if s.strip()]
    repeated = sorted({s[:80] for s in scripts if scripts.count(s) > 1})
    assert not repeated, f"{page} repeats inline scripts: {repeated}"


def _local_target(page: str, url: str) -> tuple[Path, str] | None:
    """Resolve a same-site URL found on ``page`` to (file, fragment); None if not a file link."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("//") or not (parts.path or parts.fragment):
        return None
    path = (SITE / page).parent / unquote(parts.path) if parts.path else SITE / page
    path = Path(os.path.normpath(path))
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


def _redirect_target(page: str) -> str:
    path, _ = _local_target(page, parse(page).redirect)
    return path.relative_to(SITE).as_posix()


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(page):
    doc, broken = parse(page), []
    for tag, attrs in doc.tags:
        urls = []
        for attr in ("href", "src", "data", "poster"):
            if attrs.get(attr):
                urls.append(attrs[attr])
        urls += _urls(attrs.get("srcset", ""))
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            urls.append(doc.redirect)
        for url in urls:
            if url.startswith(("mailto:", "javascript:", "data:", "tel:")):
                continue
            target = _local_target(page, url)
            if target is None:
                continue
            path, fragment = target
            if not path.is_relative_to(SITE):
                broken.append(f"<{tag}> {url!r} points outside the site")
            elif not path.is_file():
                broken.append(f"<{tag}> {url!r}: no file {path.relative_to(SITE)}")
            elif tag == "a" and fragment and path.suffix == ".html":
                if fragment not in parse(path.relative_to(SITE).as_posix()).ids:
                    broken.append(f"<a> {url!r}: no id {fragment!r} in {path.relative_to(SITE)}")
    assert not broken, f"{page} has broken internal links:\n  " + "\n  ".join(broken)


def test_chapters_offer_their_notebook_and_a_launch_link():
    require_site()
    chapters = notebook_chapters()
    assert chapters, f"no notebook chapter in {SOURCE / '_toc.yml'}: the chapters are notebooks"
    problems = []
    for chapter in chapters:
        page = f"{chapter}.html"
        if not (SITE / page).is_file():
            problems.append(f"{page}: not built")
            continue
        links = parse(page).links
        downloads = [a for a, text in links if "btn-download-source-button" in a.get("class", "")]
        if not downloads:
            problems.append(f"{page}: no download button")
            continue
        href = downloads[0].get("href", "")
        if not href.endswith(f"_sources/{chapter}.ipynb"):
            problems.append(f"{page}: download button offers {href!r}, not the .ipynb")
            continue
        nb_path = _local_target(page, href)[0]
        try:
            nb = json.loads(nb_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            problems.append(f"{page}: downloadable notebook {href!r} unreadable: {err}")
            continue
        code_cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        if nb.get("nbformat") != 4 or not code_cells:
            problems.append(f"{page}: {href!r} is not a notebook with code cells")
        elif nb != json.loads((SOURCE / f"{chapter}.ipynb").read_text(encoding="utf-8")):
            problems.append(f"{page}: {href!r} differs from {chapter}.ipynb: rebuild the site")
        launches = [a.get("href", "") for a, _ in links
                    if a.get("title", "").startswith("Launch on")]
        if not any(h.endswith(f"/tree/{chapter}.ipynb") for h in launches):
            problems.append(f"{page}: no launch link opening {chapter}.ipynb (found {launches})")
    assert not problems, "chapter download/launch buttons:\n  " + "\n  ".join(problems)


def test_references_page_lists_every_bibliography_entry():
    require_site()
    bib = (SOURCE / "references.bib").read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\s*\{\s*([^,\s]+)\s*,", bib, re.M)
    assert keys, "references.bib has no entries"
    page = "book/references.html"
    assert (SITE / page).is_file(), f"{page} not built: add book/references to _toc.yml"
    doc = parse(page)
    entries = [a for tag, a in doc.tags
               if tag == "div" and "citation" in a.get("class", "").split()]
    assert len(entries) == len(keys), (
        f"{page} lists {len(entries)} entries, references.bib has {len(keys)}: {keys}"
    )


# --- part 2: in a real browser -----------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="session")
def server():
    require_site()
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no browser at {CHROMIUM}: apt-get install chromium "
                    "(or set REGCOURSE_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives the browser a fresh temporary profile and removes it afterwards.
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


class _Visit:
    """One page opened in a fresh browser context, with everything that went wrong."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console error: {m.text} ({m.location.get('url', '')})"))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(
            f"HTTP {r.status} for {r.url}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.errors.append(f"request to another host: {url}")
            route.abort()

    def close(self):
        self.context.close()


WAIT_FOR_MATHJAX = """async () => {
  if (!window.MathJax) return 'absent';
  for (let i = 0; i < 200 && !(MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(MathJax.startup && MathJax.startup.promise)) return 'never started';
  await MathJax.startup.promise;
  return 'done';
}"""

INSPECT = r"""async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(img => {
    img.loading = 'eager';
    return img.decode().catch(() => null);
  }));
  const text = (() => {
    const clone = document.body.cloneNode(true);
    const skip = 'pre, code, script, style, noscript, textarea, mjx-container, .mermaid, svg';
    clone.querySelectorAll(skip).forEach(e => e.remove());
    return clone.textContent;
  })();
  const diagrams = [...document.querySelectorAll('pre.mermaid')].map((d, i) => {
    const svg = d.querySelector('svg');
    if (!svg) return `diagram ${i + 1}: not drawn (no <svg>)`;
    const box = svg.getBBox();
    if (!(box.width > 0 && box.height > 0)) return `diagram ${i + 1}: empty <svg>`;
    if (/syntax error/i.test(svg.textContent) || svg.querySelector('.error-icon'))
      return `diagram ${i + 1}: mermaid reports an error: ${svg.textContent.slice(0, 120)}`;
    return null;
  }).filter(Boolean);
  return {
    mjx: document.querySelectorAll('mjx-container').length,
    merror: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
    text,
    diagrams,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
      .map(i => i.currentSrc || i.src),
  };
}"""

# Mermaid marks a block processed before its drawing is laid out: wait for a non-empty
# <svg> (or mermaid's error drawing) in every block.
WAIT_FOR_MERMAID = """() => [...document.querySelectorAll('pre.mermaid')].every(d => {
  const svg = d.querySelector('svg');
  if (!svg) return false;
  const box = svg.getBBox();
  return (box.width > 0 && box.height > 0) || /syntax error/i.test(svg.textContent);
})"""

RAW_MATH = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_the_browser(page, browser, server):
    doc = parse(page)
    visit = _Visit(browser, server)
    try:
        visit.page.goto(server + page, wait_until="load")
        if doc.redirect:  # index.html: a meta refresh; check the page it lands on
            landed = _redirect_target(page)
            visit.page.wait_for_url(server + landed, wait_until="load")
            doc = parse(landed)
        mathjax = visit.page.evaluate(WAIT_FOR_MATHJAX)
        if doc.mermaid:
            try:
                visit.page.wait_for_function(WAIT_FOR_MERMAID, timeout=15_000, polling=100)
            except Exception:  # reported below as undrawn diagrams
                pass
        result = visit.page.evaluate(INSPECT)
        shot = SCREENSHOTS / Path(page).with_suffix(".png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=str(shot), full_page=True)
    finally:
        visit.close()

    problems = list(visit.errors)
    if doc.math:
        if mathjax != "done":
            problems.append(f"MathJax {mathjax} on a page with {doc.math} formulas")
        elif result["mjx"] < doc.math:
            problems.append(f"only {result['mjx']} of {doc.math} formulas typeset by MathJax")
    problems += [f"MathJax error: {e}" for e in result["merror"]]
    raw = sorted({m.group(0)[:60] for m in RAW_MATH.finditer(result["text"])})
    if raw:
        problems.append(f"raw TeX left in the text: {raw}")
    problems += result["diagrams"]
    problems += [f"image did not load: {src}" for src in result["brokenImages"]]
    assert not problems, f"{page} (screenshot {shot}):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    ("query", "expect_results"), [("dropout", True), ("qzxvbnonexistentword", False)]
)
def test_search_works_offline(query, expect_results, browser, server):
    require_site()
    visit = _Visit(browser, server)
    try:
        visit.page.goto(f"{server}search.html?q={query}", wait_until="load")
        visit.page.wait_for_selector("#search-results .search-summary:not(:empty)")
        results = visit.page.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map(a => a.getAttribute('href'))")
        summary = visit.page.inner_text("#search-results .search-summary")
    finally:
        visit.close()
    assert not visit.errors, "search page: " + "; ".join(visit.errors)
    if expect_results:
        assert results, f"searching {query!r} found nothing ({summary!r})"
        missing = [h for h in results if not (SITE / urlsplit(h).path).is_file()]
        assert not missing, f"search results point to missing pages: {missing}"
    else:
        assert not results, f"searching the nonsense word {query!r} returned {results}"
