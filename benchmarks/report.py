"""The results of a learning-benchmark suite: ``runs.csv``, ``entropy.csv``, ``paper.csv``, ``summary.md`` and plots.

The runner (:mod:`benchmarks.learning`) decides which jobs count (``DONE``, the same command, sound evaluations) and
hands them over with their ``DONE`` markers; this module only reads the runs' CSV files (through
:mod:`benchmarks.aggregate`) and writes the results directory. It never runs, moves or deletes a run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks import aggregate
from benchmarks.provenance import REPO_ROOT, hardware_description, utc_now
from benchmarks.suites import Job, Suite, distinct_runs

__all__ = ["NOT_RECORDED", "Statistics", "write_results"]

NOT_RECORDED = "not recorded"
"""The commit of a run made before the runner recorded one."""

DoneMarker = Mapping[str, object]
"""The content of a completed job's ``DONE`` file: ``wall_time_s``, ``finished_at``, ``hardware``, ``commits``."""


@dataclass(frozen=True)
class Statistics:
    """How final scores and their confidence intervals are computed.

    :param last_k_evals: final score of a run = mean of its last k evaluations.
    :param bootstrap_reps: bootstrap resamples for the confidence intervals.
    :param bootstrap_seed: seed of the bootstrap resampling.
    :param confidence: coverage of the confidence intervals.
    """

    last_k_evals: int
    bootstrap_reps: int
    bootstrap_seed: int
    confidence: float


