"""The chapters' prose reads as finished text outside the site, and its numbers are true.

Every chapter is a notebook whose markdown must render in any notebook client, so
it holds no MyST roles or directives (CONTRIBUTING.md item 7). Its numbers sit
between hidden markers naming a value that a code cell recorded with
``regcourse.notebook.glue``; nbval proves the recorded values reproduce, and these
tests prove the prose says what was recorded. Citations, equation tags and
exercise numbers are checked against the bibliography, the chapter order and each
other.
"""

from __future__ import annotations

import ast
import codecs
import copy
import re
import sys
from pathlib import Path

import latexcodec  # noqa: F401  (registers the 'ulatex' codec)
import nbformat
import pytest
import yaml
from pybtex.database import parse_file

from regcourse import notebook as prose

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import portable  # noqa: E402  (the site extension, importable without Sphinx running)

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
ORDER = [c["file"].split("/")[-1] for c in TOC["parts"][0]["chapters"]]
CHAPTERS = [ROOT / "book" / f"{name}.ipynb" for name in ORDER]
NUMBER = {path.stem: k for k, path in enumerate(CHAPTERS, start=1)}
BIB = parse_file(str(ROOT / "references.bib"))

#: Chapters that still glue values (in loops) that their prose does not show; they are
#: being rewritten. Strict: a chapter that is cleaned up must leave this list.
UNUSED_GLUE_TO_CLEAN: set[str] = set()

#: Chapters not yet rewritten for the learner who executes them (issues 11 and 12): they
#: still type configuration numbers by hand, show bookkeeping cells, or have code lines
#: wider than the site shows. Emptied as the chapters are rewritten.
NOT_YET_REWRITTEN: set[str] = set()

#: Nouns of a training configuration or a data set's size: a number next to one of them
#: ("256 units", "50 epochs", "patience 10") must come from the code.
_CONFIG_NOUN = (
    r"(?:epochs?|steps?|units?|(?:hidden )?layers?|digits|examples|samples|seeds?|batch(?:es)?|"
    r"channels|images|blocks|features|neurons|weights|parameters|runs|trials|masks|bins|"
    r"iterations|updates|signals|sequences|points|classes|labels|repeats|models|networks|"
    r"copies|draws)\b"
)
_NUMBER_THEN_NOUN = re.compile(
    r"(?<![\w.$\\])(\d[\d,]*(?:\.\d+)?)(?:\s*[-–]\s*|\s+)(?:[A-Za-z-]+\s+){0,2}?" + _CONFIG_NOUN,
    re.I,
)
_NOUN_THEN_NUMBER = re.compile(
    r"\b(?:patience|batch size|batches of|seed|width|widths|depth|learning rate|momentum|"
    r"epochs?)\s+(?:of\s+)?(\d[\d,]*(?:\.\d+)?)\b",
    re.I,
)


def _plain_prose(src: str) -> str:
    """The running text of a markdown cell: no code, formulas, marked numbers or link targets."""
    src = re.sub(r"^(`{3,}|~{3,}).*?^\1\s*$", " ", src, flags=re.M | re.S)
    src = re.sub(r"\$\$.*?\$\$", " ", src, flags=re.S)
    src = re.sub(r"\$[^$\n]+\$", " ", src)
    src = re.sub(r"`[^`\n]*`", " ", src)
    src = prose.MARKER.sub(" ", src)
    src = re.sub(r"\]\([^)]*\)", "]", src)
    src = re.sub(r"\b[Ss]tep \d\b|Exercises? \d+\.\d+", " ", src)  # steps of an algorithm
    return src


def _not_yet(request, path):
    if path.stem in NOT_YET_REWRITTEN:
        request.applymarker(pytest.mark.xfail(strict=False, reason="chapter not yet rewritten"))


