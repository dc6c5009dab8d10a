"""Tests of regcourse.normalization: one class per function, one behaviour per test.

Batch norm is cross-checked against ``torch.nn.functional.batch_norm`` and
``torch.nn.BatchNorm1d`` in float64 (outputs, running statistics, and the
gradients with respect to the input, γ and β separately); the noise
measurement is checked against the ``1/√B`` law with a tolerance derived from
the number of sampled batches.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from regcourse.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GhostBatchNorm1d,
    GroupNorm,
    LayerNorm,
    batch_norm,
    batch_stat_noise,
    ghost_batch_norm,
    group_norm,
    layer_norm,
    loglog_slope,
)

D = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, scale=1.0, shift=0.0) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=D) * scale + shift


def _params(c: int, seed: int = 1):
    """Random γ, β and running statistics for c channels (float64)."""
    g = _gen(seed)
    weight = torch.rand(c, generator=g, dtype=D) + 0.5
    bias = torch.randn(c, generator=g, dtype=D)
    running_mean = torch.randn(c, generator=g, dtype=D)
    running_var = torch.rand(c, generator=g, dtype=D) + 0.5
    return weight, bias, running_mean, running_var


SHAPES = [(8, 3), (2, 5), (16, 4, 7), (4, 3, 5, 6)]


class TestBatchNormFunction:
    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("momentum", [0.0, 0.1, 0.5, 1.0])
    def test_training_output_matches_torch(self, shape, momentum):
        x = _randn(*shape, scale=2.0, shift=0.5)
        w, b, rm, rv = _params(shape[1])
        ours = batch_norm(x, rm.clone(), rv.clone(), w, b, True, momentum, 1e-5)
        theirs = F.batch_norm(x, rm.clone(), rv.clone(), w, b, True, momentum, 1e-5)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("momentum", [0.0, 0.1, 0.5, 1.0])
    def test_running_stats_after_several_steps_match_torch(self, shape, momentum):
        w, b, rm, rv = _params(shape[1])
        rm_ours, rv_ours, rm_torch, rv_torch = rm.clone(), rv.clone(), rm.clone(), rv.clone()
        for step in range(5):
            x = _randn(*shape, seed=10 + step, scale=3.0, shift=-1.0)
            batch_norm(x, rm_ours, rv_ours, w, b, True, momentum)
            F.batch_norm(x, rm_torch, rv_torch, w, b, True, momentum)
        torch.testing.assert_close(rm_ours, rm_torch, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(rv_ours, rv_torch, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("shape", SHAPES)
    def test_eval_output_matches_torch(self, shape):
        x = _randn(*shape, seed=3)
        w, b, rm, rv = _params(shape[1])
        ours = batch_norm(x, rm, rv, w, b, False)
        theirs = F.batch_norm(x, rm, rv, w, b, False)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)

    def test_eval_formula(self):
        x = _randn(6, 3, seed=4)
        w, b, rm, rv = _params(3)
        expected = w * (x - rm) / torch.sqrt(rv + 1e-3) + b
        torch.testing.assert_close(batch_norm(x, rm, rv, w, b, False, eps=1e-3), expected)

    def test_training_uses_biased_batch_variance(self):
        x = _randn(5, 2, seed=5)
        out = batch_norm(x, None, None, training=True, eps=1e-5)
        mu = x.sum(0) / 5
        var_biased = ((x - mu) ** 2).sum(0) / 5
        torch.testing.assert_close(out, (x - mu) / torch.sqrt(var_biased + 1e-5))

    def test_running_var_stores_unbiased_variance(self):
        x = _randn(5, 2, seed=6)
        rm, rv = torch.zeros(2, dtype=D), torch.ones(2, dtype=D)
        batch_norm(x, rm, rv, training=True, momentum=1.0)
        mu = x.sum(0) / 5
        torch.testing.assert_close(rm, mu)
        torch.testing.assert_close(rv, ((x - mu) ** 2).sum(0) / 4)

    def test_momentum_update_by_hand(self):
        x = torch.tensor([[1.0], [2.0], [3.0], [6.0]], dtype=D)
        rm, rv = torch.tensor([1.0], dtype=D), torch.tensor([2.0], dtype=D)
        batch_norm(x, rm, rv, training=True, momentum=0.25)
        # batch mean 3, unbiased variance (4 + 1 + 0 + 9) / 3 = 14/3
        assert rm.item() == pytest.approx(0.75 * 1.0 + 0.25 * 3.0)
        assert rv.item() == pytest.approx(0.75 * 2.0 + 0.25 * 14 / 3)

    def test_eval_leaves_running_stats_unchanged(self):
        w, b, rm, rv = _params(3)
        rm0, rv0 = rm.clone(), rv.clone()
        batch_norm(_randn(4, 3), rm, rv, w, b, False)
        assert torch.equal(rm, rm0) and torch.equal(rv, rv0)

    def test_without_running_stats_matches_torch(self):
        x = _randn(7, 4, seed=8)
        torch.testing.assert_close(
            batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True)
        )

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("training", [True, False])
    def test_gradients_match_torch(self, shape, training):
        x0 = _randn(*shape, seed=9, scale=1.5)
        w0, b0, rm, rv = _params(shape[1])
        upstream = _randn(*shape, seed=11)

        def grads(fn):
            x, w, b = (t.clone().requires_grad_() for t in (x0, w0, b0))
            (fn(x, rm.clone(), rv.clone(), w, b, training) * upstream).sum().backward()
            return x.grad, w.grad, b.grad

        gx, gw, gb = grads(batch_norm)
        tx, tw, tb = grads(F.batch_norm)
        torch.testing.assert_close(gx, tx, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gw, tw, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gb, tb, rtol=1e-10, atol=1e-12)

    def test_gradient_matches_finite_differences(self):
        x = _randn(5, 3, seed=12).requires_grad_()
        w, b, _, _ = (t.requires_grad_() if i < 2 else t for i, t in enumerate(_params(3)))
        assert torch.autograd.gradcheck(
            lambda x, w, b: batch_norm(x, None, None, w, b, True), (x, w, b)
        )

    def test_input_gradient_sums_to_zero_per_channel(self):
        # shifting a channel's inputs by a constant does not change x-hat
        x = _randn(6, 3, seed=13).requires_grad_()
        (batch_norm(x, None, None, training=True) * _randn(6, 3, seed=14)).sum().backward()
        torch.testing.assert_close(x.grad.sum(0), torch.zeros(3, dtype=D), atol=1e-12, rtol=0)

    def test_float32_matches_torch(self):
        x = torch.randn(32, 8, generator=_gen(15))
        rm, rv = torch.zeros(8), torch.ones(8)
        torch.testing.assert_close(
            batch_norm(x, rm.clone(), rv.clone(), training=True),
            F.batch_norm(x, rm.clone(), rv.clone(), training=True),
        )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(4, 40),
    c=st.integers(1, 6),
    scale=st.floats(0.2, 20.0),
    shift=st.floats(-50.0, 50.0),
    seed=st.integers(0, 10_000),
)
def test_training_output_is_standardised(n, c, scale, shift, seed):
    """γ = 1, β = 0: every channel of the training output has mean 0 and biased variance ≈ 1."""
    x = _randn(n, c, seed=seed, scale=scale, shift=shift)
    assume(bool((x.var(0, unbiased=False) > 1e-2).all()))
    y = batch_norm(x, None, None, torch.ones(c, dtype=D), torch.zeros(c, dtype=D), training=True)
    assert torch.allclose(y.mean(0), torch.zeros(c, dtype=D), atol=1e-9)
    var = y.var(0, unbiased=False)
    assert bool((var <= 1).all())  # σ²/(σ² + ε) < 1
    assert torch.allclose(var, torch.ones(c, dtype=D), atol=1e-3)


BAD_FUNCTION_ARGS = [
    (dict(x=[[1.0, 2.0]]), TypeError, r"x must be a torch.Tensor"),
    (dict(x=torch.ones(4)), ValueError, r"x must have 2 or 3 or 4 dimensions, got 1"),
    (dict(x=torch.ones(4, 3, dtype=torch.long)), TypeError, r"x must be a floating-point tensor"),
    (dict(x=torch.tensor([[1.0], [float("nan")]])), ValueError, r"x must be finite"),
    (
        dict(x=torch.ones(1, 3), training=True),
        ValueError,
        r"Expected more than 1 value per channel when training, got input size torch.Size\(\[1, 3\]\)",
    ),
    (
        dict(x=torch.ones(1, 3, 1), training=True),
        ValueError,
        r"Expected more than 1 value per channel",
    ),
    (dict(momentum=1.5), ValueError, r"momentum must be in \[0, 1\], got 1.5"),
    (dict(momentum=-0.1), ValueError, r"momentum must be in \[0, 1\], got -0.1"),
    (dict(momentum="0.1"), TypeError, r"momentum must be a real number"),
    (dict(eps=0.0), ValueError, r"eps must be > 0, got 0"),
    (dict(eps=-1e-5), ValueError, r"eps must be > 0"),
    (dict(training=1), TypeError, r"training must be a bool, got 1 \(int\)"),
    (dict(running_mean=torch.zeros(4)), ValueError, r"running_mean must have 3 elements .* got 4"),
    (dict(running_var=torch.ones(2)), ValueError, r"running_var must have 3 elements .* got 2"),
    (dict(weight=torch.ones(3, 1)), ValueError, r"weight must have 1 dimensions, got 2"),
    (dict(bias=torch.zeros(5)), ValueError, r"bias must have 3 elements .* got 5"),
    (dict(running_var=None), ValueError, r"running_mean and running_var must either both be None"),
    (
        dict(running_mean=None, running_var=None, training=False),
        ValueError,
        r"running_mean and running_var must be given when training=False",
    ),
]


@pytest.mark.parametrize("override, exc, match", BAD_FUNCTION_ARGS)
def test_batch_norm_rejects_bad_input(override, exc, match):
    args = dict(
        x=torch.randn(4, 3),
        running_mean=torch.zeros(3),
        running_var=torch.ones(3),
        weight=torch.ones(3),
        bias=torch.zeros(3),
        training=True,
        momentum=0.1,
        eps=1e-5,
    )
    args.update(override)
    with pytest.raises(exc, match=match):
        batch_norm(**args)


def _pair(c: int, **kwargs):
    """Our BatchNorm1d and torch's, float64, with the same random γ and β."""
    ours, theirs = BatchNorm1d(c, **kwargs).double(), nn.BatchNorm1d(c, **kwargs).double()
    if ours.affine:
        w, b, _, _ = _params(c, seed=21)
        with torch.no_grad():
            for layer in (ours, theirs):
                layer.weight.copy_(w)
                layer.bias.copy_(b)
    return ours, theirs


