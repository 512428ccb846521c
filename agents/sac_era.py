"""SAC-ERA: Soft Actor-Critic whose entropy is held by ERA's activation instead of an entropy bonus.

Single-file, CleanRL-style (``sac_continuous_action.py``): ``ALGORITHM`` sections hold the method, ``plumbing``
sections the checks, export and run bookkeeping (from ``era_utils``) a reader may skip. The recipe is the released
SAC-ERA code's (docs/era-method.md §5):

* pi(.|s)  truncated normal on [-1, 1]^D, loc = tanh(mean), log std = the ERA head (:class:`~era_policies.ERAStd`)
           of the std logits: Gaussian entropy >= H0' = D * (target_entropy_per_dim + delta) in every state;
           ``--delta auto`` learns delta >= 0 so that the *bounded* policy's entropy meets H0
* target   y = r + gamma * (1 - terminated) * min(Q1', Q2')(s', a'),  a' ~ pi(.|s')        (no -alpha * log pi)
* critic   MSE(Q1, y) + MSE(Q2, y), AdamW (weight decay 1e-4); then Polyak averaging of the target critics
* actor    -mean(min(Q1, Q2)(s, a~)),  a~ ~ pi(.|s) reparameterised, on the updated critics  (no alpha * log pi)
* networks 2 x 512 ELU; critics with LayerNorm before each ELU; orthogonal init (gain sqrt(2), std head 1), zero bias.
           ``--activation relu --no-critic-layer-norm`` builds CleanRL's network instead.

``--no-era`` is plain SAC on the same networks and loop (SB3's actor: log std clamped to [-20, 2], tanh-squashed
Gaussian; temperature alpha tuned towards entropy -D). Every line where the two differ is an ``if ...era:`` marked
``# ERA | --no-era``. Module names follow SB3's, so a run exports to ``ERASACPolicy`` (``SACLayerNormPolicy`` with
``--no-era``) by ``load_state_dict``; ``--save-model`` writes it for ``agents/evaluate.py``.

Speed: the replay buffer lives on the training device and the update never waits for the host; entropies only the
logs need are computed on log steps; ``--compile`` compiles the losses and the acting
step, ``--cudagraphs`` captures the whole update in one CUDA graph; ``charts/SPS`` counts from the end of a burn-in,
so that compilation does not distort it.

    python agents/sac_era.py --env-id HalfCheetah-v5
    python agents/sac_era.py --env-id HalfCheetah-v5 --cudagraphs --compile      # on a GPU
    python agents/sac_era.py --resume runs/<run-name>                            # continue an interrupted run
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn, optim
from torch.distributions import Distribution, Normal, TanhTransform, TransformedDistribution

from era_utils.dependencies import AGENTS_INSTALL, require

tqdm = require("tqdm", AGENTS_INSTALL, "agents/sac_era.py (its progress bar)").tqdm

from era_policies import (  # noqa: E402
    ERAStd,
    check_log_std_range,
    check_target_entropy_per_dim,
    era_action_distribution,
    gaussian_entropy,
)
from era_utils.cudagraphs import CudaGraphFunction  # noqa: E402
from era_utils.envs import episode_returns, make_vector_env  # noqa: E402
from era_utils.experiment import (  # noqa: E402
    ExperimentArgs,
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
from era_utils.replay import ReplayBatch, ReplayBuffer  # noqa: E402

BURN_IN_STEPS = 1_000
"""charts/SPS counts from this many steps after the updates start (the first updates pay the compilation)"""


# ======================================================= plumbing: options (tyro reads each docstring as --help)
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
    activation: Literal["elu", "relu"] = "elu"
    """activation of the hidden layers of actor and critics (the released recipe: elu; CleanRL's SAC: relu)"""
    critic_layer_norm: bool = True
    """LayerNorm before each hidden activation of the critics (the released recipe; CleanRL's SAC has none)"""

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
    entropy_level: ClassVar[Literal["state", "batch"]] = "state"  # sac_era_batch.py: "batch"
    batch_momentum: ClassVar[float] = 0.01  # a flag of sac_era_batch.py only

    # speed
    compile: bool = False
    """torch.compile the update and the acting step"""
    cudagraphs: bool = False
    """capture the whole update in one CUDA graph and replay it (needs CUDA)"""

    def check(self) -> None:
        """Reject settings that cannot work, naming the flag (before any run directory exists)."""
        super().check()
        check_at_least("--log-every", self.log_every, 1)
        check_at_least("--batch-size", self.batch_size, 1)
        check_at_least("--hidden-dim", self.hidden_dim, 1)
        check_at_least("--buffer-size", self.buffer_size, 1)
        check_at_least("--learning-starts", self.learning_starts, 0)
        for flag, value, ok, expected in (
            ("--buffer-size", self.buffer_size, self.buffer_size >= self.batch_size, ">= --batch-size"),
            ("--updates-per-step", self.updates_per_step, 0 < self.updates_per_step < math.inf, "> 0"),
            ("--gamma", self.gamma, 0.0 <= self.gamma < 1.0, "in [0, 1)"),
            ("--tau", self.tau, 0.0 < self.tau <= 1.0, "in (0, 1]"),
            ("--policy-lr", self.policy_lr, 0 < self.policy_lr < math.inf, "> 0"),
            ("--q-lr", self.q_lr, 0 < self.q_lr < math.inf, "> 0"),
            ("--delta-lr", self.delta_lr, 0 < self.delta_lr < math.inf, "> 0"),
            ("--q-weight-decay", self.q_weight_decay, 0 <= self.q_weight_decay < math.inf, ">= 0"),
            ("--log-std-min", self.log_std_min, self.log_std_min < self.log_std_max, "< --log-std-max"),
            ("--delta", self.delta, self.delta == "auto" or 0 <= self.delta < math.inf, "a number >= 0 or 'auto'"),
        ):
            if not ok:
                raise ValueError(f"{flag} must be {expected}, got {value!r}")
        try:
            check_log_std_range(self.log_std_min, self.log_std_max)
            check_target_entropy_per_dim(self.target_entropy_per_dim, self.log_std_max)
        except ValueError as err:
            raise ValueError(f"--target-entropy-per-dim / --log-std-min / --log-std-max: {err}") from err
        if self.cudagraphs and not (self.cuda and torch.cuda.is_available()):
            raise ValueError(
                "--cudagraphs captures the update in a CUDA graph and needs a CUDA device"
                + (" (--no-cuda was given)" if not self.cuda else " (torch.cuda.is_available() is False)")
            )


# ============================================================================================ ALGORITHM: networks
ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU}
SB3_LOG_STD_MIN, SB3_LOG_STD_MAX = -20.0, 2.0  # SB3's SAC actor clamps its log std to this range


