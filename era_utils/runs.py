"""A run of an agent: its command line, its directory, its logs, its checkpoints, and resuming it.

An agent's script uses this module in five places (see ``agents/sac_era.py``)::

    args = parse_args(Args)                       # tyro + Args.check(): bad flags exit 2 before anything is created
    run, args, checkpoint = start_run(args)       # new run dir, or --resume RUN_DIR (args then come from its config)
    if checkpoint is not None:                    # ... restore networks, optimisers, RNG states, global_step
    with StopOnSignal() as stop:                  # SIGINT / SIGTERM: finish the iteration, checkpoint, exit non-zero
        ...  run.scalars / run.episode / run.evaluation / run.entropy;  run.save_checkpoint(state)
    run.close()

``{log_dir}/{run_name}/`` holds ``config.json``, TensorBoard events (CleanRL's key names), ``episodes.csv``,
``evaluations.csv`` (read by ``benchmarks/``), ``entropy.csv`` and ``checkpoint.pt``. A new run never reuses an
existing directory; ``--resume`` continues one where its checkpoint left off, dropping the log rows written after it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import numpy as np
import torch

from era_utils.checkpoints import (
    CheckpointError,
    atomic_save,
    check_checkpoint_file,
    load_run_checkpoint,
    save_run_checkpoint,
)
from era_utils.dependencies import AGENTS_INSTALL, require
from era_utils.locks import DirectoryLock, DirectoryLockedError
from era_utils.run_files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    ENTROPY_HEADER,
    ENTROPY_LOG,
    EPISODES_HEADER,
    EPISODES_LOG,
    EVALUATIONS_HEADER,
    EVALUATIONS_LOG,
    RUN_LOGS,
    CSVLog,
    RunLog,
)

tyro = require("tyro", AGENTS_INSTALL, "era_utils.runs (the agents' command lines)")
require("tensorboard", AGENTS_INSTALL, "era_utils.runs (the agents' TensorBoard logs)")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402 - only after the check that tensorboard exists

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "ENTROPY_HEADER",
    "EPISODES_HEADER",
    "EVALUATIONS_HEADER",
    "CSVLog",
    "ExperimentArgs",
    "Run",
    "StopOnSignal",
    "capture_rng_state",
    "check_at_least",
    "check_run_directory",
    "parse_args",
    "restore_rng_state",
    "seed_everything",
    "select_device",
    "start_run",
]

# Flags that --resume may change (a larger budget; how the continuation is displayed and run) and flags it sets itself.
_RESUME_MAY_CHANGE = ("total_timesteps", "progress", "cuda")
_RESUME_SETS = ("resume", "log_dir", "run_name")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_at_least(flag: str, value: object, minimum: int) -> None:
    """The one integer-bound check of the command lines.

    :param flag: the flag as typed, e.g. ``"--batch-size"``.
    :raises ValueError: ``"--batch-size must be an integer >= 1, got 0"`` when ``value`` is not an integer (bools are
        not) or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{flag} must be an integer >= {minimum}, got {value!r}")


def _check_run_name(run_name: str | None) -> None:
    if run_name is None:
        return
    if run_name in ("", ".", "..") or "/" in run_name or "\\" in run_name or os.path.isabs(run_name):
        raise ValueError(
            f"--run-name must be a plain directory name inside --log-dir (no '/', '..' or absolute path), "
            f"got {run_name!r}"
        )


