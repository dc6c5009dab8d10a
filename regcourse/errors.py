"""Errors a learner meets in a notebook, printed as one line instead of a traceback.

IPython shows an exception through its ``_render_traceback_()`` method when the
exception has one; the errors here return just ``"ClassName: message"``, so a
missing package or a mismatched ``regcourse`` version reads as one sentence that
names the command to run, not as thirty lines of library internals. Outside
IPython they are ordinary exceptions (``ImportError``, ``RuntimeError``).
"""

from __future__ import annotations

__all__ = ["MissingDependencyError", "VersionMismatchError"]


class _OneLineError(Exception):
    """Mixin: IPython renders the exception as its one-line message."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class MissingDependencyError(_OneLineError, ImportError):
    """An optional package that a function needs is not installed.

    The message names the exact ``pip install`` command.

    Example:
        >>> err = MissingDependencyError("mnist1d", "pip install mnist1d==0.0.2.post1")
        >>> err._render_traceback_()
        ['MissingDependencyError: mnist1d is not installed; run: pip install mnist1d==0.0.2.post1']
    """

    def __init__(self, package: str, command: str) -> None:
        super().__init__(f"{package} is not installed; run: {command}", name=package)
        self.package = package
        self.command = command


class VersionMismatchError(_OneLineError, RuntimeError):
    """The installed ``regcourse`` is not the version a chapter was written for.

    Raised by :func:`regcourse.setup`; the message names the wheel to install.
    """
