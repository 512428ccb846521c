"""Environment construction for the CleanRL-style ERA agents (SAC, PPO, batch SAC).

Three families of environment ids are supported:

- ``"gymnasium"``: any registered Gymnasium id, e.g. ``"HalfCheetah-v5"``, ``"Humanoid-v5"``, ``"Pendulum-v1"``
  (MuJoCo ids need ``pip install "era-policies[mujoco]"``);
- ``"dm_control"``: DeepMind Control Suite through Shimmy, e.g. ``"dm_control/humanoid-run-v0"``
  (``pip install "era-policies[dmc]"``);
- ``"humanoid_bench"``: HumanoidBench, e.g. ``"h1hand-walk-v0"`` (installed from git, see
  :mod:`era_utils.humanoid_bench`).

Every environment made here has a bounded 1-D ``Box`` action space and a 1-D ``float32`` ``Box`` observation space.
Wrappers, innermost first::

    gym.make(env_id)                    # includes the id's TimeLimit
    FlattenObservation                  # Dict observations (dm_control) -> flat Box
    TransformObservation(float32)       # float64 observations (MuJoCo, dm_control, HumanoidBench) -> float32
    NoEarlyTermination                  # only when early termination is disabled
    ActionRepeat                        # only when action_repeat > 1
    RecordVideo                         # only for idx == 0 with capture_video; one frame per agent step
    FiniteCheck                         # a NaN or inf observation or reward stops everything, naming it
    RecordEpisodeStatistics             # outermost: returns are sums over all simulator rewards

HumanoidBench follows the ERA paper's protocol by default (action repeat 2, no early termination); every other family
defaults to action repeat 1 with early termination.

Headless rendering: before MuJoCo, dm_control or Shimmy are imported, ``MUJOCO_GL`` is set to ``egl`` if it is unset,
the platform is Linux and an EGL library is found (``libEGL``; it renders offscreen without a display, on a GPU when
one is there and with Mesa's software renderer otherwise). Otherwise it is left unset, and MuJoCo and dm_control pick
whatever backend imports, or none: training never needs rendering. If dm_control then cannot open a headless EGL
display, it falls back to ``MUJOCO_GL=disabled`` with a warning (training works, rendering does not). Set
``MUJOCO_GL`` yourself (``egl``, ``osmesa``, ``glfw``) to override all of this.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import math
import os
import re
import warnings
from collections.abc import Callable
from typing import Any, Literal, SupportsFloat

import numpy as np

from era_utils.dependencies import (
    AGENTS_INSTALL,
    MissingDependencyError,
    mujoco_gl_was_defaulted,
    require,
    set_default_mujoco_gl,
)

gym = require("gymnasium", AGENTS_INSTALL, "era_utils.envs (the agents' environments)")
from era_policies.spaces import check_continuous_action_space  # noqa: E402 - needs gymnasium, checked just above

__all__ = [
    "DMC_INSTALL",
    "MUJOCO_INSTALL",
    "VIDEO_INSTALL",
    "ActionRepeat",
    "EnvFamily",
    "FiniteCheck",
    "NoEarlyTermination",
    "NonFiniteError",
    "check_env_id",
    "env_family",
    "episode_returns",
    "make_env",
    "make_vector_env",
]

EnvFamily = Literal["gymnasium", "dm_control", "humanoid_bench"]

MUJOCO_INSTALL = 'pip install "era-policies[mujoco]"'
DMC_INSTALL = 'pip install "era-policies[dmc]"'
VIDEO_INSTALL = 'pip install "era-policies[video]"'

# HumanoidBench registers "<robot>-<task>-v0" for these robots (humanoid_bench.env.ROBOTS). Matching the id here means
# the family is known without importing HumanoidBench, so a missing install gives the HumanoidBench install message.
_HUMANOID_BENCH_ID = re.compile(r"(?:h1|h1hand|h1simplehand|h1strong|h1touch|g1)-\w+-v\d+")

# (action_repeat, early_termination) per family; HumanoidBench follows the ERA paper's protocol (docs/era-method.md §5).
_FAMILY_DEFAULTS: dict[str, tuple[int, bool]] = {
    "gymnasium": (1, True),
    "dm_control": (1, True),
    "humanoid_bench": (2, False),
}


def env_family(env_id: str) -> EnvFamily:
    """Which family an environment id belongs to.

    :param env_id: e.g. ``"HalfCheetah-v5"``, ``"dm_control/cheetah-run-v0"`` or ``"h1hand-walk-v0"``.
    :return: ``"dm_control"`` for the ``dm_control/`` namespace, ``"humanoid_bench"`` for HumanoidBench's
        ``<robot>-<task>-v0`` ids, ``"gymnasium"`` for everything else.
    """
    if env_id.startswith("dm_control/"):
        return "dm_control"
    if _HUMANOID_BENCH_ID.fullmatch(env_id):
        return "humanoid_bench"
    return "gymnasium"


def _check_repeat(repeat: float, name: str) -> int:
    if int(repeat) != repeat or repeat < 1:
        raise ValueError(f"{name} must be a positive integer, got {repeat}.")
    return int(repeat)


class ActionRepeat(gym.Wrapper):
    """Repeat every action ``repeat`` times and return the sum of the rewards.

    Stops early when the inner environment terminates or truncates; the observation, flags and ``info`` are those of
    the last inner step. Episode lengths seen through this wrapper are therefore ``ceil(inner_length / repeat)``.
    """

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        self.repeat = _check_repeat(repeat, "repeat")

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total_reward = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            if terminated or truncated:
                break
        return obs, total_reward, terminated, truncated, info


class NoEarlyTermination(gym.Wrapper):
    """Turn ``terminated=True`` into ``False`` so that episodes only end at the time limit (``truncated``).

    The inner flag is kept in ``info["original_terminated"]`` at every step. HumanoidBench is trained this way in the
    ERA paper: a robot that has fallen keeps collecting (low) rewards until the time limit. Needs a time limit
    (``TimeLimit``, as registered ids have) or episodes never end.
    """

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "original_terminated": bool(terminated)}
        return obs, reward, False, truncated, info


class NonFiniteError(RuntimeError):
    """An environment returned a NaN or infinite observation or reward; the message names the env, step and field."""


class FiniteCheck(gym.Wrapper):
    """Raise :class:`NonFiniteError` at the first NaN or infinite action given to ``step``, or observation (of
    ``reset`` or ``step``) or reward returned.

    One ``np.isfinite`` over the action and the observation and one ``math.isfinite`` over the reward per step (about
    a microsecond on the small NumPy arrays an env takes and returns): a broken env or a diverged policy stops the run
    at once, naming what was wrong, instead of training on NaN to the end. This is also what lets the agents' action
    distributions skip torch's per-call argument checks (host reads on every acting step).

    :param env: the environment.
    :param env_id: its id, for the message.
    :param idx: its index in a vector env, for the message.
    """

    def __init__(self, env: gym.Env, env_id: str, idx: int = 0) -> None:
        super().__init__(env)
        self._name = f"{env_id} (env {idx})"
        self._steps = 0
        self._episode_steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._episode_steps = 0
        if not np.isfinite(obs).all():
            self._fail("observation", obs, "reset")
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if not np.isfinite(action).all():
            self._fail("action", action, "step")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._episode_steps += 1
        if not np.isfinite(obs).all():
            self._fail("observation", obs, "step")
        if not math.isfinite(float(reward)):
            self._fail("reward", reward, "step")
        return obs, reward, terminated, truncated, info

    def _fail(self, field: str, value: Any, call: str) -> None:
        values = np.asarray(value, dtype=np.float64)
        if values.ndim == 0:
            detail = f"{float(values)}"
        else:
            bad = np.flatnonzero(~np.isfinite(values))
            detail = ", ".join(f"[{i}] = {values.flat[i]}" for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
        if field == "action":  # the policy's output, before the env steps: the agent (networks, inputs) diverged
            where = f"at step {self._steps + 1} (step {self._episode_steps + 1} of its episode)"
            raise NonFiniteError(
                f"{self._name} was given a non-finite action {where}: {detail}. The policy's output is broken "
                "(diverged networks or non-finite inputs); nothing after this was trained on or saved"
            )
        where = "at reset" if call == "reset" else f"at step {self._steps} (step {self._episode_steps} of its episode)"
        raise NonFiniteError(
            f"{self._name} returned a non-finite {field} {where}: {detail}. The environment (or the action it was "
            "given) is broken; nothing after this was trained on or saved"
        )


class _SeedOnFirstReset(gym.Wrapper):
    """Use ``seed`` for the first ``reset()`` that is given no seed (like SB3's ``VecEnv.seed``).

    Makes ``make_env(..., seed)`` deterministic on its own; an explicit ``reset(seed=...)`` (CleanRL's
    ``envs.reset(seed=args.seed)``, which seeds sub-env ``i`` with ``seed + i``, the same value) takes precedence.
    """

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self._pending_seed: int | None = seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        return self.env.reset(seed=seed, options=options)


def _import_dm_control() -> None:
    """Import dm_control's suite and Shimmy (which registers the ``dm_control/...`` ids)."""
    set_default_mujoco_gl()
    require("dm_control", DMC_INSTALL, "DeepMind Control Suite")
    # dm_control.suite first: it imports the rendering backend (as Shimmy's import would), which may need the fallback.
    try:
        importlib.import_module("dm_control.suite")
    except ModuleNotFoundError as err:
        raise MissingDependencyError(f"dm_control could not be imported ({err}). Install: {DMC_INSTALL}") from err
    except ImportError as err:
        # An EGL library exists but no headless display could be opened (e.g. a GL vendor library without a driver).
        # Only undo our own default: a user-chosen backend that fails should fail loudly.
        if not mujoco_gl_was_defaulted() or os.environ.get("MUJOCO_GL") != "egl":
            raise
        warnings.warn(
            f"dm_control could not use the default MUJOCO_GL=egl ({err}); continuing with MUJOCO_GL=disabled: "
            "training works but rendering does not. Set MUJOCO_GL=osmesa or glfw to render.",
            RuntimeWarning,
            stacklevel=3,
        )
        os.environ["MUJOCO_GL"] = "disabled"
        importlib.import_module("dm_control.suite")
    shimmy = require("shimmy", DMC_INSTALL, "DeepMind Control Suite through Gymnasium")
    gym.register_envs(shimmy)  # no-op: importing shimmy registers its ids; this documents why it is imported


def _uses_mujoco(env_id: str) -> bool:
    """Whether a Gymnasium id is one of Gymnasium's own MuJoCo environments (their module imports ``mujoco``)."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error:
        return False  # unknown id: let gym.make raise its own error
    return isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.mujoco")


def _import_family(env_id: str, family: EnvFamily) -> None:
    """Import (and so check) what ``env_id``'s family needs; this registers the dm_control and HumanoidBench ids."""
    if family == "dm_control":
        _import_dm_control()
    elif family == "humanoid_bench":
        from era_utils.humanoid_bench import import_humanoid_bench

        import_humanoid_bench()
    elif _uses_mujoco(env_id):
        set_default_mujoco_gl()
        require("mujoco", MUJOCO_INSTALL, f"{env_id} (Gymnasium MuJoCo)")


def check_env_id(env_id: str, flag: str = "--env-id") -> None:
    """Check, without building the environment, that ``env_id`` can be made here: its family's optional dependency
    imports (as :func:`make_env` would import it) and the id is registered.

    :param env_id: a Gymnasium, ``dm_control/...`` or HumanoidBench id (see :func:`env_family`).
    :param flag: the flag that gave the id, for the messages.
    :raises MissingDependencyError: the family's extra is missing; the message names ``flag`` and the install command.
    :raises ValueError: the id is not registered; the message names ``flag`` (and Gymnasium's suggestion, if any).
    """
    try:
        _import_family(env_id, env_family(env_id))
    except MissingDependencyError as err:
        raise MissingDependencyError(f"{flag} {env_id}: {err}") from err
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(f"{flag} {env_id!r} is not a registered environment ({err})") from err


def _make_base_env(env_id: str, family: EnvFamily, render_mode: str | None) -> gym.Env:
    """``gym.make`` for the right family, after importing (and checking) what that family needs."""
    _import_family(env_id, family)
    # HumanoidBench's default render_mode is "rgb_array", which opens an OpenGL context even if nothing is rendered:
    # always pass render_mode explicitly (None for training).
    return gym.make(env_id, render_mode=render_mode)


def _as_float32_vector(env: gym.Env) -> gym.Env:
    """Flatten Dict/Tuple observations (dm_control) and cast observations to float32."""
    if isinstance(env.observation_space, (gym.spaces.Dict, gym.spaces.Tuple)):
        env = gym.wrappers.FlattenObservation(env)
    space = env.observation_space
    if isinstance(space, gym.spaces.Box) and space.dtype != np.float32:
        # Not gym.wrappers.DtypeObservation: it builds the new Box from float64 bounds and warns about the precision.
        float32_space = gym.spaces.Box(
            low=space.low.astype(np.float32), high=space.high.astype(np.float32), dtype=np.float32
        )
        env = gym.wrappers.TransformObservation(env, _to_float32, float32_space)
    return env


def _to_float32(obs: np.ndarray) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32)


