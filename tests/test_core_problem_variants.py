"""Per-student numbers of chapter 1 (issue 14): cp-ex1 (gaps and diagnoses by hand) and
cp-ex3 (the penalized objective by hand), end to end.

- the book's variant cells agree with the hidden tests' published numbers, and the book's own
  solution cells, run on them, pass every hidden test of the two exercises;
- the draws keep the promises of the exercise texts (cp-ex1: one decimal, three different
  diagnoses, every one unlike the book's, half a point from every threshold of the rule;
  cp-ex3: non-zero integer weights, losses of one decimal);
- a notebook written by ``make student ROSTER=`` (``write_student_versions``) shows the
  student's own numbers in the variant cell and in the exercise text;
- the book's answers handed in for a student's own numbers fail every hidden test, while
  answers worked out here from the chapter's formulas (the rule's thresholds as the text
  states them, the mean of the losses, (lambda/2)||w||^2; written without the package)
  pass them all;
- the sandboxed grader, given a student's id and the course secret, grades a notebook
  against that student's numbers.

The hidden tests run in this process against a stand-in for the grader's ``student``
(``value``, ``call``, ``variant``), so many students are checked in a second.
"""

from __future__ import annotations

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
from coursework.variants import draw_values
from regcourse.notebook import MARKER, format_value

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "core_problem"
BOOK = ROOT / "book" / f"{CHAPTER}.ipynb"
SECRET = b"a-course-secret-for-chapter-one-tests"
ROSTER = ["alice@example.org", "bob", "s7654321"]
MANY = [f"student-{i:03d}" for i in range(60)]
LABELS = ("cp-ex1", "cp-ex3")

SPEC = load_chapters()[CHAPTER]


def _book():
    return nbformat.read(BOOK, as_version=4)


# --- answers from the chapter's formulas, for any numbers -----------------------------------


def _rule(train, test):
    """The diagnosis rule as the chapter's text states it (thresholds 15, 5, 95, 80)."""
    gap = train - test
    if gap >= 15:
        return "Severe overfitting"
    if gap >= 5:
        return "Mild overfitting"
    if train >= 95:
        return "Good fit"
    return "Slight underfitting" if train >= 80 else "Severe underfitting"


def _cp_ex1(v):
    models = {m: (v[f"tr_{m}"], v[f"te_{m}"]) for m in "ABC"}
    return {
        "gaps_by_hand": {m: round(tr - te, 1) for m, (tr, te) in models.items()},
        "by_hand": {m: _rule(tr, te) for m, (tr, te) in models.items()},
    }


def _cp_ex3(v):
    risk = sum(v["losses_ex"]) / len(v["losses_ex"])
    half_norm = 0.5 * sum(w * w for w in v["w_ex"])
    return {
        "risk_by_hand": risk,
        "objective_by_hand": risk + v["lam_ex"] * half_norm,
        "lam_equal_by_hand": risk / half_norm,
    }


OWN_ANSWER = {"cp-ex1": _cp_ex1, "cp-ex3": _cp_ex3}


# --- the book's cells, run here ------------------------------------------------------------


def _reference(label) -> dict:
    """What the book's variant cell and solution of ``label`` define (published numbers)."""
    nb = _book()
    block = next(b for b in parse_exercises(nb) if b.label == label)
    cells = [variant_cells(nb)[label].cell, *sorted(block.code_cells + block.given_cells)]
    head = (
        "import torch\n"
        "from regcourse.experiments.core_problem import diagnose\n"
        "from regcourse.notebook import glue\n"
        "from regcourse.penalties import l2_penalty\n"
    )
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for source in [head, *(nb.cells[i].source for i in cells)]:
            exec(compile(source, "<chapter cell>", "exec"), namespace)  # noqa: S102 - the book
    return namespace


class FakeStudent:
    """What a hidden test sees of a submission (``value``, ``call``, ``variant``)."""

    def __init__(self, namespace: dict, variant: dict):
        self._ns = namespace
        self.variant = copy.deepcopy(variant)

    def value(self, name):
        if name not in self._ns:
            raise NotAnswered(f"{name} is not defined")
        return copy.deepcopy(self._ns[name])

    def call(self, name, *args):
        return self.value(name)(*args)


def _outcomes(label, student) -> list[bool]:
    passed = []
    for test in SPEC.exercises[label].tests:
        try:
            test.func(student)
        except AssertionError:
            passed.append(False)
        else:
            passed.append(True)
    return passed


# --- the tests -----------------------------------------------------------------------------


def test_both_exercises_have_variants_and_cells_that_agree():
    assert {label for label, ex in SPEC.exercises.items() if ex.draw is not None} == set(LABELS)
    assert check_variants(_book(), SPEC) == []


@pytest.mark.parametrize("label", LABELS)
def test_the_book_solution_scores_full_marks_on_the_published_numbers(label):
    ex = SPEC.exercises[label]
    assert variant_cells(_book())[label].values == ex.published
    assert _outcomes(label, FakeStudent(_reference(label), ex.published)) == [True] * len(ex.tests)
    # the formulas of this file agree with the book on its own numbers
    own = OWN_ANSWER[label](ex.published)
    assert _outcomes(label, FakeStudent(own, ex.published)) == [True] * len(ex.tests)


def _tenths(x: float) -> bool:
    return abs(round(x * 10) - x * 10) < 1e-9


