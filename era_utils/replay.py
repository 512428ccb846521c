"""A replay buffer that lives on the training device, for the off-policy agents (``agents/sac_era.py``).

Storage is preallocated tensors on the device; :meth:`ReplayBuffer.sample` draws its indices there with
``torch.randint`` and gathers the rows there, so an update never touches NumPy or copies a batch from the host. The
semantics are those of Stable-Baselines3's ``ReplayBuffer(..., handle_timeout_termination=False)`` with
``optimize_memory_usage=False``: a ring of ``buffer_size // n_envs`` slots, one row per parallel env in each slot,
``dones`` = terminations only (a truncated episode is stored as not done, so the critic target bootstraps through the
time limit from the true final observation, which the agent stores as ``next_obs``), and samples drawn uniformly
over the filled slots, then uniformly over the envs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["ReplayBatch", "ReplayBuffer"]


class ReplayBatch(NamedTuple):
    """A minibatch of transitions; every field is a tensor on the buffer's device with leading axis ``B``."""

    observations: Tensor
    """``(B, *obs_shape)``"""
    actions: Tensor
    """``(B, action_dim)``, in the policy's units (``[-1, 1]`` for the SAC agents)"""
    next_observations: Tensor
    """``(B, *obs_shape)``: the true next observation, also at the end of a truncated episode"""
    rewards: Tensor
    """``(B, 1)``"""
    dones: Tensor
    """``(B, 1)``: 1.0 where the episode terminated (not where it was truncated)"""


class ReplayBuffer:
    """Transitions of ``n_envs`` parallel environments in a ring of preallocated device tensors.

    :param buffer_size: capacity in transitions, over all envs (as SB3: ``buffer_size // n_envs`` slots).
    :param obs_shape: shape of one observation.
    :param action_dim: size of one action vector.
    :param n_envs: parallel environments; :meth:`add` takes one transition of each.
    :param device: where the storage lives and batches are drawn.
    :raises ValueError: for a non-positive size, dimension or number of envs.
    """

    def __init__(
        self,
        buffer_size: int,
        obs_shape: tuple[int, ...],
        action_dim: int,
        n_envs: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, value in (("buffer_size", buffer_size), ("action_dim", action_dim), ("n_envs", n_envs)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.buffer_size = max(int(buffer_size) // int(n_envs), 1)
        self.n_envs = int(n_envs)
        self.device = torch.device(device)
        slots = (self.buffer_size, self.n_envs)
        self.observations = torch.zeros(*slots, *obs_shape, dtype=torch.float32, device=self.device)
        self.next_observations = torch.zeros_like(self.observations)
        self.actions = torch.zeros(*slots, int(action_dim), dtype=torch.float32, device=self.device)
        self.rewards = torch.zeros(slots, dtype=torch.float32, device=self.device)
        self.dones = torch.zeros(slots, dtype=torch.float32, device=self.device)
        self.pos = 0
        self.full = False

    def __len__(self) -> int:
        """Stored transitions, over all envs."""
        return (self.buffer_size if self.full else self.pos) * self.n_envs

    def _as_tensor(self, value: Any) -> Tensor:
        return torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value).to(
            self.device, torch.float32
        )

    def add(self, obs: Any, next_obs: Any, actions: Any, rewards: Any, dones: Any) -> None:
        """Store one transition per env (arrays or tensors with leading axis ``n_envs``).

        :param obs: observations the actions were taken in.
        :param next_obs: the true next observations (the final one where an episode ended in this step).
        :param actions: the actions, in the units the policy outputs.
        :param rewards: rewards, shape ``(n_envs,)``.
        :param dones: terminations (not truncations), shape ``(n_envs,)``.
        """
        self.observations[self.pos].copy_(self._as_tensor(obs).reshape(self.observations.shape[1:]))
        self.next_observations[self.pos].copy_(self._as_tensor(next_obs).reshape(self.observations.shape[1:]))
        self.actions[self.pos].copy_(self._as_tensor(actions).reshape(self.actions.shape[1:]))
        self.rewards[self.pos].copy_(self._as_tensor(rewards).reshape(self.n_envs))
        self.dones[self.pos].copy_(self._as_tensor(dones).reshape(self.n_envs))
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly with replacement, on the device (no host synchronisation).

        :raises ValueError: if the buffer is empty.
        """
        upper = self.buffer_size if self.full else self.pos
        if upper == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        slot_indices = torch.randint(0, upper, (batch_size,), device=self.device)
        env_indices = torch.randint(0, self.n_envs, (batch_size,), device=self.device)
        return self.get(slot_indices, env_indices)

    def get(self, slot_indices: Tensor, env_indices: Tensor) -> ReplayBatch:
        """The transitions at ``(slot_indices[k], env_indices[k])`` (what SB3's ``_get_samples`` returns for them)."""
        return ReplayBatch(
            observations=self.observations[slot_indices, env_indices],
            actions=self.actions[slot_indices, env_indices],
            next_observations=self.next_observations[slot_indices, env_indices],
            rewards=self.rewards[slot_indices, env_indices].unsqueeze(-1),
            dones=self.dones[slot_indices, env_indices].unsqueeze(-1),
        )

    def state_dict(self) -> dict[str, Any]:
        """The filled part of the storage (on the CPU) and the write position, for a training checkpoint."""
        filled = self.buffer_size if self.full else self.pos
        names = ("observations", "next_observations", "actions", "rewards", "dones")
        state: dict[str, Any] = {name: getattr(self, name)[:filled].cpu() for name in names}
        state.update(pos=self.pos, full=self.full, buffer_size=self.buffer_size, n_envs=self.n_envs)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved into a buffer of the same size, shapes and number of envs.

        :raises ValueError: if the saved buffer does not fit this one.
        """
        if (state["buffer_size"], state["n_envs"]) != (self.buffer_size, self.n_envs):
            raise ValueError(
                f"the saved replay buffer has {state['buffer_size']} slots x {state['n_envs']} envs, this one "
                f"{self.buffer_size} x {self.n_envs}"
            )
        for name in ("observations", "next_observations", "actions", "rewards", "dones"):
            saved, storage = state[name], getattr(self, name)
            if saved.shape[1:] != storage.shape[1:]:
                raise ValueError(
                    f"the saved replay buffer's {name} have shape {tuple(saved.shape[1:])} per slot, "
                    f"this one {tuple(storage.shape[1:])}"
                )
            storage[: len(saved)].copy_(saved)
        self.pos, self.full = int(state["pos"]), bool(state["full"])
