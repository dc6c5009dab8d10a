"""Read a chapter's exercises and write its student version.

The chapter notebooks follow CONTRIBUTING.md item 10: exercises and solutions are
marked by cell metadata (``regcourse.exercise`` / ``regcourse.solution``); older
notebooks used MyST directives (an ``{exercise}`` cell with a ``:label:``, then
``{solution-start} <label>`` ... ``{solution-end}``), which are still read. In a
solution's code cells the student's part sits between ``# BEGIN SOLUTION`` and
``# END SOLUTION``.

An exercise with per-student numbers has a *variant cell* (``regcourse.variant =
<label>``): plain assignments of literals (``p_ex = 0.2``) and ``glue(...)`` calls for
the exercise text's marked numbers. :func:`variant_cells` reads them strictly,
:func:`student_notebook` writes a student's own numbers into them and into the
markers (see ``coursework/variants.py`` and CONTRIBUTING.md, "Exercises").
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "ExerciseBlock",
    "FormatError",
    "VariantCell",
    "check_variants",
    "exercise_labels",
    "parse_exercises",
    "set_variant_values",
    "student_notebook",
    "strip_solution",
    "submitted_variant_values",
    "variant_cells",
    "write_student_versions",
]

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
    cell: int  # index of the {exercise} markdown cell
    solution: tuple[int, int] | None = None  # indices of the solution-start and solution-end cells
    code_cells: list[int] = field(default_factory=list)  # solution cells with markers
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


def first_exercise_cell(nb) -> int | None:
    """The index of a notebook's first exercise cell (markdown, by metadata or directive); never raises."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for i, cell in enumerate(cells if isinstance(cells, list) else []):
        if (
            isinstance(cell, dict)
            and cell.get("cell_type") == "markdown"
            and exercise_labels({"cells": [cell]})
        ):
            return i
    return None


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
                raise FormatError(
                    f"cell {i}: an exercise label must be a string on a markdown cell"
                )
            if label in blocks:
                raise FormatError(f"cell {i}: exercise label {label!r} used twice")
            head = _HEADING.match(src.split("\n", 1)[0])
            if not head:
                raise FormatError(
                    f"cell {i}: exercise {label!r} must start with '### Exercise N.M: Title'"
                )
            blocks[label] = ExerciseBlock(label, head["title"], i)
            numbers[label] = head["number"]
        sol = meta.get("solution")
        if sol is None:
            if current is not None:
                _close_solution(blocks[current], i - 1)
                current = None
            if cell.cell_type == "code" and any(
                ln.strip() in (BEGIN, END) for ln in src.splitlines()
            ):
                raise FormatError(f"cell {i}: {BEGIN!r} outside a solution")
            continue
        if sol != current:
            if current is not None:
                _close_solution(blocks[current], i - 1)
            if sol not in blocks:
                raise FormatError(f"cell {i}: solution of unknown exercise {sol!r}")
            if blocks[sol].solution is not None:
                raise FormatError(f"cell {i}: exercise {sol!r} has two solutions")
            head = (
                _SOL_HEADING.match(src.split("\n", 1)[0]) if cell.cell_type == "markdown" else None
            )
            if not head or head["number"] != numbers[sol]:
                raise FormatError(
                    f"cell {i}: the solution of {sol!r} must start with a markdown cell "
                    f"'#### Solution to Exercise {numbers[sol]}'"
                )
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
        raise FormatError(
            f"cell {last}: the solution of {block.label!r} has code cells but no "
            f"{BEGIN!r} marker in any of them, so all of it would leak"
        )


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
                blocks[label["label"]] = ExerciseBlock(
                    label["label"], _EXERCISE.search(src)["title"].strip(), i
                )
            start, end = _SOL_START.search(src), _SOL_END.search(src)
            if start:
                if open_label is not None:
                    raise FormatError(
                        f"cell {i}: solution of {start['label']!r} starts inside "
                        f"the solution of {open_label!r}"
                    )
                if start["label"] not in blocks:
                    raise FormatError(
                        f"cell {i}: solution-start for unknown exercise {start['label']!r}"
                    )
                if blocks[start["label"]].solution is not None:
                    raise FormatError(f"cell {i}: exercise {start['label']!r} has two solutions")
                open_label, open_at = start["label"], i
            if end:
                if open_label is None:
                    raise FormatError(f"cell {i}: solution-end without solution-start")
                blocks[open_label].solution = (open_at, i)
                if blocks[open_label].given_cells and not blocks[open_label].code_cells:
                    raise FormatError(
                        f"cell {i}: the solution of {open_label!r} has code cells but no "
                        f"{BEGIN!r} marker in any of them, so all of it would leak"
                    )
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
        block = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
        used = _names_used_after(lines[j + 1 :]) | _names_used_after(later_code.splitlines())
        wanted = [n for n in _assigned_names(block) if n in used] if not indent else []
        if wanted:
            out += [
                f"{indent}{n} = ...  # Exercise {label}: replace ... with your answer"
                for n in wanted
            ]
        else:
            out.append(f'{indent}raise NotImplementedError("Exercise {label}")')
        i = j + 1
    return "\n".join(out)


