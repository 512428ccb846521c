"""ERA policies for sb3-contrib's TQC and CrossQ (TRPO uses :class:`~era_policies.sb3.ERAActorCriticPolicy`)."""

from __future__ import annotations

from sb3_contrib import TQC, CrossQ
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
    """ERA policy for :class:`sb3_contrib.TQC` (use ``ent_coef=0.0``).

    Other arguments are ``TQCPolicy``'s (``use_sde=True`` is rejected).

    :param target_entropy_per_dim: the entropy floor ``H0 / D`` in nats per action dimension.
    :param log_std_min: lower clamp of the activated log standard deviation.
    :param log_std_max: upper bound of the activated log standard deviation.
    :param entropy_level: ``"state"`` (every state keeps the floor) or ``"batch"`` (the batch mean does).
    :param delta: a constant ``>= 0`` (nats per dimension) or ``"auto"``, learned by
        :class:`~era_policies.sb3.ERACallback`.
    :param batch_momentum: momentum of the running normaliser (``entropy_level="batch"`` only).
    :param action_distribution: ``"truncated_normal"`` or ``"tanh_normal"``.
    """

    actor_class = ERATQCActor
    algorithm_classes = (TQC,)


class ERACrossQPolicy(_ERAOffPolicyMixin, CrossQPolicy):
    """ERA policy for :class:`sb3_contrib.CrossQ` (use ``ent_coef=0.0``).

    Other arguments are ``CrossQPolicy``'s (``use_sde=True`` is rejected).

    :param target_entropy_per_dim: the entropy floor ``H0 / D`` in nats per action dimension.
    :param log_std_min: lower clamp of the activated log standard deviation.
    :param log_std_max: upper bound of the activated log standard deviation.
    :param entropy_level: ``"state"`` (every state keeps the floor) or ``"batch"`` (the batch mean does).
    :param delta: a constant ``>= 0`` (nats per dimension) or ``"auto"``, learned by
        :class:`~era_policies.sb3.ERACallback`.
    :param batch_momentum: momentum of the running normaliser (``entropy_level="batch"`` only).
    :param action_distribution: ``"truncated_normal"`` or ``"tanh_normal"``.
    """

    actor_class = ERACrossQActor
    algorithm_classes = (CrossQ,)
    # sb3-contrib's CrossQ concatenates observation tensors in train() and has no MultiInputPolicy.
    box_observations_only = True
