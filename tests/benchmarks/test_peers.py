"""The peers benchmark: CleanRL's edits for Gymnasium 1.x, equal settings, targets."""

from __future__ import annotations

import os
import py_compile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("stable_baselines3")

from benchmarks import peers, throughput


def fake_checkout(root: Path, drop: str | None = None) -> Path:
    """A directory laid out like CleanRL whose scripts hold exactly the texts the edits replace (not CleanRL's code)."""
    (root / "cleanrl").mkdir(parents=True)
    (root / "cleanrl_utils").mkdir()
    for script in (peers.SAC_SCRIPT, peers.PPO_SCRIPT):
        texts = [edit.old for edit in peers.CLEANRL_EDITS if edit.script == script and edit.old != drop]
        (root / "cleanrl" / script).write_text("\n#\n".join(texts))
    return root


def test_every_edit_is_applied_once_to_a_copy(tmp_path):
    checkout = fake_checkout(tmp_path / "cleanrl-checkout")
    patched = peers.patch_cleanrl(checkout, tmp_path)
    assert sorted(patched) == [peers.PPO_SCRIPT, peers.SAC_SCRIPT]
    for script, path in patched.items():
        text = path.read_text()
        for edit in (edit for edit in peers.CLEANRL_EDITS if edit.script == script):
            assert edit.new in text
        assert "AutoresetMode.SAME_STEP" in text and "_episode_infos(" in text
    assert "final_observation" not in patched[peers.SAC_SCRIPT].read_text()
    assert (checkout / "cleanrl" / peers.SAC_SCRIPT).read_text().count("final_observation") == 1  # source untouched


def test_a_changed_cleanrl_stops_the_harness_naming_the_edit(tmp_path):
    checkout = fake_checkout(tmp_path / "c", drop='infos["final_observation"][idx]')
    with pytest.raises(ValueError, match=r"0 times, not once.*final_observation.*reviewed"):
        peers.patch_cleanrl(checkout, tmp_path)
    with pytest.raises(FileNotFoundError, match="--cleanrl"):
        peers.patch_cleanrl(tmp_path / "not-a-checkout", tmp_path)


@pytest.mark.skipif("CLEANRL_CHECKOUT" not in os.environ, reason="set CLEANRL_CHECKOUT to a CleanRL checkout")
def test_the_edits_apply_to_a_real_cleanrl_checkout(tmp_path):
    for path in peers.patch_cleanrl(Path(os.environ["CLEANRL_CHECKOUT"]), tmp_path).values():
        py_compile.compile(str(path), doraise=True)


def test_peers_run_at_equal_settings():
    args = peers.Args(cleanrl=Path("/cleanrl"))
    scripts = {peers.SAC_SCRIPT: Path("/p/sac.py"), peers.PPO_SCRIPT: Path("/p/ppo.py")}
    table = peers.variants(args, scripts)
    assert [(v.family, v.name) for v in table] == [
        ("sac", "CleanRL sac_continuous_action.py"),
        ("sac", "agents/sac_era.py --no-era"),
        ("sac", "agents/sac_era.py"),
        ("sac", "agents/sac_era.py --no-era --compile"),
        ("sac", "agents/sac_era.py --compile"),
        ("sac", "SB3 SAC"),
        ("ppo", "CleanRL ppo_continuous_action.py"),
        ("ppo", "agents/ppo_era.py --no-era"),
        ("ppo", "agents/ppo_era.py --no-era --compile"),
        ("ppo", "SB3 PPO"),
    ]
    commands = {v.name: " ".join(v.command) for v in table}
    for name, command in commands.items():
        assert "--env-id HalfCheetah-v5" in command and "--seed 0" in command and "--no-cuda" in command
        budget = "12000" if "sac" in name.lower() else "20480"
        assert f"--total-timesteps {budget}" in command
    for name in ("CleanRL sac_continuous_action.py", "agents/sac_era.py", "SB3 SAC"):
        assert "--learning-starts 1000" in commands[name] and "--batch-size 256" in commands[name]
    assert (
        "--activation relu --no-critic-layer-norm --hidden-dim 256 --updates-per-step 1"
        in commands["agents/sac_era.py"]
    )
    assert "--net-arch 256 256 --activation relu" in commands["SB3 SAC"] and "--gradient-steps 1" in commands["SB3 SAC"]
    assert table[0].pythonpath == ("/cleanrl",) and table[0].command[1] == "/p/sac.py"
    assert all(v.clock_period == 2048 for v in table if v.family == "ppo")


def test_peer_targets_are_judged_per_path():
    def cell(variant: str, to_sb3: float, to_cleanrl: float) -> str:
        return peers.target_cell(
            pd.Series({"variant": variant, "ratio_to_sb3": to_sb3, "ratio_to_cleanrl": to_cleanrl})
        )

    assert cell("agents/sac_era.py", 1.2, 1.0) == "met: >= 1.2x SB3; met: >= 1.0x CleanRL"
    assert cell("agents/sac_era.py --no-era", 1.3, 0.9) == "met: >= 1.2x SB3; missed: >= 1.0x CleanRL"
    assert cell("agents/sac_era.py --compile", 1.4, 2.0) == "missed: >= 1.5x SB3"
    assert cell("SB3 SAC", 1.0, 0.5) == "-"


def test_peer_results_list_the_edits_and_the_ratios(tmp_path):
    runs = pd.DataFrame(
        [("CleanRL sac_continuous_action.py", 2.0), ("agents/sac_era.py", 1.0), ("SB3 SAC", 4.0)],
        columns=["variant", "seconds"],
    ).assign(family="sac", setting="s", repeat=0, steps=100)
    references = {"ratio_to_sb3": {"sac": "SB3 SAC"}, "ratio_to_cleanrl": peers.CLEANRL_NAMES}
    summary = throughput.summarize(runs, (), references)
    args = peers.Args(cleanrl=tmp_path, results_dir=tmp_path / "out")
    text = peers.write_results(runs, summary, args, "cmd")
    assert "| SAC | s | agents/sac_era.py | 100 | 100-100 | 4.00x | 2.00x | met: >= 1.2x SB3; met: >= 1.0x" in text
    assert text.count("```diff") == len(peers.CLEANRL_EDITS) and "+        autoreset_mode=" in text
    assert "commit `unknown (not a git checkout)`" in text and (tmp_path / "out" / "peers.csv").exists()
