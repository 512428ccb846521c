"""SAC-ERA with several seeds trained together in one process (``--num-seeds N``), as the released SAC-ERA code
trains its five seeds at once.

Seeds ``seed, seed+1, ..., seed+N-1`` each have their own networks, optimiser states, delta (with ``--no-era``:
temperature alpha), replay buffer and environments; they share nothing but the process. Their parameters are stacked
along a leading seed axis, and one update runs the single-seed losses of ``sac_era.py`` (:func:`sac_era.make_losses`,
imported, not copied) for all seeds at once through ``torch.func``: ``vmap`` over ``functional_call`` with each seed's
parameters. Where a
single-seed update is dominated by the fixed cost of each kernel launch (small networks, above all on a GPU), N
stacked seeds pay it once; where the matrix products dominate (2 x 256 networks on one CPU thread), stacking saves
little, as a batched product costs what its N products cost.

Why ``torch.func`` and not ensemble layers (a Linear with a leading seed axis): the stacked path then runs exactly the
single-seed modules and loss lines, so the two agents cannot drift apart, and each seed exports to the same
``ERASACPolicy`` by plain ``load_state_dict`` of its slice. Independence holds by construction and is tested:

* each seed's losses are computed under ``vmap`` from its own parameters and batch; the update backpropagates their
  *sum*, whose gradient with respect to seed ``i``'s parameters is seed ``i``'s own gradient (nothing is averaged
  across seeds);
* Adam and AdamW act elementwise, so one optimiser over the stacked parameters is N independent optimisers (no
  gradient-norm clipping here, which would reduce across parameters);
* delta's loss and its projection onto ``[0, max_delta]`` are ``EntropyDelta``'s own, per seed; with ``--no-era``
  (plain SAC) each seed has its own log alpha, stepped by ``sac_era.temperature_loss`` on its own entropy estimate;
* every seed draws its own noise (``vmap``'s ``randomness="different"``): the no-era tanh-Gaussian samples with
  ``randn_like`` (``sac_era.VmapNormal``), which vmap draws per seed.

Every seed writes its own run directory, laid out as a single-seed run's (``config.json`` with its own ``seed``,
``evaluations.csv``, ``episodes.csv``, ``entropy.csv``, TensorBoard, ``policy.pt`` with ``--save-model``), so
``agents/evaluate.py`` and the benchmark aggregation read it unchanged. ``--num-seeds 1`` is ``sac_era.py`` itself
(this script hands the run to it), so a single seed stays today's agent bit for bit.

Every seed also writes its own ``checkpoint.pt`` in ``sac_era.py``'s format (atomically, its slice of the stacked
parameters and optimiser states); ``--resume`` of the first seed's run directory continues all seeds, which must be at
the same step. A seed whose environment fails, or whose logged losses are not finite, stops the run with a message
naming it; the other seeds' logs are flushed and their checkpoints stay as last written.

``--compile`` compiles each vmapped loss, as ``sac_era.py``'s; ``--cudagraphs`` (CUDA only) captures the whole stacked
update, optimiser steps included, in one CUDA graph with ``sac_era.py``'s
:class:`~era_utils.cudagraphs.CudaGraphFunction`: every seed's noise is drawn inside the graph from the default
generator (replays draw fresh numbers, as eager calls would), the stacked optimisers are capturable, and each update's
batch is copied into the graph's static input.

Batch-level ERA (``sac_era_batch.py``) with several seeds is ``agents/sac_era_batch_seeds.py``: each seed's running
normaliser (``batch_era``'s buffers) is stacked with its parameters and updated in place, per seed, by the vmapped
forward passes, as a single seed's is by its own; updates run in training mode and acting in eval mode, as in
``sac_era.py``. Not (yet) stacked: ``--capture-video`` (refused with a message; run ``sac_era.py`` per seed for it).

    python agents/sac_era_seeds.py --env-id HalfCheetah-v5 --num-seeds 3 --seed 1     # seeds 1, 2, 3
    python agents/sac_era_seeds.py --num-seeds 3 --run-dirs "runs/cheetah__{seed}"     # runs/cheetah__1, ...
    python agents/sac_era_seeds.py --resume runs/cheetah__1                           # continue all three
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import sac_era
import torch
from sac_era import Agent, build_agent, export_policy, log_values, make_losses, temperature_loss
from torch import Tensor, nn, optim
from torch.func import functional_call, stack_module_state, vmap

from era_utils.cudagraphs import CudaGraphFunction
from era_utils.envs import episode_returns, make_vector_env
from era_utils.experiment import (
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
from era_utils.replay import ReplayBatch, ReplayBuffer
from era_utils.seeds import SeedsArgs, seed_optimizer_state, stack_optimizer_states


@dataclass
class Args(sac_era.Args, SeedsArgs):
    exp_name: str = "sac_era"
    """name of this experiment (part of each seed's run name; the algorithm is sac_era's)"""
    single_agent: ClassVar[str] = "sac_era.py"  # named in the messages (sac_era_batch_seeds.py: sac_era_batch.py)

    def check(self) -> None:
        super().check()
        self.check_seeds(
            self.single_agent,
            unsupported=(("--capture-video", self.capture_video, "not yet"),),
        )


# ============================================================================================ ALGORITHM: stacking
class _SeedLosses(nn.Module):
    """One seed's networks and the single-seed losses on them; :func:`torch.func.functional_call` swaps in a seed's
    parameters (the loss closures see the swap, as they hold these very modules)."""

    def __init__(self, agent: Agent, args: Args) -> None:
        super().__init__()
        self.actor, self.qf, self.qf_target = agent.actor, agent.qf, agent.qf_target
        self.critic_loss, self.actor_loss = make_losses(agent.actor, agent.qf, agent.qf_target, args)

    def forward(self, loss: str, *inputs: Any) -> Any:
        if loss == "delta":
            return self.actor.era_std.era_delta.loss(*inputs)
        if loss == "alpha":  # --no-era; the seed's own log alpha is an input, not one of the modules' parameters
            return temperature_loss(*inputs, self.actor.target_entropy)
        data, *alpha = inputs  # --no-era: the seed's temperature; ERA: none (vmap maps tensors, not None)
        return (self.critic_loss if loss == "critic" else self.actor_loss)(data, alpha[0] if alpha else None)


def stack_parameters(modules: list[nn.Module], prefix: str) -> dict[str, Tensor]:
    """The modules' parameters and buffers stacked along a new leading seed axis, as detached leaf tensors (those of
    parameters require grad), keyed by ``prefix + name``."""
    params, buffers = stack_module_state(modules)
    stacked = {prefix + name: value.detach().requires_grad_(True) for name, value in params.items()}
    stacked.update({prefix + name: value for name, value in buffers.items()})
    return stacked


class StackedSAC:
    """The networks and optimisers of N seeds, stacked, and their update (see the module docstring).

    :param agents: one single-seed :class:`~sac_era.Agent` per seed (built by :func:`~sac_era.build_agent`); the
        first one's modules serve as the template that each seed's parameters are swapped into.
    :param args: the run's options.
    :param randomness: ``vmap``'s randomness: ``"different"`` draws each seed's samples independently; the tests use
        ``"same"`` so that a stacked update can be compared with single-seed updates drawing the same noise.
    """

    def __init__(self, agents: list[Agent], args: Args, randomness: str = "different") -> None:
        self.args, self.num_seeds = args, len(agents)
        self.template = _SeedLosses(agents[0], args)
        self.params: dict[str, Tensor] = {}
        for name in ("actor", "qf", "qf_target"):
            self.params.update(stack_parameters([getattr(agent, name) for agent in agents], name + "."))
        for name, value in self.params.items():
            if name.startswith("qf_target."):
                value.requires_grad_(False)
        actor_params = [v for k, v in self.params.items() if k.startswith("actor.") and ".era_std." not in k]
        self.qf_params = [v for k, v in self.params.items() if k.startswith("qf.")]
        self.qf_target_params = [
            self.params["qf_target." + k[len("qf.") :]] for k in self.params if k.startswith("qf.")
        ]
        # As sac_era.build_agent: fused; capturable (so a CUDA graph can capture the steps) with --cudagraphs.
        adam: dict[str, Any] = {"fused": True, "capturable": args.cudagraphs}
        self.actor_optimizer = optim.Adam(actor_params, lr=args.policy_lr, **adam)
        self.q_optimizer = optim.AdamW(self.qf_params, lr=args.q_lr, weight_decay=args.q_weight_decay, **adam)
        self.delta_optimizer = self.alpha_optimizer = None
        if args.era:  # ERA | --no-era
            self.delta = self.params["actor.era_std.era_delta.delta"]
            self.max_delta = agents[0].actor.era_std.era_delta.max_delta
            if args.delta == "auto":
                self.delta_optimizer = optim.Adam([self.delta], lr=args.delta_lr, **adam)
        else:  # each seed's own temperature, (N,), and Adam's elementwise state for it
            self.log_alpha = torch.stack([agent.log_alpha.detach() for agent in agents]).requires_grad_(True)
            self.alpha_optimizer = optim.Adam([self.log_alpha], lr=args.q_lr, **adam)
        for name in OPTIMIZERS:  # the seeds' optimiser states (empty for new agents, a checkpoint's on resume)
            if getattr(self, name) is not None:
                getattr(self, name).load_state_dict(stack_optimizer_states([getattr(a, name) for a in agents]))
        # Each loss swaps in only the stacked tensors it reads: swapping and flattening them is most of a small
        # stacked update's fixed cost (strict=False leaves the rest as the template's own).
        self._loss_params = {
            "critic": self.params,
            "actor": {k: v for k, v in self.params.items() if not k.startswith("qf_target.")},
            "delta": {k: v for k, v in self.params.items() if k == "actor.era_std.era_delta.delta"},
            "alpha": {},  # each seed's log alpha is an input
        }
        # One vmapped function per loss; --compile compiles each to one graph (forward and backward), as sac_era.py's.
        self._losses = {
            loss: vmap(functools.partial(self._seed_loss, loss), in_dims=(0, 0), randomness=randomness)
            for loss in ("critic", "actor", "delta", "alpha")
        }
        # Acting: each seed's policy samples on its own observations, its own noise.
        self._actor_params = {k[len("actor.") :]: v for k, v in self.params.items() if k.startswith("actor.")}
        self._sample = vmap(self._seed_sample, randomness="different")
        if args.compile:  # and the acting step, as sac_era.py's --compile
            self._losses = {loss: torch.compile(fn, fullgraph=True) for loss, fn in self._losses.items()}
            self._sample = torch.compile(self._sample, fullgraph=True)
        # --cudagraphs captures the whole update (losses, backward passes, optimiser steps, Polyak averaging, delta's
        # projection), as sac_era.make_update's: nothing in it reads from the host, and the parameters and optimiser
        # states it updates in place keep their addresses.
        self._update = CudaGraphFunction(self._update_seeds) if args.cudagraphs else self._update_seeds

    def _seed_loss(self, loss: str, params: dict[str, Tensor], inputs: tuple) -> Any:
        return functional_call(self.template, params, (loss, *inputs), strict=False, tie_weights=False)

    def losses(self, loss: str, *inputs: Any) -> Any:
        """The single-seed ``loss`` (``"critic"``, ``"actor"``, ``"delta"`` or ``"alpha"``) of every seed, stacked;
        ``inputs`` have a leading seed axis."""
        return self._losses[loss](self._loss_params[loss], inputs)

    def update(self, data: ReplayBatch) -> dict[str, Tensor]:
        """One gradient step of every seed, in sac_era's order. ``data``: each field ``(N, B, ...)``.

        :return: ``sac_era.make_update``'s outputs with a leading seed axis (with ``--cudagraphs`` the graph's static
            outputs, overwritten by the next update: read or clone them before it).
        """
        if not self.template.actor.training:  # acting left it in eval mode; walking the modules costs like a loss
            self.template.train()  # batch-level ERA: each batch's own normaliser, folded into the running one
        return self._update(data)

    def _update_seeds(self, data: ReplayBatch) -> dict[str, Tensor]:
        alpha = () if self.args.era else (self.log_alpha.detach().exp(),)  # ERA: no temperature
        qf_loss, q1_mean, q2_mean = self.losses("critic", data, *alpha)
        self._step(self.q_optimizer, qf_loss)
        with torch.no_grad():
            torch._foreach_lerp_(self.qf_target_params, self.qf_params, self.args.tau)
        self.qf_requires_grad(False)  # as in sac_era.py: the actor's gradient flows through the critics, not into them
        loss, out = self.losses("actor", data, *alpha)
        self._step(self.actor_optimizer, loss)
        self.qf_requires_grad(True)
        out.update({"losses/qf_loss": qf_loss.detach() / 2.0, "losses/actor_loss": loss.detach()})
        out.update({"losses/qf1_values": q1_mean, "losses/qf2_values": q2_mean})
        if self.delta_optimizer is not None:  # EntropyDelta.update per seed: loss, step, projection
            delta_loss = self.losses("delta", out["entropy"])
            self._step(self.delta_optimizer, delta_loss)
            with torch.no_grad():
                self.delta.clamp_(0.0, self.max_delta)  # EntropyDelta.clamp_, elementwise over the seeds
            out["losses/delta_loss"] = delta_loss.detach()
        elif not self.args.era:  # SAC's temperature per seed, as sac_era.make_update's
            alpha_loss = self.losses("alpha", self.log_alpha, out["entropy"])
            self._step(self.alpha_optimizer, alpha_loss)
            out["losses/alpha"], out["losses/alpha_loss"] = self.log_alpha.detach().exp(), alpha_loss.detach()
        return out

    def qf_requires_grad(self, requires_grad: bool) -> None:
        for param in self.qf_params:
            param.requires_grad_(requires_grad)

    @staticmethod
    def _step(optimizer: optim.Optimizer, seed_losses: Tensor) -> None:
        optimizer.zero_grad()
        seed_losses.sum().backward()  # d(sum)/d(seed i's parameters) = seed i's own gradient
        optimizer.step()

    @torch.no_grad()
    def sample_actions(self, obs: Tensor) -> Tensor:
        """Actions of every seed's policy, ``obs``: ``(N, num_envs, obs_dim)``."""
        self.template.actor.eval()  # batch-level ERA acts with each seed's running normaliser, as sac_era.py does
        return self._sample(self._actor_params, obs)

    def _seed_sample(self, params: dict[str, Tensor], seed_obs: Tensor) -> Tensor:
        return functional_call(self.template.actor, params, (seed_obs,), tie_weights=False)[0].sample()

    @torch.no_grad()
    def write_to(self, agent: Agent, index: int) -> None:
        """Copy seed ``index``'s parameters and optimiser states into a single-seed agent (to evaluate, log, export
        or checkpoint that seed: ``agent.state_dict()`` is then what ``sac_era.py`` would checkpoint)."""
        for name in ("actor", "qf", "qf_target"):
            module = getattr(agent, name)
            state = {k[len(name) + 1 :]: v[index] for k, v in self.params.items() if k.startswith(name + ".")}
            module.load_state_dict(state)
        if not self.args.era:
            agent.log_alpha.copy_(self.log_alpha[index])
        for name in OPTIMIZERS:
            if getattr(self, name) is not None:
                getattr(agent, name).load_state_dict(seed_optimizer_state(getattr(self, name), index))


