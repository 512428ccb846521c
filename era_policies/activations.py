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
from numbers import Real
from typing import Any, Literal

import torch
from torch import Tensor, nn

from era_policies.delta import (
    HALF_LOG_2PI_E,
    EntropyDelta,
    _finite_real,
    check_action_dim,
    check_batch_momentum,
    check_log_std_range,
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
    """The public functions' checks; :class:`ERAStd` validates its options once instead.

    Only Python-side shape checks and, on CPU outside ``torch.compile``, one host read of the logits' row maxima and
    of the largest target: values are not read on CUDA (a device synchronisation) or while compiling (a graph break).
    """
    if not isinstance(std_logits, Tensor) or not std_logits.is_floating_point():
        raise ValueError("std_logits must be a floating-point tensor of shape (..., D).")
    if std_logits.dim() == 0 or std_logits.shape[-1] == 0:
        raise ValueError(f"std_logits must have a non-empty last (action) axis, got shape {tuple(std_logits.shape)}.")
    log_std_min, log_std_max = _finite_real(log_std_min, "log_std_min"), _finite_real(log_std_max, "log_std_max")
    if not log_std_min < log_std_max:
        raise ValueError(f"need log_std_min < log_std_max, got {log_std_min} and {log_std_max}.")
    action_dim = std_logits.shape[-1]
    read_values = not std_logits.is_cuda and not torch.compiler.is_compiling()
    if read_values and not bool(torch.isfinite(std_logits.amax(-1)).all()):
        raise ValueError(
            "std_logits must be finite (-inf entries are allowed while each row has a finite maximum); got +inf or "
            "NaN, which would make the softmax NaN. Check the network producing them."
        )
    if isinstance(target_entropy, Tensor):
        batch_shape = std_logits.shape[:-1]
        if not target_entropy.is_floating_point() or not _broadcasts_to(target_entropy.shape, batch_shape):
            raise ValueError(
                f"target_entropy must be a float or a floating-point tensor broadcastable to std_logits.shape[:-1] = "
                f"{tuple(batch_shape)}, got a {target_entropy.dtype} tensor of shape {tuple(target_entropy.shape)}."
            )
        # There the target usually comes from EntropyDelta, which keeps it feasible by construction.
        if target_entropy.is_cuda or not read_values or target_entropy.numel() == 0:
            return
        worst = float(target_entropy.detach().max())  # NaN propagates into the check
        # A target computed in the tensor's precision at the limit may exceed it by its rounding.
        worst -= torch.finfo(target_entropy.dtype).eps * abs(worst)
    else:
        worst = _finite_real(target_entropy, "target_entropy")
    try:
        check_target_entropy_per_dim(worst / action_dim, log_std_max)
    except ValueError as err:
        raise ValueError(f"target_entropy={worst:.6g} for D={action_dim} action dimensions: {err}") from None


def _broadcasts_to(shape: torch.Size, target_shape: torch.Size) -> bool:
    """Whether ``shape`` broadcasts to ``target_shape`` (pure Python: no dispatcher call on the checking path)."""
    if len(shape) > len(target_shape):
        return False
    return all(size in (1, full) for size, full in zip(reversed(shape), reversed(target_shape), strict=False))


def _check_batch(std_logits: Tensor) -> None:
    if std_logits.numel() == 0:
        raise ValueError(
            f"std_logits must hold at least one state for batch-level ERA, got shape {tuple(std_logits.shape)}."
        )


def _budget(target_entropy: float | Tensor, action_dim: int, log_std_max: float) -> float | Tensor:
    """``c = H0' - D * (log_std_max + 0.5 log(2 pi e))``, ``<= 0`` for a feasible target, with a trailing axis for a
    per-state tensor target so that it broadcasts against the ``(..., D)`` weights."""
    budget = target_entropy - action_dim * (HALF_LOG_2PI_E + log_std_max)
    return budget.unsqueeze(-1) if isinstance(budget, Tensor) and budget.dim() > 0 else budget


def _log_std(weights: Tensor, budget: float | Tensor, log_std_min: float, log_std_max: float) -> Tensor:
    """ERA's formula ``clamp(log_std_max + c * w, log_std_min, log_std_max)``; ``w`` the softmax (state level) or
    ``exp(s - M)`` (batch level). The upper clamp only removes the rounding of a target at the feasibility limit."""
    return torch.clamp(log_std_max + budget * weights, log_std_min, log_std_max)


def _activate(
    std_logits: Tensor,
    log_normalizer: Tensor | None,
    target_entropy: float | Tensor,
    log_std_min: float,
    log_std_max: float,
) -> Tensor:
    """Validate, then ``_log_std`` with the per-state softmax (``M=None``) or the given normaliser ``M``."""
    _check_activation_args(std_logits, target_entropy, log_std_min, log_std_max)
    weights = torch.softmax(std_logits, dim=-1) if log_normalizer is None else torch.exp(std_logits - log_normalizer)
    return _log_std(weights, _budget(target_entropy, std_logits.shape[-1], log_std_max), log_std_min, log_std_max)


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
        self.momentum = check_batch_momentum(momentum, "momentum")
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

    The one place where ERA's options meet the activation: every option is validated here, once, and ``forward`` runs
    the formula only (no validation, no Python shape check, no host read, so it can be compiled and captured in a CUDA
    graph). The activation target is ``H0' = D * (target_entropy_per_dim + delta)``.

    Children: ``era_delta`` (:class:`~era_policies.EntropyDelta`, a constant or learned ``delta``) and ``batch_era``
    (:class:`BatchERA` for ``level="batch"``, else ``None``). A network that holds the head as an attribute and must
    still load state dicts saved when ``era_delta`` / ``batch_era`` were its own children calls
    :meth:`accept_legacy_state_dicts` on itself once.

    :param action_dim: ``D``.
    :param target_entropy_per_dim: ``H0 / D`` in nats.
    :param log_std_min: lower clamp.
    :param log_std_max: upper bound, at most :data:`~era_policies.MAX_LOG_STD_MAX` (the action distribution's
        requirement, see :func:`~era_policies.check_log_std_range`).
    :param level: ``"state"`` (every state keeps the target) or ``"batch"`` (the batch mean does).
    :param delta: a constant ``delta >= 0`` (nats per dimension) or ``"auto"`` to learn it.
    :param batch_momentum: momentum of :class:`BatchERA`'s running normaliser, in ``(0, 1]`` (used by
        ``level="batch"`` only, checked always).
    :raises ValueError: naming the option, for any option ERA cannot work with (``delta=True`` included).
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
        learnable = isinstance(delta, str) and delta == "auto"
        if not learnable:
            if isinstance(delta, bool) or not isinstance(delta, Real) or not delta >= 0:
                raise ValueError(f"delta must be a float >= 0 or 'auto', got {delta!r}.")
        self.log_std_min, self.log_std_max = check_log_std_range(log_std_min, log_std_max)
        self.action_dim = check_action_dim(action_dim)
        self.level = level
        self.era_delta = EntropyDelta(
            self.action_dim,
            target_entropy_per_dim,
            log_std_max=self.log_std_max,
            initial_delta=0.0 if learnable else float(delta),
            learnable=learnable,
        )
        momentum = check_batch_momentum(batch_momentum, "batch_momentum")
        self.batch_era = BatchERA(momentum) if level == "batch" else None
        # c at delta = 0; forward adds D * delta (see EntropyDelta.activation_target).
        self._budget_at_zero_delta = _budget(
            self.action_dim * self.era_delta.target_entropy_per_dim, self.action_dim, self.log_std_max
        )

    @property
    def target_entropy(self) -> float:
        """``H0``: the total entropy floor the bounded policy should keep."""
        return self.era_delta.target_entropy

    def forward(self, std_logits: Tensor) -> Tensor:
        """:param std_logits: shape ``(..., action_dim)`` (not checked). :return: log standard deviations, same
        shape."""
        if self.batch_era is None:
            weights = torch.softmax(std_logits, dim=-1)
        else:
            weights = torch.exp(std_logits - self.batch_era.log_normalizer(std_logits))
        budget = self.era_delta.delta.detach() * self.action_dim + self._budget_at_zero_delta
        return _log_std(weights, budget, self.log_std_min, self.log_std_max)

    @staticmethod
    def accept_legacy_state_dicts(owner: nn.Module) -> None:
        """Let ``owner`` load state dicts written when ``era_delta`` and ``batch_era`` were its own children.

        Registers one load-state-dict pre-hook on ``owner`` that renames ``<owner>.era_delta.*`` and
        ``<owner>.batch_era.*`` to ``<owner>.<head>.era_delta.*`` / ``.batch_era.*``, ``<head>`` being the name of
        ``owner``'s :class:`ERAStd` child (the hook runs at load time, so the head may be assigned later). A hook on
        the head itself cannot do it: PyTorch hands each child only the keys under its own name.
        """
        owner.register_load_state_dict_pre_hook(_rename_legacy_era_keys)

    def extra_repr(self) -> str:
        return f"level={self.level!r}, log_std_min={self.log_std_min}, log_std_max={self.log_std_max}"


def _rename_legacy_era_keys(owner: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    heads = [name for name, child in owner.named_children() if isinstance(child, ERAStd)]
    if len(heads) != 1:
        return
    for key in [k for k in state_dict if k.startswith((prefix + "era_delta.", prefix + "batch_era."))]:
        state_dict[f"{prefix}{heads[0]}.{key[len(prefix) :]}"] = state_dict.pop(key)
