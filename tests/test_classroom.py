"""A whole class (issue 14): batch grading, the gradebook, resuming, variants, Gradescope.

Everything runs on a synthetic chapter ("toy": a small notebook in the book's format and a
hidden-test file, written below into temporary folders) whose cells import no torch, so a
sandboxed worker starts in a few seconds. The class folder mixes correct, partly wrong,
malformed and hostile submissions made from per-student notebooks (``python -m coursework
student --roster``), and every gradebook row is checked exactly.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from coursework import __main__ as cli
from coursework import sandbox
from coursework.classroom import (
    RosterError,
    _spreadsheet_safe,
    find_submissions,
    grade_class,
    read_roster,
)
from coursework.grader import grade, load_chapters
from coursework.gradescope import run_autograder, write_bundle
from coursework.notebook import (
    FormatError,
    check_variants,
    set_variant_values,
    student_notebook,
    submitted_variant_values,
    variant_cells,
)
from coursework.spec import Chapter
from coursework.variants import (
    chapter_values,
    draw_values,
    load_secret,
    safe_name,
    verify_record,
)

ROOT = Path(__file__).resolve().parents[1]
RUN = f"cl{os.getpid()}"
SECRET = b"course-secret-for-the-tests-0123456789"
OTHER_SECRET = b"another-course-secret-9876543210"

try:
    SANDBOX = sandbox.check()
except sandbox.SandboxUnavailable as exc:
    SANDBOX, WHY = None, str(exc)
needs_sandbox = pytest.mark.skipif(SANDBOX is None, reason="no bubblewrap sandbox here")

TOY_TESTS = """
from coursework.spec import Chapter

CHAPTER = Chapter("toy", "Toy chapter")
add = CHAPTER.exercise("toy-add", "Add two numbers", functions=["add"])
mul = CHAPTER.exercise("toy-mul", "Multiply two numbers")
hand = CHAPTER.exercise("toy-hand", "A product by hand")
snoop = CHAPTER.exercise("toy-snoop", "Nothing of the others reaches a submission")

hand.variants(lambda rng: {"a_ex": rng.randint(2, 9), "b_ex": round(rng.uniform(0.1, 0.9), 2)},
              published={"a_ex": 3, "b_ex": 0.5})


@add.test(points=2)
def adds(student):
    assert student.call("add", 2, 3) == 5 and student.call("add", -1, 1) == 0


@mul.test(points=1)
def positive(student):
    assert student.call("mul", 2, 3) == 6


@mul.test(points=1)
def zero(student):
    assert student.call("mul", 0, 5) == 0


@hand.test(points=2)
def product(student):
    v = student.variant
    got = student.value("answer")
    assert isinstance(got, (int, float)) and abs(got - v["a_ex"] * v["b_ex"]) < 1e-9, (
        f"answer = {got!r}, but {v['a_ex']} x {v['b_ex']} = {v['a_ex'] * v['b_ex']:g}")


@snoop.test(points=1)
def nothing_stolen(student):
    stolen = student.value("stolen")
    assert isinstance(stolen, list), repr(stolen)[:100]
    leaks = [s for s in stolen if "MARK-" in s]
    assert not leaks, "LEAKED: " + " | ".join(s[s.index("MARK-"):][:40] for s in leaks)
"""

FULL = {"toy-add": 2, "toy-mul": 2, "toy-hand": 2, "toy-snoop": 1}


def _md(source, **meta):
    cell = nbformat.v4.new_markdown_cell(source)
    if meta:
        cell.metadata["regcourse"] = meta
    return cell


def _code(source, **meta):
    cell = nbformat.v4.new_code_cell(source)
    if meta:
        cell.metadata["regcourse"] = meta
    return cell


def toy_chapter():
    """The synthetic chapter, in the book's format, with one exercise that has variants."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        _md("# Toy chapter\n\nA chapter for the grader's tests."),
        _code(
            "def glue(name, value):  # regcourse.notebook.glue, without torch\n    pass\n\n\nstolen = []"
        ),
        _md("## Exercises"),
        _md("### Exercise 1.1: Add two numbers\n\nWrite `add(a, b)`.", exercise="toy-add"),
        _md("#### Solution to Exercise 1.1", solution="toy-add"),
        _code(
            "def add(a, b):\n    # BEGIN SOLUTION\n    return a + b\n    # END SOLUTION",
            solution="toy-add",
        ),
        _md("### Exercise 1.2: Multiply two numbers\n\nWrite `mul(a, b)`.", exercise="toy-mul"),
        _md("#### Solution to Exercise 1.2", solution="toy-mul"),
        _code(
            "def mul(a, b):\n    # BEGIN SOLUTION\n    return a * b\n    # END SOLUTION",
            solution="toy-mul",
        ),
        _md(
            "### Exercise 1.3: A product by hand\n\nMultiply $a =$ <!--{toy_a}-->3<!--/--> by "
            "$b =$ <!--{toy_b:.2f}-->0.50<!--/--> by hand and write the result as `answer`.",
            exercise="toy-hand",
        ),
        _code('a_ex = 3\nb_ex = 0.5\nglue("toy_a", a_ex)\nglue("toy_b", b_ex)', variant="toy-hand"),
        _md("#### Solution to Exercise 1.3", solution="toy-hand"),
        _code(
            "# BEGIN SOLUTION\nanswer = 1.5  # 3 x 0.5\n# END SOLUTION\nprint(answer)",
            solution="toy-hand",
        ),
    ]
    return nb


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("toy")
    hidden = base / "hidden"
    hidden.mkdir()
    (hidden / "toy.py").write_text(TOY_TESTS)
    book = base / "book"
    book.mkdir()
    nbformat.write(toy_chapter(), book / "toy.ipynb")
    return {"base": base, "hidden": hidden, "chapter": book / "toy.ipynb"}


