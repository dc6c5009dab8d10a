"""Weight penalties: L2, L1 and decoupled weight decay.

Conventions used throughout the course (chapter "Weight decay: L2, L1 and decoupled"):

* **L2** penalty ``(lam / 2) * ||w||_2^2``, so its gradient is ``lam * w``. This is
  exactly what ``torch.optim.SGD(weight_decay=lam)`` adds to the gradient.
* **L1** penalty ``lam * ||w||_1``, with (sub)gradient ``lam * sign(w)``, taking the
  value ``0`` at ``w = 0`` (as ``torch.sign`` and the autograd of ``torch.abs`` do).
* **Adam + L2** adds ``lam * w`` to the gradient *before* Adam's moment estimates, as
  ``torch.optim.Adam(weight_decay=lam)`` does. **AdamW** first shrinks the weight,
  ``w <- w - lr * lam * w``, and then takes a plain Adam step on the data gradient,
  as ``torch.optim.AdamW(weight_decay=lam)`` does (Loshchilov & Hutter, 2019).

All functions take and return tensors and never modify their inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import check_pair, check_same_shape, check_scalar, check_tensor

__all__ = [
    "PENALTIES",
    "SGDStep",
    "AdamState",
    "AdamStep",
    "l2_penalty",
    "l2_grad",
    "l1_penalty",
    "l1_grad",
    "sgd_step",
    "soft_threshold",
    "l1_prox_step",
    "shrink_path",
    "adam_init",
    "adam_l2_step",
    "adamw_step",
    "sgd_step_",
    "adamw_step_",
]

#: Penalty names accepted by :func:`sgd_step`.
PENALTIES = ("none", "l1", "l2")

#: Update rules accepted by :func:`shrink_path`.
_RULES = ("l2", "l1", "l1_prox")


# --- argument checks ---------------------------------------------------------------------
def _check_lam(lam) -> float:
    return check_scalar(lam, "lam", low=0.0)


def _check_lr(lr) -> float:
    return check_scalar(lr, "lr", low=0.0, closed="neither")


def _check_grad(grad, w: Tensor) -> Tensor:
    check_tensor(grad, "grad")
    check_same_shape(w, "w", grad, "grad")
    if grad.dtype != w.dtype:
        raise TypeError(f"grad must have the same dtype as w ({w.dtype}), got {grad.dtype}")
    return grad


def _check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


# --- penalties and their gradients -------------------------------------------------------
def l2_penalty(w: Tensor, lam: float) -> Tensor:
    r"""L2 penalty :math:`\frac{\lambda}{2}\lVert w\rVert_2^2`.

    The factor ``1/2`` makes the gradient ``lam * w`` (see :func:`l2_grad`), the
    convention of ``torch.optim.SGD(weight_decay=lam)``. Differentiable with autograd.

    Args:
        w (Tensor): the weights, a floating-point tensor of any shape.
        lam (float): the regularization strength :math:`\lambda \ge 0`.

    Returns:
        A 0-dimensional tensor of ``w``'s dtype.

    Example:
        >>> l2_penalty(torch.tensor([3.0, 4.0]), 0.1)
        tensor(1.2500)

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    lam = _check_lam(lam)
    return 0.5 * lam * (w * w).sum()


def l2_grad(w: Tensor, lam: float) -> Tensor:
    r"""Gradient of :func:`l2_penalty`: :math:`\lambda w`.

    It is proportional to the weight, so big weights are pulled back hard and small
    ones barely at all; no weight is ever pulled exactly to zero.

    Args:
        w (Tensor): the weights, a floating-point tensor of any shape.
        lam (float): the regularization strength :math:`\lambda \ge 0`.

    Returns:
        A tensor of the shape and dtype of ``w``.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    lam = _check_lam(lam)
    return lam * w


def l1_penalty(w: Tensor, lam: float) -> Tensor:
    r"""L1 penalty :math:`\lambda\lVert w\rVert_1 = \lambda\sum_i |w_i|`.

    Args:
        w (Tensor): the weights, a floating-point tensor of any shape.
        lam (float): the regularization strength :math:`\lambda \ge 0`.

    Returns:
        A 0-dimensional tensor of ``w``'s dtype.

    Example:
        >>> l1_penalty(torch.tensor([3.0, -4.0]), 0.1)
        tensor(0.7000)

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    lam = _check_lam(lam)
    return lam * w.abs().sum()


