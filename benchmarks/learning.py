"""Run a learning-benchmark suite in parallel, resumably, and aggregate it into tables and plots.

    python -m benchmarks.learning --suite quick --jobs 2            # run (or resume) and aggregate
    python -m benchmarks.learning --suite quick --dry-run           # what is done, resumes, is set aside, would run
    python -m benchmarks.learning --suite quick --aggregate-only    # only rebuild benchmarks/results/quick/
    python -m benchmarks.learning --suite paper --backend ray --address auto   # the same jobs on a Ray cluster

Every job is one agent process (see :mod:`benchmarks.suites` for the command-line contract) in its job directory
``<out-dir>/<group>/<job>/``: the runner's ``job.json`` (command, signature, attempts) and ``stdout.log``, and the
agent's run directory ``run/``. When a process exits 0 and its ``evaluations.csv`` is sound (every row complete and
finite) and reaches ``total_timesteps``, the runner writes ``DONE``.

Running the suite again never deletes anything:

- a job with ``DONE``, the same command and a sound ``evaluations.csv`` is skipped;
- a job with ``DONE`` whose command changed or whose ``evaluations.csv`` has a bad line is reported (file and line),
  moved to ``<job>.set-aside-<UTC time>/`` (the reason in ``SET_ASIDE``) and rerun;
- an interrupted job (no ``DONE``) continues from its checkpoint with the agent's ``--resume`` when the agent has it,
  the command is unchanged and the last attempt was not a failed resume; otherwise it is set aside and rerun.

Then :mod:`benchmarks.report` writes the results of the jobs that count to ``<results-dir>``: ``runs.csv`` (one row
per completed run), ``entropy.csv``, ``paper.csv``, ``summary.md`` (provenance, tables, runs left out and why),
``curves.png`` and ``summary.png``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import aggregate, report
from benchmarks.backends import (
    JOB_FILE,
    LOG_FILE,
    Backend,
    BackendError,
    Launch,
    LocalBackend,
    Outcome,
    RayBackend,
)
from benchmarks.provenance import REPO_ROOT, git_commit, hardware_description, utc_now
from benchmarks.report import NOT_RECORDED
from benchmarks.suites import PYTHON_PLACEHOLDER, SUITES, Job, Suite, distinct_runs
from era_utils.dependencies import MissingDependencyError
from era_utils.locks import DirectoryLock, DirectoryLockedError
from era_utils.run_files import CHECKPOINT_FILE

DONE_FILE = "DONE"
SET_ASIDE_FILE = "SET_ASIDE"

SuiteName = Literal["quick", "cpu", "ablation", "gpu", "cpu-long", "paper"]
"""The keys of :data:`benchmarks.suites.SUITES` (a Literal, so that ``--help`` lists them)."""


@dataclass
class Args:
    """Run (or resume) a learning-benchmark suite and aggregate its results."""

    suite: SuiteName = "quick"
    """which suite to run (defined in benchmarks/suites.py)"""
    out_dir: Path | None = None
    """directory of the run directories; None means the suite's own (benchmarks/runs/<suite> unless it says)"""
    results_dir: Path | None = None
    """where runs.csv, summary.md, curves.png and summary.png go; None means benchmarks/results/<suite>"""
    jobs: int = os.cpu_count() or 1
    """number of agent processes running at the same time"""
    threads_per_job: int | None = None
    """OMP/MKL threads per agent process; None means CPU cores // jobs, at least 1"""
    job_timeout_s: float | None = None
    """stop a job after this many seconds (SIGTERM: agents checkpoint; the run continues next time)"""
    backend: Literal["local", "ray"] = "local"
    """local: a process pool on this machine; ray: tasks on a Ray cluster (same run directories and results)"""
    address: str | None = None
    """--backend ray: the cluster's address (e.g. auto, ray://head:10001); None starts a local Ray instance"""
    dry_run: bool = False
    """only list which jobs are done, which resume and which would run, with their commands; changes nothing"""
    aggregate_only: bool = False
    """run nothing and move nothing; aggregate the completed runs under out-dir"""
    last_k_evals: int = 1
    """final score of a run = mean of its last k evaluations"""
    bootstrap_reps: int = 2000
    """bootstrap resamples for the confidence intervals"""
    bootstrap_seed: int = 0
    """seed of the bootstrap resampling"""
    confidence: float = 0.95
    """coverage of the confidence intervals"""
    python: str = sys.executable
    """interpreter that runs the agents"""
    groups: tuple[str, ...] = ()
    """run only these groups of the suite (all when empty); the results still aggregate every finished run"""
    seeds_per_process: int = 1
    """train up to this many consecutive seeds of a task and algorithm in one process, where the algorithm's agent can
    (``Algorithm.seeds_agent``) and the suite allows it; every seed keeps its own job and run directory"""

    def check(self) -> None:
        """Reject settings that cannot work, naming the flag."""
        if self.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {self.jobs}")
        if self.seeds_per_process < 1:
            raise ValueError(f"--seeds-per-process must be >= 1, got {self.seeds_per_process}")
        if self.threads_per_job is not None and self.threads_per_job < 1:
            raise ValueError(f"--threads-per-job must be >= 1, got {self.threads_per_job}")
        if self.job_timeout_s is not None and self.job_timeout_s <= 0:
            raise ValueError(f"--job-timeout-s must be > 0, got {self.job_timeout_s}")
        if self.last_k_evals < 1:
            raise ValueError(f"--last-k-evals must be >= 1, got {self.last_k_evals}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"--confidence must be in (0, 1), got {self.confidence}")
        if self.address is not None and self.backend != "ray":
            raise ValueError("--address only applies to --backend ray")

    def check_groups(self, suite: Suite) -> None:
        """Reject ``--groups`` names that ``suite`` does not have, listing the ones it has."""
        unknown = sorted(set(self.groups) - {group.name for group in suite.groups})
        if unknown:
            known = ", ".join(group.name for group in suite.groups)
            raise ValueError(f"--groups: suite {suite.name} has no group {', '.join(unknown)} (it has: {known})")


@dataclass(frozen=True)
class JobResult:
    """How a job ended: ``problem`` is None when it completed; ``started`` False when it never ran (interrupted or
    drained before its turn)."""

    job: Job
    wall_time_s: float
    problem: str | None
    started: bool = True


# --------------------------------------------------------------------------------------------------------------------
# The state of a job directory
# --------------------------------------------------------------------------------------------------------------------

Status = Literal["new", "done", "invalid", "partial"]


@dataclass(frozen=True)
class JobState:
    """What is on disk for a job.

    - ``new``: no job directory.
    - ``done``: ``DONE``, the same command, and a sound ``evaluations.csv`` that reaches the budget.
    - ``invalid``: ``DONE``, but one of those fails (``reason`` says which, with file and line): never deleted, set
      aside and rerun.
    - ``partial``: no ``DONE`` (interrupted, failed, timed out): ``resume`` says whether the agent's ``--resume``
      continues it, else ``reason`` says why it is set aside and rerun.
    """

    status: Status
    reason: str | None = None
    resume: bool = False


def read_job_metadata(job_dir: Path) -> dict[str, object] | None:
    """The runner's ``job.json`` of a job directory; None when it is missing or unreadable."""
    try:
        metadata = json.loads((job_dir / JOB_FILE).read_text())
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) else None


