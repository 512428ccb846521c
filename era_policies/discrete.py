"""Softmax ERA for discrete distributions (docs/era-method.md §8).

For logits ``z`` over ``n`` classes with ``p = softmax(z)``, ``k = log(tau) / tau`` and ``C = exp(H0 - 1)``::

    y_i  = max(k + (C - n*k) * (1 - p_i) / (n - 1), 0)
    z'_i = W_{-1}(-y_i)                                   # lower branch of Lambert W

Why it works: ``q_i = exp(z'_i)`` satisfies ``-q_i log q_i = y_i``, so ``sum_i -q_i log q_i = sum_i y_i >= C``. With
``S = sum_i q_i`` the entropy of ``softmax(z')`` is ``sum_i y_i / S + log S >= C / S + log S >= 1 + log C = H0``.
``C < n*k`` makes ``y`` increasing in ``p``, and ``W_{-1}(-y)`` is increasing in ``y``, so the arg-max is kept.
Unlike the released code's closed-form approximation of ``W_{-1}``, we solve for it to float64 precision so the
guarantee holds up to rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from era_policies.delta import _check_finite_logits

__all__ = ["era_logits", "lambertw_m1"]


def _lambertw_m1_of_neg(y: Tensor, iterations: int = 8) -> Tensor:
    """``W_{-1}(-y)`` for ``y`` in ``(0, 1/e]``, in float64, by Newton's method on ``w + log(-w) = log(y)``."""
    log_y = torch.log(y)
    # Branch-point-aware starting point (the released code's approximation), then Newton: g(w) = w + log(-w) - log y.
    w = -0.25 - torch.sqrt(torch.clamp(2.0 * (-1.0 - log_y), min=0.0)) + 0.75 * log_y
    w = torch.clamp(w, max=-1.0 - 1e-12)
    for _ in range(iterations):
        w = w - w * (w + torch.log(-w) - log_y) / (w + 1.0)
        w = torch.clamp(w, max=-1.0 - 1e-12)
    return w


class _LambertWm1OfNeg(torch.autograd.Function):
    """``y -> W_{-1}(-y)`` with the implicit derivative ``W / (y (1 + W))``."""

    @staticmethod
    def forward(ctx, y: Tensor) -> Tensor:  # type: ignore[override]
        w = _lambertw_m1_of_neg(y.double()).to(y.dtype)
        ctx.save_for_backward(y, w)
        return w

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        y, w = ctx.saved_tensors
        # y at the float64 floor marks an entry clamped by era_logits (zero gradient there); skipping it also keeps
        # the huge 1/y out of the product.
        unclamped = y > torch.finfo(torch.float64).tiny
        safe_y = torch.where(unclamped, y, torch.ones_like(y))
        return torch.where(unclamped, grad_output * w / (safe_y * (1.0 + w)), torch.zeros_like(grad_output))


def lambertw_m1(x: Tensor) -> Tensor:
    """Lower branch ``W_{-1}(x)`` of the Lambert W function for ``x`` in ``[-1/e, 0)``; differentiable."""
    if bool(((x < -math.exp(-1.0) - 1e-12) | (x >= 0)).any()):
        raise ValueError("lambertw_m1 is defined for x in [-1/e, 0).")
    return _LambertWm1OfNeg.apply(-x)


def era_logits(logits: Tensor, min_entropy: float, tau: float = 4.0) -> Tensor:
    """Softmax ERA: new logits whose softmax has entropy ``>= min_entropy`` for every input; arg-max unchanged.

    :param logits: shape ``(..., n)`` with ``n >= 2`` classes.
    :param min_entropy: the floor ``H0`` in nats; needs ``H0 < log(n)`` and ``exp(H0 - 1) < n * log(tau) / tau``
        (for ``tau = 4`` that is ``H0 < log(n) - 0.0596``).
    :param tau: shape parameter, ``> 1`` and ``!= e`` (at ``e`` the map touches the branch point of ``W``).
    :return: activated logits, shape ``(..., n)``, same dtype.
    :raises ValueError: for an unreachable floor, a bad ``tau`` or ``+inf``/NaN logits (checked on CPU outside
        ``torch.compile``).
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() == 0:
        raise ValueError("logits must be a floating-point tensor of shape (..., n).")
    n = logits.shape[-1]
    if n < 2:
        raise ValueError(f"era_logits needs at least 2 classes, got n={n}.")
    _check_finite_logits(logits, "logits")
    if not tau > 1.0 or abs(tau - math.e) < 1e-9:
        raise ValueError(f"tau must be > 1 and != e, got {tau}.")
    if not min_entropy < math.log(n):
        raise ValueError(
            f"min_entropy={min_entropy} is unreachable: the entropy of {n} classes is at most "
            f"log(n) = {math.log(n):.4f}."
        )
    k = math.log(tau) / tau
    budget = math.exp(min_entropy - 1.0)
    if not budget < n * k:
        raise ValueError(
            f"min_entropy={min_entropy} is too close to log(n) = {math.log(n):.4f} for tau={tau}: "
            f"it must be < 1 + log(n * log(tau) / tau) = {1.0 + math.log(n * k):.4f}."
        )
    probs = torch.softmax(logits.double(), dim=-1)
    y = k + (budget - n * k) * (1.0 - probs) / (n - 1)
    # Raising y only increases sum(y), so the floor still holds; tiny instead of 0 keeps W finite.
    y = torch.clamp(y, min=torch.finfo(torch.float64).tiny)
    return _LambertWm1OfNeg.apply(y).to(logits.dtype)
