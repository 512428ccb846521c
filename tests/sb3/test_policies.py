"""ERA policies inside SB3 and sb3-contrib: entropy floor, learning, rescaling, layouts, options, save/load, errors."""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import TQC, TRPO, CrossQ
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import CombinedExtractor

from era_policies import gaussian_entropy
from era_policies.sb3 import (
    ERAActorCriticPolicy,
    ERACallback,
    ERACrossQPolicy,
    ERASACPolicy,
    ERATQCPolicy,
    SACLayerNormPolicy,
)
from era_policies.sb3.policies import LayerNormContinuousCritic
from tests.conftest import requires_cuda
from tests.sb3.conftest import BoxActionEnv, small_net, three_dim_env

OFF_POLICY = [(SAC, ERASACPolicy), (TQC, ERATQCPolicy), (CrossQ, ERACrossQPolicy)]
ON_POLICY = [(PPO, ERAActorCriticPolicy), (A2C, ERAActorCriticPolicy), (TRPO, ERAActorCriticPolicy)]
ALL = OFF_POLICY + ON_POLICY
ERA_POLICIES = [ERASACPolicy, ERATQCPolicy, ERACrossQPolicy, ERAActorCriticPolicy]
ids = lambda x: getattr(x, "__name__", "")  # noqa: E731


def _make(algo, policy, env, device: str = "cpu", **policy_kwargs):
    kwargs = {"seed": 0, "device": device, "policy_kwargs": {**small_net(), **policy_kwargs}}
    if algo in (SAC, TQC, CrossQ):
        kwargs.update(ent_coef=0.0, learning_starts=50, batch_size=32)
    elif algo is PPO:
        kwargs.update(n_steps=64, batch_size=32, n_epochs=2)
    elif algo is TRPO:
        kwargs.update(n_steps=64, batch_size=32)
    else:
        kwargs.update(n_steps=8)
    return algo(policy, env, **kwargs)


def _era_net(model):
    """The network that holds ERA: the actor of the SAC family, the policy itself for PPO/A2C/TRPO."""
    return model.policy if isinstance(model.policy, ERAActorCriticPolicy) else model.policy.actor


def _log_std(model, obs: np.ndarray) -> torch.Tensor:
    """Activated log stds ``(B, D)`` of the policy as it acts."""
    model.policy.set_training_mode(False)
    with torch.no_grad():
        return model.policy.era_entropy(torch.as_tensor(obs, device=model.device))[1].cpu()


def _observations(env: gym.Env, n: int = 64) -> np.ndarray:
    env.observation_space.seed(1)
    return np.stack([env.observation_space.sample() for _ in range(n)])


# -------------------------------------------------------------------------------------------- the entropy floor
@pytest.mark.parametrize(("algo", "policy"), ALL, ids=ids)
def test_every_state_keeps_the_entropy_floor_after_training(algo, policy):
    """State-level ERA: the activated Gaussian of every state has entropy D * target, however the std is shared."""
    env = three_dim_env()
    model = _make(algo, policy, env, target_entropy_per_dim=-0.4)
    model.learn(200)
    log_std = _log_std(model, _observations(env))
    torch.testing.assert_close(gaussian_entropy(log_std), torch.full((64,), 3 * -0.4), atol=1e-4, rtol=0)
    # The floor binds the sum, not each dimension: the network moves the budget between dimensions and states.
    assert log_std.std(dim=0).min() > 1e-4 and log_std.std(dim=1).min() > 1e-4
    for param in model.policy.parameters():
        assert torch.isfinite(param).all()


@pytest.mark.parametrize(("algo", "policy"), [(SAC, ERASACPolicy), (PPO, ERAActorCriticPolicy)], ids=["sac", "ppo"])
def test_batch_level_keeps_the_floor_on_the_batch_mean_only(algo, policy):
    env = three_dim_env()
    model = _make(algo, policy, env, target_entropy_per_dim=-0.4, entropy_level="batch")
    model.learn(200)
    era_net = _era_net(model)
    era_net.train()  # training mode: the batch's own normaliser, as in SB3's train()
    with torch.no_grad():
        log_std = model.policy.era_entropy(torch.as_tensor(_observations(env)))[1]
    per_state = gaussian_entropy(log_std)
    torch.testing.assert_close(per_state.mean(), torch.tensor(3 * -0.4), atol=1e-4, rtol=0)
    assert per_state.std() > 1e-3  # single states sit above or below the floor


