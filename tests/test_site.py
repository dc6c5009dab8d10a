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

import contextlib
import functools
import json
import os
import posixpath
import re
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout

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


@functools.cache
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
NAVIGATION_RELS = {
    "canonical",
    "alternate",
    "next",
    "prev",
    "index",
    "search",
    "author",
    "license",
    "help",
    "up",
    "me",
    "bookmark",
    "external",
    "nofollow",
}
LOADING_ATTRS = {  # tag -> attributes whose URL the browser fetches
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "input": ("src",),
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
            elif (
                tag == "a"
                and fragment
                and path.suffix == ".html"
                and fragment not in parse(path.relative_to(SITE).as_posix()).ids
            ):
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
        launches = [
            a.get("href", "") for a, _ in links if a.get("title", "").startswith("Launch on")
        ]
        if not any(h.endswith(f"/tree/{chapter}.ipynb") for h in launches):
            problems.append(f"{page}: no launch link opening {chapter}.ipynb (found {launches})")
    assert not problems, "chapter download/launch buttons:\n  " + "\n  ".join(problems)


def test_references_page_lists_every_bibliography_entry():
    require_site()
    bib = (SOURCE / "references.bib").read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\s*\{\s*([^,\s]+)\s*,", bib, re.MULTILINE)
    assert keys, "references.bib has no entries"
    page = "book/references.html"
    assert (SITE / page).is_file(), f"{page} not built: add book/references to _toc.yml"
    doc = parse(page)
    entries = [
        a for tag, a in doc.tags if tag == "div" and "citation" in a.get("class", "").split()
    ]
    assert len(entries) == len(keys), (
        f"{page} lists {len(entries)} entries, references.bib has {len(keys)}: {keys}"
    )


# --- part 2: in a real browser -----------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
    }

    def log_message(self, format, *args):
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
        pytest.fail(
            f"no browser at {CHROMIUM}: apt-get install chromium (or set REGCOURSE_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives the browser a fresh temporary profile and removes it afterwards.
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
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
        self.page.on(
            "console",
            lambda m: (
                m.type == "error"
                and self.errors.append(f"console error: {m.text} ({m.location.get('url', '')})")
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status} for {r.url}"),
        )

    def _route(self, route):
        url = route.request.url
        if url.startswith((self.base, "data:", "blob:")):
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
    assistiveMml: document.querySelectorAll('mjx-container mjx-assistive-mml math').length,
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


# What a reader sees of every diagram: the smallest label as drawn on the screen (font
# size times the drawing's scale), how much of its frame the drawing fills, whether a
# frame that scrolls sideways takes keyboard focus, and the fullscreen control.
MEASURE_DIAGRAMS = r"""() => [...document.querySelectorAll('pre.mermaid')].map((pre, i) => {
  const svg = pre.querySelector(':scope > svg');
  if (!svg) return {index: i + 1, drawn: false};
  let minLabelPx = Infinity, labels = 0;
  for (const el of svg.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const graphic = el instanceof SVGGraphicsElement ? el : el.closest('foreignObject');
    const m = graphic && graphic.getScreenCTM();
    if (!m) continue;
    const px = parseFloat(getComputedStyle(el).fontSize) * Math.sqrt(Math.abs(m.a * m.d - m.b * m.c));
    minLabelPx = Math.min(minLabelPx, px);
    labels++;
  }
  const drawing = (svg.querySelector(':scope > g') || svg).getBoundingClientRect();
  const boxW = Math.max(pre.clientWidth, pre.scrollWidth), boxH = Math.max(pre.clientHeight, pre.scrollHeight);
  const scrolls = pre.scrollWidth > pre.clientWidth + 1;
  const btn = pre.parentElement.querySelector(':scope > .mermaid-fullscreen-btn');
  let control = null;
  if (btn) {
    const icon = getComputedStyle(btn, '::before');
    const mask = icon.maskImage && icon.maskImage !== 'none' ? icon.maskImage : icon.webkitMaskImage;
    const r = btn.getBoundingClientRect();
    control = {name: btn.getAttribute('aria-label') || '', glyph: btn.textContent.trim(),
               iconDrawn: !!mask && mask !== 'none' && parseFloat(icon.width) >= 12,
               visible: r.width > 0 && r.height > 0};
  }
  // a CSS filter on the drawing or its frame recolours it after mermaid (and axe) chose
  // the colours: what the reader sees is then no longer what was checked
  const filters = [svg, pre, pre.parentElement].map(e => getComputedStyle(e).filter)
    .filter(f => f && f !== 'none');
  return {index: i + 1, drawn: true, labels, minLabelPx, filters,
          fill: (drawing.width * drawing.height) / (boxW * boxH),
          width: Math.round(drawing.width), scrolls, focusable: pre.tabIndex >= 0, control};
})"""

# The fitting script (book/_ext/static/diagrams.js) sizes a diagram right after mermaid
# draws it; two animation frames later the layout is final.
SETTLE = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"

AXE = "_static/axe/axe.min.js"  # vendored by `make install` (package.json), like MathJax
# axe-core's default rule set: WCAG 2.0-2.2 levels A and AA plus best practices.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + (n.failureSummary ? ': ' +
      n.failureSummary.split('\\n').slice(1).join(' ').trim().slice(0, 160) : ''))}));
}"""
BLOCKING_IMPACTS = {"critical", "serious"}
MIN_LABEL_PX = 11.0  # the body text's small print at 1280 px (issue 15)
MIN_DIAGRAM_FILL = 0.5  # a frame at least half filled by its drawing

DARK_MODE = "localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');"


def _open(
    browser, server, page: str, *, dark: bool = False, init: str = ""
) -> tuple[_Visit, _Page]:
    """Open ``page`` (following index.html's redirect) and wait for MathJax and mermaid."""
    visit, doc = _Visit(browser, server), parse(page)
    if init:
        visit.page.add_init_script(init)
    if dark:
        visit.page.add_init_script(DARK_MODE)
        # dark mode changes colours, not typesetting: skip MathJax's costly speech
        # enrichment there (the light-mode visit checks the math)
        visit.context.route("**/_static/mathjax/**", lambda route: route.abort())
    visit.page.goto(server + page, wait_until="load")
    if doc.redirect:  # index.html: a meta refresh; check the page it lands on
        landed = _redirect_target(page)
        visit.page.wait_for_url(server + landed, wait_until="load")
        doc = parse(landed)
    # (in dark mode MathJax is blocked above: waiting for it would only time out)
    visit.mathjax = "not loaded (dark mode)" if dark else visit.page.evaluate(WAIT_FOR_MATHJAX)
    if doc.mermaid:
        with contextlib.suppress(PlaywrightTimeout):  # reported as undrawn diagrams
            visit.page.wait_for_function(WAIT_FOR_MERMAID, timeout=15_000, polling=100)
    visit.page.evaluate(SETTLE)
    return visit, doc


def _axe(visit: _Visit, server: str) -> list[dict]:
    visit.page.add_script_tag(url=server + AXE)
    return visit.page.evaluate(RUN_AXE)


_LOOKS: dict[tuple[str, str], dict] = {}


def look(browser, server, page: str, mode: str = "light") -> dict:
    """Everything the browser tests check on one page, from one visit (cached per mode)."""
    key = (page, mode)
    if key in _LOOKS:
        return _LOOKS[key]
    visit, doc = _open(browser, server, page, dark=mode == "dark")
    try:
        seen = {
            "doc": doc,
            "mathjax": visit.mathjax,
            "theme": visit.page.evaluate("document.documentElement.dataset.theme"),
            "inspect": visit.page.evaluate(INSPECT),
            "diagrams": visit.page.evaluate(MEASURE_DIAGRAMS),
        }
        suffix = "" if mode == "light" else f".{mode}"
        seen["shot"] = SCREENSHOTS / Path(page).with_suffix(f"{suffix}.png")
        seen["shot"].parent.mkdir(parents=True, exist_ok=True)
        visit.page.screenshot(path=str(seen["shot"]), full_page=True)
        for i in range(len(seen["diagrams"])):  # each diagram as drawn, for people to look at
            shot = SCREENSHOTS / "diagrams" / f"{Path(page).stem}-{i + 1}{suffix}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            visit.page.locator("pre.mermaid").nth(i).screenshot(path=str(shot))
        seen["axe"] = _axe(visit, server)
    finally:
        visit.close()
    seen["errors"] = list(visit.errors)
    _LOOKS[key] = seen
    return seen


def diagram_problems(diagrams: list[dict]) -> list[str]:
    problems = []
    for d in diagrams:
        where = f"diagram {d['index']}"
        if not d["drawn"]:
            continue  # reported by test_page_renders_in_the_browser
        if d["labels"] == 0:
            problems.append(f"{where}: no text labels found to measure")
        elif d["minLabelPx"] < MIN_LABEL_PX - 1e-3:
            problems.append(f"{where}: smallest label {d['minLabelPx']:.1f} px < {MIN_LABEL_PX} px")
        if d["fill"] < MIN_DIAGRAM_FILL:
            problems.append(
                f"{where}: the drawing fills {d['fill']:.0%} of its box (< {MIN_DIAGRAM_FILL:.0%})"
            )
        if d.get("filters"):
            problems.append(f"{where}: recoloured by a CSS filter ({'; '.join(d['filters'])})")
        if d["scrolls"] and not d["focusable"]:
            problems.append(f"{where}: scrolls sideways but cannot take keyboard focus")
        control = d["control"]
        if control is not None:
            if not control["name"]:
                problems.append(f"{where}: the fullscreen control has no accessible name")
            if control["glyph"]:
                problems.append(
                    f"{where}: the fullscreen control shows the character "
                    f"{control['glyph']!r}, which needs a font that has it"
                )
            if not (control["iconDrawn"] and control["visible"]):
                problems.append(f"{where}: the fullscreen control draws no icon")
    return problems


def axe_problems(violations: list[dict]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} - {len(v['nodes'])} element(s): "
        + "; ".join(v["nodes"][:4])
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_the_browser(page, browser, server):
    seen = look(browser, server, page)
    doc, result = seen["doc"], seen["inspect"]
    problems = list(seen["errors"])
    if doc.math:
        if seen["mathjax"] != "done":
            problems.append(f"MathJax {seen['mathjax']} on a page with {doc.math} formulas")
        elif result["mjx"] < doc.math:
            problems.append(f"only {result['mjx']} of {doc.math} formulas typeset by MathJax")
        elif result["assistiveMml"] < result["mjx"]:  # what screen readers read by default
            problems.append(
                f"only {result['assistiveMml']} of {result['mjx']} formulas carry "
                "MathML for screen readers (MathJax's assistive MathML)"
            )
    problems += [f"MathJax error: {e}" for e in result["merror"]]
    raw = sorted({m.group(0)[:60] for m in RAW_MATH.finditer(result["text"])})
    if raw:
        problems.append(f"raw TeX left in the text: {raw}")
    problems += result["diagrams"]
    problems += [f"image did not load: {src}" for src in result["brokenImages"]]
    assert not problems, f"{page} (screenshot {seen['shot']}):\n  " + "\n  ".join(problems)


DIAGRAM_PAGES = [p for p in PAGES if p != NOT_BUILT and parse(p).mermaid] or [NOT_BUILT]


@pytest.mark.parametrize("page", DIAGRAM_PAGES)
@pytest.mark.parametrize("mode", ["light", "dark"])
def test_diagrams_at_reading_size(page, mode, browser, server):
    seen = look(browser, server, page, mode)
    assert seen["theme"] == mode, f"{page}: could not switch the page to {mode} mode"
    assert seen["diagrams"], f"{page}: the HTML has diagrams but none was found in the browser"
    problems = diagram_problems(seen["diagrams"])
    assert not problems, (
        f"{page} in {mode} mode (diagrams in {SCREENSHOTS / 'diagrams'}):\n  "
        + "\n  ".join(problems)
    )


def test_diagram_measure_catches_small_labels_and_empty_boxes():
    # the measurements above, fed the numbers the issue reported before the fix
    before = [
        {
            "index": 1,
            "drawn": True,
            "labels": 6,
            "minLabelPx": 8.2,
            "fill": 0.14,
            "scrolls": False,
            "focusable": False,
            "filters": ["brightness(0.8) invert(0.82) contrast(1.2)"],
            "control": {
                "name": "View diagram in fullscreen",
                "glyph": "\u26f6",
                "iconDrawn": False,
                "visible": True,
            },
        }
    ]
    problems = diagram_problems(before)
    assert any("8.2 px" in p for p in problems)
    assert any("fills 14%" in p for p in problems)
    assert any("needs a font" in p for p in problems)
    assert any("draws no icon" in p for p in problems)
    assert any("recoloured by a CSS filter" in p for p in problems)


@pytest.mark.parametrize("page", PAGES)
def test_no_serious_accessibility_violations(page, browser, server):
    seen = look(browser, server, page)
    problems = axe_problems(seen["axe"])
    assert not problems, f"axe-core on {page} (light mode):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", DIAGRAM_PAGES)
