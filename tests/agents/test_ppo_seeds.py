"""ppo_era_seeds.py: N seeds stacked in one process are N independent single-seed agents.

The stacked steps run ppo_era.py's own functions under ``vmap``; here they are compared with N single-seed calls of
``ppo_era.make_update``, ``Agent.act`` and ``advantages_and_returns`` from the same initial parameters, on each seed's
own data.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agents"))
import ppo_era
import ppo_era_seeds

from tests.agents.test_ppo import ACTION_DIM, OBS_DIM, rollout_minibatch
from tests.conftest import requires_cuda

NUM_SEEDS = 3
CPU = torch.device("cpu")


def make_agents(device=CPU, **options):
    """Each seed's agent initialised from its own seed, and its single-seed optimisers."""
    options = {"hidden_dim": 8, "max_grad_norm": 0.05, "num_seeds": NUM_SEEDS, **options}  # small: clipping acts
    args = ppo_era_seeds.Args(cuda=device.type == "cuda", **options)
    low, high = np.full(ACTION_DIM, -2.0, np.float32), np.full(ACTION_DIM, 2.0, np.float32)
    agents = []
    for seed in range(NUM_SEEDS):
        torch.manual_seed(seed)
        agents.append(ppo_era.Agent(OBS_DIM, low, high, args).to(device))
    return args, agents


def stacked_copy(args, agents, device=CPU, **kwargs):
    copies = copy.deepcopy(agents)
    return ppo_era_seeds.StackedPPO(copies, [ppo_era.make_optimizers(a, args, device) for a in copies], args, **kwargs)


def seed_minibatches(agents, device=CPU):
    """Each seed's own minibatch, with advantages on a scale of their own (so that a normalisation across seeds, or
    a gradient clipped by the seeds' joint norm, would show)."""
    minibatches = []
    for seed, agent in enumerate(agents):
        torch.manual_seed(100 + seed)
        obs, actions, logprobs, advantages, returns, values = rollout_minibatch(agent.cpu())
        agent.to(device)
        fields = (obs, actions, logprobs, advantages * 10.0**seed + seed, returns, values)
        minibatches.append(tuple(field.to(device) for field in fields))
    return minibatches


def stack(minibatches):
    return tuple(torch.stack(fields) for fields in zip(*minibatches, strict=True))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize(
    "options",
    [{}, {"delta": "auto"}, {"delta": "auto", "ent_coef": 0.01}, {"era": False}, {"state_dependent_std": False}],
    ids=["era", "era-delta-auto", "era-entropy-bonus", "no-era", "state-independent-std"],
)
def test_stacked_updates_equal_the_single_seed_updates(options, device):
    """Losses and statistics, gradients after clipping, parameters (delta included) after the optimiser steps; on
    every device the single-seed agents use fused Adam, as the stacked one does."""
    device = torch.device(device)
    args, agents = make_agents(device, **options)
    stacked = stacked_copy(args, agents, device)
    minibatches = seed_minibatches(agents, device)
    singles = [ppo_era.make_update(agent, args, *ppo_era.make_optimizers(agent, args, device)) for agent in agents]
    unclipped = 0
    for step in range(3):  # the optimisers' moments carry over between steps
        stats = stacked.update(*stack(minibatches))
        for i, (agent, update) in enumerate(zip(agents, singles, strict=True)):
            expected = update(*minibatches[i])
            assert stats.keys() == expected.keys()
            for name, value in stats.items():
                assert value.shape[0] == NUM_SEEDS, name  # one value per seed: nothing averaged across seeds
                torch.testing.assert_close(value[i], expected[name], msg=f"{name}, seed {i}, step {step}")
            for name, param in agent.named_parameters():
                stacked_param = stacked.params["agent." + name]
                torch.testing.assert_close(stacked_param[i], param, msg=f"{name}, seed {i}, step {step}")
                if param.grad is None:
                    assert stacked_param.grad is None or not stacked_param.grad[i].any(), name
                else:
                    torch.testing.assert_close(stacked_param.grad[i], param.grad, msg=f"{name} grad, seed {i}")
            norm = torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in agent.parameters() if p.grad is not None])
            )
            unclipped += bool(norm < args.max_grad_norm * (1 - 1e-3))  # a clipped norm is at the bound
    assert unclipped < NUM_SEEDS * 3  # clipping acted in these steps
    if options.get("delta") == "auto":
        assert stacked.delta.shape == (NUM_SEEDS,)
        deltas = [agent.era_std.era_delta.delta.detach() for agent in agents]
        torch.testing.assert_close(stacked.delta.detach(), torch.stack(deltas))


