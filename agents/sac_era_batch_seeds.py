"""Batch-level SAC-ERA (``sac_era_batch.py``) with several seeds trained together in one process (``--num-seeds N``).

Only the level of the ERA head differs from ``sac_era_seeds.py``, so only the options are here: ``sac_era_batch.py``'s
(``--batch-momentum``) with the seeds' (``--num-seeds``, ``--run-dirs``); the stacked update, the loop and the run
directories are ``sac_era_seeds.py``'s, imported rather than copied. Each seed's running normaliser (``batch_era``'s
buffers, what it acts with) is stacked along the seed axis with its parameters and updated in place, per seed, by the
vmapped forward passes of its own batches; it is checkpointed and exported with the seed's actor.
``--num-seeds 1`` is ``sac_era_batch.py`` itself.

    python agents/sac_era_batch_seeds.py --env-id HalfCheetah-v5 --num-seeds 3 --seed 1     # seeds 1, 2, 3
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import sac_era_batch
import sac_era_seeds

from era_utils.experiment import parse_args


@dataclass
class Args(sac_era_batch.Args, sac_era_seeds.Args):  # exp_name, entropy_level, --batch-momentum: sac_era_batch's
    single_agent: ClassVar[str] = "sac_era_batch.py"


if __name__ == "__main__":
    sac_era_seeds.main(parse_args(Args))
