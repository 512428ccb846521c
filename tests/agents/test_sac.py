"""sac_era.py / sac_era_batch.py as a specification: the losses, the gradients, the export, the checks.

The agents are scripts, imported here from ``agents/``; networks are tiny so every test takes a fraction of a second
(except the compiled path).
"""

from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

from gymnasium import spaces

from era_policies import era_action_distribution
from era_utils.replay import ReplayBatch
from tests.conftest import requires_cuda

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agents"))
import sac_era
import sac_era_batch

OBS_DIM, ACTION_DIM, BATCH = 5, 3, 16
CPU = torch.device("cpu")


def make_agent(args_class=sac_era.Args, **options):
    args = args_class(hidden_dim=16, batch_size=BATCH, cuda=False, **options)
    return args, sac_era.build_agent(args, OBS_DIM, ACTION_DIM, CPU)


def make_batch(seed: int = 0) -> ReplayBatch:
    gen = torch.Generator().manual_seed(seed)
    return ReplayBatch(
        observations=torch.randn(BATCH, OBS_DIM, generator=gen),
        actions=torch.rand(BATCH, ACTION_DIM, generator=gen) * 2 - 1,
        next_observations=torch.randn(BATCH, OBS_DIM, generator=gen),
        rewards=torch.randn(BATCH, 1, generator=gen),
        dones=(torch.rand(BATCH, 1, generator=gen) < 0.3).float(),
    )


def run_update(agent, args, data, seed=1):
    """One update; :return: what the logs would show after it."""
    torch.manual_seed(seed)
    return sac_era.log_values(agent.actor, sac_era.make_update(agent, args)(data))


# ---------------------------------------------------------------------------------------------------- the losses
@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_critic_target_has_an_entropy_term_only_without_era(era):
    args, agent = make_agent(era=era)
    before, data = copy.deepcopy(agent), make_batch()
    stats = run_update(agent, args, data)

    torch.manual_seed(1)  # the update's first draw is a' ~ pi(.|s')
    with torch.no_grad():
        dist, _, _ = before.actor(data.next_observations)
        next_actions = dist.sample()
        min_q_next = torch.min(*before.qf_target(data.next_observations, next_actions))
        alpha_log_pi = dist.log_prob(next_actions).sum(-1, keepdim=True)  # alpha = 1 at the start
        q1, q2 = before.qf(data.observations, data.actions)

    def qf_loss(soft_q_next):
        target = data.rewards + args.gamma * (1 - data.dones) * soft_q_next
        return (F.mse_loss(q1, target) + F.mse_loss(q2, target)) / 2

    with_entropy, without_entropy = qf_loss(min_q_next - alpha_log_pi), qf_loss(min_q_next)
    assert not torch.isclose(with_entropy, without_entropy, rtol=1e-3)  # the check below can tell them apart
    assert stats["losses/qf_loss"] == pytest.approx((without_entropy if era else with_entropy).item(), rel=1e-5)


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_actor_gradient_is_that_of_minus_q_alone_only_with_era(era):
    args, agent = make_agent(era=era)
    before, data = copy.deepcopy(agent.actor), make_batch()
    run_update(agent, args, data)

    torch.manual_seed(1)
    with torch.no_grad():  # the critic target's draw comes first
        before(data.next_observations)[0].sample()
    dist, _, _ = before(data.observations)
    actions = dist.rsample()
    # The actor loss sees the critics after their step; the actor's own step does not change them.
    minus_q = -torch.min(*agent.qf(data.observations, actions)).mean()
    sac_loss = minus_q + dist.log_prob(actions).sum(-1).mean()  # + alpha * log pi with alpha = 1
    heads = [before.log_std.weight, before.mu.weight]
    grad_minus_q = torch.autograd.grad(minus_q, heads, retain_graph=True)
    grad_sac = torch.autograd.grad(sac_loss, heads)

    observed = [agent.actor.log_std.weight.grad, agent.actor.mu.weight.grad]
    expected, other = (grad_minus_q, grad_sac) if era else (grad_sac, grad_minus_q)
    for got, want, alternative in zip(observed, expected, other, strict=True):
        torch.testing.assert_close(got, want)
        assert not torch.allclose(got, alternative, atol=1e-6)


