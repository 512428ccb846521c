"""SAC-ERA with batch-level ERA (docs/era-method.md §6): the entropy floor holds for the batch mean, not every state.

State-level ERA normalises each state's std logits by its own ``logsumexp``; batch-level ERA normalises them by one
batch-wide ``M = log(mean_b exp(logsumexp_i s_{b,i}))``::

    log_std_{b,i} = max(log_std_max + c * exp(s_{b,i} - M), log_std_min)

so the *mean* Gaussian entropy of a training batch equals ``D * (target_entropy_per_dim + delta)`` while single
states may explore more or less than that.

Only the actor differs from ``sac_era.py``, so only the actor is here: :class:`Actor` extends ``sac_era.Actor`` with
``batch_era`` (a :class:`~era_policies.BatchERA`, ERASACPolicy's name) and activates with ``era_log_std_batch``.
Everything else (options, critics, losses, update order, replay buffer, ``--no-era``, ``--resume``, ``--compile``,
``--cudagraphs``) is imported from ``sac_era.py`` rather than copied, so the two cannot drift apart:

* updates run with the actor in training mode: ``batch_era`` uses each batch's own ``M`` (the gradient flows through
  it) and folds it into a running estimate, like BatchNorm's running statistics (no host synchronisation, so the
  update can still be captured in a CUDA graph);
* acting runs in eval mode and uses that running ``M``, so a single state is activated consistently with the
  training batches; a run exports to ``ERASACPolicy(entropy_level="batch")``.

    python agents/sac_era_batch.py --env-id HalfCheetah-v5
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sac_era import Actor as StateLevelActor
from sac_era import Args as StateLevelArgs
from sac_era import main
from torch import Tensor

from era_policies import BatchERA, era_log_std_batch
from era_utils.experiment import parse_args


@dataclass
class Args(StateLevelArgs):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    batch_momentum: float = 0.01
    """momentum of the running normaliser M used to act (weight of the newest training batch)"""

    def check(self) -> None:
        super().check()
        if not 0.0 < self.batch_momentum <= 1.0:
            raise ValueError(f"--batch-momentum must lie in (0, 1], got {self.batch_momentum}")


class Actor(StateLevelActor):
    """The ERA actor with batch-level activation: ``batch_era`` supplies M (the batch's own in training mode, the
    running estimate in eval mode)."""

    def __init__(self, obs_dim: int, action_dim: int, args: Args) -> None:
        super().__init__(obs_dim, action_dim, args)
        self.batch_era = BatchERA(args.batch_momentum)

    def activate(self, std_logits: Tensor) -> Tensor:
        """Batch-level ERA: the batch-mean Gaussian entropy is H0' = D * (target_entropy_per_dim + delta)."""
        log_normalizer = self.batch_era.log_normalizer(std_logits)
        target = self.era_delta.activation_target()
        return era_log_std_batch(std_logits, target, self.log_std_min, self.log_std_max, log_normalizer)

    def sb3_policy_kwargs(self) -> dict[str, Any]:
        return {**super().sb3_policy_kwargs(), "entropy_level": "batch", "batch_momentum": self.batch_era.momentum}


if __name__ == "__main__":
    main(parse_args(Args), actor_class=Actor)
