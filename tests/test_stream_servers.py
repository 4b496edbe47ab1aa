"""The test-owned stream servers, read through real sockets by cv2.VideoCapture's FFmpeg backend."""

from __future__ import annotations

import socket
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.stream_servers import (
    MjpegServer,
    RtspServer,
    encode_jpeg,
    make_clip,
    read_stamp,
    rtp_jpeg_payloads,
    stamp_index,
    write_mjpeg_clip,
)

FPS = 60.0
FRAMES = 24
SERVERS = {"mjpeg": MjpegServer, "rtsp": RtspServer}


def open_capture(url: str, timeout_ms: int = 5000) -> cv2.VideoCapture:
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])


def read_all(url: str, limit: int = 500) -> list[np.ndarray]:
    """Every frame a fresh capture of url reads until read() fails (at most limit)."""
    capture = open_capture(url)
    assert capture.isOpened(), url
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, list[bytes], list[np.ndarray]]:
    """(AVI path, its JPEGs, its frames as FFmpeg decodes the file) of a stamped 24-frame clip."""
    path = tmp_path_factory.mktemp("streams") / "clip.avi"
    jpegs = write_mjpeg_clip(path, [stamp_index(f, i) for i, f in enumerate(make_clip(FRAMES))], FPS)
    return path, jpegs, read_all(str(path))


def test_make_clip_pans_dog_jpg():
    frames = make_clip(8, size=(160, 120))
    assert len(frames) == 8 and all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    assert 60 < frames[0].mean() < 200  # a photo, not a blank frame


def test_avi_holds_the_returned_jpegs(clip):
    path, jpegs, decoded = clip
    capture = open_capture(str(path))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    capture.release()
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI " and data.count(b"00dc") == 2 * FRAMES  # chunks + idx1
    assert all(jpeg in data for jpeg in jpegs)
    assert [read_stamp(frame) for frame in decoded] == list(range(FRAMES))
    assert all(frame.shape == (240, 320, 3) for frame in decoded)


@pytest.mark.parametrize("params, why", [
    ([cv2.IMWRITE_JPEG_PROGRESSIVE, 1], "baseline"),
    ([cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444], "4:2:0"),
    ([cv2.IMWRITE_JPEG_RST_INTERVAL, 4], "restart"),
    ([cv2.IMWRITE_JPEG_OPTIMIZE, 1], "Huffman"),
])
def test_jpegs_rfc2435_cannot_carry_are_refused(params, why):
    frame = make_clip(1, size=(64, 48))[0]
    _, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90, *params])
    with pytest.raises(ValueError, match=why):
        rtp_jpeg_payloads(buffer.tobytes())
    assert rtp_jpeg_payloads(encode_jpeg(frame))  # the same frame, encoded the default way, is fine


def test_writer_refuses_sides_that_are_not_multiples_of_8(tmp_path):
    with pytest.raises(ValueError, match="multiples of 8"):
        write_mjpeg_clip(tmp_path / "odd.avi", make_clip(2, size=(100, 60)), 30.0)


def test_rtp_payloads_follow_rfc2435(clip):
    jpeg = clip[1][0]
    payloads = rtp_jpeg_payloads(jpeg)
    assert len(payloads) > 3 and all(len(p) <= 1400 for p in payloads)
    scan, expected_offset = b"", 0
    for k, payload in enumerate(payloads):
        offset, kind, q, width8, height8 = struct.unpack_from(">IBBBB", payload)
        assert (offset, kind, q, width8, height8) == (expected_offset, 1, 255, 40, 30)
        body = payload[8:]
        if k == 0:  # quantisation table header: MBZ, 8-bit precision, 128 bytes (luma, chroma)
            assert body[:4] == b"\0\0\0\x80" and body[4:68] in jpeg and body[68:132] in jpeg
            body = body[132:]
        scan += body
        expected_offset += len(body)
    assert jpeg.endswith(scan + b"\xff\xd9") and len(scan) > 0.9 * len(jpeg)


