"""The overhead and throughput benchmarks: their arithmetic and a tiny in-process run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

pytest.importorskip("stable_baselines3")

from benchmarks import overhead, throughput


def test_overhead_measures_both_variants_of_the_agents_update(tmp_path):
    args = overhead.Args(hidden_dim=16, batch_size=8, rounds=2, updates_per_round=1, warmup_updates=1)
    row = overhead.measure(overhead.load_agent("sac_era"), torch.device("cpu"), "eager", "halfcheetah", args)
    assert row["sac_ms"] > 0 and row["era_ms"] > 0
    assert row["ratio_q25"] <= row["ratio_median"] <= row["ratio_q75"]
    overhead.write_results([row], overhead.Args(results_dir=tmp_path), "cmd")
    text = (tmp_path / "overhead.md").read_text()
    assert "| cpu | eager | halfcheetah (17/6) |" in text and "**Git commit:**" in text
    assert pd.read_csv(tmp_path / "overhead.csv").shape == (1, 8)


def test_overhead_times_the_agents_own_update_which_trains_the_actor():
    args = overhead.Args(hidden_dim=16, batch_size=8)
    sac_era, cpu = overhead.load_agent("sac_era"), torch.device("cpu")
    update, actor = overhead.build_update(sac_era, True, 5, 2, args, cpu, "eager")
    before = [p.detach().clone() for p in actor.parameters()]
    stats = update(overhead.random_batch(5, 2, 8, torch.device("cpu"), 0))
    assert any(not torch.equal(b, a) for b, a in zip(before, actor.parameters(), strict=True))
    assert {"losses/qf_loss", "losses/actor_loss", "policy/entropy", "era/delta"} <= stats.keys()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the rows written where no CUDA device exists")
def test_overhead_cuda_rows_without_a_gpu_say_not_measured(tmp_path):
    modes = ("eager", "cudagraphs")
    args = overhead.Args(devices=("cuda",), modes=modes, shapes=("halfcheetah",), results_dir=tmp_path)
    overhead.main(args)
    text = (tmp_path / "overhead.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| cuda")]
    assert len(rows) == 2 and all(line.count("not measured (no CUDA device on this machine)") == 3 for line in rows)


def test_overhead_cudagraphs_is_cuda_only():
    args = overhead.Args(devices=("cpu",), modes=("cudagraphs",), shapes=("halfcheetah",))
    rows = []
    overhead.write_results = lambda found, *_: rows.extend(found)
    overhead.main(args)
    assert rows == []


def _runs(*rows: tuple[str, str, int, float]) -> pd.DataFrame:
    columns = ["variant", "setting", "repeat", "seconds"]
    return pd.DataFrame(rows, columns=columns).assign(family="sac", steps=100)


def test_throughput_summary_ratios_are_against_stock_sb3_of_the_same_setting():
    runs = _runs(
        ("SB3 SAC", "a", 0, 2.0),
        ("SB3 SAC", "a", 1, 1.0),
        ("agents/sac_era.py", "a", 0, 4.0),
        ("agents/sac_era.py", "a", 1, 4.0),
        ("SB3 SAC", "b", 0, 10.0),
        ("agents/sac_era.py", "b", 0, 1.0),
    )
    summary = throughput.summarize(runs).set_index(["setting", "variant"])
    assert summary.loc[("a", "SB3 SAC"), "median"] == pytest.approx(75.0)  # median of 50 and 100 steps/s
    assert summary.loc[("a", "agents/sac_era.py"), "ratio_to_sb3"] == pytest.approx(25.0 / 75.0)
    assert summary.loc[("b", "agents/sac_era.py"), "ratio_to_sb3"] == pytest.approx(10.0)


def test_throughput_variants_cover_both_settings_every_mode_and_both_sb3_policies():
    args = throughput.Args(algorithms=("sac",), modes=("eager", "compile", "cudagraphs"))
    table = throughput.variants(args, "/nonexistent")
    for setting in ("2x256, 1 update/step (LeanRL)", "2x512, 2 updates/step (released recipe)"):
        names = [v.name for v in table if v.setting == setting]
        assert names == [
            "agents/sac_era.py",
            "agents/sac_era.py --no-era",
            "agents/sac_era.py --compile",
            "agents/sac_era.py --no-era --compile",
            "agents/sac_era.py --cudagraphs",
            "agents/sac_era.py --no-era --cudagraphs",
            "SB3 SAC(ERASACPolicy)",
            "SB3 SAC",
        ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the rows written where no CUDA device exists")
def test_throughput_cuda_without_a_gpu_writes_every_row_as_not_measured(tmp_path):
    args = throughput.Args(cuda=True, algorithms=("sac",), sac_settings=("leanrl",), results_dir=tmp_path)
    throughput.main(args)
    rows = [line for line in (tmp_path / "throughput.md").read_text().splitlines() if line.startswith("| SAC")]
    assert len(rows) == 4 and all(line.endswith("| not measured | not measured | not measured |") for line in rows)
    assert pd.read_csv(tmp_path / "throughput.csv")["seconds"].isna().all()
