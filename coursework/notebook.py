"""Read a chapter's exercises and write its student version.

The chapter notebooks follow CONTRIBUTING.md item 10: a markdown cell with an
``{exercise}`` directive and a ``:label:``, a markdown cell ``{solution-start}
<label>``, solution cells, and a markdown cell ``{solution-end}``. In a solution's
code cells the student's part sits between ``# BEGIN SOLUTION`` and
``# END SOLUTION``.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = ["ExerciseBlock", "FormatError", "exercise_labels", "parse_exercises", "student_notebook",
           "strip_solution", "write_student_versions"]

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
_FENCE = r"^\s*(?:`{3,}|:{3,})"
_EXERCISE = re.compile(_FENCE + r"\{exercise\}\s*(?P<title>.*)$", re.M)
_LABEL = re.compile(r"^\s*:label:\s*(?P<label>\S+)\s*$", re.M)
_SOL_START = re.compile(_FENCE + r"\{solution-start\}\s*(?P<label>\S+)", re.M)
_SOL_END = re.compile(_FENCE + r"\{solution-end\}", re.M)
_SOL_PLAIN = re.compile(_FENCE + r"\{solution\}", re.M)  # sphinx-exercise's one-cell solution

STUDENT_NOTE = (
    "**Student version.** The solutions of this chapter's exercises are removed. In each "
    "exercise cell, replace `raise NotImplementedError(...)` or `...` with your answer, run the "
    "cell, and keep the names the exercise asks for: your instructor grades them automatically."
)


class FormatError(ValueError):
    """A chapter's exercise cells do not follow the format of CONTRIBUTING.md item 10."""


@dataclass
class ExerciseBlock:
    label: str
    title: str
    cell: int                      # index of the {exercise} markdown cell
    solution: tuple[int, int] | None = None  # indices of the solution-start and solution-end cells
    code_cells: list[int] = field(default_factory=list)   # solution cells with markers
    given_cells: list[int] = field(default_factory=list)  # code cells without markers: kept whole


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def exercise_labels(nb) -> set[str]:
    """The labels of the exercises a notebook declares; never raises (for untrusted notebooks).

    Cells that are not dicts, sources that are not strings and metadata of the wrong
    type are skipped, so a malformed submission yields fewer labels, not an exception.
    """
    labels: set[str] = set()
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        meta = cell.get("metadata")
        course = meta.get("regcourse") if isinstance(meta, dict) else None
        if isinstance(course, dict) and isinstance(course.get("exercise"), str):
            labels.add(course["exercise"])
            continue
        src = cell.get("source", "")
        if isinstance(src, list) and all(isinstance(s, str) for s in src):
            src = "".join(src)
        if isinstance(src, str) and _EXERCISE.search(src):
            found = _LABEL.search(src)
            if found:
                labels.add(found["label"])
    return labels


def _course_meta(cell) -> dict:
    meta = cell.get("metadata", {})
    course = meta.get("regcourse") if isinstance(meta, dict) else None
    return course if isinstance(course, dict) else {}


_HEADING = re.compile(r"^#{2,6}\s+Exercise\s+(?P<number>\d+\.\d+):\s*(?P<title>.+?)\s*$")
_SOL_HEADING = re.compile(r"^#{2,6}\s+Solution to Exercise\s+(?P<number>\d+\.\d+)\s*$")


