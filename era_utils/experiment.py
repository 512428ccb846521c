"""Run bookkeeping shared by the single-file agents (the algorithms themselves live in ``agents/``).

* :class:`RunLogger`: ``runs/{run_name}/`` with TensorBoard events (CleanRL's key names), ``config.json``,
  ``episodes.csv`` and ``evaluations.csv`` (read by ``benchmarks/``), optional Weights & Biases.
* :class:`ObservationNormalizer`: running mean/std observation normalisation that is saved with the checkpoint.
* :func:`evaluate`: deterministic episodes of an SB3 policy under the training protocol.
* :func:`save_checkpoint` / :func:`load_checkpoint`: an SB3 policy file (``Policy.load`` works on it directly) plus a
  small JSON naming the policy class and the environment.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from stable_baselines3.common.running_mean_std import RunningMeanStd
from torch.utils.tensorboard import SummaryWriter

from era_utils.envs import episode_returns, make_env

__all__ = [
    "EPISODES_HEADER",
    "EVALUATIONS_HEADER",
    "CSVLog",
    "ERAArgs",
    "ExperimentArgs",
    "ObservationNormalizer",
    "RunLogger",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "select_device",
]

CHECKPOINT_POLICY = "policy.pt"
CHECKPOINT_META = "checkpoint.json"
CHECKPOINT_OBS_NORM = "obs_normalizer.npz"


@dataclasses.dataclass
class ExperimentArgs:
    """Options every agent shares: bookkeeping, device, environment, budget and evaluation (tyro reads the
    docstrings below each field as help)."""

    exp_name: str = "experiment"
    """name of this experiment (part of the run name)"""
    seed: int = 1
    """seed of the experiment"""
    torch_deterministic: bool = True
    """sets `torch.backends.cudnn.deterministic`"""
    cuda: bool = True
    """use CUDA when it is available"""
    track: bool = False
    """log to Weights & Biases (needs `pip install wandb`)"""
    wandb_project_name: str = "era-policies"
    """the W&B project"""
    wandb_entity: str | None = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of the first training env into `videos/{run_name}`"""
    save_model: bool = False
    """save the SB3 policy (and any observation statistics) to `{log_dir}/{run_name}/` at every evaluation"""
    log_dir: str = "runs"
    """TensorBoard logs, CSV logs and checkpoints go to `{log_dir}/{run_name}`"""
    run_name: str | None = None
    """run directory name; default `{env_id}__{exp_name}__{seed}__{unix time}`"""
    progress: bool = True
    """show a progress bar"""

    env_id: str = "HalfCheetah-v5"
    """Gymnasium id, `dm_control/<domain>-<task>-v0`, or HumanoidBench id such as `h1hand-walk-v0`"""
    total_timesteps: int = 1_000_000
    """environment steps, summed over the parallel envs (with action repeat: agent steps)"""
    num_envs: int = 1
    """parallel environments"""
    eval_every: int = 25_000
    """deterministic evaluation every this many steps (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""

    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.env_id}__{self.exp_name}__{self.seed}__{int(time.time())}"


@dataclasses.dataclass
class ERAArgs:
    """ERA's options on the agents' command lines; the names are those of the SB3 ERA policies' kwargs."""

    era: bool = True
    """ERA policy; --no-era runs the plain counterpart (SAC: tanh-Gaussian + auto temperature, PPO: state-independent
    log-std) on identical code"""
    target_entropy_per_dim: float = -0.5
    """entropy floor per action dimension, in nats"""
    log_std_min: float = -8.0
    """lower clamp of the ERA log standard deviation"""
    log_std_max: float = 0.0
    """upper bound of the ERA log standard deviation"""
    entropy_level: Literal["state", "batch"] = "state"
    """enforce the floor for every state, or for the batch mean (batch-level ERA)"""
    delta: float | Literal["auto"] = 0.0
    """entropy compensation for the truncation, nats per dimension, or `auto` to learn it"""
    delta_lr: float = 3e-4
    """Adam learning rate of delta (with --delta auto)"""
    batch_momentum: float = 0.01
    """momentum of the running normaliser used to act with batch-level ERA"""

    def era_policy_kwargs(self) -> dict[str, Any]:
        """The ERA options as keyword arguments of an SB3 ERA policy."""
        names = ("target_entropy_per_dim", "log_std_min", "log_std_max", "entropy_level", "delta", "batch_momentum")
        return {name: getattr(self, name) for name in names}


