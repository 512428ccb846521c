"""The bounded action distribution of ERA policies: a per-dimension truncated normal.

ERA's released code samples actions from a normal truncated to ``(-1, 1)`` whose location is ``tanh(mean)`` and
whose scale is the ERA-activated standard deviation. Samples are *not* squashed: only the location goes through
``tanh``. This module holds that distribution (reference notes §3) and the one helper that builds it from a policy
network's outputs, so the SB3 policies and the single-file agents share one implementation.

Numerics: every quantity is computed in log space from ``log_ndtr`` or, when the interval straddles the location,
from a sum of two ``erf`` terms (no cancellation), so log-probabilities, entropies, samples and their gradients stay
finite for locations within 1e-5 of a bound and scales from 1e-4 to 100, in float32 as in float64.
"""

from __future__ import annotations

import math
from numbers import Number

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

from era_policies.delta import HALF_LOG_2PI_E

__all__ = ["TruncatedNormal", "era_action_distribution"]

_SQRT_2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LN_2 = math.log(2.0)


def _log_phi(x: Tensor) -> Tensor:
    """Log density of the standard normal."""
    return -0.5 * x * x - _LOG_SQRT_2PI


def _log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate on both sides of ``-log 2``.

    Each branch only ever sees inputs on which it is finite, so ``torch.where`` cannot leak NaN gradients.
    """
    near_zero = x > -_LN_2
    x_near = torch.where(near_zero, x, torch.full_like(x, -_LN_2))
    x_far = torch.where(near_zero, torch.full_like(x, -_LN_2), x)
    return torch.where(near_zero, torch.log(-torch.expm1(x_near)), torch.log1p(-torch.exp(x_far)))


def _log_ndtr_diff(a: Tensor, b: Tensor) -> Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a <= b``, elementwise.

    When every interval contains 0 (the location lies inside ``[low, high]``, always the case for ERA's policies),
    ``Phi(b) - Phi(a) = (erf(b/sqrt2) + erf(-a/sqrt2)) / 2`` is a sum of two non-negative terms: exact even when the
    interval is tiny around 0 (huge scales), and four operations. Otherwise :func:`_log_ndtr_diff_general` handles
    intervals in either tail. On CUDA, and under ``torch.compile``, the general form is always used: choosing needs a
    host synchronisation (and would break the compiled graph).
    """
    fast_path_allowed = not a.is_cuda and not torch.compiler.is_compiling()
    if fast_path_allowed and not bool(((a > 0) | (b < 0)).any()):
        return torch.log(0.5 * (torch.erf(b / _SQRT_2) - torch.erf(a / _SQRT_2)))
    return _log_ndtr_diff_general(a, b)


