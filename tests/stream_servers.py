"""Live video servers that tests own on 127.0.0.1 (MJPEG over HTTP; RTSP with RTP/JPEG over TCP).

Both servers send the exact JPEG bytes that ``write_mjpeg_clip`` puts in an AVI file, so FFmpeg decodes
the file and either stream to the same pixels."""

from __future__ import annotations

import contextlib
import random
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

import numpy as np

from tests.stream_clips import (  # the clip helpers, re-exported for the tests
    encode_jpeg,
    make_clip,
    read_stamp,
    rtp_jpeg_payloads,
    stamp_index,
    write_mjpeg_clip,
)

__all__ = ["MjpegServer", "RtspServer", "encode_jpeg", "make_clip", "read_stamp", "rtp_jpeg_payloads", "stamp_index",
           "write_mjpeg_clip"]

BOUNDARY = "yoloxkitframe"
RTSP_PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER"


def _garbage(seed: int, size: int) -> bytes:
    """size reproducible random bytes without 0xFF (so no JPEG marker can appear in them)."""
    return np.random.default_rng(seed).integers(0, 255, size, dtype=np.uint8).tobytes()


class _ClipServer:
    """What both servers share: the clip, real-time pacing, counters, client sockets, start/stop."""

    _server_class: type[socketserver.TCPServer]
    _handler: type[socketserver.BaseRequestHandler]

    def __init__(self, jpegs: list[bytes], fps: float = 30.0, loop: bool = False, port: int = 0,
                 garbage: bool = False) -> None:
        if not jpegs or fps <= 0:
            raise ValueError("need at least one JPEG and fps > 0")
        self.jpegs, self.fps, self.loop, self.port, self.garbage = list(jpegs), fps, loop, port, garbage
        self.frames_sent = 0  # frames sent in full, all clients, since construction
        self.sent_at: dict[int, float] = {}  # clip index -> time.monotonic() when its first send began
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._server: socketserver.TCPServer | None = None
        self._stopping = threading.Event()

    def start(self) -> _ClipServer:
        """Listen on 127.0.0.1:port (a free port the first time when 0; the same port after stop())."""
        if self._server is None:
            self._stopping = threading.Event()
            server = self._server_class(("127.0.0.1", self.port), self._handler)
            server.owner = self  # type: ignore[attr-defined]
            self.port = server.server_address[1]
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
            self._server = server
        return self

    def stop(self) -> None:
        """Close the listening socket and every client connection at once (clients see the stream drop)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            clients, self._clients = list(self._clients), set()
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _ClipServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def _client(self, conn: socket.socket) -> Iterator[threading.Event]:
        """Track a client connection while it is served (quietly ending on socket errors); yield the stop event."""
        with self._lock:
            self._clients.add(conn)
        try:
            yield self._stopping
        except OSError:
            pass
        finally:
            with self._lock:
                self._clients.discard(conn)

    def _paced(self, stopping: threading.Event) -> Iterator[tuple[int, int]]:
        """(count, clip index) from frame 0, count/fps s after the first; ends after the clip unless loop."""
        start = time.monotonic()
        count = 0
        while self.loop or count < len(self.jpegs):
            if stopping.wait(max(0.0, start + count / self.fps - time.monotonic())):
                return
            yield count, count % len(self.jpegs)
            count += 1

    def _send_frame(self, index: int, send: Callable[[bytes], object], data: bytes) -> None:
        """Send one frame's bytes with send(data), updating sent_at and frames_sent."""
        with self._lock:
            self.sent_at.setdefault(index, time.monotonic())
        send(data)
        with self._lock:
            self.frames_sent += 1


