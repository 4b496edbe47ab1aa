"""Expanding ``yoloxkit predict`` SOURCE arguments: image files, folders, videos, webcams and
live streams (``rtsp://``, ``http://`` ...)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ImageReadError
from ..imaging import is_image_file
from .stream_urls import check_stream_url, stream_name

__all__ = ["VIDEO_SUFFIXES", "Source", "expand_sources", "is_video_file"]

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".wmv", ".mpg", ".mpeg", ".flv", ".ts"})


def is_video_file(path: str | os.PathLike) -> bool:
    """True if ``path`` has a video file extension."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class Source:
    """One input: an image file, a video file, a webcam (``index``) or a live stream (``url``)."""

    kind: str  # "image", "video", "webcam" or "stream"
    path: Path | None = None
    index: int | None = None
    url: str | None = None

    @property
    def name(self) -> str:
        """Display name: the file name, ``webcam0``, or a stream's host, port and path."""
        if self.url is not None:
            return stream_name(self.url)
        return self.path.name if self.path is not None else f"webcam{self.index}"


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _expand_one(argument: str) -> list[Source]:
    if "://" in argument:  # a stream URL, or a one-line error for a wrong scheme
        return [Source("stream", url=check_stream_url(argument))]
    path = Path(argument).expanduser()
    if argument.isdigit() and not path.exists():
        return [Source("webcam", index=int(argument))]
    if path.is_dir():
        images = _folder_images(path)
        if not images:
            raise ImageReadError(f"no image files in folder {path}")
        return [Source("image", p) for p in images]
    if path.is_file():
        return [Source("video" if is_video_file(path) else "image", path)]
    if glob.has_magic(argument):
        matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(argument)))
        files = [p for p in matches if p.is_file() and (is_image_file(p) or is_video_file(p))]
        if files:
            return [Source("video" if is_video_file(p) else "image", p) for p in files]
        raise ImageReadError(f"no image or video files match {argument}")
    if path.exists():
        raise ImageReadError(f"not an image, video or folder: {path}")
    raise ImageReadError(f"source not found: {path}")


def expand_sources(arguments: Iterable[str]) -> list[Source]:
    """Turn SOURCE arguments into inputs, in order: a folder gives its images (sorted, not
    recursive), a digit string that is not a file a webcam index, a glob pattern its matches,
    ``scheme://...`` a live stream (rtsp, rtsps, http, https, rtmp; other schemes are refused).

    Raises :class:`ImageReadError` naming the argument for a missing path or an empty folder.
    File contents are checked later, when each image is read.
    """
    sources: list[Source] = []
    for argument in arguments:
        sources.extend(_expand_one(str(argument)))
    return sources
