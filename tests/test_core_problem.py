"""Tests of regcourse.experiments.core_problem: the diagnosis rule, the mean/std helper,
the training loop ``fit`` (against the loop written out with torch.optim), and the three
experiments (core_problem, mnist1d_baselines, random_labels) at tiny settings: structure,
determinism, bad options, CLI. The full-size experiments and their claims are checked by
nbval on book/core_problem.ipynb.
"""

from __future__ import annotations

import json
import math
import statistics

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from regcourse.__main__ import main
from regcourse.data import MNIST1D_PUBLISHED, mnist1d_split
from regcourse.experiments import Result, get, run
from regcourse.experiments.core_problem import (
    LEVELS,
    MNIST1D_NOTEBOOK_RUN,
    SOURCE_TABLE,
    accuracy_curves,
    baselines_figure,
    diagnose,
    fit,
    mean_std,
    training_subset,
)
from regcourse.models import mnist1d_model

LABELS = {
    "Severe overfitting",
    "Mild overfitting",
    "Good fit",
    "Slight underfitting",
    "Severe underfitting",
}
# two seeds, two epochs, a tiny network on 30 signals: every code path, in about a second
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


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture(scope="module")
def small():
    """200 MNIST-1D training signals, the benchmark's test set, a validation set of 50."""
    full = mnist1d_split(50, seed=3)
    return training_subset(full, 200)


class TestTrainingSubset:
    def test_keeps_the_first_examples_and_the_rest(self):
        full = mnist1d_split()
        sub = training_subset(full, 100)
        assert torch.equal(sub.x_train, full.x_train[:100])
        assert torch.equal(sub.y_train, full.y_train[:100])
        assert torch.equal(sub.x_test, full.x_test) and sub.num_classes == full.num_classes

    def test_all_examples_is_the_same_split(self):
        full = mnist1d_split()
        assert training_subset(full, len(full.y_train)) is full

    @pytest.mark.parametrize(
        "data, n, error, match",
        [
            ("not a split", 10, TypeError, "data must be a regcourse.data.Split"),
            (None, 5, ValueError, r"n_train must be in \[10, 4000\], got 5"),
            (None, 4001, ValueError, r"n_train must be in \[10, 4000\], got 4001"),
            (None, 10.5, TypeError, "n_train must be an integer"),
        ],
    )
    def test_bad_input(self, data, n, error, match):
        with pytest.raises(error, match=match):
            training_subset(mnist1d_split() if data is None else data, n)