def collect_evaluations(jobs: Sequence[Job]) -> pd.DataFrame:
    """Evaluations of the given (completed) jobs, with the run keys as columns."""
    frames = []
    for job in jobs:
        evaluations = aggregate.load_evaluations(job.run_dir)
        keys = {"group": job.group.name, "task": job.task, "algorithm": job.algorithm.label, "seed": job.seed}
        frames.append(evaluations.assign(**keys))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_entropy(jobs: Sequence[Job]) -> tuple[pd.DataFrame, list[str]]:
    """``entropy.csv`` rows of the given runs with the run keys, and notes on runs without a readable one."""
    frames, notes = [], []
    for job in jobs:
        entropy, problems = aggregate.check_entropy(job.run_dir)
        if problems:
            notes.append(f"`{job.group.name}/{job.run_name}`: " + "; ".join(map(str, problems[:3])))
        if len(entropy):
            keys = {"group": job.group.name, "task": job.task, "algorithm": job.algorithm.label, "seed": job.seed}
            frames.append(entropy.assign(**keys))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def _entropy_section(floor: pd.DataFrame, notes: Sequence[str]) -> str:
    lines = ["", "## Entropy floor in the logged batches", ""]
    if len(floor):
        lines += [
            "From each run's `entropy.csv` (one row per logged training batch; nats summed over action dimensions). "
            "The activation guarantees every state's Gaussian entropy >= the activation target H0 + D * delta; "
            f"'held' means no batch's minimum fell below it by more than {aggregate.FLOOR_TOLERANCE:g} nats. The "
            "truncation gap is how far bounding the Gaussian to the action box pulled the realised entropy below "
            "the Gaussian's.",
            "",
            aggregate.format_entropy_table(floor),
        ]
    else:
        lines.append("No run wrote an `entropy.csv` yet.")
    if notes:
        lines += ["", "Runs without a readable `entropy.csv` (their scores still count):", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _paper_section(comparison: pd.DataFrame, confidence: float) -> str:
    lines = ["", "## Ours against the paper", ""]
    if len(comparison):
        lines += [
            "Paper: docs/era-method.md §9. Verdict from the CI of our ERA - baseline difference: reproduces (above 0), "
            "contradicts (below 0), too small to tell (contains 0); mixed when single tasks' CIs lie on both sides of "
            "0 (a raw-return mean is ruled by the tasks with the largest returns); not tested when our tasks are not "
            "the paper's. Our budgets are fractions of the paper's.",
            "",
            aggregate.format_paper_table(comparison, confidence),
        ]
    else:
        lines.append("No group with both a baseline and its ERA variant has completed runs yet.")
    return "\n".join(lines) + "\n"


def write_results(
    suite: Suite,
    jobs: Sequence[Job],
    completed: Mapping[Job, DoneMarker],
    left_out: Mapping[Job, str],
    results_dir: Path,
    statistics: Statistics,
    command: str,
    commit: str,
    wall_time_s: float | None,
) -> pd.DataFrame:
    """Aggregate the completed jobs into ``runs.csv``, ``entropy.csv``, ``paper.csv``, ``summary.md``, ``curves.png``
    and ``summary.png``.

    :param jobs: every job of the suite (those not completed are listed as missing).
    :param completed: the jobs that count, in suite order, with their ``DONE`` markers.
    :param left_out: jobs marked ``DONE`` that cannot be counted (unreadable rows, another command), with the reason
        (file and line): listed in ``summary.md``, never dropped silently.
    :param command: the command line that produced the results.
    :param commit: the git commit of the code that aggregates (see :func:`benchmarks.provenance.git_commit`).
    :param wall_time_s: how long this invocation ran jobs; None when it only aggregated.
    :return: the summary (one row per task x algorithm, plus aggregate rows).
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    evaluations = collect_evaluations(list(completed))
    stats = {"reps": statistics.bootstrap_reps, "confidence": statistics.confidence, "seed": statistics.bootstrap_seed}
    summary = pd.DataFrame()
    runs = pd.DataFrame()
    if completed:
        runs = aggregate.run_table(evaluations, last_k=statistics.last_k_evals)
        runs["wall_time_s"] = [marker["wall_time_s"] for marker in completed.values()]
        runs["run_dir"] = [_display_path(job.run_dir) for job in completed]
        summary = aggregate.summarize(runs, **stats)
        bands = aggregate.curve_bands(evaluations, **stats)
        aggregate.save_curves_plot(bands, results_dir / "curves.png", confidence=statistics.confidence)
        aggregate.save_summary_plot(summary, results_dir / "summary.png", confidence=statistics.confidence)
    runs.to_csv(results_dir / "runs.csv", index=False)
    entropy, entropy_notes = collect_entropy(list(completed))
    floor = aggregate.entropy_floor_table(entropy) if len(entropy) else pd.DataFrame()
    floor.to_csv(results_dir / "entropy.csv", index=False)
    comparison = pd.DataFrame()
    if completed:
        budgets = {group.name: group.total_timesteps for group in suite.groups}
        comparison = aggregate.paper_comparison(runs, budgets, **stats)
    comparison.to_csv(results_dir / "paper.csv", index=False)
    report = summary_markdown(suite, jobs, completed, left_out, summary, statistics, command, commit, wall_time_s)
    report += _entropy_section(floor, entropy_notes) + _paper_section(comparison, statistics.confidence)
    (results_dir / "summary.md").write_text(report)
    return summary


def summary_markdown(
    suite: Suite,
    jobs: Sequence[Job],
    completed: Mapping[Job, DoneMarker],
    left_out: Mapping[Job, str],
    summary: pd.DataFrame,
    statistics: Statistics,
    command: str,
    commit: str,
    wall_time_s: float | None,
) -> str:
    """``summary.md``: provenance, method, one table per group, the runs left out and the two figures."""
    runs = distinct_runs(jobs)
    markers = [completed[job] for job in distinct_runs(list(completed))]
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
        f"- **Git commit:** `{commit}` (this summary); the runs: {_run_commits(markers)}",
        f"- **Date:** {utc_now():%Y-%m-%d %H:%M} UTC"
        + (f" (runs finished {finished[0]} to {finished[-1]})" if finished else ""),
        f"- **Hardware:** {'; '.join(hardware)}",
        f"- **Wall time:** {this_run}; {summed_minutes:.1f} min summed over the completed runs",
        f"- **Runs:** {len(markers)} of {len(runs)} complete" + _missing_note(runs, completed),
        "",
        f"Final score of a run: mean return of its last {statistics.last_k_evals} deterministic evaluation(s). "
        f"Intervals: {statistics.confidence:.0%} percentile bootstrap over seeds ({statistics.bootstrap_reps} "
        "resamples), stratified by task in the aggregate rows. IQM: mean of the middle 50% of runs "
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
        table = aggregate.format_summary_table(rows, statistics.confidence) if len(rows) else "No completed runs yet."
        lines.append(table)
        lines += _reference_notes(group.tasks)
    if left_out:
        note = "Marked `DONE` but not counted (running the suite again sets them aside and reruns them):"
        lines += ["", "## Runs left out", "", note, ""]
        lines += [f"- `{job.group.name}/{job.run_name}`: {reason}" for job, reason in left_out.items()]
    if completed:
        lines += ["", "![Learning curves](curves.png)", "", "![Aggregate scores](summary.png)"]
    return "\n".join(lines) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _missing_note(jobs: Sequence[Job], completed: Mapping[Job, DoneMarker]) -> str:
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


def _run_commits(markers: Sequence[DoneMarker]) -> str:
    """The commits the completed runs were made at, with how many runs each (a resumed run counts at each of its)."""
    counts = Counter(commit for marker in markers for commit in marker.get("commits", [NOT_RECORDED]))
    if not counts:
        return "none complete"
    return ", ".join(
        f"{commit if commit == NOT_RECORDED else f'`{commit}`'} ({_count(count, 'run')})"
        for commit, count in sorted(counts.items())
    )
