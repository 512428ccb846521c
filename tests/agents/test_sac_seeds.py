"""sac_era_seeds.py: N seeds stacked in one process are N independent single-seed agents.

The stacked update runs sac_era.py's losses under ``vmap``; here it is compared with N single-seed updates of
``sac_era.make_update`` from the same initial parameters, on the same batches, drawing the same noise.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agents"))
import sac_era
import sac_era_batch_seeds
import sac_era_seeds

from era_utils.replay import ReplayBatch
from tests.agents.test_sac import ACTION_DIM, CPU, OBS_DIM, make_batch
from tests.conftest import requires_cuda

NUM_SEEDS = 3
NOISE_SEED = 7


def make_agents(device=CPU, args_class=sac_era_seeds.Args, **options):
    args = args_class(hidden_dim=16, batch_size=16, cuda=device.type == "cuda", num_seeds=NUM_SEEDS, **options)
    agents = []
    for seed in range(NUM_SEEDS):
        torch.manual_seed(seed)
        agents.append(sac_era.build_agent(args, OBS_DIM, ACTION_DIM, device))
    return args, agents


def single_seed_updates(args, agents, batches, steps):
    """Each agent updated alone by sac_era.make_update, the noise stream restarted for each seed (as vmap's
    randomness="same" draws one stream for all seeds)."""
    outs = []
    for agent, batch in zip(agents, batches, strict=True):
        update = sac_era.make_update(agent, args)
        torch.manual_seed(NOISE_SEED)
        outs.append([update(batch) for _ in range(steps)])
    return outs


VARIANTS = pytest.mark.parametrize(
    ("args_class", "options"),
    [
        (sac_era_seeds.Args, {"delta": 0.0}),
        (sac_era_seeds.Args, {"delta": "auto"}),
        (sac_era_seeds.Args, {"era": False}),
        (sac_era_batch_seeds.Args, {"delta": "auto"}),  # each seed's running normaliser: stacked buffers
    ],
    ids=["constant-delta", "auto-delta", "no-era", "batch-level"],
)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@VARIANTS
def test_one_stacked_update_equals_the_single_seed_updates(args_class, options, device):
    """Losses, gradients, parameters after the optimiser steps (buffers included: batch-level ERA's running
    normaliser) and (--no-era) each seed's temperature. The single-seed agents use fused Adam, as the stacked one
    does."""
    device = torch.device(device)
    args, agents = make_agents(device, args_class, **options)
    stacked = sac_era_seeds.StackedSAC(copy.deepcopy(agents), args, randomness="same")
    batches = [ReplayBatch(*(field.to(device) for field in make_batch(seed))) for seed in range(NUM_SEEDS)]
    steps = 3  # the optimisers' moments carry over between steps
    singles = single_seed_updates(args, agents, batches, steps)
    torch.manual_seed(NOISE_SEED)
    stacked_outs = [stacked.update(sac_era_seeds.stack_batches(batches)) for _ in range(steps)]

    for step in range(steps):
        for name, value in stacked_outs[step].items():
            assert value.shape[0] == NUM_SEEDS, name  # one value per seed: nothing averaged across seeds
            for i in range(NUM_SEEDS):
                torch.testing.assert_close(value[i], singles[i][step][name], msg=f"{name}, seed {i}, step {step}")
    for i, agent in enumerate(agents):  # parameters and buffers (delta, target critics) after the optimiser steps
        for name in ("actor", "qf", "qf_target"):
            for key, param in getattr(agent, name).state_dict().items():
                torch.testing.assert_close(stacked.params[f"{name}.{key}"][i], param, msg=f"{name}.{key}, seed {i}")
            for key, param in getattr(agent, name).named_parameters():  # the last step's gradients
                stacked_grad = stacked.params[f"{name}.{key}"].grad
                assert (stacked_grad is None) == (param.grad is None), f"{name}.{key}"
                if param.grad is not None:
                    torch.testing.assert_close(stacked_grad[i], param.grad, msg=f"grad {name}.{key}, seed {i}")
        if not args.era:  # its own temperature: log alpha, its gradient and Adam's moments
            torch.testing.assert_close(stacked.log_alpha[i], agent.log_alpha, msg=f"log alpha, seed {i}")
            torch.testing.assert_close(stacked.log_alpha.grad[i], agent.log_alpha.grad, msg=f"alpha grad, seed {i}")
            state = sac_era_seeds.seed_optimizer_state(stacked.alpha_optimizer, i)["state"][0]
            for key, value in agent.alpha_optimizer.state_dict()["state"][0].items():
                torch.testing.assert_close(state[key], value, msg=f"alpha optimiser {key}, seed {i}")
    if options.get("delta") == "auto":
        assert stacked.delta.grad is not None and stacked.delta.shape == (NUM_SEEDS,)
    if not args.era:
        assert stacked.log_alpha.shape == (NUM_SEEDS,) and "losses/alpha" in stacked_outs[0]
        assert len(set(stacked.log_alpha.tolist())) == NUM_SEEDS  # each seed's batch moved its own alpha


def test_gradients_are_each_seeds_own():
    args, agents = make_agents()
    stacked = sac_era_seeds.StackedSAC(copy.deepcopy(agents), args, randomness="same")
    batches = [make_batch(seed) for seed in range(NUM_SEEDS)]
    torch.manual_seed(NOISE_SEED)
    qf_loss, _, _ = stacked.losses("critic", sac_era_seeds.stack_batches(batches))
    qf_loss.sum().backward()
    for i, (agent, batch) in enumerate(zip(agents, batches, strict=True)):
        critic_loss, _ = sac_era.make_losses(agent.actor, agent.qf, agent.qf_target, args)
        torch.manual_seed(NOISE_SEED)
        critic_loss(batch, None)[0].backward()
        for key, param in agent.qf.named_parameters():
            torch.testing.assert_close(stacked.params[f"qf.{key}"].grad[i], param.grad, msg=f"qf.{key}, seed {i}")


def test_write_to_gives_a_seed_its_own_parameters():
    args, agents = make_agents()
    stacked = sac_era_seeds.StackedSAC(copy.deepcopy(agents), args)
    _, other = make_agents()
    stacked.write_to(other[0], 2)
    for (key, mine), theirs in zip(
        other[0].actor.state_dict().items(), agents[2].actor.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(mine, theirs, msg=key)


@pytest.mark.parametrize("options", [{}, {"era": False}], ids=["era", "no-era"])
def test_seeds_draw_their_own_noise(options):
    """Identical networks and observations in every seed: the seeds' actions still differ (vmap's randomness
    "different"), and so do their updates."""
    args, agents = make_agents(**options)
    stacked = sac_era_seeds.StackedSAC([copy.deepcopy(agents[0]) for _ in range(NUM_SEEDS)], args)
    out = stacked.update(sac_era_seeds.stack_batches([make_batch(0)] * NUM_SEEDS))
    assert not torch.equal(out["losses/qf_loss"][0], out["losses/qf_loss"][1])
    obs = torch.zeros(NUM_SEEDS, 4, OBS_DIM)
    actions = stacked.sample_actions(obs)
    assert actions.shape == (NUM_SEEDS, 4, ACTION_DIM)
    assert not torch.equal(actions[0], actions[1])


def test_batch_level_updates_in_training_mode_and_acts_in_eval_mode():
    """Batch-level ERA: an update folds each seed's batches into that seed's running normaliser even after an
    evaluation left the first seed's actor (the stacked modules' template) in eval mode; acting reads the normalisers
    (eval mode) and leaves them as they are."""
    args, agents = make_agents(args_class=sac_era_batch_seeds.Args)
    stacked = sac_era_seeds.StackedSAC(agents, args)
    agents[0].actor.eval()  # what main's evaluation of the first seed leaves behind
    stacked.update(sac_era_seeds.stack_batches([make_batch(seed) for seed in range(NUM_SEEDS)]))
    running, tracked = (
        stacked.params[f"actor.era_std.batch_era.{name}"] for name in ("running_log_normalizer", "num_batches_tracked")
    )
    assert tracked.tolist() == [2] * NUM_SEEDS  # one forward pass in the critic's target, one in the actor's loss
    assert len(set(running.tolist())) == NUM_SEEDS  # each seed's own batches
    before = running.clone()
    stacked.sample_actions(torch.randn(NUM_SEEDS, 4, OBS_DIM))
    assert tracked.tolist() == [2] * NUM_SEEDS
    torch.testing.assert_close(running, before, rtol=0, atol=0)


@pytest.mark.parametrize("args_class", [sac_era_seeds.Args, sac_era_batch_seeds.Args], ids=["state", "batch"])
def test_compiled_stacked_update_equals_eager(monkeypatch, args_class):
    """--compile: each vmapped loss traces to one graph (fullgraph; batch-level ERA's in-place update of its running
    normaliser included), and the update is eager's (the ``aot_eager`` backend: graph capture and AOT autograd without
    Inductor's minutes of code generation on a small CPU)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    args, agents = make_agents(args_class=args_class, delta="auto", compile=True)
    eager = sac_era_seeds.StackedSAC(copy.deepcopy(agents), dataclasses.replace(args, compile=False), "same")
    compiled = sac_era_seeds.StackedSAC(agents, args, "same")
    data = sac_era_seeds.stack_batches([make_batch(seed) for seed in range(NUM_SEEDS)])
    for step in range(2):
        torch.manual_seed(step)
        expected = eager.update(data)
        torch.manual_seed(step)
        got = compiled.update(data)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=name)
    for name, value in eager.params.items():
        torch.testing.assert_close(compiled.params[name], value, atol=1e-5, rtol=1e-4, msg=name)
    obs = torch.randn(NUM_SEEDS, 2, OBS_DIM)  # the acting step, compiled too: the same draws
    torch.manual_seed(0)
    expected = eager.sample_actions(obs)
    torch.manual_seed(0)
    torch.testing.assert_close(compiled.sample_actions(obs), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_compiled_stacked_update_runs_with_inductor():
    """The default backend (Inductor's code generation) compiles the vmapped losses and their backward, and the
    vmapped acting step."""
    torch._dynamo.reset()
    args, agents = make_agents(delta="auto", compile=True)
    stacked = sac_era_seeds.StackedSAC(agents, args)
    out = stacked.update(sac_era_seeds.stack_batches([make_batch(seed) for seed in range(NUM_SEEDS)]))
    assert all(torch.isfinite(value).all() for value in out.values())
    assert all(torch.isfinite(value).all() for value in stacked.params.values())
    actions = stacked.sample_actions(torch.randn(NUM_SEEDS, 2, OBS_DIM))
    assert actions.shape == (NUM_SEEDS, 2, ACTION_DIM) and actions.abs().max() <= 1.0


def test_cudagraphs_is_stacked_and_still_needs_cuda(monkeypatch):
    """--cudagraphs with several seeds: no longer refused for the seeds' sake, but still sac_era.py's clear error
    without a CUDA device."""
    with pytest.raises(ValueError, match=r"--cudagraphs .*needs a CUDA device .*--no-cuda"):
        sac_era_seeds.Args(num_seeds=2, cudagraphs=True, cuda=False).check()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"--cudagraphs .*torch\.cuda\.is_available"):
            sac_era_seeds.Args(num_seeds=2, cudagraphs=True).check()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a CUDA machine: accepted
    sac_era_seeds.Args(num_seeds=2, cudagraphs=True).check()


