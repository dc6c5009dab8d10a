"""Per-student numbers in the chapters (issue 14): each variant exercise, end to end.

For every exercise of the book whose hidden tests declare ``variants``:

- the book's variant cell agrees with the hidden tests' published numbers;
- a student notebook written by ``make student ROSTER=`` (its function,
  :func:`coursework.notebook.write_student_versions`) holds that student's own numbers in
  the variant cell, in the signed record and in the exercise text's marked numbers, not
  the book's.

For every such exercise that ``OWN_ANSWER`` answers (those of weight_decay, dropout,
batch_norm, augmentation and early_stopping; another chapter's exercise joins by adding
its entry):

- the reference solution (the book's own cells, run on the published numbers) passes
  every hidden test of the exercise;
- the book's answers handed in for a student's own numbers fail every hidden test of the
  exercise, while answers computed here from the formulas the chapter teaches (written
  independently of the package and of the hidden tests) pass them all, for many ids.

The hidden tests are run in this process against a stand-in for the grader's ``student``
object (``value``, ``call`` and ``variant``), so that every exercise and many students are
checked in seconds; one test grades a real student notebook with the sandboxed grader.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import math
from pathlib import Path

import nbformat
import pytest

from coursework import sandbox
from coursework.grader import grade, load_chapters
from coursework.notebook import (
    check_variants,
    parse_exercises,
    submitted_variant_values,
    variant_cells,
    write_student_versions,
)
from coursework.spec import NotAnswered
from coursework.variants import chapter_values, draw_values, record
from regcourse.notebook import MARKER, format_value

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SECRET = b"a-course-secret-for-the-variant-tests"
ROSTER = ["alice@example.org", "bob", "s1234567"]
MANY = [f"student-{i:03d}" for i in range(40)]  # ids for the statistical checks of the draws

CHAPTERS = load_chapters()
VARIANTS = [
    (name, label)
    for name, spec in sorted(CHAPTERS.items())
    for label, ex in spec.exercises.items()
    if ex.draw is not None
]
IDS = [label for _, label in VARIANTS]

# the exercises planned to vary (book/instructor_guide.md, "Per-student numbers") that the
# chapters of this file's tests already vary; a chapter that loses one fails here
EXPECTED = {
    "weight_decay": {"wd-ex1", "wd-ex3", "wd-ex4"},
    "dropout": {"do-ex1"},
    "batch_norm": {"bn-ex1"},
    "early_stopping": {"es-ex1"},
    "augmentation": {"aug-ex1"},
}


# --- answers computed from the chapter's formulas, for any numbers ---------------------------


def _sign(x):
    return (x > 0) - (x < 0)


def _wd_ex1(v):
    w, g, lr, lam = v["w_ex1"], v["g_ex1"], v["lr_ex1"], v["lam_ex1"]
    l2 = g + lam * w  # gradient of (lambda/2) w^2 is lambda w
    l1 = g + lam * _sign(w)  # subgradient of lambda |w| is lambda sign(w)
    return {
        "hand": {"l2_total": l2, "l2_weight": w - lr * l2, "l1_total": l1, "l1_weight": w - lr * l1}
    }


def _wd_ex3(v):
    w0, lr, lam = v["w0_e"], v["lr_e"], v["lam_e"]
    w, steps = w0, 0
    while w > 0:  # the proximal step: shrink by lr * lam, never past zero
        w, steps = max(w - lr * lam, 0.0), steps + 1
    return {"predicted": steps, "predicted_l2": w0 * (1 - lr * lam) ** steps}


def _wd_ex4(v):
    n, lr, lam = v["steps_ex4"], v["lr_ex4"], v["lam_ex4"]
    return {"predicted_adamw": (1 - lr * lam) ** n, "predicted_adam_l2": 1 - n * lr}


def _do_ex1(v):
    keep = 1 - v["p_ex1"]  # inverted dropout: a kept unit is divided by 1 - p
    return {"by_hand": [h / keep if m else 0.0 for h, m in zip(v["h_ex1"], v["mask_ex1"])]}


def _bn_ex1(v):
    x, alpha, n = v["x_ex1"], v["momentum_ex1"], len(v["x_ex1"])
    mu = sum(x) / n
    var = sum((xi - mu) ** 2 for xi in x) / n  # the batch uses the biased variance
    xhat = [round((xi - mu) / math.sqrt(var + 1e-5), 4) for xi in x]  # four decimals
    unbiased = var * n / (n - 1)  # the running variance uses the unbiased one
    return {
        "mu_hand": mu,
        "var_hand": var,
        "xhat_hand": xhat,
        "run_mean_hand": (1 - alpha) * 0 + alpha * mu,
        "run_var_hand": (1 - alpha) * 1 + alpha * unbiased,
    }


def _patience(values, patience, delta):
    """(stop epoch, best epoch): stop once `patience` epochs in a row beat the best by <= delta."""
    best, best_epoch = math.inf, 0
    for epoch, value in enumerate(values, start=1):
        if value < best - delta:
            best, best_epoch = value, epoch
        elif epoch - best_epoch == patience:
            return epoch, best_epoch
    return len(values), best_epoch


def _es_ex1(v):
    stop, best = _patience(v["val_ex1"], v["patience_ex1"], 0.0)
    stop_d, best_d = _patience(v["val_ex1"], v["patience_ex1"], v["delta_ex1"])
    return {
        "by_hand_stop": stop,
        "by_hand_best": best,
        "by_hand_stop_delta": stop_d,
        "by_hand_best_delta": best_d,
    }


def _aug_ex1(v):
    side, row, col, size = v["size_ex1"], v["row_ex1"], v["col_ex1"], 32
    top, left = row - side // 2, col - side // 2  # the centre pixel sits at offset side // 2
    box = (max(top, 0), max(left, 0), min(top + side, size), min(left + side, size))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return {
        "by_hand_box": box,
        "by_hand_lam": 1 - area / size**2,
        "by_hand_unclipped": 1 - side**2 / size**2,
    }


OWN_ANSWER = {
    "aug-ex1": _aug_ex1,
    "wd-ex1": _wd_ex1,
    "wd-ex3": _wd_ex3,
    "wd-ex4": _wd_ex4,
    "do-ex1": _do_ex1,
    "bn-ex1": _bn_ex1,
    "es-ex1": _es_ex1,
}
# the exercises checked end to end (their reference solutions run without the chapter's
# experiments, and OWN_ANSWER answers them); every variant exercise gets the other checks
ANSWERED = [(name, label) for name, label in VARIANTS if label in OWN_ANSWER]


# --- the book's cells, run here ---------------------------------------------------------------


def _book(name):
    return nbformat.read(BOOK / f"{name}.ipynb", as_version=4)


def _definitions(nb) -> str:
    """The imports, functions and `NAME = a.b` constants of the cells before the exercises.

    Enough for the exercises' own cells to run, without the chapter's experiments (and
    without its first cell, which sets torch's threads for the whole process).
    """
    first = min(b.cell for b in parse_exercises(nb))
    nodes = [
        (cell.source, node)
        for cell in nb.cells[:first]
        if cell.cell_type == "code"
        for node in ast.parse(cell.source).body
    ]
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for _, node in nodes
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }

    def root(expr):
        while isinstance(expr, ast.Attribute):
            expr = expr.value
        return getattr(expr, "id", None)

    keep = [
        ast.get_source_segment(source, node)
        for source, node in nodes
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef))
        or (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute)
            and root(node.value) in imported
        )
    ]
    return "\n".join(keep)


def _run(sources: list[str]) -> dict:
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for source in sources:
            exec(compile(source, "<chapter cell>", "exec"), namespace)  # noqa: S102 - the book's code
    return namespace


_REFERENCE: dict = {}


def _reference(name, label) -> dict:
    """The names the book's solution of ``label`` defines, run on the published numbers."""
    if label not in _REFERENCE:
        nb = _book(name)
        block = next(b for b in parse_exercises(nb) if b.label == label)
        cells = [variant_cells(nb)[label].cell, *sorted(block.code_cells + block.given_cells)]
        _REFERENCE[label] = _run([_definitions(nb), *(nb.cells[i].source for i in cells)])
    return _REFERENCE[label]


class FakeStudent:
    """What a hidden test sees of a submission (`value`, `call`, `variant`), in this process."""

    def __init__(self, namespace: dict, variant: dict):
        self._ns = namespace
        self.variant = copy.deepcopy(variant)

    def value(self, name):
        if name not in self._ns:
            raise NotAnswered(f"{name} is not defined")
        return copy.deepcopy(self._ns[name])

    def call(self, name, *args):
        return self.value(name)(*args)


def _outcomes(ex, student) -> list[bool]:
    passed = []
    for test in ex.tests:
        try:
            test.func(student)
        except AssertionError:
            passed.append(False)
        else:
            passed.append(True)
    return passed


# --- the tests ---------------------------------------------------------------------------------


def test_the_planned_exercises_have_variants():
    declared = {}
    for name, label in VARIANTS:
        declared.setdefault(name, set()).add(label)
    for name, labels in EXPECTED.items():
        assert labels <= declared.get(name, set()), (
            f"{name}: no variants for {labels - declared.get(name, set())}"
        )
    assert set(OWN_ANSWER) <= set(IDS), (
        f"answers for exercises without variants: {set(OWN_ANSWER) - set(IDS)}"
    )
    for name, labels in EXPECTED.items():
        assert labels <= set(OWN_ANSWER), (
            f"{name}: {labels - set(OWN_ANSWER)} are not answered here"
        )


@pytest.mark.parametrize("name", sorted({n for n, _ in VARIANTS}))
def test_variant_cells_agree_with_the_hidden_tests(name):
    assert check_variants(_book(name), CHAPTERS[name]) == []


@pytest.mark.parametrize(("name", "label"), ANSWERED, ids=[label for _, label in ANSWERED])
def test_the_book_solution_scores_full_marks_on_the_published_numbers(name, label):
    ex = CHAPTERS[name].exercises[label]
    assert variant_cells(_book(name))[label].values == ex.published
    assert _outcomes(ex, FakeStudent(_reference(name, label), ex.published)) == [True] * len(
        ex.tests
    )
    # the formulas of this file agree with the book on its own numbers
    assert _outcomes(ex, FakeStudent(OWN_ANSWER[label](ex.published), ex.published)) == [
        True
    ] * len(ex.tests)


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    """The per-student notebooks of a chapter, as `make student ROSTER=` writes them (by chapter)."""
    out = tmp_path_factory.mktemp("issued")
    cache: dict = {}

    def notebooks(name):
        if name not in cache:
            written = write_student_versions(
                [BOOK / f"{name}.ipynb"],
                out / name,
                students=ROSTER,
                secret=SECRET,
                chapters=CHAPTERS,
            )
            assert [p.parent.name for p in written] == ROSTER
            cache[name] = {p.parent.name: nbformat.read(p, as_version=4) for p in written}
        return cache[name]

    return notebooks


def _exercise_text(nb, label) -> str:
    return next(
        c.source for c in nb.cells if c.metadata.get("regcourse", {}).get("exercise") == label
    )


@pytest.mark.parametrize(("name", "label"), VARIANTS, ids=IDS)
def test_each_student_notebook_shows_the_students_own_numbers(issued, name, label):
    ex = CHAPTERS[name].exercises[label]
    book = _book(name)
    cell = variant_cells(book)[label]
    book_text = _exercise_text(book, label)
    seen = set()
    for student in ROSTER:
        nb = issued(name)[student]
        own = draw_values(ex, name, student, SECRET)
        assert own != ex.published
        assert submitted_variant_values(nb)[label] == own
        signed = nb.metadata["coursework"]["variant"]
        assert signed == record(
            SECRET, name, student, chapter_values(CHAPTERS[name], student, SECRET)
        )
        assert signed["exercises"][label] == own
        text = _exercise_text(nb, label)
        assert text != book_text, f"{student}: the text of {label} still shows the book's numbers"
        glued = {g: eval(expr, {}, dict(own)) for g, expr in cell.glues}  # noqa: S307 - the book's code
        shown = [m for m in MARKER.finditer(text) if m["name"] in glued]
        assert len(shown) >= len(cell.glues)
        for m in shown:
            assert m["text"] == format_value(glued[m["name"]], m["spec"] or ""), (
                student,
                m.group(0),
            )
        seen.add(repr(sorted(own.items())))
    assert len(seen) >= 2, "the students' numbers should differ"


@pytest.mark.parametrize(("name", "label"), ANSWERED, ids=[label for _, label in ANSWERED])
def test_the_book_answers_score_zero_and_own_answers_full_marks(name, label):
    ex = CHAPTERS[name].exercises[label]
    book_answers = _reference(name, label)
    for student in ROSTER + MANY:
        own = draw_values(ex, name, student, SECRET)
        assert _outcomes(ex, FakeStudent(book_answers, own)) == [False] * len(ex.tests), (
            student,
            own,
        )
        assert _outcomes(ex, FakeStudent(OWN_ANSWER[label](own), own)) == [True] * len(ex.tests), (
            student,
            own,
        )


try:
    SANDBOX = sandbox.check()
except sandbox.SandboxUnavailable:
    SANDBOX = None


def _fill(nb, answers: dict):
    """The student's answers written over the `name = ...` placeholders of their notebook."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        for k, line in enumerate(lines):
            name = line.split(" = ...", 1)[0]
            if line.startswith(f"{name} = ...  # Exercise") and name in answers:
                lines[k] = f"{name} = {answers[name]!r}"
        cell.source = "\n".join(lines)
    return nb


@pytest.mark.skipif(SANDBOX is None, reason="no bubblewrap sandbox here")
def test_the_sandboxed_grader_grades_a_student_against_their_own_numbers(issued, tmp_path):
    """bob's weight decay notebook (its setup cells and exercises): the book's wd-ex1 answer
    copied, his own answers to wd-ex3 and wd-ex4; graded with his id and the course secret."""
    name, student = "weight_decay", "bob"
    nb = copy.deepcopy(issued(name)[student])
    spec = CHAPTERS[name]
    own = {
        label: draw_values(spec.exercises[label], name, student, SECRET)
        for label in ("wd-ex1", "wd-ex3", "wd-ex4")
    }
    start = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Exercises")
    )
    head = [c for c in nb.cells[:start] if c.cell_type == "code"][:2]  # setup and imports
    assert "import torch" in head[-1].source
    nb.cells = head + nb.cells[start:]
    answers = {"hand": _reference(name, "wd-ex1")["hand"]}
    answers |= _wd_ex3(own["wd-ex3"]) | _wd_ex4(own["wd-ex4"])
    path = tmp_path / "bob" / f"{name}.ipynb"
    path.parent.mkdir()
    nbformat.write(_fill(nb, answers), path)
    report = grade(path, student=student, secret=SECRET, chapters=CHAPTERS)
    scores = {e["label"]: (e["score"], e["max_score"], e["variant"]) for e in report["exercises"]}
    assert scores["wd-ex1"] == (0.0, 2.0, own["wd-ex1"]), scores["wd-ex1"]
    assert scores["wd-ex3"] == (2.0, 2.0, own["wd-ex3"]), scores["wd-ex3"]
    assert scores["wd-ex4"] == (2.0, 2.0, own["wd-ex4"]), scores["wd-ex4"]
    assert report["variant"]["student"] == student and report["variant"]["notes"] == []
