"""benchmarks/sb3_agent.py end to end on Pendulum-v1 with a tiny budget: the agents' output contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import sb3_agent
from era_policies.sb3 import ERAActorCriticPolicy, ERASACPolicy

SMALL_SAC = ("--learning-starts", "300", "--batch-size", "32")  # 100 gradient steps in a 400-step run


def _train(tmp_path: Path, *extra: str, total_timesteps: int = 400, eval_every: int = 250) -> Path:
    contract = [
        *("--env-id", "Pendulum-v1", "--seed", "0", "--total-timesteps", str(total_timesteps)),
        *("--log-dir", str(tmp_path), "--run-name", "run"),
        *("--eval-every", str(eval_every), "--eval-episodes", "1", "--no-cuda", "--no-progress"),
    ]
    return sb3_agent.main([*contract, *extra])


def _check_contract(run_dir: Path, eval_steps: list[int], total_timesteps: int) -> None:
    evaluations = pd.read_csv(run_dir / "evaluations.csv")
    assert list(evaluations.columns) == ["global_step", "mean_return", "std_return", "num_episodes"]
    assert list(evaluations["global_step"]) == eval_steps
    assert evaluations["global_step"].iloc[-1] >= total_timesteps
    assert (evaluations["num_episodes"] == 1).all()
    assert evaluations["mean_return"].between(-2000, 0).all()  # Pendulum returns are in about [-1700, 0]
    episodes = pd.read_csv(run_dir / "episodes.csv")
    assert list(episodes.columns) == ["global_step", "episodic_return", "episodic_length"]
    # Pendulum episodes are truncated at 200 steps.
    assert list(episodes["global_step"]) == list(range(200, total_timesteps + 1, 200))
    assert (episodes["episodic_length"] == 200).all()
    assert (run_dir / "config.json").is_file()
    assert any(run_dir.glob("events.out.tfevents.*"))


def test_stock_sac_writes_the_contract_files(tmp_path):
    run_dir = _train(tmp_path, "--algo", "sac", "--policy", "stock", *SMALL_SAC)
    assert run_dir == tmp_path / "run"
    # Evaluations at 250 (periodic) and 400 (final).
    _check_contract(run_dir, [250, 400], 400)


def test_stock_ppo_with_agent_sized_networks(tmp_path):
    args = ["--algo", "ppo", "--policy", "stock", "--n-steps", "200", "--batch-size", "50", "--n-epochs", "1"]
    run_dir = _train(tmp_path, *args, "--net-arch", "32", "32", "--activation", "elu", "--normalize")
    # Callbacks see every environment step, also inside a rollout: evaluations at 250 and at the end.
    _check_contract(run_dir, [250, 400], 400)


def test_hyperparameters_reach_the_sb3_model(tmp_path):
    args = sb3_agent.tyro.cli(
        sb3_agent.Args,
        args=["--algo", "sac", "--net-arch", "16", "16", "--activation", "elu", "--gradient-steps", "2"],
    )
    train_env, _ = sb3_agent.make_envs(args)
    model = sb3_agent.build_model(args, train_env, "cpu")
    assert model.gradient_steps == 2 and model.batch_size == 256 and model.learning_starts == 100  # SB3 defaults
    assert model.policy.net_arch == [16, 16]
    assert model.policy.activation_fn is sb3_agent.nn.ELU
    assert model.ent_coef == "auto"


@pytest.mark.parametrize(
    ("algo", "policy_class", "extra"),
    [("sac", ERASACPolicy, SMALL_SAC), ("ppo", ERAActorCriticPolicy, ("--n-steps", "200", "--batch-size", "50"))],
    ids=["sac", "ppo"],
)
def test_era_policy_path(tmp_path, algo, policy_class, extra):
    args = sb3_agent.tyro.cli(sb3_agent.Args, args=["--algo", algo, "--policy", "era"])
    train_env, _ = sb3_agent.make_envs(args)
    model = sb3_agent.build_model(args, train_env, "cpu")
    assert isinstance(model.policy, policy_class)
    assert model.ent_coef == 0.0  # SAC: temperature off; PPO: SB3's default, no entropy bonus
    run_dir = _train(tmp_path, "--algo", algo, "--policy", "era", "--target-entropy-per-dim", "-0.4", *extra)
    _check_contract(run_dir, [250, 400], 400)


def test_era_option_is_rejected_for_the_stock_policy():
    args = sb3_agent.tyro.cli(sb3_agent.Args, args=["--policy", "stock", "--target-entropy-per-dim", "-0.5"])
    with pytest.raises(ValueError, match="only applies to --policy era"):
        sb3_agent.build_model(args, None, "cpu")


def test_an_existing_run_directory_is_refused_and_left_untouched(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "evaluations.csv").write_text("earlier results\n")
    with pytest.raises(FileExistsError, match="already exists; choose another --run-name"):
        _train(tmp_path, "--algo", "sac", *SMALL_SAC)
    assert (tmp_path / "run" / "evaluations.csv").read_text() == "earlier results\n"
