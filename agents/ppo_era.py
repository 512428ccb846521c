"""PPO-ERA: PPO whose state-independent log-std is replaced by ERA's state-dependent, entropy-floored std.

Single-file, CleanRL-style (``ppo_continuous_action.py``). Sections marked ``ALGORITHM`` hold the method (network,
loss, the loop); sections marked ``plumbing`` hold checks, export and the run bookkeeping (run directory, logs,
checkpoints, evaluation, from ``era_utils``), which a reader may skip. docs/era-method.md §7:

* pi(.|s)  truncated normal on [-1, 1]^D with loc = tanh(mean(s)) and log std = ERA head(std_logits(s)) (the
           :class:`~era_policies.ERAStd` head), so every state keeps Gaussian entropy >= D * (target_entropy_per_dim +
           delta); actions are rescaled to the Box bounds
* ratio    exp(log pi_new(a|s) - log pi_old(a|s)), the ERA distribution's log-probs for both policies
* loss     clipped surrogate + vf_coef * (clipped) value loss; the entropy bonus is off by default (--ent-coef 0)

``--no-era`` runs plain PPO (CleanRL's): a diagonal Gaussian with a state-independent log-std parameter, actions
clipped to the bounds. Every line where the two differ is an ``if ...era:`` marked ``# ERA | --no-era`` (the std
head, the distribution, the action mapping, delta's step, the export and the entropy logs); the loop is shared. Both
bootstrap through time-limit truncations. Entropies that only the logs need are computed once per iteration.

The network's attribute names are those of SB3's ``ActorCriticPolicy`` (``mlp_extractor.policy_net`` /
``value_net``, ``action_net``, ``value_net``; ERA: ``std_logits_net``, ``era_std``; ``--no-era``: ``log_std``), so
:func:`sb3_policy` loads the weights into ``ERAActorCriticPolicy`` / ``ActorCriticPolicy`` by ``load_state_dict``;
evaluation and ``--save-model`` go through that SB3 policy (``Policy.load(path).predict(obs)``). ``charts/SPS``
counts from the end of the first iteration, so that warm-up and ``--compile``'s compilation do not distort it.

    python agents/ppo_era.py --env-id Hopper-v5
    python agents/ppo_era.py --env-id Hopper-v5 --no-era             # the PPO baseline
    python agents/ppo_era.py --resume runs/<run_name>                # continue an interrupted run to its budget
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn, optim
from torch.distributions import Distribution, Normal

from era_utils.dependencies import AGENTS_INSTALL, require

tqdm = require("tqdm", AGENTS_INSTALL, "agents/ppo_era.py (its progress bar)").tqdm
require("stable_baselines3", AGENTS_INSTALL, "agents/ppo_era.py (its SB3 policy and statistics)")

from stable_baselines3.common.policies import ActorCriticPolicy  # noqa: E402

from era_policies import (  # noqa: E402
    HALF_LOG_2PI,
    ERAStd,
    check_log_std_range,
    check_target_entropy_per_dim,
    era_action_distribution,
    gaussian_entropy,
)
from era_policies.sb3 import ERAActorCriticPolicy  # noqa: E402
from era_utils.envs import episode_returns, make_vector_env  # noqa: E402
from era_utils.experiment import (  # noqa: E402
    ExperimentArgs,
    ObservationNormalizer,
    Run,
    RunningMeanStd,
    StopOnSignal,
    capture_rng_state,
    check_at_least,
    evaluate,
    parse_args,
    prepare_run,
    restore_rng_state,
    save_policy,
    seed_everything,
    select_device,
)


# ======================================================= plumbing: options (tyro reads each docstring as --help)
@dataclass
class Args(ExperimentArgs):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    eval_every: int = 100_000
    """deterministic evaluation every this many steps (0: only at the end)"""

    # PPO
    learning_rate: float = 3e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over --total-timesteps"""
    num_steps: int = 2048
    """steps per environment per rollout"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalised advantage estimation"""
    num_minibatches: int = 32
    """minibatches per epoch; must divide the batch --num-envs * --num-steps"""
    update_epochs: int = 10
    """epochs over each rollout"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_coef: float = 0.2
    """surrogate clipping coefficient"""
    clip_vloss: bool = True
    """clip the value loss like the surrogate"""
    ent_coef: float = 0.0
    """entropy bonus coefficient; 0 (the default) leaves the entropy term out of the loss, as ERA's design asks (a
    secondary source says the paper's PPO-ERA kept 0.01: --ent-coef 0.01 runs that ablation)"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """gradient clipping norm"""
    target_kl: float | None = None
    """stop the epochs of an update early above this approximate KL"""
    normalize_observations: bool = True
    """normalise observations with running statistics (saved with the checkpoint)"""
    normalize_rewards: bool = True
    """scale rewards by the running std of the discounted return"""
    hidden_dim: int = 64
    """width of the two tanh hidden layers of the policy and value networks"""
    compile: bool = False
    """torch.compile the minibatch loss (forward and backward) and the acting step; the first iteration pays the
    compilation"""

    # ERA (docs/era-method.md §2-§4, §7)
    era: bool = True
    """ERA policy; --no-era runs plain PPO (state-independent log-std, actions clipped) on the same loop"""
    target_entropy_per_dim: float = -0.3
    """entropy floor per action dimension H0/D, in nats (docs/era-method.md §7)"""
    log_std_min: float = -8.0
    """lower clamp of the ERA log standard deviation"""
    log_std_max: float = 0.0
    """upper bound of the ERA log standard deviation"""
    entropy_level: Literal["state", "batch"] = "state"
    """enforce the floor for every state, or for the minibatch mean (batch-level ERA, docs/era-method.md §6)"""
    delta: float | Literal["auto"] = 0.0
    """entropy compensation for the truncation, nats per dimension, or `auto` to learn it (docs/era-method.md §4)"""
    delta_lr: float = 3e-4
    """Adam learning rate of delta (with --delta auto)"""
    batch_momentum: float = 0.01
    """momentum of the running normaliser that batch-level ERA acts with"""
    std_head_init_gain: float = 0.01
    """orthogonal-init gain of the std-logit head (0.01: near-equal stds across dimensions at the start, like the mean
    head; the released SAC-ERA code uses 1.0)"""
    state_dependent_std: bool = True
    """ERA on a state-dependent std-logit head (the paper's PPO-ERA); --no-state-dependent-std ablates it: the head's
    weights stay 0, so only its bias (state-independent logits, like PPO's log-std parameter) is learned"""

    def check(self) -> None:
        """Reject settings that cannot work, naming the flag (the shared ones: :meth:`ExperimentArgs.check`)."""
        super().check()
        for flag, value in (
            ("--num-steps", self.num_steps),
            ("--num-minibatches", self.num_minibatches),
            ("--update-epochs", self.update_epochs),
            ("--hidden-dim", self.hidden_dim),
        ):
            check_at_least(flag, value, 1)
        batch_size = self.num_envs * self.num_steps
        if self.num_minibatches > batch_size or batch_size % self.num_minibatches:
            raise ValueError(
                f"--num-minibatches must divide the batch of --num-envs * --num-steps = {batch_size} steps, "
                f"got {self.num_minibatches}"
            )
        for flag, value, ok, expected in (
            ("--learning-rate", self.learning_rate, 0 < self.learning_rate < math.inf, "> 0"),
            ("--gamma", self.gamma, 0 <= self.gamma <= 1, "in [0, 1]"),
            ("--gae-lambda", self.gae_lambda, 0 <= self.gae_lambda <= 1, "in [0, 1]"),
            ("--clip-coef", self.clip_coef, 0 < self.clip_coef < math.inf, "> 0"),
            ("--vf-coef", self.vf_coef, 0 <= self.vf_coef < math.inf, ">= 0"),
            ("--ent-coef", self.ent_coef, math.isfinite(self.ent_coef), "finite"),
            ("--max-grad-norm", self.max_grad_norm, 0 < self.max_grad_norm < math.inf, "> 0"),
            ("--target-kl", self.target_kl, self.target_kl is None or self.target_kl > 0, "> 0"),
            ("--delta-lr", self.delta_lr, 0 < self.delta_lr < math.inf, "> 0"),
            ("--batch-momentum", self.batch_momentum, 0 < self.batch_momentum <= 1, "in (0, 1]"),
            ("--std-head-init-gain", self.std_head_init_gain, 0 <= self.std_head_init_gain < math.inf, ">= 0"),
            ("--log-std-min", self.log_std_min, -math.inf < self.log_std_min < self.log_std_max, "< --log-std-max"),
            ("--delta", self.delta, self.delta == "auto" or 0 <= self.delta < math.inf, "'auto' or >= 0"),
        ):
            if not ok:
                raise ValueError(f"{flag} must be {expected}, got {value!r}")
        if self.era:  # ERA | --no-era: ERA's own options
            try:
                check_log_std_range(self.log_std_min, self.log_std_max)
                check_target_entropy_per_dim(self.target_entropy_per_dim, self.log_std_max)
            except ValueError as err:
                raise ValueError(f"--target-entropy-per-dim / --log-std-min / --log-std-max: {err}") from err


