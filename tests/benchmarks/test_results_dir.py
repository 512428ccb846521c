"""No benchmark silently replaces an earlier run's results: a run into a ``--results-dir`` that already holds the
files it would write stops before measuring, naming the directory, the files and ``--overwrite``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tyro

pytest.importorskip("stable_baselines3")

from benchmarks import gpu, overhead, peers, provenance, seeds_bound, throughput


def never_measure(*args, **kwargs):
    raise AssertionError("measured")


def test_the_refusal_names_the_directory_the_files_and_the_flag(tmp_path):
    (tmp_path / "a.md").write_text("earlier\n")
    refusal = re.escape(f"--results-dir {tmp_path} already holds a.md from an earlier run") + ".*--overwrite"
    with pytest.raises(SystemExit, match=refusal):
        provenance.refuse_to_overwrite(tmp_path, ["a.md", "a.csv"], overwrite=False)
    provenance.refuse_to_overwrite(tmp_path, ["a.md"], overwrite=True)
    provenance.refuse_to_overwrite(tmp_path, ["b.md"], overwrite=False)  # nothing of its own there
    provenance.refuse_to_overwrite(tmp_path / "new", ["a.md"], overwrite=False)
    assert (tmp_path / "a.md").read_text() == "earlier\n"


def test_overhead_refuses_only_for_the_tables_it_would_write(tmp_path, monkeypatch):
    monkeypatch.setattr(overhead, "count_rows", never_measure)
    monkeypatch.setattr(overhead, "measure", never_measure)
    (tmp_path / "ops.md").write_text("earlier\n")
    args = overhead.Args(devices=("cpu",), shapes=("halfcheetah",), results_dir=tmp_path)
    with pytest.raises(SystemExit, match=re.escape("ops.md")):
        overhead.main(args)
    with pytest.raises(AssertionError, match="measured"):  # timing only writes overhead.*: it goes ahead
        overhead.main(overhead.Args(devices=("cpu",), shapes=("halfcheetah",), results_dir=tmp_path, counts=False))
    with pytest.raises(AssertionError, match="measured"):
        overhead.main(overhead.Args(devices=("cpu",), shapes=("halfcheetah",), results_dir=tmp_path, overwrite=True))
    assert (tmp_path / "ops.md").read_text() == "earlier\n"


def test_throughput_refuses_before_the_first_run(tmp_path, monkeypatch):
    monkeypatch.setattr(throughput, "measure", never_measure)
    (tmp_path / "throughput.csv").write_text("earlier\n")
    with pytest.raises(SystemExit, match=re.escape("throughput.csv")):
        throughput.main(throughput.Args(algorithms=("ppo",), results_dir=tmp_path))
    with pytest.raises(AssertionError, match="measured"):  # --seeds writes seeds.*: nothing of its own there
        throughput.main(throughput.Args(algorithms=("sac",), seeds=(2,), results_dir=tmp_path))
    assert (tmp_path / "throughput.csv").read_text() == "earlier\n"


def test_peers_refuse_before_the_first_run(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "patch_cleanrl", never_measure)
    monkeypatch.setattr(throughput, "measure", never_measure)
    (tmp_path / "peers.md").write_text("earlier\n")
    with pytest.raises(SystemExit, match=re.escape("peers.md")):
        peers.main(peers.Args(cleanrl=tmp_path, results_dir=tmp_path))
    with pytest.raises(AssertionError, match="measured"):
        peers.main(peers.Args(cleanrl=tmp_path, results_dir=tmp_path, overwrite=True))


def test_seeds_bound_refuses_before_measuring(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds_bound, "measure", never_measure)
    (tmp_path / "bound.csv").write_text("earlier\n")
    with pytest.raises(SystemExit, match=re.escape("bound.csv")):
        seeds_bound.main(["--results-dir", str(tmp_path)])
    with pytest.raises(AssertionError, match="measured"):
        seeds_bound.main(["--results-dir", str(tmp_path), "--overwrite"])


def test_the_gpu_check_keeps_an_earlier_check_and_passes_overwrite_to_its_parts(tmp_path: Path):
    (tmp_path / "summary.md").write_text("earlier\n")
    with pytest.raises(SystemExit, match=re.escape("summary.md")):
        gpu.main(gpu.Args(results_dir=tmp_path))
    assert (tmp_path / "summary.md").read_text() == "earlier\n"  # not even the "not measured" rows replace it
    gpu.main(gpu.Args(results_dir=tmp_path, dry_run=True))  # a dry run writes nothing, so it never refuses
    _, counts, timing, steps = gpu.plan(tmp_path, overwrite=True)
    assert all(tyro.cli(overhead.Args, args=list(part.command[3:])).overwrite for part in (counts, timing))
    assert tyro.cli(throughput.Args, args=list(steps.command[3:])).overwrite
    _, counts, _, steps = gpu.plan(tmp_path)
    assert not tyro.cli(overhead.Args, args=list(counts.command[3:])).overwrite
    assert not tyro.cli(throughput.Args, args=list(steps.command[3:])).overwrite
