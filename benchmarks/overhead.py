"""Overhead of ERA, counted and timed: aten operators per update and per acting step, and the time of a SAC update.

**Operator counts** (``ops.csv``, ``ops.md``): for the agents (``agents/sac_era.py``, ``agents/ppo_era.py``: ERA
against ``--no-era``) and SB3 (``SAC``/``PPO`` with the ERA policy against stock ``MlpPolicy``), one update and one
acting step with batch 1 (the units of :mod:`benchmarks.workloads`), eager (aten operator calls) and compiled (nodes
of the graphs ``torch.compile`` runs in a steady-state call), with how many have float64 outputs
(:mod:`benchmarks.op_count`). Targets: no float64 operator on the compiled path, and ERA at most 1.5x its twin's
operators per acting step.

**Timing** (``overhead.csv``, ``overhead.md``): the agent's own update (``make_update(build_agent(...))`` from
``agents/sac_era.py``: critic step, Polyak averaging, actor step, then delta or alpha; compiled or captured in a CUDA
graph as the agent's flags say) for the ERA actor and for its ``--no-era`` twin: identical networks, the same random
batch, one process. The two alternate in short blocks so that drifts in machine speed hit both alike; the ratio of
each pair of blocks gives the spread.

    python -m benchmarks.overhead                                    # CPU (and CUDA when present), eager
    python -m benchmarks.overhead --modes eager compile --no-timing  # operator counts only, eager and compiled
    python -m benchmarks.overhead --devices cuda --modes eager compile cudagraphs \\
        --results-dir benchmarks/results/overhead-cuda     # without a GPU every row says "not measured"

Results go to ``benchmarks/results/overhead/`` (with command, commit, hardware).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import tyro

from benchmarks import workloads
from benchmarks.aggregate import markdown_table
from benchmarks.op_count import OpCount, count_compiled, count_eager
from benchmarks.provenance import REPO_ROOT, provenance_header, refuse_to_overwrite
from benchmarks.workloads import Mode, Sizes, random_batch, sac_update
from era_utils.replay import ReplayBatch

SHAPES: dict[str, tuple[int, int]] = {
    "halfcheetah": (17, 6),  # HalfCheetah-v5: observation and action dimensions
    "humanoid": (348, 17),  # Humanoid-v5
    "h1hand": (151, 61),  # HumanoidBench h1hand-*-v0
}


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
    """where the CSV and Markdown files go"""
    overwrite: bool = False
    """replace the results already in --results-dir (without it, a run into a directory holding them stops)"""
    counts: bool = True
    """count aten operators and float64 outputs per update and acting step (ops.csv, ops.md); modes eager and
    compile (a CUDA graph replays what eager or compiled code captured)"""
    count_shape: str = "halfcheetah"
    """observation/action sizes of the counts, from SHAPES (SAC at --hidden-dim and --batch-size, PPO 2x64, 64)"""
    families: tuple[str, ...] = workloads.FAMILIES
    """what to count, each ERA against its twin"""
    timing: bool = True
    """time the SAC update, ERA against --no-era (overhead.csv, overhead.md)"""


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


def measure(device: torch.device, mode: Mode, shape: str, args: Args) -> dict[str, object]:
    """Alternate ERA and SAC blocks; per-update times (median) and the ERA/SAC ratio per round."""
    obs_dim, action_dim = SHAPES[shape]
    batch = random_batch(obs_dim, action_dim, args.batch_size, device, args.seed)
    sizes = Sizes(obs_dim, action_dim, sac_hidden_dim=args.hidden_dim, sac_batch_size=args.batch_size)
    updates = {era: sac_update(era, sizes, device, mode, args.seed)[0] for era in (False, True)}
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
        "device": _device_name(device),
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


def write_results(rows: list[dict[str, object]], args: Args, command: str) -> str:
    """``overhead.csv`` and ``overhead.md`` (provenance and the timing table); returns the Markdown."""
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
            *provenance_header(command, f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"),
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
    return text


def _timings(row: dict[str, object]) -> list[str]:
    if row.get("note"):
        return [str(row["note"])] * 3
    ratio = f"{row['ratio_median']:.3f} [{row['ratio_q25']:.3f}, {row['ratio_q75']:.3f}]"
    return [f"{row['sac_ms']:.2f}", f"{row['era_ms']:.2f}", ratio]


def count_rows(device: torch.device, mode: Literal["eager", "compile"], args: Args) -> list[dict[str, object]]:
    """Operators per update and per acting step of every family, ERA and twin side by side."""
    sizes = Sizes(*SHAPES[args.count_shape], sac_hidden_dim=args.hidden_dim, sac_batch_size=args.batch_size)
    rows = []
    for family in args.families:
        counts: dict[tuple[bool, str], OpCount] = {}
        for era in (True, False):
            for unit_name, unit in workloads.units(family, era, sizes, device).items():
                counts[era, unit_name] = (
                    count_eager(unit(lambda fn: fn), warmup=2) if mode == "eager" else count_compiled(unit)
                )
        for unit_name in ("update", "act"):
            era_count, twin_count = counts[True, unit_name], counts[False, unit_name]
            rows.append({"device": _device_name(device), "mode": mode, "family": family, "unit": unit_name,
                         "era_ops": era_count.ops, "twin_ops": twin_count.ops,
                         "ops_ratio": era_count.ops / twin_count.ops, "era_float64": era_count.float64,
                         "twin_float64": twin_count.float64, "era_graphs": era_count.graphs,
                         "twin_graphs": twin_count.graphs})  # fmt: skip
            print(f"{family} {unit_name} [{mode}]: ERA {era_count}, twin {twin_count}", flush=True)
    return rows


def not_counted(device: str, mode: str, args: Args, reason: str) -> list[dict[str, object]]:
    """Rows that say why they have no counts (never an estimate)."""
    return [{"device": device, "mode": mode, "family": family, "unit": unit, "note": f"not measured ({reason})"}
            for family in args.families for unit in ("update", "act")]  # fmt: skip


ACT_RATIO_TARGET = 1.5
"""ERA's operators per acting step at most this multiple of its twin's (issue target)."""


def write_counts(rows: list[dict[str, object]], args: Args, command: str) -> str:
    """``ops.csv`` (one row per device, mode, family and unit) and ``ops.md`` (provenance, targets, the table)."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.results_dir / "ops.csv", index=False)
    table = markdown_table(
        [
            "Device",
            "Mode",
            "ERA vs twin",
            "Unit",
            "ERA ops",
            "Twin ops",
            "ERA / twin",
            "ERA float64",
            "Twin float64",
            "Graphs (ERA / twin)",
            "Target",
        ],
        [
            [str(row["device"]), str(row["mode"]), str(row["family"]), _unit_label(row), *_count_cells(row)]
            for row in rows
        ],
    )
    obs_dim, action_dim = SHAPES[args.count_shape]
    text = "\n".join(
        [
            "# ERA's operators per update and per acting step",
            "",
            *provenance_header(command, f"torch {torch.__version__}"),
            f"- **Setup:** {args.count_shape} sizes ({obs_dim}/{action_dim}); SAC {args.hidden_dim}-wide, batch "
            f"{args.batch_size}; PPO 2x64, minibatch 64; acting with batch 1. Twins: the agents' `--no-era`, stock "
            "SB3 (`MlpPolicy`). Eager: aten operator calls of one call after two warm-up calls (forward, backward, "
            "optimiser). Compiled: nodes of the AOTAutograd graphs (forward and backward) that one steady-state "
            "call of `torch.compile` executes, applied where the agent's `--compile` applies it (SAC: the whole "
            "update; PPO: the minibatch loss; the acting step and SB3's `train` as a whole). float64: operators with "
            "a float64 output.",
            f"- **Targets:** no float64 operator compiled; ERA / twin at most {ACT_RATIO_TARGET}x per acting step.",
            "",
            table,
            "",
        ]
    )
    (args.results_dir / "ops.md").write_text(text)
    return text


