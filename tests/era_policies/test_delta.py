"""EntropyDelta: rises below the target, falls above it, stays in [0, max]."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from era_policies import (
    EntropyDelta,
    check_action_dim,
    check_target_entropy_per_dim,
    max_entropy_per_dim,
)
from era_policies import delta as delta_module


def _steps(module: EntropyDelta, entropy: float, n: int, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam([module.delta], lr=lr)
    for _ in range(n):
        module.update(torch.full((32,), entropy), opt)


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
    assert float(module.delta.grad) == pytest.approx(float(entropy.detach().mean()))
    assert not module.activation_target().requires_grad


def test_constant_delta_and_errors():
    module = EntropyDelta(action_dim=3, target_entropy_per_dim=-1.0, initial_delta=0.3, learnable=False)
    assert not module.learnable and float(module.activation_target()) == pytest.approx(3 * -0.7)
    with pytest.raises(ValueError, match="target_entropy_per_dim=2 is infeasible"):
        EntropyDelta(action_dim=3, target_entropy_per_dim=2.0)
    with pytest.raises(ValueError, match="initial_delta"):
        EntropyDelta(action_dim=3, target_entropy_per_dim=0.0, initial_delta=-0.1)
    with pytest.raises(ValueError, match="initial_delta"):
        EntropyDelta(action_dim=3, target_entropy_per_dim=0.0, initial_delta="0.1")


def test_update_is_one_projected_step_and_returns_the_detached_loss():
    module = EntropyDelta(action_dim=4, target_entropy_per_dim=-0.5, initial_delta=0.05)
    reference = EntropyDelta(action_dim=4, target_entropy_per_dim=-0.5, initial_delta=0.05)
    opt = torch.optim.SGD([module.delta], lr=1.0)
    ref_opt = torch.optim.SGD([reference.delta], lr=1.0)
    entropy = torch.full((16,), -1.9, requires_grad=True)  # 0.1 above H0 = -2: SGD moves delta by -0.1, clamped to 0
    loss = module.update(entropy, opt)
    manual = reference.loss(entropy)
    ref_opt.zero_grad()
    manual.backward()
    ref_opt.step()
    assert float(reference.delta.detach()) < 0.0  # the unprojected step leaves the feasible set ...
    assert float(module.delta.detach()) == 0.0  # ... update projects it back
    assert not loss.requires_grad and float(loss) == pytest.approx(float(manual.detach()))
    assert entropy.grad is None
    # A stale gradient does not leak into the next step: update zeroes it first.
    module.delta.grad = torch.tensor(100.0)
    module.update(torch.full((16,), -2.1), opt)  # 0.1 below the target: delta rises by 0.1
    assert float(module.delta.detach()) == pytest.approx(0.1, abs=1e-6)


def test_update_refuses_a_constant_delta():
    module = EntropyDelta(action_dim=2, target_entropy_per_dim=-0.5, learnable=False)
    with pytest.raises(ValueError, match="learnable"):
        module.update(torch.zeros(4), torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))


@pytest.mark.parametrize("target", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_target_is_a_value_error(target):
    with pytest.raises(ValueError, match="target_entropy_per_dim must be finite"):
        EntropyDelta(action_dim=3, target_entropy_per_dim=target)


@pytest.mark.parametrize("action_dim", [0, -1, 1.5, 2.0, "2", True, None])
def test_bad_action_dim_is_a_value_error(action_dim):
    with pytest.raises(ValueError, match="action_dim must be an int >= 1"):
        EntropyDelta(action_dim=action_dim, target_entropy_per_dim=-0.5)


def test_numpy_integers_are_valid_action_dims():
    assert EntropyDelta(action_dim=np.int64(3), target_entropy_per_dim=-0.5).action_dim == 3
    assert check_action_dim(np.int32(2)) == 2


# ------------------------------------------------------------------------------------ the feasibility check
@pytest.mark.parametrize("log_std_max", [0.0, -1.0, 2.0])
def test_feasibility_check_accepts_up_to_the_cap_and_rejects_beyond(log_std_max):
    cap = log_std_max + 0.5 * math.log(2 * math.pi * math.e)
    assert check_target_entropy_per_dim(cap, log_std_max) == cap
    assert check_target_entropy_per_dim(np.float32(-3.0), log_std_max) == -3.0
    assert isinstance(check_target_entropy_per_dim(-3, log_std_max), float)
    with pytest.raises(ValueError, match=r"target_entropy_per_dim=.* is infeasible"):
        check_target_entropy_per_dim(cap + 1e-9, log_std_max)


@pytest.mark.parametrize("bad", ["0.25", b"0.25", None, True, False, [0.1], torch.tensor(0.1), float("nan"), 1e400])
def test_feasibility_check_rejects_non_numbers_bools_and_non_finite_values(bad):
    with pytest.raises(ValueError, match="target_entropy_per_dim must be"):
        check_target_entropy_per_dim(bad)


def test_there_is_one_half_log_2pi_e():
    from era_policies import distributions

    assert delta_module.HALF_LOG_2PI_E == pytest.approx(0.5 * math.log(2 * math.pi * math.e), abs=1e-15)
    assert distributions.HALF_LOG_2PI_E is delta_module.HALF_LOG_2PI_E
    assert not hasattr(distributions, "_HALF_LOG_2PI_E")


def test_constant_delta_is_a_buffer_and_state_dicts_move_between_both_kinds():
    learned = EntropyDelta(action_dim=3, target_entropy_per_dim=-1.0, initial_delta=0.2)
    constant = EntropyDelta(action_dim=3, target_entropy_per_dim=-1.0, learnable=False)
    assert [name for name, _ in learned.named_parameters()] == ["delta"]
    assert list(constant.parameters()) == [] and "delta" in dict(constant.named_buffers())
    assert not constant.delta.requires_grad and not constant.learnable and learned.learnable
    constant.load_state_dict(learned.state_dict())
    assert float(constant.delta) == pytest.approx(0.2)
    learned.load_state_dict(EntropyDelta(3, -1.0, initial_delta=0.1, learnable=False).state_dict())
    assert float(learned.delta.detach()) == pytest.approx(0.1)


def test_loss_on_an_empty_batch_is_a_value_error():
    era_delta = EntropyDelta(action_dim=2, target_entropy_per_dim=-0.5)
    with pytest.raises(ValueError, match="at least one state"):
        era_delta.loss(torch.zeros(0))


def test_there_is_one_half_log_2pi():
    """The standard normal's log normaliser, shared by the distributions and ppo_era.py's --no-era acting step."""
    from era_policies import distributions

    assert delta_module.HALF_LOG_2PI == pytest.approx(0.5 * math.log(2 * math.pi), abs=1e-15)
    assert distributions.HALF_LOG_2PI is delta_module.HALF_LOG_2PI
    assert not hasattr(distributions, "_LOG_SQRT_2PI")
