"""Gradescope: write a chapter's autograder bundle, and run it for one submission.

Gradescope's autograder format (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
a zip file with ``setup.sh`` (run once, as root, when Gradescope builds the autograder's
Ubuntu image) and ``run_autograder`` (run as root for every submission, from
``/autograder``) at its root; Gradescope unpacks the zip into ``/autograder/source``,
puts the student's files into ``/autograder/submission/`` and
``/autograder/submission_metadata.json``, and reads ``/autograder/results/results.json``:

    {"score": 5.0, "execution_time": 41, "output": "...", "stdout_visibility": "hidden",
     "extra_data": {...},
     "tests": [{"name": "do-ex2: Implement inverted dropout", "score": 4.0, "max_score": 4.0,
                "output": "...", "visibility": "visible"}, ...]}

:func:`write_bundle` writes such a zip: ``setup.sh``, ``run_autograder``, the grader
(``coursework/`` without the hidden tests of other chapters), the chapter's hidden tests
(``hidden/<chapter>.py``), the ``regcourse`` package's source (``package/``), the pinned
environment (``requirements.txt``: the learner's set ``requirements/run.txt`` plus the pins
of IPython and nbformat, which the grader needs), ``config.json`` and, if given, the
course ``secret`` for per-student numbers. :func:`run_autograder` is what the bundle's
``run_autograder`` calls; every path it uses can be moved for a test with the environment
variables ``COURSEWORK_AUTOGRADER_ROOT`` (instead of ``/autograder``) and
``COURSEWORK_PYTHON`` (instead of ``/autograder/venv/bin/python``).
"""

from __future__ import annotations

import json
import os
import time
import traceback
import zipfile
from pathlib import Path

from .protocol import clean_text

__all__ = ["write_bundle", "run_autograder", "results_for", "requirements"]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).resolve().parent
VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu; choose
# the Ubuntu 24.04 base image: its bubblewrap 0.9 has every option the sandbox uses).
# It installs bubblewrap (the sandbox the students' code runs in), a Python >= 3.11, and the
# pinned environment of requirements.txt into /autograder/venv.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap util-linux ca-certificates >/dev/null
PY=""
for p in python3.13 python3.12 python3.11 python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY=$(command -v "$p"); break
  fi
done
if [ -z "$PY" ]; then   # Ubuntu 22.04: Python 3.10 by default, 3.11 in universe
  apt-get install -y -qq --no-install-recommends python3.11 >/dev/null
  PY=$(command -v python3.11)
fi
VER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
apt-get install -y -qq --no-install-recommends "python$VER-venv" >/dev/null || true
"$PY" -m venv /autograder/venv
PIP="/autograder/venv/bin/python -m pip --disable-pip-version-check --no-cache-dir"
# torch's CPU build from PyTorch's own index (PyPI's default build pulls CUDA, several GB)
$PIP install --quiet --index-url https://download.pytorch.org/whl/cpu "$(grep '^torch==' requirements.txt)"
$PIP install --quiet -r requirements.txt
$PIP install --quiet --no-deps ./package
# The hidden tests and the secret: root's only (the sandbox does not mount them at all; the
# worker script coursework/_worker.py must stay readable: the sandbox's user runs it).
chmod -R go-rwx hidden
[ ! -e secret ] || chmod go-rwx secret
# Say in the build log whether the sandbox works in this container (run_autograder checks again).
cd /autograder/source
if ! /autograder/venv/bin/python -m coursework check-sandbox; then
  echo "WARNING: no bubblewrap sandbox in this container: run_autograder will refuse to grade" \
       "(see config.json if_no_sandbox and the instructor guide)"
