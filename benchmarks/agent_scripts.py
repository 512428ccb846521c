"""Import the single-file agents of ``agents/`` (a script directory, not a package) into a benchmark process."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from benchmarks.provenance import REPO_ROOT

__all__ = ["load_agent"]


def load_agent(name: str) -> ModuleType:
    """Import ``agents/<name>.py`` as module ``<name>`` (cached after the first call).

    The module gets the name the scripts import each other by (``sac_era_batch`` imports ``sac_era``), so every
    importer shares one module object: one ``Args`` class, one ``Actor``, one ``main``.

    :raises ImportError: if a module of that name was already imported from another file.
    """
    path = REPO_ROOT / "agents" / f"{name}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    module = importlib.import_module(name)
    if Path(module.__file__).resolve() != path.resolve():
        raise ImportError(f"load_agent({name!r}): a module {name!r} from {module.__file__} was imported before {path}")
    return module