@pytest.mark.gpu
@requires_cuda
@VARIANTS
def test_captured_stacked_update_equals_eager(args_class, options):
    """--cudagraphs: warm-up calls, the capture and replays of the stacked update give the eager stacked update's
    losses and parameters, from the same parameters, on the same (new each call) batches, with the same noise (each
    seed its own: randomness "different", drawn in the graph from the default generator)."""
    cuda = torch.device("cuda")
    args, agents = make_agents(cuda, args_class, cudagraphs=True, **options)
    eager = sac_era_seeds.StackedSAC(copy.deepcopy(agents), dataclasses.replace(args, cudagraphs=False))
    captured = sac_era_seeds.StackedSAC(agents, args)
    optimizers = [getattr(captured, name) for name in sac_era_seeds.OPTIMIZERS]
    assert all(group["capturable"] for opt in optimizers if opt is not None for group in opt.param_groups)
    for call in range(6):  # 3 warm-up calls, the capture, 2 replays
        batches = [make_batch(NUM_SEEDS * call + seed) for seed in range(NUM_SEEDS)]
        data = ReplayBatch(*(field.to(cuda) for field in sac_era_seeds.stack_batches(batches)))
        torch.manual_seed(call)
        expected = eager.update(data)
        torch.manual_seed(call)
        got = {name: value.clone() for name, value in captured.update(data).items()}  # replays overwrite them
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            torch.testing.assert_close(got[name], value, atol=1e-5, rtol=1e-4, msg=f"{name}, call {call}")
    assert captured._update.graph is not None  # the last calls were replays
    for name, value in eager.params.items():
        torch.testing.assert_close(captured.params[name], value, atol=1e-5, rtol=1e-4, msg=name)
    if not args.era:
        torch.testing.assert_close(captured.log_alpha, eager.log_alpha, atol=1e-5, rtol=1e-4, msg="log alpha")