def _clear(cell) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    cell.metadata.pop("execution", None)


# --- variant cells: an exercise's per-student numbers ---------------------------------------------

# what the glue(...) calls of a variant cell may use to format a value (the chapter is trusted code)
_GLUE_BUILTINS = {
    f.__name__: f
    for f in (round, str, int, float, abs, len, min, max, sum, format, tuple, list, sorted, repr)
}


@dataclass
class VariantCell:
    """The variant cell of exercise ``label``: cell ``cell`` assigns ``values`` and glues ``glues``."""

    label: str
    cell: int
    values: dict
    glues: list  # [(glue name, expression source)]


def _variant_label(cell) -> str | None:
    label = _course_meta(cell).get("variant")
    return label


def _parse_variant_source(source: str, where: str) -> tuple[dict, list]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise FormatError(f"{where}: not plain Python ({exc.msg}, line {exc.lineno})") from None
    values, glues = {}, []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name = node.targets[0].id
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise FormatError(
                    f"{where}: {name} must be assigned a literal (a number, string, list "
                    f"or tuple), not an expression"
                ) from None
            if name in values:
                raise FormatError(f"{where}: {name} is assigned twice")
            values[name] = value
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        func = call.func if isinstance(call, ast.Call) else None
        if func is not None and (
            getattr(func, "id", None) == "glue" or getattr(func, "attr", None) == "glue"
        ):
            if (
                len(call.args) != 2
                or call.keywords
                or not isinstance(call.args[0], ast.Constant)
                or not isinstance(call.args[0].value, str)
            ):
                raise FormatError(f'{where}: write glue calls as glue("name", expression)')
            glues.append((call.args[0].value, ast.get_source_segment(source, call.args[1])))
            continue
        raise FormatError(
            f"{where}: a variant cell holds only plain assignments `name = <literal>`, "
            f'glue("name", ...) calls and imports; line {node.lineno} is something else'
        )
    if not values:
        raise FormatError(f"{where}: a variant cell assigns no value")
    return values, glues


def variant_cells(nb) -> dict[str, VariantCell]:
    """The variant cells of a chapter by exercise label; FormatError if one is malformed.

    A variant cell is a code cell with ``metadata.regcourse.variant = <label>`` (the
    label of an exercise of the notebook), outside every solution, holding only plain
    assignments of literals, ``glue("name", expression)`` calls and imports.
    """
    labels = {b.label: b for b in parse_exercises(nb)}
    in_solution = set()
    for b in labels.values():
        if b.solution:
            in_solution.update(range(b.solution[0], b.solution[1] + 1))
    found: dict[str, VariantCell] = {}
    for i, cell in enumerate(nb.cells):
        label = _variant_label(cell)
        if label is None:
            continue
        where = f"cell {i} (the variant cell of {label!r})"
        if cell.cell_type != "code" or not isinstance(label, str):
            raise FormatError(f"cell {i}: a variant label must be a string on a code cell")
        if label not in labels:
            raise FormatError(f"{where}: the notebook has no exercise {label!r}")
        if label in found:
            raise FormatError(f"{where}: exercise {label!r} has two variant cells")
        if i in in_solution or _course_meta(cell).get("solution") is not None:
            raise FormatError(
                f"{where}: a variant cell must not be part of a solution (students need it)"
            )
        values, glues = _parse_variant_source(_source(cell), where)
        found[label] = VariantCell(label, i, values, glues)
    return found


