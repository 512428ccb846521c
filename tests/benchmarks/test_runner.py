"""The benchmark runner end to end with a fake agent: outputs, resume, runs set aside (never deleted), failures,
timeouts, suites."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pandas as pd
import pytest
from rich.console import Console

from benchmarks import aggregate, learning
from benchmarks.learning import Args, is_complete, run_benchmark
from benchmarks.suites import SUITES, Algorithm, Group, Job, Suite
from era_utils.locks import DirectoryLockedError

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
    return calls.read_text().splitlines()


def _jobs(tmp_path: Path, suite: Suite) -> dict[str, Job]:
    return {job.run_name: job for job in suite.jobs((tmp_path / "runs").resolve())}


def _set_aside(job: Job) -> list[Path]:
    """The siblings a job's directory was moved to."""
    return sorted(job.log_dir.glob(f"{job.run_name}.set-aside-*"))


def test_end_to_end_then_a_rerun_starts_nothing(tmp_path, calls):
    suite = _fake_suite()
    code, _ = _run(tmp_path, suite)
    assert code == 0
    jobs = _jobs(tmp_path, suite)
    assert sorted(_started(calls)) == sorted(jobs)
    assert all(is_complete(job) for job in jobs.values())
    assert all((job.job_dir / "stdout.log").read_text().startswith("fake agent finished") for job in jobs.values())
    metadata = json.loads(jobs["fake__toy-v0__s0"].job_dir.joinpath("job.json").read_text())
    assert [attempt["kind"] for attempt in metadata["attempts"]] == ["fresh"]
    assert metadata["attempts"][0]["outcome"] == "complete"

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
    assert "Runs left out" not in summary
    # entropy.csv of every run: the fake ERA's floor holds with 0.05 nats to spare; the twin has no floor.
    assert "| Toy-v0 | Fake-ERA | 2 / 8 | yes | 0.05 | 0.30 [0.30] | 0% | 0.20 | 0.10 |" in summary
    assert "| Toy-v0 | Fake | 2 / 8 | n/a (no floor) | n/a | 0.30 [0.30] | n/a | n/a | n/a |" in summary
    floor = pd.read_csv(results / "entropy.csv").set_index("algorithm")
    assert floor.loc["Fake-ERA", "batches_below_floor"] == 0 and floor.loc["Fake-ERA", "runs"] == 2
    scores = summary[: summary.index("## Entropy floor")]
    table_rows = [line for line in scores.splitlines() if line.startswith("| ") and "---" not in line]
    assert table_rows == [
        "| Task | Algorithm | Mean [95% CI] | IQM [95% CI] | Runs | Every seed |",
        "| Toy-v0 | Fake | 100.5 [100.0, 101.0] | 100.5 [100.0, 101.0] | 2 | s0 100.0, s1 101.0 |",
        "| Toy-v0 | Fake-ERA | 150.5 [150.0, 151.0] | 150.5 [150.0, 151.0] | 2 | s0 150.0, s1 151.0 |",
        "| **Aggregate** (raw return) | Fake | 100.5 [100.0, 101.0] | 100.5 [100.0, 101.0] | 2 |  |",
        "| **Aggregate** (raw return) | Fake-ERA | 150.5 [150.0, 151.0] | 150.5 [150.0, 151.0] | 2 |  |",
    ]

    code, output = _run(tmp_path, suite)
    assert code == 0
    assert "4 of 4 jobs already done" in output
    assert len(_started(calls)) == 4


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, calls, monkeypatch):
    suite = _fake_suite(seeds=(0,))
    monkeypatch.setenv("FAKE_AGENT_STOP", "fake__toy-v0__s0:500")
    code, output = _run(tmp_path, suite)
    assert code == 1 and "exit code 3" in output
    job = _jobs(tmp_path, suite)["fake__toy-v0__s0"]
    assert not is_complete(job)

    code, _ = _run(tmp_path, suite)
    assert code == 0
    assert _started(calls).count("fake__toy-v0__s0") == 1  # started fresh once, then only resumed
    assert "fake__toy-v0__s0 --resume" in calls.read_text().splitlines()
    assert is_complete(job) and _set_aside(job) == []
    evaluations = pd.read_csv(job.run_dir / "evaluations.csv")
    assert list(evaluations["global_step"]) == [250, 500, 750, 1000]
    attempts = json.loads((job.job_dir / "job.json").read_text())["attempts"]
    assert [(a["kind"], a["outcome"]) for a in attempts] == [("fresh", "exit code 3"), ("resume", "complete")]
    log = (job.job_dir / "stdout.log").read_text()
    assert "fake agent stopped at 500" in log and "fake agent finished" in log  # appended, not overwritten
    assert json.loads((job.job_dir / "DONE").read_text())["attempts"] == 2


