"""Hidden tests for the chapter "Choosing and combining regularizers" (book/putting_together.ipynb)."""

import torch

from coursework.spec import Chapter, Expr, assert_tensor_close
from regcourse.experiments.combining import ABLATION_ARMS, NONE_ARM
from regcourse.models import build_model

CHAPTER = Chapter("putting_together", "Choosing and combining regularizers")

# --- pt-ex1: which layers switch between train() and eval() ---------------------------------
ex1 = CHAPTER.exercise("pt-ex1", "Which layers switch?",
                       manual="the explanation of what each switching layer does differently")


@ex1.test(points=1)
def the_switching_layers_are_batch_norm_and_dropout(student):
    """`switching` lists exactly the two BatchNorm2d layers and the Dropout layer, in order."""
    got = student.value("switching")
    assert isinstance(got, (list, tuple)), f"switching should be a list of 'name: Type' strings, got {got!r}"
    types = [str(s).split(": ")[-1] for s in got]
    assert types == ["BatchNorm2d", "BatchNorm2d", "Dropout"], (
        f"switching names the layer types {types}; which layers of the CNN behave differently "
        "in train() and eval() mode?")


# --- pt-ex2: predictions done right ----------------------------------------------------------
ex2 = CHAPTER.exercise("pt-ex2", "Predictions done right", functions=["ex_predict"],
                       forbid=["evaluate"])


def _model_expr(kind: str, seed: int) -> Expr:
    """A model built in the student's process, left in train() mode (the forgotten-eval state)."""
    kwargs = "dropout=0.5, batch_norm=True"
    return Expr(f"__import__('regcourse.models', fromlist=['x']).build_model('{kind}', seed={seed}, "
                f"{kwargs}).train()")


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
        assert isinstance(got, torch.Tensor), f"ex_predict should return a tensor, got {type(got).__name__}"
        assert got.dtype == torch.int64, f"ex_predict should return int64 labels, got {got.dtype}"
        assert_tensor_close(got, want, rtol=0, atol=0, what=f"ex_predict on a {kind} left in train() mode")


@ex2.test(points=1)
def a_single_example_works(student):
    """One example at a time: in train() mode batch norm would raise, in eval() mode it is fine."""
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(11))
    got = student.call("ex_predict", _model_expr("mlp", 7), x)
    assert_tensor_close(got, _expected("mlp", 7, x), rtol=0, atol=0, what="ex_predict on one example")


# --- pt-ex3: the ablation ---------------------------------------------------------------------
ex3 = CHAPTER.exercise("pt-ex3", "Which component matters most?",
                       manual="the prediction written down before measuring, and its comparison with the result")


@ex3.test(points=1)
def the_ablation_was_run_over_every_arm(student):
    """`abl` is the result of the `ablation` experiment, with one row per arm."""
    assert student.value("abl", "name") == "ablation", "abl should hold the result of run('ablation', ...)"
    arms = [row["arm"] for row in student.value("abl", "rows")]
    expected = list(ABLATION_ARMS) + [NONE_ARM]
    assert arms == expected, f"the ablation's arms are {arms}, expected {expected}"
