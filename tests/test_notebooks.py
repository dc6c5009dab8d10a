"""Guards on the committed chapter notebooks, so nbval has something real to check.

nbval passes a notebook with no stored outputs, so these tests make sure every
chapter is committed executed, follows the first-cell convention, does not
blanket-ignore its outputs, and that a changed printed number really fails nbval.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import regcourse

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def _toc_files() -> list[str]:
    text = (ROOT / "_toc.yml").read_text()
    return re.findall(r"file:\s*(\S+)", text)


def test_there_are_chapters():
    assert len(CHAPTERS) >= 3


def test_every_chapter_is_in_the_toc():
    listed = set(_toc_files())
    missing = [p.stem for p in CHAPTERS if f"book/{p.stem}" not in listed]
    assert not missing, f"chapters not in _toc.yml: {missing}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
class TestCommittedChapter:
    def test_every_code_cell_was_executed_in_order(self, path):
        counts = [c["execution_count"] for c in _code_cells(_load(path))]
        assert None not in counts, f"{path.name}: unexecuted cells; run `make notebooks`"
        assert counts == list(range(1, len(counts) + 1)), (
            f"{path.name}: cells executed out of order"
        )

    def test_first_code_cell_pins_the_package_version(self, path):
        first = _code_cells(_load(path))[0]
        source = "".join(first["source"])
        assert f'REGCOURSE = "{regcourse.__version__}"' in source, (
            f'{path.name}: the first code cell must set REGCOURSE = "{regcourse.__version__}"'
        )
        assert "regcourse.setup(REGCOURSE)" in source
        assert source.strip() == _setup_cell(), (
            f"{path.name}: the first code cell differs from the others"
        )
        assert "hide-input" in first.get("metadata", {}).get("tags", []), (
            "bookkeeping: hidden in the site"
        )

    def test_no_errors_or_stderr_in_outputs(self, path):
        for cell in _code_cells(_load(path)):
            for out in cell.get("outputs", []):
                assert out["output_type"] != "error", f"{path.name}: an error output is committed"
                assert out.get("name") != "stderr", (
                    f"{path.name}: stderr output committed: {out.get('text')}"
                )

    def test_at_most_a_third_of_cells_ignore_their_output(self, path):
        cells = _code_cells(_load(path))
        ignored = [c for c in cells if "NBVAL_IGNORE_OUTPUT" in "".join(c["source"])]
        assert len(ignored) <= len(cells) / 3

    def test_an_ignored_cell_is_followed_by_a_checked_cell(self, path):
        cells = _code_cells(_load(path))
        for i, cell in enumerate(cells):
            if "NBVAL_IGNORE_OUTPUT" in "".join(cell["source"]):
                later = cells[i + 1 :]
                assert any(
                    "NBVAL_IGNORE_OUTPUT" not in "".join(c["source"]) and c.get("outputs")
                    for c in later
                ), f"{path.name}: ignored cell {i} has no checked cell after it"

    def test_has_exercises_with_solutions(self, path):
        cells = _load(path)["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert "## Exercises" in text
        meta = [c.get("metadata", {}).get("regcourse", {}) for c in cells]
        exercises = [m["exercise"] for m in meta if "exercise" in m]
        solved = {m["solution"] for m in meta if "solution" in m}
        assert len(exercises) >= 3, f"{path.name}: fewer than three exercises"
        assert set(exercises) <= solved, (
            f"{path.name}: exercises without a solution: {set(exercises) - solved}"
        )


def _setup_cell() -> str:
    """The first code cell every chapter shares (the version, then the one-line errors)."""
    return "".join(_code_cells(_load(CHAPTERS[0]))[0]["source"]).strip()


def _run_in_ipython(code: str, *, block_regcourse: bool) -> str:
    """Run ``code`` as one IPython cell in a fresh interpreter; what the cell prints."""
    driver = textwrap.dedent(
        f"""
        import sys
        if {block_regcourse!r}:
            class _NoRegcourse:  # as in a kernel where the package is not installed
                def find_spec(self, name, path=None, target=None):
                    if name == "regcourse" or name.startswith("regcourse."):
                        raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            sys.meta_path.insert(0, _NoRegcourse())
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance(colors="nocolor")
        shell.run_cell(sys.stdin.read())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], input=code, capture_output=True, text=True, timeout=120
    )
    return proc.stdout + proc.stderr


class TestFirstCellFailsInOneLine:
    """A chapter opened without regcourse, or with another version, says what to install."""

    def test_without_regcourse(self):
        out = _run_in_ipython(_setup_cell(), block_regcourse=True).strip().splitlines()
        assert out == [
            f"regcourse is not installed: pip install regcourse-{regcourse.__version__}-py3-none-any.whl"
            " (the wheel offered beside each chapter of the course site)"
        ]

    def test_with_another_version(self):
        cell = _setup_cell().replace(f'"{regcourse.__version__}"', '"0.0.9"')
        out = _run_in_ipython(cell, block_regcourse=False).strip().splitlines()
        assert len(out) == 1 and out[0].startswith("VersionMismatchError: "), out
        assert "pip install regcourse-0.0.9-py3-none-any.whl" in out[0]

    def test_with_the_right_version(self):
        out = _run_in_ipython(_setup_cell(), block_regcourse=False).strip().splitlines()
        assert out == [f"regcourse {regcourse.__version__} ready: torch 2.13.0, seed 0"]


def test_changing_a_printed_number_fails_nbval(tmp_path):
    """Mutate one printed number of a committed chapter: nbval must fail on it.

    The chapter is cut after the mutated cell (the cells after it cannot change the
    verdict, and the training below it would only cost time)."""
    src = ROOT / "book" / "weight_decay.ipynb"
    nb = _load(src)
    found = next(
        (
            (index, out)
            for index, cell in enumerate(nb["cells"])
            if cell["cell_type"] == "code"
            for out in cell.get("outputs", [])
            if out["output_type"] == "stream" and "0.4795" in "".join(out["text"])
        ),
        None,
    )
    if found is None:
        pytest.fail("the worked value 0.4795 is not printed in weight_decay.ipynb")
    index, out = found
    out["text"] = "".join(out["text"]).replace("0.4795", "0.4796", 1)
    nb["cells"] = nb["cells"][: index + 1]
    bad = tmp_path / "weight_decay.ipynb"
    bad.write_text(json.dumps(nb))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "0.4796" in proc.stdout and "1 failed" in proc.stdout