def test_the_summary_names_the_commit_of_every_run_also_across_a_resume(tmp_path, calls, monkeypatch):
    suite = _fake_suite(seeds=(0,))
    monkeypatch.setenv("FAKE_AGENT_STOP", "fake__toy-v0__s0:500")
    monkeypatch.setattr(learning, "git_commit", lambda: "aaaaaaa")
    assert _run(tmp_path, suite)[0] == 1  # Fake-ERA completes at aaaaaaa; Fake stops halfway
    monkeypatch.setattr(learning, "git_commit", lambda: "bbbbbbb")
    assert _run(tmp_path, suite)[0] == 0  # Fake resumes and completes at bbbbbbb
    jobs = _jobs(tmp_path, suite)
    attempts = json.loads((jobs["fake__toy-v0__s0"].job_dir / "job.json").read_text())["attempts"]
    assert [attempt["commit"] for attempt in attempts] == ["aaaaaaa", "bbbbbbb"]
    assert json.loads((jobs["fake__toy-v0__s0"].job_dir / "DONE").read_text())["commits"] == ["aaaaaaa", "bbbbbbb"]
    assert json.loads((jobs["fake-era__toy-v0__s0"].job_dir / "DONE").read_text())["commits"] == ["aaaaaaa"]
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "- **Git commit:** `bbbbbbb` (this summary); the runs: `aaaaaaa` (2 runs), `bbbbbbb` (1 run)\n" in summary

    # A run finished before the runner recorded commits says so instead of borrowing the summary's.
    marker = jobs["fake-era__toy-v0__s0"].job_dir / "DONE"
    marker.write_text(json.dumps({k: v for k, v in json.loads(marker.read_text()).items() if k != "commits"}))
    assert _run(tmp_path, suite)[0] == 0
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "the runs: `aaaaaaa` (1 run), `bbbbbbb` (1 run), not recorded (1 run)\n" in summary


def test_a_partial_run_of_an_agent_without_resume_is_set_aside_and_rerun(tmp_path, calls, monkeypatch):
    legacy = Algorithm("Legacy", ("{python}", str(FAKE_AGENT), "--no-era", "--no-resume-support"))
    suite = Suite("toy", "no --resume", (Group("toy", (legacy,), ("Toy-v0",), (0,), TOTAL_TIMESTEPS, 250),))
    monkeypatch.setenv("FAKE_AGENT_STOP", "legacy__toy-v0__s0:500")
    assert _run(tmp_path, suite)[0] == 1
    job = _jobs(tmp_path, suite)["legacy__toy-v0__s0"]
    monkeypatch.delenv("FAKE_AGENT_STOP")
    code, output = _run(tmp_path, suite)
    assert code == 0 and is_complete(job)
    assert _started(calls) == ["legacy__toy-v0__s0", "legacy__toy-v0__s0"]  # no --resume
    [aside] = _set_aside(job)
    assert "Legacy's agent has no --resume" in (aside / "SET_ASIDE").read_text()
    assert "set aside" in output and aside.name in output
    kept = pd.read_csv(aside / "run" / "evaluations.csv")
    assert list(kept["global_step"]) == [250, 500]  # the partial run's rows are all still there


def test_a_run_interrupted_before_its_first_checkpoint_is_set_aside(tmp_path, calls):
    suite = _fake_suite(seeds=(0,))
    job = _jobs(tmp_path, suite)["fake__toy-v0__s0"]
    job.run_dir.mkdir(parents=True)
    (job.run_dir / "leftover.txt").write_text("from an interrupted process")
    assert _run(tmp_path, suite)[0] == 0
    [aside] = _set_aside(job)
    assert (aside / "run" / "leftover.txt").read_text() == "from an interrupted process"
    assert is_complete(job)


def test_a_resume_that_failed_is_not_tried_again(tmp_path, calls, monkeypatch):
    suite = _fake_suite(seeds=(0,))
    job = _jobs(tmp_path, suite)["fake__toy-v0__s0"]
    monkeypatch.setenv("FAKE_AGENT_STOP", f"{job.run_name}:500")
    _run(tmp_path, suite)
    monkeypatch.setenv("FAKE_AGENT_FAIL", job.run_name)
    assert _run(tmp_path, suite)[0] == 1  # the resume fails (e.g. a checkpoint the agent cannot load)
    monkeypatch.delenv("FAKE_AGENT_FAIL")
    monkeypatch.delenv("FAKE_AGENT_STOP")
    assert _run(tmp_path, suite)[0] == 0
    starts = [call for call in _started(calls) if call.startswith(job.run_name)]
    assert starts == [job.run_name, f"{job.run_name} --resume", job.run_name]
    [aside] = _set_aside(job)
    assert "resuming failed last time (exit code 1" in (aside / "SET_ASIDE").read_text()
    assert is_complete(job)


