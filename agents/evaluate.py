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

from era_utils.dependencies import AGENTS_INSTALL, MissingDependencyError, require

try:
    tyro = require("tyro", AGENTS_INSTALL, "agents/evaluate.py")
    from era_utils.envs import NonFiniteError, check_env_id
    from era_utils.experiment import check_at_least, evaluate, load_policy, parse_args
except MissingDependencyError as missing:
    sys.exit(f"error: {missing}")


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
        if self.env_id is not None:
            check_env_id(self.env_id)


def main(args: Args) -> None:
    policy, obs_normalizer, meta = load_policy(args.run_dir, device=args.device)
    env_id = args.env_id or meta["env_id"]
    try:
        returns = evaluate(
            policy, env_id, args.episodes, args.seed, obs_normalizer, args.capture_video, f"{args.run_dir}/videos"
        )
    except ValueError as err:  # the env's spaces are not the policy's
        raise ValueError(f"--env-id {env_id}: {err}" if args.env_id else str(err)) from err
    print(f"{meta['policy_class']} trained {meta['global_step']} steps on {meta['env_id']}")
    print(f"{env_id}: return {returns.mean():.2f} +- {returns.std():.2f} over {len(returns)} episodes")
    print("episode returns:", " ".join(f"{r:.2f}" for r in returns))


if __name__ == "__main__":
    try:
        main(parse_args(Args))
    except (ValueError, FileNotFoundError, NonFiniteError) as err:  # ValueError includes CheckpointError
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
