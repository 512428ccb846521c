"""sac_era.py / sac_era_batch.py as commands: logs, the entropy floor in entropy.csv, checkpoints, --resume after a
SIGTERM, refusals. Tiny budgets on Pendulum (200-step episodes)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.agents.tensorboard_logs import tensorboard_tags

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

AGENTS = Path(__file__).resolve().parents[2] / "agents"
TINY = ["--learning-starts", "100", "--hidden-dim", "32", "--batch-size", "32", "--log-every", "100"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def evaluate_run(run_dir: Path) -> subprocess.CompletedProcess:
    """``agents/evaluate.py RUN --episodes 2`` on a finished run."""
    argv = [sys.executable, str(AGENTS / "evaluate.py"), str(run_dir), "--episodes", "2"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=ENV)


def command(script: str, tmp_path: Path, run_name: str, *extra: str, env_id: str = "Pendulum-v1") -> list[str]:
    cmd = [sys.executable, str(AGENTS / script), "--env-id", env_id, "--seed", "3", "--no-cuda", "--no-progress"]
    return [*cmd, "--log-dir", str(tmp_path), "--run-name", run_name, "--eval-episodes", "2", *TINY, *extra]


def run_agent(script: str, tmp_path: Path, *extra: str, run_name: str = "run", env_id: str = "Pendulum-v1") -> Path:
    cmd = command(script, tmp_path, run_name, "--total-timesteps", "300", *extra, env_id=env_id)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return tmp_path / run_name


@pytest.mark.parametrize("script", ["sac_era.py", "sac_era_batch.py"])
@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_runs_log_and_keep_the_entropy_floor(script, era, tmp_path):
    run_dir = run_agent(script, tmp_path, *([] if era else ["--no-era"]))
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert evaluations["global_step"].iloc[-1] == 300 and np.isfinite(evaluations["mean_return"]).all()
    episodes = pd.read_csv(run_dir / "episodes.csv")
    assert len(episodes) == 1 and episodes["episodic_length"].iloc[0] == 200  # Pendulum truncates at 200 steps
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 3
    assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["global_step"] == 300

    entropy = pd.read_csv(run_dir / "entropy.csv")
    assert entropy["global_step"].tolist() == [101, 200, 300]  # every log step, after the updates start
    if not era:
        assert (entropy["target_entropy"] == -1.0).all() and entropy["delta"].isna().all()
    elif script == "sac_era.py":  # state level: every state of every logged batch keeps the floor
        assert (entropy["gaussian_entropy_min"] >= entropy["activation_target"] - 1e-4).all()
    else:  # batch level: the batch mean does
        assert (entropy["gaussian_entropy_mean"] >= entropy["activation_target"] - 1e-4).all()

    tags = tensorboard_tags(run_dir)
    assert {"charts/episodic_return", "charts/SPS", "policy/entropy", "policy/std", "eval/mean_return"} <= tags
    assert {"entropy/gaussian_entropy_min", "entropy/bounded_entropy_mean", "losses/qf_loss"} <= tags
    assert ("era/delta" in tags) == era and ("losses/alpha" in tags) == (not era)


def test_auto_delta_policy_file_loads_in_sb3_and_evaluate(tmp_path):
    from era_policies.sb3 import ERASACPolicy

    run_dir = run_agent("sac_era.py", tmp_path, "--delta", "auto", "--save-model")
    entropy = pd.read_csv(run_dir / "entropy.csv")
    assert entropy["delta"].iloc[-1] > 0  # truncation keeps the bounded entropy below H0 at first: delta rises
    policy = ERASACPolicy.load(str(run_dir / "policy.pt"), device="cpu")
    era_delta = policy.actor.era_std.era_delta
    assert era_delta.learnable and era_delta.target_entropy_per_dim == 0.25
    actions, _ = policy.predict(np.zeros((4, 3), dtype=np.float32), deterministic=True)
    assert actions.shape == (4, 1) and np.all(np.abs(actions) <= 2.0)
    result = evaluate_run(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERASACPolicy trained 300 steps on Pendulum-v1" in result.stdout


@pytest.mark.parametrize("save_replay_buffer", [True, False], ids=["with-buffer", "without-buffer"])
def test_resume_after_sigterm_reaches_the_budget(save_replay_buffer, tmp_path):
    extra = ["--save-model", "--checkpoint-every", "100", *(["--save-replay-buffer"] if save_replay_buffer else [])]
    cmd = command("sac_era.py", tmp_path, "run", "--total-timesteps", "100000", *extra)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    run_dir, deadline = tmp_path / "run", time.monotonic() + 300
    while not (run_dir / "episodes.csv").exists() or len(pd.read_csv(run_dir / "episodes.csv")) < 1:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    interrupted = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    stopped_at = interrupted["global_step"]
    assert 200 <= stopped_at < 100_000 and ("replay_buffer" in interrupted) == save_replay_buffer

    budget = stopped_at + 300
    resume = [sys.executable, str(AGENTS / "sac_era.py"), "--resume", str(run_dir), "--total-timesteps", str(budget)]
    result = subprocess.run(resume, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("without a replay buffer" in result.stdout) == (not save_replay_buffer)

    final = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert final["global_step"] == budget and final["agent"]["actor"].keys() == interrupted["agent"]["actor"].keys()
    for name in ("episodes.csv", "entropy.csv"):  # continued, nothing written twice
        steps = pd.read_csv(run_dir / name)["global_step"]
        assert steps.is_monotonic_increasing and steps.is_unique and steps.iloc[-1] <= budget, name
    assert pd.read_csv(run_dir / "entropy.csv")["global_step"].iloc[-1] == budget
    assert pd.read_csv(run_dir / "evaluations.csv")["global_step"].iloc[-1] == budget
    assert json.loads((run_dir / "checkpoint.json").read_text())["global_step"] == budget  # the SB3 policy file


def test_existing_run_name_is_refused_and_left_untouched(tmp_path):
    run_dir = run_agent("sac_era.py", tmp_path)
    before = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    cmd = command("sac_era.py", tmp_path, "run", "--total-timesteps", "300")
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and "already exists" in result.stderr and "--resume" in result.stderr
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == before


def test_bad_flag_exits_2_naming_it_without_a_run_directory(tmp_path):
    cmd = command("sac_era_batch.py", tmp_path / "runs", "bad", "--batch-size", "0")
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 2 and "--batch-size must be an integer >= 1, got 0" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("env_id", "module"), [("dm_control/cartpole-swingup-v0", "dm_control"), ("h1-walk-v0", "humanoid_bench")]
)
def test_other_environment_families(env_id, module, tmp_path):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    run_dir = run_agent("sac_era.py", tmp_path, "--eval-episodes", "1", env_id=env_id)
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert evaluations["global_step"].iloc[-1] >= 300 and np.isfinite(evaluations["mean_return"]).all()


def test_missing_humanoid_bench_is_a_clear_error(tmp_path):
    if importlib.util.find_spec("humanoid_bench") is not None:
        pytest.skip("humanoid_bench is installed")
    result = subprocess.run(
        command("sac_era.py", tmp_path, "hb", "--total-timesteps", "10", env_id="h1hand-walk-v0"),
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert result.returncode != 0
    assert "git clone https://github.com/carlosferrazza/humanoid-bench" in result.stderr
