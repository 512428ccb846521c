"""ppo_era_seeds.py as a command: one run directory per seed laid out as ppo_era.py's, --num-seeds 1 is ppo_era.py,
--resume continues every seed, a failing seed is named. Tiny budgets on Pendulum (128-step rollouts)."""

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
from tests.agents.test_ppo_cli import ENV, command, run_ppo
from tests.agents.test_sac_cli import AGENTS, evaluate_run

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

sys.path.insert(0, str(AGENTS))
import ppo_era
import ppo_era_seeds

SCRIPT = AGENTS / "ppo_era_seeds.py"
SEEDS = (3, 4)  # command() passes --seed 3


def seeds_command(tmp_path, *extra, run_dirs="run-{seed}"):
    """ppo_era_seeds.py for seeds 3 and 4 in ``tmp_path / run_dirs``, with test_ppo_cli's tiny settings."""
    cmd = command(tmp_path, "unused", *extra)
    cmd[1] = str(SCRIPT)
    at = cmd.index("--log-dir")  # --log-dir and --run-name give way to --run-dirs
    return [*cmd[:at], *cmd[at + 4 :], "--num-seeds", "2", "--run-dirs", str(tmp_path / run_dirs)]


def run_seeds(tmp_path, *extra):
    cmd = seeds_command(tmp_path, "--total-timesteps", "256", *extra)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return [tmp_path / f"run-{seed}" for seed in SEEDS]


@pytest.mark.parametrize("extra", [("--delta", "auto"), ("--no-era",)], ids=["era-delta-auto", "no-era"])
def test_every_seed_writes_a_single_seed_run_directory(tmp_path, extra):
    from era_utils.experiment import load_policy

    (tmp_path / "single").mkdir()
    single = run_ppo(tmp_path / "single", "run", *extra, "--save-model")
    run_dirs = run_seeds(tmp_path, *extra, "--save-model")
    layout = sorted(path.name for path in single.iterdir() if not path.name.startswith("events."))
    reference = torch.load(single / "checkpoint.pt", weights_only=False)
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
        assert checkpoint.keys() - reference.keys() == {"minibatch_rng"} and reference.keys() <= checkpoint.keys()
        assert checkpoint["agent"].keys() == reference["agent"].keys()
        assert checkpoint["optimizer"]["state"].keys() == reference["optimizer"]["state"].keys()
        policy, obs_normalizer, meta = load_policy(run_dir, device="cpu")
        assert type(policy).__name__ == ("ActorCriticPolicy" if "--no-era" in extra else "ERAActorCriticPolicy")
        assert obs_normalizer is not None and meta["global_step"] == 256
        result = evaluate_run(run_dir)
        assert result.returncode == 0 and "trained 256 steps on Pendulum-v1" in result.stdout, result.stderr[-3000:]
    # the seeds learn apart: their own environments, networks and normalisers
    first, second = (pd.read_csv(run_dir / "episodes.csv")["episodic_return"] for run_dir in run_dirs)
    assert not np.allclose(first, second)
    states = [torch.load(run_dir / "checkpoint.pt", weights_only=False) for run_dir in run_dirs]
    assert not torch.equal(states[0]["agent"]["action_net.weight"], states[1]["agent"]["action_net.weight"])
    assert not np.array_equal(states[0]["obs_normalizer"]["mean"], states[1]["obs_normalizer"]["mean"])


