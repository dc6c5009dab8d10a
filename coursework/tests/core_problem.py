"""Hidden tests for the chapter "The core problem: memorization vs generalization" (book/core_problem.ipynb)."""

import torch

from coursework.spec import Chapter, assert_number_close, assert_tensor_close
from regcourse.experiments.core_problem import diagnose
from regcourse.penalties import l2_penalty

CHAPTER = Chapter("core_problem", "The core problem: memorization vs generalization")

# --- cp-ex1: gaps and diagnoses by hand (per-student numbers) -------------------------------------
ex1 = CHAPTER.exercise(
    "cp-ex1", "Gaps and diagnoses by hand", manual="part 3: which model to deploy, and what next"
)
MODELS = ("A", "B", "C")

# Per diagnosis: the range of the training accuracy and of the gap, in tenths of a point. Every
# range keeps half a point from each threshold of the rule (gap 5 and 15, training accuracy 80
# and 95), so the subtraction of two one-decimal numbers can never land on the other side.
_RANGES = {
    "Severe overfitting": ((850, 1000), (155, 350)),
    "Mild overfitting": ((750, 1000), (55, 145)),
    "Good fit": ((955, 1000), (0, 45)),
    "Slight underfitting": ((805, 945), (0, 45)),
    "Severe underfitting": ((500, 795), (0, 45)),
}
_PUBLISHED1 = {"tr_A": 100.0, "te_A": 81.5, "tr_B": 93.0, "te_B": 85.0, "tr_C": 78.0, "te_C": 76.5}


def _draw_ex1(rng):
    """Three different diagnoses, in an order other than the book's, and accuracies for each."""
    book = tuple(diagnose(_PUBLISHED1[f"tr_{m}"], _PUBLISHED1[f"te_{m}"]) for m in MODELS)
    while True:
        labels = tuple(rng.sample(sorted(_RANGES), 3))
        if all(
            a != b for a, b in zip(labels, book)
        ):  # the book's diagnoses are wrong for every model
            break
    values = {}
    for model, label in zip(MODELS, labels):
        (tr_lo, tr_hi), (gap_lo, gap_hi) = _RANGES[label]
        train = rng.randint(tr_lo, tr_hi)
        gap = rng.randint(gap_lo, min(gap_hi, train))  # the test accuracy stays >= 0
        values[f"tr_{model}"], values[f"te_{model}"] = train / 10, (train - gap) / 10
    return values


ex1.variants(_draw_ex1, published=_PUBLISHED1)


def _ex1_models(student):
    v = student.variant
    return {m: (v[f"tr_{m}"], v[f"te_{m}"]) for m in MODELS}


def _numbers(models):
    return ", ".join(f"{m}: {tr:.1f} / {te:.1f}" for m, (tr, te) in models.items())


@ex1.test(points=1)
def gaps(student):
    """The gap (1.2) of each model, from the student's own accuracies."""
    models = _ex1_models(student)
    got = student.value("gaps_by_hand")
    assert isinstance(got, dict), f"gaps_by_hand should be a dictionary, got {type(got).__name__}"
    for name, (tr, te) in models.items():
        assert name in got, f"gaps_by_hand has no entry {name!r} (your models: {_numbers(models)})"
        assert_number_close(
            got[name], tr - te, tol=1e-6, what=f"gaps_by_hand[{name!r}] ({_numbers(models)})"
        )


@ex1.test(points=1)
def diagnoses(student):
    """The diagnosis of each model, from the student's own accuracies."""
    models = _ex1_models(student)
    by_hand = student.value("by_hand")
    assert isinstance(by_hand, dict), (
        f"by_hand should be a dictionary, got {type(by_hand).__name__}"
    )
    for name, (tr, te) in models.items():
        assert by_hand.get(name) == diagnose(tr, te), (
            f"by_hand[{name!r}] = {by_hand.get(name)!r} is not the diagnosis of train {tr:.1f}%, test {te:.1f}%"
        )


# --- cp-ex2: the diagnosis rule ----------------------------------------------------------------------
ex2 = CHAPTER.exercise(
    "cp-ex2", "Implement the diagnosis rule", functions=["ex_diagnose"], forbid=["diagnose"]
)


def _check(student, pairs):
    for tr, te in pairs:
        got, want = student.call("ex_diagnose", tr, te), diagnose(tr, te)
        assert got == want, f"ex_diagnose({tr}, {te}) = {got!r}, expected {want!r}"


@ex2.test(points=1)
def every_threshold_on_a_grid(student):
    grid = [k * 5.0 for k in range(21)]
    _check(
        student,
        [(tr, te) for tr in grid for te in grid if te <= tr][::3] + [(95.0, 80.0), (95.0, 90.0)],
    )


@ex2.test(points=2)
def off_grid_and_boundary_values(student):
    """Gaps of exactly 5 and 15, accuracies just above and below 80 and 95, integers and floats."""
    _check(
        student,
        [
            (96.0, 81.0),
            (96.0, 91.0),
            (94.999, 94.0),
            (95.0, 94.5),
            (80.0, 79.0),
            (79.99, 79.0),
            (100, 85),
            (100, 95),
            (97.3, 92.31),
            (81.9, 67.0),
            (50.0, 49.0),
            (88.8, 84.0),
            (0.0, 0.0),
        ],
    )


# --- cp-ex3: the penalized objective (per-student numbers) ------------------------------------------
ex3 = CHAPTER.exercise("cp-ex3", "The penalized objective by hand")


