"""The bounded action distribution of ERA policies: a per-dimension truncated normal.

ERA's released code samples actions from a normal truncated to ``(-1, 1)`` whose location is ``tanh(mean)`` and
whose scale is the ERA-activated standard deviation. Samples are *not* squashed: only the location goes through
``tanh``. This module holds that distribution (docs/era-method.md §3), the one helper that builds it from a policy
network's outputs (shared by the SB3 policies and the single-file agents) and ``KL(TruncatedNormal || TruncatedNormal)``
for TRPO-style algorithms.

Numerics. Every quantity is measured from ``c``, the point of the standardised interval ``[alpha, beta]`` nearest
to 0 (the mode for a location inside the interval, the nearer bound for one outside it), so nothing of size ``c^2``
is ever subtracted. Three regimes, chosen per element with ``torch.where``:

* the location inside the interval (always ERA's case): ``erf`` sums and ``ndtri``, in the input's dtype;
* the interval on one side of the location: tail integrals from ``erfcx`` (asymptotic series far out) and sampling by
  Newton's method on the log tail mass; for a location far outside, this is the exponential limit
  ``mean ~ bound + scale^2 / |bound - loc|``;
* an interval narrow against the scale (``width / scale < 3e-2``): series around the nearer bound (the uniform limit).

The last two are evaluated in float64 and cast back. Tested against 80-digit references for ``|loc| <= 1e6`` and ``1e-6
<= scale <= 1e8`` on ``(-1, 1)``, float32 and float64 (float32 results to float32 rounding: where the spread is below
the float32 spacing near a bound, samples are the nearest representable values). On CPU, a batch whose locations all lie
in the closed interval (a bound included), with widths of at least a tenth of a scale, takes a shortcut (one host read
of a comparison); on CUDA and under ``torch.compile`` all regimes are always evaluated and nothing is read back
(CUDA-graph safe). float16/bfloat16 are rejected with a ``ValueError``: half precision cannot represent the tails; cast
``loc`` and ``scale`` with ``.float()``.
"""

from __future__ import annotations

import math
from numbers import Number

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.kl import register_kl
from torch.distributions.utils import broadcast_all

from era_policies.delta import HALF_LOG_2PI, HALF_LOG_2PI_E, INSIDE_MIN_STANDARDIZED_WIDTH, MAX_LOG_STD_MAX

__all__ = ["ERATruncatedNormal", "TruncatedNormal", "era_action_distribution"]

