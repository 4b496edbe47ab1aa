"""Which files are images: the one suffix list, and listing image files of folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import ImageReadError

__all__ = ["IMAGE_SUFFIXES", "WRITE_SUFFIXES", "is_image_file", "output_suffix", "list_images", "image_files"]

# Suffixes OpenCV decodes (lower case); a file's content is never judged by its name alone.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jpe", ".jp2", ".pbm", ".pgm", ".ppm"}
)

#: the suffixes of :data:`IMAGE_SUFFIXES` an annotated (colour) copy keeps: every OpenCV build
#: writes them in colour (JPEG 2000 needs an optional codec, PBM/PGM are grey)
WRITE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}) & IMAGE_SUFFIXES


def is_image_file(path: str | os.PathLike) -> bool:
    """True if ``path`` has an image file extension (the content is not checked)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def output_suffix(path: str | os.PathLike, fallback: str = ".jpg") -> str:
    """The suffix for a colour image written from ``path``: its own (lower case) when in
    :data:`WRITE_SUFFIXES`, else ``fallback``."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in WRITE_SUFFIXES else fallback


def list_images(directory: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files in ``directory`` (and its subfolders if ``recursive``), sorted."""
    directory = Path(directory)
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in candidates if is_image_file(p) and p.is_file())


def image_files(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The image files named by ``sources``: files as given, folders as their sorted image files
    (not recursive). :class:`ImageReadError` for a missing source, an empty folder or no sources."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    paths: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found = list_images(source, recursive=False)
            if not found:
                raise ImageReadError(f"no images in folder {source}")
            paths += found
        elif source.is_file():
            paths.append(source)
        else:
            raise ImageReadError(f"image or folder not found: {source}")
    if not paths:
        raise ImageReadError("no images given")
    return paths
