"""Tests of regcourse.depth (stochastic depth) and of the chapter's experiments.

One class per function, one behaviour per test. Random behaviour is checked with
tolerances of 5 standard errors and fixed ``torch.Generator`` seeds; expectations
of a block are also checked exactly, by enumerating its two outcomes.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regcourse.depth import (
    DropPath,
    ResidualBlock,
    ResidualMLP,
    apply_drop_path_mask,
    build_residual_mlp,
    drop_path,
    linear_decay_survival,
)
from regcourse.dropout import dropout_mask

Z = 5.0  # tolerance in standard errors
MODES = ("train_scale", "test_scale")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _nonzero(shape, seed=0, dtype=torch.float64) -> torch.Tensor:
    x = torch.randn(*shape, generator=_gen(seed), dtype=dtype) + 3.0
    assert bool((x != 0).all())
    return x


def _branch(width=5, seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width)).double()


BAD_P = [
    (-0.1, ValueError, r"p must be in \[0, 1\), got -0.1"),
    (1.0, ValueError, r"p must be in \[0, 1\), got 1$"),
    (float("nan"), ValueError, r"p must be finite"),
    ("0.2", TypeError, r"p must be a real number"),
]


class TestApplyDropPathMask:
    def test_worked_example(self):
        x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        out = apply_drop_path_mask(x, torch.tensor([1, 0, 1]), p=0.5)
        assert torch.equal(out, torch.tensor([[2.0, 4.0], [0.0, 0.0], [10.0, 12.0]]))

    def test_without_scaling(self):
        x = _nonzero((3, 2, 2))
        out = apply_drop_path_mask(x, torch.tensor([0, 1, 1]), p=0.5, scale_by_keep=False)
        assert torch.equal(out[1:], x[1:]) and bool((out[0] == 0).all())

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(mask=torch.ones(4)), ValueError, r"mask must have one entry per example \(3\)"),
            (dict(mask=torch.ones(3, 1)), ValueError, r"mask must have 1 dimensions, got 2"),
            (
                dict(mask=torch.tensor([1.0, 0.5, 0.0])),
                ValueError,
                r"mask must contain only 0s and 1s",
            ),
            (dict(x=torch.tensor(1.0)), ValueError, r"x must have a batch dimension"),
            (
                dict(x=torch.ones(3, 2, dtype=torch.int64)),
                TypeError,
                r"x must be a floating-point tensor",
            ),
            (dict(p=1.0), ValueError, r"p must be in \[0, 1\)"),
            (
                dict(scale_by_keep="yes"),
                TypeError,
                r"scale_by_keep must be a bool, got 'yes' \(str\)",
            ),
        ],
    )
    def test_bad_inputs(self, kwargs, error, match):
        args = dict(x=torch.ones(3, 2), mask=torch.ones(3), p=0.5)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            apply_drop_path_mask(**args)


class TestDropPath:
    def test_eval_returns_input(self):
        x = _nonzero((4, 3))
        assert drop_path(x, 0.5, training=False) is x

    def test_p_zero_returns_input(self):
        x = _nonzero((4, 3))
        assert drop_path(x, 0.0, generator=_gen()) is x

    def test_each_example_all_or_nothing(self):
        x = _nonzero((64, 3, 4, 4))
        out = drop_path(x, 0.5, generator=_gen(1))
        flat_out, flat_x = out.flatten(1), x.flatten(1)
        dropped = (flat_out == 0).all(1)
        kept = torch.isclose(flat_out, flat_x / 0.5, rtol=1e-12, atol=0).all(1)
        assert bool((dropped ^ kept).all())
        assert 0 < int(dropped.sum()) < 64

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
    def test_keep_rate_is_one_minus_p(self, p):
        n = 100_000
        out = drop_path(torch.ones(n, 2), p, generator=_gen(2))
        keep = (out[:, 0] != 0).double().mean().item()
        assert abs(keep - (1 - p)) < Z * math.sqrt(p * (1 - p) / n)

    def test_same_seed_same_mask_as_dropout_mask(self):
        x = _nonzero((10, 3))
        mask = dropout_mask((10,), 0.3, _gen(3), dtype=x.dtype)
        assert torch.equal(drop_path(x, 0.3, generator=_gen(3)), apply_drop_path_mask(x, mask, 0.3))

    @pytest.mark.parametrize("scale_by_keep, factor", [(True, 1.0), (False, 0.6)])
    def test_monte_carlo_mean(self, scale_by_keep, factor):
        # E[drop_path(x)] = x with scaling, (1 - p) x without
        p, n = 0.4, 20_000
        x = _nonzero((1, 3), seed=4)
        out = drop_path(x.expand(n, -1), p, scale_by_keep=scale_by_keep, generator=_gen(5))
        scale = 1 / (1 - p) if scale_by_keep else 1.0
        se = x.abs() * scale * math.sqrt(p * (1 - p) / n)
        assert bool(((out.mean(0) - factor * x[0]).abs() < Z * se[0]).all())

    def test_gradient_is_keep_over_survival(self):
        x = _nonzero((20, 3)).requires_grad_()
        drop_path(x, 0.25, generator=_gen(6)).sum().backward()
        mask = dropout_mask((20, 1), 0.25, _gen(6), dtype=x.dtype)
        assert torch.allclose(x.grad, (mask / 0.75).expand(-1, 3), rtol=1e-12, atol=0)

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            drop_path(torch.ones(3, 2), p)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(x=[1.0]), TypeError, r"x must be a torch.Tensor, got list"),
            (dict(x=torch.tensor(2.0)), ValueError, r"x must have a batch dimension"),
            (dict(x=torch.full((2, 2), float("inf"))), ValueError, r"x must be finite"),
            (dict(training="no"), TypeError, r"training must be a bool, got 'no' \(str\)"),
            (dict(scale_by_keep=0), TypeError, r"scale_by_keep must be a bool, got 0 \(int\)"),
            (dict(generator=1), TypeError, r"generator must be a torch.Generator or None, got int"),
        ],
    )
    def test_bad_inputs(self, kwargs, error, match):
        args = dict(x=torch.ones(3, 2), p=0.5)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            drop_path(**args)

    @settings(max_examples=30, deadline=None)
    @given(
        n=st.integers(1, 20),
        p=st.floats(0.0, 0.95),
        scale_by_keep=st.booleans(),
        seed=st.integers(0, 2**31 - 1),
    )
    def test_every_example_is_zero_or_scaled_input(self, n, p, scale_by_keep, seed):
        x = _nonzero((n, 2, 3), seed=seed % 1000)
        out = drop_path(x, p, scale_by_keep=scale_by_keep, generator=_gen(seed))
        scale = 1 / (1 - p) if scale_by_keep else 1.0
        for xi, oi in zip(x, out):
            assert bool((oi == 0).all()) or torch.allclose(oi, xi * scale, rtol=1e-12, atol=0)


class TestDropPathModule:
    def test_eval_is_identity(self):
        x = _nonzero((4, 3))
        assert DropPath(0.5).eval()(x) is x

    def test_train_drops_with_its_generator(self):
        x = _nonzero((30, 3))
        layer = DropPath(0.5, generator=_gen(7)).train()
        assert torch.equal(layer(x), drop_path(x, 0.5, generator=_gen(7)))

    def test_repr(self):
        assert repr(DropPath(0.1, scale_by_keep=False)) == "DropPath(p=0.1, scale_by_keep=False)"

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            DropPath(p)


class TestResidualBlock:
    def test_eval_train_scale_is_plain_residual(self):
        f, x = _branch(), _nonzero((4, 5))
        block = ResidualBlock(f, p=0.3, mode="train_scale").eval()
        assert torch.equal(block(x), x + f(x))

    def test_eval_test_scale_scales_branch_by_survival(self):
        f, x = _branch(), _nonzero((4, 5))
        block = ResidualBlock(f, p=0.3, mode="test_scale").eval()
        assert torch.allclose(block(x), x + 0.7 * f(x), rtol=1e-12, atol=1e-12)

    def test_dropped_block_is_identity(self):
        f, x = _branch(), _nonzero((4, 5))
        for mode in MODES:
            assert torch.equal(ResidualBlock(f, 0.3, mode)(x, torch.zeros(4)), x)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("p", [0.2, 0.5])
    def test_exact_expectation_equals_eval_output(self, mode, p):
        # E[y] = p * y(b = 0) + (1 - p) * y(b = 1), both outcomes computed by the block
        f, x = _branch(), _nonzero((4, 5))
        block = ResidualBlock(f, p, mode)
        with torch.no_grad():
            expected = p * block(x, torch.zeros(4)) + (1 - p) * block(x, torch.ones(4))
            assert torch.allclose(expected, block.eval()(x), rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("mode", MODES)
    def test_monte_carlo_mean_equals_eval_output(self, mode):
        p, n = 0.3, 20_000
        f, x = _branch(seed=1), _nonzero((1, 5), seed=2)
        block = ResidualBlock(f, p, mode, generator=_gen(8))
        with torch.no_grad():
            draws = block.train()(x.expand(n, -1))
            target = block.eval()(x)[0]
            fx = f(x)[0]
        scale = 1 / (1 - p) if mode == "train_scale" else 1.0
        se = fx.abs() * scale * math.sqrt(p * (1 - p) / n)
        assert bool(((draws.mean(0) - target).abs() < Z * se + 1e-12).all())

    def test_train_draws_one_decision_per_example(self):
        f, x = _branch(), _nonzero((200, 5))
        block = ResidualBlock(f, 0.5, "test_scale", generator=_gen(9)).train()
        with torch.no_grad():
            out, fx = block(x), f(x)
        skipped = (out == x).all(1)
        active = torch.isclose(out, x + fx, rtol=1e-12, atol=1e-12).all(1)
        assert bool((skipped ^ active).all())
        assert 50 < int(skipped.sum()) < 150

    def test_conventions_agree_up_to_rescaling_the_last_layer(self):
        # train_scale with f equals test_scale with f / (1 - p), in training and at inference
        p = 0.25
        f, x = _branch(seed=3), _nonzero((6, 5))
        g = _branch(seed=3)
        with torch.no_grad():
            g[2].weight /= 1 - p
            g[2].bias /= 1 - p
        a = ResidualBlock(f, p, "train_scale", generator=_gen(10))
        b = ResidualBlock(g, p, "test_scale", generator=_gen(10))
        with torch.no_grad():
            assert torch.allclose(a.train()(x), b.train()(x), rtol=1e-12, atol=1e-12)
            assert torch.allclose(a.eval()(x), b.eval()(x), rtol=1e-12, atol=1e-12)

    def test_p_zero_is_plain_residual_in_training(self):
        f, x = _branch(), _nonzero((4, 5))
        assert torch.equal(ResidualBlock(f, 0.0).train()(x), x + f(x))

    def test_repr_and_survival(self):
        block = ResidualBlock(nn.Identity(), p=0.2, mode="test_scale")
        assert "p=0.2, mode='test_scale'" in repr(block)
        assert block.survival == pytest.approx(0.8)

    def test_branch_must_keep_shape(self):
        block = ResidualBlock(nn.Linear(5, 3).double(), p=0.2)
        with pytest.raises(
            ValueError, match=r"branch must return a tensor of its input's shape \(4, 5\)"
        ):
            block(_nonzero((4, 5)))

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(branch=lambda x: x), TypeError, r"branch must be an nn.Module, got function"),
            (
                dict(mode="scale"),
                ValueError,
                r"mode must be one of \['train_scale', 'test_scale'\], got 'scale'",
            ),
            (dict(p=1.0), ValueError, r"p must be in \[0, 1\)"),
            (
                dict(generator="g"),
                TypeError,
                r"generator must be a torch.Generator or None, got str",
            ),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        args = dict(branch=nn.Identity(), p=0.2)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            ResidualBlock(**args)


class TestLinearDecaySurvival:
    def test_values_of_huang_et_al(self):
        # L = 4, p_L = 0.5: p_l = 1 - l/4 * 0.5
        expected = torch.tensor([0.875, 0.75, 0.625, 0.5], dtype=torch.float64)
        assert torch.allclose(linear_decay_survival(4, 0.5), expected, rtol=0, atol=1e-15)

    def test_fifty_four_blocks_of_the_resnet_110(self):
        s = linear_decay_survival(54, 0.5)
        assert s[0].item() == pytest.approx(1 - 0.5 / 54) and s[-1].item() == pytest.approx(0.5)
        assert s.sum().item() == pytest.approx(
            54 - 0.5 * 55 / 2
        )  # expected number of active blocks

    def test_constant_decrease(self):
        d = linear_decay_survival(7, 0.2).diff()
        assert torch.allclose(d, torch.full_like(d, -0.8 / 7), rtol=0, atol=1e-14)

    def test_survival_last_one_means_no_dropping(self):
        assert bool((linear_decay_survival(5, 1.0) == 1).all())

    def test_single_block(self):
        assert linear_decay_survival(1, 0.3).tolist() == [pytest.approx(0.3)]

    @pytest.mark.parametrize(
        "args, error, match",
        [
            ((0, 0.5), ValueError, r"num_blocks must be >= 1, got 0"),
            ((2.5, 0.5), TypeError, r"num_blocks must be an integer"),
            ((4, 0.0), ValueError, r"survival_last must be in \(0, 1\], got 0"),
            ((4, 1.5), ValueError, r"survival_last must be in \(0, 1\], got 1.5"),
            ((4, "0.5"), TypeError, r"survival_last must be a real number"),
        ],
    )
    def test_bad_inputs(self, args, error, match):
        with pytest.raises(error, match=match):
            linear_decay_survival(*args)


class TestResidualMLP:
    def test_output_shape_on_digit_images(self):
        model = build_residual_mlp(seed=0, width=16, num_blocks=3)
        assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)

    def test_blocks_follow_linear_decay(self):
        model = ResidualMLP(num_blocks=4, survival_last=0.5, mode="test_scale")
        assert torch.allclose(model.survival, linear_decay_survival(4, 0.5))
        assert all(b.mode == "test_scale" for b in model.blocks)

    def test_seeded_build_is_deterministic_and_leaves_global_rng(self):
        state = torch.random.get_rng_state()
        a, b = build_residual_mlp(seed=3, width=8), build_residual_mlp(seed=3, width=8)
        assert torch.equal(torch.random.get_rng_state(), state)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    @pytest.mark.parametrize("mode", MODES)
    def test_linear_network_expectation_is_eval_output(self, mode):
        # a linear residual net: E over all 2^L keep patterns equals the inference output
        L = 3
        model = build_residual_mlp(
            seed=1,
            dtype=torch.float64,
            width=6,
            num_blocks=L,
            survival_last=0.4,
            mode=mode,
            activation="identity",
        )
        x = _nonzero((2, 64), seed=5)
        s = model.survival
        total = torch.zeros(2, 10, dtype=torch.float64)
        with torch.no_grad():
            for code in range(2**L):
                bits = torch.tensor([(code >> i) & 1 for i in range(L)])
                prob = torch.where(bits == 1, s, 1 - s).prod()
                total += prob * model(x, masks=bits.view(L, 1).expand(L, 2))
            assert torch.allclose(total, model.eval()(x), rtol=1e-10, atol=1e-10)

    def test_all_ones_masks_without_dropping_is_eval_output(self):
        model = build_residual_mlp(
            seed=2, dtype=torch.float64, width=6, num_blocks=3, survival_last=1.0
        )
        x = _nonzero((2, 64))
        assert torch.allclose(
            model(x, masks=torch.ones(3, 2)), model.eval()(x), rtol=1e-12, atol=1e-12
        )

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(num_blocks=0), ValueError, r"num_blocks must be >= 1"),
            (dict(survival_last=0.0), ValueError, r"survival_last must be in \(0, 1\]"),
            (dict(mode="train"), ValueError, r"mode must be one of"),
            (
                dict(activation="tanh"),
                ValueError,
                r"activation must be one of \['identity', 'relu'\]",
            ),
            (dict(width=0), ValueError, r"width must be >= 1"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            ResidualMLP(**kwargs)

    def test_bad_masks(self):
        model = ResidualMLP(width=4, num_blocks=2)
        with pytest.raises(ValueError, match=r"masks must have shape \(num_blocks, N\) = \(2, 3\)"):
            model(torch.zeros(3, 64), masks=torch.ones(3, 2))

    def test_bad_dtype(self):
        with pytest.raises(TypeError, match=r"dtype must be a floating-point torch.dtype"):
            build_residual_mlp(dtype=torch.int64)


class TestExperiments:
    def test_dropconnect_cost(self):
        from regcourse.experiments import run

        res = run("dropconnect_cost", in_features=48, out_features=16, batch_size=8, repeats=2)
        counts = {r["method"]: r["random_numbers"] for r in res.rows}
        assert counts["dropout (outputs)"] == 8 * 16
        assert counts["DropConnect, one mask per batch"] == 16 * 48
        assert counts["DropConnect, one mask per example"] == 8 * 16 * 48
        count_claims = [v for k, v in res.claims.items() if "slow" not in k]
        assert len(count_claims) == 2 and all(count_claims)
        assert res.extra["time_ratio"] > 0

    def test_depth_conventions(self):
        from regcourse.experiments import run

        res = run("depth_conventions", blocks=3, width=8, samples=400, examples=2)
        assert {(r["mode"], r["network"]) for r in res.rows} == {
            (m, n) for m in MODES for n in ("linear", "ReLU")
        }
        assert res.all_claims_hold, res.claims
        assert res.extra["expected_active"] == pytest.approx(3 - 0.5 * 4 / 2)
        assert res.figure is not None

    def test_depth_digits(self):
        from regcourse.experiments import run

        res = run("depth_digits", blocks=2, width=16, epochs=2, seeds=1)
        assert [r["method"] for r in res.rows] == ["no stochastic depth", "stochastic depth"]
        assert all(0 <= r["train_acc"] <= 1 and 0 <= r["val_acc"] <= 1 for r in res.rows)
        assert set(res.extra["summary"]) == {"no stochastic depth", "stochastic depth"}

    @pytest.mark.parametrize(
        "name, option, value, match",
        [
            ("dropconnect_cost", "p", 0.0, r"p must be in \(0, 1\)"),
            ("depth_conventions", "blocks", 20, r"blocks must be in \[1, 12\]"),
            ("depth_conventions", "samples", 1, r"samples must be >= 2"),
            ("depth_digits", "survival_last", 1.0, r"survival_last must be in \(0, 1\)"),
        ],
    )
    def test_bad_options(self, name, option, value, match):
        from regcourse.experiments import run

        with pytest.raises(ValueError, match=match):
            run(name, **{option: value})

    def test_cli_writes_table_and_figure(self, tmp_path):
        from regcourse.__main__ import main

        code = main(
            [
                "run",
                "depth_conventions",
                "--out",
                str(tmp_path),
                "--no-progress",
                "--blocks",
                "2",
                "--width",
                "4",
                "--samples",
                "100",
                "--examples",
                "1",
            ]
        )
        assert code == 0
        payload = json.loads((tmp_path / "depth_conventions.json").read_text())
        assert payload["experiment"] == "depth_conventions" and len(payload["rows"]) == 4
        assert (tmp_path / "depth_conventions.png").stat().st_size > 0

    def test_cli_csv(self, tmp_path):
        from regcourse.__main__ import main

        code = main(
            [
                "run",
                "dropconnect_cost",
                "--out",
                str(tmp_path),
                "--format",
                "csv",
                "--no-progress",
                "--in-features",
                "32",
                "--out-features",
                "8",
                "--batch-size",
                "4",
                "--repeats",
                "1",
            ]
        )
        assert code == 0
        lines = (tmp_path / "dropconnect_cost.csv").read_text().splitlines()
        assert lines[0].startswith("method,") and len(lines) == 5
