"""SAC-ERA with batch-level ERA (reference notes §6): the entropy floor holds for the batch mean, not every state.

State-level ERA normalises each state's std logits by its own ``logsumexp``; batch-level ERA normalises them by one
batch-wide ``M = log(mean_b exp(logsumexp_i s_{b,i}))``::

    log_std_{b,i} = max(log_std_max + c * exp(s_{b,i} - M), log_std_min)

so the *mean* Gaussian entropy of a training batch equals ``D * (target_entropy_per_dim + delta)`` while single
states may explore more or less than that. Everything else is ``sac_era.py``: the same networks, losses and update
order, and the same ``--no-era`` twin. What batch level changes in that loop:

* updates run with the policy in training mode, so the actor's ``BatchERA`` module uses each batch's own ``M`` (the
  gradient flows through it) and folds it into a running estimate, like BatchNorm's running statistics;
* acting (``policy.set_training_mode(False)`` before sampling, and ``predict`` in evaluation) uses that running ``M``,
  so a single state is activated consistently with the training batches.

    python agents/sac_era_batch.py --env-id HalfCheetah-v5
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import tyro
from sac_era import Args as SACERAArgs
from sac_era import main


@dataclass
class Args(SACERAArgs):
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    entropy_level: Literal["state", "batch"] = "batch"
    """batch-level ERA (the point of this script); `state` gives back sac_era.py"""


if __name__ == "__main__":
    main(tyro.cli(Args))
