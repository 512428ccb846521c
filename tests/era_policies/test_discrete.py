"""Softmax ERA: the entropy floor for every input, the arg-max, Lambert W against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import lambertw

from era_policies import era_logits, lambertw_m1


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    log_p = torch.log_softmax(logits.double(), -1)
    return -(log_p.exp() * log_p).sum(-1)


@given(
    n=st.integers(2, 50),
    fraction=st.floats(-1.0, 0.999),
    scale=st.sampled_from([0.0, 0.1, 1.0, 10.0, 1e3]),
    batch=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_entropy_floor_holds_for_every_input(n, fraction, scale, batch, seed):
    highest = 1.0 + math.log(n * math.log(4.0) / 4.0)  # feasibility limit for tau = 4
    min_entropy = fraction * highest if fraction > 0 else fraction * 3.0
    logits = torch.randn(batch, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    out = era_logits(logits, min_entropy)
    assert out.shape == logits.shape and torch.isfinite(out).all()
    assert torch.all(_entropy(out) >= min_entropy - 1e-9)


@given(n=st.integers(2, 50), seed=st.integers(0, 2**16), scale=st.sampled_from([0.5, 3.0, 30.0]))
def test_arg_max_is_unchanged(n, seed, scale):
    logits = torch.randn(16, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    out = era_logits(logits, min_entropy=0.6 if n > 2 else 0.5)
    winners = logits.argmax(-1, keepdim=True)
    assert torch.all(out.gather(-1, winners).squeeze(-1) >= out.max(-1).values)


def test_float32_floor_up_to_rounding_and_one_hot_inputs():
    logits = torch.tensor([[1e4, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float32)
    out = era_logits(logits, 1.0)
    assert out.dtype == torch.float32
    assert torch.all(_entropy(out) >= 1.0 - 1e-5)
    assert out[0].argmax() == 0


def test_gradients_are_finite_including_clamped_entries():
    logits = torch.tensor([[30.0, -30.0, 0.0, 1.0, 2.0]], requires_grad=True)
    out = era_logits(logits, -1.0)  # low floor: small probabilities hit the clamp
    out.sum().backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_entropy": math.log(5)}, "unreachable"),
        ({"min_entropy": math.log(5) - 0.01}, "too close"),
        ({"min_entropy": 0.5, "tau": 1.0}, "tau"),
        ({"min_entropy": 0.5, "tau": math.e}, "tau"),
    ],
)
def test_bad_arguments_are_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        era_logits(torch.zeros(2, 5), **kwargs)
    with pytest.raises(ValueError, match="2 classes"):
        era_logits(torch.zeros(2, 1), 0.0)


def test_lambertw_m1_matches_scipy_and_its_derivative():
    x = torch.tensor([-math.exp(-1.0) + 1e-6, -0.3, -0.1, -1e-3, -1e-30], dtype=torch.float64, requires_grad=True)
    w = lambertw_m1(x)
    np.testing.assert_allclose(w.detach().numpy(), lambertw(x.detach().numpy(), k=-1).real, rtol=1e-10)
    w.sum().backward()
    expected = w.detach() / (x.detach() * (1.0 + w.detach()))
    assert torch.allclose(x.grad, expected)
    with pytest.raises(ValueError, match="defined"):
        lambertw_m1(torch.tensor([0.1]))


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_logits_are_a_value_error_not_nan(bad):
    logits = torch.zeros(2, 4)
    logits[0, 1] = bad
    with pytest.raises(ValueError, match="logits must be finite"):
        era_logits(logits, min_entropy=0.6)
    masked = torch.tensor([[0.0, -math.inf, 1.0, 2.0]])  # -inf masks a class: allowed
    assert torch.isfinite(era_logits(masked, min_entropy=0.6)).all()
