"""Micro-batching queue: requests that arrive together run in one forward pass.

A single worker thread takes the oldest waiting request, then gathers more until the
batch holds ``max_batch`` requests or the oldest one has waited ``max_wait_ms``, and hands
the batch to ``run_batch``. The queue of waiting requests is bounded: when ``max_queue``
requests are already waiting, or their summed ``cost`` (the server uses decoded image bytes)
would pass ``max_cost``, :meth:`MicroBatcher.submit` raises :class:`QueueFullError` (the
server answers 503 with Retry-After). :meth:`MicroBatcher.close` stops accepting new
requests and, by default, drains the ones already queued before returning.

One request never fails another: when ``run_batch`` raises on a batch of several requests, the
worker runs each of them again alone, so only a request that also fails on its own gets the
exception (its future's), and every other one gets its result. A failure costs at most one
extra pass per request of its batch; the worker survives any failure.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

__all__ = ["MicroBatcher", "BatchOutcome", "QueueFullError", "BatcherClosedError"]

P = TypeVar("P")  # request payload
R = TypeVar("R")  # per-request result


class QueueFullError(RuntimeError):
    """The waiting queue is at ``max_queue``; retry later."""


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and accepts no new requests."""


@dataclass(frozen=True)
class BatchOutcome(Generic[R]):
    """The result of one request and how it was served (times in milliseconds)."""

    result: R
    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass
class _Pending(Generic[P]):
    payload: P
    future: Future
    enqueued_at: float
    cost: float = 0.0


class MicroBatcher(Generic[P, R]):
    """Run ``run_batch(payloads) -> results`` (same length, same order) on batched requests."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[P]], Sequence[R]],
        max_batch: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        max_cost: float | None = None,
        name: str = "yoloxkit-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if max_cost is not None and max_cost <= 0:
            raise ValueError(f"max_cost must be > 0, got {max_cost}")
        self.run_batch = run_batch
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.max_queue = int(max_queue)
        self.max_cost = max_cost
        self._queued_cost = 0.0
        self._pending: deque[_Pending[P]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self.batches_run = 0
        self.requests_served = 0
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()

    # -- client side -------------------------------------------------------------------
    def submit(self, payload: P, cost: float = 0.0) -> "Future[BatchOutcome[R]]":
        """Queue one request; the future resolves to its :class:`BatchOutcome`.

        ``cost`` counts against ``max_cost`` while the request waits; a request alone in the
        queue is always accepted, whatever its cost.
        """
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise BatcherClosedError("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                raise QueueFullError(f"queue full ({self.max_queue} requests waiting)")
            if self.max_cost is not None and self._pending and self._queued_cost + cost > self.max_cost:
                raise QueueFullError(f"queue full ({len(self._pending)} requests waiting, over the size budget)")
            self._pending.append(_Pending(payload, future, time.perf_counter(), cost))
            self._queued_cost += cost
            self._cond.notify_all()
        return future

    @property
    def queued(self) -> int:
        """Requests waiting (not counting the batch being run)."""
        return len(self._pending)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def alive(self) -> bool:
        return self._worker.is_alive()

    def close(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop accepting requests; run the queued ones (``drain``) or cancel them; wait for the worker."""
        with self._cond:
            self._closed = True
            if not drain:
                while self._pending:
                    self._pending.popleft().future.cancel()
                self._queued_cost = 0.0
            self._cond.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    # -- worker side -------------------------------------------------------------------
    def _next_batch(self) -> list[_Pending[P]] | None:
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            # The oldest request bounds the wait: under load, requests that queued while
            # the previous batch ran are taken at once.
            deadline = self._pending[0].enqueued_at + self.max_wait
            while len(self._pending) < self.max_batch and not self._closed:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(self.max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            self._queued_cost = sum(item.cost for item in self._pending)
            self._busy = True
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._run(batch)
            finally:
                self._busy = False

    def _run(self, batch: list[_Pending[P]]) -> None:
        # Requests whose client went away (future cancelled) are dropped before running.
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        start = time.perf_counter()
        try:
            results = self._call(live)
        except Exception as exc:  # the worker must survive any failure of one batch
            if len(live) == 1:
                live[0].future.set_exception(exc)
                return
            for item in live:  # isolate the culprit: each request alone, its own outcome
                self._run_alone(item)
            return
        self._resolve(live, results, start)

    def _run_alone(self, item: _Pending[P]) -> None:
        start = time.perf_counter()
        try:
            results = self._call([item])
        except Exception as exc:
            item.future.set_exception(exc)
            return
        self._resolve([item], results, start)

    def _call(self, items: list[_Pending[P]]) -> list[R]:
        results = list(self.run_batch([item.payload for item in items]))
        if len(results) != len(items):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} requests")
        return results

    def _resolve(self, items: list[_Pending[P]], results: list[R], start: float) -> None:
        inference_ms = (time.perf_counter() - start) * 1000.0
        self.batches_run += 1
        self.requests_served += len(items)
        for item, result in zip(items, results):
            queue_ms = (start - item.enqueued_at) * 1000.0
            item.future.set_result(BatchOutcome(result, queue_ms, inference_ms, len(items)))
