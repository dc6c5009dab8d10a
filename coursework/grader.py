"""Grade a submitted notebook against a chapter's hidden tests.

The submission's code runs in a worker process (``_worker.py``) inside a
bubblewrap sandbox (``sandbox.py``); the hidden tests run here, in the grader's
process, and reach the student's code only through :class:`Student` (fetch a
value, call a function), over pipes the grader owns. Every reply is untrusted
input (``protocol.py``). See ``book/instructor_guide.md`` for the security model.

:func:`grade` is safe to call from several threads or processes at once: each
call has its own pipes, its own sandbox (its own PID, user, network and mount
namespaces and its own scratch tmpfs) and no shared state beyond the read-only
check that bubblewrap works.
"""

from __future__ import annotations

import ast
import copy
import errno
import fcntl
import hashlib
import importlib
import importlib.util
import json
import os
import secrets
import select
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import _worker, sandbox
from .notebook import exercise_labels
from .protocol import BadReply, LineReader, clean_text, decode_value, parse_reply, reply_id
from .sandbox import Limits, SandboxUnavailable
from .spec import Chapter, NotAnswered

__all__ = [
    "grade",
    "format_report",
    "load_chapters",
    "Limits",
    "GradingError",
    "Malformed",
    "NoSandbox",
    "Refused",
    "Cancelled",
    "StudentError",
    "StudentTimeout",
    "VERSION",
]

TESTS_DIR = Path(__file__).resolve().parent / "tests"


def _source_digest() -> str:
    """The grader's version for result caches: a digest of its own source files (not the hidden tests)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


VERSION = _source_digest()
STARTUP_TIMEOUT = 120.0  # seconds for a worker to import IPython and matplotlib on a busy machine
END_TIMEOUT = 10.0  # seconds for the worker to confirm that a test's child is gone
MAX_NOTEBOOK = 64 << 20  # bytes of a submitted notebook
MAX_CELLS = 10_000
MAX_CODE = 8 << 20  # characters of code in all cells together


class GradingError(RuntimeError):
    """The grader cannot grade this submission (unreadable notebook, no such chapter, no sandbox)."""


class NoSandbox(GradingError):
    """No sandbox can be made here, and grading without one was not asked for."""


class Refused(GradingError):
    """The submission is refused unread: a symbolic link, not a regular file, too large, or of no known chapter."""


class Malformed(GradingError):
    """The submission is not a notebook the grader can read (not UTF-8 JSON, or not shaped like a notebook)."""


class Cancelled(BaseException):
    """Grading was stopped from outside (``cancel`` was set: Ctrl-C or a kill of a class run).

    A BaseException, like KeyboardInterrupt, so that no handler for a student's failure
    takes it for one: a cancelled grading has no result.
    """


class StudentError(AssertionError):
    """The student's code raised, or sent something that is not a value."""


class StudentTimeout(Exception):
    """The time limit ran out while the student's code was running."""


class WorkerDied(Exception):
    """The worker (or the forked child) exited, or broke the protocol, while we waited for an answer."""


class NotebookTimeout(Exception):
    """The notebook's own time limit (all cells, restarts and tests together) is used up."""


# --- hidden test files -------------------------------------------------------