def test_gradient_clipping_is_each_seeds_own():
    """Each seed's gradients scaled as clip_grad_norm_ scales that seed's alone, not by the norm of all seeds."""
    torch.manual_seed(0)
    shapes = [(NUM_SEEDS, 4, 3), (NUM_SEEDS, 3), (NUM_SEEDS,)]
    params = [torch.zeros(shape, requires_grad=True) for shape in shapes]
    for param, scale in zip(params, (1.0, 10.0, 0.1), strict=True):
        param.grad = (
            torch.randn(param.shape) * scale * torch.tensor([0.01, 1.0, 100.0]).view(-1, *[1] * (param.dim() - 1))
        )
    singles = [[torch.nn.Parameter(param[i].detach().clone()) for param in params] for i in range(NUM_SEEDS)]
    for i, single in enumerate(singles):
        for param, stacked in zip(single, params, strict=True):
            param.grad = stacked.grad[i].clone()
    norms = ppo_era_seeds.clip_grad_norm_per_seed_(params, max_norm=1.0)
    for i, single in enumerate(singles):
        torch.testing.assert_close(norms[i], torch.nn.utils.clip_grad_norm_(single, 1.0))
        for param, stacked in zip(single, params, strict=True):
            torch.testing.assert_close(stacked.grad[i], param.grad)
    assert norms[0] < 1.0 < norms[1]  # one seed below the bound (left as it is), the others clipped


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
@torch.no_grad()
def test_acting_runs_each_seeds_agent(era):
    """Each seed's actions come from its own policy: their log-probabilities and the values are its agent's. Both
    samplers (ERA's and the twin's one ``randn``) also run with one noise stream for all seeds (vmap's randomness
    "same"), and then each seed draws exactly what its agent alone draws. Seeds with identical networks and
    observations still draw their own actions."""
    args, agents = make_agents(era=era)
    obs = torch.randn(NUM_SEEDS, 5, OBS_DIM)
    stacked = stacked_copy(args, agents)
    actions, logprobs, values = stacked.act(obs)
    for i, agent in enumerate(agents):
        distribution, _, _ = agent.action_distribution(obs[i])
        torch.testing.assert_close(logprobs[i], distribution.log_prob(actions[i]).sum(-1))
        torch.testing.assert_close(values[i], agent.get_value(obs[i]))
        torch.testing.assert_close(stacked.value(obs[i], index=i), values[i])
    torch.manual_seed(7)
    same_noise = stacked_copy(args, agents, randomness="same").act(obs)
    for i, agent in enumerate(agents):
        torch.manual_seed(7)
        for got, expected in zip((output[i] for output in same_noise), agent.act(obs[i]), strict=True):
            torch.testing.assert_close(got, expected)

    identical = stacked_copy(args, [agents[0]] * NUM_SEEDS)
    actions, _, _ = identical.act(obs[:1].expand(NUM_SEEDS, -1, -1))
    assert actions.shape == (NUM_SEEDS, 5, ACTION_DIM)
    assert not torch.equal(actions[0], actions[1])


def test_advantages_are_each_seeds_own():
    args = ppo_era_seeds.Args(num_steps=6, num_envs=2)
    torch.manual_seed(0)
    rewards, values = torch.randn(NUM_SEEDS, 6, 2), torch.randn(NUM_SEEDS, 6, 2)
    dones = (torch.rand(NUM_SEEDS, 6, 2) < 0.3).float()
    next_value, next_done = torch.randn(NUM_SEEDS, 2), torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    advantages, returns = torch.func.vmap(functools.partial(ppo_era.advantages_and_returns, args))(
        rewards, values, dones, next_value, next_done
    )
    for i in range(NUM_SEEDS):
        expected = ppo_era.advantages_and_returns(args, rewards[i], values[i], dones[i], next_value[i], next_done[i])
        torch.testing.assert_close(advantages[i], expected[0])
        torch.testing.assert_close(returns[i], expected[1])


def test_each_seed_permutes_its_batch_with_its_own_generator():
    generators = [torch.Generator().manual_seed(seed) for seed in (3, 4)]
    orders = [ppo_era_seeds.permutations(generators, 64, CPU) for _ in range(2)]
    for seed, row in zip((3, 4), orders[0], strict=True):
        torch.testing.assert_close(row, torch.randperm(64, generator=torch.Generator().manual_seed(seed)))
    assert not torch.equal(orders[0][0], orders[0][1])  # the seeds' orders differ
    assert not torch.equal(orders[0], orders[1])  # and so do the epochs'


