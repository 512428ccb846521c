"""Continuing a run (``--resume RUN_DIR``), checked in full before any of its files changes.

:func:`prepare_resume` takes the run's lock, loads its checkpoint (refusing one that another script or other settings
wrote, and a ``--total-timesteps`` below the checkpoint's step) and reads its CSV logs with the strict rule of
:mod:`era_utils.run_files`; only then does :meth:`Resumption.apply` cut the logs back to the checkpoint's step.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from era_utils.checkpoints import CheckpointError, atomic_save, load_run_checkpoint
from era_utils.locks import DirectoryLock
from era_utils.run_files import CHECKPOINT_FILE, CONFIG_FILE, RUN_LOGS, RunLog
from era_utils.settings import flag_name, script_of, settings_json

__all__ = [
    "RESUME_MAY_CHANGE",
    "RESUME_SETS",
    "Resumption",
    "check_config_fits",
    "checkpoint_owner",
    "prepare_resume",
    "read_config",
    "resumed_settings",
]

RESUME_MAY_CHANGE = ("total_timesteps", "progress", "cuda")
"""Flags that --resume may change: a larger budget, and how the continuation is displayed and run."""
RESUME_SETS = ("resume", "log_dir", "run_name")
"""Flags that --resume sets itself, from the run directory."""

ArgsT = TypeVar("ArgsT")


def read_config(run_dir: Path) -> dict[str, Any]:
    """The settings a run saved in its ``config.json``.

    :raises FileNotFoundError: ``run_dir`` or its ``config.json`` is missing.
    :raises CheckpointError: ``config.json`` is not a JSON object (empty, truncated, foreign).
    """
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--resume {run_dir}: no such run directory")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"--resume {run_dir}: {path} is missing, so this is not a run directory")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); is it empty or truncated?") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds {type(config).__name__}, not the run's settings")
    return config


def check_config_fits(args: Any, saved: dict[str, Any]) -> None:
    """That the saved settings are ``type(args)``'s and ``args`` does not point elsewhere (--run-name, --log-dir).

    :raises ValueError: naming the settings or the flag that does not fit.
    """
    run_dir = Path(args.resume)
    fields = {field.name: field for field in dataclasses.fields(args) if field.init}
    unknown = sorted(saved.keys() - fields.keys())
    if unknown:
        raise ValueError(
            f"--resume {run_dir}: its {CONFIG_FILE} has settings {unknown} that {type(args).__name__} does not have; "
            "was it made by another script?"
        )
    if args.run_name is not None and args.run_name != run_dir.name:
        raise ValueError(f"--run-name {args.run_name!r} differs from the resumed run's {run_dir.name!r}; leave it out")
    default_log_dir = fields["log_dir"].default
    if args.log_dir != default_log_dir and Path(args.log_dir).resolve() != run_dir.parent.resolve():
        raise ValueError(f"--log-dir {args.log_dir!r} is not the resumed run's parent {str(run_dir.parent)!r}")


def resumed_settings(args: ArgsT, saved: dict[str, Any], typed: bool = False) -> ArgsT:
    """The settings of the run ``args.resume`` points to (``saved``: its config), with the flags a resume may change
    applied. Not checked with ``check()``: the caller does that once.

    :param typed: every value of ``args`` that differs from the run's was typed on the command line (the command line
        was parsed with the run's settings as defaults). Otherwise, as for ``args`` built in code, a value equal to
        the class default counts as left out, since a dataclass cannot tell the two apart.
    :raises ValueError: the config is another script's, or flags differ from the run's (all named).
    """
    check_config_fits(args, saved)
    run_dir = Path(args.resume)
    values = {name: value for name, value in saved.items() if name not in RESUME_SETS}
    differing = []
    for field in dataclasses.fields(args):
        name = field.name
        if not field.init or name in RESUME_SETS or name not in saved:
            continue
        given = _jsonable(getattr(args, name))
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if given == saved[name] or (not typed and given == _jsonable(default)):
            continue
        if name in RESUME_MAY_CHANGE:
            values[name] = getattr(args, name)
        else:
            differing.append(f"{flag_name(name)} (the run has {saved[name]!r}, given {getattr(args, name)!r})")
    if differing:
        raise ValueError(
            f"--resume {run_dir} continues a run with its own settings, and these flags differ: "
            f"{', '.join(differing)}. "
            "Leave them out (only --total-timesteps, --progress and --cuda may change), or start a new run"
        )
    return type(args)(**values, resume=str(run_dir), log_dir=str(run_dir.parent), run_name=run_dir.name)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def checkpoint_owner(args: Any) -> dict[str, Any]:
    """What a checkpoint of the run ``args`` records as its writer: the script and every setting."""
    return {"script": script_of(args), "settings": settings_json(args)}


@dataclasses.dataclass
class Resumption:
    """A resume checked in full and holding the run's lock; nothing of the run has changed yet.

    :param run_dir: the run's directory.
    :param checkpoint: the loaded checkpoint's state.
    :param kept_lines: per existing CSV log, its lines up to the checkpoint's step (header first).
    :param lock: the run directory's lock.
    """

    run_dir: Path
    checkpoint: dict[str, Any]
    kept_lines: dict[str, list[str]]
    lock: DirectoryLock

    @property
    def step(self) -> int:
        return self.checkpoint["global_step"]

    def apply(self) -> None:
        """Cut every CSV log back to the checkpoint's step (a later row was written after the checkpoint)."""
        for name, lines in self.kept_lines.items():
            atomic_save(self.run_dir / name, lambda file, lines=lines: file.write("".join(lines).encode()))


