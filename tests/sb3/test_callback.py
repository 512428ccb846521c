"""ERACallback: learns delta="auto" from training data in the right direction, logs era/*, warns at the user's line."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sb3_contrib import TQC
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.logger import configure

from era_policies.sb3 import ERAActorCriticPolicy, ERACallback, ERASACPolicy, ERATQCPolicy
from tests.conftest import requires_cuda
from tests.sb3.conftest import small_net, three_dim_env

ERA_TAGS = ["era/entropy", "era/gaussian_entropy", "era/target_entropy", "era/delta", "train/std"]


def _sac(**policy_kwargs) -> SAC:
    return SAC(
        ERASACPolicy,
        three_dim_env(),
        ent_coef=0.0,
        learning_starts=50,
        batch_size=64,
        seed=0,
        device="cpu",
        policy_kwargs={**small_net(), **policy_kwargs},
    )


def _ppo(**policy_kwargs) -> PPO:
    return PPO(
        ERAActorCriticPolicy,
        three_dim_env(),
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        seed=0,
        device="cpu",
        policy_kwargs={**small_net(), **policy_kwargs},
    )


def _learn_with_csv_log(model, tmp_path, steps: int, callback: ERACallback) -> pd.DataFrame:
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(steps, callback=callback, log_interval=1)
    return pd.read_csv(tmp_path / "progress.csv").dropna(subset=["era/entropy"])


# ------------------------------------------------------------------------------------------------ learning delta
def _bounded_entropy(model) -> float:
    """Mean entropy of the bounded policy as it acts, over random observations."""
    model.policy.set_training_mode(False)
    with torch.no_grad():
        return model.policy.era_entropy(torch.rand(512, 3) * 2 - 1)[0].mean().item()


@pytest.mark.parametrize("make", [_sac, _ppo], ids=["sac", "ppo"])
def test_delta_rises_while_the_bounded_entropy_is_below_the_floor(make, tmp_path):
    """A high floor: truncating the wide Gaussian to the box removes entropy, so delta must grow."""
    target = 0.5
    model = make(target_entropy_per_dim=target, delta="auto")
    assert _bounded_entropy(model) < 3 * target - 0.1  # the premise: with delta = 0 the policy is below the floor
    log = _learn_with_csv_log(model, tmp_path, 1000, ERACallback(delta_lr=1e-2))
    assert log["era/delta"].iloc[-1] > log["era/delta"].iloc[0] > 0
    assert model.policy.era_std.era_delta.delta.item() == pytest.approx(
        log["era/delta"].iloc[-1], abs=0.02
    )  # the logged delta
    # Once delta has grown, the bounded policy's entropy sits at the floor (Adam's step size sets the ripple).
    assert log["era/entropy"].iloc[-5:].mean() == pytest.approx(3 * target, abs=0.05)


@pytest.mark.parametrize("make", [_sac, _ppo], ids=["sac", "ppo"])
def test_delta_falls_while_the_bounded_entropy_is_above_the_floor(make):
    """A low floor with a large delta: the policy keeps far more entropy than asked, so delta must shrink."""
    model = make(target_entropy_per_dim=-1.5, delta="auto")
    with torch.no_grad():
        model.policy.era_std.era_delta.delta.fill_(0.5)
    assert _bounded_entropy(model) > 3 * -1.5 + 1.0  # the premise: far above the floor
    model.learn(400, callback=ERACallback(delta_lr=1e-2))
    assert model.policy.era_std.era_delta.delta.item() < 0.5 - 0.05


def test_a2c_learns_delta_once_per_rollout():
    model = A2C(
        ERAActorCriticPolicy,
        three_dim_env(),
        n_steps=8,
        seed=0,
        device="cpu",
        policy_kwargs={**small_net(), "target_entropy_per_dim": 0.68, "delta": "auto"},
    )
    assert _bounded_entropy(model) < 3 * 0.68 - 0.3  # the premise: every step pushes delta up
    model.learn(80, callback=ERACallback(delta_lr=1e-2))
    # 10 rollouts, one Adam step each: Adam's steps on a gradient of constant sign move by about the learning rate.
    assert model.policy.era_std.era_delta.delta.item() == pytest.approx(10 * 1e-2, rel=0.2)


def test_off_policy_delta_takes_one_step_per_gradient_step():
    model = SAC(
        ERASACPolicy,
        three_dim_env(),
        ent_coef=0.0,
        learning_starts=50,
        batch_size=32,
        gradient_steps=3,
        train_freq=2,
        seed=0,
        device="cpu",
        policy_kwargs={**small_net(), "target_entropy_per_dim": 0.68, "delta": "auto"},
    )
    assert _bounded_entropy(model) < 3 * 0.68 - 0.3  # the premise: every step pushes delta up
    model.learn(70, callback=ERACallback(delta_lr=1e-3))
    # Rollouts of 2 steps after the 50 warm-up steps: 10 rollouts x 3 gradient steps.
    assert model.policy.era_std.era_delta.delta.item() == pytest.approx(30 * 1e-3, rel=0.2)


def test_nothing_happens_before_learning_starts():
    model = _sac(delta="auto", target_entropy_per_dim=0.25)
    model.learn(40, callback=ERACallback(delta_lr=1e-2))  # learning_starts=50
    assert model.policy.era_std.era_delta.delta.item() == 0.0


def test_delta_stays_put_and_warns_once_without_the_callback():
    model = _sac(delta="auto", target_entropy_per_dim=0.25)
    with pytest.warns(UserWarning, match="nothing learns delta") as record:
        model.learn(100)
    assert [w.filename for w in record if "nothing learns delta" in str(w.message)] == [__file__]
    assert model.policy.era_std.era_delta.delta.item() == 0.0  # SB3's own optimisers never touch it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(60, reset_num_timesteps=False)  # said once per policy


def test_warning_returns_when_a_later_learn_has_no_callback():
    model = _sac(delta="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(60, callback=ERACallback())
    with pytest.warns(UserWarning, match="nothing learns delta"):
        model.learn(60, reset_num_timesteps=False)


def test_second_learn_keeps_the_adam_moments():
    model = _sac(delta="auto", target_entropy_per_dim=0.25)
    callback = ERACallback()
    model.learn(60, callback=callback)
    optimizer = callback.delta_optimizer
    model.learn(60, callback=callback, reset_num_timesteps=False)
    # 10 steps after the 50 warm-up steps of the first learn(), 60 in the second
    assert callback.delta_optimizer is optimizer and optimizer.state[model.policy.era_std.era_delta.delta]["step"] == 70


def test_tanh_normal_entropy_is_estimated_from_samples(tmp_path):
    model = _sac(delta="auto", target_entropy_per_dim=0.68, action_distribution="tanh_normal")
    log = _learn_with_csv_log(model, tmp_path, 300, ERACallback(delta_lr=1e-2))
    # -log p of one sample per state, averaged over the batch: noisy, finite, below the floor it cannot reach yet
    assert np.isfinite(log["era/entropy"]).all() and log["era/entropy"].mean() < 3 * 0.68
    assert log["era/delta"].iloc[-1] > log["era/delta"].iloc[0] > 0


# ------------------------------------------------------------------------------------------------------- logging
@pytest.mark.parametrize("make", [_sac, _ppo], ids=["sac", "ppo"])
def test_era_tags_reach_the_logger(make, tmp_path):
    model = make(target_entropy_per_dim=-0.4, delta=0.1)
    log = _learn_with_csv_log(model, tmp_path, 300, ERACallback())
    assert len(log) >= 2 and log[ERA_TAGS].notna().all().all()
    np.testing.assert_allclose(log["era/target_entropy"], 3 * -0.4)
    np.testing.assert_allclose(log["era/delta"], 0.1, rtol=1e-6)
    # The guaranteed floor: the activated Gaussian's entropy is D * (target + delta) ...
    np.testing.assert_allclose(log["era/gaussian_entropy"], 3 * (-0.4 + 0.1), atol=1e-4)
    # ... and bounding to the box only removes entropy.
    assert (log["era/entropy"] < log["era/gaussian_entropy"]).all()
    assert ((log["train/std"] > 0) & (log["train/std"] <= 1.0)).all()


def test_ppo_train_std_is_the_activated_std(tmp_path):
    model = _ppo(target_entropy_per_dim=-0.4)
    log = _learn_with_csv_log(model, tmp_path, 128, ERACallback())
    obs = torch.as_tensor(np.stack([model.observation_space.sample() for _ in range(512)]))
    with torch.no_grad():
        std = model.policy.era_entropy(obs)[1].exp().mean().item()
    assert log["train/std"].iloc[-1] == pytest.approx(std, rel=0.3)


# ------------------------------------------------------------------------------------------------------ warnings
@pytest.mark.parametrize(
    ("algo", "policy", "ent_coef"),
    [
        (SAC, ERASACPolicy, "auto"),
        (SAC, ERASACPolicy, 0.1),
        (TQC, ERATQCPolicy, "auto_0.5"),
        (PPO, ERAActorCriticPolicy, 0.01),
    ],
)
def test_entropy_bonus_warns_at_the_users_line(algo, policy, ent_coef):
    model = algo(policy, three_dim_env(), ent_coef=ent_coef, policy_kwargs=small_net())
    with pytest.warns(UserWarning, match="ent_coef=0.0") as record:
        model.learn(10, callback=ERACallback())
    warning = next(w for w in record if "ent_coef" in str(w.message))
    assert warning.filename == __file__


@pytest.mark.parametrize(
    ("algo", "policy"),
    [(SAC, ERASACPolicy), (TQC, ERATQCPolicy), (PPO, ERAActorCriticPolicy), (A2C, ERAActorCriticPolicy)],
)
def test_no_warning_without_entropy_bonus(algo, policy):
    kwargs = {"ent_coef": 0.0} if algo in (SAC, TQC) else {}
    model = algo(policy, three_dim_env(), policy_kwargs={**small_net(), "delta": "auto"}, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(10, callback=ERACallback())


def test_callback_needs_an_era_policy():
    model = SAC("MlpPolicy", three_dim_env(), policy_kwargs=small_net())
    with pytest.raises(ValueError, match="ERACallback needs an ERA policy"):
        model.learn(10, callback=ERACallback())


@pytest.mark.parametrize("delta_lr", [0.0, -1e-3, float("nan")])
def test_delta_lr_must_be_positive(delta_lr):
    with pytest.raises(ValueError, match="delta_lr"):
        ERACallback(delta_lr=delta_lr)


# ------------------------------------------------------------------------------------------------------------ CUDA
@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("make", [_sac, _ppo], ids=["sac", "ppo"])
def test_the_delta_step_does_not_synchronise_with_the_host(make):
    """ERACallback's per-batch work (policy entropy, EntropyDelta.update) queues on the GPU without a host read."""
    model = make(delta="auto", target_entropy_per_dim=0.25)
    model.policy.to("cuda")
    model.device = torch.device("cuda")
    callback = ERACallback()
    callback.init_callback(model)
    obs = torch.rand(256, 3, device="cuda") * 2 - 1
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad():
            entropy, _ = model.policy.era_entropy(obs)
        model.policy.era_std.era_delta.update(entropy, callback.delta_optimizer)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert model.policy.era_std.era_delta.delta.item() > 0
