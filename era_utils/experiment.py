"""The run API of the single-file agents in one import (``from era_utils.experiment import ...``).

The pieces live in :mod:`era_utils.settings` (the shared flags and their checks), :mod:`era_utils.command_line`
(parsing), :mod:`era_utils.runs` (the run directory and its logs), :mod:`era_utils.resume` (``--resume``),
:mod:`era_utils.run_files` (the files' names and CSV format), :mod:`era_utils.signals`, :mod:`era_utils.rng`,
:mod:`era_utils.evaluation` (evaluation, SB3 policy files, observation statistics) and :mod:`era_utils.checkpoints`
(atomic writes, checked loading). Needs the ``agents`` extra: ``pip install "era-policies[agents]"``.
"""

from era_utils.checkpoints import CheckpointError
from era_utils.command_line import parse_args
from era_utils.evaluation import ObservationNormalizer, RunningMeanStd, evaluate, load_policy, save_policy
from era_utils.rng import capture_rng_state, restore_rng_state, seed_everything, select_device
from era_utils.run_files import ENTROPY_HEADER, EPISODES_HEADER, EVALUATIONS_HEADER, CSVLog
from era_utils.runs import PreparedRun, Run, prepare_run, start_run
from era_utils.settings import ExperimentArgs, check_at_least
from era_utils.signals import StopOnSignal

__all__ = [
    "ENTROPY_HEADER",
    "EPISODES_HEADER",
    "EVALUATIONS_HEADER",
    "CSVLog",
    "CheckpointError",
    "ExperimentArgs",
    "ObservationNormalizer",
    "PreparedRun",
    "Run",
    "RunningMeanStd",
    "StopOnSignal",
    "capture_rng_state",
    "check_at_least",
    "evaluate",
    "load_policy",
    "parse_args",
    "prepare_run",
    "restore_rng_state",
    "save_policy",
    "seed_everything",
    "select_device",
    "start_run",
]