def test_no_serious_accessibility_violations_in_dark_mode(page, browser, server):
    # the diagram pages: mermaid redraws them with its dark theme
    seen = look(browser, server, page, "dark")
    assert seen["theme"] == "dark", f"{page}: could not switch the page to dark mode"
    problems = axe_problems(seen["axe"])
    assert not problems, f"axe-core on {page} (dark mode):\n  " + "\n  ".join(problems)


def _first_page_with(selector: str) -> str:
    for page in PAGES:
        if page != NOT_BUILT and f'class="{selector}' in (SITE / page).read_text(encoding="utf-8"):
            return page
    pytest.fail(f"no page of {SITE} has an element of class {selector!r}", pytrace=False)


PROBE_LINKS_IN_BOXES = """() => {
  const boxes = [...document.querySelectorAll('div.admonition, div.exercise, div.solution')];
  for (const box of boxes) {
    const a = document.createElement('a');
    a.href = '#'; a.className = 'reference internal probe-link'; a.textContent = '(3.1)';
    (box.querySelector('p:not(.admonition-title)') || box).appendChild(a);
  }
  return boxes.length;
}"""


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_links_inside_exercise_boxes_keep_their_contrast(mode, browser, server):
    # Chapters put equation references and citations in exercises; whether a page has one
    # today or not, a link placed in every box must meet WCAG AA (4.5:1).
    require_site()
    page = _first_page_with("exercise")
    visit, _ = _open(browser, server, page, dark=mode == "dark")
    try:
        boxes = visit.page.evaluate(PROBE_LINKS_IN_BOXES)
        visit.page.add_script_tag(url=server + AXE)
        failing = visit.page.evaluate("""async () => (await axe.run(
            {include: [...document.querySelectorAll('a.probe-link')].map(a => [a])},
            {runOnly: ['color-contrast']})).violations.flatMap(v => v.nodes.map(n =>
            n.target.join(' ') + ': ' + n.any.map(c => c.message).join(' ')))""")
    finally:
        visit.close()
    assert boxes > 0, f"{page}: no exercise box found"
    assert not failing, f"links in boxes on {page} ({mode} mode):\n  " + "\n  ".join(failing)


