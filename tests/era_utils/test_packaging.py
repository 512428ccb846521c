"""pyproject's extras: `pip install ".[all]"` gives every optional feature, --capture-video included."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("tomllib is Python >= 3.11", allow_module_level=True)
import tomllib

EXTRAS = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"][
    "optional-dependencies"
]


def names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+(\[[^]]*\])?", requirement).group(0) for requirement in requirements}


def test_all_includes_every_other_extra() -> None:
    (included,) = EXTRAS["all"]
    assert set(included.removeprefix("era-policies[").removesuffix("]").split(",")) == set(EXTRAS) - {"all"}


def test_video_extra_has_the_encoder_and_the_classic_control_renderer() -> None:
    assert {"moviepy", "pygame"} <= names(EXTRAS["video"])


def test_distributed_extra_is_ray_for_the_benchmark_runner() -> None:
    assert names(EXTRAS["distributed"]) == {"ray"}


def test_agents_extra_has_what_era_utils_imports() -> None:
    assert {"era-policies[sb3]", "gymnasium", "tyro", "tensorboard", "tqdm"} <= names(EXTRAS["agents"])
