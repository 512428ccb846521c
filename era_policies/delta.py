"""Entropy compensation ``delta`` for bounded ERA policies, and ERA's feasibility check (docs/era-method.md §2, §4).

ERA guarantees the *Gaussian* entropy of the activated standard deviation. Truncating (or squashing) that Gaussian
to the action box removes some entropy, so the bounded policy can sit below the target. ERA therefore activates with
``H0' = H0 + delta``, ``delta >= 0``, and learns ``delta`` by minimising ``L(delta) = delta * (H[pi] - H0)``:
``delta`` grows while the bounded policy's entropy is below ``H0`` and shrinks (down to 0) while it is above, the same
mechanism as SAC's temperature loss.

The activation can enforce at most ``log_std_max + 0.5 * log(2*pi*e)`` nats per action dimension;
:func:`check_target_entropy_per_dim` is the one place that checks a target against that cap, and
:func:`check_log_std_range` the one place that checks the log-std range.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor, nn

__all__ = [
    "HALF_LOG_2PI",
    "HALF_LOG_2PI_E",
    "MAX_LOG_STD_MAX",
    "EntropyDelta",
    "check_action_dim",
    "check_batch_momentum",
    "check_log_std_range",
    "check_target_entropy_per_dim",
    "max_entropy_per_dim",
]

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
"""The standard normal density's log normaliser."""
HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)
# ERA's action distribution evaluates only the "location inside the interval" regime of the truncated normal, whose
# formulas hold to float32 rounding while the interval [-1, 1] is at least a tenth of a scale wide (the general
# TruncatedNormal switches to other formulas below that): scale <= 20, i.e. log_std_max <= log(20) = 2.996.
INSIDE_MIN_STANDARDIZED_WIDTH = 0.1
MAX_LOG_STD_MAX = math.log(2.0 / INSIDE_MIN_STANDARDIZED_WIDTH)


def max_entropy_per_dim(log_std_max: float = 0.0) -> float:
    """Largest per-dimension Gaussian entropy ERA can enforce: ``log_std_max + 0.5 * log(2 * pi * e)``."""
    return log_std_max + HALF_LOG_2PI_E


