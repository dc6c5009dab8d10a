"""Per-student variants: each student's own numbers for an exercise, from a secret seed.

An exercise whose hidden tests call ``ex.variants(draw, published=...)`` (see
:meth:`coursework.spec.Exercise.variants`) has one set of inputs per student:

- the seed of student ``id`` for exercise ``label`` of ``chapter`` is
  ``HMAC-SHA256(secret, "regcourse-coursework-variant-v1\\0<chapter>\\0<label>\\0<id>")``
  (its first 8 bytes as an integer), where ``secret`` is the instructor's course
  secret (``--secret-file``, ``--secret`` or ``COURSEWORK_SECRET``). Without the
  secret nobody can compute another student's numbers, even knowing their id;
- ``draw(random.Random(seed))`` gives the numbers (drawn again while they equal the
  published ones, so the book's solution never fits a variant);
- ``make student ROSTER=roster.csv`` writes them into each student's notebook (the
  exercise's variant cell and the exercise text's marked numbers) and records them
  in the notebook's metadata with an HMAC signature (:func:`record`); the grader
  recomputes them from the student's id anyway, and reports a notebook that was
  issued to someone else or whose record was altered.

Without a secret, or for a student without an id, every exercise keeps the
published numbers: the book's own solutions then score full marks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import random
import re
from pathlib import Path

__all__ = [
    "check_values",
    "chapter_values",
    "draw_values",
    "load_secret",
    "record",
    "safe_name",
    "seed",
    "verify_record",
    "MIN_SECRET",
]

SEED_CONTEXT = b"regcourse-coursework-variant-v1"
SIGN_CONTEXT = b"regcourse-coursework-notebook-v1"
MIN_SECRET = 16  # characters of a course secret
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_DRAWS = 100


# --- the secret ------------------------------------------------------------------------------


def load_secret(
    value: str | None = None, file: str | os.PathLike | None = None, env: dict | None = None
) -> bytes | None:
    """The course secret from ``value``, else the file ``file``, else ``COURSEWORK_SECRET``; None if none.

    A secret shorter than :data:`MIN_SECRET` characters is refused (ValueError): a short
    one could be guessed from the numbers of a few variants.
    """
    env = os.environ if env is None else env
    if value is None and file is not None:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the secret file {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"the secret file {file} is not UTF-8 text") from None
        source = f"the secret file {file}"
    elif value is None:
        value = env.get("COURSEWORK_SECRET")
        source = "COURSEWORK_SECRET"
        if value is None:
            return None
    else:
        source = "--secret"
    if not isinstance(value, str):
        raise TypeError(f"secret must be a str, got {type(value).__name__}")
    if len(value.strip()) < MIN_SECRET:
        raise ValueError(
            f"the course secret ({source}) must have at least {MIN_SECRET} characters, "
            f"got {len(value.strip())}"
        )
    return value.strip().encode("utf-8")


def fingerprint(secret: bytes | None) -> str:
    """A short public name of a secret (it changes when the secret does; it does not reveal it)."""
    if secret is None:
        return "none"
    return hmac.new(secret, b"regcourse-coursework-fingerprint", hashlib.sha256).hexdigest()[:16]


# --- the numbers --------------------------------------------------------------------------------


def _check_literal(value, what: str, depth: int = 0):
    if depth > 4:
        raise ValueError(f"{what} is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} must be finite, got {value!r}")
        return float(value)
    if isinstance(value, (list, tuple)):
        if len(value) > 10_000:
            raise ValueError(f"{what} has more than 10000 items")
        items = [_check_literal(v, f"{what}[{i}]", depth + 1) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    # numpy scalars and 0-dim tensors: their Python number
    if callable(getattr(value, "item", None)) and tuple(getattr(value, "shape", (None,))) == ():
        return _check_literal(value.item(), what, depth)
    raise TypeError(
        f"{what} must be a number, str, bool, None, or a list or tuple of them "
        f"(a Python literal the notebook can show), got {type(value).__name__}"
    )


def check_values(values, what: str = "values") -> dict:
    """``values`` as a dict ``{identifier: literal}``; ValueError/TypeError naming what is wrong."""
    if not isinstance(values, dict):
        raise TypeError(
            f"{what} must be a dict of variable names to values, got {type(values).__name__}"
        )
    out = {}
    for name, value in values.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{what}: {name!r} is not a Python variable name")
        out[name] = _check_literal(value, f"{what}[{name!r}]")
    return out


def seed(secret: bytes, chapter: str, label: str, student: str) -> int:
    """The seed of ``student``'s variant of exercise ``label`` (a 64-bit integer)."""
    if not isinstance(secret, bytes) or not secret:
        raise TypeError("secret must be non-empty bytes (see load_secret)")
    message = b"\0".join([SEED_CONTEXT, chapter.encode(), label.encode(), student.encode()])
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big")


