"""agents/ppo_era.py in process: its loss, its gradient, its compiled path, its SB3 export and its flag checks."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

from gymnasium import spaces

from benchmarks.agent_scripts import load_agent
from era_policies import era_action_distribution, gaussian_entropy

OBS_DIM, ACTION_DIM = 4, 3  # several action dimensions: with one, ERA's std is a constant


@pytest.fixture(scope="module")
def ppo():
    return load_agent("ppo_era")


def make_agent(ppo, **overrides):
    args = ppo.Args(hidden_dim=8, **overrides)
    low, high = np.full(ACTION_DIM, -2.0, np.float32), np.full(ACTION_DIM, 2.0, np.float32)
    return ppo.Agent(OBS_DIM, low, high, args), args


def rollout_minibatch(agent, size: int = 32) -> tuple[torch.Tensor, ...]:
    """What a rollout stores for ``size`` states: obs, actions, log-probs, advantages, returns, values."""
    obs = torch.randn(size, OBS_DIM)
    agent.eval()
    with torch.no_grad():
        distribution, _, _ = agent.action_distribution(obs)
        actions = distribution.sample()
        logprobs = distribution.log_prob(actions).sum(-1)
        values = agent.get_value(obs)
    agent.train()
    return obs, actions, logprobs, torch.randn(size), torch.randn(size), values


def std_head_grad(ppo, agent, args, minibatch) -> torch.Tensor:
    agent.zero_grad()
    loss, _, _ = ppo.ppo_loss(agent, args, *minibatch)
    loss.backward()
    return agent.std_logits_net.weight.grad


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_env_actions_lie_in_the_box(ppo, era):
    """ERA maps [-1, 1] affinely onto the Box (its ends onto the bounds, its middle onto the centre); the twin clips
    its Gaussian actions to the Box, as SB3 and CleanRL do."""
    args = ppo.Args(hidden_dim=8, era=era)
    low, high = np.array([-2.0, 0.0, -0.4], np.float32), np.array([2.0, 1.0, 0.4], np.float32)
    agent = ppo.Agent(OBS_DIM, low, high, args)
    if era:
        policy_actions = torch.tensor([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, -0.5, 0.25]])
        expected = torch.tensor([[-2.0, 0.0, -0.4], [0.0, 0.5, 0.0], [2.0, 1.0, 0.4], [1.0, 0.25, 0.1]])
    else:
        policy_actions = torch.tensor([[-3.0, -0.5, 0.1], [1.0, 2.0, -9.0]])
        expected = torch.tensor([[-2.0, 0.0, 0.1], [1.0, 1.0, -0.4]])
    torch.testing.assert_close(agent.env_action(policy_actions), expected, rtol=0, atol=1e-7)


def test_advantages_follow_the_gae_recursion(ppo):
    """GAE against the textbook recursion, step by step in float64 (an episode ends inside the rollout, one env's ends
    on its last step); with gamma = lambda = 1 the returns are the rewards summed to each episode's end (plus the
    bootstrap value where the rollout cuts an episode)."""
    args = ppo.Args(num_steps=7, num_envs=2, gamma=0.97, gae_lambda=0.9)
    generator = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(7, 2, generator=generator), torch.randn(7, 2, generator=generator)
    dones = torch.zeros(7, 2)
    dones[3, 0] = 1.0  # env 0's step 3 starts a new episode
    next_value, next_done = torch.randn(2, generator=generator), torch.tensor([0.0, 1.0])
    advantages, returns = ppo.advantages_and_returns(args, rewards, values, dones, next_value, next_done)
    expected, following = torch.zeros(7, 2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for t in reversed(range(7)):
        non_terminal = 1.0 - (next_done if t == 6 else dones[t + 1]).double()
        bootstrap = (next_value if t == 6 else values[t + 1]).double()
        delta = rewards[t].double() + args.gamma * bootstrap * non_terminal - values[t].double()
        following = expected[t] = delta + args.gamma * args.gae_lambda * non_terminal * following
    torch.testing.assert_close(advantages, expected.float())
    torch.testing.assert_close(returns, (expected + values.double()).float())

    undiscounted = dataclasses.replace(args, gamma=1.0, gae_lambda=1.0)
    _, returns = ppo.advantages_and_returns(undiscounted, rewards, values, dones, next_value, next_done)
    torch.testing.assert_close(returns[:3, 0], rewards[:3, 0].flip(0).cumsum(0).flip(0))  # episode ends at step 2
    torch.testing.assert_close(returns[3:, 0], rewards[3:, 0].flip(0).cumsum(0).flip(0) + next_value[0])
    torch.testing.assert_close(returns[:, 1], rewards[:, 1].flip(0).cumsum(0).flip(0))  # ends with the rollout


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_acting_step_draws_the_policys_actions_with_their_log_probs(ppo, era):
    """``act`` draws what the policy's distribution draws from the same generator state (--no-era: ``Normal``'s
    numbers, drawn as mean + std * noise), its log-probs are the distribution's own (--no-era: from the noise), and its
    values are the critic's; at wide and narrow stds alike."""
    agent, _ = make_agent(ppo, era=era)
    agent.eval()
    for obs_scale, log_std in ((0.1, -3.0), (1.0, 0.0), (30.0, 1.5)):  # ERA: the std head's logits grow with obs
        obs = torch.randn(64, OBS_DIM) * obs_scale
        with torch.no_grad():
            if not era:
                agent.log_std.fill_(log_std)
            torch.manual_seed(3)
            action, logprob, value = agent.act(obs)
            distribution, _, _ = agent.action_distribution(obs)
            torch.manual_seed(3)
            torch.testing.assert_close(action, distribution.sample(), rtol=0, atol=1e-6)
            torch.testing.assert_close(logprob, distribution.log_prob(action).sum(-1), rtol=1e-6, atol=1e-5)
            torch.testing.assert_close(value, agent.get_value(obs))
        assert not value.requires_grad and not logprob.requires_grad


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_first_minibatch_ratio_is_one(ppo, era):
    """The first minibatch of the first epoch evaluates the policy that collected it: ratio 1, nothing clipped."""
    agent, args = make_agent(ppo, era=era)
    _, _, stats = ppo.ppo_loss(agent, args, *rollout_minibatch(agent))
    assert stats["losses/approx_kl"] < 1e-6  # mean((r - 1) - log r) = 0 only where every ratio r is 1
    assert stats["losses/clipfrac"] == 0.0