def _finished(tmp_path: Path, calls: Path) -> tuple[Suite, Job]:
    suite = _fake_suite()
    assert _run(tmp_path, suite)[0] == 0
    return suite, _jobs(tmp_path, suite)["fake-era__toy-v0__s1"]


def _replace_evaluations(job: Job, edit: Callable[[str], str]) -> str:
    path = job.run_dir / "evaluations.csv"
    text = edit(path.read_text())
    path.write_text(text)
    return text


def _rerun_sets_aside(tmp_path: Path, suite: Suite, job: Job, calls: Path, expected: str) -> None:
    """The DONE run with a bad evaluations.csv is reported with its line, moved aside intact, and rerun."""
    corrupted = (job.run_dir / "evaluations.csv").read_text()
    assert not is_complete(job)
    code, output = _run(tmp_path, suite)
    assert code == 0
    assert expected in " ".join(output.split())  # rich wraps long lines
    [aside] = _set_aside(job)
    assert (aside / "run" / "evaluations.csv").read_text() == corrupted  # set aside, not wiped
    assert (aside / "DONE").is_file()
    assert expected in (aside / "SET_ASIDE").read_text()
    assert _started(calls)[4:] == [job.run_name]
    assert is_complete(job)


def test_a_done_run_with_an_extra_field_is_set_aside_with_file_and_line(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    _replace_evaluations(job, lambda text: text.replace("500,", "500,7,", 1))
    _rerun_sets_aside(tmp_path, suite, job, calls, "evaluations.csv:3: 5 fields, expected 4")


def test_a_done_run_with_a_garbage_line_is_set_aside_with_file_and_line(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    _replace_evaluations(job, lambda text: text.replace("\n", "\n#@!garbage,,,\n", 1))
    _rerun_sets_aside(tmp_path, suite, job, calls, "evaluations.csv:2: global_step is '#@!garbage', not an integer")


def test_a_done_run_with_only_a_header_is_set_aside(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    _replace_evaluations(job, lambda text: text.splitlines(keepends=True)[0])
    _rerun_sets_aside(tmp_path, suite, job, calls, "evaluations.csv:1: header only: no rows")


def test_a_truncated_last_row_is_never_the_final_score(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    # The last row was being written when the file was copied: "1000,151.0,1.0,2" became "1000,-10" (no line end).
    _replace_evaluations(job, lambda text: text[: text.rindex("1000,")] + "1000,-10")
    code, _ = _run(tmp_path, suite, aggregate_only=True)
    assert code == 0
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert -10.0 not in set(runs["final_score"]) and len(runs) == 3
    summary = " ".join((tmp_path / "results" / "summary.md").read_text().split())
    assert "evaluations.csv:5: row '1000,-10' is cut off (no line break)" in summary
    assert "3 of 4 complete (missing: toy/fake-era__toy-v0__s1)" in summary
    _rerun_sets_aside(tmp_path, suite, job, calls, "evaluations.csv:5: row '1000,-10' is cut off")


def test_a_nan_return_is_listed_and_the_algorithms_aggregate_row_stays(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    _replace_evaluations(job, lambda text: text.replace("1000,151.0,", "1000,nan,"))
    code, _ = _run(tmp_path, suite, aggregate_only=True)
    assert code == 0
    summary = (tmp_path / "results" / "summary.md").read_text()
    aggregate_row = "| **Aggregate** (raw return) | Fake-ERA | 150.0 [150.0, 150.0] | 150.0 [150.0, 150.0] | 1 |"
    assert aggregate_row in summary
    assert "## Runs left out" in summary
    assert "evaluations.csv:5: mean_return is 'nan', not a finite number" in " ".join(summary.split())


def test_a_done_run_whose_command_changed_is_set_aside_and_rerun(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    [group] = suite.groups
    changed = Suite(suite.name, suite.description, (dataclasses.replace(group, eval_episodes=3),))
    assert all(not is_complete(j) for j in _jobs(tmp_path, changed).values())
    assert _run(tmp_path, changed)[0] == 0
    assert len(_started(calls)) == 8  # all four rerun
    [aside] = _set_aside(job)
    reason = (aside / "SET_ASIDE").read_text()
    assert "command changed" in reason and "'2'" in reason and "'3'" in reason
    assert pd.read_csv(aside / "run" / "evaluations.csv")["num_episodes"].eq(2).all()
    assert pd.read_csv(job.run_dir / "evaluations.csv")["num_episodes"].eq(3).all()


def test_moving_the_runs_keeps_them_done(tmp_path, calls):
    suite, _ = _finished(tmp_path, calls)
    (tmp_path / "runs").rename(tmp_path / "moved")
    args = Args(out_dir=tmp_path / "moved", results_dir=tmp_path / "results", jobs=2, bootstrap_reps=200)
    assert run_benchmark(args, suite, command="test", console=Console(file=io.StringIO())) == 0
    assert len(_started(calls)) == 4


def test_dry_run_and_aggregate_only_move_nothing(tmp_path, calls):
    suite, job = _finished(tmp_path, calls)
    _replace_evaluations(job, lambda text: text + "garbage\n")
    code, output = _run(tmp_path, suite, dry_run=True)
    assert code == 0
    assert "set aside and rerun" in output and "evaluations.csv:6" in " ".join(output.split())
    assert "1 of 4 jobs would run." in output
    assert _run(tmp_path, suite, aggregate_only=True)[0] == 0
    assert _set_aside(job) == [] and (job.job_dir / "DONE").is_file()
    assert len(_started(calls)) == 4


def test_a_failed_job_is_reported_not_marked_done_and_the_rest_is_aggregated(tmp_path, calls, monkeypatch):
    suite = _fake_suite()
    monkeypatch.setenv("FAKE_AGENT_FAIL", "fake-era__toy-v0__s1")
    code, output = _run(tmp_path, suite)
    assert code == 1
    assert "failed" in output and "exit code 1" in output
    failed = _jobs(tmp_path, suite)["fake-era__toy-v0__s1"]
    assert not (failed.job_dir / "DONE").exists()
    assert "fake failure" in (failed.job_dir / "stdout.log").read_text()
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


def test_done_marker_without_the_final_evaluation_is_not_complete(tmp_path, calls):
    _, job = _finished(tmp_path, calls)
    _replace_evaluations(job, lambda text: "".join(text.splitlines(keepends=True)[:3]))
    assert not is_complete(job)  # e.g. the agent stopped early but exited 0
    assert "last evaluation is at step 500 < total_timesteps 1000" in learning.inspect_job(job).reason


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
    job = next(j for j in SUITES["gpu"].jobs(tmp_path) if j.algorithm.label == "SAC" and j.task == "h1-walk-v0")
    assert job.command("py") == [
        *("py", "agents/sac_era.py", "--no-era", "--cudagraphs"),
        *("--env-id", "h1-walk-v0", "--seed", "0"),
        *("--total-timesteps", str(job.total_timesteps)),
        *("--log-dir", str(tmp_path / "sac" / "sac__h1-walk-v0__s0"), "--run-name", "run"),
        *("--eval-every", str(job.group.eval_every), "--eval-episodes", "5"),
        *("--cuda", "--no-progress"),
    ]
    assert job.resume_command("py") == [*job.command("py"), "--resume", str(job.run_dir)]
    assert job.signature()[:2] == ["{python}", "agents/sac_era.py"] and "{job_dir}" in job.signature()


def test_suites_are_the_documented_ones():
    assert set(get_args(learning.SuiteName)) == set(SUITES)
    quick = SUITES["quick"].groups[0]
    assert [a.label for a in quick.algorithms] == ["PPO", "PPO-ERA", "SB3-PPO"] and len(quick.tasks) == 2


def test_paper_suite_trains_h1_without_hands_at_the_papers_budget():
    paper = SUITES["paper"]
    sac, ppo = paper.groups
    assert sac.tasks == ("h1-walk-v0", "h1-run-v0", "h1-stand-v0", "h1-slide-v0", "h1-pole-v0", "h1-hurdle-v0")
    assert ppo.tasks == ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
    assert {group.total_timesteps for group in paper.groups} == {3_000_000}
    # Evaluations every 100k agent steps: the released default (1M agent steps = 2M simulator steps) is on the curve.
    assert all(1_000_000 % group.eval_every == 0 for group in paper.groups)
    assert all(len(group.seeds) == 5 for group in paper.groups)
    assert len(paper.jobs(Path("runs"))) == (6 + 4) * 2 * 5
    # Every HumanoidBench task is normalised by its documented success threshold.
    assert all(task in aggregate.REFERENCE_SCORES for task in sac.tasks)
    assert aggregate.REFERENCE_SCORES["h1-stand-v0"].high == 800.0


def test_cpu_suite_has_the_four_mujoco_tasks_three_seeds_and_a_sac_group():
    ppo, sac = SUITES["cpu"].groups
    assert [a.label for a in ppo.algorithms] == ["PPO", "PPO-ERA", "SB3-PPO"]
    assert ppo.tasks == ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5") and len(ppo.seeds) >= 3
    assert [a.label for a in sac.algorithms] == ["SAC", "SAC-ERA"] and sac.tasks == ("HalfCheetah-v5",)
    job = next(j for j in SUITES["cpu"].jobs(Path("runs")) if j.algorithm.label == "SAC-ERA")
    command = job.command("py")
    for flag, value in (("--hidden-dim", "256"), ("--updates-per-step", "1"), ("--total-timesteps", "20000")):
        assert command[command.index(flag) + 1] == value
    assert "--no-cuda" in command and "--no-era" not in command


def test_cpu_long_suite_runs_ppo_at_1m_steps_and_sac_on_humanoid_into_committed_run_directories():
    ppo, sac, _ = SUITES["cpu-long"].groups
    assert [a.label for a in sac.algorithms] == ["SAC", "SAC-ERA"] and sac.tasks == ("Humanoid-v5",)
    assert sac.total_timesteps >= 150_000 and sac.seeds == (0, 1, 2) and sac.eval_episodes == 10
    # PPO's seeds share a process; SAC's do not (stacked 2x256 SAC measured slower than a process per seed on a CPU).
    assert SUITES["cpu-long"].seeds_per_process == 3
    assert all(a.seeds_agent == "agents/ppo_era_seeds.py" for a in ppo.algorithms)
    assert all(a.seeds_agent is None for a in sac.algorithms)
    for job in (j for j in SUITES["cpu-long"].jobs(Path("runs")) if j.group is sac):
        command = job.command("py")
        assert command[1] == "agents/sac_era.py" and ("--no-era" in command) == (job.algorithm.label == "SAC")
        assert "--compile" in command and "--cudagraphs" not in command  # LeanRL's setting, compiled on the CPU
        for flag, value in (("--hidden-dim", "256"), ("--updates-per-step", "1"), ("--total-timesteps", "150000")):
            assert command[command.index(flag) + 1] == value
    assert [a.label for a in ppo.algorithms] == ["PPO", "PPO-ERA"]
    assert ppo.tasks == ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5") and ppo.seeds == (0, 1, 2)
    assert (ppo.total_timesteps, ppo.eval_every, ppo.eval_episodes) == (1_000_000, 100_000, 10)
    # The target-1 variant (issue 20.5) is compared with the ppo-mujoco-1m group's PPO runs, not new ones.
    target_1 = SUITES["cpu-long"].groups[2]
    assert [a.label for a in target_1.algorithms] == ["PPO", "PPO-ERA (target 1)"] and target_1.shared == ("PPO",)
    assert target_1.tasks == ("Hopper-v5", "Walker2d-v5") and target_1.seeds == (0, 1, 2) and target_1.runs_like(ppo)
    jobs = SUITES["cpu-long"].jobs(Path("runs"))
    variant = next(j for j in jobs if j.group is target_1 and j.algorithm.label == "PPO-ERA (target 1)")
    assert variant.command("py")[variant.command("py").index("--target-entropy-per-dim") + 1] == "1.0"
    assert variant.algorithm.seeds_agent == "agents/ppo_era_seeds.py"
    for job in (j for j in jobs if j.group is target_1 and j.algorithm.label == "PPO"):
        assert job.job_dir == Path("runs", "ppo-mujoco-1m", job.run_name)
    # Finished runs live under results/, where git keeps their small files and ignores checkpoints and events.
    assert SUITES["cpu-long"].runs_dir == "benchmarks/results/cpu-long/runs"
    ignore = (learning.REPO_ROOT / ".gitignore").read_text().splitlines()
    assert {"benchmarks/results/*/runs/**/*.pt", "benchmarks/results/*/runs/**/events.out.tfevents.*"} <= set(ignore)


def test_a_suites_own_runs_dir_is_the_default_out_dir(tmp_path, calls):
    suite = dataclasses.replace(_fake_suite(seeds=(0,)), runs_dir=str(tmp_path / "committed"))
    args = Args(results_dir=tmp_path / "results", jobs=1, bootstrap_reps=200)
    assert run_benchmark(args, suite, command="test command", console=Console(file=io.StringIO())) == 0
    for job in suite.jobs(tmp_path / "committed"):
        assert (job.job_dir / learning.DONE_FILE).is_file()


def test_gpu_suite_runs_sac_on_cuda_and_h1():
    sac, ppo = SUITES["gpu"].groups
    assert {"h1-walk-v0", "h1-stand-v0"} <= set(sac.tasks) and any(t.endswith("-v5") for t in sac.tasks)
    assert all(algorithm.cuda for algorithm in sac.algorithms)
    assert [a.label for a in ppo.algorithms] == ["PPO", "PPO-ERA"] and not any(a.cuda for a in ppo.algorithms)


@pytest.mark.parametrize("seeds_per_process", [1, 2], ids=["a-process-per-seed", "seeds-share-a-process"])
def test_sigusr1_drains_the_running_job_finishes_and_no_other_starts_or_leaves_a_trace(
    tmp_path, calls, monkeypatch, seeds_per_process
):
    suite = dataclasses.replace(_fake_suite(seeds=(0, 1)), seeds_per_process=seeds_per_process)
    if seeds_per_process > 1:
        seeds_agent = str(FAKE_AGENT.with_name("fake_seeds_agent.py"))
        group = suite.groups[0]
        algorithms = tuple(dataclasses.replace(a, seeds_agent=seeds_agent) for a in group.algorithms)
        suite = dataclasses.replace(suite, groups=(dataclasses.replace(group, algorithms=algorithms),))
    monkeypatch.setenv("FAKE_AGENT_DRAIN", f"fake__toy-v0__s0:{os.getpid()}")
    args = Args(out_dir=tmp_path / "runs", results_dir=tmp_path / "results", jobs=1, bootstrap_reps=200)
    output = io.StringIO()
    assert run_benchmark(args, suite, command="test", console=Console(file=output, width=200)) == 0
    jobs = _jobs(tmp_path, suite)
    first = ["fake__toy-v0__s0", "fake__toy-v0__s1"][:seeds_per_process]  # the first process's seeds
    assert [name for name in _started(calls) if not name.startswith("process")] == first
    assert all(is_complete(jobs[name]) for name in first)
    assert not any(job.job_dir.exists() for name, job in jobs.items() if name not in first)  # not even a job.json
    waiting = len(jobs) - len(first)
    assert "Draining (SIGUSR1)" in output.getvalue() and f"{waiting} job(s) not started" in output.getvalue()
    assert "failed" not in output.getvalue()

    monkeypatch.delenv("FAKE_AGENT_DRAIN")
    assert run_benchmark(args, suite, command="test", console=Console(file=io.StringIO())) == 0
    assert all(is_complete(job) for job in jobs.values())


def test_groups_runs_only_the_named_groups_and_the_results_count_every_finished_run(tmp_path, calls):
    toy = _fake_suite(seeds=(0,))
    other = dataclasses.replace(toy.groups[0], name="other", tasks=("Other-v0",))
    suite = dataclasses.replace(toy, groups=(toy.groups[0], other))
    code, output = _run(tmp_path, suite, groups=("other",))
    assert code == 0
    assert "0 of 2 jobs already done" in output
    assert sorted(_started(calls)) == ["fake-era__other-v0__s0", "fake__other-v0__s0"]
    missing = "(missing: toy/fake__toy-v0__s0, toy/fake-era__toy-v0__s0)"
    assert f"- **Runs:** 2 of 4 complete {missing}\n" in (tmp_path / "results" / "summary.md").read_text()

    code, _ = _run(tmp_path, suite)
    assert code == 0
    assert len(_started(calls)) == 4  # the other group's runs were done, so only toy's two ran
    assert "- **Runs:** 4 of 4 complete\n" in (tmp_path / "results" / "summary.md").read_text()


def _suite_with_a_variant_group(seeds: tuple[int, ...] = (0,)) -> Suite:
    """The toy group, then a group comparing a new variant with the toy group's own Fake runs (shared)."""
    toy = _fake_suite(seeds)
    fake, fake_era = toy.groups[0].algorithms
    variant = Algorithm("Fake-ERA (variant)", fake_era.command)
    later = dataclasses.replace(toy.groups[0], name="variant", algorithms=(fake, variant), shared=("Fake",))
    return dataclasses.replace(toy, groups=(toy.groups[0], later))


def test_a_shared_run_is_trained_once_and_counts_in_both_groups_tables(tmp_path, calls):
    suite = _suite_with_a_variant_group()
    jobs = suite.jobs((tmp_path / "runs").resolve())
    shared = [job for job in jobs if job.algorithm.label == "Fake"]
    assert [job.group.name for job in shared] == ["toy", "variant"]
    assert shared[0].job_dir == shared[1].job_dir == (tmp_path / "runs" / "toy" / "fake__toy-v0__s0").resolve()

    code, output = _run(tmp_path, suite, groups=("variant",))
    assert code == 0
    assert "0 of 2 jobs already done" in output
    assert sorted(_started(calls)) == ["fake-era-variant__toy-v0__s0", "fake__toy-v0__s0"]
    # The run is the toy group's: its job.json says so even when only the variant group was asked for.
    assert json.loads(shared[0].job_dir.joinpath("job.json").read_text())["group"] == "toy"
    summary = (tmp_path / "results" / "summary.md").read_text()
    assert "- **Runs:** 2 of 3 complete (missing: toy/fake-era__toy-v0__s0)\n" in summary
    variant_table = summary[summary.index("## variant:") : summary.index("![Learning curves]")]
    assert "| Toy-v0 | Fake | 100.0 [100.0, 100.0] |" in variant_table
    toy_table = summary[summary.index("## toy:") : summary.index("## variant:")]
    assert "| Toy-v0 | Fake | 100.0 [100.0, 100.0] |" in toy_table

    code, output = _run(tmp_path, suite)
    assert code == 0
    assert "2 of 3 jobs already done" in output
    assert len(_started(calls)) == 3  # only toy's Fake-ERA ran; the shared run was not trained again
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert sorted(zip(runs["group"], runs["algorithm"], strict=True)) == [
        ("toy", "Fake"),
        ("toy", "Fake-ERA"),
        ("variant", "Fake"),
        ("variant", "Fake-ERA (variant)"),
    ]
    assert "- **Runs:** 3 of 3 complete\n" in (tmp_path / "results" / "summary.md").read_text()


def test_a_group_cannot_share_a_run_that_no_earlier_group_makes():
    toy = _fake_suite(seeds=(0,))
    fake = toy.groups[0].algorithms[0]
    for change, message in (
        ({"seeds": (0, 1)}, "no earlier group runs Fake on Toy-v0 with seed 1"),
        ({"tasks": ("Other-v0",)}, "no earlier group runs Fake on Other-v0 with seed 0"),
        ({"total_timesteps": 2 * TOTAL_TIMESTEPS}, "no earlier group runs Fake on Toy-v0 with seed 0, 2,000 steps"),
        ({"eval_episodes": 5}, "no earlier group runs Fake on Toy-v0 with seed 0"),
        ({"shared": ("Fake-ERA (variant)",)}, "shared names no algorithm of the group: Fake-ERA (variant)"),
    ):
        later = dataclasses.replace(toy.groups[0], name="later", algorithms=(fake,), **{"shared": ("Fake",), **change})
        with pytest.raises(ValueError, match=re.escape(f"group later: {message}")):
            Suite("toy", "", (toy.groups[0], later))
    with pytest.raises(ValueError, match="group toy: no earlier group runs Fake"):  # a group cannot lend to itself
        Suite("toy", "", (dataclasses.replace(toy.groups[0], shared=("Fake",)),))


def test_groups_rejects_a_name_the_suite_does_not_have(tmp_path, capsys):
    assert learning.main(["--suite", "cpu-long", "--groups", "ppo-mujoco", "--out-dir", str(tmp_path / "runs")]) == 2
    known = "ppo-mujoco-1m, sac-humanoid, ppo-era-target-1-1m"
    assert f"--groups: suite cpu-long has no group ppo-mujoco (it has: {known})" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_cli_parses_into_args():
    args = learning.tyro.cli(Args, args=["--suite", "paper", "--jobs", "3", "--aggregate-only"])
    assert (args.suite, args.jobs, args.aggregate_only, args.dry_run) == ("paper", 3, True, False)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["--job-timeout-s", "-1"], "--job-timeout-s must be > 0"),
        (["--address", "auto"], "--address only applies to --backend ray"),
    ],
)
def test_cli_rejects_settings_that_cannot_work(flags, message, capsys, tmp_path):
    assert learning.main(["--out-dir", str(tmp_path / "runs"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_ray_backend_gives_the_same_run_directories_and_results(tmp_path, calls):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[distributed]')")
    suite = _fake_suite(seeds=(0,))
    local = tmp_path / "local"
    local.mkdir()
    assert _run(local, suite)[0] == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = tmp_path / "ray"
        remote.mkdir()
        assert _run(remote, suite, backend="ray")[0] == 0
    finally:
        ray.shutdown()

    def layout(root: Path) -> list[str]:
        return sorted(str(path.relative_to(root)) for path in (root / "runs").rglob("*"))

    assert layout(remote) == layout(local)
    for job in _jobs(remote, suite).values():
        assert is_complete(job)
        assert json.loads((job.job_dir / "job.json").read_text())["attempts"][0]["outcome"] == "complete"
    ray_runs, local_runs = (
        pd.read_csv(root / "results" / "runs.csv").drop(columns=["wall_time_s", "run_dir"]) for root in (remote, local)
    )
    pd.testing.assert_frame_equal(ray_runs, local_runs)


def test_sigusr1_drains_the_ray_backend_too(tmp_path, calls, monkeypatch):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[distributed]')")
    suite = _fake_suite(seeds=(0, 1))
    monkeypatch.setenv("FAKE_AGENT_DRAIN", f"fake__toy-v0__s0:{os.getpid()}")  # before Ray starts its workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        args = Args(out_dir=tmp_path / "runs", results_dir=tmp_path / "results", jobs=1, backend="ray")
        output = io.StringIO()
        assert run_benchmark(args, suite, command="test", console=Console(file=output, width=200)) == 0
    finally:
        ray.shutdown()
    jobs = _jobs(tmp_path, suite)
    assert _started(calls) == ["fake__toy-v0__s0"] and is_complete(jobs["fake__toy-v0__s0"])
    assert not any(job.job_dir.exists() for name, job in jobs.items() if name != "fake__toy-v0__s0")
    assert "3 job(s) not started" in output.getvalue()


def test_the_runner_starts_from_any_directory(tmp_path):
    # `benchmarks` is a package of the editable install: `python -m benchmarks.learning` needs no repository cwd.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [sys.executable, "-m", "benchmarks.learning", "--suite", "quick", "--aggregate-only"]
    paths = ["--out-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    result = subprocess.run([*command, *paths], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "- **Runs:** 0 of 18 complete" in (tmp_path / "results" / "summary.md").read_text()


# A runner in another process whose one job hangs, on the runs directory given as argv[1].
_HANGING_RUNNER = """
import io, signal, sys
from pathlib import Path
from rich.console import Console
from benchmarks import learning
from benchmarks.suites import Algorithm, Group, Suite
hanging = Algorithm("Hang", (sys.executable, "-c", "import time; time.sleep(120)"))
suite = Suite("toy", "hangs", (Group("toy", (hanging,), ("Toy-v0",), (0,), 1000, 250),))
root = Path(sys.argv[1])
args = learning.Args(out_dir=root / "runs", results_dir=root / "results-a", jobs=1, job_timeout_s=120)
signal.signal(signal.SIGTERM, learning._raise_keyboard_interrupt)  # as main() does: SIGTERM stops the agent too
try:
    learning.run_benchmark(args, suite, command="runner a", console=Console(file=io.StringIO()))
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_second_runner_on_the_same_runs_is_refused_and_changes_nothing(tmp_path, capsys):
    first = subprocess.Popen([sys.executable, "-c", _HANGING_RUNNER, str(tmp_path)], cwd=tmp_path)
    live_job = tmp_path / "runs" / "toy" / "hang__toy-v0__s0"
    try:
        deadline = time.monotonic() + 120
        while not (live_job / "job.json").is_file():  # the first runner has started its agent
            assert first.poll() is None and time.monotonic() < deadline, "the first runner did not start its job"
            time.sleep(0.1)
        suite = Suite("toy", "hangs", (Group("toy", (Algorithm("Hang", ("unused",)),), ("Toy-v0",), (0,), 1000, 250),))
        args = Args(out_dir=tmp_path / "runs", results_dir=tmp_path / "results-b", jobs=1)
        with pytest.raises(DirectoryLockedError, match=f"in use by process {first.pid} .*benchmarks.learning --suite"):
            run_benchmark(args, suite, command="runner b", console=Console(file=io.StringIO()))
        flags = ["--out-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results-c"), "--suite", "quick"]
        assert learning.main(flags) == 2
        assert f"is in use by process {first.pid}" in capsys.readouterr().err
        # The live job was not set aside, no other job started and the refused runners wrote no results.
        assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [".lock", "toy"]
        assert sorted(path.name for path in live_job.parent.iterdir()) == [live_job.name]
        assert not (tmp_path / "results-b").exists() and not (tmp_path / "results-c").exists()
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert not (tmp_path / "runs" / ".lock").exists()  # released when the first runner stopped
