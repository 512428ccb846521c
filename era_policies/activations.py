"""ERA activations for continuous actions (docs/era-method.md §2 and §6).

A policy network outputs raw standard-deviation logits ``s`` of shape ``(..., D)``. The activation maps them to
log standard deviations whose diagonal-Gaussian differential entropy equals a target ``H0'`` exactly (where the lower
clamp does not bind; the clamp can only raise it)::

    c = H0' - D * (log_std_max + 0.5 * log(2*pi*e))          # must be <= 0
    log_std_i = max(log_std_max + c * softmax(s)_i, log_std_min)

The softmax lets the network decide which dimensions stay random; ``sum_i softmax(s)_i = 1`` fixes the budget.
Batch-level ERA replaces the per-state normaliser ``logsumexp_i s_i`` by a batch-wide one, so only the batch *mean*
entropy is pinned (our formulation of the paper's batch-level variant; see docs/era-method.md §6).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from era_policies.delta import (
    HALF_LOG_2PI_E,
    EntropyDelta,
    _finite_real,
    check_action_dim,
    check_target_entropy_per_dim,
)

__all__ = [
    "BatchERA",
    "ERAStd",
    "batch_log_normalizer",
    "era_log_std",
    "era_log_std_batch",
    "gaussian_entropy",
]


def gaussian_entropy(log_std: Tensor) -> Tensor:
    """Differential entropy of a diagonal Gaussian, summed over the last axis: ``sum_i log_std_i + D/2 log(2 pi e)``."""
    return log_std.sum(-1) + log_std.shape[-1] * HALF_LOG_2PI_E


def _check_activation_args(
    std_logits: Tensor, target_entropy: float | Tensor, log_std_min: float, log_std_max: float
) -> None:
    if not isinstance(std_logits, Tensor) or not std_logits.is_floating_point():
        raise ValueError("std_logits must be a floating-point tensor of shape (..., D).")
    if std_logits.dim() == 0 or std_logits.shape[-1] == 0:
        raise ValueError(f"std_logits must have a non-empty last (action) axis, got shape {tuple(std_logits.shape)}.")
    if not log_std_min < log_std_max:
        raise ValueError(f"need log_std_min < log_std_max, got {log_std_min} and {log_std_max}.")
    action_dim = std_logits.shape[-1]
    if isinstance(target_entropy, Tensor):
        batch_shape = std_logits.shape[:-1]
        if not target_entropy.is_floating_point() or not _broadcasts_to(target_entropy.shape, batch_shape):
            raise ValueError(
                f"target_entropy must be a float or a floating-point tensor broadcastable to std_logits.shape[:-1] = "
                f"{tuple(batch_shape)}, got a {target_entropy.dtype} tensor of shape {tuple(target_entropy.shape)}."
            )
        # Reading the values costs a device synchronisation (and a graph break when compiled); there the target comes
        # from EntropyDelta, which keeps it feasible by construction.
        if target_entropy.is_cuda or torch.compiler.is_compiling() or target_entropy.numel() == 0:
            return
        worst = float(target_entropy.detach().max())  # NaN propagates into the check
    else:
        worst = _finite_real(target_entropy, "target_entropy")
    try:
        check_target_entropy_per_dim(worst / action_dim, log_std_max)
    except ValueError as err:
        raise ValueError(f"target_entropy={worst:.6g} for D={action_dim} action dimensions: {err}") from None


def _broadcasts_to(shape: torch.Size, target_shape: torch.Size) -> bool:
    try:
        return torch.broadcast_shapes(shape, target_shape) == target_shape
    except RuntimeError:
        return False


def _check_batch(std_logits: Tensor) -> None:
    if std_logits.numel() == 0:
        raise ValueError(
            f"std_logits must hold at least one state for batch-level ERA, got shape {tuple(std_logits.shape)}."
        )


def _activate(
    std_logits: Tensor,
    log_normalizer: Tensor | None,
    target_entropy: float | Tensor,
    log_std_min: float,
    log_std_max: float,
    check_args: bool = True,
) -> Tensor:
    """``max(log_std_max + c * exp(s - M), log_std_min)``; ``M=None`` means the per-state softmax normaliser.

    ``check_args=False`` is for :class:`ERAStd`, whose options were validated once and whose target is kept feasible
    by :class:`~era_policies.EntropyDelta`: it keeps the per-call checks (a host read of the target) off the hot path.
    """
    if check_args:
        _check_activation_args(std_logits, target_entropy, log_std_min, log_std_max)
    action_dim = std_logits.shape[-1]
    budget = target_entropy - action_dim * (HALF_LOG_2PI_E + log_std_max)  # c <= 0
    if isinstance(budget, Tensor):
        budget = budget.unsqueeze(-1)  # broadcasts over the batch axes of std_logits
    weights = torch.softmax(std_logits, dim=-1) if log_normalizer is None else torch.exp(std_logits - log_normalizer)
    return torch.clamp(log_std_max + budget * weights, min=log_std_min)


def era_log_std(
    std_logits: Tensor,
    target_entropy: float | Tensor,
    log_std_min: float = -8.0,
    log_std_max: float = 0.0,
) -> Tensor:
    """State-level ERA: log standard deviations whose Gaussian entropy is ``>= target_entropy`` for every state.

    :param std_logits: raw network outputs, shape ``(..., D)``.
    :param target_entropy: total differential entropy ``H0'`` in nats of the ``D``-dimensional Gaussian; a float or a
        tensor broadcastable to ``std_logits.shape[:-1]`` (e.g. with a learned delta added).
    :param log_std_min: lower clamp on each log standard deviation.
    :param log_std_max: upper bound ``log sigma_max`` on each log standard deviation.
    :return: log standard deviations, shape ``(..., D)``, in ``[log_std_min, log_std_max]``.
    :raises ValueError: if ``target_entropy > D * (log_std_max + 0.5*log(2*pi*e))`` (infeasible) or bad arguments.
    """
    return _activate(std_logits, None, target_entropy, log_std_min, log_std_max)


def batch_log_normalizer(std_logits: Tensor) -> Tensor:
    """Batch-level normaliser ``M = log(mean_b exp(logsumexp_i s_{b,i}))`` over all leading axes; a scalar tensor.

    :raises ValueError: for an empty batch (no ``M`` exists).
    """
    _check_batch(std_logits)
    per_state = torch.logsumexp(std_logits, dim=-1).reshape(-1)
    return torch.logsumexp(per_state, dim=0) - math.log(per_state.numel())


def era_log_std_batch(
    std_logits: Tensor,
    target_entropy: float | Tensor,
    log_std_min: float = -8.0,
    log_std_max: float = 0.0,
    log_normalizer: Tensor | None = None,
) -> Tensor:
    """Batch-level ERA: the *batch-mean* Gaussian entropy equals ``target_entropy`` (``>=`` where clamps bind).

    ``log_std_{b,i} = max(log_std_max + c * exp(s_{b,i} - M), log_std_min)`` with ``M`` from
    :func:`batch_log_normalizer` unless ``log_normalizer`` is given (e.g. a running estimate when acting on one
    state). Single states may sit above or below the target.

    :param std_logits: shape ``(..., D)``; all leading axes form the batch.
    :param target_entropy: as in :func:`era_log_std`.
    :param log_normalizer: ``M`` to use instead of the batch's own (scalar tensor).
    :return: log standard deviations, shape ``(..., D)``.
    """
    _check_batch(std_logits)
    if log_normalizer is None:
        log_normalizer = batch_log_normalizer(std_logits)
    return _activate(std_logits, log_normalizer, target_entropy, log_std_min, log_std_max)


class BatchERA(nn.Module):
    """Batch-level ERA with a running normaliser for acting, in the manner of BatchNorm's running statistics.

    In training mode the batch's own normaliser ``M`` is used (gradients flow through it) and folded into
    ``running_log_normalizer`` by an exponential moving average taken in log space. In eval mode the running value is
    used, so a single state is activated consistently with the training batches. Before any training batch has been
    seen, eval mode falls back to the input's own normaliser (state-level for a single state).

    :param momentum: weight of the newest batch in the moving average of ``exp(M)``.
    """

    running_log_normalizer: Tensor
    num_batches_tracked: Tensor

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must lie in (0, 1], got {momentum}.")
        self.momentum = momentum
        self.register_buffer("running_log_normalizer", torch.zeros(()))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _update_running(self, log_normalizer: Tensor) -> None:
        new = log_normalizer.detach().to(self.running_log_normalizer.dtype)
        if self.momentum < 1.0:
            blended = torch.logaddexp(
                self.running_log_normalizer + math.log1p(-self.momentum), new + math.log(self.momentum)
            )
            # torch.where instead of an `if` keeps the training step free of host synchronisation.
            new = torch.where(self.num_batches_tracked == 0, new, blended)
        self.running_log_normalizer.copy_(new)
        self.num_batches_tracked += 1

    def forward(
        self,
        std_logits: Tensor,
        target_entropy: float | Tensor,
        log_std_min: float = -8.0,
        log_std_max: float = 0.0,
    ) -> Tensor:
        """:return: log standard deviations, shape ``(..., D)`` (see :func:`era_log_std_batch`)."""
        return era_log_std_batch(std_logits, target_entropy, log_std_min, log_std_max, self.log_normalizer(std_logits))

    def log_normalizer(self, std_logits: Tensor) -> Tensor:
        """``M`` to activate ``std_logits`` with: the batch's own in training (updating the running value), the running
        value in eval mode, or the input's own before any training batch was seen."""
        if self.training:
            log_normalizer = batch_log_normalizer(std_logits)
            self._update_running(log_normalizer)
            return log_normalizer
        if int(self.num_batches_tracked) > 0:
            return self.running_log_normalizer.to(std_logits.dtype)
        return batch_log_normalizer(std_logits)

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}"


