"""One process per directory: the lock helper (era_utils.locks) refuses a second holder, names the first, and takes
over the lock of a process that is gone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from era_utils.locks import LOCK_FILE, DirectoryLock, DirectoryLockedError

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="directory locks need fcntl")

# Takes the lock of sys.argv[1], says so, then waits to be killed.
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from era_utils.locks import DirectoryLock
    lock = DirectoryLock(sys.argv[1], purpose="holding it for a test").acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_the_lock_file_names_its_holder_and_is_removed_on_release(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path, purpose="--resume") as lock:
        assert lock.held
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert (holder["pid"], holder["host"], holder["purpose"]) == (os.getpid(), socket.gethostname(), "--resume")
        assert holder["command"] == sys.argv
    assert not lock.held and list(tmp_path.iterdir()) == []


def test_a_second_holder_is_refused_naming_the_directory_and_the_first(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path, purpose="training"):
        with pytest.raises(DirectoryLockedError) as excinfo:
            DirectoryLock(tmp_path).acquire()
        message = str(excinfo.value)
        assert str(tmp_path) in message and f"process {os.getpid()} on host {socket.gethostname()}" in message
        assert "(training)" in message and "nothing was changed" in message
    DirectoryLock(tmp_path).acquire().release()  # free again once released


def test_an_exception_releases_the_lock(tmp_path: Path) -> None:
    with pytest.raises(KeyError), DirectoryLock(tmp_path):
        raise KeyError("boom")
    DirectoryLock(tmp_path).acquire().release()


def test_a_lock_object_that_is_dropped_releases(tmp_path: Path) -> None:
    DirectoryLock(tmp_path).acquire()  # never released explicitly: garbage collection releases it
    DirectoryLock(tmp_path).acquire().release()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"cannot lock {tmp_path / 'nothing'}: no such directory"):
        DirectoryLock(tmp_path / "nothing").acquire()


def test_another_process_holds_it_until_killed_then_its_stale_lock_is_taken_over(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(DirectoryLockedError, match=f"process {holder.pid} .*holding it for a test"):
            DirectoryLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to clean up: the lock file stays behind
        holder.wait()
    assert (tmp_path / LOCK_FILE).exists()
    with pytest.warns(RuntimeWarning, match=f"taking over the stale lock of process {holder.pid} "):
        lock = DirectoryLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
