"""ERA's lean action distribution: the general TruncatedNormal's values to float32 rounding over ERA's whole parameter
range, scipy, sampling, gradients in the tails, edge cases, and one float32 graph under torch.compile."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import kl_divergence

from era_policies import MAX_LOG_STD_MAX, ERAStd, TruncatedNormal, era_action_distribution
from era_policies.distributions import ERATruncatedNormal

EPS32 = torch.finfo(torch.float32).eps


def _mean_one_ulp_inside() -> float:
    """A float32 mean whose tanh is the largest float32 below 1."""
    below_one = torch.nextafter(torch.tensor(1.0), torch.tensor(0.0))
    mean = torch.atanh(below_one.double()).float()
    assert torch.tanh(mean) == below_one
    return float(mean)


# Locations from the middle to saturated tanh (exactly +-1 in float32) and one ulp inside a bound; log stds over
# ERA's whole range [-8, log 20].
MEANS = [
    -30.0,
    -9.0,
    -3.0,
    -0.5,
    -1e-3,
    0.0,
    1e-3,
    0.5,
    3.0,
    9.0,
    30.0,
    _mean_one_ulp_inside(),
    -_mean_one_ulp_inside(),
]
LOG_STDS = [*np.linspace(-8.0, MAX_LOG_STD_MAX, 41).tolist(), MAX_LOG_STD_MAX]
PROBABILITIES = [0.0, 2**-24, 1e-7, 1e-3, 0.2, 0.4999, 0.5, 0.5001, 0.8, 0.999, 1 - 2**-24]


def _grid(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean, log_std, u = torch.meshgrid(
        torch.tensor(MEANS, dtype=dtype),
        torch.tensor(LOG_STDS, dtype=dtype),
        torch.tensor(PROBABILITIES, dtype=dtype),
        indexing="ij",
    )
    return mean.reshape(-1), log_std.reshape(-1), u.reshape(-1)


def test_saturated_means_reach_the_bounds_in_float32():
    """The premise of the grid: float32 tanh gives locations exactly on a bound and one ulp inside."""
    loc = torch.tanh(torch.tensor(MEANS))
    assert {-1.0, 1.0} <= set(loc.tolist())
    below_one = 1 - EPS32 / 2
    assert (loc == below_one).any() and (loc == -below_one).any()


def test_float32_equals_the_general_distribution_to_float32_rounding():
    """The lean float32 path against the general TruncatedNormal in float64 on the same float32 parameters."""
    mean, log_std, u = _grid(torch.float32)
    lean = era_action_distribution(mean, log_std)
    general = TruncatedNormal(torch.tanh(mean).double(), torch.exp(log_std).double())
    scale = general.scale

    x = lean.icdf(u)
    x_ref = general.icdf(u.double())
    # ulp(x) for the value itself; ndtri resolves the probability near 1/2 to its float32 spacing: scale * eps.
    quantile_unit = EPS32 * (x_ref.abs().clamp_min(2**-10) + scale)
    assert ((x.double() - x_ref).abs() <= 8 * quantile_unit).all()

    log_prob, log_prob_ref = lean.log_prob(x), general.log_prob(x.double())
    assert ((log_prob.double() - log_prob_ref).abs() <= 8 * EPS32 * (1 + log_prob_ref.abs())).all()
    entropy, entropy_ref = lean.entropy(), general.entropy()
    assert ((entropy.double() - entropy_ref).abs() <= 4 * EPS32 * (1 + entropy_ref.abs())).all()
    mean_ref = general.mean
    assert ((lean.mean.double() - mean_ref).abs() <= 4 * EPS32 * (mean_ref.abs().clamp_min(2**-10) + scale)).all()
    assert torch.equal(lean.mode, torch.tanh(mean))
    for value in (x, log_prob, entropy, lean.mean):
        assert value.dtype == torch.float32


def test_float64_equals_the_general_distribution():
    mean, log_std, u = _grid(torch.float64)
    lean = era_action_distribution(mean, log_std)
    general = TruncatedNormal(torch.tanh(mean), torch.exp(log_std))
    x = lean.icdf(u)
    # For a location exactly on a bound the general path solves the one-sided tail by Newton's method (~1e-10).
    torch.testing.assert_close(x, general.icdf(u), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(lean.log_prob(x), general.log_prob(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lean.entropy(), general.entropy(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lean.mean, general.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lean.variance, general.variance)  # inherited
    torch.testing.assert_close(lean.cdf(x), general.cdf(x))  # inherited


@pytest.mark.parametrize(("mean", "log_std"), [(0.3, -0.7), (2.0, -3.0), (-1.2, 0.5), (0.0, MAX_LOG_STD_MAX)])
def test_matches_scipy(mean, log_std):
    loc, scale = math.tanh(mean), math.exp(log_std)
    ref = stats.truncnorm((-1 - loc) / scale, (1 - loc) / scale, loc=loc, scale=scale)
    dist = era_action_distribution(torch.tensor(mean, dtype=torch.float64), torch.tensor(log_std, dtype=torch.float64))
    quantiles = np.array([1e-6, 0.1, 0.5, 0.9, 1 - 1e-6])
    x = np.clip(ref.ppf(quantiles), -1, 1)
    np.testing.assert_allclose(dist.icdf(torch.tensor(quantiles)).numpy(), x, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dist.log_prob(torch.tensor(x)).numpy(), ref.logpdf(x), rtol=1e-9, atol=1e-9)
    assert float(dist.entropy()) == pytest.approx(ref.entropy(), rel=1e-9, abs=1e-9)
    assert float(dist.mean) == pytest.approx(ref.mean(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("mean", "log_std"), [(0.3, -1.0), (3.0, -4.0), (-0.2, 1.5)])
def test_float32_samples_follow_the_distribution(mean, log_std):
    torch.manual_seed(0)
    dist = era_action_distribution(torch.full((50_000,), mean), torch.full((50_000,), log_std))
    x = dist.sample()
    loc, scale = math.tanh(mean), math.exp(log_std)
    ref = stats.truncnorm((-1 - loc) / scale, (1 - loc) / scale, loc=loc, scale=scale)
    assert stats.kstest(x.double().numpy(), ref.cdf).pvalue > 1e-3
    assert bool(((x >= -1) & (x <= 1)).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_stay_finite_in_the_tails(dtype):
    """Saturated tanh and the smallest scale ERA uses: samples, log-probs, entropy and mean keep finite gradients."""
    mean = torch.tensor([-30.0, -9.0, _mean_one_ulp_inside(), 0.0, 9.0, 30.0], dtype=dtype)
    mean = mean.repeat(3).requires_grad_(True)
    log_std = torch.tensor([-8.0, -4.0, MAX_LOG_STD_MAX], dtype=dtype).repeat_interleave(6).requires_grad_(True)
    dist = era_action_distribution(mean, log_std)
    x = dist.rsample((256,))
    total = x.sum() + dist.log_prob(x).sum() + dist.entropy().sum() + dist.mean.sum()
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(mean.grad).all() and torch.isfinite(log_std.grad).all()


def test_gradients_match_the_general_distribution():
    mean = torch.tensor([0.3, 2.0, -1.0, 0.0], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([-0.5, -3.0, 1.0, -8.0], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.3, 0.9, 0.01, 0.5], dtype=torch.float64)
    x = torch.tensor([0.2, 0.97, -0.9, 0.0], dtype=torch.float64)

    def values(dist):
        return dist.icdf(u).sum() + dist.log_prob(x).sum() + dist.entropy().sum() + dist.mean.sum()

    lean_grads = torch.autograd.grad(values(era_action_distribution(mean, log_std)), (mean, log_std))
    general = TruncatedNormal(torch.tanh(mean), torch.exp(log_std))
    general_grads = torch.autograd.grad(values(general), (mean, log_std))
    for lean_grad, general_grad in zip(lean_grads, general_grads, strict=True):
        torch.testing.assert_close(lean_grad, general_grad, rtol=1e-9, atol=1e-9)


def test_log_prob_and_entropy_reuse_what_sampling_computed():
    """One erf pair per distribution, however many of sample, log_prob and entropy are asked for."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Erfs(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            _Erfs.count += func is torch.ops.aten.erf.default
            return func(*args, **(kwargs or {}))

    dist = era_action_distribution(torch.randn(4, 3), torch.full((4, 3), -1.0))
    with _Erfs():
        x = dist.rsample()
        dist.log_prob(x)
        dist.entropy()
        dist.rsample()
    assert _Erfs.count == 2


