"""Capture a whole training step in one CUDA graph and replay it (the ``--cudagraphs`` flag of the agents).

For small networks a GPU spends most of an update launching tiny kernels; a CUDA graph records every kernel of one
call (forward, backward, optimiser steps, target averaging) once and then launches them all with one call. What a
captured function must respect: its tensors keep their addresses (inputs are copied into static buffers, parameters
and optimiser states are updated in place: use ``capturable=True`` or ``fused=True`` Adam), it must not synchronise
with the host (no ``.item()``, no data-dependent Python branches), and the tensors it returns are overwritten by the
next replay (read or clone them before calling again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = ["CudaGraphFunction"]

OutputT = TypeVar("OutputT")


class CudaGraphFunction(Generic[OutputT]):
    """Wrap ``fn(*tensors) -> outputs`` so that calls after the first ``warmup`` replay one captured CUDA graph.

    The first ``warmup`` calls run ``fn`` eagerly on a side stream (as PyTorch requires before capturing, e.g. so that
    optimisers create their state); the next call copies its inputs into static buffers, captures ``fn`` on them and
    replays the graph; later calls copy their inputs and replay. Every call therefore runs ``fn`` exactly once on its
    own inputs.

    :param fn: the step; its arguments are (nested tuples / NamedTuples / dicts of) CUDA tensors of fixed shapes,
        its outputs tensors (or containers of them).
    :param warmup: eager calls before the capture (PyTorch's examples use 3; at least 1).
    :raises ValueError: if ``warmup < 1``.
    """

    def __init__(self, fn: Callable[..., OutputT], warmup: int = 3) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        self.fn = fn
        self.warmup = warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self._static_inputs: list[Tensor] = []
        self._static_outputs: OutputT | None = None

    def __call__(self, *args: object) -> OutputT:
        inputs, spec = tree_flatten(args)
        if not all(isinstance(value, Tensor) and value.is_cuda for value in inputs):
            raise ValueError("CudaGraphFunction takes CUDA tensors only (in tuples, NamedTuples, lists or dicts)")
        self.calls += 1
        if self.calls <= self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                outputs = self.fn(*args)
            torch.cuda.current_stream().wait_stream(side)
            return outputs
        if self.graph is None:
            self._static_inputs = [value.clone() for value in inputs]
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._static_outputs = self.fn(*tree_unflatten(self._static_inputs, spec))
        else:
            if len(inputs) != len(self._static_inputs):
                raise ValueError(f"captured with {len(self._static_inputs)} input tensors, called with {len(inputs)}")
            for static, value in zip(self._static_inputs, inputs, strict=True):
                static.copy_(value)
        self.graph.replay()
        return self._static_outputs  # type: ignore[return-value]