def test_without_entropy_coefficient_the_loss_has_no_entropy_term(ppo):
    agent, args = make_agent(ppo, ent_coef=0.0)
    minibatch = rollout_minibatch(agent)
    loss, entropy, stats = ppo.ppo_loss(agent, args, *minibatch)
    assert loss == stats["losses/policy_loss"] + args.vf_coef * stats["losses/value_loss"]

    # With zero advantages and no value loss, only an entropy bonus could move the std head.
    assert entropy is None  # nothing needs it: it is not computed
    no_signal = (*minibatch[:3], torch.zeros(len(minibatch[0])), *minibatch[4:])
    args.vf_coef = 0.0
    assert torch.all(std_head_grad(ppo, agent, args, no_signal) == 0)
    args.ent_coef = 0.01
    loss, entropy, stats = ppo.ppo_loss(agent, args, *no_signal)
    torch.testing.assert_close(loss, stats["losses/policy_loss"] - 0.01 * entropy.mean())
    assert std_head_grad(ppo, agent, args, no_signal).abs().max() > 0


@pytest.mark.parametrize(
    ("overrides", "in_loss"), [({}, 0), ({"ent_coef": 0.01}, 1), ({"delta": "auto"}, 1)], ids=["none", "bonus", "delta"]
)
def test_the_entropy_is_computed_in_the_loss_only_when_it_needs_it(ppo, overrides, in_loss, monkeypatch):
    agent, args = make_agent(ppo, **overrides)
    minibatch = rollout_minibatch(agent)
    distribution_class = type(era_action_distribution(torch.zeros(1, ACTION_DIM), torch.zeros(1, ACTION_DIM)))
    calls = []
    entropy = distribution_class.entropy
    monkeypatch.setattr(distribution_class, "entropy", lambda self: calls.append(self) or entropy(self))
    _, _, stats = ppo.ppo_loss(agent, args, *minibatch)
    assert len(calls) == in_loss
    values = ppo.log_values(agent, stats)
    assert len(calls) == 1  # the log step computes it only if the loss did not
    _, mean, log_std = agent.action_distribution(minibatch[0])
    expected = era_action_distribution(mean, log_std).entropy().sum(-1).mean()
    torch.testing.assert_close(values["losses/entropy"], expected.detach())


