"""Backends: the local one stops its agents at once when the runner is interrupted (Ctrl-C, or SIGTERM turned into
one); Ray's errors (a broken install, an address where nothing listens) say what to do, within a bounded time."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import backends, learning
from benchmarks.backends import RAY_INSTALL, BackendError, Launch, LocalBackend, check_reachable, import_ray
from era_utils.dependencies import MissingDependencyError

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


# --- --backend ray: errors that say what to do -----------------------------------------------------------------------


def _closed_port() -> int:
    """A local TCP port on which nothing listens (bound once to pick it, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_agent_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "STOP_GRACE_S", 1.0)
    started = tmp_path / "started"
    agent = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    agent += f"open({str(started)!r}, 'w').write('started'); time.sleep(60)"
    launch = Launch((sys.executable, "-c", agent), tmp_path / "job", {}, append_log=False, cwd=tmp_path, env={},
                    timeout_s=None, threads=1)  # fmt: skip
    backend = LocalBackend(parallel=1)

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt_once_started, daemon=True).start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            list(backend.run([launch]))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 20, "the runner waited for an agent that ignores SIGTERM"


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_where_nothing_listens_fails_at_once_naming_the_flag(tmp_path, capsys, scheme):
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    code = learning.main(["--out-dir", str(tmp_path / "runs"), "--backend", "ray", "--address", address])
    assert time.monotonic() - start < 60
    assert code == 2
    error = capsys.readouterr().err
    assert f"--address {address}: nothing accepted a connection" in error and "ray start --head" in error
    assert list((tmp_path / "runs").rglob("job.json")) == []  # no job was started


def test_an_unreachable_host_gives_up_after_the_timeout():
    # 192.0.2.0/24 is reserved for documentation (RFC 5737): nothing answers there, so the connect can only time out
    # (or fail at once where the network is unreachable); either way within the bound.
    start = time.monotonic()
    with pytest.raises(BackendError, match="nothing accepted a connection"):
        check_reachable("192.0.2.1:6379", timeout_s=0.5)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("address", ["head", "head:port", ":6379", "ray://head"])
def test_a_malformed_address_is_refused(address):
    with pytest.raises(BackendError, match="expected auto, HOST:PORT or ray://HOST:PORT"):
        check_reachable(address)


def test_a_broken_ray_install_names_the_reinstall_command(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "site" / "ray"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError(\"cannot import name '_raylet' from 'ray'\")\n")
    monkeypatch.syspath_prepend(str(broken.parent))
    for name in [name for name in sys.modules if name == "ray" or name.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingDependencyError, match="'ray' is installed but fails to import") as error:
        import_ray()
    assert "_raylet" in str(error.value) and f"pip uninstall -y ray && {RAY_INSTALL}" in str(error.value)
    assert learning.main(["--out-dir", str(tmp_path / "runs"), "--backend", "ray"]) == 2
    assert "fails to import" in capsys.readouterr().err
