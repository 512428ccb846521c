"""The package boundary: the method needs only torch and numpy; the agents' helpers name the extra they need.

Each case runs in a fresh interpreter in which the named modules cannot be imported (``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``, as if it were not installed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

AGENT_ONLY = ("era_utils", "stable_baselines3", "sb3_contrib", "gymnasium", "tyro", "tensorboard", "tqdm")


def run_without(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_era_policies_imports_without_the_agents_dependencies() -> None:
    result = run_without(
        AGENT_ONLY,
        """
        import torch
        import era_policies
        from era_policies import EntropyDelta

        delta = EntropyDelta(action_dim=3, target_entropy_per_dim=-0.5)
        assert delta.target_entropy == -1.5
        loaded = sorted(name for name, module in sys.modules.items() if module is not None
                        and name.split(".")[0] in ("era_utils", "stable_baselines3", "sb3_contrib", "gymnasium",
                                                   "tyro", "tensorboard", "tqdm"))
        assert loaded == [], loaded
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("missing", ["tyro", "tensorboard", "gymnasium", "stable_baselines3"])
def test_era_utils_without_an_agents_dependency_names_the_install_command(missing: str) -> None:
    result = run_without(
        (missing,),
        """
        from era_utils.dependencies import MissingDependencyError
        try:
            import era_utils.experiment
        except MissingDependencyError as err:
            print(err)
        else:
            print("imported")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert f"needs {missing!r}" in result.stdout
    assert 'Install: pip install "era-policies[agents]"' in result.stdout