class TestBatchNorm1dModule:
    @pytest.mark.parametrize("shape", [(8, 4), (3, 4), (5, 4, 6)])
    @pytest.mark.parametrize("momentum", [0.1, 0.7, None])
    def test_train_then_eval_matches_torch(self, shape, momentum):
        ours, theirs = _pair(shape[1], momentum=momentum)
        for step in range(4):
            x = _randn(*shape, seed=30 + step, scale=2.0, shift=1.0)
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours.running_mean, theirs.running_mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours.running_var, theirs.running_var, rtol=1e-12, atol=1e-12)
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4
        ours.eval()
        theirs.eval()
        x = _randn(*shape, seed=40)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
        assert int(ours.num_batches_tracked) == 4

    def test_cumulative_average_when_momentum_is_none(self):
        layer = BatchNorm1d(2, momentum=None).double()
        batches = [_randn(6, 2, seed=s) for s in range(3)]
        for x in batches:
            layer(x)
        torch.testing.assert_close(
            layer.running_mean, torch.stack([x.mean(0) for x in batches]).mean(0)
        )
        torch.testing.assert_close(
            layer.running_var, torch.stack([x.var(0) for x in batches]).mean(0)
        )

    @pytest.mark.parametrize("training", [True, False])
    def test_gradients_match_torch(self, training):
        ours, theirs = _pair(5)
        ours.train(training)
        theirs.train(training)
        x0, upstream = _randn(7, 5, seed=50), _randn(7, 5, seed=51)
        x1, x2 = x0.clone().requires_grad_(), x0.clone().requires_grad_()
        (ours(x1) * upstream).sum().backward()
        (theirs(x2) * upstream).sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-10, atol=1e-12)

    def test_state_dict_is_interchangeable_with_torch(self):
        ours, theirs = _pair(3)
        theirs(_randn(10, 3, seed=60))
        ours.load_state_dict(theirs.state_dict())
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        ours.eval()
        theirs.eval()
        x = _randn(4, 3, seed=61)
        torch.testing.assert_close(ours(x), theirs(x))

    def test_initial_state_matches_torch(self):
        ours, theirs = BatchNorm1d(4), nn.BatchNorm1d(4)
        for key, value in theirs.state_dict().items():
            assert torch.equal(ours.state_dict()[key], value), key

    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"momentum": None, "eps": 1e-3},
            {"affine": False, "track_running_stats": False},
            {"bias": False},
        ],
    )
    def test_repr_matches_torch(self, kwargs):
        assert repr(BatchNorm1d(6, **kwargs)) == repr(nn.BatchNorm1d(6, **kwargs))

    def test_eval_output_of_an_example_does_not_depend_on_the_batch(self):
        layer = BatchNorm1d(3).double()
        layer(_randn(16, 3, seed=70, scale=2.0))
        layer.eval()
        x = _randn(5, 3, seed=71)
        torch.testing.assert_close(layer(x)[:1], layer(x[:1]))

    def test_train_output_of_an_example_depends_on_the_batch(self):
        layer = BatchNorm1d(3).double()
        x = _randn(5, 3, seed=72)
        other = torch.cat([x[:1], _randn(4, 3, seed=73)])
        assert not torch.allclose(layer(x)[0], layer(other)[0])

    def test_train_and_eval_outputs_differ(self):
        layer = BatchNorm1d(3).double()
        x = _randn(8, 3, seed=74, scale=3.0, shift=2.0)
        y_train = layer(x)
        layer.eval()
        assert not torch.allclose(y_train, layer(x))

    def test_without_tracking_eval_uses_batch_stats_like_torch(self):
        ours, theirs = _pair(3, track_running_stats=False)
        ours.eval()
        theirs.eval()
        x = _randn(6, 3, seed=75)
        torch.testing.assert_close(ours(x), theirs(x))
        assert ours.running_mean is None and ours.num_batches_tracked is None

    def test_affine_false_has_no_parameters(self):
        assert list(BatchNorm1d(3, affine=False).parameters()) == []

    def test_batch_of_one_works_in_eval(self):
        layer = BatchNorm1d(3).eval()
        assert layer(torch.randn(1, 3)).shape == (1, 3)

    def test_reset_running_stats(self):
        layer = BatchNorm1d(3)
        layer(torch.randn(8, 3) * 5 + 2)
        layer.reset_running_stats()
        assert torch.equal(layer.running_mean, torch.zeros(3))
        assert torch.equal(layer.running_var, torch.ones(3))
        assert int(layer.num_batches_tracked) == 0


