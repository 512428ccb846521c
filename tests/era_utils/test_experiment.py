"""Run bookkeeping: CSV/TensorBoard outputs, observation statistics, checkpoints."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("stable_baselines3")

from era_utils.experiment import (
    ObservationNormalizer,
    RunLogger,
    evaluate,
    load_checkpoint,
    save_checkpoint,
)


@dataclasses.dataclass
class _Args:
    seed: int = 7
    env_id: str = "Pendulum-v1"


def test_run_logger_writes_csvs_and_config(tmp_path):
    logger = RunLogger(_Args(), str(tmp_path), "run")
    logger.episode(100, -5.0, 200)
    logger.evaluation(200, np.array([1.0, 3.0]))
    logger.close()
    episodes = pd.read_csv(tmp_path / "run" / "episodes.csv")
    evaluations = pd.read_csv(tmp_path / "run" / "evaluations.csv")
    assert episodes.to_dict("records") == [{"global_step": 100, "episodic_return": -5.0, "episodic_length": 200}]
    assert evaluations.to_dict("records") == [
        {"global_step": 200, "mean_return": 2.0, "std_return": 1.0, "num_episodes": 2}
    ]
    assert '"seed": 7' in (tmp_path / "run" / "config.json").read_text()


def test_observation_normalizer_statistics_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    normalizer = ObservationNormalizer((3,), clip=5.0)
    data = rng.normal(loc=[1.0, -2.0, 10.0], scale=[0.5, 3.0, 0.1], size=(5000, 3))
    for chunk in np.array_split(data, 7):
        normalizer.update(chunk)
    np.testing.assert_allclose(normalizer.rms.mean, data.mean(0), rtol=1e-6)
    # RunningMeanStd starts from a prior (mean 0, var 1) of weight 1e-4: off by ~1e-4 * mean^2 / n.
    np.testing.assert_allclose(normalizer.rms.var, data.var(0), rtol=1e-4, atol=1e-5)
    normalized = normalizer(data)
    assert normalized.dtype == np.float32 and np.abs(normalized).max() <= 5.0
    np.testing.assert_allclose(normalized.mean(0), 0.0, atol=1e-2)
    normalizer.save(tmp_path / "norm.npz")
    loaded = ObservationNormalizer.load(tmp_path / "norm.npz")
    np.testing.assert_array_equal(loaded(data[:10]), normalizer(data[:10]))


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    from era_policies.sb3 import ERASACPolicy

    env = gym.make("Pendulum-v1")
    policy = ERASACPolicy(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=[16], delta=0.1)
    normalizer = ObservationNormalizer((3,))
    normalizer.update(np.random.default_rng(1).normal(size=(50, 3)))
    save_checkpoint(tmp_path, policy, "Pendulum-v1", 123, normalizer)
    loaded, loaded_normalizer, meta = load_checkpoint(tmp_path, device="cpu")
    assert meta == {
        "policy_class": "era_policies.sb3.policies.ERASACPolicy",
        "env_id": "Pendulum-v1",
        "global_step": 123,
        "obs_normalizer": "obs_normalizer.npz",
    }
    obs = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    expected, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    assert loaded.era_config.delta == 0.1
    np.testing.assert_array_equal(loaded_normalizer(obs), normalizer(obs))
    returns = evaluate(loaded, "Pendulum-v1", num_episodes=2, seed=0, obs_normalizer=loaded_normalizer)
    assert returns.shape == (2,) and np.all(returns < 0)
    with pytest.raises(FileNotFoundError, match="--save-model"):
        load_checkpoint(tmp_path / "nothing")
