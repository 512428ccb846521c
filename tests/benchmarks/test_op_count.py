"""The operator counters of the overhead benchmark, on functions whose operators are known."""

from __future__ import annotations

import torch

from benchmarks.op_count import OpCount, count_compiled, count_eager


def scale_to_double_and_sum(x: torch.Tensor) -> torch.Tensor:
    return (x * 2).double().sum()  # aten: mul, _to_copy (float64), sum (float64)


def compiled_call(fn, *args, backward: bool = False):
    """``make_fn`` for :func:`count_compiled`: compile ``fn`` with the counting backend, call it on ``args``."""

    def make(compile_fn):
        compiled = compile_fn(fn)
        return lambda: compiled(*args).backward() if backward else compiled(*args)

    return make


def test_eager_counter_counts_each_aten_call_and_the_float64_ones():
    x = torch.ones(3)
    assert count_eager(lambda: scale_to_double_and_sum(x)) == OpCount(ops=3, float64=2)
    assert count_eager(lambda: torch.ones(3, dtype=torch.float64) * 2) == OpCount(ops=2, float64=2)  # ones, mul


def test_eager_counter_counts_a_steady_call_after_its_warmup():
    parameter = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([parameter], foreach=False)

    def step():
        optimizer.zero_grad()
        parameter.sum().backward()
        optimizer.step()

    first = count_eager(step)  # creates Adam's state
    assert count_eager(step, warmup=1).ops < first.ops
    assert count_eager(step, warmup=1) == count_eager(step, warmup=3)


def test_eager_counter_sees_the_backward_pass():
    x = torch.ones(3, requires_grad=True)
    forward_only = count_eager(lambda: scale_to_double_and_sum(x.detach()))
    with_backward = count_eager(lambda: scale_to_double_and_sum(x).backward())
    assert with_backward.ops > forward_only.ops and with_backward.float64 > forward_only.float64
    assert x.grad is not None


def test_compiled_counter_counts_the_nodes_of_the_graph_that_runs():
    x = torch.ones(3)
    count = count_compiled(compiled_call(scale_to_double_and_sum, x))
    assert count == OpCount(ops=3, float64=2, graphs=1)


def test_compiled_counter_counts_forward_and_backward_graphs_and_every_graph_after_a_break():
    x = torch.ones(3, requires_grad=True)
    count = count_compiled(compiled_call(scale_to_double_and_sum, x, backward=True))
    assert count.graphs == 2 and count.float64 >= 2

    def with_break(y: torch.Tensor) -> torch.Tensor:
        y = y * 2
        torch._dynamo.graph_break()
        return y + 1

    assert count_compiled(compiled_call(with_break, torch.ones(3))) == OpCount(2, 0, 2)


def test_compiled_counter_counts_a_steady_call_not_the_compilations():
    calls = []

    def make(compile_fn):
        fn = compile_fn(lambda y: y + 1)
        return lambda: calls.append(fn(torch.ones(2)))

    assert count_compiled(make, warmup=3) == OpCount(1, 0, 1)
    assert len(calls) == 4
