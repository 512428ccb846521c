"""Overhead of ERA in one SAC training update (the paper reports "< 7 %").

Times ``SACUpdate`` from ``agents/sac_era.py`` (critic step, Polyak averaging, actor step, then delta or alpha) for
the ERA actor (truncated normal with the ERA std) and for its ``--no-era`` twin (tanh-Gaussian SAC head with an
auto-tuned temperature): identical networks, the same random batch, one process. The two alternate in short blocks so
that drifts in machine speed hit both alike; the ratio of each pair of blocks gives the spread.

    python -m benchmarks.overhead                                    # CPU (and CUDA when present), eager
    python -m benchmarks.overhead --modes eager compile --devices cuda

Results go to ``benchmarks/results/overhead/`` (``overhead.csv``, ``overhead.md`` with command, commit, hardware).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import pandas as pd
import torch
import tyro
from gymnasium import spaces
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from benchmarks.agent_scripts import load_agent
from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, git_commit, hardware_description, utc_now

SHAPES: dict[str, tuple[int, int]] = {
    "halfcheetah": (17, 6),  # HalfCheetah-v5: observation and action dimensions
    "humanoid": (348, 17),  # Humanoid-v5
    "h1hand": (151, 61),  # HumanoidBench h1hand-*-v0
}


@dataclass
class Args:
    devices: tuple[Literal["cpu", "cuda"], ...] = ("cpu", "cuda")
    """devices to measure (cuda is skipped when absent)"""
    modes: tuple[Literal["eager", "compile"], ...] = ("eager",)
    """eager, and/or the critic and actor losses under torch.compile (optimiser steps stay eager)"""
    shapes: tuple[str, ...] = ("halfcheetah", "h1hand")
    """observation/action sizes to measure, from SHAPES"""
    hidden_dim: int = 512
    """width of the networks (the released recipe: 512)"""
    batch_size: int = 256
    """minibatch size"""
    rounds: int = 20
    """alternating measurement rounds (one ratio per round)"""
    updates_per_round: int = 10
    """updates per variant per round"""
    warmup_updates: int = 10
    """untimed updates per variant first (compilation happens here)"""
    threads: int | None = None
    """torch CPU threads (None: torch's default)"""
    seed: int = 0
    """seed of the networks and the batch"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "overhead"
    """where overhead.csv and overhead.md go"""


def make_update(
    sac_era: ModuleType, era: bool, obs_dim: int, action_dim: int, args: Args, device: torch.device, mode: str
) -> Callable[[ReplayBufferSamples], dict[str, torch.Tensor]]:
    """The agent's ``SACUpdate`` for ERA or its twin, on Box spaces of the given sizes."""
    torch.manual_seed(args.seed)
    agent_args = sac_era.Args(era=era, hidden_dim=args.hidden_dim, batch_size=args.batch_size)
    observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
    envs = _SpacesOnly(observation_space, action_space)
    update = sac_era.SACUpdate(agent_args, sac_era.make_policy(agent_args, envs, device))
    update.policy.set_training_mode(True)
    if mode == "compile":
        update.critic_loss = torch.compile(update.critic_loss)
        update.actor_loss = torch.compile(update.actor_loss)
    return update


@dataclass
class _SpacesOnly:
    """What ``make_policy`` reads from a vector env."""

    single_observation_space: spaces.Box
    single_action_space: spaces.Box


def random_batch(
    obs_dim: int, action_dim: int, batch_size: int, device: torch.device, seed: int
) -> ReplayBufferSamples:
    """A fixed replay batch: Gaussian observations and rewards, actions in [-1, 1], no terminations."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    actions = torch.rand(batch_size, action_dim, generator=generator).to(device) * 2 - 1
    zeros = torch.zeros(batch_size, 1, device=device)
    observations, next_observations = normal(batch_size, obs_dim), normal(batch_size, obs_dim)
    return ReplayBufferSamples(observations, actions, next_observations, zeros, normal(batch_size, 1))


def time_block(update: Callable, batch: ReplayBufferSamples, n: int, device: torch.device) -> float:
    """Seconds per update over ``n`` updates (CUDA work is waited for)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        update(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / n


def measure(sac_era: ModuleType, device: torch.device, mode: str, shape: str, args: Args) -> dict[str, object]:
    """Alternate ERA and SAC blocks; per-update times (median) and the ERA/SAC ratio per round."""
    obs_dim, action_dim = SHAPES[shape]
    batch = random_batch(obs_dim, action_dim, args.batch_size, device, args.seed)
    updates = {era: make_update(sac_era, era, obs_dim, action_dim, args, device, mode) for era in (False, True)}
    for update in updates.values():
        time_block(update, batch, args.warmup_updates, device)
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_index in range(args.rounds):
        order = (False, True) if round_index % 2 == 0 else (True, False)
        for era in order:
            times[era].append(time_block(updates[era], batch, args.updates_per_round, device))
    ratios = np.array(times[True]) / np.array(times[False])
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "mode": mode,
        "shape": f"{shape} ({obs_dim}/{action_dim})",
        "sac_ms": 1e3 * float(np.median(times[False])),
        "era_ms": 1e3 * float(np.median(times[True])),
        "ratio_median": float(q50),
        "ratio_q25": float(q25),
        "ratio_q75": float(q75),
    }


def write_results(rows: list[dict[str, object]], args: Args, command: str) -> None:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.results_dir / "overhead.csv", index=False)
    table = markdown_table(
        ["Device", "Mode", "Obs/act dims", "SAC (tanh-Gaussian) ms", "SAC-ERA ms", "ERA / SAC (median [IQR])"],
        [
            [
                str(row["device"]),
                str(row["mode"]),
                str(row["shape"]),
                f"{row['sac_ms']:.2f}",
                f"{row['era_ms']:.2f}",
                f"{row['ratio_median']:.3f} [{row['ratio_q25']:.3f}, {row['ratio_q75']:.3f}]",
            ]
            for row in rows
        ],
    )
    text = "\n".join(
        [
            "# Overhead of ERA in one SAC update",
            "",
            f"- **Command:** `{command}`",
            f"- **Git commit:** `{git_commit()}`",
            f"- **Date:** {utc_now():%Y-%m-%d %H:%M} UTC",
            f"- **Hardware:** {hardware_description()}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} CPU threads",
            f"- **Setup:** {args.hidden_dim}-wide networks (2 hidden layers, LayerNorm critics), batch "
            f"{args.batch_size}; {args.rounds} alternating rounds of {args.updates_per_round} updates per variant "
            f"after {args.warmup_updates} warm-up updates. One update = critic step, Polyak averaging, actor step, "
            "then alpha (SAC) or the delta bookkeeping (ERA), exactly as in `agents/sac_era.py`.",
            "",
            table,
            "",
        ]
    )
    (args.results_dir / "overhead.md").write_text(text)
    print(text)


def main(args: Args) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    unknown = set(args.shapes) - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shapes {sorted(unknown)}; choose from {sorted(SHAPES)}")
    sac_era = load_agent("sac_era")
    devices = [torch.device(d) for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    rows = [
        measure(sac_era, device, mode, shape, args)
        for device in devices
        for mode in args.modes
        for shape in args.shapes
    ]
    command = " ".join(["python -m benchmarks.overhead", *map(shlex.quote, sys.argv[1:])])
    write_results(rows, args, command)


if __name__ == "__main__":
    main(tyro.cli(Args))