def test_solution_dropdowns_open_with_the_keyboard(browser, server):
    require_site()
    page = _first_page_with("solution dropdown")
    visit, _ = _open(browser, server, page)
    problems = []
    try:
        kb = visit.page.keyboard
        count = visit.page.locator("div.solution.dropdown").count()
        for i in range(count):
            box = visit.page.locator("div.solution.dropdown").nth(i)
            title_link = box.locator(".admonition-title a").first
            title_link.focus()
            kb.press("Tab")  # the next stop in the tab order must be the dropdown's button
            focused = visit.page.evaluate("""() => { const e = document.activeElement;
                return {button: e.tagName === 'BUTTON' && e.classList.contains('toggle-button'),
                        expanded: e.getAttribute('aria-expanded'),
                        outline: getComputedStyle(e).outlineStyle !== 'none'
                                 && parseFloat(getComputedStyle(e).outlineWidth) >= 1}; }""")
            if not focused["button"]:
                problems.append(f"solution {i + 1}: Tab after its title does not reach its button")
                continue
            if not focused["outline"]:
                problems.append(f"solution {i + 1}: its focused button shows no focus outline")
            body_visible = (
                "e => [...e.children].filter(c => !c.classList.contains('admonition-title'))"
                ".some(c => getComputedStyle(c).visibility !== 'hidden'"
                " && c.getBoundingClientRect().height > 0)"
            )
            if box.evaluate(body_visible):
                problems.append(f"solution {i + 1}: visible before it is opened")
            kb.press("Enter")
            visit.page.wait_for_timeout(50)
            if not box.evaluate(body_visible):
                problems.append(f"solution {i + 1}: Enter on its button does not show it")
            if (
                visit.page.evaluate("document.activeElement.getAttribute('aria-expanded')")
                != "true"
            ):
                problems.append(f"solution {i + 1}: its button does not say it is expanded")
            kb.press("Space")
            visit.page.wait_for_timeout(50)
            if box.evaluate(body_visible):
                problems.append(f"solution {i + 1}: Space on its button does not hide it again")
    finally:
        visit.close()
    assert count > 0, f"{page}: no solution dropdown found"
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