def test_constant_delta_raises_the_floor_by_delta_per_dimension():
    env = three_dim_env()
    model = _make(SAC, ERASACPolicy, env, target_entropy_per_dim=-0.4, delta=0.3)
    log_std = _log_std(model, _observations(env))
    torch.testing.assert_close(gaussian_entropy(log_std), torch.full((64,), 3 * (-0.4 + 0.3)), atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------------------------------- learning
# Away from the box's midpoint, where a fresh policy's deterministic action already sits.
OFF_CENTRE_TARGET = [0.6, 0.4, -1.2]


@pytest.mark.parametrize(("algo", "policy"), OFF_POLICY, ids=ids)
def test_off_policy_algorithms_learn_the_box_task(algo, policy):
    env = three_dim_env(target=OFF_CENTRE_TARGET)
    model = algo(policy, env, ent_coef=0.0, learning_rate=3e-3, learning_starts=200, seed=0, device="cpu",
                 policy_kwargs=small_net())  # fmt: skip
    before, _ = evaluate_policy(model, env, n_eval_episodes=8)
    model.learn(1000)
    after, _ = evaluate_policy(model, env, n_eval_episodes=8)
    # Acting at the midpoint scores -36; the target itself 0.
    assert after > -5.0 and after > before + 20.0, f"return {before:.2f} -> {after:.2f}"


@pytest.mark.parametrize(
    ("algo", "policy", "kwargs"),
    [
        (PPO, ERAActorCriticPolicy, {"n_steps": 128, "learning_rate": 1e-3}),
        (A2C, ERAActorCriticPolicy, {"n_steps": 16, "learning_rate": 3e-3}),
        (TRPO, ERAActorCriticPolicy, {"n_steps": 256}),
    ],
    ids=["PPO", "A2C", "TRPO"],
)
def test_on_policy_algorithms_learn_the_box_task(algo, policy, kwargs):
    env = make_vec_env(lambda: three_dim_env(target=OFF_CENTRE_TARGET), n_envs=4, seed=0)
    model = algo(policy, env, seed=0, device="cpu", policy_kwargs=small_net(), **kwargs)
    before, _ = evaluate_policy(model, env, n_eval_episodes=8)
    model.learn(6000)
    after, _ = evaluate_policy(model, env, n_eval_episodes=8)
    # A fresh policy acts at the box's midpoint (-36); 6000 steps close a good part of the gap (PPO: to about -17).
    assert after > before + 8.0, f"return {before:.2f} -> {after:.2f}"


@pytest.mark.parametrize("algo", [PPO, A2C], ids=ids)
def test_skipping_the_closed_form_entropy_changes_no_update_at_ent_coef_0(algo):
    """``closed_form_entropy=False``: ``evaluate_actions`` gives SB3 ``None`` for the entropy (the log-probs and values
    are the same), and with ``ent_coef=0`` training takes bit for bit the same steps as with the closed form."""
    obs = torch.as_tensor(_observations(three_dim_env(), 16))
    actions = torch.rand(16, 3) * 2 - 1
    models, evaluations = [], []
    for closed_form in (True, False):
        # Built and trained one after the other: each construction seeds the global generators.
        model = _make(algo, ERAActorCriticPolicy, three_dim_env(), closed_form_entropy=closed_form)
        evaluations.append(model.policy.evaluate_actions(obs, actions))
        model.learn(200)
        models.append(model)
    with_entropy, without = evaluations
    assert with_entropy[2].shape == (16,) and without[2] is None
    for got, want in zip(without[:2], with_entropy[:2], strict=True):
        assert torch.equal(got, want)
    for got, want in zip(models[1].policy.parameters(), models[0].policy.parameters(), strict=True):
        assert torch.equal(got, want)


def test_closed_form_entropy_round_trips_and_rejects_non_bools(tmp_path, pendulum):
    model = _make(PPO, ERAActorCriticPolicy, three_dim_env(), closed_form_entropy=False)
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.policy.closed_form_entropy is False and loaded.policy.action_dist.entropy() is None
    with pytest.raises(ValueError, match="closed_form_entropy"):
        PPO(ERAActorCriticPolicy, pendulum, policy_kwargs={"closed_form_entropy": "no"})


@pytest.mark.parametrize(
    ("algo", "policy"),
    [
        (SAC, ERASACPolicy),
        pytest.param(TQC, ERATQCPolicy, marks=pytest.mark.slow),
        pytest.param(CrossQ, ERACrossQPolicy, marks=pytest.mark.slow),
    ],
    ids=ids,
)
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
    assert after > -600 and after > before + 300, f"return {after:.0f} after training (was {before:.0f})"


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


def test_tanh_normal_alternative_uses_sb3_squashed_gaussian_with_the_era_std():
    from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution

    env = three_dim_env()
    model = _make(SAC, ERASACPolicy, env, action_distribution="tanh_normal", target_entropy_per_dim=-0.4)
    assert isinstance(model.policy.actor.action_dist, SquashedDiagGaussianDistribution)
    model.learn(150)
    obs = _observations(env)
    torch.testing.assert_close(gaussian_entropy(_log_std(model, obs)), torch.full((64,), -1.2), atol=1e-4, rtol=0)
    actions, _ = model.predict(obs, deterministic=False)
    assert np.all(actions >= env.action_space.low) and np.all(actions <= env.action_space.high)


# ----------------------------------------------------------------------------------------------------------- CUDA
@pytest.mark.parametrize(("algo", "policy"), ALL, ids=ids)
@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=[requires_cuda, pytest.mark.gpu])], ids=["cpu", "cuda"]
)
def test_device(algo, policy, device):
    """The whole path (acting, SB3's train(), ERACallback's delta step) on the algorithm's device."""
    env = three_dim_env()
    # A high floor: delta must grow, so its step shows.
    model = _make(algo, policy, env, device=device, target_entropy_per_dim=0.6, delta="auto", entropy_level="batch")
    model.learn(200, callback=ERACallback(delta_lr=1e-2))
    assert all(t.device.type == device for t in model.policy.state_dict().values())
    assert (
        model.policy.era_std.era_delta.delta.device.type == device and model.policy.era_std.era_delta.delta.item() > 0
    )
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (3,)


