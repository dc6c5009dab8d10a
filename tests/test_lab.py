"""The chapters opened in a real JupyterLab: their prose renders as finished text.

Learners execute the notebooks in JupyterLab (``make lab``), not only read the
site. This test starts ``jupyter lab`` from the project's environment on a free
loopback port (no token, a temporary settings folder, a copy of the chapters),
opens every chapter in Debian's chromium, collects the rendered text of every
markdown cell and fails on any raw MyST role or directive, raw LaTeX or HTML
comment, and on a marked number that is not visible in its cell. JupyterLab
renders only the cells in view of a long notebook ("windowing"); the settings
turn that off so every cell is rendered. A screenshot of each chapter lands in
``_build/screenshots/lab/``. The server is stopped by its process id.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from regcourse import notebook as prose

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
SHOTS = ROOT / "_build" / "screenshots" / "lab"
CHROMIUM = "/usr/bin/chromium"

#: Text that must not be visible in a rendered markdown cell.
RAW = [
    ("a MyST role", re.compile(r"\{[a-z][\w:-]*\}`")),
    ("a glue reference", re.compile(r"\{glue")),
    ("a directive fence", re.compile(r"(```|:::)\s*\{")),
    ("a directive option", re.compile(r"^\s*:(label|class|name):", re.M)),
    ("an unrendered display formula", re.compile(r"\$\$|\\begin\{|\\tag\{")),
    ("an HTML comment", re.compile(r"<!--|-->")),
    ("a MyST target", re.compile(r"^\s*\([\w-]+\)=\s*$", re.M)),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the chapters; yields its base URL."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.fail(f"{jupyter} is missing: run `make install`")
    listed = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True)
    if "jupyterlab-myst" not in listed.stdout + listed.stderr:
        pytest.fail("the jupyterlab-myst extension is not installed in .venv: run `make install`")
    work = tmp_path_factory.mktemp("lab")
    notebooks = work / "book"
    notebooks.mkdir()
    for path in CHAPTERS:
        shutil.copy(path, notebooks / path.name)
    shutil.copy(ROOT / "book" / "references.md", notebooks / "references.md")
    settings = work / "settings"
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    # Render every cell (no windowing); the news pop-up stays away.
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
    )
    port = _free_port()
    log = open(work / "lab.log", "wb")  # noqa: SIM115 - closed below
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.news_url=None",
        # loopback only, token-less: let the test shut kernels down through the REST API
        "--ServerApp.disable_check_xsrf=True",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"jupyter lab did not start:\n{(work / 'lab.log').read_text()[-2000:]}"
                    )
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def _stop_kernels(url: str) -> None:
    with urllib.request.urlopen(f"{url}/api/sessions") as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{url}/api/sessions/{s['id']}", method="DELETE")
        urllib.request.urlopen(req)


_COLLECT = """cells => cells.map(c => {
     const md = c.classList.contains('jp-MarkdownCell');
     const out = md ? c.querySelector('.myst') : null;
     // the visible text, without typeset formulas, drawn diagrams and code
     let text = '';
     if (out) {
       const copy = out.cloneNode(true);
       copy.querySelectorAll('.katex, mjx-container, svg, pre, code').forEach(e => e.remove());
       copy.querySelectorAll('p, li, h1, h2, h3, h4, h5, h6, div, tr, br').forEach(
         e => e.append(document.createTextNode('\\n')));
       text = copy.textContent;
     }
     // what jupyterlab-myst draws for MyST it cannot resolve: a role it does not know
     // ({glue:text}`name`) as a bare <span>, a citation or reference it cannot find
     // with a "... Not Found" title; a directive as one of its own boxes
     const unresolved = out ? [...out.querySelectorAll('span')].filter(
         e => e.attributes.length === 0 && e.children.length === 0 && !e.closest('.katex')
              && e.textContent.trim()).map(e => e.textContent)
       .concat([...out.querySelectorAll('[title$="Not Found"]')].map(e => e.title + ': ' + e.textContent))
       .concat([...out.querySelectorAll('.myst-exercise, .myst-fm-block ~ aside, aside.admonition')]
         .map(e => 'a MyST directive box: ' + e.textContent.slice(0, 40))) : [];
     return {md, text, unresolved,
             math: out ? out.querySelectorAll('.katex, mjx-container').length : 0,
             svg: out ? out.querySelectorAll('svg').length : 0};
   })"""


def _open(browser, lab: str, name: str, nb, shots: bool = True) -> tuple[list[dict], list[str]]:
    """Open notebook ``name`` in JupyterLab; the rendered cells and any JavaScript errors."""
    md_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    stem = Path(name).stem
    try:
        # A workspace of its own, reset: only this notebook is open.
        page.goto(f"{lab}/lab/workspaces/{stem}/tree/{name}?reset")
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=90_000)
        # Wait until every markdown cell of the notebook is rendered by jupyterlab-myst.
        page.wait_for_function(
            "n => document.querySelectorAll('.jp-Notebook .jp-MarkdownCell .myst').length >= n",
            arg=len(md_cells),
            timeout=60_000,
        )
        page.wait_for_timeout(1500)  # formulas and diagrams render asynchronously
        rendered = page.eval_on_selector_all(".jp-Notebook .jp-Cell", _COLLECT)
        if shots:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{stem}.png"))
            counts = {i: sum(1 for m in prose.markers(nb) if m.cell == i) for i in md_cells}
            marked = max(md_cells, key=counts.get)
            page.evaluate(
                "i => document.querySelectorAll('.jp-Notebook .jp-Cell')[i].scrollIntoView()",
                marked,
            )
            page.wait_for_timeout(500)
            page.screenshot(path=str(SHOTS / f"{stem}-numbers.png"))
    finally:
        page.close()
        _stop_kernels(lab)
    return rendered, errors


def _problems(nb, rendered: list[dict]) -> list[str]:
    """What a reader would see wrong in the rendered markdown cells of ``nb``."""
    if len(rendered) != len(nb.cells):
        return [f"JupyterLab shows {len(rendered)} cells, the notebook has {len(nb.cells)}"]
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        shown = rendered[i]
        if not shown["md"]:
            problems.append(f"cell {i} is not a markdown cell in JupyterLab")
            continue
        text = shown["text"]
        if not text.strip() and not shown["svg"] and not shown["math"]:
            problems.append(f"cell {i}: renders empty")
        for what, pattern in RAW:
            m = pattern.search(text)
            if m:
                problems.append(
                    f"cell {i}: {what} is visible: {text[max(0, m.start() - 30) : m.end() + 30]!r}"
                )
        for what in shown["unresolved"]:
            problems.append(f"cell {i}: jupyterlab-myst shows unresolved MyST: {what!r}")
        flat = " ".join(text.split())
        for mk in (m for m in prose.markers(nb) if m.cell == i):
            if " ".join(mk.text.split()) not in flat:
                problems.append(f"cell {i}: the number {mk.name} = {mk.text!r} is not visible")
        if "$" in prose.MARKER.sub("", cell.source) and shown["math"] == 0:
            problems.append(f"cell {i}: has formulas but none is typeset")
        if "```mermaid" in cell.source and shown["svg"] == 0:
            problems.append(f"cell {i}: its diagram is not drawn")
    return problems


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_prose_renders_in_jupyterlab(path, lab, browser):
    nb = nbformat.read(path, as_version=4)
    rendered, errors = _open(browser, lab, path.name, nb)
    problems = _problems(nb, rendered)
    assert not problems, (
        f"{path.name} in JupyterLab (screenshot {SHOTS / path.stem}.png):\n  "
        + "\n  ".join(problems)
    )
    assert not errors, f"{path.name}: JavaScript errors in JupyterLab: {errors}"


def test_the_check_sees_raw_markup(lab, browser):
    """A notebook written with MyST roles and directives fails the same check."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Canary\n\nThe penalty is {glue:text}`wd_pen:.4f`, see {cite}`krogh1992`."
        ),
        nbformat.v4.new_markdown_cell(
            "Shown: <!--{x:.2f}-->1.00<!--/--> and a stale <!--{y}-->2<!--/-->."
        ),
    ]
    body = json.dumps({"type": "notebook", "content": json.loads(nbformat.writes(nb))}).encode()
    req = urllib.request.Request(
        f"{lab}/api/contents/zz_canary.ipynb",
        data=body,
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req)
    rendered, _ = _open(browser, lab, "zz_canary.ipynb", nb, shots=False)
    problems = _problems(nb, rendered)
    assert any("unresolved MyST: 'wd_pen:.4f'" in p for p in problems), problems  # the glue role
    assert any("Citation Not Found: krogh1992" in p for p in problems), problems  # the citation
    assert not any(p.startswith("cell 1") for p in problems), problems  # markers render invisibly
