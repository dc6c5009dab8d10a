"""The instructor guide's table of what is graded matches the hidden tests exactly."""

from __future__ import annotations

from pathlib import Path

from coursework.grader import load_chapters

GUIDE = Path(__file__).resolve().parents[1] / "book" / "instructor_guide.md"
HEADER = "| chapter | exercise | automatic: the hidden tests | by hand |"


def _table() -> list[tuple[str, str, str, str]]:
    text = GUIDE.read_text()
    assert HEADER in text, "the guide's table of what is graded is gone"
    rows, chapter = [], ""
    for line in text[text.index(HEADER) :].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, line
        chapter = cells[0] or chapter
        rows.append((chapter, *cells[1:]))
    return rows


def test_the_table_lists_every_exercise_and_test_of_the_hidden_tests():
    expected = [
        (
            chapter,
            f"{label} {ex.title}",
            "; ".join(t.name for t in ex.tests),
            ex.manual or "",
        )
        for chapter, spec in load_chapters().items()
        for label, ex in spec.exercises.items()
    ]
    assert sorted(_table()) == sorted(expected)
