"""The units of training code the overhead benchmark counts: one update and one acting step (batch 1) of each agent
and of each SB3 algorithm, ERA and its twin.

This module is the benchmarks' one in-process coupling to the agents' internals (everything else runs them by their
command lines). It relies on ``agents/sac_era.py``: ``Args``, ``build_agent(args, obs_dim, action_dim, device)``,
``make_update(agent, args)`` and acting as ``actor(obs)[0].sample()``; on ``agents/ppo_era.py``:
``Args``, ``Agent(obs_dim, low, high, args)`` with ``action_distribution``, ``get_value``, ``env_action``,
``ppo_loss`` and ``make_update(agent, args, optimizer, loss_fn=...)``; and on ``benchmarks/sb3_agent.py``'s
``Args`` and ``build_model``.

Every unit is built as ``unit(compile_fn) -> call``: ``compile_fn`` is applied to exactly what the agent's
``--compile`` compiles (SAC: the whole update; PPO: the minibatch loss), or to the acting step / SB3's ``train``, and
``call()`` runs the unit once on fixed inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from benchmarks import sb3_agent
from benchmarks.agent_scripts import load_agent
from era_utils.replay import ReplayBatch

__all__ = ["FAMILIES", "Mode", "Sizes", "Unit", "random_batch", "sac_update", "units"]

Mode = Literal["eager", "compile", "cudagraphs"]
CompileFn = Callable[[Callable], Callable]
Unit = Callable[[CompileFn], Callable[[], Any]]


@dataclass(frozen=True)
class Sizes:
    """Observation and action sizes, the networks' widths and batch sizes (SAC and PPO apart, as the agents), and
    the SAC networks' activation and critic LayerNorm (``agents/sac_era.py``'s ``--activation``,
    ``--critic-layer-norm``)."""

    obs_dim: int
    action_dim: int
    sac_hidden_dim: int = 256
    sac_batch_size: int = 256
    sac_activation: Literal["elu", "relu"] = "elu"
    sac_critic_layer_norm: bool = True
    ppo_hidden_dim: int = 64
    ppo_minibatch_size: int = 64


def random_batch(obs_dim: int, action_dim: int, batch_size: int, device: torch.device, seed: int) -> ReplayBatch:
    """A fixed replay batch: Gaussian observations and rewards, actions in [-1, 1], no terminations."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    return ReplayBatch(
        observations=normal(batch_size, obs_dim),
        actions=torch.rand(batch_size, action_dim, generator=generator).to(device) * 2 - 1,
        next_observations=normal(batch_size, obs_dim),
        rewards=normal(batch_size, 1),
        dones=torch.zeros(batch_size, 1, device=device),
    )


def _observation(sizes: Sizes, device: torch.device) -> torch.Tensor:
    return torch.randn(1, sizes.obs_dim, generator=torch.Generator().manual_seed(1)).to(device)


# ------------------------------------------------------------------------------------------------------- agents
def sac_update(
    era: bool, sizes: Sizes, device: torch.device, mode: Mode, seed: int = 0
) -> tuple[Callable[[ReplayBatch], dict[str, torch.Tensor]], nn.Module]:
    """``agents/sac_era.py``'s own update (``make_update(build_agent(...))``, compiled or captured as ``mode`` says:
    the agent's ``--compile`` / ``--cudagraphs``) for ERA or its ``--no-era`` twin, and the actor it trains."""
    sac_era = load_agent("sac_era")
    torch.manual_seed(seed)
    args = sac_era.Args(
        era=era,
        hidden_dim=sizes.sac_hidden_dim,
        batch_size=sizes.sac_batch_size,
        activation=sizes.sac_activation,
        critic_layer_norm=sizes.sac_critic_layer_norm,
        compile=mode == "compile",
        cudagraphs=mode == "cudagraphs",
        cuda=device.type == "cuda",
    )
    agent = sac_era.build_agent(args, sizes.obs_dim, sizes.action_dim, device)
    return sac_era.make_update(agent, args), agent.actor


def sac_agent_units(era: bool, sizes: Sizes, device: torch.device) -> dict[str, Unit]:
    """``agents/sac_era.py``: the update of ``make_update`` (counted whole; the agent's ``--compile`` compiles its two
    losses) and one acting step."""

    def update(compile_fn: CompileFn) -> Callable[[], Any]:
        step = compile_fn(sac_update(era, sizes, device, "eager")[0])
        batch = random_batch(sizes.obs_dim, sizes.action_dim, sizes.sac_batch_size, device, seed=0)
        return lambda: step(batch)

    def act(compile_fn: CompileFn) -> Callable[[], Any]:
        actor = sac_update(era, sizes, device, "eager")[1].eval()

        @torch.no_grad()
        def step(obs: torch.Tensor) -> torch.Tensor:
            return actor(obs)[0].sample()

        return functools.partial(compile_fn(step), _observation(sizes, device))

    return {"update": update, "act": act}


