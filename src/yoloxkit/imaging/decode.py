"""The one image decoder: encoded bytes to BGR ``uint8`` pixels, for files and uploads alike.

:func:`decode_image` reads the header with Pillow first (format, width x height, EXIF
orientation, pixel type) and refuses an image over the pixel limit before anything is decoded;
then OpenCV decodes the pixels (``cv2.imdecode`` with ``IMREAD_COLOR``: EXIF orientation
applied, alpha dropped, 16-bit scaled to 8-bit), so ``predict``, ``eval``, training and
``serve`` see the same array for the same bytes.

The pixel limit is :data:`DEFAULT_MAX_PIXELS`, Pillow's decompression-bomb limit, unless the
environment variable ``YOLOXKIT_MAX_PIXELS`` sets another (:func:`max_pixels`); OpenCV's own
limit of 2**30 pixels caps both.

Orientation rule: pixels are read upright (EXIF orientation applied) and annotations are in
that upright frame; :attr:`ImageHeader.upright_size` is the size the decoded pixels have.

Nothing is printed by the codecs: OpenCV's own log lines are silenced (unless
``OPENCV_LOG_LEVEL`` is set), and libpng, which OpenCV lets print to the process's stderr, gets
a PNG without the ancillary chunks that do not make its pixels (colour profiles, text, ...,
each a possible ``libpng warning``) and with the CRCs of the others checked (a damaged chunk is
refused here, not with ``libpng error``). Every failure is one
:class:`~yoloxkit.errors.ImageReadError` line. (libpng still warns about a malformed pixel
stream whose CRCs are right, e.g. ``IDAT: Too much image data``.)
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import ImageReadError, ImageTooLargeError, SettingError, UnsupportedImageError, first_line

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "OPENCV_MAX_PIXELS",
    "DECODED_FORMATS",
    "max_pixels",
    "ImageHeader",
    "read_header",
    "check_pixels",
    "decode_image",
]

#: Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``), the default pixel limit
DEFAULT_MAX_PIXELS = 89_478_485
#: the environment variable that sets another pixel limit (a positive integer)
MAX_PIXELS_ENV = "YOLOXKIT_MAX_PIXELS"
#: ``cv2.imdecode`` refuses larger images (OpenCV's ``OPENCV_IO_MAX_IMAGE_PIXELS`` default)
OPENCV_MAX_PIXELS = 1 << 30
#: the formats (Pillow's names) whose headers are read; OpenCV decodes all of them in-process.
#: (JPEG includes the camera JPEGs Pillow opens as MPO; PPM includes PBM and PGM.)
DECODED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "JPEG2000", "PPM")

_ORIENTATION = 0x0112
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_WIDE_MODES = ("F", "I")  # Pillow's modes of 32-bit float / integer samples, which OpenCV does not decode

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
# the PNG chunks OpenCV makes pixels from (critical chunks, transparency, orientation, APNG frames)
_PNG_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"eXIf", b"acTL", b"fcTL", b"fdAT"})

if not os.environ.get("OPENCV_LOG_LEVEL"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # failures are ImageReadError lines


def max_pixels() -> int:
    """The pixel limit: ``YOLOXKIT_MAX_PIXELS`` if set, else :data:`DEFAULT_MAX_PIXELS`;
    :class:`~yoloxkit.errors.SettingError` for a value that is not a positive integer."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingError(f"{MAX_PIXELS_ENV} must be a positive integer (a number of pixels), got {text!r}")
    return value


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: ``width`` and ``height`` as stored, the EXIF ``orientation``
    (1-8, 1 when absent), Pillow's ``format`` and ``mode``."""

    format: str
    width: int
    height: int
    orientation: int = 1
    mode: str = ""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright_size(self) -> tuple[int, int]:
        """``(width, height)`` once the orientation is applied (swapped for orientations 5-8)."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


def _open(stream: BinaryIO) -> ImageFile.ImageFile:
    """The header of ``stream``, opened by the first plugin of :data:`DECODED_FORMATS` that
    accepts it, as ``Image.open`` does but without Pillow's own decompression-bomb check (a
    warning over its limit, an error over twice it): the pixel limit here decides, and names the
    size. No ``warnings.catch_warnings``, which is not thread-safe (``serve`` decodes in threads)."""
    Image.init()
    stream.seek(0)
    prefix = stream.read(16)
    broken = None
    for name in DECODED_FORMATS:
        factory, accept = Image.OPEN[name]
        verdict = accept(prefix) if accept else True
        if not verdict or isinstance(verdict, str):
            continue
        stream.seek(0)
        try:
            return factory(stream, "")
        except (SyntaxError, IndexError, TypeError, struct.error) as exc:  # not this format, as Image.open
            broken = broken or f"a broken {name} header: {first_line(exc)}"
    if broken:  # its signature, but no valid header: a damaged file rather than another format
        raise ValueError(broken)
    raise UnidentifiedImageError("cannot identify image file")


def _exif_orientation(exif_bytes: bytes | None) -> int:
    if not exif_bytes:
        return 1
    exif = Image.Exif()
    try:
        exif.load(exif_bytes)
        value = int(exif.get(_ORIENTATION, 1))
    except Exception:  # a corrupt EXIF block: OpenCV ignores it too
        return 1
    return value if 1 <= value <= 8 else 1


def _png_exif(stream: BinaryIO) -> bytes | None:
    """The ``eXIf`` chunk of a PNG wherever it is (Pillow reads one after the pixel data only
    when it decodes them, OpenCV applies it): chunk headers are read, the data skipped."""
    stream.seek(len(_PNG_START))
    while True:
        head = stream.read(8)
        if len(head) < 8:
            return None
        length, kind = int.from_bytes(head[:4], "big"), head[4:]
        if kind == b"eXIf":
            return stream.read(length)
        if kind == b"IEND":
            return None
        stream.seek(length + 4, io.SEEK_CUR)


def _header_of(image: ImageFile.ImageFile, stream: BinaryIO) -> ImageHeader:
    """The header of an opened image. For TIFF, Pillow reports the oriented size, so the stored
    size and the orientation come from the TIFF tags; otherwise from the EXIF block (only: OpenCV
    reads no XMP orientation)."""
    if image.format == "TIFF":
        tags = image.tag_v2
        width, height = tags.get(_TIFF_WIDTH, image.width), tags.get(_TIFF_HEIGHT, image.height)
        orientation = tags.get(_ORIENTATION, 1)
        orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
    else:
        width, height = image.size
        exif = image.info.get("exif")
        if exif is None and image.format == "PNG":
            exif = _png_exif(stream)
        orientation = _exif_orientation(exif)
    return ImageHeader(str(image.format), int(width), int(height), orientation, str(image.mode))


def read_header(source: bytes | bytearray | memoryview | str | os.PathLike, name: str | None = None) -> ImageHeader:
    """The header of ``source`` (encoded bytes or a file path), read without decoding pixels.

    :class:`UnsupportedImageError` for data that is not an image in :data:`DECODED_FORMATS`,
    :class:`ImageReadError` for a missing file or a header that cannot be read.
    """
    name = str(source if name is None else name)
    try:
        encoded = isinstance(source, (bytes, bytearray, memoryview))
        with (io.BytesIO(source) if encoded else open(source, "rb")) as stream:
            with _open(stream) as image:
                header = _header_of(image, stream)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {name}") from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"cannot read image {name}: not an image file or an unsupported format"
            f" (accepted: {', '.join(DECODED_FORMATS)})"
        ) from None
    except Exception as exc:  # Pillow's plugins raise assorted errors on malformed headers
        raise ImageReadError(f"cannot read image {name}: unreadable image header ({first_line(exc)})") from None
    if header.width < 1 or header.height < 1:
        raise ImageReadError(f"cannot read image {name}: the image has no pixels ({header.width}x{header.height})")
    return header


def check_pixels(header: ImageHeader, name: str, limit: int | None = None) -> None:
    """Refuse an image over the pixel limit (``limit``, or :func:`max_pixels` when ``None``) or
    with samples OpenCV cannot decode; :class:`ImageTooLargeError`, :class:`UnsupportedImageError`."""
    hint = f" (set {MAX_PIXELS_ENV} to raise it)" if limit is None else ""
    limit = max_pixels() if limit is None else int(limit)
    if limit > OPENCV_MAX_PIXELS:
        limit, hint = OPENCV_MAX_PIXELS, " (OpenCV's own limit)"
    if header.pixels > limit:
        raise ImageTooLargeError(
            f"cannot read image {name}: {header.width}x{header.height} = {header.pixels} pixels exceeds"
            f" the limit of {limit}{hint}"
        )
    if header.format == "TIFF" and header.mode in _WIDE_MODES:
        kind = "floating-point" if header.mode == "F" else "32-bit integer"
        raise UnsupportedImageError(
            f"cannot read image {name}: {kind} samples are not supported (save it with 8 or 16 bits per sample)"
        )


def _looks_truncated(data: bytes) -> bool:
    """Quick check of the end marker of JPEG and PNG files (some writers pad with zeros)."""
    if data.startswith(_JPEG_START):
        return not data.rstrip(b"\x00\r\n ").endswith(_JPEG_END)
    if data.startswith(_PNG_START):
        return _PNG_END not in data[-64:]
    return False


def _verify_with_pillow(data: bytes, name: str) -> None:
    """Decode ``data`` fully with Pillow, which raises on truncated data."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with _open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on bad data
        raise ImageReadError(f"cannot read image {name}: truncated or corrupt ({first_line(exc)})") from None