def test_the_actor_loss_adds_no_gradient_to_the_critics_weights():
    """The actor's gradient flows through the critics, but their weights keep the critic loss's gradient only."""
    args, agent = make_agent()
    before, data = copy.deepcopy(agent), make_batch()
    run_update(agent, args, data)
    torch.manual_seed(1)  # the update's first draw is a' ~ pi(.|s')
    with torch.no_grad():
        next_actions = before.actor(data.next_observations)[0].sample()
        target = data.rewards + args.gamma * (1 - data.dones) * torch.min(
            *before.qf_target(data.next_observations, next_actions)
        )
    q1, q2 = before.qf(data.observations, data.actions)
    (F.mse_loss(q1, target) + F.mse_loss(q2, target)).backward()
    for (name, got), want in zip(agent.qf.named_parameters(), before.qf.parameters(), strict=True):
        assert got.requires_grad
        torch.testing.assert_close(got.grad, want.grad, msg=name)


def test_era_policy_keeps_the_gaussian_entropy_floor_in_every_state():
    args, agent = make_agent(target_entropy_per_dim=-0.7)
    stats = run_update(agent, args, make_batch())
    floor = ACTION_DIM * -0.7
    assert stats["gaussian_entropy_min"] == pytest.approx(floor, abs=1e-4)
    assert stats["era/activation_target"] == pytest.approx(floor)


def test_batch_level_floor_holds_for_the_batch_mean_only():
    # A low clamp that never binds: the batch mean is then exactly the target (a binding clamp only raises it).
    args, agent = make_agent(sac_era_batch.Args, target_entropy_per_dim=-0.7, log_std_min=-50)
    stats = run_update(agent, args, make_batch())
    assert stats["gaussian_entropy_mean"] == pytest.approx(ACTION_DIM * -0.7, abs=1e-4)
    assert stats["gaussian_entropy_min"] < ACTION_DIM * -0.7 - 1e-3  # single states sit below it
    assert (
        int(agent.actor.era_std.batch_era.num_batches_tracked) == 2
    )  # target and actor loss each saw a training batch


def test_auto_delta_rises_while_the_bounded_entropy_is_below_the_floor():
    args, agent = make_agent(delta="auto", target_entropy_per_dim=0.5)
    update, data = sac_era.make_update(agent, args), make_batch()
    for _ in range(3):
        stats = sac_era.log_values(agent.actor, update(data))
    assert stats["policy/entropy"] < agent.actor.target_entropy  # truncation removes entropy
    assert agent.actor.era_std.era_delta.delta.item() > 0
    assert agent.delta_optimizer is not None and agent.alpha_optimizer is None


@pytest.mark.parametrize(("delta", "in_update", "at_log"), [(0.0, 0, 1), ("auto", 1, 0)], ids=["constant", "auto"])
def test_the_entropy_is_computed_once_and_only_where_it_is_needed(delta, in_update, at_log, monkeypatch):
    """A constant delta: no loss needs the bounded entropy, so only a log step computes it; --delta auto needs it in
    the update, and the log step reuses that one."""
    distribution_class = type(era_action_distribution(torch.zeros(1, ACTION_DIM), torch.zeros(1, ACTION_DIM)))
    calls = []
    entropy = distribution_class.entropy
    monkeypatch.setattr(distribution_class, "entropy", lambda self: calls.append(self) or entropy(self))
    args, agent = make_agent(delta=delta)
    out = sac_era.make_update(agent, args)(make_batch())
    assert len(calls) == in_update
    values = sac_era.log_values(agent.actor, out)
    assert len(calls) == in_update + at_log
    expected = era_action_distribution(out["mean"], out["log_std"]).entropy().sum(-1).mean()  # the update's batch
    assert values["policy/entropy"] == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("args_class", [sac_era.Args, sac_era_batch.Args], ids=["state", "batch"])
def test_checkpoints_from_before_the_era_head_still_load(args_class):
    args, agent = make_agent(args_class, delta="auto")
    run_update(agent, args, make_batch())
    state = agent.state_dict()
    state["actor"] = {key.replace("era_std.", ""): value for key, value in state["actor"].items()}  # the old keys
    assert "era_delta.delta" in state["actor"]
    _, fresh = make_agent(args_class, delta="auto")
    fresh.load_state_dict(state)
    for key, value in agent.actor.state_dict().items():
        torch.testing.assert_close(fresh.actor.state_dict()[key], value, msg=key)


