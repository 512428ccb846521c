"""The files of an agent's run directory, defined once: their names, the CSV logs' columns, how a CSV log is written
and the one strict rule by which it is read back.

This is the contract between the agents (:mod:`era_utils.runs` writes, and on ``--resume`` rereads, the logs) and the
benchmark aggregation (:mod:`benchmarks.aggregate` reads them). Plain Python (no torch, TensorBoard or pandas), so that
the aggregation imports it cheaply.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "ENTROPY_HEADER",
    "ENTROPY_LOG",
    "EPISODES_HEADER",
    "EPISODES_LOG",
    "EVALUATIONS_HEADER",
    "EVALUATIONS_LOG",
    "POLICY_FILE",
    "POLICY_META_FILE",
    "POLICY_OBS_NORM_FILE",
    "RUN_LOGS",
    "CSVLog",
    "RowProblem",
    "RunLog",
    "StrictRows",
    "read_strict_rows",
]

CONFIG_FILE = "config.json"
"""The run's settings (``dataclasses.asdict`` of the agent's ``Args``); ``--resume`` reads them back."""
CHECKPOINT_FILE = "checkpoint.pt"
"""The training checkpoint that ``--resume`` continues from (:mod:`era_utils.checkpoints`)."""
POLICY_FILE = "policy.pt"
"""The SB3 policy that ``--save-model`` writes (``Policy.load`` reads it; so does ``agents/evaluate.py``)."""
POLICY_META_FILE = "checkpoint.json"
"""Beside :data:`POLICY_FILE`: the policy's class, environment and step (:func:`era_utils.evaluation.save_policy`)."""
POLICY_OBS_NORM_FILE = "obs_normalizer.npz"
"""Beside :data:`POLICY_FILE`: the observation statistics of a policy trained on normalised observations."""

EPISODES_HEADER = ("global_step", "episodic_return", "episodic_length")
"""Columns of ``episodes.csv``: one row per finished training episode."""
EVALUATIONS_HEADER = ("global_step", "mean_return", "std_return", "num_episodes")
"""Columns of ``evaluations.csv``: one row per deterministic evaluation."""
ENTROPY_HEADER = (
    "global_step",
    "target_entropy",
    "activation_target",
    "gaussian_entropy_min",
    "gaussian_entropy_mean",
    "bounded_entropy_mean",
    "delta",
)
"""Columns of ``entropy.csv``: the entropy floor and the entropy each logged batch realised (nats, summed over the
action dimensions): ``target_entropy`` H0 = D * target_entropy_per_dim, ``activation_target`` what the activation
enforces (H0 + D * delta), the minimum and mean Gaussian entropy over the batch's states, the mean entropy of the
bounded (truncated / squashed) action distribution, and delta. Empty cells where a quantity does not apply."""


@dataclass(frozen=True)
class RunLog:
    """One CSV log of a run: its file name and what a valid row of it is.

    :param name: file name inside the run directory.
    :param header: the exact columns; the first is ``global_step``.
    :param integer_columns: columns that hold integers.
    :param optional_columns: columns whose cells may be empty (a quantity that does not apply).
    :param repeated_steps: rows may share a ``global_step`` (episodes of parallel envs that end on the same step);
        otherwise every row's step is larger than the previous row's.
    """

    name: str
    header: tuple[str, ...]
    integer_columns: tuple[str, ...] = ("global_step",)
    optional_columns: tuple[str, ...] = ()
    repeated_steps: bool = False

    def read(self, run_dir: str | Path) -> StrictRows:
        """This log of ``run_dir`` read with :func:`read_strict_rows`."""
        return read_strict_rows(
            Path(run_dir) / self.name,
            self.header,
            integer_columns=self.integer_columns,
            optional_columns=self.optional_columns,
            repeated_steps=self.repeated_steps,
        )


EPISODES_LOG = RunLog("episodes.csv", EPISODES_HEADER, ("global_step", "episodic_length"), repeated_steps=True)
EVALUATIONS_LOG = RunLog("evaluations.csv", EVALUATIONS_HEADER, ("global_step", "num_episodes"))
ENTROPY_LOG = RunLog("entropy.csv", ENTROPY_HEADER, optional_columns=ENTROPY_HEADER[1:])
RUN_LOGS = (EPISODES_LOG, EVALUATIONS_LOG, ENTROPY_LOG)
"""Every CSV log a run writes."""


