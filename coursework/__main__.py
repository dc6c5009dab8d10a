"""Command line of the coursework tool (see book/instructor_guide.md).

python -m coursework student [NOTEBOOK ...] --out student/ [--roster roster.csv --secret-file F]
python -m coursework grade SUBMISSION.ipynb [--json out.json] [--student ID] [--timeout 20] [--chapter NAME]
python -m coursework grade DIR_OR_FILES... --gradebook grades.csv [--reports DIR] [--roster roster.csv]
                            [--jobs N] [--state DIR] [--force] [--tests-dir DIR] [--secret-file F]
python -m coursework gradescope CHAPTER --out autograder.zip [--tests-dir DIR] [--secret-file F]
python -m coursework list [NOTEBOOK ...]
python -m coursework check-sandbox
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _chapters(paths: list[str]) -> list[Path]:
    return [Path(p) for p in paths] if paths else sorted((ROOT / "book").glob("*.ipynb"))


def _secret(args):
    from .variants import load_secret

    return load_secret(getattr(args, "secret", None), getattr(args, "secret_file", None))


def _error(message: str) -> int:
    from .protocol import clean_text

    print(f"error: {clean_text(message, 600)}", file=sys.stderr)
    return 2


def _cmd_student(args) -> int:
    from .grader import GradingError, load_chapters
    from .notebook import FormatError, write_student_versions

    try:
        secret = _secret(args)
        students = None
        chapters = None
        if args.roster:
            from .classroom import RosterError, read_roster

            try:
                rows = read_roster(args.roster)
            except RosterError as exc:
                return _error(str(exc))
            students = list(dict.fromkeys(r["id"] for r in rows))
        if args.roster or args.tests_dir:
            chapters = load_chapters(Path(args.tests_dir)) if args.tests_dir else load_chapters()
        written = write_student_versions(
            _chapters(args.notebooks),
            Path(args.out),
            students=students,
            secret=secret,
            chapters=chapters,
        )
    except (FormatError, GradingError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if students is None:
        for path in written:
            print(f"wrote {path}")
    else:
        print(f"wrote {len(written)} notebooks for {len(students)} students into {args.out}/<id>/")
    return 0


def _write_json(path: Path, report: dict) -> None:
    """Write the report atomically: a new file renamed over ``path`` (a symlink there is replaced, not followed)."""
    from .classroom import write_atomic

    write_atomic(path, json.dumps(report, indent=2, ensure_ascii=True) + "\n")


def _grade_options(args) -> dict:
    return {
        "chapter": args.chapter,
        "timeout": args.timeout,
        "cell_timeout": args.cell_timeout,
        "notebook_timeout": args.notebook_timeout,
        "sandbox": not args.no_sandbox,
    }


def _cmd_grade(args) -> int:
    from .protocol import clean_text

    batch = (
        len(args.submissions) > 1
        or any(Path(p).is_dir() for p in args.submissions)
        or any((args.gradebook, args.reports, args.roster))
    )
    if batch:
        return _grade_class(args)
    if args.force or args.state:
        return _error("--jobs, --state and --force are for grading a class: pass --gradebook FILE")
    from .grader import GradingError, format_report, grade

    try:
        extra = {"tests_dir": Path(args.tests_dir)} if args.tests_dir else {}
        report = grade(
            args.submissions[0],
            student=args.student,
            secret=_secret(args),
            **_grade_options(args),
            **extra,
        )
    except (GradingError, ValueError, TypeError) as exc:
        return _error(str(exc))
    print(format_report(report))
    if args.json:
        try:
            _write_json(Path(args.json), report)
        except OSError as exc:
            print(
                f"error: cannot write the report to {clean_text(args.json, 200)}: {exc.strerror}",
                file=sys.stderr,
            )
            return 2
        print(f"  report written to {clean_text(args.json, 200)}")
    return 0


def _grade_class(args) -> int:
    from .classroom import Interrupted, RosterError, grade_class
    from .grader import GradingError
    from .protocol import clean_text

    if not args.gradebook:
        return _error(
            "grading a folder or several notebooks writes a gradebook: pass --gradebook FILE"
        )
    if args.json or args.student:
        return _error(
            "--json and --student grade one notebook; a class gets --reports DIR and --roster FILE"
        )

    def terminate(signum, frame):  # `kill`: stop as Ctrl-C does, keeping what is graded
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        extra = {"tests_dir": Path(args.tests_dir)} if args.tests_dir else {}
        if args.no_shared_cells:
            extra["reference"] = None
        elif args.reference:
            extra["reference"] = Path(args.reference)
        result = grade_class(
            args.submissions,
            gradebook=args.gradebook,
            reports=args.reports,
            roster=args.roster,
            state=args.state,
            jobs=args.jobs,
            secret=_secret(args),
            progress=not args.no_progress,
            force=args.force,
            **_grade_options(args),
            **extra,
        )
    except KeyboardInterrupt:  # before the first submission was started: nothing to keep
        print("interrupted before grading started", file=sys.stderr)
        return 130
    except Interrupted as exc:
        result = exc.result
        print(
            f"interrupted: {result.graded_now} graded in this run, {result.counts.get('pending', 0)} not yet; "
            f"the gradebook {clean_text(args.gradebook, 200)} holds what is done. Run the same command again "
            "to resume.",
            file=sys.stderr,
        )
        return 130
    except (RosterError, GradingError, ValueError, TypeError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot write {exc.filename}: {exc.strerror}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts = ", ".join(f"{status}: {n}" for status, n in sorted(result.counts.items()))
    print(
        f"{len(result.rows)} rows ({counts}); {result.graded_now} graded now, {result.reused} unchanged since "
        "the last run"
    )
    for r in result.rows:
        if r["status"] not in ("graded",):
            who = clean_text(r["student"] or "?", 60, ascii_only=True)
            where = clean_text(r["file"] or "-", 80, ascii_only=True)
            print(
                f"  {r['status']:<9} {who} ({where}): {clean_text(r['message'], 300, ascii_only=True)}"
            )
    for note in result.notes:
        print(f"  note: {note}")
    print(
        f"gradebook: {clean_text(str(result.gradebook), 200)}"
        + (f"; reports: {clean_text(args.reports, 200)}/<id>.json and .md" if args.reports else "")
    )
    return 0


def _cmd_list(args) -> int:
    import nbformat

    from .grader import load_chapters
    from .notebook import FormatError, check_variants, parse_exercises

    chapters = load_chapters(Path(args.tests_dir)) if args.tests_dir else load_chapters()
    status = 0
    for path in _chapters(args.notebooks):
        try:
            nb = nbformat.read(path, as_version=4)
            blocks = parse_exercises(nb)
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
                how = (
                    f"{ex.max_score:g} points in {len(ex.tests)} tests"
                    if ex.tests
                    else "by hand only"
                )
                if ex.manual and ex.tests:
                    how += " + by hand"
                if ex.draw is not None:
                    how += ", per-student numbers"
            print(f"  {b.label:<8} {b.title[:50]:<50} {how}")
        for label in sorted(set(spec.exercises) - {b.label for b in blocks}) if spec else []:
            print(f"  {label:<8} hidden tests for an exercise the chapter does not have")
            status = 1
        for problem in check_variants(nb, spec):
            print(f"  VARIANT: {problem}")
            status = 1
    return status


def _cmd_gradescope(args) -> int:
    from .grader import GradingError
    from .gradescope import write_bundle

    try:
        out = write_bundle(
            args.chapter,
            Path(args.out),
            tests_dir=Path(args.tests_dir) if args.tests_dir else None,
            secret=_secret(args),
            student_field=args.student_field,
            options={
                "timeout": args.timeout,
                "cell_timeout": args.cell_timeout,
                "notebook_timeout": args.notebook_timeout,
            },
            if_no_sandbox=args.if_no_sandbox,
            visibility=args.visibility,
        )
    except (GradingError, ValueError, TypeError, OSError) as exc:
        return _error(str(exc))
    print(f"wrote {out}: upload it as the autograder of a Gradescope programming assignment")
    return 0


def _cmd_gradescope_run(args) -> int:
    from .gradescope import run_autograder

    return run_autograder(Path(args.root), Path(args.source) if args.source else None)


def _cmd_check_sandbox(args) -> int:
    from . import sandbox

    try:
        print(f"sandbox: {sandbox.check()}")
    except sandbox.SandboxUnavailable as exc:
        return _error(f"no sandbox for untrusted code: {exc}")
    return 0


def _add_limits(p) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="time limit in seconds per exercise, for all its tests (default: 20)",
    )
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=120.0,
        help="time limit in seconds per code cell while running the notebook (default: 120)",
    )
    p.add_argument(
        "--notebook-timeout",
        type=float,
        default=900.0,
        help="time limit in seconds for the whole submission: all cells, restarts after a crash "
        "and tests (default: 900)",
    )


def _add_secret(p) -> None:
    p.add_argument(
        "--secret-file",
        help="file holding the course secret that seeds the per-student numbers "
        "(default: the COURSEWORK_SECRET environment variable)",
    )
    p.add_argument(
        "--secret",
        help="the course secret itself (visible to other users in `ps`: prefer "
        "--secret-file or COURSEWORK_SECRET)",
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coursework",
        description="Student versions and automatic grading of the chapters' exercises.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("student", help="write the student version of chapter notebooks")
    p.add_argument("notebooks", nargs="*", help="chapter notebooks (default: every book/*.ipynb)")
    p.add_argument("--out", default="student", help="output folder (default: student)")
    p.add_argument(
        "--roster",
        help="roster CSV with an `id` column: one folder <out>/<id>/ per student, with "
        "their own numbers (needs the course secret)",
    )
    p.add_argument(
        "--tests-dir",
        help="folder of hidden tests, which declare the variants (default: coursework/tests)",
    )
    _add_secret(p)
    p.set_defaults(func=_cmd_student)

    p = sub.add_parser(
        "grade", help="grade a submitted notebook, or a whole class into a gradebook"
    )
    p.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help="a notebook (.ipynb), or folders and notebooks of a whole class",
    )
    p.add_argument("--json", help="(one notebook) also write the report as JSON to this file")
    p.add_argument(
        "--student",
        help="(one notebook) the student's id, for their own numbers of variant exercises",
    )
    p.add_argument("--gradebook", help="(a class) the gradebook CSV to write: one row per student")
    p.add_argument(
        "--reports", help="(a class) folder for each student's <id>.json and <id>.md feedback"
    )
    p.add_argument(
        "--roster",
        help="(a class) roster CSV: columns `id` and `file` (the submission's file name)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="(a class) submissions graded at once (default: 2; each "
        "needs up to ~1.1 GiB of memory and a core)",
    )
    p.add_argument("--state", help="(a class) folder of kept results (default: <gradebook>.state)")
    p.add_argument(
        "--force", action="store_true", help="(a class) grade again even what is unchanged"
    )
    p.add_argument("--no-progress", action="store_true", help="(a class) no progress bar")
    p.add_argument(
        "--reference",
        help="(a class) folder of the chapters as the book has them (default: book/): "
        "the cells before a chapter's first exercise run once from there, and submissions that have "
        "them unchanged start from their state",
    )
    p.add_argument(
        "--no-shared-cells",
        action="store_true",
        help="(a class) run every cell of every submission",
    )
    _add_limits(p)
    p.add_argument(
        "--chapter", help="the chapter (default: from the notebook's metadata or exercise labels)"
    )
    p.add_argument(
        "--tests-dir",
        help="folder of hidden tests (default: coursework/tests; keep your own "
        "private copy outside the repository if students can read it)",
    )
    _add_secret(p)
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run the submission without the bubblewrap sandbox: only for code you trust "
        "(without it the grader refuses to run where no sandbox can be made)",
    )
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser(
        "gradescope", help="write a Gradescope autograder bundle (autograder.zip) for a chapter"
    )
    p.add_argument(
        "chapter", help="the chapter, e.g. dropout (its hidden tests file <tests-dir>/<chapter>.py)"
    )
    p.add_argument(
        "--out", default="autograder.zip", help="the zip file to write (default: autograder.zip)"
    )
    p.add_argument("--tests-dir", help="folder of hidden tests (default: coursework/tests)")
    p.add_argument(
        "--student-field",
        default="email",
        choices=["email", "sid", "id", "name"],
        help="which field of Gradescope's submission_metadata.json users[0] is the student's id for "
        "per-student numbers: the id your roster used (default: email)",
    )
    p.add_argument(
        "--if-no-sandbox",
        default="refuse",
        choices=["refuse", "unsandboxed"],
        help="what run_autograder does where bubblewrap cannot make a sandbox: refuse (score 0 and "
        "a message; the default) or grade without one (only for trusted submissions)",
    )
    p.add_argument(
        "--visibility",
        default="visible",
        choices=["visible", "after_due_date", "after_published", "hidden"],
        help="when students see the per-exercise results on Gradescope (default: visible)",
    )
    _add_limits(p)
    _add_secret(p)
    # under Gradescope's own limit for run_autograder (10 minutes unless the assignment sets more),
    # so that results.json is written before Gradescope stops the container
    p.set_defaults(func=_cmd_gradescope, notebook_timeout=480.0)

    p = sub.add_parser(
        "gradescope-run", help=argparse.SUPPRESS
    )  # what the bundle's run_autograder calls
    p.add_argument("--root", default="/autograder")
    p.add_argument("--source")
    p.set_defaults(func=_cmd_gradescope_run)

    p = sub.add_parser("list", help="list each chapter's exercises and how they are graded")
    p.add_argument("notebooks", nargs="*", help="chapter notebooks (default: every book/*.ipynb)")
    p.add_argument("--tests-dir", help="folder of hidden tests (default: coursework/tests)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("check-sandbox", help="say whether the bubblewrap sandbox works here")
    p.set_defaults(func=_cmd_check_sandbox)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