def set_variant_values(source: str, values: dict) -> str:
    """``source`` (a variant cell) with the literal of each assignment named in ``values`` replaced."""
    tree = ast.parse(source)
    data = source.encode("utf-8")
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line.encode("utf-8")))
    edits = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in values
        ):
            v = node.value
            edits.append(
                (
                    starts[v.lineno - 1] + v.col_offset,
                    starts[v.end_lineno - 1] + v.end_col_offset,
                    repr(values[node.targets[0].id]),
                )
            )
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode("utf-8") + data[end:]
    return data.decode("utf-8")


def _glue_values(cell: VariantCell, values: dict) -> dict:
    out = {}
    for name, expr in cell.glues:
        try:
            out[name] = eval(
                expr, {"__builtins__": _GLUE_BUILTINS, **values}
            )  # the chapter's own code
        except Exception as exc:
            raise FormatError(
                f"the variant cell of {cell.label!r}: glue({name!r}, {expr}) cannot be "
                f"computed from the cell's values ({type(exc).__name__}: {exc})"
            ) from None
    return out


def _render_markers(source: str, glued: dict) -> str:
    from regcourse.notebook import MARKER, format_value

    def one(m):
        if m["name"] not in glued:
            return m.group(0)
        head = f"<!--{{{m['name']}{':' + m['spec'] if m['spec'] is not None else ''}}}-->"
        return f"{head}{format_value(glued[m['name']], m['spec'] or '')}<!--/-->"

    return MARKER.sub(one, source)


def check_variants(nb, spec) -> list[str]:
    """Problems between a chapter's variant cells and its hidden tests' ``variants`` (empty if none).

    Every exercise with variants needs a variant cell assigning exactly the published
    names, with the published values, and vice versa.
    """
    try:
        cells = variant_cells(nb)
    except FormatError as exc:
        return [str(exc)]
    problems = []
    declared = {
        label: ex for label, ex in (spec.exercises.items() if spec else []) if ex.draw is not None
    }
    for label, cell in cells.items():
        ex = declared.get(label)
        if ex is None:
            problems.append(
                f"cell {cell.cell}: a variant cell for {label!r}, but the hidden tests declare no "
                f"variants for it"
            )
            continue
        if set(cell.values) != set(ex.published):
            problems.append(
                f"cell {cell.cell}: the variant cell of {label!r} assigns {sorted(cell.values)}, "
                f"the hidden tests draw {sorted(ex.published)}"
            )
            continue
        for name, value in cell.values.items():
            if value != ex.published[name] or type(value) is not type(ex.published[name]):
                problems.append(
                    f"cell {cell.cell}: {name} = {value!r} in the book, but the hidden tests "
                    f"publish {ex.published[name]!r}"
                )
    for label in sorted(set(declared) - set(cells)):
        problems.append(
            f"exercise {label!r} has variants in the hidden tests but no variant cell "
            f"(metadata regcourse.variant = {label!r})"
        )
    return problems


def submitted_variant_values(nb) -> dict[str, dict]:
    """What the variant cells of an untrusted submission assign, by label; never raises.

    Cells or assignments that cannot be read are skipped (the grader only uses this to
    tell a student that the numbers in their notebook are not their own).
    """
    out: dict[str, dict] = {}
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        label = _course_meta(cell).get("variant")
        src = cell.get("source", "")
        if isinstance(src, list) and all(isinstance(x, str) for x in src):
            src = "".join(src)
        if (
            not isinstance(label, str)
            or not isinstance(src, str)
            or len(src) > 100_000
            or label in out
        ):
            continue
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        values = {}
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    values[node.targets[0].id] = None
        out[label[:100]] = values
    return out


# --- student versions -----------------------------------------------------------------------