def seed_everything(seed: int, torch_deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CleanRL's recipe)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries and wrappers may draw from the global generator
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


def select_device(cuda: bool) -> torch.device:
    """CUDA when asked for and present, CPU otherwise."""
    return torch.device("cuda" if cuda and torch.cuda.is_available() else "cpu")


EPISODES_HEADER = ("global_step", "episodic_return", "episodic_length")
"""Columns of ``episodes.csv``: one row per finished training episode."""
EVALUATIONS_HEADER = ("global_step", "mean_return", "std_return", "num_episodes")
"""Columns of ``evaluations.csv``: one row per deterministic evaluation."""


class CSVLog:
    """A CSV file written row by row with line buffering, so that an interrupted run keeps every row so far."""

    def __init__(self, path: str | Path, header: Sequence[str]) -> None:
        self._file = open(path, "w", newline="", buffering=1)  # closed in close()
        self._writer = csv.writer(self._file)
        self._writer.writerow(header)

    def write(self, row: Sequence[object]) -> None:
        self._writer.writerow(row)

    def close(self) -> None:
        self._file.close()


class RunLogger:
    """Everything a run writes, under ``{log_dir}/{run_name}/``.

    :param args: the script's ``Args`` dataclass (written to ``config.json`` and TensorBoard's hyperparameter text).
    :param log_dir: parent directory of all runs.
    :param run_name: this run's directory name.
    :param track: also log to Weights & Biases (``pip install wandb``).
    :param wandb_project: W&B project.
    :param wandb_entity: W&B entity (team), or ``None``.
    """

    def __init__(
        self,
        args: Any,
        log_dir: str,
        run_name: str,
        track: bool = False,
        wandb_project: str = "era-policies",
        wandb_entity: str | None = None,
    ) -> None:
        self.run_dir = Path(log_dir) / run_name
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = dataclasses.asdict(args)
        if track:
            try:
                import wandb
            except ImportError as err:
                raise ImportError("--track logs to Weights & Biases: pip install wandb") from err
            wandb.init(
                project=wandb_project,
                entity=wandb_entity,
                sync_tensorboard=True,
                config=config,
                name=run_name,
                save_code=True,
            )
        self.writer = SummaryWriter(str(self.run_dir))
        rows = "\n".join(f"|{key}|{value}|" for key, value in config.items())
        self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str))
        self._episodes = CSVLog(self.run_dir / "episodes.csv", EPISODES_HEADER)
        self._evaluations = CSVLog(self.run_dir / "evaluations.csv", EVALUATIONS_HEADER)
        self.start_time = time.time()

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Write ``{tag: value}`` to TensorBoard at ``step``."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def episode(self, step: int, episodic_return: float, episodic_length: int) -> None:
        """A finished training episode: ``charts/episodic_return``/``_length`` and a row of ``episodes.csv``."""
        self.scalars({"charts/episodic_return": episodic_return, "charts/episodic_length": episodic_length}, step)
        self._episodes.write([step, episodic_return, episodic_length])

    def evaluation(self, step: int, returns: np.ndarray) -> None:
        """Deterministic evaluation returns: ``eval/*`` scalars and a row of ``evaluations.csv``."""
        mean, std = float(np.mean(returns)), float(np.std(returns))
        self.scalars({"eval/mean_return": mean, "eval/std_return": std}, step)
        self._evaluations.write([step, mean, std, len(returns)])

    def steps_per_second(self, step: int) -> float:
        return step / max(time.time() - self.start_time, 1e-9)

    def close(self) -> None:
        self._episodes.close()
        self._evaluations.close()
        self.writer.close()


