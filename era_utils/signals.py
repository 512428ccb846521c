"""Signals during a run: SIGINT / SIGTERM as a request to stop after the current iteration, and no signal in the
middle of writing a file."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["StopOnSignal", "signals_deferred"]


class StopOnSignal:
    """Turn SIGINT / SIGTERM into a request to stop at the end of the current iteration.

    The loop checks :attr:`requested` once per iteration, saves a checkpoint and exits with
    ``raise SystemExit(stop.exit_code)`` (128 + the signal number, as a shell reports a killed process). A second
    signal stops at once with the previous handler (Ctrl-C twice: ``KeyboardInterrupt``), except while a file is being
    written (:func:`signals_deferred`): then it stops right after that write. Outside the main thread, where Python
    cannot install handlers, it does nothing.

    :param signals: the signals to catch.
    """

    def __init__(self, signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """``128 + signum`` once a signal arrived (130 for SIGINT, 143 for SIGTERM), else 0."""
        return 0 if self.signum is None else 128 + self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self._restore()
            signal.raise_signal(signum)
            return
        self.requested, self.signum = True, signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this iteration with a checkpoint "
            "(send it again to stop at once, without one)",
            file=sys.stderr,
        )

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.signals}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()


@contextmanager
def signals_deferred(signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold ``signals`` back while the block runs, then deliver each that arrived, in order, to the handler before.

    Wraps a file write so that it completes: a second SIGTERM during a large checkpoint stops the process right after
    the checkpoint instead of in its middle. Also ignores ``SIGXFSZ`` meanwhile, so that a file-size limit
    (``ulimit -f``) is an ``OSError`` (EFBIG) that names the file rather than a killed process. Outside the main
    thread, where Python cannot install handlers, it holds nothing back.

    :param signals: the signals to hold back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    handlers: dict[int, Any] = {signum: lambda signum, frame: received.append(signum) for signum in signals}
    if hasattr(signal, "SIGXFSZ"):
        handlers[signal.SIGXFSZ] = signal.SIG_IGN
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler installed outside Python, which cannot be reinstalled from here; the default is closest.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for signum in received:
            signal.raise_signal(signum)