def _count_ops(ops, fn, *args):
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            _Count.count += func in ops
            return func(*args, **(kwargs or {}))

    with _Count():
        result = fn(*args)
    return result, _Count.count


def test_log_prob_of_its_own_sample_equals_the_general_log_prob_to_rounding():
    """``log_prob`` of the tensor ``rsample``/``sample`` returned reads the sample's standardised value: the general
    float64 log-density at the float32 sample, up to what rounding the sample to float32 moves it (``|xi|`` times one
    ulp of ``x`` in scales), on ERA's whole parameter range."""
    mean, log_std, _ = _grid(torch.float32)
    torch.manual_seed(0)
    for draw in ("rsample", "sample"):
        lean = era_action_distribution(mean, log_std)
        x = getattr(lean, draw)((16,))
        log_prob, divisions = _count_ops({torch.ops.aten.div.Tensor}, lean.log_prob, x)
        assert divisions == 0  # no (x - loc) / scale formed again
        general = TruncatedNormal(torch.tanh(mean).double(), torch.exp(log_std).double())
        ref = general.log_prob(x.double())
        xi = (x.double() - general.loc) / general.scale
        tolerance = 8 * EPS32 * (1 + ref.abs()) + xi.abs() * EPS32 * x.double().abs() / general.scale
        assert ((log_prob.double() - ref).abs() <= tolerance).all()
        assert log_prob.dtype == torch.float32


