"""The coursework tool: student versions leak nothing, grading is right and robust.

Grading starts worker processes (each imports torch), so the grading tests are
few: one real chapter (dropout, the smallest) graded as handed out (every chapter
as written: tests/test_reference_solutions.py), one small notebook per deliberately
wrong implementation, and one synthetic chapter for the failure cases (endless loops,
exits, snooping).
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

from coursework import _worker
from coursework.grader import Cell, _forbidden_uses, grade, load_chapters
from coursework.protocol import Other, decode_value
from coursework.notebook import (
    BEGIN,
    END,
    FormatError,
    parse_exercises,
    strip_solution,
    student_notebook,
)
from coursework.spec import Chapter

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [
    p
    for p in sorted((ROOT / "book").glob("*.ipynb"))
    if parse_exercises(nbformat.read(p, as_version=4))
]
IDS = [p.stem for p in CHAPTERS]


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _solution_text(nb) -> tuple[set[str], str]:
    """(lines a student must not see, the text of everything a student may see)."""
    secret, visible = set(), []
    blocks = parse_exercises(nb)
    inside = set()
    for b in blocks:
        if b.solution:
            inside.update(range(b.solution[0], b.solution[1] + 1))
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and i in inside:
            in_block = False
            for line in cell.source.splitlines():
                if line.strip() == BEGIN:
                    in_block = True
                elif line.strip() == END:
                    in_block = False
                elif in_block and line.strip():
                    secret.add(line.strip())
                else:
                    visible.append(line)
        elif cell.cell_type == "markdown" and i in inside:
            secret.update(
                line.strip()
                for line in cell.source.splitlines()
                if line.strip() and "{solution" not in line and line.strip() != "```"
            )
        else:
            visible.append(cell.source)
    return secret, "\n".join(visible)


# --- student versions ----------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
class TestStudentVersion:
    def test_no_solution_line_and_no_marker_leaks(self, path):
        nb = _read(path)
        student = student_notebook(nb, path.stem)
        text = json.dumps(student.dict())
        cells_text = "\n".join(c.source for c in student.cells)
        secret, visible = _solution_text(nb)
        assert secret, "the chapter has no solution text to hide"
        leaked = [s for s in secret if s not in visible and s in cells_text]
        assert not leaked, f"solution lines in the student version: {leaked[:5]}"
        for marker in (
            "BEGIN SOLUTION",
            "END SOLUTION",
            "{solution-start}",
            "{solution-end}",
            "{solution}",
        ):
            assert marker not in text

    def test_no_outputs_no_counts_no_execution_metadata(self, path):
        student = student_notebook(_read(path), path.stem)
        for cell in student.cells:
            assert "execution" not in cell.metadata
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None

    def test_kernel_and_chapter_metadata(self, path):
        nb = _read(path)
        student = student_notebook(nb, path.stem)
        assert student.metadata["kernelspec"] == nb.metadata["kernelspec"]
        assert student.metadata["coursework"]["chapter"] == path.stem
        assert student.metadata["coursework"]["exercises"] == [b.label for b in parse_exercises(nb)]

    def test_tasks_and_chapter_cells_kept_unchanged(self, path):
        nb = _read(path)
        student_sources = [c.source for c in student_notebook(nb, path.stem).cells]
        blocks = parse_exercises(nb)
        for b in blocks:
            assert nb.cells[b.cell].source in student_sources, f"the task of {b.label} is missing"
        first_exercise = min(b.cell for b in blocks)
        for cell in nb.cells[:first_exercise]:
            assert cell.source in student_sources

    def test_each_solution_cell_has_a_placeholder_and_still_parses(self, path):
        from IPython.core.inputtransformer2 import TransformerManager

        nb = _read(path)
        student = student_notebook(nb, path.stem)
        codes = "\n".join(c.source for c in student.cells if c.cell_type == "code")
        for b in parse_exercises(nb):
            if b.code_cells:
                assert (
                    f'raise NotImplementedError("Exercise {b.label}")' in codes
                    or f"= ...  # Exercise {b.label}" in codes
                ), b.label
        for cell in student.cells:
            if cell.cell_type == "code":
                ast.parse(TransformerManager().transform_cell(cell.source))

    def test_every_exercise_has_hidden_tests(self, path):
        chapters = load_chapters()
        assert path.stem in chapters, f"write coursework/tests/{path.stem}.py"
        spec = chapters[path.stem]
        labels = [b.label for b in parse_exercises(_read(path))]
        assert sorted(spec.exercises) == sorted(labels)
        for label in labels:
            ex = spec.exercises[label]
            assert ex.tests or ex.manual, (
                f"{label}: neither hidden tests nor a note for the human grader"
            )


class TestStripSolution:
    def test_function_body_becomes_raise_at_the_marker_indentation(self):
        src = "def f(x):\n    # keep\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n\nprint(f(1))"
        out = strip_solution(src, "t-ex1")
        assert out.splitlines() == [
            "def f(x):",
            "    # keep",
            '    raise NotImplementedError("Exercise t-ex1")',
            "",
            "print(f(1))",
        ]

    def test_nested_block_keeps_its_deeper_indentation(self):
        src = "class A:\n    def f(self):\n        # BEGIN SOLUTION\n        return 1\n        # END SOLUTION\n"
        assert (
            '        raise NotImplementedError("Exercise t-ex2")'
            in strip_solution(src, "t-ex2").splitlines()
        )

    def test_top_level_values_used_later_become_ellipsis(self):
        src = "# BEGIN SOLUTION\nhelper = 3\nanswer, other = helper * 2, 1\n# END SOLUTION\nprint(answer + other)"
        out = strip_solution(src, "t-ex3").splitlines()
        assert out[:2] == [
            "answer = ...  # Exercise t-ex3: replace ... with your answer",
            "other = ...  # Exercise t-ex3: replace ... with your answer",
        ]
        assert "helper" not in "\n".join(
            out
        )  # an intermediate name of the solution is not revealed

    def test_names_used_only_in_a_later_cell_count(self):
        src = "# BEGIN SOLUTION\nanswer = 3\n# END SOLUTION"
        assert strip_solution(src, "t", later_code="print(answer)").startswith("answer = ...")
        assert strip_solution(src, "t") == 'raise NotImplementedError("Exercise t")'

    @pytest.mark.parametrize(
        "src, match",
        [
            ("# BEGIN SOLUTION\nx = 1\n", "without"),
            ("x = 1\n# END SOLUTION\n", "without"),
            ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "nested"),
        ],
    )
    def test_malformed_markers_raise(self, src, match):
        with pytest.raises(FormatError, match=match):
            strip_solution(src, "t")


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, src in cells:
        nb.cells.append(
            nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        )
    return nb


EX = ("md", "```{exercise} Toy\n:label: toy-ex1\nDo it.\n```")
START, STOP = (
    ("md", "```{solution-start} toy-ex1\n:class: dropdown\n```"),
    ("md", "```{solution-end}\n```"),
)


class TestParseExercises:
    def test_solution_made_only_of_unmarked_code_is_refused(self):
        with pytest.raises(FormatError, match="would leak"):
            parse_exercises(_nb(EX, START, ("code", "answer = 42"), STOP))

    def test_unmarked_check_cell_beside_a_marked_one_is_kept_whole(self):
        nb = _nb(
            EX,
            START,
            ("md", "Because 6 * 7."),
            ("code", "# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION"),
            ("code", "print(answer == 42)"),
            STOP,
        )
        sources = [c.source for c in student_notebook(nb, "toy").cells]
        assert "print(answer == 42)" in sources and "Because 6 * 7." not in sources

    @pytest.mark.parametrize(
        "cells, match",
        [
            ([("md", "```{solution-start} nope\n```"), STOP], "unknown exercise"),
            ([EX, START, ("code", "# BEGIN SOLUTION\nx = 1\n# END SOLUTION")], "no solution-end"),
            ([EX, ("code", "# BEGIN SOLUTION\nx = 1\n# END SOLUTION")], "outside"),
            ([EX, EX], "used twice"),
            ([STOP], "without solution-start"),
        ],
    )
    def test_format_errors(self, cells, match):
        with pytest.raises(FormatError, match=match):
            parse_exercises(_nb(*cells))


# --- values across the process boundary -----------------------------------------------------


class TestCodec:
    @pytest.mark.parametrize(
        "value",
        [
            torch.tensor([[1.5, -0.0], [float("nan"), float("inf")]], dtype=torch.float64),
            torch.arange(6, dtype=torch.int64).reshape(2, 3),
            torch.tensor([0.1, 0.7], dtype=torch.float32),
            torch.tensor([True, False]),
            torch.tensor(2.5),
        ],
    )
    def test_tensors_round_trip_exactly(self, value):
        back = decode_value(json.loads(json.dumps(_worker.encode(value))))
        assert back.dtype == value.dtype and back.shape == value.shape
        assert torch.equal(torch.nan_to_num(back), torch.nan_to_num(value))
        assert torch.equal(back.isnan(), value.isnan())

    def test_containers_numbers_and_placeholders_round_trip(self):
        value = {
            (2, 0.0): (3, 1),
            "x": [1, 2.5, None, True, "s"],
            7: ...,
            "big": 2**70,
            "nan": float("nan"),
        }
        back = decode_value(json.loads(json.dumps(_worker.encode(value))))
        assert back[(2, 0.0)] == (3, 1) and back["x"] == [1, 2.5, None, True, "s"]
        assert back[7] is Ellipsis and back["big"] == 2**70 and math.isnan(back["nan"])

    def test_other_objects_arrive_as_unequal_placeholders(self):
        back = decode_value(_worker.encode(object()))
        assert isinstance(back, Other) and back != back and "object" in repr(back)


def test_points_must_be_positive():
    ex = Chapter("toy", "Toy").exercise("toy-ex1", "Toy")
    with pytest.raises(ValueError, match="points"):
        ex.test(points=0)


# --- grading a real chapter -------------------------------------------------------------------


@pytest.fixture(scope="module")
def dropout_reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    nb = _read(ROOT / "book" / "dropout.ipynb")
    nbformat.write(student_notebook(nb, "dropout"), out / "dropout.ipynb")
    # the reference itself (every chapter's) is graded in tests/test_reference_solutions.py
    return None, grade(out / "dropout.ipynb"), _read(out / "dropout.ipynb")


def test_untouched_student_version_scores_zero_and_its_other_cells_run(dropout_reports):
    _, student, nb = dropout_reports
    assert student["score"] == 0 and student["max_score"] > 0
    assert all(not t["passed"] for e in student["exercises"] for t in e["tests"])
    exercise_cells = {
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and ("# Exercise " in c.source or 'NotImplementedError("Exercise ' in c.source)
    }
    assert exercise_cells
    for cell in student["cells"]:
        if cell["cell"] not in exercise_cells:
            assert cell["status"] == "ok", cell
    assert {c["cell"] for c in student["cells"] if c["status"] != "ok"} <= exercise_cells


# --- wrong implementations lose exactly their exercise's points -------------------------------

L2 = "    return w - lr * (g + lam * w)"
LS_BODY = "    return ((1 - eps) * hard + eps * uniform).mean()"
MUTATIONS = {
    "dropout without rescaling": (
        "dropout",
        "    return h * mask / (1 - p)",
        "    return h * mask",
        "do-ex2",
        None,
    ),
    "L2 gradient without lambda": (
        "weight_decay",
        L2,
        "    return w - lr * (g + w)",
        "wd-ex2",
        "l2 step matches sgd step",
    ),
    "L2 gradient with 2 lambda": (
        "weight_decay",
        L2,
        "    return w - lr * (g + 2 * lam * w)",
        "wd-ex2",
        "l2 step matches sgd step",
    ),
    "label smoothing with eps/(K-1)": (
        "label_smoothing",
        LS_BODY,
        "    k = logits.shape[1]\n    return ((1 - eps) * hard + eps / (k - 1) * (k * uniform - hard)).mean()",
        "ls-ex2",
        None,
    ),
}


def _exercise_notebook(chapter: str, old: str, new: str):
    """The chapter's setup and import cells and its exercise cells, with ``old`` replaced by ``new``."""
    nb = _read(ROOT / "book" / f"{chapter}.ipynb")
    start = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Exercises")
    )
    head = []
    for c in nb.cells[:start]:  # the first code cells, up to the one importing torch
        if c.cell_type == "code":
            head.append(c)
            if "import torch" in c.source:
                break
    cells = head + nb.cells[start:]
    hits = [c for c in cells if c.cell_type == "code" and old in c.source]
    assert len(hits) == 1, f"{chapter}: the solution line {old.strip()!r} changed; update this test"
    hits[0].source = hits[0].source.replace(old, new)
    nb.cells = cells
    return nb


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_wrong_implementation_loses_exactly_its_points(name, tmp_path):
    chapter, old, new, label, failing_test = MUTATIONS[name]
    path = tmp_path / f"{chapter}.ipynb"
    nbformat.write(_exercise_notebook(chapter, old, new), path)
    report = grade(path)
    for ex in report["exercises"]:
        if ex["label"] != label:
            assert ex["score"] == ex["max_score"], (name, ex)
            continue
        failed = [t["name"] for t in ex["tests"] if not t["passed"]]
        if failing_test is None:  # every test of the exercise catches it
            assert ex["score"] == 0 and len(failed) == len(ex["tests"]), ex
        else:  # only the tests of the wrong function fail
            assert failed == [failing_test], ex
            assert ex["score"] == ex["max_score"] - next(
                t["points"] for t in ex["tests"] if t["name"] == failing_test
            )
    assert report["score"] < report["max_score"]


