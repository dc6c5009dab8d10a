"""Tests of regcourse.early_stopping and the "early_stopping" experiment."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regcourse.data import digits_split
from regcourse.early_stopping import EarlyStopping, StopPoint, simulate
from regcourse.models import build_model
from regcourse.training import evaluate, train


def run_steps(es: EarlyStopping, values, model=None):
    """Step through ``values`` until ``step`` returns True; return the stop flags."""
    flags = []
    for v in values:
        flags.append(es.step(v, model))
        if flags[-1]:
            break
    return flags


class Stamp(nn.Module):
    """A model whose single weight we set by hand, so a checkpoint names its epoch."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))
        self.register_buffer("seen", torch.zeros(1))

    def set(self, epoch: int) -> None:
        with torch.no_grad():
            self.w.fill_(float(epoch))
            self.seen.fill_(float(epoch))


# ----------------------------------------------------------------------------- patience logic

# (values, patience, min_delta, mode, expected stop epoch or None, expected best epoch),
# worked out by hand
CASES = [
    pytest.param([5.0, 4.0, 3.0, 2.0, 1.0], 1, 0.0, "min", None, 5, id="decreasing-never-stops"),
    pytest.param([1.0, 2.0, 3.0], 2, 0.0, "min", 3, 1, id="rising-stops-after-patience"),
    pytest.param([1.0, 0.8, 0.9, 0.85, 0.95, 0.7], 3, 0.0, "min", 5, 2, id="stops-before-late-dip"),
    pytest.param(
        [1.0, 1.1, 1.2, 0.9, 1.0, 1.1, 1.2], 3, 0.0, "min", 7, 4, id="improvement-resets-counter"
    ),
    pytest.param([1.0, 1.0], 1, 0.0, "min", 2, 1, id="equal-value-is-not-improvement"),
    pytest.param([1.0, 0.95, 0.92, 0.91], 2, 0.1, "min", 3, 1, id="small-gains-below-min-delta"),
    pytest.param([1.0, 0.95, 0.92, 0.90], 2, 0.01, "min", None, 4, id="gains-above-min-delta"),
    pytest.param([1.0, 0.75], 1, 0.25, "min", 2, 1, id="gain-equal-to-min-delta-does-not-count"),
    pytest.param([1.0, 0.625], 1, 0.25, "min", None, 2, id="gain-beyond-min-delta-counts"),
    # min_delta compares with the best *recorded* value: 0.95 and 0.92 do not move it
    pytest.param(
        [1.0, 0.95, 0.92, 0.85, 0.84, 0.83, 0.82],
        3,
        0.1,
        "min",
        7,
        4,
        id="min-delta-against-recorded-best",
    ),
    pytest.param([0.5, 0.6, 0.55, 0.58], 2, 0.0, "max", 4, 2, id="mode-max"),
    pytest.param([0.5, 0.6, 0.62, 0.7], 1, 0.05, "max", 3, 2, id="mode-max-min-delta"),
]


