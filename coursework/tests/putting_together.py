"""Hidden tests for the chapter "Choosing and combining regularizers" (book/putting_together.ipynb)."""

import math

import torch
from scipy import stats

from coursework.spec import Chapter, Expr, as_float, assert_number_close, assert_tensor_close
from regcourse.models import build_model

CHAPTER = Chapter("putting_together", "Choosing and combining regularizers")

# --- pt-ex1: which layers switch between train() and eval() ---------------------------------
ex1 = CHAPTER.exercise(
    "pt-ex1",
    "Which layers switch?",
    manual="the explanation of what each switching layer does differently",
)


@ex1.test(points=1)
def the_switching_layers_are_batch_norm_and_dropout(student):
    """`switching` lists exactly the recipe MLP's two BatchNorm1d and two Dropout layers, in order."""
    got = student.value("switching")
    assert isinstance(got, (list, tuple)), (
        f"switching should be a list of 'name: Type' strings, got {got!r}"
    )
    types = [str(s).split(": ")[-1] for s in got]
    assert types == ["BatchNorm1d", "Dropout", "BatchNorm1d", "Dropout"], (
        f"switching names the layer types {types}; which layers of the MLP behave differently "
        "in train() and eval() mode?"
    )


# --- pt-ex2: predictions done right ----------------------------------------------------------
ex2 = CHAPTER.exercise(
    "pt-ex2", "Predictions done right", functions=["ex_predict"], forbid=["evaluate"]
)


def _model_expr(kind: str, seed: int) -> Expr:
    """A model built in the student's process, left in train() mode (the forgotten-eval state)."""
    kwargs = "dropout=0.5, batch_norm=True"
    return Expr(
        f"__import__('regcourse.models', fromlist=['x']).build_model('{kind}', seed={seed}, "
        f"{kwargs}).train()"
    )


def _expected(kind: str, seed: int, x: torch.Tensor) -> torch.Tensor:
    model = build_model(kind, seed=seed, dropout=0.5, batch_norm=True).eval()
    with torch.no_grad():
        return model(x).argmax(dim=1)


@ex2.test(points=2)
def predicts_in_eval_mode_from_a_model_left_in_train_mode(student):
    """An MLP and a CNN with dropout and batch norm, handed over in train() mode: the predictions
    must be the deterministic eval-mode ones (dropout off, running statistics), as int64 labels."""
    for kind, seed, n in [("mlp", 3, 16), ("cnn", 5, 8)]:
        x = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        got = student.call("ex_predict", _model_expr(kind, seed), x)
        want = _expected(kind, seed, x)
        assert isinstance(got, torch.Tensor), (
            f"ex_predict should return a tensor, got {type(got).__name__}"
        )
        assert got.dtype == torch.int64, f"ex_predict should return int64 labels, got {got.dtype}"
        assert_tensor_close(
            got, want, rtol=0, atol=0, what=f"ex_predict on a {kind} left in train() mode"
        )


@ex2.test(points=1)
def a_single_example_works(student):
    """One example at a time: in train() mode batch norm would raise, in eval() mode it is fine."""
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(11))
    got = student.call("ex_predict", _model_expr("mlp", 7), x)
    assert_tensor_close(
        got, _expected("mlp", 7, x), rtol=0, atol=0, what="ex_predict on one example"
    )


# --- pt-ex3: a paired t-test by hand ---------------------------------------------------------
ex3 = CHAPTER.exercise(
    "pt-ex3",
    "A paired t-test by hand",
    functions=["ex_paired_t"],
    forbid=["paired_difference", "ttest_rel", "stats", "scipy"],
    manual="the threshold the mean of the no-dropout differences had to exceed",
)


def _check_paired_t(student, a, b, what):
    ref = stats.ttest_rel(a, b)
    got = student.call("ex_paired_t", list(a), list(b))
    assert isinstance(got, (tuple, list)) and len(got) == 2, (
        f"ex_paired_t should return the pair (mean, t), got {got!r}"
    )
    mean = as_float(got[0], "the mean returned by ex_paired_t")
    t = as_float(got[1], "the t returned by ex_paired_t")
    want_mean = math.fsum(x - y for x, y in zip(a, b)) / len(a)
    assert_number_close(mean, want_mean, tol=1e-9, what=f"the mean difference for {what}")
    assert_number_close(t, float(ref.statistic), tol=1e-7, rel=True, what=f"t for {what}")


@ex3.test(points=2)
def matches_scipy_on_accuracies(student):
    """Three seeds' accuracies of two variants, as in the chapter's ablation, and a longer run."""
    _check_paired_t(student, [0.555, 0.552, 0.558], [0.489, 0.461, 0.497], "three seeds")
    gen = torch.Generator().manual_seed(7)
    a = (0.5 + 0.1 * torch.rand(10, generator=gen, dtype=torch.float64)).tolist()
    b = (0.5 + 0.1 * torch.rand(10, generator=gen, dtype=torch.float64)).tolist()
    _check_paired_t(student, a, b, "ten seeds")


@ex3.test(points=1)
def negative_differences_and_two_pairs(student):
    """A variant that is worse in every seed gives a negative mean and t; two pairs suffice."""
    _check_paired_t(student, [0.40, 0.42, 0.41, 0.45], [0.50, 0.49, 0.52, 0.53], "a worse variant")
    _check_paired_t(student, [1.0, 3.0], [0.5, 1.0], "two pairs")