class TestForbiddenUses:
    """Re-using the package function an exercise asks to write scores 0 (checked on the source, in the grader).

    The grader also asks the worker what the function is at run time; tests/test_sandbox.py
    grades the dynamic tricks (globals(), exec) that only that check can see.
    """

    CELLS = [
        Cell(0, "from regcourse.dropout import apply_dropout_mask\n%matplotlib inline"),
        Cell(1, "def ex_inverted_dropout(h, mask, p):\n    return apply_dropout_mask(h, mask, p)"),
        Cell(2, "import torch.nn.functional as F\ndef ex_other(h, p):\n    return F.dropout(h, p)"),
    ]

    def test_a_call_by_name_or_attribute_is_found(self):
        found = _forbidden_uses(
            self.CELLS, ["ex_inverted_dropout", "ex_other"], ["apply_dropout_mask", "dropout"]
        )
        assert found == {
            "ex_inverted_dropout": ["`ex_inverted_dropout` uses `apply_dropout_mask`"],
            "ex_other": ["`ex_other` uses `dropout`"],
        }

    def test_every_binding_counts_not_only_the_last_def(self):
        """A later clean def does not wash out an earlier one: it may never run (an error before it, `if 0:`)."""
        cells = self.CELLS + [
            Cell(
                3,
                "if 0:\n    def ex_inverted_dropout(h, mask, p):\n        return h * mask / (1 - p)",
            )
        ]
        found = _forbidden_uses(cells, ["ex_inverted_dropout"], ["apply_dropout_mask"])
        assert list(found) == ["ex_inverted_dropout"]

    def test_a_clean_definition_passes(self):
        cells = [
            self.CELLS[0],
            Cell(
                1,
                "def ex_inverted_dropout(h, mask, p):\n    dropout = mask / (1 - p)\n"
                "    return h * dropout",
            ),
        ]
        assert _forbidden_uses(cells, ["ex_inverted_dropout"], ["apply_dropout_mask"]) == {}

    @pytest.mark.parametrize(
        "code",
        [
            "from regcourse.dropout import apply_dropout_mask as ex_inverted_dropout",
            "import regcourse.dropout\nex_inverted_dropout = regcourse.dropout.apply_dropout_mask",
            "from regcourse.dropout import apply_dropout_mask\nex_inverted_dropout = apply_dropout_mask",
            "f = apply_dropout_mask\ng = f\ndef ex_inverted_dropout(h, mask, p):\n    return g(h, mask, p)",
            "ex_inverted_dropout = lambda h, mask, p: apply_dropout_mask(h, mask, p)",
            "exec('ex_inverted_dropout = apply_dropout_mask')",
            "globals()['ex_inverted_dropout'] = globals()['apply_dropout_mask']",
            "%time ex_inverted_dropout = apply_dropout_mask",
            "def ex_inverted_dropout(h, mask, p):\n    from regcourse.dropout import apply_dropout_mask as a\n"
            "    return a(h, mask, p)",
        ],
    )
    def test_every_way_of_binding_the_name_is_found(self, code):
        found = _forbidden_uses([Cell(0, code)], ["ex_inverted_dropout"], ["apply_dropout_mask"])
        assert list(found) == ["ex_inverted_dropout"], code


