"""The GPU check's CPU parts: its plan, its budgets, its dry run and its summary."""

from __future__ import annotations

import sys

import pytest
import torch
import tyro

pytest.importorskip("stable_baselines3")

from benchmarks import gpu, overhead, throughput


def test_the_plan_fits_eight_minutes_and_its_commands_parse(tmp_path):
    parts = gpu.plan(tmp_path)
    assert sum(part.budget_s for part in parts) <= gpu.Args().budget_s == 480
    tests, counts, timing, steps = parts
    assert tests.command[1:5] == ("-m", "pytest", "-m", "gpu")
    count_args = tyro.cli(overhead.Args, args=list(counts.command[3:]))
    assert count_args.devices == ("cuda",) and count_args.modes == ("eager", "compile") and not count_args.timing
    timing_args = tyro.cli(overhead.Args, args=list(timing.command[3:]))
    assert timing_args.modes == ("eager", "compile", "cudagraphs") and not timing_args.counts
    steps_args = tyro.cli(throughput.Args, args=list(steps.command[3:]))
    steps_args.check()
    assert steps_args.cuda and steps_args.results_dir == tmp_path / "throughput"
    assert [v.name for v in throughput.variants(steps_args)] == [
        "agents/sac_era.py",
        "agents/sac_era.py --no-era",
        "agents/sac_era.py --cudagraphs",
        "agents/sac_era.py --no-era --cudagraphs",
        "SB3 SAC(ERASACPolicy)",
        "SB3 SAC",
    ]


def test_dry_run_prints_the_plan_without_cuda(capsys, tmp_path):
    gpu.main(gpu.Args(dry_run=True, results_dir=tmp_path))
    out = capsys.readouterr().out
    assert out.startswith("GPU check: 4 parts, 470 s of budgets within 480 s") and "pytest -m gpu" in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
    assert "   python -m benchmarks.throughput --cuda" in out  # as a user types it


def test_commands_are_shown_as_a_user_types_them():
    command = (sys.executable, "-m", "x", "--results-dir", str(gpu.REPO_ROOT / "benchmarks" / "results"), "a b")
    assert gpu.shown(command) == "python -m x --results-dir benchmarks/results 'a b'"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where no CUDA device exists")
def test_without_cuda_every_part_is_written_as_not_measured(tmp_path):
    with pytest.raises(SystemExit, match="--dry-run"):
        gpu.main(gpu.Args(results_dir=tmp_path))
    rows = [line for line in (tmp_path / "summary.md").read_text().splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 4 and all("| not measured (no CUDA device on this machine) | 0 |" in row for row in rows)


def test_run_plan_keeps_to_each_budget_and_reports_every_part(tmp_path):
    def part(name: str, budget: float, code: str) -> gpu.Part:
        return gpu.Part(name, budget, (sys.executable, "-c", code))

    parts = [
        part("ok", 30, "print('hello')"),
        part("fails", 30, "raise SystemExit(2)"),
        part("overruns", 1, "import time; time.sleep(30)"),
        part("too big", 100, "print('never')"),
    ]
    outcomes = gpu.run_plan(parts, budget_s=90, log_dir=tmp_path)
    assert [o.status for o in outcomes[:3]] == ["passed", "failed (exit code 2)", "stopped at its budget (1 s)"]
    assert outcomes[3].status.startswith("skipped (") and "needs 100" in outcomes[3].status
    assert (tmp_path / "part-1.log").read_text() == "hello\n" and outcomes[2].seconds < 10
    text = gpu.write_summary(outcomes, gpu.Args(results_dir=tmp_path), "python -m benchmarks.gpu")
    assert "| too big | skipped (" in text and "**Git commit:**" in text and (tmp_path / "summary.md").exists()
