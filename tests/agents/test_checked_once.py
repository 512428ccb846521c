"""Settings are validated once per process (issue 17 item 4): a real agent run from its command line, new or
``--resume``, runs ``Args.check``, the env check and each ``config.json`` read once; so does ``main(Args(...))``.

The agents run in-process (``main(parse_args(Args, flags))``, what ``python agents/<script> flags`` does) on
Pendulum-v1 with tiny networks and a few hundred steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

import era_utils.envs
import era_utils.runs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agents"))
import ppo_era
import sac_era

COMMON = ["--env-id", "Pendulum-v1", "--no-cuda", "--no-progress", "--hidden-dim", "16", "--eval-episodes", "1"]
AGENTS = {
    "sac_era": (sac_era, ["--learning-starts", "50", "--batch-size", "16", "--total-timesteps", "100"], "200"),
    "ppo_era": (ppo_era, ["--num-steps", "32", "--num-minibatches", "2", "--total-timesteps", "64"], "128"),
}


def count_settings_work(monkeypatch: pytest.MonkeyPatch, agent: ModuleType) -> dict[str, int]:
    """Count the agent's ``Args.check`` calls, env-id checks and ``config.json`` reads from here on."""
    counts = {"check": 0, "env checks": 0, "config reads": 0}
    check, check_env_id, read_text = agent.Args.check, era_utils.envs.check_env_id, Path.read_text

    def counting_check(self: object) -> None:
        counts["check"] += 1
        check(self)

    def counting_check_env_id(*args: object, **kwargs: object) -> None:
        counts["env checks"] += 1
        check_env_id(*args, **kwargs)

    def counting_read_text(self: Path, *args: object, **kwargs: object) -> str:
        counts["config reads"] += self.name == "config.json"
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(agent.Args, "check", counting_check)
    for module in (era_utils.envs, era_utils.runs):
        monkeypatch.setattr(module, "check_env_id", counting_check_env_id)
    monkeypatch.setattr(Path, "read_text", counting_read_text)
    return counts


@pytest.mark.parametrize("name", AGENTS)
def test_a_command_line_run_and_its_resume_are_each_checked_once(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, flags, larger_budget = AGENTS[name]
    counts = count_settings_work(monkeypatch, agent)
    agent.main(agent.parse_args(agent.Args, [*COMMON, *flags, "--log-dir", str(tmp_path)]))
    assert counts == {"check": 1, "env checks": 1, "config reads": 0}
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "config.json").read_text())["run_name"] == run_dir.name  # named before the run

    counts = count_settings_work(monkeypatch, agent)
    agent.main(agent.parse_args(agent.Args, ["--resume", str(run_dir), "--total-timesteps", larger_budget]))
    assert counts == {"check": 1, "env checks": 1, "config reads": 1}
    assert json.loads((run_dir / "config.json").read_text())["total_timesteps"] == int(larger_budget)


def test_main_with_settings_built_in_code_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = count_settings_work(monkeypatch, sac_era)
    settings = {"env_id": "Pendulum-v1", "cuda": False, "progress": False, "hidden_dim": 16, "eval_episodes": 1}
    budget = {"learning_starts": 50, "batch_size": 16, "total_timesteps": 100, "log_dir": str(tmp_path)}
    sac_era.main(sac_era.Args(**settings, **budget, run_name="run"))
    assert counts == {"check": 1, "env checks": 1, "config reads": 0}
    with pytest.raises(ValueError, match="--batch-size must be an integer >= 1, got 0"):  # still checked
        sac_era.main(sac_era.Args(**settings, **{**budget, "batch_size": 0}))
    assert [path.name for path in tmp_path.iterdir()] == ["run"]

    counts = count_settings_work(monkeypatch, sac_era)
    sac_era.main(sac_era.Args(resume=str(tmp_path / "run"), total_timesteps=200))
    assert counts == {"check": 1, "env checks": 1, "config reads": 1}
