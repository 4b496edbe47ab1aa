"""The micro-batching queue on its own: batching bounds, order, errors, back-pressure, drain."""

from __future__ import annotations

import threading
import time

import pytest

from yoloxkit.serve.batcher import BatcherClosedError, MicroBatcher, QueueFullError


class Recorder:
    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.gate = gate

    def __call__(self, payloads):
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(list(payloads))
        if self.delay_s:
            time.sleep(self.delay_s)
        return [p * 10 for p in payloads]


def test_requests_waiting_together_form_one_batch_in_order():
    gate = threading.Event()
    run = Recorder(gate=gate)
    batcher = MicroBatcher(run, max_batch=4, max_wait_ms=300, max_queue=64)
    futures = [batcher.submit(i) for i in range(10)]
    gate.set()
    outcomes = [f.result(5) for f in futures]
    assert [o.result for o in outcomes] == [i * 10 for i in range(10)]
    assert all(len(b) <= 4 for b in run.batches)
    assert [p for b in run.batches for p in b] == list(range(10))
    # all ten were queued within the first request's wait: full batches, then the rest
    assert [len(b) for b in run.batches] == [4, 4, 2]
    assert outcomes[-1].batch_size == len(run.batches[-1])
    assert all(o.queue_ms >= 0 and o.inference_ms >= 0 for o in outcomes)
    batcher.close()


def test_lone_request_waits_at_most_max_wait():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=8, max_wait_ms=30, max_queue=8)
    start = time.perf_counter()
    outcome = batcher.submit(1).result(5)
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert outcome.result == 10 and outcome.batch_size == 1
    assert 25 <= elapsed_ms < 1000
    batcher.close()


def test_max_batch_one_never_batches():
    gate = threading.Event()
    run = Recorder(gate=gate)
    batcher = MicroBatcher(run, max_batch=1, max_wait_ms=20, max_queue=64)
    futures = [batcher.submit(i) for i in range(5)]
    gate.set()
    assert [f.result(5).result for f in futures] == [0, 10, 20, 30, 40]
    assert run.batches == [[0], [1], [2], [3], [4]]
    batcher.close()


def test_failure_of_a_lone_request_reaches_it_and_worker_survives():
    calls = []

    def flaky(payloads):
        calls.append(list(payloads))
        if len(calls) == 1:
            raise ValueError("boom")
        return payloads

    batcher = MicroBatcher(flaky, max_batch=4, max_wait_ms=0, max_queue=8)
    with pytest.raises(ValueError, match="boom"):
        batcher.submit(1).result(5)
    assert batcher.submit(2).result(5).result == 2 and batcher.alive
    batcher.close()


def test_wrong_result_count_is_an_error():
    batcher = MicroBatcher(lambda p: [], max_batch=2, max_wait_ms=0, max_queue=4)
    with pytest.raises(RuntimeError, match="0 results for 1"):
        batcher.submit(1).result(5)
    batcher.close()


def test_full_queue_raises_and_recovers():
    gate = threading.Event()
    run = Recorder(gate=gate)
    batcher = MicroBatcher(run, max_batch=1, max_wait_ms=0, max_queue=3)
    running = batcher.submit(0)
    deadline = time.time() + 5
    while batcher.queued and time.time() < deadline:  # the worker holds request 0 at the gate
        time.sleep(0.005)
    waiting = [batcher.submit(i) for i in (1, 2, 3)]
    with pytest.raises(QueueFullError, match="3 requests waiting"):
        batcher.submit(4)
    gate.set()
    assert [f.result(5).result for f in [running, *waiting]] == [0, 10, 20, 30]
    assert batcher.submit(5).result(5).result == 50
    batcher.close()


def test_close_drains_queued_requests_then_refuses():
    run = Recorder(delay_s=0.02)
    batcher = MicroBatcher(run, max_batch=2, max_wait_ms=0, max_queue=64)
    futures = [batcher.submit(i) for i in range(7)]
    batcher.close(drain=True, timeout=10)
    assert [f.result(0).result for f in futures] == [i * 10 for i in range(7)]
    assert not batcher.alive
    with pytest.raises(BatcherClosedError):
        batcher.submit(9)


def test_close_without_drain_cancels_waiting_and_cancelled_requests_are_skipped():
    gate = threading.Event()
    run = Recorder(gate=gate)
    batcher = MicroBatcher(run, max_batch=1, max_wait_ms=0, max_queue=64)
    first = batcher.submit(0)
    deadline = time.time() + 5
    while batcher.queued and time.time() < deadline:
        time.sleep(0.005)
    second = batcher.submit(1)
    third = batcher.submit(2)
    assert third.cancel()  # a client that went away
    batcher.close(drain=False, timeout=0)
    gate.set()
    assert first.result(5).result == 0
    assert second.cancelled() and third.cancelled()
    batcher.close(timeout=5)
    assert run.batches == [[0]]


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"max_wait_ms": -1}, {"max_queue": 0}])
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        MicroBatcher(lambda p: p, **kwargs)


def test_cost_budget_bounds_the_queue_but_admits_a_lone_request():
    gate = threading.Event()
    run = Recorder(gate=gate)
    batcher = MicroBatcher(run, max_batch=1, max_wait_ms=0, max_queue=64, max_cost=100)
    running = batcher.submit(0, cost=1000)  # alone: accepted although over the budget
    deadline = time.time() + 5
    while batcher.queued and time.time() < deadline:
        time.sleep(0.005)
    big = batcher.submit(1, cost=500)  # alone in the queue again: accepted
    with pytest.raises(QueueFullError, match="size budget"):
        batcher.submit(2, cost=1)
    gate.set()
    assert [f.result(5).result for f in (running, big)] == [0, 10]
    small = [batcher.submit(i, cost=40) for i in (3, 4)]
    assert [f.result(5).result for f in small] == [30, 40]
    batcher.close()
