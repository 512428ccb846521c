"""The README's promises: its library example runs, and CI runs the test command it documents."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _code_block_after(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, f"no {language} block after {heading!r}"
    return match.group(1)


def test_library_example_runs():
    namespace: dict[str, object] = {}
    exec(compile(_code_block_after("### The library", "python"), "README.md", "exec"), namespace)
    assert namespace["action"].shape == (32, 6)
    assert bool((namespace["action"].abs() <= 1).all())


def test_ci_runs_the_documented_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = _code_block_after("## Test", "bash").strip()
    assert test_command in ci
    setup = _code_block_after("## Set up", "bash").strip()
    assert setup.startswith("pip install torch==2.13.0") and "torch==2.13.0" in ci
