"""Hidden tests for the chapter "Early stopping" (book/early_stopping.ipynb)."""

import torch

from coursework.spec import Chapter, as_float
from regcourse.early_stopping import simulate

CHAPTER = Chapter("early_stopping", "Early stopping")

# --- es-ex1: patience by hand ------------------------------------------------------------
ex1 = CHAPTER.exercise(
    "es-ex1", "Patience by hand", manual="part 3: does either setting find the lowest loss?"
)
BOOK_EX1 = {
    "val_ex1": [0.120, 0.095, 0.081, 0.083, 0.080, 0.084, 0.079, 0.082, 0.085, 0.086, 0.078],
    "patience_ex1": 3,
    "delta_ex1": 0.002,
}


def _stops(v):
    """(stop, best) without and with the threshold, as early stopping decides on these numbers."""
    return (
        tuple(simulate(v["val_ex1"], v["patience_ex1"])),
        tuple(simulate(v["val_ex1"], v["patience_ex1"], min_delta=v["delta_ex1"])),
    )


def _draw_ex1(rng):
    """Eleven losses with three decimals on a noisy U (down to a minimum at epoch 3 to 7, then
    up, with noise of up to 0.004, and in half the draws a last loss below all others), P from 2 to 4 and delta from a short list. Drawn again
    unless: both settings stop before epoch 11, the threshold changes the answer, no two losses
    differ by exactly delta (no ties to argue about), and neither of the book's answers fits."""
    book = _stops(BOOK_EX1)
    while True:
        bottom_epoch, bottom = rng.randint(3, 7), rng.randint(60, 90) / 1000
        drop, rise = rng.uniform(0.02, 0.05), rng.uniform(0.001, 0.003)
        values = []
        for epoch in range(1, 12):
            if epoch <= bottom_epoch:
                trend = bottom + drop * ((bottom_epoch - epoch) / (bottom_epoch - 1)) ** 2
            else:
                trend = bottom + rise * (epoch - bottom_epoch)
            values.append(round(trend + rng.uniform(-0.004, 0.004), 3))
        if rng.random() < 0.5:  # a late dip below the minimum, as in the book's list
            values[-1] = round(min(values) - rng.randint(1, 3) / 1000, 3)
        v = {
            "val_ex1": values,
            "patience_ex1": rng.randint(2, 4),
            "delta_ex1": rng.choice([0.001, 0.002, 0.003, 0.005]),
        }
        plain, delta = _stops(v)
        step = round(v["delta_ex1"] * 1000)
        ties = any(round((a - b) * 1000) == step for a in values for b in values)
        if (
            plain[0] < 11
            and delta[0] < 11
            and plain != delta
            and not ties
            and plain != book[0]
            and delta != book[1]
        ):
            return v


ex1.variants(_draw_ex1, published=BOOK_EX1)


def _epochs(student, names, expected, what):
    for name, want in zip(names, expected):
        got = as_float(student.value(name), name)
        assert got == want, (
            f"{name} = {got:g} is not what early stopping does on these losses ({what})"
        )


def _what(v, delta):
    return f"P = {v['patience_ex1']}" + (f", delta = {v['delta_ex1']}" if delta else ", delta = 0")


@ex1.test(points=1)
def without_threshold(student):
    v = student.variant
    _epochs(student, ("by_hand_stop", "by_hand_best"), _stops(v)[0], _what(v, False))


@ex1.test(points=1)
def with_threshold(student):
    v = student.variant
    _epochs(student, ("by_hand_stop_delta", "by_hand_best_delta"), _stops(v)[1], _what(v, True))


# --- es-ex2: the stopping rule --------------------------------------------------------------
ex2 = CHAPTER.exercise(
    "es-ex2",
    "Implement the stopping rule",
    functions=["ex_patience_stop"],
    forbid=["simulate", "EarlyStopping"],
)


def _check_curves(student, curves):
    for curve in curves:
        for patience in (1, 2, 3, 4, 7):
            want = simulate(curve, patience).stop_epoch
            got = student.call("ex_patience_stop", curve, patience)
            assert not isinstance(got, bool) and isinstance(got, int) and got == want, (
                f"ex_patience_stop({curve}, {patience}) = {got!r}, expected {want}"
            )


@ex2.test(points=1)
def hand_made_curves(student):
    """A single epoch, rising, falling, flat, a late minimum and a tie with the best."""
    _check_curves(
        student,
        [
            [0.5],
            [1.0, 2.0, 3.0, 4.0],
            [4.0, 3.0, 2.0, 1.0],
            [1.0] * 6,
            [0.9, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.7],
            [0.5, 0.4, 0.4, 0.4, 0.3, 0.4],
        ],
    )


@ex2.test(points=2)
def random_curves_with_ties(student):
    gen = torch.Generator().manual_seed(99)
    curves = []
    for _ in range(60):
        n = int(torch.randint(1, 25, (1,), generator=gen))
        curves.append((torch.randint(0, 5, (n,), generator=gen) / 4).tolist())
    _check_curves(student, curves)


# --- es-ex3: the threshold on the real curve -----------------------------------------------------
ex3 = CHAPTER.exercise(
    "es-ex3", "Predict, then measure: the threshold", manual="part 1: the predictions"
)


@ex3.test(points=2)
def ex3_holds_simulate_for_each_setting(student):
    """ex3[(patience, min_delta)] for patience 2 and 10 and the five thresholds, on the run's full_val."""
    full_val = student.value("full_val")
    ex3 = student.value("ex3")
    assert isinstance(ex3, dict), f"ex3 should be a dictionary, got {type(ex3).__name__}"
    for p in (2, 10):
        for d in (0.0, 0.005, 0.01, 0.02, 0.05):
            assert (p, d) in ex3, f"ex3 has no entry for patience {p}, min_delta {d}"
            got = tuple(ex3[p, d]) if isinstance(ex3[p, d], (list, tuple)) else ex3[p, d]
            assert got == tuple(simulate(full_val, p, min_delta=d)), (
                f"ex3[{p}, {d}] = {got!r} is not what early stopping does on full_val"
            )


# --- es-ex4: monitor the accuracy ---------------------------------------------------------------
ex4 = CHAPTER.exercise("es-ex4", "Monitor the accuracy instead", manual="part 1: the predictions")


@ex4.test(points=1)
def by_acc_is_simulate_in_max_mode(student):
    """by_acc is simulate(curves["val_acc"], 10, mode="max") on the chapter's run."""
    curves = student.value("curves")
    assert isinstance(curves, dict) and "val_acc" in curves, (
        "curves should be the run's measurements"
    )
    got = student.value("by_acc")
    got = tuple(got) if isinstance(got, (list, tuple)) else got
    want = tuple(simulate(curves["val_acc"], 10, mode="max"))
    assert got == want, f"by_acc = {got!r} is not what early stopping on the accuracy does ({want})"


# --- es-ex5: the benchmark's learning rate ---------------------------------------------------------
ex5 = CHAPTER.exercise(
    "es-ex5",
    "Predict, then measure: the benchmark's learning rate",
    timeout=60,
    manual="part 1: the predictions, compared with the measurement",
)


@ex5.test(points=1)
def fast_is_the_run_at_the_benchmark_rate(student):
    options = student.value("fast", "options")
    assert isinstance(options, dict), (
        f"fast should be the result of run(...), got options {options!r}"[:300]
    )
    assert as_float(options.get("lr"), "fast's lr") == 0.01, "fast was not run with lr=0.01"
    assert options.get("seeds") == 1, "fast should be run with seeds=1"
