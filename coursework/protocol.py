"""The grader's side of the worker channel: strict reading of untrusted replies, and safe text.

Everything the worker sends is written by a process the student controls, so it is
parsed here as hostile input:

- a reply is one line of at most :data:`MAX_LINE` bytes that starts with the exact
  request id the grader chose (``{"id": "<32 hex digits>"``); anything else on the
  channel is skipped as noise (:class:`LineReader` never holds more than one line);
- the line is JSON (a nesting bomb raises inside ``json.loads`` and is caught);
- the value inside is rebuilt by :func:`decode_value`, which accepts only the forms
  the worker's ``encode`` writes, with limits on depth, element counts, string
  lengths, integer sizes, tensor dtypes and shapes, and raises :class:`BadReply`
  for anything else. Nothing is ever evaluated or unpickled.

:func:`clean_text` makes student-written text (error messages, reprs) safe to show:
no control or format characters, no newlines, bounded length.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata

__all__ = [
    "BadReply",
    "LineReader",
    "Other",
    "clean_text",
    "decode_value",
    "parse_reply",
    "MAX_LINE",
    "MAX_ELEMENTS",
    "MAX_DEPTH",
]

MAX_LINE = 8 << 20  # bytes in one reply line
MAX_ELEMENTS = 200_000  # numbers, strings and containers in one reply
MAX_DEPTH = 32  # nesting of containers in a value
MAX_STRING = 1 << 20  # characters in one string of a value
MAX_DIMS = 16  # dimensions of a tensor or array
MAX_INT_DIGITS = 400  # digits of a "bigint"

TORCH_DTYPES = {
    "torch.float16",
    "torch.bfloat16",
    "torch.float32",
    "torch.float64",
    "torch.int8",
    "torch.int16",
    "torch.int32",
    "torch.int64",
    "torch.uint8",
    "torch.bool",
}
NUMPY_DTYPES = {
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
}
_INT_RANGE = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_UINT_RANGE = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}


class BadReply(Exception):
    """A reply from the worker that does not follow the protocol."""


class Other:
    """A value of a type the protocol does not carry; equal to nothing (also to itself)."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>" if self.text else f"<{self.type_name}>"

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = None


# --- framing ---------------------------------------------------------------------------


class LineReader:
    """Split a byte stream into lines of at most ``max_line`` bytes; longer lines are dropped.

    ``feed`` returns the complete lines it found; the part of a line longer than
    ``max_line`` is discarded as it arrives, so memory stays bounded whatever is sent.
    """

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False
        self.dropped = 0  # over-long lines thrown away

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif len(self._buffer) + end - start <= self.max_line:
                self._buffer += chunk[start:end]
                lines.append(bytes(self._buffer))
            else:
                self.dropped += 1
            self._buffer.clear()
            start = end + 1
        rest = chunk[start:]
        if not self._discarding:
            if len(self._buffer) + len(rest) > self.max_line:
                self._buffer.clear()
                self._discarding = True
                self.dropped += 1
            else:
                self._buffer += rest
        return lines


_ID = re.compile(rb'\{"id": "([0-9a-f]{32})"')


def reply_id(line: bytes) -> str | None:
    """The request id a reply line starts with, or None for noise."""
    found = _ID.match(line)
    return found.group(1).decode() if found else None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 30:
        raise ValueError("integer literal too long")
    return int(text)


