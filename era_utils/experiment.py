"""The run API of the single-file agents in one import (``from era_utils.experiment import ...``).

The pieces live in :mod:`era_utils.runs` (command line, run directory, logs, resume, signals, RNG states),
:mod:`era_utils.evaluation` (evaluation, SB3 policy files, observation statistics) and :mod:`era_utils.checkpoints`
(atomic writes, checked loading). Needs the ``agents`` extra: ``pip install "era-policies[agents]"``.
"""

from era_utils.checkpoints import CheckpointError
from era_utils.evaluation import ObservationNormalizer, evaluate, load_policy, save_policy
from era_utils.runs import (
    ENTROPY_HEADER,
    EPISODES_HEADER,
    EVALUATIONS_HEADER,
    CSVLog,
    ExperimentArgs,
    Run,
    StopOnSignal,
    capture_rng_state,
    check_at_least,
    parse_args,
    restore_rng_state,
    seed_everything,
    select_device,
    start_run,
)

__all__ = [
    "ENTROPY_HEADER",
    "EPISODES_HEADER",
    "EVALUATIONS_HEADER",
    "CSVLog",
    "CheckpointError",
    "ExperimentArgs",
    "ObservationNormalizer",
    "Run",
    "StopOnSignal",
    "capture_rng_state",
    "check_at_least",
    "evaluate",
    "load_policy",
    "parse_args",
    "restore_rng_state",
    "save_policy",
    "seed_everything",
    "select_device",
    "start_run",
]
