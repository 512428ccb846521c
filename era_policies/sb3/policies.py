"""ERA policies for Stable-Baselines3 (SAC, PPO, A2C); sb3-contrib's TQC, CrossQ and TRPO use them too.

Usage is SB3's, with ERA's options as policy kwargs and :class:`~era_policies.sb3.ERACallback` to log ``era/*`` and
learn ``delta="auto"``::

    model = SAC(ERASACPolicy, env, ent_coef=0.0, policy_kwargs=dict(target_entropy_per_dim=-0.5, delta="auto"))
    model.learn(100_000, callback=ERACallback())

Module layout (a contract: the single-file agents export their networks into these classes by ``state_dict``):

* SAC-family actor: SB3's ``latent_pi``, ``mu`` (mean head) and ``log_std`` (a ``Linear`` giving ERA's std *logits*;
  SB3's name kept), and ``era_std``, the ERA head (:class:`~era_policies.ERAStd`) with its children ``era_delta``
  (:class:`~era_policies.EntropyDelta`) and, for ``entropy_level="batch"`` only, ``batch_era``
  (:class:`~era_policies.BatchERA`).
* :class:`ERAActorCriticPolicy`: SB3's ``mlp_extractor``, ``action_net`` (mean) and ``value_net``, plus
  ``std_logits_net`` and ``era_std``.

State dicts written before the head existed (``era_delta.*``, ``batch_era.*`` directly under the actor or the policy)
still load: :meth:`ERAStd.accept_legacy_state_dicts <era_policies.ERAStd.accept_legacy_state_dicts>` renames them.
* :class:`LayerNormContinuousCritic`: ``qf0``, ``qf1``, ... = ``Linear, LayerNorm, activation`` per hidden layer, then
  ``Linear`` to the Q-value.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np
import sb3_contrib
import stable_baselines3
import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import Distribution, SquashedDiagGaussianDistribution
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

import era_policies
from era_policies.activations import ERAStd
from era_policies.delta import EntropyDelta
from era_policies.sb3.distributions import TruncatedGaussianDistribution
from era_policies.spaces import check_continuous_action_space

__all__ = [
    "ERAActorCriticPolicy",
    "ERAOptions",
    "ERASACPolicy",
    "LayerNormContinuousCritic",
    "SACLayerNormPolicy",
]

SAC_DEFAULT_TARGET_ENTROPY_PER_DIM = -0.5
ACTOR_CRITIC_DEFAULT_TARGET_ENTROPY_PER_DIM = -0.3
BOUNDED_MAX_ENTROPY_PER_DIM = math.log(2.0)  # the uniform distribution on [-1, 1]

EntropyLevel = Literal["state", "batch"]
ActionDistribution = Literal["truncated_normal", "tanh_normal"]

_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep  # type: ignore[arg-type]
    for module in (era_policies, stable_baselines3, sb3_contrib)
)


def warn_in_user_code(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside era_policies, SB3 and sb3-contrib (the user's line).

    Only the frames' file names are read (what ``warnings.warn(skip_file_prefixes=...)`` does on Python >= 3.12).
    """
    frame = sys._getframe(1)
    stacklevel = 2  # 1 would be this function's own line
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_LIBRARY_DIRS):
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)


