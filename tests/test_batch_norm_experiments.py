"""Tests of regcourse.experiments.batch_norm: the data subset, the models, the training
loop the chapter writes out, and the two experiments (bn_noise, bn_batch_size)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from regcourse.data import mnist1d_split
from regcourse.experiments import Result, run
from regcourse.experiments.batch_norm import (
    bn_batch_size,
    fit,
    make_mlp,
    noise_figure,
    parse_sizes,
    subset,
)
from regcourse.normalization import BatchNorm1d, GhostBatchNorm1d, GroupNorm, LayerNorm


@pytest.fixture(scope="module")
def tiny():
    return subset(64)


class TestParseSizes:
    def test_increasing_distinct_integers(self):
        assert parse_sizes("2,8,32", "sizes") == [2, 8, 32]
        assert parse_sizes("0,4", "max_shifts", low=0) == [0, 4]

    @pytest.mark.parametrize(
        "text, exc, match",
        [
            ("8,2", ValueError, r"sizes must hold at least two distinct sizes in increasing order"),
            ("4", ValueError, r"at least two distinct sizes"),
            ("4,4", ValueError, r"at least two distinct sizes"),
            ("2,x", ValueError, r"sizes must be comma-separated integers, got '2,x'"),
            ("1,4", ValueError, r"sizes must be >= 2, got 1"),
            (None, TypeError, r"sizes must be a comma-separated string of integers, got NoneType"),
        ],
    )
    def test_rejects(self, text, exc, match):
        with pytest.raises(exc, match=match):
            parse_sizes(text, "sizes", low=2)


class TestSubset:
    def test_first_training_signals_and_the_whole_test_set(self):
        full, part = mnist1d_split(), subset(100)
        assert torch.equal(part.x_train, full.x_train[:100])
        assert torch.equal(part.y_train, full.y_train[:100])
        assert torch.equal(part.x_test, full.x_test) and torch.equal(part.y_test, full.y_test)
        assert len(part.x_val) == 0 and part.x_val.shape[1:] == full.x_train.shape[1:]

    def test_returns_copies(self):
        part = subset(20)
        part.x_train[0] += 1000.0
        assert not torch.equal(subset(20).x_train, part.x_train)

    @pytest.mark.parametrize(
        "n, exc, match",
        [(8, ValueError, r"n_train must be in \[16, 4000\], got 8"), (4001, ValueError, "n_train"),
         (1.5, TypeError, "n_train must be an integer")],
    )  # fmt: skip
    def test_rejects(self, n, exc, match):
        with pytest.raises(exc, match=match):
            subset(n)


class TestMakeMlp:
    @pytest.mark.parametrize(
        "norm, kwargs, layer",
        [
            ("batch", {}, BatchNorm1d),
            ("batch", {"bn_batch_size": 4}, GhostBatchNorm1d),
            ("layer", {}, LayerNorm),
            ("group", {}, GroupNorm),
        ],
    )
    def test_the_normalization_before_each_relu(self, norm, kwargs, layer):
        model = make_mlp(norm, seed=0, **kwargs)
        kinds = [type(m) for m in model]
        assert kinds.count(layer) == 2
        for i, kind in enumerate(kinds):
            if kind is layer:
                assert isinstance(model[i - 1], nn.Linear) and isinstance(model[i + 1], nn.ReLU)
        if kwargs:
            assert all(m.ghost_batch_size == 4 for m in model if isinstance(m, layer))

    def test_none_has_no_normalization(self):
        names = {type(m).__name__ for m in make_mlp("none")}
        assert not {n for n in names if "Norm" in n}

    def test_same_seed_same_linear_weights_whatever_the_norm(self):
        """A fair comparison: normalization layers draw no random numbers at initialisation."""
        linear = [
            [p for m in make_mlp(norm, seed=3) if isinstance(m, nn.Linear) for p in m.parameters()]
            for norm in ("none", "batch", "layer", "group")
        ]
        for other in linear[1:]:
            assert all(torch.equal(a, b) for a, b in zip(linear[0], other))
        a, b = make_mlp("none", seed=3), make_mlp("none", seed=4)
        assert not torch.equal(a[1].weight, b[1].weight)

    @pytest.mark.parametrize(
        "args, kwargs, exc, match",
        [
            (("instance",), {}, ValueError, "norm"),
            (("layer",), {"bn_batch_size": 4}, ValueError, "bn_batch_size applies to norm='batch'"),
            (("batch",), {"bn_batch_size": 1}, ValueError, r"bn_batch_size must be >= 2, got 1"),
            (("batch",), {"bn_batch_size": 2.5}, TypeError, "bn_batch_size must be an integer"),
        ],
    )
    def test_rejects(self, args, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            make_mlp(*args, **kwargs)


def _manual_loop(model, data, epochs, batch_size, lr, seed):
    """The loop the chapter writes out, step by step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    torch.set_num_threads(1)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(data.y_train), generator=generator)
        for idx in order.split(batch_size):
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


