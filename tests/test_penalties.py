"""Tests of regcourse.penalties: values, autograd, torch.optim cross-checks, properties, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regcourse.penalties import (
    AdamState,
    adam_init,
    adam_l2_step,
    adamw_step,
    adamw_step_,
    l1_grad,
    l1_penalty,
    l1_prox_step,
    l2_grad,
    l2_penalty,
    sgd_step,
    sgd_step_,
    shrink_path,
    soft_threshold,
)

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def autograd_of(penalty, w, lam):
    w = w.clone().requires_grad_(True)
    penalty(w, lam).backward()
    return w.grad


def torch_optimizer_path(opt_cls, w0, grads, **kwargs):
    """Weights after each step of a torch optimizer fed the given gradients."""
    p = torch.nn.Parameter(w0.clone())
    opt = opt_cls([p], **kwargs)
    out = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    return out


# --- penalties ---------------------------------------------------------------------------
class TestL2Penalty:
    def test_value_on_known_vector(self):
        # (0.1 / 2) * (3^2 + 4^2) = 1.25
        assert l2_penalty(torch.tensor([3.0, 4.0], dtype=F64), 0.1).item() == pytest.approx(1.25)

    def test_is_half_lambda_times_squared_norm(self):
        w = randn(3, 4)
        expected = 0.5 * 0.3 * torch.linalg.vector_norm(w) ** 2
        torch.testing.assert_close(l2_penalty(w, 0.3), expected)

    def test_returns_scalar_of_input_dtype(self):
        out = l2_penalty(torch.ones(2, 3, dtype=F64), 1.0)
        assert out.dim() == 0 and out.dtype == F64

    def test_zero_lambda_gives_zero(self):
        assert l2_penalty(randn(5), 0.0).item() == 0.0


class TestL2Grad:
    def test_matches_autograd(self):
        w = randn(4, 3, seed=1)
        torch.testing.assert_close(
            l2_grad(w, 0.7), autograd_of(l2_penalty, w, 0.7), rtol=0, atol=1e-15
        )

    def test_is_proportional_to_weight(self):
        w = torch.tensor([2.0, -0.5, 0.0], dtype=F64)
        torch.testing.assert_close(l2_grad(w, 0.1), torch.tensor([0.2, -0.05, 0.0], dtype=F64))

    def test_does_not_modify_input(self):
        w = randn(3)
        before = w.clone()
        l2_grad(w, 0.5)
        assert torch.equal(w, before)


class TestL1Penalty:
    def test_value_on_known_vector(self):
        assert l1_penalty(torch.tensor([3.0, -4.0], dtype=F64), 0.1).item() == pytest.approx(0.7)

    def test_is_lambda_times_l1_norm(self):
        w = randn(6, seed=2)
        torch.testing.assert_close(l1_penalty(w, 0.2), 0.2 * torch.linalg.vector_norm(w, ord=1))


class TestL1Grad:
    def test_matches_autograd_away_from_zero(self):
        w = randn(10, seed=3)
        assert bool((w != 0).all())
        torch.testing.assert_close(l1_grad(w, 0.4), autograd_of(l1_penalty, w, 0.4), rtol=0, atol=0)

    def test_is_zero_at_zero(self):
        out = l1_grad(torch.tensor([0.0, -0.0], dtype=F64), 0.5)
        assert out.tolist() == [0.0, 0.0]

    def test_same_size_for_small_and_large_weights(self):
        out = l1_grad(torch.tensor([1e-6, 100.0, -3.0], dtype=F64), 0.01)
        assert out.tolist() == [0.01, 0.01, -0.01]


# --- SGD steps ---------------------------------------------------------------------------
class TestSGDStep:
    def test_worked_example_l2(self):
        # w = 0.5, g = 0.2, lr = 0.1, lam = 0.01: 0.2 + 0.01 * 0.5 = 0.205; 0.5 - 0.0205 = 0.4795
        step = sgd_step(
            torch.tensor([0.5], dtype=F64), torch.tensor([0.2], dtype=F64), 0.1, 0.01, "l2"
        )
        assert step.total_grad.item() == pytest.approx(0.205, abs=1e-15)
        assert step.weight.item() == pytest.approx(0.4795, abs=1e-15)

    def test_worked_example_l1(self):
        # 0.2 + 0.01 * sign(0.5) = 0.21; 0.5 - 0.021 = 0.479
        step = sgd_step(
            torch.tensor([0.5], dtype=F64), torch.tensor([0.2], dtype=F64), 0.1, 0.01, "l1"
        )
        assert step.total_grad.item() == pytest.approx(0.21, abs=1e-15)
        assert step.weight.item() == pytest.approx(0.479, abs=1e-15)

    @pytest.mark.parametrize("seed", range(5))
    def test_l2_matches_torch_sgd_weight_decay(self, seed):
        w, g = randn(3, 5, seed=seed), randn(3, 5, seed=seed + 100)
        gen = torch.Generator().manual_seed(seed)
        lr = 10 ** (-3 * torch.rand((), generator=gen, dtype=F64).item())  # in (1e-3, 1]
        lam = torch.rand((), generator=gen, dtype=F64).item()
        (expected,) = torch_optimizer_path(torch.optim.SGD, w, [g], lr=lr, weight_decay=lam)
        torch.testing.assert_close(
            sgd_step(w, g, lr, lam, "l2").weight, expected, rtol=0, atol=1e-15
        )

    def test_none_matches_torch_sgd_without_decay(self):
        w, g = randn(4, seed=7), randn(4, seed=8)
        (expected,) = torch_optimizer_path(torch.optim.SGD, w, [g], lr=0.3)
        torch.testing.assert_close(
            sgd_step(w, g, 0.3, penalty="none").weight, expected, rtol=0, atol=0
        )

    def test_l1_subtracts_constant_step(self):
        w = torch.tensor([2.0, -0.001, 0.0], dtype=F64)
        step = sgd_step(w, torch.zeros(3, dtype=F64), 0.5, 0.1, "l1")
        torch.testing.assert_close(step.weight, torch.tensor([1.95, 0.049, 0.0], dtype=F64))

    def test_total_grad_is_data_plus_penalty_gradient(self):
        w, g = randn(6, seed=9), randn(6, seed=10)
        torch.testing.assert_close(sgd_step(w, g, 0.1, 0.2, "l1").total_grad, g + l1_grad(w, 0.2))
        torch.testing.assert_close(sgd_step(w, g, 0.1, 0.2, "l2").total_grad, g + l2_grad(w, 0.2))

    def test_does_not_modify_inputs(self):
        w, g = randn(3), randn(3, seed=1)
        w0, g0 = w.clone(), g.clone()
        for penalty in ("l1", "l2"):
            sgd_step(w, g, 0.1, 0.1, penalty)
        assert torch.equal(w, w0) and torch.equal(g, g0)


class TestSoftThreshold:
    def test_known_values(self):
        x = torch.tensor([3.0, -3.0, 0.5, -0.5, 0.0], dtype=F64)
        assert soft_threshold(x, 1.0).tolist() == [2.0, -2.0, 0.0, 0.0, 0.0]

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8),
        st.floats(0, 5, allow_nan=False),
    )
    def test_never_increases_magnitude_nor_crosses_zero(self, values, tau):
        x = torch.tensor(values, dtype=F64)
        out = soft_threshold(x, tau)
        assert bool((out.abs() <= x.abs()).all())
        assert bool((out * x >= 0).all())  # same sign or zero: never crosses

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8),
        st.floats(0, 5, allow_nan=False),
    )
    def test_zeroes_exactly_the_entries_within_threshold(self, values, tau):
        x = torch.tensor(values, dtype=F64)
        out = soft_threshold(x, tau)
        assert torch.equal(out == 0, x.abs() <= tau)


class TestL1ProxStep:
    def test_reaches_exact_zero_at_predicted_step_and_stays(self):
        w0, lr, lam = 0.05, 0.1, 0.03  # 0.05 / 0.003 = 16.7, so zero at step 17
        w = torch.tensor([w0], dtype=F64)
        zero = torch.zeros(1, dtype=F64)
        hits = []
        for t in range(1, 40):
            w = l1_prox_step(w, zero, lr, lam)
            if w.item() == 0.0:
                hits.append(t)
        assert hits[0] == math.ceil(w0 / (lr * lam)) == 17
        assert hits == list(range(17, 40))

    def test_subgradient_step_never_reaches_zero_but_oscillates(self):
        w = torch.tensor([0.05], dtype=F64)
        zero = torch.zeros(1, dtype=F64)
        path = []
        for _ in range(60):
            w = sgd_step(w, zero, 0.1, 0.03, "l1").weight
            path.append(w.item())
        tail = path[20:]
        assert 0.0 not in path
        assert min(tail) < 0 < max(tail)
        assert max(abs(x) for x in tail) <= 0.1 * 0.03 + 1e-15

    @settings(max_examples=60, deadline=None)
    @given(
        st.floats(-2, 2, allow_nan=False),
        st.floats(-2, 2, allow_nan=False),
        st.floats(1e-3, 1.0),
        st.floats(0.0, 2.0),
    )
    def test_solves_the_proximal_problem(self, w, g, lr, lam):
        # w' minimises 0.5 * (u - z)^2 + lr * lam * |u| with z = w - lr * g:
        # optimality: u != 0 -> u - z + lr*lam*sign(u) = 0;  u == 0 -> |z| <= lr*lam.
        wt, gt = torch.tensor([w], dtype=F64), torch.tensor([g], dtype=F64)
        u = l1_prox_step(wt, gt, lr, lam).item()
        z = w - lr * g
        if u == 0.0:
            assert abs(z) <= lr * lam + 1e-12
        else:
            assert u - z + lr * lam * math.copysign(1.0, u) == pytest.approx(0.0, abs=1e-12)

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=6),
        st.floats(1e-3, 1.0),
        st.floats(0.0, 1.0),
    )
    def test_without_data_gradient_never_increases_magnitude_nor_crosses_zero(
        self, values, lr, lam
    ):
        w = torch.tensor(values, dtype=F64)
        out = l1_prox_step(w, torch.zeros_like(w), lr, lam)
        assert bool((out.abs() <= w.abs()).all())
        assert bool((out * w >= 0).all())


class TestShrinkPath:
    def test_l2_is_geometric(self):
        w0 = torch.tensor([0.05, -2.0], dtype=F64)
        path = shrink_path(w0, 0.1, 0.01, 100, "l2")
        t = torch.arange(101, dtype=F64).unsqueeze(1)
        torch.testing.assert_close(path, (1 - 0.1 * 0.01) ** t * w0, rtol=1e-12, atol=0)

    def test_shape_and_first_row(self):
        w0 = randn(2, 3)
        path = shrink_path(w0, 0.1, 0.1, 7, "l1")
        assert path.shape == (8, 2, 3)
        assert torch.equal(path[0], w0)

    def test_zero_steps(self):
        w0 = randn(3)
        assert torch.equal(shrink_path(w0, 0.1, 0.1, 0, "l1_prox"), w0.unsqueeze(0))

    def test_l1_prox_reaches_zero_and_l2_does_not(self):
        w0 = torch.tensor([0.05], dtype=F64)
        assert shrink_path(w0, 0.1, 0.03, 30, "l1_prox")[-1].item() == 0.0
        assert shrink_path(w0, 0.1, 0.03, 30, "l2")[-1].item() > 0.0


# --- Adam + L2 and AdamW -------------------------------------------------------------------
ADAM_SETTINGS = [
    dict(lr=1e-3, lam=1e-2, betas=(0.9, 0.999), eps=1e-8),
    dict(lr=0.05, lam=0.3, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, lam=0.0, betas=(0.0, 0.5), eps=0.0),
]


def our_path(step_fn, w0, grads, lr, lam, betas, eps):
    w, state = w0.clone(), adam_init(w0)
    out = []
    for g in grads:
        w, state = step_fn(w, g, state, lr=lr, lam=lam, betas=betas, eps=eps)
        out.append(w)
    return out, state


@pytest.mark.parametrize("cfg", ADAM_SETTINGS)
@pytest.mark.parametrize(
    "step_fn, opt_cls", [(adam_l2_step, torch.optim.Adam), (adamw_step, torch.optim.AdamW)]
)
class TestAdamAgainstTorch:
    def test_weights_match_every_step(self, step_fn, opt_cls, cfg):
        w0 = randn(4, 3, seed=11)
        grads = [randn(4, 3, seed=200 + t) * 10 ** (t % 3 - 1) for t in range(25)]
        ours, _ = our_path(step_fn, w0, grads, **cfg)
        theirs = torch_optimizer_path(
            opt_cls,
            w0,
            grads,
            lr=cfg["lr"],
            weight_decay=cfg["lam"],
            betas=cfg["betas"],
            eps=cfg["eps"],
        )
        for t, (a, b) in enumerate(zip(ours, theirs)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=f"step {t + 1}")

    def test_state_matches_torch_state(self, step_fn, opt_cls, cfg):
        w0 = randn(5, seed=12)
        grads = [randn(5, seed=300 + t) for t in range(20)]
        _, state = our_path(step_fn, w0, grads, **cfg)
        p = torch.nn.Parameter(w0.clone())
        opt = opt_cls(
            [p], lr=cfg["lr"], weight_decay=cfg["lam"], betas=cfg["betas"], eps=cfg["eps"]
        )
        for g in grads:
            p.grad = g.clone()
            opt.step()
        ts = opt.state[p]
        assert state.t == int(ts["step"]) == 20
        torch.testing.assert_close(state.m, ts["exp_avg"], rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(state.v, ts["exp_avg_sq"], rtol=1e-12, atol=1e-15)


class TestAdamSteps:
    def test_init_is_zero(self):
        state = adam_init(randn(2, 2))
        assert state.t == 0 and not state.m.any() and not state.v.any()

    def test_does_not_modify_inputs(self):
        w, g = randn(3), randn(3, seed=1)
        state = adam_l2_step(w, g, adam_init(w), lr=0.1, lam=0.1).state
        copies = [w.clone(), g.clone(), state.m.clone(), state.v.clone()]
        for fn in (adam_l2_step, adamw_step):
            fn(w, g, state, lr=0.1, lam=0.1)
        assert all(torch.equal(a, b) for a, b in zip([w, g, state.m, state.v], copies))

    def test_first_step_moves_each_weight_by_lr_without_decay(self):
        # t = 1: m_hat = g and sqrt(v_hat) = |g|, so the step is lr * sign(g) (eps = 0)
        w, g = randn(6), randn(6, seed=5)
        new = adam_l2_step(w, g, adam_init(w), lr=0.01, lam=0.0, eps=0.0).weight
        torch.testing.assert_close(new, w - 0.01 * torch.sign(g), rtol=0, atol=1e-15)

    def test_adamw_and_adam_agree_without_decay(self):
        w0 = randn(4)
        grads = [randn(4, seed=t) for t in range(10)]
        a, _ = our_path(adam_l2_step, w0, grads, 0.01, 0.0, (0.9, 0.999), 1e-8)
        b, _ = our_path(adamw_step, w0, grads, 0.01, 0.0, (0.9, 0.999), 1e-8)
        torch.testing.assert_close(a[-1], b[-1], rtol=0, atol=0)


class TestDecoupling:
    """The chapter's claim: AdamW decays every weight alike, Adam + L2 does not."""

    scales = torch.tensor([100.0, 0.01], dtype=F64)

    def run(self, step_fn, lam, steps=200):
        w = torch.ones(2, dtype=F64)
        state = adam_init(w)
        for t in range(steps):
            w, state = step_fn(w, self.scales * (-1.0) ** t, state, lr=0.01, lam=lam, eps=0.0)
        return w

    def test_adamw_treats_both_gradient_scales_alike(self):
        w = self.run(adamw_step, 0.01)
        assert w[0].item() == pytest.approx(w[1].item(), rel=1e-12)

    def test_adamw_decay_factor_is_one_minus_lr_lam_per_step(self):
        ratio = self.run(adamw_step, 0.01) / self.run(adamw_step, 0.0)
        torch.testing.assert_close(
            ratio, torch.full((2,), (1 - 0.01 * 0.01) ** 200, dtype=F64), rtol=1e-4, atol=0
        )

    def test_adam_l2_decays_small_gradient_weight_much_more(self):
        ratio = self.run(adam_l2_step, 0.01) / self.run(adam_l2_step, 0.0)
        assert ratio[1] < 0.5 < 0.999 < ratio[0] < 1.0


