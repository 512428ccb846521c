"""Files that must survive a kill at any moment: atomic writes and checked loading of training checkpoints.

A file is written to ``<name>.tmp`` beside its destination, flushed and fsynced, then renamed over the destination
with :func:`os.replace` (atomic on POSIX and Windows). A kill therefore leaves either the previous complete file or the
new complete one, plus at worst a stale ``<name>.tmp`` that nothing reads and the next save overwrites. SIGINT and
SIGTERM wait for the write to finish (:func:`era_utils.signals.signals_deferred`); a full disk or a file-size limit
is an ``OSError`` that says so and names the file.

A training checkpoint also records what wrote it (the script and the run's settings), so that ``--resume`` refuses a
checkpoint of another run before it changes anything.
"""

from __future__ import annotations

import errno
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from era_utils.settings import flag_name
from era_utils.signals import signals_deferred

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
_OWNER = "era_utils_owner"
"""Key of what wrote a checkpoint: ``{"script": "sac_era.py:Args", "settings": {...}}`` (absent in older ones)."""

# What an OSError of a write means for the user; the rest are reported as they are.
_WRITE_ERRORS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit such as `ulimit -f`)",
}


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
    with signals_deferred():
        try:
            with open(tmp, "wb") as file:  # "wb" truncates a stale temporary file left by a killed save
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            cause = _write_error(err)
            if cause is None:
                raise
            kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
            raise OSError(cause.errno, f"{_WRITE_ERRORS[cause.errno]} while writing {path}; {kept}") from err
        _fsync_directory(path.parent)  # makes the rename itself durable
    return path


def _write_error(err: BaseException) -> OSError | None:
    """The full-disk or file-size OSError behind ``err``: ``torch.save`` may report it as a RuntimeError ("unexpected
    pos ...") whose context is the OSError."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _WRITE_ERRORS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


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


def save_run_checkpoint(path: str | Path, state: dict[str, Any], owner: dict[str, Any] | None = None) -> Path:
    """Atomically save a training checkpoint: ``state`` plus a format marker and what wrote it.

    :param path: destination, e.g. ``{run_dir}/checkpoint.pt``.
    :param state: anything ``torch.save`` can pickle, with an integer ``"global_step"``.
    :param owner: what wrote it, ``{"script": ..., "settings": {flag field: JSON value}}``, compared by
        :func:`load_run_checkpoint`.
    :raises ValueError: if ``state`` has no integer ``"global_step"``.
    :raises OSError: the disk is full or a file-size limit was reached (the message says which and names the file;
        the previous checkpoint is intact).
    """
    step = state.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"a checkpoint's state needs an integer 'global_step', got {step!r}")
    payload = {CHECKPOINT_MARKER: _FORMAT_VERSION, **({_OWNER: owner} if owner is not None else {}), **state}
    return atomic_save(path, lambda file: torch.save(payload, file))


def load_run_checkpoint(path: str | Path, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_run_checkpoint`, onto the CPU.

    Uses ``weights_only=False`` (as SB3's ``load`` does): a run's checkpoint holds NumPy RNG states and replay buffers.
    Only load checkpoints you trust.

    :param owner: the run that is about to use it: a checkpoint written by another script, or with other values of
        the settings in ``owner["settings"]``, is refused (one that records no owner, from an older version, is not).
    :return: the saved ``state`` (with ``"global_step"``).
    :raises FileNotFoundError: if ``path`` does not exist.
    :raises CheckpointError: if it is empty, truncated, unreadable, not such a checkpoint, or another run's; the
        message names the file.
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
    if owner is not None and _OWNER in payload:
        _check_owner(path, payload[_OWNER], owner)
    state = {key: value for key, value in payload.items() if key not in (CHECKPOINT_MARKER, _OWNER)}
    step = state.get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path} has no integer 'global_step' (got {step!r})")
    return state


def _check_owner(path: Path, saved: dict[str, Any], expected: dict[str, Any]) -> None:
    saved_settings = saved.get("settings", {})
    differing = [
        f"{flag_name(name)} {saved_settings[name]!r} (this run: {value!r})"
        for name, value in expected["settings"].items()
        if name in saved_settings and saved_settings[name] != value
    ]
    if saved.get("script") == expected["script"] and not differing:
        return
    env_id = saved_settings.get("env_id", "?")
    raise CheckpointError(
        f"{path} belongs to another run: it was written by {saved.get('script')} for {env_id}"
        + (f" with {', '.join(differing)}" if differing else "")
        + f", and this run is {expected['script']}; nothing was changed. Put this run's own checkpoint back, or start "
        "a new run"
    )