class TestStep:
    @pytest.mark.parametrize("values, patience, min_delta, mode, stop, best", CASES)
    def test_table(self, values, patience, min_delta, mode, stop, best):
        es = EarlyStopping(patience=patience, min_delta=min_delta, mode=mode)
        flags = run_steps(es, values)
        if stop is None:
            assert not any(flags) and len(flags) == len(values)
            assert es.stopped_epoch == 0
        else:
            assert flags == [False] * (stop - 1) + [True]
            assert es.stopped_epoch == stop
        assert es.best_epoch == best
        assert es.best_value == values[best - 1]

    @pytest.mark.parametrize("patience", [1, 2, 3, 5, 8])
    def test_stops_exactly_after_patience_bad_epochs(self, patience):
        es = EarlyStopping(patience=patience)
        flags = run_steps(es, [1.0] + [2.0] * 20)
        assert len(flags) == 1 + patience
        assert flags[-1] and not any(flags[:-1])

    def test_counter_counts_epochs_since_best_and_resets(self):
        es = EarlyStopping(patience=10)
        counters = []
        for v in [3.0, 2.0, 2.5, 2.6, 1.0, 1.5]:
            es.step(v)
            counters.append(es.counter)
        assert counters == [0, 0, 1, 2, 0, 1]
        assert es.epoch == 6

    def test_never_stops_on_decreasing_curve(self):
        es = EarlyStopping(patience=1)
        assert not any(es.step(1.0 / t) for t in range(1, 300))
        assert es.best_epoch == 299

    def test_first_step_always_improves(self):
        for mode, v in (("min", 1e300), ("max", -1e300)):
            es = EarlyStopping(patience=1, mode=mode)
            assert es.step(v) is False
            assert es.best_epoch == 1

    def test_stopped_epoch_keeps_first_stop(self):
        es = EarlyStopping(patience=1)
        run_steps(es, [1.0, 2.0])
        assert es.stopped_epoch == 2
        assert es.step(3.0) is True
        assert es.stopped_epoch == 2 and es.epoch == 3

    def test_accepts_one_element_tensor(self):
        es = EarlyStopping(patience=2)
        es.step(torch.tensor(0.5))
        assert es.best_value == 0.5 and isinstance(es.best_value, float)

    def test_reset(self):
        es = EarlyStopping(patience=1)
        run_steps(es, [1.0, 2.0], Stamp())
        es.reset()
        assert (es.epoch, es.best_epoch, es.counter, es.stopped_epoch) == (0, 0, 0, 0)
        assert es.best_value == math.inf and es.best_state is None

    def test_repr(self):
        es = EarlyStopping(patience=7, min_delta=0.01, mode="max")
        text = repr(es)
        assert text.startswith(
            "EarlyStopping(patience=7, min_delta=0.01, mode='max', restore_best=True"
        )
        es.step(0.5)
        assert "best_epoch=1" in repr(es)


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def overfit_data():
    return digits_split(100, 200, label_noise=0.3, seed=1)


class Recorder:
    """Wraps an EarlyStopping for ``train``, snapshotting the weights at every epoch."""

    def __init__(self, es):
        self.es = es
        self.snapshots = []

    def step(self, value, model):
        self.snapshots.append(copy.deepcopy(model.state_dict()))
        return self.es.step(value, model)

    def restore(self, model):
        self.es.restore(model)

    @property
    def best_epoch(self):
        return self.es.best_epoch


