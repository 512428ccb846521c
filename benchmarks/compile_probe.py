"""The SAC-ERA update of ``agents/sac_era.py --compile`` against the same update eager: cold compile time and
steady-state speed-up. Run by :mod:`benchmarks.throughput` in a fresh process with an empty Inductor cache; prints one
JSON line.

The cold compile time is the wall time of the first ``--warmup-calls`` compiled calls (compilation, and any
recompilation once the optimisers hold state) less as many steady-state compiled calls. The speed-up alternates
blocks of eager and compiled updates on the same batch (the order flips every round) and reports the median and
interquartile range of the per-round ratios.

    python -m benchmarks.compile_probe --hidden-dim 256
    python -m benchmarks.compile_probe --activation relu --no-critic-layer-norm      # CleanRL's SAC network
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import tyro

from benchmarks.overhead import SHAPES, time_block
from benchmarks.workloads import Sizes, random_batch, sac_update


@dataclass
class Args:
    device: Literal["cpu", "cuda"] = "cpu"
    """where the update runs"""
    shape: str = "halfcheetah"
    """observation/action sizes, from benchmarks.overhead.SHAPES"""
    hidden_dim: int = 256
    """width of actor and critics"""
    batch_size: int = 256
    """minibatch size"""
    activation: Literal["elu", "relu"] = "elu"
    """hidden activation of actor and critics (the agent's --activation)"""
    critic_layer_norm: bool = True
    """LayerNorm in the critics (the agent's --critic-layer-norm)"""
    warmup_calls: int = 3
    """compiled calls counted as the cold compile (and eager calls before timing)"""
    rounds: int = 10
    """alternating rounds of eager and compiled blocks"""
    updates_per_round: int = 20
    """updates per block"""


def probe(args: Args) -> dict[str, float]:
    device = torch.device(args.device)
    obs_dim, action_dim = SHAPES[args.shape]
    sizes = Sizes(obs_dim, action_dim, sac_hidden_dim=args.hidden_dim, sac_batch_size=args.batch_size,
                  sac_activation=args.activation, sac_critic_layer_norm=args.critic_layer_norm)  # fmt: skip
    batch = random_batch(obs_dim, action_dim, args.batch_size, device, seed=0)
    eager, compiled = (sac_update(True, sizes, device, mode)[0] for mode in ("eager", "compile"))
    warmup_seconds = [time_block(compiled, batch, 1, device) for _ in range(args.warmup_calls)]
    time_block(eager, batch, args.warmup_calls, device)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for round_index in range(args.rounds):
        order = ("eager", "compiled") if round_index % 2 == 0 else ("compiled", "eager")
        for name in order:
            update = eager if name == "eager" else compiled
            times[name].append(time_block(update, batch, args.updates_per_round, device))
    speedups = np.array(times["eager"]) / np.array(times["compiled"])
    q25, q50, q75 = np.percentile(speedups, [25, 50, 75])
    compiled_s = float(np.median(times["compiled"]))
    return {
        "eager_ms": 1e3 * float(np.median(times["eager"])),
        "compiled_ms": 1e3 * compiled_s,
        "speedup": float(q50),
        "speedup_q25": float(q25),
        "speedup_q75": float(q75),
        "cold_compile_s": sum(warmup_seconds) - args.warmup_calls * compiled_s,
    }


if __name__ == "__main__":
    print(json.dumps(probe(tyro.cli(Args))))
