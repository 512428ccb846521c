"""Checkpoint files survive a kill at any moment and bad ones are named, never half-loaded (era_utils.checkpoints)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from era_utils.checkpoints import (
    CheckpointError,
    atomic_save,
    load_run_checkpoint,
    save_run_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]

# Saves checkpoints 1, 2, 3, ... of ~4 MB each as fast as it can, printing each step once it is saved.
_SAVER = textwrap.dedent(
    """
    import sys, torch
    from era_utils.checkpoints import save_run_checkpoint
    payload = torch.arange(1_000_000, dtype=torch.float32)
    step = 0
    while True:
        step += 1
        save_run_checkpoint(sys.argv[1], {"global_step": step, "weights": payload + step})
        print(step, flush=True)
    """
)


def test_a_kill_at_any_moment_leaves_the_old_or_the_new_complete_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    for attempt in range(6):
        saver = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert saver.stdout is not None
        saver.stdout.readline()  # one checkpoint complete: from now on there is always one to load
        time.sleep(0.013 * attempt)  # kill at different points of a save
        saver.send_signal(signal.SIGKILL)
        reported = [int(line) for line in saver.stdout.read().split()]
        saver.wait()
        state = load_run_checkpoint(path)
        step = state["global_step"]
        # the checkpoint is complete (its weights match its step), and no older than the last reported save
        assert torch.equal(state["weights"], torch.arange(1_000_000, dtype=torch.float32) + step)
        assert step >= (reported[-1] if reported else 1)


def test_a_leftover_temporary_file_is_never_loaded_and_is_replaced_by_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_run_checkpoint(path, {"global_step": 1})
    leftover = tmp_path / "checkpoint.pt.tmp"
    leftover.write_bytes(b"half of a checkpoint from a killed save")
    assert load_run_checkpoint(path) == {"global_step": 1}
    save_run_checkpoint(path, {"global_step": 2})
    assert not leftover.exists()
    assert load_run_checkpoint(path) == {"global_step": 2}


def test_a_failing_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_run_checkpoint(path, {"global_step": 1})

    def write_half_then_fail(file: object) -> None:
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save(path, write_half_then_fail)
    assert load_run_checkpoint(path) == {"global_step": 1}
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("step", [None, "7", 7.0, True])
def test_a_checkpoint_needs_an_integer_global_step(tmp_path: Path, step: object) -> None:
    with pytest.raises(ValueError, match="integer 'global_step'"):
        save_run_checkpoint(tmp_path / "checkpoint.pt", {"global_step": step})
    assert list(tmp_path.iterdir()) == []


def write_empty(path: Path) -> None:
    path.write_bytes(b"")


def write_truncated(path: Path) -> None:
    save_run_checkpoint(path, {"global_step": 3, "weights": torch.zeros(1000)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_text(path: Path) -> None:
    path.write_text("global_step = 3\n")


def write_sb3_policy_file(path: Path) -> None:
    torch.save({"state_dict": {}, "data": {}}, path)


def write_tensor(path: Path) -> None:
    torch.save(torch.zeros(3), path)


def write_no_step(path: Path) -> None:
    torch.save({"era_utils_checkpoint": 1, "actor": {}}, path)


def write_future_format(path: Path) -> None:
    torch.save({"era_utils_checkpoint": 99, "global_step": 1}, path)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (write_empty, "is empty"),
        (write_truncated, "is truncated or not a PyTorch file"),
        (write_text, "is truncated or not a PyTorch file"),
        (write_sb3_policy_file, "is a PyTorch file but not a training checkpoint"),
        (write_tensor, "is a PyTorch file but not a training checkpoint"),
        (write_no_step, "has no integer 'global_step'"),
        (write_future_format, "has checkpoint format 99"),
    ],
)
def test_a_bad_checkpoint_is_named_with_what_is_wrong(tmp_path: Path, write: object, message: str) -> None:
    path = tmp_path / "checkpoint.pt"
    write(path)
    with pytest.raises(CheckpointError, match=message) as excinfo:
        load_run_checkpoint(path)
    assert str(excinfo.value).startswith(str(path))


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        load_run_checkpoint(tmp_path / "checkpoint.pt")
