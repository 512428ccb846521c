"""agents/ppo_era.py as users run it: logs, the entropy floor in entropy.csv, checkpoints, resume, bad flags."""

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

from tests.agents.tensorboard_logs import tensorboard_tags

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

SCRIPT = Path(__file__).resolve().parents[2] / "agents" / "ppo_era.py"
TINY = ["--num-steps", "128", "--num-minibatches", "4", "--update-epochs", "2", "--eval-episodes", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def command(tmp_path: Path, run_name: str, *extra: str, env_id: str = "Pendulum-v1") -> list[str]:
    return [
        sys.executable, str(SCRIPT), "--env-id", env_id, "--seed", "3", "--no-cuda", "--no-progress",
        "--log-dir", str(tmp_path), "--run-name", run_name, *TINY, *extra,
    ]  # fmt: skip


def run_ppo(tmp_path: Path, run_name: str, *extra: str, env_id: str = "Pendulum-v1") -> Path:
    """Train on CPU with a tiny budget (256 steps unless ``extra`` says otherwise); return the run directory."""
    cmd = command(tmp_path, run_name, "--total-timesteps", "256", *extra, env_id=env_id)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return tmp_path / run_name


@pytest.mark.parametrize("extra", [(), ("--delta", "auto"), ("--no-era",)], ids=["era", "era-delta-auto", "no-era"])
def test_training_writes_logs_and_the_entropy_floor_holds(tmp_path, extra):
    run_dir = run_ppo(tmp_path, "run", *extra)
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert evaluations["global_step"].iloc[-1] == 256 and np.isfinite(evaluations["mean_return"]).all()
    episodes = pd.read_csv(run_dir / "episodes.csv")
    assert len(episodes) >= 1 and (episodes["episodic_length"] == 200).all()  # Pendulum truncates at 200 steps
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 3

    entropy = pd.read_csv(run_dir / "entropy.csv")
    assert entropy["global_step"].tolist() == [128, 256]  # once per iteration
    era = "--no-era" not in extra
    if era:
        # The floor ERA guarantees holds in every logged minibatch; truncation pulls the realised entropy below it.
        assert (entropy["target_entropy"] == -0.3).all() and (entropy["delta"] >= 0).all()
        assert (entropy["gaussian_entropy_min"] >= entropy["activation_target"] - 1e-4).all()
        assert (entropy["bounded_entropy_mean"] <= entropy["gaussian_entropy_mean"] + 1e-5).all()
    else:
        assert entropy[["target_entropy", "activation_target", "bounded_entropy_mean", "delta"]].isna().all().all()
        assert np.isfinite(entropy["gaussian_entropy_min"]).all()

    tags = tensorboard_tags(run_dir)
    assert {"charts/episodic_return", "charts/SPS", "policy/entropy", "policy/std", "eval/mean_return"} <= tags
    assert {"losses/policy_loss", "losses/value_loss", "losses/approx_kl", "entropy/gaussian_entropy_min"} <= tags
    assert ({"era/target_entropy", "era/delta"} <= tags) == era
    assert ("losses/delta_loss" in tags) == ("auto" in extra)


def test_saved_policy_keeps_the_observation_statistics(tmp_path):
    from era_utils.experiment import load_policy

    run_dir = run_ppo(tmp_path, "run", "--save-model")
    policy, obs_normalizer, meta = load_policy(run_dir, device="cpu")
    assert type(policy).__name__ == "ERAActorCriticPolicy" and meta["global_step"] == 256
    assert obs_normalizer is not None and obs_normalizer.rms.count > 256  # updated at every step of training
    actions, _ = policy.predict(np.zeros((4, 3), dtype=np.float32), deterministic=True)
    assert actions.shape == (4, 1) and np.all(np.abs(actions) <= 2.0)


def test_resume_after_sigterm_reaches_the_budget_without_duplicated_rows(tmp_path):
    total = 64 * 60
    cmd = command(tmp_path, "run", "--total-timesteps", str(total), "--num-steps", "64", "--checkpoint-every", "64")
    cmd += ["--eval-every", "1024", "--eval-episodes", "1"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    stopped_at = pd.read_csv(tmp_path / "run" / "entropy.csv")["global_step"].iloc[-1]
    assert stopped_at < total

    resume = [sys.executable, str(SCRIPT), "--resume", str(tmp_path / "run"), "--no-progress"]
    result = subprocess.run(resume, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    entropy = pd.read_csv(tmp_path / "run" / "entropy.csv")
    assert entropy["global_step"].tolist() == list(range(64, total + 1, 64))  # every iteration exactly once
    evaluations = pd.read_csv(tmp_path / "run" / "evaluations.csv")
    assert evaluations["global_step"].is_unique and evaluations["global_step"].iloc[-1] == total
    episodes = pd.read_csv(tmp_path / "run" / "episodes.csv")
    assert episodes["global_step"].is_monotonic_increasing and episodes["global_step"].iloc[-1] <= total

    import torch

    state = torch.load(checkpoint, weights_only=False)
    assert state["global_step"] == total and state["iteration"] == total // 64


def test_an_existing_run_name_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("earlier results")
    cmd = command(tmp_path, "run", "--total-timesteps", "256")
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and "--resume" in result.stderr
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("extra", "flag"),
    [(("--total-timesteps", "0"), "--total-timesteps"), (("--num-minibatches", "512"), "--num-minibatches")],
)
def test_bad_flags_exit_non_zero_naming_the_flag_and_leave_no_run(tmp_path, extra, flag):
    cmd = command(tmp_path, "run", *extra)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and flag in result.stderr
    assert not (tmp_path / "run").exists()


def test_mujoco_task(tmp_path):
    if importlib.util.find_spec("mujoco") is None:
        pytest.skip("mujoco is not installed")
    run_dir = run_ppo(tmp_path, "run", "--eval-episodes", "1", env_id="HalfCheetah-v5")
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert evaluations["global_step"].iloc[-1] == 256 and np.isfinite(evaluations["mean_return"]).all()