def student_notebook(nb, chapter: str, variant: dict | None = None):
    """The student version of a chapter notebook (a new notebook; ``nb`` is untouched).

    ``variant`` (a record from :func:`coursework.variants.record`) gives one student's
    numbers: each exercise's variant cell and the marked numbers its glue calls feed
    are rewritten with them, and the record is stored in the notebook's metadata.
    """
    nb = copy.deepcopy(nb)
    blocks = parse_exercises(nb)
    vcells = variant_cells(nb)
    if variant is not None:
        given = set(variant.get("exercises", {}))
        if given != set(vcells):
            raise FormatError(
                f"the variant gives numbers for {sorted(given)}, the chapter's variant cells "
                f"are {sorted(vcells)}"
            )
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
    glued: dict = {}
    if variant is not None:
        for label, cell in vcells.items():
            values = variant["exercises"][label]
            if set(values) != set(cell.values):
                raise FormatError(
                    f"the variant of {label!r} names {sorted(values)}, its cell assigns "
                    f"{sorted(cell.values)}"
                )
            glued.update(_glue_values(cell, values))
    variant_at = {cell.cell: label for label, cell in vcells.items()}
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and _SOL_PLAIN.search(_source(cell)):
            continue  # a one-cell {solution} directive: all of it is solution
        if i in label_of:
            later = "\n".join(_source(c) for c in nb.cells[i + 1 :] if c.cell_type == "code")
            cell.source = strip_solution(_source(cell), label_of[i], later)
        elif i in drop:
            continue
        if variant is not None and i in variant_at:
            cell.source = set_variant_values(_source(cell), variant["exercises"][variant_at[i]])
        elif glued and cell.cell_type == "markdown":
            cell.source = _render_markers(_source(cell), glued)
        _clear(cell)
        cells.append(cell)
    note = nbformat.v4.new_markdown_cell(STUDENT_NOTE)
    first_heading = next(
        (
            k
            for k, c in enumerate(cells)
            if c.cell_type == "markdown" and _source(c).lstrip().startswith("# ")
        ),
        -1,
    )
    cells.insert(first_heading + 1, note)
    nb.cells = cells
    keep = {k: nb.metadata[k] for k in ("kernelspec", "language_info") if k in nb.metadata}
    keep["coursework"] = {"chapter": chapter, "exercises": [b.label for b in blocks]}
    if variant is not None:
        keep["coursework"]["variant"] = variant
    nb.metadata = nbformat.from_dict(keep)
    nbformat.validate(nb)
    return nb


def write_student_versions(
    paths, out: Path, *, students=None, secret: bytes | None = None, chapters: dict | None = None
) -> list[Path]:
    """Write the student versions of chapter notebooks; return the written paths.

    Without ``students``: ``out/<chapter>.ipynb``, with the book's numbers. With a list of
    student ids (and the course ``secret``): ``out/<id>/<chapter>.ipynb`` for each student,
    with their own numbers in every exercise that has variants (``chapters`` maps a
    chapter's name to its hidden tests, :func:`coursework.grader.load_chapters`), and the
    signed variant record in the metadata.
    """
    from .variants import chapter_values, record, safe_name

    out = Path(out)
    if students is not None and secret is None:
        raise ValueError(
            "per-student notebooks need the course secret (--secret-file, --secret or "
            "COURSEWORK_SECRET)"
        )
    notebooks = []
    for path in paths:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        spec = (chapters or {}).get(path.stem)
        try:
            problems = check_variants(nb, spec) if (spec is not None or variant_cells(nb)) else []
            if problems and (students is not None or spec is not None):
                raise FormatError("; ".join(problems))
            if students is None:
                notebooks.append((out / path.name, student_notebook(nb, path.stem)))
                continue
            for student in students:
                values = chapter_values(spec, student, secret) if spec is not None else {}
                rec = record(secret, path.stem, student, values)
                notebooks.append(
                    (out / safe_name(student) / path.name, student_notebook(nb, path.stem, rec))
                )
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None
    written = []
    for target, student in notebooks:
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        written.append(target)
    return written
