"""Inference: ``Detector`` (images and arrays in, ``Detections`` out), backends, drawing, video."""

from .detections import Detections
from .detector import Detector

__all__ = ["Detector", "Detections"]