_SQRT_2 = math.sqrt(2.0)
_TWO_SQRT_PI = 2.0 * math.sqrt(math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
# Standardised widths below this use the narrow-interval series (first neglected term ~ width**8 / 384).
_NARROW = 3e-2
# Above this the tail integrals use their asymptotic series (10 terms: relative error < 1e-15 there).
_ASYMPTOTIC = 20.0
_NEWTON_STEPS = 8


def _log_phi(x: Tensor) -> Tensor:
    """Log density of the standard normal."""
    return -0.5 * x * x - HALF_LOG_2PI


def _tail_integrals(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``M_k(x) = int_0^inf t^k exp(-x t - t^2/2) dt`` for ``k = 0, 1, 2`` and ``x >= 0``.

    ``M_0`` is Mills' ratio ``Q(x) / phi(x)``; ``M_1 = 1 - x M_0`` and ``M_2 = M_0 - x M_1`` lose about ``x^2`` and
    ``x^4`` ulps, so beyond :data:`_ASYMPTOTIC` the asymptotic series ``sum_j (-1/2)^j (k+2j)! / (j! x^(k+2j+1))``
    takes over.
    """
    far = x > _ASYMPTOTIC
    near_x = torch.where(far, torch.full_like(x, _ASYMPTOTIC), x)
    m0 = _SQRT_HALF_PI * torch.special.erfcx(near_x / _SQRT_2)
    m1 = 1.0 - near_x * m0
    m2 = m0 - near_x * m1
    inv = 1.0 / torch.where(far, x, torch.full_like(x, _ASYMPTOTIC))
    inv2 = inv * inv
    out = []
    for k, near in ((0, m0), (1, m1), (2, m2)):
        series = torch.zeros_like(x)
        for j in reversed(range(10)):
            series = series * inv2 + (-0.5) ** j * math.factorial(k + 2 * j) / math.factorial(j)
        out.append(torch.where(far, series * inv ** (k + 1), near))
    return out[0], out[1], out[2]


def _exp_moments(z: Tensor, n_max: int) -> list[Tensor]:
    """``J_n(z) = int_0^1 s^n exp(-z s) ds`` for ``n = 0..n_max`` and ``z >= -1``, from ``n J_(n-1) = z J_n + exp(-z)``.

    For ``|z| <= 1`` the recurrence runs downwards from a power series for ``J_(n_max)`` (it divides errors by ``n``
    there); otherwise upwards from ``J_0 = (1 - exp(-z)) / z`` (it multiplies them by ``n / z`` at most).
    """
    small = z.abs() <= 1.0
    zs = torch.where(small, z, torch.zeros_like(z))
    zl = torch.where(small, torch.full_like(z, 2.0), z)
    top = torch.full_like(z, 1.0 / (n_max + 1))
    power = torch.ones_like(z)
    for i in range(1, 21):
        power = power * (-zs) / i
        top = top + power / (n_max + i + 1)
    down = [top]
    e_small = torch.exp(-zs)
    for n in range(n_max, 0, -1):
        down.append((zs * down[-1] + e_small) / n)
    down.reverse()
    e_large = torch.exp(-zl)
    up = [-torch.expm1(-zl) / zl]
    for n in range(1, n_max + 1):
        up.append((n * up[-1] - e_large) / zl)
    return [torch.where(small, d, u) for d, u in zip(down, up, strict=True)]


def _narrow_integrals(a: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``I_k = int_0^w t^k exp(-a t - t^2/2) dt``, ``k = 0, 1, 2``, for small ``w`` with ``a * w >= -1``.

    ``exp(-t^2/2)`` is expanded (four terms); ``exp(-a t)`` is kept exact through :func:`_exp_moments`.
    """
    j = _exp_moments(a * w, 8)
    w2 = w * w
    out = []
    for k in range(3):
        total = torch.zeros_like(w)
        for i in reversed(range(4)):
            total = total * w2 + (-0.5) ** i / math.factorial(i) * j[k + 2 * i]
        out.append(total * w ** (k + 1))
    return out[0], out[1], out[2]


def _standardized(alpha: Tensor, beta: Tensor, width: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Log normaliser and moments of the standard normal truncated to ``[alpha, beta]`` (``width = beta - alpha``).

    Everything is measured from the point ``c = clamp(0, alpha, beta)`` of the interval nearest to the normal's mode,
    so nothing of size ``c^2`` is ever subtracted (``c`` reaches 1e12 for a location 1e6 scales outside):

    :return: ``log(Z / phi(c))``, ``E[xi] - c``, ``Var[xi]`` and ``c``.

    Three regimes, each fed only inputs on which it is finite (so ``torch.where`` leaks no NaN gradients):

    * narrow (``width < 3e-2``): series in the width around the nearer bound (the normal is almost uniform there);
    * one-sided (the interval lies on one side of 0; reflected into the right tail): the tail integrals of
      :func:`_tail_integrals` at both bounds, the far one weighted by ``phi(beta) / phi(alpha)``;
    * straddling (``alpha < 0 < beta``): ``Z`` as a sum of two ``erf`` terms and the textbook moments.
    """
    flip = alpha.abs() > beta.abs()
    sign = torch.where(flip, -torch.ones_like(alpha), torch.ones_like(alpha))
    a = torch.where(flip, -beta, alpha)  # the nearer bound; after reflection |a| <= |b|
    b = torch.where(flip, -alpha, beta)
    narrow = width < _NARROW
    one_sided = (a >= 0) & ~narrow
    straddles = (a < 0) & ~narrow
    one, zero = torch.ones_like(a), torch.zeros_like(a)

    # Narrow and one-sided: I_k = int_0^width t^k exp(-a t - t^2/2) dt, measured from a.
    a_n, w_n = torch.where(narrow, a, zero), torch.where(narrow, width, 0.5 * _NARROW * one)
    n0, n1, n2 = _narrow_integrals(a_n, w_n)
    a_t, w_t = torch.where(one_sided, a, one), torch.where(one_sided, width, one)
    g = torch.exp(-w_t * (a_t + 0.5 * w_t))  # phi(b) / phi(a)
    ma0, ma1, ma2 = _tail_integrals(a_t)
    mb0, mb1, mb2 = _tail_integrals(a_t + w_t)
    t0 = ma0 - g * mb0
    t1 = ma1 - g * (w_t * mb0 + mb1)
    t2 = ma2 - g * (w_t * w_t * mb0 + 2.0 * w_t * mb1 + mb2)
    i0, i1, i2 = (torch.where(narrow, n, t) for n, t in ((n0, t0), (n1, t1), (n2, t2)))
    mean_t = i1 / i0
    var_t = (i2 / i0 - mean_t * mean_t).clamp_min(0.0)
    a_pos = a.clamp_min(0.0)  # c; a narrow interval around 0 is measured from a < 0 and converted here
    log_zt_a = torch.log(i0) - 0.5 * (a - a_pos) * (a + a_pos)
    mean_a = a - a_pos + mean_t

    # Straddling: measured from 0.
    a_s, b_s = torch.where(straddles, a, -one), torch.where(straddles, b, one)
    log_z = torch.log(0.5 * (torch.erf(b_s / _SQRT_2) - torch.erf(a_s / _SQRT_2)))
    r_a, r_b = torch.exp(_log_phi(a_s) - log_z), torch.exp(_log_phi(b_s) - log_z)
    mean_s = r_a - r_b
    var_s = (1.0 + a_s * r_a - b_s * r_b - mean_s * mean_s).clamp_min(0.0)

    log_zt = torch.where(straddles, log_z + HALF_LOG_2PI, log_zt_a)
    mean = torch.where(straddles, mean_s, mean_a)
    var = torch.where(straddles, var_s, var_t)
    return log_zt, sign * mean, var, sign * a_pos


def _mills(x: Tensor) -> Tensor:
    """Mills' ratio ``Q(x) / phi(x)`` for ``x >= 0``."""
    return _SQRT_HALF_PI * torch.special.erfcx(x / _SQRT_2)


def _icdf_inside(lower: Tensor, upper: Tensor, erf_lower: Tensor, mass: Tensor, u: Tensor, middle: bool) -> Tensor:
    """Standardised quantile for a location inside ``[low, high]``.

    :param lower: ``-alpha / sqrt2 >= 0``, the distance from the location down to ``low`` in units of ``sqrt2 scale``.
    :param upper: ``beta / sqrt2 >= 0``, up to ``high``.
    :param erf_lower: ``erf(lower)``; ``mass``: ``2 Z = erf(lower) + erf(upper)`` (see :func:`_inside_mass`).

    ``ndtri`` of the probability between the nearer bound and the quantile, which stays below 1/2 and so is
    representable to full relative precision. Near 1/2 that resolves quantiles only to about one ulp, too coarse for
    an interval narrow against the scale: with ``middle=True`` the middle (``|2p - 1| < 1/2``) uses
    ``erfinv(2p - 1)`` instead, which forms no probability near 1/2.
    """
    u_mass = u * mass
    left = u_mass < erf_lower  # 2 p - 1 < 0
    # Phi(-d) = erfc(d / sqrt2) / 2: torch.special.ndtr forms 1 + erf(-d / sqrt2), which loses the far tail (float32:
    # ndtr(-5.35) 32 % low, ndtr(-6) = 0; float64: ndtr(-8) 2 % low). 1 - u is exact; mass - u_mass is not.
    bound_tail = torch.special.erfc(torch.where(left, lower, upper))
    tail = 0.5 * torch.addcmul(bound_tail, torch.where(left, u, 1.0 - u), mass)
    xi = torch.special.ndtri(tail.clamp(torch.finfo(tail.dtype).tiny, 0.5))
    xi = torch.where(left, xi, -xi)
    if not middle:
        return xi
    y = u_mass - erf_lower
    central = y.abs() < 0.5
    return torch.where(central, _SQRT_2 * torch.erfinv(torch.where(central, y, torch.zeros_like(y))), xi)


def _icdf_one_sided(a: Tensor, width: Tensor, log_zt: Tensor, u: Tensor) -> Tensor:
    """Distance ``t`` from the nearer bound ``a >= 0`` (reflected into the right tail) of the ``u``-quantile.

    ``Q(a + t) = Q(a) (1 - u rho)`` with ``rho = Z / Q(a)``; in logs ``G(t) = a t + t^2/2 + log M(a) - log M(a+t)
    = -log1p(-u rho)``, with ``M`` Mills' ratio. ``G`` is increasing and convex (``G' = 1 / M(a+t)``), and the start
    solves ``t / M(a) + t^2 / pi = E``, a lower bound of ``G`` (``G'' >= 2/pi``), so Newton's steps come down
    monotonically. The steps run without gradient; one last step from the detached root gives the implicit gradient.
    """
    m_a = _mills(a)
    log_m_a = torch.log(m_a)
    target = -torch.log1p(-(u * torch.exp(log_zt - log_m_a)).clamp(0.0, 1.0 - 1e-16))
    with torch.no_grad():
        slope = 1.0 / m_a
        t = 2.0 * target / (slope + torch.sqrt(slope * slope + 4.0 / math.pi * target))
        for _ in range(_NEWTON_STEPS):
            m = _mills(a + t)
            t = (t - (a * t + 0.5 * t * t + log_m_a - torch.log(m) - target) * m).clamp(min=0.0)
            t = torch.minimum(t, width)
    m = _mills(a + t)
    t = t - (a * t + 0.5 * t * t + log_m_a - torch.log(m) - target) * m
    return torch.minimum(t.clamp(min=0.0), width)


def _inside_distances(loc: Tensor, scale: Tensor, low: Tensor | float, high: Tensor | float) -> tuple[Tensor, Tensor]:
    """``(loc - low) / (sqrt2 scale)`` and ``(high - loc) / (sqrt2 scale)``: ``-alpha / sqrt2`` and ``beta / sqrt2``."""
    sqrt2_scale = _SQRT_2 * scale
    return (loc - low) / sqrt2_scale, (high - loc) / sqrt2_scale


def _inside_mass(lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
    """``erf(lower)`` and ``2 Z = erf(lower) + erf(upper)`` for the distances of :func:`_inside_distances`: a sum of two
    non-negative terms, so no cancellation, whatever the scale."""
    erf_lower = torch.erf(lower)
    return erf_lower, erf_lower + torch.erf(upper)


def _inside_entropy(lower: Tensor, upper: Tensor, log_z: Tensor, log_scale: Tensor) -> Tensor:
    """``H = log(scale) + log Z + log(2 pi e)/2 + (alpha phi(alpha) - beta phi(beta)) / (2 Z)`` with ``alpha = -sqrt2
    lower``, ``beta = sqrt2 upper``; ``phi / Z`` is formed in log space, so it is 0 (not 0/0) where both underflow."""
    r_lower = torch.exp(-lower * lower - log_z)  # sqrt(2 pi) phi(alpha) / Z
    r_upper = torch.exp(-upper * upper - log_z)
    # alpha phi(alpha) / (2 Z) = -lower r_lower / (2 sqrt(pi)), and likewise for beta.
    return log_scale + log_z + HALF_LOG_2PI_E - (lower * r_lower + upper * r_upper) / _TWO_SQRT_PI


def _inside_log_prob(value: Tensor, loc: Tensor, scale: Tensor, log_scale: Tensor, log_z: Tensor) -> Tensor:
    return _inside_log_density((value - loc) / scale, log_scale, log_z)


def _inside_log_density(xi: Tensor, log_scale: Tensor, log_z: Tensor) -> Tensor:
    """Log density at ``loc + scale * xi``, from the standardised value ``xi``: ``log phi(xi) - log(scale) - log Z``
    (three operators for the per-step acting path)."""
    return -HALF_LOG_2PI - torch.addcmul(log_scale + log_z, xi, xi, value=0.5)


def _exact_endpoints(value: Tensor, x: Tensor, low: Tensor | float, high: Tensor | float) -> Tensor:
    """The quantile at probability 0 and 1 is the bound itself (the tail formulas give a point ~13 or ~37 scales from
    ``loc`` there, where the tail mass underflows)."""
    return torch.where(value <= 0, low, torch.where(value >= 1, high, x))


class TruncatedNormal(Distribution):
    r"""Normal distribution with location ``loc`` and scale ``scale`` truncated to ``[low, high]``, elementwise.

    Like :class:`torch.distributions.Normal`, every element is an independent scalar distribution
    (``event_shape == ()``); sum ``log_prob``/``entropy`` over the last axis for a diagonal policy.

    :param loc: location of the untruncated normal, any shape ``batch_shape``; it may lie outside the interval.
    :param scale: scale of the untruncated normal, ``> 0``, broadcastable with ``loc``.
    :param low: lower bound (float or tensor broadcastable with ``loc``), finite.
    :param high: upper bound, finite, ``> low``.
    :param validate_args: check the arguments (and the values passed to ``log_prob``/``cdf``/``icdf``).
    :raises ValueError: shapes that do not broadcast, ``low >= high``, infinite or NaN float bounds, a dtype other than
        float32/float64, or (when validating) ``scale <= 0`` or a non-finite ``loc``, ``scale`` or tensor bound.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}  # noqa: RUF012
    has_rsample = True

    def __init__(
        self,
        loc: Tensor | float,
        scale: Tensor | float,
        low: Tensor | float = -1.0,
        high: Tensor | float = 1.0,
        validate_args: bool | None = None,
    ) -> None:
        scalar_bounds = isinstance(low, Number) and isinstance(high, Number)
        if scalar_bounds and not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"TruncatedNormal needs finite bounds with low < high, got low={low}, high={high}.")
        try:
            if scalar_bounds and isinstance(loc, Tensor) and isinstance(scale, Tensor):
                # The common case; float bounds stay floats, which saves tensor operations in every method.
                self.loc, self.scale = torch.broadcast_tensors(loc, scale)
                self.low, self.high = float(low), float(high)
            else:
                self.loc, self.scale, self.low, self.high = broadcast_all(loc, scale, low, high)
        except RuntimeError as err:
            shapes = [tuple(x.shape) if isinstance(x, Tensor) else () for x in (loc, scale, low, high)]
            raise ValueError(f"TruncatedNormal: loc, scale, low, high must broadcast; got shapes {shapes}.") from err
        if self.loc.dtype not in (torch.float32, torch.float64) or self.scale.dtype != self.loc.dtype:
            raise ValueError(
                f"TruncatedNormal supports float32 and float64 (loc and scale alike), got {self.loc.dtype} and "
                f"{self.scale.dtype}: half precision cannot represent its tails; cast with .float()."
            )
        super().__init__(self.loc.shape, validate_args=validate_args)
        if self._validate_args:
            for name, value in (("loc", self.loc), ("scale", self.scale), ("low", self.low), ("high", self.high)):
                if isinstance(value, Tensor) and not bool(torch.isfinite(value).all()):
                    raise ValueError(f"TruncatedNormal: {name} must be finite, got {value}.")
            if not scalar_bounds and bool((self.low >= self.high).any()):
                raise ValueError("TruncatedNormal needs low < high everywhere.")
        self._standard_cache: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        # The shortcut for the common case (every location in the closed interval, which includes ERA's tanh(mean) once
        # it saturates to a bound in float32, and the interval at least a tenth of a scale wide, so ndtri resolves its
        # quantiles) needs a host read of a comparison: only on CPU, and not while compiling.
        self._inside_cache: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        self._log_z_cache: Tensor | None = None
        self._inside_only = False
        if not self.loc.is_cuda and not torch.compiler.is_compiling():
            lower, upper = _inside_distances(self.loc, self.scale, self.low, self.high)
            width = _SQRT_2 * (lower + upper)
            self._inside_only = bool(((lower >= 0) & (upper >= 0) & (width > INSIDE_MIN_STANDARDIZED_WIDTH)).all())
            if self._inside_only:
                self._inside_cache = (lower, upper, *_inside_mass(lower, upper))

    def _inside(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The inside regime's distances to the bounds (:func:`_inside_distances`), ``erf`` of the lower one and
        ``2 Z`` (computed once)."""
        if self._inside_cache is None:
            lower, upper = _inside_distances(self.loc, self.scale, self.low, self.high)
            self._inside_cache = (lower, upper, *_inside_mass(lower, upper))
        return self._inside_cache

    def _inside_log_z(self) -> Tensor:
        """``log Z`` of the inside regime (computed once; sampling alone does not need it)."""
        if self._log_z_cache is None:
            self._log_z_cache = torch.log(0.5 * self._inside()[3])
        return self._log_z_cache

    def _log_scale(self) -> Tensor:
        return torch.log(self.scale)

    def expand(self, batch_shape: torch.Size, _instance: TruncatedNormal | None = None) -> TruncatedNormal:
        new = self._get_checked_instance(TruncatedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        low, high = (b.expand(batch_shape) if isinstance(b, Tensor) else b for b in (self.low, self.high))
        TruncatedNormal.__init__(
            new, self.loc.expand(batch_shape), self.scale.expand(batch_shape), low, high, validate_args=False
        )
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(self.low, self.high)

    def _float64(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        loc, scale = self.loc.double(), self.scale.double()
        low, high = (torch.as_tensor(b, dtype=torch.float64, device=loc.device) for b in (self.low, self.high))
        return loc, scale, low, high

    def _anchor(self) -> Tensor:
        """The point ``c`` is measured from, in float64: ``loc`` when inside the interval, else the nearer bound.

        Unlike :attr:`mode` (a clamp) it does not move with ``loc`` when ``loc`` lies on or beyond a bound.
        """
        loc, _, low, high = self._float64()
        return torch.where(low >= loc, low, torch.where(high <= loc, high, loc))

    def _standard(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:func:`_standardized` in float64: ``log(Z / phi(c))``, ``E[xi] - c``, ``Var[xi]``, ``c`` (cached)."""
        if self._standard_cache is None:
            loc, scale, low, high = self._float64()
            self._standard_cache = _standardized((low - loc) / scale, (high - loc) / scale, (high - low) / scale)
        return self._standard_cache

    # ------------------------------------------------------------------ moments
    @property
    def mean(self) -> Tensor:
        _, m1, _, _ = self._standard()
        mean = self._anchor() + self.scale.double() * m1
        return torch.clamp(mean.to(self.loc.dtype), min=self.low, max=self.high)

    @property
    def mode(self) -> Tensor:
        return torch.clamp(self.loc, min=self.low, max=self.high)

    @property
    def variance(self) -> Tensor:
        _, _, var, _ = self._standard()
        return (self.scale.double() ** 2 * var).to(self.loc.dtype)

    def entropy(self) -> Tensor:
        if self._inside_only:
            lower, upper, _, _ = self._inside()
            return _inside_entropy(lower, upper, self._inside_log_z(), self._log_scale())
        log_zt, m1, var, c = self._standard()
        # H = log(scale) + log Z + log(2 pi)/2 + E[xi^2]/2, with E[xi^2] = var + (c + m1)^2 and log Z + log(2 pi)/2
        # = log_zt - c^2/2: the c^2 terms cancel exactly.
        entropy = torch.log(self.scale.double()) + log_zt + 0.5 * var + m1 * (c + 0.5 * m1)
        return entropy.to(self.loc.dtype)

    # ------------------------------------------------------------- densities
    def log_prob(self, value: Tensor) -> Tensor:
        """Log density at ``value``; the normal's formula is evaluated as is (no masking outside the support)."""
        if self._validate_args:
            self._validate_sample(value)
        if self._inside_only:
            return _inside_log_prob(value, self.loc, self.scale, self._log_scale(), self._inside_log_z())
        log_zt, _, _, c = self._standard()
        scale = self.scale.double()
        d = (value.double() - self._anchor()) / scale  # xi - c
        return (-0.5 * d * (d + 2.0 * c) - log_zt - torch.log(scale)).to(self.loc.dtype)

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        loc, scale, low, high = self._float64()
        log_zt, _, _, c = self._standard()
        x = torch.maximum(torch.minimum(value.double(), high), low)
        at_low = x <= low
        x = torch.where(at_low, high, x)  # cdf(low) = 0 is set below; this keeps the sub-interval non-empty
        alpha, beta, beta_x = (low - loc) / scale, (high - loc) / scale, (x - loc) / scale
        log_zt_x, _, _, _ = _standardized(alpha, beta_x, (x - low) / scale)
        # c_x - c, the shift between the anchors of [alpha, beta_x] and [alpha, beta], formed without cancellation.
        shift = torch.where(beta <= 0, (x - high) / scale, torch.where(alpha >= 0, 0.0, beta_x.clamp_max(0.0)))
        cdf = torch.exp(log_zt_x - log_zt - 0.5 * shift * (shift + 2.0 * c)).clamp(0.0, 1.0)
        return torch.where(at_low, torch.zeros_like(cdf), cdf).to(self.loc.dtype)

    def icdf(self, value: Tensor) -> Tensor:
        """Quantile function; differentiable in ``loc`` and ``scale`` (this is the reparameterisation); ``icdf(0)`` and
        ``icdf(1)`` are ``low`` and ``high``."""
        if self._validate_args and not bool(((value >= 0) & (value <= 1)).all()):
            raise ValueError("TruncatedNormal.icdf expects probabilities in [0, 1].")
        return _exact_endpoints(value, self._quantile(value), self.low, self.high)

    def _quantile(self, value: Tensor) -> Tensor:
        """:meth:`icdf` without its argument check and its endpoint values (``rsample``'s ``u`` lies in ``[0, 1)``,
        and ``u = 0`` is a null event)."""
        if self._inside_only:
            return self._inside_quantile(value)[0]
        loc, scale, low, high = self._float64()
        log_zt, _, _, _ = self._standard()
        u = value.double()
        alpha, beta = (low - loc) / scale, (high - loc) / scale
        one_sided = (alpha >= 0) | (beta <= 0)
        one = torch.ones_like(alpha)
        alpha_in, beta_in = torch.where(one_sided, -one, alpha), torch.where(one_sided, one, beta)
        lower_in, upper_in = -alpha_in / _SQRT_2, beta_in / _SQRT_2
        xi_inside = _icdf_inside(lower_in, upper_in, *_inside_mass(lower_in, upper_in), u, middle=True)
        flip = beta <= 0
        a = torch.where(one_sided, torch.where(flip, -beta, alpha), one)
        width = torch.where(one_sided, (high - low) / scale, one)
        log_zt = torch.where(one_sided, log_zt, torch.log(_mills(one)))
        t = _icdf_one_sided(a, width, log_zt, torch.where(flip, 1.0 - u, u))
        x = torch.where(one_sided, self._anchor() + torch.where(flip, -scale, scale) * t, loc + scale * xi_inside)
        return torch.clamp(x.to(self.loc.dtype), min=self.low, max=self.high)

    def _inside_quantile(self, value: Tensor) -> tuple[Tensor, Tensor]:
        """The quantile in the inside regime and its standardised value ``xi`` (before the clamp to the bounds)."""
        xi = _icdf_inside(*self._inside(), value, middle=False)
        return torch.clamp(torch.addcmul(self.loc, self.scale, xi), min=self.low, max=self.high), xi

    def _uniform(self, sample_shape: torch.Size) -> Tensor:
        return torch.rand(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: B008
        return self._quantile(self._uniform(sample_shape))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: B008
        with torch.no_grad():
            return self.rsample(sample_shape)


def _same_interval(p: TruncatedNormal, q: TruncatedNormal) -> bool:
    """Whether ``p`` and ``q`` have the same bounds (tensor bounds are compared elementwise: one host read)."""
    if not any(isinstance(b, Tensor) for b in (p.low, p.high, q.low, q.high)):
        return p.low == q.low and p.high == q.high
    same = [
        torch.as_tensor(x, dtype=torch.float64) == torch.as_tensor(y, dtype=torch.float64)
        for x, y in ((p.low, q.low), (p.high, q.high))
    ]
    return bool(torch.all(same[0]) & torch.all(same[1]))


@register_kl(TruncatedNormal, TruncatedNormal)
def _kl_truncated_normal(p: TruncatedNormal, q: TruncatedNormal) -> Tensor:
    """``KL(p || q)`` for truncated normals on the same interval, closed form through ``p``'s mean and variance::

        KL = -H(p) + log(scale_q) + log(Z_q) + log(2 pi)/2 + (Var_p + (mean_p - loc_q)^2) / (2 scale_q^2)

    evaluated from ``q``'s anchor ``c_q`` so that the ``c_q^2`` terms cancel exactly (``e = (mean_p - anchor_q) /
    scale_q``): ``-H(p) + log(scale_q) + log(Z_q / phi(c_q)) + Var_p / (2 scale_q^2) + e (e + 2 c_q) / 2``.

    :raises NotImplementedError: for different intervals (then the support of ``p`` may leave ``q``'s).
    """
    if not _same_interval(p, q):
        raise NotImplementedError(
            "KL(TruncatedNormal || TruncatedNormal) is implemented for the same interval [low, high] only, got "
            f"[{p.low}, {p.high}] and [{q.low}, {q.high}]."
        )
    log_zt_p, m1_p, var_p, c_p = p._standard()
    log_zt_q, _, _, c_q = q._standard()
    scale_p, scale_q = p.scale.double(), q.scale.double()
    entropy_p = torch.log(scale_p) + log_zt_p + 0.5 * var_p + m1_p * (c_p + 0.5 * m1_p)
    ratio = scale_p / scale_q
    e = (p._anchor() - q._anchor()) / scale_q + ratio * m1_p
    kl = -entropy_p + torch.log(scale_q) + log_zt_q + 0.5 * var_p * ratio * ratio + 0.5 * e * (e + 2.0 * c_q)
    return kl.clamp_min(0.0).to(torch.promote_types(p.loc.dtype, q.loc.dtype))


class ERATruncatedNormal(TruncatedNormal):
    """ERA's action distribution: :class:`TruncatedNormal` on ``[-1, 1]`` with location ``tanh(mean_actions)`` and
    scale ``exp(log_std)``, evaluated in the one regime ERA's parameters can reach.

    The location lies in the closed interval and the scale is at most 20 (``log_std <= MAX_LOG_STD_MAX``, which every
    ERA head enforces through ``log_std_max``), so the interval always contains the location and is at least a tenth of
    a scale wide: there the "location inside" formulas hold to float32 rounding (tested against the general
    :class:`TruncatedNormal` and scipy). ``rsample``/``sample``/``icdf`` (two-sided inverse CDF), ``log_prob``,
    ``entropy``, ``mode`` and ``mean`` run in the input's dtype, with no float64, no host read and no Python branch on
    values: the same code in eager mode, under ``torch.compile`` and in a CUDA graph. ``log(scale)`` is ``log_std``
    itself, and what sampling computes (``alpha``, ``beta``, ``erf``, ``log Z``) is kept for ``log_prob`` and
    ``entropy`` of the same distribution; ``log_prob`` of the tensor the last ``rsample``/``sample`` returned reads
    that sample's standardised value instead of forming ``(x - loc) / scale`` again (the same function of the
    parameters, so the same value and gradient to rounding; not for a sample drawn without gradient when the
    log-prob wants one, where the standardised value would be a constant). ``variance``, ``cdf`` and the KL divergence
    (TRPO) are the general class's.

    A point mass (``log_std = -inf``) has entropy ``-inf``. ``validate_args=True`` checks the arguments (host reads):
    float32/float64 tensors of one shape, finite ``log_std <= MAX_LOG_STD_MAX``, no NaN mean.

    :param mean_actions: network mean output (before ``tanh``), shape ``(..., D)``.
    :param log_std: ERA-activated log standard deviation, the same shape.
    :param validate_args: check the arguments (and the values given to ``log_prob``/``icdf``).
    :raises ValueError: (only with ``validate_args=True``) naming the argument.
    """

    def __init__(self, mean_actions: Tensor, log_std: Tensor, validate_args: bool = False) -> None:
        if validate_args:
            _check_era_arguments(mean_actions, log_std)
        self.loc = torch.tanh(mean_actions)
        self.scale = torch.exp(log_std)
        self.low, self.high = -1.0, 1.0
        self._log_std = log_std
        self._standard_cache = None
        self._inside_cache = None
        self._log_z_cache = None
        self._inside_only = True
        self._last_sample: tuple[Tensor, Tensor] | None = None
        Distribution.__init__(self, self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape: torch.Size, _instance: ERATruncatedNormal | None = None) -> ERATruncatedNormal:
        new = self._get_checked_instance(ERATruncatedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc, new.scale, new._log_std = (x.expand(batch_shape) for x in (self.loc, self.scale, self._log_std))
        new.low, new.high = self.low, self.high
        new._standard_cache, new._inside_cache, new._log_z_cache, new._inside_only = None, None, None, True
        new._last_sample = None
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _log_scale(self) -> Tensor:
        return self._log_std

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: B008
        self._last_sample = self._inside_quantile(self._uniform(sample_shape))
        return self._last_sample[0]

    def log_prob(self, value: Tensor) -> Tensor:
        last = self._last_sample
        if last is not None and value is last[0]:
            xi = last[1]
            # A sample drawn without gradient has a constant xi: a log-prob that wants gradients (a score function)
            # takes the general path, which differentiates (value - loc) / scale.
            wants_grad = torch.is_grad_enabled() and (self.loc.requires_grad or self._log_std.requires_grad)
            if xi.requires_grad or not wants_grad:
                return _inside_log_density(xi, self._log_std, self._inside_log_z())
        return super().log_prob(value)

    @property
    def mean(self) -> Tensor:
        """``loc + scale * (phi(alpha) - phi(beta)) / Z``; the difference is formed as ``phi(d) * expm1(-2|loc| /
        scale^2)`` with ``d`` the distance to the nearer bound in scales, so it does not cancel for wide scales."""
        log_z = self._inside_log_z()
        loc, scale = self.loc, self.scale
        upper = loc >= 0
        distance = torch.where(upper, loc, -loc)  # |loc|, with the right one-sided derivative at 0
        shrink = torch.expm1(-2.0 * distance / (scale * scale)) * torch.exp(_log_phi((1.0 - distance) / scale) - log_z)
        return torch.clamp(loc + scale * torch.where(upper, shrink, -shrink), min=self.low, max=self.high)

    def entropy(self) -> Tensor:
        lower, upper, _, _ = self._inside()
        entropy = _inside_entropy(lower, upper, self._inside_log_z(), self._log_std)
        return torch.where(self._log_std == -math.inf, self._log_std, entropy)


def _check_era_arguments(mean_actions: Tensor, log_std: Tensor) -> None:
    for name, value in (("mean_actions", mean_actions), ("log_std", log_std)):
        if not isinstance(value, Tensor) or value.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{name} must be a float32 or float64 tensor, got {getattr(value, 'dtype', type(value))}.")
    if mean_actions.shape != log_std.shape or mean_actions.dtype != log_std.dtype:
        raise ValueError(
            f"mean_actions and log_std must have one shape and dtype, got {tuple(mean_actions.shape)} "
            f"{mean_actions.dtype} and {tuple(log_std.shape)} {log_std.dtype}."
        )
    if bool(torch.isnan(mean_actions).any()):
        raise ValueError("mean_actions must not be NaN.")
    if not bool((torch.isfinite(log_std) & (log_std <= MAX_LOG_STD_MAX)).all()):
        raise ValueError(
            f"log_std must be finite and <= MAX_LOG_STD_MAX = log(20) = {MAX_LOG_STD_MAX:.4f} (ERA's range), got "
            f"values from {float(log_std.min()):.6g} to {float(log_std.max()):.6g}."
        )


def era_action_distribution(mean_actions: Tensor, log_std: Tensor, validate_args: bool = False) -> ERATruncatedNormal:
    """ERA's action distribution on ``[-1, 1]``: location ``tanh(mean_actions)``, scale ``exp(log_std)``.

    :param mean_actions: network mean output, shape ``(..., D)``.
    :param log_std: ERA-activated log standard deviation, same shape (in ``[log_std_min, log_std_max]`` of an ERA
        head, so at most ``MAX_LOG_STD_MAX``).
    :param validate_args: check the arguments (host reads; off on hot paths).
    :return: an :class:`ERATruncatedNormal` with batch shape ``(..., D)``; sum ``log_prob``/``entropy`` over ``-1``.
    """
    return ERATruncatedNormal(mean_actions, log_std, validate_args=validate_args)
