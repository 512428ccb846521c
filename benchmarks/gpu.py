"""The GPU check: one command, about 8 minutes on one H100/H200, for everything only a GPU can show.

In order, each part with its own time budget (a part that would not fit in what is left of ``--budget-s`` is skipped,
one that overruns its budget is stopped; the summary says which):

1. the CUDA tests (``pytest -m gpu``);
2. ERA's operators per update and per acting step on CUDA, eager and compiled, for ``agents/sac_era.py`` and SB3 SAC
   (``benchmarks.overhead``; a CUDA graph replays the operators it captured);
3. the SAC update on CUDA, ERA against ``--no-era``, eager, ``--compile`` and ``--cudagraphs``
   (``benchmarks.overhead``);
4. steps per second on CUDA after a burn-in: ``agents/sac_era.py`` (ERA and ``--no-era``, eager and
   ``--cudagraphs``) against SB3 SAC with the ERA policy and stock (``benchmarks.throughput``).

Results go to ``benchmarks/results/gpu-check/``: ``summary.md`` (command, commit, hardware, each part's outcome and
wall time), each part's output in ``part-<n>.log`` (``part-1.log``: the tests), and the parts' own tables under
``overhead/`` and ``throughput/``.

    python -m benchmarks.gpu --overwrite  # on a machine with a CUDA GPU (replaces the rows written without one)
    python -m benchmarks.gpu --dry-run    # the plan, anywhere
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, provenance_header, refuse_to_overwrite
from benchmarks.throughput import process_environment


@dataclass
class Args:
    budget_s: float = 480.0
    """wall-time budget of the whole check; parts that would not fit are skipped"""
    dry_run: bool = False
    """print the plan (parts, budgets, commands) and exit; needs no GPU"""
    results_dir: Path = REPO_ROOT / "benchmarks" / "results" / "gpu-check"
    """where summary.md and the parts' results go"""
    overwrite: bool = False
    """replace the results already in --results-dir (without it, a run into a directory holding them stops)"""


@dataclass(frozen=True)
class Part:
    """One step of the check: a command run from the repository root, stopped after ``budget_s`` seconds."""

    name: str
    budget_s: float
    command: tuple[str, ...]


