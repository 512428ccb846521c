"""ERA continuous activations: exact entropy, the floor under clamping, batch level, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from era_policies import BatchERA, ERAStd, batch_log_normalizer, era_log_std, era_log_std_batch, gaussian_entropy
from era_policies.delta import HALF_LOG_2PI_E, max_entropy_per_dim
from tests.conftest import requires_cuda

batch_shapes = st.lists(st.integers(1, 5), min_size=0, max_size=2).map(tuple)
action_dims = st.integers(1, 64)
per_dim_targets = st.floats(-3.0, 1.4)  # up to just below the cap of 1.4189 for log_std_max = 0
logit_scales = st.sampled_from([1e-3, 1.0, 10.0, 100.0, 1e4])


def _reference_log_std(std_logits: torch.Tensor, target: float, lo: float, hi: float) -> torch.Tensor:
    """The formula of the notes, written out independently (float64)."""
    d = std_logits.shape[-1]
    c = target - d * math.log(math.sqrt(2 * math.pi * math.e)) - d * hi
    return torch.maximum(hi + c * torch.softmax(std_logits.double(), -1), torch.tensor(lo, dtype=torch.float64))


@given(shape=batch_shapes, d=action_dims, e=per_dim_targets, scale=logit_scales, seed=st.integers(0, 2**16))
def test_state_level_entropy_never_below_target_and_exact_without_clamp(shape, d, e, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn((*shape, d), generator=gen, dtype=torch.float64) * scale
    target = d * e
    log_std = era_log_std(logits, target)
    assert log_std.shape == logits.shape
    entropy = gaussian_entropy(log_std)
    assert torch.all(entropy >= target - 1e-9 * max(1.0, abs(target)))
    clamped = (log_std <= -8.0 + 1e-12).any(-1)
    exact = entropy[~clamped]
    assert torch.allclose(exact, torch.full_like(exact, target), atol=1e-9, rtol=0)
    assert torch.all(log_std <= 0.0) and torch.all(log_std >= -8.0)
    assert torch.allclose(log_std, _reference_log_std(logits, target, -8.0, 0.0))


@given(d=action_dims, e=st.floats(-2.0, 0.5), seed=st.integers(0, 2**16))
def test_state_level_float32_exact_to_float_precision(d, e, seed):
    logits = torch.randn((7, d), generator=torch.Generator().manual_seed(seed))
    log_std = era_log_std(logits, d * e, log_std_min=-50.0)  # no clamp can bind here
    entropy = gaussian_entropy(log_std.double())
    assert torch.allclose(entropy, torch.full_like(entropy, d * e), atol=1e-5 * d, rtol=0)


def test_clamp_raises_entropy_above_target():
    logits = torch.tensor([[50.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # one dimension takes the whole budget
    target = 4 * -3.0
    log_std = era_log_std(logits, target)
    assert log_std[0, 0] == -8.0  # clamped
    assert gaussian_entropy(log_std) > target + 1.0


def test_one_dimension_gives_a_constant_std():
    logits = torch.randn(10, 1) * 5
    log_std = era_log_std(logits, -0.5)
    assert torch.allclose(log_std, torch.full_like(log_std, -0.5 - HALF_LOG_2PI_E))


def test_log_std_max_shifts_the_feasible_range():
    d, hi = 3, 1.0
    cap = d * max_entropy_per_dim(hi)
    log_std = era_log_std(torch.zeros(2, d), cap, log_std_max=hi)
    assert torch.allclose(log_std, torch.full_like(log_std, hi))
    with pytest.raises(ValueError, match="infeasible"):
        era_log_std(torch.zeros(2, d), cap + 1e-3, log_std_max=hi)


def test_tensor_target_broadcasts_over_the_batch_and_carries_gradient():
    logits = torch.randn(4, 6, dtype=torch.float64)
    delta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    per_state = torch.tensor([-2.0, -1.0, 0.0, 1.0], dtype=torch.float64)
    log_std = era_log_std(logits, per_state + delta)
    assert torch.allclose(gaussian_entropy(log_std), per_state + 0.3)
    log_std.sum().backward()
    assert delta.grad is not None and torch.isfinite(delta.grad)


@pytest.mark.parametrize(
    ("bad_target", "match"),
    [(6 * 1.42, "infeasible"), (float("nan"), "target_entropy.*finite"), (float("inf"), "target_entropy.*finite")],
)
def test_infeasible_or_non_finite_target_is_a_value_error(bad_target, match):
    with pytest.raises(ValueError, match=match):
        era_log_std(torch.zeros(3, 6), bad_target)
    with pytest.raises(ValueError, match=match):
        era_log_std(torch.zeros(3, 6), torch.full((3,), bad_target))
    with pytest.raises(ValueError, match=match):
        era_log_std_batch(torch.zeros(3, 6), torch.full((3,), bad_target))


@pytest.mark.parametrize("bad_target", ["-1.0", None, True, [1.0]])
def test_non_number_target_is_a_value_error_naming_it(bad_target):
    with pytest.raises(ValueError, match="target_entropy must be a real number"):
        era_log_std(torch.zeros(3, 6), bad_target)


@pytest.mark.parametrize("target_shape", [(3, 1), (4,), (2, 3), (3, 6)])
def test_target_tensor_of_the_wrong_shape_is_a_value_error(target_shape):
    logits = torch.zeros(3, 6)
    with pytest.raises(ValueError, match=r"target_entropy must be .* broadcastable"):
        era_log_std(logits, torch.full(target_shape, -1.0))
    with pytest.raises(ValueError, match=r"target_entropy must be .* broadcastable"):
        era_log_std_batch(logits, torch.full(target_shape, -1.0))


def test_target_tensor_shapes_that_broadcast_over_the_batch_are_accepted():
    logits = torch.zeros(2, 3, 6, dtype=torch.float64)
    for shape in [(), (1,), (3,), (2, 3), (2, 1)]:
        log_std = era_log_std(logits, torch.full(shape, -1.0, dtype=torch.float64))
        assert log_std.shape == logits.shape
        assert torch.allclose(gaussian_entropy(log_std), torch.full((2, 3), -1.0, dtype=torch.float64))


def test_integer_target_tensor_is_a_value_error():
    with pytest.raises(ValueError, match="floating-point"):
        era_log_std(torch.zeros(3, 6), torch.tensor(-1))


@pytest.mark.parametrize("logits", [torch.zeros(0, 4), torch.zeros(2, 0, 4)])
def test_empty_batch_is_a_value_error_for_batch_level(logits):
    with pytest.raises(ValueError, match="at least one state"):
        era_log_std_batch(logits, -1.0)
    with pytest.raises(ValueError, match="at least one state"):
        batch_log_normalizer(logits)
    with pytest.raises(ValueError, match="at least one state"):
        BatchERA()(logits, -1.0)


@pytest.mark.parametrize(
    ("logits", "kwargs", "match"),
    [
        (torch.zeros(3, 0), {}, "non-empty"),
        (torch.zeros(3, 2, dtype=torch.long), {}, "floating"),
        (torch.zeros(3, 2), {"log_std_min": 0.0, "log_std_max": 0.0}, "log_std_min < log_std_max"),
    ],
)
def test_bad_arguments_are_value_errors(logits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        era_log_std(logits, -1.0, **kwargs)


@given(d=st.integers(1, 64), extreme=st.sampled_from([-1e4, -100.0, 100.0, 1e4]))
def test_gradients_stay_finite_for_extreme_logits(d, extreme):
    logits = torch.randn(8, d)
    logits[:, 0] = extreme
    logits.requires_grad_(True)
    log_std = era_log_std(logits, d * 0.25)
    assert torch.isfinite(log_std).all()
    log_std.sum().backward()
    assert torch.isfinite(logits.grad).all()


# ----------------------------------------------------------------------------------------------- batch level
@given(
    shape=batch_shapes,
    d=action_dims,
    e=per_dim_targets,
    scale=st.sampled_from([0.1, 1.0, 3.0]),
    seed=st.integers(0, 999),
)
def test_batch_level_mean_entropy_matches_target(shape, d, e, scale, seed):
    logits = torch.randn((*shape, d), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    target = d * e
    log_std = era_log_std_batch(logits, target, log_std_min=-1e6)  # no clamp: exact batch mean
    mean_entropy = gaussian_entropy(log_std).mean()
    assert math.isclose(float(mean_entropy), target, abs_tol=1e-8 * max(1.0, abs(target)))
    clamped = era_log_std_batch(logits, target)
    assert float(gaussian_entropy(clamped).mean()) >= target - 1e-8 * max(1.0, abs(target))


def test_batch_level_lets_single_states_differ_from_the_target():
    logits = torch.tensor([[3.0, 3.0], [-3.0, -3.0]], dtype=torch.float64)
    per_state = gaussian_entropy(era_log_std_batch(logits, -2.0, log_std_min=-1e6))
    assert per_state[0] < -2.0 < per_state[1]
    assert math.isclose(float(per_state.mean()), -2.0, abs_tol=1e-10)


def test_batch_level_with_the_state_normaliser_is_state_level():
    logits = torch.randn(5, 4, dtype=torch.float64)
    own = torch.logsumexp(logits, -1, keepdim=True)
    assert torch.allclose(era_log_std_batch(logits, -1.0, log_normalizer=own), era_log_std(logits, -1.0))


def test_batch_log_normalizer_definition():
    logits = torch.randn(3, 2, 5, dtype=torch.float64)
    expected = torch.log(torch.exp(torch.logsumexp(logits, -1)).mean())
    assert torch.allclose(batch_log_normalizer(logits), expected)


def test_batch_era_tracks_a_running_normaliser_and_uses_it_when_acting():
    module = BatchERA(momentum=0.5).double()
    single = torch.randn(1, 4, dtype=torch.float64)
    module.eval()
    # Before any training batch: the state's own normaliser, i.e. state level.
    assert torch.allclose(module(single, -2.0), era_log_std(single, -2.0))
    module.train()
    batches = [torch.randn(16, 4, dtype=torch.float64) for _ in range(3)]
    expected = batch_log_normalizer(batches[0])
    for batch in batches:
        out = module(batch, -2.0)
        assert torch.allclose(out, era_log_std_batch(batch, -2.0))
    for batch in batches[1:]:
        expected = torch.logaddexp(expected + math.log(0.5), batch_log_normalizer(batch) + math.log(0.5))
    assert torch.allclose(module.running_log_normalizer, expected)
    assert int(module.num_batches_tracked) == 3
    module.eval()
    assert torch.allclose(module(single, -2.0), era_log_std_batch(single, -2.0, log_normalizer=expected))
    with pytest.raises(ValueError, match="momentum"):
        BatchERA(momentum=0.0)


def test_batch_era_state_dict_round_trip():
    module = BatchERA()
    module(torch.randn(32, 3) * 2, -1.0)
    clone = BatchERA()
    clone.load_state_dict(module.state_dict())
    clone.eval()
    module.eval()
    x = torch.randn(1, 3)
    assert torch.equal(clone(x, -1.0), module(x, -1.0))


# ---------------------------------------------------------------------------------------------------- ERAStd
@pytest.mark.parametrize("level", ["state", "batch"])
def test_era_std_targets_include_delta(level):
    head = ERAStd(action_dim=5, target_entropy_per_dim=-0.5, level=level, delta=0.25, log_std_min=-1e3).double()
    assert head.target_entropy == pytest.approx(-2.5)
    log_std = head(torch.randn(64, 5, dtype=torch.float64))
    assert float(gaussian_entropy(log_std).mean()) == pytest.approx(5 * (-0.5 + 0.25), abs=1e-8)


def test_era_std_rejects_bad_configuration():
    with pytest.raises(ValueError, match="level"):
        ERAStd(3, -0.5, level="episode")
    with pytest.raises(ValueError, match=r"target_entropy_per_dim=1\.5 is infeasible"):
        ERAStd(3, 1.5)
    with pytest.raises(ValueError, match="target_entropy_per_dim must be a real number"):
        ERAStd(3, "-0.5")
    with pytest.raises(ValueError, match="delta"):
        ERAStd(3, -0.5, delta="sometimes")
    with pytest.raises(ValueError, match="initial_delta"):
        ERAStd(3, 1.0, delta=1.0)  # 1.0 + 1.0 > 1.4189


@pytest.mark.parametrize("action_dim", [0, -2, 2.0, "3", True, None])
def test_era_std_rejects_a_bad_action_dim(action_dim):
    with pytest.raises(ValueError, match="action_dim must be an int >= 1"):
        ERAStd(action_dim, -0.5)


class _DispatchedOps(TorchDispatchMode):
    """Records the name of every ATen operator dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("level", ["state", "batch"])
