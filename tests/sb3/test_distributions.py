"""The SB3 wrapper of the truncated normal: shapes, sums over the action axis, mode, reparameterisation."""

from __future__ import annotations

import torch

from era_policies import era_action_distribution
from era_policies.sb3 import TruncatedGaussianDistribution


def test_sums_over_action_axis_and_matches_the_core_distribution():
    dist = TruncatedGaussianDistribution(action_dim=3)
    mean = torch.randn(5, 3, requires_grad=True)
    log_std = torch.full((5, 3), -1.0, requires_grad=True)
    actions, log_prob = dist.log_prob_from_params(mean, log_std)
    core = era_action_distribution(mean, log_std)
    assert actions.shape == (5, 3) and log_prob.shape == (5,)
    assert torch.all(actions.abs() <= 1.0)
    assert torch.allclose(log_prob, core.log_prob(actions).sum(-1))
    assert torch.allclose(dist.entropy(), core.entropy().sum(-1))
    assert torch.equal(dist.mode(), torch.tanh(mean))
    assert torch.equal(dist.actions_from_params(mean, log_std, deterministic=True), torch.tanh(mean))
    log_prob.sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_std.grad).all()


def test_heads_have_the_action_dimension():
    mean_net, std_logits_net = TruncatedGaussianDistribution(action_dim=4).proba_distribution_net(latent_dim=7)
    assert mean_net.out_features == 4 and std_logits_net.out_features == 4 and mean_net.in_features == 7
