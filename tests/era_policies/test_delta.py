"""EntropyDelta: rises below the target, falls above it, stays in [0, max]."""

from __future__ import annotations

import pytest
import torch

from era_policies import EntropyDelta, max_entropy_per_dim


def _steps(module: EntropyDelta, entropy: float, n: int, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam([module.delta], lr=lr)
    for _ in range(n):
        loss = module.loss(torch.full((32,), entropy))
        opt.zero_grad()
        loss.backward()
        opt.step()
        module.clamp_()


def test_delta_rises_when_entropy_is_below_target():
    module = EntropyDelta(action_dim=4, target_entropy_per_dim=-0.5)
    _steps(module, entropy=-4.0, n=20)  # target is -2.0
    assert float(module.delta.detach()) == pytest.approx(0.2, abs=1e-3)  # Adam moves ~lr per step
    assert float(module.activation_target()) == pytest.approx(4 * (-0.5 + float(module.delta.detach())))


def test_delta_falls_when_entropy_is_above_target_and_stops_at_zero():
    module = EntropyDelta(action_dim=4, target_entropy_per_dim=-0.5, initial_delta=0.1)
    _steps(module, entropy=0.0, n=5)
    assert 0.0 < float(module.delta.detach()) < 0.1
    _steps(module, entropy=0.0, n=50)
    assert float(module.delta.detach()) == 0.0


def test_delta_is_capped_at_the_feasible_target():
    module = EntropyDelta(action_dim=2, target_entropy_per_dim=1.3)
    _steps(module, entropy=-10.0, n=100, lr=0.1)
    assert float(module.delta.detach()) == pytest.approx(max_entropy_per_dim(0.0) - 1.3)


def test_loss_only_moves_delta():
    module = EntropyDelta(action_dim=3, target_entropy_per_dim=0.0, initial_delta=0.5)
    entropy = torch.randn(8, requires_grad=True)
    module.loss(entropy).backward()
    assert entropy.grad is None
    assert float(module.delta.grad) == pytest.approx(float(entropy.mean()))
    assert not module.activation_target().requires_grad


def test_constant_delta_and_errors():
    module = EntropyDelta(action_dim=3, target_entropy_per_dim=-1.0, initial_delta=0.3, learnable=False)
    assert not module.learnable and float(module.activation_target()) == pytest.approx(3 * -0.7)
    with pytest.raises(ValueError, match="infeasible"):
        EntropyDelta(action_dim=3, target_entropy_per_dim=2.0)
    with pytest.raises(ValueError, match="initial_delta"):
        EntropyDelta(action_dim=3, target_entropy_per_dim=0.0, initial_delta=-0.1)
