"""Hidden tests for the chapter "Dropout" (book/dropout.ipynb)."""

import math

import torch

from coursework.spec import Chapter, as_float, assert_tensor_close
from regcourse.dropout import apply_dropout_mask, dropout_mask

CHAPTER = Chapter("dropout", "Dropout")

# --- do-ex1: the worked example by hand ---------------------------------------------
ex1 = CHAPTER.exercise(
    "do-ex1",
    "Inverted dropout by hand",
    manual="parts 2 and 3: the inference output and E[h~_3], in words",
)


P_EX1 = [0.2, 0.5, 0.6, 0.75, 0.8]  # drop probabilities whose 1 / (1 - p) is a short decimal


def _ex1_output(v):
    h = torch.tensor(v["h_ex1"], dtype=torch.float64)
    return apply_dropout_mask(h, torch.tensor(v["mask_ex1"], dtype=torch.float64), v["p_ex1"])


def _draw_ex1(rng):
    """h: four non-zero values with one decimal in [-2, 2]; p from P_EX1; a mask that keeps at
    least one unit and drops at least one; drawn again while the book's answer would still fit."""
    book = _ex1_output({"h_ex1": [1.0, -0.5, 2.0, 0.4], "p_ex1": 0.2, "mask_ex1": [1, 1, 0, 1]})
    while True:
        mask = [rng.randint(0, 1) for _ in range(4)]
        if 0 < sum(mask) < 4:
            v = {
                "h_ex1": [rng.choice([-1, 1]) * rng.randint(1, 20) / 10 for _ in range(4)],
                "p_ex1": rng.choice(P_EX1),
                "mask_ex1": mask,
            }
            if not torch.allclose(_ex1_output(v), book, rtol=1e-4, atol=1e-6):
                return v


ex1.variants(
    _draw_ex1, published={"h_ex1": [1.0, -0.5, 2.0, 0.4], "p_ex1": 0.2, "mask_ex1": [1, 1, 0, 1]}
)


@ex1.test(points=1)
def by_hand_is_the_training_output(student):
    """by_hand equals the inverted-dropout output of the student's numbers."""
    v = student.variant
    expected = _ex1_output(v)
    got = student.value("by_hand")
    values = got.tolist() if isinstance(got, torch.Tensor) else got
    assert isinstance(values, (list, tuple)) and len(values) == 4, (
        f"by_hand should be 4 numbers, got {got!r}"
    )
    got64 = torch.tensor([as_float(v, "an entry of by_hand") for v in values], dtype=torch.float64)
    assert_tensor_close(
        got64,
        expected,
        rtol=1e-6,
        atol=1e-9,
        what=f"by_hand (for h = {v['h_ex1']}, p = {v['p_ex1']}, m = {v['mask_ex1']})",
    )


# --- do-ex2: implement inverted dropout ----------------------------------------------
ex2 = CHAPTER.exercise(
    "do-ex2",
    "Implement inverted dropout",
    functions=["ex_inverted_dropout"],
    forbid=["apply_dropout_mask", "dropout", "Dropout", "dropout_"],
)


def _check(student, h, mask, p):
    expected = apply_dropout_mask(h, mask, p)
    tol = 1e-12 if h.dtype == torch.float64 else 1e-6
    got = student.call("ex_inverted_dropout", h, mask, p)
    assert_tensor_close(
        got,
        expected,
        rtol=tol,
        atol=tol,
        what=f"ex_inverted_dropout on a {h.dtype} tensor of shape {tuple(h.shape)} with p = {p}",
    )


@ex2.test(points=1)
def worked_example(student):
    """The chapter's example h = (1, -0.5, 2, 0.4), mask (1, 1, 0, 1), p = 0.2."""
    _check(student, torch.tensor([1.0, -0.5, 2.0, 0.4]), torch.tensor([1.0, 1.0, 0.0, 1.0]), 0.2)


