"""Print the single-page build of the course to one PDF with headless Chromium (``make pdf``).

    python book/_ext/print_pdf.py _build/singlehtml _build/pdf/regcourse.pdf

Serves the single-page build on a free loopback port (mermaid's ES module does not
load over ``file://``), opens it in Debian's Chromium through Playwright, waits until
MathJax has typeset every formula and mermaid has drawn every diagram, opens every
solution and folded code cell (the PDF is the whole course), adds a printed table of
contents linking every chapter and section, starts each chapter on a new page, and
prints to A4 with page numbers and the PDF outline (bookmarks). Nothing is loaded from
another host: such a request aborts the print. Jupyter Book 1.x has no PDF builder that
works offline without LaTeX; this is the "print the HTML" route its docs describe,
done by the same browser the site tests use.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM = os.environ.get("REGCOURSE_CHROMIUM", "/usr/bin/chromium")

READY = """async () => {
  if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  const drawn = () => [...document.querySelectorAll('pre.mermaid')].every(d => {
    const svg = d.querySelector(':scope > svg');
    return svg && svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width > 0;
  });
  for (let i = 0; i < 600 && !drawn(); i++) await new Promise(r => setTimeout(r, 50));
  await Promise.all([...document.images].map(img => {
    img.loading = 'eager'; return img.decode().catch(() => null); }));
  return {drawn: drawn(), formulas: document.querySelectorAll('mjx-container').length,
          diagrams: document.querySelectorAll('pre.mermaid').length};
}"""

PREPARE = """() => {
  // every solution and folded cell open
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('details').forEach(d => d.open = true);
  // diagrams scaled to the paper's width (on screen they may scroll sideways)
  document.querySelectorAll('pre.mermaid > svg').forEach(svg => {
    const w = svg.viewBox.baseVal.width;
    svg.style.setProperty('width', w + 'px', 'important');
    svg.style.setProperty('max-width', '100%', 'important');
    svg.style.setProperty('height', 'auto', 'important');
  });
  // each chapter (a document of the single page) on a new page; a table of contents
  const article = document.querySelector('article.bd-article') || document.body;
  const chapters = [...document.querySelectorAll('span[id^="document-"]')]
    .map(span => span.nextElementSibling).filter(s => s && s.tagName === 'SECTION');
  chapters.forEach(s => s.classList.add('regcourse-chapter'));
  const first = article.querySelector('section');
  const toc = document.createElement('nav');
  toc.className = 'regcourse-print-toc';
  toc.setAttribute('aria-label', 'Contents');
  toc.innerHTML = '<h2>Contents</h2>';
  const list = document.createElement('ol');
  for (const section of [first, ...chapters].filter(Boolean)) {
    // in the single page the chapters' titles are nested headings (h2, h3), not h1
    const h1 = section.querySelector(':scope > :is(h1, h2, h3)');
    if (!h1 || !section.id) continue;
    const item = document.createElement('li');
    item.innerHTML = `<a href="#${section.id}">${h1.textContent.replace('#', '').trim()}</a>`;
    const sub = document.createElement('ol');
    for (const s2 of section.querySelectorAll(':scope > section')) {
      const h2 = s2.querySelector(':scope > :is(h2, h3, h4)');
      if (h2 && s2.id) {
        const li = document.createElement('li');
        li.innerHTML = `<a href="#${s2.id}">${h2.textContent.replace('#', '').trim()}</a>`;
        sub.appendChild(li);
      }
    }
    if (sub.children.length) item.appendChild(sub);
    list.appendChild(item);
  }
  toc.appendChild(list);
  article.insertBefore(toc, article.firstChild);
  return list.children.length;
}"""

FOOTER = (
    '<div style="font-size:8px; width:100%; text-align:center; color:#555;">'
    '<span class="title"></span> &middot; <span class="pageNumber"></span> / '
    '<span class="totalPages"></span></div>'
)


class _Quiet(SimpleHTTPRequestHandler):
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
    }  # noqa: RUF012

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def _page(site: Path) -> str:
    """The single page: the root document (``index.html`` only redirects to it)."""
    pages = [
        p
        for p in site.rglob("*.html")
        if p.parts[len(site.parts)] not in {"_static", "_sources"}
    ]
    pages = [
        p
        for p in pages
        if p.parent != site or p.name not in {"index.html", "regcourse-print.html"}
    ]
    if len(pages) != 1:
        raise SystemExit(
            f"expected one page in the single-page build {site}, found {pages}"
        )
    return pages[0].relative_to(site).as_posix()


def print_pdf(site: Path, out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    # Sphinx writes the single page as <root_doc>.html (book/intro.html) but makes its
    # links relative to the output folder's root: open a copy from the root.
    page_path = "regcourse-print.html"
    (site / page_path).write_bytes((site / _page(site)).read_bytes())
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith((base, "data:", "blob:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(viewport={"width": 1000, "height": 1400})
            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(base + page_path, wait_until="load")
            state = page.evaluate(READY)
            if not state["drawn"]:
                raise SystemExit("mermaid did not draw every diagram; not printing")
            state["toc_entries"] = page.evaluate(PREPARE)
            page.emulate_media(media="print")
            page.wait_for_timeout(200)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.pdf(
                path=str(out),
                format="A4",
                print_background=True,
                outline=True,
                tagged=True,
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=FOOTER,
                margin={
                    "top": "16mm",
                    "bottom": "18mm",
                    "left": "14mm",
                    "right": "14mm",
                },
            )
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    if outside:
        out.unlink(missing_ok=True)
        raise SystemExit(
            f"the page asked for other hosts: {outside[:5]}; no PDF written"
        )
    return state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "site", type=Path, help="the single-page build (e.g. _build/singlehtml)"
    )
    parser.add_argument("out", type=Path, help="the PDF to write")
    args = parser.parse_args(argv)
    state = print_pdf(args.site.resolve(), args.out)
    print(
        f"{args.out}: {state['formulas']} formulas, {state['diagrams']} diagrams, "
        f"{state['toc_entries']} chapters in the contents"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