# --- failure cases on a synthetic chapter ---------------------------------------------------------

SECRET = "HIDDEN-TEST-MARKER-5b1e"

TOY_TESTS = f'''
from coursework.spec import Chapter

CHAPTER = Chapter("toy", "Toy")
# {SECRET}
ok = CHAPTER.exercise("toy-ok", "A correct function")
loop = CHAPTER.exercise("toy-loop", "A function that never returns", timeout=2)
exits = CHAPTER.exercise("toy-exit", "Functions that exit")
late = CHAPTER.exercise("toy-late", "A value set after the bad cells")
snoop = CHAPTER.exercise("toy-snoop", "Nothing hidden reaches the student")


@ok.test(points=2)
def adds(student):
    assert student.call("add", 2, 3) == 5


@loop.test(points=1)
def spins(student):
    student.call("spin", 1)


@loop.test(points=1)
def never_reached(student):
    pass


@exits.test(points=1)
def sys_exit(student):
    student.call("leave")


@exits.test(points=1)
def os_exit(student):
    student.call("crash")


@exits.test(points=1)
def still_answers_after_a_crash(student):
    assert student.call("add", 1, 1) == 2


@late.test(points=1)
def answer(student):
    assert student.value("answer") == 42 and student.value("after_exit") is True


@snoop.test(points=1)
def nothing_stolen(student):
    stolen = student.value("stolen")
    leaks = [s for s in stolen if "{SECRET}" in s]
    assert not leaks, "LEAKED: " + " | ".join(s[:200] for s in leaks)
    assert "coursework" not in student.value("modules")
'''


