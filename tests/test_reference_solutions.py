"""Every chapter's own solutions score full marks with its hidden tests.

The chapters are the reference solutions of their exercises: graded as published (in the
bubblewrap sandbox, as a class of nine submissions, two at a time, the way an instructor
grades), each must earn every automatic point, every test of every exercise must pass and
every cell must run. A chapter edit that breaks an exercise's hidden tests fails here, not
in an instructor's gradebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from coursework import classroom, sandbox
from coursework.notebook import parse_exercises

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [
    p.stem
    for p in sorted((ROOT / "book").glob("*.ipynb"))
    if parse_exercises(nbformat.read(p, as_version=4))
]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    try:
        sandbox.check()
    except sandbox.SandboxUnavailable as exc:
        pytest.skip(f"no bubblewrap sandbox here: {exc}")
    out = tmp_path_factory.mktemp("references")
    result = classroom.grade_class(
        [ROOT / "book" / f"{c}.ipynb" for c in CHAPTERS],
        gradebook=out / "grades.csv",
        jobs=2,
        reference=None,
        timeout=60.0,
    )
    return {row["student"]: row for row in result.rows}


def test_every_chapter_with_exercises_is_graded():
    assert len(CHAPTERS) >= 9, CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_scores_full_marks(graded, chapter):
    row = graded[chapter]
    report = row["report"]
    assert row["status"] == "graded", (row["status"], row["message"])
    assert report["chapter"] == chapter and report["max_score"] > 0
    failed = [
        (e["label"], t["name"], t["message"][:300])
        for e in report["exercises"]
        for t in e["tests"]
        if not t["passed"]
    ]
    assert not failed, json.dumps(failed, indent=1)
    assert report["score"] == report["max_score"]
    assert all(c["status"] == "ok" for c in report["cells"]), [
        c for c in report["cells"] if c["status"] != "ok"
    ]
