"""Hidden tests for the chapter "Batch normalization as a regularizer" (book/batch_norm.ipynb)."""

import math

import torch
import torch.nn.functional as F

from coursework.spec import Chapter, as_float, assert_number_close, assert_tensor_close
from regcourse.normalization import BatchNorm1d, batch_norm

CHAPTER = Chapter("batch_norm", "Batch normalization as a regularizer")
F64 = torch.float64


def _numbers(value, what, size):
    values = value.reshape(-1).tolist() if isinstance(value, torch.Tensor) else value
    assert isinstance(values, (list, tuple)) and len(values) == size, (
        f"{what} should hold {size} numbers, got {value!r}"
    )
    return torch.tensor([as_float(v, f"an entry of {what}") for v in values], dtype=F64)


# --- bn-ex1: batch norm by hand ----------------------------------------------------------------
ex1 = CHAPTER.exercise("bn-ex1", "Batch norm by hand")
BOOK_EX1 = {"x_ex1": [2, 4, 4, 6], "momentum_ex1": 0.1}


def _ex1_answers(v):
    """(mu_B, sigma_B^2, x_hat, running mean, running variance) of the batch, from the package."""
    x = torch.tensor(v["x_ex1"], dtype=F64).reshape(-1, 1)
    rm, rv = torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64)
    xhat = batch_norm(x, rm, rv, training=True, momentum=v["momentum_ex1"]).squeeze(1)
    return x.mean().item(), x.var(unbiased=False).item(), xhat, rm.item(), rv.item()


def _draw_ex1(rng):
    """Four integers from 0 to 9, not all equal, and the momentum from a short list; drawn again
    while any part of the book's answer (mean and variance, x_hat, running statistics) would fit."""
    book = _ex1_answers(BOOK_EX1)
    while True:
        v = {
            "x_ex1": [rng.randint(0, 9) for _ in range(4)],
            "momentum_ex1": rng.choice([0.1, 0.2, 0.3, 0.5]),
        }
        if len(set(v["x_ex1"])) == 1:
            continue
        mu, var, xhat, rm, rv = _ex1_answers(v)
        if (
            (abs(mu - book[0]) > 1e-3 or abs(var - book[1]) > 1e-3)
            and not torch.allclose(xhat, book[2], rtol=0, atol=1e-3)
            and (abs(rm - book[3]) > 1e-3 or abs(rv - book[4]) > 1e-3)
        ):
            return v


ex1.variants(_draw_ex1, published=BOOK_EX1)


def _numbers_ex1(v):
    return f"x = {tuple(v['x_ex1'])}, alpha = {v['momentum_ex1']}"


@ex1.test(points=1)
def batch_mean_and_variance(student):
    v = student.variant
    mu, var, *_ = _ex1_answers(v)
    assert_number_close(
        student.value("mu_hand"), mu, tol=1e-9, what=f"mu_hand (for {_numbers_ex1(v)})"
    )
    assert_number_close(
        student.value("var_hand"), var, tol=1e-9, what=f"var_hand (for {_numbers_ex1(v)})"
    )


@ex1.test(points=1)
def normalised_values(student):
    v = student.variant
    expected = _ex1_answers(v)[2]
    got = _numbers(student.value("xhat_hand"), "xhat_hand", 4)
    assert_tensor_close(
        got, expected, rtol=0.0, atol=1e-4, what=f"xhat_hand (four decimals, for {_numbers_ex1(v)})"
    )


@ex1.test(points=1)
def running_statistics(student):
    v = student.variant
    *_, rm, rv = _ex1_answers(v)
    assert_number_close(
        student.value("run_mean_hand"), rm, tol=1e-4, what=f"run_mean_hand (for {_numbers_ex1(v)})"
    )
    assert_number_close(
        student.value("run_var_hand"), rv, tol=1e-4, what=f"run_var_hand (for {_numbers_ex1(v)})"
    )


# --- bn-ex2: the running-statistics update --------------------------------------------------------
ex2 = CHAPTER.exercise(
    "bn-ex2",
    "Implement the running-statistics update",
    functions=["ex_update_running"],
    forbid=["BatchNorm1d", "batch_norm", "GhostBatchNorm1d"],
)


def _check_update(student, rm, rv, batch, momentum):
    layer = BatchNorm1d(batch.shape[1], momentum=momentum).to(batch.dtype)
    with torch.no_grad():
        layer.running_mean.copy_(rm)
        layer.running_var.copy_(rv)
    layer.train()(batch)
    got = student.call("ex_update_running", rm, rv, batch, momentum)
    assert isinstance(got, (list, tuple)) and len(got) == 2, (
        "ex_update_running should return (running_mean, running_var)"
    )
    tol = 1e-12 if batch.dtype == F64 else 1e-5
    what = f"on a {batch.dtype} batch of shape {tuple(batch.shape)} with momentum {momentum}"
    assert_tensor_close(
        got[0], layer.running_mean, rtol=tol, atol=tol, what="the new running mean " + what
    )
    assert_tensor_close(
        got[1], layer.running_var, rtol=tol, atol=tol, what="the new running variance " + what
    )


