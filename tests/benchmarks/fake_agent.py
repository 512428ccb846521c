"""A stand-in agent for the runner tests: obeys the agents' command-line contract and writes synthetic results fast.

Returns grow linearly with the step, are 1.5x higher without ``--no-era`` and shift by the seed, so tests can
predict the final scores: ``final = (100 or 150) + seed``. Like the real agents it refuses to start a new run in an
existing directory, writes a checkpoint (here: the step, as JSON) after every evaluation and continues a run with
``--resume RUN_DIR``, dropping rows logged after the checkpoint. With ``--no-resume-support`` it behaves like an agent
without ``--resume`` (its ``--help`` does not mention it).

Test hooks (environment variables); jobs are named by their job directory (the parent of the run directory):

- ``FAKE_AGENT_CALLS``: append ``<job>`` (``<job> --resume`` when resuming) to this file at every start.
- ``FAKE_AGENT_FAIL``: exit 1 without writing evaluations when the job equals this value.
- ``FAKE_AGENT_STOP``: ``<job>:<step>``: a fresh run of that job exits 3 right after its checkpoint at ``step``, as if
  it had been killed.
- ``FAKE_AGENT_DRAIN``: ``<job>:<pid>``: that job sends SIGUSR1 (drain) to process ``pid`` (the runner) as it starts,
  then waits a moment, so that the runner handles it while the job still runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

from era_utils.run_files import ENTROPY_HEADER, EVALUATIONS_HEADER


def write_entropy(path: Path, steps: list[int], era: bool) -> None:
    """Two actions, H0 = -1, delta 0.1: the activation target is -0.8; the Gaussian minimum sits 0.05 above it and
    truncation takes 0.3 nats off the mean. Without ERA the floor, H0 and delta cells are empty."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(ENTROPY_HEADER)
        for step in steps:
            floor = [-1.0, -0.8] if era else ["", ""]
            writer.writerow([step, *floor, -0.75, -0.5, -0.8, 0.1 if era else ""])


def parse_args() -> argparse.Namespace:
    resumable = "--no-resume-support" not in sys.argv
    parser = argparse.ArgumentParser(description="A stand-in agent for the runner tests.")
    parser.add_argument("--env-id", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--total-timesteps", type=int, required=True)
    parser.add_argument("--no-era", action="store_true")
    parser.add_argument("--no-resume-support", action="store_true")
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--eval-episodes", type=int, required=True)
    parser.add_argument("--cuda", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    if resumable:
        parser.add_argument("--resume", type=Path, default=None)
    args = parser.parse_args()
    args.resume = getattr(args, "resume", None)
    return args


def expected_return(step: int, total_timesteps: int, seed: int, era: bool) -> float:
    """The synthetic learning curve."""
    return (150.0 if era else 100.0) * step / total_timesteps + seed


def main() -> int:
    args = parse_args()
    run_dir = args.log_dir / args.run_name
    job = args.log_dir.name
    if calls := os.environ.get("FAKE_AGENT_CALLS"):
        with open(calls, "a") as file:
            file.write(job + (" --resume" if args.resume else "") + "\n")
    drain_job, _, runner_pid = os.environ.get("FAKE_AGENT_DRAIN", "").partition(":")
    if job == drain_job:
        os.kill(int(runner_pid), signal.SIGUSR1)
        time.sleep(0.5)
    if os.environ.get("FAKE_AGENT_FAIL") == job:
        print("fake failure", file=sys.stderr)
        return 1
    stop_job, _, stop_step = os.environ.get("FAKE_AGENT_STOP", "").partition(":")
    start_step = 0
    if args.resume is not None:
        start_step = json.loads((args.resume / "checkpoint.pt").read_text())["step"]
        with open(run_dir / "evaluations.csv") as file:
            kept = [row for row in list(csv.reader(file))[1:] if int(row[0]) <= start_step]
    else:
        run_dir.mkdir(parents=True)  # refuses an existing run directory, as the agents do
        (run_dir / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}))
        kept = []
    era = not args.no_era
    eval_steps = [*range(args.eval_every, args.total_timesteps, args.eval_every), args.total_timesteps]
    with open(run_dir / "evaluations.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerows([EVALUATIONS_HEADER, *kept])
        for step in (step for step in eval_steps if step > start_step):
            mean_return = expected_return(step, args.total_timesteps, args.seed, era)
            writer.writerow([step, mean_return, 1.0, args.eval_episodes])
            file.flush()
            (run_dir / "checkpoint.pt").write_text(json.dumps({"step": step}))
            if args.resume is None and job == stop_job and step >= int(stop_step):
                print(f"fake agent stopped at {step}")
                return 3
    write_entropy(run_dir / "entropy.csv", eval_steps, era)
    print(f"fake agent finished {job}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
