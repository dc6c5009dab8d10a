"""Hidden tests for the chapter "Weight decay" (book/weight_decay.ipynb)."""

import math

import torch

from coursework.spec import Chapter, Expr, as_float, assert_number_close, assert_tensor_close
from regcourse.penalties import adam_init, adam_l2_step, adamw_step, sgd_step, shrink_path

CHAPTER = Chapter("weight_decay", "Weight decay: L2, L1 and decoupled")
F64 = torch.float64

# --- wd-ex1: one step by hand ------------------------------------------------------------
ex1 = CHAPTER.exercise("wd-ex1", "One step by hand")


def _hand_step(student, penalty):
    hand = student.value("hand")
    assert isinstance(hand, dict), f"hand should be a dictionary, got {type(hand).__name__}"
    step = sgd_step(torch.tensor([-0.8], dtype=F64), torch.tensor([0.3], dtype=F64), 0.05, 0.1, penalty=penalty)
    for key, expected in [(f"{penalty}_total", step.total_grad.item()), (f"{penalty}_weight", step.weight.item())]:
        assert key in hand, f"hand has no entry {key!r}"
        assert_number_close(hand[key], expected, tol=1e-9, what=f'hand["{key}"]')


@ex1.test(points=1)
def l2_total_gradient_and_weight(student):
    _hand_step(student, "l2")


@ex1.test(points=1)
def l1_total_gradient_and_weight(student):
    _hand_step(student, "l1")


# --- wd-ex2: the two SGD steps -----------------------------------------------------------------
ex2 = CHAPTER.exercise("wd-ex2", "Implement the two SGD steps", functions=["ex_sgd_l2_step", "ex_sgd_l1_step"],
                       forbid=["sgd_step", "l2_grad", "l1_grad", "l1_prox_step", "SGD"])

CASES = [  # shape, lr, lam, dtype
    ((6,), 0.1, 0.3, F64), ((3, 4), 0.05, 0.01, F64), ((2, 2, 3), 0.5, 2.0, F64),
    ((5,), 0.01, 0.0, F64), ((8,), 0.2, 0.7, torch.float32),
]


def _check_step(student, name, penalty):
    gen = torch.Generator().manual_seed(7)
    for shape, lr, lam, dtype in CASES:
        w = torch.randn(shape, generator=gen, dtype=dtype)
        w.view(-1)[::3] = 0.0   # exact zeros: sign(0) = 0
        g = torch.randn(shape, generator=gen, dtype=dtype)
        expected = sgd_step(w, g, lr, lam, penalty=penalty).weight
        tol = 1e-12 if dtype == F64 else 1e-6
        assert_tensor_close(student.call(name, w, g, lr, lam), expected, rtol=tol, atol=tol,
                            what=f"{name}(w, g, lr={lr}, lam={lam}) for w of shape {shape} ({dtype})")


@ex2.test(points=2)
def l2_step_matches_sgd_step(student):
    """ex_sgd_l2_step against sgd_step(penalty="l2") on several shapes, strengths and dtypes."""
    _check_step(student, "ex_sgd_l2_step", "l2")


@ex2.test(points=2)
def l1_step_matches_sgd_step(student):
    """ex_sgd_l1_step against sgd_step(penalty="l1"), with weights exactly 0."""
    _check_step(student, "ex_sgd_l1_step", "l1")


# --- wd-ex3: when the L1 weight reaches zero ----------------------------------------------
ex3 = CHAPTER.exercise("wd-ex3", "When does the L1 weight reach zero?",
                       manual="how the step changes when lambda doubles or eta halves (in words)")


def _measured():
    start = torch.tensor([0.05], dtype=F64)
    path = shrink_path(start, 0.1, 0.03, 60, "l1_prox")[:, 0]
    step = int((path == 0).nonzero()[0])
    return step, shrink_path(start, 0.1, 0.03, step, "l2")[-1, 0].item()


@ex3.test(points=1)
def predicted_step(student):
    step, _ = _measured()
    got = as_float(student.value("predicted"), "predicted")
    assert got == step, f"predicted = {got:g}, but the proximal L1 step reaches 0 at step {step}"


