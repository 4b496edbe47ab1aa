"""Several live streams batched through one network: each batch holds the newest frame of every
stream that has one, so a stalled camera never holds the others back."""

from __future__ import annotations

import threading
import time
from typing import Iterator

from ..errors import ImageReadError, InferenceError
from .streams import STOP_JOIN_TIMEOUT, StreamFrame, StreamReader

__all__ = ["StreamSet"]

#: longest wait (s) for a frame when none is ready; readers wake it sooner (a safety net only)
IDLE_WAIT = 0.5


class StreamSet:
    """Several :class:`StreamReader`; :meth:`batches` yields the newest frame of every stream
    that has one. A stream that fails leaves the set: its index and error go to ``failures``
    (in the order they happened; nothing is logged)."""

    def __init__(self, readers: list[StreamReader], max_wait: float = 0.005) -> None:
        if not readers:
            raise InferenceError("a stream set needs at least one stream")
        if not (isinstance(max_wait, (int, float)) and 0 <= max_wait < float("inf")):
            raise InferenceError(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
        self.readers = list(readers)
        self.max_wait = float(max_wait)
        self.failures: list[tuple[int, ImageReadError]] = []
        self._retired: set[int] = set()
        self._wakeup = threading.Event()
        for reader in self.readers:
            reader.hooks.append(self._wakeup)

    def start(self) -> StreamSet:
        """Start every reader (each opens its stream here). If one cannot be opened, those
        already started are stopped and its :class:`ImageReadError` is raised."""
        started: list[StreamReader] = []
        try:
            for reader in self.readers:
                started.append(reader.start())
        except BaseException:
            for reader in started:
                reader.stop()
            raise
        return self

    def batches(self) -> Iterator[list[tuple[int, StreamFrame]]]:
        """``(reader index, frame)`` pairs in reader order, at most one per stream: waits until a
        stream has a frame, then takes what the others have ready, waiting at most ``max_wait``
        s more for them. Ends when every stream is done (stopped, failed or ended)."""
        while True:
            active = [index for index in range(len(self.readers)) if index not in self._retired]
            self._wakeup.clear()  # before looking, so a frame that comes after the look wakes the wait
            batch = self._take(active, {})
            self._retire(active)
            active = [index for index in active if index not in self._retired]
            if not batch:
                if len(self._retired) == len(self.readers):
                    return
                self._wakeup.wait(IDLE_WAIT)
                continue
            self._top_up(active, batch)
            yield sorted(batch.items())

    def stop(self) -> None:
        """Stop every reader: all are told at once, then each thread is joined (a few s at most)."""
        for reader in self.readers:
            reader.stop(timeout=0)
        deadline = time.monotonic() + STOP_JOIN_TIMEOUT
        for reader in self.readers:
            reader.stop(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> StreamSet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _take(self, active: list[int], batch: dict[int, StreamFrame]) -> dict[int, StreamFrame]:
        """``batch`` with the frame each stream of ``active`` not in it has ready now."""
        for index in active:
            if index not in batch:
                frame = self.readers[index].next(timeout=0)
                if frame is not None:
                    batch[index] = frame
        return batch

    def _top_up(self, active: list[int], batch: dict[int, StreamFrame]) -> None:
        """Add the frames the other streams of ``active`` bring within ``max_wait`` s."""
        deadline = time.monotonic() + self.max_wait
        while len(batch) < len(active):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            if len(self._take(active, batch)) < len(active):
                self._wakeup.wait(remaining)

    def _retire(self, active: list[int]) -> None:
        """Take the streams that are done out of the set; their failures, oldest first, to ``failures``."""
        finished = [index for index in active if self.readers[index].done]
        for index in sorted(finished, key=lambda i: self.readers[i].ended_at or 0.0):
            self._retired.add(index)
            failure = self.readers[index].failure
            if failure is not None:
                self.failures.append((index, failure))
