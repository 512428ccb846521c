"""Evaluating policies, and the SB3 policy files that ``agents/evaluate.py`` reloads.

* :class:`ObservationNormalizer`: running mean/std observation normalisation, saved with checkpoints.
* :func:`evaluate`: deterministic episodes of an SB3 policy (or any ``observation -> action`` function).
* :func:`save_policy` / :func:`load_policy`: an SB3 policy file (``Policy.load`` works on it directly) plus a small
  JSON naming the policy class and the environment, each written atomically.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from era_utils.checkpoints import CheckpointError, atomic_save
from era_utils.dependencies import AGENTS_INSTALL, require
from era_utils.envs import episode_returns, make_env
from era_utils.run_files import POLICY_FILE, POLICY_META_FILE, POLICY_OBS_NORM_FILE

require("stable_baselines3", AGENTS_INSTALL, "era_utils.evaluation (the agents' policy files)")
from stable_baselines3.common.policies import BasePolicy  # noqa: E402 - after the check that SB3 exists
from stable_baselines3.common.running_mean_std import RunningMeanStd as SB3RunningMeanStd  # noqa: E402

__all__ = [
    "POLICY_FILE",
    "POLICY_META_FILE",
    "POLICY_OBS_NORM_FILE",
    "ObservationNormalizer",
    "RunningMeanStd",
    "evaluate",
    "load_policy",
    "save_policy",
]


# load_policy imports the class that checkpoint.json names: only from these packages.
_POLICY_PACKAGES = ("era_policies.", "stable_baselines3.", "sb3_contrib.")
_META_KEYS = ("policy_class", "env_id", "global_step", "obs_normalizer")


class RunningMeanStd(SB3RunningMeanStd):
    """SB3's running mean and variance, updated without NumPy's reductions when a batch is one row (one environment,
    the agents' usual setting, where ``np.mean``/``np.var`` are most of a step's normalisation cost): a single row's
    mean is the row and its variance 0, exactly what the reductions return, so the statistics are bit for bit SB3's
    (tested)."""

    def update(self, arr: np.ndarray) -> None:
        """:param arr: ``(N, *shape)`` samples."""
        if len(arr) == 1:
            self.update_from_moments(arr[0], 0.0, 1)
        else:
            super().update(arr)


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

    def state_dict(self) -> dict[str, Any]:
        """The statistics and settings, for a training checkpoint."""
        rms = self.rms
        return {"mean": rms.mean.copy(), "var": rms.var.copy(), "count": float(rms.count), "clip": self.clip,
                "epsilon": self.epsilon}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output.

        :raises ValueError: if the saved statistics have another shape than this normaliser's.
        """
        mean, var = np.asarray(state["mean"], dtype=np.float64), np.asarray(state["var"], dtype=np.float64)
        if mean.shape != self.rms.mean.shape or var.shape != self.rms.var.shape:
            raise ValueError(
                f"observation statistics of shape {mean.shape} do not fit observations of shape {self.rms.mean.shape}"
            )
        self.rms.mean, self.rms.var, self.rms.count = mean, var, float(state["count"])
        self.clip, self.epsilon = float(state["clip"]), float(state["epsilon"])

    def save(self, path: str | Path) -> None:
        """Atomically write the statistics to an ``.npz`` file."""
        atomic_save(path, lambda file: np.savez(file, **self.state_dict()))

    @classmethod
    def load(cls, path: str | Path) -> ObservationNormalizer:
        """Read :meth:`save`'s file.

        :raises CheckpointError: if it is empty, truncated or not such a file (the message names it).
        """
        path = Path(path)
        try:
            with np.load(path) as data:
                state = {key: data[key] for key in ("mean", "var", "count", "clip", "epsilon")}
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
            raise CheckpointError(
                f"{path} is not readable observation statistics ({type(err).__name__}: {err}); empty or truncated?"
            ) from err
        normalizer = cls(state["mean"].shape)
        normalizer.load_state_dict(state)
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
    """Deterministic episodes on a fresh env of the training protocol (:func:`era_utils.envs.make_env`).

    :param policy: an SB3 policy (acts with ``policy.predict(obs, deterministic=True)``), or a function from one
        observation to one action in the env's action bounds.
    :param env_id: environment id (HumanoidBench keeps its action repeat 2 and no early termination).
    :param num_episodes: episodes to run (>= 1).
    :param seed: seed of the evaluation env (use one the training envs do not).
    :param obs_normalizer: frozen observation statistics, if the policy was trained on normalised observations.
    :param capture_video: record the episodes (needs the ``video`` extra).
    :param video_dir: where to write the videos.
    :return: ``(num_episodes,)`` episode returns.
    :raises ValueError: if ``num_episodes < 1``, or the env's observation or action space is not the SB3 policy's.
    :raises NonFiniteError: the env returned a NaN or infinite observation or reward (see
        :class:`era_utils.envs.FiniteCheck`).
    """
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise ValueError(f"num_episodes must be an integer >= 1, got {num_episodes!r}")
    act: Callable[[np.ndarray], Any]
    if hasattr(policy, "predict"):  # checked first: an SB3 policy is also callable (an nn.Module)
        act = lambda obs: policy.predict(obs, deterministic=True)[0]  # noqa: E731
    else:
        act = policy
    env = make_env(env_id, seed, capture_video=capture_video, video_dir=video_dir)()
    returns: list[float] = []
    try:
        _check_spaces(policy, env, env_id)
        obs, _ = env.reset(seed=seed)
        while len(returns) < num_episodes:
            obs, _, terminated, truncated, info = env.step(act(obs_normalizer(obs) if obs_normalizer else obs))
            if terminated or truncated:
                returns.extend(episode_return for episode_return, _ in episode_returns(info))
                obs, _ = env.reset()
    finally:
        env.close()
    return np.asarray(returns[:num_episodes])