def ppo_agent_units(era: bool, sizes: Sizes, device: torch.device) -> dict[str, Unit]:
    """``agents/ppo_era.py``: one minibatch step (its ``make_update`` around ``ppo_loss``, which ``--compile``
    compiles: loss, backward, gradient clipping, Adam) and one rollout step (sample, log-prob, value, env action)."""
    ppo_era = load_agent("ppo_era")
    args = ppo_era.Args(era=era, hidden_dim=sizes.ppo_hidden_dim, cuda=device.type == "cuda")
    low, high = -np.ones(sizes.action_dim, np.float32), np.ones(sizes.action_dim, np.float32)

    def build() -> nn.Module:
        torch.manual_seed(0)
        return ppo_era.Agent(sizes.obs_dim, low, high, args).to(device)

    def update(compile_fn: CompileFn) -> Callable[[], Any]:
        agent = build()
        optimizer, delta_optimizer = ppo_era.make_optimizers(agent, args, device)
        step = ppo_era.make_update(agent, args, optimizer, delta_optimizer, loss_fn=compile_fn(ppo_era.ppo_loss))
        batch = random_batch(sizes.obs_dim, sizes.action_dim, sizes.ppo_minibatch_size, device, seed=0)
        minibatch = (batch.observations, batch.actions.clamp(-0.99, 0.99), torch.zeros_like(batch.rewards[:, 0]),
                     batch.rewards[:, 0], batch.rewards[:, 0], torch.zeros_like(batch.rewards[:, 0]))  # fmt: skip
        return functools.partial(step, *minibatch)

    def act(compile_fn: CompileFn) -> Callable[[], Any]:
        agent = build().eval()

        def step(obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            action, log_prob, value = agent.act(obs)
            return agent.env_action(action), log_prob, value

        return functools.partial(compile_fn(step), _observation(sizes, device))

    return {"update": update, "act": act}


# ---------------------------------------------------------------------------------------------------------- SB3
class RandomBoxEnv(gym.Env):
    """Gaussian observations, 100-step episodes: just enough environment for SB3 to build and fill its buffers."""

    def __init__(self, obs_dim: int, action_dim: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._steps = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._steps += 1
        return self._obs(), float(self.np_random.normal()), False, self._steps >= 100, {}

    def _obs(self) -> np.ndarray:
        return self.np_random.normal(size=self.observation_space.shape).astype(np.float32)


def sb3_units(algo: str, era: bool, sizes: Sizes, device: torch.device) -> dict[str, Unit]:
    """SB3 ``SAC``/``PPO`` (``MlpPolicy`` or the ERA policy) built by ``sb3_agent.build_model`` with the agents'
    sizes: one ``train`` call that takes one gradient step, and one acting step of the policy (batch 1)."""
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv

    if algo == "sac":
        hidden, batch = sizes.sac_hidden_dim, sizes.sac_batch_size
        options = dict(activation="elu", learning_starts=batch, batch_size=batch)
    else:  # one rollout of one minibatch, one epoch: train() takes exactly one gradient step
        hidden, batch = sizes.ppo_hidden_dim, sizes.ppo_minibatch_size
        options = dict(activation="tanh", n_steps=batch, batch_size=batch, n_epochs=1)
    args = sb3_agent.Args(algo=algo, policy="era" if era else "stock", net_arch=(hidden, hidden), seed=0,
                          cuda=device.type == "cuda", **options)  # fmt: skip

    def build() -> Any:
        env = DummyVecEnv([lambda: RandomBoxEnv(sizes.obs_dim, sizes.action_dim)])
        model = sb3_agent.build_model(args, env, device.type)
        model.set_logger(configure(None, []))
        model.learn(batch + 1)  # fills the replay buffer (SAC) or one rollout (PPO)
        return model

    def update(compile_fn: CompileFn) -> Callable[[], Any]:
        model = build()
        train = compile_fn(model.train)
        return (lambda: train(gradient_steps=1, batch_size=batch)) if algo == "sac" else train

    def act(compile_fn: CompileFn) -> Callable[[], Any]:
        policy = build().policy
        policy.set_training_mode(False)

        @torch.no_grad()
        def step(obs: torch.Tensor) -> Any:
            return policy._predict(obs, deterministic=False) if algo == "sac" else policy(obs)

        return functools.partial(compile_fn(step), _observation(sizes, device))

    return {"update": update, "act": act}


FAMILIES = ("agents/sac_era.py", "agents/ppo_era.py", "SB3 SAC", "SB3 PPO")
"""What the overhead benchmark compares, each as ERA against its twin (``--no-era``; stock SB3)."""


def units(family: str, era: bool, sizes: Sizes, device: torch.device) -> dict[str, Unit]:
    """The ``update`` and ``act`` units of one of :data:`FAMILIES`, with ERA or its twin."""
    if family == "agents/sac_era.py":
        return sac_agent_units(era, sizes, device)
    if family == "agents/ppo_era.py":
        return ppo_agent_units(era, sizes, device)
    if family in ("SB3 SAC", "SB3 PPO"):
        return sb3_units(family[4:].lower(), era, sizes, device)
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
