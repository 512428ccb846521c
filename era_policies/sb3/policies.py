"""ERA policies for Stable-Baselines3 and sb3-contrib.

Usage is SB3's, with ERA's options as policy kwargs::

    SAC(ERASACPolicy, env, ent_coef=0.0, policy_kwargs=dict(target_entropy_per_dim=-0.5))
    PPO(ERAActorCriticPolicy, env, policy_kwargs=dict(target_entropy_per_dim=-0.3))

ERA options (all policies):

* ``target_entropy_per_dim``: the entropy floor ``H0 / D`` in nats (default -0.5 for the SAC family, the released
  learner's default; -0.3 for actor-critic policies, reference notes §7).
* ``log_std_min`` / ``log_std_max``: range of the activated log standard deviation (default ``[-8, 0]``).
* ``entropy_level``: ``"state"`` (every state keeps the floor) or ``"batch"`` (the batch mean does).
* ``delta``: compensation for the entropy removed by bounding the Gaussian: a constant ``>= 0`` (nats per
  dimension, default 0 as in the released code) or ``"auto"`` (learned from every training batch inside SB3's own
  ``train()``, no callback needed).
* ``delta_lr``: Adam learning rate of the learned delta (default 3e-4, like SAC's temperature).
* ``batch_momentum``: momentum of the running normaliser used to act with ``entropy_level="batch"``.
* ``action_distribution`` (SAC family only): ``"truncated_normal"`` (default, the released code) or
  ``"tanh_normal"`` (ERA std on SB3's tanh-squashed Gaussian, the documented alternative).

While an algorithm trains the policy, the policy records to that algorithm's logger (TensorBoard included):
``era/entropy`` (realised entropy of the bounded policy), ``era/target_entropy``, ``era/delta`` and ``train/std``
(the mean activated standard deviation, replacing PPO's report of an unused parameter).
"""

from __future__ import annotations

import inspect
import math
import warnings
import weakref
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import Distribution, SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from era_policies.activations import ERAStd
from era_policies.sb3.distributions import TruncatedGaussianDistribution
from era_policies.spaces import check_continuous_action_space

__all__ = [
    "ERAActorCriticPolicy",
    "ERAConfig",
    "ERASACPolicy",
    "LayerNormContinuousCritic",
    "SACLayerNormPolicy",
]

SAC_DEFAULT_TARGET_ENTROPY_PER_DIM = -0.5
ACTOR_CRITIC_DEFAULT_TARGET_ENTROPY_PER_DIM = -0.3
BOUNDED_MAX_ENTROPY_PER_DIM = math.log(2.0)  # the uniform distribution on [-1, 1]


@dataclass(frozen=True)
class ERAConfig:
    """ERA options of a policy; ``asdict`` gives back the policy kwargs (used when saving)."""

    target_entropy_per_dim: float
    log_std_min: float = -8.0
    log_std_max: float = 0.0
    entropy_level: Literal["state", "batch"] = "state"
    delta: float | Literal["auto"] = 0.0
    delta_lr: float = 3e-4
    batch_momentum: float = 0.01
    action_distribution: Literal["truncated_normal", "tanh_normal"] = "truncated_normal"

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any], default_target: float) -> ERAConfig:
        """Remove the ERA options from a policy's kwargs and validate them."""
        names = [name for name in cls.__dataclass_fields__ if name in kwargs]
        config = cls(**{"target_entropy_per_dim": default_target, **{name: kwargs.pop(name) for name in names}})
        if config.action_distribution not in ("truncated_normal", "tanh_normal"):
            raise ValueError(
                f"action_distribution must be 'truncated_normal' or 'tanh_normal', got {config.action_distribution!r}."
            )
        return config

    def make_std_head(self, action_dim: int) -> ERAStd:
        """The :class:`~era_policies.ERAStd` these options describe (raises ``ValueError`` if infeasible)."""
        return ERAStd(
            action_dim,
            self.target_entropy_per_dim,
            log_std_min=self.log_std_min,
            log_std_max=self.log_std_max,
            level=self.entropy_level,
            delta=self.delta,
            batch_momentum=self.batch_momentum,
        )


def _reject_sde(use_sde: bool) -> None:
    if use_sde:
        raise ValueError(
            "use_sde=True is not supported by ERA policies: ERA sets the standard deviation through its activation, "
            "which gSDE's exploration matrix would replace. Use use_sde=False."
        )


def _find_owning_algorithm() -> BaseAlgorithm | None:
    """The algorithm whose ``_setup_model`` is building this policy, if any.

    SB3 constructs a policy inside ``BaseAlgorithm._setup_model`` (also on ``Algo.load``) and gives it no handle on the
    algorithm; the policy needs one to warn about an entropy bonus and to write to the algorithm's logger.
    """
    frame = inspect.currentframe()
    for _ in range(16):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, BaseAlgorithm):
            return candidate
    return None