def test_positive_advantages_raise_the_log_probability_of_their_actions(ppo):
    agent, args = make_agent(ppo, norm_adv=False, vf_coef=0.0)
    obs, actions, logprobs, _, returns, values = rollout_minibatch(agent)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    loss, _, _ = ppo.ppo_loss(agent, args, obs, actions, logprobs, torch.ones(len(obs)), returns, values)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        distribution, _, _ = agent.action_distribution(obs)
        assert distribution.log_prob(actions).sum(-1).mean() > logprobs.mean()


def test_state_level_era_keeps_the_gaussian_entropy_at_its_floor_in_every_state(ppo):
    agent, args = make_agent(ppo, target_entropy_per_dim=-0.5)
    _, _, log_std = agent.action_distribution(torch.randn(64, OBS_DIM) * 10)
    _, _, stats = ppo.ppo_loss(agent, args, *rollout_minibatch(agent))
    stats = ppo.log_values(agent, stats)
    floor = ACTION_DIM * -0.5
    assert stats["gaussian_entropy_min"] >= floor - 1e-4
    torch.testing.assert_close(gaussian_entropy(log_std), torch.full((64,), floor))


def test_state_independent_std_ablation_learns_only_the_std_head_bias(ppo):
    agent, args = make_agent(ppo, state_dependent_std=False)
    minibatch = rollout_minibatch(agent)
    _, _, log_std = agent.action_distribution(torch.randn(16, OBS_DIM))
    torch.testing.assert_close(log_std, log_std[:1].expand_as(log_std))  # the same std in every state
    args.ent_coef = 0.01  # a gradient on the std logits
    loss, _, _ = ppo.ppo_loss(agent, args, *minibatch)
    loss.backward()
    assert agent.std_logits_net.weight.grad is None and agent.std_logits_net.bias.grad.abs().max() > 0


@pytest.mark.parametrize(
    "backend",
    [
        "aot_eager",  # dynamo's graph capture and AOT autograd, the parts that could change what is computed
        pytest.param("inductor", marks=pytest.mark.slow),  # what --compile uses; minutes of C++ compilation on CPU
    ],
)
def test_compiled_loss_matches_eager(ppo, backend):
    """--compile: the same loss and gradients as eager on the same minibatch (CPU, tiny network), in one graph."""
    agent, args = make_agent(ppo, delta="auto", ent_coef=0.01)
    minibatch = rollout_minibatch(agent)
    eager_loss, eager_entropy, _ = ppo.ppo_loss(agent, args, *minibatch)
    eager_grads = torch.autograd.grad(eager_loss, list(agent.parameters()), allow_unused=True)
    torch._dynamo.reset()
    compiled_loss, compiled_entropy, _ = torch.compile(ppo.ppo_loss, backend=backend, fullgraph=True)(
        agent, args, *minibatch
    )
    compiled_grads = torch.autograd.grad(compiled_loss, list(agent.parameters()), allow_unused=True)
    torch.testing.assert_close(compiled_loss, eager_loss)
    torch.testing.assert_close(compiled_entropy, eager_entropy)
    for eager, compiled in zip(eager_grads, compiled_grads, strict=True):
        if eager is None:
            assert compiled is None
        else:
            torch.testing.assert_close(compiled, eager)


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
@pytest.mark.parametrize(
    "backend",
    ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)],  # inductor: what --compile uses
)
def test_compiled_acting_step_is_one_graph_acting_as_eager(ppo, era, backend):
    """--compile's acting step: one graph; its log-probs and values are eager's for the actions it samples, and with
    eager's random numbers (``fallback_random``) it samples eager's actions."""
    import torch._inductor.config

    agent, _ = make_agent(ppo, era=era)
    agent.eval()
    obs = torch.randn(5, OBS_DIM)
    torch._dynamo.reset()
    act = torch.compile(agent.act, backend=backend, fullgraph=True)
    # config.patch, not monkeypatch: undoing a monkeypatch deletes the config entry
    with torch._inductor.config.patch(fallback_random=True):
        torch.manual_seed(0)
        action, logprob, value = act(obs)
        torch.manual_seed(0)
        torch.testing.assert_close(action, agent.act(obs)[0])
    with torch.no_grad():
        distribution, _, _ = agent.action_distribution(obs)
        torch.testing.assert_close(logprob, distribution.log_prob(action).sum(-1))
        torch.testing.assert_close(value, agent.get_value(obs))
    action, _, _ = act(obs)  # Inductor's own random numbers
    assert torch.isfinite(action).all() and (not era or action.abs().max() <= 1.0)


