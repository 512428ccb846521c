"""The SAC-ERA update of ``agents/sac_era.py --compile`` against the same update eager: cold compile time and
steady-state speed-up. Run by :mod:`benchmarks.throughput` in a fresh process with an empty Inductor cache; prints one
JSON line.

The cold compile time is the wall time of the first ``--warmup-calls`` compiled calls (compilation, and any
recompilation once the optimisers hold state) less as many steady-state compiled calls. The speed-up alternates
blocks of eager and compiled updates on the same batch (the order flips every round) and reports the median and
interquartile range of the per-round ratios.

``--matmul-split`` also profiles both updates and reports the milliseconds per update spent inside matrix products
(the self time of aten ``mm``/``addmm``/``bmm``/``baddbmm``: the BLAS calls behind every linear layer, which eager
code and Inductor's extern kernels make alike) and what is left: compiling can only shrink the rest, so
``eager_ms / compiled_matmul_ms`` bounds its speed-up.

    python -m benchmarks.compile_probe --hidden-dim 256
    python -m benchmarks.compile_probe --activation relu --no-critic-layer-norm      # CleanRL's SAC network
    python -m benchmarks.compile_probe --activation relu --no-critic-layer-norm --matmul-split
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    matmul_split: bool = False
    """also profile both updates and report their time inside matrix products"""
    profiled_updates: int = 20
    """updates per profile (with --matmul-split)"""


MATMUL_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"})
"""The matrix products behind the linear layers, in eager code and in Inductor's extern kernels alike."""


def matmul_ms(update: Callable, batch: object, calls: int, device: torch.device) -> float:
    """Milliseconds per call that ``update(batch)`` spends inside :data:`MATMUL_OPS` (their self time in torch's
    profiler: CPU time on the CPU, kernel time on CUDA)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        torch.cuda.synchronize(device)
    with torch.profiler.profile(activities=activities) as profile:
        for _ in range(calls):
            update(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    field = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total_us = sum(getattr(event, field) for event in profile.key_averages() if event.key in MATMUL_OPS)
    return total_us / 1e3 / calls


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
    result = {
        "eager_ms": 1e3 * float(np.median(times["eager"])),
        "compiled_ms": 1e3 * compiled_s,
        "speedup": float(q50),
        "speedup_q25": float(q25),
        "speedup_q75": float(q75),
        "cold_compile_s": sum(warmup_seconds) - args.warmup_calls * compiled_s,
    }
    if args.matmul_split:
        result["eager_matmul_ms"] = matmul_ms(eager, batch, args.profiled_updates, device)
        result["compiled_matmul_ms"] = matmul_ms(compiled, batch, args.profiled_updates, device)
        result["matmul_bound_speedup"] = result["eager_ms"] / result["compiled_matmul_ms"]
    return result


if __name__ == "__main__":
    print(json.dumps(probe(tyro.cli(Args))))