def _log_ndtr_diff_general(a: Tensor, b: Tensor) -> Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a <= b`` wherever the intervals lie.

    * ``a < 0 < b``: the ``erf`` sum of :func:`_log_ndtr_diff`.
    * otherwise the interval sits in one tail; reflect it into the left tail, where ``log_ndtr`` is accurate, and
      subtract in log space.

    Each branch only sees inputs on which it is finite, so ``torch.where`` cannot leak NaN gradients.
    """
    straddles = (a < 0) & (b > 0)
    one = torch.ones_like(a)
    a_mid = torch.where(straddles, a, -one)
    b_mid = torch.where(straddles, b, one)
    log_mid = torch.log(0.5 * (torch.erf(b_mid / _SQRT_2) - torch.erf(a_mid / _SQRT_2)))

    right_tail = a >= 0
    lo = torch.where(right_tail, -b, a)
    hi = torch.where(right_tail, -a, b)
    lo = torch.where(straddles, -2 * one, lo)
    hi = torch.where(straddles, -one, hi)
    log_hi = torch.special.log_ndtr(hi)
    log_tail = log_hi + _log1mexp(torch.special.log_ndtr(lo) - log_hi)
    return torch.where(straddles, log_mid, log_tail)


class TruncatedNormal(Distribution):
    r"""Normal distribution with location ``loc`` and scale ``scale`` truncated to ``[low, high]``, elementwise.

    Like :class:`torch.distributions.Normal`, every element is an independent scalar distribution
    (``event_shape == ()``); sum ``log_prob``/``entropy`` over the last axis for a diagonal policy.

    :param loc: location of the untruncated normal, any shape ``batch_shape`` (it may lie outside the interval).
    :param scale: scale of the untruncated normal, ``> 0``, broadcastable with ``loc``.
    :param low: lower bound (float or tensor broadcastable with ``loc``).
    :param high: upper bound, ``> low``.
    :param validate_args: check the arguments (and the values passed to ``log_prob``/``cdf``/``icdf``).
    :raises ValueError: shapes that do not broadcast, ``low >= high`` or (when validating) ``scale <= 0``.
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
        if scalar_bounds and not low < high:
            raise ValueError(f"TruncatedNormal needs low < high, got low={low}, high={high}.")
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
        batch_shape = self.loc.shape
        super().__init__(batch_shape, validate_args=validate_args)
        if self._validate_args and not scalar_bounds and bool((self.low >= self.high).any()):
            raise ValueError("TruncatedNormal needs low < high everywhere.")
        self._alpha = (self.low - self.loc) / self.scale
        self._beta = (self.high - self.loc) / self.scale
        self._log_z = _log_ndtr_diff(self._alpha, self._beta)

    def expand(self, batch_shape: torch.Size, _instance: TruncatedNormal | None = None) -> TruncatedNormal:
        new = self._get_checked_instance(TruncatedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        for name in ("loc", "scale", "low", "high", "_alpha", "_beta", "_log_z"):
            value = getattr(self, name)
            setattr(new, name, value.expand(batch_shape) if isinstance(value, Tensor) else value)
        super(TruncatedNormal, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(self.low, self.high)

    # ------------------------------------------------------------------ moments
    def _ratios(self) -> tuple[Tensor, Tensor]:
        """``phi(alpha) / Z`` and ``phi(beta) / Z``, computed in log space."""
        return torch.exp(_log_phi(self._alpha) - self._log_z), torch.exp(_log_phi(self._beta) - self._log_z)

    def _moments64(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``alpha``, ``beta``, ``phi(alpha)/Z`` and ``(phi(alpha) - phi(beta))/Z`` in float64.

        Mean and variance cancel badly for wide scales (the truncated normal is then almost uniform), so they are
        evaluated in float64; the difference of densities uses ``expm1`` of the exponent gap, taken from the side
        with the larger density so nothing overflows.
        """
        loc, scale = self.loc.double(), self.scale.double()
        low, high = (torch.as_tensor(bound, dtype=torch.float64, device=loc.device) for bound in (self.low, self.high))
        alpha, beta = (low - loc) / scale, (high - loc) / scale
        log_z = _log_ndtr_diff(alpha, beta)
        r_a, r_b = torch.exp(_log_phi(alpha) - log_z), torch.exp(_log_phi(beta) - log_z)
        half_gap = 0.5 * (beta - alpha) * (beta + alpha)  # (beta^2 - alpha^2) / 2
        # The exponent is <= 0 on the side that is used; clamping the other side keeps inf (and NaN grads) out.
        diff = torch.where(
            alpha.abs() >= beta.abs(),
            r_b * torch.expm1(half_gap.clamp_max(0.0)),
            -r_a * torch.expm1((-half_gap).clamp_max(0.0)),
        )
        return alpha, beta, r_a, diff

    @property
    def mean(self) -> Tensor:
        _, _, _, diff = self._moments64()
        mean = self.loc.double() + self.scale.double() * diff
        return torch.clamp(mean.to(self.loc.dtype), min=self.low, max=self.high)

    @property
    def mode(self) -> Tensor:
        return torch.clamp(self.loc, min=self.low, max=self.high)

    @property
    def variance(self) -> Tensor:
        alpha, beta, r_a, diff = self._moments64()
        r_b = r_a - diff
        bracket = 1.0 + alpha * r_a - beta * r_b - diff**2
        return (self.scale.double() ** 2 * bracket).clamp_min(0.0).to(self.loc.dtype)

    def entropy(self) -> Tensor:
        r_a, r_b = self._ratios()
        return torch.log(self.scale) + self._log_z + HALF_LOG_2PI_E + 0.5 * (self._alpha * r_a - self._beta * r_b)

    # ------------------------------------------------------------- densities
    def log_prob(self, value: Tensor) -> Tensor:
        """Log density at ``value``; the normal's formula is evaluated as is (no masking outside the support)."""
        if self._validate_args:
            self._validate_sample(value)
        xi = (value - self.loc) / self.scale
        return _log_phi(xi) - torch.log(self.scale) - self._log_z

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        xi = torch.maximum(torch.minimum((value - self.loc) / self.scale, self._beta), self._alpha)
        # cdf(low) = 0 exactly: the difference of equal arguments is log(0) = -inf, exp gives 0.
        at_low = xi <= self._alpha
        xi_safe = torch.where(at_low, self._beta, xi)
        log_cdf = _log_ndtr_diff(self._alpha, xi_safe) - self._log_z
        return torch.where(at_low, torch.zeros_like(xi), torch.exp(log_cdf).clamp(0.0, 1.0))

    def icdf(self, value: Tensor) -> Tensor:
        """Quantile function; differentiable in ``loc`` and ``scale`` (this is the reparameterisation)."""
        if self._validate_args and not bool(((value >= 0) & (value <= 1)).all()):
            raise ValueError("TruncatedNormal.icdf expects probabilities in [0, 1].")
        tiny = torch.finfo(self._log_z.dtype).tiny
        z_mass = torch.exp(self._log_z)
        # Measure the quantile from whichever end keeps the probability below 1/2: tail probabilities are
        # representable to full relative precision, probabilities near 1 are not.
        from_left = torch.special.ndtr(self._alpha) + value * z_mass
        from_right = torch.special.ndtr(-self._beta) + (1.0 - value) * z_mass
        use_left = from_left <= from_right
        quarter = torch.full_like(from_left, 0.25)
        p_left = torch.where(use_left, from_left, quarter).clamp(tiny, 0.5)
        p_right = torch.where(use_left, quarter, from_right).clamp(tiny, 0.5)
        xi = torch.where(use_left, torch.special.ndtri(p_left), -torch.special.ndtri(p_right))
        return torch.clamp(self.loc + self.scale * xi, min=self.low, max=self.high)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: B008
        shape = self._extended_shape(sample_shape)
        uniform = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.icdf(uniform)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: B008
        with torch.no_grad():
            return self.rsample(sample_shape)


def era_action_distribution(mean_actions: Tensor, log_std: Tensor, validate_args: bool = False) -> TruncatedNormal:
    """ERA's action distribution on ``(-1, 1)``: location ``tanh(mean_actions)``, scale ``exp(log_std)``.

    :param mean_actions: network mean output, shape ``(..., D)``.
    :param log_std: ERA-activated log standard deviation, same shape.
    :return: a :class:`TruncatedNormal` with batch shape ``(..., D)``; sum ``log_prob``/``entropy`` over ``-1``.
    """
    return TruncatedNormal(torch.tanh(mean_actions), torch.exp(log_std), validate_args=validate_args)