def test_no_era_tunes_alpha_towards_minus_d_and_has_no_delta():
    args, agent = make_agent(era=False)
    assert not hasattr(agent.actor, "era_std") and agent.delta_optimizer is None
    stats = run_update(agent, args, make_batch())
    entropy = stats["policy/entropy"]
    # alpha grows when the entropy is below -D and shrinks above it
    assert (agent.log_alpha.item() > 0) == (entropy < -ACTION_DIM)
    assert "era/delta" not in stats


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("sample_shape", [(), (2,)], ids=["one", "two-per-state"])
def test_no_era_sampling_draws_torch_normals_numbers(sample_shape, device):
    """--no-era's Gaussian samples with randn_like (which vmap can draw per seed) instead of Normal's in-place fill:
    the same numbers, and the same generator state after them, so a single-seed run is unchanged."""
    gen = torch.Generator().manual_seed(0)
    loc = torch.randn(BATCH, ACTION_DIM, generator=gen).to(device)
    scale = (torch.rand(BATCH, ACTION_DIM, generator=gen) + 0.1).to(device)
    for draw in ("rsample", "sample"):
        draws = []
        for normal in (torch.distributions.Normal, sac_era.VmapNormal):
            torch.manual_seed(3)
            draws.append((getattr(normal(loc, scale), draw)(sample_shape), torch.rand(4, device=device)))
        (expected, expected_next), (got, got_next) = draws
        assert got.shape == (*sample_shape, BATCH, ACTION_DIM)
        assert torch.equal(got, expected), draw
        assert torch.equal(got_next, expected_next), draw


def test_no_era_policy_samples_per_seed_under_vmap():
    """What sac_era_seeds.py needs: the tanh-Gaussian samples under vmap with randomness="different", each seed its own
    noise (here identical parameters and observations), its actions in [-1, 1] and its log-prob that of those."""
    _, agent = make_agent(era=False)
    params = {name: value.detach().expand(3, *value.shape) for name, value in agent.actor.named_parameters()}
    obs = torch.randn(BATCH, OBS_DIM).expand(3, BATCH, OBS_DIM)

    def sample(seed_params, seed_obs):
        dist = torch.func.functional_call(agent.actor, seed_params, (seed_obs,))[0]
        actions = dist.rsample()
        return actions, dist.log_prob(actions)

    actions, log_prob = torch.func.vmap(sample, randomness="different")(params, obs)
    assert actions.shape == (3, BATCH, ACTION_DIM) and bool((actions.abs() <= 1).all())
    assert not torch.equal(actions[0], actions[1]) and not torch.equal(actions[1], actions[2])
    for i in range(3):  # the log-prob of each seed's own sample (recomputed through atanh: away from saturation)
        inside = (actions[i].abs() < 0.9).all(-1)
        assert inside.any()
        expected = agent.actor(obs[i])[0].log_prob(actions[i])[inside]
        torch.testing.assert_close(log_prob[i][inside], expected, rtol=1e-4, atol=1e-4)


def test_released_initialisation_and_critic_weight_decay():
    _, agent = make_agent()
    for name, layer in [*agent.actor.named_modules(), *agent.qf.named_modules()]:
        if isinstance(layer, torch.nn.Linear):
            gain = 1.0 if name == "log_std" else np.sqrt(2)
            weight = layer.weight.detach()
            rows, cols = weight.shape
            gram = weight @ weight.T if rows <= cols else weight.T @ weight
            torch.testing.assert_close(gram, gain**2 * torch.eye(min(rows, cols)), atol=1e-4, rtol=0, msg=name)
            assert not layer.bias.any(), name
    assert agent.q_optimizer.param_groups[0]["weight_decay"] == 1e-4
    assert type(agent.q_optimizer) is torch.optim.AdamW and type(agent.actor_optimizer) is torch.optim.Adam
    assert agent.actor.era_std.era_delta.delta not in set(agent.actor_optimizer.param_groups[0]["params"])