def _parse_portable(nb) -> list[ExerciseBlock]:
    """Exercises marked by cell metadata (CONTRIBUTING.md, "Exercises"): the portable format.

    An exercise is a markdown cell with ``metadata.regcourse.exercise = <label>`` whose
    first line is ``### Exercise <n>: <title>``. Its solution is the run of consecutive
    cells with ``metadata.regcourse.solution = <label>``; the first of them is a markdown
    cell ``#### Solution to Exercise <n>``.
    """
    blocks: dict[str, ExerciseBlock] = {}
    numbers: dict[str, str] = {}
    current = None
    for i, cell in enumerate(nb.cells):
        meta = _course_meta(cell)
        src = _source(cell)
        label = meta.get("exercise")
        if label is not None:
            if cell.cell_type != "markdown" or not isinstance(label, str):
                raise FormatError(f"cell {i}: an exercise label must be a string on a markdown cell")
            if label in blocks:
                raise FormatError(f"cell {i}: exercise label {label!r} used twice")
            head = _HEADING.match(src.split("\n", 1)[0])
            if not head:
                raise FormatError(f"cell {i}: exercise {label!r} must start with '### Exercise N.M: Title'")
            blocks[label] = ExerciseBlock(label, head["title"], i)
            numbers[label] = head["number"]
        sol = meta.get("solution")
        if sol is None:
            if current is not None:
                _close_solution(blocks[current], i - 1)
                current = None
            if cell.cell_type == "code" and any(ln.strip() in (BEGIN, END) for ln in src.splitlines()):
                raise FormatError(f"cell {i}: {BEGIN!r} outside a solution")
            continue
        if sol != current:
            if current is not None:
                _close_solution(blocks[current], i - 1)
            if sol not in blocks:
                raise FormatError(f"cell {i}: solution of unknown exercise {sol!r}")
            if blocks[sol].solution is not None:
                raise FormatError(f"cell {i}: exercise {sol!r} has two solutions")
            head = _SOL_HEADING.match(src.split("\n", 1)[0]) if cell.cell_type == "markdown" else None
            if not head or head["number"] != numbers[sol]:
                raise FormatError(f"cell {i}: the solution of {sol!r} must start with a markdown cell "
                                  f"'#### Solution to Exercise {numbers[sol]}'")
            blocks[sol].solution = (i, i)
            current = sol
        if cell.cell_type == "code":
            if any(ln.strip() in (BEGIN, END) for ln in src.splitlines()):
                blocks[sol].code_cells.append(i)
            else:
                blocks[sol].given_cells.append(i)
    if current is not None:
        _close_solution(blocks[current], len(nb.cells) - 1)
    return list(blocks.values())


def _close_solution(block: ExerciseBlock, last: int) -> None:
    block.solution = (block.solution[0], last)
    if block.given_cells and not block.code_cells:
        raise FormatError(f"cell {last}: the solution of {block.label!r} has code cells but no "
                          f"{BEGIN!r} marker in any of them, so all of it would leak")


def parse_exercises(nb) -> list[ExerciseBlock]:
    """The exercises of a notebook, with their solution cells; FormatError if malformed.

    Reads the portable format (cell metadata, see :func:`_parse_portable`) and, for
    older notebooks, the MyST directive format (``{exercise}`` / ``{solution-start}``).
    """
    if any(_course_meta(c) for c in nb.cells):
        return _parse_portable(nb)
    blocks: dict[str, ExerciseBlock] = {}
    open_label, open_at = None, None
    for i, cell in enumerate(nb.cells):
        src = _source(cell)
        if cell.cell_type == "markdown":
            if _EXERCISE.search(src):
                label = _LABEL.search(src)
                if not label:
                    raise FormatError(f"cell {i}: an {{exercise}} without a :label:")
                if label["label"] in blocks:
                    raise FormatError(f"cell {i}: exercise label {label['label']!r} used twice")
                blocks[label["label"]] = ExerciseBlock(label["label"], _EXERCISE.search(src)["title"].strip(), i)
            start, end = _SOL_START.search(src), _SOL_END.search(src)
            if start:
                if open_label is not None:
                    raise FormatError(f"cell {i}: solution of {start['label']!r} starts inside "
                                      f"the solution of {open_label!r}")
                if start["label"] not in blocks:
                    raise FormatError(f"cell {i}: solution-start for unknown exercise {start['label']!r}")
                if blocks[start["label"]].solution is not None:
                    raise FormatError(f"cell {i}: exercise {start['label']!r} has two solutions")
                open_label, open_at = start["label"], i
            if end:
                if open_label is None:
                    raise FormatError(f"cell {i}: solution-end without solution-start")
                blocks[open_label].solution = (open_at, i)
                if blocks[open_label].given_cells and not blocks[open_label].code_cells:
                    raise FormatError(f"cell {i}: the solution of {open_label!r} has code cells but no "
                                      f"{BEGIN!r} marker in any of them, so all of it would leak")
                open_label = None
        elif cell.cell_type == "code":
            has_marker = any(line.strip() in (BEGIN, END) for line in src.splitlines())
            if open_label is not None:
                if has_marker:
                    blocks[open_label].code_cells.append(i)
                else:  # given code (e.g. a check), kept whole in the student version
                    blocks[open_label].given_cells.append(i)
            elif has_marker:
                raise FormatError(f"cell {i}: {BEGIN!r} outside a solution-start/solution-end pair")
    if open_label is not None:
        raise FormatError(f"the solution of {open_label!r} has no solution-end")
    return list(blocks.values())


