"""Hidden tests for the chapter "Weight decay" (book/weight_decay.ipynb)."""

import math

import torch

from coursework.spec import Chapter, Expr, as_float, assert_number_close, assert_tensor_close
from regcourse.penalties import adam_init, adam_l2_step, adamw_step, sgd_step, shrink_path

CHAPTER = Chapter("weight_decay", "Weight decay: L2, L1 and decoupled")
F64 = torch.float64

# --- wd-ex1: one step by hand ------------------------------------------------------------
ex1 = CHAPTER.exercise("wd-ex1", "One step by hand")


def _ex1_answers(w, g, lr, lam):
    """(L2 total gradient, L2 weight, L1 total gradient, L1 weight) of one SGD step."""
    l2 = g + lam * w
    l1 = g + lam * math.copysign(1.0, w)
    return l2, w - lr * l2, l1, w - lr * l1


def _draw_ex1(rng):
    """w and g with one decimal, non-zero (so sign(w) is defined), eta and lambda from short lists;
    drawn again while the book's L2 or L1 answer (both numbers) would still be right."""
    book = _ex1_answers(-0.8, 0.3, 0.05, 0.1)
    while True:
        v = {
            "w_ex1": rng.choice([-1, 1]) * rng.randint(1, 15) / 10,
            "g_ex1": rng.choice([-1, 1]) * rng.randint(1, 9) / 10,
            "lr_ex1": rng.choice([0.01, 0.02, 0.05, 0.1, 0.2]),
            "lam_ex1": rng.choice([0.01, 0.05, 0.1, 0.2, 0.5]),
        }
        new = _ex1_answers(*v.values())
        same = [abs(a - b) < 1e-6 for a, b in zip(new, book)]
        if not (same[0] and same[1]) and not (same[2] and same[3]):
            return v


ex1.variants(_draw_ex1, published={"w_ex1": -0.8, "g_ex1": 0.3, "lr_ex1": 0.05, "lam_ex1": 0.1})


def _hand_step(student, penalty):
    v = student.variant
    hand = student.value("hand")
    assert isinstance(hand, dict), f"hand should be a dictionary, got {type(hand).__name__}"
    step = sgd_step(
        torch.tensor([v["w_ex1"]], dtype=F64),
        torch.tensor([v["g_ex1"]], dtype=F64),
        v["lr_ex1"],
        v["lam_ex1"],
        penalty=penalty,
    )
    numbers = f"w = {v['w_ex1']}, g = {v['g_ex1']}, eta = {v['lr_ex1']}, lambda = {v['lam_ex1']}"
    for key, expected in [
        (f"{penalty}_total", step.total_grad.item()),
        (f"{penalty}_weight", step.weight.item()),
    ]:
        assert key in hand, f"hand has no entry {key!r}"
        assert_number_close(hand[key], expected, tol=1e-9, what=f'hand["{key}"] (for {numbers})')


@ex1.test(points=1)
def l2_total_gradient_and_weight(student):
    _hand_step(student, "l2")


@ex1.test(points=1)
def l1_total_gradient_and_weight(student):
    _hand_step(student, "l1")


# --- wd-ex2: the two SGD steps -----------------------------------------------------------------
ex2 = CHAPTER.exercise(
    "wd-ex2",
    "Implement the two SGD steps",
    functions=["ex_sgd_l2_step", "ex_sgd_l1_step"],
    forbid=["sgd_step", "l2_grad", "l1_grad", "l1_prox_step", "SGD"],
)

CASES = [  # shape, lr, lam, dtype
    ((6,), 0.1, 0.3, F64),
    ((3, 4), 0.05, 0.01, F64),
    ((2, 2, 3), 0.5, 2.0, F64),
    ((5,), 0.01, 0.0, F64),
    ((8,), 0.2, 0.7, torch.float32),
]


def _check_step(student, name, penalty):
    gen = torch.Generator().manual_seed(7)
    for shape, lr, lam, dtype in CASES:
        w = torch.randn(shape, generator=gen, dtype=dtype)
        w.view(-1)[::3] = 0.0  # exact zeros: sign(0) = 0
        g = torch.randn(shape, generator=gen, dtype=dtype)
        expected = sgd_step(w, g, lr, lam, penalty=penalty).weight
        tol = 1e-12 if dtype == F64 else 1e-6
        assert_tensor_close(
            student.call(name, w, g, lr, lam),
            expected,
            rtol=tol,
            atol=tol,
            what=f"{name}(w, g, lr={lr}, lam={lam}) for w of shape {shape} ({dtype})",
        )