class TestFit:
    """fit() is the loop the chapter writes out: cross-checked against that loop."""

    @staticmethod
    def _loop(model, data, *, epochs, optimizer, batch_size, seed):
        """The chapter's loop, written with torch only (randperm, forward, backward, step)."""
        g = torch.Generator().manual_seed(seed)
        x, y = data.x_train, data.y_train
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(y), generator=g)
            for start in range(0, len(y), batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    def test_adam_run_is_the_written_out_loop(self, small):
        a, b = mnist1d_model("mlp", seed=4), mnist1d_model("mlp", seed=4)
        fit(a, small, epochs=3, lr=0.01, batch_size=50, seed=9)
        self._loop(b, small, epochs=3, optimizer=torch.optim.Adam(b.parameters(), lr=0.01),
                   batch_size=50, seed=9)  # fmt: skip
        assert _same_weights(a, b)

    def test_weight_decay_uses_adamw(self, small):
        a, b = mnist1d_model("mlp", seed=4), mnist1d_model("mlp", seed=4)
        fit(a, small, epochs=2, lr=0.01, batch_size=50, weight_decay=0.3, seed=1)
        opt = torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.3)
        self._loop(b, small, epochs=2, optimizer=opt, batch_size=50, seed=1)
        assert _same_weights(a, b)
        c = mnist1d_model("mlp", seed=4)
        fit(c, small, epochs=2, lr=0.01, batch_size=50, seed=1)  # no decay: different weights
        assert not _same_weights(a, c)

    def test_dropout_masks_come_from_the_seed(self, small):
        runs = []
        for seed in (0, 0, 1):
            model = mnist1d_model("mlp", seed=0, dropout=0.5)
            fit(model, small, epochs=1, lr=0.01, seed=seed)
            runs.append(model)
        assert _same_weights(runs[0], runs[1]) and not _same_weights(runs[0], runs[2])

    def test_global_generator_and_threads_are_restored(self, small):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        threads = torch.get_num_threads()
        fit(mnist1d_model("mlp", seed=0, dropout=0.2), small, epochs=1, lr=0.01)
        assert torch.equal(torch.rand(3), expected)
        assert torch.get_num_threads() == threads

    def test_measures_match_evaluate(self, small):
        from regcourse.training import evaluate

        model = mnist1d_model("logistic", seed=2)
        out = fit(model, small, epochs=2, lr=0.05, curves=True)
        for part, x, y in (("train", small.x_train, small.y_train),
                           ("val", small.x_val, small.y_val),
                           ("test", small.x_test, small.y_test)):  # fmt: skip
            loss, acc = evaluate(model, x, y)
            assert out[f"{part}_loss"] == loss and out[f"{part}_acc"] == 100.0 * acc
            assert out["curves"][f"{part}_acc"][-1] == out[f"{part}_acc"]
        assert all(len(v) == 2 for v in out["curves"].values())
        assert set(out["curves"]) == {f"{p}_{m}" for p in ("train", "val", "test")
                                      for m in ("acc", "loss")}  # fmt: skip

    def test_without_validation_set_and_curves(self):
        data = training_subset(mnist1d_split(), 50)
        out = fit(mnist1d_model("logistic"), data, epochs=1, lr=0.01)
        assert set(out) == {"train_acc", "train_loss", "test_acc", "test_loss"}

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"model": "mlp"}, TypeError, "model must be an nn.Module"),
            ({"data": (1, 2)}, TypeError, "data must be a regcourse.data.Split"),
            ({"epochs": 0}, ValueError, r"epochs must be >= 1, got 0"),
            ({"lr": 0.0}, ValueError, r"lr must be > 0, got 0"),
            ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
            ({"weight_decay": -0.1}, ValueError, r"weight_decay must be >= 0"),
            ({"seed": -1}, ValueError, r"seed must be >= 0"),
            ({"curves": 1}, TypeError, "curves must be a bool"),
        ],
    )
    def test_bad_input(self, small, kwargs, error, match):
        args = {"model": mnist1d_model("logistic"), "data": small, "epochs": 1, "lr": 0.01}
        args.update(kwargs)
        with pytest.raises(error, match=match):
            fit(args.pop("model"), args.pop("data"), **args)

    def test_accepts_numpy_and_tensor_scalars(self, small):
        import numpy as np

        a, b = mnist1d_model("logistic", seed=1), mnist1d_model("logistic", seed=1)
        fit(a, small, epochs=np.int64(1), lr=np.float32(0.01), batch_size=torch.tensor(50))
        fit(b, small, epochs=1, lr=float(np.float32(0.01)), batch_size=50)
        assert _same_weights(a, b)


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

    def test_each_run_is_fit_of_a_seeded_mlp(self, tiny):
        data = training_subset(mnist1d_split(), TINY["n_train"])
        for (level, seed), model in tiny.extra["models"].items():
            p, wd = tiny.extra["settings"][level]
            again = mnist1d_model("mlp", seed=seed, hidden=TINY["hidden"], dropout=p)
            out = fit(again, data, epochs=TINY["epochs"], lr=tiny.options["lr"],
                      batch_size=tiny.options["batch_size"], weight_decay=wd, seed=seed)  # fmt: skip
            assert _same_weights(model, again)
            run_ = next(
                r for r in tiny.extra["per_seed"] if (r["level"], r["seed"]) == (level, seed)
            )
            assert run_["train_acc"] == out["train_acc"] and run_["test_acc"] == out["test_acc"]

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
            for key in ("train_acc", "test_acc", "clean_train_acc"):
                assert 0.0 <= row[key] <= 100.0
            assert row["noise_fit"] is None  # no label noise by default
            assert row["clean_train_acc"] == row["train_acc"]
            assert row["train_acc_std"] >= 0 and row["gap_std"] >= 0

    def test_claims_are_named_booleans(self, tiny):
        assert len(tiny.claims) == 4
        assert all(isinstance(v, bool) for v in tiny.claims.values())
        assert any("95%" in text for text in tiny.claims)

    def test_claims_follow_the_rows(self, tiny):
        by = {row["level"]: row for row in tiny.rows}
        gap_claim = tiny.claims["the train-test gap shrinks: none > light > heavy"]
        assert gap_claim == (by["none"]["gap"] > by["light"]["gap"] > by["heavy"]["gap"])
        low_claim = tiny.claims["heavy regularization has the lowest training accuracy"]
        lowest = by["heavy"]["train_acc"] < min(by["none"]["train_acc"], by["light"]["train_acc"])
        assert low_claim == lowest
        best = tiny.claims["light regularization has the highest mean test accuracy"]
        assert best == (
            by["light"]["test_acc"] > max(by["none"]["test_acc"], by["heavy"]["test_acc"])
        )

    def test_with_label_noise_counts_the_corrupted_labels(self):
        res = run("core_problem", seeds=1, epochs=1, n_train=60, hidden=4, label_noise=0.3)
        clean = training_subset(mnist1d_split(), 60).y_train
        noisy = training_subset(mnist1d_split(label_noise=0.3, seed=0), 60).y_train
        for r in res.extra["per_seed"]:
            assert r["n_flipped"] == int((clean != noisy).sum()) > 0
            assert 0.0 <= r["noise_fit"] <= 100.0
        assert len(res.claims) == 5 and any("corrupted" in text for text in res.claims)

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
        assert ax.get_ylim()[0] == 0
        assert fig.number not in plt.get_fignums()  # closed: a notebook does not draw it twice

    def test_same_options_same_result(self, tiny):
        again = run("core_problem", **TINY)
        assert again.rows == tiny.rows and again.claims == tiny.claims

    def test_progress_bar_does_not_change_the_result(self, capsys):
        a = run("core_problem", seeds=1, epochs=1, n_train=20, hidden=4, progress=True)
        b = run("core_problem", seeds=1, epochs=1, n_train=20, hidden=4)
        assert capsys.readouterr().out == ""
        assert a.rows == b.rows

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"seeds": 0}, ValueError, r"seeds must be >= 1, got 0"),
            ({"seeds": 1.5}, TypeError, r"seeds must be an integer"),
            ({"epochs": 0}, ValueError, r"epochs must be >= 1, got 0"),
            ({"n_train": 5}, ValueError, r"n_train must be in \[10, 4000\], got 5"),
            ({"n_train": 4500}, ValueError, r"n_train must be in \[10, 4000\], got 4500"),
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


