"""TruncatedNormal over |loc| <= 1e6 and 1e-6 <= scale <= 1e8 on (-1, 1), float32 and float64.

The references are the closed forms evaluated by mpmath with 80 significant digits, enough to absorb every
cancellation in this range (a location 1e12 scales outside the interval loses about 50 digits). They are evaluated
at the exact values of the float32 parameters, so float32 is held to float32 rounding, not to float64 results.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import stats

from era_policies import TruncatedNormal

LOCS = [-1e6, -30.0, -1.01, -1.0, -0.5, 0.0, 1 - 1e-5, 1.0, 1.01, 30.0, 1e6]
SCALES = [1e-6, 1e-3, 1.0, 1e3, 1e8]
QUANTILES = [0.01, 0.3, 0.5, 0.7, 0.99]
DTYPES = [torch.float32, torch.float64]


class _Reference:
    """Closed forms of the truncated normal on (-1, 1) at 80 digits."""

    def __init__(self, loc: float, scale: float) -> None:
        with mpmath.workdps(80):
            self.loc, self.scale = mpmath.mpf(loc), mpmath.mpf(scale)
            self.alpha, self.beta = (-1 - self.loc) / self.scale, (1 - self.loc) / self.scale
            self.z = self._mass(self.beta)
            pa, pb = mpmath.npdf(self.alpha), mpmath.npdf(self.beta)
            mean_std = (pa - pb) / self.z
            second = 1 + (self.alpha * pa - self.beta * pb) / self.z
            self.mean = self.loc + self.scale * mean_std
            self.variance = self.scale**2 * (second - mean_std**2)
            self.entropy = mpmath.log(self.scale * self.z) + mpmath.log(2 * mpmath.pi) / 2 + second / 2

    def _mass(self, xi: mpmath.mpf) -> mpmath.mpf:
        """``Phi(xi) - Phi(alpha)``, from the upper tail when alpha > 0 (``Phi`` rounds to 1 there)."""
        if self.alpha > 0:
            return mpmath.ncdf(-self.alpha) - mpmath.ncdf(-xi)
        return mpmath.ncdf(xi) - mpmath.ncdf(self.alpha)

    def cdf(self, x: float) -> float:
        with mpmath.workdps(80):
            return float(self._mass((mpmath.mpf(x) - self.loc) / self.scale) / self.z)

    def log_prob(self, x: float) -> float:
        with mpmath.workdps(80):
            xi = (mpmath.mpf(x) - self.loc) / self.scale
            return float(-(xi**2) / 2 - mpmath.log(2 * mpmath.pi) / 2 - mpmath.log(self.z * self.scale))


def _dist(loc: float, scale: float, dtype: torch.dtype) -> tuple[TruncatedNormal, _Reference]:
    loc_t, scale_t = torch.tensor([loc], dtype=dtype), torch.tensor([scale], dtype=dtype)
    return TruncatedNormal(loc_t, scale_t), _Reference(float(loc_t), float(scale_t))


def _ulp(x: float, dtype: torch.dtype) -> float:
    return float(np.spacing(np.abs(np.asarray(x, dtype=np.float32 if dtype == torch.float32 else np.float64))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("loc", LOCS)
def test_moments_and_entropy_match_the_80_digit_reference(loc, scale, dtype):
    dist, ref = _dist(loc, scale, dtype)
    rel = 2e-6 if dtype == torch.float32 else 1e-9
    std = math.sqrt(float(ref.variance))
    assert float(dist.entropy()) == pytest.approx(float(ref.entropy), rel=rel, abs=rel)
    assert float(dist.variance) == pytest.approx(float(ref.variance), rel=rel * 10)
    # The mean to a fraction of a standard deviation, or to the dtype's rounding where that is coarser.
    assert abs(float(dist.mean) - float(ref.mean)) <= rel * std + _ulp(float(ref.mean), dtype)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("loc", LOCS)
def test_float64_quantiles_cdf_and_log_prob_match_the_reference(loc, scale):
    dist, ref = _dist(loc, scale, torch.float64)
    u = torch.tensor(QUANTILES, dtype=torch.float64)
    x = dist.icdf(u[:, None])[:, 0]
    assert torch.all((x >= -1) & (x <= 1))
    std = math.sqrt(float(ref.variance))
    for q, xq in zip(QUANTILES, x.tolist(), strict=True):
        # Where float64 cannot resolve the distribution (std below the spacing near the bound) x is the nearest
        # representable value; otherwise its cdf is q.
        if std > 1e6 * _ulp(xq, torch.float64):
            assert ref.cdf(xq) == pytest.approx(q, abs=1e-7)
            assert float(dist.cdf(torch.tensor([xq], dtype=torch.float64))) == pytest.approx(q, abs=1e-7)
            lp = float(dist.log_prob(torch.tensor([xq], dtype=torch.float64)))
            assert lp == pytest.approx(ref.log_prob(xq), rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("loc", LOCS)
def test_float32_samples_and_log_prob_follow_float64(loc, scale):
    d32, ref = _dist(loc, scale, torch.float32)
    d64 = TruncatedNormal(d32.loc.double(), d32.scale.double())
    u = torch.tensor(QUANTILES)[:, None]
    x32, x64 = d32.icdf(u)[:, 0], d64.icdf(u.double())[:, 0]
    std = math.sqrt(float(ref.variance))
    for a, b in zip(x32.tolist(), x64.tolist(), strict=True):
        assert abs(a - b) <= 1e-4 * std + 2 * _ulp(b, torch.float32)
        if std > 1e4 * _ulp(a, torch.float32):  # the density varies little across one float32 step
            lp = float(d32.log_prob(torch.tensor([a])))
            assert lp == pytest.approx(ref.log_prob(a), rel=1e-5, abs=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_cases_of_the_issue(dtype):
    """Issue 10.6: each of these was wrong before."""
    n = 4000
    # Location just beyond the bound with a tiny scale: an exponential of rate (loc - 1) / scale^2 below 1.
    dist = TruncatedNormal(torch.full((n,), 1.01, dtype=dtype), torch.tensor(1e-5, dtype=dtype))
    rate = (float(dist.loc[0]) - 1.0) / float(dist.scale[0]) ** 2
    assert float(dist.entropy()[0]) == pytest.approx(1.0 - math.log(rate), abs=1e-3)  # was -769.5 in float32
    # Location far below: mean = -1 + scale^2 / (|loc| - 1), no longer +1.
    dist = TruncatedNormal(torch.full((n,), -1e6, dtype=dtype), torch.tensor(1.0, dtype=dtype))
    assert float(dist.mean[0]) == pytest.approx(-1.0 + 1.0 / (1e6 - 1.0), abs=1e-12 if dtype == torch.float64 else 1e-7)
    # loc = -30: samples follow the exponential tail instead of all sitting on -1.
    dist = TruncatedNormal(torch.full((n,), -30.0, dtype=dtype), torch.tensor(1.0, dtype=dtype))
    x = dist.sample()
    ref = stats.truncnorm(29.0, 31.0, loc=-30.0, scale=1.0)
    assert x.unique().numel() > n // 2
    assert stats.kstest(x.double().numpy(), ref.cdf).pvalue > 1e-3
    # A huge scale: uniform on (-1, 1), variance 1/3, distinct samples.
    dist = TruncatedNormal(torch.zeros(n, dtype=dtype), torch.tensor(1e8, dtype=dtype))
    assert float(dist.variance[0]) == pytest.approx(1 / 3, rel=1e-6)
    # float32 holds log(scale) = 18.4 and log(Z) = -17.7 to ~1e-6 each.
    assert float(dist.entropy()[0]) == pytest.approx(math.log(2.0), abs=1e-6 if dtype == torch.float64 else 5e-6)
    x = dist.sample()
    assert x.unique().numel() > n // 2
    assert stats.kstest(x.double().numpy(), stats.uniform(-1, 2).cdf).pvalue > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_stay_finite_over_the_range(dtype):
    loc = torch.tensor(LOCS, dtype=dtype)[:, None].expand(-1, len(SCALES)).reshape(-1).clone().requires_grad_(True)
    scale = torch.tensor(SCALES, dtype=dtype).repeat(len(LOCS)).requires_grad_(True)
    dist = TruncatedNormal(loc, scale)
    x = dist.rsample((3,))
    total = dist.log_prob(x.detach()).sum() + dist.entropy().sum() + x.sum() + dist.mean.sum() + dist.variance.sum()
    total.backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


def test_gradcheck_outside_and_narrow():
    loc = torch.tensor([1.01, -30.0, -1.5, 0.2, 1.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1e-2, 1.0, 0.3, 1e3, 0.5], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.3, 0.6, 0.9, 0.2, 0.7], dtype=torch.float64)
    x = torch.tensor([0.99, -0.98, -0.9, 0.5, 0.3], dtype=torch.float64)
    for fn in (
        lambda m, s: TruncatedNormal(m, s).icdf(u),
        lambda m, s: TruncatedNormal(m, s).log_prob(x),
        lambda m, s: TruncatedNormal(m, s).entropy(),
        lambda m, s: TruncatedNormal(m, s).mean,
        lambda m, s: TruncatedNormal(m, s).variance,
    ):
        assert torch.autograd.gradcheck(fn, (loc, scale))


@pytest.mark.parametrize(
    ("loc", "scale", "name"),
    [
        (float("nan"), 1.0, "loc"),
        (float("inf"), 1.0, "loc"),
        (0.0, float("inf"), "scale"),
        (0.0, float("nan"), "scale"),
    ],
)
def test_non_finite_parameters_are_value_errors_when_validating(loc, scale, name):
    with pytest.raises(ValueError, match=name):
        TruncatedNormal(torch.tensor([loc]), torch.tensor([scale]), validate_args=True)


@pytest.mark.parametrize("bounds", [(-math.inf, 1.0), (-1.0, math.inf), (math.nan, 1.0)])
def test_non_finite_bounds_are_value_errors(bounds):
    with pytest.raises(ValueError, match="finite bounds"):
        TruncatedNormal(torch.zeros(2), torch.ones(2), *bounds)
    with pytest.raises(ValueError, match="finite"):
        TruncatedNormal(torch.zeros(2), torch.ones(2), torch.tensor(bounds[0]), torch.tensor(bounds[1]), True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_a_clear_error(dtype):
    with pytest.raises(ValueError, match=r"float32 and float64.*\.float\(\)"):
        TruncatedNormal(torch.zeros(2, dtype=dtype), torch.ones(2, dtype=dtype))
