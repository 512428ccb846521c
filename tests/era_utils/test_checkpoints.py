"""Checkpoint files survive a kill at any moment and bad ones are named, never half-loaded (era_utils.checkpoints)."""

from __future__ import annotations

import errno
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


# Saves a checkpoint that takes a second to write (its pickling waits), under StopOnSignal as an agent does.
_SLOW_SAVER = textwrap.dedent(
    """
    import sys, time, torch
    from era_utils.checkpoints import save_run_checkpoint
    from era_utils.signals import StopOnSignal

    class SlowToPickle:
        def __reduce__(self):
            time.sleep(1.0)
            return (dict, ())

    with StopOnSignal():
        print("saving", flush=True)
        save_run_checkpoint(sys.argv[1], {"global_step": 7, "weights": torch.ones(1000), "slow": SlowToPickle()})
    """
)


def test_two_sigterms_during_a_save_let_it_complete_then_stop(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    saver = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert saver.stdout is not None and saver.stdout.readline() == "saving\n"
    while not path.with_name("checkpoint.pt.tmp").exists() and saver.poll() is None:
        time.sleep(0.001)  # the write has begun
    saver.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    saver.send_signal(signal.SIGTERM)
    assert saver.wait(timeout=120) == -signal.SIGTERM  # the second signal still stops it, once the file is written
    state = load_run_checkpoint(path)
    assert state["global_step"] == 7 and torch.equal(state["weights"], torch.ones(1000)) and state["slow"] == {}


def test_a_full_disk_is_named_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    path = tmp_path / "checkpoint.pt"
    save_run_checkpoint(path, {"global_step": 1})
    path.with_name("checkpoint.pt.tmp").symlink_to("/dev/full")  # every write to the new file: ENOSPC
    with pytest.raises(OSError, match=f"no space left on device while writing {path}; the previous checkpoint.pt is "
                       "intact") as excinfo:  # fmt: skip
        save_run_checkpoint(path, {"global_step": 2, "weights": torch.zeros(100_000)})
    assert excinfo.value.errno == errno.ENOSPC
    assert load_run_checkpoint(path) == {"global_step": 1}
    assert list(tmp_path.iterdir()) == [path]


# Saves a small checkpoint, then a large one under a 1 MB file-size limit (`ulimit -f`).
_LIMITED_SAVER = textwrap.dedent(
    """
    import resource, sys, torch
    from era_utils.checkpoints import save_run_checkpoint
    save_run_checkpoint(sys.argv[1], {"global_step": 1})
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
    try:
        save_run_checkpoint(sys.argv[1], {"global_step": 2, "weights": torch.zeros(1_000_000)})
    except OSError as err:
        print(err.errno, err)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs resource limits")
def test_a_file_size_limit_is_named_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED_SAVER, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr  # SIGXFSZ did not kill it
    assert result.stdout.startswith(f"{errno.EFBIG} ") and "file too large" in result.stdout
    assert f"while writing {path}; the previous checkpoint.pt is intact" in result.stdout
    assert load_run_checkpoint(path) == {"global_step": 1}
    assert list(tmp_path.iterdir()) == [path]
