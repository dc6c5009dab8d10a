"""Hidden tests for the chapter "Data augmentation" (book/augmentation.ipynb)."""

import math

import torch

from coursework.spec import Chapter, as_float, assert_number_close
from regcourse import augment as A

CHAPTER = Chapter("augmentation", "Data augmentation")

# --- aug-ex1: a CutMix weight by hand ----------------------------------------------------------------
ex1 = CHAPTER.exercise("aug-ex1", "A CutMix label weight by hand")


BOOK_EX1 = {"size_ex1": 16, "row_ex1": 4, "col_ex1": 28}
SIDES = [8, 10, 12, 14, 18, 20, 24]  # even, so the centre pixel sits at offset side // 2


def _box_ex1(v):
    return A.cutmix_box(
        32, 32, center=(v["row_ex1"], v["col_ex1"]), size=(v["size_ex1"], v["size_ex1"])
    )


def _draw_ex1(rng):
    """A square box of an even side other than the book's 16 (so the unclipped weight differs),
    centred on a pixel of the 32 x 32 image near an edge: the box is clipped in at least one
    direction; drawn again while the book's clipped box or weight would still fit."""
    book_box, book_lam = _box_ex1(BOOK_EX1)
    while True:
        side, row, col = rng.choice(SIDES), rng.randint(0, 31), rng.randint(0, 31)
        starts = (row - side // 2, col - side // 2)
        clipped = any(start < 0 or start + side > 32 for start in starts)
        v = {"size_ex1": side, "row_ex1": row, "col_ex1": col}
        box, lam = _box_ex1(v)
        if clipped and box != book_box and abs(lam - book_lam) > 1e-9:
            return v


ex1.variants(_draw_ex1, published=BOOK_EX1)


def _numbers_ex1(v):
    return f"a box of side {v['size_ex1']} centred at row {v['row_ex1']}, column {v['col_ex1']}"


@ex1.test(points=1)
def clipped_box_and_weight(student):
    v = student.variant
    box, lam = _box_ex1(v)
    got = student.value("by_hand_box")
    assert isinstance(got, (list, tuple)) and tuple(got) == tuple(box), (
        f"by_hand_box = {got!r} is not the clipped box of {_numbers_ex1(v)}"
    )
    assert_number_close(
        student.value("by_hand_lam"), lam, tol=1e-12, what=f"by_hand_lam (for {_numbers_ex1(v)})"
    )


@ex1.test(points=1)
def unclipped_weight(student):
    v = student.variant
    side = v["size_ex1"]
    assert_number_close(
        student.value("by_hand_unclipped"),
        1 - side * side / (32 * 32),
        tol=1e-12,
        what=f"by_hand_unclipped (for {_numbers_ex1(v)})",
    )


# --- aug-ex2: the CutMix weight -----------------------------------------------------------------------
ex2 = CHAPTER.exercise(
    "aug-ex2",
    "Implement the CutMix label weight",
    functions=["ex_cutmix_weight"],
    forbid=["cutmix_box", "cutmix"],
)


def _check_boxes(student, cases):
    for h, w, center, size in cases:
        want = A.cutmix_box(h, w, center, size)[1]
        got = as_float(
            student.call("ex_cutmix_weight", h, w, center, size),
            f"ex_cutmix_weight({h}, {w}, {center}, {size})",
        )
        assert math.isclose(got, want, rel_tol=0, abs_tol=1e-12), (
            f"ex_cutmix_weight({h}, {w}, {center}, {size}) = {got!r}, expected {want!r}"
        )


@ex2.test(points=1)
def random_small_boxes(student):
    gen = torch.Generator().manual_seed(61)
    cases = []
    for _ in range(60):
        h, w = (int(v) for v in torch.randint(1, 20, (2,), generator=gen))
        center = (
            int(torch.randint(0, h, (1,), generator=gen)),
            int(torch.randint(0, w, (1,), generator=gen)),
        )
        size = (
            int(torch.randint(0, h + 1, (1,), generator=gen)),
            int(torch.randint(0, w + 1, (1,), generator=gen)),
        )
        cases.append((h, w, center, size))
    _check_boxes(student, cases)


@ex2.test(points=2)
def corners_empty_and_full_boxes(student):
    """Boxes at the four corners, of size 0, of the whole image, odd and even sizes, non-square images."""
    _check_boxes(
        student,
        [
            (32, 32, (0, 0), (16, 16)),
            (32, 32, (31, 31), (16, 16)),
            (10, 24, (9, 0), (5, 7)),
            (10, 24, (0, 23), (4, 9)),
            (8, 8, (4, 4), (0, 0)),
            (8, 8, (4, 4), (8, 8)),
            (7, 5, (3, 2), (7, 5)),
            (64, 48, (20, 30), (13, 11)),
            (1, 1, (0, 0), (1, 1)),
        ],
    )


# --- aug-ex3: expected Cutout fraction ----------------------------------------------------------------
ex3 = CHAPTER.exercise(
    "aug-ex3",
    "How much does Cutout really erase?",
    functions=["ex_cutout_fraction"],
    manual="part 1: which sizes are clipped most, and why",
)


def _exact_fraction(s, h, w):
    """Average of the clipped area over every centre pixel (boxes start s // 2 before the centre)."""
    total = 0
    for cy in range(h):
        for cx in range(w):
            rows = min(cy - s // 2 + s, h) - max(cy - s // 2, 0)
            cols = min(cx - s // 2 + s, w) - max(cx - s // 2, 0)
            total += rows * cols
    return total / (h * w) / (h * w)


@ex3.test(points=2)
def expected_fraction_for_many_sizes(student):
    """Every s on 8 x 8 digits, and other image sizes."""
    for s, h, w in [(s, 8, 8) for s in range(1, 9)] + [
        (3, 5, 7),
        (4, 10, 6),
        (1, 1, 1),
        (6, 4, 4),
        (5, 12, 3),
    ]:
        got = as_float(
            student.call("ex_cutout_fraction", s, h, w), f"ex_cutout_fraction({s}, {h}, {w})"
        )
        want = _exact_fraction(s, h, w)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (
            f"ex_cutout_fraction({s}, {h}, {w}) = {got:.6f}, expected {want:.6f}"
        )


# --- aug-ex4: Mixup's alpha --------------------------------------------------------------------------------
ex4 = CHAPTER.exercise(
    "aug-ex4", "Mixup's alpha", manual="part 1: the prediction and what the variance says"
)


@ex4.test(points=1)
def measured_shares(student):
    from scipy.stats import beta as beta_dist

    shares = student.value("shares")
    assert isinstance(shares, (list, tuple)) and len(shares) == 3, (
        f"shares should hold 3 numbers, got {shares!r}"
    )
    for alpha, got in zip((0.2, 1.0, 5.0), shares):
        exact = beta_dist(alpha, alpha).cdf(0.7) - beta_dist(alpha, alpha).cdf(0.3)
        se = math.sqrt(exact * (1 - exact) / 20_000)
        value = as_float(got, f"the share for alpha = {alpha}")
        assert abs(value - exact) < 5 * se, (
            f"the share for alpha = {alpha} is {value:.3f}, the exact share {exact:.3f}"
        )


# --- aug-ex5: the circular shift ---------------------------------------------------------------------
ex5 = CHAPTER.exercise(
    "aug-ex5",
    "Implement the circular shift",
    functions=["ex_shift"],
    forbid=["roll", "shift", "random_shift", "RandomShift1d"],
)


def _check_shift(student, x, shifts):
    got = student.call("ex_shift", x, shifts)
    want = torch.stack([torch.roll(row, int(k)) for row, k in zip(x, shifts)])
    assert isinstance(got, torch.Tensor) and got.shape == x.shape and got.dtype == x.dtype, (
        f"ex_shift should return a {x.dtype} tensor of shape {tuple(x.shape)}, got {got!r}"[:300]
    )
    assert torch.equal(got, want), (
        f"ex_shift(x, shifts={shifts.tolist()}) on a signal of length {x.shape[1]} differs from "
        "shifting each row circularly (torch.roll)"
    )


@ex5.test(points=1)
def small_positive_and_negative_shifts(student):
    gen = torch.Generator().manual_seed(71)
    _check_shift(
        student,
        torch.randn(5, 9, generator=gen, dtype=torch.float64),
        torch.tensor([0, 1, -1, 4, -4]),
    )


@ex5.test(points=2)
def shifts_beyond_the_length_other_lengths_and_dtypes(student):
    """Shifts larger than L and below -L, a single row, float32 and integer signals."""
    gen = torch.Generator().manual_seed(72)
    x = torch.randn(6, 40, generator=gen)
    _check_shift(student, x, torch.randint(-100, 100, (6,), generator=gen))
    _check_shift(student, torch.arange(7.0).view(1, 7), torch.tensor([15]))
    _check_shift(student, torch.arange(24).view(4, 6), torch.tensor([-7, 6, 13, -1]))