def command_change(job: Job, metadata: dict[str, object] | None) -> str | None:
    """Why the run on disk was made by another command than the job's current one (None: same command)."""
    if metadata is None:
        return f"no readable {JOB_FILE}: unknown command"
    recorded = metadata.get("signature")
    current = job.signature()
    if recorded == current:
        return None
    if not isinstance(recorded, list):
        return f"{JOB_FILE} records no command signature (written by an older runner)"
    removed = [part for part in recorded if part not in current]
    added = [part for part in current if part not in recorded]
    return f"command changed (was {shlex.join(map(str, recorded))}; now without {removed}, with {added})"


def evaluation_problem(job: Job) -> str | None:
    """Why the run's ``evaluations.csv`` does not show a finished run (file and line), or None."""
    evaluations, problems = aggregate.check_evaluations(job.run_dir)
    if problems:
        shown = "; ".join(map(str, problems[:3])) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        return f"unreadable evaluations: {shown}"
    final_step = int(evaluations["global_step"].max())
    if final_step < job.total_timesteps:
        return f"its last evaluation is at step {final_step} < total_timesteps {job.total_timesteps}"
    return None


def inspect_job(job: Job, supports_resume: Callable[[Job], bool] = lambda job: False) -> JobState:
    """Classify the job directory (reads only; see :class:`JobState`).

    :param supports_resume: whether the job's agent has ``--resume`` (asked only for partial runs with a checkpoint).
    """
    if not job.job_dir.exists():
        return JobState("new")
    metadata = read_job_metadata(job.job_dir)
    changed = command_change(job, metadata)
    if (job.job_dir / DONE_FILE).is_file():
        reason = changed or evaluation_problem(job)
        return JobState("invalid", reason) if reason else JobState("done")
    if changed:
        return JobState("partial", f"cannot resume: {changed}")
    if not (job.run_dir / CHECKPOINT_FILE).is_file():
        return JobState("partial", "interrupted before its first checkpoint")
    attempts = metadata.get("attempts") or [{}]
    last = attempts[-1]
    if last.get("kind") == "resume" and isinstance(last.get("outcome"), str) and "exit code" in last["outcome"]:
        return JobState("partial", f"resuming failed last time ({last['outcome']}; see {LOG_FILE})")
    if not supports_resume(job):
        return JobState("partial", f"{job.algorithm.label}'s agent has no --resume")
    return JobState("partial", resume=True)