# --- bad input -----------------------------------------------------------------------------
W = torch.ones(3, dtype=F64)
G = torch.zeros(3, dtype=F64)
S = adam_init(W)

BAD_INPUTS = [
    (l2_penalty, dict(w=W, lam=-0.1), ValueError, r"lam must be >= 0, got -0\.1"),
    (l2_grad, dict(w=W, lam=float("nan")), ValueError, r"lam must be finite, got nan"),
    (l1_penalty, dict(w=[1.0, 2.0], lam=0.1), TypeError, r"w must be a torch.Tensor, got list"),
    (
        l1_grad,
        dict(w=torch.ones(3, dtype=torch.int64), lam=0.1),
        TypeError,
        r"w must be a floating-point tensor, got dtype torch.int64",
    ),
    (l1_grad, dict(w=W, lam="0.1"), TypeError, r"lam must be a real number, got '0.1'"),
    (l2_penalty, dict(w=torch.tensor([float("inf")]), lam=0.1), ValueError, r"w must be finite"),
    (sgd_step, dict(w=W, grad=G, lr=0.0, lam=0.1), ValueError, r"lr must be > 0, got 0"),
    (sgd_step, dict(w=W, grad=G, lr=-1.0, lam=0.1), ValueError, r"lr must be > 0, got -1"),
    (sgd_step, dict(w=W, grad=G, lr=0.1, lam=-1.0), ValueError, r"lam must be >= 0, got -1"),
    (
        sgd_step,
        dict(w=W, grad=G, lr=0.1, lam=0.1, penalty="l3"),
        ValueError,
        r"penalty must be one of \['none', 'l1', 'l2'\], got 'l3'",
    ),
    (
        sgd_step,
        dict(w=W, grad=G, lr=0.1, lam=0.1, penalty=None),
        ValueError,
        r"penalty must be one of .*, got None",
    ),
    (
        sgd_step,
        dict(w=W, grad=G, lr=0.1, lam=0.1, penalty="none"),
        ValueError,
        r"lam must be 0 when penalty='none', got 0\.1",
    ),
    (
        sgd_step,
        dict(w=W, grad=torch.zeros(4, dtype=F64), lr=0.1, lam=0.1),
        ValueError,
        r"w and grad must have the same shape, got \(3,\) and \(4,\)",
    ),
    (
        sgd_step,
        dict(w=W, grad=torch.zeros(3), lr=0.1, lam=0.1),
        TypeError,
        r"grad must have the same dtype as w \(torch.float64\), got torch.float32",
    ),
    (
        sgd_step,
        dict(w=W, grad=0.0, lr=0.1, lam=0.1),
        TypeError,
        r"grad must be a torch.Tensor, got float",
    ),
    (soft_threshold, dict(x=W, threshold=-0.5), ValueError, r"threshold must be >= 0, got -0\.5"),
    (l1_prox_step, dict(w=W, grad=G, lr=0.0, lam=0.1), ValueError, r"lr must be > 0, got 0"),
    (
        l1_prox_step,
        dict(w=W, grad=G, lr=0.1, lam=-0.01),
        ValueError,
        r"lam must be >= 0, got -0\.01",
    ),
    (shrink_path, dict(w0=W, lr=0.1, lam=0.1, steps=-1), ValueError, r"steps must be >= 0, got -1"),
    (
        shrink_path,
        dict(w0=W, lr=0.1, lam=0.1, steps=2.5),
        TypeError,
        r"steps must be an integer, got 2\.5",
    ),
    (
        shrink_path,
        dict(w0=W, lr=0.1, lam=0.1, steps=3, rule="l1_clip"),
        ValueError,
        r"rule must be one of \['l2', 'l1', 'l1_prox'\], got 'l1_clip'",
    ),
    (
        adam_init,
        dict(w=torch.zeros(0, dtype=F64)),
        ValueError,
        r"w must not be empty, got shape \(0,\)",
    ),
    (
        adam_l2_step,
        dict(w=W, grad=G, state=(G, G, 0)),
        TypeError,
        r"state must be an AdamState .*, got tuple",
    ),
    (
        adam_l2_step,
        dict(w=W, grad=G, state=AdamState(torch.zeros(2, dtype=F64), G, 0)),
        ValueError,
        r"w and state.m must have the same shape",
    ),
    (
        adam_l2_step,
        dict(w=W, grad=G, state=AdamState(G, G, -1)),
        ValueError,
        r"state.t must be >= 0, got -1",
    ),
    (
        adam_l2_step,
        dict(w=W, grad=G, state=S, lr=-0.001),
        ValueError,
        r"lr must be > 0, got -0\.001",
    ),
    (
        adam_l2_step,
        dict(w=W, grad=G, state=S, lam=-0.01),
        ValueError,
        r"lam must be >= 0, got -0\.01",
    ),
    (
        adamw_step,
        dict(w=W, grad=G, state=S, betas=(0.9, 1.0)),
        ValueError,
        r"betas\[1\] must be in \[0, 1\), got 1",
    ),
    (
        adamw_step,
        dict(w=W, grad=G, state=S, betas=(-0.1, 0.999)),
        ValueError,
        r"betas\[0\] must be in \[0, 1\), got -0\.1",
    ),
    (
        adamw_step,
        dict(w=W, grad=G, state=S, betas=0.9),
        TypeError,
        r"betas must be a pair \(beta1, beta2\), got 0\.9",
    ),
    (
        adamw_step,
        dict(w=W, grad=G, state=S, eps=-1e-8),
        ValueError,
        r"eps must be >= 0, got -1e-08",
    ),
    (
        adamw_step,
        dict(w=W, grad=torch.zeros(3, 1, dtype=F64), state=S),
        ValueError,
        r"w and grad must have the same shape",
    ),
]


