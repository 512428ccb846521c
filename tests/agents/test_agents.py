"""Subprocess smoke runs of the single-file agents and their --no-era twins, plus checkpoint reloading."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[sb3]"')

AGENTS = Path(__file__).resolve().parents[2] / "agents"
TINY = {
    "sac_era.py": ["--total-timesteps", "300", "--learning-starts", "100", "--hidden-dim", "32", "--batch-size", "32"],
    "sac_era_batch.py": ["--total-timesteps", "300", "--learning-starts", "100", "--hidden-dim", "32"],
    "ppo_era.py": ["--total-timesteps", "256", "--num-steps", "128", "--num-minibatches", "4", "--update-epochs", "2"],
}


def run_agent(script: str, tmp_path: Path, *extra: str, env_id: str = "Pendulum-v1") -> Path:
    """Run ``agents/<script>`` on CPU with a tiny budget; return its run directory."""
    run_name = f"{script[:-3]}-{len(extra)}-{abs(hash(extra)) % 10_000}"
    cmd = [sys.executable, str(AGENTS / script), "--env-id", env_id, "--seed", "3", "--no-cuda", "--no-progress"]
    cmd += ["--log-dir", str(tmp_path), "--run-name", run_name, "--eval-episodes", "2", *TINY[script], *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return tmp_path / run_name


def check_outputs(run_dir: Path, total_timesteps: int) -> None:
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir()), "no TensorBoard events"
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert evaluations["global_step"].iloc[-1] >= total_timesteps  # a final evaluation at the end of the budget
    assert np.isfinite(evaluations["mean_return"]).all()
    episodes = pd.read_csv(run_dir / "episodes.csv")
    assert len(episodes) >= 1 and (episodes["episodic_length"] == 200).all()  # Pendulum truncates at 200 steps
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 3


def tensorboard_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return set(accumulator.Tags()["scalars"])


@pytest.mark.parametrize("script", sorted(TINY))
@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_agent_runs_and_writes_logs(script, era, tmp_path):
    run_dir = run_agent(script, tmp_path, *([] if era else ["--no-era"]))
    total = int(TINY[script][1])
    check_outputs(run_dir, total)
    tags = tensorboard_tags(run_dir)
    assert {"charts/episodic_return", "charts/SPS", "policy/entropy", "policy/std", "eval/mean_return"} <= tags
    assert {"era/target_entropy", "era/delta"} <= tags if era else not tags & {"era/target_entropy", "era/delta"}
    assert any(tag.startswith("losses/") for tag in tags)


def test_auto_delta_and_checkpoint_reload_through_sb3(tmp_path):
    from era_policies.sb3 import ERASACPolicy

    run_dir = run_agent("sac_era.py", tmp_path, "--delta", "auto", "--save-model")
    policy = ERASACPolicy.load(str(run_dir / "policy.pt"), device="cpu")
    assert policy.era_config.delta == "auto" and policy.era_config.target_entropy_per_dim == 0.25
    obs = np.zeros((4, 3), dtype=np.float32)
    actions, _ = policy.predict(obs, deterministic=True)
    assert actions.shape == (4, 1) and np.all(np.abs(actions) <= 2.0)
    result = subprocess.run(
        [sys.executable, str(AGENTS / "evaluate.py"), str(run_dir), "--episodes", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERASACPolicy trained 300 steps on Pendulum-v1" in result.stdout
    assert "over 2 episodes" in result.stdout


def test_ppo_checkpoint_keeps_observation_statistics(tmp_path):
    from era_utils.experiment import load_checkpoint

    run_dir = run_agent("ppo_era.py", tmp_path, "--save-model")
    policy, obs_normalizer, meta = load_checkpoint(run_dir, device="cpu")
    assert type(policy).__name__ == "ERAActorCriticPolicy" and meta["global_step"] == 256
    assert obs_normalizer is not None and obs_normalizer.rms.count > 256  # updated at every step of training


@pytest.mark.parametrize(
    ("script", "env_id", "module"),
    [
        ("ppo_era.py", "HalfCheetah-v5", "mujoco"),
        ("sac_era.py", "dm_control/cartpole-swingup-v0", "dm_control"),
        ("sac_era.py", "h1-walk-v0", "humanoid_bench"),
    ],
)
def test_other_environment_families(script, env_id, module, tmp_path):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    run_dir = run_agent(script, tmp_path, "--eval-episodes", "1", env_id=env_id)
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert evaluations["global_step"].iloc[-1] >= int(TINY[script][1])
    assert np.isfinite(evaluations["mean_return"]).all()


def test_missing_humanoid_bench_is_a_clear_error(tmp_path, monkeypatch):
    if importlib.util.find_spec("humanoid_bench") is not None:
        pytest.skip("humanoid_bench is installed")
    cmd = [sys.executable, str(AGENTS / "sac_era.py"), "--env-id", "h1hand-walk-v0", "--no-cuda", "--no-progress"]
    cmd += ["--log-dir", str(tmp_path), "--total-timesteps", "10"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "git clone https://github.com/carlosferrazza/humanoid-bench" in result.stderr
