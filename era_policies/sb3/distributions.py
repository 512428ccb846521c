"""Stable-Baselines3 wrapper of ERA's truncated-normal action distribution."""

from __future__ import annotations

from typing import TypeVar

import torch
from stable_baselines3.common.distributions import Distribution
from torch import nn

from era_policies.distributions import ERATruncatedNormal, era_action_distribution

__all__ = ["TruncatedGaussianDistribution"]

SelfTruncatedGaussianDistribution = TypeVar("SelfTruncatedGaussianDistribution", bound="TruncatedGaussianDistribution")


class TruncatedGaussianDistribution(Distribution):
    """Diagonal truncated normal on ``[-1, 1]^D`` with location ``tanh(mean_actions)`` and scale ``exp(log_std)``.

    Actions are already in ``[-1, 1]``: SB3 rescales them to the environment's Box bounds for policies with
    ``squash_output=True`` (no clipping involved). ``log_prob`` and ``entropy`` are summed over the action axis. The
    distribution is :func:`~era_policies.era_action_distribution`'s: what sampling computes is reused by ``log_prob``
    of the same parameters (of the sampled actions themselves: their standardised values), and the entropy is computed
    only when asked for.

    :param action_dim: ``D``.
    :param closed_form_entropy: ``entropy()`` returns the closed form; ``False``: it returns ``None``, SB3's sign for
        a distribution without one (its PPO and A2C then estimate the entropy term from the log-probs).
    """

    distribution: ERATruncatedNormal

    def __init__(self, action_dim: int, closed_form_entropy: bool = True) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.closed_form_entropy = closed_form_entropy

    def proba_distribution_net(self, latent_dim: int) -> tuple[nn.Linear, nn.Linear]:
        """Two heads on the latent features: the mean and the raw std logits (ERA activates the latter)."""
        return nn.Linear(latent_dim, self.action_dim), nn.Linear(latent_dim, self.action_dim)

    def proba_distribution(
        self: SelfTruncatedGaussianDistribution, mean_actions: torch.Tensor, log_std: torch.Tensor
    ) -> SelfTruncatedGaussianDistribution:
        """:param mean_actions: ``(B, D)`` pre-tanh means. :param log_std: ``(B, D)`` ERA-activated log stds."""
        self.distribution = era_action_distribution(mean_actions, log_std)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` actions in ``[-1, 1]`` -> ``(B,)`` log-densities."""
        return self.distribution.log_prob(actions).sum(dim=-1)

    def entropy(self) -> torch.Tensor | None:
        """``(B,)`` closed-form entropies of the bounded distribution (``None`` with ``closed_form_entropy=False``)."""
        return self.bounded_entropy() if self.closed_form_entropy else None

    def bounded_entropy(self) -> torch.Tensor:
        """``(B,)`` closed-form entropies of the bounded distribution, whatever ``closed_form_entropy`` says."""
        return self.distribution.entropy().sum(dim=-1)

    def sample(self) -> torch.Tensor:
        """Reparameterised sample, ``(B, D)``."""
        return self.distribution.rsample()

    def mode(self) -> torch.Tensor:
        """``tanh(mean_actions)``, the mode of the truncated normal, ``(B, D)``."""
        return self.distribution.mode

    def actions_from_params(
        self, mean_actions: torch.Tensor, log_std: torch.Tensor, deterministic: bool = False
    ) -> torch.Tensor:
        self.proba_distribution(mean_actions, log_std)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(
        self, mean_actions: torch.Tensor, log_std: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        actions = self.actions_from_params(mean_actions, log_std)
        return actions, self.log_prob(actions)
