"""The training path has no data-dependent Python branch and reads nothing back to the host (issue 11.2).

* ``torch.compile(..., fullgraph=True)`` fails on any graph break, so it catches data-dependent branches and host
  reads in what it traces: the ERA activation with a tensor target, batch-level ERA in training mode and the
  truncated normal's ``rsample``, ``log_prob`` and ``entropy`` (on every one of its regimes), plus ``delta``'s loss.
* Dynamo does not trace ``backward()``, so ``EntropyDelta.update`` and batch-level ERA's running statistics are checked
  by recording every operator they dispatch: a host read (``.item()``, ``bool()``, ``float()`` of a tensor) goes
  through ``aten._local_scalar_dense``.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from era_policies import (
    BatchERA,
    EntropyDelta,
    TruncatedNormal,
    era_action_distribution,
    era_log_std,
    era_log_std_batch,
)
from tests.conftest import requires_cuda


class _HostReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _activations(std_logits, target, batch_era):
    log_normalizer = batch_era.log_normalizer(std_logits)
    return era_log_std(std_logits, target), era_log_std_batch(std_logits, target, log_normalizer=log_normalizer)


def _policy(mean, log_std, loss_delta):
    dist = era_action_distribution(mean, log_std)
    action = dist.rsample()
    entropy = dist.entropy().sum(-1)
    return action, dist.log_prob(action).sum(-1), entropy, loss_delta(entropy)


def test_training_path_compiles_without_graph_breaks():
    torch._dynamo.reset()
    era_delta = EntropyDelta(action_dim=3, target_entropy_per_dim=-0.5, initial_delta=0.1)
    target = era_delta.activation_target()
    # Means from the middle to saturated tanh (locations exactly on the bounds).
    mean = torch.tensor([[0.1, -3.0, 2.0], [30.0, -30.0, 0.0]], requires_grad=True)
    std_logits = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, -4.0]], requires_grad=True)

    batch_era, eager_batch_era = BatchERA(momentum=0.1).train(), BatchERA(momentum=0.1).train()
    activations = torch.compile(_activations, fullgraph=True, backend="aot_eager", dynamic=False)
    log_std, log_std_batch = activations(std_logits, target, batch_era)
    for got, want in zip((log_std, log_std_batch), _activations(std_logits, target, eager_batch_era), strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(batch_era.running_log_normalizer, eager_batch_era.running_log_normalizer)

    policy = torch.compile(_policy, fullgraph=True, backend="aot_eager", dynamic=False)
    torch.manual_seed(0)
    out = policy(mean, log_std, era_delta.loss)
    torch.manual_seed(0)
    for got, want in zip(out, _policy(mean, log_std, era_delta.loss), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    (out[0].sum() + out[1].sum() + out[2].sum() + log_std_batch.sum()).backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(std_logits.grad).all()


def _general(loc, scale):
    dist = TruncatedNormal(loc, scale)
    action = dist.rsample()
    return action, dist.log_prob(action), dist.entropy(), dist.mean


def test_general_truncated_normal_compiles_every_regime_without_graph_breaks():
    """ERA's own distribution evaluates one regime; the general class, compiled, evaluates all of them (locations
    inside, on and far outside the interval, intervals narrow against the scale) without a host read."""
    torch._dynamo.reset()
    loc = torch.tensor([0.1, -3.0, 2.0, 30.0, -30.0, 1.0, 0.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.5, 0.2, 1.0, 3.0, 1e-3, 1e-4, 1e3], dtype=torch.float64, requires_grad=True)
    compiled = torch.compile(_general, fullgraph=True, backend="aot_eager", dynamic=False)
    torch.manual_seed(0)
    out = compiled(loc, scale)
    torch.manual_seed(0)
    for got, want in zip(out, _general(loc, scale), strict=True):
        torch.testing.assert_close(got, want)
    sum(value.sum() for value in out).backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


def test_delta_update_and_batch_statistics_read_nothing_back():
    era_delta = EntropyDelta(action_dim=3, target_entropy_per_dim=-0.5)
    # Adam reads its step count on CPU unless capturable (a CUDA option): SGD isolates what update itself does.
    optimizer = torch.optim.SGD([era_delta.delta], lr=1e-2, momentum=0.9)
    batch_era = BatchERA(momentum=0.1).train()
    std_logits = torch.randn(8, 3)
    entropy = torch.randn(8)
    with _HostReads() as reads:
        for _ in range(2):
            batch_era.log_normalizer(std_logits)
            era_delta.update(entropy, optimizer)
    assert reads.count == 0
    # The recorder does see host reads, so the zero above means something.
    with _HostReads() as reads:
        float(era_delta.delta.detach())
    assert reads.count == 1


@requires_cuda
@pytest.mark.gpu
def test_cuda_training_path_reads_nothing_back():
    era_delta = EntropyDelta(action_dim=3, target_entropy_per_dim=-0.5).cuda()
    optimizer = torch.optim.Adam([era_delta.delta], lr=1e-2, capturable=True)
    batch_era = BatchERA().cuda().train()
    mean = torch.randn(64, 3, device="cuda") * 3
    std_logits = torch.randn(64, 3, device="cuda", requires_grad=True)
    with _HostReads() as reads:
        log_std, log_std_batch = _activations(std_logits, era_delta.activation_target(), batch_era)
        action, log_prob, entropy, _ = _policy(mean, log_std, era_delta.loss)
        (log_prob.sum() + log_std_batch.sum()).backward()
        era_delta.update(entropy, optimizer)
    assert reads.count == 0
    assert bool(torch.isfinite(action).all())
