"""Tests of regcourse.experiments.weight_decay: the λ grid parser, the data subset, which
parameters are decayed (against torch.optim.AdamW), the weight norm, ``fit`` (against a
hand-written loop, seeds, threads) and the ``wd_sweep`` experiment at tiny settings.
The full-size sweep and its claims are checked by nbval on book/weight_decay.ipynb.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from regcourse.data import mnist1d_split
from regcourse.experiments import get, run
from regcourse.experiments._common import one_thread
from regcourse.experiments.weight_decay import (
    FitResult,
    decay_split,
    fit,
    mnist1d_subset,
    param_groups,
    parse_floats,
    weight_norm,
)
from regcourse.models import build_model, mnist1d_model
from regcourse.training import evaluate, minibatches

TINY = dict(lams="0,1", seeds=2, n_train=120, n_val=60, epochs=2, batch_size=40)


def _norm_mlp(seed=0):
    return mnist1d_model("mlp", seed=seed, norm="layer")


class TestParseFloats:
    def test_string_and_sequence(self):
        assert parse_floats("0, 0.3,1", "lams") == [0.0, 0.3, 1.0]
        assert parse_floats((0, 0.5), "lams") == [0.0, 0.5]
        assert parse_floats([torch.tensor(0.25), 2], "lams") == [0.25, 2.0]  # 0-dim tensors too

    @pytest.mark.parametrize(
        "bad, error",
        [
            ("0,a", ValueError),
            ("1", ValueError),  # a single value is not a grid
            ("1,0.5", ValueError),  # decreasing
            ("0,1,1", ValueError),  # repeated
            ("-1,0", ValueError),  # below low
            ("0,nan", ValueError),
            (0.5, TypeError),
            ((0, "x"), TypeError),
        ],
    )
    def test_bad_grid_names_the_argument(self, bad, error):
        with pytest.raises(error, match="lams"):
            parse_floats(bad, "lams")


class TestMnist1dSubset:
    def test_sizes_and_disjoint_parts_of_the_benchmark(self):
        data = mnist1d_subset(300, 100)
        bench = mnist1d_split()
        assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (300, 100, 1000)
        assert torch.equal(data.x_test, bench.x_test)
        rows = {tuple(r) for r in bench.x_train.tolist()}
        train = {tuple(r) for r in data.x_train.tolist()}
        val = {tuple(r) for r in data.x_val.tolist()}
        assert train <= rows and val <= rows and not train & val

    @pytest.mark.parametrize(
        "kwargs, name",
        [
            (dict(n_train=5), "n_train"),
            (dict(n_train=3900, n_val=200), "n_train"),
            (dict(n_val=0), "n_val"),
            (dict(n_train=1.5), "n_train"),
        ],
    )
    def test_bad_sizes(self, kwargs, name):
        with pytest.raises((ValueError, TypeError), match=name):
            mnist1d_subset(**kwargs)


class TestDecaySplit:
    @pytest.mark.parametrize(
        "model",
        [
            _norm_mlp(),
            mnist1d_model("cnn", norm="batch"),
            build_model("cnn", norm="group"),
        ],
        ids=["mlp-layernorm", "cnn1d-batchnorm", "cnn-groupnorm"],
    )
    def test_matrices_and_kernels_are_decayed_the_rest_not(self, model):
        decay, no_decay = decay_split(model)
        names = [n for n, _ in model.named_parameters()]
        assert sorted(decay + no_decay) == sorted(names)
        assert [n for n in names if n in decay] == decay  # parameter order kept
        params = dict(model.named_parameters())
        assert decay and all(params[n].dim() >= 2 for n in decay)
        assert no_decay and all(params[n].dim() == 1 for n in no_decay)
        norms = (nn.LayerNorm, nn.BatchNorm1d, nn.GroupNorm)
        for mod_name, module in model.named_modules():
            if isinstance(module, norms):
                assert f"{mod_name}.weight" in no_decay and f"{mod_name}.bias" in no_decay

    def test_not_a_module(self):
        with pytest.raises(TypeError, match="model"):
            decay_split([torch.zeros(2, 2)])


class TestParamGroups:
    def test_groups_partition_the_parameters(self):
        model = _norm_mlp()
        decayed, exempt = param_groups(model, 0.3)
        assert decayed["weight_decay"] == 0.3 and exempt["weight_decay"] == 0.0
        ids = [id(p) for g in (decayed, exempt) for p in g["params"]]
        assert sorted(ids) == sorted(id(p) for p in model.parameters())
        assert all(p.dim() >= 2 for p in decayed["params"])

    def test_decay_all_is_one_group(self):
        model = _norm_mlp()
        (group,) = param_groups(model, 0.3, decay_all=True)
        assert group["weight_decay"] == 0.3
        assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]

    def test_empty_group_left_out(self):
        groups = param_groups(nn.Linear(3, 4, bias=False), 0.1)
        assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1

    def test_adamw_decays_only_the_weights(self):
        """With zero gradients, one AdamW step multiplies decayed tensors by 1 - lr·λ and
        leaves the others unchanged: what the groups promise, checked with torch."""
        model = _norm_mlp()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = torch.optim.AdamW(param_groups(model, 0.5), lr=0.1)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        decay, _ = decay_split(model)
        for name, p in model.named_parameters():
            want = before[name] * (1 - 0.1 * 0.5) if name in decay else before[name]
            torch.testing.assert_close(p.detach(), want, rtol=1e-6, atol=0)

    @pytest.mark.parametrize("bad, error", [(-0.1, ValueError), ("1", TypeError)])
    def test_bad_weight_decay(self, bad, error):
        with pytest.raises(error, match="weight_decay"):
            param_groups(nn.Linear(2, 2), bad)

    def test_bad_decay_all(self):
        with pytest.raises(TypeError, match="decay_all"):
            param_groups(nn.Linear(2, 2), 0.1, decay_all="yes")


class TestWeightNorm:
    def test_norm_of_the_decayed_weights_only(self):
        model = _norm_mlp()
        decay, _ = decay_split(model)
        params = dict(model.named_parameters())
        flat = torch.cat([params[n].detach().double().flatten() for n in decay])
        assert weight_norm(model) == pytest.approx(torch.linalg.vector_norm(flat).item(), rel=1e-12)
        with torch.no_grad():
            for name in params:
                if name not in decay:
                    params[name].add_(100.0)  # biases and gains do not count
        assert weight_norm(model) == pytest.approx(torch.linalg.vector_norm(flat).item(), rel=1e-12)


def _by_hand(model, data, *, lr, weight_decay, epochs, batch_size, seed):
    """The loop of ``fit``, written out as the chapter writes it."""
    params = dict(model.named_parameters())
    decay, no_decay = decay_split(model)
    opt = torch.optim.AdamW(
        [
            {"params": [params[n] for n in decay], "weight_decay": weight_decay},
            {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    shuffle = torch.Generator().manual_seed(seed)
    with one_thread():
        norms = [weight_norm(model)]
        for _ in range(epochs):
            model.train()
            for xb, yb in minibatches(data.x_train, data.y_train, batch_size, shuffle):
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            norms.append(weight_norm(model))
        train = evaluate(model, data.x_train, data.y_train)
        val = evaluate(model, data.x_val, data.y_val)
    return norms, train, val


@pytest.fixture(scope="module")
def data():
    return mnist1d_subset(120, 60)


class TestFit:
    def test_equals_the_loop_written_out(self, data):
        kw = dict(lr=0.02, weight_decay=1.0, epochs=3, batch_size=40, seed=1)
        a, b = mnist1d_model("mlp", seed=1), mnist1d_model("mlp", seed=1)
        result = fit(a, data, **kw)
        norms, (tl, ta), (vl, va) = _by_hand(b, data, **kw)
        assert isinstance(result, FitResult)
        assert result.norms == norms and len(norms) == 4
        assert (result.train_loss, result.train_acc, result.val_loss, result.val_acc) == (
            tl,
            ta,
            vl,
            va,
        )
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    def test_same_seed_same_result_other_seed_other_result(self, data):
        kw = dict(lr=0.02, weight_decay=0.5, epochs=2, batch_size=40)
        r1 = fit(mnist1d_model("mlp", seed=0), data, seed=3, **kw)
        r2 = fit(mnist1d_model("mlp", seed=0), data, seed=3, **kw)
        r3 = fit(mnist1d_model("mlp", seed=0), data, seed=4, **kw)
        assert r1 == r2
        assert r1.norms != r3.norms  # another mini-batch order

    def test_independent_of_the_thread_count_and_restores_it(self, data):
        kw = dict(lr=0.02, weight_decay=0.5, epochs=2, batch_size=40, seed=0)
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(2)
            two = fit(mnist1d_model("mlp", seed=0), data, **kw)
            assert torch.get_num_threads() == 2
            torch.set_num_threads(1)
            one = fit(mnist1d_model("mlp", seed=0), data, **kw)
        finally:
            torch.set_num_threads(before)
        assert one == two

    def test_weight_decay_shrinks_the_weights_and_decay_all_the_gains(self, data):
        kw = dict(lr=0.02, epochs=3, batch_size=40, seed=0)
        free = fit(mnist1d_model("mlp", seed=0), data, weight_decay=0.0, **kw)
        held = fit(mnist1d_model("mlp", seed=0), data, weight_decay=5.0, **kw)
        assert held.norms[-1] < free.norms[-1]
        gains = {}
        for decay_all in (False, True):
            model = _norm_mlp()
            fit(model, data, weight_decay=5.0, decay_all=decay_all, **kw)
            ln = [m.weight for m in model.modules() if isinstance(m, nn.LayerNorm)]
            gains[decay_all] = torch.cat(ln).detach().abs().mean().item()
        assert gains[True] < 0.9 * gains[False]

    @pytest.mark.parametrize("kwargs, name", [(dict(epochs=0), "epochs"), (dict(seed=-1), "seed")])
    def test_bad_arguments(self, data, kwargs, name):
        kw = dict(lr=0.02, weight_decay=0.1, epochs=1, batch_size=40) | kwargs
        with pytest.raises(ValueError, match=name):
            fit(mnist1d_model("mlp"), data, **kw)


@pytest.fixture(scope="module")
def tiny():
    return run("wd_sweep", **TINY)


class TestSweep:
    def test_registered_with_its_options(self):
        exp = get("wd_sweep")
        assert {"lams", "seeds", "n_train", "n_val", "epochs", "batch_size", "lr"} <= set(
            exp.options
        )

    def test_rows_runs_and_figure(self, tiny):
        assert [row["lam"] for row in tiny.rows] == [0.0, 1.0]
        assert set(tiny.extra["runs"]) == {(lam, s) for lam in (0.0, 1.0) for s in (0, 1)}
        for row in tiny.rows:
            runs = [tiny.extra["runs"][row["lam"], s] for s in (0, 1)]
            mean = sum(100 * r.val_acc for r in runs) / 2
            assert row["val_acc"] == pytest.approx(mean)
            assert 0 <= row["train_acc"] <= 100 and row["norm"] > 0
        assert all(len(v) == TINY["epochs"] + 1 for v in tiny.extra["norms"].values())
        assert isinstance(tiny.figure, Figure)
        assert len(tiny.claims) == 4 and all(isinstance(v, bool) for v in tiny.claims.values())

    def test_the_norm_claim_follows_the_rows(self, tiny):
        norms = [row["norm"] for row in tiny.rows]
        claim = "the final weight norm falls at every step of the λ grid"
        assert tiny.claims[claim] == (norms[0] > norms[1])

    def test_sequence_grid_equals_string_grid(self, tiny):
        again = run("wd_sweep", **(TINY | {"lams": (0.0, 1.0)}))
        assert again.rows == tiny.rows and again.options["lams"] == "0,1"

    @pytest.mark.parametrize("option, name", [({"seeds": 0}, "seeds"), ({"lams": "1,0"}, "lams")])
    def test_bad_options(self, option, name):
        with pytest.raises(ValueError, match=name):
            run("wd_sweep", **(TINY | option))
