"""Tests of the MNIST-1D training experiment of regcourse.experiments.depth: fit_residual
against a loop written out by hand, depth_mnist1d at tiny settings (structure,
determinism, pairing of the two methods, bad options), the figure, and depth_conventions
on MNIST-1D inputs. The full-size runs and their claims are checked by nbval on
book/dropconnect_depth.ipynb; the other depth experiments by tests/test_depth.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from regcourse.data import Split, mnist1d_split
from regcourse.experiments import get, run
from regcourse.experiments.depth import accuracy_curves_figure, depth_mnist1d, fit_residual
from regcourse.models import build_residual_mlp

TINY = dict(seeds=2, blocks=2, width=8, epochs=2, batch_size=1000, eval_every=1)


def _toy_split(n=60, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    return Split(x, y, x[:0], y[:0], x[:10], y[:10], k)


def _toy_model(survival_last=0.5, seed=0, gates=7):
    return build_residual_mlp(
        seed=seed, in_features=6, width=5, num_blocks=3, num_classes=3,
        survival_last=survival_last, generator=torch.Generator().manual_seed(gates),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    return depth_mnist1d(**TINY)


class TestFitResidual:
    def test_equals_the_loop_written_out(self):
        data = _toy_split()
        ours = _toy_model()
        out = fit_residual(ours, data, epochs=3, batch_size=16, lr=0.02, seed=5)

        hand = _toy_model()
        opt = torch.optim.Adam(hand.parameters(), lr=0.02)
        g = torch.Generator().manual_seed(5)
        for _ in range(3):
            hand.train()
            perm = torch.randperm(len(data.y_train), generator=g)
            for start in range(0, len(perm), 16):
                idx = perm[start : start + 16]
                loss = F.cross_entropy(hand(data.x_train[idx]), data.y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        hand.eval()
        with torch.no_grad():
            test_acc = (hand(data.x_test).argmax(1) == data.y_test).double().mean().item()
        for p, q in zip(ours.parameters(), hand.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        assert out["test_acc"] == pytest.approx(test_acc)
        assert out["curves"] == {"epoch": [], "train_acc": [], "test_acc": []}

    def test_the_gates_come_from_the_models_generator(self):
        """Same batch order, other gate generator: other weights; same both: same weights."""
        data = _toy_split()
        runs = []
        for gates in (7, 7, 8):
            m = _toy_model(gates=gates)
            fit_residual(m, data, epochs=2, batch_size=16, lr=0.02, seed=0)
            runs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
        assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])

    def test_eval_every_measures_those_epochs_and_the_last(self):
        out = fit_residual(_toy_model(), _toy_split(), epochs=7, batch_size=16, lr=0.01, seed=0,
                           eval_every=3)  # fmt: skip
        assert out["curves"]["epoch"] == [3, 6, 7]
        assert out["curves"]["test_acc"][-1] == out["test_acc"]
        assert out["curves"]["train_acc"][-1] == out["train_acc"]

    def test_thread_count_restored_and_model_left_in_eval(self):
        before = torch.get_num_threads()
        model = _toy_model()
        fit_residual(model, _toy_split(), epochs=1, batch_size=16, lr=0.01, seed=0)
        assert torch.get_num_threads() == before and not model.training

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(epochs=0), ValueError, "epochs"),
            (dict(batch_size=0), ValueError, "batch_size"),
            (dict(lr=0.0), ValueError, "lr"),
            (dict(seed=-1), ValueError, "seed"),
            (dict(eval_every=-1), ValueError, "eval_every"),
            (dict(epochs=1.5), TypeError, "epochs"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        args = dict(epochs=1, batch_size=16, lr=0.01, seed=0) | kwargs
        with pytest.raises(error, match=match):
            fit_residual(_toy_model(), _toy_split(), **args)

    def test_model_and_data_types(self):
        args = dict(epochs=1, batch_size=16, lr=0.01, seed=0)
        with pytest.raises(TypeError, match="model"):
            fit_residual(lambda x: x, _toy_split(), **args)
        with pytest.raises(TypeError, match="data"):
            fit_residual(_toy_model(), {"x_train": torch.zeros(2, 6)}, **args)


class TestDepthMnist1d:
    def test_registered(self):
        assert set(get("depth_mnist1d").options) == {
            "seeds", "blocks", "width", "survival_last", "mode", "epochs", "batch_size", "lr",
            "eval_every",
        }  # fmt: skip

    def test_rows_pair_the_methods_seed_by_seed(self, tiny):
        assert [(r["seed"], r["method"]) for r in tiny.rows] == [
            (0, "no stochastic depth"), (0, "stochastic depth"),
            (1, "no stochastic depth"), (1, "stochastic depth"),
        ]  # fmt: skip
        for r in tiny.rows:
            assert r["gap"] == pytest.approx(r["train_acc"] - r["test_acc"])

    def test_methods_share_weights_and_differ_only_by_the_gates(self, tiny):
        models = tiny.extra["models"]
        a, b = models["no stochastic depth", 0], models["stochastic depth", 0]
        assert a.survival.tolist() == [1.0, 1.0]
        assert b.survival.tolist() == pytest.approx([0.75, 0.5])
        fresh_a = build_residual_mlp(seed=0, in_features=40, width=8, num_blocks=2)
        fresh_b = build_residual_mlp(
            seed=0, in_features=40, width=8, num_blocks=2, survival_last=0.5
        )
        assert all(torch.equal(p, q) for p, q in zip(fresh_a.parameters(), fresh_b.parameters()))

    def test_rows_measure_the_returned_models(self, tiny):
        data = mnist1d_split()
        for r in tiny.rows:
            model = tiny.extra["models"][r["method"], r["seed"]]
            with torch.no_grad():
                acc = (model(data.x_test).argmax(1) == data.y_test).double().mean().item()
            assert r["test_acc"] == pytest.approx(acc)

    def test_summary_and_curves(self, tiny):
        for method, stats in tiny.extra["summary"].items():
            values = [r["test_acc"] for r in tiny.rows if r["method"] == method]
            assert stats["test_acc"][0] == pytest.approx(sum(values) / len(values))
        for c in tiny.extra["curves"].values():
            assert c["epoch"] == [1, 2]
        assert isinstance(tiny.figure, Figure) and tiny.figure.canvas.manager is None
        assert all(isinstance(v, bool) for v in tiny.claims.values()) and tiny.claims

    def test_deterministic(self, tiny):
        assert depth_mnist1d(**TINY).rows == tiny.rows

    def test_no_figure_without_curves(self):
        res = depth_mnist1d(**(TINY | dict(seeds=1, epochs=1, eval_every=0)))
        assert res.figure is None

    def test_through_run_and_the_cli_types(self):
        res = run("depth_mnist1d", **(TINY | dict(seeds=1, epochs=1, mode="test_scale")))
        assert res.options["mode"] == "test_scale"
        assert all(
            b.mode == "test_scale" for b in res.extra["models"]["stochastic depth", 0].blocks
        )

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(seeds=0), "seeds"),
            (dict(survival_last=1.0), "survival_last"),
            (dict(survival_last=0.0), "survival_last"),
            (dict(mode="both"), "mode"),
            (dict(blocks=0), "blocks"),
            (dict(eval_every=-2), "eval_every"),
        ],
    )
    def test_bad_options(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            depth_mnist1d(**(TINY | kwargs))


class TestFigure:
    def test_curves_figure(self, tiny):
        fig = accuracy_curves_figure(tiny.extra["curves"])
        ax = fig.axes[0]
        assert len(ax.lines) == 4 and ax.get_ylim()[0] == 0


class TestConventionsOnMnist1d:
    def test_claims_hold_with_mnist1d_inputs(self):
        res = run("depth_conventions", blocks=2, width=6, samples=200, examples=3)
        assert res.all_claims_hold, res.claims
        assert {(r["mode"], r["network"]) for r in res.rows} == {
            (m, n) for m in ("train_scale", "test_scale") for n in ("linear", "ReLU")
        }