@dataclasses.dataclass
class ExperimentArgs:
    """Options every agent shares: bookkeeping, device, environment, budget, evaluation and checkpoints (tyro reads
    the docstrings below each field as help)."""

    exp_name: str = "experiment"
    """name of this experiment (part of the run name)"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """sets `torch.backends.cudnn.deterministic`"""
    cuda: bool = True
    """use CUDA when it is available"""
    track: bool = False
    """log to Weights & Biases (needs `pip install wandb`)"""
    wandb_project_name: str = "era-policies"
    """the W&B project"""
    wandb_entity: str | None = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of the first training env into `videos/{run_name}` (needs `pip install "era-policies[video]"`)"""
    save_model: bool = False
    """save the SB3 policy (and any observation statistics) to `{log_dir}/{run_name}/` at every evaluation, for
    agents/evaluate.py"""
    log_dir: str = "runs"
    """TensorBoard logs, CSV logs and checkpoints go to `{log_dir}/{run_name}`"""
    run_name: str | None = None
    """run directory name (a new one: an existing run is continued with --resume); default
    `{env_id}__{exp_name}__{seed}__{unix time}`"""
    progress: bool = True
    """show a progress bar"""
    resume: str | None = None
    """continue the run in this directory from its last checkpoint (`checkpoint.pt`), with its saved settings; only
    --total-timesteps (a larger budget), --progress and --cuda may be changed"""
    checkpoint_every: int = 50_000
    """write `checkpoint.pt` every this many steps (0: only at the end and on SIGINT/SIGTERM)"""

    env_id: str = "HalfCheetah-v5"
    """Gymnasium id, `dm_control/<domain>-<task>-v0`, or HumanoidBench id such as `h1hand-walk-v0`"""
    total_timesteps: int = 1_000_000
    """environment steps, summed over the parallel envs (with action repeat: agent steps)"""
    num_envs: int = 1
    """parallel environments"""
    eval_every: int = 25_000
    """deterministic evaluation every this many steps (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""

    def check(self) -> None:
        """Reject settings that cannot work, naming the flag (agents extend this with their own checks).

        :raises ValueError: e.g. ``"--total-timesteps must be an integer >= 1, got 0"``.
        """
        check_at_least("--total-timesteps", self.total_timesteps, 1)
        check_at_least("--num-envs", self.num_envs, 1)
        check_at_least("--eval-every", self.eval_every, 0)
        check_at_least("--eval-episodes", self.eval_episodes, 1)
        check_at_least("--checkpoint-every", self.checkpoint_every, 0)
        _check_run_name(self.run_name)

    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.env_id}__{self.exp_name}__{self.seed}__{int(time.time())}"


ArgsT = TypeVar("ArgsT")


def parse_args(cls: type[ArgsT], args: Sequence[str] | None = None) -> ArgsT:
    """Parse the command line into ``cls`` with tyro and check it before anything is created.

    Bad settings (``cls.check``), an existing run directory for a new run, and a ``--resume`` directory that is
    missing, holds no complete checkpoint or was run with other settings print ``error: <message>`` to stderr and exit
    with status 2.

    :param cls: the script's ``Args`` dataclass (with a ``check()`` method).
    :param args: the arguments; default ``sys.argv[1:]``.
    """
    parsed = tyro.cli(cls, args=args)
    try:
        if isinstance(parsed, ExperimentArgs) and parsed.resume is not None:
            parsed = _parse_resumed(cls, args, parsed)
        parsed.check()
        if isinstance(parsed, ExperimentArgs):
            check_run_directory(parsed)
    except (ValueError, FileExistsError, FileNotFoundError, DirectoryLockedError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    return parsed


def _existing_run_message(run_dir: Path) -> str:
    return (
        f"run directory {run_dir} already exists; nothing was changed. Continue that run with --resume {run_dir}, "
        "or start a new one with another --run-name"
    )


def check_run_directory(args: ExperimentArgs) -> None:
    """What :func:`start_run` would refuse, checked without creating or changing anything.

    :raises FileExistsError: a new run named after an existing directory.
    :raises FileNotFoundError: ``--resume`` of a directory without ``config.json`` or ``checkpoint.pt``.
    :raises ValueError: ``--resume`` with flags that differ from the run's (:class:`CheckpointError`, a
        ``ValueError``, for an empty or truncated checkpoint or config).
    """
    if args.resume is None:
        if args.run_name is not None and (Path(args.log_dir) / args.run_name).exists():
            raise FileExistsError(_existing_run_message(Path(args.log_dir) / args.run_name))
        return
    _resumed_args(args)
    check_checkpoint_file(Path(args.resume) / CHECKPOINT_FILE)
    with DirectoryLock(args.resume, purpose="--resume"):
        pass  # another process resuming this run refuses this one


def _jsonable(value: Any) -> Any:
    """A value as ``config.json`` stores it (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(value, default=str))


