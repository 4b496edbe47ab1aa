"""Generated evaluation data: objects cut out of a COCO split and pasted into new images.

:func:`make_small_object_set` writes a COCO dataset of large images (e.g. 1920x1080, 3840x2160)
full of small objects, to measure sliced inference (:mod:`.small_objects`); :mod:`.cutouts`
holds the object cut-outs it (and later generators) paste. :func:`make_tracking_set` writes short
MOTChallenge-layout tracking sequences with known identities (:mod:`.sequences`).
"""

from __future__ import annotations

from .cutouts import Cutout, ScaledCutout, cut_out_objects, read_source, scale_cutout
from .sequences import TrackingSet, make_tracking_set
from .small_objects import SmallObjectSet, cover_transform, make_small_object_set, size_bucket

__all__ = [
    "make_small_object_set",
    "SmallObjectSet",
    "cover_transform",
    "size_bucket",
    "Cutout",
    "ScaledCutout",
    "cut_out_objects",
    "read_source",
    "scale_cutout",
    "make_tracking_set",
    "TrackingSet",
]