BASE_TINY = dict(models="cnn,logistic", seeds=2, epochs=1)


@pytest.fixture(scope="module")
def bench():
    return run("mnist1d_baselines", **BASE_TINY)


class TestBaselines:
    def test_rows_in_the_published_order_with_the_published_figures(self, bench):
        assert [r["model"] for r in bench.rows] == ["logistic", "cnn"]
        for r in bench.rows:
            assert r["published"] == pytest.approx(100 * MNIST1D_PUBLISHED[r["model"]])
            assert r["notebook_run"] == MNIST1D_NOTEBOOK_RUN[r["model"]]
            assert r["difference"] == pytest.approx(r["test_acc"] - r["published"])
            assert r["reproduced"] == (abs(r["difference"]) <= bench.options["tolerance"])

    def test_rows_are_fit_runs_over_seeds(self, bench):
        data = mnist1d_split()
        for r in bench.rows:
            tests = []
            for seed in range(BASE_TINY["seeds"]):
                out = fit(mnist1d_model(r["model"], seed=seed), data, epochs=1, lr=0.01,
                          batch_size=100, seed=seed)  # fmt: skip
                tests.append(out["test_acc"])
            assert (r["test_acc"], r["test_acc_std"]) == pytest.approx(mean_std(tests))

    def test_claims_name_each_model_and_the_ranking(self, bench):
        names = list(bench.claims)
        assert names[0].startswith("logistic: mean test accuracy within 5 points")
        assert names[1].startswith("cnn: mean test accuracy within 5 points")
        assert names[2] == "the published ranking holds: logistic < cnn"
        ranking = bench.rows[0]["test_acc"] < bench.rows[1]["test_acc"]
        assert bench.claims[names[2]] == ranking

    def test_figure_bars_are_our_means_from_zero(self, bench):
        ax = bench.figure.axes[0]
        assert [p.get_height() for p in ax.patches] == pytest.approx(
            [r["test_acc"] for r in bench.rows]
        )
        assert ax.get_ylim() == (0, 100)

    @pytest.mark.parametrize(
        "models, error",
        [("", ValueError), ("rnn", ValueError), ("mlp,gru", ValueError), (3, TypeError)],
    )
    def test_bad_models(self, models, error):
        with pytest.raises(error, match="models"):
            run("mnist1d_baselines", models=models, seeds=1, epochs=1)

    @pytest.mark.parametrize("kwargs", [{"seeds": 0}, {"epochs": 0}, {"tolerance": -1.0}])
    def test_bad_options(self, kwargs):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            run("mnist1d_baselines", models="logistic", **kwargs)


