"""ERA policies inside SB3 and sb3-contrib: learning, rescaling, save/load, warnings, logging, errors."""

from __future__ import annotations

import importlib
import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from era_policies.sb3 import ERAActorCriticPolicy, ERACrossQPolicy, ERASACPolicy, ERATQCPolicy, SACLayerNormPolicy
from era_policies.sb3.policies import LayerNormContinuousCritic
from tests.conftest import requires_cuda
from tests.sb3.conftest import BoxActionEnv, small_net

OFF_POLICY = [(SAC, ERASACPolicy), (TQC, ERATQCPolicy), (CrossQ, ERACrossQPolicy)]
ON_POLICY = [(PPO, ERAActorCriticPolicy), (A2C, ERAActorCriticPolicy)]
ALL = OFF_POLICY + ON_POLICY


def _make(algo, policy, env, **policy_kwargs):
    kwargs = {"seed": 0, "device": "cpu", "policy_kwargs": {**small_net(), **policy_kwargs}}
    if algo in (SAC, TQC, CrossQ):
        kwargs.update(ent_coef=0.0, learning_starts=50, batch_size=32)
    elif algo is PPO:
        kwargs.update(n_steps=64, batch_size=32, n_epochs=2)
    else:
        kwargs.update(n_steps=8)
    return algo(policy, env, **kwargs)


def _activated_log_std(model, obs: np.ndarray) -> torch.Tensor:
    obs_t = torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1)
    with torch.no_grad():
        if isinstance(model.policy, ERAActorCriticPolicy):
            return model.policy.get_distribution(obs_t).distribution.scale.log()
        return model.policy.actor.get_action_dist_params(obs_t)[1]


# ------------------------------------------------------------------------------------------------------ learning
@pytest.mark.parametrize(("algo", "policy"), ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_short_training_runs_and_keeps_the_entropy_floor(algo, policy, pendulum):
    model = _make(algo, policy, pendulum, target_entropy_per_dim=-0.4)
    model.learn(200)
    obs, _ = pendulum.reset(seed=1)
    log_std = _activated_log_std(model, obs)
    # Pendulum has D = 1, so ERA's Gaussian std is the constant exp(H0 - 0.5 log(2 pi e)).
    assert torch.allclose(log_std, torch.tensor(-0.4 - 0.5 * math.log(2 * math.pi * math.e)), atol=1e-5)
    for param in model.policy.parameters():
        assert torch.isfinite(param).all()


@pytest.mark.parametrize(("algo", "policy"), OFF_POLICY, ids=lambda x: getattr(x, "__name__", ""))
def test_off_policy_algorithms_learn_pendulum(algo, policy, pendulum):
    model = algo(
        policy,
        pendulum,
        ent_coef=0.0,
        learning_rate=1e-3,
        learning_starts=500,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [64, 64]},
    )
    before, _ = evaluate_policy(model, pendulum, n_eval_episodes=3)
    model.learn(5000)
    after, _ = evaluate_policy(model, pendulum, n_eval_episodes=5)
    # A random policy scores about -1200 on Pendulum; a trained one about -150.
    assert after > -600, f"return {after:.0f} after training (was {before:.0f})"


@pytest.mark.slow
def test_ppo_learns_pendulum():
    env = make_vec_env("Pendulum-v1", n_envs=4, seed=0)
    model = PPO(
        ERAActorCriticPolicy,
        env,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        seed=0,
        device="cpu",
    )
    model.learn(100_000)
    mean_return, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=8)
    assert mean_return > -600


# ---------------------------------------------------------------------------------------------------- rescaling
@pytest.mark.parametrize(
    ("low", "high"), [([-2.0], [2.0]), ([-1.0, 0.0], [3.0, 0.5]), ([-0.4] * 3, [0.4] * 3)], ids=str
)
@pytest.mark.parametrize(("algo", "policy"), [(SAC, ERASACPolicy), (PPO, ERAActorCriticPolicy)], ids=["sac", "ppo"])
def test_actions_are_rescaled_to_the_box_not_clipped(algo, policy, low, high):
    env = BoxActionEnv(low, high)
    model = _make(algo, policy, env)
    model.learn(100)  # BoxActionEnv asserts every executed action lies in the box
    obs = np.stack([env.observation_space.sample() for _ in range(256)])
    low_a, high_a = np.array(low), np.array(high)
    deterministic, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        obs_t = torch.as_tensor(obs)
        if isinstance(model.policy, ERAActorCriticPolicy):
            mode = model.policy.get_distribution(obs_t).mode()
        else:
            mode = torch.tanh(model.policy.actor.get_action_dist_params(obs_t)[0])
    expected = low_a + 0.5 * (mode.numpy() + 1.0) * (high_a - low_a)
    np.testing.assert_allclose(deterministic, expected, rtol=1e-5, atol=1e-6)
    stochastic, _ = model.predict(obs, deterministic=False)
    assert np.all(stochastic >= low_a - 1e-6) and np.all(stochastic <= high_a + 1e-6)
    # Rescaled, not clipped: no probability mass piles up exactly on the bounds.
    assert np.mean(np.isclose(stochastic, low_a) | np.isclose(stochastic, high_a)) < 0.01