def l1_grad(w: Tensor, lam: float) -> Tensor:
    r"""(Sub)gradient of :func:`l1_penalty`: :math:`\lambda\,\operatorname{sign}(w)`.

    ``|w|`` has no derivative at ``w = 0``; any value in ``[-lam, lam]`` is a
    subgradient there. We take ``0``, as ``torch.sign`` and autograd of ``torch.abs`` do.
    The pull has the same size ``lam`` whatever the weight's size.

    Args:
        w (Tensor): the weights, a floating-point tensor of any shape.
        lam (float): the regularization strength :math:`\lambda \ge 0`.

    Returns:
        A tensor of the shape and dtype of ``w``.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    lam = _check_lam(lam)
    return lam * torch.sign(w)


# --- one SGD step -------------------------------------------------------------------------
class SGDStep(NamedTuple):
    """Result of :func:`sgd_step`."""

    #: data-loss gradient plus the penalty's gradient
    total_grad: Tensor
    #: the weight after the step, ``w - lr * total_grad``
    weight: Tensor


def sgd_step(w: Tensor, grad: Tensor, lr: float, lam: float = 0.0, penalty: str = "l2") -> SGDStep:
    r"""One plain gradient-descent step on the penalised loss.

    .. math::
        g_{\text{total}} = g + \nabla R(w), \qquad w' = w - \eta\, g_{\text{total}},

    with :math:`\nabla R(w) = \lambda w` for ``"l2"``, :math:`\lambda\operatorname{sign}(w)`
    for ``"l1"`` and ``0`` for ``"none"``. With ``penalty="l2"`` this is one step of
    ``torch.optim.SGD([w], lr=lr, weight_decay=lam)`` (no momentum).

    Args:
        w (Tensor): the current weights (floating point).
        grad (Tensor): the gradient of the data loss at ``w``, same shape and dtype.
        lr (float): the learning rate :math:`\eta > 0`.
        lam (float): the regularization strength :math:`\lambda \ge 0`. Must be ``0``
            when ``penalty="none"``. Default: ``0.0``.
        penalty (str): ``"l2"``, ``"l1"`` or ``"none"``. Default: ``"l2"``.

    Returns:
        SGDStep: ``(total_grad, weight)``, both of the shape of ``w``.

    Example:
        >>> w, g = torch.tensor([0.5]), torch.tensor([0.2])
        >>> sgd_step(w, g, lr=0.1, lam=0.01, penalty="l2").weight
        tensor([0.4795])

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    _check_grad(grad, w)
    lr = _check_lr(lr)
    lam = _check_lam(lam)
    penalty = _check_choice(penalty, "penalty", PENALTIES)
    if penalty == "none":
        if lam != 0.0:
            raise ValueError(f"lam must be 0 when penalty='none', got {lam:g}")
        total = grad.clone()
    elif penalty == "l2":
        total = grad.add(w, alpha=lam)  # g + lam * w, as torch.optim.SGD computes it
    else:
        total = grad.add(torch.sign(w), alpha=lam)
    return SGDStep(total, w.add(total, alpha=-lr))