def test_era_std_forward_runs_the_formula_only(level):
    """Validated once at construction, so a forward pass dispatches the formula's operators and nothing else: no
    checks, no host read (``aten._local_scalar_dense``). The owner's Linear layer fixes the logits' width."""
    head = ERAStd(action_dim=5, target_entropy_per_dim=-0.5, level=level, delta="auto").double()
    std_logits = torch.randn(8, 5, dtype=torch.float64)
    with _DispatchedOps() as ops:
        log_std = head(std_logits)
    assert "_local_scalar_dense" not in ops.names
    if level == "state":
        assert sorted(ops.names) == ["_softmax", "add", "add", "clamp", "detach", "mul", "mul"]
        torch.testing.assert_close(log_std, era_log_std(std_logits, 5 * -0.5))
    else:
        torch.testing.assert_close(log_std, era_log_std_batch(std_logits, 5 * -0.5))


@requires_cuda
@pytest.mark.gpu
def test_cuda_matches_cpu():
    logits = torch.randn(32, 7)
    cpu = era_log_std(logits, -3.0)
    gpu = era_log_std(logits.cuda(), torch.tensor(-3.0, device="cuda"))
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-6)
    assert torch.allclose(era_log_std_batch(logits, -3.0), era_log_std_batch(logits.cuda(), -3.0).cpu(), atol=1e-6)


