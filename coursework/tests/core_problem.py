"""Hidden tests for the chapter "The core problem: memorization vs generalization" (book/core_problem.ipynb)."""

import torch

from coursework.spec import Chapter, assert_number_close
from regcourse.experiments.core_problem import diagnose
from regcourse.penalties import l2_penalty

CHAPTER = Chapter("core_problem", "The core problem: memorization vs generalization")

# --- cp-ex1: gaps and diagnoses by hand --------------------------------------------------------
ex1 = CHAPTER.exercise("cp-ex1", "Gaps and diagnoses by hand", manual="part 3: which model to deploy, and what next")


@ex1.test(points=1)
def diagnoses(student):
    by_hand = student.value("by_hand")
    assert isinstance(by_hand, dict), f"by_hand should be a dictionary, got {type(by_hand).__name__}"
    for name, (tr, te) in {"A": (100.0, 81.5), "B": (93.0, 85.0), "C": (78.0, 76.5)}.items():
        assert by_hand.get(name) == diagnose(tr, te), f"by_hand[{name!r}] = {by_hand.get(name)!r} is not the diagnosis"


# --- cp-ex2: the diagnosis rule ----------------------------------------------------------------------
ex2 = CHAPTER.exercise("cp-ex2", "Implement the diagnosis rule", functions=["ex_diagnose"], forbid=["diagnose"])


def _check(student, pairs):
    for tr, te in pairs:
        got, want = student.call("ex_diagnose", tr, te), diagnose(tr, te)
        assert got == want, f"ex_diagnose({tr}, {te}) = {got!r}, expected {want!r}"


@ex2.test(points=1)
def every_threshold_on_a_grid(student):
    grid = [k * 5.0 for k in range(21)]
    _check(student, [(tr, te) for tr in grid for te in grid if te <= tr][::3] + [(95.0, 80.0), (95.0, 90.0)])


@ex2.test(points=2)
def off_grid_and_boundary_values(student):
    """Gaps of exactly 5 and 15, accuracies just above and below 80 and 95, integers and floats."""
    _check(student, [(96.0, 81.0), (96.0, 91.0), (94.999, 94.0), (95.0, 94.5), (80.0, 79.0), (79.99, 79.0),
                     (100, 85), (100, 95), (97.3, 92.31), (81.9, 67.0), (50.0, 49.0), (88.8, 84.0), (0.0, 0.0)])


# --- cp-ex3: the penalized objective -------------------------------------------------------------------
ex3 = CHAPTER.exercise("cp-ex3", "The penalized objective by hand",
                       manual="part 3: the lambda at which the penalty equals the data term")


@ex3.test(points=1)
def empirical_risk(student):
    risk = torch.tensor([0.2, 0.5, 1.1], dtype=torch.float64).mean().item()
    assert_number_close(student.value("risk_by_hand"), risk, tol=1e-6, what="risk_by_hand")


@ex3.test(points=1)
def objective(student):
    w = torch.tensor([3.0, -4.0], dtype=torch.float64)
    value = torch.tensor([0.2, 0.5, 1.1], dtype=torch.float64).mean().item() + l2_penalty(w, 0.1).item()
    assert_number_close(student.value("objective_by_hand"), value, tol=1e-5, what="objective_by_hand")


# --- cp-ex4: clean labels ----------------------------------------------------------------------------------
ex4 = CHAPTER.exercise("cp-ex4", "Take the noise away", manual="the predictions and the explanation")


@ex4.test(points=1)
def clean_run_with_the_asked_options(student):
    options = student.value("clean_res", "options")
    assert isinstance(options, dict), "clean_res should be the result of run('core_problem', ...)"
    asked = {"label_noise": 0.0, "seeds": 3}
    wrong = {k: options.get(k) for k, v in asked.items() if options.get(k) != v}
    assert not wrong, f"clean_res was run with {wrong}, the exercise asks for {asked}"