def _snoop_cell(hidden_file: Path) -> str:
    return textwrap.dedent(f"""
        import glob, importlib, os, sys
        stolen, parent = [], os.getppid()

        def attempt(f):
            try:
                stolen.append(str(f())[:4000])
            except BaseException as e:
                stolen.append(type(e).__name__)

        def scan_memory():
            found = []
            with open(f"/proc/{{parent}}/maps") as maps, open(f"/proc/{{parent}}/mem", "rb") as mem:
                for line in maps:
                    start, end = (int(x, 16) for x in line.split()[0].split("-"))
                    if "rw" in line.split()[1] and end - start < 1 << 28:
                        try:
                            mem.seek(start)
                            block = mem.read(end - start)
                        except OSError:
                            continue
                        k = block.find({SECRET.encode()!r})
                        if k >= 0:
                            found.append(block[max(k - 100, 0):k + 100].decode("latin-1"))
            return found

        attempt(lambda: open({str(hidden_file)!r}).read())
        attempt(lambda: open(f"/proc/{{parent}}/environ").read())
        attempt(lambda: os.readlink(f"/proc/{{parent}}/cwd"))
        attempt(scan_memory)
        attempt(lambda: [open(p, errors="replace").read() for p in glob.glob("**", recursive=True) if os.path.isfile(p)])
        attempt(lambda: importlib.import_module("coursework.tests.dropout").__file__)
        attempt(lambda: repr(sorted(sys.modules)) + repr(globals().keys()))
        modules = sorted(sys.modules)
    """)