@ex2.test(points=2)
def l2_step_matches_sgd_step(student):
    """ex_sgd_l2_step against sgd_step(penalty="l2") on several shapes, strengths and dtypes."""
    _check_step(student, "ex_sgd_l2_step", "l2")


@ex2.test(points=2)
def l1_step_matches_sgd_step(student):
    """ex_sgd_l1_step against sgd_step(penalty="l1"), with weights exactly 0."""
    _check_step(student, "ex_sgd_l1_step", "l1")


# --- wd-ex3: when the L1 weight reaches zero ----------------------------------------------
ex3 = CHAPTER.exercise(
    "wd-ex3",
    "When does the L1 weight reach zero?",
    manual="how the step changes when lambda doubles or eta halves (in words)",
)


def _zero_step(w0, lr, lam, horizon=60):
    """The first step at which the proximal L1 path from w0 is exactly 0 (None if not within horizon)."""
    path = shrink_path(torch.tensor([w0], dtype=F64), lr, lam, horizon, "l1_prox")[:, 0]
    hits = (path == 0).nonzero()
    return int(hits[0]) if len(hits) else None


def _draw_ex3(rng):
    """w0 with two decimals, eta and lambda from short lists, so that the proximal step reaches 0
    within 10 to 40 steps, at step ceil(w0 / (eta lambda)) (w0 / (eta lambda) not near an integer),
    and neither the step nor the L2 weight is the book's."""
    while True:
        w0 = rng.randint(2, 30) / 100
        lr = rng.choice([0.05, 0.1, 0.2, 0.5])
        lam = rng.choice([0.01, 0.02, 0.03, 0.05, 0.1])
        ratio = w0 / (lr * lam)
        step = math.ceil(ratio)
        book_l2 = 0.05 * (1 - 0.1 * 0.03) ** 17  # the book's answers: step 17 and this weight
        if (
            10 <= step <= 40
            and step != 17
            and abs(ratio - round(ratio)) > 0.05
            and abs(w0 * (1 - lr * lam) ** step - book_l2) > 1e-6
            and _zero_step(w0, lr, lam) == step
        ):
            return {"w0_e": w0, "lr_e": lr, "lam_e": lam}


ex3.variants(_draw_ex3, published={"w0_e": 0.05, "lr_e": 0.1, "lam_e": 0.03})


def _measured(v):
    step = _zero_step(v["w0_e"], v["lr_e"], v["lam_e"])
    l2 = shrink_path(torch.tensor([v["w0_e"]], dtype=F64), v["lr_e"], v["lam_e"], step, "l2")[
        -1, 0
    ].item()
    return step, l2


def _ex3_numbers(v):
    return f"w0 = {v['w0_e']}, eta = {v['lr_e']}, lambda = {v['lam_e']}"


@ex3.test(points=1)
def predicted_step(student):
    v = student.variant
    step, _ = _measured(v)
    got = as_float(student.value("predicted"), "predicted")
    assert got == step, (
        f"predicted = {got:g}, but for {_ex3_numbers(v)} the proximal L1 step reaches 0 "
        f"at step {step}"
    )


@ex3.test(points=1)
def predicted_l2_weight(student):
    v = student.variant
    _, weight = _measured(v)
    assert_number_close(
        student.value("predicted_l2"),
        weight,
        tol=1e-10,
        what=f"predicted_l2 (for {_ex3_numbers(v)})",
    )


# --- wd-ex4: Adam + L2 without data --------------------------------------------------------------
ex4 = CHAPTER.exercise(
    "wd-ex4",
    "Adam + L2 without any data",
    manual="the explanation of why Adam + L2 behaves like an L1 step of size eta",
)


def _adam_runs(steps, lr, lam):
    w_l2 = w_dw = torch.ones(1, dtype=F64)
    s_l2 = s_dw = adam_init(w_l2)
    zero = torch.zeros(1, dtype=F64)
    for _ in range(steps):
        w_l2, s_l2 = adam_l2_step(w_l2, zero, s_l2, lr=lr, lam=lam)
        w_dw, s_dw = adamw_step(w_dw, zero, s_dw, lr=lr, lam=lam)
    return w_dw.item(), w_l2.item()


