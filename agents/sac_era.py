"""SAC-ERA: Soft Actor-Critic whose entropy is held by ERA's activation instead of an entropy bonus.

Single-file, CleanRL-style: options, networks, losses and the training loop are all below; the method's formulas
(``era_log_std``, ``era_action_distribution``, ``EntropyDelta``) come from ``era_policies`` and the run bookkeeping
(``--resume``, checkpoints, logs) from ``era_utils``. The recipe is the released SAC-ERA code's
(docs/era-method.md §5):

* pi(.|s)  truncated normal on [-1, 1]^D with loc = tanh(mean), log std = era_log_std(std logits): every state's
           Gaussian entropy is >= H0' = D * (target_entropy_per_dim + delta); ``--delta auto`` learns delta >= 0 so
           that the *bounded* policy's entropy meets H0 = D * target_entropy_per_dim.
* target   y = r + gamma * (1 - terminated) * min(Q1', Q2')(s', a'),  a' ~ pi(.|s')        (no -alpha * log pi)
* critic   MSE(Q1, y) + MSE(Q2, y), AdamW (weight decay 1e-4); then Polyak averaging of the target critics
* actor    -mean(min(Q1, Q2)(s, a~)),  a~ ~ pi(.|s) reparameterised, on the updated critics  (no alpha * log pi)
* networks 2 x 512 ELU actor; critics 2 x 512 with LayerNorm before each ELU; every Linear orthogonal with gain
           sqrt(2) and zero bias, except the std-logit head (gain 1).

``--no-era`` is plain SAC on the same networks and loop: SB3's SAC actor (log std clamped to [-20, 2],
tanh-squashed Gaussian) and a temperature alpha tuned towards entropy -D. The two differ in exactly two places,
both marked ``ERA | --no-era``: the actor class (:class:`Actor`, or the :class:`SACActor` it extends) and the
entropy block of :func:`make_update`.

Module names follow SB3's, so a run exports to ``ERASACPolicy`` (``SACLayerNormPolicy`` with ``--no-era``) by
``load_state_dict`` (:func:`export_policy`); ``--save-model`` writes that file for ``agents/evaluate.py`` and
``ERASACPolicy.load(path).predict(obs)``.

Speed: the replay buffer lives on the training device and the update never synchronises with the host;
``--compile`` compiles the update with ``torch.compile``, ``--cudagraphs`` captures all of it (losses, backward,
optimiser steps, Polyak averaging, delta / alpha) in one CUDA graph.

    python agents/sac_era.py --env-id HalfCheetah-v5
    python agents/sac_era.py --env-id HalfCheetah-v5 --cudagraphs --compile      # on a GPU
    python agents/sac_era.py --resume runs/<run-name>                            # continue an interrupted run
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn, optim
from torch.distributions import Distribution, Normal, TanhTransform, TransformedDistribution
from tqdm import tqdm

from era_policies import (
    EntropyDelta,
    check_target_entropy_per_dim,
    era_action_distribution,
    era_log_std,
    gaussian_entropy,
)
from era_utils.cudagraphs import CudaGraphFunction
from era_utils.envs import episode_returns, make_vector_env
from era_utils.experiment import (
    ExperimentArgs,
    StopOnSignal,
    capture_rng_state,
    check_at_least,
    evaluate,
    parse_args,
    restore_rng_state,
    save_policy,
    seed_everything,
    select_device,
    start_run,
)
from era_utils.replay import ReplayBatch, ReplayBuffer


@dataclass
class Args(ExperimentArgs):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    log_every: int = 1_000
    """write losses and entropies every this many steps"""

    # SAC (the released recipe, docs/era-method.md §5)
    buffer_size: int = 1_000_000
    """replay buffer capacity (transitions)"""
    save_replay_buffer: bool = False
    """put the replay buffer into the training checkpoint, so that --resume continues with it (large: obs x 2 x
    buffer size); without it a resumed run refills the buffer for --learning-starts steps before updating again"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 0.005
    """Polyak averaging coefficient of the target critics"""
    batch_size: int = 256
    """minibatch size"""
    learning_starts: int = 5_000
    """uniformly random actions before this step; updates start then"""
    updates_per_step: float = 2.0
    """gradient updates per environment step (the update-to-data ratio; fractions accumulate)"""
    policy_lr: float = 3e-4
    """Adam learning rate of the actor"""
    q_lr: float = 3e-4
    """AdamW learning rate of the critics (and Adam's of alpha with --no-era)"""
    q_weight_decay: float = 1e-4
    """AdamW weight decay of the critics (optax.adamw's default, as in the released code)"""
    hidden_dim: int = 512
    """width of the two hidden layers of actor and critics"""

    # ERA
    era: bool = True
    """ERA actor; --no-era runs plain SAC (tanh-Gaussian actor, auto-tuned temperature alpha, target entropy -D)"""
    target_entropy_per_dim: float = 0.25
    """entropy floor per action dimension H0/D, in nats (the released SAC-ERA script's default)"""
    log_std_min: float = -8.0
    """lower clamp of ERA's log standard deviation"""
    log_std_max: float = 0.0
    """upper bound of ERA's log standard deviation"""
    delta: float | Literal["auto"] = 0.0
    """entropy compensation for the truncation to [-1, 1], nats per dimension (>= 0), or `auto` to learn it"""
    delta_lr: float = 3e-4
    """Adam learning rate of delta (with --delta auto)"""

    # speed
    compile: bool = False
    """torch.compile the update"""
    cudagraphs: bool = False
    """capture the whole update in one CUDA graph and replay it (needs CUDA)"""

    def check(self) -> None:
        """Reject settings that cannot work, naming the flag (before any run directory exists)."""
        super().check()
        check_at_least("--log-every", self.log_every, 1)
        check_at_least("--batch-size", self.batch_size, 1)
        check_at_least("--hidden-dim", self.hidden_dim, 1)
        check_at_least("--learning-starts", self.learning_starts, 0)
        check_at_least("--buffer-size", self.buffer_size, 1)
        if self.buffer_size < self.batch_size:
            raise ValueError(f"--buffer-size must be >= --batch-size ({self.batch_size}), got {self.buffer_size}")
        if not (math.isfinite(self.updates_per_step) and self.updates_per_step > 0):
            raise ValueError(f"--updates-per-step must be > 0, got {self.updates_per_step}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"--gamma must lie in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"--tau must lie in (0, 1], got {self.tau}")
        for flag, value in (("--policy-lr", self.policy_lr), ("--q-lr", self.q_lr), ("--delta-lr", self.delta_lr)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{flag} must be > 0, got {value}")
        if not (math.isfinite(self.q_weight_decay) and self.q_weight_decay >= 0):
            raise ValueError(f"--q-weight-decay must be >= 0, got {self.q_weight_decay}")
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"--log-std-min must be < --log-std-max, got {self.log_std_min} and {self.log_std_max}")
        try:
            check_target_entropy_per_dim(self.target_entropy_per_dim, self.log_std_max)
        except ValueError as err:
            raise ValueError(f"--target-entropy-per-dim: {err}") from err
        if self.delta != "auto" and not (math.isfinite(self.delta) and self.delta >= 0):
            raise ValueError(f"--delta must be a number >= 0 or 'auto', got {self.delta}")
        if self.cudagraphs and not (self.cuda and torch.cuda.is_available()):
            raise ValueError(
                "--cudagraphs captures the update in a CUDA graph and needs a CUDA device"
                + (" (--no-cuda was given)" if not self.cuda else " (torch.cuda.is_available() is False)")
            )