def is_complete(job: Job) -> bool:
    """The job finished: ``DONE``, the same command, and sound evaluations that reach the budget."""
    return inspect_job(job).status == "done"


def read_done_marker(job_dir: Path) -> dict[str, object]:
    """The JSON content of a job's ``DONE`` marker (wall time, finish time, hardware)."""
    return json.loads((job_dir / DONE_FILE).read_text())


def set_aside(job_dir: Path, reason: str) -> Path:
    """Move a job directory to a sibling named ``<name>.set-aside-<UTC time>`` with the reason in ``SET_ASIDE``.

    Nothing is deleted: the runner sets a run aside instead, and the suite's job list never includes such siblings.
    """
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    target = job_dir.with_name(f"{job_dir.name}.set-aside-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = job_dir.with_name(f"{job_dir.name}.set-aside-{stamp}-{suffix}")
    job_dir.rename(target)
    (target / SET_ASIDE_FILE).write_text(f"set aside {utc_now().isoformat(timespec='seconds')}: {reason}\n")
    return target


_RESUME_OPTION = re.compile(r"(^|[\s\[])--resume([\s=\]]|$)", re.MULTILINE)
"""``--resume`` as an option in a usage or help listing (not inside a sentence's backticks)."""


class ResumeSupport:
    """Whether an algorithm's agent accepts ``--resume`` (its ``--help`` mentions it), asked once per algorithm."""

    def __init__(self, python: str) -> None:
        self.python = python
        self._known: dict[tuple[str, ...], bool] = {}

    def __call__(self, job: Job) -> bool:
        program = tuple(self.python if part == PYTHON_PLACEHOLDER else part for part in job.algorithm.command)
        if program not in self._known:
            try:
                result = subprocess.run(
                    [*program, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
                )
                self._known[program] = result.returncode == 0 and _RESUME_OPTION.search(result.stdout) is not None
            except (OSError, subprocess.TimeoutExpired):
                self._known[program] = False
        return self._known[program]


# --------------------------------------------------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------------------------------------------------


class Runner:
    """Turns jobs into launches (resume or fresh start, runs set aside first) and judges how they ended."""

    def __init__(
        self, python: str, env: dict[str, str], timeout_s: float | None, threads: int, hardware: str, commit: str
    ) -> None:
        self.python = python
        self.env = env
        self.timeout_s = timeout_s
        self.threads = threads
        self.hardware = hardware
        self.commit = commit
        self.supports_resume = ResumeSupport(python)

    def prepare(self, job: Job, console: Console) -> Launch | None:
        """Set aside what cannot be continued and say how to start the job; None if it is done."""
        state = inspect_job(job, self.supports_resume)
        if state.status == "done":
            return None
        if state.reason is not None:
            target = set_aside(job.job_dir, state.reason)
            console.print(f"[yellow]set aside[/] {job.group.name}/{job.run_name} -> {target.name}: {state.reason}")
        attempts = list(read_job_metadata(job.job_dir).get("attempts", [])) if state.resume else []
        attempts.append({"kind": "resume" if state.resume else "fresh", "started_at": _now(), "commit": self.commit})
        command = job.resume_command(self.python) if state.resume else job.command(self.python)
        metadata = {
            "group": job.group.name,
            "algorithm": job.algorithm.label,
            "task": job.task,
            "seed": job.seed,
            "total_timesteps": job.total_timesteps,
            "command": shlex.join(command),
            "signature": job.signature(),
            "attempts": attempts,
        }
        return Launch(tuple(command), job.job_dir, metadata, state.resume, REPO_ROOT, self.env, self.timeout_s,
                      self.threads)  # fmt: skip

    def finish(self, job: Job, launch: Launch, outcome: Outcome) -> JobResult:
        """Record the attempt's outcome in ``job.json`` and write ``DONE`` if the run is complete and sound."""
        if not outcome.started:
            return JobResult(job, 0.0, "not started", started=False)
        problem = self._problem(job, outcome.returncode)
        attempts = launch.metadata["attempts"]
        attempts[-1].update(wall_time_s=round(outcome.wall_time_s, 1), outcome=problem or "complete")
        (job.job_dir / JOB_FILE).write_text(json.dumps(launch.metadata, indent=2))
        if problem is None:
            marker = {
                "wall_time_s": round(sum(attempt.get("wall_time_s", 0.0) for attempt in attempts), 1),
                "attempts": len(attempts),
                "finished_at": _now(),
                "hardware": self.hardware,
                # A resumed run may span commits: every attempt's is kept.
                "commits": sorted({str(attempt.get("commit", NOT_RECORDED)) for attempt in attempts}),
            }
            (job.job_dir / DONE_FILE).write_text(json.dumps(marker, indent=2))
        return JobResult(job, outcome.wall_time_s, problem)

    def _problem(self, job: Job, returncode: int | None) -> str | None:
        if returncode is None:
            return f"timed out after {self.timeout_s:g} s"
        if returncode != 0:
            return f"exit code {returncode}"
        problem = evaluation_problem(job)
        return None if problem is None else f"exited 0 but {problem}"


def _now() -> str:
    return utc_now().isoformat(timespec="seconds")


def job_environment(threads_per_job: int) -> dict[str, str]:
    """Variables set for every agent: the thread count of the numeric libraries capped per job."""
    # Without a cap, every process starts one thread per core and parallel jobs oversubscribe the CPU.
    variables = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = {variable: str(threads_per_job) for variable in variables}
    env["PYTHONUNBUFFERED"] = "1"  # stdout.log follows progress live
    return env


def group_seeds(prepared: Sequence[tuple[Job, Launch]], seeds_per_process: int) -> list[list[int]]:
    """Which prepared jobs share a process: up to ``seeds_per_process`` consecutive seeds of one task and algorithm
    whose agent has a ``seeds_agent``, all started afresh or all resumed. The shared launch (the first job's, with the
    seeds agent's command) is recorded in every job's ``job.json``; its ``stdout.log`` is the first job's.

    :return: lists of indices into ``prepared``, in the order of their first job.
    """
    cells: dict[tuple, list[int]] = {}
    for index, (job, launch) in enumerate(prepared):
        can_share = seeds_per_process > 1 and job.algorithm.seeds_agent is not None
        key = (job.group.name, job.algorithm, job.task, launch.append_log) if can_share else (index,)
        cells.setdefault(key, []).append(index)
    processes: list[list[int]] = []
    for indices in cells.values():
        cell: list[list[int]] = []
        for index in sorted(indices, key=lambda index: prepared[index][0].seed):
            seed = prepared[index][0].seed
            if cell and len(cell[-1]) < seeds_per_process and prepared[cell[-1][-1]][0].seed == seed - 1:
                cell[-1].append(index)
            else:
                cell.append([index])
        processes += cell
    return sorted(processes, key=lambda process: process[0])


def shared_launch(prepared: Sequence[tuple[Job, Launch]], process: Sequence[int], python: str) -> Launch:
    """The launch of several seeds' jobs in one process; every job's ``job.json`` records its command."""
    first, launch = prepared[process[0]]
    if len(process) == 1:
        return launch
    command = first.seeds_command(python, len(process), resume=launch.append_log)
    for index in process:
        own = prepared[index][1]
        own.metadata.update(command=shlex.join(command), seeds_process=[prepared[i][0].seed for i in process])
    companions = tuple((prepared[index][0].job_dir, prepared[index][1].metadata) for index in process[1:])
    return dataclasses.replace(launch, command=tuple(command), companions=companions)


def run_jobs(
    jobs: Sequence[Job], runner: Runner, backend: Backend, console: Console, seeds_per_process: int = 1
) -> list[JobResult]:
    """Run ``jobs`` on ``backend``, showing progress; Ctrl-C stops everything (runs stay partial and resume), SIGUSR1
    drains: the running jobs finish and no other starts (rerun the same command to continue)."""
    prepared = [(job, launch) for job in jobs if (launch := runner.prepare(job, console)) is not None]
    processes = group_seeds(prepared, seeds_per_process)
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    def drain(signum: int, frame: object) -> None:
        backend.drain()
        console.print("[yellow]Draining[/] (SIGUSR1): the running jobs finish, no other starts.")

    previous_handler = _set_drain_handler(drain)
    try:
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("jobs finished", total=len(prepared))
            launches = [shared_launch(prepared, process, runner.python) for process in processes]
            for index, outcome in backend.run(launches):
                for job_index in processes[index]:  # every seed of the process ends with it
                    result = runner.finish(*prepared[job_index], outcome)
                    results.append(result)
                    progress.console.print(_describe(result))
                    progress.advance(bar)
    except KeyboardInterrupt:
        console.print("[bold red]Interrupted[/]: stopping running jobs; rerun the same command to resume.")
        backend.stop()
        raise
    finally:
        _set_drain_handler(previous_handler)
    return results


def _set_drain_handler(handler: Any) -> Any:
    """Install ``handler`` for SIGUSR1 where there is one and this is the main thread (signal handlers can only be
    set there); return the previous one (None where nothing was set)."""
    if handler is None or not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.signal(signal.SIGUSR1, handler)
    return signal.SIG_DFL if previous is None else previous  # None: a handler not set from Python


def _describe(result: JobResult) -> str:
    job = result.job
    name = f"{job.group.name}/{job.run_name}"
    if not result.started:
        return f"[yellow]not started[/] {name}"
    if result.problem is None:
        return f"[green]done[/]   {name} ({result.wall_time_s / 60:.1f} min)"
    return f"[red]failed[/] {name}: {result.problem} (log: {job.job_dir / LOG_FILE})"


# --------------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------------


def print_plan(jobs: Sequence[Job], python: str, console: Console) -> None:
    """List every job as done, resume, set aside and rerun, or new, with the command of those that would run."""
    supports_resume = ResumeSupport(python)
    pending = 0
    for job in jobs:
        name = f"{job.group.name}/{job.run_name}"
        state = inspect_job(job, supports_resume)
        if state.status == "done":
            console.print(f"[green]done[/]   {name}")
            continue
        pending += 1
        if state.resume:
            status, command = "[cyan]resume[/]", job.resume_command(python)
        elif state.reason is not None:
            status, command = f"[yellow]set aside and rerun[/] ({state.reason})", job.command(python)
        else:
            status, command = "[cyan]new[/]   ", job.command(python)
        console.print(f"{status} {name}\n      {shlex.join(command)}", highlight=False, soft_wrap=True)
    console.print(f"{pending} of {len(jobs)} jobs would run.")


def make_backend(args: Args) -> Backend:
    """The process pool, or Ray when ``--backend ray``."""
    if args.backend == "ray":
        return RayBackend(args.jobs, args.address, REPO_ROOT)
    return LocalBackend(args.jobs)


def report_results(
    suite: Suite,
    jobs: Sequence[Job],
    results_dir: Path,
    args: Args,
    command: str,
    commit: str,
    wall_time_s: float | None,
) -> None:
    """Hand the jobs that count (and those marked ``DONE`` that cannot count) to :func:`report.write_results`."""
    states = {job: inspect_job(job) for job in jobs}
    completed = {job: read_done_marker(job.job_dir) for job, state in states.items() if state.status == "done"}
    left_out = {job: str(state.reason) for job, state in states.items() if state.status == "invalid"}
    statistics = report.Statistics(args.last_k_evals, args.bootstrap_reps, args.bootstrap_seed, args.confidence)
    report.write_results(suite, jobs, completed, left_out, results_dir, statistics, command, commit, wall_time_s)


def run_benchmark(args: Args, suite: Suite, command: str, console: Console | None = None) -> int:
    """Run the suite's unfinished jobs (unless ``aggregate_only``), then aggregate; 1 if any job failed, else 0."""
    args.check()
    console = console or Console()
    out_dir = args.out_dir or REPO_ROOT / (suite.runs_dir or f"benchmarks/runs/{suite.name}")
    results_dir = args.results_dir or REPO_ROOT / "benchmarks" / "results" / suite.name
    args.check_groups(suite)
    jobs = suite.jobs(out_dir.resolve())
    owners = {job.job_dir: job for job in distinct_runs(jobs)}  # a shared run is trained as its own group's job
    chosen = distinct_runs([owners[job.job_dir] for job in jobs if not args.groups or job.group.name in args.groups])
    if args.dry_run:
        print_plan(chosen, args.python, console)
        return 0
    commit = git_commit()
    if args.aggregate_only:  # reads the runs and moves nothing, so it may look at a suite that is running
        report_results(suite, jobs, results_dir, args, command, commit, wall_time_s=None)
        console.print(f"Results in {results_dir}")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    # A second runner on the same runs would take the first one's live jobs for interrupted ones and set them aside.
    with DirectoryLock(out_dir, purpose=f"benchmarks.learning --suite {suite.name}"):
        pending = [job for job in chosen if not is_complete(job)]
        console.print(f"Suite {suite.name}: {len(chosen) - len(pending)} of {len(chosen)} jobs already done.")
        threads = args.threads_per_job or max(1, (os.cpu_count() or 1) // args.jobs)
        runner = Runner(
            args.python, job_environment(threads), args.job_timeout_s, threads, hardware_description(), commit
        )
        start = time.monotonic()
        seeds_per_process = suite.seeds_per_process or args.seeds_per_process
        results = run_jobs(pending, runner, make_backend(args), console, seeds_per_process)
        wall_time_s = time.monotonic() - start
        report_results(suite, jobs, results_dir, args, command, commit, wall_time_s)
    failed = [result for result in results if result.started and result.problem is not None]
    waiting = sum(not result.started for result in results)
    console.print(f"Results in {results_dir}")
    if waiting:
        console.print(f"{waiting} job(s) not started; rerun the same command to run them.")
    if failed:
        console.print(f"[red]{len(failed)} job(s) failed[/]; see their stdout.log. Rerun to retry them.")
    return 1 if failed else 0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = tyro.cli(Args, args=argv)
    try:
        args.check()
        args.check_groups(SUITES[args.suite])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Treat SIGTERM like Ctrl-C so that a killed runner also stops its agents instead of orphaning them.
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    command = shlex.join(["python", "-m", "benchmarks.learning", *argv])
    try:
        return run_benchmark(args, SUITES[args.suite], command)
    except KeyboardInterrupt:
        return 130
    except (BackendError, DirectoryLockedError, MissingDependencyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    sys.exit(main())
