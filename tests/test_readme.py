"""The README's promises: its library example runs, its commands use flags that exist, and CI runs what it documents."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import tyro

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _code_block_after(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, f"no {language} block after {heading!r}"
    return match.group(1)


def _bash_commands() -> list[list[str]]:
    """Every ``python ...`` line of the README's bash blocks, comments stripped, split like a shell would."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("python "):
                commands.append(shlex.split(line))
    return commands


def test_library_example_runs():
    namespace: dict[str, object] = {}
    exec(compile(_code_block_after("### The library", "python"), "README.md", "exec"), namespace)
    assert namespace["action"].shape == (32, 6)
    assert bool((namespace["action"].abs() <= 1).all())


def test_setup_installs_what_ci_installs_and_ci_runs_the_documented_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _code_block_after("## Test", "bash").strip() in ci
    setup = _code_block_after("## Set up", "bash")
    assert "cd era-policies" in setup  # clone, then enter the checkout before the editable install
    assert setup.strip().splitlines()[-1] == 'pip install -e ".[all]"'
    assert '-e ".[all]"' in ci
    # PyTorch comes before the project in both, so that pip does not pick a torch build on its own.
    assert setup.index("pip install torch") < setup.index("pip install -e")
    assert ci.index("torch==") < ci.index('-e ".[all]"')


AGENT_COMMANDS = [argv for argv in _bash_commands() if argv[1].startswith("agents/")]
BENCHMARK_COMMANDS = [argv for argv in _bash_commands() if argv[:3] == ["python", "-m", "benchmarks.learning"]]


def test_the_readme_documents_agent_and_benchmark_commands():
    scripts = {argv[1] for argv in AGENT_COMMANDS}
    assert {"agents/sac_era.py", "agents/ppo_era.py", "agents/evaluate.py"} <= scripts
    assert BENCHMARK_COMMANDS


@pytest.mark.parametrize("argv", AGENT_COMMANDS, ids=lambda argv: " ".join(argv[1:]))
def test_agent_commands_in_the_readme_parse(argv):
    pytest.importorskip("stable_baselines3", reason='the agents need pip install "era-policies[agents]"')
    from benchmarks.agent_scripts import load_agent

    agent = load_agent(Path(argv[1]).stem)
    args = tyro.cli(agent.Args, args=argv[2:])
    args.check()  # every documented command passes the agent's own start-up checks


@pytest.mark.parametrize("argv", BENCHMARK_COMMANDS, ids=lambda argv: " ".join(argv[3:]))
def test_benchmark_commands_in_the_readme_parse(argv):
    pytest.importorskip("pandas", reason='the benchmarks need pip install "era-policies[bench]"')
    from benchmarks import learning

    args = tyro.cli(learning.Args, args=argv[3:])
    args.check()