def draw_values(ex, chapter: str, student: str, secret: bytes) -> dict:
    """``student``'s numbers for the exercise ``ex`` (which declares ``variants``)."""
    rng = random.Random(seed(secret, chapter, ex.label, student))
    for _ in range(_MAX_DRAWS):
        values = check_values(ex.draw(rng), f"{ex.label}: the values drawn")
        if set(values) != set(ex.published):
            raise ValueError(
                f"{ex.label}: draw returned {sorted(values)}, but published names "
                f"{sorted(ex.published)}"
            )
        if values != ex.published:
            return values
    raise ValueError(f"{ex.label}: draw returned the published values {_MAX_DRAWS} times in a row")


def chapter_values(spec, student: str | None, secret: bytes | None) -> dict[str, dict]:
    """``{label: values}`` for every exercise of ``spec`` that has variants.

    The student's own numbers when both ``student`` and ``secret`` are given, else the
    published ones.
    """
    out = {}
    for label, ex in spec.exercises.items():
        if ex.draw is None:
            continue
        if student and secret:
            out[label] = draw_values(ex, spec.name, student, secret)
        else:
            out[label] = dict(ex.published)
    return out


# --- the signed record in a student's notebook ----------------------------------------------------


def _payload(chapter: str, student: str, exercises: dict) -> bytes:
    return json.dumps(
        {"chapter": chapter, "student": student, "exercises": exercises},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


def record(secret: bytes, chapter: str, student: str, exercises: dict) -> dict:
    """What ``make student`` stores in ``metadata.coursework.variant`` of ``student``'s notebook."""
    exercises = json.loads(json.dumps(exercises))  # tuples as lists: what the notebook's JSON keeps
    signature = hmac.new(
        secret, SIGN_CONTEXT + b"\0" + _payload(chapter, student, exercises), hashlib.sha256
    ).hexdigest()
    return {"student": student, "exercises": exercises, "signature": signature}


def verify_record(data, secret: bytes | None, chapter: str) -> tuple[str, str | None]:
    """(status, student) of an untrusted ``metadata.coursework.variant``.

    status is ``"none"`` (no record), ``"malformed"``, ``"unchecked"`` (no secret to check it
    with), ``"valid"`` or ``"invalid"`` (altered, or signed with another secret);
    ``student`` is the id the record names (None if it names none).
    """
    if data is None:
        return "none", None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("student"), str)
        or not isinstance(data.get("signature"), str)
        or not isinstance(data.get("exercises"), dict)
    ):
        return "malformed", None
    student = data["student"][:200]
    if secret is None:
        return "unchecked", student
    try:
        expected = record(secret, chapter, data["student"], data["exercises"])["signature"]
    except (TypeError, ValueError, RecursionError):
        return "malformed", student
    return ("valid" if hmac.compare_digest(expected, data["signature"]) else "invalid"), student


# --- ids as file names ------------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def safe_name(student: str) -> str:
    """A file name for ``student``'s files: the id itself when it is plain, else a cleaned id plus a hash.

    Plain means letters, digits and ``. _ @ + -``, not starting with a dot, at most 100
    characters; anything else (slashes, spaces, control characters) is replaced and a short
    hash of the id keeps two different ids apart.
    """
    if not isinstance(student, str) or not student:
        raise ValueError(f"a student id must be a non-empty str, got {student!r}")
    cleaned = _SAFE.sub("_", student)[:100]
    if cleaned == student and not student.startswith("."):
        return student
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned.lstrip('.') or 'id'}-{digest}"
