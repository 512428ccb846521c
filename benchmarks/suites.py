"""Benchmark suites: which algorithms run on which tasks, with how many seeds and how many environment steps.

A :class:`Suite` is a list of :class:`Group` s. A group compares algorithms on the same tasks with the same budget
and gets one table (per-task rows plus an aggregate row per algorithm). Every agent obeys one command-line contract;
the runner appends to an algorithm's command::

    --env-id ID --seed S --total-timesteps N --log-dir DIR --run-name NAME --eval-every STEPS \\
    --eval-episodes K (--cuda | --no-cuda) --no-progress

and the agent writes ``episodes.csv``, ``evaluations.csv`` (ending with an evaluation at ``total_timesteps`` or
later), ``config.json`` and TensorBoard events into ``DIR/NAME`` (the runner passes ``--log-dir <job directory>
--run-name run``). Agents that also accept ``--resume DIR/NAME`` are continued from their last checkpoint
(``DIR/NAME/checkpoint.pt``) after an interruption; others are rerun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AGENT_RUN_NAME", "SUITES", "Algorithm", "Group", "Job", "Suite"]

PYTHON_PLACEHOLDER = "{python}"
"""Stands for the interpreter that runs the benchmark in an :class:`Algorithm` command."""


def slugify(text: str) -> str:
    """A file-name-safe lower-case form: ``dm_control/walker-walk-v0`` -> ``dm_control-walker-walk-v0``."""
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class Algorithm:
    """A learner: its label in tables and plots, and the command that trains it (run from the repository root).

    :param label: e.g. ``"PPO-ERA"``.
    :param command: program and algorithm-specific arguments; ``{python}`` is replaced by the interpreter.
    :param cuda: pass ``--cuda`` (else ``--no-cuda``).
    """

    label: str
    command: tuple[str, ...]
    cuda: bool = False

    @property
    def slug(self) -> str:
        return slugify(self.label)


@dataclass(frozen=True)
class Group:
    """Algorithms compared on the same tasks, seeds and budget.

    :param name: short identifier, used in directory names and table titles.
    :param eval_every: environment steps between deterministic evaluations.
    :param eval_episodes: episodes per evaluation.
    """

    name: str
    algorithms: tuple[Algorithm, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    total_timesteps: int
    eval_every: int
    eval_episodes: int = 10


@dataclass(frozen=True)
class Suite:
    """A named set of groups, run and reported together."""

    name: str
    description: str
    groups: tuple[Group, ...]

    def jobs(self, out_dir: Path) -> list[Job]:
        """All runs of the suite, seed-major so that an interrupted suite has covered every cell evenly."""
        jobs = [
            Job(group, algorithm, task, seed, out_dir / group.name)
            for group in self.groups
            for task in group.tasks
            for algorithm in group.algorithms
            for seed in group.seeds
        ]
        return sorted(jobs, key=lambda job: job.seed)


AGENT_RUN_NAME = "run"
"""The agent's run directory inside a job directory. The runner keeps its own files (``job.json``, ``stdout.log``,
``DONE``) beside it, because an agent refuses to start a new run in a directory that already exists."""

JOB_DIR_PLACEHOLDER = "{job_dir}"
"""Stands for the job directory in :meth:`Job.signature`, so that moving the runs does not change a job's identity."""