class ERAStd(nn.Module):
    """ERA standard-deviation head: std logits ``(..., D)`` -> log standard deviations ``(..., D)``.

    Bundles the choices a policy makes once: the per-dimension target, the log-std range, the level (state or
    batch) and the compensation ``delta`` (a constant, or learned with :class:`~era_policies.EntropyDelta`).
    The activation target is ``H0' = D * (target_entropy_per_dim + delta)``.

    :param action_dim: ``D``.
    :param target_entropy_per_dim: ``H0 / D`` in nats.
    :param log_std_min: lower clamp.
    :param log_std_max: upper bound.
    :param level: ``"state"`` (every state keeps the target) or ``"batch"`` (the batch mean does).
    :param delta: a constant ``delta >= 0`` (nats per dimension) or ``"auto"`` to learn it.
    :param batch_momentum: momentum of :class:`BatchERA`'s running normaliser (``level="batch"`` only).
    """

    def __init__(
        self,
        action_dim: int,
        target_entropy_per_dim: float,
        log_std_min: float = -8.0,
        log_std_max: float = 0.0,
        level: Literal["state", "batch"] = "state",
        delta: float | Literal["auto"] = 0.0,
        batch_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        if level not in ("state", "batch"):
            raise ValueError(f"level must be 'state' or 'batch', got {level!r}.")
        if not log_std_min < log_std_max:
            raise ValueError(f"need log_std_min < log_std_max, got {log_std_min} and {log_std_max}.")
        learnable = delta == "auto"
        if not learnable and not isinstance(delta, (int, float)):
            raise ValueError(f"delta must be a float >= 0 or 'auto', got {delta!r}.")
        self.action_dim = check_action_dim(action_dim)
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        self.level = level
        self.era_delta = EntropyDelta(
            self.action_dim,
            target_entropy_per_dim,
            log_std_max=log_std_max,
            initial_delta=0.0 if learnable else float(delta),
            learnable=learnable,
        )
        self.batch_era = BatchERA(batch_momentum) if level == "batch" else None

    @property
    def target_entropy(self) -> float:
        """``H0``: the total entropy floor the bounded policy should keep."""
        return self.era_delta.target_entropy

    def forward(self, std_logits: Tensor) -> Tensor:
        """:param std_logits: shape ``(..., action_dim)``. :return: log standard deviations, same shape."""
        if std_logits.dim() == 0 or std_logits.shape[-1] != self.action_dim:
            raise ValueError(
                f"std_logits must have shape (..., action_dim={self.action_dim}), got {tuple(std_logits.shape)}."
            )
        log_normalizer = None if self.batch_era is None else self.batch_era.log_normalizer(std_logits)
        target = self.era_delta.activation_target()
        return _activate(std_logits, log_normalizer, target, self.log_std_min, self.log_std_max, check_args=False)

    def extra_repr(self) -> str:
        return f"level={self.level!r}, log_std_min={self.log_std_min}, log_std_max={self.log_std_max}"