BAD_MODULE_ARGS = [
    (dict(num_features=0), ValueError, r"num_features must be >= 1, got 0"),
    (dict(num_features=2.5), TypeError, r"num_features must be an integer"),
    (dict(eps=0), ValueError, r"eps must be > 0"),
    (dict(momentum=2.0), ValueError, r"momentum must be in \[0, 1\], got 2"),
    (dict(momentum="fast"), TypeError, r"momentum must be a real number"),
    (dict(affine="yes"), TypeError, r"affine must be a bool, got 'yes' \(str\)"),
    (dict(track_running_stats=None), TypeError, r"track_running_stats must be a bool"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD_MODULE_ARGS)
def test_batchnorm1d_rejects_bad_arguments(kwargs, exc, match):
    args = dict(num_features=3)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        BatchNorm1d(**args)


@pytest.mark.parametrize(
    "x, exc, match",
    [
        (
            torch.ones(4, 5),
            ValueError,
            r"x must have 3 channels \(dimension 1\), got shape \(4, 5\)",
        ),
        (torch.ones(2, 3, 4, 5), ValueError, r"x must have 2 or 3 dimensions, got 4"),
        (torch.ones(1, 3), ValueError, r"Expected more than 1 value per channel when training"),
        (torch.ones(4, 3, dtype=torch.int32), TypeError, r"x must be a floating-point tensor"),
    ],
)
def test_batchnorm1d_rejects_bad_input(x, exc, match):
    with pytest.raises(exc, match=match):
        BatchNorm1d(3)(x)


class TestGhostBatchNorm:
    def test_each_group_is_normalised_on_its_own(self):
        x = _randn(12, 3, seed=80, scale=2.0)
        w, b, _, _ = _params(3)
        out = ghost_batch_norm(x, None, None, w, b, True, ghost_batch_size=4)
        expected = torch.cat([F.batch_norm(part, None, None, w, b, True) for part in x.split(4)])
        torch.testing.assert_close(out, expected)

    def test_a_last_single_row_joins_the_previous_group(self):
        x = _randn(9, 2, seed=81)
        out = ghost_batch_norm(x, None, None, training=True, ghost_batch_size=4)
        expected = torch.cat(
            [
                F.batch_norm(x[:4], None, None, training=True),
                F.batch_norm(x[4:], None, None, training=True),
            ]
        )
        torch.testing.assert_close(out, expected)

    def test_one_row_more_than_a_group_is_one_group(self):
        x = _randn(5, 2, seed=88)
        rm, rv = torch.zeros(2, dtype=D), torch.ones(2, dtype=D)
        rm2, rv2 = rm.clone(), rv.clone()
        out = ghost_batch_norm(x, rm, rv, training=True, ghost_batch_size=4)
        torch.testing.assert_close(out, F.batch_norm(x, rm2, rv2, training=True))
        torch.testing.assert_close(rv, rv2)

    def test_a_smaller_last_group_is_its_own_group(self):
        x = _randn(10, 2, seed=82)
        out = ghost_batch_norm(x, None, None, training=True, ghost_batch_size=4)
        expected = torch.cat([F.batch_norm(p, None, None, training=True) for p in x.split(4)])
        torch.testing.assert_close(out, expected)

    def test_large_ghost_batch_is_plain_batch_norm(self):
        x = _randn(8, 3, seed=83)
        w, b, rm, rv = _params(3)
        rm2, rv2 = rm.clone(), rv.clone()
        out = ghost_batch_norm(x, rm, rv, w, b, True, ghost_batch_size=8)
        torch.testing.assert_close(out, F.batch_norm(x, rm2, rv2, w, b, True))
        torch.testing.assert_close(rm, rm2)
        torch.testing.assert_close(rv, rv2)

    def test_running_stats_average_the_groups(self):
        x = _randn(8, 2, seed=84)
        rm, rv = torch.zeros(2, dtype=D), torch.ones(2, dtype=D)
        ghost_batch_norm(x, rm, rv, training=True, momentum=1.0, ghost_batch_size=4)
        torch.testing.assert_close(rm, (x[:4].mean(0) + x[4:].mean(0)) / 2)
        torch.testing.assert_close(rv, (x[:4].var(0) + x[4:].var(0)) / 2)

    def test_gradients_match_groupwise_torch(self):
        x0 = _randn(12, 3, seed=85)
        w0, b0, _, _ = _params(3)
        up = _randn(12, 3, seed=86)
        x1, w1, b1 = (t.clone().requires_grad_() for t in (x0, w0, b0))
        x2, w2, b2 = (t.clone().requires_grad_() for t in (x0, w0, b0))
        (ghost_batch_norm(x1, None, None, w1, b1, True, ghost_batch_size=3) * up).sum().backward()
        (
            torch.cat([F.batch_norm(p, None, None, w2, b2, True) for p in x2.split(3)]) * up
        ).sum().backward()
        for ours, theirs in ((x1, x2), (w1, w2), (b1, b2)):
            torch.testing.assert_close(ours.grad, theirs.grad)

    def test_module_eval_is_batchnorm1d_eval(self):
        ghost, plain = GhostBatchNorm1d(3, ghost_batch_size=2).double(), nn.BatchNorm1d(3).double()
        ghost.load_state_dict(plain.state_dict())
        ghost.eval()
        plain.eval()
        x = _randn(5, 3, seed=87)
        torch.testing.assert_close(ghost(x), plain(x))

    def test_module_counts_batches_and_shows_size(self):
        layer = GhostBatchNorm1d(3, ghost_batch_size=4)
        layer(torch.randn(16, 3))
        assert int(layer.num_batches_tracked) == 1
        assert repr(layer).endswith("track_running_stats=True, ghost_batch_size=4)")

    @pytest.mark.parametrize(
        "size, exc, match",
        [
            (1, ValueError, r"ghost_batch_size must be >= 2, got 1"),
            (2.5, TypeError, r"ghost_batch_size must be an integer"),
        ],
    )
    def test_rejects_bad_ghost_batch_size(self, size, exc, match):
        with pytest.raises(exc, match=match):
            ghost_batch_norm(torch.randn(8, 3), None, None, training=True, ghost_batch_size=size)
        with pytest.raises(exc, match=match):
            GhostBatchNorm1d(3, ghost_batch_size=size)

    def test_rejects_3d_input(self):
        with pytest.raises(ValueError, match=r"x must have 2 dimensions, got 3"):
            GhostBatchNorm1d(3)(torch.randn(4, 3, 2))


@pytest.fixture(scope="module")
def noise():
    return batch_stat_noise(
        TestBatchStatNoise.X, TestBatchStatNoise.SIZES, TestBatchStatNoise.R, generator=_gen(91)
    )


class TestBatchStatNoise:
    # Gaussian data, 16 features with different scales; 1000 batches per size.
    X = torch.randn(4000, 16, generator=_gen(90)) * torch.linspace(0.5, 4.0, 16)
    SIZES = [4, 16, 64]
    R = 1000

    def test_shapes(self, noise):
        assert noise.mean_std.shape == noise.xhat_std.shape == (3, 16)
        assert noise.population_std.shape == (16,)
        assert noise.batch_sizes == (4, 16, 64) and noise.num_examples == 4000

    def test_std_of_batch_mean_is_sigma_over_sqrt_b(self, noise):
        # each per-feature std of R samples has relative error ~1/sqrt(2R) = 2.2%; allow 5 of those
        tol = 5 / math.sqrt(2 * self.R)
        for b, row in zip(self.SIZES, noise.mean_std):
            expected = noise.population_std / math.sqrt(b) * math.sqrt((4000 - b) / 3999)
            assert ((row / expected - 1).abs() < tol).all(), b

    def test_relative_noise_matches_prediction(self, noise):
        rel = noise.relative_mean_noise() / noise.predicted_relative_mean_noise() - 1
        assert (rel.abs() < 2.5 / math.sqrt(2 * self.R)).all()

    def test_loglog_slope_is_minus_one_half(self, noise):
        assert abs(loglog_slope(self.SIZES, noise.relative_mean_noise()) + 0.5) < 0.03

    def test_xhat_noise_falls_with_batch_size(self, noise):
        xhat = noise.mean_xhat_noise()
        assert bool((xhat[1:] < xhat[:-1]).all())
        # for large B, x-hat's noise is of the order of 1/sqrt(B) too
        assert abs(loglog_slope(self.SIZES[1:], xhat[1:]) + 0.5) < 0.1

    def test_the_whole_data_set_as_batch_has_no_noise(self):
        x = torch.randn(50, 3, generator=_gen(92))
        noise = batch_stat_noise(x, [50], 20, generator=_gen(93))
        assert noise.mean_std.abs().max() < 1e-12
        assert noise.xhat_std.abs().max() < 1e-12

    def test_constant_features_are_left_out_of_the_summary(self):
        x = torch.cat([torch.randn(200, 2, generator=_gen(94)), torch.zeros(200, 1)], dim=1)
        noise = batch_stat_noise(x, [4, 16], 50, generator=_gen(95))
        assert torch.isfinite(noise.relative_mean_noise()).all()

    def test_same_generator_seed_same_result(self):
        a = batch_stat_noise(self.X[:300], [4, 8], 30, generator=_gen(96))
        b = batch_stat_noise(self.X[:300], [4, 8], 30, generator=_gen(96))
        assert torch.equal(a.mean_std, b.mean_std) and torch.equal(a.xhat_std, b.xhat_std)

    @pytest.mark.parametrize(
        "kwargs, exc, match",
        [
            (dict(x=torch.randn(10)), ValueError, r"x must have 2 dimensions"),
            (dict(batch_sizes=[1, 4]), ValueError, r"batch_sizes\[0\] must be in \[2, 20\], got 1"),
            (
                dict(batch_sizes=[4, 21]),
                ValueError,
                r"batch_sizes\[1\] must be in \[2, 20\], got 21",
            ),
            (dict(batch_sizes=[]), ValueError, r"batch_sizes must not be empty"),
            (dict(batch_sizes=4), TypeError, r"batch_sizes must be a sequence of ints, got int"),
            (dict(num_batches=1), ValueError, r"num_batches must be >= 2, got 1"),
            (dict(index=20), ValueError, r"index must be in \[0, 19\], got 20"),
            (dict(eps=0.0), ValueError, r"eps must be > 0"),
            (dict(generator=0), TypeError, r"generator must be a torch.Generator or None, got int"),
        ],
    )
    def test_rejects_bad_input(self, kwargs, exc, match):
        args = dict(x=torch.randn(20, 3), batch_sizes=[2, 4], num_batches=10)
        args.update(kwargs)
        with pytest.raises(exc, match=match):
            batch_stat_noise(**args)


class TestLoglogSlope:
    @pytest.mark.parametrize("a", [-0.5, -1.0, 2.0])
    def test_recovers_the_exponent_of_a_power_law(self, a):
        xs = [2, 4, 8, 16, 32]
        assert loglog_slope(xs, [3.0 * x**a for x in xs]) == pytest.approx(a, abs=1e-12)

    def test_accepts_a_tensor(self):
        assert loglog_slope([1, 100], torch.tensor([1.0, 0.1])) == pytest.approx(-0.5)

    @pytest.mark.parametrize(
        "xs, ys, exc, match",
        [
            ([1, 2], [1.0, -1.0], ValueError, r"ys\[1\] must be > 0, got -1"),
            ([0, 2], [1.0, 1.0], ValueError, r"xs\[0\] must be > 0, got 0"),
            (
                [1, 2, 3],
                [1.0, 1.0],
                ValueError,
                r"xs and ys must have the same length, got 3 and 2",
            ),
            ([2, 2], [1.0, 3.0], ValueError, r"xs must hold at least two distinct values"),
            ([1, 2], ["a", 1.0], TypeError, r"ys\[0\] must be a real number"),
        ],
    )
    def test_rejects_bad_input(self, xs, ys, exc, match):
        with pytest.raises(exc, match=match):
            loglog_slope(xs, ys)


# ------------------------------------------------------------------------ BatchNorm2d


def _pair_2d(c=4, **kwargs):
    ours, ref = BatchNorm2d(c, **kwargs).double(), nn.BatchNorm2d(c, **kwargs).double()
    if ours.weight is not None:
        with torch.no_grad():
            for m in (ours, ref):
                m.weight.copy_(torch.linspace(0.5, 2.0, c, dtype=D))
                m.bias.copy_(torch.linspace(-1.0, 1.0, c, dtype=D))
    return ours, ref


class TestBatchNorm2d:
    def test_training_output_matches_torch(self):
        ours, ref = _pair_2d()
        x = _randn(6, 4, 5, 3, scale=2.0, shift=1.5)
        torch.testing.assert_close(ours(x), ref(x))

    def test_statistics_over_n_h_w(self):
        ours = BatchNorm2d(3, affine=False).double()
        x = _randn(5, 3, 4, 4, scale=3.0, shift=-2.0)
        y = ours(x)
        torch.testing.assert_close(
            y.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=D), atol=1e-12, rtol=0
        )
        torch.testing.assert_close(
            y.var(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=D), atol=1e-4, rtol=0
        )

    def test_running_stats_match_torch(self):
        ours, ref = _pair_2d()
        for seed in range(4):
            x = _randn(3, 4, 2, 5, seed=seed, scale=1.5, shift=0.5)
            ours(x)
            ref(x)
        torch.testing.assert_close(ours.running_mean, ref.running_mean)
        torch.testing.assert_close(ours.running_var, ref.running_var)  # unbiased over N·H·W
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 4

    def test_eval_output_matches_torch(self):
        ours, ref = _pair_2d()
        for seed in range(3):
            x = _randn(4, 4, 3, 3, seed=seed)
            ours(x)
            ref(x)
        ours.eval()
        ref.eval()
        x = _randn(2, 4, 3, 3, seed=9, shift=3.0)
        torch.testing.assert_close(ours(x), ref(x))

    @pytest.mark.parametrize("which", ["x", "weight", "bias"])
    def test_gradients_match_torch(self, which):
        ours, ref = _pair_2d()
        x = _randn(4, 4, 3, 2, seed=3, scale=2.0)
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        g = _randn(4, 4, 3, 2, seed=4)
        (ours(xo) * g).sum().backward()
        (ref(xr) * g).sum().backward()
        got = {"x": xo.grad, "weight": ours.weight.grad, "bias": ours.bias.grad}[which]
        want = {"x": xr.grad, "weight": ref.weight.grad, "bias": ref.bias.grad}[which]
        torch.testing.assert_close(got, want)

    def test_state_dict_exchange(self):
        ours, ref = _pair_2d()
        ref(_randn(3, 4, 2, 2))
        ours.load_state_dict(ref.state_dict())
        ours.eval()
        ref.eval()
        x = _randn(2, 4, 2, 2, seed=1)
        torch.testing.assert_close(ours(x), ref(x))

    def test_single_value_per_channel_refused_like_torch(self):
        with pytest.raises(
            ValueError, match=r"Expected more than 1 value per channel when training"
        ):
            BatchNorm2d(2)(torch.randn(1, 2, 1, 1))

    @pytest.mark.parametrize(
        "x, exc, match",
        [
            (torch.randn(4, 3), ValueError, r"x must have 4 dimensions"),
            (torch.randn(2, 5, 3, 3), ValueError, r"x must have 3 channels"),
            (
                torch.ones(2, 3, 2, 2, dtype=torch.long),
                TypeError,
                r"x must be a floating-point tensor",
            ),
        ],
    )
    def test_bad_input(self, x, exc, match):
        with pytest.raises(exc, match=match):
            BatchNorm2d(3)(x)