@ex2.test(points=1)
def one_batch_like_the_chapter(student):
    gen = torch.Generator().manual_seed(51)
    _check_update(
        student,
        torch.zeros(3, dtype=F64),
        torch.ones(3, dtype=F64),
        torch.randn(8, 3, generator=gen, dtype=F64) * 2 + 5,
        0.3,
    )


@ex2.test(points=2)
def other_sizes_momenta_and_dtypes(student):
    """Batches of two, momentum 1 and 0.01, float32, and running statistics far from (0, 1)."""
    gen = torch.Generator().manual_seed(52)
    for n, c, momentum, dtype in [
        (2, 4, 0.1, F64),
        (16, 1, 1.0, F64),
        (5, 6, 0.01, F64),
        (32, 3, 0.5, torch.float32),
    ]:
        rm = torch.randn(c, generator=gen, dtype=dtype)
        rv = torch.rand(c, generator=gen, dtype=dtype) + 0.5
        _check_update(
            student, rm, rv, torch.randn(n, c, generator=gen, dtype=dtype) * 3 - 1, momentum
        )


# --- bn-ex3: batch size 2 against 64 ------------------------------------------------------------------
ex3 = CHAPTER.exercise(
    "bn-ex3", "Batch size 2 against batch size 64", manual="part 1: the predictions, in words"
)


@ex3.test(points=1)
def measured_noise_ratio(student):
    ratio = as_float(student.value("measured_ratio"), "measured_ratio")
    assert abs(ratio / math.sqrt(32) - 1) < 0.1, (
        f"measured_ratio = {ratio:.3f}: the noise of the batch mean should be about sqrt(32) = 5.66 times larger"
    )


@ex3.test(points=1)
def x_hat_of_random_pairs(student):
    pairs = student.value("pairs")
    assert isinstance(pairs, torch.Tensor) and pairs.dim() == 2 and pairs.shape[0] == 2, (
        "pairs should be a tensor of shape (2, C): C pairs"
    )
    expected = batch_norm(pairs.to(F64), None, None, training=True)
    got = student.value("xhat_pairs")
    assert isinstance(got, torch.Tensor), "xhat_pairs should be a tensor"
    assert_tensor_close(
        got.to(F64), expected, rtol=1e-6, atol=1e-9, what="xhat_pairs", check_dtype=False
    )


# --- bn-ex4: group norm ------------------------------------------------------------------------------
ex4 = CHAPTER.exercise(
    "bn-ex4",
    "Implement group norm",
    functions=["ex_group_norm"],
    forbid=[
        "group_norm",
        "GroupNorm",
        "layer_norm",
        "LayerNorm",
        "instance_norm",
        "batch_norm",
        "BatchNorm1d",
        "BatchNorm2d",
    ],
)


def _check_group_norm(student, x, groups, eps=None):
    args = (x, groups) if eps is None else (x, groups, eps)
    got = student.call("ex_group_norm", *args)
    want = F.group_norm(x, groups, eps=1e-5 if eps is None else eps)
    tol = 1e-10 if x.dtype == F64 else 1e-4
    what = f"ex_group_norm on a {x.dtype} input of shape {tuple(x.shape)} with {groups} groups"
    assert_tensor_close(
        got, want, rtol=tol, atol=tol, what=what + ("" if eps is None else f", eps={eps}")
    )


@ex4.test(points=1)
def features_signals_and_maps(student):
    gen = torch.Generator().manual_seed(41)
    for shape, groups in [((4, 12), 3), ((4, 12, 7), 4), ((2, 6, 5, 5), 2)]:
        _check_group_norm(student, torch.randn(shape, generator=gen, dtype=F64) * 2 + 1, groups)


@ex4.test(points=2)
def one_group_every_channel_eps_and_float32(student):
    """G = 1 (layer norm), G = C (instance norm), a larger eps, float32, values far from 0."""
    gen = torch.Generator().manual_seed(42)
    _check_group_norm(student, torch.randn(3, 8, 9, generator=gen, dtype=F64), 1)
    _check_group_norm(student, torch.randn(3, 8, 9, generator=gen, dtype=F64), 8)
    _check_group_norm(student, torch.randn(5, 10, 4, generator=gen, dtype=F64) * 0.01, 5, 1e-3)
    _check_group_norm(student, torch.randn(6, 16, 3, generator=gen) * 3 + 50, 4)