def _check_spaces(policy: Any, env: Any, env_id: str) -> None:
    """An SB3 policy acts only in the spaces it was built for (SB3's ``check_for_correct_spaces`` compares the same)."""
    for kind in ("observation", "action"):
        policy_space, env_space = getattr(policy, f"{kind}_space", None), getattr(env, f"{kind}_space")
        if policy_space is not None and policy_space != env_space:
            raise ValueError(
                f"{env_id} has the {kind} space {env_space}, but the policy was made for {policy_space}; evaluate it "
                "on an environment with the same observation and action spaces"
            )


def save_policy(
    run_dir: str | Path,
    policy: Any,
    env_id: str,
    global_step: int,
    obs_normalizer: ObservationNormalizer | None = None,
) -> Path:
    """Save ``policy`` with SB3's ``policy.save`` plus what :func:`load_policy` needs, each file atomically.

    :return: the policy file (``{run_dir}/policy.pt``); ``type(policy).load(path)`` also reads it.
    """
    run_dir = Path(run_dir)
    if obs_normalizer is not None:
        obs_normalizer.save(run_dir / POLICY_OBS_NORM_FILE)
    atomic_save(run_dir / POLICY_FILE, policy.save)
    meta = {
        "policy_class": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "env_id": env_id,
        "global_step": global_step,
        "obs_normalizer": POLICY_OBS_NORM_FILE if obs_normalizer is not None else None,
    }
    text = json.dumps(meta, indent=2)
    atomic_save(run_dir / POLICY_META_FILE, lambda file: file.write(text.encode()))
    return run_dir / POLICY_FILE


def _read_meta(path: Path) -> dict[str, Any]:
    text = path.read_bytes()
    if not text:
        raise CheckpointError(f"{path} is empty")
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); truncated?") from err
    missing = [key for key in _META_KEYS if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise CheckpointError(f"{path} was not written by save_policy (missing {', '.join(missing)})")
    return meta


def _policy_class(meta: dict[str, Any], meta_path: Path) -> type[BasePolicy]:
    name = meta["policy_class"]
    module_name, _, class_name = str(name).rpartition(".")
    if not module_name.startswith(_POLICY_PACKAGES):
        raise CheckpointError(f"{meta_path}: policy_class {name!r} is not an era_policies / SB3 / sb3-contrib policy")
    try:
        policy_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{meta_path}: policy_class {name!r} cannot be imported ({err})") from err
    if not (isinstance(policy_class, type) and issubclass(policy_class, BasePolicy)):
        raise CheckpointError(f"{meta_path}: policy_class {name!r} is not an SB3 policy")
    return policy_class


def load_policy(run_dir: str | Path, device: str = "auto") -> tuple[Any, ObservationNormalizer | None, dict]:
    """Load what :func:`save_policy` wrote.

    :return: the SB3 policy, the observation normaliser (or ``None``) and the metadata dict.
    :raises FileNotFoundError: if ``run_dir`` holds no saved policy.
    :raises CheckpointError: if a file is empty, truncated or foreign, or the observation statistics do not fit the
        policy; the message names the file.
    """
    run_dir = Path(run_dir)
    meta_path = run_dir / POLICY_META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"no saved policy in {run_dir}: {meta_path} is missing (train with --save-model)")
    meta = _read_meta(meta_path)
    policy_class = _policy_class(meta, meta_path)
    policy_path = run_dir / POLICY_FILE
    if not policy_path.is_file():
        raise FileNotFoundError(f"{policy_path} is missing ({meta_path} refers to it)")
    if policy_path.stat().st_size == 0:
        raise CheckpointError(f"{policy_path} is empty")
    try:
        policy = policy_class.load(str(policy_path), device=device)
    except Exception as err:  # torch.load and the policy's constructor raise many types for a bad file
        raise CheckpointError(
            f"{policy_path} cannot be loaded as {policy_class.__name__} ({type(err).__name__}: {err}); "
            "it is truncated or not an SB3 policy file"
        ) from err
    normalizer = None
    if meta["obs_normalizer"]:
        normalizer_path = run_dir / str(meta["obs_normalizer"])
        normalizer = ObservationNormalizer.load(normalizer_path)
        expected = policy.observation_space.shape
        if normalizer.rms.mean.shape != expected:
            raise CheckpointError(
                f"{normalizer_path} holds statistics of shape {normalizer.rms.mean.shape}, but the policy in "
                f"{policy_path} takes observations of shape {expected}"
            )
    return policy, normalizer, meta
