"""Entropy compensation ``delta`` for bounded ERA policies (reference notes §4).

ERA guarantees the *Gaussian* entropy of the activated standard deviation. Truncating (or squashing) that Gaussian
to the action box removes some entropy, so the bounded policy can sit below the target. ERA therefore activates with
``H0' = H0 + delta``, ``delta >= 0``, and learns ``delta`` by minimising ``L(delta) = delta * (H[pi] - H0)``:
``delta`` grows while the bounded policy's entropy is below ``H0`` and shrinks (down to 0) while it is above, the same
mechanism as SAC's temperature loss.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["HALF_LOG_2PI_E", "EntropyDelta", "max_entropy_per_dim"]

HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)


def max_entropy_per_dim(log_std_max: float = 0.0) -> float:
    """Largest per-dimension Gaussian entropy ERA can enforce: ``log_std_max + 0.5 * log(2 * pi * e)``."""
    return log_std_max + HALF_LOG_2PI_E


class EntropyDelta(nn.Module):
    """Holds ``delta >= 0`` (nats per action dimension) and its loss.

    ``delta`` is stored per dimension so that an Adam step moves the total target by ``D * lr`` whatever the action
    dimension ``D``; the activation target is ``D * (target_entropy_per_dim + delta)``. It is capped at the largest
    feasible target, so the activation never becomes infeasible.

    Typical update, once per training batch (``entropy`` is the bounded policy's entropy per state, shape ``(B,)``)::

        loss = era_delta.loss(entropy)
        delta_optimizer.zero_grad(); loss.backward(); delta_optimizer.step()
        era_delta.clamp_()

    :param action_dim: ``D``.
    :param target_entropy_per_dim: the entropy floor ``H0 / D`` the bounded policy should keep.
    :param log_std_max: the activation's upper log-std bound (sets the feasibility cap).
    :param initial_delta: starting value, nats per dimension.
    :param learnable: ``False`` keeps ``delta`` constant (``loss`` then has no gradient).
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
        self.action_dim = int(action_dim)
        self.target_entropy_per_dim = float(target_entropy_per_dim)
        self.max_delta = max_entropy_per_dim(log_std_max) - self.target_entropy_per_dim
        if self.max_delta < 0:
            raise ValueError(
                f"target_entropy_per_dim={target_entropy_per_dim} is infeasible: it must be <= "
                f"log_std_max + 0.5*log(2*pi*e) = {max_entropy_per_dim(log_std_max):.4f} nats per dimension."
            )
        if not 0.0 <= initial_delta <= self.max_delta:
            raise ValueError(f"initial_delta must lie in [0, {self.max_delta:.4f}], got {initial_delta}.")
        self.delta = nn.Parameter(torch.tensor(float(initial_delta)), requires_grad=learnable)

    @property
    def learnable(self) -> bool:
        return self.delta.requires_grad

    @property
    def target_entropy(self) -> float:
        """``H0``: the total entropy the bounded policy should keep, ``D * target_entropy_per_dim``."""
        return self.action_dim * self.target_entropy_per_dim

    def activation_target(self) -> Tensor:
        """``H0' = D * (target_entropy_per_dim + delta)`` for the activation; detached from ``delta``."""
        return self.action_dim * (self.target_entropy_per_dim + self.delta.detach())

    def loss(self, entropy: Tensor) -> Tensor:
        """``delta * (mean(H) - H0)`` with the entropies detached: only ``delta`` receives gradient."""
        return self.delta * (entropy.detach().mean() - self.target_entropy)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project ``delta`` back onto ``[0, max_delta]`` after an optimiser step."""
        self.delta.clamp_(0.0, self.max_delta)

    def extra_repr(self) -> str:
        return (
            f"action_dim={self.action_dim}, target_entropy_per_dim={self.target_entropy_per_dim}, "
            f"learnable={self.learnable}"
        )