@dataclass(frozen=True)
class Job:
    """One training run: an algorithm on a task with a seed, in ``<log_dir>/<run_name>/`` (the job directory)."""

    group: Group
    algorithm: Algorithm
    task: str
    seed: int
    log_dir: Path

    @property
    def run_name(self) -> str:
        return f"{self.algorithm.slug}__{slugify(self.task)}__s{self.seed}"

    @property
    def job_dir(self) -> Path:
        """The runner's directory of this job: ``job.json``, ``stdout.log``, ``DONE`` and the agent's run."""
        return self.log_dir / self.run_name

    @property
    def run_dir(self) -> Path:
        """The agent's run directory (``evaluations.csv``, ``entropy.csv``, checkpoints, TensorBoard events)."""
        return self.job_dir / AGENT_RUN_NAME

    @property
    def total_timesteps(self) -> int:
        return self.group.total_timesteps

    def command(self, python: str, job_dir: str | None = None) -> list[str]:
        """The full command line: the algorithm's command followed by the contract's arguments.

        :param python: interpreter substituted for ``{python}``.
        :param job_dir: written as ``--log-dir``; None means this job's directory.
        """
        program = [python if part == PYTHON_PLACEHOLDER else part for part in self.algorithm.command]
        return [
            *program,
            *("--env-id", self.task),
            *("--seed", str(self.seed)),
            *("--total-timesteps", str(self.group.total_timesteps)),
            *("--log-dir", str(self.job_dir) if job_dir is None else job_dir),
            *("--run-name", AGENT_RUN_NAME),
            *("--eval-every", str(self.group.eval_every)),
            *("--eval-episodes", str(self.group.eval_episodes)),
            "--cuda" if self.algorithm.cuda else "--no-cuda",
            "--no-progress",
        ]

    def signature(self) -> list[str]:
        """What makes a finished run count for this job: the command, independent of interpreter and location."""
        return self.command(PYTHON_PLACEHOLDER, JOB_DIR_PLACEHOLDER)

    def resume_command(self, python: str) -> list[str]:
        """The command that continues this job's interrupted run from its last checkpoint."""
        return [*self.command(python), "--resume", str(self.run_dir)]


# --------------------------------------------------------------------------------------------------------------------
# Algorithms
# --------------------------------------------------------------------------------------------------------------------

PPO = Algorithm("PPO", (PYTHON_PLACEHOLDER, "agents/ppo_era.py", "--no-era"))
PPO_ERA = Algorithm("PPO-ERA", (PYTHON_PLACEHOLDER, "agents/ppo_era.py"))
SAC = Algorithm("SAC", (PYTHON_PLACEHOLDER, "agents/sac_era.py", "--no-era"), cuda=True)
SAC_ERA = Algorithm("SAC-ERA", (PYTHON_PLACEHOLDER, "agents/sac_era.py"), cuda=True)
# Stock SB3 SAC (MlpPolicy, automatic temperature) sized like our agents: 2x512 ELU networks, batch 256, 5000 warm-up
# steps, 2 gradient steps per environment step. A peer with the same capacity and update ratio, not a tuned SB3-zoo
# configuration (SB3's critics have no LayerNorm).
SB3_SAC = Algorithm(
    "SB3-SAC",
    (
        PYTHON_PLACEHOLDER,
        "benchmarks/sb3_agent.py",
        *("--algo", "sac", "--policy", "stock"),
        *("--net-arch", "512", "512", "--activation", "elu"),
        *("--batch-size", "256", "--learning-starts", "5000", "--gradient-steps", "2"),
    ),
    cuda=True,
)

# Stock SB3 PPO (MlpPolicy: 2x64 tanh, state-independent log-std) with VecNormalize for observations and rewards, as
# our PPO agents normalise both; SB3's defaults otherwise (2048-step rollouts, 10 epochs, minibatch 64, GAE 0.95).
SB3_PPO = Algorithm(
    "SB3-PPO",
    (PYTHON_PLACEHOLDER, "benchmarks/sb3_agent.py", *("--algo", "ppo", "--policy", "stock", "--normalize")),
)

MUJOCO_PAPER_TASKS = ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
# The paper's six HumanoidBench tasks are not named in our notes; these are the flat-locomotion and obstacle tasks of
# the h1hand robot that build on current MuJoCo (see era_policies/humanoid_bench.py).
HUMANOIDBENCH_PAPER_TASKS = (
    "h1hand-walk-v0",
    "h1hand-run-v0",
    "h1hand-stand-v0",
    "h1hand-slide-v0",
    "h1hand-pole-v0",
    "h1hand-hurdle-v0",
)

# --------------------------------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------------------------------

QUICK_TOTAL_TIMESTEPS = 60_000
"""Budget per run of the ``quick`` suite. 12 runs on 2 cores are 6 waves of 2: tune this to the measured speed of
``agents/ppo_era.py`` (training plus evaluation) so that the suite takes about 15 minutes."""

