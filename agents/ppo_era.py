"""PPO-ERA: PPO whose state-independent log-std is replaced by ERA's state-dependent, entropy-floored std.

Single-file, CleanRL-style (``ppo_continuous_action.py``). The actor-critic is the SB3-compatible
``ERAActorCriticPolicy`` from ``era_policies`` (a checkpoint loads with ``ERAActorCriticPolicy.load(path)``); the
rollout, GAE, clipped surrogate and value loss are written out below, unchanged from PPO (reference notes §7):

* pi(.|s)  truncated normal on [-1, 1]^D, loc = tanh(mean), std = exp(era_log_std(std_logits(s))), every state keeping
           Gaussian entropy >= D * (target_entropy_per_dim + delta); actions are rescaled to the Box bounds
* ratio    exp(log pi_new(a|s) - log pi_old(a|s)) with the ERA distribution's log-probs for both policies
* losses   clipped surrogate + vf_coef * (clipped) value loss; no entropy bonus (ent_coef = 0)

``--no-era`` runs plain PPO on the same code and networks: diagonal Gaussian with a state-independent log-std
parameter, actions clipped to the bounds. Both bootstrap through time-limit truncations.

    python agents/ppo_era.py --env-id Hopper-v5
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import tyro
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from torch import nn, optim
from tqdm import tqdm

from era_policies.sb3 import ERAActorCriticPolicy
from era_utils.envs import episode_returns, make_vector_env
from era_utils.experiment import (
    ERAArgs,
    ExperimentArgs,
    ObservationNormalizer,
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
    eval_every: int = 100_000
    """deterministic evaluation every this many steps (0: only at the end)"""

    # PPO
    learning_rate: float = 3e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0"""
    num_steps: int = 2048
    """steps per environment per rollout"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalised advantage estimation"""
    num_minibatches: int = 32
    """minibatches per epoch"""
    update_epochs: int = 10
    """epochs over each rollout"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_coef: float = 0.2
    """surrogate clipping coefficient"""
    clip_vloss: bool = True
    """clip the value loss like the surrogate"""
    ent_coef: float = 0.0
    """entropy bonus coefficient (keep 0 with ERA: the activation already enforces the entropy)"""
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

    # ERA (the other options: era_utils.experiment.ERAArgs)
    target_entropy_per_dim: float = -0.3
    """entropy floor per action dimension, in nats (reference notes §7)"""


def make_policy(args: Args, envs, device: torch.device) -> ActorCriticPolicy:
    """ERA actor-critic or its plain-PPO twin: same 2x64 tanh networks, orthogonal initialisation."""
    common = dict(
        observation_space=envs.single_observation_space,
        action_space=envs.single_action_space,
        lr_schedule=lambda _: args.learning_rate,  # the policy's own optimiser is unused: this script builds its own
        net_arch=dict(pi=[args.hidden_dim] * 2, vf=[args.hidden_dim] * 2),
        activation_fn=nn.Tanh,
    )
    if not args.era:
        return ActorCriticPolicy(**common, log_std_init=0.0).to(device)
    return ERAActorCriticPolicy(**common, **args.era_policy_kwargs()).to(device)


def main(args: Args) -> None:
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = math.ceil(args.total_timesteps / batch_size)
    run_name = args.resolved_run_name()
    logger = RunLogger(args, args.log_dir, run_name, args.track, args.wandb_project_name, args.wandb_entity)
    seed_everything(args.seed, args.torch_deterministic)
    device = select_device(args.cuda)

    # ---------------------------------------------------------------------------------------------- setup
    envs = make_vector_env(args.env_id, args.num_envs, args.seed, args.capture_video, f"videos/{run_name}")
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    policy = make_policy(args, envs, device)
    era_delta = policy.era_std.era_delta if args.era else None
    params = [p for p in policy.parameters() if era_delta is None or p is not era_delta.delta]
    optimizer = optim.Adam(params, lr=args.learning_rate, eps=1e-5)
    delta_optimizer = optim.Adam([era_delta.delta], lr=args.delta_lr) if era_delta and era_delta.learnable else None

    obs_normalizer = ObservationNormalizer(obs_space.shape) if args.normalize_observations else None
    return_rms, discounted_return = RunningMeanStd(shape=()), np.zeros(args.num_envs)

    def normalize_obs(raw: np.ndarray, update: bool) -> np.ndarray:
        if obs_normalizer is None:
            return raw.astype(np.float32)
        if update:
            obs_normalizer.update(raw)
        return obs_normalizer(raw)

    obs = torch.zeros((args.num_steps, args.num_envs, *obs_space.shape), device=device)
    actions = torch.zeros((args.num_steps, args.num_envs, *action_space.shape), device=device)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = torch.zeros((args.num_steps, args.num_envs), device=device)
    dones = torch.zeros((args.num_steps, args.num_envs), device=device)
    values = torch.zeros((args.num_steps, args.num_envs), device=device)

    # ------------------------------------------------------------------------------------------- training
    global_step, next_eval = 0, args.eval_every or num_iterations * batch_size
    raw_obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(normalize_obs(raw_obs, update=True), device=device)
    next_done = torch.zeros(args.num_envs, device=device)
    progress = tqdm(total=num_iterations * batch_size, disable=not args.progress, desc=run_name, unit="step")
    for iteration in range(1, num_iterations + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate

        # Rollout. Actions are sampled in the policy's space ([-1, 1] for ERA) and mapped to the env's bounds.
        policy.set_training_mode(False)
        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step], dones[step] = next_obs, next_done
            with torch.no_grad():
                action, value, logprob = policy(next_obs)
            actions[step], values[step], logprobs[step] = action, value.flatten(), logprob
            action_np = action.cpu().numpy()
            # ERA rescales [-1, 1] to the bounds; the Gaussian baseline clips, as SB3 and CleanRL do.
            if args.era:
                env_action = policy.unscale_action(action_np)
            else:
                env_action = action_np.clip(action_space.low, action_space.high)
            raw_obs, reward, terminations, truncations, infos = envs.step(env_action)

            episode_over = np.logical_or(terminations, truncations)
            if args.normalize_rewards:
                discounted_return = discounted_return * args.gamma + reward
                return_rms.update(discounted_return)
                reward = reward / np.sqrt(return_rms.var + 1e-8)
                discounted_return[episode_over] = 0.0
            # Time-limit truncation is not a terminal state: bootstrap from the value of the true final observation.
            truncated_only = np.flatnonzero(truncations & ~terminations)
            if truncated_only.size:
                final_obs = np.stack([infos["final_obs"][i] for i in truncated_only])
                with torch.no_grad():
                    final_obs_t = torch.as_tensor(normalize_obs(final_obs, update=False), device=device)
                    final_values = policy.predict_values(final_obs_t).flatten().cpu().numpy()
                reward = reward.copy()
                reward[truncated_only] += args.gamma * final_values
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32, device=device)
            next_obs = torch.as_tensor(normalize_obs(raw_obs, update=True), device=device)
            next_done = torch.as_tensor(episode_over, dtype=torch.float32, device=device)
            for episodic_return, episodic_length in episode_returns(infos):
                logger.episode(global_step, episodic_return, episodic_length)
        progress.update(batch_size)

        # Generalised advantage estimation.
        with torch.no_grad():
            next_value = policy.predict_values(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            last_gae_lambda = 0
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    next_non_terminal, next_values = 1.0 - next_done, next_value
                else:
                    next_non_terminal, next_values = 1.0 - dones[t + 1], values[t + 1]
                td_error = rewards[t] + args.gamma * next_values * next_non_terminal - values[t]
                last_gae_lambda = td_error + args.gamma * args.gae_lambda * next_non_terminal * last_gae_lambda
                advantages[t] = last_gae_lambda
            returns = advantages + values

        b_obs = obs.reshape((-1, *obs_space.shape))
        b_logprobs, b_actions = logprobs.reshape(-1), actions.reshape((-1, *action_space.shape))
        b_advantages, b_returns, b_values = advantages.reshape(-1), returns.reshape(-1), values.reshape(-1)

        # Optimise the clipped surrogate and the value loss.
        policy.set_training_mode(True)
        b_inds, clipfracs = np.arange(batch_size), []
        for _epoch in range(args.update_epochs):
            np.random.shuffle(b_inds)  # noqa: NPY002 - seeded by seed_everything, as in CleanRL
            for start in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[start : start + minibatch_size]
                distribution = policy.get_distribution(b_obs[mb_inds])  # ERA: truncated normal with the ERA std
                newlogprob = distribution.log_prob(b_actions[mb_inds])
                entropy = distribution.entropy()
                newvalue = policy.predict_values(b_obs[mb_inds]).view(-1)
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()
                with torch.no_grad():
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef
                    )
                    v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - b_returns[mb_inds]) ** 2).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()

                # ERA's delta: grows while the bounded policy's entropy is below the floor (reference notes §4).
                if delta_optimizer is not None:
                    delta_loss = era_delta.loss(entropy)
                    delta_optimizer.zero_grad()
                    delta_loss.backward()
                    delta_optimizer.step()
                    era_delta.clamp_()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
        var_y = np.var(y_true)
        stats = {
            "charts/learning_rate": optimizer.param_groups[0]["lr"],
            "charts/SPS": logger.steps_per_second(global_step),
            "losses/value_loss": v_loss.item(),
            "losses/policy_loss": pg_loss.item(),
            "losses/entropy": entropy_loss.item(),
            "losses/old_approx_kl": old_approx_kl.item(),
            "losses/approx_kl": approx_kl.item(),
            "losses/clipfrac": float(np.mean(clipfracs)),
            "losses/explained_variance": np.nan if var_y == 0 else float(1 - np.var(y_true - y_pred) / var_y),
            "policy/entropy": entropy_loss.item(),
            "policy/std": distribution.distribution.scale.mean().item(),
        }
        if args.era:
            stats["era/target_entropy"] = era_delta.target_entropy
            stats["era/delta"] = era_delta.delta.item()
        logger.scalars(stats, global_step)
        progress.set_postfix(sps=int(stats["charts/SPS"]), entropy=f"{entropy_loss.item():.2f}")

        if global_step >= next_eval or iteration == num_iterations:
            next_eval += args.eval_every or num_iterations * batch_size
            returns_eval = evaluate(policy, args.env_id, args.eval_episodes, args.seed + 10_000, obs_normalizer)
            logger.evaluation(global_step, returns_eval)
            progress.write(f"step {global_step}: eval return {returns_eval.mean():.1f} +- {returns_eval.std():.1f}")
            if args.save_model:
                save_checkpoint(logger.run_dir, policy, args.env_id, global_step, obs_normalizer)

    progress.close()
    envs.close()
    logger.close()


if __name__ == "__main__":
    main(tyro.cli(Args))