# ------------------------------------------------------------------------------------------ module layouts (API)
SAC_ACTOR_KEYS = [
    "latent_pi.0.weight",
    "latent_pi.0.bias",
    "latent_pi.2.weight",
    "latent_pi.2.bias",
    "mu.weight",
    "mu.bias",
    "log_std.weight",
    "log_std.bias",
    "era_std.era_delta.delta",
]
BATCH_ERA_KEYS = ["era_std.batch_era.running_log_normalizer", "era_std.batch_era.num_batches_tracked"]
LAYER_NORM_CRITIC_KEYS = [
    f"qf{i}.{layer}.{p}" for i in range(2) for layer in (0, 1, 3, 4, 6) for p in ("weight", "bias")
]
ACTOR_CRITIC_KEYS = [
    "mlp_extractor.policy_net.0.weight",
    "mlp_extractor.policy_net.0.bias",
    "mlp_extractor.policy_net.2.weight",
    "mlp_extractor.policy_net.2.bias",
    "mlp_extractor.value_net.0.weight",
    "mlp_extractor.value_net.0.bias",
    "mlp_extractor.value_net.2.weight",
    "mlp_extractor.value_net.2.bias",
    "action_net.weight",
    "action_net.bias",
    "std_logits_net.weight",
    "std_logits_net.bias",
    "value_net.weight",
    "value_net.bias",
    "era_std.era_delta.delta",
]


@pytest.mark.parametrize("policy", [ERASACPolicy, ERATQCPolicy], ids=ids)
@pytest.mark.parametrize("entropy_level", ["state", "batch"])
def test_sac_family_actor_layout(policy, entropy_level):
    env = three_dim_env()
    algo = SAC if policy is ERASACPolicy else TQC
    model = algo(policy, env, ent_coef=0.0, policy_kwargs={**small_net(), "entropy_level": entropy_level})
    extra = BATCH_ERA_KEYS if entropy_level == "batch" else []
    assert list(model.policy.actor.state_dict()) == SAC_ACTOR_KEYS + extra
    actor = model.policy.actor
    assert actor.log_std.out_features == 3 and actor.mu.out_features == 3
    assert (actor.era_std.batch_era is not None) == (entropy_level == "batch")


