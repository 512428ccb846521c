"""Optional dependencies of the agents' helpers: a clear error naming the install command, and MuJoCo's GL default.

Both :mod:`era_utils.envs` and :mod:`era_utils.humanoid_bench` import from here, so neither imports the other at
module level.
"""

from __future__ import annotations

import ctypes.util
import importlib
import os
import sys
from types import ModuleType

__all__ = ["AGENTS_INSTALL", "MissingDependencyError", "mujoco_gl_was_defaulted", "require", "set_default_mujoco_gl"]

AGENTS_INSTALL = 'pip install "era-policies[agents]"'
"""What the agents and their helpers (``era_utils``) need beyond the method: SB3, Gymnasium, tyro, TensorBoard, tqdm."""

# True once this module has set MUJOCO_GL=egl itself (rather than the user), so that only our own choice is undone.
_mujoco_gl_defaulted = False


class MissingDependencyError(ImportError):
    """An optional dependency needed for the requested feature is not installed; the message says how to fix it."""


def require(module: str, install: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the ``install`` command."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise MissingDependencyError(
            f"{purpose} needs {module!r}, which could not be imported ({err}). Install: {install}"
        ) from err


def set_default_mujoco_gl() -> None:
    """Default ``MUJOCO_GL`` to ``egl`` on Linux when an EGL library exists and the variable is unset.

    Must run before ``mujoco`` / ``dm_control`` are first imported: both read the variable once, at import. Not
    setting it where EGL is missing matters: dm_control raises at *import* time when the requested backend fails.
    """
    global _mujoco_gl_defaulted
    if "MUJOCO_GL" in os.environ or not sys.platform.startswith("linux"):
        return
    if ctypes.util.find_library("EGL") is not None:
        os.environ["MUJOCO_GL"] = "egl"
        _mujoco_gl_defaulted = True


def mujoco_gl_was_defaulted() -> bool:
    """Whether :func:`set_default_mujoco_gl` (not the user) chose ``MUJOCO_GL=egl``."""
    return _mujoco_gl_defaulted