@ex3.test(points=1)
def predicted_l2_weight(student):
    _, weight = _measured()
    assert_number_close(student.value("predicted_l2"), weight, tol=1e-10, what="predicted_l2")


# --- wd-ex4: Adam + L2 without data --------------------------------------------------------------
ex4 = CHAPTER.exercise("wd-ex4", "Adam + L2 without any data",
                       manual="the explanation of why Adam + L2 behaves like an L1 step of size eta")


def _adam_runs():
    w_l2 = w_dw = torch.ones(1, dtype=F64)
    s_l2 = s_dw = adam_init(w_l2)
    zero = torch.zeros(1, dtype=F64)
    for _ in range(50):
        w_l2, s_l2 = adam_l2_step(w_l2, zero, s_l2, lr=0.01, lam=0.01)
        w_dw, s_dw = adamw_step(w_dw, zero, s_dw, lr=0.01, lam=0.01)
    return w_dw.item(), w_l2.item()


@ex4.test(points=1)
def adamw_prediction(student):
    adamw, _ = _adam_runs()
    assert_number_close(student.value("predicted_adamw"), adamw, tol=1e-12, what="predicted_adamw")


@ex4.test(points=1)
def adam_l2_prediction(student):
    _, adam_l2 = _adam_runs()
    got = as_float(student.value("predicted_adam_l2"), "predicted_adam_l2")
    assert math.isfinite(got) and abs(got - adam_l2) < 0.05, (
        f"predicted_adam_l2 = {got:.4f} is more than 0.05 away from where Adam + L2 leaves the weight")


# --- wd-ex5: which parameters to decay -------------------------------------------------------
ex5 = CHAPTER.exercise("wd-ex5", "Which parameters to decay", functions=["ex_decay_split"],
                       forbid=["decay_split", "param_groups"],
                       manual="why the decayed numbers outnumber the others, in words")

_MODELS = {  # built in the student's process; the same code builds the reference here
    "the MLP with layer norm": "__import__('regcourse.models', fromlist=['x']).mnist1d_model('mlp', norm='layer')",
    "the 1-D CNN with batch norm": "__import__('regcourse.models', fromlist=['x']).mnist1d_model('cnn', norm='batch')",
    "a digits CNN with group norm": "__import__('regcourse.models', fromlist=['x']).build_model('cnn', norm='group')",
    "a linear layer without bias and a layer norm":
        "__import__('torch').nn.Sequential(__import__('torch').nn.Linear(3, 4, bias=False), "
        "__import__('torch').nn.LayerNorm(4))",
    "a 2-D convolution with batch norm and a bias-free linear layer":
        "__import__('torch').nn.Sequential(__import__('torch').nn.Conv2d(2, 3, 3), "
        "__import__('torch').nn.BatchNorm2d(3), __import__('torch').nn.Flatten(), "
        "__import__('torch').nn.Linear(12, 5, bias=False))",
}


def _split_of(student, code):
    from regcourse.experiments.weight_decay import decay_split

    got = student.call("ex_decay_split", Expr(code))
    expected = decay_split(eval(code))  # noqa: S307 - our own fixed model-building code
    assert isinstance(got, (tuple, list)) and len(got) == 2, (
        f"ex_decay_split should return two lists of names, got {got!r}"[:300])
    return [list(part) if isinstance(part, (list, tuple)) else part for part in got], list(expected)


@ex5.test(points=1)
def the_chapters_networks(student):
    """The split of the MLP with layer norm and the 1-D CNN with batch norm."""
    for what in ("the MLP with layer norm", "the 1-D CNN with batch norm"):
        got, expected = _split_of(student, _MODELS[what])
        assert got == expected, f"for {what}, ex_decay_split gives {got!r}, expected {expected!r}"[:600]


@ex5.test(points=2)
def other_networks_in_order(student):
    """Group norm, 2-D convolutions, a layer without bias: both lists, in named_parameters() order."""
    for what in list(_MODELS)[2:]:
        got, expected = _split_of(student, _MODELS[what])
        assert got == expected, f"for {what}, ex_decay_split gives {got!r}, expected {expected!r}"[:600]
