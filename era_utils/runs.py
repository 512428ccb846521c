"""A run of an agent: its directory, what it writes there (config, TensorBoard events, CSV logs, checkpoints), and
starting it new or from ``--resume``.

An agent's script uses the run API (:mod:`era_utils.experiment`) in six places (see ``agents/sac_era.py``)::

    args = parse_args(Args)                       # tyro + every check: bad flags exit 2 before anything is created
    prepared = prepare_run(args)                  # parse_args' checks (main(Args(...)) is checked here instead)
    args = prepared.args                          # run_name filled in; on --resume the run's saved settings
    ...  build the env and networks, so that they fail before a run directory exists
    run, args, checkpoint = prepared.start()      # new run dir, or reopen --resume RUN_DIR (start_run: both steps)
    if checkpoint is not None:                    # ... restore networks, optimisers, RNG states, global_step
    with StopOnSignal() as stop:                  # SIGINT / SIGTERM: finish the iteration, checkpoint, exit non-zero
        ...  run.scalars / run.episode / run.evaluation / run.entropy;  run.save_checkpoint(state)
    run.close()

``{log_dir}/{run_name}/`` holds the files named in :mod:`era_utils.run_files`: ``config.json``, TensorBoard events
(CleanRL's key names), ``episodes.csv``, ``evaluations.csv`` (read by ``benchmarks/``), ``entropy.csv`` and
``checkpoint.pt``. A new run never reuses an existing directory; ``--resume`` continues one where its checkpoint left
off, dropping the log rows written after it. A run holds its directory's lock (:mod:`era_utils.locks`) until
:meth:`Run.close` or its process ends.

Settings are checked once per process: :func:`era_utils.command_line.parse_args` runs :func:`prepare_run`, and a
later ``prepare_run`` (or :func:`start_run`) of the object it returned, unchanged, takes that preparation over.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from era_utils.checkpoints import atomic_save, save_run_checkpoint
from era_utils.dependencies import AGENTS_INSTALL, require
from era_utils.envs import check_env_id
from era_utils.locks import DirectoryLock
from era_utils.resume import Resumption, checkpoint_owner, prepare_resume, read_config, resumed_settings
from era_utils.run_files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    ENTROPY_HEADER,
    ENTROPY_LOG,
    EPISODES_LOG,
    EVALUATIONS_LOG,
    RUN_LOGS,
    CSVLog,
)
from era_utils.settings import settings_json

require("tensorboard", AGENTS_INSTALL, "era_utils.runs (the agents' TensorBoard logs)")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402 - only after the check that tensorboard exists

__all__ = ["PreparedRun", "Run", "prepare_run", "start_run"]

ArgsT = TypeVar("ArgsT")

TRACK_INSTALL = 'pip install "era-policies[track]"'
"""What ``--track`` needs: wandb."""


def _existing_run_message(run_dir: Path) -> str:
    return (
        f"run directory {run_dir} already exists; nothing was changed. Continue that run with --resume {run_dir}, "
        "or start a new one with another --run-name"
    )


@dataclasses.dataclass
class PreparedRun:
    """A run checked in full by :func:`prepare_run`; :meth:`start` creates or changes its files.

    :param args: the run's settings (``run_name`` filled in; on resume the saved ones).
    :param resumption: the checked resume (holding the run's lock), ``None`` for a new run.
    """

    args: Any
    resumption: Resumption | None = None

    def start(self) -> tuple[Run, Any, dict[str, Any] | None]:
        """Create the new run's directory and config, or cut the resumed run's logs back and record its settings.

        :return: what :func:`start_run` returns.
        """
        args = self.args
        if self.resumption is None:
            run_dir = Path(args.log_dir) / args.run_name
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                run_dir.mkdir()
            except FileExistsError as err:
                raise FileExistsError(_existing_run_message(run_dir)) from err
            lock = DirectoryLock(run_dir, purpose="training").acquire()
            _write_config(run_dir, args)
            return Run(run_dir, args, lock=lock), args, None
        resumption = self.resumption
        try:
            resumption.apply()
            _write_config(resumption.run_dir, args)  # a raised --total-timesteps is what the next resume compares to
            run = Run(resumption.run_dir, args, resume_step=resumption.step, lock=resumption.lock)
        except BaseException:
            resumption.lock.release()
            raise
        return run, args, resumption.checkpoint


# Where parse_args leaves its preparation on the settings object it returns (not a dataclass field, so it is never
# saved, compared or copied by ``dataclasses.replace``), with the settings it was made for.
_PREPARED = "_era_prepared_run"


def prepare_run(args: Any, settings_resolved: bool = False, remember: bool = False) -> PreparedRun:
    """Check everything :meth:`PreparedRun.start` needs, creating and changing nothing (a resume takes the run's
    lock): ``args.check()``, that ``--env-id`` can be made here (:func:`era_utils.envs.check_env_id`), that
    ``--track`` has wandb, the run directory, and for a resume its config, checkpoint and logs.

    An agent calls it once, builds its env and networks from the returned ``.args`` (``run_name`` filled in), then
    calls ``.start()``. Given the object :func:`~era_utils.command_line.parse_args` returned, unchanged, it returns
    the preparation made there instead of checking again.

    :param args: the parsed ``Args`` (an :class:`~era_utils.settings.ExperimentArgs`).
    :param settings_resolved: ``args`` already holds a resumed run's settings (the command line was parsed with them).
    :param remember: keep the preparation on ``args`` for the next ``prepare_run(args)`` (as long as ``args`` is not
        changed meanwhile); it goes, and a resume's lock with it, when ``args`` does.
    :raises ValueError: bad settings, or flags that differ from the resumed run's.
    :raises MissingDependencyError: the environment's extra, or wandb for ``--track``, is missing.
    :raises FileExistsError: a new run whose directory exists (nothing in it is touched).
    :raises FileNotFoundError: ``--resume`` of a directory without ``config.json`` or ``checkpoint.pt``.
    :raises CheckpointError: an empty, truncated or foreign checkpoint or log (the message names the file).
    :raises DirectoryLockedError: another process is using the resumed run.
    """
    remembered = vars(args).pop(_PREPARED, None)
    if remembered is not None:
        settings_then, prepared = remembered
        if settings_json(args) == settings_then:
            return prepared
        if prepared.resumption is not None:  # changed since parsing: prepared for nothing
            prepared.resumption.lock.release()
    if args.resume is not None and not settings_resolved:
        settings = resumed_settings(args, read_config(Path(args.resume)))
    else:
        settings = dataclasses.replace(args)  # a copy, so that changing ``args`` later leaves the run's as checked
    settings.check()
    check_env_id(settings.env_id)  # the family's extra imports and the id is registered, without building the env
    if settings.track:
        require("wandb", TRACK_INSTALL, "--track (logging to Weights & Biases)")
    if settings.resume is None:
        settings = dataclasses.replace(settings, run_name=settings.resolved_run_name())
        run_dir = Path(settings.log_dir) / settings.run_name
        if run_dir.exists():
            raise FileExistsError(_existing_run_message(run_dir))
        prepared = PreparedRun(settings)
    else:
        prepared = PreparedRun(settings, prepare_resume(settings))
    if remember:
        vars(args)[_PREPARED] = (settings_json(args), prepared)
    return prepared


def start_run(args: ArgsT) -> tuple[Run, ArgsT, dict[str, Any] | None]:
    """Create a new run directory, or reopen the one ``args.resume`` names.

    New run: creates ``{log_dir}/{run_name}/`` (refusing an existing one) and writes ``config.json``.
    Resume: reads that run's ``config.json`` (its settings win; only --total-timesteps, --progress and --cuda may
    differ), loads ``checkpoint.pt`` (refusing one another script or other settings wrote), and only once all of that
    is sound drops the CSV rows with ``global_step`` beyond the checkpoint's (TensorBoard: ``purge_step``) and appends
    from there.

    :param args: the parsed ``Args`` (an :class:`~era_utils.settings.ExperimentArgs`); checked by
        :func:`prepare_run` unless :func:`~era_utils.command_line.parse_args` already did.
    :return: the :class:`Run`, the run's settings (``run_name`` filled in; on resume the saved ones) and the
        checkpoint's state dict (``None`` for a new run).
    :raises: what :func:`prepare_run` raises; nothing is changed then.
    """
    return prepare_run(args).start()


def _write_config(run_dir: Path, args: Any) -> None:
    text = json.dumps(dataclasses.asdict(args), indent=2, default=str)
    atomic_save(run_dir / CONFIG_FILE, lambda file: file.write(text.encode()))


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
        self._owner = checkpoint_owner(args)
        self.start_step = resume_step or 0
        config = dataclasses.asdict(args)
        if args.track:
            wandb = require("wandb", TRACK_INSTALL, "--track (logging to Weights & Biases)")
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
        """Flush the logs, then atomically write ``state`` to ``checkpoint.pt`` with what wrote it (the script and the
        run's settings; see :mod:`era_utils.checkpoints`).

        :param state: what the agent needs to continue, with an integer ``"global_step"``; typically
            ``state_dict()`` of networks and optimisers, ``capture_rng_state()``, normaliser statistics.
        :return: the checkpoint's path.
        """
        for log in self._logs.values():
            log.flush()
        self.writer.flush()
        return save_run_checkpoint(self.run_dir / CHECKPOINT_FILE, state, owner=self._owner)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self.writer.close()
        if self._lock is not None:
            self._lock.release()