MATHJAX_EXPLORER_ON = (
    "localStorage.setItem('MathJax-Menu-Settings', JSON.stringify({explorer: true}));"
)


def test_math_is_spoken_and_explorable_offline(browser, server):
    require_site()
    page = next((p for p in PAGES if p != NOT_BUILT and parse(p).math > 5), None)
    assert page, "no page with formulas"
    # The explorer and its speech text are off by default (they cost every reader the
    # speech rule engine's time on every page); a reader turns them on in MathJax's menu
    # (right-click a formula: Accessibility > Explorer), which MathJax keeps in
    # localStorage. The same setting here: everything must then load from the site.
    visit, _ = _open(browser, server, page, init=MATHJAX_EXPLORER_ON)
    loaded = []
    visit.page.on("requestfinished", lambda r: loaded.append(r.url))
    try:
        visit.page.reload(wait_until="load")
        assert visit.page.evaluate(WAIT_FOR_MATHJAX) == "done"
        # speech text is computed after typesetting: wait for it on every formula
        visit.page.wait_for_function(
            """() => [...document.querySelectorAll('mjx-container')]
            .every(c => (c.getAttribute('aria-label') || '').trim())""",
            timeout=20_000,
        )
        speech = visit.page.evaluate("""() => [...document.querySelectorAll('mjx-container')]
            .map(c => c.getAttribute('aria-label'))""")
        # a compound formula: Enter starts the explorer, which speaks the whole formula into
        # MathJax's live region; ArrowDown steps into its first part and speaks that
        index = next(i for i, text in enumerate(speech) if len(text.split()) >= 4)
        formula = visit.page.locator("mjx-container").nth(index)
        formula.focus()
        spoken = []
        for key in ("Enter", "ArrowDown"):
            visit.page.keyboard.press(key)
            visit.page.wait_for_timeout(300)
            spoken.append(
                visit.page.evaluate("""() => [...document.querySelectorAll(
                '.MJX_LiveRegion')].map(e => e.textContent.trim()).filter(Boolean).join(' | ')""")
            )
        whole = speech[index]
    finally:
        visit.close()
    assert not visit.errors, f"{page}: " + "; ".join(visit.errors)
    for component in (
        "/mathjax/a11y/explorer.js",
        "/mathjax/a11y/semantic-enrich.js",
        "/mathjax/sre/mathmaps/en.json",
    ):
        assert any(u.startswith(server) and component in u for u in loaded), (
            f"{page}: MathJax accessibility component {component} not loaded from the site"
        )
    assert all(s and s.strip() for s in speech), f"{page}: formulas without speech text"
    assert any(re.search(r"[a-z]{3,}", s) for s in speech), f"{page}: speech text {speech[:3]}"
    assert spoken[0] == whole, f"{page}: Enter on {whole!r} made the explorer say {spoken[0]!r}"
    assert spoken[1] and spoken[1] != whole, (
        f"{page}: ArrowDown did not step into {whole!r} (the explorer said {spoken[1]!r})"
    )


