"""Tests of regcourse.experiments.combining (chapter "Choosing and combining regularizers")."""

from __future__ import annotations

import copy
import json
import math
import warnings

import matplotlib.pyplot as plt
import pytest
import torch
from scipy import stats
from torch import nn

from regcourse.data import mnist1d_split
from regcourse.dropout import Dropout
from regcourse.experiments import combining as C
from regcourse.experiments import run
from regcourse.models import build_model
from regcourse.recipe import solid_default
from regcourse.training import evaluate


@pytest.fixture(scope="module")
def bench():
    return mnist1d_split()


# --------------------------------------------------------------------------- data
class TestMnist1dSubset:
    def test_sizes_and_test_set(self, bench):
        data = C.mnist1d_subset(300, 100, seed=2)
        assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (300, 100, 1000)
        assert data.x_train.shape == (300, 40) and data.num_classes == 10
        assert torch.equal(data.x_test, bench.x_test) and torch.equal(data.y_test, bench.y_test)

    def test_train_and_val_are_disjoint_rows_of_the_benchmark_training_set(self, bench):
        data = C.mnist1d_subset(200, 50, seed=1)
        rows = {tuple(r.tolist()): i for i, r in enumerate(bench.x_train)}
        train = [rows[tuple(r.tolist())] for r in data.x_train]
        val = [rows[tuple(r.tolist())] for r in data.x_val]
        assert len(set(train)) == 200 and len(set(val)) == 50 and not set(train) & set(val)
        assert torch.equal(data.y_train, bench.y_train[train])
        assert torch.equal(data.y_val, bench.y_train[val])

    def test_seeded(self):
        a, b, c = (C.mnist1d_subset(100, 20, seed=s) for s in (3, 3, 4))
        assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
        assert not torch.equal(a.x_train, c.x_train)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"n_train": 10}, "n_train"),
            ({"n_train": 3995}, "n_train"),
            ({"n_train": 3000, "n_val": 1001}, "n_val"),
            ({"n_val": 5}, "n_val"),
            ({"seed": -1}, "seed"),
            ({"n_train": 100.5}, "n_train"),
        ],
    )
    def test_bad_inputs(self, kwargs, match):
        with pytest.raises((ValueError, TypeError), match=match):
            C.mnist1d_subset(**kwargs)


# --------------------------------------------------------------------------- augmentation
def _shift_of(row_in: torch.Tensor, row_out: torch.Tensor, max_shift: int) -> int:
    """The k in -max_shift..max_shift with roll(row_in, k) == row_out (independent check)."""
    found = [
        k
        for k in range(-max_shift, max_shift + 1)
        if torch.equal(torch.roll(row_in, k, dims=-1), row_out)
    ]
    assert found, "the output row is not a circular shift of the input row"
    return found[0]


