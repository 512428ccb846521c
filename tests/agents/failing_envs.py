"""A many-seed agent's environments where one seed's fail: what the seeds scripts' failure tests share."""

from __future__ import annotations

from types import ModuleType

import gymnasium as gym
import pytest


def fail_seed_after(agent: ModuleType, monkeypatch: pytest.MonkeyPatch, seed: int, steps: int) -> None:
    """Make ``agent.make_vector_env`` build, for ``seed``, envs whose ``step`` raises
    ``RuntimeError("simulator diverged")`` after ``steps`` steps (the other seeds' envs are unchanged)."""
    make_vector_env = agent.make_vector_env

    class FailingVector(gym.vector.VectorWrapper):
        calls = 0

        def step(self, actions):
            if self.calls >= steps:
                raise RuntimeError("simulator diverged")
            self.calls += 1
            return self.env.step(actions)

    def failing_for_seed(env_id, num_envs, env_seed, *rest):
        envs = make_vector_env(env_id, num_envs, env_seed, *rest)
        return FailingVector(envs) if env_seed == seed else envs

    monkeypatch.setattr(agent, "make_vector_env", failing_for_seed)