def _read_config(run_dir: Path) -> dict[str, Any]:
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


def _parse_resumed(cls: type[ArgsT], args: Sequence[str] | None, parsed: ArgsT) -> ArgsT:
    """The command line parsed again with the resumed run's settings as defaults, so that every flag left out holds
    the run's value and a flag typed at its class default (``--seed 1`` for a run with seed 5) is caught too."""
    _resumed_args(parsed)  # the run directory and its config.json are sound
    saved = _read_config(Path(parsed.resume))
    run_defaults = cls(**{name: value for name, value in saved.items() if name not in _RESUME_SETS},
                       **{name: getattr(parsed, name) for name in _RESUME_SETS})  # fmt: skip
    return _resumed_args(tyro.cli(cls, args=args, default=run_defaults), typed=True)


def _resumed_args(args: ArgsT, typed: bool = False) -> ArgsT:
    """The settings of the run ``args.resume`` points to, with the flags a resume may change applied.

    :param typed: every value of ``args`` that differs from the run's was typed on the command line
        (:func:`_parse_resumed`). Otherwise, as for ``args`` built in code, a value equal to the class default counts
        as left out, since a dataclass cannot tell the two apart.
    """
    run_dir = Path(args.resume)
    saved = _read_config(run_dir)
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

    values = {name: value for name, value in saved.items() if name not in _RESUME_SETS}
    differing = []
    for name, field in fields.items():
        if name in _RESUME_SETS or name not in saved:
            continue
        given = getattr(args, name)
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if _jsonable(given) == saved[name] or (not typed and _jsonable(given) == _jsonable(default)):
            continue
        if name in _RESUME_MAY_CHANGE:
            values[name] = given
        else:
            differing.append(f"{_flag(name)} (the run has {saved[name]!r}, given {given!r})")
    if differing:
        raise ValueError(
            f"--resume {run_dir} continues a run with its own settings, and these flags differ: "
            f"{', '.join(differing)}. "
            "Leave them out (only --total-timesteps, --progress and --cuda may change), or start a new run"
        )
    resumed = type(args)(**values, resume=str(run_dir), log_dir=str(run_dir.parent), run_name=run_dir.name)
    resumed.check()
    return resumed


def start_run(args: ArgsT) -> tuple[Run, ArgsT, dict[str, Any] | None]:
    """Create a new run directory, or reopen the one ``args.resume`` names.

    New run: creates ``{log_dir}/{run_name}/`` (refusing an existing one) and writes ``config.json``.
    Resume: reads that run's ``config.json`` (its settings win; only --total-timesteps, --progress and --cuda may
    differ), loads ``checkpoint.pt``, drops the CSV rows with ``global_step`` beyond the checkpoint's (TensorBoard:
    ``purge_step``), and appends from there.

    :param args: the parsed ``Args`` (an :class:`ExperimentArgs`); checked with ``args.check()`` first.
    :return: the :class:`Run`, the run's settings (``run_name`` filled in; on resume the saved ones) and the
        checkpoint's state dict (``None`` for a new run).
    :raises ValueError: bad settings, or flags that differ from the resumed run's.
    :raises FileExistsError: a new run whose directory exists (nothing in it is touched).
    :raises FileNotFoundError: ``--resume`` of a directory without ``config.json`` or ``checkpoint.pt``.
    :raises CheckpointError: an empty, truncated or foreign checkpoint (the message names the file).
    """
    args.check()
    if args.resume is None:
        args = dataclasses.replace(args, run_name=args.resolved_run_name())
        run_dir = Path(args.log_dir) / args.run_name
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()
        except FileExistsError as err:
            raise FileExistsError(_existing_run_message(run_dir)) from err
        lock = DirectoryLock(run_dir, purpose="training").acquire()
        _write_config(run_dir, args)
        return Run(run_dir, args, lock=lock), args, None

    args = _resumed_args(args)
    run_dir = Path(args.resume)
    lock = DirectoryLock(run_dir, purpose="--resume").acquire()
    try:
        checkpoint = load_run_checkpoint(run_dir / CHECKPOINT_FILE)
        step = checkpoint["global_step"]
        # Read every log before changing any, so that a malformed one leaves the run as it was.
        kept = {log.name: _rows_up_to(run_dir, log, step) for log in RUN_LOGS}
        for name, rows in kept.items():
            if rows is not None:
                atomic_save(run_dir / name, lambda file, rows=rows: file.write("".join(rows).encode()))
        _write_config(run_dir, args)  # a raised --total-timesteps is what the next resume compares against
        return Run(run_dir, args, resume_step=step, lock=lock), args, checkpoint
    except BaseException:
        lock.release()
        raise


