"""PPO-ERA (and with ``--no-era`` plain PPO) with several seeds trained together in one process (``--num-seeds N``).

Seeds ``seed, seed+1, ..., seed+N-1`` each have their own networks, optimiser states, delta, observation and reward
normalisers, rollout storage, minibatch permutations and environments; they share nothing but the process. Their
parameters are stacked along a leading seed axis, and every step runs ``ppo_era.py``'s own pieces (imported, not
copied) for all seeds at once through ``torch.func``: ``vmap`` over ``functional_call`` with each seed's parameters,
of :meth:`ppo_era.Agent.act` in the rollout, :func:`ppo_era.advantages_and_returns` and :func:`ppo_era.ppo_loss`.

Why ``torch.func`` and not ensemble layers (a Linear with a leading seed axis): the stacked path then runs exactly the
single-seed modules and loss lines, so the two agents cannot drift apart, and each seed exports to the same SB3 policy
by plain ``load_state_dict`` of its slice. Independence holds by construction and is tested:

* each seed's loss is computed under ``vmap`` from its own parameters and minibatch, so PPO's advantage normalisation
  is per minibatch of one seed; the update backpropagates the *sum* of the seeds' losses, whose gradient with respect
  to seed ``i``'s parameters is seed ``i``'s own gradient (nothing is averaged across seeds);
* ``--max-grad-norm`` clips each seed's gradient by its own norm (over its slice of every stacked parameter), as
  ``clip_grad_norm_`` over the stacked tensors would mix the seeds;
* Adam acts elementwise, so one optimiser over the stacked parameters is N independent optimisers (built with the
  single-seed optimisers' settings, :func:`ppo_era.make_optimizers`); the learning rate anneals on one schedule, the
  same for every seed;
* delta's loss and its projection onto ``[0, max_delta]`` are ``EntropyDelta``'s own, per seed;
* each seed draws its minibatch permutations from its own generator, seeded with its seed.

Every seed writes its own run directory, laid out as a single-seed run's (``config.json`` with its own ``seed``,
``evaluations.csv``, ``episodes.csv``, ``entropy.csv``, TensorBoard, ``policy.pt`` with ``--save-model``), so
``agents/evaluate.py`` and the benchmark aggregation read it unchanged. ``--num-seeds 1`` is ``ppo_era.py`` itself
(this script hands the run to it), so a single seed stays today's agent bit for bit.

Every seed also writes its own ``checkpoint.pt`` in ``ppo_era.py``'s format (atomically; its slice of the stacked
parameters and optimiser states, its normalisers, and its permutation generator's state); ``--resume`` of the first
seed's run directory continues all seeds, which must be at the same step. A seed whose environment fails, or whose
losses or policy are not finite, stops the run with a message naming it; the other seeds' logs are flushed and their
checkpoints stay as last written.

Not stacked: ``--target-kl`` (each seed would stop its epochs at another time), batch-level ERA (its running
normaliser is updated in place) and ``--capture-video``; they are refused with a message (run ``ppo_era.py`` per seed
for them).

    python agents/ppo_era_seeds.py --env-id Hopper-v5 --num-seeds 3 --seed 1           # seeds 1, 2, 3
    python agents/ppo_era_seeds.py --no-era --num-seeds 3 --run-dirs "runs/hopper__{seed}"
    python agents/ppo_era_seeds.py --resume runs/hopper__1                            # continue all three
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ppo_era
import torch
from ppo_era import (
    Agent,
    RewardScaler,
    advantages_and_returns,
    make_optimizers,
    observation_tensor,
    ppo_loss,
    sb3_policy,
    write_logs,
)
from torch import Tensor, nn, optim
from torch.func import functional_call, vmap

from era_utils.envs import episode_returns, make_vector_env
from era_utils.experiment import (
    ObservationNormalizer,
    StopOnSignal,
    capture_rng_state,
    evaluate,
    parse_args,
    restore_rng_state,
    save_policy,
    seed_everything,
    select_device,
    start_run,
)
from era_utils.seeds import SeedsArgs, seed_optimizer_state, stack_optimizer_states


@dataclass
class Args(ppo_era.Args, SeedsArgs):
    exp_name: str = "ppo_era"
    """name of this experiment (part of each seed's run name; the algorithm is ppo_era's)"""

    def check(self) -> None:
        super().check()
        self.check_seeds(
            "ppo_era.py",
            unsupported=(
                ("--target-kl", self.target_kl is not None, "each seed would stop its epochs at another time"),
                ("--entropy-level batch", self.entropy_level == "batch", "its running normaliser is updated in place"),
                ("--capture-video", self.capture_video, "not yet"),
            ),
        )


# ============================================================================================ ALGORITHM: stacking
class _SeedAgent(nn.Module):
    """One seed's :class:`~ppo_era.Agent` and ``ppo_era``'s functions on it; :func:`torch.func.functional_call` swaps
    in a seed's parameters and buffers."""

    def __init__(self, agent: Agent, args: Args) -> None:
        super().__init__()
        self.agent, self.args = agent, args

    def forward(self, call: str, *inputs: Any) -> Any:
        if call == "loss":
            loss, _, stats = ppo_loss(self.agent, self.args, *inputs)  # the entropy, where computed, is in stats
            return loss, stats
        if call == "act":
            return self.agent.act(*inputs)
        if call == "value":
            return self.agent.get_value(*inputs)
        return self.agent.era_std.era_delta.loss(*inputs)  # "delta"