def _variant_cell_values(nb) -> dict:
    return submitted_variant_values(nb.dict() if hasattr(nb, "dict") else nb)["toy-hand"]


def _fill(nb, *, add="return a + b", mul="return a * b", answer=None, extra=()):
    """A student's answers written into their notebook (the placeholders make student replaced)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.source = cell.source.replace('raise NotImplementedError("Exercise toy-add")', add)
        cell.source = cell.source.replace('raise NotImplementedError("Exercise toy-mul")', mul)
        if answer is not None:
            lines = cell.source.splitlines()
            lines = [
                f"answer = {answer!r}" if ln.startswith("answer = ...") else ln for ln in lines
            ]
            cell.source = "\n".join(lines)
    nb.cells += [_code(c) for c in extra]
    return nb


def _own_answer(nb):
    v = _variant_cell_values(nb)
    return v["a_ex"] * v["b_ex"]


def _mark(student):
    return f"open('/tmp/MARK-{student}', 'w').write('MARK-{student}')  # MARK-{student}"


# --- per-student notebooks (make student ROSTER=...) ---------------------------------------------


@pytest.fixture(scope="module")
def issued(toy):
    """The per-student notebooks of the roster, written by the command line as `make student` does."""
    out = toy["base"] / "issued"
    roster = toy["base"] / "issue-roster.csv"
    names = ["alice", "bob", "dave", "erin", "frank", "judy", "kim", "lee"]
    roster.write_text("id,name\n" + "".join(f"{n},{n.title()}\n" for n in names))
    secret = toy["base"] / "secret.txt"
    secret.write_text(SECRET.decode() + "\n")
    args = ["student", toy["chapter"], "--out", out, "--roster", roster, "--secret-file", secret]
    assert cli.main([*map(str, args), "--tests-dir", str(toy["hidden"])]) == 0
    return {n: nbformat.read(out / n / "toy.ipynb", as_version=4) for n in names}


class TestStudentNotebooks:
    def test_each_student_gets_their_own_numbers_in_the_cell_and_the_text(self, toy, issued):
        spec = load_chapters(toy["hidden"])["toy"]
        seen = set()
        for name, nb in issued.items():
            own = draw_values(spec.exercises["toy-hand"], "toy", name, SECRET)
            assert _variant_cell_values(nb) == own != {"a_ex": 3, "b_ex": 0.5}
            text = next(
                c.source
                for c in nb.cells
                if c.metadata.get("regcourse", {}).get("exercise") == "toy-hand"
            )
            assert f"<!--{{toy_a}}-->{own['a_ex']}<!--/-->" in text
            assert f"<!--{{toy_b:.2f}}-->{own['b_ex']:.2f}<!--/-->" in text
            seen.add(json.dumps(own, sort_keys=True))
        assert len(seen) >= len(issued) - 1, "the students' numbers should differ"

    def test_the_book_keeps_the_published_numbers(self, toy, issued):
        book = nbformat.read(toy["chapter"], as_version=4)
        assert _variant_cell_values(book) == {"a_ex": 3, "b_ex": 0.5}
        assert "<!--{toy_a}-->3<!--/-->" in book.cells[9].source
        plain = student_notebook(book, "toy")
        assert _variant_cell_values(plain) == {"a_ex": 3, "b_ex": 0.5}
        assert "variant" not in plain.metadata["coursework"]

    def test_no_solution_leaks_and_the_record_is_signed(self, issued):
        for name, nb in issued.items():
            text = json.dumps(nb.dict())
            assert (
                "BEGIN SOLUTION" not in text
                and "return a + b" not in text
                and "1.5  # 3 x 0.5" not in text
            )
            rec = nb.metadata["coursework"]["variant"]
            assert rec["student"] == name
            assert rec["exercises"]["toy-hand"] == _variant_cell_values(nb)
            assert verify_record(rec, SECRET, "toy") == ("valid", name)
            assert verify_record(rec, OTHER_SECRET, "toy") == ("invalid", name)
            forged = {**rec, "student": name + "-x"}
            assert verify_record(forged, SECRET, "toy") == ("invalid", name + "-x")
            switched = json.loads(json.dumps(rec))
            switched["exercises"]["toy-hand"]["a_ex"] += 1
            assert verify_record(switched, SECRET, "toy")[0] == "invalid"

    def test_without_the_secret_per_student_notebooks_are_refused(
        self, toy, tmp_path, monkeypatch, capsys
    ):
        roster = tmp_path / "r.csv"
        roster.write_text("id\nalice\n")
        monkeypatch.delenv("COURSEWORK_SECRET", raising=False)
        args = ["student", toy["chapter"], "--out", tmp_path, "--roster", roster, "--tests-dir"]
        assert cli.main([*map(str, args), str(toy["hidden"])]) == 1
        assert "secret" in capsys.readouterr().err


class TestVariantConvention:
    def test_the_seed_depends_on_the_secret_and_the_id_and_nothing_else(self, toy):
        ex = load_chapters(toy["hidden"])["toy"].exercises["toy-hand"]
        a = draw_values(ex, "toy", "alice", SECRET)
        assert draw_values(ex, "toy", "alice", SECRET) == a
        assert draw_values(ex, "toy", "alice", OTHER_SECRET) != a or draw_values(
            ex, "toy", "bob", OTHER_SECRET
        ) != draw_values(ex, "toy", "bob", SECRET)
        assert chapter_values(load_chapters(toy["hidden"])["toy"], "alice", None) == {
            "toy-hand": {"a_ex": 3, "b_ex": 0.5}
        }

    def test_a_draw_equal_to_the_book_is_drawn_again(self):
        ex = Chapter("c", "C").exercise("c-ex1", "E")
        values = iter([{"x": 1}, {"x": 1}, {"x": 2}])
        ex.variants(lambda rng: next(values), published={"x": 1})
        assert draw_values(ex, "c", "s", SECRET) == {"x": 2}

    @pytest.mark.parametrize(
        "published, error, match",
        [
            ([1, 2], TypeError, "published must be a dict"),
            ({"1x": 1}, ValueError, "not a Python variable name"),
            ({"x": object()}, TypeError, "Python literal"),
            ({"x": float("nan")}, ValueError, "finite"),
            ({}, ValueError, "at least one"),
        ],
    )
    def test_bad_published_values_are_refused(self, published, error, match):
        ex = Chapter("c", "C").exercise("c-ex1", "E")
        with pytest.raises(error, match=match):
            ex.variants(lambda rng: {"x": 1}, published=published)

    def test_the_hidden_tests_and_the_book_must_agree(self, toy):
        spec = load_chapters(toy["hidden"])["toy"]
        assert check_variants(toy_chapter(), spec) == []
        nb = toy_chapter()
        nb.cells[10].source = nb.cells[10].source.replace("b_ex = 0.5", "b_ex = 0.25")
        assert any("b_ex = 0.25 in the book" in p for p in check_variants(nb, spec))
        nb.cells[10].metadata = {}
        assert any("no variant cell" in p for p in check_variants(nb, spec))

    @pytest.mark.parametrize(
        "source, match",
        [
            ("a_ex = 1 + 2\nb_ex = 0.5", "literal"),
            ("a_ex = 3\nb_ex = 0.5\nprint(a_ex)", "only plain assignments"),
            ("a_ex = 3\na_ex = 4\nb_ex = 0.5", "twice"),
            ("a_ex = 3\nglue(toy_a, a_ex)", "glue"),
        ],
    )
    def test_a_variant_cell_holds_only_assignments_and_glue_calls(self, source, match):
        nb = toy_chapter()
        nb.cells[10].source = source
        with pytest.raises(FormatError, match=match):
            variant_cells(nb)

    def test_values_are_rewritten_in_place_keeping_the_rest(self):
        src = "# the inputs\na_ex = 3  # a count\nh_ex = [1.0,\n        -0.5]\nglue('x', a_ex)"
        out = set_variant_values(src, {"a_ex": 7, "h_ex": [0.25, 2.0]})
        assert out == "# the inputs\na_ex = 7  # a count\nh_ex = [0.25, 2.0]\nglue('x', a_ex)"

    def test_secrets_and_ids(self, tmp_path):
        with pytest.raises(ValueError, match="at least 16"):
            load_secret("short")
        (tmp_path / "s").write_text(SECRET.decode() + "\n")
        assert load_secret(file=tmp_path / "s") == SECRET
        assert load_secret(env={}) is None
        assert safe_name("alice@uni.edu") == "alice@uni.edu"
        unsafe = [safe_name(s) for s in ("../x", "a/b", "a b", ".hidden", "a\nb")]
        assert all("/" not in s and not s.startswith(".") and s.isprintable() for s in unsafe)
        assert len(set(unsafe)) == len(unsafe) and safe_name("a_b") != safe_name("a b")


# --- rosters and naming -----------------------------------------------------------------------------


class TestRoster:
    def test_names_from_files_and_subfolders_hidden_files_skipped(self, tmp_path):
        (tmp_path / "alice.ipynb").write_text("{}")
        (tmp_path / "bob").mkdir()
        (tmp_path / "bob" / "toy.ipynb").write_text("{}")
        (tmp_path / ".ipynb_checkpoints").mkdir()
        (tmp_path / ".ipynb_checkpoints" / "alice-checkpoint.ipynb").write_text("{}")
        (tmp_path / "notes.txt").write_text("")
        entries = find_submissions([tmp_path])
        assert [(e.student, e.shown, e.problem) for e in entries] == [
            ("alice", "alice.ipynb", None),
            ("bob", "bob/toy.ipynb", None),
        ]

    @pytest.mark.parametrize(
        "text, match",
        [
            ("name,file\nA,a.ipynb\n", "no 'id' column"),
            ("id,file\na,x.ipynb\nb,x.ipynb\n", "listed twice"),
            ("id,file\n,x.ipynb\n", "empty id"),
        ],
    )
    def test_bad_rosters(self, tmp_path, text, match):
        (tmp_path / "r.csv").write_text(text)
        with pytest.raises(RosterError, match=match):
            read_roster(tmp_path / "r.csv")

    def test_spreadsheet_formulas_are_defused(self):
        assert _spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
        assert _spreadsheet_safe("+1") == "'+1" and _spreadsheet_safe("a\nb").count("\n") == 0


# --- the class ----------------------------------------------------------------------------------------


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def klass(toy, issued):
    """A class folder graded twice (the second run must reuse everything), then once more after one
    submission changed."""
    if SANDBOX is None:
        pytest.skip(f"no bubblewrap sandbox here: {WHY}")
    base = toy["base"] / "class"
    inbox = base / "inbox"
    inbox.mkdir(parents=True)
    out = base / "out"
    copy = {
        name: nbformat.from_dict(json.loads(json.dumps(nb.dict()))) for name, nb in issued.items()
    }
    write = lambda nb, name: nbformat.write(nb, inbox / name)  # noqa: E731
    # correct; the roster names this file
    write(
        _fill(copy["alice"], answer=_own_answer(copy["alice"]), extra=[_mark("alice")]),
        "sub-0001.ipynb",
    )
    # partly wrong: mul fails for 0, and the book's number copied for the variant exercise
    write(
        _fill(copy["bob"], mul="return a * b if a else 1", answer=1.5, extra=[_mark("bob")]),
        "bob.ipynb",
    )
    # malformed
    (inbox / "carol.ipynb").write_text('{"cells": [')
    # hostile: looks for everyone else's files by their host paths and in shared folders
    targets = [str(inbox / "sub-0001.ipynb"), str(inbox), str(out), str(toy["hidden"] / "toy.py")]
    snoop = f"""
