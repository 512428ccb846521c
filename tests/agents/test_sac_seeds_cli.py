"""sac_era_seeds.py as a command: one run directory per seed laid out as sac_era.py's, --num-seeds 1 is sac_era.py,
--resume continues every seed, a failing seed is named. Tiny budgets on Pendulum (200-step episodes)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from tests.agents.failing_envs import fail_seed_after
from tests.agents.tensorboard_logs import tensorboard_tags
from tests.agents.test_sac_cli import AGENTS, ENV, command, evaluate_run, run_agent

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

sys.path.insert(0, str(AGENTS))
import sac_era_seeds

SEEDS = (3, 4)  # command() passes --seed 3


def seeds_command(tmp_path, *extra, run_dirs="run-{seed}", script="sac_era_seeds.py"):
    """``script`` for seeds 3 and 4 in ``tmp_path / run_dirs``, with test_sac_cli's tiny settings."""
    cmd = command(script, tmp_path, "unused", *extra)
    at = cmd.index("--log-dir")  # --log-dir and --run-name give way to --run-dirs
    return [*cmd[:at], *cmd[at + 4 :], "--num-seeds", "2", "--run-dirs", str(tmp_path / run_dirs)]


def run_seeds(tmp_path, *extra, script="sac_era_seeds.py"):
    cmd = seeds_command(tmp_path, "--total-timesteps", "300", *extra, script=script)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return [tmp_path / f"run-{seed}" for seed in SEEDS]


def test_every_seed_writes_a_single_seed_run_directory(tmp_path):
    from era_policies.sb3 import ERASACPolicy

    (tmp_path / "single").mkdir()
    single = run_agent("sac_era.py", tmp_path / "single", "--delta", "auto", "--save-model")
    run_dirs = run_seeds(tmp_path, "--delta", "auto", "--save-model")
    layout = sorted(path.name for path in single.iterdir() if not path.name.startswith("events."))
    for seed, run_dir in zip(SEEDS, run_dirs, strict=True):
        assert sorted(path.name for path in run_dir.iterdir() if not path.name.startswith("events.")) == layout
        assert json.loads((run_dir / "config.json").read_text())["seed"] == seed
        assert tensorboard_tags(run_dir) == tensorboard_tags(single)
        for name in ("evaluations.csv", "episodes.csv", "entropy.csv"):
            assert list(pd.read_csv(run_dir / name)) == list(pd.read_csv(single / name)), name
            assert (
                pd.read_csv(run_dir / name)["global_step"].tolist()
                == pd.read_csv(single / name)["global_step"].tolist()
            )
        checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
        reference = torch.load(single / "checkpoint.pt", weights_only=False)
        assert checkpoint.keys() == reference.keys() and checkpoint["agent"].keys() == reference["agent"].keys()
        policy = ERASACPolicy.load(str(run_dir / "policy.pt"), device="cpu")
        assert policy.actor.era_std.era_delta.learnable
        result = evaluate_run(run_dir)
        assert result.returncode == 0 and "trained 300 steps on Pendulum-v1" in result.stdout, result.stderr[-3000:]
    # the seeds learn apart: their own environments, warm-up actions and networks
    first, second = (pd.read_csv(run_dir / "episodes.csv")["episodic_return"] for run_dir in run_dirs)
    assert not np.allclose(first, second)
    deltas = [
        torch.load(d / "checkpoint.pt", weights_only=False)["agent"]["actor"]["era_std.era_delta.delta"]
        for d in run_dirs
    ]
    assert deltas[0] != deltas[1]


def test_batch_level_seeds_keep_their_own_running_normalisers(tmp_path):
    """sac_era_batch_seeds.py: each seed's run is a batch-level one, whose checkpoint and exported policy hold that
    seed's own running normaliser."""
    from era_policies.sb3 import ERASACPolicy

    run_dirs = run_seeds(tmp_path, "--save-model", "--batch-momentum", "0.05", script="sac_era_batch_seeds.py")
    normalisers = []
    for run_dir in run_dirs:
        config = json.loads((run_dir / "config.json").read_text())
        assert config["exp_name"] == "sac_era_batch" and config["batch_momentum"] == 0.05
        actor = torch.load(run_dir / "checkpoint.pt", weights_only=False)["agent"]["actor"]
        assert actor["era_std.batch_era.num_batches_tracked"] > 0
        normalisers.append(actor["era_std.batch_era.running_log_normalizer"])
        batch_era = ERASACPolicy.load(str(run_dir / "policy.pt"), device="cpu").actor.era_std.batch_era
        assert batch_era is not None and batch_era.momentum == 0.05
        torch.testing.assert_close(batch_era.running_log_normalizer, normalisers[-1])
    assert normalisers[0] != normalisers[1]


