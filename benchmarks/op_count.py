"""Count the aten operators a piece of training code runs, and those of them with float64 outputs.

Two counters, one per execution path:

* :func:`count_eager` runs a function under a ``TorchDispatchMode`` and counts every aten operator call that reaches
  the dispatcher below autograd: forward, backward (the autograd engine replays the mode on its thread) and optimiser
  kernels alike, i.e. what the eager code actually launches (after uncounted warm-up calls, as in steady state).
* :func:`count_compiled` compiles a function with ``torch.compile`` and a counting backend around AOTAutograd: every
  forward and backward graph AOTAutograd hands to its compiler (aten operators, functionalised, before Inductor's own
  decompositions) is recorded, and each graph counts its nodes every time it *runs*, so a call after the warm-up
  counts exactly the graphs that a steady-state call executes (recompilations and graph breaks included).

An operator "has a float64 output" when any tensor it returns is float64 (what the issue's target of 0 counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch._dynamo.backends.common import aot_autograd
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["OpCount", "count_compiled", "count_eager"]


@dataclass(frozen=True)
class OpCount:
    """Operators run by one call: ``ops`` aten operator calls (eager) or graph nodes executed (compiled), ``float64``
    of them with a float64 output; ``graphs``: compiled graphs executed (0 in eager mode)."""

    ops: int
    float64: int
    graphs: int = 0


def _has_float64(outputs: Any) -> bool:
    return any(isinstance(leaf, torch.Tensor) and leaf.dtype == torch.float64 for leaf in tree_leaves(outputs))


class _CountingMode(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.float64 = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        outputs = func(*args, **(kwargs or {}))
        self.ops += 1
        self.float64 += _has_float64(outputs)
        return outputs


def count_eager(fn: Callable[[], Any], warmup: int = 0) -> OpCount:
    """The aten operator calls of one eager ``fn()`` (forward, backward and optimiser steps, if ``fn`` runs them).

    :param warmup: uncounted calls first (an optimiser's first step also creates its state).
    """
    for _ in range(warmup):
        fn()
    with _CountingMode() as mode:
        fn()
    return OpCount(mode.ops, mode.float64)


class _GraphCounter:
    """A torch.compile backend (AOTAutograd with counting compilers) that tallies the nodes of the graphs it runs."""

    def __init__(self) -> None:
        self.ops = self.float64 = self.graphs = 0
        self.backend = aot_autograd(fw_compiler=self._compile, bw_compiler=self._compile)

    def _compile(self, graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[[list[Any]], Any]:
        aten_nodes = [
            node
            for node in graph.graph.nodes
            if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload)
        ]
        ops, float64 = len(aten_nodes), sum(_has_float64(node.meta.get("val")) for node in aten_nodes)
        run_graph = torch._functorch.aot_autograd.make_boxed_func(graph.forward)

        def run(args: list[Any]) -> Any:
            self.ops += ops
            self.float64 += float64
            self.graphs += 1
            return run_graph(args)

        run._boxed_call = True  # AOTAutograd passes the inputs as one list it may free early
        return run

    def reset(self) -> None:
        self.ops = self.float64 = self.graphs = 0


def count_compiled(make_fn: Callable[[Callable[[Callable], Callable]], Callable[[], Any]], warmup: int = 2) -> OpCount:
    """The graph nodes that one steady-state call of a compiled function executes.

    :param make_fn: receives ``compile_fn`` (``torch.compile`` with the counting backend, to apply to what the code
        under test compiles, e.g. the whole update or only its loss) and returns the zero-argument call to count.
    :param warmup: calls before the counted one (compilation, recompilation after optimiser state appears).
    """
    counter = _GraphCounter()
    torch._dynamo.reset()  # graphs cached by earlier calls would run uncounted
    call = make_fn(lambda fn: torch.compile(fn, backend=counter.backend))
    for _ in range(warmup):
        call()
    counter.reset()
    call()
    return OpCount(counter.ops, counter.float64, counter.graphs)