def test_fused_adam_takes_adams_steps_at_the_annealed_rate(ppo):
    """Adam is fused on the CPU too (one kernel per step), and its steps are torch's per-tensor Adam's at the rate of
    the moment; a checkpoint holding a tensor rate (written when the CPU step was compiled) resumes with a float."""
    agent, args = make_agent(ppo, delta="auto")
    twin = copy.deepcopy(agent)
    optimizer, delta_optimizer = ppo.make_optimizers(agent, args, torch.device("cpu"))
    assert optimizer.defaults["fused"]
    twin_params = [p for p in twin.parameters() if p.requires_grad and p is not twin.era_std.era_delta.delta]
    per_tensor = torch.optim.Adam(twin_params, lr=args.learning_rate, eps=1e-5, foreach=False)
    twin_delta_optimizer = torch.optim.Adam([twin.era_std.era_delta.delta], lr=args.delta_lr, foreach=False)
    fused_update = ppo.make_update(agent, args, optimizer, delta_optimizer)
    per_tensor_update = ppo.make_update(twin, args, per_tensor, twin_delta_optimizer)
    minibatch = rollout_minibatch(agent)
    for lr in (3e-4, 1e-2, 1e-3):
        ppo.set_learning_rate(optimizer, lr)
        ppo.set_learning_rate(per_tensor, lr)
        fused_update(*minibatch)
        per_tensor_update(*minibatch)
        for (name, got), (_, want) in zip(agent.named_parameters(), twin.named_parameters(), strict=True):
            torch.testing.assert_close(got, want, msg=name)

    state = optimizer.state_dict()
    state["param_groups"][0]["lr"] = torch.tensor(1e-3)  # an older checkpoint's compiled-step rate
    resumed, _ = ppo.make_optimizers(twin, args, torch.device("cpu"))
    resumed.load_state_dict(state)
    ppo.make_update(twin, args, resumed)
    assert isinstance(resumed.param_groups[0]["lr"], float) and resumed.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_compile_flag_compiles_the_loss_and_the_acting_step(ppo, tmp_path, monkeypatch):
    """--compile: the loss and the acting step go through torch.compile (here its ``aot_eager``
    backend, which draws eager's random numbers), and two iterations, the second at the annealed rate, end in the
    eager run's policy."""
    from era_utils.command_line import parse_args

    compiled = []

    def recording_compile(fn, **options):
        compiled.append(fn.__name__)
        return torch_compile(fn, **{**options, "backend": "aot_eager"})

    torch_compile = torch.compile
    flags = ["--env-id", "Pendulum-v1", "--total-timesteps", "256", "--num-steps", "128", "--num-minibatches", "2"]
    flags += ["--update-epochs", "1", "--eval-episodes", "1", "--no-cuda", "--no-progress", "--log-dir", str(tmp_path)]
    ppo.main(parse_args(ppo.Args, [*flags, "--run-name", "eager"]))
    monkeypatch.setattr(torch, "compile", recording_compile)
    torch._dynamo.reset()
    ppo.main(parse_args(ppo.Args, [*flags, "--run-name", "compiled", "--compile"]))
    assert compiled == ["ppo_loss", "act"]
    evaluations = [pd.read_csv(tmp_path / run / "evaluations.csv") for run in ("eager", "compiled")]
    assert len(evaluations[0]) == 1  # the final evaluation
    pd.testing.assert_frame_equal(*evaluations, rtol=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"entropy_level": "batch"}, {"delta": "auto"}, {"era": False}],
    ids=["era", "era-batch", "era-delta-auto", "no-era"],
)
def test_weights_export_into_the_sb3_policy_which_acts_like_the_agent(ppo, overrides, tmp_path):
    agent, args = make_agent(ppo, **overrides)
    for parameter in agent.parameters():  # away from the initialisation, which makes every mean 0
        torch.nn.init.normal_(parameter, std=0.5 if parameter.dim() > 0 else 0.0)
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = spaces.Box(-2.0, 2.0, (ACTION_DIM,), np.float32)
    policy = ppo.sb3_policy(args, observation_space, action_space)
    policy.load_state_dict(agent.state_dict())  # strict: every key of the SB3 layout, nothing else
    policy.save(tmp_path / "policy.pt")
    loaded = type(policy).load(tmp_path / "policy.pt", device="cpu")

    obs = np.random.default_rng(0).normal(size=(5, OBS_DIM)).astype(np.float32)
    agent.eval()
    with torch.no_grad():
        distribution, _, _ = agent.action_distribution(torch.as_tensor(obs))
        expected = agent.env_action(distribution.mode).numpy()
    actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(expected).max() > 0.1  # the comparison is not between zeros


