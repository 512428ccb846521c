"""Stable-Baselines3 / sb3-contrib policies with ERA (needs ``pip install "era-policies[sb3]"``).

``ERASACPolicy`` (SAC), ``ERATQCPolicy`` (sb3-contrib TQC), ``ERACrossQPolicy`` (sb3-contrib CrossQ),
``ERAActorCriticPolicy`` (PPO, A2C, sb3-contrib TRPO), ``ERACallback`` (learns ``delta="auto"``, logs ``era/*``) and
the SB3 distribution ``TruncatedGaussianDistribution``. The policies' docstrings list the ERA options.
"""

from __future__ import annotations

from typing import Any

try:
    import stable_baselines3  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised by the missing-dependency test
    raise ImportError(
        'era_policies.sb3 needs Stable-Baselines3 and sb3-contrib: pip install "era-policies[sb3]"'
    ) from err

from era_policies.sb3.callbacks import ERACallback
from era_policies.sb3.distributions import TruncatedGaussianDistribution
from era_policies.sb3.policies import ERAActorCriticPolicy, ERAOptions, ERASACPolicy, SACLayerNormPolicy

__all__ = [
    "ERAActorCriticPolicy",
    "ERACallback",
    "ERACrossQPolicy",
    "ERAOptions",
    "ERASACPolicy",
    "ERATQCPolicy",
    "SACLayerNormPolicy",
    "TruncatedGaussianDistribution",
]

_CONTRIB = ("ERATQCPolicy", "ERACrossQPolicy")


def __getattr__(name: str) -> Any:
    # sb3-contrib is imported only when its policies are asked for, with a clear message if it is missing.
    if name in _CONTRIB:
        try:
            from era_policies.sb3 import contrib
        except ImportError as err:
            raise ImportError(f'{name} needs sb3-contrib: pip install "era-policies[sb3]"') from err
        return getattr(contrib, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
