"""A run's life: the command line, a new directory, logs, checkpoints, signals and --resume (era_utils.runs)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from era_utils.checkpoints import CheckpointError
from era_utils.experiment import (
    ENTROPY_HEADER,
    ExperimentArgs,
    StopOnSignal,
    capture_rng_state,
    check_at_least,
    parse_args,
    restore_rng_state,
    start_run,
)
from era_utils.locks import LOCK_FILE, DirectoryLockedError
from era_utils.run_files import CHECKPOINT_FILE
from era_utils.signals import signals_deferred


@dataclasses.dataclass
class Args(ExperimentArgs):
    """A stand-in for an agent's Args: one option of its own, checked the agents' way."""

    batch_size: int = 256

    def check(self) -> None:
        super().check()
        check_at_least("--batch-size", self.batch_size, 1)


def new_args(tmp_path: Path, **overrides: object) -> Args:
    settings = {"log_dir": str(tmp_path / "runs"), "run_name": "run", "env_id": "Pendulum-v1", "progress": False}
    return Args(**{**settings, **overrides})


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its content, to see that nothing changed."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}  # fmt: skip


def run_to(tmp_path: Path, steps: range, checkpoint_at: int, **overrides: object) -> Path:
    """A new run that logs one row of each kind per step in ``steps`` and checkpoints at ``checkpoint_at``."""
    run, _, _ = start_run(new_args(tmp_path, **overrides))
    for step in steps:
        run.episode(step, float(step), 10)
        run.evaluation(step, np.array([float(step)]))
        run.entropy(step, -3.0, -2.5, -2.4, -2.0, -2.6, 0.1)
        run.scalars({"losses/loss": torch.tensor(float(step))}, step)
        if step == checkpoint_at:
            run.save_checkpoint({"global_step": step})
    run.close()
    return run.run_dir


# --------------------------------------------------------------------------------------------- new runs


def test_new_run_writes_config_and_every_log(tmp_path: Path) -> None:
    run, args, checkpoint = start_run(new_args(tmp_path, seed=7))
    assert checkpoint is None and run.run_dir == tmp_path / "runs" / "run"
    run.episode(100, -5.0, 200)
    run.evaluation(200, np.array([1.0, 3.0]))
    run.entropy(300, -3.0, -2.7, torch.tensor(-2.5), np.float32(-2.0), -2.9, None)
    run.close()
    assert pd.read_csv(run.run_dir / "episodes.csv").to_dict("records") == [
        {"global_step": 100, "episodic_return": -5.0, "episodic_length": 200}
    ]
    assert pd.read_csv(run.run_dir / "evaluations.csv").to_dict("records") == [
        {"global_step": 200, "mean_return": 2.0, "std_return": 1.0, "num_episodes": 2}
    ]
    entropy = pd.read_csv(run.run_dir / "entropy.csv")
    assert tuple(entropy.columns) == ENTROPY_HEADER
    assert entropy.iloc[0, :-1].tolist() == [300, -3.0, -2.7, -2.5, -2.0, -2.9]
    assert np.isnan(entropy["delta"].iloc[0])  # --no-era has no delta: an empty cell, not a made-up number
    assert json.loads((run.run_dir / "config.json").read_text()) == dataclasses.asdict(args)


def test_new_run_fills_in_the_run_name(tmp_path: Path) -> None:
    run, args, _ = start_run(new_args(tmp_path, run_name=None, exp_name="sac", seed=3))
    run.close()
    assert args.run_name.startswith("Pendulum-v1__sac__3__")
    assert run.run_dir.name == args.run_name
    assert json.loads((run.run_dir / "config.json").read_text())["run_name"] == args.run_name


def test_new_run_refuses_an_existing_run_and_leaves_it_untouched(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 4), checkpoint_at=3)
    before = snapshot(run_dir)
    with pytest.raises(FileExistsError, match="already exists") as excinfo:
        start_run(new_args(tmp_path))
    message = str(excinfo.value)
    assert str(run_dir) in message and "--resume" in message and "--run-name" in message
    assert snapshot(run_dir) == before


def test_command_line_refuses_an_existing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2)
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--log-dir", str(tmp_path / "runs"), "--run-name", "run"])
    assert excinfo.value.code == 2
    assert f"error: run directory {run_dir} already exists" in capsys.readouterr().err
    assert snapshot(run_dir) == before


# ------------------------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--total-timesteps", "0"], "--total-timesteps must be an integer >= 1, got 0"),
        (["--total-timesteps", "-5"], "--total-timesteps must be an integer >= 1, got -5"),
        (["--eval-episodes", "0"], "--eval-episodes must be an integer >= 1, got 0"),
        (["--eval-every", "-1"], "--eval-every must be an integer >= 0, got -1"),
        (["--num-envs", "0"], "--num-envs must be an integer >= 1, got 0"),
        (["--checkpoint-every", "-1"], "--checkpoint-every must be an integer >= 0, got -1"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["--run-name", "../escaped"], "--run-name must be a plain directory name"),
        (["--run-name", "a/b"], "--run-name must be a plain directory name"),
        (["--run-name", ".."], "--run-name must be a plain directory name"),
        (["--run-name", ""], "--run-name must be a plain directory name"),
        (["--env-id", "HalfChetah-v5"], "--env-id 'HalfChetah-v5' is not a registered environment"),
        (["--env-id", "Nowhere/thing-v0"], "--env-id 'Nowhere/thing-v0' is not a registered environment"),
    ],
)
def test_command_line_rejects_what_cannot_work_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--log-dir", str(tmp_path / "runs"), *flags])
    assert excinfo.value.code == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_absolute_run_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--run-name must be a plain directory name"):
        start_run(new_args(tmp_path, run_name=str(tmp_path / "elsewhere")))
    assert list(tmp_path.iterdir()) == []


def test_programmatic_use_raises_value_error_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--total-timesteps must be an integer >= 1, got 0"):
        start_run(new_args(tmp_path, total_timesteps=0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [True, 1.5, "3", None])
def test_check_at_least_rejects_non_integers(value: object) -> None:
    with pytest.raises(ValueError, match="--batch-size must be an integer >= 1"):
        check_at_least("--batch-size", value, 1)


def test_command_line_accepts_good_settings(tmp_path: Path) -> None:
    args = parse_args(Args, ["--log-dir", str(tmp_path), "--total-timesteps", "10", "--checkpoint-every", "0"])
    assert (args.total_timesteps, args.checkpoint_every, args.resume) == (10, 0, None)
    assert list(tmp_path.iterdir()) == []  # parsing creates nothing; start_run does


# ------------------------------------------------------------------------------------------------- resume


def test_resume_continues_from_the_checkpoint_and_drops_later_rows(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 11), checkpoint_at=6, total_timesteps=10)
    run, args, checkpoint = start_run(Args(resume=str(run_dir)))
    assert checkpoint == {"global_step": 6}
    assert (args.run_name, args.total_timesteps, args.resume) == ("run", 10, str(run_dir))
    for name in ("episodes.csv", "evaluations.csv", "entropy.csv"):
        assert pd.read_csv(run_dir / name)["global_step"].tolist() == [1, 2, 3, 4, 5, 6]
    run.episode(7, 70.0, 10)
    run.close()
    episodes = pd.read_csv(run_dir / "episodes.csv")
    assert episodes["global_step"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert episodes["episodic_return"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 70.0]


def test_resume_purges_later_tensorboard_events(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = run_to(tmp_path, range(1, 11), checkpoint_at=6)
    run, _, _ = start_run(Args(resume=str(run_dir)))
    for step in (7, 8):
        run.scalars({"losses/loss": -step}, step)
    run.close()
    events = EventAccumulator(str(run_dir))
    events.Reload()
    loss = [(event.step, event.value) for event in events.Scalars("losses/loss")]
    assert loss == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 6.0), (7, -7.0), (8, -8.0)]


def test_resume_drops_a_half_written_last_row(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 5), checkpoint_at=4)
    with open(run_dir / "episodes.csv", "a") as file:
        file.write("5,-10")  # a kill in the middle of a row
    run, _, _ = start_run(Args(resume=str(run_dir)))
    run.episode(5, 50.0, 10)
    run.close()
    assert pd.read_csv(run_dir / "episodes.csv")["episodic_return"].tolist() == [1.0, 2.0, 3.0, 4.0, 50.0]


def test_resume_refuses_a_malformed_row_inside_a_log_and_changes_nothing(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 5), checkpoint_at=2)
    lines = (run_dir / "evaluations.csv").read_text().splitlines(keepends=True)
    lines.insert(2, "garbage\n")
    (run_dir / "evaluations.csv").write_text("".join(lines))
    before = snapshot(run_dir)
    with pytest.raises(CheckpointError, match=r"evaluations\.csv:3: 1 fields, expected 4"):
        start_run(Args(resume=str(run_dir)))
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("row", "reason"),
    [("3,nan,0.0,1\n", "mean_return is 'nan', not a finite number"), ("1,1.0,0.0,1\n", "does not come after")],
)
def test_resume_reads_the_logs_with_the_aggregations_strict_rule(tmp_path: Path, row: str, reason: str) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2)
    with open(run_dir / "evaluations.csv", "a") as file:
        file.write(row)
    before = snapshot(run_dir)
    with pytest.raises(CheckpointError, match=rf"evaluations\.csv:4: .*{reason}"):
        start_run(Args(resume=str(run_dir)))
    assert snapshot(run_dir) == before


def test_resume_may_raise_the_budget_and_records_it(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 4), checkpoint_at=3, total_timesteps=3, progress=True)
    run, args, _ = start_run(Args(resume=str(run_dir), total_timesteps=20, progress=False))
    run.close()
    assert (args.total_timesteps, args.progress) == (20, False)
    assert json.loads((run_dir / "config.json").read_text())["total_timesteps"] == 20


def test_resume_keeps_the_saved_settings_for_flags_left_out(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2, seed=5, batch_size=64)
    run, args, _ = start_run(Args(resume=str(run_dir)))
    run.close()
    assert (args.seed, args.batch_size, args.env_id) == (5, 64, "Pendulum-v1")


def test_resume_with_a_differing_flag_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2, seed=5)
    before = snapshot(run_dir)
    with pytest.raises(ValueError, match=r"--seed \(the run has 5, given 9\)") as excinfo:
        start_run(Args(resume=str(run_dir), seed=9, batch_size=32))
    assert "--batch-size (the run has 256, given 32)" in str(excinfo.value)
    with pytest.raises(SystemExit) as exit_info:
        parse_args(Args, ["--resume", str(run_dir), "--seed", "9"])
    assert exit_info.value.code == 2 and "--seed (the run has 5, given 9)" in capsys.readouterr().err
    assert snapshot(run_dir) == before


def test_resume_on_the_command_line_catches_a_flag_typed_at_its_class_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2, seed=5, batch_size=64, total_timesteps=3, progress=False)
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as exit_info:
        parse_args(Args, ["--resume", str(run_dir), "--seed", "1"])  # 1 is ExperimentArgs' default seed
    assert exit_info.value.code == 2 and "--seed (the run has 5, given 1)" in capsys.readouterr().err
    assert snapshot(run_dir) == before
    # Typed at the class default, the changeable flags take effect; the same value as the run's is no difference.
    args = parse_args(Args, ["--resume", str(run_dir), "--total-timesteps", "1000000", "--progress", "--seed", "5"])
    assert (args.total_timesteps, args.progress, args.seed, args.batch_size) == (1_000_000, True, 5, 64)
    del args  # a parsed --resume holds the run's lock for start_run until it is dropped
    # Left out, every flag keeps the run's value.
    args = parse_args(Args, ["--resume", str(run_dir)])
    assert (args.total_timesteps, args.progress, args.seed) == (3, False, 5)


def test_resume_refuses_another_run_name(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2)
    with pytest.raises(ValueError, match="--run-name 'other' differs from the resumed run's 'run'"):
        start_run(Args(resume=str(run_dir), run_name="other"))


def test_resume_of_a_config_from_another_script_is_refused(tmp_path: Path) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "num_minibatches": 32}))
    with pytest.raises(ValueError, match=r"settings \['num_minibatches'\] that Args does not have"):
        start_run(Args(resume=str(run_dir)))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing directory", "no such run directory"),
        ("missing config", "config.json is missing"),
        ("missing checkpoint", "no such checkpoint file"),
        ("empty checkpoint", "checkpoint.pt is empty"),
        ("truncated checkpoint", "checkpoint.pt is truncated"),
        ("truncated config", "config.json is not valid JSON"),
    ],
)
def test_resume_of_a_damaged_run_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str
) -> None:
    run_dir = run_to(tmp_path, range(1, 3), checkpoint_at=2)
    checkpoint, config = run_dir / CHECKPOINT_FILE, run_dir / "config.json"
    if damage == "missing directory":
        run_dir = run_dir.with_name("nothing")
    elif damage == "missing config":
        config.unlink()
    elif damage == "missing checkpoint":
        checkpoint.unlink()
    elif damage == "empty checkpoint":
        checkpoint.write_bytes(b"")
    elif damage == "truncated checkpoint":
        checkpoint.write_bytes(checkpoint.read_bytes()[:-100])
    elif damage == "truncated config":
        config.write_text(config.read_text()[:40])
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--resume", str(run_dir)])
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err
    with pytest.raises((FileNotFoundError, CheckpointError), match=message):
        start_run(Args(resume=str(run_dir)))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("foreign", "message"),
    [
        ("an SB3 policy file", r"checkpoint\.pt is a PyTorch file but not a training checkpoint"),
        ("another environment's", r"--env-id 'MountainCarContinuous-v0' \(this run: 'Pendulum-v1'\)"),
    ],
)
def test_resume_of_a_foreign_checkpoint_names_the_file_and_changes_nothing(
    tmp_path: Path, foreign: str, message: str
) -> None:
    run_dir = run_to(tmp_path, range(1, 5), checkpoint_at=2)
    if foreign == "an SB3 policy file":
        torch.save({"state_dict": {}, "data": {}}, run_dir / CHECKPOINT_FILE)
    else:
        other = run_to(tmp_path, range(1, 3), checkpoint_at=2, run_name="car", env_id="MountainCarContinuous-v0")
        (other / CHECKPOINT_FILE).replace(run_dir / CHECKPOINT_FILE)
    before = snapshot(run_dir)
    with pytest.raises(CheckpointError, match=message):
        start_run(Args(resume=str(run_dir)))
    assert snapshot(run_dir) == before


# ---------------------------------------------------------------------------------------------------- locks


def test_a_second_resume_of_a_run_in_use_exits_2_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = run_to(tmp_path, range(1, 5), checkpoint_at=2)
    first, _, _ = start_run(Args(resume=str(run_dir)))
    first.writer.flush()  # its own TensorBoard file, written in the background: complete before the snapshot
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--resume", str(run_dir)])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {run_dir} is in use by process {os.getpid()}" in err and "(--resume)" in err
    with pytest.raises(DirectoryLockedError):
        start_run(Args(resume=str(run_dir)))
    assert snapshot(run_dir) == before
    first.close()
    assert not (run_dir / LOCK_FILE).exists()
    start_run(Args(resume=str(run_dir)))[0].close()  # free once the first has finished


def test_a_new_run_holds_its_directory_until_closed(tmp_path: Path) -> None:
    run, _, _ = start_run(new_args(tmp_path))
    run.save_checkpoint({"global_step": 1})
    with pytest.raises(DirectoryLockedError, match="in use by"):
        start_run(Args(resume=str(run.run_dir)))
    run.close()
    start_run(Args(resume=str(run.run_dir)))[0].close()


# ------------------------------------------------------------------------------------- RNG states, signals


def test_rng_states_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    run, _, _ = start_run(new_args(tmp_path))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)  # noqa: NPY002
    run.save_checkpoint({"global_step": 0, "rng": capture_rng_state()})
    expected = (random.random(), np.random.random(), torch.rand(3))  # noqa: NPY002
    run.close()
    _, _, checkpoint = start_run(Args(resume=str(run.run_dir)))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)  # noqa: NPY002
    restore_rng_state(checkpoint["rng"])
    drawn = (random.random(), np.random.random(), torch.rand(3))  # noqa: NPY002
    assert drawn[:2] == expected[:2] and torch.equal(drawn[2], expected[2])


def test_stop_on_signal_turns_sigterm_and_sigint_into_a_request() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        with StopOnSignal() as stop:
            assert not stop.requested and stop.exit_code == 0
            os.kill(os.getpid(), signum)
            assert stop.requested and stop.exit_code == code
    # handlers are restored to what they were (Python's default, or SIG_IGN in a background job)
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_second_signal_stops_at_once_with_the_previous_handler() -> None:
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with StopOnSignal() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == [] and stop.requested
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------- checked once per process


def count_settings_work(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count Args.check calls, config.json reads and checkpoint loads from here on."""
    counts = {"check": 0, "config reads": 0, "checkpoint loads": 0}
    check, read_text, load = Args.check, Path.read_text, torch.load

    def counting_check(self: Args) -> None:
        counts["check"] += 1
        check(self)

    def counting_read_text(self: Path, *args: object, **kwargs: object) -> str:
        counts["config reads"] += self.name == "config.json"
        return read_text(self, *args, **kwargs)

    def counting_load(*args: object, **kwargs: object) -> object:
        counts["checkpoint loads"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(Args, "check", counting_check)
    monkeypatch.setattr(Path, "read_text", counting_read_text)
    monkeypatch.setattr(torch, "load", counting_load)
    return counts


def test_a_new_run_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = count_settings_work(monkeypatch)
    run, _, _ = start_run(parse_args(Args, ["--log-dir", str(tmp_path / "runs"), "--env-id", "Pendulum-v1"]))
    run.close()
    assert counts == {"check": 1, "config reads": 0, "checkpoint loads": 0}


def test_a_resume_is_checked_once_reading_its_config_and_checkpoint_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = run_to(tmp_path, range(1, 4), checkpoint_at=3)
    counts = count_settings_work(monkeypatch)
    run, args, checkpoint = start_run(parse_args(Args, ["--resume", str(run_dir), "--total-timesteps", "50"]))
    run.close()
    assert (args.total_timesteps, checkpoint["global_step"]) == (50, 3)
    assert counts == {"check": 1, "config reads": 1, "checkpoint loads": 1}


def test_settings_changed_after_parsing_are_checked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse_args(Args, ["--log-dir", str(tmp_path / "runs"), "--env-id", "Pendulum-v1"])
    args.batch_size = 0
    with pytest.raises(ValueError, match="--batch-size must be an integer >= 1, got 0"):
        start_run(args)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- a resume validates everything before writing


@dataclasses.dataclass
class OtherArgs(ExperimentArgs):
    """Another script's settings (as ppo_era.py's are to sac_era.py's)."""

    batch_size: int = 256


def test_resume_refuses_a_checkpoint_written_by_another_script_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = run_to(tmp_path, range(1, 5), checkpoint_at=2)
    other, _, _ = start_run(OtherArgs(log_dir=str(tmp_path / "runs"), run_name="other", env_id="Pendulum-v1"))
    other.save_checkpoint({"global_step": 3, "agent": {}})
    other.close()
    (other.run_dir / CHECKPOINT_FILE).replace(run_dir / CHECKPOINT_FILE)  # a foreign checkpoint placed in the run
    before = snapshot(run_dir)
    message = rf"{run_dir / CHECKPOINT_FILE} belongs to another run: it was written by test_runs\.py:OtherArgs"
    with pytest.raises(CheckpointError, match=message):
        start_run(Args(resume=str(run_dir)))
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--resume", str(run_dir)])
    assert excinfo.value.code == 2 and "this run is test_runs.py:Args" in capsys.readouterr().err
    assert snapshot(run_dir) == before


def test_resume_below_the_checkpoints_step_is_refused_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = run_to(tmp_path, range(1, 8), checkpoint_at=6, total_timesteps=10)
    before = snapshot(run_dir)
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--resume", str(run_dir), "--total-timesteps", "5"])
    assert excinfo.value.code == 2
    assert "--total-timesteps 5 is below the step 6" in capsys.readouterr().err
    assert snapshot(run_dir) == before
    start_run(Args(resume=str(run_dir), total_timesteps=6))[0].close()  # the checkpoint's own step is no less


# ------------------------------------------------------------------------------- the environment and --log-dir


def test_an_env_whose_extra_is_missing_names_the_flag_and_the_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dm_control", None)  # as if the dmc extra were not installed
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--log-dir", str(tmp_path / "runs"), "--env-id", "dm_control/cartpole-swingup-v0"])
    err = capsys.readouterr().err
    assert excinfo.value.code == 2 and "--env-id dm_control/cartpole-swingup-v0:" in err
    assert 'pip install "era-policies[dmc]"' in err
    assert list(tmp_path.iterdir()) == []


def test_track_without_wandb_names_the_install_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if the track extra were not installed
    with pytest.raises(SystemExit) as excinfo:
        parse_args(Args, ["--log-dir", str(tmp_path / "runs"), "--env-id", "Pendulum-v1", "--track"])
    err = capsys.readouterr().err
    assert excinfo.value.code == 2 and "--track" in err and 'pip install "era-policies[track]"' in err
    assert list(tmp_path.iterdir()) == []


def test_a_log_dir_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a directory")
    for log_dir in ("notes.txt", "notes.txt/runs"):
        with pytest.raises(SystemExit) as excinfo:
            parse_args(Args, ["--log-dir", str(tmp_path / log_dir), "--env-id", "Pendulum-v1"])
        assert excinfo.value.code == 2
        assert f"--log-dir {str(tmp_path / log_dir)!r}: {tmp_path / 'notes.txt'} is a file" in capsys.readouterr().err
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_signals_during_a_write_are_delivered_after_it_in_order() -> None:
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        handler = signal.getsignal(signal.SIGTERM)
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert received == []  # held back while the file is written
        assert received == [signal.SIGTERM, signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