def test_one_seed_is_ppo_era_bit_for_bit(tmp_path):
    (tmp_path / "single").mkdir()
    (tmp_path / "seeds").mkdir()
    single = run_ppo(tmp_path / "single", "run", "--delta", "auto")
    cmd = command(tmp_path / "seeds", "run", "--total-timesteps", "256", "--delta", "auto", "--num-seeds", "1")
    cmd[1] = str(SCRIPT)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    seeds = tmp_path / "seeds" / "run"
    for name in ("evaluations.csv", "episodes.csv", "entropy.csv"):
        assert (single / name).read_text() == (seeds / name).read_text(), name
    expected = torch.load(single / "checkpoint.pt", weights_only=False)["agent"]
    actual = torch.load(seeds / "checkpoint.pt", weights_only=False)["agent"]
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_resume_continues_every_seed(tmp_path):
    """Also with each seed's run in a directory of its own (the benchmark runner's layout)."""
    extra = ("--total-timesteps", "100000", "--num-steps", "64", "--checkpoint-every", "64", "--eval-every", "100000")
    cmd = seeds_command(tmp_path, *extra, run_dirs="job-s{seed}/run")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    run_dirs, deadline = [tmp_path / f"job-s{seed}" / "run" for seed in SEEDS], time.monotonic() + 300
    while not (run_dirs[1] / "checkpoint.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    stopped = [torch.load(d / "checkpoint.pt", weights_only=False)["global_step"] for d in run_dirs]
    assert stopped[0] == stopped[1] and 64 <= stopped[0] < 100_000

    budget = stopped[0] + 256
    resume = [sys.executable, str(SCRIPT), "--resume", str(run_dirs[0]), "--total-timesteps", str(budget)]
    result = subprocess.run(resume, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for run_dir in run_dirs:
        state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
        assert state["global_step"] == budget and state["iteration"] == budget // 64
        entropy = pd.read_csv(run_dir / "entropy.csv")
        assert entropy["global_step"].tolist() == list(range(64, budget + 1, 64))  # every iteration exactly once
        episodes = pd.read_csv(run_dir / "episodes.csv")["global_step"]
        assert episodes.is_monotonic_increasing and episodes.iloc[-1] <= budget
        assert pd.read_csv(run_dir / "evaluations.csv")["global_step"].iloc[-1] == budget


def test_a_failing_seed_is_named_and_the_others_keep_their_files(tmp_path, monkeypatch):
    fail_seed_after(ppo_era_seeds, monkeypatch, seed=4, steps=150)
    args = ppo_era_seeds.Args(
        env_id="Pendulum-v1",
        seed=3,
        cuda=False,
        progress=False,
        log_dir=str(tmp_path),
        num_seeds=2,
        run_dirs=str(tmp_path / "run-{seed}"),
        num_steps=128,
        num_minibatches=4,
        update_epochs=1,
        total_timesteps=384,
        eval_episodes=1,
        checkpoint_every=0,
    )
    with pytest.raises(SystemExit, match=r"seed 4 .*run-4.*its environment failed at step 151.*simulator diverged"):
        ppo_era_seeds.main(args)
    assert pd.read_csv(tmp_path / "run-3" / "entropy.csv")["global_step"].tolist() == [128]  # flushed


def test_a_non_finite_seed_is_named(tmp_path, monkeypatch):
    """A seed whose losses turn NaN (here through its reward normaliser) stops the run, named, before its logs take
    the NaN."""

    class NaNForSeed4(ppo_era.RunningMeanStd):
        instances = 0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            NaNForSeed4.instances += 1
            self.poisoned = NaNForSeed4.instances == 2  # the second seed's

        def update(self, x):
            super().update(x)
            if self.poisoned:
                self.var = np.nan

    monkeypatch.setattr(ppo_era, "RunningMeanStd", NaNForSeed4)  # what each seed's RewardScaler builds
    args = ppo_era_seeds.Args(
        env_id="Pendulum-v1",
        seed=3,
        cuda=False,
        progress=False,
        num_seeds=2,
        run_dirs=str(tmp_path / "run-{seed}"),
        num_steps=64,
        num_minibatches=2,
        update_epochs=1,
        total_timesteps=128,
        eval_episodes=1,
    )
    with pytest.raises(SystemExit, match=r"seed 4 .*run-4.*non-finite.*at step 64"):
        ppo_era_seeds.main(args)
    assert pd.read_csv(tmp_path / "run-3" / "entropy.csv")["global_step"].tolist() == [64]
    assert pd.read_csv(tmp_path / "run-4" / "entropy.csv").empty


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--run-name", "one"], "--run-name"),
        (["--run-dirs", "fixed"], "--run-dirs"),
        (["--target-kl", "0.02"], "--target-kl"),
        (["--entropy-level", "batch"], "--entropy-level batch"),
        (["--num-seeds", "0"], "--num-seeds"),
        (["--num-seeds", "1", "--run-dirs", "runs/x{seed}"], "--run-dirs"),
        (["--capture-video"], "--capture-video"),
        (["--resume", "nowhere"], "nowhere"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag_and_create_nothing(flags, named, tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--no-cuda", "--log-dir", str(tmp_path / "runs")]
    result = subprocess.run([*cmd, "--num-seeds", "2", *flags], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 2 and named in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "runs").exists()
