"""A stand-in agent for the runner tests: obeys the agents' command-line contract and writes synthetic results fast.

Returns grow linearly with the step, are 1.5x higher without ``--no-era`` and shift by the seed, so tests can
predict the final scores: ``final = (100 or 150) + seed``.

Test hooks (environment variables):

- ``FAKE_AGENT_CALLS``: append the run name to this file at every start (to count which jobs ran).
- ``FAKE_AGENT_FAIL``: exit 1 without writing evaluations when the run name equals this value.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-id", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--total-timesteps", type=int, required=True)
    parser.add_argument("--no-era", action="store_true")
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--eval-episodes", type=int, required=True)
    parser.add_argument("--cuda", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args()


def expected_return(step: int, total_timesteps: int, seed: int, era: bool) -> float:
    """The synthetic learning curve."""
    return (150.0 if era else 100.0) * step / total_timesteps + seed


def main() -> int:
    args = parse_args()
    if calls := os.environ.get("FAKE_AGENT_CALLS"):
        with open(calls, "a") as file:
            file.write(args.run_name + "\n")
    if os.environ.get("FAKE_AGENT_FAIL") == args.run_name:
        print("fake failure", file=sys.stderr)
        return 1
    run_dir = args.log_dir / args.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    era = not args.no_era
    (run_dir / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}))
    with open(run_dir / "episodes.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["global_step", "episodic_return", "episodic_length"])
        for step in range(100, args.total_timesteps + 1, 100):
            writer.writerow([step, expected_return(step, args.total_timesteps, args.seed, era), 100])
    eval_steps = [*range(args.eval_every, args.total_timesteps, args.eval_every), args.total_timesteps]
    with open(run_dir / "evaluations.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["global_step", "mean_return", "std_return", "num_episodes"])
        for step in eval_steps:
            mean_return = expected_return(step, args.total_timesteps, args.seed, era)
            writer.writerow([step, mean_return, 1.0, args.eval_episodes])
    print(f"fake agent finished {args.run_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