class ObservationNormalizer:
    """Running mean/variance of observations (SB3's ``RunningMeanStd``); normalise and clip.

    :param shape: observation shape.
    :param clip: clip normalised observations to ``[-clip, clip]``.
    :param epsilon: added to the variance.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd(shape=shape)
        self.clip = clip
        self.epsilon = epsilon

    def update(self, batch: np.ndarray) -> None:
        """:param batch: ``(N, *shape)`` observations."""
        self.rms.update(batch)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        normalized = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)
        return np.clip(normalized, -self.clip, self.clip).astype(np.float32)

    def save(self, path: str | Path) -> None:
        rms = self.rms
        np.savez(path, mean=rms.mean, var=rms.var, count=rms.count, clip=self.clip, epsilon=self.epsilon)

    @classmethod
    def load(cls, path: str | Path) -> ObservationNormalizer:
        data = np.load(path)
        normalizer = cls(data["mean"].shape, clip=float(data["clip"]), epsilon=float(data["epsilon"]))
        normalizer.rms.mean, normalizer.rms.var, normalizer.rms.count = data["mean"], data["var"], float(data["count"])
        return normalizer


def evaluate(
    policy: Any,
    env_id: str,
    num_episodes: int,
    seed: int,
    obs_normalizer: ObservationNormalizer | None = None,
    capture_video: bool = False,
    video_dir: str | None = None,
) -> np.ndarray:
    """Deterministic episodes (``policy.predict(obs, deterministic=True)``) on a fresh env of the same protocol.

    :param policy: an SB3 policy (ERA or not); it is left in eval mode.
    :param env_id: environment id (HumanoidBench keeps its action repeat 2 and no early termination).
    :param num_episodes: episodes to run.
    :param seed: seed of the evaluation env (use one the training envs do not).
    :param obs_normalizer: frozen observation statistics, if the policy was trained on normalised observations.
    :return: ``(num_episodes,)`` episode returns.
    """
    env = make_env(env_id, seed, capture_video=capture_video, video_dir=video_dir)()
    returns: list[float] = []
    obs, _ = env.reset(seed=seed)
    while len(returns) < num_episodes:
        policy_obs = obs_normalizer(obs) if obs_normalizer is not None else obs
        action, _ = policy.predict(policy_obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            returns.extend(episode_return for episode_return, _ in episode_returns(info))
            obs, _ = env.reset()
    env.close()
    return np.asarray(returns[:num_episodes])


def save_checkpoint(
    run_dir: str | Path,
    policy: Any,
    env_id: str,
    global_step: int,
    obs_normalizer: ObservationNormalizer | None = None,
) -> Path:
    """Save ``policy`` with SB3's ``policy.save`` plus the metadata :func:`load_checkpoint` needs.

    :return: the policy file (``{run_dir}/policy.pt``); ``type(policy).load(path)`` also reads it.
    """
    run_dir = Path(run_dir)
    policy.save(run_dir / CHECKPOINT_POLICY)
    if obs_normalizer is not None:
        obs_normalizer.save(run_dir / CHECKPOINT_OBS_NORM)
    meta = {
        "policy_class": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "env_id": env_id,
        "global_step": global_step,
        "obs_normalizer": CHECKPOINT_OBS_NORM if obs_normalizer is not None else None,
    }
    (run_dir / CHECKPOINT_META).write_text(json.dumps(meta, indent=2))
    return run_dir / CHECKPOINT_POLICY


def load_checkpoint(run_dir: str | Path, device: str = "auto") -> tuple[Any, ObservationNormalizer | None, dict]:
    """Load what :func:`save_checkpoint` wrote.

    :return: the SB3 policy, the observation normaliser (or ``None``) and the metadata dict.
    :raises FileNotFoundError: if ``run_dir`` holds no checkpoint.
    """
    run_dir = Path(run_dir)
    meta_path = run_dir / CHECKPOINT_META
    if not meta_path.exists():
        raise FileNotFoundError(f"no checkpoint in {run_dir} (train with --save-model to write one)")
    meta = json.loads(meta_path.read_text())
    module_name, _, class_name = meta["policy_class"].rpartition(".")
    policy_class = getattr(importlib.import_module(module_name), class_name)
    policy = policy_class.load(os.fspath(run_dir / CHECKPOINT_POLICY), device=device)
    normalizer = ObservationNormalizer.load(run_dir / meta["obs_normalizer"]) if meta["obs_normalizer"] else None
    return policy, normalizer, meta