class StackedPPO:
    """The networks and optimisers of N seeds, stacked, and their steps (see the module docstring).

    :param agents: one single-seed :class:`~ppo_era.Agent` per seed; the first one serves as the template that each
        seed's parameters are swapped into.
    :param optimizers: each seed's ``(optimizer, delta_optimizer)`` from :func:`ppo_era.make_optimizers` (their states,
        empty for new agents or a checkpoint's on resume, are stacked).
    :param args: the run's options.
    :param randomness: ``vmap``'s randomness in :meth:`act`: ``"different"`` samples each seed's actions
        independently.
    """

    def __init__(
        self,
        agents: list[Agent],
        optimizers: list[tuple[optim.Optimizer, optim.Optimizer | None]],
        args: Args,
        randomness: str = "different",
    ) -> None:
        self.args, self.num_seeds = args, len(agents)
        self.template = _SeedAgent(agents[0], args)
        self.params: dict[str, Tensor] = {}
        for name, param in agents[0].named_parameters():  # detached leaves; trained where the single seed's are
            stacked = torch.stack([dict(agent.named_parameters())[name] for agent in agents]).detach()
            self.params["agent." + name] = stacked.requires_grad_(param.requires_grad)
        for name, _ in agents[0].named_buffers():
            self.params["agent." + name] = torch.stack([dict(agent.named_buffers())[name] for agent in agents])
        names = {id(param): "agent." + name for name, param in agents[0].named_parameters()}

        def stacked_like(seed_optimizers: list[optim.Optimizer]) -> optim.Optimizer:
            (group,) = seed_optimizers[0].param_groups
            params = [self.params[names[id(param)]] for param in group["params"]]
            optimizer = type(seed_optimizers[0])(params, **seed_optimizers[0].defaults)
            optimizer.load_state_dict(stack_optimizer_states(seed_optimizers))
            return optimizer

        self.optimizer = stacked_like([optimizer for optimizer, _ in optimizers])
        self.trained = self.optimizer.param_groups[0]["params"]
        self.delta_optimizer = None if optimizers[0][1] is None else stacked_like([d for _, d in optimizers])
        if self.delta_optimizer is not None:
            self.delta = self.params["agent.era_std.era_delta.delta"]
            self.max_delta = agents[0].era_std.era_delta.max_delta
        # --compile compiles the vmapped loss (forward and backward) and the vmapped acting step, one graph each, as
        # ppo_era.py compiles ppo_loss and Agent.act.
        self._loss = vmap(functools.partial(self._call, "loss"))
        self._act = vmap(functools.partial(self._call, "act"), randomness=randomness)
        if args.compile:
            self._loss = torch.compile(self._loss, fullgraph=True)
            self._act = torch.compile(self._act, fullgraph=True)

    def _call(self, call: str, params: dict[str, Tensor], *inputs: Any) -> Any:
        return functional_call(self.template, params, (call, *inputs), strict=False, tie_weights=False)

    def update(self, *minibatch: Tensor) -> dict[str, Tensor]:
        """``ppo_era.make_update``'s step for every seed; ``minibatch``: each field ``(N, M, ...)``.

        :return: ``make_update``'s statistics with a leading seed axis.
        """
        loss, stats = self._loss(self.params, *minibatch)
        self.optimizer.zero_grad()
        loss.sum().backward()  # d(sum)/d(seed i's parameters) = seed i's own gradient
        clip_grad_norm_per_seed_(self.trained, self.args.max_grad_norm)
        self.optimizer.step()
        if self.delta_optimizer is not None:  # EntropyDelta.update per seed: loss, step, projection
            delta_loss = vmap(functools.partial(self._call, "delta"))(self.params, stats["entropy"])
            self.delta_optimizer.zero_grad()
            delta_loss.sum().backward()
            self.delta_optimizer.step()
            with torch.no_grad():
                self.delta.clamp_(0.0, self.max_delta)  # EntropyDelta.clamp_, elementwise over the seeds
            stats["losses/delta_loss"] = delta_loss.detach()
        return stats

    @torch.no_grad()
    def act(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`ppo_era.Agent.act` of every seed, ``obs``: ``(N, num_envs, obs_dim)``."""
        return self._act(self.params, obs)

    @torch.no_grad()
    def value(self, obs: Tensor, index: int | None = None) -> Tensor:
        """``V(obs)`` of every seed (``obs``: ``(N, B, obs_dim)``), or of seed ``index`` alone (``obs``: ``(B,
        obs_dim)``)."""
        if index is None:
            return vmap(functools.partial(self._call, "value"))(self.params, obs)
        return self._call("value", {name: value[index] for name, value in self.params.items()}, obs)

    @torch.no_grad()
    def write_to(self, agent: Agent, index: int) -> None:
        """Copy seed ``index``'s parameters and buffers into a single-seed agent (to evaluate, log, export or
        checkpoint that seed as ``ppo_era.py`` would)."""
        for name, tensor in (*agent.named_parameters(), *agent.named_buffers()):
            tensor.copy_(self.params["agent." + name][index])

    def write_optimizers_to(self, optimizers: tuple[optim.Optimizer, optim.Optimizer | None], index: int) -> None:
        """Load seed ``index``'s optimiser states into its single-seed optimisers (for its checkpoint)."""
        optimizer, delta_optimizer = optimizers
        optimizer.load_state_dict(seed_optimizer_state(self.optimizer, index))
        if delta_optimizer is not None:
            delta_optimizer.load_state_dict(seed_optimizer_state(self.delta_optimizer, index))


