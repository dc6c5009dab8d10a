"""Tests of the benchmark harness `bench/run.py` (not of any speed: nothing here is timed).

The statistics helpers, the interleaved timer's bookkeeping, the argument parser, and a
tiny `--quick` run of a few operations that must write well-formed JSON and markdown.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_run", None)


class TestMedian:
    @pytest.mark.parametrize(
        "values, expected",
        [([3.0], 3.0), ([5.0, 1.0, 3.0], 3.0), ([4.0, 1.0, 2.0, 3.0], 2.5), ([2, 2, 9], 2.0)],
    )
    def test_values(self, bench, values, expected):
        assert bench.median(values) == expected

    def test_empty_raises(self, bench):
        with pytest.raises(ValueError, match="empty"):
            bench.median([])


class TestRatio:
    def test_slower_is_above_one(self, bench):
        assert bench.ratio(3.0, 2.0) == pytest.approx(1.5)
        assert bench.ratio(1.0, 4.0) == pytest.approx(0.25)

    @pytest.mark.parametrize("reference", [0.0, -1.0])
    def test_nonpositive_reference_raises(self, bench, reference):
        with pytest.raises(ValueError, match="reference"):
            bench.ratio(1.0, reference)


class TestQuartiles:
    def test_few_values_give_extremes(self, bench):
        assert bench.quartiles([2.0, 1.0, 3.0]) == (1.0, 3.0)

    def test_ordered(self, bench):
        lo, hi = bench.quartiles([5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0])
        assert 1.0 < lo < 4.0 < hi < 7.0


class TestTimePair:
    def test_counts_calls_and_interleaves(self, bench):
        calls = []
        t = bench.time_pair(
            lambda: calls.append("a"),
            lambda: calls.append("b"),
            repeats=3,
            warmup=1,
            min_time=0.0,
            collect=False,
        )
        n = t["number"]
        assert len(t["ours"]) == len(t["torch"]) == len(t["ours_cpu"]) == len(t["torch_cpu"]) == 3
        assert all(v >= 0 for key in ("ours", "torch", "ours_cpu", "torch_cpu") for v in t[key])
        timed = calls[2:]  # after one warm-up call of each side
        # repeats alternate which side starts: a-block, b-block, b-block, a-block, a-block, b-block
        blocks = [timed[i * n] for i in range(6)]
        assert blocks == ["a", "b", "b", "a", "a", "b"]
        assert len(timed) == 6 * n

    def test_bad_repeats(self, bench):
        with pytest.raises(ValueError, match="repeats"):
            bench.time_pair(lambda: None, lambda: None, repeats=0)


class TestArgs:
    def test_parts_and_threads(self, bench):
        args = bench.parse_args(["--only", "ops", "--threads", "1,2", "--repeats", "3"])
        assert args.parts == ["ops"] and args.thread_list == [1, 2] and args.repeats == 3

    @pytest.mark.parametrize(
        "argv", [["--only", "nope"], ["--threads", "0"], ["--threads", "a"], ["--repeats", "0"]]
    )
    def test_bad_arguments_exit(self, bench, argv):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)


class TestMachineInfo:
    def test_fields(self, bench):
        info = bench.machine_info()
        for key in ("cpu", "cores", "torch", "torch_build", "date"):
            assert info[key], key
        assert info["torch"].startswith("2.")


class TestQuickRun:
    """A tiny run (`--quick`: toy sizes, 1 repeat) writes well-formed results."""

    def test_writes_json_and_markdown(self, bench, tmp_path, monkeypatch):
        keep = {
            "dropout fwd+bwd (p=0.5)",
            "label-smoothed cross-entropy fwd+bwd (eps=0.1), value scans on (default)",
            "label-smoothed cross-entropy fwd+bwd (eps=0.1), value scans off",
        }
        full = bench.all_cases

        def some_cases(quick=False):
            cases = [c for c in full(quick) if c.name in keep]
            missing = bench.Case(
                "missing op", "1", "none", lambda: None, "regcourse.no_such_module"
            )
            return cases + [missing]

        monkeypatch.setattr(bench, "all_cases", some_cases)
        rows = bench.run_ops([1], repeats=1, quick=True, log=lambda *_: None)
        jpath, mpath = bench.write_results(rows, bench.machine_info(), tmp_path, {"quick": True})

        data = json.loads(jpath.read_text())
        assert set(data) >= {"machine", "settings", "rows", "note"}
        by_name = {r["name"]: r for r in data["rows"]}
        assert set(by_name) == keep | {"missing op"}
        assert by_name["missing op"]["status"] == "not available"
        assert "regcourse.no_such_module" in by_name["missing op"]["note"]
        for name in keep:
            row = by_name[name]
            assert row["status"] == "ok" and row["threads"] == 1
            assert row["ours_ms"] > 0 and row["torch_ms"] > 0
            assert row["ratio"] == pytest.approx(row["ours_ms"] / row["torch_ms"])
            assert len(row["detail"]["ours_ms_each"]) == 1

        md = mpath.read_text().splitlines()
        header = next(i for i, line in enumerate(md) if line.startswith("| operation"))
        table = [line for line in md[header:] if line.startswith("|")]
        assert (
            len(table) == 2 + len(keep) + 1
        )  # header, rule, one line per row (and the missing op)
        assert all(line.count("|") == table[0].count("|") for line in table)
        assert any("not available" in line for line in table)
        assert any(line.startswith("- CPU:") for line in md)


class TestSlowNotes:
    def test_every_case_can_explain_itself(self, bench):
        cases = bench.all_cases(quick=True)
        assert len(cases) >= 11
        assert all(c.why_slow for c in cases), [c.name for c in cases if not c.why_slow]

    def test_notes_name_code_that_exists(self, bench):
        """Every ``regcourse.module.name`` a note blames must still exist (no stale causes)."""
        import importlib
        import re

        named = set()
        for text in bench.WHY_SLOW.values():
            named.update(re.findall(r"regcourse(?:\.\w+)+", text))
        assert {"regcourse._checks.check_tensor", "regcourse.penalties.sgd_step"} <= named
        for dotted in sorted(named):
            module, attr = dotted.rsplit(".", 1)
            assert hasattr(importlib.import_module(module), attr), dotted

    def test_note_only_above_threshold(self, bench, monkeypatch):
        import time

        def fake(quick=False):
            def slow_setup():
                return (lambda: time.sleep(0.002)), (lambda: None)

            def fast_setup():
                return (lambda: None), (lambda: time.sleep(0.002))

            return [
                bench.Case("slow", "1", "ref", slow_setup, "json", why_slow="because"),
                bench.Case("fast", "1", "ref", fast_setup, "json", why_slow="because"),
            ]

        monkeypatch.setattr(bench, "all_cases", fake)
        rows = {r.name: r for r in bench.run_ops([1], repeats=1, quick=True, log=lambda *_: None)}
        assert rows["slow"].ratio > bench.SLOW_RATIO and rows["slow"].note == "because"
        assert rows["fast"].ratio < 1 and rows["fast"].note == ""


class TestRenderOnly:
    def test_markdown_rebuilt_from_json(self, bench, tmp_path):
        info = dict(bench.machine_info(), cores=2, load_average_at_start=[9.0, 8.0, 7.0])
        row = bench.Row(
            "ops",
            "op",
            "4x4",
            "ref",
            threads=1,
            ours_ms=3.0,
            torch_ms=2.0,
            ratio=1.5,
            cpu_ratio=1.4,
            note="why",
        )
        _, mpath = bench.write_results([row], info, tmp_path, {"repeats": 1})
        first = mpath.read_text()
        mpath.unlink()
        assert bench.render_only(tmp_path) == mpath
        assert mpath.read_text() == first
        line = "| op | 4x4 | 1 | 3.000 ms | 2.000 ms | 1.50 | 1.40 | ref; slower: see (1) |"
        assert line in first
        assert "1. why" in first and "load average reached 9.0 on 2 cores" in first


class TestThreadsNote:
    def rows(self, bench, t2):
        return [
            bench.Row("ops", "op", "1", "ref", threads=1, torch_ms=1.0),
            bench.Row("ops", "op", "1", "ref", threads=2, torch_ms=t2),
        ]

    def test_warns_when_more_threads_are_slower(self, bench):
        assert "3.0x *slower*" in bench._threads_note(self.rows(bench, 3.0))

    def test_silent_when_more_threads_help(self, bench):
        assert bench._threads_note(self.rows(bench, 0.6)) == ""


class TestReadmePerformance:
    """README's `## Performance` quotes the committed bench/results.json exactly: after a new
    `make bench`, copy its figures into the README (this test names any that differ)."""

    def test_figures_match_results(self, bench):
        readme = (REPO / "README.md").read_text()
        assert "## Performance" in readme
        section = readme[readme.index("## Performance") :]
        assert "make bench" in section
        data = json.loads((REPO / "bench" / "results.json").read_text())
        rows = [bench.Row(**r) for r in data["rows"]]
        assert data["machine"]["date"][:10] in section

        def cells(line):
            return [c.strip() for c in line.strip().strip("|").split("|")]

        table = [
            cells(line)
            for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(("| operation", "| chapter"))
        ]
        ops = [c for c in table if len(c) == 5]
        chapters = [c for c in table if len(c) == 4 and c[0].startswith("book/")]
        one_thread = [r for r in rows if r.part == "ops" and r.threads == 1 and r.status == "ok"]
        assert len(ops) == len(one_thread) > 0
        for name, _size, _against, rat, crat in ops:
            assert any(
                r.name == name and f"{r.ratio:.2f}" == rat and f"{r.cpu_ratio:.2f}" == crat
                for r in one_thread
            ), (name, rat, crat)
        nb = {r.name: r for r in rows if r.part == "notebooks" and r.ratio is not None}
        assert {c[0] for c in chapters} == set(nb)
        for name, time_s, rat, crat in chapters:
            r = nb[name]
            assert (bench._fmt_ms(r.ours_ms), f"{r.ratio:.2f}", f"{r.cpu_ratio:.2f}") == (
                time_s,
                rat,
                crat,
            )
        book = {r.name: r for r in rows if r.part == "book"}
        cold, cached = book["jupyter-book build (cold)"], book["jupyter-book build (cached)"]
        assert f"took {bench._fmt_ms(cold.ours_ms)}" in section
        assert f"took {bench._fmt_ms(cached.ours_ms)} (ratio {cached.ratio:.2f}" in section
