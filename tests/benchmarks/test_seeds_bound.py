"""benchmarks/seeds_bound.py: the ceiling on stacking seeds, and a tiny measurement written with its provenance."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

from benchmarks import seeds_bound


@pytest.mark.parametrize(
    ("num_seeds", "single_s", "fixed_s", "bound"),
    [
        (3, 10.0, 10.0, 3.0),  # all fixed cost: N seeds for the price of one
        (3, 10.0, 0.0, 1.0),  # all arithmetic: nothing to save
        (3, 10.0, 4.0, 30.0 / 22.0),
        (5, 2.0, 1.0, 10.0 / 6.0),
        (3, 10.0, 12.0, 3.0),  # a noisy T_o above T is clipped to T
        (3, 10.0, -1.0, 1.0),
    ],
)
def test_the_bound_pays_the_fixed_cost_once_and_the_arithmetic_n_times(num_seeds, single_s, fixed_s, bound):
    assert seeds_bound.stacking_bound(num_seeds, single_s, fixed_s) == pytest.approx(bound)


def test_a_tiny_measurement_writes_its_table_with_command_and_hardware(tmp_path):
    argv = ["--hidden-dims", "8", "--num-seeds", "2", "--batch-size", "4", "--tiny", "2", "--rounds", "1"]
    argv += ["--updates-per-block", "1", "--results-dir", str(tmp_path)]
    assert seeds_bound.main(argv) == 0
    rows = pd.read_csv(tmp_path / "bound.csv")
    assert list(rows[["hidden_dim", "num_seeds"]].itertuples(index=False, name=None)) == [(8, 2)]
    row = rows.iloc[0]
    assert row["n_singles_ms"] == pytest.approx(2 * row["single_ms"])
    assert row["bound"] == pytest.approx(seeds_bound.stacking_bound(2, row["single_ms"], row["fixed_ms"]))
    assert (rows[["single_ms", "fixed_ms", "stacked_ms", "stacked_fixed_ms"]] > 0).all(axis=None)
    text = (tmp_path / "bound.md").read_text()
    assert f"- **Command:** `python -m benchmarks.seeds_bound {' '.join(argv)}`" in text
    assert "| 2x8 | 2 |" in text and "- **Hardware:**" in text


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-seeds", "1"], "--num-seeds must be non-empty and >= 2"),
        (["--hidden-dims", "0"], "--hidden-dims must be non-empty and >= 1"),
        (["--tiny", "0"], "--tiny must be >= 1"),
        (["--shape", "nope"], "--shape must be one of"),
    ],
)
def test_bad_flags_are_refused_by_name_and_write_nothing(flags, message, tmp_path, capsys):
    assert seeds_bound.main([*flags, "--results-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
