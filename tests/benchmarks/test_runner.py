"""The benchmark runner end to end with a fake agent: outputs, resume, partial runs, failures, timeouts, suites."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import get_args

import pandas as pd
import pytest
from rich.console import Console

from benchmarks import learning
from benchmarks.learning import Args, is_complete, run_benchmark
from benchmarks.suites import SUITES, Algorithm, Group, Suite

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")
TOTAL_TIMESTEPS = 1000


def _fake_suite(seeds: tuple[int, ...] = (0, 1)) -> Suite:
    group = Group(
        name="toy",
        algorithms=(
            Algorithm("Fake", ("{python}", str(FAKE_AGENT), "--no-era")),
            Algorithm("Fake-ERA", ("{python}", str(FAKE_AGENT))),
        ),
        tasks=("Toy-v0",),
        seeds=seeds,
        total_timesteps=TOTAL_TIMESTEPS,
        eval_every=250,
        eval_episodes=2,
    )
    return Suite(name="toy", description="Fake agents for the runner tests.", groups=(group,))


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file to which the fake agent appends the run name at each start."""
    path = tmp_path / "calls.txt"
    path.touch()
    monkeypatch.setenv("FAKE_AGENT_CALLS", str(path))
    return path


def _run(tmp_path: Path, suite: Suite, **overrides: object) -> tuple[int, str]:
    args = Args(out_dir=tmp_path / "runs", results_dir=tmp_path / "results", jobs=2, bootstrap_reps=200, **overrides)
    output = io.StringIO()
    code = run_benchmark(args, suite, command="test command", console=Console(file=output, width=200))
    return code, output.getvalue()


def _started(calls: Path) -> list[str]:
    return calls.read_text().split()


def test_end_to_end_then_resume_skips_done_jobs_and_reruns_partial_ones(tmp_path, calls):
    suite = _fake_suite()
    code, _ = _run(tmp_path, suite)
    assert code == 0
    assert sorted(_started(calls)) == [
        "fake-era__toy-v0__s0",
        "fake-era__toy-v0__s1",
        "fake__toy-v0__s0",
        "fake__toy-v0__s1",
    ]
    jobs = suite.jobs((tmp_path / "runs").resolve())
    assert all(is_complete(job) for job in jobs)
    assert all((job.run_dir / "stdout.log").read_text().startswith("fake agent finished") for job in jobs)

    results = tmp_path / "results"
    runs = pd.read_csv(results / "runs.csv")
    assert len(runs) == 4
    # The fake's final return is 100 (150 with ERA) + seed.
    assert sorted(runs["final_score"]) == [100.0, 101.0, 150.0, 151.0]
    for figure in ("curves.png", "summary.png"):
        assert 0 < (results / figure).stat().st_size < 300_000
    summary = (results / "summary.md").read_text()
    assert "- **Command:** `test command`" in summary
    assert "- **Runs:** 4 of 4 complete\n" in summary
    table_rows = [line for line in summary.splitlines() if line.startswith("| ") and "---" not in line]
    assert table_rows == [
        "| Task | Algorithm | Mean [95% CI] | IQM [95% CI] | Runs |",
        "| Toy-v0 | Fake | 100.5 [100.0, 101.0] | 100.5 [100.0, 101.0] | 2 |",
        "| Toy-v0 | Fake-ERA | 150.5 [150.0, 151.0] | 150.5 [150.0, 151.0] | 2 |",
        "| **Aggregate** (raw return) | Fake | 100.5 [100.0, 101.0] | 100.5 [100.0, 101.0] | 2 |",
        "| **Aggregate** (raw return) | Fake-ERA | 150.5 [150.0, 151.0] | 150.5 [150.0, 151.0] | 2 |",
    ]

    # Resume: nothing left to do, nothing starts.
    code, output = _run(tmp_path, suite)
    assert code == 0
    assert "4 of 4 jobs already done" in output
    assert len(_started(calls)) == 4

    # A run directory without DONE (an interrupted run) is wiped and rerun; the others stay untouched.
    partial = jobs[0].run_dir
    (partial / "DONE").unlink()
    (partial / "leftover.txt").write_text("from the interrupted process")
    done_marker = (jobs[1].run_dir / "DONE").read_text()
    code, _ = _run(tmp_path, suite)
    assert code == 0
    assert _started(calls)[4:] == [jobs[0].run_name]
    assert is_complete(jobs[0])
    assert not (partial / "leftover.txt").exists()
    assert (jobs[1].run_dir / "DONE").read_text() == done_marker