# --- the proximal (soft-thresholding) L1 step ----------------------------------------------
def soft_threshold(x: Tensor, threshold: float) -> Tensor:
    r"""Soft-thresholding :math:`\operatorname{sign}(x)\max(|x| - \tau, 0)`.

    Moves every entry ``threshold`` towards zero and stops *at* zero: it never
    increases ``|x|`` and never changes a sign (an entry may become ``0``).

    Args:
        x (Tensor): a floating-point tensor.
        threshold (float): :math:`\tau \ge 0`.

    Returns:
        A tensor of the shape and dtype of ``x``.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(x, "x")
    threshold = check_scalar(threshold, "threshold", low=0.0)
    return torch.sign(x) * torch.clamp(x.abs() - threshold, min=0.0)


def l1_prox_step(w: Tensor, grad: Tensor, lr: float, lam: float) -> Tensor:
    r"""One proximal-gradient step for the L1 penalty (soft-thresholding).

    First the step on the data loss, then the exact minimiser of the L1 part:

    .. math::
        z = w - \eta g, \qquad
        w' = \operatorname{sign}(z)\,\max(|z| - \eta\lambda,\ 0).

    Why not the plain subgradient step :func:`sgd_step` with ``penalty="l1"``? It
    moves every nonzero weight by exactly ``lr * lam`` towards zero. A weight whose
    distance to zero is not a whole multiple of ``lr * lam`` (in floating point:
    essentially every weight) jumps over zero, gets pulled back from the other side,
    and then oscillates around zero for ever with an amplitude up to ``lr * lam``.
    The proximal step instead stops at zero when the pull is larger than what is
    left, so weights become *exactly* ``0.0`` and stay there while the data
    gradient is small (``|g| <= lam``): that is how L1 produces sparse weights.
    With ``grad = 0`` it is the subgradient step clipped at zero.

    Args:
        w (Tensor): the current weights (floating point).
        grad (Tensor): the gradient of the data loss at ``w``, same shape and dtype.
        lr (float): the learning rate :math:`\eta > 0`.
        lam (float): the L1 strength :math:`\lambda \ge 0`.

    Returns:
        The new weights, a tensor of the shape of ``w``.

    Example:
        >>> l1_prox_step(torch.tensor([0.0005, -0.3]), torch.zeros(2), lr=0.1, lam=0.01)
        tensor([ 0.0000, -0.2990])

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    _check_grad(grad, w)
    lr = _check_lr(lr)
    lam = _check_lam(lam)
    return soft_threshold(w - lr * grad, lr * lam)


def shrink_path(w0: Tensor, lr: float, lam: float, steps: int, rule: str = "l2") -> Tensor:
    r"""Weights over ``steps`` penalty-only steps (data gradient ``0``).

    Shows what the penalty alone does to a weight: ``"l2"`` and ``"l1"`` repeat
    :func:`sgd_step` (so ``"l2"`` gives :math:`w_t = (1-\eta\lambda)^t w_0`),
    ``"l1_prox"`` repeats :func:`l1_prox_step`.

    Args:
        w0 (Tensor): the starting weights (floating point).
        lr (float): the learning rate :math:`\eta > 0`.
        lam (float): the strength :math:`\lambda \ge 0`.
        steps (int): the number of steps :math:`T \ge 0`.
        rule (str): ``"l2"``, ``"l1"`` (subgradient) or ``"l1_prox"``. Default: ``"l2"``.

    Returns:
        A tensor of shape ``(steps + 1, *w0.shape)``; row ``t`` is :math:`w_t`.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w0, "w0")
    lr = _check_lr(lr)
    lam = _check_lam(lam)
    steps = check_scalar(steps, "steps", kind="int", low=0)
    rule = _check_choice(rule, "rule", _RULES)
    zero = torch.zeros_like(w0)
    path = [w0.clone()]
    for _ in range(steps):
        w = path[-1]
        if rule == "l1_prox":
            path.append(l1_prox_step(w, zero, lr, lam))
        else:
            path.append(sgd_step(w, zero, lr, lam, penalty=rule).weight)
    return torch.stack(path)


# --- Adam with L2 vs AdamW ----------------------------------------------------------------
class AdamState(NamedTuple):
    """Adam's state for one tensor of weights (what torch keeps in ``optimizer.state``)."""

    #: first-moment estimate (torch: ``exp_avg``)
    m: Tensor
    #: second-moment estimate (torch: ``exp_avg_sq``)
    v: Tensor
    #: number of steps taken so far
    t: int


class AdamStep(NamedTuple):
    """Result of :func:`adam_l2_step` and :func:`adamw_step`."""

    #: the weights after the step
    weight: Tensor
    #: the state to pass to the next step
    state: AdamState


