"""The overhead and throughput benchmarks: their arithmetic and a tiny in-process run."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import tyro

pytest.importorskip("stable_baselines3")

from benchmarks import overhead, throughput, workloads


def test_overhead_measures_both_variants_of_the_agents_update(tmp_path):
    args = overhead.Args(hidden_dim=16, batch_size=8, rounds=2, updates_per_round=1, warmup_updates=1)
    row = overhead.measure(torch.device("cpu"), "eager", "halfcheetah", args)
    assert row["sac_ms"] > 0 and row["era_ms"] > 0
    assert row["ratio_q25"] <= row["ratio_median"] <= row["ratio_q75"]
    overhead.write_results([row], overhead.Args(results_dir=tmp_path), "cmd")
    text = (tmp_path / "overhead.md").read_text()
    assert "| cpu | eager | halfcheetah (17/6) |" in text and "**Git commit:**" in text
    assert pd.read_csv(tmp_path / "overhead.csv").shape == (1, 8)


def test_overhead_times_the_agents_own_update_which_trains_the_actor():
    sizes = workloads.Sizes(5, 2, sac_hidden_dim=16, sac_batch_size=8)
    update, actor = workloads.sac_update(True, sizes, torch.device("cpu"), "eager")
    before = [p.detach().clone() for p in actor.parameters()]
    stats = update(overhead.random_batch(5, 2, 8, torch.device("cpu"), 0))
    assert any(not torch.equal(b, a) for b, a in zip(before, actor.parameters(), strict=True))
    assert {"losses/qf_loss", "losses/actor_loss", "mean", "log_std"} <= stats.keys()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the rows written where no CUDA device exists")
def test_overhead_cuda_rows_without_a_gpu_say_not_measured(tmp_path):
    modes = ("eager", "cudagraphs")
    args = overhead.Args(devices=("cuda",), modes=modes, shapes=("halfcheetah",), results_dir=tmp_path)
    overhead.main(args)
    text = (tmp_path / "overhead.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| cuda")]
    assert len(rows) == 2 and all(line.count("not measured (no CUDA device on this machine)") == 3 for line in rows)
    count_rows = [line for line in (tmp_path / "ops.md").read_text().splitlines() if line.startswith("| cuda")]
    assert len(count_rows) == 2 * len(workloads.FAMILIES)  # update and acting step; a CUDA graph adds no rows
    assert all(line.count("not measured (no CUDA device on this machine)") == 1 for line in count_rows)


def test_overhead_cudagraphs_is_cuda_only(monkeypatch, tmp_path):
    args = overhead.Args(devices=("cpu",), modes=("cudagraphs",), shapes=("halfcheetah",), counts=False,
                         results_dir=tmp_path)  # fmt: skip
    rows = []
    monkeypatch.setattr(overhead, "write_results", lambda found, *_: rows.extend(found))
    overhead.main(args)
    assert rows == []


def test_overhead_counts_put_era_beside_its_twin_per_unit(tmp_path):
    args = overhead.Args(hidden_dim=16, batch_size=8, families=("agents/sac_era.py", "SB3 PPO"), results_dir=tmp_path)
    rows = overhead.count_rows(torch.device("cpu"), "eager", args)
    assert [(row["family"], row["unit"]) for row in rows] == [
        ("agents/sac_era.py", "update"),
        ("agents/sac_era.py", "act"),
        ("SB3 PPO", "update"),
        ("SB3 PPO", "act"),
    ]
    for row in rows:
        assert row["era_ops"] > 0 and row["twin_ops"] > 0 and row["era_graphs"] == row["twin_graphs"] == 0
        assert row["ops_ratio"] == pytest.approx(row["era_ops"] / row["twin_ops"])
    act = rows[1]
    assert act["twin_ops"] < 100 < rows[0]["twin_ops"]  # an acting step is a forward pass, an update much more
    text = overhead.write_counts(rows, args, "cmd")
    assert "**Git commit:**" in text and "| cpu | eager | agents/sac_era.py | acting step (batch 1) |" in text
    assert text.count("<= 1.5x") >= 2 and pd.read_csv(tmp_path / "ops.csv").shape[0] == 4


def test_overhead_count_targets_are_judged_per_mode_and_unit():
    row = dict(mode="compile", unit="act", era_ops=30, twin_ops=20, ops_ratio=1.5, era_float64=0, twin_float64=0,
               era_graphs=1, twin_graphs=1)  # fmt: skip
    assert overhead._count_cells(row)[-1] == "met: no float64; met: <= 1.5x"
    row |= dict(mode="eager", unit="update", era_float64=3)
    assert overhead._count_cells(row)[-1] == "-"
    row |= dict(mode="compile", unit="act", ops_ratio=1.6)
    assert overhead._count_cells(row)[-1] == "missed: float64 ops; missed: <= 1.5x"


def test_overhead_counts_reject_unknown_families_naming_the_flag():
    with pytest.raises(ValueError, match="--families"):
        overhead.main(overhead.Args(families=("SB3 TD3",), timing=False))


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


def test_throughput_summary_puts_era_against_its_twin_and_any_reference():
    runs = _runs(("era", "a", 0, 2.0), ("twin", "a", 0, 1.0), ("peer", "a", 0, 4.0), ("twin", "b", 0, 5.0))
    table = [throughput.Variant("sac", "a", "era", (), 0, 1, twin="twin")]
    summary = throughput.summarize(runs, table, {"ratio_to_peer": {"sac": "peer"}}).set_index(["setting", "variant"])
    assert summary.loc[("a", "era"), "ratio_to_twin"] == pytest.approx(0.5)
    assert summary.loc[("a", "era"), "ratio_to_peer"] == pytest.approx(2.0)
    assert np.isnan(summary.loc[("a", "twin"), "ratio_to_twin"]) and np.isnan(
        summary.loc[("b", "twin"), "ratio_to_peer"]
    )


def test_throughput_variants_cover_every_mode_and_both_sb3_policies_with_their_twins():
    args = throughput.Args(algorithms=("sac",), sac_settings=("leanrl", "released"), cuda=True,
                           modes=("eager", "compile", "cudagraphs"))  # fmt: skip
    table = throughput.variants(args)
    for setting in ("2x256, 1 update/step (LeanRL)", "2x512, 2 updates/step (released recipe)"):
        rows = [v for v in table if v.setting == setting]
        assert [(v.name, v.twin) for v in rows] == [
            ("agents/sac_era.py", "agents/sac_era.py --no-era"),
            ("agents/sac_era.py --no-era", None),
            ("agents/sac_era.py --compile", "agents/sac_era.py --no-era --compile"),
            ("agents/sac_era.py --no-era --compile", None),
            ("agents/sac_era.py --cudagraphs", "agents/sac_era.py --no-era --cudagraphs"),
            ("agents/sac_era.py --no-era --cudagraphs", None),
            ("SB3 SAC(ERASACPolicy)", "SB3 SAC"),
            ("SB3 SAC", None),
        ]
        hidden = "256" if "LeanRL" in setting else "512"
        for variant in rows:
            command = " ".join(variant.command)
            assert "--env-id HalfCheetah-v5 --total-timesteps 12000" in command and "--cuda" in command
            assert f" {hidden}" in command and "--log-dir runs --run-name run" in command
            assert (variant.burn_in, variant.total) == (3000, 12000)
    assert "--no-era" in table[1].command and "--era" in table[0].command and "--cudagraphs" in table[4].command


def test_throughput_variants_skip_paths_an_agent_or_the_device_lacks():
    names = [v.name for v in throughput.variants(throughput.Args(modes=("eager", "compile", "cudagraphs")))]
    assert "agents/ppo_era.py --compile" in names and "agents/sac_era.py --compile" in names
    assert not any("cudagraphs" in name for name in names)  # CPU: no CUDA graphs; ppo_era.py has none at all


def write_events(run_dir, step_times, tag="charts/x"):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    for step, wall_time in step_times:
        writer.add_scalar(tag, 1.0, step, walltime=wall_time)
    writer.close()


def test_steps_per_second_are_read_between_the_burn_in_and_the_end(tmp_path):
    write_events(tmp_path / "runs" / "a", [(step, 1000.0 + step / 100) for step in range(0, 6000, 500)])
    write_events(tmp_path / "runs" / "a", [(1000, 2000.0), (5000, 999.0)], tag="charts/later")  # the earliest counts
    clock = throughput.steps_per_second_after_burn_in(tmp_path, burn_in=1000, total=5000)
    assert (clock.first_step, clock.last_step) == (1000, 4500)  # 5000 is the end: its final evaluation is not timed
    assert clock.seconds == pytest.approx(35.0, abs=1e-3) and clock.steps_per_second == pytest.approx(100.0, rel=1e-4)
    with pytest.raises(ValueError, match="fewer than two steps"):
        throughput.steps_per_second_after_burn_in(tmp_path, burn_in=4600, total=5000)
    # PPO: whole iterations only (here every 2000 steps), whatever else is logged in between
    assert throughput.steps_per_second_after_burn_in(tmp_path, 1000, 5000, period=2000) == throughput.Clock(
        2000, 4000, pytest.approx(20.0, abs=1e-3)
    )


FAKE_PROGRAM = """
import os, sys
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
assert os.environ["OMP_NUM_THREADS"] == "1" and "inductor-cache" in os.environ["TORCHINDUCTOR_CACHE_DIR"]
writer = EventFileWriter("runs/run")
for step in range(0, 400, 100):
    value = summary_pb2.Summary.Value(tag="charts/x", simple_value=1.0)
    writer.add_event(event_pb2.Event(wall_time=float(step), step=step, summary=summary_pb2.Summary(value=[value])))