fi
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this as root, from /autograder, for every submission: it grades the notebook
# in /autograder/submission/ and writes /autograder/results/results.json (see README.md here).
# For a test outside Gradescope: COURSEWORK_AUTOGRADER_ROOT replaces /autograder and
# COURSEWORK_PYTHON the environment setup.sh made.
root="${COURSEWORK_AUTOGRADER_ROOT:-/autograder}"
python="${COURSEWORK_PYTHON:-$root/venv/bin/python}"
cd "$root/source" || exit 1
exec "$python" -s -m coursework gradescope-run --root "$root" --source "$root/source"
"""

README = """# Autograder for the chapter {chapter} of "Regularization for deep networks"

Made by `python -m coursework gradescope {chapter}` (grader {version}). Upload this zip as the
autograder of a Gradescope programming assignment (Ubuntu 24.04 base image). Students submit
their notebook `{chapter}.ipynb`.

- `setup.sh`: installs bubblewrap, Python >= 3.11 and `requirements.txt` into /autograder/venv.
- `run_autograder`: grades /autograder/submission/*.ipynb in the bubblewrap sandbox, writes
  /autograder/results/results.json: one test per exercise (score, max_score, the failed hidden
  tests' messages as output), the total, and what a human still has to grade.
- `coursework/`: the grader; `hidden/{chapter}.py`: the hidden tests; `package/`: regcourse.
- `config.json`: the grading options; `secret` (if present): the course secret that seeds the
  students' own numbers. Keep this zip private.
"""


# --- the pinned environment ---------------------------------------------------------------------


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def requirements(run_txt: Path = ROOT / "requirements" / "run.txt") -> str:
    """``run.txt``'s pins plus exact pins of what the grader imports beyond them (IPython, nbformat).

    The extra pins are the versions installed here (the development set, ``requirements/dev.txt``),
    with their dependencies, found from the installed packages' metadata.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    lines = [
        ln.strip()
        for ln in run_txt.read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    pinned = {_canonical(ln.split("==")[0]) for ln in lines}
    extra, todo = {}, ["ipython", "nbformat"]
    while todo:
        name = todo.pop()
        if _canonical(name) in pinned or _canonical(name) in extra:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        extra[_canonical(name)] = f"{dist.metadata['Name']}=={dist.version}"
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    header = [
        "# The learner's pinned set (requirements/run.txt) and, below it, what the grader adds.",
        "# torch is installed first from PyTorch's CPU index by setup.sh.",
    ]
    return (
        "\n".join(
            header
            + lines
            + ["# the grader: IPython (runs the cells) and nbformat (student versions)"]
            + sorted(extra.values(), key=str.lower)
        )
        + "\n"
    )


# --- the bundle -----------------------------------------------------------------------------------


def _add(zf: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(
        name, date_time=(2020, 1, 1, 0, 0, 0)
    )  # fixed: the same inputs give the same zip
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def write_bundle(
    chapter: str,
    out: Path,
    *,
    tests_dir: Path | None = None,
    secret: bytes | None = None,
    student_field: str = "email",
    options: dict | None = None,
    if_no_sandbox: str = "refuse",
    visibility: str = "visible",
) -> Path:
    """Write Gradescope's autograder zip for ``chapter`` to ``out``; return ``out``.

    Args:
        chapter: the chapter's name; its hidden tests are ``<tests_dir>/<chapter>.py``.
        out: the zip file to write.
        tests_dir: the folder of hidden tests (default: ``coursework/tests``).
        secret: the course secret (bytes), stored in the bundle so that ``run_autograder``
            grades each student against their own numbers.
        student_field: the field of ``submission_metadata.json``'s ``users[0]`` that is the
            student's id (``email``, ``sid``, ``id`` or ``name``): the id the roster used.
        options: ``timeout``, ``cell_timeout``, ``notebook_timeout`` (seconds).
        if_no_sandbox: ``"refuse"`` (score 0 and a message) or ``"unsandboxed"`` (grade
            without the sandbox: trusted submissions only).
        visibility: Gradescope's visibility of the per-exercise tests.
    """
    from . import grader

    if student_field not in ("email", "sid", "id", "name"):
        raise ValueError(f"student_field must be email, sid, id or name, got {student_field!r}")
    if if_no_sandbox not in ("refuse", "unsandboxed"):
        raise ValueError(f"if_no_sandbox must be 'refuse' or 'unsandboxed', got {if_no_sandbox!r}")
    if visibility not in VISIBILITY:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITY)}, got {visibility!r}")
    tests_dir = Path(tests_dir) if tests_dir is not None else grader.TESTS_DIR
    chapters = grader.load_chapters(tests_dir)
    if chapter not in chapters:
        raise grader.GradingError(
            f"no hidden tests for chapter {chapter!r} in {tests_dir}; known: "
            f"{', '.join(sorted(chapters))}"
        )
    options = {"timeout": 20.0, "cell_timeout": 120.0, "notebook_timeout": 900.0, **(options or {})}
    for key in ("timeout", "cell_timeout", "notebook_timeout"):
        options[key] = grader._positive(key, options[key])
    config = {
        "chapter": chapter,
        "student_field": student_field,
        "if_no_sandbox": if_no_sandbox,
        "visibility": visibility,
        "grader": grader.VERSION,
        **options,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add(zf, "setup.sh", SETUP_SH.encode(), 0o755)
        _add(zf, "run_autograder", RUN_AUTOGRADER.encode(), 0o755)
        _add(zf, "README.md", README.format(chapter=chapter, version=grader.VERSION).encode())
        _add(zf, "config.json", (json.dumps(config, indent=2) + "\n").encode())
        _add(zf, "requirements.txt", requirements().encode())
        for path in sorted(PACKAGE.glob("*.py")):
            _add(zf, f"coursework/{path.name}", path.read_bytes())
        _add(zf, f"hidden/{chapter}.py", (tests_dir / f"{chapter}.py").read_bytes(), 0o600)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            _add(zf, f"package/{name}", (ROOT / name).read_bytes())
        for path in sorted((ROOT / "regcourse").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                _add(zf, f"package/{path.relative_to(ROOT)}", path.read_bytes())
        if secret is not None:
            _add(zf, "secret", secret + b"\n", 0o600)
    os.replace(tmp, out)
    return out


# --- running it for one submission -----------------------------------------------------------------


def _find_notebook(folder: Path, chapter: str) -> tuple[Path | None, str]:
    """The submitted notebook: ``<chapter>.ipynb`` if present, else the only ``.ipynb``; (None, why) if not."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        found += [
            Path(top) / f for f in sorted(files) if f.endswith(".ipynb") and not f.startswith(".")
        ]
    named = [p for p in found if p.name == f"{chapter}.ipynb"]
    if len(named) == 1:
        return named[0], ""
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no notebook (.ipynb) in the submission: submit your {chapter}.ipynb"
    return None, (
        f"{len(found)} notebooks in the submission and none (or several) named {chapter}.ipynb: "
        "submit only your notebook"
    )


def _student_id(root: Path, field: str) -> str | None:
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        value = meta["users"][0][field]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    if value is None:
        return None
    return str(value).strip() or None


def _points(x: float) -> str:
    return f"{x:g} point" + ("" if x == 1 else "s")


def results_for(report: dict, visibility: str = "visible", seconds: float = 0.0) -> dict:
    """Gradescope's ``results.json`` for a grader report: one test per exercise, and the total."""
    tests = []
    for e in report["exercises"]:
        lines = []
        for t in e["tests"]:
            mark = "passed" if t["passed"] else t.get("outcome", "failed")
            lines.append(f"{t['name']} ({_points(t['points'])}): {mark}")
            if not t["passed"] and t["message"]:
                lines.append(f"    {t['message']}")
        if e["note"]:
            lines.append(("To be checked by hand: " if e.get("review") else "Note: ") + e["note"])
        if e["manual"]:
            lines.append(f"Graded by hand, not in this score: {e['manual']}")
        if e.get("variant"):
            lines.append(f"Your numbers: {json.dumps(e['variant'])}")
        tests.append(
            {
                "name": f"{e['label']}: {e['title']}",
                "score": float(e["score"]),
                "max_score": float(e["max_score"]),
                "output": "\n".join(lines),
                "visibility": visibility,
            }
        )
    summary = [
        f"Chapter {report['chapter']}: {report['score']:g} of {report['max_score']:g} points graded "
        f"automatically ({report['status']})."
    ]
    if report["manual"]:
        summary.append(
            "Graded by hand later: "
            + "; ".join(f"{m['label']}: {m['what']}" for m in report["manual"])
        )
    failed = [c for c in report["cells"] if c["status"] != "ok"]
    for c in failed[:10]:
        summary.append(f"Cell {c['cell']} ({c['status']}): {c['error'] or ''}")
    variant = report.get("variant") or {}
    summary += [f"Note: {n}" for n in variant.get("notes", [])]
    return {
        "score": float(report["score"]),
        "execution_time": int(round(seconds)),
        "output": "\n".join(summary),
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "chapter": report["chapter"],
            "status": report["status"],
            "sandbox": report["sandbox"],
            "student": variant.get("student"),
            "review": report.get("review", []),
        },
    }


def _failure(message: str, seconds: float) -> dict:
    return {
        "score": 0.0,
        "execution_time": int(round(seconds)),
        "output": message,
        "stdout_visibility": "hidden",
        "tests": [],
    }


def run_autograder(root: Path, source: Path | None = None) -> int:
    """Grade the submission under ``root`` (Gradescope's ``/autograder``); always write results.json."""
    from . import grader
    from .classroom import write_atomic

    started = time.monotonic()
    root = Path(root)
    source = Path(source) if source is not None else root / "source"
    results = root / "results" / "results.json"
    try:
        config = json.loads((source / "config.json").read_text())
        chapter = config["chapter"]
        notebook, why = _find_notebook(root / "submission", chapter)
        if notebook is None:
            data = _failure(why, time.monotonic() - started)
        else:
            secret_file = source / "secret"
            secret = secret_file.read_bytes().strip() if secret_file.exists() else None
            student = _student_id(root, config.get("student_field", "email"))
            kwargs = {
                "chapter": chapter,
                "tests_dir": source / "hidden",
                "student": student,
                "secret": secret or None,
                "timeout": config["timeout"],
                "cell_timeout": config["cell_timeout"],
                "notebook_timeout": config["notebook_timeout"],
            }
            try:
                try:
                    report = grader.grade(notebook, **kwargs)
                except grader.NoSandbox as exc:
                    if config.get("if_no_sandbox") != "unsandboxed":
                        raise
                    print(
                        f"WARNING: {exc}; grading WITHOUT the sandbox (if_no_sandbox = unsandboxed)"
                    )
                    report = grader.grade(notebook, sandbox=False, **kwargs)
                print(grader.format_report(report))
                data = results_for(
                    report, config.get("visibility", "visible"), time.monotonic() - started
                )
            except grader.NoSandbox as exc:
                print(f"error: {exc}")
                data = _failure(
                    "The autograder could not start its sandbox on this machine, so your notebook was "
                    "not run. Your instructor has been told; nothing is wrong with your submission.",
                    time.monotonic() - started,
                )
            except grader.GradingError as exc:
                data = _failure(
                    f"Your notebook could not be graded: {clean_text(str(exc), 500)}",
                    time.monotonic() - started,
                )
    except Exception:
        traceback.print_exc()  # Gradescope shows the autograder's stdout to the instructor only
        data = _failure(
            "The autograder failed; your instructor has been told.", time.monotonic() - started
        )
    write_atomic(results, json.dumps(data, indent=2, ensure_ascii=True) + "\n")
    return 0
