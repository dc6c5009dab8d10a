"""Tests of DropConnect in regcourse.dropout: one class per function, one behaviour per test.

DropConnect masks the *weights* of a linear layer. Its inference mode is checked
against ``torch.nn.functional.linear`` / ``torch.nn.Linear`` exactly; random
behaviour with tolerances of 5 standard errors and fixed ``torch.Generator`` seeds.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regcourse.dropout import (
    DropConnectLinear,
    apply_dropconnect_mask,
    dropconnect_linear,
    dropout_mask,
)

Z = 5.0  # tolerance in standard errors


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _layer(n=5, fan_in=4, fan_out=3, seed=0, dtype=torch.float64):
    g = _gen(seed)
    x = torch.randn(n, fan_in, generator=g, dtype=dtype)
    w = torch.randn(fan_out, fan_in, generator=g, dtype=dtype)
    b = torch.randn(fan_out, generator=g, dtype=dtype)
    return x, w, b


def _recover_mask(p: float, fan_in: int, fan_out: int, seed: int) -> torch.Tensor:
    """Feed the identity matrix through a layer of ones: row j of the output is
    column j of the masked, scaled weight matrix, so the mask can be read off."""
    w = torch.ones(fan_out, fan_in, dtype=torch.float64)
    out = dropconnect_linear(
        torch.eye(fan_in, dtype=torch.float64), w, None, p, generator=_gen(seed)
    )
    return out.T * (1 - p)  # (fan_out, fan_in)


BAD_P = [
    (-0.1, ValueError, r"p must be in \[0, 1\), got -0.1"),
    (1.0, ValueError, r"p must be in \[0, 1\), got 1$"),
    (float("nan"), ValueError, r"p must be finite"),
    ("0.5", TypeError, r"p must be a real number"),
    (True, TypeError, r"p must be a real number"),
]
X, W, B = _layer(dtype=torch.float32)


def _bad_linear_inputs():
    return [
        (dict(x=[1.0, 2.0]), TypeError, r"x must be a torch.Tensor, got list"),
        (
            dict(x=torch.ones(5, 4, dtype=torch.int64)),
            TypeError,
            r"x must be a floating-point tensor",
        ),
        (dict(x=torch.full((5, 4), float("nan"))), ValueError, r"x must be finite"),
        (
            dict(x=torch.ones(5, 3)),
            ValueError,
            r"x's last dimension must equal weight's in_features 4",
        ),
        (dict(x=torch.tensor(1.0)), ValueError, r"x must have at least 1 dimension"),
        (dict(x=X.double()), TypeError, r"x and weight must have the same dtype"),
        (dict(weight=torch.ones(3)), ValueError, r"weight must have 2 dimensions, got 1"),
        (dict(weight="w"), TypeError, r"weight must be a torch.Tensor, got str"),
        (dict(bias=torch.ones(4)), ValueError, r"bias must have weight's out_features 3 entries"),
        (dict(bias=torch.ones(3, 1)), ValueError, r"bias must have 1 dimensions, got 2"),
        (dict(bias=B.double()), TypeError, r"bias and weight must have the same dtype"),
    ]


class TestApplyDropconnectMask:
    def test_worked_example_by_hand(self):
        # W = [[1, 2], [3, 4]], v = [1, 1], M = [[1, 0], [1, 1]], p = 0.5:
        # (M ⊙ W) / 0.5 = [[2, 0], [6, 8]], times v = [2, 14]
        w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        out = apply_dropconnect_mask(
            torch.tensor([1.0, 1.0]), w, None, torch.tensor([[1, 0], [1, 1]]), 0.5
        )
        assert torch.equal(out, torch.tensor([2.0, 14.0]))

    def test_all_ones_mask_scales_weights(self):
        x, w, b = _layer()
        out = apply_dropconnect_mask(x, w, b, torch.ones_like(w), 0.25)
        assert torch.allclose(out, F.linear(x, w / 0.75, b), rtol=1e-12, atol=1e-12)

    def test_all_zeros_mask_leaves_the_bias(self):
        x, w, b = _layer()
        out = apply_dropconnect_mask(x, w, b, torch.zeros_like(w), 0.4)
        assert torch.equal(out, b.expand(len(x), -1))

    def test_same_as_linear_with_masked_weight(self):
        x, w, b = _layer()
        mask = dropout_mask(w.shape, 0.3, _gen(4), dtype=torch.float64)
        expected = x @ (w * mask / 0.7).T + b  # written out without F.linear
        assert torch.allclose(
            apply_dropconnect_mask(x, w, b, mask, 0.3), expected, rtol=1e-12, atol=1e-12
        )

    def test_gradcheck(self):
        x, w, b = (t.requires_grad_() for t in _layer(n=3))
        mask = dropout_mask(w.shape, 0.5, _gen(1), dtype=torch.float64)
        assert torch.autograd.gradcheck(
            lambda x, w, b: apply_dropconnect_mask(x, w, b, mask, 0.5), (x, w, b)
        )

    def test_bool_mask_same_as_float_mask(self):
        x, w, b = _layer()
        mask = dropout_mask(w.shape, 0.5, _gen(2), dtype=torch.float64)
        assert torch.equal(
            apply_dropconnect_mask(x, w, b, mask.bool(), 0.5),
            apply_dropconnect_mask(x, w, b, mask, 0.5),
        )

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            apply_dropconnect_mask(X, W, B, torch.ones_like(W), p)

    @pytest.mark.parametrize(
        "mask, error, match",
        [
            (torch.ones(3), ValueError, r"weight and mask must have the same shape"),
            (torch.ones(4, 3), ValueError, r"weight and mask must have the same shape"),
            (
                torch.full((3, 4), 0.5),
                ValueError,
                r"mask must contain only 0s and 1s, got a value 0.5",
            ),
            ([[1, 0]], TypeError, r"mask must be a torch.Tensor"),
        ],
    )
    def test_bad_mask(self, mask, error, match):
        with pytest.raises(error, match=match):
            apply_dropconnect_mask(X, W, B, mask, 0.5)


class TestDropconnectLinear:
    def test_eval_is_f_linear_exactly(self):
        x, w, b = _layer(dtype=torch.float32)
        assert torch.equal(dropconnect_linear(x, w, b, 0.5, training=False), F.linear(x, w, b))

    def test_p_zero_is_f_linear_exactly(self):
        x, w, b = _layer(dtype=torch.float32)
        assert torch.equal(dropconnect_linear(x, w, b, 0.0, generator=_gen()), F.linear(x, w, b))

    def test_no_bias(self):
        x, w, _ = _layer(dtype=torch.float32)
        assert torch.equal(dropconnect_linear(x, w, None, 0.5, training=False), F.linear(x, w))

    def test_mask_is_weight_shaped_dropout_mask(self):
        # the same seed draws dropout_mask(weight.shape, p): one mask for the whole weight matrix
        x, w, b = _layer(n=7)
        out = dropconnect_linear(x, w, b, 0.4, generator=_gen(11))
        mask = dropout_mask(w.shape, 0.4, _gen(11), dtype=w.dtype)
        assert torch.equal(out, apply_dropconnect_mask(x, w, b, mask, 0.4))

    def test_one_mask_shared_by_the_batch(self):
        x_row = torch.randn(1, 50, generator=_gen(3), dtype=torch.float64)
        w = torch.randn(20, 50, generator=_gen(4), dtype=torch.float64)
        out = dropconnect_linear(x_row.expand(8, -1), w, None, 0.5, generator=_gen(5))
        assert torch.equal(out, out[:1].expand(8, -1))

    def test_recovered_mask_has_keep_rate_one_minus_p(self):
        p, fan_in, fan_out = 0.3, 400, 300
        mask = _recover_mask(p, fan_in, fan_out, seed=6)
        assert torch.allclose(mask, mask.round(), atol=1e-12)
        n = fan_in * fan_out
        assert abs(mask.mean().item() - (1 - p)) < Z * math.sqrt(p * (1 - p) / n)

    @pytest.mark.parametrize("p", [0.2, 0.5])
    def test_monte_carlo_mean_equals_f_linear(self, p):
        x, w, b = _layer(n=2, fan_in=6, fan_out=3, seed=8)
        n = 4000
        g = _gen(9)
        mean = sum(dropconnect_linear(x, w, b, p, generator=g) for _ in range(n)) / n
        # output i = b_i + sum_j M_ij w_ij x_j / (1 - p): variance p / (1 - p) * sum_j w_ij^2 x_j^2
        sd = torch.sqrt(p / (1 - p) * (x.pow(2) @ w.pow(2).T))
        assert bool(((mean - F.linear(x, w, b)).abs() < Z * sd / math.sqrt(n)).all())

    def test_two_calls_differ(self):
        x, w, b = _layer()
        g = _gen(1)
        assert not torch.equal(
            dropconnect_linear(x, w, b, 0.5, generator=g),
            dropconnect_linear(x, w, b, 0.5, generator=g),
        )

    def test_leading_dimensions_kept(self):
        x = torch.randn(2, 3, 4, generator=_gen(), dtype=torch.float64)
        _, w, b = _layer()
        assert dropconnect_linear(x, w, b, 0.5, generator=_gen()).shape == (2, 3, 3)

    def test_does_not_modify_weight(self):
        x, w, b = _layer()
        before = w.clone()
        dropconnect_linear(x, w, b, 0.5, generator=_gen())
        assert torch.equal(w, before)

    def test_gradient_agrees_with_autograd_of_masked_linear(self):
        x, w, b = _layer()
        mask = dropout_mask(w.shape, 0.5, _gen(12), dtype=w.dtype)
        grads = []
        for f in (
            lambda x, w, b: dropconnect_linear(x, w, b, 0.5, generator=_gen(12)),
            lambda x, w, b: F.linear(x, w * mask / 0.5, b),
        ):
            xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
            f(xs, ws, bs).pow(2).sum().backward()
            grads.append((xs.grad, ws.grad, bs.grad))
        for ours, ref in zip(*grads):
            assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)

    def test_dropped_weights_get_zero_gradient(self):
        x, w, b = _layer()
        w.requires_grad_()
        dropconnect_linear(x, w, b, 0.5, generator=_gen(13)).sum().backward()
        mask = dropout_mask(w.shape, 0.5, _gen(13), dtype=w.dtype)
        assert bool((w.grad[mask == 0] == 0).all())
        expected = (mask / 0.5) * x.sum(
            0
        )  # d(sum of outputs)/dW_ij = M_ij x_j summed over examples / (1 - p)
        assert torch.allclose(w.grad, expected, rtol=1e-12, atol=1e-12)

    def test_gradcheck_with_a_fixed_seed(self):
        x, w, b = (t.requires_grad_() for t in _layer(n=3))
        assert torch.autograd.gradcheck(
            lambda x, w, b: dropconnect_linear(x, w, b, 0.3, generator=_gen(14)), (x, w, b)
        )

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            dropconnect_linear(X, W, B, p)

    @pytest.mark.parametrize("kwargs, error, match", _bad_linear_inputs())
    def test_bad_inputs(self, kwargs, error, match):
        args = dict(x=X, weight=W, bias=B, p=0.5)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            dropconnect_linear(**args)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(training=1), TypeError, r"training must be a bool, got 1 \(int\)"),
            (dict(generator=0), TypeError, r"generator must be a torch.Generator or None, got int"),
        ],
    )
    def test_bad_flags(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            dropconnect_linear(X, W, B, 0.5, **kwargs)

    @settings(max_examples=25, deadline=None)
    @given(
        p=st.floats(0.0, 0.9),
        fan_in=st.integers(1, 12),
        fan_out=st.integers(1, 12),
        seed=st.integers(0, 2**31 - 1),
    )
    def test_every_weight_is_kept_scaled_or_dropped(self, p, fan_in, fan_out, seed):
        mask = _recover_mask(p, fan_in, fan_out, seed)
        assert mask.shape == (fan_out, fan_in)
        assert bool(((mask - 1).abs() < 1e-9).logical_or(mask.abs() < 1e-12).all())


class TestDropConnectLinearModule:
    def _pair(self, p=0.5):
        torch.manual_seed(0)
        ours = DropConnectLinear(4, 3, p=p)
        torch.manual_seed(0)
        ref = nn.Linear(4, 3)
        return ours, ref

    def test_same_parameters_and_init_as_nn_linear(self):
        ours, ref = self._pair()
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
        assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)

    def test_eval_equals_nn_linear_exactly(self):
        ours, ref = self._pair()
        x = torch.randn(5, 4, generator=_gen(1))
        assert torch.equal(ours.eval()(x), ref(x))

    def test_train_uses_dropconnect_with_its_generator(self):
        torch.manual_seed(0)
        layer = DropConnectLinear(4, 3, p=0.5, generator=_gen(21)).train()
        x = torch.randn(5, 4, generator=_gen(1))
        expected = dropconnect_linear(x, layer.weight, layer.bias, 0.5, generator=_gen(21))
        assert torch.equal(layer(x), expected)

    def test_follows_train_and_eval_of_parent_model(self):
        model = nn.Sequential(DropConnectLinear(4, 8, p=0.5), nn.ReLU(), nn.Linear(8, 2))
        x = torch.randn(3, 4, generator=_gen(2))
        model.train()
        with torch.no_grad():
            assert not torch.equal(model(x), model(x))
        model.eval()
        assert not model[0].training
        with torch.no_grad():
            assert torch.equal(model(x), model(x))

    def test_no_bias(self):
        layer = DropConnectLinear(4, 3, bias=False)
        assert layer.bias is None

    def test_repr_shows_p(self):
        assert (
            repr(DropConnectLinear(4, 3, p=0.3))
            == "DropConnectLinear(in_features=4, out_features=3, bias=True, p=0.3)"
        )

    @pytest.mark.parametrize("p, error, match", BAD_P)
    def test_bad_p(self, p, error, match):
        with pytest.raises(error, match=match):
            DropConnectLinear(4, 3, p=p)

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(in_features=0), ValueError, r"in_features must be >= 1, got 0"),
            (dict(out_features=2.5), TypeError, r"out_features must be an integer"),
            (dict(bias=1), TypeError, r"bias must be a bool, got int"),
            (dict(generator=3), TypeError, r"generator must be a torch.Generator or None"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        args = dict(in_features=4, out_features=3)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            DropConnectLinear(**args)
