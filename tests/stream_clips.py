"""Clips for the test-owned stream servers: JPEG frames that RFC 2435 can carry, an MJPEG AVI
holding the same bytes, RTP/JPEG packets, frame-index stamps and a generated clip of the demo picture."""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
# sha256 of the DHT tables (class/id byte, 16 counts, values; DC0, DC1, AC0, AC1) of ITU T.81 Annex K.3:
# the Huffman tables an RFC 2435 receiver rebuilds (checked against FFmpeg's jpegtables.c).
_STANDARD_DHT_SHA256 = "532fd667aa5541439e4fc89f189259b1b137993ca5dfcbb6970ab411aee79cdf"


def _jpeg_parts(jpeg: bytes) -> tuple[int, int, list[bytes], bytes]:
    """(width, height, [luma, chroma] 64-byte zigzag quantisation tables, entropy-coded scan) of a JPEG.

    ValueError unless RFC 2435 type 1 carries it: baseline 8-bit 4:2:0 YCbCr, tables 0/1/1, standard
    Huffman tables, no restart markers, one scan, sides multiples of 8 up to 2040 px."""
    if jpeg[:2] != b"\xff\xd8" or jpeg[-2:] != b"\xff\xd9":
        raise ValueError("not a complete JPEG (SOI ... EOI)")
    pos, tables, huffman, sof = 2, {}, {}, b""
    while True:
        marker, length = jpeg[pos + 1], struct.unpack_from(">H", jpeg, pos + 2)[0]
        body = jpeg[pos + 4 : pos + 2 + length]
        if marker == 0xDB:
            for at in range(0, len(body), 65):
                if body[at] >> 4:
                    raise ValueError("16-bit quantisation table")
                tables[body[at] & 15] = body[at + 1 : at + 65]
        elif marker == 0xC4:
            at = 0
            while at < len(body):
                end = at + 17 + sum(body[at + 1 : at + 17])
                huffman[body[at]], at = body[at:end], end
        elif marker == 0xDD:
            raise ValueError("restart markers (DRI): RFC 2435 type 1 has none")
        elif marker == 0xC0:
            sof = body
        elif 0xC1 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise ValueError(f"not baseline: SOF{marker - 0xC0}")
        elif marker == 0xDA:
            break
        pos += 2 + length
    if len(sof) != 15 or sof[0] != 8 or sof[5] != 3 or sof[7::3] != b"\x22\x11\x11" or sof[8::3] != b"\0\1\1":
        raise ValueError("not 8-bit 4:2:0 YCbCr with quantisation tables 0, 1, 1 (SOF0)")
    height, width = struct.unpack_from(">HH", sof, 1)
    if body[0:7:2] != b"\x03\x00\x11\x11":
        raise ValueError("not one interleaved scan with Huffman tables 0, 1, 1 (SOS)")
    digest = hashlib.sha256(b"".join(huffman[k] for k in sorted(huffman))).hexdigest()
    if sorted(huffman) != [0x00, 0x01, 0x10, 0x11] or digest != _STANDARD_DHT_SHA256:
        raise ValueError("Huffman tables are not the standard ones (optimised or custom)")
    if width % 8 or height % 8 or not (0 < width <= 2040 and 0 < height <= 2040):
        raise ValueError(f"{width}x{height}: RFC 2435 needs sides that are multiples of 8, up to 2040")
    return width, height, [tables[0], tables[1]], jpeg[pos + 2 + length : -2]


def encode_jpeg(frame: np.ndarray) -> bytes:
    """JPEG q90 (baseline, 4:2:0, standard tables) of a BGR uint8 frame (H, W, 3), checked for RFC 2435."""
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("cv2.imencode failed")
    _jpeg_parts(buffer.tobytes())
    return buffer.tobytes()


def _chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)