@torch.no_grad()
def clip_grad_norm_per_seed_(params: list[Tensor], max_norm: float) -> Tensor:
    """``nn.utils.clip_grad_norm_`` of each seed on its own: every gradient ``(N, ...)`` is scaled by its seed's
    ``min(1, max_norm / (norm + 1e-6))``, the norm taken over that seed's slice of all of them.

    :return: the seeds' gradient norms before clipping, ``(N,)``.
    """
    grads = [param.grad for param in params if param.grad is not None]
    norms = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.reshape(len(g), -1), dim=1) for g in grads]), dim=0
    )
    scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for grad in grads:
        grad.mul_(scale.view(-1, *[1] * (grad.dim() - 1)))
    return norms


def permutations(generators: list[torch.Generator], batch_size: int, device: torch.device) -> Tensor:
    """An epoch's order of the batch for every seed, ``(N, batch_size)``, each from its seed's own generator."""
    return torch.stack([torch.randperm(batch_size, device=device, generator=generator) for generator in generators])


def minibatch(batch: tuple[Tensor, ...], indices: Tensor) -> tuple[Tensor, ...]:
    """Each seed's own minibatch: ``batch`` fields ``(N, B, ...)``, ``indices`` ``(N, M)`` -> fields ``(N, M, ...)``."""
    seeds = torch.arange(indices.shape[0], device=indices.device).unsqueeze(1)
    return tuple(field[seeds, indices] for field in batch)


