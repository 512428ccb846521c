"""SAC-ERA: Soft Actor-Critic whose entropy is enforced by ERA's activation instead of an entropy bonus.

Single-file, CleanRL-style. The ERA actor is the SB3-compatible ``ERASACPolicy`` from ``era_policies`` (so a
checkpoint loads with ``ERASACPolicy.load(path)`` and acts with ``.predict``); the losses and the update order of the
released SAC-ERA code (reference notes §5) are written out below:

* target   y = r + gamma * (1 - terminated) * min(Q1', Q2')(s', a'),   a' ~ pi(.|s')    (no -alpha * log pi)
* critic   MSE(Q1, y) + MSE(Q2, y);   then Polyak averaging of the target critics
* actor    -mean(min(Q1, Q2)(s, a~)),  a~ reparameterised                              (no alpha * log pi)
* pi(.|s)  truncated normal on [-1, 1]^D, loc = tanh(mean), std = exp(era_log_std(std_logits)), so every state keeps
           Gaussian entropy >= D * (target_entropy_per_dim + delta); ``--delta auto`` learns delta >= 0.

``--no-era`` runs plain SAC on the same code and networks: tanh-squashed Gaussian actor, auto-tuned temperature
alpha with target entropy -D. ``--entropy-level batch`` (or ``sac_era_batch.py``) enforces the target on the batch mean.

    python agents/sac_era.py --env-id HalfCheetah-v5
    python agents/sac_era.py --env-id h1hand-walk-v0 --total-timesteps 3000000     # HumanoidBench protocol
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import tyro
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update
from torch import nn, optim
from tqdm import tqdm

from era_policies import era_action_distribution
from era_policies.sb3 import ERASACPolicy, SACLayerNormPolicy
from era_utils.envs import episode_returns, make_vector_env
from era_utils.experiment import (
    ERAArgs,
    ExperimentArgs,
    RunLogger,
    evaluate,
    save_checkpoint,
    seed_everything,
    select_device,
)


@dataclass
class Args(ERAArgs, ExperimentArgs):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    log_every: int = 1_000
    """write losses and ERA curves every this many steps"""

    # SAC
    buffer_size: int = 1_000_000
    """replay buffer capacity"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 0.005
    """Polyak averaging coefficient of the target critics"""
    batch_size: int = 256
    """minibatch size"""
    learning_starts: int = 5_000
    """uniformly random actions before this step; updates start then"""
    updates_per_step: float = 2.0
    """gradient updates per environment step (the update-to-data ratio)"""
    policy_lr: float = 3e-4
    """Adam learning rate of the actor"""
    q_lr: float = 3e-4
    """AdamW learning rate of the critics (and of alpha for --no-era)"""
    hidden_dim: int = 512
    """width of the two hidden layers of actor and critics (ELU; critics with LayerNorm)"""

    # ERA (the other options: era_utils.experiment.ERAArgs)
    target_entropy_per_dim: float = 0.25
    """entropy floor per action dimension, in nats (the released SAC-ERA script's default)"""


def make_policy(args: Args, envs, device: torch.device) -> SACLayerNormPolicy:
    """The SB3 policy holding actor, critics and target critics: ERA or its plain-SAC twin, same networks."""
    common = dict(
        observation_space=envs.single_observation_space,
        action_space=envs.single_action_space,
        lr_schedule=lambda _: args.policy_lr,  # the policy's own optimisers are unused: this script builds its own
        net_arch=[args.hidden_dim, args.hidden_dim],
        activation_fn=nn.ELU,
        critic_layer_norm=True,
    )
    if not args.era:
        return SACLayerNormPolicy(**common).to(device)
    return ERASACPolicy(**common, **args.era_policy_kwargs()).to(device)