def _write_config(run_dir: Path, args: Any) -> None:
    text = json.dumps(dataclasses.asdict(args), indent=2, default=str)
    atomic_save(run_dir / CONFIG_FILE, lambda file: file.write(text.encode()))


def _rows_up_to(run_dir: Path, log: RunLog, step: int) -> list[str] | None:
    """The lines of a run's CSV log up to ``global_step <= step`` (``None`` if the file does not exist), read with the
    strict rule of :func:`era_utils.run_files.read_strict_rows`.

    A last row cut off without its line break is what a kill during a write leaves, and is dropped; any other invalid
    line means the file was edited or belongs to something else, and is refused.
    """
    path = run_dir / log.name
    if not path.exists():
        return None
    read = log.read(run_dir)
    for problem in read.problems:
        if read.cut_off and problem.line == read.num_lines > 1:
            continue
        if problem.line <= 1:
            raise CheckpointError(f"{problem}; it is not this run's log, so the run was not resumed")
        raise CheckpointError(f"{problem}; the run was not resumed")
    return [read.header_line, *(line for row, line in zip(read.rows, read.lines, strict=True) if row[0] <= step)]


def _number(value: Any) -> float | str:
    """A scalar (Python, NumPy or a one-element tensor) as a float; ``None`` as an empty CSV cell."""
    return "" if value is None else float(value)