# ---------------------------------------------------------------- dtype rules, update_bn

LOW = [torch.float16, torch.bfloat16]


class TestDtypeRules:
    @pytest.mark.parametrize("dtype", LOW)
    @pytest.mark.parametrize(
        "layer, ref, shape",
        [
            (lambda: BatchNorm1d(3), lambda: nn.BatchNorm1d(3), (8, 3)),
            (lambda: BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (4, 3, 2, 2)),
            (lambda: LayerNorm(6), lambda: nn.LayerNorm(6), (4, 6)),
            (lambda: GroupNorm(2, 4), lambda: nn.GroupNorm(2, 4), (3, 4, 5)),
        ],
    )
    def test_low_precision_input_keeps_its_dtype(self, dtype, layer, ref, shape):
        x = torch.randn(shape, generator=_gen(0)).to(dtype)
        ours, theirs = layer()(x), ref()(x)
        assert ours.dtype == theirs.dtype == dtype
        torch.testing.assert_close(ours.float(), theirs.float(), atol=2e-2, rtol=2e-2)

    @pytest.mark.parametrize("dtype", LOW)
    def test_low_precision_running_stats_stay_float32(self, dtype):
        bn = BatchNorm1d(3)
        bn(torch.randn(8, 3).to(dtype))
        assert bn.running_mean.dtype == torch.float32

    @pytest.mark.parametrize(
        "layer, shape",
        [
            (lambda: BatchNorm1d(3).double(), (4, 3)),
            (lambda: BatchNorm2d(3).double(), (4, 3, 2, 2)),
            (lambda: BatchNorm1d(3).double().eval(), (4, 3)),
            (lambda: LayerNorm(3).double(), (4, 3)),
            (lambda: GroupNorm(1, 3).double(), (4, 3, 2)),
        ],
    )
    def test_float64_layer_fed_float32_refused_like_torch(self, layer, shape):
        x = torch.randn(shape)
        with pytest.raises(
            TypeError, match=r"mixed dtype: x is torch.float32 but weight is torch.float64"
        ):
            layer()(x)

    def test_torch_refuses_the_same(self):
        with pytest.raises(RuntimeError, match=r"mixed dtype"):
            nn.BatchNorm1d(3).double()(torch.randn(4, 3))

    def test_float64_layer_fed_float64(self):
        assert BatchNorm1d(3).double()(torch.randn(4, 3, dtype=D)).dtype == D

    def test_functional_mixed_dtype(self):
        with pytest.raises(
            TypeError, match=r"mixed dtype: x is torch.float64 but running_mean is torch.float32"
        ):
            batch_norm(torch.randn(4, 3, dtype=D), torch.zeros(3), torch.ones(3), training=True)