def test_layer_norm_critic_layout():
    model = SAC(ERASACPolicy, three_dim_env(), ent_coef=0.0, policy_kwargs={**small_net(), "critic_layer_norm": True})
    critic = model.policy.critic
    assert isinstance(critic, LayerNormContinuousCritic)
    assert list(critic.state_dict()) == LAYER_NORM_CRITIC_KEYS
    assert [type(m).__name__ for m in critic.qf0] == ["Linear", "LayerNorm", "ReLU"] * 2 + ["Linear"]
    assert list(model.policy.critic_target.state_dict()) == LAYER_NORM_CRITIC_KEYS


def test_actor_critic_layout():
    model = PPO(ERAActorCriticPolicy, three_dim_env(), policy_kwargs={"entropy_level": "batch"})
    assert list(model.policy.state_dict()) == ACTOR_CRITIC_KEYS + BATCH_ERA_KEYS
    assert not hasattr(model.policy, "log_std")  # PPO would otherwise log exp(log_std) of an unused parameter


def test_sac_actor_computes_the_era_activation_from_its_heads():
    """get_action_dist_params = era_log_std(log_std(latent), era_delta.activation_target()) through the ERA head."""
    from era_policies import era_log_std

    model = SAC(ERASACPolicy, three_dim_env(), ent_coef=0.0, policy_kwargs={**small_net(), "delta": 0.2})
    actor = model.policy.actor
    obs = torch.as_tensor(_observations(three_dim_env()))
    with torch.no_grad():
        mean, log_std, _ = actor.get_action_dist_params(obs)
        latent = actor.latent_pi(obs)
        expected = era_log_std(actor.log_std(latent), actor.era_std.era_delta.activation_target(), -8.0, 0.0)
    torch.testing.assert_close(mean, actor.mu(latent))
    torch.testing.assert_close(log_std, expected)


def test_agent_networks_export_by_state_dict():
    """What the single-file agents rely on: a state dict with the documented keys loads into the policy."""
    model = SAC(ERASACPolicy, three_dim_env(), ent_coef=0.0, policy_kwargs={**small_net(), "delta": "auto"})
    state = {key: torch.randn_like(value) for key, value in model.policy.actor.state_dict().items()}
    state["era_std.era_delta.delta"] = torch.tensor(0.25)
    policy = ERASACPolicy(model.observation_space, model.action_space, lambda _: 3e-4, delta="auto", **small_net())
    policy.actor.load_state_dict(state)
    assert policy.era_std.era_delta.delta.item() == 0.25


