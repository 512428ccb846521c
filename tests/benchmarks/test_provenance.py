"""Provenance: the commit beside a result names the code, and flags uncommitted code, not uncommitted results."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks import provenance


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with one committed source file and one committed result."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "agent.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "suite").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "suite" / "summary.md").write_text("old\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    return tmp_path


def test_a_rewritten_result_leaves_the_commit_clean(repo: Path) -> None:
    clean = provenance.git_commit()
    assert "uncommitted" not in clean and len(clean) >= 7
    (repo / "benchmarks" / "results" / "suite" / "summary.md").write_text("new\n")
    assert provenance.git_commit() == clean


def test_changed_code_is_flagged(repo: Path) -> None:
    clean = provenance.git_commit()
    (repo / "agent.py").write_text("x = 2\n")
    assert provenance.git_commit() == f"{clean} (with uncommitted changes)"


def test_every_results_file_opens_with_command_commit_date_and_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "git_commit", lambda: "abc1234")
    monkeypatch.setattr(provenance, "hardware_description", lambda: "Some CPU, 2 cores, no GPU")
    command, commit, date, hardware = provenance.provenance_header("python -m benchmarks.x --flag", "1 thread(s)")
    assert (command, commit) == ("- **Command:** `python -m benchmarks.x --flag`", "- **Git commit:** `abc1234`")
    assert date.startswith("- **Date:** 20") and date.endswith(" UTC")
    assert hardware == "- **Hardware:** Some CPU, 2 cores, no GPU; 1 thread(s)"
    assert provenance.provenance_header("c")[3] == "- **Hardware:** Some CPU, 2 cores, no GPU"