# ---------------------------------------------------------------------------------------------- export to SB3
CLEANRL_NETWORK = {"activation": "relu", "critic_layer_norm": False}


@pytest.mark.parametrize(
    ("args_class", "options", "policy_name"),
    [
        (sac_era.Args, {}, "ERASACPolicy"),
        (sac_era_batch.Args, {}, "ERASACPolicy"),
        (sac_era.Args, {"era": False}, "SACLayerNormPolicy"),
        (sac_era.Args, CLEANRL_NETWORK, "ERASACPolicy"),
        (sac_era.Args, {"era": False, **CLEANRL_NETWORK}, "SACLayerNormPolicy"),
    ],
    ids=["state", "batch", "no-era", "cleanrl-network", "no-era-cleanrl-network"],
)
def test_exported_policy_loads_and_acts_as_the_agent(args_class, options, policy_name, tmp_path):
    from era_policies import sb3

    args, agent = make_agent(args_class, delta="auto", **options)
    run_update(agent, args, make_batch())  # trained a little: delta, batch statistics and weights moved
    obs_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = spaces.Box(-2.0, 2.0, (ACTION_DIM,), np.float32)
    sac_era.export_policy(agent, args, obs_space, action_space).save(tmp_path / "policy.pt")
    policy = getattr(sb3, policy_name).load(tmp_path / "policy.pt", device="cpu")
    assert type(policy).__name__ == policy_name
    for agent_net, policy_net in ((agent.actor, policy.actor), (agent.qf, policy.critic)):
        agent_layers = [type(layer) for layer in agent_net.modules() if not list(layer.children())]
        policy_layers = [type(layer) for layer in policy_net.modules() if not list(layer.children())]
        assert agent_layers == [layer for layer in policy_layers if layer is not torch.nn.Flatten]

    obs = make_batch(5).observations
    agent.actor.eval()  # acting: batch-level ERA uses its running normaliser, as SB3's predict does
    policy.set_training_mode(False)
    with torch.no_grad():
        _, mean, log_std = agent.actor(obs)
        policy_mean, policy_log_std, _ = policy.actor.get_action_dist_params(obs)
        actions = torch.rand(BATCH, ACTION_DIM) * 2 - 1
        torch.testing.assert_close(policy.critic(obs, actions), agent.qf(obs, actions))
    predicted, _ = policy.predict(obs.numpy(), deterministic=True)
    np.testing.assert_allclose(predicted, 2.0 * torch.tanh(mean).numpy(), atol=1e-5)
    torch.testing.assert_close(policy_mean, mean)
    torch.testing.assert_close(policy_log_std, log_std)


def test_cleanrl_network_flags():
    """--activation relu --no-critic-layer-norm: CleanRL's SAC layers (Linear/ReLU, no LayerNorm)."""
    _, agent = make_agent(**CLEANRL_NETWORK)
    assert not any(
        isinstance(m, (torch.nn.LayerNorm, torch.nn.ELU)) for m in [*agent.actor.modules(), *agent.qf.modules()]
    )
    assert [type(m) for m in agent.qf.qf0] == [torch.nn.Linear, torch.nn.ReLU] * 2 + [torch.nn.Linear]
    _, default = make_agent()
    assert [type(m) for m in default.qf.qf0] == [torch.nn.Linear, torch.nn.LayerNorm, torch.nn.ELU] * 2 + [
        torch.nn.Linear
    ]


