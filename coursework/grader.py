"""Grade a submitted notebook against a chapter's hidden tests.

The submission's code runs in a separate worker process (``_worker.py``); the
hidden tests run here, in the grader's process, and reach the student's code
only through :class:`Student` (fetch a value, call a function). See
``book/instructor_guide.md`` for the security model.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import _worker
from .notebook import _EXERCISE, _LABEL
from .spec import Chapter, NotAnswered

__all__ = ["grade", "load_chapters", "GradingError", "StudentError", "StudentTimeout"]

TESTS_DIR = Path(__file__).resolve().parent / "tests"
WORKER = Path(_worker.__file__).resolve()
STARTUP_TIMEOUT = 120.0
END_TIMEOUT = 10.0


class GradingError(RuntimeError):
    """The grader itself cannot proceed (no such chapter, unreadable notebook)."""


class StudentError(AssertionError):
    """The student's code raised, or the name it should define is missing."""


class StudentTimeout(Exception):
    """The exercise's time limit ran out while the student's code was running."""


class WorkerDied(Exception):
    """The worker (or the forked child) exited while we waited for an answer."""


# --- hidden test files -------------------------------------------------------


def load_chapters(tests_dir: Path = TESTS_DIR) -> dict[str, Chapter]:
    """Import every ``<tests_dir>/<chapter>.py`` and return ``{chapter: Chapter}``."""
    chapters = {}
    tests_dir = Path(tests_dir).resolve()
    for path in sorted(tests_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if tests_dir == TESTS_DIR:
            module = importlib.import_module(f"coursework.tests.{path.stem}")
        else:  # another folder of hidden tests (the grader's own tests use one)
            spec = importlib.util.spec_from_file_location(f"_coursework_hidden_{abs(hash(str(path)))}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        chapter = getattr(module, "CHAPTER", None)
        if not isinstance(chapter, Chapter):
            raise GradingError(f"{path} defines no CHAPTER = Chapter(...)")
        if chapter.name != path.stem:
            raise GradingError(f"{path} describes chapter {chapter.name!r}; name the file {chapter.name}.py")
        chapters[chapter.name] = chapter
    return chapters


def notebook_labels(nb) -> set[str]:
    labels = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown" and _EXERCISE.search(cell.source):
            found = _LABEL.search(cell.source)
            if found:
                labels.add(found["label"])
    return labels


def find_chapter(nb, path: Path, chapters: dict[str, Chapter], name: str | None) -> Chapter:
    if name is not None:
        if name not in chapters:
            raise GradingError(f"no hidden tests for chapter {name!r}; known: {', '.join(sorted(chapters))}")
        return chapters[name]
    meta = nb.metadata.get("coursework", {})
    if isinstance(meta, dict) and meta.get("chapter") in chapters:
        return chapters[meta["chapter"]]
    labels = notebook_labels(nb)
    matches = [c for c in chapters.values() if labels & set(c.exercises)]
    if len(matches) == 1:
        return matches[0]
    if path.stem in chapters:
        return chapters[path.stem]
    raise GradingError(f"cannot tell which chapter {path} is; pass --chapter "
                       f"(one of {', '.join(sorted(chapters))})")


# --- the worker process --------------------------------------------------------


def _clean_env(scratch: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({
        "TMPDIR": str(scratch), "IPYTHONDIR": str(scratch / ".ipython"), "MPLBACKEND": "Agg",
        "REGCOURSE_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def _package_read_paths() -> list[str]:
    """Folders the student's code must read besides the system and sys.path: our package, matplotlib's caches."""
    import matplotlib

    spec = importlib.util.find_spec("regcourse")   # its folder, without importing torch
    paths = [str(Path(p).resolve()) for p in (spec.submodule_search_locations or [])] if spec else []
    for getter in (matplotlib.get_configdir, matplotlib.get_cachedir):
        try:
            paths.append(getter())
        except Exception:  # noqa: BLE001 - an unwritable home: nothing to allow
            pass
    return paths


class Worker:
    """One worker process: runs cells, forks a child per hidden test."""

    def __init__(self, scratch: Path, sandbox: bool, hidden: Path = TESTS_DIR):
        self.scratch = scratch
        config = {
            "log": str(scratch / "output.log"), "scratch": str(scratch), "sandbox": sandbox,
            "read": _package_read_paths() if sandbox else [], "hidden": [str(hidden)],
        }
        stderr = open(scratch / "output.log", "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(WORKER), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=scratch,
            env=_clean_env(scratch), start_new_session=True,
        )
        stderr.close()
        self._buffer = b""
        self.child: int | None = None
        self.alive = True
        try:
            hello = self._read(time.monotonic() + STARTUP_TIMEOUT, "ready")
        except (StudentTimeout, WorkerDied) as exc:
            self.close()
            raise GradingError(f"the grading worker did not start ({exc}); see {scratch / 'output.log'}") from None
        self.sandbox = hello.get("sandbox", "none")

    # low-level I/O with deadlines
    def _send(self, message: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.alive = False
            raise WorkerDied("the worker is gone") from None

    def _read(self, deadline: float, key: str | None = None) -> dict:
        """The next well-formed JSON object (containing ``key``, if given) before ``deadline``."""
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # half a line from a killed child, or noise
                if isinstance(message, dict) and (key is None or key in message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StudentTimeout()
            ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.alive = False
                    raise WorkerDied("the worker exited")
                self._buffer += chunk
                if len(self._buffer) > 256 << 20:
                    raise WorkerDied("the worker sent more than 256 MB")

    def run_cell(self, code: str, timeout: float) -> dict:
        self._send({"op": "exec", "code": code})
        return self._read(time.monotonic() + timeout, "ok")

    def fork(self, deadline: float) -> None:
        self._send({"op": "fork"})
        try:
            self.child = int(self._read(deadline, "child")["child"])
        except StudentTimeout:
            self.close()  # a child we do not know may exist: start over with a fresh worker
            raise

    def request(self, message: dict, deadline: float) -> dict:
        self._send(message)
        while True:
            try:
                reply = self._read(deadline)
            except WorkerDied:
                raise
            if "ok" in reply:
                return reply
            if "ended" in reply:
                self.child = None
                raise WorkerDied("your code ended the process (os._exit, a crash, or a signal)")

    def end_child(self) -> None:
        """Stop the current child (kill it if it is still busy) and wait until the worker reports it."""
        if self.child is None:
            return
        try:
            os.kill(self.child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.child = None
        self._read(time.monotonic() + END_TIMEOUT, "ended")

    def close(self) -> None:
        self.alive = False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class Student:
    """What a hidden test sees of the submission: its values and functions, by name."""

    def __init__(self, worker: Worker, deadline: float):
        self._worker, self._deadline = worker, deadline

    def _ask(self, message: dict):
        reply = self._worker.request(message, self._deadline)
        if reply.get("ok"):
            return _worker.decode(reply["value"])
        if reply.get("missing"):
            raise NotAnswered(f"`{message['name']}` is not defined (did its cell run without error?)")
        raise StudentError(f"your code raised {reply.get('error')}")

    def value(self, name: str, *path):
        """The submission's variable ``name`` (a copy); NotAnswered if missing or still ``...``.

        ``path`` reaches inside it: ``value("clean", "extra", "best_epoch")`` is
        ``clean.extra["best_epoch"]`` (an item of a dict, list or tuple, else an attribute).
        """
        if not all(isinstance(k, (str, int)) for k in path):
            raise TypeError(f"path must hold str and int keys, got {path!r}")
        value = self._ask({"op": "value", "name": name, "path": list(path)})
        if value is Ellipsis:
            raise NotAnswered(f"`{name}` is still `...`: replace it with your answer")
        return value

    def call(self, name: str, *args, **kwargs):
        """Call the submission's function ``name`` on copies of the arguments; return a copy of the result."""
        return self._ask({"op": "call", "name": name, "args": [_worker.encode(a) for a in args],
                          "kwargs": {k: _worker.encode(v) for k, v in kwargs.items()}})


# --- running the submission ------------------------------------------------------


@dataclass
class Cell:
    index: int      # position in the notebook's cells
    source: str
    status: str = "not run"   # ok | error | timeout | crashed
    error: str | None = None


class Submission:
    """The submission's code cells executed in a worker; restarts the worker around bad cells."""

    def __init__(self, cells: list[Cell], scratch: Path, cell_timeout: float, sandbox: bool,
                 hidden: Path = TESTS_DIR):
        self.cells, self.scratch, self.hidden = cells, scratch, hidden
        self.cell_timeout, self.use_sandbox = cell_timeout, sandbox
        self.bad: set[int] = set()   # cells that hung or killed the worker: never run again
        self.worker: Worker | None = None

    def _run(self, k: int, record: bool) -> bool:
        """Run cell ``k``; False if it hung or killed the worker (which is then closed)."""
        cell = self.cells[k]
        try:
            reply = self.worker.run_cell(cell.source, self.cell_timeout)
        except (StudentTimeout, WorkerDied) as exc:
            cell.status = "timeout" if isinstance(exc, StudentTimeout) else "crashed"
            cell.error = (f"cell still running after {self.cell_timeout:g} s: stopped"
                          if cell.status == "timeout" else f"the cell ended the process: {exc}")
            self.bad.add(k)
            self.worker.close()
            self.worker = None
            return False
        if record:
            cell.status, cell.error = ("ok", None) if reply["ok"] else ("error", reply["error"])
        return True

    def start(self, upto: int) -> None:
        """A fresh worker with cells ``0 .. upto-1`` (except bad ones) executed again."""
        while True:
            if self.worker is not None:
                self.worker.close()
            self.worker = Worker(self.scratch, self.use_sandbox, self.hidden)
            if all(self._run(k, record=False) for k in range(upto) if k not in self.bad):
                return

    def execute(self) -> None:
        self.start(0)
        for k in range(len(self.cells)):
            if not self._run(k, record=True):
                self.start(k + 1)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def _code_cells(nb) -> list[Cell]:
    return [Cell(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]


def _forbidden_uses(cells: list[Cell], functions, forbid) -> dict[str, list[str]]:
    """For each function named in ``functions``, the forbidden names its last definition uses."""
    if not functions or not forbid:
        return {}
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    defs = {}
    for cell in cells:
        try:
            tree = ast.parse(transform(cell.source))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in functions:
                defs[node.name] = node
    found = {}
    for name, node in defs.items():
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        used |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
        bad = sorted(used & set(forbid))
        if bad:
            found[name] = bad
    return found


def _grade_exercise(sub: Submission, ex, timeout: float) -> dict:
    limit = ex.timeout if ex.timeout is not None else timeout
    deadline = time.monotonic() + limit
    results, timed_out = [], False
    for test in ex.tests:
        entry = {"name": test.name, "points": test.points, "score": 0.0, "passed": False, "message": ""}
        results.append(entry)
        if timed_out or time.monotonic() >= deadline:
            timed_out = True
            entry["message"] = f"not run: the exercise's time limit of {limit:g} s was used up"
            continue
        try:
            if sub.worker is None or not sub.worker.alive:
                sub.start(len(sub.cells))
            sub.worker.fork(deadline)
            test.func(Student(sub.worker, deadline))
        except StudentTimeout:
            timed_out = True
            entry["message"] = f"time limit of {limit:g} s exceeded (an endless loop?)"
        except (NotAnswered, StudentError, WorkerDied) as exc:
            entry["message"] = str(exc)
        except AssertionError as exc:
            entry["message"] = str(exc) or "wrong result"
        except Exception as exc:  # noqa: BLE001 - e.g. a value of the wrong type inside the test's arithmetic
            entry["message"] = f"wrong kind of value ({type(exc).__name__}: {exc})"[:500]
        else:
            entry["passed"], entry["score"] = True, test.points
        finally:
            if sub.worker is not None and sub.worker.alive:
                try:
                    sub.worker.end_child()
                except (StudentTimeout, WorkerDied):
                    sub.close()  # the worker itself is stuck: the next test starts a fresh one
            elif sub.worker is not None:
                sub.close()
    score = sum(r["score"] for r in results)
    note = None
    forbidden = _forbidden_uses(sub.cells, ex.functions, ex.forbid)
    if forbidden:
        score = 0.0
        note = "; ".join(f"`{f}` uses {', '.join(f'`{n}`' for n in names)}, which this exercise asks you "
                         "to write yourself: 0 points" for f, names in forbidden.items())
    status = "timeout" if timed_out else ("full" if score == ex.max_score else "partial" if score else "zero")
    return {"label": ex.label, "title": ex.title, "score": score, "max_score": ex.max_score,
            "status": status, "time_limit": limit, "note": note, "manual": ex.manual, "tests": results}


def grade(path, *, chapter: str | None = None, timeout: float = 20.0, cell_timeout: float = 120.0,
          sandbox: bool = True, tests_dir: Path = TESTS_DIR) -> dict:
    """Grade the notebook at ``path``; return the report (see the instructor guide for its shape)."""
    path = Path(path)
    if not timeout > 0 or not cell_timeout > 0:
        raise ValueError(f"timeouts must be positive, got timeout={timeout!r}, cell_timeout={cell_timeout!r}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - not JSON, not a notebook, unreadable
        raise GradingError(f"cannot read the notebook {path}: {exc}") from None
    chapters = load_chapters(tests_dir)
    spec = find_chapter(nb, path, chapters, chapter)
    cells = _code_cells(nb)
    scratch = Path(tempfile.mkdtemp(prefix="coursework-grade-"))
    sub = Submission(cells, scratch, cell_timeout, sandbox, Path(tests_dir).resolve())
    try:
        sub.execute()
        sandbox_used = sub.worker.sandbox if sub.worker is not None else "none"
        exercises = [_grade_exercise(sub, ex, timeout) for ex in spec.exercises.values()]
    finally:
        sub.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "submission": str(path),
        "chapter": spec.name,
        "score": sum(e["score"] for e in exercises),
        "max_score": sum(e["max_score"] for e in exercises),
        "sandbox": sandbox_used,
        "exercises": exercises,
        "manual": [{"label": e["label"], "what": e["manual"]} for e in exercises if e["manual"]],
        "cells": [{"cell": c.index, "status": c.status, "error": c.error} for c in cells],
    }


def format_report(report: dict) -> str:
    """The report as a short text table."""
    def pts(x):
        return f"{x:g}"

    lines = [f"{report['submission']}: chapter {report['chapter']} (sandbox: {report['sandbox']})"]
    for e in report["exercises"]:
        lines.append(f"  {e['label']:<8} {e['title'][:44]:<44} {pts(e['score']):>4} / {pts(e['max_score'])}")
        for t in e["tests"]:
            if not t["passed"]:
                lines.append(f"           - {t['name']}: {t['message']}"[:300])
        if e["note"]:
            lines.append(f"           ! {e['note']}")
    lines.append(f"  total {pts(report['score'])} / {pts(report['max_score'])} (automatic)")
    for m in report["manual"]:
        lines.append(f"  to grade by hand: {m['label']}: {m['what']}")
    failed = [c for c in report["cells"] if c["status"] != "ok"]
    if failed:
        lines.append(f"  cells that did not run cleanly: " + ", ".join(
            f"{c['cell']} ({c['status']}: {(c['error'] or '')[:60]})" for c in failed[:8]))
    return "\n".join(lines)
