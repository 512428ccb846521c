"""--resume with the real agents: a checkpoint of another agent, or another agent resuming a run, is refused before
anything of the run changes (issue: the evaluation rows and config.json were rewritten, then loading crashed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

AGENTS = Path(__file__).resolve().parents[2] / "agents"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
COMMON = ["--env-id", "Pendulum-v1", "--no-cuda", "--no-progress", "--eval-episodes", "1", "--hidden-dim", "32"]
FLAGS = {
    "sac_era.py": ["--learning-starts", "100", "--batch-size", "32", "--total-timesteps", "300"],
    "ppo_era.py": ["--num-steps", "64", "--num-minibatches", "2", "--total-timesteps", "128"],
}


def agent(script: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(AGENTS / script), *flags], capture_output=True, text=True, env=ENV, timeout=600
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def test_a_foreign_checkpoint_or_script_is_refused_before_the_run_changes(tmp_path: Path) -> None:
    for script, name in (("sac_era.py", "sac"), ("ppo_era.py", "ppo")):
        result = agent(script, *COMMON, *FLAGS[script], "--log-dir", str(tmp_path), "--run-name", name)
        assert result.returncode == 0, result.stderr[-3000:]
    sac = tmp_path / "sac"

    # sac_era_batch.py resuming sac_era.py's run: the settings fit its Args, the checkpoint's script does not.
    before = snapshot(sac)
    result = agent("sac_era_batch.py", "--resume", str(sac), "--total-timesteps", "400")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {sac / 'checkpoint.pt'} belongs to another run: it was written by sac_era.py:Args" in result.stderr
    assert "this run is sac_era_batch.py:Args; nothing was changed" in result.stderr
    assert snapshot(sac) == before

    # A PPO checkpoint placed in the SAC run.
    (tmp_path / "ppo" / "checkpoint.pt").replace(sac / "checkpoint.pt")
    before = snapshot(sac)
    result = agent("sac_era.py", "--resume", str(sac), "--total-timesteps", "400")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "belongs to another run: it was written by ppo_era.py:Args" in result.stderr
    assert snapshot(sac) == before
