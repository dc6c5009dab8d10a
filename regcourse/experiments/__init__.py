"""Named experiments: the code behind every figure and table of the course.

Each chapter's experiments live in a module of this package and register
themselves with :func:`experiment`. A chapter calls them directly
(``run("core_problem", seeds=5)``); the command line runs the same functions
(``python -m regcourse run core_problem --seeds 5 --out results/``).

An experiment is a function that takes keyword options (each with a default and
a type) plus ``progress``, and returns a :class:`Result`: the rows of its table,
its checked claims, and optionally a figure.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import inspect
import io
import json
import math
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Experiment", "Result", "experiment", "registry", "get", "run", "save", "mean_std"]

# modules of this package that define experiments, imported on first use
_MODULES = (
    "core_problem",
    "batch_norm",
    "augmentation",
    "early_stopping",
    "depth",
    "combining",
    "weight_decay",
    "dropout",
    "label_smoothing",
)


@dataclass
class Result:
    """What an experiment returns.

    Attributes:
        name: the experiment's name.
        options: the options it ran with.
        rows: its table, one dict per row (JSON/CSV-serialisable values).
        claims: named checked statements, ``{"gap shrinks": True, ...}``.
        figure: a matplotlib Figure, or ``None``.
        extra: anything else a chapter wants (histories, tensors); not saved.
    """

    name: str
    options: dict[str, Any]
    rows: list[dict[str, Any]]
    claims: dict[str, bool] = field(default_factory=dict)
    figure: Any = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def print_claims(self) -> None:
        """Print each claim as ``claim: True/False`` (stable text for nbval)."""
        for text, ok in self.claims.items():
            print(f"{text}: {bool(ok)}")

    @property
    def all_claims_hold(self) -> bool:
        return all(bool(v) for v in self.claims.values())


@dataclass(frozen=True)
class Experiment:
    name: str
    func: Callable[..., Result]
    help: str
    options: dict[str, tuple[type, Any, str]]  # name -> (type, default, help)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1`` in the denominator; ``0.0`` for a
    single value) of a non-empty sequence of numbers: how every experiment reports seeds."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("values must not be empty")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


_REGISTRY: dict[str, Experiment] = {}
_loaded = False


def experiment(name: str, help: str, **option_help: str):
    """Register ``func`` as the experiment ``name``.

    The options are ``func``'s keyword arguments (other than ``progress``); their
    defaults and annotations give the command line's defaults and types, and
    ``option_help`` their help texts.
    """

    def register(func: Callable[..., Result]) -> Callable[..., Result]:
        options = {}
        for pname, param in inspect.signature(func).parameters.items():
            if pname == "progress":
                continue
            if param.default is inspect.Parameter.empty:
                raise TypeError(f"option {pname!r} of experiment {name!r} needs a default")
            typ = type(param.default)
            options[pname] = (typ, param.default, option_help.get(pname, ""))
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"experiment {name!r} is registered twice")
        _REGISTRY[name] = Experiment(name, func, help, options)
        return func

    return register


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{mod}":
                raise
    _loaded = True


def registry() -> dict[str, Experiment]:
    """All registered experiments by name."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` listing the known names otherwise."""
    known = registry()
    if name not in known:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(known) or '(none)'}")
    return known[name]


def run(name: str, *, progress: bool = False, **options) -> Result:
    """Run the experiment ``name`` with ``options`` (unknown options are a ``TypeError``)."""
    exp = get(name)
    unknown = sorted(set(options) - set(exp.options))
    if unknown:
        raise TypeError(
            f"experiment {name!r} has no option {unknown[0]!r}; options: {', '.join(exp.options)}"
        )
    result = exp.func(progress=progress, **options)
    if not isinstance(result, Result):
        raise TypeError(f"experiment {name!r} returned {type(result).__name__}, not Result")
    return result


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a
    rename, so an interrupted run never leaves a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _jsonable(value):
    """Plain JSON values; NaN and ±inf become ``None`` (JSON ``null``), so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dataclasses.is_dataclass(value):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return value


def save(result: Result, folder: str | os.PathLike, fmt: str = "json") -> list[Path]:
    """Write ``result``'s table (``<name>.json`` or ``<name>.csv``) and figure
    (``<name>.png``) into ``folder``, atomically. Returns the written paths."""
    if fmt not in ("json", "csv"):
        raise ValueError(f"fmt must be 'json' or 'csv', got {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt == "json":
        payload = {
            "experiment": result.name,
            "options": _jsonable(result.options),
            "rows": _jsonable(result.rows),
            "claims": {k: bool(v) for k, v in result.claims.items()},
        }
        data = (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode()
    else:
        buf = io.StringIO()
        columns = list(dict.fromkeys(k for row in result.rows for k in row))
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in result.rows:
            writer.writerow(_jsonable(row))
        data = buf.getvalue().encode()
    # Render everything in memory first, then write: an interruption while drawing
    # leaves the previous table and figure untouched, never a mismatched pair.
    png = None
    if result.figure is not None:
        buf = io.BytesIO()
        result.figure.savefig(buf, format="png", dpi=100)
        png = buf.getvalue()
    files = [(folder / f"{result.name}.{fmt}", data)]
    if png is not None:
        files.append((folder / f"{result.name}.png", png))
    _atomic_write_all(files)
    written.extend(path for path, _ in files)
    return written


class _signals_deferred:
    """Hold SIGINT and SIGTERM (main thread, where the OS supports it) until the block ends."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.active = (
            hasattr(signal, "pthread_sigmask")
            and threading.current_thread() is threading.main_thread()
        )
        if self.active:
            signal.pthread_sigmask(signal.SIG_BLOCK, self._SIGNALS)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self._SIGNALS)
        return False


def _atomic_write_all(files: list[tuple[Path, bytes]]) -> None:
    """Write several files so that the folder holds either all the old ones or all the new ones.

    Each file is first written completely to a temporary file beside it (fsynced); then,
    with Ctrl-C and SIGTERM held back, every old file is kept as a hard-linked backup and
    the temporary files are renamed into place. If anything fails on the way, the files
    already replaced get their old versions back (or are removed if they are new).
    """
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            temps.append((_write_temp(path, data), path))
        backups: list[tuple[Path, Path | None]] = []
        with _signals_deferred():
            try:
                for tmp, path in temps:
                    backup = None
                    if path.exists():
                        backup = path.with_name(f".{path.name}.bak")
                        if backup.exists():
                            backup.unlink()
                        os.link(path, backup)
                    backups.append((path, backup))
                    os.replace(tmp, path)
            except BaseException:
                for path, backup in reversed(backups):
                    if backup is not None:
                        os.rename(backup, path)  # POSIX rename replaces the target
                    elif path.exists():
                        path.unlink()
                raise
            finally:
                for _, backup in backups:
                    if backup is not None and backup.exists():
                        backup.unlink()
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _write_temp(path: Path, data: bytes) -> str:
    """``data`` in a new temporary file in ``path``'s folder (normal permissions, fsynced)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp
