"""sb3-contrib: TRPO trains ERAActorCriticPolicy through the truncated normal's KL; RecurrentPPO and MaskablePPO
need policy classes ERA does not provide (TQC and CrossQ are covered with the other algorithms)."""

from __future__ import annotations

import pandas as pd
import pytest
from sb3_contrib import TRPO, MaskablePPO, RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from era_policies.sb3 import ERAActorCriticPolicy, ERACallback
from tests.sb3.conftest import small_net, three_dim_env


@pytest.mark.parametrize("delta", [0.0, "auto"])
def test_trpo_line_search_steps_within_the_kl_trust_region(delta, tmp_path):
    env = make_vec_env(lambda: three_dim_env(), n_envs=2, seed=0)
    model = TRPO(
        ERAActorCriticPolicy,
        env,
        n_steps=128,
        target_kl=0.01,
        seed=0,
        device="cpu",
        policy_kwargs={**small_net(), "delta": delta},
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(1024, callback=ERACallback(delta_lr=1e-2))
    log = pd.read_csv(tmp_path / "progress.csv").dropna(subset=["train/kl_divergence_loss"])
    assert len(log) == 3  # 4 rollouts; SB3 writes each train() step's values with the next rollout's log
    # TRPO accepts a step only if KL(new || old) of the truncated normals stays below target_kl.
    assert (log["train/is_line_search_success"] > 0).all()
    assert ((log["train/kl_divergence_loss"] > 0) & (log["train/kl_divergence_loss"] < 0.01)).all()


def test_recurrent_ppo_needs_its_recurrent_policy():
    """RecurrentPPO feeds LSTM states through RecurrentActorCriticPolicy (lstm_actor, ...); ERA has no such policy."""
    with pytest.raises(AttributeError, match="lstm_actor"):
        RecurrentPPO(ERAActorCriticPolicy, three_dim_env(), policy_kwargs=small_net())


def test_maskable_ppo_supports_only_discrete_actions():
    """Action masking exists for discrete actions only; ERA's SB3 policies are for continuous (Box) actions."""
    with pytest.raises(AssertionError, match="action space"):
        MaskablePPO(ERAActorCriticPolicy, three_dim_env(), policy_kwargs=small_net())