@dataclass(frozen=True)
class ERAOptions:
    """ERA's options of an SB3 policy, checked once when the policy is constructed (before SB3 builds any network);
    :meth:`head` builds the ERA head from them, and saving writes them back as the policy's keyword arguments.

    :param target_entropy_per_dim: the entropy floor ``H0 / D`` in nats per action dimension.
    :param log_std_min: lower clamp of the activated log standard deviation.
    :param log_std_max: upper bound of the activated log standard deviation (at most ``log(20)``).
    :param entropy_level: ``"state"`` (every state keeps the floor) or ``"batch"`` (the batch mean does).
    :param delta: a constant ``>= 0`` (nats per dimension) or ``"auto"``.
    :param batch_momentum: momentum of the running normaliser (``entropy_level="batch"``).
    :raises ValueError: naming the option (the checks are :class:`~era_policies.ERAStd`'s).
    """

    target_entropy_per_dim: float
    log_std_min: float = -8.0
    log_std_max: float = 0.0
    entropy_level: EntropyLevel = "state"
    delta: float | Literal["auto"] = 0.0
    batch_momentum: float = 0.01

    def __post_init__(self) -> None:
        if self.entropy_level not in ("state", "batch"):
            raise ValueError(f"entropy_level must be 'state' or 'batch', got {self.entropy_level!r}.")
        self.head(action_dim=1)  # ERAStd checks every other option, without a network to build

    def head(self, action_dim: int) -> ERAStd:
        """The ERA head for ``action_dim`` action dimensions."""
        return ERAStd(
            action_dim,
            self.target_entropy_per_dim,
            self.log_std_min,
            self.log_std_max,
            self.entropy_level,
            self.delta,
            self.batch_momentum,
        )


def _check_action_distribution(action_distribution: str) -> None:
    if action_distribution not in ("truncated_normal", "tanh_normal"):
        raise ValueError(
            f"action_distribution must be 'truncated_normal' or 'tanh_normal', got {action_distribution!r}."
        )


def _check_sb3_arguments(
    policy: _ERAPolicyMixin, observation_space: spaces.Space, action_space: spaces.Space, kwargs: dict[str, Any]
) -> None:
    """Reject SB3 arguments and algorithms an ERA policy cannot work with, naming them, before any network is built.

    :param kwargs: the SB3 keyword arguments the policy was given (``use_sde``, ``features_extractor_class``).
    """
    policy_name = type(policy).__name__
    check_continuous_action_space(action_space)
    if policy.box_observations_only and not isinstance(observation_space, spaces.Box):
        raise ValueError(
            f"{policy_name} needs a Box observation space, got {type(observation_space).__name__}: sb3-contrib's "
            "CrossQ concatenates observation tensors in train() and has no MultiInputPolicy. Flatten Dict "
            "observations with gymnasium.wrappers.FlattenObservation."
        )
    if kwargs.get("use_sde", False):
        raise ValueError(
            "use_sde=True is not supported by ERA policies: ERA sets the standard deviation through its activation, "
            "which gSDE's exploration matrix would replace. Use use_sde=False."
        )
    if isinstance(observation_space, spaces.Dict) and kwargs.get("features_extractor_class", FlattenExtractor) is (
        FlattenExtractor
    ):
        raise ValueError(
            f"{policy_name} got a Dict observation space, which the default FlattenExtractor cannot read. Pass "
            "policy_kwargs=dict(features_extractor_class=CombinedExtractor) (from "
            "stable_baselines3.common.torch_layers), as SB3's MultiInputPolicy does."
        )


def parameters_without_delta(module: nn.Module) -> list[nn.Parameter]:
    """``module``'s parameters except ERA's ``delta``: SB3's optimisers must not touch it (weight decay, their Adam
    moments); :class:`~era_policies.sb3.ERACallback` learns it with its own optimiser."""
    deltas = {id(m.delta) for m in module.modules() if isinstance(m, EntropyDelta)}
    return [param for param in module.parameters() if id(param) not in deltas]


def _bounded_entropy(distribution: Distribution) -> torch.Tensor:
    """``(B,)`` entropies of an SB3 distribution; a tanh-squashed Gaussian has no closed form, so ``-log p`` of one
    sample per state (unbiased) stands in."""
    entropy = distribution.entropy()
    if entropy is None:
        actions = distribution.sample()
        entropy = -distribution.log_prob(actions, distribution.gaussian_actions)  # type: ignore[call-arg,attr-defined]
    return entropy


