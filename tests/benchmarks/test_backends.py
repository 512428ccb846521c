"""The local backend stops its agents at once when the runner is interrupted (Ctrl-C, or SIGTERM turned into one)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.backends import Launch, LocalBackend

# An agent stand-in: writes a marker when it receives SIGTERM (as the agents checkpoint then), else sleeps a minute.
AGENT = """
import signal, sys, time
def on_term(signum, frame):
    open(sys.argv[1], "w").write("terminated")
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[2], "w").write("started")
time.sleep(60)
"""


def _launch(tmp_path: Path, name: str) -> Launch:
    job_dir = tmp_path / name
    command = (sys.executable, "-c", AGENT, str(tmp_path / f"{name}.terminated"), str(tmp_path / f"{name}.started"))
    return Launch(command, job_dir, {}, append_log=False, cwd=tmp_path, env={}, timeout_s=None, threads=1)


def test_an_interrupt_while_waiting_stops_the_running_agents_instead_of_waiting_for_them(tmp_path):
    backend = LocalBackend(parallel=2)
    launches = [_launch(tmp_path, "a"), _launch(tmp_path, "b")]

    def interrupt_once_both_started() -> None:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"{n}.started").exists() for n in "ab") and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: KeyboardInterrupt in the main thread, blocked in wait()

    # Python's Ctrl-C handler, also where the test runs in a background job (which starts with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt_once_both_started, daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            list(backend.run(launches))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 30, "the backend waited for the agents to finish on their own"
    for name in "ab":  # each agent got SIGTERM, the signal on which the real agents save a checkpoint
        assert (tmp_path / f"{name}.terminated").read_text() == "terminated"