class TestRandomShift1d:
    def test_every_row_is_a_circular_shift_within_range(self):
        x = torch.randn(64, 40, generator=torch.Generator().manual_seed(0))
        out = C.RandomShift1d(3)(x, torch.Generator().manual_seed(1))
        shifts = [_shift_of(a, b, 3) for a, b in zip(x, out)]
        assert min(shifts) >= -3 and max(shifts) <= 3

    def test_shifts_are_uniform(self):
        # 7 values, 7000 rows: each count is 1000 ± 5 standard errors (sd = sqrt(n p (1-p)))
        n, m = 7000, 3
        x = torch.arange(10.0).repeat(n, 1)
        out = C.RandomShift1d(m)(x, torch.Generator().manual_seed(5))
        k = (-out[:, 0].long()) % 10  # roll by k: out[i, 0] = x[i, -k mod 10] = -k mod 10
        k = torch.where(k > m, k - 10, k)  # back to -m..m
        assert k.min() >= -m and k.max() <= m
        counts = torch.bincount(k + m, minlength=2 * m + 1)
        sd = math.sqrt(n * (1 / 7) * (6 / 7))
        assert counts.sum() == n
        assert all(abs(c - n / 7) < 5 * sd for c in counts.tolist()), counts

    def test_channels_move_together(self):
        x = torch.randn(16, 3, 20, generator=torch.Generator().manual_seed(2))
        out = C.RandomShift1d(4)(x, torch.Generator().manual_seed(3))
        for a, b in zip(x, out):
            k = _shift_of(a[0], b[0], 4)
            assert torch.equal(torch.roll(a, k, dims=-1), b)

    def test_seeded_by_the_generator(self):
        x = torch.randn(32, 40)
        shift = C.RandomShift1d(3)
        a = shift(x, torch.Generator().manual_seed(7))
        b = shift(x, torch.Generator().manual_seed(7))
        assert torch.equal(a, b)

    def test_eval_mode_and_zero_shift_are_the_identity(self):
        x = torch.randn(8, 40)
        assert torch.equal(C.RandomShift1d(3).eval()(x, torch.Generator()), x)
        assert torch.equal(C.RandomShift1d(0)(x, torch.Generator()), x)

    def test_shift_augment_keeps_labels(self):
        x, y = torch.randn(8, 40), torch.arange(8)
        xa, ya = C.shift_augment(2)(x, y, torch.Generator().manual_seed(0))
        assert torch.equal(ya, y) and xa.shape == x.shape
        assert "max_shift=2" in repr(C.shift_augment(2))

    @pytest.mark.parametrize(
        "max_shift, error", [(-1, ValueError), (1.5, (TypeError, ValueError)), (True, TypeError)]
    )
    def test_bad_max_shift(self, max_shift, error):
        with pytest.raises(error, match="max_shift"):
            C.RandomShift1d(max_shift)

    @pytest.mark.parametrize("shape", [(40,), (2, 3, 4, 5)])
    def test_bad_shapes(self, shape):
        with pytest.raises(ValueError, match="x must have shape"):
            C.RandomShift1d(1)(torch.zeros(shape), None)

    def test_bad_generator(self):
        with pytest.raises(TypeError, match="generator"):
            C.RandomShift1d(1)(torch.zeros(2, 5), 42)


# --------------------------------------------------------------------------- the recipe
@pytest.fixture(scope="module")
def tiny():
    return C.mnist1d_subset(80, 40, seed=0)


class TestRecipeMlp:
    def test_is_solid_default_on_the_benchmark_mlp(self, tiny):
        fit = C.recipe_mlp(tiny, seed=1, epochs=2, hidden=16, batch_size=20)
        ref = solid_default(
            tiny,
            model="mlp",
            in_features=40,
            hidden=16,
            depth=2,
            augment=C.shift_augment(C.MAX_SHIFT),
            epochs=2,
            lr=C.LR,
            batch_size=20,
            seed=1,
        )
        a, b = fit.model.state_dict(), ref.model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert fit.history.val_loss == ref.history.val_loss

    def test_switches(self, tiny):
        fit = C.recipe_mlp(tiny, epochs=1, hidden=8, augment=None, dropout=0.0)
        assert fit.settings["augment"] == "none" and fit.settings["dropout"] == 0.0
        assert not any(isinstance(m, Dropout) for m in fit.model.modules())

    def test_unknown_switch(self, tiny):
        with pytest.raises(TypeError, match="mixup"):
            C.recipe_mlp(tiny, epochs=1, mixup=True)


# --------------------------------------------------------------------------- modes
def _net(seed=0, dropout=0.3):
    return build_model(
        "mlp", seed=seed, in_features=40, hidden=16, dropout=dropout, batch_norm=True
    )