def adam_init(w: Tensor) -> AdamState:
    """Fresh Adam state for weights ``w``: zero moments, ``t = 0``.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    return AdamState(torch.zeros_like(w), torch.zeros_like(w), 0)


def _check_adam_args(w, grad, state, lr, lam, betas, eps):
    check_tensor(w, "w")
    _check_grad(grad, w)
    if not isinstance(state, AdamState):
        raise TypeError(f"state must be an AdamState (see adam_init), got {type(state).__name__}")
    check_tensor(state.m, "state.m")
    check_tensor(state.v, "state.v")
    check_same_shape(w, "w", state.m, "state.m")
    check_same_shape(w, "w", state.v, "state.v")
    check_scalar(state.t, "state.t", kind="int", low=0)
    lr = _check_lr(lr)
    lam = _check_lam(lam)
    betas = check_pair(betas, "betas", "(beta1, beta2)")  # tuple, list, numpy array or tensor
    beta1 = check_scalar(betas[0], "betas[0]", low=0.0, high=1.0, closed="left")
    beta2 = check_scalar(betas[1], "betas[1]", low=0.0, high=1.0, closed="left")
    eps = check_scalar(eps, "eps", low=0.0)
    return lr, lam, beta1, beta2, eps


def _adam_update(w, grad, state, lr, beta1, beta2, eps) -> AdamStep:
    """Adam's step on gradient ``grad``, written as torch's single-tensor Adam computes it."""
    t = state.t + 1
    m = torch.lerp(state.m, grad, 1 - beta1)  # beta1 m + (1 - beta1) g
    v = torch.addcmul(state.v * beta2, grad, grad, value=1 - beta2)  # beta2 v + (1 - beta2) g^2
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    # eps is added to sqrt(v_hat), not inside the square root, as torch does
    denom = (v.sqrt() / bias_correction2**0.5).add_(eps)
    w_new = torch.addcdiv(w, m, denom, value=-lr / bias_correction1)
    return AdamStep(w_new, AdamState(m, v, t))


def adam_l2_step(
    w: Tensor,
    grad: Tensor,
    state: AdamState,
    lr: float = 1e-3,
    lam: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> AdamStep:
    r"""One Adam step with the L2 penalty in the gradient (``torch.optim.Adam(weight_decay=lam)``).

    .. math::
        \tilde g_t &= g_t + \lambda w_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\tilde g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\tilde g_t^{\,2} \\
        w_t &= w_{t-1} - \frac{\eta}{1-\beta_1^t}\,
               \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    The penalty's gradient goes through Adam's per-weight scaling
    :math:`1/\sqrt{\hat v}`: a weight with large data gradients gets almost no decay,
    one with tiny data gradients gets a lot. :func:`adamw_step` avoids that.

    Args:
        w (Tensor): the current weights (floating point).
        grad (Tensor): the gradient of the data loss at ``w``, same shape and dtype.
        state (AdamState): from :func:`adam_init` or the previous step.
        lr (float): the learning rate :math:`\eta > 0`. Default: ``1e-3``.
        lam (float): the L2 strength :math:`\lambda \ge 0`. Default: ``0.0`` (as torch).
        betas (tuple of float): :math:`(\beta_1, \beta_2)`, each in ``[0, 1)``.
            Default: ``(0.9, 0.999)``.
        eps (float): :math:`\epsilon \ge 0`, added to :math:`\sqrt{\hat v_t}`. Default: ``1e-8``.

    Returns:
        AdamStep: ``(weight, state)``; the inputs are not modified.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    lr, lam, beta1, beta2, eps = _check_adam_args(w, grad, state, lr, lam, betas, eps)
    return _adam_update(
        w, grad.add(w, alpha=lam), state, lr, beta1, beta2, eps
    )  # as torch.optim.Adam


