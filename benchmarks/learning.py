"""Run a learning-benchmark suite in parallel, resumably, and aggregate it into tables and plots.

    python -m benchmarks.learning --suite quick --jobs 2            # run (or resume) and aggregate
    python -m benchmarks.learning --suite quick --dry-run           # list what is done and what would run
    python -m benchmarks.learning --suite quick --aggregate-only    # only rebuild benchmarks/results/quick/

Every job is one agent process (see :mod:`benchmarks.suites` for the command-line contract) writing into its run
directory ``<out-dir>/<group>/<run-name>/``, with its stdout and stderr in ``stdout.log`` there. When a process exits 0
and its ``evaluations.csv`` reaches ``total_timesteps``, the runner writes a ``DONE`` marker. A rerun skips jobs with
that marker and wipes and reruns every other existing run directory, so an interrupted suite resumes where it stopped.

Results go to ``<results-dir>``: ``runs.csv`` (one row per completed run), ``summary.md`` (provenance and tables),
``curves.png`` and ``summary.png``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import tyro
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import aggregate
from benchmarks.provenance import REPO_ROOT, git_commit, hardware_description, utc_now
from benchmarks.suites import SUITES, Job, Suite

DONE_FILE = "DONE"
JOB_FILE = "job.json"
LOG_FILE = "stdout.log"

SuiteName = Literal["quick", "gpu", "paper"]
"""The keys of :data:`benchmarks.suites.SUITES` (a Literal, so that ``--help`` lists them)."""


@dataclass
class Args:
    """Run (or resume) a learning-benchmark suite and aggregate its results."""

    suite: SuiteName = "quick"
    """which suite to run (defined in benchmarks/suites.py)"""
    out_dir: Path | None = None
    """directory of the run directories; None means benchmarks/runs/<suite>"""
    results_dir: Path | None = None
    """where runs.csv, summary.md, curves.png and summary.png go; None means benchmarks/results/<suite>"""
    jobs: int = os.cpu_count() or 1
    """number of agent processes running at the same time"""
    threads_per_job: int | None = None
    """OMP/MKL threads per agent process; None means CPU cores // jobs, at least 1"""
    job_timeout_s: float | None = None
    """kill a job after this many seconds (it then counts as failed and reruns next time)"""
    dry_run: bool = False
    """only list which jobs are done and which would run, with their commands"""
    aggregate_only: bool = False
    """run nothing; aggregate the completed runs under out-dir"""
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


@dataclass(frozen=True)
class JobResult:
    """How a job ended: ``problem`` is None when it completed."""

    job: Job
    wall_time_s: float
    problem: str | None


# --------------------------------------------------------------------------------------------------------------------
# Completion markers
# --------------------------------------------------------------------------------------------------------------------


def final_evaluation_step(run_dir: Path) -> int | None:
    """Largest ``global_step`` in the run's ``evaluations.csv``; None if it is missing, empty or unreadable."""
    try:
        steps = pd.read_csv(run_dir / "evaluations.csv")["global_step"]
    except (OSError, ValueError, KeyError, pd.errors.EmptyDataError):
        return None
    return int(steps.max()) if len(steps) else None


def is_complete(job: Job) -> bool:
    """The job finished: the runner wrote its ``DONE`` marker and its evaluations reach the suite's budget.

    Checking the budget as well means that changing a suite's ``total_timesteps`` reruns its old runs.
    """
    if not (job.run_dir / DONE_FILE).is_file():
        return False
    final_step = final_evaluation_step(job.run_dir)
    return final_step is not None and final_step >= job.total_timesteps


def read_done_marker(run_dir: Path) -> dict[str, object]:
    """The JSON content of a run's ``DONE`` marker (wall time, finish time, hardware)."""
    return json.loads((run_dir / DONE_FILE).read_text())


# --------------------------------------------------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------------------------------------------------


