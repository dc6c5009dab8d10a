"""How a hidden-test file describes a chapter's exercises.

A file ``coursework/tests/<chapter>.py`` builds one :class:`Chapter` named
``CHAPTER`` and registers its exercises and their tests::

    CHAPTER = Chapter("dropout", "Dropout")
    ex2 = CHAPTER.exercise("do-ex2", "Implement inverted dropout",
                           functions=["ex_inverted_dropout"], forbid=["apply_dropout_mask"])

    @ex2.test(points=2)
    def random_tensors(student):
        h, mask = ..., ...
        assert_tensor_close(student.call("ex_inverted_dropout", h, mask, 0.3),
                            apply_dropout_mask(h, mask, 0.3), what="ex_inverted_dropout(h, mask, 0.3)")

A test is a plain function of one argument, ``student``, run in the grader's
process; it passes when it returns and fails on an exception (the message is
shown to the student). ``student.value(name)`` fetches a variable of the
submission and ``student.call(name, *args)`` calls one of its functions; both run
in the student's process, which never sees this file.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

from ._worker import Expr

__all__ = [
    "Chapter",
    "Exercise",
    "Expr",
    "Test",
    "NotAnswered",
    "as_float",
    "assert_number_close",
    "assert_tensor_close",
]


class NotAnswered(AssertionError):
    """The student left a placeholder (``...``) or did not define the name."""


@dataclass
class Test:
    """One hidden test: ``func(student)`` passes by returning, fails by raising."""

    name: str
    points: float
    func: Callable
    description: str = ""


@dataclass
class Exercise:
    """An exercise of a chapter, identified by its ``:label:``.

    Args:
        label: the exercise's MyST label, e.g. ``"do-ex2"``.
        title: the exercise's title (for the score table).
        timeout: time limit in seconds for all its tests together; ``None`` uses
            the grader's ``--timeout``.
        functions: names of the functions the student writes (for ``forbid``).
        forbid: names these functions may not use (the package function that
            the exercise asks to re-implement); using one scores 0.
        manual: what a human has to read (written answers, predictions), or
            ``None`` when the tests grade the whole exercise.
    """

    label: str
    title: str
    timeout: float | None = None
    functions: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    manual: str | None = None
    tests: list[Test] = field(default_factory=list)
    draw: Callable | None = None  # see :meth:`variants`
    published: dict | None = None  # the numbers the book shows

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)

    def variants(self, draw: Callable, *, published: dict) -> Callable:
        """Give each student their own numbers for this exercise.

        ``draw(rng)`` returns the exercise's inputs as a dict of plain Python literals
        (numbers, strings, bools, None, and lists or tuples of them), drawn from
        ``rng``, a :class:`random.Random` seeded from the student's id and the course
        secret (``coursework/variants.py``). ``published`` is the dict the book's
        variant cell holds (the cell with ``metadata.regcourse.variant = <label>``, see
        CONTRIBUTING.md); students without a variant, and the book itself, are graded
        against it. A draw equal to ``published`` is drawn again, so a solution copied
        from the book never fits a variant.

        A test reads the numbers of the submission it grades as ``student.variant``
        (a dict, a copy) and computes the expected answer from them.
        """
        from .variants import check_values

        if not callable(draw):
            raise TypeError(
                f"{self.label}: draw must be a function of rng, got {type(draw).__name__}"
            )
        if self.draw is not None:
            raise ValueError(f"{self.label}: variants are declared twice")
        self.published = check_values(published, f"{self.label}: published")
        if not self.published:
            raise ValueError(f"{self.label}: published must name at least one value")
        self.draw = draw
        return draw

    def test(self, points: float, name: str | None = None):
        """Decorator registering a hidden test worth ``points``."""
        if not isinstance(points, numbers.Real) or isinstance(points, bool) or not points > 0:
            raise ValueError(f"points must be a positive number, got {points!r}")

        def register(func: Callable) -> Callable:
            test_name = name or func.__name__.replace("_", " ")
            if any(t.name == test_name for t in self.tests):
                raise ValueError(f"{self.label}: two tests named {test_name!r}")
            doc = (func.__doc__ or "").strip().splitlines()
            self.tests.append(Test(test_name, float(points), func, doc[0] if doc else ""))
            return func

        return register


class Chapter:
    """The exercises of one chapter notebook ``book/<name>.ipynb``."""

    def __init__(self, name: str, title: str):
        self.name, self.title = name, title
        self.exercises: dict[str, Exercise] = {}

    def exercise(
        self,
        label: str,
        title: str,
        *,
        timeout: float | None = None,
        functions=(),
        forbid=(),
        manual: str | None = None,
    ) -> Exercise:
        if label in self.exercises:
            raise ValueError(f"exercise {label!r} is registered twice")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        ex = Exercise(label, title, timeout, tuple(functions), tuple(forbid), manual)
        self.exercises[label] = ex
        return ex

    @property
    def max_score(self) -> float:
        return sum(ex.max_score for ex in self.exercises.values())


# --- assertions for hidden tests --------------------------------------------


def _require_answered(value, what: str):
    if value is Ellipsis:
        raise NotAnswered(f"{what} is still `...`: replace it with your answer")
    return value


def as_float(value, what: str) -> float:
    """A Python number, numpy scalar or one-element tensor/array as ``float``; else AssertionError."""
    _require_answered(value, what)
    if isinstance(value, bool):
        raise AssertionError(f"{what} should be a number, got a bool")
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:  # torch tensor
        return float(value.item())
    if (
        hasattr(value, "size") and hasattr(value, "item") and getattr(value, "size", 0) == 1
    ):  # numpy
        return float(value.item())
    raise AssertionError(f"{what} should be a number, got {type(value).__name__}: {value!r}")


def assert_number_close(got, expected: float, *, tol: float, what: str, rel: bool = False) -> None:
    """``got`` is a number within ``tol`` of ``expected`` (relative when ``rel``)."""
    value = as_float(got, what)
    limit = tol * abs(expected) if rel else tol
    if not (math.isfinite(value) and abs(value - expected) <= limit):
        raise AssertionError(
            f"{what} = {value!r} is not within {tol:g}{' (relative)' if rel else ''} "
            f"of the expected {expected!r}"
        )


def assert_tensor_close(
    got, expected, *, rtol: float, atol: float, what: str, check_dtype: bool = True
) -> None:
    """``got`` is a tensor of ``expected``'s shape (and dtype) with close values."""
    import torch

    _require_answered(got, what)
    if not isinstance(got, torch.Tensor):
        raise AssertionError(
            f"{what} should return a tensor, got {type(got).__name__}: {got!r}"[:300]
        )
    if tuple(got.shape) != tuple(expected.shape):
        raise AssertionError(
            f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        )
    if check_dtype and got.dtype != expected.dtype:
        raise AssertionError(f"{what} has dtype {got.dtype}, expected {expected.dtype}")
    if not torch.allclose(got.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=False):
        worst = (got.to(expected.dtype) - expected).abs().max().item()
        raise AssertionError(
            f"{what} differs from the expected values (largest difference {worst:.3g})"
        )
