"""What the many-seed agents (``agents/sac_era_seeds.py``, ``agents/ppo_era_seeds.py``) share: the ``--num-seeds`` /
``--run-dirs`` options with each seed's own settings, and the seeds' optimiser states stacked along a leading seed
axis and sliced back into a single-seed optimiser's ``state_dict`` (for that seed's checkpoint).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import optim

from era_utils.settings import check_at_least

__all__ = ["SeedsArgs", "seed_optimizer_state", "stack_optimizer_states"]

SeedsArgsT = TypeVar("SeedsArgsT", bound="SeedsArgs")


@dataclasses.dataclass
class SeedsArgs:
    """The options of a many-seed agent, mixed into its single-seed agent's ``Args`` (``class Args(sac_era.Args,
    SeedsArgs)``), which supplies ``seed``, ``log_dir``, ``run_name``, ``env_id``, ``exp_name`` and ``resume``."""

    num_seeds: int = 3
    """seeds trained together: --seed, --seed + 1, ..., --seed + num_seeds - 1 (1: the single-seed agent's own run)"""
    run_dirs: str | None = None
    """the seeds' run directories, `{seed}` standing for each seed's number (instead of --log-dir and --run-name),
    e.g. `runs/walker__{seed}`; default `{log_dir}/{env_id}__{exp_name}__{seed}__{unix time}`. --resume takes the
    first seed's run directory"""

    def check_seeds(self, single_agent: str, unsupported: Iterable[tuple[str, bool, str]] = ()) -> None:
        """Reject seed options that cannot work, naming the flag.

        :param single_agent: the single-seed script, named in the messages (``"sac_era.py"``).
        :param unsupported: ``(flag, given, why)`` for each option the stacked agent does not support: refused when
            ``given`` and ``--num-seeds > 1``.
        :raises ValueError: naming the flag.
        """
        check_at_least("--num-seeds", self.num_seeds, 1)
        if self.num_seeds == 1:
            if self.run_dirs is not None:
                raise ValueError("--run-dirs names the directories of several seeds: give --num-seeds > 1")
            return
        for flag, given, why in unsupported:
            if given:
                raise ValueError(f"{flag} is not supported with --num-seeds > 1 ({why}); run {single_agent} per seed")
        if self.run_dirs is not None and "{seed}" not in self.run_dirs:
            raise ValueError(f"--run-dirs must contain '{{seed}}' (one directory per seed), got {self.run_dirs!r}")
        # A seed's own settings (and a resumed run's) have both, the directory being the template's for that seed.
        if self.run_name is not None and (
            self.run_dirs is None
            or Path(self.run_dirs.format(seed=self.seed)).resolve() != (Path(self.log_dir) / self.run_name).resolve()
        ):
            raise ValueError("--run-name names one run; with --num-seeds > 1 give --run-dirs with '{seed}' in it")

    def for_seeds(self: SeedsArgsT) -> list[SeedsArgsT]:
        """The settings of each seed: its own seed and run directory, as its single-seed run would have them (and the
        run-directory template, so that a resumed run finds its seeds).

        :raises ValueError: ``--resume`` of another directory than the first seed's.
        """
        template = self.run_dirs or str(
            Path(self.log_dir) / f"{self.env_id}__{self.exp_name}__{{seed}}__{int(time.time())}"
        )
        seeds = []
        for seed in range(self.seed, self.seed + self.num_seeds):
            run_dir = Path(template.format(seed=seed))
            resume = None if self.resume is None else str(run_dir)
            options = dict(log_dir=str(run_dir.parent), run_name=run_dir.name, run_dirs=template, resume=resume)
            seeds.append(dataclasses.replace(self, seed=seed, **options))
        if self.resume is not None and Path(seeds[0].resume).resolve() != Path(self.resume).resolve():
            raise ValueError(f"--resume takes the first seed's run directory, {seeds[0].resume}, got {self.resume}")
        return seeds


def stack_optimizer_states(optimizers: list[optim.Optimizer]) -> dict[str, Any]:
    """The seeds' optimiser states stacked along a leading seed axis (the step counts, equal for all seeds since
    they are updated together, are the first seed's)."""
    states = [optimizer.state_dict() for optimizer in optimizers]
    stacked = {
        index: {
            key: torch.stack([state["state"][index][key] for state in states]) if key != "step" else value
            for key, value in param_state.items()
        }
        for index, param_state in states[0]["state"].items()
    }
    return {"state": stacked, "param_groups": states[0]["param_groups"]}


def seed_optimizer_state(optimizer: optim.Optimizer, index: int) -> dict[str, Any]:
    """Seed ``index``'s slice of a stacked optimiser's state, as its single-seed optimiser's ``state_dict`` (copies,
    not views: a view would carry, and a checkpoint would save, every seed's moments)."""
    state = optimizer.state_dict()
    sliced = {
        i: {key: value[index].clone() if key != "step" else value for key, value in param_state.items()}
        for i, param_state in state["state"].items()
    }
    return {"state": sliced, "param_groups": state["param_groups"]}
