"""Command line: run any chapter's experiment and save its results.

python -m regcourse list
python -m regcourse run core_problem --seeds 5 --out results/ --format csv
python -m regcourse run core_problem --help
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from . import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser(experiments) -> _Parser:
    parser = _Parser(
        prog="python -m regcourse",
        description="Run the experiments of the course 'Regularization for deep networks'.",
    )
    parser.add_argument("--version", action="version", version=f"regcourse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    sub.add_parser("list", help="list the experiments and their options")
    run = sub.add_parser("run", help="run an experiment: python -m regcourse run NAME [options]")
    names = run.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=_Parser)
    names.required = True
    for exp in experiments.values():
        p = names.add_parser(exp.name, help=exp.help, description=exp.help)
        p.add_argument("--out", default="results", help="folder for the results (default: results)")
        p.add_argument(
            "--format", choices=["json", "csv"], default="json", help="table format (default: json)"
        )
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        for opt, (typ, default, text) in exp.options.items():
            flag = "--" + opt.replace("_", "-")
            if typ is bool:
                p.add_argument(
                    flag,
                    type=_parse_bool,
                    default=default,
                    metavar="{true,false}",
                    help=f"{text} (default: {default})".strip(),
                )
            else:
                p.add_argument(
                    flag, type=typ, default=default, help=f"{text} (default: {default})".strip()
                )
    return parser


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _prepare_out(text: str) -> tuple[Path, list[Path]]:
    """Check the output folder before anything runs: not empty, not a file, writable.

    Creates the folder (and missing parents) and writes and removes a probe file in it.
    Returns the folder and the folders it created (removed again if the run fails).

    Raises:
        ValueError: naming ``--out`` and the reason.
    """
    if not text.strip():
        raise ValueError(f"--out must name a folder, got {text!r}")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out must be a folder, but {str(folder)!r} is a file")
    created = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--out {str(folder)!r} cannot be created: {str(probe)!r} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".regcourse-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        _remove_created(created)
        raise ValueError(f"--out {str(folder)!r} is not writable: {err.strerror or err}") from None
    return folder, created


def _remove_created(created: list[Path]) -> None:
    for path in created:  # deepest first
        try:
            path.rmdir()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    from . import experiments

    known = experiments.registry()
    parser = _build_parser(known)
    args = parser.parse_args(argv)
    if args.command == "list":
        for exp in known.values():
            opts = ", ".join(f"--{o.replace('_', '-')}={d}" for o, (_, d, _) in exp.options.items())
            print(f"{exp.name:<18} {exp.help}")
            if opts:
                print(f"{'':<18} options: {opts}")
        return 0
    exp = known[args.experiment]
    options = {o: getattr(args, o) for o in exp.options}
    try:
        out, created = _prepare_out(args.out)
    except ValueError as err:
        print(f"python -m regcourse run {exp.name}: error: {err}", file=sys.stderr)
        return 2
    try:
        result = experiments.run(exp.name, progress=not args.no_progress, **options)
    except (ValueError, TypeError) as err:
        _remove_created(created)
        print(f"python -m regcourse run {exp.name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _remove_created(created)
        print("interrupted: no result written", file=sys.stderr)
        return 130
    try:
        paths = experiments.save(result, out, args.format)
    except KeyboardInterrupt:
        print("interrupted: no partial result written", file=sys.stderr)
        return 130
    except OSError as err:
        print(
            f"python -m regcourse run {exp.name}: error: cannot write results: {err}",
            file=sys.stderr,
        )
        return 2
    for text, ok in result.claims.items():
        print(f"{text}: {bool(ok)}")
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