# ============================================================================================= ALGORITHM: network
def layer_init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights with ``gain``, zero biases (CleanRL's and SB3's PPO initialisation)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def tanh_mlp(in_dim: int, hidden_dim: int) -> nn.Sequential:
    """Two tanh hidden layers, gain sqrt(2): SB3's ``MlpExtractor`` branch (indices 0 and 2 are the Linears)."""
    return nn.Sequential(
        layer_init(nn.Linear(in_dim, hidden_dim), math.sqrt(2)),
        nn.Tanh(),
        layer_init(nn.Linear(hidden_dim, hidden_dim), math.sqrt(2)),
        nn.Tanh(),
    )


class Agent(nn.Module):
    """Separate 2x``hidden_dim`` tanh actor and critic, named like SB3's ``ActorCriticPolicy`` (see module docstring).

    :param obs_dim: observation size.
    :param action_space_low: lower Box bounds, ``(D,)``.
    :param action_space_high: upper Box bounds, ``(D,)``.
    :param args: the ERA and network options.
    """

    def __init__(self, obs_dim: int, action_space_low: np.ndarray, action_space_high: np.ndarray, args: Args) -> None:
        super().__init__()
        action_dim = len(action_space_low)
        self.mlp_extractor = nn.ModuleDict(
            {"policy_net": tanh_mlp(obs_dim, args.hidden_dim), "value_net": tanh_mlp(obs_dim, args.hidden_dim)}
        )
        self.action_net = layer_init(nn.Linear(args.hidden_dim, action_dim), 0.01)  # the mean: near 0 at the start
        self.value_net = layer_init(nn.Linear(args.hidden_dim, 1), 1.0)
        low = torch.as_tensor(action_space_low, dtype=torch.float32)
        high = torch.as_tensor(action_space_high, dtype=torch.float32)
        self.register_buffer("action_low", low, persistent=False)
        self.register_buffer("action_high", high, persistent=False)
        # ERA's [-1, 1] -> [low, high] as one multiply-add per step.
        self.register_buffer("action_center", 0.5 * (low + high), persistent=False)
        self.register_buffer("action_half_range", 0.5 * (high - low), persistent=False)
        self.era = args.era
        if self.era:  # ERA | --no-era: a std-logit head and the ERA head, or PPO's state-independent log std
            self.std_logits_net = layer_init(nn.Linear(args.hidden_dim, action_dim), args.std_head_init_gain)
            if not args.state_dependent_std:
                nn.init.zeros_(self.std_logits_net.weight)
                self.std_logits_net.weight.requires_grad_(False)
            options = dict(level=args.entropy_level, delta=args.delta, batch_momentum=args.batch_momentum)
            self.era_std = ERAStd(
                action_dim, args.target_entropy_per_dim, args.log_std_min, args.log_std_max, **options
            )
            ERAStd.accept_legacy_state_dicts(self)  # checkpoints written before the head existed
        else:
            self.log_std = nn.Parameter(torch.zeros(action_dim))  # CleanRL's and SB3's log_std_init = 0

    def policy_outputs(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """The policy's mean and log std at ``obs``, ``(B, D)``; the log std's Gaussian entropy is what ERA floors."""
        latent_pi = self.mlp_extractor.policy_net(obs)
        mean = self.action_net(latent_pi)
        if self.era:  # ERA | --no-era
            # ERA: Gaussian entropy H0' in every state (batch level: the minibatch mean; acting: the running normaliser)
            return mean, self.era_std(self.std_logits_net(latent_pi))
        return mean, self.log_std.expand_as(mean)

    def distribution(self, mean: Tensor, log_std: Tensor) -> Distribution:
        """The action distribution (in the policy's action space) of :meth:`policy_outputs`."""
        if self.era:  # ERA | --no-era
            return era_action_distribution(mean, log_std)  # truncated normal on [-1, 1], loc = tanh(mean)
        # No per-call argument checks (host reads every step): the env's FiniteCheck names a non-finite action.
        return Normal(mean, log_std.exp(), validate_args=False)

    def action_distribution(self, obs: Tensor) -> tuple[Distribution, Tensor, Tensor]:
        """The policy at ``obs``: its action distribution, its mean and its log std ``(B, D)``."""
        mean, log_std = self.policy_outputs(obs)
        return self.distribution(mean, log_std), mean, log_std

    def env_action(self, action: Tensor) -> Tensor:
        """A policy action in the environment's bounds: ERA rescales [-1, 1]; plain PPO clips, as SB3 and CleanRL do."""
        if self.era:  # ERA | --no-era
            return torch.addcmul(self.action_center, self.action_half_range, action)
        return torch.clamp(action, self.action_low, self.action_high)

    def get_value(self, obs: Tensor) -> Tensor:
        """``V(obs)``, shape ``(B,)``."""
        return self.value_net(self.mlp_extractor.value_net(obs)).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A rollout step at ``obs``: a sampled action (in the policy's space), its log-probability and ``V(obs)``."""
        mean, log_std = self.policy_outputs(obs)
        if self.era:  # ERA | --no-era
            distribution = self.distribution(mean, log_std)
            action = distribution.sample()
            log_prob = distribution.log_prob(action)  # from what sampling computed: erf, 2 Z, the standardised action
        else:
            # Normal(mean, std)'s draw and its log-prob, both from one standard-normal draw (the same numbers,
            # tested): no distribution object, and no (action - mean) / std to undo.
            noise = torch.randn_like(mean)
            action = mean + noise * log_std.exp()
            log_prob = -0.5 * noise.square() - log_std - HALF_LOG_2PI
        return action, log_prob.sum(-1), self.get_value(obs)


# ================================================================================================ ALGORITHM: loss
def ppo_loss(
    agent: Agent,
    args: Args,
    obs: Tensor,
    actions: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    returns: Tensor,
    old_values: Tensor,
) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
    """PPO's loss on one minibatch (CleanRL's, with the ERA distribution's log-probs).

    :return: the loss; the policy's entropy per state ``(B,)`` (detached) if the loss (``--ent-coef``) or delta's step
        (``--delta auto``) needs it, else ``None``; detached statistics, with the policy's ``mean`` and ``log_std``
        for :func:`log_values` (read on the host only when logging).
    """
    distribution, mean, log_std = agent.action_distribution(obs)
    newlogprob = distribution.log_prob(actions).sum(-1)
    newvalue = agent.get_value(obs)
    logratio = newlogprob - old_logprobs
    ratio = logratio.exp()

    if args.norm_adv:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef))
    pg_loss = pg_loss.mean()

    if args.clip_vloss:
        v_clipped = old_values + torch.clamp(newvalue - old_values, -args.clip_coef, args.clip_coef)
        v_loss = 0.5 * torch.max((newvalue - returns) ** 2, (v_clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * ((newvalue - returns) ** 2).mean()

    loss = pg_loss + args.vf_coef * v_loss
    entropy = None
    if args.ent_coef != 0 or (args.era and args.delta == "auto"):  # else nothing needs the entropy in an update
        entropy = distribution.entropy().sum(-1)
    if args.ent_coef != 0:
        loss = loss - args.ent_coef * entropy.mean()

    with torch.no_grad():
        stats = {
            "losses/policy_loss": pg_loss.detach(),
            "losses/value_loss": v_loss.detach(),
            "losses/old_approx_kl": (-logratio).mean(),
            "losses/approx_kl": ((ratio - 1) - logratio).mean(),  # http://joschu.net/blog/kl-approx.html
            "losses/clipfrac": ((ratio - 1.0).abs() > args.clip_coef).float().mean(),
            "mean": mean.detach(),
            "log_std": log_std.detach(),
        }
    if entropy is not None:
        stats["entropy"] = entropy = entropy.detach()
    return loss, entropy, stats


@torch.no_grad()
def advantages_and_returns(
    args: Args, rewards: Tensor, values: Tensor, dones: Tensor, next_value: Tensor, next_done: Tensor
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over a rollout ``(num_steps, num_envs)`` (``next_value``, ``next_done``: the
    state after its last step), and the returns ``advantages + values`` that the value loss fits."""
    next_non_terminal = 1.0 - torch.cat([dones[1:], next_done.unsqueeze(0)])
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    td_errors = rewards + args.gamma * next_values * next_non_terminal - values  # every step at once
    decays = args.gamma * args.gae_lambda * next_non_terminal
    # Only the recursion A_t = delta_t + gamma * lambda * (1 - done_t+1) * A_t+1 runs step by step, backwards.
    advantage, backwards = torch.zeros_like(next_value), []
    for td_error, decay in zip(reversed(td_errors.unbind(0)), reversed(decays.unbind(0)), strict=True):
        advantage = td_error + decay * advantage
        backwards.append(advantage)
    advantages = torch.stack(backwards[::-1])
    return advantages, advantages + values


def make_optimizers(agent: Agent, args: Args, device: torch.device) -> tuple[optim.Optimizer, optim.Optimizer | None]:
    """Adam over the agent's trained parameters (CleanRL's eps), and with ``--delta auto`` Adam over delta alone."""
    delta = agent.era_std.era_delta.delta if args.era else None  # ERA | --no-era
    params = [p for p in agent.parameters() if p.requires_grad and p is not delta]
    # Fused: one kernel per step on the CPU as on CUDA (on the CPU a quarter of the per-tensor loop's time).
    optimizer = optim.Adam(params, lr=args.learning_rate, eps=1e-5, fused=True)
    delta_optimizer = optim.Adam([delta], lr=args.delta_lr) if args.era and args.delta == "auto" else None
    return optimizer, delta_optimizer


def make_update(
    agent: Agent,
    args: Args,
    optimizer: optim.Optimizer,
    delta_optimizer: optim.Optimizer | None = None,
    loss_fn: Callable[..., tuple[Tensor, Tensor | None, dict[str, Tensor]]] = ppo_loss,
) -> Callable[..., dict[str, Tensor]]:
    """``update(*minibatch)``: one gradient step on a minibatch (gradients clipped to ``--max-grad-norm`` over the
    optimiser's parameters), then one delta step with ``--delta auto``; no host synchronisation.

    :param loss_fn: :func:`ppo_loss`, or its compiled version (``--compile``).
    """
    params = [param for group in optimizer.param_groups for param in group["params"]]
    for group in optimizer.param_groups:  # checkpoints of the version that compiled the CPU step hold a tensor rate
        group["lr"] = float(group["lr"])

    def update(*minibatch: Tensor) -> dict[str, Tensor]:
        loss, entropy, stats = loss_fn(agent, args, *minibatch)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        optimizer.step()
        if args.era and delta_optimizer is not None:  # ERA | --no-era: delta rises while H < H0 (method §4)
            stats["losses/delta_loss"] = agent.era_std.era_delta.update(entropy, delta_optimizer)
        return stats

    return update


def set_learning_rate(optimizer: optim.Optimizer, lr: float) -> None:
    """``lr`` in every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


@torch.no_grad()
def log_values(agent: Agent, stats: dict[str, Tensor]) -> dict[str, Tensor]:
    """The policy's std and entropies on the minibatch behind ``stats`` (its ``mean``/``log_std`` are popped), for a
    log step: the bounded entropy is computed here unless the update already needed it."""
    mean, log_std, entropy = stats.pop("mean"), stats.pop("log_std"), stats.pop("entropy", None)
    gaussian = gaussian_entropy(log_std)  # ERA: >= the activation target in every state
    if entropy is None:  # ERA | --no-era: the truncated normal's closed form, or the Gaussian's own entropy
        entropy = era_action_distribution(mean, log_std).entropy().sum(-1) if agent.era else gaussian
    return {
        "losses/entropy": entropy.mean(),
        "policy/std": log_std.exp().mean(),
        "gaussian_entropy_min": gaussian.min(),
        "gaussian_entropy_mean": gaussian.mean(),
    }


# ====================================================================================== plumbing: normalisers
class RewardScaler:
    """CleanRL's reward normalisation (gymnasium's ``NormalizeReward``): each reward divided by the running standard
    deviation of the discounted return, which restarts where an episode ends. ``return_rms`` is checkpointed; the
    discounted returns restart with the episodes of a resumed run."""

    def __init__(self, num_envs: int, gamma: float) -> None:
        self.return_rms = RunningMeanStd(shape=())
        self.discounted_return = np.zeros(num_envs)
        self.gamma = gamma

    def __call__(self, reward: np.ndarray, episode_over: np.ndarray) -> np.ndarray:
        self.discounted_return = self.discounted_return * self.gamma + reward
        self.return_rms.update(self.discounted_return)
        self.discounted_return[episode_over] = 0.0
        return reward / np.sqrt(self.return_rms.var + 1e-8)

    def state(self) -> tuple[Any, Any, Any]:
        """``return_rms``'s mean, variance and count (a checkpoint's ``"return_rms"``)."""
        return self.return_rms.mean, self.return_rms.var, self.return_rms.count

    def load_state(self, state: tuple[Any, Any, Any]) -> None:
        self.return_rms.mean, self.return_rms.var, self.return_rms.count = state


def observation_tensor(
    obs_normalizer: ObservationNormalizer | None, raw: np.ndarray, update: bool, device: torch.device
) -> Tensor:
    """Observations as the networks see them: normalised (the normaliser first updated with them if ``update``),
    as a float32 tensor on ``device``."""
    if obs_normalizer is not None:
        if update:
            obs_normalizer.update(raw)
        raw = obs_normalizer(raw)
    return torch.as_tensor(raw, dtype=torch.float32, device=device)


# =============================================================================================== plumbing: logs
def write_logs(
    run: Run,
    agent: Agent,
    stats: dict[str, Tensor],
    clipfracs: list[Tensor],
    batch: tuple[Tensor, ...],
    global_step: int,
) -> None:
    """An iteration's logs: ``stats`` (the last minibatch's, completed here with the epochs' clip fraction, the value
    function's explained variance on ``batch`` and the policy's entropies) to TensorBoard, and a row of entropy.csv."""
    b_values, b_returns = batch[5], batch[4]
    var_y = b_returns.var(unbiased=False)
    stats["losses/clipfrac"] = torch.stack(clipfracs).mean()
    explained = 1 - (b_returns - b_values).var(unbiased=False) / var_y
    stats["losses/explained_variance"] = torch.where(var_y > 0, explained, torch.nan)
    stats.update(log_values(agent, stats))
    stats["policy/entropy"] = stats["losses/entropy"]
    gaussian_min, gaussian_mean = stats.pop("gaussian_entropy_min"), stats.pop("gaussian_entropy_mean")
    if agent.era:  # ERA | --no-era
        era_delta = agent.era_std.era_delta
        stats["era/target_entropy"] = era_delta.target_entropy
        stats["era/delta"] = era_delta.delta.detach()
        run.entropy(
            global_step,
            target_entropy=era_delta.target_entropy,
            activation_target=era_delta.activation_target(),
            gaussian_entropy_min=gaussian_min,
            gaussian_entropy_mean=gaussian_mean,
            bounded_entropy_mean=stats["losses/entropy"],
            delta=stats["era/delta"],
        )
    else:  # an unbounded Gaussian (clipped in the env): no floor, no bounded entropy of its own
        run.entropy(global_step, None, None, gaussian_min, gaussian_mean, None, None)
    run.scalars(stats, global_step)


# ============================================================================================== plumbing: export
def sb3_policy(args: Args, observation_space, action_space) -> ActorCriticPolicy:
    """The SB3 policy that :class:`Agent`'s weights load into with ``load_state_dict`` (its own optimiser, built by
    SB3, stays unused)."""
    common = dict(
        observation_space=observation_space,
        action_space=action_space,
        lr_schedule=lambda _: args.learning_rate,
        net_arch=dict(pi=[args.hidden_dim] * 2, vf=[args.hidden_dim] * 2),
        activation_fn=nn.Tanh,
        ortho_init=False,  # the weights come from the agent
    )
    if not args.era:  # ERA | --no-era
        return ActorCriticPolicy(**common)
    era_kwargs = dict(
        target_entropy_per_dim=args.target_entropy_per_dim,
        log_std_min=args.log_std_min,
        log_std_max=args.log_std_max,
        entropy_level=args.entropy_level,
        delta=args.delta,
        batch_momentum=args.batch_momentum,
    )
    return ERAActorCriticPolicy(**common, **era_kwargs)


# ================================================================================================= training loop
def main(args: Args) -> None:
    prepared = prepare_run(args)  # every check, once (parse_args' own, if it made args); nothing created yet
    args = prepared.args  # run_name filled in (the env's video folder is named after it); a resume's saved settings
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = math.ceil(args.total_timesteps / batch_size)
    seed_everything(args.seed, args.torch_deterministic)
    device = select_device(args.cuda)

    # ------------------------------------------------------------------------------------------- plumbing: setup
    # Env and networks first, so that a bad env or a network too large fails before any run directory exists.
    envs = make_vector_env(args.env_id, args.num_envs, args.seed, args.capture_video, f"videos/{args.run_name}")
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    try:
        agent = Agent(int(np.prod(obs_space.shape)), action_space.low, action_space.high, args).to(device)
        policy = sb3_policy(args, obs_space, action_space).to(device)  # evaluation and --save-model act through SB3
    except (RuntimeError, MemoryError) as err:  # torch's allocators raise RuntimeError (OutOfMemoryError on CUDA)
        raise SystemExit(f"error: --hidden-dim {args.hidden_dim}: the networks do not fit in memory ({err})") from err
    run, args, checkpoint = prepared.start()
    run_name = run.run_dir.name
    optimizer, delta_optimizer = make_optimizers(agent, args, device)
    # --compile (LeanRL's recipe): the minibatch loss, backward included, and the acting step, each to one graph (Adam's
    # step is a fused kernel already). Fused, the acting step's ERA lines (activation, truncated-normal sample,
    # log-prob) cost less than eager's kernel calls.
    loss_fn = torch.compile(ppo_loss, fullgraph=True) if args.compile else ppo_loss
    act = torch.compile(agent.act, fullgraph=True) if args.compile else agent.act
    # The rollout needs no autograd. Eager, it runs in inference mode, cheaper per operator than no_grad (batch 1 is
    # all call overhead); Dynamo cannot trace inference mode around ERA's buffers, and compiled code has no
    # per-operator cost to save.
    rollout_mode = torch.no_grad if args.compile else torch.inference_mode

    obs_normalizer = ObservationNormalizer(obs_space.shape) if args.normalize_observations else None
    reward_scaler = RewardScaler(args.num_envs, args.gamma)
    normalize_obs = functools.partial(observation_tensor, obs_normalizer, device=device)

    # Rollout storage lives on the training device; only observations in and actions out cross per step.
    obs = torch.zeros((args.num_steps, args.num_envs, *obs_space.shape), device=device)
    actions = torch.zeros((args.num_steps, args.num_envs, *action_space.shape), device=device)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = torch.zeros((args.num_steps, args.num_envs), device=device)
    dones = torch.zeros((args.num_steps, args.num_envs), device=device)
    values = torch.zeros((args.num_steps, args.num_envs), device=device)

    global_step, start_iteration = 0, 0
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if delta_optimizer is not None:
            delta_optimizer.load_state_dict(checkpoint["delta_optimizer"])
        if obs_normalizer is not None:
            obs_normalizer.load_state_dict(checkpoint["obs_normalizer"])
        reward_scaler.load_state(checkpoint["return_rms"])
        restore_rng_state(checkpoint["rng"])
        global_step, start_iteration = checkpoint["global_step"], checkpoint["iteration"]

    def checkpoint_state(iteration: int) -> dict:
        return {
            "global_step": global_step,
            "iteration": iteration,  # with global_step: the learning-rate annealing position
            "agent": agent.state_dict(),
            "optimizer": optimizer.state_dict(),
            "delta_optimizer": None if delta_optimizer is None else delta_optimizer.state_dict(),
            "obs_normalizer": None if obs_normalizer is None else obs_normalizer.state_dict(),
            "return_rms": reward_scaler.state(),
            "rng": capture_rng_state(),
        }

    update = make_update(agent, args, optimizer, delta_optimizer, loss_fn)

    # ------------------------------------------------------------------------------------- ALGORITHM: the loop
    eval_every = args.eval_every or num_iterations * batch_size
    next_eval = (global_step // eval_every + 1) * eval_every
    checkpoint_every = args.checkpoint_every or math.inf
    next_checkpoint = (global_step // checkpoint_every + 1) * checkpoint_every
    # A resumed run restarts its episodes (simulator states are not saved), from seeds it has not used.
    raw_obs, _ = envs.reset(seed=args.seed + global_step)
    next_obs = normalize_obs(raw_obs, update=True)
    next_done = torch.zeros(args.num_envs, device=device)
    sps_clock = (global_step, time.perf_counter())
    progress = tqdm(
        total=num_iterations * batch_size, initial=global_step, disable=not args.progress, desc=run_name, unit="step"
    )
    with StopOnSignal() as stop:
        for iteration in range(start_iteration + 1, num_iterations + 1):
            if args.anneal_lr:
                set_learning_rate(optimizer, (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate)

            # Rollout: actions are sampled in the policy's space and mapped to the env's bounds by the agent.
            agent.eval()  # batch-level ERA acts with its running normaliser
            with rollout_mode():
                for step in range(args.num_steps):
                    global_step += args.num_envs
                    obs[step], dones[step] = next_obs, next_done
                    action, logprobs[step], values[step] = act(next_obs)
                    actions[step] = action
                    env_action = agent.env_action(action).cpu().numpy()
                    raw_obs, reward, terminations, truncations, infos = envs.step(env_action)

                    episode_over = np.logical_or(terminations, truncations)
                    if args.normalize_rewards:
                        reward = reward_scaler(reward, episode_over)
                    rewards[step] = torch.as_tensor(reward, dtype=torch.float32, device=device)
                    # Time-limit truncation is not a terminal state: bootstrap from the value of the true final obs.
                    truncated_only = np.flatnonzero(truncations & ~terminations)
                    if truncated_only.size:
                        final_obs = np.stack([infos["final_obs"][i] for i in truncated_only])
                        final_obs = normalize_obs(final_obs, update=False)
                        rewards[step, truncated_only] += args.gamma * agent.get_value(final_obs)
                    next_obs = normalize_obs(raw_obs, update=True)
                    next_done = torch.as_tensor(episode_over, dtype=torch.float32, device=device)
                    for episodic_return, episodic_length in episode_returns(infos):
                        run.episode(global_step, episodic_return, episodic_length)
            progress.update(batch_size)

            with torch.no_grad():
                advantages, returns = advantages_and_returns(
                    args, rewards, values, dones, agent.get_value(next_obs), next_done
                )
            batch = (
                obs.reshape((-1, *obs_space.shape)),
                actions.reshape((-1, *action_space.shape)),
                logprobs.reshape(-1),
                advantages.reshape(-1),
                returns.reshape(-1),
                values.reshape(-1),
            )

            # Optimise the clipped surrogate and the value loss; minibatch indices are drawn on the device.
            agent.train()
            clipfracs = []
            for _epoch in range(args.update_epochs):
                b_inds = torch.randperm(batch_size, device=device)
                for start in range(0, batch_size, minibatch_size):
                    mb_inds = b_inds[start : start + minibatch_size]
                    stats = update(*(tensor[mb_inds] for tensor in batch))
                    clipfracs.append(stats["losses/clipfrac"])
                # A host read once per epoch, only with --target-kl.
                if args.target_kl is not None and stats["losses/approx_kl"] > args.target_kl:
                    break

            # ------------------------------------------------- plumbing: logs, evaluation, checkpoints, signals
            # Logging: the only host reads of the update's statistics, once per iteration (last minibatch).
            stats["charts/learning_rate"] = float(optimizer.param_groups[0]["lr"])
            stats["charts/SPS"] = (global_step - sps_clock[0]) / max(time.perf_counter() - sps_clock[1], 1e-9)
            if iteration == start_iteration + 1:  # from now on without the first iteration's warm-up and compilation
                sps_clock = (global_step, time.perf_counter())
            write_logs(run, agent, stats, clipfracs, batch, global_step)
            progress.set_postfix(sps=int(stats["charts/SPS"]), entropy=f"{float(stats['policy/entropy']):.2f}")

            if global_step >= next_eval or iteration == num_iterations:
                next_eval = (global_step // eval_every + 1) * eval_every
                policy.load_state_dict(agent.state_dict())
                returns_eval = evaluate(policy, args.env_id, args.eval_episodes, args.seed + 10_000, obs_normalizer)
                run.evaluation(global_step, returns_eval)
                progress.write(f"step {global_step}: eval return {returns_eval.mean():.1f} +- {returns_eval.std():.1f}")
                if args.save_model:
                    save_policy(run.run_dir, policy, args.env_id, global_step, obs_normalizer)

            finished = iteration == num_iterations
            if stop.requested or finished or global_step >= next_checkpoint:
                next_checkpoint = (global_step // checkpoint_every + 1) * checkpoint_every
                run.save_checkpoint(checkpoint_state(iteration))
            if stop.requested and not finished:
                progress.write(f"stopped at step {global_step}; continue with --resume {run.run_dir}")
                progress.close()
                envs.close()
                run.close()
                raise SystemExit(stop.exit_code)

    progress.close()
    envs.close()
    run.close()


if __name__ == "__main__":
    main(parse_args(Args))
