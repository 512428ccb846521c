"""Training throughput (environment steps per second): the agents against Stable-Baselines3, in one process.

Every variant trains on the same environment with the same network sizes, batch size and update ratio, one after the
other in this process (repeats interleaved), and is timed end to end: environment construction, warm-up, updates and
one final evaluation episode. The table reports steps per second and the ratio to stock SB3 of the same algorithm.

SAC family (UTD 2, batch 256, ELU networks): ``agents/sac_era.py`` (ERA and ``--no-era``), SB3 ``SAC(ERASACPolicy)``,
stock SB3 ``SAC``. PPO family (2x64 tanh, 2048-step rollouts, 10 epochs, normalised observations and rewards):
``agents/ppo_era.py`` (ERA and ``--no-era``), SB3 ``PPO(ERAActorCriticPolicy)``, stock SB3 ``PPO``.
Known differences: the agents' SAC critics have LayerNorm (SB3's cannot) and use AdamW.

    python -m benchmarks.throughput                       # CPU, HalfCheetah-v5
    python -m benchmarks.throughput --cuda --hidden-dim 512 --sac-total-timesteps 20000
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import tyro

from benchmarks import sb3_agent
from benchmarks.agent_scripts import load_agent
from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, git_commit, hardware_description, utc_now


@dataclass
class Args:
    env_id: str = "HalfCheetah-v5"
    """environment of every variant"""
    cuda: bool = False
    """train on the GPU (when present)"""
    algorithms: tuple[str, ...] = ("sac", "ppo")
    """families to measure"""
    sac_total_timesteps: int = 3_000
    """SAC budget per run (updates start after --sac-learning-starts)"""
    sac_learning_starts: int = 1_000
    """uniform-random steps before SAC updates start"""
    hidden_dim: int = 256
    """SAC actor/critic width (2 hidden layers)"""
    ppo_total_timesteps: int = 20_480
    """PPO budget per run (10 rollouts of 2048 steps)"""
    repeats: int = 2
    """runs per variant, interleaved; the median is reported"""
    threads: int | None = None
    """torch CPU threads (None: torch's default)"""
    seed: int = 0
    """seed of every run"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "throughput"
    """where throughput.csv and throughput.md go"""


def sac_variants(args: Args, log_dir: str) -> dict[str, Callable[[], None]]:
    sac_era = load_agent("sac_era")
    common_agent = dict(
        env_id=args.env_id,
        total_timesteps=args.sac_total_timesteps,
        learning_starts=args.sac_learning_starts,
        hidden_dim=args.hidden_dim,
        eval_every=0,
        eval_episodes=1,
        seed=args.seed,
        cuda=args.cuda,
        progress=False,
        log_dir=log_dir,
    )
    sb3 = [
        "--algo", "sac", "--env-id", args.env_id, "--total-timesteps", str(args.sac_total_timesteps),
        "--learning-starts", str(args.sac_learning_starts), "--net-arch", str(args.hidden_dim), str(args.hidden_dim),
        "--activation", "elu", "--batch-size", "256", "--train-freq", "1", "--gradient-steps", "2",
        "--eval-every", str(10 * args.sac_total_timesteps), "--eval-episodes", "1", "--seed", str(args.seed),
        "--log-dir", log_dir, "--no-progress", "--cuda" if args.cuda else "--no-cuda",
    ]  # fmt: skip
    return {
        "agents/sac_era.py": lambda: sac_era.main(sac_era.Args(**common_agent, run_name="sac-era")),
        "agents/sac_era.py --no-era": lambda: sac_era.main(sac_era.Args(**common_agent, era=False, run_name="sac")),
        "SB3 SAC(ERASACPolicy)": lambda: sb3_agent.main([*sb3, "--policy", "era", "--run-name", "sb3-era"]),
        "SB3 SAC": lambda: sb3_agent.main([*sb3, "--policy", "stock", "--run-name", "sb3"]),
    }


def ppo_variants(args: Args, log_dir: str) -> dict[str, Callable[[], None]]:
    ppo_era = load_agent("ppo_era")
    common_agent = dict(
        env_id=args.env_id,
        total_timesteps=args.ppo_total_timesteps,
        eval_every=0,
        eval_episodes=1,
        seed=args.seed,
        cuda=args.cuda,
        progress=False,
        log_dir=log_dir,
    )
    sb3 = [
        "--algo", "ppo", "--env-id", args.env_id, "--total-timesteps", str(args.ppo_total_timesteps),
        "--net-arch", "64", "64", "--activation", "tanh", "--batch-size", "64", "--n-steps", "2048",
        "--n-epochs", "10", "--normalize", "--eval-every", str(10 * args.ppo_total_timesteps), "--eval-episodes", "1",
        "--seed", str(args.seed), "--log-dir", log_dir, "--no-progress", "--cuda" if args.cuda else "--no-cuda",
    ]  # fmt: skip
    return {
        "agents/ppo_era.py": lambda: ppo_era.main(ppo_era.Args(**common_agent, run_name="ppo-era")),
        "agents/ppo_era.py --no-era": lambda: ppo_era.main(ppo_era.Args(**common_agent, era=False, run_name="ppo")),
        "SB3 PPO(ERAActorCriticPolicy)": lambda: sb3_agent.main([*sb3, "--policy", "era", "--run-name", "sb3-era"]),
        "SB3 PPO": lambda: sb3_agent.main([*sb3, "--policy", "stock", "--run-name", "sb3"]),
    }


def measure(args: Args) -> pd.DataFrame:
    """Wall time of every variant, ``repeats`` times, variants interleaved within each repeat."""
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        families = {"sac": (sac_variants, args.sac_total_timesteps), "ppo": (ppo_variants, args.ppo_total_timesteps)}
        for family in args.algorithms:
            make_variants, steps = families[family]
            variants = make_variants(args, log_dir)
            for repeat in range(args.repeats):
                for name, run in variants.items():
                    start = time.perf_counter()
                    run()
                    seconds = time.perf_counter() - start
                    rows.append(
                        {"family": family, "variant": name, "repeat": repeat, "steps": steps, "seconds": seconds}
                    )
                    print(f"{name}: {steps / seconds:.0f} steps/s ({seconds:.1f} s)", flush=True)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Median steps per second per variant and its ratio to stock SB3 of the same family."""
    runs = runs.assign(steps_per_second=runs["steps"] / runs["seconds"])
    summary = runs.groupby(["family", "variant"], sort=False)["steps_per_second"].agg(["median", "min", "max"])
    summary = summary.reset_index()
    stock = {family: summary.loc[(summary["family"] == family) & (summary["variant"] == f"SB3 {family.upper()}")]
             for family in summary["family"].unique()}  # fmt: skip
    summary["ratio_to_sb3"] = [
        row["median"] / float(stock[row["family"]]["median"].iloc[0]) if len(stock[row["family"]]) else np.nan
        for _, row in summary.iterrows()
    ]
    return summary


def write_results(runs: pd.DataFrame, summary: pd.DataFrame, args: Args, command: str) -> str:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.results_dir / "throughput.csv", index=False)
    table = markdown_table(
        ["Family", "Variant", "Steps/s (median)", "Range over repeats", "vs stock SB3"],
        [
            [
                row["family"].upper(),
                row["variant"],
                f"{row['median']:.0f}",
                f"{row['min']:.0f}-{row['max']:.0f}",
                f"{row['ratio_to_sb3']:.2f}x",
            ]
            for _, row in summary.iterrows()
        ],
    )
    device = "CUDA" if args.cuda and torch.cuda.is_available() else "CPU"
    text = "\n".join(
        [
            "# Training throughput",
            "",
            f"- **Command:** `{command}`",
            f"- **Git commit:** `{git_commit()}`",
            f"- **Date:** {utc_now():%Y-%m-%d %H:%M} UTC",
            f"- **Hardware:** {hardware_description()}; torch {torch.__version__}, {torch.get_num_threads()} CPU "
            f"threads; training on {device}",
            f"- **Setup:** {args.env_id}; SAC: {args.sac_total_timesteps} steps ({args.sac_learning_starts} random), "
            f"2x{args.hidden_dim} ELU, batch 256, 2 updates per step; PPO: {args.ppo_total_timesteps} steps, 2x64 "
            f"tanh, 2048-step rollouts, 10 epochs of minibatch 64. {args.repeats} interleaved repeats, end-to-end "
            "wall time per run (environment creation and one final evaluation episode included).",
            "",
            table,
            "",
        ]
    )
    (args.results_dir / "throughput.md").write_text(text)
    return text


def main(args: Args) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    runs = measure(args)
    command = " ".join(["python -m benchmarks.throughput", *map(shlex.quote, sys.argv[1:])])
    print(write_results(runs, summarize(runs), args, command))


if __name__ == "__main__":
    main(tyro.cli(Args))