def write_mjpeg_clip(path: str | Path, frames: list[np.ndarray], fps: float) -> list[bytes]:
    """Write BGR frames (H, W, 3 uint8, one size) as an MJPEG AVI at fps frames/s; return each frame's JPEG.

    The AVI holds exactly the returned bytes: one '00dc' chunk per frame, all keyframes in idx1."""
    if not frames:
        raise ValueError("no frames")
    jpegs = [encode_jpeg(frame) for frame in frames]
    height, width = frames[0].shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    biggest = max(len(jpeg) for jpeg in jpegs)
    avih = struct.pack("<14I", round(1e6 / fps), round(biggest * fps), 0, 0x10, len(jpegs), 0, 1, biggest,
                       width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIiI4h", b"vids", b"MJPG", 0, 0, 0, 0, rate.denominator, rate.numerator,
                       0, len(jpegs), biggest, -1, 0, 0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    strl = _chunk(b"LIST", b"strl" + _chunk(b"strh", strh) + _chunk(b"strf", strf))
    hdrl = _chunk(b"LIST", b"hdrl" + _chunk(b"avih", avih) + strl)
    chunks, index, offset = [], [], 4  # idx1 offsets count from the 'movi' fourcc
    for jpeg in jpegs:
        chunks.append(_chunk(b"00dc", jpeg))
        index.append(struct.pack("<4sIII", b"00dc", 0x10, offset, len(jpeg)))
        offset += len(chunks[-1])
    movi = _chunk(b"LIST", b"movi" + b"".join(chunks))
    Path(path).write_bytes(_chunk(b"RIFF", b"AVI " + hdrl + movi + _chunk(b"idx1", b"".join(index))))
    return jpegs


def rtp_jpeg_payloads(jpeg: bytes, max_payload: int = 1400) -> list[bytes]:
    """RFC 2435 payloads (type 1, Q=255: tables in-band in the first) of one JPEG, each <= max_payload bytes."""
    width, height, tables, scan = _jpeg_parts(jpeg)
    quant_header = struct.pack(">BBH", 0, 0, 128) + tables[0] + tables[1]
    payloads, offset = [], 0
    while offset < len(scan) or not payloads:
        extra = quant_header if offset == 0 else b""
        room = max_payload - 8 - len(extra)
        header = struct.pack(">IBBBB", offset, 1, 255, width // 8, height // 8)  # type-specific 0, 24-bit offset
        payloads.append(header + extra + scan[offset : offset + room])
        offset += room
    return payloads


def stamp_index(frame: np.ndarray, index: int) -> np.ndarray:
    """Copy of a BGR frame (H >= 16, W >= 256) with index (0..65535) as 16 black/white 16x16 blocks.

    The blocks run left to right along the top edge, most significant bit first, white for 1."""
    if not 0 <= index < 1 << 16:
        raise ValueError(f"index {index} is not in 0..65535")
    stamped = frame.copy()
    for bit in range(16):
        stamped[:16, bit * 16 : bit * 16 + 16] = 255 if index >> (15 - bit) & 1 else 0
    return stamped


def read_stamp(frame: np.ndarray) -> int:
    """The index stamp_index drew in frame (the middle 8x8 pixels of each block, brighter than 127 = 1)."""
    return sum(1 << (15 - bit) for bit in range(16) if frame[4:12, bit * 16 + 4 : bit * 16 + 12].mean() > 127)


def make_clip(frames: int = 60, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """frames BGR uint8 images of size (W, H): dog.jpg, resized 10% larger and panned 2 px a frame, back and forth."""
    width, height = size
    image = cv2.imread(str(SHARED / "images" / "dog.jpg"))
    if image is None:
        raise FileNotFoundError(SHARED / "images" / "dog.jpg")
    pan_x, pan_y = width // 10, height // 10
    big = cv2.resize(image, (width + pan_x, height + pan_y), interpolation=cv2.INTER_AREA)
    clip = []
    for i in range(frames):
        dx = min((2 * i) % (2 * pan_x), 2 * pan_x - (2 * i) % (2 * pan_x))
        dy = dx * pan_y // pan_x
        clip.append(np.ascontiguousarray(big[dy : dy + height, dx : dx + width]))
    return clip