RL_TINY = dict(seeds=2, n_train=50, epochs=4, hidden=16)


@pytest.fixture(scope="module")
def rl():
    return run("random_labels", **RL_TINY)


class TestRandomLabels:
    def test_rows_and_label_agreement(self, rl):
        assert [r["labels"] for r in rl.rows] == ["true", "random"]
        by = {r["labels"]: r for r in rl.rows}
        assert by["true"]["agree_with_true"] == 100.0
        assert by["random"]["agree_with_true"] < 50.0  # random labels: about 10 % agree

    def test_random_runs_train_on_random_labels_and_test_on_true_ones(self, rl):
        data = training_subset(mnist1d_split(random_labels=True, seed=1), RL_TINY["n_train"])
        model = mnist1d_model("mlp", seed=1, hidden=RL_TINY["hidden"])
        out = fit(model, data, epochs=RL_TINY["epochs"], lr=0.01, seed=1, curves=True)
        run_ = next(r for r in rl.extra["per_seed"] if (r["labels"], r["seed"]) == ("random", 1))
        assert run_["curves"] == out["curves"]
        assert torch.equal(data.y_test, mnist1d_split().y_test)

    def test_curves_are_epochwise_means(self, rl):
        for labels in ("true", "random"):
            runs = [r for r in rl.extra["per_seed"] if r["labels"] == labels]
            means, stds = rl.extra["curves"][labels]["train_acc"]
            assert len(means) == len(stds) == RL_TINY["epochs"]
            for t in range(RL_TINY["epochs"]):
                m, s = mean_std(r["curves"]["train_acc"][t] for r in runs)
                assert (means[t], stds[t]) == pytest.approx((m, s))

    def test_epoch_fitted_is_the_first_epoch_at_the_level(self):
        res = run("random_labels", seeds=1, n_train=20, epochs=30, fit_level=50.0)
        for r in res.extra["per_seed"]:
            curve = r["curves"]["train_acc"]
            first = next((t for t, v in enumerate(curve, 1) if v >= 50.0), None)
            assert r["epoch_fitted"] == first

    def test_chance_claim_uses_three_standard_errors(self, rl):
        se = rl.extra["chance_se"]
        assert se == pytest.approx(100 * math.sqrt(0.1 * 0.9 / 1000))
        by = {r["labels"]: r for r in rl.rows}
        key = "on random labels the test accuracy is chance: within 3 standard errors of 10%"
        assert rl.claims[key] == (abs(by["random"]["test_acc"] - 10) <= 3 * se)

    @pytest.mark.parametrize(
        "kwargs", [{"seeds": 0}, {"n_train": 5}, {"epochs": 0}, {"fit_level": 101.0}]
    )
    def test_bad_options(self, kwargs):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            run("random_labels", **kwargs)


def _row(**changes):
    """One valid row of baselines_figure, with some entries changed."""
    row = {"model": "mlp", "test_acc": 64.0, "test_acc_std": 1.5, "published": 68.0,
           "notebook_run": 65.1}  # fmt: skip
    row.update(changes)
    return row


