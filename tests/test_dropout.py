"""Tests of regcourse.dropout: one class per function, one behaviour per test.

Random operations are checked with tolerances derived from the sample size
(5 standard errors) and a fixed ``torch.Generator`` seed, and against
``torch.nn.functional.dropout`` / ``torch.nn.Dropout`` where torch has the same thing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regcourse.dropout import (
    Dropout,
    Dropout1d,
    Dropout2d,
    apply_dropout_mask,
    channel_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout_mask,
)

N = 200_000  # sample size of the statistical tests
Z = 5.0  # tolerance in standard errors


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _nonzero_input(n: int = N, seed: int = 123, dtype=torch.float32) -> torch.Tensor:
    """Input with mean about 1 and no exact zeros, so 'kept' means 'output != 0'."""
    x = torch.randn(n, generator=_gen(seed), dtype=dtype) + 1.0
    assert bool((x != 0).all())
    return x


def _keep_rate_tol(p: float, n: int) -> float:
    return Z * math.sqrt(p * (1 - p) / n)


# Bad inputs shared by the functions that take p.
BAD_P = [
    (-0.1, ValueError, r"p must be in \[0, 1\), got -0.1"),
    (1.0, ValueError, r"p must be in \[0, 1\), got 1$"),
    (1.5, ValueError, r"p must be in \[0, 1\), got 1.5"),
    (float("nan"), ValueError, r"p must be finite"),
    ("0.5", TypeError, r"p must be a real number"),
    (True, TypeError, r"p must be a real number"),
]
BAD_GENERATOR = r"generator must be a torch.Generator or None, got int"
NOT_BINARY = r"mask must contain only 0s and 1s"
NOT_FLOAT = r"x must be a floating-point tensor"
SHAPES = r"x and mask must have the same shape"
ONES = torch.ones(3)


class TestDropoutMask:
    def test_shape_and_dtype(self):
        mask = dropout_mask((3, 4, 5), 0.3, generator=_gen(), dtype=torch.float64)
        assert mask.shape == (3, 4, 5)
        assert mask.dtype == torch.float64

    def test_int_shape_means_1d(self):
        assert dropout_mask(7, 0.3, generator=_gen()).shape == (7,)

    def test_entries_are_zero_or_one(self):
        mask = dropout_mask((1000,), 0.5, generator=_gen())
        assert bool(((mask == 0) | (mask == 1)).all())

    @pytest.mark.parametrize("p", [0.1, 0.4, 0.8])
    def test_zero_rate_is_p(self, p):
        mask = dropout_mask((N,), p, generator=_gen(1))
        zero_rate = (mask == 0).double().mean().item()
        assert abs(zero_rate - p) < _keep_rate_tol(p, N)

    def test_p_zero_keeps_everything(self):
        assert bool((dropout_mask((1000,), 0.0, generator=_gen()) == 1).all())

    def test_same_seed_same_mask(self):
        assert torch.equal(dropout_mask((500,), 0.5, _gen(7)), dropout_mask((500,), 0.5, _gen(7)))

    def test_different_seed_different_mask(self):
        a, b = dropout_mask((500,), 0.5, _gen(7)), dropout_mask((500,), 0.5, _gen(8))
        assert not torch.equal(a, b)

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            dropout_mask((3,), p)

    @pytest.mark.parametrize(
        "shape, error, match",
        [
            ((3, -1), ValueError, r"shape\[1\] must be >= 0, got -1"),
            ((3, 2.5), TypeError, r"shape\[1\] must be an integer"),
            ("34", TypeError, r"shape must be an int or a tuple of ints, got str"),
            (None, TypeError, r"shape must be an int or a tuple of ints, got NoneType"),
        ],
    )
    def test_bad_shape(self, shape, error, match):
        with pytest.raises(error, match=match):
            dropout_mask(shape, 0.5)

    def test_bad_generator(self):
        with pytest.raises(TypeError, match=BAD_GENERATOR):
            dropout_mask((3,), 0.5, generator=0)

    def test_bad_dtype(self):
        with pytest.raises(TypeError, match=r"dtype must be a floating-point"):
            dropout_mask((3,), 0.5, dtype=torch.int64)


class TestApplyDropoutMask:
    H = [0.8, -0.3, 1.2, 0.5, -0.9]
    MASK = [1, 0, 1, 1, 0]

    def test_worked_example_exact(self):
        # The chapter's example: p = 0.4, kept units divided by 0.6 (computed here in float64).
        h = torch.tensor(self.H, dtype=torch.float64)
        out = apply_dropout_mask(h, torch.tensor(self.MASK), 0.4)
        expected = torch.tensor([v * m / 0.6 for v, m in zip(self.H, self.MASK)], dtype=h.dtype)
        torch.testing.assert_close(out, expected, rtol=1e-15, atol=0.0)

    def test_worked_example_rounded_values_of_the_source(self):
        out = apply_dropout_mask(torch.tensor(self.H), torch.tensor(self.MASK), 0.4)
        assert [round(v, 4) + 0.0 for v in out.tolist()] == [1.3333, 0.0, 2.0, 0.8333, 0.0]

    def test_bool_mask_same_as_float_mask(self):
        x = torch.randn(50, generator=_gen())
        mask = dropout_mask((50,), 0.5, _gen(1))
        from_bool = apply_dropout_mask(x, mask.bool(), 0.5)
        assert torch.equal(from_bool, apply_dropout_mask(x, mask, 0.5))

    def test_all_ones_mask_scales_by_inverse_keep_prob(self):
        x = torch.randn(20, dtype=torch.float64, generator=_gen())
        torch.testing.assert_close(apply_dropout_mask(x, torch.ones(20), 0.25), x / 0.75)

    def test_keeps_dtype_of_x(self):
        x = torch.randn(4, dtype=torch.float64)
        assert apply_dropout_mask(x, torch.ones(4, dtype=torch.float32), 0.5).dtype == torch.float64

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            apply_dropout_mask(torch.ones(3), torch.ones(3), p)

    @pytest.mark.parametrize(
        "x, mask, error, match",
        [
            (ONES, torch.ones(4), ValueError, SHAPES + r", got \(3,\) and \(4,\)"),
            (torch.ones(2, 3), ONES, ValueError, SHAPES),
            (ONES, torch.tensor([1.0, 0.5, 0.0]), ValueError, NOT_BINARY + r", got a value 0.5"),
            (ONES, torch.tensor([1, 2, 0]), ValueError, NOT_BINARY + r", got a value 2"),
            (ONES, torch.tensor([1.0, -1.0, 0.0]), ValueError, NOT_BINARY),
            (ONES, [1, 0, 1], TypeError, r"mask must be a torch.Tensor, got list"),
            ([1.0, 2.0, 3.0], ONES, TypeError, r"x must be a torch.Tensor, got list"),
            (ONES.long(), ONES, TypeError, NOT_FLOAT + r", got dtype torch.int64"),
            (torch.tensor([1.0, float("nan"), 0.0]), ONES, ValueError, r"x must be finite"),
        ],
    )
    def test_bad_input(self, x, mask, error, match):
        with pytest.raises(error, match=match):
            apply_dropout_mask(x, mask, 0.5)


class TestDropout:
    def test_eval_returns_input(self):
        x = torch.randn(10)
        assert dropout(x, 0.5, training=False) is x

    def test_p_zero_returns_input(self):
        x = torch.randn(10)
        assert dropout(x, 0.0, training=True) is x

    def test_does_not_modify_input(self):
        x = torch.randn(100, generator=_gen())
        before = x.clone()
        dropout(x, 0.5, generator=_gen(1))
        assert torch.equal(x, before)

    def test_output_shape_and_dtype(self):
        x = torch.randn(4, 5, 6, dtype=torch.float64)
        out = dropout(x, 0.3, generator=_gen())
        assert out.shape == x.shape and out.dtype == x.dtype

    @pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
    def test_keep_rate_is_one_minus_p(self, p):
        out = dropout(_nonzero_input(), p, generator=_gen(2))
        keep_rate = (out != 0).double().mean().item()
        assert abs(keep_rate - (1 - p)) < _keep_rate_tol(p, N)

    @pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
    def test_kept_values_are_input_over_keep_prob(self, p):
        x = _nonzero_input()
        out = dropout(x, p, generator=_gen(3))
        kept = out != 0
        torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=1e-6, atol=0.0)

    @pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
    def test_mean_is_preserved(self, p):
        x = _nonzero_input(dtype=torch.float64)
        out = dropout(x, p, generator=_gen(4))
        # Var(out_i) = x_i^2 * p / (1 - p), so the standard error of the mean difference is:
        se = math.sqrt(p / (1 - p) * float((x**2).sum())) / N
        assert abs(out.mean().item() - x.mean().item()) < Z * se

    @pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
    def test_statistics_agree_with_torch(self, p):
        x = _nonzero_input()
        ours = dropout(x, p, generator=_gen(5))
        torch.manual_seed(6)
        theirs = F.dropout(x, p, training=True)
        kept_ours, kept_theirs = ours != 0, theirs != 0
        rate_ours = kept_ours.double().mean().item()
        rate_theirs = kept_theirs.double().mean().item()
        # Keep rates: each near 1 - p, and near each other (difference of two
        # independent proportions has standard error sqrt(2 p (1 - p) / n)).
        assert abs(rate_ours - (1 - p)) < _keep_rate_tol(p, N)
        assert abs(rate_theirs - (1 - p)) < _keep_rate_tol(p, N)
        assert abs(rate_ours - rate_theirs) < Z * math.sqrt(2 * p * (1 - p) / N)
        # Scale factor: where both keep a unit, the outputs are identical.
        both = kept_ours & kept_theirs
        assert int(both.sum()) > 0
        assert torch.equal(ours[both], theirs[both])

    def test_same_masks_as_torch_with_the_same_seed(self):
        # An implementation detail of torch 2.13 on CPU (bernoulli_ with the keep
        # probability, then x * (mask / (1 - p))): with the default generator in
        # the same state, our dropout reproduces F.dropout exactly.
        x = _nonzero_input(n=10_000)
        torch.manual_seed(11)
        theirs = F.dropout(x, 0.3, training=True)
        torch.manual_seed(11)
        ours = dropout(x, 0.3)
        assert torch.equal(ours, theirs)

    def test_gradient_is_mask_over_keep_prob(self):
        p = 0.3
        x = torch.randn(1000, dtype=torch.float64, generator=_gen(), requires_grad=True)
        upstream = torch.randn(1000, dtype=torch.float64, generator=_gen(1))
        dropout(x, p, generator=_gen(9)).backward(upstream)
        mask = dropout_mask((1000,), p, _gen(9), dtype=torch.float64)
        assert 0 < int(mask.sum()) < 1000
        torch.testing.assert_close(x.grad, upstream * mask / (1 - p))

    def test_gradient_agrees_with_torch(self):
        x = torch.randn(1000, dtype=torch.float64, generator=_gen(), requires_grad=True)
        x_torch = x.detach().clone().requires_grad_(True)
        upstream = torch.randn(1000, dtype=torch.float64, generator=_gen(1))
        torch.manual_seed(12)
        dropout(x, 0.3).backward(upstream)
        torch.manual_seed(12)
        F.dropout(x_torch, 0.3, training=True).backward(upstream)
        torch.testing.assert_close(x.grad, x_torch.grad)

    def test_same_as_apply_dropout_mask_with_the_same_seed(self):
        x = torch.randn(300, generator=_gen())
        out = dropout(x, 0.4, generator=_gen(10))
        mask = dropout_mask((300,), 0.4, _gen(10))
        assert torch.equal(out, apply_dropout_mask(x, mask, 0.4))

    def test_same_seed_same_output(self):
        x = torch.randn(300, generator=_gen())
        assert torch.equal(dropout(x, 0.5, generator=_gen(3)), dropout(x, 0.5, generator=_gen(3)))

    def test_different_seed_different_output(self):
        x = torch.randn(300, generator=_gen())
        a, b = dropout(x, 0.5, generator=_gen(3)), dropout(x, 0.5, generator=_gen(4))
        assert not torch.equal(a, b)

    def test_p_one_rejected_where_torch_returns_zeros(self):
        x = torch.randn(5)
        assert bool((F.dropout(x, 1.0, training=True) == 0).all())
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1"):
            dropout(x, 1.0)

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            dropout(torch.ones(3), p)

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p_rejected_in_eval_too(self, p, error, match):
        with pytest.raises(error, match=match):
            dropout(torch.ones(3), p, training=False)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(x=[1.0, 2.0]), TypeError, r"x must be a torch.Tensor, got list"),
            (dict(x=ONES.int()), TypeError, NOT_FLOAT + r", got dtype torch.int32"),
            (dict(x=torch.tensor([1.0, float("inf")])), ValueError, r"x must be finite"),
            (
                dict(x=torch.ones(3), training=1),
                TypeError,
                r"training must be a bool, got 1 \(int\)",
            ),
            (dict(x=torch.ones(3), generator=42), TypeError, BAD_GENERATOR),
        ],
    )
    def test_bad_input(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            dropout(**kwargs)

    @settings(max_examples=50, deadline=None)
    @given(
        values=st.lists(
            st.floats(min_value=-1e3, max_value=1e3).filter(lambda v: abs(v) > 1e-3),
            min_size=1,
            max_size=64,
        ),
        p=st.floats(min_value=0.0, max_value=0.95),
        seed=st.integers(min_value=0, max_value=2**31 - 1),
    )
    def test_each_output_is_zero_or_scaled_input(self, values, p, seed):
        x = torch.tensor(values, dtype=torch.float64)
        out = dropout(x, p, generator=_gen(seed))
        scaled = x / (1 - p)
        is_zero = out == 0
        is_scaled = torch.isclose(out, scaled, rtol=1e-12, atol=0.0)
        assert bool((is_zero | is_scaled).all())


class TestDropoutModule:
    def test_eval_returns_input_like_nn_dropout(self):
        x = torch.randn(8, 4)
        assert Dropout(0.5).eval()(x) is x
        assert nn.Dropout(0.5).eval()(x) is x

    def test_train_drops_and_scales_like_nn_dropout(self):
        p = 0.4
        x = _nonzero_input()
        ours = Dropout(p, generator=_gen(1)).train()(x)
        theirs = nn.Dropout(p).train()(x)
        for out in (ours, theirs):
            kept = out != 0
            assert abs(kept.double().mean().item() - (1 - p)) < _keep_rate_tol(p, N)
            torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=1e-6, atol=0.0)

    def test_follows_train_and_eval_of_parent_model(self):
        x = _nonzero_input(n=1000)
        model = nn.Sequential(nn.Identity(), Dropout(0.5, generator=_gen()))
        model.eval()
        assert not model[1].training
        assert torch.equal(model(x), x)
        model.train()
        assert model[1].training
        assert bool((model(x) == 0).any())

    def test_two_training_passes_differ(self):
        layer = Dropout(0.5, generator=_gen())
        x = torch.ones(100)
        assert not torch.equal(layer(x), layer(x))

    def test_same_generator_seed_same_output(self):
        x = torch.randn(100, generator=_gen())
        assert torch.equal(Dropout(0.5, generator=_gen(4))(x), Dropout(0.5, generator=_gen(4))(x))

    def test_has_no_parameters_or_buffers_like_nn_dropout(self):
        assert dict(Dropout(0.5).state_dict()) == dict(nn.Dropout(0.5).state_dict()) == {}

    def test_repr_shows_p(self):
        assert repr(Dropout(0.3)) == "Dropout(p=0.3)"
        assert "p=0.3" in repr(nn.Dropout(0.3))

    def test_default_p_is_torch_default(self):
        assert Dropout().p == nn.Dropout().p == 0.5

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            Dropout(p)

    def test_bad_generator(self):
        with pytest.raises(TypeError, match=BAD_GENERATOR):
            Dropout(0.5, generator=1)


class TestDropoutPreservesTheMean:
    """Property (hypothesis): inverted dropout leaves the mean unchanged in expectation.

    For n entries of value c, the output mean is c·B/(n(1−p)) with B ~ Binomial(n, 1−p),
    so its standard deviation is |c|·sqrt(p / (n(1−p))); we allow 6 of them.
    """

    @settings(max_examples=30, deadline=None)
    @given(
        p=st.floats(0.0, 0.9),
        c=st.floats(-10.0, 10.0).filter(lambda v: abs(v) > 1e-3),
        seed=st.integers(0, 2**31 - 1),
    )
    def test_mean_is_preserved(self, p, c, seed):
        n = 20_000
        x = torch.full((n,), c, dtype=torch.float64)
        out = dropout(x, p, generator=torch.Generator().manual_seed(seed))
        sd = abs(c) * math.sqrt(p / (n * (1 - p)))
        assert abs(out.mean().item() - c) <= 6 * sd + 1e-12


# ------------------------------------------------------------------ spatial dropout

SPATIAL = [
    (dropout1d, F.dropout1d, (400, 50, 7)),
    (dropout2d, F.dropout2d, (400, 50, 3, 4)),
]


class TestSpatialDropout:
    """dropout1d / dropout2d: whole channels dropped, statistics as F.dropout1d / F.dropout2d."""

    @pytest.mark.parametrize("ours, _, shape", SPATIAL)
    def test_whole_channels(self, ours, _, shape):
        x = torch.rand(shape, generator=_gen(1)) + 0.5  # no zeros
        y = ours(x, 0.3, generator=_gen(2))
        flat = y.flatten(2)
        dropped = (flat == 0).all(-1)
        kept = (flat != 0).all(-1)
        assert bool((dropped | kept).all())
        torch.testing.assert_close(flat[kept], (x.flatten(2) / 0.7)[kept])

    @pytest.mark.parametrize("ours, theirs, shape", SPATIAL)
    @pytest.mark.parametrize("p", [0.1, 0.5])
    def test_drop_rate_matches_torch(self, ours, theirs, shape, p):
        x = torch.ones(shape)
        n = shape[0] * shape[1]
        mine = (ours(x, p, generator=_gen(3)).flatten(2)[..., 0] == 0).double().mean().item()
        torch.manual_seed(4)
        ref = (theirs(x, p).flatten(2)[..., 0] == 0).double().mean().item()
        tol = Z * math.sqrt(2 * p * (1 - p) / n)  # difference of two independent rates
        assert abs(mine - ref) < tol
        assert abs(mine - p) < Z * math.sqrt(p * (1 - p) / n)

    @pytest.mark.parametrize("ours, theirs, shape", SPATIAL)
    def test_same_draws_as_torch_from_the_global_generator(self, ours, theirs, shape):
        """With generator=None both sample one Bernoulli per (example, channel) from the
        global generator in the same order: identical outputs for the same seed."""
        x = torch.randn(shape, generator=_gen(5))
        torch.manual_seed(11)
        a = ours(x, 0.4)
        torch.manual_seed(11)
        b = theirs(x, 0.4)
        assert torch.equal(a, b)

    @pytest.mark.parametrize("ours, _, shape", SPATIAL)
    def test_mean_preserved(self, ours, _, shape):
        x = torch.ones(shape)
        n = shape[0] * shape[1]
        m = ours(x, 0.5, generator=_gen(6)).mean().item()
        assert abs(m - 1.0) < Z * math.sqrt(1.0 / n)  # channel values are 0 or 2: variance 1

    @pytest.mark.parametrize("ours, _, shape", SPATIAL)
    def test_not_training_is_identity(self, ours, _, shape):
        x = torch.randn(shape)
        assert ours(x, 0.5, training=False) is x
        assert ours(x, 0.0) is x

    def test_unbatched_input(self):
        x = torch.ones(30, 4, 4)  # (C, H, W)
        y = dropout2d(x, 0.5, generator=_gen(7))
        assert bool(((y == 0).all((-1, -2)) | (y == 2).all((-1, -2))).all())
        y1 = dropout1d(torch.ones(30, 6), 0.5, generator=_gen(7))
        assert bool(((y1 == 0).all(-1) | (y1 == 2).all(-1)).all())

    def test_gradient_is_the_mask_over_keep(self):
        x = torch.randn(20, 8, 5, dtype=torch.float64, requires_grad=True)
        y = dropout1d(x, 0.25, generator=_gen(8))
        y.sum().backward()
        mask = (y.detach() != 0).double()
        torch.testing.assert_close(x.grad, mask / 0.75)

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
    def test_dtype_kept(self, dtype):
        assert dropout2d(torch.ones(2, 3, 4, 4, dtype=dtype), 0.5, generator=_gen(0)).dtype == dtype

    @pytest.mark.parametrize(
        "fn, kwargs, error, match",
        [
            (
                dropout1d,
                dict(x=torch.ones(4)),
                ValueError,
                r"dropout1d: x must have 2 or 3 dimensions",
            ),
            (
                dropout1d,
                dict(x=torch.ones(2, 3, 4, 5)),
                ValueError,
                r"dropout1d: x must have 2 or 3",
            ),
            (
                dropout2d,
                dict(x=torch.ones(2, 3)),
                ValueError,
                r"dropout2d: x must have 3 or 4 dimensions",
            ),
            (dropout1d, dict(x=torch.ones(2, 3, 4), p=1.0), ValueError, r"p must be in \[0, 1\)"),
            (
                dropout1d,
                dict(x=torch.ones(2, 3, 4), training="yes"),
                TypeError,
                r"training must be a bool",
            ),
            (dropout2d, dict(x=torch.ones(2, 3, 4, 4), generator=3), TypeError, BAD_GENERATOR),
            (dropout1d, dict(x=torch.ones(2, 3, 4, dtype=torch.long)), TypeError, NOT_FLOAT),
            (
                channel_dropout,
                dict(x=torch.ones(2, 3, 4), spatial_dims=3),
                ValueError,
                r"spatial_dims must be in \[1, 2\], got 3",
            ),
        ],
    )
    def test_bad_input(self, fn, kwargs, error, match):
        with pytest.raises(error, match=match):
            fn(**kwargs)

    def test_numpy_p_accepted(self):
        x = torch.ones(2, 3, 4)
        assert dropout1d(x, np.float64(0.0)) is x


class TestSpatialDropoutModules:
    @pytest.mark.parametrize("cls, shape", [(Dropout1d, (6, 10, 5)), (Dropout2d, (6, 10, 3, 3))])
    def test_train_and_eval(self, cls, shape):
        layer = cls(0.5, generator=_gen(0))
        x = torch.ones(shape)
        y = layer(x)
        assert bool((y == 0).any()) and bool((y == 2).any())
        assert layer.eval()(x) is x

    @pytest.mark.parametrize("cls, theirs", [(Dropout1d, nn.Dropout1d), (Dropout2d, nn.Dropout2d)])
    def test_matches_torch_module(self, cls, theirs):
        x = torch.randn(4, 8, 6, 6) if cls is Dropout2d else torch.randn(4, 8, 6)
        torch.manual_seed(2)
        a = cls(0.3)(x)
        torch.manual_seed(2)
        b = theirs(0.3)(x)
        assert torch.equal(a, b)

    def test_repr(self):
        assert repr(Dropout2d(0.25)) == "Dropout2d(p=0.25)"

    def test_bad_p(self):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.5"):
            Dropout1d(1.5)