def test_relu_through_abs_is_relu():
    """--compile's ReLU, (x + |x|) / 2: ReLU's values, zero included, and ReLU's gradient everywhere but at exactly 0,
    where it takes the subgradient 1/2."""
    x = torch.cat([torch.randn(10_000) * 10.0, torch.tensor([0.0, -0.0, 1e-38, -1e-38, 1e30, -1e30, 1e-45])])
    x.requires_grad_(True)
    y = sac_era.ReLUThroughAbs()(x)
    torch.testing.assert_close(y, torch.relu(x), rtol=0.0, atol=0.0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    nonzero = x != 0
    torch.testing.assert_close(grad[nonzero], (x[nonzero] > 0).float(), rtol=0.0, atol=0.0)
    assert torch.all(grad[~nonzero] == 0.5)


def test_compile_builds_relu_through_abs_with_the_same_parameters():
    """--compile --activation relu: the networks hold ReLUThroughAbs where eager holds nn.ReLU, and nothing else
    differs (the same parameter names, so checkpoints move between the two)."""
    _, eager = make_agent(**CLEANRL_NETWORK)
    _, compiled = make_agent(**CLEANRL_NETWORK, compile=True)
    for module in ("actor", "qf"):
        kinds = [type(m) for m in getattr(eager, module).modules()]
        compiled_kinds = [type(m) for m in getattr(compiled, module).modules()]
        assert torch.nn.ReLU in kinds and sac_era.ReLUThroughAbs not in kinds
        assert compiled_kinds == [sac_era.ReLUThroughAbs if kind is torch.nn.ReLU else kind for kind in kinds]
    compiled.load_state_dict(eager.state_dict())
    _, default = make_agent(compile=True)  # ELU: unchanged under --compile
    assert not any(isinstance(m, sac_era.ReLUThroughAbs) for m in default.qf.modules())


# ------------------------------------------------------------------------------------------ compiled update
@pytest.mark.parametrize("network", [{}, CLEANRL_NETWORK], ids=["released", "cleanrl"])
def test_compiled_update_equals_eager(network, monkeypatch):
    """Dynamo traces the whole update (backward, optimiser steps, Polyak, delta) and the result is eager's.

    Inductor's C++ code generation takes minutes on a shared 2-core machine, so this uses the ``aot_eager`` backend
    (graph capture and AOT autograd, no code generation); ``test_compiled_update_equals_eager_inductor`` (slow) runs
    the default backend.
    """
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    check_compiled_update_equals_eager(**network)


@pytest.mark.parametrize("delta", [0.0, "auto"])
def test_compiled_update_is_two_float32_graphs(delta, monkeypatch):
    """--compile: the critic and the actor loss each trace to one graph (fullgraph: no graph break), the fused
    optimiser steps to none, and no graph, forward or backward, computes anything in float64 (ERA's lean action
    distribution)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def keep(graph, example_inputs):
        graphs.append(graph)
        return make_boxed_func(graph.forward)

    backend = aot_autograd(fw_compiler=keep, bw_compiler=keep)
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=backend))
    torch._dynamo.reset()
    args, agent = make_agent(delta=delta, compile=True)
    sac_era.make_update(agent, args)(make_batch())
    assert len(graphs) == 4  # critic loss and actor loss, forward and backward each (the optimiser steps are fused)
    float64 = [
        (node.name, index)
        for index, graph in enumerate(graphs)
        for node in graph.graph.nodes
        if isinstance(node.meta.get("val"), torch.Tensor) and node.meta["val"].dtype == torch.float64
    ]
    assert float64 == []


@pytest.mark.slow
def test_compiled_update_equals_eager_inductor():
    import torch._inductor.config

    # eager's random numbers; config.patch, not monkeypatch: undoing a monkeypatch deletes the config entry
    with torch._inductor.config.patch(fallback_random=True):
        check_compiled_update_equals_eager()


def check_compiled_update_equals_eager(**network):
    args, agent = make_agent(delta="auto", compile=True, **network)
    twin_args, twin = make_agent(delta="auto", **network)  # eager's networks (nn.ReLU where --compile has its own)
    twin.load_state_dict(agent.state_dict())
    data = make_batch()
    eager = sac_era.make_update(twin, twin_args)
    compiled = sac_era.make_update(agent, args)
    for seed in range(2):
        torch.manual_seed(seed)
        expected = eager(data)
        torch.manual_seed(seed)
        got = compiled(data)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=name)
    for module in ("actor", "qf", "qf_target"):
        for (name, got), (_, want) in zip(
            getattr(agent, module).named_parameters(), getattr(twin, module).named_parameters(), strict=True
        ):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, msg=f"{module}.{name}")


@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_compile_flag_compiles_the_losses_and_the_acting_step(era, tmp_path, monkeypatch):
    """--compile: both losses and the acting step go through torch.compile (here its
    ``aot_eager`` backend, which draws eager's random numbers), and the run is the eager run's, episode for episode."""
    from era_utils.command_line import parse_args

    compiled = []

    def recording_compile(fn, **options):
        compiled.append(fn.__name__)
        return torch_compile(fn, **{**options, "backend": "aot_eager"})

    torch_compile = torch.compile
    flags = ["--env-id", "Pendulum-v1", "--total-timesteps", "400", "--learning-starts", "100", "--batch-size", "16"]
    flags += ["--hidden-dim", "16", "--eval-episodes", "1", "--no-cuda", "--no-progress", "--log-dir", str(tmp_path)]
    flags += [] if era else ["--no-era"]
    sac_era.main(parse_args(sac_era.Args, [*flags, "--run-name", "eager"]))
    monkeypatch.setattr(torch, "compile", recording_compile)
    torch._dynamo.reset()
    sac_era.main(parse_args(sac_era.Args, [*flags, "--run-name", "compiled", "--compile"]))
    assert compiled == ["critic_loss", "actor_loss", "sample_action"]
    episodes = [pd.read_csv(tmp_path / run / "episodes.csv") for run in ("eager", "compiled")]
    assert len(episodes[0]) == 2
    pd.testing.assert_frame_equal(*episodes, rtol=1e-4)


# ------------------------------------------------------------------------------------------- start-time checks
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--hidden-dim", "0"], "--hidden-dim"),
        (["--buffer-size", "100", "--batch-size", "256"], "--buffer-size"),
        (["--learning-starts", "-1"], "--learning-starts"),
        (["--updates-per-step", "0"], "--updates-per-step"),
        (["--gamma", "1.0"], "--gamma"),
        (["--tau", "0"], "--tau"),
        (["--tau", "1.5"], "--tau"),
        (["--delta", "-0.1"], "--delta"),
        (["--target-entropy-per-dim", "1.5"], "--target-entropy-per-dim"),
        (["--log-std-min", "0", "--log-std-max", "0"], "--log-std-min"),
        (["--log-std-max", "3.5"], "--log-std-max"),  # above log(20): outside ERA's action distribution's range
        (["--q-lr", "0"], "--q-lr"),
        (["--total-timesteps", "0"], "--total-timesteps"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag_and_create_nothing(flags, named, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sac_era.parse_args(sac_era.Args, ["--log-dir", str(tmp_path / "runs"), *flags])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("era", [True, False], ids=["era", "no-era"])
def test_cudagraphs_captures_the_whole_update_on_cuda(era):
    """--cudagraphs: warm-up calls, the capture (every optimiser must be capturable, or torch refuses it), replays that
    keep training: each replay moves the parameters and returns fresh, finite statistics."""
    cuda = torch.device("cuda")
    args = sac_era.Args(hidden_dim=16, batch_size=BATCH, era=era, delta="auto" if era else 0.0, cudagraphs=True)
    agent = sac_era.build_agent(args, OBS_DIM, ACTION_DIM, cuda)
    optimizers = [agent.actor_optimizer, agent.q_optimizer, agent.delta_optimizer, agent.alpha_optimizer]
    assert all(group["capturable"] for opt in optimizers if opt is not None for group in opt.param_groups)
    update = sac_era.make_update(agent, args)
    data = ReplayBatch(*(tensor.to(cuda) for tensor in make_batch()))
    previous_loss, previous_mu = None, agent.actor.mu.weight.detach().clone()
    for _ in range(6):  # 3 warm-up calls, the capture, 2 replays
        stats = {name: value.clone() for name, value in update(data).items()}
        assert all(bool(torch.isfinite(value).all()) for value in stats.values())
        assert not torch.equal(agent.actor.mu.weight, previous_mu)  # the actor step ran
        assert previous_loss is None or not torch.equal(stats["losses/qf_loss"], previous_loss)
        previous_loss, previous_mu = stats["losses/qf_loss"], agent.actor.mu.weight.detach().clone()


def test_cudagraphs_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--cudagraphs .*needs a CUDA device .*--no-cuda"):
        sac_era.Args(cudagraphs=True, cuda=False).check()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"--cudagraphs .*torch\.cuda\.is_available"):
            sac_era.Args(cudagraphs=True).check()


def test_batch_momentum_is_checked():
    with pytest.raises(ValueError, match="--batch-momentum"):
        sac_era_batch.Args(batch_momentum=0.0).check()
