"""Import HumanoidBench on current Gymnasium / MuJoCo versions (its training protocol: ``docs/era-method.md`` §5).

HumanoidBench (``humanoid_bench``, github.com/carlosferrazza/humanoid-bench) is not on PyPI and pins old versions
(gymnasium 0.29, mujoco 3.1.6, torch 2.3.1, jax/brax for its hierarchical tasks). Installed with ``--no-deps`` next to
current versions, ``gym.make("h1hand-walk-v0")`` fails three times in a row; :func:`import_humanoid_bench` works around
each failure without modifying the installed package on disk:

1. ``import humanoid_bench`` imports ``jax.numpy`` (its flax-to-torch converter, used only by the hierarchical "reach"
   policies). Without jax, a stub ``jax`` / ``jax.numpy`` module is registered for the duration of that import only and
   removed afterwards, so no other library mistakes it for a real jax.
2. Its env defaults to ``render_mode="rgb_array"``, which opens an OpenGL context (fatal on a headless machine). This
   is handled by :func:`era_utils.envs.make_env`, which passes ``render_mode=None`` unless a video is requested.
3. It vendors dm_control's named-index size table from the MuJoCo 3.1.6 era and ``getattr``s every field in it. Fields
   the installed MuJoCo no longer has (computed at runtime with ``hasattr``) are dropped from that table.

Rendering (videos) needs one more fix: its ``Task.render`` calls ``mujoco_renderer.render(render_mode, camera_id,
camera_name)``, the Gymnasium 0.29 signature. Gymnasium >= 1.0 takes only ``render_mode`` (the camera is fixed when
the renderer is built, from the same ``camera_name``), so ``Task.render`` is replaced by a call with that signature.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import types
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from era_utils.dependencies import MissingDependencyError, set_default_mujoco_gl

__all__ = ["HUMANOID_BENCH_INSTALL", "import_humanoid_bench"]

HUMANOID_BENCH_INSTALL = (
    "git clone https://github.com/carlosferrazza/humanoid-bench\n"
    "    pip install --no-deps -e humanoid-bench\n"
    '    pip install "era-policies[mujoco,dmc]"\n'
    "HumanoidBench is not on PyPI. Install it editable (-e: its XML assets are not packaged) and with --no-deps: its "
    "setup.py pins torch==2.3.1, gymnasium==0.29.1 and mujoco==3.1.6, which would replace the versions this package "
    "needs. Its flat locomotion tasks only need mujoco, gymnasium[mujoco], dm_control and torch; jax, brax, gymnax "
    "and opencv are not needed (era_utils patches HumanoidBench for current MuJoCo and Gymnasium when it imports "
    "it)."
)

# Set on the imported module once the size table is patched, so repeated calls are cheap and idempotent.
_PATCHED_FLAG = "_era_utils_patched"


def import_humanoid_bench() -> types.ModuleType:
    """Import ``humanoid_bench`` (registering its Gymnasium ids) and patch it for the installed MuJoCo.

    Safe to call repeatedly; call it before the first ``gym.make`` of a HumanoidBench id.

    :return: the ``humanoid_bench`` module.
    :raises MissingDependencyError: if HumanoidBench or one of the packages it needs is not installed; the message
        gives the install commands.
    """
    # The mujoco import inside humanoid_bench reads MUJOCO_GL once, so pick the headless-friendly default first.
    set_default_mujoco_gl()
    module = _import_module()
    if not getattr(module, _PATCHED_FLAG, False):
        import mujoco
        from humanoid_bench.dmc_deps import dmc_sizes

        model = mujoco.MjModel.from_xml_string("<mujoco/>")
        drop_missing_fields(dmc_sizes.array_sizes, {"mjmodel": model, "mjdata": mujoco.MjData(model)})
        _patch_task_render()
        setattr(module, _PATCHED_FLAG, True)
    return module


def _patch_task_render() -> None:
    """Make ``humanoid_bench.tasks.Task.render`` use the installed Gymnasium's ``MujocoRenderer.render`` signature."""
    from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer
    from humanoid_bench.tasks import Task

    if list(inspect.signature(MujocoRenderer.render).parameters) != ["self", "render_mode"]:
        return  # an older Gymnasium that still takes the camera per call: the original works

    def render(self: Any) -> Any:
        return self._env.mujoco_renderer.render(self._env.render_mode)

    render.__doc__ = "Render with the renderer's camera (patched by era_utils for Gymnasium >= 1.0)."
    Task.render = render


