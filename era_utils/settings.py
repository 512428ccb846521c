"""The settings every agent shares (:class:`ExperimentArgs`) and the checks of their flags.

Every check names the flag as it is typed (``--total-timesteps``), and runs before anything is created.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ExperimentArgs", "check_at_least", "flag_name", "script_of", "settings_json"]


def flag_name(field: str) -> str:
    """The command-line flag of a settings field: ``total_timesteps`` -> ``--total-timesteps``."""
    return "--" + field.replace("_", "-")


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


def _check_log_dir(log_dir: str) -> None:
    """The nearest existing path of ``log_dir`` (itself or a parent) must be a directory."""
    for path in (Path(log_dir), *Path(log_dir).parents):
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"--log-dir {log_dir!r}: {path} is a file, not a directory")
            return


def settings_json(args: Any) -> dict[str, Any]:
    """A settings dataclass as ``config.json`` stores it (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(dataclasses.asdict(args), default=str))


def script_of(args: Any) -> str:
    """What wrote a run: the file defining the settings class, and the class (``"sac_era.py:Args"``)."""
    cls = type(args)
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return f"{Path(path).name if path else cls.__module__}:{cls.__qualname__}"


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
    """log to Weights & Biases (needs `pip install "era-policies[track]"`)"""
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

        Only the settings themselves: whether ``--env-id`` can be made on this machine is checked by
        :func:`era_utils.runs.prepare_run`, so that a documented command is valid wherever its extra is missing.

        :raises ValueError: e.g. ``"--total-timesteps must be an integer >= 1, got 0"``.
        """
        check_at_least("--total-timesteps", self.total_timesteps, 1)
        check_at_least("--num-envs", self.num_envs, 1)
        check_at_least("--eval-every", self.eval_every, 0)
        check_at_least("--eval-episodes", self.eval_episodes, 1)
        check_at_least("--checkpoint-every", self.checkpoint_every, 0)
        _check_run_name(self.run_name)
        _check_log_dir(self.log_dir)

    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.env_id}__{self.exp_name}__{self.seed}__{int(time.time())}"