def _legacy_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as written before the ERA head existed: ``era_delta.*`` and ``batch_era.*`` one level up."""
    return {key.replace("era_std.", ""): value for key, value in state.items()}


@pytest.mark.parametrize(("algo", "policy"), [(SAC, ERASACPolicy), (PPO, ERAActorCriticPolicy)], ids=["sac", "ppo"])
def test_state_dicts_of_the_legacy_layout_still_load(algo, policy):
    """Files saved with ``<owner>.era_delta.*`` / ``<owner>.batch_era.*`` load into the head, at every level a
    state dict is loaded from (the whole policy, as SB3's load does, and the network holding the head)."""
    kwargs = {**small_net(), "delta": "auto", "entropy_level": "batch"}
    source = _make(algo, policy, three_dim_env(), **kwargs)
    source_state = {
        key: torch.randn_like(value.float()).to(value.dtype) for key, value in source.policy.state_dict().items()
    }
    legacy = _legacy_layout(source_state)
    assert "era_std.era_delta.delta" not in "".join(legacy) and any(
        k.endswith("batch_era.num_batches_tracked") for k in legacy
    )
    target = _make(algo, policy, three_dim_env(), **kwargs)
    target.policy.load_state_dict(legacy)  # strict: every key is used, none is missing
    for key, value in target.policy.state_dict().items():
        torch.testing.assert_close(value, source_state[key], msg=key)
    era_net = _era_net(target)
    prefix = "actor." if era_net is not target.policy else ""
    era_net.load_state_dict({k[len(prefix) :]: v for k, v in legacy.items() if k.startswith(prefix)})
    assert era_net.era_std.era_delta.delta.item() == source_state[f"{prefix}era_std.era_delta.delta"].item()


# ------------------------------------------------------------------------------------------- delta and optimisers
@pytest.mark.parametrize(("algo", "policy"), ALL, ids=ids)
@pytest.mark.parametrize("delta", ["auto", 0.1], ids=["auto", "constant"])
def test_delta_is_in_no_sb3_optimizer(algo, policy, delta):
    model = _make(algo, policy, three_dim_env(), delta=delta)
    if isinstance(model.policy, ERAActorCriticPolicy):
        optimizers = [model.policy.optimizer]
    else:
        optimizers = [model.policy.actor.optimizer, model.policy.critic.optimizer]
    delta_param = model.policy.era_std.era_delta.delta
    optimized = [p for opt in optimizers for group in opt.param_groups for p in group["params"]]
    assert not any(p is delta_param for p in optimized)
    # ... and every other trainable parameter of the actor / policy still is.
    owner = _era_net(model)
    expected = {id(p) for p in owner.parameters() if p is not delta_param}
    assert expected <= {id(p) for p in optimized}


# ------------------------------------------------------------------------------------------------ typed options
@pytest.mark.parametrize("policy", ERA_POLICIES, ids=ids)
def test_era_options_are_typed_documented_keyword_arguments(policy):
    signature = inspect.signature(policy.__init__)
    options = ["target_entropy_per_dim", "log_std_min", "log_std_max", "entropy_level", "delta", "batch_momentum"]
    if policy is not ERAActorCriticPolicy:
        options.append("action_distribution")
    if policy is ERASACPolicy:
        options.append("critic_layer_norm")
    if policy is ERAActorCriticPolicy:
        options.append("closed_form_entropy")
    for name in options:
        parameter = signature.parameters[name]
        assert parameter.annotation is not inspect.Parameter.empty, name
        assert parameter.default is not inspect.Parameter.empty, name
        assert f":param {name}:" in policy.__doc__, name


def test_default_targets():
    assert _make(SAC, ERASACPolicy, three_dim_env()).policy.era_std.era_delta.target_entropy_per_dim == -0.5
    assert _make(PPO, ERAActorCriticPolicy, three_dim_env()).policy.era_std.era_delta.target_entropy_per_dim == -0.3


# ---------------------------------------------------------------------------------------------------- save/load
ERA_KWARGS = {
    "target_entropy_per_dim": 0.6,  # high enough that delta must grow
    "log_std_min": -6.0,
    "log_std_max": 0.5,
    "entropy_level": "batch",
    "delta": "auto",
    "batch_momentum": 0.05,
}


@pytest.mark.parametrize(("algo", "policy"), ALL, ids=ids)
def test_model_and_policy_save_load_round_trip(algo, policy, tmp_path):
    env = make_vec_env(lambda: three_dim_env(), n_envs=2, seed=0)
    kwargs = dict(ERA_KWARGS)
    if policy is not ERAActorCriticPolicy:
        kwargs["action_distribution"] = "tanh_normal"
    model = _make(algo, policy, env, **kwargs)
    model.learn(200, callback=ERACallback(delta_lr=1e-2))
    original = _era_net(model)
    assert original.era_std.era_delta.delta.item() > 0 and int(original.era_std.batch_era.num_batches_tracked) > 0
    obs = env.reset()
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", device="cpu")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    for key, value in kwargs.items():
        assert getattr(loaded.policy.era_options, key, getattr(loaded.policy, key, None)) == value, key
    # delta and the batch-level running normaliser are part of the state
    restored = _era_net(loaded)
    assert torch.equal(restored.era_std.era_delta.delta, original.era_std.era_delta.delta)
    assert torch.equal(
        restored.era_std.batch_era.running_log_normalizer, original.era_std.batch_era.running_log_normalizer
    )

    model.policy.save(tmp_path / "policy.pt")
    policy_only = policy.load(tmp_path / "policy.pt", device="cpu")
    np.testing.assert_array_equal(policy_only.predict(obs, deterministic=True)[0], expected)
    assert policy_only.era_options == model.policy.era_options
    assert torch.equal(policy_only.era_std.era_delta.delta, original.era_std.era_delta.delta)


def test_sac_layer_norm_policy_round_trip_and_critic(tmp_path, pendulum):
    model = SAC(SACLayerNormPolicy, pendulum, learning_starts=20, batch_size=16, policy_kwargs=small_net(), seed=0)
    assert isinstance(model.policy.critic, LayerNormContinuousCritic)
    model.learn(40)
    model.policy.save(tmp_path / "p.pt")
    loaded = SACLayerNormPolicy.load(tmp_path / "p.pt")
    assert loaded.critic_layer_norm and isinstance(loaded.critic, LayerNormContinuousCritic)
    era = SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs={**small_net(), "critic_layer_norm": True})
    assert isinstance(era.policy.critic, LayerNormContinuousCritic)
    assert not isinstance(SAC(ERASACPolicy, pendulum, ent_coef=0.0).policy.critic, LayerNormContinuousCritic)


