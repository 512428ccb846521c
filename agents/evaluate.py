"""Reload a policy saved by an agent's ``--save-model`` and run deterministic evaluation episodes.

    python agents/evaluate.py runs/HalfCheetah-v5__sac_era__1__1700000000 --episodes 10

The policy is an ordinary SB3 policy file (``policy.pt``), so it also loads directly, e.g.
``ERASACPolicy.load("runs/<run>/policy.pt")``; ``checkpoint.json`` beside it names the class and the environment,
and PPO runs keep their observation statistics in ``obs_normalizer.npz``. (``checkpoint.pt``, the training checkpoint
that ``--resume`` continues from, is a different file.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated

import tyro

from era_utils.experiment import CheckpointError, check_at_least, evaluate, load_policy, parse_args


@dataclass
class Args:
    run_dir: Annotated[str, tyro.conf.Positional]
    """run directory holding `policy.pt` and `checkpoint.json`"""
    episodes: int = 10
    """evaluation episodes"""
    seed: int = 0
    """seed of the evaluation environment"""
    env_id: str | None = None
    """evaluate on another environment id than the one trained on"""
    capture_video: bool = False
    """record the episodes into `{run_dir}/videos` (needs `pip install "era-policies[video]"`)"""
    device: str = "auto"
    """torch device for the policy"""

    def check(self) -> None:
        check_at_least("--episodes", self.episodes, 1)


def main(args: Args) -> None:
    args.check()
    policy, obs_normalizer, meta = load_policy(args.run_dir, device=args.device)
    env_id = args.env_id or meta["env_id"]
    returns = evaluate(
        policy, env_id, args.episodes, args.seed, obs_normalizer, args.capture_video, f"{args.run_dir}/videos"
    )
    print(f"{meta['policy_class']} trained {meta['global_step']} steps on {meta['env_id']}")
    print(f"{env_id}: return {returns.mean():.2f} +- {returns.std():.2f} over {len(returns)} episodes")
    print("episode returns:", " ".join(f"{r:.2f}" for r in returns))


if __name__ == "__main__":
    try:
        main(parse_args(Args))
    except (CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
