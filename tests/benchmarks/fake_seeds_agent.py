"""A stand-in for an agent that trains consecutive seeds in one process (``agents/sac_era_seeds.py``'s contract:
``--num-seeds N --run-dirs TEMPLATE`` with ``{seed}``, ``--resume`` the first seed's run directory): it runs
``fake_agent.py`` once per seed, in that seed's run directory, and appends ``process <seeds>`` to
``FAKE_AGENT_CALLS`` first."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--num-seeds", type=int, required=True)
    parser.add_argument("--run-dirs", required=True)
    parser.add_argument("--resume", type=Path, default=None)
    args, rest = parser.parse_known_args()
    seeds = range(args.seed, args.seed + args.num_seeds)
    if calls := os.environ.get("FAKE_AGENT_CALLS"):
        with open(calls, "a") as file:
            file.write(f"process {' '.join(map(str, seeds))}\n")
    for seed in seeds:
        run_dir = Path(args.run_dirs.format(seed=seed))
        resume = ["--resume", str(run_dir)] if args.resume is not None else []
        command = [sys.executable, str(FAKE_AGENT), *rest, "--seed", str(seed), "--log-dir", str(run_dir.parent)]
        returncode = subprocess.run([*command, "--run-name", run_dir.name, *resume]).returncode
        if returncode != 0:
            return returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
