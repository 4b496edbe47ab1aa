"""Per-request sliced inference for ``POST /v1/detect``: the ``slice`` options, and their limits.

A request sets ``slice`` (``H`` or ``HxW`` pixels, or ``off`` for the whole image),
``slice_overlap`` and ``slice_full``; each one it leaves out comes from the server's default
slicing (``yoloxkit serve --slice``), else from :class:`~yoloxkit.infer.slicing.Slicing`'s
defaults. The tile merging settings are always the server's. Every sliced request is checked
before it is queued: the slice must fit in the image, and the image must not need more than the
server's ``max_tiles`` crops (a tiny slice with a large overlap would hold the one worker for
minutes). Errors are :class:`~yoloxkit.errors.InferenceError` with one line naming the option.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Union

from ..errors import InferenceError
from ..infer.slicing import Slicing, parse_slice

__all__ = ["SLICE_OFF", "RequestSlicing", "detector_slicing", "request_slicing", "effective_slicing", "check_slicing"]

#: the ``slice`` value that runs the whole image on a server started with ``--slice``
SLICE_OFF = "off"
#: a request's slicing: None (the server's default), False (the whole image) or a :class:`Slicing`
RequestSlicing = Union[Slicing, bool, None]


def detector_slicing(detector: object) -> Slicing | None:
    """The detector's own slicing (its ``slicing`` attribute when that is a :class:`Slicing`)."""
    slicing = getattr(detector, "slicing", None)
    return slicing if isinstance(slicing, Slicing) else None


def request_slicing(
    default: Slicing | None, size: str | None = None, overlap: float | None = None, full: bool | None = None
) -> RequestSlicing:
    """The slicing a request asks for (see the module docstring); None when it sets nothing
    that changes the server's ``default``."""
    if size is None and overlap is None and not full:
        # nothing given, or only slice_full=false: the server's default, without the whole image
        return None if default is None or full is None else replace(default, full=False)
    if size is not None and size.strip().lower() == SLICE_OFF:
        if overlap is not None or full:
            given = "slice_overlap" if overlap is not None else "slice_full"
            raise InferenceError(f"{given} needs slice H or HxW, not slice={SLICE_OFF}")
        return False
    if size is None:
        if default is None:
            given = "slice_overlap" if overlap is not None else "slice_full"
            raise InferenceError(f"{given} needs slice H or HxW (this server does not slice by default)")
        slicing = default
    else:
        height, width = parse_slice(size, "slice")
        slicing = Slicing(height, width) if default is None else replace(default, height=height, width=width)
    changes: dict = {}
    if overlap is not None:
        changes["overlap"] = float(overlap)
    if full is not None:
        changes["full"] = bool(full)
    return replace(slicing, **changes)


def effective_slicing(default: Slicing | None, requested: RequestSlicing) -> Slicing | None:
    """The slicing a job runs with: the request's, else the server's; None for the whole image."""
    chosen = default if requested is None else requested
    return chosen if isinstance(chosen, Slicing) else None


def check_slicing(slicing: Slicing, height: int, width: int, max_tiles: int, name: str | None = None) -> None:
    """:class:`InferenceError` when the slice is larger than the image, or cuts it into more than
    ``max_tiles`` crops."""
    slicing.check_fits(height, width, name)
    count = slicing.crop_count(height, width)
    if count > max_tiles:
        raise InferenceError(
            f"slice {slicing.height}x{slicing.width} (overlap {slicing.overlap:g}) cuts the {height}x{width} image "
            f"into {count} crops, more than this server's limit of {max_tiles}: use a larger slice or a smaller "
            "slice_overlap"
        )