# ------------------------------------------------------------------------------------------------------ networks
def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Every ``Linear`` in ``module``: orthogonal weights with ``gain``, zero bias (the released code's Dense init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


class QNetwork(nn.Sequential):
    """Q(s, a): Linear -> LayerNorm -> ELU, twice, then Linear to one value (SB3's ``create_mlp`` indices 0..6)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dim: int) -> None:
        super().__init__(
            nn.Linear(obs_dim + action_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.ELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.ELU(),
            nn.Linear(hidden_dim, 1),
        )
        orthogonal_init(self)


class Critics(nn.Module):
    """The two Q-networks ``qf0``, ``qf1`` (the keys of SB3's ``LayerNormContinuousCritic``)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.qf0 = QNetwork(obs_dim, action_dim, hidden_dim)
        self.qf1 = QNetwork(obs_dim, action_dim, hidden_dim)

    def forward(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([obs, actions], dim=-1)
        return self.qf0(x), self.qf1(x)


SB3_LOG_STD_MIN, SB3_LOG_STD_MAX = -20.0, 2.0  # SB3's SAC actor clamps its log std to this range


class SACActor(nn.Module):
    """Plain SAC's actor (``--no-era``), and the network the ERA actor keeps: ``latent_pi`` (Linear -> ELU, twice),
    the mean head ``mu`` and the std head ``log_std`` (SB3's SAC actor's names and computation: log std clamped to
    [-20, 2], tanh-squashed Gaussian).

    :param obs_dim: observation size.
    :param action_dim: ``D``.
    :param args: the run's options (``hidden_dim``; the ERA actor also reads the ERA options).
    """

    def __init__(self, obs_dim: int, action_dim: int, args: Args) -> None:
        super().__init__()
        self.latent_pi = nn.Sequential(
            nn.Linear(obs_dim, args.hidden_dim), nn.ELU(), nn.Linear(args.hidden_dim, args.hidden_dim), nn.ELU()
        )
        self.mu = nn.Linear(args.hidden_dim, action_dim)
        self.log_std = nn.Linear(args.hidden_dim, action_dim)
        orthogonal_init(self)
        orthogonal_init(self.log_std, gain=1.0)  # the std head: gain 1 in the released code

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """:return: the mean ``(B, D)`` and the log standard deviation ``(B, D)``."""
        latent = self.latent_pi(obs)
        return self.mu(latent), self.activate(self.log_std(latent))

    def activate(self, std_head: Tensor) -> Tensor:
        return std_head.clamp(SB3_LOG_STD_MIN, SB3_LOG_STD_MAX)

    def distribution(self, mean: Tensor, log_std: Tensor) -> Distribution:
        """Tanh-squashed diagonal Gaussian (``cache_size=1``: log-probs of its own samples need no atanh)."""
        gaussian = Normal(mean, log_std.exp(), validate_args=False)
        return TransformedDistribution(gaussian, [TanhTransform(cache_size=1)], validate_args=False)

    @property
    def target_entropy(self) -> float:
        """SAC's target entropy, -D (what alpha is tuned towards)."""
        return -float(self.mu.out_features)

    def sb3_policy_kwargs(self) -> dict[str, Any]:
        """Options of the matching SB3 policy (see :func:`export_policy`)."""
        return {}


class Actor(SACActor):
    """The ERA actor: the same network, the ``log_std`` head's outputs become ERA's std *logits*, actions come from
    the truncated normal, and ``era_delta`` holds delta and the targets H0, H0' (ERASACPolicy.actor's names)."""

    def __init__(self, obs_dim: int, action_dim: int, args: Args) -> None:
        super().__init__(obs_dim, action_dim, args)
        self.log_std_min, self.log_std_max = args.log_std_min, args.log_std_max
        self.era_delta = EntropyDelta(
            action_dim,
            args.target_entropy_per_dim,
            log_std_max=args.log_std_max,
            initial_delta=0.0 if args.delta == "auto" else float(args.delta),
            learnable=args.delta == "auto",
        )

    def activate(self, std_logits: Tensor) -> Tensor:
        """ERA: log stds whose Gaussian entropy is H0' = D * (target_entropy_per_dim + delta) in every state."""
        return era_log_std(std_logits, self.era_delta.activation_target(), self.log_std_min, self.log_std_max)

    def distribution(self, mean: Tensor, log_std: Tensor) -> Distribution:
        """Truncated normal on [-1, 1]^D, loc = tanh(mean), scale = exp(log_std) (docs/era-method.md §3)."""
        return era_action_distribution(mean, log_std)

    @property
    def target_entropy(self) -> float:
        """H0 = D * target_entropy_per_dim: the entropy the bounded policy should keep."""
        return self.era_delta.target_entropy

    def sb3_policy_kwargs(self) -> dict[str, Any]:
        delta = "auto" if self.era_delta.learnable else float(self.era_delta.delta)
        return dict(
            target_entropy_per_dim=self.era_delta.target_entropy_per_dim,
            log_std_min=self.log_std_min,
            log_std_max=self.log_std_max,
            delta=delta,
        )


# --------------------------------------------------------------------------------------------------------- agent
@dataclass
class Agent:
    """Networks and optimisers of one run (what :func:`make_update` updates and a checkpoint holds)."""

    actor: Actor
    qf: Critics
    qf_target: Critics
    actor_optimizer: optim.Optimizer
    q_optimizer: optim.Optimizer
    delta_optimizer: optim.Optimizer | None = None
    """ERA with --delta auto"""
    log_alpha: Tensor | None = None
    """--no-era: log of SAC's temperature"""
    alpha_optimizer: optim.Optimizer | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            name: value.detach().clone() if isinstance(value, Tensor) else value.state_dict()
            for name, value in vars(self).items()
            if value is not None
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                with torch.no_grad():
                    value.copy_(state[name])
            elif value is not None:
                value.load_state_dict(state[name])


def build_agent(
    args: Args, obs_dim: int, action_dim: int, device: torch.device, actor_class: type[Actor] = Actor
) -> Agent:
    """Actor, critics, target critics and their optimisers.

    :param actor_class: the ERA actor (``sac_era_batch.py`` passes its batch-level one); ``--no-era`` uses
        :class:`SACActor` whatever it is.
    """
    actor_class = actor_class if args.era else SACActor  # ERA | --no-era: the actor
    actor = actor_class(obs_dim, action_dim, args).to(device)
    qf = Critics(obs_dim, action_dim, args.hidden_dim).to(device)
    qf_target = Critics(obs_dim, action_dim, args.hidden_dim).to(device)
    qf_target.load_state_dict(qf.state_dict())
    qf_target.requires_grad_(False)
    # Fused Adam: one kernel per step, step count on the GPU. Capturing a step() in a CUDA graph also needs
    # capturable=True (torch refuses the capture otherwise); it slows uncaptured steps, so only with --cudagraphs.
    adam: dict[str, Any] = {"fused": True, "capturable": args.cudagraphs} if device.type == "cuda" else {}
    delta = getattr(actor, "era_delta", None)
    actor_params = [p for name, p in actor.named_parameters() if not name.startswith("era_delta.")]
    agent = Agent(
        actor=actor,
        qf=qf,
        qf_target=qf_target,
        actor_optimizer=optim.Adam(actor_params, lr=args.policy_lr, **adam),
        q_optimizer=optim.AdamW(qf.parameters(), lr=args.q_lr, weight_decay=args.q_weight_decay, **adam),
    )
    if delta is not None and delta.learnable:
        agent.delta_optimizer = optim.Adam([delta.delta], lr=args.delta_lr, **adam)
    if not args.era:
        agent.log_alpha = torch.zeros((), device=device, requires_grad=True)
        agent.alpha_optimizer = optim.Adam([agent.log_alpha], lr=args.q_lr, **adam)
    return agent


def make_update(agent: Agent, args: Args) -> Callable[[ReplayBatch], dict[str, Tensor]]:
    """One gradient step in the released order: critics, Polyak averaging, actor on the updated critics, then delta
    (ERA with --delta auto) or the temperature alpha (--no-era). Compiled with --compile, captured with --cudagraphs.

    :return: ``update(batch) -> {name: 0-d tensor}``, detached values to log; nothing in it waits for the host.
    """
    actor, qf, qf_target = agent.actor, agent.qf, agent.qf_target
    qf_params, qf_target_params = list(qf.parameters()), list(qf_target.parameters())

    # ERA | --no-era: the entropy. ERA's activation holds it, so no loss has an entropy term and the only extra step
    # is delta's; plain SAC subtracts alpha * log pi in the target and the actor loss and tunes alpha.
    if args.era:

        def entropy_penalty(dist: Distribution, actions: Tensor) -> float:
            return 0.0

        def bounded_entropy(dist: Distribution, actions: Tensor) -> Tensor:
            return dist.entropy().sum(-1)  # closed form of the truncated normal, per state

        def entropy_step(entropy: Tensor) -> dict[str, Tensor]:
            era_delta = actor.era_delta
            stats = {
                "era/delta": era_delta.delta.detach().clone(),
                "era/activation_target": era_delta.activation_target(),
            }
            if agent.delta_optimizer is not None:
                stats["losses/delta_loss"] = era_delta.update(entropy, agent.delta_optimizer)
            return stats
    else:
        assert agent.log_alpha is not None and agent.alpha_optimizer is not None
        log_alpha, alpha_optimizer = agent.log_alpha, agent.alpha_optimizer

        def entropy_penalty(dist: Distribution, actions: Tensor) -> Tensor:
            return log_alpha.detach().exp() * dist.log_prob(actions).sum(-1, keepdim=True)

        def bounded_entropy(dist: Distribution, actions: Tensor) -> Tensor:
            return -dist.log_prob(actions).sum(-1)  # one-sample estimate: a tanh-Gaussian has no closed form

        def entropy_step(entropy: Tensor) -> dict[str, Tensor]:
            alpha_loss = log_alpha.exp() * (entropy.detach() - actor.target_entropy).mean()
            alpha_optimizer.zero_grad()
            alpha_loss.backward()
            alpha_optimizer.step()
            return {"losses/alpha": log_alpha.detach().exp(), "losses/alpha_loss": alpha_loss.detach()}

    def update(data: ReplayBatch) -> dict[str, Tensor]:
        with torch.no_grad():
            next_dist = actor.distribution(*actor(data.next_observations))
            next_actions = next_dist.sample()
            min_q_next = torch.min(*qf_target(data.next_observations, next_actions))
            soft_q_next = min_q_next - entropy_penalty(next_dist, next_actions)
            target_q = data.rewards + args.gamma * (1.0 - data.dones) * soft_q_next
        q1, q2 = qf(data.observations, data.actions)
        qf_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        agent.q_optimizer.zero_grad()
        qf_loss.backward()
        agent.q_optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(qf_target_params, qf_params, args.tau)

        mean, log_std = actor(data.observations)
        dist = actor.distribution(mean, log_std)
        actions = dist.rsample()
        actor_loss = (entropy_penalty(dist, actions) - torch.min(*qf(data.observations, actions))).mean()
        agent.actor_optimizer.zero_grad()
        actor_loss.backward()
        agent.actor_optimizer.step()

        with torch.no_grad():
            entropy = bounded_entropy(dist, actions)
            gaussian = gaussian_entropy(log_std)
        return {
            "losses/qf_loss": qf_loss.detach() / 2.0,
            "losses/qf1_values": q1.detach().mean(),
            "losses/qf2_values": q2.detach().mean(),
            "losses/actor_loss": actor_loss.detach(),
            "policy/std": log_std.detach().exp().mean(),
            "policy/entropy": entropy.mean(),
            "gaussian_entropy_min": gaussian.min(),
            "gaussian_entropy_mean": gaussian.mean(),
            **entropy_step(entropy),
        }

    if args.compile:
        update = torch.compile(update)
    if args.cudagraphs:
        update = CudaGraphFunction(update)
    return update


def export_policy(agent: Agent, args: Args, observation_space: Any, action_space: Any) -> Any:
    """The agent as an SB3 policy (``ERASACPolicy``, or ``SACLayerNormPolicy`` with ``--no-era``) with the same
    weights: ``policy.save`` / ``ERASACPolicy.load(path).predict(obs)`` act as this agent does."""
    from era_policies.sb3 import ERASACPolicy, SACLayerNormPolicy

    policy_class = ERASACPolicy if args.era else SACLayerNormPolicy
    policy = policy_class(
        observation_space,
        action_space,
        lr_schedule=lambda _: args.policy_lr,
        net_arch=[args.hidden_dim, args.hidden_dim],
        activation_fn=nn.ELU,
        critic_layer_norm=True,
        **agent.actor.sb3_policy_kwargs(),
    )
    policy.actor.load_state_dict(agent.actor.state_dict())
    policy.critic.load_state_dict(agent.qf.state_dict())
    policy.critic_target.load_state_dict(agent.qf_target.state_dict())
    policy.set_training_mode(False)
    return policy.to(next(agent.actor.parameters()).device)


# ------------------------------------------------------------------------------------------------------ training
def main(args: Args, actor_class: type[Actor] = Actor) -> None:
    args.check()
    run, args, checkpoint = start_run(args)
    seed_everything(args.seed, args.torch_deterministic)
    device = select_device(args.cuda)

    envs = make_vector_env(args.env_id, args.num_envs, args.seed, args.capture_video, f"videos/{run.run_dir.name}")
    obs_shape, action_space = envs.single_observation_space.shape, envs.single_action_space
    action_dim = action_space.shape[0]
    agent = build_agent(args, int(np.prod(obs_shape)), action_dim, device, actor_class)
    actor = agent.actor
    rb = ReplayBuffer(args.buffer_size, obs_shape, action_dim, args.num_envs, device)
    rng = np.random.default_rng(args.seed)  # warm-up actions

    global_step, learning_begins, update_credit = 0, args.learning_starts, 0.0
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        restore_rng_state(checkpoint["rng"])
        rng.bit_generator.state = checkpoint["np_rng"]
        global_step, update_credit = checkpoint["global_step"], checkpoint["update_credit"]
        if "replay_buffer" in checkpoint:
            rb.load_state_dict(checkpoint["replay_buffer"])
            learning_begins = checkpoint["learning_begins"]
        else:  # refill the buffer, with the policy, before updating again
            learning_begins = max(checkpoint["learning_begins"], global_step + args.learning_starts)
            print(f"resuming at step {global_step} without a replay buffer: updates resume at {learning_begins}")
    update = make_update(agent, args)  # after loading: a CUDA graph holds on to the optimiser states it captures

    def state() -> dict[str, Any]:
        saved = dict(global_step=global_step, agent=agent.state_dict(), rng=capture_rng_state())
        saved.update(np_rng=rng.bit_generator.state, learning_begins=learning_begins, update_credit=update_credit)
        if args.save_replay_buffer:
            saved["replay_buffer"] = rb.state_dict()
        return saved

    low, high = action_space.low, action_space.high

    def to_env(actions: np.ndarray) -> np.ndarray:  # [-1, 1]^D (what the buffer stores) -> the env's Box
        return low + 0.5 * (actions + 1.0) * (high - low)

    def act_deterministic(obs: np.ndarray) -> np.ndarray:  # evaluation: tanh(mean), the mode
        with torch.no_grad():
            mean, _ = actor(torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(1, -1))
        return to_env(torch.tanh(mean)[0].cpu().numpy())

    def every(period: int) -> int:  # the first multiple of period after global_step (total_timesteps if 0)
        return (global_step // period + 1) * period if period else args.total_timesteps

    next_log, next_eval, next_checkpoint = every(args.log_every), every(args.eval_every), every(args.checkpoint_every)
    obs, _ = envs.reset(seed=args.seed if checkpoint is None else args.seed + global_step)
    progress = tqdm(total=args.total_timesteps, initial=global_step, disable=not args.progress, desc=run.run_dir.name)
    stats: dict[str, Tensor] | None = None
    with StopOnSignal() as stop:
        while global_step < args.total_timesteps:
            if global_step < args.learning_starts:
                actions = rng.uniform(-1.0, 1.0, size=(args.num_envs, action_dim)).astype(np.float32)
            else:
                actor.eval()  # batch-level ERA acts with its running normaliser
                with torch.no_grad():
                    actions_t = actor.distribution(*actor(torch.as_tensor(obs, device=device))).sample()
                actions = actions_t.cpu().numpy()
            next_obs, rewards, terminations, _, infos = envs.step(to_env(actions))
            global_step += args.num_envs
            progress.update(args.num_envs)
            for episodic_return, episodic_length in episode_returns(infos):
                run.episode(global_step, episodic_return, episodic_length)

            # Same-step autoreset: next_obs already starts the next episode where one ended; store the true final
            # obs. Truncations are stored as not done, so the target bootstraps through them.
            real_next_obs = next_obs.copy()
            for idx in np.flatnonzero(infos.get("_final_obs", [])):
                real_next_obs[idx] = infos["final_obs"][idx]
            rb.add(obs, real_next_obs, actions, rewards, terminations)
            obs = next_obs

            if global_step > learning_begins:
                actor.train()
                update_credit += args.updates_per_step * args.num_envs
                while update_credit >= 1.0:
                    stats = update(rb.sample(args.batch_size))
                    update_credit -= 1.0

            done = global_step >= args.total_timesteps
            if stats is not None and (global_step >= next_log or done):
                next_log = every(args.log_every)
                values = {name: value.item() for name, value in stats.items()}  # the one host sync of a log step
                run.entropy(
                    global_step,
                    target_entropy=actor.target_entropy,
                    activation_target=values.get("era/activation_target"),
                    gaussian_entropy_min=values.pop("gaussian_entropy_min"),
                    gaussian_entropy_mean=values.pop("gaussian_entropy_mean"),
                    bounded_entropy_mean=values["policy/entropy"],
                    delta=values.get("era/delta"),
                )
                values["charts/SPS"] = run.steps_per_second(global_step)
                run.scalars(values, global_step)
                progress.set_postfix(sps=int(values["charts/SPS"]), entropy=f"{values['policy/entropy']:.2f}")

            if global_step >= next_eval or done:
                next_eval = every(args.eval_every)
                actor.eval()
                returns = evaluate(act_deterministic, args.env_id, args.eval_episodes, seed=args.seed + 10_000)
                run.evaluation(global_step, returns)
                progress.write(f"step {global_step}: eval return {returns.mean():.1f} +- {returns.std():.1f}")
                if args.save_model:
                    policy = export_policy(agent, args, envs.single_observation_space, action_space)
                    save_policy(run.run_dir, policy, args.env_id, global_step)

            if stop.requested or (args.checkpoint_every and global_step >= next_checkpoint and not done):
                next_checkpoint = every(args.checkpoint_every)
                run.save_checkpoint(state())
                if stop.requested:
                    progress.close()
                    envs.close()
                    run.close()
                    raise SystemExit(stop.exit_code)

    run.save_checkpoint(state())  # a later --resume with a larger --total-timesteps continues from here
    progress.close()
    envs.close()
    run.close()


if __name__ == "__main__":
    main(parse_args(Args))