def _warn_if_entropy_bonus(algorithm: BaseAlgorithm | None) -> None:
    ent_coef = getattr(algorithm, "ent_coef", None)
    if ent_coef is None:
        return
    adds_bonus = isinstance(ent_coef, str) or float(ent_coef) > 0.0
    if adds_bonus:
        warnings.warn(
            f"{type(algorithm).__name__} was given ent_coef={ent_coef!r} with an ERA policy. ERA already keeps the "
            "policy's entropy above its target through the activation, so the losses should carry no entropy term; "
            "an entropy bonus on top regularises twice and changes the method. Pass ent_coef=0.0.",
            UserWarning,
            stacklevel=4,
        )


class _LoggerLink:
    """Weak link from a policy to the logger of the algorithm training it (records nothing without one)."""

    def __init__(self, algorithm: BaseAlgorithm | None) -> None:
        self._algorithm = weakref.ref(algorithm) if algorithm is not None else None

    def __call__(self, stats: dict[str, float]) -> None:
        algorithm = self._algorithm() if self._algorithm is not None else None
        logger = getattr(algorithm, "_logger", None)
        if logger is None:
            return
        for key, value in stats.items():
            logger.record_mean(key, value)

    def __reduce__(self) -> tuple[type, tuple[None]]:
        return (_LoggerLink, (None,))  # a pickled/copied policy is detached from the algorithm


class _ERATrainingBatchHook(nn.Module):
    """What an ERA policy does with each training batch SB3 feeds it: learn ``delta`` (if ``"auto"``) and log.

    Holds the :class:`~era_policies.ERAStd` head (and so ``delta``), the optimiser of ``delta`` and the logger link.
    """

    def __init__(self, era_std: ERAStd, config: ERAConfig, record: _LoggerLink) -> None:
        super().__init__()
        self.era_std = era_std
        self.record = record
        delta = era_std.era_delta
        self.delta_optimizer = torch.optim.Adam([delta.delta], lr=config.delta_lr) if delta.learnable else None

    def forward(self, distribution: Distribution, log_prob: torch.Tensor) -> None:
        """:param distribution: the SB3 distribution of the batch. :param log_prob: ``(B,)`` log-probs of samples."""
        entropy = distribution.entropy()
        # A tanh-squashed Gaussian has no closed-form entropy: -log p of the batch's own samples is unbiased.
        entropy = (-log_prob if entropy is None else entropy).detach()
        era_delta = self.era_std.era_delta
        if self.delta_optimizer is not None:
            loss = era_delta.loss(entropy)
            self.delta_optimizer.zero_grad()
            loss.backward()
            self.delta_optimizer.step()
            era_delta.clamp_()
        std = distribution.distribution.scale.detach()
        mean_entropy, mean_std, delta = torch.stack([entropy.mean(), std.mean(), era_delta.delta.detach()]).tolist()
        self.record(
            {
                "era/entropy": mean_entropy,
                "era/target_entropy": era_delta.target_entropy,
                "era/delta": delta,
                "train/std": mean_std,
            }
        )


# ------------------------------------------------------------------------------------------ SAC-family actors
class _ERAActorMixin:
    """Turns an SB3 SAC-family actor (``latent_pi``, ``mu`` and ``log_std`` heads) into an ERA actor.

    The ``log_std`` head's output becomes the std logits of ERA's activation; the action distribution becomes the
    truncated normal (or SB3's tanh-Gaussian). :meth:`action_log_prob`, SB3's training entry point, also feeds each
    training batch to the delta update and the logger.
    """

    action_space: spaces.Box
    training: bool

    def __init__(self, *args: Any, era_config: ERAConfig, **kwargs: Any) -> None:
        _reject_sde(kwargs.get("use_sde", False))
        super().__init__(*args, **kwargs)
        action_dim = get_action_dim(self.action_space)
        self.era_config = era_config
        if era_config.action_distribution == "truncated_normal":
            self.action_dist = TruncatedGaussianDistribution(action_dim)
        else:
            self.action_dist = SquashedDiagGaussianDistribution(action_dim)
        self.era_hook = _ERATrainingBatchHook(era_config.make_std_head(action_dim), era_config, _LoggerLink(None))

    @property
    def era_std(self) -> ERAStd:
        """The ERA standard-deviation head (std logits -> log std), holding ``delta``."""
        return self.era_hook.era_std

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data["era_config"] = self.era_config
        return data

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """:return: mean ``(B, D)``, ERA-activated log std ``(B, D)`` and no extra kwargs."""
        features = self.extract_features(obs, self.features_extractor)  # type: ignore[attr-defined]
        latent_pi = self.latent_pi(features)  # type: ignore[attr-defined]
        return self.mu(latent_pi), self.era_std(self.log_std(latent_pi)), {}  # type: ignore[attr-defined]

    def action_log_prob(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        mean_actions, log_std, _ = self.get_action_dist_params(obs)
        actions, log_prob = self.action_dist.log_prob_from_params(mean_actions, log_std)
        # SB3's train() calls this with gradients on for the actor loss (once per gradient step); rollouts and
        # target computations run in eval mode or under no_grad.
        if self.training and torch.is_grad_enabled():
            self.era_hook(self.action_dist, log_prob)
        return actions, log_prob


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
    only the actor's distribution differs.

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
    """Shared by every ERA policy: pops and stores the ERA options, warns about an entropy bonus, reaches the logger.

    Subclasses set ``default_target_entropy_per_dim``.
    """

    default_target_entropy_per_dim: ClassVar[float]
    era_config: ERAConfig

    def _setup_era(self, action_space: spaces.Space, kwargs: dict[str, Any]) -> None:
        check_continuous_action_space(action_space)
        _reject_sde(kwargs.get("use_sde", False))
        # Set before the parent constructor runs: it calls _build/make_actor, which need the options.
        self.era_config = ERAConfig.pop_from(kwargs, self.default_target_entropy_per_dim)
        self.era_config.make_std_head(get_action_dim(action_space))  # fail early on an infeasible target
        target = self.era_config.target_entropy_per_dim
        if target > BOUNDED_MAX_ENTROPY_PER_DIM:
            warnings.warn(
                f"target_entropy_per_dim={target} exceeds log(2) = {BOUNDED_MAX_ENTROPY_PER_DIM:.4f}, "
                "the largest entropy any distribution on [-1, 1] can have: the Gaussian keeps the target, the bounded "
                "policy cannot (and delta='auto' would climb to its cap).",
                UserWarning,
                stacklevel=3,
            )
        algorithm = _find_owning_algorithm()
        _warn_if_entropy_bonus(algorithm)
        self._era_logger_link = _LoggerLink(algorithm)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(asdict(self.era_config))
        return data


class _ERAOffPolicyMixin(_ERAPolicyMixin):
    """ERA for SAC-family policies: builds the ERA actor class given by ``actor_class``."""

    actor_class: ClassVar[type]
    default_target_entropy_per_dim = SAC_DEFAULT_TARGET_ENTROPY_PER_DIM
    actor_kwargs: dict[str, Any]
    device: torch.device

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any):
        self._setup_era(action_space, kwargs)
        super().__init__(observation_space, action_space, *args, **kwargs)  # type: ignore[call-arg]

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Any:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)  # type: ignore[attr-defined]
        actor = self.actor_class(**actor_kwargs, era_config=self.era_config).to(self.device)
        actor.era_hook.record = self._era_logger_link
        return actor