def test_one_seed_is_sac_era_bit_for_bit(tmp_path):
    (tmp_path / "single").mkdir()
    (tmp_path / "seeds").mkdir()
    single = run_agent("sac_era.py", tmp_path / "single", "--delta", "auto")
    seeds = run_agent("sac_era_seeds.py", tmp_path / "seeds", "--delta", "auto", "--num-seeds", "1")
    for name in ("evaluations.csv", "episodes.csv", "entropy.csv"):
        assert (single / name).read_text() == (seeds / name).read_text(), name
    expected = torch.load(single / "checkpoint.pt", weights_only=False)["agent"]
    actual = torch.load(seeds / "checkpoint.pt", weights_only=False)["agent"]
    for name in ("actor", "qf", "qf_target"):
        for key, value in expected[name].items():
            assert torch.equal(actual[name][key], value), f"{name}.{key}"


def test_resume_continues_every_seed(tmp_path):
    """Also with each seed's run in a directory of its own (the benchmark runner's layout)."""
    extra = ("--total-timesteps", "100000", "--checkpoint-every", "100")
    cmd = seeds_command(tmp_path, *extra, run_dirs="job-s{seed}/run")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    run_dirs, deadline = [tmp_path / f"job-s{seed}" / "run" for seed in SEEDS], time.monotonic() + 300
    while not (run_dirs[1] / "episodes.csv").exists() or len(pd.read_csv(run_dirs[1] / "episodes.csv")) < 1:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    stopped = [torch.load(d / "checkpoint.pt", weights_only=False)["global_step"] for d in run_dirs]
    assert stopped[0] == stopped[1] and 200 <= stopped[0] < 100_000

    budget = stopped[0] + 300
    resume = [sys.executable, str(AGENTS / "sac_era_seeds.py"), "--resume", str(run_dirs[0])]
    result = subprocess.run(
        [*resume, "--total-timesteps", str(budget)], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for run_dir in run_dirs:
        assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["global_step"] == budget
        for name in ("episodes.csv", "entropy.csv"):  # continued, nothing written twice
            steps = pd.read_csv(run_dir / name)["global_step"]
            assert steps.is_monotonic_increasing and steps.is_unique and steps.iloc[-1] <= budget, name
        assert pd.read_csv(run_dir / "evaluations.csv")["global_step"].iloc[-1] == budget


def test_no_era_seeds_run_and_resume(tmp_path):
    """Plain SAC stacked: each seed its own run directory, config, evaluations and temperature; --resume with a larger
    budget continues both."""
    run_dirs = run_seeds(tmp_path, "--no-era", "--eval-every", "200")
    alphas = []
    for seed, run_dir in zip(SEEDS, run_dirs, strict=True):
        config = json.loads((run_dir / "config.json").read_text())
        assert config["seed"] == seed and config["era"] is False
        assert pd.read_csv(run_dir / "evaluations.csv")["global_step"].tolist() == [200, 300]
        agent = torch.load(run_dir / "checkpoint.pt", weights_only=False)["agent"]
        assert "era_std.era_delta.delta" not in agent["actor"] and agent["alpha_optimizer"]["state"]
        alphas.append(agent["log_alpha"])
    assert alphas[0].shape == () and alphas[0] != alphas[1]  # each seed's own temperature, not a shared one

    resume = [sys.executable, str(AGENTS / "sac_era_seeds.py"), "--resume", str(run_dirs[0])]
    result = subprocess.run(
        [*resume, "--total-timesteps", "500"], capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for run_dir in run_dirs:
        checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
        assert checkpoint["global_step"] == 500
        assert pd.read_csv(run_dir / "evaluations.csv")["global_step"].tolist() == [200, 300, 400, 500]
        entropy = pd.read_csv(run_dir / "entropy.csv")
        assert entropy["global_step"].is_unique and entropy["global_step"].iloc[-1] == 500


def test_a_failing_seed_is_named_and_the_others_keep_their_files(tmp_path, monkeypatch):
    fail_seed_after(sac_era_seeds, monkeypatch, seed=4, steps=150)
    args = sac_era_seeds.Args(
        env_id="Pendulum-v1",
        seed=3,
        cuda=False,
        progress=False,
        log_dir=str(tmp_path),
        num_seeds=2,
        run_dirs=str(tmp_path / "run-{seed}"),
        learning_starts=100,
        hidden_dim=32,
        batch_size=32,
        log_every=100,
        total_timesteps=300,
        eval_episodes=2,
        checkpoint_every=0,
    )
    with pytest.raises(SystemExit, match=r"seed 4 .*run-4.*its environment failed at step 151.*simulator diverged"):
        sac_era_seeds.main(args)
    assert len(pd.read_csv(tmp_path / "run-3" / "entropy.csv")) == 1  # the log of step 101, flushed


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--run-name", "one"], "--run-name"),
        (["--run-dirs", "fixed"], "--run-dirs"),
        (["--num-seeds", "0"], "--num-seeds"),
        (["--num-seeds", "1", "--run-dirs", "runs/x{seed}"], "--run-dirs"),
        (["--capture-video"], "--capture-video"),
        (["--resume", "nowhere"], "nowhere"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag_and_create_nothing(flags, named, tmp_path):
    cmd = [sys.executable, str(AGENTS / "sac_era_seeds.py"), "--no-cuda", "--log-dir", str(tmp_path / "runs")]
    result = subprocess.run([*cmd, "--num-seeds", "2", *flags], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 2 and named in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "runs").exists()