def _draw_ex3(rng):
    """Two non-zero integer weights in [-5, 5], three losses of one decimal in [0.1, 2.5], a lambda."""
    weights = [rng.choice([k for k in range(-5, 6) if k != 0]) for _ in range(2)]
    losses = [rng.randint(1, 25) / 10 for _ in range(3)]
    return {
        "w_ex": weights,
        "losses_ex": losses,
        "lam_ex": rng.choice([0.01, 0.02, 0.05, 0.1, 0.2, 0.5]),
    }


ex3.variants(_draw_ex3, published={"w_ex": [3, -4], "losses_ex": [0.2, 0.5, 1.1], "lam_ex": 0.1})


def _ex3_numbers(student):
    v = student.variant
    w = torch.tensor(v["w_ex"], dtype=torch.float64)
    risk = torch.tensor(v["losses_ex"], dtype=torch.float64).mean().item()
    what = f"(w = {v['w_ex']}, losses {v['losses_ex']}, lambda = {v['lam_ex']:g})"
    return w, risk, v["lam_ex"], what


@ex3.test(points=1)
def empirical_risk(student):
    _, risk, _, what = _ex3_numbers(student)
    assert_number_close(student.value("risk_by_hand"), risk, tol=1e-6, what=f"risk_by_hand {what}")


@ex3.test(points=1)
def objective(student):
    w, risk, lam, what = _ex3_numbers(student)
    value = risk + l2_penalty(w, lam).item()
    assert_number_close(
        student.value("objective_by_hand"), value, tol=1e-5, what=f"objective_by_hand {what}"
    )


@ex3.test(points=1)
def lambda_of_equal_terms(student):
    """The lambda at which the penalty (lambda/2)||w||^2 equals the empirical risk."""
    w, risk, _, what = _ex3_numbers(student)
    value = risk / l2_penalty(w, 1.0).item()
    assert_number_close(
        student.value("lam_equal_by_hand"),
        value,
        tol=1e-4,
        rel=True,
        what=f"lam_equal_by_hand {what}",
    )


# --- cp-ex4: one epoch of SGD by hand -------------------------------------------------------------
ex4 = CHAPTER.exercise(
    "cp-ex4",
    "One epoch of the loop, by hand",
    functions=["ex_sgd_epoch"],
    forbid=["SGD", "train_epoch", "minibatches", "Linear"],
)


def _reference_epoch(weight, bias, x, y, lr, batch_size, seed):
    """The same epoch with the package's loop: nn.Linear, torch.optim.SGD and train_epoch."""
    import torch.nn.functional as F

    from regcourse.training import minibatches, train_epoch

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    sgd = torch.optim.SGD(layer.parameters(), lr=lr)
    batches = minibatches(x, y, batch_size, torch.Generator().manual_seed(seed))
    train_epoch(layer, batches, F.cross_entropy, sgd)
    return layer.weight.detach(), layer.bias.detach()


def _check_epoch(student, n, features, classes, lr, batch_size, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(1000 + n + seed)
    w = torch.randn(classes, features, generator=gen, dtype=dtype) * 0.3
    b = torch.randn(classes, generator=gen, dtype=dtype) * 0.1
    x = torch.randn(n, features, generator=gen, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=gen)
    want_w, want_b = _reference_epoch(w, b, x, y, lr, batch_size, seed)
    got = student.call("ex_sgd_epoch", w, b, x, y, lr, batch_size, seed)
    what = f"ex_sgd_epoch on {n} examples, batches of {batch_size}, lr {lr}, seed {seed}"
    assert isinstance(got, (tuple, list)) and len(got) == 2, (
        f"{what} should return (weight, bias), got {got!r}"[:300]
    )
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_tensor_close(
        got[0], want_w, rtol=tol, atol=tol, what=f"the weight from {what}", check_dtype=False
    )
    assert_tensor_close(
        got[1], want_b, rtol=tol, atol=tol, what=f"the bias from {what}", check_dtype=False
    )


@ex4.test(points=1)
def one_batch_per_epoch(student):
    """A single batch holding every example: one step of gradient descent."""
    _check_epoch(student, n=12, features=4, classes=3, lr=0.5, batch_size=12, seed=0)


@ex4.test(points=2)
def shuffled_batches(student):
    """Several shuffled batches, a shorter last batch, other seeds and a float64 problem."""
    _check_epoch(student, n=100, features=40, classes=10, lr=0.1, batch_size=10, seed=7)
    _check_epoch(student, n=25, features=6, classes=3, lr=0.2, batch_size=10, seed=3)
    _check_epoch(
        student, n=30, features=5, classes=4, lr=0.05, batch_size=7, seed=11, dtype=torch.float64
    )


# --- cp-ex5: random labels on the whole training set ------------------------------------------------
ex5 = CHAPTER.exercise(
    "cp-ex5",
    "Random labels on the whole training set",
    timeout=120,
    manual="parts 1 and 3: the prediction and what to change",
)


@ex5.test(points=1)
def rl_full_is_the_asked_run(student):
    """rl_full is fit() of the chapter's MLP on all 4,000 signals with random labels (seed 0)."""
    from regcourse.data import mnist1d_split
    from regcourse.experiments.core_problem import fit
    from regcourse.models import mnist1d_model

    got = student.value("rl_full")
    assert isinstance(got, dict) and "train_acc" in got and "test_acc" in got, (
        f"rl_full should be the dictionary that fit() returns, got {got!r}"[:300]
    )
    want = fit(
        mnist1d_model("mlp", seed=0),
        mnist1d_split(random_labels=True, seed=0),
        epochs=40,
        lr=0.01,
        batch_size=100,
        seed=0,
    )
    for key in ("train_acc", "test_acc"):
        assert_number_close(got[key], want[key], tol=0.05, what=f"rl_full[{key!r}]")
