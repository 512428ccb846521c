"""Training throughput (environment steps per second): the agents against Stable-Baselines3, in one process.

Every variant trains on the same environment with the same network sizes, batch size and update ratio, one after the
other in this process (repeats interleaved), and is timed end to end: environment construction, warm-up, updates and
one final evaluation episode. The table reports steps per second and the ratio to stock SB3 of the same algorithm.

SAC family (batch 256, ELU networks) at LeanRL's setting (2x256, one update per step) and at the released recipe (2x512,
two updates per step): ``agents/sac_era.py`` (ERA and ``--no-era``, each in every ``--modes``: eager, ``--compile``,
``--cudagraphs``), SB3 ``SAC(ERASACPolicy)``, stock SB3 ``SAC``. PPO family (2x64 tanh, 2048-step rollouts,
10 epochs, normalised observations and rewards): ``agents/ppo_era.py`` (ERA and ``--no-era``),
SB3 ``PPO(ERAActorCriticPolicy)``, stock SB3 ``PPO``.
Known differences: the agents' SAC critics have LayerNorm (SB3's cannot) and use AdamW.

    python -m benchmarks.throughput --sac-settings leanrl                  # CPU, HalfCheetah-v5
    python -m benchmarks.throughput --cuda --algorithms sac --modes eager compile cudagraphs --sac-total-timesteps 20000

``--cuda`` without a CUDA device writes every row as "not measured" (to ``benchmarks/results/throughput-cuda``).
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
import sys
import tempfile
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

from benchmarks import sb3_agent
from benchmarks.agent_scripts import load_agent
from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, git_commit, hardware_description, utc_now

Mode = Literal["eager", "compile", "cudagraphs"]


@dataclass(frozen=True)
class Setting:
    """Network size and update ratio of one row group, as agent keyword arguments and the matching SB3 flags."""

    label: str
    agent: dict[str, object]
    sb3: tuple[str, ...]


def _sac_setting(label: str, hidden: int, updates_per_step: int, learning_starts: int) -> Setting:
    agent = {"hidden_dim": hidden, "updates_per_step": updates_per_step, "learning_starts": learning_starts}
    sb3 = (
        *("--net-arch", str(hidden), str(hidden), "--activation", "elu", "--batch-size", "256"),
        *("--train-freq", "1", "--gradient-steps", str(updates_per_step), "--learning-starts", str(learning_starts)),
    )
    return Setting(label, agent, sb3)


PPO_SB3_FLAGS = (
    *("--net-arch", "64", "64", "--activation", "tanh", "--batch-size", "64", "--n-steps", "2048"),
    *("--n-epochs", "10", "--normalize"),
)


@dataclass
class Args:
    env_id: str = "HalfCheetah-v5"
    """environment of every variant"""
    cuda: bool = False
    """train on the GPU; without a CUDA device every row is written as 'not measured'"""
    algorithms: tuple[Literal["sac", "ppo"], ...] = ("sac", "ppo")
    """families to measure"""
    sac_settings: tuple[Literal["leanrl", "released"], ...] = ("leanrl", "released")
    """leanrl: 2x256, one update per step (LeanRL's setting); released: 2x512, two updates per step"""
    modes: tuple[Mode, ...] = ("eager",)
    """the agents' fast paths to time: eager, --compile, --cudagraphs (CUDA only; agents without the flag skip it)"""
    sac_total_timesteps: int = 3_000
    """SAC budget per run (updates start after --sac-learning-starts)"""
    sac_learning_starts: int = 1_000
    """uniform-random steps before SAC updates start"""
    ppo_total_timesteps: int = 20_480
    """PPO budget per run (10 rollouts of 2048 steps)"""
    repeats: int = 2
    """runs per variant, interleaved; the median is reported"""
    threads: int | None = None
    """torch CPU threads (None: torch's default)"""
    seed: int = 0
    """seed of every run"""
    results_dir: Path | None = None
    """where throughput.csv and throughput.md go; None: benchmarks/results/throughput (-cuda with --cuda)"""


@dataclass(frozen=True)
class Variant:
    """One row of the table: how to train it once (``run(run_name)``) and how many steps that is."""

    family: str
    setting: str
    name: str
    steps: int
    run: Callable[[str], None]


def settings(family: str, args: Args) -> list[Setting]:
    if family == "ppo":
        return [Setting("2x64 tanh, 2048-step rollouts, 10 epochs of minibatch 64", {}, PPO_SB3_FLAGS)]
    known = {
        "leanrl": _sac_setting("2x256, 1 update/step (LeanRL)", 256, 1, args.sac_learning_starts),
        "released": _sac_setting("2x512, 2 updates/step (released recipe)", 512, 2, args.sac_learning_starts),
    }
    return [known[name] for name in args.sac_settings]


def variants(args: Args, log_dir: str) -> list[Variant]:
    """Per family and setting: the agent (ERA and ``--no-era``, in every requested mode), then SB3 with the ERA policy
    and stock SB3, all with the same sizes and update ratio."""
    rows = []
    for family in args.algorithms:
        agent = load_agent(f"{family}_era")
        fields = {field.name for field in dataclasses.fields(agent.Args)}
        steps = args.sac_total_timesteps if family == "sac" else args.ppo_total_timesteps
        contract = dict(env_id=args.env_id, total_timesteps=steps, eval_every=0, eval_episodes=1, seed=args.seed,
                        cuda=args.cuda, progress=False, log_dir=log_dir)  # fmt: skip
        sb3 = (
            *("--algo", family, "--env-id", args.env_id, "--total-timesteps", str(steps), "--seed", str(args.seed)),
            *("--eval-every", str(10 * steps), "--eval-episodes", "1", "--log-dir", log_dir, "--no-progress"),
            "--cuda" if args.cuda else "--no-cuda",
        )
        modes = [mode for mode in args.modes if mode == "eager" or mode in fields]
        for setting in settings(family, args):
            for mode in modes:
                flags = {"compile": mode == "compile"} if "compile" in fields else {}
                flags |= {"cudagraphs": mode == "cudagraphs"} if "cudagraphs" in fields else {}
                suffix = "" if mode == "eager" else f" --{mode}"
                for era in (True, False):
                    kwargs = {**contract, **setting.agent, **flags, "era": era}
                    name = f"agents/{family}_era.py{'' if era else ' --no-era'}{suffix}"
                    run = functools.partial(_run_agent, agent, kwargs)
                    rows.append(Variant(family, setting.label, name, steps, run))
            sb3_labels = {"era": f"SB3 {family.upper()}({POLICY_NAMES[family]})", "stock": f"SB3 {family.upper()}"}
            for policy, label in sb3_labels.items():
                run = functools.partial(_run_sb3, [*sb3, *setting.sb3, "--policy", policy])
                rows.append(Variant(family, setting.label, label, steps, run))
    return rows


POLICY_NAMES = {"sac": "ERASACPolicy", "ppo": "ERAActorCriticPolicy"}


def _run_agent(agent: ModuleType, kwargs: dict[str, object], run_name: str) -> None:
    agent.main(agent.Args(**kwargs, run_name=run_name))


def _run_sb3(argv: list[str], run_name: str) -> None:
    sb3_agent.main([*argv, "--run-name", run_name])


def measure(args: Args) -> pd.DataFrame:
    """Wall time of every variant, ``repeats`` times, variants interleaved within each repeat."""
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        table = variants(args, log_dir)
        for repeat in range(args.repeats):
            for index, variant in enumerate(table):
                start = time.perf_counter()
                variant.run(f"{index}-{repeat}")  # the agents refuse to reuse a run directory
                seconds = time.perf_counter() - start
                rows.append({"family": variant.family, "setting": variant.setting, "variant": variant.name,
                             "repeat": repeat, "steps": variant.steps, "seconds": seconds})  # fmt: skip
                print(f"{variant.name} [{variant.setting}]: {variant.steps / seconds:.0f} steps/s", flush=True)
    return pd.DataFrame(rows)


def not_measured(args: Args) -> pd.DataFrame:
    """Every row of the table, without numbers (``seconds`` NaN): what ``--cuda`` would measure, never estimated."""
    with tempfile.TemporaryDirectory() as log_dir:
        rows = [
            {"family": v.family, "setting": v.setting, "variant": v.name, "repeat": 0, "steps": v.steps}
            for v in variants(args, log_dir)
        ]
    return pd.DataFrame(rows).assign(seconds=np.nan)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Median steps per second per variant and its ratio to stock SB3 of the same family and setting (NaN where a
    row was not measured)."""
    runs = runs.assign(steps_per_second=runs["steps"] / runs["seconds"])
    keys = ["family", "setting", "variant"]
    summary = runs.groupby(keys, sort=False)["steps_per_second"].agg(["median", "min", "max"]).reset_index()
    stock = summary[summary["variant"] == "SB3 " + summary["family"].str.upper()]
    stock_median = stock.set_index(["family", "setting"])["median"]
    summary["ratio_to_sb3"] = [
        row["median"] / stock_median.get((row["family"], row["setting"]), np.nan) for _, row in summary.iterrows()
    ]
    return summary


def _cells(row: pd.Series) -> list[str]:
    if not np.isfinite(row["median"]):
        return ["not measured"] * 3
    return [f"{row['median']:.0f}", f"{row['min']:.0f}-{row['max']:.0f}", f"{row['ratio_to_sb3']:.2f}x"]


def write_results(runs: pd.DataFrame, summary: pd.DataFrame, args: Args, command: str, device: str) -> str:
    """``throughput.csv`` (every run) and ``throughput.md`` (provenance and the table) in the results directory."""
    results_dir = results_directory(args)
    results_dir.mkdir(parents=True, exist_ok=True)
    runs.to_csv(results_dir / "throughput.csv", index=False)
    table = markdown_table(
        ["Family", "Setting", "Variant", "Steps/s (median)", "Range over repeats", "vs stock SB3"],
        [[row["family"].upper(), row["setting"], row["variant"], *_cells(row)] for _, row in summary.iterrows()],
    )
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
            f"ELU, batch 256, settings as in the table; PPO: {args.ppo_total_timesteps} steps. {args.repeats} "
            "interleaved repeats, end-to-end wall time per run (environment creation and one final evaluation "
            "episode included).",
            "",
            table,
            "",
        ]
    )
    (results_dir / "throughput.md").write_text(text)
    return text


def results_directory(args: Args) -> Path:
    default = "throughput-cuda" if args.cuda else "throughput"
    return args.results_dir or REPO_ROOT / "benchmarks" / "results" / default


def main(args: Args) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    command = " ".join(["python -m benchmarks.throughput", *map(shlex.quote, sys.argv[1:])])
    if args.cuda and not torch.cuda.is_available():
        runs, device = not_measured(args), "CUDA: not measured, no CUDA device on this machine"
    else:
        runs, device = measure(args), "CUDA" if args.cuda else "CPU"
    print(write_results(runs, summarize(runs), args, command, device))


if __name__ == "__main__":
    main(tyro.cli(Args))