class TestUpdateBn:
    @pytest.mark.parametrize("cls", [BatchNorm1d, GhostBatchNorm1d])
    def test_recognised_as_batch_norm(self, cls):
        assert isinstance(cls(3), nn.modules.batchnorm._BatchNorm)

    def test_update_bn_matches_torch(self):
        ours = nn.Sequential(nn.Linear(4, 3), BatchNorm1d(3)).double()
        ref = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double()
        ref.load_state_dict(ours.state_dict())
        loader = [_randn(16, 4, seed=s, shift=2.0) for s in range(5)]
        torch.optim.swa_utils.update_bn(loader, ours)
        torch.optim.swa_utils.update_bn(loader, ref)
        torch.testing.assert_close(ours[1].running_mean, ref[1].running_mean)
        torch.testing.assert_close(ours[1].running_var, ref[1].running_var)
        assert int(ours[1].num_batches_tracked) == 5
        assert ours[1].momentum == 0.1  # restored afterwards

    def test_update_bn_equals_the_average_over_batches(self):
        model = nn.Sequential(BatchNorm1d(2)).double()
        loader = [_randn(10, 2, seed=s, shift=float(s)) for s in range(4)]
        torch.optim.swa_utils.update_bn(loader, model)
        want = torch.stack([b.mean(0) for b in loader]).mean(0)
        torch.testing.assert_close(model[0].running_mean, want)


