"""Deprecated location: the letterbox lives in :mod:`yoloxkit.imaging` (re-exported here until
every importer has switched)."""

from __future__ import annotations

from ..imaging import PAD_VALUE, letterbox, letterbox_batch, letterbox_ratio, to_size

__all__ = ["PAD_VALUE", "letterbox_ratio", "letterbox", "letterbox_batch", "to_size"]