class Run:
    """Everything a run writes, under ``run_dir``; made by :func:`start_run`.

    :param run_dir: the run's directory (exists).
    :param args: the run's settings (an :class:`ExperimentArgs`).
    :param resume_step: the checkpoint's ``global_step`` when resuming: TensorBoard events after it are purged and
        the CSV logs are appended to.
    :param lock: the run directory's lock, released by :meth:`close`.
    """

    def __init__(
        self, run_dir: Path, args: Any, resume_step: int | None = None, lock: DirectoryLock | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self._lock = lock
        self.start_step = resume_step or 0
        config = dataclasses.asdict(args)
        if args.track:
            try:
                import wandb
            except ImportError as err:
                raise ImportError("--track logs to Weights & Biases: pip install wandb") from err
            wandb.init(
                project=args.wandb_project_name,
                entity=args.wandb_entity,
                sync_tensorboard=True,
                config=config,
                name=self.run_dir.name,
                save_code=True,
            )
        resuming = resume_step is not None
        # TensorBoard drops the older files' events at steps >= purge_step, as the CSVs drop their rows.
        self.writer = SummaryWriter(str(self.run_dir), purge_step=resume_step + 1 if resuming else None)
        if not resuming:
            rows = "\n".join(f"|{key}|{value}|" for key, value in config.items())
            self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")
        self._logs = {log.name: CSVLog(self.run_dir / log.name, log.header, append=resuming) for log in RUN_LOGS}
        self.start_time = time.time()

    def scalars(self, values: dict[str, Any], step: int) -> None:
        """Write ``{tag: value}`` to TensorBoard at ``step`` (values: numbers or one-element tensors)."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), step)

    def episode(self, step: int, episodic_return: float, episodic_length: int) -> None:
        """A finished training episode: ``charts/episodic_return``/``_length`` and a row of ``episodes.csv``."""
        self.scalars({"charts/episodic_return": episodic_return, "charts/episodic_length": episodic_length}, step)
        self._logs[EPISODES_LOG.name].write([step, float(episodic_return), int(episodic_length)])

    def evaluation(self, step: int, returns: np.ndarray) -> None:
        """Deterministic evaluation returns: ``eval/*`` scalars and a row of ``evaluations.csv``."""
        mean, std = float(np.mean(returns)), float(np.std(returns))
        self.scalars({"eval/mean_return": mean, "eval/std_return": std}, step)
        self._logs[EVALUATIONS_LOG.name].write([step, mean, std, len(returns)])

    def entropy(
        self,
        step: int,
        target_entropy: Any,
        activation_target: Any,
        gaussian_entropy_min: Any,
        gaussian_entropy_mean: Any,
        bounded_entropy_mean: Any,
        delta: Any,
    ) -> None:
        """The entropy floor and what a logged batch realised: a row of ``entropy.csv`` (columns:
        :data:`ENTROPY_HEADER`) and the same values as ``entropy/<column>`` TensorBoard scalars. ``None`` for what
        does not apply (e.g. delta and the floor with ``--no-era``)."""
        values = (
            target_entropy,
            activation_target,
            gaussian_entropy_min,
            gaussian_entropy_mean,
            bounded_entropy_mean,
            delta,
        )
        row = [_number(value) for value in values]
        self.scalars(
            {f"entropy/{name}": value for name, value in zip(ENTROPY_HEADER[1:], row, strict=True) if value != ""},
            step,
        )
        self._logs[ENTROPY_LOG.name].write([step, *row])

    def steps_per_second(self, step: int) -> float:
        """Steps per second since this process started the run (or resumed it)."""
        return (step - self.start_step) / max(time.time() - self.start_time, 1e-9)

    def save_checkpoint(self, state: dict[str, Any]) -> Path:
        """Flush the logs, then atomically write ``state`` to ``checkpoint.pt`` (see :mod:`era_utils.checkpoints`).

        :param state: what the agent needs to continue, with an integer ``"global_step"``; typically
            ``state_dict()`` of networks and optimisers, ``capture_rng_state()``, normaliser statistics.
        :return: the checkpoint's path.
        """
        for log in self._logs.values():
            log.flush()
        self.writer.flush()
        return save_run_checkpoint(self.run_dir / CHECKPOINT_FILE, state)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self.writer.close()
        if self._lock is not None:
            self._lock.release()


def capture_rng_state() -> dict[str, Any]:
    """The global random states: Python's ``random``, NumPy's legacy global generator, torch CPU (and CUDA when in
    use). Generators an agent owns (``np.random.default_rng``) are saved by the agent
    (``rng.bit_generator.state``)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}  # noqa: NPY002
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured (CUDA states only when CUDA is available)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


class StopOnSignal:
    """Turn SIGINT / SIGTERM into a request to stop at the end of the current iteration.

    The loop checks :attr:`requested` once per iteration, saves a checkpoint and exits with
    ``raise SystemExit(stop.exit_code)`` (128 + the signal number, as a shell reports a killed process). A second
    signal stops at once with the previous handler (Ctrl-C twice: ``KeyboardInterrupt``). Outside the main thread,
    where Python cannot install handlers, it does nothing.

    :param signals: the signals to catch.
    """

    def __init__(self, signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """``128 + signum`` once a signal arrived (130 for SIGINT, 143 for SIGTERM), else 0."""
        return 0 if self.signum is None else 128 + self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self._restore()
            signal.raise_signal(signum)
            return
        self.requested, self.signum = True, signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this iteration with a checkpoint "
            "(send it again to stop at once, without one)",
            file=sys.stderr,
        )

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.signals}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()


def seed_everything(seed: int, torch_deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CleanRL's recipe)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries and wrappers may draw from the global generator
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


def select_device(cuda: bool) -> torch.device:
    """CUDA when asked for and present, CPU otherwise."""
    return torch.device("cuda" if cuda and torch.cuda.is_available() else "cpu")