class JobPool:
    """Runs jobs as subprocesses (one thread waits on each) and can stop all of them at once."""

    def __init__(self, python: str, env: dict[str, str], timeout_s: float | None, hardware: str) -> None:
        self.python = python
        self.env = env
        self.timeout_s = timeout_s
        self.hardware = hardware
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self._stopping = False

    def run(self, job: Job) -> JobResult:
        """Start from an empty run directory, run the agent, and mark the run ``DONE`` if it completed."""
        if job.run_dir.exists():
            shutil.rmtree(job.run_dir)  # a partial run: results of an interrupted process cannot be trusted
        job.run_dir.mkdir(parents=True)
        command = job.command(self.python)
        (job.run_dir / JOB_FILE).write_text(json.dumps(_job_metadata(job, command), indent=2))
        start = time.monotonic()
        with open(job.run_dir / LOG_FILE, "w") as log:
            with self._lock:
                if self._stopping:
                    return JobResult(job, 0.0, "not started: the benchmark was interrupted")
                process = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
                self._live.add(process)
            try:
                returncode = process.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                returncode = None
            finally:
                with self._lock:
                    self._live.discard(process)
        wall_time_s = time.monotonic() - start
        problem = self._problem(job, returncode)
        if problem is None:
            marker = {
                "wall_time_s": round(wall_time_s, 1),
                "finished_at": utc_now().isoformat(timespec="seconds"),
                "hardware": self.hardware,
            }
            (job.run_dir / DONE_FILE).write_text(json.dumps(marker, indent=2))
        return JobResult(job, wall_time_s, problem)

    def stop(self) -> None:
        """Start no new job and terminate the running ones (their run directories stay partial and will rerun)."""
        with self._lock:
            self._stopping = True
            for process in self._live:
                process.terminate()

    def _problem(self, job: Job, returncode: int | None) -> str | None:
        if returncode is None:
            return f"timed out after {self.timeout_s:g} s"
        if returncode != 0:
            return f"exit code {returncode}"
        final_step = final_evaluation_step(job.run_dir)
        if final_step is None:
            return "exited 0 but wrote no readable evaluations.csv"
        if final_step < job.total_timesteps:
            return f"exited 0 but its last evaluation is at step {final_step} < total_timesteps {job.total_timesteps}"
        return None


def _job_metadata(job: Job, command: list[str]) -> dict[str, object]:
    return {
        "group": job.group.name,
        "algorithm": job.algorithm.label,
        "task": job.task,
        "seed": job.seed,
        "total_timesteps": job.total_timesteps,
        "command": shlex.join(command),
    }


def job_environment(threads_per_job: int) -> dict[str, str]:
    """The agents' environment: this one, with the thread count of the numeric libraries capped per job."""
    env = dict(os.environ)
    # Without a cap, every process starts one thread per core and parallel jobs oversubscribe the CPU.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[variable] = str(threads_per_job)
    env["PYTHONUNBUFFERED"] = "1"  # stdout.log follows progress live
    return env


def run_jobs(jobs: Sequence[Job], pool: JobPool, parallel: int, console: Console) -> list[JobResult]:
    """Run ``jobs`` with at most ``parallel`` at a time, showing progress; Ctrl-C stops everything cleanly."""
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    executor = ThreadPoolExecutor(max_workers=parallel)
    try:
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("jobs finished", total=len(jobs))
            futures = [executor.submit(pool.run, job) for job in jobs]
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                progress.console.print(_describe(result))
                progress.advance(bar)
    except KeyboardInterrupt:
        console.print("[bold red]Interrupted[/]: stopping running jobs; rerun the same command to resume.")
        executor.shutdown(wait=False, cancel_futures=True)
        pool.stop()
        raise
    finally:
        executor.shutdown(wait=True)
    return results


def _describe(result: JobResult) -> str:
    job = result.job
    name = f"{job.group.name}/{job.run_name}"
    if result.problem is None:
        return f"[green]done[/]   {name} ({result.wall_time_s / 60:.1f} min)"
    return f"[red]failed[/] {name}: {result.problem} (log: {job.run_dir / LOG_FILE})"


# --------------------------------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------------
# Aggregation into the results directory
# --------------------------------------------------------------------------------------------------------------------