def parse_reply(line: bytes) -> dict:
    """The JSON object of one reply line; BadReply if it is not one."""
    if line.count(b",") + line.count(b":") > 4 * MAX_ELEMENTS:
        raise BadReply("the reply has too many elements")
    try:
        message = json.loads(line, parse_int=_bounded_int)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise BadReply(f"the reply is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise BadReply("the reply is not a JSON object")
    return message


# --- values ------------------------------------------------------------------------------


class _Budget:
    def __init__(self):
        self.left = MAX_ELEMENTS

    def take(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise BadReply(f"the value has more than {MAX_ELEMENTS} elements")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v, what: str):
    """A JSON number or the worker's encoding of a non-finite float."""
    if isinstance(v, bool) or isinstance(v, (int, float)):
        return v
    if isinstance(v, dict) and v.get("__t") == "float" and set(v) == {"__t", "value"}:
        if v["value"] in ("nan", "inf", "-inf"):
            return float(v["value"])
    raise BadReply(f"{what} holds a non-number")


def _string(v, what: str, limit: int = MAX_STRING) -> str:
    if not isinstance(v, str) or len(v) > limit:
        raise BadReply(f"{what} is not a string of at most {limit} characters")
    return v


def _hashable(key):
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


def decode_value(data, _depth: int = 0, _budget: _Budget | None = None):
    """Rebuild a value the worker encoded; BadReply for anything outside the protocol."""
    budget = _budget if _budget is not None else _Budget()
    budget.take()
    if _depth > MAX_DEPTH:
        raise BadReply(f"the value is nested deeper than {MAX_DEPTH} levels")
    if data is None or isinstance(data, bool):
        return data
    if isinstance(data, str):
        return _string(data, "a string")
    if isinstance(data, int):
        if abs(data) >= 2**63:
            raise BadReply("an integer is out of range")
        return data
    if isinstance(data, float):
        return data
    if isinstance(data, list):
        return [decode_value(v, _depth + 1, budget) for v in data]
    if not isinstance(data, dict):
        raise BadReply(f"a value of JSON type {type(data).__name__}")
    kind = data.get("__t")
    if kind == "ellipsis" and len(data) == 1:
        return Ellipsis
    if kind == "float" and len(data) == 2:
        return _number(data, "a float")
    if kind == "bigint" and len(data) == 2:
        text = _string(data.get("value"), "a big integer", MAX_INT_DIGITS + 1)
        if not re.fullmatch(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}", text):
            raise BadReply("a big integer is malformed")
        return int(text)
    if kind == "tuple" and len(data) == 2 and isinstance(data.get("items"), list):
        return tuple(decode_value(v, _depth + 1, budget) for v in data["items"])
    if kind == "dict" and len(data) == 2 and isinstance(data.get("items"), list):
        out = {}
        for pair in data["items"]:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise BadReply("a dict entry is not a [key, value] pair")
            key = decode_value(pair[0], _depth + 1, budget)
            out[_hashable(key)] = decode_value(pair[1], _depth + 1, budget)
        return out
    if kind in ("tensor", "ndarray") and set(data) == {"__t", "dtype", "shape", "data"}:
        return _decode_array(data, budget)
    if kind == "other" and set(data) <= {"__t", "type", "repr"}:
        return Other(
            clean_text(_string(data.get("type", "?"), "a type name", 200), 100),
            clean_text(_string(data.get("repr", ""), "a repr", 10_000), 200),
        )
    raise BadReply("a value of an unknown form")


def _decode_array(data: dict, budget: _Budget):
    kind, dtype, shape, values = data["__t"], data["dtype"], data["shape"], data["data"]
    allowed = TORCH_DTYPES if kind == "tensor" else NUMPY_DTYPES
    if not isinstance(dtype, str) or dtype not in allowed:
        raise BadReply(f"a {kind} of an unsupported dtype")
    if not (
        isinstance(shape, list)
        and len(shape) <= MAX_DIMS
        and all(_is_int(s) and 0 <= s <= MAX_ELEMENTS for s in shape)
    ):
        raise BadReply(f"a {kind} with a malformed shape")
    size = math.prod(shape)
    if not isinstance(values, list) or len(values) != size or size > MAX_ELEMENTS:
        raise BadReply(f"a {kind} whose data does not match its shape")
    budget.take(size)
    name = dtype.removeprefix("torch.")
    if name == "bool":
        if not all(isinstance(v, bool) for v in values):
            raise BadReply(f"a bool {kind} holds non-bools")
    elif name.startswith(("int", "uint")):
        bits = _INT_RANGE.get(name) or _UINT_RANGE[name]
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if name.startswith("int") else (0, 2**bits)
        if not all(_is_int(v) and lo <= v < hi for v in values):
            raise BadReply(f"an {name} {kind} holds values that are not {name} integers")
    else:
        values = [float(_number(v, f"a {kind}")) for v in values]
    if kind == "tensor":
        import torch

        return torch.tensor(values, dtype=getattr(torch, name)).reshape(shape)
    import numpy as np

    return np.array(values, dtype=np.dtype(name)).reshape(shape)


# --- text shown to people ------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def clean_text(text, limit: int = 500, ascii_only: bool = False) -> str:
    """Student-written text made safe to print: one line, no control or format characters.

    Whitespace runs (newlines, tabs, form feeds, Unicode spaces) become one space;
    every other character that is not printable (escape codes, bidi overrides,
    zero-width characters, surrogates) is shown as ``\\xNN``/``\\uNNNN``; with
    ``ascii_only`` every non-ASCII character is escaped too, so that each character
    takes one column in a terminal. The result has at most ``limit`` characters.
    """
    if not isinstance(text, str):
        text = repr(text)
    text = _SPACE.sub(" ", text[: 4 * limit + 64]).strip()
    out = []
    for ch in text:
        if (
            ch.isprintable()
            and not (ascii_only and ord(ch) > 126)
            and unicodedata.category(ch) not in ("Cf", "Cs")
        ):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 256
                else f"\\u{code:04x}"
                if code < 65536
                else f"\\U{code:08x}"
            )
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."