@pytest.mark.parametrize(("algo", "policy"), [(SAC, ERASACPolicy), (PPO, ERAActorCriticPolicy)], ids=["sac", "ppo"])
def test_multiple_envs(algo, policy):
    env = make_vec_env("Pendulum-v1", n_envs=3, seed=0)
    model = _make(algo, policy, env)
    model.learn(150)
    actions, _ = model.predict(env.reset(), deterministic=False)
    assert actions.shape == (3, 1) and np.all(np.abs(actions) <= 2.0)


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize(("algo", "policy"), ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_cuda_device(algo, policy, pendulum):
    model = algo(policy, pendulum, device="cuda", seed=0, **({"ent_coef": 0.0} if algo in (SAC, TQC, CrossQ) else {}))
    model.learn(300)
    assert next(model.policy.parameters()).is_cuda
    assert model.predict(pendulum.reset(seed=0)[0], deterministic=True)[0].shape == (1,)


# ---------------------------------------------------------------------------------------------------- save/load
ERA_KWARGS = {
    "target_entropy_per_dim": -0.7,
    "log_std_min": -6.0,
    "log_std_max": 0.5,
    "entropy_level": "batch",
    "delta": "auto",
    "delta_lr": 1e-2,
}


@pytest.mark.parametrize(("algo", "policy"), ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_model_and_policy_save_load_round_trip(algo, policy, tmp_path):
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = _make(algo, policy, env, **ERA_KWARGS)
    model.learn(200)
    obs = env.reset()
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", device="cpu")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    assert loaded.policy.era_config == model.policy.era_config
    for key, value in ERA_KWARGS.items():
        assert getattr(loaded.policy.era_config, key) == value
    # delta and the batch-level running normaliser are part of the state
    era_std = loaded.policy.era_std if algo in (PPO, A2C) else loaded.policy.actor.era_std
    original = model.policy.era_std if algo in (PPO, A2C) else model.policy.actor.era_std
    assert torch.equal(era_std.era_delta.delta, original.era_delta.delta)
    assert torch.equal(era_std.batch_era.running_log_normalizer, original.batch_era.running_log_normalizer)

    model.policy.save(tmp_path / "policy.pt")
    policy_only = policy.load(tmp_path / "policy.pt", device="cpu")
    np.testing.assert_array_equal(policy_only.predict(obs, deterministic=True)[0], expected)
    assert policy_only.era_config == model.policy.era_config


def test_sac_layer_norm_policy_round_trip_and_critic(tmp_path, pendulum):
    model = SAC(SACLayerNormPolicy, pendulum, learning_starts=20, batch_size=16, policy_kwargs=small_net(), seed=0)
    assert isinstance(model.policy.critic, LayerNormContinuousCritic)
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.policy.critic.qf0)
    model.learn(40)
    model.policy.save(tmp_path / "p.pt")
    loaded = SACLayerNormPolicy.load(tmp_path / "p.pt")
    assert loaded.critic_layer_norm and isinstance(loaded.critic, LayerNormContinuousCritic)
    era = SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs={**small_net(), "critic_layer_norm": True})
    assert isinstance(era.policy.critic, LayerNormContinuousCritic)
    assert not isinstance(SAC(ERASACPolicy, pendulum, ent_coef=0.0).policy.critic, LayerNormContinuousCritic)


# ------------------------------------------------------------------------------------------ warnings and errors
@pytest.mark.parametrize(
    ("algo", "policy", "ent_coef"),
    [
        (SAC, ERASACPolicy, "auto"),
        (SAC, ERASACPolicy, 0.1),
        (TQC, ERATQCPolicy, "auto_0.5"),
        (PPO, ERAActorCriticPolicy, 0.01),
    ],
)
def test_entropy_bonus_warns(algo, policy, ent_coef, pendulum):
    with pytest.warns(UserWarning, match="ent_coef=0.0"):
        algo(policy, pendulum, ent_coef=ent_coef, policy_kwargs=small_net())