def test_cp_ex1_draws_three_new_diagnoses_away_from_the_thresholds():
    ex = SPEC.exercises["cp-ex1"]
    book = [_rule(ex.published[f"tr_{m}"], ex.published[f"te_{m}"]) for m in "ABC"]
    seen = set()
    for student in ROSTER + MANY:
        v = draw_values(ex, CHAPTER, student, SECRET)
        labels = []
        for m in "ABC":
            tr, te = v[f"tr_{m}"], v[f"te_{m}"]
            assert 0 <= te <= tr <= 100 and _tenths(tr) and _tenths(te), (student, v)
            gap = tr - te
            assert min(abs(gap - 5), abs(gap - 15)) >= 0.5 - 1e-9, (student, v)
            if gap < 5:
                assert min(abs(tr - 80), abs(tr - 95)) >= 0.5 - 1e-9, (student, v)
            labels.append(_rule(tr, te))
        assert len(set(labels)) == 3, (student, labels)
        assert all(a != b for a, b in zip(labels, book)), (student, labels)
        seen.add(tuple(labels))
    assert len(seen) >= 10, "the diagnoses should vary between students"


def test_cp_ex3_draws_integer_weights_and_one_decimal_losses():
    ex = SPEC.exercises["cp-ex3"]
    seen = set()
    for student in ROSTER + MANY:
        v = draw_values(ex, CHAPTER, student, SECRET)
        assert len(v["w_ex"]) == 2 and all(isinstance(w, int) and w != 0 for w in v["w_ex"])
        assert len(v["losses_ex"]) == 3 and all(_tenths(x) and x > 0 for x in v["losses_ex"])
        assert v["lam_ex"] > 0 and math.isfinite(v["lam_ex"])
        seen.add(repr(sorted(v.items())))
    assert len(seen) == len(ROSTER + MANY)


@pytest.mark.parametrize("label", LABELS)
def test_the_book_answers_score_zero_and_own_answers_full_marks(label):
    ex = SPEC.exercises[label]
    book_answers = _reference(label)
    for student in ROSTER + MANY:
        own = draw_values(ex, CHAPTER, student, SECRET)
        assert own != ex.published
        assert _outcomes(label, FakeStudent(book_answers, own)) == [False] * len(ex.tests), own
        answers = OWN_ANSWER[label](own)
        assert _outcomes(label, FakeStudent(answers, own)) == [True] * len(ex.tests), own


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    out = tmp_path_factory.mktemp("issued")
    written = write_student_versions(
        [BOOK], out, students=ROSTER, secret=SECRET, chapters={CHAPTER: SPEC}
    )
    assert len(written) == len(ROSTER)
    return {p.parent.name: nbformat.read(p, as_version=4) for p in written}


@pytest.mark.parametrize("label", LABELS)
def test_each_student_notebook_shows_the_students_own_numbers(issued, label):
    ex = SPEC.exercises[label]
    cell = variant_cells(_book())[label]
    for student in ROSTER:
        nb = issued[student]
        own = draw_values(ex, CHAPTER, student, SECRET)
        assert submitted_variant_values(nb)[label] == own
        assert nb.metadata["coursework"]["variant"]["exercises"][label] == own
        text = next(
            c.source for c in nb.cells if c.metadata.get("regcourse", {}).get("exercise") == label
        )
        glued = {g: eval(expr, {}, dict(own)) for g, expr in cell.glues}  # noqa: S307 - the book
        shown = {m["name"]: m for m in MARKER.finditer(text) if m["name"] in glued}
        assert set(shown) == set(glued), f"{label}: every glued number is marked in the text"
        for name, m in shown.items():
            assert m["text"] == format_value(glued[name], m["spec"] or ""), (student, m.group(0))


try:
    SANDBOX = sandbox.check()
except sandbox.SandboxUnavailable:
    SANDBOX = None


def _answer(nb, answers: dict):
    """The student's answers written over the ``name = ...`` placeholders of the notebook."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        for k, line in enumerate(lines):
            name = line.split(" = ...", 1)[0]
            if line.startswith(f"{name} = ...") and name in answers:
                lines[k] = f"{name} = {answers[name]!r}"
        cell.source = "\n".join(lines)
    return nb


@pytest.mark.skipif(SANDBOX is None, reason="no bubblewrap sandbox here")
def test_the_sandboxed_grader_uses_the_students_own_numbers(issued, tmp_path):
    """bob copies the book's answers to cp-ex1 and works out cp-ex3 for his own numbers."""
    student = "bob"
    nb = copy.deepcopy(issued[student])
    start = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Exercises")
    )
    head = [c for c in nb.cells[:start] if c.cell_type == "code"][:2]  # setup and imports
    assert "import torch" in head[-1].source
    nb.cells = head + nb.cells[start:]
    book1 = _reference("cp-ex1")
    own3 = draw_values(SPEC.exercises["cp-ex3"], CHAPTER, student, SECRET)
    answers = {k: book1[k] for k in ("gaps_by_hand", "by_hand")} | _cp_ex3(own3)
    path = tmp_path / student / f"{CHAPTER}.ipynb"
    path.parent.mkdir()
    nbformat.write(_answer(nb, answers), path)
    report = grade(path, student=student, secret=SECRET, chapters={CHAPTER: SPEC})
    scores = {e["label"]: (e["score"], e["max_score"]) for e in report["exercises"]}
    assert scores["cp-ex1"] == (0.0, 2.0), scores
    assert scores["cp-ex3"] == (3.0, 3.0), scores
    assert report["variant"]["student"] == student