@pytest.fixture
def toy(tmp_path):
    tests_dir = tmp_path / "hidden"
    tests_dir.mkdir()
    (tests_dir / "toy.py").write_text(TOY_TESTS)
    return tests_dir


def _toy_notebook(path: Path, cells: list[str]) -> Path:
    nb = _nb(*[("code", c) for c in cells])
    nb.metadata["coursework"] = {"chapter": "toy"}
    nbformat.write(nb, path)
    return path


def test_loops_exits_and_crashes_cost_only_their_own_points(toy, tmp_path):
    path = _toy_notebook(
        tmp_path / "sub.ipynb",
        [
            "import os, sys, time\ndef add(a, b):\n    return a + b",
            "def spin(n):\n    while True:\n        n += 1",
            "def leave():\n    sys.exit(0)\n\ndef crash():\n    os._exit(1)",
            "while True:\n    pass",  # an endless cell: stopped at the cell time limit
            "os._exit(3)",  # a cell that kills the worker
            "answer = 42",
            "sys.exit(1)",  # SystemExit at top level is an ordinary error
            "after_exit = True",
            _snoop_cell(toy / "toy.py"),
        ],
    )
    report = grade(path, tests_dir=toy, timeout=10, cell_timeout=4)
    ex = {e["label"]: e for e in report["exercises"]}
    assert ex["toy-ok"]["score"] == 2
    assert ex["toy-loop"]["score"] == 0 and ex["toy-loop"]["status"] == "timeout"
    assert "time limit of 2 s" in ex["toy-loop"]["tests"][0]["message"]
    assert "not run" in ex["toy-loop"]["tests"][1]["message"]
    exits = {t["name"]: t for t in ex["toy-exit"]["tests"]}
    assert "SystemExit" in exits["sys exit"]["message"] and not exits["sys exit"]["passed"]
    assert "ended the process" in exits["os exit"]["message"]
    assert exits["still answers after a crash"]["passed"]
    assert ex["toy-late"]["score"] == 1
    cells = [c["status"] for c in report["cells"]]
    assert cells == ["ok", "ok", "ok", "timeout", "crashed", "ok", "error", "ok", "ok"]
    assert report["sandbox"].startswith("bubblewrap")
    assert ("landlock" in report["sandbox"]) == (_worker.landlock_abi() > 0)
    assert ex["toy-snoop"]["score"] == 1, ex["toy-snoop"]["tests"][0]["message"]