@pytest.mark.parametrize("level", ["state", "batch"])
def test_checkpoints_from_before_the_era_head_still_load(ppo, level):
    agent, _ = make_agent(ppo, entropy_level=level, delta="auto")
    for parameter in agent.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    legacy = {key.replace("era_std.", ""): value for key, value in agent.state_dict().items()}
    assert "era_delta.delta" in legacy
    fresh, _ = make_agent(ppo, entropy_level=level, delta="auto")
    fresh.load_state_dict(legacy)
    for key, value in agent.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, msg=key)


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"total_timesteps": 0}, "--total-timesteps"),
        ({"num_steps": 0}, "--num-steps"),
        ({"update_epochs": 0}, "--update-epochs"),
        ({"hidden_dim": 0}, "--hidden-dim"),
        ({"num_minibatches": 0}, "--num-minibatches"),
        ({"num_steps": 16, "num_minibatches": 32}, "--num-minibatches"),  # more minibatches than steps
        ({"num_steps": 100, "num_minibatches": 32}, "--num-minibatches"),  # does not divide the batch
        ({"learning_rate": 0.0}, "--learning-rate"),
        ({"learning_rate": float("nan")}, "--learning-rate"),
        ({"gamma": 1.5}, "--gamma"),
        ({"gae_lambda": -0.1}, "--gae-lambda"),
        ({"clip_coef": 0.0}, "--clip-coef"),
        ({"max_grad_norm": -1.0}, "--max-grad-norm"),
        ({"target_kl": 0.0}, "--target-kl"),
        ({"delta": -0.1}, "--delta"),
        ({"log_std_min": 0.0}, "--log-std-min"),
        ({"log_std_max": 3.5}, "--log-std-max"),  # above log(20): outside ERA's action distribution's range
        ({"target_entropy_per_dim": 2.0}, "--target-entropy-per-dim"),
    ],
)
def test_settings_that_cannot_work_are_refused_naming_the_flag(ppo, overrides, flag):
    with pytest.raises(ValueError, match=flag):
        ppo.Args(**overrides).check()


def test_default_settings_pass_the_checks(ppo):
    ppo.Args().check()
    ppo.Args(era=False, target_entropy_per_dim=5.0).check()  # the ERA target does not apply to plain PPO
