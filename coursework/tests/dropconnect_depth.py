"""Hidden tests for the chapter "DropConnect and stochastic depth" (book/dropconnect_depth.ipynb)."""

import math

import torch
from torch import nn

from coursework.spec import Chapter, Expr, as_float, assert_tensor_close
from regcourse.depth import ResidualBlock, apply_drop_path_mask, linear_decay_survival
from regcourse.dropout import apply_dropconnect_mask, dropout_mask

CHAPTER = Chapter("dropconnect_depth", "DropConnect and stochastic depth")
F64 = torch.float64


def _numbers(value, what, size):
    values = value.reshape(-1).tolist() if isinstance(value, torch.Tensor) else value
    assert isinstance(values, (list, tuple)) and len(values) == size, (
        f"{what} should hold {size} numbers, got {value!r}"
    )
    return torch.tensor([as_float(v, f"an entry of {what}") for v in values], dtype=F64)


# --- dcsd-ex1: DropConnect by hand -----------------------------------------------------------
ex1 = CHAPTER.exercise(
    "dcsd-ex1",
    "DropConnect by hand",
    manual="part 2: the inference pre-activation and the expectation, in words",
)

# drop probabilities whose 1/(1 - p) is 1.25, 2, 2.5, 4 or 5: every answer is a short decimal
_P_CLEAN = [0.2, 0.5, 0.6, 0.75, 0.8]
_NONZERO_INTS = [-3, -2, -1, 1, 2, 3]


def _draw_ex1(rng):
    """W: one decimal, non-zero, |w| <= 2; v: non-zero integers; M: one or two weights dropped,
    at least one kept in each row (so both outputs depend on the mask and neither is all zero)."""
    weights = [[rng.choice([-1, 1]) * rng.randint(1, 20) / 10 for _ in range(2)] for _ in range(2)]
    while True:
        mask = [[rng.randint(0, 1) for _ in range(2)] for _ in range(2)]
        if 1 <= sum(row.count(0) for row in mask) <= 2 and all(1 in row for row in mask):
            break
    return {
        "W_ex": weights,
        "v_ex": [rng.choice(_NONZERO_INTS) for _ in range(2)],
        "p_ex": rng.choice(_P_CLEAN),
        "M_ex": mask,
    }


ex1.variants(
    _draw_ex1,
    published={
        "W_ex": [[1.0, -2.0], [0.5, 0.5]],
        "v_ex": [2, 1],
        "p_ex": 0.2,
        "M_ex": [[1, 0], [1, 1]],
    },
)


@ex1.test(points=1)
def by_hand_is_the_training_pre_activation(student):
    v = student.variant
    w, m = torch.tensor(v["W_ex"], dtype=F64), torch.tensor(v["M_ex"], dtype=F64)
    expected = apply_dropconnect_mask(torch.tensor(v["v_ex"], dtype=F64), w, None, m, v["p_ex"])
    assert_tensor_close(
        _numbers(student.value("by_hand"), "by_hand", 2),
        expected,
        rtol=1e-6,
        atol=1e-6,
        what=f"by_hand (W = {v['W_ex']}, v = {v['v_ex']}, p = {v['p_ex']}, M = {v['M_ex']})",
    )


# --- dcsd-ex2: one block, both conventions ----------------------------------------------------
ex2 = CHAPTER.exercise(
    "dcsd-ex2",
    "One block, both conventions",
    manual="part 3: the expected training output compared with inference",
)


def _draw_ex2(rng):
    """x: non-zero integers; the diagonal of A: non-zero multiples of 0.25, |a| <= 2; p: _P_CLEAN."""
    return {
        "x_ex": [rng.choice(_NONZERO_INTS) for _ in range(2)],
        "a_ex": [rng.choice([-1, 1]) * rng.randint(1, 8) / 4 for _ in range(2)],
        "p_block": rng.choice(_P_CLEAN),
    }


ex2.variants(_draw_ex2, published={"x_ex": [2, -1], "a_ex": [0.25, -1.5], "p_block": 0.2})


def _block_outputs(mode, v):
    branch = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        branch.weight.copy_(torch.diag(torch.tensor(v["a_ex"], dtype=F64)))
    blk = ResidualBlock(branch, p=v["p_block"], mode=mode)
    x = torch.tensor([v["x_ex"]], dtype=F64)
    with torch.no_grad():
        return {
            "kept": blk(x, torch.ones(1, dtype=F64))[0],
            "skipped": blk(x, torch.zeros(1, dtype=F64))[0],
            "inference": blk.eval()(x)[0],
        }


