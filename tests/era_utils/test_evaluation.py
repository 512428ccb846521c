"""Evaluation, observation statistics, and the policy files that agents/evaluate.py reloads (era_utils.evaluation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.running_mean_std import RunningMeanStd as SB3RunningMeanStd

from era_policies.sb3 import ERASACPolicy
from era_utils.checkpoints import CheckpointError
from era_utils.envs import NonFiniteError
from era_utils.evaluation import ObservationNormalizer, RunningMeanStd, evaluate, load_policy, save_policy

REPO = Path(__file__).resolve().parents[2]


def pendulum_policy() -> ERASACPolicy:
    env = gym.make("Pendulum-v1")
    return ERASACPolicy(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=[16])


def fitted_normalizer(shape: tuple[int, ...] = (3,)) -> ObservationNormalizer:
    normalizer = ObservationNormalizer(shape)
    normalizer.update(np.random.default_rng(1).normal(loc=2.0, size=(50, *shape)))
    return normalizer


@pytest.mark.parametrize(
    ("shape", "dtype"), [((3,), np.float32), ((), np.float64)], ids=["observations", "discounted-returns"]
)
def test_running_mean_std_is_sb3s_bit_for_bit(shape: tuple[int, ...], dtype: type) -> None:
    """One row per update (one environment) takes a shortcut past NumPy's reductions; batches of several rows take
    SB3's own update. Both leave exactly SB3's statistics, across scales and an outlier."""
    rng = np.random.default_rng(0)
    ours, sb3s = RunningMeanStd(shape=shape), SB3RunningMeanStd(shape=shape)
    batches = [rng.normal(loc=3.0, scale=scale, size=(rows, *shape)).astype(dtype)
               for scale, rows in ((1e-3, 1), (1.0, 1), (1e4, 1), (1.0, 4), (5.0, 1))
               for _ in range(20)]  # fmt: skip
    for batch in batches:
        ours.update(batch)
        sb3s.update(batch)
        np.testing.assert_array_equal(ours.mean, sb3s.mean)
        np.testing.assert_array_equal(ours.var, sb3s.var)
        assert ours.count == sb3s.count
    assert ours.mean.dtype == sb3s.mean.dtype == np.float64 and ours.var.shape == shape


def test_observation_normalizer_statistics() -> None:
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


def test_observation_normalizer_state_dict_and_file_round_trip(tmp_path: Path) -> None:
    normalizer = fitted_normalizer()
    obs = np.random.default_rng(2).normal(size=(8, 3))
    restored = ObservationNormalizer((3,))
    restored.load_state_dict(normalizer.state_dict())
    np.testing.assert_array_equal(restored(obs), normalizer(obs))
    normalizer.save(tmp_path / "norm.npz")
    np.testing.assert_array_equal(ObservationNormalizer.load(tmp_path / "norm.npz")(obs), normalizer(obs))


def test_observation_normalizer_refuses_statistics_of_another_shape() -> None:
    with pytest.raises(ValueError, match=r"shape \(4,\) do not fit observations of shape \(3,\)"):
        ObservationNormalizer((3,)).load_state_dict(fitted_normalizer((4,)).state_dict())


def test_policy_round_trip_acts_and_evaluates_identically(tmp_path: Path) -> None:
    policy, normalizer = pendulum_policy(), fitted_normalizer()
    path = save_policy(tmp_path, policy, "Pendulum-v1", 123, normalizer)
    assert path == tmp_path / "policy.pt"
    assert isinstance(ERASACPolicy.load(str(path)), ERASACPolicy)  # an ordinary SB3 policy file
    loaded, loaded_normalizer, meta = load_policy(tmp_path, device="cpu")
    assert meta == {
        "policy_class": "era_policies.sb3.policies.ERASACPolicy",
        "env_id": "Pendulum-v1",
        "global_step": 123,
        "obs_normalizer": "obs_normalizer.npz",
    }
    obs = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    expected_actions, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected_actions)
    expected = evaluate(policy, "Pendulum-v1", num_episodes=2, seed=0, obs_normalizer=normalizer)
    returns = evaluate(loaded, "Pendulum-v1", num_episodes=2, seed=0, obs_normalizer=loaded_normalizer)
    assert returns.shape == (2,)
    np.testing.assert_array_equal(returns, expected)
    assert not (tmp_path / "policy.pt.tmp").exists()


def test_evaluate_runs_a_plain_function_and_distinguishes_actions() -> None:
    push = evaluate(lambda obs: np.array([2.0], dtype=np.float32), "Pendulum-v1", num_episodes=1, seed=0)
    idle = evaluate(lambda obs: np.array([0.0], dtype=np.float32), "Pendulum-v1", num_episodes=1, seed=0)
    assert push.shape == idle.shape == (1,)
    assert push[0] != idle[0]


@pytest.mark.parametrize("episodes", [0, -1, 1.5, True])
def test_evaluate_rejects_a_non_positive_episode_count(episodes: object) -> None:
    with pytest.raises(ValueError, match=f"num_episodes must be an integer >= 1, got {episodes!r}"):
        evaluate(pendulum_policy(), "Pendulum-v1", num_episodes=episodes, seed=0)


def test_load_policy_without_a_saved_policy_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--save-model"):
        load_policy(tmp_path)


def damage(run_dir: Path, case: str) -> Path:
    """Save a policy into ``run_dir``, then damage one file; return that file."""
    save_policy(run_dir, pendulum_policy(), "Pendulum-v1", 10, fitted_normalizer())
    policy, meta, norm = run_dir / "policy.pt", run_dir / "checkpoint.json", run_dir / "obs_normalizer.npz"
    if case == "empty policy":
        policy.write_bytes(b"")
        return policy
    if case == "truncated policy":
        policy.write_bytes(policy.read_bytes()[:-200])
        return policy
    if case == "foreign policy":
        torch.save({"weights": torch.zeros(3)}, policy)
        return policy
    if case == "empty meta":
        meta.write_text("")
        return meta
    if case == "truncated meta":
        meta.write_text(meta.read_text()[:30])
        return meta
    if case == "foreign meta":
        meta.write_text(json.dumps({"policy_class": "os.system", "env_id": "x", "global_step": 0}))
        return meta
    if case == "not a policy class":
        data = json.loads(meta.read_text())
        meta.write_text(json.dumps({**data, "policy_class": "stable_baselines3.common.utils.polyak_update"}))
        return meta
    if case == "empty statistics":
        norm.write_bytes(b"")
        return norm
    if case == "truncated statistics":
        norm.write_bytes(norm.read_bytes()[:100])
        return norm
    if case == "statistics of another shape":
        fitted_normalizer((5,)).save(norm)
        return norm
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty policy", "is empty"),
        ("truncated policy", "cannot be loaded as ERASACPolicy"),
        ("foreign policy", "cannot be loaded as ERASACPolicy"),
        ("empty meta", "is empty"),
        ("truncated meta", "is not valid JSON"),
        ("foreign meta", "was not written by save_policy"),
        ("not a policy class", "is not an SB3 policy"),
        ("empty statistics", "is not readable observation statistics"),
        ("truncated statistics", "is not readable observation statistics"),
        ("statistics of another shape", r"holds statistics of shape \(5,\)"),
    ],
)
def test_load_policy_names_the_damaged_file(tmp_path: Path, case: str, message: str) -> None:
    damaged = damage(tmp_path, case)
    with pytest.raises(CheckpointError, match=message) as excinfo:
        load_policy(tmp_path, device="cpu")
    assert str(excinfo.value).startswith(str(damaged))


def test_load_policy_imports_only_policy_packages(tmp_path: Path) -> None:
    damage(tmp_path, "empty meta")
    (tmp_path / "checkpoint.json").write_text(
        json.dumps({"policy_class": "subprocess.Popen", "env_id": "x", "global_step": 0, "obs_normalizer": None})
    )
    with pytest.raises(CheckpointError, match="is not an era_policies / SB3 / sb3-contrib policy"):
        load_policy(tmp_path)


# ------------------------------------------------------------------------------------------ agents/evaluate.py


def evaluate_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "agents/evaluate.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_evaluate_cli_reports_returns(tmp_path: Path) -> None:
    save_policy(tmp_path, pendulum_policy(), "Pendulum-v1", 10)
    result = evaluate_cli(str(tmp_path), "--episodes", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "ERASACPolicy trained 10 steps on Pendulum-v1" in result.stdout
    assert "over 2 episodes" in result.stdout


def test_evaluate_cli_rejects_zero_episodes(tmp_path: Path) -> None:
    save_policy(tmp_path, pendulum_policy(), "Pendulum-v1", 10)
    result = evaluate_cli(str(tmp_path), "--episodes", "0")
    assert result.returncode == 2
    assert "error: --episodes must be an integer >= 1, got 0" in result.stderr
    assert not (tmp_path / "videos").exists()


def test_evaluate_cli_names_a_truncated_policy_without_a_traceback(tmp_path: Path) -> None:
    damaged = damage(tmp_path, "truncated policy")
    result = evaluate_cli(str(tmp_path), "--episodes", "1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {damaged} cannot be loaded as ERASACPolicy")
    assert "Traceback" not in result.stderr


class TwoActionPendulum(gym.Wrapper):
    """Pendulum's observations with a 2-D action space: the same observation size as the policy, other actions."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(gym.make("Pendulum-v1", render_mode=render_mode))
        self.action_space = gym.spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple:
        return self.env.step(action[:1])