class TestFit:
    def test_equals_the_loop_written_out(self, tiny):
        threads = torch.get_num_threads()
        try:
            by_hand = _manual_loop(make_mlp("batch", seed=1), tiny, 3, 16, 0.01, 1)
        finally:
            torch.set_num_threads(threads)
        model = make_mlp("batch", seed=1)
        fit(model, tiny, epochs=3, batch_size=16, lr=0.01, seed=1)
        for (name, a), b in zip(by_hand.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), name

    def test_accuracies_are_measured_in_eval_mode(self, tiny):
        model = make_mlp("batch", seed=0)
        train_acc, test_acc = fit(model, tiny, epochs=2, batch_size=16, seed=0)
        assert not model.training
        with torch.no_grad():
            hits = (model(tiny.x_test).argmax(1) == tiny.y_test).sum().item()
        assert test_acc == hits / len(tiny.y_test)
        assert 0.0 <= train_acc <= 1.0

    def test_same_result_with_two_threads_and_restores_the_count(self, tiny):
        before = torch.get_num_threads()
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = make_mlp("layer", seed=2)
            results.append((fit(model, tiny, epochs=2, batch_size=16, seed=2), model))
            assert torch.get_num_threads() == threads
        torch.set_num_threads(before)
        (acc1, m1), (acc2, m2) = results
        assert acc1 == acc2
        assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))

    @pytest.mark.parametrize(
        "kwargs, exc, match",
        [
            ({"epochs": 0}, ValueError, r"epochs must be >= 1, got 0"),
            ({"batch_size": 1}, ValueError, r"batch_size must be >= 2, got 1"),
            ({"lr": 0.0}, ValueError, r"lr must be > 0"),
            ({"seed": -1}, ValueError, r"seed must be >= 0"),
            ({"epochs": 2.5}, TypeError, "epochs must be an integer"),
        ],
    )
    def test_rejects(self, tiny, kwargs, exc, match):
        with pytest.raises(exc, match=match):
            fit(make_mlp("none"), tiny, **kwargs)

    def test_rejects_a_model_or_data_of_the_wrong_kind(self, tiny):
        with pytest.raises(TypeError, match="model must be an nn.Module, got function"):
            fit(lambda x: x, tiny)
        with pytest.raises(
            TypeError, match="data must be a regcourse.data.Split .* without x_test"
        ):
            fit(make_mlp("none"), type("D", (), {"x_train": 0, "y_train": 0, "y_test": 0})())


class TestBnNoise:
    def test_tiny_run(self):
        res = run("bn_noise", batch_sizes="2,8,32", num_batches=60)
        assert isinstance(res, Result) and res.name == "bn_noise"
        assert [row["batch_size"] for row in res.rows] == [2, 8, 32]
        assert res.extra["num_examples"] == 4000 and res.extra["num_features"] == 100
        assert res.rows[0]["mean_noise"] > res.rows[1]["mean_noise"] > res.rows[2]["mean_noise"]
        assert len(res.claims) == 3 and isinstance(res.figure, Figure)

    @pytest.mark.parametrize(
        "options, match",
        [
            (dict(batch_sizes="2,2000"), r"batch_sizes must be at most 1000"),
            (dict(batch_sizes="1,4"), r"batch_sizes must be >= 2, got 1"),
            (dict(num_batches=5), r"num_batches must be >= 10, got 5"),
            (dict(tolerance=0.0), r"tolerance must be > 0"),
        ],
    )
    def test_bad_options(self, options, match):
        with pytest.raises(ValueError, match=match):
            run("bn_noise", **options)

    def test_noise_figure(self):
        fig = noise_figure([2, 4], [0.7, 0.5], [0.71, 0.5], [0.8, 0.6], -0.5)
        assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 3
        with pytest.raises(ValueError, match="one value per batch size"):
            noise_figure([2, 4, 8], [0.7, 0.5], [0.71, 0.5], [0.8, 0.6], -0.5)


