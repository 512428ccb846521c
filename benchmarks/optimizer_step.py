"""What one optimiser step costs, by implementation: torch's per-tensor loop (its CPU default), ``foreach``, ``fused``
and the per-tensor loop under ``torch.compile``, on the parameters the agents train. The agents use fused Adam
(``ppo_era.py``'s Adam; ``sac_era.py``'s AdamW for the critics and Adam for the actor).

Each variant steps its own copy of the parameters, with fixed random gradients; blocks of steps alternate between the
variants over several rounds, and the median time per step is reported with each variant's ratio to the per-tensor
loop.

    python -m benchmarks.optimizer_step --threads 1
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import tyro
from torch import nn

from benchmarks.agent_scripts import load_agent
from benchmarks.aggregate import markdown_table
from benchmarks.overhead import SHAPES
from benchmarks.provenance import REPO_ROOT, provenance_header, refuse_to_overwrite

VARIANTS = ("per-tensor loop", "foreach", "fused", "per-tensor loop, torch.compile")


@dataclass
class Args:
    shape: str = "halfcheetah"
    """observation/action sizes, from benchmarks.overhead.SHAPES"""
    sac_hidden_dim: int = 256
    """width of sac_era.py's networks"""
    rounds: int = 10
    """alternating rounds (medians over rounds are reported)"""
    steps_per_block: int = 50
    """optimiser steps per timed block"""
    threads: int | None = 1
    """torch CPU threads (None: torch's default)"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "optimizer-step"
    """where steps.csv and steps.md go"""
    overwrite: bool = False
    """replace the results already in --results-dir (without it, a run into a directory holding them stops)"""


HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")
"""What each variant takes over from the agent's optimiser (the implementation options are the variant's own)."""


def trained_parameters(args: Args) -> dict[str, tuple[type[torch.optim.Optimizer], dict, list[nn.Parameter]]]:
    """Per case: the agent's own optimiser's class and hyperparameters, and the parameters it trains (built by the
    agent's ``make_optimizers`` / ``build_agent``)."""
    obs_dim, action_dim = SHAPES[args.shape]
    ppo, sac = load_agent("ppo_era"), load_agent("sac_era")
    ppo_agent = ppo.Agent(obs_dim, -np.ones(action_dim), np.ones(action_dim), ppo.Args())
    ppo_optimizer, _ = ppo.make_optimizers(ppo_agent, ppo.Args(), torch.device("cpu"))
    sac_agent = sac.build_agent(sac.Args(hidden_dim=args.sac_hidden_dim, cuda=False), obs_dim, action_dim,
                                torch.device("cpu"))  # fmt: skip
    optimizers = {
        "ppo_era.py: Adam (2x64 actor and critic)": ppo_optimizer,
        f"sac_era.py: AdamW (two 2x{args.sac_hidden_dim} critics)": sac_agent.q_optimizer,
    }
    cases = {}
    for case, optimizer in optimizers.items():
        hyperparameters = {name: optimizer.defaults[name] for name in HYPERPARAMETERS}
        params = [param for group in optimizer.param_groups for param in group["params"]]
        cases[case] = (type(optimizer), hyperparameters, params)
    return cases


def step_function(
    optimizer_class: type[torch.optim.Optimizer], options: dict, params: list[nn.Parameter], variant: str
) -> tuple[Callable[[], None], list[nn.Parameter]]:
    """One ``variant`` optimiser step over a fresh copy of ``params`` with fixed random gradients, and the copy."""
    generator = torch.Generator().manual_seed(0)
    copies = [nn.Parameter(p.detach().clone()) for p in params]
    for copy in copies:
        copy.grad = torch.randn(copy.shape, generator=generator)
    implementation = {"foreach": {"foreach": True}, "fused": {"fused": True}}.get(variant, {"foreach": False})
    optimizer = optimizer_class(copies, **options, **implementation)
    return (torch.compile(optimizer.step) if variant.endswith("torch.compile") else optimizer.step), copies


def measure(args: Args) -> list[dict[str, object]]:
    rows = []
    for case, (optimizer_class, options, params) in trained_parameters(args).items():
        steps = {variant: step_function(optimizer_class, options, params, variant)[0] for variant in VARIANTS}
        for step in steps.values():  # warm-up: state allocation, compilation
            for _ in range(5):
                step()
        times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        for round_index in range(args.rounds):
            order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                start = time.perf_counter()
                for _ in range(args.steps_per_block):
                    steps[variant]()
                times[variant].append((time.perf_counter() - start) / args.steps_per_block)
        loop = np.array(times[VARIANTS[0]])
        for variant in VARIANTS:
            ratios = np.array(times[variant]) / loop
            row = dict(case=case, variant=variant, tensors=len(params), parameters=sum(p.numel() for p in params))
            row.update(us_per_step=1e6 * float(np.median(times[variant])), ratio_to_loop=float(np.median(ratios)))
            rows.append(dict(row, ratio_min=float(ratios.min()), ratio_max=float(ratios.max())))
    return rows


def write_results(rows: list[dict[str, object]], args: Args, command: str) -> Path:
    """``steps.csv`` and ``steps.md`` (with command, commit, date and hardware) in ``args.results_dir``."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.results_dir / "steps.csv", index=False)
    table = markdown_table(
        ["Parameters", "Implementation", "us per step (median)", "Time / per-tensor loop (range over rounds)"],
        [
            [
                f"{row['case']}: {row['tensors']} tensors, {row['parameters']:,} values",
                row["variant"],
                f"{row['us_per_step']:.0f}",
                f"{row['ratio_to_loop']:.2f} ({row['ratio_min']:.2f}-{row['ratio_max']:.2f})",
            ]
            for row in rows
        ],
    )
    threads = "torch's default" if args.threads is None else str(args.threads)
    text = "\n".join(
        [
            "# One optimiser step, by implementation",
            "",
            *provenance_header(command, f"torch {torch.__version__}; {threads} thread(s); CPU"),
            f"- **Setup:** {args.shape} sizes; each implementation steps its own copy of the parameters with fixed "
            f"random gradients; blocks of {args.steps_per_block} steps alternate between implementations over "
            f"{args.rounds} rounds (the order flips each round); medians over rounds.",
            "",
            table,
            "",
        ]
    )
    (args.results_dir / "steps.md").write_text(text)
    return args.results_dir / "steps.md"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = tyro.cli(Args, args=argv)
    if args.shape not in SHAPES:
        raise SystemExit(f"error: --shape must be one of {sorted(SHAPES)}, got {args.shape!r}")
    for flag, value in (("--rounds", args.rounds), ("--steps-per-block", args.steps_per_block)):
        if value < 1:
            raise SystemExit(f"error: {flag} must be >= 1, got {value}")
    refuse_to_overwrite(args.results_dir, ["steps.csv", "steps.md"], args.overwrite)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    path = write_results(measure(args), args, shlex.join(["python", "-m", "benchmarks.optimizer_step", *argv]))
    print(path.read_text())


if __name__ == "__main__":
    main()
