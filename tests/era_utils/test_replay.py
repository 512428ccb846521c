"""The device replay buffer holds and returns what SB3's ReplayBuffer(handle_timeout_termination=False) does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from era_utils.replay import ReplayBatch, ReplayBuffer

OBS_SHAPE, ACTION_DIM = (3,), 2


def transitions(steps: int, n_envs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield (
            rng.normal(size=(n_envs, *OBS_SHAPE)).astype(np.float32),
            rng.normal(size=(n_envs, *OBS_SHAPE)).astype(np.float32),
            rng.uniform(-1, 1, size=(n_envs, ACTION_DIM)).astype(np.float32),
            rng.normal(size=n_envs).astype(np.float32),
            rng.random(n_envs) < 0.2,  # terminations
            rng.random(n_envs) < 0.2,  # truncations: stored as not done
        )


def filled_pair(buffer_size: int, n_envs: int, steps: int):
    from gymnasium import spaces

    sb3_buffers = pytest.importorskip("stable_baselines3.common.buffers")
    obs_space = spaces.Box(-np.inf, np.inf, OBS_SHAPE, np.float32)
    action_space = spaces.Box(-1, 1, (ACTION_DIM,), np.float32)
    sb3 = sb3_buffers.ReplayBuffer(
        buffer_size, obs_space, action_space, device="cpu", n_envs=n_envs, handle_timeout_termination=False
    )
    ours = ReplayBuffer(buffer_size, OBS_SHAPE, ACTION_DIM, n_envs=n_envs)
    for obs, next_obs, actions, rewards, terminated, truncated in transitions(steps, n_envs):
        infos = [{"TimeLimit.truncated": bool(t)} for t in truncated]
        sb3.add(obs, next_obs, actions, rewards, terminated, infos)
        ours.add(obs, next_obs, actions, rewards, terminated)
    return sb3, ours


@pytest.mark.parametrize(("buffer_size", "n_envs", "steps"), [(50, 1, 30), (50, 1, 137), (40, 4, 23)])
def test_same_contents_and_rows_as_sb3(buffer_size, n_envs, steps):
    sb3, ours = filled_pair(buffer_size, n_envs, steps)
    assert (ours.pos, ours.full) == (sb3.pos, sb3.full)
    assert len(ours) == sb3.size() * n_envs
    np.testing.assert_array_equal(ours.observations.numpy(), sb3.observations)
    np.testing.assert_array_equal(ours.next_observations.numpy(), sb3.next_observations)
    np.testing.assert_array_equal(ours.actions.numpy(), sb3.actions)
    np.testing.assert_array_equal(ours.rewards.numpy(), sb3.rewards)
    np.testing.assert_array_equal(ours.dones.numpy(), sb3.dones)

    upper = sb3.buffer_size if sb3.full else sb3.pos
    slot_indices = np.random.default_rng(1).integers(0, upper, size=64)
    np.random.seed(2)  # noqa: NPY002 - SB3 draws the env indices from NumPy's global generator
    expected = sb3._get_samples(slot_indices)
    np.random.seed(2)  # noqa: NPY002
    env_indices = np.random.randint(0, high=n_envs, size=(len(slot_indices),))  # noqa: NPY002 - SB3's draw
    batch = ours.get(torch.as_tensor(slot_indices), torch.as_tensor(env_indices))
    for field in ReplayBatch._fields:
        np.testing.assert_array_equal(getattr(batch, field).numpy(), getattr(expected, field).numpy(), err_msg=field)


def test_truncations_are_stored_as_not_done():
    ours = ReplayBuffer(10, OBS_SHAPE, ACTION_DIM, n_envs=2)
    obs = np.zeros((2, *OBS_SHAPE), np.float32)
    ours.add(obs, obs + 1, np.zeros((2, ACTION_DIM)), np.array([1.0, 2.0]), np.array([True, False]))
    batch = ours.get(torch.tensor([0, 0]), torch.tensor([0, 1]))
    assert batch.dones[:, 0].tolist() == [1.0, 0.0]
    assert batch.rewards.shape == batch.dones.shape == (2, 1)
    torch.testing.assert_close(batch.next_observations, torch.ones(2, *OBS_SHAPE))


def test_sample_draws_only_filled_rows_on_the_buffer_device():
    ours = ReplayBuffer(100, OBS_SHAPE, ACTION_DIM)
    for step in range(7):
        ours.add(np.full((1, *OBS_SHAPE), step), np.zeros((1, *OBS_SHAPE)), np.zeros((1, 2)), [0.0], [False])
    batch = ours.sample(500)
    assert batch.observations.device == ours.device and batch.observations.shape == (500, *OBS_SHAPE)
    assert set(batch.observations[:, 0].tolist()) == set(range(7))  # every filled slot, nothing else


def test_state_dict_round_trip_continues_where_it_stopped():
    _, ours = filled_pair(20, 2, 13)
    restored = ReplayBuffer(20, OBS_SHAPE, ACTION_DIM, n_envs=2)
    restored.load_state_dict(ours.state_dict())
    assert (restored.pos, restored.full, len(restored)) == (ours.pos, ours.full, len(ours))
    for name in ("observations", "next_observations", "actions", "rewards", "dones"):
        torch.testing.assert_close(getattr(restored, name), getattr(ours, name))
    with pytest.raises(ValueError, match="has 10 slots x 2 envs, this one 20 x 2"):
        ReplayBuffer(40, OBS_SHAPE, ACTION_DIM, n_envs=2).load_state_dict(ours.state_dict())


def test_bad_arguments_and_empty_buffer():
    with pytest.raises(ValueError, match="buffer_size"):
        ReplayBuffer(0, OBS_SHAPE, ACTION_DIM)
    with pytest.raises(ValueError, match="n_envs"):
        ReplayBuffer(10, OBS_SHAPE, ACTION_DIM, n_envs=0)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(10, OBS_SHAPE, ACTION_DIM).sample(4)