def _class_by_name(name: str) -> type:
    """What RL Zoo's ``get_class_by_name`` does with a dotted ``policy:`` or ``callback:`` entry."""
    module_name, class_name = name.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)


def test_rl_zoo_dotted_policy_and_callback_paths():
    """RL Zoo imports the dotted names and evaluates the ``policy_kwargs`` string of a hyperparameter file."""
    policy_kwargs = eval("dict(target_entropy_per_dim=0.6, delta='auto', net_arch=[32, 32])")
    model = SAC(_class_by_name("era_policies.sb3.ERASACPolicy"), three_dim_env(), ent_coef=0.0, learning_starts=10,
                batch_size=16, policy_kwargs=policy_kwargs)  # fmt: skip
    model.learn(30, callback=[_class_by_name("era_policies.sb3.ERACallback")()])
    assert model.policy.era_options.delta == "auto" and model.policy.era_std.era_delta.delta.item() > 0


# ------------------------------------------------------------------------------------------ warnings and errors
def test_use_sde_is_rejected_by_the_sac_family(pendulum):
    with pytest.raises(ValueError, match="use_sde"):
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, use_sde=True)


def test_use_sde_is_rejected_by_the_actor_critic_policy(pendulum):
    with pytest.raises(ValueError, match="use_sde"):
        PPO(ERAActorCriticPolicy, pendulum, use_sde=True)


def test_discrete_actions_are_rejected():
    with pytest.raises(ValueError, match=r"continuous \(Box\) action space"):
        PPO(ERAActorCriticPolicy, "CartPole-v1")


@pytest.mark.parametrize("policy", ERA_POLICIES, ids=ids)
def test_infeasible_target_is_rejected(policy, pendulum):
    lr = lambda _: 3e-4  # noqa: E731
    with pytest.raises(ValueError, match=r"target_entropy_per_dim.*infeasible"):
        policy(pendulum.observation_space, pendulum.action_space, lr, target_entropy_per_dim=2.0)


@pytest.mark.parametrize("policy", ERA_POLICIES, ids=ids)
@pytest.mark.parametrize("target", ["-0.5", float("nan"), None, True], ids=["string", "nan", "none", "bool"])
def test_non_number_target_is_rejected_naming_it(policy, target, pendulum):
    with pytest.raises(ValueError, match="target_entropy_per_dim"):
        policy(pendulum.observation_space, pendulum.action_space, lambda _: 3e-4, target_entropy_per_dim=target)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("entropy_level", "episode"),
        ("delta", -0.1),
        ("delta", "learned"),
        ("log_std_min", 0.0),
        ("action_distribution", "beta"),
        ("batch_momentum", 0.0),
    ],
)
def test_bad_option_is_a_value_error_naming_it(option, value, pendulum):
    kwargs = {option: value, "entropy_level": "batch"} if option == "batch_momentum" else {option: value}
    with pytest.raises(ValueError, match="momentum" if option == "batch_momentum" else option):
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs=kwargs)


def test_actor_critic_policy_has_no_action_distribution_option(pendulum):
    with pytest.raises(TypeError, match="action_distribution"):
        PPO(ERAActorCriticPolicy, pendulum, policy_kwargs={"action_distribution": "tanh_normal"})


def test_target_above_log_2_warns_at_the_callers_line(pendulum):
    with pytest.warns(UserWarning, match=r"log\(2\)") as record:
        SAC(ERASACPolicy, pendulum, ent_coef=0.0, policy_kwargs={"target_entropy_per_dim": 1.0})
    assert record[0].filename == __file__


