"""Tests of the command line (regcourse/__main__.py) and the experiment registry
(regcourse/experiments/__init__.py): listing, help, usage errors (one line on stderr,
exit status 2, no traceback), written results, atomic writes, option checking.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from regcourse import __version__, experiments
from regcourse.__main__ import main
from regcourse.experiments import Result

ROOT = Path(__file__).resolve().parents[1]

# core_problem at the smallest settings: one seed, one epoch, a tiny network (well under a second)
TINY = ["--seeds", "1", "--epochs", "1", "--n-train", "20", "--hidden", "8", "--no-progress"]


@pytest.fixture
def toy_experiment():
    """Register a throw-away experiment with every option type; unregister it afterwards."""
    name = "zz_toy"

    @experiments.experiment(
        name, "a toy experiment for the tests", n="an int", x="a float", word="a str", flag="a bool"
    )
    def toy(
        n: int = 2, x: float = 0.5, word: str = "hi", flag: bool = False, progress: bool = False
    ):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        rows = [{"i": i, "x": x * i, "word": word, "flag": flag} for i in range(n)]
        return Result(
            name, {"n": n, "x": x, "word": word, "flag": flag}, rows, {"n is even": n % 2 == 0}
        )

    yield name
    experiments._REGISTRY.pop(name, None)


def _run_module(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "REGCOURSE_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "regcourse", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def _assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip("\n").splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------- list, help


class TestList:
    def test_lists_every_registered_experiment(self, capsys):
        assert main(["list"]) == 0
        out = capsys.readouterr().out
        names = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
        assert names == sorted(experiments.registry())
        assert "core_problem" in names

    def test_shows_help_and_options(self, capsys, toy_experiment):
        main(["list"])
        out = capsys.readouterr().out
        assert "a toy experiment for the tests" in out
        assert "options: --n=2, --x=0.5, --word=hi, --flag=False" in out

    def test_version(self, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["--version"])
        assert exc.value.code == 0
        assert capsys.readouterr().out.strip() == f"regcourse {__version__}"


class TestHelp:
    @pytest.mark.parametrize("name", sorted(experiments.registry()))
    def test_run_name_help_exits_0(self, name, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["run", name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "--out" in out and "--format" in out
        for option in experiments.get(name).options:
            assert "--" + option.replace("_", "-") in out

    def test_help_shows_defaults_and_option_help(self, capsys):
        with pytest.raises(SystemExit):
            main(["run", "core_problem", "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "number of seeds" in out and "(default: 5)" in out


# ---------------------------------------------------------------------------- usage errors


class TestUsageErrors:
    def test_unknown_experiment_subprocess(self):
        proc = _run_module("run", "no_such_experiment")
        assert proc.returncode == 2
        assert proc.stdout == ""
        _assert_one_line_error(proc.stderr, "no_such_experiment", "invalid choice")

    def test_bad_option_type(self, tmp_path, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["run", "core_problem", "--seeds", "many", "--out", str(tmp_path)])
        assert exc.value.code == 2
        _assert_one_line_error(capsys.readouterr().err, "--seeds", "invalid int value: 'many'")
        assert list(tmp_path.iterdir()) == []

    def test_bad_option_value_is_one_line(self, tmp_path, capsys):
        code = main(["run", "core_problem", *TINY, "--label-noise", "1.5", "--out", str(tmp_path)])
        assert code == 2
        err = capsys.readouterr().err
        _assert_one_line_error(err, "core_problem", "label_noise must be in [0, 1), got 1.5")
        assert list(tmp_path.iterdir()) == []

    def test_bad_bool_value(self, toy_experiment, tmp_path, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["run", toy_experiment, "--flag", "maybe", "--out", str(tmp_path)])
        assert exc.value.code == 2
        _assert_one_line_error(
            capsys.readouterr().err, "--flag", "expected true or false, got 'maybe'"
        )

    def test_unknown_flag(self, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["run", "core_problem", "--sedes", "3"])
        assert exc.value.code == 2
        _assert_one_line_error(capsys.readouterr().err, "unrecognized arguments: --sedes 3")

    def test_no_command(self, capsys):
        with pytest.raises(SystemExit) as exc:
            main([])
        assert exc.value.code == 2
        _assert_one_line_error(capsys.readouterr().err, "error")

    def test_bad_format(self, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["run", "core_problem", "--format", "xml"])
        assert exc.value.code == 2
        _assert_one_line_error(capsys.readouterr().err, "--format", "'xml'")


# ---------------------------------------------------------------------------- results


class TestRunWritesResults:
    def test_json_and_png(self, tmp_path, capsys):
        assert main(["run", "core_problem", *TINY, "--out", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "core_problem.json",
            "core_problem.png",
        ]
        payload = json.loads((tmp_path / "core_problem.json").read_text())
        assert payload["experiment"] == "core_problem"
        assert payload["options"]["seeds"] == 1 and payload["options"]["n_train"] == 20
        assert [row["level"] for row in payload["rows"]] == ["none", "light", "heavy"]
        assert payload["claims"] and all(isinstance(v, bool) for v in payload["claims"].values())
        assert (tmp_path / "core_problem.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for text, ok in payload["claims"].items():  # every claim is printed with its value
            assert f"{text}: {ok}" in out
        assert f"wrote {tmp_path / 'core_problem.json'}" in out

    def test_csv(self, tmp_path, capsys):
        assert main(["run", "core_problem", *TINY, "--format", "csv", "--out", str(tmp_path)]) == 0
        lines = (tmp_path / "core_problem.csv").read_text().splitlines()
        header = lines[0].split(",")
        assert header[:3] == ["level", "dropout", "weight_decay"]
        assert "diagnosis" in header and "train_acc" in header and "test_acc" in header
        assert [line.split(",")[0] for line in lines[1:]] == ["none", "light", "heavy"]
        assert (tmp_path / "core_problem.png").exists()

    def test_creates_the_output_folder(self, tmp_path, toy_experiment, capsys):
        out = tmp_path / "a" / "b"
        assert main(["run", toy_experiment, "--out", str(out), "--no-progress"]) == 0
        assert (out / f"{toy_experiment}.json").exists()

    def test_options_reach_the_experiment(self, tmp_path, toy_experiment, capsys):
        args = [
            "run",
            toy_experiment,
            "--n",
            "3",
            "--x",
            "1.5",
            "--word",
            "yo",
            "--flag",
            "yes",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
        assert main(args) == 0
        payload = json.loads((tmp_path / f"{toy_experiment}.json").read_text())
        assert payload["options"] == {"n": 3, "x": 1.5, "word": "yo", "flag": True}
        assert payload["rows"][2] == {"i": 2, "x": 3.0, "word": "yo", "flag": True}
        assert payload["claims"] == {"n is even": False}
        assert "n is even: False" in capsys.readouterr().out

    def test_csv_columns_are_the_union_over_rows(self, tmp_path):
        result = Result("zz_rows", {}, [{"a": 1}, {"a": 2, "b": torch.tensor([1.0, 2.0])}])
        experiments.save(result, tmp_path, "csv")
        assert (tmp_path / "zz_rows.csv").read_text() == 'a,b\n1,\n2,"[1.0, 2.0]"\n'

    def test_save_rejects_unknown_format(self, tmp_path):
        with pytest.raises(ValueError, match=r"fmt must be 'json' or 'csv', got 'xml'"):
            experiments.save(Result("zz", {}, []), tmp_path, "xml")

    def test_unwritable_folder_is_one_line(self, tmp_path, toy_experiment, capsys):
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        code = main(["run", toy_experiment, "--out", str(blocker / "sub"), "--no-progress"])
        assert code == 2
        _assert_one_line_error(capsys.readouterr().err, "--out", "cannot be created", "is a file")


class TestOutputFolderCheckedFirst:
    """--out is checked before the experiment runs, so a long run never ends unsaved."""

    @pytest.fixture
    def never_run(self, monkeypatch):
        def fail(*args, **kwargs):
            raise AssertionError("the experiment ran although --out was bad")

        monkeypatch.setattr(experiments, "run", fail)

    @pytest.mark.parametrize("out", ["", "   "])
    def test_empty_out_refused(self, out, toy_experiment, never_run, capsys):
        assert main(["run", toy_experiment, "--out", out, "--no-progress"]) == 2
        _assert_one_line_error(capsys.readouterr().err, f"--out must name a folder, got {out!r}")

    def test_out_is_a_file(self, tmp_path, toy_experiment, never_run, capsys):
        target = tmp_path / "results"
        target.write_text("a file")
        assert main(["run", toy_experiment, "--out", str(target), "--no-progress"]) == 2
        _assert_one_line_error(capsys.readouterr().err, "--out must be a folder", "is a file")
        assert target.read_text() == "a file"

    def test_parent_is_a_file(self, tmp_path, toy_experiment, never_run, capsys):
        (tmp_path / "f").write_text("x")
        assert main(["run", toy_experiment, "--out", str(tmp_path / "f" / "a" / "b")]) == 2
        _assert_one_line_error(capsys.readouterr().err, "cannot be created")

    def test_unwritable_folder(self, tmp_path, toy_experiment, never_run, capsys, monkeypatch):
        # root may write anywhere, so make the probe file fail the way a read-only folder does
        import regcourse.__main__ as cli

        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(cli.tempfile, "mkstemp", denied)
        assert main(["run", toy_experiment, "--out", str(tmp_path / "new")]) == 2
        _assert_one_line_error(capsys.readouterr().err, "is not writable", "Permission denied")
        assert not (tmp_path / "new").exists()  # the folder it made for the check is gone

    def test_failed_run_removes_the_folders_it_made(self, tmp_path, toy_experiment, capsys):
        out = tmp_path / "a" / "b"
        assert main(["run", toy_experiment, "--n", "-1", "--out", str(out), "--no-progress"]) == 2
        assert "n must be >= 0" in capsys.readouterr().err
        assert not (tmp_path / "a").exists()


class TestStrictJson:
    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_values_are_null(self, tmp_path, bad):
        result = Result("zz_nan", {"lr": bad}, [{"acc": bad, "t": torch.tensor([1.0, bad])}])
        (path,) = experiments.save(result, tmp_path, "json")
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text
        payload = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
        assert payload["options"]["lr"] is None
        assert payload["rows"] == [{"acc": None, "t": [1.0, None]}]


class TestAtomicSet:
    """Table and figure are replaced together: a failure between the two renames puts
    the old table back."""

    def test_second_rename_failing_restores_the_first(self, tmp_path, monkeypatch):
        import matplotlib.pyplot as plt

        fig = plt.figure()
        old = Result("zz_set", {}, [{"v": 1}], figure=fig)
        experiments.save(old, tmp_path)
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        real_replace, calls = os.replace, []

        def replace_then_fail(src, dst):
            calls.append(dst)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real_replace(src, dst)

        monkeypatch.setattr(experiments.os, "replace", replace_then_fail)
        with pytest.raises(KeyboardInterrupt):
            experiments.save(Result("zz_set", {}, [{"v": 2}], figure=fig), tmp_path)
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert after == before  # the old pair, no temporary or backup file left


class TestAtomicWrites:
    """An interrupted save never leaves a partial or temporary file, and never touches
    an earlier complete result that it did not get to replace."""

    def _first_run(self, folder: Path) -> dict[str, bytes]:
        assert main(["run", "core_problem", *TINY, "--out", str(folder)]) == 0
        return {p.name: p.read_bytes() for p in folder.iterdir()}

    def _interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    def test_interrupted_rename_keeps_the_earlier_results(self, tmp_path, monkeypatch, capsys):
        before = self._first_run(tmp_path)
        monkeypatch.setattr(experiments.os, "replace", self._interrupt)
        code = main(["run", "core_problem", *TINY, "--lr", "0.01", "--out", str(tmp_path)])
        assert code == 130
        assert "interrupted: no partial result written" in capsys.readouterr().err
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert after == before  # no temporary file left, the old files untouched

    def test_interrupted_figure_leaves_no_partial_png(self, tmp_path, monkeypatch, capsys):
        before = self._first_run(tmp_path)
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", self._interrupt)
        code = main(["run", "core_problem", *TINY, "--lr", "0.01", "--out", str(tmp_path)])
        assert code == 130
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["core_problem.json", "core_problem.png"]  # no temporary file
        assert (tmp_path / "core_problem.png").read_bytes() == before["core_problem.png"]
        json.loads((tmp_path / "core_problem.json").read_text())  # complete, whichever run wrote it

    def test_interrupted_figure_keeps_the_earlier_table(self, tmp_path, monkeypatch, capsys):
        before = self._first_run(tmp_path)
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", self._interrupt)
        main(["run", "core_problem", *TINY, "--lr", "0.01", "--out", str(tmp_path)])
        assert (tmp_path / "core_problem.json").read_bytes() == before["core_problem.json"]

    def test_interrupted_write_removes_the_temporary_file(self, tmp_path, monkeypatch):
        target = tmp_path / "table.json"
        target.write_bytes(b"old and complete")
        monkeypatch.setattr(experiments.os, "fsync", self._interrupt)
        with pytest.raises(KeyboardInterrupt):
            experiments._atomic_write(target, b"new")
        assert [p.name for p in tmp_path.iterdir()] == ["table.json"]
        assert target.read_bytes() == b"old and complete"

    def test_interrupted_run_writes_nothing(self, tmp_path, monkeypatch, capsys):
        monkeypatch.setattr(experiments, "run", self._interrupt)
        code = main(["run", "core_problem", *TINY, "--out", str(tmp_path)])
        assert code == 130
        _assert_one_line_error(capsys.readouterr().err, "interrupted: no result written")
        assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- registry


class TestRegistry:
    def test_run_rejects_unknown_option_naming_it(self):
        with pytest.raises(TypeError, match=r"experiment 'core_problem' has no option 'bogus'"):
            experiments.run("core_problem", bogus=1)

    def test_unknown_name_lists_the_known_ones(self):
        with pytest.raises(ValueError, match=r"unknown experiment 'nope'; known: .*core_problem"):
            experiments.get("nope")

    def test_option_types_come_from_the_defaults(self, toy_experiment):
        opts = experiments.get(toy_experiment).options
        assert {k: v[0] for k, v in opts.items()} == {
            "n": int,
            "x": float,
            "word": str,
            "flag": bool,
        }
        assert opts["x"] == (float, 0.5, "a float")
        assert "progress" not in opts

    def test_every_registered_option_has_a_type_the_cli_can_parse(self):
        for exp in experiments.registry().values():
            assert exp.help, exp.name
            for name, (typ, _, _) in exp.options.items():
                assert typ in (int, float, str, bool), f"{exp.name}.{name}: {typ.__name__}"

    def test_run_passes_options_and_progress(self, toy_experiment):
        result = experiments.run(toy_experiment, n=4, word="x")
        assert result.options == {"n": 4, "x": 0.5, "word": "x", "flag": False}
        assert len(result.rows) == 4 and result.all_claims_hold

    def test_option_without_default_is_rejected(self):
        with pytest.raises(TypeError, match=r"option 'n' of experiment 'zz_bad' needs a default"):

            @experiments.experiment("zz_bad", "bad")
            def bad(n, progress=False):  # pragma: no cover - never called
                return None

        assert "zz_bad" not in experiments.registry()

    def test_same_name_twice_is_rejected(self, toy_experiment):
        with pytest.raises(ValueError, match=r"experiment 'zz_toy' is registered twice"):

            @experiments.experiment(toy_experiment, "again")
            def other(progress=False):  # pragma: no cover - never called
                return None

    def test_non_result_return_is_a_type_error(self):
        @experiments.experiment("zz_wrong", "returns a dict")
        def wrong(progress=False):
            return {"rows": []}

        try:
            with pytest.raises(TypeError, match=r"experiment 'zz_wrong' returned dict, not Result"):
                experiments.run("zz_wrong")
        finally:
            experiments._REGISTRY.pop("zz_wrong", None)

    def test_print_claims(self, capsys):
        Result("zz", {}, [], {"a holds": True, "b holds": 0}).print_claims()
        assert capsys.readouterr().out == "a holds: True\nb holds: False\n"


def test_result_files_get_the_usual_permissions(tmp_path):
    """mkstemp creates 0600 files; saved results must be readable like any file the user writes."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "t.json"
        experiments._atomic_write(path, b"{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
