"""MOTChallenge sequence folders: ``seqinfo.ini`` and the frame files it names.

A sequence folder holds ``seqinfo.ini`` (a ``[Sequence]`` section: ``name``, ``frameRate``,
``seqLength``, ``imWidth``, ``imHeight``, ``imDir``, ``imExt``), its frames in ``imDir`` and,
for ground truth, ``gt/gt.txt``. ``make-tracking-set`` writes such folders, ``track`` reads their
frames and frame rate, ``track-eval`` their length.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from ..errors import DatasetError
from ..text import read_text

__all__ = ["read_seqinfo", "seqinfo_text", "sequence_frames"]


def seqinfo_text(name: str, length: int, frame_size: tuple[int, int], frame_rate: float,
                 im_dir: str = "img1", im_ext: str = ".jpg") -> str:
    """The ``seqinfo.ini`` that :func:`read_seqinfo` reads back."""
    return (f"[Sequence]\nname={name}\nimDir={im_dir}\nframeRate={frame_rate:g}\nseqLength={length}\n"
            f"imWidth={frame_size[0]}\nimHeight={frame_size[1]}\nimExt={im_ext}\n")


def read_seqinfo(seq_dir: str | os.PathLike) -> dict:
    """The ``[Sequence]`` of ``seq_dir/seqinfo.ini``: ``name``, ``frame_rate`` (float), ``length``,
    ``width``, ``height`` (ints), ``im_dir``, ``im_ext`` (:class:`DatasetError` naming the file if
    it is missing or malformed)."""
    path = Path(seq_dir) / "seqinfo.ini"
    if not path.is_file():
        raise DatasetError(f"{path}: sequence info file not found")
    parser = configparser.ConfigParser()
    try:
        parser.read_string(read_text(path, "sequence info file"), source=str(path))
        section = parser["Sequence"]
        info = {"name": section["name"], "frame_rate": float(section["frameRate"]),
                "length": int(section["seqLength"]), "width": int(section["imWidth"]),
                "height": int(section["imHeight"]), "im_dir": section.get("imDir", "img1"),
                "im_ext": section.get("imExt", ".jpg")}
    except (configparser.Error, KeyError, ValueError, UnicodeDecodeError) as error:
        what = f"missing {error}" if isinstance(error, KeyError) else " ".join(str(error).split())
        raise DatasetError(f"{path}: malformed seqinfo.ini ({what})") from None
    if info["length"] < 1 or info["width"] < 1 or info["height"] < 1 or info["frame_rate"] <= 0:
        raise DatasetError(f"{path}: malformed seqinfo.ini (seqLength, imWidth, imHeight, frameRate must be > 0)")
    return info


def sequence_frames(seq_dir: str | os.PathLike) -> list[Path]:
    """The frame files of a sequence (``imDir`` files ending in ``imExt`` of its seqinfo.ini), sorted."""
    info = read_seqinfo(seq_dir)
    folder = Path(seq_dir) / info["im_dir"]
    if not folder.is_dir():
        raise DatasetError(f"{folder}: frame directory not found")
    ext = info["im_ext"].lower()
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ext)
