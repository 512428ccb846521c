"""SAC-ERA with batch-level ERA (docs/era-method.md §6): the entropy floor holds for the batch mean, not every state.

State-level ERA normalises each state's std logits by its own ``logsumexp``; batch-level ERA normalises them by one
batch-wide ``M = log(mean_b exp(logsumexp_i s_{b,i}))``::

    log_std_{b,i} = max(log_std_max + c * exp(s_{b,i} - M), log_std_min)

so the *mean* Gaussian entropy of a training batch equals ``D * (target_entropy_per_dim + delta)`` while single
states may explore more or less than that.

Only the level of the ERA head differs from ``sac_era.py``, so only that is here: ``entropy_level = "batch"`` makes
``sac_era.Actor`` build its :class:`~era_policies.ERAStd` with ``level="batch"`` (its ``batch_era``, ERASACPolicy's
name), and ``--batch-momentum`` sets that head's running normaliser. Everything else (options, critics, losses,
update order, replay buffer, ``--no-era``, ``--resume``, ``--compile``, ``--cudagraphs``) is ``sac_era.py``'s, imported
rather than copied, so the two cannot drift apart:

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
from typing import ClassVar, Literal

from sac_era import Args as StateLevelArgs
from sac_era import main

from era_utils.experiment import parse_args


@dataclass
class Args(StateLevelArgs):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    entropy_level: ClassVar[Literal["state", "batch"]] = "batch"
    batch_momentum: float = 0.01
    """momentum of the running normaliser M used to act (weight of the newest training batch)"""

    def check(self) -> None:
        super().check()
        if not 0.0 < self.batch_momentum <= 1.0:
            raise ValueError(f"--batch-momentum must lie in (0, 1], got {self.batch_momentum}")


if __name__ == "__main__":
    main(parse_args(Args))
