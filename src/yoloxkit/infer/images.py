"""Deprecated location: image reading lives in :mod:`yoloxkit.imaging` (re-exported here until
every importer has switched)."""

from __future__ import annotations

from ..imaging import IMAGE_SUFFIXES, ImageInput, as_bgr, is_image_file, load_images, read_image

__all__ = ["ImageInput", "IMAGE_SUFFIXES", "read_image", "as_bgr", "load_images", "is_image_file"]