def _unit_label(row: dict[str, object]) -> str:
    return "update" if row["unit"] == "update" else "acting step (batch 1)"


def _count_cells(row: dict[str, object]) -> list[str]:
    if row.get("note"):
        return [str(row["note"]), *["-"] * 6]
    targets = []
    if row["mode"] != "eager":
        targets.append("met: no float64" if row["era_float64"] == 0 else "missed: float64 ops")
    if row["unit"] == "act":
        met = row["ops_ratio"] <= ACT_RATIO_TARGET
        targets.append(f"{'met' if met else 'missed'}: <= {ACT_RATIO_TARGET}x")
    graphs = "-" if row["mode"] == "eager" else f"{row['era_graphs']} / {row['twin_graphs']}"
    return [str(row["era_ops"]), str(row["twin_ops"]), f"{row['ops_ratio']:.2f}x", str(row["era_float64"]),
            str(row["twin_float64"]), graphs, "; ".join(targets) or "-"]  # fmt: skip


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def main(args: Args) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    unknown = set(args.shapes) - set(SHAPES) | ({args.count_shape} - set(SHAPES))
    if unknown:
        raise ValueError(f"unknown shapes {sorted(unknown)} (--shapes / --count-shape); choose from {sorted(SHAPES)}")
    unknown_families = set(args.families) - set(workloads.FAMILIES)
    if unknown_families:
        raise ValueError(f"unknown --families {sorted(unknown_families)}; choose from {workloads.FAMILIES}")
    command = " ".join(["python -m benchmarks.overhead", *map(shlex.quote, sys.argv[1:])])
    outputs = (["ops.csv", "ops.md"] if args.counts else []) + (["overhead.csv", "overhead.md"] if args.timing else [])
    refuse_to_overwrite(args.results_dir, outputs, args.overwrite)
    no_cuda = "no CUDA device on this machine"
    if args.counts:
        count_table = []
        for device_name in args.devices:
            for mode in (mode for mode in args.modes if mode != "cudagraphs"):  # a CUDA graph replays these ops
                if device_name == "cuda" and not torch.cuda.is_available():
                    count_table.extend(not_counted("cuda", mode, args, no_cuda))
                else:
                    count_table.extend(count_rows(torch.device(device_name), mode, args))
                write_counts(count_table, args, command)  # after every block: a run stopped early keeps its rows
        print(write_counts(count_table, args, command))
    if args.timing:
        rows = []
        for device_name in args.devices:
            for mode in args.modes:
                for shape in args.shapes:
                    if device_name == "cuda" and not torch.cuda.is_available():
                        rows.append(not_measured("cuda", mode, shape, no_cuda))
                    elif mode == "cudagraphs" and device_name != "cuda":
                        continue  # CUDA graphs exist only on CUDA
                    else:
                        rows.append(measure(torch.device(device_name), mode, shape, args))
                    write_results(rows, args, command)  # after every row: a run stopped early keeps its rows
        print(write_results(rows, args, command))


if __name__ == "__main__":
    main(tyro.cli(Args))
