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


def test_overhead_update_changes_the_networks():
    args = overhead.Args(hidden_dim=16, batch_size=8)
    sac_era = overhead.load_agent("sac_era")
    update = overhead.make_update(sac_era, True, 5, 2, args, torch.device("cpu"), "eager")
    before = [p.detach().clone() for p in update.policy.actor.parameters()]
    stats = update(overhead.random_batch(5, 2, 8, torch.device("cpu"), 0))
    after = list(update.policy.actor.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert {"losses/qf_loss", "losses/actor_loss", "policy/entropy", "era/delta"} <= stats.keys()


def test_throughput_summary_ratios_are_against_stock_sb3():
    runs = pd.DataFrame(
        [
            {"family": "sac", "variant": "SB3 SAC", "repeat": 0, "steps": 100, "seconds": 2.0},
            {"family": "sac", "variant": "SB3 SAC", "repeat": 1, "steps": 100, "seconds": 1.0},
            {"family": "sac", "variant": "agents/sac_era.py", "repeat": 0, "steps": 100, "seconds": 4.0},
            {"family": "sac", "variant": "agents/sac_era.py", "repeat": 1, "steps": 100, "seconds": 4.0},
        ]
    )
    summary = throughput.summarize(runs).set_index("variant")
    assert summary.loc["SB3 SAC", "median"] == pytest.approx(75.0)  # median of 50 and 100 steps/s
    assert summary.loc["agents/sac_era.py", "ratio_to_sb3"] == pytest.approx(25.0 / 75.0)
    assert summary.loc["SB3 SAC", "ratio_to_sb3"] == pytest.approx(1.0)