def collect_evaluations(jobs: Sequence[Job]) -> pd.DataFrame:
    """Evaluations of all completed jobs, with the run keys as columns."""
    frames = []
    for job in jobs:
        if is_complete(job):
            evaluations = aggregate.load_evaluations(job.run_dir)
            keys = {"group": job.group.name, "task": job.task, "algorithm": job.algorithm.label, "seed": job.seed}
            frames.append(evaluations.assign(**keys))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_results(
    suite: Suite,
    jobs: Sequence[Job],
    results_dir: Path,
    args: Args,
    command: str,
    wall_time_s: float | None,
) -> pd.DataFrame:
    """Aggregate the completed jobs into ``runs.csv``, ``summary.md``, ``curves.png`` and ``summary.png``.

    :return: the summary (one row per task x algorithm, plus aggregate rows).
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    completed = [job for job in jobs if is_complete(job)]
    evaluations = collect_evaluations(completed)
    summary = pd.DataFrame()
    runs = pd.DataFrame()
    if completed:
        runs = aggregate.run_table(evaluations, last_k=args.last_k_evals)
        markers = [read_done_marker(job.run_dir) for job in completed]
        runs["wall_time_s"] = [marker["wall_time_s"] for marker in markers]
        runs["run_dir"] = [_display_path(job.run_dir) for job in completed]
        stats = {"reps": args.bootstrap_reps, "confidence": args.confidence, "seed": args.bootstrap_seed}
        summary = aggregate.summarize(runs, **stats)
        bands = aggregate.curve_bands(evaluations, **stats)
        aggregate.save_curves_plot(bands, results_dir / "curves.png", confidence=args.confidence)
        aggregate.save_summary_plot(summary, results_dir / "summary.png", confidence=args.confidence)
    runs.to_csv(results_dir / "runs.csv", index=False)
    report = summary_markdown(suite, jobs, completed, summary, args, command, wall_time_s)
    (results_dir / "summary.md").write_text(report)
    return summary


def summary_markdown(
    suite: Suite,
    jobs: Sequence[Job],
    completed: Sequence[Job],
    summary: pd.DataFrame,
    args: Args,
    command: str,
    wall_time_s: float | None,
) -> str:
    """``summary.md``: provenance, method, one table per group and the two figures."""
    markers = [read_done_marker(job.run_dir) for job in completed]
    hardware = sorted({str(marker["hardware"]) for marker in markers}) or [hardware_description()]
    finished = sorted(str(marker["finished_at"]) for marker in markers)
    summed_minutes = sum(float(marker["wall_time_s"]) for marker in markers) / 60
    this_run = "aggregation only" if wall_time_s is None else f"{wall_time_s / 60:.1f} min for this invocation"
    lines = [
        f"# Learning benchmark `{suite.name}`",
        "",
        suite.description,
        "",
        f"- **Command:** `{command}`",
        f"- **Git commit:** `{git_commit()}`",
        f"- **Date:** {utc_now():%Y-%m-%d %H:%M} UTC"
        + (f" (runs finished {finished[0]} to {finished[-1]})" if finished else ""),
        f"- **Hardware:** {'; '.join(hardware)}",
        f"- **Wall time:** {this_run}; {summed_minutes:.1f} min summed over the completed runs",
        f"- **Runs:** {len(completed)} of {len(jobs)} complete" + _missing_note(jobs, completed),
        "",
        f"Final score of a run: mean return of its last {args.last_k_evals} deterministic evaluation(s). "
        f"Intervals: {args.confidence:.0%} percentile bootstrap over seeds ({args.bootstrap_reps} resamples), "
        "stratified by task in the aggregate rows. IQM: mean of the middle 50% of runs "
        "(`scipy.stats.trim_mean(x, 0.25)`, as in rliable). Per-task rows are raw returns; aggregate rows are "
        "normalised scores when every task of the group has a documented reference, otherwise raw returns.",
    ]
    for group in suite.groups:
        lines += ["", f"## {group.name}: {' vs '.join(a.label for a in group.algorithms)}", ""]
        lines.append(
            f"{_count(len(group.tasks), 'task')}, {group.total_timesteps:,} environment steps, "
            f"{_count(len(group.seeds), 'seed')}, "
            f"evaluation every {group.eval_every:,} steps ({group.eval_episodes} episodes)."
        )
        lines.append("")
        rows = summary[summary["group"] == group.name] if len(summary) else summary
        lines.append(aggregate.format_summary_table(rows, args.confidence) if len(rows) else "No completed runs yet.")
        lines += _reference_notes(group.tasks)
    if completed:
        lines += ["", "![Learning curves](curves.png)", "", "![Aggregate scores](summary.png)"]
    return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _missing_note(jobs: Sequence[Job], completed: Sequence[Job]) -> str:
    missing = [f"{job.group.name}/{job.run_name}" for job in jobs if job not in completed]
    if not missing:
        return ""
    shown = ", ".join(missing[:10]) + (f", ... ({len(missing) - 10} more)" if len(missing) > 10 else "")
    return f" (missing: {shown})"


def _reference_notes(tasks: Sequence[str]) -> list[str]:
    references = {task: aggregate.REFERENCE_SCORES[task] for task in tasks if task in aggregate.REFERENCE_SCORES}
    if not references:
        return []
    sources = sorted({reference.source for reference in references.values()})
    scores = ", ".join(f"{task} {reference.high:g}" for task, reference in references.items())
    return ["", f"Normalisation references: {scores}. Source: {'; '.join(sources)}."]


def _display_path(path: Path) -> str:
    """Paths inside the repository are shown relative to it, so results do not leak a machine's layout."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------------


