"""How much stacking seeds can save on this machine: the stacked SAC update of ``agents/sac_era_seeds.py`` against N
single-seed updates of ``agents/sac_era.py``, in process, and the ceiling that the cost per operator call puts on it.

A stacked update runs each operator once for N seeds. At best it saves the fixed part of every call (Python, dispatch,
kernel launch), never the arithmetic, which grows N-fold. Timing the single-seed update at the network and batch of
interest (``T``) and again with the same operators on tiny tensors (``--tiny``: width and batch; ``T_o``, almost all
fixed cost) bounds the gain of stacking N seeds:

    speed-up <= N T / (T_o + N (T - T_o))

(the stacked update pays the fixed cost once and the arithmetic N times). The stacked update's own fixed cost is
timed the same way (N tiny seeds stacked). The measured speed-up is N single-seed
updates' time over one stacked update's, in alternating blocks, median over rounds. Both are update times only:
acting and stepping N environments, which stacking does not merge, lower the end-to-end gain further
(``python -m benchmarks.throughput --seeds 3``).

    python -m benchmarks.seeds_bound --hidden-dims 64 256 512 --num-seeds 3 5 --threads 1
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import tyro

from benchmarks.agent_scripts import load_agent
from benchmarks.aggregate import markdown_table
from benchmarks.overhead import SHAPES, time_block
from benchmarks.provenance import REPO_ROOT, provenance_header, refuse_to_overwrite
from benchmarks.workloads import random_batch


@dataclass
class Args:
    hidden_dims: tuple[int, ...] = (64, 256, 512)
    """widths of actor and critics (SAC-ERA's networks: ELU, LayerNorm critics)"""
    num_seeds: tuple[int, ...] = (3, 5)
    """numbers of stacked seeds"""
    batch_size: int = 256
    """minibatch size"""
    tiny: int = 4
    """width and batch of the fixed-cost measurement (the same operators on tiny tensors)"""
    shape: str = "halfcheetah"
    """observation/action sizes, from benchmarks.overhead.SHAPES"""
    device: Literal["cpu", "cuda"] = "cpu"
    """where the updates run"""
    threads: int | None = 1
    """torch CPU threads (None: torch's default)"""
    rounds: int = 5
    """alternating rounds (the median over rounds is reported)"""
    updates_per_block: int = 10
    """updates per timed block"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "throughput-seeds"
    """where bound.csv and bound.md go"""
    overwrite: bool = False
    """replace the results already in --results-dir (without it, a run into a directory holding them stops)"""

    def check(self) -> None:
        """Reject settings that cannot be measured, naming the flag."""
        for flag, values in (("--hidden-dims", self.hidden_dims), ("--num-seeds", self.num_seeds)):
            if not values or min(values) < (2 if flag == "--num-seeds" else 1):
                raise ValueError(f"{flag} must be non-empty and >= {2 if flag == '--num-seeds' else 1}, got {values}")
        for flag, value in (("--batch-size", self.batch_size), ("--tiny", self.tiny), ("--rounds", self.rounds)):
            if value < 1:
                raise ValueError(f"{flag} must be >= 1, got {value}")
        if self.updates_per_block < 1:
            raise ValueError(f"--updates-per-block must be >= 1, got {self.updates_per_block}")
        if self.shape not in SHAPES:
            raise ValueError(f"--shape must be one of {sorted(SHAPES)}, got {self.shape!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device here")


def stacking_bound(num_seeds: int, single_s: float, fixed_s: float) -> float:
    """``N T / (T_o + N (T - T_o))``: the speed-up of a stacked update that pays the fixed cost ``T_o`` once and the
    rest of a single-seed update ``T`` N times (``T_o`` is clipped to ``[0, T]``)."""
    fixed_s = min(max(fixed_s, 0.0), single_s)
    return num_seeds * single_s / (fixed_s + num_seeds * (single_s - fixed_s))


def measure(hidden_dim: int, num_seeds: int, args: Args) -> dict[str, object]:
    """One row: the single-seed update (full size and tiny), N of them, and the stacked update, in ms."""
    sac_era, sac_era_seeds = load_agent("sac_era"), load_agent("sac_era_seeds")
    device = torch.device(args.device)
    obs_dim, action_dim = SHAPES[args.shape]

    def agents(width: int, batch_size: int) -> tuple[object, list]:
        options = dict(hidden_dim=width, batch_size=batch_size, cuda=device.type == "cuda", num_seeds=num_seeds)
        seeds_args = sac_era_seeds.Args(**options)
        built = []
        for seed in range(num_seeds):
            torch.manual_seed(seed)
            built.append(sac_era.build_agent(seeds_args, obs_dim, action_dim, device))
        return seeds_args, built

    seeds_args, full = agents(hidden_dim, args.batch_size)
    batches = [random_batch(obs_dim, action_dim, args.batch_size, device, seed) for seed in range(num_seeds)]
    singles = [sac_era.make_update(agent, seeds_args) for agent in full]
    stacked = sac_era_seeds.StackedSAC(full, seeds_args)  # the same starting weights, its own copies
    stacked_batch = sac_era_seeds.stack_batches(batches)
    tiny_args, tiny_agents = agents(args.tiny, args.tiny)
    tiny_batches = [random_batch(obs_dim, action_dim, args.tiny, device, seed) for seed in range(num_seeds)]
    tiny_update = sac_era.make_update(tiny_agents[0], tiny_args)
    tiny_stacked = sac_era_seeds.StackedSAC(tiny_agents, tiny_args)
    tiny_stacked_batch = sac_era_seeds.stack_batches(tiny_batches)

    n = args.updates_per_block
    blocks = {
        "single_ms": lambda: (
            sum(time_block(u, b, n, device) for u, b in zip(singles, batches, strict=True)) / num_seeds
        ),
        "fixed_ms": lambda: time_block(tiny_update, tiny_batches[0], n, device),
        "stacked_ms": lambda: time_block(stacked.update, stacked_batch, n, device),
        "stacked_fixed_ms": lambda: time_block(tiny_stacked.update, tiny_stacked_batch, n, device),
    }
    for block in blocks.values():  # warm-up: optimiser states, allocator
        block()
    times: dict[str, list[float]] = {name: [] for name in blocks}
    for round_index in range(args.rounds):
        names = list(blocks) if round_index % 2 == 0 else list(reversed(blocks))
        for name in names:
            times[name].append(blocks[name]() * 1e3)
    single, fixed, stacked_ms, stacked_fixed = (float(np.median(times[name])) for name in blocks)
    per_round = np.array(times["single_ms"]) * num_seeds / np.array(times["stacked_ms"])
    return {
        "hidden_dim": hidden_dim,
        "num_seeds": num_seeds,
        "single_ms": single,
        "fixed_ms": fixed,
        "n_singles_ms": num_seeds * single,
        "stacked_ms": stacked_ms,
        "stacked_fixed_ms": stacked_fixed,
        "speedup": float(np.median(per_round)),
        "speedup_min": float(per_round.min()),
        "speedup_max": float(per_round.max()),
        "bound": stacking_bound(num_seeds, single, fixed),
    }


def write_results(rows: list[dict[str, object]], args: Args, command: str) -> Path:
    """``bound.csv`` and ``bound.md`` (with command, commit, date and hardware) in ``args.results_dir``."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.results_dir / "bound.csv", index=False)
    table = [
        [
            f"2x{row['hidden_dim']}",
            str(row["num_seeds"]),
            f"{row['single_ms']:.2f}",
            f"{row['fixed_ms']:.2f}",
            f"{row['n_singles_ms']:.2f}",
            f"{row['stacked_ms']:.2f}",
            f"{row['stacked_fixed_ms']:.2f}",
            f"{row['speedup']:.2f}x ({row['speedup_min']:.2f}-{row['speedup_max']:.2f})",
            f"{row['bound']:.2f}x",
        ]
        for row in rows
    ]
    header = ["Network", "Seeds N", "T: one seed (ms)", "T_o: tiny (ms)", "N x T (ms)", "Stacked (ms)",
              "Stacked, tiny (ms)", "Speed-up (range)", "Bound N T / (T_o + N (T - T_o))"]  # fmt: skip
    threads = "torch's default" if args.threads is None else str(args.threads)
    obs_dim, action_dim = SHAPES[args.shape]
    text = "\n".join(
        [
            "# Stacked seeds: the SAC update's speed-up and its ceiling",
            "",
            *provenance_header(command, f"{threads} thread(s); device {args.device}"),
            f"- **Setup:** {args.shape} sizes ({obs_dim}/{action_dim}); SAC-ERA networks (ELU, LayerNorm critics), "
            f"batch {args.batch_size}; `T`: one `sac_era.make_update` call; `T_o`: the same update at width and batch "
            f"{args.tiny} (its fixed cost per operator call); stacked: one `sac_era_seeds.StackedSAC.update` of N "
            f"seeds; blocks of {args.updates_per_block} updates alternating over {args.rounds} rounds, medians.",
            "",
            markdown_table(header, table),
            "",
            "A stacked update that paid one seed's fixed cost once and the arithmetic N times would reach the bound: "
            "where the bound is near 1, the update is arithmetic, not call overhead, and stacking cannot pay. "
            '"Stacked, tiny" is the stacked update\'s own fixed cost (`vmap` over `functional_call`): where it '
            "exceeds `T_o`, the stacked path falls short of the bound by that much.",
            "",
        ]
    )
    (args.results_dir / "bound.md").write_text(text)
    return args.results_dir / "bound.md"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = tyro.cli(Args, args=argv)
    try:
        args.check()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    refuse_to_overwrite(args.results_dir, ["bound.csv", "bound.md"], args.overwrite)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = []
    for hidden_dim in args.hidden_dims:
        for num_seeds in args.num_seeds:
            row = measure(hidden_dim, num_seeds, args)
            print(f"2x{hidden_dim}, {num_seeds} seeds: {row['speedup']:.2f}x (bound {row['bound']:.2f}x)", flush=True)
            rows.append(row)
    path = write_results(rows, args, shlex.join(["python", "-m", "benchmarks.seeds_bound", *argv]))
    print(f"Results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