# ------------------------------------------------------------------- layer norm, group norm


class TestLayerNorm:
    @pytest.mark.parametrize(
        "shape, normalized", [((5, 7), 7), ((3, 4, 6), (4, 6)), ((2, 3, 4, 5), (5,))]
    )
    def test_values_match_torch(self, shape, normalized):
        x = _randn(*shape, scale=2.0, shift=1.0)
        ns = (normalized,) if isinstance(normalized, int) else normalized
        w, b = _randn(*ns, seed=1), _randn(*ns, seed=2)
        torch.testing.assert_close(layer_norm(x, normalized, w, b), F.layer_norm(x, ns, w, b))

    @pytest.mark.parametrize("which", ["x", "weight", "bias"])
    def test_gradients_match_torch(self, which):
        x = _randn(4, 6, scale=2.0)
        w, b = _randn(6, seed=1), _randn(6, seed=2)
        ours = [t.clone().requires_grad_() for t in (x, w, b)]
        ref = [t.clone().requires_grad_() for t in (x, w, b)]
        g = _randn(4, 6, seed=3)
        (layer_norm(ours[0], 6, ours[1], ours[2]) * g).sum().backward()
        (F.layer_norm(ref[0], (6,), ref[1], ref[2]) * g).sum().backward()
        i = ["x", "weight", "bias"].index(which)
        torch.testing.assert_close(ours[i].grad, ref[i].grad)

    def test_module_matches_torch_in_train_and_eval(self):
        ours, ref = LayerNorm(8).double(), nn.LayerNorm(8).double()
        x = _randn(5, 8, shift=3.0)
        torch.testing.assert_close(ours(x), ref(x))
        torch.testing.assert_close(ours.eval()(x), ours.train()(x))

    def test_independent_of_the_batch(self):
        x = _randn(6, 8)
        torch.testing.assert_close(layer_norm(x, 8)[:1], layer_norm(x[:1], 8))

    def test_state_dict_exchange(self):
        ours = LayerNorm(4)
        ours.load_state_dict(nn.LayerNorm(4).state_dict())
        assert set(ours.state_dict()) == {"weight", "bias"}

    def test_no_affine(self):
        assert LayerNorm(4, elementwise_affine=False).weight is None

    @pytest.mark.parametrize(
        "args, exc, match",
        [
            (
                (torch.randn(3, 4), 5),
                ValueError,
                r"x must end with the dimensions normalized_shape=\(5,\)",
            ),
            ((torch.randn(3, 4), 0), ValueError, r"normalized_shape\[0\] must be >= 1"),
            ((torch.randn(3, 4), ()), ValueError, r"normalized_shape must not be empty"),
            (
                (torch.randn(3, 4), 4, torch.ones(3)),
                ValueError,
                r"weight must have shape \(4,\), got \(3,\)",
            ),
            ((torch.randn(3, 4), 4, None, None, 0.0), ValueError, r"eps must be > 0"),
            (
                (torch.ones(3, 4, dtype=torch.long), 4),
                TypeError,
                r"x must be a floating-point tensor",
            ),
            ((torch.full((3, 4), float("nan")), 4), ValueError, r"x must be finite"),
        ],
    )
    def test_bad_input(self, args, exc, match):
        with pytest.raises(exc, match=match):
            layer_norm(*args)

    def test_module_bad_shape(self):
        with pytest.raises(
            ValueError, match=r"x must end with the dimensions \(4,\), got shape \(2, 5\)"
        ):
            LayerNorm(4)(torch.randn(2, 5))