# --- figures: alt text and data ------------------------------------------------

# The switch: while False, figures whose alt text is empty, a file path or matplotlib's
# repr ("<Figure size ...>") are listed (as an expected failure) but do not fail the run.
# Flip it to True once every chapter shows its figures with regcourse.plotting.show_figure.
REQUIRE_FIGURE_ALT_TEXT = True

# empty, matplotlib's repr, or a file path (one word with a slash); a sentence may hold
# slashes ("98.7% / 64.7%", "1/sqrt(B)")
BAD_ALT = re.compile(r"^\s*$|^<|\.(png|jpe?g|gif|svg)\s*$|^_images/|^\S*/\S*$", re.IGNORECASE)


def figure_images() -> list[tuple[str, str, str]]:
    """(page, src, alt) of every content image (Sphinx copies them to ``_images/``)."""
    found = []
    for page in site_pages_or_fail():
        for tag, attrs in parse(page).tags:
            if tag == "img" and "_images/" in attrs.get("src", ""):
                found.append((page, attrs["src"], attrs.get("alt", "")))
    return found


def test_figure_alt_text_check_catches_placeholders():
    for bad in ["", "  ", "<Figure size 600x350 with 1 Axes>", "../_images/ab12.png", "_images/x"]:
        assert BAD_ALT.search(bad), bad
    assert not BAD_ALT.search("Validation loss is lowest at epoch 12 (0.41), then rises.")
    assert BAD_ALT.search("figures/sweep")
    for good in ["Train / test accuracy: 98.7% / 64.7%.", "The noise falls as 1/sqrt(B)."]:
        assert not BAD_ALT.search(good), good