class TestSetModes:
    @pytest.mark.parametrize("bn, do", [(True, True), (True, False), (False, True), (False, False)])
    def test_only_the_chosen_layers_train(self, bn, do):
        net = nn.Sequential(_net(), nn.Dropout(0.2))
        C.set_modes(net, batch_norm=bn, dropout=do)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                assert m.training is bn
            elif isinstance(m, (Dropout, nn.Dropout)):
                assert m.training is do
            else:
                assert m.training is False

    def test_both_computes_what_train_mode_computes_for_this_network(self):
        a, b = _net().train(), C.set_modes(_net(), batch_norm=True, dropout=True)
        x = torch.randn(16, 40, generator=torch.Generator().manual_seed(4))
        torch.manual_seed(9)
        out_a = a(x)
        torch.manual_seed(9)
        assert torch.equal(out_a, b(x))  # the same masks, the same batch statistics

    @pytest.mark.parametrize(
        "args, error, match",
        [
            (("net", True, True), TypeError, "model"),
            ((None, 1, True), TypeError, "batch_norm"),
            ((None, True, "yes"), TypeError, "dropout"),
        ],
    )
    def test_bad_inputs(self, args, error, match):
        model, bn, do = args
        with pytest.raises(error, match=match):
            C.set_modes(_net() if model is None else model, batch_norm=bn, dropout=do)


@pytest.fixture(scope="module")
def trained(tiny):
    return C.recipe_mlp(tiny, epochs=3, hidden=16, batch_size=20).model


class TestModeTable:
    def test_rows_and_the_model_untouched(self, trained, tiny):
        before = copy.deepcopy(trained.state_dict())
        rows = C.mode_table(trained, tiny.x_test, tiny.y_test, batch_sizes=(8,), passes=3)
        assert [(r["mode"], r["batch_size"]) for r in rows] == [
            ("eval()", 1000),
            ("train()", 8),
            ("train()", 1000),
            ("dropout only", 1000),
            ("batch norm only", 8),
            ("batch norm only", 1000),
        ]
        after = trained.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert not trained.training

    def test_eval_row_is_evaluate(self, trained, tiny):
        rows = C.mode_table(trained, tiny.x_test, tiny.y_test, passes=2)
        assert rows[0]["acc_mean"] == evaluate(trained, tiny.x_test, tiny.y_test)[1]
        assert rows[0]["acc_std"] == 0.0

    def test_batch_norm_only_is_the_model_with_batch_statistics(self, tiny):
        # without dropout, model.train() *is* batch norm in training mode: measure it by hand
        net = C.recipe_mlp(tiny, epochs=2, hidden=16, dropout=0.0).model
        rows = C.mode_table(net, tiny.x_test, tiny.y_test, batch_sizes=(100,), passes=1)
        by_hand = copy.deepcopy(net).train()
        with torch.no_grad():
            correct = sum(
                (by_hand(tiny.x_test[i : i + 100]).argmax(1) == tiny.y_test[i : i + 100]).sum()
                for i in range(0, 1000, 100)
            )
        row = next(r for r in rows if (r["mode"], r["batch_size"]) == ("batch norm only", 100))
        assert row["acc_mean"] == correct.item() / 1000

    def test_dropout_passes_differ_and_are_seeded(self, trained, tiny):
        a = C.mode_table(trained, tiny.x_test, tiny.y_test, passes=4, seed=3)
        b = C.mode_table(trained, tiny.x_test, tiny.y_test, passes=4, seed=3)
        row = next(r for r in a if r["mode"] == "dropout only")
        assert len(set(row["accs"])) > 1 and row["acc_std"] > 0
        assert a == b

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            ({"batch_sizes": (1,)}, ValueError, "batch_sizes"),
            ({"batch_sizes": 8}, TypeError, "batch_sizes"),
            ({"batch_sizes": ()}, TypeError, "batch_sizes"),
            ({"passes": 0}, ValueError, "passes"),
            ({"seed": -1}, ValueError, "seed"),
        ],
    )
    def test_bad_inputs(self, trained, tiny, kwargs, error, match):
        with pytest.raises(error, match=match):
            C.mode_table(trained, tiny.x_test, tiny.y_test, **kwargs)

    def test_lengths_must_match(self, trained, tiny):
        with pytest.raises(ValueError, match="same length"):
            C.mode_table(trained, tiny.x_test, tiny.y_test[:10])

    def test_figure_axis_starts_at_zero(self, trained, tiny):
        fig = C.plot_modes(C.mode_table(trained, tiny.x_test, tiny.y_test, passes=2))
        assert fig.axes[0].get_ylim()[0] == 0
        plt.close(fig)


