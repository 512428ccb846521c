"""An exclusive lock on a directory, so that two processes never write the same run (or benchmark output) at once.

The lock is a file in the directory (:data:`LOCK_FILE`) that holds the owner's pid, host and command line, and that
the owner keeps ``flock``-ed while it runs. The operating system drops an ``flock`` when its process ends, however it
ends (an exception, a signal, ``SIGKILL``), so a lock file that nobody holds is stale: its process is gone, and the
next owner takes it over with a warning. On a clean release the file is removed.

Needs ``fcntl`` (Linux, macOS); where it is missing (Windows), :meth:`DirectoryLock.acquire` warns once that it cannot
lock and does nothing.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "DirectoryLock", "DirectoryLockedError"]

LOCK_FILE = ".lock"
"""The lock file's name inside the locked directory."""


class DirectoryLockedError(RuntimeError):
    """Another live process holds the directory's lock; the message names the directory and that process."""


class DirectoryLock:
    """An exclusive, non-blocking lock on ``directory`` (which must exist).

    Use as a context manager, or :meth:`acquire` and later :meth:`release` (also done when the object is garbage
    collected or the interpreter exits)::

        with DirectoryLock(run_dir, purpose="--resume"):
            ...  # nobody else writes run_dir meanwhile

    :param directory: the directory to lock.
    :param purpose: what the holder does, recorded in the lock file for the message another process gets.
    """

    def __init__(self, directory: str | Path, purpose: str = "") -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.purpose = purpose
        self._fd: int | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> DirectoryLock:
        """Take the lock, or refuse at once.

        :return: ``self``.
        :raises DirectoryLockedError: another live process holds it (the message names it: pid, host, command).
        :raises FileNotFoundError: ``directory`` does not exist.
        """
        if self._fd is not None:
            return self
        if fcntl is None:
            warnings.warn(f"{self.directory} is not locked: this platform has no fcntl", RuntimeWarning, stacklevel=2)
            return self
        if not self.directory.is_dir():
            raise FileNotFoundError(f"cannot lock {self.directory}: no such directory")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read_holder(fd))
                os.close(fd)
                raise DirectoryLockedError(
                    f"{self.directory} is in use by {holder}; nothing was changed. Wait for it to finish, or stop it "
                    f"(if that process is gone on another host, remove {self.path})"
                ) from None
            # The previous holder may have removed the file between our open and our flock: then we hold a lock on a
            # file that no longer is the lock file, and must start over.
            try:
                same_file = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)
        stale = _read_holder(fd)
        if stale:
            warnings.warn(
                f"{self.directory}: taking over the stale lock of {_describe(stale)}, which is no longer running",
                RuntimeWarning,
                stacklevel=2,
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": sys.argv, "purpose": self.purpose,
                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        self._finalizer = weakref.finalize(self, _release, fd, self.path)
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (nothing if not held)."""
        if self._finalizer is not None:
            self._finalizer()
        self._fd, self._finalizer = None, None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _release(fd: int, path: Path) -> None:
    # Removed while still locked, so that no other process takes over a file that is about to disappear.
    path.unlink(missing_ok=True)
    os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    data = os.pread(fd, 65536, 0)
    if not data:
        return {}
    try:
        holder = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"unreadable": data[:200].decode(errors="replace")}
    return holder if isinstance(holder, dict) else {"unreadable": str(holder)[:200]}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it has not written its details yet)"
    if "unreadable" in holder:
        return f"an unknown holder (lock file content {holder['unreadable']!r})"
    command = " ".join(map(str, holder.get("command") or [])) or "?"
    purpose = f" ({holder['purpose']})" if holder.get("purpose") else ""
    return (
        f"process {holder.get('pid')} on host {holder.get('host')}{purpose}, running `{command}` "
        f"since {holder.get('since')}"
    )