class CSVLog:
    """A CSV file written row by row with line buffering, so that an interrupted run keeps every row so far.

    :param path: the file.
    :param header: column names, written first unless appending to an existing file.
    :param append: continue an existing file (a resumed run).
    """

    def __init__(self, path: str | Path, header: Sequence[str], append: bool = False) -> None:
        exists = append and Path(path).exists()
        self._file = open(path, "a" if exists else "w", newline="", buffering=1)  # closed in close()
        self._writer = csv.writer(self._file)
        if not exists:
            self._writer.writerow(header)

    def write(self, row: Sequence[object]) -> None:
        self._writer.writerow(row)

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class RowProblem:
    """A line of a CSV file that cannot be trusted (line 0: the file as a whole)."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


@dataclass
class StrictRows:
    """What :func:`read_strict_rows` found: the valid rows, their lines as written, and every other line's problem.

    :param header_line: the header as written (``""`` when the file is missing, empty or has another header).
    :param rows: the parsed values of every valid row (``nan`` for an empty optional cell).
    :param lines: the text of each valid row, line break included (``rows[i]`` was parsed from ``lines[i]``).
    :param line_numbers: the 1-based line number of each valid row.
    :param problems: one per line that is not a valid row (line 0: the file as a whole); empty when all is sound.
    :param num_lines: the number of lines of the file, header included.
    :param cut_off: the last line has no line break: a write was interrupted (a kill, a full disk) in that row.
    """

    header_line: str = ""
    rows: list[list[float | int]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    num_lines: int = 0
    cut_off: bool = False


def read_strict_rows(
    path: str | Path,
    columns: Sequence[str],
    integer_columns: Sequence[str] = ("global_step",),
    optional_columns: Sequence[str] = (),
    repeated_steps: bool = False,
) -> StrictRows:
    """Read a numeric CSV log row by row, keeping only complete rows and naming every other line by its number.

    A row counts only if it ends with a line break (a row cut off while being written may look like a valid shorter
    number: ``2000,-10`` for ``2000,-1066.3,...``), has exactly the header's fields, every field parses (integers in
    ``integer_columns``) and is finite, and its ``global_step`` (when a column) is larger than the previous valid
    row's (or equal, with ``repeated_steps``).

    :param path: the CSV file.
    :param columns: the exact header.
    :param integer_columns: columns that hold integers.
    :param optional_columns: columns whose cells may be empty (read as NaN: a quantity that does not apply).
    :param repeated_steps: consecutive rows may share a ``global_step``.
    :return: the valid rows and the problems; a missing, unreadable or empty file, or another header, is one problem.
    """
    path = Path(path)
    result = StrictRows()
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        result.problems.append(RowProblem(path, 0, "missing"))
        return result
    except OSError as error:
        result.problems.append(RowProblem(path, 0, f"unreadable ({error})"))
        return result
    lines = text.splitlines(keepends=True)
    result.num_lines = len(lines)
    result.cut_off = bool(lines) and not lines[-1].endswith(("\n", "\r"))
    if not lines:
        result.problems.append(RowProblem(path, 0, "empty (not even a header)"))
        return result
    header = tuple(lines[0].rstrip("\r\n").split(","))
    if header != tuple(columns):
        result.problems.append(RowProblem(path, 1, f"header is {','.join(header)!r}, expected {','.join(columns)!r}"))
        return result
    result.header_line = lines[0]
    step_index = list(columns).index("global_step") if "global_step" in columns else None
    last_step = None
    for number, line in enumerate(lines[1:], start=2):
        values: list[float | int] = []
        fields = line.rstrip("\r\n").split(",")
        if not line.endswith(("\n", "\r")):
            reason = f"row {line!r} is cut off (no line break): the file was truncated while being written"
        elif len(fields) != len(columns):
            reason = f"{len(fields)} fields, expected {len(columns)} ({','.join(columns)})"
        else:
            values, reason = _parse_row(fields, columns, integer_columns, optional_columns)
        step = values[step_index] if reason is None and step_index is not None else None
        if step is not None and last_step is not None and (step < last_step if repeated_steps else step <= last_step):
            reason = f"global_step {step} does not come after the previous row's {last_step}"
        if reason is not None:
            result.problems.append(RowProblem(path, number, reason))
            continue
        result.rows.append(values)
        result.lines.append(line)
        result.line_numbers.append(number)
        last_step = step
    return result


def _parse_row(
    fields: Sequence[str], columns: Sequence[str], integer_columns: Sequence[str], optional_columns: Sequence[str]
) -> tuple[list[float | int], str | None]:
    values: list[float | int] = []
    for column, raw in zip(columns, fields, strict=True):
        if raw == "" and column in optional_columns:
            values.append(math.nan)
            continue
        try:
            value = int(raw) if column in integer_columns else float(raw)
        except ValueError:
            return values, f"{column} is {raw!r}, not {'an integer' if column in integer_columns else 'a number'}"
        if not math.isfinite(value):
            return values, f"{column} is {raw!r}, not a finite number"
        values.append(value)
    return values, None
