"""Files that must survive a kill at any moment: atomic writes and checked loading of training checkpoints.

A file is written to ``<name>.tmp`` beside its destination, flushed and fsynced, then renamed over the destination
with :func:`os.replace` (atomic on POSIX and Windows). A kill therefore leaves either the previous complete file or the
new complete one, plus at worst a stale ``<name>.tmp`` that nothing reads and the next save overwrites.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "CHECKPOINT_MARKER",
    "CheckpointError",
    "atomic_save",
    "check_checkpoint_file",
    "load_run_checkpoint",
    "save_run_checkpoint",
]

CHECKPOINT_MARKER = "era_utils_checkpoint"
"""Key (value: format version) that tells a training checkpoint of :func:`save_run_checkpoint` from other files."""
_FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint (or another file of a run) is empty, truncated, or was not written by this project."""


def atomic_save(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file so that ``path`` always holds either its previous content or the complete new one.

    :param path: destination.
    :param write: writes the content into the binary file object it is given (``torch.save(obj, f)``,
        ``policy.save``, ``np.savez``, ...).
    :return: ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as file:  # "wb" truncates a stale temporary file left by a killed save
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)  # makes the rename itself durable
    return path


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_checkpoint_file(path: str | Path) -> Path:
    """Cheap checks that ``path`` is a complete PyTorch file, without reading it.

    ``torch.save`` writes a zip archive whose directory sits at the very end, so a truncated file has none.

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises CheckpointError: if it is empty, truncated or not a PyTorch file; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (a save that never wrote anything)")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is truncated or not a PyTorch file (it has no zip directory at its end)")
    return path


def save_run_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically save a training checkpoint: ``state`` plus a format marker.

    :param path: destination, e.g. ``{run_dir}/checkpoint.pt``.
    :param state: anything ``torch.save`` can pickle, with an integer ``"global_step"``.
    :raises ValueError: if ``state`` has no integer ``"global_step"``.
    """
    step = state.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"a checkpoint's state needs an integer 'global_step', got {step!r}")
    payload = {CHECKPOINT_MARKER: _FORMAT_VERSION, **state}
    return atomic_save(path, lambda file: torch.save(payload, file))


def load_run_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_run_checkpoint`, onto the CPU.

    Uses ``weights_only=False`` (as SB3's ``load`` does): a run's checkpoint holds NumPy RNG states and replay buffers.
    Only load checkpoints you trust.

    :return: the saved ``state`` (with ``"global_step"``).
    :raises FileNotFoundError: if ``path`` does not exist.
    :raises CheckpointError: if it is empty, truncated, unreadable or not such a checkpoint; the message names the file.
    """
    path = check_checkpoint_file(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types here (RuntimeError, UnpicklingError, EOFError, ...)
        raise CheckpointError(f"{path} could not be read ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or CHECKPOINT_MARKER not in payload:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a training checkpoint of this project (no {CHECKPOINT_MARKER!r} key); "
            "an SB3 policy file is loaded with agents/evaluate.py instead"
        )
    if payload[CHECKPOINT_MARKER] != _FORMAT_VERSION:
        version = payload[CHECKPOINT_MARKER]
        raise CheckpointError(f"{path} has checkpoint format {version!r}, this version reads {_FORMAT_VERSION}")
    state = {key: value for key, value in payload.items() if key != CHECKPOINT_MARKER}
    step = state.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path} has no integer 'global_step' (got {step!r})")
    return state