def test_the_snooping_cell_does_find_the_tests_without_the_sandbox(toy, tmp_path):
    """The control for the test above: the same snooping, unsandboxed, reaches the hidden file.

    Run through the command line, which also writes the JSON report.
    """
    path = _toy_notebook(
        tmp_path / "sub.ipynb", ["answer, after_exit = 42, True", _snoop_cell(toy / "toy.py")]
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "coursework",
            "grade",
            str(path),
            "--no-sandbox",
            "--tests-dir",
            str(toy),
            "--json",
            str(tmp_path / "report.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) >= {
        "submission",
        "chapter",
        "score",
        "max_score",
        "sandbox",
        "limits",
        "exercises",
        "manual",
        "cells",
        "workers_started",
    }
    ex = {e["label"]: e for e in report["exercises"]}
    assert report["chapter"] == "toy" and report["sandbox"] == "none (--no-sandbox)"
    assert ex["toy-late"]["score"] == 1 and ex["toy-snoop"]["score"] == 0
    assert "LEAKED" in ex["toy-snoop"]["tests"][0]["message"]
    assert "total" in proc.stdout and "toy-snoop" in proc.stdout


def test_hidden_tests_are_not_importable_by_the_worker_python():
    """Even without the sandbox, the worker (`python -s -P`, from a scratch folder) cannot import the tests."""
    proc = subprocess.run(
        [sys.executable, "-s", "-P", "-c", "import coursework"],
        cwd="/",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_command_line_rejects_a_missing_file(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "coursework", "grade", str(tmp_path / "nope.ipynb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no such notebook" in missing.stderr