class TestGroupNorm:
    @pytest.mark.parametrize(
        "shape, groups",
        [((4, 6), 3), ((3, 6, 5), 2), ((2, 8, 3, 3), 4), ((2, 4, 5), 1), ((2, 4, 5), 4)],
    )
    def test_values_match_torch(self, shape, groups):
        x = _randn(*shape, scale=2.0, shift=-1.0)
        c = shape[1]
        w, b = _randn(c, seed=1), _randn(c, seed=2)
        torch.testing.assert_close(group_norm(x, groups, w, b), F.group_norm(x, groups, w, b))

    @pytest.mark.parametrize("which", ["x", "weight", "bias"])
    def test_gradients_match_torch(self, which):
        x = _randn(3, 6, 4, scale=2.0)
        w, b = _randn(6, seed=1), _randn(6, seed=2)
        ours = [t.clone().requires_grad_() for t in (x, w, b)]
        ref = [t.clone().requires_grad_() for t in (x, w, b)]
        g = _randn(3, 6, 4, seed=3)
        (group_norm(ours[0], 2, ours[1], ours[2]) * g).sum().backward()
        (F.group_norm(ref[0], 2, ref[1], ref[2]) * g).sum().backward()
        i = ["x", "weight", "bias"].index(which)
        torch.testing.assert_close(ours[i].grad, ref[i].grad)

    def test_module_matches_torch(self):
        ours, ref = GroupNorm(5, 25).double(), nn.GroupNorm(5, 25).double()
        ours.load_state_dict(ref.state_dict())
        x = _randn(4, 25, 19)
        torch.testing.assert_close(ours(x), ref(x))
        assert repr(ours) == "GroupNorm(5, 25, eps=1e-05, affine=True)"

    def test_batch_of_one(self):
        x = _randn(1, 4, 3)
        torch.testing.assert_close(GroupNorm(2, 4).double()(x), F.group_norm(x, 2))

    @pytest.mark.parametrize(
        "args, exc, match",
        [
            (
                (torch.randn(2, 6, 3), 4),
                ValueError,
                r"num_groups must divide the number of channels 6, got 4",
            ),
            ((torch.randn(2, 6, 3), 0), ValueError, r"num_groups must be >= 1"),
            ((torch.randn(6), 1), ValueError, r"x must have at least 2 dimensions"),
            (
                (torch.randn(2, 6, 3), 2, torch.ones(5)),
                ValueError,
                r"weight must have shape \(6,\)",
            ),
            ((torch.randn(2, 6, 3), 2.5), TypeError, r"num_groups must be an integer"),
        ],
    )
    def test_bad_input(self, args, exc, match):
        with pytest.raises(exc, match=match):
            group_norm(*args)

    def test_module_bad_groups(self):
        with pytest.raises(ValueError, match=r"num_groups must divide num_channels 10, got 3"):
            GroupNorm(3, 10)
