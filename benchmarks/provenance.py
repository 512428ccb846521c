"""Provenance written beside every benchmark result: git commit, hardware, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "git_commit",
    "hardware_description",
    "provenance_header",
    "refuse_to_overwrite",
    "utc_now",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


RESULTS_PATHSPEC = ":(exclude)benchmarks/results"
"""The benchmarks' own outputs: rewriting a committed result does not make the code that produced it uncommitted."""


def git_commit() -> str:
    """Short commit of the repository, flagged when tracked files outside ``benchmarks/results`` have uncommitted
    changes."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", RESULTS_PATHSPEC))
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()


def hardware_description() -> str:
    """CPU model and core count, and the CUDA device when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: keep platform's description
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"GPU: {torch.cuda.get_device_name(0)}"
    except ImportError:
        gpu = "GPU unknown (torch not installed)"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}"


def provenance_header(command: str, hardware_details: str = "") -> list[str]:
    """The Markdown lines every results file opens with: the command, the commit, the date and the hardware
    (``hardware_details`` appended to :func:`hardware_description` after a semicolon)."""
    hardware = hardware_description() + (f"; {hardware_details}" if hardware_details else "")
    return [
        f"- **Command:** `{command}`",
        f"- **Git commit:** `{git_commit()}`",
        f"- **Date:** {utc_now():%Y-%m-%d %H:%M} UTC",
        f"- **Hardware:** {hardware}",
    ]


def refuse_to_overwrite(results_dir: Path, names: Iterable[str], overwrite: bool) -> None:
    """Stop, before anything is measured, when ``results_dir`` already holds any of ``names`` (an earlier run's
    results, which the run would replace), unless ``overwrite``."""
    existing = [name for name in names if (results_dir / name).exists()]
    if existing and not overwrite:
        raise SystemExit(
            f"error: --results-dir {results_dir} already holds {', '.join(existing)} from an earlier run; choose "
            "another --results-dir, or pass --overwrite to replace them"
        )
