"""Files shipped inside the package: the bundled yolox-nano COCO checkpoint and the demo picture."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BUNDLED_MODEL", "bundled_weights_path", "bundled_demo_image"]

BUNDLED_MODEL = "yolox-nano"
_BUNDLED_WEIGHTS = "yolox_nano_coco.pth"
_DEMO_IMAGE = "dog.jpg"


def _asset(name: str) -> Path:
    return Path(str(resources.files("yoloxkit") / "assets" / name))


def bundled_weights_path() -> Path:
    """The yolox-nano COCO checkpoint shipped in the package (converted from the official ONNX)."""
    return _asset(_BUNDLED_WEIGHTS)


def bundled_demo_image() -> Path:
    """The YOLOX demo picture shipped in the package (a dog, a bicycle and a truck)."""
    return _asset(_DEMO_IMAGE)