@pytest.mark.parametrize(("algo", "policy"), ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_no_warning_without_entropy_bonus(algo, policy, pendulum):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _make(algo, policy, pendulum)


def test_use_sde_is_rejected(pendulum):
    with pytest.raises(ValueError, match="use_sde"):
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, use_sde=True)
    with pytest.raises(ValueError, match="use_sde"):
        PPO(ERAActorCriticPolicy, pendulum, use_sde=True)


def test_bad_spaces_and_targets_are_value_errors(pendulum):
    with pytest.raises(ValueError, match=r"continuous \(Box\) action space"):
        PPO(ERAActorCriticPolicy, "CartPole-v1")
    with pytest.raises(ValueError, match="infeasible"):
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs={"target_entropy_per_dim": 2.0})
    with pytest.raises(ValueError, match="level"):
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs={"entropy_level": "episode"})
    with pytest.raises(ValueError, match="action_distribution"):
        PPO(ERAActorCriticPolicy, pendulum, policy_kwargs={"action_distribution": "tanh_normal"})
    with pytest.warns(UserWarning, match=r"log\(2\)"):
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs={"target_entropy_per_dim": 1.0})


def test_missing_sb3_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    for name in [m for m in sys.modules if m.startswith("era_policies.sb3")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match=r'pip install "era-policies\[sb3\]"'):
        importlib.import_module("era_policies.sb3")


# ------------------------------------------------------------------------------------------------------ logging
def _train_with_csv_logger(model, tmp_path, steps: int) -> pd.DataFrame:
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(steps, log_interval=1)
    return pd.read_csv(tmp_path / "progress.csv")


def test_ppo_reports_the_activated_std_and_era_curves(tmp_path, pendulum):
    model = _make(PPO, ERAActorCriticPolicy, pendulum, target_entropy_per_dim=-0.3)
    assert not hasattr(model.policy, "log_std")  # PPO would otherwise log exp(log_std) of an unused parameter
    log = _train_with_csv_logger(model, tmp_path, 256).dropna(subset=["train/std"])
    expected_std = math.exp(-0.3 - 0.5 * math.log(2 * math.pi * math.e))  # D = 1: constant activated std
    np.testing.assert_allclose(log["train/std"], expected_std, rtol=1e-5)
    np.testing.assert_allclose(log["era/target_entropy"], -0.3)
    assert (log["era/delta"] == 0.0).all()
    # The bounded policy's entropy is at most the Gaussian's (bounding only removes entropy).
    assert (log["era/entropy"] <= -0.3 + 1e-5).all()


def test_auto_delta_lifts_the_logged_entropy_to_the_target(tmp_path, pendulum):
    target = 0.25
    fixed = _make(SAC, ERASACPolicy, pendulum, target_entropy_per_dim=target)
    auto = _make(SAC, ERASACPolicy, pendulum, target_entropy_per_dim=target, delta="auto", delta_lr=1e-2)
    fixed_log = _train_with_csv_logger(fixed, tmp_path / "fixed", 1200).dropna(subset=["era/entropy"])
    auto_log = _train_with_csv_logger(auto, tmp_path / "auto", 1200).dropna(subset=["era/entropy"])
    assert (fixed_log["era/entropy"] < target).all()  # truncation removes entropy when delta = 0
    settled = auto_log.iloc[len(auto_log) // 2 :]
    assert (settled["era/delta"] > 0).all()
    # Once delta has settled, the realised entropy sits at the target (Adam's step size sets the ripple).
    assert (settled["era/entropy"] >= target - 0.02).all(), settled[["era/entropy", "era/delta"]]


def test_tanh_normal_alternative_uses_sb3_squashed_gaussian_with_the_era_std(tmp_path, pendulum):
    from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution

    model = _make(SAC, ERASACPolicy, pendulum, action_distribution="tanh_normal", delta="auto", delta_lr=1e-2)
    assert isinstance(model.policy.actor.action_dist, SquashedDiagGaussianDistribution)
    log = _train_with_csv_logger(model, tmp_path, 300).dropna(subset=["era/entropy"])
    expected_std = math.exp(
        -0.5 + float(model.policy.actor.era_std.era_delta.delta.detach()) - 0.5 * math.log(2 * math.pi * math.e)
    )
    assert np.isfinite(log["era/entropy"]).all() and (log["era/delta"] >= 0).all()
    obs = np.zeros((5, 3), dtype=np.float32)
    with torch.no_grad():
        log_std = model.policy.actor.get_action_dist_params(torch.as_tensor(obs))[1]
    np.testing.assert_allclose(log_std.exp().numpy(), expected_std, rtol=1e-5)  # D = 1: the ERA std is a constant
    actions, _ = model.predict(obs, deterministic=True)
    assert np.all(np.abs(actions) <= 2.0)
