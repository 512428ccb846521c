"""The CSV files every agent run writes: the contract between the agents (era_utils.runs) and the benchmark
aggregation (benchmarks.aggregate). Plain constants, so the aggregation imports them without torch or TensorBoard."""

from __future__ import annotations

__all__ = ["ENTROPY_HEADER", "EPISODES_HEADER", "EVALUATIONS_HEADER"]

EPISODES_HEADER = ("global_step", "episodic_return", "episodic_length")
"""Columns of ``episodes.csv``: one row per finished training episode."""
EVALUATIONS_HEADER = ("global_step", "mean_return", "std_return", "num_episodes")
"""Columns of ``evaluations.csv``: one row per deterministic evaluation."""
ENTROPY_HEADER = (
    "global_step",
    "target_entropy",
    "activation_target",
    "gaussian_entropy_min",
    "gaussian_entropy_mean",
    "bounded_entropy_mean",
    "delta",
)
"""Columns of ``entropy.csv``: the entropy floor and the entropy each logged batch realised (nats, summed over the
action dimensions): ``target_entropy`` H0 = D * target_entropy_per_dim, ``activation_target`` what the activation
enforces (H0 + D * delta), the minimum and mean Gaussian entropy over the batch's states, the mean entropy of the
bounded (truncated / squashed) action distribution, and delta. Empty cells where a quantity does not apply."""
