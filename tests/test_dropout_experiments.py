"""Tests of regcourse.experiments.dropout: the training subset, ``fit`` (against a
hand-written loop with the same masks, seeds, threads, eval-mode measurement) and the
``dropout_sweep`` experiment at tiny settings. The full-size sweep and its claims are
checked by nbval on book/dropout.ipynb.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from regcourse.data import mnist1d_split
from regcourse.experiments import get, run
from regcourse.experiments._common import one_thread
from regcourse.experiments.dropout import FitResult, fit, mnist1d_train_subset
from regcourse.models import mnist1d_model
from regcourse.training import evaluate, minibatches, seeded

TINY = dict(ps="0,0.5", seeds=2, n_train=100, epochs=2, batch_size=50)


@pytest.fixture(scope="module")
def data():
    return mnist1d_train_subset(100)


class TestTrainSubset:
    def test_the_first_training_examples_and_the_test_set(self):
        sub, bench = mnist1d_train_subset(250), mnist1d_split()
        assert torch.equal(sub.x_train, bench.x_train[:250])
        assert torch.equal(sub.y_train, bench.y_train[:250])
        assert torch.equal(sub.x_test, bench.x_test) and len(sub.y_val) == 0

    @pytest.mark.parametrize("bad, error", [(5, ValueError), (4001, ValueError), (2.5, TypeError)])
    def test_bad_size(self, bad, error):
        with pytest.raises(error, match="n_train"):
            mnist1d_train_subset(bad)


class TestFit:
    def test_equals_the_loop_written_out_masks_included(self, data):
        a = mnist1d_model("mlp", seed=2, dropout=0.3)
        b = mnist1d_model("mlp", seed=2, dropout=0.3)
        result = fit(a, data, lr=0.02, epochs=3, batch_size=25, seed=2)
        opt = torch.optim.Adam(b.parameters(), lr=0.02)
        shuffle = torch.Generator().manual_seed(2)
        with one_thread(), seeded(2):
            for _ in range(3):
                b.train()
                for xb, yb in minibatches(data.x_train, data.y_train, 25, shuffle):
                    loss = F.cross_entropy(b(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            want = (
                *evaluate(b, data.x_train, data.y_train),
                *evaluate(b, data.x_test, data.y_test),
            )
        assert isinstance(result, FitResult)
        assert (result.train_loss, result.train_acc, result.test_loss, result.test_acc) == want
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        assert result.gap == pytest.approx(result.train_acc - result.test_acc)

    def test_the_masks_depend_on_the_seed(self, data):
        kw = dict(lr=0.02, epochs=2, batch_size=25)
        r1 = fit(mnist1d_model("mlp", seed=0, dropout=0.5), data, seed=1, **kw)
        r2 = fit(mnist1d_model("mlp", seed=0, dropout=0.5), data, seed=1, **kw)
        r3 = fit(mnist1d_model("mlp", seed=0, dropout=0.5), data, seed=2, **kw)
        assert r1 == r2 and r1 != r3

    def test_leaves_torch_global_generator_alone(self, data):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        fit(mnist1d_model("mlp", seed=0, dropout=0.5), data, lr=0.02, epochs=1, batch_size=50)
        assert torch.equal(torch.rand(3), expected)

    def test_independent_of_the_thread_count(self, data):
        kw = dict(lr=0.02, epochs=2, batch_size=25, seed=0)
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(2)
            two = fit(mnist1d_model("mlp", seed=0, dropout=0.2), data, **kw)
            torch.set_num_threads(1)
            one = fit(mnist1d_model("mlp", seed=0, dropout=0.2), data, **kw)
        finally:
            torch.set_num_threads(before)
        assert one == two

    def test_measured_in_eval_mode(self, data):
        model = mnist1d_model("mlp", seed=0, dropout=0.5)
        result = fit(model, data, lr=0.02, epochs=1, batch_size=50)
        with torch.no_grad():
            acc = (model.eval()(data.x_test).argmax(1) == data.y_test).double().mean().item()
        assert result.test_acc == pytest.approx(acc)

    @pytest.mark.parametrize("kwargs, name", [(dict(epochs=0), "epochs"), (dict(seed=-2), "seed")])
    def test_bad_arguments(self, data, kwargs, name):
        with pytest.raises(ValueError, match=name):
            fit(mnist1d_model("mlp"), data, **(dict(lr=0.01, epochs=1, batch_size=10) | kwargs))


@pytest.fixture(scope="module")
def tiny():
    return run("dropout_sweep", **TINY)


class TestSweep:
    def test_registered(self):
        assert {"ps", "seeds", "n_train", "epochs", "batch_size", "lr"} <= set(
            get("dropout_sweep").options
        )

    def test_rows_are_means_of_the_runs(self, tiny):
        assert [row["p"] for row in tiny.rows] == [0.0, 0.5]
        for row in tiny.rows:
            runs = [tiny.extra["runs"][row["p"], s] for s in (0, 1)]
            assert row["gap"] == pytest.approx(sum(100 * r.gap for r in runs) / 2)
            assert row["train_acc"] - row["test_acc"] == pytest.approx(row["gap"])
        assert isinstance(tiny.figure, Figure)
        assert len(tiny.claims) == 4

    def test_the_gap_claim_follows_the_rows(self, tiny):
        gaps = [row["gap"] for row in tiny.rows]
        assert tiny.claims["the train-test gap shrinks at every step of the p grid"] == (
            gaps[0] > gaps[1]
        )

    @pytest.mark.parametrize(
        "option, name",
        [({"ps": "0,1"}, "ps"), ({"ps": "0.5,0.1"}, "ps"), ({"seeds": 0}, "seeds")],
    )
    def test_bad_options(self, option, name):
        with pytest.raises(ValueError, match=name):
            run("dropout_sweep", **(TINY | option))