OPTIMIZERS = ("actor_optimizer", "q_optimizer", "delta_optimizer", "alpha_optimizer")


def stack_batches(batches: list[ReplayBatch]) -> ReplayBatch:
    """One batch per seed -> one batch with a leading seed axis."""
    return ReplayBatch(*(torch.stack(fields) for fields in zip(*batches, strict=True)))


# =============================================================================================== training loop
def main(args: Args) -> None:
    args.check()
    if args.num_seeds == 1:
        sac_era.main(args)  # today's single-seed agent, unchanged
        return
    device = select_device(args.cuda)
    seeds = args.for_seeds()
    # Envs and networks first, so that a bad env or a network too large fails before any run directory exists.
    envs, agents = [], []
    for seed_args in seeds:  # each seed's networks are initialised as its single-seed run's would be
        seed_everything(seed_args.seed, args.torch_deterministic)
        envs.append(make_vector_env(args.env_id, args.num_envs, seed_args.seed))
        obs_shape, action_space = envs[0].single_observation_space.shape, envs[0].single_action_space
        agents.append(build_agent(args, int(np.prod(obs_shape)), action_space.shape[0], device))
    action_dim = action_space.shape[0]
    if args.resume is None:  # all or none: no seed's run directory is created while another's exists
        for seed_args in seeds:
            if (Path(seed_args.log_dir) / seed_args.run_name).exists():
                raise SystemExit(f"error: run directory {Path(seed_args.log_dir) / seed_args.run_name} already exists")
    # A resume's first seed is the run parse_args checked (and may hold locked): start that very one.
    started = [start_run(args if args.resume is not None and i == 0 else s) for i, s in enumerate(seeds)]
    runs, checkpoints = [run for run, _, _ in started], [checkpoint for _, _, checkpoint in started]
    buffers = [ReplayBuffer(args.buffer_size, obs_shape, action_dim, args.num_envs, device) for _ in seeds]
    rngs = [np.random.default_rng(seed_args.seed) for seed_args in seeds]  # warm-up actions

    # ---------------------------------------------------------------- plumbing: resume, checkpoints, action scaling
    global_step, learning_begins, update_credit = 0, args.learning_starts, 0.0
    if checkpoints[0] is not None:  # every seed's checkpoint, as sac_era.py writes it, at one and the same step
        steps = {
            seed_args.seed: checkpoint["global_step"] for seed_args, checkpoint in zip(seeds, checkpoints, strict=True)
        }
        if len(set(steps.values())) != 1:
            raise SystemExit(f"error: --resume: the seeds' checkpoints are at different steps {steps}; nothing changed")
        for agent, rng, rb, checkpoint in zip(agents, rngs, buffers, checkpoints, strict=True):
            agent.load_state_dict(checkpoint["agent"])
            rng.bit_generator.state = checkpoint["np_rng"]
            if "replay_buffer" in checkpoint:
                rb.load_state_dict(checkpoint["replay_buffer"])
        checkpoint = checkpoints[0]
        restore_rng_state(checkpoint["rng"])
        global_step, update_credit = checkpoint["global_step"], checkpoint["update_credit"]
        learning_begins = checkpoint["learning_begins"]
        if "replay_buffer" not in checkpoint:  # refill the buffers, with the policies, before updating again
            learning_begins = max(learning_begins, global_step + args.learning_starts)
            print(f"resuming at step {global_step} without replay buffers: updates resume at {learning_begins}")
    stacked = StackedSAC(agents, args)

    def save_checkpoints() -> None:  # each seed's own checkpoint.pt, in sac_era.py's format (atomic, per seed)
        rng_state = capture_rng_state()
        for i, (agent, run, rng, rb) in enumerate(zip(agents, runs, rngs, buffers, strict=True)):
            stacked.write_to(agent, i)
            state = dict(global_step=global_step, agent=agent.state_dict(), rng=rng_state)
            state.update(np_rng=rng.bit_generator.state, learning_begins=learning_begins, update_credit=update_credit)
            if args.save_replay_buffer:
                state["replay_buffer"] = rb.state_dict()
            run.save_checkpoint(state)

    def close() -> None:
        for run, env in zip(runs, envs, strict=True):
            env.close()
            run.close()

    def failed(index: int, message: str) -> SystemExit:  # the other seeds' logs are flushed and kept
        close()
        return SystemExit(f"error: seed {seeds[index].seed} ({runs[index].run_dir}): {message}")

    low, high = action_space.low, action_space.high

    def to_env(actions: np.ndarray) -> np.ndarray:
        return low + 0.5 * (actions + 1.0) * (high - low)

    def act_deterministic(actor: sac_era.Actor) -> Callable[[np.ndarray], np.ndarray]:
        def act(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                latent = actor.latent_pi(torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(1, -1))
                return to_env(torch.tanh(actor.mu(latent))[0].cpu().numpy())

        return act

    def every(period: int) -> int:
        return (global_step // period + 1) * period if period else args.total_timesteps

    next_log, next_eval, next_checkpoint = every(args.log_every), every(args.eval_every), every(args.checkpoint_every)
    reset_seed = (lambda seed: seed) if checkpoints[0] is None else (lambda seed: seed + global_step)
    obs = [env.reset(seed=reset_seed(seed_args.seed))[0] for env, seed_args in zip(envs, seeds, strict=True)]
    sps_clock, out = (global_step, time.perf_counter()), None
    # -------------------------------------------------------------------------------------- ALGORITHM: the loop
    with StopOnSignal() as stop:
        while global_step < args.total_timesteps:
            if global_step < args.learning_starts:
                actions = [rng.uniform(-1.0, 1.0, size=(args.num_envs, action_dim)).astype(np.float32) for rng in rngs]
            else:
                actions = list(stacked.sample_actions(torch.as_tensor(np.stack(obs), device=device)).cpu().numpy())
            global_step += args.num_envs
            for i, (env, run, rb) in enumerate(zip(envs, runs, buffers, strict=True)):
                try:
                    next_obs, rewards, terminations, _, infos = env.step(to_env(actions[i]))
                except Exception as err:
                    raise failed(i, f"its environment failed at step {global_step}: {err!r}") from err
                for episodic_return, episodic_length in episode_returns(infos):
                    run.episode(global_step, episodic_return, episodic_length)
                real_next_obs = next_obs.copy()  # same-step autoreset, as in sac_era.py
                for idx in np.flatnonzero(infos.get("_final_obs", [])):
                    real_next_obs[idx] = infos["final_obs"][idx]
                rb.add(obs[i], real_next_obs, actions[i], rewards, terminations)
                obs[i] = next_obs

            if global_step > learning_begins:
                update_credit += args.updates_per_step * args.num_envs
                while update_credit >= 1.0:
                    out = stacked.update(stack_batches([rb.sample(args.batch_size) for rb in buffers]))
                    update_credit -= 1.0

            # ------------------------------------------------------- plumbing: logs, evaluation, checkpoints, signals
            done = global_step >= args.total_timesteps
            log_now, eval_now = out is not None and (global_step >= next_log or done), global_step >= next_eval or done
            if log_now:
                next_log = every(args.log_every)
            if eval_now:
                next_eval = every(args.eval_every)
            sps = (global_step - sps_clock[0]) / max(time.perf_counter() - sps_clock[1], 1e-9)
            for i, (agent, run, seed_args) in enumerate(
                zip(agents, runs, seeds, strict=True) if log_now or eval_now else ()
            ):
                stacked.write_to(agent, i)
                if log_now:
                    values = log_values(agent.actor, {name: value[i] for name, value in out.items()})
                    if not all(np.isfinite(value) for value in values.values()):
                        raise failed(i, f"non-finite losses or entropies at step {global_step}: {values}")
                    run.entropy(
                        global_step,
                        target_entropy=agent.actor.target_entropy,
                        activation_target=values.get("era/activation_target"),
                        gaussian_entropy_min=values.pop("gaussian_entropy_min"),
                        gaussian_entropy_mean=values.pop("gaussian_entropy_mean"),
                        bounded_entropy_mean=values["policy/entropy"],
                        delta=values.get("era/delta"),
                    )
                    run.scalars({**values, "charts/SPS": sps * args.num_seeds}, global_step)  # steps of all seeds
                if eval_now:
                    agent.actor.eval()
                    act = act_deterministic(agent.actor)
                    returns = evaluate(act, args.env_id, args.eval_episodes, seed=seed_args.seed + 10_000)
                    run.evaluation(global_step, returns)
                    if args.save_model:
                        policy = export_policy(agent, args, envs[i].single_observation_space, action_space)
                        save_policy(run.run_dir, policy, args.env_id, global_step)

            if stop.requested or (args.checkpoint_every and global_step >= next_checkpoint and not done):
                next_checkpoint = every(args.checkpoint_every)
                save_checkpoints()
                if stop.requested:
                    close()
                    raise SystemExit(stop.exit_code)

    save_checkpoints()
    close()


if __name__ == "__main__":
    main(parse_args(Args))