@pytest.mark.parametrize(
    "fn, kwargs, exc, match",
    BAD_INPUTS,
    ids=[f"{f.__name__}-{i}" for i, (f, *_rest) in enumerate(BAD_INPUTS)],
)
def test_bad_input_raises_naming_argument_and_value(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(**kwargs)


class TestSgdStepInPlace:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_bit_identical_to_torch_sgd(self, dtype):
        w = randn(64, seed=1).to(dtype)
        p = torch.nn.Parameter(w.clone())
        opt = torch.optim.SGD([p], lr=0.1, weight_decay=0.01)
        for step in range(4):
            g = randn(64, seed=10 + step).to(dtype)
            p.grad = g.clone()
            opt.step()
            sgd_step_(w, g, 0.1, 0.01)
        assert torch.equal(w, p.detach())

    def test_in_place_and_equal_to_the_functional_step(self):
        w, g = randn(5), randn(5, seed=2)
        expected = sgd_step(w, g, 0.1, 0.3).weight
        out = sgd_step_(w, g, 0.1, 0.3)
        assert out is w and torch.equal(w, expected)

    def test_grad_untouched(self):
        w, g = randn(5), randn(5, seed=2)
        before = g.clone()
        sgd_step_(w, g, 0.1, 0.3)
        assert torch.equal(g, before)

    @pytest.mark.parametrize(
        "kwargs, exc, match",
        [
            (dict(lr=0.0), ValueError, r"lr must be > 0"),
            (dict(lam=-1.0), ValueError, r"lam must be >= 0"),
            (dict(grad=torch.ones(4, dtype=F64)), ValueError, r"grad"),
            (dict(w=[1.0]), TypeError, r"w must be a torch.Tensor"),
        ],
    )
    def test_bad_input(self, kwargs, exc, match):
        args = dict(w=randn(3), grad=randn(3, seed=1), lr=0.1, lam=0.01)
        args.update(kwargs)
        with pytest.raises(exc, match=match):
            sgd_step_(**args)


class TestAdamwStepInPlace:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_bit_identical_to_torch_adamw(self, dtype):
        w = randn(64, seed=1).to(dtype)
        p = torch.nn.Parameter(w.clone())
        opt = torch.optim.AdamW([p], lr=0.01, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6)
        state = adam_init(w)
        for step in range(6):
            g = randn(64, seed=20 + step).to(dtype)
            p.grad = g.clone()
            opt.step()
            state = adamw_step_(w, g, state, 0.01, 0.1, betas=(0.8, 0.99), eps=1e-6)
        assert torch.equal(w, p.detach())
        assert torch.equal(state.m, opt.state[p]["exp_avg"])
        assert torch.equal(state.v, opt.state[p]["exp_avg_sq"])
        assert state.t == 6

    def test_equal_to_the_functional_step(self):
        w, g = randn(8), randn(8, seed=3)
        ref_w, ref_state = adamw_step(w, g, adam_init(w), 0.05, 0.02)
        state = adamw_step_(w, g, adam_init(w), 0.05, 0.02)
        assert (
            torch.equal(w, ref_w)
            and torch.equal(state.m, ref_state.m)
            and torch.equal(state.v, ref_state.v)
        )

    def test_updates_the_state_tensors_in_place(self):
        w = randn(4)
        state = adam_init(w)
        m, v = state.m, state.v
        new = adamw_step_(w, randn(4, seed=1), state)
        assert new.m is m and new.v is v and bool((m != 0).all())

    @pytest.mark.parametrize(
        "kwargs, exc, match",
        [
            (dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
            (dict(betas=0.9), TypeError, r"betas must be a pair"),
            (dict(state=(0, 0, 0)), TypeError, r"state must be an AdamState"),
            (dict(lr=-1.0), ValueError, r"lr must be > 0"),
        ],
    )
    def test_bad_input(self, kwargs, exc, match):
        w = randn(3)
        args = dict(w=w, grad=randn(3, seed=1), state=adam_init(w))
        args.update(kwargs)
        with pytest.raises(exc, match=match):
            adamw_step_(**args)
