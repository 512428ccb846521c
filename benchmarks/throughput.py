"""Training throughput (environment steps per second after a burn-in): ERA against its twin, and the agents
against Stable-Baselines3, each run as its own process, repeats interleaved, one thread per process.

Every variant trains on the same environment with the same network sizes, batch size and update ratio. Steps per
second are read from the run's own TensorBoard events, the way LeanRL's ``measure_burnin`` reads them: between the
first step logged at or after ``--*-burn-in`` and the last step logged before the end of the run, so that process
start, environment creation, the random warm-up, compilation and the final evaluation do not count
(:func:`steps_per_second_after_burn_in`). Any program that logs scalars to TensorBoard with its global step can be
measured this way, which is how :mod:`benchmarks.peers` times CleanRL.

SAC family (batch 256, ELU networks) at LeanRL's setting (2x256, one update per step), at the released recipe (2x512,
two updates per step) and small (2x64, one update per step): ``agents/sac_era.py`` (ERA and ``--no-era``, each in
every ``--modes``: eager, ``--compile``, ``--cudagraphs``), SB3 ``SAC(ERASACPolicy)``, stock SB3 ``SAC``. PPO family
(2x64 tanh, 2048-step rollouts, 10 epochs, normalised observations and rewards): ``agents/ppo_era.py`` (ERA and
``--no-era``), SB3 ``PPO(ERAActorCriticPolicy)``, stock SB3 ``PPO``. Ratios: ERA / its twin (target at least 0.93)
and each variant / stock SB3. Known differences: the agents' SAC critics have LayerNorm (SB3's cannot) and use AdamW.

The compile row (``--compile-row``): in a fresh process with an empty Inductor cache, the SAC-ERA update of
``agents/sac_era.py --compile`` against the same update eager, alternating blocks in steady state, and the cold
compile time (targets: at least 1.4x, under 90 s); see :mod:`benchmarks.compile_probe`.

Seed throughput (``--seeds N ...``, issue 18): total environment steps per second over all seeds of
``agents/sac_era_seeds.py --num-seeds N`` (every seed steps at each global step, so N times its clock's steps) against
N single-seed ``agents/sac_era.py`` processes run one after another (their steps over the sum of their seconds, each
clocked after its own burn-in), for each network of ``--sac-settings``; eager, written to ``seeds.csv`` / ``seeds.md``
beside the table above (which it leaves as it is).

    python -m benchmarks.throughput --sac-settings leanrl                  # CPU, HalfCheetah-v5
    python -m benchmarks.throughput --cuda --algorithms sac --modes eager compile cudagraphs
    python -m benchmarks.throughput --seeds 3 5 --sac-settings released leanrl small

``--cuda`` without a CUDA device writes every row as "not measured". Results: ``benchmarks/results/throughput-burnin``
(``-cuda`` with ``--cuda``).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import tyro
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from benchmarks.aggregate import markdown_table
from benchmarks.provenance import REPO_ROOT, provenance_header, refuse_to_overwrite

Mode = Literal["eager", "compile", "cudagraphs"]
TWIN_RATIO_TARGET = 0.93
"""ERA's steps per second at least this fraction of its twin's (the paper's "< 7 %")."""


@dataclass(frozen=True)
class Setting:
    """Network size and update ratio of one row group, as agent flags and the matching SB3 flags."""

    label: str
    agent: tuple[str, ...]
    sb3: tuple[str, ...]


def _sac_setting(label: str, hidden: int, updates_per_step: int, learning_starts: int) -> Setting:
    agent = ("--hidden-dim", str(hidden), "--updates-per-step", str(updates_per_step))
    agent += ("--learning-starts", str(learning_starts))
    sb3 = (
        *("--net-arch", str(hidden), str(hidden), "--activation", "elu", "--batch-size", "256"),
        *("--train-freq", "1", "--gradient-steps", str(updates_per_step), "--learning-starts", str(learning_starts)),
    )
    return Setting(label, agent, sb3)


PPO_SB3_FLAGS = (
    *("--net-arch", "64", "64", "--activation", "tanh", "--batch-size", "64", "--n-steps", "2048"),
    *("--n-epochs", "10", "--normalize"),
)
POLICY_NAMES = {"sac": "ERASACPolicy", "ppo": "ERAActorCriticPolicy"}
AGENT_MODES = {"sac": ("eager", "compile", "cudagraphs"), "ppo": ("eager", "compile")}
"""The fast paths each agent has (``--compile``, ``--cudagraphs``); CUDA graphs only with ``--cuda``."""


@dataclass(kw_only=True)
class RunBudget:
    """How every measured run is made: environment, budgets, burn-ins, repeats, threads (shared with
    :mod:`benchmarks.peers`)."""

    env_id: str = "HalfCheetah-v5"
    """environment of every variant"""
    cuda: bool = False
    """train on the GPU (benchmarks.throughput without a CUDA device: every row written as 'not measured')"""
    algorithms: tuple[Literal["sac", "ppo"], ...] = ("sac", "ppo")
    """families to measure"""
    sac_total_timesteps: int = 12_000
    """SAC budget per run (SB3 SAC logs every 4 episodes, 4000 HalfCheetah steps: at least two logs must fall
    between the burn-in and the end)"""
    sac_learning_starts: int = 1_000
    """uniform-random steps before SAC updates start, in every program"""
    sac_burn_in: int = 3_000
    """SAC steps before the clock starts (the random warm-up, the first updates and any compilation)"""
    ppo_total_timesteps: int = 20_480
    """PPO budget per run (10 rollouts of 2048 steps)"""
    ppo_burn_in: int = 4_096
    """PPO steps before the clock starts (two rollouts and their updates)"""
    repeats: int = 3
    """runs per variant, interleaved; the median is reported"""
    threads: int = 1
    """CPU threads of every process (OMP/MKL threads, torch's intra-op threads, Inductor's compile workers)"""
    seed: int = 0
    """seed of every run"""
    run_timeout_s: float = 3_600.0
    """a run that takes longer is stopped and reported as failed"""

    def check(self) -> None:
        """Reject budgets that cannot give a clock, naming the flag."""
        for flag, value in (("--repeats", self.repeats), ("--threads", self.threads)):
            if value < 1:
                raise ValueError(f"{flag} must be >= 1, got {value}")
        for family in self.algorithms:
            burn_in, total = budget(family, self)
            if not 0 <= burn_in < total:
                raise ValueError(f"--{family}-burn-in must lie in [0, --{family}-total-timesteps), got {burn_in}")
        if "sac" in self.algorithms and self.sac_burn_in <= self.sac_learning_starts:
            raise ValueError(
                f"--sac-burn-in must be > --sac-learning-starts ({self.sac_learning_starts}): the clock would count "
                f"random steps without updates; got {self.sac_burn_in}"
            )


@dataclass(kw_only=True)
class Args(RunBudget):
    sac_settings: tuple[Literal["leanrl", "released", "small"], ...] = ("leanrl",)
    """leanrl: 2x256, one update per step (LeanRL's setting); released: 2x512, two updates per step; small: 2x64, one
    update per step"""
    modes: tuple[Mode, ...] = ("eager",)
    """the agents' fast paths to time: eager, --compile, --cudagraphs (CUDA only; agents without the flag skip it)"""
    compile_row: bool = True
    """also time the compiled SAC-ERA update against eager in steady state, and its cold compile"""
    results_dir: Path | None = None
    """where the results go; None: benchmarks/results/throughput-burnin (-cuda with --cuda)"""
    overwrite: bool = False
    """replace the results already in --results-dir (without it, a run into a directory holding them stops)"""
    seeds: tuple[int, ...] = ()
    """instead of the table above, seed throughput: for each N given (>= 2), sac_era_seeds.py --num-seeds N against
    N sac_era.py processes one after another, at each of --sac-settings (eager; seeds.csv and seeds.md)"""

    def check(self) -> None:
        super().check()
        if not self.seeds:
            return
        if min(self.seeds) < 2:
            raise ValueError(f"--seeds must be numbers of seeds >= 2 (1 is sac_era.py itself), got {self.seeds}")
        if self.modes != ("eager",) or "sac" not in self.algorithms:
            raise ValueError("--seeds times eager SAC only: leave --modes and --algorithms at eager and sac")


@dataclass(frozen=True)
class Variant:
    """One row of the table: the command that trains it once, and what its ratios are taken against.

    :param command: the program and its flags; it runs in an empty working directory, where it must write its
        TensorBoard events (anywhere below).
    :param burn_in: steps before the clock starts.
    :param total: the run's budget (``--total-timesteps``); events at or after it are not timed (final evaluation).
    :param twin: the name of the variant this one is the ERA of (for the ERA / twin ratio).
    :param pythonpath: directories the program imports from, besides this repository.
    """

    family: str
    setting: str
    name: str
    command: tuple[str, ...]
    burn_in: int
    total: int
    twin: str | None = None
    pythonpath: tuple[str, ...] = field(default=())
    seeds: int = 1
    """seeds the row trains, from ``--seed`` on: all in the command's one process (``--num-seeds``), or with
    ``one_process_per_seed`` the command once per seed, one after another"""
    one_process_per_seed: bool = False

    @property
    def clock_period(self) -> int:
        """The clock starts and stops only at logged steps that are multiples of this: for PPO the rollout length
        (every PPO program here: one environment, 2048-step rollouts), so that it spans whole iterations."""
        return PPO_ROLLOUT_STEPS if self.family == "ppo" else 1


CONTRACT_LOG_FLAGS = ("--log-dir", "runs", "--run-name", "run", "--no-progress")
"""Where programs with the agents' command line write (relative to their working directory)."""


def agent_command(family: str, flags: Sequence[str]) -> tuple[str, ...]:
    return (sys.executable, str(REPO_ROOT / "agents" / f"{family}_era.py"), *flags, *CONTRACT_LOG_FLAGS)


def sb3_command(flags: Sequence[str]) -> tuple[str, ...]:
    return (sys.executable, str(REPO_ROOT / "benchmarks" / "sb3_agent.py"), *flags, *CONTRACT_LOG_FLAGS)


PPO_ROLLOUT_STEPS = 2048
"""Steps per PPO iteration in every PPO program here (one environment, 2048-step rollouts)."""


def budget(family: str, args: RunBudget) -> tuple[int, int]:
    """``(burn_in, total)`` steps of a family's runs."""
    if family == "sac":
        return args.sac_burn_in, args.sac_total_timesteps
    return args.ppo_burn_in, args.ppo_total_timesteps


def contract_flags(total: int, args: RunBudget) -> tuple[str, ...]:
    """The flags every contract program gets: environment, budget, seed, device, one final 1-episode evaluation."""
    return (
        *("--env-id", args.env_id, "--total-timesteps", str(total), "--seed", str(args.seed)),
        *("--eval-every", str(10 * total), "--eval-episodes", "1"),
        "--cuda" if args.cuda else "--no-cuda",
    )


def settings(family: str, args: Args) -> list[Setting]:
    if family == "ppo":
        return [Setting("2x64 tanh, 2048-step rollouts, 10 epochs of minibatch 64", (), PPO_SB3_FLAGS)]
    known = {
        "leanrl": _sac_setting("2x256, 1 update/step (LeanRL)", 256, 1, args.sac_learning_starts),
        "released": _sac_setting("2x512, 2 updates/step (released recipe)", 512, 2, args.sac_learning_starts),
        "small": _sac_setting("2x64, 1 update/step", 64, 1, args.sac_learning_starts),
    }
    return [known[name] for name in args.sac_settings]


def variants(args: Args) -> list[Variant]:
    """Per family and setting: the agent (ERA and ``--no-era``, in every requested mode), then SB3 with the ERA policy
    and stock SB3, all with the same sizes and update ratio."""
    rows = []
    for family in args.algorithms:
        burn_in, total = budget(family, args)
        common = contract_flags(total, args)
        agent_only = ("--checkpoint-every", "0") + (("--log-every", "500") if family == "sac" else ())
        modes = [mode for mode in args.modes if mode in AGENT_MODES[family] and (args.cuda or mode != "cudagraphs")]
        for setting in settings(family, args):
            for mode in modes:
                suffix = "" if mode == "eager" else f" --{mode}"
                mode_flags = () if mode == "eager" else (f"--{mode}",)
                era_name, twin_name = f"agents/{family}_era.py{suffix}", f"agents/{family}_era.py --no-era{suffix}"
                for name, era_flag, twin in ((era_name, "--era", twin_name), (twin_name, "--no-era", None)):
                    flags = (*common, *agent_only, *setting.agent, *mode_flags, era_flag)
                    rows.append(
                        Variant(family, setting.label, name, agent_command(family, flags), burn_in, total, twin)
                    )
            stock = f"SB3 {family.upper()}"
            sb3_common = (*common, "--algo", family, *setting.sb3)
            era = Variant(family, setting.label, f"{stock}({POLICY_NAMES[family]})",
                          sb3_command((*sb3_common, "--policy", "era")), burn_in, total, stock)  # fmt: skip
            rows += [era, Variant(family, setting.label, stock, sb3_command((*sb3_common, "--policy", "stock")),
                                  burn_in, total)]  # fmt: skip
    return rows


STACKED_SEEDS, SEED_PROCESSES = "agents/sac_era_seeds.py, one process", "agents/sac_era.py, a process per seed"
"""The two rows of each seed-throughput setting; the first's ``ratio_to_processes`` is against the second."""


def seed_variants(args: Args) -> list[Variant]:
    """Per network of ``--sac-settings`` and N of ``--seeds``: N seeds in one ``sac_era_seeds.py`` process, then the
    same N seeds as ``sac_era.py`` processes one after another, with the same flags."""
    burn_in, total = budget("sac", args)
    rows = []
    for setting in settings("sac", args):
        flags = (*contract_flags(total, args), "--checkpoint-every", "0", "--log-every", "500", *setting.agent)
        for num_seeds in args.seeds:
            label = f"{setting.label}, {num_seeds} seeds"
            seeds_agent = (sys.executable, str(REPO_ROOT / "agents" / "sac_era_seeds.py"), *flags)
            seeds_agent += ("--num-seeds", str(num_seeds), "--run-dirs", "runs/run-{seed}", "--no-progress")
            rows += [Variant("sac", label, STACKED_SEEDS, seeds_agent, burn_in, total, seeds=num_seeds),
                     Variant("sac", label, SEED_PROCESSES, agent_command("sac", flags), burn_in, total,
                             seeds=num_seeds, one_process_per_seed=True)]  # fmt: skip
    return rows


# ------------------------------------------------------------------------------------------------------ measuring
@dataclass(frozen=True)
class Clock:
    """Steps and seconds between the first logged step at or after the burn-in and the last one before the end."""

    first_step: int
    last_step: int
    seconds: float
    seeds: int = 1
    """seeds that each took the steps from ``first_step`` to ``last_step`` in these seconds"""

    @property
    def steps(self) -> int:
        """Environment steps over all seeds."""
        return (self.last_step - self.first_step) * self.seeds

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


def logged_step_times(run_dir: Path) -> dict[int, float]:
    """Every global step at which a program wrote a TensorBoard scalar, with the earliest wall time written at it."""
    times: dict[int, float] = {}
    for path in sorted(run_dir.rglob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            if event.HasField("summary") and event.summary.value:
                times[event.step] = min(times.get(event.step, np.inf), event.wall_time)
    return times


def steps_per_second_after_burn_in(run_dir: Path, burn_in: int, total: int, period: int = 1) -> Clock:
    """The clock of one run from its TensorBoard events (see the module docstring).

    :param period: use only logged steps that are multiples of this (a PPO rollout: a clock between two iteration
        logs spans whole iterations, one between an episode end and an iteration log would not).
    :raises ValueError: if fewer than two such steps were logged in ``[burn_in, total)`` (a longer run or a smaller
        burn-in is needed).
    """
    times = logged_step_times(run_dir)
    steps = sorted(step for step in times if burn_in <= step < total and step % period == 0)
    if len(steps) < 2:
        raise ValueError(
            f"{run_dir}: fewer than two steps (multiples of {period}) logged between the burn-in ({burn_in}) and the "
            f"end ({total}); logged steps: {sorted(times)[:20]}... Raise the budget or lower the burn-in."
        )
    return Clock(steps[0], steps[-1], times[steps[-1]] - times[steps[0]])


def process_environment(threads: int, work_dir: Path, pythonpath: Sequence[str] = ()) -> dict[str, str]:
    """The environment of every measured process: ``threads`` threads everywhere, this repository (and
    ``pythonpath``) importable, and an Inductor cache of its own, so that every compilation is cold alike."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCHINDUCTOR_COMPILE_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    env["TORCHINDUCTOR_CACHE_DIR"] = str(work_dir / "inductor-cache")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_once(variant: Variant, work_dir: Path, threads: int, timeout_s: float) -> Clock:
    """Train ``variant`` once in ``work_dir`` (created, must not exist) and read its clock.

    :raises RuntimeError: if the program fails or times out (with the end of its output).
    """
    work_dir.mkdir(parents=True)
    if variant.one_process_per_seed:  # each seed's process clocked alone; their steps over the sum of their seconds
        at = variant.command.index("--seed") + 1
        clocks = [
            run_once(replace(variant, command=(*variant.command[:at], str(int(variant.command[at]) + offset),
                                               *variant.command[at + 1 :]), seeds=1, one_process_per_seed=False),
                     work_dir / f"seed-{offset}", threads, timeout_s)
            for offset in range(variant.seeds)
        ]  # fmt: skip
        if len({(clock.first_step, clock.last_step) for clock in clocks}) != 1:
            raise RuntimeError(f"{variant.name}: the seeds' clocks span different steps: {clocks}")
        return Clock(clocks[0].first_step, clocks[0].last_step, sum(clock.seconds for clock in clocks), variant.seeds)
    log = work_dir / "output.log"
    with log.open("w") as out:
        try:
            code = subprocess.run(variant.command, cwd=work_dir, stdout=out, stderr=subprocess.STDOUT,
                                  env=process_environment(threads, work_dir, variant.pythonpath),
                                  timeout=timeout_s).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout_s:.0f} s"
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise RuntimeError(f"{variant.name} failed ({code}): {shlex.join(variant.command)}\n{tail}")
    clock = steps_per_second_after_burn_in(work_dir, variant.burn_in, variant.total, variant.clock_period)
    return replace(clock, seeds=variant.seeds)  # several seeds in this process: each at every logged step


def measure(
    table: Sequence[Variant],
    repeats: int,
    threads: int,
    timeout_s: float,
    on_run: Callable[[pd.DataFrame], object] | None = None,
) -> pd.DataFrame:
    """Every variant ``repeats`` times, variants interleaved within each repeat; one row per run.

    :param on_run: called with the runs so far after every run (to write partial results).
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="throughput-") as scratch:
        for repeat in range(repeats):
            for index, variant in enumerate(table):
                clock = run_once(variant, Path(scratch) / f"{index}-{repeat}", threads, timeout_s)
                rows.append({"family": variant.family, "setting": variant.setting, "variant": variant.name,
                             "repeat": repeat, "first_step": clock.first_step, "last_step": clock.last_step,
                             "steps": clock.steps, "seconds": clock.seconds})  # fmt: skip
                print(f"{variant.name} [{variant.setting}]: {clock.steps_per_second:.1f} steps/s", flush=True)
                if on_run is not None:
                    on_run(pd.DataFrame(rows))
    return pd.DataFrame(rows)


def not_measured(table: Sequence[Variant]) -> pd.DataFrame:
    """Every row of the table, without numbers (``seconds`` NaN): never estimated."""
    rows = [{"family": v.family, "setting": v.setting, "variant": v.name, "repeat": 0,
             "steps": (v.total - v.burn_in) * v.seeds} for v in table]  # fmt: skip
    return pd.DataFrame(rows).assign(seconds=np.nan)


def summarize(
    runs: pd.DataFrame, table: Sequence[Variant] = (), references: Mapping[str, Mapping[str, str]] | None = None
) -> pd.DataFrame:
    """Median steps per second per variant, with ratios of medians: ``ratio_to_twin`` for the ERA variants of
    ``table``, and one column per entry of ``references`` (``{column: {family: variant name}}``; default
    ``ratio_to_sb3``, against stock SB3 of the same family), each within the same family and setting. NaN where a
    row was not measured."""
    runs = runs.assign(steps_per_second=runs["steps"] / runs["seconds"])
    keys = ["family", "setting", "variant"]
    summary = runs.groupby(keys, sort=False)["steps_per_second"].agg(["median", "min", "max"]).reset_index()
    medians = summary.set_index(keys)["median"]
    twins = {variant.name: variant.twin for variant in table}
    if references is None:
        references = {"ratio_to_sb3": {family: f"SB3 {family.upper()}" for family in summary["family"].unique()}}
    columns = {"ratio_to_twin": lambda row: twins.get(row["variant"])}
    columns |= {name: (lambda row, names=names: names.get(row["family"])) for name, names in references.items()}
    for column, reference_of in columns.items():
        summary[column] = [
            row["median"] / medians.get((row["family"], row["setting"], reference_of(row)), np.nan)
            for _, row in summary.iterrows()
        ]
    return summary


def _cells(row: pd.Series) -> list[str]:
    if not np.isfinite(row["median"]):
        return ["not measured"] * 4
    twin = row["ratio_to_twin"]
    twin_cell = "-" if not np.isfinite(twin) else f"{twin:.2f}x ({'met' if twin >= TWIN_RATIO_TARGET else 'missed'})"
    return [*_speed_cells(row), twin_cell, f"{row['ratio_to_sb3']:.2f}x"]


def _seed_cells(row: pd.Series) -> list[str]:
    if not np.isfinite(row["median"]):
        return ["not measured"] * 3
    ratio = "-" if row["variant"] == SEED_PROCESSES else f"{row['ratio_to_processes']:.2f}x"  # the reference: "-"
    return [*_speed_cells(row), ratio]


def _speed_cells(row: pd.Series) -> list[str]:
    return [f"{row['median']:.0f}", f"{row['min']:.0f}-{row['max']:.0f}"]


def results_directory(args: Args) -> Path:
    default = "throughput-burnin-cuda" if args.cuda else "throughput-burnin"
    return args.results_dir or REPO_ROOT / "benchmarks" / "results" / default


def provenance_lines(command: str, device: str, threads: int) -> list[str]:
    return provenance_header(
        command, f"torch {torch.__version__}; {threads} thread(s) per process; training on {device}"
    )


def write_results(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    compile_row: dict | None,
    args: Args,
    command: str,
    device: str,
    runs_planned: int | None = None,
) -> str:
    """``throughput.csv`` (every run), ``compile.json`` (the compile row) and ``throughput.md``; with ``--seeds``
    ``seeds.csv`` and ``seeds.md`` instead (the seed-throughput rows). With fewer runs than ``runs_planned``, the
    Markdown says it is incomplete."""
    results_dir = results_directory(args)
    results_dir.mkdir(parents=True, exist_ok=True)
    runs.to_csv(results_dir / f"{'seeds' if args.seeds else 'throughput'}.csv", index=False)
    clock = (
        "Steps per second between the first TensorBoard step logged at or after the burn-in and the last one logged "
        "before the end (process start, warm-up, compilation and the final evaluation excluded)."
    )
    if args.seeds:
        title = "# Seed throughput: N seeds in one process against a process per seed"
        table = markdown_table(
            ["Setting", "Variant", "Steps/s over all seeds (median)", "Range over repeats", "vs a process per seed"],
            [[row["setting"], row["variant"], *_seed_cells(row)] for _, row in summary.iterrows()],
        )
        setup = (
            f"{args.env_id}; SAC-ERA (ELU, LayerNorm critics, batch 256, settings as in the table), "
            f"{args.sac_total_timesteps} steps per seed ({args.sac_learning_starts} random), clock from step "
            f"{args.sac_burn_in}; N seeds from seed {args.seed} in one sac_era_seeds.py process (N times its steps) "
            "against the same N seeds as sac_era.py processes run one after another (their steps over the sum of "
            f"their clocked seconds); {args.repeats} interleaved repeats. {clock}"
        )
    else:
        title = "# Training throughput after a burn-in"
        headers = ["Family", "Setting", "Variant", "Steps/s (median)", "Range over repeats"]
        table = markdown_table(
            [*headers, f"ERA / twin (target >= {TWIN_RATIO_TARGET})", "vs stock SB3"],
            [[row["family"].upper(), row["setting"], row["variant"], *_cells(row)] for _, row in summary.iterrows()],
        )
        setup = (
            f"{args.env_id}; SAC: {args.sac_total_timesteps} steps ({args.sac_learning_starts} random), ELU, batch "
            f"256, settings as in the table, clock from step {args.sac_burn_in}; PPO: {args.ppo_total_timesteps} "
            f"steps, clock from step {args.ppo_burn_in}. Every run its own process; {args.repeats} interleaved "
            f"repeats. {clock}"
        )
    lines = [
        title,
        "",
        *provenance_lines(command, device, args.threads),
        f"- **Setup:** {setup}",
        *([f"- **Incomplete:** {len(runs)} of {runs_planned} runs"] if len(runs) < (runs_planned or 0) else []),
        "",
        table,
        "",
    ]
    if compile_row is not None:
        (results_dir / "compile.json").write_text(json.dumps(compile_row, indent=2) + "\n")
        lines += [compile_table(compile_row), ""]
    text = "\n".join(lines)
    (results_dir / f"{'seeds' if args.seeds else 'throughput'}.md").write_text(text)
    return text


COMPILE_SPEEDUP_TARGET, COLD_COMPILE_TARGET_S = 1.4, 90.0


def compile_table(row: dict) -> str:
    """The compile row: steady-state speed-up of the compiled SAC-ERA update and its cold compile time."""
    if row.get("note"):
        cells = [row["note"]] * 4
    else:
        speedup = f"{row['speedup']:.2f}x [{row['speedup_q25']:.2f}, {row['speedup_q75']:.2f}]"
        speedup += f" ({'met' if row['speedup'] >= COMPILE_SPEEDUP_TARGET else 'missed'})"
        cold = f"{row['cold_compile_s']:.0f} ({'met' if row['cold_compile_s'] < COLD_COMPILE_TARGET_S else 'missed'})"
        cells = [f"{row['eager_ms']:.2f}", f"{row['compiled_ms']:.2f}", speedup, cold]
    return "\n".join(
        [
            f"## `--compile`: the SAC-ERA update ({row['setting']})",
            "",
            markdown_table(
                [
                    "Eager ms",
                    "Compiled ms",
                    f"Speed-up, median [IQR] (target >= {COMPILE_SPEEDUP_TARGET}x)",
                    f"Cold compile s (target < {COLD_COMPILE_TARGET_S:.0f})",
                ],
                [cells],
            ),
        ]
    )


def compile_probe(args: Args) -> dict:
    """The compile row, measured in a fresh process with an empty Inductor cache (:mod:`benchmarks.compile_probe`)."""
    device = "cuda" if args.cuda else "cpu"
    command = [sys.executable, "-m", "benchmarks.compile_probe", "--device", device, "--hidden-dim", "256"]
    with tempfile.TemporaryDirectory(prefix="compile-probe-") as scratch:
        output = subprocess.run(command, cwd=REPO_ROOT, env=process_environment(args.threads, Path(scratch)),
                                capture_output=True, text=True, timeout=args.run_timeout_s)  # fmt: skip
    if output.returncode != 0:
        raise RuntimeError(f"compile probe failed: {shlex.join(command)}\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(args: Args) -> None:
    args.check()
    command = " ".join(["python -m benchmarks.throughput", *map(shlex.quote, sys.argv[1:])])
    table = seed_variants(args) if args.seeds else variants(args)
    references = {"ratio_to_processes": {"sac": SEED_PROCESSES}} if args.seeds else None
    summary = functools.partial(summarize, table=table, references=references)
    with_compile_row = args.compile_row and not args.seeds
    outputs = [f"{'seeds' if args.seeds else 'throughput'}.{kind}" for kind in ("csv", "md")]
    outputs += ["compile.json"] if with_compile_row else []
    refuse_to_overwrite(results_directory(args), outputs, args.overwrite)
    setting = "2x256, batch 256, HalfCheetah sizes"
    if args.cuda and not torch.cuda.is_available():
        reason = "not measured (no CUDA device on this machine)"
        runs, device, compile_row = not_measured(table), f"CUDA: {reason}", {"setting": setting, "note": reason}
    else:
        device, planned = "CUDA" if args.cuda else "CPU", args.repeats * len(table)

        def write_partial(runs_so_far: pd.DataFrame) -> None:
            write_results(runs_so_far, summary(runs_so_far), None, args, command, device, planned)

        runs = measure(table, args.repeats, args.threads, args.run_timeout_s, write_partial)
        compile_row = {"setting": setting, **compile_probe(args)} if with_compile_row else None
    print(write_results(runs, summary(runs), compile_row if with_compile_row else None, args, command, device))


if __name__ == "__main__":
    main(tyro.cli(Args))