class _DictObsEnv(gym.Env):
    observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Box(-1, 1, (3,))})
    action_space = spaces.Box(-1, 1, (2,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@pytest.mark.parametrize(("algo", "policy"), [(SAC, ERASACPolicy), (PPO, ERAActorCriticPolicy)], ids=["sac", "ppo"])
def test_dict_observations_with_the_default_extractor_say_use_combined_extractor(algo, policy):
    with pytest.raises(ValueError, match=r"Dict observation space.*CombinedExtractor"):
        algo(policy, _DictObsEnv())


@pytest.mark.parametrize(("algo", "policy"), [(SAC, ERASACPolicy), (PPO, ERAActorCriticPolicy)], ids=["sac", "ppo"])
def test_dict_observations_work_with_combined_extractor(algo, policy):
    model = _make(algo, policy, _DictObsEnv(), features_extractor_class=CombinedExtractor)
    model.learn(80, callback=ERACallback())
    action, _ = model.predict(_DictObsEnv().observation_space.sample(), deterministic=True)
    assert action.shape == (2,)


def test_missing_sb3_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    for name in [m for m in sys.modules if m.startswith("era_policies.sb3")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match=r'pip install "era-policies\[sb3\]"'):
        importlib.import_module("era_policies.sb3")


@pytest.mark.parametrize(("algo", "policy"), ALL, ids=ids)
def test_constant_delta_trains_without_callback_and_without_warnings(algo, policy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _make(algo, policy, three_dim_env(), delta=0.1)
        model.learn(100)
    assert math.isclose(model.policy.era_std.era_delta.delta.item(), 0.1, rel_tol=1e-6)


def test_a_sac_era_model_loaded_as_tqc_is_refused_when_training_starts(tmp_path):
    """SB3 builds whatever policy class the zip names under the algorithm ``.load`` is called on; TQC with SAC's
    networks would crash later inside train(). ERACallback knows the algorithm and refuses before any update."""
    model = _make(SAC, ERASACPolicy, three_dim_env())
    model.save(tmp_path / "sac_era.zip")
    loaded = TQC.load(tmp_path / "sac_era.zip", env=three_dim_env(), device="cpu")
    with pytest.raises(ValueError, match=r"ERASACPolicy is the ERA policy of SAC, not of TQC.*SAC\.load"):
        loaded.learn(10, callback=ERACallback())
    assert loaded.num_timesteps == 0
    SAC.load(tmp_path / "sac_era.zip", env=three_dim_env(), device="cpu").learn(10, callback=ERACallback())


@pytest.mark.parametrize(
    ("algo", "policy"),
    [
        (TQC, ERASACPolicy),
        (SAC, ERATQCPolicy),
        (CrossQ, ERATQCPolicy),
        (PPO, ERASACPolicy),
    ],
    ids=str,
)
def test_a_policy_of_another_algorithm_is_refused_by_the_callback(algo, policy):
    model = algo(policy, three_dim_env(), ent_coef=0.0)
    with pytest.raises(ValueError, match=rf"{policy.__name__} is the ERA policy of .*not of {algo.__name__}"):
        model.learn(10, callback=ERACallback())


@pytest.mark.parametrize(("algo", "policy"), ALL, ids=ids)
def test_each_policy_accepts_its_own_algorithm(algo, policy):
    model = _make(algo, policy, three_dim_env())
    model.policy.check_algorithm(model)


def test_crossq_refuses_dict_observations_at_construction():
    with pytest.raises(ValueError, match=r"ERACrossQPolicy needs a Box observation space.*FlattenObservation"):
        CrossQ(
            ERACrossQPolicy, _DictObsEnv(), ent_coef=0.0, policy_kwargs={"features_extractor_class": CombinedExtractor}
        )


def test_options_are_one_frozen_value_written_back_for_save_and_load():
    from dataclasses import FrozenInstanceError, asdict

    from era_policies.sb3 import ERAOptions

    model = _make(SAC, ERASACPolicy, three_dim_env(), delta=0.2, entropy_level="batch")
    options = model.policy.era_options
    assert options == ERAOptions(-0.5, -8.0, 0.0, "batch", 0.2, 0.01)
    assert model.policy.actor.era_options is options
    with pytest.raises(FrozenInstanceError):
        options.delta = 0.3
    parameters = model.policy._get_constructor_parameters()
    assert {key: parameters[key] for key in asdict(options)} == asdict(options)
    assert parameters["action_distribution"] == "truncated_normal"
    with pytest.raises(ValueError, match="log_std_max=5 is too large"):
        ERAOptions(-0.5, log_std_max=5.0)