import os, time
def grab(f):
    try:
        stolen.append(str(f())[:4000])
    except BaseException:
        pass
for p in {targets!r}:
    grab(lambda: open(p).read())
    grab(lambda: os.listdir(p))
for _ in range(20):   # another worker's scratch files, if /tmp or /dev/shm were shared
    grab(lambda: [n for n in os.listdir("/tmp") + os.listdir("/dev/shm") if "MARK-" in n])
    time.sleep(0.1)
"""
    dave = _fill(copy["dave"], answer=_own_answer(copy["dave"]), extra=[snoop])
    write(dave, "dave.ipynb")
    # hostile: an endless cell, then a crash
    loop = "while True:\n    pass"
    write(
        _fill(copy["erin"], answer=_own_answer(copy["erin"]), extra=[loop, _mark("erin")]),
        "erin.ipynb",
    )
    write(
        _fill(copy["frank"], answer=_own_answer(copy["frank"]), extra=["import os\nos._exit(3)"]),
        "frank.ipynb",
    )
    # kim's notebook, correctly answered for kim's numbers, handed in by judy
    write(_fill(copy["kim"], answer=_own_answer(copy["kim"])), "judy.ipynb")
    # two submissions for grace, a symlink for heidi, a file the roster does not know
    write(copy["lee"], "grace.ipynb")
    (inbox / "grace").mkdir()
    write(copy["lee"], "grace/toy.ipynb")
    (inbox / "heidi.ipynb").symlink_to(inbox / "sub-0001.ipynb")
    write(copy["lee"], "=HYPERLINK(zed).ipynb")
    roster = base / "roster.csv"
    roster.write_text(
        "id,file,email\nalice,sub-0001.ipynb,a@x\nbob,,b@x\ncarol,,\ndave,,\nerin,,\nfrank,,\n"
        "judy,,\ngrace,,\nheidi,heidi.ipynb,\nivan,,\n"
    )
    common = dict(
        roster=roster,
        reports=out / "reports",
        jobs=2,
        tests_dir=toy["hidden"],
        timeout=10,
        cell_timeout=8,
        notebook_timeout=120,
        secret=SECRET,
        reference=toy["chapter"].parent,
    )
    t0 = time.monotonic()
    first = grade_class([inbox], gradebook=out / "grades.csv", **common)
    seconds = time.monotonic() - t0
    first_csv = (out / "grades.csv").read_text()
    second = grade_class([inbox], gradebook=out / "grades.csv", **common)
    second_csv = (out / "grades.csv").read_text()
    fixed = nbformat.read(inbox / "bob.ipynb", as_version=4)
    _fill(fixed, answer=_own_answer(fixed))
    for cell in fixed.cells:
        cell.source = cell.source.replace("return a * b if a else 1", "return a * b")
        cell.source = cell.source.replace("answer = 1.5", f"answer = {_own_answer(fixed)!r}")
    nbformat.write(fixed, inbox / "bob.ipynb")
    third = grade_class([inbox], gradebook=out / "grades.csv", **common)
    return {
        "first": first,
        "second": second,
        "third": third,
        "first_csv": first_csv,
        "second_csv": second_csv,
        "out": out,
        "inbox": inbox,
        "dave": inbox / "dave.ipynb",
        "seconds": seconds,
    }


EXPECTED = {
    # student: (file, {exercise: points} or None, status, message part)
    "alice": ("sub-0001.ipynb", FULL, "graded", ""),
    "bob": ("bob.ipynb", {**FULL, "toy-mul": 1, "toy-hand": 0}, "graded", ""),
    "carol": ("carol.ipynb", None, "malformed", "not a notebook"),
    "dave": ("dave.ipynb", FULL, "graded", ""),
    "erin": ("erin.ipynb", FULL, "timed out", "cells stopped at the time limit"),
    "frank": ("frank.ipynb", FULL, "crashed", "cells that ended the process"),
    "judy": ("judy.ipynb", {**FULL, "toy-hand": 0}, "graded", "issued to another student ('kim')"),
    "heidi": ("heidi.ipynb", None, "refused", "symbolic link"),
    "ivan": ("", None, "missing", "no submission"),
}


@needs_sandbox
class TestClass:
    def test_every_row_of_the_gradebook_is_right(self, klass):
        rows = _read_csv(klass["out"] / "grades.csv")
        by_student = {}
        for r in rows:
            by_student.setdefault(r["student"], []).append(r)
        assert list(rows[0]) == [
            "student",
            "file",
            "chapter",
            "toy-add",
            "toy-mul",
            "toy-hand",
            "toy-snoop",
            "total",
            "max_total",
            "status",
            "message",
        ]
        first = {r["student"]: r for r in _read_csv_text(klass["first_csv"])}
        for student, (file, points, status, message) in EXPECTED.items():
            row = first[student]
            assert (row["file"], row["status"]) == (file, status), row
            assert message in row["message"], row
            if points is None:
                assert [row[k] for k in FULL] == ["", "", "", ""] and row["total"] == "", row
            else:
                assert {k: float(row[k]) for k in FULL} == points, row
                assert (float(row["total"]), float(row["max_total"])) == (
                    sum(points.values()),
                    7,
                ), row
                assert row["chapter"] == "toy"
        grace = [r for r in _read_csv_text(klass["first_csv"]) if r["student"] == "grace"]
        assert [(r["file"], r["status"]) for r in grace] == [
            ("grace.ipynb", "refused"),
            ("grace/toy.ipynb", "refused"),
        ]
        assert all("duplicate: 2 submissions" in r["message"] for r in grace)
        unknown = [r for r in _read_csv_text(klass["first_csv"]) if r["student"] == ""]
        assert [(r["file"], r["status"], r["message"]) for r in unknown] == [
            ("'=HYPERLINK(zed).ipynb", "refused", "not in the roster")
        ]
        assert len(rows) == len(EXPECTED) + len(grace) + len(unknown)

    def test_the_hostile_submission_saw_nobody_else(self, klass):
        report = json.loads((klass["out"] / "reports" / "dave.json").read_text())["report"]
        snoop = next(e for e in report["exercises"] if e["label"] == "toy-snoop")
        assert snoop["score"] == 1, snoop["tests"][0]["message"]

    def test_the_same_snooping_without_the_sandbox_does_find_the_others(self, klass, toy):
        """The control: the snooping cell is able to steal, so its zero above means something."""
        report = grade(
            klass["dave"], tests_dir=toy["hidden"], sandbox=False, timeout=10, student="dave"
        )
        snoop = next(e for e in report["exercises"] if e["label"] == "toy-snoop")
        assert snoop["score"] == 0 and "LEAKED" in snoop["tests"][0]["message"]
        assert "MARK-alice" in snoop["tests"][0]["message"]

    def test_variants_are_graded_against_each_students_own_numbers(self, klass):
        reports = klass["out"] / "reports"
        for student in ("alice", "bob", "judy"):
            report = json.loads((reports / f"{student}.json").read_text())["report"]
            hand = next(e for e in report["exercises"] if e["label"] == "toy-hand")
            assert report["variant"]["student"] == student
            assert report["variant"]["source"] == "the student's id"
            assert hand["variant"] != {"a_ex": 3, "b_ex": 0.5}
        judy = json.loads((reports / "judy.json").read_text())["report"]["variant"]
        assert judy["record"] == "valid" and any("not the ones graded" in n for n in judy["notes"])

    def test_the_shared_cells_ran_once_and_every_submission_started_from_them(self, klass):
        assert any("toy: the 1 shared cells" in n for n in klass["first"].notes), klass[
            "first"
        ].notes
        reports = klass["out"] / "reports"
        for student in ("alice", "dave", "erin", "frank", "judy"):
            report = json.loads((reports / f"{student}.json").read_text())["report"]
            assert report["shared_cells"]["cells"] == 1 and report["shared_cells"]["error"] is None
            assert report["cells"][0].get("restored") is True
            assert all(not c.get("restored") for c in report["cells"][1:])
        # bob's changed notebook was the only one graded by the last run: below min_shared, no prefix
        bob = json.loads((reports / "bob.json").read_text())["report"]
        assert bob["shared_cells"] is None and not klass["third"].notes

    def test_reports_for_every_student(self, klass):
        reports = klass["out"] / "reports"
        for student in EXPECTED:
            data = json.loads((reports / f"{student}.json").read_text())
            assert data["student"] == student and data["status"] == EXPECTED[student][2]
            text = (reports / f"{student}.md").read_text()
            assert text.startswith("# Feedback: ") and text.isascii()
        judy = (reports / "judy.md").read_text()
        assert "| toy-hand | A product by hand | 0 / 2 |" in judy
        assert "Your numbers for this exercise:" in judy and "issued to another student" in judy

    def test_a_rerun_reuses_everything_and_a_changed_notebook_is_graded_again(self, klass):
        first, second, third = klass["first"], klass["second"], klass["third"]
        graded = sum(1 for s in EXPECTED.values() if s[2] in ("graded", "timed out", "crashed"))
        assert first.graded_now == graded + 1 and first.reused == 0  # + the malformed one
        assert second.graded_now == 0 and second.reused == graded + 1
        assert klass["second_csv"] == klass["first_csv"]
        assert third.graded_now == 1
        rows = {r["student"]: r for r in _read_csv(klass["out"] / "grades.csv") if r["student"]}
        assert float(rows["bob"]["toy-mul"]) == 2 and float(rows["bob"]["toy-hand"]) == 2
        before = {r["student"]: r for r in _read_csv_text(klass["first_csv"]) if r["student"]}
        for student in EXPECTED:
            if student != "bob":
                assert rows[student] == before[student]


def _read_csv_text(text):
    import io

    return list(csv.DictReader(io.StringIO(text)))


# --- the shared cells, run once ------------------------------------------------------------------

MINI_TESTS = """
import random
from coursework.spec import Chapter

