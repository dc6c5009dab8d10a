"""The printable book: ``make pdf`` writes the whole course to one PDF (book/_ext/print_pdf.py).

Reads the PDF that ``make pdf`` built (``REGCOURSE_PDF``, default
``_build/pdf/regcourse.pdf``) and the single-page build it was printed from
(``_build/singlehtml``); never builds anything. Run with ``make test-site``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import unicodedata
from functools import cache
from pathlib import Path

import pytest
from test_site import SOURCE, notebook_chapters, toc_files

pytestmark = pytest.mark.site

REPO = Path(__file__).resolve().parents[1]
PDF = Path(os.environ.get("REGCOURSE_PDF", REPO / "_build" / "pdf" / "regcourse.pdf"))
SINGLE = Path(os.environ.get("REGCOURSE_SINGLEHTML", PDF.parent.parent / "singlehtml"))

RAW_TEX = ["\\(", "\\)", "\\[", "\\]", "$$", "\\frac", "\\begin{"]
# mermaid's own syntax: a diagram header, a node with its label, a style line
RAW_MERMAID = [
    r"\b(graph|flowchart)\s+(LR|RL|TD|TB|BT)\b",
    r'\w+\["[^"]*"\]\s*-\.?->',
    r"\bstyle \w+ fill:#",
]


@cache
def reader():
    from pypdf import PdfReader

    if not PDF.is_file():
        pytest.fail(f"no PDF at {PDF}: run `make pdf` first", pytrace=False)
    return PdfReader(PDF)


def norm(text: str) -> str:
    """Text as compared: ligatures (ﬁ) unfolded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@cache
def page_texts() -> tuple[str, ...]:
    """Each page's text: by poppler's pdftotext where installed (about 2 s for the book;
    pypdf's pure-Python extraction, the fallback, takes 15 times longer)."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        return tuple(norm(page.extract_text() or "") for page in reader().pages)
    out = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(PDF), "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    pages = out.split("\f")  # pdftotext ends every page with a form feed
    if pages and not pages[-1].strip():
        pages.pop()
    assert len(pages) == len(reader().pages), (len(pages), len(reader().pages))
    return tuple(norm(text) for text in pages)


def chapter_titles() -> list[str]:
    """The ``# Title`` of every chapter notebook and page in the table of contents."""
    titles = []
    for doc in toc_files():
        nb, md = SOURCE / f"{doc}.ipynb", SOURCE / f"{doc}.md"
        if nb.is_file():
            cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        else:
            text = md.read_text(encoding="utf-8")
        heading = re.search(r"^# (.+)$", text, re.MULTILINE)
        assert heading, f"{doc} has no '# title'"
        titles.append(norm(re.sub(r"[*_`]", "", heading.group(1))))
    return titles


def test_page_count():
    pages = len(reader().pages)
    docs = len(toc_files())
    # each chapter starts on a new page after a contents page; a course this size is
    # well over 5 pages a document, and a runaway layout (one line a page) far more
    assert 5 * docs <= pages <= 1500, f"{PDF} has {pages} pages for {docs} documents"


def test_every_chapter_title_is_in_it_in_order():
    texts = page_texts()
    found, last = [], 0
    for title in chapter_titles():
        # the first page at or after the previous chapter's that carries the title
        where = next((i for i in range(last, len(texts)) if title in texts[i]), None)
        found.append((title, where))
        if where is not None:
            last = where
    missing = [t for t, w in found if w is None]
    assert not missing, f"chapter titles not found in {PDF} (in reading order): {missing}"


@pytest.mark.parametrize("raw", RAW_TEX)
def test_no_raw_tex_left(raw):
    hits = [i + 1 for i, text in enumerate(page_texts()) if raw in text]
    assert not hits, f"{raw!r} printed on pages {hits[:10]} of {PDF}: not typeset"


@pytest.mark.parametrize("pattern", RAW_MERMAID)
def test_no_raw_diagram_source_left(pattern):
    hits = [i + 1 for i, text in enumerate(page_texts()) if re.search(pattern, text)]
    assert not hits, f"mermaid source ({pattern}) printed on pages {hits[:10]} of {PDF}"


def test_raw_diagram_patterns_match_mermaid_source():
    source = 'graph LR FULL["Full network"] -->|"mask"| DROP["Thinned"] style FULL fill:#4a9eff'
    assert all(re.search(p, source) for p in RAW_MERMAID)


def _internal_links():
    r = reader()
    named = r.named_destinations
    links, broken = 0, []
    for number, page in enumerate(r.pages, start=1):
        for annot in page.get("/Annots") or []:
            annot = annot.get_object()
            if annot.get("/Subtype") != "/Link":
                continue
            action = annot.get("/A")
            dest = annot.get("/Dest")
            if action is not None and action.get_object().get("/S") == "/GoTo":
                dest = action.get_object().get("/D")
            if dest is None:
                continue  # a link to a file or a web page
            links += 1
            if isinstance(dest, str) or hasattr(dest, "original_bytes"):
                if str(dest) not in named:
                    broken.append(f"page {number}: destination {dest!r} not in the PDF")
            else:
                target = dest[0].get_object() if len(dest) else None
                if target is None or target.indirect_reference not in {
                    p.indirect_reference for p in r.pages
                }:
                    broken.append(f"page {number}: link to no page of the PDF")
    return links, broken


