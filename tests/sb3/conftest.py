"""Fixtures for the Stable-Baselines3 integration tests (skipped without the sb3 extra)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("stable_baselines3", reason='needs pip install "era-policies[sb3]"')
pytest.importorskip("sb3_contrib", reason='needs pip install "era-policies[sb3]"')


def small_net() -> dict:
    """Fresh policy kwargs each call: SB3 writes into the dict it is given (e.g. use_sde)."""
    return {"net_arch": [32, 32]}


class BoxActionEnv(gym.Env):
    """A tiny continuous-control task with arbitrary Box bounds: reward for matching a target inside the box.

    Observations are random, so the best policy is the constant action ``target`` (return 0); a policy acting
    uniformly at random scores ``-episode_length * sum((high - low)^2 / 12)`` for the midpoint target. They come from
    the env's own generator, seeded by ``seed`` until a ``reset(seed=...)``, so that runs are reproducible even where
    SB3 resets the env without a seed (``evaluate_policy`` on a fresh wrapper).
    """

    def __init__(
        self,
        low: list[float],
        high: list[float],
        episode_length: int = 20,
        target: list[float] | None = None,
        seed: int = 0,
    ) -> None:
        self.action_space = spaces.Box(np.array(low, dtype=np.float32), np.array(high, dtype=np.float32))
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self.episode_length = episode_length
        midpoint = 0.5 * (self.action_space.low + self.action_space.high)
        self.target = midpoint if target is None else np.array(target, dtype=np.float32)
        self._t = 0
        self.np_random, _ = gym.utils.seeding.np_random(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._observation(), {}

    def _observation(self) -> np.ndarray:
        return self.np_random.uniform(-1.0, 1.0, size=self.observation_space.shape).astype(np.float32)

    def step(self, action: np.ndarray):
        assert self.action_space.contains(action.astype(np.float32)), f"action {action} outside {self.action_space}"
        self._t += 1
        reward = -float(np.sum((action - self.target) ** 2))
        return self._observation(), reward, False, self._t >= self.episode_length, {}


def three_dim_env(**kwargs) -> gym.Env:
    """Three action dimensions with different bounds: ERA's softmax then really shares the entropy budget."""
    from stable_baselines3.common.monitor import Monitor

    return Monitor(BoxActionEnv([-1.0, 0.0, -2.0], [1.0, 0.5, 2.0], **kwargs))


@pytest.fixture
def pendulum() -> gym.Env:
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gym.make("Pendulum-v1"))  # evaluate_policy reads episode returns from the Monitor
    env.reset(seed=0)  # seeds the env's generator: evaluate_policy's resets before learn() pass no seed
    return env
