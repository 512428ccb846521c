"""ERA policies for sb3-contrib's TQC and CrossQ."""

from __future__ import annotations

from sb3_contrib.crossq.policies import Actor as CrossQActor
from sb3_contrib.crossq.policies import CrossQPolicy
from sb3_contrib.tqc.policies import Actor as TQCActor
from sb3_contrib.tqc.policies import TQCPolicy

from era_policies.sb3.policies import _ERAActorMixin, _ERAOffPolicyMixin

__all__ = ["ERACrossQPolicy", "ERATQCPolicy"]


class ERATQCActor(_ERAActorMixin, TQCActor):
    """sb3-contrib TQC actor with ERA's activation and truncated-normal actions."""


class ERACrossQActor(_ERAActorMixin, CrossQActor):
    """sb3-contrib CrossQ actor (BatchRenorm layers kept) with ERA's activation and truncated-normal actions."""


class ERATQCPolicy(_ERAOffPolicyMixin, TQCPolicy):
    """ERA policy for :class:`sb3_contrib.TQC` (use ``ent_coef=0.0``); options as in :mod:`era_policies.sb3`."""

    actor_class = ERATQCActor


class ERACrossQPolicy(_ERAOffPolicyMixin, CrossQPolicy):
    """ERA policy for :class:`sb3_contrib.CrossQ` (use ``ent_coef=0.0``); options as in :mod:`era_policies.sb3`."""

    actor_class = ERACrossQActor