#: What must never be visible in a notebook's markdown: MyST roles, directives, targets,
#: substitutions and glue references, which only the Sphinx build renders.
RAW_MYST = [
    (re.compile(r"\{[a-z][\w:-]*\}`"), "a MyST role ({name}`...`)"),
    (re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{[\w-]+\}", re.M), "a MyST directive fence"),
    (re.compile(r"^\s*\([\w.-]+\)=\s*$", re.M), "a MyST target line (label)="),
    (re.compile(r"^\s*:(label|class|name|nowrap):", re.M), "a directive option line"),
    (re.compile(r"\$\$\s*\([\w.-]+\)"), "a MyST equation label $$ (label)"),
    (re.compile(r"\{\{\s*\w+\s*\}\}"), "a MyST substitution {{ name }}"),
]


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _markdown(nb) -> list[tuple[int, str]]:
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def _outside_code(src: str) -> str:
    """``src`` without fenced code blocks and inline code (raw syntax may be shown there)."""
    src = re.sub(r"^(`{3,}|~{3,})(?!\s*\{).*?^\1\s*$", "", src, flags=re.M | re.S)
    return re.sub(r"`[^`\n]+`", "", src)


def _authors(key: str) -> tuple[list[str], str]:
    """Last names (LaTeX accents decoded: ``M{\\"u}ller`` is Müller) and the year of an entry."""
    entry = BIB.entries[key]
    names = [
        codecs.decode(p.last_names[-1], "ulatex").replace("{", "").replace("}", "")
        for p in entry.persons["author"]
    ]
    return names, entry.fields["year"]


@pytest.fixture(scope="module", params=CHAPTERS, ids=[p.stem for p in CHAPTERS])
def chapter(request):
    return request.param, _read(request.param)


class TestNumbers:
    def test_every_marked_number_is_the_executed_value(self, chapter):
        path, nb = chapter
        problems = prose.check(nb)
        assert not problems, f"{path.name}: run `make notebooks`:\n  " + "\n  ".join(problems)

    def test_every_glued_value_is_used_in_the_prose(self, chapter, request):
        path, nb = chapter
        if path.stem in UNUSED_GLUE_TO_CLEAN:
            request.applymarker(
                pytest.mark.xfail(strict=True, reason="glues values in loops it never shows")
            )
        used = {m.name for m in prose.markers(nb)}
        unused = sorted(set(prose.glued_values(nb)) - used)
        assert not unused, f"{path.name}: glued but never shown (remove the glue): {unused}"

    def test_the_prose_has_marked_numbers(self, chapter):
        path, nb = chapter
        assert len(list(prose.markers(nb))) >= 5, (
            f"{path.name}: hardly any number comes from the code"
        )

    def test_no_marker_is_left_unclosed_or_misspelt(self, chapter):
        path, nb = chapter
        for i, src in _markdown(nb):
            rest = prose.MARKER.sub("", src)
            assert "<!--{" not in rest and "<!--/-->" not in rest, (
                f"{path.name} cell {i}: a marker that does not parse: "
                f"{rest[rest.find('<!--') : rest.find('<!--') + 60]!r}"
            )


class TestForTheLearner:
    """What a learner who executes the chapter sees (issue 11) and where its numbers come from."""

    def test_configuration_numbers_come_from_the_code(self, chapter, request):
        path, nb = chapter
        _not_yet(request, path)
        found = []
        for i, cell in enumerate(nb.cells):
            meta = cell.metadata.get("regcourse", {})
            if cell.cell_type != "markdown" or "exercise" in meta or "solution" in meta:
                continue  # an exercise states its own inputs
            text = _plain_prose(cell.source)
            for m in [*_NUMBER_THEN_NOUN.finditer(text), *_NOUN_THEN_NUMBER.finditer(text)]:
                found.append(
                    f"cell {i}: {' '.join(text[max(0, m.start() - 25) : m.end()].split())!r}"
                )
        assert not found, f"{path.name}: typed by hand, glue them:\n  " + "\n  ".join(found)

    def test_cells_that_only_glue_are_hidden_in_the_site(self, chapter, request):
        path, nb = chapter
        _not_yet(request, path)
        shown = []
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            try:
                body = ast.parse(cell.source).body
            except SyntaxError:
                continue
            only_glue = all(
                isinstance(n, ast.Expr)
                and isinstance(n.value, ast.Call)
                and getattr(n.value.func, "id", None) == "glue"
                or isinstance(n, (ast.Import, ast.ImportFrom))
                for n in body
            )
            tags = set(cell.metadata.get("tags", []))
            if only_glue and not tags & {"remove-input", "hide-input", "remove-cell"}:
                shown.append(i)
        assert not shown, (
            f"{path.name}: bookkeeping cells shown in the site: {shown} (tag remove-input)"
        )

    def test_code_fits_the_page(self, chapter, request):
        """The site shows 88 characters of a code line; a wider line is cut off."""
        path, nb = chapter
        _not_yet(request, path)
        wide = [
            (i, line)
            for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code"
            for line in cell.source.splitlines()
            if len(line) > 88
        ]
        assert not wide, f"{path.name}: lines over 88 columns (ruff format): {wide[:3]}"


class TestNoRawMarkup:
    def test_no_line_starts_with_a_marker(self, chapter):
        """A line starting with ``<!--`` opens an HTML block in CommonMark: the paragraph breaks."""
        path, nb = chapter
        for i, src in _markdown(nb):
            for line in src.splitlines():
                assert not re.match(r"\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)*<!--", line), (
                    f"{path.name} cell {i}: a line starts with a marker (put a word before it): {line[:60]!r}"
                )

    def test_a_commonmark_renderer_keeps_markers_inline(self, chapter):
        """Parsed as GitHub and VS Code parse Markdown (CommonMark, markdown-it), no marker
        becomes a block of its own: each stays inside its paragraph, list item or cell."""
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": True}).enable("table")
        path, nb = chapter
        for i, src in _markdown(nb):
            blocks = [t for t in md.parse(src) if t.type == "html_block"]
            assert not blocks, (
                f"{path.name} cell {i}: an HTML block breaks the text: {blocks[0].content[:60]!r}"
            )

    def test_display_formulas_are_unnumbered_unless_tagged(self, chapter):
        """``$$`` alone is numbered (1), (2), ... by jupyterlab-myst; ``equation*`` is not."""
        path, nb = chapter
        for i, src in _markdown(nb):
            for block in re.findall(r"\$\$(.*?)\$\$", src, flags=re.S):
                body = block.strip()
                assert body.startswith("\\begin{equation*}") and body.endswith(
                    "\\end{equation*}"
                ), (
                    f"{path.name} cell {i}: a display formula not inside \\begin{{equation*}}: {body[:50]!r}"
                )

    def test_no_myst_syntax_in_markdown(self, chapter):
        path, nb = chapter
        found = []
        for i, src in _markdown(nb):
            text = _outside_code(src)
            for pattern, what in RAW_MYST:
                for m in pattern.finditer(text):
                    found.append(f"cell {i}: {what}: {text[m.start() : m.start() + 50]!r}")
        assert not found, f"{path.name}:\n  " + "\n  ".join(found)

    def test_html_comments_are_only_markers(self, chapter):
        path, nb = chapter
        for i, src in _markdown(nb):
            rest = prose.MARKER.sub("", src)
            assert "<!--" not in rest, f"{path.name} cell {i}: an HTML comment that is not a marker"


class TestCitations:
    LINK = re.compile(r"\[(?P<text>[^\[\]]+)\]\(references\.md#(?P<key>[^)]+)\)")

    def test_citations_name_real_entries_with_their_authors_and_year(self, chapter):
        path, nb = chapter
        bad = []
        for i, src in _markdown(nb):
            for m in self.LINK.finditer(src):
                key, text = m["key"], m["text"]
                if key not in BIB.entries:
                    bad.append(f"cell {i}: no entry {key!r} in references.bib")
                    continue
                names, year = _authors(key)
                want = (
                    names[0]
                    if len(names) == 1
                    else f"{names[0]} and {names[1]}"
                    if len(names) == 2
                    else f"{names[0]} et al."
                )
                if text not in (f"{want} ({year})", f"{want}, {year}"):
                    bad.append(
                        f"cell {i}: [{text}] should read '{want} ({year})' or '{want}, {year}'"
                    )
                # the parenthetical form must sit inside parentheses, the textual one must not
                if text.endswith(f", {year}") and not re.search(
                    r"\(\s*(\[[^\]]+\]\([^)]+\);\s*)*$", src[: m.start()]
                ):
                    bad.append(f"cell {i}: [{text}] is the parenthetical form outside parentheses")
        assert not bad, f"{path.name}:\n  " + "\n  ".join(bad)

    def test_the_site_turns_every_citation_link_into_a_citation(self, chapter):
        path, nb = chapter
        nb = copy.deepcopy(nb)
        portable.transform(nb)
        for i, src in _markdown(nb):
            assert "references.md#" not in src, (
                f"{path.name} cell {i}: a citation link the site leaves as a link"
            )


class TestEquationsAndExercises:
    TAG = re.compile(r"\\tag\{(\d+)\.(\d+)\}")
    REF = re.compile(r"(?<![\w$])\(([1-9])\.([1-9]\d*)\)")  # (3.2); a value like (0.079) is not one

    @staticmethod
    def _all_tags() -> set[tuple[int, int]]:
        tags = set()
        for path in CHAPTERS:
            for _, src in _markdown(_read(path)):
                tags |= {(int(a), int(b)) for a, b in TestEquationsAndExercises.TAG.findall(src)}
        return tags

    def test_equation_tags_count_up_in_the_chapter(self, chapter):
        path, nb = chapter
        tags = [(int(a), int(b)) for _, src in _markdown(nb) for a, b in self.TAG.findall(src)]
        n = NUMBER[path.stem]
        assert tags == [(n, k) for k in range(1, len(tags) + 1)], f"{path.name}: tags {tags}"

    def test_every_equation_reference_exists(self, chapter):
        path, nb = chapter
        tags = self._all_tags()
        for i, src in _markdown(nb):
            text = re.sub(r"\$[^$]*\$", "", prose.MARKER.sub("", src))
            for a, b in self.REF.findall(text):
                assert (int(a), int(b)) in tags, (
                    f"{path.name} cell {i}: ({a}.{b}) refers to no equation"
                )

    def test_exercises_are_numbered_in_order_and_solved(self, chapter):
        path, nb = chapter
        n = NUMBER[path.stem]
        heads = []
        for i, cell in enumerate(nb.cells):
            meta = cell.metadata.get("regcourse", {})
            if "exercise" in meta:
                m = re.match(r"### Exercise (\d+)\.(\d+): \S", cell.source)
                assert m, (
                    f"{path.name} cell {i}: exercise heading must be '### Exercise N.M: Title'"
                )
                heads.append((int(m[1]), int(m[2])))
        assert heads == [(n, k) for k in range(1, len(heads) + 1)], (
            f"{path.name}: exercises {heads}"
        )
        from coursework.notebook import parse_exercises

        blocks = parse_exercises(nb)
        assert [b.solution is not None for b in blocks] == [True] * len(blocks)

    def test_exercise_references_exist(self, chapter):
        path, nb = chapter
        existing = set()
        for p in CHAPTERS:
            for _, src in _markdown(_read(p)):
                existing |= set(re.findall(r"^### Exercise (\d+\.\d+):", src, flags=re.M))
        for i, src in _markdown(nb):
            for ref in re.findall(r"Exercises? (\d+\.\d+)", src):
                assert ref in existing, f"{path.name} cell {i}: Exercise {ref} does not exist"


class TestTheChecksCanFail:
    """A stale number must be caught in the notebook and in the site."""

    @pytest.fixture
    def stale(self):
        nb = _read(ROOT / "book" / "dropout.ipynb")
        first = next(prose.markers(nb))
        cell = nb.cells[first.cell]
        cell.source = (
            cell.source[: first.start]
            + cell.source[first.start : first.end].replace(
                f"-->{first.text}<!--", f"-->{first.text}9<!--", 1
            )
            + cell.source[first.end :]
        )
        return nb, first

    def test_check_reports_a_stale_number(self, stale):
        nb, first = stale
        problems = prose.check(nb)
        assert len(problems) == 1 and first.name in problems[0] and f"{first.text}9" in problems[0]

    def test_the_site_extension_reports_it_too(self, stale):
        nb, first = stale
        problems = portable.transform(nb)
        assert any(first.name in p for p in problems)

    def test_fill_repairs_it(self, stale):
        nb, first = stale
        assert prose.fill(nb) == 1
        assert prose.check(nb) == []

    def test_an_unknown_name_is_reported(self):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("x = <!--{nope:.2f}-->1.00<!--/-->")]
        assert prose.check(nb) == ["cell 0: nope is not glued by any code cell"]