def _names_used_after(lines: list[str]) -> set[str]:
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _assigned_names(block: list[str]) -> list[str]:
    text = "\n".join(block)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    names: list[str] = []

    def add(target):
        if isinstance(target, ast.Name) and target.id not in names:
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                add(t)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                add(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            add(node.target)
    return names


def strip_solution(source: str, label: str, later_code: str = "") -> str:
    """Replace every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block by a placeholder.

    Inside a function (an indented block) the placeholder is
    ``raise NotImplementedError("Exercise <label>")`` at the marker's indentation.
    At top level it is ``name = ...`` for each name the block assigns and the rest
    of the cell (or a later cell, ``later_code``) uses, else the ``raise``.
    """
    lines = source.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped == END:
            raise FormatError(f"{label}: {END!r} without {BEGIN!r}")
        if stripped != BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        j = i + 1
        while j < len(lines) and lines[j].strip() != END:
            if lines[j].strip() == BEGIN:
                raise FormatError(f"{label}: nested {BEGIN!r}")
            j += 1
        if j == len(lines):
            raise FormatError(f"{label}: {BEGIN!r} without {END!r}")
        block = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
        used = _names_used_after(lines[j + 1 :]) | _names_used_after(later_code.splitlines())
        wanted = [n for n in _assigned_names(block) if n in used] if not indent else []
        if wanted:
            out += [f"{indent}{n} = ...  # Exercise {label}: replace ... with your answer" for n in wanted]
        else:
            out.append(f'{indent}raise NotImplementedError("Exercise {label}")')
        i = j + 1
    return "\n".join(out)


def _clear(cell) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    cell.metadata.pop("execution", None)


def student_notebook(nb, chapter: str):
    """The student version of a chapter notebook (a new notebook; ``nb`` is untouched)."""
    nb = copy.deepcopy(nb)
    blocks = parse_exercises(nb)
    drop: set[int] = set()
    label_of: dict[int, str] = {}
    for b in blocks:
        if b.solution is None:
            continue
        start, end = b.solution
        drop.update(range(start, end + 1))
        for i in b.code_cells:
            label_of[i] = b.label
        drop.difference_update(b.code_cells + b.given_cells)
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and _SOL_PLAIN.search(_source(cell)):
            continue  # a one-cell {solution} directive: all of it is solution
        if i in label_of:
            later = "\n".join(_source(c) for c in nb.cells[i + 1 :] if c.cell_type == "code")
            cell.source = strip_solution(_source(cell), label_of[i], later)
        elif i in drop:
            continue
        _clear(cell)
        cells.append(cell)
    note = nbformat.v4.new_markdown_cell(STUDENT_NOTE)
    first_heading = next((k for k, c in enumerate(cells) if c.cell_type == "markdown"
                          and _source(c).lstrip().startswith("# ")), -1)
    cells.insert(first_heading + 1, note)
    nb.cells = cells
    keep = {k: nb.metadata[k] for k in ("kernelspec", "language_info") if k in nb.metadata}
    keep["coursework"] = {"chapter": chapter, "exercises": [b.label for b in blocks]}
    nb.metadata = nbformat.from_dict(keep)
    nbformat.validate(nb)
    return nb


def write_student_versions(paths, out: Path) -> list[Path]:
    """Write ``out/<chapter>.ipynb`` for each chapter notebook; return the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        try:
            student = student_notebook(nb, path.stem)
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None
        target = out / path.name
        nbformat.write(student, target)
        written.append(target)
    return written
