"""Import the single-file agents of ``agents/`` (a script directory, not a package) into a benchmark process."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from benchmarks.provenance import REPO_ROOT

__all__ = ["load_agent"]


def load_agent(name: str) -> ModuleType:
    """Import ``agents/<name>.py`` as module ``agents_<name>`` (cached after the first call)."""
    module_name = f"agents_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = REPO_ROOT / "agents" / f"{name}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # sac_era_batch imports sac_era as a sibling module
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module