def _draw_ex4(rng):
    """20 to 60 steps, eta and lambda from short lists, drawn so that the L1-like prediction
    1 - steps * eta lies within 0.04 of where Adam + L2 really ends (the test allows 0.05), and
    the book's predictions (AdamW 0.9999 ** 50, Adam + L2 0.5) are wrong for the new numbers."""
    while True:
        steps = rng.randint(20, 60)
        lr = rng.choice([0.002, 0.004, 0.005, 0.008, 0.01])
        lam = rng.choice([0.001, 0.002, 0.005, 0.01, 0.02, 0.05])
        adamw, adam_l2 = _adam_runs(steps, lr, lam)
        book_adamw, book_adam_l2 = 0.9999**50, 0.5  # the book's two predictions
        if (
            abs(adam_l2 - (1 - steps * lr)) < 0.04
            and abs(adam_l2 - book_adam_l2) > 0.1
            and abs(adamw - book_adamw) > 1e-6
        ):
            return {"steps_ex4": steps, "lr_ex4": lr, "lam_ex4": lam}


ex4.variants(_draw_ex4, published={"steps_ex4": 50, "lr_ex4": 0.01, "lam_ex4": 0.01})


def _ex4_run(v):
    return _adam_runs(v["steps_ex4"], v["lr_ex4"], v["lam_ex4"])


def _ex4_numbers(v):
    return f"{v['steps_ex4']} steps, eta = {v['lr_ex4']}, lambda = {v['lam_ex4']}"


@ex4.test(points=1)
def adamw_prediction(student):
    v = student.variant
    adamw, _ = _ex4_run(v)
    assert_number_close(
        student.value("predicted_adamw"),
        adamw,
        tol=1e-12,
        what=f"predicted_adamw (for {_ex4_numbers(v)})",
    )


@ex4.test(points=1)
def adam_l2_prediction(student):
    v = student.variant
    _, adam_l2 = _ex4_run(v)
    got = as_float(student.value("predicted_adam_l2"), "predicted_adam_l2")
    assert math.isfinite(got) and abs(got - adam_l2) < 0.05, (
        f"predicted_adam_l2 = {got:.4f} is more than 0.05 away from where Adam + L2 leaves the weight "
        f"after {_ex4_numbers(v)}"
    )


# --- wd-ex5: which parameters to decay -------------------------------------------------------
ex5 = CHAPTER.exercise(
    "wd-ex5",
    "Which parameters to decay",
    functions=["ex_decay_split"],
    forbid=["decay_split", "param_groups"],
    manual="why the decayed numbers outnumber the others, in words",
)

_MODELS = {  # built in the student's process; the same code builds the reference here
    "the MLP with layer norm": "__import__('regcourse.models', fromlist=['x']).mnist1d_model('mlp', norm='layer')",
    "the 1-D CNN with batch norm": "__import__('regcourse.models', fromlist=['x']).mnist1d_model('cnn', norm='batch')",
    "a digits CNN with group norm": "__import__('regcourse.models', fromlist=['x']).build_model('cnn', norm='group')",
    "a linear layer without bias and a layer norm": "__import__('torch').nn.Sequential(__import__('torch').nn.Linear(3, 4, bias=False), "
    "__import__('torch').nn.LayerNorm(4))",
    "a 2-D convolution with batch norm and a bias-free linear layer": "__import__('torch').nn.Sequential(__import__('torch').nn.Conv2d(2, 3, 3), "
    "__import__('torch').nn.BatchNorm2d(3), __import__('torch').nn.Flatten(), "
    "__import__('torch').nn.Linear(12, 5, bias=False))",
}


def _split_of(student, code):
    from regcourse.experiments.weight_decay import decay_split

    got = student.call("ex_decay_split", Expr(code))
    expected = decay_split(eval(code))  # noqa: S307 - our own fixed model-building code
    assert isinstance(got, (tuple, list)) and len(got) == 2, (
        f"ex_decay_split should return two lists of names, got {got!r}"[:300]
    )
    return [list(part) if isinstance(part, (list, tuple)) else part for part in got], list(expected)


@ex5.test(points=1)
def the_chapters_networks(student):
    """The split of the MLP with layer norm and the 1-D CNN with batch norm."""
    for what in ("the MLP with layer norm", "the 1-D CNN with batch norm"):
        got, expected = _split_of(student, _MODELS[what])
        assert got == expected, f"for {what}, ex_decay_split gives {got!r}, expected {expected!r}"[
            :600
        ]


@ex5.test(points=2)
def other_networks_in_order(student):
    """Group norm, 2-D convolutions, a layer without bias: both lists, in named_parameters() order."""
    for what in list(_MODELS)[2:]:
        got, expected = _split_of(student, _MODELS[what])
        assert got == expected, f"for {what}, ex_decay_split gives {got!r}, expected {expected!r}"[
            :600
        ]
