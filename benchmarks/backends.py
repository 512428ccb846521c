"""Where the runner's jobs execute: a local process pool (the default) or a Ray cluster (``--backend ray``).

A backend only executes :class:`Launch` es (an agent command, its job directory and its log file) and reports how each
ended. Deciding what to run, setting runs aside and judging the outcome (``DONE``) stay in :mod:`benchmarks.learning`
on the machine that started the suite, so both backends leave identical run directories.

Ray runs each launch as a task with ``num_cpus = threads per job``; at most ``--jobs`` tasks are in flight. The nodes
must see the repository, the interpreter and the output directory at the same paths as the driver (a shared file
system), exactly as for the local pool.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from era_utils.dependencies import MissingDependencyError, require

__all__ = [
    "JOB_FILE",
    "LOG_FILE",
    "RAY_INSTALL",
    "Backend",
    "BackendError",
    "Launch",
    "LocalBackend",
    "Outcome",
    "RayBackend",
    "check_reachable",
    "execute",
    "import_ray",
]

JOB_FILE = "job.json"
LOG_FILE = "stdout.log"
STOP_GRACE_S = 30.0
"""Seconds between SIGTERM (the agents save a checkpoint and exit) and SIGKILL."""
RAY_INSTALL = 'pip install "era-policies[distributed]"'
CONNECT_TIMEOUT_S = 10.0
"""How long ``--address`` may take to accept a TCP connection before the runner gives up (Ray itself retries for
minutes, printing connection warnings)."""


class BackendError(RuntimeError):
    """The backend cannot start; the message names the flag and what to do."""


@dataclass(frozen=True)
class Launch:
    """One agent process to start.

    :param command: the full command line.
    :param job_dir: the job directory (created if missing); ``job.json`` and ``stdout.log`` go there.
    :param metadata: written to ``job.json`` just before the process starts.
    :param append_log: append to ``stdout.log`` (a resumed run) instead of starting it afresh.
    :param cwd: working directory of the process (the repository root).
    :param env: variables set on top of the executing machine's environment (thread caps).
    :param timeout_s: stop the process after this many seconds (None: never).
    :param threads: CPU threads the process uses (Ray reserves this many CPUs).
    :param companions: the other jobs that share this process (several seeds in one): their job directories and the
        ``job.json`` each gets when the process starts (none is written for a launch that never starts).
    """

    command: tuple[str, ...]
    job_dir: Path
    metadata: dict[str, object]
    append_log: bool
    cwd: Path
    env: dict[str, str]
    timeout_s: float | None
    threads: int
    companions: tuple[tuple[Path, dict[str, object]], ...] = ()


@dataclass(frozen=True)
class Outcome:
    """How a launch ended: ``returncode`` None means it ran past its timeout; ``started`` False, that it never ran."""

    returncode: int | None
    wall_time_s: float
    started: bool = True


def execute(launch: Launch, on_start: Callable[[subprocess.Popen], bool] | None = None) -> Outcome:
    """Write ``job.json``, run the command with its output in ``stdout.log`` and wait for it.

    On timeout or when interrupted (KeyboardInterrupt, a cancelled Ray task) the process gets SIGTERM first, so that an
    agent can save a checkpoint, then SIGKILL after :data:`STOP_GRACE_S`.

    :param on_start: called with the new process; returning False stops it at once (the suite is being stopped).
    """
    for job_dir, metadata in ((launch.job_dir, launch.metadata), *launch.companions):
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / JOB_FILE).write_text(json.dumps(metadata, indent=2))
    start = time.monotonic()
    with open(launch.job_dir / LOG_FILE, "a" if launch.append_log else "w") as log:
        process = subprocess.Popen(
            launch.command, cwd=launch.cwd, env={**os.environ, **launch.env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            if on_start is not None and not on_start(process):
                _stop(process)
                return Outcome(None, time.monotonic() - start, started=False)
            try:
                returncode: int | None = process.wait(timeout=launch.timeout_s)
            except subprocess.TimeoutExpired:
                _stop(process)
                returncode = None
        except BaseException:
            _stop(process)
            raise
    return Outcome(returncode, time.monotonic() - start)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Backend(Protocol):
    """Runs launches, at most ``parallel`` at a time, yielding ``(index into launches, outcome)`` as each ends."""

    def run(self, launches: Sequence[Launch]) -> Iterator[tuple[int, Outcome]]: ...

    def stop(self) -> None:
        """Start nothing more and stop the running processes (they stay partial and resume next time)."""

    def drain(self) -> None:
        """Start nothing more and let the running processes finish; ``run`` reports the rest as not started."""


class LocalBackend:
    """Subprocesses on this machine, one waiting thread each."""

    def __init__(self, parallel: int) -> None:
        self.parallel = parallel
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self._stopping = False
        self._draining = False
        self._executor: ThreadPoolExecutor | None = None

    def run(self, launches: Sequence[Launch]) -> Iterator[tuple[int, Outcome]]:
        self._executor = ThreadPoolExecutor(max_workers=self.parallel)
        try:
            futures: dict[Future, int] = {
                self._executor.submit(self._execute, launch): index for index, launch in enumerate(launches)
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield futures[future], future.result()
        except BaseException:
            # Ctrl-C / SIGTERM arrive here, in the caller's thread: stop the agents before waiting for their threads,
            # or the shutdown below would wait for every running job to finish on its own.
            self.stop()
            raise
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for process in live:
            process.terminate()
        # An agent that ignores SIGTERM (hung, or stopped with SIGSTOP) would keep the runner waiting for ever.
        killer = threading.Timer(STOP_GRACE_S, _kill_survivors, (live,))
        killer.daemon = True
        killer.start()

    def drain(self) -> None:
        with self._lock:
            self._draining = True

    def _execute(self, launch: Launch) -> Outcome:
        with self._lock:
            if self._stopping or self._draining:
                return Outcome(None, 0.0, started=False)
        try:
            return execute(launch, on_start=self._register)
        finally:
            with self._lock:
                self._live = {process for process in self._live if process.poll() is None}

    def _register(self, process: subprocess.Popen) -> bool:
        with self._lock:
            self._live.add(process)
            return not self._stopping


def _kill_survivors(processes: Sequence[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()


def import_ray() -> ModuleType:
    """Import Ray for ``--backend ray``; a missing or broken install is a :class:`MissingDependencyError` that says
    how to (re)install it."""
    try:
        return require("ray", install=RAY_INSTALL, purpose="--backend ray")
    except MissingDependencyError:
        raise
    except Exception as error:  # installed but broken: a half-finished upgrade, a binary built for another Python
        raise MissingDependencyError(
            f"--backend ray: 'ray' is installed but fails to import ({type(error).__name__}: {error}). "
            f"Reinstall it: pip uninstall -y ray && {RAY_INSTALL}"
        ) from error


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`BackendError` unless something accepts TCP connections at ``--address`` within ``timeout_s``.

    ``auto`` (a cluster started on this machine) is left to Ray, which fails at once when there is none; so are
    addresses with a scheme other than ``ray://``.
    """
    if address == "auto" or ("://" in address and not address.startswith("ray://")):
        return
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit():
        raise BackendError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise BackendError(
            f"--address {address}: nothing accepted a connection at {host}:{port} within {timeout_s:g} s ({error}). "
            "Start the cluster first (`ray start --head` prints its address), or leave --address out to start a "
            "local Ray instance."
        ) from error