def print_plan(jobs: Sequence[Job], python: str, console: Console) -> None:
    """List every job as done, rerun (partial directory) or new, with the command of those that would run."""
    for job in jobs:
        name = f"{job.group.name}/{job.run_name}"
        if is_complete(job):
            console.print(f"[green]done[/]  {name}")
            continue
        status = "[yellow]rerun[/]" if job.run_dir.exists() else "[cyan]new[/]  "
        console.print(f"{status} {name}\n      {shlex.join(job.command(python))}", highlight=False, soft_wrap=True)
    pending = sum(not is_complete(job) for job in jobs)
    console.print(f"{pending} of {len(jobs)} jobs would run.")


def run_benchmark(args: Args, suite: Suite, command: str, console: Console | None = None) -> int:
    """Run the suite's unfinished jobs (unless ``aggregate_only``), then aggregate; 1 if any job failed, else 0."""
    console = console or Console()
    out_dir = args.out_dir or REPO_ROOT / "benchmarks" / "runs" / suite.name
    results_dir = args.results_dir or REPO_ROOT / "benchmarks" / "results" / suite.name
    jobs = suite.jobs(out_dir.resolve())
    if args.dry_run:
        print_plan(jobs, args.python, console)
        return 0
    failed: list[JobResult] = []
    wall_time_s = None
    if not args.aggregate_only:
        pending = [job for job in jobs if not is_complete(job)]
        console.print(f"Suite {suite.name}: {len(jobs) - len(pending)} of {len(jobs)} jobs already done.")
        threads = args.threads_per_job or max(1, (os.cpu_count() or 1) // args.jobs)
        pool = JobPool(args.python, job_environment(threads), args.job_timeout_s, hardware_description())
        start = time.monotonic()
        results = run_jobs(pending, pool, args.jobs, console)
        wall_time_s = time.monotonic() - start
        failed = [result for result in results if result.problem is not None]
    write_results(suite, jobs, results_dir, args, command, wall_time_s)
    console.print(f"Results in {results_dir}")
    if failed:
        console.print(f"[red]{len(failed)} job(s) failed[/]; see their stdout.log. Rerun to retry them.")
    return 1 if failed else 0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = tyro.cli(Args, args=argv)
    # Treat SIGTERM like Ctrl-C so that a killed runner also stops its agents instead of orphaning them.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    command = shlex.join(["python", "-m", "benchmarks.learning", *argv])
    try:
        return run_benchmark(args, SUITES[args.suite], command)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