TINY = dict(seeds=2, n_train=64, epochs=1, batch_size=16)


class TestBnBatchSize:
    def test_ghost_mode_rows_and_claims(self):
        res = bn_batch_size(bn_batch_sizes="2,16", norms="layer,group", **TINY)
        assert [r["setting"] for r in res.rows] == ["BN, B=2", "BN, B=16", "LN", "GN", "no norm"]
        assert [r["optimizer_batch_size"] for r in res.rows] == [16] * 5
        assert [r["bn_batch_size"] for r in res.rows] == [2, 16, "", "", ""]
        for row in res.rows:
            assert 0.0 <= row["test_acc_mean"] <= 1.0
            assert row["gap_mean"] == pytest.approx(row["train_acc_mean"] - row["test_acc_mean"])
        assert all(len(runs) == 2 for runs in res.extra["runs"].values())
        assert len(res.claims) == 6 and all(isinstance(v, bool) for v in res.claims.values())
        assert isinstance(res.figure, Figure) and len(res.figure.axes) == 2

    def test_ghost_size_equal_to_the_batch_is_plain_batch_norm(self):
        """The B = batch_size setting is ordinary batch norm: the same numbers as fit()."""
        res = bn_batch_size(bn_batch_sizes="4,16", norms="", baseline=False, **TINY)
        data = subset(64)
        accs = [fit(make_mlp("batch", seed=s), data, epochs=1, batch_size=16, seed=s)
                for s in range(2)]  # fmt: skip
        runs = res.extra["runs"]["BN, B=16"]
        assert [(r["train_acc"], r["test_acc"]) for r in runs] == accs

    def test_plain_mode_trains_every_setting_at_every_size(self):
        res = bn_batch_size(
            bn_batch_sizes="4,8", norms="layer", baseline=False, mode="plain", **TINY
        )
        rows = {r["setting"]: r for r in res.rows}
        assert set(rows) == {"BN, B=4", "BN, B=8", "LN, B=4", "LN, B=8"}
        assert rows["BN, B=4"]["optimizer_batch_size"] == 4
        assert rows["LN, B=8"]["optimizer_batch_size"] == 8

    @pytest.mark.parametrize(
        "options, exc, match",
        [
            (dict(mode="fast"), ValueError, "mode"),
            (
                dict(bn_batch_sizes="4,256"),
                ValueError,
                r"bn_batch_sizes must not exceed batch_size=128",
            ),
            (dict(bn_batch_sizes="4"), ValueError, "at least two distinct sizes"),
            (dict(norms="layer,instance"), ValueError, "norms"),
            (dict(norms="layer,layer"), ValueError, "norms must not repeat a name"),
            (dict(norms=3), TypeError, "norms must be a comma-separated string"),
            (dict(seeds=0), ValueError, r"seeds must be >= 1, got 0"),
            (dict(n_train=100), ValueError, r"n_train must be at least the largest batch"),
            (dict(baseline="yes"), TypeError, "baseline"),
            (dict(lr=-1.0), ValueError, "lr must be > 0"),
        ],
    )
    def test_bad_options(self, options, exc, match):
        with pytest.raises(exc, match=match):
            bn_batch_size(**options)

    def test_cli_writes_table_and_figure(self, tmp_path, capsys):
        from regcourse.__main__ import main

        args = ["run", "bn_batch_size", "--out", str(tmp_path), "--no-progress"]
        args += ["--bn-batch-sizes", "4,8", "--batch-size", "8", "--seeds", "1"]
        args += ["--epochs", "1", "--n-train", "32", "--norms", "layer", "--baseline", "false"]
        assert main(args) == 0
        payload = json.loads((tmp_path / "bn_batch_size.json").read_text())
        assert payload["options"]["baseline"] is False and payload["options"]["norms"] == "layer"
        assert [row["setting"] for row in payload["rows"]] == ["BN, B=4", "BN, B=8", "LN"]
        assert (tmp_path / "bn_batch_size.png").stat().st_size > 0
        assert "wrote" in capsys.readouterr().out