def test_minibatch_takes_each_seeds_own_indices():
    batch = (torch.arange(NUM_SEEDS * 5).view(NUM_SEEDS, 5), torch.arange(NUM_SEEDS * 10).view(NUM_SEEDS, 5, 2))
    indices = torch.tensor([[4, 0], [1, 2], [3, 3]])
    first, second = ppo_era_seeds.minibatch(batch, indices)
    for i in range(NUM_SEEDS):
        torch.testing.assert_close(first[i], batch[0][i][indices[i]])
        torch.testing.assert_close(second[i], batch[1][i][indices[i]])


def test_compiled_stacked_update_equals_eager(monkeypatch):
    """--compile: the vmapped loss traces to one graph (fullgraph), and the update is eager's (the ``aot_eager``
    backend: graph capture and AOT autograd without Inductor's minutes of code generation on a small CPU)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    args, agents = make_agents(delta="auto", ent_coef=0.01, compile=True)
    eager = stacked_copy(dataclasses.replace(args, compile=False), agents)
    compiled = stacked_copy(args, agents)
    data = stack(seed_minibatches(agents))
    for step in range(2):
        expected, got = eager.update(*data), compiled.update(*data)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=f"{name}, step {step}")
    for name, value in eager.params.items():
        torch.testing.assert_close(compiled.params[name], value, atol=1e-5, rtol=1e-4, msg=name)
    obs = torch.randn(NUM_SEEDS, 4, OBS_DIM)  # the acting step, compiled too: the same draws, log-probs and values
    torch.manual_seed(0)
    expected = eager.act(obs)
    torch.manual_seed(0)
    for got, want in zip(compiled.act(obs), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_compiled_stacked_update_runs_with_inductor():
    """The default backend (Inductor's code generation) compiles the vmapped loss and its backward, and the vmapped
    acting step."""
    torch._dynamo.reset()
    args, agents = make_agents(delta="auto", compile=True)
    stacked = stacked_copy(args, agents)
    stats = stacked.update(*stack(seed_minibatches(agents)))
    assert all(torch.isfinite(value).all() for value in stats.values())
    assert all(torch.isfinite(value).all() for value in stacked.params.values())
    actions, logprobs, values = stacked.act(torch.randn(NUM_SEEDS, 4, OBS_DIM))
    assert actions.shape == (NUM_SEEDS, 4, ACTION_DIM) and actions.abs().max() <= 1.0
    assert torch.isfinite(logprobs).all() and torch.isfinite(values).all()


def test_seed_checkpoints_restack_to_the_same_training_state():
    """What --resume does: each seed's slice (parameters and optimiser states, as ppo_era.py checkpoints them)
    stacked again continues exactly as the original stacked agent."""
    args, agents = make_agents(delta="auto")
    stacked = stacked_copy(args, agents)
    data = stack(seed_minibatches(agents))
    for _ in range(2):
        stacked.update(*data)
    _, fresh = make_agents(delta="auto")
    optimizers = [ppo_era.make_optimizers(agent, args, CPU) for agent in fresh]
    for index, (agent, (optimizer, delta_optimizer)) in enumerate(zip(fresh, optimizers, strict=True)):
        stacked.write_to(agent, index)
        stacked.write_optimizers_to((optimizer, delta_optimizer), index)
        # through a checkpoint's dicts
        agent.load_state_dict(copy.deepcopy(agent.state_dict()))
        optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        delta_optimizer.load_state_dict(copy.deepcopy(delta_optimizer.state_dict()))
    restacked = ppo_era_seeds.StackedPPO(fresh, optimizers, args)
    expected, got = stacked.update(*data), restacked.update(*data)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)
    for name, value in stacked.params.items():
        torch.testing.assert_close(restacked.params[name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        ({"target_kl": 0.02}, "--target-kl"),
        ({"entropy_level": "batch"}, "--entropy-level batch"),
        ({"capture_video": True}, "--capture-video"),
        ({"num_seeds": 0}, "--num-seeds"),
        ({"run_dirs": "runs/fixed"}, "--run-dirs"),
    ],
)
def test_what_is_not_stacked_is_refused_naming_the_flag(options, flag):
    with pytest.raises(ValueError, match=flag):
        ppo_era_seeds.Args(**{"num_seeds": 2, **options}).check()
    ppo_era_seeds.Args(num_seeds=1, **{k: v for k, v in options.items() if k not in ("num_seeds", "run_dirs")}).check()