@pytest.mark.parametrize("options", [{"delta": "auto"}, {"era": False}], ids=["auto-delta", "no-era"])
def test_seed_checkpoints_restack_to_the_same_training_state(options):
    """What --resume does: each seed's slice (parameters and optimiser states, as sac_era.py checkpoints them) stacked
    again continues exactly as the original stacked agent."""
    args, agents = make_agents(**options)
    stacked = sac_era_seeds.StackedSAC(agents, args, randomness="same")
    data = sac_era_seeds.stack_batches([make_batch(seed) for seed in range(NUM_SEEDS)])
    for _ in range(2):
        stacked.update(data)
    _, fresh = make_agents(**options)
    for index, agent in enumerate(fresh):
        stacked.write_to(agent, index)
        agent.load_state_dict(copy.deepcopy(agent.state_dict()))  # through a checkpoint's dict
    restacked = sac_era_seeds.StackedSAC(fresh, args, randomness="same")
    torch.manual_seed(NOISE_SEED)
    expected = stacked.update(data)
    torch.manual_seed(NOISE_SEED)
    got = restacked.update(data)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)
    for name, value in stacked.params.items():
        torch.testing.assert_close(restacked.params[name], value, rtol=0, atol=0, msg=name)
    if not args.era:
        torch.testing.assert_close(restacked.log_alpha, stacked.log_alpha, rtol=0, atol=0, msg="log alpha")