def prepare_resume(args: Any) -> Resumption:
    """Take the run's lock and check everything a resume reads, changing nothing.

    :param args: the resumed run's settings (:func:`resumed_settings`, already checked).
    :raises DirectoryLockedError: another process is using the run.
    :raises FileNotFoundError: the checkpoint is missing.
    :raises CheckpointError: the checkpoint or a log is damaged or another run's (the message names the file).
    :raises ValueError: ``--total-timesteps`` below the checkpoint's step.
    """
    run_dir = Path(args.resume)
    lock = DirectoryLock(run_dir, purpose="--resume").acquire()
    try:
        path = run_dir / CHECKPOINT_FILE
        owner = checkpoint_owner(args)
        changeable = set(RESUME_MAY_CHANGE) | set(RESUME_SETS)
        owner["settings"] = {name: value for name, value in owner["settings"].items() if name not in changeable}
        checkpoint = load_run_checkpoint(path, owner=owner)
        step = checkpoint["global_step"]
        if args.total_timesteps < step:
            raise ValueError(
                f"--total-timesteps {args.total_timesteps} is below the step {step} that {path} has reached; a resumed "
                "run continues to a larger budget"
            )
        kept = {log.name: lines for log in RUN_LOGS if (lines := _lines_up_to(run_dir, log, step)) is not None}
    except BaseException:
        lock.release()
        raise
    return Resumption(run_dir, checkpoint, kept, lock)


def _lines_up_to(run_dir: Path, log: RunLog, step: int) -> list[str] | None:
    """The lines of a run's CSV log up to ``global_step <= step`` (``None`` if the file does not exist), read with the
    strict rule of :func:`era_utils.run_files.read_strict_rows`.

    A last row cut off without its line break is what a kill during a write leaves, and is dropped; any other invalid
    line means the file was edited or belongs to something else, and is refused.
    """
    if not (run_dir / log.name).exists():
        return None
    read = log.read(run_dir)
    for problem in read.problems:
        if read.cut_off and problem.line == read.num_lines > 1:
            continue
        if problem.line <= 1:
            raise CheckpointError(f"{problem}; it is not this run's log, so the run was not resumed")
        raise CheckpointError(f"{problem}; the run was not resumed")
    return [read.header_line, *(line for row, line in zip(read.rows, read.lines, strict=True) if row[0] <= step)]
