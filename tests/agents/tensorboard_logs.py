"""Reading an agent run's TensorBoard events back, for the agents' command-line tests."""

from __future__ import annotations

from pathlib import Path


def tensorboard_tags(run_dir: Path) -> set[str]:
    """The scalar tags written to ``run_dir``'s TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return set(accumulator.Tags()["scalars"])
