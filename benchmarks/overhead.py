"""Overhead of ERA in one SAC training update (the paper reports "< 7 %").

Times the agent's own update (``make_update(build_agent(...))`` from ``agents/sac_era.py``: critic step, Polyak
averaging, actor step, then delta or alpha; compiled or captured in a CUDA graph as the agent's flags say) for
the ERA actor (truncated normal with the ERA std) and for its ``--no-era`` twin (tanh-Gaussian SAC head with an
auto-tuned temperature): identical networks, the same random batch, one process. The two alternate in short blocks so
that drifts in machine speed hit both alike; the ratio of each pair of blocks gives the spread.

    python -m benchmarks.overhead                                    # CPU (and CUDA when present), eager
    python -m benchmarks.overhead --devices cuda --modes eager compile cudagraphs \\
        --results-dir benchmarks/results/overhead-cuda     # without a GPU every row says "not measured"

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

from benchmarks.agent_scripts import load_agent
from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, git_commit, hardware_description, utc_now
from era_utils.replay import ReplayBatch

SHAPES: dict[str, tuple[int, int]] = {
    "halfcheetah": (17, 6),  # HalfCheetah-v5: observation and action dimensions
    "humanoid": (348, 17),  # Humanoid-v5
    "h1hand": (151, 61),  # HumanoidBench h1hand-*-v0
}


Mode = Literal["eager", "compile", "cudagraphs"]


@dataclass
class Args:
    devices: tuple[Literal["cpu", "cuda"], ...] = ("cpu", "cuda")
    """devices to measure; without a CUDA device the cuda rows are written as not measured"""
    modes: tuple[Mode, ...] = ("eager",)
    """eager; compile (the agent's --compile: torch.compile of the whole update); cudagraphs (the agent's
    --cudagraphs: the whole update captured in a CUDA graph; CUDA only)"""
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
    """untimed updates per variant first (compilation and graph capture happen here)"""
    threads: int | None = None
    """torch CPU threads (None: torch's default)"""
    seed: int = 0
    """seed of the networks and the batch"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "overhead"
    """where overhead.csv and overhead.md go"""


def build_update(
    sac_era: ModuleType, era: bool, obs_dim: int, action_dim: int, args: Args, device: torch.device, mode: Mode
) -> tuple[Callable[[ReplayBatch], dict[str, torch.Tensor]], torch.nn.Module]:
    """The agent's own update (``sac_era.make_update``) for ERA or its ``--no-era`` twin, and the actor it trains."""
    torch.manual_seed(args.seed)
    agent_args = sac_era.Args(
        era=era,
        hidden_dim=args.hidden_dim,
        batch_size=args.batch_size,
        compile=mode == "compile",
        cudagraphs=mode == "cudagraphs",
        cuda=device.type == "cuda",
    )
    agent = sac_era.build_agent(agent_args, obs_dim, action_dim, device)
    return sac_era.make_update(agent, agent_args), agent.actor


def random_batch(obs_dim: int, action_dim: int, batch_size: int, device: torch.device, seed: int) -> ReplayBatch:
    """A fixed replay batch: Gaussian observations and rewards, actions in [-1, 1], no terminations."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    return ReplayBatch(
        observations=normal(batch_size, obs_dim),
        actions=torch.rand(batch_size, action_dim, generator=generator).to(device) * 2 - 1,
        next_observations=normal(batch_size, obs_dim),
        rewards=normal(batch_size, 1),
        dones=torch.zeros(batch_size, 1, device=device),
    )


def time_block(update: Callable, batch: ReplayBatch, n: int, device: torch.device) -> float:
    """Seconds per update over ``n`` updates (CUDA work is waited for)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        update(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / n


def measure(sac_era: ModuleType, device: torch.device, mode: Mode, shape: str, args: Args) -> dict[str, object]:
    """Alternate ERA and SAC blocks; per-update times (median) and the ERA/SAC ratio per round."""
    obs_dim, action_dim = SHAPES[shape]
    batch = random_batch(obs_dim, action_dim, args.batch_size, device, args.seed)
    updates = {era: build_update(sac_era, era, obs_dim, action_dim, args, device, mode)[0] for era in (False, True)}
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


def not_measured(device: str, mode: Mode, shape: str, reason: str) -> dict[str, object]:
    """A row that says why it has no numbers (never an estimate)."""
    obs_dim, action_dim = SHAPES[shape]
    row: dict[str, object] = {"device": device, "mode": mode, "shape": f"{shape} ({obs_dim}/{action_dim})"}
    return {**row, "sac_ms": np.nan, "era_ms": np.nan, "ratio_median": np.nan, "ratio_q25": np.nan,
            "ratio_q75": np.nan, "note": f"not measured ({reason})"}  # fmt: skip


def write_results(rows: list[dict[str, object]], args: Args, command: str) -> None:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.results_dir / "overhead.csv", index=False)
    table = markdown_table(
        ["Device", "Mode", "Obs/act dims", "SAC (tanh-Gaussian) ms", "SAC-ERA ms", "ERA / SAC (median [IQR])"],
        [[str(row["device"]), str(row["mode"]), str(row["shape"]), *_timings(row)] for row in rows],
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


def _timings(row: dict[str, object]) -> list[str]:
    if row.get("note"):
        return [str(row["note"])] * 3
    ratio = f"{row['ratio_median']:.3f} [{row['ratio_q25']:.3f}, {row['ratio_q75']:.3f}]"
    return [f"{row['sac_ms']:.2f}", f"{row['era_ms']:.2f}", ratio]


def main(args: Args) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    unknown = set(args.shapes) - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shapes {sorted(unknown)}; choose from {sorted(SHAPES)}")
    sac_era = load_agent("sac_era")
    rows = []
    for device_name in args.devices:
        for mode in args.modes:
            for shape in args.shapes:
                if device_name == "cuda" and not torch.cuda.is_available():
                    rows.append(not_measured("cuda", mode, shape, "no CUDA device on this machine"))
                elif mode == "cudagraphs" and device_name != "cuda":
                    continue  # CUDA graphs exist only on CUDA
                else:
                    rows.append(measure(sac_era, torch.device(device_name), mode, shape, args))
    command = " ".join(["python -m benchmarks.overhead", *map(shlex.quote, sys.argv[1:])])
    write_results(rows, args, command)


if __name__ == "__main__":
    main(tyro.cli(Args))
