"""Command line of the coursework tool.

    python -m coursework student [NOTEBOOK ...] --out student/
    python -m coursework grade SUBMISSION.ipynb [--json out.json] [--timeout 20] [--chapter NAME] [--no-sandbox]
    python -m coursework list [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _chapters(paths: list[str]) -> list[Path]:
    return [Path(p) for p in paths] if paths else sorted((ROOT / "book").glob("*.ipynb"))


def _cmd_student(args) -> int:
    from .notebook import FormatError, write_student_versions

    try:
        written = write_student_versions(_chapters(args.notebooks), Path(args.out))
    except FormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def _write_json(path: Path, report: dict) -> None:
    """Write the report atomically: a new file renamed over ``path`` (a symlink there is replaced, not followed)."""
    import os
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2, ensure_ascii=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cmd_grade(args) -> int:
    from .grader import GradingError, format_report, grade
    from .protocol import clean_text

    try:
        extra = {"tests_dir": Path(args.tests_dir)} if args.tests_dir else {}
        report = grade(args.submission, chapter=args.chapter, timeout=args.timeout,
                       cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                       sandbox=not args.no_sandbox, **extra)
    except (GradingError, ValueError, TypeError) as exc:
        print(f"error: {clean_text(str(exc), 600)}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        try:
            _write_json(Path(args.json), report)
        except OSError as exc:
            print(f"error: cannot write the report to {clean_text(args.json, 200)}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"  report written to {clean_text(args.json, 200)}")
    return 0


def _cmd_list(args) -> int:
    import nbformat

    from .grader import load_chapters
    from .notebook import FormatError, parse_exercises

    chapters = load_chapters()
    status = 0
    for path in _chapters(args.notebooks):
        try:
            blocks = parse_exercises(nbformat.read(path, as_version=4))
        except FormatError as exc:
            print(f"{path.stem}: FORMAT ERROR: {exc}")
            status = 1
            continue
        spec = chapters.get(path.stem)
        print(f"{path.stem}: {len(blocks)} exercises" + ("" if spec else " (NO hidden tests file)"))
        for b in blocks:
            ex = spec.exercises.get(b.label) if spec else None
            if ex is None:
                how, status = "no hidden tests", 1
            else:
                how = f"{ex.max_score:g} points in {len(ex.tests)} tests" if ex.tests else "by hand only"
                if ex.manual and ex.tests:
                    how += " + by hand"
            print(f"  {b.label:<8} {b.title[:50]:<50} {how}")
        for label in sorted(set(spec.exercises) - {b.label for b in blocks}) if spec else []:
            print(f"  {label:<8} hidden tests for an exercise the chapter does not have")
            status = 1
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursework",
                                     description="Student versions and automatic grading of the chapters' exercises.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("student", help="write the student version of chapter notebooks")
    p.add_argument("notebooks", nargs="*", help="chapter notebooks (default: every book/*.ipynb)")
    p.add_argument("--out", default="student", help="output folder (default: student)")
    p.set_defaults(func=_cmd_student)
    p = sub.add_parser("grade", help="grade a submitted notebook with the hidden tests")
    p.add_argument("submission", help="the student's notebook (.ipynb)")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="time limit in seconds per exercise, for all its tests (default: 20)")
    p.add_argument("--cell-timeout", type=float, default=120.0,
                   help="time limit in seconds per code cell while running the notebook (default: 120)")
    p.add_argument("--notebook-timeout", type=float, default=900.0,
                   help="time limit in seconds for the whole submission: all cells, restarts after a crash "
                   "and tests (default: 900)")
    p.add_argument("--chapter", help="the chapter (default: from the notebook's metadata or exercise labels)")
    p.add_argument("--tests-dir", help="folder of hidden tests (default: coursework/tests; keep your own "
                   "private copy outside the repository if students can read it)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run the submission without the bubblewrap sandbox: only for code you trust "
                   "(without it the grader refuses to run where no sandbox can be made)")
    p.set_defaults(func=_cmd_grade)
    p = sub.add_parser("list", help="list each chapter's exercises and how they are graded")
    p.add_argument("notebooks", nargs="*", help="chapter notebooks (default: every book/*.ipynb)")
    p.set_defaults(func=_cmd_list)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
