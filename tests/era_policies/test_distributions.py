"""TruncatedNormal against scipy.stats.truncnorm, Monte Carlo, gradcheck and the float32 tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats
from torch.autograd import gradcheck, gradgradcheck
from torch.distributions import kl_divergence

from era_policies import TruncatedNormal, era_action_distribution
from tests.conftest import requires_cuda

CASES = [  # (loc, scale, low, high)
    (0.3, 0.5, -1.0, 1.0),
    (0.0, 1.0, -1.0, 1.0),
    (1 - 1e-5, 1e-4, -1.0, 1.0),
    (-1 + 1e-5, 1e-4, -1.0, 1.0),
    (0.999, 100.0, -1.0, 1.0),
    (0.0, 1e-4, -1.0, 1.0),
    (1.0, 0.3, -1.0, 1.0),
    (-0.7, 3.0, -2.0, 0.5),
    (2.5, 0.1, -1.0, 1.0),  # location outside the interval
    (-3.0, 0.5, -1.0, 1.0),
]


def _scipy(loc, scale, low, high):
    return stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)


def _dist(loc, scale, low, high, dtype=torch.float64):
    return TruncatedNormal(torch.tensor(loc, dtype=dtype), torch.tensor(scale, dtype=dtype), low, high)


@pytest.mark.parametrize(("loc", "scale", "low", "high"), CASES)
def test_matches_scipy_float64(loc, scale, low, high):
    ref, dist = _scipy(loc, scale, low, high), _dist(loc, scale, low, high)
    quantiles = np.array([1e-6, 0.01, 0.25, 0.5, 0.75, 0.99, 1 - 1e-6])
    x = np.clip(ref.ppf(quantiles), low, high)
    xt = torch.tensor(x)
    np.testing.assert_allclose(dist.log_prob(xt).numpy(), ref.logpdf(x), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dist.cdf(xt).numpy(), ref.cdf(x), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(float(dist.entropy()), ref.entropy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(float(dist.mean), ref.mean(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(dist.variance), ref.var(), rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(dist.icdf(torch.tensor(quantiles)).numpy(), ref.ppf(quantiles), rtol=1e-7, atol=1e-9)
    assert float(dist.mode) == pytest.approx(min(max(loc, low), high))


@pytest.mark.parametrize(("loc", "scale", "low", "high"), [c for c in CASES if c[2] <= c[0] <= c[3]])
def test_matches_scipy_float32_for_locations_inside(loc, scale, low, high):
    ref, dist = _scipy(loc, scale, low, high), _dist(loc, scale, low, high, torch.float32)
    x = np.clip(ref.ppf([0.05, 0.5, 0.95]), low, high)
    xt = torch.tensor(x, dtype=torch.float32)
    # float32 holds x - loc only to ~6e-8 absolute, i.e. ~6e-4 standard deviations at scale 1e-4.
    np.testing.assert_allclose(dist.log_prob(xt).numpy(), ref.logpdf(xt.double().numpy()), rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(float(dist.entropy()), ref.entropy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(float(dist.mean), ref.mean(), atol=1e-6)
    np.testing.assert_allclose(float(dist.variance), ref.var(), rtol=1e-4)


@given(
    loc=st.floats(-1.0, 1.0),
    log_scale=st.floats(math.log(1e-4), math.log(100.0)),
    q=st.floats(1e-6, 1 - 1e-6),
)
def test_property_log_prob_cdf_icdf_against_scipy(loc, log_scale, q):
    scale = math.exp(log_scale)
    ref, dist = _scipy(loc, scale, -1.0, 1.0), _dist(loc, scale, -1.0, 1.0)
    x = float(np.clip(ref.ppf(q), -1.0, 1.0))
    assert float(dist.log_prob(torch.tensor(x, dtype=torch.float64))) == pytest.approx(
        ref.logpdf(x), rel=1e-8, abs=1e-8
    )
    assert float(dist.cdf(torch.tensor(x, dtype=torch.float64))) == pytest.approx(ref.cdf(x), rel=1e-6, abs=1e-12)
    assert float(dist.entropy()) == pytest.approx(ref.entropy(), rel=1e-8, abs=1e-8)
    assert float(dist.icdf(torch.tensor(q, dtype=torch.float64))) == pytest.approx(ref.ppf(q), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("loc", "scale"), [(0.3, 0.5), (0.9, 0.05), (-0.95, 2.0), (0.0, 20.0)])
def test_monte_carlo_entropy_and_moments_match_closed_form(loc, scale):
    dist = TruncatedNormal(torch.full((200_000,), loc, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64))
    x = dist.sample()
    mc_entropy = -dist.log_prob(x).mean()
    stderr = dist.log_prob(x).std() / math.sqrt(x.numel())
    assert abs(float(mc_entropy - dist.entropy()[0])) < 5 * float(stderr) + 1e-6
    assert abs(float(x.mean() - dist.mean[0])) < 5 * math.sqrt(float(dist.variance[0]) / x.numel())
    # Kolmogorov-Smirnov against scipy's cdf.
    ks = stats.kstest(x[:20_000].numpy(), _scipy(loc, scale, -1.0, 1.0).cdf)
    assert ks.pvalue > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loc", [1 - 1e-5, -1 + 1e-5, 1.0, -1.0, 0.0, 0.5])
def test_tails_stay_finite_with_gradients(dtype, loc):
    scales = torch.logspace(-4, 2, 25, dtype=dtype).repeat_interleave(400)
    loc_t = torch.full_like(scales, loc).requires_grad_(True)
    scale_t = scales.clone().requires_grad_(True)
    dist = TruncatedNormal(loc_t, scale_t)
    x = dist.rsample()
    assert torch.all((x >= -1) & (x <= 1))
    log_prob, entropy = dist.log_prob(x), dist.entropy()
    for value in (x, log_prob, entropy, dist.mean, dist.variance, dist.cdf(x)):
        assert torch.isfinite(value).all()
    (x.sum() + log_prob.sum() + entropy.sum()).backward()
    assert torch.isfinite(loc_t.grad).all() and torch.isfinite(scale_t.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_era_action_distribution_stays_finite_for_saturated_means(dtype):
    mean = torch.tensor([[-50.0, -8.0, 0.0, 8.0, 50.0]], dtype=dtype, requires_grad=True)
    log_std = torch.tensor([[-8.0, -8.0, 0.0, -8.0, -8.0]], dtype=dtype, requires_grad=True)
    dist = era_action_distribution(mean, log_std)
    x = dist.rsample((64,))
    total = x.sum() + dist.log_prob(x).sum() + dist.entropy().sum()
    total.backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_std.grad).all()
    assert torch.equal(dist.mode, torch.tanh(mean))


def test_gradcheck_float64():
    loc = torch.tensor([0.3, 0.99999, -0.99999, 0.0, 0.7, 1.3], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.5, 1e-3, 0.01, 50.0, 1.3, 0.4], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.2, 0.5, 0.9, 0.01, 0.999, 0.3], dtype=torch.float64)
    x = torch.tensor([0.1, 0.99995, -0.9999, 0.5, -0.9, 0.95], dtype=torch.float64)
    assert gradcheck(lambda m, s: TruncatedNormal(m, s).icdf(u), (loc, scale))
    assert gradcheck(lambda m, s: TruncatedNormal(m, s).log_prob(x), (loc, scale))
    assert gradcheck(lambda m, s: TruncatedNormal(m, s).entropy(), (loc, scale))
    assert gradcheck(lambda m, s: TruncatedNormal(m, s).cdf(x), (loc, scale))
    assert gradcheck(lambda m, s: TruncatedNormal(m, s).mean, (loc, scale))


def test_rsample_is_icdf_of_uniform_and_reparameterised():
    loc = torch.tensor([0.2, -0.4], requires_grad=True)
    scale = torch.tensor([0.3, 0.8], requires_grad=True)
    dist = TruncatedNormal(loc, scale)
    torch.manual_seed(3)
    x = dist.rsample((5,))
    torch.manual_seed(3)
    assert torch.equal(x, dist.icdf(torch.rand(5, 2)))
    x.sum().backward()
    assert loc.grad is not None and scale.grad is not None
    assert not dist.sample().requires_grad


def test_shapes_expand_and_cdf_icdf_inverse():
    dist = TruncatedNormal(torch.zeros(3, 1), torch.ones(1, 4), low=-0.5, high=2.0)
    assert dist.batch_shape == (3, 4)
    assert dist.sample((2,)).shape == (2, 3, 4)
    expanded = dist.expand((5, 3, 4))
    assert expanded.batch_shape == (5, 3, 4)
    assert torch.allclose(expanded.entropy()[0], dist.entropy())
    u = torch.rand(3, 4)
    assert torch.allclose(dist.cdf(dist.icdf(u)), u, atol=1e-5)
    assert float(dist.cdf(torch.full((3, 4), -0.5)).max()) == 0.0
    assert float(dist.cdf(torch.full((3, 4), 2.0)).min()) == pytest.approx(1.0)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="low < high"):
        TruncatedNormal(0.0, 1.0, low=1.0, high=1.0)
    with pytest.raises(ValueError, match="low < high"):
        TruncatedNormal(torch.zeros(2), torch.ones(2), low=torch.ones(2), high=torch.zeros(2), validate_args=True)
    with pytest.raises(ValueError, match="scale"):
        TruncatedNormal(torch.zeros(2), torch.tensor([1.0, 0.0]), validate_args=True)
    with pytest.raises(ValueError, match="broadcast"):
        TruncatedNormal(torch.zeros(3), torch.ones(4))
    with pytest.raises(ValueError):
        TruncatedNormal(torch.zeros(2), torch.ones(2), validate_args=True).log_prob(torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match="probabilities"):
        TruncatedNormal(torch.zeros(2), torch.ones(2), validate_args=True).icdf(torch.tensor([0.5, 1.5]))


@requires_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    loc = torch.tensor([0.3, 0.99999, -0.99999, 0.0], dtype=dtype)
    scale = torch.tensor([0.5, 1e-4, 1e-2, 100.0], dtype=dtype)
    u = torch.tensor([0.2, 0.5, 0.9, 0.01], dtype=dtype)
    cpu, gpu = TruncatedNormal(loc, scale), TruncatedNormal(loc.cuda(), scale.cuda())
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-10}
    x = cpu.icdf(u)
    assert torch.allclose(gpu.icdf(u.cuda()).cpu(), x, **tol)
    assert torch.allclose(gpu.log_prob(x.cuda()).cpu(), cpu.log_prob(x), **tol)
    assert torch.allclose(gpu.entropy().cpu(), cpu.entropy(), **tol)
    samples = gpu.rsample((1000,))
    assert samples.is_cuda and bool(((samples >= -1) & (samples <= 1)).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inside_only_path_agrees_with_the_general_path(dtype):
    """A batch whose locations all lie in the closed interval takes the CPU shortcut, locations exactly on a bound
    included (ERA's tanh(mean) saturates to +-1 in float32); one location outside forces the general path."""
    on_bounds = torch.tensor([-1.0, 1.0], dtype=dtype)
    loc = torch.cat([torch.linspace(-0.999, 0.999, 41, dtype=dtype), on_bounds]).repeat(6)
    scale = torch.logspace(-4, 1, 6, dtype=dtype).repeat_interleave(43)  # widths >= 0.2 scales: the shortcut
    u = torch.rand(loc.shape, dtype=dtype)
    inside = TruncatedNormal(loc, scale)
    general = TruncatedNormal(torch.cat([loc, torch.tensor([3.0], dtype=dtype)]), torch.cat([scale, scale[:1]]))
    assert inside._inside_only and not general._inside_only
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    x = inside.icdf(u)
    torch.testing.assert_close(general.icdf(torch.cat([u, u[:1]]))[:-1], x, **tol)
    torch.testing.assert_close(general.log_prob(torch.cat([x, x[:1]]))[:-1], inside.log_prob(x), **tol)
    torch.testing.assert_close(general.entropy()[:-1], inside.entropy(), **tol)


# ------------------------------------------------------------------------------------------------------------ KL
KL_PARAMS = [(0.3, 0.5), (-0.9, 0.05), (0.99, 2.0), (0.0, 1e-2), (1.2, 0.3), (-2.0, 0.7)]


def _kl_by_quadrature(p: tuple[float, float], q: tuple[float, float]) -> float:
    ref_p, ref_q = _scipy(*p, -1.0, 1.0), _scipy(*q, -1.0, 1.0)
    lo, hi = ref_p.ppf(1e-13), ref_p.ppf(1 - 1e-13)  # where p's mass is; quad misses a narrow peak otherwise
    value, _ = integrate.quad(lambda x: ref_p.pdf(x) * (ref_p.logpdf(x) - ref_q.logpdf(x)), lo, hi, limit=200)
    return value


@pytest.mark.parametrize("p", KL_PARAMS)
@pytest.mark.parametrize("q", KL_PARAMS)
def test_kl_matches_numerical_integration(p, q):
    dist_p, dist_q = (_dist(*params, -1.0, 1.0) for params in (p, q))
    kl = kl_divergence(dist_p, dist_q)
    expected = _kl_by_quadrature(p, q)
    assert float(kl) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert float(kl) >= 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kl_of_a_distribution_with_itself_is_zero_and_gradients_are_finite(dtype):
    loc = torch.tensor([0.3, -0.999, 1.01, -30.0, 0.0], dtype=dtype, requires_grad=True)
    scale = torch.tensor([0.5, 1e-3, 1e-2, 1.0, 1e8], dtype=dtype, requires_grad=True)
    p = TruncatedNormal(loc, scale)
    assert torch.allclose(kl_divergence(p, p), torch.zeros_like(loc), atol=1e-6 if dtype == torch.float32 else 1e-12)
    q = TruncatedNormal(torch.tensor([0.1, 0.5, 0.9, -0.5, 0.2], dtype=dtype), torch.full((5,), 0.4, dtype=dtype))
    kl = kl_divergence(p, q)
    assert kl.dtype == dtype and torch.all(kl > 0) and torch.isfinite(kl).all()
    kl.sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


def test_kl_gradcheck():
    loc_p = torch.tensor([0.3, 0.9, -1.2], dtype=torch.float64, requires_grad=True)
    scale_p = torch.tensor([0.5, 0.1, 0.4], dtype=torch.float64, requires_grad=True)
    loc_q = torch.tensor([-0.2, 0.5, 0.0], dtype=torch.float64, requires_grad=True)
    scale_q = torch.tensor([0.7, 1.5, 0.2], dtype=torch.float64, requires_grad=True)

    def kl(a, b, c, d):
        return kl_divergence(TruncatedNormal(a, b), TruncatedNormal(c, d))

    assert gradcheck(kl, (loc_p, scale_p, loc_q, scale_q))
    # TRPO takes Hessian-vector products of the KL: it must be twice differentiable.
    assert gradgradcheck(kl, (loc_p, scale_p, loc_q, scale_q))


def test_kl_between_different_intervals_is_not_implemented():
    p = TruncatedNormal(torch.zeros(2), torch.ones(2))
    with pytest.raises(NotImplementedError, match="same interval"):
        kl_divergence(p, TruncatedNormal(torch.zeros(2), torch.ones(2), low=-2.0, high=1.0))
    tensor_bounds = TruncatedNormal(torch.zeros(2), torch.ones(2), torch.full((2,), -1.0), torch.tensor([1.0, 0.5]))
    with pytest.raises(NotImplementedError, match="same interval"):
        kl_divergence(p, tensor_bounds)
    same = TruncatedNormal(torch.zeros(2), torch.ones(2) * 2, torch.full((2,), -1.0), torch.ones(2))
    assert torch.isfinite(kl_divergence(p, same)).all()