class RayBackend:
    """Ray tasks on an existing cluster (``address``) or on a local Ray instance (``address=None``).

    :param parallel: launches in flight at once.
    :param address: the cluster's address, e.g. ``ray://head:10001`` or ``auto``; None starts (or reuses) a local
        instance.
    :param repo_root: put on the workers' ``PYTHONPATH`` so that they import this module.
    """

    def __init__(self, parallel: int, address: str | None, repo_root: Path) -> None:
        if address is not None:
            check_reachable(address)
        self.ray = import_ray()
        self.parallel = parallel
        if not self.ray.is_initialized():
            runtime_env = {"env_vars": {"PYTHONPATH": str(repo_root)}}
            try:
                if address is None:
                    self.ray.init(include_dashboard=False, runtime_env=runtime_env)
                else:
                    self.ray.init(address=address, runtime_env=runtime_env)
            except ConnectionError as error:
                raise BackendError(f"--backend ray: cannot connect to a Ray cluster ({error})") from error
        self._remote = self.ray.remote(execute)
        self._in_flight: list = []
        self._draining = False

    def run(self, launches: Sequence[Launch]) -> Iterator[tuple[int, Outcome]]:
        queue = list(enumerate(launches))
        index_of = {}
        while (queue and not self._draining) or self._in_flight:
            while queue and not self._draining and len(self._in_flight) < self.parallel:
                index, launch = queue.pop(0)
                reference = self._remote.options(num_cpus=launch.threads).remote(launch)
                index_of[reference] = index
                self._in_flight.append(reference)
            done, self._in_flight = self.ray.wait(self._in_flight, num_returns=1)
            for reference in done:
                yield index_of[reference], self.ray.get(reference)
        for index, _ in queue:  # drained: never submitted
            yield index, Outcome(None, 0.0, started=False)

    def drain(self) -> None:
        self._draining = True

    def stop(self) -> None:
        # A cancelled task gets KeyboardInterrupt, on which execute() stops its agent with SIGTERM.
        for reference in self._in_flight:
            self.ray.cancel(reference)
        self._in_flight = []
