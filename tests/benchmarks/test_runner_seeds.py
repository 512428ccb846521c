"""The runner trains consecutive seeds of a task and algorithm in one process (``--seeds-per-process``) where the
algorithm has a seeds agent, with every seed's job directory, result and resume as with one process per seed."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import tyro

from benchmarks.learning import REPO_ROOT, is_complete
from benchmarks.suites import SUITES, Algorithm, Suite
from tests.benchmarks import test_runner
from tests.benchmarks.test_runner import FAKE_AGENT, _fake_suite, _jobs, _run, _started

calls = test_runner.calls  # the fixture: the file the fake agents append their starts to

FAKE_SEEDS_AGENT = Path(__file__).with_name("fake_seeds_agent.py")


def _seeds_suite(seeds_per_process: int | None = None, seeds: tuple[int, ...] = (0, 1, 2)) -> Suite:
    """Fake (one process per seed) and Fake-ERA (with a seeds agent)."""
    suite = _fake_suite(seeds=seeds)
    group = suite.groups[0]
    era = Algorithm("Fake-ERA", ("{python}", str(FAKE_AGENT)), seeds_agent=str(FAKE_SEEDS_AGENT))
    group = dataclasses.replace(group, algorithms=(group.algorithms[0], era))
    return dataclasses.replace(suite, groups=(group,), seeds_per_process=seeds_per_process)


def test_seeds_share_a_process_with_the_same_results(tmp_path, calls):
    suite = _seeds_suite()
    code, _ = _run(tmp_path, suite, seeds_per_process=2)
    assert code == 0
    started = _started(calls)
    # Fake-ERA: seeds 0 and 1 in one process, seed 2 alone (no seed 3 to share with); Fake: one process per seed.
    assert started.count("process 0 1") == 1 and not any(line.startswith("process 2") for line in started)
    jobs = _jobs(tmp_path, suite)
    assert sorted(line for line in started if not line.startswith("process")) == sorted(jobs)
    assert all(is_complete(job) for job in jobs.values())
    shared = json.loads((jobs["fake-era__toy-v0__s1"].job_dir / "job.json").read_text())
    assert shared["seeds_process"] == [0, 1] and "--num-seeds 2" in shared["command"]
    assert "--run-dirs" in shared["command"] and "fake-era__toy-v0__s{seed}/run" in shared["command"]
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert sorted(runs["final_score"]) == [100.0, 101.0, 102.0, 150.0, 151.0, 152.0]

    code, output = _run(tmp_path, suite, seeds_per_process=2)  # the shared runs count as done: nothing reruns
    assert code == 0 and "6 of 6 jobs already done" in output


def test_an_interrupted_shared_process_resumes_every_seed(tmp_path, calls, monkeypatch):
    suite = _seeds_suite(seeds=(0, 1))
    monkeypatch.setenv("FAKE_AGENT_STOP", "fake-era__toy-v0__s1:500")
    code, output = _run(tmp_path, suite, seeds_per_process=2)
    assert code == 1 and "exit code 3" in output
    monkeypatch.delenv("FAKE_AGENT_STOP")
    code, _ = _run(tmp_path, suite, seeds_per_process=2)
    assert code == 0
    assert _started(calls).count("process 0 1") == 2  # started once, resumed once, together
    jobs = _jobs(tmp_path, suite)
    assert "fake-era__toy-v0__s1 --resume" in _started(calls)
    for seed in (0, 1):
        job = jobs[f"fake-era__toy-v0__s{seed}"]
        attempts = json.loads((job.job_dir / "job.json").read_text())["attempts"]
        assert [(a["kind"], a["outcome"]) for a in attempts] == [("fresh", "exit code 3"), ("resume", "complete")]
        assert list(pd.read_csv(job.run_dir / "evaluations.csv")["global_step"]) == [250, 500, 750, 1000]
    assert all(is_complete(job) for job in jobs.values())


def test_a_suite_can_keep_one_process_per_seed(tmp_path, calls):
    code, _ = _run(tmp_path, _seeds_suite(seeds_per_process=1), seeds_per_process=3)
    assert code == 0 and not any(line.startswith("process") for line in _started(calls))


def test_the_sac_baselines_group_their_seeds_as_their_era_twins():
    """SAC (--no-era) and SAC-ERA of the cpu and paper suites both train their seeds in one sac_era_seeds.py process
    under --seeds-per-process, so neither side of the comparison runs differently; the grouped command is one that
    sac_era_seeds.py accepts."""
    pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')
    sys.path.insert(0, str(REPO_ROOT / "agents"))
    import sac_era_seeds

    for suite in ("cpu", "paper"):
        sac_group = next(group for group in SUITES[suite].groups if "SAC" in [a.label for a in group.algorithms])
        assert {a.label: a.seeds_agent for a in sac_group.algorithms} == dict.fromkeys(
            ("SAC", "SAC-ERA"), "agents/sac_era_seeds.py"
        )
        job = next(j for j in SUITES[suite].jobs(Path("runs")) if j.algorithm.label == "SAC" and j.seed == 0)
        command = job.seeds_command("py", 3, resume=False)
        assert command[:3] == ["py", "agents/sac_era_seeds.py", "--no-era"], command
        assert command[command.index("--num-seeds") + 1] == "3" and "--run-dirs" in command
        assert command[2:].count("--no-era") == 1 and "--log-dir" not in command
        args = tyro.cli(sac_era_seeds.Args, args=command[2:])
        args.check()
        assert (args.era, args.num_seeds, args.seed) == (False, 3, 0)
        assert command[2 : 2 + len(job.algorithm.command) - 2] == list(job.algorithm.command[2:])  # its own flags kept
