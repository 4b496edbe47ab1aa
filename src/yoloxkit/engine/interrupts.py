"""Ctrl-C during training stops at the next iteration boundary, never in the middle of one.

A SIGINT that lands between ``optimizer.step()`` and the EMA update would leave weights that
no saved counter describes, so a resume could not be exact. :class:`DeferredInterrupt` turns
the first SIGINT into a request the loop checks after each iteration; a second one stops at
once (without saving). Data-loader workers ignore SIGINT (:func:`ignore_interrupts`), so that
a terminal's Ctrl-C, which reaches the whole process group, does not kill them under the loop.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["DeferredInterrupt", "ignore_interrupts"]


def ignore_interrupts(_worker_id: int = 0) -> None:
    """``worker_init_fn`` of the training loader: the worker ignores SIGINT (the main process
    stops it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DeferredInterrupt:
    """Context manager: while active, the first SIGINT sets :attr:`requested`; a second raises
    :class:`KeyboardInterrupt` at once. Outside the main thread it only offers :meth:`request`."""

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self._previous = None

    def request(self) -> None:
        """Ask the loop to stop at the next boundary (what the first Ctrl-C does)."""
        self.requested = True

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` if a stop was requested (call at a safe boundary)."""
        if self.requested:
            raise KeyboardInterrupt

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self.forced = True
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False