# Gymnasium's environments that draw their frames with pygame (MuJoCo ones render through MuJoCo's own GL context).
_PYGAME_RENDERED = ("gymnasium.envs.classic_control", "gymnasium.envs.box2d", "gymnasium.envs.toy_text")


def _video_packages(env_id: str) -> list[str]:
    """The importable modules that recording ``env_id`` needs: moviepy to encode, pygame to draw some envs."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error:
        entry_point = None  # unknown id: gym.make reports it
    drawn_by_pygame = isinstance(entry_point, str) and entry_point.startswith(_PYGAME_RENDERED)
    return ["moviepy", "pygame"] if drawn_by_pygame else ["moviepy"]


def _check_video_dependency(env_id: str) -> None:
    """Name every missing package at once, before the (possibly slow) env is built: RecordVideo checks for moviepy
    only in its constructor, and a missing pygame shows up only at the first frame."""
    missing = [module for module in _video_packages(env_id) if _find_spec(module) is None]
    if missing:
        raise MissingDependencyError(
            f"capture_video for {env_id} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install: {VIDEO_INSTALL}"
        )


def _find_spec(module: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(module)
    except ValueError:  # a module set to None in sys.modules (blocked) has no spec
        return None


def _record_video(env: gym.Env, env_id: str, video_dir: str | None, action_repeat: int) -> gym.Env:
    """Record one frame per agent step, played back in real time.

    Outside :class:`ActionRepeat` so that only every ``action_repeat``-th simulator step is rendered: rendering
    dominates the cost of a recorded episode (HumanoidBench: ~0.85 s per frame with software EGL on 2 CPU cores).
    """
    name = env_id.replace("/", "_")
    video_dir = video_dir if video_dir is not None else os.path.join("videos", name)
    fps = env.metadata.get("render_fps", 30) / action_repeat
    return gym.wrappers.RecordVideo(env, video_dir, name_prefix=name, fps=fps)


def make_env(
    env_id: str,
    seed: int,
    idx: int = 0,
    capture_video: bool = False,
    video_dir: str | None = None,
    action_repeat: int | None = None,
    early_termination: bool | None = None,
) -> Callable[[], gym.Env]:
    """Return a thunk that builds one wrapped environment (CleanRL style, for ``gym.vector.SyncVectorEnv``).

    The environment has a 1-D ``float32`` ``Box`` observation space (Dict observations are flattened) and a bounded
    1-D ``Box`` action space (checked with :func:`check_continuous_action_space`). The agents rescale ``[-1, 1]``
    policy outputs to the action bounds themselves. ``gym.wrappers.RecordEpisodeStatistics`` is the outermost wrapper,
    so ``info["episode"]["r"]`` is the sum of all simulator rewards (including the action-repeat sums) and
    ``info["episode"]["l"]`` counts agent steps (simulator steps / ``action_repeat``). Note that
    ``env.spec.max_episode_steps`` still counts simulator steps.

    :param env_id: a Gymnasium, ``dm_control/...`` or HumanoidBench id (see :func:`env_family`).
    :param seed: seeds the action space and the first ``reset()`` that is given no seed.
    :param idx: index of this env in the vector env; only ``idx == 0`` records video.
    :param capture_video: record videos of env 0 (``render_mode="rgb_array"``, needs moviepy), one frame per agent
        step, with Gymnasium's default schedule (episodes 0, 1, 8, 27, ..., 1000, 2000, ...).
    :param video_dir: where to write them; default ``videos/<env_id>``.
    :param action_repeat: repeat each action this many times, summing rewards; ``None``: 2 for HumanoidBench, else 1.
    :param early_termination: ``False`` turns terminations into ``info["original_terminated"]`` so that episodes end
        only at the time limit; ``None``: ``False`` for HumanoidBench, else ``True``.
    :raises MissingDependencyError: (when called) if the family's optional dependency is missing.
    :raises ValueError: (when called) if the action space is not a bounded 1-D Box.

    The env raises :class:`NonFiniteError` at the first NaN or infinite observation or reward (:class:`FiniteCheck`).
    """
    family = env_family(env_id)
    default_repeat, default_termination = _FAMILY_DEFAULTS[family]
    repeat = _check_repeat(default_repeat if action_repeat is None else action_repeat, "action_repeat")
    terminate = default_termination if early_termination is None else early_termination
    record = capture_video and idx == 0

    def thunk() -> gym.Env:
        if record:
            _check_video_dependency(env_id)
        env = _make_base_env(env_id, family, render_mode="rgb_array" if record else None)
        try:
            check_continuous_action_space(env.action_space)
        except ValueError:
            env.close()
            raise
        env = _SeedOnFirstReset(env, seed)
        env = _as_float32_vector(env)
        if not terminate:
            env = NoEarlyTermination(env)
        if repeat > 1:
            env = ActionRepeat(env, repeat)
        if record:
            env = _record_video(env, env_id, video_dir, repeat)
        env = FiniteCheck(env, env_id, idx)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env.action_space.seed(seed)
        return env

    return thunk


def make_vector_env(
    env_id: str,
    num_envs: int,
    seed: int,
    capture_video: bool = False,
    video_dir: str | None = None,
    action_repeat: int | None = None,
    early_termination: bool | None = None,
) -> gym.vector.SyncVectorEnv:
    """Build ``num_envs`` copies of :func:`make_env` in a ``SyncVectorEnv`` with same-step autoreset.

    Sub-env ``i`` is ``make_env(env_id, seed + i, idx=i, ...)``; ``envs.reset()`` and ``envs.reset(seed=seed)`` both
    seed it with ``seed + i``. Observations have shape ``(num_envs, obs_dim)``, float32.

    With ``AutoresetMode.SAME_STEP`` (Gymnasium >= 1.1), on the step where sub-env ``i`` terminates or truncates,
    ``step`` already returns the observation of its *next* episode (the env is reset inside that step), and
    Gymnasium 1.4 reports the finished episode in ``infos`` as follows:

    - ``infos["final_obs"]``: object array of length ``num_envs``; entry ``i`` is the true last observation (shape
      ``(obs_dim,)``) and ``None`` for sub-envs that did not finish; ``infos["_final_obs"]`` is the boolean mask.
      Use it as the next observation when storing/bootstrapping the transition (needed on truncation)::

          real_next_obs = next_obs.copy()
          for i in np.flatnonzero(infos.get("_final_obs", [])):
              real_next_obs[i] = infos["final_obs"][i]

    - ``infos["final_info"]``: the finished sub-envs' last step ``info``, batched (arrays of length ``num_envs`` plus a
      ``_<key>`` mask per key), mask ``infos["_final_info"]``. RecordEpisodeStatistics' stats are in there:
      ``infos["final_info"]["episode"]["r" | "l" | "t"]`` with mask ``infos["final_info"]["_episode"]``. The top-level
      keys of ``infos`` on that step hold the *reset* info of the new episode, so ``infos["episode"]`` is absent.
      Use :func:`episode_returns` rather than indexing this by hand.

    :raises ImportError: if the installed Gymnasium has no ``AutoresetMode`` (< 1.1).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
    if not hasattr(gym.vector, "AutoresetMode"):
        raise ImportError(f"make_vector_env needs gymnasium>=1.1 (AutoresetMode), found {gym.__version__}.")
    thunks = [
        make_env(
            env_id,
            seed + i,
            idx=i,
            capture_video=capture_video,
            video_dir=video_dir,
            action_repeat=action_repeat,
            early_termination=early_termination,
        )
        for i in range(num_envs)
    ]
    return gym.vector.SyncVectorEnv(thunks, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def episode_returns(infos: dict[str, Any]) -> list[tuple[float, int]]:
    """``(return, length)`` of every episode that finished on this step, in sub-env order.

    Handles the layouts ``RecordEpisodeStatistics`` produces: a vector env with same-step autoreset (stats under
    ``infos["final_info"]["episode"]``), a vector env with next-step autoreset (``infos["episode"]`` with mask
    ``infos["_episode"]``), and a single env's ``info`` (``info["episode"]`` with scalars).

    :param infos: the ``infos`` returned by ``envs.step`` (or ``info`` of a single env's ``step``).
    :return: an empty list when no episode finished.
    """
    finished: list[tuple[float, int]] = []
    for container in (infos.get("final_info"), infos):
        if not isinstance(container, dict) or "episode" not in container:
            continue
        returns = np.asarray(container["episode"]["r"])
        lengths = np.asarray(container["episode"]["l"])
        if returns.ndim == 0:  # a single env's info
            finished.append((float(returns), int(lengths)))
            continue
        mask = np.asarray(container.get("_episode", np.ones(returns.shape, dtype=bool)), dtype=bool)
        finished.extend((float(returns[i]), int(lengths[i])) for i in np.flatnonzero(mask))
    return finished