def adamw_step(
    w: Tensor,
    grad: Tensor,
    state: AdamState,
    lr: float = 1e-3,
    lam: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> AdamStep:
    r"""One AdamW step: decoupled weight decay, then Adam (``torch.optim.AdamW(weight_decay=lam)``).

    .. math::
        w_{t-\frac12} = (1-\eta\lambda)\, w_{t-1}, \qquad
        w_t = w_{t-\frac12} - \frac{\eta}{1-\beta_1^t}\,
              \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon},

    where :math:`m_t, v_t` are built from the *data* gradient :math:`g_t` only. Every
    weight is shrunk by the same factor :math:`1-\eta\lambda` per step, whatever the
    size of its gradients (Loshchilov & Hutter, 2019).

    Args:
        w (Tensor): the current weights (floating point).
        grad (Tensor): the gradient of the data loss at ``w``, same shape and dtype.
        state (AdamState): from :func:`adam_init` or the previous step.
        lr (float): the learning rate :math:`\eta > 0`. Default: ``1e-3``.
        lam (float): the decay strength :math:`\lambda \ge 0`. Default: ``1e-2`` (as torch).
        betas (tuple of float): :math:`(\beta_1, \beta_2)`, each in ``[0, 1)``.
            Default: ``(0.9, 0.999)``.
        eps (float): :math:`\epsilon \ge 0`, added to :math:`\sqrt{\hat v_t}`. Default: ``1e-8``.

    Returns:
        AdamStep: ``(weight, state)``; the inputs are not modified.

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    lr, lam, beta1, beta2, eps = _check_adam_args(w, grad, state, lr, lam, betas, eps)
    return _adam_update(w * (1 - lr * lam), grad, state, lr, beta1, beta2, eps)


# --- in-place steps for training loops ------------------------------------------------------
# The functions above are functional (they return new tensors and leave their inputs alone),
# which is what a worked example wants. A training loop wants what torch.optim does: update
# the weights and the optimizer state in place. These two do exactly that, with the same
# arithmetic (bit for bit) as torch's default single-tensor SGD and AdamW.


@torch.no_grad()
def sgd_step_(w: Tensor, grad: Tensor, lr: float, lam: float = 0.0) -> Tensor:
    r"""In place: ``w ← w − η (g + λ w)``, one step of ``torch.optim.SGD([w], lr, weight_decay=λ)``.

    The in-place twin of :func:`sgd_step` with ``penalty="l2"``: ``w`` is overwritten
    (one temporary for the total gradient, as torch makes), nothing is returned but ``w``.

    Args:
        w (Tensor): the weights, updated in place (floating point).
        grad (Tensor): the data gradient at ``w``, same shape and dtype.
        lr (float): the learning rate :math:`\eta > 0`.
        lam (float): the L2 strength :math:`\lambda \ge 0`. Default: ``0.0``.

    Returns:
        Tensor: ``w`` itself.

    Example:
        >>> w = torch.tensor([0.5])
        >>> sgd_step_(w, torch.tensor([0.2]), lr=0.1, lam=0.01) is w, w
        (True, tensor([0.4795]))

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    check_tensor(w, "w")
    _check_grad(grad, w)
    lr = _check_lr(lr)
    lam = _check_lam(lam)
    total = grad.add(w, alpha=lam) if lam else grad
    return w.add_(total, alpha=-lr)


@torch.no_grad()
def adamw_step_(
    w: Tensor,
    grad: Tensor,
    state: AdamState,
    lr: float = 1e-3,
    lam: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> AdamState:
    r"""In place: one AdamW step on ``w`` and on ``state.m``/``state.v``, as ``torch.optim.AdamW``.

    The in-place twin of :func:`adamw_step` (same formula, same arithmetic as torch's
    single-tensor AdamW: ``mul_``, ``lerp_``, ``mul_``/``addcmul_``, ``addcdiv_``, and two
    temporaries for the denominator). ``w``, ``state.m`` and ``state.v`` are overwritten;
    the returned state holds the same two tensors and the step count ``t + 1``.

    Args:
        w (Tensor): the weights, updated in place.
        grad (Tensor): the data gradient at ``w``, same shape and dtype.
        state (AdamState): from :func:`adam_init` or the previous step; its tensors are
            updated in place.
        lr (float): the learning rate :math:`\eta > 0`. Default: ``1e-3``.
        lam (float): the decay strength :math:`\lambda \ge 0`. Default: ``1e-2`` (as torch).
        betas (tuple of float): :math:`(\beta_1, \beta_2)`, each in ``[0, 1)``.
            Default: ``(0.9, 0.999)``.
        eps (float): :math:`\epsilon \ge 0`. Default: ``1e-8``.

    Returns:
        AdamState: ``(m, v, t + 1)``, ``m`` and ``v`` being ``state``'s own tensors.

    Example:
        >>> w = torch.ones(2)
        >>> state = adamw_step_(w, torch.ones(2), adam_init(w), lr=0.1, lam=0.0)
        >>> w, state.t
        (tensor([0.9000, 0.9000]), 1)

    Used in:
        chapter "Weight decay: L2, L1 and decoupled".
    """
    lr, lam, beta1, beta2, eps = _check_adam_args(w, grad, state, lr, lam, betas, eps)
    m, v, t = state.m, state.v, state.t + 1
    w.mul_(1 - lr * lam)
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**t
    bias_correction2_sqrt = (1 - beta2**t) ** 0.5
    denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
    w.addcdiv_(m, denom, value=-lr / bias_correction1)
    return AdamState(m, v, t)