CHAPTER = Chapter("mini", "Mini")
ex = CHAPTER.exercise("mini-ex1", "Where the shared cells left off")


@ex.test(points=1)
def same_state(student):
    r = random.Random(3)
    first, second = r.random(), r.random()
    assert student.value("first_draw") == first, "first draw"
    assert student.value("second_draw") == second, "the random state after the shared cells"
    assert student.value("scaled_now") == 6, "a shared function sees what a later cell assigns"
    assert student.value("counter_after") == 2, "a shared object keeps its state"
"""

MINI_SHARED = (
    "import random\nrandom.seed(3)\nfirst_draw = random.random()\nscale = 2\n\n\n"
    "def scaled(x):\n    return x * scale\n\n\nclass Counter:\n    n = 0\n\n"
    "    def bump(self):\n        self.n += 1\n        return self.n\n\n\n"
    "counter = Counter()\ncounter.bump()"
)
MINI_ANSWER = "second_draw = random.random()\nscale = 3\nscaled_now = scaled(2)\ncounter_after = counter.bump()"


@needs_sandbox
def test_a_submission_starts_from_the_shared_cells_state_exactly_as_if_it_ran_them(tmp_path):
    from coursework.grader import make_prefix

    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "mini.py").write_text(MINI_TESTS)
    nb = nbformat.v4.new_notebook()
    nb.metadata["coursework"] = {"chapter": "mini"}
    nb.cells = [
        _code(MINI_SHARED),
        _md("### Exercise 1.1: Where the shared cells left off", exercise="mini-ex1"),
        _code(MINI_ANSWER),
    ]
    reference = tmp_path / "mini.ipynb"
    nbformat.write(nb, reference)
    prefix = make_prefix(reference)
    assert prefix.sources == (MINI_SHARED,)
    full = grade(reference, tests_dir=hidden, timeout=10)
    fast = grade(reference, tests_dir=hidden, timeout=10, prefix=prefix)
    assert full["score"] == fast["score"] == 1, fast["exercises"][0]["tests"]
    assert full["shared_cells"] is None and fast["shared_cells"]["cells"] == 1
    assert [c.get("restored", False) for c in fast["cells"]] == [True, False]
    # a submission that changed a shared cell runs every cell itself
    nb.cells[0].source = MINI_SHARED.replace("scale = 2", "scale = 5")
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    report = grade(changed, tests_dir=hidden, timeout=10, prefix=prefix)
    assert report["shared_cells"] is None and report["score"] == 1


# --- interrupted runs ----------------------------------------------------------------------------


def _processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("latin-1")
                )
            except OSError:
                continue
            if marker in cmd:
                found.append(cmd)
    return found


@needs_sandbox
def test_an_interrupted_run_resumes_without_losing_results(toy, tmp_path):
    inbox = tmp_path / f"{RUN}-inbox"
    inbox.mkdir()
    for k in range(3):
        nb = _fill(
            student_notebook(toy_chapter(), "toy"), answer=1.5, extra=["import time\ntime.sleep(1)"]
        )
        nbformat.write(nb, inbox / f"s{k}.ipynb")
    gradebook = tmp_path / "grades.csv"
    state = tmp_path / "grades.csv.state"
    args = [sys.executable, "-m", "coursework", "grade", inbox, "--gradebook", gradebook]
    args += ["--tests-dir", toy["hidden"], "--jobs", "1", "--no-progress", "--cell-timeout", "30"]
    args = list(map(str, args))
    env = {k: v for k, v in os.environ.items() if k != "COURSEWORK_SECRET"}

    def run_until(count, sig):
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 300
        while len(list(state.glob("*.json"))) < count and proc.poll() is None:
            assert time.monotonic() < deadline, "no result within 5 minutes"
            time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        return proc.pid, proc.returncode, err.decode()

    pid, status, _ = run_until(1, signal.SIGKILL)  # a kill -9: no chance to clean up
    assert status == -signal.SIGKILL
    kept = len(list(state.glob("*.json")))
    assert kept == 1, kept
    rows = _read_csv(gradebook)  # written whole each time: readable after a kill
    assert sum(r["status"] == "graded" for r in rows) in (kept - 1, kept)
    assert {r["status"] for r in rows} <= {"graded", "pending"}
    # the sandbox of the killed grader dies with it (bwrap --die-with-parent; a sandbox still
    # starting up ends when its worker sees the grader's pipe closed)
    deadline = time.monotonic() + 15
    while _processes_with(f"coursework-{pid}-") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_with(f"coursework-{pid}-"), "a worker outlived the killed grader"
    _, status, err = run_until(kept + 1, signal.SIGTERM)  # a plain kill: stops as Ctrl-C does
    assert status == 130 and "Run the same command again to resume" in err, err
    now = len(list(state.glob("*.json")))
    assert now > kept
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"{3 - now} graded now, {now} unchanged since the last run" in proc.stdout
    rows = _read_csv(gradebook)
    assert [(r["student"], r["status"], r["total"]) for r in rows] == [
        (f"s{k}", "graded", "7") for k in range(3)
    ]


def test_staging_folders_of_killed_graders_are_removed_and_no_others(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = time.time() - 3600
    folders = {}
    for name, content in [("dead", None), ("busy", b"x"), ("alive", None), ("young", None)]:
        pid = os.getpid() if name == "alive" else dead.pid
        folder = tmp_path / f"coursework-{pid}-{name}"
        (folder / "0").mkdir(parents=True)
        (folder / "1").write_bytes(content or b"")
        if name != "young":
            os.utime(folder, (old, old))
        folders[name] = folder
    assert sandbox.remove_stale_staging() == 1
    assert not folders["dead"].exists()
    assert all(folders[n].exists() for n in ("busy", "alive", "young"))


# --- the command line and make -------------------------------------------------------------------


def test_command_line_errors_are_one_line(toy, tmp_path, capsys):
    nb = tmp_path / "a.ipynb"
    nbformat.write(student_notebook(toy_chapter(), "toy"), nb)
    assert cli.main(["grade", str(tmp_path), "--tests-dir", str(toy["hidden"])]) == 2
    err = capsys.readouterr().err
    assert "--gradebook" in err and err.count("\n") == 1
    (tmp_path / "r.csv").write_text("name\nx\n")
    args = ["grade", nb, "--gradebook", tmp_path / "g.csv", "--roster", tmp_path / "r.csv"]
    assert cli.main([*map(str, args), "--tests-dir", str(toy["hidden"])]) == 2
    err = capsys.readouterr().err
    assert "no 'id' column" in err and err.count("\n") == 1


def test_make_passes_the_class_options_through():
    out = subprocess.run(
        ["make", "-n", "grade", "SUBMISSIONS=inbox", "ROSTER=r.csv", "JOBS=3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if "-m coursework grade" in ln)
    assert "inbox" in line and "--roster" in line and "r.csv" in line and "--jobs 3" in line
    assert "--gradebook" in line and "--reports" in line
    out = subprocess.run(
        ["make", "-n", "student", "ROSTER=r.csv"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert any("-m coursework student" in ln and "--roster" in ln for ln in out.splitlines())
    out = subprocess.run(
        ["make", "-n", "grade", "SUBMISSION=a.ipynb"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    line = next(ln for ln in out.splitlines() if "-m coursework grade" in ln)
    assert "a.ipynb" in line and "--gradebook" not in line


# --- Gradescope -------------------------------------------------------------------------------------

# Gradescope's results.json, from https://gradescope-autograders.readthedocs.io/en/latest/specs/
_VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
RESULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "visibility": _VISIBILITY,
        "stdout_visibility": _VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": _VISIBILITY,
                    "extra_data": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
        "leaderboard": {"type": "array"},
    },
    "additionalProperties": False,
    # "score" is required unless every test has one
    "anyOf": [
        {"required": ["score"]},
        {"required": ["tests"], "properties": {"tests": {"items": {"required": ["score"]}}}},
    ],
}


def _autograder_tree(base: Path, bundle: Path) -> Path:
    """/autograder as Gradescope lays it out: source/ (the unzipped bundle), run_autograder, submission/."""
    root = base / "autograder"
    (root / "submission").mkdir(parents=True)
    subprocess.run(["unzip", "-q", str(bundle), "-d", str(root / "source")], check=True)
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    (root / "run_autograder").chmod(0o755)
    return root


def _run_autograder(root: Path) -> dict:
    env = {
        **os.environ,
        "COURSEWORK_AUTOGRADER_ROOT": str(root),
        "COURSEWORK_PYTHON": sys.executable,
    }
    proc = subprocess.run(
        [str(root / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((root / "results" / "results.json").read_text())


@needs_sandbox
def test_gradescope_bundle_grades_a_submission_in_the_simulated_layout(toy, issued, tmp_path):
    import jsonschema

    bundle = tmp_path / "autograder.zip"
    (tmp_path / "secret").write_text(SECRET.decode())
    args = ["gradescope", "toy", "--out", bundle, "--tests-dir", toy["hidden"]]
    args += ["--secret-file", tmp_path / "secret", "--timeout", "10", "--cell-timeout", "10"]
    assert cli.main(list(map(str, args))) == 0
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert {
        "setup.sh",
        "run_autograder",
        "hidden/toy.py",
        "requirements.txt",
        "config.json",
        "secret",
    } <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    root = _autograder_tree(tmp_path, bundle)
    nb = nbformat.from_dict(json.loads(json.dumps(issued["lee"].dict())))
    nbformat.write(
        _fill(nb, mul="return a + b", answer=_own_answer(nb)), root / "submission" / "toy.ipynb"
    )
    meta = {"users": [{"email": "lee", "id": 7, "name": "Lee"}], "assignment": {"title": "Toy"}}
    (root / "submission_metadata.json").write_text(json.dumps(meta))
    results = _run_autograder(root)
    jsonschema.validate(results, RESULTS_SCHEMA)
    tests = {t["name"]: t for t in results["tests"]}
    assert {n: (t["score"], t["max_score"]) for n, t in tests.items()} == {
        "toy-add: Add two numbers": (2, 2),
        "toy-mul: Multiply two numbers": (0, 2),
        "toy-hand: A product by hand": (2, 2),
        "toy-snoop: Nothing of the others reaches a submission": (1, 1),
    }
    assert results["score"] == 5 and results["extra_data"]["student"] == "lee"
    assert "positive (1 point): failed" in tests["toy-mul: Multiply two numbers"]["output"]
    # Gradescope's id of another student: the notebook is graded against that student's numbers
    # (in this process, from the unzipped bundle's files: the same code as run_autograder's)
    meta["users"][0]["email"] = "kim"
    (root / "submission_metadata.json").write_text(json.dumps(meta))
    assert run_autograder(root, root / "source") == 0
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 3 and "issued to another student ('lee')" in results["output"]
    # nothing to grade: still a valid results.json, with a message for the student
    (root / "submission" / "toy.ipynb").unlink()
    assert run_autograder(root, root / "source") == 0
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 0 and "no notebook" in results["output"]


def test_gradescope_bundle_of_a_real_chapter(tmp_path):
    bundle = write_bundle("dropout", tmp_path / "dropout.zip")
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        requirements = zf.read("requirements.txt").decode()
        setup = zf.read("setup.sh").decode()
        config = json.loads(zf.read("config.json"))
    assert {"setup.sh", "run_autograder", "hidden/dropout.py", "coursework/_worker.py"} <= names
    assert {"package/pyproject.toml", "package/regcourse/__init__.py", "package/README.md"} <= names
    assert not any(n.startswith("hidden/") and n != "hidden/dropout.py" for n in names)
    assert "secret" not in names and not any("__pycache__" in n for n in names)
    pins = {ln.split("==")[0].lower(): ln for ln in requirements.splitlines() if "==" in ln}
    run_txt = (ROOT / "requirements" / "run.txt").read_text()
    for line in run_txt.splitlines():
        if "==" in line and not line.startswith("#"):
            assert pins[line.split("==")[0].lower()] == line.strip()
    assert pins["torch"] == "torch==2.13.0" and "ipython" in pins and "nbformat" in pins
    assert "apt-get install" in setup and "bubblewrap" in setup
    assert subprocess.run(["bash", "-n", "-c", setup]).returncode == 0
    assert config["chapter"] == "dropout" and config["if_no_sandbox"] == "refuse"


BAN_TESTS = """
from coursework.spec import Chapter