# ================================================================================================= training loop
def main(args: Args) -> None:
    args.check()
    if args.num_seeds == 1:
        ppo_era.main(args)  # today's single-seed agent, unchanged
        return
    device = select_device(args.cuda)
    seeds = args.for_seeds()
    num_seeds = len(seeds)
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = math.ceil(args.total_timesteps / batch_size)

    # ------------------------------------------------------------------------------------------- plumbing: setup
    # Envs and networks first, so that a bad env or a network too large fails before any run directory exists.
    envs, agents = [], []
    for seed_args in seeds:  # each seed's networks are initialised as its single-seed run's would be
        seed_everything(seed_args.seed, args.torch_deterministic)
        envs.append(make_vector_env(args.env_id, args.num_envs, seed_args.seed))
        obs_space, action_space = envs[0].single_observation_space, envs[0].single_action_space
        try:
            agents.append(Agent(int(np.prod(obs_space.shape)), action_space.low, action_space.high, args).to(device))
        except (RuntimeError, MemoryError) as err:
            raise SystemExit(
                f"error: --hidden-dim {args.hidden_dim}: the networks do not fit in memory ({err})"
            ) from err
    policy = sb3_policy(args, obs_space, action_space).to(device)  # evaluation and --save-model, one seed at a time
    if args.resume is None:  # all or none: no seed's run directory is created while another's exists
        for seed_args in seeds:
            if (Path(seed_args.log_dir) / seed_args.run_name).exists():
                raise SystemExit(f"error: run directory {Path(seed_args.log_dir) / seed_args.run_name} already exists")
    # A resume's first seed is the run parse_args checked (and may hold locked): start that very one.
    started = [start_run(args if args.resume is not None and i == 0 else s) for i, s in enumerate(seeds)]
    runs, checkpoints = [run for run, _, _ in started], [checkpoint for _, _, checkpoint in started]
    optimizers = [make_optimizers(agent, args, device) for agent in agents]
    obs_normalizers = [ObservationNormalizer(obs_space.shape) if args.normalize_observations else None for _ in seeds]
    reward_scalers = [RewardScaler(args.num_envs, args.gamma) for _ in seeds]
    generators = [torch.Generator(device).manual_seed(seed_args.seed) for seed_args in seeds]  # minibatch permutations

    global_step, start_iteration = 0, 0
    if checkpoints[0] is not None:  # every seed's checkpoint, as ppo_era.py writes it, at one and the same step
        steps = {s.seed: checkpoint["global_step"] for s, checkpoint in zip(seeds, checkpoints, strict=True)}
        if len(set(steps.values())) != 1:
            raise SystemExit(f"error: --resume: the seeds' checkpoints are at different steps {steps}; nothing changed")
        for i, checkpoint in enumerate(checkpoints):
            agents[i].load_state_dict(checkpoint["agent"])
            optimizers[i][0].load_state_dict(checkpoint["optimizer"])
            if optimizers[i][1] is not None:
                optimizers[i][1].load_state_dict(checkpoint["delta_optimizer"])
            if obs_normalizers[i] is not None:
                obs_normalizers[i].load_state_dict(checkpoint["obs_normalizer"])
            reward_scalers[i].load_state(checkpoint["return_rms"])
            generators[i].set_state(checkpoint["minibatch_rng"])
        restore_rng_state(checkpoints[0]["rng"])
        global_step, start_iteration = checkpoints[0]["global_step"], checkpoints[0]["iteration"]
    stacked = StackedPPO(agents, optimizers, args)

    def save_checkpoints(iteration: int) -> None:  # each seed's own checkpoint.pt, in ppo_era.py's format (atomic)
        rng_state = capture_rng_state()
        for i, (agent, run) in enumerate(zip(agents, runs, strict=True)):
            stacked.write_to(agent, i)
            stacked.write_optimizers_to(optimizers[i], i)
            optimizer, delta_optimizer = optimizers[i]
            run.save_checkpoint(
                {
                    "global_step": global_step,
                    "iteration": iteration,
                    "agent": agent.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "delta_optimizer": None if delta_optimizer is None else delta_optimizer.state_dict(),
                    "obs_normalizer": None if obs_normalizers[i] is None else obs_normalizers[i].state_dict(),
                    "return_rms": reward_scalers[i].state(),
                    "rng": rng_state,
                    "minibatch_rng": generators[i].get_state(),
                }
            )

    def close() -> None:
        for run, env in zip(runs, envs, strict=True):
            env.close()
            run.close()

    def failed(index: int, message: str) -> SystemExit:  # the other seeds' logs are flushed and kept
        close()
        return SystemExit(f"error: seed {seeds[index].seed} ({runs[index].run_dir}): {message}")

    def normalize_obs(index: int, raw: np.ndarray, update: bool) -> Tensor:
        return observation_tensor(obs_normalizers[index], raw, update, device)

    # Rollout storage, each seed's along the leading axis, on the training device.
    obs = torch.zeros((num_seeds, args.num_steps, args.num_envs, *obs_space.shape), device=device)
    actions = torch.zeros((num_seeds, args.num_steps, args.num_envs, *action_space.shape), device=device)
    logprobs = torch.zeros((num_seeds, args.num_steps, args.num_envs), device=device)
    rewards = torch.zeros((num_seeds, args.num_steps, args.num_envs), device=device)
    dones = torch.zeros((num_seeds, args.num_steps, args.num_envs), device=device)
    values = torch.zeros((num_seeds, args.num_steps, args.num_envs), device=device)

    eval_every = args.eval_every or num_iterations * batch_size
    next_eval = (global_step // eval_every + 1) * eval_every
    checkpoint_every = args.checkpoint_every or math.inf
    next_checkpoint = (global_step // checkpoint_every + 1) * checkpoint_every
    # A resumed run restarts its episodes (simulator states are not saved), from seeds it has not used.
    next_obs = torch.stack(
        [
            normalize_obs(i, env.reset(seed=s.seed + global_step)[0], update=True)
            for i, (env, s) in enumerate(zip(envs, seeds, strict=True))
        ]
    )
    next_done = torch.zeros((num_seeds, args.num_envs), device=device)
    sps_clock = (global_step, time.perf_counter())
    gae = vmap(functools.partial(advantages_and_returns, args))
    # -------------------------------------------------------------------------------------- ALGORITHM: the loop
    with StopOnSignal() as stop:
        for iteration in range(start_iteration + 1, num_iterations + 1):
            if args.anneal_lr:  # one schedule for every seed
                stacked.optimizer.param_groups[0]["lr"] = (
                    1.0 - (iteration - 1.0) / num_iterations
                ) * args.learning_rate

            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[:, step], dones[:, step] = next_obs, next_done
                action, logprobs[:, step], values[:, step] = stacked.act(next_obs)
                actions[:, step] = action
                env_actions = agents[0].env_action(action).cpu().numpy()  # the bounds, the same for every seed
                step_obs, step_done = [], []
                for i, (env, run) in enumerate(zip(envs, runs, strict=True)):
                    try:
                        raw_obs, reward, terminations, truncations, infos = env.step(env_actions[i])
                    except Exception as err:
                        raise failed(i, f"its environment failed at step {global_step}: {err!r}") from err
                    episode_over = np.logical_or(terminations, truncations)
                    if args.normalize_rewards:
                        reward = reward_scalers[i](reward, episode_over)
                    rewards[i, step] = torch.as_tensor(reward, dtype=torch.float32, device=device)
                    # Time-limit truncation is not a terminal state: bootstrap from the value of the true final obs.
                    truncated_only = np.flatnonzero(truncations & ~terminations)
                    if truncated_only.size:
                        final = normalize_obs(
                            i, np.stack([infos["final_obs"][j] for j in truncated_only]), update=False
                        )
                        rewards[i, step, truncated_only] += args.gamma * stacked.value(final, index=i)
                    step_obs.append(normalize_obs(i, raw_obs, update=True))
                    step_done.append(torch.as_tensor(episode_over, dtype=torch.float32, device=device))
                    for episodic_return, episodic_length in episode_returns(infos):
                        run.episode(global_step, episodic_return, episodic_length)
                next_obs, next_done = torch.stack(step_obs), torch.stack(step_done)

            advantages, returns = gae(rewards, values, dones, stacked.value(next_obs), next_done)
            batch = (
                obs.reshape((num_seeds, -1, *obs_space.shape)),
                actions.reshape((num_seeds, -1, *action_space.shape)),
                logprobs.reshape(num_seeds, -1),
                advantages.reshape(num_seeds, -1),
                returns.reshape(num_seeds, -1),
                values.reshape(num_seeds, -1),
            )

            clipfracs = []
            for _epoch in range(args.update_epochs):
                b_inds = permutations(generators, batch_size, device)
                for start in range(0, batch_size, minibatch_size):
                    stats = stacked.update(*minibatch(batch, b_inds[:, start : start + minibatch_size]))
                    clipfracs.append(stats["losses/clipfrac"])

            # ------------------------------------------------- plumbing: logs, evaluation, checkpoints, signals
            sps = (global_step - sps_clock[0]) / max(time.perf_counter() - sps_clock[1], 1e-9)
            if iteration == start_iteration + 1:  # from now on without the first iteration's warm-up and compilation
                sps_clock = (global_step, time.perf_counter())
            evaluate_now = global_step >= next_eval or iteration == num_iterations
            if evaluate_now:
                next_eval = (global_step // eval_every + 1) * eval_every
            for i, (agent, run, seed_args) in enumerate(zip(agents, runs, seeds, strict=True)):
                stacked.write_to(agent, i)
                seed_stats = {name: value[i] for name, value in stats.items()}
                policy_values = (seed_stats["losses/policy_loss"], seed_stats["losses/value_loss"], seed_stats["mean"])
                if not all(bool(torch.isfinite(value).all()) for value in policy_values):
                    raise failed(i, f"non-finite losses or policy means at step {global_step}")
                seed_stats["charts/learning_rate"] = stacked.optimizer.param_groups[0]["lr"]
                seed_stats["charts/SPS"] = sps * num_seeds  # the steps of all seeds
                write_logs(
                    run, agent, seed_stats, [clipfrac[i] for clipfrac in clipfracs], [b[i] for b in batch], global_step
                )
                if evaluate_now:
                    policy.load_state_dict(agent.state_dict())
                    returns_eval = evaluate(
                        policy, args.env_id, args.eval_episodes, seed_args.seed + 10_000, obs_normalizers[i]
                    )
                    run.evaluation(global_step, returns_eval)
                    if args.save_model:
                        save_policy(run.run_dir, policy, args.env_id, global_step, obs_normalizers[i])

            finished = iteration == num_iterations
            if stop.requested or finished or global_step >= next_checkpoint:
                next_checkpoint = (global_step // checkpoint_every + 1) * checkpoint_every
                save_checkpoints(iteration)
            if stop.requested and not finished:
                print(f"stopped at step {global_step}; continue with --resume {runs[0].run_dir}")
                close()
                raise SystemExit(stop.exit_code)

    close()


if __name__ == "__main__":
    main(parse_args(Args))