def _check_mode(student, mode):
    v = student.variant
    numbers = f"x = {v['x_ex']}, diagonal of A = {v['a_ex']}, p = {v['p_block']}"
    answers = student.value("answers")
    assert isinstance(answers, dict) and isinstance(answers.get(mode), dict), (
        f"answers[{mode!r}] should be a dictionary"
    )
    for key, expected in _block_outputs(mode, v).items():
        assert key in answers[mode], f"answers[{mode!r}] has no entry {key!r}"
        got = _numbers(answers[mode][key], f"answers[{mode!r}][{key!r}]", 2)
        assert_tensor_close(
            got, expected, rtol=1e-6, atol=1e-6, what=f"answers[{mode!r}][{key!r}] ({numbers})"
        )


@ex2.test(points=1)
def train_scale(student):
    _check_mode(student, "train_scale")


@ex2.test(points=1)
def test_scale(student):
    _check_mode(student, "test_scale")


# --- dcsd-ex3: drop path -------------------------------------------------------------------------
ex3 = CHAPTER.exercise(
    "dcsd-ex3",
    "Implement drop path",
    functions=["ex_drop_path"],
    forbid=["apply_drop_path_mask", "drop_path", "DropPath", "ResidualBlock"],
)


def _check_drop_path(student, x, p, mask):
    tol = 1e-12 if x.dtype == F64 else 1e-6
    assert_tensor_close(
        student.call("ex_drop_path", x, p, mask),
        apply_drop_path_mask(x, mask, p),
        rtol=tol,
        atol=tol,
        what=f"ex_drop_path on a {x.dtype} batch of shape {tuple(x.shape)} with p = {p}",
    )


@ex3.test(points=1)
def image_batch(student):
    gen = torch.Generator().manual_seed(41)
    x = torch.randn(6, 3, 4, 4, generator=gen)
    _check_drop_path(student, x, 0.3, dropout_mask((6,), 0.3, generator=gen))


@ex3.test(points=2)
def other_shapes_dtypes_and_masks(student):
    """Batches of vectors and scalars, float64, p = 0, and masks of only zeros or only ones."""
    gen = torch.Generator().manual_seed(42)
    for shape, p, dtype in [
        ((5, 7), 0.5, torch.float32),
        ((9,), 0.25, F64),
        ((4, 2, 3), 0.0, F64),
        ((3, 5), 0.8, F64),
    ]:
        x = torch.randn(shape, generator=gen, dtype=dtype)
        _check_drop_path(student, x, p, dropout_mask((shape[0],), p, generator=gen))
    x = torch.randn(4, 3, generator=gen, dtype=F64)
    _check_drop_path(student, x, 0.4, torch.zeros(4))
    _check_drop_path(student, x, 0.4, torch.ones(4))


# --- dcsd-ex4: expected depth -------------------------------------------------------------------
ex4 = CHAPTER.exercise(
    "dcsd-ex4",
    "How deep is the network on average?",
    functions=["count_active"],
    timeout=60,
    manual="part 1: the predictions and the smallest possible expected depth",
)


@ex4.test(points=2)
def counts_match_the_survival_probabilities(student):
    """count_active on fresh models (other depths and s_L than the chapter's): mean within 5 standard errors."""
    n = 2000
    x = Expr(
        f"__import__('torch').randn({n}, 64, generator=__import__('torch').Generator().manual_seed(77))"
    )
    for blocks, s_last, seed in [(12, 0.5, 3), (6, 0.3, 4), (20, 0.9, 5)]:
        model = Expr(
            f"__import__('regcourse.depth', fromlist=['x']).build_residual_mlp(seed=1, width=8, "
            f"num_blocks={blocks}, survival_last={s_last}, "
            f"generator=__import__('torch').Generator().manual_seed({seed}))"
        )
        counts = student.call("count_active", model, x)
        assert isinstance(counts, torch.Tensor) and tuple(counts.shape) == (n,), (
            f"count_active should return one count per example, shape ({n},), got {counts!r}"[:300]
        )
        assert bool(((counts >= 0) & (counts <= blocks) & (counts == counts.round())).all()), (
            f"counts should be whole numbers between 0 and {blocks}"
        )
        surv = linear_decay_survival(blocks, s_last).double()
        se = math.sqrt((surv * (1 - surv)).sum().item() / n)
        mean, expected = counts.double().mean().item(), surv.sum().item()
        assert abs(mean - expected) <= 5 * se + 1e-12, (
            f"with {blocks} blocks and s_L = {s_last} the mean count is {mean:.3f}, expected {expected:.3f} "
            f"(standard error {se:.3f})"
        )
