"""An agent's command line: parsed with tyro and checked in full before anything is created."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from era_utils.dependencies import AGENTS_INSTALL, MissingDependencyError, require
from era_utils.locks import DirectoryLockedError
from era_utils.resume import RESUME_SETS, check_config_fits, read_config, resumed_settings
from era_utils.runs import prepare_run
from era_utils.settings import ExperimentArgs

tyro = require("tyro", AGENTS_INSTALL, "era_utils.command_line (the agents' command lines)")

__all__ = ["parse_args"]

ArgsT = TypeVar("ArgsT")

# What a command line can get wrong; each message names the flag or the file.
_USAGE_ERRORS = (ValueError, FileExistsError, FileNotFoundError, DirectoryLockedError, MissingDependencyError)


def parse_args(cls: type[ArgsT], args: Sequence[str] | None = None) -> ArgsT:
    """Parse the command line into ``cls`` with tyro and check it before anything is created.

    Bad settings (``cls.check``, once), an environment that cannot be made here, an existing run directory for a new
    run, and a ``--resume`` directory that is missing, in use, holds no complete checkpoint of its own, or was run
    with other settings, print ``error: <message>`` to stderr and exit with status 2. For an
    :class:`~era_utils.settings.ExperimentArgs`, the checked run is kept on the returned object for the agent's
    ``prepare_run(args)`` / ``start_run(args)`` (a resume holds the run's lock from here on).

    :param cls: the script's ``Args`` dataclass (with a ``check()`` method).
    :param args: the arguments; default ``sys.argv[1:]``.
    """
    parsed = tyro.cli(cls, args=args)
    try:
        if isinstance(parsed, ExperimentArgs):
            resuming = parsed.resume is not None
            if resuming:
                parsed = _parse_resumed(cls, args, parsed)
            prepare_run(parsed, settings_resolved=resuming, remember=True)
        else:
            parsed.check()
    except _USAGE_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    return parsed


def _parse_resumed(cls: type[ArgsT], args: Sequence[str] | None, parsed: Any) -> ArgsT:
    """The command line parsed again with the resumed run's settings as defaults, so that every flag left out holds
    the run's value and a flag typed at its class default (``--seed 1`` for a run with seed 5) is caught too."""
    saved = read_config(Path(parsed.resume))
    check_config_fits(parsed, saved)  # the run's settings are this class's
    run_defaults = cls(**{name: value for name, value in saved.items() if name not in RESUME_SETS},
                       **{name: getattr(parsed, name) for name in RESUME_SETS})  # fmt: skip
    return resumed_settings(tyro.cli(cls, args=args, default=run_defaults), saved, typed=True)