def load_chapters(tests_dir: Path = TESTS_DIR) -> dict[str, Chapter]:
    """Import every ``<tests_dir>/<chapter>.py`` and return ``{chapter: Chapter}``."""
    chapters = {}
    tests_dir = Path(tests_dir).resolve()
    if not tests_dir.is_dir():
        raise GradingError(f"no folder of hidden tests at {tests_dir}")
    for path in sorted(tests_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if tests_dir == TESTS_DIR:
            module = importlib.import_module(f"coursework.tests.{path.stem}")
        else:  # another folder of hidden tests (the grader's own tests use one)
            spec = importlib.util.spec_from_file_location(
                f"_coursework_hidden_{abs(hash(str(path)))}", path
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        chapter = getattr(module, "CHAPTER", None)
        if not isinstance(chapter, Chapter):
            raise GradingError(f"{path} defines no CHAPTER = Chapter(...)")
        if chapter.name != path.stem:
            raise GradingError(
                f"{path} describes chapter {chapter.name!r}; name the file {chapter.name}.py"
            )
        chapters[chapter.name] = chapter
    return chapters


# --- reading the submission (untrusted) ------------------------------------------


def read_submission(path: Path) -> dict:
    """The notebook at ``path`` as a dict whose cells the grader can use; GradingError (one line) if not.

    A symbolic link is refused without being followed (its target is not named); so
    is anything that is not a regular file (a FIFO would block), a file larger than
    ``MAX_NOTEBOOK``, text that is not UTF-8 JSON, and a structure that is not a
    notebook: the cells must be a list of objects with a string ``cell_type`` and a
    ``source`` that is a string or a list of strings.
    """
    shown = clean_text(str(path), 200)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(
                f"{shown} is a symbolic link: refused (submit the notebook file itself)"
            ) from None
        if exc.errno == errno.ENOENT:
            raise Refused(f"no such notebook: {shown}") from None
        raise Refused(f"cannot open {shown}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{shown} is not a regular file: refused")
        if info.st_size > MAX_NOTEBOOK:
            raise Refused(f"{shown} is larger than {MAX_NOTEBOOK >> 20} MB: refused")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        chunks, size = [], 0
        while size <= MAX_NOTEBOOK:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_NOTEBOOK:
        raise Refused(f"{shown} is larger than {MAX_NOTEBOOK >> 20} MB: refused")
    try:
        nb = json.loads(b"".join(chunks).decode("utf-8"))
    except UnicodeDecodeError:
        raise Malformed(f"{shown} is not a notebook: not UTF-8 text") from None
    except RecursionError:
        raise Malformed(f"{shown} is not a notebook: JSON nested too deeply") from None
    except ValueError as exc:
        raise Malformed(
            f"{shown} is not a notebook: not JSON ({clean_text(str(exc), 100)})"
        ) from None
    if not isinstance(nb, dict):
        raise Malformed(f"{shown} is not a notebook: the JSON is not an object")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise Malformed(f"{shown} is not a notebook: it has no list of cells")
    if len(cells) > MAX_CELLS:
        raise Malformed(f"{shown} has more than {MAX_CELLS} cells: refused")
    if "metadata" in nb and not isinstance(nb["metadata"], dict):
        raise Malformed(f"{shown} is not a notebook: its metadata is not an object")
    total = 0
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise Malformed(f"{shown} is not a notebook: cell {i} is not an object")
        if not isinstance(cell.get("cell_type"), str):
            raise Malformed(f"{shown} is not a notebook: cell {i} has no cell_type")
        src = cell.get("source", "")
        if isinstance(src, list) and all(isinstance(s, str) for s in src):
            src = "".join(src)
        if not isinstance(src, str):
            raise Malformed(f"{shown} is not a notebook: the source of cell {i} is not text")
        if "metadata" in cell and not isinstance(cell["metadata"], dict):
            raise Malformed(f"{shown} is not a notebook: the metadata of cell {i} is not an object")
        if cell["cell_type"] == "code":
            total += len(src)
    if total > MAX_CODE:
        raise Malformed(f"{shown} has more than {MAX_CODE >> 20} M characters of code: refused")
    return nb


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def find_chapter(nb: dict, path: Path, chapters: dict[str, Chapter], name: str | None) -> Chapter:
    if name is not None:
        if name not in chapters:
            raise Refused(
                f"no hidden tests for chapter {clean_text(name, 100)!r}; "
                f"known: {', '.join(sorted(chapters))}"
            )
        return chapters[name]
    meta = (
        nb.get("metadata", {}).get("coursework", {}) if isinstance(nb.get("metadata"), dict) else {}
    )
    if (
        isinstance(meta, dict)
        and isinstance(meta.get("chapter"), str)
        and meta["chapter"] in chapters
    ):
        return chapters[meta["chapter"]]
    labels = exercise_labels(nb)
    matches = [c for c in chapters.values() if labels & set(c.exercises)]
    if len(matches) == 1:
        return matches[0]
    if path.stem in chapters:
        return chapters[path.stem]
    raise Refused(
        f"cannot tell which chapter {clean_text(str(path), 200)} is; pass --chapter "
        f"(one of {', '.join(sorted(chapters))})"
    )


# --- the worker process --------------------------------------------------------

_font_cache_path: list = []


def _font_cache():
    if not _font_cache_path:
        _font_cache_path.append(sandbox._font_cache())
    return _font_cache_path[0]


def _worker_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": home,
        "USER": "student",
        "LOGNAME": "student",
        "IPYTHONDIR": f"{home}/.ipython",
        "MPLBACKEND": "Agg",
        "REGCOURSE_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
    }


@dataclass
class Options:
    """How one submission is graded (see :func:`grade`)."""

    sandbox: bool
    limits: Limits
    cell_timeout: float
    deadline: float  # time.monotonic() at which the whole notebook's time is up
    notebook_timeout: float
    hidden: Path
    cancel: object = None  # a threading.Event: set, every wait raises Cancelled

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


class Worker:
    """One worker process: runs cells, forks a child per hidden test; killed as a whole by :meth:`close`."""

    def __init__(
        self, opts: Options, prefix_data: bytes | None = None, snapshot_fd: int | None = None
    ):
        """Start a worker; ``prefix_data`` (a :class:`Prefix`'s) is put where its ``restore`` finds it,
        ``snapshot_fd`` (a memfd) is passed to it for ``snapshot`` (only for the reference notebook)."""
        self.opts = opts
        self.alive = False
        self.output = bytearray()  # the first `limits.output` bytes the student's code printed
        self.output_bytes = 0
        self.landlock = ""
        self.child: str | None = None  # id of the fork whose child is running
        self.proc = None
        self._scratch = None
        req_r, self._req = os.pipe()
        self._rep, rep_w = os.pipe()
        ctl_r, self._ctl = os.pipe()
        self._out, out_w = os.pipe()
        ends = [req_r, rep_w, ctl_r, out_w]
        for fd in (self._req, self._rep, self._ctl, self._out):
            os.set_inheritable(fd, False)
            _nonblocking(fd)
        self._lines = LineReader()
        ready = secrets.token_hex(16)
        limits = opts.limits
        config = {
            "fds": {"req": req_r, "rep": rep_w, "ctl": ctl_r},
            "ready": ready,
            "pidns": opts.sandbox,
            "limits": {
                "memory": limits.memory,
                "processes": limits.processes,
                "file_size": limits.file_size,
                "open_files": limits.open_files,
                "cpu": int(opts.notebook_timeout) + 60,
            },
        }
        passed = ends[:3]
        if snapshot_fd is not None:
            config["snapshot_fd"] = snapshot_fd
            passed = passed + [snapshot_fd]
        font_fd = prefix_fd = None
        try:
            if opts.sandbox:
                binds, _ = sandbox.mounts()
                config["landlock"] = {
                    "read": [d for _, d in binds] + ["/etc", "/proc", "/dev", "/opt"],
                    "write": [sandbox.SCRATCH, "/dev/shm", "/dev/null"],
                }
                files = {}
                font = _font_cache()
                if font is not None:
                    font_fd = os.memfd_create("fontlist", 0)
                    os.write(font_fd, font.read_bytes()[: 16 << 20])
                    os.lseek(font_fd, 0, os.SEEK_SET)
                    files[f"{sandbox.SCRATCH}/.cache/matplotlib/{font.name}"] = font_fd
                if prefix_data is not None:
                    prefix_fd = os.memfd_create("prefix", 0)
                    _write_all(prefix_fd, prefix_data)
                    os.lseek(prefix_fd, 0, os.SEEK_SET)
                    config["prefix_file"] = f"{sandbox.SCRATCH}/.coursework-prefix"
                    files[config["prefix_file"]] = prefix_fd
                argv = [sys.executable, "-s", "-P", sandbox.INSIDE_WORKER, json.dumps(config)]
                self.proc = sandbox.start(
                    argv,
                    env=_worker_env(sandbox.SCRATCH),
                    pass_fds=passed,
                    stdout=out_w,
                    limits=limits,
                    files=files,
                )
            else:
                self._scratch = tempfile.mkdtemp(prefix="coursework-scratch-")
                if prefix_data is not None:
                    config["prefix_file"] = os.path.join(self._scratch, ".coursework-prefix")
                    Path(config["prefix_file"]).write_bytes(prefix_data)
                argv = [sys.executable, "-s", "-P", str(sandbox.WORKER), json.dumps(config)]
                self.proc = sandbox.start_unsandboxed(
                    argv,
                    env=_worker_env(self._scratch),
                    pass_fds=passed,
                    stdout=out_w,
                    cwd=self._scratch,
                )
        except BaseException as exc:
            for fd in ends + [self._req, self._rep, self._ctl, self._out]:
                os.close(fd)
            if isinstance(exc, SandboxUnavailable):
                raise NoSandbox(f"no sandbox for untrusted code: {exc}") from None
            raise
        finally:
            for fd in (font_fd, prefix_fd):
                if fd is not None:
                    os.close(fd)
        for fd in ends:
            os.close(fd)
        self.alive = True
        deadline = min(time.monotonic() + STARTUP_TIMEOUT, opts.deadline)
        try:
            hello = self._wait({ready}, deadline)[1]
        except Cancelled:
            self.close()
            raise
        except (StudentTimeout, WorkerDied) as exc:
            tail = clean_text(bytes(self.output[-600:]).decode("utf-8", "replace"), 400)
            self.close()
            if isinstance(exc, StudentTimeout) and time.monotonic() >= opts.deadline:
                raise NotebookTimeout() from None
            raise GradingError(
                f"the grading worker did not start ({exc or 'timed out'}): {tail}"
            ) from None
        self.landlock = hello.get("landlock") if isinstance(hello.get("landlock"), str) else ""

    # --- low-level I/O with deadlines
    def _drain_output(self) -> bool:
        """Read what the student's code printed; keep the first bytes, drop the rest. False at EOF."""
        while True:
            try:
                chunk = os.read(self._out, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self.output_bytes += len(chunk)
            room = self.opts.limits.output - len(self.output)
            if room > 0:
                self.output += chunk[:room]

    def _write(self, fd: int, message: dict, deadline: float) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            self.opts.check_cancel()
            if not self.alive:
                raise WorkerDied("the worker is gone")
            try:
                data = data[os.write(fd, data) :]
                continue
            except BlockingIOError:
                pass
            except OSError:
                self.alive = False
                raise WorkerDied("the worker is gone") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StudentTimeout()
            select.select([], [fd], [], min(remaining, 1.0))

    def _wait(self, ids: set[str], deadline: float) -> tuple[str, dict]:
        """The next reply that carries one of ``ids``, before ``deadline``; everything else is skipped."""
        watch_out = True
        while True:
            self.opts.check_cancel()
            if not self.alive:
                raise WorkerDied("the worker is gone")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StudentTimeout()
            fds = [self._rep] + ([self._out] if watch_out else [])
            ready, _, _ = select.select(fds, [], [], min(remaining, 0.5))
            if self._out in ready:
                watch_out = self._drain_output()
            if self._rep not in ready:
                if (
                    self.proc.popen.poll() is not None
                ):  # without the sandbox, a daemon may keep the pipe open
                    self.alive = False
                    raise WorkerDied("the worker exited")
                continue
            for _ in range(16):  # then back to the deadline check, however fast the worker writes
                try:
                    chunk = os.read(self._rep, 1 << 20)
                except BlockingIOError:
                    break
                except OSError:
                    chunk = b""
                if not chunk:
                    self.alive = False
                    raise WorkerDied("the worker exited")
                for line in self._lines.feed(chunk):
                    rid = reply_id(line)
                    if rid in ids:
                        try:
                            return rid, parse_reply(line)
                        except BadReply as exc:
                            return rid, {"bad": str(exc)}
                if len(chunk) < 1 << 20:
                    break

    def run_cell(self, code: str, deadline: float) -> dict:
        rid = secrets.token_hex(16)
        self._write(self._req, {"id": rid, "op": "exec", "code": code}, deadline)
        return self._wait({rid}, deadline)[1]

    def request_op(self, op: str, deadline: float) -> dict:
        """``restore`` (start from a :class:`Prefix`) or ``snapshot``: the worker's reply."""
        rid = secrets.token_hex(16)
        self._write(self._req, {"id": rid, "op": op}, deadline)
        return self._wait({rid}, deadline)[1]

    def fork(self, deadline: float) -> None:
        rid = secrets.token_hex(16)
        self._write(self._req, {"id": rid, "op": "fork"}, deadline)
        reply = self._wait({rid}, deadline)[1]
        if reply.get("forked") is True:
            self.child = rid
            return
        if "ended" in reply:
            raise WorkerDied("the test's process ended at once")
        raise StudentError(
            f"the test could not start: {clean_text(reply.get('error') or reply.get('bad'), 300)}"
        )

    def request(self, message: dict, deadline: float) -> dict:
        """Send a request to the current child; its reply, or WorkerDied if the child ended first."""
        if self.child is None:
            raise WorkerDied("your code ended the process (os._exit, a crash, or a signal)")
        rid = secrets.token_hex(16)
        self._write(self._req, {"id": rid, **message}, deadline)
        got, reply = self._wait({rid, self.child}, deadline)
        if got == self.child:
            self.child = None
            raise WorkerDied("your code ended the process (os._exit, a crash, or a signal)")
        return reply

    def end_child(self) -> None:
        """Stop the current child and wait until the worker confirms it is gone; WorkerDied/StudentTimeout if not."""
        if self.child is None:
            return
        rid, self.child = self.child, None
        deadline = time.monotonic() + END_TIMEOUT
        self._write(self._ctl, {"id": rid, "op": "end"}, deadline)
        self._wait({rid}, deadline)

    def close(self) -> None:
        self.alive = False
        if self.proc is not None:
            self.proc.kill()
        for fd in (self._req, self._rep, self._ctl, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
        self._req = self._rep = self._ctl = self._out = -1
        if self._scratch:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


class Student:
    """What a hidden test sees of the submission: its values and functions, by name."""

    def __init__(self, worker: Worker, deadline: float, variant: dict | None = None):
        self._worker, self._deadline = worker, deadline
        #: this submission's numbers for the exercise being graded (``Exercise.variants``): the
        #: student's own, drawn from their id, or the published ones; {} for an exercise without variants
        self.variant = copy.deepcopy(variant or {})

    def _ask(self, message: dict):
        reply = self._worker.request(message, self._deadline)
        if "bad" in reply:
            raise StudentError(f"the reply of your code could not be read: {reply['bad']}")
        if reply.get("ok") is True:
            try:
                return decode_value(reply.get("value"))
            except BadReply as exc:
                raise StudentError(
                    f"the value your code returned could not be read: {exc}"
                ) from None
        if reply.get("missing") is True:
            raise NotAnswered(
                f"`{message['name']}` is not defined (did its cell run without error?)"
            )
        raise StudentError(f"your code raised {clean_text(reply.get('error'), 1000)}")

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
        return self._ask(
            {
                "op": "call",
                "name": name,
                "args": [_worker.encode(a) for a in args],
                "kwargs": {k: _worker.encode(v) for k, v in kwargs.items()},
            }
        )

    def describe(self, name: str) -> dict:
        """What the worker says the function ``name`` is (for the ``forbid=`` check; untrusted)."""
        reply = self._worker.request({"op": "describe", "name": name}, self._deadline)
        info = reply.get("describe") if reply.get("ok") is True else None
        return info if isinstance(info, dict) else {}


# --- running the submission ------------------------------------------------------


@dataclass
class Cell:
    index: int  # position in the notebook's cells
    source: str
    status: str = "not run"  # ok | error | timeout | crashed | not run
    error: str | None = None
    restored: bool = False  # not run: its state came from the chapter's shared cells (Prefix)


@dataclass(frozen=True)
class Prefix:
    """The state a chapter's shared cells leave, computed once (:func:`make_prefix`) for many submissions.

    A submission whose first code cells are exactly ``sources`` (the code cells of the reference
    notebook before its first exercise: what every student version has unchanged) starts its
    worker from this state instead of running them: the same namespace, random states and
    settings, restored in its own fresh sandbox before any of its own code runs. ``data`` is a
    compressed cloudpickle made in a sandbox that ran only the reference's cells; the grader never
    unpickles it.
    """

    reference: str
    sources: tuple
    data: bytes
    digest: str


MAX_PREFIX = 512 << 20  # bytes of a prefix's snapshot


class Submission:
    """The submission's code cells executed in a worker; restarts the worker around bad cells."""

    def __init__(self, cells: list[Cell], opts: Options, prefix: Prefix | None = None):
        self.cells, self.opts = cells, opts
        self.bad: set[int] = set()  # cells that hung or killed the worker: never run again
        self.worker: Worker | None = None
        self.workers_started = 0
        self.prefix = prefix  # None: every cell is run
        self.restored = len(prefix.sources) if prefix is not None else 0
        self.prefix_error: str | None = None

    def _deadline(self, limit: float) -> float:
        self.opts.check_cancel()
        now = time.monotonic()
        if now >= self.opts.deadline:
            raise NotebookTimeout()
        return min(now + limit, self.opts.deadline)

    def _run(self, k: int, record: bool) -> bool:
        """Run cell ``k``; False if it hung, killed the worker or broke the protocol (the worker is then closed)."""
        cell = self.cells[k]
        deadline = self._deadline(self.opts.cell_timeout)
        try:
            reply = self.worker.run_cell(cell.source, deadline)
            if "bad" in reply:
                raise WorkerDied(f"the worker's reply could not be read ({reply['bad']})")
        except (StudentTimeout, WorkerDied) as exc:
            self.close()
            if isinstance(exc, StudentTimeout) and time.monotonic() >= self.opts.deadline:
                raise NotebookTimeout() from None
            cell.status = "timeout" if isinstance(exc, StudentTimeout) else "crashed"
            cell.error = (
                f"cell still running after {self.opts.cell_timeout:g} s: stopped"
                if cell.status == "timeout"
                else f"the cell ended the process: {exc}"
            )
            self.bad.add(k)
            return False
        if record:
            ok = reply.get("ok") is True
            cell.status, cell.error = (
                ("ok", None) if ok else ("error", clean_text(reply.get("error"), 1000))
            )
        return True

    def _new_worker(self) -> bool:
        """A fresh worker, started from the prefix if there is one; False if that could not be restored."""
        self.close()
        self._deadline(0)
        self.worker = Worker(
            self.opts, prefix_data=self.prefix.data if self.prefix is not None else None
        )
        self.workers_started += 1
        if self.prefix is None:
            return True
        # as long as starting a worker may take: the restore imports what the shared cells imported
        deadline = self._deadline(max(self.opts.cell_timeout, STARTUP_TIMEOUT))
        try:
            reply = self.worker.request_op("restore", deadline)
        except (StudentTimeout, WorkerDied) as exc:
            reply = {"error": str(exc) or "timed out"}
        if reply.get("ok") is True:
            return True
        self.prefix_error = clean_text(reply.get("error") or reply.get("bad"), 300)
        self.prefix = None  # from now on every cell is run
        self.close()
        return False

    def start(self, upto: int) -> None:
        """A fresh worker with cells ``0 .. upto-1`` (except bad ones) executed again, or restored."""
        while True:
            if not self._new_worker():
                continue
            first = self.restored if self.prefix is not None else 0
            if all(self._run(k, record=False) for k in range(first, upto) if k not in self.bad):
                return

    def execute(self) -> None:
        begin = 0
        if self.prefix is not None and self._new_worker():
            for cell in self.cells[: self.restored]:
                cell.status, cell.error, cell.restored = "ok", None, True
            begin = self.restored
        else:
            self.restored = 0
            self.start(0)
        for k in range(begin, len(self.cells)):
            if not self._run(k, record=True):
                self.start(k + 1)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def make_prefix(
    reference,
    *,
    sandbox: bool = True,
    limits: Limits | None = None,
    cell_timeout: float = 120.0,
    notebook_timeout: float = 900.0,
    cancel=None,
) -> Prefix:
    """Run the shared cells of the notebook ``reference`` (the book's chapter) once, in a sandbox;
    return their state as a :class:`Prefix` (GradingError with the reason if a cell fails).

    The shared cells are the code cells before the first exercise: a student version has them
    unchanged. Only the reference's cells run in that sandbox, never a student's.
    """
    import dataclasses

    from .notebook import first_exercise_cell

    limits = Limits() if limits is None else limits
    path = Path(reference)
    nb = read_submission(path)
    first = first_exercise_cell(nb)
    cells = [c for c in _code_cells(nb) if first is None or c.index < first]
    if not cells:
        raise GradingError(
            f"{clean_text(str(path), 200)} has no code cells before its first exercise"
        )
    started = time.monotonic()
    opts = Options(
        sandbox=bool(sandbox),
        limits=dataclasses.replace(limits, file_size=max(limits.file_size, MAX_PREFIX)),
        cell_timeout=cell_timeout,
        deadline=started + notebook_timeout,
        notebook_timeout=notebook_timeout,
        hidden=Path(path).parent,
        cancel=cancel,
    )
    fd = os.memfd_create("snapshot", 0)
    worker = None
    try:
        worker = Worker(opts, snapshot_fd=fd)
        for c in cells:
            reply = worker.run_cell(c.source, min(time.monotonic() + cell_timeout, opts.deadline))
            if reply.get("ok") is not True:
                raise GradingError(
                    f"cell {c.index} of {clean_text(str(path), 200)} fails: "
                    f"{clean_text(reply.get('error') or reply.get('bad'), 300)}"
                )
        reply = worker.request_op("snapshot", min(time.monotonic() + cell_timeout, opts.deadline))
        if reply.get("ok") is not True:
            raise GradingError(
                f"the state of {clean_text(str(path), 200)}'s shared cells cannot be saved: "
                f"{clean_text(reply.get('error') or reply.get('bad'), 300)}"
            )
        size = os.fstat(fd).st_size
        if size > MAX_PREFIX:
            raise GradingError(
                f"the state of {clean_text(str(path), 200)}'s shared cells is larger than "
                f"{MAX_PREFIX >> 20} MB"
            )
        chunks, offset = [], 0
        while offset < size:
            chunk = os.pread(fd, min(size - offset, 1 << 24), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        data = b"".join(chunks)
    except (StudentTimeout, WorkerDied, NotebookTimeout) as exc:
        raise GradingError(
            f"the shared cells of {clean_text(str(path), 200)} did not run: "
            f"{type(exc).__name__} {exc}"
        ) from None
    finally:
        if worker is not None:
            worker.close()
        os.close(fd)
    return Prefix(
        str(path), tuple(c.source for c in cells), data, hashlib.sha256(data).hexdigest()[:16]
    )


def _code_cells(nb: dict) -> list[Cell]:
    return [
        Cell(i, _source(c))
        for i, c in enumerate(nb["cells"])
        if c.get("cell_type") == "code" and _source(c).strip()
    ]


# --- the ban on calling the package (forbid=) ---------------------------------------------------

# Calls, attributes and modules that run or bind code the grader cannot read in the source.
_DYNAMIC_CALLS = {
    "exec",
    "eval",
    "compile",
    "globals",
    "vars",
    "locals",
    "__import__",
    "setattr",
    "delattr",
    "breakpoint",
    "attrgetter",
    "methodcaller",
    "import_module",
}
_DYNAMIC_ATTRS = {
    "__dict__",
    "__globals__",
    "__builtins__",
    "__code__",
    "__closure__",
    "__wrapped__",
    "__subclasses__",
    "__bases__",
    "__base__",
    "__mro__",
    "__getattribute__",
    "__setattr__",
    "__reduce__",
    "__reduce_ex__",
    "f_globals",
    "f_locals",
    "f_back",
    "f_builtins",
    "tb_frame",
    "gi_frame",
    "cr_frame",
    "_getframe",
    "user_ns",
    "user_global_ns",
    "FunctionType",
    "CodeType",
}
_DYNAMIC_MODULES = {
    "builtins",
    "importlib",
    "ctypes",
    "gc",
    "inspect",
    "pickle",
    "marshal",
    "dill",
    "cloudpickle",
    "runpy",
    "code",
    "codeop",
}
_DYNAMIC_METHODS = {
    "attrgetter",
    "methodcaller",
    "import_module",
    "run_line_magic",
    "run_cell_magic",
}
_SAFE_MAGICS = {"matplotlib", "time", "timeit", "precision", "pprint", "config"}
_SAFE_SHELL = {"run_line_magic", "run_cell_magic", "system", "getoutput"}
_NAMESPACES = {"globals", "vars", "locals"}


class _Source:
    """The submission's code, parsed as the grader reads it: every binding, every dynamic construct."""

    def __init__(self, cells: list[Cell]):
        from IPython.core.inputtransformer2 import TransformerManager

        self.transform = TransformerManager().transform_cell
        self.bindings: dict[str, list[tuple[str, set[str]]]] = {}
        self.dynamic: list[str] = []
        self.strings: list[str] = []  # string constants inside dynamic constructs
        self.unparsed: list[str] = []  # code the parser gave up on (not plain syntax errors)
        for cell in cells:
            self._add_code(cell.source, ipython=True, depth=0)

    def _add_code(self, code: str, ipython: bool, depth: int) -> None:
        if depth > 5:
            self.dynamic.append("code nested in strings")
            return
        try:
            tree = ast.parse(self.transform(code) if ipython else code)
        except SyntaxError:
            return  # the worker cannot run it either
        except (ValueError, RecursionError, MemoryError):
            self.unparsed.append(code)
            return
        try:
            self._walk(tree, depth)
        except RecursionError:
            self.unparsed.append(code)

    def _bind(self, name: str, kind: str, used: set[str]) -> None:
        self.bindings.setdefault(name, []).append((kind, used))

    def _strings_in(self, node) -> None:
        self.strings += [
            n.value
            for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]

    def _walk(self, tree, depth: int) -> None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self._bind(node.name, "def", _free_names(node))
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                used = _free_names(node.value) if node.value is not None else set()
                for target in targets:
                    for name in _target_names(target):
                        self._bind(name, "assign", used)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                for name in _target_names(node.target):
                    self._bind(name, "loop", _free_names(node.iter))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        for name in _target_names(item.optional_vars):
                            self._bind(name, "with", _free_names(item.context_expr))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                for alias in node.names:
                    top = (module or alias.name).split(".")[0]
                    if top in _DYNAMIC_MODULES or alias.name in _DYNAMIC_MODULES:
                        self.dynamic.append(f"import {module or alias.name}")
                    if alias.name == "*":
                        self.dynamic.append(f"from {module} import *")
                        continue
                    self._bind(
                        alias.asname or alias.name.split(".")[0],
                        "import",
                        set(alias.name.split(".")),
                    )
            elif isinstance(node, ast.Attribute):
                if node.attr in _DYNAMIC_ATTRS or (
                    node.attr == "modules"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"
                ):
                    self.dynamic.append(f".{node.attr}")
                elif _is_call_to(node.value, "get_ipython") and node.attr not in _SAFE_SHELL:
                    self.dynamic.append(f"get_ipython().{node.attr}")
            elif isinstance(node, ast.Subscript) and (
                _is_call_to(node.value, *_NAMESPACES)
                or (
                    isinstance(node.value, ast.Attribute)
                    and node.value.attr in ("__dict__", "user_ns")
                )
            ):
                self._strings_in(node.slice)
            elif isinstance(node, ast.Call):
                self._call(node, depth)

    def _call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        name = None
        if isinstance(func, ast.Name):
            name = func.id
        elif isinstance(func, ast.Attribute) and (
            func.attr in _DYNAMIC_METHODS
            or (isinstance(func.value, ast.Name) and func.value.id in ("builtins", "__builtins__"))
        ):
            name = func.attr  # `model.eval()` is a method, `builtins.eval()` is not
        first = node.args[0] if node.args else None
        if (
            name in ("exec", "eval", "compile")
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            self._add_code(
                first.value, ipython=False, depth=depth + 1
            )  # code in a string literal: read it too
        elif name in _DYNAMIC_CALLS:
            self.dynamic.append(f"{name}()")
            self._strings_in(node)
        elif name == "getattr":
            if not (len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
                self.dynamic.append("getattr() with a computed name")
            self._strings_in(node)
        elif name in ("run_line_magic", "run_cell_magic"):
            consts = [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            if not consts or consts[0] not in _SAFE_MAGICS:
                self.dynamic.append(f"the magic %{consts[0] if consts else '?'}")
                self._strings_in(node)
            elif consts[0] in ("time", "timeit") and len(consts) == len(node.args):
                self._add_code(consts[-1], ipython=True, depth=depth + 1)  # %%time's cell body
        elif isinstance(func, ast.Name) and func.id == "get_ipython":
            pass  # get_ipython() itself; what is done with it is checked on the attribute
        if any(isinstance(a, ast.Name) and a.id == "get_ipython" for a in node.args):
            self.dynamic.append("get_ipython passed around")

    def check(self, functions, forbid) -> tuple[dict[str, list[str]], list[str]]:
        """({function: [why it breaks the ban]}, [constructs that hide what the code binds])."""
        forbid = set(forbid)
        tainted = set(forbid)
        changed = True
        while changed:  # a name bound to something that uses a banned name is banned too
            changed = False
            for name, binds in self.bindings.items():
                if name not in tainted and any(used & tainted for _, used in binds):
                    tainted.add(name)
                    changed = True
        found: dict[str, list[str]] = {}
        for f in functions:
            why = []
            for kind, used in self.bindings.get(f, []):
                bad = sorted(used & tainted)
                if kind == "import":
                    why.append(f"`{f}` is imported, not written")
                elif bad:
                    why.append(f"`{f}` uses {', '.join(f'`{n}`' for n in bad)}")
            if any(f in s or any(n in s for n in forbid) for s in self.strings + self.unparsed):
                why.append(
                    f"`{f}` may be bound by code the grader cannot read (exec, globals(), ...)"
                )
            if why:
                found[f] = sorted(set(why))
        return found, sorted(set(self.dynamic))


def _is_call_to(node, *names) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _target_names(target) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for t in target.elts for n in _target_names(t)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _free_names(node) -> set[str]:
    """Global names and attribute names that ``node`` uses (names bound inside it excluded)."""
    loads, bound, attrs = set(), set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.Attribute):
            attrs.add(n.attr)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name.split(".")[0]) for a in n.names)
        elif isinstance(n, ast.alias):
            attrs.update(n.name.split("."))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not node:
            bound.add(n.name)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        bound.discard(node.name)
        loads.discard(node.name)  # recursion
    return (loads - bound) | attrs


def _forbidden_uses(cells: list[Cell], functions, forbid) -> dict[str, list[str]]:
    """For each function named in ``functions``, why its bindings break the ban on ``forbid`` (from the source)."""
    if not functions or not forbid:
        return {}
    return _Source(cells).check(functions, forbid)[0]


def _runtime_uses(info: dict, name: str, forbid) -> list[str]:
    """Why the worker's description of ``name`` breaks the ban (the worker is untrusted: a hint, never a pass)."""
    chain = info.get("chain")
    names = info.get("names")
    if not isinstance(chain, list) or not chain or not all(isinstance(c, dict) for c in chain):
        return [f"`{name}` could not be inspected"]
    why = []
    if chain[-1].get("cell") is not True:
        kind = clean_text(chain[-1].get("type"), 40)
        why.append(
            f"`{name}` is not a function written in the notebook (it is a {kind}"
            + (f" from {clean_text(chain[-1].get('file'), 80)}" if chain[-1].get("file") else "")
            + ")"
        )
    if isinstance(names, list):
        bad = sorted({n for n in names if isinstance(n, str)} & set(forbid))
        if bad:
            why.append(f"`{name}` calls {', '.join(f'`{n}`' for n in bad)}")
    return why


def _grade_exercise(
    sub: Submission, ex, timeout: float, source: _Source | None, variant: dict | None = None
) -> dict:
    limit = ex.timeout if ex.timeout is not None else timeout
    start = time.monotonic()
    deadline = min(start + limit, sub.opts.deadline)
    results, timed_out = [], False

    def not_run_message():
        if time.monotonic() >= sub.opts.deadline:
            return (
                f"not run: the notebook's time limit of {sub.opts.notebook_timeout:g} s was used up"
            )
        return f"not run: the exercise's time limit of {limit:g} s was used up"

    def run(func, entry):
        nonlocal timed_out
        result = None
        try:
            if sub.worker is None or not sub.worker.alive:
                sub.start(len(sub.cells))
            sub.worker.fork(deadline)
            result = func(Student(sub.worker, deadline, variant))
        except NotebookTimeout:
            timed_out = True
            entry["message"], entry["outcome"] = not_run_message(), "timeout"
        except GradingError:
            raise  # the grader itself cannot go on (a worker that does not start): not the student's failure
        except StudentTimeout:
            timed_out = True
            entry["outcome"] = "timeout"
            entry["message"] = (
                not_run_message()
                if time.monotonic() >= sub.opts.deadline
                else f"time limit of {limit:g} s exceeded (an endless loop?)"
            )
        except WorkerDied as exc:
            entry["message"], entry["outcome"] = clean_text(str(exc), 1000), "crashed"
        except (NotAnswered, StudentError) as exc:
            entry["message"] = clean_text(str(exc), 1000)
        except AssertionError as exc:
            entry["message"] = clean_text(str(exc), 1000) or "wrong result"
        except Exception as exc:
            entry["message"] = clean_text(f"wrong kind of value ({type(exc).__name__}: {exc})", 500)
        else:
            entry["passed"], entry["outcome"] = True, "passed"
        finally:
            if sub.worker is not None and sub.worker.alive:
                try:
                    sub.worker.end_child()
                except (StudentTimeout, WorkerDied):
                    sub.close()  # the worker itself is stuck: the next test starts a fresh one
            elif sub.worker is not None:
                sub.close()
        return result

    for test in ex.tests:
        entry = {
            "name": test.name,
            "points": test.points,
            "score": 0.0,
            "passed": False,
            "message": "",
            "outcome": "failed",
        }
        results.append(entry)
        if timed_out or time.monotonic() >= deadline:
            timed_out = True
            entry["message"], entry["outcome"] = not_run_message(), "timeout"
            continue
        run(test.func, entry)
        if entry["passed"]:
            entry["score"] = test.points
    score = sum(r["score"] for r in results)
    notes, review = [], False
    if ex.forbid and ex.functions:
        found, dynamic = source.check(ex.functions, ex.forbid) if source else ({}, [])
        if score > 0:  # what the functions are at run time (only worth asking when they scored)
            for f in ex.functions:
                if f in found:
                    continue
                probe = {}
                deadline = max(deadline, min(time.monotonic() + END_TIMEOUT, sub.opts.deadline))
                info = run(lambda student, f=f: student.describe(f), probe)
                if info is not None:
                    why = _runtime_uses(info, f, ex.forbid)
                    if why:
                        found[f] = why
        if found:
            score = 0.0
            notes.append(
                "; ".join(w for f in ex.functions for w in found.get(f, []))
                + ": this exercise asks you to write it yourself, without "
                + ", ".join(f"`{n}`" for n in ex.forbid)
                + ": 0 points"
            )
        elif dynamic and score > 0:
            review = True
            notes.append(
                "the ban on "
                + ", ".join(f"`{n}`" for n in ex.forbid)
                + " could not be checked from "
                "the source, which uses " + ", ".join(dynamic[:6]) + ": check this exercise by hand"
            )
    status = (
        "timeout"
        if timed_out
        else ("full" if score == ex.max_score else "partial" if score else "zero")
    )
    return {
        "label": ex.label,
        "title": ex.title,
        "score": score,
        "max_score": ex.max_score,
        "status": status,
        "time_limit": limit,
        "note": "; ".join(notes) or None,
        "review": review,
        "manual": ex.manual,
        "variant": variant if ex.draw is not None else None,
        "tests": results,
    }


def _positive(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        and not hasattr(value, "__float__")
    ):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return value


def grade(
    path,
    *,
    chapter: str | None = None,
    timeout: float = 20.0,
    cell_timeout: float = 120.0,
    notebook_timeout: float = 900.0,
    sandbox: bool = True,
    limits: Limits | None = None,
    tests_dir: Path = TESTS_DIR,
    student: str | None = None,
    secret: bytes | None = None,
    cancel=None,
    chapters: dict | None = None,
    prefix: Prefix | None = None,
) -> dict:
    """Grade the notebook at ``path``; return the report (documented in the instructor guide).

    Args:
        path: the submitted ``.ipynb`` (a regular file; a symbolic link is refused).
        chapter: the chapter's name; default: from the notebook's metadata, its
            exercise labels, else its file name.
        timeout: seconds for all the tests of one exercise (unless the exercise sets its own).
        cell_timeout: seconds for one code cell while the notebook runs.
        notebook_timeout: seconds for the whole submission: every cell, every
            restart of the worker after a crash, every test.
        sandbox: run the student's code in the bubblewrap sandbox (default). Where
            none can be made, :class:`NoSandbox` is raised; ``False`` runs it as a
            plain process, for trusted code only.
        limits: resource limits of the worker (:class:`Limits`; the defaults suit every chapter).
        tests_dir: the folder of hidden tests.
        student: the student's id (from the roster or the file name). With ``secret``,
            exercises with variants are graded against this student's own numbers;
            without, against the numbers the notebook's signed record names (if its
            signature holds), else the published ones.
        secret: the course secret (bytes, :func:`coursework.variants.load_secret`).
        cancel: a ``threading.Event``; once set, grading stops with :class:`Cancelled`
            (its worker killed), so a class run can be interrupted cleanly.
        chapters: the loaded hidden tests (:func:`load_chapters` of ``tests_dir``), to
            load them once for many submissions.
        prefix: the chapter's shared cells, run once (:func:`make_prefix`): used when the
            submission's first code cells are exactly those cells, else ignored.

    Raises:
        GradingError: the submission cannot be graded (one-line reason): :class:`Refused`
            (a symbolic link, not a file, too large, no known chapter), :class:`Malformed`
            (not a notebook), :class:`NoSandbox` (no sandbox is available and ``sandbox`` is
            true), or a plain GradingError (the worker could not start).

    Safe to call from several threads or processes at once.
    """
    timeout = _positive("timeout", timeout)
    cell_timeout = _positive("cell_timeout", cell_timeout)
    notebook_timeout = _positive("notebook_timeout", notebook_timeout)
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a coursework.grader.Limits, got {type(limits).__name__}")
    if student is not None and (not isinstance(student, str) or not student.strip()):
        raise ValueError(f"student must be a non-empty str, got {student!r}")
    if secret is not None and (not isinstance(secret, bytes) or not secret):
        raise TypeError(
            f"secret must be non-empty bytes (see coursework.variants.load_secret), got "
            f"{type(secret).__name__}"
        )
    path = Path(path)
    started = time.monotonic()
    nb = read_submission(path)
    chapters = load_chapters(tests_dir) if chapters is None else chapters
    spec = find_chapter(nb, path, chapters, chapter)
    hidden = Path(tests_dir).resolve()
    description = "none (--no-sandbox)"
    if sandbox:
        try:
            description = sandbox_check()
        except SandboxUnavailable as exc:
            raise NoSandbox(
                f"no sandbox for untrusted code: {exc}; install bubblewrap (Debian/Ubuntu: "
                "apt-get install bubblewrap) or pass --no-sandbox to run it unprotected"
            ) from None
        inside = _exposed(hidden)
        if inside:
            raise GradingError(
                f"the hidden tests folder {hidden} would be readable in the sandbox (through "
                f"{inside}): keep it outside the Python installation and the package"
            )
    variant = _variant_of(nb, spec, student, secret)
    cells = _code_cells(nb)
    opts = Options(
        sandbox=bool(sandbox),
        limits=limits,
        cell_timeout=cell_timeout,
        deadline=started + notebook_timeout,
        notebook_timeout=notebook_timeout,
        hidden=hidden,
        cancel=cancel,
    )
    shared = (
        prefix is not None
        and len(cells) >= len(prefix.sources)
        and all(c.source == src for c, src in zip(cells, prefix.sources))
    )
    sub = Submission(cells, opts, prefix if shared else None)
    exercises = []
    landlock = ""
    try:
        try:
            sub.execute()
        except NotebookTimeout:
            for c in cells:
                if c.status == "not run":
                    c.error = (
                        f"not run: the notebook's time limit of {notebook_timeout:g} s was used up"
                    )
        if sub.worker is not None:
            landlock = sub.worker.landlock
        source = _Source(cells) if any(ex.forbid for ex in spec.exercises.values()) else None
        for ex in spec.exercises.values():
            exercises.append(
                _grade_exercise(sub, ex, timeout, source, variant["exercises"].get(ex.label))
            )
            if sub.worker is not None and sub.worker.landlock:
                landlock = sub.worker.landlock
    finally:
        sub.close()
    if sandbox and landlock:
        description += f" + {landlock}"
    cell_states = {c.status for c in cells}
    outcomes = {t["outcome"] for e in exercises for t in e["tests"]}
    if (
        "timeout" in cell_states
        or "timeout" in outcomes
        or any(e["status"] == "timeout" for e in exercises)
    ):
        status = "timed out"
    elif "crashed" in cell_states or "crashed" in outcomes:
        status = "crashed"
    else:
        status = "graded"
    return {
        "submission": str(path),
        "chapter": spec.name,
        "status": status,
        "score": sum(e["score"] for e in exercises),
        "max_score": sum(e["max_score"] for e in exercises),
        "sandbox": description,
        "limits": {
            "timeout": timeout,
            "cell_timeout": cell_timeout,
            "notebook_timeout": notebook_timeout,
            "memory": limits.memory,
            "processes": limits.processes,
            "file_size": limits.file_size,
            "disk": limits.disk,
            "output": limits.output,
        },
        "exercises": exercises,
        "manual": [{"label": e["label"], "what": e["manual"]} for e in exercises if e["manual"]],
        "review": [e["label"] for e in exercises if e.get("review")],
        "variant": variant if variant["exercises"] else None,
        "cells": [
            {
                "cell": c.index,
                "status": c.status,
                "error": c.error,
                **({"restored": True} if c.restored else {}),
            }
            for c in cells
        ],
        "shared_cells": (
            {
                "cells": sub.restored,
                "reference": prefix.reference,
                "digest": prefix.digest,
                "error": sub.prefix_error,
            }
            if shared
            else None
        ),
        "workers_started": sub.workers_started,
    }


def _variant_of(nb: dict, spec: Chapter, student: str | None, secret: bytes | None) -> dict:
    """Which numbers each variant exercise of ``spec`` is graded against, and what the notebook says.

    The student's own numbers (from ``student`` and ``secret``) always win; a notebook whose
    signed record names another student, a record that was altered, or variant cells that
    hold other numbers get a note (the record and the cells are the student's text).
    """
    from . import variants as _variants
    from .notebook import submitted_variant_values

    declared = [label for label, ex in spec.exercises.items() if ex.draw is not None]
    meta = (
        nb.get("metadata", {}).get("coursework") if isinstance(nb.get("metadata"), dict) else None
    )
    data = meta.get("variant") if isinstance(meta, dict) else None
    status, named = _variants.verify_record(data, secret, spec.name)
    notes = []
    if student is not None and secret is not None:
        source = "the student's id"
    elif student is None and secret is not None and status == "valid":
        student, source = named, "the notebook's signed record"
    else:
        source = "published (no course secret)" if secret is None else "published (no student id)"
    exercises = (
        _variants.chapter_values(spec, student if secret else None, secret) if declared else {}
    )
    if declared:
        if status == "invalid":
            notes.append("the notebook's variant record was altered or signed with another secret")
        elif status == "valid" and named != student:
            notes.append(
                f"this notebook was issued to another student ({clean_text(named, 100)!r})"
            )
        elif status == "malformed":
            notes.append("the notebook's variant record is malformed")
        shown = submitted_variant_values(nb)
        for label, values in exercises.items():
            if label in shown and shown[label] != values:
                notes.append(
                    f"the numbers in the variant cell of {label} are not the ones graded "
                    f"({clean_text(repr(shown[label]), 200)} instead of {clean_text(repr(values), 200)})"
                )
    return {
        "student": student,
        "source": source,
        "record": status,
        "exercises": exercises,
        "notes": notes,
    }


def sandbox_check() -> str:
    return sandbox.check()


def _exposed(path: Path) -> str | None:
    return sandbox.exposed(path)


# --- the text report -------------------------------------------------------------------

_FENCE = "             | "
_WIDTH = 100


def _fenced(text: str) -> list[str]:
    """Student-influenced text as lines that all start with the fence (ASCII, no control characters)."""
    import textwrap

    text = clean_text(text, 1200, ascii_only=True)
    return [_FENCE + line for line in textwrap.wrap(text, _WIDTH - len(_FENCE)) or [""]]


def format_report(report: dict) -> str:
    """The report as a short text table.

    Text that the student's code can influence (test messages, cell errors, the
    submission's file name) is escaped to printable ASCII and shown only on lines
    that start with ``|``, so it cannot draw or hide a line of the table.
    """

    def pts(x):
        return f"{x:g}"

    lines = [f"chapter {report['chapter']} (sandbox: {report['sandbox']})", "  submission:"]
    lines += _fenced(report["submission"])
    variant = report.get("variant")
    if variant:
        lines.append(f"  numbers of {', '.join(variant['exercises'])}: {variant['source']}")
        if variant.get("student"):
            lines += _fenced(f"student {variant['student']}")
        for note in variant.get("notes", []):
            lines.append("           ! check by hand:")
            lines += _fenced(note)
    for e in report["exercises"]:
        lines.append(
            f"  {e['label']:<8} {e['title'][:44]:<44} {pts(e['score']):>4} / {pts(e['max_score'])}"
        )
        for t in e["tests"]:
            if not t["passed"]:
                lines.append(f"           - {t['name'][:80]}:")
                lines += _fenced(t["message"])
        if e["note"]:
            lines.append(
                "           ! " + ("to check by hand:" if e.get("review") else "0 points:")
            )
            lines += _fenced(e["note"])
    failed = [c for c in report["cells"] if c["status"] != "ok"]
    if failed:
        lines.append("  cells that did not run cleanly:")
        for c in failed[:12]:
            lines.append(f"    cell {c['cell']} ({c['status']}):")
            lines += _fenced(c["error"] or "")
        if len(failed) > 12:
            lines.append(f"    ... and {len(failed) - 12} more")
    for m in report["manual"]:
        lines.append(f"  to grade by hand: {m['label']}: {m['what']}")
    lines.append(f"  total {pts(report['score'])} / {pts(report['max_score'])} (automatic)")
    return "\n".join(lines)