# --------------------------------------------------------------------------- statistics
class TestPairedDifference:
    @pytest.mark.parametrize("seed, n", [(0, 3), (1, 5), (2, 10)])
    def test_matches_scipy(self, seed, n):
        g = torch.Generator().manual_seed(seed)
        a = torch.rand(n, generator=g, dtype=torch.float64).tolist()
        b = torch.rand(n, generator=g, dtype=torch.float64).tolist()
        d = C.paired_difference(a, b)
        ref = stats.ttest_rel(a, b)
        assert d.t == pytest.approx(float(ref.statistic), rel=1e-12)
        assert d.p == pytest.approx(float(ref.pvalue), rel=1e-10)
        assert d.mean == pytest.approx(sum(x - y for x, y in zip(a, b)) / n, rel=1e-12)
        assert d.n == n and d.n_positive + d.n_negative == n

    def test_no_spread(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # scipy warns and returns NaN here; we do not
            same = C.paired_difference([0.5, 0.6], [0.5, 0.6])
            shifted = C.paired_difference([1.5, 2.5], [1.0, 2.0])  # differences exactly 0.5
        assert (same.t, same.p, same.std) == (0.0, 1.0, 0.0)
        assert shifted.p == 0.0 and shifted.t == math.inf and shifted.n_positive == 2

    def test_accepts_numpy_and_tensor_scalars(self):
        import numpy as np

        d = C.paired_difference(np.array([0.2, 0.4, 0.3]), [torch.tensor(0.1), 0.2, 0.25])
        assert d.mean == pytest.approx((0.1 + 0.2 + 0.05) / 3)

    @pytest.mark.parametrize(
        "a, b, error, match",
        [
            ([0.1, 0.2], [0.1], ValueError, "same length"),
            ([0.1], [0.2], ValueError, "at least 2"),
            ([0.1, float("nan")], [0.1, 0.2], ValueError, "a"),
            ([0.1, 0.2], ["x", 0.2], TypeError, "b"),
        ],
    )
    def test_bad_inputs(self, a, b, error, match):
        with pytest.raises(error, match=match):
            C.paired_difference(a, b)


# --------------------------------------------------------------------------- experiments
TINY_ABLATION = {"seeds": 2, "n_train": 60, "n_val": 30, "epochs": 2, "hidden": 8, "batch_size": 20}


@pytest.fixture(scope="module")
def abl():
    return run("ablation", **TINY_ABLATION)


class TestAblation:
    def test_rows_are_the_arms(self, abl):
        assert [r["arm"] for r in abl.rows] == [*C.ABLATION_ARMS, C.NONE_ARM]
        assert len(abl.extra["per_seed"]) == 2 * len(abl.rows)

    def test_means_and_paired_differences_from_the_runs(self, abl):
        per = abl.extra["per_seed"]

        def col(arm, key):
            return [p[key] for p in per if p["arm"] == arm]

        for r in abl.rows:
            test = col(r["arm"], "test_acc")
            assert r["test_acc_mean"] == pytest.approx(sum(test) / 2)
            assert r["test_acc_std"] == pytest.approx(abs(test[0] - test[1]) / math.sqrt(2))
            if r["arm"] == "full recipe":
                assert "test_p" not in r
                continue
            for m in ("test", "train"):
                d = [
                    x - y for x, y in zip(col(r["arm"], f"{m}_acc"), col("full recipe", f"{m}_acc"))
                ]
                assert r[f"{m}_delta_mean"] == pytest.approx(sum(d) / 2, abs=1e-15)
                assert r[f"{m}_seeds_up"] == sum(v > 0 for v in d)
                want = "no detectable change" if r[f"{m}_p"] >= 0.05 else None
                if want:
                    assert r[f"{m}_verdict"] == want
                else:
                    assert r[f"{m}_verdict"] == ("raises" if sum(d) > 0 else "lowers")

    def test_reused_early_stopping_runs_equal_a_real_run(self, abl):
        reused = [p for p in abl.extra["per_seed"] if p["reused"]]
        fulls = {p["seed"]: p for p in abl.extra["per_seed"] if p["arm"] == "full recipe"}
        for p in abl.extra["per_seed"]:
            if p["arm"] == "no early stopping":
                assert p["reused"] == (fulls[p["seed"]]["best_epoch"] == TINY_ABLATION["epochs"])
        assert reused, "the tiny setting should exercise the reuse"
        for p in reused:
            data = C.mnist1d_subset(60, 30, seed=p["seed"])
            real = C.recipe_mlp(
                data, seed=p["seed"], epochs=2, hidden=8, batch_size=20, patience=None
            )
            assert (real.train_acc, real.test_acc) == (p["train_acc"], p["test_acc"])

    def test_claims_and_figure(self, abl):
        assert len(abl.claims) == 3 and all(isinstance(v, bool) for v in abl.claims.values())
        fig = abl.figure  # drawn by plot_ablation, closed so a notebook shows it only once
        assert len(fig.axes) == 3 and fig.axes[0].get_xlim()[0] == 0
        assert not plt.fignum_exists(fig.number)

    @pytest.mark.parametrize(
        "option", [{"seeds": 1}, {"alpha": 0.0}, {"alpha": 1.0}, {"n_train": 10}, {"n_val": 3980}]
    )
    def test_bad_options(self, option):
        with pytest.raises(ValueError, match=next(iter(option))):
            run("ablation", **{**TINY_ABLATION, **option})


@pytest.fixture(scope="module")
def res():
    return run("forgotten_eval", n_train=60, epochs=2, passes=2)


class TestForgottenEval:
    def test_rows_claims_and_model(self, res):
        assert [r["mode"] for r in res.rows][:2] == ["eval()", "train()"]
        assert all(isinstance(v, bool) for v in res.claims.values())
        assert res.claims["eval() gives the same accuracy in small batches as in one"]
        assert not res.extra["model"].training
        d = res.extra["data"]
        assert evaluate(res.extra["model"], d.x_test, d.y_test)[1] == res.rows[0]["acc_mean"]

    @pytest.mark.parametrize(
        "option", [{"batch_size": 1}, {"passes": 0}, {"n_train": 5}, {"seed": -2}]
    )
    def test_bad_options(self, option):
        with pytest.raises(ValueError, match=next(iter(option))):
            run("forgotten_eval", **{"n_train": 60, "epochs": 1, **option})


class TestCli:
    @pytest.mark.parametrize(
        "name, fmt, opts",
        [
            ("ablation", "json", TINY_ABLATION),
            ("forgotten_eval", "csv", {"n_train": 60, "epochs": 1, "passes": 2}),
        ],
    )
    def test_writes_table_and_figure(self, tmp_path, capsys, name, fmt, opts):
        from regcourse.__main__ import main

        args = ["run", name, "--out", str(tmp_path), "--format", fmt, "--no-progress"]
        for k, v in opts.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        assert main(args) == 0
        table = tmp_path / f"{name}.{fmt}"
        if fmt == "json":
            payload = json.loads(table.read_text())
            assert payload["experiment"] == name
            assert [r["arm"] for r in payload["rows"]] == [*C.ABLATION_ARMS, C.NONE_ARM]
        else:
            assert table.read_text().splitlines()[0] == "mode,batch_size,acc_mean,acc_std"
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "wrote" in capsys.readouterr().out

    def test_bad_option_exits_2(self, tmp_path, capsys):
        from regcourse.__main__ import main

        assert (
            main(["run", "ablation", "--out", str(tmp_path), "--seeds", "1", "--no-progress"]) == 2
        )
        assert "seeds" in capsys.readouterr().err
