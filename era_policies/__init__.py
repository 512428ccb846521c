"""ERA (Entropy Regularizing Activation) for PyTorch policies.

Core (needs only torch): the continuous activations, batch-level ERA, the entropy compensation ``delta``, the
truncated-normal action distribution and softmax ERA. Stable-Baselines3 policies live in :mod:`era_policies.sb3`
(``pip install "era-policies[sb3]"``).
"""

from era_policies.activations import (
    BatchERA,
    ERAStd,
    batch_log_normalizer,
    era_log_std,
    era_log_std_batch,
    gaussian_entropy,
)
from era_policies.delta import (
    HALF_LOG_2PI,
    HALF_LOG_2PI_E,
    MAX_LOG_STD_MAX,
    EntropyDelta,
    check_action_dim,
    check_batch_momentum,
    check_log_std_range,
    check_target_entropy_per_dim,
    max_entropy_per_dim,
)
from era_policies.discrete import era_logits, lambertw_m1
from era_policies.distributions import ERATruncatedNormal, TruncatedNormal, era_action_distribution

__version__ = "0.1.0"

__all__ = [
    "HALF_LOG_2PI",
    "HALF_LOG_2PI_E",
    "MAX_LOG_STD_MAX",
    "BatchERA",
    "ERAStd",
    "ERATruncatedNormal",
    "EntropyDelta",
    "TruncatedNormal",
    "__version__",
    "batch_log_normalizer",
    "check_action_dim",
    "check_batch_momentum",
    "check_log_std_range",
    "check_target_entropy_per_dim",
    "era_action_distribution",
    "era_log_std",
    "era_log_std_batch",
    "era_logits",
    "gaussian_entropy",
    "lambertw_m1",
    "max_entropy_per_dim",
]
