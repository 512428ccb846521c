"""Tests for era_utils.envs and era_utils.humanoid_bench.

Pendulum-v1 (no optional dependency) covers the wrappers and the vector env; MuJoCo, dm_control and HumanoidBench
tests skip when their package is missing.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from era_policies.spaces import check_continuous_action_space
from era_utils import dependencies as dependencies_module
from era_utils.dependencies import MissingDependencyError
from era_utils.envs import (
    ActionRepeat,
    FiniteCheck,
    NoEarlyTermination,
    NonFiniteError,
    _check_video_dependency,
    check_env_id,
    env_family,
    episode_returns,
    make_env,
    make_vector_env,
)
from era_utils.humanoid_bench import drop_missing_fields, jax_stub

PENDULUM_STEPS = 200  # Pendulum-v1's time limit

requires_humanoid_bench = pytest.mark.skipif(
    importlib.util.find_spec("humanoid_bench") is None, reason="HumanoidBench is not installed"
)


class CountdownEnv(gym.Env):
    """Terminates after ``length`` steps; the reward of step ``t`` (1-based) is ``t``; the observation counts steps."""

    observation_space = gym.spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self, length: int) -> None:
        self.length = length
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return np.full(1, self.t, dtype=np.float32), float(self.t), self.t >= self.length, False, {}


def wrapper_types(env: gym.Env) -> list[type]:
    types = []
    while isinstance(env, gym.Wrapper):
        types.append(type(env))
        env = env.env
    return types


@pytest.mark.parametrize(
    ("env_id", "family"),
    [
        ("Pendulum-v1", "gymnasium"),
        ("HalfCheetah-v5", "gymnasium"),
        ("Humanoid-v5", "gymnasium"),
        ("dm_control/humanoid-run-v0", "dm_control"),
        ("dm_control/cheetah-run-v0", "dm_control"),
        ("h1hand-walk-v0", "humanoid_bench"),
        ("h1-walk-v0", "humanoid_bench"),
        ("g1-sit_simple-v0", "humanoid_bench"),
    ],
)
def test_env_family(env_id: str, family: str) -> None:
    assert env_family(env_id) == family


def test_check_continuous_action_space_accepts_bounded_box() -> None:
    space = gym.spaces.Box(-2.0, 3.0, shape=(4,), dtype=np.float32)
    assert check_continuous_action_space(space) is space


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (gym.spaces.Discrete(3), "continuous"),
        (gym.spaces.MultiDiscrete([2, 3]), "continuous"),
        (gym.spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32), "1-D"),
        (gym.spaces.Box(-np.inf, 1.0, shape=(2,), dtype=np.float32), "finite"),
        (gym.spaces.Box(-1, 1, shape=(2,), dtype=np.int64), "floating"),
    ],
)
def test_check_continuous_action_space_rejects(space: gym.Space, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_continuous_action_space(space)


def test_make_env_rejects_discrete_actions() -> None:
    with pytest.raises(ValueError, match="continuous"):
        make_env("CartPole-v1", seed=0)()


def test_make_env_defaults_for_gymnasium() -> None:
    env = make_env("Pendulum-v1", seed=0)()
    types = wrapper_types(env)
    assert types[0] is gym.wrappers.RecordEpisodeStatistics  # outermost
    assert ActionRepeat not in types and NoEarlyTermination not in types
    assert env.render_mode is None
    assert env.observation_space.dtype == np.float32 and env.observation_space.shape == (3,)


def test_seeding_is_deterministic() -> None:
    first = [make_env("Pendulum-v1", seed=7)() for _ in range(2)]
    other = make_env("Pendulum-v1", seed=8)()
    obs = [env.reset()[0] for env in first]
    np.testing.assert_array_equal(obs[0], obs[1])
    assert not np.array_equal(obs[0], other.reset()[0])
    np.testing.assert_array_equal(first[0].action_space.sample(), first[1].action_space.sample())
    # An explicit seed overrides the default one.
    np.testing.assert_array_equal(other.reset(seed=7)[0], obs[0])


def test_vector_env_same_step_autoreset_and_episode_returns() -> None:
    seed, num_envs = 5, 2
    envs = make_vector_env("Pendulum-v1", num_envs=num_envs, seed=seed)
    refs = [make_env("Pendulum-v1", seed=seed + i)() for i in range(num_envs)]
    obs, _ = envs.reset()
    np.testing.assert_array_equal(obs, np.stack([ref.reset()[0] for ref in refs]))
    assert obs.dtype == np.float32 and obs.shape == (num_envs, 3)

    rng = np.random.default_rng(0)
    ref_returns = np.zeros(num_envs)
    for t in range(1, PENDULUM_STEPS + 1):
        actions = rng.uniform(-2.0, 2.0, size=(num_envs, 1)).astype(np.float32)
        obs, rewards, terminations, truncations, infos = envs.step(actions)
        ref_steps = [ref.step(action) for ref, action in zip(refs, actions, strict=True)]
        np.testing.assert_allclose(rewards, [step[1] for step in ref_steps])
        ref_returns += rewards
        if t < PENDULUM_STEPS:
            assert not truncations.any() and "final_obs" not in infos
            assert episode_returns(infos) == []

    assert truncations.all() and not terminations.any()
    assert infos["_final_obs"].all()
    for i in range(num_envs):
        # final_obs is the true last observation; obs already starts the next episode.
        np.testing.assert_array_equal(infos["final_obs"][i], ref_steps[i][0])
    np.testing.assert_array_equal(obs, np.stack([ref.reset()[0] for ref in refs]))

    finished = episode_returns(infos)
    assert [length for _, length in finished] == [PENDULUM_STEPS] * num_envs
    np.testing.assert_allclose([ret for ret, _ in finished], ref_returns)

    # The next step starts counting again: nothing is reported twice.
    _, _, _, _, infos = envs.step(np.zeros((num_envs, 1), dtype=np.float32))
    assert episode_returns(infos) == []


def test_vector_env_explicit_reset_seed_matches_default() -> None:
    envs = make_vector_env("Pendulum-v1", num_envs=3, seed=11)
    other = make_vector_env("Pendulum-v1", num_envs=3, seed=11)
    np.testing.assert_array_equal(envs.reset()[0], other.reset(seed=11)[0])


def test_episode_returns_other_layouts() -> None:
    next_step = {"episode": {"r": np.array([0.0, 2.5, -1.0]), "l": np.array([0, 7, 3])}, "_episode": [0, 1, 1]}
    assert episode_returns(next_step) == [(2.5, 7), (-1.0, 3)]
    single = {"episode": {"r": 4.0, "l": 9, "t": 0.1}}
    assert episode_returns(single) == [(4.0, 9)]
    assert episode_returns({}) == []


def test_action_repeat_sums_rewards_and_halves_episode_length() -> None:
    repeated = make_env("Pendulum-v1", seed=3, action_repeat=2)()
    reference = make_env("Pendulum-v1", seed=3)()
    np.testing.assert_array_equal(repeated.reset()[0], reference.reset()[0])
    rng = np.random.default_rng(1)
    agent_steps, done = 0, False
    while not done:
        action = rng.uniform(-2.0, 2.0, size=1).astype(np.float32)
        obs, reward, terminated, truncated, info = repeated.step(action)
        ref_obs, ref_reward_1, *_ = reference.step(action)
        ref_obs, ref_reward_2, _, _, ref_info = reference.step(action)
        agent_steps += 1
        done = terminated or truncated
        assert reward == pytest.approx(ref_reward_1 + ref_reward_2)
        np.testing.assert_array_equal(obs, ref_obs)
    assert agent_steps == PENDULUM_STEPS // 2
    assert info["episode"]["l"] == PENDULUM_STEPS // 2
    assert ref_info["episode"]["l"] == PENDULUM_STEPS
    # Episode returns are sums over all simulator rewards.
    assert info["episode"]["r"] == pytest.approx(ref_info["episode"]["r"])


def test_action_repeat_stops_when_inner_env_ends() -> None:
    env = ActionRepeat(CountdownEnv(length=5), repeat=3)
    env.reset()
    obs, reward, terminated, _, _ = env.step(np.zeros(1, dtype=np.float32))
    assert (reward, terminated, obs[0]) == (1 + 2 + 3, False, 3)
    obs, reward, terminated, _, _ = env.step(np.zeros(1, dtype=np.float32))
    assert (reward, terminated, obs[0]) == (4 + 5, True, 5)  # not 4 + 5 + 6


@pytest.mark.parametrize("repeat", [0, -1, 1.5])
def test_action_repeat_rejects_bad_values(repeat: float) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        ActionRepeat(CountdownEnv(length=5), repeat=repeat)
    with pytest.raises(ValueError, match="positive integer"):
        make_env("Pendulum-v1", seed=0, action_repeat=repeat)


def test_no_early_termination_runs_to_the_time_limit() -> None:
    env = NoEarlyTermination(gym.wrappers.TimeLimit(CountdownEnv(length=3), max_episode_steps=10))
    env.reset()
    flags = []
    for _ in range(10):
        _, _, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
        assert not terminated
        flags.append(info["original_terminated"])
    assert truncated
    assert flags == [False, False] + [True] * 8


def test_no_early_termination_hopper() -> None:
    pytest.importorskip("mujoco")
    env = make_env("Hopper-v5", seed=0, early_termination=False)()
    assert NoEarlyTermination in wrapper_types(env)
    env.reset()
    steps, inner_terminated, done = 0, False, False
    while not done:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert not terminated
        inner_terminated |= info["original_terminated"]
        done = truncated
    assert steps == info["episode"]["l"] == 1000
    assert inner_terminated  # a random Hopper falls: the wrapper did suppress terminations

    default = make_env("Hopper-v5", seed=0)()
    default.reset()
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = default.step(default.action_space.sample())
        steps += 1
    assert terminated and steps < 1000


def test_dm_control_dict_observations_are_flattened() -> None:
    pytest.importorskip("dm_control")
    pytest.importorskip("shimmy")
    env = make_env("dm_control/cheetah-run-v0", seed=0)()
    assert env.observation_space == gym.spaces.Box(-np.inf, np.inf, shape=(17,), dtype=np.float32)  # 8 pos + 9 vel
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (17,)

    raw = gym.make("dm_control/cheetah-run-v0")
    assert isinstance(raw.observation_space, gym.spaces.Dict)
    raw_obs, _ = raw.reset(seed=0)
    np.testing.assert_array_equal(obs, gym.spaces.flatten(raw.observation_space, raw_obs).astype(np.float32))

    action = env.action_space.sample()
    obs, *_ = env.step(action)
    raw_obs, *_ = raw.step(action)
    np.testing.assert_array_equal(obs, gym.spaces.flatten(raw.observation_space, raw_obs).astype(np.float32))


def test_missing_mujoco_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mujoco", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "era-policies\[mujoco\]"') as excinfo:
        make_env("HalfCheetah-v5", seed=0)()
    assert isinstance(excinfo.value, ImportError)


def test_missing_dm_control_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dm_control", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "era-policies\[dmc\]"'):
        make_env("dm_control/cheetah-run-v0", seed=0)()


def test_missing_humanoid_bench_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "humanoid_bench", None)
    with pytest.raises(MissingDependencyError) as excinfo:
        make_env("h1hand-walk-v0", seed=0)()
    message = str(excinfo.value)
    assert "git clone https://github.com/carlosferrazza/humanoid-bench" in message
    assert "pip install --no-deps -e humanoid-bench" in message


def test_video_needs_moviepy_only_for_env_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setitem(sys.modules, "moviepy", None)
    with pytest.raises(MissingDependencyError, match=r"era-policies\[video\]"):
        make_env("Pendulum-v1", seed=0, idx=0, capture_video=True, video_dir=str(tmp_path))()
    env = make_env("Pendulum-v1", seed=0, idx=1, capture_video=True, video_dir=str(tmp_path))()
    assert env.render_mode is None and gym.wrappers.RecordVideo not in wrapper_types(env)


def test_video_dependency_error_names_every_missing_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setitem(sys.modules, "moviepy", None)
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(MissingDependencyError) as excinfo:
        make_env("Pendulum-v1", seed=0, capture_video=True, video_dir=str(tmp_path))()
    assert str(excinfo.value) == (
        "capture_video for Pendulum-v1 needs moviepy and pygame, which are not installed. "
        'Install: pip install "era-policies[video]"'
    )
    assert list(tmp_path.iterdir()) == []


def test_video_of_a_mujoco_env_does_not_ask_for_pygame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)
    _check_video_dependency("HalfCheetah-v5")  # MuJoCo renders through its own GL context
    monkeypatch.setitem(sys.modules, "moviepy", None)
    with pytest.raises(MissingDependencyError, match="needs moviepy, which is not installed"):
        _check_video_dependency("HalfCheetah-v5")


def test_capture_video_records_a_classic_control_episode(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """What `pip install ".[all]"` has to make work: moviepy encodes, pygame draws (headless: SDL's dummy driver)."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = make_env("Pendulum-v1", seed=0, capture_video=True, video_dir=str(tmp_path / "videos"))()
    env.reset()
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.close()
    video = tmp_path / "videos" / "Pendulum-v1-episode-0.mp4"
    assert video.is_file() and video.stat().st_size > 1000


def test_default_mujoco_gl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dependencies_module, "_mujoco_gl_defaulted", False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    dependencies_module.set_default_mujoco_gl()
    assert os.environ["MUJOCO_GL"] == "osmesa"  # a user's choice is kept

    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    dependencies_module.set_default_mujoco_gl()
    assert "MUJOCO_GL" not in os.environ  # no EGL: leave the choice to MuJoCo / dm_control

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libEGL.so.1" if name == "EGL" else None)
    dependencies_module.set_default_mujoco_gl()
    assert os.environ["MUJOCO_GL"] == "egl"


def test_jax_stub_is_temporary() -> None:
    before = {name: sys.modules.get(name) for name in ("jax", "jax.numpy")}
    with jax_stub():
        import jax.numpy as jnp

        with pytest.raises(AttributeError, match="pip install jax"):
            jnp.transpose  # noqa: B018
    assert {name: sys.modules.get(name) for name in ("jax", "jax.numpy")} == before


def test_drop_missing_fields() -> None:
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_string("<mujoco/>")
    table = {
        "mjmodel": {"body_pos": ("nbody", 3), "field_from_the_past": ("nbody",)},
        "mjdata": {"qpos": ("nq",), "another_old_field": ("nv",)},
        "mjoption": {"untouched": ()},
    }
    dropped = drop_missing_fields(table, {"mjmodel": model, "mjdata": mujoco.MjData(model)})
    assert dropped == {"mjmodel": ["field_from_the_past"], "mjdata": ["another_old_field"]}
    assert table == {"mjmodel": {"body_pos": ("nbody", 3)}, "mjdata": {"qpos": ("nq",)}, "mjoption": {"untouched": ()}}


@requires_humanoid_bench
def test_humanoid_bench_protocol() -> None:
    env = make_env("h1-walk-v0", seed=0)()
    types = wrapper_types(env)
    assert ActionRepeat in types and NoEarlyTermination in types  # the paper's protocol by default
    assert env.observation_space.shape == (51,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, shape=(19,), dtype=np.float32)
    assert env.render_mode is None
    first_obs, _ = env.reset()
    np.testing.assert_array_equal(first_obs, make_env("h1-walk-v0", seed=0)().reset()[0])

    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += reward
        steps += 1
        assert not terminated
        done = truncated
    assert steps == info["episode"]["l"] == 500  # 1000 simulator steps with action repeat 2
    assert info["episode"]["r"] == pytest.approx(total)

    # jax was only stubbed during the import.
    if importlib.util.find_spec("jax") is None:
        assert "jax" not in sys.modules


@requires_humanoid_bench
def test_humanoid_bench_h1hand_shapes() -> None:
    env = make_env("h1hand-walk-v0", seed=0)()
    obs, _ = env.reset()
    assert obs.shape == (151,) and obs.dtype == np.float32
    assert env.action_space.shape == (61,)
    obs, reward, *_ = env.step(env.action_space.sample())
    assert obs.shape == (151,) and np.isfinite(obs).all() and np.isfinite(reward)


# ------------------------------------------------------------------------------------- non-finite values, env ids


class BrokenEnv(CountdownEnv):
    """A CountdownEnv whose step ``broken_at`` returns NaN (or inf) in one field."""

    def __init__(self, render_mode: str | None = None, broken_at: int = 3) -> None:
        super().__init__(length=10)
        self.broken_at, self.field, self.value = broken_at, "observation", np.nan

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        if self.t == self.broken_at:
            if self.field == "observation":
                obs[0] = self.value
            else:
                reward = self.value
        return obs, reward, terminated, truncated, info


gym.register("era_utils_test/Broken-v0", entry_point=BrokenEnv, max_episode_steps=50)


@pytest.mark.filterwarnings("ignore:.*(NaN|infinity):UserWarning")  # Gymnasium's env checker warns first
@pytest.mark.parametrize(("field", "value"), [("observation", np.nan), ("reward", np.inf), ("reward", np.nan)])
def test_a_non_finite_observation_or_reward_stops_at_its_step_naming_env_and_field(field: str, value: float) -> None:
    envs = make_vector_env("era_utils_test/Broken-v0", num_envs=2, seed=0)
    envs.reset()
    actions = np.zeros((2, 1), dtype=np.float32)
    envs.step(actions), envs.step(actions)
    for env in envs.envs:
        env.unwrapped.field, env.unwrapped.value = field, value
    with pytest.raises(NonFiniteError, match=rf"era_utils_test/Broken-v0 \(env 0\) returned a non-finite {field} at "
                       rf"step 3 \(step 3 of its episode\): .*{value}") as excinfo:  # fmt: skip
        envs.step(actions)
    assert ("[0] = nan" in str(excinfo.value)) == (field == "observation")
    assert FiniteCheck in wrapper_types(make_env("Pendulum-v1", seed=0)())


@pytest.mark.parametrize("value", [np.nan, -np.inf])
def test_a_non_finite_action_stops_before_the_env_steps_naming_env_and_step(value: float) -> None:
    env = make_env("era_utils_test/Broken-v0", seed=0)()
    env.reset()
    env.step(np.zeros(1, dtype=np.float32))
    steps_before = env.unwrapped.t
    with pytest.raises(NonFiniteError, match=rf"era_utils_test/Broken-v0 \(env 0\) was given a non-finite action at "
                       rf"step 2 \(step 2 of its episode\): \[0\] = {value}") as excinfo:  # fmt: skip
        env.step(np.array([value], dtype=np.float32))
    assert env.unwrapped.t == steps_before  # the env never saw it
    assert "policy's output is broken" in str(excinfo.value)


def test_a_finite_env_passes_the_check_unchanged() -> None:
    checked, plain = make_env("Pendulum-v1", seed=3)(), gym.make("Pendulum-v1")
    obs, _ = checked.reset(seed=3)
    np.testing.assert_array_equal(obs, plain.reset(seed=3)[0])
    for _ in range(5):
        obs, reward, *_ = checked.step(np.array([0.5], dtype=np.float32))
        plain_obs, plain_reward, *_ = plain.step(np.array([0.5], dtype=np.float32))
        np.testing.assert_allclose(obs, plain_obs, rtol=1e-6)
        assert reward == plain_reward


def test_check_env_id_names_the_flag() -> None:
    check_env_id("Pendulum-v1")
    with pytest.raises(ValueError, match=r"--env-id 'Pendulum-v9' is not a registered environment"):
        check_env_id("Pendulum-v9")
    with pytest.raises(ValueError, match=r"^--eval-env 'nope-v0'"):
        check_env_id("nope-v0", flag="--eval-env")
