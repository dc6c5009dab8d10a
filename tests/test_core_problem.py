"""Tests of regcourse.experiments.core_problem: the diagnosis rule, the mean/std helper,
and the experiment itself at tiny settings (structure, determinism, bad options, CLI).
The full-size experiment and its claims are checked by nbval on book/core_problem.ipynb.
"""

from __future__ import annotations

import json
import math
import statistics

import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from regcourse.__main__ import main
from regcourse.data import digits_split
from regcourse.experiments import Result, get, run
from regcourse.experiments.core_problem import LEVELS, SOURCE_TABLE, diagnose, mean_std

LABELS = {
    "Severe overfitting",
    "Mild overfitting",
    "Good fit",
    "Slight underfitting",
    "Severe underfitting",
}
# two seeds, two epochs, a tiny network: every code path, in about a second
TINY = dict(seeds=2, epochs=2, n_train=30, hidden=8)


@pytest.fixture(scope="module")
def tiny():
    result = run("core_problem", **TINY)
    yield result
    plt.close(result.figure)


class TestDiagnose:
    @pytest.mark.parametrize(
        "train_acc, test_acc, expected",
        [
            (100.0, 70.0, "Severe overfitting"),
            (100.0, 85.0, "Severe overfitting"),  # gap exactly 15: severe
            (100.0, 85.5, "Mild overfitting"),  # gap 14.5
            (90.0, 85.0, "Mild overfitting"),  # gap exactly 5: mild
            (99.0, 94.5, "Good fit"),  # gap 4.5, train >= 95
            (95.0, 94.0, "Good fit"),  # train exactly 95
            (94.5, 94.0, "Slight underfitting"),
            (80.0, 79.0, "Slight underfitting"),  # train exactly 80
            (79.5, 79.0, "Severe underfitting"),
            (60.0, 70.0, "Severe underfitting"),  # negative gap, low train accuracy
            (86.0, 90.0, "Slight underfitting"),  # negative gap (noisy training labels)
            (0.0, 0.0, "Severe underfitting"),
            (100.0, 0.0, "Severe overfitting"),
        ],
    )
    def test_rule(self, train_acc, test_acc, expected):
        assert diagnose(train_acc, test_acc) == expected

    @pytest.mark.parametrize("level", list(SOURCE_TABLE))
    def test_reproduces_the_source_table(self, level):
        train_acc, test_acc, label = SOURCE_TABLE[level]
        assert diagnose(train_acc, test_acc) == label

    def test_thresholds_are_options(self):
        assert diagnose(100.0, 90.0) == "Mild overfitting"
        assert diagnose(100.0, 90.0, severe_gap=10.0) == "Severe overfitting"
        assert diagnose(100.0, 97.0, mild_gap=2.0) == "Mild overfitting"
        assert diagnose(92.0, 91.0, fit_train=90.0) == "Good fit"
        assert diagnose(85.0, 84.0, underfit_train=90.0) == "Severe underfitting"

    def test_accepts_ints_and_tensors(self):
        assert (
            diagnose(100, 70)
            == diagnose(torch.tensor(100.0), torch.tensor(70.0))
            == "Severe overfitting"
        )

    @pytest.mark.parametrize(
        "args, kwargs, error, match",
        [
            ((101.0, 50.0), {}, ValueError, r"train_acc must be in \[0, 100\], got 101"),
            ((50.0, -1.0), {}, ValueError, r"test_acc must be in \[0, 100\], got -1"),
            (
                (0.9, 0.8),
                {"severe_gap": 150.0},
                ValueError,
                r"severe_gap must be in \[0, 100\], got 150",
            ),
            ((float("nan"), 50.0), {}, ValueError, r"train_acc must be finite"),
            (("99", 50.0), {}, TypeError, r"train_acc must be a real number"),
            ((True, 50.0), {}, TypeError, r"train_acc must be a real number"),
            (
                (90.0, 80.0),
                {"mild_gap": 20.0},
                ValueError,
                r"mild_gap must be in \[0, 15\], got 20",
            ),
            (
                (90.0, 80.0),
                {"underfit_train": 96.0},
                ValueError,
                r"underfit_train must be in \[0, 95\], got 96",
            ),
            (
                (90.0, 80.0),
                {"fit_train": -5.0},
                ValueError,
                r"fit_train must be in \[0, 100\], got -5",
            ),
        ],
    )
    def test_bad_input(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            diagnose(*args, **kwargs)

    @settings(max_examples=200, deadline=None)
    @given(st.floats(0, 100), st.floats(0, 100))
    def test_label_follows_gap_and_train_accuracy(self, train_acc, test_acc):
        label = diagnose(train_acc, test_acc)
        gap = train_acc - test_acc
        assert label in LABELS
        assert ("overfitting" in label) == (gap >= 5)
        assert (label == "Severe overfitting") == (gap >= 15)
        if gap < 5:
            assert (label == "Good fit") == (train_acc >= 95)
            assert (label == "Severe underfitting") == (train_acc < 80)

    @settings(max_examples=100, deadline=None)
    @given(st.floats(0, 100), st.floats(0, 100), st.floats(0, 100))
    def test_a_lower_test_accuracy_never_looks_less_overfitted(self, train_acc, te1, te2):
        severity = {"Severe overfitting": 2, "Mild overfitting": 1}
        lo, hi = sorted((te1, te2))
        assert severity.get(diagnose(train_acc, lo), 0) >= severity.get(diagnose(train_acc, hi), 0)


class TestMeanStd:
    def test_matches_statistics_module(self):
        values = [81.5, 84.0, 79.25, 90.0, 77.75]
        mean, std = mean_std(values)
        assert mean == pytest.approx(statistics.fmean(values), abs=1e-12)
        assert std == pytest.approx(statistics.stdev(values), abs=1e-12)

    def test_matches_torch_unbiased_std(self):
        values = torch.rand(20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        mean, std = mean_std(values.tolist())
        assert mean == pytest.approx(values.mean().item(), abs=1e-12)
        assert std == pytest.approx(values.std(unbiased=True).item(), abs=1e-12)

    def test_single_value_has_zero_std(self):
        assert mean_std([42.0]) == (42.0, 0.0)

    def test_accepts_a_generator(self):
        assert mean_std(x for x in (1.0, 3.0)) == (2.0, math.sqrt(2.0))

    def test_empty_is_rejected(self):
        with pytest.raises(ValueError, match="values must not be empty"):
            mean_std([])


class TestExperiment:
    def test_returns_a_result_with_a_row_per_level(self, tiny):
        assert isinstance(tiny, Result) and tiny.name == "core_problem"
        assert [row["level"] for row in tiny.rows] == list(LEVELS) == ["none", "light", "heavy"]
        keys = {
            "level",
            "dropout",
            "weight_decay",
            "train_acc",
            "train_acc_std",
            "test_acc",
            "test_acc_std",
            "gap",
            "gap_std",
            "clean_train_acc",
            "noise_fit",
            "diagnosis",
        }
        assert all(set(row) == keys for row in tiny.rows)

    def test_options_are_recorded_with_defaults(self, tiny):
        defaults = {name: default for name, (_, default, _) in get("core_problem").options.items()}
        assert tiny.options == {**defaults, **TINY}

    def test_levels_use_their_settings(self, tiny):
        o = tiny.options
        settings_ = {row["level"]: (row["dropout"], row["weight_decay"]) for row in tiny.rows}
        assert settings_ == {
            "none": (0.0, 0.0),
            "light": (o["light_dropout"], o["light_weight_decay"]),
            "heavy": (o["heavy_dropout"], o["heavy_weight_decay"]),
        }

    def test_rows_summarise_the_runs(self, tiny):
        per_seed = tiny.extra["per_seed"]
        assert len(per_seed) == TINY["seeds"] * len(LEVELS)
        for row in tiny.rows:
            runs = [r for r in per_seed if r["level"] == row["level"]]
            assert sorted(r["seed"] for r in runs) == list(range(TINY["seeds"]))
            assert row["train_acc"] == pytest.approx(statistics.fmean(r["train_acc"] for r in runs))
            assert row["test_acc_std"] == pytest.approx(
                statistics.stdev(r["test_acc"] for r in runs)
            )
            assert row["gap"] == pytest.approx(row["train_acc"] - row["test_acc"])
            assert row["diagnosis"] == diagnose(row["train_acc"], row["test_acc"])
            for key in ("train_acc", "test_acc", "clean_train_acc", "noise_fit"):
                assert 0.0 <= row[key] <= 100.0
            assert row["train_acc_std"] >= 0 and row["gap_std"] >= 0

    def test_train_accuracy_is_the_last_epoch_of_the_history(self, tiny):
        for level in LEVELS:
            hists = tiny.extra["histories"][level]
            runs = [r for r in tiny.extra["per_seed"] if r["level"] == level]
            assert [100 * h.train_acc[-1] for h in hists] == [r["train_acc"] for r in runs]
            assert all(h.stopped_epoch == TINY["epochs"] for h in hists)

    def test_counts_the_corrupted_labels(self, tiny):
        for r in tiny.extra["per_seed"]:
            clean = digits_split(30, 100, seed=r["seed"]).y_train
            noisy = digits_split(30, 100, label_noise=0.15, seed=r["seed"]).y_train
            assert r["n_flipped"] == int((clean != noisy).sum())

    def test_claims_are_named_booleans(self, tiny):
        assert len(tiny.claims) == 5
        assert all(isinstance(v, bool) for v in tiny.claims.values())
        assert any("98%" in text for text in tiny.claims)

    def test_claims_follow_the_rows(self, tiny):
        by = {row["level"]: row for row in tiny.rows}
        gap_claim = tiny.claims["the train-test gap shrinks: none > light > heavy"]
        assert gap_claim == (by["none"]["gap"] > by["light"]["gap"] > by["heavy"]["gap"])
        low_claim = tiny.claims["heavy regularization has the lowest training accuracy"]
        lowest = by["heavy"]["train_acc"] < min(by["none"]["train_acc"], by["light"]["train_acc"])
        assert low_claim == lowest

    def test_figure_has_train_and_test_bars(self, tiny):
        fig = tiny.figure
        assert isinstance(fig, Figure) and len(fig.axes) == 1
        ax = fig.axes[0]
        assert len(ax.patches) == 2 * len(LEVELS)
        heights = [p.get_height() for p in ax.patches]
        by = {row["level"]: row for row in tiny.rows}
        train_bars = [by[lv]["train_acc"] for lv in LEVELS]
        test_bars = [by[lv]["test_acc"] for lv in LEVELS]
        assert heights == pytest.approx(train_bars + test_bars)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]

    def test_same_options_same_result(self, tiny):
        again = run("core_problem", **TINY)
        plt.close(again.figure)
        assert again.rows == tiny.rows and again.claims == tiny.claims

    def test_progress_bar_does_not_change_the_result(self, capsys):
        a = run("core_problem", seeds=1, epochs=1, n_train=20, hidden=4, progress=True)
        b = run("core_problem", seeds=1, epochs=1, n_train=20, hidden=4)
        plt.close(a.figure)
        plt.close(b.figure)
        assert capsys.readouterr().out == ""
        assert a.rows == b.rows

    def test_without_label_noise(self):
        res = run("core_problem", seeds=1, epochs=1, n_train=20, hidden=4, label_noise=0.0)
        plt.close(res.figure)
        assert all(row["noise_fit"] is None for row in res.rows)
        assert all(row["clean_train_acc"] == row["train_acc"] for row in res.rows)
        assert len(res.claims) == 4 and not any("corrupted" in text for text in res.claims)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"seeds": 0}, ValueError, r"seeds must be >= 1, got 0"),
            ({"seeds": 1.5}, TypeError, r"seeds must be an integer"),
            ({"epochs": 0}, ValueError, r"epochs must be >= 1, got 0"),
            ({"n_train": 5}, ValueError, r"n_train must be in \[10, 1197\], got 5"),
            ({"n_train": 1500}, ValueError, r"n_train must be in \[10, 1197\], got 1500"),
            ({"label_noise": 1.0}, ValueError, r"label_noise must be in \[0, 1\), got 1"),
            ({"hidden": 0}, ValueError, r"hidden must be >= 1, got 0"),
            ({"lr": 0.0}, ValueError, r"lr must be > 0, got 0"),
            ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
            ({"light_dropout": 1.0}, ValueError, r"light_dropout must be in \[0, 1\), got 1"),
            ({"heavy_dropout": -0.5}, ValueError, r"heavy_dropout must be in \[0, 1\)"),
            ({"light_weight_decay": -1.0}, ValueError, r"light_weight_decay must be >= 0, got -1"),
            (
                {"heavy_weight_decay": float("inf")},
                ValueError,
                r"heavy_weight_decay must be finite",
            ),
            (
                {"memorize_threshold": 101.0},
                ValueError,
                r"memorize_threshold must be in \[0, 100\], got 101",
            ),
            ({"label_noise": "0.1"}, TypeError, r"label_noise must be a real number"),
        ],
    )
    def test_bad_options(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            run("core_problem", **kwargs)

    def test_unknown_option(self):
        with pytest.raises(TypeError, match=r"has no option 'seed'"):
            run("core_problem", seed=1)


class TestCommandLine:
    def test_run_writes_json_and_png(self, tmp_path, capsys):
        args = [
            "run",
            "core_problem",
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--n-train",
            "20",
            "--hidden",
            "4",
            "--light-dropout",
            "0.1",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
        assert main(args) == 0
        payload = json.loads((tmp_path / "core_problem.json").read_text())
        assert payload["options"]["light_dropout"] == 0.1
        assert [row["diagnosis"] in LABELS for row in payload["rows"]] == [True] * 3
        assert (tmp_path / "core_problem.png").stat().st_size > 1000
        out = capsys.readouterr().out
        assert "the train-test gap shrinks: none > light > heavy:" in out

    def test_bad_option_value_exits_2(self, tmp_path, capsys):
        assert main(["run", "core_problem", "--seeds", "0", "--out", str(tmp_path)]) == 2
        assert capsys.readouterr().err.strip() == (
            "python -m regcourse run core_problem: error: seeds must be >= 1, got 0"
        )