def _import_module() -> types.ModuleType:
    """``import humanoid_bench``, with a jax stub when jax is absent; missing packages become a clear error."""
    needs_stub = "humanoid_bench" not in sys.modules and importlib.util.find_spec("jax") is None
    try:
        with jax_stub() if needs_stub else contextlib.nullcontext():
            return importlib.import_module("humanoid_bench")
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.split(".")[0] == "humanoid_bench":
            raise MissingDependencyError(
                f"HumanoidBench (module 'humanoid_bench') is not installed. Install it with:\n    "
                f"{HUMANOID_BENCH_INSTALL}"
            ) from err
        raise MissingDependencyError(
            f"HumanoidBench is installed but could not be imported: {err}. Its flat locomotion tasks need "
            f'mujoco, gymnasium[mujoco] and dm_control: pip install "era-policies[mujoco,dmc]".'
        ) from err


class _JaxStub(types.ModuleType):
    """Module whose every public attribute access explains that real jax is required."""

    def __getattr__(self, name: str) -> Any:
        # Dunder lookups (``__path__``, ``__file__``, ...) must stay ordinary AttributeErrors for the import system.
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.__name__}.{name} is unavailable: era_utils imported HumanoidBench with a stub jax module "
            "because jax is not installed. Only HumanoidBench's hierarchical 'reach' policies need jax "
            "(pip install jax)."
        )


@contextlib.contextmanager
def jax_stub() -> Iterator[None]:
    """Temporarily register stub ``jax`` and ``jax.numpy`` modules in ``sys.modules``.

    ``humanoid_bench.wrappers`` imports ``humanoid_bench.mjx.flax_to_torch``, whose module body runs
    ``import jax.numpy as jnp``; ``jnp`` is used only inside functions that convert flax weights for the hierarchical
    reach policies. Those two modules are exactly what the import needs. The previous ``sys.modules`` entries are
    restored on exit: a lingering fake jax would fool libraries that detect jax through ``sys.modules`` (e.g. array-API
    dispatch in SciPy).
    """
    jax = _JaxStub("jax", "stub registered by era_utils.humanoid_bench: jax is not installed")
    jax_numpy = _JaxStub("jax.numpy")
    jax.numpy = jax_numpy
    names = ("jax", "jax.numpy")
    saved = {name: sys.modules[name] for name in names if name in sys.modules}
    sys.modules.update({"jax": jax, "jax.numpy": jax_numpy})
    try:
        yield
    finally:
        for name in names:
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                sys.modules.pop(name, None)


def drop_missing_fields(
    array_sizes: MutableMapping[str, MutableMapping[str, Any]], structs: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Delete, in place, the size-table entries whose field the given MuJoCo struct does not have.

    HumanoidBench's vendored ``dmc_index.struct_indexer`` calls ``getattr(struct, field)`` for every field of the table
    (generated for MuJoCo 3.1.6); fields removed since (``flex_evpair``, ``qM``, ``B_rownnz``, ... on 3.17) raise
    ``AttributeError``. The fields are never read by the locomotion tasks, so dropping them is safe.

    :param array_sizes: ``{"mjmodel": {field: sizes}, "mjdata": {field: sizes}, ...}``.
    :param structs: an instance per table to check against, e.g. ``{"mjmodel": MjModel, "mjdata": MjData}``; tables
        without an instance are left alone.
    :return: the dropped field names per table.
    """
    dropped: dict[str, list[str]] = {}
    for struct_name, struct in structs.items():
        table = array_sizes.get(struct_name)
        if table is None:
            continue
        missing = [field for field in table if not hasattr(struct, field)]
        for field in missing:
            del table[field]
        dropped[struct_name] = missing
    return dropped