def _finite_real(value: object, name: str) -> float:
    """``value`` as a float if it is a finite real number (not a bool, not a string), else a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    return value


def _check_finite_logits(logits: Tensor, name: str) -> None:
    """``+inf`` or NaN logits make a softmax NaN; ``-inf`` entries (masking) are fine while every row keeps a finite
    maximum. One host read, skipped on CUDA (a device synchronisation) and while compiling (a graph break)."""
    if logits.is_cuda or torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(logits.amax(-1)).all()):
        raise ValueError(
            f"{name} must be finite (-inf entries are allowed while each row has a finite maximum); got +inf or NaN, "
            "which would make the softmax NaN. Check the network producing them."
        )


def check_target_entropy_per_dim(target_entropy_per_dim: float, log_std_max: float = 0.0) -> float:
    """Check that ERA can enforce ``target_entropy_per_dim`` nats per action dimension and return it as a float.

    :param target_entropy_per_dim: the per-dimension entropy target ``H0 / D``.
    :param log_std_max: the activation's upper log-std bound.
    :return: ``float(target_entropy_per_dim)``.
    :raises ValueError: naming ``target_entropy_per_dim`` if it is not a real number (strings and bools included),
        not finite, or infeasible: larger than ``log_std_max + 0.5 * log(2*pi*e)`` (the limit itself is accepted);
        naming ``log_std_max`` if it is not finite or above :data:`MAX_LOG_STD_MAX`.
    """
    target = _finite_real(target_entropy_per_dim, "target_entropy_per_dim")
    cap = max_entropy_per_dim(_check_log_std_max(log_std_max))
    # A target written as D * cap and divided back by D may exceed the cap by a few float64 ulps: still the limit.
    if target - cap > 8.0 * math.ulp(abs(cap) + abs(log_std_max)):
        raise ValueError(
            f"target_entropy_per_dim={target:.6g} is infeasible: it must be <= log_std_max + 0.5*log(2*pi*e) "
            f"= {cap:.4f} nats per dimension (log_std_max={log_std_max})."
        )
    return target


def _check_log_std_max(log_std_max: float) -> float:
    log_std_max = _finite_real(log_std_max, "log_std_max")
    if log_std_max > MAX_LOG_STD_MAX:
        raise ValueError(
            f"log_std_max={log_std_max:.6g} is too large: ERA's action distribution needs the interval [-1, 1] at "
            f"least {INSIDE_MIN_STANDARDIZED_WIDTH} standard deviations wide, i.e. log_std_max <= log(20) = "
            f"{MAX_LOG_STD_MAX:.4f} (with a std of 20 the density on [-1, 1] is already flat to 0.13 %)."
        )
    return log_std_max


def check_log_std_range(log_std_min: float, log_std_max: float) -> tuple[float, float]:
    """Check the activation's log-std range and return it as floats.

    :raises ValueError: naming the argument, unless both are finite real numbers with ``log_std_min < log_std_max
        <= MAX_LOG_STD_MAX`` (``log(20)``: ERA's action distribution needs scales of at most 20 on ``[-1, 1]``).
    """
    log_std_min = _finite_real(log_std_min, "log_std_min")
    log_std_max = _check_log_std_max(log_std_max)
    if not log_std_min < log_std_max:
        raise ValueError(f"log_std_min must be < log_std_max, got {log_std_min} and {log_std_max}.")
    return log_std_min, log_std_max


def check_batch_momentum(momentum: float, name: str = "batch_momentum") -> float:
    """Return ``momentum`` as a float if it is a real number in ``(0, 1]``, else raise a ``ValueError`` naming it."""
    momentum = _finite_real(momentum, name)
    if not 0.0 < momentum <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {momentum}.")
    return momentum


def check_action_dim(action_dim: int) -> int:
    """Return ``action_dim`` if it is an ``int >= 1``, else raise a ``ValueError`` naming ``action_dim``."""
    if isinstance(action_dim, bool) or not isinstance(action_dim, Integral) or action_dim < 1:
        raise ValueError(f"action_dim must be an int >= 1, got {action_dim!r}.")
    return int(action_dim)


class EntropyDelta(nn.Module):
    """Holds ``delta >= 0`` (nats per action dimension) and its loss.

    ``delta`` is stored per dimension so that an Adam step moves the total target by ``D * lr`` whatever the action
    dimension ``D``; the activation target is ``D * (target_entropy_per_dim + delta)``. It is capped at the largest
    feasible target, so the activation never becomes infeasible.

    Typical use, once per training batch (``entropy`` is the bounded policy's entropy per state, shape ``(B,)``)::

        era_delta = EntropyDelta(action_dim, target_entropy_per_dim=-0.5)
        delta_optimizer = torch.optim.Adam([era_delta.delta], lr=3e-4)
        ...
        log_std = era_log_std(std_logits, era_delta.activation_target())
        ...
        delta_loss = era_delta.update(dist.entropy().sum(-1), delta_optimizer)

    :param action_dim: ``D``.
    :param target_entropy_per_dim: the entropy floor ``H0 / D`` the bounded policy should keep.
    :param log_std_max: the activation's upper log-std bound (sets the feasibility cap).
    :param initial_delta: starting value, nats per dimension.
    :param learnable: ``True`` makes ``delta`` an ``nn.Parameter`` to learn; ``False`` keeps it constant (a buffer,
        in no optimiser and no ``parameters()``; ``loss`` then has no gradient).
    :raises ValueError: naming the argument, for a bad ``action_dim``, an infeasible or non-finite target (see
        :func:`check_target_entropy_per_dim`) or ``initial_delta`` outside ``[0, max_delta]``.
    """

    def __init__(
        self,
        action_dim: int,
        target_entropy_per_dim: float,
        log_std_max: float = 0.0,
        initial_delta: float = 0.0,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        self.action_dim = check_action_dim(action_dim)
        self.target_entropy_per_dim = check_target_entropy_per_dim(target_entropy_per_dim, log_std_max)
        # >= 0 also for a target at the limit that exceeds it by rounding (check_target_entropy_per_dim accepts it).
        self.max_delta = max(0.0, max_entropy_per_dim(float(log_std_max)) - self.target_entropy_per_dim)
        initial_delta = _finite_real(initial_delta, "initial_delta")
        if not 0.0 <= initial_delta <= self.max_delta:
            raise ValueError(f"initial_delta must lie in [0, {self.max_delta:.4f}], got {initial_delta}.")
        # A constant delta is a buffer, not a frozen Parameter: code that differentiates with respect to every
        # parameter (sb3-contrib's TRPO) would otherwise fail on it. The state-dict key is "delta" either way.
        if learnable:
            self.delta = nn.Parameter(torch.tensor(initial_delta))
        else:
            self.register_buffer("delta", torch.tensor(initial_delta))

    @property
    def learnable(self) -> bool:
        return isinstance(self.delta, nn.Parameter)

    @property
    def target_entropy(self) -> float:
        """``H0``: the total entropy the bounded policy should keep, ``D * target_entropy_per_dim``."""
        return self.action_dim * self.target_entropy_per_dim

    def activation_target(self) -> Tensor:
        """``H0' = D * (target_entropy_per_dim + delta)`` for the activation; detached from ``delta``."""
        return self.action_dim * (self.target_entropy_per_dim + self.delta.detach())

    def loss(self, entropy: Tensor) -> Tensor:
        """``delta * (mean(H) - H0)`` with the entropies detached: only ``delta`` receives gradient.

        :raises ValueError: for an empty batch (a shape check, no host read).
        """
        if entropy.numel() == 0:
            raise ValueError(
                f"EntropyDelta.loss needs the entropy of at least one state, got shape {tuple(entropy.shape)}."
            )
        return self.delta * (entropy.detach().mean() - self.target_entropy)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project ``delta`` back onto ``[0, max_delta]`` after an optimiser step."""
        self.delta.clamp_(0.0, self.max_delta)

    def update(self, entropy: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """One projected step on ``delta``: loss, ``zero_grad``, ``backward``, ``step``, :meth:`clamp_`.

        Nothing here reads a value back to the host, so the step can run inside ``torch.compile`` or a CUDA graph.

        :param entropy: the bounded policy's entropy per state, shape ``(B,)`` (detached here).
        :param optimizer: an optimiser over ``[self.delta]`` only (it is zeroed and stepped here).
        :return: the detached loss.
        :raises ValueError: if ``delta`` is not learnable.
        """
        if not self.learnable:
            raise ValueError("EntropyDelta.update needs learnable=True (delta is a constant here).")
        loss = self.loss(entropy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        self.clamp_()
        return loss.detach()

    def extra_repr(self) -> str:
        return (
            f"action_dim={self.action_dim}, target_entropy_per_dim={self.target_entropy_per_dim}, "
            f"learnable={self.learnable}"
        )