def test_log_prob_of_its_own_sample_has_the_general_gradients():
    """Reparameterised: d/dtheta log p(x(theta); theta) as if formed from (x - loc) / scale. Drawn without gradient
    (a score function, log p(x; theta) at fixed x): the general path, so xi is not taken for a constant."""
    mean = torch.tensor([0.3, 2.0, -1.0, 0.0, 30.0], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([-0.5, -3.0, 1.0, -8.0, -2.0], dtype=torch.float64, requires_grad=True)

    def grads(draw: str, same_tensor: bool):
        torch.manual_seed(1)
        dist = era_action_distribution(mean, log_std)
        x = getattr(dist, draw)((8,))
        log_prob = dist.log_prob(x if same_tensor else x.clone())
        return torch.autograd.grad(log_prob.sum(), (mean, log_std))

    for draw in ("rsample", "sample"):
        for fast, general in zip(grads(draw, True), grads(draw, False), strict=True):
            torch.testing.assert_close(fast, general, rtol=1e-9, atol=1e-12)


def test_icdf_of_0_and_1_are_the_bounds():
    for dist in (
        era_action_distribution(torch.tensor([0.0, 0.0, 30.0]), torch.tensor([-8.0, 0.0, -8.0])),
        TruncatedNormal(torch.tensor([0.0, 0.0, 1.0, 3.0]), torch.tensor([3e-4, 1.0, 3e-4, 0.1])),
        TruncatedNormal(torch.tensor([0.0, 0.0], dtype=torch.float64), torch.tensor([3e-4, 1e-2], dtype=torch.float64)),
    ):
        ones = torch.ones_like(dist.loc)
        assert torch.equal(dist.icdf(0 * ones), -ones) and torch.equal(dist.icdf(ones), ones)


def test_a_point_mass_has_entropy_minus_inf():
    """log_std = -inf (documented): the limit, not NaN; validate_args=True refuses it."""
    mean = torch.tensor([0.0, 0.5, -0.9])
    entropy = era_action_distribution(mean, torch.full((3,), -math.inf)).entropy()
    assert torch.equal(entropy, torch.full((3,), -math.inf))
    with pytest.raises(ValueError, match="log_std must be finite"):
        era_action_distribution(mean, torch.full((3,), -math.inf), validate_args=True)


@pytest.mark.parametrize(
    ("mean", "log_std", "match"),
    [
        (torch.zeros(3), torch.full((3,), MAX_LOG_STD_MAX + 0.1), "log_std must be finite and <= MAX_LOG_STD_MAX"),
        (torch.zeros(3), torch.zeros(2), "one shape"),
        (torch.zeros(3, dtype=torch.float16), torch.zeros(3, dtype=torch.float16), "float32 or float64"),
        (torch.tensor([0.0, float("nan"), 0.0]), torch.zeros(3), "mean_actions must not be NaN"),
    ],
)
def test_validate_args_checks_the_arguments(mean, log_std, match):
    with pytest.raises(ValueError, match=match):
        era_action_distribution(mean, log_std, validate_args=True)


def test_kl_is_the_general_closed_form():
    p = era_action_distribution(torch.tensor([0.3, 2.0]), torch.tensor([-1.0, -3.0]))
    q = era_action_distribution(torch.tensor([0.1, 1.5]), torch.tensor([-0.5, -2.0]))
    general = [TruncatedNormal(d.loc, d.scale) for d in (p, q)]
    torch.testing.assert_close(kl_divergence(p, q), kl_divergence(*general))


def test_expand():
    dist = era_action_distribution(torch.randn(3), torch.full((3,), -1.0))
    expanded = dist.expand((4, 3))
    assert isinstance(expanded, ERATruncatedNormal) and expanded.batch_shape == (4, 3)
    torch.testing.assert_close(expanded.entropy()[2], dist.entropy())


# ------------------------------------------------------------------------------------------------ torch.compile
def _era_action_path(head: ERAStd, mean: torch.Tensor, std_logits: torch.Tensor):
    dist = era_action_distribution(mean, head(std_logits))
    action = dist.rsample()
    return action, dist.log_prob(action).sum(-1), dist.entropy().sum(-1), dist.mean, dist.mode


def test_compiled_action_path_is_one_float32_graph():
    """fullgraph=True fails on any graph break; every node of the forward and backward ATen graphs is float32."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def keep(graph_module, _example_inputs):
        graphs.append(graph_module)
        return make_boxed_func(graph_module.forward)

    torch._dynamo.reset()
    head = ERAStd(action_dim=3, target_entropy_per_dim=-0.5, delta="auto")
    compiled = torch.compile(
        _era_action_path, fullgraph=True, dynamic=False, backend=aot_autograd(fw_compiler=keep, bw_compiler=keep)
    )
    # Means from the middle to saturated tanh (locations on the bounds).
    mean = torch.tensor([[0.1, -3.0, 2.0], [30.0, -30.0, 0.0]], requires_grad=True)
    std_logits = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, -4.0]], requires_grad=True)
    torch.manual_seed(0)
    out = compiled(head, mean, std_logits)
    torch.manual_seed(0)
    for got, want in zip(out, _era_action_path(head, mean, std_logits), strict=True):
        torch.testing.assert_close(got, want)
    sum(value.sum() for value in out[:4]).backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(std_logits.grad).all()

    assert len(graphs) == 2  # forward and backward
    dtypes = [
        node.meta["val"].dtype
        for graph in graphs
        for node in graph.graph.nodes
        if isinstance(node.meta.get("val"), torch.Tensor)
    ]
    assert len(dtypes) > 50 and torch.float32 in dtypes
    assert torch.float64 not in dtypes