def plan(results_dir: Path, overwrite: bool = False) -> list[Part]:
    """The parts, in order, sized for one H100/H200 (see the module docstring); with ``overwrite`` they replace the
    results of an earlier check."""
    python = sys.executable
    replace = ("--overwrite",) if overwrite else ()
    overhead = (
        python,
        "-m",
        "benchmarks.overhead",
        "--devices",
        "cuda",
        "--results-dir",
        str(results_dir / "overhead"),
        *replace,
    )
    return [
        Part("CUDA tests", 60, (python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider")),
        Part(
            "operators per update and acting step (CUDA; eager, compile)",
            90,
            (*overhead, "--modes", "eager", "compile", "--no-timing", "--families", "agents/sac_era.py", "SB3 SAC"),
        ),
        Part(
            "SAC update, ERA vs --no-era (CUDA; eager, compile, cudagraphs)",
            150,
            (
                *overhead,
                "--modes",
                "eager",
                "compile",
                "cudagraphs",
                "--no-counts",
                "--shapes",
                "halfcheetah",
                "--hidden-dim",
                "256",
                "--rounds",
                "10",
            ),
        ),
        Part(
            "steps per second after a burn-in (CUDA; eager, cudagraphs; SB3 SAC)",
            170,
            # Hopper's episodes end early, so SB3 (which logs every 4 episodes) gives a clock within 5000 steps.
            (
                python,
                "-m",
                "benchmarks.throughput",
                "--cuda",
                "--algorithms",
                "sac",
                "--modes",
                "eager",
                "cudagraphs",
                "--env-id",
                "Hopper-v5",
                "--sac-total-timesteps",
                "5000",
                "--sac-learning-starts",
                "1000",
                "--sac-burn-in",
                "2000",
                "--repeats",
                "1",
                "--no-compile-row",
                "--results-dir",
                str(results_dir / "throughput"),
                *replace,
            ),
        ),
    ]


@dataclass(frozen=True)
class Outcome:
    part: Part
    status: str
    """passed / failed (exit code) / stopped at its budget / skipped (why)"""
    seconds: float


def run_plan(parts: Sequence[Part], budget_s: float, log_dir: Path) -> list[Outcome]:
    """Run ``parts`` in order within ``budget_s``; each part's output goes to ``log_dir/part-<i>.log``."""
    outcomes, start = [], time.monotonic()
    for index, part in enumerate(parts, 1):
        left = budget_s - (time.monotonic() - start)
        if part.budget_s > left:
            outcomes.append(Outcome(part, f"skipped ({left:.0f} s of the budget left, needs {part.budget_s:.0f})", 0))
            continue
        print(f"[{index}/{len(parts)}] {part.name} (budget {part.budget_s:.0f} s)", flush=True)
        part_start = time.monotonic()
        with (log_dir / f"part-{index}.log").open("w") as log:
            try:
                code = subprocess.run(part.command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      env=process_environment(os.cpu_count() or 1, log_dir / f"part-{index}"),
                                      timeout=part.budget_s).returncode  # fmt: skip
                status = "passed" if code == 0 else f"failed (exit code {code})"
            except subprocess.TimeoutExpired:
                status = f"stopped at its budget ({part.budget_s:.0f} s)"
        outcomes.append(Outcome(part, status, time.monotonic() - part_start))
        print(f"    {status}", flush=True)
    return outcomes


def shown(command: Sequence[str]) -> str:
    """A command as a user types it: ``python``, and paths inside the repository relative to its root."""
    root = f"{REPO_ROOT}{os.sep}"
    words = ["python" if word == sys.executable else word.removeprefix(root) for word in command]
    return shlex.join(words)


def plan_text(parts: Sequence[Part], budget_s: float) -> str:
    lines = [
        f"GPU check: {len(parts)} parts, {sum(p.budget_s for p in parts):.0f} s of budgets within {budget_s:.0f} s"
    ]
    for index, part in enumerate(parts, 1):
        lines += [f"{index}. {part.name} ({part.budget_s:.0f} s)", f"   {shown(part.command)}"]
    return "\n".join(lines)


def write_summary(outcomes: Sequence[Outcome], args: Args, command: str) -> str:
    table = markdown_table(
        ["Part", "Outcome", "Wall time s", "Budget s", "Command"],
        [
            [o.part.name, o.status, f"{o.seconds:.0f}", f"{o.part.budget_s:.0f}", f"`{shown(o.part.command)}`"]
            for o in outcomes
        ],
    )
    text = "\n".join(
        [
            "# GPU check",
            "",
            *provenance_header(command, f"torch {torch.__version__}"),
            f"- **Wall time:** {sum(o.seconds for o in outcomes):.0f} s of a {args.budget_s:.0f} s budget",
            "",
            table,
            "",
            "Tables: `overhead/ops.md` (operators), `overhead/overhead.md` (update time), `throughput/throughput.md` "
            "(steps per second); logs: `part-<n>.log` (`part-1.log`: the CUDA tests).",
            "",
        ]
    )
    (args.results_dir / "summary.md").write_text(text)
    return text


def main(args: Args) -> None:
    parts = plan(args.results_dir, args.overwrite)
    if args.dry_run:
        print(plan_text(parts, args.budget_s))
        return
    logs = [f"part-{index}.log" for index in range(1, len(parts) + 1)]
    refuse_to_overwrite(args.results_dir, ["summary.md", "overhead", "throughput", *logs], args.overwrite)
    command = " ".join(["python -m benchmarks.gpu", *map(shlex.quote, sys.argv[1:])])
    args.results_dir.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():  # every part "not measured", never an estimate
        reason = "not measured (no CUDA device on this machine)"
        print(write_summary([Outcome(part, reason, 0.0) for part in parts], args, command))
        raise SystemExit(f"benchmarks.gpu needs a CUDA device: {reason}; --dry-run shows the plan")
    print(write_summary(run_plan(parts, args.budget_s, args.results_dir), args, command))


if __name__ == "__main__":
    main(tyro.cli(Args))
