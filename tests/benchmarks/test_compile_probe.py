"""benchmarks.compile_probe: the matrix-product share of an update (--matmul-split)."""

from __future__ import annotations

import time

import torch

from benchmarks.compile_probe import matmul_ms

CPU = torch.device("cpu")


def test_matmul_time_counts_matrix_products_only() -> None:
    """An update of two linear layers spends time in matrix products, and no more than the whole call takes; one of
    elementwise operators alone spends none."""
    weight, bias = torch.randn(128, 128), torch.randn(128)

    def linear_update(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(torch.relu(x @ weight), weight, bias)

    def elementwise_update(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x * 2.0 + 1.0).sum()

    x = torch.randn(128, 128)
    start = time.perf_counter()
    in_matmuls = matmul_ms(linear_update, x, calls=5, device=CPU)
    whole_ms = 1e3 * (time.perf_counter() - start) / 5
    assert 0.0 < in_matmuls <= whole_ms
    assert matmul_ms(elementwise_update, x, calls=5, device=CPU) == 0.0
