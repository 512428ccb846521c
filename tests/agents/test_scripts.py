"""What every agent script does before training: one module object per script, a missing extra named with its install
command, a network too large refused naming the flag before any run directory exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')

from era_utils.dependencies import AGENTS_INSTALL

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "agents"
SCRIPTS = ["sac_era.py", "sac_era_batch.py", "ppo_era.py"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_python(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300)


def test_sac_era_batch_and_sac_era_are_one_module_under_the_benchmark_loader():
    """sac_era_batch imports sac_era by its plain name; load_agent hands out that same module, whatever the order."""
    result = run_python(
        "import sys\n"
        "from benchmarks.agent_scripts import load_agent\n"
        "batch = load_agent('sac_era_batch')\n"
        "sac = load_agent('sac_era')\n"
        "files = {name: str(getattr(m, '__file__', '')) for name, m in list(sys.modules.items())}\n"
        "copies = sorted(name for name, file in files.items() if file.endswith('sac_era.py'))\n"
        "assert copies == ['sac_era'], copies\n"
        "assert batch.main is sac.main and issubclass(batch.Args, sac.Args)\n"
        "assert load_agent('sac_era') is sac\n"
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("blocked", ["tqdm", "tyro"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_without_the_agents_extra_prints_the_install_command(script, blocked):
    result = run_python(
        f"import runpy, sys\n"
        f"sys.modules[{blocked!r}] = None  # as if not installed\n"
        f"sys.path.insert(0, {str(AGENTS)!r})\n"
        f"sys.argv = [{script!r}, '--help']\n"
        f"runpy.run_path({str(AGENTS / script)!r}, run_name='__main__')\n"
    )
    assert result.returncode != 0
    assert AGENTS_INSTALL in result.stderr.splitlines()[-1], result.stderr[-2000:]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_network_too_large_to_allocate_is_an_error_naming_the_flag_before_any_run_directory(script, tmp_path):
    cmd = [sys.executable, str(AGENTS / script), "--env-id", "Pendulum-v1", "--no-cuda", "--no-progress"]
    cmd += ["--log-dir", str(tmp_path / "runs"), "--total-timesteps", "10", "--hidden-dim", "2000000"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1].startswith("error: --hidden-dim 2000000"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