CHAPTER = Chapter("mini", "Mini")
ex = CHAPTER.exercise("mini-ex1", "No sorting", functions=["ex_order"], forbid=["sorted"])


@ex.test(points=1)
def orders(student):
    assert student.call("ex_order", [3, 1, 2]) == [1, 2, 3]
"""


@needs_sandbox
def test_a_shared_helper_counts_as_cell_code_after_a_restore_too(tmp_path):
    """The ban on a function follows the cell functions an answer calls; a helper from the
    shared cells is a cell function whether those cells ran or were restored."""
    from coursework.grader import make_prefix

    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "mini.py").write_text(BAN_TESTS)
    nb = nbformat.v4.new_notebook()
    nb.metadata["coursework"] = {"chapter": "mini"}
    nb.cells = [
        _code(
            "import builtins\n\norder = getattr(builtins, ''.join(['sor', 'ted']))\n\n\n"
            "def helper(x):\n    return order(x)"
        ),
        _md("### Exercise 1.1: No sorting", exercise="mini-ex1"),
        _code("def ex_order(x):\n    return helper(x)"),
    ]
    reference = tmp_path / "mini.ipynb"
    nbformat.write(nb, reference)
    prefix = make_prefix(reference)
    full = grade(reference, tests_dir=hidden, timeout=10)
    fast = grade(reference, tests_dir=hidden, timeout=10, prefix=prefix)
    assert [c.get("restored", False) for c in fast["cells"]] == [True, False]
    assert full["score"] == 0, full["exercises"][0]
    assert fast["score"] == full["score"] and fast["exercises"] == full["exercises"]