@pytest.mark.parametrize("kind", SERVERS)
def test_streams_decode_to_the_files_frames(clip, kind):
    _, jpegs, decoded = clip
    with SERVERS[kind](jpegs, fps=FPS) as server:
        frames = read_all(server.url)
    assert len(frames) == len(decoded) == FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(frames, decoded)), "not pixel-exact"
    assert server.frames_sent == FRAMES and sorted(server.sent_at) == list(range(FRAMES))
    times = [server.sent_at[i] for i in range(FRAMES)]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert (FRAMES - 1) / FPS - 0.01 < times[-1] - times[0] < (FRAMES - 1) / FPS + 0.5  # paced, not a burst


def test_rtsp_udp_setup_gets_461_and_ffmpeg_retries_over_tcp(clip, monkeypatch):
    # OpenCV asks FFmpeg to prefer TCP unless OPENCV_FFMPEG_CAPTURE_OPTIONS is set; this clears that flag.
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_flags;0")
    _, jpegs, decoded = clip
    with RtspServer(jpegs, fps=FPS) as server:
        frames = read_all(server.url)
    assert [t.split(";")[0] for t in server.transports_seen] == ["RTP/AVP/UDP", "RTP/AVP/TCP"]
    assert len(frames) == FRAMES and all(np.array_equal(a, b) for a, b in zip(frames, decoded))


@pytest.mark.parametrize("kind", SERVERS)
def test_stop_drops_the_stream_and_start_serves_again(clip, kind):
    server = SERVERS[kind](clip[1], fps=30.0, loop=True).start()
    port = server.port
    capture = open_capture(server.url)
    try:
        read = 0  # read until caught up with the live stream (FFmpeg buffers what it probed)
        while read < 10 or read < server.frames_sent - 1:
            assert read < 300, "the reader never caught up"
            assert capture.read()[0]
            read += 1
        server.stop()
        started, late_frames = time.monotonic(), 0
        while capture.read()[0]:
            late_frames += 1
        assert late_frames <= 2 and time.monotonic() - started < 3.0
        capture.release()
        server.start()
        assert server.port == port
        capture = open_capture(server.url)
        stamps = [read_stamp(capture.read()[1]) for _ in range(5)]
        assert stamps == [0, 1, 2, 3, 4]  # a new client starts at frame 0
    finally:
        capture.release()
        server.stop()


@pytest.mark.parametrize("kind", SERVERS)
def test_garbage_mode_fails_without_hanging(clip, kind):
    with SERVERS[kind](clip[1], fps=30.0, loop=True, garbage=True) as server:
        started = time.monotonic()
        capture = open_capture(server.url, timeout_ms=2000)
        opened = capture.isOpened()
        read_ok = capture.read()[0] if opened else False
        capture.release()
        assert not read_ok and time.monotonic() - started < 10.0
        assert server.frames_sent > 0  # it did answer, with random bytes


@pytest.mark.parametrize("kind", SERVERS)
def test_stop_closes_idle_connections_too(clip, kind):
    server = SERVERS[kind](clip[1]).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as idle:
        time.sleep(0.1)  # accepted, no request sent
        started = time.monotonic()
        server.stop()
        assert idle.recv(100) == b"" and time.monotonic() - started < 1.0


def test_stamps_round_trip_through_jpeg():
    frame = make_clip(1)[0]
    for index in (0, 1, 255, 256, 0x1234, 0xA5A5, 65535):
        decoded = cv2.imdecode(np.frombuffer(encode_jpeg(stamp_index(frame, index)), np.uint8), cv2.IMREAD_COLOR)
        assert read_stamp(decoded) == index
    assert read_stamp(frame) != 0x1234 and not np.array_equal(stamp_index(frame, 7), frame)
    with pytest.raises(ValueError):
        stamp_index(frame, 65536)


def test_mjpeg_answers_404_to_other_paths(clip):
    with MjpegServer(clip[1]) as server:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.url.replace("stream.mjpg", "other"), timeout=5)
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
            assert response.read(2) == b"--"
    assert error.value.code == 404