def test_internal_links_work():
    links, broken = _internal_links()
    assert links >= len(notebook_chapters()), f"only {links} internal links in {PDF}"
    assert not broken, f"{len(broken)} of {links} internal links broken: {broken[:10]}"


def _link_targets() -> list[tuple[int, int]]:
    """(page of the link, page it goes to) for every internal link, 0-based."""
    r = reader()
    pages = {p.indirect_reference: i for i, p in enumerate(r.pages)}
    named = r.named_destinations
    found = []
    for number, page in enumerate(r.pages):
        for annot in page.get("/Annots") or []:
            annot = annot.get_object()
            if annot.get("/Subtype") != "/Link":
                continue
            dest, action = annot.get("/Dest"), annot.get("/A")
            if action is not None and action.get_object().get("/S") == "/GoTo":
                dest = action.get_object().get("/D")
            if dest is None:
                continue
            if not isinstance(dest, list) and not hasattr(dest, "indirect_reference"):
                dest = named.get(str(dest))
                target = r.get_destination_page_number(dest) if dest is not None else None
            else:
                target = pages.get(dest[0].indirect_reference) if len(dest) else None
            if target is not None:
                found.append((number, target))
    return found


def test_contents_and_outline_list_every_chapter():
    r = reader()
    outline = []

    def walk(items):
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                outline.append(
                    (norm(item.title).replace(" ", ""), r.get_destination_page_number(item))
                )

    walk(r.outline)
    chapters = {}
    for title in chapter_titles()[1:]:
        # Chromium's outline drops the space where a heading wrapped: compare without spaces
        pages = [page for entry, page in outline if title.replace(" ", "") in entry]
        assert pages, f"{title!r} not in the PDF outline"
        chapters[title] = pages[0]
    contents = range(min(chapters.values()))  # the pages before the first chapter
    links = _link_targets()
    for title, page in chapters.items():
        assert title in page_texts()[page], f"outline entry {title!r} goes to page {page + 1}"
        assert any(src in contents and dest == page for src, dest in links), (
            f"the printed contents has no link to {title!r} (page {page + 1})"
        )


def _image_count(page) -> int:
    """Image objects drawn on a page (counted in its resources, not decoded)."""
    xobjects = (page.get("/Resources") or {}).get("/XObject") or {}
    count = 0
    for ref in xobjects.values():
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            count += 1
        elif obj.get("/Subtype") == "/Form":  # Chromium may wrap images in form objects
            inner = (obj.get("/Resources") or {}).get("/XObject") or {}
            count += sum(1 for r in inner.values() if r.get_object().get("/Subtype") == "/Image")
    return count


def test_figures_and_diagrams_are_printed():
    html = (SINGLE / "regcourse-print.html").read_text(encoding="utf-8")
    figures = len(re.findall(r'<img[^>]*src="_images/', html))
    images = sum(_image_count(page) for page in reader().pages)
    assert images >= figures, f"{images} images in {PDF}, {figures} figures in the course"
    # every diagram's labels are text in the PDF (mermaid drew them; none left as source)
    text = " ".join(page_texts())
    missing = []
    for block in re.findall(r'<pre[^>]*class="mermaid"[^>]*>(.*?)</pre>', html, re.DOTALL):
        labels = [
            norm(re.sub(r"<br\s*/?>|&lt;br\s*/?&gt;", " ", m))
            for m in re.findall(r'\["([^"]+)"\]', block)
        ]
        words = [w for label in labels for w in re.findall(r"[A-Za-z]{5,}", label)]
        if words and not any(w in text for w in words):
            missing.append(labels[:2])
    assert not missing, f"diagrams whose labels are not in {PDF}: {missing}"


SCREENSHOTS = PDF.parent.parent / "screenshots" / "pdf"


def test_first_pages_as_pictures():
    # For people to look at (the contents page, the first chapter), and a check that they
    # are not blank. Rendered by poppler's pdftoppm (Debian poppler-utils) when installed.

    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm not installed (apt-get install poppler-utils): no page pictures")
    reader()  # fails clearly when there is no PDF
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("page-*.png"):
        old.unlink()
    subprocess.run(
        [pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "4", str(PDF), str(SCREENSHOTS / "page")],
        check=True,
    )
    shots = sorted(SCREENSHOTS.glob("page-*.png"))
    assert len(shots) == 4, f"expected 4 page pictures in {SCREENSHOTS}, got {shots}"
    # a page with text is far larger than a blank page's PNG (a few hundred bytes)
    assert all(s.stat().st_size > 5_000 for s in shots), [s.stat().st_size for s in shots]