def _png_pixel_chunks(data: bytes, name: str) -> bytes:
    """``data`` (a PNG) with only the intact chunks that make its pixels (any critical chunk, and
    the ancillary ones of :data:`_PNG_PIXEL_CHUNKS`). libpng prints a warning for each chunk it
    skips (a bad colour profile, text, a CRC error), and ``libpng error: ...`` for a critical
    chunk whose CRC is wrong, which is refused here instead. Unchanged if there is nothing to
    drop or the chunk structure ends early (OpenCV then reports it)."""
    view, position, parts, start = memoryview(data), len(_PNG_START), [], 0
    while position + 12 <= len(data):
        length = int.from_bytes(data[position: position + 4], "big")
        kind, end = data[position + 4: position + 8], position + 12 + length
        if end > len(data):
            break
        intact = zlib.crc32(view[position + 4: end - 4]) == int.from_bytes(data[end - 4: end], "big")
        if not kind[0] & 0x20 and not intact:  # a critical chunk: libpng would fail, printing why
            label = kind.decode("latin-1")
            raise ImageReadError(f"cannot read image {name}: corrupt PNG data (CRC error in its {label} chunk)")
        if kind[0] & 0x20 and (kind not in _PNG_PIXEL_CHUNKS or not intact):  # libpng would skip it
            parts.append(view[start:position])
            start = end
        position = end
        if kind == b"IEND":
            break
    if not parts:
        return data
    parts.append(view[start:])
    return b"".join(parts)


def decode_image(data: bytes, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode an encoded image into a BGR ``uint8`` array ``[H, W, 3]``, upright.

    ``max_pixels`` is the pixel limit (``None``: :func:`max_pixels`), checked on the header
    before any decoding. Raises :class:`ImageTooLargeError` (over the limit),
    :class:`UnsupportedImageError` (not an image in :data:`DECODED_FORMATS`, or 32-bit samples)
    and :class:`ImageReadError` (empty, truncated or corrupt), each one line naming ``name``.
    """
    if not data:
        raise ImageReadError(f"cannot read image {name}: the file is empty")
    header = read_header(data, name)
    check_pixels(header, name, max_pixels)
    if _looks_truncated(data):
        # The end marker is missing: either trailing bytes after a complete image (rare but
        # valid) or a truncated file, which OpenCV may return partly grey. Pillow tells them
        # apart by decoding everything.
        _verify_with_pillow(data, name)
    encoded = _png_pixel_chunks(data, name) if header.format == "PNG" else data
    try:
        image = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageReadError(f"cannot read image {name}: {first_line(exc)}") from None
    if image is None:
        raise ImageReadError(f"cannot read image {name}: corrupt {header.format} data (its pixels cannot be decoded)")
    return image