class TestFigures:
    def test_baselines_figure_marks_both_published_figures(self):
        rows = [
            {"model": m, "test_acc": 50.0, "test_acc_std": 1.0,
             "published": 100 * MNIST1D_PUBLISHED[m], "notebook_run": MNIST1D_NOTEBOOK_RUN[m]}
            for m in ("logistic", "mlp", "cnn")
        ]  # fmt: skip
        ax = baselines_figure(rows).axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == [
            "README table (Greydanus 2020)",
            "the benchmark notebook's run",
            "ours (mean ± std over seeds)",
        ]

    def test_accuracy_curves_one_line_per_series_and_a_chance_line(self):
        fig = accuracy_curves({"a (train)": [10, 20], "a (test)": ([5, 6], [1, 1])}, chance=10)
        ax = fig.axes[0]
        assert [line.get_linestyle() for line in ax.get_lines()] == ["-", "--", ":"]
        assert ax.get_ylim() == (0, 100)

    @pytest.mark.parametrize(
        "rows, kwargs, error, match",
        [
            ("logistic", {}, TypeError, "rows must be a list of dicts, got str"),
            ([], {}, ValueError, "rows must not be empty"),
            ([("logistic", 32.0)], {}, TypeError, r"rows\[0\] must be a dict, got tuple"),
            ([{"model": "mlp", "test_acc": 60.0}], {}, ValueError, r"rows\[0\] lacks the keys"),
            (
                [_row(test_acc=120.0)],
                {},
                ValueError,
                r"rows\[0\]\['test_acc'\] must be in \[0, 100\]",
            ),
            (
                [_row(test_acc_std=-1.0)],
                {},
                ValueError,
                r"rows\[0\]\['test_acc_std'\] must be >= 0",
            ),
            ([_row(published="68")], {}, TypeError, r"rows\[0\]\['published'\] must be a real"),
            ([_row(notebook_run=float("nan"))], {}, ValueError, r"notebook_run'\] must be finite"),
            ([_row()], {"title": 3}, TypeError, "title must be a str, got int"),
        ],
    )
    def test_baselines_figure_bad_input(self, rows, kwargs, error, match):
        before = plt.get_fignums()
        with pytest.raises(error, match=match):
            baselines_figure(rows, **kwargs)
        assert plt.get_fignums() == before  # refused before a figure is made

    def test_baselines_figure_accepts_tensor_and_numpy_numbers(self):
        import numpy as np

        row = _row(test_acc=torch.tensor(61.5), test_acc_std=np.float32(2.0))
        fig = baselines_figure([row])
        assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([61.5])
        plt.close(fig)

    @pytest.mark.parametrize(
        "series, kwargs, error, match",
        [
            ([1, 2], {}, TypeError, "series must be a dict of label -> values, got list"),
            ({}, {}, ValueError, "series must not be empty"),
            ({"a": "high"}, {}, TypeError, r"series\['a'\] must be a list of numbers, got str"),
            ({"a": []}, {}, ValueError, r"series\['a'\] must not be empty"),
            ({"a": [1.0, float("inf")]}, {}, ValueError, r"series\['a'\]\[1\] must be finite"),
            (
                {"a": ([1.0, 2.0], [0.1])},
                {},
                ValueError,
                r"series\['a'\] stds must have 2 values, got 1",
            ),
            ({"a": ([1.0], [0.1], [0.2])}, {}, ValueError, r"a \(means, stds\) pair"),
            ({3: [1.0]}, {}, TypeError, "a label of series must be a str, got int"),
            ({"a": [1.0]}, {"chance": 150}, ValueError, r"chance must be in \[0, 100\], got 150"),
            ({"a": [1.0]}, {"ylabel": None}, TypeError, "ylabel must be a str"),
            ({"a": [1.0]}, {"title": ["t"]}, TypeError, "title must be a str"),
        ],
    )
    def test_accuracy_curves_bad_input(self, series, kwargs, error, match):
        before = plt.get_fignums()
        with pytest.raises(error, match=match):
            accuracy_curves(series, **kwargs)
        assert plt.get_fignums() == before

    def test_accuracy_curves_draws_the_values_it_is_given(self):
        fig = accuracy_curves({"a (train)": torch.tensor([10.0, 30.0, 50.0])}, chance=None)
        (line,) = fig.axes[0].get_lines()
        assert list(line.get_xdata()) == [1, 2, 3]
        assert list(line.get_ydata()) == pytest.approx([10.0, 30.0, 50.0])
        plt.close(fig)


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

    def test_baselines_and_random_labels_from_the_command_line(self, tmp_path, capsys):
        assert main(["run", "mnist1d_baselines", "--models", "logistic", "--seeds", "1",
                     "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0  # fmt: skip
        assert main(["run", "random_labels", "--seeds", "1", "--n-train", "20", "--epochs", "1",
                     "--out", str(tmp_path), "--no-progress"]) == 0  # fmt: skip
        rows = json.loads((tmp_path / "mnist1d_baselines.json").read_text())["rows"]
        assert [r["model"] for r in rows] == ["logistic"]
        assert (tmp_path / "random_labels.png").stat().st_size > 1000

    def test_bad_option_value_exits_2(self, tmp_path, capsys):
        assert main(["run", "core_problem", "--seeds", "0", "--out", str(tmp_path)]) == 2
        assert capsys.readouterr().err.strip() == (
            "python -m regcourse run core_problem: error: seeds must be >= 1, got 0"
        )