def test_every_figure_says_what_it_shows():
    images = figure_images()
    assert images, f"no figure images found in {SITE}"
    bad = [
        f"{page}: {src} has alt text {alt!r}" for page, src, alt in images if BAD_ALT.search(alt)
    ]
    if bad and not REQUIRE_FIGURE_ALT_TEXT:
        pytest.xfail(
            f"{len(bad)} of {len(images)} figures without a real alt text (use "
            "regcourse.plotting.show_figure; REQUIRE_FIGURE_ALT_TEXT makes this "
            "blocking):\n  " + "\n  ".join(bad)
        )
    assert not bad, f"{len(bad)} of {len(images)} figures:\n  " + "\n  ".join(bad)


def _csv_outputs(chapter: str) -> int:
    nb = json.loads((SOURCE / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    return sum(
        1
        for cell in nb.get("cells", [])
        for out in cell.get("outputs", [])
        if "text/csv" in out.get("data", {}) and any(k.startswith("image/") for k in out["data"])
    )


def test_figure_data_links_download_and_parse(server):
    import csv
    import io
    import urllib.request

    require_site()
    problems, checked = [], 0
    for chapter in notebook_chapters():
        page = f"{chapter}.html"
        links = [
            a.get("href", "") for a, text in parse(page).links if text == "Download the data (CSV)"
        ]
        expected = _csv_outputs(chapter)
        if len(links) != expected:
            problems.append(f"{page}: {len(links)} data links for {expected} figures with data")
        for href in links:
            url = server + posixpath.normpath(posixpath.join(posixpath.dirname(page), href))
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    text = response.read().decode("utf-8")
            except OSError as err:
                problems.append(f"{page}: {href} does not download: {err}")
                continue
            rows = list(csv.reader(io.StringIO(text)))
            if len(rows) < 2 or len({len(r) for r in rows}) != 1 or not all(rows[0]):
                problems.append(f"{page}: {href} is not a CSV table with a header row")
            checked += 1
    assert not problems, "figure data links:\n  " + "\n  ".join(problems)
    assert checked == sum(_csv_outputs(c) for c in notebook_chapters())


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
            "#search-results ul.search li a", "links => links.map(a => a.getAttribute('href'))"
        )
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


# --- downloads: the package wheel beside each chapter, the course PDF ------------


def _version() -> str:
    text = (SOURCE / "regcourse" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE).group(1)


def test_chapters_offer_the_wheel_with_its_install_command():
    import zipfile

    require_site()
    wheel = f"regcourse-{_version()}-py3-none-any.whl"
    problems = []
    for chapter in notebook_chapters():
        page = f"{chapter}.html"
        links = [
            a.get("href", "")
            for a, _ in parse(page).links
            if "btn-download-wheel-button" in a.get("class", "")
        ]
        if not links or not links[0].endswith(wheel):
            problems.append(f"{page}: download menu offers no {wheel} (found {links})")
            continue
        path = _local_target(page, links[0])[0]
        if not path.is_file():
            problems.append(f"{page}: {links[0]} is not in the site")
            continue
        with zipfile.ZipFile(path) as zf:
            init = zf.read("regcourse/__init__.py").decode("utf-8")
        if f'__version__ = "{_version()}"' not in init:
            problems.append(f"{page}: {links[0]} is not regcourse {_version()}")
        if f"<code>pip install {wheel}</code>" not in (SITE / page).read_text(encoding="utf-8"):
            problems.append(f"{page}: no install command 'pip install {wheel}' on the page")
    assert not problems, "the package wheel:\n  " + "\n  ".join(problems)


def test_every_page_links_the_course_pdf():
    require_site()
    problems = []
    for doc in toc_files():  # the pages with a download menu (not search, genindex)
        page = f"{doc}.html"
        links = [
            a.get("href", "")
            for a, _ in parse(page).links
            if "btn-download-course-pdf-button" in a.get("class", "")
        ]
        if not links:
            problems.append(f"{page}: no link to the course PDF")
            continue
        path = _local_target(page, links[0])[0]
        if not path.is_file() or not path.read_bytes()[:5] == b"%PDF-":
            problems.append(f"{page}: {links[0]} is not a PDF in the site (run `make pdf`)")
    assert not problems, "the course PDF:\n  " + "\n  ".join(problems)