class NaNRewardPendulum(gym.Wrapper):
    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(gym.make("Pendulum-v1", render_mode=render_mode))

    def step(self, action: np.ndarray) -> tuple:
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float("nan"), terminated, truncated, info


gym.register("era_utils_test/TwoActionPendulum-v0", entry_point=TwoActionPendulum, max_episode_steps=20)
gym.register("era_utils_test/NaNRewardPendulum-v0", entry_point=NaNRewardPendulum, max_episode_steps=20)


@pytest.mark.parametrize(
    ("env_id", "kind"),
    [("era_utils_test/TwoActionPendulum-v0", "action"), ("MountainCarContinuous-v0", "observation")],
)
def test_evaluate_refuses_an_env_with_other_spaces_than_the_policy(env_id: str, kind: str) -> None:
    with pytest.raises(ValueError, match=rf"{env_id} has the {kind} space Box.*but the policy was made for Box"):
        evaluate(pendulum_policy(), env_id, num_episodes=1, seed=0)


@pytest.mark.filterwarnings("ignore:.*NaN:UserWarning")  # Gymnasium's env checker warns first
def test_evaluate_refuses_a_non_finite_reward_instead_of_returning_nan() -> None:
    with pytest.raises(NonFiniteError, match=r"NaNRewardPendulum-v0 \(env 0\) returned a non-finite reward at step 1"):
        evaluate(pendulum_policy(), "era_utils_test/NaNRewardPendulum-v0", num_episodes=1, seed=0)


@pytest.mark.parametrize(
    ("env_id", "code", "message"),
    [
        ("MountainCarContinuous-v0", 1, "error: --env-id MountainCarContinuous-v0: MountainCarContinuous-v0 has the "
         "observation space"),
        ("Pendulum-v9", 2, "error: --env-id 'Pendulum-v9' is not a registered environment"),
    ],
)  # fmt: skip
def test_evaluate_cli_names_an_env_id_that_does_not_fit(tmp_path: Path, env_id: str, code: int, message: str) -> None:
    save_policy(tmp_path, pendulum_policy(), "Pendulum-v1", 10)
    result = evaluate_cli(str(tmp_path), "--episodes", "1", "--env-id", env_id)
    assert result.returncode == code and result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_cli_without_tyro_prints_the_install_command() -> None:
    code = (
        "import runpy, sys; sys.modules['tyro'] = None; sys.argv = ['agents/evaluate.py', '--help']; "
        "runpy.run_path('agents/evaluate.py', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: agents/evaluate.py needs 'tyro'")
    assert 'Install: pip install "era-policies[agents]"' in result.stderr