class ERASACPolicy(_ERAOffPolicyMixin, SACLayerNormPolicy):
    """ERA policy for :class:`stable_baselines3.SAC` (use with ``ent_coef=0.0``).

    Accepts ``SACPolicy``'s arguments, the ERA options of this module and ``critic_layer_norm`` (default ``False``:
    SB3's critics; the released recipe uses ``True``).
    """

    actor_class = ERASACActor

    def __init__(self, *args: Any, critic_layer_norm: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, critic_layer_norm=critic_layer_norm, **kwargs)


class ERAActorCriticPolicy(_ERAPolicyMixin, ActorCriticPolicy):
    """ERA policy for :class:`stable_baselines3.PPO` and ``A2C``.

    PPO's state-independent ``log_std`` parameter is replaced by a state-dependent std-logit head followed by the ERA
    activation; actions come from the truncated normal on ``[-1, 1]`` and are rescaled to the Box bounds.
    The clipped surrogate, value loss and GAE are SB3's, unchanged. Accepts ``ActorCriticPolicy``'s arguments
    (``use_sde``/``squash_output``/``log_std_init`` do not apply) and the ERA options of this module
    (default ``target_entropy_per_dim=-0.3``).
    """

    default_target_entropy_per_dim = ACTOR_CRITIC_DEFAULT_TARGET_ENTROPY_PER_DIM
    action_dist: TruncatedGaussianDistribution

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any):
        self._setup_era(action_space, kwargs)
        if self.era_config.action_distribution != "truncated_normal":
            raise ValueError("ERAActorCriticPolicy supports action_distribution='truncated_normal' only.")
        kwargs.pop("squash_output", None)
        super().__init__(observation_space, action_space, *args, **kwargs)
        # SB3 then rescales the [-1, 1] actions to the Box bounds instead of clipping them.
        self._squash_output = True

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        action_dim = get_action_dim(self.action_space)
        self.action_dist = TruncatedGaussianDistribution(action_dim)
        self.action_net, self.std_logits_net = self.action_dist.proba_distribution_net(self.mlp_extractor.latent_dim_pi)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        self.era_hook = _ERATrainingBatchHook(
            self.era_config.make_std_head(action_dim), self.era_config, self._era_logger_link
        )
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
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    @property
    def era_std(self) -> ERAStd:
        """The ERA standard-deviation head (std logits -> log std), holding ``delta``."""
        return self.era_hook.era_std

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> TruncatedGaussianDistribution:
        log_std = self.era_std(self.std_logits_net(latent_pi))
        return self.action_dist.proba_distribution(self.action_net(latent_pi), log_std)

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        values, log_prob, entropy = super().evaluate_actions(obs, actions)
        # PPO/A2C's train() evaluates each minibatch here with gradients on; rollouts use forward() under no_grad.
        if self.training and torch.is_grad_enabled():
            self.era_hook(self.action_dist, log_prob)
        return values, log_prob, entropy