def test_a_failed_job_is_reported_not_marked_done_and_the_rest_is_aggregated(tmp_path, calls, monkeypatch):
    suite = _fake_suite()
    monkeypatch.setenv("FAKE_AGENT_FAIL", "fake-era__toy-v0__s1")
    code, output = _run(tmp_path, suite)
    assert code == 1
    assert "failed" in output and "exit code 1" in output
    failed = next(job for job in suite.jobs((tmp_path / "runs").resolve()) if job.run_name == "fake-era__toy-v0__s1")
    assert not (failed.run_dir / "DONE").exists()
    assert "fake failure" in (failed.run_dir / "stdout.log").read_text()
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "3 of 4 complete (missing: toy/fake-era__toy-v0__s1)" in summary
    assert len(pd.read_csv(tmp_path / "results" / "runs.csv")) == 3


def test_job_timeout_counts_as_failure(tmp_path):
    # A "fake agent" that hangs: python -c with the contract's arguments appended (ignored by -c).
    hanging = Algorithm("Hang", (sys.executable, "-c", "import time; time.sleep(60)"))
    suite = Suite("toy", "hangs", (Group("toy", (hanging,), ("Toy-v0",), (0,), TOTAL_TIMESTEPS, 250),))
    code, output = _run(tmp_path, suite, job_timeout_s=0.5)
    assert code == 1
    assert "timed out after 0.5 s" in output
    assert "No completed runs yet." in (tmp_path / "results" / "summary.md").read_text()


def test_done_marker_without_the_final_evaluation_is_not_complete(tmp_path):
    job = _fake_suite().jobs(tmp_path)[0]
    job.run_dir.mkdir(parents=True)
    (job.run_dir / "DONE").write_text(json.dumps({"wall_time_s": 1.0}))
    assert not is_complete(job)  # no evaluations at all
    evaluations = "global_step,mean_return,std_return,num_episodes\n250,1.0,0.0,2\n500,2.0,0.0,2\n"
    (job.run_dir / "evaluations.csv").write_text(evaluations)
    assert not is_complete(job)  # e.g. the suite's budget was raised since this run finished
    (job.run_dir / "evaluations.csv").write_text(evaluations + f"{TOTAL_TIMESTEPS},3.0,0.0,2\n")
    assert is_complete(job)


def test_dry_run_lists_the_quick_suite_without_running(tmp_path):
    code, output = _run(tmp_path, SUITES["quick"], dry_run=True)
    assert code == 0
    assert "18 of 18 jobs would run." in output  # 3 algorithms x 2 tasks x 3 seeds
    commands = [line.strip() for line in output.splitlines() if "agents/ppo_era.py" in line]
    assert len(commands) == 12
    assert sum("--no-era" in command for command in commands) == 6
    assert all("--no-cuda --no-progress" in command for command in commands)
    assert not (tmp_path / "runs").exists()


def test_job_command_follows_the_agent_contract(tmp_path):
    job = next(j for j in SUITES["gpu"].jobs(tmp_path) if j.algorithm.label == "SAC" and j.task.startswith("dm_"))
    assert job.command("py") == [
        *("py", "agents/sac_era.py", "--no-era"),
        *("--env-id", "dm_control/walker-walk-v0", "--seed", "0"),
        *("--total-timesteps", str(job.total_timesteps)),
        *("--log-dir", str(tmp_path / "sac"), "--run-name", "sac__dm_control-walker-walk-v0__s0"),
        *("--eval-every", str(job.group.eval_every), "--eval-episodes", "5"),
        *("--cuda", "--no-progress"),
    ]


def test_suites_are_the_documented_ones():
    assert set(get_args(learning.SuiteName)) == set(SUITES)
    paper = SUITES["paper"]
    assert {group.total_timesteps for group in paper.groups} == {3_000_000}
    assert all(len(group.seeds) == 5 for group in paper.groups)
    assert [len(group.tasks) for group in paper.groups] == [6, 4]
    assert len(paper.jobs(Path("runs"))) == (6 + 4) * 2 * 5
    quick = SUITES["quick"].groups[0]
    assert [a.label for a in quick.algorithms] == ["PPO", "PPO-ERA", "SB3-PPO"] and len(quick.tasks) == 2


def test_cli_parses_into_args():
    args = learning.tyro.cli(Args, args=["--suite", "paper", "--jobs", "3", "--aggregate-only"])
    assert (args.suite, args.jobs, args.aggregate_only, args.dry_run) == ("paper", 3, True, False)
