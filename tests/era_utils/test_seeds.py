"""Stacking the seeds' optimiser states and slicing one seed's back out (era_utils.seeds)."""

from __future__ import annotations

import torch
from torch import nn, optim

from era_utils.seeds import seed_optimizer_state, stack_optimizer_states


def _stepped_adam(seed: int) -> optim.Adam:
    torch.manual_seed(seed)
    net = nn.Linear(8, 4)
    optimizer = optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(16, 8)).square().mean().backward()
    optimizer.step()
    return optimizer


def test_a_seeds_slice_of_the_stacked_state_is_its_own_state_and_owns_only_its_memory():
    optimizers = [_stepped_adam(seed) for seed in range(3)]
    groups = zip(*(o.param_groups[0]["params"] for o in optimizers), strict=True)
    params = [nn.Parameter(torch.stack(group).detach()) for group in groups]
    stacked = optim.Adam(params, lr=1e-2)
    stacked.load_state_dict(stack_optimizer_states(optimizers))
    for index, optimizer in enumerate(optimizers):
        own, sliced = optimizer.state_dict()["state"], seed_optimizer_state(stacked, index)["state"]
        for i, param_state in own.items():
            for key, value in param_state.items():
                torch.testing.assert_close(sliced[i][key], value, rtol=0, atol=0)
                if key != "step":  # a checkpoint of one seed must not carry the other seeds' moments
                    assert sliced[i][key].untyped_storage().nbytes() == value.numel() * value.element_size()