GPU_SAC_TOTAL_TIMESTEPS = 150_000
"""Budget per SAC run of the ``gpu`` suite (GPU jobs, 2 updates per environment step); tune to measured speed."""

GPU_PPO_TOTAL_TIMESTEPS = 500_000
"""Budget per PPO run of the ``gpu`` suite (CPU jobs): PPO-ERA ran at about 500 steps/s per core here, so a run
takes about 17 minutes; the suite's 54 jobs on 16 cores are about four such waves."""

PAPER_TOTAL_TIMESTEPS = 3_000_000
"""The paper's budget for both HumanoidBench (SAC) and MuJoCo Gym (PPO)."""

QUICK = Suite(
    name="quick",
    description=(
        "PPO vs PPO-ERA, with stock SB3 PPO as a peer, on two MuJoCo tasks, 3 seeds; about 12 minutes on 2 CPU cores "
        "(`--jobs 2`)."
    ),
    groups=(
        Group(
            name="ppo-mujoco",
            algorithms=(PPO, PPO_ERA, SB3_PPO),
            # Both show clear PPO progress within a few hundred thousand steps; Hopper's early episodes are short.
            tasks=("HalfCheetah-v5", "Hopper-v5"),
            seeds=(0, 1, 2),
            total_timesteps=QUICK_TOTAL_TIMESTEPS,
            eval_every=QUICK_TOTAL_TIMESTEPS // 10,
            eval_episodes=5,
        ),
    ),
)

GPU = Suite(
    name="gpu",
    description=(
        "SAC vs SAC-ERA (stock SB3 SAC as a peer, all on the GPU) on a MuJoCo and a DeepMind Control task, and PPO vs "
        "PPO-ERA and SB3 PPO (CPU) on the paper's four MuJoCo tasks, 3 seeds; meant to take under an hour on 16 cores "
        "and 1 GPU (`--jobs 16`); the budgets are estimates from CPU timings, not yet timed on such a machine."
    ),
    groups=(
        Group(
            name="sac",
            algorithms=(SAC, SAC_ERA, SB3_SAC),
            tasks=("HalfCheetah-v5", "dm_control/walker-walk-v0"),
            seeds=(0, 1, 2),
            total_timesteps=GPU_SAC_TOTAL_TIMESTEPS,
            eval_every=GPU_SAC_TOTAL_TIMESTEPS // 15,
            eval_episodes=5,
        ),
        Group(
            name="ppo-mujoco",
            algorithms=(PPO, PPO_ERA, SB3_PPO),
            tasks=MUJOCO_PAPER_TASKS,
            seeds=(0, 1, 2),
            total_timesteps=GPU_PPO_TOTAL_TIMESTEPS,
            eval_every=GPU_PPO_TOTAL_TIMESTEPS // 20,
            eval_episodes=5,
        ),
    ),
)

PAPER = Suite(
    name="paper",
    description=(
        "The paper's protocols: SAC vs SAC-ERA on 6 HumanoidBench tasks and PPO vs PPO-ERA on 4 MuJoCo Gym tasks, "
        "3M environment steps, 5 seeds. Paper's aggregate normalised scores: SAC 0.59 -> SAC-ERA 0.84, "
        "PPO 0.57 -> PPO-ERA 0.88."
    ),
    groups=(
        Group(
            name="sac-humanoidbench",
            algorithms=(SAC, SAC_ERA),
            tasks=HUMANOIDBENCH_PAPER_TASKS,
            seeds=(0, 1, 2, 3, 4),
            total_timesteps=PAPER_TOTAL_TIMESTEPS,
            eval_every=100_000,
            eval_episodes=10,
        ),
        Group(
            name="ppo-mujoco",
            algorithms=(PPO, PPO_ERA),
            tasks=MUJOCO_PAPER_TASKS,
            seeds=(0, 1, 2, 3, 4),
            total_timesteps=PAPER_TOTAL_TIMESTEPS,
            eval_every=100_000,
            eval_episodes=10,
        ),
    ),
)

SUITES: dict[str, Suite] = {suite.name: suite for suite in (QUICK, GPU, PAPER)}