@pytest.mark.parametrize("delta", [True, False, -0.1, float("nan"), "learned", None])
def test_era_std_rejects_a_bad_delta(delta):
    """``delta=True`` is not taken as 1.0: a bool is refused like any other non-number."""
    with pytest.raises(ValueError, match="delta must be a float >= 0 or 'auto'"):
        ERAStd(3, -0.5, delta=delta)


@pytest.mark.parametrize("option", [{"batch_momentum": 0.0}, {"batch_momentum": True}, {"log_std_min": float("nan")}])
def test_era_std_validates_every_option_once_even_unused(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        ERAStd(3, -0.5, **option)


class _LegacyOwner(torch.nn.Module):
    """A network holding the head, as the SB3 policies and the agents do."""

    def __init__(self, **head_options) -> None:
        super().__init__()
        self.std_logits_net = torch.nn.Linear(4, 3)
        self.era_std = ERAStd(3, -0.5, **head_options)
        ERAStd.accept_legacy_state_dicts(self)


@pytest.mark.parametrize("level", ["state", "batch"])
def test_legacy_state_dicts_load_into_the_head(level):
    source = _LegacyOwner(level=level, delta="auto")
    with torch.no_grad():
        source.era_std.era_delta.delta.fill_(0.3)
    if level == "batch":
        source.era_std(torch.randn(16, 3))  # moves the running normaliser
    legacy = {key.replace("era_std.", ""): value for key, value in source.state_dict().items()}
    assert "era_delta.delta" in legacy
    wrapper = torch.nn.Sequential(_LegacyOwner(level=level, delta="auto"))
    wrapper.load_state_dict({f"0.{key}": value for key, value in legacy.items()})  # strict, from a parent
    restored = wrapper[0]
    for key, value in source.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    fresh = _LegacyOwner(level=level, delta="auto")
    fresh.load_state_dict(source.state_dict())  # the current layout is untouched by the hook
    assert fresh.era_std.era_delta.delta.item() == pytest.approx(0.3)


# ------------------------------------------------------------------------------------------ boundary edge cases
@pytest.mark.parametrize("log_std_max", [-1.0, 0.0, 0.5, 2.0])
@pytest.mark.parametrize("d", [1, 6, 17])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_target_exactly_at_the_feasibility_limit_is_accepted_with_finite_gradients(log_std_max, d, dtype):
    limit = d * (log_std_max + 0.5 * math.log(2 * math.pi * math.e))  # as the documentation writes it
    logits = torch.randn(5, d, dtype=dtype, requires_grad=True)
    for target in (limit, torch.tensor(limit, dtype=dtype, requires_grad=True)):
        for activate in (era_log_std, era_log_std_batch):
            log_std = activate(logits, target, log_std_max=log_std_max)
            torch.testing.assert_close(log_std, torch.full_like(log_std, log_std_max))  # all at the upper bound
            log_std.sum().backward()
            assert torch.isfinite(logits.grad).all()
            if isinstance(target, torch.Tensor):
                assert torch.isfinite(target.grad)
    head = ERAStd(d, limit / d, log_std_max=log_std_max, delta="auto")
    assert head.era_delta.max_delta == 0.0


@pytest.mark.parametrize("log_std_max", [math.log(20.0) + 1e-6, 5.0])
def test_log_std_max_beyond_the_distribution_s_range_is_refused(log_std_max):
    from era_policies import MAX_LOG_STD_MAX, check_log_std_range, check_target_entropy_per_dim

    assert MAX_LOG_STD_MAX == pytest.approx(math.log(20.0))
    for refuse in (
        lambda: ERAStd(3, -0.5, log_std_max=log_std_max),
        lambda: check_target_entropy_per_dim(-0.5, log_std_max),
        lambda: check_log_std_range(-8.0, log_std_max),
        lambda: era_log_std(torch.zeros(2, 3), -1.0, log_std_max=log_std_max),
    ):
        with pytest.raises(ValueError, match=r"log_std_max=.* is too large.*log\(20\)"):
            refuse()
    assert ERAStd(3, -0.5, log_std_max=MAX_LOG_STD_MAX).log_std_max == MAX_LOG_STD_MAX


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_logits_are_a_value_error_not_nan(bad):
    logits = torch.zeros(3, 4)
    logits[1, 2] = bad
    for activate in (era_log_std, era_log_std_batch):
        with pytest.raises(ValueError, match="std_logits must be finite"):
            activate(logits, -2.0)


def test_minus_inf_logits_mask_a_dimension():
    """-inf is softmax's masking value: that dimension keeps log_std_max, the others share the budget."""
    logits = torch.tensor([[0.0, -math.inf, 0.0]])
    log_std = era_log_std(logits, -2.0)
    assert log_std[0, 1] == 0.0 and torch.isfinite(log_std).all()
    torch.testing.assert_close(gaussian_entropy(log_std), torch.tensor([-2.0]))
