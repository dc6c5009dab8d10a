"""Grade a whole class: every submission of a folder, N at a time, into a gradebook.

:func:`grade_class` finds the submissions (one notebook per student, named by its file
or by a roster), grades each with :func:`coursework.grader.grade` in its own sandboxed
worker, ``jobs`` at a time in threads (``grade`` is thread-safe; each call has its own
sandbox), and writes

- the gradebook, a CSV file with one row per student: ``student, file, chapter``, the
  points of each exercise, ``total, max_total, status, message``;
- per student, ``<reports>/<id>.json`` (the grader's report and the row) and
  ``<reports>/<id>.md`` (readable feedback for the student);
- per student, ``<state>/<id>.json``: the result and the key it was computed for.

The key is a SHA-256 of the submission's bytes, the hidden tests folder (every file),
the grader's version (:data:`coursework.grader.VERSION`), the ``regcourse`` version, the
grading options and the student's variant (their id and a fingerprint of the course
secret). A re-run reuses every result whose key is unchanged and grades the rest, so a
changed submission (or changed tests) is graded again, and an interrupted run (Ctrl-C,
a kill, a crash of the machine) resumes where it stopped: every file is written whole
(a new file renamed over the old one) as soon as its submission is graded, so no
finished result is lost. Results of a grader-side failure (status ``error``) are not
kept, so the next run retries them.

One submission cannot change another's result: each runs in its own sandbox (its own
PID, user, mount and network namespaces and scratch folder), with its own time limits,
and whatever it does ends as its own row's status.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import stat
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import grader
from .protocol import clean_text
from .variants import fingerprint, safe_name

__all__ = [
    "ClassResult",
    "Entry",
    "Interrupted",
    "RosterError",
    "STATUSES",
    "find_submissions",
    "grade_class",
    "read_roster",
]

#: a row's status: graded (every cell and test ran), timed out (a cell, an exercise or the whole
#: notebook hit its time limit), crashed (a cell or a test ended the worker process), malformed
#: (not a readable notebook), refused (a symbolic link or other non-file, too large, no known
#: chapter, a duplicate, a file the roster does not know), missing (a roster student without a
#: submission), error (the grader could not grade it: not kept, retried on the next run), pending
#: (not graded yet: only in the gradebook of an interrupted run)
STATUSES = ("graded", "timed out", "crashed", "malformed", "refused", "missing", "error", "pending")
_KEPT = {"graded", "timed out", "crashed", "malformed", "refused"}
_CACHE_FORMAT = "coursework-class-cache-1"
REFERENCE = Path(__file__).resolve().parents[1] / "book"  # the chapters as the book has them


class RosterError(ValueError):
    """The roster file cannot be used (missing columns, a file listed twice, not CSV)."""


class Interrupted(Exception):
    """The run was interrupted (Ctrl-C or SIGTERM); everything graded so far is saved."""

    def __init__(self, result: ClassResult):
        super().__init__(
            f"interrupted: {result.counts.get('pending', 0)} submissions not graded yet"
        )
        self.result = result


# --- atomic files ------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` whole or not at all: a new file in the same folder, renamed over it.

    With ``durable`` the data reaches the disk before the rename (``fsync``), so that not even a
    power cut leaves an empty file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- who is who ---------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One row of the gradebook: a student's submission, or a problem with one."""

    student: str | None  # None: a file the roster does not know
    path: Path | None  # None: a roster student without a submission
    shown: str  # the file as the gradebook shows it
    problem: tuple[str, str] | None = None  # (status, message) when it is not graded