class RtspClient:
    """A bare RTSP-over-TCP client: requests, replies, and '$' frames read off one socket."""

    def __init__(self, url: str) -> None:
        self.url, self.cseq, self.buffer = url, 0, b""
        self.sock = socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0])), timeout=5)

    def request(self, method: str, *headers: str, prefix: bytes = b"") -> tuple[str, dict[str, str]]:
        self.cseq += 1
        lines = [f"{method} {self.url} RTSP/1.0", f"CSeq: {self.cseq}", *headers]
        self.sock.sendall(prefix + ("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            item = self.next_item()
            if isinstance(item, tuple):
                assert item[1]["cseq"] == str(self.cseq)
                return item

    def next_item(self) -> tuple[str, dict[str, str]] | tuple[int, bytes] | bytes:
        """A reply (status line, headers) or an interleaved frame (channel, data); RTP frames as (0, rtp)."""
        while True:
            if self.buffer[:1] == b"$" and len(self.buffer) >= 4:
                end = 4 + int.from_bytes(self.buffer[2:4], "big")
                if len(self.buffer) >= end:
                    channel, data, self.buffer = self.buffer[1], self.buffer[4:end], self.buffer[end:]
                    return channel, data
            elif b"\r\n\r\n" in self.buffer:
                head, rest = self.buffer.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                size = int(headers.get("content-length", "0"))
                if len(rest) >= size:
                    self.buffer = rest[size:]
                    headers["body"] = rest[:size].decode()
                    return lines[0], headers
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.buffer += data


def test_rtsp_protocol_by_hand(clip):
    jpegs = clip[1][:3]
    with RtspServer(jpegs, fps=30.0) as server:
        client = RtspClient(server.url)
        status, headers = client.request("OPTIONS")
        assert status == "RTSP/1.0 200 OK" and "GET_PARAMETER" in headers["public"]
        status, headers = client.request("DESCRIBE", "Accept: application/sdp")
        sdp = headers["body"]
        assert "m=video 0 RTP/AVP 26" in sdp and "a=rtpmap:26 JPEG/90000" in sdp and "a=framerate:30" in sdp
        assert client.request("SETUP", "Transport: RTP/AVP;unicast;client_port=5000-5001")[0].split()[1] == "461"
        status, headers = client.request("SETUP", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
        assert headers["transport"] == "RTP/AVP/TCP;unicast;interleaved=0-1"
        session = f"Session: {headers['session'].split(';')[0]}"
        assert client.request("PLAY", session)[0] == "RTSP/1.0 200 OK"
        rtcp = b"$\x01\x00\x08" + bytes([0x80, 201, 0, 1]) + b"\0" * 4  # an empty receiver report on channel 1
        keep_alive = f"GET_PARAMETER {server.url} RTSP/1.0\r\nCSeq: 99\r\n{session}\r\n\r\n".encode()
        replies, rtp = [], []
        while sum(packet[1] >> 7 for packet in rtp) < len(jpegs):
            item = client.next_item()
            (replies if isinstance(item[0], str) else rtp).append(item[1])
            if len(rtp) == 2:  # RTCP and a keep-alive in one write, amid the stream
                client.sock.sendall(rtcp + keep_alive)
        assert [headers["cseq"] for headers in replies] == ["99"]
        assert all(r[0] == 0x80 and r[1] & 0x7F == 26 for r in rtp)
        seqs = [struct.unpack_from(">H", r, 2)[0] for r in rtp]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:]))
        ends = [k for k, r in enumerate(rtp) if r[1] >> 7]
        assert [len(rtp_jpeg_payloads(j)) for j in jpegs] == np.diff([-1, *ends]).tolist()
        stamps = list(dict.fromkeys(struct.unpack_from(">I", r, 4)[0] for r in rtp))
        assert [(b - a) % 2**32 for a, b in zip(stamps, stamps[1:])] == [3000, 3000]  # 90 kHz / 30 fps
        assert b"".join(r[12:] for r in rtp) == b"".join(p for j in jpegs for p in rtp_jpeg_payloads(j))
        with pytest.raises(AssertionError, match="connection closed"):  # closed after the last frame
            client.next_item()
        client.sock.close()