def same_state(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class TestCheckpoint:
    def test_restored_weights_are_those_of_the_best_epoch(self, overfit_data):
        es = EarlyStopping(patience=3)
        rec = Recorder(es)
        model = build_model("mlp", seed=0, hidden=64)
        hist = train(model, overfit_data, epochs=40, lr=3e-3, seed=0, early_stopping=rec)
        assert es.stopped_epoch > 0, "the run should overfit and stop early"
        # the best epoch is the first epoch at the minimum of the recorded validation curve
        assert es.best_epoch == int(np.argmin(hist.val_loss)) + 1 == hist.best_epoch
        assert es.best_epoch < es.stopped_epoch == hist.stopped_epoch == len(rec.snapshots)
        assert same_state(model.state_dict(), rec.snapshots[es.best_epoch - 1])
        assert not same_state(model.state_dict(), rec.snapshots[-1])
        # evaluating the restored model gives back the best validation loss, bit for bit
        assert evaluate(model, overfit_data.x_val, overfit_data.y_val)[0] == es.best_value

    def test_batch_norm_buffers_are_restored(self, overfit_data):
        es = EarlyStopping(patience=2)
        rec = Recorder(es)
        model = build_model("mlp", seed=0, hidden=32, batch_norm=True)
        train(model, overfit_data, epochs=30, lr=3e-3, seed=0, early_stopping=rec)
        best = rec.snapshots[es.best_epoch - 1]
        assert any("running_mean" in k for k in best)
        assert same_state(model.state_dict(), best)

    def test_checkpoint_is_not_aliased(self):
        model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        es = EarlyStopping(patience=2)
        es.step(1.0, model)
        before = copy.deepcopy(model.state_dict())
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
        model.train()(x)  # moves the running statistics
        es.step(2.0, model)  # not an improvement: no new checkpoint
        assert not same_state(model.state_dict(), before)
        assert same_state(es.best_state, before)
        es.restore(model)
        assert same_state(model.state_dict(), before)
        with torch.no_grad():  # training after a restore does not touch the checkpoint either
            model[0].weight.mul_(3.0)
        assert same_state(es.best_state, before)

    def test_checkpoint_follows_improvements(self):
        model, es = Stamp(), EarlyStopping(patience=10)
        for epoch, v in enumerate([3.0, 1.0, 2.0, 0.5, 0.7], start=1):
            model.set(epoch)
            es.step(v, model)
        es.restore(model)
        assert torch.equal(model.w, torch.full((3,), 4.0)) and model.seen.item() == 4.0

    def test_restore_best_false_keeps_model(self):
        model, es = Stamp(), EarlyStopping(patience=1, restore_best=False)
        model.set(1)
        es.step(1.0, model)
        model.set(2)
        es.step(2.0, model)
        assert es.best_state is None
        es.restore(model)
        assert model.w[0].item() == 2.0

    def test_restore_without_checkpoint_raises(self):
        es = EarlyStopping(patience=1)
        es.step(1.0)
        with pytest.raises(RuntimeError, match="no checkpoint"):
            es.restore(Stamp())

    def test_train_reports_best_and_stop(self, overfit_data):
        es = EarlyStopping(patience=2)
        model = build_model("mlp", seed=3, hidden=32)
        hist = train(model, overfit_data, epochs=30, lr=3e-3, seed=3, early_stopping=es)
        assert (hist.stopped_epoch, hist.best_epoch) == (es.stopped_epoch or 30, es.best_epoch)
        assert len(hist.val_loss) == hist.stopped_epoch


# ----------------------------------------------------------------------------- simulate


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
# few distinct values, so ties and plateaus are common
coarse = st.integers(0, 6).map(lambda k: k / 4)


class TestSimulate:
    def test_example(self):
        assert simulate([1.0, 0.8, 0.9, 0.85, 0.95, 0.7], patience=3) == StopPoint(5, 2)

    def test_never_fires_returns_last_epoch(self):
        assert simulate([3.0, 2.0, 1.0], patience=1) == (3, 3)

    def test_accepts_arrays_and_tensors(self):
        vals = [1.0, 0.5, 0.6, 0.7]
        expected = simulate(vals, 2)
        assert simulate(np.array(vals), 2) == expected
        assert simulate(torch.tensor(vals), 2) == expected
        assert simulate(tuple(vals), 2) == expected

    @pytest.mark.parametrize("values, patience, min_delta, mode, stop, best", CASES)
    def test_table(self, values, patience, min_delta, mode, stop, best):
        assert simulate(values, patience, min_delta, mode=mode) == (stop or len(values), best)

    @settings(max_examples=80, deadline=None)
    @given(
        values=st.lists(st.one_of(coarse, finite), min_size=1, max_size=40),
        patience=st.integers(1, 8),
        min_delta=st.sampled_from([0.0, 0.1, 0.25, 1.0]),
        mode=st.sampled_from(["min", "max"]),
    )
    def test_agrees_with_stepping_the_class(self, values, patience, min_delta, mode):
        es = EarlyStopping(patience=patience, min_delta=min_delta, mode=mode)
        flags = run_steps(es, values)
        expected = (es.stopped_epoch or len(flags), es.best_epoch)
        assert simulate(values, patience, min_delta, mode) == expected
        assert len(flags) == (es.stopped_epoch or len(values))


class TestBestIsMinimumProperty:
    @settings(max_examples=80, deadline=None)
    @given(
        values=st.lists(st.one_of(coarse, finite), min_size=1, max_size=40),
        patience=st.integers(1, 8),
    )
    def test_restores_first_minimum_seen(self, values, patience):
        model, es = Stamp(), EarlyStopping(patience=patience)
        seen = 0
        for epoch, v in enumerate(values, start=1):
            model.set(epoch)
            seen = epoch
            if es.step(v, model):
                break
        observed = values[:seen]
        first_min = observed.index(min(observed)) + 1
        assert es.best_value == min(observed)
        assert es.best_epoch == first_min
        es.restore(model)
        assert torch.equal(model.w, torch.full((3,), float(first_min)))
        assert model.seen.item() == float(first_min)


# ----------------------------------------------------------------------------- bad input


class TestBadInput:
    @pytest.mark.parametrize(
        "kwargs, err, match",
        [
            ({"patience": 0}, ValueError, "patience must be >= 1, got 0"),
            ({"patience": -3}, ValueError, "patience"),
            ({"patience": 2.5}, TypeError, "patience must be an integer, got 2.5"),
            ({"patience": "3"}, TypeError, "patience"),
            ({"patience": True}, TypeError, "patience"),
            ({"min_delta": -0.1}, ValueError, "min_delta must be >= 0, got -0.1"),
            ({"min_delta": float("nan")}, ValueError, "min_delta must be finite, got nan"),
            ({"min_delta": float("inf")}, ValueError, "min_delta"),
            ({"mode": "avg"}, ValueError, "mode must be 'min' or 'max', got 'avg'"),
            ({"mode": None}, ValueError, "mode"),
            ({"restore_best": "yes"}, TypeError, "restore_best"),
        ],
    )
    def test_constructor(self, kwargs, err, match):
        with pytest.raises(err, match=match):
            EarlyStopping(**kwargs)

    @pytest.mark.parametrize(
        "value, model, err, match",
        [
            (float("nan"), None, ValueError, "value must be finite, got nan"),
            (float("inf"), None, ValueError, "value must be finite, got inf"),
            (-float("inf"), None, ValueError, "value"),
            (torch.tensor(float("nan")), None, ValueError, "value must be finite"),
            (torch.tensor([1.0, 2.0]), None, TypeError, "value must be a number"),
            ("0.5", None, TypeError, "value"),
            (0.5, "model", TypeError, "model must be an nn.Module"),
        ],
    )
    def test_step(self, value, model, err, match):
        es = EarlyStopping(patience=2)
        with pytest.raises(err, match=match):
            es.step(value, model)
        assert es.epoch == 0  # a rejected value is not counted

    def test_restore_needs_a_module(self):
        with pytest.raises(TypeError, match="model must be an nn.Module"):
            EarlyStopping().restore({"w": torch.zeros(1)})

    @pytest.mark.parametrize(
        "args, err, match",
        [
            (([], 2), ValueError, "values must not be empty"),
            (([1.0, float("nan")], 2), ValueError, r"values\[1\] must be finite"),
            (([1.0, float("inf")], 2), ValueError, r"values\[1\]"),
            ((torch.zeros(2, 3), 2), ValueError, "values must be 1-D"),
            ((5.0, 2), TypeError, "values must be a sequence"),
            (("abc", 2), TypeError, "values"),
            (([1.0, "x"], 2), TypeError, r"values\[1\]"),
            (([1.0], 0), ValueError, "patience"),
            (([1.0], 1.5), TypeError, "patience"),
            (([1.0], 1, -1.0), ValueError, "min_delta"),
            (([1.0], 1, float("nan")), ValueError, "min_delta"),
            (([1.0], 1, 0.0, "median"), ValueError, "mode"),
        ],
    )
    def test_simulate(self, args, err, match):
        with pytest.raises(err, match=match):
            simulate(*args)


# ----------------------------------------------------------------------------- the experiment

TINY = dict(seeds=2, epochs=6, n_val=100, hidden=8, lr=3e-3, patience=2, patiences="1,3")


@pytest.fixture(scope="module")
def result():
    from regcourse.experiments import run

    return run("early_stopping", **TINY)


class TestReplay:
    CURVES = {
        "val_loss": [1.0, 0.8, 0.9, 0.85, 0.95, 0.7],
        "test_loss": [1.1, 0.9, 1.0, 1.0, 1.1, 0.8],
        "test_acc": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
    }

    def test_looks_up_the_restored_epoch(self):
        from regcourse.experiments.early_stopping import replay

        r = replay(self.CURVES, 3)
        assert (r["stop_epoch"], r["best_epoch"]) == tuple(simulate(self.CURVES["val_loss"], 3))
        assert (r["val_loss"], r["test_loss"], r["test_acc"]) == (0.8, 0.9, 20.0)
        assert r["epochs_past_best"] == 3

    def test_never_firing_restores_the_minimum_seen(self):
        from regcourse.experiments.early_stopping import replay

        r = replay(self.CURVES, 10)
        assert (r["stop_epoch"], r["best_epoch"], r["test_acc"]) == (6, 6, 60.0)

    def test_min_delta_is_passed_on(self):
        from regcourse.experiments.early_stopping import replay

        r = replay(self.CURVES, 3, min_delta=0.25)
        assert tuple(simulate(self.CURVES["val_loss"], 3, 0.25)) == (
            r["stop_epoch"],
            r["best_epoch"],
        )


class TestExperiment:
    def test_one_row_per_patience_and_one_without(self, result):
        assert result.name == "early_stopping"
        # the compared patience joins the replayed ones
        assert [r["patience"] for r in result.rows] == [1, 2, 3, None]
        assert result.extra["patiences"] == [1, 2, 3]

    def test_rows_are_means_of_the_replays(self, result):
        from regcourse.experiments import mean_std

        curves, replays = result.extra["curves"], result.extra["replays"]
        assert sorted(curves) == [0, 1]
        for row in result.rows:
            p = row["patience"]
            if p is None:
                stops = [TINY["epochs"]] * 2
                accs = [curves[s]["test_acc"][-1] for s in (0, 1)]
            else:
                for s in (0, 1):
                    rep = replays[s, p]
                    val = curves[s]["val_loss"]
                    assert (rep["stop_epoch"], rep["best_epoch"]) == tuple(simulate(val, p))
                    assert rep["test_acc"] == curves[s]["test_acc"][rep["best_epoch"] - 1]
                stops = [replays[s, p]["stop_epoch"] for s in (0, 1)]
                accs = [replays[s, p]["test_acc"] for s in (0, 1)]
            assert (row["stop_epoch"], row["stop_epoch_std"]) == pytest.approx(mean_std(stops))
            assert (row["test_acc"], row["test_acc_std"]) == pytest.approx(mean_std(accs))

    def test_each_run_is_fit_on_its_own_split(self, result):
        from regcourse.data import mnist1d_split
        from regcourse.experiments.core_problem import fit
        from regcourse.models import mnist1d_model

        data = mnist1d_split(TINY["n_val"], seed=1)
        out = fit(mnist1d_model("mlp", seed=1, hidden=TINY["hidden"]), data, epochs=TINY["epochs"],
                  lr=TINY["lr"], seed=1, curves=True)  # fmt: skip
        assert out["curves"] == result.extra["curves"][1]
        assert len(out["curves"]["val_loss"]) == TINY["epochs"]

    def test_claims_are_booleans_that_follow_the_curves(self, result):
        assert all(isinstance(v, bool) for v in result.claims.values())
        key = "a larger patience never stops earlier and never restores a worse validation loss"
        assert result.claims[key]  # holds at any setting: a larger patience sees more epochs
        rises = all(
            c["val_loss"][-1] - min(c["val_loss"]) > 0.1 for c in result.extra["curves"].values()
        )
        assert result.claims[next(k for k in result.claims if "rises" in k)] == rises

    def test_same_options_same_result(self, result):
        from regcourse.experiments import run

        again = run("early_stopping", **TINY)
        assert again.rows == result.rows and again.claims == result.claims

    def test_figure_marks_every_stop(self, result):
        ax = result.figure.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:2] == ["training loss", "validation loss"]
        assert sum(text.startswith("patience") for text in labels) == 3
        assert ax.get_ylim()[0] == 0

    @pytest.mark.parametrize(
        "option, err",
        [
            ({"patiences": "2,x"}, ValueError),
            ({"patiences": "0,3"}, ValueError),
            ({"patience": 0}, ValueError),
            ({"epochs": 1}, ValueError),
            ({"n_val": 0}, ValueError),
            ({"n_val": 3950}, ValueError),
            ({"label_noise": 1.0}, ValueError),
            ({"lr": 0.0}, ValueError),
            ({"seeds": 0}, ValueError),
            ({"hidden": 1.5}, TypeError),
        ],
    )
    def test_bad_options(self, option, err):
        from regcourse.experiments import run

        name = next(iter(option))
        with pytest.raises(err, match=name):
            run("early_stopping", **{**TINY, **option})

    def test_parse_patiences_needs_a_string(self):
        from regcourse.experiments.early_stopping import parse_patiences

        with pytest.raises(TypeError, match="patiences must be a str"):
            parse_patiences([2, 3])

    def test_cli_writes_files(self, tmp_path, capsys):
        from regcourse.__main__ import main

        args = ["run", "early_stopping", "--out", str(tmp_path), "--no-progress"]
        for k, v in TINY.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        assert main(args) == 0
        payload = json.loads((tmp_path / "early_stopping.json").read_text())
        assert payload["experiment"] == "early_stopping"
        assert [r["patience"] for r in payload["rows"]] == [1, 2, 3, None]
        assert (tmp_path / "early_stopping.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "wrote" in capsys.readouterr().out