@ex2.test(points=2)
def other_shapes_probabilities_and_dtypes(student):
    """Random tensors of 1 to 3 dimensions, float32 and float64, p from 0 to 0.9."""
    gen = torch.Generator().manual_seed(2024)
    for shape, p, dtype in [
        ((3, 5), 0.5, torch.float32),
        ((2, 3, 4), 0.1, torch.float64),
        ((7,), 0.0, torch.float32),
        ((16,), 0.9, torch.float64),
        ((1, 1), 0.25, torch.float32),
    ]:
        h = torch.randn(shape, generator=gen, dtype=dtype)
        _check(student, h, dropout_mask(shape, p, generator=gen, dtype=dtype), p)


@ex2.test(points=1)
def all_dropped_and_all_kept(student):
    """A mask of only zeros gives zeros; a mask of only ones scales every unit by 1/(1-p)."""
    h = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    _check(student, h, torch.zeros(9, dtype=torch.float64), 0.5)
    _check(student, h, torch.ones(9, dtype=torch.float64), 0.75)


# --- do-ex3: Monte Carlo spread ---------------------------------------------------------
ex3 = CHAPTER.exercise(
    "do-ex3",
    "How fast does the sampled average settle?",
    functions=["mc_spread"],
    manual="part 1: the predictions, compared with the measurements",
)


@ex3.test(points=2)
def spread_follows_sigma_over_sqrt_n(student):
    """mc_spread(N, p) is within 20% of 0.8 * sqrt(p / (1 - p)) / sqrt(N), also for unseen N and p."""
    for n, p in [(400, 0.4), (200, 0.5), (100, 0.1), (900, 0.7)]:
        got = as_float(student.call("mc_spread", n, p), f"mc_spread({n}, {p})")
        predicted = 0.8 * math.sqrt(p / (1 - p)) / math.sqrt(n)
        # The std of R = 400 estimates is uncertain by 1/sqrt(2R) = 3.5%: 20% is about 6 of those.
        assert abs(got / predicted - 1) < 0.2, (
            f"mc_spread({n}, {p}) = {got:.4f}, but the spread of averages of {n} masks is "
            f"{predicted:.4f}; did you rescale by 1/(1-p) and average each row before the std?"
        )


# --- do-ex4: spatial dropout with a given mask -----------------------------------------------
ex4 = CHAPTER.exercise(
    "do-ex4",
    "Spatial dropout with a given mask",
    functions=["ex_channel_dropout"],
    forbid=[
        "apply_dropout_mask",
        "channel_dropout",
        "dropout1d",
        "dropout2d",
        "Dropout1d",
        "Dropout2d",
    ],
    manual="the expected number of dropped channels and the probability of keeping all",
)


def _check_channels(student, shape, p, dtype, mask=None):
    gen = torch.Generator().manual_seed(sum(shape) + int(100 * p))
    h = torch.randn(shape, generator=gen, dtype=dtype)
    if mask is None:
        mask = dropout_mask(shape[:2], p, generator=gen, dtype=dtype)
    full = mask.reshape(*shape[:2], *(1,) * (len(shape) - 2)).expand(shape)
    expected = apply_dropout_mask(h, full, p)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    got = student.call("ex_channel_dropout", h, mask, p)
    assert_tensor_close(
        got,
        expected,
        rtol=tol,
        atol=tol,
        what=f"ex_channel_dropout on a {dtype} tensor of shape {shape} with p = {p}",
    )


@ex4.test(points=1)
def one_dimensional_feature_maps(student):
    """(N, C, L) feature maps, float32 and float64."""
    _check_channels(student, (4, 6, 9), 0.3, torch.float32)
    _check_channels(student, (2, 3, 5), 0.5, torch.float64)


@ex4.test(points=1)
def two_dimensional_feature_maps(student):
    """(N, C, H, W) feature maps: the same mask entry for every pixel of a channel."""
    _check_channels(student, (3, 5, 4, 4), 0.4, torch.float32)
    _check_channels(student, (2, 2, 3, 7), 0.1, torch.float64)


@ex4.test(points=1)
def no_channel_and_every_channel_kept(student):
    """A mask of zeros gives zeros; a mask of ones scales every entry by 1/(1-p)."""
    _check_channels(
        student, (2, 3, 4), 0.25, torch.float64, mask=torch.zeros(2, 3, dtype=torch.float64)
    )
    _check_channels(
        student, (2, 3, 2, 2), 0.75, torch.float64, mask=torch.ones(2, 3, dtype=torch.float64)
    )
