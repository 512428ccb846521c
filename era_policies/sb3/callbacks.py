"""``ERACallback``: learns ERA's ``delta="auto"`` during SB3's ``learn()`` and logs ``era/*``."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import PyTorchObs

from era_policies.activations import gaussian_entropy
from era_policies.sb3.policies import _ERAPolicyMixin, warn_in_user_code

__all__ = ["ERACallback"]


class ERACallback(BaseCallback):
    """Learns an ERA policy's ``delta="auto"`` from training data and records ERA's curves to the model's logger.

    Pass it to ``learn()``: ``model.learn(100_000, callback=ERACallback())``. It works between rollouts, not inside
    SB3's ``train()``, so SB3's losses and optimisers stay untouched (``delta`` is in none of them). At the end of
    every rollout, before SB3's ``train()`` of that rollout, it evaluates the policy as it acts on the data
    ``train()`` is about to use and takes as many Adam steps on ``delta`` as SB3 takes on the policy:

    * SAC, TQC, CrossQ (off-policy), once learning has started: ``gradient_steps`` steps, each on a replay batch of
      ``batch_size`` (every ``train_freq`` steps).
    * PPO: ``n_epochs`` passes over the rollout buffer in minibatches of ``batch_size``.
    * A2C, TRPO (one policy update per rollout): one step on the whole rollout.

    Each step is :meth:`EntropyDelta.update <era_policies.EntropyDelta.update>`: ``delta`` grows while the bounded
    policy's entropy is below the floor ``H0`` and shrinks (to 0) above it. The optimiser's moments live in this
    callback and are not saved with the model (``delta``'s value is).

    Recorded once per rollout (averaged over SB3's logging window; SB3 writes them every ``log_interval`` episodes
    for off-policy algorithms, default 4): ``era/entropy`` (realised entropy of the bounded policy),
    ``era/gaussian_entropy`` (entropy of the activated Gaussian: the floor ERA guarantees, ``D * (target + delta)``),
    ``era/target_entropy`` (``H0``), ``era/delta`` (nats per dimension) and ``train/std`` (mean activated std).

    It also warns (at the caller's line) when the algorithm adds an entropy bonus (``ent_coef="auto"`` or ``> 0``):
    ERA replaces it.

    :param delta_lr: Adam learning rate of ``delta`` (3e-4, like SAC's temperature).
    :param verbose: SB3's verbosity level.
    """

    def __init__(self, delta_lr: float = 3e-4, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not delta_lr > 0:
            raise ValueError(f"delta_lr must be > 0, got {delta_lr!r}.")
        self.delta_lr = delta_lr
        self.delta_optimizer: torch.optim.Optimizer | None = None

    @property
    def _policy(self) -> _ERAPolicyMixin:
        return self.model.policy  # type: ignore[return-value]

    def _init_callback(self) -> None:
        policy = self.model.policy
        if not isinstance(policy, _ERAPolicyMixin):
            raise ValueError(
                f"ERACallback needs an ERA policy (era_policies.sb3), got {type(policy).__name__}; remove the callback "
                "or use an ERA policy."
            )
        ent_coef = getattr(self.model, "ent_coef", None)
        if ent_coef is not None and (isinstance(ent_coef, str) or float(ent_coef) > 0.0):
            warn_in_user_code(
                f"{type(self.model).__name__} was given ent_coef={ent_coef!r} with an ERA policy. ERA already keeps "
                "the policy's entropy above its target through the activation, so the losses should carry no entropy "
                "term; an entropy bonus on top regularises twice and changes the method. Pass ent_coef=0.0."
            )
        era_delta = policy.era_std.era_delta
        delta = era_delta.delta
        if era_delta.learnable:
            policy.delta_learned_by_callback = True
            # A second learn() with the same callback and model keeps the Adam moments.
            if self.delta_optimizer is None or self.delta_optimizer.param_groups[0]["params"][0] is not delta:
                self.delta_optimizer = torch.optim.Adam([delta], lr=self.delta_lr)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._policy.delta_learned_by_callback = False

    def _training_observations(self) -> Iterator[PyTorchObs]:
        """The observation batches SB3's ``train()`` is about to learn from, one per policy update it makes."""
        model = self.model
        if isinstance(model, OffPolicyAlgorithm):
            if model.num_timesteps <= model.learning_starts:
                return
            steps = model.gradient_steps
            if steps < 0:  # SB3: as many gradient steps as environment steps in the rollout
                steps = self.locals["num_collected_steps"] * model.env.num_envs  # type: ignore[union-attr]
            for _ in range(steps):
                yield model.replay_buffer.sample(model.batch_size, env=model._vec_normalize_env).observations  # type: ignore[union-attr]
            return
        rollout_buffer = model.rollout_buffer  # type: ignore[attr-defined]
        epochs, batch_size = (model.n_epochs, model.batch_size) if isinstance(model, PPO) else (1, None)
        for _ in range(epochs):
            for rollout_data in rollout_buffer.get(batch_size):
                yield rollout_data.observations

    def _on_rollout_end(self) -> None:
        policy = self._policy
        era_delta = policy.era_std.era_delta
        stats = []
        for obs in self._training_observations():
            # The policy as it acts (SB3 keeps it in eval mode while collecting): BatchRenorm / batch-level ERA use
            # their running statistics and are not updated here.
            with torch.no_grad():
                entropy, log_std = policy.era_entropy(obs)
            if self.delta_optimizer is not None:
                era_delta.update(entropy, self.delta_optimizer)
            stats.append(torch.stack([entropy.mean(), gaussian_entropy(log_std).mean(), log_std.exp().mean()]))
        if not stats:
            return
        # One host read per rollout, for the logger.
        means = torch.cat([torch.stack(stats).mean(0), era_delta.delta.detach().reshape(1)])
        entropy, gaussian, std, delta = means.tolist()
        self.logger.record_mean("era/entropy", entropy)
        self.logger.record_mean("era/gaussian_entropy", gaussian)
        self.logger.record_mean("train/std", std)
        self.logger.record("era/target_entropy", era_delta.target_entropy)
        self.logger.record("era/delta", delta)