def read_roster(path) -> list[dict]:
    """The rows of a roster CSV: ``{"id": ..., "file": ...}`` (``file`` may be "").

    The file has a header row with an ``id`` column and, optionally, a ``file`` column (the
    submission's file name, or its path inside the folder); other columns are ignored. A
    file listed twice, or an empty id, is a RosterError.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RosterError(f"cannot read the roster {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RosterError(f"the roster {path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "id" not in columns:
        raise RosterError(
            f"the roster {path} has no 'id' column (its columns: {', '.join(columns) or 'none'})"
        )
    rows, files = [], {}
    for n, raw in enumerate(reader, start=2):
        row = {
            (k or "").strip().lower(): (v or "").strip()
            for k, v in raw.items()
            if isinstance(v, str)
        }
        if not any(row.values()):
            continue
        if not row.get("id"):
            raise RosterError(f"{path}, line {n}: empty id")
        file = row.get("file", "")
        if file:
            if file in files:
                raise RosterError(
                    f"{path}, line {n}: the file {file!r} is listed twice (lines {files[file]} and {n})"
                )
            files[file] = n
        rows.append({"id": row["id"], "file": file})
    return rows


def _listing(folder: Path) -> list[tuple[Path, str, str]]:
    """(path, path shown, id from the name) for each submission in ``folder``.

    ``folder/<name>.ipynb`` is named ``<name>``; ``folder/<name>/.../*.ipynb`` is named by the
    subfolder ``<name>``. Hidden files and folders (``.ipynb_checkpoints``) are skipped;
    symbolic links are listed, not followed (the grader refuses them).
    """
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        rel_top = Path(top).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in list(dirs):
            if os.path.islink(os.path.join(top, d)):
                dirs.remove(d)
                rel = rel_top / d
                found.append((Path(top) / d, str(rel), rel.parts[0]))
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(".ipynb"):
                continue
            rel = rel_top / name
            found.append(
                (Path(top) / name, str(rel), rel.parts[0] if len(rel.parts) > 1 else rel.stem)
            )
    return found


def find_submissions(paths, roster: list[dict] | None = None) -> list[Entry]:
    """The gradebook's rows for the folders and files ``paths``, named by file or by ``roster``.

    With a roster, a submission is the student whose ``file`` is its name or its path in the
    folder, else the student whose id is its name (the rule above); a submission matching no
    student is refused ("not in the roster"), and a student without one is ``missing``. Two
    submissions for one student are both refused ("duplicate"): which counts is the
    instructor's call.
    """
    listed = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not p.is_symlink():
            listed += _listing(p)
        else:
            listed.append((p, str(p), p.stem))
    by_file = {r["file"]: r["id"] for r in roster or [] if r["file"]}
    ids = {r["id"] for r in roster or []}
    entries, seen = [], {}
    for path, shown, name in listed:
        if roster is not None:
            student = (
                by_file.get(shown) or by_file.get(path.name) or (name if name in ids else None)
            )
            if student is None:
                entries.append(Entry(None, path, shown, ("refused", "not in the roster")))
                continue
        else:
            student = name
        seen.setdefault(student, []).append(len(entries))
        entries.append(Entry(student, path, shown))
    for where in seen.values():
        if len(where) > 1:
            files = ", ".join(entries[k].shown for k in where)
            for k in where:
                entries[k].problem = (
                    "refused",
                    f"duplicate: {len(where)} submissions for this student ({files})",
                )
    for student in sorted(ids - set(seen)):
        entries.append(Entry(student, None, "", ("missing", "no submission")))
    return sorted(entries, key=lambda e: (e.student is None, e.student or "", e.shown))


# --- keys --------------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str | None:
    """SHA-256 of a submission's bytes, read without following a symlink or blocking; None if not a file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > grader.MAX_NOTEBOOK:
            return None
        digest, size = hashlib.sha256(), 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > grader.MAX_NOTEBOOK:
                return None
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def tests_digest(tests_dir: Path) -> str:
    """SHA-256 of every file of the hidden tests folder (names and bytes; caches excluded)."""
    digest = hashlib.sha256()
    tests_dir = Path(tests_dir)
    for top, dirs, files in os.walk(tests_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(top) / name
            digest.update(
                str(path.relative_to(tests_dir)).encode() + b"\0" + path.read_bytes() + b"\0"
            )
    return digest.hexdigest()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regcourse")
    except PackageNotFoundError:
        return "not installed"


# --- one row -------------------------------------------------------------------------------------------


def _row(entry: Entry, status: str, message: str = "", report: dict | None = None) -> dict:
    return {
        "student": entry.student,
        "file": entry.shown,
        "status": status,
        "message": message,
        "chapter": report["chapter"] if report else None,
        "score": report["score"] if report else None,
        "max_score": report["max_score"] if report else None,
        "exercises": {e["label"]: e["score"] for e in report["exercises"]} if report else {},
        "report": report,
    }


def _message(report: dict) -> str:
    """The gradebook's note on a graded submission: what an instructor should look at."""
    parts = []
    slow = [c["cell"] for c in report["cells"] if c["status"] == "timeout"]
    dead = [c["cell"] for c in report["cells"] if c["status"] == "crashed"]
    if slow:
        parts.append("cells stopped at the time limit: " + ", ".join(map(str, slow)))
    if dead:
        parts.append("cells that ended the process: " + ", ".join(map(str, dead)))
    timed = [e["label"] for e in report["exercises"] if e["status"] == "timeout"]
    if timed:
        parts.append("exercises out of time: " + ", ".join(timed))
    crashed = [
        e["label"]
        for e in report["exercises"]
        if any(t["outcome"] == "crashed" for t in e["tests"])
    ]
    if crashed:
        parts.append("tests that ended the process: " + ", ".join(crashed))
    if report.get("review"):
        parts.append("check by hand (forbid= check): " + ", ".join(report["review"]))
    variant = report.get("variant") or {}
    parts += [f"variant: {n}" for n in variant.get("notes", [])]
    if report.get("manual"):
        parts.append("parts graded by hand: " + ", ".join(m["label"] for m in report["manual"]))
    return "; ".join(parts)


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class ClassResult:
    """What a class run did: every row, and how many of each status; ``graded_now`` were graded by this run."""

    rows: list[dict]
    counts: dict
    graded_now: int
    reused: int
    gradebook: Path
    notes: list[str] = field(default_factory=list)


def _spreadsheet_safe(text: str) -> str:
    """Text for a CSV cell: single-line, no control characters, and no leading = + - @ (formula injection)."""
    text = clean_text(text or "", 2000)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def gradebook_text(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """The gradebook CSV: a header, then one line per row (``columns`` = [(chapter, label)])."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "student",
            "file",
            "chapter",
            *[label for _, label in columns],
            "total",
            "max_total",
            "status",
            "message",
        ]
    )

    def pts(x):
        return "" if x is None else f"{x:g}"

    for r in rows:
        scores = [
            pts(r["exercises"].get(label)) if r["chapter"] == chapter else ""
            for chapter, label in columns
        ]
        writer.writerow(
            [
                _spreadsheet_safe(r["student"] or ""),
                _spreadsheet_safe(r["file"]),
                r["chapter"] or "",
                *scores,
                pts(r["score"]),
                pts(r["max_score"]),
                r["status"],
                _spreadsheet_safe(r["message"]),
            ]
        )
    return out.getvalue()


def _fence(text: str) -> str:
    text = clean_text(text or "", 1200, ascii_only=True)
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def feedback_markdown(row: dict, title: str | None = None) -> str:
    """A student's feedback as Markdown. Text their code or file name can influence is in fenced blocks."""
    report = row["report"]
    lines = [
        f"# Feedback: {title or row['chapter'] or 'submission'}",
        "",
        "Student and file:",
        "",
        _fence(f"{row['student'] or '?'}: {row['file'] or 'no file'}"),
        "",
    ]
    if report is None:
        lines += [f"**Not graded ({row['status']}).** The reason:", "", _fence(row["message"]), ""]
        return "\n".join(lines)
    lines += [
        f"**Score: {report['score']:g} / {report['max_score']:g}** (automatic; status: {row['status']}).",
        "",
    ]
    for note in (report.get("variant") or {}).get("notes", []):
        lines += ["Note on the numbers of your exercises:", "", _fence(note), ""]
    if report["manual"]:
        lines += [
            "Parts read by your instructor (not in this score): "
            + "; ".join(f"{m['label']}: {m['what']}" for m in report["manual"]),
            "",
        ]
    lines += ["| exercise | title | points |", "|---|---|---|"]
    for e in report["exercises"]:
        lines.append(f"| {e['label']} | {e['title']} | {e['score']:g} / {e['max_score']:g} |")
    lines.append("")
    for e in report["exercises"]:
        failed = [t for t in e["tests"] if not t["passed"]]
        if not failed and not e["note"]:
            continue
        lines += [f"## {e['label']}: {e['title']} ({e['score']:g} / {e['max_score']:g})", ""]
        if e.get("variant"):
            lines += ["Your numbers for this exercise:", "", _fence(json.dumps(e["variant"])), ""]
        for t in failed:
            lines += [
                f"- {t['name']} ({t['points']:g} point{'' if t['points'] == 1 else 's'}): {t['outcome']}",
                "",
                _fence(t["message"]),
                "",
            ]
        if e["note"]:
            lines += ["Note:", "", _fence(e["note"]), ""]
    bad = [c for c in report["cells"] if c["status"] != "ok"]
    if bad:
        lines += ["## Cells that did not run cleanly", ""]
        for c in bad[:20]:
            lines += [f"- cell {c['cell']}: {c['status']}", "", _fence(c["error"] or ""), ""]
    return "\n".join(lines)


def _signature(report: dict) -> list:
    """What must not change when a submission starts from the shared cells: every score, test and cell."""
    return [
        [
            (e["label"], e["score"], [(t["name"], t["passed"], t["outcome"]) for t in e["tests"]])
            for e in report["exercises"]
        ],
        [(c["cell"], c["status"]) for c in report["cells"]],
    ]


def _timed(*reports) -> bool:
    return any(
        t["outcome"] == "timeout" for r in reports for e in r["exercises"] for t in e["tests"]
    ) or any(c["status"] in ("timeout", "not run") for r in reports for c in r["cells"])


def _flat(signature) -> list:
    exercises, cells = signature
    return [(label, score, test) for label, score, tests in exercises for test in tests] + cells


class _Run:
    def __init__(
        self,
        entries,
        *,
        gradebook,
        reports,
        state,
        jobs,
        options,
        chapters,
        tests_dir,
        secret,
        progress,
        force,
        cancel,
        reference=None,
        min_shared=3,
    ):
        self.entries, self.gradebook, self.reports, self.state = (
            entries,
            Path(gradebook),
            reports,
            Path(state),
        )
        self.jobs, self.options, self.chapters, self.tests_dir = jobs, options, chapters, tests_dir
        self.secret, self.progress, self.force = secret, progress, force
        self.cancel = cancel or threading.Event()
        self.reference, self.min_shared = (Path(reference) if reference else None), min_shared
        self.prefixes: dict[str, grader.Prefix] = {}
        self.notes: list[str] = []
        self.rows: dict[int, dict] = {}
        self.base = {
            "format": _CACHE_FORMAT,
            "grader": grader.VERSION,
            "tests": tests_digest(tests_dir),
            "regcourse": _package_version(),
            "options": options,
            "secret": fingerprint(secret),
        }

    def key(self, entry: Entry, digest: str) -> str:
        data = {**self.base, "submission": digest, "file": entry.shown, "student": entry.student}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def _state_path(self, student: str) -> Path:
        return self.state / f"{safe_name(student)}.json"

    def load(self, entry: Entry, key: str) -> dict | None:
        try:
            data = json.loads(self._state_path(entry.student).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(data, dict)
            or data.get("key") != key
            or not isinstance(data.get("row"), dict)
        ):
            return None
        return data["row"]

    def _grade(self, path, student=None, secret=None, prefix=None) -> dict:
        opts = self.options
        return grader.grade(
            path,
            chapter=opts["chapter"],
            timeout=opts["timeout"],
            cell_timeout=opts["cell_timeout"],
            notebook_timeout=opts["notebook_timeout"],
            sandbox=opts["sandbox"],
            limits=grader.Limits(**opts["limits"]),
            tests_dir=self.tests_dir,
            student=student,
            secret=secret,
            cancel=self.cancel,
            chapters=self.chapters,
            prefix=prefix,
        )

    def _chapter_of(self, entry: Entry) -> str | None:
        try:
            nb = grader.read_submission(entry.path)
            return grader.find_chapter(nb, entry.path, self.chapters, self.options["chapter"]).name
        except grader.GradingError:
            return None

    def prepare_prefixes(self, todo, pool) -> None:
        """Run the shared cells of each chapter with at least ``min_shared`` submissions to grade once.

        A prefix is used only if grading the reference notebook from it gives exactly the report
        of grading it in full (every score, test outcome and cell status); else, or if the
        reference is missing or fails, that chapter's submissions run every cell.
        """
        counts: dict[str, int] = {}
        for i, _, _ in todo:
            name = self._chapter_of(self.entries[i])
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
        wanted = [
            name
            for name, n in sorted(counts.items())
            if n >= self.min_shared and (self.reference / f"{name}.ipynb").is_file()
        ]

        def prepare(name):
            path = self.reference / f"{name}.ipynb"
            opts = self.options
            try:
                prefix = grader.make_prefix(
                    path,
                    sandbox=opts["sandbox"],
                    limits=grader.Limits(**opts["limits"]),
                    cell_timeout=opts["cell_timeout"],
                    notebook_timeout=opts["notebook_timeout"],
                    cancel=self.cancel,
                )
                full, fast = pool.map(lambda p: self._grade(path, prefix=p), [None, prefix])
                if _signature(full) != _signature(fast) and _timed(full, fast):
                    # a time limit hit on a busy machine says nothing about the prefix: once more, one at a time
                    full, fast = self._grade(path), self._grade(path, prefix=prefix)
            except grader.Cancelled:
                return
            except grader.GradingError as exc:
                self.notes.append(f"{name}: every cell of each submission is run ({exc})")
                return
            if (
                _signature(full) == _signature(fast)
                and fast["shared_cells"]
                and not fast["shared_cells"]["error"]
            ):
                self.prefixes[name] = prefix
                self.notes.append(
                    f"{name}: the {len(prefix.sources)} shared cells before the first exercise ran "
                    f"once (checked on {path.name}); submissions that have them unchanged start "
                    "from their state"
                )
            else:
                diff = next(
                    (
                        f"{a} / {b}"
                        for a, b in zip(*(_flat(_signature(r)) for r in (full, fast)))
                        if a != b
                    ),
                    (fast["shared_cells"] or {}).get("error") or "",
                )
                self.notes.append(
                    f"{name}: every cell of each submission is run (starting from the shared cells "
                    f"did not reproduce the full grading of {path.name}: {clean_text(diff, 200)})"
                )

        with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), self.jobs))) as outer:
            try:
                list(outer.map(prepare, wanted))
            except KeyboardInterrupt:
                self.cancel.set()  # before the pool waits for its threads
                raise

    def grade_one(self, entry: Entry) -> dict | None:
        """The row for one submission (runs in a pool thread); None if cancelled."""
        try:
            prefix = self.prefixes.get(self._chapter_of(entry)) if self.prefixes else None
            report = self._grade(entry.path, entry.student, self.secret, prefix)
        except grader.Cancelled:
            return None
        except grader.Refused as exc:
            return _row(entry, "refused", str(exc))
        except grader.Malformed as exc:
            return _row(entry, "malformed", str(exc))
        except grader.GradingError as exc:
            return _row(entry, "error", str(exc))
        except (
            Exception
        ) as exc:  # a bug of the grader or of a hidden test: this row only, retried next run
            return _row(
                entry, "error", clean_text(f"grader error: {type(exc).__name__}: {exc}", 500)
            )
        return _row(entry, report["status"], _message(report), report)

    def finish(self, index: int, row: dict, key: str | None, digest: str | None) -> None:
        entry = self.entries[index]
        self.rows[index] = row
        if entry.student is None:
            return
        if key is not None and row["status"] in _KEPT and _file_digest(entry.path) == digest:
            write_atomic(
                self._state_path(entry.student), json.dumps({"key": key, "row": row}) + "\n"
            )
        if self.reports is not None:
            name = safe_name(entry.student)
            title = None
            if row["chapter"] in self.chapters:
                title = self.chapters[row["chapter"]].title
            public = {k: v for k, v in row.items() if k != "exercises"}
            # not fsynced: every run writes the reports again from the kept results
            write_atomic(
                Path(self.reports) / f"{name}.json",
                json.dumps(public, indent=1, ensure_ascii=True) + "\n",
                durable=False,
            )
            write_atomic(
                Path(self.reports) / f"{name}.md",
                feedback_markdown(row, title) + "\n",
                durable=False,
            )

    def columns(self) -> list[tuple[str, str]]:
        used = {r["chapter"] for r in self.rows.values() if r["chapter"]}
        if self.options["chapter"]:
            used.add(self.options["chapter"])
        return [
            (name, label)
            for name in sorted(used & set(self.chapters))
            for label in self.chapters[name].exercises
        ]

    def write_gradebook(self) -> None:
        rows = [self.rows.get(i) or _row(e, "pending") for i, e in enumerate(self.entries)]
        write_atomic(self.gradebook, gradebook_text(rows, self.columns()))

    def run(self) -> ClassResult:
        todo, reused = [], 0
        for i, entry in enumerate(self.entries):
            if entry.problem:
                self.finish(i, _row(entry, *entry.problem), None, None)
                continue
            digest = _file_digest(entry.path)
            if digest is None:  # a symlink, a FIFO, a folder, too large: refused unread, in no time
                try:
                    grader.read_submission(entry.path)
                    problem = ("error", "the file changed while it was read")
                except grader.Refused as exc:
                    problem = ("refused", str(exc))
                except grader.GradingError as exc:
                    problem = ("malformed", str(exc))
                self.finish(i, _row(entry, *problem), None, None)
                continue
            key = self.key(entry, digest)
            if not self.force:
                row = self.load(entry, key)
                if row is not None:
                    self.rows[i] = row
                    if self.reports is not None:
                        self.finish(i, row, None, None)
                    reused += 1
                    continue
            todo.append((i, key, digest))
        self.write_gradebook()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(self.entries),
                initial=len(self.entries) - len(todo),
                unit="notebook",
                desc="grading",
                dynamic_ncols=True,
            )
        graded = 0
        futures: dict = {}
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="coursework-grade")
        try:
            if self.reference is not None and todo:
                if bar is not None:
                    bar.set_description_str("running the shared cells once")
                self.prepare_prefixes(todo, pool)
                if bar is not None:
                    bar.set_description_str("grading")
            futures = {
                pool.submit(self.grade_one, self.entries[i]): (i, key, digest)
                for i, key, digest in todo
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, key, digest = futures[fut]
                    row = fut.result()
                    if row is None:
                        continue
                    self.finish(i, row, key, digest)
                    self.write_gradebook()
                    graded += 1
                    if bar is not None:
                        bar.set_postfix_str(
                            f"{clean_text(self.entries[i].shown, 40, ascii_only=True)}: "
                            f"{row['status']}",
                            refresh=False,
                        )
                        bar.update(1)
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for fut, (i, key, digest) in futures.items():
                if (
                    fut.done()
                    and not fut.cancelled()
                    and i not in self.rows
                    and fut.exception() is None
                ):
                    row = fut.result()
                    if row is not None:
                        self.finish(i, row, key, digest)
            self.write_gradebook()
            raise Interrupted(self.result(graded, reused)) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()
        self.write_gradebook()
        return self.result(graded, reused)

    def result(self, graded: int, reused: int) -> ClassResult:
        rows = [self.rows.get(i) or _row(e, "pending") for i, e in enumerate(self.entries)]
        counts: dict = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return ClassResult(rows, counts, graded, reused, self.gradebook, list(self.notes))


def grade_class(
    paths,
    *,
    gradebook,
    reports=None,
    roster=None,
    state=None,
    jobs: int = 2,
    tests_dir=grader.TESTS_DIR,
    chapter: str | None = None,
    timeout: float = 20.0,
    cell_timeout: float = 120.0,
    notebook_timeout: float = 900.0,
    sandbox: bool = True,
    limits: grader.Limits | None = None,
    secret: bytes | None = None,
    progress: bool = False,
    force: bool = False,
    cancel: threading.Event | None = None,
    reference=REFERENCE,
    min_shared: int = 3,
) -> ClassResult:
    """Grade every submission of ``paths`` (folders and files) into ``gradebook``; see the module docstring.

    Args:
        paths: folders (their ``*.ipynb``, see :func:`find_submissions`) and notebook files.
        gradebook: the CSV file to write.
        reports: folder for each student's ``<id>.json`` and ``<id>.md`` (None: none written).
        roster: a roster CSV (``id`` and ``file`` columns) naming the students; None: by file name.
        state: folder of kept results (default: ``<gradebook>.state``).
        jobs: submissions graded at once (each worker needs up to ~1.1 GiB).
        tests_dir, chapter, timeout, cell_timeout, notebook_timeout, sandbox, limits, secret:
            as for :func:`coursework.grader.grade`.
        progress: show a progress bar on stderr (tqdm).
        force: grade everything again, ignoring kept results.
        cancel: an Event that stops the run when set (as Ctrl-C does).
        reference: the folder of the reference notebooks (the book's chapters, ``book/``): for each
            chapter with at least ``min_shared`` submissions to grade, the cells before its first
            exercise run once, in a sandbox, from ``<reference>/<chapter>.ipynb``, and each
            submission that has those cells unchanged starts from their state in its own sandbox
            (:class:`coursework.grader.Prefix`; checked on the reference first). None: every cell
            of every submission is run.

    Raises:
        Interrupted: on Ctrl-C (KeyboardInterrupt); everything graded is saved.
        RosterError, GradingError (no hidden tests, no sandbox), ValueError, TypeError: before
            anything is graded.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    limits = grader.Limits() if limits is None else limits
    if not isinstance(limits, grader.Limits):
        raise TypeError(f"limits must be a coursework.grader.Limits, got {type(limits).__name__}")
    options = {
        "chapter": chapter,
        "timeout": grader._positive("timeout", timeout),
        "cell_timeout": grader._positive("cell_timeout", cell_timeout),
        "notebook_timeout": grader._positive("notebook_timeout", notebook_timeout),
        "sandbox": bool(sandbox),
        "limits": dataclasses.asdict(limits),
    }
    if not paths:
        raise ValueError("paths must name at least one folder or notebook")
    for p in paths:
        if not Path(p).exists() and not Path(p).is_symlink():
            raise ValueError(f"no such folder or notebook: {p}")
    students = read_roster(roster) if roster is not None else None
    tests_dir = Path(tests_dir).resolve()
    chapters = grader.load_chapters(tests_dir)
    if chapter is not None and chapter not in chapters:
        raise grader.GradingError(
            f"no hidden tests for chapter {clean_text(chapter, 100)!r}; known: "
            f"{', '.join(sorted(chapters))}"
        )
    if sandbox:
        try:
            grader.sandbox_check()
        except grader.SandboxUnavailable as exc:
            raise grader.NoSandbox(
                f"no sandbox for untrusted code: {exc}; install bubblewrap (Debian/Ubuntu: "
                "apt-get install bubblewrap) or pass --no-sandbox to run it unprotected"
            ) from None
        inside = grader._exposed(tests_dir)
        if inside:
            raise grader.GradingError(
                f"the hidden tests folder {tests_dir} would be readable in the sandbox "
                f"(through {inside}): keep it outside the Python installation and the package"
            )
    entries = find_submissions(paths, students)
    if sandbox:
        grader.sandbox.remove_stale_staging()  # left by a grader that was killed with kill -9
    gradebook = Path(gradebook)
    state = Path(state) if state is not None else gradebook.with_name(gradebook.name + ".state")
    run = _Run(
        entries,
        gradebook=gradebook,
        reports=reports,
        state=state,
        jobs=jobs,
        options=options,
        chapters=chapters,
        tests_dir=tests_dir,
        secret=secret,
        progress=progress,
        force=force,
        cancel=cancel,
        reference=reference if reference is not None and Path(reference).is_dir() else None,
        min_shared=min_shared,
    )
    result = run.run()
    if (
        any(ex.draw is not None for c in chapters.values() for ex in c.exercises.values())
        and secret is None
    ):
        result.notes.append(
            "no course secret: exercises with variants were graded against the book's numbers"
        )
    return result