class ReLUThroughAbs(nn.Module):
    """ReLU written as ``(x + |x|) / 2``, which ``--compile`` builds instead of ``nn.ReLU``: the same values for finite
    inputs below 1.7e38 (and no parameters: checkpoints and the SB3 export are unchanged); the gradient at exactly 0 is
    1/2 instead of 0, both subgradients.

    Why: in the actor's loss the critics are frozen, so all their backward needs from a ReLU is where it was positive,
    and Inductor saves that as a bool mask, whose vectorised stores and loads are slow on the CPU (0.9 ms per
    256 x 256 mask on a 2-core Xeon, against 0.05 ms eager), so the compiled update ran at 0.7x eager.
    The backward of ``|x|`` reads a float instead (``benchmarks/results/compile-relu``).
    """

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (x + x.abs())


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Every ``Linear`` in ``module``: orthogonal weights with ``gain``, zero bias (the released code's Dense init)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


def mlp(in_dim: int, args: Args, layer_norm: bool = False) -> list[nn.Module]:
    """Two hidden layers: Linear [-> LayerNorm] -> activation (SB3's ``create_mlp`` layout and indices; ReLU is
    :class:`ReLUThroughAbs` under ``--compile``)."""
    activation = ReLUThroughAbs if args.compile and args.activation == "relu" else ACTIVATIONS[args.activation]
    layers: list[nn.Module] = []
    for size_in in (in_dim, args.hidden_dim):
        layers += [nn.Linear(size_in, args.hidden_dim), *([nn.LayerNorm(args.hidden_dim)] if layer_norm else [])]
        layers.append(activation())
    return layers


class Critics(nn.Module):
    """The two Q-networks ``qf0``, ``qf1`` (the keys of SB3's ``LayerNormContinuousCritic``)."""

    def __init__(self, obs_dim: int, action_dim: int, args: Args) -> None:
        super().__init__()
        for name in ("qf0", "qf1"):
            q_net = nn.Sequential(
                *mlp(obs_dim + action_dim, args, args.critic_layer_norm), nn.Linear(args.hidden_dim, 1)
            )
            setattr(self, name, orthogonal_init(q_net))

    def forward(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([obs, actions], dim=-1)
        return self.qf0(x), self.qf1(x)


class VmapNormal(Normal):
    """torch's ``Normal`` (its log-prob and entropy), sampling ``loc + scale * randn_like(loc)``: the numbers
    ``Normal`` draws from the same generator state (tested), but drawn by an out-of-place op, which
    ``torch.func.vmap`` can draw per seed (``sac_era_seeds.py``); ``Normal`` fills a new tensor in place, which vmap
    refuses."""

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        eps = torch.randn_like(self.loc.expand(self._extended_shape(sample_shape)))
        return self.loc + eps * self.scale

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


class Actor(nn.Module):
    """SB3's SAC actor's names: ``latent_pi``, the mean head ``mu`` and the std head ``log_std``. With ERA the std
    head's outputs are std *logits* and ``era_std`` (:class:`~era_policies.ERAStd`, ERASACPolicy's name) turns them
    into log stds; ``--no-era`` clamps them to [-20, 2] as SB3 does.

    :param obs_dim: observation size.
    :param action_dim: ``D``.
    :param args: the run's options (network and ERA options; ``entropy_level`` selects state- or batch-level ERA).
    """

    def __init__(self, obs_dim: int, action_dim: int, args: Args) -> None:
        super().__init__()
        self.latent_pi = nn.Sequential(*mlp(obs_dim, args))
        self.mu = nn.Linear(args.hidden_dim, action_dim)
        self.log_std = nn.Linear(args.hidden_dim, action_dim)
        orthogonal_init(self)
        orthogonal_init(self.log_std, gain=1.0)  # the std head: gain 1 in the released code
        self.era = args.era
        if self.era:  # ERA | --no-era
            options = dict(level=args.entropy_level, delta=args.delta, batch_momentum=args.batch_momentum)
            self.era_std = ERAStd(
                action_dim, args.target_entropy_per_dim, args.log_std_min, args.log_std_max, **options
            )
            ERAStd.accept_legacy_state_dicts(self)  # checkpoints written before the head existed
            self.target_entropy = self.era_std.era_delta.target_entropy  # H0 = D * target_entropy_per_dim
        else:
            self.target_entropy = -float(action_dim)  # SAC's: what alpha is tuned towards

    def forward(self, obs: Tensor) -> tuple[Distribution, Tensor, Tensor]:
        """:return: the action distribution on [-1, 1]^D, the mean ``(B, D)`` and the log std ``(B, D)``."""
        latent = self.latent_pi(obs)
        mean, std_head = self.mu(latent), self.log_std(latent)
        if self.era:  # ERA | --no-era
            log_std = self.era_std(std_head)  # ERA: Gaussian entropy H0' in every state (or the batch mean)
            return era_action_distribution(mean, log_std), mean, log_std  # truncated normal, loc = tanh(mean)
        log_std = std_head.clamp(SB3_LOG_STD_MIN, SB3_LOG_STD_MAX)
        # cache_size=1: log-probs of its own samples need no atanh. No per-call argument checks (host reads every
        # step): the env's FiniteCheck names a non-finite action.
        gaussian = VmapNormal(mean, log_std.exp(), validate_args=False)
        squashed = TransformedDistribution(gaussian, [TanhTransform(cache_size=1)], validate_args=False)
        return squashed, mean, log_std


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


def build_agent(args: Args, obs_dim: int, action_dim: int, device: torch.device) -> Agent:
    """Actor, critics, target critics and their optimisers."""
    actor = Actor(obs_dim, action_dim, args).to(device)
    qf = Critics(obs_dim, action_dim, args).to(device)
    qf_target = Critics(obs_dim, action_dim, args).to(device)
    qf_target.load_state_dict(qf.state_dict())
    qf_target.requires_grad_(False)
    # Fused Adam: one kernel per step on the CPU as on CUDA (on the CPU a third of the per-tensor loop's time, and
    # less than the loop compiled). Capturing a step() in a CUDA graph also needs capturable=True (torch refuses the
    # capture otherwise); it slows uncaptured steps, so only with --cudagraphs.
    adam: dict[str, Any] = {"fused": True, "capturable": args.cudagraphs}
    actor_params = [p for name, p in actor.named_parameters() if not name.startswith("era_std.")]
    agent = Agent(
        actor=actor,
        qf=qf,
        qf_target=qf_target,
        actor_optimizer=optim.Adam(actor_params, lr=args.policy_lr, **adam),
        q_optimizer=optim.AdamW(qf.parameters(), lr=args.q_lr, weight_decay=args.q_weight_decay, **adam),
    )
    if args.era and args.delta == "auto":  # ERA | --no-era
        agent.delta_optimizer = optim.Adam([actor.era_std.era_delta.delta], lr=args.delta_lr, **adam)
    elif not args.era:
        agent.log_alpha = torch.zeros((), device=device, requires_grad=True)
        agent.alpha_optimizer = optim.Adam([agent.log_alpha], lr=args.q_lr, **adam)
    return agent


# ============================================================================================== ALGORITHM: losses
def make_losses(actor: Actor, qf: Critics, qf_target: Critics, args: Args) -> tuple[Callable, Callable]:
    """The critic and the actor loss of one seed, on the networks given (``sac_era_seeds.py`` calls them with each
    seed's parameters swapped in, through ``torch.func.functional_call``).

    :return: ``critic_loss(data, alpha) -> (loss, mean Q1, mean Q2)`` and ``actor_loss(data, alpha) -> (loss, out)``
        (``alpha``: ``None`` with ERA, SAC's temperature with --no-era).
    """

    def critic_loss(data: ReplayBatch, alpha: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        with torch.no_grad():
            next_dist, _, _ = actor(data.next_observations)
            next_actions = next_dist.sample()
            min_q_next = torch.min(*qf_target(data.next_observations, next_actions))
            if not args.era:  # ERA | --no-era: only plain SAC's target has an entropy term
                min_q_next = min_q_next - alpha * next_dist.log_prob(next_actions).sum(-1, keepdim=True)
            target_q = data.rewards + args.gamma * (1.0 - data.dones) * min_q_next
        q1, q2 = qf(data.observations, data.actions)
        return F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q), q1.detach().mean(), q2.detach().mean()

    def actor_loss(data: ReplayBatch, alpha: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        dist, mean, log_std = actor(data.observations)
        actions = dist.rsample()
        min_q = torch.min(*qf(data.observations, actions)).squeeze(-1)
        out = {"mean": mean.detach(), "log_std": log_std.detach()}
        if args.era:  # ERA | --no-era: ERA's actor loss has no entropy term
            loss = -min_q.mean()
            if args.delta == "auto":  # delta's step needs the bounded entropy (closed form of the truncated normal)
                with torch.no_grad():
                    out["entropy"] = dist.entropy().sum(-1)
        else:
            log_prob = dist.log_prob(actions).sum(-1)
            loss = (alpha * log_prob - min_q).mean()
            out["entropy"] = -log_prob.detach()  # SAC's one-sample estimate, for alpha's step
        return loss, out

    return critic_loss, actor_loss


def temperature_loss(log_alpha: Tensor, entropy: Tensor, target_entropy: float) -> Tensor:
    """--no-era: SAC's temperature loss, whose gradient raises alpha while the entropy estimate ``entropy`` (per state,
    ``-log pi``) is below the target ``-D`` and lowers it above."""
    return log_alpha.exp() * (entropy - target_entropy).mean()


# ============================================================================================== ALGORITHM: update
def make_update(agent: Agent, args: Args) -> Callable[[ReplayBatch], dict[str, Tensor]]:
    """One gradient step in the released order: critics, Polyak averaging, actor on the updated critics, then delta
    (ERA with --delta auto) or the temperature alpha (--no-era).

    :return: ``update(batch) -> {name: tensor}``: detached 0-d losses, and the policy's ``mean`` / ``log_std`` (and
        ``entropy`` per state where the update computed it) on the batch, for :func:`log_values`. Nothing in it waits
        for the host.
    """
    actor, qf, qf_target = agent.actor, agent.qf, agent.qf_target
    qf_params, qf_target_params = list(qf.parameters()), list(qf_target.parameters())
    critic_loss, actor_loss = make_losses(actor, qf, qf_target, args)

    # Speed, applied to the plain functions above (LeanRL's recipe): --compile compiles each loss, forward and backward,
    # to one graph (the optimiser steps are fused kernels already); --cudagraphs captures the whole update below,
    # optimiser steps included, in one CUDA graph.
    if args.compile:
        critic_loss, actor_loss = torch.compile(critic_loss, fullgraph=True), torch.compile(actor_loss, fullgraph=True)

    def update(data: ReplayBatch) -> dict[str, Tensor]:
        alpha = None if args.era else agent.log_alpha.detach().exp()
        qf_loss, q1_mean, q2_mean = critic_loss(data, alpha)
        agent.q_optimizer.zero_grad()
        qf_loss.backward()
        agent.q_optimizer.step()
        with torch.no_grad():  # Polyak averaging of the target critics
            torch._foreach_lerp_(qf_target_params, qf_params, args.tau)
        qf.requires_grad_(False)  # the actor's gradient flows through the critics, but their weights need none
        loss, out = actor_loss(data, alpha)
        agent.actor_optimizer.zero_grad()
        loss.backward()
        agent.actor_optimizer.step()
        qf.requires_grad_(True)
        out.update({"losses/qf_loss": qf_loss.detach() / 2.0, "losses/actor_loss": loss.detach()})
        out.update({"losses/qf1_values": q1_mean, "losses/qf2_values": q2_mean})
        if args.era and args.delta == "auto":  # ERA | --no-era: delta rises while H < H0 (method §4)
            out["losses/delta_loss"] = actor.era_std.era_delta.update(out["entropy"], agent.delta_optimizer)
        elif not args.era:  # SAC's temperature: alpha rises while the entropy estimate -log pi is below -D
            alpha_loss = temperature_loss(agent.log_alpha, out["entropy"], actor.target_entropy)
            agent.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            agent.alpha_optimizer.step()
            out["losses/alpha"], out["losses/alpha_loss"] = agent.log_alpha.detach().exp(), alpha_loss.detach()
        return out

    return CudaGraphFunction(update) if args.cudagraphs else update


@torch.no_grad()
def log_values(actor: Actor, out: dict[str, Tensor]) -> dict[str, float]:
    """The last update's outputs as numbers to log (the host reads of a log step), with the policy's entropies on that
    batch: the bounded entropy is computed here unless the update already needed it."""
    mean, log_std = out["mean"], out["log_std"]
    entropy = out.get("entropy")
    if entropy is None:  # ERA with a constant delta: no loss needed it
        entropy = era_action_distribution(mean, log_std).entropy().sum(-1)
    gaussian = gaussian_entropy(log_std)
    values = {name: value for name, value in out.items() if name.startswith("losses/")}
    values.update({"policy/std": log_std.exp().mean(), "policy/entropy": entropy.mean()})
    values.update(gaussian_entropy_min=gaussian.min(), gaussian_entropy_mean=gaussian.mean())
    if actor.era:  # ERA | --no-era
        era_delta = actor.era_std.era_delta
        values.update({"era/delta": era_delta.delta, "era/activation_target": era_delta.activation_target()})
    return {name: float(value) for name, value in values.items()}


# ============================================================================================== plumbing: export
def export_policy(agent: Agent, args: Args, observation_space: Any, action_space: Any) -> Any:
    """The agent as an SB3 policy (``ERASACPolicy``, or ``SACLayerNormPolicy`` with ``--no-era``) with the same
    weights: ``policy.save`` / ``ERASACPolicy.load(path).predict(obs)`` act as this agent does."""
    from era_policies.sb3 import ERASACPolicy, SACLayerNormPolicy

    era_kwargs: dict[str, Any] = {}
    if args.era:  # ERA | --no-era
        delta = agent.actor.era_std.era_delta
        era_kwargs = dict(
            target_entropy_per_dim=args.target_entropy_per_dim,
            log_std_min=args.log_std_min,
            log_std_max=args.log_std_max,
            delta="auto" if delta.learnable else float(delta.delta),
            entropy_level=args.entropy_level,
            batch_momentum=args.batch_momentum,
        )
    policy = (ERASACPolicy if args.era else SACLayerNormPolicy)(
        observation_space,
        action_space,
        lr_schedule=lambda _: args.policy_lr,
        net_arch=[args.hidden_dim, args.hidden_dim],
        activation_fn=ACTIVATIONS[args.activation],
        critic_layer_norm=args.critic_layer_norm,
        **era_kwargs,
    )
    policy.actor.load_state_dict(agent.actor.state_dict())
    policy.critic.load_state_dict(agent.qf.state_dict())
    policy.critic_target.load_state_dict(agent.qf_target.state_dict())
    policy.set_training_mode(False)
    return policy.to(next(agent.actor.parameters()).device)


# =============================================================================================== training loop
def main(args: Args) -> None:
    prepared = prepare_run(args)  # every check, once (parse_args' own, if it made args); nothing created yet
    args = prepared.args  # run_name filled in (the env's video folder is named after it); a resume's saved settings
    seed_everything(args.seed, args.torch_deterministic)
    device = select_device(args.cuda)
    # Env and networks first, so that a bad env or a network too large fails before any run directory exists.
    envs = make_vector_env(args.env_id, args.num_envs, args.seed, args.capture_video, f"videos/{args.run_name}")
    obs_shape, action_space = envs.single_observation_space.shape, envs.single_action_space
    action_dim = action_space.shape[0]
    try:
        agent = build_agent(args, int(np.prod(obs_shape)), action_dim, device)
    except (RuntimeError, MemoryError) as err:  # torch's allocators raise RuntimeError (OutOfMemoryError on CUDA)
        raise SystemExit(f"error: --hidden-dim {args.hidden_dim}: the networks do not fit in memory ({err})") from err
    actor = agent.actor
    run, args, checkpoint = prepared.start()
    rb = ReplayBuffer(args.buffer_size, obs_shape, action_dim, args.num_envs, device)
    rng = np.random.default_rng(args.seed)  # warm-up actions

    # ---------------------------------------------------------------- plumbing: resume, checkpoints, action scaling
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

    @torch.no_grad()
    def sample_action(obs: Tensor) -> Tensor:  # a training action in [-1, 1]^D
        return actor(obs)[0].sample()

    # --compile: the acting step in one graph too; fused, its ERA lines cost less than eager's kernel calls.
    # Eager, it runs in inference mode, cheaper per operator than no_grad (batch 1 is all call overhead); Dynamo cannot
    # trace that mode around ERA's buffers, and the compiled step has no per-operator cost to save.
    explore = torch.compile(sample_action, fullgraph=True) if args.compile else torch.inference_mode()(sample_action)

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
            mean = actor.mu(actor.latent_pi(torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(1, -1)))
        return to_env(torch.tanh(mean)[0].cpu().numpy())

    def every(period: int) -> int:  # the first multiple of period after global_step (total_timesteps if 0)
        return (global_step // period + 1) * period if period else args.total_timesteps

    next_log, next_eval, next_checkpoint = every(args.log_every), every(args.eval_every), every(args.checkpoint_every)
    sps_clock, burn_in_end = (global_step, time.perf_counter()), max(learning_begins, global_step) + BURN_IN_STEPS
    obs, _ = envs.reset(seed=args.seed if checkpoint is None else args.seed + global_step)
    progress = tqdm(total=args.total_timesteps, initial=global_step, disable=not args.progress, desc=run.run_dir.name)
    out: dict[str, Tensor] | None = None
    # -------------------------------------------------------------------------------------- ALGORITHM: the loop
    with StopOnSignal() as stop:
        while global_step < args.total_timesteps:
            if global_step < args.learning_starts:
                actions = rng.uniform(-1.0, 1.0, size=(args.num_envs, action_dim)).astype(np.float32)
            else:
                actor.eval()  # batch-level ERA acts with its running normaliser
                actions = explore(torch.as_tensor(obs, device=device)).cpu().numpy()
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
                    out = update(rb.sample(args.batch_size))
                    update_credit -= 1.0

            # ------------------------------------------------------- plumbing: logs, evaluation, checkpoints, signals
            if global_step - args.num_envs < burn_in_end <= global_step:  # warm-up and compilation are behind us
                sps_clock = (global_step, time.perf_counter())
            done = global_step >= args.total_timesteps
            if out is not None and (global_step >= next_log or done):
                next_log = every(args.log_every)
                values = log_values(actor, out)
                run.entropy(
                    global_step,
                    target_entropy=actor.target_entropy,
                    activation_target=values.get("era/activation_target"),
                    gaussian_entropy_min=values.pop("gaussian_entropy_min"),
                    gaussian_entropy_mean=values.pop("gaussian_entropy_mean"),
                    bounded_entropy_mean=values["policy/entropy"],
                    delta=values.get("era/delta"),
                )
                values["charts/SPS"] = (global_step - sps_clock[0]) / max(time.perf_counter() - sps_clock[1], 1e-9)
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