class _MjpegHandler(BaseHTTPRequestHandler):
    def handle(self) -> None:
        self.owner: MjpegServer = self.server.owner  # type: ignore[attr-defined]
        with self.owner._client(self.request) as self.stopping:
            super().handle()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] != "/stream.mjpg":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for count, index in self.owner._paced(self.stopping):
            jpeg = self.owner.jpegs[index]
            data = _garbage(count, len(jpeg)) if self.owner.garbage else jpeg
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
            self.owner._send_frame(index, self.request.sendall, head.encode() + data + b"\r\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass


class MjpegServer(_ClipServer):
    """MJPEG over HTTP: ``GET /stream.mjpg`` streams multipart/x-mixed-replace JPEG parts paced at fps.

    Every client starts at frame 0; the response ends after the last frame unless loop. With
    garbage=True each part's body is random bytes (no 0xFF) instead of the JPEG.
    """

    _server_class, _handler = ThreadingHTTPServer, _MjpegHandler  # daemon threads, SO_REUSEADDR

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = allow_reuse_address = True


def _rtsp_requests(conn: socket.socket) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(method, url, lower-cased headers) of each RTSP request on conn, skipping interleaved `$` frames."""
    buffer = b""
    while True:
        if buffer[:1] == b"$":
            if len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[2:4], "big"):
                buffer = buffer[4 + int.from_bytes(buffer[2:4], "big") :]
                continue
        elif b"\r\n\r\n" in buffer:
            head, rest = buffer.lstrip().split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            body_length = int(headers.get("content-length", "0"))
            if len(rest) >= body_length:
                buffer = rest[body_length:]
                method, url = (lines[0].split() + ["", ""])[:2]
                yield method, url, headers
                continue
        data = conn.recv(65536)
        if not data:
            return
        buffer += data


class _RtspHandler(socketserver.BaseRequestHandler):
    """One RTSP control connection: answers requests; PLAY starts a thread sending interleaved RTP/JPEG."""

    channel: int | None = None  # the RTP channel SETUP agreed
    sender: threading.Thread | None = None

    def handle(self) -> None:
        self.owner: RtspServer = self.server.owner  # type: ignore[attr-defined]
        self.send_lock, self.session_id = threading.Lock(), f"{random.getrandbits(32):08X}"
        with self.owner._client(self.request) as self.stopping:
            self.serve()

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.request.sendall(data)

    def reply(self, cseq: str, status: str = "200 OK", headers: tuple[str, ...] = (), body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *headers, *([f"Content-Length: {len(body)}"] if body else [])]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def serve(self) -> None:
        """Answer requests until the client leaves, TEARDOWN, or the connection is closed."""
        for method, _, headers in _rtsp_requests(self.request):
            cseq, session = headers.get("cseq", "0"), (f"Session: {self.session_id}",)
            if method == "OPTIONS":
                self.reply(cseq, headers=(f"Public: {RTSP_PUBLIC}",))
            elif method == "DESCRIBE":
                self.reply(cseq, headers=("Content-Type: application/sdp", f"Content-Base: {self.owner.url}/"),
                           body=self.owner.sdp().encode())
            elif method == "SETUP":
                self.answer_setup(cseq, headers.get("transport", ""))
            elif method == "PLAY" and self.channel is not None:
                self.reply(cseq, headers=(*session, "Range: npt=0.000-"))
                if self.sender is None:
                    self.sender = threading.Thread(target=self.stream, daemon=True)
                    self.sender.start()
            elif method in ("GET_PARAMETER", "SET_PARAMETER", "TEARDOWN"):
                self.reply(cseq, headers=session)
                if method == "TEARDOWN":
                    return
            else:
                self.reply(cseq, "455 Method Not Valid in This State" if method == "PLAY" else "501 Not Implemented")

    def answer_setup(self, cseq: str, transport: str) -> None:
        """Agree to RTP/AVP/TCP interleaved (channels as asked, 0-1 by default); 461 to anything else."""
        self.owner.transports_seen.append(transport)
        offer = next((t for t in transport.split(",") if t.strip().upper().startswith("RTP/AVP/TCP")), None)
        if offer is None:
            self.reply(cseq, "461 Unsupported Transport")
            return
        channels = next((p.split("=", 1)[1] for p in offer.split(";") if p.strip().startswith("interleaved=")), "0-1")
        self.channel = int(channels.split("-")[0])
        self.reply(cseq, headers=(f"Transport: RTP/AVP/TCP;unicast;interleaved={channels}",
                                  f"Session: {self.session_id};timeout=60"))

    def stream(self) -> None:
        """Send the clip as '$'-framed RTP (PT 26, 90 kHz, marker on a frame's last packet); then close."""
        owner, seq, ssrc, base = self.owner, random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        with contextlib.suppress(OSError):
            for count, index in owner._paced(self.stopping):
                payloads = owner.payloads[index]
                if owner.garbage:
                    payloads = [_garbage(count * 1000 + k, len(p)) for k, p in enumerate(payloads)]
                stamp = (base + round(count * 90000 / owner.fps)) & 0xFFFFFFFF
                packets = []
                for k, payload in enumerate(payloads):
                    marker = 0x80 if k == len(payloads) - 1 else 0
                    rtp = struct.pack(">BBHII", 0x80, marker | 26, seq, stamp, ssrc) + payload
                    packets.append(struct.pack(">cBH", b"$", self.channel, len(rtp)) + rtp)
                    seq = (seq + 1) & 0xFFFF
                owner._send_frame(index, self.send, b"".join(packets))
            self.request.shutdown(socket.SHUT_RDWR)


class RtspServer(_ClipServer):
    """RTSP 1.0 at ``rtsp://127.0.0.1:PORT/stream``: one video track, RTP/JPEG (RFC 2435) interleaved on TCP.

    SETUP answers 461 to anything but RTP/AVP/TCP. Every PLAY starts at frame 0 paced at fps; the
    connection closes after the last frame unless loop. With garbage=True the replies are valid but
    every RTP payload is random bytes. ``transports_seen`` lists each SETUP's Transport header.
    """

    _server_class, _handler = _TcpServer, _RtspHandler

    def __init__(self, jpegs: list[bytes], fps: float = 30.0, loop: bool = False, port: int = 0,
                 garbage: bool = False) -> None:
        super().__init__(jpegs, fps, loop, port, garbage)
        self.payloads = [rtp_jpeg_payloads(jpeg) for jpeg in self.jpegs]
        self.transports_seen: list[str] = []

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def sdp(self) -> str:
        """The session description DESCRIBE returns."""
        lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=yoloxkit test stream", "c=IN IP4 0.0.0.0", "t=0 0",
                 "a=control:*", "m=video 0 RTP/AVP 26", "a=rtpmap:26 JPEG/90000", f"a=framerate:{self.fps:g}",
                 "a=control:track1"]
        return "\r\n".join(lines) + "\r\n"