# ------------------------------------------------------------------------------------------ SAC-family actors
class _ERAActorMixin:
    """Turns an SB3 SAC-family actor (``latent_pi``, ``mu`` and ``log_std`` heads) into an ERA actor: the ``log_std``
    head's output becomes ERA's std logits, activated by the ERA head ``era_std``; the action distribution is the
    truncated normal (or SB3's tanh-Gaussian).

    :param era_options: ERA's options (checked by the policy).
    :param action_distribution: ``"truncated_normal"`` or ``"tanh_normal"``.
    """

    action_space: spaces.Box
    action_dist: Distribution
    era_std: ERAStd
    extract_features: Callable[..., torch.Tensor]
    features_extractor: BaseFeaturesExtractor
    latent_pi: nn.Module
    mu: nn.Module
    log_std: nn.Module

    def __init__(self, *args: Any, era_options: ERAOptions, action_distribution: ActionDistribution, **kwargs: Any):
        super().__init__(*args, **kwargs)
        action_dim = get_action_dim(self.action_space)
        self.era_options, self.action_distribution = era_options, action_distribution
        self.era_std = era_options.head(action_dim)
        ERAStd.accept_legacy_state_dicts(self)  # type: ignore[arg-type]
        if action_distribution == "truncated_normal":
            self.action_dist = TruncatedGaussianDistribution(action_dim)
        else:
            self.action_dist = SquashedDiagGaussianDistribution(action_dim)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        return {**data, "era_options": self.era_options, "action_distribution": self.action_distribution}

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """:return: mean ``(B, D)``, ERA-activated log std ``(B, D)`` and no extra kwargs."""
        latent_pi = self.latent_pi(self.extract_features(obs, self.features_extractor))
        return self.mu(latent_pi), self.era_std(self.log_std(latent_pi)), {}

    def era_entropy(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        """:return: ``(B,)`` entropies of the bounded policy and ``(B, D)`` activated log stds at ``obs``."""
        mean_actions, log_std, _ = self.get_action_dist_params(obs)
        return _bounded_entropy(self.action_dist.proba_distribution(mean_actions, log_std)), log_std


class ERASACActor(_ERAActorMixin, SACActor):
    """SB3 SAC actor with ERA's activation and truncated-normal actions."""


class LayerNormContinuousCritic(ContinuousCritic):
    """SB3's continuous Q-critics with ``LayerNorm`` after every hidden ``Linear`` (before the activation).

    The released ERA SAC recipe uses such critics (2x512, LayerNorm, ELU). Arguments are ``ContinuousCritic``'s.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            net_arch,
            features_extractor,
            features_dim,
            activation_fn,
            normalize_images,
            n_critics,
            share_features_extractor,
        )
        action_dim = get_action_dim(self.action_space)
        for idx in range(n_critics):
            q_net = nn.Sequential(
                *create_mlp(features_dim + action_dim, 1, net_arch, activation_fn, post_linear_modules=[nn.LayerNorm])
            )
            self.add_module(f"qf{idx}", q_net)  # replaces the plain MLP registered by the parent
            self.q_networks[idx] = q_net


class SACLayerNormPolicy(SACPolicy):
    """SB3's ``SACPolicy`` (tanh-Gaussian actor) with optional LayerNorm critics.

    This is the plain-SAC twin of :class:`ERASACPolicy` used by ``agents/sac_era.py --no-era``: same networks,
    only the actor's distribution differs. Other arguments are ``SACPolicy``'s.

    :param critic_layer_norm: put ``LayerNorm`` after each hidden layer of the critics.
    """

    def __init__(self, *args: Any, critic_layer_norm: bool = True, **kwargs: Any) -> None:
        self.critic_layer_norm = critic_layer_norm
        super().__init__(*args, **kwargs)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        if not self.critic_layer_norm:
            return super().make_critic(features_extractor)
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return LayerNormContinuousCritic(**critic_kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["critic_layer_norm"] = self.critic_layer_norm
        return data


# ------------------------------------------------------------------------------------------------- policies
class _ERAPolicyMixin:
    """Shared by every ERA policy: says once when ``delta="auto"`` is trained without ``ERACallback``."""

    era_std: ERAStd
    # Set by ERACallback while it learns this policy's delta; a plain attribute, so not saved.
    delta_learned_by_callback: bool = False
    _warned_delta_not_learned: bool = False

    # SB3 gives a policy no handle on the algorithm that trains it (and ``X.load`` builds whatever policy class a zip
    # names), so the pairing is checked where the algorithm is known: :meth:`check_algorithm`, called by ERACallback.
    algorithm_classes: ClassVar[tuple[type[BaseAlgorithm], ...]]
    box_observations_only: ClassVar[bool] = False

    def check_algorithm(self, algorithm: BaseAlgorithm) -> None:
        """Refuse an algorithm this policy's networks and losses do not fit (e.g. ``TQC.load`` of a SAC-ERA zip).

        :raises ValueError: naming the policy, its algorithms and the ``.load`` to use.
        """
        expected = self.algorithm_classes
        if not isinstance(algorithm, expected):
            names = " or ".join(cls.__name__ for cls in expected)
            raise ValueError(
                f"{type(self).__name__} is the ERA policy of {names}, not of {type(algorithm).__name__} (its networks "
                f"and losses differ). Use {type(algorithm).__name__}'s ERA policy; a saved {names} model loads with "
                f"{names}.load."
            )

    def _set_era_options(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        kwargs: dict[str, Any],
        era_options: ERAOptions,
    ) -> None:
        """Check the SB3 arguments (``era_options`` checked itself) before SB3 builds any network and keep the options:
        the parent constructor's ``make_actor`` / ``_build`` read them, and saving writes them back."""
        _check_sb3_arguments(self, observation_space, action_space, kwargs)
        self.era_options = era_options
        target = float(era_options.target_entropy_per_dim)
        if target > BOUNDED_MAX_ENTROPY_PER_DIM:
            warn_in_user_code(
                f"target_entropy_per_dim={target} exceeds log(2) = {BOUNDED_MAX_ENTROPY_PER_DIM:.4f}, the largest "
                "entropy any distribution on [-1, 1] can have: the Gaussian keeps the target, the bounded policy "
                "cannot (and delta='auto' would climb to its cap)."
            )

    def set_training_mode(self, mode: bool) -> None:
        # SB3's train() calls this first: the one place a policy learns it is being trained.
        if mode and self.era_std.era_delta.learnable and not self.delta_learned_by_callback:
            if not self._warned_delta_not_learned:
                self._warned_delta_not_learned = True
                warn_in_user_code(
                    f"{type(self).__name__} has delta='auto' but nothing learns delta: pass "
                    "callback=era_policies.sb3.ERACallback() to learn(), or step "
                    "era_std.era_delta.update(entropy, optimizer) yourself. delta stays at its current value."
                )
        super().set_training_mode(mode)  # type: ignore[misc]

    def era_entropy(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        """:return: ``(B,)`` entropies of the bounded policy and ``(B, D)`` activated log stds at ``obs``."""
        raise NotImplementedError


class _ERAOffPolicyMixin(_ERAPolicyMixin):
    """ERA for SAC-family policies: builds the ERA actor class given by ``actor_class``; options as in
    :class:`ERASACPolicy`."""

    actor_class: ClassVar[type[_ERAActorMixin]]
    actor: _ERAActorMixin
    actor_kwargs: dict[str, Any]
    device: torch.device
    optimizer_class: type[torch.optim.Optimizer]
    optimizer_kwargs: dict[str, Any]
    _update_features_extractor: Callable[..., dict[str, Any]]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        target_entropy_per_dim: float = SAC_DEFAULT_TARGET_ENTROPY_PER_DIM,
        log_std_min: float = -8.0,
        log_std_max: float = 0.0,
        entropy_level: EntropyLevel = "state",
        delta: float | Literal["auto"] = 0.0,
        batch_momentum: float = 0.01,
        action_distribution: ActionDistribution = "truncated_normal",
        **kwargs: Any,
    ) -> None:
        era_options = ERAOptions(target_entropy_per_dim, log_std_min, log_std_max, entropy_level, delta, batch_momentum)
        _check_action_distribution(action_distribution)
        self._set_era_options(observation_space, action_space, kwargs, era_options)
        self.action_distribution = action_distribution
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)  # type: ignore[call-arg]

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        self.actor.optimizer = self.optimizer_class(  # type: ignore[assignment]
            parameters_without_delta(self.actor), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> _ERAActorMixin:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        actor = self.actor_class(
            **actor_kwargs, era_options=self.era_options, action_distribution=self.action_distribution
        )
        return actor.to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        return {**data, **asdict(self.era_options), "action_distribution": self.action_distribution}

    @property
    def era_std(self) -> ERAStd:
        """The actor's ERA head (:class:`~era_policies.ERAStd`)."""
        return self.actor.era_std

    def era_entropy(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor.era_entropy(obs)


class ERASACPolicy(_ERAOffPolicyMixin, SACLayerNormPolicy):
    """ERA policy for :class:`stable_baselines3.SAC` (use with ``ent_coef=0.0``).

    Other arguments are ``SACPolicy``'s (``use_sde=True`` is rejected).

    :param target_entropy_per_dim: the entropy floor ``H0 / D`` in nats per action dimension (-0.5: the released
        learner's default).
    :param log_std_min: lower clamp of the activated log standard deviation.
    :param log_std_max: upper bound of the activated log standard deviation.
    :param entropy_level: ``"state"``: every state keeps the floor; ``"batch"``: the batch mean does (acting uses a
        running normaliser, like BatchNorm's statistics).
    :param delta: compensation for the entropy that bounding removes, nats per dimension: a constant ``>= 0`` (0 as
        in the released code) or ``"auto"``, learned by :class:`~era_policies.sb3.ERACallback`.
    :param batch_momentum: momentum of the running normaliser (``entropy_level="batch"`` only).
    :param action_distribution: ``"truncated_normal"`` (the released code) or ``"tanh_normal"`` (ERA's std on SB3's
        tanh-squashed Gaussian).
    :param critic_layer_norm: LayerNorm critics (:class:`LayerNormContinuousCritic`), as in the released recipe. Off
        by default, so that the policy differs from SB3's ``SACPolicy`` in the actor only; ``agents/sac_era.py``
        exports its LayerNorm critics with ``critic_layer_norm=True``.
    """

    actor_class = ERASACActor
    algorithm_classes = (SAC,)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        target_entropy_per_dim: float = SAC_DEFAULT_TARGET_ENTROPY_PER_DIM,
        log_std_min: float = -8.0,
        log_std_max: float = 0.0,
        entropy_level: EntropyLevel = "state",
        delta: float | Literal["auto"] = 0.0,
        batch_momentum: float = 0.01,
        action_distribution: ActionDistribution = "truncated_normal",
        critic_layer_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            *args,
            target_entropy_per_dim=target_entropy_per_dim,
            log_std_min=log_std_min,
            log_std_max=log_std_max,
            entropy_level=entropy_level,
            delta=delta,
            batch_momentum=batch_momentum,
            action_distribution=action_distribution,
            critic_layer_norm=critic_layer_norm,
            **kwargs,
        )


class ERAActorCriticPolicy(_ERAPolicyMixin, ActorCriticPolicy):
    """ERA policy for :class:`stable_baselines3.PPO`, ``A2C`` and sb3-contrib's ``TRPO``.

    PPO's state-independent ``log_std`` parameter is replaced by a state-dependent std-logit head followed by the ERA
    activation; actions come from the truncated normal on ``[-1, 1]`` and are rescaled to the Box bounds. The
    algorithms' losses are unchanged. Other arguments are ``ActorCriticPolicy``'s (``use_sde``, ``squash_output``,
    ``log_std_init`` do not apply).

    :param target_entropy_per_dim: the entropy floor ``H0 / D`` in nats per action dimension (-0.3, the value a
        secondary source gives for PPO).
    :param log_std_min: lower clamp of the activated log standard deviation.
    :param log_std_max: upper bound of the activated log standard deviation.
    :param entropy_level: ``"state"``: every state keeps the floor; ``"batch"``: the batch mean does (rollouts use a
        running normaliser, so PPO's first ratio is not exactly 1).
    :param delta: compensation for the entropy that bounding removes, nats per dimension: a constant ``>= 0`` or
        ``"auto"``, learned by :class:`~era_policies.sb3.ERACallback`.
    :param batch_momentum: momentum of the running normaliser (``entropy_level="batch"`` only).
    :param closed_form_entropy: whether ``evaluate_actions`` returns the truncated normal's closed-form entropy, which
        SB3's PPO and A2C compute and back-propagate in every minibatch to multiply it by ``ent_coef``. With
        ``ent_coef=0`` (ERA's setting: the activation keeps the entropy) that is work for nothing: ``False`` returns
        ``None`` instead, and SB3 then logs ``train/entropy_loss`` as ``mean(log_prob)``, its estimate for
        distributions without a closed form (with ``ent_coef > 0`` that estimate would also be the entropy term
        it regularises). :class:`~era_policies.sb3.ERACallback` records the closed form as ``era/entropy`` either
        way. ``True`` by default (SB3's behaviour).
    """

    action_dist: TruncatedGaussianDistribution

    algorithm_classes = (OnPolicyAlgorithm,)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        target_entropy_per_dim: float = ACTOR_CRITIC_DEFAULT_TARGET_ENTROPY_PER_DIM,
        log_std_min: float = -8.0,
        log_std_max: float = 0.0,
        entropy_level: EntropyLevel = "state",
        delta: float | Literal["auto"] = 0.0,
        batch_momentum: float = 0.01,
        closed_form_entropy: bool = True,
        **kwargs: Any,
    ) -> None:
        era_options = ERAOptions(target_entropy_per_dim, log_std_min, log_std_max, entropy_level, delta, batch_momentum)
        self._set_era_options(observation_space, action_space, kwargs, era_options)
        if not isinstance(closed_form_entropy, bool):
            raise ValueError(f"closed_form_entropy must be True or False, got {closed_form_entropy!r}.")
        self.closed_form_entropy = closed_form_entropy
        kwargs.pop("squash_output", None)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)
        # SB3 then rescales the [-1, 1] actions to the Box bounds instead of clipping them.
        self._squash_output = True

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        action_dim = get_action_dim(self.action_space)
        self.action_dist = TruncatedGaussianDistribution(action_dim, closed_form_entropy=self.closed_form_entropy)
        self.action_net, self.std_logits_net = self.action_dist.proba_distribution_net(self.mlp_extractor.latent_dim_pi)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        self.era_std = self.era_options.head(action_dim)
        ERAStd.accept_legacy_state_dicts(self)
        if self.ortho_init:
            # SB3's gains; the std-logit head starts small like the mean head, i.e. near-uniform softmax weights.
            module_gains = {
                self.mlp_extractor: np.sqrt(2),
                self.action_net: 0.01,
                self.std_logits_net: 0.01,
                self.value_net: 1,
            }
            if self.share_features_extractor:
                module_gains[self.features_extractor] = np.sqrt(2)
            else:
                module_gains[self.pi_features_extractor] = np.sqrt(2)
                module_gains[self.vf_features_extractor] = np.sqrt(2)
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            parameters_without_delta(self), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            **asdict(self.era_options),
            "closed_form_entropy": self.closed_form_entropy,
        }

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> TruncatedGaussianDistribution:
        log_std = self.era_std(self.std_logits_net(latent_pi))
        return self.action_dist.proba_distribution(self.action_net(latent_pi), log_std)

    def era_entropy(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        features = super().extract_features(obs, self.pi_features_extractor)
        latent_pi = self.mlp_extractor.forward_actor(features)
        log_std = self.era_std(self.std_logits_net(latent_pi))
        return self.action_dist.proba_distribution(self.action_net(latent_pi), log_std).bounded_entropy(), log_std
