"""Images as every part of yoloxkit sees them: the one decoder (header first, with the pixel
limit; EXIF orientation applied), reading files (with the truncation check), which files are
images, and the one letterbox (keep-ratio resize, top-left, padded with ``PAD_VALUE``) that both
training and inference use.
"""

from __future__ import annotations

from .decode import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, decode_image, max_pixels
from .files import IMAGE_SUFFIXES, WRITE_SUFFIXES, image_files, is_image_file, list_images, output_suffix
from .letterbox import PAD_VALUE, letterbox, letterbox_batch, letterbox_ratio, to_size
from .read import ImageInput, as_bgr, image_size, load_images, read_image

__all__ = [
    "ImageInput",
    "decode_image",
    "max_pixels",
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "read_image",
    "as_bgr",
    "load_images",
    "image_size",
    "IMAGE_SUFFIXES",
    "WRITE_SUFFIXES",
    "output_suffix",
    "is_image_file",
    "list_images",
    "image_files",
    "PAD_VALUE",
    "to_size",
    "letterbox_ratio",
    "letterbox",
    "letterbox_batch",
]
