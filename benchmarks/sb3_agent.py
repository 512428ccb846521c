"""Stable-Baselines3 SAC / PPO baselines behind the agents' command-line contract (see ``benchmarks/suites.py``).

``--policy stock`` trains SB3's ``MlpPolicy``; ``--policy era`` trains the ERA policies of :mod:`era_policies.sb3`
(SAC with ``ent_coef=0``: ERA replaces the entropy bonus; PPO keeps SB3's ``ent_coef=0`` and so builds its ERA policy
with ``closed_form_entropy=False``, which spares the entropy nobody multiplies by anything). Hyperparameters default to
SB3's; the flags below set the ones that make a like-for-like comparison with ``agents/`` (network sizes, warm-up,
batch size, update ratio).

Writes into ``<log-dir>/<run-name>/``: ``episodes.csv`` (every finished training episode, from the Monitor wrapper),
``evaluations.csv`` (deterministic evaluation on a separate environment every ``--eval-every`` steps and at the end),
``config.json`` and TensorBoard events. Example::

    python benchmarks/sb3_agent.py --algo sac --policy stock --env-id Hopper-v5 --seed 0 --total-timesteps 100000 \\
        --log-dir runs --run-name sb3-sac-hopper --eval-every 10000 --eval-episodes 10 --no-cuda
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tyro
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization
from torch import nn

from era_utils.envs import make_env
from era_utils.experiment import CSVLog
from era_utils.run_files import CONFIG_FILE, EPISODES_HEADER, EPISODES_LOG, EVALUATIONS_HEADER, EVALUATIONS_LOG

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}
EVAL_SEED_OFFSET = 10_000
"""The evaluation environment is seeded apart from the training environments."""


@dataclass
class Args:
    """Train an SB3 SAC or PPO baseline and log episodes and periodic deterministic evaluations."""

    env_id: str = "Hopper-v5"
    """Gymnasium, ``dm_control/<domain>-<task>-v0`` or HumanoidBench id (see era_utils.envs)"""
    seed: int = 1
    """seed of the algorithm and the environments"""
    total_timesteps: int = 1_000_000
    """environment steps to train for"""
    algo: Literal["sac", "ppo"] = "sac"
    """the SB3 algorithm"""
    policy: Literal["stock", "era"] = "stock"
    """stock: SB3's MlpPolicy; era: era_policies.sb3.ERASACPolicy / ERAActorCriticPolicy"""
    log_dir: Path = Path("runs")
    """parent directory of the run directory"""
    run_name: str | None = None
    """run directory name; None means ``sb3-<algo>-<policy>__<env>__<seed>__<unix time>``"""
    eval_every: int = 10_000
    """environment steps between deterministic evaluations"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    cuda: bool = True
    """train on the GPU when one is available"""
    progress: bool = True
    """show a progress bar"""

    net_arch: tuple[int, ...] | None = None
    """hidden layer sizes of actor and critic(s); None keeps SB3's (256, 256) for SAC, (64, 64) for PPO"""
    activation: Literal["relu", "tanh", "elu"] | None = None
    """hidden activation; None keeps SB3's (ReLU for SAC, Tanh for PPO)"""
    learning_rate: float = 3e-4
    """Adam learning rate of all networks"""
    gamma: float = 0.99
    """discount factor"""
    batch_size: int | None = None
    """SAC: replay batch; PPO: minibatch; None keeps SB3's (256 for SAC, 64 for PPO)"""

    buffer_size: int = 1_000_000
    """SAC: replay buffer capacity"""
    learning_starts: int | None = None
    """SAC: uniformly random steps before learning starts; None keeps SB3's (100)"""
    train_freq: int = 1
    """SAC: environment steps between updates"""
    gradient_steps: int = 1
    """SAC: gradient steps per update (the update-to-data ratio is gradient_steps / train_freq)"""
    tau: float = 0.005
    """SAC: Polyak coefficient of the target critics"""

    n_envs: int = 1
    """PPO: parallel environments"""
    n_steps: int = 2048
    """PPO: steps per environment per rollout"""
    n_epochs: int = 10
    """PPO: optimisation epochs per rollout"""
    gae_lambda: float = 0.95
    """PPO: GAE lambda"""
    clip_range: float = 0.2
    """PPO: surrogate clipping"""
    normalize: bool = False
    """PPO: normalise observations and rewards with VecNormalize (evaluation uses the training statistics)"""

    target_entropy_per_dim: float | None = None
    """ERA: entropy floor per action dimension; None keeps the ERA policy's default"""


