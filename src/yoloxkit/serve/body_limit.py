"""ASGI middleware that bounds request bodies: their size (JSON 413) and the time to receive them (JSON 408)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, MutableMapping

__all__ = ["BodySizeLimit"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class _BodyRefused(Exception):
    pass


class _BodyGuard:
    """The request's ``receive``, counting the body against ``max_bytes`` and, while the body is
    incomplete, against the deadline ``read_timeout_s`` after the headers arrived. Past either
    it records ``refusal`` (status, detail) and raises into the app."""

    def __init__(self, receive, max_bytes: int, read_timeout_s: float | None) -> None:
        self._receive = receive
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self._deadline = None if read_timeout_s is None else asyncio.get_running_loop().time() + read_timeout_s
        self.received = 0
        self.complete = False
        self.refusal: tuple[int, str] | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise _BodyRefused
        if self.complete or self._deadline is None:
            message = await self._receive()  # after the body: only the disconnect, never timed
        else:
            remaining = max(0.0, self._deadline - asyncio.get_running_loop().time())
            try:
                message = await asyncio.wait_for(self._receive(), remaining)
            except asyncio.TimeoutError:
                self.refusal = (408, f"request body not received within the read timeout of "
                                     f"{self.read_timeout_s:g} s ({self.received} bytes arrived)")
                raise _BodyRefused from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.max_bytes:
                self.refusal = (413, f"request body of {self.received}+ bytes exceeds the upload limit of "
                                     f"{self.max_bytes} bytes")
                raise _BodyRefused
        return message


class BodySizeLimit:
    """ASGI middleware answering JSON 413 for request bodies over ``max_bytes`` on ``paths``, and
    JSON 408 (connection closed) when the body has not fully arrived ``read_timeout_s`` seconds
    after the headers (None: no limit), a slow or stalled upload, logged as one line.

    A declared ``Content-Length`` over the limit is refused before the body is read; a body
    without one (chunked) is counted as it streams and cut off at the limit, whatever the
    inner layers make of the interrupted read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, paths: tuple[str, ...] = ("/v1/detect",),
                 read_timeout_s: float | None = None) -> None:
        if read_timeout_s is not None and read_timeout_s <= 0:
            raise ValueError(f"read_timeout_s must be > 0, got {read_timeout_s}")
        self.app = app
        self.max_bytes = int(max_bytes)
        self.paths = paths
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _answer(send, 413, f"request body of {declared}+ bytes exceeds the upload limit of "
                                     f"{self.max_bytes} bytes")
            return
        guard = _BodyGuard(receive, self.max_bytes, self.read_timeout_s)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if guard.refusal is not None:
                return  # whatever the app answers to the cut-off body is replaced by the refusal
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guard.receive, guarded_send)
        except Exception:
            if guard.refusal is None or started:
                raise
        if guard.refusal is not None and not started:
            status, detail = guard.refusal
            if status == 408:
                logger.warning("%s %s %d: %s", scope.get("method", "POST"), scope["path"], status, detail)
            await _answer(send, status, detail)


async def _answer(send, status: int, detail: str) -> None:
    """A JSON ``{"detail": ...}`` response that closes the connection (the rest of the body is not read)."""
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