writer.close()
sys.exit(int(sys.argv[1]))
"""


def test_run_once_runs_the_program_in_its_own_directory_with_one_thread(tmp_path):
    variant = throughput.Variant("sac", "s", "fake", (sys.executable, "-c", FAKE_PROGRAM, "0"), burn_in=100, total=400)
    clock = throughput.run_once(variant, tmp_path / "work", threads=1, timeout_s=60)
    assert clock == throughput.Clock(100, 300, 200.0)
    failing = dataclasses.replace(variant, command=(sys.executable, "-c", FAKE_PROGRAM, "3"))
    with pytest.raises(RuntimeError, match="fake failed \\(3\\)"):
        throughput.run_once(failing, tmp_path / "other", threads=1, timeout_s=60)


def test_measure_interleaves_repeats_and_reports_every_run_as_it_ends(tmp_path):
    fake = throughput.Variant("sac", "s", "fake", (sys.executable, "-c", FAKE_PROGRAM, "0"), burn_in=0, total=400)
    seen = []
    runs = throughput.measure([fake, dataclasses.replace(fake, name="other")], 2, 1, 60, on_run=seen.append)
    assert list(runs["variant"]) == ["fake", "other", "fake", "other"] and list(runs["repeat"]) == [0, 0, 1, 1]
    assert [len(partial) for partial in seen] == [1, 2, 3, 4] and (runs["steps"] == 300).all()
    args = throughput.Args(results_dir=tmp_path, compile_row=False)
    text = throughput.write_results(seen[0], throughput.summarize(seen[0]), None, args, "cmd", "CPU", runs_planned=4)
    assert "- **Incomplete:** 1 of 4 runs" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the rows written where no CUDA device exists")
def test_throughput_cuda_without_a_gpu_writes_every_row_as_not_measured(tmp_path):
    args = throughput.Args(cuda=True, algorithms=("sac",), sac_settings=("leanrl",), results_dir=tmp_path)
    throughput.main(args)
    text = (tmp_path / "throughput.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| SAC")]
    assert len(rows) == 4 and all(line.endswith(" |" + " not measured |" * 4) for line in rows)
    assert pd.read_csv(tmp_path / "throughput.csv")["seconds"].isna().all()
    assert "not measured (no CUDA device on this machine)" in text.split("## `--compile`")[1]


SEED_NETWORKS = {"released": ("512", "2"), "leanrl": ("256", "1"), "small": ("64", "1")}


def test_seed_rows_put_each_number_of_seeds_in_one_process_beside_a_process_per_seed():
    """--seeds 3 5 at the three networks: per network and N, sac_era_seeds.py --num-seeds N and sac_era.py, with the
    same flags (LayerNorm critics, the network's width and update ratio); sac_era_seeds.py accepts its command."""
    sys.path.insert(0, str(throughput.REPO_ROOT / "agents"))
    import sac_era_seeds

    args = throughput.Args(seeds=(3, 5), sac_settings=tuple(SEED_NETWORKS))
    args.check()
    table = throughput.seed_variants(args)
    assert [(v.setting.split(",")[0], v.setting.rsplit(", ", 1)[1], v.name, v.seeds) for v in table] == [
        (f"2x{hidden}", f"{n} seeds", name, n)
        for hidden, _ in SEED_NETWORKS.values()
        for n in (3, 5)
        for name in (throughput.STACKED_SEEDS, throughput.SEED_PROCESSES)
    ]
    widths = [width for width in SEED_NETWORKS.values() for _ in (3, 5)]
    for (hidden, updates), stacked, processes in zip(widths, table[::2], table[1::2], strict=True):
        assert not stacked.one_process_per_seed and processes.one_process_per_seed
        assert stacked.command[1].endswith("agents/sac_era_seeds.py") and processes.command[1].endswith("sac_era.py")
        seeds_flags = ("--num-seeds", str(stacked.seeds), "--run-dirs", "runs/run-{seed}", "--no-progress")
        assert stacked.command[2:] == (*processes.command[2 : -len(throughput.CONTRACT_LOG_FLAGS)], *seeds_flags)
        command = " ".join(processes.command)
        assert f"--hidden-dim {hidden} --updates-per-step {updates}" in command and "layer-norm" not in command
        assert (stacked.burn_in, stacked.total) == (processes.burn_in, processes.total) == (3000, 12000)
        parsed = tyro.cli(sac_era_seeds.Args, args=list(stacked.command[2:]))
        parsed.check()
        assert parsed.critic_layer_norm and parsed.era and parsed.num_seeds == stacked.seeds
    with pytest.raises(ValueError, match="--seeds must be"):
        throughput.Args(seeds=(1, 3)).check()
    with pytest.raises(ValueError, match="--seeds times eager SAC only"):
        throughput.Args(seeds=(3,), modes=("compile",)).check()


FAKE_SEEDS_PROGRAM = """
import sys
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
argv = sys.argv[1:]
seed = int(argv[argv.index("--seed") + 1])
num_seeds = int(argv[argv.index("--num-seeds") + 1]) if "--num-seeds" in argv else 1
for s in range(seed, seed + num_seeds):
    writer = EventFileWriter(f"runs/run-{s}")
    seconds_per_100 = 1.0 if num_seeds > 1 else 1.0 + s  # one process: all seeds at once; else seed s: 1 + s s
    for step in range(0, 400, 100):
        value = summary_pb2.Summary.Value(tag="charts/x", simple_value=1.0)
        wall_time = step / 100 * seconds_per_100 + 0.01 * s
        writer.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[value])))
    writer.close()
"""


def test_seed_throughput_counts_every_seed_and_takes_the_ratio_from_the_measured_runs(tmp_path, monkeypatch):
    """Fake agents with known clocks: 2 seeds in one process, 200 steps each in 2 s (200 steps/s over both), against
    a process per seed, seed 0 in 2 s and seed 1 in 4 s (400 steps in 6 s): 3x. Written to seeds.csv and seeds.md,
    leaving throughput.md alone."""
    real_variants = throughput.seed_variants

    def fake_variants(args):
        return [dataclasses.replace(v, command=(sys.executable, "-c", FAKE_SEEDS_PROGRAM, *v.command[2:]))
                for v in real_variants(args)]  # fmt: skip

    monkeypatch.setattr(throughput, "seed_variants", fake_variants)
    args = throughput.Args(seeds=(2,), sac_settings=("small",), sac_total_timesteps=400, sac_learning_starts=50,
                           sac_burn_in=100, repeats=1, results_dir=tmp_path)  # fmt: skip
    throughput.main(args)
    runs = pd.read_csv(tmp_path / "seeds.csv").set_index("variant")
    assert runs.loc[throughput.STACKED_SEEDS, ["steps", "seconds"]].tolist() == pytest.approx([400, 2.0], abs=1e-3)
    assert runs.loc[throughput.SEED_PROCESSES, ["steps", "seconds"]].tolist() == pytest.approx([400, 6.0], abs=1e-3)
    text = (tmp_path / "seeds.md").read_text()
    setting = "2x64, 1 update/step, 2 seeds"
    assert f"| {setting} | {throughput.STACKED_SEEDS} | 200 | 200-200 | 3.00x |" in text
    assert f"| {setting} | {throughput.SEED_PROCESSES} | 67 | 67-67 | - |" in text
    assert not (tmp_path / "throughput.md").exists() and not (tmp_path / "compile.json").exists()


def test_budgets_that_cannot_give_a_clock_are_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--sac-burn-in must be > --sac-learning-starts"):
        throughput.Args(sac_burn_in=1000, sac_learning_starts=1000).check()
    with pytest.raises(ValueError, match="--ppo-burn-in must lie in"):
        throughput.Args(ppo_burn_in=20480).check()
    with pytest.raises(ValueError, match="--repeats"):
        throughput.Args(repeats=0).check()
    throughput.Args().check()


def test_compile_row_reports_the_speedup_and_cold_compile_against_their_targets():
    row = dict(setting="s", eager_ms=10.0, compiled_ms=5.0, speedup=2.0, speedup_q25=1.9, speedup_q75=2.1,
               cold_compile_s=120.0)  # fmt: skip
    text = throughput.compile_table(row)
    assert "| 10.00 | 5.00 | 2.00x [1.90, 2.10] (met) | 120 (missed) |" in text


@pytest.mark.slow
def test_throughput_measures_a_real_agent_after_its_burn_in():
    args = throughput.Args(algorithms=("ppo",), ppo_total_timesteps=6144, ppo_burn_in=2048)
    table = [v for v in throughput.variants(args) if v.name == "agents/ppo_era.py --no-era"]
    runs = throughput.measure(table, repeats=1, threads=1, timeout_s=600)
    assert runs.loc[0, "first_step"] == 2048 and runs.loc[0, "last_step"] == 4096 and runs.loc[0, "seconds"] > 0
