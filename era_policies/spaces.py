"""Action-space checks shared by the SB3 policies and the agents (needs gymnasium, as SB3 does)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

__all__ = ["check_continuous_action_space"]


def check_continuous_action_space(space: gym.Space) -> gym.spaces.Box:
    """Check that ``space`` is a bounded 1-D floating-point ``Box`` and return it.

    ERA bounds the policy's entropy for continuous actions in a box (the agents rescale a policy output in
    ``[-1, 1]`` to ``[low, high]``), so discrete, multi-dimensional or unbounded action spaces are rejected.

    :raises ValueError: otherwise, saying what is wrong.
    """
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(
            f"ERA needs a continuous (Box) action space, got {space}. Discrete actions are not supported by the "
            "agents and SB3 policies; see era_policies.era_logits for softmax ERA."
        )
    if len(space.shape) != 1:
        raise ValueError(f"ERA needs a 1-D Box action space, got shape {space.shape}.")
    if not np.issubdtype(space.dtype, np.floating):
        raise ValueError(f"ERA needs a floating-point Box action space, got dtype {space.dtype}.")
    if not space.is_bounded("both"):
        raise ValueError(
            f"ERA needs finite action bounds (actions are rescaled from [-1, 1] to [low, high]), got low={space.low}, "
            f"high={space.high}."
        )
    return space