class SACUpdate:
    """One gradient step, in the released SAC-ERA order: critic, Polyak averaging, actor on the updated critic, then
    delta (ERA with ``--delta auto``) or the temperature alpha (``--no-era``).

    :param args: the run's arguments.
    :param policy: the SB3 policy holding actor, critics and target critics (see :func:`make_policy`).
    """

    def __init__(self, args: Args, policy: SACLayerNormPolicy) -> None:
        self.args, self.policy = args, policy
        self.actor, self.qf, self.qf_target = policy.actor, policy.critic, policy.critic_target
        self.era_delta = self.actor.era_std.era_delta if args.era else None
        actor_params = [p for p in self.actor.parameters() if self.era_delta is None or p is not self.era_delta.delta]
        self.actor_optimizer = optim.Adam(actor_params, lr=args.policy_lr)
        self.q_optimizer = optim.AdamW(self.qf.parameters(), lr=args.q_lr)
        self.delta_optimizer = None
        if self.era_delta is not None and self.era_delta.learnable:
            self.delta_optimizer = optim.Adam([self.era_delta.delta], lr=args.delta_lr)
        if not args.era:  # SAC's temperature, tuned towards entropy -D
            self.target_entropy = -float(policy.action_space.shape[0])
            self.log_alpha = torch.zeros(1, requires_grad=True, device=policy.device)
            self.alpha_optimizer = optim.Adam([self.log_alpha], lr=args.q_lr)

    def critic_loss(self, data: ReplayBufferSamples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clipped double-Q regression onto ``r + gamma * (1 - terminated) * min Q'(s', a')``, ``a' ~ pi(.|s')``."""
        with torch.no_grad():
            next_mean, next_log_std, _ = self.actor.get_action_dist_params(data.next_observations)
            if self.args.era:  # no entropy term in the target
                next_actions = era_action_distribution(next_mean, next_log_std).sample()
                min_qf_next = torch.min(*self.qf_target(data.next_observations, next_actions))
            else:
                next_actions, next_log_pi = self.actor.action_dist.log_prob_from_params(next_mean, next_log_std)
                min_qf_next = torch.min(*self.qf_target(data.next_observations, next_actions))
                min_qf_next = min_qf_next - self.log_alpha.exp() * next_log_pi.reshape(-1, 1)
            target_q = data.rewards + self.args.gamma * (1 - data.dones) * min_qf_next
        qf1, qf2 = self.qf(data.observations, data.actions)
        return F.mse_loss(qf1, target_q) + F.mse_loss(qf2, target_q), qf1, qf2

    def actor_loss(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``-min Q(s, a~)`` (ERA) or ``alpha log pi(a~|s) - min Q(s, a~)`` (SAC), ``a~`` reparameterised.

        :return: the loss, per-state entropies ``(B,)`` (detached) and the log stds ``(B, D)``.
        """
        mean, log_std, _ = self.actor.get_action_dist_params(observations)
        if self.args.era:
            dist = era_action_distribution(mean, log_std)  # truncated normal on [-1, 1], loc = tanh(mean)
            min_qf_pi = torch.min(*self.qf(observations, dist.rsample()))
            return -min_qf_pi.mean(), dist.entropy().sum(-1).detach(), log_std
        actions_pi, log_pi = self.actor.action_dist.log_prob_from_params(mean, log_std)  # tanh-Gaussian
        min_qf_pi = torch.min(*self.qf(observations, actions_pi))
        actor_loss = (self.log_alpha.exp().detach() * log_pi.reshape(-1, 1) - min_qf_pi).mean()
        return actor_loss, -log_pi.detach(), log_std  # -log pi: a single-sample entropy estimate

    def __call__(self, data: ReplayBufferSamples) -> dict[str, torch.Tensor]:
        """Apply one update; :return: detached tensors to log (no host synchronisation here)."""
        qf_loss, qf1, qf2 = self.critic_loss(data)
        self.q_optimizer.zero_grad()
        qf_loss.backward()
        self.q_optimizer.step()
        polyak_update(self.qf.parameters(), self.qf_target.parameters(), self.args.tau)

        actor_loss, entropy, log_std = self.actor_loss(data.observations)
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()

        stats = {
            "losses/qf_loss": qf_loss.detach() / 2.0,
            "losses/qf1_values": qf1.detach().mean(),
            "losses/qf2_values": qf2.detach().mean(),
            "losses/actor_loss": actor_loss.detach(),
            "policy/entropy": entropy.mean(),
            "policy/std": log_std.detach().exp().mean(),
        }
        if self.delta_optimizer is not None:  # ERA's delta grows while the bounded entropy is below the floor
            delta_loss = self.era_delta.loss(entropy)
            self.delta_optimizer.zero_grad()
            delta_loss.backward()
            self.delta_optimizer.step()
            self.era_delta.clamp_()
        if not self.args.era:
            alpha_loss = (-self.log_alpha.exp() * (-entropy + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad()
            alpha_loss.backward()
            self.alpha_optimizer.step()
            stats["losses/alpha"] = self.log_alpha.detach().exp().squeeze()
            stats["losses/alpha_loss"] = alpha_loss.detach()
        if self.era_delta is not None:
            stats["era/delta"] = self.era_delta.delta.detach()
        return stats


def main(args: Args) -> None:
    run_name = args.resolved_run_name()
    logger = RunLogger(args, args.log_dir, run_name, args.track, args.wandb_project_name, args.wandb_entity)
    seed_everything(args.seed, args.torch_deterministic)
    device = select_device(args.cuda)

    # ---------------------------------------------------------------------------------------------- setup
    envs = make_vector_env(args.env_id, args.num_envs, args.seed, args.capture_video, f"videos/{run_name}")
    policy = make_policy(args, envs, device)
    actor = policy.actor
    action_dim = envs.single_action_space.shape[0]

    update = SACUpdate(args, policy)

    rb = ReplayBuffer(
        args.buffer_size,
        envs.single_observation_space,
        envs.single_action_space,
        device,
        n_envs=args.num_envs,
        handle_timeout_termination=False,  # truncations are stored as not-done: the target bootstraps through them
    )
    updates_per_iteration = max(1, round(args.updates_per_step * args.num_envs))
    next_log, next_eval = args.log_every, args.eval_every or args.total_timesteps

    # ------------------------------------------------------------------------------------------- training
    rng = np.random.default_rng(args.seed)
    obs, _ = envs.reset(seed=args.seed)
    global_step = 0
    progress = tqdm(total=args.total_timesteps, disable=not args.progress, desc=run_name, unit="step")
    while global_step < args.total_timesteps:
        # Act: actions live in [-1, 1]^D (what the buffer stores) and are rescaled to the env's Box bounds.
        if global_step < args.learning_starts:
            actions = rng.uniform(-1.0, 1.0, size=(args.num_envs, action_dim)).astype(np.float32)
        else:
            policy.set_training_mode(False)  # batch-level ERA acts with its running normaliser
            with torch.no_grad():
                mean, log_std, _ = actor.get_action_dist_params(torch.as_tensor(obs, device=device))
                if args.era:
                    actions = era_action_distribution(mean, log_std).sample()
                else:
                    actions = actor.action_dist.actions_from_params(mean, log_std)
            actions = actions.cpu().numpy()
        next_obs, rewards, terminations, _, infos = envs.step(policy.unscale_action(actions))
        global_step += args.num_envs
        progress.update(args.num_envs)

        for episodic_return, episodic_length in episode_returns(infos):
            logger.episode(global_step, episodic_return, episodic_length)

        # Same-step autoreset: next_obs already starts the next episode where one ended; store the true final obs.
        real_next_obs = next_obs.copy()
        for idx in np.flatnonzero(infos.get("_final_obs", [])):
            real_next_obs[idx] = infos["final_obs"][idx]
        rb.add(obs, real_next_obs, actions, rewards, terminations, [{}] * args.num_envs)
        obs = next_obs

        if global_step <= args.learning_starts:
            continue
        policy.set_training_mode(True)
        for _ in range(updates_per_iteration):
            stats = update(rb.sample(args.batch_size))

        if global_step >= next_log or global_step >= args.total_timesteps:
            next_log += args.log_every
            scalars = {tag: value.item() for tag, value in stats.items()}
            scalars["charts/SPS"] = logger.steps_per_second(global_step)
            if args.era:
                scalars["era/target_entropy"] = update.era_delta.target_entropy
            logger.scalars(scalars, global_step)
            progress.set_postfix(sps=int(scalars["charts/SPS"]), entropy=f"{scalars['policy/entropy']:.2f}")

        if global_step >= next_eval or global_step >= args.total_timesteps:
            next_eval += args.eval_every or args.total_timesteps
            returns = evaluate(policy, args.env_id, args.eval_episodes, seed=args.seed + 10_000)
            logger.evaluation(global_step, returns)
            progress.write(f"step {global_step}: eval return {returns.mean():.1f} +- {returns.std():.1f}")
            if args.save_model:
                save_checkpoint(logger.run_dir, policy, args.env_id, global_step)

    if global_step <= args.learning_starts:  # a budget inside the warm-up still ends with an evaluation
        logger.evaluation(global_step, evaluate(policy, args.env_id, args.eval_episodes, seed=args.seed + 10_000))
        if args.save_model:
            save_checkpoint(logger.run_dir, policy, args.env_id, global_step)
    progress.close()
    envs.close()
    logger.close()


if __name__ == "__main__":
    main(tyro.cli(Args))
