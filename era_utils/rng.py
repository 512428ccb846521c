"""Random states and devices of a run: seeding (CleanRL's recipe), and the global random states a checkpoint keeps."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "restore_rng_state", "seed_everything", "select_device"]


def capture_rng_state() -> dict[str, Any]:
    """The global random states: Python's ``random``, NumPy's legacy global generator, torch CPU (and CUDA when in
    use). Generators an agent owns (``np.random.default_rng``) are saved by the agent
    (``rng.bit_generator.state``)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}  # noqa: NPY002
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured (CUDA states only when CUDA is available)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def seed_everything(seed: int, torch_deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CleanRL's recipe)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries and wrappers may draw from the global generator
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


def select_device(cuda: bool) -> torch.device:
    """CUDA when asked for and present, CPU otherwise."""
    return torch.device("cuda" if cuda and torch.cuda.is_available() else "cpu")