class EpisodeLogger(BaseCallback):
    """Appends every finished training episode (from the Monitor wrapper's ``info["episode"]``) to a CSV file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _on_training_start(self) -> None:
        self._log = CSVLog(self.path, EPISODES_HEADER)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            episode = info.get("episode")
            if episode is not None:
                self._log.write([self.num_timesteps, float(episode["r"]), int(episode["l"])])
        return True

    def _on_training_end(self) -> None:
        self._log.close()


class PeriodicEvaluation(BaseCallback):
    """Deterministic evaluation every ``eval_every`` steps and once more when training ends, written to a CSV file."""

    def __init__(self, eval_env: VecEnv, path: Path, eval_every: int, n_episodes: int) -> None:
        super().__init__()
        self.eval_env = eval_env
        self.path = path
        self.eval_every = eval_every
        self.n_episodes = n_episodes
        self._next_eval = eval_every
        self._last_eval_step = -1

    def _on_training_start(self) -> None:
        self._log = CSVLog(self.path, EVALUATIONS_HEADER)

    def _on_step(self) -> bool:
        # With several environments num_timesteps advances in strides, so compare against the next due step.
        if self.num_timesteps >= self._next_eval:
            self._evaluate()
            self._next_eval += self.eval_every * (1 + (self.num_timesteps - self._next_eval) // self.eval_every)
        return True

    def _on_training_end(self) -> None:
        if self._last_eval_step != self.num_timesteps:
            self._evaluate()
        self.logger.dump(self.num_timesteps)
        self._log.close()

    def _evaluate(self) -> None:
        if isinstance(self.eval_env, VecNormalize):
            sync_envs_normalization(self.training_env, self.eval_env)
        returns, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True, return_episode_rewards=True
        )
        mean_return, std_return = float(np.mean(returns)), float(np.std(returns))
        self._log.write([self.num_timesteps, mean_return, std_return, len(returns)])
        self.logger.record("eval/mean_return", mean_return)
        self.logger.record("eval/std_return", std_return)
        self._last_eval_step = self.num_timesteps


def make_envs(args: Args) -> tuple[VecEnv, VecEnv]:
    """Training and evaluation environments, built like the agents' (:func:`era_utils.envs.make_env`).

    Same protocol as ``agents/``: flat float32 observations, and HumanoidBench with action repeat 2 and no early
    termination. SB3's Monitor wraps each environment, so episode returns stay raw even under VecNormalize.
    """
    n_envs = args.n_envs if args.algo == "ppo" else 1
    train_env = make_vec_env(make_env(args.env_id, args.seed), n_envs=n_envs, seed=args.seed)
    eval_seed = args.seed + EVAL_SEED_OFFSET
    eval_env = make_vec_env(make_env(args.env_id, eval_seed), n_envs=1, seed=eval_seed)
    if args.algo == "ppo" and args.normalize:
        train_env = VecNormalize(train_env)
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
    return train_env, eval_env


def policy_class(args: Args) -> str | type:
    """SB3's MlpPolicy, or the ERA policy (imported only when asked for, so stock runs do not depend on it)."""
    if args.policy == "stock":
        return "MlpPolicy"
    from era_policies.sb3 import ERAActorCriticPolicy, ERASACPolicy

    return ERASACPolicy if args.algo == "sac" else ERAActorCriticPolicy


def build_model(args: Args, env: VecEnv, device: str) -> BaseAlgorithm:
    """The SB3 algorithm with the requested hyperparameters; options left at None keep SB3's defaults."""
    policy_kwargs: dict[str, Any] = {}
    if args.net_arch is not None:
        policy_kwargs["net_arch"] = list(args.net_arch)
    if args.activation is not None:
        policy_kwargs["activation_fn"] = ACTIVATIONS[args.activation]
    if args.target_entropy_per_dim is not None:
        if args.policy != "era":
            raise ValueError("--target-entropy-per-dim only applies to --policy era.")
        policy_kwargs["target_entropy_per_dim"] = args.target_entropy_per_dim
    common = {
        "policy": policy_class(args),
        "env": env,
        "learning_rate": args.learning_rate,
        "gamma": args.gamma,
        "policy_kwargs": policy_kwargs,
        "seed": args.seed,
        "device": device,
        "verbose": 0,
    }
    if args.algo == "sac":
        return SAC(
            **common,
            buffer_size=args.buffer_size,
            train_freq=args.train_freq,
            gradient_steps=args.gradient_steps,
            tau=args.tau,
            # ERA guarantees the entropy floor itself, so SAC's temperature (and its loss) is switched off.
            ent_coef=0.0 if args.policy == "era" else "auto",
            **_given({"batch_size": args.batch_size, "learning_starts": args.learning_starts}),
        )
    if args.policy == "era":
        # PPO's ent_coef stays SB3's 0.0: the entropy term would be computed and back-propagated for nothing.
        policy_kwargs["closed_form_entropy"] = False
    return PPO(
        **common,
        n_steps=args.n_steps,
        n_epochs=args.n_epochs,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_range,
        **_given({"batch_size": args.batch_size}),
    )


def _given(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options that were set; a None leaves SB3's default in place."""
    return {key: value for key, value in kwargs.items() if value is not None}


def train(args: Args) -> Path:
    """Train, logging into ``<log-dir>/<run-name>``; returns that directory."""
    env_name = args.env_id.replace("/", "-")
    run_name = args.run_name or f"sb3-{args.algo}-{args.policy}__{env_name}__{args.seed}__{int(time.time())}"
    run_dir = args.log_dir / run_name
    if run_dir.exists():
        # Like the agents: a new run never writes into an earlier one (its CSVs and events would be mixed or lost).
        raise FileExistsError(f"{run_dir} already exists; choose another --run-name (this script has no --resume)")
    run_dir.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(args), indent=2, default=str))
    device = "cuda" if args.cuda and torch.cuda.is_available() else "cpu"
    train_env, eval_env = make_envs(args)
    model = build_model(args, train_env, device)
    model.set_logger(configure(str(run_dir), ["stdout", "tensorboard"]))
    callbacks = CallbackList(
        [
            EpisodeLogger(run_dir / EPISODES_LOG.name),
            PeriodicEvaluation(eval_env, run_dir / EVALUATIONS_LOG.name, args.eval_every, args.eval_episodes),
        ]
    )
    model.learn(total_timesteps=args.total_timesteps, callback=callbacks, progress_bar=args.progress)
    train_env.close()
    eval_env.close()
    return run_dir


def main(argv: Sequence[str] | None = None) -> Path:
    return train(tyro.cli(Args, args=argv))


if __name__ == "__main__":
    main()
